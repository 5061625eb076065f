/*
 * fanout: the fan-out load generator of issue 3, for livegate and for Nchan.
 *
 * One run: the parent forks --procs client processes (each opens its share
 * of --conns connections, bound round-robin to 127.0.0.<src-base>..
 * <src-base + src-count - 1> so no address runs out of ephemeral ports) and,
 * with --rate > 0, one publisher process. When every client process has
 * connected, the parent samples the server's RSS, gives everyone the same
 * start time, and the run goes: --warmup seconds, then a --duration window in
 * which deliveries, requests and latencies are counted, then --drain seconds
 * in which subscribers only collect what is still in flight (for the
 * completeness figure). Every process then reports to the parent, which
 * aggregates and prints a summary and one machine-readable RESULT line.
 *
 * Modes (what the client processes do):
 *   ws    WebSocket subscribers of one room; count messages (not frames)
 *   poll  short-pollers over HTTP/1.1 keep-alive with Accept-Encoding: gzip,
 *         one request every --interval-ms (0: the next as soon as the answer
 *         is in, i.e. closed loop)
 *   idle  open WebSockets and hold them (memory)
 * The publisher POSTs --rate messages per second over --pub-conns keep-alive
 * connections; each text is "~<send time in µs>~" padded to --msg-bytes, so
 * every copy received gives one publish-to-receive latency.
 *
 * Targets:
 *   livegate  GET /v1/rooms/{room}/ws; GET /v1/rooms/{room}/poll?since=CURSOR;
 *             POST /v1/rooms/{room}/danmaku {"uid","text"}; batches carry
 *             several messages per frame
 *   nchan     GET /sub/{room} (websocket); GET /poll/{room} (intervalpoll,
 *             walking the queue with If-Modified-Since / If-None-Match as
 *             Nchan documents); POST /pub/{room} with the raw text; one
 *             message per frame or response
 *
 * Everything is non-blocking epoll; no libwebsockets (bench/wsclient.c holds
 * the wire formats). Each process is single-threaded.
 */
#define _GNU_SOURCE /* memmem, IP_BIND_ADDRESS_NO_PORT, epoll_pwait2 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "wsclient.h"

#define MAX_PROCS       64
#define MAX_SERVER_PIDS 16
#define SCRATCH_BYTES   (4u << 20)

/* Latency histogram: log-linear, 32 buckets per power of two (error < 3%), in µs. */
#define HIST_SUB_BITS 5
#define HIST_BUCKETS  ((40 - HIST_SUB_BITS + 2) << HIST_SUB_BITS)

enum target { T_LIVEGATE, T_NCHAN };
enum mode { M_WS, M_POLL, M_IDLE, M_NONE };
enum kind { K_WS, K_POLL, K_PUB };
enum cstate { C_NEW, C_CONNECTING, C_HANDSHAKE, C_OPEN, C_HTTP_IDLE, C_HTTP_WAIT, C_DEAD };

struct opts {
	enum target target;
	enum mode mode;
	const char *host, *room;
	int port;
	int conns, procs, src_base, src_count, connect_burst;
	double rate;
	int pub_conns, msg_bytes, interval_ms;
	double warmup, duration, drain, settle, connect_timeout;
	pid_t server_pids[MAX_SERVER_PIDS];
	int nserver_pids;
	bool gzip;
	bool memo; /* poll: decode each distinct gzip answer once (see "Poll answers, memoized") */
	const char *label;
};

/* What each process reports to the parent (sent whole over a pipe). */
struct report {
	int64_t conns_ok, conns_failed;
	int64_t msgs, frames, bytes;    /* in the window */
	int64_t msgs_total;             /* whole run, for completeness */
	int64_t requests, not_modified; /* poll answers in the window */
	int64_t gaps;
	int64_t published, pub_rejected, pub_errors; /* publisher: accepted / 429 / other */
	int64_t err_connect, err_handshake, err_closed, err_protocol, err_http;
	int64_t reconnects;
	int64_t memo_hits, memo_misses; /* gzip poll answers in the window, replayed / decoded */
	double cpu_s;  /* this process's CPU in the window */
	double wait_s; /* time it was runnable but waiting for a CPU, in the window */
	int64_t hist[HIST_BUCKETS];
};

struct conn {
	int fd;
	uint8_t kind, st;
	bool out_armed, in_heap;
	int heap_idx;
	uint32_t gidx;          /* global connection index: picks the source address */
	size_t need;            /* bytes needed to complete the unit at the start of `in` */
	struct wc_buf in;       /* unparsed bytes carried to the next read */
	struct wc_buf out;      /* bytes the socket did not take yet */
	struct wc_buf frag;     /* a fragmented WebSocket message being reassembled */
	int64_t due;            /* poll: time of the next request */
	char cursor[80];        /* livegate poll */
	char etag[96];          /* nchan poll */
	char lastmod[64];       /* nchan poll */
	struct conn *free_next; /* publisher: idle connections */
};

static struct opts o = {
    .target = T_LIVEGATE,
    .mode = M_WS,
    .host = "127.0.0.1",
    .room = "bench",
    .port = 8080,
    .conns = 1000,
    .procs = 2,
    .src_base = 2,
    .src_count = 4,
    .connect_burst = 256,
    .rate = 100,
    .pub_conns = 32,
    .msg_bytes = 100,
    .interval_ms = 0,
    .warmup = 2,
    .duration = 10,
    .drain = 1,
    .settle = 1,
    .connect_timeout = 60,
    .gzip = true,
    .memo = true,
    .label = "",
};

/* ---- time, histogram ---------------------------------------------------------------- */

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int hist_index(int64_t v)
{
	int e, shift;

	if (v < 0)
		v = 0;
	if (v < (2 << HIST_SUB_BITS))
		return (int)v;
	e = 63 - __builtin_clzll((unsigned long long)v);
	shift = e - HIST_SUB_BITS;
	if (shift > 40 - HIST_SUB_BITS)
		return HIST_BUCKETS - 1;
	return (shift << HIST_SUB_BITS) + (int)(v >> shift);
}

/* Middle of bucket i, in µs. */
static double hist_value(int i)
{
	int shift;

	if (i < (2 << HIST_SUB_BITS))
		return i;
	shift = (i >> HIST_SUB_BITS) - 1;
	return ((double)(i - (shift << HIST_SUB_BITS)) + 0.5) * (double)(1LL << shift);
}

static double hist_pct(const int64_t *h, double pct)
{
	int64_t total = 0, acc = 0, want;

	for (int i = 0; i < HIST_BUCKETS; i++)
		total += h[i];
	if (!total)
		return -1;
	want = (int64_t)(pct / 100 * (double)total);
	if (want >= total)
		want = total - 1;
	for (int i = 0; i < HIST_BUCKETS; i++) {
		acc += h[i];
		if (acc > want)
			return hist_value(i);
	}
	return -1;
}

static double hist_max(const int64_t *h)
{
	for (int i = HIST_BUCKETS - 1; i >= 0; i--)
		if (h[i])
			return hist_value(i);
	return -1;
}

/* ---- child process state (one per process; single-threaded) ------------------------- */

static int ep = -1;
static int ctl_fd = -1; /* parent -> child: the start time */
static enum kind my_kind;
static struct conn *conns;
static int nconns;
static char *scratch;
static struct wc_buf dechunk, inflated;
static z_stream zs;
static struct report rep;
static bool started;
static int64_t t_start, t_win0, t_win1, t_end;
static int in_flight;      /* connects + handshakes under way */
static int next_conn;      /* next connection to open */
static int settled;        /* connections open or failed */
static struct conn **heap; /* poll timers, by due */
static int heap_n;
/* Publisher connections ready for a request, oldest first (all stay in use, none idles out). */
static struct conn *pub_free, **pub_free_tail = &pub_free;
static int64_t pub_k; /* next message number */
static int64_t now_cached;
static bool win_cpu_taken[2];
static double win_cpu[2], win_wait[2];
static char ctl_sentinel;

static double self_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

/* Seconds a task spent runnable but waiting for a CPU (/proc/.../schedstat), or -1. */
static double sched_wait_s(const char *path)
{
	unsigned long long run, wait;
	FILE *f = fopen(path, "r");
	int n;

	if (!f)
		return -1;
	n = fscanf(f, "%llu %llu", &run, &wait);
	fclose(f);
	return n == 2 ? (double)wait / 1e9 : -1;
}

static bool in_window(int64_t t)
{
	return started && t >= t_win0 && t < t_win1;
}

static void heap_swap(int a, int b)
{
	struct conn *t = heap[a];

	heap[a] = heap[b];
	heap[b] = t;
	heap[a]->heap_idx = a;
	heap[b]->heap_idx = b;
}

static void heap_push(struct conn *c)
{
	int i = heap_n++;

	heap[i] = c;
	c->heap_idx = i;
	c->in_heap = true;
	while (i && heap[(i - 1) / 2]->due > heap[i]->due) {
		heap_swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static struct conn *heap_pop(void)
{
	struct conn *top = heap[0];
	int i = 0;

	heap_n--;
	if (heap_n) {
		heap[0] = heap[heap_n];
		heap[0]->heap_idx = 0;
		for (;;) {
			int l = 2 * i + 1, r = l + 1, m = i;
			if (l < heap_n && heap[l]->due < heap[m]->due)
				m = l;
			if (r < heap_n && heap[r]->due < heap[m]->due)
				m = r;
			if (m == i)
				break;
			heap_swap(i, m);
			i = m;
		}
	}
	top->in_heap = false;
	return top;
}

static void heap_remove(struct conn *c)
{
	/* Rare (a poller dying): push its due to the front and pop it. */
	int i = c->heap_idx;

	c->due = INT64_MIN;
	while (i && heap[(i - 1) / 2]->due > heap[i]->due) {
		heap_swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	heap_pop();
}

static void arm_out(struct conn *c, bool on)
{
	struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};

	if (c->out_armed == on)
		return;
	c->out_armed = on;
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Say why a connection died (the first few per process), so errors can be traced. */
static void conn_note(const struct conn *c, const char *what, const char *detail, size_t dlen)
{
	static int notes;

	if (notes++ >= 5)
		return;
	fprintf(stderr, "fanout[%d]: connection %u: %s%s%.*s\n", (int)getpid(), c->gidx, what,
	        dlen ? ": " : "", (int)dlen, detail);
}

static void conn_kill(struct conn *c, int64_t *counter)
{
	if (c->st == C_DEAD)
		return;
	if (counter)
		(*counter)++;
	if (c->st == C_CONNECTING || c->st == C_HANDSHAKE) {
		in_flight--;
		settled++;
		rep.conns_failed++;
	}
	if (c->in_heap)
		heap_remove(c);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->st = C_DEAD;
	wc_buf_free(&c->in);
	wc_buf_free(&c->out);
	wc_buf_free(&c->frag);
}

/* Send, keeping what the socket does not take. -1 when the connection broke. */
static int conn_send(struct conn *c, const void *p, size_t n)
{
	if (!c->out.len) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (w < 0)
			w = 0;
		p = (const char *)p + w;
		n -= (size_t)w;
	}
	if (!n)
		return 0;
	if (wc_buf_append(&c->out, p, n))
		return -1;
	arm_out(c, true);
	return 0;
}

static void flush_out(struct conn *c)
{
	ssize_t w = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);

	if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
		conn_note(c, "send failed", "", 0);
		conn_kill(c, &rep.err_closed);
		return;
	}
	if (w > 0) {
		memmove(c->out.data, c->out.data + w, c->out.len - (size_t)w);
		c->out.len -= (size_t)w;
	}
	if (!c->out.len)
		arm_out(c, false);
}

static int conn_open(struct conn *c);

/*
 * The server ended a keep-alive connection (nginx's keepalive_requests, an
 * idle timeout): dial again; it counts as connecting until it is up.
 */
static void conn_redial(struct conn *c)
{
	rep.reconnects++;
	if (c->in_heap)
		heap_remove(c);
	for (struct conn **pp = &pub_free; *pp; pp = &(*pp)->free_next)
		if (*pp == c) {
			*pp = c->free_next;
			if (!*pp)
				pub_free_tail = pp;
			break;
		}
	close(c->fd);
	c->fd = -1;
	wc_buf_free(&c->in);
	wc_buf_free(&c->out);
	in_flight++;
	settled--;
	rep.conns_ok--; /* conn_established counts it again */
	if (conn_open(c)) {
		c->st = C_CONNECTING;
		conn_note(c, "could not dial again", "", 0);
		conn_kill(c, &rep.err_connect);
	}
}

static int conn_open(struct conn *c)
{
	struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
	int one = 1;

	src.sin_addr.s_addr =
	    htonl(0x7f000000u | (uint32_t)(o.src_base + (int)(c->gidx % (uint32_t)o.src_count)));
	dst.sin_port = htons((uint16_t)o.port);
	inet_pton(AF_INET, o.host, &dst.sin_addr);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	/* Pick the port at connect(), per destination, not at bind() for the whole address. */
	setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) ||
	    (connect(c->fd, (struct sockaddr *)&dst, sizeof(dst)) && errno != EINPROGRESS)) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	c->st = C_CONNECTING;
	c->out_armed = true;
	c->need = 0;
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
	return 0;
}

/* ---- messages ----------------------------------------------------------------------- */

static void on_stamp(void *arg, int64_t ts)
{
	bool win = *(bool *)arg;

	rep.msgs_total++;
	if (win) {
		rep.msgs++;
		rep.hist[hist_index(now_cached - ts)]++;
	}
}

/* A complete WebSocket data message from the server. */
static void ws_message(struct conn *c, const char *p, size_t len)
{
	bool win = in_window(now_cached);

	if (win) {
		rep.frames++;
		rep.bytes += (int64_t)len;
	}
	wc_stamps_scan(p, len, on_stamp, &win);
	if (o.target == T_LIVEGATE && len >= 12 && memmem(p + len - 12, 12, "\"gap\":true", 10))
		rep.gaps++;
}

/* Frames at buf[0..len): returns bytes consumed, -1 to drop the connection. */
static long ws_consume(struct conn *c, const char *buf, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		struct wc_frame f;
		size_t need;
		int rc = wc_frame_parse((const unsigned char *)buf + pos, len - pos, &f, &need);
		const char *pl;

		if (rc < 0) {
			conn_note(c, "bad WebSocket frame", "", 0);
			conn_kill(c, &rep.err_protocol);
			return -1;
		}
		if (rc == 0) {
			c->need = need;
			break;
		}
		pl = buf + pos + f.hdr_len;
		switch (f.opcode) {
		case WC_OP_TEXT:
		case WC_OP_BIN:
			if (f.fin) {
				ws_message(c, pl, f.payload_len);
			} else {
				c->frag.len = 0;
				wc_buf_append(&c->frag, pl, f.payload_len);
			}
			break;
		case WC_OP_CONT:
			wc_buf_append(&c->frag, pl, f.payload_len);
			if (f.fin) {
				ws_message(c, c->frag.data, c->frag.len);
				wc_buf_free(&c->frag);
			}
			break;
		case WC_OP_PING: {
			unsigned char pong[125 + 14];
			size_t n = wc_frame_encode(pong, WC_OP_PONG, pl, f.payload_len, 0x5a17c0de);
			if (conn_send(c, pong, n)) {
				conn_note(c, "could not send a pong", "", 0);
				conn_kill(c, &rep.err_closed);
				return -1;
			}
			break;
		}
		case WC_OP_CLOSE: {
			char why[160];
			int n = 0;
			if (f.payload_len >= 2)
				n = snprintf(
				    why, sizeof(why), "%u %.*s",
				    (unsigned)((unsigned char)pl[0] << 8 | (unsigned char)pl[1]),
				    (int)f.payload_len - 2, pl + 2);
			conn_note(c, "close frame from the server", why, n > 0 ? (size_t)n : 0);
			conn_kill(c, &rep.err_closed);
			return -1;
		}
		default:
			break;
		}
		pos += f.hdr_len + f.payload_len;
		c->need = 0;
	}
	return (long)pos;
}

static void send_poll(struct conn *c);

/*
 * Poll answers, memoized. Against livegate every answer is a gzip body of ~11
 * messages; inflating and scanning it was ~40 % of a client process's CPU per
 * request (9.7 -> 5.9 us measured), enough to make the generator, not the
 * server, the saturated side of a closed-loop run. livegate shares answers
 * (pollers at the same cursor between two publishes get the same bytes), so
 * each process keeps the last distinct gzip bodies it decoded with what
 * decoding produced. A hit is exact, never a guess (hash, then memcmp against
 * the stored copy), and is accounted as a decode would be: the same bytes,
 * one latency sample per stamp taken now, the same cursor and gap. Plain
 * bodies (Nchan's single message) are scanned every time: that costs about
 * what a look-up would.
 */
#define MEMO_ENTRIES  32    /* ~11 cursors in play per publish; replaced round-robin */
#define MEMO_MAX_BODY 65536 /* larger answers are decoded every time */

struct memo_ent {
	uint64_t hash;
	struct wc_buf body;   /* the compressed body; len 0: an empty slot */
	struct wc_buf stamps; /* its send-time stamps, int64_t each, in body order */
	char cursor[sizeof(((struct conn *)0)->cursor)];
	bool gap;
};

static struct memo_ent memo[MEMO_ENTRIES];
static int memo_next;             /* the slot the next decoded body replaces */
static struct wc_buf memo_stamps; /* stamps of the body being decoded */
static bool memo_lost;            /* ... and one of them did not fit: do not keep it */

/* Not cryptographic: it only picks the candidate that memcmp then verifies. */
static uint64_t memo_hash(const char *p, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ n, w;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, sizeof(w));
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	w = 0;
	memcpy(&w, p + i, n - i);
	h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 29);
}

static const struct memo_ent *memo_find(uint64_t h, const char *p, size_t n)
{
	for (int i = 0; i < MEMO_ENTRIES; i++) {
		const struct memo_ent *m = &memo[i];
		if (m->hash == h && m->body.len == n && !memcmp(m->body.data, p, n))
			return m;
	}
	return NULL;
}

static void memo_store(uint64_t h, const char *p, size_t n, const char *cursor, bool gap)
{
	struct memo_ent *m = &memo[memo_next];

	memo_next = (memo_next + 1) % MEMO_ENTRIES;
	m->body.len = 0;
	m->stamps.len = 0;
	if (wc_buf_append(&m->body, p, n) ||
	    (memo_stamps.len && wc_buf_append(&m->stamps, memo_stamps.data, memo_stamps.len))) {
		m->body.len = 0; /* out of memory: the slot stays empty */
		return;
	}
	m->hash = h;
	memcpy(m->cursor, cursor, sizeof(m->cursor));
	m->gap = gap;
}

/* A decode's on_stamp that also keeps the stamp for the memo. */
static void on_stamp_kept(void *arg, int64_t ts)
{
	on_stamp(arg, ts);
	if (wc_buf_append(&memo_stamps, &ts, sizeof(ts)))
		memo_lost = true;
}

/* Body of a poll answer: decompress when needed, count stamps, remember the cursor. */
static int poll_body(struct conn *c, const struct wc_resp *r)
{
	const char *body = r->body;
	size_t len = r->body_len;
	bool win = in_window(now_cached), gap = false;
	bool memo_on = o.memo && r->gzip && len && len <= MEMO_MAX_BODY;
	uint64_t h = 0;

	if (memo_on) {
		const struct memo_ent *m;

		h = memo_hash(body, len);
		m = memo_find(h, body, len);
		if (win && m)
			rep.memo_hits++;
		else if (win)
			rep.memo_misses++;
		if (m) {
			for (size_t i = 0; i + sizeof(int64_t) <= m->stamps.len; i += sizeof(int64_t)) {
				int64_t ts;
				memcpy(&ts, m->stamps.data + i, sizeof(ts));
				on_stamp(&win, ts);
			}
			if (win)
				rep.bytes += (int64_t)len;
			if (o.target == T_LIVEGATE) {
				memcpy(c->cursor, m->cursor, sizeof(c->cursor));
				if (m->gap)
					rep.gaps++;
			}
			return 0;
		}
		memo_stamps.len = 0;
		memo_lost = false;
	}
	if (r->gzip) {
		inflateReset(&zs);
		zs.next_in = (unsigned char *)(uintptr_t)body;
		zs.avail_in = (unsigned)len;
		inflated.len = 0;
		for (;;) {
			int zr;
			if (wc_buf_reserve(&inflated, 65536))
				return -1;
			zs.next_out = (unsigned char *)inflated.data + inflated.len;
			zs.avail_out = (unsigned)(inflated.cap - inflated.len);
			zr = inflate(&zs, Z_NO_FLUSH);
			inflated.len = inflated.cap - zs.avail_out;
			if (zr == Z_STREAM_END)
				break;
			if (zr != Z_OK)
				return -1;
		}
		body = inflated.data;
		len = inflated.len;
	}
	wc_stamps_scan(body, len, memo_on ? on_stamp_kept : on_stamp, &win);
	if (win)
		rep.bytes += (int64_t)r->body_len;
	if (o.target == T_LIVEGATE) {
		const char *k = memmem(body, len, "\"cursor\":\"", 10), *e;
		if (!k)
			return -1;
		k += 10;
		e = memchr(k, '"', (size_t)(body + len - k));
		if (!e || (size_t)(e - k) >= sizeof(c->cursor))
			return -1;
		memcpy(c->cursor, k, (size_t)(e - k));
		c->cursor[e - k] = 0;
		gap = memmem(body, len, "\"gap\":true", 10) != NULL;
		if (gap)
			rep.gaps++;
	}
	/* Only an answer that decoded whole is kept: a bad one fails again each time. */
	if (memo_on && !memo_lost)
		memo_store(h, r->body, r->body_len, c->cursor, gap);
	return 0;
}

static void pub_ready(struct conn *c)
{
	c->st = C_HTTP_IDLE;
	c->free_next = NULL;
	*pub_free_tail = c;
	pub_free_tail = &c->free_next;
}

/* One HTTP response on a poll or publisher connection. -1 drops the connection. */
static int http_response(struct conn *c, const struct wc_resp *r)
{
	bool win = in_window(now_cached);

	if (c->st != C_HTTP_WAIT) {
		conn_note(c, "response on an idle connection", "", 0);
		conn_kill(c, &rep.err_protocol);
		return -1;
	}
	if (c->kind == K_PUB) {
		if (r->status >= 200 && r->status < 300)
			rep.published++;
		else if (r->status == 429)
			rep.pub_rejected++;
		else
			rep.pub_errors++;
		pub_ready(c);
		return 0;
	}
	if (win)
		rep.requests++;
	if (r->status == 304) {
		if (win)
			rep.not_modified++;
	} else if (r->status != 200) {
		rep.err_http++;
	} else if (poll_body(c, r)) {
		conn_note(c, "bad poll answer", "", 0);
		conn_kill(c, &rep.err_protocol);
		return -1;
	}
	if (o.target == T_NCHAN) {
		/* Nchan's position in the channel is the pair (Last-Modified, Etag). */
		if (r->etag[0])
			memcpy(c->etag, r->etag, sizeof(c->etag));
		if (r->last_modified[0])
			memcpy(c->lastmod, r->last_modified, sizeof(c->lastmod));
	}
	c->st = C_HTTP_IDLE;
	if (o.interval_ms <= 0) {
		send_poll(c);
	} else {
		int64_t next = c->due + (int64_t)o.interval_ms * 1000;
		c->due = next < now_cached ? now_cached : next;
		heap_push(c);
	}
	return 0;
}

static long http_consume(struct conn *c, const char *buf, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		struct wc_resp r;
		size_t need;
		int rc = wc_resp_parse(buf + pos, len - pos, &r, &dechunk, &need);

		if (rc < 0) {
			conn_note(c, "bad HTTP response", "", 0);
			conn_kill(c, &rep.err_protocol);
			return -1;
		}
		if (rc == 0) {
			c->need = need;
			break;
		}
		if (http_response(c, &r))
			return -1;
		pos += r.total_len;
		c->need = 0;
		if (r.close) {
			conn_note(c,
			          "the server ended keep-alive (Connection: close); dialing again",
			          "", 0);
			conn_redial(c);
			return -1;
		}
	}
	return (long)pos;
}

/* The upgrade answer; then whatever frames followed it. */
static long handshake_consume(struct conn *c, const char *buf, size_t len)
{
	struct wc_resp r;
	size_t need;
	int rc = wc_resp_parse(buf, len, &r, &dechunk, &need);
	long more;

	if (rc == 0)
		return 0;
	if (rc < 0 || r.status != 101) {
		conn_note(c, "handshake refused", rc < 0 ? "malformed answer" : buf,
		          rc < 0 ? 16 : 12);
		conn_kill(c, &rep.err_handshake);
		return -1;
	}
	c->st = C_OPEN;
	in_flight--;
	settled++;
	rep.conns_ok++;
	more = ws_consume(c, buf + r.total_len, len - r.total_len);
	return more < 0 ? -1 : (long)r.total_len + more;
}

static long consume(struct conn *c, const char *buf, size_t len)
{
	switch (c->st) {
	case C_HANDSHAKE:
		return handshake_consume(c, buf, len);
	case C_OPEN:
		return ws_consume(c, buf, len);
	case C_HTTP_IDLE:
	case C_HTTP_WAIT:
		return http_consume(c, buf, len);
	default:
		return (long)len;
	}
}

static void on_readable(struct conn *c)
{
	bool direct = c->in.len && c->need > c->in.len;
	size_t off = c->in.len;
	char *buf;
	ssize_t n;
	long used;

	if (direct) {
		/* A large unit is arriving: read straight into its buffer, no re-copy. */
		if (wc_buf_reserve(&c->in, c->need - c->in.len)) {
			conn_note(c, "out of memory", "", 0);
			conn_kill(c, &rep.err_protocol);
			return;
		}
		n = recv(c->fd, c->in.data + off, c->in.cap - off, 0);
		buf = c->in.data;
	} else {
		n = recv(c->fd, scratch + off, SCRATCH_BYTES - off, 0);
		buf = scratch;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		if (c->st == C_HTTP_IDLE && c->kind != K_WS) {
			conn_note(c,
			          "the server closed an idle keep-alive connection; dialing again",
			          "", 0);
			conn_redial(c);
			return;
		}
		conn_note(c, n == 0 ? "the server closed the connection" : strerror(errno), "", 0);
		conn_kill(c, c->st == C_HANDSHAKE ? &rep.err_handshake : &rep.err_closed);
		return;
	}
	if (direct) {
		c->in.len += (size_t)n;
		if (c->in.len < c->need)
			return;
	} else if (off) {
		memcpy(scratch, c->in.data, off);
	}
	used = consume(c, buf, off + (size_t)n);
	if (used < 0 || c->st == C_DEAD)
		return;
	if (direct) {
		memmove(c->in.data, c->in.data + used, c->in.len - (size_t)used);
		c->in.len -= (size_t)used;
	} else {
		c->in.len = 0;
		wc_buf_append(&c->in, scratch + used, off + (size_t)n - (size_t)used);
	}
	if (!c->in.len && c->in.cap > 65536)
		wc_buf_free(&c->in);
}

/* ---- requests ----------------------------------------------------------------------- */

static void send_poll(struct conn *c)
{
	char req[512];
	int n;
	const char *ae = o.gzip ? "Accept-Encoding: gzip\r\n" : "";

	if (o.target == T_LIVEGATE) {
		n = snprintf(req, sizeof(req),
		             "GET /v1/rooms/%s/poll%s%s HTTP/1.1\r\nHost: %s\r\n%s\r\n", o.room,
		             c->cursor[0] ? "?since=" : "", c->cursor, o.host, ae);
	} else {
		char cond[256] = "";
		if (c->etag[0])
			snprintf(cond, sizeof(cond),
			         "If-Modified-Since: %s\r\nIf-None-Match: %s\r\n", c->lastmod,
			         c->etag);
		n = snprintf(req, sizeof(req), "GET /poll/%s HTTP/1.1\r\nHost: %s\r\n%s%s\r\n",
		             o.room, o.host, ae, cond);
	}
	c->st = C_HTTP_WAIT;
	if (conn_send(c, req, (size_t)n)) {
		conn_note(c, "could not send a poll", "", 0);
		conn_kill(c, &rep.err_closed);
	}
}

static void send_publish(struct conn *c)
{
	char text[4096], body[4200], req[4600];
	size_t tl = wc_stamp(text, (size_t)o.msg_bytes, now_us());
	int bl, n;

	if (o.target == T_LIVEGATE) {
		bl = snprintf(body, sizeof(body), "{\"uid\":\"bench%u\",\"text\":\"%.*s\"}",
		              c->gidx, (int)tl, text);
		n = snprintf(req, sizeof(req),
		             "POST /v1/rooms/%s/danmaku HTTP/1.1\r\nHost: %s\r\n"
		             "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		             o.room, o.host, bl, body);
	} else {
		n = snprintf(req, sizeof(req),
		             "POST /pub/%s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\n"
		             "Content-Length: %zu\r\n\r\n%.*s",
		             o.room, o.host, tl, (int)tl, text);
	}
	c->st = C_HTTP_WAIT;
	if (conn_send(c, req, (size_t)n)) {
		conn_note(c, "could not send a publish", "", 0);
		conn_kill(c, &rep.err_closed);
	}
}

/* ---- connection set-up -------------------------------------------------------------- */

static void conn_established(struct conn *c)
{
	int err = 0;
	socklen_t el = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) || err) {
		conn_note(c, "connect failed", "", 0);
		conn_kill(c, &rep.err_connect);
		return;
	}
	if (c->kind == K_WS) {
		char req[512];
		char path[256];
		size_t n;

		if (o.target == T_LIVEGATE)
			snprintf(path, sizeof(path), "/v1/rooms/%s/ws", o.room);
		else
			snprintf(path, sizeof(path), "/sub/%s", o.room);
		n = wc_handshake(req, sizeof(req), o.host, o.port, path);
		c->st = C_HANDSHAKE;
		arm_out(c, false);
		if (conn_send(c, req, n)) {
			conn_note(c, "could not send the handshake", "", 0);
			conn_kill(c, &rep.err_handshake);
		}
		return;
	}
	/* HTTP connections count as open once TCP is up. */
	arm_out(c, false);
	in_flight--;
	settled++;
	rep.conns_ok++;
	c->st = C_HTTP_IDLE;
	if (c->kind == K_PUB) {
		pub_ready(c);
	} else if (started) {
		c->due = now_cached;
		heap_push(c);
	}
}

static void open_more(void)
{
	while (next_conn < nconns && in_flight < o.connect_burst) {
		struct conn *c = &conns[next_conn++];
		in_flight++;
		if (conn_open(c)) {
			c->st = C_CONNECTING; /* so conn_kill counts it as settled */
			conn_note(c, "could not dial", "", 0);
			conn_kill(c, &rep.err_connect);
		}
	}
}

static void on_event(struct conn *c, uint32_t evs)
{
	if (c->st == C_DEAD)
		return;
	if (c->st == C_CONNECTING) {
		if (evs & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			conn_established(c);
		return;
	}
	if (evs & EPOLLOUT) {
		flush_out(c);
		if (c->st == C_DEAD)
			return;
	}
	if (evs & (EPOLLIN | EPOLLERR | EPOLLHUP))
		on_readable(c);
}

/* ---- the child's loop ---------------------------------------------------------------- */

static void pub_tick(void)
{
	while (pub_free && now_cached < t_win1) {
		int64_t due = t_start + (int64_t)((double)pub_k * 1e6 / o.rate);
		struct conn *c;

		if (due > now_cached)
			break;
		c = pub_free;
		pub_free = c->free_next;
		if (!pub_free)
			pub_free_tail = &pub_free;
		send_publish(c);
		pub_k++;
	}
}

static int64_t next_deadline(void)
{
	int64_t d = now_cached + 100000; /* look at the clock at least every 100 ms */

	if (!started)
		return d;
	if (heap_n && heap[0]->due < d)
		d = heap[0]->due;
	if (my_kind == K_PUB && pub_free && now_cached < t_win1) {
		int64_t due = t_start + (int64_t)((double)pub_k * 1e6 / o.rate);
		if (due < d)
			d = due;
	}
	if (t_win0 > now_cached && t_win0 < d)
		d = t_win0;
	if (t_win1 > now_cached && t_win1 < d)
		d = t_win1;
	if (t_end < d)
		d = t_end;
	return d;
}

static void child_run(enum kind kind, int count, uint32_t gidx0, int rfd, int wfd)
{
	struct epoll_event evs[512], cev = {.events = EPOLLIN, .data.ptr = &ctl_sentinel};
	bool ready_sent = false;
	int64_t connect_deadline;

	signal(SIGPIPE, SIG_IGN);
	ctl_fd = rfd;
	nconns = count;
	my_kind = kind;
	conns = calloc((size_t)count, sizeof(*conns));
	heap = calloc((size_t)count + 1, sizeof(*heap));
	scratch = malloc(SCRATCH_BYTES);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!conns || !heap || !scratch || ep < 0 || inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
		fprintf(stderr, "fanout: out of memory\n");
		_exit(2);
	}
	epoll_ctl(ep, EPOLL_CTL_ADD, ctl_fd, &cev);
	for (int i = 0; i < count; i++) {
		conns[i].fd = -1;
		conns[i].kind = (uint8_t)kind;
		conns[i].gidx = gidx0 + (uint32_t)i;
	}
	now_cached = now_us();
	connect_deadline = now_cached + (int64_t)(o.connect_timeout * 1e6);
	open_more();
	for (;;) {
		int64_t dl = next_deadline(), wait = dl - now_cached;
		struct timespec ts;
		int n;

		if (wait < 0)
			wait = 0;
		ts.tv_sec = wait / 1000000;
		ts.tv_nsec = (wait % 1000000) * 1000;
		n = epoll_pwait2(ep, evs, 512, &ts, NULL);
		now_cached = now_us();
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == &ctl_sentinel) {
				int64_t t;
				if (read(ctl_fd, &t, sizeof(t)) != sizeof(t)) {
					fprintf(stderr, "fanout: parent went away\n");
					_exit(2);
				}
				started = true;
				t_start = t;
				t_win0 = t_start + (int64_t)(o.warmup * 1e6);
				t_win1 = t_win0 + (int64_t)(o.duration * 1e6);
				t_end = t_win1 + (int64_t)(o.drain * 1e6);
				epoll_ctl(ep, EPOLL_CTL_DEL, ctl_fd, NULL);
				if (kind == K_POLL) {
					/* Spread the first requests over one interval. */
					for (int k = 0; k < count; k++) {
						struct conn *c = &conns[k];
						if (c->st != C_HTTP_IDLE)
							continue;
						c->due =
						    t_start +
						    (o.interval_ms > 0
						         ? (int64_t)k * o.interval_ms * 1000 / count
						         : 0);
						heap_push(c);
					}
				}
				continue;
			}
			on_event(evs[i].data.ptr, evs[i].events);
		}
		open_more();
		if (!ready_sent && (settled >= nconns || now_cached > connect_deadline)) {
			int64_t r[2] = {rep.conns_ok, rep.conns_failed};
			if (write(wfd, r, sizeof(r)) != sizeof(r))
				_exit(2);
			ready_sent = true;
		}
		if (!started)
			continue;
		while (heap_n && heap[0]->due <= now_cached) {
			struct conn *c = heap_pop();
			if (now_cached < t_win1)
				send_poll(c);
		}
		if (kind == K_PUB)
			pub_tick();
		for (int w = 0; w < 2; w++) {
			if (!win_cpu_taken[w] && now_cached >= (w ? t_win1 : t_win0)) {
				win_cpu_taken[w] = true;
				win_cpu[w] = self_cpu();
				win_wait[w] = sched_wait_s("/proc/self/schedstat");
			}
		}
		if (now_cached >= t_end)
			break;
	}
	rep.cpu_s = win_cpu[1] - win_cpu[0];
	rep.wait_s = win_wait[1] - win_wait[0];
	{
		const char *p = (const char *)&rep;
		size_t left = sizeof(rep);
		while (left) {
			ssize_t w = write(wfd, p, left);
			if (w <= 0)
				_exit(2);
			p += w;
			left -= (size_t)w;
		}
	}
	_exit(0);
}

/* ---- the parent ---------------------------------------------------------------------- */

static long server_rss_kb(void)
{
	long total = 0;

	for (int i = 0; i < o.nserver_pids; i++) {
		char path[64], line[256];
		FILE *f;
		long kb = -1;

		snprintf(path, sizeof(path), "/proc/%d/status", (int)o.server_pids[i]);
		f = fopen(path, "r");
		if (!f)
			return -1;
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "VmRSS:", 6))
				kb = strtol(line + 6, NULL, 10);
		fclose(f);
		if (kb < 0)
			return -1;
		total += kb;
	}
	return o.nserver_pids ? total : -1;
}

static double server_cpu_s(void)
{
	double total = 0;

	for (int i = 0; i < o.nserver_pids; i++) {
		char path[64], buf[1024], *p;
		unsigned long long ut, st;
		FILE *f;
		size_t n;

		snprintf(path, sizeof(path), "/proc/%d/stat", (int)o.server_pids[i]);
		f = fopen(path, "r");
		if (!f)
			return -1;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = 0;
		p = strrchr(buf, ')');
		if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
		                 &ut, &st) != 2)
			return -1;
		total += (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	}
	return o.nserver_pids ? total : -1;
}

/* Run-queue wait of every thread of the server processes, in seconds; -1 unknown. */
static double server_wait_s(void)
{
	double total = 0;

	for (int i = 0; i < o.nserver_pids; i++) {
		char dir[64], path[600];
		struct dirent *e;
		DIR *d;

		snprintf(dir, sizeof(dir), "/proc/%d/task", (int)o.server_pids[i]);
		d = opendir(dir);
		if (!d)
			return -1;
		while ((e = readdir(d))) {
			double w;
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s/schedstat", dir, e->d_name);
			w = sched_wait_s(path);
			if (w > 0)
				total += w;
		}
		closedir(d);
	}
	return o.nserver_pids ? total : -1;
}

static void sleep_until(int64_t t)
{
	int64_t d = t - now_us();

	if (d > 0) {
		struct timespec ts = {d / 1000000, (d % 1000000) * 1000};
		while (nanosleep(&ts, &ts) && errno == EINTR) {
		}
	}
}

static int read_full(int fd, void *p, size_t n, int timeout_ms)
{
	char *q = p;

	while (n) {
		fd_set rs;
		struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
		ssize_t r;

		FD_ZERO(&rs);
		FD_SET(fd, &rs);
		if (select(fd + 1, &rs, NULL, NULL, &tv) <= 0)
			return -1;
		r = read(fd, q, n);
		if (r <= 0)
			return -1;
		q += r;
		n -= (size_t)r;
	}
	return 0;
}

static const char *target_name(void)
{
	return o.target == T_LIVEGATE ? "livegate" : "nchan";
}

static const char *mode_name(void)
{
	static const char *names[] = {"ws", "poll", "idle", "none"};
	return names[o.mode];
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: fanout [options]\n"
	    "  --target livegate|nchan   server flavour (default livegate)\n"
	    "  --host ADDR --port N      server address (default 127.0.0.1:8080)\n"
	    "  --room NAME               room / channel (default bench)\n"
	    "  --mode ws|poll|idle|none  what the client processes do (default ws)\n"
	    "  --conns N                 client connections in all (default 1000)\n"
	    "  --procs P                 client processes (default 2; at most %d)\n"
	    "  --src-base B --src-count K  bind clients to 127.0.0.B .. 127.0.0.(B+K-1) (2, 4)\n"
	    "  --connect-burst N         connections being set up at once, per process (256)\n"
	    "  --rate R                  messages published per second; 0 = no publisher (100)\n"
	    "  --pub-conns N             publisher keep-alive connections (32)\n"
	    "  --msg-bytes N             message text size, >= %d (100)\n"
	    "  --interval-ms N           poll: ms between a poller's requests; 0 = closed loop "
	    "(0)\n"
	    "  --no-gzip                 poll: do not send Accept-Encoding: gzip\n"
	    "  --no-memo                 poll: decode every gzip answer, even one seen before\n"
	    "  --warmup S --duration S --drain S   run phases in seconds (2, 10, 1)\n"
	    "  --settle S                seconds after connecting before sampling RSS (1)\n"
	    "  --connect-timeout S       give up connecting after S seconds (60)\n"
	    "  --server-pid PID[,PID..]  sample the server's VmRSS and CPU time\n"
	    "  --label TEXT              copied into the RESULT line\n",
	    MAX_PROCS, WC_STAMP_LEN);
}

static void parse_args(int argc, char **argv)
{
	enum {
		O_TARGET = 256,
		O_HOST,
		O_PORT,
		O_ROOM,
		O_MODE,
		O_CONNS,
		O_PROCS,
		O_SRCB,
		O_SRCC,
		O_BURST,
		O_RATE,
		O_PUBC,
		O_BYTES,
		O_IVAL,
		O_NOGZ,
		O_NOMEMO,
		O_WARM,
		O_DUR,
		O_DRAIN,
		O_SETTLE,
		O_CTO,
		O_PIDS,
		O_LABEL,
		O_HELP
	};
	static const struct option lo[] = {
	    {"target", 1, 0, O_TARGET},   {"host", 1, 0, O_HOST},
	    {"port", 1, 0, O_PORT},       {"room", 1, 0, O_ROOM},
	    {"mode", 1, 0, O_MODE},       {"conns", 1, 0, O_CONNS},
	    {"procs", 1, 0, O_PROCS},     {"src-base", 1, 0, O_SRCB},
	    {"src-count", 1, 0, O_SRCC},  {"connect-burst", 1, 0, O_BURST},
	    {"rate", 1, 0, O_RATE},       {"pub-conns", 1, 0, O_PUBC},
	    {"msg-bytes", 1, 0, O_BYTES}, {"interval-ms", 1, 0, O_IVAL},
	    {"no-gzip", 0, 0, O_NOGZ},    {"warmup", 1, 0, O_WARM},
	    {"duration", 1, 0, O_DUR},    {"drain", 1, 0, O_DRAIN},
	    {"settle", 1, 0, O_SETTLE},   {"connect-timeout", 1, 0, O_CTO},
	    {"server-pid", 1, 0, O_PIDS}, {"label", 1, 0, O_LABEL},
	    {"no-memo", 0, 0, O_NOMEMO},  {"help", 0, 0, O_HELP},
	    {0, 0, 0, 0}};
	int opt;

	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (opt) {
		case O_TARGET:
			if (!strcmp(optarg, "livegate"))
				o.target = T_LIVEGATE;
			else if (!strcmp(optarg, "nchan"))
				o.target = T_NCHAN;
			else
				goto bad;
			break;
		case O_HOST:
			o.host = optarg;
			break;
		case O_PORT:
			o.port = atoi(optarg);
			break;
		case O_ROOM:
			o.room = optarg;
			break;
		case O_MODE:
			if (!strcmp(optarg, "ws"))
				o.mode = M_WS;
			else if (!strcmp(optarg, "poll"))
				o.mode = M_POLL;
			else if (!strcmp(optarg, "idle"))
				o.mode = M_IDLE;
			else if (!strcmp(optarg, "none"))
				o.mode = M_NONE;
			else
				goto bad;
			break;
		case O_CONNS:
			o.conns = atoi(optarg);
			break;
		case O_PROCS:
			o.procs = atoi(optarg);
			break;
		case O_SRCB:
			o.src_base = atoi(optarg);
			break;
		case O_SRCC:
			o.src_count = atoi(optarg);
			break;
		case O_BURST:
			o.connect_burst = atoi(optarg);
			break;
		case O_RATE:
			o.rate = atof(optarg);
			break;
		case O_PUBC:
			o.pub_conns = atoi(optarg);
			break;
		case O_BYTES:
			o.msg_bytes = atoi(optarg);
			break;
		case O_IVAL:
			o.interval_ms = atoi(optarg);
			break;
		case O_NOGZ:
			o.gzip = false;
			break;
		case O_NOMEMO:
			o.memo = false;
			break;
		case O_WARM:
			o.warmup = atof(optarg);
			break;
		case O_DUR:
			o.duration = atof(optarg);
			break;
		case O_DRAIN:
			o.drain = atof(optarg);
			break;
		case O_SETTLE:
			o.settle = atof(optarg);
			break;
		case O_CTO:
			o.connect_timeout = atof(optarg);
			break;
		case O_PIDS: {
			char *s = optarg, *e;
			while (*s && o.nserver_pids < MAX_SERVER_PIDS) {
				long v = strtol(s, &e, 10);
				if (e == s || v <= 0)
					goto bad;
				o.server_pids[o.nserver_pids++] = (pid_t)v;
				s = *e == ',' ? e + 1 : e;
				if (*e && *e != ',')
					goto bad;
			}
			break;
		}
		case O_LABEL:
			o.label = optarg;
			break;
		case 'h':
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			goto bad;
		}
	}
	if (optind != argc || o.port < 1 || o.port > 65535 || o.conns < 0 || o.procs < 1 ||
	    o.procs > MAX_PROCS || o.src_base < 1 || o.src_count < 1 ||
	    o.src_base + o.src_count > 255 || o.connect_burst < 1 || o.rate < 0 ||
	    o.pub_conns < 1 || o.msg_bytes < WC_STAMP_LEN || o.msg_bytes > 4000 ||
	    o.interval_ms < 0 || o.warmup < 0 || o.duration <= 0 || o.drain < 0 || o.settle < 0 ||
	    o.connect_timeout <= 0 || strlen(o.room) > 64 || (o.mode == M_NONE && o.rate <= 0))
		goto bad;
	return;
bad:
	usage(stderr);
	exit(2);
}

static void add_report(struct report *sum, const struct report *r)
{
	const int64_t *s = (const int64_t *)r;
	int64_t *d = (int64_t *)sum;
	size_t n64 = offsetof(struct report, cpu_s) / sizeof(int64_t);

	for (size_t i = 0; i < n64; i++)
		d[i] += s[i];
	sum->cpu_s += r->cpu_s;
	sum->wait_s += r->wait_s;
	for (int i = 0; i < HIST_BUCKETS; i++)
		sum->hist[i] += r->hist[i];
}

int main(int argc, char **argv)
{
	struct {
		pid_t pid;
		int to, from;
		bool pub;
	} kids[MAX_PROCS + 1];
	int nkids = 0, clients;
	struct report sum = {0}, pubrep = {0};
	int64_t ready_ok = 0, ready_failed = 0, t0;
	long rss_before, rss_ready, rss_end;
	double cpu0, cpu1, wait0, wait1;
	static struct report rbuf;

	parse_args(argc, argv);
	clients = o.mode == M_NONE || o.conns == 0 ? 0 : o.procs;
	signal(SIGPIPE, SIG_IGN);
	rss_before = server_rss_kb();
	for (int k = 0; k < clients + (o.rate > 0); k++) {
		int to[2], from[2];
		bool pub = k == clients;
		int count = pub ? o.pub_conns : o.conns / o.procs + (k < o.conns % o.procs);
		uint32_t g0 = pub ? 0
		                  : (uint32_t)(k * (o.conns / o.procs) +
		                               (k < o.conns % o.procs ? k : o.conns % o.procs));
		pid_t pid;

		if (pipe(to) || pipe(from)) {
			perror("pipe");
			return 1;
		}
		fflush(NULL);
		pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			for (int j = 0; j < nkids; j++) {
				close(kids[j].to);
				close(kids[j].from);
			}
			close(to[1]);
			close(from[0]);
			child_run(pub ? K_PUB : (o.mode == M_POLL ? K_POLL : K_WS), count, g0,
			          to[0], from[1]);
		}
		close(to[0]);
		close(from[1]);
		kids[nkids].pid = pid;
		kids[nkids].to = to[1];
		kids[nkids].from = from[0];
		kids[nkids].pub = pub;
		nkids++;
	}
	for (int j = 0; j < nkids; j++) {
		int64_t r[2];
		if (read_full(kids[j].from, r, sizeof(r),
		              (int)(o.connect_timeout * 1000) + 10000)) {
			fprintf(stderr, "fanout: process %d did not get ready\n", (int)kids[j].pid);
			for (int i = 0; i < nkids; i++)
				kill(kids[i].pid, SIGKILL);
			return 1;
		}
		if (!kids[j].pub) {
			ready_ok += r[0];
			ready_failed += r[1];
		}
	}
	sleep_until(now_us() + (int64_t)(o.settle * 1e6));
	rss_ready = server_rss_kb();
	t0 = now_us() + 50000;
	for (int j = 0; j < nkids; j++)
		if (write(kids[j].to, &t0, sizeof(t0)) != sizeof(t0))
			fprintf(stderr, "fanout: cannot start process %d\n", (int)kids[j].pid);
	sleep_until(t0 + (int64_t)(o.warmup * 1e6));
	cpu0 = server_cpu_s();
	wait0 = server_wait_s();
	sleep_until(t0 + (int64_t)((o.warmup + o.duration) * 1e6));
	cpu1 = server_cpu_s();
	wait1 = server_wait_s();
	rss_end = server_rss_kb();
	for (int j = 0; j < nkids; j++) {
		int status;
		if (read_full(kids[j].from, &rbuf, sizeof(rbuf), (int)((o.drain + 10) * 1000))) {
			fprintf(stderr, "fanout: no report from process %d\n", (int)kids[j].pid);
			kill(kids[j].pid, SIGKILL);
		} else if (kids[j].pub) {
			add_report(&pubrep, &rbuf);
		} else {
			add_report(&sum, &rbuf);
		}
		waitpid(kids[j].pid, &status, 0);
	}

	double secs = o.duration;
	double dps = (double)sum.msgs / secs, rps = (double)sum.requests / secs;
	double p50 = hist_pct(sum.hist, 50) / 1000, p99 = hist_pct(sum.hist, 99) / 1000,
	       pmax = hist_max(sum.hist) / 1000;
	double expect = (double)pubrep.published * (double)sum.conns_ok;
	/*
	 * Closed-loop pollers also keep asking through the drain, so theirs counts
	 * too (an --interval-ms poller asks nothing after the window). A poller's
	 * first answer only gives it the head: what was published before that
	 * reads as missed, a few ms of messages out of the run.
	 */
	bool has_complete = o.mode == M_WS || (o.mode == M_POLL && o.interval_ms == 0);
	double complete = expect > 0 && has_complete ? (double)sum.msgs_total / expect : -1;
	int64_t errors = sum.err_connect + sum.err_handshake + sum.err_closed + sum.err_protocol +
	                 sum.err_http + pubrep.err_closed + pubrep.err_protocol +
	                 pubrep.err_connect + pubrep.pub_errors + pubrep.pub_rejected;
	double scpu = cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1;
	double swait = wait0 >= 0 && wait1 >= 0 ? wait1 - wait0 : -1;
	double per_conn = rss_before >= 0 && rss_ready >= 0 && ready_ok > 0
	                      ? (double)(rss_ready - rss_before) * 1024 / (double)ready_ok
	                      : -1;
	double units = o.mode == M_POLL ? (double)sum.requests : (double)sum.msgs;

	printf("fanout %s: target=%s mode=%s conns=%lld/%d procs=%d rate=%g/s window=%gs\n",
	       o.label, target_name(), mode_name(), (long long)ready_ok, o.conns, o.procs, o.rate,
	       o.duration);
	if (o.mode == M_WS || o.mode == M_POLL)
		printf("  deliveries/s %.0f  frames/s %.0f  msgs/frame %.2f  MB/s %.1f\n", dps,
		       (double)sum.frames / secs,
		       sum.frames ? (double)sum.msgs / (double)sum.frames : 0,
		       (double)sum.bytes / secs / 1e6);
	if (o.mode == M_POLL)
		printf("  requests/s %.0f  (304: %lld)  msgs/request %.2f\n", rps,
		       (long long)sum.not_modified,
		       sum.requests ? (double)sum.msgs / (double)sum.requests : 0);
	if (sum.msgs)
		printf("  latency publish->receive: p50 %.2f ms  p99 %.2f ms  max %.1f ms\n", p50,
		       p99, pmax);
	if (o.rate > 0)
		printf("  published %lld accepted (%.1f/s), %lld rate-limited, %lld failed; "
		       "completeness %.4f\n",
		       (long long)pubrep.published,
		       (double)pubrep.published / (o.warmup + o.duration),
		       (long long)pubrep.pub_rejected, (long long)pubrep.pub_errors, complete);
	printf(
	    "  errors %lld (connect %lld, handshake %lld, closed %lld, protocol %lld, http %lld; "
	    "publisher %lld); gaps %lld; reconnects %lld\n",
	    (long long)errors, (long long)sum.err_connect, (long long)sum.err_handshake,
	    (long long)sum.err_closed, (long long)sum.err_protocol, (long long)sum.err_http,
	    (long long)(pubrep.err_closed + pubrep.err_protocol + pubrep.err_connect +
	                pubrep.pub_errors + pubrep.pub_rejected),
	    (long long)sum.gaps, (long long)(sum.reconnects + pubrep.reconnects));
	if (o.nserver_pids)
		printf(
		    "  server: VmRSS %ld kB before, %ld kB connected (%.0f B/conn), %ld kB at end; "
		    "CPU %.2f s in window (%.3f us per %s), waited %.2f s for a CPU\n",
		    rss_before, rss_ready, per_conn, rss_end, scpu,
		    units > 0 && scpu >= 0 ? scpu * 1e6 / units : -1,
		    o.mode == M_POLL ? "request" : "delivery", swait);
	printf("  generator CPU %.2f s in window (clients), %.2f s (publisher); waited %.2f s "
	       "for a CPU\n",
	       sum.cpu_s, pubrep.cpu_s, sum.wait_s + pubrep.wait_s);
	if (o.mode == M_POLL)
		printf("  gzip answers in window: %lld replayed from the memo, %lld decoded "
		       "(hit rate %.3f)%s\n",
		       (long long)sum.memo_hits, (long long)sum.memo_misses,
		       sum.memo_hits + sum.memo_misses
		           ? (double)sum.memo_hits / (double)(sum.memo_hits + sum.memo_misses)
		           : 0,
		       o.memo ? "" : "; memo off (--no-memo)");
	printf("RESULT label=%s target=%s mode=%s conns=%lld rate=%g deliveries_per_s=%.0f "
	       "requests_per_s=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.1f completeness=%.4f "
	       "errors=%lld gaps=%lld published=%lld rss_before_kb=%ld rss_ready_kb=%ld "
	       "rss_per_conn_b=%.0f server_cpu_s=%.3f server_us_per_unit=%.4f gen_cpu_s=%.2f "
	       "server_wait_s=%.2f gen_wait_s=%.2f memo_hits=%lld memo_misses=%lld\n",
	       o.label[0] ? o.label : "-", target_name(), mode_name(), (long long)ready_ok, o.rate,
	       dps, rps, p50, p99, pmax, complete, (long long)errors, (long long)sum.gaps,
	       (long long)pubrep.published, rss_before, rss_ready, per_conn, scpu,
	       units > 0 && scpu >= 0 ? scpu * 1e6 / units : -1, sum.cpu_s + pubrep.cpu_s, swait,
	       sum.wait_s + pubrep.wait_s, (long long)sum.memo_hits, (long long)sum.memo_misses);
	return 0;
}
