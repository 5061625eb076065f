/*
 * Configuration: one declarative table (config.c, `gw_config_table[]`) of
 * name, type, bounds, default and help drives all three ways to set a value:
 *   1. the built-in default,
 *   2. a JSON config file (`--config FILE`, keys are the table names),
 *   3. command-line flags `--name value` / `--name=value` (underscores in the
 *      name written as dashes: ring_slots -> --ring-slots),
 * later ones overriding earlier ones; and `livegate --help` prints the table.
 *
 * Threads: loaded once by the main thread before any worker starts; read-only
 * afterwards, so any thread may read it without locking.
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct gw_config {
	/* listener */
	char *bind;
	int64_t port;
	int64_t workers;            /* 0: one per online core */
	int64_t max_connections;    /* whole process */
	char *tls_cert;             /* both set: the listener speaks https/wss */
	char *tls_key;
	/* storage */
	char *config_file;          /* flag only */
	char *data_dir;
	/* rooms and rings */
	int64_t window;             /* seconds of history kept per room */
	int64_t ring_slots;         /* messages per room ring, power of two */
	int64_t ring_bytes;         /* encoded bytes per room ring */
	int64_t max_rooms;
	/* input limits */
	int64_t text_max_chars;
	int64_t max_body_bytes;
	int64_t ws_max_message_bytes;
	/* output */
	int64_t batch_max_bytes;
	int64_t longpoll_max_wait;  /* seconds */
	int64_t gzip_min_bytes;
	int64_t gzip_level;
	int64_t poll_cache_entries; /* poll bodies kept per worker for polls at one cursor */
	int64_t poll_fast_path;     /* 1: short-polls answered by transport/h1.c, not lws */
	int64_t flush_interval_ms;  /* batching delay before notifying subscribers */
	int64_t flush_chunk;        /* WebSockets written per loop iteration; 0 = no limit */
	/* rate limits */
	double rate_uid;            /* danmaku per second per uid */
	double burst_uid;
	double rate_room;           /* danmaku per second per room */
	double burst_room;
	int64_t rate_max_keys;
	/* content */
	char *blocked_words_file;
	char *blocked_words_mode;   /* "mask" | "reject" */
	/* gifts */
	char *admin_token;          /* "" disables PUT /v1/keys */
	char *gift_catalog_file;
	int64_t gift_max_skew;      /* seconds */
	int64_t gift_commit_delay_us; /* journal group delay; 0 = none */
	int64_t gift_threads;         /* gift checker threads; 0 = one per core */
	int64_t gift_queue_max;       /* gifts waiting for a checker before "busy" */
	/* timeouts */
	int64_t ws_ping_interval;   /* seconds; 0 disables pings */
	int64_t io_timeout;         /* seconds: headers, body, pong */
	int64_t keepalive_timeout;  /* seconds an idle keep-alive HTTP connection lives */
	/* adaptive transport (seconds as doubles so tests can use short ones) */
	double adapt_longpoll_above;   /* disconnects per minute */
	double adapt_shortpoll_above;
	double adapt_hysteresis;
	double adapt_half_life;
	double adapt_min_connected;
	double adapt_probe_after;
	double adapt_probe_max;
	int64_t adapt_longpoll_wait;   /* seconds, the wait= advised */
	double adapt_longpoll_gap;
	double adapt_shortpoll_miss;   /* x interval */
	int64_t adapt_shortpoll_min_ms;
	int64_t adapt_shortpoll_max_ms;
	double adapt_shortpoll_target_msgs;
	int64_t adapt_max_clients;
	int64_t adapt_client_ttl;      /* seconds */
	int64_t suppress_shortpoll;    /* danmaku per suppress_period; 0 = no limit */
	int64_t suppress_longpoll;
	int64_t suppress_ws;
	double suppress_period;
	/* logging */
	char *log_level;            /* error | warn | info | debug */
};

enum gw_config_type { GW_CFG_INT, GW_CFG_DOUBLE, GW_CFG_STRING, GW_CFG_ENUM };

#define GW_CFG_POW2      0x1u /* integer must be a power of two */
#define GW_CFG_FLAG_ONLY 0x2u /* not accepted in the config file (e.g. "config") */

struct gw_config_def {
	const char *name;               /* config-file key; flag is --name with '_' -> '-' */
	enum gw_config_type type;
	size_t offset;                  /* offsetof(struct gw_config, field) */
	double min, max;                /* bounds for INT and DOUBLE (inclusive) */
	const char *def;                /* default, as text ("" for an empty string) */
	const char *const *choices;     /* ENUM: NULL-terminated list */
	unsigned flags;
	const char *help;
};

/* The table itself and its length, for --help, docs and tests. */
extern const struct gw_config_def gw_config_table[];
extern const size_t gw_config_table_len;

/* Set every field to its default. Returns 0, or -1 on OOM. */
int gw_config_defaults(struct gw_config *cfg);

/*
 * Defaults, then the file named by --config (if any), then the other flags.
 * Returns 0 on success, 1 when --help / --help-markdown printed to `out`
 * (caller exits 0), -1 on error with a one-line message in err.
 * On error, cfg may be partly set; gw_config_free() is still safe.
 */
int gw_config_load(struct gw_config *cfg, int argc, char **argv, FILE *out, char *err,
		   size_t errlen);

/* Apply one JSON document (the file's text). Same errors as a file. */
int gw_config_apply_json(struct gw_config *cfg, const char *json, char *err, size_t errlen);
/* Set one value by table name from text, with the table's checks. */
int gw_config_set(struct gw_config *cfg, const char *name, const char *value, char *err,
		  size_t errlen);

/* `livegate --help`: usage line, then one entry per table row. */
void gw_config_usage(FILE *out, const char *argv0);
/* docs/config.md body: a Markdown table generated from the same rows. */
void gw_config_markdown(FILE *out);

/* Free strings owned by cfg. */
void gw_config_free(struct gw_config *cfg);

#endif
