/*
 * Tests for transport/static.c: which paths are the player's, that the embedded
 * files are the ones in web/ (sizes, quoted hash ETags), and If-None-Match
 * parsing (lists, weak tags, "*", near misses).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "transport/internal.h"

#include <stdio.h>
#include <string.h>

static void test_paths(void **state)
{
	(void)state;
	assert_true(tp_static_match("/"));
	assert_true(tp_static_match("/livegate.js"));
	assert_true(tp_static_match("/player.js"));
	assert_true(tp_static_match("/player.css"));
	assert_false(tp_static_match(""));
	assert_false(tp_static_match("/index.html"));
	assert_false(tp_static_match("/livegate.js/"));
	assert_false(tp_static_match("/embed.cmake"));
	assert_false(tp_static_match("/healthz"));
	assert_false(tp_static_match("/v1/rooms/a/poll"));
}

static void test_embedded_files_match_web_folder(void **state)
{
	static const char *const names[] = {"index.html", "livegate.js", "player.js", "player.css"};
	(void)state;
	assert_int_equal(tp_web_nfiles, 4);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const struct tp_web_file *f = NULL;
		char path[512];
		FILE *fp;
		long size;

		for (size_t j = 0; j < tp_web_nfiles; j++)
			if (!strcmp(tp_web_files[j].name, names[i]))
				f = &tp_web_files[j];
		assert_non_null(f);
		snprintf(path, sizeof(path), "%s/web/%s", LG_SOURCE_DIR, names[i]);
		fp = fopen(path, "rb");
		assert_non_null(fp);
		assert_int_equal(fseek(fp, 0, SEEK_END), 0);
		size = ftell(fp);
		fclose(fp);
		assert_int_equal((long)f->len, size);
		assert_true(f->len > 0);
		assert_int_equal(strlen(f->etag), 22);
		assert_int_equal(f->etag[0], '"');
		assert_int_equal(f->etag[21], '"');
		assert_int_equal(strspn(f->etag + 1, "0123456789abcdef"), 20);
	}
}

static void test_etag_match(void **state)
{
	const char *tag = "\"0123456789abcdef0123\"";
	(void)state;
	assert_true(tp_etag_match("\"0123456789abcdef0123\"", tag));
	assert_true(tp_etag_match("W/\"0123456789abcdef0123\"", tag));
	assert_true(tp_etag_match("*", tag));
	assert_true(tp_etag_match(" * ", tag));
	assert_true(tp_etag_match("\"x\", \"0123456789abcdef0123\"", tag));
	assert_true(tp_etag_match("\"x\",W/\"0123456789abcdef0123\" ,\"y\"", tag));
	assert_true(tp_etag_match(",,\"0123456789abcdef0123\",,", tag));
	assert_false(tp_etag_match("", tag));
	assert_false(tp_etag_match(",", tag));
	assert_false(tp_etag_match("W/", tag));
	assert_false(tp_etag_match("\"x\", \"y\"", tag));
	assert_false(tp_etag_match("0123456789abcdef0123", tag)); /* unquoted */
	assert_false(tp_etag_match("\"0123456789abcdef012\"", tag));
	assert_false(tp_etag_match("\"0123456789abcdef01234\"", tag));
	assert_false(tp_etag_match("\"0123456789abcdef0123\"x", tag));
	assert_false(tp_etag_match("**", tag));
	assert_false(tp_etag_match("w/\"0123456789abcdef0123\"", tag)); /* W/ is case-sensitive */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_paths),
	    cmocka_unit_test(test_embedded_files_match_web_folder),
	    cmocka_unit_test(test_etag_match),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
