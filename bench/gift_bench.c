/*
 * gift_bench: load generator for signed gifts (docs/benchmarks.md, "Gifts").
 *
 * Set-up, not timed: one fresh key per connection, registered with
 * PUT /v1/keys/{uid} (admin token), and every gift signed in advance, as a
 * viewer's device signs its own gifts. The timed phase then only sends, so
 * the generator's own Ed25519 signing is not in the figures.
 *
 *   --mode http  one closed-loop keep-alive connection per thread, one
 *                POST /v1/rooms/{room}/gifts at a time (lws 4.1.6 cannot
 *                parse a request pipelined behind a body).
 *   --mode ws    one thread, epoll, `conns` hand-written WebSocket clients on
 *                /v1/rooms/{room}-{k}/ws, each keeping up to `window` gift ops
 *                in flight. Frames are encoded and masked in advance; sending
 *                k gifts is one write(). Connection k uses room {room}-{k mod
 *                rooms}; like any viewer it also receives that room's batches
 *                (its own gifts coming back as room messages), which are read
 *                and counted, not timed.
 *
 * Each gift's latency runs from handing it to the kernel to reading its
 * acknowledgement (HTTP 200 receipt, or {"op":"ack"} carrying a receipt). The
 * run ends when every gift is answered or after --max-seconds. Prints acked/s
 * (acked / elapsed), p50/p99/max latency of the acked gifts, and the errors.
 * With --pid, also the gateway's CPU time over the timed phase (from
 * /proc/PID/stat), per gift: a figure that other load on the machine distorts
 * far less than it distorts wall-clock throughput; and how many cores the
 * whole machine kept busy meanwhile (/proc/stat), less the gateway and the
 * generator: what other processes took.
 *
 * usage: gift_bench --port P [--mode http|ws] [--host 127.0.0.1] [--n N]
 *                   [--conns C] [--window W] [--rooms R] [--room NAME]
 *                   [--max-seconds S] [--pid GATEWAY_PID]
 *                   [--token T]   (or LIVEGATE_ADMIN_TOKEN)
 *   defaults: ws --n 100000 --conns 16 --window 8; http --n 40000 --conns 64
 */
#define _GNU_SOURCE /* vasprintf, strcasestr */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *host = "127.0.0.1", *room = "bench", *token;
static int port;
static double max_seconds = 60;
static char uid_base[48];
static long long gift_ts;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
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
	if (len)
		*len = (size_t)n;
	return s;
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

/* CPU seconds (user + system) the process has used so far, or -1. */
static double proc_cpu_s(long pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')'); /* the command name may hold spaces */
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU seconds all cores spent busy (not idle, not waiting for I/O) since boot, or -1. */
static double machine_busy_s(void)
{
	unsigned long long v[8] = {0};
	FILE *f = fopen("/proc/stat", "r");
	int n;

	if (!f)
		return -1;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
	           &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n != 8)
		return -1;
	/* user nice system idle iowait irq softirq steal: all but idle and iowait */
	return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

/* Register one fresh key per connection; sk[c] signs connection c's gifts. */
static void register_keys(size_t conns, unsigned char (*sk)[64])
{
	char buf[8192];

	for (size_t c = 0; c < conns; c++) {
		unsigned char pk[32];
		char pk64[64], *req, *body;
		size_t len, blen;
		int fd;

		crypto_sign_keypair(pk, sk[c]);
		sodium_bin2base64(pk64, sizeof(pk64), pk, 32, sodium_base64_VARIANT_ORIGINAL);
		body = fmt(&blen, "{\"pk\":\"%s\"}", pk64);
		req = fmt(&len,
		          "PUT /v1/keys/%s_%zu HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
		          "Content-Length: %zu\r\n\r\n%s",
		          uid_base, c, token, blen, body);
		fd = dial();
		if (roundtrip(fd, req, len, buf, sizeof(buf)) != 200) {
			fprintf(stderr, "key registration failed: %s\n", buf);
			exit(1);
		}
		close(fd);
		free(req);
		free(body);
	}
}

/* The JSON members of gift number i of connection c, for room r, signed with sk. */
static char *gift_fields(const char *r, size_t c, size_t i, const unsigned char sk[64])
{
	unsigned char nonce[16], sig[64];
	char nhex[33], sig64[100], uid[80], txn[32], *canon, *out;
	size_t clen;

	randombytes_buf(nonce, sizeof(nonce));
	sodium_bin2hex(nhex, sizeof(nhex), nonce, sizeof(nonce));
	snprintf(uid, sizeof(uid), "%s_%zu", uid_base, c);
	snprintf(txn, sizeof(txn), "t%zu", i);
	canon = fmt(&clen, "livegate.gift.v1\n%s\n%s\nrose\n1\n%s\n%lld\n%s", r, uid, txn, gift_ts,
	            nhex);
	crypto_sign_detached(sig, NULL, (unsigned char *)canon, clen, sk);
	sodium_bin2base64(sig64, sizeof(sig64), sig, 64, sodium_base64_VARIANT_ORIGINAL);
	out = fmt(NULL,
	          "\"uid\":\"%s\",\"gift\":\"rose\",\"count\":1,\"txn\":\"%s\",\"ts\":%lld,"
	          "\"nonce\":\"%s\",\"sig\":\"%s\"",
	          uid, txn, gift_ts, nhex, sig64);
	free(canon);
	return out;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct result {
	size_t ok, failed, room_msgs;
	double secs;
	double gw_cpu, my_cpu; /* CPU seconds over the timed phase (gateway: -1 unknown) */
	double busy;           /* CPU seconds of the whole machine over it (-1 unknown) */
	double *lat;           /* of the acked gifts, sorted on return */
	size_t nlat;
};

/* ---- HTTP mode: one blocking thread per connection ------------------------------------ */

struct hworker {
	size_t first, count; /* requests [first, first + count) */
	size_t ok, failed;
	pthread_t th;
};

static char **reqs; /* full HTTP requests, pre-signed, grouped by connection */
static size_t *req_len;
static double *lat_ms; /* per request; < 0 when not acknowledged */
static double deadline;
static long gw_pid;
static double gw_cpu0, my_cpu0, busy0;

/* The timed phase starts: note the clock and both processes' CPU time. */
static double clock_start(void)
{
	gw_cpu0 = gw_pid ? proc_cpu_s(gw_pid) : -1;
	my_cpu0 = self_cpu_s();
	busy0 = machine_busy_s();
	deadline = now_ms() + max_seconds * 1e3;
	return now_ms();
}

static void clock_stop(double t0, struct result *res)
{
	double gw = gw_pid ? proc_cpu_s(gw_pid) : -1, busy = machine_busy_s();

	res->busy = busy >= 0 && busy0 >= 0 ? busy - busy0 : -1;
	res->secs = (now_ms() - t0) / 1e3;
	res->gw_cpu = gw >= 0 && gw_cpu0 >= 0 ? gw - gw_cpu0 : -1;
	res->my_cpu = self_cpu_s() - my_cpu0;
}

static void *http_run(void *arg)
{
	struct hworker *w = arg;
	char buf[8192];
	int fd = dial();

	for (size_t i = w->first; i < w->first + w->count && now_ms() < deadline; i++) {
		double t0 = now_ms();
		int st = roundtrip(fd, reqs[i], req_len[i], buf, sizeof(buf));

		if (st == 200) {
			w->ok++;
			lat_ms[i] = now_ms() - t0;
		} else {
			w->failed++;
		}
		if (st < 0) {
			close(fd);
			fd = dial();
		}
	}
	close(fd);
	return NULL;
}

static void http_bench(size_t n, size_t conns, unsigned char (*sk)[64], struct result *res)
{
	struct hworker *w = calloc(conns, sizeof(*w));
	size_t k = 0;

	reqs = calloc(n, sizeof(*reqs));
	req_len = calloc(n, sizeof(*req_len));
	lat_ms = calloc(n, sizeof(*lat_ms));
	/* Worker c sends the gifts signed with its uid's key: requests [first, first+count). */
	for (size_t c = 0; c < conns; c++) {
		w[c].first = k;
		for (size_t i = c; i < n; i += conns, k++) {
			size_t blen;
			char *f = gift_fields(room, c, i, sk[c]);
			char *body = fmt(&blen, "{%s}", f);

			reqs[k] = fmt(&req_len[k],
			              "POST /v1/rooms/%s/gifts HTTP/1.1\r\nHost: x\r\n"
			              "Content-Length: %zu\r\n\r\n%s",
			              room, blen, body);
			lat_ms[k] = -1;
			free(f);
			free(body);
		}
		w[c].count = k - w[c].first;
	}
	double t0 = clock_start();
	for (size_t c = 0; c < conns; c++)
		pthread_create(&w[c].th, NULL, http_run, &w[c]);
	for (size_t c = 0; c < conns; c++) {
		pthread_join(w[c].th, NULL);
		res->ok += w[c].ok;
		res->failed += w[c].failed;
	}
	clock_stop(t0, res);
	res->lat = lat_ms;
	for (size_t i = 0; i < n; i++)
		if (lat_ms[i] >= 0)
			res->lat[res->nlat++] = lat_ms[i];
	free(w);
}

/* ---- WebSocket mode: one epoll thread, many gifts in flight per connection ------------ */

struct wconn {
	int fd;
	size_t count;      /* gifts of this connection */
	char *out;         /* every gift frame, encoded and masked, back to back */
	size_t *off;       /* frame i is out[off[i] .. off[i + 1]) */
	size_t sent_bytes; /* bytes of out handed to the kernel */
	size_t next;       /* first frame not completely sent */
	size_t answered;   /* frames answered (ack or error) */
	double *t_send;    /* per frame, when its last byte went out */
	bool *done;
	unsigned char *in; /* bytes read, not yet parsed */
	size_t in_len, in_cap;
	bool want_out; /* EPOLLOUT armed */
};

static size_t window = 8;
static size_t errors_shown;

/* Append a client (masked) frame with opcode op and payload p[0..len) to *buf. */
static void ws_frame(char **buf, size_t *len, size_t *cap, int op, const char *p, size_t plen)
{
	unsigned char hdr[14], mask[4];
	size_t h = 0;

	if (*len + plen + sizeof(hdr) > *cap) {
		*cap = (*len + plen + sizeof(hdr)) * 2;
		*buf = realloc(*buf, *cap);
		if (!*buf)
			exit(1);
	}
	hdr[h++] = (unsigned char)(0x80 | op);
	if (plen < 126) {
		hdr[h++] = (unsigned char)(0x80 | plen);
	} else if (plen < 65536) {
		hdr[h++] = 0x80 | 126;
		hdr[h++] = (unsigned char)(plen >> 8);
		hdr[h++] = (unsigned char)plen;
	} else {
		fprintf(stderr, "frame too large\n");
		exit(1);
	}
	randombytes_buf(mask, sizeof(mask));
	memcpy(hdr + h, mask, 4);
	h += 4;
	memcpy(*buf + *len, hdr, h);
	for (size_t i = 0; i < plen; i++)
		(*buf)[*len + h + i] = (char)(p[i] ^ mask[i & 3]);
	*len += h + plen;
}

static void ws_handshake(struct wconn *w, const char *r)
{
	char buf[4096], *req;
	size_t len, got = 0;

	/* The gateway does not need a real key check on our side; lws verifies the request. */
	req = fmt(&len,
	          "GET /v1/rooms/%s/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
	          "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	          "Sec-WebSocket-Version: 13\r\n\r\n",
	          r);
	w->fd = dial();
	if (write(w->fd, req, len) != (ssize_t)len)
		exit(1);
	free(req);
	/* Read the 101 byte by byte so that no frame after it is swallowed. */
	while (got < sizeof(buf) - 1) {
		if (read(w->fd, buf + got, 1) != 1) {
			fprintf(stderr, "websocket handshake: connection closed\n");
			exit(1);
		}
		buf[++got] = 0;
		if (got >= 4 && !memcmp(buf + got - 4, "\r\n\r\n", 4))
			break;
	}
	if (strncmp(buf, "HTTP/1.1 101", 12)) {
		fprintf(stderr, "websocket handshake refused: %s\n", buf);
		exit(1);
	}
}

/* Hand frames to the kernel while the window allows. 0, or -1 when the connection broke. */
static int ws_send(struct wconn *w)
{
	size_t last = w->answered + window < w->count ? w->answered + window : w->count;
	size_t end = w->off[last];

	while (w->sent_bytes < end) {
		ssize_t k = write(w->fd, w->out + w->sent_bytes, end - w->sent_bytes);
		double t;

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN)
			break;
		if (k <= 0)
			return -1;
		w->sent_bytes += (size_t)k;
		t = now_ms();
		while (w->next < w->count && w->off[w->next + 1] <= w->sent_bytes)
			w->t_send[w->next++] = t;
	}
	return 0;
}

/* One text frame from the server. */
static void ws_text(struct wconn *w, const char *p, size_t len, struct result *res, double t)
{
	const char *id;
	size_t i;

	if (len >= 8 && !memcmp(p, "{\"room\":", 8)) {
		/* A room batch: count its messages ("seq" opens each). */
		for (const char *q = p; (q = memmem(q, len - (size_t)(q - p), "{\"seq\":", 7)); q++)
			res->room_msgs++;
		return;
	}
	id = memmem(p, len, "\"id\":", 5);
	if (!id) {
		fprintf(stderr, "unexpected frame: %.*s\n", (int)len, p);
		res->failed++;
		return;
	}
	i = strtoul(id + 5, NULL, 10);
	if (i >= w->count || w->done[i] || i >= w->next) {
		fprintf(stderr, "unexpected reply id: %.*s\n", (int)len, p);
		res->failed++;
		return;
	}
	w->done[i] = true;
	w->answered++;
	if (len > 11 && !memcmp(p, "{\"op\":\"ack\"", 11) &&
	    memmem(p, len, "\"status\":\"accepted\"", 19)) {
		res->ok++;
		res->lat[res->nlat++] = t - w->t_send[i];
	} else {
		res->failed++;
		if (errors_shown++ < 5)
			fprintf(stderr, "gift refused: %.*s\n", (int)len, p);
	}
}

/* Read and parse what arrived. 0, or -1 when the connection broke or closed. */
static int ws_recv(struct wconn *w, struct result *res)
{
	for (;;) {
		if (w->in_cap - w->in_len < 65536) {
			w->in_cap = w->in_cap * 2 + 65536;
			w->in = realloc(w->in, w->in_cap);
			if (!w->in)
				exit(1);
		}
		ssize_t k = read(w->fd, w->in + w->in_len, w->in_cap - w->in_len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN)
			break;
		if (k <= 0)
			return -1;
		w->in_len += (size_t)k;
		if ((size_t)k < w->in_cap - w->in_len)
			break; /* the socket is drained for now */
	}
	double t = now_ms();
	size_t pos = 0;
	while (w->in_len - pos >= 2) {
		const unsigned char *h = w->in + pos;
		size_t hl = 2, plen = h[1] & 0x7f;
		int op = h[0] & 0x0f;

		if (plen == 126) {
			if (w->in_len - pos < 4)
				break;
			plen = (size_t)h[2] << 8 | h[3];
			hl = 4;
		} else if (plen == 127) {
			if (w->in_len - pos < 10)
				break;
			plen = 0;
			for (int b = 0; b < 8; b++)
				plen = plen << 8 | h[2 + b];
			hl = 10;
		}
		if (w->in_len - pos < hl + plen)
			break;
		if (op == 1) {
			ws_text(w, (const char *)h + hl, plen, res, t);
		} else if (op == 9) { /* ping: answer with a pong of the same payload */
			char *f = NULL;
			size_t fl = 0, fc = 0;
			ws_frame(&f, &fl, &fc, 0xA, (const char *)h + hl, plen);
			/* Tiny and rare: a blocking-style write is fine on a fresh buffer. */
			if (write(w->fd, f, fl) != (ssize_t)fl)
				return -1;
			free(f);
		} else if (op == 8) {
			fprintf(stderr, "server closed the WebSocket (%zu bytes of reason)\n",
			        plen);
			return -1;
		}
		pos += hl + plen;
	}
	memmove(w->in, w->in + pos, w->in_len - pos);
	w->in_len -= pos;
	return 0;
}

static void ws_bench(size_t n, size_t conns, size_t rooms, unsigned char (*sk)[64],
                     struct result *res)
{
	struct wconn *w = calloc(conns, sizeof(*w));
	struct epoll_event ev, evs[256];
	int ep = epoll_create1(0);
	size_t unanswered = n, broken = 0;

	res->lat = calloc(n, sizeof(double));
	for (size_t c = 0; c < conns; c++) {
		char r[128];
		size_t len = 0, cap = 0;

		snprintf(r, sizeof(r), "%s-%zu", room, c % rooms);
		w[c].count = n / conns + (c < n % conns);
		w[c].off = calloc(w[c].count + 1, sizeof(size_t));
		w[c].t_send = calloc(w[c].count, sizeof(double));
		w[c].done = calloc(w[c].count, sizeof(bool));
		for (size_t i = 0; i < w[c].count; i++) {
			char *f = gift_fields(r, c, i, sk[c]);
			size_t plen;
			char *p = fmt(&plen, "{\"op\":\"gift\",\"id\":%zu,%s}", i, f);

			w[c].off[i] = len;
			ws_frame(&w[c].out, &len, &cap, 1, p, plen);
			free(p);
			free(f);
		}
		w[c].off[w[c].count] = len;
		ws_handshake(&w[c], r);
	}
	for (size_t c = 0; c < conns; c++) {
		/* Non-blocking from here on: one thread drives every connection. */
		if (fcntl(w[c].fd, F_SETFL, fcntl(w[c].fd, F_GETFL) | O_NONBLOCK) < 0) {
			perror("fcntl");
			exit(1);
		}
		ev.events = EPOLLIN;
		ev.data.u64 = c;
		epoll_ctl(ep, EPOLL_CTL_ADD, w[c].fd, &ev);
	}

	double t0 = clock_start();
	for (size_t c = 0; c < conns; c++)
		if (ws_send(&w[c]))
			exit(1);
	while (unanswered > broken && now_ms() < deadline) {
		int k = epoll_wait(ep, evs, 256, 100);

		for (int e = 0; e < k; e++) {
			struct wconn *x = &w[evs[e].data.u64];
			size_t before = x->answered;

			if (x->fd < 0)
				continue;
			if (ws_recv(x, res) || ws_send(x)) {
				fprintf(stderr, "connection %llu broke\n",
				        (unsigned long long)evs[e].data.u64);
				broken += x->count - x->answered;
				close(x->fd);
				x->fd = -1;
				continue;
			}
			unanswered -= x->answered - before;
			/* Frames left unsent because the socket was full: wait for room. */
			bool want = x->sent_bytes <
			            x->off[x->answered + window < x->count ? x->answered + window
			                                                   : x->count];
			if (want != x->want_out) {
				ev.events = EPOLLIN | (want ? EPOLLOUT : 0);
				ev.data.u64 = evs[e].data.u64;
				epoll_ctl(ep, EPOLL_CTL_MOD, x->fd, &ev);
				x->want_out = want;
			}
		}
	}
	clock_stop(t0, res);
	for (size_t c = 0; c < conns; c++) {
		if (w[c].fd >= 0)
			close(w[c].fd);
		free(w[c].out);
		free(w[c].off);
		free(w[c].t_send);
		free(w[c].done);
		free(w[c].in);
	}
	close(ep);
	free(w);
}

int main(int argc, char **argv)
{
	size_t n = 0, conns = 0, rooms = 0;
	const char *mode = "http";

	token = getenv("LIVEGATE_ADMIN_TOKEN");
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--port"))
			port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--host"))
			host = argv[i + 1];
		else if (!strcmp(argv[i], "--mode"))
			mode = argv[i + 1];
		else if (!strcmp(argv[i], "--n"))
			n = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--conns"))
			conns = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--window"))
			window = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--rooms"))
			rooms = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--room"))
			room = argv[i + 1];
		else if (!strcmp(argv[i], "--max-seconds"))
			max_seconds = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--pid"))
			gw_pid = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--token"))
			token = argv[i + 1];
		else
			port = 0; /* unknown option: usage */
	}
	bool ws = !strcmp(mode, "ws");
	if (!n)
		n = ws ? 100000 : 40000;
	if (!conns)
		conns = ws ? 16 : 64;
	if (!rooms || rooms > conns)
		rooms = conns;
	if (!port || !token || conns > n || !window || max_seconds <= 0 ||
	    (!ws && strcmp(mode, "http")) || sodium_init() < 0) {
		fprintf(stderr, "usage: gift_bench --port P --token T [--mode http|ws] [--n N] "
		                "[--conns C] [--window W] [--rooms R] [--room NAME] "
		                "[--max-seconds S] [--pid GATEWAY_PID]\n");
		return 2;
	}

	/* One uid (and key) per connection, fresh per run, so txns and nonces never collide. */
	unsigned char(*sk)[64] = calloc(conns, 64);
	snprintf(uid_base, sizeof(uid_base), "b%lx_%ld", (long)time(NULL), (long)getpid());
	gift_ts = (long long)time(NULL) * 1000;
	register_keys(conns, sk);

	struct result res = {0};
	/* Each signs its gifts, then starts the clock (clock_start). */
	if (ws)
		ws_bench(n, conns, rooms, sk, &res);
	else
		http_bench(n, conns, sk, &res);
	qsort(res.lat, res.nlat, sizeof(double), cmp);
	printf("mode=%s gifts=%zu acked=%zu failed=%zu unanswered=%zu conns=%zu window=%zu "
	       "seconds=%.2f acked_per_s=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f",
	       mode, n, res.ok, res.failed, n - res.ok - res.failed, conns, ws ? window : 1,
	       res.secs, res.ok / res.secs, res.nlat ? res.lat[res.nlat / 2] : 0,
	       res.nlat ? res.lat[res.nlat * 99 / 100] : 0, res.nlat ? res.lat[res.nlat - 1] : 0);
	if (ws)
		printf(" room_msgs=%zu", res.room_msgs);
	if (res.ok)
		printf(" bench_cpu_us_per_gift=%.1f", res.my_cpu * 1e6 / (double)res.ok);
	if (res.gw_cpu >= 0 && res.ok)
		printf(" gateway_cpu_s=%.2f gateway_cpu_us_per_gift=%.1f", res.gw_cpu,
		       res.gw_cpu * 1e6 / (double)res.ok);
	/* What the rest of the machine took meanwhile: other processes are not our figure. */
	if (res.busy >= 0 && res.gw_cpu >= 0)
		printf(" machine_busy_cores=%.2f others_cores=%.2f", res.busy / res.secs,
		       (res.busy - res.gw_cpu - res.my_cpu) / res.secs);
	printf("\n");
	return res.failed || res.ok < n ? 1 : 0;
}
