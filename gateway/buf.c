/* gw_buf: growable byte buffer with headroom. See buf.h. */
#include "gateway/buf.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gw_buf_init(struct gw_buf *b, size_t headroom)
{
	b->base = NULL;
	b->head = headroom;
	b->len = 0;
	b->cap = 0;
}

void gw_buf_free(struct gw_buf *b)
{
	free(b->base);
	b->base = NULL;
	b->len = 0;
	b->cap = 0;
}

int gw_buf_reserve(struct gw_buf *b, size_t extra)
{
	size_t need = b->len + extra, ncap;
	char *nb;

	if (need < b->len)
		return -1;
	if (b->base && need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return -1;
		ncap *= 2;
	}
	nb = realloc(b->base, b->head + ncap);
	if (!nb)
		return -1;
	b->base = nb;
	b->cap = ncap;
	return 0;
}

int gw_buf_append(struct gw_buf *b, const void *p, size_t n)
{
	if (gw_buf_reserve(b, n))
		return -1;
	if (n)
		memcpy(b->base + b->head + b->len, p, n);
	b->len += n;
	return 0;
}

int gw_buf_putc(struct gw_buf *b, char c)
{
	return gw_buf_append(b, &c, 1);
}

int gw_buf_puts(struct gw_buf *b, const char *s)
{
	return gw_buf_append(b, s, strlen(s));
}

int gw_buf_printf(struct gw_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || gw_buf_reserve(b, (size_t)n + 1))
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->base + b->head + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int gw_buf_put_u64(struct gw_buf *b, uint64_t v)
{
	char tmp[20];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return gw_buf_append(b, tmp + i, sizeof(tmp) - i);
}

int gw_buf_put_i64(struct gw_buf *b, int64_t v)
{
	if (v < 0) {
		if (gw_buf_putc(b, '-'))
			return -1;
		return gw_buf_put_u64(b, (uint64_t)0 - (uint64_t)v);
	}
	return gw_buf_put_u64(b, (uint64_t)v);
}
