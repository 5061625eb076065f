/*
 * Tests for gateway/gift.c: the canonical bytes of the example documented in
 * gift.h (byte for byte, with its documented signature), grammar checks on
 * hand-filled gifts, JSON validation of every bad field class, verification
 * failing after any signed field changes, the receipt's JSON and
 * signature over the documented receipt bytes, and the plain-form gift op
 * parser agreeing with the full json-c path on every message it accepts
 * (hand-picked forms and thousands of mutations).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "crypto/b64.h"
#include "crypto/sign.h"
#include "gateway/gift.h"
#include "gateway/ingest.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

/* The example of gift.h, verbatim. */
#define EX_ROOM "lobby-1"
#define EX_CANONICAL                                                                               \
	"livegate.gift.v1\nlobby-1\nviewer_42\nrose\n3\nt-0001\n1700000000000\n"                   \
	"00112233445566778899aabbccddeeff"
#define EX_SEED  "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
#define EX_PK64  "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
#define EX_SIG64                                                                                   \
	"AbofcrBE3DytjwEMjwTcQkQpGYKoQhPKIN02Vy0iObp0q2Gw+5jTjilwpfgMsxSWaS1sKMtW+K5aw3VcReE+AA=="
#define EX_RECEIPT "livegate.receipt.v1\nlobby-1\nviewer_42\nt-0001\n17\nrose\n3\n30"
#define LONG64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define LONG65 LONG64 "a"

/* The server key of gift.h's receipt example: RFC 8032 TEST 2's seed. */
#define EX_SERVER_SEED "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"
#define EX_SERVER_PK64 "PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw="
#define EX_RECEIPT_JSON                                                                            \
	"{\"txn\":\"t-0001\",\"seq\":17,\"status\":\"accepted\",\"receipt_sig\":"                  \
	"\"gQCSvOZeRUIrcbwCVafaPDzyy9bnGZo+0/HuqEmc3QscRpOX4wdVpNKO2Z5fKl"                         \
	"dxnAVbrX/9jA+7I+/6vie7CA==\"}"

static unsigned char viewer_pk[32], viewer_sk[64];

static void keypair_of(const char *seed_hex, unsigned char pk[32], unsigned char sk[64])
{
	unsigned char seed[32];
	size_t n;

	assert_int_equal(cr_hex_decode(seed_hex, 64, seed, sizeof(seed), &n), 0);
	assert_int_equal(cr_keypair_from_seed(seed, pk, sk), 0);
}

static void example(struct gw_gift *g)
{
	memset(g, 0, sizeof(*g));
	strcpy(g->uid, "viewer_42");
	strcpy(g->gift, "rose");
	g->count = 3;
	strcpy(g->txn, "t-0001");
	g->ts = 1700000000000;
	strcpy(g->nonce, "00112233445566778899aabbccddeeff");
}

static void sign_gift(struct gw_gift *g, const char *room)
{
	char msg[GW_GIFT_CANONICAL_MAX];
	size_t n = gw_gift_canonical(g, room, strlen(room), msg, sizeof(msg));

	assert_true(n > 0);
	cr_sign(viewer_sk, msg, n, g->sig);
}

static void test_canonical_bytes_of_the_documented_example(void **state)
{
	struct gw_gift g;
	char out[GW_GIFT_CANONICAL_MAX];
	size_t n;

	(void)state;
	example(&g);
	n = gw_gift_canonical(&g, EX_ROOM, 7, out, sizeof(out));
	assert_int_equal(n, 95);
	assert_int_equal(n, sizeof(EX_CANONICAL) - 1);
	assert_memory_equal(out, EX_CANONICAL, n);
	assert_int_equal(out[n], 0);
	/* room is taken by length: the rest of the buffer is not read. */
	assert_int_equal(gw_gift_canonical(&g, "lobby-1/extra", 7, out, sizeof(out)), 95);
	assert_memory_equal(out, EX_CANONICAL, n);
	/* cap must hold the NUL too. */
	assert_int_equal(gw_gift_canonical(&g, EX_ROOM, 7, out, 95), 0);
	assert_int_equal(gw_gift_canonical(&g, EX_ROOM, 7, out, 96), 95);
}

static void test_documented_signature_and_public_key(void **state)
{
	struct gw_gift g;
	char pk64[64];
	size_t n;

	(void)state;
	cr_b64_encode(viewer_pk, 32, pk64);
	assert_string_equal(pk64, EX_PK64);
	example(&g);
	sign_gift(&g, EX_ROOM);
	char sig64[100];
	cr_b64_encode(g.sig, 64, sig64);
	assert_string_equal(sig64, EX_SIG64);

	/* And the documented request body parses and verifies. */
	struct json_object *o = json_tokener_parse(
		"{\"uid\":\"viewer_42\",\"gift\":\"rose\",\"count\":3,\"txn\":\"t-0001\","
		"\"ts\":1700000000000,\"nonce\":\"00112233445566778899aabbccddeeff\","
		"\"sig\":\"" EX_SIG64 "\"}");
	struct gw_err err;
	unsigned char pk[32];

	assert_non_null(o);
	assert_int_equal(gw_gift_from_json(o, &g, &err), 0);
	assert_int_equal(cr_b64_decode(EX_PK64, strlen(EX_PK64), pk, sizeof(pk), &n), 0);
	assert_true(gw_gift_verify(&g, EX_ROOM, 7, pk));
	json_object_put(o);
}

static void expect_no_canonical(const struct gw_gift *g, const char *room, size_t room_len)
{
	char out[GW_GIFT_CANONICAL_MAX];

	assert_int_equal(gw_gift_canonical(g, room, room_len, out, sizeof(out)), 0);
	assert_int_equal(gw_gift_receipt_canonical(g, room, room_len, 1, 1, out, sizeof(out)), 0);
	assert_false(gw_gift_verify(g, room, room_len, viewer_pk));
}

static void test_canonical_refuses_what_the_grammar_refuses(void **state)
{
	struct gw_gift g;

	(void)state;
	example(&g);
	expect_no_canonical(&g, "", 0);
	expect_no_canonical(&g, "a/b", 3);
	expect_no_canonical(&g, "a\nb", 3);
	expect_no_canonical(&g, LONG65, 65);

	example(&g);
	g.count = 0;
	expect_no_canonical(&g, EX_ROOM, 7);
	g.count = 10000;
	expect_no_canonical(&g, EX_ROOM, 7);
	g.count = UINT32_MAX;
	expect_no_canonical(&g, EX_ROOM, 7);

	example(&g);
	g.ts = 0;
	expect_no_canonical(&g, EX_ROOM, 7);
	g.ts = -1700000000000;
	expect_no_canonical(&g, EX_ROOM, 7);
	g.ts = GW_GIFT_TS_MAX + 1;
	expect_no_canonical(&g, EX_ROOM, 7);

	example(&g);
	strcpy(g.uid, "viewer\n42");
	expect_no_canonical(&g, EX_ROOM, 7);
	example(&g);
	memset(g.uid, 'a', sizeof(g.uid)); /* no NUL in the array */
	expect_no_canonical(&g, EX_ROOM, 7);
	example(&g);
	strcpy(g.gift, "Rose");
	expect_no_canonical(&g, EX_ROOM, 7);
	example(&g);
	g.gift[0] = 0;
	expect_no_canonical(&g, EX_ROOM, 7);
	example(&g);
	strcpy(g.txn, "t 1");
	expect_no_canonical(&g, EX_ROOM, 7);
	example(&g);
	strcpy(g.nonce, "00112233445566778899AABBCCDDEEFF");
	expect_no_canonical(&g, EX_ROOM, 7);
	example(&g);
	strcpy(g.nonce, "00112233445566778899aabbccddeef");
	expect_no_canonical(&g, EX_ROOM, 7);
}

static void test_longest_gift_fits_the_buffer_constant(void **state)
{
	struct gw_gift g;
	char room[65], out[GW_GIFT_CANONICAL_MAX];

	(void)state;
	memset(&g, 0, sizeof(g));
	memset(g.uid, 'u', GW_GIFT_UID_MAX);
	memset(g.gift, 'g', GW_GIFT_ID_MAX);
	memset(g.txn, 't', GW_GIFT_TXN_MAX);
	memset(g.nonce, 'f', GW_GIFT_NONCE_MAX);
	g.count = 9999;
	g.ts = GW_GIFT_TS_MAX;
	memset(room, 'r', 64);
	room[64] = 0;
	assert_int_equal(gw_gift_canonical(&g, room, 64, out, sizeof(out)), 395);
	assert_int_equal(gw_gift_receipt_canonical(&g, room, 64, UINT64_MAX, UINT64_MAX, out,
						   sizeof(out)),
			 294);
}

/* ---- JSON validation ---- */

static struct json_object *example_json(void)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "uid", json_object_new_string("viewer_42"));
	json_object_object_add(o, "gift", json_object_new_string("rose"));
	json_object_object_add(o, "count", json_object_new_int64(3));
	json_object_object_add(o, "txn", json_object_new_string("t-0001"));
	json_object_object_add(o, "ts", json_object_new_int64(1700000000000));
	json_object_object_add(o, "nonce",
			       json_object_new_string("00112233445566778899aabbccddeeff"));
	json_object_object_add(o, "sig", json_object_new_string(EX_SIG64));
	return o;
}

/*
 * The example with member `key` replaced by the JSON text `value` (NULL:
 * removed), parsed as the gateway parses bodies; expect `code`, or success
 * when code is NULL.
 */
static void check(const char *key, const char *value, const char *code)
{
	struct json_object *o = example_json(), *v;
	struct gw_gift g;
	struct gw_err err = {0};
	int rc;

	if (value) {
		/* A bare number is incomplete to a streaming parser: wrap it in a document. */
		char doc[300];
		struct json_tokener *tok = json_tokener_new();
		struct json_object *wrap;

		snprintf(doc, sizeof(doc), "{\"v\":%s}", value);
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
		wrap = json_tokener_parse_ex(tok, doc, (int)strlen(doc));
		json_tokener_free(tok);
		if (!wrap || !json_object_object_get_ex(wrap, "v", &v))
			fail_msg("test value %s is not JSON", value);
		json_object_object_add(o, key, json_object_get(v));
		json_object_put(wrap);
	} else {
		json_object_object_del(o, key);
	}
	rc = gw_gift_from_json(o, &g, &err);
	json_object_put(o);
	if (!code) {
		if (rc)
			fail_msg("%s=%s refused: %s %s", key, value, err.code, err.detail);
		return;
	}
	if (rc != -1 || err.status != 400 || strcmp(err.code, code))
		fail_msg("%s=%s: got rc %d %d %s, want 400 %s", key, value ? value : "(missing)",
			 rc, err.status, rc ? err.code : "-", code);
	assert_true(err.detail[0] != 0);
}

static void test_json_example_parses_into_the_struct(void **state)
{
	struct json_object *o = example_json();
	struct gw_gift g, want;
	struct gw_err err;

	(void)state;
	/* Members outside the signed set are ignored. */
	json_object_object_add(o, "extra", json_object_new_string("anything"));
	assert_int_equal(gw_gift_from_json(o, &g, &err), 0);
	example(&want);
	sign_gift(&want, EX_ROOM);
	assert_memory_equal(&g, &want, sizeof(g));
	json_object_put(o);
}

static void test_json_missing_or_mistyped_members_are_bad_field(void **state)
{
	static const char *const keys[] = {"uid", "gift", "count", "txn", "ts", "nonce", "sig"};
	struct gw_gift g;
	struct gw_err err;

	(void)state;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		check(keys[i], NULL, "bad_field");
		check(keys[i], "null", "bad_field");
		check(keys[i], "true", "bad_field");
		check(keys[i], "[]", "bad_field");
		check(keys[i], "{}", "bad_field");
	}
	/* Strings must be strings, integers integers: no coercion either way. */
	check("uid", "42", "bad_field");
	check("gift", "1", "bad_field");
	check("txn", "1", "bad_field");
	check("nonce", "1", "bad_field");
	check("sig", "0", "bad_field");
	check("count", "\"3\"", "bad_field");
	check("count", "3.0", "bad_field");
	check("count", "3e0", "bad_field");
	check("ts", "\"1700000000000\"", "bad_field");
	check("ts", "1.7e12", "bad_field");

	assert_int_equal(gw_gift_from_json(NULL, &g, &err), -1);
	assert_string_equal(err.code, "bad_field");
	struct json_object *arr = json_object_new_array();
	assert_int_equal(gw_gift_from_json(arr, &g, &err), -1);
	assert_string_equal(err.code, "bad_field");
	json_object_put(arr);
}

static void test_json_uid_and_txn(void **state)
{
	(void)state;
	check("uid", "\"\"", "bad_uid");
	check("uid", "\"a b\"", "bad_uid");
	check("uid", "\"a.b\"", "bad_uid");
	check("uid", "\"a\\nb\"", "bad_uid");
	check("uid", "\"a\\u0000b\"", "bad_uid");
	check("uid", "\"\\u00e9\"", "bad_uid");
	check("uid", "\"" LONG65 "\"", "bad_uid");
	check("uid", "\"" LONG64 "\"", NULL);
	check("uid", "\"A-z_0\"", NULL);

	check("txn", "\"\"", "bad_txn");
	check("txn", "\"t/1\"", "bad_txn");
	check("txn", "\"t 1\"", "bad_txn");
	check("txn", "\"t\\u0000\"", "bad_txn");
	check("txn", "\"" LONG65 "\"", "bad_txn");
	check("txn", "\"" LONG64 "\"", NULL);
}

static void test_json_gift_id(void **state)
{
	(void)state;
	check("gift", "\"\"", "bad_gift");
	check("gift", "\"Rose\"", "bad_gift");
	check("gift", "\"rose.red\"", "bad_gift");
	check("gift", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", "bad_gift");
	check("gift", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", NULL);
	check("gift", "\"super_rose-2\"", NULL);
}

static void test_json_count(void **state)
{
	(void)state;
	check("count", "0", "bad_count");
	check("count", "-0", "bad_count");
	check("count", "-1", "bad_count");
	check("count", "10000", "bad_count");
	check("count", "4294967297", "bad_count");
	check("count", "9223372036854775807", "bad_count");
	check("count", "18446744073709551615", "bad_count");
	check("count", "99999999999999999999999", "bad_count");
	check("count", "1", NULL);
	check("count", "9999", NULL);
}

static void test_json_ts(void **state)
{
	(void)state;
	check("ts", "0", "bad_field");
	check("ts", "-1", "bad_field");
	check("ts", "9007199254740992", "bad_field");
	check("ts", "18446744073709551615", "bad_field");
	check("ts", "9007199254740991", NULL);
	check("ts", "1", NULL);
}

static void test_json_nonce(void **state)
{
	(void)state;
	check("nonce", "\"\"", "bad_nonce");
	check("nonce", "\"0011223344556677889900aabbccdde\"", "bad_nonce");   /* 31 */
	check("nonce", "\"0011223344556677889900aabbccddee\"", NULL);         /* 32 */
	check("nonce", "\"0011223344556677889900aabbccddeef\"", "bad_nonce"); /* 33 */
	check("nonce", "\"0011223344556677889900AABBCCDDEE\"", "bad_nonce");
	check("nonce", "\"0011223344556677889900aabbccddeg\"", "bad_nonce");
	check("nonce", "\"0x11223344556677889900aabbccddee\"", "bad_nonce");
	check("nonce", "\"0011223344556677889900aabbccdd\\u0000e\"", "bad_nonce");
	check("nonce",
	      "\"0000000000000000000000000000000000000000000000000000000000000000"
	      "0000000000000000000000000000000000000000000000000000000000000000\"",
	      NULL); /* 128 */
	check("nonce",
	      "\"0000000000000000000000000000000000000000000000000000000000000000"
	      "000000000000000000000000000000000000000000000000000000000000000000\"",
	      "bad_nonce"); /* 130 */
}

/*
 * Check "sig" set to EX_SIG64 with `from` replaced by `to` (every occurrence
 * when all is set, else the first): always bad_sig.
 */
static void check_sig_variant(int all, const char *from, const char *to)
{
	char text[200] = "\"", *p = text + 1;
	const char *src = EX_SIG64, *hit;

	while ((hit = strstr(src, from))) {
		memcpy(p, src, (size_t)(hit - src));
		p += hit - src;
		p += sprintf(p, "%s", to);
		src = hit + strlen(from);
		if (!all)
			break;
	}
	sprintf(p, "%s\"", src);
	assert_string_not_equal(text, "\"" EX_SIG64 "\"");
	check("sig", text, "bad_sig");
}

static void test_json_sig(void **state)
{
	char b64[200], json[210];
	unsigned char bytes[66] = {0};

	(void)state;
	check("sig", "\"\"", "bad_sig");
	/* The example's signature spelled in ways a lenient decoder would take. */
	check_sig_variant(0, "==", "");          /* unpadded */
	check_sig_variant(1, "+", "-");          /* URL-safe alphabet (every '+') */
	check_sig_variant(0, "sKMt", "s\\nKMt"); /* wrapped (JSON "\n") */
	check_sig_variant(0, "AA==", "AB==");    /* same bytes, non-zero trailing bits */
	check_sig_variant(0, "Abof", " Abof");   /* leading space */
	check_sig_variant(0, "AA==", "AA== ");   /* trailing space */
	/* Valid base64 of 63 and 65 bytes. */
	cr_b64_encode(bytes, 63, b64);
	snprintf(json, sizeof(json), "\"%s\"", b64);
	check("sig", json, "bad_sig");
	cr_b64_encode(bytes, 65, b64);
	snprintf(json, sizeof(json), "\"%s\"", b64);
	check("sig", json, "bad_sig");
	/* 64 bytes of anything is well-formed; whether it verifies is another matter. */
	cr_b64_encode(bytes, 64, b64);
	snprintf(json, sizeof(json), "\"%s\"", b64);
	check("sig", json, NULL);
}

/* ---- verification ---- */

static void expect_fails_after(struct gw_gift *g, const char *room, const char *what)
{
	if (gw_gift_verify(g, room, strlen(room), viewer_pk))
		fail_msg("still verifies after changing %s", what);
}

static void test_verify_binds_every_signed_field(void **state)
{
	struct gw_gift g, orig;
	unsigned char other_pk[32], other_sk[64];

	(void)state;
	example(&orig);
	sign_gift(&orig, EX_ROOM);
	assert_true(gw_gift_verify(&orig, EX_ROOM, 7, viewer_pk));

	g = orig;
	expect_fails_after(&g, "lobby-2", "room");
	expect_fails_after(&g, "Lobby-1", "room case");
	g = orig;
	strcpy(g.uid, "viewer_43");
	expect_fails_after(&g, EX_ROOM, "uid");
	g = orig;
	strcpy(g.gift, "roses");
	expect_fails_after(&g, EX_ROOM, "gift");
	g = orig;
	g.count = 30;
	expect_fails_after(&g, EX_ROOM, "count");
	g = orig;
	strcpy(g.txn, "t-0002");
	expect_fails_after(&g, EX_ROOM, "txn");
	g = orig;
	g.ts++;
	expect_fails_after(&g, EX_ROOM, "ts");
	g = orig;
	g.nonce[31] = 'e';
	expect_fails_after(&g, EX_ROOM, "nonce");
	g = orig;
	g.sig[10] ^= 0x20;
	expect_fails_after(&g, EX_ROOM, "sig");

	/* Another key's signature over the same bytes does not pass for this uid's key. */
	assert_int_equal(cr_keypair_generate(other_pk, other_sk), 0);
	g = orig;
	assert_false(gw_gift_verify(&g, EX_ROOM, 7, other_pk));
}

/* ---- receipts ---- */

static void test_receipt_canonical_bytes(void **state)
{
	struct gw_gift g;
	char out[GW_RECEIPT_CANONICAL_MAX];

	(void)state;
	example(&g);
	assert_int_equal(gw_gift_receipt_canonical(&g, EX_ROOM, 7, 17, 30, out, sizeof(out)),
			 sizeof(EX_RECEIPT) - 1);
	assert_string_equal(out, EX_RECEIPT);
	assert_int_equal(gw_gift_receipt_canonical(&g, EX_ROOM, 7, 0, 0, out, sizeof(out)),
			 sizeof(EX_RECEIPT) - 1 - 2);
	assert_string_equal(out, "livegate.receipt.v1\nlobby-1\nviewer_42\nt-0001\n0\nrose\n3\n0");
	assert_int_equal(
		gw_gift_receipt_canonical(&g, EX_ROOM, 7, UINT64_MAX, 1, out, sizeof(out)), 74);
	assert_string_equal(out, "livegate.receipt.v1\nlobby-1\nviewer_42\nt-0001\n"
				 "18446744073709551615\nrose\n3\n1");
	assert_int_equal(gw_gift_receipt_canonical(&g, EX_ROOM, 7, 17, 30, out,
						   sizeof(EX_RECEIPT) - 1),
			 0);
}

static void test_receipt_json_and_signature(void **state)
{
	unsigned char server_pk[32], server_sk[64], sig[64];
	static const char head[] =
		"{\"txn\":\"t-0001\",\"seq\":17,\"status\":\"accepted\",\"receipt_sig\":\"";
	struct gw_gift g;
	struct gw_buf b;
	const char *data, *sig64;
	size_t n, len;

	(void)state;
	keypair_of(EX_SERVER_SEED, server_pk, server_sk);
	example(&g);
	gw_buf_init(&b, 16);
	/* It appends: whatever the caller already wrote stays in front. */
	assert_int_equal(gw_buf_puts(&b, "prefix:"), 0);
	assert_int_equal(gw_gift_receipt(&g, EX_ROOM, 7, 17, 30, server_sk, &b), 0);
	data = gw_buf_data(&b);
	assert_memory_equal(data, "prefix:", 7);
	data += 7;
	len = b.len - 7;
	assert_int_equal(len, sizeof(head) - 1 + 88 + 2);
	assert_memory_equal(data, head, sizeof(head) - 1);
	assert_memory_equal(data + len - 2, "\"}", 2);
	sig64 = data + sizeof(head) - 1;
	assert_int_equal(cr_b64_decode(sig64, 88, sig, sizeof(sig), &n), 0);
	assert_int_equal(n, 64);
	assert_true(cr_verify(server_pk, EX_RECEIPT, sizeof(EX_RECEIPT) - 1, sig));
	/* Not valid for other values, nor as a gift signature (different first line). */
	assert_false(cr_verify(server_pk,
			       "livegate.receipt.v1\nlobby-1\nviewer_42\nt-0001\n17\nrose\n3\n31",
			       sizeof(EX_RECEIPT) - 1, sig));
	assert_false(cr_verify(server_pk, EX_CANONICAL, sizeof(EX_CANONICAL) - 1, sig));

	/* json-c reads it back with the documented members. */
	char copy[256];
	assert_true(len < sizeof(copy));
	memcpy(copy, data, len);
	copy[len] = 0;
	struct json_object *o = json_tokener_parse(copy), *v;
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "seq", &v) && json_object_get_int64(v) == 17);
	assert_true(json_object_object_get_ex(o, "status", &v));
	assert_string_equal(json_object_get_string(v), "accepted");
	assert_int_equal(json_object_object_length(o), 4);
	json_object_put(o);

	/* An invalid gift leaves the buffer as it was. */
	size_t before = b.len;
	g.count = 0;
	assert_int_equal(gw_gift_receipt(&g, EX_ROOM, 7, 17, 30, server_sk, &b), -1);
	assert_int_equal(b.len, before);
	example(&g);
	assert_int_equal(gw_gift_receipt(&g, "bad room", 8, 17, 30, server_sk, &b), -1);
	assert_int_equal(b.len, before);
	gw_buf_free(&b);
}

/* The receipt of gift.h's example, so the documented values cannot drift. */
static void test_receipt_documented_example(void **state)
{
	unsigned char server_pk[32], server_sk[64];
	struct gw_gift g;
	struct gw_buf b;
	char pk64[64];

	(void)state;
	keypair_of(EX_SERVER_SEED, server_pk, server_sk);
	cr_b64_encode(server_pk, 32, pk64);
	assert_string_equal(pk64, EX_SERVER_PK64);
	example(&g);
	gw_buf_init(&b, 0);
	assert_int_equal(gw_gift_receipt(&g, EX_ROOM, 7, 17, 30, server_sk, &b), 0);
	assert_int_equal(b.len, sizeof(EX_RECEIPT_JSON) - 1);
	assert_memory_equal(gw_buf_data(&b), EX_RECEIPT_JSON, b.len);
	gw_buf_free(&b);
}

static int group_setup(void **state)
{
	(void)state;
	if (cr_sign_init())
		return -1;
	keypair_of(EX_SEED, viewer_pk, viewer_sk);
	return 0;
}

/* ---- the plain form of the gift op ---------------------------------------------------- */

#define OP_FIELDS                                                                                  \
	"\"uid\":\"viewer_42\",\"gift\":\"rose\",\"count\":3,\"txn\":\"t-0001\","                  \
	"\"ts\":1700000000000,\"nonce\":\"00112233445566778899aabbccddeeff\",\"sig\":\"" EX_SIG64  \
	"\""
#define OP_PLAIN "{\"op\":\"gift\",\"id\":7," OP_FIELDS "}"

/*
 * The full path, as the WebSocket handler takes it: json-c in strict mode
 * (gw_ingest_parse), op "gift", the id rendered by json-c, gw_gift_from_json.
 * true when it accepts the message as a gift, with *g and id filled.
 */
static bool full_path(const char *msg, size_t len, struct gw_gift *g, char *id, size_t idcap)
{
	struct json_object *obj = NULL, *v;
	struct gw_err err;
	bool ok = false;

	snprintf(id, idcap, "null");
	if (gw_ingest_parse(msg, len, &obj, &err))
		return false;
	if (json_object_object_get_ex(obj, "id", &v) &&
	    (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double) ||
	     json_object_is_type(v, json_type_string)))
		snprintf(id, idcap, "%s",
		         json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	ok = json_object_object_get_ex(obj, "op", &v) && json_object_is_type(v, json_type_string) &&
	     !strcmp(json_object_get_string(v), "gift") && !gw_gift_from_json(obj, g, &err);
	json_object_put(obj);
	return ok;
}

/* When the plain parser accepts msg, the full path must accept it with the same result. */
static bool plain_agrees(const char *msg, size_t len)
{
	struct gw_gift fast, full;
	char fid[80], sid[80];

	if (!gw_gift_parse_op(msg, len, &fast, fid, sizeof(fid)))
		return false;
	if (!full_path(msg, len, &full, sid, sizeof(sid)))
		fail_msg("plain parser accepted what the full path refuses: %.*s", (int)len, msg);
	if (memcmp(&fast, &full, sizeof(fast)) || strcmp(fid, sid))
		fail_msg("plain and full parses differ (id %s vs %s): %.*s", fid, sid, (int)len,
		         msg);
	return true;
}

static void test_plain_op_accepts_the_usual_forms(void **state)
{
	static const char *const ok[] = {
	    OP_PLAIN,
	    "{\"uid\":\"viewer_42\",\"op\":\"gift\",\"gift\":\"rose\",\"count\":3,\"txn\":\"t-"
	    "0001\","
	    "\"ts\":1700000000000,\"nonce\":\"00112233445566778899aabbccddeeff\",\"sig\":"
	    "\"" EX_SIG64 "\"}",
	    /* Python's json.dumps separators, and whitespace of every kind */
	    "{\"op\": \"gift\", \"id\": 7, \"uid\": \"viewer_42\", \"gift\": \"rose\", \"count\": "
	    "3, "
	    "\"txn\": \"t-0001\", \"ts\": 1700000000000, \"nonce\": "
	    "\"00112233445566778899aabbccddeeff\", \"sig\": \"" EX_SIG64 "\"}",
	    " {\n\t\"op\" :\r\"gift\" ,\"id\":\"abc-1\"," OP_FIELDS "\n}",
	    "{\"op\":\"gift\",\"id\":0," OP_FIELDS "}",
	    "{\"op\":\"gift\",\"id\":123456789012345678," OP_FIELDS "}",
	};
	struct gw_gift g;
	char id[80];

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!plain_agrees(ok[i], strlen(ok[i])))
			fail_msg("plain parser refused a usual form: %s", ok[i]);
	assert_true(gw_gift_parse_op(OP_PLAIN, strlen(OP_PLAIN), &g, id, sizeof(id)));
	assert_string_equal(id, "7");
	assert_string_equal(g.uid, "viewer_42");
	assert_int_equal(g.count, 3);
	assert_true(g.ts == 1700000000000);
	/* No id is "null"; an id that does not fit the caller's buffer is not plain. */
	const char *noid = "{\"op\":\"gift\"," OP_FIELDS "}";
	assert_true(gw_gift_parse_op(noid, strlen(noid), &g, id, sizeof(id)));
	assert_string_equal(id, "null");
	assert_false(gw_gift_parse_op(OP_PLAIN, strlen(OP_PLAIN), &g, id, 1));
}

static void test_plain_op_leaves_the_rest_to_the_full_path(void **state)
{
	static const char *const other[] = {
	    "{\"op\":\"gift\",\"id\":7,\"uid\":\"viewer\\u005f42\",\"gift\":\"rose\",\"count\":3,"
	    "\"txn\":\"t-0001\",\"ts\":1700000000000,\"nonce\":"
	    "\"00112233445566778899aabbccddeeff\","
	    "\"sig\":\"" EX_SIG64 "\"}",                         /* an escape */
	    "{\"op\":\"gift\",\"id\":7,\"id\":8," OP_FIELDS "}", /* a repeated member */
	    "{\"op\":\"gift\",\"x\":1," OP_FIELDS "}",           /* another member */
	    "{\"op\":\"danmaku\"," OP_FIELDS "}",                /* another op */
	    "{\"op\":\"gift\",\"id\":-1," OP_FIELDS "}",         /* ids json-c may spell */
	    "{\"op\":\"gift\",\"id\":1.5," OP_FIELDS "}",        /* ... differently */
	    "{\"op\":\"gift\",\"id\":\"a/b\"," OP_FIELDS "}",
	    "{\"op\":\"gift\",\"id\":true," OP_FIELDS "}",
	    "{\"op\":\"gift\",\"id\":1234567890123456789," OP_FIELDS "}",
	    "{\"op\":\"gift\",\"id\":07," OP_FIELDS "}",
	    OP_PLAIN "x",
	    OP_PLAIN "{}",
	    "{\"op\":\"gift\"",
	    "{\"op\":\"gift\",\"id\":7," OP_FIELDS ",}",
	    "[" OP_PLAIN "]",
	};
	static const char *const counts[] = {"3.0", "\"3\"", "-3",    "03",
	                                     "3e0", "0",     "10000", "null"};
	struct gw_gift g;
	char id[80], msg[1024];

	(void)state;
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
		assert_false(gw_gift_parse_op(other[i], strlen(other[i]), &g, id, sizeof(id)));
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		snprintf(msg, sizeof(msg),
		         "{\"op\":\"gift\",\"uid\":\"viewer_42\",\"gift\":\"rose\",\"count\":%s,"
		         "\"txn\":\"t-0001\",\"ts\":1700000000000,"
		         "\"nonce\":\"00112233445566778899aabbccddeeff\",\"sig\":\"" EX_SIG64 "\"}",
		         counts[i]);
		assert_false(gw_gift_parse_op(msg, strlen(msg), &g, id, sizeof(id)));
	}
	/* A signature that is not 64 bytes of base64: the full path words the error. */
	snprintf(msg, sizeof(msg), "%s", OP_PLAIN);
	*strstr(msg, "==\"}") = 'A';
	assert_false(gw_gift_parse_op(msg, strlen(msg), &g, id, sizeof(id)));
}

/*
 * Thousands of one- and two-byte mutations of plain messages (deleted,
 * replaced or inserted bytes, chosen among JSON's own characters): whatever
 * the plain parser accepts, the full path accepts with the same gift and id.
 */
static void test_plain_op_never_accepts_more_than_the_full_path(void **state)
{
	static const char alphabet[] = "{}[]:,\"\\ \t\n0123456789-+.eEaz_/ufnlt\x01\x7f\xc3";
	static const char *const seeds[] = {
	    OP_PLAIN,
	    "{\"op\": \"gift\", \"id\": \"x\", \"uid\": \"viewer_42\", \"gift\": \"rose\", "
	    "\"count\": 3, \"txn\": \"t-0001\", \"ts\": 1700000000000, \"nonce\": "
	    "\"00112233445566778899aabbccddeeff\", \"sig\": \"" EX_SIG64 "\"}",
	};
	uint32_t rnd = 12345;
	unsigned accepted = 0;
	char msg[1024];

	(void)state;
	for (unsigned n = 0; n < 40000; n++) {
		const char *seed = seeds[n % 2];
		size_t len = strlen(seed);

		memcpy(msg, seed, len);
		for (unsigned m = 0; m < 1 + n % 2; m++) {
			size_t at;
			char c;

			rnd = rnd * 1103515245u + 12345u;
			at = (rnd >> 8) % (len + 1);
			c = alphabet[(rnd >> 20) % (sizeof(alphabet) - 1)];
			switch ((rnd >> 4) % 3) {
			case 0: /* delete */
				if (at < len) {
					memmove(msg + at, msg + at + 1, len - at - 1);
					len--;
				}
				break;
			case 1: /* replace */
				if (at < len)
					msg[at] = c;
				break;
			default: /* insert */
				memmove(msg + at + 1, msg + at, len - at);
				msg[at] = c;
				len++;
			}
		}
		accepted += plain_agrees(msg, len);
	}
	/* Harmless mutations (whitespace, a different digit or letter) keep some accepted. */
	assert_true(accepted > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canonical_bytes_of_the_documented_example),
		cmocka_unit_test(test_documented_signature_and_public_key),
		cmocka_unit_test(test_canonical_refuses_what_the_grammar_refuses),
		cmocka_unit_test(test_longest_gift_fits_the_buffer_constant),
		cmocka_unit_test(test_json_example_parses_into_the_struct),
		cmocka_unit_test(test_json_missing_or_mistyped_members_are_bad_field),
		cmocka_unit_test(test_json_uid_and_txn),
		cmocka_unit_test(test_json_gift_id),
		cmocka_unit_test(test_json_count),
		cmocka_unit_test(test_json_ts),
		cmocka_unit_test(test_json_nonce),
		cmocka_unit_test(test_json_sig),
		cmocka_unit_test(test_verify_binds_every_signed_field),
		cmocka_unit_test(test_receipt_canonical_bytes),
		cmocka_unit_test(test_receipt_json_and_signature),
		cmocka_unit_test(test_receipt_documented_example),
		cmocka_unit_test(test_plain_op_accepts_the_usual_forms),
		cmocka_unit_test(test_plain_op_leaves_the_rest_to_the_full_path),
		cmocka_unit_test(test_plain_op_never_accepts_more_than_the_full_path),
	};
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
