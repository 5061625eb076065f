/*
 * livegate client library: subscribe to one room and receive every message
 * exactly once, over WebSocket, long-poll or short-poll, moving between them
 * as the gateway advises (docs/protocol.md, "Adaptive transport").
 *
 * What it does, in order:
 *   1. GET /v1/rooms/{room}/connect?client=ID and start on the advised
 *      transport (pin mode skips this; a gateway without /connect answers 404
 *      and the client starts on cfg.transport);
 *   2. every request carries client=ID and, once it has one, since=CURSOR;
 *   3. a batch carrying `advice` for another transport ends the current one
 *      (a WebSocket with close code 1000, after which the next starts) and
 *      continues on the new one with the batch's cursor; a 429 too_fast adopts
 *      the advice in its body and polls again after Retry-After or the
 *      short-poll interval, whichever is longer;
 *   4. a failure (connect error, a WebSocket that ends without our close, an
 *      HTTP status other than 200/404-on-connect/429, a timeout, a body that
 *      is not a batch, a connection silent past stall_ms) reconnects after a
 *      jittered exponential backoff (full jitter: uniform in [0, min(max,
 *      base * 2^attempt)]; after an attempt that never worked, the time it
 *      took counts towards the wait) straight to the advised transport, or
 *      through /connect while it has no advice yet; the attempt count resets
 *      when a transport answers.
 *
 * Exactly-once accounting: the client remembers the last seq it delivered; a
 * message at or below it is a duplicate (counted, not delivered); a hole not
 * explained by `gap:true` or by `suppressed` counts in `gaps`.
 *
 * Threads: the client owns one libwebsockets context (default poll() loop) and
 * runs it on the thread that calls tp_client_run(); every callback is made
 * from that thread. Only tp_client_stop() may be called from another thread.
 * One client per context; several clients may run on several threads.
 *
 * lws logging is process-wide: the library leaves lws_set_log_level() to the
 * application.
 */
#ifndef TP_CLIENT_H
#define TP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

struct tp_client;

enum tp_client_transport {
	TP_CLIENT_WS = 0,
	TP_CLIENT_LONGPOLL = 1,
	TP_CLIENT_SHORTPOLL = 2,
	TP_CLIENT_TRANSPORTS = 3, /* count; also "none yet" in tp_client_stats.transport */
};

/* "ws", "longpoll", "shortpoll"; "none" for anything else. Any thread. */
const char *tp_client_transport_name(enum tp_client_transport t);
/* Inverse of tp_client_transport_name for the three transports. 0, or -1. Any thread. */
int tp_client_transport_parse(const char *name, enum tp_client_transport *t);

/* Counters since tp_client_new; all cumulative. */
struct tp_client_stats {
	uint64_t delivered;   /* messages handed to on_message */
	uint64_t duplicates;  /* messages with seq <= the last delivered one (not delivered) */
	uint64_t gaps;        /* messages missing from the seq sequence, not explained */
	uint64_t gap_flags;   /* batches with gap:true */
	uint64_t suppressed;  /* sum of the batches' `suppressed` */
	uint64_t batches;     /* batches received (WebSocket frames and poll answers) */
	uint64_t failures;    /* failed attempts: each one led to a backoff */
	uint64_t disconnects; /* working -> failed transitions (first failure after a success) */
	uint64_t too_fast;    /* 429 too_fast answers */
	uint64_t switches;    /* transport changes, total of switch_pairs */
	uint64_t switch_pairs[TP_CLIENT_TRANSPORTS][TP_CLIENT_TRANSPORTS]; /* [from][to] */
	/* Payload bytes received: HTTP bodies and WebSocket message payloads;
	 * headers, framing and TLS overhead are not counted (approximate). */
	uint64_t bytes;
	/* receive time - message ts, all messages; -1: none yet */
	int64_t lat_p50_ms, lat_p95_ms, lat_p99_ms;
	enum tp_client_transport transport; /* current; TP_CLIENT_TRANSPORTS before the first */
	int have_advice;                    /* the fields below are valid */
	enum tp_client_transport advice_transport;
	double advice_rate_per_min; /* NAN when the advice had none */
	char advice_reason[32];
};

struct tp_client_config {
	const char *url;       /* http://HOST[:PORT], https://, ws://, wss:// (no path) */
	const char *room;      /* [A-Za-z0-9_-]{1,64} */
	const char *client_id; /* [A-Za-z0-9_-]{1,64}; NULL: 16 random hex digits */
	/* A cursor to start after (one a batch gave earlier, kept by the app);
	 * NULL: start with the next message published. Printable ASCII, shorter
	 * than TP_CLIENT_CURSOR_MAX. */
	const char *since;
	int pin; /* 1: use `transport` only, never ask /connect, ignore advised paths */
	enum tp_client_transport transport; /* pinned, or the start without /connect */
	unsigned backoff_base_ms;           /* first backoff ceiling (default 500) */
	unsigned backoff_max_ms;            /* largest backoff ceiling (default 30000) */
	uint64_t seed;                      /* jitter and id RNG; 0: from the clock and pid */
	unsigned longpoll_wait_s;           /* long-poll wait when no advice gives one (25) */
	/* Short-poll interval when no advice gives one (1000). Each 429 too_fast
	 * without an advised interval doubles the pace in use: at least
	 * Retry-After, at most 60 s (or this value when larger). */
	unsigned shortpoll_interval_ms;
	/* Time allowed for a TCP/TLS connect, a WebSocket handshake, or an HTTP
	 * answer beyond the long-poll wait (default 10000). */
	unsigned io_timeout_ms;
	/* WebSocket: ping after this many seconds without a pong, hang up when
	 * none comes within io_timeout_ms more (default 30). */
	unsigned ws_ping_s;
	/* A connection that hears nothing from the gateway for about this long -
	 * no data, no acknowledgement of what it sent, no answer to a TCP
	 * keepalive probe - is dropped and the client reconnects; a connect not
	 * done within it is abandoned and tried afresh (default 4000; 0: off,
	 * then only io_timeout_ms and the kernel's own retransmission limits
	 * apply). Without it a blackout of the network (a tunnel, a lift) leaves
	 * the connection waiting for TCP's backed-off retransmissions long after
	 * the network is back. Costs a keepalive probe every ~stall_ms/2 on an
	 * idle connection (a held long-poll, a quiet room). */
	unsigned stall_ms;
	size_t max_batch_bytes;     /* largest HTTP body or WebSocket message (4 MiB) */
	unsigned stats_interval_ms; /* on_stats period; 0: never (default 0) */
	int tls_insecure;           /* https/wss: accept self-signed and mismatched certs */

	/* Callbacks, all on the client's thread; any may be NULL. */
	/* One delivered message: its JSON (re-serialised by json-c, compact,
	 * valid during the call), seq and ts. */
	void (*on_message)(void *user, const char *json, size_t len, int64_t seq, int64_t ts);
	/* The transport changed; from is TP_CLIENT_TRANSPORTS at the start.
	 * why: "connect" (advice from /connect), "advice" (in a batch or a 429),
	 * "default" (no /connect on this gateway), "pin". */
	void (*on_transport)(void *user, enum tp_client_transport from, enum tp_client_transport to,
	                     const char *why);
	void (*on_stats)(void *user, const struct tp_client_stats *st);
	/* Diagnostics, one line without newline; level 0 error, 1 info. */
	void (*on_log)(void *user, int level, const char *line);
	void *user;
};

/* Fill cfg with the defaults above (url, room NULL; transport ws). Any thread. */
void tp_client_config_init(struct tp_client_config *cfg);

/*
 * Validate cfg and create the client and its lws context. Copies every string
 * (cfg need not outlive the call). NULL with a message in err and errno set:
 * EINVAL for a bad config, ENOMEM, or EIO when lws fails. Call from the thread
 * that will call tp_client_run. Caller frees with tp_client_free.
 */
struct tp_client *tp_client_new(const struct tp_client_config *cfg, char *err, size_t errlen);

/*
 * Run until tp_client_stop() or, when duration_ms > 0, until that much time
 * has passed; then close the WebSocket with 1000 (bounded by io_timeout_ms)
 * and return 0. -1 when called a second time. The client's thread.
 */
int tp_client_run(struct tp_client *c, unsigned duration_ms);

/*
 * Ask tp_client_run to return. Any thread, any number of times, also before
 * tp_client_run starts: an atomic store and lws_cancel_service(). Call from a
 * signal handler only through a signal-waiting thread (see livegate-client).
 */
void tp_client_stop(struct tp_client *c);

/* Current counters. The client's thread (a callback), or after tp_client_run returned. */
void tp_client_stats(const struct tp_client *c, struct tp_client_stats *out);
/* The client id in use (valid until tp_client_free). Any thread. */
const char *tp_client_id(const struct tp_client *c);

/* Close everything and free. Not while tp_client_run runs. NULL is a no-op. */
void tp_client_free(struct tp_client *c);

#endif
