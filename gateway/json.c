/* Compact JSON string output. See json.h. */
#include "gateway/json.h"

static const char hex[] = "0123456789abcdef";

int gw_json_put_str(struct gw_buf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i, run = 0;
	char *out;

	/* Worst case every byte becomes \u00XX: reserve once, then write unchecked. */
	if (gw_buf_reserve(b, len * 6 + 2))
		return -1;
	out = gw_buf_data(b) + b->len;
	out[run++] = '"';
	for (i = 0; i < len; i++) {
		unsigned char c = p[i];

		if (c >= 0x20 && c != '"' && c != '\\') {
			out[run++] = (char)c;
			continue;
		}
		out[run++] = '\\';
		switch (c) {
		case '"':
			out[run++] = '"';
			break;
		case '\\':
			out[run++] = '\\';
			break;
		case '\n':
			out[run++] = 'n';
			break;
		case '\r':
			out[run++] = 'r';
			break;
		case '\t':
			out[run++] = 't';
			break;
		default:
			out[run++] = 'u';
			out[run++] = '0';
			out[run++] = '0';
			out[run++] = hex[c >> 4];
			out[run++] = hex[c & 15];
		}
	}
	out[run++] = '"';
	b->len += run;
	return 0;
}
