#!/usr/bin/python3
"""lg-relay (netem/relay.c): delay, jitter without reordering, rate, stalls, cuts, the
control channel and its counters, bad input, resets from either side; in front of a small
echo server and in front of the real gateway.

Timing checks are lower bounds derived from the configured impairment (a delay of D ms
makes a round trip take at least 2*D); upper bounds appear only as generous timeouts.
"""

import asyncio
import json
import os
import random
import re
import select
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lg  # noqa: E402

RELAY = os.environ.get("LG_RELAY_BIN") or os.path.join(lg.REPO, "build", "lg-relay")
HOST = lg.HOST
PARAMS = ["delay_ms", "jitter_ms", "rate_kbps", "burst_bytes", "stall_every_ms", "stall_ms",
          "cut_min_ms", "cut_max_ms", "buf_bytes", "max_conns", "connect_timeout_ms"]


class Echo:
    """Non-blocking echo server on 127.0.0.1:0, one thread (selectors). A connection whose
    first bytes are b"RST!" is reset (SO_LINGER 0). `ends` records how each connection
    ended: "eof", "reset" (RST received), "rst-sent", "error ..."."""

    HIGH = 1 << 20  # stop reading a connection while this much is waiting to go back

    def __init__(self):
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((HOST, 0))
        self.lsock.listen(1024)
        self.lsock.setblocking(False)
        self.port = self.lsock.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.lsock, selectors.EVENT_READ, None)
        self.lock = threading.Lock()
        self.ends = []
        self.accepted = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            for key, ev in self.sel.select(0.1):
                if key.data is None:
                    self._accept()
                else:
                    self._io(key.fileobj, key.data, ev)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()
        self.sel.close()

    def _accept(self):
        for _ in range(256):
            try:
                s, _ = self.lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            s.setblocking(False)
            with self.lock:
                self.accepted += 1
            self.sel.register(s, selectors.EVENT_READ, {"out": bytearray(), "eof": False})

    def _end(self, s, how, rst=False):
        if rst:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sel.unregister(s)
        s.close()
        with self.lock:
            self.ends.append(how)

    def _io(self, s, st, ev):
        try:
            if ev & selectors.EVENT_READ and not st["eof"] and len(st["out"]) < self.HIGH:
                d = s.recv(65536)
                if not d:
                    st["eof"] = True
                elif d.startswith(b"RST!"):
                    return self._end(s, "rst-sent", rst=True)
                else:
                    st["out"] += d
            if st["out"]:
                n = s.send(st["out"])
                del st["out"][:n]
        except (BlockingIOError, InterruptedError):
            pass
        except ConnectionResetError:
            return self._end(s, "reset")
        except OSError as e:
            return self._end(s, "error %s" % e)
        if st["eof"] and not st["out"]:
            return self._end(s, "eof")
        want = 0
        if not st["eof"] and len(st["out"]) < self.HIGH:
            want |= selectors.EVENT_READ
        if st["out"]:
            want |= selectors.EVENT_WRITE
        self.sel.modify(s, want, st)

    def ended(self, how):
        with self.lock:
            return sum(1 for e in self.ends if e == how)

    def stop(self):
        self.stopping = True
        self.thread.join(5)


class Relay:
    """One lg-relay process we started (stopped by its own pid)."""

    def __init__(self, upstream_port, *flags):
        self.log = tempfile.NamedTemporaryFile(prefix="lgrelay-", suffix=".log", delete=False)
        self.final_stderr = None  # kept in memory once stopped; the log file is then removed
        self.argv = [RELAY, "--listen", "%s:0" % HOST, "--upstream", "%s:%d" % (HOST, upstream_port),
                     "--seed", "1"] + list(flags)
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.log, env=lg.clean_env())
        ready, _, _ = select.select([self.proc.stdout], [], [], 5)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("lg-relay printed no start line: %s\n%s" % (self.argv, self.stderr()))
        self.info = json.loads(line)
        self.port = self.info["listen_port"]
        self.ctl_sock = None
        self.ctl_buf = b""

    def stderr(self):
        if self.final_stderr is not None:
            return self.final_stderr
        with open(self.log.name, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def ctl_raw(self, data, timeout=5.0):
        """Send raw bytes on the (persistent) control connection; return the next answer line."""
        if self.ctl_sock is None:
            self.ctl_sock = socket.create_connection((HOST, self.info["control_port"]), timeout=timeout)
        self.ctl_sock.sendall(data)
        deadline = time.monotonic() + timeout
        while b"\n" not in self.ctl_buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("control: no answer to %r" % data[:80])
            self.ctl_sock.settimeout(left)
            chunk = self.ctl_sock.recv(65536)
            if not chunk:
                raise EOFError("control connection closed after %r" % data[:80])
            self.ctl_buf += chunk
        line, self.ctl_buf = self.ctl_buf.split(b"\n", 1)
        return json.loads(line)

    def ctl(self, command):
        return self.ctl_raw(command.encode() + b"\n")

    def stats(self):
        return self.ctl("stats")

    def sanitizer_report(self):
        """The first sanitizer report in the relay's stderr (ASan/UBSan builds), or None."""
        txt = self.stderr()
        m = re.search(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:", txt)
        return txt[max(0, m.start() - 200):m.start() + 4000] if m else None

    def stop(self):
        if self.ctl_sock:
            self.ctl_sock.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("lg-relay ignored SIGTERM for 5 s")
        self.proc.stdout.close()
        if self.final_stderr is None:
            self.final_stderr = self.stderr()
            self.log.close()
            os.unlink(self.log.name)
        return self.proc.returncode


def connect(port, timeout=10.0):
    return socket.create_connection((HOST, port), timeout=timeout)


def recv_exact(s, n, timeout=20.0):
    buf = bytearray()
    deadline = time.monotonic() + timeout
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("got %d of %d bytes within %.0fs" % (len(buf), n, timeout))
        s.settimeout(left)
        chunk = s.recv(min(65536, n - len(buf)))
        if not chunk:
            raise AssertionError("EOF after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return bytes(buf)


def roundtrip(s, payload):
    """Seconds from send to the echo's last byte."""
    t0 = time.monotonic()
    s.sendall(payload)
    got = recv_exact(s, len(payload))
    assert got == payload, "echo differs"
    return time.monotonic() - t0


def transfer(s, payload, pieces=False, timeout=30.0):
    """Send payload (from a thread; in random-size writes when pieces) while reading the
    echo here; returns (echo, seconds)."""
    err = []

    def send():
        try:
            if not pieces:
                s.sendall(payload)
                return
            rnd = random.Random(len(payload))
            i = 0
            while i < len(payload):
                n = rnd.randint(1, 5000)
                s.sendall(payload[i:i + n])
                i += n
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=send, daemon=True)
    t0 = time.monotonic()
    t.start()
    got = recv_exact(s, len(payload), timeout)
    elapsed = time.monotonic() - t0
    t.join(timeout)
    if err:
        raise AssertionError("sender failed: %r" % err)
    return got, elapsed


def wait_reset(s, timeout=10.0):
    """Block until the peer resets s; returns seconds waited. Fails on data, EOF or timeout."""
    t0 = time.monotonic()
    s.settimeout(timeout)
    try:
        d = s.recv(100)
    except ConnectionResetError:
        return time.monotonic() - t0
    except socket.timeout:
        raise AssertionError("no reset within %.1fs" % timeout)
    raise AssertionError("expected a reset, got %r" % d)


class _Alarm(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Alarm("test timed out (SIGALRM)")


class RelayCase(unittest.TestCase):
    timeout = 60

    def setUp(self):
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.alarm(self.timeout)
        self.addCleanup(signal.alarm, 0)
        self.echo = Echo()
        self.addCleanup(self.echo.stop)

    def relay(self, *flags, upstream=None):
        r = Relay(self.echo.port if upstream is None else upstream, *flags)

        def stop():
            rc = r.stop()
            self.assertEqual(rc, 0, "lg-relay exit code %s on SIGTERM\n%s" % (rc, r.stderr()))
            self.assertIsNone(r.sanitizer_report())
        self.addCleanup(stop)
        return r

    def sock(self, port):
        s = connect(port)
        self.addCleanup(s.close)
        return s


class RelayEchoTest(RelayCase):

    def test_start_line_and_transparent_echo(self):
        r = self.relay("--name", "plain")
        self.assertEqual(set(r.info), {"listen", "listen_port", "control_port", "upstream", "seed",
                                       "pid", "name"}, r.info)
        self.assertEqual(r.info["pid"], r.proc.pid)
        self.assertEqual(r.info["seed"], 1)
        self.assertEqual(r.info["name"], "plain")
        self.assertGreater(r.port, 0)
        s = self.sock(r.port)
        roundtrip(s, b"hello through the relay")

    def test_delay_applies_each_way(self):
        # The relay keeps time in whole milliseconds (a read at x.9 ms is stamped x), so
        # each direction may release up to 1 ms early: allow 2 ms per round trip (seen:
        # 199.83 ms for 2 x 100).
        slack = 0.002
        r = self.relay("--delay-ms", "100")
        s = self.sock(r.port)
        for i in range(3):
            rt = roundtrip(s, b"ping %d" % i)
            self.assertGreaterEqual(rt, 0.200 - slack, "round trip %.4fs < 2 x 100 ms" % rt)
        # changed at run time: applies to bytes read from then on
        self.assertEqual(r.ctl("set delay_ms=250")["params"]["delay_ms"], 250)
        rt = roundtrip(s, b"slower")
        self.assertGreaterEqual(rt, 0.500 - slack, "round trip %.4fs < 2 x 250 ms" % rt)

    def test_jitter_keeps_bytes_intact_and_in_order(self):
        # jitter larger than the delay: the draw is clamped, order must still hold
        r = self.relay("--delay-ms", "5", "--jitter-ms", "20")
        socks = [self.sock(r.port) for _ in range(4)]
        results = [None] * len(socks)

        def run(i):
            payload = random.Random(i).randbytes(300000)
            got, _ = transfer(socks[i], payload, pieces=True)
            results[i] = got == payload

        threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(socks))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(40)
        self.assertEqual(results, [True] * len(socks))
        st = r.stats()
        self.assertEqual(st["bytes_up"], 4 * 300000)
        self.assertEqual(st["bytes_down"], 4 * 300000)

    def test_rate_limit_lower_bound(self):
        r = self.relay()
        kbps, burst, n = 4000, 16384, 600000
        r.ctl("set rate_kbps=%d burst_bytes=%d" % (kbps, burst))
        s = self.sock(r.port)
        payload = os.urandom(n)
        got, elapsed = transfer(s, payload)
        self.assertEqual(got, payload)
        floor = (n - burst) * 8 / kbps / 1000.0  # one direction alone needs this long
        self.assertGreaterEqual(elapsed, floor, "%d bytes at %d kbit/s in %.3fs (< %.3fs)" % (
            n, kbps, elapsed, floor))

    def test_cuts_reset_both_sides_at_their_lifetimes(self):
        cut_min, cut_max, k = 400, 700, 4
        r = self.relay("--cut-min-ms", str(cut_min), "--cut-max-ms", str(cut_max))
        starts, socks = [], []
        for _ in range(k):
            starts.append(time.monotonic())
            socks.append(self.sock(r.port))
        for s in socks:
            roundtrip(s, b"alive")
        for t0, s in zip(starts, socks):
            wait_reset(s, timeout=cut_max / 1000.0 + 10)
            life = time.monotonic() - t0
            self.assertGreaterEqual(life, cut_min / 1000.0, "cut after %.3fs" % life)
        lg.wait_for(lambda: self.echo.ended("reset") == k, 5, what="upstream sides reset")
        st = r.stats()
        self.assertEqual((st["accepted"], st["open"], st["cut"]), (k, 0, k), st)

    def test_runtime_set_stops_cuts(self):
        r = self.relay("--cut-min-ms", "2000", "--cut-max-ms", "2500")
        s = self.sock(r.port)
        roundtrip(s, b"x")
        ans = r.ctl("set cut_min_ms=0 cut_max_ms=0")
        self.assertTrue(ans["ok"], ans)
        time.sleep(2.8)  # past every lifetime that was drawn
        roundtrip(s, b"still here")
        s2 = self.sock(r.port)
        roundtrip(s2, b"new one")
        st = r.stats()
        self.assertEqual((st["cut"], st["open"]), (0, 2), st)
        # and back on: the lifetime counts from the set
        r.ctl("set cut_min_ms=200 cut_max_ms=300")
        wait_reset(s, 10)
        wait_reset(s2, 10)
        self.assertEqual(r.stats()["cut"], 2)

    def test_cut_all(self):
        r = self.relay()
        socks = [self.sock(r.port) for _ in range(3)]
        for s in socks:
            roundtrip(s, b"x")
        self.assertEqual(r.ctl("cut-all"), {"ok": True, "cut": 3})
        for s in socks:
            wait_reset(s, 5)
        st = r.stats()
        self.assertEqual((st["open"], st["cut"]), (0, 3), st)

    def test_one_shot_stall_holds_traffic_and_accepts(self):
        r = self.relay()
        s = self.sock(r.port)
        roundtrip(s, b"before")
        t0 = time.monotonic()
        self.assertEqual(r.ctl("stall 1500"), {"ok": True, "stall_ms": 1500})
        self.assertTrue(r.stats()["stalled"])
        s.sendall(b"held")
        # a connection made during the stall completes in the kernel but is not accepted
        s2 = self.sock(r.port)
        s2.sendall(b"held too")
        self.assertEqual(r.stats()["accepted"], 1)
        self.assertEqual(recv_exact(s, 4), b"held")
        self.assertGreaterEqual(time.monotonic() - t0, 1.5)
        self.assertEqual(recv_exact(s2, 8), b"held too")
        self.assertGreaterEqual(time.monotonic() - t0, 1.5)
        st = r.stats()
        self.assertFalse(st["stalled"])
        self.assertEqual(st["accepted"], 2)

    def test_periodic_stall_comes_and_goes(self):
        r = self.relay("--stall-every-ms", "600", "--stall-ms", "300")
        seen = set()
        deadline = time.monotonic() + 10
        while seen != {True, False} and time.monotonic() < deadline:
            seen.add(r.stats()["stalled"])
            time.sleep(0.02)
        self.assertEqual(seen, {True, False})
        # traffic still flows overall
        s = self.sock(r.port)
        roundtrip(s, b"eventually")
        r.ctl("set stall_every_ms=0")
        self.assertFalse(r.stats()["stalled"])

    def test_stats_counts(self):
        r = self.relay()
        socks = [self.sock(r.port) for _ in range(3)]
        for i, s in enumerate(socks):
            roundtrip(s, b"a" * (1000 * (i + 1)))
        # two end gracefully: FIN from the client, the echo server closes after its echo
        for s in socks[:2]:
            s.shutdown(socket.SHUT_WR)
            s.settimeout(5)
            self.assertEqual(s.recv(10), b"")
        lg.wait_for(lambda: r.stats()["closed"] == 2, 5, what="two graceful closes")
        st = r.stats()
        self.assertEqual({k: st[k] for k in ("accepted", "open", "cut", "failed", "reset", "closed",
                                              "bytes_up", "bytes_down")},
                         {"accepted": 3, "open": 1, "cut": 0, "failed": 0, "reset": 0,
                          "closed": 2, "bytes_up": 6000, "bytes_down": 6000})
        self.assertEqual(sorted(st["params"]), sorted(PARAMS))
        self.assertEqual(st["params"], r.ctl("get"))

    def test_upstream_refused(self):
        r = self.relay(upstream=lg.free_port())
        try:
            s = self.sock(r.port)
        except ConnectionResetError:
            pass  # the reset beat connect()'s own wake-up (socket timeouts poll)
        else:
            wait_reset(s, 10)
        lg.wait_for(lambda: r.stats()["failed"] == 1, 5, what="failed == 1")
        self.assertEqual(r.stats()["open"], 0)

    def test_resets_from_either_side(self):
        r = self.relay()
        # the upstream resets: the client is reset too
        s = self.sock(r.port)
        s.sendall(b"RST!")
        wait_reset(s, 5)
        # the client resets: the upstream is reset too
        s2 = self.sock(r.port)
        roundtrip(s2, b"x")
        s2.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s2.close()
        lg.wait_for(lambda: self.echo.ended("reset") == 1, 5, what="upstream reset")
        lg.wait_for(lambda: r.stats()["reset"] == 2, 5, what="reset == 2")
        roundtrip(self.sock(r.port), b"relay still works")
        self.assertEqual(r.stats()["open"], 1)

    def test_many_connections(self):
        r = self.relay("--delay-ms", "10")
        n = 400
        socks = [self.sock(r.port) for _ in range(n)]
        for i, s in enumerate(socks):
            s.sendall(b"conn %05d" % i)
        for i, s in enumerate(socks):
            self.assertEqual(recv_exact(s, 10), b"conn %05d" % i)
        st = r.stats()
        self.assertEqual((st["accepted"], st["open"]), (n, n), st)
        for s in socks:
            s.close()
        lg.wait_for(lambda: r.stats()["open"] == 0, 10, what="all closed")
        self.assertEqual(r.stats()["closed"], n)

    def test_max_conns_pauses_accepting(self):
        r = self.relay("--max-conns", "2")
        a, b = self.sock(r.port), self.sock(r.port)
        roundtrip(a, b"a")
        roundtrip(b, b"b")
        c = self.sock(r.port)  # queued in the kernel
        c.sendall(b"c")
        time.sleep(0.3)
        self.assertEqual(r.stats()["accepted"], 2)
        a.close()
        self.assertEqual(recv_exact(c, 1), b"c")
        self.assertEqual(r.stats()["accepted"], 3)


class RelayControlTest(RelayCase):

    def test_bad_commands_get_error_lines(self):
        r = self.relay()
        before = r.ctl("get")
        bad = ["nope", "set", "set bogus=1", "set delay_ms=abc", "set delay_ms=-5",
               "set delay_ms=600001", "set delay_ms", "set stall_every_ms=100 stall_ms=100",
               "set cut_min_ms=500 cut_max_ms=100", "set delay_ms=10 bogus=1", "get x",
               "stats now", "cut-all please", "stall", "stall -1", "stall x",
               "\x01\xff binary"]
        for cmd in bad:
            ans = r.ctl_raw(cmd.encode("latin-1") + b"\n")
            self.assertEqual(set(ans), {"error"}, "%r -> %r" % (cmd, ans))
            self.assertIsInstance(ans["error"], str)
        self.assertEqual(r.ctl("get"), before, "a refused set changed something")
        # blank lines are not answered; CRLF works
        self.assertEqual(r.ctl_raw(b"\n  \r\nget\r\n"), before)
        # a line longer than the limit: an error, then the connection closes
        ans = r.ctl_raw(b"set " + b"x" * 5000)
        self.assertIn("too long", ans["error"])
        with self.assertRaises((EOFError, ConnectionResetError)):
            r.ctl_raw(b"get\n")
        # the relay is fine and a new control connection works
        r.ctl_sock = None
        r.ctl_buf = b""
        self.assertEqual(r.ctl("get"), before)

    def test_pipelined_commands(self):
        r = self.relay()
        r.ctl("get")  # open the connection
        r.ctl_sock.sendall(b"get\n" * 2000)
        first = None
        for _ in range(2000):
            ans = r.ctl_raw(b"")
            first = first or ans
            self.assertEqual(ans, first)

    def test_bad_flags(self):
        cases = [[], ["--upstream"], ["--upstream", "nohost"], ["--upstream", "127.0.0.1:99999"],
                 ["--upstream", "127.0.0.1:1", "--delay-ms", "x"],
                 ["--upstream", "127.0.0.1:1", "--bogus", "1"],
                 ["--upstream", "127.0.0.1:1", "stray"],
                 ["--upstream", "127.0.0.1:1", "--stall-every-ms", "10", "--stall-ms", "10"],
                 ["--upstream", "127.0.0.1:1", "--control", "0.0.0.0:0"],
                 ["--upstream", "127.0.0.1:1", "--seed", "-1"]]
        for argv in cases:
            p = subprocess.run([RELAY] + argv, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=10)
            self.assertEqual(p.returncode, 2, "%r -> %d %r" % (argv, p.returncode, p.stderr))
            self.assertTrue(p.stderr.startswith(b"lg-relay: "), (argv, p.stderr))
            self.assertEqual(p.stdout, b"")
        p = subprocess.run([RELAY, "--help"], capture_output=True, timeout=10)
        self.assertEqual(p.returncode, 0)
        for name in PARAMS:
            self.assertIn(b"--" + name.replace("_", "-").encode(), p.stdout)
        for word in (b"--listen", b"--upstream", b"--control", b"--seed", b"set key=value",
                     b"stats", b"cut-all", b"stall MS"):
            self.assertIn(word, p.stdout)

    def test_flag_forms_and_control_off(self):
        r = self.relay("--delay-ms=30", "--jitter-ms", "5", "--control", "off")
        self.assertIsNone(r.info["control_port"])
        rt = roundtrip(self.sock(r.port), b"x")
        self.assertGreaterEqual(rt, 2 * 0.025 - 0.002)  # whole-ms clock: see test_delay_applies_each_way


class RelayGatewayTest(lg.ServerTest):
    """lg-relay in front of the real gateway."""

    def relay(self, *flags):
        r = Relay(self.srv.port, *flags)

        def stop():
            self.assertEqual(r.stop(), 0, r.stderr())
            self.assertIsNone(r.sanitizer_report())
        self.addCleanup(stop)
        return r

    def test_http_through_delay(self):
        r = self.relay("--delay-ms", "100", "--jitter-ms", "20")
        resp = lg.curl("http://%s:%d/healthz" % (HOST, r.port))
        self.assertEqual(resp.status, 200, resp)
        # request one way, response the other, each at least delay - jitter (less up to
        # 1 ms: the relay's clock counts whole ms, see RelayEchoTest.test_delay_applies_each_way)
        self.assertGreaterEqual(resp.elapsed, 2 * 0.080 - 0.002, resp.elapsed)

    def test_websocket_cut_has_no_close_frame(self):
        import websockets
        # long enough for the handshake and one message even on a loaded machine
        cut_min, cut_max = 2000, 2500
        r = self.relay("--cut-min-ms", str(cut_min), "--cut-max-ms", str(cut_max))
        rm = lg.room()

        async def run():
            t0 = time.monotonic()
            ws = await websockets.connect("ws://%s:%d/v1/rooms/%s/ws" % (HOST, r.port, rm),
                                          max_size=None, compression=None, open_timeout=5,
                                          close_timeout=3, ping_interval=None)
            try:
                lg.post_ok(self.srv, rm, "u1", "through the relay")
                msgs, _, _ = await lg.ws_collect(ws, 1, timeout=5)
                self.assertEqual(msgs[0]["text"], "through the relay")
                await asyncio.wait_for(ws.wait_closed(), cut_max / 1000.0 + 10)
                return time.monotonic() - t0, ws.close_code, ws.close_rcvd
            finally:
                await ws.close()

        life, code, rcvd = lg.run_async(run(), 30)
        self.assertGreaterEqual(life, cut_min / 1000.0)
        self.assertIsNone(rcvd, "a close frame arrived: %r" % (rcvd,))
        self.assertEqual(code, 1006)
        self.assertEqual(r.stats()["cut"], 1)


if __name__ == "__main__":
    if not os.path.exists(RELAY):
        print("lg-relay not found at %s (set LG_RELAY_BIN)" % RELAY)
        sys.exit(1)
    lg.main()
