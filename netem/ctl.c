/*
 * nm_ctl: line-based control connections (see ctl.h).
 *
 * A line is handled only while NM_CTL_ANSWER_MAX bytes of the output buffer
 * are free, so answers never get truncated; the rest of the input waits until
 * the client has read enough. Each service call does at most ROUNDS reads, so
 * one chatty client cannot hold the relay's loop.
 *
 * Threads: the owner's thread only.
 */
#include "netem/ctl.h"

#include "netem/params.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define OUT_MAX (16 * NM_CTL_ANSWER_MAX)
#define ROUNDS  16

struct nm_ctl {
	int fd;
	size_t inlen, outlen;
	char in[NM_CTL_LINE_MAX];
	char out[OUT_MAX];
};

struct nm_ctl *nm_ctl_new(int fd)
{
	struct nm_ctl *k = malloc(sizeof(*k));

	if (k) {
		k->fd = fd;
		k->inlen = k->outlen = 0;
	}
	return k;
}

void nm_ctl_free(struct nm_ctl *k)
{
	if (!k)
		return;
	close(k->fd);
	free(k);
}

int nm_ctl_fd(const struct nm_ctl *k)
{
	return k->fd;
}

void nm_ctl_printf(struct nm_ctl *k, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(k->out + k->outlen, sizeof(k->out) - k->outlen, fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < sizeof(k->out) - k->outlen)
		k->outlen += (size_t)n;
}

void nm_ctl_error(struct nm_ctl *k, const char *msg)
{
	char js[NM_CTL_ANSWER_MAX / 2];

	nm_json_str(js, sizeof(js), msg);
	nm_ctl_printf(k, "{\"error\":%s}\n", js);
}

static void handle_lines(struct nm_ctl *k, nm_ctl_handler fn, void *arg)
{
	char *nl, *end;
	size_t used;

	while (sizeof(k->out) - k->outlen >= NM_CTL_ANSWER_MAX &&
	       (nl = memchr(k->in, '\n', k->inlen))) {
		for (end = nl;
		     end > k->in && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r');)
			end--;
		*end = '\0';
		fn(arg, k, k->in);
		used = (size_t)(nl + 1 - k->in);
		memmove(k->in, nl + 1, k->inlen - used);
		k->inlen -= used;
	}
}

/* 0, or -1 when the peer is gone. */
static int send_out(struct nm_ctl *k)
{
	while (k->outlen) {
		ssize_t n = send(k->fd, k->out, k->outlen, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		memmove(k->out, k->out + n, k->outlen - (size_t)n);
		k->outlen -= (size_t)n;
	}
	return 0;
}

enum nm_ctl_want nm_ctl_service(struct nm_ctl *k, nm_ctl_handler fn, void *arg)
{
	int rounds;
	ssize_t n;

	for (rounds = 0; rounds < ROUNDS; rounds++) {
		handle_lines(k, fn, arg);
		if (send_out(k))
			return NM_CTL_DONE;
		if (k->outlen)
			return NM_CTL_WRITE; /* a slow reader: read nothing more until it catches up
			                      */
		if (memchr(k->in, '\n', k->inlen))
			continue;
		if (k->inlen == sizeof(k->in)) {
			nm_ctl_error(k, "line too long");
			send_out(k);
			return NM_CTL_DONE;
		}
		n = recv(k->fd, k->in + k->inlen, sizeof(k->in) - k->inlen, 0);
		if (n > 0)
			k->inlen += (size_t)n;
		else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return NM_CTL_READ;
		else if (n == 0 || errno != EINTR)
			return NM_CTL_DONE;
	}
	/* out of rounds with work left: come back when writable, i.e. at once */
	return k->outlen || memchr(k->in, '\n', k->inlen) ? NM_CTL_WRITE : NM_CTL_READ;
}
