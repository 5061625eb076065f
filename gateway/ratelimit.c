/*
 * gw_ratelimit: token buckets keyed by string, bounded by LRU (see
 * ratelimit.h).
 *
 * Every post takes a token for its uid and its room, from any worker thread,
 * so the table is split into stripes by key hash, each with its own mutex,
 * chained hash table and intrusive LRU list. The stripe count is a power of
 * two up to 64 but keeps at least 32 keys per stripe: LRU order is exact only
 * within a stripe, and a small table (the tests, a tiny deployment) should
 * evict the truly least recent key. max_keys is split exactly (the first
 * max_keys % nstripes stripes take one more), so the total never exceeds it.
 *
 * A bucket is a token count (double, since rate and burst need not be
 * integers) and the time it was last brought up to date. Tokens are refilled
 * lazily on take. Rounding noise in the doubles must not make a caller who
 * waited retry_after_ms get refused again, so a take accepts a bucket short of
 * one token by up to TAKE_SLACK, and the wait is computed for a slightly
 * smaller deficit (WAIT_SLACK < TAKE_SLACK): "ceil" of an exact 400.0 that
 * comes out as 400.00000000000006 still says 400. Tokens granted early this way
 * are carried as a (tiny) negative balance, so the slack never adds up.
 *
 * Time is passed in by the caller (monotonic ms) so tests are deterministic.
 * Concurrent callers may pass slightly out-of-order times for one key; an
 * older time never refills nor moves the bucket's clock back.
 *
 * Every take, granted or refused, makes its key the most recent: a key that
 * is being refused is active, and forgetting it would hand it a full bucket.
 * A key evicted (or never stored because memory ran out) simply starts again
 * with a full bucket, which is what the header promises for forgotten keys.
 *
 * Threads: gw_ratelimit_take and gw_ratelimit_keys from any thread; new and
 * free by the owner, with no take running.
 */
#include "gateway/ratelimit.h"

#include <float.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STRIPES         64
#define MIN_KEYS_PER_STRIPE 32
#define MIN_BUCKETS         16
#define TAKE_SLACK          1e-9
#define WAIT_SLACK          0.5e-9

/* LRU list link; the head lives in the stripe, so it is not a whole entry. */
struct rl_link {
	struct rl_link *prev, *next;
};

struct rl_entry {
	struct rl_link lru;     /* first, so a link converts back to its entry */
	struct rl_entry *hnext; /* hash chain */
	uint64_t hash;
	double tokens;
	int64_t last_ms;
	size_t keylen, keycap;
	char key[];
};

struct rl_stripe {
	pthread_mutex_t lock;
	struct rl_entry **buckets; /* power-of-two count, grows with n */
	size_t nbuckets;
	size_t n, cap;
	struct rl_link lru;     /* list head: lru.next most recent, lru.prev least */
} __attribute__((aligned(64))); /* no false sharing between neighbouring stripes */

struct gw_ratelimit {
	double rate_per_ms;
	double burst;
	unsigned stripe_shift; /* stripe = hash >> shift: the high bits, buckets use the low */
	size_t nstripes;
	struct rl_stripe *stripes;
};

static inline uint64_t rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

/* Final avalanche (MurmurHash3's fmix64), so both high and low bits are usable. */
static inline uint64_t fmix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

/* Eight bytes per round, so a 64-byte key is eight multiplies plus the finish. */
static uint64_t hash_key(const char *key, size_t len)
{
	const unsigned char *p = (const unsigned char *)key;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ len, w;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&w, p, 8);
		w *= 0x87c37b91114253d5ull;
		w = rotl(w, 31);
		w *= 0x4cf5ad432745937full;
		h ^= w;
		h = rotl(h, 27) * 5 + 0x52dce729;
	}
	w = 0;
	if (len)
		memcpy(&w, p, len);
	h ^= w * 0x87c37b91114253d5ull;
	return fmix(h);
}

static void lru_unlink(struct rl_entry *e)
{
	e->lru.prev->next = e->lru.next;
	e->lru.next->prev = e->lru.prev;
}

static void lru_push_front(struct rl_stripe *st, struct rl_entry *e)
{
	e->lru.prev = &st->lru;
	e->lru.next = st->lru.next;
	st->lru.next->prev = &e->lru;
	st->lru.next = &e->lru;
}

static void hash_unlink(struct rl_stripe *st, struct rl_entry *e)
{
	struct rl_entry **pp = &st->buckets[e->hash & (st->nbuckets - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
}

static void hash_insert(struct rl_stripe *st, struct rl_entry *e)
{
	struct rl_entry **head = &st->buckets[e->hash & (st->nbuckets - 1)];

	e->hnext = *head;
	*head = e;
}

/* Double the bucket array; on OOM keep the old one (chains just get longer). */
static void grow(struct rl_stripe *st)
{
	size_t nb = st->nbuckets * 2, i;
	struct rl_entry **old = st->buckets;
	size_t oldn = st->nbuckets;

	st->buckets = calloc(nb, sizeof(*st->buckets));
	if (!st->buckets) {
		st->buckets = old;
		return;
	}
	st->nbuckets = nb;
	for (i = 0; i < oldn; i++) {
		struct rl_entry *e = old[i], *next;

		for (; e; e = next) {
			next = e->hnext;
			hash_insert(st, e);
		}
	}
	free(old);
}

static struct rl_entry *lookup(struct rl_stripe *st, uint64_t h, const char *key, size_t keylen)
{
	struct rl_entry *e = st->buckets[h & (st->nbuckets - 1)];

	for (; e; e = e->hnext)
		if (e->hash == h && e->keylen == keylen &&
		    (!keylen || !memcmp(e->key, key, keylen)))
			return e;
	return NULL;
}

/*
 * A new entry for key, full bucket. When the stripe is full the least recent
 * entry is evicted and its memory reused if the key fits, so a flood of new
 * keys does not churn malloc. NULL on OOM.
 */
static struct rl_entry *insert(struct gw_ratelimit *rl, struct rl_stripe *st, uint64_t h,
                               const char *key, size_t keylen, int64_t now_ms)
{
	struct rl_entry *e = NULL;

	if (st->n == st->cap) {
		e = (struct rl_entry *)st->lru.prev;
		lru_unlink(e);
		hash_unlink(st, e);
		st->n--;
		if (e->keycap < keylen) {
			free(e);
			e = NULL;
		}
	}
	if (!e) {
		size_t cap = (keylen + 15) & ~(size_t)15;

		if (cap < keylen || cap > SIZE_MAX - sizeof(*e))
			return NULL;
		e = malloc(sizeof(*e) + cap);
		if (!e)
			return NULL;
		e->keycap = cap;
	}
	e->hash = h;
	e->tokens = rl->burst;
	e->last_ms = now_ms;
	e->keylen = keylen;
	if (keylen)
		memcpy(e->key, key, keylen);
	if (st->n >= st->nbuckets)
		grow(st);
	hash_insert(st, e);
	lru_push_front(st, e);
	st->n++;
	return e;
}

struct gw_ratelimit *gw_ratelimit_new(double rate, double burst, size_t max_keys)
{
	struct gw_ratelimit *rl = NULL, *ret = NULL;
	size_t ns = 1, i;

	/* Written so that NaN and infinities fail too. */
	if (!(rate > 0 && rate <= DBL_MAX) || !(burst >= 1 && burst <= DBL_MAX) || max_keys < 1)
		return NULL;
	while (ns < MAX_STRIPES && ns * 2 * MIN_KEYS_PER_STRIPE <= max_keys)
		ns *= 2;

	rl = calloc(1, sizeof(*rl));
	if (!rl)
		goto out;
	rl->rate_per_ms = rate / 1000.0;
	rl->burst = burst;
	for (rl->stripe_shift = 64; ((size_t)1 << (64 - rl->stripe_shift)) < ns;)
		rl->stripe_shift--;
	rl->stripes = aligned_alloc(64, ns * sizeof(*rl->stripes));
	if (!rl->stripes)
		goto out;
	memset(rl->stripes, 0, ns * sizeof(*rl->stripes));
	/* nstripes counts the stripes set up, so gw_ratelimit_free can undo a partial one. */
	for (i = 0; i < ns; i++) {
		struct rl_stripe *st = &rl->stripes[i];

		st->cap = max_keys / ns + (i < max_keys % ns);
		st->nbuckets = MIN_BUCKETS;
		st->buckets = calloc(st->nbuckets, sizeof(*st->buckets));
		if (!st->buckets)
			goto out;
		if (pthread_mutex_init(&st->lock, NULL)) {
			free(st->buckets);
			goto out;
		}
		st->lru.next = st->lru.prev = &st->lru;
		rl->nstripes++;
	}
	ret = rl;
	rl = NULL;
out:
	gw_ratelimit_free(rl);
	return ret;
}

void gw_ratelimit_free(struct gw_ratelimit *rl)
{
	size_t i;

	if (!rl)
		return;
	for (i = 0; i < rl->nstripes; i++) {
		struct rl_stripe *st = &rl->stripes[i];
		struct rl_link *l = st->lru.next, *next;

		for (; l != &st->lru; l = next) {
			next = l->next;
			free(l); /* the entry: its link is at offset 0 */
		}
		free(st->buckets);
		pthread_mutex_destroy(&st->lock);
	}
	free(rl->stripes);
	free(rl);
}

bool gw_ratelimit_take(struct gw_ratelimit *rl, const char *key, size_t keylen, int64_t now_ms,
                       int64_t *retry_after_ms)
{
	uint64_t h = hash_key(key, keylen);
	struct rl_stripe *st = &rl->stripes[rl->stripe_shift < 64 ? h >> rl->stripe_shift : 0];
	struct rl_entry *e;
	bool ok = true;
	double need, wait;
	int64_t ms;

	pthread_mutex_lock(&st->lock);
	e = lookup(st, h, key, keylen);
	if (!e) {
		e = insert(rl, st, h, key, keylen, now_ms);
		if (!e)
			goto out; /* OOM: a new key has a full bucket anyway; grant, forget */
	} else {
		lru_unlink(e);
		lru_push_front(st, e);
		if (now_ms > e->last_ms) {
			/* unsigned: no overflow whatever the two times are */
			uint64_t dt = (uint64_t)now_ms - (uint64_t)e->last_ms;

			e->tokens += (double)dt * rl->rate_per_ms;
			if (e->tokens > rl->burst)
				e->tokens = rl->burst;
			e->last_ms = now_ms;
		}
	}
	if (e->tokens >= 1.0 - TAKE_SLACK) {
		e->tokens -= 1.0;
		goto out;
	}
	ok = false;
	if (retry_after_ms) {
		need = 1.0 - e->tokens - WAIT_SLACK;
		wait = need / rl->rate_per_ms;
		if (wait >= (double)INT64_MAX) {
			ms = INT64_MAX;
		} else {
			ms = (int64_t)wait; /* ceil without libm */
			if ((double)ms < wait)
				ms++;
			if (ms < 1)
				ms = 1;
		}
		*retry_after_ms = ms;
	}
out:
	pthread_mutex_unlock(&st->lock);
	return ok;
}

size_t gw_ratelimit_keys(struct gw_ratelimit *rl)
{
	size_t i, n = 0;

	for (i = 0; i < rl->nstripes; i++) {
		pthread_mutex_lock(&rl->stripes[i].lock);
		n += rl->stripes[i].n;
		pthread_mutex_unlock(&rl->stripes[i].lock);
	}
	return n;
}
