/* gw_map: see map.h. */
#include "gateway/map.h"

#include <stdlib.h>
#include <string.h>

struct entry {
	struct entry *next;
	uint64_t hash;
	void *value;
	size_t klen;
	unsigned char key[];
};

struct gw_map {
	struct entry **b;
	size_t mask;
	size_t count;
};

uint64_t gw_hash_bytes(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 1469598103934665603ull ^ n; /* FNV-1a, then a final mix */

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 1099511628211ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

struct gw_map *gw_map_new(void)
{
	struct gw_map *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->b = calloc(16, sizeof(*m->b));
	if (!m->b) {
		free(m);
		return NULL;
	}
	m->mask = 15;
	return m;
}

void gw_map_free(struct gw_map *m, void (*free_value)(void *v))
{
	if (!m)
		return;
	for (size_t i = 0; i <= m->mask; i++) {
		struct entry *e = m->b[i], *n;
		for (; e; e = n) {
			n = e->next;
			if (free_value)
				free_value(e->value);
			free(e);
		}
	}
	free(m->b);
	free(m);
}

static struct entry **find(const struct gw_map *m, const void *key, size_t klen, uint64_t h)
{
	struct entry **pp = &m->b[h & m->mask];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->klen == klen && !memcmp((*pp)->key, key, klen))
			break;
	return pp;
}

void *gw_map_get(const struct gw_map *m, const void *key, size_t klen)
{
	struct entry *e = *find(m, key, klen, gw_hash_bytes(key, klen));

	return e ? e->value : NULL;
}

static void grow(struct gw_map *m)
{
	size_t nmask = m->mask * 2 + 1;
	struct entry **nb = calloc(nmask + 1, sizeof(*nb));

	if (!nb)
		return; /* stay at this size: slower chains, still correct */
	for (size_t i = 0; i <= m->mask; i++) {
		struct entry *e = m->b[i], *n;
		for (; e; e = n) {
			n = e->next;
			e->next = nb[e->hash & nmask];
			nb[e->hash & nmask] = e;
		}
	}
	free(m->b);
	m->b = nb;
	m->mask = nmask;
}

int gw_map_put(struct gw_map *m, const void *key, size_t klen, void *value, void **old)
{
	uint64_t h = gw_hash_bytes(key, klen);
	struct entry **pp = find(m, key, klen, h), *e;

	if (old)
		*old = NULL;
	if (*pp) {
		if (old)
			*old = (*pp)->value;
		(*pp)->value = value;
		return 0;
	}
	e = malloc(sizeof(*e) + klen);
	if (!e)
		return -1;
	e->hash = h;
	e->value = value;
	e->klen = klen;
	memcpy(e->key, key, klen);
	e->next = NULL;
	*pp = e;
	if (++m->count > m->mask + 1)
		grow(m);
	return 0;
}

void *gw_map_del(struct gw_map *m, const void *key, size_t klen)
{
	struct entry **pp = find(m, key, klen, gw_hash_bytes(key, klen)), *e = *pp;
	void *v;

	if (!e)
		return NULL;
	*pp = e->next;
	v = e->value;
	free(e);
	m->count--;
	return v;
}

size_t gw_map_count(const struct gw_map *m)
{
	return m->count;
}

void gw_map_each(const struct gw_map *m, void (*fn)(void *arg, const void *key, size_t klen,
						   void *value),
		 void *arg)
{
	for (size_t i = 0; i <= m->mask; i++)
		for (struct entry *e = m->b[i]; e; e = e->next)
			fn(arg, e->key, e->klen, e->value);
}
