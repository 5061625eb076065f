/*
 * Tests for transport/client_proto.c, the client library's pure parts: the
 * gateway URL, request paths, advice and batch parsing, exactly-once
 * accounting, the seeded backoff schedule and the latency histogram.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "transport/client_proto.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static void test_url_parse(void **state)
{
	struct tp_client_url u;
	char err[128];

	assert_int_equal(tp_client_url_parse("http://127.0.0.1:8080", &u, err, sizeof(err)), 0);
	assert_int_equal(u.tls, 0);
	assert_string_equal(u.host, "127.0.0.1");
	assert_int_equal(u.port, 8080);
	assert_string_equal(u.hostport, "127.0.0.1:8080");

	assert_int_equal(tp_client_url_parse("https://example.org/", &u, err, sizeof(err)), 0);
	assert_int_equal(u.tls, 1);
	assert_int_equal(u.port, 443);
	assert_string_equal(u.host, "example.org");

	assert_int_equal(tp_client_url_parse("ws://h", &u, err, sizeof(err)), 0);
	assert_int_equal(u.tls, 0);
	assert_int_equal(u.port, 80);
	assert_int_equal(tp_client_url_parse("WSS://h:9", &u, err, sizeof(err)), 0);
	assert_int_equal(u.tls, 1);
	assert_int_equal(u.port, 9);

	assert_int_equal(tp_client_url_parse("http://[::1]:9000", &u, err, sizeof(err)), 0);
	assert_string_equal(u.host, "::1");
	assert_string_equal(u.hostport, "[::1]:9000");

	static const char *const bad[] = {
	    NULL,
	    "",
	    "ftp://h",
	    "http://",
	    "http://:80",
	    "http://h:0",
	    "http://h:65536",
	    "http://h:",
	    "http://h:8x",
	    "http://h:80/v1",
	    "http://h?x=1",
	    "http://u@h",
	    "http://[::1",
	    "http://ho st",
	    "127.0.0.1:8080",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (tp_client_url_parse(bad[i], &u, err, sizeof(err)) != -1)
			fail_msg("accepted bad URL '%s'", bad[i] ? bad[i] : "(null)");
		assert_true(err[0] != '\0');
	}
}

static void test_valid_name(void **state)
{
	char s[80];

	assert_true(tp_client_valid_name("a-_Z9"));
	assert_false(tp_client_valid_name(""));
	assert_false(tp_client_valid_name(NULL));
	assert_false(tp_client_valid_name("a b"));
	assert_false(tp_client_valid_name("caf\xc3\xa9"));
	memset(s, 'x', 64);
	s[64] = '\0';
	assert_true(tp_client_valid_name(s));
	s[64] = 'x';
	s[65] = '\0';
	assert_false(tp_client_valid_name(s));
}

static void test_paths_without_advice(void **state)
{
	char p[TP_CLIENT_PATH_MAX];

	assert_int_equal(tp_client_connect_path(p, sizeof(p), "r1", "abc"), 0);
	assert_string_equal(p, "/v1/rooms/r1/connect?client=abc");

	assert_int_equal(
	    tp_client_transport_path(p, sizeof(p), TP_CLIENT_WS, NULL, "r1", "abc", 25, NULL), 0);
	assert_string_equal(p, "/v1/rooms/r1/ws?client=abc");
	assert_int_equal(
	    tp_client_transport_path(p, sizeof(p), TP_CLIENT_LONGPOLL, NULL, "r1", "abc", 25, ""),
	    0);
	assert_string_equal(p, "/v1/rooms/r1/poll?client=abc&wait=25");
	assert_int_equal(tp_client_transport_path(p, sizeof(p), TP_CLIENT_SHORTPOLL, NULL, "r1",
	                                          "abc", 25, "9f0c4e2a7b1d3c55-12"),
	                 0);
	assert_string_equal(p, "/v1/rooms/r1/poll?client=abc&since=9f0c4e2a7b1d3c55-12");
	/* anything outside the unreserved set is percent-encoded */
	assert_int_equal(tp_client_transport_path(p, sizeof(p), TP_CLIENT_WS, NULL, "r1", "abc", 25,
	                                          "a b/c&d=%"),
	                 0);
	assert_string_equal(p, "/v1/rooms/r1/ws?client=abc&since=a%20b%2Fc%26d%3D%25");

	/* too small: -1, never a truncated path */
	assert_int_equal(tp_client_connect_path(p, 20, "r1", "abc"), -1);
	assert_int_equal(
	    tp_client_transport_path(p, 40, TP_CLIENT_WS, NULL, "r1", "abc", 25, "0123456789"), -1);
	assert_int_equal(
	    tp_client_transport_path(p, 40, TP_CLIENT_WS, NULL, "r1", "abc", 25, "/////"), -1);
}

static void test_paths_with_advice(void **state)
{
	struct tp_client_advice a;
	char p[TP_CLIENT_PATH_MAX];

	memset(&a, 0, sizeof(a));
	strcpy(a.ws_url, "/v1/rooms/r1/ws?client=abc&x=1");
	strcpy(a.poll_url, "/v1/rooms/r1/poll?client=abc&wait=7");
	assert_int_equal(
	    tp_client_transport_path(p, sizeof(p), TP_CLIENT_WS, &a, "r1", "abc", 25, "c-1"), 0);
	assert_string_equal(p, "/v1/rooms/r1/ws?client=abc&x=1&since=c-1");
	assert_int_equal(
	    tp_client_transport_path(p, sizeof(p), TP_CLIENT_LONGPOLL, &a, "r1", "abc", 25, "c-1"),
	    0);
	assert_string_equal(p, "/v1/rooms/r1/poll?client=abc&wait=7&since=c-1");
	/* a poll_url with a wait does not fit short-poll: build one */
	assert_int_equal(
	    tp_client_transport_path(p, sizeof(p), TP_CLIENT_SHORTPOLL, &a, "r1", "abc", 25, NULL),
	    0);
	assert_string_equal(p, "/v1/rooms/r1/poll?client=abc");

	/* and one without a wait does not fit long-poll */
	strcpy(a.poll_url, "/v1/rooms/r1/poll?client=abc");
	assert_int_equal(
	    tp_client_transport_path(p, sizeof(p), TP_CLIENT_LONGPOLL, &a, "r1", "abc", 12, NULL),
	    0);
	assert_string_equal(p, "/v1/rooms/r1/poll?client=abc&wait=12");
	assert_int_equal(
	    tp_client_transport_path(p, sizeof(p), TP_CLIENT_SHORTPOLL, &a, "r1", "abc", 12, "z"),
	    0);
	assert_string_equal(p, "/v1/rooms/r1/poll?client=abc&since=z");

	/* a path without a query gets '?since=' */
	strcpy(a.ws_url, "/ws");
	assert_int_equal(
	    tp_client_transport_path(p, sizeof(p), TP_CLIENT_WS, &a, "r1", "abc", 25, "z"), 0);
	assert_string_equal(p, "/ws?since=z");
}

static void test_path_wait(void **state)
{
	assert_int_equal(tp_client_path_wait("/p?client=x&wait=25"), 25);
	assert_int_equal(tp_client_path_wait("/p?wait=7&client=x"), 7);
	assert_int_equal(tp_client_path_wait("/p?wait=0"), 0);
	assert_int_equal(tp_client_path_wait("/p?await=3"), 0);
	assert_int_equal(tp_client_path_wait("/p?wait=x"), 0);
	assert_int_equal(tp_client_path_wait("/p?wait=5x"), 0);
	assert_int_equal(tp_client_path_wait("/p?wait=-5"), 0);
	assert_int_equal(tp_client_path_wait("/p?wait=99999999999999999999"), 0);
	assert_int_equal(tp_client_path_wait("/p"), 0);
	assert_int_equal(tp_client_path_wait("/wait=3"), 0);
}

static void test_advice_parse(void **state)
{
	static const char doc[] =
	    "{\"transport\":\"longpoll\",\"ws_url\":\"/v1/rooms/r1/ws?client=ID\","
	    "\"poll_url\":\"/v1/rooms/r1/poll?client=ID&wait=25\",\"interval_ms\":0,"
	    "\"rate_per_min\":3.1,\"disconnects\":4.2,\"connected_min\":1.35,"
	    "\"reason\":\"rate_high\"}";
	struct tp_client_advice a;

	assert_int_equal(tp_client_advice_parse(doc, strlen(doc), &a), 0);
	assert_int_equal(a.transport, TP_CLIENT_LONGPOLL);
	assert_string_equal(a.ws_url, "/v1/rooms/r1/ws?client=ID");
	assert_string_equal(a.poll_url, "/v1/rooms/r1/poll?client=ID&wait=25");
	assert_int_equal(a.interval_ms, 0);
	assert_true(fabs(a.rate_per_min - 3.1) < 1e-9);
	assert_true(fabs(a.disconnects - 4.2) < 1e-9);
	assert_true(fabs(a.connected_min - 1.35) < 1e-9);
	assert_string_equal(a.reason, "rate_high");

	/* the minimum: a transport; an integer rate is a number too */
	static const char small[] = " {\"transport\":\"shortpoll\",\"interval_ms\":750,"
	                            "\"rate_per_min\":2} \n";
	assert_int_equal(tp_client_advice_parse(small, strlen(small), &a), 0);
	assert_int_equal(a.transport, TP_CLIENT_SHORTPOLL);
	assert_int_equal(a.interval_ms, 750);
	assert_true(fabs(a.rate_per_min - 2.0) < 1e-9);
	assert_true(isnan(a.disconnects));
	assert_string_equal(a.ws_url, "");
	assert_string_equal(a.reason, "");

	/* unusable members are dropped, the advice stays */
	static const char odd[] = "{\"transport\":\"ws\",\"ws_url\":\"http://evil/ws\","
	                          "\"poll_url\":\"/p?a=b c\",\"interval_ms\":-5,"
	                          "\"rate_per_min\":\"3\",\"reason\":\"a\\\"b\"}";
	assert_int_equal(tp_client_advice_parse(odd, strlen(odd), &a), 0);
	assert_int_equal(a.transport, TP_CLIENT_WS);
	assert_string_equal(a.ws_url, "");
	assert_string_equal(a.poll_url, "");
	assert_int_equal(a.interval_ms, 0);
	assert_true(isnan(a.rate_per_min));
	assert_string_equal(a.reason, "");

	static const char *const bad[] = {
	    "",
	    "[]",
	    "{}",
	    "{\"transport\":\"carrier-pigeon\"}",
	    "{\"transport\":3}",
	    "{\"transport\":\"ws\"} x",
	    "{\"transport\":\"ws\"",
	    "{\"error\":\"not_found\",\"detail\":\"unknown path\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (tp_client_advice_parse(bad[i], strlen(bad[i]), &a) != -1)
			fail_msg("accepted bad advice '%s'", bad[i]);
}

static void test_error_parse(void **state)
{
	/* the gateway's 429 too_fast body */
	static const char too_fast[] =
	    "{\"error\":\"too_fast\",\"detail\":\"polled 986 ms too early; wait interval_ms "
	    "between polls\",\"advice\":{\"transport\":\"shortpoll\",\"ws_url\":\"/v1/rooms/m/"
	    "ws?client=z\",\"poll_url\":\"/v1/rooms/m/poll?client=z\",\"interval_ms\":2000,"
	    "\"rate_per_min\":7.5,\"disconnects\":3.000,\"connected_min\":0.400,\"reason\":"
	    "\"rate_very_high\"}}";
	struct tp_client_advice a;
	char code[16];

	assert_int_equal(tp_client_error_parse(too_fast, strlen(too_fast), code, sizeof(code), &a),
	                 1);
	assert_string_equal(code, "too_fast");
	assert_int_equal(a.transport, TP_CLIENT_SHORTPOLL);
	assert_int_equal(a.interval_ms, 2000);
	assert_string_equal(a.poll_url, "/v1/rooms/m/poll?client=z");
	assert_string_equal(a.reason, "rate_very_high");

	static const char plain[] = "{\"error\":\"bad_cursor\",\"detail\":\"x\"}";
	assert_int_equal(tp_client_error_parse(plain, strlen(plain), code, sizeof(code), &a), 0);
	assert_string_equal(code, "bad_cursor");
	/* a long code is cut, never overflows */
	static const char longer[] = "{\"error\":\"a_very_long_error_code_indeed\"}";
	assert_int_equal(tp_client_error_parse(longer, strlen(longer), code, sizeof(code), &a), 0);
	assert_string_equal(code, "a_very_long_err");
	static const char *const bad[] = {"", "<html>", "[]", "{\"error\":7}",
	                                  "{\"error\":\"x\",\"advice\":{}}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int have = tp_client_error_parse(bad[i], strlen(bad[i]), code, sizeof(code), &a);
		assert_int_equal(have, 0);
		if (i < 4)
			assert_string_equal(code, "");
	}
}

static void test_batch_parse(void **state)
{
	static const char ok[] =
	    "{\"room\":\"r1\",\"msgs\":[{\"seq\":12,\"ts\":1763750000123,\"type\":\"danmaku\","
	    "\"uid\":\"u1\",\"text\":\"h\\u00e9/\"},{\"seq\":13,\"ts\":1763750000124}],"
	    "\"cursor\":\"9f0c-13\",\"gap\":false}";
	struct tp_client_batch b;
	struct json_object *m;
	int64_t seq, ts;
	char err[128];

	assert_int_equal(tp_client_batch_parse(ok, strlen(ok), &b, err, sizeof(err)), 0);
	assert_false(b.is_reply);
	assert_int_equal(json_object_array_length(b.msgs), 2);
	assert_string_equal(b.cursor, "9f0c-13");
	assert_false(b.gap);
	assert_int_equal(b.suppressed, 0);
	assert_false(b.has_advice);
	tp_client_batch_msg(&b, 0, &m, &seq, &ts);
	assert_int_equal(seq, 12);
	assert_int_equal(ts, 1763750000123LL);
	/* delivered as compact JSON, UTF-8 kept, '/' not escaped */
	assert_string_equal(json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN |
	                                                          JSON_C_TO_STRING_NOSLASHESCAPE),
	                    "{\"seq\":12,\"ts\":1763750000123,\"type\":\"danmaku\",\"uid\":\"u1\","
	                    "\"text\":\"h\xc3\xa9/\"}");
	tp_client_batch_msg(&b, 1, &m, &seq, &ts);
	assert_int_equal(seq, 13);
	tp_client_batch_release(&b);
	assert_null(b.root);

	static const char full[] = "{\"msgs\":[],\"cursor\":\"c\",\"gap\":true,\"suppressed\":3,"
	                           "\"advice\":{\"transport\":\"shortpoll\",\"interval_ms\":400}}";
	assert_int_equal(tp_client_batch_parse(full, strlen(full), &b, err, sizeof(err)), 0);
	assert_true(b.gap);
	assert_int_equal(b.suppressed, 3);
	assert_true(b.has_advice);
	assert_int_equal(b.advice.transport, TP_CLIENT_SHORTPOLL);
	assert_int_equal(b.advice.interval_ms, 400);
	tp_client_batch_release(&b);

	/* an unreadable advice is ignored, the batch is not */
	static const char odd_advice[] =
	    "{\"msgs\":[],\"cursor\":\"c\",\"advice\":{\"transport\":1}}";
	assert_int_equal(
	    tp_client_batch_parse(odd_advice, strlen(odd_advice), &b, err, sizeof(err)), 0);
	assert_false(b.has_advice);
	assert_false(b.gap); /* absent gap: false */
	tp_client_batch_release(&b);

	static const char reply[] = "{\"op\":\"ack\",\"id\":7,\"seq\":3}";
	assert_int_equal(tp_client_batch_parse(reply, strlen(reply), &b, err, sizeof(err)), 0);
	assert_true(b.is_reply);
	tp_client_batch_release(&b);

	static const char *const bad[] = {
	    "",
	    "nope",
	    "[1]",
	    "{\"cursor\":\"c\"}",
	    "{\"msgs\":{},\"cursor\":\"c\"}",
	    "{\"msgs\":[1],\"cursor\":\"c\"}",
	    "{\"msgs\":[{\"ts\":1}],\"cursor\":\"c\"}",
	    "{\"msgs\":[{\"seq\":0,\"ts\":1}],\"cursor\":\"c\"}",
	    "{\"msgs\":[{\"seq\":\"1\",\"ts\":1}],\"cursor\":\"c\"}",
	    "{\"msgs\":[{\"seq\":1.5,\"ts\":1}],\"cursor\":\"c\"}",
	    "{\"msgs\":[{\"seq\":1}],\"cursor\":\"c\"}",
	    "{\"msgs\":[]}",
	    "{\"msgs\":[],\"cursor\":\"\"}",
	    "{\"msgs\":[],\"cursor\":\"a b\"}",
	    "{\"msgs\":[],\"cursor\":7}",
	    "{\"msgs\":[],\"cursor\":\"c\",\"gap\":\"true\"}",
	    "{\"msgs\":[],\"cursor\":\"c\",\"suppressed\":-1}",
	    "{\"msgs\":[],\"cursor\":\"c\"}{}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (tp_client_batch_parse(bad[i], strlen(bad[i]), &b, err, sizeof(err)) != -1)
			fail_msg("accepted bad batch '%s'", bad[i]);
		assert_true(err[0] != '\0');
		assert_null(b.root);
	}

	/* a cursor of TP_CLIENT_CURSOR_MAX bytes is refused, one less is kept */
	char big[TP_CLIENT_CURSOR_MAX + 64];
	int n = snprintf(big, sizeof(big), "{\"msgs\":[],\"cursor\":\"%0*d\"}",
	                 TP_CLIENT_CURSOR_MAX - 1, 0);
	assert_int_equal(tp_client_batch_parse(big, (size_t)n, &b, err, sizeof(err)), 0);
	assert_int_equal(strlen(b.cursor), TP_CLIENT_CURSOR_MAX - 1);
	tp_client_batch_release(&b);
	n = snprintf(big, sizeof(big), "{\"msgs\":[],\"cursor\":\"%0*d\"}", TP_CLIENT_CURSOR_MAX,
	             0);
	assert_int_equal(tp_client_batch_parse(big, (size_t)n, &b, err, sizeof(err)), -1);
}

/* Feed one batch of seqs; returns how many were delivered. */
static int feed(struct tp_client_acct *a, int gap, uint64_t suppressed, const int64_t *seqs,
                size_t n)
{
	int delivered = 0;

	tp_client_acct_batch(a, gap, suppressed);
	for (size_t i = 0; i < n; i++)
		delivered += tp_client_acct_msg(a, seqs[i]);
	return delivered;
}

static void test_acct_dedup_and_gaps(void **state)
{
	struct tp_client_acct a;

	memset(&a, 0, sizeof(a));
	/* the first message sets the baseline, whatever its seq */
	assert_int_equal(feed(&a, 0, 0, (int64_t[]){57, 58, 59}, 3), 3);
	assert_int_equal(a.delivered, 3);
	assert_int_equal(a.gaps, 0);
	/* a repeat (e.g. a resent batch after a reconnect) is counted, not delivered */
	assert_int_equal(feed(&a, 0, 0, (int64_t[]){58, 59, 60}, 3), 1);
	assert_int_equal(a.duplicates, 2);
	assert_int_equal(a.last_seq, 60);
	/* a silent hole of two */
	assert_int_equal(feed(&a, 0, 0, (int64_t[]){63}, 1), 1);
	assert_int_equal(a.gaps, 2);
	/* suppressed explains holes, within the batch ... */
	assert_int_equal(feed(&a, 0, 2, (int64_t[]){65, 67}, 2), 2);
	assert_int_equal(a.gaps, 2);
	assert_int_equal(a.suppressed, 2);
	/* ... and a trailing one shows in the next batch */
	assert_int_equal(feed(&a, 0, 1, (int64_t[]){68}, 1), 1);
	assert_int_equal(feed(&a, 0, 0, (int64_t[]){70}, 1), 1);
	assert_int_equal(a.gaps, 2);
	/* credit is used up: the next hole counts */
	assert_int_equal(feed(&a, 0, 0, (int64_t[]){72}, 1), 1);
	assert_int_equal(a.gaps, 3);
	/* more suppressed than holes leaves credit, never negative gaps */
	assert_int_equal(feed(&a, 0, 5, (int64_t[]){74}, 1), 1);
	assert_int_equal(a.gaps, 3);
	assert_int_equal(a.credit, 4);
	assert_int_equal(a.gap_flags, 0);
	assert_int_equal(a.delivered, 11);
}

static void test_acct_gap_flag(void **state)
{
	struct tp_client_acct a;

	memset(&a, 0, sizeof(a));
	assert_int_equal(feed(&a, 0, 0, (int64_t[]){1, 2, 3, 4, 5}, 5), 5);
	/* the gateway restarted: a new ring, seq starts at 1 again, flagged */
	assert_int_equal(feed(&a, 1, 0, (int64_t[]){1, 2}, 2), 2);
	assert_int_equal(a.gap_flags, 1);
	assert_int_equal(a.duplicates, 0);
	assert_int_equal(a.gaps, 0);
	assert_int_equal(feed(&a, 0, 0, (int64_t[]){3}, 1), 1);
	/* messages fell out of the window: flagged, the jump is not a silent gap */
	assert_int_equal(feed(&a, 1, 0, (int64_t[]){900, 901}, 2), 2);
	assert_int_equal(a.gaps, 0);
	assert_int_equal(a.gap_flags, 2);
	/* an empty gap:true batch: whatever comes next starts afresh */
	assert_int_equal(feed(&a, 1, 0, NULL, 0), 0);
	assert_int_equal(feed(&a, 0, 0, (int64_t[]){1}, 1), 1);
	assert_int_equal(a.duplicates, 0);
	/* credit from before a gap:true does not hide a later hole */
	assert_int_equal(feed(&a, 0, 3, NULL, 0), 0);
	assert_int_equal(feed(&a, 1, 0, (int64_t[]){10}, 1), 1);
	assert_int_equal(feed(&a, 0, 0, (int64_t[]){12}, 1), 1);
	assert_int_equal(a.gaps, 1);
	assert_int_equal(a.delivered, 13);
}

static void test_rng_known_values(void **state)
{
	/* splitmix64's published sequence for seed 0 */
	uint64_t s = 0;

	assert_true(tp_client_rng_next(&s) == 0xe220a8397b1dcdafull);
	assert_true(tp_client_rng_next(&s) == 0x6e789e6aa1b965f4ull);
	assert_true(tp_client_rng_next(&s) == 0x06c45d188009454full);
}

static void test_backoff_schedule(void **state)
{
	uint64_t s1 = 42, s2 = 42, s3 = 43;
	unsigned a[20], b[20], c[20];
	int differs = 0;

	/* same seed, same schedule; another seed, another one */
	for (unsigned i = 0; i < 20; i++) {
		a[i] = tp_client_backoff_ms(100, 5000, i, &s1);
		b[i] = tp_client_backoff_ms(100, 5000, i, &s2);
		c[i] = tp_client_backoff_ms(100, 5000, i, &s3);
		assert_int_equal(a[i], b[i]);
		differs |= a[i] != c[i];
	}
	assert_true(differs);

	/* every delay within [0, min(max, base * 2^attempt)]; the samples spread
	 * over the whole range (fixed seed: deterministic, not a timing test) */
	for (unsigned attempt = 0; attempt < 12; attempt++) {
		unsigned ceiling = 100u << attempt, lo = UINT32_MAX, hi = 0;
		uint64_t s = 1000 + attempt;
		if (ceiling > 5000)
			ceiling = 5000;
		for (int i = 0; i < 2000; i++) {
			unsigned d = tp_client_backoff_ms(100, 5000, attempt, &s);
			assert_true(d <= ceiling);
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
		}
		assert_true(lo <= ceiling / 20);
		assert_true(hi >= ceiling - ceiling / 20);
	}

	/* huge attempt counts saturate at max without overflow; base == max */
	uint64_t s = 7;
	for (int i = 0; i < 1000; i++) {
		assert_true(tp_client_backoff_ms(1000, 30000, 4000000000u, &s) <= 30000);
		assert_true(tp_client_backoff_ms(3600000, 3600000, 63, &s) <= 3600000);
	}
	/* base 1, max 1: 0 or 1 */
	assert_true(tp_client_backoff_ms(1, 1, 0, &s) <= 1);
}

static void test_hist(void **state)
{
	struct tp_client_hist h;

	memset(&h, 0, sizeof(h));
	assert_int_equal(tp_client_hist_quantile(&h, 0.5), -1);
	for (int i = 1; i <= 100; i++)
		tp_client_hist_add(&h, i);
	assert_int_equal(tp_client_hist_quantile(&h, 0.50), 50);
	assert_int_equal(tp_client_hist_quantile(&h, 0.95), 95);
	assert_int_equal(tp_client_hist_quantile(&h, 1.0), 100);
	assert_int_equal(tp_client_hist_quantile(&h, 0.001), 1);

	memset(&h, 0, sizeof(h));
	tp_client_hist_add(&h, -40);
	assert_int_equal(tp_client_hist_quantile(&h, 0.5), 0);
	memset(&h, 0, sizeof(h));
	tp_client_hist_add(&h, 1509);
	assert_int_equal(tp_client_hist_quantile(&h, 0.5), 1500);
	memset(&h, 0, sizeof(h));
	tp_client_hist_add(&h, 15099);
	assert_int_equal(tp_client_hist_quantile(&h, 0.5), 15000);
	memset(&h, 0, sizeof(h));
	tp_client_hist_add(&h, 119999);
	assert_int_equal(tp_client_hist_quantile(&h, 0.5), 119900);
	tp_client_hist_add(&h, 10LL * 60 * 60 * 1000);
	tp_client_hist_add(&h, INT64_MAX);
	assert_int_equal(tp_client_hist_quantile(&h, 1.0), 120000);
	assert_int_equal(h.n, 3);
}

static void test_transport_names(void **state)
{
	enum tp_client_transport t;

	for (int i = 0; i < TP_CLIENT_TRANSPORTS; i++) {
		assert_int_equal(tp_client_transport_parse(tp_client_transport_name(i), &t), 0);
		assert_int_equal(t, i);
	}
	assert_string_equal(tp_client_transport_name(TP_CLIENT_TRANSPORTS), "none");
	assert_int_equal(tp_client_transport_parse("auto", &t), -1);
	assert_int_equal(tp_client_transport_parse(NULL, &t), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_url_parse),
	    cmocka_unit_test(test_valid_name),
	    cmocka_unit_test(test_paths_without_advice),
	    cmocka_unit_test(test_paths_with_advice),
	    cmocka_unit_test(test_path_wait),
	    cmocka_unit_test(test_advice_parse),
	    cmocka_unit_test(test_error_parse),
	    cmocka_unit_test(test_batch_parse),
	    cmocka_unit_test(test_acct_dedup_and_gaps),
	    cmocka_unit_test(test_acct_gap_flag),
	    cmocka_unit_test(test_rng_known_values),
	    cmocka_unit_test(test_backoff_schedule),
	    cmocka_unit_test(test_hist),
	    cmocka_unit_test(test_transport_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
