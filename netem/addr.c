/*
 * nm_addr: host:port parsing and listening sockets (see addr.h).
 *
 * Threads: any thread.
 */
#include "netem/addr.h"

#include "netem/params.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int nm_hostport_split(const char *s, char *host, size_t hostlen, int *port)
{
	const char *colon, *h = s, *hend;
	int64_t v;

	if (!s)
		return -1;
	if (s[0] == '[') {
		h = s + 1;
		hend = strchr(h, ']');
		if (!hend || hend[1] != ':')
			return -1;
		colon = hend + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return -1; /* a bare v6 address must be bracketed */
		hend = colon;
	}
	if (hend == h || (size_t)(hend - h) >= hostlen)
		return -1;
	if (nm_parse_i64(colon + 1, 0, 65535, &v))
		return -1;
	memcpy(host, h, (size_t)(hend - h));
	host[hend - h] = '\0';
	*port = (int)v;
	return 0;
}

int nm_addr_resolve(const char *spec, bool passive, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai;
	char host[256], port[8];
	int p;

	if (nm_hostport_split(spec, host, sizeof(host), &p))
		return -1;
	snprintf(port, sizeof(port), "%d", p);
	if (passive)
		hints.ai_flags |= AI_PASSIVE;
	if (getaddrinfo(host, port, &hints, &ai))
		return -1;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

bool nm_addr_is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	return ss->ss_family == AF_INET6 &&
	       IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

int nm_addr_listen(const struct sockaddr_storage *ss, socklen_t len, int *port)
{
	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);
	int one = 1, fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (const struct sockaddr *)ss, len) || listen(fd, SOMAXCONN) ||
	    getsockname(fd, (struct sockaddr *)&bound, &blen)) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	*port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
	                                         : ((struct sockaddr_in6 *)&bound)->sin6_port);
	return fd;
}
