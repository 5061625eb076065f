/* The gift service. See gifts.h for the order of checks and the threads. */
#include "gateway/gifts.h"

#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <time.h>
#include <unistd.h>

#include "crypto/b64.h"
#include "crypto/sign.h"
#include "gateway/board.h"
#include "gateway/catalog.h"
#include "gateway/clock.h"
#include "gateway/gift.h"
#include "gateway/journal.h"
#include "gateway/json.h"
#include "gateway/keys.h"
#include "gateway/ledger.h"
#include "gateway/log.h"
#include "gateway/map.h"
#include "gateway/metrics.h"
#include "gateway/room.h"

/*
 * A gift on its way: on the check queue, then in the journal. Owned by the
 * service until done runs; a committed one then goes on to the leaderboard
 * thread (on the board stack), which frees it.
 */
struct pend {
	struct pend *next; /* on the check queue, later on the board stack */
	struct gw_gifts *gs;
	struct gw_room *room; /* reference held */
	struct gw_gift g;
	struct gw_ledger_gift lg; /* points into g and room_name */
	char room_name[65];
	size_t room_len;
	uint64_t seq, value;
	gw_gifts_done_fn done;
	void *arg;
	struct gw_buf receipt;
};

struct gw_gifts {
	struct gw_rooms *rooms;
	int64_t max_skew_ms;
	unsigned char pk[32], sk[64];
	char server_key_json[80];
	struct gw_keys *keys;
	struct gw_catalog *catalog;
	struct gw_ledger *ledger;
	struct gw_journal *journal;
	struct gw_board *board;
	/* room -> last gift seq (uint64_t *), under seq_lock */
	pthread_mutex_t seq_lock;
	struct gw_map *seqs;
	/*
	 * Leaderboard thread. Committed gifts reach it on a lock-free stack
	 * (push: CAS with release, by the journal thread; take all: exchange
	 * with acquire, by the board thread), so a gift costs the journal
	 * thread no lock and no wake-up: the board thread looks every
	 * BOARD_POLL_MS, well inside the once-a-second snapshot refresh.
	 * q_lock / q_cond only carry the stop request.
	 */
	_Atomic(struct pend *) board_stack;
	struct gw_buf msg; /* room message scratch, journal writer thread only */
	/*
	 * The check queue: a FIFO of pends under cq_lock. Senders append and
	 * signal cq_cond when a checker is idle; checkers take one gift at a
	 * time, so both cores share the work whichever worker read the gift.
	 * At stop the checkers drain the queue before they exit.
	 */
	pthread_mutex_t cq_lock;
	pthread_cond_t cq_cond;
	struct pend *cq_head, **cq_tail;
	size_t cq_len, cq_max;
	unsigned cq_idle; /* checkers waiting on cq_cond */
	bool cq_stop;
	pthread_t *checkers;
	unsigned nchecker; /* started */
	pthread_t board_thread;
	bool board_started;
	pthread_mutex_t q_lock;
	pthread_cond_t q_cond;
	bool q_stop;
};

#define BOARD_POLL_MS 100

static void ledger_gift_of(struct gw_ledger_gift *lg, const struct gw_gift *g, const char *room,
			   size_t room_len)
{
	*lg = (struct gw_ledger_gift){
		.room = room, .room_len = room_len, .uid = g->uid, .uid_len = strlen(g->uid),
		.txn = g->txn, .txn_len = strlen(g->txn), .gift = g->gift,
		.gift_len = strlen(g->gift), .count = g->count, .nonce = g->nonce,
		.nonce_len = strlen(g->nonce), .ts = g->ts,
	};
}

/* The room's next gift seq (seq_lock held). 0 on OOM. */
static uint64_t *room_seq(struct gw_gifts *gs, const char *room, size_t room_len)
{
	uint64_t *s = gw_map_get(gs->seqs, room, room_len);

	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s || gw_map_put(gs->seqs, room, room_len, s, NULL)) {
			free(s);
			return NULL;
		}
	}
	return s;
}

/* ---- leaderboard thread ---------------------------------------------------------------- */

static void push_rank(void *arg, const char *room, size_t room_len, const char *top, size_t len)
{
	struct gw_gifts *gs = arg;
	struct gw_room *r = gw_rooms_acquire(gs->rooms, room, room_len, NULL);
	struct gw_buf msg;

	if (!r)
		return; /* the rooms table is full; the next refresh tries again */
	gw_buf_init(&msg, 0);
	if (!gw_buf_puts(&msg, "\"type\":\"rank\",\"top\":") && !gw_buf_append(&msg, top, len) &&
	    !gw_buf_putc(&msg, '}') && gw_room_publish(r, gw_buf_data(&msg), msg.len))
		gw_metric_add(GW_M_PUBLISHED, 1);
	gw_buf_free(&msg);
	gw_room_release(r);
}

/* Board thread: the committed gifts pushed so far, oldest first. */
static struct pend *board_take(struct gw_gifts *gs)
{
	struct pend *p = atomic_exchange_explicit(&gs->board_stack, NULL, memory_order_acquire);
	struct pend *fifo = NULL;

	while (p) { /* the stack is newest first */
		struct pend *n = p->next;
		p->next = fifo;
		fifo = p;
		p = n;
	}
	return fifo;
}

static void *board_main(void *arg)
{
	struct gw_gifts *gs = arg;
	int64_t last_refresh = gw_clock_mono_ms();
	bool stop = false;

	while (!stop) {
		struct timespec until;
		struct pend *list;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += BOARD_POLL_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&gs->q_lock);
		if (!gs->q_stop)
			pthread_cond_timedwait(&gs->q_cond, &gs->q_lock, &until);
		stop = gs->q_stop;
		pthread_mutex_unlock(&gs->q_lock);

		/* After stop: the journal is closed, so nothing is pushed any more. */
		for (list = board_take(gs); list;) {
			struct pend *n = list->next;
			if (gw_board_add(gs->board, list->room_name, list->room_len, list->g.uid,
					 strlen(list->g.uid), list->value))
				gw_log_err("leaderboard: out of memory, a gift is not ranked");
			free(list);
			list = n;
		}
		/* At most one rank push per room per second, whatever the gift rate. */
		if (gw_clock_mono_ms() - last_refresh >= 1000) {
			gw_board_refresh(gs->board, push_rank, gs);
			last_refresh = gw_clock_mono_ms();
		}
	}
	return NULL;
}

/* Journal thread: hand a committed gift (its room and receipt already released) to the board. */
static void board_push(struct gw_gifts *gs, struct pend *p)
{
	struct pend *top = atomic_load_explicit(&gs->board_stack, memory_order_relaxed);

	do {
		p->next = top;
	} while (!atomic_compare_exchange_weak_explicit(
	    &gs->board_stack, &top, p, memory_order_release, memory_order_relaxed));
}

/* ---- journal records ------------------------------------------------------------------- */

/*
 * The journal record and the room message are built by appending pieces, not
 * with printf: this runs once per gift on the hot path, and every string in
 * it has passed its grammar (no escaping needed but for the receipt).
 */
#define RECORD_RESERVE 1024 /* a record is ~600 bytes: one allocation, no regrowth */

/*
 * The fields a gift's journal record and its room message share, in this
 * order: "uid":…,"gift":…,"count":…,"value":…,"txn":…,"nonce":…,"sig":…
 * (no braces, no trailing comma). rc-style: 0, or nonzero on OOM.
 */
static int put_gift_fields(const struct pend *p, struct gw_buf *b)
{
	char sig[GW_GIFT_SIG_BYTES * 2];
	int rc = 0;

	cr_b64_encode(p->g.sig, sizeof(p->g.sig), sig);
	rc |= gw_buf_puts(b, "\"uid\":\"");
	rc |= gw_buf_puts(b, p->g.uid);
	rc |= gw_buf_puts(b, "\",\"gift\":\"");
	rc |= gw_buf_puts(b, p->g.gift);
	rc |= gw_buf_puts(b, "\",\"count\":");
	rc |= gw_buf_put_u64(b, p->g.count);
	rc |= gw_buf_puts(b, ",\"value\":");
	rc |= gw_buf_put_u64(b, p->value);
	rc |= gw_buf_puts(b, ",\"txn\":\"");
	rc |= gw_buf_puts(b, p->g.txn);
	rc |= gw_buf_puts(b, "\",\"nonce\":\"");
	rc |= gw_buf_puts(b, p->g.nonce);
	rc |= gw_buf_puts(b, "\",\"sig\":\"");
	rc |= gw_buf_puts(b, sig);
	rc |= gw_buf_putc(b, '"');
	return rc;
}

/* The journal record (replay() reads it back by key, so field order is free). */
static int encode_record(const struct pend *p, int64_t at, struct gw_buf *b)
{
	int rc = gw_buf_reserve(b, RECORD_RESERVE);

	rc |= gw_buf_puts(b, "{\"v\":1,\"at\":");
	rc |= gw_buf_put_i64(b, at);
	rc |= gw_buf_puts(b, ",\"room\":\"");
	rc |= gw_buf_append(b, p->room_name, p->room_len);
	rc |= gw_buf_puts(b, "\",\"seq\":");
	rc |= gw_buf_put_u64(b, p->seq);
	rc |= gw_buf_putc(b, ',');
	rc |= put_gift_fields(p, b);
	rc |= gw_buf_puts(b, ",\"ts\":");
	rc |= gw_buf_put_i64(b, p->g.ts);
	rc |= gw_buf_puts(b, ",\"receipt\":");
	rc |= gw_json_put_str(b, gw_buf_data(&p->receipt), p->receipt.len);
	rc |= gw_buf_putc(b, '}');
	return rc ? -1 : 0;
}

/* The room message of an accepted gift (the ring adds seq and ts in front). */
static int encode_message(const struct pend *p, struct gw_buf *b)
{
	int rc = gw_buf_reserve(b, RECORD_RESERVE);

	rc |= gw_buf_puts(b, "\"type\":\"gift\",");
	rc |= put_gift_fields(p, b);
	rc |= gw_buf_puts(b, ",\"sent_ts\":");
	rc |= gw_buf_put_i64(b, p->g.ts);
	rc |= gw_buf_puts(b, ",\"gift_seq\":");
	rc |= gw_buf_put_u64(b, p->seq);
	rc |= gw_buf_putc(b, '}');
	return rc ? -1 : 0;
}

static const char *jstr(struct json_object *o, const char *k, size_t *len)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	*len = (size_t)json_object_get_string_len(v);
	return json_object_get_string(v);
}

static int64_t jint(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_int))
		return -1;
	return json_object_get_int64(v);
}

/* Journal replay at open: rebuild the ledger, the gift seqs and the boards. */
static int replay(void *arg, const void *rec, size_t len)
{
	struct gw_gifts *gs = arg;
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o = tok ? json_tokener_parse_ex(tok, rec, (int)len) : NULL;
	const char *room, *uid, *txn, *gift, *nonce, *receipt;
	size_t room_len, uid_len, txn_len, gift_len, nonce_len, receipt_len;
	int64_t at, seq, count, value, ts;
	int rc = -1;

	if (!o)
		goto out;
	room = jstr(o, "room", &room_len);
	uid = jstr(o, "uid", &uid_len);
	txn = jstr(o, "txn", &txn_len);
	gift = jstr(o, "gift", &gift_len);
	nonce = jstr(o, "nonce", &nonce_len);
	receipt = jstr(o, "receipt", &receipt_len);
	at = jint(o, "at");
	seq = jint(o, "seq");
	count = jint(o, "count");
	value = jint(o, "value");
	ts = jint(o, "ts");
	if (!room || !uid || !txn || !gift || !nonce || !receipt || at < 0 || seq < 1 ||
	    count < 1 || value < 0 || ts < 0 || room_len > 64)
		goto out;
	struct gw_ledger_gift lg = {
		.room = room, .room_len = room_len, .uid = uid, .uid_len = uid_len, .txn = txn,
		.txn_len = txn_len, .gift = gift, .gift_len = gift_len, .count = (uint32_t)count,
		.nonce = nonce, .nonce_len = nonce_len, .ts = ts,
	};
	if (gw_ledger_restore(gs->ledger, &lg, at, gw_clock_wall_ms(), receipt, receipt_len) ||
	    gw_board_add(gs->board, room, room_len, uid, uid_len, (uint64_t)value))
		goto out;
	uint64_t *s = room_seq(gs, room, room_len);
	if (!s)
		goto out;
	if ((uint64_t)seq > *s)
		*s = (uint64_t)seq;
	rc = 0;
out:
	json_object_put(o);
	if (tok)
		json_tokener_free(tok);
	return rc;
}

/* ---- sending ---------------------------------------------------------------------------- */

static void pend_free(struct pend *p)
{
	if (p->room)
		gw_room_release(p->room);
	gw_buf_free(&p->receipt);
	free(p);
}

/* The journal writer thread: the record is durable (status 0) or cannot be. */
static void journaled(void *arg, int status)
{
	struct pend *p = arg;
	struct gw_gifts *gs = p->gs;
	struct gw_err err;

	if (status) {
		gw_ledger_abort(gs->ledger, &p->lg);
		gw_log_err("gift journal write failed (%s): refusing gifts from now on",
			   strerror(-status));
		gw_fail(&err, 503, "journal_failed", "the gift could not be stored durably");
		p->done(p->arg, -1, NULL, 0, &err);
		pend_free(p);
		return;
	}
	if (gw_ledger_commit(gs->ledger, &p->lg, gw_buf_data(&p->receipt), p->receipt.len))
		gw_log_err("ledger: out of memory keeping a receipt (txn %s)", p->g.txn);

	/* Viewers see it now: any of them can rebuild the canonical bytes and verify. */
	gw_buf_reset(&gs->msg);
	if (!encode_message(p, &gs->msg) &&
	    gw_room_publish(p->room, gw_buf_data(&gs->msg), gs->msg.len))
		gw_metric_add(GW_M_PUBLISHED, 1);
	else
		gw_log_err("gift txn %s is journaled but could not enter room %.*s", p->g.txn,
			   (int)p->room_len, p->room_name);
	p->done(p->arg, 0, gw_buf_data(&p->receipt), p->receipt.len, NULL);
	gw_room_release(p->room);
	p->room = NULL;
	gw_buf_free(&p->receipt);
	board_push(gs, p); /* the board thread frees it */
}

/*
 * Checker thread: every check after the request's shape, the receipt, and the
 * journal append. Takes p: it goes on to the journal, or done is called here.
 */
static void check(struct gw_gifts *gs, struct pend *p)
{
	const struct gw_catalog_item *item;
	unsigned char pk[32];
	int64_t now = gw_clock_wall_ms();
	struct gw_buf rec, dup;
	struct gw_err err;

	gw_buf_init(&rec, 0);
	gw_buf_init(&dup, 0);
	if (!gw_keys_get(gs->keys, p->g.uid, strlen(p->g.uid), pk)) {
		gw_fail(&err, 403, "unknown_uid", "no public key is registered for this uid");
		goto refuse;
	}
	if (!gw_gift_verify(&p->g, p->room_name, p->room_len, pk)) {
		gw_fail(&err, 401, "bad_signature", "sig does not verify for this uid's key");
		goto refuse;
	}
	if (p->g.ts < now - gs->max_skew_ms || p->g.ts > now + gs->max_skew_ms) {
		gw_fail(&err, 401, "stale", "ts is more than %lld s from the server's clock",
			(long long)(gs->max_skew_ms / 1000));
		goto refuse;
	}
	item = gw_catalog_find(gs->catalog, p->g.gift, strlen(p->g.gift));
	if (!item) {
		gw_fail(&err, 400, "bad_gift", "no such gift in the catalog");
		goto refuse;
	}
	p->value = item->price * p->g.count;

	ledger_gift_of(&p->lg, &p->g, p->room_name, p->room_len);
	switch (gw_ledger_begin(gs->ledger, &p->lg, now, &dup)) {
	case GW_LEDGER_NEW:
		break;
	case GW_LEDGER_DUPLICATE:
		p->done(p->arg, 0, gw_buf_data(&dup), dup.len, NULL);
		goto out;
	case GW_LEDGER_PENDING:
		gw_fail(&err, 409, "in_progress", "this txn is being stored; retry shortly");
		err.retry_after_s = 1;
		goto refuse;
	case GW_LEDGER_CONFLICT:
		gw_fail(&err, 409, "conflict", "this txn was used for another room, gift or count");
		goto refuse;
	case GW_LEDGER_REPLAY:
		gw_fail(&err, 409, "replay", "this nonce was already used by this uid");
		goto refuse;
	default:
		gw_fail(&err, 503, "no_memory", "out of memory");
		goto refuse;
	}

	/* Reserved: from here every path commits or aborts the ledger entry. */
	pthread_mutex_lock(&gs->seq_lock);
	uint64_t *s = room_seq(gs, p->room_name, p->room_len);
	p->seq = s ? ++*s : 0;
	pthread_mutex_unlock(&gs->seq_lock);
	if (!p->seq ||
	    gw_gift_receipt(&p->g, p->room_name, p->room_len, p->seq, p->value, gs->sk,
			    &p->receipt) ||
	    encode_record(p, now, &rec)) {
		gw_ledger_abort(gs->ledger, &p->lg);
		gw_fail(&err, 503, "no_memory", "out of memory");
		goto refuse;
	}
	if (gw_journal_append(gs->journal, gw_buf_data(&rec), rec.len, journaled, p)) {
		int e = errno;
		gw_ledger_abort(gs->ledger, &p->lg);
		gw_fail(&err, 503, e == EAGAIN ? "busy" : "journal_failed",
			e == EAGAIN ? "the gift journal is saturated; retry shortly"
				    : "gifts cannot be stored durably right now");
		if (e == EAGAIN)
			err.retry_after_s = 1;
		goto refuse;
	}
	p = NULL; /* journaled() owns it now */
	goto out;
refuse:
	p->done(p->arg, -1, NULL, 0, &err);
out:
	if (p)
		pend_free(p);
	gw_buf_free(&rec);
	gw_buf_free(&dup);
}

static void *checker_main(void *arg)
{
	struct gw_gifts *gs = arg;

	pthread_mutex_lock(&gs->cq_lock);
	for (;;) {
		struct pend *p;

		while (!gs->cq_head && !gs->cq_stop) {
			gs->cq_idle++;
			pthread_cond_wait(&gs->cq_cond, &gs->cq_lock);
			gs->cq_idle--;
		}
		p = gs->cq_head;
		if (!p)
			break; /* stopping, and the queue is drained */
		gs->cq_head = p->next;
		if (!gs->cq_head)
			gs->cq_tail = &gs->cq_head;
		gs->cq_len--;
		pthread_mutex_unlock(&gs->cq_lock);
		p->next = NULL;
		check(gs, p);
		pthread_mutex_lock(&gs->cq_lock);
	}
	pthread_mutex_unlock(&gs->cq_lock);
	return NULL;
}

int gw_gifts_send(struct gw_gifts *gs, struct gw_room *room, struct json_object *obj,
		  gw_gifts_done_fn done, void *arg, struct gw_err *err)
{
	struct gw_gift g;

	if (gw_gift_from_json(obj, &g, err))
		return -1;
	return gw_gifts_send_gift(gs, room, &g, done, arg, err);
}

int gw_gifts_send_gift(struct gw_gifts *gs, struct gw_room *room, const struct gw_gift *g,
		       gw_gifts_done_fn done, void *arg, struct gw_err *err)
{
	struct pend *p = malloc(sizeof(*p));
	const char *rname;
	bool full;

	if (!p)
		return gw_fail(err, 503, "no_memory", "out of memory");
	*p = (struct pend){.gs = gs, .g = *g, .done = done, .arg = arg};
	gw_buf_init(&p->receipt, 0);
	rname = gw_room_name(room, &p->room_len);
	memcpy(p->room_name, rname, p->room_len);
	gw_room_ref(room);
	p->room = room;

	pthread_mutex_lock(&gs->cq_lock);
	full = gs->cq_len >= gs->cq_max;
	if (!full) {
		*gs->cq_tail = p;
		gs->cq_tail = &p->next;
		gs->cq_len++;
		if (gs->cq_idle)
			pthread_cond_signal(&gs->cq_cond);
	}
	pthread_mutex_unlock(&gs->cq_lock);
	if (full) {
		pend_free(p);
		gw_fail(err, 503, "busy", "too many gifts are waiting to be checked; retry shortly");
		err->retry_after_s = 1;
		return -1;
	}
	return 0;
}

/* ---- keys, boards, catalog ---------------------------------------------------------------- */

int gw_gifts_put_key(struct gw_gifts *gs, const char *uid, size_t uid_len, const char *body,
		     size_t len, struct gw_err *err)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o = tok ? json_tokener_parse_ex(tok, body, (int)len) : NULL;
	unsigned char pk[32];
	const char *s;
	size_t slen, n = 0;
	int rc = -1;

	if (!gw_name_valid(uid, uid_len)) {
		gw_fail(err, 400, "bad_uid", "uid must match [A-Za-z0-9_-]{1,64}");
		goto out;
	}
	if (!o || !json_object_is_type(o, json_type_object) ||
	    json_tokener_get_parse_end(tok) != len) {
		gw_fail(err, 400, "bad_json", "body must be {\"pk\":\"<base64>\"}");
		goto out;
	}
	s = jstr(o, "pk", &slen);
	if (!s || cr_b64_decode(s, slen, pk, sizeof(pk), &n) || n != 32) {
		gw_fail(err, 400, "bad_pk", "pk must be the standard base64 of 32 bytes");
		goto out;
	}
	rc = gw_keys_put(gs->keys, uid, uid_len, pk, err);
out:
	json_object_put(o);
	if (tok)
		json_tokener_free(tok);
	return rc;
}

int gw_gifts_leaderboard(struct gw_gifts *gs, const char *room, size_t room_len, size_t n,
			 struct gw_buf *out)
{
	int rc = gw_buf_puts(out, "{\"room\":\"");

	rc |= gw_buf_append(out, room, room_len);
	rc |= gw_buf_puts(out, "\",\"top\":");
	rc |= gw_board_top(gs->board, room, room_len, n, out);
	rc |= gw_buf_putc(out, '}');
	return rc ? -1 : 0;
}

const struct gw_catalog *gw_gifts_catalog(const struct gw_gifts *gs)
{
	return gs->catalog;
}

const char *gw_gifts_server_key_json(const struct gw_gifts *gs)
{
	return gs->server_key_json;
}

/* ---- lifetime ----------------------------------------------------------------------------- */

struct gw_gifts *gw_gifts_open(const struct gw_gifts_conf *conf, struct gw_rooms *rooms,
			       char *err, size_t errlen)
{
	struct gw_gifts *gs = calloc(1, sizeof(*gs));
	char path[4096], pkb64[64];

	if (!gs) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	gs->rooms = rooms;
	gs->max_skew_ms = conf->max_skew_ms;
	atomic_init(&gs->board_stack, NULL);
	gw_buf_init(&gs->msg, 0);
	pthread_mutex_init(&gs->seq_lock, NULL);
	pthread_mutex_init(&gs->q_lock, NULL);
	pthread_cond_init(&gs->q_cond, NULL);
	pthread_mutex_init(&gs->cq_lock, NULL);
	pthread_cond_init(&gs->cq_cond, NULL);
	gs->cq_tail = &gs->cq_head;
	gs->cq_max = conf->queue_max > 0 ? (size_t)conf->queue_max : 1;
	snprintf(path, sizeof(path), "%s/server.key", conf->data_dir);
	if (cr_server_key_load(path, gs->pk, gs->sk, err, errlen))
		goto fail;
	cr_b64_encode(gs->pk, sizeof(gs->pk), pkb64);
	snprintf(gs->server_key_json, sizeof(gs->server_key_json), "{\"pk\":\"%s\"}", pkb64);
	gs->keys = gw_keys_open(conf->data_dir, err, errlen);
	if (!gs->keys)
		goto fail;
	gs->catalog = gw_catalog_load(conf->catalog_file, err, errlen);
	if (!gs->catalog)
		goto fail;
	/* Nonces must outlive the time a copied request could pass the staleness check. */
	gs->ledger = gw_ledger_new(2 * conf->max_skew_ms);
	gs->board = gw_board_new();
	gs->seqs = gw_map_new();
	if (!gs->ledger || !gs->board || !gs->seqs) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/gifts.journal", conf->data_dir);
	gs->journal = gw_journal_open(path, replay, gs, err, errlen);
	if (!gs->journal)
		goto fail;
	gw_journal_set_group_delay(gs->journal, (unsigned)conf->commit_delay_us);
	gw_board_refresh(gs->board, NULL, NULL); /* snapshots for GET right after a restart */
	if (pthread_create(&gs->board_thread, NULL, board_main, gs)) {
		snprintf(err, errlen, "cannot start the leaderboard thread");
		goto fail;
	}
	gs->board_started = true;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned want = conf->threads > 0 ? (unsigned)conf->threads : cores > 0 ? (unsigned)cores : 1;
	gs->checkers = calloc(want, sizeof(*gs->checkers));
	if (!gs->checkers) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (; gs->nchecker < want; gs->nchecker++)
		if (pthread_create(&gs->checkers[gs->nchecker], NULL, checker_main, gs)) {
			snprintf(err, errlen, "cannot start gift checker thread %u", gs->nchecker);
			goto fail;
		}
	gw_log_info("gifts: %llu journaled, %zu keys, %zu gifts in the catalog, %u checkers",
		    (unsigned long long)gw_journal_records(gs->journal), gw_keys_count(gs->keys),
		    gw_catalog_count(gs->catalog), gs->nchecker);
	return gs;
fail:
	gw_gifts_close(gs);
	return NULL;
}

void gw_gifts_close(struct gw_gifts *gs)
{
	if (!gs)
		return;
	/* Checkers first (they drain the queue into the journal), then the journal: its
	 * last done callbacks still feed the board stack. */
	pthread_mutex_lock(&gs->cq_lock);
	gs->cq_stop = true;
	pthread_cond_broadcast(&gs->cq_cond);
	pthread_mutex_unlock(&gs->cq_lock);
	for (unsigned i = 0; i < gs->nchecker; i++)
		pthread_join(gs->checkers[i], NULL);
	free(gs->checkers);
	if (gs->journal)
		gw_journal_close(gs->journal);
	if (gs->board_started) {
		pthread_mutex_lock(&gs->q_lock);
		gs->q_stop = true;
		pthread_cond_signal(&gs->q_cond);
		pthread_mutex_unlock(&gs->q_lock);
		pthread_join(gs->board_thread, NULL);
	}
	for (struct pend *p = board_take(gs), *n; p; p = n) {
		n = p->next;
		free(p);
	}
	gw_buf_free(&gs->msg);
	gw_map_free(gs->seqs, free);
	gw_board_free(gs->board);
	gw_ledger_free(gs->ledger);
	gw_catalog_free(gs->catalog);
	gw_keys_free(gs->keys);
	sodium_memzero(gs->sk, sizeof(gs->sk));
	pthread_mutex_destroy(&gs->seq_lock);
	pthread_mutex_destroy(&gs->q_lock);
	pthread_cond_destroy(&gs->q_cond);
	pthread_mutex_destroy(&gs->cq_lock);
	pthread_cond_destroy(&gs->cq_cond);
	free(gs);
}
