/*
 * The WebSocket transport. A connection subscribes to its room (gw_sub with
 * ws_ops); when notified it sends everything after its cursor as one batch
 * frame, at once when nothing else waits for the connection, else from the
 * next writable callback (bounded by batch_max_bytes; more follows on the
 * next writable). At most flush_chunk subscribers are written per loop
 * iteration; the rest queue (struct tp_ws_queue) and follow on the next
 * ones. Subscribers at the same cursor share one built batch
 * (batch_frame). Replies to client ops queue in a short
 * per-connection list and go before batches. A slow reader holds at most one
 * batch in lws's send buffer; what the ring overwrites meanwhile it learns
 * of as gap:true. Worker thread only.
 */
#include <json-c/json.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/clock.h"
#include "gateway/ingest.h"
#include "gateway/json.h"
#include "gateway/metrics.h"
#include "gateway/ring.h"
#include "gateway/utf8.h"
#include "transport/internal.h"

#define container_of(p, T, m) ((T *)((char *)(p) - offsetof(T, m)))

/*
 * Replies waiting for a client. Past MAX_PENDING_REPLIES we stop reading from
 * it (backpressure: its own TCP window then slows it down) and read again
 * below half; frames lws had already buffered still arrive, so the hard
 * limit is higher. A client past that is not reading its replies at all.
 */
#define MAX_PENDING_REPLIES 64
#define HARD_PENDING_REPLIES (4 * MAX_PENDING_REPLIES)
/* Bytes of replies merged into one write (below the protocol's tx_packet_size). */
#define REPLY_WRITE_MAX 49152

/*
 * Pings. A WebSocket from which nothing (a message, a pong) has arrived for
 * ws_ping_interval seconds is pinged; one that then sends nothing for
 * io_timeout seconds more is dropped, and the drop counts against its client
 * like any unclean close (docs/protocol.md). Any frame proves the peer alive,
 * so a client that talks is never pinged. Times are in sweep slices
 * (wk->ping_tick); see struct tp_worker for why this is not lws's timer.
 */
#define TP_PING_SLICES 10
#define TP_PING_SLICE_S 0.1

struct tp_reply {
	struct tp_reply *next;
	size_t len;
	unsigned char data[]; /* LWS_PRE bytes, then the frame */
};

static int send_batch(struct tp_conn *c);
static int send_ping(struct tp_conn *c);
static void ping_sweep(struct ev_loop *loop, ev_timer *w, int revents);

/* Something arrived from c's peer: it is alive, and any ping is answered. */
static void heard(struct tp_conn *c)
{
	c->rx_tick = c->wk->ping_tick;
	c->ping_tick = 0;
}

/* Nothing waits to go out on c (no reply, nothing in lws's buffer): a write may go now. */
static bool out_idle(const struct tp_conn *c)
{
	return !c->replies && !lws_partial_buffered(c->wsi);
}

/*
 * Write c's batch now, or have lws call back when it can take it. Worker.
 *
 * Send at once when nothing waits for c: asking for a writable callback costs
 * two epoll_ctl and a trip through the loop per subscriber per flush (a fifth
 * of a worker's CPU at 10k subscribers, docs/benchmarks.md). lws 4.1.6 allows
 * lws_write outside the writable callback: it keeps what the socket does not
 * take and asks for the callback itself, and we only write here while its
 * buffer is empty, so a slow reader still holds at most one batch.
 */
static void write_now(struct tp_conn *c)
{
	if (c->state == TP_WS && !c->closing && out_idle(c)) {
		if (send_batch(c) < 0) {
			c->closing = true; /* the socket failed: the writable callback closes it */
			lws_callback_on_writable(c->wsi);
		}
		return;
	}
	lws_callback_on_writable(c->wsi);
}

/*
 * May the worker write one more subscriber in this loop iteration
 * (flush_chunk)? Counts it when so. Worker.
 */
static bool take_turn(struct tp_worker *wk)
{
	struct tp_ws_queue *q = &wk->ws_queue;
	int64_t chunk = wk->srv->cfg->flush_chunk;
	unsigned it = ev_iteration(wk->loop);

	if (!chunk)
		return true;
	if (q->iter != it) {
		q->iter = it;
		q->spent = 0;
	}
	if (q->spent >= chunk)
		return false;
	q->spent++;
	return true;
}

/* Take c off the write queue if it is on it. Worker. */
static void queue_unlink(struct tp_worker *wk, struct tp_conn *c)
{
	struct tp_ws_queue *q = &wk->ws_queue;

	if (!c->wq_queued)
		return;
	if (c->wq_prev)
		c->wq_prev->wq_next = c->wq_next;
	else
		q->head = c->wq_next;
	if (c->wq_next)
		c->wq_next->wq_prev = c->wq_prev;
	else
		q->tail = c->wq_prev;
	c->wq_prev = c->wq_next = NULL;
	c->wq_queued = false;
	/* The watchers stay until queue_run sees the queue empty: it may owe a dispatch. */
}

/* Queue c (not queued, an open WebSocket) behind everyone queued. Worker. */
static void queue_append(struct tp_worker *wk, struct tp_conn *c)
{
	struct tp_ws_queue *q = &wk->ws_queue;

	c->wq_prev = q->tail;
	c->wq_next = NULL;
	if (q->tail)
		q->tail->wq_next = c;
	else
		q->head = c;
	q->tail = c;
	c->wq_queued = true;
	if (!ev_is_active(&q->run_w)) {
		ev_check_start(wk->loop, &q->run_w);
		ev_idle_start(wk->loop, &q->spin_w);
	}
}

/*
 * After each poll while subscribers are queued: write the next chunk, oldest
 * first. write_now never frees a connection (a failed socket is closed from
 * its writable callback), so taking the head each time is safe. Once the
 * queue is empty, the dispatch tp_ws_dispatch put off runs.
 */
static void queue_run(struct ev_loop *loop, ev_check *w, int revents)
{
	struct tp_worker *wk = w->data;
	struct tp_ws_queue *q = &wk->ws_queue;

	(void)revents;
	while (q->head && take_turn(wk)) {
		struct tp_conn *c = q->head;

		queue_unlink(wk, c);
		write_now(c);
	}
	if (q->head)
		return;
	ev_check_stop(loop, &q->run_w);
	ev_idle_stop(loop, &q->spin_w);
	if (q->owed) {
		q->owed = false;
		gw_rooms_dispatch(wk->srv->rooms, wk->id);
	}
}

/*
 * While a round is queued, a dispatch would mostly walk every subscriber of
 * the room to re-queue those already written (a tenth of the worker's CPU at
 * 10,000 subscribers, flushed every 25 ms): the queued ones send what arrived
 * anyway when their turn comes. So it waits and runs as soon as the queue is
 * empty; the written subscribers then queue again behind nobody. Long-polls of
 * the worker's rooms wait for the round too (at most one round, as they did
 * when a round was written in one callback). Worker.
 */
void tp_ws_dispatch(struct tp_worker *wk)
{
	if (wk->ws_queue.head) {
		wk->ws_queue.owed = true;
		return;
	}
	gw_rooms_dispatch(wk->srv->rooms, wk->id);
}

/* Worker: only there so that the loop polls without blocking while subscribers are queued. */
static void queue_spin(struct ev_loop *loop, ev_idle *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

/* Before the worker's loop runs (main thread, worker_init). */
void tp_ws_worker_init(struct tp_worker *wk)
{
	ev_check_init(&wk->ws_queue.run_w, queue_run);
	wk->ws_queue.run_w.data = wk;
	ev_idle_init(&wk->ws_queue.spin_w, queue_spin);
	wk->ws_queue.spin_w.data = wk;
	ev_timer_init(&wk->ping_w, ping_sweep, TP_PING_SLICE_S, TP_PING_SLICE_S);
	wk->ping_w.data = wk;
	if (wk->srv->cfg->ws_ping_interval > 0)
		ev_timer_start(wk->loop, &wk->ping_w);
}

/*
 * A round over 10,000 subscribers takes ~70 ms of send() on one core; written
 * in one go, a POST arriving meanwhile is read only after it, and its message
 * waits for the next round (docs/benchmarks.md). So a flush writes at most
 * flush_chunk subscribers per loop iteration and queues the rest behind
 * anyone still queued (never ahead of them: nobody starves).
 */
static void ws_notify(struct gw_sub *sub)
{
	struct tp_conn *c = container_of(sub, struct tp_conn, sub);
	struct tp_worker *wk = c->wk;

	if (c->wq_queued)
		return; /* its turn comes; it sends everything after its cursor then */
	if (c->state != TP_WS || (!wk->ws_queue.head && take_turn(wk)))
		write_now(c);
	else
		queue_append(wk, c);
}

static const struct gw_sub_ops ws_ops = {.name = "ws", .notify = ws_notify};

/* Room and cursor of the upgrade request into c->room / c->pos. */
static int ws_resolve(struct tp_conn *c, struct gw_err *err)
{
	char path[512];
	const char *room, *action;
	size_t room_len;

	if (lws_hdr_copy(c->wsi, path, sizeof(path), WSI_TOKEN_GET_URI) <= 0 ||
	    !tp_route_room(path, &room, &room_len, &action) || strcmp(action, "ws"))
		return gw_fail(err, 404, "not_found", "WebSockets live at /v1/rooms/{room}/ws");
	if (!gw_name_valid(room, room_len))
		return gw_fail(err, 400, "bad_room", "room names match [A-Za-z0-9_-]{1,64}");
	if (tp_client_id(c, err))
		return -1;
	c->room = gw_rooms_acquire(c->wk->srv->rooms, room, room_len, err);
	if (!c->room)
		return -1;
	return tp_resolve_since(c, err);
}

/*
 * The upgrade's first look: refuse a bad request with a real HTTP status. lws
 * frees this session data before the connection is established (it binds the
 * protocol afresh), so nothing is kept; tp_ws_filter resolves again.
 */
int tp_ws_confirm(struct tp_conn *c)
{
	struct gw_err err;
	int rc = ws_resolve(c, &err);

	tp_conn_release(c);
	if (!rc)
		return 0;
	c->upgrading = true;
	tp_http_error(c, &err);
	c->upgrading = false;
	return 1; /* we answered; lws completes the HTTP transaction */
}

/* The session data that will live with the WebSocket: take the room and cursor. */
int tp_ws_filter(struct tp_conn *c)
{
	struct gw_err err;

	if (ws_resolve(c, &err)) {
		/* Passed tp_ws_confirm a moment ago; only a race (e.g. max_rooms) lands here. */
		tp_conn_release(c);
		return -1;
	}
	return 0;
}

int tp_ws_established(struct tp_conn *c)
{
	struct tp_worker *wk = c->wk;

	if (!c->room) {
		lws_close_reason(c->wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, NULL, 0);
		return -1;
	}
	c->state = TP_WS;
	c->replies = NULL;
	c->replies_tail = &c->replies;
	c->ws_prev = NULL;
	c->ws_next = wk->ws_conns;
	if (wk->ws_conns)
		wk->ws_conns->ws_prev = c;
	wk->ws_conns = c;
	wk->ws_count++;
	heard(c); /* the upgrade request */
	c->ping_due = false;
	gw_metric_add(GW_M_CONN_WS, 1);
	c->sub.ops = &ws_ops;
	gw_room_subscribe(c->room, &c->sub, wk->id);
	if (c->client_len) {
		struct gw_advice adv;

		gw_clients_ws_open(wk->srv->clients, c->client, c->client_len, gw_room_rate(c->room),
				   gw_clock_mono_ms(), &adv);
		/* The client belongs elsewhere: tell it at once, in a batch of its own. */
		if (adv.send && (c->advice = malloc(sizeof(adv))))
			*c->advice = adv;
	}
	if (c->advice || gw_pos_pending(c->room, &c->pos))
		lws_callback_on_writable(c->wsi);
	return 0;
}

/*
 * Close with a status. Returning -1 from RECEIVE would drop the connection
 * while the peer's remaining frames sit unread, and the kernel may then reset
 * it before the close frame is read; instead stop reading and let the next
 * writable callback end the connection, which sends the close frame normally.
 */
static int close_with(struct tp_conn *c, enum lws_close_status code, const char *why)
{
	c->closing = true;
	lws_close_reason(c->wsi, code, (unsigned char *)(uintptr_t)why, strlen(why));
	lws_callback_on_writable(c->wsi);
	gw_buf_free(&c->rx);
	return 0;
}

int tp_ws_reply(struct tp_conn *c, const struct gw_buf *b)
{
	struct tp_reply *r;

	if (c->closing)
		return 0;
	if (c->nreplies >= HARD_PENDING_REPLIES)
		return close_with(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "replies not being read");
	if (c->nreplies >= MAX_PENDING_REPLIES && !c->rx_paused) {
		c->rx_paused = true;
		lws_rx_flow_control(c->wsi, 0);
	}
	r = malloc(sizeof(*r) + LWS_PRE + b->len);
	if (!r)
		return close_with(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
	r->next = NULL;
	r->len = b->len;
	memcpy(r->data + LWS_PRE, gw_buf_data(b), b->len);
	*c->replies_tail = r;
	c->replies_tail = &r->next;
	c->nreplies++;
	lws_callback_on_writable(c->wsi);
	return 0;
}

/*
 * Send the waiting replies, oldest first, as many as fit in REPLY_WRITE_MAX
 * bytes: each framed here (a server frame is unmasked: FIN + text opcode, then
 * the length) and all of them handed to lws in one raw write, so a client
 * with many ops in flight costs one send() per writable callback, not one
 * per reply. Returns what lws_write returned (< 0: close).
 */
static int write_replies(struct tp_conn *c)
{
	struct gw_buf *b = &c->wk->out;
	int n;

	gw_buf_reset(b);
	do {
		struct tp_reply *r = c->replies;
		unsigned char h[10];
		size_t hl = 2;

		if (b->len && b->len + r->len + sizeof(h) > REPLY_WRITE_MAX)
			break;
		h[0] = 0x81;
		if (r->len < 126) {
			h[1] = (unsigned char)r->len;
		} else if (r->len < 65536) {
			h[1] = 126;
			h[2] = (unsigned char)(r->len >> 8);
			h[3] = (unsigned char)r->len;
			hl = 4;
		} else {
			h[1] = 127;
			for (int i = 0; i < 8; i++)
				h[2 + i] = (unsigned char)((uint64_t)r->len >> (56 - 8 * i));
			hl = 10;
		}
		if (gw_buf_append(b, h, hl) || gw_buf_append(b, r->data + LWS_PRE, r->len))
			return -1;
		c->replies = r->next;
		c->nreplies--;
		free(r);
	} while (c->replies);
	if (!c->replies)
		c->replies_tail = &c->replies;
	n = lws_write(c->wsi, (unsigned char *)gw_buf_data(b), b->len, LWS_WRITE_RAW);
	return n < 0 ? -1 : n;
}

int tp_ws_error_frame(struct gw_buf *b, const char *id, const struct gw_err *err)
{
	int rc = 0;

	gw_buf_reset(b);
	rc |= gw_buf_printf(b, "{\"op\":\"error\",\"id\":%s,\"error\":\"%s\",\"detail\":", id,
			    err->code);
	rc |= gw_json_put_str(b, err->detail, strlen(err->detail));
	rc |= gw_buf_putc(b, '}');
	return rc ? -1 : 0;
}

static int reply_error(struct tp_conn *c, const char *id, const struct gw_err *err)
{
	gw_metric_reject(err->code);
	if (tp_ws_error_frame(&c->wk->zout, id, err))
		return -1;
	return tp_ws_reply(c, &c->wk->zout);
}

static int handle_message(struct tp_conn *c, const char *msg, size_t len)
{
	struct json_object *obj = NULL, *v;
	const char *id = "null";
	struct gw_err err;
	uint64_t seq;
	int rc;

	if (tp_ws_gift_plain(c, msg, len, &rc))
		return rc;
	if (gw_ingest_parse(msg, len, &obj, &err))
		return reply_error(c, id, &err);
	if (json_object_object_get_ex(obj, "id", &v) &&
	    (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double) ||
	     json_object_is_type(v, json_type_string)))
		id = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
	const char *op = json_object_object_get_ex(obj, "op", &v) &&
				 json_object_is_type(v, json_type_string)
			 ? json_object_get_string(v)
			 : "";
	if (!strcmp(op, "gift")) {
		rc = tp_ws_gift(c, obj, id);
	} else if (!strcmp(op, "ping")) {
		/* For clients that cannot see WebSocket pings (a page): proof the path works. */
		struct gw_buf *b = &c->wk->zout;

		gw_buf_reset(b);
		rc = gw_buf_printf(b, "{\"op\":\"pong\",\"id\":%s}", id);
		rc = rc ? -1 : tp_ws_reply(c, b);
	} else if (strcmp(op, "danmaku")) {
		gw_fail(&err, 400, "unknown_op", "supported ops: danmaku, gift, ping");
		rc = reply_error(c, id, &err);
	} else if (gw_ingest_danmaku(c->wk->srv->ingest, c->room, obj, &seq, &err)) {
		rc = reply_error(c, id, &err);
	} else {
		struct gw_buf *b = &c->wk->zout;

		gw_buf_reset(b);
		rc = gw_buf_printf(b, "{\"op\":\"ack\",\"id\":%s,\"seq\":%llu}", id,
				   (unsigned long long)seq);
		rc = rc ? -1 : tp_ws_reply(c, b);
	}
	json_object_put(obj);
	return rc;
}

int tp_ws_receive(struct tp_conn *c, const void *in, size_t len)
{
	size_t max = (size_t)c->wk->srv->cfg->ws_max_message_bytes;
	int rc;

	if (c->state != TP_WS)
		return 0;
	heard(c);
	if (c->closing)
		return 0;
	if (lws_frame_is_binary(c->wsi))
		return close_with(c, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, "binary frames not accepted");
	/* Refuse as soon as the declared size is known, before buffering it. */
	if (c->rx.len + len + lws_remaining_packet_payload(c->wsi) > max)
		return close_with(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too large");
	if (gw_buf_append(&c->rx, in, len))
		return close_with(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
	if (!lws_is_final_fragment(c->wsi) || lws_remaining_packet_payload(c->wsi))
		return 0;
	if (!gw_utf8_valid(gw_buf_data(&c->rx), c->rx.len, NULL))
		return close_with(c, LWS_CLOSE_STATUS_INVALID_PAYLOAD, "text is not valid UTF-8");
	rc = handle_message(c, gw_buf_data(&c->rx), c->rx.len);
	/* Idle connections should not keep a big buffer around. */
	if (c->rx.cap > 2048)
		gw_buf_free(&c->rx);
	else
		gw_buf_reset(&c->rx);
	return rc;
}

int tp_ws_writeable(struct tp_conn *c)
{
	if (c->state != TP_WS)
		return 0;
	if (c->closing)
		return -1; /* the close reason is set: lws sends the close frame */
	if (c->ping_due) {
		c->ping_due = false;
		if (send_ping(c) < 0)
			return -1;
		if (lws_partial_buffered(c->wsi)) {
			lws_callback_on_writable(c->wsi);
			return 0;
		}
	}
	if (c->replies) {
		if (write_replies(c) < 0)
			return -1;
		if (c->rx_paused && c->nreplies < MAX_PENDING_REPLIES / 2) {
			c->rx_paused = false;
			lws_rx_flow_control(c->wsi, 1);
		}
		if (c->replies || gw_pos_pending(c->room, &c->pos))
			lws_callback_on_writable(c->wsi);
		return 0;
	}
	return send_batch(c);
}

/*
 * c's next batch as a frame for lws_write. A subscriber with no advice to
 * deliver and no WebSocket danmaku budget (suppress_ws, off by default) gets
 * the plain batch, client id or not, shared with every subscriber at its
 * cursor (shared.c), so a flush reads the ring once per room, not once per
 * subscriber. 0, or -1 on OOM.
 */
static int batch_frame(struct tp_conn *c, struct gw_buf **frame, struct gw_batch *info)
{
	struct tp_worker *wk = c->wk;
	struct tp_shared_batch *e = NULL;

	if (!c->advice && !(c->client_len && gw_clients_budgeted(wk->srv->clients, GW_TP_WS))) {
		if (tp_shared_batch(c, &wk->ws_shared, 1, &e))
			return -1;
		if (e) {
			*frame = &e->body;
			*info = e->info;
			return 0;
		}
	}
	gw_buf_reset(&wk->out);
	*frame = &wk->out;
	return tp_adapt_batch(c, GW_TP_WS, c->advice, &wk->out, info);
}

/* Send c's batch; batch_max_bytes left more: ask for another writable. 0, or -1: close. */
static int send_batch(struct tp_conn *c)
{
	struct gw_buf *frame;
	struct gw_batch info;

	if (!c->advice && !gw_pos_pending(c->room, &c->pos))
		return 0;
	if (batch_frame(c, &frame, &info))
		return close_with(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
	free(c->advice);
	c->advice = NULL;
	if (lws_write(c->wsi, (unsigned char *)gw_buf_data(frame), frame->len, LWS_WRITE_TEXT) < 0)
		return -1;
	gw_metric_add(GW_M_DELIVERED_WS, (int64_t)info.count);
	gw_metric_add(GW_M_BYTES_WS, (int64_t)frame->len);
	if (info.gap)
		gw_metric_add(GW_M_GAPS, 1);
	if (info.more)
		lws_callback_on_writable(c->wsi);
	return 0;
}

void tp_ws_closed(struct tp_conn *c)
{
	struct tp_worker *wk = c->wk;

	if (c->state != TP_WS)
		return;
	if (wk->ping_next == c)
		wk->ping_next = c->ws_next;
	wk->ws_count--;
	if (c->ws_prev)
		c->ws_prev->ws_next = c->ws_next;
	else
		wk->ws_conns = c->ws_next;
	if (c->ws_next)
		c->ws_next->ws_prev = c->ws_prev;
	queue_unlink(wk, c);
	while (c->replies) {
		struct tp_reply *r = c->replies;
		c->replies = r->next;
		free(r);
	}
	c->nreplies = 0;
	free(c->advice);
	c->advice = NULL;
	/* A close the gateway began (shutdown, a policy close) is not the client's network. */
	if (c->client_len)
		gw_clients_ws_close(wk->srv->clients, c->client, c->client_len,
				    c->peer_closed || c->closing, gw_clock_mono_ms());
	gw_metric_add(GW_M_CONN_WS, -1);
	c->state = TP_IDLE;
	tp_conn_release(c);
}

/* Pings (see the top of the file): write one. -1: the socket failed. */
static int send_ping(struct tp_conn *c)
{
	/* lws 4.1.6 reports no pong with an empty payload (RECEIVE_PONG needs bytes). */
	unsigned char buf[LWS_PRE + 1];

	buf[LWS_PRE] = 'p';
	gw_metric_add(GW_M_WS_PINGS, 1);
	return lws_write(c->wsi, buf + LWS_PRE, 1, LWS_WRITE_PING) < 0 ? -1 : 0;
}

void tp_ws_pong(struct tp_conn *c)
{
	if (c->state == TP_WS)
		heard(c);
}

/*
 * Look at one connection: ping it or drop it when due. Closing it here frees
 * nothing else, and tp_ws_closed moves wk->ping_next past it. Worker.
 */
static void ping_check(struct tp_worker *wk, struct tp_conn *c, uint32_t ping, uint32_t hup)
{
	uint32_t now = wk->ping_tick;

	if (c->ping_tick ? now - c->ping_tick >= hup : now - c->rx_tick >= ping + hup) {
		/* Unanswered (or closing and silent): the peer or the path is gone. */
		gw_metric_add(GW_M_WS_PING_TIMEOUTS, 1);
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_WS_PONG_CHECK_GET_PONG, LWS_TO_KILL_SYNC);
		return;
	}
	if (c->ping_tick || c->closing || now - c->rx_tick < ping)
		return;
	/*
	 * Its clock runs from now (never 0: the sweep skips it). As write_now: straight
	 * out while nothing waits for c, else first thing in its next writable callback.
	 */
	c->ping_tick = now;
	if (!out_idle(c)) {
		c->ping_due = true;
		lws_callback_on_writable(c->wsi);
	} else if (send_ping(c) < 0) {
		c->closing = true; /* the writable callback closes it */
		lws_callback_on_writable(c->wsi);
	}
}

/* Every TP_PING_SLICE_S: the next slice of the worker's WebSockets. Worker. */
static void ping_sweep(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct tp_worker *wk = w->data;
	const struct gw_config *cfg = wk->srv->cfg;
	uint32_t ping = (uint32_t)cfg->ws_ping_interval * TP_PING_SLICES;
	uint32_t hup = (uint32_t)cfg->io_timeout * TP_PING_SLICES;
	unsigned n = (wk->ws_count + TP_PING_SLICES - 1) / TP_PING_SLICES;

	(void)loop;
	(void)revents;
	if (++wk->ping_tick == 0)
		wk->ping_tick = 1; /* 0 means "no ping" in c->ping_tick */
	while (n-- && wk->ws_conns) {
		struct tp_conn *c = wk->ping_next ? wk->ping_next : wk->ws_conns;

		wk->ping_next = c->ws_next;
		ping_check(wk, c, ping, hup);
	}
}

void tp_ws_shutdown(struct tp_worker *wk)
{
	for (struct tp_conn *c = wk->ws_conns; c; c = c->ws_next) {
		static const char why[] = "shutting down";

		c->closing = true;
		lws_close_reason(c->wsi, LWS_CLOSE_STATUS_GOINGAWAY,
				 (unsigned char *)(uintptr_t)why, sizeof(why) - 1);
		lws_callback_on_writable(c->wsi);
	}
}
