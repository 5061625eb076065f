/*
 * A client's disconnect rate: disconnects per minute of connected time, both
 * the count and the time decaying exponentially with one half-life, so old
 * history fades and a client that stopped dropping drifts back to zero.
 * The denominator never counts less than a floor, so one early drop does not
 * read as an infinite rate.
 *
 * Threads: a plain value; the owner (gateway/clients.c) holds its lock.
 */
#ifndef GW_RATE_H
#define GW_RATE_H

#include <stdint.h>

struct gw_rate {
	double events;       /* decayed disconnect count */
	double connected_ms; /* decayed connected time */
	int64_t at_ms;       /* both are decayed up to this time */
};

void gw_rate_init(struct gw_rate *r, int64_t now_ms);
/*
 * Decay to now_ms, then add connected_ms of connected time (the part of the
 * time since the last call during which the client was connected; the caller
 * knows, the estimator does not). Time going backwards is treated as no time.
 */
void gw_rate_advance(struct gw_rate *r, int64_t now_ms, int64_t connected_ms,
		     double half_life_ms);
/* One disconnect at now_ms (decays first). */
void gw_rate_event(struct gw_rate *r, int64_t now_ms, double half_life_ms);
/* events / max(connected, floor) per minute. */
double gw_rate_per_min(const struct gw_rate *r, double floor_ms);

#endif
