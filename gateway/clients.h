/*
 * The adaptive-transport client table: per client id (docs/protocol.md,
 * "Adaptive transport") its decaying disconnect rate (rate.h), its place on
 * the transport ladder (policy.h), what its sessions look like right now, and
 * its danmaku budget. Transports report what they see (sessions opening and
 * ending, polls arriving); the table turns that into disconnects and advice.
 *
 * Concurrency protocol: ids hash onto GW_CLIENT_STRIPES stripes, each a mutex
 * over its own map, so two workers only contend on the same stripe. Every
 * call locks one stripe for a few hundred ns and never calls out while
 * holding it. Entries are created on first sight (up to adapt_max_clients in
 * all; beyond that a client is untracked and gets default advice) and swept
 * lazily once unseen for adapt_client_ttl. Times are monotonic ms passed in
 * by the caller, so tests drive the table with their own clock.
 *
 * Threads: any thread, for every function below except new/free (main thread).
 */
#ifndef GW_CLIENTS_H
#define GW_CLIENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/buf.h"
#include "gateway/policy.h"

struct gw_config;
struct gw_clients;

/* The advice for one client, as sent (see gw_advice_json). */
struct gw_advice {
	enum gw_transport transport;
	enum gw_reason reason;
	int64_t interval_ms;   /* short-poll only, else 0 */
	int64_t wait_s;        /* the long-poll wait advised */
	double rate_per_min;
	double disconnects;
	double connected_min;
	bool send;             /* this session should be told (it is not where advised) */
};

/* Main thread. cfg must outlive the table. Caller frees with gw_clients_free. NULL on OOM. */
struct gw_clients *gw_clients_new(const struct gw_config *cfg);
void gw_clients_free(struct gw_clients *cl);

/* Client ids: [A-Za-z0-9_-]{1,64}. */
bool gw_client_id_valid(const char *id, size_t len);

/*
 * GET /connect: the advice for id. room_rate: the room's messages per second
 * (gw_room_rate), for the short-poll interval. adv->send is always true.
 */
void gw_clients_connect(struct gw_clients *cl, const char *id, size_t len, double room_rate,
			int64_t now_ms, struct gw_advice *adv);

/*
 * A WebSocket of id opened. A second one while an earlier one is still open
 * means the earlier one died unseen: a disconnect. adv->send: the client
 * should move elsewhere.
 */
void gw_clients_ws_open(struct gw_clients *cl, const char *id, size_t len, double room_rate,
			int64_t now_ms, struct gw_advice *adv);
/* A WebSocket of id ended; clean: the client sent a close frame. */
void gw_clients_ws_close(struct gw_clients *cl, const char *id, size_t len, bool clean,
			 int64_t now_ms);

/*
 * A poll of id arrives (wait_s 0: short-poll). Returns 0, or -1 when a
 * short-poll comes sooner than half the advised interval after the previous
 * one: *retry_ms then says how long to wait. adv is filled either way;
 * adv->send says whether the answer should carry it.
 */
int gw_clients_poll(struct gw_clients *cl, const char *id, size_t len, int64_t wait_s,
		    double room_rate, int64_t now_ms, struct gw_advice *adv, int64_t *retry_ms);
/*
 * A long-poll of id is answered (aborted false) or its connection closed
 * while it was held (aborted true: a disconnect). Fills adv (may be NULL) for
 * the answer, computed at answer time since the wait may have been long.
 */
void gw_clients_poll_end(struct gw_clients *cl, const char *id, size_t len, bool aborted,
			 double room_rate, int64_t now_ms, struct gw_advice *adv);

/*
 * Take up to `want` danmaku from id's budget for transport t; returns how
 * many may be delivered (SIZE_MAX: t has no limit). Call before building a
 * batch, then gw_clients_budget_refund() what the batch did not use.
 */
size_t gw_clients_budget(struct gw_clients *cl, const char *id, size_t len,
			 enum gw_transport t, int64_t now_ms);
/* Does transport t have a danmaku budget at all (suppress_* > 0)? Any thread. */
bool gw_clients_budgeted(const struct gw_clients *cl, enum gw_transport t);
void gw_clients_budget_use(struct gw_clients *cl, const char *id, size_t len,
			   enum gw_transport t, size_t used);

/* Advice as the JSON object documented in docs/protocol.md. 0, or -1 on OOM. */
int gw_advice_json(const struct gw_advice *adv, const char *room, size_t room_len,
		   const char *id, size_t id_len, struct gw_buf *out);

/* Forget ids unseen for adapt_client_ttl (each stripe at most every ttl/4); returns how many. */
size_t gw_clients_sweep(struct gw_clients *cl, int64_t now_ms);
/* Client ids tracked now (the per-transport split is in /metrics). */
size_t gw_clients_count(struct gw_clients *cl);

#endif
