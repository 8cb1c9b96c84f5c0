#!/usr/bin/env python3
"""Issue 27, witnesses in push form (C2SP tlog-witness): tallyd asks the
witnesses of its configuration to cosign each new checkpoint, and two
`tallyctl witness serve` processes answer.

- Posts: the checkpoint is cosigned by both, /log/checkpoint and
  /log/witnessed carry both lines, `tallyctl verify log --witness W1
  --witness W2` accepts; a witness that is down meanwhile shows its error
  in /healthz and /metrics and catches up once it is up; a witness that
  takes the connection and never answers slows no POST.
- kill -9 of tallyd keeps the cosignatures it had (and where each witness
  stands: no 409 round trip after the restart).
- A second tallyd signing with the same key (a fork: the same size, other
  entries) is refused by the witness (409) and reports it; the witness
  keeps the evidence and goes on cosigning the first.
- The add-checkpoint call itself: 400, 403, 404, 409 (text/x.tlog.size),
  422, 200, against a real checkpoint.

Environment: TALLYD, TALLYCTL.
"""

import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from harness import ELECTIONS, DaemonTest, free_port, main, run_tallyd

TOKEN = "ingest-token-for-the-push-tests-0123456789"
AUTH = {"Authorization": "Bearer " + TOKEN}
TALLYCTL = os.environ.get("TALLYCTL", "tallyctl")
DS = "no-2021"


def checkpoint_size(note):
    return int(note.split(b"\n")[1])


def sig_names(note):
    """The names on a note's signature lines."""
    tail = note.split(b"\n\n", 1)[1].decode()
    return [ln.split(" ")[1] for ln in tail.split("\n") if ln]


class Witness:
    """One `tallyctl witness serve` on a port reserved beforehand."""

    def __init__(self, test, tmp, name):
        self.dir = os.path.join(tmp, name.replace("/", "_"))
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.proc = None
        self.err = os.path.join(tmp, name.replace("/", "_") + ".stderr")
        w = subprocess.run([TALLYCTL, "witness", "key", "--dir", self.dir,
                            "--name", name], capture_output=True, text=True,
                           timeout=30)
        test.assertEqual(w.returncode, 0, w.stderr)
        self.key = w.stdout.strip()
        test.addCleanup(self.stop)

    def start(self, log_key):
        with open(self.err, "ab") as err:
            self.proc = subprocess.Popen(
                [TALLYCTL, "witness", "serve", "--dir", self.dir,
                 "--log-key", log_key, "--listen",
                 "127.0.0.1:%d" % self.port],
                stdout=subprocess.PIPE, stderr=err, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening on 127.0.0.1:"), line

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(10) == 0
        if self.proc is not None:
            self.proc.stdout.close()
        self.proc = None

    def log(self):
        with open(self.err) as f:
            return f.read()

    def add(self, body):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request("POST", "/add-checkpoint", body=body)
        r = c.getresponse()
        out = (r.status, r.getheader("Content-Type"), r.read())
        c.close()
        return out


class TlogPushTest(DaemonTest):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tlogpush-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.election = os.path.join(ELECTIONS, DS, "election.json")
        with open(os.path.join(ELECTIONS, DS, "results.json")) as f:
            self.res = json.load(f)["results"]
        self.keyfile = os.path.join(self.tmp, "log.key")
        with open(self.keyfile, "w") as f:
            f.write(base64.b64encode(os.urandom(32)).decode() + "\n")
        os.chmod(self.keyfile, 0o600)

    def conf(self, name, witnesses, extra=""):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write("election %s\nlog_key %s\nwitness_interval 100\n"
                    "witness_timeout 2\n%s" % (self.election, self.keyfile,
                                               extra))
            for url, key in witnesses:
                f.write("witness %s %s\n" % (url, key))
        return path

    def post_n(self, d, n, first, bump=0, slowest=None):
        worst = 0.0
        for i in range(first, first + n):
            e = dict(self.res[i % len(self.res)])
            pid = e.pop("province")
            e["revision"] = i // len(self.res) + 1
            e["votes"] = {k: v + bump for k, v in e["votes"].items()}
            t0 = time.monotonic()
            r = d.request("POST", "/v1/provinces/%s/results" % pid, body=e,
                          headers=AUTH)
            worst = max(worst, time.monotonic() - t0)
            self.assertEqual(r.status, 201, r.body)
        return worst

    def wait_cosigned(self, d, size, names, timeout=20):
        """Until /log/witnessed is the checkpoint of size with each name."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = d.get("/log/witnessed")
            if r.status == 200 and checkpoint_size(r.body) == size and \
                    all(n in sig_names(r.body) for n in names):
                return r.body
            time.sleep(0.05)
        self.fail("size %d never cosigned by %s: %s\n%s" % (
            size, names, d.get("/healthz").body, d.logtext()))

    def health_witness(self, d, name):
        for w in d.get("/healthz").json()["witnesses"]:
            if w["name"] == name:
                return w
        self.fail("no witness %s in /healthz" % name)

    def test_push_both_cosign_down_up_kill9(self):
        w1 = Witness(self, self.tmp, "witness.test/w1")
        w2 = Witness(self, self.tmp, "witness.test/w2")
        # A third that takes connections and never answers.
        hang = socket.socket()
        hang.bind(("127.0.0.1", free_port()))
        hang.listen(16)
        self.addCleanup(hang.close)
        w3 = Witness(self, self.tmp, "witness.test/w3")
        conf = self.conf("a.conf", [
            (w1.url, w1.key), (w2.url, w2.key),
            ("http://127.0.0.1:%d/" % hang.getsockname()[1], w3.key)])
        a = self.daemon(args=["-f", conf], env={"TALLYD_INGEST_TOKEN": TOKEN})
        lkey = a.get("/log/key").body.decode().strip()
        w1.start(lkey)
        # Nothing to cosign yet: no witness is failing (no alert before
        # the first result comes in, hours before it on election night).
        time.sleep(0.3)
        self.assertTrue(self.health_witness(a, "witness.test/w2")["ok"])
        self.assertIn('tallyd_witness_up{witness="witness.test/w2"} 1',
                      a.get("/metrics").body.decode())
        # w2 down: the posts go on, w1 cosigns, and nothing waits for w3.
        worst = self.post_n(a, 40, 0)
        self.assertLess(worst, 1.0, "a POST took %.2f s" % worst)
        self.wait_cosigned(a, 40, ["witness.test/w1"])
        h2 = self.health_witness(a, "witness.test/w2")
        self.assertFalse(h2["ok"])
        self.assertIn("connect", h2["error"])
        self.assertEqual(h2["cosigned_size"], 0)
        self.assertEqual(self.health_witness(a, "witness.test/w1")
                         ["cosigned_size"], 40)
        m = a.get("/metrics").body.decode()
        self.assertIn('tallyd_witness_cosigned_size{witness="witness.test/'
                      'w1"} 40', m)
        self.assertIn('tallyd_witness_up{witness="witness.test/w2"} 0', m)
        # w2 up: it catches up (backoff, then the latest checkpoint).
        w2.start(lkey)
        note = self.wait_cosigned(a, 40, ["witness.test/w1",
                                          "witness.test/w2"])
        self.assertNotIn("witness.test/w3", sig_names(note))
        self.assertEqual(a.get("/log/checkpoint").body, note)
        self.assertTrue(self.health_witness(a, "witness.test/w2")["ok"])
        deadline = time.monotonic() + 10
        while "error" not in self.health_witness(a, "witness.test/w3") \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertIn("no answer within",
                      self.health_witness(a, "witness.test/w3")["error"])
        # More posts: both cosign the new size, from the size they had.
        self.post_n(a, 25, 40)
        self.wait_cosigned(a, 65, ["witness.test/w1", "witness.test/w2"])
        # From the size each had, with a consistency proof (old > 0).
        self.assertRegex(w2.log(), r"cosigned size \d+ \(old 40\)")
        url = "http://127.0.0.1:%d" % a.port
        v = subprocess.run([TALLYCTL, "verify", "log", url, "--key", lkey,
                            "--election", self.election, "--witness",
                            w1.key, "--witness", w2.key],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        # kill -9: the cosignatures are kept, and where each witness is.
        before = len(w1.log())
        a.kill()
        a.start()
        note = a.get("/log/witnessed").body
        self.assertEqual(checkpoint_size(note), 65)
        self.assertIn("witness.test/w1", sig_names(note))
        self.assertIn("witness.test/w2", sig_names(note))
        self.post_n(a, 3, 65)
        self.wait_cosigned(a, 68, ["witness.test/w1", "witness.test/w2"])
        # Asked from 65 at once: no 409 round trip.
        self.assertIn("(old 65)", w1.log()[before:])
        self.assertNotIn("409", w1.log()[before:])
        a.stop()

    def test_fork_refused(self):
        w1 = Witness(self, self.tmp, "witness.test/w1")
        a = self.daemon(args=["-f", self.conf("a.conf", [(w1.url, w1.key)])],
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        lkey = a.get("/log/key").body.decode().strip()
        w1.start(lkey)
        self.post_n(a, 12, 0)
        self.wait_cosigned(a, 12, ["witness.test/w1"])
        # Another tallyd with the same key and definition: the same
        # origin, the same size, other entries.
        b = self.daemon(args=["-f", self.conf("b.conf", [(w1.url, w1.key)])],
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        self.assertEqual(b.get("/log/key").body.decode().strip(), lkey)
        self.post_n(b, 12, 0, bump=1)
        self.wait_log(b, "REFUSED the checkpoint of size 12")
        h = self.health_witness(b, "witness.test/w1")
        self.assertFalse(h["ok"])
        self.assertIn("it cosigned another checkpoint of size 12", h["error"])
        self.assertEqual(b.get("/log/witnessed").status, 404)
        self.assertTrue(os.path.exists(os.path.join(w1.dir, "fork-12")))
        self.assertIn("the log forked", w1.log())
        # Grown past it: the proof from 12 does not hold (422).
        self.post_n(b, 2, 12, bump=1)
        self.wait_log(b, "REFUSED the consistency proof from size 12")
        # The witness kept a's history: a goes on.
        self.post_n(a, 2, 12)
        self.wait_cosigned(a, 14, ["witness.test/w1"])
        b.stop()
        a.stop()

    def test_add_checkpoint_statuses(self):
        w = Witness(self, self.tmp, "witness.test/w1")
        a = self.daemon(args=["-f", self.conf("a.conf", [])],
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        lkey = a.get("/log/key").body.decode().strip()
        w.start(lkey)
        self.post_n(a, 3, 0)
        cp3 = a.get("/log/checkpoint").body
        bad_sig = bytearray(cp3)
        bad_sig[-10] = ord("A") if bad_sig[-10] != ord("A") else ord("B")
        self.assertEqual(w.add(b"old 01\n\n" + cp3)[0], 400)
        self.assertEqual(w.add(b"old 4\n\n" + cp3)[0], 400)
        self.assertEqual(w.add(b"old 0\n\n" + cp3.replace(
            b"tallyd/", b"other/", 1))[0], 404)
        self.assertEqual(w.add(b"old 0\n\n" + bytes(bad_sig))[0], 403)
        st, ctype, body = w.add(b"old 0\n\n" + cp3)
        self.assertEqual(st, 200, body)
        self.assertTrue(body.startswith("\u2014 witness.test/w1 ".encode()))
        # Again: the same checkpoint, cosigned again.
        self.assertEqual(w.add(b"old 3\n\n" + cp3)[0], 200)
        st, ctype, body = w.add(b"old 0\n\n" + cp3)
        self.assertEqual((st, ctype, body), (409, "text/x.tlog.size",
                                             b"3\n"))
        self.post_n(a, 4, 3)
        cp7 = a.get("/log/checkpoint").body
        junk = base64.b64encode(b"\x07" * 32) + b"\n"
        st, _, body = w.add(b"old 3\n" + junk * 3 + b"\n" + cp7)
        self.assertEqual(st, 422, body)
        self.assertEqual(w.add(b"old 3\n\n" + cp7)[0], 422)
        # Nothing was stored by the refusals: still 3.
        self.assertEqual(w.add(b"old 5\n\n" + cp7)[1:], ("text/x.tlog.size",
                                                         b"3\n"))
        # The head, then the body in a later segment, Connection: close:
        # answered, not closed before the body came (it once was).
        body = b"old 3\n\n" + cp3
        s = socket.create_connection(("127.0.0.1", w.port), timeout=10)
        s.sendall(b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\n"
                  b"Content-Length: %d\r\nConnection: close\r\n\r\n" %
                  len(body))
        time.sleep(0.2)
        s.sendall(body)
        got = b""
        while True:
            x = s.recv(65536)
            if not x:
                break
            got += x
        s.close()
        self.assertTrue(got.startswith(b"HTTP/1.1 200 "), got)
        # Expect: 100-continue (curl's way past 1 KiB): leave to send the
        # body at once, not after the client's own wait (curl: 1 s).
        s = socket.create_connection(("127.0.0.1", w.port), timeout=10)
        s.sendall(b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\n"
                  b"Expect: 100-continue\r\nContent-Length: %d\r\n"
                  b"Connection: close\r\n\r\n" % len(body))
        s.settimeout(2)
        self.assertEqual(s.recv(65536), b"HTTP/1.1 100 Continue\r\n\r\n")
        s.settimeout(10)
        s.sendall(body)
        got = b""
        while True:
            x = s.recv(65536)
            if not x:
                break
            got += x
        s.close()
        self.assertTrue(got.startswith(b"HTTP/1.1 200 "), got)
        # Framing it does not guess at: answered 400 (or 413) and closed.
        for head in (b"Content-Length: 5\r\nContent-Length: 5\r\n",
                     b"Transfer-Encoding: chunked\r\n",
                     b"Content-Length: 999999\r\n",
                     b"X-Pad: " + b"x" * 9000 + b"\r\n"):
            s = socket.create_connection(("127.0.0.1", w.port), timeout=10)
            s.sendall(b"POST /add-checkpoint HTTP/1.1\r\n" + head +
                      b"\r\nold 0")
            got = s.recv(65536)
            s.close()
            self.assertRegex(got, rb"^HTTP/1.1 (400|413) ", head[:40])
        c = http.client.HTTPConnection("127.0.0.1", w.port, timeout=10)
        c.request("GET", "/add-checkpoint")
        self.assertEqual(c.getresponse().status, 405)
        c.close()
        a.stop()

    def test_bad_witness_setting(self):
        """`tallyd -n` names the bad `witness` line and what to fix."""
        w = Witness(self, self.tmp, "witness.test/w1")
        for line, why in [
                ("https://127.0.0.1:1 " + w.key, "is not \"http://HOST"),
                ("http://127.0.0.1:0 " + w.key, "is not http://HOST"),
                ("http://127.0.0.1:7380", "is not \"http://HOST"),
                ("http://127.0.0.1:7380 " + w.key[:-4] + "AAA=",
                 "the witness's key")]:
            conf = os.path.join(self.tmp, "bad.conf")
            with open(conf, "w") as f:
                f.write("election %s\nwitness %s\n" % (self.election, line))
            r = run_tallyd(["-n", "-f", conf])
            self.assertNotEqual(r.returncode, 0, line)
            self.assertIn("bad.conf:2: witness: ", r.stderr)
            self.assertIn(why, r.stderr)


if __name__ == "__main__":
    sys.exit(main())
