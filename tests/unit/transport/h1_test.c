/*
 * Tests for transport/h1.c's pure parts: tp_h1_parse accepts exactly the
 * short-poll shape it can answer (and says so as early as the bytes allow),
 * sends everything else to lws, asks for more bytes only while a short-poll
 * is still possible; tp_h1_query_get reads raw query strings as tp_query
 * does.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "transport/internal.h"

#include <stdio.h>
#include <string.h>

static int parse(const char *s, struct tp_h1_req *r)
{
	return tp_h1_parse(s, strlen(s), r);
}

static void accepts_short_polls(void **state)
{
	struct tp_h1_req r;
	const char *req = "GET /v1/rooms/r-1_x/poll?since=abc-12&client=c1 HTTP/1.1\r\n"
			  "Host: x\r\nAccept-Encoding:  gzip, br \r\nUser-Agent: t\r\n\r\n"
			  "GET /next";
	(void)state;

	assert_int_equal(parse(req, &r), TP_H1_OURS);
	assert_int_equal(r.room_len, 5);
	assert_memory_equal(r.room, "r-1_x", 5);
	assert_int_equal(r.query_len, strlen("since=abc-12&client=c1"));
	assert_memory_equal(r.query, "since=abc-12&client=c1", r.query_len);
	assert_int_equal(r.ae_len, strlen("gzip, br"));
	assert_memory_equal(r.accept_encoding, "gzip, br", r.ae_len);
	/* The request ends at its blank line; what follows is the next one. */
	assert_int_equal(r.len, strlen(req) - strlen("GET /next"));
	assert_false(r.http10);
	assert_true(r.keep_alive);

	/* No query, no header lines at all. */
	assert_int_equal(parse("GET /v1/rooms/a/poll HTTP/1.1\r\n\r\n", &r), TP_H1_OURS);
	assert_null(r.query);
	assert_null(r.accept_encoding);
	assert_int_equal(r.len, strlen("GET /v1/rooms/a/poll HTTP/1.1\r\n\r\n"));
	/* wait=0 is a short-poll; a malformed wait is ours to refuse (poll.c says 400). */
	assert_int_equal(parse("GET /v1/rooms/a/poll?wait=0 HTTP/1.1\r\n\r\n", &r), TP_H1_OURS);
	assert_int_equal(parse("GET /v1/rooms/a/poll?wait=x HTTP/1.1\r\n\r\n", &r), TP_H1_OURS);
	assert_int_equal(parse("GET /v1/rooms/a/poll?wait= HTTP/1.1\r\n\r\n", &r), TP_H1_OURS);
}

static void keep_alive_rules(void **state)
{
	struct tp_h1_req r;
	(void)state;

	assert_int_equal(parse("GET /v1/rooms/a/poll HTTP/1.0\r\n\r\n", &r), TP_H1_OURS);
	assert_true(r.http10);
	assert_false(r.keep_alive);
	assert_int_equal(parse("GET /v1/rooms/a/poll HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r),
			 TP_H1_OURS);
	assert_true(r.keep_alive);
	assert_int_equal(parse("GET /v1/rooms/a/poll HTTP/1.1\r\nconnection: foo, close\r\n\r\n", &r),
			 TP_H1_OURS);
	assert_false(r.keep_alive);
}

static void everything_else_goes_to_lws(void **state)
{
	static const char *const lws[] = {
		/* other methods and paths, decided from their first bytes */
		"POST /v1/rooms/a/danmaku HTTP/1.1\r\n",
		"P",
		"GET /healthz HTTP/1.1\r\n\r\n",
		"GET /v1/rooms/a/ws HTTP/1.1\r\n",
		"GET /v1/rooms/a/polls HTTP/1.1\r\n\r\n",
		"GET /v1/rooms/a/poll/ HTTP/1.1\r\n\r\n",
		"GET /v1/rooms//poll HTTP/1.1\r\n\r\n",
		"GET /v1/rooms/a.b/poll HTTP/1.1\r\n\r\n",
		"HEAD /v1/rooms/a/poll HTTP/1.1\r\n\r\n",
		"get /v1/rooms/a/poll HTTP/1.1\r\n\r\n",
		/* long-polls */
		"GET /v1/rooms/a/poll?wait=5 HTTP/1.1\r\n\r\n",
		"GET /v1/rooms/a/poll?since=x&wait=05 HTTP/1.1\r\n\r\n",
		/* what would need decoding or is not HTTP/1.x */
		"GET /v1/rooms/a/poll?since=a%2Db HTTP/1.1\r\n\r\n",
		"GET /v1/rooms/a/poll?client=a+b HTTP/1.1\r\n\r\n",
		"GET /v1/rooms/a/poll HTTP/2.0\r\n\r\n",
		"GET /v1/rooms/a/poll  HTTP/1.1\r\n\r\n",
		"GET /v1/rooms/a/poll HTTP/1.1\n\n",
		/* headers: upgrades, bodies, folding, malformed lines, duplicates */
		"GET /v1/rooms/a/poll HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
		"GET /v1/rooms/a/poll HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\n\r\n",
		"GET /v1/rooms/a/poll HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
		"GET /v1/rooms/a/poll HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET /v1/rooms/a/poll HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
		"GET /v1/rooms/a/poll HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
		"GET /v1/rooms/a/poll HTTP/1.1\r\nno colon\r\n\r\n",
		"GET /v1/rooms/a/poll HTTP/1.1\r\nHost : x\r\n\r\n",
		"GET /v1/rooms/a/poll HTTP/1.1\r\nHost: x\n\r\n",
		"GET /v1/rooms/a/poll HTTP/1.1\r\nAccept-Encoding: gzip\r\nAccept-Encoding: br\r\n\r\n",
	};
	struct tp_h1_req r;
	(void)state;

	for (size_t i = 0; i < sizeof(lws) / sizeof(lws[0]); i++) {
		int rc = parse(lws[i], &r);

		if (rc != TP_H1_LWS)
			fail_msg("request %zu (%s) gave %d, not TP_H1_LWS", i, lws[i], rc);
	}
	/* Content-Length: 0 (however written) is no body. */
	assert_int_equal(parse("GET /v1/rooms/a/poll HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r),
			 TP_H1_OURS);
	assert_int_equal(parse("GET /v1/rooms/a/poll HTTP/1.1\r\nContent-Length: 00\r\n\r\n", &r),
			 TP_H1_OURS);
	assert_int_equal(parse("GET /v1/rooms/a/poll HTTP/1.1\r\nContent-Length:\r\n\r\n", &r),
			 TP_H1_LWS);
}

static void more_bytes_only_while_a_poll_is_possible(void **state)
{
	static const char full[] = "GET /v1/rooms/a/poll?since=x HTTP/1.1\r\nHost: x\r\n\r\n";
	struct tp_h1_req r;
	char big[TP_H1_MAX + 64];
	size_t n;
	(void)state;

	/* Every proper prefix of a short-poll asks for more; the whole one is ours. */
	for (size_t len = 1; len < sizeof(full) - 1; len++)
		if (tp_h1_parse(full, len, &r) != TP_H1_MORE)
			fail_msg("prefix of %zu bytes: not TP_H1_MORE", len);
	assert_int_equal(tp_h1_parse(full, sizeof(full) - 1, &r), TP_H1_OURS);

	/* A head that never ends within TP_H1_MAX goes to lws (its limits apply). */
	n = (size_t)snprintf(big, sizeof(big), "GET /v1/rooms/a/poll HTTP/1.1\r\nX: ");
	memset(big + n, 'a', sizeof(big) - n);
	assert_int_equal(tp_h1_parse(big, TP_H1_MAX - 1, &r), TP_H1_MORE);
	assert_int_equal(tp_h1_parse(big, TP_H1_MAX, &r), TP_H1_LWS);
	/* So does a request line that long. */
	n = (size_t)snprintf(big, sizeof(big), "GET /v1/rooms/a/poll?since=");
	memset(big + n, 'a', sizeof(big) - n);
	assert_int_equal(tp_h1_parse(big, TP_H1_MAX, &r), TP_H1_LWS);
}

static void query_get(void **state)
{
	static const char q[] = "since=abc&client=&wait&n=1&sincex=2";
	char buf[8];
	size_t ql = strlen(q);
	(void)state;

	assert_int_equal(tp_h1_query_get(q, ql, "since", buf, sizeof(buf)), 1);
	assert_string_equal(buf, "abc");
	assert_int_equal(tp_h1_query_get(q, ql, "client", buf, sizeof(buf)), 1);
	assert_string_equal(buf, "");
	assert_int_equal(tp_h1_query_get(q, ql, "wait", buf, sizeof(buf)), 1); /* no '=' */
	assert_string_equal(buf, "");
	assert_int_equal(tp_h1_query_get(q, ql, "n", buf, sizeof(buf)), 1);
	assert_string_equal(buf, "1");
	assert_int_equal(tp_h1_query_get(q, ql, "sinc", buf, sizeof(buf)), 0);
	assert_int_equal(tp_h1_query_get(q, ql, "absent", buf, sizeof(buf)), 0);
	assert_int_equal(tp_h1_query_get("since=abcdefgh", 14, "since", buf, sizeof(buf)), -1);
	assert_int_equal(tp_h1_query_get("since=abcdefg", 13, "since", buf, sizeof(buf)), 1);
	assert_int_equal(tp_h1_query_get("", 0, "since", buf, sizeof(buf)), 0);
	/* The first of two wins, as with lws's fragments. */
	assert_int_equal(tp_h1_query_get("a=1&a=2", 7, "a", buf, sizeof(buf)), 1);
	assert_string_equal(buf, "1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accepts_short_polls),
		cmocka_unit_test(keep_alive_rules),
		cmocka_unit_test(everything_else_goes_to_lws),
		cmocka_unit_test(more_bytes_only_while_a_poll_is_possible),
		cmocka_unit_test(query_get),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
