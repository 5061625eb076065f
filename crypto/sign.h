/*
 * Ed25519 signatures over libsodium, and the gateway's own signing key.
 *
 * Why: gifts are money. A viewer's device signs each gift with its own key
 * and the gateway checks it (cr_verify); the gateway signs a receipt for each
 * accepted gift with its server key (cr_sign) so the client can prove what
 * was accepted. The wrappers keep libsodium's types and return conventions in
 * one place.
 *
 * Key sizes: public key 32 bytes, secret key 64 bytes (libsodium layout: the
 * 32-byte seed followed by the public key), signature 64 bytes.
 *
 * Threads: call cr_sign_init once from main before threads start; after that
 * every function is safe from any thread (no shared state).
 */
#ifndef CR_SIGN_H
#define CR_SIGN_H

#include <stdbool.h>
#include <stddef.h>

#define CR_SIGN_PK_BYTES   32
#define CR_SIGN_SK_BYTES   64
#define CR_SIGN_SEED_BYTES 32
#define CR_SIGN_BYTES      64

/* Initialise libsodium (idempotent). Returns 0 or -1. */
int cr_sign_init(void);

/*
 * True when sig is a valid Ed25519 signature of msg[0..len) by pk. libsodium
 * also refuses non-canonical signatures and small-order public keys, so a
 * signature cannot be re-encoded into a second valid one.
 */
bool cr_verify(const unsigned char pk[32], const void *msg, size_t len,
	       const unsigned char sig[64]);

/* Detached Ed25519 signature of msg[0..len) with sk (deterministic, RFC 8032). */
void cr_sign(const unsigned char sk[64], const void *msg, size_t len, unsigned char sig[64]);

/* A fresh random keypair. Returns 0 or -1. */
int cr_keypair_generate(unsigned char pk[32], unsigned char sk[64]);

/* The keypair a 32-byte seed (RFC 8032's "secret key") determines. Returns 0 or -1. */
int cr_keypair_from_seed(const unsigned char seed[32], unsigned char pk[32], unsigned char sk[64]);

/*
 * Load the server keypair from path, creating it on first start.
 *
 * File format: exactly 32 bytes, the raw Ed25519 seed (the input of
 * crypto_sign_seed_keypair, RFC 8032's secret key); no header, no encoding.
 * The public key is derived from it on every load.
 *
 * Existing file: refused (with a message in err) unless it is a regular file
 * of exactly 32 bytes whose mode gives group and others no access at all.
 * Missing file: a random seed is written to "<path>.tmp" (O_CREAT|O_EXCL, mode
 * 0600), fsynced, renamed over to path without replacing a file that appeared
 * meanwhile, and the directory is fsynced, so a crash leaves either no key or
 * the whole key, never a torn one. A stale "<path>.tmp" from a crash during
 * that window is reported, not removed: the operator decides.
 *
 * Returns 0, or -1 with a NUL-terminated reason in err[0..errlen). Main
 * thread at start-up (it does blocking file I/O).
 */
int cr_server_key_load(const char *path, unsigned char pk[32], unsigned char sk[64], char *err,
		       size_t errlen);

/* Constant-time equality of a[0..n) and b[0..n), for secrets such as the admin token. */
bool cr_equal(const void *a, const void *b, size_t n);

#endif
