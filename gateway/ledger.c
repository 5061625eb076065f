/* The gift ledger. See ledger.h for the rules and the locking. */
#include "gateway/ledger.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/map.h"

struct txn {
	bool done;
	uint32_t count;
	size_t room_len, gift_len, receipt_len;
	char *receipt;
	char room[65];
	char gift[33];
};

/* A remembered nonce; also a node of the expiry FIFO. The map key is uid NUL nonce. */
struct nonce {
	struct nonce *prev, *next;
	int64_t expires_ms;
	size_t klen;
	char key[];
};

struct gw_ledger {
	pthread_mutex_t lock;
	int64_t window_ms;
	struct gw_map *txns;   /* uid NUL txn -> struct txn */
	struct gw_map *nonces; /* uid NUL nonce -> struct nonce */
	struct nonce *oldest, *newest;
};

/* uid NUL rest: unambiguous since neither part contains NUL. Returns length, 0 if too long. */
static size_t make_key(char *out, size_t cap, const char *uid, size_t ul, const char *s, size_t sl)
{
	if (ul + 1 + sl > cap)
		return 0;
	memcpy(out, uid, ul);
	out[ul] = '\0';
	memcpy(out + ul + 1, s, sl);
	return ul + 1 + sl;
}

static void free_txn(void *v)
{
	struct txn *t = v;

	free(t->receipt);
	free(t);
}

struct gw_ledger *gw_ledger_new(int64_t nonce_window_ms)
{
	struct gw_ledger *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->window_ms = nonce_window_ms;
	l->txns = gw_map_new();
	l->nonces = gw_map_new();
	if (!l->txns || !l->nonces || pthread_mutex_init(&l->lock, NULL)) {
		gw_map_free(l->txns, NULL);
		gw_map_free(l->nonces, NULL);
		free(l);
		return NULL;
	}
	return l;
}

void gw_ledger_free(struct gw_ledger *l)
{
	if (!l)
		return;
	gw_map_free(l->txns, free_txn);
	gw_map_free(l->nonces, free); /* the FIFO nodes are the map's values */
	pthread_mutex_destroy(&l->lock);
	free(l);
}

static void nonce_unlink(struct gw_ledger *l, struct nonce *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		l->oldest = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		l->newest = n->prev;
}

/* Forget nonces whose window passed. Expiries are nearly FIFO; a late one just waits. */
static void prune(struct gw_ledger *l, int64_t now_ms)
{
	while (l->oldest && l->oldest->expires_ms < now_ms) {
		struct nonce *n = l->oldest;

		nonce_unlink(l, n);
		gw_map_del(l->nonces, n->key, n->klen);
		free(n);
	}
}

static int nonce_add(struct gw_ledger *l, const char *key, size_t klen, int64_t expires_ms)
{
	struct nonce *n = malloc(sizeof(*n) + klen);

	if (!n)
		return -1;
	n->expires_ms = expires_ms;
	n->klen = klen;
	memcpy(n->key, key, klen);
	if (gw_map_put(l->nonces, key, klen, n, NULL)) {
		free(n);
		return -1;
	}
	n->next = NULL;
	n->prev = l->newest;
	if (l->newest)
		l->newest->next = n;
	else
		l->oldest = n;
	l->newest = n;
	return 0;
}

static bool same_content(const struct txn *t, const struct gw_ledger_gift *g)
{
	return t->count == g->count && t->room_len == g->room_len &&
	       !memcmp(t->room, g->room, g->room_len) && t->gift_len == g->gift_len &&
	       !memcmp(t->gift, g->gift, g->gift_len);
}

static struct txn *txn_new(const struct gw_ledger_gift *g)
{
	struct txn *t;

	if (g->room_len >= sizeof(t->room) || g->gift_len >= sizeof(t->gift))
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->count = g->count;
	t->room_len = g->room_len;
	t->gift_len = g->gift_len;
	memcpy(t->room, g->room, g->room_len);
	memcpy(t->gift, g->gift, g->gift_len);
	return t;
}

enum gw_ledger_verdict gw_ledger_begin(struct gw_ledger *l, const struct gw_ledger_gift *g,
				       int64_t now_ms, struct gw_buf *receipt)
{
	char tkey[200], nkey[400];
	size_t tk = make_key(tkey, sizeof(tkey), g->uid, g->uid_len, g->txn, g->txn_len);
	size_t nk = make_key(nkey, sizeof(nkey), g->uid, g->uid_len, g->nonce, g->nonce_len);
	enum gw_ledger_verdict v;
	struct txn *t;

	if (!tk || !nk)
		return GW_LEDGER_NOMEM; /* callers validate lengths first; never happens */
	pthread_mutex_lock(&l->lock);
	prune(l, now_ms);
	t = gw_map_get(l->txns, tkey, tk);
	if (t) {
		if (!same_content(t, g))
			v = GW_LEDGER_CONFLICT;
		else if (!t->done)
			v = GW_LEDGER_PENDING;
		else
			v = gw_buf_append(receipt, t->receipt, t->receipt_len) ? GW_LEDGER_NOMEM
									       : GW_LEDGER_DUPLICATE;
		goto out;
	}
	if (gw_map_get(l->nonces, nkey, nk)) {
		v = GW_LEDGER_REPLAY;
		goto out;
	}
	t = txn_new(g);
	if (!t || gw_map_put(l->txns, tkey, tk, t, NULL)) {
		free(t);
		v = GW_LEDGER_NOMEM;
		goto out;
	}
	if (nonce_add(l, nkey, nk, (g->ts > now_ms ? g->ts : now_ms) + l->window_ms)) {
		free_txn(gw_map_del(l->txns, tkey, tk));
		v = GW_LEDGER_NOMEM;
		goto out;
	}
	v = GW_LEDGER_NEW;
out:
	pthread_mutex_unlock(&l->lock);
	return v;
}

int gw_ledger_commit(struct gw_ledger *l, const struct gw_ledger_gift *g, const char *receipt,
		     size_t len)
{
	char tkey[200];
	size_t tk = make_key(tkey, sizeof(tkey), g->uid, g->uid_len, g->txn, g->txn_len);
	char *copy = malloc(len ? len : 1);
	struct txn *t;
	int rc = -1;

	if (!copy)
		return -1;
	memcpy(copy, receipt, len);
	pthread_mutex_lock(&l->lock);
	t = tk ? gw_map_get(l->txns, tkey, tk) : NULL;
	if (t && !t->done) {
		t->receipt = copy;
		t->receipt_len = len;
		t->done = true;
		copy = NULL;
		rc = 0;
	}
	pthread_mutex_unlock(&l->lock);
	free(copy);
	return rc;
}

void gw_ledger_abort(struct gw_ledger *l, const struct gw_ledger_gift *g)
{
	char tkey[200], nkey[400];
	size_t tk = make_key(tkey, sizeof(tkey), g->uid, g->uid_len, g->txn, g->txn_len);
	size_t nk = make_key(nkey, sizeof(nkey), g->uid, g->uid_len, g->nonce, g->nonce_len);
	struct txn *t;
	struct nonce *n;

	pthread_mutex_lock(&l->lock);
	t = tk ? gw_map_get(l->txns, tkey, tk) : NULL;
	if (t && !t->done) {
		free_txn(gw_map_del(l->txns, tkey, tk));
		n = nk ? gw_map_del(l->nonces, nkey, nk) : NULL;
		if (n) {
			nonce_unlink(l, n);
			free(n);
		}
	}
	pthread_mutex_unlock(&l->lock);
}

int gw_ledger_restore(struct gw_ledger *l, const struct gw_ledger_gift *g, int64_t accepted_ms,
		      int64_t now_ms, const char *receipt, size_t len)
{
	char tkey[200], nkey[400];
	size_t tk = make_key(tkey, sizeof(tkey), g->uid, g->uid_len, g->txn, g->txn_len);
	size_t nk = make_key(nkey, sizeof(nkey), g->uid, g->uid_len, g->nonce, g->nonce_len);
	int64_t expires = (g->ts > accepted_ms ? g->ts : accepted_ms) + l->window_ms;
	struct txn *t = NULL;
	int rc = -1;

	if (!tk || !nk)
		return -1;
	pthread_mutex_lock(&l->lock);
	if (gw_map_get(l->txns, tkey, tk)) {
		rc = 0; /* the journal holds each txn once; tolerate a repeat anyway */
		goto out;
	}
	t = txn_new(g);
	if (!t)
		goto out;
	t->receipt = malloc(len ? len : 1);
	if (!t->receipt)
		goto out;
	memcpy(t->receipt, receipt, len);
	t->receipt_len = len;
	t->done = true;
	if (gw_map_put(l->txns, tkey, tk, t, NULL))
		goto out;
	t = NULL;
	if (expires >= now_ms && !gw_map_get(l->nonces, nkey, nk) &&
	    nonce_add(l, nkey, nk, expires))
		goto out;
	rc = 0;
out:
	if (t)
		free_txn(t);
	pthread_mutex_unlock(&l->lock);
	return rc;
}

size_t gw_ledger_txns(struct gw_ledger *l)
{
	size_t n;

	pthread_mutex_lock(&l->lock);
	n = gw_map_count(l->txns);
	pthread_mutex_unlock(&l->lock);
	return n;
}

size_t gw_ledger_nonces(struct gw_ledger *l)
{
	size_t n;

	pthread_mutex_lock(&l->lock);
	n = gw_map_count(l->nonces);
	pthread_mutex_unlock(&l->lock);
	return n;
}
