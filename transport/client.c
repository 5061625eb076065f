/*
 * The client's connection state machine on one libwebsockets context (see
 * client.h for the behaviour). At most one request is current (c->req): a
 * GET /connect, a poll, or a WebSocket. Every request ends exactly once, in
 * settle(), whichever lws event comes first (answer complete, close, error,
 * our deadline); settle() only decides what comes next and schedules it on
 * c->next_sul, so no connection is opened from inside another one's callback.
 * A request that was settled early (timed out, abandoned on stop) lives on,
 * ignored, until lws destroys its wsi.
 *
 * Threads: everything here runs on the thread in tp_client_run(), except
 * tp_client_stop(), which touches only c->stop_requested (atomic) and calls
 * lws_cancel_service() (lws's one thread-safe call).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <json-c/json.h>
#include <libwebsockets.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "transport/client.h"
#include "transport/client_proto.h"

#define PROTOCOL_NAME   "livegate-client"
#define HTTP_READ_CHUNK 4096
#define WS_RX_BUFFER    65536
/* lws's own response timeout only backs up our per-request deadline, which
 * knows the long-poll wait; it must not fire first. */
#define LWS_BACKSTOP_TIMEOUT_S 86400

enum req_kind { REQ_CONNECT, REQ_WS, REQ_POLL };

enum outcome {
	OUT_ANSWER,  /* HTTP: a complete answer, status and body in the request */
	OUT_FAIL,    /* reason in fail_reason */
	OUT_SWITCH,  /* WS: closed by us with 1000 to move to switch_to */
	OUT_STOPPED, /* closed or abandoned because the client stops */
};

enum step { STEP_CONNECT, STEP_TRANSPORT };

struct req {
	struct tp_client *c;
	enum req_kind kind;
	enum tp_client_transport transport;
	struct lws *wsi;
	char path[TP_CLIENT_PATH_MAX];
	int status;
	int retry_after_s; /* -1: none */
	char *body;        /* HTTP body, or the WebSocket message being assembled */
	size_t len, cap;
	int settled;     /* the outcome was handled; later events are ignored */
	int in_connect;  /* inside lws_client_connect_via_info: WSI_DESTROY must not free */
	int destroyed;   /* WSI_DESTROY came while in_connect */
	int established; /* WS handshake done */
	int connected;   /* the request is being sent: past TCP (and TLS) connect */
	int closing;     /* WS: we asked for a close with 1000 */
	enum tp_client_transport switch_to; /* when closing: the next one, or TRANSPORTS (stop) */
	int64_t started_us;
	char fail_reason[TP_CLIENT_PATH_MAX + 400]; /* may quote the path */
};

struct tp_client {
	struct tp_client_config cfg; /* strings below are our copies */
	char room[TP_CLIENT_NAME_MAX + 1];
	char id[TP_CLIENT_NAME_MAX + 1];
	struct tp_client_url url;
	struct lws_context *ctx;
	lws_retry_bo_t ws_policy;
	int ssl_flags;

	atomic_int stop_requested; /* any thread sets it; the client's thread reads it */

	/* The client's thread only from here on. */
	int ran, stopping, done, destroying;
	struct req *req; /* current request, NULL between requests */
	lws_sorted_usec_list_t next_sul, deadline_sul, stats_sul, end_sul, grace_sul;
	enum step next_step;
	enum tp_client_transport next_transport;
	const char *next_why;

	enum tp_client_transport cur;
	int have_advice;
	struct tp_client_advice advice;
	int told_no_connect;
	char cursor[TP_CLIENT_CURSOR_MAX];
	/* Short-poll pacing when no advice gives an interval: cfg's, doubled by
	 * each 429 too_fast (the gateway may pace a client it advises elsewhere). */
	unsigned sp_interval_ms;
	unsigned attempt; /* consecutive failures */
	int64_t attempt_started_us; /* when the current / last request started */
	int working;      /* a transport answered since the last failure */
	uint64_t rng;

	struct tp_client_acct acct;
	struct tp_client_hist hist;
	uint64_t batches, failures, disconnects, too_fast, switches, bytes;
	uint64_t switch_pairs[TP_CLIENT_TRANSPORTS][TP_CLIENT_TRANSPORTS];
};

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

__attribute__((format(printf, 3, 4))) static void client_log(struct tp_client *c, int level,
                                                             const char *fmt, ...)
{
	char line[TP_CLIENT_PATH_MAX + 512];
	va_list ap;

	if (!c->cfg.on_log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->cfg.on_log(c->cfg.user, level, line);
}

void tp_client_config_init(struct tp_client_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->transport = TP_CLIENT_WS;
	cfg->backoff_base_ms = 500;
	cfg->backoff_max_ms = 30000;
	cfg->longpoll_wait_s = 25;
	cfg->shortpoll_interval_ms = 1000;
	cfg->io_timeout_ms = 10000;
	cfg->ws_ping_s = 30;
	cfg->stall_ms = 4000;
	cfg->max_batch_bytes = 4u << 20;
}

static void schedule(struct tp_client *c, enum step step, enum tp_client_transport t,
                     const char *why, int64_t delay_us);

/* A sul callback runs before lws_service() polls: wake that poll, or it
 * would sleep until the next lws timer before tp_client_run sees done. */
static void set_done(struct tp_client *c)
{
	c->done = 1;
	lws_cancel_service(c->ctx);
}

/* ---- requests ---- */

static void free_req(struct req *r)
{
	free(r->body);
	free(r);
}

static int body_append(struct req *r, const void *p, size_t n)
{
	size_t max = r->c->cfg.max_batch_bytes;

	if (n > max - r->len) {
		snprintf(r->fail_reason, sizeof(r->fail_reason),
		         "%s larger than max_batch_bytes (%zu)",
		         r->kind == REQ_WS ? "WebSocket message" : "HTTP body", max);
		return -1;
	}
	if (r->len + n > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		char *b;
		while (cap < r->len + n)
			cap *= 2;
		if (cap > max)
			cap = max;
		b = realloc(r->body, cap);
		if (!b) {
			snprintf(r->fail_reason, sizeof(r->fail_reason), "out of memory");
			return -1;
		}
		r->body = b;
		r->cap = cap;
	}
	memcpy(r->body + r->len, p, n);
	r->len += n;
	return 0;
}

static void note_transport(struct tp_client *c, enum tp_client_transport t, const char *why)
{
	enum tp_client_transport from = c->cur;

	if (from == t)
		return;
	if (from < TP_CLIENT_TRANSPORTS) {
		c->switch_pairs[from][t]++;
		c->switches++;
	}
	c->cur = t;
	client_log(c, 1, "transport %s -> %s (%s)", tp_client_transport_name(from),
	           tp_client_transport_name(t), why);
	if (c->cfg.on_transport)
		c->cfg.on_transport(c->cfg.user, from, t, why);
}

static void adopt_advice(struct tp_client *c, const struct tp_client_advice *a)
{
	if (!c->have_advice || c->advice.transport != a->transport ||
	    c->advice.interval_ms != a->interval_ms || strcmp(c->advice.reason, a->reason))
		client_log(c, 1, "advice: %s interval_ms=%u rate_per_min=%.3f reason=%s",
		           tp_client_transport_name(a->transport), a->interval_ms, a->rate_per_min,
		           a->reason[0] ? a->reason : "-");
	c->advice = *a;
	c->have_advice = 1;
}

static void deadline_cb(lws_sorted_usec_list_t *sul);

/* Open a request; any failure, now or later, ends in settle(). */
static void start_request(struct tp_client *c, enum req_kind kind, enum tp_client_transport t,
                          const char *path, unsigned wait_s);

/*
 * After a working connection is lost, wait the jittered backoff. After an
 * attempt that never worked (refused, timed out), the backoff is the spacing
 * between attempt starts: time already spent waiting on the failed attempt
 * counts, so a client whose connects time out during a blackout tries again
 * at once rather than idling on top of each timeout, while attempts that
 * fail fast still spread out exponentially.
 */
static enum tp_client_transport advised(const struct tp_client *c);

static void fail(struct tp_client *c, const char *why)
{
	int64_t delay_us;
	unsigned delay;

	c->failures++;
	delay = tp_client_backoff_ms(c->cfg.backoff_base_ms, c->cfg.backoff_max_ms, c->attempt,
	                             &c->rng);
	delay_us = (int64_t)delay * 1000;
	if (c->working) {
		c->disconnects++;
		c->working = 0;
	} else if (c->attempt_started_us) {
		delay_us -= now_us() - c->attempt_started_us;
		if (delay_us < 0)
			delay_us = 0;
	}
	if (c->attempt < 64)
		c->attempt++;
	client_log(c, 0, "%s; retrying in %lld ms (attempt %u)", why,
	           (long long)(delay_us / 1000), c->attempt);
	/*
	 * With advice in hand, reconnect straight to the advised transport: the
	 * gateway counts the drop when the new connection arrives and sends fresh
	 * advice on it (a WebSocket when it opens, a poll in its answer), so
	 * asking /connect first would only add a round trip to every recovery.
	 */
	if (c->cfg.pin)
		schedule(c, STEP_TRANSPORT, c->cfg.transport, "pin", delay_us);
	else if (c->have_advice)
		schedule(c, STEP_TRANSPORT, advised(c), "advice", delay_us);
	else
		schedule(c, STEP_CONNECT, c->cur, NULL, delay_us);
}

/*
 * Make the kernel give up on a silent connection after about stall_ms: keepalive
 * probes while nothing flows, TCP_USER_TIMEOUT while something sent waits for
 * its acknowledgement. A failure here only loses the early warning (the
 * request's own deadline still applies), so it is logged, not fatal.
 */
static void set_stall_opts(struct tp_client *c, struct lws *wsi)
{
	int fd = (int)lws_get_socket_fd(wsi);
	unsigned s = c->cfg.stall_ms / 1000;
	int on = 1, idle = s / 2 ? (int)(s / 2) : 1, intvl = s / 4 ? (int)(s / 4) : 1, cnt = 2;
	unsigned user = c->cfg.stall_ms;

	if (!c->cfg.stall_ms || fd < 0)
		return;
	if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl)) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user, sizeof(user)))
		client_log(c, 0, "cannot set the stall options on the socket: %s", strerror(errno));
}

/* The request's deadline from now: the whole answer, or only the connect. */
static void arm_deadline(struct tp_client *c, struct req *r, unsigned wait_s)
{
	int64_t ms = (int64_t)c->cfg.io_timeout_ms + (int64_t)wait_s * 1000;

	if (!r->connected && c->cfg.stall_ms && c->cfg.stall_ms < ms)
		ms = c->cfg.stall_ms;
	lws_sul_schedule(c->ctx, 0, &c->deadline_sul, deadline_cb, ms * 1000);
}

static unsigned shortpoll_interval_ms(const struct tp_client *c)
{
	if (c->have_advice && c->advice.interval_ms)
		return c->advice.interval_ms;
	return c->sp_interval_ms;
}

/* Deliver a parsed batch: accounting, callbacks, cursor, advice. */
static void take_batch(struct tp_client *c, const struct tp_client_batch *b)
{
	size_t n = json_object_array_length(b->msgs);
	int64_t now = wall_ms();

	c->batches++;
	tp_client_acct_batch(&c->acct, b->gap, b->suppressed);
	if (b->gap)
		client_log(c, 1, "batch with gap:true (messages after the cursor are gone)");
	for (size_t i = 0; i < n; i++) {
		struct json_object *m;
		int64_t seq, ts;
		tp_client_batch_msg(b, i, &m, &seq, &ts);
		if (!tp_client_acct_msg(&c->acct, seq))
			continue;
		tp_client_hist_add(&c->hist, now - ts);
		if (c->cfg.on_message) {
			size_t len = 0;
			const char *js = json_object_to_json_string_length(
			    m, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
			c->cfg.on_message(c->cfg.user, js, len, seq, ts);
		}
	}
	snprintf(c->cursor, sizeof(c->cursor), "%s", b->cursor);
	if (b->has_advice)
		adopt_advice(c, &b->advice);
}

/* The transport the advice in hand wants, or cur when pinned or without one. */
static enum tp_client_transport advised(const struct tp_client *c)
{
	if (c->cfg.pin || !c->have_advice)
		return c->cur;
	return c->advice.transport;
}

static void connect_answer(struct tp_client *c, struct req *r)
{
	struct tp_client_advice a;

	if (r->status == 200 && !tp_client_advice_parse(r->body ? r->body : "", r->len, &a)) {
		adopt_advice(c, &a);
		schedule(c, STEP_TRANSPORT, a.transport, "connect", 0);
		return;
	}
	if (r->status == 404) {
		if (!c->told_no_connect)
			client_log(c, 0, "no /connect on this gateway (404): using %s",
			           tp_client_transport_name(c->cfg.transport));
		c->told_no_connect = 1;
		schedule(c, STEP_TRANSPORT, c->cfg.transport, "default", 0);
		return;
	}
	snprintf(r->fail_reason, sizeof(r->fail_reason), "/connect answered %d%s", r->status,
	         r->status == 200 ? " with no readable advice" : "");
	fail(c, r->fail_reason);
}

static void poll_answer(struct tp_client *c, struct req *r)
{
	struct tp_client_batch b;
	struct tp_client_advice adv;
	char err[96], code[64];
	int have_adv;

	if (r->status == 200) {
		if (tp_client_batch_parse(r->body ? r->body : "", r->len, &b, err, sizeof(err)) ||
		    b.is_reply) {
			if (b.is_reply)
				tp_client_batch_release(&b);
			snprintf(r->fail_reason, sizeof(r->fail_reason),
			         "poll answer is no batch: %s", b.is_reply ? "a reply" : err);
			fail(c, r->fail_reason);
			return;
		}
		c->attempt = 0;
		c->working = 1;
		take_batch(c, &b);
		tp_client_batch_release(&b);
		if (advised(c) != c->cur) {
			schedule(c, STEP_TRANSPORT, advised(c), "advice", 0);
		} else if (c->cur == TP_CLIENT_SHORTPOLL) {
			int64_t next = r->started_us + (int64_t)shortpoll_interval_ms(c) * 1000;
			int64_t delay = next - now_us();
			schedule(c, STEP_TRANSPORT, c->cur, "advice", delay > 0 ? delay : 0);
		} else {
			schedule(c, STEP_TRANSPORT, c->cur, "advice", 0);
		}
		return;
	}
	have_adv = tp_client_error_parse(r->body ? r->body : "", r->len, code, sizeof(code), &adv);
	if (r->status == 429) {
		int64_t delay_ms;
		c->too_fast++;
		if (have_adv)
			adopt_advice(c, &adv);
		if (!(have_adv && adv.interval_ms)) {
			unsigned slower = c->sp_interval_ms * 2;
			if (r->retry_after_s > 0 && slower < (unsigned)r->retry_after_s * 1000)
				slower = (unsigned)r->retry_after_s * 1000;
			unsigned cap = c->cfg.shortpoll_interval_ms > 60000
			                   ? c->cfg.shortpoll_interval_ms
			                   : 60000;
			c->sp_interval_ms = slower < cap ? slower : cap;
		}
		/* never sooner than the pace either: a Retry-After of 0 must not spin */
		delay_ms = (int64_t)shortpoll_interval_ms(c);
		if (r->retry_after_s > 0 && (int64_t)r->retry_after_s * 1000 > delay_ms)
			delay_ms = (int64_t)r->retry_after_s * 1000;
		client_log(c, 1, "429 %s: next poll in %lld ms", code[0] ? code : "-",
		           (long long)delay_ms);
		schedule(c, STEP_TRANSPORT, advised(c), "advice", delay_ms * 1000);
		return;
	}
	if (r->status == 400 && !strcmp(code, "bad_cursor")) {
		/* Nothing to resume from: start at the next message; the holes
		 * this leaves show in the gap count. */
		c->cursor[0] = '\0';
	}
	snprintf(r->fail_reason, sizeof(r->fail_reason), "poll answered %d %s", r->status,
	         code[0] ? code : "");
	fail(c, r->fail_reason);
}

/* The request r ended; decide once what comes next. */
static void settle(struct req *r, enum outcome out)
{
	struct tp_client *c = r->c;

	if (r->settled)
		return;
	r->settled = 1;
	if (c->req == r) {
		c->req = NULL;
		lws_sul_cancel(&c->deadline_sul);
	}
	if (c->destroying)
		return;
	if (c->stopping) {
		set_done(c);
		return;
	}
	switch (out) {
	case OUT_ANSWER:
		c->bytes += r->len;
		if (r->kind == REQ_CONNECT)
			connect_answer(c, r);
		else
			poll_answer(c, r);
		break;
	case OUT_SWITCH:
		schedule(c, STEP_TRANSPORT, r->switch_to, "advice", 0);
		break;
	case OUT_FAIL:
		if (!r->fail_reason[0])
			snprintf(r->fail_reason, sizeof(r->fail_reason), "connection lost");
		fail(c, r->fail_reason);
		break;
	case OUT_STOPPED:
		break;
	}
}

static void start_request(struct tp_client *c, enum req_kind kind, enum tp_client_transport t,
                          const char *path, unsigned wait_s)
{
	struct lws_client_connect_info i;
	struct req *r = calloc(1, sizeof(*r));
	struct lws *wsi;

	if (!r) {
		fail(c, "out of memory");
		return;
	}
	r->c = c;
	r->kind = kind;
	r->transport = t;
	r->retry_after_s = -1;
	r->switch_to = TP_CLIENT_TRANSPORTS;
	r->started_us = now_us();
	c->attempt_started_us = r->started_us;
	snprintf(r->path, sizeof(r->path), "%s", path);

	memset(&i, 0, sizeof(i));
	i.context = c->ctx;
	i.address = c->url.host;
	i.port = c->url.port;
	i.ssl_connection = c->ssl_flags;
	i.path = r->path;
	i.host = c->url.hostport;
	i.origin = c->url.hostport;
	i.method = kind == REQ_WS ? NULL : "GET";
	i.local_protocol_name = PROTOCOL_NAME;
	i.opaque_user_data = r;
	i.pwsi = &r->wsi;
	if (kind == REQ_WS)
		i.retry_and_idle_policy = &c->ws_policy;

	c->req = r;
	r->in_connect = 1;
	wsi = lws_client_connect_via_info(&i);
	r->in_connect = 0;
	if (!wsi || r->destroyed) {
		/* lws has already freed or destroyed the wsi: nothing will call back */
		snprintf(r->fail_reason, sizeof(r->fail_reason), "cannot start a connection to %s",
		         c->url.hostport);
		settle(r, OUT_FAIL);
		free_req(r);
		return;
	}
	/* the connect itself is bounded by the deadline; the socket gets its
	 * stall options once connected (APPEND_HANDSHAKE_HEADER) */
	arm_deadline(c, r, wait_s);
}

static void start_transport(struct tp_client *c, enum tp_client_transport t, const char *why)
{
	char path[TP_CLIENT_PATH_MAX];

	note_transport(c, t, why);
	/* pinned: the user's paths and wait, not the ones advised for another transport */
	if (tp_client_transport_path(path, sizeof(path), t,
	                             c->have_advice && !c->cfg.pin ? &c->advice : NULL, c->room,
	                             c->id, c->cfg.longpoll_wait_s, c->cursor)) {
		fail(c, "request path too long");
		return;
	}
	client_log(c, 1, "GET %s", path);
	start_request(c, t == TP_CLIENT_WS ? REQ_WS : REQ_POLL, t, path,
	              t == TP_CLIENT_WS ? 0 : tp_client_path_wait(path));
}

static void start_connect(struct tp_client *c)
{
	char path[TP_CLIENT_PATH_MAX];

	if (tp_client_connect_path(path, sizeof(path), c->room, c->id)) {
		fail(c, "request path too long");
		return;
	}
	client_log(c, 1, "GET %s", path);
	start_request(c, REQ_CONNECT, c->cur, path, 0);
}

static void next_cb(lws_sorted_usec_list_t *sul)
{
	struct tp_client *c = lws_container_of(sul, struct tp_client, next_sul);

	if (c->stopping || c->req)
		return;
	if (c->next_step == STEP_CONNECT)
		start_connect(c);
	else
		start_transport(c, c->next_transport, c->next_why);
}

static void schedule(struct tp_client *c, enum step step, enum tp_client_transport t,
                     const char *why, int64_t delay_us)
{
	c->next_step = step;
	c->next_transport = t;
	c->next_why = why;
	lws_sul_schedule(c->ctx, 0, &c->next_sul, next_cb, delay_us);
}

static void deadline_cb(lws_sorted_usec_list_t *sul)
{
	struct tp_client *c = lws_container_of(sul, struct tp_client, deadline_sul);
	struct req *r = c->req;
	struct lws *wsi;

	if (!r)
		return;
	wsi = r->wsi;
	snprintf(r->fail_reason, sizeof(r->fail_reason), "%s timeout after %lld ms",
	         r->connected ? "answer" : "connect",
	         (long long)((now_us() - r->started_us) / 1000));
	settle(r, OUT_FAIL);
	if (wsi)
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* ---- stopping ---- */

static void grace_cb(lws_sorted_usec_list_t *sul)
{
	struct tp_client *c = lws_container_of(sul, struct tp_client, grace_sul);

	set_done(c);
}

static void begin_stop(struct tp_client *c)
{
	struct req *r = c->req;

	if (c->stopping)
		return;
	c->stopping = 1;
	lws_sul_cancel(&c->next_sul);
	lws_sul_cancel(&c->stats_sul);
	lws_sul_cancel(&c->end_sul);
	if (!r) {
		set_done(c);
		return;
	}
	if (r->kind == REQ_WS && r->established) {
		/* a close frame: the gateway must not count this as a disconnect */
		if (!r->closing) {
			r->closing = 1;
			r->switch_to = TP_CLIENT_TRANSPORTS;
			lws_callback_on_writable(r->wsi);
		}
		lws_sul_schedule(c->ctx, 0, &c->grace_sul, grace_cb,
		                 (int64_t)c->cfg.io_timeout_ms * 1000);
		return;
	}
	settle(r, OUT_STOPPED);
	if (r->wsi)
		lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	set_done(c);
}

static void end_cb(lws_sorted_usec_list_t *sul)
{
	begin_stop(lws_container_of(sul, struct tp_client, end_sul));
}

static void stats_cb(lws_sorted_usec_list_t *sul)
{
	struct tp_client *c = lws_container_of(sul, struct tp_client, stats_sul);
	struct tp_client_stats st;

	if (c->stopping)
		return;
	tp_client_stats(c, &st);
	if (c->cfg.on_stats)
		c->cfg.on_stats(c->cfg.user, &st);
	lws_sul_schedule(c->ctx, 0, &c->stats_sul, stats_cb,
	                 (int64_t)c->cfg.stats_interval_ms * 1000);
}

/* ---- lws callbacks ---- */

/* One complete WebSocket message. -1 closes the connection. */
static int ws_message(struct tp_client *c, struct req *r, struct lws *wsi)
{
	struct tp_client_batch b;
	char err[96];

	c->bytes += r->len;
	if (tp_client_batch_parse(r->body ? r->body : "", r->len, &b, err, sizeof(err))) {
		snprintf(r->fail_reason, sizeof(r->fail_reason), "WebSocket frame is no batch: %s",
		         err);
		lws_close_reason(wsi, LWS_CLOSE_STATUS_PROTOCOL_ERR, NULL, 0);
		settle(r, OUT_FAIL);
		return -1;
	}
	r->len = 0;
	if (b.is_reply) {
		tp_client_batch_release(&b);
		return 0;
	}
	take_batch(c, &b);
	tp_client_batch_release(&b);
	if (!r->closing && advised(c) != TP_CLIENT_WS) {
		r->closing = 1;
		r->switch_to = advised(c);
		lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
		return -1;
	}
	return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
	struct req *r = wsi ? lws_get_opaque_user_data(wsi) : NULL;
	struct tp_client *c;
	char buf[HTTP_READ_CHUNK + LWS_PRE], *p;
	int n;

	if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED) {
		c = lws_context_user(lws_get_context(wsi));
		if (c && atomic_load(&c->stop_requested))
			begin_stop(c);
		return 0;
	}
	if (!r)
		return 0;
	c = r->c;

	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		snprintf(r->fail_reason, sizeof(r->fail_reason), "%s %s: %s",
		         r->kind == REQ_WS ? "WebSocket" : "GET", r->path,
		         in ? (const char *)in : "connection error");
		if (r->kind == REQ_WS && r->status == 400 && !r->settled && c->cursor[0]) {
			/* the only 400 our own request can earn is bad_cursor */
			c->cursor[0] = '\0';
		}
		settle(r, OUT_FAIL);
		break;

	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		if (r->settled || r->connected)
			break;
		r->connected = 1;
		set_stall_opts(c, wsi);
		if (c->req == r)
			arm_deadline(c, r,
			             r->kind == REQ_POLL ? tp_client_path_wait(r->path) : 0);
		break;

	case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
		r->status = lws_http_client_http_response(wsi);
		n = lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_RETRY_AFTER);
		if (n > 0) {
			char *end;
			long v = strtol(buf, &end, 10);
			if (end != buf && !*end && v >= 0 && v <= 3600)
				r->retry_after_s = (int)v;
		}
		break;

	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
		if (r->settled)
			return -1;
		if (body_append(r, in, len)) {
			settle(r, OUT_FAIL);
			return -1;
		}
		break;

	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP:
		p = buf + LWS_PRE;
		n = (int)sizeof(buf) - LWS_PRE;
		if (lws_http_client_read(wsi, &p, &n) < 0)
			return -1;
		break;

	case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
		settle(r, OUT_ANSWER);
		return -1; /* one request per connection: close it */

	case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
		if (!r->fail_reason[0])
			snprintf(r->fail_reason, sizeof(r->fail_reason),
			         "GET %s: closed before the answer was complete", r->path);
		settle(r, OUT_FAIL);
		break;

	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (r->settled)
			return -1;
		r->established = 1;
		client_log(c, 1, "WebSocket open");
		lws_sul_cancel(&c->deadline_sul);
		c->attempt = 0;
		c->working = 1;
		break;

	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (r->settled)
			return -1;
		if (body_append(r, in, len)) {
			lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
			settle(r, OUT_FAIL);
			return -1;
		}
		if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi))
			return ws_message(c, r, wsi);
		break;

	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (r->closing) {
			lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
			return -1;
		}
		break;

	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (!r->closing) {
			unsigned code = len >= 2 ? ((unsigned)((unsigned char *)in)[0] << 8) |
			                               ((unsigned char *)in)[1]
			                         : 0;
			snprintf(r->fail_reason, sizeof(r->fail_reason),
			         "the gateway closed the WebSocket (code %u)", code);
		}
		break;

	case LWS_CALLBACK_CLIENT_CLOSED:
		if (!r->closing && !r->fail_reason[0])
			snprintf(r->fail_reason, sizeof(r->fail_reason),
			         "WebSocket closed without a close frame");
		if (r->closing)
			settle(r, r->switch_to < TP_CLIENT_TRANSPORTS ? OUT_SWITCH : OUT_STOPPED);
		else
			settle(r, OUT_FAIL);
		break;

	case LWS_CALLBACK_WSI_DESTROY:
		if (r->closing)
			settle(r, r->switch_to < TP_CLIENT_TRANSPORTS ? OUT_SWITCH : OUT_STOPPED);
		else
			settle(r, OUT_FAIL);
		lws_set_opaque_user_data(wsi, NULL);
		if (r->in_connect)
			r->destroyed = 1;
		else
			free_req(r);
		break;

	default:
		break;
	}
	return 0;
}

static const struct lws_protocols protocols[] = {
    {PROTOCOL_NAME, callback, 0, WS_RX_BUFFER, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- public API ---- */

static int check_range(const char *name, uint64_t v, uint64_t lo, uint64_t hi, char *err,
                       size_t errlen)
{
	if (v >= lo && v <= hi)
		return 0;
	snprintf(err, errlen, "%s must be %llu..%llu", name, (unsigned long long)lo,
	         (unsigned long long)hi);
	return -1;
}

struct tp_client *tp_client_new(const struct tp_client_config *cfg, char *err, size_t errlen)
{
	struct lws_context_creation_info info;
	struct tp_client *c = NULL;
	int error = EINVAL;
	unsigned io_s;

	if (!cfg->url || !cfg->room) {
		snprintf(err, errlen, "url and room are required");
		goto fail;
	}
	if (!tp_client_valid_name(cfg->room)) {
		snprintf(err, errlen, "room must match [A-Za-z0-9_-]{1,64}");
		goto fail;
	}
	if (cfg->client_id && !tp_client_valid_name(cfg->client_id)) {
		snprintf(err, errlen, "client id must match [A-Za-z0-9_-]{1,64}");
		goto fail;
	}
	if (cfg->since) {
		size_t n = strlen(cfg->since);
		int ok = n > 0 && n < TP_CLIENT_CURSOR_MAX;
		for (size_t i = 0; ok && i < n; i++)
			ok = cfg->since[i] > 0x20 && cfg->since[i] < 0x7f;
		if (!ok) {
			snprintf(err, errlen, "since must be 1..%d printable ASCII characters",
			         TP_CLIENT_CURSOR_MAX - 1);
			goto fail;
		}
	}
	if ((unsigned)cfg->transport >= TP_CLIENT_TRANSPORTS) {
		snprintf(err, errlen, "unknown transport");
		goto fail;
	}
	if (check_range("backoff_base_ms", cfg->backoff_base_ms, 1, 3600000, err, errlen) ||
	    check_range("backoff_max_ms", cfg->backoff_max_ms, cfg->backoff_base_ms, 3600000, err,
	                errlen) ||
	    check_range("longpoll_wait_s", cfg->longpoll_wait_s, 1, 3600, err, errlen) ||
	    check_range("shortpoll_interval_ms", cfg->shortpoll_interval_ms, 1, 3600000, err,
	                errlen) ||
	    check_range("io_timeout_ms", cfg->io_timeout_ms, 100, 600000, err, errlen) ||
	    check_range("ws_ping_s", cfg->ws_ping_s, 1, 3600, err, errlen) ||
	    (cfg->stall_ms &&
	     check_range("stall_ms", cfg->stall_ms, 1000, 600000, err, errlen)) ||
	    check_range("max_batch_bytes", cfg->max_batch_bytes, 1024, 1u << 30, err, errlen) ||
	    check_range("stats_interval_ms", cfg->stats_interval_ms, 0, 86400000, err, errlen))
		goto fail;

	c = calloc(1, sizeof(*c));
	if (!c) {
		error = ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	c->cfg = *cfg;
	c->cfg.url = NULL;
	c->cfg.room = NULL;
	c->cfg.client_id = NULL;
	c->cfg.since = NULL;
	if (cfg->since)
		snprintf(c->cursor, sizeof(c->cursor), "%s", cfg->since);
	if (tp_client_url_parse(cfg->url, &c->url, err, errlen))
		goto fail;
	snprintf(c->room, sizeof(c->room), "%s", cfg->room);
	c->rng = cfg->seed;
	if (!c->rng) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		c->rng = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^
		         ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)c;
	}
	if (cfg->client_id)
		snprintf(c->id, sizeof(c->id), "%s", cfg->client_id);
	else
		snprintf(c->id, sizeof(c->id), "%016llx",
		         (unsigned long long)tp_client_rng_next(&c->rng));
	c->cur = TP_CLIENT_TRANSPORTS;
	c->sp_interval_ms = cfg->shortpoll_interval_ms;
	atomic_init(&c->stop_requested, 0);

	io_s = (cfg->io_timeout_ms + 999) / 1000;
	c->ws_policy.secs_since_valid_ping = (uint16_t)cfg->ws_ping_s;
	c->ws_policy.secs_since_valid_hangup = (uint16_t)(cfg->ws_ping_s + io_s);
	if (c->url.tls) {
		c->ssl_flags = LCCSCF_USE_SSL;
		if (cfg->tls_insecure)
			c->ssl_flags |= LCCSCF_ALLOW_SELFSIGNED |
			                LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
			                LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
	}
	c->ssl_flags |= LCCSCF_HTTP_NO_FOLLOW_REDIRECT;

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.user = c;
	info.options = c->url.tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0;
	/* the event pipe, the current request and a few closing ones */
	info.fd_limit_per_thread = 16;
	info.timeout_secs = LWS_BACKSTOP_TIMEOUT_S;
	info.connect_timeout_secs = io_s + 1;
	c->ctx = lws_create_context(&info);
	if (!c->ctx) {
		error = EIO;
		snprintf(err, errlen, "cannot create the libwebsockets context");
		goto fail;
	}
	return c;
fail:
	free(c);
	errno = error;
	return NULL;
}

int tp_client_run(struct tp_client *c, unsigned duration_ms)
{
	if (c->ran)
		return -1;
	c->ran = 1;
	if (c->cfg.pin)
		schedule(c, STEP_TRANSPORT, c->cfg.transport, "pin", 0);
	else
		schedule(c, STEP_CONNECT, c->cur, NULL, 0);
	if (duration_ms)
		lws_sul_schedule(c->ctx, 0, &c->end_sul, end_cb, (int64_t)duration_ms * 1000);
	if (c->cfg.stats_interval_ms)
		lws_sul_schedule(c->ctx, 0, &c->stats_sul, stats_cb,
		                 (int64_t)c->cfg.stats_interval_ms * 1000);
	while (!c->done) {
		if (atomic_load(&c->stop_requested))
			begin_stop(c);
		if (c->done || lws_service(c->ctx, 0) < 0)
			break;
	}
	lws_sul_cancel(&c->grace_sul);
	lws_sul_cancel(&c->deadline_sul);
	return 0;
}

void tp_client_stop(struct tp_client *c)
{
	atomic_store(&c->stop_requested, 1);
	lws_cancel_service(c->ctx);
}

void tp_client_stats(const struct tp_client *c, struct tp_client_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->delivered = c->acct.delivered;
	st->duplicates = c->acct.duplicates;
	st->gaps = c->acct.gaps;
	st->gap_flags = c->acct.gap_flags;
	st->suppressed = c->acct.suppressed;
	st->batches = c->batches;
	st->failures = c->failures;
	st->disconnects = c->disconnects;
	st->too_fast = c->too_fast;
	st->switches = c->switches;
	memcpy(st->switch_pairs, c->switch_pairs, sizeof(st->switch_pairs));
	st->bytes = c->bytes;
	st->lat_p50_ms = tp_client_hist_quantile(&c->hist, 0.50);
	st->lat_p95_ms = tp_client_hist_quantile(&c->hist, 0.95);
	st->lat_p99_ms = tp_client_hist_quantile(&c->hist, 0.99);
	st->transport = c->cur;
	st->have_advice = c->have_advice;
	st->advice_transport = c->advice.transport;
	st->advice_rate_per_min = c->have_advice ? c->advice.rate_per_min : NAN;
	snprintf(st->advice_reason, sizeof(st->advice_reason), "%s", c->advice.reason);
}

const char *tp_client_id(const struct tp_client *c)
{
	return c->id;
}

void tp_client_free(struct tp_client *c)
{
	if (!c)
		return;
	/* lws destroys the remaining wsis now; their WSI_DESTROY frees the requests */
	c->destroying = 1;
	lws_context_destroy(c->ctx);
	free(c);
}
