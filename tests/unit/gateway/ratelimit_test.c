/*
 * gw_ratelimit: bucket arithmetic (burst, exact retry_after_ms, refill), key
 * independence, the LRU bound, and exact accounting under concurrency.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "gateway/ratelimit.h"

static bool take(struct gw_ratelimit *rl, const char *key, int64_t now, int64_t *retry)
{
	return gw_ratelimit_take(rl, key, strlen(key), now, retry);
}

static void test_bad_args(void **state)
{
	(void)state;
	assert_null(gw_ratelimit_new(0, 1, 10));
	assert_null(gw_ratelimit_new(-1, 1, 10));
	assert_null(gw_ratelimit_new(NAN, 1, 10));
	assert_null(gw_ratelimit_new(INFINITY, 1, 10));
	assert_null(gw_ratelimit_new(1, 0.5, 10));
	assert_null(gw_ratelimit_new(1, NAN, 10));
	assert_null(gw_ratelimit_new(1, 1, 0));
}

static void test_burst_then_deny(void **state)
{
	struct gw_ratelimit *rl = gw_ratelimit_new(1, 5, 100);
	int64_t retry = -1;
	int i;

	(void)state;
	assert_non_null(rl);
	for (i = 0; i < 5; i++)
		assert_true(take(rl, "u1", 1000, &retry));
	assert_int_equal(retry, -1); /* untouched on success */
	assert_false(take(rl, "u1", 1000, &retry));
	assert_int_equal(retry, 1000);
	/* denials take nothing: still one second away */
	assert_false(take(rl, "u1", 1000, NULL));
	assert_false(take(rl, "u1", 1000, &retry));
	assert_int_equal(retry, 1000);
	assert_int_equal(gw_ratelimit_keys(rl), 1);
	gw_ratelimit_free(rl);
}

/*
 * After draining, probe every millisecond: the wait must be exactly
 * ceil(deficit / rate), and a take at the announced time must succeed. Integer
 * rates give an exact integer expectation; probing each ms also refills in
 * many small floating-point steps.
 */
static void test_retry_after_exact(void **state)
{
	/*
	 * 25, 40, 50 and 100 need the slack: without it some waits come out 1 ms
	 * long, and at 100/s the take at the announced time is refused.
	 */
	static const int64_t rates[] = {1, 2, 3, 7, 10, 25, 40, 50, 100, 250, 999};
	size_t k;

	(void)state;
	for (k = 0; k < sizeof(rates) / sizeof(rates[0]); k++) {
		int64_t r = rates[k], t, retry = 0, ready = (1000 + r - 1) / r;
		struct gw_ratelimit *rl = gw_ratelimit_new((double)r, 1, 10);

		assert_non_null(rl);
		assert_true(take(rl, "k", 0, NULL));
		for (t = 0; t < ready; t++) {
			/* deficit in milli-tokens: 1000 - t * r; wait = ceil(deficit / r) ms */
			int64_t want = (1000 - t * r + r - 1) / r;

			assert_false(take(rl, "k", t, &retry));
			assert_int_equal(retry, want);
			assert_true(retry >= 1);
			assert_int_equal(t + retry, ready);
		}
		assert_true(take(rl, "k", ready, NULL));
		assert_false(take(rl, "k", ready, &retry));
		assert_int_equal(retry, ready);
		gw_ratelimit_free(rl);
	}
}

static void test_fractional_rate(void **state)
{
	struct gw_ratelimit *rl = gw_ratelimit_new(1.5, 2.5, 10);
	int64_t retry = 0;

	(void)state;
	assert_non_null(rl);
	/* burst 2.5: two whole tokens, then half a token left */
	assert_true(take(rl, "k", 0, NULL));
	assert_true(take(rl, "k", 0, NULL));
	assert_false(take(rl, "k", 0, &retry));
	/* 0.5 token at 1.5/s: 333.33 ms */
	assert_int_equal(retry, 334);
	assert_false(take(rl, "k", 333, &retry));
	assert_int_equal(retry, 1);
	assert_true(take(rl, "k", 334, NULL));
	/* 0.001 token left: 0.999 more at 1.5/s is 666 ms */
	assert_false(take(rl, "k", 334, &retry));
	assert_int_equal(retry, 666);
	gw_ratelimit_free(rl);
}

static void test_refill(void **state)
{
	struct gw_ratelimit *rl = gw_ratelimit_new(2, 4, 10);
	int64_t retry;
	int i;

	(void)state;
	assert_non_null(rl);
	for (i = 0; i < 4; i++)
		assert_true(take(rl, "k", 5000, NULL));
	assert_false(take(rl, "k", 5000, NULL));
	/* 1.5 s at 2/s: three tokens */
	for (i = 0; i < 3; i++)
		assert_true(take(rl, "k", 6500, NULL));
	assert_false(take(rl, "k", 6500, &retry));
	assert_int_equal(retry, 500);
	/* a long idle period refills only up to burst */
	for (i = 0; i < 4; i++)
		assert_true(take(rl, "k", 1000000, NULL));
	assert_false(take(rl, "k", 1000000, NULL));
	/* time going backwards refills nothing and does not reset the clock */
	assert_false(take(rl, "k", 0, &retry));
	assert_int_equal(retry, 500);
	assert_false(take(rl, "k", 1000499, NULL));
	assert_true(take(rl, "k", 1000500, NULL));
	gw_ratelimit_free(rl);
}

static void test_extreme_values(void **state)
{
	struct gw_ratelimit *rl = gw_ratelimit_new(1, 2, 10);
	struct gw_ratelimit *slow = gw_ratelimit_new(1e-300, 1, 10);
	int64_t retry = 0;

	(void)state;
	assert_non_null(rl);
	assert_non_null(slow);
	/* the whole int64 range between two takes: no overflow, bucket just refills */
	assert_true(take(rl, "k", INT64_MIN, NULL));
	assert_true(take(rl, "k", INT64_MIN, NULL));
	assert_false(take(rl, "k", INT64_MIN, NULL));
	assert_true(take(rl, "k", INT64_MAX, NULL));
	assert_true(take(rl, "k", INT64_MAX, NULL));
	assert_false(take(rl, "k", INT64_MAX, &retry));
	assert_int_equal(retry, 1000);
	/* a wait too long for int64 saturates */
	assert_true(take(slow, "k", 0, NULL));
	assert_false(take(slow, "k", 0, &retry));
	assert_true(retry == INT64_MAX);
	gw_ratelimit_free(rl);
	gw_ratelimit_free(slow);
}

static void test_independent_keys(void **state)
{
	struct gw_ratelimit *rl = gw_ratelimit_new(1, 2, 100);
	char big1[1000], big2[1000];

	(void)state;
	assert_non_null(rl);
	assert_true(take(rl, "alice", 0, NULL));
	assert_true(take(rl, "alice", 0, NULL));
	assert_false(take(rl, "alice", 0, NULL));
	assert_true(take(rl, "bob", 0, NULL));
	assert_true(take(rl, "alicf", 0, NULL));
	/* the length is part of the key; bytes past keylen are not */
	assert_true(gw_ratelimit_take(rl, "alice", 4, 0, NULL));
	assert_false(gw_ratelimit_take(rl, "alice!!", 5, 0, NULL));
	assert_true(gw_ratelimit_take(rl, "", 0, 0, NULL));
	/* long keys that differ only in the last byte */
	memset(big1, 'x', sizeof(big1));
	memcpy(big2, big1, sizeof(big2));
	big2[sizeof(big2) - 1] = 'y';
	assert_true(gw_ratelimit_take(rl, big1, sizeof(big1), 0, NULL));
	assert_true(gw_ratelimit_take(rl, big1, sizeof(big1), 0, NULL));
	assert_false(gw_ratelimit_take(rl, big1, sizeof(big1), 0, NULL));
	assert_true(gw_ratelimit_take(rl, big2, sizeof(big2), 0, NULL));
	assert_int_equal(gw_ratelimit_keys(rl), 7);
	gw_ratelimit_free(rl);
}

/*
 * A drained key that is still tracked is denied; a forgotten one starts over
 * with a full bucket. That tells which key the LRU evicted.
 */
static void test_lru_eviction(void **state)
{
	struct gw_ratelimit *rl = gw_ratelimit_new(0.001, 1, 4);

	(void)state;
	assert_non_null(rl);
	assert_true(take(rl, "a", 0, NULL));
	assert_true(take(rl, "b", 1, NULL));
	assert_true(take(rl, "c", 2, NULL));
	assert_true(take(rl, "d", 3, NULL));
	assert_int_equal(gw_ratelimit_keys(rl), 4);
	assert_false(take(rl, "a", 4, NULL)); /* a denied take still makes a recent */
	assert_true(take(rl, "e", 5, NULL));  /* evicts b, now the least recent */
	assert_int_equal(gw_ratelimit_keys(rl), 4);
	assert_false(take(rl, "a", 6, NULL));
	assert_false(take(rl, "c", 7, NULL));
	assert_false(take(rl, "d", 8, NULL));
	assert_false(take(rl, "e", 9, NULL));
	assert_int_equal(gw_ratelimit_keys(rl), 4);
	assert_true(take(rl, "b", 10, NULL)); /* forgotten: full again; evicts a */
	assert_int_equal(gw_ratelimit_keys(rl), 4);
	assert_false(take(rl, "c", 11, NULL));
	assert_true(take(rl, "a", 12, NULL)); /* forgotten too */
	gw_ratelimit_free(rl);
}

/* Eviction reuses the old entry's memory: a longer key must not overrun it. */
static void test_eviction_key_sizes(void **state)
{
	struct gw_ratelimit *rl = gw_ratelimit_new(0.001, 1, 1);
	char big[300];
	size_t len;

	(void)state;
	assert_non_null(rl);
	memset(big, 'k', sizeof(big));
	for (len = 1; len <= sizeof(big); len += 37) {
		big[0] = (char)('a' + len % 26); /* differs from the previous key */
		assert_true(gw_ratelimit_take(rl, big, len, 0, NULL));
		assert_false(gw_ratelimit_take(rl, big, len, 0, NULL));
		assert_int_equal(gw_ratelimit_keys(rl), 1);
	}
	/* and shorter again */
	assert_true(take(rl, "x", 0, NULL));
	assert_false(take(rl, "x", 0, NULL));
	gw_ratelimit_free(rl);
}

/* A larger table is striped; the bound must still hold exactly. */
static void test_bound_many_keys(void **state)
{
	const size_t max = 1000;
	struct gw_ratelimit *rl = gw_ratelimit_new(1, 1, max);
	char key[32];
	size_t i, keys = 0;

	(void)state;
	assert_non_null(rl);
	for (i = 0; i < 100 * max; i++) {
		int n = snprintf(key, sizeof(key), "user-%zu", i);

		assert_true(gw_ratelimit_take(rl, key, (size_t)n, (int64_t)i, NULL));
		if (i % 97 == 0 || i < 2 * max) {
			keys = gw_ratelimit_keys(rl);
			assert_true(keys <= max);
			assert_true(keys <= i + 1);
		}
	}
	/* every stripe has seen far more keys than it holds: all full */
	assert_int_equal(gw_ratelimit_keys(rl), max);
	/* the most recent keys are still tracked (drained), so denied */
	for (i = 100 * max - 5; i < 100 * max; i++) {
		int n = snprintf(key, sizeof(key), "user-%zu", i);

		assert_false(gw_ratelimit_take(rl, key, (size_t)n, 100 * (int64_t)max, NULL));
	}
	gw_ratelimit_free(rl);
}

enum { NTHREADS = 4, TAKES = 100000, NKEYS = 1000, BURST = 3 };

struct worker {
	struct gw_ratelimit *rl;
	unsigned id;
	size_t granted;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t x = 0x9e3779b97f4a7c15ull * (w->id + 1);
	char key[32];
	size_t i;

	for (i = 0; i < TAKES; i++) {
		int n;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		n = snprintf(key, sizeof(key), "room-%u", (unsigned)(x % NKEYS));
		/* times interleave across threads, so some arrive out of order */
		if (gw_ratelimit_take(w->rl, key, (size_t)n, (int64_t)i, NULL))
			w->granted++;
	}
	return NULL;
}

static void test_threads_exact(void **state)
{
	/* 100 s at 1e-6/s refills 1e-4 of a token: only the burst can be taken */
	struct gw_ratelimit *rl = gw_ratelimit_new(1e-6, BURST, 1 << 16);
	struct worker w[NTHREADS];
	pthread_t th[NTHREADS];
	size_t total = 0;
	unsigned i;

	(void)state;
	assert_non_null(rl);
	for (i = 0; i < NTHREADS; i++) {
		w[i].rl = rl;
		w[i].id = i;
		w[i].granted = 0;
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		total += w[i].granted;
	}
	assert_int_equal(gw_ratelimit_keys(rl), NKEYS);
	assert_int_equal(total, (size_t)NKEYS * BURST);
	gw_ratelimit_free(rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_burst_then_deny),
		cmocka_unit_test(test_retry_after_exact),
		cmocka_unit_test(test_fractional_rate),
		cmocka_unit_test(test_refill),
		cmocka_unit_test(test_extreme_values),
		cmocka_unit_test(test_independent_keys),
		cmocka_unit_test(test_lru_eviction),
		cmocka_unit_test(test_eviction_key_sizes),
		cmocka_unit_test(test_bound_many_keys),
		cmocka_unit_test(test_threads_exact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
