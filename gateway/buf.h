/*
 * gw_buf: a growable byte buffer with optional headroom in front of the data
 * (libwebsockets needs LWS_PRE writable bytes before a frame it sends).
 *
 * Threads: a buffer belongs to one thread at a time; no internal locking.
 * Errors: appenders return 0, or -1 when memory runs out (buffer unchanged).
 */
#ifndef GW_BUF_H
#define GW_BUF_H

#include <stddef.h>
#include <stdint.h>

struct gw_buf {
	char *base;      /* allocation; data starts at base + head */
	size_t head;     /* reserved headroom in front of data */
	size_t len;      /* bytes of data */
	size_t cap;      /* bytes available for data (allocation - head) */
};

/* Init an empty buffer that keeps `headroom` bytes in front of its data. */
void gw_buf_init(struct gw_buf *b, size_t headroom);
/* Free the allocation; the buffer is empty and reusable afterwards. */
void gw_buf_free(struct gw_buf *b);
static inline char *gw_buf_data(const struct gw_buf *b)
{
	return b->base ? b->base + b->head : NULL;
}
static inline void gw_buf_reset(struct gw_buf *b)
{
	b->len = 0;
}
int gw_buf_reserve(struct gw_buf *b, size_t extra);
int gw_buf_append(struct gw_buf *b, const void *p, size_t n);
int gw_buf_putc(struct gw_buf *b, char c);
int gw_buf_puts(struct gw_buf *b, const char *s);
int gw_buf_printf(struct gw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int gw_buf_put_u64(struct gw_buf *b, uint64_t v);
int gw_buf_put_i64(struct gw_buf *b, int64_t v);

#endif
