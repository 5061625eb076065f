/*
 * Tests for gateway/journal.c: the CRC-32C, creating and refusing files,
 * concurrent appends with group commit, recovery from a torn tail at every
 * byte offset and from every single-bit flip in the last record, refusal (and
 * no modification) when damage is before the tail, the failed-fsync path, and
 * that done callbacks only run once the record's bytes are in the file, and
 * the group delay (batches fill while it runs; a lone record and close do not
 * wait for it).
 *
 * Every payload is derived from (thread, seq), so replay can check each
 * record's exact bytes and each thread's order without keeping a copy.
 * Callbacks run on the journal's writer thread, where cmocka's asserts must
 * not be used (they longjmp): callbacks only record what they saw, in atomics
 * or under a mutex, and the test thread asserts afterwards.
 *
 * All files live in one mkdtemp directory, emptied after each test and removed
 * at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "gateway/journal.h"
#include "gateway/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[256];

/* ---- files ----------------------------------------------------------------- */

/* A path inside the test directory, in a static buffer the next call reuses. */
static const char *jpath(const char *name)
{
	static char buf[512];

	snprintf(buf, sizeof(buf), "%s/%s", tmpdir, name);
	return buf;
}

/* Whole file into a malloc'd buffer (caller frees); NULL if it does not exist. */
static uint8_t *slurp(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *buf = NULL;
	int fd = open(path, O_RDONLY);

	*len = 0;
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) == 0) {
		buf = malloc((size_t)st.st_size + 1);
		if (buf && read(fd, buf, (size_t)st.st_size) == st.st_size)
			*len = (size_t)st.st_size;
	}
	close(fd);
	return buf;
}

static void spit(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

static off_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

static int empty_dir(void **state)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;

	(void)state;
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlink(jpath(e->d_name));
	}
	closedir(d);
	gw_log_set_level(GW_LOG_WARN);
	return 0;
}

static int group_setup(void **state)
{
	const char *base = getenv("TMPDIR");

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s/livegate-journal-XXXXXX",
	         base && *base ? base : "/tmp");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	empty_dir(state);
	return rmdir(tmpdir);
}

/* ---- payloads ---------------------------------------------------------------- */

#define PAYLOAD_MAX 256

/* The payload of record `seq` of thread `tid`: "t<tid> n<seq> " then letters, 16..135 bytes. */
static size_t payload(unsigned tid, unsigned seq, char *out)
{
	size_t n = (size_t)sprintf(out, "t%u n%u ", tid, seq);
	size_t want = 16 + (seq * 37u + tid * 11u) % 120u;

	while (n < want) {
		out[n] = (char)('a' + (seq * 7u + tid + n) % 26u);
		n++;
	}
	return n;
}

/* Replay checker: records must be thread 0's seq 0, 1, 2, ... exactly. */
struct seq_replay {
	unsigned n;       /* records seen */
	bool mismatch;    /* a record was not the expected bytes */
	unsigned fail_at; /* return 7 on this record (0: never; 1-based) */
};

static int replay_seq(void *arg, const void *rec, size_t len)
{
	struct seq_replay *r = arg;
	char want[PAYLOAD_MAX];
	size_t wlen = payload(0, r->n, want);

	if (len != wlen || memcmp(rec, want, len))
		r->mismatch = true;
	r->n++;
	if (r->fail_at && r->n == r->fail_at)
		return 7;
	return 0;
}

/* ---- waiting for done callbacks ---------------------------------------------- */

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned calls;
	unsigned ok;
	int last_status;
};

/* Default attributes: nothing to destroy on Linux, so waiters are simply dropped. */
static void waiter_init(struct waiter *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
}

static void waiter_done(void *arg, int status)
{
	struct waiter *w = arg;

	pthread_mutex_lock(&w->mu);
	w->calls++;
	if (status == 0)
		w->ok++;
	w->last_status = status;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void waiter_wait(struct waiter *w, unsigned calls)
{
	pthread_mutex_lock(&w->mu);
	while (w->calls < calls)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

/*
 * Write a fresh journal at path holding thread 0's records 0..n-1; fill
 * ends[i] with the file offset just past record i (ends may be NULL).
 */
static void make_journal(const char *path, unsigned n, uint64_t *ends)
{
	struct waiter w;
	struct gw_journal *j;
	char err[256];
	char buf[PAYLOAD_MAX];
	uint64_t off = GW_JOURNAL_MAGIC_LEN;

	waiter_init(&w);
	unlink(path);
	j = gw_journal_open(path, NULL, NULL, err, sizeof(err));
	assert_non_null(j);
	for (unsigned i = 0; i < n; i++) {
		size_t len = payload(0, i, buf);

		assert_int_equal(gw_journal_append(j, buf, len, waiter_done, &w), 0);
		off += GW_JOURNAL_HDR_LEN + len;
		if (ends)
			ends[i] = off;
	}
	waiter_wait(&w, n);
	assert_int_equal(w.ok, n);
	gw_journal_close(j);
	assert_int_equal(file_size(path), (off_t)off);
}

/* ---- CRC-32C ------------------------------------------------------------------ */

/* Bit-at-a-time reference, straight from the definition. */
static uint32_t crc_ref(const uint8_t *p, size_t len)
{
	uint32_t c = 0xffffffffu;

	while (len--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
	}
	return ~c;
}

static void test_crc32c_vectors(void **state)
{
	uint8_t buf[64 + 8];

	(void)state;
	assert_int_equal(gw_journal_crc32c(0, "123456789", 9), 0xE3069283u);
	memset(buf, 0, 32);
	assert_int_equal(gw_journal_crc32c(0, buf, 32), 0x8A9136AAu);
	/* The other RFC 3720 B.4 vectors. */
	memset(buf, 0xff, 32);
	assert_int_equal(gw_journal_crc32c(0, buf, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(gw_journal_crc32c(0, buf, 32), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	assert_int_equal(gw_journal_crc32c(0, buf, 32), 0x113FDB5Cu);
	assert_int_equal(gw_journal_crc32c(0, buf, 0), 0);

	/* Slice-by-8 against the reference at every length and alignment; chaining. */
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 151u + 7u);
	for (size_t a = 0; a < 8; a++) {
		for (size_t len = 0; len + a <= sizeof(buf); len++) {
			uint32_t want = crc_ref(buf + a, len);

			assert_int_equal(gw_journal_crc32c(0, buf + a, len), want);
			for (size_t cut = 0; cut <= len; cut += 3)
				assert_int_equal(
				    gw_journal_crc32c(gw_journal_crc32c(0, buf + a, cut),
				                      buf + a + cut, len - cut),
				    want);
		}
	}
}

/* ---- creating and refusing files ------------------------------------------------ */

static void test_create_new(void **state)
{
	struct seq_replay r = {0};
	struct gw_journal *j;
	char err[256];
	uint8_t *bytes;
	size_t len;

	(void)state;
	j = gw_journal_open(jpath("new.j"), replay_seq, &r, err, sizeof(err));
	assert_non_null(j);
	assert_int_equal(gw_journal_records(j), 0);
	assert_false(gw_journal_failed(j));
	bytes = slurp(jpath("new.j"), &len);
	assert_non_null(bytes);
	assert_int_equal(len, GW_JOURNAL_MAGIC_LEN);
	assert_memory_equal(bytes, "LGJRNL01", 8);
	free(bytes);
	assert_int_equal(file_size(jpath("new.j.tmp")), -1); /* no temporary left behind */

	/* A second open of the same journal is refused while the first holds it. */
	assert_null(gw_journal_open(jpath("new.j"), NULL, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "lock"));
	gw_journal_close(j);

	j = gw_journal_open(jpath("new.j"), replay_seq, &r, err, sizeof(err));
	assert_non_null(j);
	assert_int_equal(r.n, 0);
	gw_journal_close(j);
	assert_int_equal(file_size(jpath("new.j")), GW_JOURNAL_MAGIC_LEN);

	/* A missing directory is an error, not a crash. */
	assert_null(gw_journal_open(jpath("nodir/x.j"), NULL, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "nodir/x.j"));
}

static void test_bad_magic(void **state)
{
	static const char *const bad[] = {"LGJRNL02", "lgjrnl01", "LGJRNL0", "",
	                                  "XXXXXXXXYYYYYYYY"};
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t *after;
		size_t len;

		spit(jpath("magic.j"), bad[i], strlen(bad[i]));
		err[0] = '\0';
		assert_null(gw_journal_open(jpath("magic.j"), NULL, NULL, err, sizeof(err)));
		assert_non_null(strstr(err, "bad magic"));
		after = slurp(jpath("magic.j"), &len);
		assert_int_equal(len, strlen(bad[i]));
		assert_memory_equal(after, bad[i], len);
		free(after);
	}
	/* err may be NULL. */
	assert_null(gw_journal_open(jpath("magic.j"), NULL, NULL, NULL, 0));
}

static void test_append_limits(void **state)
{
	struct waiter w;
	struct gw_journal *j;
	char err[256];
	uint8_t *big = malloc(GW_JOURNAL_MAX_RECORD + 1);
	size_t seen = 0;

	(void)state;
	waiter_init(&w);
	assert_non_null(big);
	for (size_t i = 0; i <= GW_JOURNAL_MAX_RECORD; i++)
		big[i] = (uint8_t)(i * 31u);
	j = gw_journal_open(jpath("lim.j"), NULL, NULL, err, sizeof(err));
	assert_non_null(j);
	errno = 0;
	assert_int_equal(gw_journal_append(j, big, 0, waiter_done, &w), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(gw_journal_append(j, big, GW_JOURNAL_MAX_RECORD + 1, waiter_done, &w), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(gw_journal_append(j, big, 1, NULL, NULL), -1);
	assert_int_equal(gw_journal_append(j, big, GW_JOURNAL_MAX_RECORD, waiter_done, &w), 0);
	waiter_wait(&w, 1);
	assert_int_equal(w.ok, 1);
	assert_false(gw_journal_failed(j)); /* refusals do not fail the journal */
	gw_journal_close(j);
	assert_int_equal(file_size(jpath("lim.j")),
	                 GW_JOURNAL_MAGIC_LEN + GW_JOURNAL_HDR_LEN + GW_JOURNAL_MAX_RECORD);
	free(slurp(jpath("lim.j"), &seen));
	assert_int_equal(seen, GW_JOURNAL_MAGIC_LEN + GW_JOURNAL_HDR_LEN + GW_JOURNAL_MAX_RECORD);
	free(big);
}

/* ---- concurrency and group commit ------------------------------------------------ */

#define NTHREADS 4

struct worker;

struct rec_arg {
	struct worker *w;
	unsigned seq;
};

struct worker {
	struct gw_journal *j;
	unsigned tid, n;
	bool closed_loop;      /* wait for each done before the next append */
	struct rec_arg *args;  /* n */
	atomic_uint *calls;    /* n: done calls per record */
	atomic_uint next_done; /* seq the next done must carry */
	atomic_bool bad;       /* a non-zero status, or done out of order */
	unsigned append_failures;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned acked; /* under mu */
};

static void worker_done(void *arg, int status)
{
	struct rec_arg *a = arg;
	struct worker *w = a->w;

	atomic_fetch_add(&w->calls[a->seq], 1);
	if (status != 0 || atomic_load(&w->next_done) != a->seq)
		atomic_store(&w->bad, true);
	atomic_store(&w->next_done, a->seq + 1);
	pthread_mutex_lock(&w->mu);
	w->acked++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void *worker_main(void *p)
{
	struct worker *w = p;
	char buf[PAYLOAD_MAX];

	for (unsigned i = 0; i < w->n; i++) {
		size_t len = payload(w->tid, i, buf);

		w->args[i] = (struct rec_arg){w, i};
		if (gw_journal_append(w->j, buf, len, worker_done, &w->args[i])) {
			w->append_failures++;
			break;
		}
		if (w->closed_loop) {
			pthread_mutex_lock(&w->mu);
			while (w->acked <= i)
				pthread_cond_wait(&w->cv, &w->mu);
			pthread_mutex_unlock(&w->mu);
		}
	}
	return NULL;
}

struct multi_replay {
	unsigned next[NTHREADS];
	unsigned total;
	bool bad;
};

static int replay_multi(void *arg, const void *rec, size_t len)
{
	struct multi_replay *r = arg;
	char text[PAYLOAD_MAX + 1], want[PAYLOAD_MAX];
	unsigned tid, seq;

	if (len > PAYLOAD_MAX) {
		r->bad = true;
		return 0;
	}
	memcpy(text, rec, len);
	text[len] = '\0';
	if (sscanf(text, "t%u n%u ", &tid, &seq) != 2 || tid >= NTHREADS || seq != r->next[tid] ||
	    payload(tid, seq, want) != len || memcmp(want, rec, len)) {
		r->bad = true;
		return 0;
	}
	r->next[tid]++;
	r->total++;
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * NTHREADS threads append `per` records each (closed_loop: each waits for its
 * record's done before the next, like a request waiting for its receipt).
 * Every done must come exactly once, with 0, in each thread's order; a reopen
 * must replay every record once, each thread's in its order. Returns the
 * number of fdatasync calls.
 */
static uint64_t run_concurrent(const char *name, unsigned per, bool closed_loop)
{
	struct worker w[NTHREADS];
	pthread_t th[NTHREADS];
	struct multi_replay r = {{0}, 0, false};
	struct gw_journal *j;
	char err[256];
	uint64_t syncs, total = (uint64_t)per * NTHREADS;
	double t0, t1;

	j = gw_journal_open(jpath(name), NULL, NULL, err, sizeof(err));
	assert_non_null(j);
	for (unsigned t = 0; t < NTHREADS; t++) {
		w[t] = (struct worker){.j = j, .tid = t, .n = per, .closed_loop = closed_loop};
		w[t].args = calloc(per, sizeof(*w[t].args));
		w[t].calls = calloc(per, sizeof(*w[t].calls));
		assert_non_null(w[t].args);
		assert_non_null(w[t].calls);
		atomic_init(&w[t].next_done, 0);
		atomic_init(&w[t].bad, false);
		pthread_mutex_init(&w[t].mu, NULL);
		pthread_cond_init(&w[t].cv, NULL);
	}
	t0 = now_s();
	for (unsigned t = 0; t < NTHREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
	for (unsigned t = 0; t < NTHREADS; t++) {
		pthread_join(th[t], NULL);
		pthread_mutex_lock(&w[t].mu);
		while (w[t].acked < per && !w[t].append_failures)
			pthread_cond_wait(&w[t].cv, &w[t].mu);
		pthread_mutex_unlock(&w[t].mu);
	}
	t1 = now_s();
	syncs = gw_journal_syncs(j);
	assert_int_equal(gw_journal_records(j), total);
	gw_journal_close(j);

	for (unsigned t = 0; t < NTHREADS; t++) {
		assert_int_equal(w[t].append_failures, 0);
		assert_false(atomic_load(&w[t].bad));
		for (unsigned i = 0; i < per; i++)
			assert_int_equal(atomic_load(&w[t].calls[i]), 1);
		free(w[t].args);
		free(w[t].calls);
		pthread_mutex_destroy(&w[t].mu);
		pthread_cond_destroy(&w[t].cv);
	}

	j = gw_journal_open(jpath(name), replay_multi, &r, err, sizeof(err));
	assert_non_null(j);
	assert_false(r.bad);
	assert_int_equal(r.total, total);
	for (unsigned t = 0; t < NTHREADS; t++)
		assert_int_equal(r.next[t], per);
	assert_int_equal(gw_journal_records(j), total);
	gw_journal_close(j);

	print_message("    %s: %u threads x %u appends: %" PRIu64 " fdatasyncs, %.1f records/sync, "
	              "%.0f appends/s\n",
	              closed_loop ? "closed loop" : "open loop", NTHREADS, per, syncs,
	              (double)total / (double)(syncs ? syncs : 1), (double)total / (t1 - t0));
	return syncs;
}

static void test_concurrent_open_loop(void **state)
{
	unsigned per = 2500;

	(void)state;
	/* Appenders never wait: fsyncs are far fewer than records. */
	assert_true(run_concurrent("open.j", per, false) < (uint64_t)per * NTHREADS);
}

static void test_concurrent_closed_loop(void **state)
{
	unsigned per = 250;

	(void)state;
	/* Each appender waits for its receipt: others' records still share its fsync. */
	assert_true(run_concurrent("closed.j", per, true) < (uint64_t)per * NTHREADS);
}

/* ---- recovery ----------------------------------------------------------------------- */

/* Cut the file at every byte offset inside the last three of 10 records. */
static void test_torn_tail_every_offset(void **state)
{
	uint64_t ends[10];
	uint8_t *orig, *now;
	size_t olen, nlen;
	char err[256], buf[PAYLOAD_MAX];
	const char *path = jpath("torn.j");
	unsigned cuts = 0;

	(void)state;
	make_journal(path, 10, ends);
	orig = slurp(path, &olen);
	assert_int_equal(olen, ends[9]);
	gw_log_set_level(GW_LOG_ERROR); /* one "cut" warning per offset otherwise */
	for (uint64_t cut = ends[6]; cut < ends[9]; cut++) {
		struct seq_replay r = {0};
		struct waiter w;
		struct gw_journal *j;
		unsigned complete = 0;
		size_t len;

		waiter_init(&w);
		while (complete < 10 && ends[complete] <= cut)
			complete++;
		spit(path, orig, (size_t)cut);
		j = gw_journal_open(path, replay_seq, &r, err, sizeof(err));
		assert_non_null(j);
		assert_int_equal(r.n, complete);
		assert_false(r.mismatch);
		assert_int_equal(gw_journal_records(j), complete);
		assert_int_equal(file_size(path), (off_t)ends[complete - 1]);

		/* Appending after recovery writes right after the valid prefix. */
		len = payload(0, complete, buf);
		assert_int_equal(gw_journal_append(j, buf, len, waiter_done, &w), 0);
		waiter_wait(&w, 1);
		assert_int_equal(w.ok, 1);
		gw_journal_close(j);

		memset(&r, 0, sizeof(r));
		j = gw_journal_open(path, replay_seq, &r, err, sizeof(err));
		assert_non_null(j);
		assert_int_equal(r.n, complete + 1);
		assert_false(r.mismatch);
		gw_journal_close(j);
		now = slurp(path, &nlen);
		assert_int_equal(nlen, ends[complete]);
		assert_memory_equal(now, orig, nlen);
		free(now);
		cuts++;
	}
	print_message("    %u cut offsets recovered\n", cuts);
	free(orig);
}

/* The cut is logged with what was cut and where. */
static void test_torn_tail_logged(void **state)
{
	uint64_t ends[3];
	uint8_t *orig, *log;
	size_t olen, llen;
	char err[256], want[128], path[512];
	struct gw_journal *j;
	int saved, fd;

	(void)state;
	snprintf(path, sizeof(path), "%s", jpath("logged.j")); /* jpath's buffer is reused below */
	make_journal(path, 3, ends);
	orig = slurp(path, &olen);
	spit(path, orig, olen - 5);
	free(orig);

	fflush(stderr);
	saved = dup(STDERR_FILENO);
	fd = open(jpath("stderr.log"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, STDERR_FILENO);
	close(fd);
	j = gw_journal_open(path, NULL, NULL, err, sizeof(err));
	dup2(saved, STDERR_FILENO);
	close(saved);
	assert_non_null(j);
	gw_journal_close(j);

	log = slurp(jpath("stderr.log"), &llen);
	assert_non_null(log);
	log[llen] = '\0';
	snprintf(want, sizeof(want),
	         "cut %" PRIu64 " bytes of torn/corrupt tail at offset %" PRIu64,
	         ends[2] - 5 - ends[1], ends[1]);
	assert_non_null(strstr((char *)log, want));
	assert_non_null(strstr((char *)log, "warn"));
	free(log);
}

/* Every single-bit flip in the last record (header and payload) drops just that record. */
static void test_bitflip_tail(void **state)
{
	uint64_t ends[10];
	uint8_t *orig, *copy;
	size_t olen;
	char err[256];
	const char *path = jpath("flip.j");
	unsigned flips = 0;

	(void)state;
	make_journal(path, 10, ends);
	orig = slurp(path, &olen);
	copy = malloc(olen);
	assert_non_null(copy);
	gw_log_set_level(GW_LOG_ERROR);
	for (uint64_t byte = ends[8]; byte < ends[9]; byte++) {
		for (int bit = 0; bit < 8; bit++) {
			struct seq_replay r = {0};
			struct gw_journal *j;

			memcpy(copy, orig, olen);
			copy[byte] ^= (uint8_t)(1u << bit);
			spit(path, copy, olen);
			j = gw_journal_open(path, replay_seq, &r, err, sizeof(err));
			assert_non_null(j);
			assert_int_equal(r.n, 9);
			assert_false(r.mismatch);
			gw_journal_close(j);
			assert_int_equal(file_size(path), (off_t)ends[8]);
			flips++;
		}
	}
	print_message("    %u single-bit flips in the last record recovered\n", flips);
	free(copy);
	free(orig);
}

/* Damage before the tail: refused, offset named, nothing replayed, file untouched. */
static void test_damage_before_tail(void **state)
{
	uint64_t ends[10];
	uint8_t *orig, *copy, *after;
	size_t olen, alen;
	char err[512], want[128];
	const char *path = jpath("mid.j");
	struct damage {
		uint64_t at;   /* byte to damage */
		uint8_t xor ;  /* how */
		uint64_t rec;  /* start of the damaged record */
		uint64_t next; /* where the next valid record is */
	} cases[4];

	(void)state;
	make_journal(path, 10, ends);
	orig = slurp(path, &olen);
	copy = malloc(olen);
	assert_non_null(copy);
	/* A payload byte, the length's top byte, a CRC byte of record 0; a payload byte of
	 * record 4. */
	cases[0] = (struct damage){8 + 8 + 3, 0x20, 8, ends[0]};
	cases[1] = (struct damage){8 + 3, 0xff, 8, ends[0]};
	cases[2] = (struct damage){8 + 5, 0x01, 8, ends[0]};
	cases[3] = (struct damage){ends[3] + 8 + 10, 0x01, ends[3], ends[4]};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct seq_replay r = {0};

		memcpy(copy, orig, olen);
		copy[cases[c].at] ^= cases[c].xor ;
		spit(path, copy, olen);
		err[0] = '\0';
		assert_null(gw_journal_open(path, replay_seq, &r, err, sizeof(err)));
		snprintf(want, sizeof(want), "at offset %" PRIu64 " is damaged", cases[c].rec);
		assert_non_null(strstr(err, want));
		snprintf(want, sizeof(want), "valid record follows at offset %" PRIu64,
		         cases[c].next);
		assert_non_null(strstr(err, want));
		assert_int_equal(r.n, 0); /* refused before any replay */
		after = slurp(path, &alen);
		assert_int_equal(alen, olen);
		assert_memory_equal(after, copy, olen);
		free(after);
	}
	print_message("    e.g. %s\n", err);
	free(copy);
	free(orig);
}

/* A replay callback's error aborts open, and a torn tail is then left as it was. */
static void test_replay_abort(void **state)
{
	struct seq_replay r = {.fail_at = 3};
	uint64_t ends[5];
	uint8_t *orig;
	size_t olen;
	char err[256];
	const char *path = jpath("abort.j");

	(void)state;
	make_journal(path, 5, ends);
	orig = slurp(path, &olen);
	spit(path, orig, olen - 2);
	assert_null(gw_journal_open(path, replay_seq, &r, err, sizeof(err)));
	assert_non_null(strstr(err, "replay failed (7) at record 2"));
	assert_int_equal(r.n, 3);
	assert_int_equal(file_size(path), (off_t)(olen - 2));
	free(orig);
}

/* ---- failure and durability ----------------------------------------------------------- */

/* A done callback that holds the writer until the test opens the gate. */
struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool entered, open;
	int status;
};

static void gate_done(void *arg, int status)
{
	struct gate *g = arg;

	pthread_mutex_lock(&g->mu);
	g->entered = true;
	g->status = status;
	pthread_cond_broadcast(&g->cv);
	while (!g->open)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static void test_fsync_failure(void **state)
{
	struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, -1};
	struct waiter w;
	struct seq_replay r = {0};
	struct gw_journal *j;
	char err[256], buf[PAYLOAD_MAX];
	size_t len;

	(void)state;
	waiter_init(&w);
	j = gw_journal_open(jpath("fail.j"), NULL, NULL, err, sizeof(err));
	assert_non_null(j);
	/* Record 0 commits; its callback then holds the writer, so 1..3 form one batch. */
	len = payload(0, 0, buf);
	assert_int_equal(gw_journal_append(j, buf, len, gate_done, &g), 0);
	pthread_mutex_lock(&g.mu);
	while (!g.entered)
		pthread_cond_wait(&g.cv, &g.mu);
	pthread_mutex_unlock(&g.mu);
	assert_int_equal(g.status, 0);

	gw_journal_fail_next_sync_for_test(j);
	for (unsigned i = 1; i <= 3; i++) {
		len = payload(0, i, buf);
		assert_int_equal(gw_journal_append(j, buf, len, waiter_done, &w), 0);
	}
	pthread_mutex_lock(&g.mu);
	g.open = true;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
	waiter_wait(&w, 3);
	assert_int_equal(w.ok, 0);
	assert_int_equal(w.last_status, -EIO);
	assert_true(gw_journal_failed(j));
	assert_int_equal(gw_journal_records(j), 1);
	assert_int_equal(gw_journal_syncs(j), 2);

	/* Failed for good: nothing more is accepted, nothing more is written. */
	errno = 0;
	len = payload(0, 4, buf);
	assert_int_equal(gw_journal_append(j, buf, len, waiter_done, &w), -1);
	assert_int_equal(errno, EIO);
	assert_true(gw_journal_failed(j));
	gw_journal_close(j);
	assert_int_equal(w.calls, 3);

	/* The batch was written before the (simulated) fsync error: it may be replayed. */
	j = gw_journal_open(jpath("fail.j"), replay_seq, &r, err, sizeof(err));
	assert_non_null(j);
	assert_int_equal(r.n, 4);
	assert_false(r.mismatch);
	assert_false(gw_journal_failed(j));
	gw_journal_close(j);
}

struct durable_arg {
	struct gw_journal *j;
	const char *path;
	uint64_t offset;       /* where the framed record must be */
	uint64_t syncs_before; /* gw_journal_syncs() before the append */
	uint64_t index;
	char payload[PAYLOAD_MAX];
	size_t len;
	atomic_int verdict; /* 0 not called, 1 bytes present after a sync, 2 not */
	struct waiter *w;
};

/* Runs on the writer: read the file through a separate descriptor. */
static void durable_done(void *arg, int status)
{
	struct durable_arg *a = arg;
	uint8_t got[GW_JOURNAL_HDR_LEN + PAYLOAD_MAX], hdr[4];
	bool ok = status == 0;
	int fd = open(a->path, O_RDONLY);

	ok = ok && fd >= 0 &&
	     pread(fd, got, GW_JOURNAL_HDR_LEN + a->len, (off_t)a->offset) ==
	         (ssize_t)(GW_JOURNAL_HDR_LEN + a->len);
	if (fd >= 0)
		close(fd);
	hdr[0] = (uint8_t)a->len;
	hdr[1] = (uint8_t)(a->len >> 8);
	hdr[2] = hdr[3] = 0;
	ok = ok && !memcmp(got, hdr, 4) && !memcmp(got + GW_JOURNAL_HDR_LEN, a->payload, a->len);
	ok = ok && gw_journal_crc32c(gw_journal_crc32c(0, hdr, 4), a->payload, a->len) ==
	               ((uint32_t)got[4] | (uint32_t)got[5] << 8 | (uint32_t)got[6] << 16 |
	                (uint32_t)got[7] << 24);
	/* Durable means an fdatasync completed after the append, and is counted. */
	ok = ok && gw_journal_syncs(a->j) > a->syncs_before && gw_journal_records(a->j) > a->index;
	atomic_store(&a->verdict, ok ? 1 : 2);
	waiter_done(a->w, status);
}

static void test_done_after_write(void **state)
{
	enum { N = 60 };
	struct durable_arg *args = calloc(N, sizeof(*args));
	struct waiter w;
	struct gw_journal *j;
	char err[256];
	uint64_t off = GW_JOURNAL_MAGIC_LEN;
	char path[512];

	(void)state;
	waiter_init(&w);
	snprintf(path, sizeof(path), "%s", jpath("durable.j"));
	assert_non_null(args);
	j = gw_journal_open(path, NULL, NULL, err, sizeof(err));
	assert_non_null(j);
	for (unsigned i = 0; i < N; i++) {
		struct durable_arg *a = &args[i];

		a->j = j;
		a->path = path;
		a->offset = off;
		a->index = i;
		a->len = payload(0, i, a->payload);
		a->w = &w;
		atomic_init(&a->verdict, 0);
		a->syncs_before = gw_journal_syncs(j);
		assert_int_equal(gw_journal_append(j, a->payload, a->len, durable_done, a), 0);
		off += GW_JOURNAL_HDR_LEN + a->len;
		if (i % 7 == 6)
			waiter_wait(&w, i + 1); /* mix single records and bigger batches */
	}
	waiter_wait(&w, N);
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(atomic_load(&args[i].verdict), 1);
	gw_journal_close(j);
	free(args);
}

/* A done callback may append (the receipt path may journal a follow-up). */
struct chain {
	struct gw_journal *j;
	struct waiter w;
	atomic_int append_rc;
};

static void chain_done(void *arg, int status)
{
	struct chain *c = arg;
	char buf[PAYLOAD_MAX];
	size_t len = payload(0, 1, buf);

	if (status == 0 && c->w.calls == 0)
		atomic_store(&c->append_rc, gw_journal_append(c->j, buf, len, waiter_done, &c->w));
	waiter_done(&c->w, status);
}

static void test_append_from_callback(void **state)
{
	struct chain c;
	struct seq_replay r = {0};
	char err[256], buf[PAYLOAD_MAX];
	size_t len = payload(0, 0, buf);

	(void)state;
	memset(&c, 0, sizeof(c));
	waiter_init(&c.w);
	atomic_init(&c.append_rc, -2);
	c.j = gw_journal_open(jpath("chain.j"), NULL, NULL, err, sizeof(err));
	assert_non_null(c.j);
	assert_int_equal(gw_journal_append(c.j, buf, len, chain_done, &c), 0);
	waiter_wait(&c.w, 2);
	assert_int_equal(atomic_load(&c.append_rc), 0);
	assert_int_equal(c.w.ok, 2);
	gw_journal_close(c.j);
	assert_non_null(c.j = gw_journal_open(jpath("chain.j"), replay_seq, &r, err, sizeof(err)));
	assert_int_equal(r.n, 2);
	assert_false(r.mismatch);
	gw_journal_close(c.j);
}

/* Close flushes: every accepted append's done has run when close returns. */
static void test_close_flushes(void **state)
{
	enum { N = 3000 };
	struct waiter w;
	struct seq_replay r = {0};
	struct gw_journal *j;
	char err[256], buf[PAYLOAD_MAX];

	(void)state;
	waiter_init(&w);
	make_journal(jpath("flush.j"), 2, NULL);
	j = gw_journal_open(jpath("flush.j"), replay_seq, &r, err, sizeof(err));
	assert_non_null(j);
	assert_int_equal(r.n, 2);
	assert_int_equal(gw_journal_records(j), 2);
	for (unsigned i = 2; i < N; i++) {
		size_t len = payload(0, i, buf);

		assert_int_equal(gw_journal_append(j, buf, len, waiter_done, &w), 0);
	}
	gw_journal_close(j);
	pthread_mutex_lock(&w.mu);
	assert_int_equal(w.calls, N - 2);
	assert_int_equal(w.ok, N - 2);
	pthread_mutex_unlock(&w.mu);
	memset(&r, 0, sizeof(r));
	j = gw_journal_open(jpath("flush.j"), replay_seq, &r, err, sizeof(err));
	assert_non_null(j);
	assert_int_equal(r.n, N);
	assert_false(r.mismatch);
	assert_int_equal(gw_journal_records(j), N);
	gw_journal_close(j);
}

/* ---- group delay ------------------------------------------------------------- */

/*
 * Record 0's done callback (on the writer, before it looks for more work)
 * appends records 1 and 2, so they form the next batch together: after that
 * batch of two the group delay is armed.
 */
struct pair {
	struct gw_journal *j;
	struct waiter w;
	atomic_int rc;
};

static void pair_done(void *arg, int status)
{
	struct pair *p = arg;
	char buf[PAYLOAD_MAX];
	int rc = 0;

	if (status == 0) {
		for (unsigned i = 1; i <= 2; i++) {
			size_t len = payload(0, i, buf);

			rc |= gw_journal_append(p->j, buf, len, waiter_done, &p->w);
		}
		atomic_store(&p->rc, rc);
	}
	waiter_done(&p->w, status);
}

/* A new journal at path with the delay set, holding records 0 (alone) and 1, 2 (a batch). */
static void open_after_pair(struct pair *p, const char *path, unsigned delay_us)
{
	char err[256], buf[PAYLOAD_MAX];
	size_t len = payload(0, 0, buf);

	memset(p, 0, sizeof(*p));
	waiter_init(&p->w);
	atomic_init(&p->rc, -2);
	p->j = gw_journal_open(path, NULL, NULL, err, sizeof(err));
	assert_non_null(p->j);
	gw_journal_set_group_delay(p->j, delay_us);
	assert_int_equal(gw_journal_append(p->j, buf, len, pair_done, p), 0);
	waiter_wait(&p->w, 3);
	assert_int_equal(atomic_load(&p->rc), 0);
	assert_int_equal(p->w.ok, 3);
}

static void append_seq(struct pair *p, unsigned seq)
{
	char buf[PAYLOAD_MAX];
	size_t len = payload(0, seq, buf);

	assert_int_equal(gw_journal_append(p->j, buf, len, waiter_done, &p->w), 0);
}

/* Reopen path and check it holds records 0..n-1 of thread 0, in order. */
static void assert_records(const char *path, unsigned n)
{
	struct seq_replay r = {0};
	struct gw_journal *j;
	char err[256];

	j = gw_journal_open(path, replay_seq, &r, err, sizeof(err));
	assert_non_null(j);
	assert_int_equal(r.n, n);
	assert_false(r.mismatch);
	gw_journal_close(j);
}

/*
 * Under load (the previous batch held two records) a record waits for the
 * delay, and one appended 20 ms later shares its fdatasync. Without the
 * delay the writer would have committed the first alone long before.
 */
static void test_group_delay_fills_batch(void **state)
{
	struct pair p;
	struct timespec gap = {0, 20 * 1000000L};
	uint64_t syncs;

	(void)state;
	open_after_pair(&p, jpath("delay.j"), 2 * 1000 * 1000);
	syncs = gw_journal_syncs(p.j);
	append_seq(&p, 3);
	nanosleep(&gap, NULL);
	append_seq(&p, 4);
	waiter_wait(&p.w, 5);
	assert_int_equal(p.w.ok, 5);
	assert_int_equal(gw_journal_syncs(p.j), syncs + 1);
	gw_journal_close(p.j);
	assert_records(jpath("delay.j"), 5);
}

/*
 * Neither a lone record after a batch of one nor close waits for the delay:
 * with a delay of ~71 minutes either would hang, and the alarm ends the test.
 */
static void test_group_delay_not_when_quiet_nor_at_close(void **state)
{
	struct pair p;
	char err[256], buf[PAYLOAD_MAX];
	struct timespec settle = {0, 50 * 1000000L};
	struct waiter w;
	struct gw_journal *j;

	(void)state;
	alarm(60);
	waiter_init(&w);
	j = gw_journal_open(jpath("quiet.j"), NULL, NULL, err, sizeof(err));
	assert_non_null(j);
	gw_journal_set_group_delay(j, UINT_MAX);
	for (unsigned i = 0; i < 3; i++) {
		size_t len = payload(0, i, buf);

		assert_int_equal(gw_journal_append(j, buf, len, waiter_done, &w), 0);
		waiter_wait(&w, i + 1); /* one at a time: every batch holds one record */
	}
	assert_int_equal(w.ok, 3);
	gw_journal_close(j);
	assert_records(jpath("quiet.j"), 3);

	open_after_pair(&p, jpath("close.j"), UINT_MAX);
	append_seq(&p, 3);
	nanosleep(&settle, NULL); /* the writer is now waiting for the delay... */
	gw_journal_close(p.j);    /* ...which stop cuts short: record 3 is written */
	pthread_mutex_lock(&p.w.mu);
	assert_int_equal(p.w.calls, 4);
	assert_int_equal(p.w.ok, 4);
	pthread_mutex_unlock(&p.w.mu);
	alarm(0);
	assert_records(jpath("close.j"), 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crc32c_vectors),
	    cmocka_unit_test_teardown(test_create_new, empty_dir),
	    cmocka_unit_test_teardown(test_bad_magic, empty_dir),
	    cmocka_unit_test_teardown(test_append_limits, empty_dir),
	    cmocka_unit_test_teardown(test_concurrent_open_loop, empty_dir),
	    cmocka_unit_test_teardown(test_concurrent_closed_loop, empty_dir),
	    cmocka_unit_test_teardown(test_torn_tail_every_offset, empty_dir),
	    cmocka_unit_test_teardown(test_torn_tail_logged, empty_dir),
	    cmocka_unit_test_teardown(test_bitflip_tail, empty_dir),
	    cmocka_unit_test_teardown(test_damage_before_tail, empty_dir),
	    cmocka_unit_test_teardown(test_replay_abort, empty_dir),
	    cmocka_unit_test_teardown(test_fsync_failure, empty_dir),
	    cmocka_unit_test_teardown(test_done_after_write, empty_dir),
	    cmocka_unit_test_teardown(test_append_from_callback, empty_dir),
	    cmocka_unit_test_teardown(test_close_flushes, empty_dir),
	    cmocka_unit_test_teardown(test_group_delay_fills_batch, empty_dir),
	    cmocka_unit_test_teardown(test_group_delay_not_when_quiet_nor_at_close, empty_dir),
	};

	gw_log_set_level(GW_LOG_WARN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
