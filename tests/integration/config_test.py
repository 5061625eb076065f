#!/usr/bin/python3
"""Configuration: --help, flag validation, JSON config file, precedence, docs/config.md."""

import atexit
import json
import shutil
import os
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lg  # noqa: E402


TMP = tempfile.mkdtemp(prefix="lgcfg-")
atexit.register(shutil.rmtree, TMP, True)


def run(args, timeout=10):
    """Run the binary to completion (for invocations that must exit on their own)."""
    d = tempfile.mkdtemp(prefix="run-", dir=TMP)
    try:
        p = subprocess.run([lg.binary()] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout, cwd=d, env=lg.clean_env())
    except subprocess.TimeoutExpired:
        raise AssertionError("livegate %s did not exit within %ds" % (" ".join(args), timeout))
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def base_flags():
    d = tempfile.mkdtemp(prefix="data-", dir=TMP)
    return ["--bind", lg.HOST, "--port", str(lg.free_port()), "--data-dir", d]


def write_json(obj):
    d = tempfile.mkdtemp(prefix="file-", dir=TMP)
    p = os.path.join(d, "livegate.json")
    with open(p, "w") as f:
        if isinstance(obj, str):
            f.write(obj)
        else:
            json.dump(obj, f)
    return p


def post(srv, text):
    return srv.post_curl(lg.room(), {"uid": "u1", "text": text})


def port_open(port):
    s = socket.socket()
    s.settimeout(1)
    try:
        return s.connect_ex((lg.HOST, port)) == 0
    finally:
        s.close()


class HelpTest(lg.ServerTest):
    def setUp(self):  # these tests run the binary themselves
        import signal
        signal.signal(signal.SIGALRM, lg._on_alarm)
        signal.alarm(int(self.timeout))
        self.srv = None

    def test_help(self):
        rc, out, err = run(["--help"])
        self.assertEqual(rc, 0, err)
        for flag in ("--port", "--bind", "--window", "--ring-slots", "--data-dir", "--config", "--workers",
                     "--rate-uid", "--blocked-words-mode", "--text-max-chars", "--log-level"):
            self.assertIn(flag, out, "--help does not list %s" % flag)
        # defaults are shown
        self.assertIn("65536", out, "--help does not show the ring_slots default")

    def test_unknown_flag(self):
        rc, out, err = run(base_flags() + ["--no-such-flag", "1"])
        self.assertNotEqual(rc, 0)
        self.assertIn("no-such-flag", err, "stderr does not name the unknown flag: %r" % err)

    def test_out_of_range_and_malformed_values(self):
        for args, name in ((["--port", "70000"], "port"), (["--port", "0"], "port"), (["--port", "80x"], "port"),
                           (["--ring-slots", "1000"], "ring"), (["--window", "0"], "window"),
                           (["--log-level", "chatty"], "log"), (["--blocked-words-mode", "drop"], "blocked"),
                           (["--rate-uid", "abc"], "rate"), (["--port", ""], "port"), (["--port"], "port"),
                           (["--text-max-chars", "99999999999999999999"], "text")):
            flags = base_flags()
            # drop the base --port when the case sets its own
            if args[0] == "--port":
                i = flags.index("--port")
                del flags[i:i + 2]
            rc, out, err = run(flags + args)
            self.assertNotEqual(rc, 0, "livegate %s was accepted" % " ".join(args))
            self.assertTrue(err.strip(), "no message on stderr for %s" % args)
            self.assertIn(name, err.lower(), "stderr does not name the setting for %s: %r" % (args, err))

    def test_config_missing_or_invalid(self):
        rc, _, err = run(base_flags() + ["--config", "/nonexistent/livegate.json"])
        self.assertNotEqual(rc, 0)
        self.assertTrue(err.strip())
        for text in ("{not json", "[1,2]", '{"port": "eighty"}', '{"port": 70000}', '{"config": "x.json"}'):
            rc, _, err = run(base_flags() + ["--config", write_json(text)])
            self.assertNotEqual(rc, 0, "config file %r accepted" % text)
            self.assertTrue(err.strip(), "no message for config %r" % text)

    def test_docs_config_md_matches_help_markdown(self):
        rc, out, err = run(["--help-markdown"])
        self.assertEqual(rc, 0, err)
        path = os.path.join(lg.REPO, "docs", "config.md")
        self.assertTrue(os.path.exists(path), "docs/config.md does not exist")
        with open(path, encoding="utf-8") as f:
            doc = f.read()
        self.assertEqual(doc, out, "docs/config.md differs from `livegate --help-markdown`")


class ConfigFileTest(lg.ServerTest):
    def setUp(self):
        import signal
        signal.signal(signal.SIGALRM, lg._on_alarm)
        signal.alarm(int(self.timeout))
        self.srv = None

    def test_file_sets_port_and_text_max_chars(self):
        port = lg.free_port()
        cfg = write_json({"port": port, "text_max_chars": 10, "rate_uid": 1000, "burst_uid": 1000})
        srv = lg.Server(["--config", cfg], generous=False, port=port, pass_port=False)
        self.addCleanup(srv.stop)
        srv.start(attempts=1)
        self.assertEqual(srv.port, port)
        self.assertEqual(srv.curl("/healthz").status, 200)
        r = post(srv, "x" * 10)
        self.assertEqual(r.status, 202, r)
        self.assertError(post(srv, "x" * 11), 400, "bad_text", "11 chars with text_max_chars 10 from the file")

    def test_flag_overrides_file(self):
        file_port, flag_port = lg.free_port(), lg.free_port()
        cfg = write_json({"port": file_port, "text_max_chars": 10})
        srv = lg.Server(["--config", cfg, "--text-max-chars", "20"], port=flag_port)
        self.addCleanup(srv.stop)
        srv.start(attempts=1)
        self.assertEqual(srv.curl("/healthz").status, 200)
        self.assertFalse(port_open(file_port), "the file's port is open although --port overrides it")
        self.assertEqual(post(srv, "y" * 20).status, 202)
        self.assertError(post(srv, "y" * 21), 400, "bad_text")

    def test_flag_before_config_still_wins(self):
        # precedence is by source, not by position on the command line
        cfg = write_json({"text_max_chars": 10})
        srv = lg.Server(["--text-max-chars", "20", "--config", cfg])
        self.addCleanup(srv.stop)
        srv.start(attempts=1)
        self.assertEqual(post(srv, "z" * 15).status, 202)

    def test_equals_form(self):
        port = lg.free_port()
        d = tempfile.mkdtemp(prefix="eq-", dir=TMP)
        srv = lg.Server(["--bind=127.0.0.1", "--port=%d" % port, "--data-dir=%s" % d, "--text-max-chars=5"],
                        port=port, pass_port=False, pass_data_dir=False)
        self.addCleanup(srv.stop)
        srv.start(attempts=1)
        self.assertEqual(post(srv, "a" * 5).status, 202)
        self.assertError(post(srv, "a" * 6), 400, "bad_text")

    def test_data_dir_used(self):
        srv = lg.Server()
        self.addCleanup(srv.stop)
        srv.start()
        self.assertTrue(os.path.isdir(srv.data_dir))
        # nothing is written to the working directory's default ./livegate-data
        self.assertFalse(os.path.exists(os.path.join(srv.tmp, "livegate-data")),
                         "default data dir used despite --data-dir")


if __name__ == "__main__":
    lg.main()
