/*
 * nm_heap: ordering, re-arming both ways, cancelling from the middle, and a
 * long random sequence of operations checked against a plain array.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "netem/heap.h"
#include "netem/sched.h"

static void test_order(void **state)
{
	struct nm_heap h = {0};
	struct nm_timer t[5];
	static const int64_t when[5] = {50, 10, 40, 20, 30};
	int i;

	(void)state;
	assert_null(nm_heap_top(&h));
	for (i = 0; i < 5; i++) {
		nm_timer_init(&t[i]);
		assert_false(nm_timer_armed(&t[i]));
		assert_int_equal(nm_heap_arm(&h, &t[i], when[i]), 0);
		assert_true(nm_timer_armed(&t[i]));
	}
	assert_ptr_equal(nm_heap_top(&h), &t[1]);
	/* later: t[1] moves behind; earlier: t[0] comes first */
	assert_int_equal(nm_heap_arm(&h, &t[1], 45), 0);
	assert_ptr_equal(nm_heap_top(&h), &t[3]);
	assert_int_equal(nm_heap_arm(&h, &t[0], 5), 0);
	assert_ptr_equal(nm_heap_top(&h), &t[0]);
	/* cancel from the middle, and twice */
	nm_heap_disarm(&h, &t[4]);
	nm_heap_disarm(&h, &t[4]);
	assert_false(nm_timer_armed(&t[4]));
	{
		static const int want[] = {0, 3, 2, 1};

		for (i = 0; i < 4; i++) {
			struct nm_timer *top = nm_heap_top(&h);

			assert_ptr_equal(top, &t[want[i]]);
			nm_heap_disarm(&h, top);
		}
	}
	assert_null(nm_heap_top(&h));
	nm_heap_free(&h);
}

#define N 500

/* Random arm / re-arm / disarm / pop; the top must always be a minimum of the armed set. */
static void test_random_against_scan(void **state)
{
	struct nm_heap h = {0};
	struct nm_timer t[N];
	struct nm_rng g;
	int i, op, armed = 0;

	(void)state;
	nm_rng_seed(&g, 99);
	for (i = 0; i < N; i++)
		nm_timer_init(&t[i]);
	for (op = 0; op < 200000; op++) {
		struct nm_timer *x = &t[nm_rng_next(&g) % N], *top;
		int64_t min = INT64_MAX;
		int kind = (int)(nm_rng_next(&g) % 4);

		if (kind <= 1) {
			armed += !nm_timer_armed(x);
			assert_int_equal(nm_heap_arm(&h, x, nm_rng_range(&g, 0, 1000)), 0);
		} else if (kind == 2) {
			armed -= nm_timer_armed(x);
			nm_heap_disarm(&h, x);
		} else if ((top = nm_heap_top(&h))) {
			nm_heap_disarm(&h, top);
			armed--;
		}
		assert_int_equal(h.n, armed);
		for (i = 0; i < N; i++) {
			if (nm_timer_armed(&t[i])) {
				assert_ptr_equal(h.v[t[i].idx], &t[i]);
				if (t[i].when < min)
					min = t[i].when;
			}
		}
		top = nm_heap_top(&h);
		if (armed)
			assert_int_equal(top->when, min);
		else
			assert_null(top);
	}
	nm_heap_free(&h);
	for (i = 0; i < N; i++)
		assert_false(nm_timer_armed(&t[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order),
	    cmocka_unit_test(test_random_against_scan),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
