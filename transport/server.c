/*
 * Workers and the lws protocol callback. See server.h for the model.
 *
 * Each worker's thread runs ev_run() on its own loop until stopped; lws is
 * driven from that loop (foreign-loop mode), and so are our listener watcher,
 * the room reaper (worker 0) and the shutdown timer.
 */
#define _GNU_SOURCE /* accept4 */
#include "transport/server.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gateway/clock.h"
#include "gateway/ingest.h"
#include "gateway/log.h"
#include "gateway/metrics.h"
#include "transport/internal.h"

/* Grace period for 1001 close frames to leave before the loops stop. */
#define STOP_GRACE_S 0.5

/*
 * lws 4.1.6's libev plugin re-arms its single timer with ev_timer_set() +
 * ev_timer_start() on a watcher that may already be active, which libev
 * ignores: a new deadline earlier than the armed one (a long-poll's wait, a
 * ping, an I/O timeout) then waits for the later one. The plugin does service
 * every ripe lws timer after any I/O event, so a periodic wake of the loop
 * bounds how late an lws timer can be. One pipe write per tick per worker.
 */
#define LWS_TIMER_TICK_S 0.05

/*
 * All zero: lws runs no validity (ping) timer per connection; the vhost uses
 * this policy as given (NULL would mean lws's default, 300 s pings). WebSocket
 * pings come from ws.c's sweep.
 */
static const lws_retry_bo_t no_validity_timers;

struct tp_worker *tp_worker_of(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

/* Room waker: any thread. */
static void wake_worker(void *arg, unsigned w)
{
	struct tp_server *srv = arg;

	lws_cancel_service(srv->workers[w].ctx);
}

struct tp_answer *tp_answer_new(struct tp_conn *c)
{
	struct tp_answer *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->wk = c->wk;
	a->conn = c;
	gw_buf_init(&a->body, LWS_PRE + TP_HDR_ROOM);
	a->cnext = c->answers;
	c->answers = a;
	return a;
}

void tp_answer_free(struct tp_answer *a)
{
	gw_buf_free(&a->body);
	free(a);
}

void tp_answer_post(struct tp_answer *a)
{
	struct tp_worker *wk = a->wk;
	struct tp_answer *top = atomic_load_explicit(&wk->answers, memory_order_relaxed);

	do {
		a->next = top;
	} while (!atomic_compare_exchange_weak_explicit(&wk->answers, &top, a,
							 memory_order_release,
							 memory_order_relaxed));
	/* A non-empty stack already has a wake-up on its way; it will take this one too. */
	if (!top)
		lws_cancel_service(wk->ctx);
}

/* Worker thread: hand each arrived answer to its connection, oldest first. */
static void take_answers(struct tp_worker *wk)
{
	struct tp_answer *a = atomic_exchange_explicit(&wk->answers, NULL, memory_order_acquire);
	struct tp_answer *fifo = NULL;

	while (a) { /* the stack is newest first */
		struct tp_answer *n = a->next;
		a->next = fifo;
		fifo = a;
		a = n;
	}
	for (a = fifo; a; a = fifo) {
		fifo = a->next;
		a->arrived = true;
		if (a->conn)
			tp_gift_delivered(a); /* takes it */
		else
			tp_answer_free(a); /* its connection is gone */
	}
}

static void flush_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct tp_worker *wk = w->data;

	tp_ws_dispatch(wk); /* at once, or after the WebSocket round in progress */
}

/* Worker thread: a cancel arrived (room traffic, answers, or a stop request). */
static void on_cancel(struct tp_worker *wk)
{
	/*
	 * Room traffic is not sent at once: the first wake-up arms the flush
	 * timer and everything published until it fires leaves in one write per
	 * connection. Under load that turns one write per message into one per
	 * interval; an idle room only pays the interval once.
	 */
	if (wk->srv->cfg->flush_interval_ms == 0)
		tp_ws_dispatch(wk);
	else if (!ev_is_active(&wk->flush_w) && gw_rooms_pending(wk->srv->rooms, wk->id))
		ev_timer_start(wk->loop, &wk->flush_w);
	take_answers(wk);
	if (atomic_load_explicit(&wk->stopping, memory_order_acquire) && !wk->stop_started) {
		wk->stop_started = true;
		if (wk->lfd >= 0) {
			ev_io_stop(wk->loop, &wk->accept_w);
			close(wk->lfd);
			wk->lfd = -1;
		}
		tp_ws_shutdown(wk);
		tp_h1_close_all(wk);
		ev_timer_start(wk->loop, &wk->stop_w);
	}
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	struct tp_conn *c = user;

	/*
	 * lws calls some reasons with no session data (a request it refused
	 * before binding the protocol, the event pipe). Only these need none.
	 */
	if (!c && reason != LWS_CALLBACK_EVENT_WAIT_CANCELLED &&
	    reason != LWS_CALLBACK_WSI_CREATE && reason != LWS_CALLBACK_WSI_DESTROY &&
	    reason != LWS_CALLBACK_HTTP_CONFIRM_UPGRADE)
		return reason == LWS_CALLBACK_HTTP || reason == LWS_CALLBACK_ESTABLISHED ? -1 : 0;

	switch (reason) {
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		on_cancel(tp_worker_of(wsi));
		return 0;
	case LWS_CALLBACK_WSI_CREATE:
		/* Every adopted client connection passes here once, and WSI_DESTROY once. */
		atomic_fetch_add_explicit(&tp_worker_of(wsi)->srv->conns, 1, memory_order_relaxed);
		gw_metric_add(GW_M_CONN_OPEN, 1);
		return 0;
	case LWS_CALLBACK_HTTP:
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* lws gives each HTTP transaction (and the upgrade) fresh session data. */
		if (reason == LWS_CALLBACK_HTTP_CONFIRM_UPGRADE) {
			/* No session data yet at this point: check with a throwaway one. */
			struct tp_conn tmp = {.wsi = wsi, .wk = tp_worker_of(wsi)};
			return tp_ws_confirm(&tmp);
		}
		c->wsi = wsi;
		c->wk = tp_worker_of(wsi);
		if (reason == LWS_CALLBACK_HTTP)
			return tp_http_request(c, in);
		return tp_ws_filter(c);
	case LWS_CALLBACK_HTTP_BODY:
		return tp_http_body(c, in, len);
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return tp_http_body_done(c);
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (c->state == TP_ANSWER)
			return tp_answer_writeable(c);
		return tp_poll_writeable(c);
	case LWS_CALLBACK_TIMER:
		return tp_poll_timer(c);
	case LWS_CALLBACK_CLOSED_HTTP:
		tp_conn_release(c);
		return 0;
	case LWS_CALLBACK_ESTABLISHED:
		return tp_ws_established(c);
	case LWS_CALLBACK_RECEIVE:
		return tp_ws_receive(c, in, len);
	case LWS_CALLBACK_RECEIVE_PONG:
		tp_ws_pong(c);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return tp_ws_writeable(c);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		c->peer_closed = true;
		return 0;
	case LWS_CALLBACK_CLOSED:
		tp_ws_closed(c);
		return 0;
	case LWS_CALLBACK_HTTP_BIND_PROTOCOL:
		/* Fresh session data; after a keep-alive answer it waits on the idle list. */
		tp_http_bound(c, wsi);
		return 0;
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		/* lws is about to free this session data (keep-alive reuse, upgrade). */
		tp_conn_cleanup(c);
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		if (c)
			tp_conn_cleanup(c);
		atomic_fetch_sub_explicit(&tp_worker_of(wsi)->srv->conns, 1, memory_order_relaxed);
		gw_metric_add(GW_M_CONN_OPEN, -1);
		return 0;
	default:
		return 0;
	}
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tp_worker *wk = w->data;
	struct tp_server *srv = wk->srv;

	for (int i = 0; i < 64; i++) {
		int fd = accept4(wk->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				gw_log_warn("worker %u: accept: %s", wk->id, strerror(errno));
			return;
		}
		if (atomic_load_explicit(&srv->conns, memory_order_relaxed) >=
		    srv->cfg->max_connections) {
			static const char busy[] =
				"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
				"content-length: 77\r\nconnection: close\r\n\r\n"
				"{\"error\":\"too_many_connections\",\"detail\":\"the gateway is at capacity\"}\n";
			/* Best effort: the socket is fresh, so this small write fits its buffer. */
			if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL) < 0) {
			}
			gw_metric_reject("too_many_connections");
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (srv->cfg->poll_fast_path && !srv->cfg->tls_cert[0]) {
			tp_h1_accept(wk, fd); /* hands the connection to lws unless it polls */
			continue;
		}
		if (!lws_adopt_socket_vhost(wk->vh, fd)) {
			/* lws closed fd on failure */
			gw_log_warn("worker %u: lws could not adopt a connection", wk->id);
			continue;
		}
	}
}

static void reap_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct tp_worker *wk = w->data;
	size_t n = gw_rooms_reap(wk->srv->rooms);

	if (n)
		gw_log_debug("reclaimed %zu idle rooms", n);
	n = gw_clients_sweep(wk->srv->clients, gw_clock_mono_ms());
	if (n)
		gw_log_debug("forgot %zu client ids", n);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct tp_worker *wk = w->data;

	int64_t now = gw_clock_mono_ms();

	lws_cancel_service(wk->ctx);
	tp_http_reap_idle(wk, now);
	tp_h1_reap(wk, now);
}

static void stop_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

/*
 * reuseport: the workers' listeners. Without it: a probe bound (never
 * listening) before them, because SO_REUSEPORT would otherwise let this
 * process join another one already serving the port, and the kernel would
 * silently split the clients between two gateways.
 */
static int listen_socket(const struct gw_config *cfg, bool reuseport, char *err, size_t errlen)
{
	struct addrinfo hints = {0}, *ai = NULL;
	char port[16];
	int fd = -1, one = 1, rc;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
	snprintf(port, sizeof(port), "%lld", (long long)cfg->port);
	rc = getaddrinfo(cfg->bind[0] ? cfg->bind : NULL, port, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "--bind %s: %s", cfg->bind, gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	/* One listener per worker on the same port: the kernel spreads connections. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || (reuseport && listen(fd, 4096)))
		goto fail;
	freeaddrinfo(ai);
	return fd;
fail:
	snprintf(err, errlen, "cannot listen on %s:%s: %s", cfg->bind, port, strerror(errno));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return -1;
}

static void lws_log_to_ours(int level, const char *line)
{
	size_t n = strlen(line);

	/*
	 * lws 4.1.6 logs the routine path of lws_adopt_socket_vhost_readbuf at
	 * error level ("adopt_socket_readbuf: calling service"), once for every
	 * connection h1.c hands over; it is not an error.
	 */
	if (!strncmp(line, "adopt_socket_readbuf: calling service", 37))
		return;

	while (n && line[n - 1] == '\n')
		n--;
	gw_log(level == LLL_ERR ? GW_LOG_ERROR : GW_LOG_WARN, "lws: %.*s", (int)n, line);
}

static int worker_init(struct tp_server *srv, struct tp_worker *wk, char *err, size_t errlen)
{
	const struct gw_config *cfg = srv->cfg;
	struct lws_context_creation_info info;
	void *foreign[1];

	wk->srv = srv;
	wk->lfd = -1;
	gw_buf_init(&wk->out, LWS_PRE + TP_HDR_ROOM);
	gw_buf_init(&wk->zout, LWS_PRE + TP_HDR_ROOM);
	tp_shared_init(&wk->ws_shared, 1);
	wk->gzip = tp_gzip_new((int)cfg->gzip_level);
	wk->loop = ev_loop_new(EVFLAG_AUTO);
	if (!wk->gzip || !wk->loop || tp_poll_worker_init(wk)) {
		snprintf(err, errlen, "worker %u: cannot create event loop", wk->id);
		return -1;
	}

	memset(&info, 0, sizeof(info));
	foreign[0] = wk->loop;
	info.foreign_loops = foreign;
	info.options = LWS_SERVER_OPTION_LIBEV | LWS_SERVER_OPTION_DISABLE_IPV6 |
		       LWS_SERVER_OPTION_SKIP_SERVER_CANONICAL_NAME;
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = srv->protocols;
	info.user = wk;
	info.timeout_secs = (unsigned)cfg->io_timeout;
	/* lws holds a new connection's header table under this one, not timeout_secs. */
	info.timeout_secs_ah_idle = (unsigned)cfg->io_timeout;
	info.keepalive_timeout = (int)cfg->keepalive_timeout;
	info.retry_and_idle_policy = &no_validity_timers;
	info.alpn = "http/1.1";
	info.vhost_name = "livegate";
	if (cfg->tls_cert[0] && cfg->tls_key[0]) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = cfg->tls_cert;
		info.ssl_private_key_filepath = cfg->tls_key;
	}
	wk->ctx = lws_create_context(&info);
	if (!wk->ctx) {
		snprintf(err, errlen, "worker %u: libwebsockets context failed (TLS files?)", wk->id);
		return -1;
	}
	wk->vh = lws_get_vhost_by_name(wk->ctx, "livegate");
	if (!wk->vh) {
		snprintf(err, errlen, "worker %u: no vhost", wk->id);
		return -1;
	}
	wk->lfd = listen_socket(cfg, true, err, errlen);
	if (wk->lfd < 0)
		return -1;
	ev_io_init(&wk->accept_w, accept_cb, wk->lfd, EV_READ);
	wk->accept_w.data = wk;
	ev_io_start(wk->loop, &wk->accept_w);
	ev_timer_init(&wk->tick_w, tick_cb, LWS_TIMER_TICK_S, LWS_TIMER_TICK_S);
	wk->tick_w.data = wk;
	ev_timer_start(wk->loop, &wk->tick_w);
	ev_timer_init(&wk->flush_w, flush_cb, (double)cfg->flush_interval_ms / 1000, 0.);
	wk->flush_w.data = wk;
	tp_ws_worker_init(wk);
	tp_http_worker_init(wk);
	ev_timer_init(&wk->stop_w, stop_cb, STOP_GRACE_S, 0.);
	wk->stop_w.data = wk;
	if (wk->id == 0) {
		double every = (double)cfg->window / 4;
		ev_timer_init(&wk->reap_w, reap_cb, every < 1 ? 1 : every, every < 1 ? 1 : every);
		wk->reap_w.data = wk;
		ev_timer_start(wk->loop, &wk->reap_w);
	}
	return 0;
}

static void worker_fini(struct tp_worker *wk)
{
	/* Answers that arrived after the loop stopped have no connection left. */
	struct tp_answer *a = atomic_exchange(&wk->answers, NULL);
	while (a) {
		struct tp_answer *n = a->next;
		tp_answer_free(a);
		a = n;
	}
	if (wk->lfd >= 0)
		close(wk->lfd);
	if (wk->loop)
		tp_h1_close_all(wk);
	if (wk->ctx)
		lws_context_destroy(wk->ctx);
	if (wk->loop)
		ev_loop_destroy(wk->loop);
	tp_gzip_free(wk->gzip);
	tp_poll_worker_fini(wk);
	gw_buf_free(&wk->out);
	gw_buf_free(&wk->zout);
	tp_shared_fini(&wk->ws_shared, 1);
}

static void *worker_main(void *arg)
{
	struct tp_worker *wk = arg;

	gw_metrics_bind_thread(wk->id + 1);
	ev_run(wk->loop, 0);
	gw_ingest_thread_exit();
	return NULL;
}

struct tp_server *tp_server_start(const struct gw_config *cfg, struct gw_rooms *rooms,
				  struct gw_ingest *ingest, struct gw_gifts *gifts,
				  const char *admin_token, char *err, size_t errlen)
{
	struct tp_server *srv = calloc(1, sizeof(*srv));
	unsigned i, started = 0;

	if (!srv) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	srv->cfg = cfg;
	srv->rooms = rooms;
	srv->ingest = ingest;
	srv->gifts = gifts;
	srv->clients = gw_clients_new(cfg);
	if (!srv->clients) {
		snprintf(err, errlen, "out of memory");
		free(srv);
		return NULL;
	}
	srv->admin_token = admin_token;
	srv->nworkers = (unsigned)cfg->workers; /* main resolved 0 to the core count */
	srv->protocols[0] = (struct lws_protocols){
		.name = "livegate",
		.callback = callback,
		.per_session_data_size = sizeof(struct tp_conn),
		/*
		 * lws keeps one rx buffer of this size per WebSocket for as long as it is
		 * open, and hands us what arrives in pieces of at most this size (we
		 * reassemble messages ourselves). 128 bytes still holds any control frame
		 * whole (payload <= 125) and keeps an idle WebSocket near 2 KB of
		 * userspace: RSS growth per connection measured 2.85 KB at 1024, 2.3 KB
		 * at 512, 2.06 KB at 256, 2.0 KB at 128 (docs/benchmarks.md).
		 */
		.rx_buffer_size = 128,
		/* lws caps each send at tx_packet_size (else rx_buffer_size): let batches go whole. */
		.tx_packet_size = 65536,
	};
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_to_ours);

	srv->workers = calloc(srv->nworkers, sizeof(*srv->workers));
	if (!srv->workers) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* The port must be free of other processes before our listeners share it. */
	int probe = listen_socket(cfg, false, err, errlen);
	if (probe < 0)
		goto fail;
	close(probe);
	for (i = 0; i < srv->nworkers; i++) {
		srv->workers[i].id = i;
		if (worker_init(srv, &srv->workers[i], err, errlen))
			goto fail;
	}
	gw_rooms_set_waker(rooms, wake_worker, srv);
	for (i = 0; i < srv->nworkers; i++) {
		if (pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i])) {
			snprintf(err, errlen, "cannot start worker thread");
			goto fail;
		}
		started++;
	}
	gw_log_info("listening on %s://%s:%lld with %u worker%s", cfg->tls_cert[0] ? "https" : "http",
		    cfg->bind, (long long)cfg->port, srv->nworkers, srv->nworkers == 1 ? "" : "s");
	return srv;
fail:
	for (i = 0; i < started; i++) {
		atomic_store(&srv->workers[i].stopping, 1);
		lws_cancel_service(srv->workers[i].ctx);
		pthread_join(srv->workers[i].thread, NULL);
	}
	for (i = 0; srv->workers && i < srv->nworkers; i++)
		worker_fini(&srv->workers[i]);
	free(srv->workers);
	gw_clients_free(srv->clients);
	free(srv);
	return NULL;
}

void tp_server_stop(struct tp_server *srv)
{
	unsigned i;

	if (!srv)
		return;
	for (i = 0; i < srv->nworkers; i++) {
		atomic_store_explicit(&srv->workers[i].stopping, 1, memory_order_release);
		lws_cancel_service(srv->workers[i].ctx);
	}
	for (i = 0; i < srv->nworkers; i++)
		pthread_join(srv->workers[i].thread, NULL);
}

void tp_server_free(struct tp_server *srv)
{
	if (!srv)
		return;
	for (unsigned i = 0; i < srv->nworkers; i++)
		worker_fini(&srv->workers[i]);
	free(srv->workers);
	gw_clients_free(srv->clients);
	free(srv);
}
