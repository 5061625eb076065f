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

#include <inttypes.h>
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

/* snprintf's result as a canonical length: 0 unless it fitted in cap with its NUL. */
static size_t fitted(int n, size_t cap)
{
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

size_t gw_gift_canonical(const struct gw_gift *g, const char *room, size_t room_len, char *out,
			 size_t cap)
{
	if (!gw_name_valid(room, room_len) || !gift_valid(g))
		return 0;
	return fitted(snprintf(out, cap, "livegate.gift.v1\n%.*s\n%s\n%s\n%" PRIu32 "\n%s\n%" PRId64
					 "\n%s",
			       (int)room_len, room, g->uid, g->gift, g->count, g->txn, g->ts,
			       g->nonce),
		      cap);
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
	if (!gw_name_valid(room, room_len) || !gift_valid(g))
		return 0;
	return fitted(snprintf(out, cap,
			       "livegate.receipt.v1\n%.*s\n%s\n%s\n%" PRIu64 "\n%s\n%" PRIu32
			       "\n%" PRIu64,
			       (int)room_len, room, g->uid, g->txn, seq, g->gift, g->count, value),
		      cap);
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
