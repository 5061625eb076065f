/*
 * nm_sched: reproducible draws, release times that never reorder, the token
 * bucket's exact waits and long-run rate, and the stall windows.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "netem/sched.h"

static void test_rng(void **state)
{
	struct nm_rng a, b;
	int i, seen_lo = 0, seen_hi = 0;

	(void)state;
	nm_rng_seed(&a, 42);
	nm_rng_seed(&b, 42);
	for (i = 0; i < 1000; i++)
		assert_true(nm_rng_next(&a) == nm_rng_next(&b));
	nm_rng_seed(&b, 43);
	assert_false(nm_rng_next(&a) == nm_rng_next(&b));
	for (i = 0; i < 10000; i++) {
		int64_t v = nm_rng_range(&a, -3, 3);

		assert_true(v >= -3 && v <= 3);
		seen_lo += v == -3;
		seen_hi += v == 3;
	}
	/* each end is 1/7 of the draws: ~1430 expected */
	assert_true(seen_lo > 1000 && seen_hi > 1000);
	assert_int_equal(nm_rng_range(&a, 5, 5), 5);
	assert_int_equal(nm_rng_range(&a, 5, 4), 5);
	assert_true(nm_rng_range(&a, 0, INT64_MAX) >= 0);
}

static void test_release_basic(void **state)
{
	(void)state;
	assert_int_equal(nm_release_ms(0, 1000, 50, 0), 1050);
	assert_int_equal(nm_release_ms(0, 1000, 50, 20), 1070);
	assert_int_equal(nm_release_ms(0, 1000, 50, -20), 1030);
	/* jitter larger than the delay never releases before the arrival */
	assert_int_equal(nm_release_ms(0, 1000, 10, -30), 1000);
	/* never before the previous chunk */
	assert_int_equal(nm_release_ms(1200, 1000, 50, 0), 1200);
	assert_int_equal(nm_release_ms(1049, 1000, 50, 0), 1050);
}

/*
 * Chunks arriving over time with random jitter: releases never go backwards,
 * never precede arrival + delay - jitter (or the arrival), and a chunk is
 * held past its own arrival + delay + jitter only by the chunk before it.
 */
static void test_release_order(void **state)
{
	struct nm_rng g;
	int64_t prev = 0, arrival = 0, delay = 40, jitter = 30;
	int i;

	(void)state;
	nm_rng_seed(&g, 7);
	for (i = 0; i < 100000; i++) {
		int64_t off = nm_rng_range(&g, -jitter, jitter);
		int64_t rel = nm_release_ms(prev, arrival, delay, off);

		assert_true(rel >= prev);
		assert_true(rel >= arrival + delay - jitter);
		assert_true(rel <= arrival + delay + jitter || rel == prev);
		prev = rel;
		arrival += (int64_t)(nm_rng_next(&g) % 5);
	}
}

static void test_rate_exact(void **state)
{
	struct nm_rate r;

	(void)state;
	nm_rate_init(&r, 1000, 0);
	/* 8 kbit/s is one byte per ms */
	assert_int_equal(nm_rate_avail(&r, 8, 1000, 0), 1000);
	nm_rate_take(&r, 8, 1000);
	assert_int_equal(nm_rate_avail(&r, 8, 1000, 0), 0);
	assert_int_equal(nm_rate_wait_ms(&r, 8, 10), 10);
	assert_int_equal(nm_rate_avail(&r, 8, 1000, 9), 9);
	assert_int_equal(nm_rate_wait_ms(&r, 8, 10), 1);
	assert_int_equal(nm_rate_avail(&r, 8, 1000, 10), 10);
	assert_int_equal(nm_rate_wait_ms(&r, 8, 10), 0);
	/* refills stop at the burst */
	assert_int_equal(nm_rate_avail(&r, 8, 1000, 100000), 1000);
	/* a lowered burst caps what is banked */
	assert_int_equal(nm_rate_avail(&r, 8, 100, 100001), 100);
	/* 12 kbit/s: 1.5 bytes per ms; the wait rounds up */
	nm_rate_take(&r, 12, 100);
	assert_int_equal(nm_rate_wait_ms(&r, 12, 3), 2);
	/* time going backwards neither refills nor breaks anything */
	assert_int_equal(nm_rate_avail(&r, 12, 100, 50), 0);
	/* days idle at a high rate: no overflow, just full */
	assert_int_equal(nm_rate_avail(&r, 100000000, 100, 1000000000000LL), 100);
}

static void test_rate_unlimited(void **state)
{
	struct nm_rate r;

	(void)state;
	nm_rate_init(&r, 1000, 0);
	nm_rate_take(&r, 8, 1000);
	assert_true(nm_rate_avail(&r, 0, 1000, 1) == INT64_MAX);
	nm_rate_take(&r, 0, 1 << 30); /* not counted when unlimited */
	assert_int_equal(nm_rate_wait_ms(&r, 0, 1000), 0);
	/* limiting again starts from a full bucket */
	assert_int_equal(nm_rate_avail(&r, 8, 1000, 1), 1000);
}

/*
 * Drive the bucket the way the relay does (send what is available, then
 * sleep the announced wait): N bytes take at least (N - burst) / rate and,
 * with no other delays, at most one extra ms per wait.
 */
static void test_rate_long_run(void **state)
{
	static const int64_t kbps[] = {8, 100, 800, 4000, 100000};
	size_t k;

	(void)state;
	for (k = 0; k < sizeof(kbps) / sizeof(kbps[0]); k++) {
		const int64_t burst = 16384, total = 2000000, step = 1024;
		struct nm_rate r;
		int64_t now = 0, sent = 0, waits = 0, floor_ms;

		nm_rate_init(&r, burst, now);
		while (sent < total) {
			int64_t avail = nm_rate_avail(&r, kbps[k], burst, now), n;
			int64_t need = total - sent < step ? total - sent : step;

			if (avail < need) {
				now += nm_rate_wait_ms(&r, kbps[k], need);
				waits++;
				continue;
			}
			n = total - sent < avail ? total - sent : avail;
			nm_rate_take(&r, kbps[k], n);
			sent += n;
		}
		floor_ms = (total - burst) * 8 / kbps[k];
		assert_true(now >= floor_ms);
		assert_true(now <= floor_ms + waits + 1);
	}
}

static void test_stall(void **state)
{
	int64_t next;

	(void)state;
	/* epoch 1000, a 300 ms stall every 1000 ms: [2000,2300), [3000,3300), ... */
	assert_false(nm_stall_at(1000, 300, 1000, 1000, &next));
	assert_int_equal(next, 2000);
	assert_false(nm_stall_at(1000, 300, 1000, 1999, &next));
	assert_int_equal(next, 2000);
	assert_true(nm_stall_at(1000, 300, 1000, 2000, &next));
	assert_int_equal(next, 2300);
	assert_true(nm_stall_at(1000, 300, 1000, 2299, &next));
	assert_int_equal(next, 2300);
	assert_false(nm_stall_at(1000, 300, 1000, 2300, &next));
	assert_int_equal(next, 3000);
	assert_true(nm_stall_at(1000, 300, 1000, 1000 + 1000 * 1000 + 5, &next));
	assert_int_equal(next, 1000 + 1000 * 1000 + 300);
	/* no stalls */
	assert_false(nm_stall_at(0, 300, 0, 5000, &next));
	assert_true(next == INT64_MAX);
	assert_false(nm_stall_at(1000, 0, 0, 1000, &next));
	assert_true(next == INT64_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rng),
	    cmocka_unit_test(test_release_basic),
	    cmocka_unit_test(test_release_order),
	    cmocka_unit_test(test_rate_exact),
	    cmocka_unit_test(test_rate_unlimited),
	    cmocka_unit_test(test_rate_long_run),
	    cmocka_unit_test(test_stall),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
