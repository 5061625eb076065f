/*
 * One control connection of lg-relay: a line-based request/answer channel on a
 * non-blocking socket. Complete lines go to the owner's handler one at a time;
 * the handler answers with nm_ctl_printf. While answers wait to be sent, no
 * more lines are handled, so a client that never reads cannot make the relay
 * buffer without bound.
 *
 * Threads: the owner's thread only; no locking.
 */
#ifndef NM_CTL_H
#define NM_CTL_H

#include <stddef.h>

#define NM_CTL_LINE_MAX   4096 /* a longer line is answered with an error, then closed */
#define NM_CTL_ANSWER_MAX 4096 /* a handler's answers to one line fit in this */

struct nm_ctl;

/* Called once per line: NUL-terminated, trailing CR/blanks removed; may modify line. */
typedef void (*nm_ctl_handler)(void *arg, struct nm_ctl *k, char *line);

enum nm_ctl_want { NM_CTL_READ, NM_CTL_WRITE, NM_CTL_DONE };

/* Takes ownership of fd (non-blocking). Caller frees with nm_ctl_free. NULL on OOM (fd stays open).
 */
struct nm_ctl *nm_ctl_new(int fd);
/* Closes the fd. */
void nm_ctl_free(struct nm_ctl *k);
int nm_ctl_fd(const struct nm_ctl *k);

/*
 * Read what the socket has, handle complete lines, send answers; bounded work
 * per call. Returns what to wait for next: READ, WRITE (answers pending, or
 * lines left over; the socket is then usually writable at once), or DONE (EOF,
 * error, over-long line): free it.
 */
enum nm_ctl_want nm_ctl_service(struct nm_ctl *k, nm_ctl_handler fn, void *arg);

/* Queue an answer (handlers only). Dropped if it would not fit, which ANSWER_MAX rules out. */
void nm_ctl_printf(struct nm_ctl *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Queue {"error":msg}\n. */
void nm_ctl_error(struct nm_ctl *k, const char *msg);

#endif
