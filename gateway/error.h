/*
 * The gateway layer's one error convention: a function returns 0 on success,
 * or -1 after filling a struct gw_err that says what the client is told
 * (an HTTP status, a short machine code, a human detail).
 */
#ifndef GW_ERROR_H
#define GW_ERROR_H

struct gw_err {
	int status;          /* HTTP status the transport answers with */
	const char *code;    /* static string, e.g. "bad_json"; the "error" field */
	char detail[192];    /* the "detail" field */
	int retry_after_s;   /* > 0: send Retry-After (429 / 503) */
};

/* Fill *e (when e is non-NULL) and return -1, so callers can `return gw_fail(...)`. */
int gw_fail(struct gw_err *e, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
