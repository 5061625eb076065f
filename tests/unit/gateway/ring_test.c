/*
 * Tests for gateway/ring.c: sequence numbers and the encoded prefix, reads
 * (after, max_bytes, res.last / gap / more), slot and arena wraparound with
 * byte-exact messages, the time window, the size limit, and the lock-free
 * protocol under a concurrent writer (readers overrun and not).
 *
 * Every message a test publishes has a rest derived from its seq, so the exact
 * bytes a read must return are rebuilt from the seq alone: a torn copy, a
 * wrong offset or a stale slot shows up as a mismatch.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "gateway/ring.h"

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BIG (1u << 30) /* max_bytes that never limits */

/* ---- expected messages ------------------------------------------------- */

/* Writes the rest for seq into out (>= 512 bytes); returns its length. */
typedef size_t (*rest_fn)(uint64_t seq, char *out);

/* `"type":"t","n":S}` */
static size_t rest_plain(uint64_t seq, char *out)
{
	return (size_t)sprintf(out, "\"type\":\"t\",\"n\":%" PRIu64 "}", seq);
}

/* Pad bytes that differ between neighbouring messages, so torn copies show. */
static size_t rest_padded(uint64_t seq, char *out, size_t pad)
{
	size_t n = (size_t)sprintf(out, "\"type\":\"t\",\"n\":%" PRIu64 ",\"pad\":\"", seq);

	for (size_t i = 0; i < pad; i++)
		out[n++] = (char)('a' + (seq * 7 + i) % 26);
	out[n++] = '"';
	out[n++] = '}';
	return n;
}

/* Total rest length 10..300 bytes, varied pseudo-randomly by seq. */
static size_t rest_varied(uint64_t seq, char *out)
{
	size_t base = (size_t)sprintf(out, "\"type\":\"t\",\"n\":%" PRIu64 ",\"pad\":\"\"}", seq);
	size_t want = 10 + (size_t)((seq * 2654435761u) % 291);

	return rest_padded(seq, out, want > base ? want - base : 0);
}

/* Stress messages: pad length seq % 97. */
static size_t rest_stress(uint64_t seq, char *out)
{
	return rest_padded(seq, out, (size_t)(seq % 97));
}

/* How a test's messages were published: rest by seq, ts by seq (or fixed). */
struct model {
	rest_fn rest;
	const int64_t *ts; /* ts[seq], or NULL: every message has fixed_ts */
	int64_t fixed_ts;
};

static size_t expect_msg(const struct model *m, uint64_t seq, char *out)
{
	int64_t ts = m->ts ? m->ts[seq] : m->fixed_ts;
	size_t n = (size_t)sprintf(out, "{\"seq\":%" PRIu64 ",\"ts\":%" PRId64 ",", seq, ts);

	return n + m->rest(seq, out + n);
}

/*
 * Check that p[0..len) is exactly `count` consecutive expected messages joined
 * by ','. Sets *first to the first seq. Returns NULL, or what is wrong (thread
 * safe: no cmocka calls).
 */
static const char *check_batch(const struct model *m, const char *p, size_t len, size_t count,
			       uint64_t *first)
{
	char want[1024];
	size_t off = 0;
	uint64_t seq = 0;

	*first = 0;
	if (count == 0)
		return len ? "bytes appended for an empty read" : NULL;
	if (len < 8 || memcmp(p, "{\"seq\":", 7))
		return "batch does not start with {\"seq\":";
	for (off = 7; off < len && p[off] >= '0' && p[off] <= '9'; off++) {
		if (seq > UINT64_MAX / 10)
			return "seq overflows";
		seq = seq * 10 + (uint64_t)(p[off] - '0');
	}
	*first = seq;
	off = 0;
	for (size_t i = 0; i < count; i++, seq++) {
		size_t n = expect_msg(m, seq, want);

		if (i && (off >= len || p[off++] != ','))
			return "messages not separated by ','";
		if (off + n > len || memcmp(p + off, want, n))
			return "message bytes differ from what was published";
		off += n;
	}
	return off == len ? NULL : "trailing bytes after the last message";
}

/* Read and check in one go (main thread). Returns the first seq returned (0: none). */
static uint64_t read_check(const struct gw_ring *r, const struct model *m, uint64_t after,
			   int64_t now, size_t max_bytes, struct gw_ring_read *res)
{
	struct gw_buf out;
	uint64_t first;
	const char *why;

	gw_buf_init(&out, 0);
	/* Something already in the buffer must be kept. */
	assert_int_equal(gw_buf_puts(&out, "PRE["), 0);
	assert_int_equal(gw_ring_read(r, after, now, max_bytes, &out, res), 0);
	assert_memory_equal(gw_buf_data(&out), "PRE[", 4);
	why = check_batch(m, gw_buf_data(&out) + 4, out.len - 4, res->count, &first);
	if (why)
		fail_msg("read after %" PRIu64 ": %s: [%.*s]", after, why, (int)(out.len - 4),
			 gw_buf_data(&out) + 4);
	if (res->count)
		assert_true(res->last == first + res->count - 1);
	gw_buf_free(&out);
	return first;
}

static uint64_t rnd_state = 0x853c49e6748fea9bull;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * 2685821657736338717ull;
}

static uint64_t publish_model(struct gw_ring *r, const struct model *m, uint64_t seq, int64_t now)
{
	char rest[1024];
	size_t n = m->rest(seq, rest);

	return gw_ring_publish(r, rest, n, now);
}

#define T0 1700000000000LL /* a plausible wall-clock ms */

/* ---- basics ------------------------------------------------------------ */

static void test_new_rejects_bad_arguments(void **state)
{
	struct gw_ring *r;

	(void)state;
	assert_null(gw_ring_new(0, 4096, 1000, 1));
	assert_null(gw_ring_new(1, 4096, 1000, 1));
	assert_null(gw_ring_new(3, 4096, 1000, 1));
	assert_null(gw_ring_new(96, 4096, 1000, 1));
	assert_null(gw_ring_new(16, 4095, 1000, 1));
	assert_null(gw_ring_new(16, 0, 1000, 1));
	assert_null(gw_ring_new(16, 4096, 0, 1));
	assert_null(gw_ring_new(16, 4096, -5, 1));
	r = gw_ring_new(2, 4096, 1, 1);
	assert_non_null(r);
	gw_ring_free(r);
	gw_ring_free(NULL);
}

static void test_epoch_is_what_was_passed(void **state)
{
	const uint64_t epochs[] = {0, 1, UINT64_MAX, 0x0123456789abcdefull, rnd(), rnd()};

	(void)state;
	for (size_t i = 0; i < sizeof(epochs) / sizeof(epochs[0]); i++) {
		struct gw_ring *r = gw_ring_new(8, 4096, 1000, epochs[i]);

		assert_non_null(r);
		assert_true(gw_ring_epoch(r) == epochs[i]);
		/* Publishing does not change it. */
		assert_true(gw_ring_publish(r, "\"type\":\"t\"}", 11, T0) == 1);
		assert_true(gw_ring_epoch(r) == epochs[i]);
		gw_ring_free(r);
	}
}

static void test_empty_ring_reads_nothing(void **state)
{
	struct gw_ring *r = gw_ring_new(16, 8192, 60000, 7);
	struct gw_ring_read res;
	struct model m = {rest_plain, NULL, T0};

	(void)state;
	assert_non_null(r);
	assert_true(gw_ring_head(r) == 0);
	assert_true(gw_ring_oldest(r, T0) == 1);
	read_check(r, &m, 0, T0, BIG, &res);
	assert_int_equal(res.count, 0);
	assert_false(res.gap);
	assert_false(res.more);
	assert_true(res.last == 0);
	gw_ring_free(r);
}

static void test_seqs_start_at_one_and_are_consecutive(void **state)
{
	struct gw_ring *r = gw_ring_new(64, 1 << 16, 60000, 7);
	struct model m = {rest_plain, NULL, T0};

	(void)state;
	assert_non_null(r);
	for (uint64_t s = 1; s <= 200; s++) {
		assert_true(publish_model(r, &m, s, T0) == s);
		assert_true(gw_ring_head(r) == s);
	}
	gw_ring_free(r);
}

static void test_message_is_prefix_plus_rest(void **state)
{
	struct gw_ring *r = gw_ring_new(16, 8192, 60000, 7);
	struct gw_ring_read res;
	struct gw_buf out;
	const char *rest = "\"type\":\"danmaku\",\"uid\":\"u1\",\"text\":\"hi, \\\"there\\\"\"}";
	char want[256];

	(void)state;
	assert_non_null(r);
	assert_true(gw_ring_publish(r, rest, strlen(rest), 1234567) == 1);
	assert_true(gw_ring_publish(r, "}", 1, 0) == 2); /* minimal rest; ts stays 1234567 */
	gw_buf_init(&out, 0);
	assert_int_equal(gw_ring_read(r, 0, 1234567, BIG, &out, &res), 0);
	snprintf(want, sizeof(want), "{\"seq\":1,\"ts\":1234567,%s,{\"seq\":2,\"ts\":1234567,}", rest);
	assert_int_equal(out.len, strlen(want));
	assert_memory_equal(gw_buf_data(&out), want, out.len);
	assert_int_equal(res.count, 2);
	gw_buf_free(&out);
	gw_ring_free(r);
}

static void test_read_after_zero_returns_all(void **state)
{
	struct gw_ring *r = gw_ring_new(16, 8192, 60000, 7);
	struct gw_ring_read res;
	struct model m = {rest_varied, NULL, T0};

	(void)state;
	assert_non_null(r);
	for (uint64_t s = 1; s <= 10; s++)
		assert_true(publish_model(r, &m, s, T0) == s);
	assert_true(read_check(r, &m, 0, T0, BIG, &res) == 1);
	assert_int_equal(res.count, 10);
	assert_false(res.gap);
	assert_false(res.more);
	assert_false(res.overrun);
	assert_true(res.last == 10);
	gw_ring_free(r);
}

static void test_read_after_head_returns_nothing(void **state)
{
	struct gw_ring *r = gw_ring_new(16, 8192, 60000, 7);
	struct gw_ring_read res;
	struct model m = {rest_plain, NULL, T0};

	(void)state;
	assert_non_null(r);
	for (uint64_t s = 1; s <= 5; s++)
		publish_model(r, &m, s, T0);
	read_check(r, &m, 5, T0, BIG, &res);
	assert_int_equal(res.count, 0);
	assert_false(res.gap);
	assert_false(res.more);
	assert_true(res.last == 5);
	gw_ring_free(r);
}

static void test_read_after_each_seq_returns_the_rest(void **state)
{
	struct gw_ring *r = gw_ring_new(32, 16384, 60000, 7);
	struct gw_ring_read res;
	struct model m = {rest_varied, NULL, T0};

	(void)state;
	assert_non_null(r);
	for (uint64_t s = 1; s <= 20; s++)
		publish_model(r, &m, s, T0);
	for (uint64_t after = 0; after <= 20; after++) {
		uint64_t first = read_check(r, &m, after, T0, BIG, &res);

		assert_int_equal(res.count, 20 - after);
		if (res.count)
			assert_true(first == after + 1);
		assert_false(res.gap);
		assert_true(res.last == 20);
	}
	gw_ring_free(r);
}

/* ---- wraparound ---------------------------------------------------------- */

static void test_slot_wraparound_keeps_newest_nslots(void **state)
{
	const uint64_t sizes[] = {2, 8, 16, 1024};

	(void)state;
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		uint64_t nslots = sizes[k], total = 10 * nslots;
		struct gw_ring *r = gw_ring_new(nslots, 1 << 22, 60000, 7);
		struct model m = {rest_plain, NULL, T0};
		struct gw_ring_read res;

		assert_non_null(r);
		for (uint64_t s = 1; s <= total; s++) {
			assert_true(publish_model(r, &m, s, T0) == s);
			/* Arena is ample: only slot reuse evicts, so the newest nslots stay. */
			uint64_t want_oldest = s > nslots ? s - nslots + 1 : 1;
			if (gw_ring_oldest(r, T0) != want_oldest)
				fail_msg("nslots %" PRIu64 ", head %" PRIu64 ": oldest %" PRIu64
					 ", want %" PRIu64,
					 nslots, s, gw_ring_oldest(r, T0), want_oldest);
		}
		uint64_t oldest = gw_ring_oldest(r, T0);
		assert_true(oldest == total - nslots + 1);

		/* From an evicted seq: gap, starting at the oldest retained. */
		const uint64_t stale[] = {0, 1, total / 2, oldest - 2};
		for (size_t i = 0; i < sizeof(stale) / sizeof(stale[0]); i++) {
			if (stale[i] + 1 >= oldest)
				continue;
			assert_true(read_check(r, &m, stale[i], T0, BIG, &res) == oldest);
			assert_true(res.gap);
			assert_int_equal(res.count, nslots);
			assert_true(res.last == total);
		}
		/* From just before the oldest: everything retained, no gap. */
		assert_true(read_check(r, &m, oldest - 1, T0, BIG, &res) == oldest);
		assert_false(res.gap);
		assert_int_equal(res.count, nslots);
		/* From a recent seq: exactly the rest. */
		for (uint64_t back = 0; back < nslots; back++) {
			uint64_t after = total - back;
			uint64_t first = read_check(r, &m, after, T0, BIG, &res);

			assert_int_equal(res.count, back);
			if (back)
				assert_true(first == after + 1);
			assert_false(res.gap);
			assert_true(res.last == total);
		}
		gw_ring_free(r);
	}
}

/*
 * Publish `total` messages of rest_fn sizes into a small arena; after each one
 * read everything retained and check it byte for byte, and that what is
 * retained fills the arena reasonably (eviction neither too eager nor late).
 */
static void arena_wrap_run(uint64_t nslots, size_t bytes, rest_fn rf, uint64_t total)
{
	struct gw_ring *r = gw_ring_new(nslots, bytes, 60000, 7);
	struct model m = {rf, NULL, T0};
	struct gw_ring_read res;
	char want[1024];
	size_t max_padded = 0;

	assert_non_null(r);
	for (uint64_t s = 1; s <= total; s++) {
		size_t n = expect_msg(&m, s, want);

		if (((n + 7) & ~(size_t)7) > max_padded)
			max_padded = (n + 7) & ~(size_t)7;
		if (publish_model(r, &m, s, T0) != s)
			fail_msg("publish of seq %" PRIu64 " (%zu bytes) refused", s, n);

		uint64_t oldest = gw_ring_oldest(r, T0);
		uint64_t first = read_check(r, &m, 0, T0, BIG, &res);

		assert_true(oldest >= 1 && oldest <= s);
		assert_true(first == oldest);
		assert_true(res.last == s);
		assert_int_equal(res.count, s - oldest + 1);
		assert_true(res.gap == (oldest > 1));

		/* The retained messages fit the arena... */
		size_t held = 0;
		for (uint64_t q = oldest; q <= s; q++)
			held += (expect_msg(&m, q, want) + 7) & ~(size_t)7;
		if (held > bytes)
			fail_msg("head %" PRIu64 ": %zu bytes retained in a %zu-byte arena", s, held,
				 bytes);
		/*
		 * ...and once it has wrapped, little of it is wasted: at most the skipped
		 * tail at the end of the arena, the message that straddles the eviction
		 * point, and one slack message.
		 */
		if (s - oldest + 1 < nslots && oldest > 1 && held + 3 * max_padded < bytes)
			fail_msg("head %" PRIu64 ": only %zu of %zu arena bytes retained", s, held,
				 bytes);

		/* A cursor inside the retained range gets exactly the rest. */
		if (s > oldest) {
			uint64_t after = oldest + rnd() % (s - oldest);
			first = read_check(r, &m, after, T0, BIG, &res);
			assert_true(first == after + 1);
			assert_false(res.gap);
			assert_int_equal(res.count, s - after);
		}
	}
	gw_ring_free(r);
}

static void test_arena_wraparound_messages_are_exact(void **state)
{
	(void)state;
	/* 10..300-byte messages through a 4 KB arena: it wraps ~100 times. */
	arena_wrap_run(1024, 4096, rest_varied, 3000);
	/* Same with a size that is not a multiple of 8 (rounded down). */
	arena_wrap_run(1024, 4096 + 5, rest_varied, 1500);
}

/* Sizes up to the largest accepted: the skip-at-end path runs constantly. */
static size_t rest_large(uint64_t seq, char *out)
{
	/* 4096-byte arena: max message 1024, so rest up to 1024 - 64. */
	size_t base = (size_t)sprintf(out, "\"type\":\"t\",\"n\":%" PRIu64 ",\"pad\":\"\"}", seq);
	size_t want = 1 + (size_t)((seq * 0x9e3779b97f4a7c15ull) >> 32) % (1024 - 64);

	return rest_padded(seq, out, want > base ? want - base : 0);
}

static void test_arena_wraparound_large_messages(void **state)
{
	(void)state;
	arena_wrap_run(256, 4096, rest_large, 2000);
}

/* ---- time window --------------------------------------------------------- */

static void test_expired_messages_are_skipped(void **state)
{
	struct gw_ring *r = gw_ring_new(64, 1 << 16, 1000, 7);
	int64_t ts[11];
	struct model m = {rest_plain, ts, 0};
	struct gw_ring_read res;

	(void)state;
	assert_non_null(r);
	/* seq s published at 1000 + 100 (s - 1): ts 1000 .. 1900. */
	for (uint64_t s = 1; s <= 10; s++) {
		ts[s] = 1000 + 100 * (int64_t)(s - 1);
		assert_true(publish_model(r, &m, s, ts[s]) == s);
	}
	/* Everything is live at 1950. */
	assert_true(gw_ring_oldest(r, 1950) == 1);
	assert_true(read_check(r, &m, 0, 1950, BIG, &res) == 1);
	assert_int_equal(res.count, 10);
	assert_false(res.gap);

	/* At 2450 the window starts at 1450: seqs 1..5 (ts <= 1400) are out. */
	assert_true(gw_ring_oldest(r, 2450) == 6);
	for (uint64_t after = 0; after < 5; after++) {
		assert_true(read_check(r, &m, after, 2450, BIG, &res) == 6);
		assert_true(res.gap);
		assert_int_equal(res.count, 5);
		assert_true(res.last == 10);
	}
	assert_true(read_check(r, &m, 5, 2450, BIG, &res) == 6);
	assert_false(res.gap);
	assert_int_equal(res.count, 5);
	read_check(r, &m, 8, 2450, BIG, &res);
	assert_false(res.gap);
	assert_int_equal(res.count, 2);
	read_check(r, &m, 10, 2450, BIG, &res);
	assert_false(res.gap);
	assert_int_equal(res.count, 0);
	assert_true(res.last == 10);

	/* At 3000 (window from 2000) all are out. */
	assert_true(gw_ring_oldest(r, 3000) == 11);
	read_check(r, &m, 3, 3000, BIG, &res);
	assert_int_equal(res.count, 0);
	assert_true(res.gap);
	assert_true(res.last == 10);
	read_check(r, &m, 10, 3000, BIG, &res);
	assert_int_equal(res.count, 0);
	assert_false(res.gap);
	assert_true(res.last == 10);
	gw_ring_free(r);
}

/* Random ts steps and read times against a straightforward model. */
static void test_window_matches_model(void **state)
{
	enum { N = 400 };
	struct gw_ring *r = gw_ring_new(512, 1 << 18, 1000, 7);
	int64_t ts[N + 1];
	struct model m = {rest_plain, ts, 0};
	struct gw_ring_read res;

	(void)state;
	assert_non_null(r);
	ts[0] = 10000;
	for (uint64_t s = 1; s <= N; s++) {
		/* Steps of 0..60 ms, multiples of 10: read times end in 5, never on a boundary. */
		ts[s] = ts[s - 1] + 10 * (int64_t)(rnd() % 7);
		assert_true(publish_model(r, &m, s, ts[s]) == s);
	}
	for (int i = 0; i < 300; i++) {
		int64_t now = ts[1] + 5 + 10 * (int64_t)(rnd() % (uint64_t)((ts[N] - ts[1]) / 10 + 110));
		uint64_t want = 1, after = rnd() % (N + 1);

		while (want <= N && ts[want] < now - 1000)
			want++;
		assert_true(gw_ring_oldest(r, now) == want);
		uint64_t first = read_check(r, &m, after, now, BIG, &res);
		uint64_t from = after + 1 > want ? after + 1 : want;
		assert_int_equal(res.count, N + 1 - from);
		if (res.count)
			assert_true(first == from);
		assert_true(res.gap == (from > after + 1));
		assert_true(res.last == N);
	}
	gw_ring_free(r);
}

static void test_ts_never_decreases(void **state)
{
	struct gw_ring *r = gw_ring_new(16, 8192, 1000000, 7);
	const int64_t now[] = {5000, 4000, 6000, 3000, -7, 6000, 6001};
	const int64_t want[] = {5000, 5000, 6000, 6000, 6000, 6000, 6001};
	int64_t ts[8];
	struct model m = {rest_plain, ts, 0};
	struct gw_ring_read res;

	(void)state;
	assert_non_null(r);
	for (uint64_t s = 1; s <= 7; s++) {
		ts[s] = want[s - 1];
		assert_true(publish_model(r, &m, s, now[s - 1]) == s);
	}
	/* read_check rebuilds each message with the expected (clamped) ts. */
	assert_true(read_check(r, &m, 0, 6001, BIG, &res) == 1);
	assert_int_equal(res.count, 7);
	gw_ring_free(r);
}

/* ---- max_bytes ------------------------------------------------------------- */

static void test_max_bytes_returns_prefix_then_rest(void **state)
{
	const size_t limits[] = {1, 50, 200, 333, 1000, 4000};
	struct gw_ring *r = gw_ring_new(64, 1 << 16, 60000, 7);
	struct model m = {rest_varied, NULL, T0};
	char want[1024];

	(void)state;
	assert_non_null(r);
	for (uint64_t s = 1; s <= 50; s++)
		publish_model(r, &m, s, T0);
	for (size_t k = 0; k < sizeof(limits) / sizeof(limits[0]); k++) {
		size_t limit = limits[k];
		uint64_t after = 0, seen = 0;
		int rounds = 0;

		while (after < 50) {
			struct gw_ring_read res;
			struct gw_buf out;
			uint64_t first;
			const char *why;

			assert_true(++rounds <= 50);
			gw_buf_init(&out, 0);
			assert_int_equal(gw_ring_read(r, after, T0, limit, &out, &res), 0);
			why = check_batch(&m, gw_buf_data(&out), out.len, res.count, &first);
			if (why)
				fail_msg("limit %zu after %" PRIu64 ": %s", limit, after, why);
			/* At least one message, each exactly once, no gap. */
			assert_true(res.count >= 1);
			assert_true(first == after + 1);
			assert_false(res.gap);
			assert_true(res.last == after + res.count);
			/* Over the limit only when a single message is larger than it. */
			if (res.count > 1)
				assert_true(out.len <= limit);
			/* Stopped only when the next message would not fit. */
			assert_true(res.more == (res.last < 50));
			if (res.more) {
				size_t next = expect_msg(&m, res.last + 1, want);
				assert_true(out.len + 1 + next > limit);
			}
			seen += res.count;
			after = res.last;
			gw_buf_free(&out);
		}
		assert_true(seen == 50);
	}
	gw_ring_free(r);
}

/* max_bytes counts only what this read appends, not what the buffer held. */
static void test_max_bytes_ignores_existing_buffer_content(void **state)
{
	struct gw_ring *r = gw_ring_new(16, 8192, 60000, 7);
	struct model m = {rest_plain, NULL, T0};
	struct gw_ring_read res;
	struct gw_buf out;
	char one[256];
	size_t n;

	(void)state;
	assert_non_null(r);
	for (uint64_t s = 1; s <= 3; s++)
		publish_model(r, &m, s, T0);
	n = expect_msg(&m, 1, one);
	gw_buf_init(&out, 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(gw_buf_puts(&out, "0123456789"), 0);
	/* Room for exactly two messages (all three have the same length). */
	assert_int_equal(gw_ring_read(r, 0, T0, 2 * n + 1, &out, &res), 0);
	assert_int_equal(res.count, 2);
	assert_true(res.more);
	assert_int_equal(out.len, 1000 + 2 * n + 1);
	gw_buf_free(&out);
	gw_ring_free(r);
}

/* ---- size limit ---------------------------------------------------------- */

static void test_too_large_message_is_refused_without_change(void **state)
{
	struct gw_ring *r = gw_ring_new(16, 8192, 60000, 7);
	struct model m = {rest_plain, NULL, T0};
	struct gw_ring_read res;
	size_t max;
	char *big;

	(void)state;
	assert_non_null(r);
	max = gw_ring_max_message(r);
	assert_true(max > 100 && max < 8192);
	big = malloc(max + 2);
	assert_non_null(big);
	memset(big, 'x', max + 2);
	for (uint64_t s = 1; s <= 3; s++)
		publish_model(r, &m, s, T0);

	assert_true(gw_ring_publish(r, big, max + 1, T0) == 0);
	assert_true(gw_ring_publish(r, big, max, T0) == 0); /* plus the prefix: too big */
	assert_true(gw_ring_head(r) == 3);
	assert_true(gw_ring_oldest(r, T0) == 1);
	assert_true(read_check(r, &m, 0, T0, BIG, &res) == 1);
	assert_int_equal(res.count, 3);
	assert_false(res.gap);
	/* The next accepted message still gets seq 4. */
	assert_true(publish_model(r, &m, 4, T0) == 4);
	read_check(r, &m, 0, T0, BIG, &res);
	assert_int_equal(res.count, 4);
	free(big);
	gw_ring_free(r);
}

/*
 * ring.h: gw_ring_max_message is the "largest message gw_ring_publish
 * accepts, in encoded bytes". A message of exactly that many encoded bytes
 * (prefix + rest) must be accepted; one byte more refused.
 */
static void test_message_of_exactly_max_encoded_bytes_is_accepted(void **state)
{
	struct gw_ring *r = gw_ring_new(16, 8192, 60000, 7);
	struct gw_ring_read res;
	struct gw_buf out;
	size_t max, plen;
	char *rest, prefix[64];

	(void)state;
	assert_non_null(r);
	max = gw_ring_max_message(r);
	plen = (size_t)sprintf(prefix, "{\"seq\":1,\"ts\":%lld,", (long long)T0);
	rest = malloc(max);
	assert_non_null(rest);
	memset(rest, 'y', max);
	rest[0] = '}';
	assert_true(gw_ring_publish(r, rest, max - plen + 1, T0) == 0);
	assert_true(gw_ring_head(r) == 0);
	uint64_t s = gw_ring_publish(r, rest, max - plen, T0);
	if (s != 1) {
		free(rest);
		gw_ring_free(r);
		fail_msg("a message of %zu encoded bytes (= gw_ring_max_message) was refused", max);
	}
	gw_buf_init(&out, 0);
	assert_int_equal(gw_ring_read(r, 0, T0, BIG, &out, &res), 0);
	assert_int_equal(out.len, max);
	assert_memory_equal(gw_buf_data(&out), prefix, plen);
	assert_memory_equal(gw_buf_data(&out) + plen, rest, max - plen);
	gw_buf_free(&out);
	free(rest);
	gw_ring_free(r);
}

/* ---- concurrency --------------------------------------------------------- */

#define STRESS_N 200000
#define STRESS_READERS 3
#define STRESS_TS T0

struct stress {
	struct gw_ring *ring;
	pthread_barrier_t start;
	uint64_t n;
	_Atomic int writer_done;
};

struct reader {
	struct stress *st;
	size_t max_bytes;
	uint64_t pos;        /* final cursor */
	uint64_t received;   /* messages returned */
	uint64_t gaps, overruns, reads;
	uint64_t corrupt;    /* batches that failed the check */
	char why[256];       /* first problem seen */
	bool timed_out;
};

static int64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void *writer_main(void *arg)
{
	struct stress *st = arg;
	char rest[512];

	pthread_barrier_wait(&st->start);
	for (uint64_t s = 1; s <= st->n; s++) {
		size_t n = rest_stress(s, rest);
		uint64_t got = gw_ring_publish(st->ring, rest, n, STRESS_TS);

		if (got != s) {
			fprintf(stderr, "writer: publish %" PRIu64 " returned %" PRIu64 "\n", s, got);
			break;
		}
		/* Let readers in now and then on a machine with few cores. */
		if (s % 512 == 0)
			sched_yield();
	}
	atomic_store(&st->writer_done, 1);
	return NULL;
}

static void note(struct reader *rd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct reader *rd, const char *fmt, ...)
{
	va_list ap;

	rd->corrupt++;
	if (rd->why[0])
		return;
	va_start(ap, fmt);
	vsnprintf(rd->why, sizeof(rd->why), fmt, ap);
	va_end(ap);
}

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	struct stress *st = rd->st;
	const struct model m = {rest_stress, NULL, STRESS_TS};
	struct gw_buf out;
	uint64_t after = 0;
	int64_t deadline;

	gw_buf_init(&out, 0);
	pthread_barrier_wait(&st->start);
	deadline = mono_ms() + 120000;
	while (after < st->n) {
		struct gw_ring_read res;
		uint64_t first;
		const char *why;

		if ((++rd->reads & 1023) == 0 && mono_ms() > deadline) {
			rd->timed_out = true;
			break;
		}
		gw_buf_reset(&out);
		if (gw_ring_read(st->ring, after, STRESS_TS, rd->max_bytes, &out, &res)) {
			note(rd, "gw_ring_read failed");
			break;
		}
		rd->overruns += res.overrun;
		rd->gaps += res.gap;
		if (res.count == 0) {
			if (res.gap) {
				if (res.last <= after)
					note(rd, "empty gap read went back: %" PRIu64 " -> %" PRIu64, after,
					     res.last);
				after = res.last;
			} else if (res.last != after) {
				note(rd, "empty read moved last %" PRIu64 " -> %" PRIu64, after, res.last);
			}
			sched_yield();
			continue;
		}
		why = check_batch(&m, gw_buf_data(&out), out.len, res.count, &first);
		if (why) {
			note(rd, "after %" PRIu64 ": %s", after, why);
			break;
		}
		if (first <= after)
			note(rd, "batch went back: after %" PRIu64 ", first %" PRIu64, after, first);
		else if (res.gap != (first > after + 1))
			note(rd, "gap=%d but after %" PRIu64 " -> first %" PRIu64, res.gap, after, first);
		if (res.last != first + res.count - 1)
			note(rd, "last %" PRIu64 " for first %" PRIu64 " count %zu", res.last, first,
			     res.count);
		if (res.last > st->n)
			note(rd, "seq %" PRIu64 " beyond the %" PRIu64 " published", res.last, st->n);
		rd->received += res.count;
		after = res.last;
	}
	rd->pos = after;
	gw_buf_free(&out);
	return NULL;
}

static void run_stress(uint64_t nslots, size_t bytes, size_t max_bytes, bool expect_all,
		       uint64_t n)
{
	struct stress st;
	struct reader rd[STRESS_READERS];
	pthread_t w, t[STRESS_READERS];

	st.ring = gw_ring_new(nslots, bytes, 3600 * 1000, 7);
	assert_non_null(st.ring);
	st.n = n;
	atomic_init(&st.writer_done, 0);
	assert_int_equal(pthread_barrier_init(&st.start, NULL, STRESS_READERS + 1), 0);
	for (int i = 0; i < STRESS_READERS; i++) {
		memset(&rd[i], 0, sizeof(rd[i]));
		rd[i].st = &st;
		/* Different batch sizes: one tiny, one medium, one effectively unbounded. */
		rd[i].max_bytes = i == 0 ? 1 : i == 1 ? max_bytes : BIG;
		assert_int_equal(pthread_create(&t[i], NULL, reader_main, &rd[i]), 0);
	}
	assert_int_equal(pthread_create(&w, NULL, writer_main, &st), 0);
	pthread_join(w, NULL);
	for (int i = 0; i < STRESS_READERS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&st.start);

	assert_true(gw_ring_head(st.ring) == n);
	for (int i = 0; i < STRESS_READERS; i++) {
		print_message("  reader %d (max_bytes %zu): %" PRIu64 " reads, %" PRIu64
			      " messages, %" PRIu64 " gaps, %" PRIu64 " overruns\n",
			      i, rd[i].max_bytes, rd[i].reads, rd[i].received, rd[i].gaps,
			      rd[i].overruns);
		if (rd[i].corrupt)
			fail_msg("reader %d: %" PRIu64 " bad batches; first: %s", i, rd[i].corrupt,
				 rd[i].why);
		assert_false(rd[i].timed_out);
		assert_true(rd[i].pos == n);
		if (expect_all) {
			assert_true(rd[i].received == n);
			assert_true(rd[i].gaps == 0);
			assert_true(rd[i].overruns == 0);
		} else {
			assert_true(rd[i].received <= n);
		}
	}
	gw_ring_free(st.ring);
}

/* A small ring: readers are lapped, must see only exact messages and forward gaps. */
static void test_concurrent_readers_overrun_see_only_exact_messages(void **state)
{
	(void)state;
	run_stress(256, 16384, 4096, false, STRESS_N);
}

/* A ring holding everything: every reader sees every message once, in order. */
static void test_concurrent_readers_without_overrun_see_everything(void **state)
{
	(void)state;
	run_stress(1u << 18, (size_t)64 << 20, 16384, true, STRESS_N);
}

/* Concurrent publishers: seqs are unique and consecutive; each writer's order holds. */
#define MW_WRITERS 4
#define MW_EACH 20000

struct mw_arg {
	struct gw_ring *ring;
	int id;
	pthread_barrier_t *start;
	uint64_t bad;
};

static void *mw_writer(void *arg)
{
	struct mw_arg *a = arg;
	char rest[64];

	pthread_barrier_wait(a->start);
	for (int i = 0; i < MW_EACH; i++) {
		int n = snprintf(rest, sizeof(rest), "\"w\":%d,\"i\":%d}", a->id, i);
		if (!gw_ring_publish(a->ring, rest, (size_t)n, T0))
			a->bad++;
	}
	return NULL;
}

static void test_concurrent_publishers_serialise(void **state)
{
	struct gw_ring *r = gw_ring_new(1u << 17, (size_t)16 << 20, 60000, 7);
	struct mw_arg a[MW_WRITERS];
	pthread_t t[MW_WRITERS];
	pthread_barrier_t start;
	struct gw_ring_read res;
	struct gw_buf out;
	int next_i[MW_WRITERS] = {0};
	const char *p, *end;
	uint64_t seq = 0;

	(void)state;
	assert_non_null(r);
	assert_int_equal(pthread_barrier_init(&start, NULL, MW_WRITERS), 0);
	for (int i = 0; i < MW_WRITERS; i++) {
		a[i] = (struct mw_arg){r, i, &start, 0};
		assert_int_equal(pthread_create(&t[i], NULL, mw_writer, &a[i]), 0);
	}
	for (int i = 0; i < MW_WRITERS; i++) {
		pthread_join(t[i], NULL);
		assert_true(a[i].bad == 0);
	}
	pthread_barrier_destroy(&start);
	assert_true(gw_ring_head(r) == MW_WRITERS * MW_EACH);

	gw_buf_init(&out, 0);
	assert_int_equal(gw_ring_read(r, 0, T0, BIG, &out, &res), 0);
	assert_int_equal(res.count, MW_WRITERS * MW_EACH);
	assert_false(res.gap);
	assert_int_equal(gw_buf_putc(&out, '\0'), 0);
	p = gw_buf_data(&out);
	end = p + out.len - 1;
	while (p < end) {
		uint64_t s;
		long long ts;
		int w, i, used = 0;

		if (sscanf(p, "{\"seq\":%" SCNu64 ",\"ts\":%lld,\"w\":%d,\"i\":%d}%n", &s, &ts, &w, &i,
			   &used) != 4 || !used)
			fail_msg("unparsable message at [%.40s]", p);
		assert_true(s == ++seq);
		assert_true(ts == T0);
		assert_true(w >= 0 && w < MW_WRITERS);
		assert_int_equal(i, next_i[w]);
		next_i[w]++;
		p += used;
		if (p < end)
			assert_int_equal(*p++, ',');
	}
	for (int w = 0; w < MW_WRITERS; w++)
		assert_int_equal(next_i[w], MW_EACH);
	gw_buf_free(&out);
	gw_ring_free(r);
}

/*
 * Several publishers and several readers at once. A writer's i-th message is
 * a function of (writer, i) only, so a reader rebuilds the exact bytes of
 * every message it gets from the seq, ts, w and i it parses out of it. Each
 * reader checks its own stream: seq strictly increasing, contiguous except
 * where the read said gap, each writer's i increasing, ts never decreasing;
 * afterwards the readers must agree on which (w, i) every seq holds.
 */
#define MP_WRITERS 3
#define MP_READERS 3
#define MP_EACH 40000
#define MP_TOTAL ((uint64_t)MP_WRITERS * MP_EACH)

/* `"type":"t","w":W,"i":I,"pad":"…"}` with 0..130 pad bytes chosen by (w, i). */
static size_t rest_wi(unsigned w, uint64_t i, char *out)
{
	size_t n = (size_t)sprintf(out, "\"type\":\"t\",\"w\":%u,\"i\":%" PRIu64 ",\"pad\":\"", w,
				   i);
	size_t pad = (size_t)((i * 31 + w * 17) % 131);

	for (size_t k = 0; k < pad; k++)
		out[n++] = (char)('a' + (i * 7 + w * 3 + k) % 26);
	out[n++] = '"';
	out[n++] = '}';
	return n;
}

struct mp {
	struct gw_ring *ring;
	pthread_barrier_t start;
	_Atomic int writers_done;
};

struct mp_writer {
	struct mp *mp;
	unsigned id;
	uint64_t bad;
};

struct mp_reader {
	struct mp *mp;
	size_t max_bytes;
	uint64_t *who;  /* who[seq] = w << 32 | (i + 1) as this reader saw it; 0: not seen */
	uint64_t pos, received, gaps, overruns, reads, corrupt;
	char why[256];
	bool timed_out;
};

static void *mp_writer_main(void *arg)
{
	struct mp_writer *a = arg;
	char rest[512];

	pthread_barrier_wait(&a->mp->start);
	for (uint64_t i = 0; i < MP_EACH; i++) {
		size_t n = rest_wi(a->id, i, rest);

		/* now = T0 + i: ts is the max over writers, so never below a message's own now. */
		if (!gw_ring_publish(a->mp->ring, rest, n, T0 + (int64_t)i))
			a->bad++;
		if (i % 256 == 0)
			sched_yield();
	}
	atomic_fetch_add(&a->mp->writers_done, 1);
	return NULL;
}

/* At *p: the literal `lit`, then an unsigned decimal, then `end`; advances *p past them. */
static bool parse_field(const char **p, const char *limit, const char *lit, char end, uint64_t *v)
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

#define MP_NOTE(rd, ...)                                                                           \
	do {                                                                                       \
		(rd)->corrupt++;                                                                   \
		if (!(rd)->why[0])                                                                 \
			snprintf((rd)->why, sizeof((rd)->why), __VA_ARGS__);                       \
	} while (0)

/*
 * Check one batch of res->count messages read after `after`; updates the
 * reader's per-writer state. Returns false when the batch is unusable.
 */
static bool mp_check(struct mp_reader *rd, const char *p, size_t len,
		     const struct gw_ring_read *res, uint64_t after, uint64_t last_i[MP_WRITERS],
		     int64_t *last_ts)
{
	const char *end = p + len;
	char want[1024];
	uint64_t prev = after;

	for (size_t k = 0; k < res->count; k++) {
		const char *q;
		uint64_t seq, ts, w, i;

		if (k && (p >= end || *p++ != ',')) {
			MP_NOTE(rd, "after %" PRIu64 ": messages not separated by ','", after);
			return false;
		}
		q = p;
		if (!parse_field(&q, end, "{\"seq\":", ',', &seq) ||
		    !parse_field(&q, end, "\"ts\":", ',', &ts) ||
		    !parse_field(&q, end, "\"type\":\"t\",\"w\":", ',', &w) ||
		    !parse_field(&q, end, "\"i\":", ',', &i) || w >= MP_WRITERS || i >= MP_EACH) {
			MP_NOTE(rd, "after %" PRIu64 ": unparsable message [%.*s]", after,
				(int)(end - p < 60 ? end - p : 60), p);
			return false;
		}
		size_t n = (size_t)sprintf(want, "{\"seq\":%" PRIu64 ",\"ts\":%" PRIu64 ",", seq,
					   ts);
		n += rest_wi((unsigned)w, i, want + n);
		if ((size_t)(end - p) < n || memcmp(p, want, n)) {
			MP_NOTE(rd, "seq %" PRIu64 ": bytes differ from what writer %" PRIu64
				    " published as its message %" PRIu64, seq, w, i);
			return false;
		}
		p += n;
		/* Contiguous inside a batch; the first one may jump only with gap. */
		if (k ? seq != prev + 1 : (seq <= after || (seq > after + 1) != res->gap))
			MP_NOTE(rd, "seq %" PRIu64 " after %" PRIu64 " (gap=%d, batch message %zu)",
				seq, prev, res->gap, k);
		if (seq > MP_TOTAL) {
			MP_NOTE(rd, "seq %" PRIu64 " beyond the %" PRIu64 " published", seq,
				MP_TOTAL);
			return false;
		}
		if (last_i[w] != UINT64_MAX && i <= last_i[w])
			MP_NOTE(rd, "writer %" PRIu64 ": message %" PRIu64 " after %" PRIu64, w, i,
				last_i[w]);
		if ((int64_t)ts < *last_ts || (int64_t)ts < T0 + (int64_t)i)
			MP_NOTE(rd, "seq %" PRIu64 ": ts %" PRIu64 " (previous %" PRId64 ")", seq,
				ts, *last_ts);
		last_i[w] = i;
		*last_ts = (int64_t)ts;
		rd->who[seq] = w << 32 | (i + 1);
		prev = seq;
	}
	if (p != end) {
		MP_NOTE(rd, "after %" PRIu64 ": trailing bytes", after);
		return false;
	}
	if (res->count && res->last != prev)
		MP_NOTE(rd, "last %" PRIu64 " but the batch ends at %" PRIu64, res->last, prev);
	return true;
}

static void *mp_reader_main(void *arg)
{
	struct mp_reader *rd = arg;
	struct mp *mp = rd->mp;
	uint64_t after = 0, last_i[MP_WRITERS];
	int64_t last_ts = 0, deadline;
	struct gw_buf out;

	for (int w = 0; w < MP_WRITERS; w++)
		last_i[w] = UINT64_MAX;
	gw_buf_init(&out, 0);
	pthread_barrier_wait(&mp->start);
	deadline = mono_ms() + 120000;
	for (;;) {
		struct gw_ring_read res;
		/* Read writers_done before head: once all are done, head is final. */
		bool done = atomic_load(&mp->writers_done) == MP_WRITERS;

		if (done && after == gw_ring_head(mp->ring))
			break;
		if ((++rd->reads & 1023) == 0 && mono_ms() > deadline) {
			rd->timed_out = true;
			break;
		}
		gw_buf_reset(&out);
		if (gw_ring_read(mp->ring, after, T0, rd->max_bytes, &out, &res)) {
			MP_NOTE(rd, "gw_ring_read failed");
			break;
		}
		rd->overruns += res.overrun;
		rd->gaps += res.gap;
		if (res.count == 0) {
			/* Nothing new, or a gap with nothing after it yet: never backwards. */
			if (res.last < after || (res.last != after && !res.gap))
				MP_NOTE(rd, "empty read moved %" PRIu64 " -> %" PRIu64, after,
					res.last);
			after = res.last > after ? res.last : after;
			sched_yield();
			continue;
		}
		if (!mp_check(rd, gw_buf_data(&out), out.len, &res, after, last_i, &last_ts))
			break;
		rd->received += res.count;
		after = res.last;
	}
	rd->pos = after;
	gw_buf_free(&out);
	return NULL;
}

static void run_mp(uint64_t nslots, size_t bytes, size_t mid_bytes, bool expect_all)
{
	struct mp mp;
	struct mp_writer wr[MP_WRITERS];
	struct mp_reader rd[MP_READERS];
	pthread_t tw[MP_WRITERS], tr[MP_READERS];

	mp.ring = gw_ring_new(nslots, bytes, 3600 * 1000, 7);
	assert_non_null(mp.ring);
	atomic_init(&mp.writers_done, 0);
	assert_int_equal(pthread_barrier_init(&mp.start, NULL, MP_WRITERS + MP_READERS), 0);
	for (int i = 0; i < MP_READERS; i++) {
		memset(&rd[i], 0, sizeof(rd[i]));
		rd[i].mp = &mp;
		rd[i].max_bytes = i == 0 ? 1 : i == 1 ? mid_bytes : BIG;
		rd[i].who = calloc(MP_TOTAL + 1, sizeof(uint64_t));
		assert_non_null(rd[i].who);
		assert_int_equal(pthread_create(&tr[i], NULL, mp_reader_main, &rd[i]), 0);
	}
	for (unsigned i = 0; i < MP_WRITERS; i++) {
		wr[i] = (struct mp_writer){&mp, i, 0};
		assert_int_equal(pthread_create(&tw[i], NULL, mp_writer_main, &wr[i]), 0);
	}
	for (int i = 0; i < MP_WRITERS; i++)
		pthread_join(tw[i], NULL);
	for (int i = 0; i < MP_READERS; i++)
		pthread_join(tr[i], NULL);
	pthread_barrier_destroy(&mp.start);

	for (int i = 0; i < MP_WRITERS; i++)
		assert_true(wr[i].bad == 0);
	assert_true(gw_ring_head(mp.ring) == MP_TOTAL);
	for (int i = 0; i < MP_READERS; i++) {
		print_message("  reader %d (max_bytes %zu): %" PRIu64 " reads, %" PRIu64
			      " messages, %" PRIu64 " gaps, %" PRIu64 " overruns\n",
			      i, rd[i].max_bytes, rd[i].reads, rd[i].received, rd[i].gaps,
			      rd[i].overruns);
		if (rd[i].corrupt)
			fail_msg("reader %d: %" PRIu64 " problems; first: %s", i, rd[i].corrupt,
				 rd[i].why);
		assert_false(rd[i].timed_out);
		assert_true(rd[i].pos == MP_TOTAL);
		if (expect_all)
			assert_true(rd[i].received == MP_TOTAL && rd[i].gaps == 0);
	}
	/* Readers agree on every seq they both saw; with everything retained, each (w, i) once. */
	uint64_t seen[MP_WRITERS] = {0};
	for (uint64_t s = 1; s <= MP_TOTAL; s++) {
		uint64_t who = 0;

		for (int i = 0; i < MP_READERS; i++) {
			if (!rd[i].who[s])
				continue;
			if (who && rd[i].who[s] != who)
				fail_msg("seq %" PRIu64 ": readers disagree on its message", s);
			who = rd[i].who[s];
		}
		if (expect_all) {
			/* Seq order is each writer's order: writer w's next is i = seen[w]. */
			assert_true(who && (who & 0xffffffffu) - 1 == seen[who >> 32]);
			seen[who >> 32]++;
		}
	}
	for (int i = 0; i < MP_READERS; i++)
		free(rd[i].who);
	gw_ring_free(mp.ring);
}

/* A small ring: the readers are lapped while three writers publish. */
static void test_several_writers_and_readers_overrun(void **state)
{
	(void)state;
	run_mp(256, 16384, 4096, false);
}

/* A ring holding everything: every reader gets all 120,000 messages, exactly. */
static void test_several_writers_and_readers_see_everything(void **state)
{
	(void)state;
	run_mp(1u << 18, (size_t)32 << 20, 16384, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_rejects_bad_arguments),
		cmocka_unit_test(test_epoch_is_what_was_passed),
		cmocka_unit_test(test_empty_ring_reads_nothing),
		cmocka_unit_test(test_seqs_start_at_one_and_are_consecutive),
		cmocka_unit_test(test_message_is_prefix_plus_rest),
		cmocka_unit_test(test_read_after_zero_returns_all),
		cmocka_unit_test(test_read_after_head_returns_nothing),
		cmocka_unit_test(test_read_after_each_seq_returns_the_rest),
		cmocka_unit_test(test_slot_wraparound_keeps_newest_nslots),
		cmocka_unit_test(test_arena_wraparound_messages_are_exact),
		cmocka_unit_test(test_arena_wraparound_large_messages),
		cmocka_unit_test(test_expired_messages_are_skipped),
		cmocka_unit_test(test_window_matches_model),
		cmocka_unit_test(test_ts_never_decreases),
		cmocka_unit_test(test_max_bytes_returns_prefix_then_rest),
		cmocka_unit_test(test_max_bytes_ignores_existing_buffer_content),
		cmocka_unit_test(test_too_large_message_is_refused_without_change),
		cmocka_unit_test(test_message_of_exactly_max_encoded_bytes_is_accepted),
		cmocka_unit_test(test_concurrent_publishers_serialise),
		cmocka_unit_test(test_concurrent_readers_overrun_see_only_exact_messages),
		cmocka_unit_test(test_concurrent_readers_without_overrun_see_everything),
		cmocka_unit_test(test_several_writers_and_readers_overrun),
		cmocka_unit_test(test_several_writers_and_readers_see_everything),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
