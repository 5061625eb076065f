#!/usr/bin/python3
"""The web player as files: GET / and the files it loads (transport/static.c), and
web/livegate.js run in node against the real gateway.

The served bytes must be exactly the files in web/ (embedded at build time), with
their content types, an ETag that revalidates to 304, HEAD, and the JSON 404/405 of
the rest of the API for anything else. The client module is run by node
(web_client.mjs; node 20 needs --experimental-websocket for its WebSocket) over each
transport, and with an injected fetch that answers /connect with 404 as a gateway
without adaptive transport would.
"""

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import queue

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lg  # noqa: E402
from relay_test import Relay  # noqa: E402

WEB = os.path.join(lg.REPO, "web")
CLIENT_JS = os.path.join(lg.HERE, "web_client.mjs")
FILES = {  # path -> (file in web/, content type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/livegate.js": ("livegate.js", "text/javascript; charset=utf-8"),
    "/player.js": ("player.js", "text/javascript; charset=utf-8"),
    "/player.css": ("player.css", "text/css; charset=utf-8"),
}


def web_file(name):
    with open(os.path.join(WEB, name), "rb") as f:
        return f.read()


class Files(lg.ServerTest):
    def test_files_served_as_built(self):
        tags = set()
        for path, (name, ctype) in FILES.items():
            r = self.srv.curl(path)
            self.assertEqual(r.status, 200, "%s: %r" % (path, r))
            self.assertEqual(r.headers.get("content-type"), ctype, path)
            self.assertEqual(r.body, web_file(name), "%s is not web/%s as built" % (path, name))
            self.assertEqual(int(r.headers.get("content-length")), len(r.body), path)
            self.assertRegex(r.headers.get("etag", ""), r'^"[0-9a-f]{20}"$', path)
            self.assertEqual(r.headers.get("cache-control"), "no-cache", path)
            self.assertEqual(r.headers.get("x-content-type-options"), "nosniff", path)
            self.assertIn("default-src 'none'", r.headers.get("content-security-policy", ""), path)
            tags.add(r.headers["etag"])
        self.assertEqual(len(tags), len(FILES), "every file has its own ETag")

    def test_query_string_is_ignored(self):
        r = self.srv.curl("/?room=abc&transport=longpoll")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, web_file("index.html"))

    def test_etag_revalidation(self):
        r = self.srv.curl("/player.js")
        tag = r.headers["etag"]
        self.assertEqual(self.srv.curl("/player.js").headers["etag"], tag, "stable ETag")
        for inm in (tag, "W/" + tag, '"nope", %s' % tag, '"a",W/%s , "b"' % tag, "*"):
            r304 = self.srv.curl("/player.js", headers=["If-None-Match: " + inm])
            self.assertEqual(r304.status, 304, "If-None-Match: %s -> %r" % (inm, r304))
            self.assertEqual(r304.body, b"", inm)
            self.assertEqual(r304.headers.get("etag"), tag, inm)
        for inm in ('"nope"', tag[:-2] + '"', self.srv.curl("/player.css").headers["etag"], "W/"):
            r200 = self.srv.curl("/player.js", headers=["If-None-Match: " + inm])
            self.assertEqual(r200.status, 200, "If-None-Match: %s -> %r" % (inm, r200))
            self.assertEqual(r200.body, web_file("player.js"), inm)

    def test_head(self):
        c = http.client.HTTPConnection(lg.HOST, self.srv.port, timeout=10)
        try:
            for path, (name, ctype) in FILES.items():
                c.request("HEAD", path)
                r = c.getresponse()
                self.assertEqual(r.status, 200, path)
                self.assertEqual(int(r.getheader("content-length")), len(web_file(name)), path)
                self.assertEqual(r.getheader("content-type"), ctype, path)
                self.assertEqual(r.read(), b"", path)
            # the connection is still usable: no body bytes were left behind
            c.request("GET", "/healthz")
            r = c.getresponse()
            self.assertEqual((r.status, r.read()), (200, b'{"status":"ok"}'))
        finally:
            c.close()

    def test_keep_alive_serves_everything_on_one_connection(self):
        c = http.client.HTTPConnection(lg.HOST, self.srv.port, timeout=10)
        try:
            for _ in range(2):
                for path, (name, _ctype) in FILES.items():
                    c.request("GET", path)
                    r = c.getresponse()
                    self.assertEqual((r.status, r.read()), (200, web_file(name)), path)
                c.request("HEAD", "/")
                r = c.getresponse()
                self.assertEqual((r.status, r.read()), (200, b""))
                c.request("GET", "/healthz")
                r = c.getresponse()
                self.assertEqual(r.status, 200)
                r.read()
        finally:
            c.close()

    def test_other_methods_405(self):
        for m in ("POST", "PUT", "DELETE"):
            r = self.srv.curl("/livegate.js", method=m, data=b"{}" if m != "DELETE" else None,
                              headers=["Content-Type: application/json"])
            self.assertError(r, 405, "method_not_allowed", m)
            self.assertEqual(r.headers.get("allow"), "GET, HEAD", m)

    def test_unknown_paths_stay_404_json(self):
        for path in ("/index.html", "/web/livegate.js", "/livegate.js/", "/player.js.map",
                     "/favicon.ico", "/embed.cmake", "/LIVEGATE.JS"):
            r = self.srv.curl(path)
            self.assertError(r, 404, "not_found", path)

    def test_page_loads_nothing_from_elsewhere(self):
        html = web_file("index.html").decode()
        for ref in re.findall(r'(?:src|href)="([^"]*)"', html):
            self.assertTrue(ref.startswith("/") or ref.startswith("data:"), ref)
            if ref.startswith("/"):
                self.assertIn(ref, FILES, "the page refers to %s, which is not served" % ref)
        for name in ("livegate.js", "player.js", "player.css", "index.html"):
            text = web_file(name).decode()
            self.assertNotRegex(text, r"https?://(?!127\.0\.0\.1)", name)
            self.assertNotRegex(text, r"@import|url\(\s*['\"]?https?:", name)
        lib = web_file("livegate.js").decode()
        self.assertNotRegex(lib, r"(?m)^\s*import\s", "livegate.js has no dependencies")
        self.assertEqual(re.findall(r'(?m)^import .* from "([^"]+)";', web_file("player.js").decode()),
                         ["./livegate.js"])


# --------------------------------------------------------------------------
# web/livegate.js in node
# --------------------------------------------------------------------------

def node_argv():
    node = shutil.which("node")
    if not node:
        raise AssertionError("these tests run web/livegate.js in node; node is not on PATH")
    p = subprocess.run([node, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    return [node] + ([] if p.returncode == 0 else ["--experimental-websocket", "--no-warnings"])


class NodeClient:
    """web_client.mjs as a child; lines() yields its JSON lines (bounded waits)."""

    def __init__(self, srv, room_name, count, transport=None, extra=(), base=None):
        argv = node_argv() + [CLIENT_JS, "--base", base or srv.url("/"), "--room", room_name,
                              "--count", str(count), "--timeout", "20"] + list(extra)
        if transport:
            argv += ["--transport", transport]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=lg.clean_env(), cwd=lg.HERE)
        self.q = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.q.put(line)
        self.q.put(None)

    def next(self, event, timeout=15.0):
        try:
            line = self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("web_client.mjs: no %s within %.0fs" % (event, timeout))
        if line is None:
            self.proc.wait(5)
            raise AssertionError("web_client.mjs exited (%s) before %s: %s" % (
                self.proc.returncode, event, self.proc.stderr.read().decode("utf-8", "replace")[-2000:]))
        out = json.loads(line)
        if out.get("event") != event:
            raise AssertionError("web_client.mjs: expected %s, got %r" % (event, out))
        return out

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)


class NodeModule(lg.ServerTest):
    def run_client(self, transport, n=12, extra=()):
        rm = lg.room("node")
        c = NodeClient(self.srv, rm, n, transport, extra)
        self.addCleanup(c.close)
        opened = c.next("open")
        p = lg.Poster(self.srv)
        try:
            seqs = [p.post(rm, "nodeuser", "n%d" % i)[1]["seq"] for i in range(n)]
        finally:
            p.close()
        done = c.next("done", timeout=25)
        self.assertEqual(done["seqs"], seqs, "every message once, in order (%s)" % transport)
        st = done["status"]["stats"]
        self.assertEqual((st["delivered"], st["duplicates"], st["gaps"], st["missing"]), (n, 0, 0, 0), st)
        return opened, done

    def test_advised_transport_is_websocket(self):
        opened, done = self.run_client(None)
        self.assertEqual(opened["transport"], "ws")
        self.assertTrue(done["status"]["adaptive"], done["status"])
        self.assertEqual(done["status"]["advice"]["transport"], "ws")
        self.assertTrue(any(r.endswith("/connect") for r in done["requests"]), done["requests"])

    def test_forced_long_poll(self):
        opened, done = self.run_client("longpoll")
        self.assertEqual((opened["transport"], done["status"]["transport"]), ("longpoll", "longpoll"))

    def test_forced_short_poll(self):
        opened, done = self.run_client("shortpoll", n=8)
        self.assertEqual((opened["transport"], done["status"]["transport"]), ("shortpoll", "shortpoll"))

    def test_without_connect_endpoint_uses_websocket(self):
        opened, done = self.run_client(None, extra=["--no-connect"])
        self.assertEqual(opened["transport"], "ws")
        self.assertIs(done["status"]["adaptive"], False)
        self.assertIsNone(done["status"]["advice"])

    def test_client_id_kept_in_storage(self):
        _, done = self.run_client(None, n=1, extra=["--stored-id", "kept_id-42"])
        self.assertEqual(done["status"]["clientId"], "kept_id-42")
        _, done = self.run_client(None, n=1)
        self.assertRegex(done["status"]["clientId"], r"^[0-9a-f]{16}$")
        self.assertEqual(done["stored"], done["status"]["clientId"], "a new id is stored")
        _, done = self.run_client(None, n=1, extra=["--stored-id", "not valid!"])
        self.assertRegex(done["status"]["clientId"], r"^[0-9a-f]{16}$", "a malformed id is replaced")


class NodeStall(lg.ServerTest):
    """A network that silently stops delivering (lg-relay's stall: nothing passes either
    way, no reset) under an open WebSocket of the module."""

    def stalled_run(self, stall_ms):
        rm = lg.room("stall")
        relay = Relay(self.srv.port)
        self.addCleanup(relay.stop)
        n = 24
        c = NodeClient(self.srv, rm, n, "ws", ["--stall-ms", str(stall_ms)],
                       base="http://%s:%d/" % (lg.HOST, relay.port))
        self.addCleanup(c.close)
        self.assertEqual(c.next("open")["transport"], "ws")
        p = lg.Poster(self.srv)  # straight to the gateway, not through the relay
        seqs = []
        try:
            for phase in range(3):
                if phase == 1:
                    self.assertTrue(relay.ctl("stall 5000")["ok"])
                for i in range(8):
                    seqs.append(p.post(rm, "staller", "s%d-%d" % (phase, i))[1]["seq"])
                    time.sleep(0.25)
                if phase == 1:
                    time.sleep(3.5)  # past the stall's end
        finally:
            p.close()
        done = c.next("done", timeout=25)
        self.assertEqual(done["seqs"], seqs, "every message once, in order")
        st = done["status"]["stats"]
        self.assertEqual((st["delivered"], st["duplicates"], st["gaps"], st["missing"]), (n, 0, 0, 0), st)
        return st["disconnects"]

    def test_silent_websocket_is_replaced(self):
        # 1.5 s without a frame: the module gives the WebSocket up and reconnects, and
        # resumes from its cursor once the network delivers again.
        self.assertGreaterEqual(self.stalled_run(1500), 1, "the stall went unnoticed")

    def test_quiet_room_keeps_its_websocket(self):
        # Nothing published for 4 s with stallMs 1000: the heartbeat's pongs are the only
        # frames, and they must keep the connection (else it would be replaced ~4 times).
        rm = lg.room("quiet")
        c = NodeClient(self.srv, rm, 1, "ws", ["--stall-ms", "1000"])
        self.addCleanup(c.close)
        c.next("open")
        time.sleep(4)
        p = lg.Poster(self.srv)
        try:
            seq = p.post(rm, "quiet", "at last")[1]["seq"]
        finally:
            p.close()
        done = c.next("done", timeout=15)
        self.assertEqual(done["seqs"], [seq])
        self.assertEqual(done["status"]["stats"]["disconnects"], 0, done["status"])

    def test_without_stall_detection_the_websocket_rides_it_out(self):
        # The control: with stallMs 0 the same stall passes unnoticed (nothing was lost,
        # the held frames arrive late), which is what the check above must differ from.
        self.assertEqual(self.stalled_run(0), 0)


if __name__ == "__main__":
    lg.main()
