/* Ingest. See ingest.h. */
#include "gateway/ingest.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/buf.h"
#include "gateway/clock.h"
#include "gateway/filter.h"
#include "gateway/json.h"
#include "gateway/log.h"
#include "gateway/metrics.h"
#include "gateway/ratelimit.h"
#include "gateway/room.h"
#include "gateway/utf8.h"

struct gw_ingest {
	struct gw_filter *filter; /* NULL: no blocked words */
	bool reject_blocked;
	size_t text_max_chars;
	struct gw_ratelimit *per_uid;
	struct gw_ratelimit *per_room;
};

/* Per-thread scratch for encoding, so ingest allocates nothing once warm. */
static _Thread_local struct gw_buf enc;
static _Thread_local char *text_copy;
static _Thread_local size_t text_copy_cap;

struct gw_ingest *gw_ingest_new(const struct gw_config *cfg, char *err, size_t errlen)
{
	struct gw_ingest *in = calloc(1, sizeof(*in));

	if (!in) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	in->text_max_chars = (size_t)cfg->text_max_chars;
	in->reject_blocked = !strcmp(cfg->blocked_words_mode, "reject");
	if (cfg->blocked_words_file && cfg->blocked_words_file[0]) {
		in->filter = gw_filter_load(cfg->blocked_words_file, err, errlen);
		if (!in->filter)
			goto fail;
		gw_log_info("blocked words: %zu loaded from %s (%s mode)",
			    gw_filter_count(in->filter), cfg->blocked_words_file,
			    cfg->blocked_words_mode);
	}
	in->per_uid = gw_ratelimit_new(cfg->rate_uid, cfg->burst_uid, (size_t)cfg->rate_max_keys);
	in->per_room = gw_ratelimit_new(cfg->rate_room, cfg->burst_room, (size_t)cfg->rate_max_keys);
	if (!in->per_uid || !in->per_room) {
		snprintf(err, errlen, "cannot create rate limiters");
		goto fail;
	}
	return in;
fail:
	gw_ingest_free(in);
	return NULL;
}

void gw_ingest_free(struct gw_ingest *in)
{
	if (!in)
		return;
	gw_filter_free(in->filter);
	gw_ratelimit_free(in->per_uid);
	gw_ratelimit_free(in->per_room);
	free(in);
}

void gw_ingest_thread_exit(void)
{
	gw_buf_free(&enc);
	free(text_copy);
	text_copy = NULL;
	text_copy_cap = 0;
}

int gw_ingest_parse(const char *body, size_t len, struct json_object **obj, struct gw_err *err)
{
	struct json_tokener *tok;
	struct json_object *o;
	int rc = -1;

	if (!gw_utf8_valid(body, len, NULL))
		return gw_fail(err, 400, "bad_utf8", "body is not valid UTF-8");
	tok = json_tokener_new();
	if (!tok)
		return gw_fail(err, 503, "no_memory", "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, body, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len) {
		gw_fail(err, 400, "bad_json", "body is not one JSON object");
		json_object_put(o);
		goto out;
	}
	if (!json_object_is_type(o, json_type_object)) {
		gw_fail(err, 400, "bad_json", "body is JSON but not an object");
		json_object_put(o);
		goto out;
	}
	*obj = o;
	rc = 0;
out:
	json_tokener_free(tok);
	return rc;
}

static int get_string(struct json_object *obj, const char *key, const char **s, size_t *len,
		      struct gw_err *err)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
		return gw_fail(err, 400, "bad_field", "\"%s\" must be a string", key);
	*s = json_object_get_string(v);
	*len = (size_t)json_object_get_string_len(v);
	return 0;
}

static int rate_check(struct gw_ratelimit *rl, const char *key, size_t len, const char *what,
		      struct gw_err *err)
{
	int64_t wait_ms = 0;

	if (gw_ratelimit_take(rl, key, len, gw_clock_mono_ms(), &wait_ms))
		return 0;
	gw_fail(err, 429, "rate_limited", "too many danmaku for this %s", what);
	err->retry_after_s = (int)((wait_ms + 999) / 1000);
	if (err->retry_after_s < 1)
		err->retry_after_s = 1;
	return -1;
}

int gw_ingest_danmaku(struct gw_ingest *in, struct gw_room *room, struct json_object *obj,
		      uint64_t *seq, struct gw_err *err)
{
	const char *uid, *text, *room_name;
	size_t uid_len, text_len, chars, room_len;

	if (get_string(obj, "uid", &uid, &uid_len, err) ||
	    get_string(obj, "text", &text, &text_len, err))
		return -1;
	if (!gw_name_valid(uid, uid_len))
		return gw_fail(err, 400, "bad_uid", "uid must match [A-Za-z0-9_-]{1,64}");
	/* json-c decodes \u escapes, so a lone surrogate can only be caught here. */
	if (!gw_utf8_valid(text, text_len, &chars))
		return gw_fail(err, 400, "bad_utf8", "text is not valid UTF-8");
	if (chars < 1 || chars > in->text_max_chars)
		return gw_fail(err, 400, "bad_text", "text must be 1 to %zu characters, got %zu",
			       in->text_max_chars, chars);

	if (in->filter) {
		if (in->reject_blocked) {
			if (gw_filter_matches(in->filter, text, text_len))
				return gw_fail(err, 422, "blocked", "text contains a blocked word");
		} else {
			/* Masking rewrites in place: work on a copy, json-c owns text. */
			if (text_copy_cap < text_len + 1) {
				char *p = realloc(text_copy, text_len + 1);
				if (!p)
					return gw_fail(err, 503, "no_memory", "out of memory");
				text_copy = p;
				text_copy_cap = text_len + 1;
			}
			memcpy(text_copy, text, text_len);
			gw_filter_mask(in->filter, text_copy, &text_len);
			text = text_copy;
		}
	}

	/* Limits last: a request refused for its content costs the sender nothing. */
	room_name = gw_room_name(room, &room_len);
	if (rate_check(in->per_room, room_name, room_len, "room", err) ||
	    rate_check(in->per_uid, uid, uid_len, "uid", err))
		return -1;

	gw_buf_reset(&enc);
	if (gw_buf_puts(&enc, "\"type\":\"danmaku\",\"uid\":\"") ||
	    gw_buf_append(&enc, uid, uid_len) || gw_buf_puts(&enc, "\",\"text\":") ||
	    gw_json_put_str(&enc, text, text_len) || gw_buf_putc(&enc, '}'))
		return gw_fail(err, 503, "no_memory", "out of memory");
	*seq = gw_room_publish(room, gw_buf_data(&enc), enc.len);
	if (!*seq)
		return gw_fail(err, 413, "message_too_big", "message does not fit the room's ring");
	gw_metric_add(GW_M_PUBLISHED, 1);
	return 0;
}
