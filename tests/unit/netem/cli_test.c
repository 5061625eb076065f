/*
 * nm_cli: both flag forms, defaults, parameters by flag, help, and every kind
 * of bad command line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netem/cli.h"

#define PARSE(o, err, ...)                                                                         \
	({                                                                                         \
		char *argv_[] = {"lg-relay", __VA_ARGS__};                                         \
		nm_cli_parse(o, (int)(sizeof(argv_) / sizeof(argv_[0])), argv_, err, sizeof(err)); \
	})

static void test_defaults_and_forms(void **state)
{
	struct nm_cli o;
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&o, err, "--upstream", "127.0.0.1:8080"), 0);
	assert_string_equal(o.listen, "127.0.0.1:0");
	assert_string_equal(o.control, "127.0.0.1:0");
	assert_string_equal(o.upstream, "127.0.0.1:8080");
	assert_string_equal(o.name, "");
	assert_int_equal(o.seed, -1);
	assert_int_equal(o.p.delay_ms, 0);

	assert_int_equal(PARSE(&o, err, "--upstream=h:1", "--listen", "10.77.0.1:18080",
	                       "--control=off", "--seed", "42", "--name=4g", "--delay-ms", "40",
	                       "--jitter_ms=15", "--cut-min-ms=100", "--cut-max-ms", "200"),
	                 0);
	assert_string_equal(o.upstream, "h:1");
	assert_string_equal(o.listen, "10.77.0.1:18080");
	assert_string_equal(o.control, "off");
	assert_string_equal(o.name, "4g");
	assert_int_equal(o.seed, 42);
	assert_int_equal(o.p.delay_ms, 40);
	assert_int_equal(o.p.jitter_ms, 15);
	assert_int_equal(o.p.cut_min_ms, 100);
	assert_int_equal(o.p.cut_max_ms, 200);
	/* a value may itself start with dashes or contain '=' */
	assert_int_equal(PARSE(&o, err, "--upstream", "h:1", "--name", "--a=b"), 0);
	assert_string_equal(o.name, "--a=b");
}

static void test_help(void **state)
{
	struct nm_cli o;
	char err[256], *text = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	/* help wins over everything else, even errors */
	assert_int_equal(PARSE(&o, err, "--bogus", "-h"), 1);
	assert_int_equal(PARSE(&o, err, "--help"), 1);
	f = open_memstream(&text, &len);
	assert_non_null(f);
	nm_cli_usage(f);
	fclose(f);
	assert_non_null(strstr(text, "--upstream HOST:PORT"));
	assert_non_null(strstr(text, "--stall-every-ms N"));
	assert_non_null(strstr(text, "--connect-timeout-ms N"));
	assert_non_null(strstr(text, "cut-all"));
	free(text);
}

static void test_errors(void **state)
{
	struct nm_cli o;
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&o, err, "--listen", "127.0.0.1:0"), -1);
	assert_string_equal(err, "--upstream HOST:PORT is required");
	assert_int_equal(PARSE(&o, err, "--upstream"), -1);
	assert_string_equal(err, "--upstream needs a value");
	assert_int_equal(PARSE(&o, err, "--upstream", "h:1", "stray"), -1);
	assert_string_equal(err, "unexpected argument 'stray'");
	assert_int_equal(PARSE(&o, err, "--upstream", "h:1", "-x", "1"), -1);
	assert_int_equal(PARSE(&o, err, "--upstream", "h:1", "--", "1"), -1);
	assert_int_equal(PARSE(&o, err, "--upstream", "h:1", "--=1"), -1);
	assert_int_equal(PARSE(&o, err, "--upstream", "h:1", "--bogus", "1"), -1);
	assert_string_equal(err, "unknown parameter 'bogus' (from --bogus)");
	assert_int_equal(PARSE(&o, err, "--upstream", "h:1", "--delay-ms", "1s"), -1);
	assert_string_equal(err, "delay_ms: '1s' is not an integer in 0..600000 (from --delay-ms)");
	assert_int_equal(PARSE(&o, err, "--upstream", "h:1", "--seed", "-2"), -1);
	assert_int_equal(
	    PARSE(&o, err, "--upstream", "h:1", "--stall-every-ms", "100", "--stall-ms", "100"),
	    -1);
	assert_string_equal(err, "stall_ms (100) must be < stall_every_ms (100)");
	assert_int_equal(PARSE(&o, err, "--upstream", "h:1",
	                       "--a-flag-name-that-is-much-longer-than-any-real-one-could-be-x=1"),
	                 -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults_and_forms),
	    cmocka_unit_test(test_help),
	    cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
