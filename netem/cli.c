/*
 * nm_cli: lg-relay's flags (see cli.h).
 *
 * Threads: any thread.
 */
#include "netem/cli.h"

#include <stdarg.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

int nm_cli_parse(struct nm_cli *o, int argc, char **argv, char *err, size_t errlen)
{
	char msg[256];
	int i;

	o->listen = "127.0.0.1:0";
	o->upstream = NULL;
	o->control = "127.0.0.1:0";
	o->name = "";
	o->seed = -1;
	nm_params_default(&o->p);
	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return 1;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *eq = strchr(a, '='), *val;
		size_t klen = eq ? (size_t)(eq - a) : strlen(a);
		char key[64];

		if (strncmp(a, "--", 2) || klen < 3 || klen - 2 >= sizeof(key))
			return fail(err, errlen, "unexpected argument '%.64s'", a);
		memcpy(key, a + 2, klen - 2);
		key[klen - 2] = '\0';
		if (!eq && i + 1 >= argc)
			return fail(err, errlen, "--%s needs a value", key);
		val = eq ? eq + 1 : argv[++i];
		if (!strcmp(key, "listen"))
			o->listen = val;
		else if (!strcmp(key, "upstream"))
			o->upstream = val;
		else if (!strcmp(key, "control"))
			o->control = val;
		else if (!strcmp(key, "name"))
			o->name = val;
		else if (!strcmp(key, "seed")) {
			if (nm_parse_i64(val, 0, INT64_MAX, &o->seed))
				return fail(err, errlen, "--seed: '%.64s' is not an integer >= 0",
				            val);
		} else if (nm_params_set(&o->p, key, val, msg, sizeof(msg)))
			return fail(err, errlen, "%s (from --%s)", msg, key);
	}
	if (!o->upstream)
		return fail(err, errlen, "--upstream HOST:PORT is required");
	if (nm_params_check(&o->p, msg, sizeof(msg)))
		return fail(err, errlen, "%s", msg);
	return 0;
}

void nm_cli_usage(FILE *f)
{
	fputs("usage: lg-relay --upstream HOST:PORT [options]\n\n"
	      "A TCP relay that adds delay, jitter, rate limits, stalls and connection resets.\n"
	      "Every accepted connection gets its own connection to the upstream.\n\n"
	      "  --listen HOST:PORT         where clients connect (default 127.0.0.1:0)\n"
	      "  --upstream HOST:PORT       where each connection is relayed to (required)\n"
	      "  --control HOST:PORT|off    line-based control port, loopback only (default\n"
	      "                             127.0.0.1:0)\n"
	      "  --seed N                   random seed for jitter and cut lifetimes (default:\n"
	      "                             from the clock; printed at start)\n"
	      "  --name TEXT                label echoed in the start line and in stats\n"
	      "  -h, --help                 this text\n\n"
	      "Impairments (also settable at run time with `set key=value`; flags use '-', keys\n"
	      "'_'):\n",
	      f);
	nm_params_help(f);
	fputs("\nOn start one JSON line goes to stdout: {\"listen\":..., \"listen_port\":N,\n"
	      "\"control_port\":N|null, \"upstream\":..., \"seed\":N, \"pid\":N, \"name\":...}.\n\n"
	      "Control commands (one per line, at most 4095 bytes; one JSON line answers each;\n"
	      "errors are {\"error\":\"...\"}; at most 32 control connections):\n"
	      "  set key=value ...   change parameters, all or nothing; new cut lifetimes and\n"
	      "                      a new stall period count from now\n"
	      "  get                 the parameters\n"
	      "  stats               name, params, stalled, accepted, open, cut, failed\n"
	      "                      (upstream connect), reset (I/O error), closed (FIN both\n"
	      "                      ways), bytes_up (client->upstream), bytes_down\n"
	      "  cut-all             reset every open connection now\n"
	      "  stall MS            hold all traffic and new connections for MS ms from now\n"
	      "\nSIGTERM/SIGINT exit with status 0. Bad flags exit with status 2.\n",
	      f);
}
