/*
 * Tests for gateway/room.c and gateway/batch.c: room names, the registry
 * (create once, max_rooms, reaping), positions and batches (cursor, gap,
 * bad_cursor), and the subscriber wake-up protocol (one wake per worker per
 * dispatch, notify per subscriber, unsubscribe), including a multi-threaded
 * run where a lost wake-up would leave a subscriber behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "crypto/random.h"
#include "gateway/batch.h"
#include "gateway/clock.h"
#include "gateway/metrics.h"
#include "gateway/ring.h"
#include "gateway/room.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BIG (1u << 30)

static int group_setup(void **state)
{
	(void)state;
	if (cr_init() || gw_metrics_init(2))
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	gw_metrics_fini();
	return 0;
}

static void sleep_ms(int ms)
{
	struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&t, &t))
		;
}

/* ---- fakes ------------------------------------------------------------- */

/* Records wake-ups per worker. Atomic: publishers may run on any thread. */
struct wakes {
	_Atomic int calls[2];
	_Atomic int flag[2]; /* set by a wake, cleared by the worker that acts on it */
};

static void record_wake(void *arg, unsigned worker)
{
	struct wakes *w = arg;

	if (worker >= 2) {
		fprintf(stderr, "waker called for worker %u of 2\n", worker);
		abort();
	}
	atomic_fetch_add(&w->calls[worker], 1);
	atomic_store(&w->flag[worker], 1);
}

/* A transport connection: a gw_sub plus what the test looks at. */
struct fake_conn {
	struct gw_sub sub;
	int notified;
	bool detach_on_notify;
	/* Used by the threaded test. */
	struct gw_pos pos;
	uint64_t received;
	uint64_t errors;
	char why[160];
};

static struct fake_conn *conn_of(struct gw_sub *sub)
{
	return (struct fake_conn *)((char *)sub - offsetof(struct fake_conn, sub));
}

static void fake_notify(struct gw_sub *sub)
{
	struct fake_conn *c = conn_of(sub);

	c->notified++;
	if (c->detach_on_notify)
		gw_room_unsubscribe(sub);
}

static const struct gw_sub_ops fake_ops = {"fake", fake_notify};

static struct gw_rooms *new_rooms(unsigned workers, uint64_t slots, int64_t window_ms,
				  size_t max_rooms)
{
	struct gw_rooms_conf conf = {
		.workers = workers,
		.ring_slots = slots,
		.ring_bytes = 1 << 16,
		.window_ms = window_ms,
		.max_rooms = max_rooms,
	};
	struct gw_rooms *rs = gw_rooms_new(&conf);

	assert_non_null(rs);
	return rs;
}

static struct gw_room *acquire(struct gw_rooms *rs, const char *name)
{
	struct gw_err err = {0};
	struct gw_room *room = gw_rooms_acquire(rs, name, strlen(name), &err);

	if (!room)
		fail_msg("acquire %s: %d %s %s", name, err.status, err.code ? err.code : "",
			 err.detail);
	return room;
}

static uint64_t publish_n(struct gw_room *room, uint64_t n)
{
	char rest[64];
	int len = snprintf(rest, sizeof(rest), "\"type\":\"t\",\"n\":%" PRIu64 "}", n);

	return gw_room_publish(room, rest, (size_t)len);
}

/* ---- names --------------------------------------------------------------- */

static void expect_name(const char *s, size_t len, bool want)
{
	if (gw_name_valid(s, len) != want)
		fail_msg("gw_name_valid(\"%.*s\", %zu) should be %s", (int)len, s, len,
			 want ? "true" : "false");
}

#define NAME(lit, want) expect_name(lit, sizeof(lit) - 1, want)

static void test_name_valid_accepts_allowed_characters(void **state)
{
	char s[65];

	(void)state;
	NAME("r", true);
	NAME("room-1_A", true);
	NAME("ABCDEFGHIJKLMNOPQRSTUVWXYZ", true);
	NAME("abcdefghijklmnopqrstuvwxyz", true);
	NAME("0123456789", true);
	NAME("-", true);
	NAME("_", true);
	memset(s, 'z', sizeof(s));
	expect_name(s, 64, true);
	/* Only len bytes count. */
	expect_name("abc.def", 3, true);
}

static void test_name_valid_rejects_the_rest(void **state)
{
	char s[66];

	(void)state;
	NAME("", false);
	expect_name("abc", 0, false);
	memset(s, 'z', sizeof(s));
	expect_name(s, 65, false);
	NAME(".", false);
	NAME("..", false);
	NAME("a.b", false);
	NAME("/", false);
	NAME("a/b", false);
	NAME(" ", false);
	NAME("a b", false);
	NAME("ab ", false);
	NAME("a\0b", false);
	NAME("caf\xc3\xa9", false);
	NAME("a:b", false);
	NAME("a+b", false);
	NAME("a%2e", false);
	NAME("a\"b", false);
	NAME("a\\b", false);
	NAME("a\nb", false);
	/* Every byte outside the set, alone and at the end of a valid name. */
	for (int c = 0; c < 256; c++) {
		char one[3] = {'a', 'b', (char)c};
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '-' || c == '_';

		expect_name(one + 2, 1, ok);
		expect_name(one, 3, ok);
	}
}

/* ---- registry ------------------------------------------------------------ */

static void test_acquire_creates_once_and_returns_same_room(void **state)
{
	struct gw_rooms *rs = new_rooms(2, 64, 60000, 16);
	struct gw_room *a, *b, *c;
	size_t len;

	(void)state;
	assert_int_equal(gw_rooms_count(rs), 0);
	a = acquire(rs, "alpha");
	assert_int_equal(gw_rooms_count(rs), 1);
	b = acquire(rs, "alpha");
	assert_ptr_equal(a, b);
	assert_int_equal(gw_rooms_count(rs), 1);
	c = acquire(rs, "alpha2");
	assert_ptr_not_equal(a, c);
	assert_int_equal(gw_rooms_count(rs), 2);
	/* Only the first len bytes of the name count. */
	struct gw_err err = {0};
	struct gw_room *d = gw_rooms_acquire(rs, "alpha2", 5, &err);
	assert_ptr_equal(d, a);

	assert_string_equal(gw_room_name(a, &len), "alpha");
	assert_int_equal(len, 5);
	assert_memory_equal(gw_room_name(c, NULL), "alpha2", 6);
	assert_ptr_not_equal(gw_room_ring(a), gw_room_ring(c));
	assert_true(gw_ring_head(gw_room_ring(a)) == 0);
	/* Rings of different rooms get different (random) epochs. */
	assert_true(gw_ring_epoch(gw_room_ring(a)) != gw_ring_epoch(gw_room_ring(c)));

	gw_room_release(a);
	gw_room_release(b);
	gw_room_release(c);
	gw_room_release(d);
	gw_rooms_free(rs);
}

static void test_many_rooms_are_distinct(void **state)
{
	enum { N = 300 };
	struct gw_rooms *rs = new_rooms(1, 16, 60000, N);
	struct gw_room *rooms[N];
	char name[32];

	(void)state;
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "room-%d", i);
		rooms[i] = acquire(rs, name);
		assert_true(publish_n(rooms[i], (uint64_t)i) == 1);
	}
	assert_int_equal(gw_rooms_count(rs), N);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "room-%d", i);
		struct gw_room *again = acquire(rs, name);
		assert_ptr_equal(again, rooms[i]);
		assert_string_equal(gw_room_name(again, NULL), name);
		gw_room_release(again);
		gw_room_release(rooms[i]);
	}
	assert_int_equal(gw_rooms_count(rs), N);
	gw_rooms_free(rs);
}

static void test_max_rooms_refuses_new_rooms(void **state)
{
	struct gw_rooms *rs = new_rooms(2, 64, 60000, 3);
	struct gw_room *r[3], *again;
	struct gw_err err = {0};

	(void)state;
	r[0] = acquire(rs, "a");
	r[1] = acquire(rs, "b");
	r[2] = acquire(rs, "c");
	assert_null(gw_rooms_acquire(rs, "d", 1, &err));
	assert_int_equal(err.status, 503);
	assert_non_null(err.code);
	assert_string_equal(err.code, "too_many_rooms");
	assert_int_equal(gw_rooms_count(rs), 3);
	/* Existing rooms are still found. */
	again = acquire(rs, "b");
	assert_ptr_equal(again, r[1]);
	gw_room_release(again);
	for (int i = 0; i < 3; i++)
		gw_room_release(r[i]);
	gw_rooms_free(rs);
}

/* ---- positions and batches ----------------------------------------------- */

/*
 * Parse a batch `{"room":"<room>","msgs":[…],"cursor":"…","gap":<gap>}` whose
 * messages are `{"seq":S,"ts":T,"type":"t","n":S}`; check ts in [t0, t1].
 * Returns the first seq (0 if none), fills *count and *cur.
 */
static uint64_t check_batch_text(const struct gw_buf *out, const char *room, bool gap, int64_t t0,
				 int64_t t1, size_t *count, struct gw_cursor *cur)
{
	char *s = malloc(out->len + 1);
	const char *p;
	char head[128];
	uint64_t first = 0, prev = 0;
	json_object *o;

	assert_non_null(s);
	memcpy(s, gw_buf_data(out), out->len);
	s[out->len] = '\0';
	o = json_tokener_parse(s);
	if (!o)
		fail_msg("batch is not JSON: %s", s);
	json_object_put(o);

	snprintf(head, sizeof(head), "{\"room\":\"%s\",\"msgs\":[", room);
	if (strncmp(s, head, strlen(head)))
		fail_msg("batch head: %s", s);
	p = s + strlen(head);
	*count = 0;
	while (*p == '{') {
		unsigned long long seq, n;
		long long ts;
		int used = 0;

		if (sscanf(p, "{\"seq\":%llu,\"ts\":%lld,\"type\":\"t\",\"n\":%llu}%n", &seq, &ts, &n,
			   &used) != 3 || !used)
			fail_msg("bad message in %s", s);
		assert_true(seq == n);
		assert_true(ts >= t0 && ts <= t1);
		if (*count)
			assert_true(seq == prev + 1);
		else
			first = seq;
		prev = seq;
		++*count;
		p += used;
		if (*p == ',')
			p++;
	}
	if (strncmp(p, "],\"cursor\":\"", 12))
		fail_msg("no cursor after msgs: %s", s);
	p += 12;
	const char *q = strchr(p, '"');
	assert_non_null(q);
	assert_int_equal(gw_cursor_parse(p, (size_t)(q - p), cur), 0);
	assert_string_equal(q, gap ? "\",\"gap\":true}" : "\",\"gap\":false}");
	free(s);
	return first;
}

static void test_publish_then_batch_from_cursor(void **state)
{
	struct gw_rooms *rs = new_rooms(2, 64, 60000, 4);
	struct gw_room *room = acquire(rs, "r");
	uint64_t epoch = gw_ring_epoch(gw_room_ring(room));
	int64_t t0 = gw_clock_wall_ms();
	struct gw_cursor since = {epoch, 0}, cur;
	struct gw_pos pos;
	struct gw_err err = {0};
	struct gw_batch info;
	struct gw_buf out;
	size_t count;

	(void)state;
	for (uint64_t i = 1; i <= 5; i++)
		assert_true(publish_n(room, i) == i);
	int64_t t1 = gw_clock_wall_ms();

	/* From the cursor "<epoch>-0": all five. */
	assert_int_equal(gw_pos_resolve(room, &since, &pos, &err), 0);
	assert_true(pos.epoch == epoch);
	assert_true(pos.after == 0);
	assert_false(pos.owe_gap);
	assert_true(gw_pos_pending(room, &pos));
	gw_buf_init(&out, 0);
	assert_int_equal(gw_batch_build(room, &pos, BIG, &out, &info), 0);
	assert_true(check_batch_text(&out, "r", false, t0, t1, &count, &cur) == 1);
	assert_int_equal(count, 5);
	assert_int_equal(info.count, 5);
	assert_false(info.gap);
	assert_false(info.more);
	assert_true(cur.epoch == epoch);
	assert_true(cur.seq == 5);
	assert_true(pos.after == 5);
	assert_false(gw_pos_pending(room, &pos));

	/* Resuming from the returned cursor: an empty batch with the same cursor. */
	assert_int_equal(gw_pos_resolve(room, &cur, &pos, &err), 0);
	gw_buf_reset(&out);
	assert_int_equal(gw_batch_build(room, &pos, BIG, &out, &info), 0);
	assert_true(check_batch_text(&out, "r", false, t0, t1, &count, &cur) == 0);
	assert_int_equal(count, 0);
	assert_true(cur.seq == 5 && cur.epoch == epoch);

	/* From the middle. */
	since.seq = 3;
	assert_int_equal(gw_pos_resolve(room, &since, &pos, &err), 0);
	gw_buf_reset(&out);
	assert_int_equal(gw_batch_build(room, &pos, BIG, &out, &info), 0);
	assert_true(check_batch_text(&out, "r", false, t0, t1, &count, &cur) == 4);
	assert_int_equal(count, 2);
	assert_true(cur.seq == 5);

	gw_buf_free(&out);
	gw_room_release(room);
	gw_rooms_free(rs);
}

static void test_batch_max_bytes_splits_and_continues(void **state)
{
	struct gw_rooms *rs = new_rooms(1, 64, 60000, 4);
	struct gw_room *room = acquire(rs, "split");
	struct gw_cursor since = {gw_ring_epoch(gw_room_ring(room)), 0}, cur;
	int64_t t0 = gw_clock_wall_ms();
	struct gw_pos pos;
	struct gw_err err;
	struct gw_batch info;
	struct gw_buf out;
	uint64_t next = 1;
	size_t count;
	int rounds = 0;

	(void)state;
	for (uint64_t i = 1; i <= 20; i++)
		publish_n(room, i);
	int64_t t1 = gw_clock_wall_ms();
	assert_int_equal(gw_pos_resolve(room, &since, &pos, &err), 0);
	gw_buf_init(&out, 0);
	do {
		assert_true(++rounds <= 20);
		gw_buf_reset(&out);
		/* Room for about three messages per batch. */
		assert_int_equal(gw_batch_build(room, &pos, 150, &out, &info), 0);
		assert_true(check_batch_text(&out, "split", false, t0, t1, &count, &cur) == next);
		assert_true(count >= 1 && count <= 4);
		assert_int_equal(info.count, count);
		next += count;
		assert_true(cur.seq == next - 1);
		assert_true(pos.after == next - 1);
		assert_true(info.more == (next <= 20));
	} while (info.more);
	assert_true(next == 21);
	gw_buf_free(&out);
	gw_room_release(room);
	gw_rooms_free(rs);
}

static void test_resolve_without_cursor_starts_at_head(void **state)
{
	struct gw_rooms *rs = new_rooms(1, 64, 60000, 4);
	struct gw_room *room = acquire(rs, "live");
	int64_t t0 = gw_clock_wall_ms();
	struct gw_cursor cur;
	struct gw_pos pos;
	struct gw_err err;
	struct gw_batch info;
	struct gw_buf out;
	size_t count;

	(void)state;
	publish_n(room, 1);
	publish_n(room, 2);
	assert_int_equal(gw_pos_resolve(room, NULL, &pos, &err), 0);
	assert_true(pos.after == 2);
	assert_false(pos.owe_gap);
	assert_true(pos.epoch == gw_ring_epoch(gw_room_ring(room)));
	assert_false(gw_pos_pending(room, &pos));

	/* An empty batch now still carries a cursor at the head. */
	gw_buf_init(&out, 0);
	assert_int_equal(gw_batch_build(room, &pos, BIG, &out, &info), 0);
	check_batch_text(&out, "live", false, t0, t0, &count, &cur);
	assert_int_equal(count, 0);
	assert_true(cur.seq == 2);

	for (uint64_t i = 3; i <= 5; i++)
		publish_n(room, i);
	int64_t t1 = gw_clock_wall_ms();
	assert_true(gw_pos_pending(room, &pos));
	gw_buf_reset(&out);
	assert_int_equal(gw_batch_build(room, &pos, BIG, &out, &info), 0);
	assert_true(check_batch_text(&out, "live", false, t0, t1, &count, &cur) == 3);
	assert_int_equal(count, 3);
	assert_true(cur.seq == 5);
	gw_buf_free(&out);
	gw_room_release(room);
	gw_rooms_free(rs);
}

static void test_cursor_of_other_epoch_gets_gap_from_oldest(void **state)
{
	struct gw_rooms *rs = new_rooms(1, 8, 60000, 4);
	struct gw_room *room = acquire(rs, "r2");
	uint64_t epoch = gw_ring_epoch(gw_room_ring(room));
	int64_t t0 = gw_clock_wall_ms();
	struct gw_cursor since = {epoch ^ 1, 3}, cur;
	struct gw_pos pos;
	struct gw_err err;
	struct gw_batch info;
	struct gw_buf out;
	size_t count;

	(void)state;
	gw_buf_init(&out, 0);
	/* All retained: the gap is owed anyway, messages start at seq 1. */
	for (uint64_t i = 1; i <= 4; i++)
		publish_n(room, i);
	int64_t t1 = gw_clock_wall_ms();
	assert_int_equal(gw_pos_resolve(room, &since, &pos, &err), 0);
	assert_true(pos.owe_gap);
	assert_true(pos.epoch == epoch);
	assert_true(gw_pos_pending(room, &pos));
	assert_int_equal(gw_batch_build(room, &pos, BIG, &out, &info), 0);
	assert_true(check_batch_text(&out, "r2", true, t0, t1, &count, &cur) == 1);
	assert_true(info.gap);
	assert_int_equal(count, 4);
	assert_true(cur.epoch == epoch && cur.seq == 4);
	/* Paid: the next batch has no gap. */
	assert_false(pos.owe_gap);
	assert_false(gw_pos_pending(room, &pos));
	gw_buf_reset(&out);
	assert_int_equal(gw_batch_build(room, &pos, BIG, &out, &info), 0);
	check_batch_text(&out, "r2", false, t0, t1, &count, &cur);
	assert_false(info.gap);

	/* Ring wrapped (8 slots, 20 messages): starts at the oldest retained, 13. */
	for (uint64_t i = 5; i <= 20; i++)
		publish_n(room, i);
	t1 = gw_clock_wall_ms();
	since.seq = 25; /* even "ahead" is fine: it refers to another ring */
	assert_int_equal(gw_pos_resolve(room, &since, &pos, &err), 0);
	gw_buf_reset(&out);
	assert_int_equal(gw_batch_build(room, &pos, BIG, &out, &info), 0);
	assert_true(check_batch_text(&out, "r2", true, t0, t1, &count, &cur) ==
		    gw_ring_oldest(gw_room_ring(room), gw_clock_wall_ms()));
	assert_int_equal(count, 8);
	assert_true(cur.seq == 20);
	gw_buf_free(&out);
	gw_room_release(room);
	gw_rooms_free(rs);
}

static void test_evicted_cursor_of_same_epoch_gets_gap(void **state)
{
	struct gw_rooms *rs = new_rooms(1, 8, 60000, 4);
	struct gw_room *room = acquire(rs, "r3");
	struct gw_cursor since = {gw_ring_epoch(gw_room_ring(room)), 2}, cur;
	int64_t t0 = gw_clock_wall_ms();
	struct gw_pos pos;
	struct gw_err err;
	struct gw_batch info;
	struct gw_buf out;
	size_t count;

	(void)state;
	for (uint64_t i = 1; i <= 30; i++)
		publish_n(room, i);
	int64_t t1 = gw_clock_wall_ms();
	assert_int_equal(gw_pos_resolve(room, &since, &pos, &err), 0);
	assert_false(pos.owe_gap);
	gw_buf_init(&out, 0);
	assert_int_equal(gw_batch_build(room, &pos, BIG, &out, &info), 0);
	assert_true(check_batch_text(&out, "r3", true, t0, t1, &count, &cur) == 23);
	assert_true(info.gap);
	assert_int_equal(count, 8);
	assert_true(cur.seq == 30);
	gw_buf_free(&out);
	gw_room_release(room);
	gw_rooms_free(rs);
}

static void test_cursor_ahead_of_room_is_refused(void **state)
{
	struct gw_rooms *rs = new_rooms(1, 8, 60000, 4);
	struct gw_room *room = acquire(rs, "r4");
	struct gw_cursor since = {gw_ring_epoch(gw_room_ring(room)), 1};
	struct gw_pos pos;
	struct gw_err err = {0};

	(void)state;
	assert_int_equal(gw_pos_resolve(room, &since, &pos, &err), -1);
	assert_int_equal(err.status, 400);
	assert_string_equal(err.code, "bad_cursor");
	publish_n(room, 1);
	publish_n(room, 2);
	since.seq = 3;
	memset(&err, 0, sizeof(err));
	assert_int_equal(gw_pos_resolve(room, &since, &pos, &err), -1);
	assert_int_equal(err.status, 400);
	assert_string_equal(err.code, "bad_cursor");
	since.seq = UINT64_MAX;
	assert_int_equal(gw_pos_resolve(room, &since, &pos, &err), -1);
	/* At the head is fine. */
	since.seq = 2;
	assert_int_equal(gw_pos_resolve(room, &since, &pos, &err), 0);
	assert_true(pos.after == 2);
	gw_room_release(room);
	gw_rooms_free(rs);
}

static void test_too_big_publish_returns_zero(void **state)
{
	struct gw_rooms *rs = new_rooms(1, 8, 60000, 4);
	struct gw_room *room = acquire(rs, "r5");
	size_t max = gw_ring_max_message(gw_room_ring(room));
	char *big = malloc(max + 1);

	(void)state;
	assert_non_null(big);
	memset(big, 'x', max + 1);
	assert_true(gw_room_publish(room, big, max + 1) == 0);
	assert_true(gw_ring_head(gw_room_ring(room)) == 0);
	free(big);
	gw_room_release(room);
	gw_rooms_free(rs);
}

/* ---- subscribers and wake-ups --------------------------------------------- */

static void init_conn(struct fake_conn *c)
{
	memset(c, 0, sizeof(*c));
	c->sub.ops = &fake_ops;
}

static void test_publish_wakes_each_worker_once_until_dispatch(void **state)
{
	struct gw_rooms *rs = new_rooms(2, 64, 60000, 4);
	struct wakes wk;
	struct fake_conn c0, c1;
	struct gw_room *room;

	(void)state;
	memset(&wk, 0, sizeof(wk));
	gw_rooms_set_waker(rs, record_wake, &wk);
	room = acquire(rs, "subs");
	init_conn(&c0);
	init_conn(&c1);
	gw_room_subscribe(room, &c0.sub, 0);
	gw_room_subscribe(room, &c1.sub, 1);
	assert_ptr_equal(c0.sub.room, room);
	assert_int_equal(c1.sub.worker, 1);

	/* Subscribing alone wakes nobody. */
	assert_int_equal(atomic_load(&wk.calls[0]) + atomic_load(&wk.calls[1]), 0);

	assert_true(publish_n(room, 1) == 1);
	assert_int_equal(atomic_load(&wk.calls[0]), 1);
	assert_int_equal(atomic_load(&wk.calls[1]), 1);
	/* A second publish before dispatch: already queued, no new wake-up. */
	assert_true(publish_n(room, 2) == 2);
	assert_int_equal(atomic_load(&wk.calls[0]), 1);
	assert_int_equal(atomic_load(&wk.calls[1]), 1);
	assert_int_equal(c0.notified, 0);
	assert_int_equal(c1.notified, 0);

	/* Worker 0 dispatches: its sub is notified once, the other is not. */
	gw_rooms_dispatch(rs, 0);
	assert_int_equal(c0.notified, 1);
	assert_int_equal(c1.notified, 0);
	gw_rooms_dispatch(rs, 0); /* nothing new */
	assert_int_equal(c0.notified, 1);

	/* Worker 0 is idle again: a publish wakes it; worker 1 is still queued. */
	assert_true(publish_n(room, 3) == 3);
	assert_int_equal(atomic_load(&wk.calls[0]), 2);
	assert_int_equal(atomic_load(&wk.calls[1]), 1);

	gw_rooms_dispatch(rs, 1);
	assert_int_equal(c1.notified, 1);
	gw_rooms_dispatch(rs, 0);
	assert_int_equal(c0.notified, 2);
	gw_rooms_dispatch(rs, 0);
	gw_rooms_dispatch(rs, 1);
	assert_int_equal(c0.notified, 2);
	assert_int_equal(c1.notified, 1);

	gw_room_unsubscribe(&c0.sub);
	gw_room_unsubscribe(&c1.sub);
	gw_room_release(room);
	gw_rooms_free(rs);
}

static void test_dispatch_notifies_every_sub_of_the_worker(void **state)
{
	enum { NS = 5 };
	struct gw_rooms *rs = new_rooms(2, 64, 60000, 4);
	struct wakes wk;
	struct fake_conn c[NS], other;
	struct gw_room *room, *room2;

	(void)state;
	memset(&wk, 0, sizeof(wk));
	gw_rooms_set_waker(rs, record_wake, &wk);
	room = acquire(rs, "many");
	room2 = acquire(rs, "other");
	for (int i = 0; i < NS; i++) {
		init_conn(&c[i]);
		gw_room_subscribe(room, &c[i].sub, 0);
	}
	init_conn(&other);
	gw_room_subscribe(room2, &other.sub, 0);

	publish_n(room, 1);
	publish_n(room, 2);
	assert_int_equal(atomic_load(&wk.calls[0]), 1);
	assert_int_equal(atomic_load(&wk.calls[1]), 0); /* no subscriber on worker 1 */
	/* Another room on the same worker rides along with the pending wake-up. */
	publish_n(room2, 1);
	assert_int_equal(atomic_load(&wk.calls[0]), 1);
	gw_rooms_dispatch(rs, 0);
	for (int i = 0; i < NS; i++)
		assert_int_equal(c[i].notified, 1);
	assert_int_equal(other.notified, 1);

	/* A middle subscriber leaves: the others still get notified, it does not. */
	gw_room_unsubscribe(&c[2].sub);
	assert_null(c[2].sub.room);
	gw_room_unsubscribe(&c[2].sub); /* twice is safe */
	publish_n(room, 3);
	gw_rooms_dispatch(rs, 0);
	for (int i = 0; i < NS; i++)
		assert_int_equal(c[i].notified, i == 2 ? 1 : 2);
	assert_int_equal(other.notified, 1);

	for (int i = 0; i < NS; i++)
		gw_room_unsubscribe(&c[i].sub);
	gw_room_unsubscribe(&other.sub);
	gw_room_release(room);
	gw_room_release(room2);
	gw_rooms_free(rs);
}

static void test_unsubscribe_stops_notifications(void **state)
{
	struct gw_rooms *rs = new_rooms(2, 64, 60000, 4);
	struct wakes wk;
	struct fake_conn c0, c1;
	struct gw_room *room;

	(void)state;
	memset(&wk, 0, sizeof(wk));
	gw_rooms_set_waker(rs, record_wake, &wk);
	room = acquire(rs, "unsub");
	init_conn(&c0);
	init_conn(&c1);
	gw_room_subscribe(room, &c0.sub, 0);
	gw_room_subscribe(room, &c1.sub, 1);
	gw_room_unsubscribe(&c0.sub);

	publish_n(room, 1);
	assert_int_equal(atomic_load(&wk.calls[0]), 0);
	assert_int_equal(atomic_load(&wk.calls[1]), 1);
	gw_rooms_dispatch(rs, 0);
	gw_rooms_dispatch(rs, 1);
	assert_int_equal(c0.notified, 0);
	assert_int_equal(c1.notified, 1);

	/* Unsubscribed while queued: the dispatch skips it. */
	publish_n(room, 2);
	assert_int_equal(atomic_load(&wk.calls[1]), 2);
	gw_room_unsubscribe(&c1.sub);
	gw_rooms_dispatch(rs, 1);
	assert_int_equal(c1.notified, 1);
	publish_n(room, 3);
	assert_int_equal(atomic_load(&wk.calls[1]), 2);
	gw_rooms_dispatch(rs, 1);
	assert_int_equal(c1.notified, 1);

	/* Re-subscribing works again. */
	gw_room_subscribe(room, &c0.sub, 0);
	publish_n(room, 4);
	assert_int_equal(atomic_load(&wk.calls[0]), 1);
	gw_rooms_dispatch(rs, 0);
	assert_int_equal(c0.notified, 1);
	gw_room_unsubscribe(&c0.sub);
	gw_room_release(room);
	gw_rooms_free(rs);
}

static void test_notify_may_detach_itself(void **state)
{
	struct gw_rooms *rs = new_rooms(1, 64, 60000, 4);
	struct wakes wk;
	struct fake_conn c[3];
	struct gw_room *room;

	(void)state;
	memset(&wk, 0, sizeof(wk));
	gw_rooms_set_waker(rs, record_wake, &wk);
	room = acquire(rs, "detach");
	for (int i = 0; i < 3; i++) {
		init_conn(&c[i]);
		c[i].detach_on_notify = true;
		gw_room_subscribe(room, &c[i].sub, 0);
	}
	publish_n(room, 1);
	gw_rooms_dispatch(rs, 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(c[i].notified, 1);
		assert_null(c[i].sub.room);
	}
	publish_n(room, 2);
	assert_int_equal(atomic_load(&wk.calls[0]), 1);
	gw_rooms_dispatch(rs, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(c[i].notified, 1);
	gw_room_release(room);
	gw_rooms_free(rs);
}

/* ---- reaping ------------------------------------------------------------- */

#define REAP_WINDOW 200

/*
 * Reap right after the room was last used: nothing may go, unless this thread
 * stalled for a whole window since since_ms (loaded machine). Returns what went.
 */
static size_t expect_not_reaped_yet(struct gw_rooms *rs, int64_t since_ms)
{
	size_t n = gw_rooms_reap(rs);

	if (gw_clock_mono_ms() - since_ms < REAP_WINDOW)
		assert_int_equal(n, 0);
	return n;
}

static void test_reap_reclaims_idle_unreferenced_room(void **state)
{
	struct gw_rooms *rs = new_rooms(2, 16, REAP_WINDOW, 4);
	struct gw_room *room;
	uint64_t epoch;
	int64_t t;

	(void)state;
	room = acquire(rs, "idle");
	publish_n(room, 1);
	epoch = gw_ring_epoch(gw_room_ring(room));
	/* Held: never reaped, however long. */
	sleep_ms(REAP_WINDOW + 100);
	assert_int_equal(gw_rooms_reap(rs), 0);
	assert_int_equal(gw_rooms_count(rs), 1);

	t = gw_clock_mono_ms();
	gw_room_release(room);
	/* Released but just used: not idle yet. */
	size_t reaped = expect_not_reaped_yet(rs, t);

	sleep_ms(REAP_WINDOW + 100);
	assert_int_equal(reaped + gw_rooms_reap(rs), 1);
	assert_int_equal(gw_rooms_count(rs), 0);
	assert_int_equal(gw_rooms_reap(rs), 0);

	/* The name makes a fresh room: new ring, new epoch, empty. */
	room = acquire(rs, "idle");
	assert_int_equal(gw_rooms_count(rs), 1);
	assert_true(gw_ring_head(gw_room_ring(room)) == 0);
	assert_true(gw_ring_epoch(gw_room_ring(room)) != epoch);
	/* A cursor from the reclaimed room is recognised as foreign. */
	struct gw_cursor old = {epoch, 1};
	struct gw_pos pos;
	struct gw_err err;
	assert_int_equal(gw_pos_resolve(room, &old, &pos, &err), 0);
	assert_true(pos.owe_gap);
	gw_room_release(room);
	gw_rooms_free(rs);
}

static void test_reap_never_takes_a_room_with_a_subscriber(void **state)
{
	struct gw_rooms *rs = new_rooms(2, 16, REAP_WINDOW, 4);
	struct wakes wk;
	struct fake_conn c;
	struct gw_room *room, *keep;
	int64_t t;

	(void)state;
	memset(&wk, 0, sizeof(wk));
	gw_rooms_set_waker(rs, record_wake, &wk);
	room = acquire(rs, "held");
	keep = acquire(rs, "other");
	init_conn(&c);
	gw_room_subscribe(room, &c.sub, 1);
	gw_room_release(room); /* the subscription is the only reference now */
	sleep_ms(REAP_WINDOW + 100);
	assert_int_equal(gw_rooms_reap(rs), 0);
	assert_int_equal(gw_rooms_count(rs), 2);

	/* Still usable: the room and its ring are intact. */
	assert_true(publish_n(room, 1) == 1);
	gw_rooms_dispatch(rs, 1);
	assert_int_equal(c.notified, 1);

	t = gw_clock_mono_ms();
	gw_room_unsubscribe(&c.sub);
	size_t reaped = expect_not_reaped_yet(rs, t);
	sleep_ms(REAP_WINDOW + 100);
	assert_int_equal(reaped + gw_rooms_reap(rs), 1);
	assert_int_equal(gw_rooms_count(rs), 1);
	/* The other room (still held) survives. */
	assert_string_equal(gw_room_name(keep, NULL), "other");
	gw_room_release(keep);
	gw_rooms_free(rs);
}

/* A pending dispatch holds the room: reaping it before dispatch would be a use after free. */
static void test_reap_waits_for_pending_dispatch(void **state)
{
	struct gw_rooms *rs = new_rooms(1, 16, REAP_WINDOW, 4);
	struct wakes wk;
	struct fake_conn c;
	struct gw_room *room;

	(void)state;
	memset(&wk, 0, sizeof(wk));
	gw_rooms_set_waker(rs, record_wake, &wk);
	room = acquire(rs, "queued");
	init_conn(&c);
	gw_room_subscribe(room, &c.sub, 0);
	publish_n(room, 1); /* queued on worker 0 */
	gw_room_unsubscribe(&c.sub);
	gw_room_release(room);
	sleep_ms(REAP_WINDOW + 100);
	assert_int_equal(gw_rooms_reap(rs), 0);
	gw_rooms_dispatch(rs, 0); /* drops the queue's reference */
	assert_int_equal(c.notified, 0);
	sleep_ms(REAP_WINDOW + 100);
	assert_int_equal(gw_rooms_reap(rs), 1);
	assert_int_equal(gw_rooms_count(rs), 0);
	gw_rooms_free(rs);
}

/* ---- threads: publishers, worker threads dispatching only on wake-ups ---- */

#define TH_WORKERS 2
#define TH_SUBS 2      /* per worker */
#define TH_PUBLISHERS 2
#define TH_EACH 5000

struct th {
	struct gw_rooms *rs;
	struct gw_room *room;
	struct wakes wk;
	pthread_barrier_t start;
	_Atomic int published;  /* publishers finished */
	_Atomic uint64_t subscribed_head[TH_WORKERS * TH_SUBS];
};

struct th_worker {
	struct th *th;
	unsigned id;
	struct fake_conn conns[TH_SUBS];
	bool timed_out;
	int dispatches;
};

static struct gw_buf th_out[TH_WORKERS];

/*
 * Notify on a worker thread: one batch from the sub's position up to the head
 * (no byte limit, so it never chases the publishers: what arrives later must
 * come with a later wake-up). Checks every seq follows the previous one.
 */
static void th_notify(struct gw_sub *sub)
{
	struct fake_conn *c = conn_of(sub);
	struct gw_buf *out = &th_out[sub->worker];

	c->notified++;
	for (int guard = 0; guard < 1000; guard++) {
		struct gw_batch info;
		uint64_t before = c->pos.after, n = 0;
		const char *p;

		gw_buf_reset(out);
		if (gw_batch_build(sub->room, &c->pos, BIG, out, &info) || gw_buf_putc(out, '\0')) {
			c->errors++;
			return;
		}
		p = strstr(gw_buf_data(out), "\"msgs\":[");
		p = p ? p + 8 : "";
		while (*p == '{') {
			unsigned long long seq, num;
			long long ts;
			int used = 0;

			if (sscanf(p, "{\"seq\":%llu,\"ts\":%lld,\"type\":\"t\",\"n\":%llu}%n", &seq,
				   &ts, &num, &used) != 3 || !used || seq != before + 1 + n) {
				c->errors++;
				snprintf(c->why, sizeof(c->why), "after %" PRIu64 ": %.80s",
					 before + n, p);
				return;
			}
			n++;
			p += used;
			if (*p == ',')
				p++;
		}
		if (n != info.count || strncmp(p, "],\"cursor\":\"", 12)) {
			c->errors++;
			snprintf(c->why, sizeof(c->why), "%" PRIu64 " of %zu messages parsed: %.80s",
				 n, info.count, p);
			return;
		}
		if (info.gap) {
			c->errors++;
			snprintf(c->why, sizeof(c->why), "unexpected gap after %" PRIu64, before);
		}
		c->received += info.count;
		/* Only an overrun stops a read with no byte limit early. */
		if (!info.more)
			return;
	}
}

static const struct gw_sub_ops th_ops = {"threaded", th_notify};

static void *th_worker_main(void *arg)
{
	struct th_worker *w = arg;
	struct th *th = w->th;
	uint64_t total = (uint64_t)TH_PUBLISHERS * TH_EACH;
	int64_t deadline;

	gw_buf_init(&th_out[w->id], 0);
	pthread_barrier_wait(&th->start);
	/*
	 * Subscribe while publishers run, as a transport does: subscribe, then
	 * resolve (no cursor: from the head). Every later message must be
	 * announced by a wake-up, which is the only thing that makes us dispatch.
	 */
	for (int i = 0; i < TH_SUBS; i++) {
		struct fake_conn *c = &w->conns[i];
		struct gw_err err;

		memset(c, 0, sizeof(*c));
		c->sub.ops = &th_ops;
		gw_room_subscribe(th->room, &c->sub, w->id);
		if (gw_pos_resolve(th->room, NULL, &c->pos, &err))
			c->errors++;
		atomic_store(&th->subscribed_head[w->id * TH_SUBS + (unsigned)i], c->pos.after);
		/* The later subscriber joins mid-stream. */
		if (i + 1 < TH_SUBS)
			sleep_ms(20);
	}
	deadline = gw_clock_mono_ms() + 30000;
	for (;;) {
		bool done = atomic_load(&th->published) == TH_PUBLISHERS;

		for (int i = 0; i < TH_SUBS && done; i++)
			done = w->conns[i].pos.after == total;
		if (done)
			break;
		if (gw_clock_mono_ms() > deadline) {
			w->timed_out = true;
			break;
		}
		if (atomic_exchange(&th->wk.flag[w->id], 0)) {
			gw_rooms_dispatch(th->rs, w->id);
			w->dispatches++;
		} else {
			sched_yield();
		}
	}
	for (int i = 0; i < TH_SUBS; i++)
		gw_room_unsubscribe(&w->conns[i].sub);
	gw_buf_free(&th_out[w->id]);
	return NULL;
}

static void *th_publisher_main(void *arg)
{
	struct th *th = arg;

	pthread_barrier_wait(&th->start);
	for (int i = 0; i < TH_EACH; i++) {
		if (!publish_n(th->room, (uint64_t)i))
			abort();
		/* Pace the stream (~1 s) so workers go through many wake/dispatch rounds. */
		if (i % 10 == 0)
			sleep_ms(1);
	}
	atomic_fetch_add(&th->published, 1);
	return NULL;
}

/* notify checks seq, not n, for messages from concurrent publishers. */
static void test_concurrent_publish_and_dispatch_loses_no_wakeup(void **state)
{
	struct gw_rooms_conf conf = {
		.workers = TH_WORKERS,
		.ring_slots = 1 << 15,
		.ring_bytes = 4 << 20,
		.window_ms = 600000,
		.max_rooms = 4,
	};
	struct th th;
	struct th_worker w[TH_WORKERS];
	pthread_t tw[TH_WORKERS], tp[TH_PUBLISHERS];
	uint64_t total = (uint64_t)TH_PUBLISHERS * TH_EACH;

	(void)state;
	memset(&th, 0, sizeof(th));
	th.rs = gw_rooms_new(&conf);
	assert_non_null(th.rs);
	gw_rooms_set_waker(th.rs, record_wake, &th.wk);
	th.room = acquire(th.rs, "busy");
	assert_int_equal(pthread_barrier_init(&th.start, NULL, TH_WORKERS + TH_PUBLISHERS), 0);
	for (unsigned i = 0; i < TH_WORKERS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].th = &th;
		w[i].id = i;
		assert_int_equal(pthread_create(&tw[i], NULL, th_worker_main, &w[i]), 0);
	}
	for (int i = 0; i < TH_PUBLISHERS; i++)
		assert_int_equal(pthread_create(&tp[i], NULL, th_publisher_main, &th), 0);
	for (int i = 0; i < TH_PUBLISHERS; i++)
		pthread_join(tp[i], NULL);
	for (int i = 0; i < TH_WORKERS; i++)
		pthread_join(tw[i], NULL);
	pthread_barrier_destroy(&th.start);

	assert_true(gw_ring_head(gw_room_ring(th.room)) == total);
	for (int i = 0; i < TH_WORKERS; i++) {
		print_message("  worker %d: %d dispatches, %d wake-ups\n", i, w[i].dispatches,
			      atomic_load(&th.wk.calls[i]));
		for (int j = 0; j < TH_SUBS; j++) {
			struct fake_conn *c = &w[i].conns[j];
			uint64_t from = atomic_load(&th.subscribed_head[i * TH_SUBS + j]);

			if (c->errors)
				fail_msg("worker %d sub %d: %" PRIu64 " errors: %s", i, j, c->errors,
					 c->why);
			if (w[i].timed_out || c->pos.after != total)
				fail_msg("worker %d sub %d stuck at %" PRIu64 " of %" PRIu64
					 " (lost wake-up?)",
					 i, j, c->pos.after, total);
			print_message("    sub %d joined after seq %" PRIu64 ", %d notifications\n", j,
				      from, c->notified);
			assert_true(c->received == total - from);
		}
	}
	gw_room_release(th.room);
	gw_rooms_free(th.rs);
}

/* ---- threads: several publishers, a ring that overruns its subscribers ---- */

/*
 * Three publishers flood a room whose ring holds ~50 messages while two
 * worker threads deliver to four subscribers in small and large batches. One
 * subscriber stops reading (its notifications are only remembered) until
 * half the messages are out, as a WebSocket whose client stalled: it must
 * then get a batch with gap:true and carry on from there. Every batch is
 * checked on the worker thread: the exact bytes of each message (rebuilt
 * from the publisher and index it names), seq contiguous within the batch and
 * from the cursor unless the batch says gap, the cursor, each publisher's
 * order and ts never decreasing.
 */
#define OV_WORKERS 2
#define OV_PUBLISHERS 3
#define OV_EACH 8000
#define OV_TOTAL ((uint64_t)OV_PUBLISHERS * OV_EACH)

struct ov {
	struct gw_rooms *rs;
	struct gw_room *room;
	uint64_t epoch;
	struct wakes wk;
	pthread_barrier_t start;
	_Atomic uint64_t published;
	_Atomic int publishers_done;
	_Atomic int resume; /* the stalled subscriber reads again */
};

struct ov_sub {
	struct gw_sub sub;
	struct ov *ov;
	struct gw_buf *out; /* its worker's buffer */
	size_t max_bytes;
	bool stalled; /* ignores notifications until ov->resume */
	bool owed;    /* notified while stalled */
	struct gw_pos pos;
	uint64_t last_i[OV_PUBLISHERS];
	int64_t last_ts;
	uint64_t received, batches, gaps, problems;
	char why[200];
};

#define OV_SUBS 2 /* per worker */

struct ov_worker {
	struct ov *ov;
	unsigned id;
	struct gw_buf out;
	struct ov_sub subs[OV_SUBS];
	bool timed_out;
};

/* `"type":"t","w":W,"i":I,"pad":"…"}`, 0..150 pad bytes chosen by (w, i). */
static size_t ov_rest(unsigned w, uint64_t i, char *out)
{
	size_t n = (size_t)sprintf(out, "\"type\":\"t\",\"w\":%u,\"i\":%" PRIu64 ",\"pad\":\"", w,
				   i);
	size_t pad = (size_t)((i * 13 + w * 41) % 151);

	for (size_t k = 0; k < pad; k++)
		out[n++] = (char)('A' + (i * 5 + w * 11 + k) % 26);
	out[n++] = '"';
	out[n++] = '}';
	return n;
}

/* At *p: the literal `lit`, then an unsigned decimal, then `end`; advances *p past them. */
static bool ov_field(const char **p, const char *limit, const char *lit, char end, uint64_t *v)
{
	size_t n = strlen(lit);
	const char *s = *p;

	if ((size_t)(limit - s) < n || memcmp(s, lit, n))
		return false;
	s += n;
	*v = 0;
	if (s >= limit || *s < '0' || *s > '9')
		return false;
	while (s < limit && *s >= '0' && *s <= '9') {
		if (*v > (UINT64_MAX - 9) / 10)
			return false;
		*v = *v * 10 + (uint64_t)(*s++ - '0');
	}
	if (s >= limit || *s != end)
		return false;
	*p = s + 1;
	return true;
}

#define OV_BAD(s, ...)                                                                             \
	do {                                                                                       \
		(s)->problems++;                                                                   \
		if (!(s)->why[0])                                                                  \
			snprintf((s)->why, sizeof((s)->why), __VA_ARGS__);                         \
	} while (0)

/* Check the batch in s->out, built from `before`; worker thread (no cmocka calls). */
static bool ov_check(struct ov_sub *s, uint64_t before, const struct gw_batch *info)
{
	const char *p = gw_buf_data(s->out), *end = p + s->out->len;
	char want[512];
	uint64_t prev = before;
	size_t count = 0;
	struct gw_cursor cur;
	const char *q;

	q = "{\"room\":\"stall\",\"msgs\":[";
	if ((size_t)(end - p) < strlen(q) || memcmp(p, q, strlen(q))) {
		OV_BAD(s, "batch head: %.*s", (int)(end - p < 60 ? end - p : 60), p);
		return false;
	}
	p += strlen(q);
	while (p < end && *p == '{') {
		uint64_t seq, ts, w, i;
		size_t n;

		q = p;
		if (!ov_field(&q, end, "{\"seq\":", ',', &seq) ||
		    !ov_field(&q, end, "\"ts\":", ',', &ts) ||
		    !ov_field(&q, end, "\"type\":\"t\",\"w\":", ',', &w) ||
		    !ov_field(&q, end, "\"i\":", ',', &i) || w >= OV_PUBLISHERS || i >= OV_EACH) {
			OV_BAD(s, "after %" PRIu64 ": bad message %.*s", prev,
			       (int)(end - p < 60 ? end - p : 60), p);
			return false;
		}
		n = (size_t)sprintf(want, "{\"seq\":%" PRIu64 ",\"ts\":%" PRIu64 ",", seq, ts);
		n += ov_rest((unsigned)w, i, want + n);
		if ((size_t)(end - p) < n || memcmp(p, want, n)) {
			OV_BAD(s, "seq %" PRIu64 ": not the bytes publisher %" PRIu64
				  " sent as its message %" PRIu64, seq, w, i);
			return false;
		}
		p += n;
		if (count ? seq != prev + 1 : (seq <= before || (seq > before + 1) != info->gap))
			OV_BAD(s, "seq %" PRIu64 " after %" PRIu64 " (gap=%d, batch message %zu)",
			       seq, prev, info->gap, count);
		if (s->last_i[w] != UINT64_MAX && i <= s->last_i[w])
			OV_BAD(s, "publisher %" PRIu64 ": message %" PRIu64 " after %" PRIu64, w, i,
			       s->last_i[w]);
		if ((int64_t)ts < s->last_ts)
			OV_BAD(s, "seq %" PRIu64 ": ts went back", seq);
		s->last_i[w] = i;
		s->last_ts = (int64_t)ts;
		prev = seq;
		count++;
		if (p < end && *p == ',')
			p++;
	}
	q = "],\"cursor\":\"";
	if ((size_t)(end - p) < strlen(q) || memcmp(p, q, strlen(q))) {
		OV_BAD(s, "no cursor after the messages");
		return false;
	}
	p += strlen(q);
	q = memchr(p, '"', (size_t)(end - p));
	if (!q || gw_cursor_parse(p, (size_t)(q - p), &cur)) {
		OV_BAD(s, "unparsable cursor");
		return false;
	}
	p = q;
	q = info->gap ? "\",\"gap\":true}" : "\",\"gap\":false}";
	if ((size_t)(end - p) != strlen(q) || memcmp(p, q, strlen(q)))
		OV_BAD(s, "batch tail does not match gap=%d", info->gap);
	/* The cursor names the last message sent (or where a gap with none left us). */
	if (count != info->count || cur.epoch != s->ov->epoch || cur.seq != s->pos.after ||
	    (count && cur.seq != prev) || (!count && !info->gap && cur.seq != before))
		OV_BAD(s, "cursor %" PRIu64 " after %zu messages ending at %" PRIu64, cur.seq,
		       count, prev);
	s->received += count;
	s->batches++;
	s->gaps += info->gap;
	return true;
}

/* What a transport's writable callback does: send batches until none is due. */
static void ov_drain(struct ov_sub *s)
{
	for (int guard = 0; guard < 100000; guard++) {
		struct gw_batch info;
		uint64_t before = s->pos.after;

		if (!gw_pos_pending(s->sub.room, &s->pos))
			return;
		gw_buf_reset(s->out);
		if (gw_batch_build(s->sub.room, &s->pos, s->max_bytes, s->out, &info)) {
			OV_BAD(s, "gw_batch_build failed");
			return;
		}
		if (!ov_check(s, before, &info))
			return;
	}
}

static void ov_notify(struct gw_sub *sub)
{
	struct ov_sub *s = (struct ov_sub *)((char *)sub - offsetof(struct ov_sub, sub));

	if (s->stalled && !atomic_load(&s->ov->resume)) {
		s->owed = true; /* a stalled client: the writable callback never comes */
		return;
	}
	ov_drain(s);
}

static const struct gw_sub_ops ov_ops = {"overrun", ov_notify};

static void *ov_worker_main(void *arg)
{
	struct ov_worker *w = arg;
	struct ov *ov = w->ov;
	int64_t deadline;

	gw_buf_init(&w->out, 0);
	for (int i = 0; i < OV_SUBS; i++) {
		struct ov_sub *s = &w->subs[i];
		struct gw_err err;

		s->sub.ops = &ov_ops;
		s->ov = ov;
		s->out = &w->out;
		for (int k = 0; k < OV_PUBLISHERS; k++)
			s->last_i[k] = UINT64_MAX;
		gw_room_subscribe(ov->room, &s->sub, w->id);
		if (gw_pos_resolve(ov->room, NULL, &s->pos, &err))
			OV_BAD(s, "resolve failed");
	}
	pthread_barrier_wait(&ov->start);
	deadline = gw_clock_mono_ms() + 60000;
	for (;;) {
		bool done = atomic_load(&ov->publishers_done) == OV_PUBLISHERS;

		for (int i = 0; i < OV_SUBS && done; i++)
			done = w->subs[i].pos.after == OV_TOTAL;
		if (done)
			break;
		if (gw_clock_mono_ms() > deadline) {
			w->timed_out = true;
			break;
		}
		if (atomic_exchange(&ov->wk.flag[w->id], 0))
			gw_rooms_dispatch(ov->rs, w->id);
		else
			sched_yield();
		/* The stalled client reads again: what it was owed goes out now. */
		for (int i = 0; i < OV_SUBS; i++) {
			struct ov_sub *s = &w->subs[i];

			if (s->owed && atomic_load(&ov->resume)) {
				s->owed = false;
				ov_drain(s);
			}
		}
	}
	for (int i = 0; i < OV_SUBS; i++)
		gw_room_unsubscribe(&w->subs[i].sub);
	gw_buf_free(&w->out);
	return NULL;
}

struct ov_publisher {
	struct ov *ov;
	unsigned id;
	bool failed;
};

static void *ov_publisher_main(void *arg)
{
	struct ov_publisher *p = arg;
	struct ov *ov = p->ov;
	char rest[256];

	pthread_barrier_wait(&ov->start);
	for (uint64_t i = 0; i < OV_EACH; i++) {
		size_t n = ov_rest(p->id, i, rest);

		if (!gw_room_publish(ov->room, rest, n)) {
			p->failed = true;
			break;
		}
		if (atomic_fetch_add(&ov->published, 1) + 1 == OV_TOTAL / 2)
			atomic_store(&ov->resume, 1);
		if (i % 64 == 0)
			sched_yield();
	}
	atomic_fetch_add(&ov->publishers_done, 1);
	return NULL;
}

static void test_overrun_subscribers_get_gap_then_contiguous_batches(void **state)
{
	struct gw_rooms_conf conf = {
		.workers = OV_WORKERS,
		.ring_slots = 64,
		.ring_bytes = 8192, /* ~50 of these messages: bytes evict as well as slots */
		.window_ms = 600000,
		.max_rooms = 4,
	};
	/* Batch limits per subscriber; 0 marks the stalled one. */
	const size_t limits[OV_WORKERS][OV_SUBS] = {{256, BIG}, {1024, 0}};
	struct ov ov;
	struct ov_worker w[OV_WORKERS];
	struct ov_publisher p[OV_PUBLISHERS];
	pthread_t tw[OV_WORKERS], tp[OV_PUBLISHERS];

	(void)state;
	memset(&ov, 0, sizeof(ov));
	ov.rs = gw_rooms_new(&conf);
	assert_non_null(ov.rs);
	gw_rooms_set_waker(ov.rs, record_wake, &ov.wk);
	ov.room = acquire(ov.rs, "stall");
	ov.epoch = gw_ring_epoch(gw_room_ring(ov.room));
	assert_int_equal(pthread_barrier_init(&ov.start, NULL, OV_WORKERS + OV_PUBLISHERS), 0);
	for (unsigned i = 0; i < OV_WORKERS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].ov = &ov;
		w[i].id = i;
		for (int j = 0; j < OV_SUBS; j++) {
			w[i].subs[j].max_bytes = limits[i][j] ? limits[i][j] : BIG;
			w[i].subs[j].stalled = !limits[i][j];
		}
		assert_int_equal(pthread_create(&tw[i], NULL, ov_worker_main, &w[i]), 0);
	}
	for (unsigned i = 0; i < OV_PUBLISHERS; i++) {
		p[i] = (struct ov_publisher){&ov, i, false};
		assert_int_equal(pthread_create(&tp[i], NULL, ov_publisher_main, &p[i]), 0);
	}
	for (int i = 0; i < OV_PUBLISHERS; i++)
		pthread_join(tp[i], NULL);
	for (int i = 0; i < OV_WORKERS; i++)
		pthread_join(tw[i], NULL);
	pthread_barrier_destroy(&ov.start);

	for (int i = 0; i < OV_PUBLISHERS; i++)
		assert_false(p[i].failed);
	assert_true(gw_ring_head(gw_room_ring(ov.room)) == OV_TOTAL);
	for (int i = 0; i < OV_WORKERS; i++) {
		for (int j = 0; j < OV_SUBS; j++) {
			struct ov_sub *s = &w[i].subs[j];

			print_message("  worker %d sub %d (%s, max_bytes %zu): %" PRIu64
				      " batches, %" PRIu64 " messages, %" PRIu64 " gaps\n",
				      i, j, s->stalled ? "stalled" : "reading", s->max_bytes,
				      s->batches, s->received, s->gaps);
			if (s->problems)
				fail_msg("worker %d sub %d: %" PRIu64 " problems; first: %s", i, j,
					 s->problems, s->why);
			if (w[i].timed_out || s->pos.after != OV_TOTAL)
				fail_msg("worker %d sub %d stuck at %" PRIu64 " of %" PRIu64, i, j,
					 s->pos.after, OV_TOTAL);
			/* A gap is the only way to receive fewer than all. */
			assert_true(s->received <= OV_TOTAL);
			assert_true(s->received == OV_TOTAL || s->gaps > 0);
			/* Stalled past ~12,000 messages of a ~50-message ring: overrun for sure. */
			if (s->stalled)
				assert_true(s->gaps >= 1 && s->received < OV_TOTAL);
		}
	}
	gw_room_release(ov.room);
	gw_rooms_free(ov.rs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_valid_accepts_allowed_characters),
		cmocka_unit_test(test_name_valid_rejects_the_rest),
		cmocka_unit_test(test_acquire_creates_once_and_returns_same_room),
		cmocka_unit_test(test_many_rooms_are_distinct),
		cmocka_unit_test(test_max_rooms_refuses_new_rooms),
		cmocka_unit_test(test_publish_then_batch_from_cursor),
		cmocka_unit_test(test_batch_max_bytes_splits_and_continues),
		cmocka_unit_test(test_resolve_without_cursor_starts_at_head),
		cmocka_unit_test(test_cursor_of_other_epoch_gets_gap_from_oldest),
		cmocka_unit_test(test_evicted_cursor_of_same_epoch_gets_gap),
		cmocka_unit_test(test_cursor_ahead_of_room_is_refused),
		cmocka_unit_test(test_too_big_publish_returns_zero),
		cmocka_unit_test(test_publish_wakes_each_worker_once_until_dispatch),
		cmocka_unit_test(test_dispatch_notifies_every_sub_of_the_worker),
		cmocka_unit_test(test_unsubscribe_stops_notifications),
		cmocka_unit_test(test_notify_may_detach_itself),
		cmocka_unit_test(test_reap_reclaims_idle_unreferenced_room),
		cmocka_unit_test(test_reap_never_takes_a_room_with_a_subscriber),
		cmocka_unit_test(test_reap_waits_for_pending_dispatch),
		cmocka_unit_test(test_concurrent_publish_and_dispatch_loses_no_wakeup),
		cmocka_unit_test(test_overrun_subscribers_get_gap_then_contiguous_batches),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
