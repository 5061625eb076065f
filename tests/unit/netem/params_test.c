/*
 * nm_params: strict numbers, ranges, key spelling, all-or-nothing `set`,
 * cross-field rules, the JSON form and JSON strings.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "netem/params.h"

static void test_parse_i64(void **state)
{
	int64_t v = 7;

	(void)state;
	assert_int_equal(nm_parse_i64("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(nm_parse_i64("10", 0, 10, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(nm_parse_i64("-3", -5, 10, &v), 0);
	assert_int_equal(v, -3);
	v = 7;
	assert_int_equal(nm_parse_i64("11", 0, 10, &v), -1);
	assert_int_equal(nm_parse_i64("-1", 0, 10, &v), -1);
	assert_int_equal(nm_parse_i64("", 0, 10, &v), -1);
	assert_int_equal(nm_parse_i64(" 1", 0, 10, &v), -1);
	assert_int_equal(nm_parse_i64("+1", 0, 10, &v), -1);
	assert_int_equal(nm_parse_i64("1 ", 0, 10, &v), -1);
	assert_int_equal(nm_parse_i64("0x1", 0, 10, &v), -1);
	assert_int_equal(nm_parse_i64("1e3", 0, 10000, &v), -1);
	assert_int_equal(nm_parse_i64("-", -5, 10, &v), -1);
	assert_int_equal(nm_parse_i64("99999999999999999999", 0, INT64_MAX, &v), -1);
	assert_int_equal(nm_parse_i64(NULL, 0, 10, &v), -1);
	assert_int_equal(v, 7); /* failures leave the output alone */
}

static void test_defaults_and_set(void **state)
{
	struct nm_params p;
	char err[128];

	(void)state;
	nm_params_default(&p);
	assert_int_equal(p.delay_ms, 0);
	assert_int_equal(p.rate_kbps, 0);
	assert_int_equal(p.cut_max_ms, 0);
	assert_int_equal(p.burst_bytes, 16384);
	assert_int_equal(p.buf_bytes, 262144);
	assert_int_equal(nm_params_check(&p, err, sizeof(err)), 0);

	assert_int_equal(nm_params_set(&p, "delay_ms", "50", err, sizeof(err)), 0);
	assert_int_equal(nm_params_set(&p, "jitter-ms", "20", err, sizeof(err)), 0);
	assert_int_equal(p.delay_ms, 50);
	assert_int_equal(p.jitter_ms, 20);
	/* dashes stand for underscores, not the other way round, and no partial names */
	assert_int_equal(nm_params_set(&p, "delay", "1", err, sizeof(err)), -1);
	assert_int_equal(nm_params_set(&p, "delay_ms_x", "1", err, sizeof(err)), -1);
	assert_int_equal(nm_params_set(&p, "", "1", err, sizeof(err)), -1);
	assert_int_equal(nm_params_set(&p, "bogus", "1", err, sizeof(err)), -1);
	assert_string_equal(err, "unknown parameter 'bogus'");
	assert_int_equal(nm_params_set(&p, "delay_ms", "600001", err, sizeof(err)), -1);
	assert_string_equal(err, "delay_ms: '600001' is not an integer in 0..600000");
	assert_int_equal(nm_params_set(&p, "buf_bytes", "1023", err, sizeof(err)), -1);
	assert_int_equal(nm_params_set(&p, "rate_kbps", "-1", err, sizeof(err)), -1);
	assert_int_equal(p.delay_ms, 50);
	/* a tiny err buffer is still terminated */
	assert_int_equal(nm_params_set(&p, "bogus", "1", err, 4), -1);
	assert_string_equal(err, "unk");
}

static void test_check(void **state)
{
	struct nm_params p;
	char err[128];

	(void)state;
	nm_params_default(&p);
	p.stall_every_ms = 1000;
	p.stall_ms = 1000;
	assert_int_equal(nm_params_check(&p, err, sizeof(err)), -1);
	assert_string_equal(err, "stall_ms (1000) must be < stall_every_ms (1000)");
	p.stall_ms = 999;
	assert_int_equal(nm_params_check(&p, err, sizeof(err)), 0);
	p.stall_every_ms = 0; /* no stalls: stall_ms is not looked at */
	p.stall_ms = 5000;
	assert_int_equal(nm_params_check(&p, err, sizeof(err)), 0);
	p.cut_min_ms = 2000;
	p.cut_max_ms = 1000;
	assert_int_equal(nm_params_check(&p, err, sizeof(err)), -1);
	p.cut_max_ms = 0; /* never cut: cut_min_ms is not looked at */
	assert_int_equal(nm_params_check(&p, err, sizeof(err)), 0);
	p.cut_max_ms = 2000;
	assert_int_equal(nm_params_check(&p, err, sizeof(err)), 0);
}

static void test_apply_all_or_nothing(void **state)
{
	struct nm_params p, before;
	char err[128], line[128];

	(void)state;
	nm_params_default(&p);
	strcpy(line, "delay_ms=40  jitter_ms=10\trate_kbps=800");
	assert_int_equal(nm_params_apply(&p, line, err, sizeof(err)), 0);
	assert_int_equal(p.delay_ms, 40);
	assert_int_equal(p.jitter_ms, 10);
	assert_int_equal(p.rate_kbps, 800);

	before = p;
	strcpy(line, "delay_ms=99 bogus=1");
	assert_int_equal(nm_params_apply(&p, line, err, sizeof(err)), -1);
	assert_string_equal(err, "unknown parameter 'bogus'");
	assert_memory_equal(&p, &before, sizeof(p));

	strcpy(line, "delay_ms=99 cut_min_ms=5000 cut_max_ms=100");
	assert_int_equal(nm_params_apply(&p, line, err, sizeof(err)), -1);
	assert_memory_equal(&p, &before, sizeof(p));

	strcpy(line, "delay_ms");
	assert_int_equal(nm_params_apply(&p, line, err, sizeof(err)), -1);
	assert_string_equal(err, "expected key=value, got 'delay_ms'");
	strcpy(line, "delay_ms=");
	assert_int_equal(nm_params_apply(&p, line, err, sizeof(err)), -1);
	strcpy(line, "   ");
	assert_int_equal(nm_params_apply(&p, line, err, sizeof(err)), -1);
	assert_string_equal(err, "set needs at least one key=value");
	assert_memory_equal(&p, &before, sizeof(p));

	/* turning cuts off in one go works whatever cut_min_ms was */
	p.cut_min_ms = 1000;
	p.cut_max_ms = 2000;
	strcpy(line, "cut_max_ms=0");
	assert_int_equal(nm_params_apply(&p, line, err, sizeof(err)), 0);
	assert_int_equal(p.cut_max_ms, 0);
}

static void test_json(void **state)
{
	struct nm_params p;
	char buf[1024], small[40];
	int n, m;

	(void)state;
	nm_params_default(&p);
	p.delay_ms = 50;
	n = nm_params_json(&p, buf, sizeof(buf));
	assert_int_equal(n, (int)strlen(buf));
	assert_string_equal(buf, "{\"delay_ms\":50,\"jitter_ms\":0,\"rate_kbps\":0,"
	                         "\"burst_bytes\":16384,\"stall_every_ms\":0,\"stall_ms\":0,"
	                         "\"cut_min_ms\":0,\"cut_max_ms\":0,\"buf_bytes\":262144,"
	                         "\"max_conns\":8000,\"connect_timeout_ms\":5000}");
	/* too small: terminated, and the result is the length it needed */
	m = nm_params_json(&p, small, sizeof(small));
	assert_int_equal(m, n);
	assert_true(strlen(small) < sizeof(small));
	assert_memory_equal(small, buf, strlen(small));
}

static void test_json_str(void **state)
{
	char buf[64], tiny[8];
	size_t n, i;

	(void)state;
	n = nm_json_str(buf, sizeof(buf), "a\"b\\c\n\x01\xff");
	assert_string_equal(buf, "\"a\\\"b\\\\c\\u000a\\u0001\\u00ff\"");
	assert_int_equal(n, strlen(buf));
	/* truncation keeps whole escapes and the closing quote */
	for (i = 3; i <= sizeof(tiny); i++) {
		n = nm_json_str(tiny, i, "\"\"\"\"");
		assert_true(n < i);
		assert_int_equal(tiny[0], '"');
		assert_int_equal(tiny[n - 1], '"');
		assert_int_equal((n - 2) % 2, 0);
	}
	assert_int_equal(nm_json_str(tiny, 2, "x"), 0);
	assert_string_equal(tiny, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_i64), cmocka_unit_test(test_defaults_and_set),
	    cmocka_unit_test(test_check),     cmocka_unit_test(test_apply_all_or_nothing),
	    cmocka_unit_test(test_json),      cmocka_unit_test(test_json_str),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
