#!/usr/bin/env python3
"""tallyd as a service: systemd's notification protocol on a NOTIFY_SOCKET
we listen on ourselves, the journald log format, the operator metrics, and
an online backup (SIGUSR1) taken under load that restores to the same bytes
and ETags."""
import glob
import os
import re
import shutil
import signal
import socket
import threading
import time

from harness import CheckedDaemonTest, DEFAULT_ELECTION, main

TOKEN = "service-test-token-0123456789abcdef"
AUTH = {"Authorization": "Bearer " + TOKEN}
PROVINCES = ["baghdad", "basra", "nineveh", "dhi-qar", "babil", "anbar"]


class Notifications:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.seen = []

    def next(self, timeout=20):
        self.sock.settimeout(timeout)
        msg = self.sock.recv(4096).decode()
        self.seen.append(msg)
        return msg

    def wait_for(self, line, timeout=20):
        """Messages up to and including the first holding `line`."""
        deadline = time.monotonic() + timeout
        got = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r in %r" % (line, got))
            try:
                msg = self.next(left)
            except socket.timeout:
                raise AssertionError("no %r in %r" % (line, got))
            got.append(msg)
            if line in msg.split("\n"):
                return got

    def drain(self):
        while True:
            try:
                self.next(timeout=0.05)
            except socket.timeout:
                return

    def close(self):
        self.sock.close()


class ServiceTest(CheckedDaemonTest):
    def notified_daemon(self, env=None, **kw):
        d = self.daemon(start=False, env=dict(env or {}, TALLYD_INGEST_TOKEN=TOKEN),
                        args=["--election", DEFAULT_ELECTION], **kw)
        n = Notifications(os.path.join(d.tmp, "notify.sock"))
        self.addCleanup(n.close)
        d.env["NOTIFY_SOCKET"] = n.path
        return d, n

    def post(self, d, province, revision, votes):
        return d.request("POST", "/v1/provinces/%s/results" % province,
                         body={"revision": revision, "votes": votes},
                         headers=AUTH)

    def test_ready_only_after_replay_and_listen(self):
        # A journal to replay first.
        d, n = self.notified_daemon()
        d.start()
        n.wait_for("READY=1")
        for i, p in enumerate(PROVINCES):
            self.assertEqual(self.post(d, p, 1, {"sairoon": 100 + i}).status, 201)
        self.assertEqual(d.stop(), 0, d.logtext())
        n.drain()
        d.log.close()
        d.start(wait=False)
        msgs = n.wait_for("READY=1")
        # /healthz answers the moment READY=1 is sent: it only comes once
        # the listeners are open and the replay is done.
        self.assertEqual(d.get("/healthz").status, 200)
        self.assertIn("STATUS=replaying the snapshot and journal in %s" %
                      d.data_dir, msgs[0])
        ready = msgs[-1].split("\n")
        self.assertIn("MAINPID=%d" % d.proc.pid, ready)
        self.assertIn("STATUS=serving version %d of iq-2018" % len(PROVINCES),
                      ready)
        self.assertEqual(d.get("/v1/leaderboard").json()["version"],
                         len(PROVINCES))
        for m in msgs[:-1]:
            self.assertNotIn("READY=1", m.split("\n"))

    def test_reload_and_stop(self):
        d, n = self.notified_daemon()
        d.start()
        n.wait_for("READY=1")
        d.send_signal(signal.SIGHUP)
        got = n.wait_for("RELOADING=1")
        self.assertTrue(any(l.startswith("MONOTONIC_USEC=")
                            for l in got[-1].split("\n")))
        n.wait_for("READY=1")
        self.assertEqual(d.get("/healthz").status, 200)
        d.send_signal(signal.SIGTERM)
        n.wait_for("STOPPING=1")
        self.assertEqual(d.proc.wait(20), 0, d.logtext())

    def test_watchdog_pings_from_the_loop(self):
        d, n = self.notified_daemon(env={"WATCHDOG_USEC": "200000"})
        d.start()
        n.wait_for("READY=1")
        t0 = time.monotonic()
        n.wait_for("WATCHDOG=1", timeout=2)
        n.wait_for("WATCHDOG=1", timeout=2)
        self.assertLess(time.monotonic() - t0, 1.0)
        # A loop that stops turning stops pinging: freeze the process.
        d.send_signal(signal.SIGSTOP)
        time.sleep(0.3)
        n.drain()       # what was sent before the stop
        with self.assertRaises(socket.timeout):
            n.next(timeout=0.5)
        d.send_signal(signal.SIGCONT)
        n.wait_for("WATCHDOG=1", timeout=2)

    def test_watchdog_meant_for_another_pid(self):
        d, n = self.notified_daemon(env={"WATCHDOG_USEC": "200000",
                                         "WATCHDOG_PID": "1"})
        d.start()
        msgs = n.wait_for("READY=1")
        time.sleep(0.5)
        while True:
            try:
                msgs.append(n.next(timeout=0.1))
            except socket.timeout:
                break
        self.assertFalse(any("WATCHDOG=1" in m for m in msgs), msgs)

    def test_no_notify_socket_is_fine(self):
        d = self.daemon(env={"TALLYD_INGEST_TOKEN": TOKEN})
        self.assertEqual(d.get("/healthz").status, 200)

    def test_journald_format(self):
        d = self.daemon(start=False, env={"TALLYD_INGEST_TOKEN": TOKEN})
        with open(d.log_path, "ab") as f:
            st = os.fstat(f.fileno())
        d.env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        d.start()
        self.assertEqual(d.stop(), 0)
        lines = [l for l in d.logtext().splitlines() if l]
        self.assertTrue(lines)
        for l in lines:
            self.assertRegex(l, r"^<[3467]>[^0-9]", l)
        self.assertTrue(any(l.startswith("<6>listening on") for l in lines))

    def test_operator_metrics(self):
        d = self.daemon(env={"TALLYD_INGEST_TOKEN": TOKEN}, ingest=True)
        r = d.request("POST", "/v1/provinces/basra/results",
                      body={"revision": 1, "votes": {"sairoon": 5}},
                      headers=AUTH, port=d.ingest_port)
        self.assertEqual(r.status, 201, r.body)
        text = d.get("/metrics").body.decode()
        self.assertRegex(text, r'tallyd_build_info\{version="[^"]+",'
                         r'commit="[^"]+"\} 1\n')
        count = int(re.search(r"tallyd_journal_fsync_seconds_count (\d+)",
                              text).group(1))
        self.assertGreaterEqual(count, 1)
        inf = int(re.search(r'tallyd_journal_fsync_seconds_bucket\{le="\+Inf"\}'
                            r" (\d+)", text).group(1))
        self.assertEqual(inf, count)
        self.assertGreater(int(re.search(r"tallyd_journal_bytes (\d+)",
                                         text).group(1)), 0)
        self.assertGreater(int(re.search(r"tallyd_data_dir_free_bytes (\d+)",
                                         text).group(1)), 0)
        self.assertRegex(text, r'tallyd_listener_connections\{listener="public",'
                         r'address="127.0.0.1:%d"\} [1-9]' % d.port)
        # The feed's connection may not be seen closed yet: 0 or 1.
        self.assertRegex(text, r'tallyd_listener_connections\{listener="ingest",'
                         r'address="127.0.0.1:%d"\} [01]\n' % d.ingest_port)
        age = int(re.search(r"tallyd_last_applied_age_seconds (-?\d+)",
                            text).group(1))
        self.assertTrue(0 <= age <= 60, age)
        self.assertRegex(text, r"tallyd_open_fds [1-9]")

    def test_backup_under_load_restores_same_bytes(self):
        d = self.daemon(env={"TALLYD_INGEST_TOKEN": TOKEN},
                        args=["--election", DEFAULT_ELECTION])
        seen = {}       # version -> (etag, body), every version
        stop = threading.Event()
        errors = []

        def writer():
            rev = 0
            try:
                while not stop.is_set():
                    rev += 1
                    for i, p in enumerate(PROVINCES):
                        r = self.post(d, p, rev, {"sairoon": rev * 10 + i,
                                                   "fatah": rev * 7 + i})
                        if r.status != 201:
                            errors.append(r.body)
                            return
                        v = r.json()["version"]
                        g = d.get("/v1/leaderboard")
                        if g.json()["version"] != v:
                            errors.append("version moved: %d" % v)
                        seen[v] = (g.header("ETag"), g.body)
            except Exception as e:     # reported below
                errors.append(repr(e))

        def reader():
            while not stop.is_set():
                d.get("/v1/provinces")

        threads = [threading.Thread(target=writer)] + \
            [threading.Thread(target=reader) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)
            d.send_signal(signal.SIGUSR1)
            self.wait_log(d, "backup written to")
            time.sleep(0.3)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertFalse(errors, errors)
        m = re.search(r"backup written to (\S+) \(version (\d+)\)", d.logtext())
        path, version = m.group(1), int(m.group(2))
        self.assertGreater(version, 0)
        self.assertGreater(max(seen), version, "the load went on after it")
        snaps = glob.glob(os.path.join(path, "snapshot-*.snap"))
        self.assertEqual(len(snaps), 1, os.listdir(path))
        with open(os.path.join(path, "election.json"), "rb") as a, \
                open(DEFAULT_ELECTION, "rb") as b:
            self.assertEqual(a.read(), b.read())

        # Restore: the snapshot into an empty data dir.
        restored = self.daemon(start=False, env={"TALLYD_INGEST_TOKEN": TOKEN},
                               args=["--election", DEFAULT_ELECTION])
        os.makedirs(restored.data_dir, mode=0o700)
        shutil.copy(snaps[0], restored.data_dir)
        restored.start()
        g = restored.get("/v1/leaderboard")
        self.assertEqual(g.json()["version"], version)
        self.assertEqual((g.header("ETag"), g.body), seen[version])
        # It goes on taking feeds after the restored ones.
        r = self.post(restored, "baghdad", 10 ** 6, {"sairoon": 1, "fatah": 0})
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.json()["version"], version + 1)


if __name__ == "__main__":
    main()
