#!/usr/bin/python3
"""WebSocket rounds written in chunks (flush_chunk): with a chunk of 1 or 2 subscribers per
loop iteration, every subscriber still gets every message exactly once and in order while
others close (cleanly or by reset, many of them while a round is queued) or join mid-run,
and a worker stopped mid-round exits cleanly (run it in a LIVEGATE_SANITIZE build too: a
queued connection freed without leaving the queue is a use-after-free there)."""

import asyncio
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lg  # noqa: E402

import websockets.exceptions  # noqa: E402

SUBS = 50       # subscribers open before the first message
LATE = 5        # subscribers that join mid-run from the starting cursor
N = 300         # messages published
CLOSERS = 12    # of SUBS: leave mid-run, half with a close frame, half by reset
SILENT = 300    # raw subscribers that never read (they make rounds long), reset mid-run


def publish(srv, rm, n, pause=0.002, stop=None):
    """POST n messages over one keep-alive connection; returns their seqs."""
    p = lg.Poster(srv)
    seqs = []
    try:
        for i in range(n):
            if stop is not None and stop.is_set():
                break
            st, body = p.post(rm, "u1", "m%d" % i)
            if st != 202:
                raise AssertionError("publish -> %s %r" % (st, body))
            seqs.append(body["seq"])
            time.sleep(pause)
        return seqs
    finally:
        p.close()


async def read(ws, n, close_after=None, abort=False, timeout=30.0):
    """Read batches until n messages arrived (or close_after of them, then leave).
    Returns (seqs, gap flags, replies)."""
    seqs, gaps, replies = [], [], []
    while len(seqs) < n:
        if close_after is not None and len(seqs) >= close_after:
            if abort:
                ws.transport.abort()  # a reset, no close frame
            else:
                await ws.close()
            return seqs, gaps, replies
        f = await lg.ws_recv_json(ws, timeout)
        if "op" in f:
            replies.append(f)
            continue
        gaps.append(f["gap"])
        seqs.extend(m["seq"] for m in f["msgs"])
    await ws.close()
    return seqs, gaps, replies


class ChunkTestBase:
    chunk_args = []

    def server(self):
        return self.new_server(["--flush-chunk"] + self.chunk_args)

    def test_every_message_once_in_order(self):
        srv = self.server()
        rm = lg.room("chunk")
        start = lg.current_cursor(srv, rm)

        async def go():
            loop = asyncio.get_running_loop()
            path = "/v1/rooms/%s/ws" % rm
            silent = await loop.run_in_executor(
                None, lambda: [lg.RawWS(srv, path) for _ in range(SILENT)])
            socks = [await lg.ws_open(srv, rm, since=start) for _ in range(SUBS)]
            pub = loop.run_in_executor(None, publish, srv, rm, N)

            async def reset_silent():
                # in groups, so that closes land while a round is queued
                await asyncio.sleep(0.1)
                for i in range(0, SILENT, 20):
                    for r in silent[i:i + 20]:
                        r.close()  # unread data: the kernel resets the connection
                    await asyncio.sleep(0.01)
            resets = asyncio.ensure_future(reset_silent())
            tasks = []
            for i, ws in enumerate(socks):
                if i < CLOSERS:
                    # leave at different points of the run
                    after = 1 + (i * (N - 2)) // CLOSERS
                    tasks.append(asyncio.ensure_future(read(ws, N, after, abort=i % 2 == 1)))
                else:
                    tasks.append(asyncio.ensure_future(read(ws, N)))
            await asyncio.sleep(0.2)
            late = [await lg.ws_open(srv, rm, since=start) for _ in range(LATE)]
            tasks += [asyncio.ensure_future(read(ws, N)) for ws in late]
            published = await pub
            await resets
            return published, await asyncio.gather(*tasks)

        published, results = lg.run_async(go(), timeout=90)
        self.assertEqual(len(published), N)
        self.assertEqual(published, list(range(published[0], published[0] + N)))
        for i, (seqs, gaps, replies) in enumerate(results):
            who = "subscriber %d" % i
            self.assertEqual(replies, [], who)
            self.assertNotIn(True, gaps, who)
            if i < CLOSERS:
                # what it got before leaving: a prefix, each once, in order
                self.assertEqual(seqs, published[:len(seqs)], who)
            else:
                self.assertEqual(seqs, published, who)
        # the server survived the closes and still serves
        self.assertEqual(lg.curl(srv.url("/healthz")).status, 200)
        self.assertEqual(srv.stop(), 0, "exit code after SIGTERM")

    def test_stop_mid_round(self):
        """SIGTERM while rounds are queued: the worker closes every WebSocket and exits 0."""
        srv = self.server()
        rm = lg.room("chunkstop")
        stop = threading.Event()

        async def go():
            socks = [await lg.ws_open(srv, rm) for _ in range(SUBS)]
            loop = asyncio.get_running_loop()
            pub = loop.run_in_executor(None, publish, srv, rm, 100000, 0.001, stop)

            async def drain(ws):
                try:
                    while True:
                        await asyncio.wait_for(ws.recv(), 10)
                except websockets.exceptions.ConnectionClosed:
                    return ws.close_code
            tasks = [asyncio.ensure_future(drain(ws)) for ws in socks]
            await asyncio.sleep(0.5)
            code = await loop.run_in_executor(None, srv.stop)
            stop.set()
            try:
                await pub
            except (OSError, AssertionError, lg.http.client.HTTPException):
                pass  # the publisher's connection went away with the server
            return code, await asyncio.gather(*tasks)

        code, closes = lg.run_async(go(), timeout=60)
        self.assertEqual(code, 0, "exit code after SIGTERM")
        # 1001 going away, or the connection dropped when the loop ended
        for c in closes:
            self.assertIn(c, (1001, 1006), closes)
        self.assertNotIn("AddressSanitizer", srv.log_text())


class Chunk1Test(ChunkTestBase, lg.ServerTest):
    chunk_args = ["1"]


class Chunk2ImmediateTest(ChunkTestBase, lg.ServerTest):
    """flush_interval_ms 0: rooms are dispatched from the wake-up itself."""
    chunk_args = ["2", "--flush-interval-ms", "0"]


class WholeRoundTest(ChunkTestBase, lg.ServerTest):
    """flush_chunk 0: the old behaviour, one round at once."""
    chunk_args = ["0"]


if __name__ == "__main__":
    lg.main()
