#!/usr/bin/python3
"""Resume across transports: a consumer hops WS -> long-poll -> short-poll -> WS ...
every 100 messages carrying its cursor, while 1,000 messages are published; it
must see every message exactly once, in order, with no gap. Also: cursors survive
a gateway restart as gap:true (never a silent gap, never a bad_cursor)."""

import asyncio
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lg  # noqa: E402

N = 1000
SWITCH_EVERY = 100
RATE = 50.0  # messages per second: the publisher needs ~20 s

BASE_ARGS = ["--window", "60", "--ring-slots", "1024", "--rate-uid", "1000", "--burst-uid", "1000",
             "--rate-room", "10000", "--burst-room", "10000"]


class Publisher(threading.Thread):
    def __init__(self, srv, rm, n, rate):
        super().__init__(daemon=True)
        self.srv, self.rm, self.n, self.rate = srv, rm, n, rate
        self.seqs = []
        self.error = None
        self.stop_flag = threading.Event()

    def run(self):
        p = lg.Poster(self.srv)
        t0 = time.monotonic()
        try:
            for i in range(self.n):
                if self.stop_flag.is_set():
                    return
                due = t0 + i / self.rate
                d = due - time.monotonic()
                if d > 0:
                    time.sleep(d)
                st, body = p.post(self.rm, "pub", "m%d" % i)
                if st != 202:
                    self.error = "post m%d -> %s %r" % (i, st, body)
                    return
                self.seqs.append(body["seq"])
        except Exception as e:  # reported by the test
            self.error = "publisher: %r" % e
        finally:
            p.close()


class Consumer:
    """Receives through one transport at a time, switching every SWITCH_EVERY messages."""

    MODES = ("ws", "long", "short")

    def __init__(self, test, srv, rm, cursor):
        self.t = test
        self.srv, self.rm = srv, rm
        self.cursor = cursor
        self.msgs = []
        self.log = []  # (mode, count received in that stint)
        self.batches = 0

    def take(self, b, mode):
        """Check one batch and adopt its cursor."""
        t = self.t
        t.assertEqual(b.get("room"), self.rm, b)
        t.assertIs(b.get("gap"), False, "gap:true via %s after %d messages: %r" % (mode, len(self.msgs), str(b)[:300]))
        for m in b["msgs"]:
            want = len(self.msgs)
            t.assertEqual(m["text"], "m%d" % want,
                          "via %s: expected m%d, got %r (duplicate or loss)" % (mode, want, m))
            if self.msgs:
                t.assertEqual(m["seq"], self.msgs[-1]["seq"] + 1, "seq not consecutive via %s: %r" % (mode, m))
            self.msgs.append(m)
        self.cursor = b["cursor"]
        self.batches += 1

    def stint_target(self):
        return min(N, len(self.msgs) + SWITCH_EVERY)

    def run_poll(self, mode, deadline):
        target = self.stint_target()
        start = len(self.msgs)
        for _ in range(5000):
            if len(self.msgs) >= target or time.monotonic() > deadline:
                break
            if mode == "long":
                r = lg.poll(self.srv, self.rm, since=self.cursor, wait=5)
            else:
                r = lg.poll(self.srv, self.rm, since=self.cursor)
            self.t.assertEqual(r.status, 200, "%s-poll: %r" % (mode, r))
            self.take(r.json(), mode + "-poll")
            if mode == "short" and len(self.msgs) < target:
                time.sleep(0.05)
        self.log.append((mode, len(self.msgs) - start))

    async def run_ws(self, deadline):
        target = self.stint_target()
        start = len(self.msgs)
        ws = await lg.ws_open(self.srv, self.rm, since=self.cursor)
        try:
            loop = asyncio.get_running_loop()
            while len(self.msgs) < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                f = await lg.ws_recv_json(ws, min(left, 10))
                self.t.assertNotIn("op", f, "unexpected reply on a read-only socket: %r" % f)
                self.take(f, "ws")
        finally:
            await ws.close()
        self.log.append(("ws", len(self.msgs) - start))

    def run(self, timeout):
        deadline = time.monotonic() + timeout
        i = 0
        while len(self.msgs) < N and time.monotonic() < deadline:
            mode = self.MODES[i % 3]
            i += 1
            if mode == "ws":
                lg.run_async(self.run_ws(deadline), timeout=max(1, deadline - time.monotonic()) + 5)
            else:
                self.run_poll(mode, deadline)
        return self.msgs


class ResumeBase(lg.ServerTest):
    timeout = 120
    generous = False
    workers = None

    @classmethod
    def make_server(cls):
        args = list(BASE_ARGS)
        if cls.workers is not None:
            args += ["--workers", str(cls.workers)]
        return lg.Server(args, generous=False)

    def resume_all(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        pub = Publisher(self.srv, rm, N, RATE)
        con = Consumer(self, self.srv, rm, cur)
        pub.start()
        try:
            msgs = con.run(timeout=90)
        finally:
            pub.stop_flag.set()
            pub.join(15)
        self.assertIsNone(pub.error, pub.error)
        self.assertEqual(pub.seqs, list(range(1, N + 1)), "publisher's seqs are not 1..%d" % N)
        self.assertEqual(len(msgs), N, "received %d of %d; stints: %r" % (len(msgs), N, con.log))
        self.assertEqual([m["text"] for m in msgs], ["m%d" % i for i in range(N)])
        self.assertEqual([m["seq"] for m in msgs], list(range(1, N + 1)))
        # every transport was actually used, several times
        used = [m for m, k in con.log if k > 0]
        for mode in ("ws", "long", "short"):
            self.assertGreaterEqual(used.count(mode), 2, "transport %s used %d times: %r" % (
                mode, used.count(mode), con.log))
        # after the end, every transport agrees there is nothing more
        b = self.srv.poll_json(rm, since=con.cursor)
        self.assertEqual((b["msgs"], b["gap"]), ([], False))


class ResumeWorkers1(ResumeBase):
    workers = 1

    def test_resume_across_transports_workers_1(self):
        self.resume_all()


class ResumeWorkers2(ResumeBase):
    workers = 2

    def test_resume_across_transports_workers_2(self):
        self.resume_all()


class RestartTest(lg.ServerTest):
    """The gateway restarts on the same data dir: an old cursor gives gap:true."""
    timeout = 60

    def test_cursor_after_restart_gives_gap(self):
        first = self.new_server(list(BASE_ARGS), generous=False)
        rm = lg.room()
        cur = lg.current_cursor(first, rm)
        for i in range(5):
            lg.post_ok(first, rm, "u", "before%d" % i)
        c5 = first.poll_json(rm, since=cur)["cursor"]
        first.stop()
        second = self.new_server(list(BASE_ARGS), generous=False, data_dir=first.data_dir)
        # an old cursor is one this gateway could have issued: accepted, with gap:true
        r = second.poll(rm, since=c5)
        self.assertEqual(r.status, 200, "old cursor after restart: %r" % r)
        b = r.json()
        self.assertIs(b["gap"], True, "ring re-created by the restart, yet gap is false: %r" % b)
        self.assertEqual(b["msgs"], [], "no message was published since the restart: %r" % b)
        lg.post_ok(second, rm, "u", "after")
        b2 = second.poll_json(rm, since=c5)
        self.assertIs(b2["gap"], True, b2)
        self.assertEqual([m["text"] for m in b2["msgs"]], ["after"], b2)
        # and the new cursor continues without a gap
        lg.post_ok(second, rm, "u", "after2")
        b3 = second.poll_json(rm, since=b2["cursor"])
        self.assertIs(b3["gap"], False, b3)
        self.assertEqual([m["text"] for m in b3["msgs"]], ["after2"], b3)

    def test_ws_with_old_cursor_after_restart(self):
        first = self.new_server(list(BASE_ARGS), generous=False)
        rm = lg.room()
        cur = lg.current_cursor(first, rm)
        lg.post_ok(first, rm, "u", "x")
        c1 = first.poll_json(rm, since=cur)["cursor"]
        first.stop()
        second = self.new_server(list(BASE_ARGS), generous=False, data_dir=first.data_dir)

        async def go():
            ws = await lg.ws_open(second, rm, since=c1)
            try:
                await asyncio.get_running_loop().run_in_executor(None, lg.post_ok, second, rm, "u", "y")
                return await lg.ws_collect(ws, 1, timeout=5)
            finally:
                await ws.close()

        msgs, batches, _ = lg.run_async(go())
        self.assertEqual([m["text"] for m in msgs], ["y"])
        self.assertIs(batches[0]["gap"], True, batches)


class ConcurrentPublishTest(lg.ServerTest):
    """Publishers on several connections (spread over 2 workers) into one room:
    seq numbers are unique and without holes, ts never decreases."""
    server_args = ["--workers", "2"]
    timeout = 90

    def test_concurrent_publishers(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        threads, results = [], {}

        def work(k):
            p = lg.Poster(self.srv)
            out = []
            try:
                for i in range(100):
                    st, body = p.post(rm, "pub%d" % k, "k%d-%d" % (k, i))
                    out.append((st, body))
            finally:
                p.close()
            results[k] = out

        for k in range(6):
            threads.append(threading.Thread(target=work, args=(k,), daemon=True))
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(len(results), 6)
        seqs = []
        for k, out in results.items():
            for st, body in out:
                self.assertEqual(st, 202, body)
                seqs.append(body["seq"])
            ks = [b["seq"] for _, b in out]
            self.assertEqual(ks, sorted(ks), "one publisher's seqs went backwards")
        self.assertEqual(sorted(seqs), list(range(1, 601)))
        msgs, c = [], cur
        for _ in range(50):
            b = self.srv.poll_json(rm, since=c)
            self.assertIs(b["gap"], False)
            if not b["msgs"]:
                break
            msgs.extend(b["msgs"])
            c = b["cursor"]
        self.assertEqual([m["seq"] for m in msgs], list(range(1, 601)))
        ts = [m["ts"] for m in msgs]
        self.assertEqual(ts, sorted(ts), "ts decreased within the room")
        by_seq = {m["seq"]: m["text"] for m in msgs}
        for k, out in results.items():
            for i, (_, body) in enumerate(out):
                self.assertEqual(by_seq[body["seq"]], "k%d-%d" % (k, i), "seq returned to the publisher "
                                 "does not hold its message")


if __name__ == "__main__":
    lg.main()
