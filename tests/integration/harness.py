"""Start a real tallyd on a free loopback port and talk HTTP to it.

Used by the integration tests: each test gets its own daemon, data dir and
port, so tests are independent and can run in parallel.

The contract (tests/README.md): every daemon a test starts -- a Daemon, a
crash loop's daemons, a cluster node -- is checked at the end of the test by
one teardown (`Supervised.cleanup`), whatever the test did with it: each of
its processes must have exited 0, or by a kill -9 sent through `kill()`, or
with the code the test declared with `expect_exit(code)`; its whole log must
hold no sanitizer report.  The check reads the log before anything is
deleted; the logs of a failed test are copied to $TALLYD_ARTIFACTS/<test id>/.
`main()` ends each file with "<file>: N tests, N failed, N skipped"; under
CI=true a skip fails the file unless the test declared it with `may_skip`.
"""
import fcntl
import gzip
import http.client
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import schemas

TALLYD = os.environ.get("TALLYD", "tallyd")
SOURCE_ROOT = os.environ.get(
    "TALLYD_SOURCE_ROOT",
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ELECTIONS = os.path.join(SOURCE_ROOT, "tests", "data", "elections")
DEFAULT_ELECTION = os.path.join(SOURCE_ROOT, "config", "elections", "iraq-2018.json")


_ports_held = {}
PORT_LOCK_DIR = os.path.join(tempfile.gettempdir(), "tallyd-test-ports")
PORT_RANGE = (20000, 32000)


def free_port():
    """A loopback port no other test process holds, that was free a moment
    ago (the daemon binds it right after).  Ports come from below the
    kernel's ephemeral range (32768 up), so no client socket's local port
    takes one, and each is reserved across processes by a lock on a file
    in PORT_LOCK_DIR, held until this process exits: meson runs the test
    files in parallel, and a port the kernel handed to one of them (bind
    to port 0) was once handed to another before the first daemon bound
    it; a cluster node then answered its POSTs with another test's
    daemon, 401.  Never the same port twice in one process either (a NATS
    cluster's client and route ports were once the same)."""
    os.makedirs(PORT_LOCK_DIR, exist_ok=True)
    lo, hi = PORT_RANGE
    rnd = random.Random(os.getpid() ^ int(time.time() * 1000))
    for _ in range(20 * (hi - lo)):
        port = rnd.randrange(lo, hi)
        if port in _ports_held:
            continue
        f = open(os.path.join(PORT_LOCK_DIR, "%d.lock" % port), "a")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", port))
        except OSError:
            f.close()
            continue
        _ports_held[port] = f
        return port
    raise RuntimeError("no free loopback port in %d-%d" % PORT_RANGE)


def raise_fd_limit(n):
    """Raise this process's descriptor limit towards n (up to the hard
    limit): the flood tests open thousands of sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(max(soft, n), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def rss_kib(pid):
    """The resident set of a process, in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def recv_all(s, timeout=5):
    """Everything a socket gives until EOF, a reset, another socket error
    or `timeout` seconds of silence."""
    s.settimeout(timeout)
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except OSError:     # a timeout, a reset, a TLS error
        pass
    return out


def status_of(data):
    """The status code of a raw HTTP response (None if it is not one)."""
    if not data.startswith(b"HTTP/1."):
        return None
    return int(data.split(b" ", 2)[1])


def write_conf(d, **keys):
    """A tallyd.conf with these keys in d's directory: the arguments that
    load it."""
    path = os.path.join(d.tmp, "tallyd.conf")
    with open(path, "w") as f:
        for k, v in keys.items():
            f.write("%s %s\n" % (k, v))
    return ["-f", path]


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body.decode("utf-8"))


# Every pattern a sanitizer report starts or ends with: ASan, LSan, UBSan
# (a "runtime error:" line, or a deadly signal), TSan (a race is a WARNING,
# a deadly signal an ERROR), and the SUMMARY line each of them prints.
SANITIZER_ERRORS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                    "runtime error:", "WARNING: ThreadSanitizer",
                    "ERROR: ThreadSanitizer", "ERROR: UndefinedBehaviorSanitizer",
                    "ERROR: MemorySanitizer", "Sanitizer:DEADLYSIGNAL",
                    "SUMMARY: AddressSanitizer", "SUMMARY: LeakSanitizer",
                    "SUMMARY: ThreadSanitizer",
                    "SUMMARY: UndefinedBehaviorSanitizer")


def sanitizer_reports(text):
    """The lines of `text` that carry a sanitizer report (empty: none)."""
    return [line for line in text.splitlines()
            if any(s in line for s in SANITIZER_ERRORS)]


def describe_exit(rc):
    if rc is None:
        return "still running"
    if rc < 0:
        try:
            return "killed by %s" % signal.Signals(-rc).name
        except ValueError:
            return "killed by signal %d" % -rc
    return "exit %d" % rc


# The test now running (DaemonTest.run sets it): every Supervised process
# created meanwhile is checked at that test's end.  Those created outside a
# test (setUpClass, a script) are checked by main() at exit.
_current_test = None
_orphans = []


class Supervised:
    """The bookkeeping of one supervised program (tallyd, a cluster node)
    that may be started several times: every process's end is recorded
    when it is replaced, stopped, killed or at cleanup, and judged:

      - exit 0 (a stop) is fine;
      - killed by SIGKILL is fine only when sent through kill() (or
        send_signal(SIGKILL)): a planned kill -9;
      - the code given to expect_exit(code) beforehand is fine (once);
      - anything else (a segfault, exit 1, a signal nobody sent) is a
        problem, and so is any sanitizer report in the whole log.

    Subclasses set self.proc (a Popen) in start() after calling
    self._before_start(), and implement logtext() and _remove()."""

    def _supervise(self, name):
        self.name = name
        self.proc = None
        self.exits = []           # (pid, rc, accepted, why)
        self.problems = []
        self.final_log = None     # the whole log, read before deletion
        self.finished = False
        self._planned_kill = False
        self._expected = None
        self._recorded = None     # the Popen already recorded
        if _current_test is not None:
            _current_test._adopt(self)
        else:
            _orphans.append(self)

    def expect_exit(self, code):
        """The current (or next) process is meant to exit with `code`
        (a refusal to start, a fatal error the test provokes): that exit,
        and only that, is then accepted, once."""
        self._expected = code

    def _record(self):
        """Judge the end of self.proc, once (it must have exited)."""
        p = self.proc
        if p is None or p is self._recorded or p.returncode is None:
            return
        self._recorded = p
        rc = p.returncode
        if self._expected is not None:
            ok, why = rc == self._expected, "expected exit %d" % self._expected
        elif rc == 0:
            ok, why = True, "stopped"
        elif rc == -signal.SIGKILL and self._planned_kill:
            ok, why = True, "planned kill -9"
        else:
            ok, why = False, "not planned"
        self.exits.append((p.pid, rc, ok, why))
        if not ok:
            self.problems.append("%s pid %d: %s (%s)" % (
                self.name, p.pid, describe_exit(rc), why))
        self._expected = None
        self._planned_kill = False

    def _before_start(self):
        """A new process replaces the last one: judge how that one ended."""
        if self.proc is not None:
            if self.proc.poll() is None:
                raise AssertionError("%s: start() while pid %d still runs" %
                                     (self.name, self.proc.pid))
            self._record()
        self.finished = False

    def poll(self):
        """The exit status if the process has ended (recorded), else None."""
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is not None:
            self._record()
        return rc

    def wait_exit(self, timeout=20):
        """Wait for the process to end by itself; its status (judged as
        usual: call expect_exit first if it is meant to fail)."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s still running after %s s:\n%s" % (
                self.name, timeout, self.logtext()[-3000:]))
        self._record()
        return rc

    def send_signal(self, sig):
        if sig == signal.SIGKILL:
            return self.kill()
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Send `sig` (SIGTERM) and wait: the exit status (a process that
        ended already is recorded as it ended)."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            self._record()
            return self.proc.returncode
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._planned_kill = True
            self.proc.kill()
            self.proc.wait()
            self.problems.append("%s pid %d did not stop on %s in %s s" % (
                self.name, self.proc.pid, signal.Signals(sig).name, timeout))
            self._record()
            raise AssertionError("%s did not stop on %s" % (self.name, sig))
        self._record()
        return rc

    def kill(self):
        """A planned kill -9.  A process that has already ended is not
        killed: its own end is recorded (and judged) as it was."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._planned_kill = True
            self.proc.kill()
            self.proc.wait()
        self._record()
        return self.proc.returncode

    def unplanned(self):
        """The problems found so far (a death nobody planned...)."""
        self.poll()
        return list(self.problems)

    def cleanup(self):
        """The one teardown: stop the process if it runs (SIGTERM, must
        exit 0), judge its end, read and scan the whole log, then delete
        what the process left.  Returns the problems (also kept in
        self.problems).  Runs once; later calls return the same."""
        if self.finished:
            return self.problems
        self.finished = True
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.stop()
            except AssertionError:
                pass
        self._record()
        self._close()
        self.final_log = self.logtext()
        reports = sanitizer_reports(self.final_log)
        if reports:
            self.problems.append("%s: sanitizer report in the log:\n  %s" % (
                self.name, "\n  ".join(reports[:10])))
        self._remove()
        return self.problems

    def _close(self):
        pass

    def _remove(self):
        pass


class Daemon(Supervised):
    """One tallyd process in the foreground (-d) with its own data dir."""

    def __init__(self, args=(), env=None, data_dir=None, ingest=False):
        self.tmp = tempfile.mkdtemp(prefix="tallyd-test-")
        self.data_dir = data_dir or os.path.join(self.tmp, "var")
        self.port = free_port()
        self.ingest_port = free_port() if ingest else None
        self.args = list(args)
        self.env = dict(os.environ)
        if env:
            self.env.update(env)
        self.log_path = os.path.join(self.tmp, "tallyd.stderr")
        self.log = None
        self._supervise("tallyd")

    def command(self):
        cmd = [TALLYD, "-d", "--listen", "127.0.0.1:%d" % self.port,
               "--data-dir", self.data_dir]
        if self.ingest_port:
            cmd += ["--ingest-listen", "127.0.0.1:%d" % self.ingest_port]
        return cmd + self.args

    def start(self, wait=True):
        self._before_start()
        # A test may have closed the handle (d.log.close()) between runs.
        if self.log is not None and not self.log.closed:
            self.log.close()
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=self.log,
                                     stderr=subprocess.STDOUT, env=self.env,
                                     cwd=self.tmp)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("tallyd exited with %d:\n%s" %
                                     (self.proc.returncode, self.logtext()))
            try:
                if self.get("/healthz").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError("tallyd not ready:\n" + self.logtext())

    def logtext(self):
        if self.final_log is not None and self.finished:
            return self.final_log
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # Every JSON answer is checked against docs/schemas (schemas.py);
    # False (or request(validate=False)) for deliberately broken ones.
    validate = True

    def request(self, method, path, body=None, headers=None, port=None,
                timeout=30, validate=None):
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port,
                                          timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                headers = dict(headers or {})
                headers.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            if self.validate if validate is None else validate:
                schemas.check(method, path, r.status, r.getheaders(), data)
            return Response(r.status, r.getheaders(), data)
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def raw(self, data, port=None, timeout=5):
        """Send raw bytes; return the raw response (for framing tests)."""
        with socket.create_connection(("127.0.0.1", port or self.port),
                                      timeout=timeout) as s:
            s.sendall(data)
            chunks = []
            try:
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    chunks.append(b)
                    if b"\r\n\r\n" in b"".join(chunks):
                        head, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
                        for line in head.split(b"\r\n"):
                            if line.lower().startswith(b"content-length:"):
                                n = int(line.split(b":")[1])
                                if len(rest) >= n:
                                    return b"".join(chunks)
            except socket.timeout:
                pass
            return b"".join(chunks)

    def _close(self):
        if self.log is not None:
            self.log.close()
            self.log = None

    def _remove(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def _artifact_dir(test_id):
    root = os.environ.get("TALLYD_ARTIFACTS")
    if not root:
        return None
    d = os.path.join(root, re.sub(r"[^A-Za-z0-9_.-]", "_", test_id))
    os.makedirs(d, exist_ok=True)
    return d


def keep_logs(test_id, procs):
    """Copy the logs of `procs` (already read by cleanup) into
    $TALLYD_ARTIFACTS/<test id>/; returns the directory (or None)."""
    d = _artifact_dir(test_id)
    if d is None:
        return None
    for i, p in enumerate(procs):
        text = p.final_log if p.final_log is not None else p.logtext()
        with open(os.path.join(d, "%d-%s.log" % (i + 1, p.name)), "w") as f:
            f.write(text)
    return d


def seed(label="seed"):
    """A random seed for a randomised test: TALLYD_SEED if set, else a
    fresh one.  Printed (and kept by the running test, which prints it
    again if it fails) so that a failure can be repeated."""
    s = os.environ.get("TALLYD_SEED")
    v = int(s, 0) if s else random.randrange(1 << 32)
    print("%s: TALLYD_SEED=%d" % (label, v), file=sys.stderr, flush=True)
    if _current_test is not None:
        _current_test._seeds.append("%s=%d" % (label, v))
    return v


def may_skip(tag, why):
    """Declare that a test (or a class of them) may skip in the runs whose
    TALLYD_MAY_SKIP lists `tag` (scripts/test sets it per build: "browser"
    outside the release build, "failpoints" in the failpoint-off build).
    Under CI=true any other skip fails the file."""
    def mark(obj):
        obj._tallyd_may_skip = (tag, why)
        return obj
    return mark


def failpoints_built():
    out = subprocess.run([TALLYD, "--version"], capture_output=True,
                         text=True).stdout
    return "failpoints" in out


def needs_failpoints(test):
    """A test that drives TALLYD_FAILPOINTS: skipped, by name, against a
    binary built as shipped (-Dfailpoints=false)."""
    import functools

    @functools.wraps(test)
    def run(self, *a, **kw):
        if not failpoints_built():
            self.skipTest("tallyd built without failpoints")
        return test(self, *a, **kw)
    return may_skip("failpoints", "needs the failpoints, which a binary "
                    "built as shipped has not")(run)


class DaemonTest(unittest.TestCase):
    """A test case with helpers to start daemons.  Every Supervised process
    created while the test runs (self.daemon(), a Daemon made directly, a
    crash loop's, a cluster node) is cleaned up and checked: see
    Supervised.  The check is the last cleanup of the test."""

    def run(self, result=None):
        global _current_test
        self._supervised = []
        self._seeds = []
        # Registered before setUp: cleanups run last-first, so this runs
        # after every other (each daemon's own cleanup included).
        self.addCleanup(self._check_supervised)
        previous, _current_test = _current_test, self
        try:
            return super().run(result)
        finally:
            _current_test = previous

    def _adopt(self, p):
        self._supervised.append(p)
        self.addCleanup(p.cleanup)

    def _failed_so_far(self):
        """Whether this test (or one of its subtests) has failed already
        (outcome.success reads True inside a cleanup)."""
        result = getattr(getattr(self, "_outcome", None), "result", None)
        for t, _ in (getattr(result, "failures", []) +
                     getattr(result, "errors", [])):
            if t is self or getattr(t, "test_case", None) is self:
                return True
        return False

    def _check_supervised(self):
        problems = []
        for p in self._supervised:
            problems += p.cleanup()
        failed = bool(problems) or self._failed_so_far()
        if failed and self._supervised:
            where = keep_logs(self.id(), self._supervised)
            if where:
                print("logs kept in %s" % where, file=sys.stderr)
        if failed and self._seeds:
            print("%s: seeds %s" % (self.id(), " ".join(self._seeds)),
                  file=sys.stderr)
        if problems:
            tails = "".join("\n--- %s log (end):\n%s" % (
                p.name, (p.final_log or "")[-3000:])
                for p in self._supervised if p.problems)
            self.fail("\n".join(problems) + tails)

    def check_daemon_log(self, d):
        """Stop and check d now (in a loop over many daemons); the end of
        the test checks it anyway."""
        problems = d.cleanup()
        if problems:
            self.fail("\n".join(problems) + "\n--- log (end):\n" +
                      (d.final_log or "")[-3000:])

    def daemon(self, *args, start=True, **kw):
        d = Daemon(*args, **kw)
        if start:
            d.start()
        return d

    def wait_log(self, d, text, timeout=20):
        """Wait until the daemon's log says `text`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in d.logtext():
                return
            time.sleep(0.02)
        self.fail("log never said %r:\n%s" % (text, d.logtext()))

    def assertError(self, r, status, code, field=None):
        self.assertEqual(r.status, status, r.body)
        self.assertTrue(r.header("Content-Type").startswith("application/json"))
        err = r.json()["error"]
        self.assertEqual(err["code"], code, r.body)
        self.assertTrue(err["message"])
        if field is not None:
            self.assertEqual(err.get("field"), field, r.body)
        return err


# The name the files used when only some tests checked their daemons; now
# every DaemonTest does.
CheckedDaemonTest = DaemonTest


def run_tallyd(args, **kw):
    """Run tallyd to completion (-n, --version, a refusal): a
    CompletedProcess; its output must hold no sanitizer report."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 60)
    r = subprocess.run([TALLYD] + list(args), **kw)
    out = (r.stdout or "") + (r.stderr or "")
    if not isinstance(out, str):
        out = out.decode("utf-8", "replace")
    reports = sanitizer_reports(out)
    if reports:
        raise AssertionError("tallyd %s: sanitizer report:\n%s" % (
            " ".join(args), out[-4000:]))
    return r


def gunzip(data):
    return gzip.decompress(data)


def _skip_mark(test):
    """The may_skip declaration of a skipped test (method, then class)."""
    name = getattr(test, "_testMethodName", None)
    if name is None:
        # A class that skipped in setUpClass: "setUpClass (__main__.Cls)".
        m = re.search(r"\(([\w.]+)\.(\w+)\)", getattr(test, "description", ""))
        cls = getattr(sys.modules.get(m.group(1)), m.group(2), None) if m else None
        return getattr(cls, "_tallyd_may_skip", None)
    return (getattr(getattr(type(test), name, None), "_tallyd_may_skip", None)
            or getattr(type(test), "_tallyd_may_skip", None))


def main():
    """Run the file's tests; the last line is "<file>: N tests, N failed,
    N skipped".  Under CI=true a skip not declared with may_skip for a
    tag in TALLYD_MAY_SKIP counts as a failure."""
    name = os.path.basename(sys.argv[0])
    result = unittest.main(module="__main__", exit=False, verbosity=2).result
    n = result.testsRun
    failed = (len(result.failures) + len(result.errors) +
              len(result.unexpectedSuccesses))
    # Processes made outside any test (setUpClass, module level).
    for p in _orphans:
        problems = p.cleanup()
        if problems:
            failed += 1
            print("FAIL: outside a test: %s" % "\n".join(problems))
    ci = os.environ.get("CI") == "true"
    allowed = set(t for t in os.environ.get("TALLYD_MAY_SKIP", "").split(",") if t)
    for test, reason in result.skipped:
        mark = _skip_mark(test)
        if mark and mark[0] in allowed:
            print("skip allowed here (%s): %s: %s" % (mark[0], test, reason))
        elif ci:
            failed += 1
            print("FAIL: skip under CI=true: %s: %s (declare it with "
                  "harness.may_skip(tag, why) and list the tag in "
                  "TALLYD_MAY_SKIP)" % (test, reason))
    print("%s: %d tests, %d failed, %d skipped" % (
        name, n, failed, len(result.skipped)))
    sys.exit(0 if failed == 0 and n > 0 else 1)
