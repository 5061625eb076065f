/*
 * Rooms: a registry of named rooms, each owning one ring, and the subscriber
 * interface every transport implements.
 *
 * Subscribers. A transport embeds a struct gw_sub in its per-connection state
 * and fills `ops`; the core only ever calls ops->notify, so it never branches
 * on the transport type. Each subscriber lives on one worker thread (the one
 * running its connection's event loop) and is only touched there.
 *
 * Wake-ups. Publishing (any thread) appends the room to the dirty list of
 * every worker that has subscribers in it and calls the waker for that worker
 * (the transport's lws_cancel_service). The worker then runs
 * gw_rooms_dispatch(), which calls notify on its subscribers of each dirty
 * room. Publishing never waits for subscribers.
 *
 * Lifetime. gw_rooms_acquire returns a counted reference; subscribers and
 * in-flight requests each hold one. A room with no references and no publish
 * for one window is reclaimed by gw_rooms_reap.
 */
#ifndef GW_ROOM_H
#define GW_ROOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/cursor.h"
#include "gateway/error.h"

struct gw_rooms;
struct gw_room;
struct gw_ring;
struct gw_sub;

struct gw_sub_ops {
	const char *name; /* transport name, for logs */
	/* The room has (or may have) messages after the subscriber's cursor. Worker thread. */
	void (*notify)(struct gw_sub *sub);
};

struct gw_sub {
	const struct gw_sub_ops *ops;
	struct gw_room *room;       /* set by gw_room_subscribe */
	struct gw_sub *prev, *next; /* room's list for this worker; worker-owned */
	unsigned worker;
};

struct gw_rooms_conf {
	unsigned workers;
	uint64_t ring_slots;
	size_t ring_bytes;
	int64_t window_ms;
	size_t max_rooms;
};

/* Main thread, before workers start. Caller frees with gw_rooms_free. */
struct gw_rooms *gw_rooms_new(const struct gw_rooms_conf *conf);
/* Main thread, after workers stopped: frees every room. */
void gw_rooms_free(struct gw_rooms *rs);
/* Main thread, before workers start: how to wake worker w. */
void gw_rooms_set_waker(struct gw_rooms *rs, void (*wake)(void *arg, unsigned worker), void *arg);

/* Room names: [A-Za-z0-9_-]{1,64}. Also used for uids. */
bool gw_name_valid(const char *s, size_t len);

/*
 * Find a room, creating it if missing. Returns a reference (release with
 * gw_room_release), or NULL with *err set (503 too_many_rooms, 503 no_memory).
 * The name must already be valid. Any thread.
 */
struct gw_room *gw_rooms_acquire(struct gw_rooms *rs, const char *name, size_t len,
				 struct gw_err *err);
/* Take another reference on a room you hold. Any thread. */
void gw_room_ref(struct gw_room *room);
/* Drop a reference. Any thread. */
void gw_room_release(struct gw_room *room);

const char *gw_room_name(const struct gw_room *room, size_t *len);
struct gw_ring *gw_room_ring(const struct gw_room *room);
/* Messages per second published over the last window (retained ones). Any thread. */
double gw_room_rate(const struct gw_room *room);

/* Publish one message (see gw_ring_publish for `rest`). Any thread. Returns seq, 0 if too big. */
uint64_t gw_room_publish(struct gw_room *room, const char *rest, size_t rest_len);

/* Attach sub (its ops set) to room on the calling worker; takes a room reference. */
void gw_room_subscribe(struct gw_room *room, struct gw_sub *sub, unsigned worker);
/* Detach; drops the reference. Worker thread of the sub. Safe to call twice. */
void gw_room_unsubscribe(struct gw_sub *sub);

/* Worker w's thread: is any room waiting for gw_rooms_dispatch? */
bool gw_rooms_pending(struct gw_rooms *rs, unsigned worker);
/* Worker w's thread: notify its subscribers of every room published since the last call. */
void gw_rooms_dispatch(struct gw_rooms *rs, unsigned worker);
/* Reclaim rooms idle past the window with no references. Any one thread at a time. */
size_t gw_rooms_reap(struct gw_rooms *rs);
/* Rooms that exist now. Any thread. */
size_t gw_rooms_count(struct gw_rooms *rs);

#endif
