/*
 * Transport layer internals, shared by server.c (workers and the lws
 * callback), http.c (requests and responses), poll.c (short/long-poll),
 * ws.c (WebSocket) and shared.c (batches shared by readers at one cursor).
 * Nothing here is visible outside transport/.
 *
 * Threads: every struct tp_worker and everything hanging off it (its lws
 * context, event loop, scratch buffers, connections) belongs to that worker's
 * thread. Other threads only call lws_cancel_service() on its context (the
 * room waker) or set `stopping` and then cancel.
 */
#ifndef TP_INTERNAL_H
#define TP_INTERNAL_H

#include <ev.h>
#include <libwebsockets.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "gateway/batch.h"
#include "gateway/buf.h"
#include "gateway/clients.h"
#include "gateway/config.h"
#include "gateway/error.h"
#include "gateway/room.h"

struct json_object;

struct gw_ingest;
struct gw_gifts;
struct tp_gzip;
struct tp_server;
struct tp_conn;

/*
 * An answer computed off the worker (a gift's receipt, made on the journal's
 * thread) on its way back to the connection that asked. The producing thread
 * fills it and pushes it onto the worker's `answers` stack (CAS, release);
 * the worker takes the whole stack (exchange, acquire) in on_cancel. `conn`
 * and `cnext` are the worker's: cleanup of a closing connection sets conn to
 * NULL, and the answer is then dropped when it arrives.
 */
struct tp_answer {
	struct tp_answer *next;  /* on the worker's stack */
	struct tp_answer *cnext; /* on the connection's list of answers it waits for */
	struct tp_worker *wk;
	struct tp_conn *conn;
	int status;              /* HTTP status */
	struct gw_err err;       /* when status is not 2xx */
	struct gw_buf body;      /* the receipt */
	char ws_id[72];          /* WebSocket: the request's id, as JSON; "" for HTTP */
	bool arrived;            /* worker-owned: in the worker's hands (posted back, or local) */
};

/* Bytes kept free in front of a response body for its HTTP headers. */
#define TP_HDR_ROOM 1024

/*
 * h1.c: the longest short-poll request (line and headers) the fast path
 * reads; a longer one goes to lws, whose own limits then apply.
 */
#define TP_H1_MAX 4096

struct tp_h1;
/* h1.c: one of a worker's two timeout lists (see h1.c). */
struct tp_h1_list {
	struct tp_h1 *head, *tail;
};

/*
 * shared.c: a plain batch built once and handed to every reader at the same
 * (room, cursor) while the room's ring head has not moved. Owned by one
 * worker; see shared.c for the rules.
 */
struct tp_shared_batch {
	const struct gw_room *room; /* NULL: empty; compared, never followed */
	struct gw_pos from;         /* the cursor it was built for */
	uint64_t head;              /* the room's ring head, read before building */
	uint64_t last;              /* the cursor it leaves its reader at */
	int64_t built_ms;           /* monotonic */
	struct gw_batch info;
	struct gw_buf body;         /* headroom LWS_PRE + TP_HDR_ROOM (lws_write, tp_http_send) */
	struct gw_buf gz;           /* poll.c: body gzipped, when gz_state > 0 */
	int gz_state;               /* poll.c: 0 not tried yet, 1 smaller, -1 not worth it */
};

struct tp_worker {
	struct tp_server *srv;
	unsigned id; /* 0..workers-1; metrics slot id + 1 */
	pthread_t thread;
	struct ev_loop *loop;
	struct lws_context *ctx;
	struct lws_vhost *vh;
	int lfd;
	ev_io accept_w;
	ev_timer reap_w;
	ev_timer stop_w;
	ev_timer tick_w; /* see LWS_TIMER_TICK_S in server.c */
	ev_timer flush_w; /* flush_interval_ms: rooms are dispatched when it fires */
	_Atomic int stopping;
	bool stop_started;
	struct gw_buf out;     /* response / frame scratch, headroom LWS_PRE + TP_HDR_ROOM */
	struct gw_buf zout;    /* gzip output, same headroom */
	struct tp_gzip *gzip;
	/*
	 * ws.c: open WebSockets (shutdown, the ping sweep), newest first, and
	 * how many. Worker thread only; tp_ws_closed unlinks a connection
	 * before lws frees it.
	 */
	struct tp_conn *ws_conns;
	unsigned ws_count;
	/*
	 * ws.c: the ping sweep. lws 4.1.6 would give each WebSocket a validity
	 * timer in its sorted timer list, and every timeout set while reading a
	 * request walks that list (13.8 % of the worker at 10,000 subscribers,
	 * docs/benchmarks.md). Instead ping_w fires every TP_PING_SLICE_S and
	 * looks at the next 1/TP_PING_SLICES of ws_conns from ping_next, so each
	 * connection is seen about once a second and a burst of pings is spread
	 * over the second. ping_tick counts the slices; a connection stamps it
	 * when anything arrives. Worker thread only; tp_ws_closed moves
	 * ping_next past a connection before unlinking it.
	 */
	ev_timer ping_w;
	struct tp_conn *ping_next;
	uint32_t ping_tick;
	_Atomic(struct tp_answer *) answers; /* see struct tp_answer */
	/* ws.c: the last plain batch built for a WebSocket (shared.c) */
	struct tp_shared_batch ws_shared;
	/*
	 * ws.c: WebSockets notified but not written yet (flush_chunk). Worker
	 * thread only. A loop iteration writes at most flush_chunk subscribers;
	 * the rest wait here, oldest first, and the next iteration (run_w, after
	 * the loop has polled and read incoming requests) continues, so a
	 * publisher's POST is read during a round, and a subscriber still queued
	 * sends what it published when its turn comes.
	 * Ownership: the queue holds no reference. A connection is on it only
	 * while it is an open WebSocket (state TP_WS, subscribed, so its room is
	 * held), and tp_ws_closed unlinks it before lws frees it, so no queued
	 * pointer outlives its connection (also at shutdown: lws_context_destroy
	 * closes every connection before the loop is destroyed). A connection is
	 * on it at most once (wq_queued): notified again while queued it keeps
	 * its place, and its write takes everything after its cursor, so a round
	 * neither starves nor reorders anyone. While it is not empty, dispatches
	 * wait (owed) and run when queue_run finds it empty, so every round is
	 * written out before the next one is queued; the watchers stop then too.
	 */
	struct tp_ws_queue {
		struct tp_conn *head, *tail;
		ev_check run_w; /* writes the next chunk after each poll */
		ev_idle spin_w; /* active while queued: the poll does not block */
		unsigned iter;  /* the ev_iteration() that `spent` counts */
		int64_t spent;  /* subscribers written in that iteration */
		bool owed;      /* a dispatch waits for the queue to empty (tp_ws_dispatch) */
	} ws_queue;
	/*
	 * http.c: keep-alive connections waiting for their next request, oldest
	 * first. lws 4.1.6 would time each one with a timer in its sorted list
	 * (an O(connections) insert per answer, docs/benchmarks.md); instead a
	 * connection is appended here with the (monotonic, so ordered) time its
	 * transaction completed, and the tick closes those idle past
	 * keepalive_timeout from the head. Worker thread only; a connection is
	 * unlinked when its next request begins and before lws frees its session
	 * data (tp_conn_cleanup), so no pointer here outlives it.
	 */
	struct tp_conn *ka_head, *ka_tail;
	struct lws *ka_wsi; /* tp_http_send: the connection completing its transaction */
	bool ka_bound;      /* ...and lws bound it fresh session data (keep-alive) */
	/*
	 * The list's suffix from ka_kick on: linked since ka_kick_w last ran,
	 * their POLLOUT not yet confirmed to lws (http.c, ka_kick_cb).
	 */
	struct tp_conn *ka_kick;
	ev_prepare ka_kick_w;
	/* poll.c: recent plain poll bodies, shared by polls at the same cursor */
	struct tp_shared_batch *poll_cache; /* poll_cache_n entries (shared.c) */
	unsigned poll_cache_n;
	/* h1.c: the fast path's connections by timeout, and its read buffer */
	struct tp_h1_list h1_busy, h1_idle;
	char h1_rx[TP_H1_MAX];
};

struct tp_server {
	const struct gw_config *cfg;
	struct gw_rooms *rooms;
	struct gw_ingest *ingest;
	struct gw_gifts *gifts;
	struct gw_clients *clients; /* adaptive transport; owned by the server */
	const char *admin_token; /* "" disables key registration */
	unsigned nworkers;
	struct tp_worker *workers;
	_Atomic int64_t conns;
	struct lws_protocols protocols[2];
};

enum tp_state { TP_IDLE, TP_POST, TP_LONGPOLL, TP_ANSWER, TP_WS };
enum tp_post { TP_POST_DANMAKU, TP_POST_GIFT, TP_PUT_KEY };

struct tp_reply;

/*
 * lws per-session data: zeroed by lws for each connection, kept across
 * keep-alive requests. Every open WebSocket holds one (see "Memory per idle
 * WebSocket" in docs/benchmarks.md), so small members sit in what would be
 * alignment holes: keep it that way when adding one.
 */
struct tp_conn {
	struct lws *wsi;
	struct tp_worker *wk;
	enum tp_state state;
	struct gw_room *room; /* reference held while set */
	struct gw_sub sub;
	struct gw_pos pos;
	/* HTTP */
	struct gw_buf body;
	size_t body_len; /* Content-Length of the POST being read */
	enum tp_post post;
	char key_uid[65]; /* PUT /v1/keys/{uid} */
	struct tp_answer *answers; /* answers this connection waits for (cnext list) */
	bool gzip;
	bool timed_out;
	bool upgrading; /* answering inside CONFIRM_UPGRADE: lws completes the transaction */
	bool ka_linked; /* on wk's keep-alive idle list (below) */
	/* WebSocket */
	struct gw_buf rx;
	struct tp_reply *replies, **replies_tail;
	unsigned nreplies;
	bool rx_paused;   /* reading stopped until replies drain (ws.c) */
	bool peer_closed; /* the client sent a close frame */
	struct tp_conn *ws_prev, *ws_next;
	struct tp_conn *wq_prev, *wq_next; /* on wk->ws_queue while wq_queued */
	bool wq_queued;
	bool closing;
	bool ping_due;      /* a ping waits for the next writable callback */
	uint32_t rx_tick;   /* wk->ping_tick when something last arrived */
	uint32_t ping_tick; /* wk->ping_tick when the unanswered ping went; 0: none */
	/* Adaptive transport (adapt.c): the request's or WebSocket's client id, if any */
	char client[65];
	unsigned char client_len;
	bool lp_reported;      /* a long-poll of client is held: report how it ends */
	bool peer_gone;        /* the peer closed or reset while a long-poll was held */
	ev_io lp_watch;        /* on the socket while a long-poll is held (poll.c) */
	struct gw_advice *advice; /* to send on this WebSocket with the next batch; owned */
	/* On wk's keep-alive idle list (http.c) while ka_linked; ka_ms: monotonic */
	struct tp_conn *ka_prev, *ka_next;
	int64_t ka_ms;
};

/* server.c */
struct tp_worker *tp_worker_of(struct lws *wsi);
/* Any thread: hand a filled answer to its worker and wake it. */
void tp_answer_post(struct tp_answer *a);
/* Worker: a new answer waiting for c (c keeps it on its list until delivered). */
struct tp_answer *tp_answer_new(struct tp_conn *c);
void tp_answer_free(struct tp_answer *a);

/* http.c: requests */
int tp_http_request(struct tp_conn *c, const char *path);
int tp_http_body(struct tp_conn *c, const void *in, size_t len);
int tp_http_body_done(struct tp_conn *c);
/* Drop whatever request state c holds (room, subscription, body). Idempotent. */
void tp_conn_release(struct tp_conn *c);
/* Before lws frees c: release everything, WebSocket state included. Idempotent. */
void tp_conn_cleanup(struct tp_conn *c);

/*
 * http.c: keep-alive idle timeout (worker thread). tp_http_bound: lws bound
 * fresh session data c to wsi (HTTP_BIND_PROTOCOL). tp_http_reap_idle: close
 * the connections idle past keepalive_timeout at now_ms (monotonic).
 */
void tp_http_bound(struct tp_conn *c, struct lws *wsi);
void tp_http_reap_idle(struct tp_worker *wk, int64_t now_ms);
/* Worker set-up (before its loop runs): the keep-alive watcher. */
void tp_http_worker_init(struct tp_worker *wk);

/* http.c: responses (return what the lws callback must return) */
struct tp_hdr {
	const char *name; /* with the trailing ':' as lws wants, e.g. "retry-after:" */
	const char *value;
};
/*
 * Send status + body. body must live in a gw_buf made with tp_body_buf() (headroom
 * for headers) or be NULL/len 0; small bodies may be sent with tp_http_send_copy.
 */
int tp_http_send(struct tp_conn *c, int status, const char *ctype, struct gw_buf *body,
		 const struct tp_hdr *hdrs, size_t nhdrs);
int tp_http_send_copy(struct tp_conn *c, int status, const char *ctype, const char *body,
		      size_t len, const struct tp_hdr *hdrs, size_t nhdrs);
/*
 * Answer the current request from the writable callback rather than now:
 * lws must not see a transaction completed from inside its body callbacks
 * (pipelined requests behind it would be parsed wrongly). status < 400 sends
 * body (JSON), else err. 0, or -1 on OOM.
 */
int tp_http_defer(struct tp_conn *c, int status, const char *body, size_t len,
		  const struct gw_err *err);
/* HTTP_WRITEABLE in state TP_ANSWER: send the answer that arrived. */
int tp_answer_writeable(struct tp_conn *c);
/* {"error":code,"detail":…} with err's status (and Retry-After when set). */
int tp_http_error(struct tp_conn *c, const struct gw_err *err);
/* The same with extra headers (at most 3). */
int tp_http_error_hdrs(struct tp_conn *c, const struct gw_err *err, const struct tp_hdr *hdrs,
		       size_t nhdrs);
/* Parse /v1/rooms/{room}/{action}: 1 matched (room validity unchecked), 0 not this shape. */
int tp_route_room(const char *path, const char **room, size_t *room_len, const char **action);
/* Query parameter by name: 1 found (NUL-terminated in buf), 0 absent, -1 too long. */
int tp_query(struct tp_conn *c, const char *name, char *buf, size_t buflen);
/* Does the request's Accept-Encoding allow gzip? */
bool tp_http_gzip_ok(struct tp_conn *c);
/*
 * GET /v1/rooms/{room}/poll on a released connection whose room name the
 * caller checked (gw_name_valid): acquire the room, answer.
 */
int tp_http_poll(struct tp_conn *c, const char *room, size_t room_len);
/* Resolve `since` for room into c->pos. */
int tp_resolve_since(struct tp_conn *c, struct gw_err *err);

/* adapt.c */
/* The request's client=ID into c->client (absent: client_len 0); -1 with err when malformed. */
int tp_client_id(struct tp_conn *c, struct gw_err *err);
/* GET /v1/rooms/{room}/connect with c->room acquired. */
int tp_adapt_connect(struct tp_conn *c);
/* 429 too_fast with Retry-After and the advice in the body. */
int tp_adapt_too_fast(struct tp_conn *c, const struct gw_advice *adv, int64_t retry_ms);
/*
 * Build c's next batch for transport t into out: its client's danmaku budget
 * applied, and adv appended when adv->send. 0, or -1 on OOM.
 */
int tp_adapt_batch(struct tp_conn *c, enum gw_transport t, const struct gw_advice *adv,
		   struct gw_buf *out, struct gw_batch *info);

/* gifts.c */
int tp_gift_catalog(struct tp_conn *c);
int tp_gift_server_key(struct tp_conn *c);
int tp_gift_leaderboard(struct tp_conn *c, const char *room, size_t room_len);
/* 0 when the request carries the admin token, else -1 with err (401/403). */
int tp_gift_check_admin(struct tp_conn *c, struct gw_err *err);
int tp_gift_post(struct tp_conn *c);
int tp_gift_put_key(struct tp_conn *c);
void tp_gift_delivered(struct tp_answer *a);
int tp_ws_gift(struct tp_conn *c, struct json_object *obj, const char *id);
/*
 * A gift op in its plain form (gw_gift_parse_op) is sent without json-c:
 * true with *rc what the RECEIVE callback returns; false: not that form, parse
 * it the usual way.
 */
bool tp_ws_gift_plain(struct tp_conn *c, const char *msg, size_t len, int *rc);

/* shared.c (worker thread; set: n entries) */
void tp_shared_init(struct tp_shared_batch *set, unsigned n);
void tp_shared_fini(struct tp_shared_batch *set, unsigned n);
/*
 * The plain batch for c's cursor from set, built into an entry on a miss;
 * advances c->pos as gw_batch_build does. *out NULL: not shareable (a gap
 * owed to c, or n 0): build it yourself. 0, or -1 on OOM.
 */
int tp_shared_batch(struct tp_conn *c, struct tp_shared_batch *set, unsigned n,
		    struct tp_shared_batch **out);

/* poll.c */
/* Worker set-up / tear-down (worker thread or before it runs): the poll body cache. 0 or -1. */
int tp_poll_worker_init(struct tp_worker *wk);
void tp_poll_worker_fini(struct tp_worker *wk);
int tp_poll_request(struct tp_conn *c);
int tp_poll_writeable(struct tp_conn *c);
int tp_poll_timer(struct tp_conn *c);

/* ws.c */
int tp_ws_confirm(struct tp_conn *c);
int tp_ws_filter(struct tp_conn *c);
int tp_ws_established(struct tp_conn *c);
int tp_ws_receive(struct tp_conn *c, const void *in, size_t len);
int tp_ws_writeable(struct tp_conn *c);
/* {"op":"error","id":<id>,"error":…,"detail":…} into b (reset first). 0, or -1 on OOM. */
int tp_ws_error_frame(struct gw_buf *b, const char *id, const struct gw_err *err);
/* Queue a reply frame (copied) for c; 0, or -1 when the connection is being closed. */
int tp_ws_reply(struct tp_conn *c, const struct gw_buf *frame);
void tp_ws_closed(struct tp_conn *c);
/* LWS_CALLBACK_RECEIVE_PONG: the peer is alive. */
void tp_ws_pong(struct tp_conn *c);
/* Begin a 1001 close of every WebSocket on this worker. */
void tp_ws_shutdown(struct tp_worker *wk);
/* Worker set-up (before its loop runs): the write queue's watchers. */
void tp_ws_worker_init(struct tp_worker *wk);
/* Worker: gw_rooms_dispatch now, or once the write queue is empty (ws.c). */
void tp_ws_dispatch(struct tp_worker *wk);

/*
 * h1.c: the short-poll fast path (worker thread). A connection accepted
 * with tp_h1_accept answers its short-polls here and is handed to lws at its
 * first other request. A struct tp_conn with wsi NULL belongs to it.
 */
struct tp_h1_req {
	const char *room, *query, *accept_encoding; /* into the request bytes; NULL: absent */
	size_t room_len, query_len, ae_len;
	size_t len;      /* bytes of the request, line and headers */
	bool http10;
	bool keep_alive; /* the answer may leave the connection open */
};
enum { TP_H1_MORE, TP_H1_OURS, TP_H1_LWS };
/*
 * Pure: is buf[0..len) the start of a short-poll this file answers
 * (TP_H1_OURS, *r filled), a request for lws (TP_H1_LWS: anything else,
 * decided as early as the bytes allow), or too short to tell (TP_H1_MORE)?
 */
int tp_h1_parse(const char *buf, size_t len, struct tp_h1_req *r);
/* Pure: tp_query on a raw query string q[0..qlen) (no percent-decoding). */
int tp_h1_query_get(const char *q, size_t qlen, const char *name, char *buf, size_t buflen);
/* Takes ownership of fd (non-blocking, accepted). */
void tp_h1_accept(struct tp_worker *wk, int fd);
/* Close connections idle past keepalive_timeout or busy past io_timeout at now_ms. */
void tp_h1_reap(struct tp_worker *wk, int64_t now_ms);
/* Close every fast-path connection (stop, and before the loop is destroyed). */
void tp_h1_close_all(struct tp_worker *wk);
/* http.c's lws touch points for a connection with wsi NULL. */
int tp_h1_send(struct tp_conn *c, int status, const char *ctype, struct gw_buf *body,
	       const struct tp_hdr *hdrs, size_t nhdrs);
int tp_h1_query(struct tp_conn *c, const char *name, char *buf, size_t buflen);
bool tp_h1_gzip_ok(struct tp_conn *c);

/* gzip.c */
struct tp_gzip *tp_gzip_new(int level);
void tp_gzip_free(struct tp_gzip *gz);
/* gzip src[0..len) into out (appended). 0 or -1. */
int tp_gzip(struct tp_gzip *gz, const char *src, size_t len, struct gw_buf *out);
/* Does this Accept-Encoding value allow gzip? */
bool tp_gzip_accepted(const char *accept_encoding);

/* static.c: the web player, the files of web/ embedded at build time (web/embed.cmake) */
struct tp_web_file {
	const char *name; /* file name in web/, e.g. "player.js" */
	const unsigned char *data;
	size_t len;
	const char *etag; /* quoted, from the file's SHA-256 */
};
/* Generated into the build directory; read-only, so any thread. */
extern const struct tp_web_file tp_web_files[];
extern const size_t tp_web_nfiles;
/* Any thread: is path one of the player's files (/, /livegate.js, /player.js, /player.css)? */
bool tp_static_match(const char *path);
/* Worker: answer GET (or HEAD) of a path tp_static_match accepted; 304 on a matching ETag. */
int tp_static_serve(struct tp_conn *c, const char *path, bool head);
/* Any thread: does an If-None-Match value (a list, W/ tags, "*") name etag? */
bool tp_etag_match(const char *if_none_match, const char *etag);

#endif
