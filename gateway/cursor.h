/*
 * Cursors: where a client is in a room. Opaque to clients; to us it is the
 * ring's epoch and the last seq the client has, written "<16 hex>-<seq>".
 * Pure functions; any thread.
 */
#ifndef GW_CURSOR_H
#define GW_CURSOR_H

#include <stddef.h>
#include <stdint.h>

struct gw_cursor {
	uint64_t epoch;
	uint64_t seq;
};

#define GW_CURSOR_MAX 40 /* 16 + 1 + 20 digits + NUL fits */

/* Write the cursor and a NUL into out (>= GW_CURSOR_MAX bytes); returns its length. */
size_t gw_cursor_format(char *out, struct gw_cursor c);
/*
 * Parse exactly what gw_cursor_format writes: 16 lowercase hex digits, '-',
 * a decimal seq without leading zeros that fits in 64 bits. 0 or -1.
 */
int gw_cursor_parse(const char *s, size_t len, struct gw_cursor *c);

#endif
