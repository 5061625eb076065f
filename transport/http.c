/*
 * HTTP requests: routing, responses, posting danmaku, health and metrics.
 * Polls are in poll.c, the WebSocket upgrade in ws.c. Worker thread only.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/clock.h"
#include "gateway/cursor.h"
#include "gateway/ingest.h"
#include "gateway/log.h"
#include "gateway/metrics.h"
#include "transport/internal.h"

enum method { M_OTHER, M_GET, M_POST, M_PUT, M_DELETE, M_PATCH, M_OPTIONS, M_HEAD };

static enum method method_of(struct lws *wsi)
{
	static const struct {
		enum lws_token_indexes tok;
		enum method m;
	} map[] = {
		{WSI_TOKEN_GET_URI, M_GET},       {WSI_TOKEN_POST_URI, M_POST},
		{WSI_TOKEN_PUT_URI, M_PUT},       {WSI_TOKEN_DELETE_URI, M_DELETE},
		{WSI_TOKEN_PATCH_URI, M_PATCH},   {WSI_TOKEN_OPTIONS_URI, M_OPTIONS},
		{WSI_TOKEN_HEAD_URI, M_HEAD},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (lws_hdr_total_length(wsi, map[i].tok))
			return map[i].m;
	return M_OTHER;
}

void tp_conn_release(struct tp_conn *c)
{
	if (ev_is_active(&c->lp_watch))
		ev_io_stop(c->wk->loop, &c->lp_watch);
	if (c->sub.room)
		gw_room_unsubscribe(&c->sub);
	if (c->room) {
		gw_room_release(c->room);
		c->room = NULL;
	}
	if (c->lp_reported) {
		/* Released while still held: the client went away mid-wait. */
		c->lp_reported = false;
		gw_clients_poll_end(c->wk->srv->clients, c->client, c->client_len, true, 0,
				    gw_clock_mono_ms(), NULL);
	}
	if (c->state == TP_LONGPOLL)
		gw_metric_add(GW_M_CONN_LONGPOLL, -1);
	c->state = TP_IDLE;
	gw_buf_reset(&c->body);
}

/* Worker: take c off its worker's keep-alive idle list. Idempotent. */
static void ka_unlink(struct tp_conn *c)
{
	struct tp_worker *wk = c->wk;

	if (!c->ka_linked)
		return;
	if (c->ka_prev)
		c->ka_prev->ka_next = c->ka_next;
	else
		wk->ka_head = c->ka_next;
	if (c->ka_next)
		c->ka_next->ka_prev = c->ka_prev;
	else
		wk->ka_tail = c->ka_prev;
	if (wk->ka_kick == c)
		wk->ka_kick = c->ka_next;
	c->ka_prev = c->ka_next = NULL;
	c->ka_linked = false;
}

void tp_http_bound(struct tp_conn *c, struct lws *wsi)
{
	struct tp_worker *wk = tp_worker_of(wsi);

	/*
	 * Only the session data of a keep-alive transaction we completed in
	 * tp_http_send goes on the list: lws times a new connection (its header
	 * table's idle timeout) and the upgrade itself.
	 */
	if (wk->ka_wsi != wsi)
		return;
	c->wsi = wsi;
	c->wk = wk;
	c->ka_ms = gw_clock_mono_ms();
	c->ka_prev = wk->ka_tail;
	c->ka_next = NULL;
	if (wk->ka_tail)
		wk->ka_tail->ka_next = c;
	else
		wk->ka_head = c;
	wk->ka_tail = c;
	c->ka_linked = true;
	wk->ka_bound = true;
	if (!wk->ka_kick) {
		wk->ka_kick = c;
		ev_prepare_start(wk->loop, &wk->ka_kick_w);
	}
}

/*
 * After a keep-alive transaction lws 4.1.6 parks the connection until a
 * POLLOUT event shows no partial write is pending (LRS_DEFERRING_ACTION): it
 * asks for POLLOUT and clears it again when the event comes, two epoll_ctl
 * and one more event per request (12% of a short-poll worker,
 * docs/benchmarks.md). A connection on our list got there only after its
 * whole answer was written (lws completes a transaction with a partial
 * pending later, from its own writable callback, and binds nothing before),
 * so hand lws that POLLOUT ourselves, from a prepare watcher: it runs before
 * libev applies the iteration's fd changes, so the request for POLLOUT and
 * its clearing cancel out and reach the kernel not at all. lws then reads the
 * next request as usual.
 */
static void ka_kick_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct tp_worker *wk = w->data;
	struct tp_conn *c = wk->ka_kick, *end = wk->ka_tail;

	wk->ka_kick = NULL;
	ev_prepare_stop(loop, w);
	/*
	 * Servicing one connection touches only its own session data (it may be
	 * freed, or a pipelined request answered and fresh data linked at the
	 * tail for the next round), so next and end stay valid.
	 */
	while (c) {
		struct tp_conn *next = c == end ? NULL : c->ka_next;
		struct lws_pollfd pfd = {
			.fd = lws_get_socket_fd(c->wsi), .events = LWS_POLLOUT, .revents = LWS_POLLOUT};

		lws_service_fd(wk->ctx, &pfd);
		c = next;
	}
}

void tp_http_worker_init(struct tp_worker *wk)
{
	ev_prepare_init(&wk->ka_kick_w, ka_kick_cb);
	wk->ka_kick_w.data = wk;
}

void tp_http_reap_idle(struct tp_worker *wk, int64_t now_ms)
{
	int64_t idle_ms = wk->srv->cfg->keepalive_timeout * 1000;

	/*
	 * Oldest first, so the walk stops at the first connection still within
	 * its time: O(1) per tick plus one step per connection closed. A client
	 * that has begun sending its next request's headers but not finished
	 * them is still on the list (lws reads them before telling us); lws
	 * itself would have given it io_timeout from its first byte. Closing it
	 * is the usual keep-alive race, which clients retry.
	 */
	while (wk->ka_head && now_ms - wk->ka_head->ka_ms >= idle_ms) {
		struct tp_conn *c = wk->ka_head;

		ka_unlink(c);
		/* A graceful close from lws's own service, as its keep-alive timeout does. */
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_HTTP_KEEPALIVE_IDLE, LWS_TO_KILL_ASYNC);
	}
}

void tp_conn_cleanup(struct tp_conn *c)
{
	ka_unlink(c);
	/* Answers still on their way find no connection and are dropped. */
	for (struct tp_answer *a = c->answers, *n; a; a = n) {
		n = a->cnext;
		a->conn = NULL;
		a->cnext = NULL;
		/* Ours to free once it arrived; one still out there is freed when it does. */
		if (a->arrived)
			tp_answer_free(a);
	}
	c->answers = NULL;
	tp_ws_closed(c);
	tp_conn_release(c);
	gw_buf_free(&c->body);
	gw_buf_free(&c->rx);
}

int tp_route_room(const char *path, const char **room, size_t *room_len, const char **action)
{
	static const char prefix[] = "/v1/rooms/";
	const char *slash;

	if (strncmp(path, prefix, sizeof(prefix) - 1))
		return 0;
	*room = path + sizeof(prefix) - 1;
	slash = strrchr(*room, '/');
	if (!slash)
		return 0;
	*room_len = (size_t)(slash - *room);
	*action = slash + 1;
	return 1;
}

int tp_query(struct tp_conn *c, const char *name, char *buf, size_t buflen)
{
	struct lws *wsi = c->wsi;
	size_t nl = strlen(name);

	if (!wsi)
		return tp_h1_query(c, name, buf, buflen);

	/* Bounded: lws keeps at most a few dozen fragments per header anyway. */
	for (int i = 0; i < 256; i++) {
		int n = lws_hdr_copy_fragment(wsi, buf, (int)buflen, WSI_TOKEN_HTTP_URI_ARGS, i);

		if (n < 0) /* no fragment i, or one that does not fit buf */
			return lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i) >=
					       (int)buflen
				       ? -1
				       : 0;
		if ((size_t)n > nl && !strncmp(buf, name, nl) && buf[nl] == '=') {
			memmove(buf, buf + nl + 1, (size_t)n - nl);
			return 1;
		}
		if ((size_t)n == nl && !strcmp(buf, name)) {
			buf[0] = '\0'; /* "?since" without '=': present and empty */
			return 1;
		}
	}
	return 0;
}

int tp_resolve_since(struct tp_conn *c, struct gw_err *err)
{
	char buf[64];
	struct gw_cursor cur;
	int q = tp_query(c, "since", buf, sizeof(buf));

	if (q < 0 || (q > 0 && gw_cursor_parse(buf, strlen(buf), &cur)))
		return gw_fail(err, 400, "bad_cursor", "since is not a cursor from this gateway");
	return gw_pos_resolve(c->room, q > 0 ? &cur : NULL, &c->pos, err);
}

int tp_http_send(struct tp_conn *c, int status, const char *ctype, struct gw_buf *body,
		 const struct tp_hdr *hdrs, size_t nhdrs)
{
	struct lws *wsi = c->wsi;
	struct tp_worker *wk = c->wk;
	unsigned char hdr[TP_HDR_ROOM], *p = hdr, *end = hdr + sizeof(hdr);
	size_t blen = body ? body->len : 0, hlen;
	unsigned char *start;
	int rc;

	if (!wsi)
		return tp_h1_send(c, status, ctype, body, hdrs, nhdrs);
	if (lws_add_http_common_headers(wsi, (unsigned int)status, ctype, blen, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
					(const unsigned char *)"no-store", 8, &p, end))
		return -1;
	for (size_t i = 0; i < nhdrs; i++)
		if (lws_add_http_header_by_name(wsi, (const unsigned char *)hdrs[i].name,
						(const unsigned char *)hdrs[i].value,
						(int)strlen(hdrs[i].value), &p, end))
			return -1;
	if (lws_finalize_http_header(wsi, &p, end))
		return -1;
	hlen = (size_t)(p - hdr);
	/*
	 * Inside CONFIRM_UPGRADE lws has not recorded the request's version yet and
	 * writes "HTTP/1.0"; an upgrade request is always HTTP/1.1, and clients
	 * such as python-websockets refuse a 1.0 answer to it.
	 */
	if (c->upgrading && hlen > 8 && !memcmp(hdr, "HTTP/1.0", 8))
		hdr[7] = '1';
	/* The body sits after TP_HDR_ROOM spare bytes: put the headers right in front of it. */
	if (body && body->base) {
		start = (unsigned char *)gw_buf_data(body) - hlen;
	} else {
		static _Thread_local unsigned char empty[LWS_PRE + TP_HDR_ROOM];
		start = empty + LWS_PRE + TP_HDR_ROOM - hlen;
	}
	memcpy(start, hdr, hlen);
	if (lws_write(wsi, start, hlen + blen, LWS_WRITE_HTTP_FINAL) != (int)(hlen + blen))
		return -1;
	if (c->upgrading)
		return 0;
	/*
	 * On keep-alive lws frees c here and binds fresh session data, which
	 * tp_http_bound puts on the worker's idle list; then lws's own keep-alive
	 * timeout is cancelled so its timer list holds only connections with a
	 * request in progress. lws keeps its timeout when it bound nothing (the
	 * connection closes, or completion waits for a partial write).
	 */
	wk->ka_wsi = wsi;
	wk->ka_bound = false;
	rc = lws_http_transaction_completed(wsi);
	wk->ka_wsi = NULL;
	if (rc)
		return -1;
	if (wk->ka_bound)
		lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
	return 0;
}

int tp_http_send_copy(struct tp_conn *c, int status, const char *ctype, const char *body,
		      size_t len, const struct tp_hdr *hdrs, size_t nhdrs)
{
	struct gw_buf *out = &c->wk->out;

	gw_buf_reset(out);
	if (gw_buf_append(out, body, len))
		return -1;
	gw_metric_add(GW_M_BYTES_HTTP_OTHER, (int64_t)len);
	return tp_http_send(c, status, ctype, out, hdrs, nhdrs);
}

int tp_http_defer(struct tp_conn *c, int status, const char *body, size_t len,
		  const struct gw_err *err)
{
	struct tp_answer *a = tp_answer_new(c);

	if (!a)
		return -1;
	a->arrived = true;
	a->status = status;
	if (err)
		a->err = *err;
	if (body && gw_buf_append(&a->body, body, len))
		return -1; /* a stays on c's list; cleanup frees it */
	c->state = TP_ANSWER;
	lws_callback_on_writable(c->wsi);
	return 0;
}

int tp_answer_writeable(struct tp_conn *c)
{
	struct tp_answer *a, **pp;
	int rc;

	for (pp = &c->answers; *pp && !(*pp)->arrived; pp = &(*pp)->cnext)
		;
	a = *pp;
	if (!a)
		return 0;
	*pp = a->cnext;
	c->state = TP_IDLE;
	if (a->status < 400)
		rc = tp_http_send_copy(c, a->status, "application/json", gw_buf_data(&a->body),
				       a->body.len, NULL, 0);
	else
		rc = tp_http_error(c, &a->err);
	tp_answer_free(a);
	return rc;
}

int tp_http_error_hdrs(struct tp_conn *c, const struct gw_err *err, const struct tp_hdr *extra,
		       size_t nextra)
{
	struct json_object *o = json_object_new_object();
	struct tp_hdr hdrs[4];
	char retry[16];
	size_t nh = 0, len;
	const char *s;
	int rc;

	gw_metric_reject(err->code);
	if (!o || nextra > 3)
		return -1;
	json_object_object_add(o, "error", json_object_new_string(err->code));
	json_object_object_add(o, "detail", json_object_new_string(err->detail));
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
	for (; nh < nextra; nh++)
		hdrs[nh] = extra[nh];
	if (err->retry_after_s > 0) {
		snprintf(retry, sizeof(retry), "%d", err->retry_after_s);
		hdrs[nh++] = (struct tp_hdr){"retry-after:", retry};
	}
	rc = tp_http_send_copy(c, err->status, "application/json", s, len, hdrs, nh);
	json_object_put(o);
	return rc;
}

int tp_http_error(struct tp_conn *c, const struct gw_err *err)
{
	return tp_http_error_hdrs(c, err, NULL, 0);
}

static int send_method_not_allowed(struct tp_conn *c, const char *allow)
{
	struct gw_err err;
	struct tp_hdr h = {"allow:", allow};

	gw_fail(&err, 405, "method_not_allowed", "use %s", allow);
	return tp_http_error_hdrs(c, &err, &h, 1);
}

static int fail(struct tp_conn *c, int status, const char *code, const char *detail)
{
	struct gw_err err;

	gw_fail(&err, status, code, "%s", detail);
	return tp_http_error(c, &err);
}

static int serve_metrics(struct tp_conn *c)
{
	struct gw_buf *out = &c->wk->out;

	gw_buf_reset(out);
	if (gw_metrics_render(out, gw_rooms_count(c->wk->srv->rooms)))
		return -1;
	return tp_http_send(c, 200, "text/plain; version=0.0.4", out, NULL, 0);
}

/* A request with a body (POST danmaku/gifts, PUT key): headers seen; wait for the body. */
static int start_body(struct tp_conn *c, enum tp_post kind, const char *room, size_t room_len)
{
	const struct gw_config *cfg = c->wk->srv->cfg;
	char cl[32];
	char *endp;
	long long n;
	struct gw_err err;

	if (lws_hdr_copy(c->wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
		return fail(c, 411, "length_required", "POST needs a Content-Length");
	n = strtoll(cl, &endp, 10);
	if (*endp || n < 0)
		return fail(c, 400, "bad_json", "Content-Length is not a number");
	if (n > cfg->max_body_bytes) {
		gw_fail(&err, 413, "body_too_large", "body is %lld bytes; the limit is %lld", n,
			(long long)cfg->max_body_bytes);
		return tp_http_error(c, &err);
	}
	if (n == 0)
		return fail(c, 400, "bad_json", "empty body");
	if (room) {
		c->room = gw_rooms_acquire(c->wk->srv->rooms, room, room_len, &err);
		if (!c->room)
			return tp_http_error(c, &err);
	}
	c->post = kind;
	c->state = TP_POST;
	c->body_len = (size_t)n;
	gw_buf_reset(&c->body);
	return 0;
}

int tp_http_body(struct tp_conn *c, const void *in, size_t len)
{
	if (c->state != TP_POST)
		return 0;
	/* lws stops at Content-Length; the check keeps a lying peer bounded too. */
	if (c->body.len + len > c->body_len || gw_buf_append(&c->body, in, len))
		return -1;
	return 0;
}

int tp_http_body_done(struct tp_conn *c)
{
	struct json_object *obj = NULL;
	struct gw_err err;
	uint64_t seq;
	char out[48];
	int n;

	if (c->state != TP_POST) {
		/*
		 * lws 4.1.6 stays in its body state after a body ends and reports
		 * the bytes of a request pipelined behind it as another body
		 * completion; those requests are lost to us, and leaving their bytes
		 * in lws's buffer makes it retry them forever. Close the connection:
		 * a pipelining client retries what was not answered (RFC 9112,
		 * section 9.3.2); gifts are idempotent by txn.
		 */
		return -1;
	}
	if (c->post == TP_POST_GIFT)
		return tp_gift_post(c);
	if (c->post == TP_PUT_KEY)
		return tp_gift_put_key(c);
	if (gw_ingest_parse(gw_buf_data(&c->body), c->body.len, &obj, &err) ||
	    gw_ingest_danmaku(c->wk->srv->ingest, c->room, obj, &seq, &err)) {
		json_object_put(obj);
		tp_conn_release(c);
		return tp_http_defer(c, err.status, NULL, 0, &err);
	}
	json_object_put(obj);
	tp_conn_release(c);
	n = snprintf(out, sizeof(out), "{\"seq\":%llu}", (unsigned long long)seq);
	return tp_http_defer(c, 202, out, (size_t)n, NULL);
}

int tp_http_request(struct tp_conn *c, const char *path)
{
	enum method m = method_of(c->wsi);
	const char *room, *action;
	size_t room_len;

	ka_unlink(c); /* a request: not idle any more */
	tp_conn_release(c);
	c->timed_out = false;
	if (!strcmp(path, "/healthz")) {
		if (m != M_GET)
			return send_method_not_allowed(c, "GET");
		return tp_http_send_copy(c, 200, "application/json", "{\"status\":\"ok\"}", 15,
					 NULL, 0);
	}
	if (!strcmp(path, "/metrics")) {
		if (m != M_GET)
			return send_method_not_allowed(c, "GET");
		return serve_metrics(c);
	}
	if (!strcmp(path, "/v1/gifts")) {
		if (m != M_GET)
			return send_method_not_allowed(c, "GET");
		return tp_gift_catalog(c);
	}
	if (!strcmp(path, "/v1/server-key")) {
		if (m != M_GET)
			return send_method_not_allowed(c, "GET");
		return tp_gift_server_key(c);
	}
	if (!strncmp(path, "/v1/keys/", 9)) {
		const char *uid = path + 9;
		struct gw_err err;

		if (m != M_PUT)
			return send_method_not_allowed(c, "PUT");
		if (!gw_name_valid(uid, strlen(uid)))
			return fail(c, 400, "bad_uid", "uid must match [A-Za-z0-9_-]{1,64}");
		if (tp_gift_check_admin(c, &err))
			return tp_http_error(c, &err);
		snprintf(c->key_uid, sizeof(c->key_uid), "%s", uid);
		return start_body(c, TP_PUT_KEY, NULL, 0);
	}
	if (tp_static_match(path)) {
		if (m != M_GET && m != M_HEAD)
			return send_method_not_allowed(c, "GET, HEAD");
		return tp_static_serve(c, path, m == M_HEAD);
	}
	if (!tp_route_room(path, &room, &room_len, &action))
		return fail(c, 404, "not_found", "no such endpoint");
	if (strcmp(action, "danmaku") && strcmp(action, "poll") && strcmp(action, "ws") &&
	    strcmp(action, "gifts") && strcmp(action, "leaderboard") && strcmp(action, "connect"))
		return fail(c, 404, "not_found", "no such endpoint");
	if (!gw_name_valid(room, room_len))
		return fail(c, 400, "bad_room", "room names match [A-Za-z0-9_-]{1,64}");
	if (!strcmp(action, "danmaku") || !strcmp(action, "gifts")) {
		if (m != M_POST)
			return send_method_not_allowed(c, "POST");
		return start_body(c, action[0] == 'd' ? TP_POST_DANMAKU : TP_POST_GIFT, room,
				  room_len);
	}
	if (!strcmp(action, "leaderboard")) {
		if (m != M_GET)
			return send_method_not_allowed(c, "GET");
		return tp_gift_leaderboard(c, room, room_len);
	}
	if (m != M_GET)
		return send_method_not_allowed(c, "GET");
	if (!strcmp(action, "ws"))
		return fail(c, 426, "upgrade_required", "this endpoint is a WebSocket");
	if (!strcmp(action, "connect")) {
		struct gw_err err;

		c->room = gw_rooms_acquire(c->wk->srv->rooms, room, room_len, &err);
		if (!c->room)
			return tp_http_error(c, &err);
		return tp_adapt_connect(c);
	}
	return tp_http_poll(c, room, room_len);
}

int tp_http_poll(struct tp_conn *c, const char *room, size_t room_len)
{
	struct gw_err err;

	c->room = gw_rooms_acquire(c->wk->srv->rooms, room, room_len, &err);
	if (!c->room)
		return tp_http_error(c, &err);
	return tp_poll_request(c);
}

bool tp_http_gzip_ok(struct tp_conn *c)
{
	char buf[256];

	if (!c->wsi)
		return tp_h1_gzip_ok(c);
	return lws_hdr_copy(c->wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_ACCEPT_ENCODING) > 0 &&
	       tp_gzip_accepted(buf);
}
