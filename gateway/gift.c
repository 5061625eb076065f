/*
 * Signed gifts: validation, canonical bytes, verification, receipts. The
 * formats are specified in gift.h; this file must produce exactly those bytes.
 *
 * Every function re-checks the grammars before building canonical bytes, even
 * for a gift that came through gw_gift_from_json, so a hand-filled struct
 * (tools, tests, future callers) can never yield an ambiguous message: with
 * the grammars holding, no field contains '\n' and the split is unique.
 *
 * Threads: pure functions; any thread.
 */
#include "gateway/gift.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "crypto/b64.h"
#include "crypto/sign.h"
#include "gateway/json.h"
#include "gateway/room.h"

static bool gift_id_valid(const char *s, size_t len)
{
	if (len < 1 || len > GW_GIFT_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool nonce_valid(const char *s, size_t len)
{
	if (len < GW_GIFT_NONCE_MIN || len > GW_GIFT_NONCE_MAX || len % 2)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return true;
}

static bool count_valid(int64_t v)
{
	return v >= 1 && v <= GW_GIFT_COUNT_MAX;
}

static bool ts_valid(int64_t v)
{
	return v >= 1 && v <= GW_GIFT_TS_MAX;
}

/* The whole struct obeys gift.h, with every string NUL-terminated in its array. */
static bool gift_valid(const struct gw_gift *g)
{
	size_t uid = strnlen(g->uid, sizeof(g->uid)), gift = strnlen(g->gift, sizeof(g->gift));
	size_t txn = strnlen(g->txn, sizeof(g->txn)), nonce = strnlen(g->nonce, sizeof(g->nonce));

	return gw_name_valid(g->uid, uid) && uid < sizeof(g->uid) &&
	       gift_id_valid(g->gift, gift) && gift < sizeof(g->gift) &&
	       gw_name_valid(g->txn, txn) && txn < sizeof(g->txn) &&
	       nonce_valid(g->nonce, nonce) && nonce < sizeof(g->nonce) && count_valid(g->count) &&
	       ts_valid(g->ts);
}

/*
 * Fetch a string member. json-c strings may hold NUL, so callers use the
 * returned length, never strlen.
 */
static int get_str(struct json_object *obj, const char *key, const char **s, size_t *len,
		   struct gw_err *err)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) || !v)
		return gw_fail(err, 400, "bad_field", "missing \"%s\"", key);
	if (!json_object_is_type(v, json_type_string))
		return gw_fail(err, 400, "bad_field", "\"%s\" must be a JSON string", key);
	*s = json_object_get_string(v);
	*len = (size_t)json_object_get_string_len(v);
	return 0;
}

/*
 * Fetch an integer member. Doubles (1.0, 1e3) are refused rather than
 * truncated: the signer printed an integer, and so must we. Values past
 * int64 come back clamped to INT64_MAX, which every range check refuses.
 */
static int get_int(struct json_object *obj, const char *key, int64_t *out, struct gw_err *err)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) || !v)
		return gw_fail(err, 400, "bad_field", "missing \"%s\"", key);
	if (!json_object_is_type(v, json_type_int))
		return gw_fail(err, 400, "bad_field", "\"%s\" must be a JSON integer", key);
	*out = json_object_get_int64(v);
	return 0;
}

int gw_gift_from_json(struct json_object *obj, struct gw_gift *g, struct gw_err *err)
{
	const char *s;
	size_t len, siglen;
	int64_t n;

	memset(g, 0, sizeof(*g));
	if (!obj || !json_object_is_type(obj, json_type_object))
		return gw_fail(err, 400, "bad_field", "a gift must be a JSON object");

	if (get_str(obj, "uid", &s, &len, err))
		return -1;
	if (!gw_name_valid(s, len))
		return gw_fail(err, 400, "bad_uid", "\"uid\" must match [A-Za-z0-9_-]{1,64}");
	memcpy(g->uid, s, len);

	if (get_str(obj, "gift", &s, &len, err))
		return -1;
	if (!gift_id_valid(s, len))
		return gw_fail(err, 400, "bad_gift", "\"gift\" must match [a-z0-9_-]{1,32}");
	memcpy(g->gift, s, len);

	if (get_int(obj, "count", &n, err))
		return -1;
	if (!count_valid(n))
		return gw_fail(err, 400, "bad_count", "\"count\" must be 1..%d", GW_GIFT_COUNT_MAX);
	g->count = (uint32_t)n;

	if (get_str(obj, "txn", &s, &len, err))
		return -1;
	if (!gw_name_valid(s, len))
		return gw_fail(err, 400, "bad_txn", "\"txn\" must match [A-Za-z0-9_-]{1,64}");
	memcpy(g->txn, s, len);

	if (get_int(obj, "ts", &n, err))
		return -1;
	if (!ts_valid(n))
		return gw_fail(err, 400, "bad_field",
			       "\"ts\" must be ms since the epoch, 1..%lld", GW_GIFT_TS_MAX);
	g->ts = n;

	if (get_str(obj, "nonce", &s, &len, err))
		return -1;
	if (!nonce_valid(s, len))
		return gw_fail(err, 400, "bad_nonce",
			       "\"nonce\" must be %d..%d lowercase hex digits, even in number",
			       GW_GIFT_NONCE_MIN, GW_GIFT_NONCE_MAX);
	memcpy(g->nonce, s, len);

	if (get_str(obj, "sig", &s, &len, err))
		return -1;
	if (cr_b64_decode(s, len, g->sig, sizeof(g->sig), &siglen) || siglen != sizeof(g->sig))
		return gw_fail(err, 400, "bad_sig",
			       "\"sig\" must be standard padded base64 of a 64-byte Ed25519 "
			       "signature");
	return 0;
}

/* ---- the plain form of the gift op (gift.h) --------------------------------------------- */

struct scan {
	const char *p, *end;
};

static void skip_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/* A string without escapes, control or non-ASCII bytes: its contents. false otherwise. */
static bool scan_str(struct scan *s, const char **str, size_t *len)
{
	const char *q;

	if (s->p >= s->end || *s->p != '"')
		return false;
	for (q = ++s->p; q < s->end && *q != '"'; q++)
		if (*q == '\\' || (unsigned char)*q < 0x20 || (unsigned char)*q >= 0x80)
			return false;
	if (q >= s->end)
		return false;
	*str = s->p;
	*len = (size_t)(q - s->p);
	s->p = q + 1;
	return true;
}

/* Digits only, no leading zero, at most 18 of them (so the value fits an int64). */
static bool scan_uint(struct scan *s, int64_t *v, const char **text, size_t *len)
{
	const char *q = s->p;
	int64_t n = 0;

	while (q < s->end && *q >= '0' && *q <= '9' && q - s->p < 19)
		n = n * 10 + (*q++ - '0');
	if (q == s->p || q - s->p > 18 || (*s->p == '0' && q - s->p > 1))
		return false;
	/* A number that goes on as a fraction, exponent or more digits is not plain. */
	if (q < s->end && (*q == '.' || *q == 'e' || *q == 'E' || (*q >= '0' && *q <= '9')))
		return false;
	*v = n;
	*text = s->p;
	*len = (size_t)(q - s->p);
	s->p = q;
	return true;
}

bool gw_gift_parse_op(const char *msg, size_t len, struct gw_gift *g, char *id, size_t idcap)
{
	static const char *const keys[] = {"op",  "id", "uid",   "gift", "count",
	                                   "txn", "ts", "nonce", "sig"};
	enum { K_OP, K_ID, K_UID, K_GIFT, K_COUNT, K_TXN, K_TS, K_NONCE, K_SIG, K_N };
	const char *val[K_N] = {0};
	size_t vlen[K_N] = {0}, siglen;
	int64_t num[K_N] = {0};
	bool seen[K_N] = {0}, is_str[K_N] = {0};
	struct scan s = {msg, msg + len};
	int n;

	memset(g, 0, sizeof(*g));
	skip_ws(&s);
	if (s.p >= s.end || *s.p++ != '{')
		return false;
	for (;;) {
		const char *k;
		size_t klen;
		int i;

		skip_ws(&s);
		if (!scan_str(&s, &k, &klen))
			return false;
		for (i = 0; i < K_N; i++)
			if (strlen(keys[i]) == klen && !memcmp(keys[i], k, klen))
				break;
		if (i == K_N || seen[i])
			return false; /* another member, or a repeated one */
		seen[i] = true;
		skip_ws(&s);
		if (s.p >= s.end || *s.p++ != ':')
			return false;
		skip_ws(&s);
		is_str[i] = s.p < s.end && *s.p == '"';
		if (is_str[i] ? !scan_str(&s, &val[i], &vlen[i])
		              : !scan_uint(&s, &num[i], &val[i], &vlen[i]))
			return false;
		skip_ws(&s);
		if (s.p < s.end && *s.p == ',') {
			s.p++;
			continue;
		}
		if (s.p < s.end && *s.p++ == '}')
			break;
		return false;
	}
	skip_ws(&s);
	if (s.p != s.end)
		return false;

	/* Every member but id present, integers where integers belong, strings elsewhere. */
	for (int i = 0; i < K_N; i++)
		if (i != K_ID && (!seen[i] || is_str[i] == (i == K_COUNT || i == K_TS)))
			return false;
	if (vlen[K_OP] != 4 || memcmp(val[K_OP], "gift", 4))
		return false;
	if (!gw_name_valid(val[K_UID], vlen[K_UID]) || !gift_id_valid(val[K_GIFT], vlen[K_GIFT]) ||
	    !count_valid(num[K_COUNT]) || !gw_name_valid(val[K_TXN], vlen[K_TXN]) ||
	    !ts_valid(num[K_TS]) || !nonce_valid(val[K_NONCE], vlen[K_NONCE]) ||
	    cr_b64_decode(val[K_SIG], vlen[K_SIG], g->sig, sizeof(g->sig), &siglen) ||
	    siglen != sizeof(g->sig))
		return false;
	if (!seen[K_ID])
		n = snprintf(id, idcap, "null");
	else if (!is_str[K_ID])
		n = snprintf(id, idcap, "%.*s", (int)vlen[K_ID], val[K_ID]);
	else if (gw_name_valid(val[K_ID], vlen[K_ID]))
		n = snprintf(id, idcap, "\"%.*s\"", (int)vlen[K_ID], val[K_ID]);
	else
		return false; /* a string id json-c might spell differently (escapes) */
	if (n < 0 || (size_t)n >= idcap)
		return false;
	memcpy(g->uid, val[K_UID], vlen[K_UID]);
	memcpy(g->gift, val[K_GIFT], vlen[K_GIFT]);
	g->count = (uint32_t)num[K_COUNT];
	memcpy(g->txn, val[K_TXN], vlen[K_TXN]);
	g->ts = num[K_TS];
	memcpy(g->nonce, val[K_NONCE], vlen[K_NONCE]);
	return true;
}

/*
 * Canonical forms are joined field by field (a verify and a receipt per gift
 * make this hot; snprintf was a visible share of a gift's CPU). `len` counts
 * what would have been written; the result only stands when it left room for
 * the NUL.
 */
struct joiner {
	char *out;
	size_t cap, len;
	unsigned fields;
};

/* Append field s[0..n), preceded by '\n' unless it is the first. */
static void join(struct joiner *j, const char *s, size_t n)
{
	if (j->fields++) {
		if (j->len < j->cap)
			j->out[j->len] = '\n';
		j->len++;
	}
	if (j->len < j->cap)
		memcpy(j->out + j->len, s, n < j->cap - j->len ? n : j->cap - j->len);
	j->len += n;
}

static void join_str(struct joiner *j, const char *s)
{
	join(j, s, strlen(s));
}

static void join_u64(struct joiner *j, uint64_t v)
{
	char tmp[20];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	join(j, tmp + i, sizeof(tmp) - i);
}

/* The joined length, NUL-terminated in out; 0 when it did not fit in cap with its NUL. */
static size_t joined(struct joiner *j)
{
	if (j->len >= j->cap) {
		if (j->cap)
			j->out[0] = '\0';
		return 0;
	}
	j->out[j->len] = '\0';
	return j->len;
}

size_t gw_gift_canonical(const struct gw_gift *g, const char *room, size_t room_len, char *out,
                         size_t cap)
{
	struct joiner j = {.out = out, .cap = cap};

	if (!gw_name_valid(room, room_len) || !gift_valid(g))
		return 0;
	join_str(&j, "livegate.gift.v1");
	join(&j, room, room_len);
	join_str(&j, g->uid);
	join_str(&j, g->gift);
	join_u64(&j, g->count);
	join_str(&j, g->txn);
	join_u64(&j, (uint64_t)g->ts); /* ts_valid: 1..2^53-1 */
	join_str(&j, g->nonce);
	return joined(&j);
}

bool gw_gift_verify(const struct gw_gift *g, const char *room, size_t room_len,
                    const unsigned char pk[32])
{
	char msg[GW_GIFT_CANONICAL_MAX];
	size_t n = gw_gift_canonical(g, room, room_len, msg, sizeof(msg));

	return n && cr_verify(pk, msg, n, g->sig);
}

size_t gw_gift_receipt_canonical(const struct gw_gift *g, const char *room, size_t room_len,
				 uint64_t seq, uint64_t value, char *out, size_t cap)
{
	struct joiner j = {.out = out, .cap = cap};

	if (!gw_name_valid(room, room_len) || !gift_valid(g))
		return 0;
	join_str(&j, "livegate.receipt.v1");
	join(&j, room, room_len);
	join_str(&j, g->uid);
	join_str(&j, g->txn);
	join_u64(&j, seq);
	join_str(&j, g->gift);
	join_u64(&j, g->count);
	join_u64(&j, value);
	return joined(&j);
}

int gw_gift_receipt(const struct gw_gift *g, const char *room, size_t room_len, uint64_t seq,
		    uint64_t value, const unsigned char server_sk[64], struct gw_buf *out)
{
	char msg[GW_RECEIPT_CANONICAL_MAX];
	unsigned char sig[CR_SIGN_BYTES];
	char sig64[(CR_SIGN_BYTES + 2) / 3 * 4 + 1];
	size_t n = gw_gift_receipt_canonical(g, room, room_len, seq, value, msg, sizeof(msg));
	size_t old = out->len;

	if (!n)
		return -1;
	cr_sign(server_sk, msg, n, sig);
	cr_b64_encode(sig, sizeof(sig), sig64);
	if (gw_buf_puts(out, "{\"txn\":") || gw_json_put_str(out, g->txn, strlen(g->txn)) ||
	    gw_buf_puts(out, ",\"seq\":") || gw_buf_put_u64(out, seq) ||
	    gw_buf_puts(out, ",\"status\":\"accepted\",\"receipt_sig\":\"") ||
	    gw_buf_puts(out, sig64) || gw_buf_puts(out, "\"}")) {
		out->len = old;
		return -1;
	}
	return 0;
}
