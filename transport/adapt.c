/*
 * The transports' side of adaptive transport (gateway/clients.h): the
 * client id on requests, GET /v1/rooms/{room}/connect, 429 too_fast, and
 * batches that carry advice and respect a client's danmaku budget.
 * Worker thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/clock.h"
#include "gateway/metrics.h"
#include "transport/internal.h"

int tp_client_id(struct tp_conn *c, struct gw_err *err)
{
	char buf[80];
	int q = tp_query(c, "client", buf, sizeof(buf));
	size_t n = q > 0 ? strlen(buf) : 0;

	c->client_len = 0;
	if (q < 0 || (q > 0 && !gw_client_id_valid(buf, n)))
		return gw_fail(err, 400, "bad_client", "client must match [A-Za-z0-9_-]{1,64}");
	memcpy(c->client, buf, n);
	c->client[n] = '\0';
	c->client_len = (unsigned char)n;
	return 0;
}

int tp_adapt_connect(struct tp_conn *c)
{
	struct gw_clients *cl = c->wk->srv->clients;
	struct gw_advice adv;
	struct gw_err err;
	size_t room_len;
	const char *room;

	if (tp_client_id(c, &err))
		goto fail;
	if (!c->client_len) {
		gw_fail(&err, 400, "bad_client", "connect needs client=ID (see docs/protocol.md)");
		goto fail;
	}
	room = gw_room_name(c->room, &room_len);
	gw_clients_connect(cl, c->client, c->client_len, gw_room_rate(c->room),
			   gw_clock_mono_ms(), &adv);
	gw_buf_reset(&c->wk->out);
	if (gw_advice_json(&adv, room, room_len, c->client, c->client_len, &c->wk->out))
		return -1;
	tp_conn_release(c);
	return tp_http_send(c, 200, "application/json", &c->wk->out, NULL, 0);
fail:
	tp_conn_release(c);
	return tp_http_error(c, &err);
}

int tp_adapt_too_fast(struct tp_conn *c, const struct gw_advice *adv, int64_t retry_ms)
{
	struct gw_buf *b = &c->wk->out;
	char retry[24];
	struct tp_hdr hdr = {"retry-after:", retry};
	size_t room_len;
	const char *room = gw_room_name(c->room, &room_len);

	/* The usual error body plus the advice, so the client learns its interval. */
	gw_buf_reset(b);
	if (gw_buf_printf(b, "{\"error\":\"too_fast\",\"detail\":\"polled %lld ms too early; "
			     "wait interval_ms between polls\",\"advice\":",
			  (long long)retry_ms) ||
	    gw_advice_json(adv, room, room_len, c->client, c->client_len, b) || gw_buf_putc(b, '}'))
		return -1;
	snprintf(retry, sizeof(retry), "%lld", (long long)((retry_ms + 999) / 1000));
	gw_metric_reject("too_fast");
	tp_conn_release(c);
	return tp_http_send(c, 429, "application/json", b, &hdr, 1);
}

int tp_adapt_batch(struct tp_conn *c, enum gw_transport t, const struct gw_advice *adv,
		   struct gw_buf *out, struct gw_batch *info)
{
	struct gw_clients *cl = c->wk->srv->clients;
	const struct gw_config *cfg = c->wk->srv->cfg;
	struct gw_batch_opts opts = {.danmaku_budget = SIZE_MAX};
	struct gw_buf ab;
	size_t room_len;
	const char *room = gw_room_name(c->room, &room_len);
	int rc = -1;

	gw_buf_init(&ab, 0);
	if (c->client_len) {
		opts.danmaku_budget =
		    gw_clients_budget(cl, c->client, c->client_len, t, gw_clock_mono_ms());
		if (adv && adv->send) {
			if (gw_advice_json(adv, room, room_len, c->client, c->client_len, &ab))
				goto out;
			opts.advice = gw_buf_data(&ab);
			opts.advice_len = ab.len;
		}
	}
	rc = gw_batch_build_opts(c->room, &c->pos, (size_t)cfg->batch_max_bytes, out, info, &opts);
	if (opts.danmaku_budget != SIZE_MAX)
		gw_clients_budget_use(cl, c->client, c->client_len, t, info->danmaku);
	if (info->suppressed)
		gw_metric_add(GW_M_SUPPRESSED, (int64_t)info->suppressed);
out:
	gw_buf_free(&ab);
	return rc;
}
