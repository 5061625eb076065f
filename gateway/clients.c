/* The adaptive-transport client table. See clients.h. */
#include "gateway/clients.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/config.h"
#include "gateway/map.h"
#include "gateway/metrics.h"
#include "gateway/rate.h"

#define GW_CLIENT_STRIPES 16

struct client {
	struct gw_rate rate;
	struct gw_policy pol;
	int64_t seen_ms;     /* last report about this client */
	int ws_open;         /* WebSockets open now */
	int ws_presumed;     /* of those, counted as dead when a newer one opened */
	int lp_held;         /* long-polls held now */
	int64_t lp_end_ms;   /* last long-poll answer; 0: the last poll was not a long one */
	int64_t sp_ms;       /* last short-poll; 0: the last poll was not a short one */
	int64_t sp_interval; /* interval advised with the last short-poll answer */
	double tokens;       /* danmaku budget (see suppress_*) */
	int64_t tokens_ms;
	enum gw_transport tokens_tp;
	int64_t told_ms;     /* advice for another transport last put in a poll answer */
	enum gw_transport told_tp;
};

/*
 * A poll client that stays where it is against the advice (pinned, or an old
 * client) is told again at most this often, not in every answer.
 */
#define ADVICE_REPEAT_MS 10000

struct stripe {
	pthread_mutex_t lock;
	struct gw_map *map; /* id -> struct client */
	int64_t swept_ms;
	char pad[64];
};

struct gw_clients {
	const struct gw_config *cfg;
	struct gw_policy_cfg pcfg;
	double half_life_ms, floor_ms;
	_Atomic uint64_t count;
	struct stripe stripes[GW_CLIENT_STRIPES];
};

struct gw_clients *gw_clients_new(const struct gw_config *cfg)
{
	struct gw_clients *cl = calloc(1, sizeof(*cl));
	int i;

	if (!cl)
		return NULL;
	cl->cfg = cfg;
	cl->pcfg = (struct gw_policy_cfg){
	    .longpoll_above = cfg->adapt_longpoll_above,
	    .shortpoll_above = cfg->adapt_shortpoll_above,
	    .hysteresis = cfg->adapt_hysteresis,
	    .probe_after_ms = (int64_t)(cfg->adapt_probe_after * 1000),
	    .probe_max_ms = (int64_t)(cfg->adapt_probe_max * 1000)};
	cl->half_life_ms = cfg->adapt_half_life * 1000;
	cl->floor_ms = cfg->adapt_min_connected * 1000;
	for (i = 0; i < GW_CLIENT_STRIPES; i++) {
		pthread_mutex_init(&cl->stripes[i].lock, NULL);
		cl->stripes[i].map = gw_map_new();
		if (!cl->stripes[i].map) {
			gw_clients_free(cl);
			return NULL;
		}
	}
	return cl;
}

void gw_clients_free(struct gw_clients *cl)
{
	if (!cl)
		return;
	for (int i = 0; i < GW_CLIENT_STRIPES; i++) {
		if (cl->stripes[i].map)
			gw_map_free(cl->stripes[i].map, free);
		pthread_mutex_destroy(&cl->stripes[i].lock);
	}
	free(cl);
}

bool gw_client_id_valid(const char *id, size_t len)
{
	if (len < 1 || len > 64)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Sweep state: the stripe's lock is held. */
struct sweep {
	struct gw_clients *cl;
	int64_t before;
	struct gw_buf keys; /* NUL-separated ids to delete */
};

static void sweep_one(void *arg, const void *key, size_t klen, void *value)
{
	struct sweep *sw = arg;
	struct client *c = value;

	if (c->seen_ms < sw->before && c->ws_open == 0 && c->lp_held == 0)
		(void)(gw_buf_append(&sw->keys, key, klen) || gw_buf_putc(&sw->keys, '\0'));
}

static void forget(struct gw_clients *cl, struct stripe *st, const char *id, size_t len)
{
	struct client *c = gw_map_del(st->map, id, len);

	if (c) {
		gw_metric_add((enum gw_metric)(GW_M_ADAPT_AT_WS + c->pol.level), -1);
		atomic_fetch_sub_explicit(&cl->count, 1, memory_order_relaxed);
		free(c);
	}
}

/* Stripe lock held. Drops entries unseen for the ttl, at most every ttl/4. */
static size_t sweep(struct gw_clients *cl, struct stripe *st, int64_t now_ms)
{
	int64_t ttl = cl->cfg->adapt_client_ttl * 1000;
	struct sweep sw = {.cl = cl, .before = now_ms - ttl};
	size_t n = 0;

	if (now_ms - st->swept_ms < ttl / 4)
		return 0;
	st->swept_ms = now_ms;
	gw_buf_init(&sw.keys, 0);
	gw_map_each(st->map, sweep_one, &sw);
	for (size_t off = 0; off < sw.keys.len;) {
		const char *k = gw_buf_data(&sw.keys) + off;
		size_t len = strlen(k);
		forget(cl, st, k, len);
		off += len + 1;
		n++;
	}
	gw_buf_free(&sw.keys);
	return n;
}

size_t gw_clients_sweep(struct gw_clients *cl, int64_t now_ms)
{
	size_t n = 0;

	for (int i = 0; i < GW_CLIENT_STRIPES; i++) {
		pthread_mutex_lock(&cl->stripes[i].lock);
		n += sweep(cl, &cl->stripes[i], now_ms);
		pthread_mutex_unlock(&cl->stripes[i].lock);
	}
	return n;
}

static struct stripe *stripe_of(struct gw_clients *cl, const char *id, size_t len)
{
	return &cl->stripes[gw_hash_bytes(id, len) % GW_CLIENT_STRIPES];
}

/* Stripe lock held. The entry for id, created on first sight; NULL: untracked. */
static struct client *lookup(struct gw_clients *cl, struct stripe *st, const char *id,
			     size_t len, int64_t now_ms)
{
	struct client *c = gw_map_get(st->map, id, len);

	if (c)
		return c;
	sweep(cl, st, now_ms);
	if (atomic_load_explicit(&cl->count, memory_order_relaxed) >=
	    (uint64_t)cl->cfg->adapt_max_clients)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	gw_rate_init(&c->rate, now_ms);
	gw_policy_init(&c->pol, &cl->pcfg, now_ms);
	c->seen_ms = now_ms;
	c->tokens_ms = now_ms;
	c->tokens = -1; /* filled on first use, for whichever transport */
	if (gw_map_put(st->map, id, len, c, NULL) < 0) {
		free(c);
		return NULL;
	}
	atomic_fetch_add_explicit(&cl->count, 1, memory_order_relaxed);
	gw_metric_add(GW_M_ADAPT_AT_WS, 1);
	return c;
}

/*
 * Bring c up to now: connected time accrues for the whole interval while a
 * WebSocket or long-poll is held, else for at most what a polling client
 * could leave between polls (so a client that went away stops accruing).
 */
static void observe(struct gw_clients *cl, struct client *c, int64_t now_ms)
{
	int64_t dt = now_ms - c->seen_ms, conn = dt;
	double sp_allow = cl->cfg->adapt_shortpoll_miss * (double)cl->cfg->adapt_shortpoll_max_ms;
	double lp_allow = cl->cfg->adapt_longpoll_gap * 1000;
	int64_t allow = (int64_t)(sp_allow > lp_allow ? sp_allow : lp_allow);

	if (dt < 0)
		return;
	if (c->ws_open == 0 && c->lp_held == 0 && conn > allow)
		conn = allow;
	gw_rate_advance(&c->rate, now_ms, conn, cl->half_life_ms);
	c->seen_ms = now_ms;
}

static void set_level_counts(struct gw_clients *cl, enum gw_transport was, enum gw_transport now)
{
	if (was == now)
		return;
	gw_metric_add((enum gw_metric)(GW_M_ADAPT_AT_WS + was), -1);
	gw_metric_add((enum gw_metric)(GW_M_ADAPT_AT_WS + now), 1);
}

static void count_move(enum gw_reason why)
{
	if (why == GW_WHY_PROBE)
		gw_metric_add(GW_M_ADAPT_PROBES, 1);
	else if (why == GW_WHY_PROBE_FAILED)
		gw_metric_add(GW_M_ADAPT_PROBES_FAILED, 1);
	else
		gw_metric_add(GW_M_ADAPT_DOWN, 1);
}

static void disconnect(struct gw_clients *cl, struct client *c, int64_t now_ms)
{
	enum gw_transport was = c->pol.level;

	gw_metric_add(GW_M_ADAPT_DISCONNECTS, 1);
	gw_rate_event(&c->rate, now_ms, cl->half_life_ms);
	gw_policy_event(&c->pol, &cl->pcfg, gw_rate_per_min(&c->rate, cl->floor_ms), now_ms);
	if (c->pol.level != was)
		count_move(c->pol.reason);
	set_level_counts(cl, was, c->pol.level);
}

static void tick(struct gw_clients *cl, struct client *c, int64_t now_ms)
{
	enum gw_transport was = c->pol.level;

	gw_policy_tick(&c->pol, &cl->pcfg, gw_rate_per_min(&c->rate, cl->floor_ms), now_ms);
	if (c->pol.level != was)
		count_move(c->pol.reason);
	set_level_counts(cl, was, c->pol.level);
}

/* Busy rooms poll faster: target messages per poll at the room's rate, bounded. */
static int64_t interval_for(const struct gw_config *cfg, double room_rate)
{
	double ms = room_rate > 0 ? cfg->adapt_shortpoll_target_msgs * 1000.0 / room_rate
				  : (double)cfg->adapt_shortpoll_max_ms;

	if (ms < (double)cfg->adapt_shortpoll_min_ms)
		return cfg->adapt_shortpoll_min_ms;
	if (ms > (double)cfg->adapt_shortpoll_max_ms)
		return cfg->adapt_shortpoll_max_ms;
	return (int64_t)ms;
}

static void fill(struct gw_clients *cl, const struct client *c, double room_rate,
		 struct gw_advice *adv)
{
	const struct gw_config *cfg = cl->cfg;
	int64_t wait = cfg->adapt_longpoll_wait < cfg->longpoll_max_wait ? cfg->adapt_longpoll_wait
									 : cfg->longpoll_max_wait;

	*adv = (struct gw_advice){.transport = GW_TP_WS, .reason = GW_WHY_UNTRACKED, .wait_s = wait};
	if (!c)
		return;
	adv->transport = c->pol.level;
	adv->reason = c->pol.reason;
	adv->interval_ms = c->pol.level == GW_TP_SHORTPOLL ? interval_for(cfg, room_rate) : 0;
	adv->rate_per_min = gw_rate_per_min(&c->rate, cl->floor_ms);
	adv->disconnects = c->rate.events;
	adv->connected_min = c->rate.connected_ms / 60000.0;
}

/* Stripe lock held: should a poll answer on transport `on` carry adv? */
static bool tell(struct client *c, const struct gw_advice *adv, enum gw_transport on,
		 int64_t now_ms)
{
	if (adv->transport == on)
		return false;
	if (c->told_ms && c->told_tp == adv->transport && now_ms - c->told_ms < ADVICE_REPEAT_MS)
		return false;
	c->told_ms = now_ms;
	c->told_tp = adv->transport;
	return true;
}

void gw_clients_connect(struct gw_clients *cl, const char *id, size_t len, double room_rate,
			int64_t now_ms, struct gw_advice *adv)
{
	struct stripe *st = stripe_of(cl, id, len);
	struct client *c;

	pthread_mutex_lock(&st->lock);
	c = lookup(cl, st, id, len, now_ms);
	if (c) {
		observe(cl, c, now_ms);
		tick(cl, c, now_ms);
	}
	fill(cl, c, room_rate, adv);
	pthread_mutex_unlock(&st->lock);
	adv->send = true;
}

void gw_clients_ws_open(struct gw_clients *cl, const char *id, size_t len, double room_rate,
			int64_t now_ms, struct gw_advice *adv)
{
	struct stripe *st = stripe_of(cl, id, len);
	struct client *c;

	pthread_mutex_lock(&st->lock);
	c = lookup(cl, st, id, len, now_ms);
	if (c) {
		observe(cl, c, now_ms);
		if (c->ws_open > c->ws_presumed) {
			c->ws_presumed++;
			disconnect(cl, c, now_ms);
		}
		c->ws_open++;
		c->lp_end_ms = c->sp_ms = 0;
		tick(cl, c, now_ms);
	}
	fill(cl, c, room_rate, adv);
	adv->send = adv->transport != GW_TP_WS;
	pthread_mutex_unlock(&st->lock);
}

void gw_clients_ws_close(struct gw_clients *cl, const char *id, size_t len, bool clean,
			 int64_t now_ms)
{
	struct stripe *st = stripe_of(cl, id, len);
	struct client *c;

	pthread_mutex_lock(&st->lock);
	c = gw_map_get(st->map, id, len);
	if (c && c->ws_open > 0) {
		observe(cl, c, now_ms);
		c->ws_open--;
		if (c->ws_presumed > 0)
			c->ws_presumed--; /* already counted when the newer one opened */
		else if (!clean)
			disconnect(cl, c, now_ms);
	}
	pthread_mutex_unlock(&st->lock);
}

int gw_clients_poll(struct gw_clients *cl, const char *id, size_t len, int64_t wait_s,
		    double room_rate, int64_t now_ms, struct gw_advice *adv, int64_t *retry_ms)
{
	const struct gw_config *cfg = cl->cfg;
	struct stripe *st = stripe_of(cl, id, len);
	struct client *c;
	int64_t iv = 0;
	int rc = 0;

	pthread_mutex_lock(&st->lock);
	c = lookup(cl, st, id, len, now_ms);
	if (!c) {
		fill(cl, c, room_rate, adv);
		goto out;
	}
	observe(cl, c, now_ms);
	if (wait_s > 0) {
		if (c->lp_end_ms && now_ms - c->lp_end_ms > (int64_t)(cfg->adapt_longpoll_gap * 1000))
			disconnect(cl, c, now_ms);
		c->lp_held++;
		c->sp_ms = 0;
	} else {
		int64_t since = now_ms - c->sp_ms;

		iv = c->sp_interval ? c->sp_interval : cfg->adapt_shortpoll_min_ms;
		if (c->sp_ms && since < iv / 2) {
			*retry_ms = iv - since;
			rc = -1;
			gw_metric_add(GW_M_ADAPT_TOO_FAST, 1);
		} else {
			if (c->sp_ms && (double)since > cfg->adapt_shortpoll_miss * (double)iv)
				disconnect(cl, c, now_ms);
			c->sp_ms = now_ms;
		}
		c->lp_end_ms = 0;
	}
	tick(cl, c, now_ms);
	fill(cl, c, room_rate, adv);
	if (rc) {
		adv->interval_ms = iv; /* whatever the advice, this is the pace enforced */
	} else if (wait_s == 0) {
		adv->send = adv->transport == GW_TP_SHORTPOLL ? adv->interval_ms != c->sp_interval
							      : tell(c, adv, GW_TP_SHORTPOLL, now_ms);
		if (adv->transport == GW_TP_SHORTPOLL)
			c->sp_interval = adv->interval_ms;
	}
out:
	pthread_mutex_unlock(&st->lock);
	return rc;
}

void gw_clients_poll_end(struct gw_clients *cl, const char *id, size_t len, bool aborted,
			 double room_rate, int64_t now_ms, struct gw_advice *adv)
{
	struct stripe *st = stripe_of(cl, id, len);
	struct client *c;

	pthread_mutex_lock(&st->lock);
	c = gw_map_get(st->map, id, len);
	if (c && c->lp_held > 0) {
		observe(cl, c, now_ms);
		c->lp_held--;
		if (aborted)
			disconnect(cl, c, now_ms);
		else
			c->lp_end_ms = now_ms;
		tick(cl, c, now_ms);
	}
	if (adv) {
		fill(cl, c, room_rate, adv);
		adv->send = c ? tell(c, adv, GW_TP_LONGPOLL, now_ms) : false;
	}
	pthread_mutex_unlock(&st->lock);
}

static int64_t limit_of(const struct gw_config *cfg, enum gw_transport t)
{
	return t == GW_TP_SHORTPOLL ? cfg->suppress_shortpoll
	       : t == GW_TP_LONGPOLL ? cfg->suppress_longpoll
				     : cfg->suppress_ws;
}

/* Stripe lock held: refill c's bucket for transport t up to now. */
static void refill(const struct gw_config *cfg, struct client *c, enum gw_transport t,
		   int64_t now_ms)
{
	double cap = (double)limit_of(cfg, t);

	if (c->tokens < 0 || c->tokens_tp != t) {
		c->tokens = cap; /* a new transport starts with a full budget */
		c->tokens_tp = t;
	} else if (now_ms > c->tokens_ms) {
		c->tokens += cap * (double)(now_ms - c->tokens_ms) / (cfg->suppress_period * 1000);
		if (c->tokens > cap)
			c->tokens = cap;
	}
	c->tokens_ms = now_ms;
}

bool gw_clients_budgeted(const struct gw_clients *cl, enum gw_transport t)
{
	return limit_of(cl->cfg, t) != 0;
}

size_t gw_clients_budget(struct gw_clients *cl, const char *id, size_t len,
			 enum gw_transport t, int64_t now_ms)
{
	struct stripe *st;
	struct client *c;
	size_t n = SIZE_MAX;

	if (limit_of(cl->cfg, t) == 0)
		return SIZE_MAX;
	st = stripe_of(cl, id, len);
	pthread_mutex_lock(&st->lock);
	c = gw_map_get(st->map, id, len);
	if (c) {
		refill(cl->cfg, c, t, now_ms);
		n = (size_t)floor(c->tokens);
	}
	pthread_mutex_unlock(&st->lock);
	return n;
}

void gw_clients_budget_use(struct gw_clients *cl, const char *id, size_t len,
			   enum gw_transport t, size_t used)
{
	struct stripe *st;
	struct client *c;

	if (limit_of(cl->cfg, t) == 0 || used == 0)
		return;
	st = stripe_of(cl, id, len);
	pthread_mutex_lock(&st->lock);
	c = gw_map_get(st->map, id, len);
	if (c && c->tokens_tp == t) {
		c->tokens -= (double)used;
		if (c->tokens < 0)
			c->tokens = 0;
	}
	pthread_mutex_unlock(&st->lock);
}

int gw_advice_json(const struct gw_advice *adv, const char *room, size_t room_len,
		   const char *id, size_t id_len, struct gw_buf *out)
{
	/* Room and id are [A-Za-z0-9_-]: nothing to escape. */
	int r = gw_buf_printf(out, "{\"transport\":\"%s\",\"ws_url\":\"/v1/rooms/%.*s/ws?client=%.*s\","
				   "\"poll_url\":\"/v1/rooms/%.*s/poll?client=%.*s",
			      gw_transport_name(adv->transport), (int)room_len, room, (int)id_len, id,
			      (int)room_len, room, (int)id_len, id);

	if (!r && adv->transport != GW_TP_SHORTPOLL)
		r = gw_buf_printf(out, "&wait=%lld", (long long)adv->wait_s);
	if (!r)
		r = gw_buf_printf(out,
				  "\",\"interval_ms\":%lld,\"rate_per_min\":%.3f,\"disconnects\":%.3f,"
				  "\"connected_min\":%.3f,\"reason\":\"%s\"}",
				  (long long)adv->interval_ms, adv->rate_per_min, adv->disconnects,
				  adv->connected_min, gw_reason_name(adv->reason));
	return r;
}

size_t gw_clients_count(struct gw_clients *cl)
{
	return atomic_load_explicit(&cl->count, memory_order_relaxed);
}
