/*
 * The gift service: everything between a signed gift request and its
 * receipt. Owns the server key, the viewer keys, the catalog, the ledger,
 * the journal and the leaderboards.
 *
 * A send is checked in this order, each failure answered at once:
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
 * stop). gw_gifts_send and the read-only calls from any thread. done
 * callbacks run on the journal writer thread; a leaderboard thread applies
 * gifts to the boards and pushes "rank" messages at most once per second.
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
struct json_object;

struct gw_gifts_conf {
	const char *data_dir;     /* journal, keys.log, server.key live here */
	const char *catalog_file; /* "" or NULL: the built-in catalog */
	int64_t max_skew_ms;      /* |ts - server time| allowed */
};

struct gw_gifts *gw_gifts_open(const struct gw_gifts_conf *conf, struct gw_rooms *rooms,
			       char *err, size_t errlen);
void gw_gifts_close(struct gw_gifts *gs);

/*
 * Called exactly once per send that returned 0, on the journal's thread:
 * status 0 with the receipt bytes, or -1 with err (503).
 */
typedef void (*gw_gifts_done_fn)(void *arg, int status, const char *receipt, size_t len,
				 const struct gw_err *err);

/*
 * Send the gift in obj into room (the caller holds a reference to it).
 * Returns 0: queued, done will be called; 1: answered now with status 200
 * and the original receipt appended to out (a retry); -1: refused, err set.
 */
int gw_gifts_send(struct gw_gifts *gs, struct gw_room *room, struct json_object *obj,
		  gw_gifts_done_fn done, void *arg, struct gw_buf *out, struct gw_err *err);

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
