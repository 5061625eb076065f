/*
 * gw_utf8_valid: every RFC 3629 rule, the 8-byte ASCII fast path at every
 * alignment, and a cross-check against a naive decoder on random bytes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "gateway/utf8.h"

/* Encode cp without any validity check (the tests build invalid input with it too). */
static size_t enc(uint32_t cp, unsigned char *out)
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xc0 | cp >> 6);
		out[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xe0 | cp >> 12);
		out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (unsigned char)(0xf0 | (cp >> 18 & 0x07));
	out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * The reference: decode each sequence by its lead byte's length, then reject
 * what the value says is wrong (overlong, surrogate, too large). Written the
 * textbook way on purpose, unlike the table-driven code under test.
 */
static int ref_valid(const unsigned char *s, size_t len, size_t *chars)
{
	static const uint32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
	size_t i = 0, n = 0, k, l;
	uint32_t cp;

	while (i < len) {
		unsigned char c = s[i];

		if (c < 0x80) {
			l = 1;
			cp = c;
		} else if ((c & 0xe0) == 0xc0) {
			l = 2;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			l = 3;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			l = 4;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (len - i < l)
			return 0;
		for (k = 1; k < l; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min_for_len[l] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return 0;
		i += l;
		n++;
	}
	*chars = n;
	return 1;
}

static void assert_valid(const void *s, size_t len, size_t want_chars)
{
	size_t n = (size_t)-1;

	assert_true(gw_utf8_valid(s, len, &n));
	assert_int_equal(n, want_chars);
	assert_true(gw_utf8_valid(s, len, NULL));
}

static void assert_invalid(const void *s, size_t len)
{
	size_t n = 12345;

	assert_false(gw_utf8_valid(s, len, &n));
	assert_false(gw_utf8_valid(s, len, NULL));
}

static void test_ascii(void **state)
{
	(void)state;
	assert_valid("", 0, 0);
	assert_valid("a", 1, 1);
	assert_valid("hello", 5, 5);
	assert_valid("hello, world!", 13, 13);
	assert_valid("a\0b", 3, 3); /* NUL is U+0000 */
	assert_valid("\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f", 9, 9);
	/* len, not NUL, ends the text */
	assert_valid("abc\xff", 3, 3);
}

static void test_multibyte(void **state)
{
	const char *he = "h\xc3\xa9llo";             /* héllo */
	const char *dm = "\xe5\xbc\xb9\xe5\xb9\x95"; /* 弹幕 */
	const char *emoji = "\xf0\x9f\x98\x80";      /* U+1F600 */
	const char *mix = "a\xc3\xa9\xe5\xbc\xb9\xf0\x9f\x98\x80z";

	(void)state;
	assert_valid(he, strlen(he), 5);
	assert_valid(dm, strlen(dm), 2);
	assert_valid(emoji, strlen(emoji), 1);
	assert_valid(mix, strlen(mix), 5);
}

static void test_overlong(void **state)
{
	(void)state;
	assert_invalid("\xc0\x80", 2);         /* U+0000 in 2 */
	assert_invalid("\xc1\xbf", 2);         /* U+007F in 2 */
	assert_invalid("\xe0\x80\x80", 3);     /* U+0000 in 3 */
	assert_invalid("\xe0\x9f\xbf", 3);     /* U+07FF in 3 */
	assert_invalid("\xf0\x80\x80\x80", 4); /* U+0000 in 4 */
	assert_invalid("\xf0\x8f\xbf\xbf", 4); /* U+FFFF in 4 */
	assert_invalid("a\xc0\xafz", 4);       /* the classic overlong '/' */
}

static void test_surrogates(void **state)
{
	(void)state;
	assert_invalid("\xed\xa0\x80", 3);             /* U+D800 */
	assert_invalid("\xed\xaf\xbf", 3);             /* U+DBFF */
	assert_invalid("\xed\xb0\x80", 3);             /* U+DC00 */
	assert_invalid("\xed\xbf\xbf", 3);             /* U+DFFF */
	assert_invalid("\xed\xa0\xbd\xed\xb8\x80", 6); /* a CESU-8 pair */
	assert_valid("\xed\x9f\xbf", 3, 1);            /* U+D7FF */
	assert_valid("\xee\x80\x80", 3, 1);            /* U+E000 */
}

static void test_too_large(void **state)
{
	char b[4];
	int c;

	(void)state;
	assert_invalid("\xf4\x90\x80\x80", 4); /* U+110000 */
	assert_invalid("\xf4\xbf\xbf\xbf", 4);
	for (c = 0xf5; c <= 0xff; c++) {
		b[0] = (char)c;
		b[1] = b[2] = b[3] = (char)0x80;
		assert_invalid(b, 4);
		assert_invalid(b, 1);
	}
}

static void test_truncated(void **state)
{
	(void)state;
	assert_invalid("\xc3", 1);
	assert_invalid("\xe5\xbc", 2);
	assert_invalid("\xe5", 1);
	assert_invalid("\xf0\x9f\x98", 3);
	assert_invalid("\xf0\x9f", 2);
	assert_invalid("\xf0", 1);
	/* cut short by a non-continuation byte, not by the end */
	assert_invalid("\xc3\x61", 2); /* \x61 is 'a' */
	assert_invalid("\xe5\xbc\x61", 3);
	assert_invalid("\xf0\x9f\x98\x61", 4);
	assert_invalid("\xe5\xbc\xc3\xa9", 4);
	/* the full string is valid; every proper prefix cutting the emoji is not */
	assert_valid("ab\xf0\x9f\x98\x80", 6, 3);
	assert_invalid("ab\xf0\x9f\x98\x80", 5);
	assert_invalid("ab\xf0\x9f\x98\x80", 4);
	assert_invalid("ab\xf0\x9f\x98\x80", 3);
}

static void test_stray_continuation(void **state)
{
	(void)state;
	assert_invalid("\x80", 1);
	assert_invalid("\xbf", 1);
	assert_invalid("a\x80\x62", 3);
	assert_invalid("\xc3\xa9\xa9", 3); /* one continuation too many */
	assert_invalid("\xe5\xbc\xb9\x80", 4);
	assert_invalid("\xf0\x9f\x98\x80\x80", 5);
}

static void test_boundaries(void **state)
{
	static const struct {
		uint32_t cp;
		size_t bytes;
		int valid;
	} cases[] = {
		{0x0, 1, 1},    {0x7f, 1, 1},    {0x80, 2, 1},     {0x7ff, 2, 1},    {0x800, 3, 1},
		{0xd7ff, 3, 1}, {0xd800, 3, 0},  {0xdfff, 3, 0},   {0xe000, 3, 1},   {0xfffd, 3, 1},
		{0xffff, 3, 1}, {0x10000, 4, 1}, {0x10ffff, 4, 1}, {0x110000, 4, 0}, {0x1fffff, 4, 0},
	};
	unsigned char b[8];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = enc(cases[i].cp, b);
		assert_int_equal(n, cases[i].bytes);
		if (cases[i].valid)
			assert_valid(b, n, 1);
		else
			assert_invalid(b, n);
		/* the same inside ASCII, with the fast path on both sides */
		{
			unsigned char big[32];

			memset(big, 'x', sizeof(big));
			memcpy(big + 9, b, n);
			if (cases[i].valid)
				assert_valid(big, sizeof(big), sizeof(big) - n + 1);
			else
				assert_invalid(big, sizeof(big));
		}
	}
}

/*
 * One bad byte at each position of a long mixed string, so it lands at every
 * offset of the 8-byte fast path, in its tail, and inside multibyte chars.
 */
static void test_bad_byte_every_position(void **state)
{
	/* 23 ASCII, é, 弹, 12 ASCII, emoji: 44 bytes, 38 code points */
	const char *base =
	    "The quick brown fox jum\xc3\xa9\xe5\xbc\xb9ps over the \xf0\x9f\x98\x80";
	size_t len = strlen(base), pos, chars;
	unsigned char s[64];
	static const unsigned char bad[] = {0x80, 0xbf, 0xc0, 0xc1, 0xf5, 0xff};
	size_t k;

	(void)state;
	assert_true(len > 41);
	assert_valid(base, len, 38);
	for (pos = 0; pos <= 40; pos++) {
		for (k = 0; k < sizeof(bad); k++) {
			/* a continuation byte for a continuation byte would still be valid */
			if (((unsigned char)base[pos] & 0xc0) == 0x80 && (bad[k] & 0xc0) == 0x80)
				continue;
			memcpy(s, base, len);
			s[pos] = bad[k];
			assert_invalid(s, len);
		}
		/* truncation right there: valid iff pos is a character boundary */
		assert_int_equal(gw_utf8_valid((const char *)base, pos, &chars),
		                 (((unsigned char)base[pos] & 0xc0) != 0x80));
	}
	/* a valid 2-byte char at every position of a pure ASCII run */
	for (pos = 0; pos <= 40; pos++) {
		memset(s, 'a', 42);
		s[pos] = 0xc3;
		s[pos + 1] = 0xa9;
		assert_valid(s, 42, 41);
		s[pos + 1] = 'a'; /* now a truncated sequence */
		assert_invalid(s, 42);
	}
}

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 32);
}

/*
 * Random strings biased to be nearly valid: mostly ASCII runs and encodings
 * of random code points (surrogates and > U+10FFFF included), now and then a
 * random byte or a sequence cut short. Both answers and counts must agree.
 */
static void test_random_vs_reference(void **state)
{
	unsigned char s[256];
	size_t iter, valid = 0, invalid = 0;

	(void)state;
	for (iter = 0; iter < 5000; iter++) {
		size_t len = 0, want = 0, got = 0, target = rnd() % 200;
		int rv;

		while (len < target) {
			uint32_t kind = rnd() % 100, k, cp;
			unsigned char e[4];
			size_t n;

			if (kind < 55) {
				for (k = rnd() % 20; k > 0 && len < sizeof(s); k--)
					s[len++] = (unsigned char)(rnd() % 0x80);
			} else if (kind < 97 || iter % 4 == 0) {
				switch (rnd() % 4) {
				case 0:
					cp = 0x80 + rnd() % 0x780;
					break;
				case 1:
					cp = 0x800 + rnd() % 0xf800;
					break;
				case 2:
					cp = 0x10000 + rnd() % 0x100000;
					break;
				default:
					cp = rnd() % 0x120000; /* some too large */
					break;
				}
				n = enc(cp, e);
				if (iter % 4 == 1 && rnd() % 8 == 0)
					n = 1 + rnd() % n; /* maybe truncated */
				for (k = 0; k < n && len < sizeof(s); k++)
					s[len++] = e[k];
			} else {
				s[len++] = (unsigned char)rnd();
			}
		}
		rv = ref_valid(s, len, &want);
		assert_int_equal(gw_utf8_valid((const char *)s, len, &got), rv);
		if (rv) {
			assert_int_equal(got, want);
			valid++;
		} else {
			invalid++;
		}
	}
	/* the generator must exercise both outcomes in earnest */
	assert_true(valid > 1000);
	assert_true(invalid > 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ascii),
		cmocka_unit_test(test_multibyte),
		cmocka_unit_test(test_overlong),
		cmocka_unit_test(test_surrogates),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_stray_continuation),
		cmocka_unit_test(test_boundaries),
		cmocka_unit_test(test_bad_byte_every_position),
		cmocka_unit_test(test_random_vs_reference),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
