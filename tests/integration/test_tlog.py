#!/usr/bin/env python3
"""Issue 27: the log's leaderboard hashes are the bytes the daemon serves.

A real tallyd takes a night of posts on a real election (single provinces,
a batch, corrections, a retry that is a duplicate, a stale revision that is
refused); after every applied POST the test keeps the SHA-256 of the exact
bytes of GET /v1/leaderboard and of /v1/versions/{n}/leaderboard.  Then the
log is made from the daemon's own journal (tests/tlog/tlog_gen --journal,
one entry per record, as the daemon will make it) and:

- tallyctl verify replays it through libtally and accepts it (every
  signed leaderboard reproduced, every version's);
- every entry carries the SHA-256 of the bytes the daemon served for its
  version, the replay's leaderboard at every version is those bytes
  (tallyctl verify leaderboard FILE --at N, for each N), and the tree size
  is the daemon's version;
- the daemon's own log (DATA_DIR/tlog/entries) is, byte for byte, the log
  made from its journal by the replay.

Environment: TALLYD, TALLYCTL, TLOG_GEN.
"""

import hashlib
import json
import os
import random
import shutil
import subprocess

from harness import ELECTIONS, DaemonTest, main

TOKEN = "ingest-token-for-the-tlog-tests-0123456789"
AUTH = {"Authorization": "Bearer " + TOKEN}
TALLYCTL = os.environ.get("TALLYCTL", "tallyctl")
TLOG_GEN = os.environ.get("TLOG_GEN", "tlog_gen")


def entries_of(mirror, size):
    out = []
    n = 0
    while len(out) < size:
        w = min(256, size - 256 * n)
        rel = "tile/entries/%03d" % n if w == 256 else \
            "tile/entries/%03d.p/%d" % (n, w)
        with open(os.path.join(mirror, rel), "rb") as f:
            b = f.read()
        off = 0
        while off < len(b):
            ln = b[off] << 8 | b[off + 1]
            out.append(b[off + 2:off + 2 + ln])
            off += 2 + ln
        n += 1
    return out


class TlogFromDaemon(DaemonTest):
    ds = "es-2019-11"

    def test_leaderboard_hashes_are_the_served_bytes(self):
        election = os.path.join(ELECTIONS, self.ds, "election.json")
        d = self.daemon(args=["--election", election],
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        with open(os.path.join(ELECTIONS, self.ds, "results.json")) as f:
            final = json.load(f)["results"]
        rnd = random.Random(27)
        order = list(range(len(final)))
        rnd.shuffle(order)
        served = {}
        bodies = {}

        def partial(p, rev, num, den):
            e = json.loads(json.dumps(final[p]))
            e["votes"] = {k: v * num // den for k, v in e["votes"].items()}
            e["blank"] = e.get("blank", 0) * num // den
            e["invalid"] = e.get("invalid", 0) * num // den
            e["revision"] = rev
            e["status"] = "final" if num == den else "partial"
            return e

        def keep(r):
            self.assertIn(r.status, (200, 201), r.body)
            lb = d.get("/v1/leaderboard")
            self.assertEqual(lb.status, 200)
            v = lb.json()["version"]
            served[v] = hashlib.sha256(lb.body).hexdigest()
            bodies[v] = lb.body
            # The version's own URL serves the same bytes.
            kept = d.get("/v1/versions/%d/leaderboard" % v)
            if kept.status == 200:
                self.assertEqual(hashlib.sha256(kept.body).hexdigest(),
                                 served[v])

        def post(e):
            body = dict(e)
            province = body.pop("province")
            return d.request("POST", "/v1/provinces/%s/results" % province,
                             body=body, headers=AUTH)

        for p in order[:20]:
            keep(post(partial(p, 1, 1, 3)))
        # A batch of three provinces: one version.
        r = d.request("POST", "/v1/results", headers=AUTH, body={
            "results": [partial(p, 1, 1, 2) for p in order[20:23]]})
        keep(r)
        # A retry is a duplicate (no version); a stale revision is refused.
        again = post(partial(order[0], 1, 1, 3))
        self.assertEqual(again.status, 200)
        stale = post(partial(order[1], 0, 1, 3))
        self.assertNotIn(stale.status, (200, 201))
        for p in order[:20]:
            keep(post(partial(p, 2, 2, 3)))
        # A correction: a lower count at a higher revision.
        keep(post(partial(order[2], 3, 1, 3)))
        for p in order[:10]:
            keep(post(partial(p, 4, 3, 3)))
        top = max(served)
        self.assertEqual(sorted(served), list(range(1, top + 1)))
        # The journal as it stands (every 2xx was fsynced before it was
        # sent): a clean stop snapshots and compacts it, so the daemon's
        # log will have to keep its own entries (see docs/VERIFY.md).
        journal = os.path.join(d.tmp, "journal")
        os.mkdir(journal)
        for name in os.listdir(d.data_dir):
            if name.startswith("journal-") and name.endswith(".log"):
                shutil.copy(os.path.join(d.data_dir, name), journal)
        d.stop()

        mirror = os.path.join(d.tmp, "mirror")
        kept = sorted(set([1, 2, 20, 21, 22, top - 1, top] +
                          rnd.sample(range(1, top + 1), 8)))
        keeps = []
        for k in kept:
            keeps += ["--keep", str(k)]
        g = subprocess.run([TLOG_GEN, os.path.join(ELECTIONS, self.ds),
                            mirror, "--journal", journal] + keeps,
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(g.returncode, 0, g.stderr)
        v = subprocess.run([TALLYCTL, "verify", "log", mirror, "--key",
                            os.path.join(mirror, "key"), "--election",
                            election], capture_output=True, text=True,
                           timeout=300)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        self.assertIn("%d entries" % top, v.stdout)
        self.assertIn("every signed leaderboard reproduced "
                      "(every version's)", v.stdout)
        # A leaderboard someone saved, checked against the log.
        saved = os.path.join(d.tmp, "lb.json")
        with open(saved, "wb") as f:
            f.write(bodies[21])
        ok = subprocess.run([TALLYCTL, "verify", "leaderboard", saved,
                             "--at", "21", "--log", mirror, "--key",
                             os.path.join(mirror, "key")],
                            capture_output=True, text=True, timeout=300)
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)
        other = subprocess.run([TALLYCTL, "verify", "leaderboard", saved,
                                "--at", "22", "--log", mirror, "--key",
                                os.path.join(mirror, "key")],
                               capture_output=True, text=True, timeout=300)
        self.assertEqual(other.returncode, 9, other.stdout + other.stderr)
        self.assertIn("is not the leaderboard of version 22", other.stderr)
        ents = entries_of(mirror, top)
        for i, e in enumerate(ents):
            obj = json.loads(e)
            self.assertEqual(obj["version"], i + 1)
            # Each entry: the SHA-256 of the bytes served at its version.
            self.assertEqual(obj["leaderboard_sha256"], served[i + 1])
        # The daemon's own entries are the replay's, byte for byte.
        with open(os.path.join(d.data_dir, "tlog", "entries"), "rb") as f:
            own = f.read()
        self.assertEqual(own, b"".join(len(e).to_bytes(2, "big") + e
                                       for e in ents))
        # Every version's served bytes are the replay's.
        for v in range(1, top + 1):
            with open(saved, "wb") as f:
                f.write(bodies[v])
            ok = subprocess.run([TALLYCTL, "verify", "leaderboard", saved,
                                 "--at", str(v), "--log", mirror, "--key",
                                 os.path.join(mirror, "key")],
                                capture_output=True, text=True, timeout=300)
            self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)
        # Each kept checkpoint: no extension line (the entries carry
        # the leaderboards' hashes).
        for k in kept:
            with open(os.path.join(mirror + ".old",
                                   "checkpoint.%d" % k)) as f:
                lines = f.read().split("\n")
            self.assertEqual(lines[1], str(k))
            self.assertEqual(lines[3], "")


if __name__ == "__main__":
    main()
