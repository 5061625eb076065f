/*
 * gw_clients: what counts as a disconnect on each transport, advice moving a
 * client whose WebSocket keeps dying down to long-poll and short-poll and
 * back up once it stops, short-poll pacing (429), danmaku budgets, the table
 * bound and the ttl sweep, and the advice JSON. Synthetic monotonic clock.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <string.h>

#include "gateway/clients.h"
#include "gateway/config.h"

static struct gw_config cfg;

static int setup(void **state)
{
	(void)state;
	if (gw_config_defaults(&cfg))
		return -1;
	/* Short periods so sequences stay readable. */
	cfg.adapt_half_life = 60;
	cfg.adapt_min_connected = 10;
	cfg.adapt_probe_after = 20;
	cfg.adapt_probe_max = 80;
	cfg.adapt_longpoll_above = 2;
	cfg.adapt_shortpoll_above = 6;
	return 0;
}

#define ID(s) s, strlen(s)

static struct gw_advice connect_(struct gw_clients *cl, const char *id, int64_t t)
{
	struct gw_advice a;
	gw_clients_connect(cl, id, strlen(id), 0, t, &a);
	return a;
}

static void test_id_syntax(void **state)
{
	(void)state;
	assert_true(gw_client_id_valid(ID("a")));
	assert_true(gw_client_id_valid(ID("Ab-9_")));
	assert_false(gw_client_id_valid(ID("")));
	assert_false(gw_client_id_valid(ID("a b")));
	assert_false(gw_client_id_valid(ID("a/b")));
	char long_id[66];
	memset(long_id, 'x', 65);
	long_id[65] = 0;
	assert_false(gw_client_id_valid(long_id, 65));
	assert_true(gw_client_id_valid(long_id, 64));
}

static void test_new_client_json(void **state)
{
	struct gw_clients *cl = gw_clients_new(&cfg);
	struct gw_advice a = connect_(cl, "c1", 1000);
	struct gw_buf b;
	struct json_object *o, *v;

	(void)state;
	assert_int_equal(a.transport, GW_TP_WS);
	assert_int_equal(a.reason, GW_WHY_NEW);
	assert_true(a.send);
	gw_buf_init(&b, 0);
	assert_int_equal(gw_advice_json(&a, ID("r1"), ID("c1"), &b), 0);
	assert_int_equal(gw_buf_putc(&b, '\0'), 0);
	o = json_tokener_parse(gw_buf_data(&b));
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "transport", &v));
	assert_string_equal(json_object_get_string(v), "ws");
	assert_true(json_object_object_get_ex(o, "ws_url", &v));
	assert_string_equal(json_object_get_string(v), "/v1/rooms/r1/ws?client=c1");
	assert_true(json_object_object_get_ex(o, "poll_url", &v));
	assert_string_equal(json_object_get_string(v), "/v1/rooms/r1/poll?client=c1&wait=25");
	assert_true(json_object_object_get_ex(o, "interval_ms", &v));
	assert_int_equal(json_object_get_int(v), 0);
	assert_true(json_object_object_get_ex(o, "reason", &v));
	assert_string_equal(json_object_get_string(v), "new");
	assert_true(json_object_object_get_ex(o, "rate_per_min", &v));
	assert_true(json_object_object_get_ex(o, "disconnects", &v));
	assert_true(json_object_object_get_ex(o, "connected_min", &v));
	json_object_put(o);
	gw_buf_free(&b);
	assert_int_equal(gw_clients_count(cl), 1);
	gw_clients_free(cl);
}

/* A WebSocket cut (no close frame) every 5 s walks the client down the ladder. */
static void test_ws_cuts_move_down_then_probe_up(void **state)
{
	struct gw_clients *cl = gw_clients_new(&cfg);
	struct gw_advice a;
	int64_t t = 0;
	int i;

	(void)state;
	for (i = 0; i < 30; i++) {
		gw_clients_ws_open(cl, ID("c"), 0, t, &a);
		if (a.transport != GW_TP_WS)
			break;
		assert_false(a.send);
		t += 5000;
		gw_clients_ws_close(cl, ID("c"), false, t);
	}
	/* 1 drop per 5 s of connection = 12/min, past both thresholds, but the floor
	 * (10 s) holds the first drop to 6/min: short-poll by the second. */
	assert_true(i >= 1 && i <= 3);
	assert_true(a.send);
	assert_int_equal(a.transport, GW_TP_SHORTPOLL);
	assert_true(a.reason == GW_WHY_RATE_VERY_HIGH || a.reason == GW_WHY_RATE_HIGH);
	assert_true(a.rate_per_min >= 6);
	assert_true(a.interval_ms >= cfg.adapt_shortpoll_min_ms);
	gw_clients_ws_close(cl, ID("c"), true, t); /* it follows the advice: clean close */

	/* Now it short-polls on time: no disconnects; the rate decays; probes move it up. */
	int64_t iv = a.interval_ms, retry;
	enum gw_transport seen = GW_TP_SHORTPOLL;
	for (i = 0; i < 2000 && seen != GW_TP_WS; i++) {
		t += iv;
		if (seen == GW_TP_SHORTPOLL) {
			assert_int_equal(gw_clients_poll(cl, ID("c"), 0, 0, t, &a, &retry), 0);
		} else {
			assert_int_equal(gw_clients_poll(cl, ID("c"), 25, 0, t, &a, &retry), 0);
			gw_clients_poll_end(cl, ID("c"), false, 0, t + 10, &a);
		}
		if (a.transport != seen) {
			assert_true(a.send);
			assert_int_equal(a.reason, GW_WHY_PROBE);
			assert_int_equal(a.transport, seen - 1); /* one level at a time */
			seen = a.transport;
		}
	}
	assert_int_equal(seen, GW_TP_WS);
	assert_true(a.rate_per_min < cfg.adapt_longpoll_above * cfg.adapt_hysteresis);
	gw_clients_free(cl);
}

static double disconnects(struct gw_clients *cl, const char *id, int64_t t)
{
	return connect_(cl, id, t).disconnects;
}

static void test_what_counts(void **state)
{
	struct gw_config slow = cfg;
	struct gw_clients *cl;
	struct gw_advice a;
	int64_t retry = 0;

	(void)state;
	slow.adapt_half_life = 86400; /* counts stay whole numbers over these few seconds */
	cl = gw_clients_new(&slow);
	/* Clean close: not a disconnect. */
	gw_clients_ws_open(cl, ID("a"), 0, 0, &a);
	gw_clients_ws_close(cl, ID("a"), true, 1000);
	assert_float_equal(disconnects(cl, "a", 1000), 0, 1e-9);
	/* Unclean close: one. */
	gw_clients_ws_open(cl, ID("a"), 0, 1000, &a);
	gw_clients_ws_close(cl, ID("a"), false, 2000);
	assert_float_equal(disconnects(cl, "a", 2000), 1, 1e-3);

	/* A second WebSocket while the first is open: the first died unseen, counted once
	 * even when the server notices it later (unclean), and not for the clean close. */
	gw_clients_ws_open(cl, ID("b"), 0, 0, &a);
	gw_clients_ws_open(cl, ID("b"), 0, 10, &a);
	assert_float_equal(disconnects(cl, "b", 10), 1, 1e-3);
	gw_clients_ws_close(cl, ID("b"), false, 20);
	assert_float_equal(disconnects(cl, "b", 20), 1, 1e-3);
	gw_clients_ws_close(cl, ID("b"), true, 30);
	assert_float_equal(disconnects(cl, "b", 30), 1, 1e-3);
	/* A close for an id never opened is ignored. */
	gw_clients_ws_close(cl, ID("nobody"), false, 30);
	assert_int_equal(gw_clients_count(cl), 2);

	/* Long-poll aborted mid-wait: one; answered: none. */
	assert_int_equal(gw_clients_poll(cl, ID("l"), 25, 0, 0, &a, &retry), 0);
	gw_clients_poll_end(cl, ID("l"), false, 0, 5000, &a);
	/* A long-poll client whose rate is low is advised up to ws; told again only after
	 * ADVICE_REPEAT_MS (10 s) if it stays, not in every answer. */
	assert_true(a.send);
	assert_int_equal(a.transport, GW_TP_WS);
	assert_int_equal(gw_clients_poll(cl, ID("l2"), 25, 0, 0, &a, &retry), 0);
	gw_clients_poll_end(cl, ID("l2"), false, 0, 100, &a);
	assert_true(a.send);
	assert_int_equal(gw_clients_poll(cl, ID("l2"), 25, 0, 100, &a, &retry), 0);
	gw_clients_poll_end(cl, ID("l2"), false, 0, 9000, &a);
	assert_false(a.send);
	assert_int_equal(gw_clients_poll(cl, ID("l2"), 25, 0, 9000, &a, &retry), 0);
	gw_clients_poll_end(cl, ID("l2"), false, 0, 10100, &a);
	assert_true(a.send);
	assert_int_equal(gw_clients_poll(cl, ID("l"), 25, 0, 5100, &a, &retry), 0);
	gw_clients_poll_end(cl, ID("l"), true, 0, 6000, NULL);
	assert_float_equal(disconnects(cl, "l", 6000), 1, 1e-3);
	/* Next long-poll within adapt_longpoll_gap (10 s) of an answer: none; beyond: one. */
	assert_int_equal(gw_clients_poll(cl, ID("l"), 25, 0, 6000, &a, &retry), 0);
	gw_clients_poll_end(cl, ID("l"), false, 0, 7000, &a);
	assert_int_equal(gw_clients_poll(cl, ID("l"), 25, 0, 7000 + 9000, &a, &retry), 0);
	assert_float_equal(disconnects(cl, "l", 16000), 1, 0.01);
	gw_clients_poll_end(cl, ID("l"), false, 0, 16000, &a);
	assert_int_equal(gw_clients_poll(cl, ID("l"), 25, 0, 16000 + 10001, &a, &retry), 0);
	assert_float_equal(disconnects(cl, "l", 26001), 2, 0.01);

	/* Short-poll: on time none; later than 3 x interval: one; early: 429. */
	int64_t iv = cfg.adapt_shortpoll_min_ms; /* before any advice, the minimum */
	assert_int_equal(gw_clients_poll(cl, ID("s"), 0, 0, 0, &a, &retry), 0);
	assert_int_equal(gw_clients_poll(cl, ID("s"), 0, 0, iv, &a, &retry), 0);
	assert_float_equal(disconnects(cl, "s", iv), 0, 1e-9);
	assert_int_equal(gw_clients_poll(cl, ID("s"), 0, 0, iv + 3 * iv + 1, &a, &retry), 0);
	assert_float_equal(disconnects(cl, "s", 4 * iv + 1), 1, 0.01);
	/* That drop moved s to short-poll (1 drop / 10 s floor = 6/min): its interval now. */
	assert_int_equal(a.transport, GW_TP_SHORTPOLL);
	int64_t t = 4 * iv + 1, adv_iv = a.interval_ms;
	assert_int_equal(adv_iv, cfg.adapt_shortpoll_max_ms);
	assert_int_equal(gw_clients_poll(cl, ID("s"), 0, 0, t + adv_iv / 4, &a, &retry), -1);
	assert_int_equal(retry, adv_iv - adv_iv / 4);
	assert_int_equal(a.interval_ms, adv_iv);
	/* The refused poll did not move the reference: half an interval later it passes. */
	assert_int_equal(gw_clients_poll(cl, ID("s"), 0, 0, t + adv_iv / 2, &a, &retry), 0);
	gw_clients_free(cl);
}

static void test_shortpoll_interval_follows_room(void **state)
{
	struct gw_clients *cl = gw_clients_new(&cfg);
	struct gw_advice a;
	int64_t t = 0, retry;

	(void)state;
	/* Push c to short-poll with drops. */
	for (int i = 0; i < 5; i++) {
		gw_clients_ws_open(cl, ID("c"), 0, t, &a);
		t += 1000;
		gw_clients_ws_close(cl, ID("c"), false, t);
	}
	gw_clients_connect(cl, ID("c"), 0.0, t, &a);
	assert_int_equal(a.transport, GW_TP_SHORTPOLL);
	assert_int_equal(a.interval_ms, cfg.adapt_shortpoll_max_ms); /* quiet room */
	gw_clients_connect(cl, ID("c"), 2.0, t, &a); /* 5 msgs per poll at 2/s: 2.5 s */
	assert_int_equal(a.interval_ms, 2500);
	gw_clients_connect(cl, ID("c"), 500.0, t, &a);
	assert_int_equal(a.interval_ms, cfg.adapt_shortpoll_min_ms);
	/* A short-poll answer carries advice when the interval changes, not otherwise. */
	assert_int_equal(gw_clients_poll(cl, ID("c"), 0, 2.0, t, &a, &retry), 0);
	assert_true(a.send);
	assert_int_equal(gw_clients_poll(cl, ID("c"), 0, 2.0, t + 2500, &a, &retry), 0);
	assert_false(a.send);
	assert_int_equal(gw_clients_poll(cl, ID("c"), 0, 500.0, t + 5000, &a, &retry), 0);
	assert_true(a.send);
	assert_int_equal(a.interval_ms, 1000);
	gw_clients_free(cl);
}

static void test_budget(void **state)
{
	struct gw_clients *cl = gw_clients_new(&cfg);
	struct gw_advice a;
	int64_t retry;

	(void)state;
	assert_int_equal(cfg.suppress_shortpoll, 15);
	assert_int_equal(gw_clients_poll(cl, ID("c"), 0, 0, 0, &a, &retry), 0);
	assert_int_equal(gw_clients_budget(cl, ID("c"), GW_TP_SHORTPOLL, 0), 15);
	gw_clients_budget_use(cl, ID("c"), GW_TP_SHORTPOLL, 15);
	assert_int_equal(gw_clients_budget(cl, ID("c"), GW_TP_SHORTPOLL, 0), 0);
	/* Refills 15 per 3 s. */
	assert_int_equal(gw_clients_budget(cl, ID("c"), GW_TP_SHORTPOLL, 1000), 5);
	assert_int_equal(gw_clients_budget(cl, ID("c"), GW_TP_SHORTPOLL, 100000), 15);
	/* No limit configured for WebSocket and long-poll by default. */
	assert_true(gw_clients_budget(cl, ID("c"), GW_TP_WS, 0) == SIZE_MAX);
	assert_true(gw_clients_budget(cl, ID("c"), GW_TP_LONGPOLL, 0) == SIZE_MAX);
	/* Unknown ids are not limited (nothing to account them to). */
	assert_true(gw_clients_budget(cl, ID("zz"), GW_TP_SHORTPOLL, 0) == SIZE_MAX);
	gw_clients_free(cl);
}

static void test_bound_and_sweep(void **state)
{
	struct gw_config small = cfg;
	struct gw_clients *cl;
	struct gw_advice a;

	(void)state;
	small.adapt_max_clients = 3;
	small.adapt_client_ttl = 10;
	cl = gw_clients_new(&small);
	connect_(cl, "a", 0);
	connect_(cl, "b", 0);
	connect_(cl, "c", 0);
	a = connect_(cl, "d", 0);
	assert_int_equal(a.reason, GW_WHY_UNTRACKED);
	assert_int_equal(a.transport, GW_TP_WS);
	assert_int_equal(gw_clients_count(cl), 3);
	/* An open WebSocket keeps its id however long it is quiet. */
	gw_clients_ws_open(cl, ID("a"), 0, 0, &a);
	assert_int_equal(gw_clients_sweep(cl, 5000), 0);
	assert_int_equal(gw_clients_sweep(cl, 20000), 2);
	assert_int_equal(gw_clients_count(cl), 1);
	a = connect_(cl, "d", 20000);
	assert_int_equal(a.reason, GW_WHY_NEW);
	gw_clients_free(cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_syntax),
		cmocka_unit_test(test_new_client_json),
		cmocka_unit_test(test_ws_cuts_move_down_then_probe_up),
		cmocka_unit_test(test_what_counts),
		cmocka_unit_test(test_shortpoll_interval_follows_room),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_bound_and_sweep),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
