#include "gateway/policy.h"

static const char *const transport_names[] = {"ws", "longpoll", "shortpoll"};
static const char *const reason_names[GW_WHY__COUNT] = {
    "new", "stable", "rate_high", "rate_very_high", "probe", "probe_failed", "untracked"};

const char *gw_transport_name(enum gw_transport t)
{
	return transport_names[t];
}

const char *gw_reason_name(enum gw_reason r)
{
	return reason_names[r];
}

void gw_policy_init(struct gw_policy *p, const struct gw_policy_cfg *cfg, int64_t now_ms)
{
	*p = (struct gw_policy){.level = GW_TP_WS,
				.reason = GW_WHY_NEW,
				.changed_ms = now_ms,
				.last_event_ms = now_ms,
				.probe_wait_ms = cfg->probe_after_ms};
}

static void move(struct gw_policy *p, enum gw_transport level, enum gw_reason why,
		 int64_t now_ms)
{
	p->level = level;
	p->reason = why;
	p->changed_ms = now_ms;
	p->probing = why == GW_WHY_PROBE;
}

void gw_policy_event(struct gw_policy *p, const struct gw_policy_cfg *cfg, double rate,
		     int64_t now_ms)
{
	p->last_event_ms = now_ms;
	if (p->probing && now_ms - p->changed_ms < p->probe_wait_ms) {
		int64_t w = p->probe_wait_ms * 2;
		p->probe_wait_ms = w < cfg->probe_max_ms ? w : cfg->probe_max_ms;
		move(p, p->level + 1, GW_WHY_PROBE_FAILED, now_ms);
		/* The rate may still say "go lower"; fall through to check. */
	}
	if (rate >= cfg->shortpoll_above && p->level < GW_TP_SHORTPOLL)
		move(p, GW_TP_SHORTPOLL, GW_WHY_RATE_VERY_HIGH, now_ms);
	else if (rate >= cfg->longpoll_above && p->level < GW_TP_LONGPOLL)
		move(p, GW_TP_LONGPOLL, GW_WHY_RATE_HIGH, now_ms);
}

void gw_policy_tick(struct gw_policy *p, const struct gw_policy_cfg *cfg, double rate,
		    int64_t now_ms)
{
	if (p->probing) {
		if (now_ms - p->changed_ms < p->probe_wait_ms)
			return;
		p->probing = false;
		p->probe_wait_ms = cfg->probe_after_ms;
		p->reason = GW_WHY_STABLE;
	}
	if (p->level == GW_TP_WS) {
		if (p->reason == GW_WHY_NEW && now_ms > p->changed_ms)
			p->reason = GW_WHY_STABLE;
		return;
	}
	double leaving = p->level == GW_TP_SHORTPOLL ? cfg->shortpoll_above : cfg->longpoll_above;
	if (now_ms - p->last_event_ms >= p->probe_wait_ms &&
	    now_ms - p->changed_ms >= p->probe_wait_ms && rate < cfg->hysteresis * leaving)
		move(p, p->level - 1, GW_WHY_PROBE, now_ms);
}
