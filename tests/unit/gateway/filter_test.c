/*
 * gw_filter: matching, masking and loading, plus a brute-force cross-check
 * of the automaton against a naive search over random words and texts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/filter.h"

static struct gw_filter *mk(size_t n, const char *const *words)
{
	struct gw_filter *f = gw_filter_new(words, n);

	assert_non_null(f);
	return f;
}

/* Mask a copy of in and compare with want; returns the occurrence count. */
static size_t mask_eq(const struct gw_filter *f, const char *in, const char *want)
{
	char buf[512];
	size_t len = strlen(in), hits;

	assert_true(len < sizeof(buf));
	memcpy(buf, in, len);
	hits = gw_filter_mask(f, buf, &len);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(buf, want, len);
	assert_int_equal(gw_filter_matches(f, in, strlen(in)), hits > 0);
	return hits;
}

static void test_single_word(void **state)
{
	const char *w[] = {"bad"};
	struct gw_filter *f = mk(1, w);

	(void)state;
	assert_int_equal(gw_filter_count(f), 1);
	assert_true(gw_filter_matches(f, "bad", 3));
	assert_true(gw_filter_matches(f, "this is bad!", 12));
	assert_false(gw_filter_matches(f, "this is ba", 10));
	assert_false(gw_filter_matches(f, "b a d", 5));
	assert_false(gw_filter_matches(f, "", 0));
	/* len, not NUL, bounds the text */
	assert_false(gw_filter_matches(f, "bad", 2));
	assert_int_equal(mask_eq(f, "this is bad!", "this is ***!"), 1);
	assert_int_equal(mask_eq(f, "bad bad", "*** ***"), 2);
	assert_int_equal(mask_eq(f, "badbad", "******"), 2);
	assert_int_equal(mask_eq(f, "babad", "ba***"), 1);
	gw_filter_free(f);
}

static void test_several_words(void **state)
{
	const char *w[] = {"spam", "scam", "eggs", "ham"};
	struct gw_filter *f = mk(4, w);

	(void)state;
	assert_int_equal(gw_filter_count(f), 4);
	assert_true(gw_filter_matches(f, "green eggs", 10));
	assert_true(gw_filter_matches(f, "a scam", 6));
	assert_false(gw_filter_matches(f, "spa sca egg ha", 14));
	assert_int_equal(mask_eq(f, "spam, eggs and scam", "****, **** and ****"), 3);
	assert_int_equal(mask_eq(f, "shampoo", "s***poo"), 1);
	gw_filter_free(f);
}

static void test_overlapping(void **state)
{
	const char *w[] = {"he", "she", "hers", "his"};
	struct gw_filter *f = mk(4, w);

	(void)state;
	/* she (1..3), he (2..3), hers (2..5) */
	assert_int_equal(mask_eq(f, "ushers", "u*****"), 3);
	assert_int_equal(mask_eq(f, "ahishers", "a*******"), 4);
	assert_int_equal(mask_eq(f, "hehe", "****"), 2);
	gw_filter_free(f);
}

static void test_nested_and_reaching_back(void **state)
{
	/* a long word found only after shorter words inside it were found and closed */
	const char *w[] = {"b", "d", "abcde"};
	const char *w2[] = {"abc", "bcd"};
	struct gw_filter *f = mk(3, w);
	struct gw_filter *g = mk(2, w2);

	(void)state;
	assert_int_equal(mask_eq(f, "xabcdex", "x*****x"), 3);
	assert_int_equal(mask_eq(f, "abcdf", "a*c*f"), 2);
	assert_int_equal(mask_eq(f, "bxd", "*x*"), 2);
	assert_int_equal(mask_eq(g, "abcd", "****"), 2);
	assert_int_equal(mask_eq(g, "xabc-bcdx", "x***-***x"), 2);
	gw_filter_free(f);
	gw_filter_free(g);
}

static void test_case_folding(void **state)
{
	const char *w[] = {"BaD", "\xc3\xa9vil"}; /* évil: É is not ASCII, so no folding */
	struct gw_filter *f = mk(2, w);

	(void)state;
	assert_true(gw_filter_matches(f, "bad", 3));
	assert_true(gw_filter_matches(f, "BAD", 3));
	assert_true(gw_filter_matches(f, "bAd", 3));
	assert_true(gw_filter_matches(f, "\xc3\xa9VIL", 5));
	assert_false(gw_filter_matches(f, "\xc3\x89vil", 5)); /* Évil */
	/* only the match changes; the case of the rest is kept */
	assert_int_equal(mask_eq(f, "So BAD, So Bad", "So ***, So ***"), 2);
	/* non-letters are not folded: '@' (0x40) and '`' (0x60) differ */
	{
		const char *w2[] = {"a@"};
		struct gw_filter *g = mk(1, w2);

		assert_false(gw_filter_matches(g, "a`", 2));
		assert_true(gw_filter_matches(g, "A@", 2));
		gw_filter_free(g);
	}
	gw_filter_free(f);
}

static void test_cjk(void **state)
{
	const char *w[] = {"\xe5\x9d\x8f\xe8\x9b\x8b", "\xe8\x9b\x8b\xe7\xb3\x95"}; /* 坏蛋, 蛋糕 */
	struct gw_filter *f = mk(2, w);

	(void)state;
	assert_int_equal(mask_eq(f, "you are a \xe5\x9d\x8f\xe8\x9b\x8b!", "you are a **!"), 1);
	/* 坏蛋糕: overlapping, three characters */
	assert_int_equal(mask_eq(f, "\xe5\x9d\x8f\xe8\x9b\x8b\xe7\xb3\x95", "***"), 2);
	/* 坏 alone, and 蛋 followed by something else */
	assert_int_equal(mask_eq(f, "\xe5\x9d\x8f \xe8\x9b\x8b", "\xe5\x9d\x8f \xe8\x9b\x8b"), 0);
	/* mixed widths in one run: ASCII word next to a CJK one */
	{
		const char *w2[] = {"ab", "b\xe5\x9d\x8f", "\xf0\x9f\x98\x80"};
		struct gw_filter *g = mk(3, w2);

		assert_int_equal(mask_eq(g, "xab\xe5\x9d\x8fy\xf0\x9f\x98\x80", "x***y*"), 3);
		gw_filter_free(g);
	}
	gw_filter_free(f);
}

static void test_adjacent_merge(void **state)
{
	const char *w[] = {"ab", "cd"};
	struct gw_filter *f = mk(2, w);

	(void)state;
	assert_int_equal(mask_eq(f, "xabcdx", "x****x"), 2);
	assert_int_equal(mask_eq(f, "abcdab", "******"), 3);
	assert_int_equal(mask_eq(f, "ab.cd", "**.**"), 2);
	gw_filter_free(f);
}

static void test_no_match_untouched(void **state)
{
	const char *w[] = {"bad", "\xe5\x9d\x8f\xe8\x9b\x8b"};
	struct gw_filter *f = mk(2, w);
	char buf[64] = "all good here \xe5\x9d\x8f, ba-d";
	char copy[64];
	size_t len = strlen(buf);

	(void)state;
	memcpy(copy, buf, sizeof(buf));
	assert_int_equal(gw_filter_mask(f, buf, &len), 0);
	assert_int_equal(len, strlen(copy));
	assert_memory_equal(buf, copy, sizeof(buf));
	len = 0;
	assert_int_equal(gw_filter_mask(f, buf, &len), 0);
	assert_int_equal(len, 0);
	gw_filter_free(f);
}

static void test_empty_and_duplicates(void **state)
{
	const char *empties[] = {"", ""};
	const char *dups[] = {"he", "HE", "", "he", "hE"};
	const char *invalid[] = {"ok", "\xc0\x80", "\x80"};
	struct gw_filter *f;

	(void)state;
	f = gw_filter_new(NULL, 0);
	assert_non_null(f);
	assert_int_equal(gw_filter_count(f), 0);
	assert_false(gw_filter_matches(f, "anything", 8));
	assert_int_equal(mask_eq(f, "anything", "anything"), 0);
	gw_filter_free(f);

	f = mk(2, empties);
	assert_int_equal(gw_filter_count(f), 0);
	assert_int_equal(mask_eq(f, "text", "text"), 0);
	gw_filter_free(f);

	/* duplicates (after folding) count once, and a match counts once */
	f = mk(5, dups);
	assert_int_equal(gw_filter_count(f), 1);
	assert_int_equal(mask_eq(f, "hehe", "****"), 2);
	gw_filter_free(f);

	/* invalid UTF-8 words are dropped: they could split a character */
	f = mk(3, invalid);
	assert_int_equal(gw_filter_count(f), 1);
	assert_int_equal(mask_eq(f, "\xc3\x80k", "\xc3\x80k"), 0);
	gw_filter_free(f);
}

static void write_file(char *path, const char *data, size_t len)
{
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static void test_load(void **state)
{
	static const char data[] = "# blocked words\n"
	                           "\n"
	                           "  bad  \r\n"
	                           "Worse\r\n"
	                           "\t\xe5\x9d\x8f\xe8\x9b\x8b\t\n"
	                           "   \n"
	                           "#notaword\n"
	                           "two words\n"
	                           "last"; /* no final newline */
	char path[] = "/tmp/filter_test_XXXXXX";
	char err[256];
	struct gw_filter *f;

	(void)state;
	write_file(path, data, sizeof(data) - 1);
	f = gw_filter_load(path, err, sizeof(err));
	unlink(path);
	assert_non_null(f);
	assert_int_equal(gw_filter_count(f), 5);
	assert_int_equal(mask_eq(f, "bad, WORSE, \xe5\x9d\x8f\xe8\x9b\x8b, two words, last",
	                         "***, *****, **, *********, ****"),
	                 5);
	/* comment lines are not words (and the trimming shows in the mask above) */
	assert_false(gw_filter_matches(f, "notaword", 8));
	assert_false(gw_filter_matches(f, "# blocked words", 15));
	gw_filter_free(f);
}

static void test_load_invalid_utf8(void **state)
{
	static const char data[] = "good\n# fine\nb\xc0\x80\x64\nalso good\n"; /* \x64 is 'd' */
	char path[] = "/tmp/filter_test_XXXXXX";
	char err[256];
	struct gw_filter *f;

	(void)state;
	write_file(path, data, sizeof(data) - 1);
	err[0] = '\0';
	f = gw_filter_load(path, err, sizeof(err));
	unlink(path);
	assert_null(f);
	assert_non_null(strstr(err, ":3:"));
	assert_non_null(strstr(err, "UTF-8"));

	/* a missing file fails with a message too */
	err[0] = '\0';
	assert_null(gw_filter_load(path, err, sizeof(err)));
	assert_true(strlen(err) > 0);
	/* err is optional */
	assert_null(gw_filter_load(path, NULL, 0));
}

static void test_load_empty_file(void **state)
{
	char path[] = "/tmp/filter_test_XXXXXX";
	char err[64];
	struct gw_filter *f;

	(void)state;
	write_file(path, "# nothing\n\n", 11);
	f = gw_filter_load(path, err, sizeof(err));
	unlink(path);
	assert_non_null(f);
	assert_int_equal(gw_filter_count(f), 0);
	assert_false(gw_filter_matches(f, "# nothing", 9));
	gw_filter_free(f);
}

/* ---- brute force ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 32);
}

/* The alphabet: ASCII letters in both cases (so folding matters) and wider characters. */
static const char *const units[] = {
    "a", "b", "A", "B", "c", "\xc3\xa9", "\xe5\x9d\x8f", "\xf0\x9f\x98\x80"};
#define NUNITS (sizeof(units) / sizeof(units[0]))

static size_t rand_string(char *out, size_t min_units, size_t max_units)
{
	size_t n = min_units + rnd() % (max_units - min_units + 1), len = 0, i;

	for (i = 0; i < n; i++) {
		const char *u = units[rnd() % NUNITS];

		memcpy(out + len, u, strlen(u));
		len += strlen(u);
	}
	out[len] = '\0';
	return len;
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

static int ieq(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (lower(a[i]) != lower(b[i]))
			return 0;
	return 1;
}

/*
 * The naive way: try every word at every position, mark covered bytes, then
 * write '*' for each covered character start. Duplicate words (after
 * folding) are one word, as in the filter.
 */
static size_t naive_mask(char words[][32], size_t nw, const char *text, size_t len, char *out,
                         size_t *outlen)
{
	unsigned char covered[512] = {0};
	size_t hits = 0, i, j, k, w = 0;

	for (i = 0; i < nw; i++) {
		size_t wl = strlen(words[i]);
		int dup = 0;

		for (k = 0; k < i && !dup; k++)
			dup = strlen(words[k]) == wl && ieq(words[k], words[i], wl);
		if (dup)
			continue;
		for (j = 0; j + wl <= len; j++) {
			if (!ieq(text + j, words[i], wl))
				continue;
			hits++;
			memset(covered + j, 1, wl);
		}
	}
	for (i = 0; i < len; i++) {
		if (!covered[i])
			out[w++] = text[i];
		else if (((unsigned char)text[i] & 0xc0) != 0x80)
			out[w++] = '*';
	}
	*outlen = w;
	return hits;
}

static void test_brute_force(void **state)
{
	enum { NW = 200, NT = 500 };
	static char words[NW][32];
	const char *ptrs[NW];
	struct gw_filter *f;
	size_t i, matched = 0;

	(void)state;
	for (i = 0; i < NW; i++) {
		/* mostly 3..6 characters, a few of 2 so short words overlap long ones */
		if (i % 25 == 0)
			rand_string(words[i], 2, 2);
		else
			rand_string(words[i], 3, 6);
		ptrs[i] = words[i];
	}
	f = mk(NW, ptrs);
	for (i = 0; i < NT; i++) {
		char text[512], buf[512], want[512];
		/* long texts nearly always match, short ones mostly not: take both */
		size_t len = rand_string(text, 0, i % 2 ? 8 : 50), wantlen, buflen = len, hits,
		       nhits;

		nhits = naive_mask(words, NW, text, len, want, &wantlen);
		assert_int_equal(gw_filter_matches(f, text, len), nhits > 0);
		memcpy(buf, text, len);
		hits = gw_filter_mask(f, buf, &buflen);
		assert_int_equal(hits, nhits);
		assert_int_equal(buflen, wantlen);
		assert_memory_equal(buf, want, wantlen);
		matched += nhits > 0;
	}
	/* both outcomes must be exercised for the comparison to mean anything */
	assert_true(matched > NT / 10);
	assert_true(matched < NT - NT / 10);
	gw_filter_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_word),
		cmocka_unit_test(test_several_words),
		cmocka_unit_test(test_overlapping),
		cmocka_unit_test(test_nested_and_reaching_back),
		cmocka_unit_test(test_case_folding),
		cmocka_unit_test(test_cjk),
		cmocka_unit_test(test_adjacent_merge),
		cmocka_unit_test(test_no_match_untouched),
		cmocka_unit_test(test_empty_and_duplicates),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_load_invalid_utf8),
		cmocka_unit_test(test_load_empty_file),
		cmocka_unit_test(test_brute_force),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
