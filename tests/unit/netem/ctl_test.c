/*
 * nm_ctl over a real socketpair: lines (LF, CRLF, blanks, several per read,
 * split across reads), answers, a slow reader (no more lines handled until it
 * reads), the over-long line, EOF, and a handler that modifies its line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netem/ctl.h"

struct seen {
	int n;
	char last[NM_CTL_LINE_MAX];
};

/* Answers "<n>:<line>" and records the line. */
static void handler(void *arg, struct nm_ctl *k, char *line)
{
	struct seen *s = arg;

	s->n++;
	strcpy(s->last, line);
	line[0] = 'X'; /* handlers may scribble on their line */
	nm_ctl_printf(k, "%d:%s\n", s->n, s->last);
}

static void pair(int sv[2])
{
	int buf = 4096;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	/* small buffers so the slow-reader case is reachable quickly */
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
}

static void put(int fd, const char *s)
{
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* Everything the peer can read now (non-blocking). */
static size_t drain(int fd, char *buf, size_t cap)
{
	size_t got = 0;
	ssize_t n;

	while (got < cap - 1 && (n = recv(fd, buf + got, cap - 1 - got, MSG_DONTWAIT)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	return got;
}

static void test_lines(void **state)
{
	int sv[2];
	struct nm_ctl *k;
	struct seen s = {0};
	char buf[256];

	(void)state;
	pair(sv);
	k = nm_ctl_new(sv[0]);
	assert_non_null(k);
	assert_int_equal(nm_ctl_fd(k), sv[0]);
	assert_int_equal(nm_ctl_service(k, handler, &s), NM_CTL_READ);
	put(sv[1], "get\nset a=1 \r\n\n  \r\nsta");
	assert_int_equal(nm_ctl_service(k, handler, &s), NM_CTL_READ);
	drain(sv[1], buf, sizeof(buf));
	/* blank lines reach the handler as "" (the relay ignores them) */
	assert_string_equal(buf, "1:get\n2:set a=1\n3:\n4:\n");
	put(sv[1], "ts\n");
	assert_int_equal(nm_ctl_service(k, handler, &s), NM_CTL_READ);
	drain(sv[1], buf, sizeof(buf));
	assert_string_equal(buf, "5:stats\n");
	nm_ctl_error(k, "bad \"x\"");
	assert_int_equal(nm_ctl_service(k, handler, &s), NM_CTL_READ);
	drain(sv[1], buf, sizeof(buf));
	assert_string_equal(buf, "{\"error\":\"bad \\\"x\\\"\"}\n");
	/* EOF from the client ends it */
	shutdown(sv[1], SHUT_WR);
	assert_int_equal(nm_ctl_service(k, handler, &s), NM_CTL_DONE);
	nm_ctl_free(k);
	close(sv[1]);
}

static void test_too_long(void **state)
{
	int sv[2];
	struct nm_ctl *k;
	struct seen s = {0};
	char line[NM_CTL_LINE_MAX + 10], buf[256];

	(void)state;
	pair(sv);
	k = nm_ctl_new(sv[0]);
	memset(line, 'x', sizeof(line));
	/* exactly the limit minus the newline is fine */
	line[NM_CTL_LINE_MAX - 1] = '\n';
	assert_int_equal(write(sv[1], line, NM_CTL_LINE_MAX), NM_CTL_LINE_MAX);
	while (s.n == 0)
		assert_int_equal(nm_ctl_service(k, handler, &s), NM_CTL_READ);
	assert_int_equal(strlen(s.last), NM_CTL_LINE_MAX - 1);
	drain(sv[1], buf, sizeof(buf)); /* part of the long echo; the rest is dropped below */
	while (recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
	/* one byte more and no newline: error, then done */
	line[NM_CTL_LINE_MAX - 1] = 'x';
	assert_int_equal(write(sv[1], line, NM_CTL_LINE_MAX), NM_CTL_LINE_MAX);
	assert_int_equal(nm_ctl_service(k, handler, &s), NM_CTL_DONE);
	drain(sv[1], buf, sizeof(buf));
	assert_string_equal(buf, "{\"error\":\"line too long\"}\n");
	assert_int_equal(s.n, 1);
	nm_ctl_free(k);
	close(sv[1]);
}

/* Write as much of cmds[*off..len) as the socket takes now. */
static void feed(int fd, const char *cmds, size_t len, size_t *off)
{
	ssize_t n;

	while (*off < len && (n = send(fd, cmds + *off, len - *off, MSG_DONTWAIT)) > 0)
		*off += (size_t)n;
}

/*
 * A client that sends many commands and reads nothing: the connection asks
 * for WRITE, handles no more lines until the client reads, and loses nothing.
 */
static void test_slow_reader(void **state)
{
	static const char cmd[] = "a-fairly-long-command-to-fill-the-buffers\n";
	static char cmds[600 * sizeof(cmd)], buf[1 << 20];
	int sv[2], i, n = 600, rounds, stuck;
	size_t len = 0, off = 0, got = 0, total;
	struct nm_ctl *k;
	struct seen s = {0};
	char want[64];
	enum nm_ctl_want w;

	(void)state;
	pair(sv);
	k = nm_ctl_new(sv[0]);
	for (i = 0; i < n; i++, len += sizeof(cmd) - 1)
		memcpy(cmds + len, cmd, sizeof(cmd) - 1);
	/* nobody reads: it must come to a stop, asking for WRITE */
	for (rounds = 0; rounds < 1000; rounds++) {
		feed(sv[1], cmds, len, &off);
		if (nm_ctl_service(k, handler, &s) == NM_CTL_WRITE && off < len)
			break;
	}
	assert_true(s.n < n);
	stuck = s.n;
	for (i = 0; i < 10; i++)
		assert_int_equal(nm_ctl_service(k, handler, &s), NM_CTL_WRITE);
	assert_int_equal(s.n, stuck);
	/* now read: everything gets handled and sent (READ: nothing left to send) */
	for (rounds = 0, w = NM_CTL_WRITE; rounds < 100000 && !(s.n == n && w == NM_CTL_READ);
	     rounds++) {
		got += drain(sv[1], buf + got, sizeof(buf) - got);
		feed(sv[1], cmds, len, &off);
		w = nm_ctl_service(k, handler, &s);
	}
	got += drain(sv[1], buf + got, sizeof(buf) - got);
	assert_int_equal(s.n, n);
	/* every answer arrived, in order, and nothing else */
	for (i = 1, total = 0; i <= n; i++) {
		size_t wl = (size_t)snprintf(want, sizeof(want), "%d:%s", i, cmd);

		assert_true(total + wl <= got);
		assert_memory_equal(buf + total, want, wl);
		total += wl;
	}
	assert_int_equal(total, got);
	nm_ctl_free(k);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lines),
	    cmocka_unit_test(test_too_long),
	    cmocka_unit_test(test_slow_reader),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
