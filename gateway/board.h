/*
 * Leaderboards: per room, the total gift value each uid has sent, and a
 * snapshot of the top senders.
 *
 * The journal consumer (one thread, off the send path) adds values with
 * gw_board_add and, at most once per second, calls gw_board_refresh, which
 * recomputes the top list of every room that changed and hands each one to a
 * callback (the gateway pushes it into the room as a "rank" message).
 * Readers (GET .../leaderboard, any worker) copy a snapshot with gw_board_top.
 *
 * Threads: gw_board_add / gw_board_refresh from the consumer thread only;
 * gw_board_top from any thread. A rwlock guards the room table and the
 * snapshots; totals are only touched by the consumer under the write lock.
 */
#ifndef GW_BOARD_H
#define GW_BOARD_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/buf.h"

/* How many leaders a snapshot keeps (GET ...?n= is capped to it). */
#define GW_BOARD_TOP_MAX 100

struct gw_board;

struct gw_board *gw_board_new(void);
void gw_board_free(struct gw_board *b);

/* Consumer thread: add value to uid's total in room. 0, or -1 on OOM. */
int gw_board_add(struct gw_board *b, const char *room, size_t room_len, const char *uid,
		 size_t uid_len, uint64_t value);
/*
 * Consumer thread: recompute the snapshot of each room changed since the last
 * call and pass it to fn as the JSON array `[{"uid":"alice","value":5000},…]`
 * (highest first, ties by uid). Returns the number of rooms refreshed.
 */
size_t gw_board_refresh(struct gw_board *b,
			void (*fn)(void *arg, const char *room, size_t room_len, const char *top,
				   size_t top_len),
			void *arg);
/*
 * Any thread: append the first n entries of room's snapshot as a JSON array to
 * out ("[]" for an unknown room). 0, or -1 on OOM.
 */
int gw_board_top(struct gw_board *b, const char *room, size_t room_len, size_t n,
		 struct gw_buf *out);
/* Any thread: uid's total in room from the last snapshot-independent totals (tests). */
uint64_t gw_board_total(struct gw_board *b, const char *room, size_t room_len, const char *uid,
			size_t uid_len);

#endif
