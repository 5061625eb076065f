#!/usr/bin/python3
"""WebSocket transport: batches, posting over the socket, replies, close codes, pings."""

import asyncio
import json
import os
import signal
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lg  # noqa: E402

import websockets  # noqa: E402
import websockets.exceptions  # noqa: E402

MAXMSG = 1024


def publish(srv, rm, texts, uid="u1"):
    p = lg.Poster(srv)
    try:
        out = []
        for t in texts:
            st, body = p.post(rm, uid, t)
            if st != 202:
                raise AssertionError("publish -> %s %r" % (st, body))
            out.append(body["seq"])
        return out
    finally:
        p.close()


async def close_code_after(ws, timeout=5.0):
    """Wait until the server closes; return the close code it sent."""
    try:
        await asyncio.wait_for(ws.wait_closed(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError("server did not close the connection within %.1fs" % timeout)
    return ws.close_code


def upgrade_headers():
    return ["Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]


class WsTest(lg.ServerTest):
    server_args = ["--ws-max-message-bytes", str(MAXMSG)]

    def check_batch(self, b, rm):
        self.assertNotIn("op", b)
        self.assertEqual(set(b), {"room", "cursor", "msgs", "gap"}, b)
        self.assertEqual(b["room"], rm)
        self.assertIsInstance(b["cursor"], str)

    def test_receive_http_published_batches(self):
        rm = lg.room()

        async def go():
            ws = await lg.ws_open(self.srv, rm)
            try:
                await asyncio.get_running_loop().run_in_executor(None, publish, self.srv, rm, ["w1", "w2", "w3"])
                msgs, batches, replies = await lg.ws_collect(ws, 3, timeout=10)
                return msgs, batches, replies
            finally:
                await ws.close()

        msgs, batches, replies = lg.run_async(go())
        self.assertEqual(replies, [])
        for b in batches:
            self.check_batch(b, rm)
            self.assertIs(b["gap"], False, b)
        self.assertEqual([m["text"] for m in msgs], ["w1", "w2", "w3"])
        self.assertEqual([m["seq"] for m in msgs], [1, 2, 3])
        for m in msgs:
            self.assertEqual(set(m), {"seq", "ts", "type", "uid", "text"}, m)
            self.assertEqual((m["type"], m["uid"]), ("danmaku", "u1"))
        # the last cursor works on the HTTP side: nothing after it
        b = self.srv.poll_json(rm, since=batches[-1]["cursor"])
        self.assertEqual(b["msgs"], [])
        self.assertIs(b["gap"], False)

    def test_post_over_socket_acks_and_delivers(self):
        rm = lg.room()

        async def go():
            ws = await lg.ws_open(self.srv, rm)
            try:
                await ws.send(json.dumps({"op": "danmaku", "id": 7, "uid": "wsu", "text": "from ws"}))
                ack, batch_msgs = None, []
                for _ in range(20):
                    f = await lg.ws_recv_json(ws, 5)
                    if "op" in f:
                        self.assertIsNone(ack, "two replies for one post: %r" % f)
                        ack = f
                    else:
                        self.check_batch(f, rm)
                        batch_msgs.extend(f["msgs"])
                    if ack and batch_msgs:
                        break
                return ack, batch_msgs
            finally:
                await ws.close()

        ack, msgs = lg.run_async(go())
        self.assertEqual(ack, {"op": "ack", "id": 7, "seq": 1}, ack)
        self.assertEqual(len(msgs), 1, msgs)
        self.assertEqual((msgs[0]["seq"], msgs[0]["uid"], msgs[0]["text"]), (1, "wsu", "from ws"))
        # and HTTP sees it too
        st, body = lg.post(self.srv, rm, "h", "after")
        self.assertEqual((st, body), (202, {"seq": 2}))

    def test_id_echoed_as_given(self):
        rm = lg.room()

        async def go():
            ws = await lg.ws_open(self.srv, rm)
            out = []
            try:
                for frame in ({"op": "danmaku", "id": "abc-1", "uid": "u", "text": "s"},
                              {"op": "danmaku", "id": 2.5, "uid": "u", "text": "f"},
                              {"op": "danmaku", "uid": "u", "text": "n"},
                              {"op": "danmaku", "id": None, "uid": "u", "text": "nn"}):
                    await ws.send(json.dumps(frame))
                    for _ in range(20):
                        f = await lg.ws_recv_json(ws, 5)
                        if "op" in f:
                            out.append(f)
                            break
                return out
            finally:
                await ws.close()

        replies = lg.run_async(go())
        self.assertEqual([r.get("op") for r in replies], ["ack"] * 4, replies)
        self.assertEqual([r["id"] for r in replies], ["abc-1", 2.5, None, None], replies)
        self.assertTrue(all("id" in r for r in replies), "id must be present (null when absent): %r" % replies)
        self.assertEqual([r["seq"] for r in replies], [1, 2, 3, 4])

    def test_bad_posts_over_socket(self):
        rm = lg.room()
        cases = [
            ({"op": "danmaku", "id": 1, "uid": "bad uid", "text": "x"}, "bad_uid"),
            ({"op": "danmaku", "id": 2, "uid": "u", "text": ""}, "bad_text"),
            ({"op": "danmaku", "id": 3, "uid": "u", "text": "y" * 201}, "bad_text"),
            ({"op": "danmaku", "id": 4, "text": "x"}, "bad_field"),
            ({"op": "danmaku", "id": 5, "uid": "u", "text": 12}, "bad_field"),
            ({"op": "danmaku", "id": 6, "uid": 5, "text": "x"}, "bad_field"),
        ]

        async def go():
            ws = await lg.ws_open(self.srv, rm)
            out = []
            try:
                for frame, _ in cases:
                    await ws.send(json.dumps(frame))
                    f = await lg.ws_recv_json(ws, 5)
                    out.append(f)
                await ws.send(json.dumps({"op": "danmaku", "id": 99, "uid": "u", "text": "good"}))
                f = await lg.ws_recv_json(ws, 5)
                while "op" not in f:
                    f = await lg.ws_recv_json(ws, 5)
                out.append(f)
                return out
            finally:
                await ws.close()

        replies = lg.run_async(go())
        for (frame, code), r in zip(cases, replies):
            self.assertEqual(r.get("op"), "error", (frame, r))
            self.assertEqual(r.get("id"), frame["id"], (frame, r))
            self.assertEqual(r.get("error"), code, (frame, r))
            self.assertIsInstance(r.get("detail"), str, r)
        self.assertEqual(replies[-1], {"op": "ack", "id": 99, "seq": 1},
                         "bad posts must not consume seq numbers: %r" % replies[-1])

    def test_ping_op_is_answered_and_publishes_nothing(self):
        rm = lg.room()

        async def go():
            ws = await lg.ws_open(self.srv, rm)
            try:
                out = []
                for fid in (1, "hb-2", None):
                    frame = {"op": "ping"} if fid is None else {"op": "ping", "id": fid}
                    await ws.send(json.dumps(frame))
                    out.append(await lg.ws_recv_json(ws, 5))
                await ws.send(json.dumps({"op": "danmaku", "id": 9, "uid": "pinger", "text": "after"}))
                out.append(await lg.ws_recv_json(ws, 5))
                return out
            finally:
                await ws.close()

        self.assertEqual(lg.run_async(go()), [{"op": "pong", "id": 1}, {"op": "pong", "id": "hb-2"},
                                              {"op": "pong", "id": None},
                                              {"op": "ack", "id": 9, "seq": 1}],
                         "pongs echo the id; pings publish nothing (the first danmaku is seq 1)")

    def test_unknown_op_and_bad_json_keep_socket_open(self):
        rm = lg.room()

        async def go():
            ws = await lg.ws_open(self.srv, rm)
            out = []
            try:
                await ws.send(json.dumps({"op": "dance", "id": 41}))
                out.append(await lg.ws_recv_json(ws, 5))
                await ws.send("this is not json")
                out.append(await lg.ws_recv_json(ws, 5))
                await ws.send("[1,2,3]")
                out.append(await lg.ws_recv_json(ws, 5))
                await ws.send('{"op":"danmaku","id":')
                out.append(await lg.ws_recv_json(ws, 5))
                await ws.send(json.dumps({"op": "danmaku", "id": 42, "uid": "u", "text": "still open"}))
                f = await lg.ws_recv_json(ws, 5)
                while "op" not in f:
                    f = await lg.ws_recv_json(ws, 5)
                out.append(f)
                return out
            finally:
                await ws.close()

        r = lg.run_async(go())
        self.assertEqual((r[0].get("op"), r[0].get("id"), r[0].get("error")), ("error", 41, "unknown_op"), r[0])
        for x in r[1:4]:
            self.assertEqual((x.get("op"), x.get("error")), ("error", "bad_json"), x)
            self.assertIn("id", x, x)
            self.assertIsNone(x["id"], x)
        self.assertEqual(r[4], {"op": "ack", "id": 42, "seq": 1}, r[4])

    def test_oversize_message_closes_1009(self):
        rm = lg.room()

        async def go():
            ws = await lg.ws_open(self.srv, rm)
            frame = json.dumps({"op": "danmaku", "id": 1, "uid": "u", "text": "x", "pad": "p" * 2000})
            await ws.send(frame)
            return await close_code_after(ws)

        self.assertEqual(lg.run_async(go()), 1009)

    def test_message_of_exactly_max_bytes_accepted(self):
        rm = lg.room()
        base = {"op": "danmaku", "id": 1, "uid": "u", "text": "exact", "pad": ""}
        n = MAXMSG - len(json.dumps(base, separators=(",", ":")))
        base["pad"] = "p" * n
        frame = json.dumps(base, separators=(",", ":"))
        self.assertEqual(len(frame.encode()), MAXMSG)

        async def go():
            ws = await lg.ws_open(self.srv, rm)
            try:
                await ws.send(frame)
                f = await lg.ws_recv_json(ws, 5)
                while "op" not in f:
                    f = await lg.ws_recv_json(ws, 5)
                return f
            finally:
                await ws.close()

        self.assertEqual(lg.run_async(go()), {"op": "ack", "id": 1, "seq": 1})

    def test_oversize_fragmented_message_closes_1009(self):
        rm = lg.room()
        raw = lg.RawWS(self.srv, "/v1/rooms/%s/ws" % rm)
        try:
            # three 600-byte fragments: each under the limit, the message over it
            raw.send(0x1, b"[" + b" " * 599, fin=False)
            raw.send(0x0, b" " * 600, fin=False)
            raw.send(0x0, b" " * 599 + b"]", fin=True)
            self.assertEqual(raw.wait_close(5), 1009)
        finally:
            raw.close()

    def test_fragmented_message_reassembled(self):
        rm = lg.room()
        raw = lg.RawWS(self.srv, "/v1/rooms/%s/ws" % rm)
        try:
            msg = json.dumps({"op": "danmaku", "id": 5, "uid": "u", "text": "frag 弹幕"}, ensure_ascii=False).encode()
            cut = msg.index("弹".encode()) + 1  # split inside a multi-byte character
            raw.send(0x1, msg[:cut], fin=False)
            raw.send(0x0, msg[cut:], fin=True)
            reply = None
            for _ in range(10):
                op, payload = raw.read_frame(5)
                if op == 0x1:
                    f = json.loads(payload)
                    if "op" in f:
                        reply = f
                        break
            self.assertEqual(reply, {"op": "ack", "id": 5, "seq": 1})
        finally:
            raw.close()

    def test_invalid_utf8_closes_1007(self):
        rm = lg.room()
        raw = lg.RawWS(self.srv, "/v1/rooms/%s/ws" % rm)
        try:
            raw.send(0x1, b"\xff\xfe")
            self.assertEqual(raw.wait_close(5), 1007)
        finally:
            raw.close()

    def test_invalid_utf8_inside_json_string_closes_1007(self):
        rm = lg.room()
        raw = lg.RawWS(self.srv, "/v1/rooms/%s/ws" % rm)
        try:
            raw.send(0x1, b'{"op":"danmaku","id":1,"uid":"u","text":"\xc0\xaf"}')
            self.assertEqual(raw.wait_close(5), 1007)
        finally:
            raw.close()
        # nothing was published
        self.assertEqual(lg.post_ok(self.srv, rm, "u", "after"), 1)

    def test_binary_frame_closes_1003(self):
        rm = lg.room()

        async def go():
            ws = await lg.ws_open(self.srv, rm)
            await ws.send(b'{"op":"danmaku","id":1,"uid":"u","text":"bin"}')
            return await close_code_after(ws)

        self.assertEqual(lg.run_async(go()), 1003)
        self.assertEqual(lg.post_ok(self.srv, rm, "u", "after"), 1, "the binary frame was published")

    def test_since_replays(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        publish(self.srv, rm, ["r%d" % i for i in range(5)])
        mid = self.srv.poll_json(rm, since=cur)["cursor"]
        publish(self.srv, rm, ["s%d" % i for i in range(3)])

        async def go(since, n):
            ws = await lg.ws_open(self.srv, rm, since=since)
            try:
                return await lg.ws_collect(ws, n, timeout=5)
            finally:
                await ws.close()

        msgs, batches, _ = lg.run_async(go(cur, 8))
        self.assertEqual([m["text"] for m in msgs], ["r%d" % i for i in range(5)] + ["s%d" % i for i in range(3)])
        self.assertTrue(all(b["gap"] is False for b in batches), batches)
        msgs, batches, _ = lg.run_async(go(mid, 3))
        self.assertEqual([m["seq"] for m in msgs], [6, 7, 8])

    def test_bad_cursor_or_room_refused_before_upgrade(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)

        async def status(room_name, query):
            try:
                ws = await lg.ws_open(self.srv, room_name, raw_query=query)
            except websockets.exceptions.InvalidStatusCode as e:
                return e.status_code
            await ws.close()
            return 101

        for room_name, query in ((rm, "since=garbage"), (rm, "since=" + cur + "0x"),
                                 ("bad.room", None), ("b" * 65, None)):
            self.assertEqual(lg.run_async(status(room_name, query)), 400, (room_name, query))
        # the refusal carries the JSON error body (checked with curl and upgrade headers)
        r = self.srv.curl("/v1/rooms/%s/ws?since=garbage" % rm, headers=upgrade_headers())
        self.assertError(r, 400, "bad_cursor")
        r = self.srv.curl("/v1/rooms/bad.room/ws", headers=upgrade_headers())
        self.assertError(r, 400, "bad_room")

    def test_two_subscribers_get_same_messages(self):
        rm = lg.room()

        async def go():
            a = await lg.ws_open(self.srv, rm)
            b = await lg.ws_open(self.srv, rm)
            try:
                await asyncio.get_running_loop().run_in_executor(
                    None, publish, self.srv, rm, ["t%d" % i for i in range(20)])
                ma, _, _ = await lg.ws_collect(a, 20, timeout=10)
                mb, _, _ = await lg.ws_collect(b, 20, timeout=10)
                return ma, mb
            finally:
                await a.close()
                await b.close()

        ma, mb = lg.run_async(go())
        self.assertEqual(ma, mb)
        self.assertEqual([m["seq"] for m in ma], list(range(1, 21)))

    def test_burst_of_500_in_order(self):
        rm = lg.room()
        texts = ["b%d" % i for i in range(500)]

        async def go():
            ws = await lg.ws_open(self.srv, rm)
            try:
                fut = asyncio.get_running_loop().run_in_executor(None, publish, self.srv, rm, texts)
                msgs, batches, _ = await lg.ws_collect(ws, 500, timeout=30)
                await fut
                return msgs, batches
            finally:
                await ws.close()

        msgs, batches = lg.run_async(go(), timeout=40)
        self.assertEqual([m["text"] for m in msgs], texts)
        self.assertEqual([m["seq"] for m in msgs], list(range(1, 501)))
        self.assertFalse([b for b in batches if b["gap"]])

    def test_abrupt_disconnects_cleaned_up(self):
        rm = lg.room()
        raws = [lg.RawWS(self.srv, "/v1/rooms/%s/ws" % rm) for _ in range(20)]
        publish(self.srv, rm, ["x%d" % i for i in range(5)])
        for r in raws:  # RST, no close frame
            r.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            r.close()
        publish(self.srv, rm, ["y%d" % i for i in range(200)])
        self.assertTrue(self.srv.alive())
        lg.wait_for(lambda: self.srv.metrics().get('livegate_connections{transport="ws"}') == 0,
                    timeout=10, what="ws connections back to 0 after abrupt disconnects")
        self.assertEqual(self.srv.curl("/healthz").status, 200)

    def test_client_close_is_echoed(self):
        rm = lg.room()

        async def go():
            ws = await lg.ws_open(self.srv, rm)
            await ws.close(1000, "bye")
            return ws.close_code

        self.assertEqual(lg.run_async(go()), 1000)


class WsPingTest(lg.ServerTest):
    server_args = ["--ws-ping-interval", "1", "--io-timeout", "2"]

    def test_server_pings_idle_connection(self):
        before = self.srv.metrics().get("livegate_ws_pings_total", 0)
        raw = lg.RawWS(self.srv, "/v1/rooms/%s/ws" % lg.room())
        try:
            t0 = time.monotonic()
            got = None
            for _ in range(20):
                op, payload = raw.read_frame(4)
                if op == 0x9:
                    got = payload
                    break
            self.assertIsNotNone(got, "no ping frame")
            self.assertLess(time.monotonic() - t0, 4)
            raw.send(0xA, got)  # pong
            self.assertGreaterEqual(self.srv.metrics().get("livegate_ws_pings_total", 0) - before, 1)
        finally:
            raw.close()

    def test_no_pong_drops_connection(self):
        before = self.srv.metrics()
        raw = lg.RawWS(self.srv, "/v1/rooms/%s/ws?client=nopong-1" % lg.room())
        try:
            t0 = time.monotonic()
            ended = False
            for _ in range(100):
                try:
                    op, _ = raw.read_frame(max(0.1, 12 - (time.monotonic() - t0)))
                except (EOFError, ConnectionResetError):
                    ended = True
                    break
                except socket.timeout:
                    break
                if op == 0x8:
                    ended = True
                    break
            self.assertTrue(ended, "connection not dropped although pings went unanswered for 12 s")
            self.assertLess(time.monotonic() - t0, 1 + 2 + 3, "dropped too late")
        finally:
            raw.close()
        # counted as a ping timeout, and against the client like any unclean close
        after = self.srv.metrics()
        for name in ("livegate_ws_ping_timeouts_total", "livegate_adapt_disconnects_total"):
            self.assertEqual(after.get(name, 0) - before.get(name, 0), 1, name)

    def test_talking_client_is_not_pinged(self):
        # Anything that arrives proves the peer alive: a client that sends a
        # message every 0.4 s is never pinged (interval 1 s), so it stays
        # connected for 5 s (past ping + io_timeout) without answering a ping.
        raw = lg.RawWS(self.srv, "/v1/rooms/%s/ws" % lg.room())
        try:
            t0 = time.monotonic()
            i = 0
            while time.monotonic() - t0 < 5:
                i += 1
                raw.send(0x1, json.dumps({"op": "danmaku", "id": i, "uid": "talker",
                                          "text": "t%d" % i}).encode())
                end = time.monotonic() + 0.4
                while time.monotonic() < end:
                    try:
                        op, payload = raw.read_frame(max(0.05, end - time.monotonic()))
                    except socket.timeout:
                        break
                    self.assertNotEqual(op, 0x9, "pinged although it sent a message every 0.4 s")
                    self.assertNotEqual(op, 0x8, "closed: %r" % payload)
            self.assertGreaterEqual(i, 10)
        finally:
            raw.close()

    def test_answering_client_stays_connected(self):
        rm = lg.room()

        async def go():
            ws = await lg.ws_open(self.srv, rm)  # websockets answers pings itself
            try:
                await asyncio.sleep(5)  # several ping intervals and io_timeouts
                self.assertTrue(ws.open, "connection closed although pongs were sent (code %s)" % ws.close_code)
                await asyncio.get_running_loop().run_in_executor(None, publish, self.srv, rm, ["alive"])
                msgs, _, _ = await lg.ws_collect(ws, 1, timeout=5)
                return msgs
            finally:
                await ws.close()

        self.assertEqual([m["text"] for m in lg.run_async(go())], ["alive"])


class WsShutdownTest(lg.ServerTest):
    def test_shutdown_closes_1001(self):
        srv = self.new_server()
        rm = lg.room()

        async def go():
            ws = await lg.ws_open(srv, rm)
            srv.proc.send_signal(signal.SIGTERM)
            return await close_code_after(ws, 5)

        self.assertEqual(lg.run_async(go()), 1001)
        try:
            srv.proc.wait(5)
        except Exception:
            self.fail("gateway did not exit within 5 s of SIGTERM")


class WsBatchLimitTest(lg.ServerTest):
    server_args = ["--batch-max-bytes", "4096", "--ring-slots", "1024", "--ring-bytes", "65536"]
    timeout = 90

    def test_frames_respect_batch_max_bytes(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        texts = [("%03d" % i) + "弹" * 190 for i in range(40)]  # ~600 bytes each
        publish(self.srv, rm, texts)

        async def go():
            ws = await lg.ws_open(self.srv, rm, since=cur)
            sizes, msgs = [], []
            try:
                for _ in range(100):
                    if len(msgs) >= 40:
                        break
                    raw = await asyncio.wait_for(ws.recv(), 5)
                    sizes.append(len(raw.encode("utf-8")))
                    f = json.loads(raw)
                    self.assertNotIn("op", f)
                    self.assertIs(f["gap"], False, f)
                    msgs.extend(f["msgs"])
                return sizes, msgs
            finally:
                await ws.close()

        sizes, msgs = lg.run_async(go())
        self.assertEqual([m["text"] for m in msgs], texts)
        self.assertLessEqual(max(sizes), 4096 + 512, "ws frame sizes %r with batch_max_bytes 4096" % sizes)
        self.assertGreaterEqual(len(sizes), 5, sizes)

    def test_ws_gap_when_ring_overflowed(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        publish(self.srv, rm, ["%04d" % i + "🎉" * 196 for i in range(120)])  # ~100 KB > 64 KiB ring

        async def go():
            ws = await lg.ws_open(self.srv, rm, since=cur)
            try:
                return await lg.ws_recv_json(ws, 5)
            finally:
                await ws.close()

        f = lg.run_async(go())
        self.assertIs(f["gap"], True, "ring overflowed but the first ws batch has gap:false (first seq %r)"
                      % [m["seq"] for m in f["msgs"][:1]])
        self.assertGreater(f["msgs"][0]["seq"], 1)


class WsSlowReaderTest(lg.ServerTest):
    """A subscriber that stops reading while the ring wraps: it must get everything, or
    a batch with gap:true where messages were lost; never a silent gap, never a stall."""
    server_args = ["--ring-slots", "1024", "--ring-bytes", "65536"]
    timeout = 120

    def test_slow_reader_never_silent_gap(self):
        rm = lg.room()
        cur = lg.current_cursor(self.srv, rm)
        raw = lg.RawWS(self.srv, "/v1/rooms/%s/ws?since=%s" % (rm, cur))
        try:
            raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            # ~8.5 MB while the reader sleeps: more than the kernel's socket buffers
            # (tcp_wmem max 4 MB here) plus the 64 KiB ring can hold
            n = 10000
            seqs = publish(self.srv, rm, ["%05d" % i + "🎉" * 195 for i in range(n)])
            last_seq = seqs[-1]
            last, gaps, frames = 0, 0, 0
            deadline = time.monotonic() + 60
            while last < last_seq:
                self.assertLess(time.monotonic(), deadline, "stalled at seq %d of %d" % (last, last_seq))
                op, payload = raw.read_frame(10)
                if op == 0x9:
                    raw.send(0xA, payload)
                    continue
                self.assertEqual(op, 0x1, "unexpected opcode %d (%r)" % (op, payload[:80]))
                f = json.loads(payload)
                self.assertNotIn("op", f)
                frames += 1
                if not f["msgs"]:
                    continue
                first = f["msgs"][0]["seq"]
                if f["gap"]:
                    gaps += 1
                    self.assertGreater(first, last + 1, "gap:true but nothing was skipped (last %d, first %d)"
                                       % (last, first))
                else:
                    self.assertEqual(first, last + 1, "silent gap: after seq %d came %d with gap:false"
                                     % (last, first))
                ss = [m["seq"] for m in f["msgs"]]
                self.assertEqual(ss, list(range(first, first + len(ss))))
                last = ss[-1]
        finally:
            raw.close()
        if gaps:
            m = self.srv.metrics()
            self.assertGreaterEqual(m.get("livegate_gaps_total", 0), gaps,
                                    "%d gaps delivered but livegate_gaps_total is %r" % (gaps, m.get("livegate_gaps_total")))
        print("slow reader: %d frames, %d gaps" % (frames, gaps))
        self.assertGreaterEqual(gaps, 1, "8.5 MB through a 64 KiB ring to a sleeping reader without any gap")


class WsReplyBacklogTest(lg.ServerTest):
    """Replies a client does not read: past 64 waiting the gateway stops reading from it
    (backpressure) instead of closing it; nothing is lost. (The 1008 hard cap at 256
    waiting replies cannot be reached from a client while that backpressure works.)"""
    timeout = 120

    def test_unread_replies_pause_reading_then_all_arrive(self):
        # A client that sends 300 ops and reads nothing: past 64 waiting replies the
        # gateway stops reading from it (its frames wait in TCP buffers), stays healthy,
        # and once the client reads again every reply arrives, none lost.
        rm = lg.room()
        raw = lg.RawWS(self.srv, "/v1/rooms/%s/ws" % rm)
        try:
            raw.sock.sendall(lg.RawWS.frame(0x1, b'{"op":"nope","id":1}') * 300)
            time.sleep(3)
            self.assertEqual(self.srv.curl("/healthz").status, 200)
            n = 0
            for _ in range(1000):
                op, payload = raw.read_frame(10)
                self.assertEqual(op, 0x1, (op, payload[:80]))
                f = json.loads(payload)
                if "op" not in f:
                    continue  # a batch
                self.assertEqual((f.get("op"), f.get("error")), ("error", "unknown_op"))
                n += 1
                if n == 300:
                    break
            self.assertEqual(n, 300)
        finally:
            raw.close()

    def test_reading_client_gets_all_replies(self):
        rm = lg.room()
        raw = lg.RawWS(self.srv, "/v1/rooms/%s/ws" % rm)
        try:
            raw.sock.sendall(lg.RawWS.frame(0x1, b'{"op":"nope","id":1}') * 300)
            n = 0
            for _ in range(1000):
                op, payload = raw.read_frame(5)
                self.assertEqual(op, 0x1, (op, payload[:80]))
                f = json.loads(payload)
                self.assertEqual((f.get("op"), f.get("error")), ("error", "unknown_op"))
                n += 1
                if n == 300:
                    break
            self.assertEqual(n, 300)
        finally:
            raw.close()


if __name__ == "__main__":
    lg.main()
