#!/usr/bin/python3
"""netem/ns.sh with the real gateway: two network namespaces joined by a veth pair, the
gateway in the gw one bound to 10.77.0.1, curl in the cl one. Applies the 3g-lossy profile
(nft numgen loss, tbf, lg-relay delay through a redirect) and a one-shot blackout.

Needs root and network namespaces; without them it prints "SKIP: why" and exits 0 (ctest
reports it as skipped). The namespaces get names unique to this run, so a developer's own
`ns.sh up` (lg-gw / lg-cl) and concurrent runs do not collide; they are removed in a
finally block (tearDownClass) whatever happens.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lg  # noqa: E402

NS_SH = os.path.join(lg.REPO, "netem", "ns.sh")
GW_IP = "10.77.0.1"
PORT = 8080
URL = "http://%s:%d/healthz" % (GW_IP, PORT)


def skip_reason():
    if os.geteuid() != 0:
        return "not root (network namespaces need root)"
    if not shutil.which("ip"):
        return "no ip(8) (iproute2)"
    probe = "lgprobe%d" % os.getpid()
    p = subprocess.run(["ip", "netns", "add", probe], capture_output=True, timeout=10)
    if p.returncode != 0:
        return "ip netns add failed: %s" % p.stderr.decode(errors="replace").strip()
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=10)
    return None


class NetnsTest(unittest.TestCase):
    timeout = 60

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="lgns-")
        tag = "lgt%d" % os.getpid()
        cls.env = lg.clean_env()
        cls.env.update(NETEM_GW=tag + "-gw", NETEM_CL=tag + "-cl",
                       NETEM_STATE=os.path.join(cls.tmp, "state"), NETEM_GW_PORT=str(PORT))
        cls.gw_proc = None
        cls.gw_log = os.path.join(cls.tmp, "livegate.log")

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.gw_proc is not None and cls.gw_proc.poll() is None:
                cls.gw_proc.terminate()
                try:
                    cls.gw_proc.wait(5)
                except subprocess.TimeoutExpired:
                    cls.gw_proc.kill()
                    cls.gw_proc.wait(5)
        finally:
            subprocess.run([NS_SH, "down"], env=cls.env, capture_output=True, timeout=60)
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        signal.signal(signal.SIGALRM, lg._on_alarm)
        signal.alarm(self.timeout)
        self.addCleanup(signal.alarm, 0)

    def ns(self, *args, check=True, timeout=30):
        p = subprocess.run([NS_SH] + list(args), env=self.env, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=timeout)
        out = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
        if check and p.returncode != 0:
            raise AssertionError("ns.sh %s -> %d\n%s" % (" ".join(args), p.returncode, out))
        return p.returncode, out

    def curl_cl(self, max_time):
        """curl from the client namespace -> (curl rc, HTTP status, time_starttransfer s)."""
        rc, out = self.ns("exec", "cl", "curl", "-sS", "--noproxy", "*", "--max-time", str(max_time),
                          "-o", "/dev/null", "-w", "%{http_code} %{time_starttransfer}", URL,
                          check=False, timeout=max_time + 10)
        m = re.search(r"(\d{3}) ([0-9.]+)", out)
        return rc, int(m.group(1)) if m else 0, float(m.group(2)) if m else 0.0

    def drops(self):
        _, out = self.ns("exec", "gw", "nft", "list", "table", "inet", "lgnetem")
        return sum(int(n) for n in re.findall(r"counter packets (\d+)", out))

    def test_client_stall_detection_across_a_blackout(self):
        """A pinned-WebSocket livegate-client rides out an 8 s link blackout. With
        --stall-ms it notices the silent connection, reconnects and resumes from its
        cursor; with --stall-ms 0 its WebSocket survives the blackout unnoticed (TCP
        retransmits). Both deliver every message exactly once."""
        port = PORT + 1
        room = "stall"
        self.ns("up")
        self.ns("profile", "good")
        gw = subprocess.Popen(
            [NS_SH, "exec", "gw", lg.binary(), "--bind", GW_IP, "--port", str(port), "--workers", "1",
             "--data-dir", os.path.join(self.tmp, "data-stall")],
            env=self.env, stdin=subprocess.DEVNULL, stdout=open(self.gw_log, "ab"),
            stderr=subprocess.STDOUT)
        procs = [gw]
        try:
            base = "http://%s:%d" % (GW_IP, port)
            lg.wait_for(lambda: self.ns("exec", "cl", "curl", "-sS", "--max-time", "2", "-o", "/dev/null",
                                        "-w", "%{http_code}", base + "/healthz", check=False)[1].strip() == "200",
                        10, what="gateway reachable from cl")
            client = os.path.join(os.path.dirname(lg.binary()), "livegate-client")
            outs = {}
            for stall in ("2000", "0"):
                out = os.path.join(self.tmp, "client-%s.json" % stall)
                outs[stall] = out
                procs.append(subprocess.Popen(
                    [NS_SH, "exec", "cl", client, "--url", base, "--room", room, "--transport", "ws",
                     "--stall-ms", stall, "--print", "stats", "--stats-interval", "60", "--duration", "32"],
                    env=self.env, stdin=subprocess.DEVNULL, stdout=open(out, "wb"),
                    stderr=subprocess.DEVNULL))
            time.sleep(2)
            # the publisher runs in the gateway's namespace, so it keeps publishing
            # through the blackout: 10 messages/s for 16 s, counting what was accepted
            pub = subprocess.Popen(
                [NS_SH, "exec", "gw", sys.executable, "-c",
                 "import http.client,json,time\n"
                 "ok=0\n"
                 "c=http.client.HTTPConnection('%s',%d,timeout=5)\n"
                 "for i in range(160):\n"
                 " c.request('POST','/v1/rooms/%s/danmaku',json.dumps({'uid':'u%%d'%%i,'text':'m%%d'%%i}),"
                 "{'Content-Type':'application/json'})\n"
                 " r=c.getresponse(); r.read(); ok+=r.status==202\n"
                 " time.sleep(0.1)\n"
                 "print(ok)\n" % (GW_IP, port, room)],
                env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
            procs.append(pub)
            time.sleep(4)
            self.ns("blackout", "8")  # returns at once; the link comes back after 8 s
            published = int(pub.communicate(timeout=40)[0].decode().strip().splitlines()[-1])
            self.assertGreater(published, 150)
            finals = {}
            for stall, p in zip(("2000", "0"), procs[1:3]):
                self.assertEqual(p.wait(40), 0)
                lines = [json.loads(x) for x in open(outs[stall]).read().splitlines() if x.strip()]
                finals[stall] = [x for x in lines if x.get("final")][-1]
            for stall, st in finals.items():
                msg = "stall-ms %s: %r" % (stall, st)
                self.assertEqual((st["delivered"], st["duplicates"], st["gaps"]), (published, 0, 0), msg)
            self.assertGreaterEqual(finals["2000"]["disconnects"], 1,
                                    "the stalled WebSocket was not noticed: %r" % finals["2000"])
            self.assertEqual(finals["0"]["disconnects"], 0,
                             "without stall detection the WebSocket should ride out the blackout: %r"
                             % finals["0"])
            print("p95 ms with / without stall detection: %s / %s" %
                  (finals["2000"].get("lat_p95_ms"), finals["0"].get("lat_p95_ms")), file=sys.stderr)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
                    try:
                        p.wait(5)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait(5)

    def test_loss_delay_and_blackout(self):
        self.ns("up")
        self.ns("up")  # idempotent
        self.gw_proc = type(self).gw_proc = subprocess.Popen(
            [NS_SH, "exec", "gw", lg.binary(), "--bind", GW_IP, "--port", str(PORT), "--workers", "1",
             "--data-dir", os.path.join(self.tmp, "data")],
            env=self.env, stdin=subprocess.DEVNULL, stdout=open(self.gw_log, "ab"),
            stderr=subprocess.STDOUT)
        lg.wait_for(lambda: self.curl_cl(2)[1] == 200, 10, what="gateway reachable from cl")

        # loss (nft numgen), rates (tbf), delay (lg-relay behind an nft redirect)
        rc, out = self.ns("profile", "3g-lossy")
        self.assertIn("numgen", out)
        self.assertIn("lg-relay --delay-ms 150 --jitter-ms 60", out)
        for _ in range(4):
            rc, status, ttfb = self.curl_cl(15)
            self.assertEqual((rc, status), (0, 200), "curl under loss failed")
            # request and response each cross the relay: at least 2 x (150 - 60) ms
            self.assertGreaterEqual(ttfb, 0.180)
        # the loss is real and partial: datagrams into the gw namespace, counted by nft
        sent = 400
        self.ns("exec", "cl", sys.executable, "-c",
                "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                "for i in range(%d):\n s.sendto(b'x',('%s',9)); time.sleep(0.002)" % (sent, GW_IP))
        dropped = self.drops()
        self.assertGreater(dropped, 0, "5%% loss dropped none of %d datagrams" % sent)
        self.assertLess(dropped, sent // 2, "far more than 5%% dropped")
        _, out = self.ns("ctl", "stats")
        self.assertRegex(out, r'"name":"3g-lossy".*"accepted":[1-9]')

        # a blackout: curl fails while the link is down, works again after
        self.ns("blackout", "3")
        rc, status, _ = self.curl_cl(1.5)
        self.assertNotEqual(rc, 0, "curl succeeded during the blackout")
        self.assertEqual(status, 0)
        lg.wait_for(lambda: self.curl_cl(5)[1] == 200, 20, interval=0.5, what="recovery after blackout")

        # the periodic blackout loop runs in the background and stops with the next profile / down
        _, out = self.ns("profile", "subway")
        self.assertIn("blackouts:", out)
        _, out = self.ns("status")
        pid = int(re.search(r"blackout: running \(pid (\d+)\)", out).group(1))
        self.ns("profile", "good")
        self.assertFalse(os.path.exists("/proc/%d" % pid) and
                         b"ns.sh" in open("/proc/%d/cmdline" % pid, "rb").read(),
                         "blackout loop still running after the next profile")
        self.assertEqual(self.curl_cl(10)[1], 200)

        self.gw_proc.terminate()
        self.assertEqual(self.gw_proc.wait(10), 0)
        self.ns("down")
        self.ns("down")  # idempotent
        _, out = self.ns("status")
        self.assertIn("down", out)
        self.assertFalse(os.path.exists("/run/netns/" + self.env["NETEM_GW"]))


if __name__ == "__main__":
    why = skip_reason()
    if why:
        print("SKIP: %s" % why)
        sys.exit(0)
    if not shutil.which("nft"):
        print("nft not found: install nftables (scripts/deps.sh test)")
        sys.exit(1)
    lg.main()
