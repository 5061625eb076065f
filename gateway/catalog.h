/*
 * The gift catalog: which gifts exist and what they cost. Built in (a small
 * default) or loaded from a JSON file {"gifts":[{"id","name","price"},…]}.
 * The answer to GET /v1/gifts is rendered once at load, with its ETag.
 *
 * Threads: loaded by the main thread before workers start; immutable after,
 * so any thread may read it.
 */
#ifndef GW_CATALOG_H
#define GW_CATALOG_H

#include <stddef.h>
#include <stdint.h>

struct gw_catalog;

struct gw_catalog_item {
	char id[33];   /* [a-z0-9_-]{1,32} */
	char name[65]; /* 1..64 bytes of UTF-8 */
	uint64_t price; /* coins, 1..1,000,000 */
};

/* path NULL or "": the built-in default. NULL with a message in err. Caller frees. */
struct gw_catalog *gw_catalog_load(const char *path, char *err, size_t errlen);
void gw_catalog_free(struct gw_catalog *c);
/* The item with this id, or NULL. */
const struct gw_catalog_item *gw_catalog_find(const struct gw_catalog *c, const char *id,
					      size_t len);
/* {"gifts":[…]} as served (NUL-terminated; *len excludes the NUL), and its strong ETag (with
 * the quotes). */
const char *gw_catalog_json(const struct gw_catalog *c, size_t *len);
const char *gw_catalog_etag(const struct gw_catalog *c);
size_t gw_catalog_count(const struct gw_catalog *c);

#endif
