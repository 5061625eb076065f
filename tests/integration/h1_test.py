#!/usr/bin/python3
"""The short-poll fast path (transport/h1.c, poll_fast_path): short-polls on a
plain-HTTP connection are read and answered by livegate's own HTTP/1.1 code,
with the same answers as through libwebsockets; every other request reaches
lws (a first request untouched, a later body-less one with the bytes already
read, a later one with a body by closing the connection unanswered, for the
client to resend); pipelining, HTTP/1.0, Connection: close, slow readers, slow
senders and idle connections behave as a user of an HTTP server expects."""

import gzip
import json
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lg  # noqa: E402
from keepalive_test import RawHttp  # noqa: E402


def counters(srv):
    m = lg.metrics(srv)
    return (m.get("livegate_http_fast_requests_total", 0),
            m.get("livegate_http_handovers_total", 0),
            m.get("livegate_http_body_closes_total", 0))


def read_all(s, limit=5.0):
    """Everything the server sends until it closes (bounded)."""
    s.settimeout(limit)
    out = b""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        out += chunk
    return out


def split_responses(raw):
    """[(status line, {header: value}, body)] of consecutive Content-Length answers."""
    out = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        hdrs = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs["content-length"])
        out.append((lines[0], hdrs, rest[:n]))
        raw = rest[n:]
    return out


class FastPathTest(lg.ServerTest):
    server_args = ["--workers", "1", "--keepalive-timeout", "1", "--io-timeout", "2"]
    timeout = 90

    def test_polls_are_answered_by_the_fast_path(self):
        rm = lg.room()
        f0, h0, _ = counters(self.srv)
        c = RawHttp(self.srv)
        try:
            st, _, b = c.request("GET", "/v1/rooms/%s/poll" % rm)
            self.assertEqual(st, 200, b)
            cur = json.loads(b)["cursor"]
            lg.post_ok(self.srv, rm, "u1", "hello fast path")
            st, h, b = c.request("GET", "/v1/rooms/%s/poll?since=%s" % (rm, cur))
            self.assertEqual(st, 200, b)
            self.assertEqual([m["text"] for m in json.loads(b)["msgs"]], ["hello fast path"])
            self.assertEqual(h["content-type"], "application/json")
            self.assertEqual(h["cache-control"], "no-store")
            self.assertEqual(h["vary"], "Accept-Encoding")
            self.assertNotIn("connection", h)
        finally:
            c.close()
        f1, h1, _ = counters(self.srv)
        self.assertEqual(f1 - f0, 2)
        # the post and the scrapes went to lws as first requests: not hand-overs
        self.assertEqual(h1 - h0, 0)

    def test_gzip_answer(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        for i in range(20):
            lg.post_ok(self.srv, rm, "u1", "gzip me %d %s" % (i, "y" * 60))
        c = RawHttp(self.srv)
        try:
            q = "/v1/rooms/%s/poll?since=%s" % (rm, cur)
            st, h, z = c.request("GET", q, headers=["Accept-Encoding: gzip"])
            self.assertEqual(st, 200)
            self.assertEqual(h.get("content-encoding"), "gzip")
            st, h2, plain = c.request("GET", q)
            self.assertNotIn("content-encoding", h2)
            self.assertEqual(json.loads(gzip.decompress(z)), json.loads(plain))
            self.assertEqual(len(json.loads(plain)["msgs"]), 20)
            # q=0 refuses it, as on the lws path
            st, h3, _ = c.request("GET", q, headers=["Accept-Encoding: gzip;q=0"])
            self.assertNotIn("content-encoding", h3)
        finally:
            c.close()

    def test_pipelined_polls_then_a_bodyless_request_for_lws(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        lg.post_ok(self.srv, rm, "u1", "pipelined")
        f0, h0, _ = counters(self.srv)
        s = socket.create_connection((lg.HOST, self.srv.port), timeout=5)
        try:
            reqs = b"".join(
                b"GET /v1/rooms/%s/poll?since=%s HTTP/1.1\r\nHost: x\r\n\r\n" % (rm.encode(), cur.encode())
                for _ in range(3))
            reqs += b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            reqs += b"GET /v1/rooms/%s/poll?since=%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % (
                rm.encode(), cur.encode())
            s.sendall(reqs)
            answers = split_responses(read_all(s))
        finally:
            s.close()
        self.assertEqual(len(answers), 5, answers)
        for line, _, body in answers[:3] + answers[4:]:
            self.assertIn(" 200 ", line)
            self.assertEqual([m["text"] for m in json.loads(body)["msgs"]], ["pipelined"])
        self.assertEqual(json.loads(answers[3][2]), {"status": "ok"})
        f1, h1, _ = counters(self.srv)
        self.assertEqual(f1 - f0, 3, "the three polls before /healthz")
        self.assertEqual(h1 - h0, 1, "one hand-over, with the last poll behind it")

    def test_request_with_body_after_polls_is_closed_unanswered(self):
        rm = lg.room()
        _, _, b0 = counters(self.srv)
        c = RawHttp(self.srv)
        try:
            st, _, b = c.request("GET", "/v1/rooms/%s/poll" % rm)
            self.assertEqual(st, 200)
            cur = json.loads(b)["cursor"]
            body = json.dumps({"uid": "u1", "text": "retry me"}).encode()
            c.s.sendall(b"POST /v1/rooms/%s/danmaku HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                        % (rm.encode(), len(body), body))
            self.assertEqual(read_all(c.s, 5.0), b"", "no answer, only the close")
        finally:
            c.close()
        self.assertEqual(counters(self.srv)[2] - b0, 1)
        # nothing was published; the client's resend on a new connection is
        p = lg.poll_json(self.srv, rm, since=cur)
        self.assertEqual(p["msgs"], [])
        c = RawHttp(self.srv)
        try:
            st, _, b = c.request("POST", "/v1/rooms/%s/danmaku" % rm, body=body)
            self.assertEqual(st, 202, b)
        finally:
            c.close()
        p = lg.poll_json(self.srv, rm, since=cur)
        self.assertEqual([m["text"] for m in p["msgs"]], ["retry me"])

    def test_http10_and_connection_close(self):
        rm = lg.room()
        s = socket.create_connection((lg.HOST, self.srv.port), timeout=5)
        try:
            s.sendall(b"GET /v1/rooms/%s/poll HTTP/1.0\r\n\r\n" % rm.encode())
            raw = read_all(s)
        finally:
            s.close()
        (line, h, body), = split_responses(raw)
        self.assertTrue(line.startswith("HTTP/1.0 200"), line)
        self.assertEqual(json.loads(body)["room"], rm)

        s = socket.create_connection((lg.HOST, self.srv.port), timeout=5)
        try:
            s.sendall(b"GET /v1/rooms/%s/poll HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" % rm.encode())
            s.settimeout(2)
            first = s.recv(65536)
            self.assertIn(b"connection: keep-alive", first.lower())
            s.sendall(b"GET /v1/rooms/%s/poll HTTP/1.0\r\n\r\n" % rm.encode())
            raw = first + read_all(s)
        finally:
            s.close()
        self.assertEqual(len(split_responses(raw)), 2)

        s = socket.create_connection((lg.HOST, self.srv.port), timeout=5)
        try:
            s.sendall(b"GET /v1/rooms/%s/poll HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % rm.encode())
            t0 = time.monotonic()
            raw = read_all(s)
            self.assertLess(time.monotonic() - t0, 1.0, "not closed after the answer")
        finally:
            s.close()
        (line, h, _), = split_responses(raw)
        self.assertEqual(h.get("connection"), "close")

    def test_errors_match_and_change_nothing(self):
        rm = lg.room()
        c = RawHttp(self.srv)
        try:
            for q, code in [("since=zz", "bad_cursor"), ("client=a.b", "bad_client"),
                            ("wait=x", "bad_wait"), ("wait=00", "bad_wait")]:
                st, h, b = c.request("GET", "/v1/rooms/%s/poll?%s" % (rm, q))
                self.assertEqual(st, 400, (q, b))
                self.assertEqual(json.loads(b)["error"], code)
                self.assertEqual(h["content-type"], "application/json")
            # the connection still serves
            st, _, _ = c.request("GET", "/v1/rooms/%s/poll" % rm)
            self.assertEqual(st, 200)
        finally:
            c.close()
        self.assertTrue(self.srv.alive())

    def test_slow_sender_and_silent_connection_time_out(self):
        # io_timeout 2: counted from the request's first byte, more bytes do not extend it
        s = socket.create_connection((lg.HOST, self.srv.port), timeout=5)
        try:
            s.sendall(b"GET /v1/rooms/slow/poll HTTP/1.1\r\n")
            t0 = time.monotonic()
            closed = None
            s.settimeout(0.4)
            while time.monotonic() - t0 < 8:
                try:
                    s.sendall(b"X")
                    if s.recv(1) == b"":
                        closed = time.monotonic() - t0
                        break
                except socket.timeout:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    closed = time.monotonic() - t0
                    break
        finally:
            s.close()
        self.assertIsNotNone(closed, "a request dribbling in was never timed out")
        self.assertGreaterEqual(closed, 1.5)
        self.assertLess(closed, 5.0)

    def test_idle_keepalive_closed(self):
        c = RawHttp(self.srv)
        try:
            st, _, _ = c.request("GET", "/v1/rooms/%s/poll" % lg.room())
            self.assertEqual(st, 200)
            waited = c.wait_closed(6.0)
        finally:
            c.close()
        self.assertIsNotNone(waited)
        self.assertGreaterEqual(waited, 0.8)
        self.assertLess(waited, 4.0)

    def test_slow_reader_gets_the_whole_answer_then_the_next(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        p = lg.Poster(self.srv)
        try:
            for i in range(1500):
                p.post(rm, "u%d" % (i % 50), "%05d %s" % (i, "z" * 180))
        finally:
            p.close()
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect((lg.HOST, self.srv.port))
        try:
            q = b"GET /v1/rooms/%s/poll?since=%s HTTP/1.1\r\nHost: x\r\n\r\n" % (rm.encode(), cur.encode())
            s.sendall(q + q.replace(b"Host: x", b"Host: x\r\nConnection: close"))
            time.sleep(1.5)  # the server's write of ~300 KB stops part-way meanwhile
            raw = read_all(s, 10.0)
        finally:
            s.close()
        answers = split_responses(raw)
        self.assertEqual(len(answers), 2)
        for _, _, body in answers:
            texts = [m["text"] for m in json.loads(body)["msgs"]]
            self.assertEqual(len(texts), 1500)
            self.assertEqual([t[:5] for t in texts], ["%05d" % i for i in range(1500)])


class SameAnswersTest(lg.ServerTest):
    """The same requests on the fast path and through lws (--poll-fast-path 0)."""
    server_args = ["--workers", "1"]
    timeout = 60

    def test_same_answers_both_ways(self):
        other = lg.Server(["--workers", "1", "--poll-fast-path", "0"])
        other.start()
        try:
            rm = lg.room()
            results = []
            for srv in (self.srv, other):
                cur = lg.current_cursor(srv, rm)
                for i in range(3):
                    lg.post_ok(srv, rm, "u1", "same %d" % i)
                got = []
                c = RawHttp(srv)
                try:
                    for q in ["since=%s" % cur, "since=%s&wait=0" % cur, "since=zz",
                              "client=bad.id", "since=%s&client=c1" % cur, "wait=-1", ""]:
                        st, h, b = c.request("GET", "/v1/rooms/%s/poll?%s" % (rm, q))
                        body = json.loads(b)
                        body.pop("cursor", None)  # each gateway has its own epoch
                        for m in body.get("msgs", []):
                            m.pop("ts", None)
                        if "advice" in body:
                            body["advice"].pop("cursor", None)
                        keep = {k: v for k, v in h.items()
                                if k in ("content-type", "cache-control", "vary", "content-encoding")}
                        got.append((st, keep, body))
                finally:
                    c.close()
                results.append(got)
            self.assertEqual(results[0], results[1])
            self.assertGreater(counters(self.srv)[0], 0)
            self.assertEqual(counters(other)[0], 0, "--poll-fast-path 0 answered on the fast path")
        finally:
            other.stop()


if __name__ == "__main__":
    lg.main()
