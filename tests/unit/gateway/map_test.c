#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/map.h"

static void test_put_get_replace_delete(void **state)
{
	struct gw_map *m = gw_map_new();
	void *old = (void *)1;
	int a, b;

	assert_non_null(m);
	assert_null(gw_map_get(m, "k", 1));
	assert_int_equal(gw_map_put(m, "k", 1, &a, &old), 0);
	assert_null(old);
	assert_ptr_equal(gw_map_get(m, "k", 1), &a);
	assert_int_equal(gw_map_put(m, "k", 1, &b, &old), 0);
	assert_ptr_equal(old, &a);
	assert_ptr_equal(gw_map_get(m, "k", 1), &b);
	assert_int_equal(gw_map_count(m), 1);
	assert_ptr_equal(gw_map_del(m, "k", 1), &b);
	assert_null(gw_map_get(m, "k", 1));
	assert_null(gw_map_del(m, "k", 1));
	assert_int_equal(gw_map_count(m), 0);
	gw_map_free(m, NULL);
}

static void test_keys_are_bytes_not_strings(void **state)
{
	struct gw_map *m = gw_map_new();
	int a, b;

	/* "a\0b" and "a\0c" differ only after the NUL; "a" is a prefix of both. */
	gw_map_put(m, "a\0b", 3, &a, NULL);
	gw_map_put(m, "a\0c", 3, &b, NULL);
	assert_ptr_equal(gw_map_get(m, "a\0b", 3), &a);
	assert_ptr_equal(gw_map_get(m, "a\0c", 3), &b);
	assert_null(gw_map_get(m, "a", 1));
	gw_map_free(m, NULL);
}

struct sum {
	size_t n;
	long total;
};

static void add(void *arg, const void *key, size_t klen, void *value)
{
	struct sum *s = arg;

	s->n++;
	s->total += *(int *)value;
}

static void test_many_keys_survive_growth(void **state)
{
	enum { N = 50000 };
	struct gw_map *m = gw_map_new();
	int *vals = malloc(N * sizeof(int));
	char key[32];
	struct sum s = {0};
	long expect = 0;

	for (int i = 0; i < N; i++) {
		vals[i] = i;
		expect += i;
		snprintf(key, sizeof(key), "key-%d", i);
		assert_int_equal(gw_map_put(m, key, strlen(key), &vals[i], NULL), 0);
	}
	assert_int_equal(gw_map_count(m), N);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		int *v = gw_map_get(m, key, strlen(key));
		assert_non_null(v);
		assert_int_equal(*v, i);
	}
	gw_map_each(m, add, &s);
	assert_int_equal(s.n, N);
	assert_int_equal(s.total, expect);
	for (int i = 0; i < N; i += 2) {
		snprintf(key, sizeof(key), "key-%d", i);
		assert_ptr_equal(gw_map_del(m, key, strlen(key)), &vals[i]);
	}
	assert_int_equal(gw_map_count(m), N / 2);
	snprintf(key, sizeof(key), "key-%d", 1);
	assert_ptr_equal(gw_map_get(m, key, strlen(key)), &vals[1]);
	gw_map_free(m, NULL);
	free(vals);
}

static void test_free_calls_free_value(void **state)
{
	struct gw_map *m = gw_map_new();

	for (int i = 0; i < 100; i++) {
		char key[8];
		snprintf(key, sizeof(key), "%d", i);
		gw_map_put(m, key, strlen(key), malloc(16), NULL);
	}
	gw_map_free(m, free); /* LeakSanitizer checks each value was freed */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get_replace_delete),
		cmocka_unit_test(test_keys_are_bytes_not_strings),
		cmocka_unit_test(test_many_keys_survive_growth),
		cmocka_unit_test(test_free_calls_free_value),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
