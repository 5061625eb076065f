/*
 * wsclient: the wire formats the fan-out load generator speaks, with no I/O
 * and no libwebsockets: HTTP/1.1 responses (Content-Length, chunked, no-body
 * statuses), the WebSocket client handshake and RFC 6455 frames (server
 * frames unmasked, client frames masked), and the send-time stamp that bench
 * messages carry. Pure functions over caller buffers; any thread.
 */
#ifndef BENCH_WSCLIENT_H
#define BENCH_WSCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer; zero-initialised is empty. */
struct wc_buf {
	char *data;
	size_t len, cap;
};

/* Make room for `more` bytes after len. 0, or -1 on OOM. */
int wc_buf_reserve(struct wc_buf *b, size_t more);
int wc_buf_append(struct wc_buf *b, const void *p, size_t n);
void wc_buf_free(struct wc_buf *b);

/* One parsed HTTP/1.1 response. body points into the input, or into the dechunk buffer. */
struct wc_resp {
	int status;
	size_t total_len; /* bytes the whole response took on the wire */
	const char *body;
	size_t body_len;
	bool gzip;  /* Content-Encoding: gzip */
	bool close; /* Connection: close */
	char etag[96];
	char last_modified[64];
};

/*
 * Parse the response at buf[0..len). Returns 1 with *r filled when it is
 * complete, 0 when more bytes are needed (*need: total bytes needed when
 * known, else 0), -1 when it is malformed. A chunked body is decoded into
 * dechunk (reset first), which must outlive the use of r->body.
 */
int wc_resp_parse(const char *buf, size_t len, struct wc_resp *r, struct wc_buf *dechunk,
                  size_t *need);

enum {
	WC_OP_CONT = 0,
	WC_OP_TEXT = 1,
	WC_OP_BIN = 2,
	WC_OP_CLOSE = 8,
	WC_OP_PING = 9,
	WC_OP_PONG = 10
};

struct wc_frame {
	int opcode;
	bool fin;
	size_t hdr_len;
	uint64_t payload_len;
};

/*
 * Parse a server frame header at buf[0..len). Returns 1 when the whole frame
 * (header and payload) is in buf, 0 when more is needed (*need: total frame
 * bytes when the header is complete, else 0), -1 for a frame a server must
 * not send (masked, reserved bits, oversized length, fragmented control).
 */
int wc_frame_parse(const unsigned char *buf, size_t len, struct wc_frame *f, size_t *need);

/* A masked client frame (FIN set) into out, which needs len + 14 bytes. Returns its size. */
size_t wc_frame_encode(unsigned char *out, int opcode, const void *payload, size_t len,
                       uint32_t mask);

/* The upgrade request for path into out; returns its length, or 0 when out is too small. */
size_t wc_handshake(char *out, size_t cap, const char *host, int port, const char *path);

/*
 * Bench message text: "~" + send time in µs (16 digits) + "~", padded with
 * 'x' to `bytes` (at least WC_STAMP_LEN). No JSON escaping is ever needed.
 */
#define WC_STAMP_LEN 18
size_t wc_stamp(char *out, size_t bytes, int64_t ts_us);

/*
 * Find the stamps in buf[0..len) and call fn(arg, ts_us) for each; returns
 * how many. A '~' not followed by a well-formed stamp is skipped.
 */
size_t wc_stamps_scan(const char *buf, size_t len, void (*fn)(void *arg, int64_t ts_us), void *arg);

#endif
