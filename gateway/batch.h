/*
 * Batches: the one object every transport delivers,
 *   {"room":"r1","msgs":[…],"cursor":"…","gap":false}
 * built straight from the ring into the caller's buffer (messages are copied,
 * never re-encoded). Cursor and gap come after msgs so the batch is written
 * in one pass. Any thread.
 */
#ifndef GW_BATCH_H
#define GW_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/buf.h"
#include "gateway/cursor.h"
#include "gateway/error.h"

struct gw_room;

/* A reader's position in one room. */
struct gw_pos {
	uint64_t epoch;   /* ring epoch the position refers to */
	uint64_t after;   /* last seq the reader has */
	bool owe_gap;     /* tell the reader about a gap in its next batch */
};

struct gw_batch {
	size_t count;
	size_t suppressed; /* danmaku left out by the budget */
	size_t danmaku;    /* danmaku kept, when a budget applied (else 0) */
	bool gap;
	bool overrun;
	bool more; /* stopped at max_bytes; more is waiting */
};

/*
 * Turn a client's `since` (NULL: none) into a position in room: no since
 * starts at the newest message; a cursor of another epoch starts at the
 * oldest retained one and owes a gap. A cursor ahead of the room is refused
 * (400 bad_cursor).
 */
int gw_pos_resolve(const struct gw_room *room, const struct gw_cursor *since, struct gw_pos *pos,
		   struct gw_err *err);
/* True when a batch built now would carry messages or a gap. */
bool gw_pos_pending(const struct gw_room *room, const struct gw_pos *pos);

/*
 * Append the batch for pos to out (at most max_bytes of messages) and advance
 * pos past it. Returns 0, or -1 on OOM.
 */
int gw_batch_build(const struct gw_room *room, struct gw_pos *pos, size_t max_bytes,
		   struct gw_buf *out, struct gw_batch *info);

/* What a batch for one client adds to the plain one. */
struct gw_batch_opts {
	/*
	 * At most this many danmaku (SIZE_MAX: all). Beyond it an evenly spread
	 * sample of the batch's danmaku is kept; every other type always is.
	 */
	size_t danmaku_budget;
	const char *advice; /* a JSON object appended as "advice", or NULL */
	size_t advice_len;
};

/* gw_batch_build with opts (NULL: none). Any thread. */
int gw_batch_build_opts(const struct gw_room *room, struct gw_pos *pos, size_t max_bytes,
			struct gw_buf *out, struct gw_batch *info, const struct gw_batch_opts *opts);
/* True when an encoded message (as the ring stores it) is a danmaku. */
bool gw_msg_is_danmaku(const char *msg, size_t len);

#endif
