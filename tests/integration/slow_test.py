#!/usr/bin/python3
"""A subscriber that stops reading: the gateway's memory stays bounded, the ring overruns
that subscriber, and when it reads again its next batch says gap:true and everything
after follows the cursor without a hole; subscribers that kept reading lose nothing.

The stalled subscriber is a raw TCP socket with a small SO_RCVBUF that did the WebSocket
handshake by hand and then reads nothing. The kernel takes what it can (the gateway's
send buffer autotunes up to net.ipv4.tcp_wmem's maximum, 4 MiB by default); past that,
the gateway must hold at most one batch for it and let the ring move on. The flood is
several times larger than everything the gateway may legitimately hold, so a gateway
that queued the unread messages would blow the memory bound this test checks.
"""

import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lg  # noqa: E402

RING_SLOTS = 1024
RING_BYTES = 1 << 20        # ~330 of this test's messages
BATCH_MAX = 16384
TEXT_CHARS = 3000           # ~3.1 KB per encoded message
N = 6000                    # ~18.5 MB published in all
CHUNK = 100                 # readers are never more than this behind: far below the ring
RSS_MARGIN = 4 << 20        # allocator slack, lws and libev state, the poster's connection
STALLED_RCVBUF = 4096

ARGS = ["--workers", "2", "--window", "600",
        "--ring-slots", str(RING_SLOTS), "--ring-bytes", str(RING_BYTES),
        "--batch-max-bytes", str(BATCH_MAX), "--text-max-chars", str(TEXT_CHARS),
        # a client that reads nothing also answers no ping; this test is about the ring
        "--ws-ping-interval", "0"]


def text_of(i):
    """The i-th message's text (i from 0): its number, then filler that varies with i."""
    head = "%06d:" % i
    fill = "abcdefghijklmnopqrstuvwxyz"[i % 26] * (TEXT_CHARS - len(head))
    return head + fill


def vm_rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for pid %d" % pid)


def sanitizer_of(pid):
    """'ThreadSanitizer' / 'AddressSanitizer' when the gateway runs under one, else None:
    their shadow memory and quarantine make RSS say nothing about the gateway's own."""
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read()
    if "libtsan" in maps:
        return "ThreadSanitizer"
    if "libasan" in maps:
        return "AddressSanitizer"
    return None


class StalledWS(lg.RawWS):
    """lg.RawWS, but the socket gets a small receive buffer before it connects (so the
    TCP window it advertises stays small), and the test decides when it reads."""

    def __init__(self, srv, path, rcvbuf, timeout=5.0):
        self.srv = srv
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        s.connect((lg.HOST, srv.port))
        self.sock = s
        self.buf = b""
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                   % (path, lg.HOST, srv.port, key)).encode())
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if time.monotonic() > deadline:
                raise AssertionError("stalled ws: no handshake answer")
            chunk = s.recv(4096)
            if not chunk:
                raise AssertionError("stalled ws: closed during handshake: %r" % self.buf)
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.status_line = head.split(b"\r\n")[0].decode("iso-8859-1")
        if " 101 " not in self.status_line + " ":
            raise AssertionError("stalled ws: handshake refused: %r" % head)


class Reader(threading.Thread):
    """A subscriber that keeps reading: collects every batch until it has seq `upto`
    (set by the test once it knows it) or the deadline passes."""

    def __init__(self, ws, deadline):
        super().__init__(daemon=True)
        self.ws, self.deadline = ws, deadline
        self.batches = []
        self.raw = 0  # payload bytes received
        self.last_seq = 0
        self.upto = None
        self.error = None
        self.stop = threading.Event()

    def run(self):
        try:
            for _ in range(10 * N):
                if self.stop.is_set() or (self.upto is not None and self.last_seq >= self.upto):
                    return
                left = self.deadline - time.monotonic()
                if left <= 0:
                    self.error = "reader: deadline passed at seq %d" % self.last_seq
                    return
                try:
                    op, payload = self.ws.read_frame(min(left, 0.5))
                except socket.timeout:
                    continue
                if op != 1:
                    self.error = "reader: frame with opcode %d: %r" % (op, payload[:200])
                    return
                b = json.loads(payload.decode("utf-8"))
                self.raw += len(payload)
                self.batches.append(b)
                if b.get("msgs"):
                    self.last_seq = b["msgs"][-1]["seq"]
            self.error = "reader: too many frames"
        except Exception as e:  # reported by the test
            self.error = "reader: %r" % e


class SlowSubscriberTest(lg.ServerTest):
    server_args = ARGS
    timeout = 240

    def check_stream(self, batches, who, allow_gap):
        """Every batch: msgs contiguous, the first one right after the previous batch's
        last unless the batch says gap, and then strictly later (something was skipped);
        texts intact; the stream ends at N. Returns [(batch index, previous seq)] of the
        gap batches."""
        prev, gaps = 0, []
        for k, b in enumerate(batches):
            self.assertEqual(set(b), {"room", "msgs", "cursor", "gap"},
                             "%s: %r" % (who, str(b)[:300]))
            seqs = [m["seq"] for m in b["msgs"]]
            self.assertTrue(seqs, "%s: empty batch pushed: %r" % (who, b))
            self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(seqs))),
                             "%s: batch %d not contiguous" % (who, k))
            if b["gap"]:
                self.assertTrue(allow_gap, "%s: gap:true in batch %d after seq %d" % (who, k, prev))
                self.assertGreater(seqs[0], prev + 1, "%s: gap:true but nothing skipped after %d"
                                   % (who, prev))
                gaps.append((k, prev))
            else:
                self.assertEqual(seqs[0], prev + 1, "%s: batch %d starts at %d after %d without gap"
                                 % (who, k, seqs[0], prev))
            for m in b["msgs"]:
                self.assertEqual(m["text"], text_of(m["seq"] - 1),
                                 "%s: seq %d's text" % (who, m["seq"]))
            prev = seqs[-1]
        self.assertEqual(prev, N, "%s: stream ends at %d of %d" % (who, prev, N))
        return gaps

    def test_stalled_subscriber_bounded_memory_then_gap(self):
        srv = self.srv
        pid = srv.proc.pid
        rm = lg.room("slow")
        path = "/v1/rooms/%s/ws" % rm
        deadline = time.monotonic() + 180
        sanitizer = sanitizer_of(pid)

        stalled = StalledWS(srv, path, STALLED_RCVBUF)
        self.addCleanup(stalled.close)
        readers = []
        for _ in range(2):  # two, so the room likely has subscribers on both workers
            ws = lg.RawWS(srv, path)
            self.addCleanup(ws.close)
            r = Reader(ws, deadline)
            r.start()
            readers.append(r)
        self.addCleanup(lambda: [r.stop.set() for r in readers])

        poster = lg.Poster(srv)
        self.addCleanup(poster.close)
        published = 0
        rss = []

        def publish_chunk():
            nonlocal published
            for _ in range(CHUNK):
                st, body = poster.post(rm, "flood", text_of(published))
                self.assertEqual(st, 202, "post %d: %s %r" % (published, st, body))
                self.assertEqual(body["seq"], published + 1)
                published += 1
            # pace the flood by the readers, so only the stalled one can be overrun
            lg.wait_for(lambda: all(r.last_seq >= published or r.error for r in readers),
                        timeout=30, what="readers at seq %d" % published)
            for r in readers:
                self.assertIsNone(r.error, r.error)

        publish_chunk()  # everything is set up and warm: the baseline
        base = vm_rss(pid)
        while published < N:
            publish_chunk()
            rss.append((published, vm_rss(pid)))
        # What the gateway may hold beyond the warm baseline: the ring's arena and slots
        # (32 bytes each) once touched, a few batches (the worker's buffer, lws's copy of a
        # partly sent one), and slack. Nothing in it grows with the number published.
        bound = base + RING_BYTES + RING_SLOTS * 32 + 4 * BATCH_MAX + RSS_MARGIN
        peak = max(v for _, v in rss)
        half = [v for p, v in rss if p >= N // 2]
        print("\n  VmRSS: baseline %.1f MiB, peak %.1f MiB, bound %.1f MiB; second half of the "
              "flood grew %.2f MiB" % (base / 2**20, peak / 2**20, bound / 2**20,
                                       (half[-1] - half[0]) / 2**20))

        # The stalled subscriber reads again.
        for r in readers:
            r.upto = N
        batches, sizes = [], []
        for _ in range(N + 100):
            if batches and batches[-1]["msgs"] and batches[-1]["msgs"][-1]["seq"] >= N:
                break
            left = deadline - time.monotonic()
            self.assertGreater(left, 0, "stalled subscriber: deadline passed after %d batches"
                               % len(batches))
            op, payload = stalled.read_frame(min(left, 10))
            self.assertEqual(op, 1, "stalled subscriber: opcode %d %r" % (op, payload[:200]))
            sizes.append(len(payload))
            batches.append(json.loads(payload.decode("utf-8")))
        # Every skip is announced: the batch after it says gap:true. Usually there is one,
        # when it reads again; the kernel may take more from the gateway now and then while
        # the subscriber is stalled (the send buffer autotunes), and each such batch must
        # carry its own gap:true.
        gaps = self.check_stream(batches, "stalled subscriber", allow_gap=True)
        self.assertTrue(gaps, "the ring never overran the stalled subscriber")
        got = sum(len(b["msgs"]) for b in batches)
        print("  stalled subscriber: %d batches, %d of %d messages (%.1f MiB); gap:true in "
              "batches (index, after seq -> first seq) %s" % (
                  len(batches), got, N, sum(sizes) / 2**20,
                  ", ".join("%d, %d -> %d" % (k, after, batches[k]["msgs"][0]["seq"])
                            for k, after in gaps)))

        # The readers got everything, in order, without a gap.
        for k, r in enumerate(readers):
            r.join(30)
            self.assertIsNone(r.error, r.error)
            self.check_stream(r.batches, "reader %d" % k, allow_gap=False)

        # The same cursors by short-poll. The one before the first gap: its messages are
        # gone, so gap:true from the oldest retained, which is no older than what the
        # WebSocket was given after the last gap.
        k0 = gaps[0][0]
        if k0:
            b = srv.poll_json(rm, since=batches[k0 - 1]["cursor"])
            self.assertIs(b["gap"], True, str(b)[:300])
            self.assertGreaterEqual(b["msgs"][0]["seq"], batches[gaps[-1][0]]["msgs"][0]["seq"])
        # A cursor near the end (still in the ring): exactly the messages after it.
        for k in range(len(batches) - 1):
            last = batches[k]["msgs"][-1]["seq"]
            if last >= N - CHUNK:
                b = srv.poll_json(rm, since=batches[k]["cursor"])
                self.assertIs(b["gap"], False, str(b)[:300])
                self.assertEqual(b["msgs"][0]["seq"], last + 1, str(b)[:300])
                break
        b = srv.poll_json(rm, since=batches[-1]["cursor"])
        self.assertEqual((b["msgs"], b["gap"]), ([], False))
        self.assertGreaterEqual(srv.metrics().get("livegate_gaps_total", 0), 1)

        # Memory. What the gateway never sent the stalled subscriber must dwarf the
        # allowance, or the bound proves nothing.
        dropped = readers[0].raw - sum(sizes)
        self.assertGreater(dropped, 2 * (bound - base), "flood too small to test the bound: %d "
                           "bytes skipped vs %d allowed" % (dropped, bound - base))
        if sanitizer:
            print("  NOTE: gateway runs under %s: its RSS is shadow memory and quarantine, "
                  "the memory bound is checked only on a normal build" % sanitizer)
            return
        self.assertLessEqual(peak, bound, "VmRSS %d > bound %d; samples (published, rss): %r"
                             % (peak, bound, rss))
        # The ring's pages are all touched by mid-flood: after that nothing may grow with
        # the number published (9 MB more of it).
        self.assertLess(half[-1] - half[0], 1 << 20, "VmRSS grew with the flood: %r" % rss)


if __name__ == "__main__":
    lg.main()
