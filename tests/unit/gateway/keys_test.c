#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/keys.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
	strcpy(dir, "/tmp/lg_keys_XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/keys.log", dir);
	return 0;
}

static int teardown(void **state)
{
	unlink(path);
	rmdir(dir);
	return 0;
}

static void fill(unsigned char pk[32], unsigned char v)
{
	for (int i = 0; i < 32; i++)
		pk[i] = (unsigned char)(v + i);
}

static void test_put_get_and_survive_reopen(void **state)
{
	char err[256];
	unsigned char a[32], b[32], got[32];
	struct gw_err e;
	struct gw_keys *k = gw_keys_open(dir, err, sizeof(err));

	assert_non_null(k);
	fill(a, 1);
	fill(b, 100);
	assert_false(gw_keys_get(k, "alice", 5, got));
	assert_int_equal(gw_keys_put(k, "alice", 5, a, &e), 0);
	assert_int_equal(gw_keys_put(k, "bob", 3, a, &e), 0);
	assert_int_equal(gw_keys_put(k, "alice", 5, b, &e), 0); /* replace */
	assert_true(gw_keys_get(k, "alice", 5, got));
	assert_memory_equal(got, b, 32);
	gw_keys_free(k);

	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	k = gw_keys_open(dir, err, sizeof(err));
	assert_non_null(k);
	assert_int_equal(gw_keys_count(k), 2);
	assert_true(gw_keys_get(k, "alice", 5, got));
	assert_memory_equal(got, b, 32); /* the later line wins */
	assert_true(gw_keys_get(k, "bob", 3, got));
	assert_memory_equal(got, a, 32);
	gw_keys_free(k);
}

static void test_torn_last_line_is_cut(void **state)
{
	char err[256];
	unsigned char a[32], got[32];
	struct gw_err e;
	struct gw_keys *k = gw_keys_open(dir, err, sizeof(err));
	struct stat st;

	fill(a, 7);
	gw_keys_put(k, "alice", 5, a, &e);
	gw_keys_free(k);
	assert_int_equal(stat(path, &st), 0);
	off_t whole = st.st_size;
	int fd = open(path, O_WRONLY | O_APPEND);
	assert_int_equal(write(fd, "bob 0102", 8), 8); /* a crash mid-line */
	close(fd);
	k = gw_keys_open(dir, err, sizeof(err));
	assert_non_null(k);
	assert_int_equal(gw_keys_count(k), 1);
	assert_false(gw_keys_get(k, "bob", 3, got));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, whole);
	gw_keys_put(k, "carol", 5, a, &e);
	gw_keys_free(k);
	k = gw_keys_open(dir, err, sizeof(err));
	assert_true(gw_keys_get(k, "carol", 5, got));
	gw_keys_free(k);
}

static void test_corrupt_line_refuses_to_open(void **state)
{
	char err[256] = "";
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_int_equal(write(fd, "alice zz\n", 9), 9);
	close(fd);
	assert_null(gw_keys_open(dir, err, sizeof(err)));
	assert_non_null(strstr(err, ":1:"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_get_and_survive_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_last_line_is_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_line_refuses_to_open, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
