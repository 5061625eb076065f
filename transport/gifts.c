/*
 * Gift endpoints: the catalog, the server key, key registration, sending
 * (HTTP and the WebSocket op) and leaderboards. A send's answer comes back
 * from a gift checker or the journal's thread as a struct tp_answer (see
 * internal.h); the
 * worker delivers it to the connection if that is still open. Worker thread,
 * except gift_done.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/sign.h"
#include "gateway/catalog.h"
#include "gateway/gift.h"
#include "gateway/gifts.h"
#include "gateway/ingest.h"
#include "gateway/json.h"
#include "gateway/metrics.h"
#include "transport/internal.h"

/* A gift checker or the journal thread: fill the answer and send it back to its worker. */
static void gift_done(void *arg, int status, const char *receipt, size_t len,
		      const struct gw_err *err)
{
	struct tp_answer *a = arg;

	if (!status && !gw_buf_append(&a->body, receipt, len)) {
		a->status = 200;
	} else {
		a->status = status ? err->status : 503;
		if (status)
			a->err = *err;
		else
			gw_fail(&a->err, 503, "no_memory", "out of memory");
	}
	tp_answer_post(a);
}

static void answer_detach(struct tp_conn *c, struct tp_answer *a)
{
	for (struct tp_answer **pp = &c->answers; *pp; pp = &(*pp)->cnext)
		if (*pp == a) {
			*pp = a->cnext;
			break;
		}
	a->conn = NULL;
}

/* Build the WebSocket reply for an answer into b. */
static int ws_frame(const struct tp_answer *a, struct gw_buf *b)
{
	int rc = 0;

	if (a->status == 200) {
		gw_buf_reset(b);
		rc |= gw_buf_puts(b, "{\"op\":\"ack\",\"id\":");
		rc |= gw_buf_puts(b, a->ws_id);
		rc |= gw_buf_puts(b, ",\"receipt\":");
		rc |= gw_buf_append(b, gw_buf_data(&a->body), a->body.len);
		rc |= gw_buf_putc(b, '}');
		return rc ? -1 : 0;
	}
	return tp_ws_error_frame(b, a->ws_id, &a->err);
}

void tp_gift_delivered(struct tp_answer *a)
{
	struct tp_conn *c = a->conn;

	if (c->state == TP_WS) {
		answer_detach(c, a);
		if (a->status != 200)
			gw_metric_reject(a->err.code);
		if (!ws_frame(a, &c->wk->zout))
			tp_ws_reply(c, &c->wk->zout);
		tp_answer_free(a);
		return;
	}
	/* HTTP: it stays on c's list; tp_answer_writeable sends it. */
	lws_callback_on_writable(c->wsi);
}

/* POST /v1/rooms/{room}/gifts: the body has arrived; c->room is held. */
int tp_gift_post(struct tp_conn *c)
{
	struct json_object *obj = NULL;
	struct tp_answer *a = NULL;
	struct gw_err err;
	int rc;

	if (gw_ingest_parse(gw_buf_data(&c->body), c->body.len, &obj, &err))
		goto refuse;
	a = tp_answer_new(c);
	if (!a) {
		gw_fail(&err, 503, "no_memory", "out of memory");
		goto refuse;
	}
	rc = gw_gifts_send(c->wk->srv->gifts, c->room, obj, gift_done, a, &err);
	json_object_put(obj);
	obj = NULL;
	if (rc == 0) {
		/* gift_done owns a now; the service holds its own room reference. */
		gw_room_release(c->room);
		c->room = NULL;
		gw_buf_reset(&c->body);
		c->state = TP_ANSWER;
		return 0;
	}
refuse:
	json_object_put(obj);
	if (a) {
		answer_detach(c, a);
		tp_answer_free(a);
	}
	tp_conn_release(c);
	return tp_http_defer(c, err.status, NULL, 0, &err);
}

/* Send a WebSocket gift op: obj (json-c) or g (already parsed) is the request. */
static int ws_send(struct tp_conn *c, struct json_object *obj, const struct gw_gift *g,
		   const char *id)
{
	struct tp_answer *a = tp_answer_new(c);
	struct gw_gifts *gs = c->wk->srv->gifts;
	int rc;

	if (!a)
		return -1;
	/* A WebSocket answer never becomes an HTTP body: no header room (a small allocation). */
	gw_buf_init(&a->body, 0);
	snprintf(a->ws_id, sizeof(a->ws_id), "%s", id);
	rc = g ? gw_gifts_send_gift(gs, c->room, g, gift_done, a, &a->err)
	       : gw_gifts_send(gs, c->room, obj, gift_done, a, &a->err);
	if (rc == 0)
		return 0; /* the answer comes back through tp_gift_delivered */
	answer_detach(c, a);
	a->status = a->err.status;
	gw_metric_reject(a->err.code);
	rc = ws_frame(a, &c->wk->zout) ? -1 : tp_ws_reply(c, &c->wk->zout);
	tp_answer_free(a);
	return rc;
}

int tp_ws_gift(struct tp_conn *c, struct json_object *obj, const char *id)
{
	return ws_send(c, obj, NULL, id);
}

bool tp_ws_gift_plain(struct tp_conn *c, const char *msg, size_t len, int *rc)
{
	struct gw_gift g;
	char id[sizeof(((struct tp_answer *)0)->ws_id)];

	if (!gw_gift_parse_op(msg, len, &g, id, sizeof(id)))
		return false;
	*rc = ws_send(c, NULL, &g, id);
	return true;
}

/* PUT /v1/keys/{uid}: body arrived. */
int tp_gift_put_key(struct tp_conn *c)
{
	struct gw_err err;
	char out[128];
	int n;

	if (gw_gifts_put_key(c->wk->srv->gifts, c->key_uid, strlen(c->key_uid),
			     gw_buf_data(&c->body), c->body.len, &err)) {
		tp_conn_release(c);
		return tp_http_defer(c, err.status, NULL, 0, &err);
	}
	tp_conn_release(c);
	n = snprintf(out, sizeof(out), "{\"uid\":\"%s\",\"status\":\"stored\"}", c->key_uid);
	return tp_http_defer(c, 200, out, (size_t)n, NULL);
}

/* Authorization: Bearer <admin_token>, compared in constant time. */
int tp_gift_check_admin(struct tp_conn *c, struct gw_err *err)
{
	const char *want = c->wk->srv->admin_token;
	char got[512];
	int n;

	if (!want || !want[0])
		return gw_fail(err, 403, "admin_disabled", "no admin token is configured");
	n = lws_hdr_copy(c->wsi, got, sizeof(got), WSI_TOKEN_HTTP_AUTHORIZATION);
	if (n < 7 || strncmp(got, "Bearer ", 7) || strlen(want) != (size_t)n - 7 ||
	    !cr_equal(got + 7, want, (size_t)n - 7))
		return gw_fail(err, 401, "unauthorized", "Authorization: Bearer <admin token>");
	return 0;
}

int tp_gift_catalog(struct tp_conn *c)
{
	const struct gw_catalog *cat = gw_gifts_catalog(c->wk->srv->gifts);
	const char *etag = gw_catalog_etag(cat);
	struct tp_hdr h = {"etag:", etag};
	char inm[256];
	size_t len;
	const char *json = gw_catalog_json(cat, &len);

	/* If-None-Match: a list of tags, or "*". */
	if (lws_hdr_copy(c->wsi, inm, sizeof(inm), WSI_TOKEN_HTTP_IF_NONE_MATCH) > 0 &&
	    (strstr(inm, etag) || !strcmp(inm, "*")))
		return tp_http_send(c, 304, "application/json", NULL, &h, 1);
	return tp_http_send_copy(c, 200, "application/json", json, len, &h, 1);
}

int tp_gift_leaderboard(struct tp_conn *c, const char *room, size_t room_len)
{
	struct gw_buf *out = &c->wk->out;
	struct gw_err err;
	char buf[32];
	long n = 10;
	int q = tp_query(c, "n", buf, sizeof(buf));

	if (q) {
		char *end;
		n = strtol(buf, &end, 10);
		if (q < 0 || !buf[0] || *end || n < 1 || n > 100) {
			gw_fail(&err, 400, "bad_n", "n must be a whole number from 1 to 100");
			return tp_http_error(c, &err);
		}
	}
	gw_buf_reset(out);
	if (gw_gifts_leaderboard(c->wk->srv->gifts, room, room_len, (size_t)n, out))
		return -1;
	return tp_http_send(c, 200, "application/json", out, NULL, 0);
}

int tp_gift_server_key(struct tp_conn *c)
{
	const char *k = gw_gifts_server_key_json(c->wk->srv->gifts);

	return tp_http_send_copy(c, 200, "application/json", k, strlen(k), NULL, 0);
}
