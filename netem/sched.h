/*
 * The relay's arithmetic, kept free of sockets and clocks so it can be
 * tested exactly: a seeded random source, the delay/jitter release time of a
 * chunk, a per-direction token bucket, and the periodic stall windows.
 * Times are monotonic milliseconds passed in by the caller.
 *
 * Threads: no shared state; any thread may use its own structs.
 */
#ifndef NM_SCHED_H
#define NM_SCHED_H

#include <stdbool.h>
#include <stdint.h>

/* splitmix64: one word of state, so a --seed reproduces every draw. */
struct nm_rng {
	uint64_t s;
};

void nm_rng_seed(struct nm_rng *g, uint64_t seed);
uint64_t nm_rng_next(struct nm_rng *g);
/* Uniform in [lo, hi] (inclusive); lo when hi <= lo. */
int64_t nm_rng_range(struct nm_rng *g, int64_t lo, int64_t hi);

/*
 * When a chunk that arrived at `arrival` may leave: arrival + delay + jitter
 * (jitter_offset drawn by the caller in [-jitter, +jitter]), never before the
 * arrival and never before the previous chunk's release `prev`, so bytes keep
 * their order whatever the draw.
 */
int64_t nm_release_ms(int64_t prev, int64_t arrival, int64_t delay, int64_t jitter_offset);

/*
 * Token bucket counted in bits, refilled at kbps bits per ms (kbit/s), at
 * most burst_bytes deep. kbps 0 means unlimited: the bucket stays full, so
 * limiting from a later `set` starts with a full burst.
 */
struct nm_rate {
	int64_t bits;
	int64_t last_ms;
};

void nm_rate_init(struct nm_rate *r, int64_t burst_bytes, int64_t now);
/* Bytes that may be sent at now (refills first); INT64_MAX when kbps is 0. */
int64_t nm_rate_avail(struct nm_rate *r, int64_t kbps, int64_t burst_bytes, int64_t now);
/* Account for bytes sent (after nm_rate_avail at the same now). */
void nm_rate_take(struct nm_rate *r, int64_t kbps, int64_t bytes);
/* ms from the last refill until `bytes` (<= burst) are available; >= 1, 0 if already. */
int64_t nm_rate_wait_ms(const struct nm_rate *r, int64_t kbps, int64_t bytes);

/*
 * Periodic stalls: windows [epoch + k*every, epoch + k*every + len) for
 * k >= 1 (the first stall comes one period after the epoch). Returns true
 * inside a window with *next = its end, false outside with *next = the next
 * window's start (INT64_MAX when every or len is 0).
 */
bool nm_stall_at(int64_t every, int64_t len, int64_t epoch, int64_t now, int64_t *next);

#endif
