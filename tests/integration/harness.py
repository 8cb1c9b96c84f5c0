"""Start a real tallyd on a free loopback port and talk HTTP to it.

Used by the integration tests: each test gets its own daemon, data dir and
port, so tests are independent and can run in parallel.
"""
import gzip
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

TALLYD = os.environ.get("TALLYD", "tallyd")
SOURCE_ROOT = os.environ.get(
    "TALLYD_SOURCE_ROOT",
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ELECTIONS = os.path.join(SOURCE_ROOT, "tests", "data", "elections")
DEFAULT_ELECTION = os.path.join(SOURCE_ROOT, "config", "elections", "iraq-2018.json")


def free_port():
    """A port that was free a moment ago (the daemon binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


class Daemon:
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
        self.proc = None

    def command(self):
        cmd = [TALLYD, "-d", "--listen", "127.0.0.1:%d" % self.port,
               "--data-dir", self.data_dir]
        if self.ingest_port:
            cmd += ["--ingest-listen", "127.0.0.1:%d" % self.ingest_port]
        return cmd + self.args

    def start(self, wait=True):
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
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def request(self, method, path, body=None, headers=None, port=None,
                timeout=30):
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

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("tallyd did not stop on %s" % sig)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def cleanup(self):
        self.kill()
        if getattr(self, "log", None):
            self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class DaemonTest(unittest.TestCase):
    """A test case with helpers to start daemons that are always cleaned up."""

    def daemon(self, *args, start=True, **kw):
        d = Daemon(*args, **kw)
        self.addCleanup(d.cleanup)
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


SANITIZER_ERRORS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                    "runtime error:", "WARNING: ThreadSanitizer")


class CheckedDaemonTest(DaemonTest):
    """Every daemon is stopped with SIGTERM at the end of its test; it must
    exit 0 with no sanitizer report in its log (the ASan build)."""

    def daemon(self, *args, **kw):
        d = super().daemon(*args, **kw)
        self.addCleanup(self.check_daemon_log, d)
        return d

    def check_daemon_log(self, d):
        if d.proc is not None and d.proc.poll() is None:
            self.assertEqual(d.stop(), 0, d.logtext())
        log = d.logtext()
        for s in SANITIZER_ERRORS:
            self.assertNotIn(s, log, log)


def gunzip(data):
    return gzip.decompress(data)


def main():
    import sys
    result = unittest.main(module="__main__", exit=False, verbosity=2).result
    n = result.testsRun
    failed = len(result.failures) + len(result.errors)
    print("%s: %d tests, %d failed, %d skipped" % (
        os.path.basename(sys.argv[0]), n, failed, len(result.skipped)))
    sys.exit(0 if failed == 0 and n > 0 else 1)
