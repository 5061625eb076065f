/*
 * gw_batch_build_opts: the danmaku budget keeps an evenly spread sample and
 * every non-danmaku message, counts what it left out as "suppressed", moves
 * the cursor past everything, and appends the advice. gw_msg_is_danmaku on
 * encoded messages.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "gateway/batch.h"
#include "gateway/room.h"

static struct gw_rooms *rs;
static struct gw_room *room;

static int setup(void **state)
{
	struct gw_rooms_conf conf = {.workers = 1, .ring_slots = 1024, .ring_bytes = 1 << 20,
				     .window_ms = 60000, .max_rooms = 4};
	struct gw_err err;

	(void)state;
	rs = gw_rooms_new(&conf);
	room = rs ? gw_rooms_acquire(rs, "r", 1, &err) : NULL;
	return room ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	gw_room_release(room);
	gw_rooms_free(rs);
	return 0;
}

static uint64_t publish(const char *type, int n)
{
	char rest[96];
	int len = snprintf(rest, sizeof(rest), "\"type\":\"%s\",\"uid\":\"u\",\"text\":\"m%d\"}",
			   type, n);
	return gw_room_publish(room, rest, (size_t)len);
}

static struct json_object *build(struct gw_pos *pos, const struct gw_batch_opts *opts,
				 struct gw_batch *info)
{
	struct gw_buf out;
	struct json_object *o;

	gw_buf_init(&out, 0);
	assert_int_equal(gw_batch_build_opts(room, pos, 1 << 20, &out, info, opts), 0);
	assert_int_equal(gw_buf_putc(&out, '\0'), 0);
	o = json_tokener_parse(gw_buf_data(&out));
	assert_non_null(o);
	gw_buf_free(&out);
	return o;
}

static void test_is_danmaku(void **state)
{
	static const char d[] = "{\"seq\":1,\"ts\":17,\"type\":\"danmaku\",\"uid\":\"u\"}";
	static const char g[] = "{\"seq\":2,\"ts\":17,\"type\":\"gift\",\"text\":\"\\\"type\\\":\\\"danmaku\\\"\"}";
	static const char r[] = "{\"seq\":3,\"ts\":17,\"type\":\"danmakux\"}";

	(void)state;
	assert_true(gw_msg_is_danmaku(d, strlen(d)));
	assert_false(gw_msg_is_danmaku(g, strlen(g)));
	assert_false(gw_msg_is_danmaku(d, 20)); /* cut short */
	/* "danmakux" starts like danmaku; the closing quote is part of the key. */
	assert_false(gw_msg_is_danmaku(r, strlen(r)));
}

static void test_budget_samples_evenly(void **state)
{
	struct gw_pos pos;
	struct gw_batch info;
	struct gw_err err;
	struct json_object *o, *msgs, *v;
	uint64_t first = 0, last = 0;
	int gifts = 0, danmaku = 0;

	(void)state;
	assert_int_equal(gw_pos_resolve(room, NULL, &pos, &err), 0);
	/* 60 messages: every 10th a gift. */
	for (int i = 0; i < 60; i++) {
		last = publish(i % 10 == 9 ? "gift" : "danmaku", i);
		if (!first)
			first = last;
	}
	struct gw_batch_opts opts = {.danmaku_budget = 15, .advice = "{\"transport\":\"ws\"}",
				     .advice_len = 18};
	o = build(&pos, &opts, &info);
	assert_true(json_object_object_get_ex(o, "msgs", &msgs));
	size_t n = json_object_array_length(msgs);
	int64_t prev = -1, max_step = 0;
	for (size_t i = 0; i < n; i++) {
		struct json_object *m = json_object_array_get_idx(msgs, i), *t, *s;
		assert_true(json_object_object_get_ex(m, "type", &t));
		assert_true(json_object_object_get_ex(m, "seq", &s));
		int64_t seq = json_object_get_int64(s);
		assert_true(seq > prev); /* in order */
		if (!strcmp(json_object_get_string(t), "gift")) {
			gifts++;
		} else {
			if (prev >= 0 && danmaku)
				max_step = seq - prev > max_step ? seq - prev : max_step;
			danmaku++;
		}
		prev = seq;
	}
	assert_int_equal(gifts, 6);   /* never suppressed */
	assert_true(danmaku <= 15);
	assert_true(danmaku >= 12);   /* picks landing on gifts are lost, no more */
	assert_true(max_step <= 6);   /* spread over the batch, not the first 15 */
	assert_int_equal(info.danmaku, (size_t)danmaku);
	assert_int_equal(info.suppressed, (size_t)(54 - danmaku));
	assert_true(json_object_object_get_ex(o, "suppressed", &v));
	assert_int_equal(json_object_get_int(v), 54 - danmaku);
	assert_true(json_object_object_get_ex(o, "advice", &v));
	assert_true(json_object_object_get_ex(v, "transport", &v));
	assert_string_equal(json_object_get_string(v), "ws");
	assert_true(pos.after == last); /* past everything, kept or not */
	json_object_put(o);

	/* Nothing new: empty batch, no suppressed key, no advice when none is given. */
	opts = (struct gw_batch_opts){.danmaku_budget = 15};
	o = build(&pos, &opts, &info);
	assert_false(json_object_object_get_ex(o, "suppressed", &v));
	assert_false(json_object_object_get_ex(o, "advice", &v));
	json_object_put(o);

	/* A budget as large as the batch keeps everything. */
	for (int i = 0; i < 10; i++)
		publish("danmaku", i);
	opts.danmaku_budget = 10;
	o = build(&pos, &opts, &info);
	assert_true(json_object_object_get_ex(o, "msgs", &msgs));
	assert_int_equal(json_object_array_length(msgs), 10);
	assert_int_equal(info.suppressed, 0);
	json_object_put(o);

	/* A zero budget keeps only the gifts. */
	publish("danmaku", 1);
	publish("gift", 2);
	publish("danmaku", 3);
	opts.danmaku_budget = 0;
	o = build(&pos, &opts, &info);
	assert_true(json_object_object_get_ex(o, "msgs", &msgs));
	assert_int_equal(json_object_array_length(msgs), 1);
	assert_int_equal(info.suppressed, 2);
	json_object_put(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_is_danmaku),
		cmocka_unit_test(test_budget_samples_evenly),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
