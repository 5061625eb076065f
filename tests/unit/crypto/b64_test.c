/*
 * Tests for crypto/b64.c: the RFC 4648 section 10 vectors, the refusals that
 * make the decoding canonical (padding, alphabet, whitespace, trailing bits,
 * capacity), random round trips, and a differential check against libsodium's
 * own strict decoder over random near-base64 strings. Lowercase hex likewise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "crypto/b64.h"

#include <sodium.h>
#include <string.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static const struct {
	const char *plain, *b64;
} rfc4648[] = {
	{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
	{"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
};

static void test_rfc4648_vectors_encode(void **state)
{
	char out[16];

	(void)state;
	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		size_t n = strlen(rfc4648[i].plain);

		memset(out, 'x', sizeof(out));
		assert_int_equal(cr_b64_encoded_len(n), strlen(rfc4648[i].b64));
		assert_int_equal(cr_b64_encode((const unsigned char *)rfc4648[i].plain, n, out),
				 strlen(rfc4648[i].b64));
		assert_string_equal(out, rfc4648[i].b64);
	}
	assert_int_equal(cr_b64_encoded_len(64), 88);
}

static void test_rfc4648_vectors_decode(void **state)
{
	unsigned char out[16];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		const char *b = rfc4648[i].b64;

		n = 99;
		assert_int_equal(cr_b64_decode(b, strlen(b), out, sizeof(out), &n), 0);
		assert_int_equal(n, strlen(rfc4648[i].plain));
		assert_memory_equal(out, rfc4648[i].plain, n);
		/* Exactly enough room is enough. */
		assert_int_equal(cr_b64_decode(b, strlen(b), out, n, &n), 0);
	}
}

static int dec(const char *s, size_t len)
{
	unsigned char out[64];
	size_t n;

	return cr_b64_decode(s, len, out, sizeof(out), &n);
}

#define REJECT(lit) assert_int_equal(dec(lit, sizeof(lit) - 1), -1)
#define ACCEPT(lit) assert_int_equal(dec(lit, sizeof(lit) - 1), 0)

static void test_rejects_missing_or_wrong_padding(void **state)
{
	(void)state;
	REJECT("Zg");
	REJECT("Zg=");
	REJECT("Zm8");
	REJECT("Zm9vYg");
	REJECT("Zm9vYmE");
	REJECT("Zg===");
	REJECT("Zm9v=");
	REJECT("Zm9v====");
	REJECT("Zm8==");
	REJECT("Z===");
	REJECT("====");
	REJECT("=Zg=");
	REJECT("Zg=a");
	REJECT("Z");
	/* Padding only at the very end, never between groups. */
	REJECT("Zg==Zg==");
	REJECT("Zm8=Zm9v");
	ACCEPT("Zm9vZm9v");
}

static void test_rejects_characters_outside_the_alphabet(void **state)
{
	(void)state;
	REJECT("Zm9v!A==");
	REJECT("Zm-v");    /* URL-safe alphabet */
	REJECT("Zm_v");
	REJECT("Zm\0v");   /* embedded NUL counts, not terminates */
	REJECT("Zm\xc3\xa9");
	REJECT("Zm.v");
	ACCEPT("+/+/");
}

static void test_rejects_whitespace(void **state)
{
	(void)state;
	REJECT("Zm9v\n");
	REJECT(" Zm9v");
	REJECT("Zm 9v");
	REJECT("Zm9v\r\n");
	REJECT("Zm\t9v");
	REJECT("Zm9vYmFy\nZm9v");
	REJECT("Zg== ");
}

static void test_rejects_nonzero_trailing_bits(void **state)
{
	(void)state;
	ACCEPT("Zg==");
	REJECT("Zh==");
	REJECT("Zv==");
	REJECT("Zm9vYh==");
	ACCEPT("Zm8=");
	REJECT("Zm9=");
	REJECT("Zm+=");
	REJECT("AB==");
	ACCEPT("AA==");
	ACCEPT("AQ==");
}

static void test_rejects_output_past_capacity(void **state)
{
	unsigned char out[6];
	size_t n;

	(void)state;
	assert_int_equal(cr_b64_decode("Zm9vYmFy", 8, out, 5, &n), -1);
	assert_int_equal(cr_b64_decode("Zm9vYmE=", 8, out, 4, &n), -1);
	assert_int_equal(cr_b64_decode("Zm9vYmE=", 8, out, 5, &n), 0);
	assert_int_equal(cr_b64_decode("Zg==", 4, out, 0, &n), -1);
	assert_int_equal(cr_b64_decode("", 0, NULL, 0, &n), 0);
	assert_int_equal(n, 0);
}

static void test_random_round_trips_match_libsodium(void **state)
{
	unsigned char in[300], back[300];
	char ours[410], theirs[410];
	size_t n, blen;

	(void)state;
	for (int iter = 0; iter < 3000; iter++) {
		size_t len = rnd() % sizeof(in);

		for (size_t i = 0; i < len; i++)
			in[i] = (unsigned char)rnd();
		n = cr_b64_encode(in, len, ours);
		assert_int_equal(n, cr_b64_encoded_len(len));
		assert_int_equal(strlen(ours), n);
		sodium_bin2base64(theirs, sizeof(theirs), in, len, sodium_base64_VARIANT_ORIGINAL);
		assert_string_equal(ours, theirs);
		assert_int_equal(cr_b64_decode(ours, n, back, sizeof(back), &blen), 0);
		assert_int_equal(blen, len);
		assert_memory_equal(back, in, len);
	}
}

/*
 * Strings of mostly-valid characters, accepted or refused exactly when
 * libsodium's decoder (no ignore set, whole input required) does, with the
 * same bytes. The bias toward '=' and short lengths hits the padding rules.
 */
static void test_agrees_with_libsodium_on_random_strings(void **state)
{
	static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				    "0123456789+/=====-_ \n";
	unsigned char a[16], b[16];
	char s[20];
	size_t alen, blen, accepted = 0;

	(void)state;
	for (int iter = 0; iter < 200000; iter++) {
		size_t len = rnd() % 13;
		int ra, rb;

		for (size_t i = 0; i < len; i++)
			s[i] = chars[rnd() % (sizeof(chars) - 1)];
		s[len] = 0;
		ra = cr_b64_decode(s, len, a, sizeof(a), &alen);
		rb = sodium_base642bin(b, sizeof(b), s, len, NULL, &blen, NULL,
				       sodium_base64_VARIANT_ORIGINAL);
		if (ra != rb)
			fail_msg("[%s]: ours %d, libsodium %d", s, ra, rb);
		if (!ra) {
			accepted++;
			assert_int_equal(alen, blen);
			assert_memory_equal(a, b, alen);
		}
	}
	/* The generator must exercise the accepting side too. */
	assert_true(accepted > 1000);
}

static void test_hex(void **state)
{
	static const unsigned char bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
	unsigned char out[8];
	char hex[16];
	size_t n;

	(void)state;
	assert_int_equal(cr_hex_encode(bytes, sizeof(bytes), hex), 12);
	assert_string_equal(hex, "00017f80abff");
	assert_int_equal(cr_hex_decode(hex, 12, out, sizeof(out), &n), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(out, bytes, 6);
	assert_int_equal(cr_hex_decode("", 0, out, 0, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(cr_hex_decode("00017F80ABFF", 12, out, sizeof(out), &n), -1);
	assert_int_equal(cr_hex_decode("abc", 3, out, sizeof(out), &n), -1);
	assert_int_equal(cr_hex_decode("0g", 2, out, sizeof(out), &n), -1);
	assert_int_equal(cr_hex_decode("0 ", 2, out, sizeof(out), &n), -1);
	assert_int_equal(cr_hex_decode("0\0", 2, out, sizeof(out), &n), -1);
	assert_int_equal(cr_hex_decode("000102", 6, out, 2, &n), -1);
	assert_int_equal(cr_hex_decode("000102", 6, out, 3, &n), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors_encode),
		cmocka_unit_test(test_rfc4648_vectors_decode),
		cmocka_unit_test(test_rejects_missing_or_wrong_padding),
		cmocka_unit_test(test_rejects_characters_outside_the_alphabet),
		cmocka_unit_test(test_rejects_whitespace),
		cmocka_unit_test(test_rejects_nonzero_trailing_bits),
		cmocka_unit_test(test_rejects_output_past_capacity),
		cmocka_unit_test(test_random_round_trips_match_libsodium),
		cmocka_unit_test(test_agrees_with_libsodium_on_random_strings),
		cmocka_unit_test(test_hex),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
