#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/catalog.h"

static char *write_tmp(const char *text)
{
	static char path[64];
	int fd;

	strcpy(path, "/tmp/lg_catalog_XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void test_builtin_catalog_serves_valid_json_with_etag(void **state)
{
	char err[256];
	struct gw_catalog *c = gw_catalog_load(NULL, err, sizeof(err));
	size_t len;
	const char *json;

	assert_non_null(c);
	assert_true(gw_catalog_count(c) >= 3);
	const struct gw_catalog_item *r = gw_catalog_find(c, "rocket", 6);
	assert_non_null(r);
	assert_int_equal(r->price, 1000);
	assert_string_equal(r->name, "Rocket");
	assert_null(gw_catalog_find(c, "rock", 4));
	json = gw_catalog_json(c, &len);
	struct json_object *o = json_tokener_parse(json);
	assert_non_null(o);
	assert_int_equal(strlen(json), len);
	json_object_put(o);
	const char *etag = gw_catalog_etag(c);
	assert_int_equal(strlen(etag), 18);
	assert_int_equal(etag[0], '"');
	assert_int_equal(etag[17], '"');
	gw_catalog_free(c);
}

static void test_file_catalog_and_etag_follows_content(void **state)
{
	char err[256], etag1[40];
	const char *p = write_tmp("{\"gifts\":[{\"id\":\"a\",\"name\":\"弹幕\",\"price\":5}]}");
	struct gw_catalog *c = gw_catalog_load(p, err, sizeof(err));
	struct gw_catalog *b = gw_catalog_load(NULL, err, sizeof(err));

	assert_non_null(c);
	assert_int_equal(gw_catalog_count(c), 1);
	assert_string_equal(gw_catalog_find(c, "a", 1)->name, "弹幕");
	strcpy(etag1, gw_catalog_etag(c));
	assert_string_not_equal(etag1, gw_catalog_etag(b));
	gw_catalog_free(c);
	c = gw_catalog_load(p, err, sizeof(err));
	assert_string_equal(etag1, gw_catalog_etag(c)); /* same bytes, same validator */
	unlink(p);
	gw_catalog_free(c);
	gw_catalog_free(b);
}

static void test_bad_catalogs_are_refused_with_a_reason(void **state)
{
	static const char *bad[] = {
		"not json",
		"{\"gifts\":{}}",
		"{\"gifts\":[]}",
		"{\"gifts\":[{\"id\":\"Rocket\",\"name\":\"x\",\"price\":1}]}",
		"{\"gifts\":[{\"id\":\"a\",\"name\":\"\",\"price\":1}]}",
		"{\"gifts\":[{\"id\":\"a\",\"name\":\"x\",\"price\":0}]}",
		"{\"gifts\":[{\"id\":\"a\",\"name\":\"x\",\"price\":\"5\"}]}",
		"{\"gifts\":[{\"id\":\"a\",\"name\":\"x\",\"price\":1},{\"id\":\"a\",\"name\":\"y\","
		"\"price\":2}]}",
	};
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *p = write_tmp(bad[i]);
		err[0] = 0;
		assert_null(gw_catalog_load(p, err, sizeof(err)));
		assert_true(strlen(err) > 0);
		unlink(p);
	}
	assert_null(gw_catalog_load("/nonexistent/catalog.json", err, sizeof(err)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin_catalog_serves_valid_json_with_etag),
		cmocka_unit_test(test_file_catalog_and_etag_follows_content),
		cmocka_unit_test(test_bad_catalogs_are_refused_with_a_reason),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
