/*
 * Short-poll and long-poll over HTTP. Both answer with the batch of
 * batch.c; a long-poll with nothing to send subscribes its connection to the
 * room (gw_sub with longpoll_ops) and answers when notified or when its
 * timer fires. Worker thread only.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gateway/clock.h"
#include "gateway/metrics.h"
#include "transport/internal.h"

#define container_of(p, T, m) ((T *)((char *)(p) - offsetof(T, m)))

static void lp_notify(struct gw_sub *sub)
{
	struct tp_conn *c = container_of(sub, struct tp_conn, sub);

	lws_callback_on_writable(c->wsi);
}

static const struct gw_sub_ops longpoll_ops = {.name = "longpoll", .notify = lp_notify};

/*
 * lws 4.1.6 does not notice a peer that closes or resets while a long-poll is
 * held (it stops reading once a request is complete), so the connection would
 * sit out the whole wait and the client's disconnect would go unseen. Watch
 * the socket ourselves for those few seconds: EOF or an error ends the
 * long-poll as aborted; bytes (a pipelined request) are lws's to read.
 */
static void lp_peer_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tp_conn *c = w->data;
	char b;
	ssize_t n = recv(w->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	ev_io_stop(loop, w);
	if (n <= 0) {
		c->peer_gone = true;
		lws_callback_on_writable(c->wsi);
	}
}

/* The poll body cache: the shared plain batches of shared.c, with their gzip. */
int tp_poll_worker_init(struct tp_worker *wk)
{
	unsigned n = (unsigned)wk->srv->cfg->poll_cache_entries;

	wk->poll_cache_n = 0;
	if (!n)
		return 0;
	wk->poll_cache = calloc(n, sizeof(*wk->poll_cache));
	if (!wk->poll_cache)
		return -1;
	tp_shared_init(wk->poll_cache, n);
	wk->poll_cache_n = n;
	return 0;
}

void tp_poll_worker_fini(struct tp_worker *wk)
{
	tp_shared_fini(wk->poll_cache, wk->poll_cache_n);
	free(wk->poll_cache);
	wk->poll_cache = NULL;
	wk->poll_cache_n = 0;
}

/* adv: the short-poll's advice (NULL for a long-poll, whose advice is taken now). */
static int respond_batch(struct tp_conn *c, bool longpoll, const struct gw_advice *adv)
{
	struct tp_worker *wk = c->wk;
	const struct gw_config *cfg = wk->srv->cfg;
	enum gw_transport t = longpoll ? GW_TP_LONGPOLL : GW_TP_SHORTPOLL;
	struct gw_buf *body = &wk->out;
	struct tp_hdr hdrs[2] = {{"vary:", "Accept-Encoding"}};
	size_t nh = 1;
	struct gw_batch info;
	struct gw_advice lp_adv;
	struct tp_shared_batch *e = NULL;

	if (c->lp_reported) {
		/* Advice at answer time: the wait may have been long. */
		c->lp_reported = false;
		gw_clients_poll_end(wk->srv->clients, c->client, c->client_len, false,
				    gw_room_rate(c->room), gw_clock_mono_ms(), &lp_adv);
		adv = &lp_adv;
	}
	/* Advice or a danmaku budget make this answer the client's own. */
	if (!(adv && adv->send) && !(c->client_len && gw_clients_budgeted(wk->srv->clients, t)) &&
	    tp_shared_batch(c, wk->poll_cache, wk->poll_cache_n, &e))
		return -1;
	if (e) {
		info = e->info;
		body = &e->body;
	} else {
		gw_buf_reset(&wk->out);
		if (tp_adapt_batch(c, t, adv, &wk->out, &info))
			return -1;
	}
	tp_conn_release(c);
	gw_metric_add(longpoll ? GW_M_DELIVERED_LONGPOLL : GW_M_DELIVERED_SHORTPOLL,
		      (int64_t)info.count);
	if (info.gap)
		gw_metric_add(GW_M_GAPS, 1);
	if (c->gzip && body->len >= (size_t)cfg->gzip_min_bytes) {
		struct gw_buf *z = e ? &e->gz : &wk->zout;

		if (!e || !e->gz_state) {
			gw_buf_reset(z);
			int ok = !tp_gzip(wk->gzip, gw_buf_data(body), body->len, z) &&
				 z->len < body->len;
			if (e)
				e->gz_state = ok ? 1 : -1;
			if (!ok)
				z = NULL;
		} else if (e->gz_state < 0) {
			z = NULL;
		}
		if (z) {
			gw_metric_add(GW_M_GZIP_SAVED, (int64_t)(body->len - z->len));
			body = z;
			hdrs[nh++] = (struct tp_hdr){"content-encoding:", "gzip"};
		}
	}
	gw_metric_add(longpoll ? GW_M_BYTES_LONGPOLL : GW_M_BYTES_SHORTPOLL, (int64_t)body->len);
	return tp_http_send(c, 200, "application/json", body, hdrs, nh);
}

/* Strict: digits only, no sign, no leading zeros beyond "0". */
static int parse_wait(const char *s, long long max, long long *out)
{
	long long v = 0;

	if (!*s || (s[0] == '0' && s[1]))
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
		if (v > max)
			return -1;
	}
	*out = v;
	return 0;
}

int tp_poll_request(struct tp_conn *c)
{
	const struct gw_config *cfg = c->wk->srv->cfg;
	char buf[256];
	long long wait = 0;
	struct gw_advice adv = {0};
	struct gw_err err;
	int q;

	q = tp_query(c, "wait", buf, sizeof(buf));
	if (q < 0 || (q > 0 && parse_wait(buf, cfg->longpoll_max_wait, &wait))) {
		gw_fail(&err, 400, "bad_wait", "wait must be a whole number of seconds, 0 to %lld",
			(long long)cfg->longpoll_max_wait);
		goto fail;
	}
	if (tp_client_id(c, &err) || tp_resolve_since(c, &err))
		goto fail;
	c->gzip = tp_http_gzip_ok(c);

	if (c->client_len) {
		int64_t retry_ms = 0;

		if (gw_clients_poll(c->wk->srv->clients, c->client, c->client_len, wait,
				    gw_room_rate(c->room), gw_clock_mono_ms(), &adv, &retry_ms))
			return tp_adapt_too_fast(c, &adv, retry_ms);
		c->lp_reported = wait > 0;
	}
	if (!wait) {
		gw_metric_add(GW_M_POLL_SHORT, 1);
		return respond_batch(c, false, &adv);
	}
	gw_metric_add(GW_M_POLL_LONG, 1);
	if (gw_pos_pending(c->room, &c->pos))
		return respond_batch(c, true, NULL);
	if (!c->wsi) {
		/* h1.c hands every long-poll to lws; reaching here is a bug there. */
		gw_fail(&err, 500, "internal", "long-poll on the fast path");
		goto fail;
	}

	c->state = TP_LONGPOLL;
	gw_metric_add(GW_M_CONN_LONGPOLL, 1);
	c->sub.ops = &longpoll_ops;
	gw_room_subscribe(c->room, &c->sub, c->wk->id);
	/* A publish between the check above and subscribing would not notify us. */
	if (gw_pos_pending(c->room, &c->pos))
		lws_callback_on_writable(c->wsi);
	c->peer_gone = false;
	ev_io_init(&c->lp_watch, lp_peer_cb, lws_get_socket_fd(c->wsi), EV_READ);
	c->lp_watch.data = c;
	ev_io_start(c->wk->loop, &c->lp_watch);
	lws_set_timer_usecs(c->wsi, (lws_usec_t)wait * LWS_USEC_PER_SEC);
	/* Safety net should the timer never come: lws drops the connection. */
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, (int)(wait + cfg->io_timeout));
	return 0;
fail:
	tp_conn_release(c);
	return tp_http_error(c, &err);
}

int tp_poll_writeable(struct tp_conn *c)
{
	if (c->state != TP_LONGPOLL)
		return 0;
	if (c->peer_gone)
		return -1; /* close: tp_conn_release reports the abort */
	if (!c->timed_out && !gw_pos_pending(c->room, &c->pos))
		return 0; /* woken for a room change that was not ours to send */
	lws_set_timer_usecs(c->wsi, LWS_SET_TIMER_USEC_CANCEL);
	lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0);
	return respond_batch(c, true, NULL);
}

int tp_poll_timer(struct tp_conn *c)
{
	if (c->state == TP_LONGPOLL) {
		c->timed_out = true;
		lws_callback_on_writable(c->wsi);
	}
	return 0;
}
