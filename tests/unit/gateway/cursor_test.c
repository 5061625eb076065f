/*
 * Tests for gateway/cursor.c: "<16 lowercase hex>-<decimal seq>" round trips
 * for random and extreme values, and the parser refuses every other spelling.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "gateway/cursor.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* xorshift64*: deterministic pseudo-random values so failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

/* Format c, check the text against snprintf's spelling, parse it back. */
static void check_round_trip(uint64_t epoch, uint64_t seq)
{
	char out[GW_CURSOR_MAX + 8], want[64];
	struct gw_cursor c = {epoch, seq}, back = {~epoch, ~seq};
	size_t n;

	memset(out, 'Z', sizeof(out));
	n = gw_cursor_format(out, c);
	snprintf(want, sizeof(want), "%016" PRIx64 "-%" PRIu64, epoch, seq);
	assert_int_equal(n, strlen(want));
	assert_true(n < GW_CURSOR_MAX);
	assert_string_equal(out, want);
	assert_int_equal(gw_cursor_parse(out, n, &back), 0);
	assert_true(back.epoch == epoch);
	assert_true(back.seq == seq);
}

static void test_round_trip_extremes(void **state)
{
	(void)state;
	check_round_trip(0, 0);
	check_round_trip(0, UINT64_MAX);
	check_round_trip(UINT64_MAX, 0);
	check_round_trip(UINT64_MAX, UINT64_MAX);
	check_round_trip(0x0123456789abcdefull, 1);
	check_round_trip(1, 10);
	check_round_trip(0xfedcba9876543210ull, 18446744073709551614ull);
}

static void test_round_trip_random(void **state)
{
	(void)state;
	for (int i = 0; i < 20000; i++) {
		uint64_t e = rnd(), s = rnd();

		/* Vary the seq's digit count: shift by 0..63 bits. */
		s >>= rnd() % 64;
		check_round_trip(e, s);
	}
}

static void expect_reject(const char *s, size_t len)
{
	struct gw_cursor c = {0x1111, 0x2222};

	if (gw_cursor_parse(s, len, &c) != -1)
		fail_msg("cursor \"%.*s\" (len %zu) was accepted", (int)len, s, len);
}

#define REJECT(lit) expect_reject(lit, sizeof(lit) - 1)

static void test_rejects_wrong_length(void **state)
{
	(void)state;
	REJECT("");
	REJECT("0123456789abcde-1");    /* 15 hex digits */
	REJECT("0123456789abcdef0-1");  /* 17 hex digits */
	REJECT("0123456789abcdef-");    /* no seq */
	REJECT("0123456789abcdef");     /* no '-' and no seq */
	/* 21 seq digits: longer than any uint64. */
	REJECT("0123456789abcdef-100000000000000000000");
	expect_reject("0123456789abcdef-1", 0);
	expect_reject("0123456789abcdef-1", 17);
}

static void test_rejects_uppercase_hex(void **state)
{
	(void)state;
	REJECT("0123456789ABCDEF-1");
	REJECT("0123456789abcdeF-1");
	REJECT("A123456789abcdef-1");
}

static void test_rejects_missing_dash(void **state)
{
	(void)state;
	REJECT("0123456789abcdef_1");
	REJECT("0123456789abcdef+1");
	REJECT("0123456789abcdef01");
	REJECT("0123456789abcdef 1");
}

static void test_rejects_leading_zero(void **state)
{
	(void)state;
	REJECT("0123456789abcdef-01");
	REJECT("0123456789abcdef-00");
	REJECT("0123456789abcdef-0018446744073709551");
	/* "0" itself is the one spelling of zero. */
	struct gw_cursor c;
	assert_int_equal(gw_cursor_parse("0123456789abcdef-0", 18, &c), 0);
	assert_true(c.seq == 0);
}

static void test_rejects_non_digits(void **state)
{
	(void)state;
	REJECT("0123456789abcdeg-1");
	REJECT("0123456789abcde -1");
	REJECT("x123456789abcdef-1");
	REJECT("0123456789abcdef-1a");
	REJECT("0123456789abcdef--1");
	REJECT("0123456789abcdef-+1");
	REJECT("0123456789abcdef-1.0");
	REJECT("0123456789abcdef-1e3");
	REJECT("0123456789abcdef-12 ");
	/* An embedded NUL is not a digit either. */
	expect_reject("0123456789abcdef-1\0" "2", 20);
	expect_reject("0123456789abcdef\0" "12", 19);
}

static void test_rejects_overflow(void **state)
{
	struct gw_cursor c;

	(void)state;
	REJECT("0123456789abcdef-18446744073709551616");  /* UINT64_MAX + 1 */
	REJECT("0123456789abcdef-18446744073709551620");
	REJECT("0123456789abcdef-99999999999999999999");
	REJECT("0123456789abcdef-28446744073709551615");
	assert_int_equal(gw_cursor_parse("0123456789abcdef-18446744073709551615", 37, &c), 0);
	assert_true(c.seq == UINT64_MAX);
	assert_true(c.epoch == 0x0123456789abcdefull);
}

static void test_rejects_trailing_garbage(void **state)
{
	(void)state;
	REJECT("0123456789abcdef-12x");
	REJECT("0123456789abcdef-12-");
	REJECT("0123456789abcdef-12\n");
	REJECT("0123456789abcdef-0x");
}

static void test_parse_honours_len_not_nul(void **state)
{
	struct gw_cursor c;
	const char *s = "00000000000000ff-1234999";

	(void)state;
	/* Only the first len bytes count: the trailing "999" is outside. */
	assert_int_equal(gw_cursor_parse(s, 21, &c), 0);
	assert_true(c.epoch == 0xff);
	assert_true(c.seq == 1234);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_extremes),
		cmocka_unit_test(test_round_trip_random),
		cmocka_unit_test(test_rejects_wrong_length),
		cmocka_unit_test(test_rejects_uppercase_hex),
		cmocka_unit_test(test_rejects_missing_dash),
		cmocka_unit_test(test_rejects_leading_zero),
		cmocka_unit_test(test_rejects_non_digits),
		cmocka_unit_test(test_rejects_overflow),
		cmocka_unit_test(test_rejects_trailing_garbage),
		cmocka_unit_test(test_parse_honours_len_not_nul),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
