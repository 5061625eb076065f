/*
 * Tests for gateway/buf.c: growth keeps the bytes, headroom stays in front of
 * the data, printf and the integer writers, reset and free/reuse.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "gateway/buf.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void test_init_is_empty(void **state)
{
	struct gw_buf b;

	(void)state;
	gw_buf_init(&b, 16);
	assert_int_equal(b.len, 0);
	assert_null(gw_buf_data(&b));
	assert_int_equal(b.head, 16);
	gw_buf_free(&b);
}

static void test_growth_keeps_content(void **state)
{
	struct gw_buf b;
	size_t total = 0;

	(void)state;
	gw_buf_init(&b, 0);
	/* Append 1, 2, 3, ... byte chunks of a running pattern well past several doublings. */
	for (size_t chunk = 1; total < 200000; chunk++) {
		char tmp[1024];
		size_t n = chunk % sizeof(tmp);

		for (size_t i = 0; i < n; i++)
			tmp[i] = (char)((total + i) * 31 % 251);
		assert_int_equal(gw_buf_append(&b, tmp, n), 0);
		total += n;
		assert_int_equal(b.len, total);
		assert_true(b.cap >= b.len);
	}
	for (size_t i = 0; i < total; i++)
		if (gw_buf_data(&b)[i] != (char)(i * 31 % 251))
			fail_msg("byte %zu lost across growth", i);
	gw_buf_free(&b);
}

static void test_headroom_preserved(void **state)
{
	const size_t rooms[] = {0, 1, 16, 100};

	(void)state;
	for (size_t k = 0; k < sizeof(rooms) / sizeof(rooms[0]); k++) {
		struct gw_buf b;
		size_t room = rooms[k];

		gw_buf_init(&b, room);
		for (int i = 0; i < 5000; i++) {
			assert_int_equal(gw_buf_putc(&b, (char)('a' + i % 26)), 0);
			assert_int_equal(gw_buf_data(&b) - b.base, (ptrdiff_t)room);
		}
		/* The headroom is writable (LWS_PRE use): fill it, the data stays. */
		memset(b.base, 0x5a, room);
		for (int i = 0; i < 5000; i++)
			assert_int_equal(gw_buf_data(&b)[i], 'a' + i % 26);
		gw_buf_free(&b);
	}
}

static void test_reserve_gives_writable_space(void **state)
{
	struct gw_buf b;

	(void)state;
	gw_buf_init(&b, 8);
	assert_int_equal(gw_buf_puts(&b, "abc"), 0);
	assert_int_equal(gw_buf_reserve(&b, 10000), 0);
	assert_true(b.cap >= b.len + 10000);
	/* Writing into reserved space must not touch len or corrupt data. */
	memset(gw_buf_data(&b) + b.len, 'x', 10000);
	assert_int_equal(b.len, 3);
	assert_memory_equal(gw_buf_data(&b), "abc", 3);
	/* A reserve that already fits keeps the allocation. */
	char *before = b.base;
	assert_int_equal(gw_buf_reserve(&b, 100), 0);
	assert_ptr_equal(b.base, before);
	/* A reserve that overflows size_t is refused and the buffer is unchanged. */
	assert_int_equal(gw_buf_reserve(&b, SIZE_MAX), -1);
	assert_int_equal(b.len, 3);
	assert_memory_equal(gw_buf_data(&b), "abc", 3);
	gw_buf_free(&b);
}

static void test_append_and_puts(void **state)
{
	struct gw_buf b;

	(void)state;
	gw_buf_init(&b, 4);
	assert_int_equal(gw_buf_puts(&b, "hello"), 0);
	assert_int_equal(gw_buf_putc(&b, ' '), 0);
	assert_int_equal(gw_buf_append(&b, "world!!!", 5), 0);
	assert_int_equal(gw_buf_append(&b, "", 0), 0);
	assert_int_equal(gw_buf_puts(&b, ""), 0);
	assert_int_equal(gw_buf_append(&b, "\0z", 2), 0);
	assert_int_equal(b.len, 13);
	assert_memory_equal(gw_buf_data(&b), "hello world\0z", 13);
	gw_buf_free(&b);
}

static void test_printf(void **state)
{
	struct gw_buf b;
	char big[5000], want[6000];

	(void)state;
	gw_buf_init(&b, 32);
	assert_int_equal(gw_buf_printf(&b, "%s=%d;", "x", -42), 0);
	assert_int_equal(gw_buf_printf(&b, "%s", ""), 0);
	assert_int_equal(gw_buf_printf(&b, "[%05.1f]", 3.14159), 0);
	assert_int_equal(b.len, strlen("x=-42;[003.1]"));
	assert_memory_equal(gw_buf_data(&b), "x=-42;[003.1]", b.len);

	/* A result larger than the current capacity: grows and keeps the prefix. */
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(gw_buf_printf(&b, "<%s>%zu", big, sizeof(big)), 0);
	snprintf(want, sizeof(want), "x=-42;[003.1]<%s>%zu", big, sizeof(big));
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(gw_buf_data(&b), want, b.len);
	assert_int_equal(gw_buf_data(&b) - b.base, 32);
	gw_buf_free(&b);
}

static void check_u64(uint64_t v)
{
	struct gw_buf b;
	char want[32];

	gw_buf_init(&b, 0);
	assert_int_equal(gw_buf_puts(&b, "<"), 0);
	assert_int_equal(gw_buf_put_u64(&b, v), 0);
	assert_int_equal(gw_buf_puts(&b, ">"), 0);
	snprintf(want, sizeof(want), "<%" PRIu64 ">", v);
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(gw_buf_data(&b), want, b.len);
	gw_buf_free(&b);
}

static void check_i64(int64_t v)
{
	struct gw_buf b;
	char want[32];

	gw_buf_init(&b, 0);
	assert_int_equal(gw_buf_puts(&b, "<"), 0);
	assert_int_equal(gw_buf_put_i64(&b, v), 0);
	assert_int_equal(gw_buf_puts(&b, ">"), 0);
	snprintf(want, sizeof(want), "<%" PRId64 ">", v);
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(gw_buf_data(&b), want, b.len);
	gw_buf_free(&b);
}

static void test_put_u64_edges(void **state)
{
	(void)state;
	check_u64(0);
	check_u64(1);
	check_u64(9);
	check_u64(10);
	check_u64(UINT64_MAX);
	check_u64(UINT64_MAX - 1);
	check_u64(10000000000000000000ull);
	for (uint64_t v = 1; v && v < UINT64_MAX / 3; v = v * 3 + 1)
		check_u64(v);
}

static void test_put_i64_edges(void **state)
{
	(void)state;
	check_i64(0);
	check_i64(-1);
	check_i64(1);
	check_i64(INT64_MIN);
	check_i64(INT64_MIN + 1);
	check_i64(INT64_MAX);
	check_i64(-1000000007);
	for (int64_t v = 1; v < INT64_MAX / 7; v = v * 7 + 3) {
		check_i64(v);
		check_i64(-v);
	}
}

static void test_reset_keeps_capacity(void **state)
{
	struct gw_buf b;
	char *base;
	size_t cap;

	(void)state;
	gw_buf_init(&b, 8);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(gw_buf_puts(&b, "0123456789"), 0);
	base = b.base;
	cap = b.cap;
	gw_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, cap);
	assert_ptr_equal(b.base, base);
	assert_int_equal(gw_buf_data(&b) - b.base, 8);
	/* Refilling to the same size needs no new allocation. */
	for (int i = 0; i < 1000; i++)
		assert_int_equal(gw_buf_puts(&b, "abcdefghij"), 0);
	assert_ptr_equal(b.base, base);
	assert_int_equal(b.cap, cap);
	assert_int_equal(b.len, 10000);
	assert_memory_equal(gw_buf_data(&b), "abcdefghij", 10);
	assert_memory_equal(gw_buf_data(&b) + 9990, "abcdefghij", 10);
	gw_buf_free(&b);
}

static void test_free_then_reuse(void **state)
{
	struct gw_buf b;

	(void)state;
	gw_buf_init(&b, 12);
	assert_int_equal(gw_buf_puts(&b, "first life"), 0);
	gw_buf_free(&b);
	assert_int_equal(b.len, 0);
	assert_null(gw_buf_data(&b));
	gw_buf_free(&b); /* twice is harmless */
	assert_int_equal(gw_buf_puts(&b, "second"), 0);
	assert_int_equal(gw_buf_put_u64(&b, 42), 0);
	assert_int_equal(b.len, 8);
	assert_memory_equal(gw_buf_data(&b), "second42", 8);
	assert_int_equal(gw_buf_data(&b) - b.base, 12);
	gw_buf_free(&b);
	/* An unused buffer can be freed too. */
	gw_buf_init(&b, 0);
	gw_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_is_empty),
		cmocka_unit_test(test_growth_keeps_content),
		cmocka_unit_test(test_headroom_preserved),
		cmocka_unit_test(test_reserve_gives_writable_space),
		cmocka_unit_test(test_append_and_puts),
		cmocka_unit_test(test_printf),
		cmocka_unit_test(test_put_u64_edges),
		cmocka_unit_test(test_put_i64_edges),
		cmocka_unit_test(test_reset_keeps_capacity),
		cmocka_unit_test(test_free_then_reuse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
