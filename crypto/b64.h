/*
 * Strict standard base64 (RFC 4648 section 4: A-Z a-z 0-9 + /, '=' padding)
 * and lowercase hex.
 *
 * Why strict: these encode signatures and nonces that clients compute and the
 * gateway checks, so every value has exactly one accepted spelling. The
 * decoder refuses missing or extra padding, whitespace, line breaks, the URL
 * alphabet, and non-zero bits after the last byte ("Zh==" is not "Zg==").
 * Without that, one signature would have several encodings, and anything that
 * keys on the string (logs, de-duplication) could be fooled.
 *
 * Threads: pure functions, any thread. Not constant-time: use them for public
 * data (signatures, public keys, nonces), not for comparing secrets.
 */
#ifndef CR_B64_H
#define CR_B64_H

#include <stddef.h>

/* Characters cr_b64_encode writes for n bytes, not counting the NUL. */
size_t cr_b64_encoded_len(size_t n);

/*
 * Encode in[0..n) into out, which must hold cr_b64_encoded_len(n) + 1 bytes.
 * Writes the terminating NUL; returns the length without it.
 */
size_t cr_b64_encode(const unsigned char *in, size_t n, char *out);

/*
 * Decode exactly in[0..len) (no NUL needed; an embedded NUL is an error) into
 * out[0..cap). Returns 0 with *outlen set, or -1 when the input is not the
 * canonical encoding of some bytes or does not fit in cap. out may have been
 * written to on failure.
 */
int cr_b64_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *outlen);

/* Encode in[0..n) as lowercase hex into out (2n + 1 bytes, NUL written); returns 2n. */
size_t cr_hex_encode(const unsigned char *in, size_t n, char *out);

/*
 * Decode lowercase hex in[0..len) into out[0..cap). Uppercase, odd length and
 * any other character are refused, for the same one-spelling reason as above.
 * Returns 0 with *outlen set, or -1.
 */
int cr_hex_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *outlen);

#endif
