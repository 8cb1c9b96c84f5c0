#!/usr/bin/env python3
"""Issue 27: tallyctl verify and the independent Python verifier agree.

Logs are written by tests/tlog/tlog_gen from real elections (each province's
official figures arriving in cumulative revisions, corrections and batches
included, replayed through libtally's journal path), then:

- both verifiers accept every honest log, its kept checkpoints and receipts;
- a byte flipped anywhere (checkpoint, entry tiles, hash tiles, an old
  checkpoint, a receipt) makes both refuse, and tallyctl names the file;
- a signed, well-formed log that lies about one leaderboard is refused by
  tallyctl's replay, naming the entry;
- an old checkpoint from a forked log is refused;
- a log whose first entries are of the older form (no leaderboard_sha256,
  the checkpoints of those sizes signing the leaderboard) verifies, with
  a note naming them; one whose entries go back to that form is refused;
- the same mirror served over HTTP verifies by URL.

Environment: TALLYCTL, TLOG_GEN (binaries), TALLYD_SOURCE_ROOT.
"""

import functools
import http.server
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

ROOT = os.environ.get("TALLYD_SOURCE_ROOT",
                      os.path.join(os.path.dirname(__file__), "..", ".."))
TALLYCTL = os.environ.get("TALLYCTL", "build-release/ctl/tallyctl")
TLOG_GEN = os.environ.get("TLOG_GEN", "build-release/tests/tlog_gen")
PYVERIFY = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "pyverify.py")
DATA = os.path.join(ROOT, "tests", "data", "elections")


def run(args):
    p = subprocess.run(args, capture_output=True, text=True, timeout=600)
    # A sanitizer report is a failure even where a refusal is expected.
    if "Sanitizer" in p.stderr or "runtime error:" in p.stderr:
        raise AssertionError("sanitizer report from %s:\n%s"
                             % (args, p.stderr))
    return p.returncode, p.stdout, p.stderr


class TlogVerify(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tlog-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def gen(self, dataset, name="log", *opts):
        out = os.path.join(self.tmp, name)
        rc, so, se = run([TLOG_GEN, os.path.join(DATA, dataset), out] +
                         [str(o) for o in opts])
        self.assertEqual(rc, 0, se)
        return out

    def ctl(self, log, *extra):
        return run([TALLYCTL, "verify", "log", log, "--key",
                    os.path.join(log, "key")] + list(extra))

    def py(self, log, *extra):
        return run([sys.executable, PYVERIFY, "log", log, "--key",
                    os.path.join(log, "key")] + list(extra))

    def test_older_entry_form(self):
        # Upgraded: the first 150 entries without their leaderboard's hash.
        log = self.gen("es-2019-11", "up", "--entries", 400, "--old-form",
                       150, "--keep", 100, "--keep", 300)
        rc, so, se = self.ctl(log, "--from", os.path.join(
            log + ".old", "checkpoint.100"), "--from", os.path.join(
            log + ".old", "checkpoint.300"))
        self.assertEqual(rc, 0, so + se)
        self.assertIn("note: 150 entries from version 1 carry no "
                      "leaderboard_sha256", so)
        rc, so, se = self.py(log)
        self.assertEqual(rc, 0, so + se)
        self.assertIn("150 entries of the older form", so)
        with open(os.path.join(log + ".old", "checkpoint.100")) as f:
            self.assertIn("\nleaderboard-sha256 ", f.read())
        # A lie in an older-form checkpoint is still caught by the replay.
        lie = self.gen("es-2019-11", "lie", "--entries", 400, "--old-form",
                       400, "--lie", 400)
        rc, so, se = self.ctl(lie)
        self.assertEqual(rc, 9, so + se)
        self.assertIn("the checkpoint signed", se)
        # Back to the older form after entries that carry the hash.
        down = self.gen("es-2019-11", "down", "--entries", 300,
                        "--old-after", 200)
        rc, so, se = self.ctl(down)
        self.assertEqual(rc, 9, so + se)
        self.assertIn("entry 200 (version 201): no leaderboard_sha256 after "
                      "entries that carry one", se)
        rc, so, se = self.py(down)
        self.assertEqual(rc, 1, so + se)

    def test_selftest_vectors(self):
        rc, so, se = run([sys.executable, PYVERIFY, "selftest"])
        self.assertEqual(rc, 0, so + se)

    def test_real_elections_both_accept(self):
        for ds in ["es-2019-11", "no-2021", "pl-2019", "sk-2020",
                   "cz-2017"]:
            with self.subTest(dataset=ds):
                log = self.gen(ds, ds, "--entries", 600, "--seed", 7,
                               "--keep", 1, "--keep", 256, "--keep", 300,
                               "--receipt", 0, "--receipt", 255,
                               "--receipt", 599)
                froms = []
                for s in (1, 256, 300):
                    froms += ["--from", log + ".old/checkpoint.%d" % s]
                rc, so, se = self.ctl(log, *froms)
                self.assertEqual(rc, 0, se)
                self.assertIn("every signed leaderboard reproduced "
                              "(every version's)", so)
                rc, so, se = self.py(log, *froms)
                self.assertEqual(rc, 0, se)
                for r in (0, 255, 599):
                    f = log + ".receipts/%d.tlog-proof" % r
                    rc, so, se = run([TALLYCTL, "verify", "receipt", f,
                                      "--key", os.path.join(log, "key")])
                    self.assertEqual(rc, 0, se)
                    self.assertIn("version %d is entry %d" % (r + 1, r), so)
                    rc, so, se = run([sys.executable, PYVERIFY, "receipt",
                                      f, "--key", os.path.join(log, "key")])
                    self.assertEqual(rc, 0, se)

    def test_flipped_bytes_refused_by_both(self):
        log = self.gen("es-2019-11", "log", "--entries", 520, "--keep", 300,
                       "--receipt", 400)
        old = log + ".old/checkpoint.300"
        receipt = log + ".receipts/400.tlog-proof"
        targets = []
        for d, _, files in os.walk(log):
            for f in files:
                rel = os.path.relpath(os.path.join(d, f), log)
                if rel not in ("key", "election.json"):
                    targets.append(rel)
        self.assertIn("tile/entries/002.p/8", targets)
        self.assertIn("tile/0/002.p/8", targets)
        self.assertIn("tile/1/000.p/2", targets)
        rnd = random.Random(27)
        tried = 0
        for rel in sorted(targets):
            path = os.path.join(log, rel)
            with open(path, "rb") as f:
                orig = f.read()
            offs = {0, len(orig) - 1} | {rnd.randrange(len(orig))
                                         for _ in range(6)}
            for off in sorted(offs):
                bad = bytearray(orig)
                bad[off] ^= 1 << rnd.randrange(8)
                with open(path, "wb") as f:
                    f.write(bad)
                rc, so, se = self.ctl(log)
                prc, pso, pse = self.py(log)
                with open(path, "wb") as f:
                    f.write(orig)
                tried += 1
                with self.subTest(file=rel, offset=off):
                    self.assertNotEqual(rc, 0, "tallyctl accepted")
                    self.assertNotEqual(prc, 0, "pyverify accepted")
                    # The failure names where: the tile, or the
                    # checkpoint (whose root then differs).
                    self.assertTrue(rel in se or "checkpoint" in se, se)
        self.assertGreater(tried, 40)
        for path, kind in ((old, "from"), (receipt, "receipt")):
            with open(path, "rb") as f:
                orig = f.read()
            for off in range(0, len(orig), 7):
                bad = bytearray(orig)
                bad[off] ^= 0x04
                with open(path, "wb") as f:
                    f.write(bad)
                if kind == "from":
                    rc, _, se = self.ctl(log, "--from", path)
                    prc, _, _ = self.py(log, "--from", path)
                else:
                    rc, _, se = run([TALLYCTL, "verify", "receipt", path,
                                     "--key", os.path.join(log, "key")])
                    prc, _, _ = run([sys.executable, PYVERIFY, "receipt",
                                     path, "--key",
                                     os.path.join(log, "key")])
                with open(path, "wb") as f:
                    f.write(orig)
                with self.subTest(file=kind, offset=off):
                    self.assertNotEqual(rc, 0, "tallyctl accepted")
                    self.assertNotEqual(prc, 0, "pyverify accepted")

    def test_appended_bytes_refused_grown_mirror_accepted(self):
        log = self.gen("es-2019-11", "log", "--entries", 512, "--stop", 300)
        for rel in ("tile/entries/001.p/44", "tile/0/001.p/44",
                    "tile/1/000.p/1"):
            path = os.path.join(log, rel)
            with open(path, "rb") as f:
                orig = f.read()
            with open(path, "ab") as f:
                f.write(orig[:34])
            rc, _, se = self.ctl(log)
            prc, _, _ = self.py(log)
            with open(path, "wb") as f:
                f.write(orig)
            with self.subTest(file=rel):
                self.assertEqual(rc, 9)
                self.assertIn(rel, se)
                self.assertNotEqual(prc, 0)
        # A mirror that grew since the checkpoint: full tiles stand in for
        # the partial ones the checkpoint names, and still verify.
        big = self.gen("es-2019-11", "big", "--entries", 512)
        for rel in ("tile/entries/001.p/44", "tile/0/001.p/44"):
            os.remove(os.path.join(log, rel))
        for rel in ("tile/entries/001", "tile/0/001"):
            shutil.copy(os.path.join(big, rel), os.path.join(log, rel))
        rc, so, se = self.ctl(log)
        self.assertEqual(rc, 0, se)
        rc, so, se = self.py(log)
        self.assertEqual(rc, 0, se)

    def test_lying_leaderboard_caught_by_replay(self):
        # The entry of version 123 carries version 122's leaderboard hash
        # (a stale leaderboard published as new).
        log = self.gen("no-2021", "log", "--entries", 300, "--keep", 123,
                       "--lie", 123)
        old = log + ".old/checkpoint.123"
        rc, so, se = self.ctl(log, "--from", old)
        self.assertEqual(rc, 9, so + se)
        self.assertIn("tile/entries/000: entry 122 (version 123): the "
                      "replayed leaderboard has SHA-256", se)
        # Signed and well formed: what the structure alone cannot see.
        prc, _, _ = self.py(log, "--from", old)
        self.assertEqual(prc, 0)
        short = self.gen("no-2021", "short", "--entries", 300, "--stop", 123,
                         "--lie", 123)
        rc, so, se = self.ctl(short)
        self.assertEqual(rc, 9, so + se)
        self.assertIn("entry 122 (version 123): the replayed leaderboard",
                      se)

    def test_forked_log_refused(self):
        log = self.gen("pl-2019", "log", "--entries", 300, "--seed", 1)
        fork = self.gen("pl-2019", "fork", "--entries", 300, "--seed", 2,
                        "--keep", 100)
        rc, so, se = self.ctl(log, "--from", fork + ".old/checkpoint.100")
        self.assertEqual(rc, 9)
        self.assertIn("rewritten (or forked)", se)
        prc, _, _ = self.py(log, "--from", fork + ".old/checkpoint.100")
        self.assertNotEqual(prc, 0)
        # A checkpoint beyond the log: a rollback.
        big = self.gen("pl-2019", "big", "--entries", 301, "--seed", 1,
                       "--keep", 301)
        rc, so, se = self.ctl(log, "--from", big + ".old/checkpoint.301")
        self.assertEqual(rc, 9)
        self.assertIn("rolled back", se)

    def test_wrong_key_refused(self):
        log = self.gen("sk-2020", "log", "--entries", 50)
        other = self.gen("sk-2020", "other", "--entries", 50,
                         "--key-seed", 2)
        rc, so, se = run([TALLYCTL, "verify", "log", log, "--key",
                          os.path.join(other, "key")])
        self.assertEqual(rc, 9)
        self.assertIn("no signature by the given key", se)

    def test_verify_by_url(self):
        log = self.gen("es-2019-11", "log", "--entries", 300)
        handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                    directory=self.tmp)
        handler.log_message = lambda *a: None
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        try:
            url = "http://127.0.0.1:%d" % srv.server_address[1]
            rc, so, se = run([TALLYCTL, "verify", "log", url, "--key",
                              os.path.join(log, "key"), "--election",
                              os.path.join(log, "election.json")])
            self.assertEqual(rc, 0, se)
            # The server's /log/... is the mirror: same verdict.
            self.assertIn("300 entries", so)
        finally:
            srv.shutdown()
            srv.server_close()


if __name__ == "__main__":
    unittest.main()
