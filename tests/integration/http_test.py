#!/usr/bin/python3
"""HTTP basics: /healthz, /metrics, posting, the message and batch shapes."""

import asyncio
import contextlib
import http.client
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lg  # noqa: E402

METRIC_NAMES = [
    "livegate_open_connections",
    "livegate_connections",
    "livegate_messages_published_total",
    "livegate_messages_delivered_total",
    "livegate_bytes_out_total",
    "livegate_poll_requests_total",
    "livegate_reader_overruns_total",
    "livegate_gaps_total",
    "livegate_ws_pings_total",
    "livegate_http_fast_requests_total",
    "livegate_http_handovers_total",
    "livegate_ws_ping_timeouts_total",
    "livegate_gzip_bytes_saved_total",
    "livegate_rooms",
    "livegate_rejected_total",
]


class HttpTest(lg.ServerTest):
    timeout = 60

    def test_healthz(self):
        r = self.srv.curl("/healthz")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"status": "ok"}, r)
        self.assertIn("application/json", r.headers.get("content-type", ""), r)

    def test_metrics_names_and_format(self):
        # traffic of every kind first (a post, a rejected post, short and long polls, a
        # gzip answer, an open WebSocket during the scrape) so every series exists
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        for i in range(20):
            lg.post_ok(self.srv, rm, "u1", "metrics traffic %02d padding padding padding padding" % i)
        self.assertEqual(self.srv.post_curl(rm, b"not json").status, 400)
        self.srv.poll_json(rm, since=cur, wait=1)
        self.srv.poll(rm, since=cur, gzip=True)

        async def scrape():
            ws = await lg.ws_open(self.srv, rm, since=cur)
            try:
                await lg.ws_collect(ws, 20, timeout=5)
                return await asyncio.get_running_loop().run_in_executor(None, self.srv.curl, "/metrics")
            finally:
                await ws.close()

        r = lg.run_async(scrape())
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers.get("content-type", "").startswith("text/plain"), r)
        text = r.body.decode("utf-8")
        for name in METRIC_NAMES:
            samples = [l for l in text.splitlines()
                       if re.match(r"^%s(\{[^}]*\})?\s+[-+0-9.eE]+(\s+\d+)?$" % name, l)]
            self.assertTrue(samples, "no sample line for metric %s in /metrics:\n%s" % (name, text))
        m = lg.parse_metrics(text)
        self.assertGreaterEqual(m.get('livegate_poll_requests_total{kind="short"}', 0), 1, text)
        self.assertGreaterEqual(m.get('livegate_poll_requests_total{kind="long"}', 0), 1, text)
        self.assertGreaterEqual(m.get('livegate_rejected_total{error="bad_json"}', 0), 1, text)
        self.assertGreaterEqual(m.get("livegate_rooms", 0), 1, text)
        for k, v in m.items():
            self.assertIsInstance(v, float, "metric %s has non-numeric value %r" % (k, v))
            self.assertGreaterEqual(v, 0, k)
        self.assertGreaterEqual(m.get('livegate_connections{transport="ws"}', 0), 1,
                                "an open WebSocket not counted in livegate_connections{transport=\"ws\"}")
        self.assertIn('livegate_connections{transport="longpoll"}', m, text)
        self.assertGreaterEqual(m.get("livegate_open_connections", 0), 2, "a WebSocket and the scrape are open")
        delivered = sum(v for k, v in m.items() if k.startswith("livegate_messages_delivered_total"))
        self.assertGreaterEqual(delivered, 40, "20 msgs delivered by poll and 20 by ws, counted %s" % delivered)

    def test_metrics_published_counts_posts(self):
        before = self.srv.metrics().get("livegate_messages_published_total")
        self.assertIsNotNone(before, "livegate_messages_published_total missing")
        rm = lg.room()
        for i in range(3):
            lg.post_ok(self.srv, rm, "u1", "m%d" % i)
        after = self.srv.metrics().get("livegate_messages_published_total")
        self.assertEqual(after - before, 3, "published_total went %s -> %s after 3 posts" % (before, after))
        # a rejected post is not published but counted as rejected
        rej_before = sum(v for k, v in self.srv.metrics().items() if k.startswith("livegate_rejected_total"))
        r = self.srv.post_curl(rm, b"not json")
        self.assertEqual(r.status, 400, r)
        m = self.srv.metrics()
        self.assertEqual(m.get("livegate_messages_published_total"), after, "a rejected post was counted as published")
        rej_after = sum(v for k, v in m.items() if k.startswith("livegate_rejected_total"))
        self.assertEqual(rej_after - rej_before, 1, "livegate_rejected_total did not count the bad_json post")
        self.assertEqual(m.get('livegate_rejected_total{error="bad_json"}', 0) >= 1, True, m)

    def test_post_seq_starts_at_1_and_increments(self):
        rm = lg.room()
        for want in range(1, 6):
            r = self.srv.post_curl(rm, {"uid": "u1", "text": "hi %d" % want})
            self.assertEqual(r.status, 202, r)
            self.assertEqual(r.json(), {"seq": want}, r)
            self.assertIn("application/json", r.headers.get("content-type", ""), r)
        # another room has its own numbering
        r = self.srv.post_curl(lg.room(), {"uid": "u1", "text": "other"})
        self.assertEqual((r.status, r.json()), (202, {"seq": 1}), r)

    def test_message_fields(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        self.assertIsInstance(cur, str)
        text = "héllo 弹幕 🎉 \"quoted\" \\ back/slash \n newline"
        t0 = time.time() * 1000
        r = self.srv.post_curl(rm, {"uid": "user_1-A", "text": text, "extra": {"ignored": [1, 2]}})
        t1 = time.time() * 1000
        self.assertEqual((r.status, r.json()), (202, {"seq": 1}), r)
        resp = self.srv.poll(rm, since=cur)
        self.assertEqual(resp.status, 200, resp)
        self.assertIn("application/json", resp.headers.get("content-type", ""), resp)
        b = resp.json()
        self.assertEqual(set(b), {"room", "cursor", "msgs", "gap"}, b)
        self.assertEqual(b["room"], rm)
        self.assertIs(b["gap"], False)
        self.assertIsInstance(b["cursor"], str)
        self.assertNotEqual(b["cursor"], cur, "cursor did not advance after a message")
        self.assertEqual(len(b["msgs"]), 1, b)
        m = b["msgs"][0]
        self.assertEqual(set(m), {"seq", "ts", "type", "uid", "text"}, m)
        self.assertEqual(m["seq"], 1)
        self.assertEqual(m["type"], "danmaku")
        self.assertEqual(m["uid"], "user_1-A")
        self.assertEqual(m["text"], text)
        self.assertIsInstance(m["ts"], int)
        self.assertGreaterEqual(m["ts"], t0 - 2000, "ts %d too early (post at %d)" % (m["ts"], t0))
        self.assertLessEqual(m["ts"], t1 + 2000, "ts %d too late (post done at %d)" % (m["ts"], t1))
        # "Everything is JSON (UTF-8, compact)": no whitespace outside string literals
        raw = resp.body.decode("utf-8")
        skeleton = re.sub(r'"(?:[^"\\]|\\.)*"', '""', raw)
        self.assertIsNone(re.search(r"\s", skeleton), "batch JSON is not compact: %r" % raw[:200])

    def test_seq_and_ts_monotonic(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        p = lg.Poster(self.srv)
        try:
            for i in range(30):
                st, body = p.post(rm, "u%d" % (i % 3), "t%d" % i)
                self.assertEqual((st, body), (202, {"seq": i + 1}))
        finally:
            p.close()
        b = self.srv.poll_json(rm, since=cur)
        self.assertIs(b["gap"], False)
        seqs = [m["seq"] for m in b["msgs"]]
        self.assertEqual(seqs, list(range(1, 31)), b)
        self.assertEqual([m["text"] for m in b["msgs"]], ["t%d" % i for i in range(30)])
        ts = [m["ts"] for m in b["msgs"]]
        self.assertEqual(ts, sorted(ts), "ts decreased within a room: %r" % ts)

    def test_rooms_are_isolated(self):
        a, b_ = lg.room(), lg.room()
        ca = lg.current_cursor(self.srv, a)
        cb = lg.current_cursor(self.srv, b_)
        lg.post_ok(self.srv, a, "u1", "only in a")
        ba = self.srv.poll_json(a, since=ca)
        bb = self.srv.poll_json(b_, since=cb)
        self.assertEqual([m["text"] for m in ba["msgs"]], ["only in a"])
        self.assertEqual(bb["msgs"], [], bb)
        self.assertEqual(bb["room"], b_)

    def test_keep_alive_many_requests_one_connection(self):
        rm = lg.room()
        c = http.client.HTTPConnection(lg.HOST, self.srv.port, timeout=5)
        try:
            for i in range(20):
                body = json.dumps({"uid": "ka", "text": "k%d" % i}).encode()
                c.request("POST", "/v1/rooms/%s/danmaku" % rm, body=body,
                          headers={"Content-Type": "application/json"})
                r = c.getresponse()
                data = r.read()
                self.assertEqual(r.status, 202, data)
                self.assertEqual(json.loads(data), {"seq": i + 1})
                c.request("GET", "/healthz")
                r = c.getresponse()
                self.assertEqual(r.status, 200)
                r.read()
        finally:
            c.close()

class PipelineTest(lg.ServerTest):
    """HTTP/1.1 pipelining: several requests in one TCP write, answered in order."""

    def setUp(self):
        import signal
        signal.signal(signal.SIGALRM, lg._on_alarm)
        signal.alarm(int(self.timeout))
        self.srv = None

    def test_pipelined_posts(self):
        # lws 4.1.6 cannot parse requests pipelined behind a request body, so the
        # gateway answers the first POST and closes the connection (a pipelining
        # client retries the rest, RFC 9112 9.3.2). It must never hang or spin.
        import socket
        srv = self.new_server(lg.GENEROUS, generous=False)
        rm = lg.room()
        reqs = b""
        for i in range(5):
            body = json.dumps({"uid": "p", "text": "pipe%d" % i}).encode()
            reqs += (b"POST /v1/rooms/%s/danmaku HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n%s\r\n" % (rm.encode(), len(body),
                                                        b"Connection: close\r\n" if i == 4 else b"") + body)
        s = socket.create_connection((lg.HOST, srv.port), timeout=5)
        data = b""
        closed = False
        try:
            s.sendall(reqs)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    closed = True
                    break
                data += chunk
        finally:
            s.close()
        self.assertTrue(closed, "connection neither answered in full nor closed: %r" % data)
        seqs = re.findall(rb'\{"seq":(\d+)\}', data)
        # documented: the first request is answered, then the connection is closed
        self.assertEqual(seqs, [b"1"], data)
        self.assertEqual(data.count(b"HTTP/1.1 "), 1, "only the first request may be answered: %r" % data)
        # Not stuck: the same worker answers new requests at once, with the next seq.
        st, js = lg.post(srv, rm, "p", "after")
        self.assertEqual(st, 202, js)
        self.assertEqual(js["seq"], len(seqs) + 1, js)

    def test_two_pipelined_posts_do_not_wedge_the_gateway(self):
        import socket
        srv = self.new_server(lg.GENEROUS, generous=False)
        rm = lg.room()
        body = b'{"uid":"p","text":"x"}'
        req = (b"POST /v1/rooms/%s/danmaku HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (
            rm.encode(), len(body)) + body) * 2
        s = socket.create_connection((lg.HOST, srv.port), timeout=3)
        try:
            s.sendall(req)
            with contextlib.suppress(OSError):
                s.recv(65536)
        finally:
            s.close()
        bad = 0
        for _ in range(10):  # new connections spread over the workers (SO_REUSEPORT)
            bad += srv.curl("/healthz", timeout=3).status != 200
        self.assertEqual(bad, 0, "%d of 10 /healthz requests got no answer after two pipelined POSTs" % bad)
        srv.stop()
        self.assertNotIn("sending SIGKILL", srv.log_text(), "gateway ignored SIGTERM after two pipelined POSTs")

    def test_pipelined_requests_answered_in_order(self):
        # pipelined requests on one socket are answered in order
        import socket
        srv = self.new_server(lg.GENEROUS, generous=False)
        rm = lg.room()
        s = socket.create_connection((lg.HOST, srv.port), timeout=5)
        try:
            req = ("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                   "GET /v1/rooms/%s/poll HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % rm).encode()
            s.sendall(req)
            data = b""
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        self.assertEqual(data.count(b"HTTP/1.1 200"), 2, data)
        self.assertIn(b'"status":"ok"', data)
        self.assertIn(('"room":"%s"' % rm).encode(), data)


class KeepaliveTest(lg.ServerTest):
    server_args = ["--keepalive-timeout", "1"]

    def test_idle_keepalive_connection_closed(self):
        import socket
        s = socket.create_connection((lg.HOST, self.srv.port), timeout=8)
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            t0 = time.monotonic()
            closed = False
            while time.monotonic() - t0 < 8:
                try:
                    chunk = s.recv(4096)
                except ConnectionResetError:
                    closed = True
                    break
                except socket.timeout:
                    break
                if not chunk:
                    closed = True
                    break
                data += chunk
            elapsed = time.monotonic() - t0
        finally:
            s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:100])
        self.assertTrue(closed, "idle keep-alive connection still open after 8 s with keepalive_timeout 1")
        self.assertLess(elapsed, 5.0)


if __name__ == "__main__":
    lg.main()
