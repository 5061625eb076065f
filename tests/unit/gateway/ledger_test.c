#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>

#include "gateway/ledger.h"

#define WINDOW 600000 /* ms */
#define T0 1763750000000LL

static struct gw_ledger_gift gift(const char *uid, const char *txn, const char *room,
				  const char *g, uint32_t count, const char *nonce, int64_t ts)
{
	return (struct gw_ledger_gift){
		.room = room, .room_len = strlen(room), .uid = uid, .uid_len = strlen(uid),
		.txn = txn, .txn_len = strlen(txn), .gift = g, .gift_len = strlen(g),
		.count = count, .nonce = nonce, .nonce_len = strlen(nonce), .ts = ts,
	};
}

static void test_new_then_retry_gets_identical_receipt(void **state)
{
	struct gw_ledger *l = gw_ledger_new(WINDOW);
	struct gw_ledger_gift g = gift("alice", "t1", "r1", "rocket", 2, "n1", T0);
	struct gw_ledger_gift retry = gift("alice", "t1", "r1", "rocket", 2, "n2", T0 + 5000);
	struct gw_buf rec;

	gw_buf_init(&rec, 0);
	assert_int_equal(gw_ledger_begin(l, &g, T0, &rec), GW_LEDGER_NEW);
	assert_int_equal(gw_ledger_commit(l, &g, "{\"receipt\":1}", 13), 0);
	/* Whatever its nonce and ts, a retry of the same content returns the stored receipt. */
	assert_int_equal(gw_ledger_begin(l, &retry, T0 + 5000, &rec), GW_LEDGER_DUPLICATE);
	assert_int_equal(rec.len, 13);
	assert_memory_equal(gw_buf_data(&rec), "{\"receipt\":1}", 13);
	gw_buf_reset(&rec);
	assert_int_equal(gw_ledger_begin(l, &g, T0 + 6000, &rec), GW_LEDGER_DUPLICATE);
	assert_int_equal(gw_ledger_txns(l), 1);
	gw_buf_free(&rec);
	gw_ledger_free(l);
}

static void test_same_txn_other_content_conflicts(void **state)
{
	struct gw_ledger *l = gw_ledger_new(WINDOW);
	struct gw_ledger_gift g = gift("alice", "t1", "r1", "rocket", 2, "n1", T0);
	struct gw_buf rec;

	gw_buf_init(&rec, 0);
	assert_int_equal(gw_ledger_begin(l, &g, T0, &rec), GW_LEDGER_NEW);
	gw_ledger_commit(l, &g, "x", 1);
	struct gw_ledger_gift other_room = gift("alice", "t1", "r2", "rocket", 2, "n9", T0);
	struct gw_ledger_gift other_gift = gift("alice", "t1", "r1", "rose", 2, "n9", T0);
	struct gw_ledger_gift other_count = gift("alice", "t1", "r1", "rocket", 3, "n9", T0);
	assert_int_equal(gw_ledger_begin(l, &other_room, T0, &rec), GW_LEDGER_CONFLICT);
	assert_int_equal(gw_ledger_begin(l, &other_gift, T0, &rec), GW_LEDGER_CONFLICT);
	assert_int_equal(gw_ledger_begin(l, &other_count, T0, &rec), GW_LEDGER_CONFLICT);
	assert_int_equal(rec.len, 0);
	/* The same txn id belongs to each uid separately. */
	struct gw_ledger_gift bob = gift("bob", "t1", "r2", "rose", 1, "n1", T0);
	assert_int_equal(gw_ledger_begin(l, &bob, T0, &rec), GW_LEDGER_NEW);
	gw_buf_free(&rec);
	gw_ledger_free(l);
}

static void test_new_txn_with_seen_nonce_is_replay_until_window_passes(void **state)
{
	struct gw_ledger *l = gw_ledger_new(WINDOW);
	struct gw_ledger_gift g = gift("alice", "t1", "r1", "rocket", 1, "n1", T0);
	struct gw_ledger_gift again = gift("alice", "t2", "r1", "rocket", 1, "n1", T0);
	struct gw_ledger_gift other_uid = gift("bob", "t2", "r1", "rocket", 1, "n1", T0);
	struct gw_buf rec;

	gw_buf_init(&rec, 0);
	assert_int_equal(gw_ledger_begin(l, &g, T0, &rec), GW_LEDGER_NEW);
	gw_ledger_commit(l, &g, "x", 1);
	assert_int_equal(gw_ledger_begin(l, &again, T0 + 1, &rec), GW_LEDGER_REPLAY);
	assert_int_equal(gw_ledger_begin(l, &again, T0 + WINDOW, &rec), GW_LEDGER_REPLAY);
	/* Nonces are per uid. */
	assert_int_equal(gw_ledger_begin(l, &other_uid, T0 + 1, &rec), GW_LEDGER_NEW);
	/* Past the window the nonce is forgotten (a copy would be stale by its ts anyway). */
	assert_int_equal(gw_ledger_begin(l, &again, T0 + WINDOW + 1, &rec), GW_LEDGER_NEW);
	gw_buf_free(&rec);
	gw_ledger_free(l);
}

static void test_nonce_kept_from_a_future_ts(void **state)
{
	struct gw_ledger *l = gw_ledger_new(WINDOW);
	int64_t future = T0 + 300000; /* a clock 5 minutes ahead, still inside the limit */
	struct gw_ledger_gift g = gift("alice", "t1", "r1", "rocket", 1, "n1", future);
	struct gw_ledger_gift again = gift("alice", "t2", "r1", "rocket", 1, "n1", future);
	struct gw_buf rec;

	gw_buf_init(&rec, 0);
	assert_int_equal(gw_ledger_begin(l, &g, T0, &rec), GW_LEDGER_NEW);
	assert_int_equal(gw_ledger_begin(l, &again, T0 + WINDOW + 1, &rec), GW_LEDGER_REPLAY);
	assert_int_equal(gw_ledger_begin(l, &again, future + WINDOW + 1, &rec), GW_LEDGER_NEW);
	gw_buf_free(&rec);
	gw_ledger_free(l);
}

static void test_pending_then_abort_frees_txn_and_nonce(void **state)
{
	struct gw_ledger *l = gw_ledger_new(WINDOW);
	struct gw_ledger_gift g = gift("alice", "t1", "r1", "rocket", 1, "n1", T0);
	struct gw_buf rec;

	gw_buf_init(&rec, 0);
	assert_int_equal(gw_ledger_begin(l, &g, T0, &rec), GW_LEDGER_NEW);
	assert_int_equal(gw_ledger_begin(l, &g, T0, &rec), GW_LEDGER_PENDING);
	gw_ledger_abort(l, &g);
	assert_int_equal(gw_ledger_txns(l), 0);
	assert_int_equal(gw_ledger_nonces(l), 0);
	/* Not journaled means not spent: the same request may go through again. */
	assert_int_equal(gw_ledger_begin(l, &g, T0, &rec), GW_LEDGER_NEW);
	/* commit of a txn that is not reserved fails */
	struct gw_ledger_gift stray = gift("carol", "t9", "r1", "rocket", 1, "n9", T0);
	assert_int_equal(gw_ledger_commit(l, &stray, "x", 1), -1);
	gw_buf_free(&rec);
	gw_ledger_free(l);
}

static void test_restore_rebuilds_txns_and_live_nonces(void **state)
{
	struct gw_ledger *l = gw_ledger_new(WINDOW);
	struct gw_ledger_gift old = gift("alice", "t1", "r1", "rocket", 1, "n-old", T0);
	struct gw_ledger_gift recent = gift("alice", "t2", "r1", "rocket", 1, "n-new", T0 + WINDOW);
	int64_t now = T0 + WINDOW + 1000;
	struct gw_buf rec;

	gw_buf_init(&rec, 0);
	assert_int_equal(gw_ledger_restore(l, &old, T0, now, "R1", 2), 0);
	assert_int_equal(gw_ledger_restore(l, &recent, T0 + WINDOW, now, "R2", 2), 0);
	assert_int_equal(gw_ledger_txns(l), 2);
	assert_int_equal(gw_ledger_nonces(l), 1); /* the old nonce's window had passed */
	assert_int_equal(gw_ledger_begin(l, &old, now, &rec), GW_LEDGER_DUPLICATE);
	assert_memory_equal(gw_buf_data(&rec), "R1", 2);
	struct gw_ledger_gift replay = gift("alice", "t3", "r1", "rocket", 1, "n-new", now);
	assert_int_equal(gw_ledger_begin(l, &replay, now, &rec), GW_LEDGER_REPLAY);
	gw_buf_free(&rec);
	gw_ledger_free(l);
}

struct race {
	struct gw_ledger *l;
	_Atomic int news, pendings, others;
};

static void *racer(void *arg)
{
	struct race *r = arg;
	struct gw_buf rec;

	gw_buf_init(&rec, 0);
	for (int i = 0; i < 2000; i++) {
		char txn[16];
		snprintf(txn, sizeof(txn), "t%d", i);
		struct gw_ledger_gift g = gift("alice", txn, "r1", "rocket", 1, txn, T0);
		switch (gw_ledger_begin(r->l, &g, T0, &rec)) {
		case GW_LEDGER_NEW:
			atomic_fetch_add(&r->news, 1);
			break;
		case GW_LEDGER_PENDING:
			atomic_fetch_add(&r->pendings, 1);
			break;
		default:
			atomic_fetch_add(&r->others, 1);
		}
	}
	gw_buf_free(&rec);
	return NULL;
}

static void test_concurrent_begins_reserve_each_txn_once(void **state)
{
	struct race r = {.l = gw_ledger_new(WINDOW)};
	pthread_t th[4];

	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, racer, &r);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	/* 4 threads each tried the same 2000 txns: exactly one NEW per txn. */
	assert_int_equal(r.news, 2000);
	assert_int_equal(r.pendings, 3 * 2000);
	assert_int_equal(r.others, 0);
	gw_ledger_free(r.l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_then_retry_gets_identical_receipt),
		cmocka_unit_test(test_same_txn_other_content_conflicts),
		cmocka_unit_test(test_new_txn_with_seen_nonce_is_replay_until_window_passes),
		cmocka_unit_test(test_nonce_kept_from_a_future_ts),
		cmocka_unit_test(test_pending_then_abort_frees_txn_and_nonce),
		cmocka_unit_test(test_restore_rebuilds_txns_and_live_nonces),
		cmocka_unit_test(test_concurrent_begins_reserve_each_txn_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
