#!/usr/bin/python3
"""Every documented error: status, JSON body {"error":code,"detail":...}, and no side
effect (seq numbering shows nothing bad was published); the gateway survives it all."""

import contextlib
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lg  # noqa: E402

MAX_BODY = 512
J = "Content-Type: application/json"


def body(uid="u1", text="hello", **extra):
    d = {"uid": uid, "text": text}
    d.update(extra)
    return json.dumps(d, ensure_ascii=False).encode("utf-8")


class BadInputTest(lg.ServerTest):
    timeout = 60

    # a room that receives only bad posts (plus the good ones counted in `good`)
    ROOM = "badroom"
    start_cursor = None

    def setUp(self):
        super().setUp()
        if type(self).start_cursor is None:
            type(self).start_cursor = lg.current_cursor(self.srv, self.ROOM)

    def post_raw(self, data, room=None, headers=(J,)):
        return self.srv.post_curl(room or self.ROOM, data, headers=headers)

    def expect_good_seq(self, r):
        self.assertEqual(r.status, 202, r)
        self.assertEqual(set(r.json()), {"seq"}, r)
        self.assertIsInstance(r.json()["seq"], int, r)

    # ---------- bad_room ----------
    def test_bad_room(self):
        problems = []
        for rm in ("bad.room", "a" * 65, "sp%20ace", "a%2Fb", "%C3%A9t%C3%A9", "a*b", "a%FFb"):
            for what, r in (("POST", self.post_raw(body(), room=rm)),
                            ("poll", self.srv.curl("/v1/rooms/%s/poll" % rm))):
                try:
                    self.assertError(r, 400, "bad_room")
                except AssertionError:
                    problems.append("%s room %r -> %s %r" % (what, rm, r.status, r.body[:100]))
        if problems:
            self.fail("bad rooms not refused with 400 bad_room:\n" + "\n".join(problems))
        # 64 characters is fine
        r = self.post_raw(body(), room="b" * 64)
        self.assertEqual((r.status, r.json()), (202, {"seq": 1}), r)

    def test_room_with_percent_encoded_nul(self):
        # documented: lws's parser refuses a %00 in the path and closes without a body;
        # the gateway must survive it and keep serving
        for path, method in (("/v1/rooms/a%00b/danmaku", "POST"), ("/v1/rooms/a%00b/poll", None)):
            r = self.srv.curl(path, method=method, headers=[J] if method else [], data=body() if method else None)
            self.assertEqual(r.status, 0, "%s: expected a close without an answer, got %r" % (path, r))
            self.assertEqual(r.body, b"")
        self.assertTrue(self.srv.alive())
        self.assertEqual(self.srv.curl("/healthz").status, 200)

    def test_room_with_slash_or_empty(self):
        # a literal '/' or an empty segment does not name a room: bad_room, or no such path
        for path in ("/v1/rooms/a/b/danmaku", "/v1/rooms//danmaku", "/v1/rooms/../danmaku"):
            r = self.srv.curl(path, method="POST", headers=[J], data=body())
            self.assertIn(r.status, (400, 404), (path, r))
            self.assertError(r, r.status, "bad_room" if r.status == 400 else "not_found", path)
        # control characters: lws's percent-decoding may cut the path there (documented
        # for query values); either way the answer is an error, never a room "a\nb"
        for path in ("/v1/rooms/a/b/poll", "/v1/rooms//poll", "/v1/rooms/./poll", "/v1/rooms/a%0Ab/poll",
                     "/v1/rooms/a%09b/poll", "/v1/rooms/a%0Db/poll"):
            r = self.srv.curl(path)
            self.assertIn(r.status, (400, 404), (path, r))
            self.assertError(r, r.status, "bad_room" if r.status == 400 else "not_found", path)

    # ---------- bad_json ----------
    def test_bad_json(self):
        for data in (b"not json", b"[1,2,3]", b'"a string"', b"42", b"null", b'{"uid":"u1","text":"x"',
                     b'{"uid":"u1","text":"x"} trailing', b"{'uid':'u1'}", b"",
                     b'{"uid":"u1","text":"x",}'):
            self.assertError(self.post_raw(data), 400, "bad_json", "body %r" % data)

    # ---------- bad_field ----------
    def test_bad_field(self):
        for d in ({"text": "x"}, {"uid": "u1"}, {}, {"uid": 5, "text": "x"}, {"uid": "u1", "text": 5},
                  {"uid": None, "text": "x"}, {"uid": "u1", "text": None}, {"uid": "u1", "text": ["x"]},
                  {"uid": ["u1"], "text": "x"}, {"uid": "u1", "text": {"t": "x"}}, {"uid": True, "text": "x"}):
            self.assertError(self.post_raw(json.dumps(d).encode()), 400, "bad_field", "body %r" % d)

    # ---------- bad_uid ----------
    def test_bad_uid(self):
        for uid in ("a b", "", "u" * 65, "ü", "a.b", "a/b", "a\nb", "a\u0000b", "<script>"):
            self.assertError(self.post_raw(body(uid=uid)), 400, "bad_uid", "uid %r" % uid)
        # 64 characters and the whole alphabet are fine
        self.expect_good_seq(self.post_raw(body(uid="U" * 64)))
        self.expect_good_seq(self.post_raw(body(uid="azAZ09_-")))

    # ---------- bad_utf8 ----------
    def test_bad_utf8(self):
        for raw in (b"\xff", b"ok\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe5\xbc", b"\xf4\x90\x80\x80",
                    b"\x80abc"):
            data = b'{"uid":"u1","text":"' + raw + b'"}'
            self.assertError(self.post_raw(data), 400, "bad_utf8", "text bytes %r" % raw)

    def test_lone_surrogate_escape(self):
        # "\ud800" is valid JSON syntax but no Unicode scalar value: it must never be
        # stored as invalid UTF-8. Refused (bad_utf8/bad_json/bad_text), or accepted and
        # delivered as valid UTF-8 JSON.
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        r = self.post_raw(b'{"uid":"u1","text":"a\\ud800b"}', room=rm)
        if r.status == 202:
            p = self.srv.poll(rm, since=cur)
            self.assertEqual(p.status, 200, p)
            p.body.decode("utf-8")  # raises on invalid UTF-8
            json.loads(p.body)
        else:
            self.assertEqual(r.status, 400, r)
            self.assertIn(r.json().get("error"), ("bad_utf8", "bad_json", "bad_text"), r)

    # ---------- bad_text ----------
    def test_bad_text(self):
        for text in ("", "x" * 201, "弹" * 201, "🎉" * 201):
            self.assertError(self.post_raw(body(text=text)), 400, "bad_text", "text of %d chars" % len(text))

    def test_text_length_counts_code_points(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        texts = ["x" * 200, "弹" * 200, "🎉" * 200, "é" * 199 + "x"]
        for i, t in enumerate(texts):
            r = self.post_raw(body(text=t), room=rm)
            self.assertEqual((r.status, r.json()), (202, {"seq": i + 1}), "text of 200 code points (%d bytes): %r"
                             % (len(t.encode()), r))
        b = self.srv.poll_json(rm, since=cur)
        self.assertEqual([m["text"] for m in b["msgs"]], texts)

    # ---------- bad_cursor ----------
    def test_bad_cursor(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        for i in range(3):
            lg.post_ok(self.srv, rm, "u1", "c%d" % i)
        c3 = self.srv.poll_json(rm, since=cur)["cursor"]
        self.assertRegex(c3, r"^[0-9a-f]{16}-3$", "cursor format changed; update this test")
        epoch = c3.split("-")[0]
        bad = ["garbage", "", "-", epoch, epoch + "-", "-3", epoch[:15] + "-3", epoch + "0-3",
               epoch + "-03", epoch + "-00", epoch + "-+3", epoch + "--3", epoch + "-3x", epoch + "-3.0",
               epoch + "- 3", epoch.upper() + "-3" if epoch.upper() != epoch else "zz" + epoch[2:] + "-3",
               epoch + "-99999999999999999999999", epoch + "-18446744073709551616",
               epoch + "-1000000",  # a seq this room never reached
               "g" + epoch[1:] + "-3", " " + c3, c3 + " ", c3 + "x\n"]
        problems = []
        for c in bad:
            for wait in (None, 1):
                r = self.srv.poll(rm, since=c, wait=wait)
                try:
                    self.assertError(r, 400, "bad_cursor")
                except AssertionError:
                    problems.append("since=%r wait=%r -> %s %r" % (c, wait, r.status, r.body[:120]))
        if problems:
            self.fail("cursors accepted or wrongly refused:\n" + "\n".join(problems))
        # the good one still works
        b = self.srv.poll_json(rm, since=c3)
        self.assertEqual((b["msgs"], b["gap"]), ([], False))
        # documented: lws drops a control character at the end of a query value
        b = self.srv.poll_json(rm, since=c3 + "\n")
        self.assertEqual((b["msgs"], b["gap"], b["cursor"]), ([], False, c3))

    # ---------- bad_wait ----------
    def test_bad_wait(self):
        rm = lg.room()
        for w in ("-1", "31", "abc", "1.5", "", "+1", "01x", " 1", "1e1", "99999999999999999999", "0x1"):
            r = self.srv.poll(rm, raw_query="wait=" + w.replace(" ", "%20").replace("+", "%2B"))
            self.assertError(r, 400, "bad_wait", "wait=%r" % w)
            self.assertLess(r.elapsed, 3.0, "bad wait=%r answered late" % w)

    # ---------- not_found ----------
    def test_not_found(self):
        # "/" is the web player (web_test.py).
        for path in ("/nope", "/index.html", "/v1", "/v1/rooms", "/v1/rooms/r1", "/v1/rooms/r1/nope",
                     "/v1/rooms/r1/poll/extra", "/v2/rooms/r1/poll", "/healthz/x", "/metricsx"):
            self.assertError(self.srv.curl(path), 404, "not_found", path)

    # ---------- method_not_allowed ----------
    def test_method_not_allowed(self):
        cur = lg.current_cursor(self.srv, "r1")
        for method, path, allowed in (("GET", "/v1/rooms/r1/danmaku", "POST"),
                                      ("PUT", "/v1/rooms/r1/danmaku", "POST"),
                                      ("DELETE", "/v1/rooms/r1/danmaku", "POST"),
                                      ("POST", "/v1/rooms/r1/poll", "GET"),
                                      ("DELETE", "/healthz", "GET"),
                                      ("POST", "/metrics", "GET"),
                                      ("POST", "/v1/rooms/r1/ws", "GET")):
            data = body() if method in ("POST", "PUT") else None
            r = self.srv.curl(path, method=method, headers=[J] if data else [], data=data)
            self.assertError(r, 405, "method_not_allowed", "%s %s" % (method, path))
            allow = [a.strip().upper() for a in r.headers.get("allow", "").split(",")]
            self.assertIn(allowed, allow, "%s %s: Allow header %r" % (method, path, r.headers.get("allow")))
        # nothing was published by the GET/PUT/DELETE on danmaku
        b = self.srv.poll_json("r1", since=cur)
        self.assertEqual(b["msgs"], [], b)
        self.assertEqual(lg.post_ok(self.srv, "r1", "u1", "x"), 1)

    # ---------- upgrade_required ----------
    def test_plain_get_of_ws_endpoint(self):
        rm = lg.room()
        self.assertError(self.srv.curl("/v1/rooms/%s/ws" % rm), 426, "upgrade_required")
        # room and cursor checks still apply first or not at all, but never a 200
        r = self.srv.curl("/v1/rooms/%s/ws?since=garbage" % rm)
        self.assertIn(r.status, (400, 426), r)
        self.assertError(r, r.status, "bad_cursor" if r.status == 400 else "upgrade_required")

    # ---------- length_required ----------
    def test_length_required(self):
        r = self.srv.curl("/v1/rooms/%s/danmaku" % self.ROOM, method="POST",
                          headers=[J, "Transfer-Encoding: chunked"], data=body())
        self.assertError(r, 411, "length_required")
        # POST with no body and no Content-Length at all
        r = self.srv.curl("/v1/rooms/%s/danmaku" % self.ROOM, method="POST", headers=[J])
        self.assertError(r, 411, "length_required")

    # ---------- other garbage ----------
    def test_garbage_requests_survived(self):
        for junk in (b"\x00\xff\xfe garbage\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                     b"GET /healthz HTTP/1.1\r\n" + b"X-Long: " + b"a" * 100000 + b"\r\n\r\n",
                     b"POST /v1/rooms/r/danmaku HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                     b"POST /v1/rooms/r/danmaku HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort"):
            s = socket.create_connection((lg.HOST, self.srv.port), timeout=3)
            try:
                s.sendall(junk)
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_WR)
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline:
                    try:
                        if not s.recv(65536):
                            break
                    except (socket.timeout, ConnectionResetError):
                        break
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                s.close()
            self.assertTrue(self.srv.alive(), "gateway died on %r" % junk[:40])
            self.assertEqual(self.srv.curl("/healthz").status, 200)

    def test_zz_after_all_a_good_post_works(self):
        # runs last (alphabetical): none of the bad posts above consumed a seq number
        b = self.srv.poll_json(self.ROOM, since=type(self).start_cursor)
        self.assertIs(b["gap"], False)
        got = [(m["uid"], m["text"]) for m in b["msgs"]]
        expected_good = {("U" * 64, "hello"), ("azAZ09_-", "hello")}
        self.assertTrue(set(got) <= expected_good, "a bad post was published: %r" % (set(got) - expected_good))
        self.assertEqual([m["seq"] for m in b["msgs"]], list(range(1, len(got) + 1)))
        r = self.post_raw(body(text="the good one"))
        self.assertEqual((r.status, r.json()), (202, {"seq": len(got) + 1}), r)
        self.assertTrue(self.srv.alive(), "gateway is not running any more")
        self.assertIsNone(self.srv.proc.poll())


class BodyLimitTest(lg.ServerTest):
    server_args = ["--max-body-bytes", str(MAX_BODY)]

    def post_raw(self, data, room, headers=(J,)):
        return self.srv.post_curl(room, data, headers=headers)

    # ---------- body_too_large ----------
    def test_body_too_large(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        base = body(text="x", pad="")
        exact = body(text="x", pad="p" * (MAX_BODY - len(base)))
        self.assertEqual(len(exact), MAX_BODY)
        r = self.post_raw(exact, room=rm)
        self.assertEqual((r.status, r.json()), (202, {"seq": 1}), "body of exactly max_body_bytes: %r" % r)
        over = body(text="x", pad="p" * (MAX_BODY - len(base) + 1))
        self.assertError(self.post_raw(over, room=rm), 413, "body_too_large", "%d bytes" % len(over))
        self.assertError(self.post_raw(b"x" * 100000, room=rm), 413, "body_too_large", "100 kB")
        b = self.srv.poll_json(rm, since=cur)
        self.assertEqual([m["seq"] for m in b["msgs"]], [1], "a refused body was published: %r" % b)

    def test_huge_content_length_refused_without_reading(self):
        # a claimed 1 GB body must be refused from the header alone, at once
        s = socket.create_connection((lg.HOST, self.srv.port), timeout=5)
        try:
            s.sendall(("POST /v1/rooms/%s/danmaku HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: 1000000000\r\n\r\n" % lg.room()).encode())
            data = b""
            deadline = time.monotonic() + 4
            while b"\r\n\r\n" not in data and time.monotonic() < deadline:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), "claimed 1 GB body: %r" % data[:200])


class IoTimeoutTest(lg.ServerTest):
    server_args = ["--io-timeout", "2"]

    def _closed_within(self, data, limit):
        s = socket.create_connection((lg.HOST, self.srv.port), timeout=limit)
        t0 = time.monotonic()
        got = b""
        try:
            s.sendall(data)
            while time.monotonic() - t0 < limit:
                try:
                    chunk = s.recv(4096)
                except socket.timeout:
                    break
                except ConnectionResetError:
                    return True, got, time.monotonic() - t0
                if not chunk:
                    return True, got, time.monotonic() - t0
                got += chunk
            return False, got, time.monotonic() - t0
        finally:
            s.close()

    def test_slow_headers_dropped(self):
        closed, got, t = self._closed_within(b"GET /healthz HTTP/1.1\r\nHost: x\r\n", 8)
        self.assertTrue(closed, "half a request held open for 8 s with io_timeout 2")
        self.assertGreaterEqual(t, 1.0, "dropped after %.2fs, before io_timeout" % t)

    def test_silent_connection_dropped(self):
        closed, got, t = self._closed_within(b"", 8)
        self.assertTrue(closed, "a connection that sent nothing held open for 8 s with io_timeout 2")

    def test_slow_body_dropped(self):
        closed, got, t = self._closed_within(
            b"POST /v1/rooms/slow/danmaku HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{\"uid\":", 8)
        self.assertTrue(closed, "a body 90 bytes short held open for 8 s with io_timeout 2")
        self.assertFalse(got.startswith(b"HTTP/1.1 202"), got)

    def test_many_idle_connections_do_not_block_service(self):
        socks = []
        try:
            for _ in range(50):
                socks.append(socket.create_connection((lg.HOST, self.srv.port), timeout=3))
            for s in socks[:25]:
                s.sendall(b"GET /heal")
            r = self.srv.curl("/healthz", timeout=3)
            self.assertEqual(r.status, 200, r)
        finally:
            for s in socks:
                s.close()


if __name__ == "__main__":
    lg.main()
