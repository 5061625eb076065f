/*
 * gift_bench: load generator for POST /v1/rooms/{room}/gifts.
 *
 * Registers a fresh key for one uid per connection (PUT /v1/keys), pre-signs
 * every request before the clock starts (so the generator's own Ed25519 cost
 * is not in the figure), then runs `conns` closed-loop keep-alive connections,
 * one thread each, until every request is acknowledged. Prints acknowledged
 * gifts per second and the p50 / p99 / max time from sending a request to
 * reading its receipt.
 *
 * usage: gift_bench --port P [--host 127.0.0.1] [--n 40000] [--conns 64]
 *                   [--room bench] [--token T]   (or LIVEGATE_ADMIN_TOKEN)
 */
#define _GNU_SOURCE /* vasprintf, strcasestr */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct worker {
	int id;
	size_t first, count; /* requests [first, first + count) */
	size_t ok, failed;
	pthread_t th;
};

static const char *host = "127.0.0.1", *room = "bench", *token;
static int port;
static char **reqs;     /* full HTTP requests, pre-signed */
static size_t *req_len;
static double *lat_ms;  /* per request */

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int dial(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	inet_pton(AF_INET, host, &a.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		perror("connect");
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Send one request and read one response; returns the HTTP status, -1 on I/O error. */
static int roundtrip(int fd, const char *req, size_t len, char *buf, size_t cap)
{
	size_t got = 0, need = 0;
	char *body;

	if (write(fd, req, len) != (ssize_t)len)
		return -1;
	for (;;) {
		ssize_t n = read(fd, buf + got, cap - 1 - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
		buf[got] = 0;
		body = strstr(buf, "\r\n\r\n");
		if (!body)
			continue;
		if (!need) {
			char *cl = strcasestr(buf, "content-length:");
			need = (size_t)(body + 4 - buf) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
		}
		if (got >= need)
			return atoi(buf + 9);
	}
}

static char *fmt(size_t *len, const char *f, ...) __attribute__((format(printf, 2, 3)));
static char *fmt(size_t *len, const char *f, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, f);
	n = vasprintf(&s, f, ap);
	va_end(ap);
	if (n < 0)
		exit(1);
	*len = (size_t)n;
	return s;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	char buf[8192];
	int fd = dial();

	for (size_t i = w->first; i < w->first + w->count; i++) {
		double t0 = now_ms();
		int st = roundtrip(fd, reqs[i], req_len[i], buf, sizeof(buf));
		lat_ms[i] = now_ms() - t0;
		if (st == 200)
			w->ok++;
		else
			w->failed++;
		if (st < 0) {
			close(fd);
			fd = dial();
		}
	}
	close(fd);
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	size_t n = 40000, conns = 64;
	char buf[8192];

	token = getenv("LIVEGATE_ADMIN_TOKEN");
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--port"))
			port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--host"))
			host = argv[i + 1];
		else if (!strcmp(argv[i], "--n"))
			n = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--conns"))
			conns = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--room"))
			room = argv[i + 1];
		else if (!strcmp(argv[i], "--token"))
			token = argv[i + 1];
	}
	if (!port || !token || !n || !conns || conns > n || sodium_init() < 0) {
		fprintf(stderr, "usage: gift_bench --port P --token T [--n N] [--conns C]\n");
		return 2;
	}

	/* One uid (and key) per connection, so txns and nonces never collide. */
	unsigned char (*sk)[64] = calloc(conns, 64);
	char uid_base[32];
	snprintf(uid_base, sizeof(uid_base), "b%lx", (long)time(NULL));
	for (size_t c = 0; c < conns; c++) {
		unsigned char pk[32];
		char pk64[64], *req;
		size_t len, blen;
		char *body;

		crypto_sign_keypair(pk, sk[c]);
		sodium_bin2base64(pk64, sizeof(pk64), pk, 32, sodium_base64_VARIANT_ORIGINAL);
		body = fmt(&blen, "{\"pk\":\"%s\"}", pk64);
		req = fmt(&len, "PUT /v1/keys/%s_%zu HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
				"Content-Length: %zu\r\n\r\n%s",
			  uid_base, c, token, blen, body);
		int fd = dial();
		if (roundtrip(fd, req, len, buf, sizeof(buf)) != 200) {
			fprintf(stderr, "key registration failed: %s\n", buf);
			return 1;
		}
		close(fd);
		free(req);
		free(body);
	}

	reqs = calloc(n, sizeof(*reqs));
	req_len = calloc(n, sizeof(*req_len));
	lat_ms = calloc(n, sizeof(*lat_ms));
	long long ts = (long long)time(NULL) * 1000;
	for (size_t i = 0; i < n; i++) {
		size_t c = i % conns, clen, blen;
		unsigned char nonce[16], sig[64];
		char nhex[33], sig64[100], uid[80], txn[32], *canon, *body;

		randombytes_buf(nonce, sizeof(nonce));
		sodium_bin2hex(nhex, sizeof(nhex), nonce, sizeof(nonce));
		snprintf(uid, sizeof(uid), "%s_%zu", uid_base, c);
		snprintf(txn, sizeof(txn), "t%zu", i);
		canon = fmt(&clen, "livegate.gift.v1\n%s\n%s\nrose\n1\n%s\n%lld\n%s", room, uid, txn,
			    ts, nhex);
		crypto_sign_detached(sig, NULL, (unsigned char *)canon, clen, sk[c]);
		sodium_bin2base64(sig64, sizeof(sig64), sig, 64, sodium_base64_VARIANT_ORIGINAL);
		body = fmt(&blen, "{\"uid\":\"%s\",\"gift\":\"rose\",\"count\":1,\"txn\":\"%s\","
				  "\"ts\":%lld,\"nonce\":\"%s\",\"sig\":\"%s\"}",
			   uid, txn, ts, nhex, sig64);
		reqs[i] = fmt(&req_len[i], "POST /v1/rooms/%s/gifts HTTP/1.1\r\nHost: x\r\n"
					   "Content-Length: %zu\r\n\r\n%s",
			      room, blen, body);
		free(canon);
		free(body);
	}

	/* Worker c sends the requests signed with its uid's key: i % conns == c. */
	struct worker *w = calloc(conns, sizeof(*w));
	char **sorted = calloc(n, sizeof(*sorted));
	size_t *sorted_len = calloc(n, sizeof(*sorted_len)), k = 0;
	for (size_t c = 0; c < conns; c++) {
		w[c].first = k;
		for (size_t i = c; i < n; i += conns, k++) {
			sorted[k] = reqs[i];
			sorted_len[k] = req_len[i];
		}
		w[c].count = k - w[c].first;
	}
	reqs = sorted;
	req_len = sorted_len;

	double t0 = now_ms();
	for (size_t c = 0; c < conns; c++)
		pthread_create(&w[c].th, NULL, run, &w[c]);
	size_t ok = 0, failed = 0;
	for (size_t c = 0; c < conns; c++) {
		pthread_join(w[c].th, NULL);
		ok += w[c].ok;
		failed += w[c].failed;
	}
	double secs = (now_ms() - t0) / 1e3;
	qsort(lat_ms, n, sizeof(double), cmp);
	printf("gifts=%zu acked=%zu failed=%zu conns=%zu seconds=%.2f acked_per_s=%.0f "
	       "p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
	       n, ok, failed, conns, secs, ok / secs, lat_ms[n / 2], lat_ms[n * 99 / 100],
	       lat_ms[n - 1]);
	return failed ? 1 : 0;
}
