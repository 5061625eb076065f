#!/usr/bin/python3
"""The per-worker poll body cache (transport/poll.c): polls at the same cursor
get the same bytes (plain and gzip), a publish is never hidden by it, and
answers that are a client's own (danmaku budget, a gap owed to one reader)
are not shared."""

import gzip
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lg  # noqa: E402


def publish(srv, rm, texts, uid="u1"):
    p = lg.Poster(srv)
    try:
        for t in texts:
            st, body = p.post(rm, uid, t)
            if st != 202:
                raise AssertionError("publish %r -> %s %r" % (t, st, body))
    finally:
        p.close()


def texts_of(batch):
    return [m["text"] for m in batch["msgs"]]


class PollCacheTest(lg.ServerTest):
    # one worker: every poll meets the same cache
    server_args = ["--workers", "1", "--gzip-min-bytes", "512"]

    def gz_poll(self, rm, since):
        r = self.srv.poll(rm, since=since, gzip=True)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("content-encoding"), "gzip", r)
        return r.body

    def test_same_cursor_same_gzip_bytes(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        sent = ["cache %02d %s" % (i, "y" * 60) for i in range(30)]
        publish(self.srv, rm, sent)
        a = self.gz_poll(rm, cur)
        b = self.gz_poll(rm, cur)
        self.assertEqual(a, b, "two gzip polls at one cursor differ")
        batch = json.loads(gzip.decompress(a))
        self.assertEqual(texts_of(batch), sent)
        # the uncompressed answer at that cursor is the same batch
        plain = self.srv.poll(rm, since=cur)
        self.assertEqual(plain.status, 200, plain)
        self.assertIsNone(plain.headers.get("content-encoding"), plain)
        self.assertEqual(plain.body, gzip.decompress(a))

    def test_publish_is_not_hidden(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        first = ["before %02d %s" % (i, "z" * 60) for i in range(20)]
        publish(self.srv, rm, first)
        a = json.loads(gzip.decompress(self.gz_poll(rm, cur)))
        self.assertEqual(texts_of(a), first)
        self.assertEqual(texts_of(self.srv.poll_json(rm, since=cur)), first)
        publish(self.srv, rm, ["after"])
        b = json.loads(gzip.decompress(self.gz_poll(rm, cur)))
        self.assertEqual(texts_of(b), first + ["after"], "a cached answer hid a publish")
        self.assertNotEqual(a["cursor"], b["cursor"])
        self.assertEqual(texts_of(self.srv.poll_json(rm, since=cur)), first + ["after"])
        # and from the old answer's cursor only the new message
        self.assertEqual(texts_of(self.srv.poll_json(rm, since=a["cursor"])), ["after"])

    def test_other_rooms_and_cursors_do_not_mix(self):
        r1, r2 = lg.room(), lg.room()
        c1, c2 = lg.current_cursor(self.srv, r1), lg.current_cursor(self.srv, r2)
        publish(self.srv, r1, ["one-a", "one-b"])
        publish(self.srv, r2, ["two-a"])
        b1 = self.srv.poll_json(r1, since=c1)
        mid = b1["cursor"]
        for _ in range(2):
            self.assertEqual(texts_of(self.srv.poll_json(r1, since=c1)), ["one-a", "one-b"])
            self.assertEqual(texts_of(self.srv.poll_json(r2, since=c2)), ["two-a"])
            self.assertEqual(self.srv.poll_json(r1, since=mid)["msgs"], [])
        # more cursors than the cache has entries (8): each still right
        publish(self.srv, r1, ["k%d" % i for i in range(12)])
        cursors = []
        cur = mid
        for i in range(12):
            cursors.append(cur)
            b = self.srv.poll_json(r1, since=cur)
            self.assertEqual(texts_of(b)[0], "k%d" % i)
            cur = cur.rsplit("-", 1)[0] + "-%d" % (int(cur.rsplit("-", 1)[1]) + 1)
        for i, cu in enumerate(cursors):
            self.assertEqual(texts_of(self.srv.poll_json(r1, since=cu)),
                             ["k%d" % j for j in range(i, 12)])

    def test_budgeted_client_gets_its_own_answer(self):
        # suppress_shortpoll (15 by default) gives a short-poll client id a danmaku budget
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        sent = ["budget %02d" % i for i in range(40)]
        publish(self.srv, rm, sent)
        plain = self.srv.poll_json(rm, since=cur)
        self.assertEqual(texts_of(plain), sent)
        r = lg.poll(self.srv, rm, raw_query="since=%s&client=pc1" % cur)
        self.assertEqual(r.status, 200, r)
        own = r.json()
        self.assertGreater(own.get("suppressed", 0), 0, own)
        self.assertLess(len(own["msgs"]), 40, own)
        # and the plain answer at that cursor is untouched by it
        self.assertEqual(texts_of(self.srv.poll_json(rm, since=cur)), sent)

    def test_gap_owed_to_one_reader_is_not_shared(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        publish(self.srv, rm, ["g1", "g2"])
        epoch = cur.rsplit("-", 1)[0]
        other = ("0" * 15 + "1") if epoch != "0" * 15 + "1" else ("0" * 15 + "2")
        at_zero = epoch + "-0"
        foreign = other + "-0"
        for _ in range(2):
            b = self.srv.poll_json(rm, since=at_zero)
            self.assertIs(b["gap"], False, b)
            self.assertEqual(texts_of(b), ["g1", "g2"])
            g = self.srv.poll_json(rm, since=foreign)
            self.assertIs(g["gap"], True, g)
            self.assertEqual(texts_of(g), ["g1", "g2"])


if __name__ == "__main__":
    lg.main()
