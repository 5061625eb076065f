/*
 * gw_policy on synthetic event sequences: down at the thresholds, no
 * flapping inside the hysteresis band, timed probes up, failed probes
 * backing off, successful probes resetting the period.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "gateway/policy.h"

static const struct gw_policy_cfg cfg = {
    .longpoll_above = 2, .shortpoll_above = 6, .hysteresis = 0.5,
    .probe_after_ms = 60000, .probe_max_ms = 240000};

static void test_new_client_on_ws(void **state)
{
	struct gw_policy p;

	(void)state;
	gw_policy_init(&p, &cfg, 1000);
	assert_int_equal(p.level, GW_TP_WS);
	assert_int_equal(p.reason, GW_WHY_NEW);
	gw_policy_tick(&p, &cfg, 0, 1000);
	assert_int_equal(p.reason, GW_WHY_NEW);
	gw_policy_tick(&p, &cfg, 0, 2000);
	assert_int_equal(p.level, GW_TP_WS);
	assert_int_equal(p.reason, GW_WHY_STABLE);
	assert_string_equal(gw_transport_name(p.level), "ws");
	assert_string_equal(gw_reason_name(p.reason), "stable");
}

static void test_thresholds(void **state)
{
	struct gw_policy p;

	(void)state;
	gw_policy_init(&p, &cfg, 0);
	gw_policy_event(&p, &cfg, 1.99, 1000);
	assert_int_equal(p.level, GW_TP_WS);
	gw_policy_event(&p, &cfg, 2.0, 2000);
	assert_int_equal(p.level, GW_TP_LONGPOLL);
	assert_int_equal(p.reason, GW_WHY_RATE_HIGH);
	gw_policy_event(&p, &cfg, 5.9, 3000);
	assert_int_equal(p.level, GW_TP_LONGPOLL);
	gw_policy_event(&p, &cfg, 6.0, 4000);
	assert_int_equal(p.level, GW_TP_SHORTPOLL);
	assert_int_equal(p.reason, GW_WHY_RATE_VERY_HIGH);
	assert_int_equal(p.changed_ms, 4000);

	/* Straight from ws to short-poll when the rate jumps past both. */
	gw_policy_init(&p, &cfg, 0);
	gw_policy_event(&p, &cfg, 9, 500);
	assert_int_equal(p.level, GW_TP_SHORTPOLL);
	/* Events never move a client up. */
	gw_policy_event(&p, &cfg, 0.1, 600);
	assert_int_equal(p.level, GW_TP_SHORTPOLL);
}

static void test_hysteresis_blocks_probe(void **state)
{
	struct gw_policy p;

	(void)state;
	gw_policy_init(&p, &cfg, 0);
	gw_policy_event(&p, &cfg, 2.5, 0); /* to long-poll */
	/* Long after, but the rate (1.5) is below the threshold yet above 0.5 x 2: stay. */
	gw_policy_tick(&p, &cfg, 1.5, 600000);
	assert_int_equal(p.level, GW_TP_LONGPOLL);
	gw_policy_tick(&p, &cfg, 0.99, 600000);
	assert_int_equal(p.level, GW_TP_WS);
	assert_int_equal(p.reason, GW_WHY_PROBE);
	assert_true(p.probing);
}

static void test_probe_waits_for_quiet(void **state)
{
	struct gw_policy p;

	(void)state;
	gw_policy_init(&p, &cfg, 0);
	gw_policy_event(&p, &cfg, 7, 0);     /* short-poll at t=0 */
	gw_policy_event(&p, &cfg, 7, 50000); /* another drop at 50 s */
	gw_policy_tick(&p, &cfg, 0, 100000); /* 50 s after the last drop: too soon */
	assert_int_equal(p.level, GW_TP_SHORTPOLL);
	gw_policy_tick(&p, &cfg, 0, 110000); /* 60 s quiet, 110 s since the change */
	assert_int_equal(p.level, GW_TP_LONGPOLL);
	assert_int_equal(p.reason, GW_WHY_PROBE);
	/* One level per probe period: not straight on to ws. */
	gw_policy_tick(&p, &cfg, 0, 169999);
	assert_int_equal(p.level, GW_TP_LONGPOLL);
	assert_true(p.probing);
	/* The probe held for its period, so the next one starts. */
	gw_policy_tick(&p, &cfg, 0, 170000);
	assert_int_equal(p.level, GW_TP_WS);
	assert_int_equal(p.reason, GW_WHY_PROBE);
	assert_true(p.probing);
	gw_policy_tick(&p, &cfg, 0, 230000);
	assert_false(p.probing);
	assert_int_equal(p.reason, GW_WHY_STABLE);
	assert_int_equal(p.level, GW_TP_WS);
}

static void test_failed_probe_backs_off(void **state)
{
	struct gw_policy p;
	int64_t t;

	(void)state;
	gw_policy_init(&p, &cfg, 0);
	gw_policy_event(&p, &cfg, 3, 0); /* long-poll */
	gw_policy_tick(&p, &cfg, 0, 60000);
	assert_int_equal(p.level, GW_TP_WS);
	/* Drop 5 s into the probe, rate still low: back down anyway. */
	gw_policy_event(&p, &cfg, 0.5, 65000);
	assert_int_equal(p.level, GW_TP_LONGPOLL);
	assert_int_equal(p.reason, GW_WHY_PROBE_FAILED);
	assert_int_equal(p.probe_wait_ms, 120000);
	gw_policy_tick(&p, &cfg, 0, 65000 + 119999);
	assert_int_equal(p.level, GW_TP_LONGPOLL);
	gw_policy_tick(&p, &cfg, 0, 65000 + 120000);
	assert_int_equal(p.level, GW_TP_WS);
	/* Fail again, and again: the period doubles up to probe_max. */
	t = 185000;
	gw_policy_event(&p, &cfg, 0.5, t + 1);
	assert_int_equal(p.probe_wait_ms, 240000);
	gw_policy_tick(&p, &cfg, 0, t + 1 + 240000);
	assert_int_equal(p.level, GW_TP_WS);
	gw_policy_event(&p, &cfg, 0.5, t + 240002);
	assert_int_equal(p.probe_wait_ms, 240000); /* capped */
	assert_int_equal(p.level, GW_TP_LONGPOLL);
	/* A probe that survives resets the period to probe_after. */
	t = t + 240002;
	gw_policy_tick(&p, &cfg, 0, t + 240000);
	assert_int_equal(p.level, GW_TP_WS);
	gw_policy_tick(&p, &cfg, 0, t + 480000);
	assert_false(p.probing);
	assert_int_equal(p.probe_wait_ms, 60000);
}

/* A failed probe whose drop also pushes the rate past the top threshold goes to the bottom. */
static void test_failed_probe_with_high_rate(void **state)
{
	struct gw_policy p;

	(void)state;
	gw_policy_init(&p, &cfg, 0);
	gw_policy_event(&p, &cfg, 3, 0);
	gw_policy_tick(&p, &cfg, 0, 60000);
	assert_int_equal(p.level, GW_TP_WS);
	gw_policy_event(&p, &cfg, 7, 61000);
	assert_int_equal(p.level, GW_TP_SHORTPOLL);
	assert_int_equal(p.reason, GW_WHY_RATE_VERY_HIGH);
}

/* Repeated drops near a threshold never make a client oscillate between two levels. */
static void test_no_flap(void **state)
{
	struct gw_policy p;
	int changes = 0;
	enum gw_transport last;

	(void)state;
	gw_policy_init(&p, &cfg, 0);
	last = p.level;
	for (int64_t t = 1000; t < 3600000; t += 1000) {
		/* rate wobbles 1.8..2.2 around the long-poll threshold, a drop every 90 s */
		double rate = (t / 1000) % 2 ? 1.8 : 2.2;
		if (t % 90000 == 0)
			gw_policy_event(&p, &cfg, rate, t);
		else
			gw_policy_tick(&p, &cfg, rate, t);
		if (p.level != last)
			changes++;
		last = p.level;
	}
	assert_int_equal(changes, 1); /* down once, never back up inside the band */
	assert_int_equal(p.level, GW_TP_LONGPOLL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_client_on_ws),
		cmocka_unit_test(test_thresholds),
		cmocka_unit_test(test_hysteresis_blocks_probe),
		cmocka_unit_test(test_probe_waits_for_quiet),
		cmocka_unit_test(test_failed_probe_backs_off),
		cmocka_unit_test(test_failed_probe_with_high_rate),
		cmocka_unit_test(test_no_flap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
