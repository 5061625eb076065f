#include "gateway/rate.h"

#include <math.h>

void gw_rate_init(struct gw_rate *r, int64_t now_ms)
{
	*r = (struct gw_rate){.at_ms = now_ms};
}

static void decay(struct gw_rate *r, int64_t now_ms, double half_life_ms)
{
	if (now_ms <= r->at_ms)
		return;
	double k = exp2(-(double)(now_ms - r->at_ms) / half_life_ms);
	r->events *= k;
	r->connected_ms *= k;
	r->at_ms = now_ms;
}

void gw_rate_advance(struct gw_rate *r, int64_t now_ms, int64_t connected_ms,
		     double half_life_ms)
{
	decay(r, now_ms, half_life_ms);
	if (connected_ms > 0)
		r->connected_ms += (double)connected_ms;
}

void gw_rate_event(struct gw_rate *r, int64_t now_ms, double half_life_ms)
{
	decay(r, now_ms, half_life_ms);
	r->events += 1.0;
}

double gw_rate_per_min(const struct gw_rate *r, double floor_ms)
{
	double t = r->connected_ms > floor_ms ? r->connected_ms : floor_ms;
	return t > 0 ? r->events * 60000.0 / t : 0.0;
}
