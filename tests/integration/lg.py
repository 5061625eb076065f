"""Shared helpers for livegate's integration tests.

Every test script imports this module, defines unittest.TestCase classes and
ends with ``lg.main()``, which runs them and prints a final ``N passed, N
failed`` line (exit code 0 only when everything passed).

Rules the helpers enforce:
  * the gateway is started by us (subprocess.Popen) on a free loopback port,
    with an explicit --bind 127.0.0.1 --port P --data-dir <tempdir>, and
    stopped by its own pid (SIGTERM, 5 s, then SIGKILL);
  * all traffic goes to 127.0.0.1 only; HTTP checks use the real `curl`
    binary, bulk publishing uses http.client, WebSocket uses Debian's
    python3-websockets (10.4) or a raw socket for malformed frames;
  * every network loop is bounded in count and time; every test has a
    timeout (SIGALRM), and curl / socket calls have their own timeouts;
  * when a test fails, the stderr log of every gateway that was running
    during the test is printed.
"""

import asyncio
import base64
import contextlib
import gzip as gzip_mod
import http.client
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import string
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

HOST = "127.0.0.1"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CURL = shutil.which("curl") or "/usr/bin/curl"

# Rate limits generous enough that tests which are not about rate limiting
# never hit them (the defaults are deliberately low for production).
GENEROUS = ["--rate-uid", "10000", "--burst-uid", "10000",
            "--rate-room", "100000", "--burst-room", "100000"]


def binary():
    """Path of the gateway under test: $LIVEGATE_BIN, else build/livegate."""
    b = os.environ.get("LIVEGATE_BIN")
    if b:
        return b
    return os.path.join(REPO, "build", "livegate")


def free_port():
    """A free loopback TCP port: bind 127.0.0.1:0, read the port, close."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def clean_env():
    """Environment for child processes: no proxies (traffic stays on loopback)."""
    env = dict(os.environ)
    for k in list(env):
        if k.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "curl_home"):
            del env[k]
    return env


_room_counter = itertools.count(1)


def room(prefix="r"):
    """A fresh, valid, unique room name."""
    tag = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(6))
    return "%s%d_%s" % (prefix, next(_room_counter), tag)


def wait_for(cond, timeout=5.0, interval=0.05, what="condition"):
    """Poll cond() until it returns a truthy value (returned) or timeout (AssertionError)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = cond()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))
        time.sleep(interval)


# --------------------------------------------------------------------------
# The gateway process
# --------------------------------------------------------------------------

class ServerStartError(Exception):
    pass


class Server:
    """One gateway process we started. Use start(); always stop() (done at exit too)."""

    all = []          # every Server ever created in this process
    _lock = threading.Lock()

    def __init__(self, args=(), tls=None, generous=True, port=None, data_dir=None,
                 pass_port=True, pass_data_dir=True):
        """args: extra flags. tls: (certfile, keyfile) or None.
        generous: prepend GENEROUS rate limits. port/data_dir: reuse given ones."""
        self.extra = list(args)
        self.tls = tls
        self.generous = generous
        self.fixed_port = port
        self.pass_port = pass_port
        self.pass_data_dir = pass_data_dir
        self.tmp = tempfile.mkdtemp(prefix="lgit-")
        self.own_data_dir = data_dir is None
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.log_path = os.path.join(self.tmp, "stderr.log")
        self.proc = None
        self.port = None
        self.argv = None
        self.exit_code = None
        self.stopped = False
        self.logf = None
        with Server._lock:
            Server.all.append(self)

    # -- lifecycle --
    def command(self, port):
        argv = [binary(), "--bind", HOST]
        if self.pass_port:
            argv += ["--port", str(port)]
        if self.pass_data_dir:
            argv += ["--data-dir", self.data_dir]
        if self.generous:
            argv += GENEROUS
        if self.tls:
            argv += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        argv += self.extra
        return argv

    def start(self, ready_timeout=10.0, attempts=3):
        """Start and wait until GET /healthz answers 200 (bounded). Retries on a new
        port if the process exits early (the port may have been taken meanwhile)."""
        if not os.path.exists(binary()):
            raise ServerStartError("gateway binary not found: %s" % binary())
        last_err = None
        for attempt in range(attempts):
            port = self.fixed_port or free_port()
            self.port = port
            self.argv = self.command(port)
            self.logf = open(self.log_path, "ab")
            self.logf.write(("### start: %s\n" % " ".join(self.argv)).encode())
            self.logf.flush()
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=self.logf, stderr=self.logf,
                                         env=clean_env(), cwd=self.tmp)
            self.stopped = False
            self.exit_code = None
            deadline = time.monotonic() + ready_timeout
            while time.monotonic() < deadline:
                rc = self.proc.poll()
                if rc is not None:
                    self.exit_code = rc
                    last_err = "gateway exited with code %d during startup" % rc
                    break
                # Healthy, and ours: another test's gateway may listen on a port
                # free_port() handed out again, and would answer /healthz for us.
                if self._healthy() and self._owns_port():
                    return self
                time.sleep(0.05)
            else:
                last_err = "gateway did not answer GET /healthz 200 within %.0fs" % ready_timeout
                self.stop()
                break  # a hang is not a port race; do not retry
            self.logf.close()
            if self.fixed_port:
                break
        raise ServerStartError("%s\nargv: %s\n--- gateway log ---\n%s" % (
            last_err, " ".join(self.argv), self.log_text()[-4000:]))

    def _healthy(self):
        try:
            if self.tls:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                c = http.client.HTTPSConnection(HOST, self.port, timeout=1, context=ctx)
            else:
                c = http.client.HTTPConnection(HOST, self.port, timeout=1)
            try:
                c.request("GET", "/healthz")
                r = c.getresponse()
                r.read()
                return r.status == 200
            finally:
                c.close()
        except (OSError, http.client.HTTPException, ssl.SSLError):
            return False

    def _owns_port(self):
        """Does our process hold a listening socket on self.port? (/proc/net/tcp*
        lists listeners by inode; /proc/PID/fd links to socket:[inode].)"""
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table) as f:
                    next(f)
                    for line in f:
                        cols = line.split()
                        if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == self.port:
                            inodes.add(cols[9])
            except OSError:
                continue
        try:
            fds = os.listdir("/proc/%d/fd" % self.proc.pid)
        except OSError:
            return False
        for fd in fds:
            try:
                link = os.readlink("/proc/%d/fd/%s" % (self.proc.pid, fd))
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                return True
        return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace=5.0):
        """SIGTERM our own pid, wait `grace` s, then SIGKILL. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                with open(self.log_path, "ab") as f:
                    f.write(b"### test harness: no exit within %.0fs of SIGTERM, sending SIGKILL\n" % grace)
                self.proc.kill()
                self.proc.wait(5)
        self.exit_code = self.proc.returncode
        self.stopped = True
        if self.logf and not self.logf.closed:
            self.logf.close()
        return self.exit_code

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def cleanup_files(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- addresses --
    @property
    def scheme(self):
        return "https" if self.tls else "http"

    def url(self, path):
        return "%s://%s:%d%s" % (self.scheme, HOST, self.port, path)

    def ws_url(self, room_name, since=None, raw_query=None):
        q = ""
        if raw_query is not None:
            q = "?" + raw_query
        elif since is not None:
            q = "?since=" + urllib.parse.quote(since, safe="")
        return "%s://%s:%d/v1/rooms/%s/ws%s" % ("wss" if self.tls else "ws", HOST, self.port, room_name, q)

    # -- HTTP helpers bound to this server --
    def curl(self, path, **kw):
        return curl(self.url(path), **kw)

    def post(self, room_name, uid, text, **kw):
        return post(self, room_name, uid, text, **kw)

    def post_curl(self, room_name, body, **kw):
        return post_curl(self, room_name, body, **kw)

    def poll(self, room_name, since=None, wait=None, gzip=False, **kw):
        return poll(self, room_name, since=since, wait=wait, gzip=gzip, **kw)

    def poll_json(self, room_name, since=None, wait=None, **kw):
        return poll_json(self, room_name, since=since, wait=wait, **kw)

    def metrics(self):
        return metrics(self)


def stop_all():
    for s in list(Server.all):
        try:
            s.stop()
        except Exception:
            pass


# --------------------------------------------------------------------------
# HTTP through curl
# --------------------------------------------------------------------------

class Resp:
    """A curl result: status (0 when curl itself failed), headers (lower-case name ->
    last value), header_list [(name, value)], body bytes, elapsed s, curl rc/stderr."""

    def __init__(self, status, header_list, body, elapsed, rc, err):
        self.status = status
        self.header_list = header_list
        self.headers = {}
        for k, v in header_list:
            self.headers[k.lower()] = v
        self.body = body
        self.elapsed = elapsed
        self.rc = rc
        self.err = err

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def header_values(self, name):
        return [v for k, v in self.header_list if k.lower() == name.lower()]

    def __iter__(self):  # allows: status, headers, body = resp
        return iter((self.status, self.headers, self.body))

    def __repr__(self):
        b = self.body[:600]
        return "<HTTP %s headers=%r body=%r curl_rc=%s %s>" % (
            self.status, self.headers, b, self.rc, self.err.strip()[:200])


def _parse_header_file(raw):
    text = raw.decode("iso-8859-1")
    blocks = [b for b in re.split(r"\r?\n\r?\n", text) if b.strip()]
    if not blocks:
        return []
    last = blocks[-1].splitlines()
    out = []
    for line in last[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            out.append((k.strip(), v.strip()))
    return out


def curl(url, method=None, headers=(), data=None, compressed=False, timeout=10.0,
         extra=(), insecure=True):
    """Run the real curl binary. Returns a Resp (status, headers, body bytes ...).

    data: bytes sent verbatim (--data-binary from stdin). The Expect: 100-continue
    dance is disabled so large bodies go out at once."""
    assert url.startswith("http://%s:" % HOST) or url.startswith("https://%s:" % HOST), url
    with tempfile.TemporaryDirectory(prefix="lgcurl-") as d:
        hdr = os.path.join(d, "h")
        bod = os.path.join(d, "b")
        argv = [CURL, "-sS", "--noproxy", "*", "--max-time", "%.1f" % timeout,
                "-o", bod, "-D", hdr, "-w", "%{http_code}", "--path-as-is"]
        if insecure:
            argv.append("-k")
        if method:
            argv += ["-X", method]
        for h in headers:
            argv += ["-H", h]
        if data is not None:
            argv += ["--data-binary", "@-", "-H", "Expect:"]
        if compressed:
            argv.append("--compressed")
        argv += list(extra)
        argv.append(url)
        t0 = time.monotonic()
        p = subprocess.run(argv, input=data if data is not None else b"",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout + 10, env=clean_env())
        elapsed = time.monotonic() - t0
        code = p.stdout.decode().strip()
        status = int(code) if code.isdigit() else 0
        hl = []
        if os.path.exists(hdr):
            with open(hdr, "rb") as f:
                hl = _parse_header_file(f.read())
        body = b""
        if os.path.exists(bod):
            with open(bod, "rb") as f:
                body = f.read()
        return Resp(status, hl, body, elapsed, p.returncode, p.stderr.decode("utf-8", "replace"))


def post_curl(srv, room_name, body, headers=("Content-Type: application/json",), **kw):
    """POST raw bytes (or a dict/list, JSON-encoded) to /v1/rooms/{room}/danmaku via curl."""
    if not isinstance(body, (bytes, bytearray)):
        body = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return curl(srv.url("/v1/rooms/%s/danmaku" % room_name), method="POST",
                headers=headers, data=bytes(body), **kw)


def poll(srv, room_name, since=None, wait=None, gzip=False, compressed=False, raw_query=None,
         timeout=None, headers=()):
    """GET /v1/rooms/{room}/poll via curl -> Resp (iterable as status, headers, body).
    gzip=True sends Accept-Encoding: gzip and leaves the body as received;
    compressed=True lets curl negotiate and decode (--compressed)."""
    q = []
    if since is not None:
        q.append("since=" + urllib.parse.quote(str(since), safe=""))
    if wait is not None:
        q.append("wait=" + urllib.parse.quote(str(wait), safe=""))
    if raw_query is not None:
        q = [raw_query]
    path = "/v1/rooms/%s/poll" % room_name + ("?" + "&".join(q) if q else "")
    hs = list(headers)
    if gzip:
        hs.append("Accept-Encoding: gzip")
    if timeout is None:
        w = 0
        try:
            w = int(wait or 0)
        except (TypeError, ValueError):
            w = 0
        timeout = max(0, w) + 10.0
    return curl(srv.url(path), headers=hs, compressed=compressed, timeout=timeout)


def poll_json(srv, room_name, since=None, wait=None, **kw):
    """poll() expecting 200; returns the parsed batch (raises AssertionError otherwise)."""
    r = poll(srv, room_name, since=since, wait=wait, **kw)
    if r.status != 200:
        raise AssertionError("poll %s since=%r wait=%r -> %r" % (room_name, since, wait, r))
    return r.json()


def metrics(srv):
    """GET /metrics -> {sample line name+labels: float value}."""
    r = srv.curl("/metrics")
    if r.status != 200:
        raise AssertionError("GET /metrics -> %r" % r)
    return parse_metrics(r.body.decode("utf-8"))


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)(?:\s+\S+)?$", line)
        if m:
            try:
                out[m.group(1)] = float(m.group(2))
            except ValueError:
                out[m.group(1)] = m.group(2)
    return out


# --------------------------------------------------------------------------
# HTTP through http.client (fast bulk publishing)
# --------------------------------------------------------------------------

def _conn(srv, timeout=10):
    if srv.tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(HOST, srv.port, timeout=timeout, context=ctx)
    return http.client.HTTPConnection(HOST, srv.port, timeout=timeout)


def post(srv, room_name, uid, text, conn=None, timeout=10):
    """POST {"uid":uid,"text":text} -> (status, parsed JSON body or raw text).
    Pass conn (from Poster) to reuse a keep-alive connection."""
    body = json.dumps({"uid": uid, "text": text}, ensure_ascii=False).encode("utf-8")
    own = conn is None
    c = conn or _conn(srv, timeout)
    try:
        c.request("POST", "/v1/rooms/%s/danmaku" % room_name, body=body,
                  headers={"Content-Type": "application/json", "Content-Length": str(len(body))})
        r = c.getresponse()
        data = r.read()
        try:
            parsed = json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            parsed = data
        return r.status, parsed
    finally:
        if own:
            c.close()


class Poster:
    """Publisher over one keep-alive connection; reconnects (once per call) when the
    server closed it."""

    def __init__(self, srv, timeout=10):
        self.srv = srv
        self.timeout = timeout
        self.c = None

    def post(self, room_name, uid, text):
        for attempt in range(2):
            if self.c is None:
                self.c = _conn(self.srv, self.timeout)
            try:
                return post(self.srv, room_name, uid, text, conn=self.c)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    http.client.CannotSendRequest, http.client.BadStatusLine):
                self.c.close()
                self.c = None
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.c:
            self.c.close()
            self.c = None


def post_ok(srv, room_name, uid, text, conn=None):
    """post() that must answer 202 {"seq":N}; returns N."""
    st, body = post(srv, room_name, uid, text, conn=conn)
    if st != 202 or not isinstance(body, dict) or not isinstance(body.get("seq"), int):
        raise AssertionError("POST %s uid=%r text=%r -> %s %r" % (room_name, uid, text[:40], st, body))
    return body["seq"]


def current_cursor(srv, room_name):
    """The room's current position: a short poll without since (must be empty)."""
    b = poll_json(srv, room_name)
    if b.get("msgs") != []:
        raise AssertionError("short poll without since returned messages: %r" % b)
    return b["cursor"]


# --------------------------------------------------------------------------
# WebSocket via python3-websockets (asyncio)
# --------------------------------------------------------------------------

def ws_ssl_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def ws_open(srv, room_name, since=None, raw_query=None, **kw):
    """Open a WebSocket to /v1/rooms/{room}/ws (websockets.connect, max_size=None,
    compression=None)."""
    import websockets
    opts = dict(max_size=None, compression=None, open_timeout=5, close_timeout=3,
                ping_interval=None)
    if srv.tls:
        opts["ssl"] = ws_ssl_context()
    opts.update(kw)
    return await websockets.connect(srv.ws_url(room_name, since, raw_query), **opts)


async def ws_recv_json(ws, timeout=5.0):
    """Next text frame, parsed as JSON (fails on binary frames or timeout)."""
    m = await asyncio.wait_for(ws.recv(), timeout)
    if not isinstance(m, str):
        raise AssertionError("expected a text frame, got binary %r" % m[:100])
    return json.loads(m)


async def ws_collect(ws, n, timeout=10.0, stop=None):
    """Read frames until n messages arrived in batches (or stop(frame) is true).
    Returns (msgs, batches, replies). Bounded by timeout."""
    msgs, batches, replies = [], [], []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(msgs) < n:
        left = deadline - loop.time()
        if left <= 0:
            raise AssertionError("ws: got %d of %d messages within %.1fs (batches %r, replies %r)" % (
                len(msgs), n, timeout, batches[-3:], replies[-3:]))
        f = await ws_recv_json(ws, left)
        if "op" in f:
            replies.append(f)
        else:
            batches.append(f)
            msgs.extend(f.get("msgs", []))
        if stop and stop(f):
            break
    return msgs, batches, replies


def run_async(coro, timeout=30.0):
    """asyncio.run with an overall bound."""
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


# --------------------------------------------------------------------------
# Raw WebSocket (for frames the websockets library refuses to send)
# --------------------------------------------------------------------------

class RawWS:
    """Minimal client: handshake, masked frames out, frame parsing in."""

    def __init__(self, srv, path, timeout=5.0):
        self.srv = srv
        s = socket.create_connection((HOST, srv.port), timeout=timeout)
        if srv.tls:
            s = ws_ssl_context().wrap_socket(s, server_hostname=HOST)
        self.sock = s
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, HOST, srv.port, key))
        s.sendall(req.encode())
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if time.monotonic() > deadline:
                raise AssertionError("raw ws: no handshake answer")
            chunk = s.recv(4096)
            if not chunk:
                raise AssertionError("raw ws: connection closed during handshake: %r" % self.buf)
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.status_line = head.split(b"\r\n")[0].decode("iso-8859-1")
        if " 101 " not in self.status_line + " ":
            raise AssertionError("raw ws: handshake refused: %r" % head)

    @staticmethod
    def frame(opcode, payload, fin=True, mask=True):
        b0 = (0x80 if fin else 0) | opcode
        n = len(payload)
        mbit = 0x80 if mask else 0
        if n < 126:
            hdr = struct.pack("!BB", b0, mbit | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", b0, mbit | 126, n)
        else:
            hdr = struct.pack("!BBQ", b0, mbit | 127, n)
        if not mask:
            return hdr + payload
        key = os.urandom(4)
        masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        return hdr + key + masked

    def send(self, opcode, payload, fin=True):
        self.sock.sendall(self.frame(opcode, payload, fin))

    def _need(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("raw ws: timed out")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("raw ws: connection closed")
            self.buf += chunk

    def read_frame(self, timeout=5.0):
        """-> (opcode, payload). Raises EOFError on close, socket.timeout on timeout."""
        deadline = time.monotonic() + timeout
        self._need(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        n = b1 & 0x7F
        off = 2
        if n == 126:
            self._need(4, deadline)
            n = struct.unpack("!H", self.buf[2:4])[0]
            off = 4
        elif n == 127:
            self._need(10, deadline)
            n = struct.unpack("!Q", self.buf[2:10])[0]
            off = 10
        if b1 & 0x80:
            off += 4  # server frames must not be masked; tolerate for parsing
        self._need(off + n, deadline)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return b0 & 0x0F, payload

    def wait_close(self, timeout=5.0, max_frames=1000):
        """Skip data/ping frames until a close frame; returns its code (None when the
        close frame carried no code, 'eof' when the TCP connection ended without one)."""
        deadline = time.monotonic() + timeout
        for _ in range(max_frames):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("raw ws: no close frame within %.1fs" % timeout)
            try:
                op, payload = self.read_frame(left)
            except EOFError:
                return "eof"
            if op == 0x8:
                if len(payload) >= 2:
                    return struct.unpack("!H", payload[:2])[0]
                return None
        raise AssertionError("raw ws: too many frames before close")

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()


# --------------------------------------------------------------------------
# Test base class and runner
# --------------------------------------------------------------------------

class _Alarm(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Alarm("test timed out (SIGALRM)")


class ServerTest(unittest.TestCase):
    """Base class: one gateway per class (started lazily, restarted when it died),
    a per-test timeout, and a failure when the gateway died during a test."""

    server_args = []      # extra flags for the class's gateway
    generous = True       # prepend GENEROUS rate limits
    tls = None            # (cert, key) or None
    timeout = 60          # seconds per test
    _srv = None
    _start_error = None

    @classmethod
    def make_server(cls):
        return Server(cls.server_args, tls=cls.tls, generous=cls.generous)

    def setUp(self):
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.alarm(int(self.timeout))
        cls = type(self)
        if cls._start_error is not None:
            raise ServerStartError("(cached) " + cls._start_error)
        if cls._srv is None or not cls._srv.alive():
            if cls._srv is not None:
                cls._srv.stop()
            srv = cls.make_server()
            try:
                srv.start()
            except ServerStartError as e:
                cls._start_error = str(e)
                raise
            cls._srv = srv
        self.srv = cls._srv

    def tearDown(self):
        signal.alarm(0)
        srv = getattr(self, "srv", None)
        if srv is not None and srv.proc is not None and not srv.stopped and srv.proc.poll() is not None:
            rc = srv.proc.returncode
            self.fail("the gateway died during this test (exit code %s)" % rc)

    @classmethod
    def tearDownClass(cls):
        if cls._srv is not None:
            cls._srv.stop()
            cls._srv = None

    # convenience
    def new_server(self, args=(), start=True, **kw):
        """A dedicated gateway for one test, stopped at cleanup."""
        s = Server(args, **kw)
        self.addCleanup(s.stop)
        if start:
            s.start()
        return s

    def assertError(self, resp, status, code, msg=None):
        """resp (a Resp) has the given status and a JSON body {"error":code,"detail":str}."""
        ctx = (msg + ": ") if msg else ""
        self.assertEqual(resp.status, status, "%sexpected %d %s, got %r" % (ctx, status, code, resp))
        try:
            body = resp.json()
        except (ValueError, UnicodeDecodeError):
            self.fail("%serror body is not JSON: %r" % (ctx, resp))
        self.assertIsInstance(body, dict, "%serror body not an object: %r" % (ctx, resp))
        self.assertEqual(body.get("error"), code, "%swrong error code: %r" % (ctx, resp))
        self.assertIsInstance(body.get("detail"), str, "%serror body lacks a string detail: %r" % (ctx, resp))
        return body


class LGResult(unittest.TextTestResult):
    """Prints the logs of gateways that ran during a failing test."""

    def startTest(self, test):
        self._alive_before = [s for s in Server.all if s.alive()]
        self._count_before = len(Server.all)
        super().startTest(test)

    def _dump_logs(self, test):
        servers = list(getattr(self, "_alive_before", []))
        for s in Server.all[getattr(self, "_count_before", 0):]:
            if s not in servers:
                servers.append(s)
        for s in servers:
            txt = s.log_text()
            lines = txt.splitlines()
            self.stream.write("\n----- gateway stderr (%s, port %s, %d lines, last 150) -----\n" % (
                test.id(), s.port, len(lines)))
            self.stream.write("\n".join(lines[-150:]) + "\n")
            self.stream.write("----- end gateway stderr -----\n")
        self.stream.flush()

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._dump_logs(test)

    def addError(self, test, err):
        super().addError(test, err)
        self._dump_logs(test)


def main():
    """Run the calling module's tests; print 'N passed, N failed'; exit 0 only if all passed."""
    main_mod = sys.modules["__main__"]
    loader = unittest.TestLoader()
    if len(sys.argv) > 1:
        suite = loader.loadTestsFromNames(sys.argv[1:], main_mod)
    else:
        suite = loader.loadTestsFromModule(main_mod)
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=LGResult)
    try:
        result = runner.run(suite)
    finally:
        stop_all()
    failed_ids = set()
    for t, _ in result.failures + result.errors:
        failed_ids.add(t.id())
    for t in result.unexpectedSuccesses:
        failed_ids.add(t.id())
    # a sanitizer build (LIVEGATE_SANITIZE / LIVEGATE_TSAN) reports into the gateway's
    # stderr, often only at exit: every such report counts as a failure
    for srv in Server.all:
        txt = srv.log_text()
        hits = [m.start() for m in re.finditer(
            r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|WARNING: ThreadSanitizer|runtime error:", txt)]
        if hits:
            failed_ids.add("sanitizer report from gateway on port %s" % srv.port)
            sys.stdout.write("\nFAIL: sanitizer report in the gateway log (port %s, argv %s):\n%s\n" % (
                srv.port, " ".join(srv.argv or []), txt[max(0, hits[0] - 200):hits[0] + 6000]))
    failed = len(failed_ids)
    skipped = len(result.skipped)
    ran_ids_failed = [i for i in failed_ids if not i.startswith(("setUpClass", "sanitizer"))]
    passed = max(0, result.testsRun - skipped - len(ran_ids_failed))
    # setUpClass/tearDownClass errors are not counted in testsRun
    sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    sys.stdout.flush()
    for s in Server.all:
        if s.stopped or s.proc is None:
            s.cleanup_files()
    sys.exit(0 if failed == 0 and passed > 0 else 1)
