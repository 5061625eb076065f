/*
 * livegate-client: subscribe to one room through the client library
 * (transport/client.h) and print what arrives, or statistics.
 *
 * Threads: the main thread runs the client (all library callbacks, all
 * output); a second thread only waits for SIGINT/SIGTERM (blocked everywhere
 * else) and calls tp_client_stop(), the library's one thread-safe call.
 *
 * Exit status: 0 after --duration or a signal, 1 when the client cannot
 * start, 2 on bad flags.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libwebsockets.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "transport/client.h"

#define PROG "livegate-client"

static const char usage[] =
    "usage: " PROG " --room R [options]\n"
    "\n"
    "Subscribe to a livegate room and print its messages or statistics. By default\n"
    "the client asks the gateway which transport to use (GET /connect) and follows\n"
    "its advice, moving with its cursor so nothing is lost or repeated.\n"
    "\n"
    "  --url URL              gateway: http://HOST[:PORT], https://, ws://, wss://\n"
    "                         (default http://127.0.0.1:8080)\n"
    "  --room R               room to subscribe to ([A-Za-z0-9_-]{1,64}), required\n"
    "  --client ID            client id ([A-Za-z0-9_-]{1,64}; default: 16 random hex\n"
    "                         digits, from --seed when given)\n"
    "  --since CURSOR         start after this cursor (from an earlier batch) instead\n"
    "                         of with the next message published\n"
    "  --transport T          auto (default: follow the gateway's advice), or ws,\n"
    "                         longpoll, shortpoll to pin one transport (no /connect)\n"
    "  --fallback T           auto mode on a gateway without /connect: start on T\n"
    "                         (ws, longpoll, shortpoll; default ws)\n"
    "  --duration S           stop after S seconds (decimal; default 0: until\n"
    "                         SIGINT/SIGTERM)\n"
    "  --print WHAT           messages (default): one JSON line per delivered message on\n"
    "                         stdout, the message object as received (re-serialised);\n"
    "                         stats: one JSON statistics line per --stats-interval;\n"
    "                         none: nothing per message.\n"
    "                         A final statistics line (\"final\":true) is printed at exit:\n"
    "                         on stdout with --print stats, else on stderr.\n"
    "  --stats-interval S     seconds between statistics lines (decimal, default 1)\n"
    "  --backoff-base-ms N    reconnect backoff: first ceiling (default 500)\n"
    "  --backoff-max-ms N     reconnect backoff: largest ceiling (default 30000); each\n"
    "                         delay is uniform in [0, min(max, base * 2^attempt)]\n"
    "  --seed N               seed of the jitter and id generator (default: the clock)\n"
    "  --longpoll-wait S      long-poll wait without advice (default 25)\n"
    "  --shortpoll-interval-ms N  short-poll interval without advice (default 1000)\n"
    "  --io-timeout-ms N      connect, handshake and answer timeout beyond the\n"
    "                         long-poll wait (default 10000)\n"
    "  --ping-interval S      WebSocket ping after S s without a pong; hang up when\n"
    "                         none follows within the io timeout (default 30)\n"
    "  --stall-ms N           drop a connection that hears nothing from the gateway\n"
    "                         (no data, no ack, no keepalive answer) for about N ms,\n"
    "                         and give a connect at most N ms, then reconnect\n"
    "                         (1000..600000, 0 = off; default 4000)\n"
    "  --max-batch-bytes N    largest batch accepted (default 4194304)\n"
    "  --insecure             https/wss: accept self-signed or mismatched certificates\n"
    "  --verbose              log transport changes, advice and requests to stderr\n"
    "  --help                 this text\n"
    "\n"
    "Statistics line (all counters cumulative):\n"
    "  {\"t\":seconds since start,\"client\":id,\"transport\":current,\"delivered\":N,\n"
    "   \"duplicates\":N,\"gaps\":N (holes not explained by gap:true or suppressed),\n"
    "   \"gap_flags\":N (batches with gap:true),\"suppressed\":N,\"disconnects\":N,\n"
    "   \"failures\":N (failed attempts),\"switches\":N,\"switch_pairs\":{\"ws>longpoll\":N,...},\n"
    "   \"too_fast\":N,\"batches\":N,\"bytes\":N (payload bytes: HTTP bodies and\n"
    "   WebSocket messages, no headers or framing),\"lat_p50_ms\":N,\"lat_p95_ms\":N,\"lat_p99_ms\":N\n"
    "   (local receive time - message ts over all messages; null before the first),\n"
    "   \"advice\":transport,\"rate_per_min\":N,\"reason\":text (null without advice)}\n";

struct app {
	struct tp_client *client;
	int print; /* 0 messages, 1 stats, 2 none */
	int verbose;
	struct timespec t0;
	atomic_int finished; /* main -> signal thread: exit now */
};

static double since_start(const struct app *a)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)(ts.tv_sec - a->t0.tv_sec) + (double)(ts.tv_nsec - a->t0.tv_nsec) / 1e9;
}

static void print_stats(struct app *a, FILE *f, const struct tp_client_stats *st, int final)
{
	int first = 1;

	fprintf(f, "{\"t\":%.3f,\"client\":\"%s\",\"transport\":\"%s\"", since_start(a),
	        tp_client_id(a->client), tp_client_transport_name(st->transport));
	fprintf(f,
	        ",\"delivered\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"gaps\":%" PRIu64
	        ",\"gap_flags\":%" PRIu64 ",\"suppressed\":%" PRIu64 ",\"disconnects\":%" PRIu64
	        ",\"failures\":%" PRIu64 ",\"switches\":%" PRIu64,
	        st->delivered, st->duplicates, st->gaps, st->gap_flags, st->suppressed,
	        st->disconnects, st->failures, st->switches);
	fputs(",\"switch_pairs\":{", f);
	for (int i = 0; i < TP_CLIENT_TRANSPORTS; i++)
		for (int j = 0; j < TP_CLIENT_TRANSPORTS; j++)
			if (st->switch_pairs[i][j]) {
				fprintf(f, "%s\"%s>%s\":%" PRIu64, first ? "" : ",",
				        tp_client_transport_name(i), tp_client_transport_name(j),
				        st->switch_pairs[i][j]);
				first = 0;
			}
	fprintf(f, "},\"too_fast\":%" PRIu64 ",\"batches\":%" PRIu64 ",\"bytes\":%" PRIu64,
	        st->too_fast, st->batches, st->bytes);
	if (st->lat_p50_ms >= 0)
		fprintf(f, ",\"lat_p50_ms\":%" PRId64 ",\"lat_p95_ms\":%" PRId64
		           ",\"lat_p99_ms\":%" PRId64,
		        st->lat_p50_ms, st->lat_p95_ms, st->lat_p99_ms);
	else
		fputs(",\"lat_p50_ms\":null,\"lat_p95_ms\":null,\"lat_p99_ms\":null", f);
	if (st->have_advice) {
		fprintf(f, ",\"advice\":\"%s\"", tp_client_transport_name(st->advice_transport));
		if (isfinite(st->advice_rate_per_min))
			fprintf(f, ",\"rate_per_min\":%.3f", st->advice_rate_per_min);
		else
			fputs(",\"rate_per_min\":null", f);
		/* the library keeps only printable reasons without quotes or backslashes */
		if (st->advice_reason[0])
			fprintf(f, ",\"reason\":\"%s\"", st->advice_reason);
		else
			fputs(",\"reason\":null", f);
	} else {
		fputs(",\"advice\":null,\"rate_per_min\":null,\"reason\":null", f);
	}
	fprintf(f, "%s}\n", final ? ",\"final\":true" : "");
	fflush(f);
}

static void on_message(void *user, const char *json, size_t len, int64_t seq, int64_t ts)
{
	struct app *a = user;

	if (a->print != 0)
		return;
	fwrite(json, 1, len, stdout);
	fputc('\n', stdout);
	if (ferror(stdout)) /* e.g. the reader of a pipe went away */
		tp_client_stop(a->client);
}

static void on_stats(void *user, const struct tp_client_stats *st)
{
	struct app *a = user;

	if (a->print == 1)
		print_stats(a, stdout, st, 0);
}

static void on_log(void *user, int level, const char *line)
{
	struct app *a = user;

	if (level == 0 || a->verbose)
		fprintf(stderr, PROG ": %s\n", line);
}

static void *signal_thread(void *arg)
{
	struct app *a = arg;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	for (;;) {
		if (sigwait(&set, &sig))
			continue;
		if (atomic_load(&a->finished))
			return NULL;
		tp_client_stop(a->client);
	}
}

static int bad_flag(const char *fmt, const char *arg)
{
	fprintf(stderr, PROG ": ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(" PROG " --help lists the options)\n");
	return 2;
}

/* A whole decimal number in lo..hi. */
static int parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *v)
{
	unsigned long long n;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno || *end || n < lo || n > hi)
		return -1;
	*v = n;
	return 0;
}

/* Seconds, decimal, 0..hi, to whole milliseconds. */
static int parse_seconds_ms(const char *s, double hi, unsigned *ms)
{
	double d;
	char *end;

	if (!s || !*s)
		return -1;
	errno = 0;
	d = strtod(s, &end);
	if (errno || *end || !(d >= 0) || d > hi)
		return -1;
	*ms = (unsigned)llround(d * 1000.0);
	return 0;
}

enum {
	O_URL = 1,
	O_ROOM,
	O_CLIENT,
	O_TRANSPORT,
	O_FALLBACK,
	O_DURATION,
	O_PRINT,
	O_STATS_INTERVAL,
	O_BACKOFF_BASE,
	O_BACKOFF_MAX,
	O_SEED,
	O_LP_WAIT,
	O_SP_INTERVAL,
	O_IO_TIMEOUT,
	O_PING,
	O_STALL,
	O_SINCE,
	O_MAX_BATCH,
	O_INSECURE,
	O_VERBOSE,
	O_HELP,
};

static const struct option options[] = {
    {"url", required_argument, NULL, O_URL},
    {"room", required_argument, NULL, O_ROOM},
    {"client", required_argument, NULL, O_CLIENT},
    {"transport", required_argument, NULL, O_TRANSPORT},
    {"fallback", required_argument, NULL, O_FALLBACK},
    {"duration", required_argument, NULL, O_DURATION},
    {"print", required_argument, NULL, O_PRINT},
    {"stats-interval", required_argument, NULL, O_STATS_INTERVAL},
    {"backoff-base-ms", required_argument, NULL, O_BACKOFF_BASE},
    {"backoff-max-ms", required_argument, NULL, O_BACKOFF_MAX},
    {"seed", required_argument, NULL, O_SEED},
    {"longpoll-wait", required_argument, NULL, O_LP_WAIT},
    {"shortpoll-interval-ms", required_argument, NULL, O_SP_INTERVAL},
    {"io-timeout-ms", required_argument, NULL, O_IO_TIMEOUT},
    {"ping-interval", required_argument, NULL, O_PING},
    {"stall-ms", required_argument, NULL, O_STALL},
    {"since", required_argument, NULL, O_SINCE},
    {"max-batch-bytes", required_argument, NULL, O_MAX_BATCH},
    {"insecure", no_argument, NULL, O_INSECURE},
    {"verbose", no_argument, NULL, O_VERBOSE},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

int main(int argc, char **argv)
{
	struct app a = {0};
	struct tp_client_config cfg;
	struct tp_client_stats st;
	const char *transport = "auto";
	unsigned duration_ms = 0, stats_ms = 1000;
	char err[256];
	sigset_t set;
	pthread_t sig_thread;
	uint64_t v;
	int opt, rc = 1;

	tp_client_config_init(&cfg);
	cfg.url = "http://127.0.0.1:8080";
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case O_URL:
			cfg.url = optarg;
			break;
		case O_ROOM:
			cfg.room = optarg;
			break;
		case O_CLIENT:
			cfg.client_id = optarg;
			break;
		case O_TRANSPORT:
			transport = optarg;
			if (strcmp(optarg, "auto") &&
			    tp_client_transport_parse(optarg, &cfg.transport))
				return bad_flag(
				    "--transport must be auto, ws, longpoll or shortpoll, not '%s'",
				    optarg);
			break;
		case O_FALLBACK:
			if (tp_client_transport_parse(optarg, &cfg.transport))
				return bad_flag(
				    "--fallback must be ws, longpoll or shortpoll, not '%s'",
				    optarg);
			break;
		case O_DURATION:
			if (parse_seconds_ms(optarg, 4000000.0, &duration_ms))
				return bad_flag("--duration must be seconds, 0..4000000, not '%s'",
				                optarg);
			break;
		case O_PRINT:
			if (!strcmp(optarg, "messages"))
				a.print = 0;
			else if (!strcmp(optarg, "stats"))
				a.print = 1;
			else if (!strcmp(optarg, "none"))
				a.print = 2;
			else
				return bad_flag("--print must be messages, stats or none, not '%s'",
				                optarg);
			break;
		case O_STATS_INTERVAL:
			if (parse_seconds_ms(optarg, 86400.0, &stats_ms) || stats_ms < 10)
				return bad_flag(
				    "--stats-interval must be seconds, 0.01..86400, not '%s'",
				    optarg);
			break;
		case O_BACKOFF_BASE:
			if (parse_uint(optarg, 1, 3600000, &v))
				return bad_flag("--backoff-base-ms must be 1..3600000, not '%s'",
				                optarg);
			cfg.backoff_base_ms = (unsigned)v;
			break;
		case O_BACKOFF_MAX:
			if (parse_uint(optarg, 1, 3600000, &v))
				return bad_flag("--backoff-max-ms must be 1..3600000, not '%s'",
				                optarg);
			cfg.backoff_max_ms = (unsigned)v;
			break;
		case O_SEED:
			if (parse_uint(optarg, 1, UINT64_MAX, &v))
				return bad_flag("--seed must be a whole number >= 1, not '%s'",
				                optarg);
			cfg.seed = v;
			break;
		case O_LP_WAIT:
			if (parse_uint(optarg, 1, 3600, &v))
				return bad_flag("--longpoll-wait must be 1..3600, not '%s'",
				                optarg);
			cfg.longpoll_wait_s = (unsigned)v;
			break;
		case O_SP_INTERVAL:
			if (parse_uint(optarg, 1, 3600000, &v))
				return bad_flag(
				    "--shortpoll-interval-ms must be 1..3600000, not '%s'", optarg);
			cfg.shortpoll_interval_ms = (unsigned)v;
			break;
		case O_IO_TIMEOUT:
			if (parse_uint(optarg, 100, 600000, &v))
				return bad_flag("--io-timeout-ms must be 100..600000, not '%s'",
				                optarg);
			cfg.io_timeout_ms = (unsigned)v;
			break;
		case O_PING:
			if (parse_uint(optarg, 1, 3600, &v))
				return bad_flag("--ping-interval must be 1..3600, not '%s'",
				                optarg);
			cfg.ws_ping_s = (unsigned)v;
			break;
		case O_SINCE:
			cfg.since = optarg;
			break;
		case O_STALL:
			if (parse_uint(optarg, 0, 600000, &v) || (v && v < 1000))
				return bad_flag("--stall-ms must be 0 or 1000..600000, not '%s'",
				                optarg);
			cfg.stall_ms = (unsigned)v;
			break;
		case O_MAX_BATCH:
			if (parse_uint(optarg, 1024, 1u << 30, &v))
				return bad_flag(
				    "--max-batch-bytes must be 1024..1073741824, not '%s'", optarg);
			cfg.max_batch_bytes = (size_t)v;
			break;
		case O_INSECURE:
			cfg.tls_insecure = 1;
			break;
		case O_VERBOSE:
			a.verbose = 1;
			break;
		case O_HELP:
			fputs(usage, stdout);
			return 0;
		default:
			return bad_flag("unknown option or missing value: '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad_flag("unexpected argument '%s'", argv[optind]);
	if (!cfg.room)
		return bad_flag("%s", "--room is required");
	if (cfg.backoff_max_ms < cfg.backoff_base_ms)
		return bad_flag("%s", "--backoff-max-ms must be >= --backoff-base-ms");
	cfg.pin = strcmp(transport, "auto") != 0;
	cfg.stats_interval_ms = a.print == 1 ? stats_ms : 0;
	cfg.on_message = on_message;
	cfg.on_stats = on_stats;
	cfg.on_log = on_log;
	cfg.user = &a;

	lws_set_log_level(a.verbose ? LLL_ERR | LLL_WARN : LLL_ERR, NULL);
	if (a.print == 0)
		setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);

	/* blocked before any thread exists, so only signal_thread receives them */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	a.client = tp_client_new(&cfg, err, sizeof(err));
	if (!a.client) {
		int bad_config = errno == EINVAL; /* the URL, room or id the flags did not check */
		fprintf(stderr, PROG ": %s\n", err);
		return bad_config ? 2 : 1;
	}
	atomic_init(&a.finished, 0);
	if (pthread_create(&sig_thread, NULL, signal_thread, &a)) {
		fprintf(stderr, PROG ": cannot start the signal thread\n");
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &a.t0);
	tp_client_run(a.client, duration_ms);

	atomic_store(&a.finished, 1);
	pthread_kill(sig_thread, SIGTERM);
	pthread_join(sig_thread, NULL);

	tp_client_stats(a.client, &st);
	print_stats(&a, a.print == 1 ? stdout : stderr, &st, 1);
	rc = 0;
out:
	tp_client_free(a.client);
	return rc;
}
