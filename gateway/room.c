/*
 * Rooms registry. See room.h for the model.
 *
 * Concurrency protocol.
 *   Registry: a hash table behind a rwlock. Lookups take it shared and bump
 *   the room's reference count inside it; creation and reaping take it
 *   exclusive, so a room whose count is 0 under the exclusive lock has no user
 *   and none can appear.
 *   Per (room, worker) state `struct room_wk`:
 *     - subs: list of that worker's subscribers; only that worker touches it.
 *     - nsubs: written by that worker, read by publishers (any thread). The
 *       subscriber increments it and then reads the ring; the publisher
 *       publishes and then reads nsubs; both with a seq_cst fence between
 *       (Dekker), so either the subscriber sees the message in its first read
 *       or the publisher sees nsubs > 0 and queues a wake-up.
 *     - queued: 1 while on the worker's dirty stack. The publisher that flips
 *       it 0 -> 1 (exchange) pushes it, taking a room reference; the worker
 *       flips it back with an acq_rel exchange before notifying, which also
 *       makes every publish that saw 1 visible to the notified readers.
 *   Dirty stack per worker: a Treiber stack. Publishers push with CAS; only
 *   the owning worker pops, and it takes the whole stack with one exchange, so
 *   there is no ABA.
 */
#include "gateway/room.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/random.h"
#include "gateway/clock.h"
#include "gateway/map.h"
#include "gateway/ring.h"

struct room_wk {
	struct gw_room *room;
	struct gw_sub *subs;
	_Atomic unsigned nsubs;
	_Atomic int queued;
	struct room_wk *next_dirty;
};

struct gw_room {
	struct gw_room *hnext; /* bucket chain, under the registry lock */
	struct gw_rooms *rs;
	_Atomic uint64_t refs;
	_Atomic int64_t last_active_ms; /* monotonic */
	struct gw_ring *ring;
	uint64_t hash;
	size_t name_len;
	char name[65];
	struct room_wk wk[]; /* one per worker */
};

struct dirty_head {
	_Atomic(struct room_wk *) top;
	char pad[64 - sizeof(void *)];
};

struct gw_rooms {
	struct gw_rooms_conf conf;
	pthread_rwlock_t lock;
	struct gw_room **buckets;
	size_t mask;
	_Atomic size_t count;
	void (*wake)(void *arg, unsigned worker);
	void *wake_arg;
	struct dirty_head *dirty;
};

bool gw_name_valid(const char *s, size_t len)
{
	if (len < 1 || len > 64)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

struct gw_rooms *gw_rooms_new(const struct gw_rooms_conf *conf)
{
	struct gw_rooms *rs = calloc(1, sizeof(*rs));
	size_t nb = 64;

	if (!rs)
		return NULL;
	rs->conf = *conf;
	if (rs->conf.workers < 1)
		rs->conf.workers = 1;
	while (nb < conf->max_rooms && nb < (1u << 22))
		nb <<= 1;
	rs->buckets = calloc(nb, sizeof(*rs->buckets));
	rs->dirty = calloc(rs->conf.workers, sizeof(*rs->dirty));
	if (!rs->buckets || !rs->dirty || pthread_rwlock_init(&rs->lock, NULL)) {
		free(rs->buckets);
		free(rs->dirty);
		free(rs);
		return NULL;
	}
	rs->mask = nb - 1;
	return rs;
}

static void room_free(struct gw_room *room)
{
	gw_ring_free(room->ring);
	free(room);
}

void gw_rooms_free(struct gw_rooms *rs)
{
	if (!rs)
		return;
	for (size_t b = 0; b <= rs->mask; b++) {
		struct gw_room *room = rs->buckets[b], *next;
		for (; room; room = next) {
			next = room->hnext;
			room_free(room);
		}
	}
	pthread_rwlock_destroy(&rs->lock);
	free(rs->buckets);
	free(rs->dirty);
	free(rs);
}

void gw_rooms_set_waker(struct gw_rooms *rs, void (*wake)(void *arg, unsigned worker), void *arg)
{
	rs->wake = wake;
	rs->wake_arg = arg;
}

static struct gw_room *find_locked(struct gw_rooms *rs, const char *name, size_t len, uint64_t h)
{
	struct gw_room *room = rs->buckets[h & rs->mask];

	for (; room; room = room->hnext)
		if (room->hash == h && room->name_len == len && !memcmp(room->name, name, len))
			return room;
	return NULL;
}

static void touch(struct gw_room *room)
{
	atomic_store_explicit(&room->last_active_ms, gw_clock_mono_ms(), memory_order_relaxed);
}

struct gw_room *gw_rooms_acquire(struct gw_rooms *rs, const char *name, size_t len,
				 struct gw_err *err)
{
	uint64_t h = gw_hash_bytes(name, len);
	struct gw_room *room;

	pthread_rwlock_rdlock(&rs->lock);
	room = find_locked(rs, name, len, h);
	if (room)
		atomic_fetch_add_explicit(&room->refs, 1, memory_order_relaxed);
	pthread_rwlock_unlock(&rs->lock);
	if (room) {
		touch(room);
		return room;
	}

	pthread_rwlock_wrlock(&rs->lock);
	room = find_locked(rs, name, len, h);
	if (room) {
		atomic_fetch_add_explicit(&room->refs, 1, memory_order_relaxed);
		goto out;
	}
	if (atomic_load_explicit(&rs->count, memory_order_relaxed) >= rs->conf.max_rooms) {
		gw_fail(err, 503, "too_many_rooms", "this gateway holds its maximum of %zu rooms",
			rs->conf.max_rooms);
		goto out;
	}
	room = calloc(1, sizeof(*room) + rs->conf.workers * sizeof(struct room_wk));
	if (!room)
		goto oom;
	room->ring = gw_ring_new(rs->conf.ring_slots, rs->conf.ring_bytes, rs->conf.window_ms,
				 cr_random_u64());
	if (!room->ring) {
		free(room);
		room = NULL;
		goto oom;
	}
	room->rs = rs;
	room->hash = h;
	room->name_len = len;
	memcpy(room->name, name, len);
	for (unsigned w = 0; w < rs->conf.workers; w++)
		room->wk[w].room = room;
	atomic_init(&room->refs, 1);
	room->hnext = rs->buckets[h & rs->mask];
	rs->buckets[h & rs->mask] = room;
	atomic_fetch_add_explicit(&rs->count, 1, memory_order_relaxed);
	goto out;
oom:
	gw_fail(err, 503, "no_memory", "could not allocate the room's ring");
out:
	pthread_rwlock_unlock(&rs->lock);
	if (room)
		touch(room);
	return room;
}

void gw_room_ref(struct gw_room *room)
{
	atomic_fetch_add_explicit(&room->refs, 1, memory_order_relaxed);
}

void gw_room_release(struct gw_room *room)
{
	touch(room);
	/* Release: the reaper's acquire load of 0 sees every use that came before. */
	atomic_fetch_sub_explicit(&room->refs, 1, memory_order_release);
}

const char *gw_room_name(const struct gw_room *room, size_t *len)
{
	if (len)
		*len = room->name_len;
	return room->name;
}

struct gw_ring *gw_room_ring(const struct gw_room *room)
{
	return room->ring;
}

double gw_room_rate(const struct gw_room *room)
{
	uint64_t head = gw_ring_head(room->ring);
	uint64_t oldest = gw_ring_oldest(room->ring, gw_clock_wall_ms());

	if (oldest > head)
		return 0.0;
	return (double)(head - oldest + 1) * 1000.0 / (double)room->rs->conf.window_ms;
}

uint64_t gw_room_publish(struct gw_room *room, const char *rest, size_t rest_len)
{
	struct gw_rooms *rs = room->rs;
	uint64_t seq = gw_ring_publish(room->ring, rest, rest_len, gw_clock_wall_ms());

	if (!seq)
		return 0;
	touch(room);
	atomic_thread_fence(memory_order_seq_cst); /* pairs with gw_room_subscribe */
	for (unsigned w = 0; w < rs->conf.workers; w++) {
		struct room_wk *wk = &room->wk[w];
		struct room_wk *top;

		if (!atomic_load_explicit(&wk->nsubs, memory_order_relaxed))
			continue;
		if (atomic_exchange_explicit(&wk->queued, 1, memory_order_acq_rel))
			continue; /* already queued: the pending dispatch will see this seq */
		gw_room_ref(room);
		top = atomic_load_explicit(&rs->dirty[w].top, memory_order_relaxed);
		do {
			wk->next_dirty = top;
		} while (!atomic_compare_exchange_weak_explicit(&rs->dirty[w].top, &top, wk,
								 memory_order_release,
								 memory_order_relaxed));
		/* Only the push onto an empty stack needs a wake-up; later ones ride along. */
		if (!top && rs->wake)
			rs->wake(rs->wake_arg, w);
	}
	return seq;
}

void gw_room_subscribe(struct gw_room *room, struct gw_sub *sub, unsigned worker)
{
	struct room_wk *wk = &room->wk[worker];

	gw_room_ref(room);
	sub->room = room;
	sub->worker = worker;
	sub->prev = NULL;
	sub->next = wk->subs;
	if (wk->subs)
		wk->subs->prev = sub;
	wk->subs = sub;
	atomic_fetch_add_explicit(&wk->nsubs, 1, memory_order_seq_cst);
	atomic_thread_fence(memory_order_seq_cst); /* pairs with gw_room_publish */
}

void gw_room_unsubscribe(struct gw_sub *sub)
{
	struct gw_room *room = sub->room;
	struct room_wk *wk;

	if (!room)
		return;
	wk = &room->wk[sub->worker];
	if (sub->prev)
		sub->prev->next = sub->next;
	else
		wk->subs = sub->next;
	if (sub->next)
		sub->next->prev = sub->prev;
	sub->prev = sub->next = NULL;
	sub->room = NULL;
	atomic_fetch_sub_explicit(&wk->nsubs, 1, memory_order_relaxed);
	gw_room_release(room);
}

bool gw_rooms_pending(struct gw_rooms *rs, unsigned worker)
{
	return atomic_load_explicit(&rs->dirty[worker].top, memory_order_relaxed) != NULL;
}

void gw_rooms_dispatch(struct gw_rooms *rs, unsigned worker)
{
	struct room_wk *wk = atomic_exchange_explicit(&rs->dirty[worker].top, NULL,
						      memory_order_acquire);

	while (wk) {
		struct room_wk *next = wk->next_dirty;
		struct gw_sub *sub, *sub_next;

		atomic_exchange_explicit(&wk->queued, 0, memory_order_acq_rel);
		/* notify must not free other subscribers; it may detach itself. */
		for (sub = wk->subs; sub; sub = sub_next) {
			sub_next = sub->next;
			sub->ops->notify(sub);
		}
		gw_room_release(wk->room);
		wk = next;
	}
}

size_t gw_rooms_reap(struct gw_rooms *rs)
{
	int64_t now = gw_clock_mono_ms();
	size_t reaped = 0;

	pthread_rwlock_wrlock(&rs->lock);
	for (size_t b = 0; b <= rs->mask; b++) {
		struct gw_room **pp = &rs->buckets[b];

		while (*pp) {
			struct gw_room *room = *pp;
			int64_t idle = now - atomic_load_explicit(&room->last_active_ms,
								  memory_order_relaxed);

			if (atomic_load_explicit(&room->refs, memory_order_acquire) == 0 &&
			    idle > rs->conf.window_ms) {
				*pp = room->hnext;
				room_free(room);
				atomic_fetch_sub_explicit(&rs->count, 1, memory_order_relaxed);
				reaped++;
			} else {
				pp = &room->hnext;
			}
		}
	}
	pthread_rwlock_unlock(&rs->lock);
	return reaped;
}

size_t gw_rooms_count(struct gw_rooms *rs)
{
	return atomic_load_explicit(&rs->count, memory_order_relaxed);
}
