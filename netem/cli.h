/*
 * lg-relay's command line: the relay's own flags (--listen, --upstream,
 * --control, --seed, --name) plus one flag per parameter of params.h.
 * Parsing is separate from acting on it, so every flag error is testable.
 *
 * Threads: any thread; no shared state.
 */
#ifndef NM_CLI_H
#define NM_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "netem/params.h"

struct nm_cli {
	const char *listen;   /* HOST:PORT, default 127.0.0.1:0 */
	const char *upstream; /* HOST:PORT, required */
	const char *control;  /* HOST:PORT or "off", default 127.0.0.1:0 */
	const char *name;     /* label, default "" */
	int64_t seed;         /* -1 = none given */
	struct nm_params p;
};

/*
 * Fill o from argv (the strings are borrowed, not copied). Flags take
 * "--flag value" or "--flag=value". Returns 0, 1 when --help/-h was given
 * (nothing else is checked), or -1 with a message in err.
 */
int nm_cli_parse(struct nm_cli *o, int argc, char **argv, char *err, size_t errlen);

/* The --help text: every flag, every parameter, the start line, the control commands. */
void nm_cli_usage(FILE *f);

#endif
