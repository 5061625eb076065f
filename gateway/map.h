/*
 * gw_map: a hash map from byte-string keys to pointers, with separate
 * chaining and doubling growth. The map copies keys; values are the
 * caller's (the map never frees them).
 *
 * Threads: none of its own; a map is used by one thread at a time (callers
 * that share one put it behind their lock).
 */
#ifndef GW_MAP_H
#define GW_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gw_map;

/* The map's hash of n bytes (FNV-1a with a final mix); for other tables keyed the same way. */
uint64_t gw_hash_bytes(const void *p, size_t n);

/* Caller frees with gw_map_free. NULL on OOM. */
struct gw_map *gw_map_new(void);
/* Free the map and its key copies; call free_value on each value when non-NULL. */
void gw_map_free(struct gw_map *m, void (*free_value)(void *v));

/* The value stored under key, or NULL. */
void *gw_map_get(const struct gw_map *m, const void *key, size_t klen);
/* Insert or replace; *old (if non-NULL) receives the replaced value or NULL. 0, or -1 on OOM. */
int gw_map_put(struct gw_map *m, const void *key, size_t klen, void *value, void **old);
/* Remove; returns the value that was stored, or NULL. */
void *gw_map_del(struct gw_map *m, const void *key, size_t klen);
size_t gw_map_count(const struct gw_map *m);
/* Call fn on each entry, in no particular order; fn must not change the map. */
void gw_map_each(const struct gw_map *m, void (*fn)(void *arg, const void *key, size_t klen,
						   void *value),
		 void *arg);

#endif
