/*
 * Strict base64 and lowercase hex. See b64.h for the rules and why.
 *
 * Own code rather than sodium_base642bin: the rules are short enough to read
 * in one screen here, and the tests pin them down without depending on how a
 * library version treats edge cases. Pure functions; any thread.
 */
#include "crypto/b64.h"

#include <stdint.h>

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The 6-bit value of an alphabet character, or -1 (also for '=' and NUL). */
static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

size_t cr_b64_encoded_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

size_t cr_b64_encode(const unsigned char *in, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = b64_alphabet[(v >> 6) & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = b64_alphabet[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = 0;
	return o;
}

int cr_b64_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *outlen)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t i, o = 0;

	/* Padding is mandatory, so every valid input is whole 4-character groups. */
	if (len % 4)
		return -1;
	for (i = 0; i < len; i += 4) {
		int a = b64_value(p[i]), b = b64_value(p[i + 1]);
		int c = b64_value(p[i + 2]), d = b64_value(p[i + 3]);
		int last = i + 4 == len;
		size_t nbytes = 3;
		uint32_t v;

		if (a < 0 || b < 0)
			return -1;
		if (c < 0 || d < 0) {
			/* Only the final group may be padded: "xy==" holds one byte, "xyz=" two. */
			if (!last || p[i + 3] != '=')
				return -1;
			if (c < 0) {
				if (p[i + 2] != '=')
					return -1;
				/* One byte: b's low 4 bits fall off the end and must be zero. */
				if (b & 15)
					return -1;
				nbytes = 1;
				c = 0;
			} else {
				/* Two bytes: c's low 2 bits fall off the end and must be zero. */
				if (c & 3)
					return -1;
				nbytes = 2;
			}
			d = 0;
		}
		if (cap - o < nbytes)
			return -1;
		v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
		out[o++] = (unsigned char)(v >> 16);
		if (nbytes > 1)
			out[o++] = (unsigned char)(v >> 8);
		if (nbytes > 2)
			out[o++] = (unsigned char)v;
	}
	*outlen = o;
	return 0;
}

size_t cr_hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = 0;
	return 2 * n;
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int cr_hex_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *outlen)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t i;

	if (len % 2 || len / 2 > cap)
		return -1;
	for (i = 0; i < len; i += 2) {
		int hi = hex_value(p[i]), lo = hex_value(p[i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (unsigned char)(hi << 4 | lo);
	}
	*outlen = len / 2;
	return 0;
}
