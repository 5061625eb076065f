/*
 * A binary min-heap of timers. Each timer remembers its slot, so re-arming
 * or cancelling one is O(log n) and the relay can hold a few timers per
 * connection for thousands of connections without scanning.
 *
 * The heap stores pointers and never owns the timers: a timer must be
 * disarmed before its memory is freed.
 *
 * Threads: one owner thread per heap; no locking.
 */
#ifndef NM_HEAP_H
#define NM_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NM_TIMER_IDLE SIZE_MAX

struct nm_timer {
	int64_t when;
	size_t idx; /* slot in the heap, NM_TIMER_IDLE when not armed */
};

struct nm_heap {
	struct nm_timer **v;
	size_t n, cap;
};

/* A fresh timer is idle; call before the first arm. */
static inline void nm_timer_init(struct nm_timer *t)
{
	t->idx = NM_TIMER_IDLE;
}

static inline bool nm_timer_armed(const struct nm_timer *t)
{
	return t->idx != NM_TIMER_IDLE;
}

/* Arm t at `when`, or move it there if armed. 0, or -1 on OOM (t is then unchanged). */
int nm_heap_arm(struct nm_heap *h, struct nm_timer *t, int64_t when);
/* Cancel t; a no-op when idle. */
void nm_heap_disarm(struct nm_heap *h, struct nm_timer *t);
/* The earliest timer, or NULL. */
struct nm_timer *nm_heap_top(const struct nm_heap *h);
/* Frees the array only (timers are not owned). */
void nm_heap_free(struct nm_heap *h);

#endif
