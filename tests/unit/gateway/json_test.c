/*
 * Tests for gateway/json.c: gw_json_put_str escapes exactly '"', '\\' and the
 * control characters, passes UTF-8 through, and json-c reads back the same
 * bytes for random strings over the whole code point range.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "gateway/json.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

/* Encode s[0..len) and compare with the expected literal (hex digits in either case if hex_ci). */
static void expect_encoding_(const char *s, size_t len, const char *want, bool hex_ci)
{
	struct gw_buf b;

	gw_buf_init(&b, 0);
	assert_int_equal(gw_json_put_str(&b, s, len), 0);
	if (b.len != strlen(want) ||
	    (hex_ci ? strncasecmp(gw_buf_data(&b), want, b.len) : memcmp(gw_buf_data(&b), want, b.len)))
		fail_msg("encoded as [%.*s], want [%s]", (int)b.len, gw_buf_data(&b), want);
	gw_buf_free(&b);
}

static void expect_encoding(const char *s, size_t len, const char *want)
{
	expect_encoding_(s, len, want, false);
}

#define EXPECT(lit, want) expect_encoding(lit, sizeof(lit) - 1, want)

static void test_plain_ascii_is_quoted_verbatim(void **state)
{
	(void)state;
	EXPECT("", "\"\"");
	EXPECT("hello", "\"hello\"");
	EXPECT(" !#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}~", "\" !#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}~\"");
	EXPECT("/", "\"/\"");
}

static void test_escapes_quote_and_backslash(void **state)
{
	(void)state;
	EXPECT("\"", "\"\\\"\"");
	EXPECT("\\", "\"\\\\\"");
	EXPECT("a\"b\\c", "\"a\\\"b\\\\c\"");
	EXPECT("\\\"\\\"", "\"\\\\\\\"\\\\\\\"\"");
}

static void test_escapes_short_controls(void **state)
{
	(void)state;
	EXPECT("\n", "\"\\n\"");
	EXPECT("\r", "\"\\r\"");
	EXPECT("\t", "\"\\t\"");
	EXPECT("a\r\nb\tc", "\"a\\r\\nb\\tc\"");
}

static void test_escapes_other_controls_as_u00xx(void **state)
{
	(void)state;
	for (unsigned c = 0; c < 0x20; c++) {
		char in[3] = {'x', (char)c, 'y'}, want[16];

		if (c == '\n' || c == '\r' || c == '\t')
			continue;
		/* JSON allows either case for the hex digits. */
		snprintf(want, sizeof(want), "\"x\\u%04xy\"", c);
		expect_encoding_(in, 3, want, true);
	}
	/* NUL in the middle does not end the string. */
	expect_encoding_("\x1f\x00\x1b", 3, "\"\\u001f\\u0000\\u001b\"", true);
}

static void test_utf8_passes_through(void **state)
{
	(void)state;
	EXPECT("caf\xc3\xa9", "\"caf\xc3\xa9\"");                 /* é */
	EXPECT("\xe5\xbc\xb9\xe5\xb9\x95", "\"\xe5\xbc\xb9\xe5\xb9\x95\""); /* 弹幕 */
	EXPECT("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"");       /* U+1F600 */
	EXPECT("\xe2\x80\xa8\xe2\x80\xa9", "\"\xe2\x80\xa8\xe2\x80\xa9\""); /* U+2028/9 */
	EXPECT("\xc2\x80\xc2\x9f", "\"\xc2\x80\xc2\x9f\"");       /* C1 controls are not ASCII controls */
}

static void test_appends_after_existing_content(void **state)
{
	struct gw_buf b;

	(void)state;
	gw_buf_init(&b, 16);
	assert_int_equal(gw_buf_puts(&b, "{\"a\":"), 0);
	assert_int_equal(gw_json_put_str(&b, "x\ny", 3), 0);
	assert_int_equal(gw_buf_putc(&b, ','), 0);
	/* Force growth mid-buffer with a long string of escapes. */
	char big[3000];
	memset(big, '\x01', sizeof(big));
	assert_int_equal(gw_json_put_str(&b, big, sizeof(big)), 0);
	assert_int_equal(b.len, 5 + 6 + 1 + 2 + 6 * sizeof(big));
	assert_memory_equal(gw_buf_data(&b), "{\"a\":\"x\\ny\",\"", 13);
	for (size_t i = 0; i < sizeof(big); i++)
		assert_memory_equal(gw_buf_data(&b) + 13 + 6 * i, "\\u0001", 6);
	assert_int_equal(gw_buf_data(&b)[b.len - 1], '"');
	assert_int_equal(gw_buf_data(&b) - b.base, 16);
	gw_buf_free(&b);
}

/* Append code point cp as UTF-8; returns bytes written. */
static size_t put_utf8(char *p, uint32_t cp)
{
	if (cp < 0x80) {
		p[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		p[0] = (char)(0xc0 | cp >> 6);
		p[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		p[0] = (char)(0xe0 | cp >> 12);
		p[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		p[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	p[0] = (char)(0xf0 | cp >> 18);
	p[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	p[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	p[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A random scalar value, biased towards the interesting ranges. */
static uint32_t random_code_point(void)
{
	uint32_t cp;

	switch (rnd() % 6) {
	case 0:
		return (uint32_t)(rnd() % 0x20); /* controls, U+0000 included */
	case 1:
		return (uint32_t)(0x20 + rnd() % 0x60); /* printable ASCII, '"' and '\\' */
	case 2:
		return rnd() % 2 ? '"' : '\\';
	case 3:
		return (uint32_t)(0x80 + rnd() % (0x800 - 0x80));
	case 4:
		do
			cp = (uint32_t)(0x800 + rnd() % (0x10000 - 0x800));
		while (cp >= 0xd800 && cp <= 0xdfff);
		return cp;
	default:
		return (uint32_t)(0x10000 + rnd() % (0x110000 - 0x10000));
	}
}

static void test_random_strings_parse_back(void **state)
{
	struct gw_buf b;

	(void)state;
	gw_buf_init(&b, 0);
	for (int iter = 0; iter < 500; iter++) {
		char s[4 * 200 + 1];
		size_t len = 0, ncp = rnd() % 200;
		json_object *o;

		for (size_t k = 0; k < ncp; k++)
			len += put_utf8(s + len, random_code_point());
		gw_buf_reset(&b);
		assert_int_equal(gw_json_put_str(&b, s, len), 0);
		assert_int_equal(gw_buf_putc(&b, '\0'), 0);

		/* The literal never contains a raw control byte. */
		for (size_t i = 0; i + 1 < b.len; i++)
			if ((unsigned char)gw_buf_data(&b)[i] < 0x20)
				fail_msg("iteration %d: raw control byte 0x%02x at %zu", iter,
					 (unsigned char)gw_buf_data(&b)[i], i);

		o = json_tokener_parse(gw_buf_data(&b));
		if (!o)
			fail_msg("iteration %d: json-c refused [%s]", iter, gw_buf_data(&b));
		assert_true(json_object_is_type(o, json_type_string));
		if ((size_t)json_object_get_string_len(o) != len ||
		    memcmp(json_object_get_string(o), s, len))
			fail_msg("iteration %d: round trip changed the string (len %zu -> %d)", iter,
				 len, json_object_get_string_len(o));
		json_object_put(o);
	}
	gw_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_ascii_is_quoted_verbatim),
		cmocka_unit_test(test_escapes_quote_and_backslash),
		cmocka_unit_test(test_escapes_short_controls),
		cmocka_unit_test(test_escapes_other_controls_as_u00xx),
		cmocka_unit_test(test_utf8_passes_through),
		cmocka_unit_test(test_appends_after_existing_content),
		cmocka_unit_test(test_random_strings_parse_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
