/*
 * Addresses for lg-relay's flags: "host:port" / "[v6]:port" parsing,
 * resolution, the loopback check for the control port, listening sockets.
 *
 * Threads: any thread (nm_addr_resolve blocks in getaddrinfo: start-up only).
 */
#ifndef NM_ADDR_H
#define NM_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/*
 * Split "host:port" or "[v6addr]:port" (port 0..65535). host receives the
 * address text without brackets. 0 or -1 (bad form, empty host, host too long).
 */
int nm_hostport_split(const char *s, char *host, size_t hostlen, int *port);

/* Resolve spec (passive: for bind, so "0.0.0.0" and friends). 0 or -1. */
int nm_addr_resolve(const char *spec, bool passive, struct sockaddr_storage *ss, socklen_t *len);

bool nm_addr_is_loopback(const struct sockaddr_storage *ss);

/* A non-blocking, close-on-exec listening socket; *port receives the bound port. fd or -1 (errno).
 */
int nm_addr_listen(const struct sockaddr_storage *ss, socklen_t len, int *port);

#endif
