/*
 * nm_heap: min-heap of timers with back-indices (see heap.h).
 *
 * Threads: the heap's owner thread only.
 */
#include "netem/heap.h"

#include <stdlib.h>

static void place(struct nm_heap *h, size_t i, struct nm_timer *t)
{
	h->v[i] = t;
	t->idx = i;
}

static void sift_up(struct nm_heap *h, size_t i)
{
	struct nm_timer *t = h->v[i];

	while (i > 0 && h->v[(i - 1) / 2]->when > t->when) {
		place(h, i, h->v[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	place(h, i, t);
}

static void sift_down(struct nm_heap *h, size_t i)
{
	struct nm_timer *t = h->v[i];
	size_t c;

	while ((c = 2 * i + 1) < h->n) {
		if (c + 1 < h->n && h->v[c + 1]->when < h->v[c]->when)
			c++;
		if (h->v[c]->when >= t->when)
			break;
		place(h, i, h->v[c]);
		i = c;
	}
	place(h, i, t);
}

int nm_heap_arm(struct nm_heap *h, struct nm_timer *t, int64_t when)
{
	if (nm_timer_armed(t)) {
		int64_t old = t->when;

		t->when = when;
		if (when < old)
			sift_up(h, t->idx);
		else
			sift_down(h, t->idx);
		return 0;
	}
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		struct nm_timer **v = realloc(h->v, cap * sizeof(*v));

		if (!v)
			return -1;
		h->v = v;
		h->cap = cap;
	}
	t->when = when;
	place(h, h->n++, t);
	sift_up(h, t->idx);
	return 0;
}

void nm_heap_disarm(struct nm_heap *h, struct nm_timer *t)
{
	size_t i = t->idx;
	struct nm_timer *last;

	if (!nm_timer_armed(t))
		return;
	t->idx = NM_TIMER_IDLE;
	last = h->v[--h->n];
	if (last == t)
		return;
	/* the last timer fills the hole and moves whichever way it must */
	place(h, i, last);
	if (i > 0 && h->v[(i - 1) / 2]->when > last->when)
		sift_up(h, i);
	else
		sift_down(h, i);
}

struct nm_timer *nm_heap_top(const struct nm_heap *h)
{
	return h->n ? h->v[0] : NULL;
}

void nm_heap_free(struct nm_heap *h)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		h->v[i]->idx = NM_TIMER_IDLE;
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}
