/*
 * ed25519_cost: what one gift's cryptography costs on this machine, with the
 * libsodium the gateway links: one detached signature (the receipt) and one
 * verification (the gift). Single thread; prints microseconds per operation.
 *
 * usage: ed25519_cost [iterations]   (default 20000)
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	unsigned char pk[32], sk[64], sig[64], msg[120];
	int n = argc > 1 ? atoi(argv[1]) : 20000, ok = 0;
	double t, sign_us, verify_us;

	if (n < 1 || sodium_init() < 0)
		return 2;
	randombytes_buf(msg, sizeof(msg)); /* about a gift's canonical bytes */
	crypto_sign_keypair(pk, sk);
	t = now_s();
	for (int i = 0; i < n; i++)
		crypto_sign_detached(sig, NULL, msg, sizeof(msg), sk);
	sign_us = (now_s() - t) / n * 1e6;
	t = now_s();
	for (int i = 0; i < n; i++)
		ok += crypto_sign_verify_detached(sig, msg, sizeof(msg), pk) == 0;
	verify_us = (now_s() - t) / n * 1e6;
	printf("libsodium %s: sign %.1f us, verify %.1f us, per gift %.1f us (%d verified)\n",
	       sodium_version_string(), sign_us, verify_us, sign_us + verify_us, ok);
	return ok == n ? 0 : 1;
}
