/*
 * The client library's pure parts, with no I/O and no libwebsockets: the
 * gateway URL, request paths, advice and batch parsing, exactly-once
 * accounting, the backoff schedule and a latency histogram. Split out of
 * client.c so unit tests can reach them; not part of the public API.
 *
 * Threads: no shared state; any thread may call these on its own objects.
 */
#ifndef TP_CLIENT_PROTO_H
#define TP_CLIENT_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "transport/client.h"

struct json_object;

#define TP_CLIENT_NAME_MAX   64   /* room and client id: [A-Za-z0-9_-]{1,64} */
#define TP_CLIENT_PATH_MAX   1024 /* a request path with its query */
#define TP_CLIENT_CURSOR_MAX 256  /* the longest cursor kept, with its NUL */
#define TP_CLIENT_HOST_MAX   256

/* The gateway's address: scheme, host and port, nothing else. */
struct tp_client_url {
	int tls;                       /* https or wss */
	char host[TP_CLIENT_HOST_MAX]; /* for connect(): no brackets around IPv6 */
	int port;
	char hostport[TP_CLIENT_HOST_MAX + 8]; /* for the Host header: [v6]:port */
};

/*
 * Parse http|https|ws|wss://HOST[:PORT][/] (HOST a name, IPv4 or [IPv6]).
 * 0, or -1 with a reason in err (a path, query, user info or bad port).
 */
int tp_client_url_parse(const char *url, struct tp_client_url *u, char *err, size_t errlen);

/* 1 when s matches [A-Za-z0-9_-]{1,64}, else 0. */
int tp_client_valid_name(const char *s);

/* Advice, as /connect answers it and batches or 429 bodies carry it. */
struct tp_client_advice {
	enum tp_client_transport transport;
	char ws_url[TP_CLIENT_PATH_MAX];                 /* "" when absent or not a usable path */
	char poll_url[TP_CLIENT_PATH_MAX];               /* "" likewise */
	unsigned interval_ms;                            /* 0 when absent */
	double rate_per_min, disconnects, connected_min; /* NAN when absent */
	char reason[32];                                 /* "" when absent */
};

/* From a parsed object. 0, or -1 when o is not an object or has no known transport. */
int tp_client_advice_from_json(struct json_object *o, struct tp_client_advice *a);
/* From a /connect body. 0, or -1 (not JSON, not an advice). */
int tp_client_advice_parse(const char *text, size_t len, struct tp_client_advice *a);

/*
 * An error body {"error":CODE,"detail":…,"advice":{…}}: CODE into code ("" when
 * absent, cut to cap), and 1 when it carried a readable advice (into *adv), else 0.
 */
int tp_client_error_parse(const char *text, size_t len, char *code, size_t cap,
                          struct tp_client_advice *adv);

/* /v1/rooms/{room}/connect?client={id}. 0, or -1 when it does not fit. */
int tp_client_connect_path(char *out, size_t cap, const char *room, const char *id);

/*
 * The path of the next request on transport t, with &since=CURSOR appended
 * when cursor is non-empty (percent-encoded). The advice's ws_url/poll_url is
 * used when it fits t (a poll_url with wait > 0 for long-poll, without for
 * short-poll); otherwise the path is built from room and id, long-poll with
 * wait=default_wait_s. adv and cursor may be NULL. 0, or -1 when it does not fit.
 */
int tp_client_transport_path(char *out, size_t cap, enum tp_client_transport t,
                             const struct tp_client_advice *adv, const char *room, const char *id,
                             unsigned default_wait_s, const char *cursor);

/* The `wait` query parameter of path in seconds; 0 when absent or not a number. */
unsigned tp_client_path_wait(const char *path);

/* A parsed batch (or WebSocket reply); everything points into root. */
struct tp_client_batch {
	struct json_object *root; /* owned; tp_client_batch_release frees it */
	int is_reply;             /* has "op": a WebSocket reply, nothing else is set */
	struct json_object *msgs; /* array of objects, each with integer seq >= 1 and ts */
	const char *cursor;       /* 1..TP_CLIENT_CURSOR_MAX-1 printable ASCII */
	int gap;
	uint64_t suppressed;
	int has_advice;
	struct tp_client_advice advice;
};

/*
 * Parse and validate one batch. 0 (release it afterwards), or -1 with a reason
 * in err (b holds nothing to release).
 */
int tp_client_batch_parse(const char *text, size_t len, struct tp_client_batch *b, char *err,
                          size_t errlen);
void tp_client_batch_release(struct tp_client_batch *b);
/* seq and ts of msgs[i] (validated by tp_client_batch_parse). */
void tp_client_batch_msg(const struct tp_client_batch *b, size_t i, struct json_object **m,
                         int64_t *seq, int64_t *ts);

/*
 * Exactly-once accounting. Call tp_client_acct_batch once per batch, then
 * tp_client_acct_msg for each of its messages in order.
 *   - gap:true starts afresh: the ring may be a new one whose seq restarts,
 *     and what was lost is already flagged, so the next seq is not compared;
 *   - `suppressed` is credit for holes, also holes in later batches (a batch
 *     may leave out its last messages, the hole then shows in the next one).
 */
struct tp_client_acct {
	int have_last;
	int64_t last_seq;
	uint64_t credit; /* suppressed messages not yet matched with a hole */
	uint64_t delivered, duplicates, gaps, gap_flags, suppressed;
};

void tp_client_acct_batch(struct tp_client_acct *a, int gap, uint64_t suppressed);
/* 1: deliver it; 0: a duplicate (counted). */
int tp_client_acct_msg(struct tp_client_acct *a, int64_t seq);

/* splitmix64: deterministic for a given seed. */
uint64_t tp_client_rng_next(uint64_t *state);
/*
 * Full-jitter backoff: uniform in [0, min(max_ms, base_ms * 2^attempt)].
 * attempt 0 is the first retry.
 */
unsigned tp_client_backoff_ms(unsigned base_ms, unsigned max_ms, unsigned attempt, uint64_t *rng);

/*
 * Latency histogram in bounded memory: 1 ms buckets below 1 s, 10 ms below
 * 10 s, 100 ms below 120 s, then one overflow bucket; negative values count
 * as 0 (clocks of one machine can still step).
 */
#define TP_CLIENT_HIST_BUCKETS 3001
struct tp_client_hist {
	uint64_t n;
	uint64_t b[TP_CLIENT_HIST_BUCKETS];
};

void tp_client_hist_add(struct tp_client_hist *h, int64_t ms);
/* The lower bound of the bucket holding the q-quantile (0 < q <= 1); -1 when empty. */
int64_t tp_client_hist_quantile(const struct tp_client_hist *h, double q);

#endif
