/*
 * livegate: configuration, start-up and shutdown. The main thread loads the
 * configuration, builds the shared state (rooms, ingest), starts the workers
 * and then only waits for SIGINT/SIGTERM.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto/random.h"
#include "gateway/config.h"
#include "gateway/gifts.h"
#include "gateway/ingest.h"
#include "gateway/log.h"
#include "gateway/metrics.h"
#include "gateway/room.h"
#include "transport/server.h"

static enum gw_log_level level_of(const char *s)
{
	if (!strcmp(s, "error"))
		return GW_LOG_ERROR;
	if (!strcmp(s, "warn"))
		return GW_LOG_WARN;
	if (!strcmp(s, "debug"))
		return GW_LOG_DEBUG;
	return GW_LOG_INFO;
}

int main(int argc, char **argv)
{
	struct gw_config cfg;
	struct gw_rooms *rooms = NULL;
	struct gw_ingest *ingest = NULL;
	struct gw_gifts *gifts = NULL;
	const char *admin_token;
	struct tp_server *srv = NULL;
	char err[512] = "";
	sigset_t sigs;
	int rc = 1, sig;

	memset(&cfg, 0, sizeof(cfg));
	switch (gw_config_load(&cfg, argc, argv, stdout, err, sizeof(err))) {
	case 1:
		rc = 0;
		goto out;
	case 0:
		break;
	default:
		fprintf(stderr, "livegate: %s (see --help)\n", err);
		rc = 2;
		goto out;
	}
	gw_log_set_level(level_of(cfg.log_level));
	if ((cfg.tls_cert[0] != 0) != (cfg.tls_key[0] != 0)) {
		fprintf(stderr, "livegate: --tls-cert and --tls-key go together\n");
		rc = 2;
		goto out;
	}
	/* Say which file is missing, rather than lws's generic failure (which also leaks). */
	for (const char *const *f = (const char *const[]){cfg.tls_cert, cfg.tls_key, NULL}; *f; f++)
		if ((*f)[0] && access(*f, R_OK)) {
			fprintf(stderr, "livegate: cannot read %s: %s\n", *f, strerror(errno));
			rc = 2;
			goto out;
		}
	/* glibc reads the time zone lazily; do it once before threads log or format times. */
	tzset();
	/*
	 * Before any thread starts (the journal and leaderboard threads below, then
	 * the workers): every thread inherits this mask, so SIGINT/SIGTERM reach only
	 * sigwait below and never kill the process through a thread that lets them in.
	 */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if (mkdir(cfg.data_dir, 0700) && errno != EEXIST) {
		gw_log_err("cannot create --data-dir %s: %s", cfg.data_dir, strerror(errno));
		goto out;
	}
	if (cr_init()) {
		gw_log_err("libsodium failed to initialise");
		goto out;
	}
	unsigned workers = (unsigned)cfg.workers;
	if (!workers) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		workers = n > 0 ? (unsigned)n : 1;
		cfg.workers = workers;
	}
	if (gw_metrics_init(workers))
		goto out;
	rooms = gw_rooms_new(&(struct gw_rooms_conf){
		.workers = workers,
		.ring_slots = (uint64_t)cfg.ring_slots,
		.ring_bytes = (size_t)cfg.ring_bytes,
		.window_ms = cfg.window * 1000,
		.max_rooms = (size_t)cfg.max_rooms,
	});
	ingest = gw_ingest_new(&cfg, err, sizeof(err));
	if (!rooms || !ingest) {
		gw_log_err("start-up failed: %s", ingest ? "out of memory" : err);
		goto out;
	}

	gifts = gw_gifts_open(&(struct gw_gifts_conf){.data_dir = cfg.data_dir,
						      .catalog_file = cfg.gift_catalog_file,
						      .max_skew_ms = cfg.gift_max_skew * 1000,
						      .commit_delay_us = cfg.gift_commit_delay_us,
						      .threads = cfg.gift_threads,
						      .queue_max = cfg.gift_queue_max},
			      rooms, err, sizeof(err));
	if (!gifts) {
		gw_log_err("gifts: %s", err);
		goto out;
	}
	/* The environment wins, so the token need not sit in a config file. */
	admin_token = getenv("LIVEGATE_ADMIN_TOKEN");
	if (!admin_token)
		admin_token = cfg.admin_token;

	signal(SIGPIPE, SIG_IGN);

	srv = tp_server_start(&cfg, rooms, ingest, gifts, admin_token, err, sizeof(err));
	if (!srv) {
		gw_log_err("%s", err);
		goto out;
	}
	sigwait(&sigs, &sig);
	gw_log_info("%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
	tp_server_stop(srv);
	rc = 0;
out:
	/* Workers have stopped; the journal's last answers go to live but idle contexts. */
	gw_gifts_close(gifts);
	tp_server_free(srv);
	gw_ingest_free(ingest);
	gw_rooms_free(rooms);
	gw_metrics_fini();
	gw_ingest_thread_exit();
	gw_config_free(&cfg);
	return rc;
}
