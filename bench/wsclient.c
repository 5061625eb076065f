/* Wire formats of the fan-out load generator. See wsclient.h. */
#define _GNU_SOURCE /* memmem, strncasecmp */
#include "wsclient.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Response heads larger than this are treated as malformed (servers send a few hundred bytes). */
#define MAX_HEAD 65536

int wc_buf_reserve(struct wc_buf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 256;
	char *p;

	if (b->len + more <= b->cap)
		return 0;
	while (cap < b->len + more)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p)
		return -1;
	b->data = p;
	b->cap = cap;
	return 0;
}

int wc_buf_append(struct wc_buf *b, const void *p, size_t n)
{
	if (wc_buf_reserve(b, n))
		return -1;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void wc_buf_free(struct wc_buf *b)
{
	free(b->data);
	*b = (struct wc_buf){0};
}

/* Copy a header value (trimmed) into dst. */
static void copy_value(char *dst, size_t cap, const char *v, const char *end)
{
	size_t n;

	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	n = (size_t)(end - v);
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, v, n);
	dst[n] = 0;
}

static bool header_is(const char *line, size_t name_len, const char *name)
{
	return strlen(name) == name_len && !strncasecmp(line, name, name_len);
}

/* Parse a hex chunk size at p..eol; -1 when it is not one. */
static long long chunk_size(const char *p, const char *eol)
{
	long long v = 0;
	int digits = 0;

	for (; p < eol && *p != ';'; p++, digits++) {
		int d;
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'f')
			d = (*p | 0x20) - 'a' + 10;
		else
			return -1;
		if (v > (1LL << 40))
			return -1;
		v = v * 16 + d;
	}
	return digits ? v : -1;
}

/*
 * Walk the chunks of a body starting at buf[pos]. Returns 1 with *total set
 * (and the data appended to out when out is not NULL), 0 when incomplete, -1
 * when malformed.
 */
static int walk_chunks(const char *buf, size_t len, size_t pos, size_t *total, struct wc_buf *out)
{
	for (;;) {
		const char *eol = memmem(buf + pos, len - pos, "\r\n", 2);
		long long n;

		if (!eol)
			return len - pos > 64 ? -1 : 0;
		n = chunk_size(buf + pos, eol);
		if (n < 0)
			return -1;
		pos = (size_t)(eol - buf) + 2;
		if (n == 0) {
			/* No trailers: CRLF at once; else trailer lines end with an empty line. */
			const char *fin;
			if (len - pos >= 2 && buf[pos] == '\r' && buf[pos + 1] == '\n') {
				*total = pos + 2;
				return 1;
			}
			fin = memmem(buf + pos - 2, len - (pos - 2), "\r\n\r\n", 4);
			if (!fin)
				return 0;
			*total = (size_t)(fin - buf) + 4;
			return 1;
		}
		if (len - pos < (size_t)n + 2)
			return 0;
		if (buf[pos + n] != '\r' || buf[pos + n + 1] != '\n')
			return -1;
		if (out && wc_buf_append(out, buf + pos, (size_t)n))
			return -1;
		pos += (size_t)n + 2;
	}
}

int wc_resp_parse(const char *buf, size_t len, struct wc_resp *r, struct wc_buf *dechunk,
                  size_t *need)
{
	const char *end, *line;
	size_t head;
	long long clen = -1;
	bool chunked = false;
	int rc;

	*need = 0;
	end = memmem(buf, len, "\r\n\r\n", 4);
	if (!end)
		return len > MAX_HEAD ? -1 : 0;
	head = (size_t)(end - buf) + 4;
	if (head < 16 || memcmp(buf, "HTTP/1.", 7) || buf[8] != ' ' || buf[9] < '1' ||
	    buf[9] > '5' || buf[10] < '0' || buf[10] > '9' || buf[11] < '0' || buf[11] > '9')
		return -1;
	memset(r, 0, sizeof(*r));
	r->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	line = memmem(buf, head, "\r\n", 2) + 2;
	while (line < end + 2) {
		const char *eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
		const char *colon = memchr(line, ':', (size_t)(eol - line));
		size_t nl;

		if (!colon)
			return -1;
		nl = (size_t)(colon - line);
		if (header_is(line, nl, "content-length")) {
			char tmp[24];
			copy_value(tmp, sizeof(tmp), colon + 1, eol);
			char *e;
			clen = strtoll(tmp, &e, 10);
			if (!tmp[0] || *e || clen < 0)
				return -1;
		} else if (header_is(line, nl, "transfer-encoding")) {
			char tmp[32];
			copy_value(tmp, sizeof(tmp), colon + 1, eol);
			chunked = !strcasecmp(tmp, "chunked");
		} else if (header_is(line, nl, "content-encoding")) {
			char tmp[32];
			copy_value(tmp, sizeof(tmp), colon + 1, eol);
			r->gzip = !strcasecmp(tmp, "gzip");
		} else if (header_is(line, nl, "connection")) {
			char tmp[32];
			copy_value(tmp, sizeof(tmp), colon + 1, eol);
			r->close = !strcasecmp(tmp, "close");
		} else if (header_is(line, nl, "etag")) {
			copy_value(r->etag, sizeof(r->etag), colon + 1, eol);
		} else if (header_is(line, nl, "last-modified")) {
			copy_value(r->last_modified, sizeof(r->last_modified), colon + 1, eol);
		}
		line = eol + 2;
	}
	if (r->status < 200 || r->status == 204 || r->status == 304) {
		r->total_len = head;
		r->body = buf + head;
		return 1;
	}
	if (chunked) {
		size_t total;
		rc = walk_chunks(buf, len, head, &total, NULL);
		if (rc <= 0)
			return rc;
		dechunk->len = 0;
		if (walk_chunks(buf, len, head, &total, dechunk) != 1)
			return -1;
		r->total_len = total;
		r->body = dechunk->data ? dechunk->data : buf + head;
		r->body_len = dechunk->len;
		return 1;
	}
	if (clen < 0)
		return -1; /* read-until-close bodies are not used by either server */
	if (len < head + (size_t)clen) {
		*need = head + (size_t)clen;
		return 0;
	}
	r->total_len = head + (size_t)clen;
	r->body = buf + head;
	r->body_len = (size_t)clen;
	return 1;
}

int wc_frame_parse(const unsigned char *buf, size_t len, struct wc_frame *f, size_t *need)
{
	uint64_t l;
	size_t hdr = 2;

	*need = 0;
	if (len < 2)
		return 0;
	if ((buf[0] & 0x70) || (buf[1] & 0x80))
		return -1; /* reserved bits (no extension is negotiated) or a masked server frame */
	f->opcode = buf[0] & 0x0f;
	f->fin = buf[0] & 0x80;
	l = buf[1] & 0x7f;
	if (l == 126) {
		if (len < 4)
			return 0;
		l = (uint64_t)buf[2] << 8 | buf[3];
		hdr = 4;
	} else if (l == 127) {
		if (len < 10)
			return 0;
		l = 0;
		for (int i = 2; i < 10; i++)
			l = l << 8 | buf[i];
		hdr = 10;
		if (l >> 40)
			return -1;
	}
	if (f->opcode >= 8 && (!f->fin || l > 125))
		return -1;
	if ((f->opcode > 2 && f->opcode < 8) || f->opcode > 10)
		return -1;
	f->hdr_len = hdr;
	f->payload_len = l;
	if (len - hdr < l) {
		*need = hdr + (size_t)l;
		return 0;
	}
	return 1;
}

size_t wc_frame_encode(unsigned char *out, int opcode, const void *payload, size_t len,
                       uint32_t mask)
{
	const unsigned char *p = payload;
	unsigned char m[4] = {mask >> 24, mask >> 16, mask >> 8, mask};
	size_t h = 0;

	out[h++] = (unsigned char)(0x80 | opcode);
	if (len < 126) {
		out[h++] = (unsigned char)(0x80 | len);
	} else if (len < 65536) {
		out[h++] = 0x80 | 126;
		out[h++] = (unsigned char)(len >> 8);
		out[h++] = (unsigned char)len;
	} else {
		out[h++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			out[h++] = (unsigned char)((uint64_t)len >> (8 * i));
	}
	memcpy(out + h, m, 4);
	h += 4;
	for (size_t i = 0; i < len; i++)
		out[h + i] = p[i] ^ m[i & 3];
	return h + len;
}

size_t wc_handshake(char *out, size_t cap, const char *host, int port, const char *path)
{
	/* The key only has to be 16 bytes in base64; servers answer with its hash. */
	int n = snprintf(out, cap,
	                 "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
	                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	                 "Sec-WebSocket-Version: 13\r\n\r\n",
	                 path, host, port);
	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

size_t wc_stamp(char *out, size_t bytes, int64_t ts_us)
{
	char tmp[WC_STAMP_LEN + 1];

	if (bytes < WC_STAMP_LEN)
		bytes = WC_STAMP_LEN;
	snprintf(tmp, sizeof(tmp), "~%016lld~", (long long)ts_us);
	memcpy(out, tmp, WC_STAMP_LEN);
	memset(out + WC_STAMP_LEN, 'x', bytes - WC_STAMP_LEN);
	return bytes;
}

size_t wc_stamps_scan(const char *buf, size_t len, void (*fn)(void *arg, int64_t ts_us), void *arg)
{
	const char *p = buf, *end = buf + len;
	size_t n = 0;

	while ((p = memchr(p, '~', (size_t)(end - p)))) {
		int64_t v = 0;
		int i;

		if (end - p < WC_STAMP_LEN || p[WC_STAMP_LEN - 1] != '~') {
			p++;
			continue;
		}
		for (i = 1; i < WC_STAMP_LEN - 1; i++) {
			unsigned d = (unsigned)(p[i] - '0');
			if (d > 9)
				break;
			v = v * 10 + d;
		}
		if (i != WC_STAMP_LEN - 1) {
			p++;
			continue;
		}
		fn(arg, v);
		n++;
		p += WC_STAMP_LEN;
	}
	return n;
}
