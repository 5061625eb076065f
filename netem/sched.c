/*
 * nm_sched: release times, token bucket, stall windows (see sched.h).
 *
 * The parameter table bounds every input (delays <= 10 min, rates <= 1e8
 * kbit/s, bursts <= 1 GiB), so none of the sums below can overflow.
 *
 * Threads: any thread; no shared state.
 */
#include "netem/sched.h"

void nm_rng_seed(struct nm_rng *g, uint64_t seed)
{
	g->s = seed;
}

uint64_t nm_rng_next(struct nm_rng *g)
{
	uint64_t z = (g->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

int64_t nm_rng_range(struct nm_rng *g, int64_t lo, int64_t hi)
{
	uint64_t span;

	if (hi <= lo)
		return lo;
	/* the modulo bias is below 2^-40 for the spans used here (ms up to a day) */
	span = (uint64_t)hi - (uint64_t)lo + 1;
	return lo + (int64_t)(nm_rng_next(g) % span);
}

int64_t nm_release_ms(int64_t prev, int64_t arrival, int64_t delay, int64_t jitter_offset)
{
	int64_t extra = delay + jitter_offset, t;

	t = arrival + (extra > 0 ? extra : 0);
	return t > prev ? t : prev;
}

void nm_rate_init(struct nm_rate *r, int64_t burst_bytes, int64_t now)
{
	r->bits = burst_bytes * 8;
	r->last_ms = now;
}

int64_t nm_rate_avail(struct nm_rate *r, int64_t kbps, int64_t burst_bytes, int64_t now)
{
	int64_t cap = burst_bytes * 8;

	if (kbps <= 0) {
		r->bits = cap;
		r->last_ms = now;
		return INT64_MAX;
	}
	if (now > r->last_ms) {
		int64_t dt = now - r->last_ms;

		/* dt * kbps could overflow after days idle; the cap is reached long before */
		r->bits = dt >= (cap + kbps - 1) / kbps ? cap : r->bits + dt * kbps;
		if (r->bits > cap)
			r->bits = cap;
		r->last_ms = now;
	}
	if (r->bits > cap) /* burst_bytes was lowered at run time */
		r->bits = cap;
	return r->bits > 0 ? r->bits / 8 : 0;
}

void nm_rate_take(struct nm_rate *r, int64_t kbps, int64_t bytes)
{
	if (kbps > 0)
		r->bits -= bytes * 8;
}

int64_t nm_rate_wait_ms(const struct nm_rate *r, int64_t kbps, int64_t bytes)
{
	int64_t missing = bytes * 8 - r->bits;

	if (kbps <= 0 || missing <= 0)
		return 0;
	return (missing + kbps - 1) / kbps;
}

bool nm_stall_at(int64_t every, int64_t len, int64_t epoch, int64_t now, int64_t *next)
{
	int64_t k, start;

	if (every <= 0 || len <= 0) {
		*next = INT64_MAX;
		return false;
	}
	if (now < epoch + every) {
		*next = epoch + every;
		return false;
	}
	k = (now - epoch) / every;
	start = epoch + k * every;
	if (now < start + len) {
		*next = start + len;
		return true;
	}
	*next = start + every;
	return false;
}
