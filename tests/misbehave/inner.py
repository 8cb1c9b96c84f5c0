#!/usr/bin/env python3
"""Small tests run by tests/integration/test_harness.py, each in a process
of its own, against the real tallyd or a misbehaving one (TALLYD): the
harness must fail those whose daemon misbehaved."""
import os
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
from harness import Daemon, DaemonTest, main, may_skip  # noqa: E402
import crashloop  # noqa: E402


class Plain(DaemonTest):
    def test_requests(self):
        """Requests for a second and a half: a crash during them."""
        d = self.daemon()
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            self.assertEqual(d.get("/healthz").status, 200)
            time.sleep(0.05)

    def test_last_request_then_idle(self):
        """The last request at once, then idle: a crash after it."""
        d = self.daemon()
        self.assertEqual(d.get("/healthz").status, 200)
        time.sleep(1.5)


class Direct(DaemonTest):
    def test_made_directly_restarted_own_cleanup(self):
        """A Daemon made without self.daemon(), with its own cleanup
        registered after it (the old order that deleted the log before it
        was read), started twice."""
        d = Daemon()
        self.addCleanup(d.cleanup)
        d.start()
        self.assertEqual(d.stop(), 0)
        d.start()
        self.assertEqual(d.get("/healthz").status, 200)

    def test_planned_kill_then_restart(self):
        d = self.daemon()
        d.kill()
        d.start()
        self.assertEqual(d.get("/healthz").status, 200)


class Exits(DaemonTest):
    def second(self):
        d = self.daemon()
        other = Daemon(data_dir=d.data_dir)
        return other

    def test_refusal_declared(self):
        other = self.second()
        other.expect_exit(1)
        other.start(wait=False)
        self.assertEqual(other.wait_exit(), 1)

    def test_refusal_not_declared(self):
        """Must FAIL: exit 1 nobody declared."""
        other = self.second()
        other.start(wait=False)
        self.assertEqual(other.wait_exit(), 1)


class Loop(DaemonTest):
    def test_crash_loop(self):
        tmp = tempfile.mkdtemp(prefix="tallyd-inner-loop-")
        self.addCleanup(shutil.rmtree, tmp, True)
        loop = crashloop.CrashLoop(os.path.join(tmp, "var"), clients=2,
                                   seed=1, log=lambda s: None)
        loop.run(3, 0.8, 1.0)


class Skips(DaemonTest):
    def test_undeclared(self):
        self.skipTest("a reason nobody declared")

    @may_skip("inner", "the harness's own test of may_skip")
    def test_declared(self):
        self.skipTest("declared")


if __name__ == "__main__":
    main()
