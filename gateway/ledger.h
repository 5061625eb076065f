/*
 * The gift ledger: what the gateway remembers so that sending a gift is
 * idempotent and a captured request cannot be replayed.
 *
 *  - txn index: (uid, txn) -> the gift's room, gift id and count, and the
 *    receipt bytes once it is accepted. A retry of an accepted txn with the
 *    same room, gift and count gets the byte-identical receipt back, whatever
 *    its nonce and ts; the same txn with other content is a conflict.
 *  - nonce window: (uid, nonce) seen recently. A *new* txn reusing a nonce
 *    inside the window is a replay. A nonce is kept until window_ms after the
 *    later of its signed ts and its arrival: past that, a copy of the request
 *    is refused as stale by its ts anyway, so forgetting the nonce is safe
 *    when window_ms >= the staleness limit.
 *
 * A send reserves its txn with gw_ledger_begin (atomically: two concurrent
 * sends of one txn cannot both get GW_LEDGER_NEW), journals it, then calls
 * gw_ledger_commit with the receipt, or gw_ledger_abort if journaling failed.
 * At start the journal is replayed through gw_ledger_restore.
 *
 * Threads: any thread; one mutex guards everything (each call is a few hash
 * look-ups, far below the cost of the signature check that precedes it).
 * Memory: the txn index keeps every accepted txn (the journal is its
 * durable copy; compaction is future work); nonces are bounded by the send
 * rate times the window.
 */
#ifndef GW_LEDGER_H
#define GW_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/buf.h"

struct gw_ledger;

struct gw_ledger_gift {
	const char *room;
	size_t room_len;
	const char *uid;
	size_t uid_len;
	const char *txn;
	size_t txn_len;
	const char *gift;
	size_t gift_len;
	uint32_t count;
	const char *nonce;
	size_t nonce_len;
	int64_t ts; /* the signed ts, ms since the epoch */
};

enum gw_ledger_verdict {
	GW_LEDGER_NEW,       /* reserved: journal it, then commit or abort */
	GW_LEDGER_DUPLICATE, /* accepted before with the same content: *receipt holds it */
	GW_LEDGER_PENDING,   /* the same txn is being journaled right now: retry shortly */
	GW_LEDGER_CONFLICT,  /* the txn was used with another room, gift or count */
	GW_LEDGER_REPLAY,    /* a new txn with a nonce seen inside the window */
	GW_LEDGER_NOMEM,
};

/* Caller frees with gw_ledger_free. NULL on OOM. */
struct gw_ledger *gw_ledger_new(int64_t nonce_window_ms);
void gw_ledger_free(struct gw_ledger *l);

/* Classify g at wall-clock now_ms, reserving it when NEW. On DUPLICATE, appends the receipt. */
enum gw_ledger_verdict gw_ledger_begin(struct gw_ledger *l, const struct gw_ledger_gift *g,
				       int64_t now_ms, struct gw_buf *receipt);
/* The reserved txn was journaled: remember its receipt (copied). 0, or -1 on OOM. */
int gw_ledger_commit(struct gw_ledger *l, const struct gw_ledger_gift *g, const char *receipt,
		     size_t len);
/* The reserved txn was not journaled: forget the reservation and its nonce. */
void gw_ledger_abort(struct gw_ledger *l, const struct gw_ledger_gift *g);
/* Journal replay: record an accepted gift that arrived at accepted_ms. 0, or -1 on OOM. */
int gw_ledger_restore(struct gw_ledger *l, const struct gw_ledger_gift *g, int64_t accepted_ms,
		      int64_t now_ms, const char *receipt, size_t len);

/* Counts, for tests and metrics. */
size_t gw_ledger_txns(struct gw_ledger *l);
size_t gw_ledger_nonces(struct gw_ledger *l);

#endif
