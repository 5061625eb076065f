#!/usr/bin/python3
"""Rate limits (per uid, per room), blocked words (mask / reject), max_rooms, room reclaim."""

import asyncio
import atexit
import shutil
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lg  # noqa: E402

J = "Content-Type: application/json"


def post(srv, rm, uid, text):
    return srv.post_curl(rm, {"uid": uid, "text": text})


def retry_after(test, r):
    ra = r.headers.get("retry-after")
    test.assertIsNotNone(ra, "429 without Retry-After: %r" % r)
    test.assertRegex(ra, r"^[0-9]+$", "Retry-After is not an integer number of seconds: %r" % ra)
    test.assertGreaterEqual(int(ra), 1, r)
    return int(ra)


class UidRateTest(lg.ServerTest):
    generous = False
    server_args = ["--rate-uid", "2", "--burst-uid", "3", "--rate-room", "1000", "--burst-room", "1000"]

    def test_burst_then_429(self):
        rm = lg.room()
        for i in range(3):
            r = post(self.srv, rm, "alice", "a%d" % i)
            self.assertEqual((r.status, r.json()), (202, {"seq": i + 1}), r)
        r = post(self.srv, rm, "alice", "a3")
        self.assertError(r, 429, "rate_limited")
        ra = retry_after(self, r)
        self.assertLessEqual(ra, 2, "Retry-After %d s, yet a token comes back every 0.5 s" % ra)
        # another uid is not affected
        r = post(self.srv, rm, "bob", "b0")
        self.assertEqual((r.status, r.json()), (202, {"seq": 4}), "the 429 consumed a seq: %r" % r)
        # after Retry-After seconds alice may post again
        time.sleep(ra)
        r = post(self.srv, rm, "alice", "a4")
        self.assertEqual((r.status, r.json()), (202, {"seq": 5}), r)

    def test_limit_is_per_uid_across_rooms(self):
        for i in range(3):
            self.assertEqual(post(self.srv, lg.room(), "carol", "c").status, 202)
        self.assertError(post(self.srv, lg.room(), "carol", "c"), 429, "rate_limited")

    def test_sustained_rate(self):
        # over ~3 s at most burst + rate*t posts succeed (3 + 2*3 = 9, plus slack 2)
        rm = lg.room()
        ok = 0
        p = lg.Poster(self.srv)
        t0 = time.monotonic()
        try:
            for _ in range(200):
                if time.monotonic() - t0 > 3.0:
                    break
                st, _ = p.post(rm, "dave", "d")
                ok += st == 202
                self.assertIn(st, (202, 429))
                time.sleep(0.02)
        finally:
            p.close()
        elapsed = time.monotonic() - t0
        self.assertLessEqual(ok, 3 + 2 * elapsed + 2, "%d posts accepted in %.1fs with rate 2 burst 3" % (ok, elapsed))
        self.assertGreaterEqual(ok, 3 + 2 * (elapsed - 0.5) - 2, "%d posts accepted in %.1fs" % (ok, elapsed))

    def test_ws_posts_rate_limited(self):
        rm = lg.room()

        async def go():
            ws = await lg.ws_open(self.srv, rm)
            out = []
            try:
                for i in range(4):
                    await ws.send(json.dumps({"op": "danmaku", "id": i, "uid": "erin", "text": "e%d" % i}))
                    for _ in range(10):
                        f = await lg.ws_recv_json(ws, 5)
                        if "op" in f:
                            out.append(f)
                            break
                return out
            finally:
                await ws.close()

        replies = lg.run_async(go())
        self.assertEqual([r["op"] for r in replies[:3]], ["ack"] * 3, replies)
        self.assertEqual((replies[3].get("op"), replies[3].get("id"), replies[3].get("error")),
                         ("error", 3, "rate_limited"), replies[3])


class RoomRateTest(lg.ServerTest):
    generous = False
    server_args = ["--rate-uid", "1000", "--burst-uid", "1000", "--rate-room", "5", "--burst-room", "5"]

    def test_room_burst_then_429(self):
        rm = lg.room()
        for i in range(5):
            r = post(self.srv, rm, "u%d" % i, "x")
            self.assertEqual((r.status, r.json()), (202, {"seq": i + 1}), r)
        r = post(self.srv, rm, "u99", "x")
        self.assertError(r, 429, "rate_limited")
        ra = retry_after(self, r)
        self.assertLessEqual(ra, 1, r)
        # another room is not affected
        other = lg.room()
        r = post(self.srv, other, "u99", "x")
        self.assertEqual((r.status, r.json()), (202, {"seq": 1}), r)
        time.sleep(ra)
        r = post(self.srv, rm, "u100", "x")
        self.assertEqual((r.status, r.json()), (202, {"seq": 6}), "after Retry-After: %r" % r)

    def test_rejected_counted_in_metrics(self):
        rm = lg.room()
        before = self.srv.metrics().get('livegate_rejected_total{error="rate_limited"}', 0)
        n429 = 0
        for i in range(8):
            r = post(self.srv, rm, "v%d" % i, "x")
            n429 += r.status == 429
        self.assertGreaterEqual(n429, 2)
        after = self.srv.metrics().get('livegate_rejected_total{error="rate_limited"}', 0)
        self.assertEqual(after - before, n429)


def words_file():
    d = tempfile.mkdtemp(prefix="lgwords-")
    p = os.path.join(d, "words.txt")
    with open(p, "w", encoding="utf-8") as f:
        f.write("# blocked words\nbadword\n\n  坏蛋  \nfoo bar\n")
    return p


WORDS = words_file()
atexit.register(shutil.rmtree, os.path.dirname(WORDS), True)


class MaskTest(lg.ServerTest):
    server_args = ["--blocked-words-file", WORDS, "--blocked-words-mode", "mask"]

    def test_mask(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        cases = [
            ("this badword here", "this ******* here"),
            ("你是坏蛋吗", "你是**吗"),
            ("BadWord and BADWORD", "******* and *******"),
            ("badwordbadword", "**************"),
            ("say foo bar now", "say ******* now"),
            ("clean text", "clean text"),
            ("bad word", "bad word"),
            ("坏", "坏"),
        ]
        for i, (t, _) in enumerate(cases):
            r = post(self.srv, rm, "u%d" % i, t)
            self.assertEqual((r.status, r.json()), (202, {"seq": i + 1}), (t, r))
        b = self.srv.poll_json(rm, since=cur)
        self.assertEqual([m["text"] for m in b["msgs"]], [want for _, want in cases])

    def test_mask_over_ws_delivery(self):
        rm = lg.room()

        async def go():
            ws = await lg.ws_open(self.srv, rm)
            try:
                await ws.send(json.dumps({"op": "danmaku", "id": 1, "uid": "u", "text": "x坏蛋x"}))
                msgs, _, replies = await lg.ws_collect(ws, 1, timeout=5)
                return msgs
            finally:
                await ws.close()

        self.assertEqual([m["text"] for m in lg.run_async(go())], ["x**x"])


class RejectTest(lg.ServerTest):
    server_args = ["--blocked-words-file", WORDS, "--blocked-words-mode", "reject"]

    def test_reject(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        for t in ("this badword here", "你是坏蛋吗", "BADWORD", "foo bar"):
            self.assertError(post(self.srv, rm, "u1", t), 422, "blocked", t)
        r = post(self.srv, rm, "u1", "perfectly fine")
        self.assertEqual((r.status, r.json()), (202, {"seq": 1}), "a blocked post consumed a seq: %r" % r)
        b = self.srv.poll_json(rm, since=cur)
        self.assertEqual([m["text"] for m in b["msgs"]], ["perfectly fine"])

    def test_reject_over_ws(self):
        rm = lg.room()

        async def go():
            ws = await lg.ws_open(self.srv, rm)
            try:
                await ws.send(json.dumps({"op": "danmaku", "id": "z", "uid": "u", "text": "badword"}))
                return await lg.ws_recv_json(ws, 5)
            finally:
                await ws.close()

        f = lg.run_async(go())
        self.assertEqual((f.get("op"), f.get("id"), f.get("error")), ("error", "z", "blocked"), f)


class MaxRoomsTest(lg.ServerTest):
    server_args = ["--max-rooms", "2"]

    def test_third_room_refused(self):
        self.assertEqual(post(self.srv, "room_a", "u1", "x").status, 202)
        self.assertEqual(post(self.srv, "room_b", "u1", "x").status, 202)
        self.assertError(post(self.srv, "room_c", "u1", "x"), 503, "too_many_rooms")
        self.assertError(self.srv.poll(lg.room()), 503, "too_many_rooms", "poll creating a third room")

        async def ws_status():
            import websockets.exceptions
            try:
                ws = await lg.ws_open(self.srv, "room_d")
            except websockets.exceptions.InvalidStatusCode as e:
                return e.status_code
            await ws.close()
            return 101

        self.assertEqual(lg.run_async(ws_status()), 503, "ws creating a third room")
        # existing rooms keep working
        r = post(self.srv, "room_a", "u1", "y")
        self.assertEqual((r.status, r.json()), (202, {"seq": 2}), r)
        self.assertEqual(self.srv.poll("room_b").status, 200)
        m = self.srv.metrics()
        self.assertEqual(m.get("livegate_rooms"), 2.0, m)


class ReclaimTest(lg.ServerTest):
    server_args = ["--max-rooms", "2", "--window", "1"]
    timeout = 60

    def test_idle_rooms_reclaimed(self):
        self.assertEqual(post(self.srv, "old_a", "u1", "x").status, 202)
        self.assertEqual(post(self.srv, "old_b", "u1", "x").status, 202)
        self.assertEqual(post(self.srv, "new_c", "u1", "x").status, 503)
        # nobody subscribed, nothing published for one window: they go away (bounded wait)
        deadline = time.monotonic() + 15
        r = None
        while time.monotonic() < deadline:
            r = post(self.srv, "new_c", "u1", "x")
            if r.status == 202:
                break
            self.assertError(r, 503, "too_many_rooms")
            time.sleep(0.25)
        self.assertEqual(r.status, 202, "idle rooms not reclaimed within 15 s with window 1: %r" % r)

    def test_subscribed_room_not_reclaimed(self):
        # fresh server so room accounting starts from zero
        srv = self.new_server(["--max-rooms", "2", "--window", "1"])

        async def go():
            ws = await lg.ws_open(srv, "kept")
            try:
                r = post(srv, "other", "u1", "x")
                assert r.status == 202, r
                await asyncio.sleep(4)  # several windows
                # "kept" has a subscriber, so at most "other" was reclaimed: one slot free
                r1 = await asyncio.get_running_loop().run_in_executor(None, post, srv, "third", "u1", "x")
                r2 = await asyncio.get_running_loop().run_in_executor(None, post, srv, "fourth", "u1", "x")
                return r1, r2, ws.open
            finally:
                await ws.close()

        r1, r2, still_open = lg.run_async(go())
        self.assertEqual(r1.status, 202, r1)
        self.assertError(r2, 503, "too_many_rooms", "the subscribed room was reclaimed")
        self.assertTrue(still_open)


class MaxConnectionsTest(lg.ServerTest):
    server_args = ["--max-connections", "3"]

    def test_connection_over_the_limit_refused(self):
        async def go():
            wss = [await lg.ws_open(self.srv, lg.room()) for _ in range(3)]
            loop = asyncio.get_running_loop()
            try:
                over = await loop.run_in_executor(None, self.srv.curl, "/healthz")
            finally:
                await wss[0].close()
            # one slot free again (bounded wait)
            ok = None
            for _ in range(50):
                ok = await loop.run_in_executor(None, self.srv.curl, "/healthz")
                if ok.status == 200:
                    break
                await asyncio.sleep(0.1)
            for w in wss[1:]:
                await w.close()
            return over, ok

        over, ok = lg.run_async(go())
        self.assertError(over, 503, "too_many_connections", "4th connection with max_connections 3")
        self.assertEqual(ok.status, 200, "a freed slot was not reusable: %r" % ok)


if __name__ == "__main__":
    lg.main()
