#!/usr/bin/python3
"""TLS: with tls_cert/tls_key the listener serves https:// and wss:// only."""

import asyncio
import atexit
import shutil
import os
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lg  # noqa: E402


def make_cert():
    d = tempfile.mkdtemp(prefix="lgtls-")
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout", key, "-out", cert],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    return cert, key


CERT, KEY = make_cert()
atexit.register(shutil.rmtree, os.path.dirname(CERT), True)


class TlsTest(lg.ServerTest):
    tls = (CERT, KEY)

    def test_healthz_over_https(self):
        r = self.srv.curl("/healthz")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"status": "ok"})

    def test_certificate_is_ours(self):
        # verified against our own cert (no -k): proves the listener presents it
        r = lg.curl(self.srv.url("/healthz"), insecure=False, extra=["--cacert", CERT])
        self.assertEqual(r.status, 200, r)

    def test_post_and_poll_over_https(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        r = self.srv.post_curl(rm, {"uid": "u1", "text": "secure"})
        self.assertEqual((r.status, r.json()), (202, {"seq": 1}), r)
        st, body = lg.post(self.srv, rm, "u2", "secure2")
        self.assertEqual((st, body), (202, {"seq": 2}))
        b = self.srv.poll_json(rm, since=cur)
        self.assertEqual([m["text"] for m in b["msgs"]], ["secure", "secure2"])
        # long-poll released over TLS
        r = self.srv.poll(rm, since=b["cursor"], wait=1)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["msgs"], [])

    def test_wss_receives_batch(self):
        rm = lg.room()

        async def go():
            ws = await lg.ws_open(self.srv, rm)
            try:
                await asyncio.get_running_loop().run_in_executor(None, lg.post_ok, self.srv, rm, "u1", "over wss")
                return await lg.ws_collect(ws, 1, timeout=5)
            finally:
                await ws.close()

        msgs, batches, _ = lg.run_async(go())
        self.assertEqual([m["text"] for m in msgs], ["over wss"])
        self.assertIs(batches[0]["gap"], False)

    def test_wss_post_ack(self):
        rm = lg.room()

        async def go():
            ws = await lg.ws_open(self.srv, rm)
            try:
                await ws.send('{"op":"danmaku","id":1,"uid":"u","text":"t"}')
                for _ in range(5):
                    f = await lg.ws_recv_json(ws, 5)
                    if "op" in f:
                        return f
            finally:
                await ws.close()

        self.assertEqual(lg.run_async(go()), {"op": "ack", "id": 1, "seq": 1})

    def test_plain_http_not_served(self):
        r = lg.curl("http://%s:%d/healthz" % (lg.HOST, self.srv.port), timeout=5)
        self.assertNotEqual(r.status, 200, "plain http answered on the TLS listener: %r" % r)
        # a raw plaintext request gets no HTTP 200 either
        s = socket.create_connection((lg.HOST, self.srv.port), timeout=3)
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                data = s.recv(4096)
            except (socket.timeout, ConnectionResetError):
                data = b""
        finally:
            s.close()
        self.assertFalse(data.startswith(b"HTTP/1.1 200"), data[:100])
        # and the server still serves TLS afterwards
        self.assertEqual(self.srv.curl("/healthz").status, 200)

    def test_gzip_over_https(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        p = lg.Poster(self.srv)
        try:
            for i in range(50):
                st, _ = p.post(rm, "u1", "gzip over tls %03d padding padding padding" % i)
                self.assertEqual(st, 202)
        finally:
            p.close()
        plain = self.srv.poll(rm, since=cur)
        gz = self.srv.poll(rm, since=cur, gzip=True)
        self.assertEqual(gz.headers.get("content-encoding"), "gzip", gz.headers)
        import gzip
        self.assertEqual(gzip.decompress(gz.body), plain.body)


class TlsBadConfigTest(lg.ServerTest):
    def test_missing_key_file_refused(self):
        s = lg.Server(tls=(CERT, "/nonexistent/key.pem"))
        self.addCleanup(s.stop)
        with self.assertRaises(lg.ServerStartError) as cm:
            s.start(ready_timeout=5, attempts=1)
        self.assertIn("exited", str(cm.exception), "gateway ran without its TLS key: %s" % cm.exception)
        self.assertNotEqual(s.exit_code, 0)


if __name__ == "__main__":
    lg.main()
