/* Batches. See batch.h. */
#include "gateway/batch.h"

#include <string.h>

#include "gateway/clock.h"
#include "gateway/metrics.h"
#include "gateway/ring.h"
#include "gateway/room.h"

int gw_pos_resolve(const struct gw_room *room, const struct gw_cursor *since, struct gw_pos *pos,
		   struct gw_err *err)
{
	const struct gw_ring *ring = gw_room_ring(room);
	uint64_t head = gw_ring_head(ring);

	pos->epoch = gw_ring_epoch(ring);
	pos->owe_gap = false;
	if (!since) {
		pos->after = head;
	} else if (since->epoch != pos->epoch) {
		/* The ring this cursor came from is gone: start at the oldest retained. */
		pos->after = 0;
		pos->owe_gap = true;
	} else if (since->seq > head) {
		return gw_fail(err, 400, "bad_cursor", "cursor is ahead of the room");
	} else {
		pos->after = since->seq;
	}
	return 0;
}

bool gw_pos_pending(const struct gw_room *room, const struct gw_pos *pos)
{
	return pos->owe_gap || gw_ring_head(gw_room_ring(room)) > pos->after;
}

bool gw_msg_is_danmaku(const char *msg, size_t len)
{
	/* The ring writes {"seq":N,"ts":T, and then the publisher's "type":… comes first. */
	static const char key[] = ",\"type\":\"danmaku\"";
	const size_t klen = sizeof(key) - 1;
	size_t i;

	/* seq and ts are numbers: the first ,"type": is the message's own. */
	for (i = 0; i + klen <= len && i < 64; i++)
		if (msg[i] == ',' && memcmp(msg + i, key, 9) == 0)
			return memcmp(msg + i, key, klen) == 0;
	return false;
}

/*
 * Budget sampling over the n messages a batch can hold at most: message i
 * fires when floor((i+1)*budget/n) > floor(i*budget/n), which spreads
 * `budget` picks evenly; a danmaku is kept only on a pick, anything else
 * always. Picks that land on other types are not reused: at most `budget`.
 */
struct sampler {
	uint64_t first; /* seq of message 0 */
	uint64_t n;
	size_t budget;
	size_t suppressed;
	size_t kept; /* danmaku */
};

static bool sample_keep(void *arg, uint64_t seq, const char *msg, size_t len)
{
	struct sampler *s = arg;
	uint64_t i = seq - s->first;

	if (!gw_msg_is_danmaku(msg, len))
		return true;
	if (i < s->n && (i + 1) * s->budget / s->n > i * s->budget / s->n) {
		s->kept++;
		return true;
	}
	s->suppressed++;
	return false;
}

int gw_batch_build(const struct gw_room *room, struct gw_pos *pos, size_t max_bytes,
		   struct gw_buf *out, struct gw_batch *info)
{
	return gw_batch_build_opts(room, pos, max_bytes, out, info, NULL);
}

int gw_batch_build_opts(const struct gw_room *room, struct gw_pos *pos, size_t max_bytes,
			struct gw_buf *out, struct gw_batch *info, const struct gw_batch_opts *opts)
{
	const struct gw_ring *ring = gw_room_ring(room);
	struct gw_ring_read rd;
	struct sampler smp = {0};
	char cur[GW_CURSOR_MAX];
	size_t name_len, cur_len;
	const char *name = gw_room_name(room, &name_len);
	int64_t now = gw_clock_wall_ms();
	int rc = 0;

	/* Names are [A-Za-z0-9_-]: nothing to escape. */
	if (gw_buf_puts(out, "{\"room\":\"") || gw_buf_append(out, name, name_len) ||
	    gw_buf_puts(out, "\",\"msgs\":["))
		return -1;
	if (opts && opts->danmaku_budget != SIZE_MAX) {
		uint64_t head = gw_ring_head(ring), oldest = gw_ring_oldest(ring, now);

		smp.first = pos->after + 1 > oldest ? pos->after + 1 : oldest;
		smp.n = head >= smp.first ? head - smp.first + 1 : 0;
		smp.budget = opts->danmaku_budget;
		rc = gw_ring_read_filtered(ring, pos->after, now, max_bytes, out, &rd, sample_keep,
					   &smp);
	} else {
		rc = gw_ring_read(ring, pos->after, now, max_bytes, out, &rd);
	}
	/* On OOM rd still describes the whole messages that made it into out. */
	pos->after = rd.last;
	if (rd.overrun)
		gw_metric_add(GW_M_OVERRUNS, 1);
	info->count = rd.count;
	info->suppressed = smp.suppressed;
	info->danmaku = smp.kept;
	info->gap = rd.gap || pos->owe_gap;
	info->overrun = rd.overrun;
	info->more = rd.more;
	pos->owe_gap = false;
	cur_len = gw_cursor_format(cur, (struct gw_cursor){pos->epoch, pos->after});
	if (gw_buf_puts(out, "],\"cursor\":\"") || gw_buf_append(out, cur, cur_len) ||
	    gw_buf_puts(out, info->gap ? "\",\"gap\":true" : "\",\"gap\":false"))
		return -1;
	if (smp.suppressed && gw_buf_printf(out, ",\"suppressed\":%zu", smp.suppressed))
		return -1;
	if (opts && opts->advice &&
	    (gw_buf_puts(out, ",\"advice\":") || gw_buf_append(out, opts->advice, opts->advice_len)))
		return -1;
	if (gw_buf_puts(out, "}"))
		return -1;
	return rc;
}
