/*
 * The gift service: everything between a signed gift request and its
 * receipt. Owns the server key, the viewer keys, the catalog, the ledger,
 * the journal and the leaderboards.
 *
 * A send is checked in this order; the request's shape is checked by the
 * caller's thread, everything after it by a checker thread (below):
 *   request shape, count range included (400) -> uid has a key (403
 *   unknown_uid) -> signature (401 bad_signature) -> ts within max_skew of
 *   server time (401 stale) -> gift in the catalog (400 bad_gift) -> ledger:
 *   an accepted txn with the same content answers 200 with its original
 *   receipt; other content 409 conflict; the same txn still being journaled
 *   409 in_progress; a new txn with a seen nonce 409 replay.
 * A new gift gets the room's next gift seq, its receipt is signed, and the
 * whole record (receipt included, so a retry after a restart gets the same
 * bytes) is appended to the journal. When the group commit has made it
 * durable, on the journal's writer thread: the ledger keeps the receipt, the
 * gift enters the room's ring as a "gift" message, the leaderboard consumer
 * is told, and the caller's done callback gets the receipt. A failed fsync
 * answers 503 and stops all later gifts (503 journal_failed).
 *
 * Threads: open/close on the main thread (before workers start / after they
 * stop). gw_gifts_send and the read-only calls from any thread. A send only
 * queues the gift; `threads` checker threads take gifts from that queue and
 * do the rest up to the journal (the signature check and the receipt
 * signature are most of a gift's CPU), so every core takes a share whichever
 * worker read the gift. done callbacks run on a checker thread (a refusal, or
 * the original receipt of a retry) or on the journal writer thread; a
 * leaderboard thread applies gifts to the boards and pushes "rank" messages
 * at most once per second.
 */
#ifndef GW_GIFTS_H
#define GW_GIFTS_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/buf.h"
#include "gateway/error.h"

struct gw_gifts;
struct gw_rooms;
struct gw_room;
struct gw_catalog;
struct gw_gift;
struct json_object;

struct gw_gifts_conf {
	const char *data_dir;     /* journal, keys.log, server.key live here */
	const char *catalog_file; /* "" or NULL: the built-in catalog */
	int64_t max_skew_ms;      /* |ts - server time| allowed */
	int64_t commit_delay_us;  /* journal group delay (gw_journal_set_group_delay) */
	int64_t threads;          /* checker threads; 0 = one per online core */
	int64_t queue_max;        /* gifts waiting for a checker before sends are refused (busy) */
};

struct gw_gifts *gw_gifts_open(const struct gw_gifts_conf *conf, struct gw_rooms *rooms,
			       char *err, size_t errlen);
void gw_gifts_close(struct gw_gifts *gs);

/*
 * Called exactly once per send that returned 0, on a checker thread or the
 * journal's thread: status 0 with the receipt bytes (a new gift's, or the
 * original receipt when the txn was accepted before), or -1 with err (any
 * refusal after the request's shape: 401, 403, 409, 400 bad_gift, 503).
 */
typedef void (*gw_gifts_done_fn)(void *arg, int status, const char *receipt, size_t len,
				 const struct gw_err *err);

/*
 * Send the gift in obj into room (the caller holds a reference to it; the
 * service takes its own). Returns 0: queued, done will be called; -1: refused
 * now, err set (the request's shape: 400; more than queue_max gifts waiting:
 * 503 busy; out of memory), done will not be called.
 */
int gw_gifts_send(struct gw_gifts *gs, struct gw_room *room, struct json_object *obj,
		  gw_gifts_done_fn done, void *arg, struct gw_err *err);
/* The same for a request already parsed and validated (gw_gift_from_json, gw_gift_parse_op). */
int gw_gifts_send_gift(struct gw_gifts *gs, struct gw_room *room, const struct gw_gift *g,
		       gw_gifts_done_fn done, void *arg, struct gw_err *err);

/* Register uid's key from a body {"pk":"<base64 of 32 bytes>"}: 0, or -1 with err. */
int gw_gifts_put_key(struct gw_gifts *gs, const char *uid, size_t uid_len, const char *body,
		     size_t len, struct gw_err *err);
/* {"room":"…","top":[…]} with at most n leaders. 0, or -1 on OOM. */
int gw_gifts_leaderboard(struct gw_gifts *gs, const char *room, size_t room_len, size_t n,
			 struct gw_buf *out);
const struct gw_catalog *gw_gifts_catalog(const struct gw_gifts *gs);
/* {"pk":"<base64>"} of the server key (NUL-terminated, static for the service's life). */
const char *gw_gifts_server_key_json(const struct gw_gifts *gs);

#endif
