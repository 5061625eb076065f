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

int gw_batch_build(const struct gw_room *room, struct gw_pos *pos, size_t max_bytes,
		   struct gw_buf *out, struct gw_batch *info)
{
	const struct gw_ring *ring = gw_room_ring(room);
	struct gw_ring_read rd;
	char cur[GW_CURSOR_MAX];
	size_t name_len, cur_len;
	const char *name = gw_room_name(room, &name_len);
	int rc = 0;

	/* Names are [A-Za-z0-9_-]: nothing to escape. */
	if (gw_buf_puts(out, "{\"room\":\"") || gw_buf_append(out, name, name_len) ||
	    gw_buf_puts(out, "\",\"msgs\":["))
		return -1;
	rc = gw_ring_read(ring, pos->after, gw_clock_wall_ms(), max_bytes, out, &rd);
	/* On OOM rd still describes the whole messages that made it into out. */
	pos->after = rd.last;
	if (rd.overrun)
		gw_metric_add(GW_M_OVERRUNS, 1);
	info->count = rd.count;
	info->gap = rd.gap || pos->owe_gap;
	info->overrun = rd.overrun;
	info->more = rd.more;
	pos->owe_gap = false;
	cur_len = gw_cursor_format(cur, (struct gw_cursor){pos->epoch, pos->after});
	if (gw_buf_puts(out, "],\"cursor\":\"") || gw_buf_append(out, cur, cur_len) ||
	    gw_buf_puts(out, info->gap ? "\",\"gap\":true}" : "\",\"gap\":false}"))
		return -1;
	return rc;
}
