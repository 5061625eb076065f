#!/usr/bin/python3
"""Short-poll, long-poll, gzip, batch size limit and gaps, all through curl."""

import gzip
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lg  # noqa: E402


def publish(srv, rm, texts, uid="u1"):
    p = lg.Poster(srv)
    seqs = []
    try:
        for t in texts:
            st, body = p.post(rm, uid, t)
            if st != 202:
                raise AssertionError("publish %r -> %s %r" % (t, st, body))
            seqs.append(body["seq"])
    finally:
        p.close()
    return seqs


class ShortPollTest(lg.ServerTest):
    server_args = ["--gzip-min-bytes", "512"]

    def test_no_since_gives_empty_batch_and_cursor(self):
        rm = lg.room()
        b = self.srv.poll_json(rm)
        self.assertEqual(b["msgs"], [], b)
        self.assertIs(b["gap"], False, b)
        self.assertEqual(b["room"], rm)
        self.assertIsInstance(b["cursor"], str)
        self.assertTrue(b["cursor"], b)

    def test_no_since_ignores_existing_messages(self):
        rm = lg.room()
        publish(self.srv, rm, ["old1", "old2"])
        b = self.srv.poll_json(rm)
        self.assertEqual(b["msgs"], [], "without since, delivery starts with the next message: %r" % b)
        publish(self.srv, rm, ["new1"])
        b2 = self.srv.poll_json(rm, since=b["cursor"])
        self.assertEqual([m["text"] for m in b2["msgs"]], ["new1"], b2)
        self.assertEqual(b2["msgs"][0]["seq"], 3)

    def test_three_then_empty(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        publish(self.srv, rm, ["a", "b", "c"])
        b = self.srv.poll_json(rm, since=cur)
        self.assertIs(b["gap"], False, b)
        self.assertEqual([m["text"] for m in b["msgs"]], ["a", "b", "c"], b)
        self.assertEqual([m["seq"] for m in b["msgs"]], [1, 2, 3], b)
        self.assertNotEqual(b["cursor"], cur)
        b2 = self.srv.poll_json(rm, since=b["cursor"])
        self.assertEqual(b2["msgs"], [], b2)
        self.assertIs(b2["gap"], False, b2)
        # the same cursor again gives the same answer (polling is idempotent)
        b3 = self.srv.poll_json(rm, since=cur)
        self.assertEqual([m["seq"] for m in b3["msgs"]], [1, 2, 3], b3)
        self.assertEqual(b3["cursor"], b["cursor"])
        # cursor returned by an empty batch is usable
        publish(self.srv, rm, ["d"])
        b4 = self.srv.poll_json(rm, since=b2["cursor"])
        self.assertEqual([(m["seq"], m["text"]) for m in b4["msgs"]], [(4, "d")], b4)

    def test_wait_zero_is_short_poll(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        r = self.srv.poll(rm, since=cur, wait=0)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["msgs"], [])
        self.assertLess(r.elapsed, 2.0, "wait=0 must answer at once")

    def test_mid_cursor(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        publish(self.srv, rm, ["x1", "x2"])
        mid = self.srv.poll_json(rm, since=cur)["cursor"]
        publish(self.srv, rm, ["x3", "x4", "x5"])
        b = self.srv.poll_json(rm, since=mid)
        self.assertIs(b["gap"], False)
        self.assertEqual([m["text"] for m in b["msgs"]], ["x3", "x4", "x5"], b)


class LongPollTest(lg.ServerTest):
    server_args = ["--gzip-min-bytes", "512"]

    def test_long_poll_released_by_publish(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        res = {}

        def waiter():
            res["r"] = self.srv.poll(rm, since=cur, wait=5)

        t = threading.Thread(target=waiter, daemon=True)
        t.start()
        t.join(0.7)
        self.assertTrue(t.is_alive(), "long-poll wait=5 answered before anything was published: %r" % res.get("r"))
        t_pub = time.monotonic()
        lg.post_ok(self.srv, rm, "u1", "wake up")
        t.join(8)
        self.assertFalse(t.is_alive(), "long-poll never returned")
        r = res["r"]
        self.assertEqual(r.status, 200, r)
        b = r.json()
        self.assertEqual([m["text"] for m in b["msgs"]], ["wake up"], b)
        self.assertIs(b["gap"], False)
        self.assertLess(r.elapsed, 5.0, "long-poll was not released by the publish (took %.2fs)" % r.elapsed)
        self.assertLess(time.monotonic() - t_pub, 4.0)

    def test_long_poll_without_since_released_by_publish(self):
        rm = lg.room()
        lg.current_cursor(self.srv, rm)  # create the room
        res = {}

        def waiter():
            res["r"] = self.srv.poll(rm, wait=5)

        t = threading.Thread(target=waiter, daemon=True)
        t.start()
        published = []
        p = lg.Poster(self.srv)
        try:
            for i in range(20):  # keep publishing (bounded) until the poll returns
                t.join(0.2)
                if not t.is_alive():
                    break
                published.append("p%d" % i)
                st, body = p.post(rm, "u1", published[-1])
                self.assertEqual(st, 202, body)
        finally:
            p.close()
        t.join(8)
        self.assertFalse(t.is_alive())
        r = res["r"]
        self.assertEqual(r.status, 200, r)
        b = r.json()
        self.assertTrue(b["msgs"], "long-poll without since returned no message although %d were published: %r"
                        % (len(published), b))
        texts = [m["text"] for m in b["msgs"]]
        self.assertTrue(set(texts) <= set(published), texts)
        # they are consecutive published messages
        i0 = published.index(texts[0])
        self.assertEqual(texts, published[i0:i0 + len(texts)])
        self.assertLess(r.elapsed, 5.0)

    def test_long_poll_answers_at_once_when_message_exists(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        lg.post_ok(self.srv, rm, "u1", "already here")
        r = self.srv.poll(rm, since=cur, wait=10)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([m["text"] for m in r.json()["msgs"]], ["already here"])
        self.assertLess(r.elapsed, 3.0, "long-poll with a message waiting must answer at once")

    def test_long_poll_timeout_returns_same_cursor(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        r = self.srv.poll(rm, since=cur, wait=1)
        self.assertEqual(r.status, 200, r)
        b = r.json()
        self.assertEqual(b["msgs"], [], b)
        self.assertEqual(b["cursor"], cur, "empty long-poll must return the cursor it was sent")
        self.assertIs(b["gap"], False)
        self.assertGreaterEqual(r.elapsed, 0.8, "wait=1 answered after %.2fs" % r.elapsed)
        self.assertLess(r.elapsed, 4.0, "wait=1 answered after %.2fs" % r.elapsed)

    def test_long_poll_timeout_after_messages(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        publish(self.srv, rm, ["q1", "q2"])
        c2 = self.srv.poll_json(rm, since=cur)["cursor"]
        r = self.srv.poll(rm, since=c2, wait=1)
        self.assertEqual(r.status, 200, r)
        b = r.json()
        self.assertEqual((b["msgs"], b["cursor"]), ([], c2), b)
        self.assertGreaterEqual(r.elapsed, 0.8)

    def test_long_poll_timeout_without_since(self):
        rm = lg.room()
        publish(self.srv, rm, ["z1"])
        cur = lg.current_cursor(self.srv, rm)
        r = self.srv.poll(rm, wait=1)
        self.assertEqual(r.status, 200, r)
        b = r.json()
        self.assertEqual(b["msgs"], [], b)
        self.assertEqual(b["cursor"], cur, "empty long-poll without since must return the room's position")
        self.assertGreaterEqual(r.elapsed, 0.8)
        self.assertLess(r.elapsed, 4.0)

    def test_many_long_polls_released_by_one_publish(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        n = 20
        results = [None] * n

        def waiter(i):
            results[i] = self.srv.poll(rm, since=cur, wait=8)

        threads = [threading.Thread(target=waiter, args=(i,), daemon=True) for i in range(n)]
        for t in threads:
            t.start()
        time.sleep(1.0)  # give the curls time to connect; correctness does not depend on it
        lg.post_ok(self.srv, rm, "u1", "fanout")
        for t in threads:
            t.join(12)
        for i, r in enumerate(results):
            self.assertIsNotNone(r, "poller %d did not finish" % i)
            self.assertEqual(r.status, 200, r)
            self.assertEqual([m["text"] for m in r.json()["msgs"]], ["fanout"], (i, r))
            self.assertLess(r.elapsed, 8.0, "poller %d was not released by the publish" % i)

    def test_aborted_long_polls_cleaned_up(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        threads = []
        for _ in range(20):  # clients that give up after 1 s of a 10 s wait
            t = threading.Thread(target=lg.curl, daemon=True, kwargs=dict(
                url=self.srv.url("/v1/rooms/%s/poll?since=%s&wait=10" % (rm, cur)), timeout=1))
            threads.append(t)
            t.start()
        for t in threads:
            t.join(15)
        lg.post_ok(self.srv, rm, "u1", "nobody listens")
        self.assertTrue(self.srv.alive())
        lg.wait_for(lambda: self.srv.metrics().get('livegate_connections{transport="longpoll"}') == 0,
                    timeout=12, what="longpoll connections back to 0 after clients hung up")
        b = self.srv.poll_json(rm, since=cur, wait=5)
        self.assertEqual([m["text"] for m in b["msgs"]], ["nobody listens"])

    def test_long_poll_max_wait_accepted(self):
        # wait=30 is the default longpoll_max_wait and must be accepted (answered at once here)
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        lg.post_ok(self.srv, rm, "u1", "w30")
        r = self.srv.poll(rm, since=cur, wait=30)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(r.json()["msgs"]), 1)


class GzipTest(lg.ServerTest):
    server_args = ["--gzip-min-bytes", "512"]

    def _room_with_50(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        publish(self.srv, rm, ["message number %03d with some padding text to compress well" % i
                               for i in range(50)])
        return rm, cur

    def test_gzip_only_when_asked_and_identical(self):
        rm, cur = self._room_with_50()
        plain = self.srv.poll(rm, since=cur)
        self.assertEqual(plain.status, 200, plain)
        self.assertNotIn("gzip", plain.headers.get("content-encoding", ""), plain.headers)
        self.assertGreater(len(plain.body), 512)
        self.assertEqual(len(plain.json()["msgs"]), 50)

        gz = self.srv.poll(rm, since=cur, gzip=True)
        self.assertEqual(gz.status, 200, gz)
        self.assertEqual(gz.headers.get("content-encoding"), "gzip", gz.headers)
        vary = ",".join(gz.header_values("vary")).lower()
        self.assertIn("accept-encoding", vary, gz.headers)
        self.assertLess(len(gz.body), len(plain.body))
        self.assertEqual(gzip.decompress(gz.body), plain.body, "gunzipped body differs from the plain one")
        if "content-length" in gz.headers:
            self.assertEqual(int(gz.headers["content-length"]), len(gz.body))

        # curl --compressed (Accept-Encoding: deflate, gzip, br, zstd) decodes to the same bytes
        cz = self.srv.poll(rm, since=cur, compressed=True)
        self.assertEqual(cz.status, 200, cz)
        self.assertEqual(cz.headers.get("content-encoding"), "gzip", cz.headers)
        self.assertEqual(cz.body, plain.body)

    def test_no_gzip_for_other_encodings(self):
        rm, cur = self._room_with_50()
        for ae in ("identity", "br", "deflate"):
            r = self.srv.poll(rm, since=cur, headers=["Accept-Encoding: %s" % ae])
            self.assertEqual(r.status, 200, r)
            self.assertNotIn("gzip", r.headers.get("content-encoding", ""), (ae, r.headers))
            self.assertEqual(len(r.json()["msgs"]), 50)

    def test_accept_encoding_q_values(self):
        rm, cur = self._room_with_50()
        for ae, want in (("gzip;q=0", False), ("gzip;q=0, *", False), ("*", True), ("deflate, gzip;q=0.5", True),
                         ("GZIP", True), ("identity;q=1, gzip;q=0.1", True)):
            r = self.srv.poll(rm, since=cur, headers=["Accept-Encoding: %s" % ae])
            self.assertEqual(r.status, 200, r)
            got = r.headers.get("content-encoding") == "gzip"
            self.assertEqual(got, want, "Accept-Encoding %r: gzip=%s" % (ae, got))
            body = gzip.decompress(r.body) if got else r.body
            self.assertEqual(len(json.loads(body)["msgs"]), 50)

    def test_small_body_not_compressed(self):
        rm = lg.room()
        r = self.srv.poll(rm, gzip=True)
        self.assertEqual(r.status, 200, r)
        self.assertLess(len(r.body), 512)
        self.assertNotIn("gzip", r.headers.get("content-encoding", ""), r.headers)
        self.assertEqual(r.json()["msgs"], [])

    def test_gzip_long_poll(self):
        rm, cur = self._room_with_50()
        plain = self.srv.poll(rm, since=cur, wait=5)
        gz = self.srv.poll(rm, since=cur, wait=5, gzip=True)
        self.assertEqual(gz.headers.get("content-encoding"), "gzip", gz.headers)
        self.assertEqual(gzip.decompress(gz.body), plain.body)

    def test_gzip_bytes_saved_metric(self):
        before = self.srv.metrics().get("livegate_gzip_bytes_saved_total")
        self.assertIsNotNone(before, "livegate_gzip_bytes_saved_total missing")
        rm, cur = self._room_with_50()
        plain = self.srv.poll(rm, since=cur)
        gz = self.srv.poll(rm, since=cur, gzip=True)
        self.assertEqual(gz.headers.get("content-encoding"), "gzip")
        after = self.srv.metrics().get("livegate_gzip_bytes_saved_total")
        self.assertGreater(after - before, 0, "gzip_bytes_saved_total did not grow after a gzip answer")
        self.assertLessEqual(after - before, len(plain.body), "saved more bytes than the body had")


class BatchLimitTest(lg.ServerTest):
    server_args = ["--batch-max-bytes", "4096"]

    def test_batches_split_and_continue(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        texts = [("%03d" % i) + "弹" * 190 for i in range(40)]  # ~600 bytes each, 24 KB in all
        publish(self.srv, rm, texts)
        got = []
        batches = 0
        c = cur
        for _ in range(60):
            r = self.srv.poll(rm, since=c)
            self.assertEqual(r.status, 200, r)
            b = r.json()
            self.assertIs(b["gap"], False, b)
            self.assertLessEqual(len(r.body), 4096 + 512, "batch of %d bytes with batch_max_bytes 4096" % len(r.body))
            if not b["msgs"]:
                break
            batches += 1
            got.extend(b["msgs"])
            c = b["cursor"]
        self.assertEqual([m["text"] for m in got], texts)
        self.assertEqual([m["seq"] for m in got], list(range(1, 41)))
        self.assertGreaterEqual(batches, 5, "24 KB of messages came in %d batches of <=4096 bytes" % batches)

    def test_long_poll_split(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        texts = [("%03d" % i) + "x" * 190 for i in range(60)]
        publish(self.srv, rm, texts)
        r = self.srv.poll(rm, since=cur, wait=5)
        b = r.json()
        self.assertTrue(0 < len(b["msgs"]) < 60, "first batch held %d of 60 messages (~12 KB)" % len(b["msgs"]))
        self.assertLess(r.elapsed, 3.0)
        r2 = self.srv.poll(rm, since=b["cursor"], wait=5)
        b2 = r2.json()
        self.assertEqual(b2["msgs"][0]["seq"], b["msgs"][-1]["seq"] + 1)
        self.assertLess(r2.elapsed, 3.0, "the rest was waiting: must answer at once")


class RingOverflowTest(lg.ServerTest):
    server_args = ["--ring-slots", "1024", "--ring-bytes", "65536"]
    timeout = 90

    def test_gap_when_ring_full(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        publish(self.srv, rm, ["first%d" % i for i in range(5)])
        c5 = self.srv.poll_json(rm, since=cur)["cursor"]
        n = 200
        texts = ["%04d" % i + "🎉" * 196 for i in range(n)]  # ~850 encoded bytes each: 170 KB > 64 KiB
        publish(self.srv, rm, texts)
        b = self.srv.poll_json(rm, since=c5)
        self.assertIs(b["gap"], True, "170 KB through a 64 KiB ring, yet gap is false: first seq %r"
                      % [m["seq"] for m in b["msgs"][:1]])
        self.assertTrue(b["msgs"], b)
        seqs = [m["seq"] for m in b["msgs"]]
        self.assertGreater(seqs[0], 6, "gap:true but the batch starts right after the cursor")
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(seqs))))
        # starting at the oldest retained message: that one has the text we published
        self.assertEqual(b["msgs"][0]["text"], texts[seqs[0] - 6])
        # continuing from the returned cursor: no more gap, up to the last message
        c = b["cursor"]
        last = seqs[-1]
        for _ in range(200):
            if last == 5 + n:
                break
            b2 = self.srv.poll_json(rm, since=c)
            self.assertIs(b2["gap"], False, b2)
            self.assertTrue(b2["msgs"])
            self.assertEqual(b2["msgs"][0]["seq"], last + 1)
            last = b2["msgs"][-1]["seq"]
            c = b2["cursor"]
        self.assertEqual(last, 5 + n)

    def test_no_gap_when_within_ring(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        publish(self.srv, rm, ["small%d" % i for i in range(100)])
        b = self.srv.poll_json(rm, since=cur)
        self.assertIs(b["gap"], False)
        self.assertEqual([m["seq"] for m in b["msgs"]], list(range(1, 101)))


class WindowGapTest(lg.ServerTest):
    server_args = ["--window", "2"]

    def test_gap_when_messages_age_out(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        publish(self.srv, rm, ["old1", "old2", "old3"])
        b = self.srv.poll_json(rm, since=cur)
        self.assertEqual(len(b["msgs"]), 3)
        # bounded wait: the messages must fall out of a 2 s window
        deadline = time.monotonic() + 10
        while True:
            b = self.srv.poll_json(rm, since=cur)
            if b["gap"] or time.monotonic() > deadline:
                break
            self.assertEqual(len(b["msgs"]), 3, "messages vanished without gap:true: %r" % b)
            time.sleep(0.25)
        self.assertIs(b["gap"], True, "messages older than the 2 s window still served after 10 s: %r" % b)
        self.assertFalse([m for m in b["msgs"] if m["text"].startswith("old")],
                         "aged-out messages delivered with gap:true: %r" % b)
        # resuming from the returned cursor gives new messages without a gap
        c = b["cursor"]
        lg.post_ok(self.srv, rm, "u1", "new")
        b2 = self.srv.poll_json(rm, since=c)
        self.assertIs(b2["gap"], False, b2)
        self.assertEqual([m["text"] for m in b2["msgs"]], ["new"], b2)


if __name__ == "__main__":
    lg.main()
