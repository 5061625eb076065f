/* Randomness from libsodium. See random.h. */
#include "crypto/random.h"

#include <sodium.h>

int cr_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

uint64_t cr_random_u64(void)
{
	uint64_t v;

	randombytes_buf(&v, sizeof(v));
	return v;
}
