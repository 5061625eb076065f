/* Metrics. See metrics.h for the sharding protocol. */
#include "gateway/metrics.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct shard {
	_Atomic int64_t v[GW_M__COUNT];
} __attribute__((aligned(64)));

static struct shard *shards;
static unsigned nshards;
static _Thread_local unsigned my_slot;

/* Error codes the rejected_total counter knows; the last one catches the rest. */
static const char *const reject_codes[] = {
	"bad_room",     "bad_json",      "bad_field",       "bad_uid",        "bad_utf8",
	"bad_text",     "bad_cursor",    "bad_wait",        "not_found",      "method_not_allowed",
	"length_required", "body_too_large", "blocked",     "rate_limited",   "too_many_rooms",
	"too_many_connections", "unknown_op", "no_memory",  "message_too_big", "bad_client",
	"too_fast",     "other"};
#define N_REJECT (sizeof(reject_codes) / sizeof(reject_codes[0]))
_Static_assert(N_REJECT <= GW_M_REJECTED_LAST - GW_M_REJECTED + 1, "room for every code");

int gw_metrics_init(unsigned workers)
{
	nshards = workers + 1;
	shards = aligned_alloc(64, nshards * sizeof(struct shard));
	if (!shards)
		return -1;
	memset(shards, 0, nshards * sizeof(struct shard));
	return 0;
}

void gw_metrics_fini(void)
{
	free(shards);
	shards = NULL;
	nshards = 0;
}

void gw_metrics_bind_thread(unsigned slot)
{
	my_slot = slot < nshards ? slot : 0;
}

void gw_metric_add(enum gw_metric m, int64_t n)
{
	if (shards)
		atomic_fetch_add_explicit(&shards[my_slot].v[m], n, memory_order_relaxed);
}

void gw_metric_reject(const char *code)
{
	size_t i;

	for (i = 0; i < N_REJECT - 1; i++)
		if (!strcmp(code, reject_codes[i]))
			break;
	gw_metric_add((enum gw_metric)(GW_M_REJECTED + i), 1);
}

int64_t gw_metric_get(enum gw_metric m)
{
	int64_t sum = 0;

	for (unsigned i = 0; i < nshards; i++)
		sum += atomic_load_explicit(&shards[i].v[m], memory_order_relaxed);
	return sum;
}

struct line {
	const char *name, *type, *help, *labels;
	enum gw_metric m;
};

static const struct line lines[] = {
	{"livegate_open_connections", "gauge", "Open client TCP connections.", NULL,
	 GW_M_CONN_OPEN},
	{"livegate_connections", "gauge", "Connections held by a transport.",
	 "transport=\"ws\"", GW_M_CONN_WS},
	{"livegate_connections", NULL, NULL, "transport=\"longpoll\"", GW_M_CONN_LONGPOLL},
	{"livegate_messages_published_total", "counter", "Messages published into rooms.", NULL,
	 GW_M_PUBLISHED},
	{"livegate_messages_delivered_total", "counter", "Messages delivered to clients.",
	 "transport=\"ws\"", GW_M_DELIVERED_WS},
	{"livegate_messages_delivered_total", NULL, NULL, "transport=\"longpoll\"",
	 GW_M_DELIVERED_LONGPOLL},
	{"livegate_messages_delivered_total", NULL, NULL, "transport=\"shortpoll\"",
	 GW_M_DELIVERED_SHORTPOLL},
	{"livegate_bytes_out_total", "counter", "Payload bytes sent to clients.",
	 "transport=\"ws\"", GW_M_BYTES_WS},
	{"livegate_bytes_out_total", NULL, NULL, "transport=\"longpoll\"", GW_M_BYTES_LONGPOLL},
	{"livegate_bytes_out_total", NULL, NULL, "transport=\"shortpoll\"", GW_M_BYTES_SHORTPOLL},
	{"livegate_bytes_out_total", NULL, NULL, "transport=\"http\"", GW_M_BYTES_HTTP_OTHER},
	{"livegate_poll_requests_total", "counter", "Poll requests by kind.", "kind=\"short\"",
	 GW_M_POLL_SHORT},
	{"livegate_poll_requests_total", NULL, NULL, "kind=\"long\"", GW_M_POLL_LONG},
	{"livegate_reader_overruns_total", "counter",
	 "Reads that a writer overtook (the reader skipped ahead).", NULL, GW_M_OVERRUNS},
	{"livegate_gaps_total", "counter", "Batches delivered with gap:true.", NULL, GW_M_GAPS},
	{"livegate_gzip_bytes_saved_total", "counter",
	 "Bytes gzip saved on poll responses (uncompressed minus compressed).", NULL,
	 GW_M_GZIP_SAVED},
	{"livegate_suppressed_total", "counter",
	 "Danmaku left out of batches by a client's suppress_* budget.", NULL, GW_M_SUPPRESSED},
	{"livegate_ws_pings_total", "counter",
	 "Pings sent to WebSockets from which nothing had arrived for ws_ping_interval.", NULL,
	 GW_M_WS_PINGS},
	{"livegate_ws_ping_timeouts_total", "counter",
	 "WebSockets dropped for answering no ping within io_timeout.", NULL,
	 GW_M_WS_PING_TIMEOUTS},
	{"livegate_http_fast_requests_total", "counter",
	 "Short-polls read and answered by livegate's own HTTP/1.1 code (poll_fast_path).", NULL,
	 GW_M_H1_REQUESTS},
	{"livegate_http_handovers_total", "counter",
	 "Connections handed to libwebsockets after short-polls, at a request of another kind.",
	 NULL, GW_M_H1_HANDOVERS},
	{"livegate_http_body_closes_total", "counter",
	 "Requests with a body after short-polls on one connection, closed unanswered for the "
	 "client to resend on a new one.",
	 NULL, GW_M_H1_BODY_CLOSES},
	{"livegate_adapt_clients", "gauge", "Tracked client ids by the transport advised now.",
	 "transport=\"ws\"", GW_M_ADAPT_AT_WS},
	{"livegate_adapt_clients", NULL, NULL, "transport=\"longpoll\"", GW_M_ADAPT_AT_LONGPOLL},
	{"livegate_adapt_clients", NULL, NULL, "transport=\"shortpoll\"", GW_M_ADAPT_AT_SHORTPOLL},
	{"livegate_adapt_disconnects_total", "counter",
	 "Disconnects counted against clients' rates.", NULL, GW_M_ADAPT_DISCONNECTS},
	{"livegate_adapt_moves_total", "counter", "Advice changes, by reason.",
	 "reason=\"rate\"", GW_M_ADAPT_DOWN},
	{"livegate_adapt_moves_total", NULL, NULL, "reason=\"probe\"", GW_M_ADAPT_PROBES},
	{"livegate_adapt_moves_total", NULL, NULL, "reason=\"probe_failed\"",
	 GW_M_ADAPT_PROBES_FAILED},
	{"livegate_adapt_too_fast_total", "counter",
	 "Short-polls refused with 429 for coming sooner than advised.", NULL, GW_M_ADAPT_TOO_FAST},
};

int gw_metrics_render(struct gw_buf *out, uint64_t rooms)
{
	int rc = 0;

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		const struct line *l = &lines[i];

		if (l->help)
			rc |= gw_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", l->name, l->help,
					    l->name, l->type);
		rc |= gw_buf_printf(out, "%s%s%s%s %lld\n", l->name, l->labels ? "{" : "",
				    l->labels ? l->labels : "", l->labels ? "}" : "",
				    (long long)gw_metric_get(l->m));
	}
	rc |= gw_buf_printf(out, "# HELP livegate_rooms Rooms that exist now.\n"
				 "# TYPE livegate_rooms gauge\nlivegate_rooms %llu\n",
			    (unsigned long long)rooms);
	rc |= gw_buf_puts(out, "# HELP livegate_rejected_total Requests refused, by error code.\n"
			       "# TYPE livegate_rejected_total counter\n");
	for (size_t i = 0; i < N_REJECT; i++)
		rc |= gw_buf_printf(out, "livegate_rejected_total{error=\"%s\"} %lld\n",
				    reject_codes[i],
				    (long long)gw_metric_get((enum gw_metric)(GW_M_REJECTED + i)));
	return rc ? -1 : 0;
}
