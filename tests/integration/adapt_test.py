#!/usr/bin/python3
"""Adaptive transport end to end. A client that follows the gateway's advice talks to
the gateway through lg-relay (netem/), which cuts every connection after 0.3-0.9 s (WebSockets and held long-polls die, a
short-poll on a fresh connection gets through). The
advice must move it from WebSocket to long-poll and then to short-poll; once the cuts
stop, timed probes must bring it back up one level at a time to WebSocket. Throughout,
the client must receive every message published after it subscribed exactly once.

The client here is a small Python one (websockets + http.client) written from
docs/protocol.md; livegate-client and the browser module are tested elsewhere."""

import asyncio
import http.client
import json
import os
import sys
import threading
import time

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lg  # noqa: E402
from relay_test import Relay  # noqa: E402

# Periods short enough for a test; the policy's arithmetic is the same as with defaults.
ADAPT_ARGS = ["--adapt-min-connected", "10", "--adapt-half-life", "8",
              "--adapt-longpoll-above", "5", "--adapt-shortpoll-above", "15",
              "--adapt-hysteresis", "0.5", "--adapt-probe-after", "3", "--adapt-probe-max", "12",
              "--adapt-shortpoll-min-ms", "200", "--adapt-shortpoll-max-ms", "400",
              "--adapt-longpoll-wait", "2", "--adapt-longpoll-gap", "3",
              "--suppress-shortpoll", "0"]
PUBLISH_RATE = 1.0  # msgs/s: long-polls are held long enough for cuts to land inside them


class Publisher(threading.Thread):
    """Posts straight to the gateway (not through the relay) at a steady rate."""

    def __init__(self, srv, rm):
        super().__init__(daemon=True)
        self.srv, self.rm = srv, rm
        self.seqs, self.error = [], None
        self.stop_flag = threading.Event()

    def run(self):
        p = lg.Poster(self.srv)
        try:
            i = 0
            while not self.stop_flag.wait(1.0 / PUBLISH_RATE) and i < 10000:
                st, body = p.post(self.rm, "pub", "m%d" % i)
                if st != 202:
                    self.error = "post -> %s %r" % (st, body)
                    return
                self.seqs.append(body["seq"])
                i += 1
        except Exception as e:  # reported by the test
            self.error = repr(e)
        finally:
            p.close()


class AdaptiveClient(threading.Thread):
    """Follows the advice: /connect, then ws / long-poll / short-poll with its cursor;
    switches when a batch carries advice for another transport; on a failure backs off
    and asks /connect again."""

    def __init__(self, port, rm, client_id, cursor):
        super().__init__(daemon=True)
        self.port, self.rm, self.id = port, rm, client_id
        self.cursor = cursor
        self.seqs = []            # every message seq received, in order
        self.gap_flags = 0
        self.transports = []      # (monotonic time, transport, reason) on each change
        self.failures = 0
        self.error = None
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()

    # -- bookkeeping --
    def take(self, b):
        if b.get("gap"):
            self.gap_flags += 1
        with self.lock:
            self.seqs.extend(m["seq"] for m in b["msgs"])
        self.cursor = b["cursor"]

    def current(self):
        return self.transports[-1][1] if self.transports else None

    def follow(self, adv):
        if adv["transport"] != self.current():
            self.transports.append((time.monotonic(), adv["transport"], adv["reason"]))
        return adv

    def backoff(self):
        self.failures += 1
        self.stop_flag.wait(0.1)

    # -- HTTP --
    def get(self, path, timeout):
        c = http.client.HTTPConnection(lg.HOST, self.port, timeout=timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
        finally:
            c.close()

    def connect(self):
        for _ in range(1000):
            if self.stop_flag.is_set():
                return None
            try:
                st, _, body = self.get("/v1/rooms/%s/connect?client=%s" % (self.rm, self.id), 5)
                if st == 200:
                    return self.follow(json.loads(body))
            except OSError:
                pass
            self.backoff()
        raise AssertionError("connect never succeeded")

    def poll_stint(self, adv):
        kind = adv["transport"]
        while not self.stop_flag.is_set():
            started = time.monotonic()
            try:
                st, hdrs, body = self.get(adv["poll_url"] + "&since=" + self.cursor, 10)
            except (OSError, http.client.HTTPException):
                self.backoff()
                return self.connect()
            if st == 429:
                adv = self.follow(json.loads(body)["advice"])
                self.stop_flag.wait(float(hdrs.get("retry-after", "1")))
                if adv["transport"] != kind:
                    return adv
                continue
            if st != 200:
                raise AssertionError("poll -> %d %r" % (st, body[:200]))
            b = json.loads(body)
            self.take(b)
            if "advice" in b:
                adv = self.follow(b["advice"]) if b["advice"]["transport"] != kind else b["advice"]
                if adv["transport"] != kind:
                    return adv
            if kind == "shortpoll":
                left = adv["interval_ms"] / 1000.0 - (time.monotonic() - started)
                if left > 0:
                    self.stop_flag.wait(left)
        return None

    async def ws_stint(self, adv):
        url = "ws://%s:%d%s&since=%s" % (lg.HOST, self.port, adv["ws_url"], self.cursor)
        try:
            async with websockets.connect(url, open_timeout=5, close_timeout=1,
                                          ping_interval=None) as ws:
                while not self.stop_flag.is_set():
                    try:
                        frame = await asyncio.wait_for(ws.recv(), 0.3)
                    except asyncio.TimeoutError:
                        continue
                    b = json.loads(frame)
                    self.take(b)
                    if "advice" in b and b["advice"]["transport"] != "ws":
                        await ws.close(1000)
                        return self.follow(b["advice"])
                return None
        except (OSError, websockets.exceptions.WebSocketException, asyncio.TimeoutError):
            pass
        self.backoff()
        return "reconnect"

    def run(self):
        try:
            adv = self.connect()
            while adv is not None and not self.stop_flag.is_set():
                if adv["transport"] == "ws":
                    nxt = asyncio.run(self.ws_stint(adv))
                    adv = self.connect() if nxt == "reconnect" else nxt
                else:
                    adv = self.poll_stint(adv)
        except Exception as e:  # reported by the test
            self.error = "%s: %r" % (type(e).__name__, e)


class AdaptTest(lg.ServerTest):
    timeout = 150
    server_args = ADAPT_ARGS

    def wait_transport(self, client, path, timeout):
        """Wait until the client's transports, in order, contain path; return the tail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.assertIsNone(client.error, client.error)
            seen = [t for _, t, _ in client.transports]
            it = iter(seen)
            if all(any(x == want for x in it) for want in path):
                return seen
            time.sleep(0.1)
        self.fail("client never went %s within %ds; it went %s" % (
            " -> ".join(path), timeout, client.transports))

    def test_cuts_move_client_down_and_back_up_without_loss(self):
        rm = lg.room("adapt")
        relay = Relay(self.srv.port, "--cut-min-ms", "300", "--cut-max-ms", "900")
        pub = client = None
        try:
            cursor = lg.current_cursor(self.srv, rm)
            client = AdaptiveClient(relay.port, rm, "c-" + rm, cursor)
            pub = Publisher(self.srv, rm)
            pub.start()
            client.start()

            # Cuts on: ws -> longpoll -> shortpoll, in that order and nothing above once down.
            seen = self.wait_transport(client, ["ws", "longpoll", "shortpoll"], 60)
            self.assertEqual(seen[:3], ["ws", "longpoll", "shortpoll"], client.transports)
            down_reasons = [r for _, t, r in client.transports[1:3]]
            for r in down_reasons:
                self.assertIn(r, ("rate_high", "rate_very_high"), client.transports)
            cut = relay.stats()
            self.assertGreater(cut["cut"], 2, cut)

            # Cuts off: probes bring it back, one level at a time.
            relay.ctl("set cut_min_ms=0 cut_max_ms=0")
            mark = len(client.transports)
            deadline = time.monotonic() + 70
            while time.monotonic() < deadline and client.current() != "ws":
                self.assertIsNone(client.error, client.error)
                time.sleep(0.2)
            up = client.transports[mark - 1:]
            self.assertEqual([t for _, t, _ in up], ["shortpoll", "longpoll", "ws"], client.transports)
            self.assertEqual([r for _, _, r in up[1:]], ["probe", "probe"], client.transports)

            # A little more on WebSocket, then drain and compare.
            time.sleep(2)
            pub.stop_flag.set()
            pub.join(10)
            self.assertIsNone(pub.error, pub.error)
            lg.wait_for(lambda: len(client.seqs) >= len(pub.seqs), timeout=15,
                        what="the client to receive the last messages")
            time.sleep(0.5)  # a duplicate would arrive about now
        finally:
            if client:
                client.stop_flag.set()
                client.join(15)
            if pub:
                pub.stop_flag.set()
            relay.stop()
        self.assertIsNone(client.error, client.error)
        self.assertEqual(client.gap_flags, 0)
        self.assertGreater(len(pub.seqs), 20)
        self.assertEqual(client.seqs, pub.seqs, "lost, repeated or reordered messages "
                         "(client %d, published %d)" % (len(client.seqs), len(pub.seqs)))
        m = self.srv.metrics()
        self.assertGreaterEqual(m['livegate_adapt_moves_total{reason="rate"}'], 2)
        self.assertGreaterEqual(m['livegate_adapt_moves_total{reason="probe"}'], 2)
        print("transports: %s" % [(round(t - client.transports[0][0], 1), tp, r)
                                  for t, tp, r in client.transports])
        print("messages: %d, client failures (reconnects): %d" % (len(client.seqs), client.failures))


if __name__ == "__main__":
    lg.main()
