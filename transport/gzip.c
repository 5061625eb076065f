/*
 * gzip for poll responses. One deflate stream per worker, reset between
 * responses, so a response costs no allocation (deflateInit is ~256 KB).
 * Worker thread only.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "transport/internal.h"

struct tp_gzip {
	z_stream z;
};

struct tp_gzip *tp_gzip_new(int level)
{
	struct tp_gzip *gz = calloc(1, sizeof(*gz));

	if (!gz)
		return NULL;
	/* windowBits 15 + 16: gzip wrapper; memLevel 8 is zlib's default. */
	if (deflateInit2(&gz->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(gz);
		return NULL;
	}
	return gz;
}

void tp_gzip_free(struct tp_gzip *gz)
{
	if (!gz)
		return;
	deflateEnd(&gz->z);
	free(gz);
}

int tp_gzip(struct tp_gzip *gz, const char *src, size_t len, struct gw_buf *out)
{
	size_t bound;
	int rc;

	/* Reset first: a finished gzip stream has its wrapper disabled, and
	 * deflateBound would then leave out the header and trailer. */
	if (deflateReset(&gz->z) != Z_OK)
		return -1;
	bound = deflateBound(&gz->z, (uLong)len);
	if (gw_buf_reserve(out, bound))
		return -1;
	gz->z.next_in = (Bytef *)(uintptr_t)src;
	gz->z.avail_in = (uInt)len;
	gz->z.next_out = (Bytef *)gw_buf_data(out) + out->len;
	gz->z.avail_out = (uInt)bound;
	rc = deflate(&gz->z, Z_FINISH);
	if (rc != Z_STREAM_END)
		return -1;
	out->len += bound - gz->z.avail_out;
	return 0;
}

bool tp_gzip_accepted(const char *ae)
{
	/*
	 * A list of codings with optional q: "deflate, gzip;q=0.5", "*". An
	 * explicit "gzip" entry decides; otherwise "*" does; q=0 refuses.
	 */
	int gzip = -1, star = -1; /* -1 not named, 0 refused, 1 accepted */
	const char *p = ae;

	while (p && *p) {
		size_t n;
		bool zero = false;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		n = strcspn(p, ",;");
		while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		bool is_gzip = n == 4 && !strncasecmp(p, "gzip", 4);
		bool is_star = n == 1 && *p == '*';
		p += strcspn(p, ",;");
		while (*p == ';') {
			p++;
			while (*p == ' ')
				p++;
			if (!strncasecmp(p, "q=", 2))
				zero = strtod(p + 2, NULL) <= 0.0;
			p += strcspn(p, ",;");
		}
		if (is_gzip)
			gzip = !zero;
		else if (is_star)
			star = !zero;
	}
	return gzip >= 0 ? gzip == 1 : star == 1;
}
