/* The gateway layer's error convention. See error.h. */
#include "gateway/error.h"

#include <stdarg.h>
#include <stdio.h>

int gw_fail(struct gw_err *e, int status, const char *code, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return -1;
	e->status = status;
	e->code = code;
	e->retry_after_s = 0;
	va_start(ap, fmt);
	vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
	va_end(ap);
	return -1;
}
