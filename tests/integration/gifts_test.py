#!/usr/bin/env python3
"""Black-box tests of signed gifts (docs/protocol.md "Gifts", gateway/gift.h).

Gifts are signed and receipts verified by node's tweetnacl through
gift_signer.js, an implementation of the documented canonical bytes that
shares no code with the gateway (set-up runs `npm install` in this folder; no
node or npm is a failure, not a skip). Everything else follows lg.py: the real
binary on a free loopback port with its own data dir, stopped by pid.

This module also holds the helpers gift_crash_test.py imports (node set-up,
the signer process, gift HTTP calls, the journal reader).

Run: LIVEGATE_BIN=build/livegate /usr/bin/python3 tests/integration/gifts_test.py [Class.test ...]
"""

import base64
import fcntl
import hashlib
import http.client
import json
import os
import queue
import random
import re
import shutil
import signal
import string
import struct
import subprocess
import sys
import tempfile
import threading
import time

import lg

HERE = lg.HERE
SIGNER_JS = os.path.join(HERE, "gift_signer.js")
TOKEN = "gift-admin-" + os.urandom(12).hex()

# A developer's shell must not decide which gateways have key registration enabled.
os.environ.pop("LIVEGATE_ADMIN_TOKEN", None)

# RFC 8032 section 7.1 test vectors used by gateway/gift.h's worked examples.
RFC_TEST1_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
RFC_TEST1_PK = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
DOC_GIFT_SIG = "AbofcrBE3DytjwEMjwTcQkQpGYKoQhPKIN02Vy0iObp0q2Gw+5jTjilwpfgMsxSWaS1sKMtW+K5aw3VcReE+AA=="
RFC_TEST2_PK = "PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw="
DOC_RECEIPT_SIG = "gQCSvOZeRUIrcbwCVafaPDzyy9bnGZo+0/HuqEmc3QscRpOX4wdVpNKO2Z5fKldxnAVbrX/9jA+7I+/6vie7CA=="

GIFT_MSG_KEYS = {"seq", "ts", "type", "uid", "gift", "count", "value", "txn", "nonce", "sig",
                 "sent_ts", "gift_seq"}


def gift_cli():
    """The livegate-gift CLI built next to the gateway binary."""
    return os.path.join(os.path.dirname(os.path.abspath(lg.binary())), "livegate-gift")


def now_ms():
    return int(time.time() * 1000)


def new_seed():
    return os.urandom(32).hex()


def new_nonce(nbytes=16):
    return os.urandom(nbytes).hex()


_txn_counter = [0]
_txn_lock = threading.Lock()


def new_txn(prefix="t"):
    with _txn_lock:
        _txn_counter[0] += 1
        n = _txn_counter[0]
    return "%s%d-%s" % (prefix, n, os.urandom(4).hex())


def new_uid(prefix="v"):
    return "%s_%s" % (prefix, "".join(random.choice(string.ascii_lowercase + string.digits)
                                      for _ in range(8)))


# --------------------------------------------------------------------------
# node + tweetnacl
# --------------------------------------------------------------------------

_node_ready = None


def ensure_node_deps():
    """npm install (package.json pins tweetnacl@^1, with its lock file) in this folder,
    once per process, serialised across processes by a lock file. Raises AssertionError
    with a clear message when node or npm is missing or the install fails."""
    global _node_ready
    if _node_ready:
        return _node_ready
    node = shutil.which("node")
    npm = shutil.which("npm")
    if not node or not npm:
        raise AssertionError(
            "the gift tests need node and npm (tweetnacl signs the gifts independently of the "
            "gateway); not found on PATH (node=%r npm=%r). Install nodejs and npm." % (node, npm))
    lock_path = os.path.join(tempfile.gettempdir(), "livegate-npm-%s.lock" % hashlib.sha1(
        HERE.encode()).hexdigest()[:12])
    with open(lock_path, "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        try:
            p = subprocess.run([npm, "install", "--no-audit", "--no-fund"], cwd=HERE,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=300)
        except subprocess.TimeoutExpired:
            raise AssertionError("`npm install --no-audit --no-fund` in %s did not finish within 300 s"
                                 % HERE)
        finally:
            fcntl.flock(lk, fcntl.LOCK_UN)
    if p.returncode != 0:
        raise AssertionError("`npm install --no-audit --no-fund` in %s failed (exit %d):\n%s" % (
            HERE, p.returncode, p.stdout.decode("utf-8", "replace")[-3000:]))
    chk = subprocess.run([node, "-e", "require('tweetnacl')"], cwd=HERE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=60)
    if chk.returncode != 0:
        raise AssertionError("tweetnacl is not loadable after npm install: %s" % chk.stdout[-2000:])
    _node_ready = node
    return node


class NodeSigner:
    """A long-running `node gift_signer.js` child: one JSON line in, one JSON line out."""

    def __init__(self, engine="tweetnacl"):
        node = ensure_node_deps()
        self.engine = engine
        self.proc = subprocess.Popen([node, SIGNER_JS, "--engine", engine], cwd=HERE,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=lg.clean_env())
        self.lines = queue.Queue()
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _get(self, timeout):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("gift_signer.js gave no answer within %.0fs" % timeout)
        if line is None:
            err = self.proc.stderr.read().decode("utf-8", "replace") if self.proc.poll() is not None else ""
            raise AssertionError("gift_signer.js exited (code %r): %s" % (self.proc.poll(), err[-2000:]))
        out = json.loads(line)
        if "error" in out:
            raise AssertionError("gift_signer.js refused a request: %r" % out)
        return out

    def call(self, req, timeout=30.0):
        with self.lock:
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
            return self._get(timeout)

    def batch(self, reqs, timeout=120.0):
        """Many requests at once (a writer thread feeds stdin while we read stdout)."""
        with self.lock:
            data = "".join(json.dumps(r) + "\n" for r in reqs).encode()
            err = []

            def write():
                try:
                    self.proc.stdin.write(data)
                    self.proc.stdin.flush()
                except OSError as e:
                    err.append(e)

            w = threading.Thread(target=write, daemon=True)
            w.start()
            deadline = time.monotonic() + timeout
            out = [self._get(max(0.1, deadline - time.monotonic())) for _ in reqs]
            w.join(5)
            if err:
                raise AssertionError("writing to gift_signer.js failed: %r" % err)
            return out

    # conveniences
    def pk(self, seed_hex):
        return self.call({"op": "pk", "seed_hex": seed_hex})["pk"]

    def sign(self, seed_hex, room, uid, gift, count, txn, ts, nonce):
        return self.call({"seed_hex": seed_hex, "room": room, "uid": uid, "gift": gift,
                          "count": count, "txn": txn, "ts": ts, "nonce": nonce})

    def verify_gift(self, pk, room, uid, gift, count, txn, ts, nonce, sig):
        return self.call({"op": "verify_gift", "pk": pk, "room": room, "uid": uid, "gift": gift,
                          "count": count, "txn": txn, "ts": ts, "nonce": nonce, "sig": sig})["ok"]

    def verify_receipt(self, pk, room, uid, txn, seq, gift, count, value, receipt_sig):
        return self.call({"op": "verify_receipt", "pk": pk, "room": room, "uid": uid, "txn": txn,
                          "seq": seq, "gift": gift, "count": count, "value": value,
                          "receipt_sig": receipt_sig})["ok"]

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


SIGNER = None  # the module's tweetnacl signer (setUpModule)


def signer():
    global SIGNER
    if SIGNER is None:
        SIGNER = NodeSigner("tweetnacl")
    return SIGNER


class Viewer:
    """A viewer device: uid + its own Ed25519 seed; signs through node."""

    def __init__(self, uid=None, seed=None, sg=None):
        self.sg = sg or signer()
        self.uid = uid or new_uid()
        self.seed = seed or new_seed()
        self.pk = self.sg.pk(self.seed)

    def register(self, srv, token=None):
        r = put_key(srv, self.uid, self.pk, token or TOKEN)
        if r.status != 200:
            raise AssertionError("PUT /v1/keys/%s -> %r" % (self.uid, r))
        return self

    def body(self, room, gift, count, txn=None, ts=None, nonce=None):
        """The signed request body (dict) for room."""
        out = self.sg.sign(self.seed, room, self.uid, gift, count, txn or new_txn(),
                           now_ms() if ts is None else ts, nonce or new_nonce())
        assert out["pk"] == self.pk
        return out["body"]


# --------------------------------------------------------------------------
# HTTP with http.client (answers as lg.Resp, so assertError works)
# --------------------------------------------------------------------------

def request(srv, method, path, body=None, headers=None, timeout=10.0, conn=None):
    """One HTTP request to the gateway -> lg.Resp. body: bytes, str or JSON-able."""
    if body is not None and not isinstance(body, (bytes, bytearray)):
        body = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    hs = {}
    if body is not None:
        hs["Content-Type"] = "application/json"
        hs["Content-Length"] = str(len(body))
    hs.update(headers or {})
    own = conn is None
    c = conn or http.client.HTTPConnection(lg.HOST, srv.port, timeout=timeout)
    t0 = time.monotonic()
    try:
        c.request(method, path, body=body, headers=hs)
        r = c.getresponse()
        data = r.read()
        return lg.Resp(r.status, list(r.getheaders()), data, time.monotonic() - t0, 0, "")
    finally:
        if own:
            c.close()


def put_key(srv, uid, pk, token=None, auth=None):
    hs = {}
    if auth is not None:
        hs["Authorization"] = auth
    elif token is not None:
        hs["Authorization"] = "Bearer " + token
    return request(srv, "PUT", "/v1/keys/%s" % uid, {"pk": pk}, hs)


def send(srv, room, body, conn=None, timeout=10.0):
    """POST /v1/rooms/{room}/gifts with body (dict -> compact JSON, or raw bytes/str)."""
    if isinstance(body, dict):
        body = json.dumps(body, separators=(",", ":"))
    return request(srv, "POST", "/v1/rooms/%s/gifts" % room, body, conn=conn, timeout=timeout)


def get_catalog(srv):
    """{id: price} from GET /v1/gifts."""
    r = request(srv, "GET", "/v1/gifts")
    if r.status != 200:
        raise AssertionError("GET /v1/gifts -> %r" % r)
    return {g["id"]: g["price"] for g in r.json()["gifts"]}


def get_server_pk(srv):
    r = request(srv, "GET", "/v1/server-key")
    if r.status != 200:
        raise AssertionError("GET /v1/server-key -> %r" % r)
    return r.json()["pk"]


def get_leaderboard(srv, room, n=10):
    """(parsed answer, {uid: value}) of GET /v1/rooms/{room}/leaderboard?n=N."""
    r = request(srv, "GET", "/v1/rooms/%s/leaderboard?n=%d" % (room, n))
    if r.status != 200:
        raise AssertionError("GET leaderboard %s -> %r" % (room, r))
    b = r.json()
    if b.get("room") != room or not isinstance(b.get("top"), list):
        raise AssertionError("leaderboard answer malformed: %r" % b)
    vals = [e["value"] for e in b["top"]]
    if vals != sorted(vals, reverse=True):
        raise AssertionError("leaderboard not sorted by value: %r" % b)
    board = {}
    for e in b["top"]:
        if set(e) != {"uid", "value"} or e["uid"] in board:
            raise AssertionError("leaderboard entry malformed or repeated: %r" % b)
        board[e["uid"]] = e["value"]
    return b, board


def wait_leaderboard(srv, room, expected, timeout=6.0, settle=1.2, n=100):
    """Wait (bounded) until the room's board equals expected ({uid: value}, zero entries
    dropped), then check it still does after `settle` s (nothing is counted twice later)."""
    expected = {u: v for u, v in expected.items() if v}
    last = [None]

    def same():
        last[0] = get_leaderboard(srv, room, n)[1]
        return last[0] == expected

    deadline = time.monotonic() + timeout
    while not same():
        if time.monotonic() > deadline:
            raise AssertionError("leaderboard of %s: expected %r, got %r" % (room, expected, last[0]))
        time.sleep(0.1)
    time.sleep(settle)
    b = get_leaderboard(srv, room, n)[1]
    if b != expected:
        raise AssertionError("leaderboard of %s changed after settling: expected %r, got %r" % (
            room, expected, b))
    return b


# --------------------------------------------------------------------------
# The journal file (gateway/journal.h)
# --------------------------------------------------------------------------

def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_CRC32C = _crc32c_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    t = _CRC32C
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the standard CRC-32C check value


def read_journal(path):
    """Parse <data_dir>/gifts.journal strictly: magic, then [u32 len][u32 crc32c(len bytes +
    payload)][payload] to the end of the file. Returns [(offset, payload bytes, parsed JSON)]."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"LGJRNL01":
        raise AssertionError("journal %s: bad magic %r" % (path, data[:8]))
    out = []
    off = 8
    while off < len(data):
        if off + 8 > len(data):
            raise AssertionError("journal: %d stray bytes at offset %d" % (len(data) - off, off))
        n, crc = struct.unpack_from("<II", data, off)
        if n < 1 or n > 64 * 1024 or off + 8 + n > len(data):
            raise AssertionError("journal: impossible length %d at offset %d (file %d bytes)" % (
                n, off, len(data)))
        payload = data[off + 8:off + 8 + n]
        if crc32c(data[off:off + 4] + payload) != crc:
            raise AssertionError("journal: CRC mismatch in the record at offset %d" % off)
        out.append((off, payload, json.loads(payload.decode("utf-8"))))
        off += 8 + n
    return out


# --------------------------------------------------------------------------
# Server helpers
# --------------------------------------------------------------------------

def kill9(srv):
    """SIGKILL our gateway by its pid and reap it."""
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait(10)
    srv.exit_code = srv.proc.returncode
    srv.stopped = True
    if srv.logf and not srv.logf.closed:
        srv.logf.close()


class FsizeLimitedServer(lg.Server):
    """A gateway whose files may not grow past `blocks` 512-byte blocks (ulimit -f, with
    SIGXFSZ ignored so the write fails with EFBIG instead of killing it): the only
    black-box way to make the journal's write fail."""

    def __init__(self, blocks, *a, **kw):
        super().__init__(*a, **kw)
        self.blocks = blocks

    def command(self, port):
        argv = super().command(port)
        return ["/bin/sh", "-c", 'trap "" XFSZ; ulimit -f %d && exec "$0" "$@"' % self.blocks] + argv


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------

def setUpModule():
    signer()


def tearDownModule():
    if SIGNER is not None:
        SIGNER.close()


class GiftCase(lg.ServerTest):
    server_args = ["--admin-token", TOKEN]
    timeout = 120

    # -- helpers --
    def catalog(self, srv=None):
        return get_catalog(srv or self.srv)

    def check_receipt(self, r, room, viewer, body, srv=None, server_pk=None, prices=None):
        """r is 200 with a receipt in the documented form, for this gift; its receipt_sig
        verifies in node against GET /v1/server-key with value = price x count. Returns the
        receipt dict."""
        srv = srv or self.srv
        self.assertEqual(r.status, 200, "gift %r in %s: %r" % (body, room, r))
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"), r)
        rc = r.json()
        self.assertEqual(set(rc), {"txn", "seq", "status", "receipt_sig"}, r)
        self.assertEqual(rc["txn"], body["txn"], r)
        self.assertEqual(rc["status"], "accepted", r)
        self.assertIsInstance(rc["seq"], int, r)
        self.assertGreaterEqual(rc["seq"], 1, r)
        self.assertRegex(rc["receipt_sig"], r"^[A-Za-z0-9+/]{86}==$", r)
        # The documented compact form, byte for byte.
        self.assertEqual(r.body, ('{"txn":"%s","seq":%d,"status":"accepted","receipt_sig":"%s"}' % (
            rc["txn"], rc["seq"], rc["receipt_sig"])).encode(), r)
        prices = prices or self.catalog(srv)
        value = prices[body["gift"]] * body["count"]
        pk = server_pk or get_server_pk(srv)
        self.assertTrue(signer().verify_receipt(pk, room, viewer.uid, body["txn"], rc["seq"],
                                                body["gift"], body["count"], value, rc["receipt_sig"]),
                        "receipt_sig of %r does not verify (tweetnacl, server pk %s, value %d)" % (
                            r.body, pk, value))
        return rc

    def send_ok(self, room, viewer, gift, count, srv=None, **kw):
        """Sign, send, check the receipt. Returns (body, receipt dict, raw receipt bytes)."""
        srv = srv or self.srv
        body = viewer.body(room, gift, count, **kw)
        r = send(srv, room, body)
        rc = self.check_receipt(r, room, viewer, body, srv=srv)
        return body, rc, r.body

    def reject(self, room, body, status, code, msg=None, srv=None):
        r = send(srv or self.srv, room, body)
        self.assertError(r, status, code, msg or ("body %r" % (body,))[:300])
        return r


class DocExamples(GiftCase):
    def test_doc_examples_reproduced_by_tweetnacl(self):
        """gift.h's worked examples: our JS canonical bytes + tweetnacl give the documented sig,
        and the documented receipt verifies; so the helper reads the format as the docs do."""
        sg = signer()
        out = sg.sign(RFC_TEST1_SEED, "lobby-1", "viewer_42", "rose", 3, "t-0001", 1700000000000,
                      "00112233445566778899aabbccddeeff")
        self.assertEqual(out["pk"], RFC_TEST1_PK)
        self.assertEqual(len(out["canonical"].encode()), 95)
        self.assertEqual(out["body"]["sig"], DOC_GIFT_SIG)
        self.assertTrue(sg.verify_receipt(RFC_TEST2_PK, "lobby-1", "viewer_42", "t-0001", 17, "rose", 3,
                                          30, DOC_RECEIPT_SIG))
        self.assertFalse(sg.verify_receipt(RFC_TEST2_PK, "lobby-1", "viewer_42", "t-0001", 17, "rose",
                                           3, 31, DOC_RECEIPT_SIG))

    def test_cli_and_tweetnacl_agree(self):
        """livegate-gift (the project's CLI) and tweetnacl derive the same key and signature;
        `livegate-gift send` is accepted and its receipt verifies."""
        cli = gift_cli()
        self.assertTrue(os.access(cli, os.X_OK), "gift CLI not found next to the gateway: %s" % cli)
        d = tempfile.mkdtemp(prefix="lggift-")
        self.addCleanup(shutil.rmtree, d, True)
        keyf = os.path.join(d, "seed")
        p = subprocess.run([cli, "keygen", "--out", keyf], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=20)
        self.assertEqual(p.returncode, 0, p)
        cli_pk = p.stdout.decode().splitlines()[0].strip()
        with open(keyf) as f:
            seed = base64.b64decode(f.read().strip()).hex()
        v = Viewer(seed=seed)
        self.assertEqual(v.pk, cli_pk)
        rm = lg.room("cli")
        ts, nonce, txn = now_ms(), new_nonce(), new_txn()
        p = subprocess.run([cli, "sign", "--key", keyf, "--room", rm, "--uid", v.uid, "--gift", "rose",
                            "--count", "4", "--txn", txn, "--ts", str(ts), "--nonce", nonce],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        self.assertEqual(p.returncode, 0, p)
        self.assertEqual(json.loads(p.stdout), v.body(rm, "rose", 4, txn=txn, ts=ts, nonce=nonce))
        v.register(self.srv)
        txn2 = new_txn()
        p = subprocess.run([cli, "send", "--url", "http://%s:%d" % (lg.HOST, self.srv.port), "--key", keyf,
                            "--room", rm, "--uid", v.uid, "--gift", "heart", "--count", "2",
                            "--txn", txn2], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30, env=lg.clean_env())
        self.assertEqual(p.returncode, 0, p)
        m = re.search(rb'\{"txn".*\}', p.stdout)
        self.assertIsNotNone(m, p)
        rc = json.loads(m.group(0))
        self.assertEqual(rc["txn"], txn2)
        self.assertTrue(signer().verify_receipt(get_server_pk(self.srv), rm, v.uid, txn2, rc["seq"], "heart",
                                                2, self.catalog()["heart"] * 2, rc["receipt_sig"]), rc)


class Admin(GiftCase):
    def test_key_registration_auth(self):
        v = Viewer()
        for auth, what in ((None, "no Authorization"), ("Bearer wrong-" + TOKEN, "wrong token"),
                           ("Bearer " + TOKEN[:-1], "token prefix"), ("Bearer " + TOKEN + "x", "longer token"),
                           ("Basic " + TOKEN, "wrong scheme"), ("Bearer", "empty"), (TOKEN, "bare token")):
            r = put_key(self.srv, v.uid, v.pk, auth=auth)
            self.assertError(r, 401, "unauthorized", what)
        # Nothing was stored: a gift from that uid is still unknown.
        rm = lg.room("adm")
        self.reject(rm, v.body(rm, "rose", 1), 403, "unknown_uid")
        r = put_key(self.srv, v.uid, v.pk, token=TOKEN)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"uid": v.uid, "status": "stored"})
        self.send_ok(rm, v, "rose", 1)
        # Re-registering (key rotation) replaces the key: the old one no longer verifies.
        old = Viewer(uid=v.uid, seed=v.seed)
        v.seed = new_seed()
        v.pk = signer().pk(v.seed)
        v.register(self.srv)
        self.reject(rm, old.body(rm, "rose", 1), 401, "bad_signature")
        self.send_ok(rm, v, "rose", 1)

    def test_key_registration_bad_input(self):
        v = Viewer()
        r = request(self.srv, "PUT", "/v1/keys/%s" % v.uid, {"pk": base64.b64encode(os.urandom(31)).decode()},
                    {"Authorization": "Bearer " + TOKEN})
        self.assertError(r, 400, "bad_pk")
        r = request(self.srv, "PUT", "/v1/keys/bad%20uid", {"pk": v.pk}, {"Authorization": "Bearer " + TOKEN})
        self.assertError(r, 400, "bad_uid")
        r = request(self.srv, "GET", "/v1/keys/%s" % v.uid)
        self.assertEqual(r.status, 405, r)

    def test_no_token_is_admin_disabled(self):
        srv = self.new_server()
        v = Viewer()
        for auth in (None, "Bearer " + TOKEN, "Bearer "):
            self.assertError(put_key(srv, v.uid, v.pk, auth=auth), 403, "admin_disabled", repr(auth))

    def test_env_token_overrides_flag(self):
        env_tok = "env-" + os.urandom(8).hex()
        srv = lg.Server(["--admin-token", "flag-" + TOKEN])
        self.addCleanup(srv.stop)
        os.environ["LIVEGATE_ADMIN_TOKEN"] = env_tok
        try:
            srv.start()
        finally:
            del os.environ["LIVEGATE_ADMIN_TOKEN"]
        v = Viewer()
        self.assertEqual(put_key(srv, v.uid, v.pk, token=env_tok).status, 200)
        self.assertError(put_key(srv, v.uid, v.pk, token="flag-" + TOKEN), 401, "unauthorized")


class CatalogAndKey(GiftCase):
    def test_catalog_etag_304(self):
        r = request(self.srv, "GET", "/v1/gifts")
        self.assertEqual(r.status, 200, r)
        etag = r.headers.get("etag")
        self.assertTrue(etag and re.match(r'^"[^"]+"$', etag), "strong quoted ETag expected: %r" % r)
        gifts = r.json()["gifts"]
        self.assertTrue(gifts, r)
        for g in gifts:
            self.assertEqual(set(g), {"id", "name", "price"}, g)
            self.assertRegex(g["id"], r"^[a-z0-9_-]{1,32}$")
            self.assertIsInstance(g["name"], str)
            self.assertIsInstance(g["price"], int)
            self.assertGreater(g["price"], 0)
        for inm in (etag, '"nope", ' + etag, "*"):
            r2 = request(self.srv, "GET", "/v1/gifts", headers={"If-None-Match": inm})
            self.assertEqual(r2.status, 304, (inm, r2))
            self.assertEqual(r2.body, b"", r2)
            self.assertEqual(r2.headers.get("etag"), etag, r2)
        r3 = request(self.srv, "GET", "/v1/gifts", headers={"If-None-Match": '"not-the-tag"'})
        self.assertEqual(r3.status, 200, r3)
        self.assertEqual(r3.body, r.body)
        self.assertEqual(request(self.srv, "POST", "/v1/gifts", b"{}").status, 405)

    def test_custom_catalog_prices_are_signed(self):
        d = tempfile.mkdtemp(prefix="lgcat-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "catalog.json")
        with open(path, "w") as f:
            json.dump({"gifts": [{"id": "star", "name": "Star", "price": 7},
                                 {"id": "moon", "name": "Moon", "price": 123}]}, f)
        srv = self.new_server(["--admin-token", TOKEN, "--gift-catalog-file", path])
        self.assertEqual(get_catalog(srv), {"star": 7, "moon": 123})
        v = Viewer().register(srv)
        rm = lg.room("cat")
        body = v.body(rm, "moon", 3)
        rc = self.check_receipt(send(srv, rm, body), rm, v, body, srv=srv)
        # The value in the receipt signature is 369: a client assuming another price fails.
        self.assertFalse(signer().verify_receipt(get_server_pk(srv), rm, v.uid, body["txn"], rc["seq"], "moon", 3,
                                                 370, rc["receipt_sig"]))
        self.reject(rm, v.body(rm, "rose", 1), 400, "bad_gift", srv=srv)
        wait_leaderboard(srv, rm, {v.uid: 369})

    def test_server_key(self):
        r = request(self.srv, "GET", "/v1/server-key")
        self.assertEqual(r.status, 200, r)
        b = r.json()
        self.assertEqual(set(b), {"pk"})
        self.assertEqual(len(base64.b64decode(b["pk"], validate=True)), 32)
        self.assertEqual(request(self.srv, "GET", "/v1/server-key").body, r.body)
        # A different data dir has a different key.
        other = self.new_server(["--admin-token", TOKEN])
        self.assertNotEqual(get_server_pk(other), b["pk"])


class Sending(GiftCase):
    def test_tweetnacl_gifts_accepted(self):
        rm = lg.room("acc")
        v = Viewer().register(self.srv)
        prices = self.catalog()
        seqs = []
        total = 0
        for gift, count in (("rose", 3), ("heart", 2), ("rose", 1), (sorted(prices)[0], 9999)):
            _, rc, _ = self.send_ok(rm, v, gift, count)
            seqs.append(rc["seq"])
            total += prices[gift] * count
        self.assertEqual(seqs, [1, 2, 3, 4], "gift seqs of a fresh room are 1, 2, 3...")
        # Long nonce (128 hex), long ids: still fine.
        v2 = Viewer(uid="U" * 64).register(self.srv)
        body = v2.body(rm, "rose", 1, txn="T" * 64, nonce="ab" * 64)
        self.check_receipt(send(self.srv, rm, body), rm, v2, body)
        wait_leaderboard(self.srv, rm, {v.uid: total, v2.uid: prices["rose"]})

    def test_rejections_then_leaderboard_is_exact(self):
        srv = self.srv
        rm, rm2 = lg.room("rej"), lg.room("rej2")
        prices = self.catalog()
        v = Viewer().register(srv)
        w = Viewer().register(srv)
        stranger = Viewer()  # never registered
        charged = {}

        def ok(viewer, gift, count, **kw):
            body, rc, raw = self.send_ok(rm, viewer, gift, count, **kw)
            charged[viewer.uid] = charged.get(viewer.uid, 0) + prices[gift] * count
            return body, rc, raw

        first, _, _ = ok(v, "rose", 3)
        ok(v, "heart", 2)
        ok(w, "rocket", 1)
        base = v.body(rm, "heart", 5)

        def mutate(**kw):
            b = dict(base)
            for k, val in kw.items():
                if val is None:
                    b.pop(k, None)
                else:
                    b[k] = val
            return b

        def raw(key, text):
            """base with member `key` written as raw JSON text."""
            b = dict(base)
            b[key] = "@@RAW@@"
            return json.dumps(b).replace('"@@RAW@@"', text)

        # 400 bad_json
        self.reject(rm, json.dumps(base)[:-1], 400, "bad_json")
        # 400 bad_field: missing members, wrong JSON types, ts out of range
        for k in ("uid", "gift", "count", "txn", "ts", "nonce", "sig"):
            self.reject(rm, mutate(**{k: None}), 400, "bad_field", "missing %s" % k)
        for k, text in (("count", '"5"'), ("count", "5.0"), ("count", "5e0"), ("count", "true"),
                        ("count", "null"), ("ts", '"%d"' % base["ts"]), ("ts", "%d.0" % base["ts"]),
                        ("ts", "0"), ("ts", "-1"), ("ts", "9007199254740992"), ("uid", "5"),
                        ("gift", '["heart"]'), ("txn", "{}"), ("nonce", "12"), ("sig", "null")):
            self.reject(rm, raw(k, text), 400, "bad_field", "%s=%s" % (k, text))
        self.reject(rm, "[]", 400, "bad_json", "a JSON array (as for danmaku: not an object)")
        # 400 bad_uid / bad_gift / bad_count / bad_txn / bad_nonce / bad_sig
        for u in ("", "bad uid", "x" * 65, "caf\u00e9", "a.b", "a/b"):
            self.reject(rm, mutate(uid=u), 400, "bad_uid", repr(u))
        for g in ("", "Rose", "rose!", "r" * 33, "ro se"):
            self.reject(rm, mutate(gift=g), 400, "bad_gift", repr(g))
        for c in (0, -1, 10000, 2 ** 40):
            self.reject(rm, mutate(count=c), 400, "bad_count", repr(c))
        for t in ("", "t 1", "t" * 65, "t.1"):
            self.reject(rm, mutate(txn=t), 400, "bad_txn", repr(t))
        for n in ("0" * 30, "0" * 130, "0" * 33, "ABCDEF" + "0" * 26, "zz" * 16, ""):
            self.reject(rm, mutate(nonce=n), 400, "bad_nonce", repr(n))
        sig = base["sig"]
        sig_bytes = base64.b64decode(sig)
        alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"
        noncanon = sig[:85] + alphabet[alphabet.index(sig[85]) | 1] + "=="  # nonzero unused bits
        bad_sigs = ["", "abc", base64.b64encode(sig_bytes[:63]).decode(),
                    base64.b64encode(sig_bytes + b"\0").decode(), sig[:86], sig[:44] + "\n" + sig[44:],
                    base64.urlsafe_b64encode(b"\xfb\xff" * 32).decode(), sig.replace("==", "=A"),
                    noncanon, " " + sig]
        for s in bad_sigs:
            self.reject(rm, mutate(sig=s), 400, "bad_sig", repr(s))
        # 403 unknown_uid: a well-formed, correctly signed gift from a uid without a key
        self.reject(rm, stranger.body(rm, "rose", 1), 403, "unknown_uid")
        # 401 bad_signature
        flipped = base64.b64encode(bytes([sig_bytes[0] ^ 1]) + sig_bytes[1:]).decode()
        self.reject(rm, mutate(sig=flipped), 401, "bad_signature", "flipped bit")
        self.reject(rm, v.body(rm2, "heart", 5), 401, "bad_signature", "signed for another room")
        wbody = w.body(rm, "heart", 5)
        self.reject(rm, dict(wbody, uid=v.uid), 401, "bad_signature", "w's signature, v's uid")
        for k, val in (("count", 6), ("gift", "rose"), ("txn", new_txn()), ("ts", base["ts"] + 1),
                       ("nonce", new_nonce())):
            self.reject(rm, mutate(**{k: val}), 401, "bad_signature", "%s changed after signing" % k)
        # 401 stale, both directions (signature fine)
        self.reject(rm, v.body(rm, "rose", 1, ts=now_ms() - 400 * 1000), 401, "stale", "400 s old")
        self.reject(rm, v.body(rm, "rose", 1, ts=now_ms() + 400 * 1000), 401, "stale", "400 s ahead")
        # 400 bad_gift: well-formed id, correctly signed, not in the catalog
        self.assertNotIn("tulip", prices)
        self.reject(rm, v.body(rm, "tulip", 1), 400, "bad_gift", "not in the catalog")
        # 409 conflict: the accepted txn with another count / gift / room (new nonce, valid sig)
        self.reject(rm, v.body(rm, "rose", 4, txn=first["txn"]), 409, "conflict", "other count")
        self.reject(rm, v.body(rm, "heart", 3, txn=first["txn"]), 409, "conflict", "other gift")
        self.reject(rm2, v.body(rm2, "rose", 3, txn=first["txn"]), 409, "conflict", "other room")
        # 409 replay: a new txn with a nonce this uid used
        self.reject(rm, v.body(rm, "rose", 3, nonce=first["nonce"]), 409, "replay", "nonce reused")
        self.reject(rm, v.body(rm, "heart", 1, nonce=first["nonce"]), 409, "replay", "nonce reused 2")
        # ...but another uid may use the same nonce, and unknown members are ignored (not trusted)
        ok(w, "heart", 1, nonce=first["nonce"])
        extra = dict(w.body(rm, "rose", 2), value=10 ** 9, room=rm2, price=10 ** 6)
        self.check_receipt(send(srv, rm, extra), rm, w, extra)
        charged[w.uid] += prices["rose"] * 2
        # method
        self.assertEqual(request(srv, "GET", "/v1/rooms/%s/gifts" % rm).status, 405)
        # Nothing refused was charged; the refused room has no leaders.
        wait_leaderboard(srv, rm, charged)
        self.assertEqual(get_leaderboard(srv, rm2)[0], {"room": rm2, "top": []})

    def test_check_order(self):
        """docs/protocol.md "Checks, in order": shape, unknown_uid, bad_signature, stale, bad_gift."""
        rm = lg.room("ord")
        v = Viewer().register(self.srv)
        stranger = Viewer()
        old = now_ms() - 3600 * 1000
        # shape before everything
        self.reject(rm, dict(stranger.body(rm, "rose", 1), count=0), 400, "bad_count", "stranger, count 0")
        # unknown uid before signature / staleness / catalog
        b = stranger.body(rm, "tulip", 1, ts=old)
        self.reject(rm, dict(b, sig=base64.b64encode(b"\1" * 64).decode()), 403, "unknown_uid")
        # signature before staleness and catalog
        b = v.body(rm, "tulip", 1, ts=old)
        self.reject(rm, dict(b, nonce=new_nonce()), 401, "bad_signature")
        # staleness before catalog
        self.reject(rm, v.body(rm, "tulip", 1, ts=old), 401, "stale")
        # a stale retry of an accepted txn is stale (the ledger comes last)
        body, _, _ = self.send_ok(rm, v, "rose", 1)
        self.reject(rm, v.body(rm, "rose", 1, txn=body["txn"], ts=old), 401, "stale")

    def test_max_skew_flag(self):
        srv = self.new_server(["--admin-token", TOKEN, "--gift-max-skew", "5"])
        v = Viewer().register(srv)
        rm = lg.room("skew")
        self.reject(rm, v.body(rm, "rose", 1, ts=now_ms() - 12000), 401, "stale", srv=srv)
        self.reject(rm, v.body(rm, "rose", 1, ts=now_ms() + 12000), 401, "stale", srv=srv)
        body = v.body(rm, "rose", 1, ts=now_ms() - 1500)
        self.check_receipt(send(srv, rm, body), rm, v, body, srv=srv)


class RoomMessages(GiftCase):
    def test_gift_message_verifiable_by_viewers(self):
        rm = lg.room("msg")
        v = Viewer().register(self.srv)
        prices = self.catalog()
        cur = lg.current_cursor(self.srv, rm)
        sent = [self.send_ok(rm, v, g, c) for g, c in (("rose", 7), ("heart", 1))]
        b = lg.poll_json(self.srv, rm, since=cur)
        gifts = [m for m in b["msgs"] if m.get("type") == "gift"]
        self.assertEqual(len(gifts), 2, b)
        for (body, rc, _), m in zip(sent, gifts):
            self.assertEqual(set(m), GIFT_MSG_KEYS, m)
            self.assertEqual((m["uid"], m["gift"], m["count"], m["txn"], m["nonce"], m["sig"], m["sent_ts"]),
                             (v.uid, body["gift"], body["count"], body["txn"], body["nonce"], body["sig"],
                              body["ts"]), m)
            self.assertEqual(m["value"], prices[body["gift"]] * body["count"], m)
            self.assertEqual(m["gift_seq"], rc["seq"], (m, rc))
            self.assertIsInstance(m["seq"], int)
            self.assertIsInstance(m["ts"], int)
            # A viewer rebuilds the canonical bytes from the message and the room, in node.
            self.assertTrue(signer().verify_gift(v.pk, rm, m["uid"], m["gift"], m["count"], m["txn"],
                                                 m["sent_ts"], m["nonce"], m["sig"]), m)
            self.assertFalse(signer().verify_gift(v.pk, rm + "x", m["uid"], m["gift"], m["count"], m["txn"],
                                                  m["sent_ts"], m["nonce"], m["sig"]), m)
        # The leaderboard change reaches the room as a "rank" message (at most 1 s later).
        total = prices["rose"] * 7 + prices["heart"]
        deadline = time.monotonic() + 6
        cur = b["cursor"]
        rank = None
        while rank is None and time.monotonic() < deadline:
            p = lg.poll_json(self.srv, rm, since=cur, wait=2)
            cur = p["cursor"]
            for m in p["msgs"]:
                if m.get("type") == "rank":
                    rank = m
        self.assertIsNotNone(rank, "no rank message within 6 s")
        self.assertEqual(set(rank), {"seq", "ts", "type", "top"}, rank)
        self.assertEqual(rank["top"], [{"uid": v.uid, "value": total}], rank)

    def test_rank_messages_at_most_once_per_second(self):
        rm = lg.room("rank")
        v = Viewer().register(self.srv)
        cur = lg.current_cursor(self.srv, rm)
        t_end = time.monotonic() + 3.5
        n = 0
        while time.monotonic() < t_end:
            self.send_ok(rm, v, "rose", 1)
            n += 1
            time.sleep(0.05)
        time.sleep(1.5)
        msgs = []
        for _ in range(50):
            p = lg.poll_json(self.srv, rm, since=cur)
            cur = p["cursor"]
            if not p["msgs"]:
                break
            msgs += p["msgs"]
        ranks = [m for m in msgs if m.get("type") == "rank"]
        self.assertEqual(len([m for m in msgs if m.get("type") == "gift"]), n)
        self.assertGreaterEqual(len(ranks), 2, "gifts for 3.5 s should give several rank pushes: %r" % ranks)
        gaps = [b["ts"] - a["ts"] for a, b in zip(ranks, ranks[1:])]
        self.assertTrue(all(g >= 950 for g in gaps), "rank messages closer than 1 s: gaps %r ms" % gaps)
        self.assertEqual(ranks[-1]["top"], [{"uid": v.uid, "value": n * self.catalog()["rose"]}], ranks[-1])


class Idempotency(GiftCase):
    def test_retry_gets_identical_receipt(self):
        rm = lg.room("idem")
        v = Viewer().register(self.srv)
        w = Viewer().register(self.srv)
        cur = lg.current_cursor(self.srv, rm)
        body, rc, raw = self.send_ok(rm, v, "heart", 3)
        for attempt in range(3):
            r = send(self.srv, rm, v.body(rm, "heart", 3, txn=body["txn"], ts=now_ms() - 1000 * attempt))
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body, raw, "retry %d with a new nonce/ts" % attempt)
        r = send(self.srv, rm, body)
        self.assertEqual((r.status, r.body), (200, raw), "retry of the very same body")
        # The txn is per uid: w may use the same txn id for its own gift.
        wb = w.body(rm, "heart", 3, txn=body["txn"])
        self.check_receipt(send(self.srv, rm, wb), rm, w, wb)
        price = self.catalog()["heart"]
        wait_leaderboard(self.srv, rm, {v.uid: 3 * price, w.uid: 3 * price})
        msgs = lg.poll_json(self.srv, rm, since=cur)["msgs"]
        self.assertEqual([(m["uid"], m["txn"]) for m in msgs if m.get("type") == "gift"],
                         [(v.uid, body["txn"]), (w.uid, body["txn"])], msgs)

    def test_concurrent_same_txn_charged_once(self):
        rm = lg.room("conc")
        v = Viewer().register(self.srv)
        price = self.catalog()["rocket"]
        rounds, width = 25, 4
        in_progress = 0
        for rnd in range(rounds):
            txn = new_txn("c")
            bodies = [v.body(rm, "rocket", 1, txn=txn) for _ in range(width)]  # different nonces
            conns = [http.client.HTTPConnection(lg.HOST, self.srv.port, timeout=10) for _ in range(width)]
            for c in conns:
                c.connect()
            barrier = threading.Barrier(width)
            results = [None] * width

            def go(i):
                try:
                    barrier.wait(5)
                    results[i] = send(self.srv, rm, bodies[i], conn=conns[i])
                except Exception as e:  # noqa: BLE001 - reported below
                    results[i] = e

            ts = [threading.Thread(target=go, args=(i,)) for i in range(width)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(20)
            for c in conns:
                c.close()
            oks = [r for r in results if isinstance(r, lg.Resp) and r.status == 200]
            self.assertTrue(oks, "round %d: no 200 among %r" % (rnd, results))
            receipt = oks[0].body
            self.check_receipt(oks[0], rm, v, bodies[results.index(oks[0])])
            for r in results:
                self.assertIsInstance(r, lg.Resp, r)
                if r.status == 200:
                    self.assertEqual(r.body, receipt, "two different receipts for one txn")
                else:
                    self.assertError(r, 409, "in_progress", "round %d" % rnd)
                    self.assertEqual(r.headers.get("retry-after"), "1", r)
                    in_progress += 1
            r = send(self.srv, rm, v.body(rm, "rocket", 1, txn=txn))
            self.assertEqual((r.status, r.body), (200, receipt))
        print("  [%d rounds x %d concurrent sends: %d answered 409 in_progress]" % (rounds, width, in_progress))
        wait_leaderboard(self.srv, rm, {v.uid: rounds * price})


class WebSocket(GiftCase):
    def test_ws_gift_op(self):
        rm = lg.room("ws")
        v = Viewer().register(self.srv)
        stranger = Viewer()
        good = v.body(rm, "heart", 4)
        retry = v.body(rm, "heart", 4, txn=good["txn"])
        bad = dict(v.body(rm, "rose", 1), count=2)
        replay = v.body(rm, "rose", 1, nonce=good["nonce"])
        unknown = stranger.body(rm, "rose", 1)

        async def run():
            ws = await lg.ws_open(self.srv, rm)
            try:
                await ws.send(json.dumps(dict(good, op="gift", id=7)))
                replies, msgs = [], []
                deadline = time.monotonic() + 10
                while (len(replies) < 1 or not msgs) and time.monotonic() < deadline:
                    f = await lg.ws_recv_json(ws, 10)
                    (replies if "op" in f else msgs).extend([f] if "op" in f else f.get("msgs", []))
                for op_id, body in ((8, retry), (9, bad), (10, dict(bad, count=0)), (11, unknown), (12, replay)):
                    await ws.send(json.dumps(dict(body, op="gift", id=op_id)))
                while len(replies) < 6 and time.monotonic() < deadline:
                    f = await lg.ws_recv_json(ws, 10)
                    if "op" in f:
                        replies.append(f)
                    else:
                        msgs.extend(f.get("msgs", []))
                return replies, msgs
            finally:
                await ws.close()

        replies, msgs = lg.run_async(run(), 30)
        self.assertEqual(len(replies), 6, replies)
        by_id = {r["id"]: r for r in replies}
        ack = by_id[7]
        self.assertEqual(set(ack), {"op", "id", "receipt"}, ack)
        self.assertEqual(ack["op"], "ack", ack)
        rc = ack["receipt"]
        raw = ('{"txn":"%s","seq":%d,"status":"accepted","receipt_sig":"%s"}' % (
            rc["txn"], rc["seq"], rc["receipt_sig"])).encode()
        self.check_receipt(lg.Resp(200, [("Content-Type", "application/json")], raw, 0, 0, ""), rm, v, good)
        self.assertEqual(by_id[8], {"op": "ack", "id": 8, "receipt": rc}, "ws retry: same receipt")
        for op_id, code in ((9, "bad_signature"), (10, "bad_count"), (11, "unknown_uid"), (12, "replay")):
            e = by_id[op_id]
            self.assertEqual((e.get("op"), e.get("error")), ("error", code), e)
            self.assertIsInstance(e.get("detail"), str, e)
            self.assertEqual(set(e), {"op", "id", "error", "detail"}, e)
        gifts = [m for m in msgs if m.get("type") == "gift"]
        self.assertEqual(len(gifts), 1, msgs)
        self.assertEqual((gifts[0]["txn"], gifts[0]["gift_seq"]), (good["txn"], rc["seq"]))
        # HTTP retry: byte-identical to what the WebSocket acknowledged.
        r = send(self.srv, rm, v.body(rm, "heart", 4, txn=good["txn"]))
        self.assertEqual((r.status, r.body), (200, raw))
        wait_leaderboard(self.srv, rm, {v.uid: 4 * self.catalog()["heart"]})


class Busy(GiftCase):
    def test_ws_gifts_past_the_check_queue_are_busy_and_retry_cleanly(self):
        """gift_queue_max 1, one checker: 40 gift ops arriving in one TCP write overflow the
        check queue. Every op is answered exactly once, with an ack or 503-style busy; retrying
        the busy ones (same txn) then acknowledges each, and every gift counts exactly once."""
        srv = self.new_server(["--admin-token", TOKEN, "--gift-threads", "1",
                               "--gift-queue-max", "1"])
        rm = lg.room("busy")
        v = Viewer().register(srv)
        bodies = {i: v.body(rm, "rose", 1) for i in range(40)}
        ws = lg.RawWS(srv, "/v1/rooms/%s/ws" % rm)
        try:
            ws.sock.sendall(b"".join(
                lg.RawWS.frame(0x1, json.dumps(dict(b, op="gift", id=i)).encode())
                for i, b in bodies.items()))
            replies = {}

            def collect(want):
                deadline = time.monotonic() + 20
                while len(want - set(replies)) and time.monotonic() < deadline:
                    op, payload = ws.read_frame(deadline - time.monotonic())
                    f = json.loads(payload) if op == 0x1 else {}
                    if "op" in f:
                        self.assertNotIn(f["id"], replies, "answered twice: %r" % f)
                        replies[f["id"]] = f
                self.assertEqual(want - set(replies), set(), "unanswered ops")

            collect(set(bodies))
            busy = [i for i, f in replies.items() if f["op"] == "error"]
            for i, f in replies.items():
                self.assertIn((f["op"], f.get("error")), {("ack", None), ("error", "busy")}, f)
            self.assertTrue(busy, "40 ops in one write never filled a queue of 1")
            print("  [%d of 40 ops answered busy]" % len(busy))
            for i in busy:  # one at a time now: the queue has room
                del replies[i]
                ws.send(0x1, json.dumps(dict(bodies[i], op="gift", id=i)).encode())
                collect({i})
                self.assertEqual(replies[i]["op"], "ack", replies[i])
        finally:
            ws.close()
        wait_leaderboard(srv, rm, {v.uid: 40 * self.catalog(srv)["rose"]})


class Restart(GiftCase):
    def test_clean_restart_keeps_server_key_keys_and_seqs(self):
        srv = self.new_server(["--admin-token", TOKEN])
        pk, etag = get_server_pk(srv), request(srv, "GET", "/v1/gifts").headers.get("etag")
        v = Viewer().register(srv)
        rm = lg.room("rs")
        b1, rc1, raw1 = self.send_ok(rm, v, "rose", 2, srv=srv)
        rotated = Viewer().register(srv)
        before = Viewer(uid=rotated.uid, seed=rotated.seed)
        rotated.seed = new_seed()
        rotated.pk = signer().pk(rotated.seed)
        rotated.register(srv)  # later registrations replace earlier ones, also after a restart
        self.assertEqual(srv.stop(), 0, "clean exit on SIGTERM")
        key_file = os.path.join(srv.data_dir, "server.key")
        self.assertEqual(os.stat(key_file).st_mode & 0o077, 0, "server.key must be private")
        srv.start()
        self.assertEqual(get_server_pk(srv), pk, "server key changed across a restart")
        self.assertEqual(request(srv, "GET", "/v1/gifts").headers.get("etag"), etag)
        # The key survived: a new gift from v is accepted and continues the room's gift seq.
        _, rc2, _ = self.send_ok(rm, v, "rose", 1, srv=srv)
        self.assertEqual(rc2["seq"], rc1["seq"] + 1)
        self.reject(rm, before.body(rm, "rose", 1), 401, "bad_signature", "replaced key", srv=srv)
        self.send_ok(rm, rotated, "rose", 1, srv=srv)
        r = send(srv, rm, v.body(rm, "rose", 2, txn=b1["txn"]))
        self.assertEqual((r.status, r.body), (200, raw1))
        rose = self.catalog(srv)["rose"]
        wait_leaderboard(srv, rm, {v.uid: 3 * rose, rotated.uid: rose})

    def test_receipts_survive_kill9(self):
        srv = self.new_server(["--admin-token", TOKEN])
        pk = get_server_pk(srv)
        prices = self.catalog(srv)
        viewers = [Viewer().register(srv) for _ in range(3)]
        rooms = [lg.room("k9a"), lg.room("k9b")]
        sent = []  # (room, viewer, body, raw receipt, seq)
        boards = {r: {} for r in rooms}
        for i in range(12):
            rm, v = rooms[i % 2], viewers[i % 3]
            g, c = ("rose", "heart", "rocket")[i % 3], 1 + i
            body, rc, raw = self.send_ok(rm, v, g, c, srv=srv)
            sent.append((rm, v, body, raw, rc["seq"]))
            boards[rm][v.uid] = boards[rm].get(v.uid, 0) + prices[g] * c
        for rm in rooms:
            wait_leaderboard(srv, rm, boards[rm], settle=0)
        kill9(srv)
        self.assertEqual(srv.exit_code, -signal.SIGKILL)
        srv.start()
        self.assertEqual(get_server_pk(srv), pk)
        for rm in rooms:  # restored from the journal, before any new gift
            self.assertEqual(get_leaderboard(srv, rm, 100)[1], boards[rm], "leaderboard after kill -9")
        for rm, v, body, raw, _ in sent:
            r = send(srv, rm, v.body(rm, body["gift"], body["count"], txn=body["txn"]))
            self.assertEqual((r.status, r.body), (200, raw), "retry after kill -9 of %s" % body["txn"])
            r = send(srv, rm, body)
            self.assertEqual((r.status, r.body), (200, raw))
        # The ledger came back too: conflicts and replays are still recognised...
        rm, v, body, _, _ = sent[0]
        self.reject(rm, v.body(rm, body["gift"], body["count"] + 1, txn=body["txn"]), 409, "conflict", srv=srv)
        self.reject(rm, v.body(rm, "rose", 1, nonce=body["nonce"]), 409, "replay", srv=srv)
        # ...and gift seqs continue after the largest journaled one.
        for rm in rooms:
            last = max(s for r, _, _, _, s in sent if r == rm)
            _, rc, _ = self.send_ok(rm, viewers[0], "rose", 1, srv=srv)
            self.assertEqual(rc["seq"], last + 1)
            boards[rm][viewers[0].uid] = boards[rm].get(viewers[0].uid, 0) + prices["rose"]
        for rm in rooms:
            wait_leaderboard(srv, rm, boards[rm])
        # The journal holds each gift once, with the receipt the client got.
        srv.stop()
        recs = read_journal(os.path.join(srv.data_dir, "gifts.journal"))
        by_txn = {}
        for _, _, o in recs:
            self.assertNotIn((o["uid"], o["txn"]), by_txn, "txn journaled twice")
            by_txn[(o["uid"], o["txn"])] = o
        self.assertEqual(len(recs), len(sent) + len(rooms))
        for rm, v, body, raw, seq in sent:
            o = by_txn[(v.uid, body["txn"])]
            self.assertEqual(o["receipt"].encode(), raw)
            self.assertEqual((o["room"], o["seq"], o["gift"], o["count"], o["value"]),
                             (rm, seq, body["gift"], body["count"], prices[body["gift"]] * body["count"]))


class JournalFailure(GiftCase):
    def test_journal_write_failure_is_503_and_nothing_is_charged(self):
        """ulimit -f makes the journal's write fail (EFBIG): the gift is answered 503
        journal_failed, every later gift too, nothing refused is charged; a restart
        without the limit recovers, keeps every acknowledged receipt, and the refused
        txn can then be sent again."""
        data = tempfile.mkdtemp(prefix="lgjf-")
        self.addCleanup(shutil.rmtree, data, True)
        seed_srv = self.new_server(["--admin-token", TOKEN], data_dir=data)  # server.key, keys.log
        v = Viewer().register(seed_srv)
        seed_srv.stop()
        srv = FsizeLimitedServer(16, ["--admin-token", TOKEN], data_dir=data)  # 8 KiB of journal
        self.addCleanup(srv.stop)
        srv.start()
        rm = lg.room("jf")
        prices = self.catalog(srv)
        acked, failed = [], None
        for i in range(200):
            body = v.body(rm, "rose", 1 + i % 5)
            r = send(srv, rm, body)
            if r.status == 200:
                acked.append((body, self.check_receipt(r, rm, v, body, srv=srv), r.body))
                continue
            self.assertError(r, 503, "journal_failed", "gift %d" % i)
            failed = body
            break
        self.assertIsNotNone(failed, "200 gifts fit in a journal limited to 8 KiB?")
        self.assertTrue(acked, "the very first gift already failed")
        charged = sum(prices["rose"] * b["count"] for b, _, _ in acked)
        # No gift is acknowledged any more; the failed one is not pending either.
        self.reject(rm, v.body(rm, "heart", 1), 503, "journal_failed", srv=srv)
        self.reject(rm, failed, 503, "journal_failed", "retry of the failed txn", srv=srv)
        # Acknowledged txns still answer with their receipt (they are in memory and on disk).
        r = send(srv, rm, acked[0][0])
        self.assertEqual((r.status, r.body), (200, acked[0][2]))
        wait_leaderboard(srv, rm, {v.uid: charged})
        srv.stop()
        srv2 = self.new_server(["--admin-token", TOKEN], data_dir=data)
        wait_leaderboard(srv2, rm, {v.uid: charged}, settle=0)
        for body, _, raw in acked:
            r = send(srv2, rm, body)
            self.assertEqual((r.status, r.body), (200, raw))
        self.check_receipt(send(srv2, rm, failed), rm, v, failed, srv=srv2)
        wait_leaderboard(srv2, rm, {v.uid: charged + prices["rose"] * failed["count"]})


if __name__ == "__main__":
    lg.main()
