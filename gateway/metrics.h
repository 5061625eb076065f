/*
 * Counters and gauges for /metrics.
 *
 * Concurrency protocol: one shard of counters per thread slot (workers get
 * 1..N, everything else shares slot 0), each on its own cache lines, updated
 * with relaxed atomic adds, so the hot path never shares a line between
 * workers. Rendering sums the shards with relaxed loads: each value is exact,
 * the set is not a snapshot (fine for Prometheus).
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stdint.h>

#include "gateway/buf.h"

enum gw_metric {
	GW_M_PUBLISHED,
	GW_M_DELIVERED_WS,
	GW_M_DELIVERED_LONGPOLL,
	GW_M_DELIVERED_SHORTPOLL,
	GW_M_BYTES_WS,
	GW_M_BYTES_LONGPOLL,
	GW_M_BYTES_SHORTPOLL,
	GW_M_BYTES_HTTP_OTHER,
	GW_M_POLL_SHORT,
	GW_M_POLL_LONG,
	GW_M_OVERRUNS,
	GW_M_GZIP_SAVED,
	GW_M_GAPS,
	GW_M_SUPPRESSED,
	GW_M_WS_PINGS,
	GW_M_WS_PING_TIMEOUTS,
	GW_M_H1_REQUESTS,
	GW_M_H1_HANDOVERS,
	GW_M_H1_BODY_CLOSES,
	GW_M_ADAPT_DISCONNECTS,
	GW_M_ADAPT_DOWN,
	GW_M_ADAPT_PROBES,
	GW_M_ADAPT_PROBES_FAILED,
	GW_M_ADAPT_TOO_FAST,
	GW_M_REJECTED, /* first of the per-error-code counters; see gw_metric_reject */
	GW_M_REJECTED_LAST = GW_M_REJECTED + 23,
	/* Gauges (added to with +1 / -1). */
	GW_M_CONN_OPEN,
	GW_M_CONN_WS,
	GW_M_CONN_LONGPOLL,
	GW_M_ADAPT_AT_WS, /* tracked clients advised each transport; same order as gw_transport */
	GW_M_ADAPT_AT_LONGPOLL,
	GW_M_ADAPT_AT_SHORTPOLL,
	GW_M__COUNT
};

/* Main thread, before workers: slots for n worker threads. Returns 0 or -1. */
int gw_metrics_init(unsigned workers);
void gw_metrics_fini(void);
/* Calling thread: use shard `slot` (1..workers) from now on. */
void gw_metrics_bind_thread(unsigned slot);
/* Any thread. */
void gw_metric_add(enum gw_metric m, int64_t n);
/* Count a rejected request under its error code (unknown codes count as "other"). */
void gw_metric_reject(const char *code);
/* Sum over shards. Any thread. */
int64_t gw_metric_get(enum gw_metric m);
/* Append the Prometheus text; rooms = current room count. Any thread. */
int gw_metrics_render(struct gw_buf *out, uint64_t rooms);

#endif
