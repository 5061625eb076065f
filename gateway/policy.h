/*
 * The transport policy of one client: a three-level ladder
 *   ws (0) <-> longpoll (1) <-> shortpoll (2)
 * driven by the client's disconnect rate (gateway/rate.h).
 *   - Down at once: a disconnect that lifts the rate to a threshold moves the
 *     client to that level (never up).
 *   - Up one level by a timed probe: after probe_wait with no disconnect and
 *     no change, and the rate below hysteresis x the threshold of the level
 *     being left. Hysteresis keeps a client near a threshold from flapping.
 *   - A disconnect within probe_wait after a probe undoes it and doubles
 *     probe_wait (up to probe_max): a link that only works for a while is
 *     not retried at the same pace. A probe that survives probe_wait resets it.
 *
 * Threads: plain values; the owner holds its lock. Pure functions of their
 * inputs, so tests drive them with synthetic clocks.
 */
#ifndef GW_POLICY_H
#define GW_POLICY_H

#include <stdbool.h>
#include <stdint.h>

enum gw_transport { GW_TP_WS, GW_TP_LONGPOLL, GW_TP_SHORTPOLL };

enum gw_reason {
	GW_WHY_NEW,
	GW_WHY_STABLE,
	GW_WHY_RATE_HIGH,
	GW_WHY_RATE_VERY_HIGH,
	GW_WHY_PROBE,
	GW_WHY_PROBE_FAILED,
	GW_WHY_UNTRACKED,
	GW_WHY__COUNT
};

struct gw_policy_cfg {
	double longpoll_above;  /* disconnects per minute */
	double shortpoll_above;
	double hysteresis;      /* 0..1 */
	int64_t probe_after_ms;
	int64_t probe_max_ms;
};

struct gw_policy {
	enum gw_transport level;
	enum gw_reason reason;
	bool probing;          /* level was raised by a probe at changed_ms */
	int64_t changed_ms;    /* last level change (or creation) */
	int64_t last_event_ms; /* last disconnect, or creation */
	int64_t probe_wait_ms;
};

const char *gw_transport_name(enum gw_transport t);
const char *gw_reason_name(enum gw_reason r);

void gw_policy_init(struct gw_policy *p, const struct gw_policy_cfg *cfg, int64_t now_ms);
/* A disconnect at now_ms; rate is the rate including it. */
void gw_policy_event(struct gw_policy *p, const struct gw_policy_cfg *cfg, double rate,
		     int64_t now_ms);
/* Time has passed without a disconnect: end a probe that held, or start one. */
void gw_policy_tick(struct gw_policy *p, const struct gw_policy_cfg *cfg, double rate,
		    int64_t now_ms);

#endif
