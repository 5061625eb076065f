/* gw_ring: see ring.h for the layout and the concurrency protocol. */
#include "gateway/ring.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct gw_ring_slot {
	_Atomic uint64_t seq; /* which seq the fields describe; published last */
	_Atomic int64_t ts;
	_Atomic uint64_t pos; /* monotonic arena byte position of the JSON */
	_Atomic uint64_t len; /* JSON bytes (unpadded) */
};

struct gw_ring {
	/* Immutable after gw_ring_new. */
	uint64_t epoch;
	uint64_t mask; /* nslots - 1 */
	uint64_t nslots;
	uint64_t bytes; /* arena size, multiple of 8 */
	int64_t window_ms;
	struct gw_ring_slot *slots;
	_Atomic uint64_t *arena;

	/* Writer state, guarded by wlock. */
	pthread_mutex_t wlock;
	uint64_t wpos;   /* next free monotonic arena position */
	int64_t last_ts; /* ts of the newest message */

	/* Published state: written by the writer under wlock, read by anyone. */
	_Atomic uint64_t head __attribute__((aligned(64)));
	_Atomic uint64_t tail __attribute__((aligned(64)));
};

#define PAD8(n) (((n) + 7u) & ~(uint64_t)7u)

static void *map_zeroed(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

struct gw_ring *gw_ring_new(uint64_t nslots, size_t bytes, int64_t window_ms, uint64_t epoch)
{
	struct gw_ring *r;

	if (nslots < 2 || (nslots & (nslots - 1)) || bytes < 4096 || window_ms <= 0)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->epoch = epoch;
	r->nslots = nslots;
	r->mask = nslots - 1;
	r->bytes = bytes & ~(uint64_t)7;
	r->window_ms = window_ms;
	r->slots = map_zeroed(nslots * sizeof(struct gw_ring_slot));
	r->arena = map_zeroed(r->bytes);
	if (!r->slots || !r->arena || pthread_mutex_init(&r->wlock, NULL))
		goto fail;
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 1);
	return r;
fail:
	if (r->slots)
		munmap(r->slots, nslots * sizeof(struct gw_ring_slot));
	if (r->arena)
		munmap((void *)r->arena, r->bytes);
	free(r);
	return NULL;
}

void gw_ring_free(struct gw_ring *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->wlock);
	munmap(r->slots, r->nslots * sizeof(struct gw_ring_slot));
	munmap((void *)r->arena, r->bytes);
	free(r);
}

uint64_t gw_ring_epoch(const struct gw_ring *r)
{
	return r->epoch;
}

uint64_t gw_ring_head(const struct gw_ring *r)
{
	return atomic_load_explicit(&r->head, memory_order_acquire);
}

size_t gw_ring_max_message(const struct gw_ring *r)
{
	/* A quarter of the arena, so one message never evicts a whole window by itself. */
	return (size_t)(r->bytes / 4);
}

/* Format the `{"seq":S,"ts":T,` prefix; returns its length. */
static size_t fmt_prefix(char *p, uint64_t seq, int64_t ts)
{
	char num[24];
	size_t n = 0, i;

	memcpy(p, "{\"seq\":", 7);
	n = 7;
	i = sizeof(num);
	do {
		num[--i] = (char)('0' + seq % 10);
		seq /= 10;
	} while (seq);
	memcpy(p + n, num + i, sizeof(num) - i);
	n += sizeof(num) - i;
	memcpy(p + n, ",\"ts\":", 6);
	n += 6;
	/* ts is wall-clock ms, non-negative on any sane clock. */
	uint64_t t = ts < 0 ? 0 : (uint64_t)ts;
	i = sizeof(num);
	do {
		num[--i] = (char)('0' + t % 10);
		t /= 10;
	} while (t);
	memcpy(p + n, num + i, sizeof(num) - i);
	n += sizeof(num) - i;
	p[n++] = ',';
	return n;
}

/* Store len bytes at arena word index w, as relaxed atomic words (see ring.h). */
static void arena_store(struct gw_ring *r, uint64_t w, const char *a, size_t alen, const char *b,
			size_t blen)
{
	size_t total = alen + blen, off = 0;

	while (off < total) {
		char word[8] = {0};
		size_t k;

		for (k = 0; k < 8 && off + k < total; k++) {
			size_t at = off + k;
			word[k] = at < alen ? a[at] : b[at - alen];
		}
		uint64_t v;
		memcpy(&v, word, 8);
		atomic_store_explicit(&r->arena[w++], v, memory_order_relaxed);
		off += 8;
	}
}

uint64_t gw_ring_publish(struct gw_ring *r, const char *rest, size_t rest_len, int64_t now_ms)
{
	char prefix[64];
	uint64_t s, head, t, start, end, idx, need;
	size_t plen;
	int64_t ts;

	if (rest_len > gw_ring_max_message(r))
		return 0;
	pthread_mutex_lock(&r->wlock);
	head = atomic_load_explicit(&r->head, memory_order_relaxed);
	s = head + 1;
	ts = now_ms > r->last_ts ? now_ms : r->last_ts;
	plen = fmt_prefix(prefix, s, ts);
	if (plen + rest_len > gw_ring_max_message(r)) {
		pthread_mutex_unlock(&r->wlock);
		return 0;
	}
	need = PAD8(plen + rest_len);

	start = r->wpos;
	idx = start % r->bytes;
	if (idx + need > r->bytes)
		start += r->bytes - idx; /* keep each message contiguous */
	end = start + need;

	/* 1. Evict what s reuses: its slot (seq s - nslots) and any bytes below end - bytes. */
	t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	while (t <= head) {
		const struct gw_ring_slot *old = &r->slots[t & r->mask];

		if (s - t >= r->nslots)
			t++;
		else if (end > r->bytes &&
			 atomic_load_explicit(&old->pos, memory_order_relaxed) < end - r->bytes)
			t++;
		else
			break;
	}
	atomic_store_explicit(&r->tail, t, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);

	/* 2. Fields and bytes. */
	struct gw_ring_slot *sl = &r->slots[s & r->mask];
	atomic_store_explicit(&sl->ts, ts, memory_order_relaxed);
	atomic_store_explicit(&sl->pos, start, memory_order_relaxed);
	atomic_store_explicit(&sl->len, plen + rest_len, memory_order_relaxed);
	arena_store(r, (start % r->bytes) / 8, prefix, plen, rest, rest_len);

	/* 3. Publish. */
	atomic_store_explicit(&sl->seq, s, memory_order_release);
	atomic_store_explicit(&r->head, s, memory_order_release);

	r->wpos = end;
	r->last_ts = ts;
	pthread_mutex_unlock(&r->wlock);
	return s;
}

/* True when seq's copy taken before this call is still valid (see ring.h). */
static bool still_intact(const struct gw_ring *r, uint64_t seq)
{
	atomic_thread_fence(memory_order_acquire);
	return seq >= atomic_load_explicit(&r->tail, memory_order_relaxed);
}

/* ts of seq, or false when the slot no longer holds seq. */
static bool slot_ts(const struct gw_ring *r, uint64_t seq, int64_t *ts)
{
	const struct gw_ring_slot *sl = &r->slots[seq & r->mask];

	if (atomic_load_explicit(&sl->seq, memory_order_acquire) != seq)
		return false;
	*ts = atomic_load_explicit(&sl->ts, memory_order_relaxed);
	return still_intact(r, seq);
}

/*
 * First seq in [from, head] whose ts >= cutoff, head + 1 when none; sets
 * *lost when an entry vanished under us (caller retries from the new tail).
 */
static uint64_t first_live(const struct gw_ring *r, uint64_t from, uint64_t head, int64_t cutoff,
			   bool *lost)
{
	uint64_t lo = from, hi = head + 1; /* answer in [lo, hi] */
	int64_t ts;

	*lost = false;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (!slot_ts(r, mid, &ts)) {
			*lost = true;
			return 0;
		}
		if (ts >= cutoff)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

uint64_t gw_ring_oldest(const struct gw_ring *r, int64_t now_ms)
{
	for (int tries = 0;; tries++) {
		uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
		uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
		bool lost;

		if (tail > head)
			return head + 1;
		uint64_t o = first_live(r, tail, head, now_ms - r->window_ms, &lost);
		if (!lost || tries > 8)
			return lost ? head + 1 : o;
	}
}

/* Copy one message onto out; false when seq was overwritten meanwhile. */
static bool copy_entry(const struct gw_ring *r, uint64_t seq, struct gw_buf *out, uint64_t len,
		       uint64_t pos)
{
	uint64_t words = PAD8(len) / 8, w = (pos % r->bytes) / 8, i;
	char *dst = gw_buf_data(out) + out->len;

	/* Caller reserved PAD8(len) bytes; write whole words then count only len. */
	for (i = 0; i < words; i++) {
		uint64_t v = atomic_load_explicit(&r->arena[w + i], memory_order_relaxed);
		memcpy(dst + i * 8, &v, 8);
	}
	if (!still_intact(r, seq))
		return false;
	out->len += len;
	return true;
}

int gw_ring_read(const struct gw_ring *r, uint64_t after, int64_t now_ms, size_t max_bytes,
		 struct gw_buf *out, struct gw_ring_read *res)
{
	return gw_ring_read_filtered(r, after, now_ms, max_bytes, out, res, NULL, NULL);
}

int gw_ring_read_filtered(const struct gw_ring *r, uint64_t after, int64_t now_ms,
			  size_t max_bytes, struct gw_buf *out, struct gw_ring_read *res,
			  gw_ring_keep_fn keep, void *arg)
{
	uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	int64_t cutoff = now_ms - r->window_ms;
	uint64_t next = after + 1;
	size_t start_len = out->len;

	memset(res, 0, sizeof(*res));
	res->last = after;
	if (after >= head)
		return 0;

restart:;
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint64_t from = next > tail ? next : tail;
	int64_t ts;
	bool lost;

	/* Skip what aged out; usually the first entry is live and this is one probe. */
	if (from <= head && (!slot_ts(r, from, &ts) || ts < cutoff)) {
		from = first_live(r, from, head, cutoff, &lost);
		if (lost)
			goto overrun;
	}
	if (from > next) {
		res->gap = true;
		next = from;
		res->last = from - 1;
	}

	for (; next <= head; next++) {
		const struct gw_ring_slot *sl = &r->slots[next & r->mask];
		uint64_t len, pos;

		if (atomic_load_explicit(&sl->seq, memory_order_acquire) != next)
			goto overrun;
		len = atomic_load_explicit(&sl->len, memory_order_relaxed);
		pos = atomic_load_explicit(&sl->pos, memory_order_relaxed);
		if (!still_intact(r, next))
			goto overrun;
		if (res->count && out->len - start_len + 1 + len > max_bytes) {
			res->more = true;
			break;
		}
		if (gw_buf_reserve(out, PAD8(len) + 1))
			return -1;
		if (res->count)
			out->base[out->head + out->len++] = ',';
		if (!copy_entry(r, next, out, len, pos)) {
			if (res->count)
				out->len--;
			goto overrun;
		}
		res->last = next;
		if (keep && !keep(arg, next, gw_buf_data(out) + out->len - len, len)) {
			out->len -= len + (res->count ? 1 : 0);
			continue;
		}
		res->count++;
	}
	return 0;

overrun:
	/*
	 * The writer lapped us. With messages already taken, stop here so the
	 * batch stays contiguous; the next read reports the gap at its start.
	 */
	res->overrun = true;
	if (res->count) {
		res->more = true;
		return 0;
	}
	goto restart;
}
