/*
 * The web player: GET / and the files it loads, served from the copies of
 * web/ embedded at build time (web/embed.cmake), so the binary needs no
 * files at run time and always serves the version it was built with.
 * Responses carry an ETag (from the file's hash) and Cache-Control: no-cache,
 * so a browser revalidates each load and gets a 304 when nothing changed.
 * Worker thread only, except the pure helpers marked otherwise.
 */
#include <string.h>

#include "gateway/metrics.h"
#include "transport/internal.h"

struct route {
	const char *path;
	const char *file; /* name in tp_web_files */
	const char *ctype;
};

static const struct route routes[] = {
    {"/", "index.html", "text/html; charset=utf-8"},
    {"/livegate.js", "livegate.js", "text/javascript; charset=utf-8"},
    {"/player.js", "player.js", "text/javascript; charset=utf-8"},
    {"/player.css", "player.css", "text/css; charset=utf-8"},
};

/*
 * Everything the page needs comes from this origin; the WebSocket may be ws:
 * or wss: (a CSP 'self' does not cover ws: in every browser).
 */
static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "connect-src 'self' ws: wss:; img-src 'self' data:; base-uri 'none'; "
                          "form-action 'none'; frame-ancestors 'none'";

static const struct route *route_of(const char *path)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (!strcmp(routes[i].path, path))
			return &routes[i];
	return NULL;
}

static const struct tp_web_file *file_of(const char *name)
{
	for (size_t i = 0; i < tp_web_nfiles; i++)
		if (!strcmp(tp_web_files[i].name, name))
			return &tp_web_files[i];
	return NULL;
}

bool tp_static_match(const char *path)
{
	const struct route *r = route_of(path);

	return r && file_of(r->file);
}

bool tp_etag_match(const char *inm, const char *etag)
{
	size_t elen = strlen(etag);

	/* A comma-separated list of entity tags, each maybe weak (W/), or "*". */
	while (*inm) {
		const char *end;

		while (*inm == ' ' || *inm == '\t' || *inm == ',')
			inm++;
		if (!*inm)
			break;
		end = strchr(inm, ',');
		if (!end)
			end = inm + strlen(inm);
		while (end > inm && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end - inm == 1 && *inm == '*')
			return true;
		if (end - inm > 2 && !strncmp(inm, "W/", 2))
			inm += 2;
		if ((size_t)(end - inm) == elen && !memcmp(inm, etag, elen))
			return true;
		inm = *end ? end + 1 : end;
	}
	return false;
}

static int add_hdr(struct lws *wsi, const char *name, const char *value, unsigned char **p,
                   unsigned char *end)
{
	return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
	                                   (const unsigned char *)value, (int)strlen(value), p,
	                                   end);
}

int tp_static_serve(struct tp_conn *c, const char *path, bool head)
{
	struct lws *wsi = c->wsi;
	const struct route *r = route_of(path);
	const struct tp_web_file *f = r ? file_of(r->file) : NULL;
	struct gw_buf *out = &c->wk->out;
	unsigned char hdr[TP_HDR_ROOM], *p = hdr, *end = hdr + sizeof(hdr);
	char inm[256];
	bool fresh;
	size_t blen, hlen;
	unsigned char *start;

	if (!f)
		return -1; /* the router asked tp_static_match first */
	fresh = lws_hdr_copy(wsi, inm, sizeof(inm), WSI_TOKEN_HTTP_IF_NONE_MATCH) > 0 &&
	        tp_etag_match(inm, f->etag);
	blen = fresh || head ? 0 : f->len;
	/* A 304 has no body and no Content-Length; HEAD gets the length of the GET body. */
	if (fresh ? lws_add_http_header_status(wsi, 304, &p, end)
	          : lws_add_http_common_headers(wsi, 200, r->ctype, f->len, &p, end))
		return -1;
	if (add_hdr(wsi, "etag:", f->etag, &p, end) ||
	    add_hdr(wsi, "cache-control:", "no-cache", &p, end) ||
	    add_hdr(wsi, "x-content-type-options:", "nosniff", &p, end) ||
	    add_hdr(wsi, "content-security-policy:", csp, &p, end) ||
	    add_hdr(wsi, "referrer-policy:", "no-referrer", &p, end) ||
	    lws_finalize_http_header(wsi, &p, end))
		return -1;
	hlen = (size_t)(p - hdr);
	/* out keeps LWS_PRE + TP_HDR_ROOM bytes in front of its data: headers go there. */
	gw_buf_reset(out);
	if (gw_buf_reserve(out, blen ? blen : 1) || gw_buf_append(out, f->data, blen))
		return -1;
	start = (unsigned char *)gw_buf_data(out) - hlen;
	memcpy(start, hdr, hlen);
	gw_metric_add(GW_M_BYTES_HTTP_OTHER, (int64_t)blen);
	if (lws_write(wsi, start, hlen + blen, LWS_WRITE_HTTP_FINAL) != (int)(hlen + blen))
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}
