/*
 * lg-relay: a userspace TCP impairment relay for livegate's weak-network QA
 * (netem/README.md). This kernel has no sch_netem, so delay, jitter, stalls
 * and connection resets are made here.
 *
 * For every client accepted on --listen it opens one connection to
 * --upstream and forwards both directions through a queue of chunks. A chunk
 * gets a release time when it is read (delay + jitter, never earlier than the
 * chunk before it, so bytes keep their order); a token bucket per direction
 * paces what is released; during a stall nothing is sent and nothing is
 * accepted; a connection may be reset (RST to both sides) at a random
 * lifetime. The parameters (netem/params.h) come from flags and from a
 * line-based control port on loopback.
 *
 * Threads: one. Everything runs on the epoll loop in main(); signals arrive
 * through a signalfd, so no code runs in a signal handler.
 *
 * Ownership: a connection owns its two sockets, its queued chunks (at most
 * buf_bytes per direction) and four timers in the relay's heap. A closed
 * connection is parked on the graveyard list until the current batch of epoll
 * events is handled, because a later event of the batch may point at it.
 */
#define _GNU_SOURCE /* accept4 */
#include "netem/addr.h"
#include "netem/cli.h"
#include "netem/ctl.h"
#include "netem/heap.h"
#include "netem/params.h"
#include "netem/sched.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_MAX      65536 /* bytes per recv */
#define READS_PER_EV  4     /* recvs per event, so one fast sender cannot starve the rest */
#define RATE_MIN_SEND 1024  /* under a rate, wait for this many bytes rather than dribble */
#define ACCEPT_BATCH  64
#define PAUSE_MS      100 /* accepting pauses this long after EMFILE and the like */
#define CTL_MAX       32  /* control connections at once */
#define EVENTS        256

#define container_of(p, T, m) ((T *)((char *)(p)-offsetof(T, m)))

enum kind { K_LISTEN, K_CTL_LISTEN, K_CTL, K_SIDE, K_SIGNAL };

/* An fd in the epoll set; epoll's data.ptr points here. */
struct handle {
	enum kind kind;
	int fd;
	uint32_t mask; /* interest registered; 0 = not in the epoll set */
};

struct relay;

struct rtimer {
	struct nm_timer t;
	void (*fire)(struct relay *r, struct rtimer *t);
};

struct chunk {
	struct chunk *next;
	int64_t release;
	size_t len, off;
	char data[];
};

/* One direction of a connection: reads side i, writes side 1 - i. */
struct dir {
	struct conn *c;
	int i;
	struct chunk *head, *tail;
	size_t queued;
	int64_t last_release;
	int64_t eof_release; /* -1 until the source sent FIN; then when to pass it on */
	bool blocked;        /* the last send hit EAGAIN: wait for EPOLLOUT */
	bool shut;           /* FIN passed on */
	struct nm_rate rate;
	struct rtimer timer;
};

struct side {
	struct handle h; /* first: epoll hands back the handle */
	struct conn *c;
};

struct conn {
	struct side s[2]; /* 0 = client, 1 = upstream */
	struct dir d[2];  /* d[0] client -> upstream, d[1] upstream -> client */
	bool connecting, dead;
	struct rtimer cut, connect_to;
	struct conn *prev, *next;
};

struct ctl {
	struct handle h; /* first, as for struct side; h.fd is the nm_ctl's */
	struct nm_ctl *k;
	struct ctl *prev, *next;
};

struct relay {
	int ep, status;
	struct nm_params p;
	struct nm_rng rng;
	struct nm_heap heap;
	struct handle lis, ctl_lis, sig;
	struct sockaddr_storage up;
	socklen_t uplen;
	struct conn *conns, *graveyard;
	struct ctl *ctls;
	int nctl;
	bool stalled, accept_paused, quit;
	int64_t stall_epoch, oneshot_until;
	struct rtimer stall_t, pause_t;
	uint64_t accepted, open, cut, failed, reset, closed, bytes[2];
	const char *name;
};

static char rbuf[READ_MAX];

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Register exactly `mask`; an empty mask leaves the epoll set, so a hung-up
 * socket we are not using cannot make epoll_wait spin. */
static int set_mask(struct relay *r, struct handle *h, uint32_t mask)
{
	struct epoll_event ev = {.events = mask, .data.ptr = h};
	int op = !h->mask ? EPOLL_CTL_ADD : mask ? EPOLL_CTL_MOD : EPOLL_CTL_DEL;

	if (mask == h->mask || h->fd < 0)
		return 0;
	if (epoll_ctl(r->ep, op, h->fd, &ev))
		return -1;
	h->mask = mask;
	return 0;
}

static int arm(struct relay *r, struct rtimer *t, int64_t when)
{
	return nm_heap_arm(&r->heap, &t->t, when);
}

static void disarm(struct relay *r, struct rtimer *t)
{
	nm_heap_disarm(&r->heap, &t->t);
}

static void update_listener(struct relay *r)
{
	bool want = !r->stalled && !r->accept_paused && r->open < (uint64_t)r->p.max_conns;

	if (set_mask(r, &r->lis, want ? EPOLLIN : 0) ||
	    set_mask(r, &r->ctl_lis, r->accept_paused ? 0 : EPOLLIN)) {
		perror("lg-relay: epoll_ctl (listener)");
		r->status = 1;
		r->quit = true;
	}
}

/* Closes both sockets (rst: with SO_LINGER 0, so both peers get a RST). */
static void conn_close(struct relay *r, struct conn *c, bool rst)
{
	static const struct linger abort_now = {1, 0};
	struct chunk *k;
	int j;

	if (c->dead)
		return;
	for (j = 0; j < 2; j++) {
		struct dir *d = &c->d[j];
		int fd = c->s[j].h.fd;

		if (fd >= 0) {
			if (rst)
				setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_now,
				           sizeof(abort_now));
			close(fd); /* also leaves the epoll set */
			c->s[j].h.fd = -1;
		}
		while ((k = d->head)) {
			d->head = k->next;
			free(k);
		}
		disarm(r, &d->timer);
	}
	disarm(r, &c->cut);
	disarm(r, &c->connect_to);
	if (c->prev)
		c->prev->next = c->next;
	else
		r->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = r->graveyard;
	r->graveyard = c;
	c->dead = true;
	r->open--;
	update_listener(r);
}

/* An I/O error on either side: reset both. */
static void conn_fail(struct relay *r, struct conn *c)
{
	r->reset++;
	conn_close(r, c, true);
}

static int update_interest(struct relay *r, struct conn *c)
{
	int j;

	for (j = 0; j < 2; j++) {
		struct dir *in = &c->d[j], *out = &c->d[1 - j];
		uint32_t m = 0;

		if (j == 1 && c->connecting) {
			m = EPOLLOUT;
		} else {
			if (in->eof_release < 0 && in->queued < (size_t)r->p.buf_bytes)
				m |= EPOLLIN;
			if (out->blocked && !r->stalled)
				m |= EPOLLOUT;
		}
		if (set_mask(r, &c->s[j].h, m))
			return -1;
	}
	return 0;
}

/* Send what direction i may send now; arm its timer for the next moment it may send more. */
static void flush(struct relay *r, struct conn *c, int i)
{
	struct dir *d = &c->d[i];
	int fd = c->s[1 - i].h.fd;
	int64_t now = now_ms(), wake = -1;

	if (c->dead)
		return;
	if (c->connecting || r->stalled || d->blocked)
		goto out; /* the connect, the stall's end or EPOLLOUT calls again */
	while (d->head) {
		struct chunk *k = d->head;
		int64_t want = (int64_t)(k->len - k->off), need, avail;
		ssize_t n;

		if (k->release > now) {
			wake = k->release;
			break;
		}
		avail = nm_rate_avail(&d->rate, r->p.rate_kbps, r->p.burst_bytes, now);
		need = want < RATE_MIN_SEND ? want : RATE_MIN_SEND;
		if (need > r->p.burst_bytes)
			need = r->p.burst_bytes;
		if (avail < need) {
			wake = now + nm_rate_wait_ms(&d->rate, r->p.rate_kbps, need);
			break;
		}
		n = send(fd, k->data + k->off, (size_t)(want < avail ? want : avail), MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				d->blocked = true;
				break;
			}
			conn_fail(r, c);
			return;
		}
		nm_rate_take(&d->rate, r->p.rate_kbps, n);
		r->bytes[i] += (uint64_t)n;
		k->off += (size_t)n;
		d->queued -= (size_t)n;
		if (k->off == k->len) {
			d->head = k->next;
			if (!d->head)
				d->tail = NULL;
			free(k);
		}
	}
	if (!d->head && d->eof_release >= 0 && !d->shut) {
		if (d->eof_release > now) {
			wake = d->eof_release;
		} else {
			shutdown(fd, SHUT_WR);
			d->shut = true;
		}
	}
out:
	if (c->d[0].shut && c->d[1].shut) {
		r->closed++;
		conn_close(r, c, false);
		return;
	}
	if (wake < 0)
		disarm(r, &d->timer);
	else if (arm(r, &d->timer, wake))
		goto fail;
	if (!update_interest(r, c))
		return;
fail:
	conn_fail(r, c);
}

/* Read from side i into direction i's queue, stamping each chunk's release time. */
static void pump_in(struct relay *r, struct conn *c, int i)
{
	struct dir *d = &c->d[i];
	int64_t now = now_ms(), rel;
	int reads;

	for (reads = 0;
	     reads < READS_PER_EV && d->eof_release < 0 && d->queued < (size_t)r->p.buf_bytes;
	     reads++) {
		size_t room = (size_t)r->p.buf_bytes - d->queued;
		ssize_t n = recv(c->s[i].h.fd, rbuf, room < READ_MAX ? room : READ_MAX, 0);
		struct chunk *k;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_fail(r, c);
			return;
		}
		rel = nm_release_ms(d->last_release, now, r->p.delay_ms,
		                    nm_rng_range(&r->rng, -r->p.jitter_ms, r->p.jitter_ms));
		d->last_release = rel;
		if (n == 0) {
			d->eof_release = rel; /* the FIN is delayed like data */
			break;
		}
		k = malloc(sizeof(*k) + (size_t)n);
		if (!k) {
			conn_fail(r, c);
			return;
		}
		memcpy(k->data, rbuf, (size_t)n);
		k->len = (size_t)n;
		k->off = 0;
		k->release = rel;
		k->next = NULL;
		if (d->tail)
			d->tail->next = k;
		else
			d->head = k;
		d->tail = k;
		d->queued += (size_t)n;
	}
	flush(r, c, i);
}

static void on_side(struct relay *r, struct side *s, uint32_t ev)
{
	struct conn *c = s->c;
	int j = s == &c->s[0] ? 0 : 1, err = 0;
	socklen_t len = sizeof(err);

	if (c->dead)
		return;
	if (j == 1 && c->connecting) {
		if (getsockopt(s->h.fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
			r->failed++;
			conn_close(r, c, true);
			return;
		}
		c->connecting = false;
		disarm(r, &c->connect_to);
		flush(r, c, 0);
		flush(r, c, 1);
		return;
	}
	/* ERR/HUP: the next recv or send reports what happened */
	if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
		c->d[1 - j].blocked = false;
		flush(r, c, 1 - j);
	}
	if (!c->dead && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		pump_in(r, c, j);
}

static void dir_fire(struct relay *r, struct rtimer *t)
{
	struct dir *d = container_of(t, struct dir, timer);

	flush(r, d->c, d->i);
}

static void cut_fire(struct relay *r, struct rtimer *t)
{
	r->cut++;
	conn_close(r, container_of(t, struct conn, cut), true);
}

static void connect_to_fire(struct relay *r, struct rtimer *t)
{
	r->failed++;
	conn_close(r, container_of(t, struct conn, connect_to), true);
}

static int arm_cut(struct relay *r, struct conn *c, int64_t now)
{
	if (r->p.cut_max_ms <= 0) {
		disarm(r, &c->cut);
		return 0;
	}
	return arm(r, &c->cut, now + nm_rng_range(&r->rng, r->p.cut_min_ms, r->p.cut_max_ms));
}

static void conn_new(struct relay *r, int cfd)
{
	struct conn *c = calloc(1, sizeof(*c));
	int64_t now = now_ms();
	int one = 1, j;

	if (!c) {
		close(cfd);
		return;
	}
	r->accepted++;
	r->open++;
	c->next = r->conns;
	if (r->conns)
		r->conns->prev = c;
	r->conns = c;
	for (j = 0; j < 2; j++) {
		struct dir *d = &c->d[j];

		c->s[j].h.kind = K_SIDE;
		c->s[j].c = c;
		d->c = c;
		d->i = j;
		d->eof_release = -1;
		nm_rate_init(&d->rate, r->p.burst_bytes, now);
		nm_timer_init(&d->timer.t);
		d->timer.fire = dir_fire;
	}
	nm_timer_init(&c->cut.t);
	c->cut.fire = cut_fire;
	nm_timer_init(&c->connect_to.t);
	c->connect_to.fire = connect_to_fire;
	c->s[0].h.fd = cfd;
	/* the relay paces the bytes itself; Nagle would add its own delay */
	setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->s[1].h.fd = socket(r->up.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->s[1].h.fd < 0)
		goto fail;
	setsockopt(c->s[1].h.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->s[1].h.fd, (struct sockaddr *)&r->up, r->uplen)) {
		if (errno != EINPROGRESS)
			goto fail;
		c->connecting = true;
		if (arm(r, &c->connect_to, now + r->p.connect_timeout_ms))
			goto fail;
	}
	if (arm_cut(r, c, now) || update_interest(r, c))
		goto fail;
	update_listener(r);
	return;
fail:
	r->failed++;
	conn_close(r, c, true);
}

static void pause_fire(struct relay *r, struct rtimer *t)
{
	r->accept_paused = false;
	update_listener(r);
}

/* Out of fds or memory: stop accepting for a moment rather than spin on a ready listener. */
static void pause_accepting(struct relay *r)
{
	r->accept_paused = !arm(r, &r->pause_t, now_ms() + PAUSE_MS);
	update_listener(r);
}

static void on_accept(struct relay *r)
{
	int k, fd;

	for (k = 0; k < ACCEPT_BATCH && r->lis.mask; k++) {
		fd = accept4(r->lis.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			conn_new(r, fd);
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			break;
		} else if (errno != EINTR && errno != ECONNABORTED) {
			pause_accepting(r);
			break;
		}
	}
}

/* Re-evaluate the stall state (periodic and one-shot) and arm the next change. */
static void stall_update(struct relay *r)
{
	int64_t now = now_ms(), next;
	bool was = r->stalled;
	struct conn *c, *n;

	r->stalled = nm_stall_at(r->p.stall_every_ms, r->p.stall_ms, r->stall_epoch, now, &next);
	if (now < r->oneshot_until) {
		r->stalled = true;
		if (r->oneshot_until < next)
			next = r->oneshot_until;
	}
	if (next == INT64_MAX)
		disarm(r, &r->stall_t);
	else if (arm(r, &r->stall_t, next))
		fprintf(stderr, "lg-relay: out of memory arming the stall timer\n");
	if (was == r->stalled)
		return;
	for (c = r->conns; c; c = n) {
		n = c->next;
		flush(r, c, 0);
		flush(r, c, 1);
	}
	update_listener(r);
}

static void stall_fire(struct relay *r, struct rtimer *t)
{
	stall_update(r);
}

/* After `set`: new cut lifetimes count from now; a new stall period starts now. */
static void params_changed(struct relay *r, const struct nm_params *old)
{
	int64_t now = now_ms();
	struct conn *c, *n;

	if (old->stall_every_ms != r->p.stall_every_ms || old->stall_ms != r->p.stall_ms)
		r->stall_epoch = now;
	for (c = r->conns; c; c = n) {
		n = c->next;
		if ((old->cut_min_ms != r->p.cut_min_ms || old->cut_max_ms != r->p.cut_max_ms) &&
		    arm_cut(r, c, now)) {
			conn_fail(r, c);
			continue;
		}
		flush(r, c, 0); /* a new rate or cap may let bytes move sooner */
		flush(r, c, 1);
	}
	stall_update(r);
	update_listener(r);
}

static void ctl_stats(struct relay *r, struct nm_ctl *k)
{
	char params[1024], name[256];

	nm_params_json(&r->p, params, sizeof(params));
	nm_json_str(name, sizeof(name), r->name);
	nm_ctl_printf(k,
	              "{\"name\":%s,\"params\":%s,\"stalled\":%s,\"accepted\":%llu,\"open\":%llu,"
	              "\"cut\":%llu,\"failed\":%llu,\"reset\":%llu,\"closed\":%llu,"
	              "\"bytes_up\":%llu,\"bytes_down\":%llu}\n",
	              name, params, r->stalled ? "true" : "false", (unsigned long long)r->accepted,
	              (unsigned long long)r->open, (unsigned long long)r->cut,
	              (unsigned long long)r->failed, (unsigned long long)r->reset,
	              (unsigned long long)r->closed, (unsigned long long)r->bytes[0],
	              (unsigned long long)r->bytes[1]);
}

/* One control line (an nm_ctl_handler); every answer is one JSON line. */
static void ctl_command(void *arg_relay, struct nm_ctl *k, char *line)
{
	struct relay *r = arg_relay;
	char err[256], js[1024], *cmd, *arg;
	struct nm_params old = r->p;
	struct conn *c, *n;
	uint64_t count = 0;
	int64_t ms;

	cmd = line + strspn(line, " \t");
	if (!*cmd)
		return; /* blank lines are allowed, and answered by nothing */
	arg = cmd + strcspn(cmd, " \t");
	if (*arg)
		*arg++ = '\0';
	arg += strspn(arg, " \t");
	if (!strcmp(cmd, "set")) {
		if (nm_params_apply(&r->p, arg, err, sizeof(err))) {
			nm_ctl_error(k, err);
			return;
		}
		params_changed(r, &old);
		nm_params_json(&r->p, js, sizeof(js));
		nm_ctl_printf(k, "{\"ok\":true,\"params\":%s}\n", js);
	} else if (!strcmp(cmd, "stall")) {
		if (nm_parse_i64(arg, 0, 24 * 3600 * 1000LL, &ms)) {
			nm_ctl_error(k, "stall takes one argument: milliseconds (0 ends it)");
			return;
		}
		r->oneshot_until = now_ms() + ms;
		stall_update(r);
		nm_ctl_printf(k, "{\"ok\":true,\"stall_ms\":%lld}\n", (long long)ms);
	} else if (*arg) {
		snprintf(err, sizeof(err), "%.32s takes no arguments", cmd);
		nm_ctl_error(k, err);
	} else if (!strcmp(cmd, "get")) {
		nm_params_json(&r->p, js, sizeof(js));
		nm_ctl_printf(k, "%s\n", js);
	} else if (!strcmp(cmd, "stats")) {
		ctl_stats(r, k);
	} else if (!strcmp(cmd, "cut-all")) {
		for (c = r->conns; c; c = n, count++) {
			n = c->next;
			r->cut++;
			conn_close(r, c, true);
		}
		nm_ctl_printf(k, "{\"ok\":true,\"cut\":%llu}\n", (unsigned long long)count);
	} else {
		snprintf(err, sizeof(err),
		         "unknown command '%.32s' (commands: set, get, stats, cut-all, stall)",
		         cmd);
		nm_ctl_error(k, err);
	}
}

static void ctl_close(struct relay *r, struct ctl *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		r->ctls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	r->nctl--;
	nm_ctl_free(c->k); /* closes the fd, which also leaves the epoll set */
	free(c);
}

static void ctl_event(struct relay *r, struct ctl *c)
{
	enum nm_ctl_want w = nm_ctl_service(c->k, ctl_command, r);

	if (w == NM_CTL_DONE || set_mask(r, &c->h, w == NM_CTL_READ ? EPOLLIN : EPOLLOUT))
		ctl_close(r, c);
}

static void on_ctl_accept(struct relay *r)
{
	int fd = accept4(r->ctl_lis.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct ctl *c;

	if (fd < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		    errno != ECONNABORTED)
			pause_accepting(r);
		return;
	}
	c = r->nctl < CTL_MAX ? calloc(1, sizeof(*c)) : NULL;
	if (c && !(c->k = nm_ctl_new(fd))) {
		free(c);
		c = NULL;
	}
	if (!c) {
		close(fd);
		return;
	}
	c->h.kind = K_CTL;
	c->h.fd = fd;
	c->next = r->ctls;
	if (r->ctls)
		r->ctls->prev = c;
	r->ctls = c;
	r->nctl++;
	if (set_mask(r, &c->h, EPOLLIN))
		ctl_close(r, c);
}

static void run_timers(struct relay *r)
{
	int64_t now = now_ms();
	struct nm_timer *t;

	/* a timer re-armed by its own fire lies after a fresh now_ms(), so this ends */
	while ((t = nm_heap_top(&r->heap)) && t->when <= now) {
		nm_heap_disarm(&r->heap, t);
		((struct rtimer *)t)->fire(r, (struct rtimer *)t);
	}
}

static void loop(struct relay *r)
{
	struct epoll_event evs[EVENTS];
	struct nm_timer *t;
	struct conn *c;
	int i, n, timeout;

	while (!r->quit) {
		timeout = -1;
		if ((t = nm_heap_top(&r->heap))) {
			int64_t d = t->when - now_ms();

			timeout = d <= 0 ? 0 : d > INT_MAX ? INT_MAX : (int)d;
		}
		n = epoll_wait(r->ep, evs, EVENTS, timeout);
		if (n < 0 && errno != EINTR) {
			perror("lg-relay: epoll_wait");
			r->status = 1;
			return;
		}
		for (i = 0; i < n; i++) {
			struct handle *h = evs[i].data.ptr;

			switch (h->kind) {
			case K_LISTEN:
				on_accept(r);
				break;
			case K_CTL_LISTEN:
				on_ctl_accept(r);
				break;
			case K_CTL:
				ctl_event(r, (struct ctl *)h);
				break;
			case K_SIDE:
				on_side(r, (struct side *)h, evs[i].events);
				break;
			case K_SIGNAL:
				r->quit = true;
				break;
			}
		}
		run_timers(r);
		while ((c = r->graveyard)) {
			r->graveyard = c->next;
			free(c);
		}
	}
}

/* ---- start-up ---------------------------------------------------------- */

__attribute__((noreturn, format(printf, 1, 2))) static void die_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("lg-relay: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\ntry 'lg-relay --help'\n", stderr);
	exit(2);
}

/* A listening socket on spec into h; returns the bound port, or -1 (message printed). */
static int listen_on(struct relay *r, const char *spec, bool loopback_only, struct handle *h)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int port;

	if (nm_addr_resolve(spec, true, &ss, &len))
		die_usage("cannot parse or resolve '%s' (want HOST:PORT)", spec);
	if (loopback_only && !nm_addr_is_loopback(&ss))
		die_usage("the control port must be on loopback, not '%s'", spec);
	h->fd = nm_addr_listen(&ss, len, &port);
	if (h->fd < 0 || set_mask(r, h, EPOLLIN)) {
		fprintf(stderr, "lg-relay: listen on %s: %s\n", spec, strerror(errno));
		return -1;
	}
	return port;
}

int main(int argc, char **argv)
{
	static struct relay relay;
	struct relay *r = &relay;
	struct nm_cli o;
	char err[256], js[3][512];
	struct rlimit rl;
	struct conn *c;
	sigset_t sigs;
	int lport, cport = -1;

	switch (nm_cli_parse(&o, argc, argv, err, sizeof(err))) {
	case 1:
		nm_cli_usage(stdout);
		return 0;
	case -1:
		die_usage("%s", err);
	}
	r->p = o.p;
	r->name = o.name;
	if (nm_addr_resolve(o.upstream, false, &r->up, &r->uplen))
		die_usage("cannot parse or resolve --upstream '%s' (want HOST:PORT)", o.upstream);
	if (o.seed < 0)
		o.seed = (int64_t)(((uint64_t)time(NULL) * 2654435761u) ^ (uint64_t)getpid()) &
		         INT64_MAX;
	nm_rng_seed(&r->rng, (uint64_t)o.seed);

	/* thousands of connections need two fds each */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	r->ep = epoll_create1(EPOLL_CLOEXEC);
	r->sig = (struct handle){K_SIGNAL, signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC), 0};
	r->lis = (struct handle){K_LISTEN, -1, 0};
	r->ctl_lis = (struct handle){K_CTL_LISTEN, -1, 0};
	if (r->ep < 0 || r->sig.fd < 0 || set_mask(r, &r->sig, EPOLLIN)) {
		perror("lg-relay: epoll/signalfd");
		return 1;
	}
	lport = listen_on(r, o.listen, false, &r->lis);
	if (lport < 0 ||
	    (strcmp(o.control, "off") && (cport = listen_on(r, o.control, true, &r->ctl_lis)) < 0))
		return 1;
	nm_timer_init(&r->stall_t.t);
	r->stall_t.fire = stall_fire;
	nm_timer_init(&r->pause_t.t);
	r->pause_t.fire = pause_fire;
	r->stall_epoch = now_ms();
	stall_update(r);

	nm_json_str(js[0], sizeof(js[0]), o.listen);
	nm_json_str(js[1], sizeof(js[1]), o.upstream);
	nm_json_str(js[2], sizeof(js[2]), r->name);
	snprintf(err, sizeof(err), "%d", cport);
	printf("{\"listen\":%s,\"listen_port\":%d,\"control_port\":%s,\"upstream\":%s,"
	       "\"seed\":%lld,\"pid\":%d,\"name\":%s}\n",
	       js[0], lport, cport < 0 ? "null" : err, js[1], (long long)o.seed, (int)getpid(),
	       js[2]);
	fflush(stdout);

	loop(r);

	while ((c = r->conns)) {
		conn_close(r, c, false);
		r->graveyard = c->next;
		free(c);
	}
	while (r->ctls)
		ctl_close(r, r->ctls);
	nm_heap_free(&r->heap);
	close(r->lis.fd);
	if (r->ctl_lis.fd >= 0)
		close(r->ctl_lis.fd);
	close(r->sig.fd);
	close(r->ep);
	return r->status;
}
