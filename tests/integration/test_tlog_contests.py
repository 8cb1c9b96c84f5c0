#!/usr/bin/env python3
"""Issue 27 with issue 23: a transparency log for every contest.

Each contest has its own version counter, so each has its own log (tree
size = that contest's version) under /v1/contests/{c}/log/ (the first
contest's also under /log/), signed with the daemon's one key under an
origin naming the contest; a further contest's entries say "contest".

- Two contests (Spain April 2019 first, Czechia 2017), single posts to
  each interleaved with batches across contests: every 201 carries the
  receipt of its contest's entry (a batch across contests one per part),
  each checkpoint's size is its contest's version, each entry hashes its
  contest's leaderboard as served at /v1/contests/{c}/versions/{n}; kill -9
  and restart keep each contest's root at every old size (--from); then
  `tallyctl verify log URL --contest C` replays each log against its own
  definition, the contest URL works as well, pyverify.py agrees on a mirror
  of each, receipts verify, and a flipped byte in one contest's entry tile
  fails that contest's log only.
- SIGHUP adding a contest opens its log (its first post has a receipt),
  removing one without results closes it (its files stay); kill -9 and the
  added contest's log verifies.

Environment: TALLYD, TALLYCTL.
"""

import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from harness import ELECTIONS, DaemonTest, main
from tlogpaths import bundle_entries, tile_n, tile_paths  # noqa: F401

TOKEN = "ingest-token-for-the-tlog-contests-0123456789"
AUTH = {"Authorization": "Bearer " + TOKEN}
TALLYCTL = os.environ.get("TALLYCTL", "tallyctl")
PYVERIFY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                        "tlog", "pyverify.py")
ES, CZ, NO = "es-2019-04", "cz-2017", "no-2021"


def definition(ds):
    return os.path.join(ELECTIONS, ds, "election.json")


def entries(ds):
    with open(os.path.join(ELECTIONS, ds, "results.json")) as f:
        out = []
        for e in json.load(f)["results"]:
            e = dict(e)
            out.append((e.pop("province"), e))
        return out


def size_of(note):
    return int(note.split(b"\n")[1])


def leaf_b64(entry):
    return base64.b64encode(hashlib.sha256(b"\x00" + entry).digest()).decode()


def receipt_entry(body):
    for line in body.split(b"\n"):
        if line.startswith(b"extra "):
            return base64.b64decode(line[6:])
    raise AssertionError("no extra line in %r" % body[:200])


class TlogContests(DaemonTest):
    def tmpdir(self):
        t = tempfile.mkdtemp(prefix="tallyd-tlogc-")
        self.addCleanup(shutil.rmtree, t, True)
        return t

    def log_prefix(self, contest):
        return "/v1/contests/%s/log/" % contest

    def version(self, d, contest):
        for c in d.get("/v1/contests").json()["contests"]:
            if c["id"] == contest:
                return c["version"]
        raise AssertionError("no contest %s" % contest)

    def check_receipt(self, d, contest, log, version):
        """A 201's "log" member: the contest's entry of `version`, in its
        own log, as its proof serves it (and tallyctl verifies it)."""
        self.assertEqual(log["index"], version - 1, (contest, log))
        r = d.get(self.log_prefix(contest) + "proof/%d" % log["index"])
        self.assertEqual(r.status, 200, r.body)
        entry = receipt_entry(r.body)
        self.assertEqual(leaf_b64(entry), log["leaf_hash"], contest)
        obj = json.loads(entry)
        self.assertEqual(obj["version"], version)
        if contest == ES:
            self.assertNotIn("contest", obj)    # the first's: as alone
        else:
            self.assertEqual(obj["contest"], contest)
        return r.body

    def post(self, d, contest, pid, body, via_plain=False):
        path = ("/v1/provinces/%s/results" % pid if via_plain else
                "/v1/contests/%s/provinces/%s/results" % (contest, pid))
        r = d.request("POST", path, body=body, headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        a = r.json()
        self.assertIn("log", a, a)
        self.check_receipt(d, contest, a["log"], a["version"])
        return a["version"]

    def batch(self, d, parts):
        """A batch across contests: [(contest, pid, body)], Spain's entries
        left to the route; every applied part has its contest's receipt."""
        results = []
        for contest, pid, body in parts:
            e = dict(body, province=pid)
            if contest != ES:
                e["contest"] = contest
            results.append(e)
        r = d.request("POST", "/v1/results", body={"results": results},
                      headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        a = r.json()
        self.assertEqual(len(a["contests"]), len({p[0] for p in parts}))
        for c in a["contests"]:
            self.assertEqual(c["status"], "applied")
            self.assertIn("log", c, a)
            self.check_receipt(d, c["id"], c["log"], c["version"])
        return a

    def mirror(self, d, contest, dest):
        """The contest's log fetched with plain GETs (a mirror)."""
        pre = self.log_prefix(contest)
        cp = d.get(pre + "checkpoint").body
        os.makedirs(dest, exist_ok=True)
        with open(os.path.join(dest, "checkpoint"), "wb") as f:
            f.write(cp)
        for rel in tile_paths(size_of(cp)):
            r = d.get(pre + rel)
            self.assertEqual(r.status, 200, (contest, rel))
            path = os.path.join(dest, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(r.body)
        return cp

    def key(self, d, contest):
        r = d.get(self.log_prefix(contest) + "key")
        self.assertEqual(r.status, 200, r.body)
        return r.body.decode().strip()

    def verify(self, target, key, elections, contest=None, froms=(),
               expect=0):
        cmd = [TALLYCTL]
        if contest is not None:
            cmd += ["--contest", contest]
        cmd += ["verify", "log", target, "--key", key]
        for e in elections:
            cmd += ["--election", e]
        for f in froms:
            cmd += ["--from", f]
        v = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        self.assertEqual(v.returncode, expect, v.stdout + v.stderr)
        return v.stdout + v.stderr

    def pyverify(self, dest, key, expect=0, contest=None):
        cmd = [sys.executable, PYVERIFY, "log", dest, "--key", key]
        if contest is not None:
            cmd += ["--contest", contest]
        v = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        self.assertEqual(v.returncode, expect, v.stdout + v.stderr)
        return v.stdout + v.stderr

    def check_logs(self, d, contests):
        """Each contest's checkpoint: its size the contest's version, its
        origin naming it; the latest entry hashes the contest's kept
        leaderboard of that version; Tally-Log-Size says the version."""
        for c in contests:
            cp = d.get(self.log_prefix(c) + "checkpoint").body
            v = self.version(d, c)
            self.assertEqual(size_of(cp), v, c)
            self.assertTrue(cp.startswith(b"tallyd/%s/" % c.encode()), cp)
            lb = d.get("/v1/contests/%s/leaderboard" % c)
            self.assertEqual(lb.header("Tally-Log-Size"), str(v), c)
            if v == 0:
                continue
            proof = d.get(self.log_prefix(c) + "proof/%d" % (v - 1)).body
            obj = json.loads(receipt_entry(proof))
            self.assertEqual(obj["leaderboard_sha256"],
                             hashlib.sha256(lb.body).hexdigest(), c)
        # The plain /log/ is the first contest's log.
        self.assertEqual(d.get("/log/checkpoint").body,
                         d.get(self.log_prefix(ES) + "checkpoint").body)
        self.assertEqual(d.get("/log/key").body,
                         d.get(self.log_prefix(ES) + "key").body)

    def test_two_contests_each_with_its_log(self):
        d = self.daemon(args=["--election", definition(ES), "--election",
                              definition(CZ)],
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        es, cz = entries(ES), entries(CZ)
        # Interleaved: singles to each (Spain through both routes), and
        # batches across contests.
        self.post(d, ES, *es[0], via_plain=True)
        self.post(d, CZ, *cz[0])
        self.post(d, CZ, *cz[1])
        self.batch(d, [(ES, ) + es[1], (CZ, ) + cz[2], (CZ, ) + cz[3]])
        self.post(d, ES, *es[2])
        self.batch(d, [(CZ, ) + cz[4], (ES, ) + es[3]])
        self.assertEqual((self.version(d, ES), self.version(d, CZ)), (4, 4))
        self.check_logs(d, (ES, CZ))
        keys = {c: self.key(d, c) for c in (ES, CZ)}
        self.assertNotEqual(keys[ES], keys[CZ])
        self.assertTrue(keys[CZ].startswith("tallyd/%s/" % CZ), keys[CZ])
        # Czechia's log in its own directory, with its verifier key.
        with open(os.path.join(d.data_dir, "contests", CZ, "tlog",
                               "key.pub")) as f:
            self.assertEqual(f.read().strip(), keys[CZ])
        k = subprocess.run([TALLYCTL, "--contest", CZ, "key", "--data-dir",
                            d.data_dir], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual((k.returncode, k.stdout.strip()), (0, keys[CZ]),
                         k.stderr)
        # Checkpoints kept before the crash.
        tmp = self.tmpdir()
        old = {}
        for c in (ES, CZ):
            old[c] = os.path.join(tmp, "%s.checkpoint" % c)
            with open(old[c], "wb") as f:
                f.write(d.get(self.log_prefix(c) + "checkpoint").body)
        d.kill()
        d.start()
        self.check_logs(d, (ES, CZ))
        # More after the restart, both ways.
        self.post(d, CZ, *cz[5])
        self.batch(d, [(ES, ) + es[4], (CZ, ) + cz[6]])
        self.post(d, ES, *es[5], via_plain=True)
        self.assertEqual((self.version(d, ES), self.version(d, CZ)), (6, 6))
        self.check_logs(d, (ES, CZ))
        url = "http://127.0.0.1:%d" % d.port
        both = [definition(ES), definition(CZ)]
        for c in (ES, CZ):
            # --contest picks the log and the definition to replay with.
            out = self.verify(url, keys[c], both, contest=c,
                              froms=[old[c]])
            self.assertIn("ok: tallyd/%s/" % c, out)
            self.assertIn("%d entries" % self.version(d, c), out)
            self.assertIn("1 earlier checkpoint consistent", out)
            # The contest's URL, with its definition alone, and with
            # --contest too (its log is not looked for twice as deep).
            self.verify(url + "/v1/contests/%s" % c, keys[c],
                        [definition(c)])
            self.verify(url + "/v1/contests/%s/" % c, keys[c],
                        [definition(c)], contest=c)
        # The wrong definition, or another contest's key: refused.
        self.verify(url, keys[CZ], [definition(ES)], contest=CZ, expect=9)
        self.verify(url, keys[ES], both, contest=CZ, expect=9)
        # Mirrors: tallyctl and pyverify agree on each.
        mirrors = {}
        for c in (ES, CZ):
            mirrors[c] = os.path.join(tmp, "mirror-" + c)
            self.mirror(d, c, mirrors[c])
            self.verify(mirrors[c], keys[c], both, froms=[old[c]])
            self.assertIn("ok:", self.pyverify(mirrors[c], keys[c],
                                               contest=c))
        # A receipt of each contest verifies with its key.
        for c in (ES, CZ):
            path = os.path.join(tmp, "%s.receipt" % c)
            with open(path, "wb") as f:
                f.write(d.get(self.log_prefix(c) + "proof/2").body)
            r = subprocess.run([TALLYCTL, "--contest", c, "verify",
                                "receipt", path, "--key", keys[c]],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("version 3 is entry 2 of tallyd/%s/" % c, r.stdout)
            # Not another contest's receipt.
            other = ES if c == CZ else CZ
            r = subprocess.run([TALLYCTL, "verify", "receipt", path,
                                "--key", keys[other]],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 9, r.stdout + r.stderr)
        # One flipped byte in Czechia's entry tile: Czechia's log fails,
        # Spain's holds.
        bad = os.path.join(tmp, "bad-" + CZ)
        shutil.copytree(mirrors[CZ], bad)
        tile = os.path.join(bad, "tile", "entries", "000.p/6")
        with open(tile, "rb") as f:
            b = bytearray(f.read())
        i = b.index(b'"votes"') + 12
        b[i] = ord("1") if b[i] != ord("1") else ord("2")
        with open(tile, "wb") as f:
            f.write(bytes(b))
        out = self.verify(bad, keys[CZ], both, expect=9)
        self.assertIn("tile/entries/000.p/6", out)
        self.pyverify(bad, keys[CZ], expect=1)
        self.verify(mirrors[ES], keys[ES], both)
        self.pyverify(mirrors[ES], keys[ES])

    def test_contests_swapped_at_a_restart(self):
        """The first contest's log is DATA_DIR/tlog: a restart that makes
        another contest first would take that log as its own (its entries
        for the new first's versions).  Refused, naming both."""
        d = self.daemon(args=["--election", definition(ES), "--election",
                              definition(CZ)],
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        es, cz = entries(ES), entries(CZ)
        self.post(d, ES, *es[0])
        self.post(d, CZ, *cz[0])
        self.post(d, CZ, *cz[1])
        d.stop()
        d.args = ["--election", definition(CZ), "--election", definition(ES)]
        d.expect_exit(1)
        d.start(wait=False)
        self.assertEqual(d.proc.wait(timeout=30), 1)
        self.assertIn("is the transparency log of contest %s, but contest "
                      "%s is served there" % (ES, CZ), d.logtext())
        # In the order they had, all is back.
        d.args = ["--election", definition(ES), "--election", definition(CZ)]
        d.start()
        self.check_logs(d, (ES, CZ))

    def test_reload_adds_and_removes_contest_logs(self):
        tmp = self.tmpdir()
        conf = os.path.join(tmp, "tallyd.conf")

        def write(contests):
            with open(conf, "w") as f:
                f.write("election %s\n" % definition(ES))
                for c in contests:
                    f.write("contest %s\n" % definition(c))

        def reload(text):
            n = d.logtext().count(text)
            d.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 20
            while d.logtext().count(text) <= n:
                self.assertLess(time.monotonic(), deadline, text)
                time.sleep(0.02)
        write([])
        d = self.daemon(args=["-f", conf],
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        es, cz = entries(ES), entries(CZ)
        self.post(d, ES, *es[0], via_plain=True)
        es_cp = d.get("/log/checkpoint").body
        # Czechia and Norway added: each its log, at once.
        write([CZ, NO])
        reload("reload: 3 contests served")
        self.post(d, CZ, *cz[0])
        self.batch(d, [(CZ, ) + cz[1], (ES, ) + es[1]])
        self.check_logs(d, (ES, CZ, NO))
        self.assertEqual(size_of(d.get(self.log_prefix(NO) +
                                       "checkpoint").body), 0)
        no_dir = os.path.join(d.data_dir, "contests", NO, "tlog")
        self.assertTrue(os.path.exists(os.path.join(no_dir, "entries")))
        # The first contest's log went on as it was (a prefix kept).
        cp_file = os.path.join(tmp, "es.checkpoint")
        with open(cp_file, "wb") as f:
            f.write(es_cp)
        # Norway (nothing counted) removed: its routes go, its files stay.
        write([CZ])
        reload("reload: 2 contests served")
        self.assertEqual(d.get(self.log_prefix(NO) + "checkpoint").status,
                         404)
        self.assertTrue(os.path.exists(os.path.join(no_dir, "entries")))
        self.post(d, CZ, *cz[2])
        d.kill()
        d.start()
        self.post(d, CZ, *cz[3])
        self.check_logs(d, (ES, CZ))
        url = "http://127.0.0.1:%d" % d.port
        both = [definition(ES), definition(CZ)]
        self.verify(url, self.key(d, CZ), both, contest=CZ)
        out = self.verify(url, self.key(d, ES), both, froms=[cp_file])
        self.assertIn("2 entries", out)
        # Norway back: its log (empty, left on disk) is taken again.
        write([CZ, NO])
        reload("reload: 3 contests served")
        self.post(d, NO, *entries(NO)[0])
        self.verify(url, self.key(d, NO), [definition(NO)], contest=NO)


if __name__ == "__main__":
    main()
