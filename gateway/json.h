/*
 * Compact JSON output. Messages are encoded once at ingest with these, so the
 * encoder favours a simple byte loop over generality. Pure; any thread.
 */
#ifndef GW_JSON_H
#define GW_JSON_H

#include <stddef.h>

#include "gateway/buf.h"

/*
 * Append s[0..len) as a JSON string literal (with the quotes). s must be valid
 * UTF-8; it is copied as is except '"', '\\' and control characters, which are
 * escaped. Returns 0 or -1 on OOM.
 */
int gw_json_put_str(struct gw_buf *b, const char *s, size_t len);

#endif
