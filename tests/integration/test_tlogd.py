#!/usr/bin/env python3
"""Issue 27, the daemon's side: the transparency log a running tallyd keeps.

- Real elections replayed through HTTP in shuffled order, with retries
  (duplicates), corrections, a batch, a stale revision: after every
  operation the checkpoint's size is the version, every leaderboard
  names it (Tally-Log-Size), and the entry of that version (its receipt,
  /log/proof) carries the SHA-256 of the bytes served, as
  /v1/versions/{N}/leaderboard serves them; then `tallyctl verify log URL`
  accepts the log and reproduces every version's leaderboard; a mirror
  fetched with plain GETs verifies offline; a receipt from a POST verifies
  with `tallyctl verify receipt` and names the POST's leaf hash.
- kill -9 and restart, then a clean stop (the journal compacted) and
  restart: the same key, and every checkpoint kept on the way is
  consistent with the last (`--from`), the log grows on.
- A 3-node cluster sharing one log_key serves byte-identical checkpoints.
- tallyctl witness cosigns through the daemon; a forked or rolled-back log
  (a second daemon with the same key) is refused by the witness.

Environment: TALLYD, TALLYCTL.
"""

import base64
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

from harness import ELECTIONS, TALLYD, DaemonTest, main
from tlogpaths import bundle_entries, tile_n, tile_paths  # noqa: F401

TOKEN = "ingest-token-for-the-tlogd-tests-0123456789"
AUTH = {"Authorization": "Bearer " + TOKEN}
TALLYCTL = os.environ.get("TALLYCTL", "tallyctl")
PYVERIFY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                        "tlog", "pyverify.py")


def checkpoint_size(note):
    return int(note.split(b"\n")[1])


def receipt_entry(body):
    """The entry a receipt (a C2SP tlog-proof) is for, parsed."""
    for line in body.split(b"\n"):
        if line.startswith(b"extra "):
            return json.loads(base64.b64decode(line[6:]))
    raise AssertionError("no extra line in %r" % body[:200])


def checkpoint_leaderboard(note):
    """The leaderboard-sha256 extension line's hash, or None."""
    for line in note.split(b"\n\n")[0].split(b"\n")[3:]:
        if line.startswith(b"leaderboard-sha256 "):
            return line[19:].decode()
    return None


class Night:
    """Posts one election's results through HTTP: shuffled provinces,
    partial counts growing, a batch, retries, a stale revision, a
    correction, each checked against the log as it goes."""

    def __init__(self, test, d, ds, rnd):
        self.t, self.d, self.rnd = test, d, rnd
        with open(os.path.join(ELECTIONS, ds, "results.json")) as f:
            self.final = json.load(f)["results"]
        self.served = {}        # version -> sha256 of /v1/leaderboard
        self.receipts = {}      # version -> the POST's "log" member
        self.rev = {}

    def partial(self, p, num, den):
        e = json.loads(json.dumps(self.final[p]))
        e["votes"] = {k: v * num // den for k, v in e["votes"].items()}
        for k in ("blank", "invalid"):
            if k in e:
                e[k] = e[k] * num // den
        self.rev[p] = self.rev.get(p, 0) + 1
        e["revision"] = self.rev[p]
        e["status"] = "final" if num == den else "partial"
        return e

    def post(self, e, retry=True):
        body = dict(e)
        province = body.pop("province")
        path = "/v1/provinces/%s/results" % province
        r = self.d.request("POST", path, body=body, headers=AUTH)
        self.check(r)
        if retry and r.status == 201 and self.rnd.random() < 0.3:
            # A poster that lost the answer sends it again: a duplicate,
            # no new version, no new entry.
            again = self.d.request("POST", path, body=body, headers=AUTH)
            self.t.assertEqual(again.status, 200, again.body)
            self.check(again)
        return r

    def check(self, r):
        t, d = self.t, self.d
        t.assertIn(r.status, (200, 201), r.body)
        v = r.json()["version"]
        if r.status == 201:
            log = r.json()["log"]
            t.assertEqual(log["index"], v - 1)
            self.receipts[v] = log
        else:
            t.assertNotIn("log", r.json())
        lb = d.get("/v1/leaderboard")
        t.assertEqual(lb.status, 200)
        lv = lb.json()["version"]
        t.assertEqual(lb.header("Tally-Log-Size"), str(lv))
        self.served[lv] = hashlib.sha256(lb.body).hexdigest()
        cp = d.get("/log/checkpoint")
        t.assertEqual(cp.status, 200, cp.body)
        t.assertEqual(checkpoint_size(cp.body), lv)
        # No extension line: the entries carry the leaderboards' hashes.
        t.assertIsNone(checkpoint_leaderboard(cp.body))
        # The entry of this version carries the SHA-256 of the bytes
        # served, which its own URL serves too.
        kept = d.get(lb.header("Content-Location"))
        t.assertEqual(kept.status, 200, kept.body)
        t.assertEqual(kept.body, lb.body)
        proof = d.get("/log/proof/%d" % (lv - 1))
        t.assertEqual(proof.status, 200, proof.body)
        ent = receipt_entry(proof.body)
        t.assertEqual(ent["version"], lv)
        t.assertEqual(ent.get("leaderboard_sha256"), self.served[lv])

    def run(self):
        n = len(self.final)
        order = list(range(n))
        self.rnd.shuffle(order)
        first = order[:max(3, n * 2 // 3)]
        for p in first:
            self.post(self.partial(p, 1, 3))
        # A batch of up to three provinces: one version.
        rest = order[len(first):len(first) + 3]
        if rest:
            r = self.d.request("POST", "/v1/results", headers=AUTH, body={
                "results": [self.partial(p, 1, 2) for p in rest]})
            self.check(r)
            self.t.assertEqual(r.status, 201)
        # A stale revision is refused, nothing logged.
        before = checkpoint_size(self.d.get("/log/checkpoint").body)
        stale = dict(self.final[order[0]])
        stale["revision"] = 0
        pid = stale.pop("province")
        r = self.d.request("POST", "/v1/provinces/%s/results" % pid,
                           body=stale, headers=AUTH)
        self.t.assertNotIn(r.status, (200, 201))
        self.t.assertEqual(
            checkpoint_size(self.d.get("/log/checkpoint").body), before)
        self.rnd.shuffle(first)
        for p in first:
            self.post(self.partial(p, 2, 3))
        # A correction: a lower count at a higher revision.
        self.post(self.partial(order[0], 1, 3))
        self.rnd.shuffle(order)
        for p in order:
            self.post(self.partial(p, 1, 1))
        return max(self.served)


class TlogdTest(DaemonTest):
    def verify(self, target, key, election, froms=(), expect=0):
        cmd = [TALLYCTL, "verify", "log", target, "--key", key,
               "--election", election]
        for f in froms:
            cmd += ["--from", f]
        v = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        self.assertEqual(v.returncode, expect, v.stdout + v.stderr)
        return v.stdout

    def mirror(self, d, dest):
        """The log fetched with plain GETs, as any mirror would keep it."""
        cp = d.get("/log/checkpoint").body
        os.makedirs(dest, exist_ok=True)
        with open(os.path.join(dest, "checkpoint"), "wb") as f:
            f.write(cp)
        for rel in tile_paths(checkpoint_size(cp)):
            r = d.get("/log/" + rel)
            self.assertEqual(r.status, 200, rel)
            cc = r.header("Cache-Control")
            if ".p/" in rel:
                self.assertNotIn("immutable", cc)
            else:
                self.assertIn("immutable", cc)
            path = os.path.join(dest, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(r.body)
        return cp

    def test_real_elections_verify(self):
        for ds in ("es-2019-11", "no-2021", "pl-2023"):
            with self.subTest(ds=ds):
                self.one_election(ds)

    def one_election(self, ds):
        election = os.path.join(ELECTIONS, ds, "election.json")
        d = self.daemon(args=["--election", election],
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        night = Night(self, d, ds, random.Random("tlogd-" + ds))
        top = night.run()
        self.assertEqual(sorted(night.served), list(range(1, top + 1)))
        key = d.get("/log/key").body.decode().strip()
        with open(os.path.join(d.data_dir, "tlog", "key.pub")) as f:
            self.assertEqual(f.read().strip(), key)
        k = subprocess.run([TALLYCTL, "key", "--data-dir", d.data_dir],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual((k.returncode, k.stdout.strip()), (0, key), k.stderr)
        self.assertIn(ds, key)      # the origin names the election
        # The key is never in a log line.
        with open(os.path.join(d.data_dir, "tlog", "key")) as f:
            secret = f.read().strip()
        self.assertNotIn(secret, d.logtext())
        self.assertEqual(
            os.stat(os.path.join(d.data_dir, "tlog", "key")).st_mode & 0o777,
            0o600)
        url = "http://127.0.0.1:%d" % d.port
        out = self.verify(url, key, election)
        self.assertIn("%d entries" % top, out)
        self.assertIn("every signed leaderboard reproduced "
                      "(every version's)", out)
        # Offline, from a mirror of plain GETs.
        mirror = os.path.join(d.tmp, "mirror")
        self.mirror(d, mirror)
        self.verify(mirror, key, election)
        # The second, independent verifier agrees (all but the replay).
        py = subprocess.run([sys.executable, PYVERIFY, "log", mirror, "--key",
                             key], capture_output=True, text=True, timeout=300)
        self.assertEqual(py.returncode, 0, py.stdout + py.stderr)
        # The entries: one a version, the request as applied and the
        # SHA-256 of the leaderboard served at that version.
        ents = []
        for rel in tile_paths(top):
            if rel.startswith("tile/entries/"):
                with open(os.path.join(mirror, rel), "rb") as f:
                    ents += bundle_entries(f.read())
        self.assertEqual(len(ents), top)
        for i, e in enumerate(ents):
            obj = json.loads(e)
            self.assertEqual(obj["version"], i + 1)
            self.assertEqual(obj["leaderboard_sha256"], night.served[i + 1])
            self.assertNotIn(TOKEN, e.decode())
        # A receipt: the proof of a POST's entry, verified offline.
        v = random.Random(ds).choice(sorted(night.receipts))
        rc = d.get("/log/proof/%d" % (v - 1))
        self.assertEqual(rc.status, 200, rc.body)
        self.assertTrue(rc.body.startswith(b"c2sp.org/tlog-proof@v1\n"))
        leaf = hashlib.sha256(b"\x00" + ents[v - 1]).digest()
        self.assertEqual(base64.b64encode(leaf).decode(),
                         night.receipts[v]["leaf_hash"])
        path = os.path.join(d.tmp, "receipt")
        with open(path, "wb") as f:
            f.write(rc.body)
        r = subprocess.run([TALLYCTL, "verify", "receipt", path, "--key",
                            key], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("version %d" % v, r.stdout)
        py = subprocess.run([sys.executable, PYVERIFY, "receipt", path,
                             "--key", key], capture_output=True, text=True,
                            timeout=60)
        self.assertEqual(py.returncode, 0, py.stdout + py.stderr)
        # A receipt with one byte of its entry changed is refused.
        bad = bytearray(rc.body)
        i = bad.index(b"extra ") + 20
        bad[i] = ord("A") if bad[i] != ord("A") else ord("B")
        with open(path, "wb") as f:
            f.write(bad)
        r = subprocess.run([TALLYCTL, "verify", "receipt", path, "--key",
                            key], capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertError(d.get("/log/proof/%d" % top), 404, "not_found")
        self.assertError(d.get("/log/tile/0/999"), 404, "not_found")
        self.assertError(d.get("/log/tile/0/abc"), 404, "not_found")
        d.stop()

    def test_group_commit_each_entry_its_version(self):
        """Concurrent POSTs share fsync rounds (several versions applied
        one after another): each entry hashes its own version's
        leaderboard, the bytes /v1/versions/{N}/leaderboard serves, and
        the replay reproduces every one."""
        import threading
        ds = "es-2019-11"
        election = os.path.join(ELECTIONS, ds, "election.json")
        d = self.daemon(args=["--election", election],
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        with open(os.path.join(ELECTIONS, ds, "results.json")) as f:
            final = json.load(f)["results"]
        hdr = dict(AUTH, **{"Content-Type": "application/json"})
        statuses = []

        def post(e, rev, num, den):
            body = json.loads(json.dumps(e))
            pid = body.pop("province")
            body["votes"] = {k: v * num // den
                             for k, v in body["votes"].items()}
            body["revision"] = rev
            rq = urllib.request.Request(
                "http://127.0.0.1:%d/v1/provinces/%s/results" % (d.port, pid),
                data=json.dumps(body).encode(), headers=hdr, method="POST")
            with urllib.request.urlopen(rq, timeout=30) as r:
                statuses.append(r.status)

        for rev, (num, den) in enumerate([(1, 3), (2, 3), (1, 1)], 1):
            ts = [threading.Thread(target=post, args=(e, rev, num, den))
                  for e in final]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
        self.assertEqual(statuses, [201] * (3 * len(final)))
        top = d.get("/v1/leaderboard").json()["version"]
        self.assertEqual(top, 3 * len(final))
        # Fewer fsyncs than versions: rounds held several versions.
        m = d.get("/metrics").body.decode()
        fsyncs = [int(float(line.split()[-1])) for line in m.split("\n")
                  if line.startswith("tallyd_journal_fsync_seconds_count")]
        self.assertTrue(fsyncs and fsyncs[0] < top, (fsyncs, top))
        ents = []
        for rel in tile_paths(top):
            if rel.startswith("tile/entries/"):
                r = d.get("/log/" + rel)
                self.assertEqual(r.status, 200, rel)
                ents += bundle_entries(r.body)
        self.assertEqual(len(ents), top)
        hashes = set()
        for v in range(1, top + 1):
            kept = d.get("/v1/versions/%d/leaderboard" % v)
            if kept.status == 302:
                kept = d.get(json.loads(kept.body)["location"])
            self.assertEqual(kept.status, 200, kept.body)
            self.assertEqual(kept.json()["version"], v)
            self.assertEqual(kept.header("Tally-Log-Size"), str(v))
            obj = json.loads(ents[v - 1])
            self.assertEqual(obj["version"], v)
            self.assertEqual(obj["leaderboard_sha256"],
                             hashlib.sha256(kept.body).hexdigest(), v)
            hashes.add(obj["leaderboard_sha256"])
        self.assertEqual(len(hashes), top)
        key = d.get("/log/key").body.decode().strip()
        out = self.verify("http://127.0.0.1:%d" % d.port, key, election)
        self.assertIn("every signed leaderboard reproduced "
                      "(every version's)", out)
        d.stop()

    def test_kill9_restart_append_only(self):
        ds = "no-2021"
        election = os.path.join(ELECTIONS, ds, "election.json")
        d = self.daemon(args=["--election", election],
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        night = Night(self, d, ds, random.Random(9))
        n = len(night.final)
        kept = []

        def keep():
            cp = d.get("/log/checkpoint").body
            path = os.path.join(d.tmp, "cp%d" % len(kept))
            with open(path, "wb") as f:
                f.write(cp)
            kept.append(path)
            return cp

        for p in range(n // 2):
            night.post(night.partial(p, 1, 2), retry=False)
            if p % 3 == 0:
                keep()
        key = d.get("/log/key").body.decode().strip()
        # Some versions whose checkpoint nobody asked for yet: the kill
        # lands between their append and any signature.
        for p in range(n // 2, n):
            e = night.partial(p, 1, 2)
            r = d.request("POST", "/v1/provinces/%s/results" %
                          e.pop("province"), headers=AUTH, body=e)
            self.assertEqual(r.status, 201, r.body)
        top = r.json()["version"]
        d.kill()
        d.start()
        self.assertEqual(d.get("/log/key").body.decode().strip(), key)
        cp = keep()
        self.assertEqual(checkpoint_size(cp), top)
        for p in range(n):
            night.post(night.partial(p, 1, 1), retry=False)
        keep()
        # A clean stop compacts the journal: the log stands on its own.
        d.stop()
        d.start()
        self.assertEqual(d.get("/log/key").body.decode().strip(), key)
        night.post(night.partial(0, 3, 3), retry=False)
        keep()
        url = "http://127.0.0.1:%d" % d.port
        out = self.verify(url, key, election, kept)
        self.assertIn("%d earlier checkpoints consistent" % len(kept), out)
        # A checkpoint file torn by a power cut (it is not synced) is
        # ignored; the tree is what counts.
        d.stop()
        cpf = os.path.join(d.data_dir, "tlog", "checkpoint")
        with open(cpf, "r+b") as f:
            f.truncate(20)
        d.start()
        self.wait_log(d, "not a signed note")
        self.verify(url, key, election, kept)
        # A log changed on disk is refused at start, naming the entry.
        d.stop()
        with open(os.path.join(d.data_dir, "tlog", "entries"), "r+b") as f:
            f.seek(40)
            c = f.read(1)
            f.seek(40)
            f.write(b"X" if c != b"X" else b"Y")
        r = subprocess.run(d.command(), capture_output=True, text=True,
                           env=d.env, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("entry 0 does not match its hash", r.stdout + r.stderr)

    def test_kill9_right_after_a_snapshot(self):
        """A kill -9 between a snapshot's writer ending and the daemon
        seeing it end: the next start removes the journal segments the
        snapshot covers, so the log's entries must be on disk before the
        snapshot is taken, and before a checkpoint naming them is.  They
        waited in memory: the start found a checkpoint of size 12 over an
        empty log and refused to start (or, without the checkpoint, turned
        the log off)."""
        ds = "no-2021"
        election = os.path.join(ELECTIONS, ds, "election.json")
        d = self.daemon(args=["--election", election], start=False,
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        conf = os.path.join(d.tmp, "t.conf")
        with open(conf, "w") as f:
            f.write("snapshot_every 12\n")
        d.args += ["-f", conf]
        d.start()
        night = Night(self, d, ds, random.Random(12))
        key = d.get("/log/key").body.decode().strip()
        snaps = lambda: {n for n in os.listdir(d.data_dir)
                         if n.startswith("snapshot-") and n.endswith(".snap")}
        before = snaps()
        for p in range(12):
            e = night.partial(p, 1, 2)
            r = d.request("POST", "/v1/provinces/%s/results" %
                          e.pop("province"), headers=AUTH, body=e)
            self.assertEqual(r.status, 201, r.body)
        top = r.json()["version"]
        self.assertEqual(checkpoint_size(d.get("/log/checkpoint").body), top)
        deadline = time.monotonic() + 20
        while snaps() == before:
            self.assertLess(time.monotonic(), deadline, d.logtext())
            time.sleep(0.002)
        d.kill()
        d.start()
        self.assertEqual(d.get("/log/key").body.decode().strip(), key)
        cp = d.get("/log/checkpoint")
        self.assertEqual(cp.status, 200, cp.body)
        self.assertEqual(checkpoint_size(cp.body), top)
        self.verify("http://127.0.0.1:%d" % d.port, key, election)

    def test_full_tiles(self):
        """Past 256 versions: a full tile (immutable, for ever the same
        bytes), the next partial one, a level-1 tile; still verified."""
        ds = "no-2021"
        election = os.path.join(ELECTIONS, ds, "election.json")
        d = self.daemon(args=["--election", election],
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        with open(os.path.join(ELECTIONS, ds, "results.json")) as f:
            res = json.load(f)["results"]
        n = 300
        for i in range(n):
            e = dict(res[i % len(res)])
            pid = e.pop("province")
            e["revision"] = i // len(res) + 1
            e["votes"] = {k: v + i for k, v in e["votes"].items()}
            r = d.request("POST", "/v1/provinces/%s/results" % pid, body=e,
                          headers=AUTH)
            self.assertEqual(r.status, 201, r.body)
            if i == 255:
                full = d.get("/log/tile/0/000").body
                ents = d.get("/log/tile/entries/000").body
        self.assertEqual(d.get("/log/tile/0/000").body, full)
        self.assertEqual(d.get("/log/tile/entries/000").body, ents)
        self.assertEqual(len(full), 256 * 32)
        self.assertError(d.get("/log/tile/0/001"), 404, "not_found")
        self.assertEqual(d.get("/log/tile/0/001.p/44").status, 200)
        self.assertEqual(len(d.get("/log/tile/1/000.p/1").body), 32)
        # A narrower partial tile than the tree has (an older checkpoint's).
        self.assertEqual(len(d.get("/log/tile/entries/001.p/10").body) > 0,
                         True)
        self.assertError(d.get("/log/tile/0/001.p/45"), 404, "not_found")
        mirror = os.path.join(d.tmp, "mirror")
        self.mirror(d, mirror)
        key = d.get("/log/key").body.decode().strip()
        out = self.verify(mirror, key, election)
        self.assertIn("%d entries" % n, out)
        py = subprocess.run([sys.executable, PYVERIFY, "log", mirror, "--key",
                             key], capture_output=True, text=True, timeout=300)
        self.assertEqual(py.returncode, 0, py.stdout + py.stderr)
        d.stop()

    def test_log_off(self):
        """transparency_log 0: no log, no receipts, /log/ answers 503."""
        ds = "no-2021"
        election = os.path.join(ELECTIONS, ds, "election.json")
        conf = os.path.join(tempfile.mkdtemp(prefix="tlogd-"), "tallyd.conf")
        self.addCleanup(shutil.rmtree, os.path.dirname(conf), True)
        with open(conf, "w") as f:
            f.write("election %s\ntransparency_log 0\n" % election)
        d = self.daemon(args=["-f", conf], env={"TALLYD_INGEST_TOKEN": TOKEN})
        with open(os.path.join(ELECTIONS, ds, "results.json")) as f:
            e = dict(json.load(f)["results"][0])
        pid = e.pop("province")
        e["revision"] = 1
        r = d.request("POST", "/v1/provinces/%s/results" % pid, body=e,
                      headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        self.assertNotIn("log", r.json())
        self.assertError(d.get("/log/checkpoint"), 503, "log_unavailable")
        self.assertIsNone(d.get("/v1/leaderboard").header("Tally-Log-Size"))
        self.assertFalse(os.path.exists(os.path.join(d.data_dir, "tlog")))
        d.stop()


class TlogWitnessTest(DaemonTest):
    """tallyctl witness through running daemons: a listed witness's
    cosignature is taken and served (/log/witnessed, /log/checkpoint);
    an unlisted or forged one is refused; the witness refuses a log that
    rolled back or forked (two daemons signing with one key)."""

    def witness(self, d, wdir, *args, expect=0):
        env = dict(os.environ, TALLYD_TOKEN=TOKEN,
                   TALLYD_URL="http://127.0.0.1:%d" % d.port)
        w = subprocess.run([TALLYCTL, "witness"] + list(args) +
                           ["--dir", wdir], capture_output=True, text=True,
                           timeout=120, env=env)
        self.assertEqual(w.returncode, expect, w.stdout + w.stderr)
        return w.stdout + w.stderr

    def post_n(self, d, res, n, first, bump=0):
        for i in range(first, first + n):
            e = dict(res[i % len(res)])
            pid = e.pop("province")
            e["revision"] = i // len(res) + 1
            e["votes"] = {k: v + bump for k, v in e["votes"].items()}
            r = d.request("POST", "/v1/provinces/%s/results" % pid, body=e,
                          headers=AUTH)
            self.assertEqual(r.status, 201, r.body)

    def cosig_ok(self, note, wkey, body):
        """The witness's line checked apart from tallyd (RFC 8032 in
        tests/tlog/pyverify.py, the message of C2SP tlog-cosignature)."""
        sys.path.insert(0, os.path.dirname(PYVERIFY))
        import pyverify
        name, kid, b64 = wkey.split("+", 2)
        pub = base64.b64decode(b64)
        self.assertEqual(pub[0], 4)
        for line in note.split(b"\n\n")[-1].decode().split("\n"):
            if line.startswith("\u2014 %s " % name):
                raw = base64.b64decode(line.split(" ")[2])
                if raw[:4].hex() != kid:
                    continue
                t = int.from_bytes(raw[4:12], "big")
                msg = b"cosignature/v1\ntime %d\n" % t + body
                return pyverify.ed25519_verify(pub[1:], msg, raw[12:])
        return False

    def test_witness_cosigns_and_catches_forks(self):
        ds = "no-2021"
        election = os.path.join(ELECTIONS, ds, "election.json")
        with open(os.path.join(ELECTIONS, ds, "results.json")) as f:
            res = json.load(f)["results"]
        tmp = tempfile.mkdtemp(prefix="tlogw-")
        self.addCleanup(shutil.rmtree, tmp, True)
        keyfile = os.path.join(tmp, "log.key")
        with open(keyfile, "w") as f:
            f.write(base64.b64encode(os.urandom(32)).decode() + "\n")
        os.chmod(keyfile, 0o600)
        conf = os.path.join(tmp, "tallyd.conf")
        with open(conf, "w") as f:
            f.write("election %s\nlog_key %s\n" % (election, keyfile))
        a = self.daemon(args=["-f", conf], env={"TALLYD_INGEST_TOKEN": TOKEN})
        lkey = a.get("/log/key").body.decode().strip()
        wdir = os.path.join(tmp, "w1")
        wkey = self.witness(a, wdir, "key", "--name",
                            "witness.test/w1").strip()
        self.assertTrue(wkey.startswith("witness.test/w1+"), wkey)
        self.assertNotEqual(wkey.split("+")[1], lkey.split("+")[1])
        # Made once: the same key again.
        self.assertEqual(self.witness(a, wdir, "key").strip(), wkey)
        self.assertError(a.get("/log/witnessed"), 404, "not_found")
        self.post_n(a, res, 5, 0)
        # Not listed: refused (403), nothing kept.
        out = self.witness(a, wdir, "cosign", "--log-key", lkey, expect=6)
        self.assertIn("unknown_witness", out)
        with open(os.path.join(a.data_dir, "tlog", "witnesses"), "w") as f:
            f.write("# witnesses of this log\n%s\n" % wkey)
        out = self.witness(a, wdir, "cosign", "--log-key", lkey)
        self.assertIn("size 5", out)
        w = a.get("/log/witnessed")
        self.assertEqual(w.status, 200, w.body)
        body = w.body.split(b"\n\n")[0] + b"\n"
        self.assertEqual(checkpoint_size(w.body), 5)
        self.assertTrue(self.cosig_ok(w.body, wkey, body))
        # The checkpoint of that size carries the cosignature too, and
        # verifiers of the log ignore it.
        cp = a.get("/log/checkpoint").body
        self.assertEqual(cp, w.body)
        mirror = os.path.join(tmp, "mirror")
        TlogdTest.mirror(self, a, mirror)
        self.assertEqual(subprocess.run(
            [sys.executable, PYVERIFY, "log", mirror, "--key", lkey],
            capture_output=True, timeout=300).returncode, 0)
        self.assertIn("ok:", TlogdTest.verify(self, mirror, lkey, election))
        # The log grows; the witness checks it extends what it cosigned.
        self.post_n(a, res, 300, 5)
        out = self.witness(a, wdir, "cosign", "--log-key", lkey)
        self.assertIn("size 305", out)
        self.assertIn("was size 5", out)
        self.assertEqual(checkpoint_size(a.get("/log/witnessed").body), 305)
        # An observer who trusts the witness: the log extends what it
        # cosigned (and the leaderboard it signed replays).
        url = "http://127.0.0.1:%d" % a.port
        v = subprocess.run([TALLYCTL, "verify", "log", url, "--key", lkey,
                            "--election", election, "--witness", wkey],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        self.assertIn("1 earlier checkpoint consistent", v.stdout)
        other = self.witness(a, os.path.join(tmp, "w2"), "key", "--name",
                             "witness.test/w2").strip()
        v = subprocess.run([TALLYCTL, "verify", "log", url, "--key", lkey,
                            "--election", election, "--witness", other],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(v.returncode, 9, v.stdout + v.stderr)
        self.assertIn("witnessed: no cosignature by the witness", v.stderr)
        # A forged cosignature (a flipped byte of the signature) and a
        # checkpoint this log never signed are refused.
        note = a.get("/log/witnessed").body
        i = note.rindex(b"\n", 0, len(note) - 1) + 1
        line = note[i:]
        sig = bytearray(base64.b64decode(line.split(b" ")[2]))
        sig[20] ^= 1
        bad = note[:i] + line.rsplit(b" ", 1)[0] + b" " + \
            base64.b64encode(bytes(sig)) + b"\n"
        r = self.raw_post(a, bad)
        self.assertEqual(r[0], 422, r)
        self.assertIn(b"bad_cosignature", r[1])
        r = self.raw_post(a, note.replace(b"\n305\n", b"\n304\n", 1))
        self.assertEqual(r[0], 422, r)
        self.assertIn(b"not_our_checkpoint", r[1])
        r = self.raw_post(a, note, token=None)
        self.assertEqual(r[0], 401, r)
        # Rolled back: another tallyd signing with the same key (same
        # definition: the same origin) that is behind.
        b = self.daemon(args=["-f", conf], env={"TALLYD_INGEST_TOKEN": TOKEN})
        self.post_n(b, res, 300, 0)
        out = self.witness(b, wdir, "cosign", "--log-key", lkey, expect=9)
        self.assertIn("rolled back", out)
        # Forked: the same size with other entries.
        self.post_n(b, res, 5, 300, bump=1)
        out = self.witness(b, wdir, "cosign", "--log-key", lkey, expect=9)
        self.assertIn("forked", out)
        self.assertTrue(os.path.exists(os.path.join(wdir, "fork-305")))
        # The witness kept its memory: a is still fine.
        self.post_n(a, res, 2, 305)
        self.witness(a, wdir, "cosign", "--log-key", lkey)
        # Across a restart the cosigned checkpoint is still served.
        a.stop()
        a.start()
        self.assertEqual(checkpoint_size(a.get("/log/witnessed").body), 307)
        a.stop()
        b.stop()

    def raw_post(self, d, body, token=TOKEN):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
        h = {"Content-Type": "application/json"}
        if token:
            h["Authorization"] = "Bearer " + token
        c.request("POST", "/log/cosignature",
                  body=json.dumps({"note": body.decode()}), headers=h)
        r = c.getresponse()
        out = (r.status, r.read())
        c.close()
        return out


try:
    import natscluster
    import crashloop
    HAVE_NATS = natscluster.have_nats()
except ImportError:
    HAVE_NATS = False


@unittest.skipUnless(HAVE_NATS, "nats-server is not installed")
class TlogdClusterTest(DaemonTest):
    def test_three_nodes_one_checkpoint(self):
        tmp = tempfile.mkdtemp(prefix="tallyd-tlog-cluster-")
        self.addCleanup(shutil.rmtree, tmp, True)
        servers = natscluster.nats_cluster(tmp, 3)
        self.addCleanup(lambda: [s.stop() for s in servers])
        keyfile = os.path.join(tmp, "log.key")
        with open(keyfile, "w") as f:
            f.write(base64.b64encode(os.urandom(32)).decode() + "\n")
        os.chmod(keyfile, 0o600)
        nodes = []
        for i in range(3):
            n = natscluster.Node(TALLYD, "tallyd%d" % (i + 1), tmp,
                                 [s.url for s in servers],
                                 crashloop.election_path(),
                                 env={"TALLYD_INGEST_TOKEN": TOKEN})
            n.conf_extra = "log_key %s\n" % keyfile
            nodes.append(n)
        for n in nodes:
            n.start(wait=False)
        for n in nodes:
            try:
                n.wait_ready()
            except RuntimeError as e:
                if "without libnats" in str(e):
                    self.skipTest("tallyd was built without libnats")
                raise
        base = crashloop.base_entries()
        rnd = random.Random(5)
        pids = sorted(base)
        rnd.shuffle(pids)
        hdr = {"Authorization": "Bearer " + TOKEN,
               "Content-Type": "application/json"}
        for i, pid in enumerate(pids[:12]):
            e = dict(base[pid])
            e.pop("province")
            e["revision"] = 1
            rq = urllib.request.Request(
                nodes[i % 3].base + "/v1/provinces/%s/results" % pid,
                data=json.dumps(e).encode(), headers=hdr, method="POST")
            with urllib.request.urlopen(rq, timeout=20) as r:
                self.assertEqual(r.status, 201)
                self.assertIn("log", json.loads(r.read()))

        def get(n, path):
            with urllib.request.urlopen(n.base + path, timeout=10) as r:
                return r.read()

        # Every node at the stream's end (12 posts, and whatever else the
        # stream holds: tree size = version = stream sequence).
        deadline = time.time() + 30
        while True:
            vs = [n.health()["version"] for n in nodes]
            if (len(set(vs)) == 1 and vs[0] >= 12) or time.time() > deadline:
                break
            time.sleep(0.2)
        cps = [get(n, "/log/checkpoint") for n in nodes]
        self.assertEqual([checkpoint_size(c) for c in cps], vs)
        self.assertEqual(cps[0], cps[1])
        self.assertEqual(cps[0], cps[2])
        # The same entries on every node, each with the SHA-256 of the
        # leaderboard every node serves for its version.
        size = vs[0]
        tiles = [b"".join(get(n, "/log/" + rel) for rel in tile_paths(size)
                          if rel.startswith("tile/entries/"))
                 for n in nodes]
        self.assertEqual(tiles[0], tiles[1])
        self.assertEqual(tiles[0], tiles[2])
        for i, e in enumerate(bundle_entries(tiles[0])):
            obj = json.loads(e)
            for n in nodes:
                body = get(n, "/v1/versions/%d/leaderboard" % (i + 1))
                self.assertEqual(obj["leaderboard_sha256"],
                                 hashlib.sha256(body).hexdigest(),
                                 (n.base, i + 1))
        key = get(nodes[0], "/log/key").decode().strip()
        out = subprocess.run(
            [TALLYCTL, "verify", "log", nodes[2].base, "--key", key,
             "--election", crashloop.election_path()],
            capture_output=True, text=True, timeout=300)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        for n in nodes:
            n.stop()


if __name__ == "__main__":
    main()
