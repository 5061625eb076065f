/* Cursors. See cursor.h. */
#include "gateway/cursor.h"

#include <stdio.h>

size_t gw_cursor_format(char *out, struct gw_cursor c)
{
	return (size_t)snprintf(out, GW_CURSOR_MAX, "%016llx-%llu", (unsigned long long)c.epoch,
				(unsigned long long)c.seq);
}

int gw_cursor_parse(const char *s, size_t len, struct gw_cursor *c)
{
	uint64_t epoch = 0, seq = 0;
	size_t i;

	if (len < 18 || len > 37 || s[16] != '-')
		return -1;
	for (i = 0; i < 16; i++) {
		char ch = s[i];
		unsigned d;

		if (ch >= '0' && ch <= '9')
			d = (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			d = (unsigned)(ch - 'a' + 10);
		else
			return -1;
		epoch = epoch << 4 | d;
	}
	if (s[17] == '0' && len > 18)
		return -1; /* one spelling per cursor: no leading zeros */
	for (i = 17; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		unsigned d = (unsigned)(s[i] - '0');
		if (seq > (UINT64_MAX - d) / 10)
			return -1;
		seq = seq * 10 + d;
	}
	c->epoch = epoch;
	c->seq = seq;
	return 0;
}
