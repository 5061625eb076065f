#!/usr/bin/env python3
"""Crash test for gifts: kill -9 the gateway at random moments while clients send.

At least 5,000 signed gifts (LG_CRASH_GIFTS) go out from 8 sender threads over
keep-alive connections; a gift that is not acknowledged (connection reset,
timeout, 409 in_progress, 503 busy) is retried with the same txn (the same
body) until it is. Meanwhile the gateway is SIGKILLed after a random 50-400 ms
of uptime and restarted at once on the same data dir, at least 50 times
(LG_CRASH_KILLS). Afterwards, with a final clean restart:

  * the journal (<data_dir>/gifts.journal, gateway/journal.h) parses to its end
    with valid CRC-32Cs, and every acknowledged gift is in it exactly once
    (and nothing else is: every gift was retried until acknowledged);
  * every acknowledged receipt is byte-identical to the receipt stored in the
    journal record of its txn, verifies against the server key over the
    documented receipt bytes, and a resend of every gift answers the same bytes;
  * each record matches what the client signed, with value = price x count;
  * the leaderboards (n=100, read > 1 s after the restart) equal the sums over
    the journal.

Gifts are signed by gift_signer.js with node's built-in Ed25519 (OpenSSL; fast
enough for thousands), cross-checked against tweetnacl on a sample.
Prints the figures at the end (kills, gifts, retries, acked, time).

Run: LIVEGATE_BIN=build/livegate /usr/bin/python3 tests/integration/gift_crash_test.py
"""

import http.client
import json
import os
import queue
import random
import signal
import sys
import threading
import time
import unittest

import gifts_test as gt
import lg

N_GIFTS = int(os.environ.get("LG_CRASH_GIFTS", "5000"))
MIN_KILLS = int(os.environ.get("LG_CRASH_KILLS", "50"))
THREADS = 8
ROOMS = 4
UIDS = 20
UPTIME_MS = (50, 400)
TIME_LIMIT_S = 420  # the whole send/kill phase; ctest's limit is 600 s
SKEW_S = 900        # presigned ts must stay fresh for the whole run (default 300 would also do)


def setUpModule():
    gt.ensure_node_deps()


def _alarm(signum, frame):
    raise AssertionError("gift crash test timed out (SIGALRM)")


class Control:
    """State shared by the killer and the senders."""

    def __init__(self, srv):
        self.srv = srv
        self.lock = threading.Lock()
        self.port = srv.port           # None while the gateway is down
        self.kills = 0
        self.restart_s = []
        self.stop_killing = threading.Event()
        self.abort = threading.Event()  # something went wrong: everyone stops
        self.errors = []
        self.deadline = time.monotonic() + TIME_LIMIT_S
        # sender figures
        self.sends = 0
        self.retries = 0
        self.transport_errors = 0
        self.in_progress = 0
        self.busy = 0

    def error(self, msg):
        with self.lock:
            self.errors.append(msg)
        self.abort.set()


def killer(ctl, rng):
    srv = ctl.srv
    try:
        while not ctl.stop_killing.is_set() and not ctl.abort.is_set():
            time.sleep(rng.uniform(*UPTIME_MS) / 1000.0)
            if not srv.alive():
                ctl.error("the gateway died on its own (exit %r) after %d kills" % (srv.proc.poll(), ctl.kills))
                return
            with ctl.lock:
                ctl.port = None
            gt.kill9(srv)
            ctl.kills += 1
            t0 = time.monotonic()
            try:
                srv.start(ready_timeout=20)
            except lg.ServerStartError as e:
                ctl.error("restart after kill %d failed: %s" % (ctl.kills, e))
                return
            ctl.restart_s.append(time.monotonic() - t0)
            with ctl.lock:
                ctl.port = srv.port
            if time.monotonic() > ctl.deadline:
                ctl.error("time limit (%d s) reached during the kill phase" % TIME_LIMIT_S)
                return
    except Exception as e:  # noqa: BLE001 - reported by the test
        ctl.error("killer: %r" % e)


def sender(ctl, work, gifts, acks, done_feeding):
    conn, conn_port = None, None
    try:
        while not ctl.abort.is_set():
            try:
                i = work.get(timeout=0.2)
            except queue.Empty:
                if done_feeding.is_set() and work.empty():
                    return
                continue
            room, body = gifts[i]["room"], gifts[i]["raw"]
            attempts = 0
            while True:
                if ctl.abort.is_set():
                    return
                if time.monotonic() > ctl.deadline:
                    ctl.error("time limit (%d s) reached with gift %d unacknowledged" % (TIME_LIMIT_S, i))
                    return
                with ctl.lock:
                    port = ctl.port
                if port is None:
                    time.sleep(0.01)
                    continue
                if conn is None or conn_port != port:
                    if conn is not None:
                        conn.close()
                    conn, conn_port = http.client.HTTPConnection(lg.HOST, port, timeout=5), port
                attempts += 1
                try:
                    conn.request("POST", "/v1/rooms/%s/gifts" % room, body=body,
                                 headers={"Content-Type": "application/json",
                                          "Content-Length": str(len(body))})
                    r = conn.getresponse()
                    data = r.read()
                    status = r.status
                    if r.getheader("connection", "").lower() == "close":
                        conn.close()
                        conn = None
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = None
                    with ctl.lock:
                        ctl.transport_errors += 1
                    time.sleep(0.005)
                    continue
                if status == 200:
                    acks[i] = data
                    break
                try:
                    err = json.loads(data).get("error")
                except ValueError:
                    err = None
                if status == 409 and err == "in_progress":
                    with ctl.lock:
                        ctl.in_progress += 1
                    time.sleep(0.02)
                    continue
                if status == 503 and err == "busy":
                    with ctl.lock:
                        ctl.busy += 1
                    time.sleep(0.05)
                    continue
                ctl.error("gift %d (txn %s, room %s), attempt %d: unexpected answer %d %r" % (
                    i, gifts[i]["body"]["txn"], room, attempts, status, data[:300]))
                return
            with ctl.lock:
                ctl.sends += attempts
                ctl.retries += attempts - 1
    except Exception as e:  # noqa: BLE001 - reported by the test
        ctl.error("sender: %r" % e)
    finally:
        if conn is not None:
            conn.close()


class GiftCrash(unittest.TestCase):
    def setUp(self):
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(580)
        self.addCleanup(signal.alarm, 0)

    def test_kill9_while_sending(self):
        t_start = time.monotonic()
        seed = int(os.environ.get("LG_CRASH_SEED", str(random.SystemRandom().randrange(1 << 30))))
        print("  [seed %d: LG_CRASH_SEED=%d reproduces the gift plan and the kill intervals]" % (seed, seed))
        rng = random.Random(seed)
        fast = gt.NodeSigner("openssl")
        self.addCleanup(fast.close)
        nacl = gt.NodeSigner("tweetnacl")
        self.addCleanup(nacl.close)

        srv = lg.Server(["--admin-token", gt.TOKEN, "--gift-max-skew", str(SKEW_S)])
        self.addCleanup(srv.stop)
        srv.start()
        server_pk = gt.get_server_pk(srv)
        prices = gt.get_catalog(srv)
        gift_ids = sorted(prices)
        viewers = [gt.Viewer(uid="crash_u%02d" % k, seed="%064x" % rng.getrandbits(256), sg=fast)
                   for k in range(UIDS)]
        for v in viewers:
            v.register(srv)
        rooms = ["crash_r%d_%s" % (k, os.urandom(3).hex()) for k in range(ROOMS)]

        run_tag = os.urandom(3).hex()
        gifts = []

        def plan(n):
            reqs = []
            now = gt.now_ms()
            for _ in range(n):
                k = len(gifts) + len(reqs)
                v = viewers[rng.randrange(UIDS)]
                reqs.append({"id": k, "seed_hex": v.seed, "room": rooms[rng.randrange(ROOMS)], "uid": v.uid,
                             "gift": gift_ids[rng.randrange(len(gift_ids))], "count": rng.randint(1, 5),
                             "txn": "k%s-%05d" % (run_tag, k), "ts": now, "nonce": "%032x" % rng.getrandbits(128)})
            outs = fast.batch(reqs)
            for req, out in zip(reqs, outs):
                self.assertEqual(out["id"], req["id"])
                raw = json.dumps(out["body"], separators=(",", ":")).encode()
                gifts.append({"room": req["room"], "body": out["body"], "raw": raw, "pk": out["pk"]})
            return reqs

        t0 = time.monotonic()
        first = plan(N_GIFTS)
        sign_s = time.monotonic() - t0
        # OpenSSL and tweetnacl must agree (Ed25519 is deterministic).
        sample = first[:: max(1, len(first) // 25)]
        for req, out in zip(sample, nacl.batch(sample)):
            self.assertEqual(out["body"], gifts[req["id"]]["body"], "OpenSSL and tweetnacl signatures differ")

        acks = {}  # gift number -> the acknowledged receipt bytes
        work = queue.Queue()
        for i in range(len(gifts)):
            work.put(i)
        done_feeding = threading.Event()
        ctl = Control(srv)
        t_send = time.monotonic()
        kt = threading.Thread(target=killer, args=(ctl, random.Random(rng.getrandbits(64))), daemon=True)
        senders = [threading.Thread(target=sender, args=(ctl, work, gifts, acks, done_feeding), daemon=True)
                   for _ in range(THREADS)]
        kt.start()
        for t in senders:
            t.start()
        # Keep the senders busy until the gateway has been killed often enough.
        while not ctl.abort.is_set():
            if ctl.kills >= MIN_KILLS:
                break
            if work.qsize() < 300:
                plan(500)
                for i in range(len(gifts) - 500, len(gifts)):
                    work.put(i)
            time.sleep(0.05)
        done_feeding.set()
        for t in senders:
            t.join(max(1.0, ctl.deadline - time.monotonic() + 10))
        ctl.stop_killing.set()
        kt.join(60)
        send_s = time.monotonic() - t_send
        self.assertFalse(any(t.is_alive() for t in senders + [kt]), "threads did not finish")
        self.assertEqual(ctl.errors, [], "errors during the kill phase")
        n = len(gifts)
        acked = [i for i in range(n) if i in acks]
        self.assertEqual(len(acked), n, "every gift was retried until acknowledged")
        self.assertGreaterEqual(ctl.kills, MIN_KILLS)

        # ---- final clean restart; the journal -------------------------------------------
        self.assertTrue(srv.alive())
        self.assertEqual(srv.stop(), 0, "the gateway should exit 0 on SIGTERM")
        recs = gt.read_journal(os.path.join(srv.data_dir, "gifts.journal"))
        srv.start()
        t_restart = time.monotonic()
        by_txn = {}
        dup = []
        for off, _, o in recs:
            if o["txn"] in by_txn:
                dup.append((o["txn"], off))
            by_txn[o["txn"]] = o
        self.assertEqual(dup, [], "txns journaled more than once (charged twice)")
        index = {g["body"]["txn"]: i for i, g in enumerate(gifts)}
        strangers = [t for t in by_txn if t not in index]
        self.assertEqual(strangers, [], "journal records for txns nobody sent")
        missing = [gifts[i]["body"]["txn"] for i in acked if gifts[i]["body"]["txn"] not in by_txn]
        self.assertEqual(missing, [], "acknowledged gifts missing from the journal")
        self.assertEqual(len(recs), len(acked))
        seqs = {}
        for i in acked:
            g, o = gifts[i], by_txn[gifts[i]["body"]["txn"]]
            b = g["body"]
            want = (g["room"], b["uid"], b["gift"], b["count"], b["ts"], b["nonce"], b["sig"],
                    prices[b["gift"]] * b["count"])
            got = (o["room"], o["uid"], o["gift"], o["count"], o["ts"], o["nonce"], o["sig"], o["value"])
            self.assertEqual(got, want, "journal record of txn %s" % b["txn"])
            self.assertEqual(acks[i], o["receipt"].encode(),
                             "acknowledged receipt differs from the journal's for txn %s" % b["txn"])
            rc = json.loads(acks[i])
            self.assertEqual((rc["txn"], rc["seq"], rc["status"]), (b["txn"], o["seq"], "accepted"))
            seqs.setdefault(o["room"], []).append(o["seq"])
        for rm, ss in seqs.items():
            self.assertEqual(len(ss), len(set(ss)), "gift seqs repeated in room %s" % rm)

        # Every receipt verifies (OpenSSL for all, tweetnacl for a sample).
        vreq = []
        for i in acked:
            b, rc = gifts[i]["body"], json.loads(acks[i])
            vreq.append({"op": "verify_receipt", "pk": server_pk, "room": gifts[i]["room"], "uid": b["uid"],
                         "txn": b["txn"], "seq": rc["seq"], "gift": b["gift"], "count": b["count"],
                         "value": prices[b["gift"]] * b["count"], "receipt_sig": rc["receipt_sig"]})
        bad = [r["txn"] for r, out in zip(vreq, fast.batch(vreq)) if not out["ok"]]
        self.assertEqual(bad, [], "receipts whose signature does not verify")
        vs = vreq[:: max(1, len(vreq) // 50)]
        self.assertTrue(all(out["ok"] for out in nacl.batch(vs)), "tweetnacl rejects a receipt")

        # ---- the restarted gateway: leaderboards and retries -----------------------------
        self.assertEqual(gt.get_server_pk(srv), server_pk, "server key changed")
        want = {rm: {} for rm in rooms}
        for o in by_txn.values():
            want[o["room"]][o["uid"]] = want[o["room"]].get(o["uid"], 0) + o["value"]
        time.sleep(max(0.0, 1.2 - (time.monotonic() - t_restart)))
        for rm in rooms:
            self.assertEqual(gt.get_leaderboard(srv, rm, 100)[1], want[rm], "leaderboard of %s" % rm)

        resend_fail = []
        rq = queue.Queue()
        for i in acked:
            rq.put(i)

        def resend():
            c = http.client.HTTPConnection(lg.HOST, srv.port, timeout=10)
            try:
                while True:
                    try:
                        i = rq.get_nowait()
                    except queue.Empty:
                        return
                    r = gt.send(srv, gifts[i]["room"], gifts[i]["raw"], conn=c)
                    if r.status != 200 or r.body != acks[i]:
                        resend_fail.append((gifts[i]["body"]["txn"], r.status, r.body[:200]))
            finally:
                c.close()

        ts = [threading.Thread(target=resend, daemon=True) for _ in range(THREADS)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        self.assertEqual(resend_fail[:10], [], "resends after the final restart (%d differ)" % len(resend_fail))
        for rm in rooms:  # the resends charged nothing
            self.assertEqual(gt.get_leaderboard(srv, rm, 100)[1], want[rm], "leaderboard of %s after resends" % rm)
        srv.stop()

        total = time.monotonic() - t_start
        rs = sorted(ctl.restart_s)
        print("\n  crash test figures: kills=%d gifts=%d acked=%d sends=%d retries=%d "
              "(transport errors %d, in_progress %d, busy %d) journal_records=%d"
              % (ctl.kills, n, len(acked), ctl.sends, ctl.retries, ctl.transport_errors, ctl.in_progress,
                 ctl.busy, len(recs)))
        print("  time: signing %.1fs, send/kill phase %.1fs, total %.1fs; restart median %.0f ms, max %.0f ms"
              % (sign_s, send_s, total, 1000 * rs[len(rs) // 2], 1000 * rs[-1]))
        sys.stdout.flush()


if __name__ == "__main__":
    lg.main()
