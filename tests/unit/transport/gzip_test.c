/*
 * Tests for transport/gzip.c: tp_gzip output is a gzip stream that inflates
 * back to the input (sizes 0 to 1 MB, one reused stream), and
 * tp_gzip_accepted reads Accept-Encoding token lists and q=0.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "transport/internal.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static uint64_t rng_state = 0xd1b54a32d192ed03ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

/* Fill with JSON-ish text mixed with random bytes: compressible but not trivially. */
static void fill_random_ish(char *p, size_t n)
{
	static const char *const words[] = {"{\"seq\":", ",\"ts\":", "\"type\":\"danmaku\"",
					    ",\"text\":\"", "\\u0000", "}", ","};
	size_t i = 0;

	while (i < n) {
		if (rnd() % 3) {
			const char *w = words[rnd() % (sizeof(words) / sizeof(words[0]))];
			size_t k = strlen(w);
			if (k > n - i)
				k = n - i;
			memcpy(p + i, w, k);
			i += k;
		} else {
			size_t k = 1 + rnd() % 16;
			for (; k && i < n; k--)
				p[i++] = (char)rnd();
		}
	}
}

/* Inflate a gzip stream (windowBits 15 + 16); returns malloc'd bytes, *out_len. */
static char *gunzip(const char *src, size_t len, size_t expect_len, size_t *out_len)
{
	z_stream z;
	size_t cap = expect_len + 64;
	char *out = malloc(cap);
	int rc;

	assert_non_null(out);
	memset(&z, 0, sizeof(z));
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (Bytef *)(uintptr_t)src;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out;
	z.avail_out = (uInt)cap;
	rc = inflate(&z, Z_FINISH);
	if (rc != Z_STREAM_END)
		fail_msg("inflate returned %d (%s)", rc, z.msg ? z.msg : "");
	/* The whole input is one stream, nothing trailing. */
	assert_int_equal(z.avail_in, 0);
	*out_len = cap - z.avail_out;
	inflateEnd(&z);
	return out;
}

/*
 * Compress src after `prefix` and inflate it back. A tp_gzip failure is
 * reported and counted in *failures (so callers still free what they hold and
 * LeakSanitizer stays quiet); anything else wrong fails at once.
 */
static void check_round_trip(struct tp_gzip *gz, const char *src, size_t len, size_t headroom,
			     const char *prefix, int *failures)
{
	struct gw_buf out;
	size_t plen = strlen(prefix), got_len;
	char *got;

	gw_buf_init(&out, headroom);
	assert_int_equal(gw_buf_puts(&out, prefix), 0);
	if (tp_gzip(gz, src, len, &out) != 0) {
		print_error("tp_gzip failed for %zu input bytes\n", len);
		++*failures;
		gw_buf_free(&out);
		return;
	}
	/* Appended after what was there, headroom intact. */
	assert_true(out.len >= plen + 18); /* gzip header + trailer */
	assert_memory_equal(gw_buf_data(&out), prefix, plen);
	assert_int_equal(gw_buf_data(&out) - out.base, (ptrdiff_t)headroom);
	assert_int_equal((unsigned char)gw_buf_data(&out)[plen], 0x1f);
	assert_int_equal((unsigned char)gw_buf_data(&out)[plen + 1], 0x8b);
	got = gunzip(gw_buf_data(&out) + plen, out.len - plen, len, &got_len);
	assert_int_equal(got_len, len);
	if (len)
		assert_memory_equal(got, src, len);
	free(got);
	gw_buf_free(&out);
}

static const size_t sizes[] = {0, 1, 2, 1000, 65536, 1 << 20};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

/* Half JSON-ish, half random-byte inputs of every size. */
static char *make_input(size_t k, bool incompressible)
{
	char *src = malloc(sizes[k] + 1);

	assert_non_null(src);
	if (incompressible)
		for (size_t i = 0; i < sizes[k]; i++)
			src[i] = (char)rnd();
	else
		fill_random_ish(src, sizes[k]);
	return src;
}

static void test_round_trip_sizes_fresh_stream(void **state)
{
	int failures = 0;

	(void)state;
	for (int inc = 0; inc < 2; inc++)
		for (size_t k = 0; k < NSIZES; k++) {
			struct tp_gzip *gz = tp_gzip_new(6);
			char *src = make_input(k, inc);

			assert_non_null(gz);
			check_round_trip(gz, src, sizes[k], 16, "", &failures);
			free(src);
			tp_gzip_free(gz);
		}
	assert_int_equal(failures, 0);
}

/* The same sizes through one stream: every call after the first reuses it. */
static void test_round_trip_sizes_reused_stream(void **state)
{
	int failures = 0;
	struct tp_gzip *gz = tp_gzip_new(6);

	(void)state;
	assert_non_null(gz);
	for (int inc = 0; inc < 2; inc++)
		for (size_t k = 0; k < NSIZES; k++) {
			char *src = make_input(k, inc);

			check_round_trip(gz, src, sizes[k], 16, "", &failures);
			free(src);
		}
	tp_gzip_free(gz);
	assert_int_equal(failures, 0);
}

static void test_compresses_redundant_input(void **state)
{
	int failures = 0;
	struct tp_gzip *gz = tp_gzip_new(6);
	struct gw_buf out;
	char *src = malloc(100000);

	(void)state;
	assert_non_null(gz);
	assert_non_null(src);
	for (size_t i = 0; i < 100000; i++)
		src[i] = "{\"seq\":1,\"ts\":2,\"type\":\"danmaku\"},"[i % 35];
	gw_buf_init(&out, 0);
	assert_int_equal(tp_gzip(gz, src, 100000, &out), 0);
	assert_true(out.len < 5000);
	gw_buf_free(&out);
	check_round_trip(gz, src, 100000, 0, "", &failures);
	free(src);
	tp_gzip_free(gz);
	assert_int_equal(failures, 0);
}

static void test_reuse_many_times(void **state)
{
	int failures = 0;
	struct tp_gzip *gz = tp_gzip_new(1);
	char *src = malloc(20000);

	(void)state;
	assert_non_null(gz);
	assert_non_null(src);
	for (int i = 0; i < 300; i++) {
		size_t len = (size_t)(rnd() % 20000);

		if (i % 50 == 0)
			len = 0; /* empty responses interleaved */
		fill_random_ish(src, len);
		/* Alternate appending to a buffer that already holds a header. */
		check_round_trip(gz, src, len, (size_t)(i % 3) * 8, i % 2 ? "HTTP/1.1 200 OK\r\n\r\n" : "",
				 &failures);
	}
	free(src);
	tp_gzip_free(gz);
	assert_int_equal(failures, 0);
}

static void test_levels(void **state)
{
	int failures = 0;
	char src[5000];

	(void)state;
	fill_random_ish(src, sizeof(src));
	for (int level = 0; level <= 9; level++) {
		struct tp_gzip *gz = tp_gzip_new(level);

		assert_non_null(gz);
		check_round_trip(gz, src, sizeof(src), 0, "", &failures);
		tp_gzip_free(gz);
	}
	tp_gzip_free(NULL);
	assert_int_equal(failures, 0);
}

static void expect_accepted(const char *ae, bool want)
{
	if (tp_gzip_accepted(ae) != want)
		fail_msg("tp_gzip_accepted(\"%s\") should be %s", ae, want ? "true" : "false");
}

static void test_accepts_gzip_tokens(void **state)
{
	(void)state;
	expect_accepted("gzip", true);
	expect_accepted("GZIP", true);
	expect_accepted("Gzip", true);
	expect_accepted("deflate, gzip;q=0.5", true);
	expect_accepted("deflate,gzip", true);
	expect_accepted("gzip, deflate, br", true);
	expect_accepted("br;q=1.0, gzip;q=0.8, *;q=0.1", true);
	expect_accepted("  gzip  ", true);
	expect_accepted("gzip ; q=1", true);
	expect_accepted("*", true);
	expect_accepted("identity, *", true);
}

static void test_refuses_other_codings(void **state)
{
	(void)state;
	expect_accepted("", false);
	expect_accepted("identity", false);
	expect_accepted("deflate", false);
	expect_accepted("deflate, br", false);
	expect_accepted("x-gzip", false);
	expect_accepted("gzipfoo", false);
	expect_accepted("gzi", false);
	expect_accepted("foo-gzip, bar", false);
	expect_accepted(",,,", false);
	expect_accepted(";q=1", false);
}

static void test_q_zero_refuses(void **state)
{
	(void)state;
	expect_accepted("gzip;q=0", false);
	expect_accepted("gzip;q=0.0", false);
	expect_accepted("gzip;q=0.000", false);
	expect_accepted("deflate, gzip;q=0", false);
	expect_accepted("gzip; q=0", false);
	expect_accepted("*;q=0", false);
	/* A tiny but positive q still allows it. */
	expect_accepted("gzip;q=0.001", true);
}

/*
 * RFC 9110 12.5.3: "*" matches any coding *not explicitly listed*, so an
 * explicit gzip entry decides, wherever it appears in the list.
 */
static void test_explicit_gzip_overrides_wildcard(void **state)
{
	(void)state;
	expect_accepted("gzip;q=0, *", false);
	expect_accepted("*, gzip;q=0", false);
	expect_accepted("*;q=0.5, gzip;q=0", false);
	expect_accepted("*;q=0, gzip", true);
	expect_accepted("*;q=0, gzip;q=0.5", true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_sizes_fresh_stream),
		cmocka_unit_test(test_round_trip_sizes_reused_stream),
		cmocka_unit_test(test_compresses_redundant_input),
		cmocka_unit_test(test_reuse_many_times),
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_accepts_gzip_tokens),
		cmocka_unit_test(test_refuses_other_codings),
		cmocka_unit_test(test_q_zero_refuses),
		cmocka_unit_test(test_explicit_gzip_overrides_wildcard),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
