/*
 * Ingest: everything between a client's danmaku request and the ring.
 * Validates, filters blocked words, applies rate limits, encodes the message
 * once and publishes it. Shared by every transport that accepts posts.
 *
 * Threads: created by the main thread before workers start; afterwards any
 * thread may call gw_ingest_parse / gw_ingest_danmaku concurrently (the
 * filter is immutable, the rate limiters lock internally, the encode buffer
 * is per thread).
 */
#ifndef GW_INGEST_H
#define GW_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/config.h"
#include "gateway/error.h"

struct gw_ingest;
struct gw_room;
struct json_object;

/* Build from config (loads the blocked-words file). NULL with a message in err. Caller frees. */
struct gw_ingest *gw_ingest_new(const struct gw_config *cfg, char *err, size_t errlen);
void gw_ingest_free(struct gw_ingest *in);

/*
 * Parse a request body: valid UTF-8 holding exactly one JSON object.
 * On success *obj is a new reference the caller puts (json_object_put).
 */
int gw_ingest_parse(const char *body, size_t len, struct json_object **obj, struct gw_err *err);

/* Publish the danmaku described by obj {"uid":…,"text":…} into room; *seq receives its seq. */
int gw_ingest_danmaku(struct gw_ingest *in, struct gw_room *room, struct json_object *obj,
		      uint64_t *seq, struct gw_err *err);

/* Free the calling thread's scratch buffers; call before a thread that used ingest exits. */
void gw_ingest_thread_exit(void);

#endif
