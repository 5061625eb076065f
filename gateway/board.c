/* Leaderboards. See board.h for the threading. */
#include "gateway/board.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/map.h"

struct total {
	uint64_t value;
	size_t uid_len;
	char uid[65];
};

struct room_board {
	struct gw_map *totals; /* uid -> struct total */
	bool dirty;
	size_t nsnap; /* entries in snap */
	struct total snap[GW_BOARD_TOP_MAX];
	size_t name_len;
	char name[65];
	struct room_board *next_dirty;
};

struct gw_board {
	pthread_rwlock_t lock;
	struct gw_map *rooms; /* room -> struct room_board */
	struct room_board *dirty;
};

static void free_room(void *v)
{
	struct room_board *r = v;

	gw_map_free(r->totals, free);
	free(r);
}

struct gw_board *gw_board_new(void)
{
	struct gw_board *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->rooms = gw_map_new();
	if (!b->rooms || pthread_rwlock_init(&b->lock, NULL)) {
		gw_map_free(b->rooms, NULL);
		free(b);
		return NULL;
	}
	return b;
}

void gw_board_free(struct gw_board *b)
{
	if (!b)
		return;
	gw_map_free(b->rooms, free_room);
	pthread_rwlock_destroy(&b->lock);
	free(b);
}

int gw_board_add(struct gw_board *b, const char *room, size_t room_len, const char *uid,
		 size_t uid_len, uint64_t value)
{
	struct room_board *r;
	struct total *t;
	int rc = -1;

	if (room_len > 64 || uid_len > 64)
		return -1;
	pthread_rwlock_wrlock(&b->lock);
	r = gw_map_get(b->rooms, room, room_len);
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r || !(r->totals = gw_map_new()) || gw_map_put(b->rooms, room, room_len, r, NULL)) {
			if (r)
				gw_map_free(r->totals, NULL);
			free(r);
			goto out;
		}
		memcpy(r->name, room, room_len);
		r->name_len = room_len;
	}
	t = gw_map_get(r->totals, uid, uid_len);
	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t || gw_map_put(r->totals, uid, uid_len, t, NULL)) {
			free(t);
			goto out;
		}
		memcpy(t->uid, uid, uid_len);
		t->uid_len = uid_len;
	}
	t->value += value;
	if (!r->dirty) {
		r->dirty = true;
		r->next_dirty = b->dirty;
		b->dirty = r;
	}
	rc = 0;
out:
	pthread_rwlock_unlock(&b->lock);
	return rc;
}

/* Higher value first; equal values by uid, so the order is stable and total. */
static bool ranks_before(const struct total *a, const struct total *b)
{
	if (a->value != b->value)
		return a->value > b->value;
	int c = memcmp(a->uid, b->uid, a->uid_len < b->uid_len ? a->uid_len : b->uid_len);
	return c ? c < 0 : a->uid_len < b->uid_len;
}

/* Keep the best GW_BOARD_TOP_MAX in snap, sorted, by insertion (n is small). */
static void offer(void *arg, const void *key, size_t klen, void *value)
{
	struct room_board *r = arg;
	const struct total *t = value;
	size_t i;

	if (r->nsnap == GW_BOARD_TOP_MAX && !ranks_before(t, &r->snap[r->nsnap - 1]))
		return;
	i = r->nsnap < GW_BOARD_TOP_MAX ? r->nsnap++ : r->nsnap - 1;
	while (i > 0 && ranks_before(t, &r->snap[i - 1])) {
		r->snap[i] = r->snap[i - 1];
		i--;
	}
	r->snap[i] = *t;
}

static int render(const struct total *snap, size_t n, struct gw_buf *out)
{
	int rc = gw_buf_putc(out, '[');

	for (size_t i = 0; i < n; i++) {
		rc |= gw_buf_puts(out, i ? ",{\"uid\":\"" : "{\"uid\":\"");
		/* uids are [A-Za-z0-9_-]: nothing to escape */
		rc |= gw_buf_append(out, snap[i].uid, snap[i].uid_len);
		rc |= gw_buf_puts(out, "\",\"value\":");
		rc |= gw_buf_put_u64(out, snap[i].value);
		rc |= gw_buf_putc(out, '}');
	}
	rc |= gw_buf_putc(out, ']');
	return rc ? -1 : 0;
}

size_t gw_board_refresh(struct gw_board *b,
			void (*fn)(void *arg, const char *room, size_t room_len, const char *top,
				   size_t top_len),
			void *arg)
{
	struct room_board *list, *r;
	struct gw_buf json;
	size_t n = 0;

	gw_buf_init(&json, 0);
	pthread_rwlock_wrlock(&b->lock);
	list = b->dirty;
	b->dirty = NULL;
	for (r = list; r; r = r->next_dirty) {
		r->dirty = false;
		r->nsnap = 0;
		gw_map_each(r->totals, offer, r);
	}
	pthread_rwlock_unlock(&b->lock);
	/* Only the consumer writes snapshots, so reading them here needs no lock. */
	for (r = list; r; r = r->next_dirty, n++) {
		gw_buf_reset(&json);
		if (fn && !render(r->snap, r->nsnap, &json))
			fn(arg, r->name, r->name_len, gw_buf_data(&json), json.len);
	}
	gw_buf_free(&json);
	return n;
}

int gw_board_top(struct gw_board *b, const char *room, size_t room_len, size_t n,
		 struct gw_buf *out)
{
	struct room_board *r;
	int rc;

	pthread_rwlock_rdlock(&b->lock);
	r = gw_map_get(b->rooms, room, room_len);
	rc = render(r ? r->snap : NULL, r ? (n < r->nsnap ? n : r->nsnap) : 0, out);
	pthread_rwlock_unlock(&b->lock);
	return rc;
}

uint64_t gw_board_total(struct gw_board *b, const char *room, size_t room_len, const char *uid,
			size_t uid_len)
{
	struct room_board *r;
	struct total *t = NULL;
	uint64_t v;

	pthread_rwlock_rdlock(&b->lock);
	r = gw_map_get(b->rooms, room, room_len);
	if (r)
		t = gw_map_get(r->totals, uid, uid_len);
	v = t ? t->value : 0;
	pthread_rwlock_unlock(&b->lock);
	return v;
}
