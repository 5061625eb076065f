/*
 * gw_rate: decay by half-lives, the connected-time floor, steady state on a
 * regular drop pattern, and time running backwards.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "gateway/rate.h"

#define MIN 60000

static void test_fresh_is_zero(void **state)
{
	struct gw_rate r;

	(void)state;
	gw_rate_init(&r, 5000);
	assert_true(gw_rate_per_min(&r, 30000) == 0.0);
	gw_rate_advance(&r, 5000 + MIN, MIN, 120000);
	assert_true(gw_rate_per_min(&r, 30000) == 0.0);
}

static void test_floor_bounds_early_rate(void **state)
{
	struct gw_rate r;

	(void)state;
	gw_rate_init(&r, 0);
	gw_rate_advance(&r, 1000, 1000, 1e9); /* 1 s connected, no decay to speak of */
	gw_rate_event(&r, 1000, 1e9);
	/* 1 drop over max(1 s, 30 s floor) = 2 per minute, not 60. */
	assert_float_equal(gw_rate_per_min(&r, 30000), 2.0, 1e-6);
	/* Without a floor the raw figure shows. */
	assert_float_equal(gw_rate_per_min(&r, 0), 60.0, 1e-6);
}

static void test_half_life(void **state)
{
	struct gw_rate r;

	(void)state;
	gw_rate_init(&r, 0);
	gw_rate_advance(&r, 0, 10 * MIN, 60000);
	gw_rate_event(&r, 0, 60000);
	gw_rate_event(&r, 0, 60000);
	assert_float_equal(r.events, 2.0, 1e-9);
	gw_rate_advance(&r, 60000, 0, 60000); /* one half-life, not connected */
	assert_float_equal(r.events, 1.0, 1e-9);
	assert_float_equal(r.connected_ms, 5.0 * MIN, 1e-6);
	/* The ratio survives pure decay: both halve. */
	assert_float_equal(gw_rate_per_min(&r, 0), 0.2, 1e-9);
	gw_rate_advance(&r, 180000, 0, 60000); /* two more */
	assert_float_equal(r.events, 0.25, 1e-9);
}

/* A drop every 10 s while connected throughout settles at ~6/min. */
static void test_steady_state(void **state)
{
	struct gw_rate r;
	int64_t t = 0;

	(void)state;
	gw_rate_init(&r, 0);
	for (int i = 0; i < 200; i++) {
		t += 10000;
		gw_rate_advance(&r, t, 10000, 120000);
		gw_rate_event(&r, t, 120000);
	}
	assert_float_equal(gw_rate_per_min(&r, 30000), 6.0, 0.3);
	/* Drops stop; connected time goes on: the rate falls by about half per half-life. */
	double before = gw_rate_per_min(&r, 30000);
	for (int i = 0; i < 12; i++) {
		t += 10000;
		gw_rate_advance(&r, t, 10000, 120000);
	}
	double after = gw_rate_per_min(&r, 30000);
	assert_true(after < before * 0.55 && after > before * 0.35);
}

static void test_time_backwards_is_no_time(void **state)
{
	struct gw_rate r;

	(void)state;
	gw_rate_init(&r, 10000);
	gw_rate_event(&r, 10000, 1000);
	gw_rate_advance(&r, 5000, 0, 1000);
	assert_float_equal(r.events, 1.0, 1e-12);
	assert_int_equal(r.at_ms, 10000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fresh_is_zero),
		cmocka_unit_test(test_floor_bounds_early_rate),
		cmocka_unit_test(test_half_life),
		cmocka_unit_test(test_steady_state),
		cmocka_unit_test(test_time_backwards_is_no_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
