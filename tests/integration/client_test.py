#!/usr/bin/python3
"""livegate-client (transport/client.c) against the real gateway: each pinned transport
and the adaptive mode deliver every message exactly once; reconnects after a gateway
restart or kill -9 (gap:true counted); backoff against a closed port; 429 too_fast and
`suppressed` accounting; moving down and back up with the gateway's advice (connections
cut with `ss -K`); TLS; the CLI's flags, statistics lines and signals."""

import atexit
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lg  # noqa: E402

STATS_KEYS = {"t", "client", "transport", "delivered", "duplicates", "gaps", "gap_flags",
              "suppressed", "disconnects", "failures", "switches", "switch_pairs", "too_fast",
              "batches", "bytes", "lat_p50_ms", "lat_p95_ms", "lat_p99_ms", "advice", "rate_per_min", "reason"}
FLAGS = ["--url", "--room", "--client", "--transport", "--fallback", "--duration", "--print",
         "--stats-interval", "--backoff-base-ms", "--backoff-max-ms", "--seed", "--longpoll-wait",
         "--shortpoll-interval-ms", "--io-timeout-ms", "--ping-interval", "--max-batch-bytes",
         "--insecure", "--verbose", "--help", "--stall-ms", "--since"]


def client_bin():
    """$LIVEGATE_CLIENT_BIN, else livegate-client next to the gateway binary."""
    b = os.environ.get("LIVEGATE_CLIENT_BIN")
    if b:
        return b
    return os.path.join(os.path.dirname(lg.binary()), "livegate-client")


SANITIZER = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|WARNING: ThreadSanitizer|runtime error:")


def check_sanitizer(stderr, argv):
    """A sanitizer build of the client reports into its stderr (often at exit): a failure."""
    m = SANITIZER.search(stderr)
    if m:
        raise AssertionError("sanitizer report from livegate-client %s:\n%s" % (
            " ".join(argv), stderr[max(0, m.start() - 200):m.start() + 6000]))


def run_client(args, timeout=20):
    """Run livegate-client to completion -> CompletedProcess (text)."""
    argv = [client_bin()] + list(args)
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=lg.clean_env(), text=True)
    check_sanitizer(r.stderr, argv)
    return r


def run_unreachable(url, transport, duration):
    """Run a client that can never connect to url: it must keep retrying with backoff
    and exit 0 when its duration ends -> its final statistics."""
    r = run_client(["--url", url, "--room", "x", "--transport", transport, "--duration",
                    str(duration), "--print", "none", "--backoff-base-ms", "20",
                    "--backoff-max-ms", "200"])
    assert r.returncode == 0, r.stderr
    return json.loads(r.stderr.strip().splitlines()[-1]), r.stderr


class Client:
    """One livegate-client process we started: stdout and stderr go to files we read
    while it runs; killed by pid at cleanup."""

    def __init__(self, test, url, room_name, args=(), print_mode="messages", cap_s=120):
        self.tmp = tempfile.mkdtemp(prefix="lgcl-")
        self.out_path = os.path.join(self.tmp, "out")
        self.err_path = os.path.join(self.tmp, "err")
        self.print_mode = print_mode
        # --duration caps the process in case a test dies before stopping it
        self.argv = [client_bin(), "--url", url, "--room", room_name, "--print", print_mode,
                     "--verbose", "--backoff-base-ms", "50", "--backoff-max-ms", "1000",
                     "--duration", str(cap_s)] + list(args)
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=lg.clean_env())
        self.rc = None
        test.addCleanup(self.kill)

    def _read(self, path):
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def err_text(self):
        return self._read(self.err_path)

    def json_lines(self, text):
        """Complete lines of text that are JSON objects (a partial last line is skipped)."""
        out = []
        lines = text.split("\n")
        for line in lines[:-1]:
            line = line.strip()
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def messages(self):
        assert self.print_mode == "messages"
        return self.json_lines(self._read(self.out_path))

    def stats_lines(self):
        return [o for o in self.json_lines(self._read(self.out_path if self.print_mode == "stats"
                                                      else self.err_path)) if "delivered" in o]

    def final_stats(self):
        finals = [o for o in self.stats_lines() if o.get("final") is True]
        if len(finals) != 1:
            raise AssertionError("expected one final stats line, got %d\n%s" % (len(finals), self.ctx()))
        return finals[0]

    def ctx(self):
        lines = self.err_text().splitlines()
        quiet = [l for l in lines if not re.match(r"livegate-client: GET \S+$", l)]
        return "--- client argv: %s\n--- client stderr without its %d request lines (last 4000):\n%s" % (
            " ".join(self.argv), len(lines) - len(quiet), "\n".join(quiet)[-4000:])

    def wait_messages(self, cond, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.messages()
            if cond(msgs):
                return msgs
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError("client: timed out waiting for %s (%d messages)\n%s" % (
                    what, len(msgs), self.ctx()))
            time.sleep(0.05)

    def wait_log(self, pattern, timeout, start=0):
        """Wait until stderr (from offset start) matches the regex; returns the end offset."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            text = self.err_text()
            m = rx.search(text, start)
            if m:
                return m.end()
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError("client: no log line matching %r within %.0fs\n%s" % (
                    pattern, timeout, self.ctx()))
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signal it and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("client did not exit within %ds of signal %d\n%s" % (timeout, sig, self.ctx()))
        check_sanitizer(self.err_text(), self.argv)
        return self.rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


# --------------------------------------------------------------------------
# Cutting the client's TCP connections (ss -K, as root, kernel INET_DIAG_DESTROY)
# --------------------------------------------------------------------------

_ss_kill = None


def ss_kill_works():
    """True when `ss -K` can destroy a socket here (probed once on a loopback pair)."""
    global _ss_kill
    if _ss_kill is not None:
        return _ss_kill
    _ss_kill = False
    try:
        ls = socket.socket()
        ls.bind((lg.HOST, 0))
        ls.listen(1)
        c = socket.create_connection(ls.getsockname(), timeout=2)
        s, _ = ls.accept()
        lport = c.getsockname()[1]
        subprocess.run(["ss", "-K", "-tn", "( sport = :%d )" % lport], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=10)
        s.settimeout(2)
        try:
            _ss_kill = s.recv(1) == b""
        except OSError:
            _ss_kill = True
        for x in (c, s, ls):
            x.close()
    except (OSError, subprocess.SubprocessError):
        _ss_kill = False
    return _ss_kill


def client_ports(pid, gw_port):
    """Local ports of pid's TCP connections to the gateway."""
    out = subprocess.run(["ss", "-tnpH"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True, timeout=10).stdout
    ports = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 5 and "pid=%d," % pid in line and parts[4].endswith(":%d" % gw_port):
            ports.append(int(parts[3].rsplit(":", 1)[1]))
    return ports


def cut_connections(pid, gw_port):
    """Destroy pid's connections to the gateway (both ends see a reset). Returns how many."""
    ports = client_ports(pid, gw_port)
    for p in ports:
        subprocess.run(["ss", "-K", "-tn", "( sport = :%d and dport = :%d )" % (p, gw_port)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
    return len(ports)


# --------------------------------------------------------------------------
# Publishing and checking
# --------------------------------------------------------------------------

def warm_up(srv, rm, client, timeout=15):
    """Publish one message at a time until the client delivers one: from then on it
    holds a cursor, and every later message must arrive exactly once."""
    p = lg.Poster(srv)
    try:
        deadline = time.monotonic() + timeout
        n = 0
        while time.monotonic() < deadline:
            st, body = p.post(rm, "warm", "warm%d" % n)
            assert st == 202, (st, body)
            n += 1
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                if client.messages():
                    return
                time.sleep(0.03)
        raise AssertionError("client delivered nothing within %.0fs\n%s" % (timeout, client.ctx()))
    finally:
        p.close()


def publish(srv, rm, texts, uid="u1", gap_s=0.0):
    p = lg.Poster(srv)
    try:
        seqs = []
        for t in texts:
            st, body = p.post(rm, uid, t)
            if st != 202:
                raise AssertionError("publish -> %s %r" % (st, body))
            seqs.append(body["seq"])
            if gap_s:
                time.sleep(gap_s)
        return seqs
    finally:
        p.close()


class Publisher(threading.Thread):
    """Posts one message every `every` seconds until stopped (bounded by `limit`)."""

    def __init__(self, srv, rm, every=0.1, limit=1000):
        super().__init__(daemon=True)
        self.srv, self.rm, self.every, self.limit = srv, rm, every, limit
        self.halt = threading.Event()
        self.seqs = []
        self.error = None

    def run(self):
        p = lg.Poster(self.srv)
        try:
            for i in range(self.limit):
                if self.halt.is_set():
                    break
                st, body = p.post(self.rm, "pub", "p%d" % i)
                if st != 202:
                    self.error = "publish -> %s %r" % (st, body)
                    return
                self.seqs.append(body["seq"])
                self.halt.wait(self.every)
        except Exception as e:  # reported by the test through self.error
            self.error = repr(e)
        finally:
            p.close()

    def stop(self):
        self.halt.set()
        self.join(15)


class ClientCase(lg.ServerTest):
    timeout = 90

    def client(self, rm, args=(), print_mode="messages", srv=None, **kw):
        srv = srv or self.srv
        return Client(self, srv.url(""), rm, args, print_mode, **kw)

    def assert_exactly_once(self, c, last_seq):
        """Every seq from the first delivered to last_seq delivered once, in order."""
        msgs = c.wait_messages(lambda m: m and m[-1]["seq"] >= last_seq, 20,
                               "seq %d" % last_seq)
        seqs = [m["seq"] for m in msgs]
        self.assertEqual(seqs, list(range(seqs[0], last_seq + 1)),
                         "not every seq exactly once, in order\n%s" % c.ctx())
        return msgs

    def finish(self, c, sig=signal.SIGTERM):
        rc = c.stop(sig)
        self.assertEqual(rc, 0, c.ctx())
        st = c.final_stats()
        self.assertTrue(STATS_KEYS <= set(st), "missing keys %s" % (STATS_KEYS - set(st)))
        return st


class PinnedTest(ClientCase):
    server_args = ["--suppress-shortpoll", "0"]

    def pinned(self, transport, extra=()):
        rm = lg.room()
        c = self.client(rm, ["--transport", transport] + list(extra))
        warm_up(self.srv, rm, c)
        seqs = publish(self.srv, rm, ["%s-%d" % (transport, i) for i in range(40)])
        msgs = self.assert_exactly_once(c, seqs[-1])
        texts = [m["text"] for m in msgs if m["uid"] == "u1"]
        self.assertEqual(texts, ["%s-%d" % (transport, i) for i in range(40)])
        for m in msgs:
            self.assertEqual(set(m), {"seq", "ts", "type", "uid", "text"}, m)
        st = self.finish(c)
        self.assertEqual(st["transport"], transport)
        self.assertEqual(st["delivered"], len(msgs))
        self.assertEqual((st["duplicates"], st["gaps"], st["gap_flags"], st["switches"]), (0, 0, 0, 0), st)
        self.assertEqual((st["failures"], st["disconnects"]), (0, 0), "%r\n%s" % (st, c.ctx()))
        self.assertGreater(st["bytes"], sum(len(json.dumps(m)) for m in msgs) * 0.9, st)
        self.assertIsInstance(st["lat_p50_ms"], int)
        self.assertLessEqual(st["lat_p50_ms"], st["lat_p95_ms"])
        self.assertLessEqual(st["lat_p95_ms"], st["lat_p99_ms"])
        self.assertNotIn("/connect", c.err_text(), "pinned mode must not ask /connect")
        return st, c

    def test_pinned_ws(self):
        self.pinned("ws")

    def test_pinned_longpoll(self):
        st, c = self.pinned("longpoll", ["--longpoll-wait", "5"])
        self.assertIn("wait=5", c.err_text())

    def test_pinned_shortpoll(self):
        st, c = self.pinned("shortpoll", ["--shortpoll-interval-ms", "300"])
        self.assertNotIn("wait=", c.err_text())

    def test_pinned_shortpoll_too_fast_slows_down(self):
        # 20 ms between polls is far below what the gateway allows a client it advises
        # to use WebSocket: 429 too_fast, Retry-After, and the client backs off its pace
        st, c = self.pinned("shortpoll", ["--shortpoll-interval-ms", "20"])
        self.assertGreater(st["too_fast"], 0, st)
        self.assertIn("429 too_fast", c.err_text())

    def test_auto_starts_on_the_advised_transport(self):
        rm = lg.room()
        c = self.client(rm, ["--client", "auto_" + rm])
        c.wait_log(r"advice: ws .*reason=new", 10)
        warm_up(self.srv, rm, c)
        seqs = publish(self.srv, rm, ["a%d" % i for i in range(20)])
        self.assert_exactly_once(c, seqs[-1])
        st = self.finish(c)
        self.assertEqual((st["transport"], st["advice"], st["client"]), ("ws", "ws", "auto_" + rm))
        self.assertIsInstance(st["rate_per_min"], float)
        self.assertIn(st["reason"], ("new", "stable"))
        self.assertEqual((st["duplicates"], st["gaps"], st["switches"]), (0, 0, 0), st)
        self.assertRegex(c.err_text(), r"GET /v1/rooms/%s/ws\?client=auto_%s" % (rm, rm))

    def test_since_starts_after_the_given_cursor(self):
        # messages published before the client starts, from a cursor the app kept:
        # each transport delivers exactly those after it, none before
        rm = lg.room()
        publish(self.srv, rm, ["before"])
        cursor = lg.poll_json(self.srv, rm)["cursor"]
        seqs = publish(self.srv, rm, ["after-%d" % i for i in range(5)])
        for transport in ("ws", "longpoll", "shortpoll"):
            c = self.client(rm, ["--transport", transport, "--since", cursor])
            msgs = self.assert_exactly_once(c, seqs[-1])
            self.assertEqual([m["text"] for m in msgs], ["after-%d" % i for i in range(5)])
            self.finish(c)
        r = run_client(["--url", self.srv.url(""), "--room", rm, "--since", "bad cursor"])
        self.assertEqual(r.returncode, 2, r.stderr)

    def test_stats_mode(self):
        rm = lg.room()
        c = self.client(rm, ["--transport", "longpoll", "--stats-interval", "0.2"], print_mode="stats")
        c.wait_log(r"GET /v1/rooms/.*/poll", 10)
        time.sleep(0.3)
        publish(self.srv, rm, ["s%d" % i for i in range(5)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lines = c.stats_lines()
            if len(lines) >= 3 and lines[-1]["delivered"] >= 1:
                break
            time.sleep(0.1)
        st = self.finish(c, signal.SIGINT)
        lines = c.stats_lines()
        self.assertGreaterEqual(len(lines), 4, lines)
        for o in lines:
            self.assertTrue(STATS_KEYS <= set(o), o)
        ts = [o["t"] for o in lines]
        self.assertEqual(ts, sorted(ts))
        self.assertEqual([o.get("final") for o in lines].count(True), 1)
        self.assertIs(lines[-1].get("final"), True)
        self.assertGreaterEqual(st["delivered"], 1)
        self.assertNotIn("seq", " ".join(json.dumps(o) for o in lines))

    def test_tls_peer_rejected_without_insecure(self):
        # a plain-http gateway spoken to over https: the handshake fails, the client
        # keeps retrying with backoff and still exits cleanly
        st, err = run_unreachable("https://127.0.0.1:%d" % self.srv.port, "ws", 1.5)
        self.assertGreaterEqual(st["failures"], 2, err)
        self.assertEqual(st["delivered"], 0)


class CliTest(unittest.TestCase):
    def test_help_documents_every_flag(self):
        r = run_client(["--help"])
        self.assertEqual(r.returncode, 0)
        for f in FLAGS:
            self.assertIn(f, r.stdout, "--help does not document %s" % f)
        for k in STATS_KEYS:
            self.assertIn('"%s"' % k, r.stdout, "--help does not describe stats key %s" % k)

    def test_bad_flags_exit_2(self):
        cases = [
            [],
            ["--room", "r", "--transport", "carrier"],
            ["--room", "r", "--fallback", "auto"],
            ["--room", "r", "--print", "everything"],
            ["--room", "r", "--duration", "-1"],
            ["--room", "r", "--duration", "soon"],
            ["--room", "r", "--stats-interval", "0"],
            ["--room", "r", "--backoff-base-ms", "0"],
            ["--room", "r", "--backoff-base-ms", "500", "--backoff-max-ms", "100"],
            ["--room", "r", "--seed", "x"],
            ["--room", "r", "--io-timeout-ms", "5"],
            ["--room", "r", "--max-batch-bytes", "10"],
            ["--room", "r", "--stall-ms", "5"],
            ["--room", "r", "--since", ""],
            ["--room", "r", "--nope"],
            ["--room", "r", "extra"],
            ["--room"],
            ["--room", "bad room"],
            ["--room", "r", "--client", "a/b"],
            ["--room", "r", "--url", "ftp://127.0.0.1"],
            ["--room", "r", "--url", "http://127.0.0.1:99999"],
            ["--room", "r", "--url", "http://127.0.0.1/prefix"],
        ]
        for args in cases:
            r = run_client(args)
            self.assertEqual(r.returncode, 2, "args %r: rc %d, stderr %r" % (args, r.returncode, r.stderr))
            self.assertIn("livegate-client:", r.stderr, args)
            self.assertEqual(r.stdout, "", args)

    def test_closed_port_backs_off_and_exits(self):
        port = lg.free_port()
        r = run_client(["--url", "http://127.0.0.1:%d" % port, "--room", "r", "--duration", "1.5",
                        "--backoff-base-ms", "20", "--backoff-max-ms", "200", "--seed", "7",
                        "--print", "none"])
        self.assertEqual(r.returncode, 0, r.stderr)
        st = json.loads(r.stderr.strip().splitlines()[-1])
        self.assertIs(st["final"], True)
        self.assertGreaterEqual(st["failures"], 3, st)
        # it never worked, so it never lost a working connection
        self.assertEqual((st["disconnects"], st["delivered"], st["transport"]), (0, 0, "none"), st)
        self.assertIn("retrying in", r.stderr)
        # the id comes from the seeded generator: the same seed, the same id
        r2 = run_client(["--url", "http://127.0.0.1:%d" % port, "--room", "r", "--duration", "0.2",
                         "--seed", "7", "--print", "none"])
        self.assertEqual(json.loads(r2.stderr.strip().splitlines()[-1])["client"], st["client"])
        self.assertRegex(st["client"], r"^[0-9a-f]{16}$")


class FallbackTest(unittest.TestCase):
    """A gateway without GET /connect (404): the client starts on --fallback. No gateway
    built from this tree lacks /connect any more, so a small HTTP server stands in and
    records what the client asks."""

    def test_no_connect_endpoint_starts_on_fallback(self):
        seen = []

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                seen.append(self.path)
                body = b'{"error":"not_found","detail":"unknown path"}'
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        httpd = http.server.ThreadingHTTPServer((lg.HOST, 0), H)
        t = threading.Thread(target=httpd.serve_forever, daemon=True)
        t.start()
        try:
            r = run_client(["--url", "http://127.0.0.1:%d" % httpd.server_address[1], "--room", "fb",
                            "--client", "fbc", "--fallback", "longpoll", "--duration", "1",
                            "--backoff-base-ms", "100", "--backoff-max-ms", "100", "--print", "none"])
        finally:
            httpd.shutdown()
            httpd.server_close()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("no /connect on this gateway (404): using longpoll", r.stderr)
        self.assertEqual(r.stderr.count("no /connect on this gateway"), 1, r.stderr)
        self.assertEqual(seen[0], "/v1/rooms/fb/connect?client=fbc")
        self.assertEqual(seen[1], "/v1/rooms/fb/poll?client=fbc&wait=25")
        # the 404 on the poll is a failure: back off, then ask /connect again
        self.assertGreaterEqual(len(seen), 4, seen)
        self.assertEqual(seen[2], "/v1/rooms/fb/connect?client=fbc")


class RestartTest(ClientCase):
    """The gateway restarts on the same port: a new ring epoch, so the old cursor gets
    gap:true; the client reconnects with backoff and goes on."""

    def restart_case(self, transport_args, kill9=False):
        first = self.new_server()
        port, data_dir = first.port, first.data_dir
        rm = lg.room()
        c = self.client(rm, transport_args, srv=first)
        warm_up(first, rm, c)
        before = ["b%d" % i for i in range(10)]
        s1 = publish(first, rm, before)
        self.assert_exactly_once(c, s1[-1])
        if kill9:
            first.proc.kill()
            first.proc.wait(5)
            first.stopped = True
        else:
            self.assertEqual(first.stop(), 0)
        c.wait_log(r"retrying in", 10)
        time.sleep(0.3)  # let a few reconnect attempts fail
        second = lg.Server(port=port, data_dir=data_dir)
        self.addCleanup(second.stop)
        second.start()
        after = ["a%d" % i for i in range(10)]
        publish(second, rm, after)
        msgs = c.wait_messages(lambda m: m and m[-1].get("text") == after[-1], 30, "the last message after the restart")
        texts = [m["text"] for m in msgs]
        self.assertEqual(len(texts), len(set(texts)), "a message delivered twice\n%s" % c.ctx())
        for t in before + after:
            self.assertEqual(texts.count(t), 1, "%s not delivered exactly once\n%s" % (t, c.ctx()))
        st = self.finish(c)
        self.assertGreaterEqual(st["gap_flags"], 1, st)
        self.assertGreaterEqual(st["disconnects"], 1, st)
        self.assertGreaterEqual(st["failures"], st["disconnects"], st)
        self.assertEqual((st["duplicates"], st["gaps"]), (0, 0), st)
        return st

    def test_restart_ws(self):
        self.restart_case(["--transport", "ws"])

    def test_restart_longpoll(self):
        self.restart_case(["--transport", "longpoll", "--longpoll-wait", "3"])

    def test_restart_auto(self):
        st = self.restart_case([])
        self.assertEqual(st["transport"], "ws")

    def test_kill9_ws(self):
        self.restart_case(["--transport", "ws"], kill9=True)

    def test_kill9_shortpoll(self):
        self.restart_case(["--transport", "shortpoll", "--shortpoll-interval-ms", "2000"], kill9=True)


class SuppressTest(ClientCase):
    # 3 danmaku per second to a short-poll client; a burst of 30 is mostly left out
    server_args = ["--suppress-shortpoll", "3", "--suppress-period", "1"]

    def test_suppressed_are_counted_not_gaps(self):
        rm = lg.room()
        c = self.client(rm, ["--transport", "shortpoll", "--shortpoll-interval-ms", "1500"])
        warm_up(self.srv, rm, c)
        first = c.messages()[0]["seq"]
        c.wait_log(r"GET .*poll.*since=", 10)
        burst = publish(self.srv, rm, ["x%d" % i for i in range(30)])
        # an end marker, posted until one gets through the refilled budget
        p = lg.Poster(self.srv)
        last = None
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                st, body = p.post(rm, "u1", "end")
                self.assertEqual(st, 202)
                last = body["seq"]
                end = time.monotonic() + 2.5
                while time.monotonic() < end and not any(m["text"] == "end" for m in c.messages()):
                    time.sleep(0.05)
                if any(m["text"] == "end" for m in c.messages()):
                    break
        finally:
            p.close()
        msgs = c.messages()
        self.assertTrue(any(m["text"] == "end" for m in msgs), c.ctx())
        self.assertEqual(msgs[-1]["text"], "end")
        st = self.finish(c)
        self.assertGreater(st["suppressed"], 0, st)
        self.assertEqual((st["gaps"], st["duplicates"], st["gap_flags"]), (0, 0, 0), st)
        # every seq from the first delivered one on is either delivered or suppressed
        delivered_end = msgs[-1]["seq"]
        self.assertLessEqual(burst[-1], delivered_end)
        self.assertEqual(len(msgs) + st["suppressed"], delivered_end - first + 1,
                         "%r\n%s" % (st, c.ctx()))
        self.assertEqual(delivered_end, last)


class AdaptTest(ClientCase):
    """Moving down with the gateway's advice when connections die, and back up by probes.
    A WebSocket is cut with `ss -K` (needs root and INET_DIAG_DESTROY); a long-poll client
    is frozen with SIGSTOP past adapt_longpoll_gap, so its next poll comes late."""
    timeout = 150
    # One disconnect per 30 s of connected time (the floor) is 2/min: long-poll; two
    # are ~3.9/min: short-poll. A 10 s half-life brings the rate back under
    # 0.5 x each threshold within ~15 s per level, and probes come 2 s after that.
    server_args = ["--adapt-longpoll-above", "1", "--adapt-shortpoll-above", "3",
                   "--adapt-half-life", "10", "--adapt-min-connected", "30",
                   "--adapt-probe-after", "2", "--adapt-longpoll-wait", "2",
                   "--adapt-longpoll-gap", "1", "--suppress-shortpoll", "0"]

    def setUp(self):
        if not ss_kill_works():
            self.skipTest("ss -K cannot destroy sockets here (needs root and INET_DIAG_DESTROY)")
        super().setUp()

    def test_down_to_shortpoll_and_back_to_ws(self):
        rm = lg.room()
        c = self.client(rm, ["--client", "ad_" + rm])
        c.wait_log(r"WebSocket open", 10)
        warm_up(self.srv, rm, c)
        # slow enough that a long-poll is mostly held, so there is one to cut
        pub = Publisher(self.srv, rm, every=0.5, limit=400)
        pub.start()
        self.addCleanup(pub.stop)
        self.assertGreaterEqual(cut_connections(c.proc.pid, self.srv.port), 1)
        # reconnecting straight to ws, the client gets the advice as the WebSocket opens
        c.wait_log(r"transport ws -> longpoll \(advice\)", 20)
        # freeze the client past adapt_longpoll_gap until it is sent to short-poll
        moved = False
        for _ in range(6):
            c.proc.send_signal(signal.SIGSTOP)
            time.sleep(2.5)
            c.proc.send_signal(signal.SIGCONT)
            time.sleep(1.0)
            if re.search(r"-> shortpoll", c.err_text()):
                moved = True
                break
        self.assertTrue(moved, "never advised short-poll\n%s" % c.ctx())
        # quiet now: the rate decays and probes take the client back up
        c.wait_log(r"transport shortpoll -> longpoll \(advice\)", 60)
        c.wait_log(r"transport longpoll -> ws \(advice\)", 60)
        c.wait_log(r"WebSocket open", 20, start=c.err_text().rfind("longpoll -> ws"))
        time.sleep(0.5)
        pub.stop()
        self.assertIsNone(pub.error)
        self.assert_exactly_once(c, pub.seqs[-1])
        st = self.finish(c)
        pairs = st["switch_pairs"]
        for p in ("ws>longpoll", "longpoll>shortpoll", "shortpoll>longpoll", "longpoll>ws"):
            self.assertGreaterEqual(pairs.get(p, 0), 1, "no %s switch: %r" % (p, st))
        self.assertEqual(st["switches"], sum(pairs.values()))
        self.assertEqual((st["duplicates"], st["gaps"], st["gap_flags"]), (0, 0, 0), st)
        # the cut WebSocket; a frozen client loses nothing it can see
        self.assertEqual(st["disconnects"], 1, st)
        self.assertEqual(st["transport"], "ws")
        self.assertEqual(st["advice"], "ws")

    def test_pinned_keeps_its_transport_but_records_advice(self):
        rm = lg.room()
        c = self.client(rm, ["--transport", "ws", "--client", "pin_" + rm])
        c.wait_log(r"WebSocket open", 10)
        warm_up(self.srv, rm, c)
        self.assertGreaterEqual(cut_connections(c.proc.pid, self.srv.port), 1)
        # the reopened WebSocket's first batch carries advice: long-poll
        c.wait_log(r"advice: longpoll .*reason=rate_high", 20)
        seqs = publish(self.srv, rm, ["k%d" % i for i in range(10)])
        self.assert_exactly_once(c, seqs[-1])
        st = self.finish(c)
        self.assertEqual((st["transport"], st["advice"], st["switches"]), ("ws", "longpoll", 0), st)
        self.assertEqual(st["reason"], "rate_high")
        self.assertGreaterEqual(st["rate_per_min"], 1.0)
        self.assertEqual(st["disconnects"], 1, st)


def make_cert():
    d = tempfile.mkdtemp(prefix="lgcltls-")
    atexit.register(shutil.rmtree, d, True)
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout", key, "-out", cert],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    return cert, key


class TlsTest(ClientCase):
    @classmethod
    def make_server(cls):
        if cls.tls is None:
            cls.tls = make_cert()
        return lg.Server(cls.server_args, tls=cls.tls)

    def tls_case(self, transport):
        rm = lg.room()
        c = self.client(rm, ["--transport", transport, "--insecure"])
        warm_up(self.srv, rm, c)
        seqs = publish(self.srv, rm, ["t%d" % i for i in range(10)])
        self.assert_exactly_once(c, seqs[-1])
        st = self.finish(c)
        self.assertEqual((st["transport"], st["failures"], st["duplicates"]), (transport, 0, 0),
                         "%r\n%s" % (st, c.ctx()))

    def test_wss(self):
        self.tls_case("ws")

    def test_https_longpoll(self):
        self.tls_case("longpoll")

    def test_certificate_checked_without_insecure(self):
        st, err = run_unreachable("https://127.0.0.1:%d" % self.srv.port, "longpoll", 1)
        self.assertGreaterEqual(st["failures"], 1, err)
        self.assertEqual((st["delivered"], st["batches"]), (0, 0), err)


if __name__ == "__main__":
    lg.main()
