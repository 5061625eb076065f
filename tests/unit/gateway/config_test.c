/*
 * Tests for gateway/config.c: the table's defaults, the JSON file, the flags and the
 * order they override each other in, the strict parsing, and --help / --help-markdown.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "gateway/config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* A temp JSON file under /tmp holding `text`; the caller unlinks `path`. */
static void write_temp(char *path, size_t len, const char *text)
{
	int fd;

	snprintf(path, len, "/tmp/livegate_config_test_XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(close(fd), 0);
}

/* Load argv and expect failure with an error naming `needle`. */
static void expect_load_error(int argc, char **argv, const char *needle)
{
	struct gw_config cfg;
	char err[256] = "";

	assert_int_equal(gw_config_load(&cfg, argc, argv, stdout, err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	if (!strstr(err, needle))
		fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
	gw_config_free(&cfg);
}

static void expect_json_error(const char *json, const char *needle)
{
	struct gw_config cfg;
	char err[256] = "";

	assert_int_equal(gw_config_defaults(&cfg), 0);
	assert_int_equal(gw_config_apply_json(&cfg, json, err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	if (!strstr(err, needle))
		fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
	gw_config_free(&cfg);
}

static void expect_set_error(const char *name, const char *value)
{
	struct gw_config cfg;
	char err[256] = "";

	assert_int_equal(gw_config_defaults(&cfg), 0);
	if (gw_config_set(&cfg, name, value, err, sizeof(err)) != -1)
		fail_msg("%s = \"%s\" was accepted", name, value);
	assert_non_null(strstr(err, name));
	gw_config_free(&cfg);
}

static void test_defaults(void **state)
{
	struct gw_config cfg;

	(void)state;
	assert_int_equal(gw_config_defaults(&cfg), 0);
	assert_string_equal(cfg.bind, "127.0.0.1");
	assert_int_equal(cfg.port, 8080);
	assert_int_equal(cfg.workers, 0);
	assert_int_equal(cfg.max_connections, 100000);
	assert_string_equal(cfg.tls_cert, "");
	assert_string_equal(cfg.config_file, "");
	assert_string_equal(cfg.data_dir, "./livegate-data");
	assert_int_equal(cfg.window, 60);
	assert_int_equal(cfg.ring_slots, 65536);
	assert_int_equal(cfg.ring_bytes, 16777216);
	assert_int_equal(cfg.batch_max_bytes, 1048576);
	assert_int_equal(cfg.gzip_level, 6);
	assert_true(cfg.rate_uid == 3.0);
	assert_true(cfg.burst_room == 4000.0);
	assert_int_equal(cfg.rate_max_keys, 200000);
	assert_string_equal(cfg.blocked_words_mode, "mask");
	assert_int_equal(cfg.ws_ping_interval, 20);
	assert_int_equal(cfg.keepalive_timeout, 30);
	assert_int_equal(cfg.poll_fast_path, 1);
	assert_string_equal(cfg.log_level, "info");

	/* Every field, via the table: catches a row whose offset points at the wrong field. */
	for (size_t i = 0; i < gw_config_table_len; i++) {
		const struct gw_config_def *d = &gw_config_table[i];
		const char *p = (const char *)&cfg + d->offset;

		switch (d->type) {
		case GW_CFG_INT:
			assert_int_equal(*(const int64_t *)p, strtoll(d->def, NULL, 10));
			break;
		case GW_CFG_DOUBLE:
			assert_true(*(const double *)p == strtod(d->def, NULL));
			break;
		case GW_CFG_STRING:
		case GW_CFG_ENUM:
			assert_string_equal(*(char *const *)p, d->def);
			break;
		}
	}
	gw_config_free(&cfg);
}

static void test_table_is_consistent(void **state)
{
	struct gw_config cfg;
	char err[256];

	(void)state;
	assert_int_equal(gw_config_table_len, 59); /* one row per struct gw_config field */
	assert_int_equal(gw_config_defaults(&cfg), 0);
	for (size_t i = 0; i < gw_config_table_len; i++) {
		const struct gw_config_def *d = &gw_config_table[i];

		err[0] = '\0';
		if (gw_config_set(&cfg, d->name, d->def, err, sizeof(err)) != 0)
			fail_msg("default of %s rejected: %s", d->name, err);
		assert_non_null(d->help);
		assert_true(d->help[0] != '\0');
		assert_true(d->offset + sizeof(int64_t) <= sizeof(struct gw_config));
		for (size_t j = 0; j < i; j++) {
			assert_string_not_equal(gw_config_table[j].name, d->name);
			assert_int_not_equal(gw_config_table[j].offset, d->offset);
		}
	}
	gw_config_free(&cfg);
}

static void test_set_strings_replace(void **state)
{
	struct gw_config cfg;
	char err[256];

	(void)state;
	assert_int_equal(gw_config_defaults(&cfg), 0);
	/* The old value is freed on overwrite; LeakSanitizer would report it otherwise. */
	assert_int_equal(gw_config_set(&cfg, "bind", "0.0.0.0", err, sizeof(err)), 0);
	assert_int_equal(gw_config_set(&cfg, "bind", "::1", err, sizeof(err)), 0);
	assert_string_equal(cfg.bind, "::1");
	assert_int_equal(gw_config_set(&cfg, "log_level", "debug", err, sizeof(err)), 0);
	assert_string_equal(cfg.log_level, "debug");
	assert_int_equal(gw_config_set(&cfg, "rate_uid", "2.5", err, sizeof(err)), 0);
	assert_true(cfg.rate_uid == 2.5);
	assert_int_equal(gw_config_set(&cfg, "ring_slots", "1024", err, sizeof(err)), 0);
	assert_int_equal(cfg.ring_slots, 1024);
	assert_int_equal(gw_config_set(&cfg, "workers", "-0", err, sizeof(err)), 0);
	assert_int_equal(cfg.workers, 0);
	gw_config_free(&cfg);
}

static void test_flags_override_file(void **state)
{
	char path[64];
	char err[256] = "";
	struct gw_config cfg;

	(void)state;
	write_temp(path, sizeof(path),
	           "{\n"
	           "  \"port\": 7000,\n"
	           "  \"window\": 120,\n"
	           "  \"ring_slots\": \"2048\",\n"
	           "  \"rate_uid\": 2.5,\n"
	           "  \"burst_uid\": 10,\n"
	           "  \"bind\": \"0.0.0.0\",\n"
	           "  \"blocked_words_mode\": \"reject\"\n"
	           "}\n");

	/* --port before --config: the file must still not win. */
	char *before[] = {"livegate", "--port", "9000", "--config", path, "--log-level", "warn"};
	assert_int_equal(gw_config_load(&cfg, ARGC(before), before, stdout, err, sizeof(err)), 0);
	assert_int_equal(cfg.port, 9000);
	assert_int_equal(cfg.window, 120);
	assert_int_equal(cfg.ring_slots, 2048);
	assert_true(cfg.rate_uid == 2.5);
	assert_true(cfg.burst_uid == 10.0);
	assert_string_equal(cfg.bind, "0.0.0.0");
	assert_string_equal(cfg.blocked_words_mode, "reject");
	assert_string_equal(cfg.log_level, "warn");
	assert_string_equal(cfg.config_file, path);
	assert_int_equal(cfg.io_timeout, 10); /* in neither: default */
	gw_config_free(&cfg);

	char *after[] = {"livegate", "--config", path, "--port=9000", "--bind", "10.0.0.1"};
	assert_int_equal(gw_config_load(&cfg, ARGC(after), after, stdout, err, sizeof(err)), 0);
	assert_int_equal(cfg.port, 9000);
	assert_int_equal(cfg.window, 120);
	assert_string_equal(cfg.bind, "10.0.0.1");
	gw_config_free(&cfg);

	char flag[96];
	snprintf(flag, sizeof(flag), "--config=%s", path);
	char *eq[] = {"livegate", "--window=5", flag};
	assert_int_equal(gw_config_load(&cfg, ARGC(eq), eq, stdout, err, sizeof(err)), 0);
	assert_int_equal(cfg.port, 7000);
	assert_int_equal(cfg.window, 5);
	gw_config_free(&cfg);

	unlink(path);
}

static void test_equals_form(void **state)
{
	struct gw_config cfg;
	char err[256] = "";
	char *argv[] = {
	    "livegate",        "--ring-slots=1024",           "--rate-room=0.5",   "--tls-cert=",
	    "--data-dir=/a=b", "--blocked-words-mode=reject", "--max-connections", "5"};

	(void)state;
	assert_int_equal(gw_config_load(&cfg, ARGC(argv), argv, stdout, err, sizeof(err)), 0);
	assert_int_equal(cfg.ring_slots, 1024);
	assert_true(cfg.rate_room == 0.5);
	assert_string_equal(cfg.tls_cert, "");
	assert_string_equal(cfg.data_dir, "/a=b");
	assert_string_equal(cfg.blocked_words_mode, "reject");
	assert_int_equal(cfg.max_connections, 5);
	gw_config_free(&cfg);
}

static void test_flag_errors(void **state)
{
	(void)state;
	char *range[] = {"livegate", "--port", "70000"};
	expect_load_error(ARGC(range), range, "--port: 70000 is out of range 1..65535");
	char *pow2[] = {"livegate", "--ring-slots=3000"};
	expect_load_error(ARGC(pow2), pow2, "--ring-slots");
	char *pow2b[] = {"livegate", "--ring-slots=3000"};
	expect_load_error(ARGC(pow2b), pow2b, "power of two");
	char *enm[] = {"livegate", "--blocked-words-mode", "drop"};
	expect_load_error(ARGC(enm), enm, "--blocked-words-mode");
	char *level[] = {"livegate", "--log-level=verbose"};
	expect_load_error(ARGC(level), level, "--log-level");
	char *unknown[] = {"livegate", "--no-such-flag", "1"};
	expect_load_error(ARGC(unknown), unknown, "--no-such-flag");
	char *underscore[] = {"livegate", "--ring_slots", "1024"};
	expect_load_error(ARGC(underscore), underscore, "--ring_slots");
	char *missing[] = {"livegate", "--window", "5", "--port"};
	expect_load_error(ARGC(missing), missing, "--port");
	char *prefix[] = {"livegate", "--ring", "1024"};
	expect_load_error(ARGC(prefix), prefix, "--ring: unknown flag");
	char *longer[] = {"livegate", "--portx=1"};
	expect_load_error(ARGC(longer), longer, "--portx: unknown flag");
	char *positional[] = {"livegate", "stray"};
	expect_load_error(ARGC(positional), positional, "stray");
	char *empty_int[] = {"livegate", "--port="};
	expect_load_error(ARGC(empty_int), empty_int, "--port");
	char *rate[] = {"livegate", "--rate-uid", "0"};
	expect_load_error(ARGC(rate), rate, "--rate-uid");
	char *nofile[] = {"livegate", "--config", "/nonexistent/livegate.json"};
	expect_load_error(ARGC(nofile), nofile, "/nonexistent/livegate.json");
}

static void test_json_errors(void **state)
{
	(void)state;
	expect_json_error("{\"no_such_key\": 1}", "no_such_key");
	expect_json_error("{\"port\": \"eighty\"}", "port");
	expect_json_error("{\"port\": true}", "port");
	expect_json_error("{\"port\": 80.5}", "integer");
	expect_json_error("{\"port\": 0}", "port");
	expect_json_error("{\"port\": 99999999999999999999}", "port");
	expect_json_error("{\"rate_uid\": \"3\"}", "rate_uid");
	expect_json_error("{\"rate_uid\": NaN}", "rate_uid");
	expect_json_error("{\"bind\": 1}", "bind");
	expect_json_error("{\"bind\": \"a\\u0000b\"}", "bind");
	expect_json_error("{\"log_level\": \"loud\"}", "log_level");
	expect_json_error("{\"ring_slots\": 1000}", "ring_slots");
	expect_json_error("{\"config\": \"/etc/other.json\"}", "config");
	expect_json_error("{\"port\": 80,}", "JSON");
	expect_json_error("{\"port\": 80", "JSON");
	expect_json_error("", "JSON");
	expect_json_error("{} {}", "JSON");
	expect_json_error("[1]", "object");
	expect_json_error("null", "object");
}

static void test_file_errors(void **state)
{
	char path[64];
	(void)state;

	write_temp(path, sizeof(path), "{\n  \"port\": 80\n  \"window\": 5\n}\n");
	char *bad[] = {"livegate", "--config", path};
	expect_load_error(ARGC(bad), bad, path);
	expect_load_error(ARGC(bad), bad, "line 3");
	unlink(path);

	write_temp(path, sizeof(path), "{\"config\": \"/tmp/x.json\"}");
	char *nested[] = {"livegate", "--config", path};
	expect_load_error(ARGC(nested), nested, "config");
	unlink(path);

	write_temp(path, sizeof(path), "{\"gzip_level\": 10}");
	char *range[] = {"livegate", "--config", path};
	expect_load_error(ARGC(range), range, "gzip_level: 10 is out of range 1..9");
	unlink(path);
}

static void test_strict_numbers(void **state)
{
	struct gw_config cfg;
	char err[256];

	(void)state;
	expect_set_error("port", "12abc");
	expect_set_error("port", "");
	expect_set_error("port", " 1");
	expect_set_error("port", "1 ");
	expect_set_error("port", "+80");
	expect_set_error("port", "0x50");
	expect_set_error("port", "99999999999999999999");
	/* Overflow is reported as typed, not as the saturated strtoll() value. */
	assert_int_equal(gw_config_defaults(&cfg), 0);
	assert_int_equal(gw_config_set(&cfg, "port", "99999999999999999999", err, sizeof(err)), -1);
	assert_string_equal(err, "port: 99999999999999999999 is out of range 1..65535");
	gw_config_free(&cfg);
	expect_set_error("port", "-99999999999999999999");
	expect_set_error("workers", "-1");
	expect_set_error("rate_uid", "nan");
	expect_set_error("rate_uid", "inf");
	expect_set_error("rate_uid", "3x");
	expect_set_error("rate_uid", "");
	expect_set_error("rate_uid", "1e400");
	expect_set_error("burst_uid", "0.5");
	expect_set_error("blocked_words_mode", "Mask");
	expect_set_error("no_such_setting", "1");
}

static char *capture_load(char **argv, int argc, int *rc)
{
	struct gw_config cfg;
	char err[256] = "";
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	assert_non_null(out);
	*rc = gw_config_load(&cfg, argc, argv, out, err, sizeof(err));
	assert_int_equal(fclose(out), 0);
	gw_config_free(&cfg);
	return text;
}

static void test_help(void **state)
{
	char want[96];
	int rc;

	(void)state;
	/* --help wins over a --config that would fail: nothing is loaded. */
	char *argv[] = {"livegate", "--config", "/nonexistent.json", "--help"};
	char *text = capture_load(argv, ARGC(argv), &rc);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(text, "usage: livegate"));
	assert_non_null(strstr(text, "--help-markdown"));
	for (size_t i = 0; i < gw_config_table_len; i++) {
		size_t k = 0;

		k += (size_t)snprintf(want, sizeof(want), "--");
		for (const char *p = gw_config_table[i].name; *p; p++)
			want[k++] = *p == '_' ? '-' : *p;
		snprintf(want + k, sizeof(want) - k, " VALUE ");
		if (!strstr(text, want))
			fail_msg("--help does not list \"%s\"", want);
	}
	assert_non_null(strstr(text, "(default: 8080; range: 1..65535)"));
	assert_non_null(strstr(text, "one of: mask, reject"));
	/* Wrapped to the project's 100 columns. */
	for (const char *line = text; *line;) {
		size_t n = strcspn(line, "\n");

		assert_true(n <= 100);
		line += n + (line[n] == '\n');
	}
	free(text);

	char *shorth[] = {"livegate", "-h"};
	text = capture_load(shorth, ARGC(shorth), &rc);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(text, "--ring-slots VALUE"));
	free(text);
}

static void test_markdown(void **state)
{
	char want[160];
	int rc;

	(void)state;
	char *argv[] = {"livegate", "--help-markdown"};
	char *text = capture_load(argv, ARGC(argv), &rc);
	assert_int_equal(rc, 1);
	assert_memory_equal(text, "# livegate configuration\n", 25);
	assert_non_null(
	    strstr(text, "| key | flag | type | default | range / choices | meaning |"));
	for (size_t i = 0; i < gw_config_table_len; i++) {
		const char *name = gw_config_table[i].name;
		size_t k = (size_t)snprintf(want, sizeof(want), "\n| `%s` | `--", name);

		for (const char *p = name; *p; p++)
			want[k++] = *p == '_' ? '-' : *p;
		snprintf(want + k, sizeof(want) - k, "` |");
		if (!strstr(text, want))
			fail_msg("markdown has no row \"%s\"", want + 1);
	}
	assert_non_null(strstr(text, "| `ring_slots` | `--ring-slots` | int | `65536` | "
	                             "1024..4194304, power of two |"));
	assert_non_null(strstr(text, "| `rate_room` | `--rate-room` | double | `2000` | "
	                             "0.01..10000000 |"));
	assert_non_null(strstr(text, "`mask`, `reject`"));
	free(text);
}

static void test_free_zeroed(void **state)
{
	struct gw_config cfg;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	gw_config_free(&cfg);
	assert_null(cfg.bind);
	assert_int_equal(gw_config_defaults(&cfg), 0);
	assert_non_null(cfg.log_level);
	gw_config_free(&cfg);
	assert_null(cfg.bind);
	assert_null(cfg.log_level);
	gw_config_free(&cfg); /* twice is fine too */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_table_is_consistent),
	    cmocka_unit_test(test_set_strings_replace),
	    cmocka_unit_test(test_flags_override_file),
	    cmocka_unit_test(test_equals_form),
	    cmocka_unit_test(test_flag_errors),
	    cmocka_unit_test(test_json_errors),
	    cmocka_unit_test(test_file_errors),
	    cmocka_unit_test(test_strict_numbers),
	    cmocka_unit_test(test_help),
	    cmocka_unit_test(test_markdown),
	    cmocka_unit_test(test_free_zeroed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
