/*
 * The short-poll fast path: a minimal HTTP/1.1 server for the one request
 * that dominates a hot room's polling, GET /v1/rooms/{room}/poll without a
 * long-poll wait. libwebsockets 4.1.6 spends ~2.6 us of a ~10 us short-poll
 * in its byte-at-a-time header parser and per-transaction bookkeeping
 * (docs/benchmarks.md, "Short-poll: our own HTTP/1.1 for polls"); here a
 * request costs one recv, a memchr per header line and one send.
 *
 * Every plain-HTTP connection starts here (server.c's accept). Its first
 * request is peeked at (MSG_PEEK): anything but a short-poll (a WebSocket
 * upgrade, a POST, a long-poll, percent-encoding, an odd header) goes to lws
 * with its bytes still in the socket, and lws owns the connection for good.
 * A connection that short-polls stays while it does; at its first request of
 * another kind, read already, it goes to lws with those bytes
 * (lws_adopt_socket_vhost_readbuf) when the request has no body, and is
 * closed unanswered when it has one (h1_serve says why). So lws's parser
 * stays the judge of everything unusual, and this file only has to be right
 * about the narrow shape it accepts (tp_h1_parse).
 *
 * The poll itself is poll.c's code: a poller's struct tp_h1_poller embeds a
 * struct tp_conn whose wsi is NULL, and http.c's three lws touch points
 * (tp_query, tp_http_gzip_ok, tp_http_send) come here for such a connection.
 *
 * Timeouts: a connection is on one of two lists of its worker, each ordered
 * by the time it joined (monotonic): `busy` (a request partly read, or an
 * answer partly written; io_timeout) or `idle` (between requests;
 * keepalive_timeout). The tick closes expired ones from the heads, O(1) per
 * tick plus one step per close, as http.c does for lws's keep-alive
 * connections.
 *
 * Threads: worker thread only; every struct tp_h1 belongs to the worker that
 * accepted it.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gateway/clock.h"
#include "gateway/log.h"
#include "gateway/metrics.h"
#include "transport/internal.h"

#define container_of(p, T, m) ((T *)((char *)(p) - offsetof(T, m)))

/*
 * Every plain-HTTP connection has one of these from accept until lws takes
 * it or it closes; kept small, because every WebSocket passes through it
 * (a 620-byte one left ~40 B of heap holes per idle WebSocket behind it).
 * The poller's part is allocated at its first short-poll.
 */
struct tp_h1 {
	struct tp_worker *wk;
	struct tp_h1_poller *p; /* NULL until the first short-poll */
	struct tp_h1 *prev, *next; /* on wk->h1_busy or wk->h1_idle */
	struct tp_h1_list *list;
	int64_t since_ms;
	ev_io io;
	int fd;
	bool close_after; /* close once out is written */
	bool restart;     /* busy again for a new reason: restart its io_timeout */
};

struct tp_h1_poller {
	struct tp_conn c; /* c.wsi is NULL: http.c routes its lws calls here */
	struct tp_h1 *h;
	struct gw_buf in;  /* bytes read and not consumed; empty between whole requests */
	struct gw_buf out; /* the unsent tail of an answer */
	struct tp_h1_req req; /* the request being answered; points into the read bytes */
};

/* ---- the parser (pure; tests/unit/transport/h1_test.c) ---- */

/*
 * Query bytes taken as they are. '%' and '+' would need decoding (lws's
 * job), '#' and controls are not valid in a request target.
 */
static bool query_char(char ch)
{
	return ch > ' ' && ch < 0x7f && ch != '%' && ch != '+' && ch != '#';
}

static bool token_is(const char *p, size_t n, const char *lit)
{
	return strlen(lit) == n && !strncasecmp(p, lit, n);
}

/* Does the comma-separated header value v[0..n) list token lit? */
static bool list_has(const char *v, size_t n, const char *lit)
{
	const char *end = v + n;

	while (v < end) {
		const char *comma = memchr(v, ',', (size_t)(end - v)), *e = comma ? comma : end;
		const char *s = v;

		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (token_is(s, (size_t)(e - s), lit))
			return true;
		v = comma ? comma + 1 : end;
	}
	return false;
}

/* One header field, its value without the surrounding blanks. */
struct h1_field {
	const char *name, *value;
	size_t name_len, value_len;
};

/*
 * The header line starting at *p (just after the previous line's LF), in
 * bytes ending at end. 1: a field in *f; 0: the empty line that ends the
 * head; both move *p past the line. -1: not a line this file accepts (bare
 * LF, folding, no colon, blank before it, NUL); -2: the line is incomplete.
 */
static int next_field(const char **p, const char *end, struct h1_field *f)
{
	const char *s = *p, *eol = memchr(s, '\n', (size_t)(end - s)), *colon, *v, *ve;

	if (!eol)
		return -2;
	if (eol == s || eol[-1] != '\r')
		return -1;
	*p = eol + 1;
	if (eol == s + 1)
		return 0;
	colon = memchr(s, ':', (size_t)(eol - s));
	if (!colon || colon == s || *s == ' ' || *s == '\t' || colon[-1] == ' ')
		return -1;
	for (v = colon + 1; v < eol - 1 && (*v == ' ' || *v == '\t'); v++)
		;
	for (ve = eol - 1; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
		;
	if (memchr(v, '\0', (size_t)(ve - v)))
		return -1;
	*f = (struct h1_field){s, v, (size_t)(colon - s), (size_t)(ve - v)};
	return 1;
}

/* Does this field announce a request body (Transfer-Encoding, Content-Length not 0)? */
static bool field_means_body(const struct h1_field *f)
{
	size_t i = 0;

	if (token_is(f->name, f->name_len, "transfer-encoding"))
		return true;
	if (!token_is(f->name, f->name_len, "content-length"))
		return false;
	while (i < f->value_len && f->value[i] == '0')
		i++;
	return !f->value_len || i < f->value_len;
}

/*
 * A long-poll (wait=N, N > 0) is lws's: it holds the connection with lws's
 * timers and writable callbacks. A malformed wait is ours (poll.c answers
 * 400 before anything waits).
 */
static bool wants_wait(const char *q, size_t qlen)
{
	char v[32];
	int n = tp_h1_query_get(q, qlen, "wait", v, sizeof(v));
	bool nonzero = false;

	if (n <= 0)
		return n < 0; /* absent: no; too long: let lws judge it */
	for (const char *s = v; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		nonzero |= *s != '0';
	}
	return nonzero;
}

int tp_h1_parse(const char *buf, size_t len, struct tp_h1_req *r)
{
	static const char get[] = "GET /v1/rooms/";
	const char *end = buf + len, *p, *eol, *slash;
	struct h1_field f;
	size_t n;
	int rc;

	memset(r, 0, sizeof(*r));
	/* Decide as early as the bytes allow, so other requests reach lws at once. */
	n = len < sizeof(get) - 1 ? len : sizeof(get) - 1;
	if (memcmp(buf, get, n))
		return TP_H1_LWS;
	eol = memchr(buf, '\n', len);
	if (!eol)
		return len >= TP_H1_MAX ? TP_H1_LWS : TP_H1_MORE;
	/* Request line: GET /v1/rooms/{room}/poll[?query] HTTP/1.x CRLF */
	p = buf + sizeof(get) - 1;
	slash = memchr(p, '/', (size_t)(eol - p));
	if (!slash || !gw_name_valid(p, (size_t)(slash - p)) || eol - slash < 5 ||
	    memcmp(slash, "/poll", 5))
		return TP_H1_LWS;
	r->room = p;
	r->room_len = (size_t)(slash - p);
	p = slash + 5;
	if (*p == '?') {
		r->query = ++p;
		while (p < eol && query_char(*p))
			p++;
		r->query_len = (size_t)(p - r->query);
	}
	if (eol - p != 10 || memcmp(p, " HTTP/1.", 8) || (p[8] != '0' && p[8] != '1') ||
	    p[9] != '\r')
		return TP_H1_LWS;
	r->http10 = p[8] == '0';
	r->keep_alive = !r->http10;
	if (r->query && wants_wait(r->query, r->query_len))
		return TP_H1_LWS;

	for (p = eol + 1; (rc = next_field(&p, end, &f)) > 0;) {
		if (field_means_body(&f) || token_is(f.name, f.name_len, "upgrade") ||
		    token_is(f.name, f.name_len, "expect"))
			return TP_H1_LWS; /* a GET with a body, or more than a poll */
		if (token_is(f.name, f.name_len, "accept-encoding")) {
			if (r->accept_encoding)
				return TP_H1_LWS; /* twice: how to merge them is lws's call */
			r->accept_encoding = f.value;
			r->ae_len = f.value_len;
		} else if (token_is(f.name, f.name_len, "connection")) {
			if (list_has(f.value, f.value_len, "upgrade"))
				return TP_H1_LWS;
			if (list_has(f.value, f.value_len, "close"))
				r->keep_alive = false;
			else if (list_has(f.value, f.value_len, "keep-alive"))
				r->keep_alive = true;
		}
	}
	if (rc == -2)
		return len >= TP_H1_MAX ? TP_H1_LWS : TP_H1_MORE;
	r->len = (size_t)(p - buf);
	if (rc < 0 || r->len > TP_H1_MAX)
		return TP_H1_LWS;
	return TP_H1_OURS;
}

int tp_h1_query_get(const char *q, size_t qlen, const char *name, char *buf, size_t buflen)
{
	const char *end = q + qlen;
	size_t nl = strlen(name);

	while (q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q)), *e = amp ? amp : end;
		size_t n = (size_t)(e - q);

		if ((n == nl || (n > nl && q[nl] == '=')) && !memcmp(q, name, nl)) {
			size_t vl = n > nl ? n - nl - 1 : 0; /* "?since" without '=': empty */

			if (vl >= buflen)
				return -1;
			memcpy(buf, q + (n > nl ? nl + 1 : n), vl);
			buf[vl] = '\0';
			return 1;
		}
		q = amp ? amp + 1 : end;
	}
	return 0;
}

/*
 * Does the request head at buf[0..len) announce a body? -1 the head is
 * incomplete, 0 no body (or a malformed head: lws will refuse it), 1 a
 * body, 2 longer than TP_H1_MAX.
 */
static int head_body(const char *buf, size_t len)
{
	const char *end = buf + len, *p = memchr(buf, '\n', len);
	struct h1_field f;
	int rc = -2;

	if (p)
		for (p++; (rc = next_field(&p, end, &f)) > 0;)
			if (field_means_body(&f))
				return 1;
	if (rc == -2)
		return len >= TP_H1_MAX ? 2 : -1;
	return 0;
}

/* ---- connections ---- */

static struct tp_h1_poller *poller_of(struct tp_conn *c)
{
	return container_of(c, struct tp_h1_poller, c);
}

static void list_del(struct tp_h1 *h)
{
	struct tp_h1_list *l = h->list;

	if (!l)
		return;
	if (h->prev)
		h->prev->next = h->next;
	else
		l->head = h->next;
	if (h->next)
		h->next->prev = h->prev;
	else
		l->tail = h->prev;
	h->prev = h->next = NULL;
	h->list = NULL;
}

/* Append h to l (moving it from its list), timed from now. */
static void list_put(struct tp_h1 *h, struct tp_h1_list *l)
{
	list_del(h);
	h->since_ms = gw_clock_mono_ms();
	h->prev = l->tail;
	if (l->tail)
		l->tail->next = h;
	else
		l->head = h;
	l->tail = h;
	h->list = l;
}

/* Forget h without touching its socket (closed or handed over by the caller). */
static void h1_free(struct tp_h1 *h)
{
	struct tp_worker *wk = h->wk;
	struct tp_h1_poller *p = h->p;

	ev_io_stop(wk->loop, &h->io);
	list_del(h);
	if (p) {
		tp_conn_cleanup(&p->c);
		gw_buf_free(&p->in);
		gw_buf_free(&p->out);
		free(p);
	}
	free(h);
	atomic_fetch_sub_explicit(&wk->srv->conns, 1, memory_order_relaxed);
	gw_metric_add(GW_M_CONN_OPEN, -1);
}

static void h1_close(struct tp_h1 *h)
{
	int fd = h->fd;

	h1_free(h);
	close(fd);
}

/*
 * Give the socket and the bytes read so far (data[0..len), which lws copies)
 * to lws, which owns the connection from now on.
 */
static void h1_handover(struct tp_h1 *h, const char *data, size_t len)
{
	struct tp_worker *wk = h->wk;
	struct gw_buf in = {0};
	int fd = h->fd;

	if (h->p) { /* data may point into p->in: kept until lws copied it */
		in = h->p->in;
		gw_buf_init(&h->p->in, 0);
	}
	/* Uncounted here: lws counts the connection again when it creates its wsi. */
	h1_free(h);
	if (len)
		gw_metric_add(GW_M_H1_HANDOVERS, 1);
	if (!lws_adopt_socket_vhost_readbuf(wk->vh, fd, data, len))
		gw_log_warn("worker %u: lws could not adopt a connection", wk->id); /* fd closed */
	gw_buf_free(&in);
}

/* Send as much of data[0..len) as the socket takes; keep the rest in p->out. 0 or -1. */
static int h1_write(struct tp_h1_poller *p, const char *data, size_t len)
{
	while (len) {
		ssize_t n = send(p->h->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -1;
			break;
		}
		data += n;
		len -= (size_t)n;
	}
	if (len && (p->out.len || gw_buf_append(&p->out, data, len)))
		return -1; /* one answer at a time: nothing may be pending already */
	return 0;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 202: return "Accepted";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 413: return "Payload Too Large";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

int tp_h1_send(struct tp_conn *c, int status, const char *ctype, struct gw_buf *body,
	       const struct tp_hdr *hdrs, size_t nhdrs)
{
	struct tp_h1_poller *p = poller_of(c);
	struct tp_h1 *h = p->h;
	char hdr[TP_HDR_ROOM], *start;
	size_t blen = body ? body->len : 0, hlen;
	int n;

	h->close_after = !p->req.keep_alive;
	n = snprintf(hdr, sizeof(hdr),
		     "HTTP/1.%c %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
		     "cache-control: no-store\r\n",
		     p->req.http10 ? '0' : '1', status, reason(status), ctype, blen);
	for (size_t i = 0; i < nhdrs && n > 0 && (size_t)n < sizeof(hdr); i++)
		n += snprintf(hdr + n, sizeof(hdr) - (size_t)n, "%s %s\r\n", hdrs[i].name,
			      hdrs[i].value);
	if (n > 0 && (size_t)n < sizeof(hdr))
		n += snprintf(hdr + n, sizeof(hdr) - (size_t)n, "%s\r\n",
			      h->close_after ? (p->req.http10 ? "" : "connection: close\r\n")
					     : (p->req.http10 ? "connection: keep-alive\r\n" : ""));
	if (n <= 0 || (size_t)n >= sizeof(hdr))
		return -1;
	hlen = (size_t)n;
	if (!body || !body->base)
		return h1_write(p, hdr, hlen);
	/* The body keeps TP_HDR_ROOM spare bytes in front: one send for both. */
	start = gw_buf_data(body) - hlen;
	memcpy(start, hdr, hlen);
	return h1_write(p, start, hlen + blen);
}

int tp_h1_query(struct tp_conn *c, const char *name, char *buf, size_t buflen)
{
	struct tp_h1_poller *p = poller_of(c);

	return tp_h1_query_get(p->req.query, p->req.query_len, name, buf, buflen);
}

bool tp_h1_gzip_ok(struct tp_conn *c)
{
	struct tp_h1_poller *p = poller_of(c);
	char v[256];

	if (!p->req.accept_encoding || p->req.ae_len >= sizeof(v))
		return false;
	memcpy(v, p->req.accept_encoding, p->req.ae_len);
	v[p->req.ae_len] = '\0';
	return tp_gzip_accepted(v);
}

/*
 * Answer the whole requests in data[0..len), in order. Returns the bytes
 * consumed, or -1 when h was closed or handed over (h is gone then). Stops
 * early while an answer waits to be written.
 */
static ssize_t h1_serve(struct tp_h1 *h, const char *data, size_t len)
{
	struct tp_h1_poller *p = h->p;
	size_t used = 0;

	while (used < len && !p->out.len && !h->close_after) {
		struct tp_h1_req *r = &p->req;
		int rc = tp_h1_parse(data + used, len - used, r);

		if (rc == TP_H1_MORE)
			break;
		if (rc == TP_H1_LWS) {
			/*
			 * Read already, so lws must get the bytes with the socket, and
			 * lws 4.1.6 takes such bytes for a request body too when the
			 * request has one (lws_http_action feeds its buflist, headers
			 * and all, to the body): only a request without a body can
			 * go. One with a body is answered by nobody: the connection
			 * closes and the client sends it again on a new one, as for
			 * any keep-alive race (RFC 9112, 9.3.1; curl does); there the
			 * first request is peeked at and goes to lws untouched.
			 */
			int b = head_body(data + used, len - used);

			if (b < 0)
				break; /* the rest of the head first */
			if (b == 1) {
				gw_metric_add(GW_M_H1_BODY_CLOSES, 1);
				h1_close(h);
				return -1;
			}
			h1_handover(h, data + used, len - used);
			return -1;
		}
		gw_metric_add(GW_M_H1_REQUESTS, 1);
		p->c.timed_out = false;
		if (tp_http_poll(&p->c, r->room, r->room_len)) {
			h1_close(h);
			return -1;
		}
		used += r->len;
		h->restart = true; /* what is left is a new request, or an answer's tail */
	}
	return (ssize_t)used;
}

/* Where h waits now: for its answer's tail to leave, for more bytes, or idle. */
static void h1_park(struct tp_h1 *h)
{
	struct tp_worker *wk = h->wk;
	size_t out = h->p ? h->p->out.len : 0, in = h->p ? h->p->in.len : 0;
	int events = out ? EV_WRITE : EV_READ;

	if ((h->io.events & (EV_READ | EV_WRITE)) != events) {
		ev_io_stop(wk->loop, &h->io);
		ev_io_set(&h->io, h->fd, events);
		ev_io_start(wk->loop, &h->io);
	}
	/*
	 * Idle is timed from the last answer. Busy is timed from when the
	 * request began (more bytes of it do not help a slow sender) or from
	 * the last progress of a pending write.
	 */
	if (!out && !in)
		list_put(h, &wk->h1_idle);
	else if (h->list != &wk->h1_busy || h->restart)
		list_put(h, &wk->h1_busy);
	h->restart = false;
}

/*
 * The first bytes of a connection, looked at without reading them: one that
 * is not a short-poll goes to lws with its bytes still in the socket, where
 * lws reads them as from any connection it accepted. A short-poll (or the
 * start of one) makes h a poller. 0: read on; -1: h is gone or nothing came.
 */
static int h1_first(struct tp_h1 *h)
{
	struct tp_worker *wk = h->wk;
	struct tp_h1_req r;
	ssize_t n;

	do
		n = recv(h->fd, wk->h1_rx, TP_H1_MAX, MSG_PEEK | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return -1;
	if (n <= 0) {
		h1_close(h);
		return -1;
	}
	if (tp_h1_parse(wk->h1_rx, (size_t)n, &r) == TP_H1_LWS) {
		h1_handover(h, NULL, 0);
		return -1;
	}
	h->p = calloc(1, sizeof(*h->p));
	if (!h->p) {
		h1_close(h);
		return -1;
	}
	h->p->h = h;
	h->p->c.wk = wk; /* c.wsi stays NULL; calloc'd buffers are empty ones */
	return 0;
}

static void h1_read(struct tp_h1 *h)
{
	struct tp_worker *wk = h->wk;
	struct tp_h1_poller *p;
	char *data;
	size_t len;
	ssize_t n, used;

	/* Later requests cost one recv: the connection has shown what it is. */
	if (!h->p && h1_first(h))
		return;
	p = h->p;
	if (!p->in.len) {
		data = wk->h1_rx;
	} else {
		if (gw_buf_reserve(&p->in, TP_H1_MAX)) {
			h1_close(h);
			return;
		}
		data = gw_buf_data(&p->in) + p->in.len;
	}
	do
		n = recv(h->fd, data, TP_H1_MAX, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		h1_close(h); /* EOF or reset */
		return;
	}
	if (p->in.len) {
		p->in.len += (size_t)n;
		data = gw_buf_data(&p->in);
		len = p->in.len;
	} else {
		len = (size_t)n;
	}
	used = h1_serve(h, data, len);
	if (used < 0)
		return;
	if (data == wk->h1_rx) {
		if ((size_t)used < len && gw_buf_append(&p->in, data + used, len - (size_t)used)) {
			h1_close(h);
			return;
		}
	} else {
		memmove(data, data + used, len - (size_t)used);
		p->in.len = len - (size_t)used;
	}
	if (h->close_after && !p->out.len) {
		h1_close(h);
		return;
	}
	h1_park(h);
}

static void h1_flush(struct tp_h1 *h)
{
	struct tp_h1_poller *p = h->p;
	struct gw_buf pending = p->out;
	ssize_t used;

	/* Send the tail: h1_write keeps what is still left in a fresh p->out. */
	gw_buf_init(&p->out, 0);
	if (h1_write(p, gw_buf_data(&pending), pending.len)) {
		gw_buf_free(&pending);
		h1_close(h);
		return;
	}
	h->restart = p->out.len < pending.len; /* progress */
	gw_buf_free(&pending);
	if (p->out.len) {
		h1_park(h);
		return;
	}
	if (h->close_after) {
		h1_close(h);
		return;
	}
	/* Requests that arrived behind the answer (pipelined) are already read. */
	if (p->in.len) {
		used = h1_serve(h, gw_buf_data(&p->in), p->in.len);
		if (used < 0)
			return;
		memmove(gw_buf_data(&p->in), gw_buf_data(&p->in) + used, p->in.len - (size_t)used);
		p->in.len -= (size_t)used;
		if (h->close_after && !p->out.len) {
			h1_close(h);
			return;
		}
	}
	h1_park(h);
}

static void h1_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tp_h1 *h = w->data;

	if (revents & EV_WRITE)
		h1_flush(h);
	else if (revents & EV_READ)
		h1_read(h);
}

void tp_h1_accept(struct tp_worker *wk, int fd)
{
	struct tp_h1 *h = calloc(1, sizeof(*h));

	if (!h) {
		close(fd);
		return;
	}
	h->fd = fd;
	h->wk = wk;
	atomic_fetch_add_explicit(&wk->srv->conns, 1, memory_order_relaxed);
	gw_metric_add(GW_M_CONN_OPEN, 1);
	ev_io_init(&h->io, h1_io_cb, fd, EV_READ);
	h->io.data = h;
	ev_io_start(wk->loop, &h->io);
	list_put(h, &wk->h1_busy); /* the first request is due within io_timeout */
}

void tp_h1_reap(struct tp_worker *wk, int64_t now_ms)
{
	int64_t busy_ms = wk->srv->cfg->io_timeout * 1000;
	int64_t idle_ms = wk->srv->cfg->keepalive_timeout * 1000;

	while (wk->h1_busy.head && now_ms - wk->h1_busy.head->since_ms >= busy_ms)
		h1_close(wk->h1_busy.head);
	while (wk->h1_idle.head && now_ms - wk->h1_idle.head->since_ms >= idle_ms)
		h1_close(wk->h1_idle.head);
}

void tp_h1_close_all(struct tp_worker *wk)
{
	while (wk->h1_busy.head)
		h1_close(wk->h1_busy.head);
	while (wk->h1_idle.head)
		h1_close(wk->h1_idle.head);
}
