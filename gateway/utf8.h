/* UTF-8 validation. Pure functions; any thread may call. */
#ifndef GW_UTF8_H
#define GW_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/*
 * True when s[0..len) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). NUL bytes are allowed (valid U+0000).
 * When valid and chars is non-NULL, *chars receives the number of code points.
 */
bool gw_utf8_valid(const char *s, size_t len, size_t *chars);

#endif
