/*
 * nm_addr: host:port forms, resolution of numeric addresses, the loopback
 * rule for the control port, and a real listening socket on port 0.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <unistd.h>

#include "netem/addr.h"

static void test_hostport(void **state)
{
	char host[16];
	int port = -1;

	(void)state;
	assert_int_equal(nm_hostport_split("127.0.0.1:8080", host, sizeof(host), &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 8080);
	assert_int_equal(nm_hostport_split("[::1]:0", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 0);
	assert_int_equal(nm_hostport_split("localhost:65535", host, sizeof(host), &port), 0);
	assert_int_equal(port, 65535);
	port = -1;
	assert_int_equal(nm_hostport_split("::1:80", host, sizeof(host), &port), -1);
	assert_int_equal(nm_hostport_split("host", host, sizeof(host), &port), -1);
	assert_int_equal(nm_hostport_split("host:", host, sizeof(host), &port), -1);
	assert_int_equal(nm_hostport_split(":80", host, sizeof(host), &port), -1);
	assert_int_equal(nm_hostport_split("[]:80", host, sizeof(host), &port), -1);
	assert_int_equal(nm_hostport_split("[::1]80", host, sizeof(host), &port), -1);
	assert_int_equal(nm_hostport_split("h:65536", host, sizeof(host), &port), -1);
	assert_int_equal(nm_hostport_split("h:-1", host, sizeof(host), &port), -1);
	assert_int_equal(nm_hostport_split("h:8o", host, sizeof(host), &port), -1);
	assert_int_equal(nm_hostport_split("a-very-long-hostname:1", host, sizeof(host), &port),
	                 -1);
	assert_int_equal(nm_hostport_split(NULL, host, sizeof(host), &port), -1);
	assert_int_equal(port, -1);
}

static void test_resolve_and_loopback(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len;

	(void)state;
	assert_int_equal(nm_addr_resolve("127.0.0.1:80", false, &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 80);
	assert_true(nm_addr_is_loopback(&ss));
	assert_int_equal(nm_addr_resolve("127.9.8.7:1", false, &ss, &len), 0);
	assert_true(nm_addr_is_loopback(&ss));
	assert_int_equal(nm_addr_resolve("[::1]:1", false, &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_true(nm_addr_is_loopback(&ss));
	assert_int_equal(nm_addr_resolve("0.0.0.0:1", true, &ss, &len), 0);
	assert_false(nm_addr_is_loopback(&ss));
	assert_int_equal(nm_addr_resolve("10.77.0.1:1", false, &ss, &len), 0);
	assert_false(nm_addr_is_loopback(&ss));
	assert_int_equal(nm_addr_resolve("300.1.1.1:1", false, &ss, &len), -1);
	assert_int_equal(nm_addr_resolve("127.0.0.1", false, &ss, &len), -1);
}

static void test_listen_port0(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int port = -1, fd, fd2, port2 = -1;

	(void)state;
	assert_int_equal(nm_addr_resolve("127.0.0.1:0", true, &ss, &len), 0);
	fd = nm_addr_listen(&ss, len, &port);
	assert_true(fd >= 0);
	assert_true(port > 0 && port <= 65535);
	/* the same port again is taken: -1 with errno set */
	((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
	errno = 0;
	fd2 = nm_addr_listen(&ss, len, &port2);
	assert_int_equal(fd2, -1);
	assert_int_equal(errno, EADDRINUSE);
	assert_int_equal(port2, -1);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hostport),
	    cmocka_unit_test(test_resolve_and_loopback),
	    cmocka_unit_test(test_listen_port0),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
