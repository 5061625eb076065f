/* Clocks. Any thread may call. */
#ifndef GW_CLOCK_H
#define GW_CLOCK_H

#include <stdint.h>

/* Wall clock, ms since the Unix epoch: the "ts" clients see. */
int64_t gw_clock_wall_ms(void);
/* Monotonic clock in ms and ns: for intervals, rate limits and timeouts. */
int64_t gw_clock_mono_ms(void);
int64_t gw_clock_mono_ns(void);

#endif
