/*
 * gw_ring: one room's recent messages, encoded once, read lock-free.
 *
 * Layout. A ring is two preallocated arrays: `nslots` slots (a power of two)
 * that index messages by sequence number (slot = seq & (nslots - 1)), and an
 * arena of `bytes` bytes that holds each message's JSON contiguously, padded to
 * 8 bytes, written at a monotonically growing byte position (arena index =
 * position % bytes; a message that would straddle the end starts at 0 instead).
 * Both arrays are anonymous mmap()s, so a quiet room only costs the pages it
 * has touched.
 *
 * Concurrency protocol.
 *   Writers: any thread; writers of one ring are serialised by `wlock` (they
 *   never wait for readers). Readers: any number of threads, no lock, no
 *   writes to the ring.
 *   `head` is the newest published seq (0: none yet); `tail` is the oldest seq
 *   whose slot and bytes are still intact (tail > head: empty).
 *   To publish seq s the writer
 *     1. advances `tail` past every entry whose slot or bytes s will reuse
 *        (relaxed store), then issues a release fence;
 *     2. writes the slot fields and the arena words (relaxed atomic stores);
 *     3. stores slot.seq = s (release), then head = s (release).
 *   A reader of seq r loads head (acquire) to learn r exists, loads slot.seq
 *   (acquire) and checks it is r, copies the fields and arena words (relaxed
 *   atomic loads), then issues an acquire fence and loads `tail`. If r < tail
 *   the writer may have been overwriting r while it was copied: the copy is
 *   discarded and the reader was *overrun*. Otherwise the copy is exact: had it
 *   seen any store of a later write, the fences would make that write's
 *   earlier tail store (which evicted r) visible, and r >= tail shows it did
 *   not. This is a per-entry seqlock whose version is `tail`.
 *   Arena words are accessed with relaxed atomics rather than memcpy so the
 *   races the protocol tolerates are defined behaviour (and ThreadSanitizer
 *   agrees); on x86-64 they compile to plain moves.
 *
 * Time. Each message carries the server wall-clock ts of its publication
 * (never decreasing within a ring). Readers ignore messages older than the
 * window; since ts is monotonic in seq they find the first live one by binary
 * search, so a read costs O(log n + what it returns).
 *
 * Epoch. A ring gets a random 64-bit epoch at creation; cursors carry it, so a
 * cursor from a previous ring (a restart, a reclaimed room) is recognised.
 */
#ifndef GW_RING_H
#define GW_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/buf.h"

struct gw_ring;

struct gw_ring_read {
	size_t count;       /* messages appended */
	uint64_t last;      /* seq to resume after: last appended, else where reading stopped */
	bool gap;           /* messages after `after` were skipped (expired, evicted, overrun) */
	bool overrun;       /* a concurrent writer overtook this read (counted in metrics) */
	bool more;          /* stopped at max_bytes with messages left */
};

/*
 * Create an empty ring. nslots: power of two >= 2; bytes: >= 4096 (rounded
 * down to a multiple of 8); window_ms > 0. Any thread. Caller frees with
 * gw_ring_free(). NULL on bad arguments or when memory cannot be mapped.
 */
struct gw_ring *gw_ring_new(uint64_t nslots, size_t bytes, int64_t window_ms, uint64_t epoch);
/* Free. Caller guarantees no reader or writer uses the ring any more. */
void gw_ring_free(struct gw_ring *r);

uint64_t gw_ring_epoch(const struct gw_ring *r);
/* Newest published seq (acquire), 0 when none. Any thread. */
uint64_t gw_ring_head(const struct gw_ring *r);
/* Largest message gw_ring_publish accepts, in encoded bytes. */
size_t gw_ring_max_message(const struct gw_ring *r);

/*
 * Publish one message: the ring writes `{"seq":S,"ts":T,` followed by `rest`,
 * which must be the remainder of a JSON object (`"type":…}`). ts is
 * max(now_ms, previous ts). Any thread; concurrent publishers serialise.
 * Returns the new seq, or 0 when the message exceeds gw_ring_max_message().
 */
uint64_t gw_ring_publish(struct gw_ring *r, const char *rest, size_t rest_len, int64_t now_ms);

/*
 * Append to `out` the messages with seq > after that are inside the window at
 * now_ms, separated by ',', oldest first, stopping before out would grow past
 * max_bytes (at least one message is always returned when any is due). When
 * messages after `after` are gone, starts at the oldest retained one and sets
 * gap. `after` must be <= gw_ring_head(). Any thread. Returns 0, or -1 on OOM
 * (out then holds a prefix of whole messages and res is consistent with it).
 */
int gw_ring_read(const struct gw_ring *r, uint64_t after, int64_t now_ms, size_t max_bytes,
		 struct gw_buf *out, struct gw_ring_read *res);

/*
 * gw_ring_read with a filter: keep(arg, seq, msg, len) sees each message after
 * it was copied (so the bytes are stable) and returns false to leave it out;
 * a message left out still advances res->last. res->count counts kept ones.
 */
typedef bool (*gw_ring_keep_fn)(void *arg, uint64_t seq, const char *msg, size_t len);
int gw_ring_read_filtered(const struct gw_ring *r, uint64_t after, int64_t now_ms,
			  size_t max_bytes, struct gw_buf *out, struct gw_ring_read *res,
			  gw_ring_keep_fn keep, void *arg);

/* Oldest seq a read would start at now (head + 1 when none is live). Any thread. */
uint64_t gw_ring_oldest(const struct gw_ring *r, int64_t now_ms);

#endif
