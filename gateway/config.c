/*
 * Configuration: the one table of settings, and the code that reads it.
 *
 * Every setting is a row of gw_config_table[]; defaults, the JSON file, the flags, --help and
 * docs/config.md (--help-markdown) are all driven by the rows, so a setting added here is
 * parsed, range-checked and documented everywhere at once, and the docs cannot drift.
 *
 * Values are applied from text (defaults and flags) or from JSON values (the file) through
 * the same setters, so a bound or a choice is checked in exactly one place.
 *
 * Threads: loaded once by the main thread before any worker starts; read-only afterwards,
 * so nothing here locks. Depends only on libc and json-c so that it can run before logging
 * or anything else is set up.
 */
#include "gateway/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

/* Terminal width --help wraps to: the project's column limit. */
#define USAGE_WIDTH 100
/* A config file this big is a mistake (wrong path), not a configuration. */
#define CONFIG_FILE_MAX (1u << 20)

static const char *const blocked_words_modes[] = {"mask", "reject", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};

#define ROW(n, field, t) .name = n, .type = t, .offset = offsetof(struct gw_config, field)

const struct gw_config_def gw_config_table[] = {
    /* listener */
    {ROW("bind", bind, GW_CFG_STRING), .def = "127.0.0.1", .help = "IP address to listen on"},
    {ROW("port", port, GW_CFG_INT), .min = 1, .max = 65535, .def = "8080",
     .help = "TCP port to listen on"},
    {ROW("workers", workers, GW_CFG_INT), .min = 0, .max = 64, .def = "0",
     .help = "worker threads; 0 = one per online core"},
    {ROW("max_connections", max_connections, GW_CFG_INT), .min = 1, .max = 1000000, .def = "100000",
     .help = "open client connections allowed, whole process"},
    {ROW("tls_cert", tls_cert, GW_CFG_STRING), .def = "",
     .help = "PEM certificate chain file; with tls_key also set the listener serves https/wss"},
    {ROW("tls_key", tls_key, GW_CFG_STRING), .def = "",
     .help = "PEM private key file; with tls_cert also set the listener serves https/wss"},
    /* storage */
    {ROW("config", config_file, GW_CFG_STRING), .def = "", .flags = GW_CFG_FLAG_ONLY,
     .help = "JSON config file; applied over the defaults and under the flags (flag only)"},
    {ROW("data_dir", data_dir, GW_CFG_STRING), .def = "./livegate-data",
     .help = "directory where anything durable is kept"},
    /* rooms and rings */
    {ROW("window", window, GW_CFG_INT), .min = 1, .max = 3600, .def = "60",
     .help = "seconds of history kept per room"},
    {ROW("ring_slots", ring_slots, GW_CFG_INT), .min = 1024, .max = 4194304, .def = "65536",
     .flags = GW_CFG_POW2, .help = "messages per room ring"},
    {ROW("ring_bytes", ring_bytes, GW_CFG_INT), .min = 65536, .max = 1073741824, .def = "16777216",
     .help = "encoded bytes per room ring; virtual memory, pages are touched only as used"},
    {ROW("max_rooms", max_rooms, GW_CFG_INT), .min = 1, .max = 1000000, .def = "10000",
     .help = "rooms that may exist at once"},
    /* input limits */
    {ROW("text_max_chars", text_max_chars, GW_CFG_INT), .min = 1, .max = 10000, .def = "200",
     .help = "longest danmaku text, in code points"},
    {ROW("max_body_bytes", max_body_bytes, GW_CFG_INT), .min = 256, .max = 1048576, .def = "8192",
     .help = "largest HTTP request body, in bytes"},
    {ROW("ws_max_message_bytes", ws_max_message_bytes, GW_CFG_INT), .min = 256, .max = 1048576,
     .def = "8192", .help = "largest incoming WebSocket message, in bytes"},
    /* output */
    {ROW("batch_max_bytes", batch_max_bytes, GW_CFG_INT), .min = 4096, .max = 67108864,
     .def = "1048576", .help = "bytes of messages in one delivered batch, at most"},
    {ROW("longpoll_max_wait", longpoll_max_wait, GW_CFG_INT), .min = 1, .max = 300, .def = "30",
     .help = "longest wait a long-poll may ask for, in seconds"},
    {ROW("gzip_min_bytes", gzip_min_bytes, GW_CFG_INT), .min = 0, .max = 1048576, .def = "512",
     .help = "poll bodies smaller than this many bytes are sent uncompressed"},
    {ROW("gzip_level", gzip_level, GW_CFG_INT), .min = 1, .max = 9, .def = "6",
     .help = "gzip level for poll bodies: 1 fastest, 9 smallest"},
    {ROW("poll_cache_entries", poll_cache_entries, GW_CFG_INT), .min = 0, .max = 64, .def = "8",
     .help = "poll answers (batch and its gzip) each worker keeps for the polls that come at the "
	     "same cursor before the room changes; 0 builds every answer"},
    {ROW("poll_fast_path", poll_fast_path, GW_CFG_INT), .min = 0, .max = 1, .def = "1",
     .help = "1: plain-HTTP short-polls are read and answered by livegate's own HTTP/1.1 code, "
	     "every other request is handed to libwebsockets; 0: everything through "
	     "libwebsockets (TLS listeners always are)"},
    /* rate limits */
    {ROW("rate_uid", rate_uid, GW_CFG_DOUBLE), .min = 0.01, .max = 1000000, .def = "3",
     .help = "danmaku per second per uid, sustained"},
    {ROW("burst_uid", burst_uid, GW_CFG_DOUBLE), .min = 1, .max = 1000000, .def = "6",
     .help = "danmaku a uid may send at once after being idle"},
    {ROW("rate_room", rate_room, GW_CFG_DOUBLE), .min = 0.01, .max = 10000000, .def = "2000",
     .help = "danmaku per second per room, sustained"},
    {ROW("burst_room", burst_room, GW_CFG_DOUBLE), .min = 1, .max = 10000000, .def = "4000",
     .help = "danmaku a room may take at once after being idle"},
    {ROW("rate_max_keys", rate_max_keys, GW_CFG_INT), .min = 1, .max = 10000000, .def = "200000",
     .help = "keys (uids or rooms) tracked by each rate limiter"},
    /* content */
    {ROW("blocked_words_file", blocked_words_file, GW_CFG_STRING), .def = "",
     .help = "file of blocked words, one per line; empty = no filter"},
    {ROW("blocked_words_mode", blocked_words_mode, GW_CFG_ENUM), .def = "mask",
     .choices = blocked_words_modes,
     .help = "on a blocked word: mask it with one * per character, or reject the post"},
    {ROW("flush_interval_ms", flush_interval_ms, GW_CFG_INT), .min = 0, .max = 1000, .def = "25",
     .help = "ms a worker waits after a room changes before sending, so batches form under "
	     "load; 0 sends at once"},
    {ROW("flush_chunk", flush_chunk, GW_CFG_INT), .min = 0, .max = 1000000, .def = "256",
     .help = "WebSocket subscribers a worker writes before it reads new requests again; the "
	     "rest of the round follows on the next loop iteration and sends what arrived "
	     "meanwhile; 0 = the whole round at once"},
    /* gifts */
    {ROW("admin_token", admin_token, GW_CFG_STRING), .def = "",
     .help = "bearer token for PUT /v1/keys/{uid}; the environment variable "
	     "LIVEGATE_ADMIN_TOKEN overrides it; empty = key registration disabled"},
    {ROW("gift_catalog_file", gift_catalog_file, GW_CFG_STRING), .def = "",
     .help = "JSON gift catalog {\"gifts\":[{\"id\",\"name\",\"price\"}]}; empty = built-in"},
    {ROW("gift_max_skew", gift_max_skew, GW_CFG_INT), .min = 1, .max = 86400, .def = "300",
     .help = "seconds a gift's signed ts may differ from the server's clock"},
    {ROW("gift_commit_delay_us", gift_commit_delay_us, GW_CFG_INT), .min = 0, .max = 100000,
     .def = "1000", .help = "under load, microseconds the gift journal lets a group commit "
			    "fill before its write + fdatasync; 0 = write at once"},
    {ROW("gift_threads", gift_threads, GW_CFG_INT), .min = 0, .max = 64, .def = "0",
     .help = "threads that check gift signatures and sign receipts; 0 = one per online core"},
    {ROW("gift_queue_max", gift_queue_max, GW_CFG_INT), .min = 1, .max = 10000000,
     .def = "65536", .help = "gifts waiting for a checker thread before sends are refused "
			     "(503 busy)"},
    /* timeouts */
    {ROW("ws_ping_interval", ws_ping_interval, GW_CFG_INT), .min = 0, .max = 3600, .def = "20",
     .help = "seconds between pings to an idle WebSocket; 0 disables"},
    {ROW("io_timeout", io_timeout, GW_CFG_INT), .min = 1, .max = 600, .def = "10",
     .help = "seconds allowed for request headers, a request body, or a pong"},
    {ROW("keepalive_timeout", keepalive_timeout, GW_CFG_INT), .min = 1, .max = 3600, .def = "30",
     .help = "seconds an idle keep-alive HTTP connection is kept open"},
    /* adaptive transport (docs/protocol.md, "Adaptive transport") */
    {ROW("adapt_longpoll_above", adapt_longpoll_above, GW_CFG_DOUBLE), .min = 0.001, .max = 1000000,
     .def = "2", .help = "disconnects per minute of connected time at which a client is moved "
			 "from WebSocket to long-poll"},
    {ROW("adapt_shortpoll_above", adapt_shortpoll_above, GW_CFG_DOUBLE), .min = 0.001,
     .max = 1000000, .def = "6",
     .help = "disconnects per minute at which a client is moved to short-poll"},
    {ROW("adapt_hysteresis", adapt_hysteresis, GW_CFG_DOUBLE), .min = 0.01, .max = 1, .def = "0.5",
     .help = "a client moves up only while its rate is below this x the threshold it crossed"},
    {ROW("adapt_half_life", adapt_half_life, GW_CFG_DOUBLE), .min = 0.1, .max = 86400, .def = "120",
     .help = "seconds: half-life of the disconnect count and connected time behind the rate"},
    {ROW("adapt_min_connected", adapt_min_connected, GW_CFG_DOUBLE), .min = 0.1, .max = 86400,
     .def = "30", .help = "seconds: the rate's denominator never counts less connected time"},
    {ROW("adapt_probe_after", adapt_probe_after, GW_CFG_DOUBLE), .min = 0.1, .max = 86400,
     .def = "60", .help = "seconds without a disconnect before a client is probed one level up"},
    {ROW("adapt_probe_max", adapt_probe_max, GW_CFG_DOUBLE), .min = 0.1, .max = 86400, .def = "960",
     .help = "seconds: the probe period doubles after each failed probe, up to this"},
    {ROW("adapt_longpoll_wait", adapt_longpoll_wait, GW_CFG_INT), .min = 1, .max = 300, .def = "25",
     .help = "the wait= advised to long-poll clients (capped at longpoll_max_wait)"},
    {ROW("adapt_longpoll_gap", adapt_longpoll_gap, GW_CFG_DOUBLE), .min = 0.1, .max = 86400,
     .def = "10", .help = "seconds between a long-poll answer and the client's next poll beyond "
			  "which it counts as a disconnect"},
    {ROW("adapt_shortpoll_miss", adapt_shortpoll_miss, GW_CFG_DOUBLE), .min = 1.5, .max = 100,
     .def = "3", .help = "a short-poll later than this x the advised interval counts as a "
			 "disconnect"},
    {ROW("adapt_shortpoll_min_ms", adapt_shortpoll_min_ms, GW_CFG_INT), .min = 50, .max = 600000,
     .def = "1000", .help = "shortest short-poll interval advised (busy rooms)"},
    {ROW("adapt_shortpoll_max_ms", adapt_shortpoll_max_ms, GW_CFG_INT), .min = 50, .max = 600000,
     .def = "5000", .help = "longest short-poll interval advised (quiet rooms)"},
    {ROW("adapt_shortpoll_target_msgs", adapt_shortpoll_target_msgs, GW_CFG_DOUBLE), .min = 0.01,
     .max = 100000, .def = "5",
     .help = "messages per short-poll the advised interval aims at, at the room's rate"},
    {ROW("adapt_max_clients", adapt_max_clients, GW_CFG_INT), .min = 1, .max = 10000000,
     .def = "100000", .help = "client ids tracked at once; beyond it new ids get default advice"},
    {ROW("adapt_client_ttl", adapt_client_ttl, GW_CFG_INT), .min = 1, .max = 86400, .def = "600",
     .help = "seconds an unseen client id is remembered"},
    {ROW("suppress_shortpoll", suppress_shortpoll, GW_CFG_INT), .min = 0, .max = 1000000,
     .def = "15", .help = "danmaku per suppress_period delivered to a short-poll client; "
			  "0 = no limit (gifts and other messages are never suppressed)"},
    {ROW("suppress_longpoll", suppress_longpoll, GW_CFG_INT), .min = 0, .max = 1000000, .def = "0",
     .help = "the same for long-poll clients"},
    {ROW("suppress_ws", suppress_ws, GW_CFG_INT), .min = 0, .max = 1000000, .def = "0",
     .help = "the same for WebSocket clients"},
    {ROW("suppress_period", suppress_period, GW_CFG_DOUBLE), .min = 0.1, .max = 3600, .def = "3",
     .help = "seconds over which the suppress_* budgets refill"},
    /* logging */
    {ROW("log_level", log_level, GW_CFG_ENUM), .def = "info", .choices = log_levels,
     .help = "least severe level written to the log"},
};

const size_t gw_config_table_len = sizeof(gw_config_table) / sizeof(gw_config_table[0]);

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int64_t *int_field(struct gw_config *cfg, const struct gw_config_def *d)
{
	return (int64_t *)((char *)cfg + d->offset);
}

static double *double_field(struct gw_config *cfg, const struct gw_config_def *d)
{
	return (double *)((char *)cfg + d->offset);
}

static char **string_field(struct gw_config *cfg, const struct gw_config_def *d)
{
	return (char **)((char *)cfg + d->offset);
}

static const struct gw_config_def *lookup(const char *name)
{
	for (size_t i = 0; i < gw_config_table_len; i++)
		if (strcmp(gw_config_table[i].name, name) == 0)
			return &gw_config_table[i];
	return NULL;
}

/* Bounds print as plain integers where they are ones: "1000000", not "1e+06". */
static const char *fmt_num(char *buf, size_t len, double v)
{
	if (v > -1e15 && v < 1e15 && v == (double)(int64_t)v)
		snprintf(buf, len, "%" PRId64, (int64_t)v);
	else
		snprintf(buf, len, "%g", v);
	return buf;
}

static const char *fmt_range(char *buf, size_t len, const struct gw_config_def *d)
{
	char lo[32], hi[32];

	snprintf(buf, len, "%s..%s%s", fmt_num(lo, sizeof(lo), d->min),
	         fmt_num(hi, sizeof(hi), d->max), d->flags & GW_CFG_POW2 ? ", power of two" : "");
	return buf;
}

/* "a, b, c", optionally with each choice wrapped in `quote` (for Markdown code spans). */
static const char *fmt_choices(char *buf, size_t len, const struct gw_config_def *d,
                               const char *quote)
{
	size_t used = 0;

	buf[0] = '\0';
	for (const char *const *c = d->choices; c && *c && used < len; c++) {
		int n = snprintf(buf + used, len - used, "%s%s%s%s", c == d->choices ? "" : ", ",
		                 quote, *c, quote);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	return buf;
}

/*
 * strtoll() alone takes " 1", "+1" and "" (as 0) and saturates on overflow; a setting typed
 * wrong must be refused rather than silently become something else.
 * Returns 0, -1 when the text is not an integer, -2 when it is one but overflows.
 */
static int parse_int(const char *text, int64_t *out)
{
	char *end;
	long long v;

	if (text[0] != '-' && !isdigit((unsigned char)text[0]))
		return -1;
	errno = 0;
	v = strtoll(text, &end, 10);
	if (end == text || *end != '\0')
		return -1;
	if (errno == ERANGE)
		return -2;
	*out = v;
	return 0;
}

/* Same contract as parse_int(); NaN and infinities are left for set_double() to refuse. */
static int parse_double(const char *text, double *out)
{
	char *end;
	double v;

	if (text[0] == '\0' || isspace((unsigned char)text[0]))
		return -1;
	errno = 0;
	v = strtod(text, &end);
	if (end == text || *end != '\0')
		return -1;
	if (errno == ERANGE)
		return -2;
	*out = v;
	return 0;
}

static int set_int(struct gw_config *cfg, const struct gw_config_def *d, const char *label,
                   int64_t v, char *err, size_t errlen)
{
	char range[96];

	if (v < (int64_t)d->min || v > (int64_t)d->max) {
		errf(err, errlen, "%s: %" PRId64 " is out of range %s", label, v,
		     fmt_range(range, sizeof(range), d));
		return -1;
	}
	if ((d->flags & GW_CFG_POW2) && (v & (v - 1)) != 0) {
		errf(err, errlen, "%s: %" PRId64 " is not a power of two", label, v);
		return -1;
	}
	*int_field(cfg, d) = v;
	return 0;
}

static int set_double(struct gw_config *cfg, const struct gw_config_def *d, const char *label,
                      double v, char *err, size_t errlen)
{
	char range[96], num[32];

	if (!isfinite(v)) {
		errf(err, errlen, "%s: %g is not a finite number", label, v);
		return -1;
	}
	if (v < d->min || v > d->max) {
		errf(err, errlen, "%s: %s is out of range %s", label, fmt_num(num, sizeof(num), v),
		     fmt_range(range, sizeof(range), d));
		return -1;
	}
	*double_field(cfg, d) = v;
	return 0;
}

static int set_string(struct gw_config *cfg, const struct gw_config_def *d, const char *label,
                      const char *s, char *err, size_t errlen)
{
	char **field = string_field(cfg, d);
	char *copy;

	if (d->type == GW_CFG_ENUM) {
		const char *const *c;
		char list[128];

		for (c = d->choices; *c; c++)
			if (strcmp(*c, s) == 0)
				break;
		if (!*c) {
			errf(err, errlen, "%s: \"%s\" is not one of %s", label, s,
			     fmt_choices(list, sizeof(list), d, ""));
			return -1;
		}
	}
	copy = strdup(s);
	if (!copy) {
		errf(err, errlen, "%s: out of memory", label);
		return -1;
	}
	free(*field);
	*field = copy;
	return 0;
}

/* `label` is how the user wrote the setting ("--ring-slots", "ring_slots"), for errors. */
static int set_text(struct gw_config *cfg, const struct gw_config_def *d, const char *label,
                    const char *text, char *err, size_t errlen)
{
	char range[96];
	int64_t i;
	double x;
	int rc;

	switch (d->type) {
	case GW_CFG_INT:
		rc = parse_int(text, &i);
		if (rc == -2) {
			errf(err, errlen, "%s: %s is out of range %s", label, text,
			     fmt_range(range, sizeof(range), d));
			return -1;
		}
		if (rc < 0) {
			errf(err, errlen, "%s: \"%s\" is not an integer", label, text);
			return -1;
		}
		return set_int(cfg, d, label, i, err, errlen);
	case GW_CFG_DOUBLE:
		rc = parse_double(text, &x);
		if (rc == -2) {
			errf(err, errlen, "%s: %s is out of range %s", label, text,
			     fmt_range(range, sizeof(range), d));
			return -1;
		}
		if (rc < 0) {
			errf(err, errlen, "%s: \"%s\" is not a number", label, text);
			return -1;
		}
		return set_double(cfg, d, label, x, err, errlen);
	case GW_CFG_STRING:
	case GW_CFG_ENUM:
		return set_string(cfg, d, label, text, err, errlen);
	}
	errf(err, errlen, "%s: bad type in the config table", label);
	return -1;
}

int gw_config_defaults(struct gw_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < gw_config_table_len; i++) {
		const struct gw_config_def *d = &gw_config_table[i];

		if (set_text(cfg, d, d->name, d->def, NULL, 0) < 0) {
			gw_config_free(cfg);
			return -1;
		}
	}
	return 0;
}

int gw_config_set(struct gw_config *cfg, const char *name, const char *value, char *err,
                  size_t errlen)
{
	const struct gw_config_def *d = lookup(name);

	if (!d) {
		errf(err, errlen, "unknown setting \"%s\"", name);
		return -1;
	}
	if (!value) {
		errf(err, errlen, "%s: missing value", name);
		return -1;
	}
	return set_text(cfg, d, name, value, err, errlen);
}

static int apply_json_value(struct gw_config *cfg, const char *key, struct json_object *val,
                            char *err, size_t errlen)
{
	const struct gw_config_def *d = lookup(key);
	enum json_type jt = json_object_get_type(val);

	if (!d) {
		errf(err, errlen, "unknown key \"%s\"", key);
		return -1;
	}
	if (d->flags & GW_CFG_FLAG_ONLY) {
		errf(err, errlen, "%s: only accepted as a command-line flag", key);
		return -1;
	}
	switch (d->type) {
	case GW_CFG_INT:
		/*
		 * Through the text, not json_object_get_int64(): that saturates, and the
		 * string form ("65536") goes through the same strict parse anyway.
		 */
		if (jt == json_type_int)
			return set_text(cfg, d, key,
			                json_object_to_json_string_ext(val, JSON_C_TO_STRING_PLAIN),
			                err, errlen);
		if (jt == json_type_string)
			return set_text(cfg, d, key, json_object_get_string(val), err, errlen);
		errf(err, errlen, "%s: expected an integer, got %s", key, json_type_to_name(jt));
		return -1;
	case GW_CFG_DOUBLE:
		if (jt == json_type_int || jt == json_type_double)
			return set_double(cfg, d, key, json_object_get_double(val), err, errlen);
		errf(err, errlen, "%s: expected a number, got %s", key, json_type_to_name(jt));
		return -1;
	case GW_CFG_STRING:
	case GW_CFG_ENUM:
		if (jt != json_type_string) {
			errf(err, errlen, "%s: expected a string, got %s", key,
			     json_type_to_name(jt));
			return -1;
		}
		/* A "\u0000" would silently cut a path short. */
		if (strlen(json_object_get_string(val)) !=
		    (size_t)json_object_get_string_len(val)) {
			errf(err, errlen, "%s: string contains a NUL character", key);
			return -1;
		}
		return set_string(cfg, d, key, json_object_get_string(val), err, errlen);
	}
	errf(err, errlen, "%s: bad type in the config table", key);
	return -1;
}

static void offset_to_line_col(const char *text, size_t off, size_t *line, size_t *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && text[i]; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

int gw_config_apply_json(struct gw_config *cfg, const char *json, char *err, size_t errlen)
{
	struct json_tokener *tok = NULL;
	struct json_object *root = NULL;
	enum json_tokener_error jerr;
	size_t len = strlen(json), end, line, col;
	int rc = -1;

	if (len >= INT_MAX) {
		errf(err, errlen, "config text too large");
		goto out;
	}
	tok = json_tokener_new();
	if (!tok) {
		errf(err, errlen, "out of memory");
		goto out;
	}
	/*
	 * Strict: a config file is read by other tools too, so it has to be real JSON; this
	 * also refuses anything after the object ("{} {}").
	 */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	/* The NUL too: it tells the tokener the text ends there, so "null" is complete. */
	root = json_tokener_parse_ex(tok, json, (int)len + 1);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue) {
		errf(err, errlen, "invalid JSON: unexpected end of input");
		goto out;
	}
	if (jerr != json_tokener_success) {
		offset_to_line_col(json, end, &line, &col);
		errf(err, errlen, "invalid JSON at line %zu, column %zu: %s", line, col,
		     json_tokener_error_desc(jerr));
		goto out;
	}
	if (!json_object_is_type(root, json_type_object)) {
		errf(err, errlen, "the top level must be a JSON object, not %s",
		     json_type_to_name(json_object_get_type(root)));
		goto out;
	}
	json_object_object_foreach(root, key, val)
	{
		if (apply_json_value(cfg, key, val, err, errlen) < 0)
			goto out;
	}
	rc = 0;
out:
	json_object_put(root);
	if (tok)
		json_tokener_free(tok);
	return rc;
}

/* Reads with a loop rather than by st_size so that /dev/stdin and pipes work too. */
static int read_text_file(const char *path, char **text, char *err, size_t errlen)
{
	FILE *f = NULL;
	char *buf = NULL, *grown;
	size_t len = 0, cap = 0, n;
	int rc = -1;

	f = fopen(path, "rb");
	if (!f) {
		errf(err, errlen, "%s", strerror(errno));
		goto out;
	}
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			grown = realloc(buf, cap + 1);
			if (!grown) {
				errf(err, errlen, "out of memory");
				goto out;
			}
			buf = grown;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (len > CONFIG_FILE_MAX) {
			errf(err, errlen, "larger than %u bytes", CONFIG_FILE_MAX);
			goto out;
		}
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		errf(err, errlen, "%s", strerror(errno));
		goto out;
	}
	buf[len] = '\0';
	if (strlen(buf) != len) {
		errf(err, errlen, "contains a NUL byte");
		goto out;
	}
	*text = buf;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	if (f)
		fclose(f);
	return rc;
}

static int load_file(struct gw_config *cfg, const char *path, char *err, size_t errlen)
{
	char *text = NULL;
	char msg[256];
	int rc = -1;

	if (read_text_file(path, &text, msg, sizeof(msg)) < 0)
		goto out;
	if (gw_config_apply_json(cfg, text, msg, sizeof(msg)) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		errf(err, errlen, "--config %s: %s", path, msg);
	free(text);
	return rc;
}

enum flag_kind { FLAG_SETTING, FLAG_HELP, FLAG_HELP_MARKDOWN };

struct flag {
	enum flag_kind kind;
	const struct gw_config_def *def; /* FLAG_SETTING */
	char label[64];                  /* "--ring-slots", for messages */
	const char *value;               /* FLAG_SETTING */
};

/* Flags spell the table name with '-' for '_', and only that way. */
static bool flag_names(const char *flag, size_t len, const char *name)
{
	size_t i;

	for (i = 0; i < len && name[i]; i++)
		if (flag[i] != (name[i] == '_' ? '-' : name[i]))
			return false;
	return i == len && name[i] == '\0';
}

/* Parse the flag at argv[*i], consuming its value; *i is left on the last word used. */
static int next_flag(int argc, char **argv, int *i, struct flag *f, char *err, size_t errlen)
{
	const char *arg = argv[*i], *name, *eq;
	size_t len;

	memset(f, 0, sizeof(*f));
	if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
		f->kind = FLAG_HELP;
		return 0;
	}
	if (strcmp(arg, "--help-markdown") == 0) {
		f->kind = FLAG_HELP_MARKDOWN;
		return 0;
	}
	if (strncmp(arg, "--", 2) != 0) {
		errf(err, errlen, "%s: unexpected argument (see --help)", arg);
		return -1;
	}
	name = arg + 2;
	eq = strchr(name, '=');
	len = eq ? (size_t)(eq - name) : strlen(name);
	snprintf(f->label, sizeof(f->label), "--%.*s", (int)len, name);
	for (size_t k = 0; k < gw_config_table_len && !f->def; k++)
		if (flag_names(name, len, gw_config_table[k].name))
			f->def = &gw_config_table[k];
	if (!f->def) {
		errf(err, errlen, "%s: unknown flag (see --help)", f->label);
		return -1;
	}
	f->kind = FLAG_SETTING;
	if (eq) {
		f->value = eq + 1;
	} else if (*i + 1 < argc) {
		f->value = argv[++*i];
	} else {
		errf(err, errlen, "%s: missing value", f->label);
		return -1;
	}
	return 0;
}

/* Settings that only make sense together; the table bounds each one alone. */
static int check_pairs(const struct gw_config *cfg, char *err, size_t errlen)
{
	if (cfg->adapt_longpoll_above > cfg->adapt_shortpoll_above) {
		errf(err, errlen, "adapt_longpoll_above must not exceed adapt_shortpoll_above");
		return -1;
	}
	if (cfg->adapt_shortpoll_min_ms > cfg->adapt_shortpoll_max_ms) {
		errf(err, errlen, "adapt_shortpoll_min_ms must not exceed adapt_shortpoll_max_ms");
		return -1;
	}
	if (cfg->adapt_probe_after > cfg->adapt_probe_max) {
		errf(err, errlen, "adapt_probe_after must not exceed adapt_probe_max");
		return -1;
	}
	return 0;
}

int gw_config_load(struct gw_config *cfg, int argc, char **argv, FILE *out, char *err,
                   size_t errlen)
{
	const char *argv0 = argc > 0 && argv[0] ? argv[0] : "livegate";
	const struct gw_config_def *config_def = NULL;
	const char *config_path = NULL;
	struct flag f;
	int i;

	if (gw_config_defaults(cfg) < 0) {
		errf(err, errlen, "out of memory");
		return -1;
	}
	/*
	 * First pass: catch bad flags and --help before touching the file, and find --config
	 * wherever it is, since the file sits under every flag whatever the argv order.
	 */
	for (i = 1; i < argc; i++) {
		if (next_flag(argc, argv, &i, &f, err, errlen) < 0)
			return -1;
		if (f.kind == FLAG_HELP) {
			gw_config_usage(out, argv0);
			return 1;
		}
		if (f.kind == FLAG_HELP_MARKDOWN) {
			gw_config_markdown(out);
			return 1;
		}
		if (f.def->offset == offsetof(struct gw_config, config_file)) {
			config_def = f.def;
			config_path = f.value; /* the last --config wins, like any flag */
		}
	}
	if (config_path) {
		if (set_text(cfg, config_def, "--config", config_path, err, errlen) < 0)
			return -1;
		if (config_path[0] && load_file(cfg, config_path, err, errlen) < 0)
			return -1;
	}
	for (i = 1; i < argc; i++) {
		if (next_flag(argc, argv, &i, &f, err, errlen) < 0)
			return -1;
		if (f.kind != FLAG_SETTING || f.def == config_def)
			continue;
		if (set_text(cfg, f.def, f.label, f.value, err, errlen) < 0)
			return -1;
	}
	return check_pairs(cfg, err, errlen);
}

/* Description after the flag in --help: the help text, then default and range. */
static void describe(char *buf, size_t len, const struct gw_config_def *d)
{
	char extra[160];

	switch (d->type) {
	case GW_CFG_INT:
	case GW_CFG_DOUBLE:
		fmt_range(extra, sizeof(extra), d);
		snprintf(buf, len, "%s (default: %s; range: %s)", d->help, d->def, extra);
		break;
	case GW_CFG_ENUM:
		fmt_choices(extra, sizeof(extra), d, "");
		snprintf(buf, len, "%s (default: %s; one of: %s)", d->help, d->def, extra);
		break;
	case GW_CFG_STRING:
		if (d->def[0])
			snprintf(buf, len, "%s (default: %s)", d->help, d->def);
		else
			snprintf(buf, len, "%s", d->help);
		break;
	}
}

/* Words of `text` from column `col`, continuation lines indented to `indent`. */
static void put_wrapped(FILE *out, const char *text, size_t col, size_t indent)
{
	const char *p = text;
	bool line_start = true;
	size_t n;

	for (;;) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		n = strcspn(p, " ");
		if (!line_start && col + 1 + n > USAGE_WIDTH) {
			fprintf(out, "\n%*s", (int)indent, "");
			col = indent;
			line_start = true;
		}
		if (!line_start) {
			fputc(' ', out);
			col++;
		}
		fwrite(p, 1, n, out);
		col += n;
		p += n;
		line_start = false;
	}
	fputc('\n', out);
}

static void usage_entry(FILE *out, const char *left, size_t width, const char *text)
{
	fprintf(out, "  %-*s   ", (int)width, left);
	put_wrapped(out, text, 2 + width + 3, 2 + width + 3);
}

static void flag_spelling(char *buf, size_t len, const char *name, const char *metavar)
{
	size_t i;

	snprintf(buf, len, "--%s%s%s", name, metavar ? " " : "", metavar ? metavar : "");
	for (i = 2; buf[i] && buf[i] != ' '; i++)
		if (buf[i] == '_')
			buf[i] = '-';
}

void gw_config_usage(FILE *out, const char *argv0)
{
	char left[96], text[512];
	size_t width = strlen("--help-markdown");

	for (size_t i = 0; i < gw_config_table_len; i++) {
		flag_spelling(left, sizeof(left), gw_config_table[i].name, "VALUE");
		if (strlen(left) > width)
			width = strlen(left);
	}
	fprintf(out, "usage: %s [--config FILE] [--NAME VALUE | --NAME=VALUE]...\n\n", argv0);
	put_wrapped(
	    out,
	    "Settings come from the built-in defaults, then the JSON file given by --config "
	    "(keys are the names below with '_' for '-'), then the flags, each overriding "
	    "the one before.",
	    0, 0);
	fputc('\n', out);
	usage_entry(out, "-h, --help", width, "print this help and exit");
	usage_entry(out, "--help-markdown", width,
	            "print the settings as Markdown (docs/config.md) and exit");
	for (size_t i = 0; i < gw_config_table_len; i++) {
		const struct gw_config_def *d = &gw_config_table[i];

		flag_spelling(left, sizeof(left), d->name, "VALUE");
		describe(text, sizeof(text), d);
		usage_entry(out, left, width, text);
	}
}

/* A '|' inside a cell would end it. */
static void md_cell(FILE *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '|')
			fputc('\\', out);
		fputc(*s, out);
	}
}

static const char *type_name(enum gw_config_type t)
{
	switch (t) {
	case GW_CFG_INT:
		return "int";
	case GW_CFG_DOUBLE:
		return "double";
	case GW_CFG_STRING:
		return "string";
	case GW_CFG_ENUM:
		return "enum";
	}
	return "?";
}

void gw_config_markdown(FILE *out)
{
	char flag[96], extra[160];

	fputs("# livegate configuration\n"
	      "\n"
	      "Every setting has a built-in default. A JSON file named with `--config FILE` (one\n"
	      "object whose keys are the setting names below) overrides the defaults, and\n"
	      "command-line flags override both, wherever `--config` appears among them. A\n"
	      "setting's flag is its key with `-` for `_`: `--ring-slots 1024` or\n"
	      "`--ring-slots=1024`. This file is the output of `livegate --help-markdown`; change\n"
	      "the table in `gateway/config.c`, not this file.\n"
	      "\n"
	      "| key | flag | type | default | range / choices | meaning |\n"
	      "| --- | --- | --- | --- | --- | --- |\n",
	      out);
	for (size_t i = 0; i < gw_config_table_len; i++) {
		const struct gw_config_def *d = &gw_config_table[i];

		flag_spelling(flag, sizeof(flag), d->name, NULL);
		extra[0] = '\0';
		if (d->type == GW_CFG_INT || d->type == GW_CFG_DOUBLE)
			fmt_range(extra, sizeof(extra), d);
		else if (d->type == GW_CFG_ENUM)
			fmt_choices(extra, sizeof(extra), d, "`");
		/* An empty string default shows as `""`, since an empty code span is invisible. */
		fprintf(out, "| `%s` | `%s` | %s | `%s` |%s%s | ", d->name, flag,
		        type_name(d->type), d->def[0] ? d->def : "\"\"", extra[0] ? " " : "",
		        extra);
		md_cell(out, d->help);
		fputs(" |\n", out);
	}
}

void gw_config_free(struct gw_config *cfg)
{
	for (size_t i = 0; i < gw_config_table_len; i++) {
		const struct gw_config_def *d = &gw_config_table[i];

		if (d->type == GW_CFG_STRING || d->type == GW_CFG_ENUM) {
			free(*string_field(cfg, d));
			*string_field(cfg, d) = NULL;
		}
	}
}
