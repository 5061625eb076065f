/*
 * lg-relay's impairment parameters: one table drives the command-line flags,
 * the control channel's `set`/`get`, the JSON in `stats` and `--help`, so a
 * new parameter is one row in params.c.
 *
 * Threads: no shared state; any thread may call these on its own struct.
 */
#ifndef NM_PARAMS_H
#define NM_PARAMS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct nm_params {
	int64_t delay_ms;           /* one-way delay, each direction */
	int64_t jitter_ms;          /* uniform +- around delay_ms, never reorders */
	int64_t rate_kbps;          /* per connection per direction; 0 = unlimited */
	int64_t burst_bytes;        /* token-bucket depth under rate_kbps */
	int64_t stall_every_ms;     /* a stall starts every this many ms; 0 = never */
	int64_t stall_ms;           /* length of each stall */
	int64_t cut_min_ms;         /* connection lifetime before a reset: uniform in */
	int64_t cut_max_ms;         /* [cut_min_ms, cut_max_ms]; cut_max_ms 0 = never */
	int64_t buf_bytes;          /* bytes held per connection per direction */
	int64_t max_conns;          /* open connections; accepting pauses at the cap */
	int64_t connect_timeout_ms; /* upstream connect; the client is reset after it */
};

/* The defaults: a transparent relay. */
void nm_params_default(struct nm_params *p);

/*
 * Set one parameter from text. key may spell '_' as '-' (flags use dashes).
 * Range-checked, but cross-field rules are nm_params_check's. 0 or -1 with a
 * message in err (always NUL-terminated when errlen > 0).
 */
int nm_params_set(struct nm_params *p, const char *key, const char *val, char *err, size_t errlen);

/* Cross-field rules (stall_ms < stall_every_ms, cut_min_ms <= cut_max_ms). 0 or -1 + err. */
int nm_params_check(const struct nm_params *p, char *err, size_t errlen);

/*
 * Apply "key=value key=value ..." (the control channel's `set`) all or
 * nothing: on any error *p is unchanged. line is modified (tokenised).
 */
int nm_params_apply(struct nm_params *p, char *line, char *err, size_t errlen);

/* {"delay_ms":0,...} into buf; returns what snprintf would (truncated when >= len). */
int nm_params_json(const struct nm_params *p, char *buf, size_t len);

/* One line per parameter for --help: flag, meaning, default, range. */
void nm_params_help(FILE *f);

/* Strict decimal integer in [min, max]: no sign games, no trailing junk. 0 or -1. */
int nm_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* s as a JSON string (quotes included), truncated safely to fit len. Returns bytes written. */
size_t nm_json_str(char *buf, size_t len, const char *s);

#endif
