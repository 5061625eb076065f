#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "gateway/board.h"

struct seen {
	int calls;
	char room[80];
	char top[8192];
};

static void record(void *arg, const char *room, size_t room_len, const char *top, size_t top_len)
{
	struct seen *s = arg;

	s->calls++;
	snprintf(s->room, sizeof(s->room), "%.*s", (int)room_len, room);
	snprintf(s->top, sizeof(s->top), "%.*s", (int)top_len, top);
}

static void test_totals_sum_and_snapshot_orders_by_value_then_uid(void **state)
{
	struct gw_board *b = gw_board_new();
	struct seen s = {0};
	struct gw_buf out;

	gw_buf_init(&out, 0);
	gw_board_add(b, "r1", 2, "bob", 3, 500);
	gw_board_add(b, "r1", 2, "alice", 5, 300);
	gw_board_add(b, "r1", 2, "alice", 5, 200); /* alice: 500, ties with bob */
	gw_board_add(b, "r1", 2, "carol", 5, 900);
	assert_int_equal(gw_board_total(b, "r1", 2, "alice", 5), 500);
	/* Before a refresh there is no snapshot yet. */
	gw_board_top(b, "r1", 2, 10, &out);
	gw_buf_putc(&out, 0);
	assert_string_equal(gw_buf_data(&out), "[]");
	assert_int_equal(gw_board_refresh(b, record, &s), 1);
	assert_int_equal(s.calls, 1);
	assert_string_equal(s.room, "r1");
	assert_string_equal(s.top, "[{\"uid\":\"carol\",\"value\":900},{\"uid\":\"alice\",\"value\":500},"
				   "{\"uid\":\"bob\",\"value\":500}]");
	gw_buf_reset(&out);
	gw_board_top(b, "r1", 2, 2, &out);
	gw_buf_putc(&out, 0);
	assert_string_equal(gw_buf_data(&out),
			    "[{\"uid\":\"carol\",\"value\":900},{\"uid\":\"alice\",\"value\":500}]");
	gw_buf_free(&out);
	gw_board_free(b);
}

static void test_refresh_only_reports_changed_rooms(void **state)
{
	struct gw_board *b = gw_board_new();
	struct seen s = {0};

	gw_board_add(b, "r1", 2, "a", 1, 1);
	gw_board_add(b, "r2", 2, "a", 1, 1);
	assert_int_equal(gw_board_refresh(b, record, &s), 2);
	assert_int_equal(gw_board_refresh(b, record, &s), 0);
	gw_board_add(b, "r2", 2, "b", 1, 7);
	s.calls = 0;
	assert_int_equal(gw_board_refresh(b, record, &s), 1);
	assert_int_equal(s.calls, 1);
	assert_string_equal(s.room, "r2");
	gw_board_free(b);
}

static void test_snapshot_keeps_the_best_hundred(void **state)
{
	struct gw_board *b = gw_board_new();
	struct seen s = {0};
	struct gw_buf out;
	char uid[16];

	gw_buf_init(&out, 0);
	/* 150 senders with values 1..150, added in a scrambled order. */
	for (int i = 0; i < 150; i++) {
		int v = (i * 37) % 150 + 1;
		snprintf(uid, sizeof(uid), "u%03d", v);
		gw_board_add(b, "r", 1, uid, strlen(uid), (uint64_t)v);
	}
	gw_board_refresh(b, record, &s);
	gw_board_top(b, "r", 1, 1000, &out);
	gw_buf_putc(&out, 0);
	const char *p = gw_buf_data(&out);
	/* first is 150, last kept is 51, 50 is gone */
	assert_non_null(strstr(p, "[{\"uid\":\"u150\",\"value\":150},"));
	assert_non_null(strstr(p, "{\"uid\":\"u051\",\"value\":51}]"));
	assert_null(strstr(p, "\"u050\""));
	int entries = 0;
	for (const char *q = p; (q = strstr(q, "\"uid\"")); q++)
		entries++;
	assert_int_equal(entries, GW_BOARD_TOP_MAX);
	gw_buf_free(&out);
	gw_board_free(b);
}

static void test_unknown_room_is_empty(void **state)
{
	struct gw_board *b = gw_board_new();
	struct gw_buf out;

	gw_buf_init(&out, 0);
	assert_int_equal(gw_board_top(b, "nope", 4, 10, &out), 0);
	gw_buf_putc(&out, 0);
	assert_string_equal(gw_buf_data(&out), "[]");
	assert_int_equal(gw_board_total(b, "nope", 4, "a", 1), 0);
	gw_buf_free(&out);
	gw_board_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_totals_sum_and_snapshot_orders_by_value_then_uid),
		cmocka_unit_test(test_refresh_only_reports_changed_rooms),
		cmocka_unit_test(test_snapshot_keeps_the_best_hundred),
		cmocka_unit_test(test_unknown_room_is_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
