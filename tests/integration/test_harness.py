"""The harness's own tests: the checks every integration test relies on,
run against daemons made to misbehave (tests/misbehave/): a sanitizer report
at start, a segfault during a test and after its last request, a segfault
or exit 1 when stopped.  Each small test of tests/misbehave/inner.py runs in
a process of its own with TALLYD pointing to a wrapper, and must fail; the
same tests against the real tallyd must pass.  Also: an exit nobody
declared fails, skips are counted, and under CI=true an undeclared skip
fails the file."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

from harness import SOURCE_ROOT, TALLYD, DaemonTest, main

MISBEHAVE = os.path.join(SOURCE_ROOT, "tests", "misbehave")
INNER = os.path.join(MISBEHAVE, "inner.py")
FINAL = re.compile(r"^inner\.py: (\d+) tests, (\d+) failed, (\d+) skipped$",
                   re.M)


def inner(test, wrapper=None, env=None):
    """Run one test of inner.py: (exit status, output, final-line counts)."""
    e = dict(os.environ, TALLYD_REAL=TALLYD, TALLYD_SEED="1",
             MISBEHAVE_DELAY="0.5")
    e.pop("CI", None)
    e.pop("TALLYD_MAY_SKIP", None)
    e.pop("TALLYD_ARTIFACTS", None)
    if wrapper:
        e["TALLYD"] = os.path.join(MISBEHAVE, wrapper)
    e.update(env or {})
    p = subprocess.run([sys.executable, INNER, test], capture_output=True,
                       text=True, env=e, timeout=240)
    out = p.stdout + p.stderr
    m = FINAL.search(p.stdout)
    counts = tuple(int(x) for x in m.groups()) if m else None
    return p.returncode, out, counts


# Which inner tests must catch which misbehaviour.  A crash during the
# test shows as failed requests too; the point of the others is that the
# teardown alone sees them.
CATCHES = {
    "sanitizer": ["Plain.test_requests", "Plain.test_last_request_then_idle",
                  "Direct.test_made_directly_restarted_own_cleanup",
                  "Direct.test_planned_kill_then_restart"],
    "segv-during": ["Plain.test_requests", "Plain.test_last_request_then_idle",
                    "Loop.test_crash_loop"],
    "segv-at-stop": ["Plain.test_last_request_then_idle",
                     "Direct.test_made_directly_restarted_own_cleanup",
                     "Direct.test_planned_kill_then_restart"],
    "exit1-at-stop": ["Plain.test_last_request_then_idle",
                      "Direct.test_made_directly_restarted_own_cleanup",
                      "Direct.test_planned_kill_then_restart"],
}
PASSING = ["Plain.test_requests", "Plain.test_last_request_then_idle",
           "Direct.test_made_directly_restarted_own_cleanup",
           "Direct.test_planned_kill_then_restart",
           "Exits.test_refusal_declared", "Loop.test_crash_loop"]


class Harness(DaemonTest):
    def test_real_daemon_passes(self):
        for t in PASSING:
            with self.subTest(test=t):
                rc, out, counts = inner(t)
                self.assertEqual(rc, 0, out)
                self.assertEqual(counts, (1, 0, 0), out)

    def misbehaving(self, wrapper, why):
        for t in CATCHES[wrapper]:
            with self.subTest(test=t):
                rc, out, counts = inner(t, wrapper)
                self.assertNotEqual(rc, 0, "%s passed against %s:\n%s" % (
                    t, wrapper, out))
                self.assertEqual(counts[0], 1, out)
                self.assertGreaterEqual(counts[1], 1, out)
                self.assertRegex(out, why)

    def test_sanitizer_report_at_start(self):
        self.misbehaving("sanitizer", "sanitizer report in the log")

    def test_segfault_during_and_after_the_last_request(self):
        # Under ASan the SIGSEGV is ASan's report and exit code instead.
        self.misbehaving("segv-during", r"killed by SIGSEGV \(not planned\)|"
                         r"ERROR: AddressSanitizer: SEGV|exit 23 \(not planned\)|"
                         r"ThreadSanitizer: SEGV")

    def test_segfault_when_stopped(self):
        self.misbehaving("segv-at-stop", r"killed by SIGSEGV \(not planned\)")

    def test_exit_1_when_stopped(self):
        self.misbehaving("exit1-at-stop", r"exit 1 \(not planned\)")

    def test_undeclared_exit_fails_and_logs_are_kept(self):
        art = tempfile.mkdtemp(prefix="tallyd-artifacts-")
        self.addCleanup(shutil.rmtree, art, True)
        rc, out, counts = inner("Exits.test_refusal_not_declared",
                                env={"TALLYD_ARTIFACTS": art})
        self.assertNotEqual(rc, 0, out)
        self.assertEqual(counts, (1, 1, 0), out)
        self.assertIn("exit 1 (not planned)", out)
        # Both daemons' logs, read before their directories were deleted.
        kept = os.path.join(
            art, "__main__.Exits.test_refusal_not_declared")
        logs = sorted(os.listdir(kept))
        self.assertEqual(logs, ["1-tallyd.log", "2-tallyd.log"], out)
        with open(os.path.join(kept, "2-tallyd.log")) as f:
            self.assertIn("in use by another tallyd", f.read())

    def test_skips_counted_and_failed_under_ci(self):
        both = ["Skips.test_undeclared", "Skips.test_declared"]
        rc, out, counts = inner(both[0])
        self.assertEqual((rc, counts), (0, (1, 0, 1)), out)
        for env, failed in (({"CI": "true"}, 2),
                            ({"CI": "true", "TALLYD_MAY_SKIP": "inner"}, 1)):
            rc, out, counts = subprocess_both(both, env)
            self.assertNotEqual(rc, 0, out)
            self.assertEqual(counts, (2, failed, 2), out)
            self.assertIn("skip under CI=true: test_undeclared", out)
        rc, out, counts = inner(both[1], env={"CI": "true",
                                              "TALLYD_MAY_SKIP": "inner"})
        self.assertEqual((rc, counts), (0, (1, 0, 1)), out)
        rc, out, counts = inner(both[1], env={"CI": "true"})
        self.assertEqual((rc, counts), (1, (1, 1, 1)), out)


def subprocess_both(tests, env):
    e = dict(os.environ, TALLYD_REAL=TALLYD)
    e.pop("TALLYD_MAY_SKIP", None)
    e.update(env)
    p = subprocess.run([sys.executable, INNER] + tests, capture_output=True,
                       text=True, env=e, timeout=60)
    m = FINAL.search(p.stdout)
    return (p.returncode, p.stdout + p.stderr,
            tuple(int(x) for x in m.groups()) if m else None)


if __name__ == "__main__":
    main()
