/*
 * Shared plain batches: one ring read and one encode (and, for polls, one
 * gzip) per burst of readers at the same cursor instead of one per reader.
 * When a flush reaches a room its WebSocket subscribers nearly all sit at
 * the same cursor, and pollers answered between the same two publishes come
 * back together; each worker keeps the last few plain batches it built and
 * hands one to every reader at the same (room, cursor) while the room's ring
 * head has not moved.
 *
 * Only the plain batch is shared (the caller keeps advice and danmaku
 * budgets out), never a gap owed to one reader, and for at most
 * SHARED_MAX_AGE_MS, which bounds how stale its window check (messages older
 * than `window` are left out) can be. An entry's room pointer is only
 * compared, never followed: a room reclaimed and another allocated at the
 * same address has another random epoch, which the cursor must also match.
 *
 * Worker thread only: each set belongs to one worker, no locks.
 */
#include "gateway/clock.h"
#include "gateway/ring.h"
#include "transport/internal.h"

#define SHARED_MAX_AGE_MS 100
/* An evicted entry gives back buffers grown past this (a rare huge batch). */
#define SHARED_KEEP_BYTES (256 * 1024)

void tp_shared_init(struct tp_shared_batch *set, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		set[i].room = NULL;
		set[i].gz_state = 0;
		gw_buf_init(&set[i].body, LWS_PRE + TP_HDR_ROOM);
		gw_buf_init(&set[i].gz, LWS_PRE + TP_HDR_ROOM);
	}
}

void tp_shared_fini(struct tp_shared_batch *set, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		gw_buf_free(&set[i].body);
		gw_buf_free(&set[i].gz);
	}
}

int tp_shared_batch(struct tp_conn *c, struct tp_shared_batch *set, unsigned n,
                    struct tp_shared_batch **out)
{
	struct gw_pos from = c->pos;
	uint64_t head = gw_ring_head(gw_room_ring(c->room));
	int64_t now = gw_clock_mono_ms();
	struct tp_shared_batch *e, *victim = NULL;

	*out = NULL;
	if (from.owe_gap || !n)
		return 0;
	for (unsigned i = 0; i < n; i++) {
		e = &set[i];
		if (e->room != c->room || e->from.epoch != from.epoch ||
		    e->from.after != from.after) {
			/* Evict an empty entry first, else the oldest. */
			if (!victim ||
			    (victim->room && (!e->room || e->built_ms < victim->built_ms)))
				victim = e;
			continue;
		}
		if (e->head == head && now - e->built_ms <= SHARED_MAX_AGE_MS) {
			c->pos.after = e->last;
			*out = e;
			return 0;
		}
		victim = e; /* the same cursor, outdated: rebuild in place */
		break;
	}
	e = victim;
	e->room = NULL;
	e->gz_state = 0;
	gw_buf_reset(&e->gz);
	if (e->body.cap > SHARED_KEEP_BYTES)
		gw_buf_free(&e->body);
	if (e->gz.cap > SHARED_KEEP_BYTES)
		gw_buf_free(&e->gz);
	gw_buf_reset(&e->body);
	if (gw_batch_build(c->room, &c->pos, (size_t)c->wk->srv->cfg->batch_max_bytes, &e->body,
	                   &e->info))
		return -1;
	e->room = c->room;
	e->from = from;
	e->head = head; /* read before building: anything newer forces a rebuild */
	e->last = c->pos.after;
	e->built_ms = now;
	*out = e;
	return 0;
}
