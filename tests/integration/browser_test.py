#!/usr/bin/python3
"""The web player in a real browser: Debian's /usr/bin/chromium, headless, driven by
npm playwright-core through browser_driver.js (never a downloaded browser; set-up
runs `npm install` in this folder; no node, npm or chromium is a failure, not a skip).

- The page connects over WebSocket, shows a message posted from Python (flying over
  the video, in the recent list, in the delivered count), sends what is typed in its
  box, and shows the JSON error of a refused post.
- Through lg-relay (netem/) cutting every connection after 1-2 s, with adapt_*
  settings small enough to decide within seconds, the page moves off WebSocket (to
  short-poll, or to long-poll when short-poll is out of reach) and still delivers
  every published message exactly once, in order. The relay's own counters prove the
  cuts happened.

The page mirrors its client in window.livegateStats (web/player.js).
Run: LIVEGATE_BIN=build/livegate /usr/bin/python3 tests/integration/browser_test.py
"""

import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"  # belt and braces: never fetch a browser
import gifts_test as gt  # noqa: E402  (npm install of this folder's package.json)
import lg  # noqa: E402

DRIVER_JS = os.path.join(lg.HERE, "browser_driver.js")
CHROMIUM = os.environ.get("LIVEGATE_CHROMIUM", "/usr/bin/chromium")
BLOCKED = "forbiddenword"


def relay_binary():
    """lg-relay, built next to the gateway binary (netem/CMakeLists.txt)."""
    return os.environ.get("LG_RELAY_BIN") or os.path.join(
        os.path.dirname(os.path.abspath(lg.binary())), "lg-relay")


class Browser:
    """A `node browser_driver.js` child: one JSON request per line, one answer per line."""

    def __init__(self):
        if not os.path.exists(CHROMIUM):
            raise AssertionError("the browser tests drive Debian's chromium (%s), which is not "
                                 "installed: scripts/deps.sh test installs it" % CHROMIUM)
        node = gt.ensure_node_deps()
        chk = subprocess.run([node, "-e", "require('playwright-core')"], cwd=lg.HERE,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        if chk.returncode != 0:
            raise AssertionError("playwright-core is not loadable after npm install: %s" % chk.stdout[-2000:])
        env = lg.clean_env()
        env["LIVEGATE_CHROMIUM"] = CHROMIUM
        self.proc = subprocess.Popen([node, DRIVER_JS], cwd=lg.HERE, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.version = self.call("launch", timeout=60)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def call(self, op, timeout=30.0, **kw):
        kw["op"] = op
        self.proc.stdin.write((json.dumps(kw) + "\n").encode())
        self.proc.stdin.flush()
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("browser_driver.js: no answer to %s within %.0fs" % (op, timeout))
        if line is None:
            self.proc.wait(5)
            raise AssertionError("browser_driver.js exited (%s): %s" % (
                self.proc.returncode, self.proc.stderr.read().decode("utf-8", "replace")[-3000:]))
        out = json.loads(line)
        if "error" in out:
            raise AssertionError("browser: %s %r failed: %s" % (op, kw, out["error"][:2000]))
        return out["value"]

    def eval(self, expr):
        return self.call("eval", expr=expr)

    def stats(self):
        return self.eval("window.livegateStats || null")

    def text(self, selector):
        return self.eval("(document.querySelector(%s) || {}).textContent" % json.dumps(selector))

    def wait(self, expr, timeout=15.0, what=None):
        """Poll a page expression until truthy (bounded); returns its value."""
        return lg.wait_for(lambda: self.eval(expr), timeout=timeout, interval=0.1, what=what or expr)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.call("close", timeout=15)
            except AssertionError:
                pass
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Relay:
    """lg-relay in front of a gateway, started and stopped by its own pid."""

    def __init__(self, upstream_port, *flags):
        b = relay_binary()
        if not os.path.exists(b):
            raise AssertionError("lg-relay not found at %s (netem/, built with the gateway)" % b)
        self.proc = subprocess.Popen(
            [b, "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:%d" % upstream_port,
             "--control", "127.0.0.1:0"] + list(flags),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=lg.clean_env())
        q = queue.Queue()
        threading.Thread(target=lambda: q.put(self.proc.stdout.readline()), daemon=True).start()
        try:
            line = q.get(timeout=10)
        except queue.Empty:
            self.stop()
            raise AssertionError("lg-relay printed no start line within 10 s")
        if not line:
            self.proc.wait(5)
            raise AssertionError("lg-relay exited (%s): %s" % (self.proc.returncode, self.proc.stderr.read()))
        info = json.loads(line)
        self.port = info["listen_port"]
        self.control_port = info["control_port"]

    def control(self, cmd):
        with socket.create_connection((lg.HOST, self.control_port), timeout=5) as s:
            s.sendall(cmd.encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        return json.loads(buf)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class BrowserTest(lg.ServerTest):
    """One Chromium for the class; one page, navigated per test."""

    timeout = 90
    browser = None

    @classmethod
    def make_server(cls):
        d = tempfile.mkdtemp(prefix="lgweb-")
        words = os.path.join(d, "blocked.txt")
        with open(words, "w") as f:
            f.write(BLOCKED + "\n")
        s = lg.Server(["--blocked-words-file", words, "--blocked-words-mode", "reject"] + cls.server_args)
        s.words_dir = d
        return s

    @classmethod
    def setUpClass(cls):
        # Here rather than in a test: npm install may take a while on a fresh machine,
        # longer than one test's alarm.
        super().setUpClass()
        BrowserTest.browser = Browser()

    def setUp(self):
        super().setUp()
        self.b = BrowserTest.browser

    @classmethod
    def tearDownClass(cls):
        if BrowserTest.browser is not None:
            BrowserTest.browser.close()
            BrowserTest.browser = None
        if cls._srv is not None:
            shutil.rmtree(getattr(cls._srv, "words_dir", ""), ignore_errors=True)
        super().tearDownClass()

    def open_page(self, port, rm, attempts=3):
        """Load the player for room rm from 127.0.0.1:port; wait until its client is open."""
        for i in range(attempts):
            try:
                st = self.b.call("goto", url="http://%s:%d/?room=%s" % (lg.HOST, port, rm))
                self.assertEqual(st, 200)
                break
            except AssertionError:
                if i == attempts - 1:  # through the relay a load may be cut: retry
                    raise
        self.b.wait("window.livegateStats && window.livegateStats.state === 'open'",
                    what="the page's client to be open")
        self.assertEqual(self.b.eval("document.getElementById('room').value"), rm)

    def dump_on_failure(self):
        def dump():
            try:
                sys.stdout.write("\npage stats: %s\npage logs: %s\n" % (
                    json.dumps(self.b.stats())[:3000], json.dumps(self.b.call("logs"))[-3000:]))
            except Exception as e:  # the browser may be what failed
                sys.stdout.write("\n(no page state: %s)\n" % e)
        self.addCleanup(lambda: dump() if getattr(self._outcome, "success", False) is False else None)

    # -- the page on a healthy connection --

    def test_1_connects_over_ws_and_shows_posted_message(self):
        self.dump_on_failure()
        rm = lg.room("page")
        self.open_page(self.srv.port, rm)
        self.assertEqual(self.b.stats()["transport"], "ws")
        self.b.wait("document.getElementById('st-transport').textContent === 'ws'")
        m = lg.metrics(self.srv)
        self.assertGreaterEqual(m.get('livegate_connections{transport="ws"}', 0), 1, "a WebSocket is open")

        text = "hello from python %s" % os.urandom(3).hex()
        seq = lg.post_ok(self.srv, rm, "pyuser", text)
        self.b.wait("window.livegateStats.texts.includes(%s)" % json.dumps(text),
                    what="the posted message in the page")
        # it flies over the video (removed only after ~8 s) and is in the recent list
        flying = self.b.eval("[...document.querySelectorAll('#danmaku-layer .danmaku')]"
                             ".map(e => e.textContent)")
        self.assertIn(text, flying)
        self.assertIn("pyuser: " + text, self.b.text("#recent"))
        st = self.b.stats()
        self.assertEqual(st["seqs"], [seq])
        self.b.wait("document.getElementById('st-delivered').textContent === '1'")

    def test_2_send_box(self):
        self.dump_on_failure()
        rm = lg.room("send")
        self.open_page(self.srv.port, rm)
        cur = lg.current_cursor(self.srv, rm)
        text = "typed in the page %s" % os.urandom(3).hex()
        self.b.call("fill", selector="#uid", value="page_user")
        self.b.call("fill", selector="#text", value=text)
        self.b.call("click", selector="#send")
        self.b.wait("window.livegateStats.texts.includes(%s)" % json.dumps(text),
                    what="the sent message to come back")
        self.b.wait("document.getElementById('text').value === ''", what="the box to be cleared")
        self.assertEqual(self.b.text("#send-error"), "")
        batch = lg.poll_json(self.srv, rm, since=cur)
        self.assertEqual([(x["uid"], x["text"]) for x in batch["msgs"]], [("page_user", text)])
        mine = self.b.eval("[...document.querySelectorAll('#danmaku-layer .danmaku.mine')]"
                           ".map(e => e.textContent)")
        self.assertIn(text, mine, "the page marks its own uid's comments")

    def test_3_send_error_is_shown(self):
        self.dump_on_failure()
        rm = lg.room("err")
        self.open_page(self.srv.port, rm)
        cur = lg.current_cursor(self.srv, rm)
        self.b.call("fill", selector="#text", value="this has %s in it" % BLOCKED)
        self.b.call("click", selector="#send")
        msg = self.b.wait("document.getElementById('send-error').textContent",
                          what="the error to be shown")
        self.assertIn("blocked", msg)
        self.assertEqual(lg.poll_json(self.srv, rm, since=cur)["msgs"], [])
        self.assertEqual(self.b.stats()["delivered"], 0)

    # -- connections cut every 1-2 s --

    def cut_run(self, adapt, expect, n=30):
        """Gateway with `adapt` flags, lg-relay cutting every connection after 1-2 s in
        front of it, the page loaded through the relay; n messages published straight to
        the gateway while the page is being cut. Returns the page's final stats.

        The client's own disconnect count may stay low: Chromium resends a request
        whose reused keep-alive connection is reset before any answer, so many cuts
        never reach the page; the relay's count shows they happened."""
        self.dump_on_failure()
        srv = self.new_server(adapt)
        relay = Relay(srv.port, "--cut-min-ms", "1000", "--cut-max-ms", "2000")
        self.addCleanup(relay.stop)
        rm = lg.room("cut")
        self.open_page(relay.port, rm)
        first = self.b.stats()["history"][0]
        self.assertEqual(first, "ws", "a new client starts on WebSocket")

        p = lg.Poster(srv)
        seqs = []
        try:
            # Bursts at 5/s with quiet spells longer than a connection lives between
            # them, so held long-polls and idle connections are cut too (~11 s).
            for i in range(n):
                status, body = p.post(rm, "cutter", "cut %d" % i)
                self.assertEqual(status, 202, body)
                seqs.append(body["seq"])
                time.sleep(2.5 if i % 10 == 9 else 0.2)
        finally:
            p.close()
        self.b.wait("window.livegateStats.delivered >= %d" % n, timeout=30,
                    what="all %d messages in the page" % n)
        time.sleep(1.0)  # anything repeated late would show up now
        st = self.b.stats()
        self.assertEqual(st["seqs"], seqs, "every message exactly once, in order")
        self.assertEqual((st["missing"], st["gaps"]), (0, 0), st)
        self.assertNotEqual(st["transport"], "ws", "still on WebSocket after %s" % st["history"])
        self.assertIn(st["transport"], expect, st["history"])
        self.assertGreaterEqual(st["switches"], 1)
        self.assertGreaterEqual(st["disconnects"], 1)
        self.assertEqual(self.b.text("#st-transport"), st["transport"])
        rate = self.b.text("#st-rate")
        self.assertGreater(float(rate), 0, "the page shows the advised disconnect rate")
        rs = relay.control("stats")
        self.assertGreater(rs.get("cut", 0), 0, "the relay cut connections: %r" % rs)
        sys.stdout.write("\n  %s: history %s, disconnects %d, switches %d, duplicates dropped %d, "
                         "rate shown %s/min, relay cut %d\n" % (
                             self.id().split(".")[-1], st["history"], st["disconnects"],
                             st["switches"], st["duplicates"], rate, rs.get("cut")))
        return st

    def test_4_cut_connections_move_off_ws(self):
        # Rates over 5 s of connected time at least: one cut is 12/min, past both
        # thresholds, so the client lands on short-poll (no suppression: all counted).
        self.cut_run(["--adapt-min-connected", "5", "--adapt-probe-after", "600",
                      "--suppress-shortpoll", "0"], expect=("shortpoll", "longpoll"))

    def test_5_cut_connections_long_poll(self):
        # Short-poll out of reach: the client stays on long-poll, whose held polls are cut.
        self.cut_run(["--adapt-min-connected", "5", "--adapt-probe-after", "600",
                      "--adapt-shortpoll-above", "1000000"], expect=("longpoll",))


if __name__ == "__main__":
    lg.main()
