/* Randomness from libsodium (getrandom underneath). Any thread may call. */
#ifndef CR_RANDOM_H
#define CR_RANDOM_H

#include <stdint.h>

/* Initialise libsodium once; returns 0 or -1. Call from main before threads start. */
int cr_init(void);
/* A uniformly random 64-bit value. */
uint64_t cr_random_u64(void);

#endif
