/*
 * Token buckets keyed by a short string (a uid, a room name).
 *
 * Each key holds `burst` tokens at most and regains `rate` tokens per second.
 * Memory is bounded: at most max_keys keys are tracked; when full, the least
 * recently used key is forgotten (a forgotten key starts again with a full
 * bucket, which is what an idle key would have anyway).
 *
 * Threads: any thread may call gw_ratelimit_take concurrently; the table is
 * split into stripes, each behind its own mutex, so two threads contend only
 * when their keys hash to the same stripe.
 */
#ifndef GW_RATELIMIT_H
#define GW_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gw_ratelimit;

/* rate > 0 tokens/s, burst >= 1, max_keys >= 1. Caller frees. NULL on bad args or OOM. */
struct gw_ratelimit *gw_ratelimit_new(double rate, double burst, size_t max_keys);
void gw_ratelimit_free(struct gw_ratelimit *rl);

/*
 * Take one token for key at monotonic time now_ms. Returns true when taken.
 * When false, *retry_after_ms (if non-NULL) receives the wait until one token
 * is available (>= 1).
 */
bool gw_ratelimit_take(struct gw_ratelimit *rl, const char *key, size_t keylen, int64_t now_ms,
		       int64_t *retry_after_ms);
/* Keys currently tracked (for tests and metrics). */
size_t gw_ratelimit_keys(struct gw_ratelimit *rl);

#endif
