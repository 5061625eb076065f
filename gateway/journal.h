/*
 * gw_journal: the append-only, fsync'd log of accepted gifts.
 *
 * Why. Gifts are money: a receipt tells the sender the gift happened, so the
 * gift must be on stable storage before the receipt leaves. Every accepted gift
 * is appended here and made durable (write + fdatasync) *before* its done
 * callback runs, and the receipt is only sent from that callback. On start the
 * journal is replayed to rebuild the in-memory indexes. fsync costs ~0.1-10 ms,
 * so concurrent gifts share one (group commit) instead of queueing behind each
 * other's.
 *
 * File layout. All integers are little-endian.
 *
 *      0        8                    8+8+len0
 *      +--------+------+------+------------+------+------+--------+-- - -
 *      |LGJRNL01| len0 | crc0 |  payload0  | len1 | crc1 | payl.1 |  ...
 *      +--------+------+------+------------+------+------+--------+-- - -
 *        magic    u32    u32    len0 bytes
 *
 *   - magic: the 8 bytes "LGJRNL01" (format version 01). Anything else is
 *     refused: it is not our file, or a format this code does not know.
 *   - len: payload length, 1 .. GW_JOURNAL_MAX_RECORD. Zero is not a valid
 *     length, so a zero-filled region never parses as records.
 *   - crc: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, init and final
 *     xor 0xFFFFFFFF) over the 4 length bytes followed by the payload bytes, so
 *     a damaged length is caught as surely as a damaged payload.
 *   - payload: opaque to the journal (the caller's encoding of one gift).
 *   Records follow each other with no padding and no index; the file is only
 *   ever appended to, except that a damaged tail is cut at open.
 *
 * Recovery at open. The file is scanned from the start; the valid prefix is
 * every record up to the first one that is incomplete, has an impossible
 * length, or fails its CRC. If the file ends there, nothing is wrong. Else:
 *   - torn / corrupt tail: when *no* valid-looking record (a plausible length
 *     that fits in the file and whose CRC checks) starts at any later byte
 *     offset, the damage is an interrupted append (a crash between write and
 *     fsync, whose records were never acknowledged). The file is truncated to
 *     the end of the valid prefix (ftruncate + fsync) and a warning is logged
 *     with the offset and byte count cut.
 *   - damage before the tail: when a valid-looking record is found later, a
 *     record in the middle is damaged and acknowledged gifts follow it; cutting
 *     would lose them. Open refuses, names both offsets, and does not modify the
 *     file: an operator has to look at it.
 *   The forward search costs a CRC only at offsets whose 4 bytes form a
 *   plausible length that fits, and stops at the first hit; a random false hit
 *   needs a 32-bit CRC match. Known limit: if a crash persists the pages of an
 *   unacknowledged batch out of order (a hole, then a later whole record), the
 *   rule cannot tell that from mid-file damage and open refuses; nothing
 *   acknowledged is lost either way.
 *   Replay happens only after the whole file has been validated, so a refused
 *   open has called no replay callback; truncation happens only after replay
 *   succeeded, so an aborted replay leaves the file as it was.
 *
 * Concurrency protocol.
 *   Threads: any number of *appenders* (any thread, including a done callback),
 *   one *writer* thread owned by the journal, and one *owner* thread that
 *   opens and closes the journal.
 *   Shared state, all under `lock` (a mutex): the *pending batch* (a byte
 *   buffer of framed records plus the array of their done callbacks, in append
 *   order), the failed status, and the stop flag. `wake` (a condition
 *   variable) is signalled when the pending batch becomes non-empty or stop is
 *   requested; the writer is its only waiter. Nobody spins.
 *     1. An appender computes the record's CRC without the lock, then under the
 *        lock refuses (failed, stopping, too large, backlog full), or copies
 *        the framed record to the end of the pending batch and its callback to
 *        the end of the callback array, signals `wake` if the batch was empty,
 *        and returns 0. File order is therefore lock-acquisition order: a
 *        record whose append returned before another append began is earlier.
 *     2. The writer, under the lock, waits until the pending batch is non-empty
 *        (or stop is set and nothing is pending: it exits), then *swaps* the
 *        pending batch with its own empty one (no copy, buffers are reused) and
 *        drops the lock. New appends now fill the next batch: that is the group
 *        commit, whatever arrives while the writer is in write/fdatasync is
 *        committed by the following fdatasync.
 *     3. Without the lock the writer write()s the batch (retrying short writes
 *        and EINTR), calls fdatasync() once, and on success adds the batch to
 *        the record count. On failure it first marks the journal failed under
 *        the lock, so that no append can succeed once any done callback has
 *        seen the failure.
 *     4. Still without the lock it calls every done(arg, status) of the batch in
 *        append order on the writer thread: status 0 means durable; a negative
 *        errno means the gift must not be acknowledged (answer 503).
 *   Group delay (gw_journal_set_group_delay, default 0 = none). Under load an
 *   fdatasync costs about as much CPU whether it carries one record or fifty,
 *   so in step 2, having found the batch non-empty, the writer lets it fill
 *   for `delay` more, but only when the previous batch held more than one
 *   record: a lone gift on a quiet gateway is written at once. It waits on
 *   `wake` with a deadline; appends do not signal a non-empty batch, so only
 *   stop cuts the wait short.
 *   Once failed, the journal stays failed: later batches already accepted are
 *   not written, their callbacks get the same negative status, and appends
 *   return -1. A record reported as failed may still be in the file (the write
 *   may have reached the disk even though fdatasync reported an error) and be
 *   replayed at the next start; payloads should carry their own id so a
 *   client's retry of a 503'd gift is recognised.
 *   Counters (records, syncs, failed) are atomics readable from any thread.
 *
 * Lifetime. gw_journal_open() and gw_journal_close() are called by the owner;
 * close flushes everything pending (calling its callbacks), stops and joins
 * the writer. An append that races with close is either flushed by it or gets
 * -1 (ESHUTDOWN); the owner must make sure no thread can call append once
 * close may have returned, since the journal is freed. Callbacks run on the
 * writer thread and must not call gw_journal_close() (it would join itself);
 * they may append. They should be quick: the next batch waits for them.
 *
 * The file is locked with flock(LOCK_EX | LOCK_NB) while open, so a second
 * gateway (or a second open in this one) on the same journal is refused rather
 * than interleaving its appends.
 */
#ifndef GW_JOURNAL_H
#define GW_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The 8 bytes every journal starts with (no terminating NUL in the file). */
#define GW_JOURNAL_MAGIC     "LGJRNL01"
#define GW_JOURNAL_MAGIC_LEN 8
/* Bytes before each payload: u32 length + u32 CRC-32C. */
#define GW_JOURNAL_HDR_LEN 8
/* Largest payload gw_journal_append accepts and open considers plausible. */
#define GW_JOURNAL_MAX_RECORD (64u * 1024u)

struct gw_journal;

/*
 * Replay callback: called by gw_journal_open, on the calling thread, once per
 * valid record in file order. `rec` points into a read-only mapping of the file
 * that is valid only during the call: copy what you keep. Return 0 to go on;
 * any other value aborts the open (the value is put in the error message).
 */
typedef int (*gw_journal_replay_fn)(void *arg, const void *rec, size_t len);

/*
 * Done callback: called on the writer thread exactly once per accepted append,
 * in append order, after the record is durable (status 0) or when it cannot be
 * made durable (status = -errno, e.g. -EIO, -ENOSPC). No journal lock is held.
 */
typedef void (*gw_journal_done_fn)(void *arg, int status);

/*
 * Open the journal at `path`, creating it if missing: the new file gets the
 * magic and is fsync'd, then put in place with rename() and its directory is
 * fsync'd, so a crash never leaves a half-created journal. An existing file is
 * validated, replayed through `replay` (may be NULL), and a torn tail is cut
 * (see "Recovery at open" above). Then the writer thread is started.
 * Owner thread; blocks on disk I/O. Copies `path`. Returns the journal (caller
 * releases it with gw_journal_close), or NULL with a message in err (err may be
 * NULL; errlen includes the NUL) when the file cannot be created or opened, is
 * locked by another open, has a bad magic, is damaged before its tail, or
 * replay returned non-zero; a refused file is left unmodified.
 */
struct gw_journal *gw_journal_open(const char *path, gw_journal_replay_fn replay, void *arg,
                                   char *err, size_t errlen);

/*
 * Queue one record for the next group commit. Any thread. Copies the record
 * (the caller may reuse `rec` at once) and returns 0 without waiting for the
 * disk; done(arg, status) is called later on the writer thread (see the
 * protocol above). Returns -1 and does not call done when the record cannot be
 * accepted; errno says why: EINVAL (len 0 or done NULL), EMSGSIZE (len >
 * GW_JOURNAL_MAX_RECORD), EAGAIN (more than GW_JOURNAL_MAX_PENDING bytes are
 * already waiting for the disk), ENOMEM, ESHUTDOWN (close has begun), or the
 * errno of the write/fsync failure that made the journal failed.
 */
int gw_journal_append(struct gw_journal *j, const void *rec, size_t len, gw_journal_done_fn done,
                      void *arg);

/* Bytes of framed records that may wait for the writer before appends get EAGAIN. */
#define GW_JOURNAL_MAX_PENDING (16u * 1024u * 1024u)

/*
 * Let a batch collect appends for up to usec microseconds before it is
 * written, when the previous batch held more than one record (see "Group
 * delay" above); 0 turns it off. Any thread; applies from the next batch.
 */
void gw_journal_set_group_delay(struct gw_journal *j, unsigned usec);

/* True once a write or fdatasync has failed; never becomes false again. Any thread. */
bool gw_journal_failed(const struct gw_journal *j);

/*
 * Records in the file known to be durable: those replayed at open plus those
 * committed since (counted before their done callbacks run). Any thread.
 */
uint64_t gw_journal_records(const struct gw_journal *j);

/* fdatasync calls the writer has made so far (failed ones included). Any thread. */
uint64_t gw_journal_syncs(const struct gw_journal *j);

/*
 * Flush what is pending (its done callbacks run before this returns), stop and
 * join the writer thread, close the file, free the journal. Owner thread; not
 * from a done callback. NULL is ignored.
 */
void gw_journal_close(struct gw_journal *j);

/*
 * CRC-32C (Castagnoli) of buf, continuing from `crc` (pass 0 to start; pass a
 * previous result to continue over concatenated data). Software slice-by-8.
 * Any thread. Exposed for tests and tools that inspect journals.
 */
uint32_t gw_journal_crc32c(uint32_t crc, const void *buf, size_t len);

/*
 * FOR TESTS ONLY: make the writer's next fdatasync report failure (EIO) after
 * the batch has been written, so the failed-fsync path can be tested without a
 * broken disk. Any thread. Never call it in the gateway.
 */
void gw_journal_fail_next_sync_for_test(struct gw_journal *j);

#endif
