#!/usr/bin/python3
"""Keep-alive idle timeout, which the gateway enforces itself (transport/http.c):
an idle keep-alive connection is closed after keepalive_timeout, one that keeps
sending requests (danmaku, polls, gzip polls, health) stays open, a held
long-poll is governed by its own wait, and a new connection that sends nothing
is still closed after io_timeout (by the short-poll fast path, transport/h1.c, which
holds every new plain-HTTP connection until its first request)."""

import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lg  # noqa: E402


class RawHttp:
    """One raw keep-alive connection: requests one at a time, responses read by
    Content-Length, and a bounded wait for the server to close it."""

    def __init__(self, srv, timeout=10.0):
        self.s = socket.create_connection((lg.HOST, srv.port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.s.close()

    def request(self, method, path, body=None, headers=()):
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: x"] + list(headers)
        if body is not None:
            lines += ["Content-Type: application/json", "Content-Length: %d" % len(body)]
        self.s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        return self.response()

    def _fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server while a response was expected")
        self.buf += chunk

    def response(self):
        """(status, {lowercased header: value}, body bytes)."""
        for _ in range(10000):
            if b"\r\n\r\n" in self.buf:
                break
            self._fill()
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0"))
        self.buf = rest
        for _ in range(10000):
            if len(self.buf) >= n:
                break
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, hdrs, body

    def wait_closed(self, limit):
        """Seconds until the server closes (EOF or reset), or None after limit s."""
        t0 = time.monotonic()
        self.s.settimeout(0.1)
        while time.monotonic() - t0 < limit:
            try:
                chunk = self.s.recv(4096)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return time.monotonic() - t0
            if not chunk:
                return time.monotonic() - t0
            raise AssertionError("unexpected bytes on an idle connection: %r" % chunk[:100])
        return None


class KeepaliveTimeoutTest(lg.ServerTest):
    # one worker so that every connection shares one idle list
    server_args = ["--keepalive-timeout", "1", "--io-timeout", "3", "--workers", "1"]
    timeout = 60

    def test_idle_connection_closed_after_keepalive_timeout(self):
        c = RawHttp(self.srv)
        try:
            st, _, body = c.request("GET", "/healthz")
            self.assertEqual(st, 200, body)
            waited = c.wait_closed(6.0)
        finally:
            c.close()
        self.assertIsNotNone(waited, "idle keep-alive connection still open 6 s later (keepalive_timeout 1)")
        # the limit is 1 s after the answer; the reaper runs every 50 ms
        self.assertGreaterEqual(waited, 0.8, "closed before keepalive_timeout")
        self.assertLess(waited, 4.0)

    def test_busy_connection_stays_open(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        c = RawHttp(self.srv)
        try:
            t0 = time.monotonic()
            i = 0
            # 3.2 s of requests 0.4 s apart on a connection with a 1 s idle limit
            while time.monotonic() - t0 < 3.2:
                kind = i % 4
                if kind == 0:
                    body = json.dumps({"uid": "ka", "text": "busy %d %s" % (i, "x" * 80)}).encode()
                    st, _, b = c.request("POST", "/v1/rooms/%s/danmaku" % rm, body=body)
                    self.assertEqual(st, 202, b)
                elif kind == 1:
                    st, _, b = c.request("GET", "/v1/rooms/%s/poll?since=%s" % (rm, cur))
                    self.assertEqual(st, 200, b)
                    cur = json.loads(b)["cursor"]
                elif kind == 2:
                    st, h, b = c.request("GET", "/v1/rooms/%s/poll?since=%s" % (rm, cur),
                                         headers=["Accept-Encoding: gzip"])
                    self.assertEqual(st, 200, b)
                else:
                    st, _, b = c.request("GET", "/healthz")
                    self.assertEqual(st, 200, b)
                i += 1
                time.sleep(0.4)
            self.assertGreaterEqual(i, 6)
            # then idle: closed like any other
            waited = c.wait_closed(6.0)
        finally:
            c.close()
        self.assertIsNotNone(waited, "connection not closed once it went idle")

    def test_longpoll_outlives_keepalive_timeout(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        c = RawHttp(self.srv)
        try:
            # a request first, so the connection has been on the idle list
            st, _, _ = c.request("GET", "/healthz")
            self.assertEqual(st, 200)
            t0 = time.monotonic()
            st, _, b = c.request("GET", "/v1/rooms/%s/poll?since=%s&wait=3" % (rm, cur))
            held = time.monotonic() - t0
            self.assertEqual(st, 200, b)
            self.assertEqual(json.loads(b)["msgs"], [])
            self.assertGreaterEqual(held, 2.5, "the long-poll was not held for its wait")
            waited = c.wait_closed(6.0)
        finally:
            c.close()
        self.assertIsNotNone(waited, "connection not closed after the long-poll ended")

    def test_silent_new_connection_closed_after_io_timeout(self):
        # io_timeout (3 here), not keepalive_timeout: the fast path times a new connection
        c = RawHttp(self.srv)
        try:
            waited = c.wait_closed(10.0)
        finally:
            c.close()
        self.assertIsNotNone(waited, "a connection that never sent a request is still open")
        self.assertGreaterEqual(waited, 2.0, "closed before io_timeout")

    def test_many_connections_closed_in_any_order(self):
        conns = [RawHttp(self.srv) for _ in range(40)]
        try:
            for c in conns:
                st, _, _ = c.request("GET", "/healthz")
                self.assertEqual(st, 200)
            # a few close themselves meanwhile (unlinked from the middle of the list)
            for c in conns[5:10]:
                c.close()
            # and a few stay busy for a while
            t0 = time.monotonic()
            while time.monotonic() - t0 < 2.0:
                for c in conns[:3]:
                    st, _, _ = c.request("GET", "/healthz")
                    self.assertEqual(st, 200)
                time.sleep(0.3)
            for c in conns[10:]:
                self.assertIsNotNone(c.wait_closed(4.0), "an idle connection was not closed")
            for c in conns[:3]:
                self.assertIsNotNone(c.wait_closed(4.0), "a formerly busy connection was not closed")
        finally:
            for c in conns:
                c.close()
        # the gateway still serves, and counts only what is open
        lg.wait_for(lambda: lg.metrics(self.srv).get("livegate_open_connections", 99) <= 2,
                    timeout=5, what="open connections back to the scrape itself")


if __name__ == "__main__":
    lg.main()
