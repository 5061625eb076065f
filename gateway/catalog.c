/* The gift catalog. See catalog.h. */
#include "gateway/catalog.h"

#include <json-c/json.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/buf.h"
#include "gateway/json.h"
#include "gateway/utf8.h"

#define MAX_ITEMS 256
#define MAX_PRICE 1000000

struct gw_catalog {
	size_t n;
	struct gw_catalog_item items[MAX_ITEMS];
	char *json;
	size_t json_len;
	char etag[40];
};

static const char builtin[] = "{\"gifts\":["
			      "{\"id\":\"rose\",\"name\":\"Rose\",\"price\":1},"
			      "{\"id\":\"heart\",\"name\":\"Heart\",\"price\":10},"
			      "{\"id\":\"rocket\",\"name\":\"Rocket\",\"price\":1000},"
			      "{\"id\":\"castle\",\"name\":\"Castle\",\"price\":5000}]}";

static bool gift_id_valid(const char *s, size_t len)
{
	if (len < 1 || len > 32)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return false;
	return true;
}

static int parse(struct gw_catalog *c, const char *text, char *err, size_t errlen)
{
	struct json_object *root = json_tokener_parse(text), *arr, *it, *v;
	int rc = -1;

	if (!root || !json_object_object_get_ex(root, "gifts", &arr) ||
	    !json_object_is_type(arr, json_type_array)) {
		snprintf(err, errlen, "catalog must be {\"gifts\":[…]}");
		goto out;
	}
	size_t n = json_object_array_length(arr);
	if (n < 1 || n > MAX_ITEMS) {
		snprintf(err, errlen, "catalog needs 1 to %d gifts, has %zu", MAX_ITEMS, n);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct gw_catalog_item *g = &c->items[i];
		const char *s;
		size_t len;

		it = json_object_array_get_idx(arr, i);
		if (!json_object_object_get_ex(it, "id", &v) ||
		    !json_object_is_type(v, json_type_string) ||
		    !gift_id_valid(s = json_object_get_string(v),
				   len = (size_t)json_object_get_string_len(v))) {
			snprintf(err, errlen, "gift %zu: id must match [a-z0-9_-]{1,32}", i);
			goto out;
		}
		memcpy(g->id, s, len);
		for (size_t k = 0; k < i; k++)
			if (!strcmp(c->items[k].id, g->id)) {
				snprintf(err, errlen, "gift id %s appears twice", g->id);
				goto out;
			}
		if (!json_object_object_get_ex(it, "name", &v) ||
		    !json_object_is_type(v, json_type_string) ||
		    (len = (size_t)json_object_get_string_len(v)) < 1 || len > 64 ||
		    !gw_utf8_valid(s = json_object_get_string(v), len, NULL)) {
			snprintf(err, errlen, "gift %s: name must be 1 to 64 bytes of UTF-8", g->id);
			goto out;
		}
		memcpy(g->name, s, len);
		if (!json_object_object_get_ex(it, "price", &v) ||
		    !json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1 ||
		    json_object_get_int64(v) > MAX_PRICE) {
			snprintf(err, errlen, "gift %s: price must be an integer 1..%d", g->id,
				 MAX_PRICE);
			goto out;
		}
		g->price = (uint64_t)json_object_get_int64(v);
	}
	c->n = n;
	rc = 0;
out:
	json_object_put(root);
	return rc;
}

static int render(struct gw_catalog *c)
{
	struct gw_buf b;
	unsigned char h[8];
	int rc = 0;

	gw_buf_init(&b, 0);
	rc |= gw_buf_puts(&b, "{\"gifts\":[");
	for (size_t i = 0; i < c->n; i++) {
		rc |= gw_buf_puts(&b, i ? ",{\"id\":\"" : "{\"id\":\"");
		rc |= gw_buf_puts(&b, c->items[i].id);
		rc |= gw_buf_puts(&b, "\",\"name\":");
		rc |= gw_json_put_str(&b, c->items[i].name, strlen(c->items[i].name));
		rc |= gw_buf_puts(&b, ",\"price\":");
		rc |= gw_buf_put_u64(&b, c->items[i].price);
		rc |= gw_buf_putc(&b, '}');
	}
	rc |= gw_buf_puts(&b, "]}");
	rc |= gw_buf_putc(&b, '\0'); /* usable as a C string too; not counted in json_len */
	if (rc) {
		gw_buf_free(&b);
		return -1;
	}
	c->json = b.base; /* headroom 0: the data starts at base; c owns it now */
	c->json_len = b.len - 1;
	/* A strong validator: the bytes served determine it. */
	crypto_generichash(h, sizeof(h), (unsigned char *)c->json, c->json_len, NULL, 0);
	snprintf(c->etag, sizeof(c->etag), "\"%02x%02x%02x%02x%02x%02x%02x%02x\"", h[0], h[1], h[2],
		 h[3], h[4], h[5], h[6], h[7]);
	return 0;
}

struct gw_catalog *gw_catalog_load(const char *path, char *err, size_t errlen)
{
	struct gw_catalog *c = calloc(1, sizeof(*c));
	char *text = NULL;
	FILE *f = NULL;

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (path && path[0]) {
		long size;

		f = fopen(path, "rb");
		if (!f || fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 || size > (1 << 20) ||
		    fseek(f, 0, SEEK_SET)) {
			snprintf(err, errlen, "cannot read gift catalog %s", path);
			goto fail;
		}
		text = calloc(1, (size_t)size + 1);
		if (!text || fread(text, 1, (size_t)size, f) != (size_t)size) {
			snprintf(err, errlen, "cannot read gift catalog %s", path);
			goto fail;
		}
	}
	if (parse(c, text ? text : builtin, err, errlen))
		goto fail;
	if (render(c)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	free(text);
	if (f)
		fclose(f);
	return c;
fail:
	free(text);
	if (f)
		fclose(f);
	gw_catalog_free(c);
	return NULL;
}

void gw_catalog_free(struct gw_catalog *c)
{
	if (!c)
		return;
	free(c->json);
	free(c);
}

const struct gw_catalog_item *gw_catalog_find(const struct gw_catalog *c, const char *id,
					      size_t len)
{
	for (size_t i = 0; i < c->n; i++)
		if (strlen(c->items[i].id) == len && !memcmp(c->items[i].id, id, len))
			return &c->items[i];
	return NULL;
}

const char *gw_catalog_json(const struct gw_catalog *c, size_t *len)
{
	*len = c->json_len;
	return c->json;
}

const char *gw_catalog_etag(const struct gw_catalog *c)
{
	return c->etag;
}

size_t gw_catalog_count(const struct gw_catalog *c)
{
	return c->n;
}
