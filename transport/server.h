/*
 * The network server: N worker threads, each owning one libev (epoll) loop,
 * one libwebsockets context on it, and its own SO_REUSEPORT listener whose
 * accepted sockets it hands to lws (lws 4.1.6 cannot share a port between
 * contexts itself). Rooms are shared; workers wake each other through the
 * rooms' waker, which is lws_cancel_service() on the target's context.
 */
#ifndef TP_SERVER_H
#define TP_SERVER_H

#include "gateway/config.h"

struct tp_server;
struct gw_rooms;
struct gw_ingest;
struct gw_gifts;

/*
 * Create loops, contexts and listeners (errors such as EADDRINUSE surface
 * here, with a message in err) and start the worker threads. Main thread.
 * Borrows cfg, rooms, ingest, gifts and admin_token: they must outlive the server. cfg->workers
 * must be resolved (>= 1) and match the rooms' worker count.
 */
struct tp_server *tp_server_start(const struct gw_config *cfg, struct gw_rooms *rooms,
				  struct gw_ingest *ingest, struct gw_gifts *gifts,
				  const char *admin_token, char *err, size_t errlen);
/*
 * Close WebSockets with 1001, stop the workers and join them. Contexts stay
 * allocated, so answers posted afterwards (the gift journal's last flush) are
 * still safe to post. Main thread.
 */
void tp_server_stop(struct tp_server *srv);
/* Free everything; after tp_server_stop and after nothing posts answers any more. */
void tp_server_free(struct tp_server *srv);

#endif
