/*
 * gw_utf8: strict UTF-8 validation (RFC 3629), see utf8.h.
 *
 * Every posted text passes through here, and chat text is mostly ASCII, so
 * ASCII is checked eight bytes per step: one unaligned load (memcpy, which the
 * compiler turns into a plain mov) and one mask test for the high bits. A
 * non-ASCII byte drops to the byte loop, which checks one whole sequence
 * against the RFC 3629 table; the first continuation byte carries the only
 * range that depends on the lead byte (it is what rules out overlongs,
 * surrogates and code points above U+10FFFF), the others are plain 80..BF.
 *
 * Threads: pure function, no state; any thread may call.
 */
#include "gateway/utf8.h"

#include <stdint.h>
#include <string.h>

#define ASCII_MASK 0x8080808080808080ull

bool gw_utf8_valid(const char *s, size_t len, size_t *chars)
{
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *end = p + len;
	size_t n = 0;

	while (p < end) {
		unsigned char c = *p, lo, hi;
		size_t need, i;

		if (c < 0x80) {
			uint64_t w;

			/* Code points equal bytes here, so count the whole word at once. */
			while (end - p >= 8) {
				memcpy(&w, p, 8);
				if (w & ASCII_MASK)
					break;
				p += 8;
				n += 8;
			}
			/* Finish the word (or the tail) bytewise up to the next non-ASCII byte. */
			while (p < end && *p < 0x80) {
				p++;
				n++;
			}
			continue;
		}
		/* C0, C1 only start overlongs; 80..BF are stray continuations. */
		if (c < 0xc2)
			return false;
		lo = 0x80;
		hi = 0xbf;
		if (c < 0xe0) {
			need = 1;
		} else if (c < 0xf0) {
			need = 2;
			if (c == 0xe0)
				lo = 0xa0; /* below is overlong (< U+0800) */
			else if (c == 0xed)
				hi = 0x9f; /* above is a surrogate (U+D800..U+DFFF) */
		} else if (c < 0xf5) {
			need = 3;
			if (c == 0xf0)
				lo = 0x90; /* below is overlong (< U+10000) */
			else if (c == 0xf4)
				hi = 0x8f; /* above is > U+10FFFF */
		} else {
			return false;
		}
		if ((size_t)(end - p) <= need)
			return false;
		if (p[1] < lo || p[1] > hi)
			return false;
		for (i = 2; i <= need; i++)
			if ((p[i] & 0xc0) != 0x80)
				return false;
		p += need + 1;
		n++;
	}
	if (chars)
		*chars = n;
	return true;
}
