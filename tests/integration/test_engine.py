#!/usr/bin/env python3
"""Issue 21: a feed can fail, the daemon cannot.

- Hagenbach-Bischoff (exact and rounded up, Slovakia 2020's rule) with one
  list, with two lists at 2 votes each and with an exact 1:1 tie for one
  seat: once `malloc(): invalid size` and an abort (the S + 1 whole quotas
  overran lib/seats.c's steps array), journaled first, so every restart
  aborted again.  Through a POST, a dry run, a batch, a lot and restarts.
- An internal failure of the seat engine (the failpoint engine_fail=<id>,
  test builds) refuses that feed: 500 `internal`, nothing journaled, the
  version unchanged, the error logged with the province and revision.
- A journal record that cannot be applied at start-up (a definition edited
  since, or the failpoint) stops the start with a message naming the record
  (segment, offset, version, province) and the way out; --repair cuts there,
  names the lost version and never reuses it.
"""
import copy
import glob
import json
import os
import subprocess

from harness import SANITIZER_ERRORS, TALLYD, DaemonTest, main, needs_failpoints

TOKEN = "engine-test-ingest-token-0123456789"
AUTH = {"Authorization": "Bearer " + TOKEN}

ELECTION = {
    "id": "hb-2026",
    "name": "Hagenbach-Bischoff test election",
    "allocation": {"method": "hagenbach-bischoff", "ties": "lot"},
    "coalitions": [
        {"id": "l0", "name": "List zero"},
        {"id": "l1", "name": "List one"},
        {"id": "l2", "name": "List two"},
    ],
    "provinces": [
        {"id": "hb", "name": "Exact quota", "seats": 1},
        {"id": "ceil", "name": "Quota rounded up", "seats": 1,
         "allocation": {"method": "hagenbach-bischoff-ceil", "ties": "lot"}},
        {"id": "hb3", "name": "Exact quota, three seats", "seats": 3},
        {"id": "dh", "name": "D'Hondt", "seats": 2,
         "allocation": {"method": "dhondt", "ties": "lot"}},
    ],
}

ONE_LIST = {"revision": 1, "votes": {"l0": 1}, "status": "final"}
TWO_AT_TWO = {"revision": 1, "votes": {"l0": 2, "l1": 2}, "status": "final"}


class EngineTest(DaemonTest):
    def start(self, election=None, args=(), env=None, data_dir=None,
              wait=True):
        e = {"TALLYD_INGEST_TOKEN": TOKEN}
        e.update(env or {})
        d = self.daemon(start=False, env=e, data_dir=data_dir)
        self.addCleanup(self.check_log, d)
        path = os.path.join(d.tmp, "election.json")
        with open(path, "w") as f:
            json.dump(election or ELECTION, f)
        d.args = ["--election", path] + list(args)
        d.start(wait=wait)
        return d

    def check_log(self, d):
        log = d.logtext()
        for s in SANITIZER_ERRORS + ("malloc(): ", "Aborted", "free(): "):
            self.assertNotIn(s, log, log)

    def post(self, d, pid, body, query=""):
        return d.request("POST", "/v1/provinces/%s/results%s" % (pid, query),
                         body=body, headers=AUTH)

    def batch(self, d, entries, query=""):
        return d.request("POST", "/v1/results" + query,
                         body={"results": entries}, headers=AUTH)

    def version(self, d):
        r = d.get("/v1/leaderboard")
        self.assertEqual(r.status, 200, r.body)
        return r.json()["version"]

    def seats(self, d, pid):
        r = d.get("/v1/provinces/" + pid)
        self.assertEqual(r.status, 200, r.body)
        p = r.json()
        return {l["id"]: l["seats"] for l in p["lists"]}, p["pending"]

    def alive(self, d):
        self.assertIsNone(d.proc.poll(), "tallyd died:\n" + d.logtext())
        self.assertEqual(d.get("/healthz").status, 200)

    def journal_bytes(self, d):
        return sum(os.path.getsize(p) for p in
                   glob.glob(os.path.join(d.data_dir, "journal-*.log")))

    def wait_exit(self, d, timeout=20):
        return d.wait_exit(timeout)


class HagenbachBischoff(EngineTest):
    def test_one_list_and_a_tie_by_post(self):
        d = self.start()
        for pid in ("hb", "ceil"):
            with self.subTest(province=pid):
                r = self.post(d, pid, ONE_LIST)
                self.assertEqual(r.status, 201, r.body)
                self.alive(d)
                self.assertEqual(self.seats(d, pid), ({"l0": 1}, []))
                # 2:2 for one seat: a tie, pending until a lot.
                r = self.post(d, pid, dict(TWO_AT_TWO, revision=2))
                self.assertEqual(r.status, 201, r.body)
                self.alive(d)
                seats, pending = self.seats(d, pid)
                self.assertEqual(seats, {"l0": 0, "l1": 0})
                self.assertEqual(len(pending), 1, pending)
                self.assertEqual(pending[0]["seats"], 1)
                self.assertEqual(sorted(pending[0]["tied"]), ["l0", "l1"])
        lb = d.get("/v1/leaderboard").json()
        self.assertEqual(lb["seats"]["pending"], 2)
        # The lot settles the take-back tie: the first in its order keeps.
        r = d.request("POST", "/v1/provinces/hb/lot", headers=AUTH,
                      body={"revision": 2, "order": ["l1", "l0"]})
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(self.seats(d, "hb"), ({"l0": 0, "l1": 1}, []))
        # Three seats, votes 1:1:1 (whole quotas 1 + 1 + 1 + the S+1-th
        # never appear; 2:2:0 gives S+1 = 4 whole quotas at 4:4).
        r = self.post(d, "hb3", {"revision": 1, "votes": {"l0": 4, "l1": 4},
                                 "status": "final"})
        self.assertEqual(r.status, 201, r.body)
        seats, pending = self.seats(d, "hb3")
        self.assertEqual(sum(seats.values()) + sum(p["seats"]
                                                   for p in pending), 3)

    def test_dry_run_batch_and_restart(self):
        d = self.start()
        v = self.version(d)
        for pid in ("hb", "ceil"):
            for body in (ONE_LIST, TWO_AT_TWO):
                r = self.post(d, pid, body, "?dry_run=1")
                self.assertEqual(r.status, 200, r.body)
                self.assertTrue(r.json()["dry_run"])
                self.alive(d)
        self.assertEqual(self.version(d), v)
        r = self.batch(d, [dict(ONE_LIST, province="hb"),
                           dict(TWO_AT_TWO, province="ceil")], "?dry_run=1")
        self.assertEqual(r.status, 200, r.body)
        r = self.batch(d, [dict(ONE_LIST, province="hb"),
                           dict(TWO_AT_TWO, province="ceil"),
                           dict(TWO_AT_TWO, province="hb3")])
        self.assertEqual(r.status, 201, r.body)
        self.alive(d)
        before = {p: self.seats(d, p) for p in ("hb", "ceil", "hb3")}
        lb = d.get("/v1/leaderboard").body
        # The records are journaled: a restart replays them (SIGTERM,
        # then SIGKILL, so that no shutdown snapshot holds them).
        self.assertEqual(d.stop(), 0, d.logtext())
        d2 = self.start(data_dir=d.data_dir)
        self.assertEqual({p: self.seats(d2, p) for p in before}, before)
        self.assertEqual(d2.get("/v1/leaderboard").body, lb)
        r = self.post(d2, "hb", dict(TWO_AT_TWO, revision=2))
        self.assertEqual(r.status, 201, r.body)
        lb = d2.get("/v1/leaderboard").body
        d2.kill()
        d3 = self.start(data_dir=d.data_dir)
        self.assertEqual(d3.get("/v1/leaderboard").body, lb)
        self.assertEqual(d3.stop(), 0, d3.logtext())

    def test_slovakia_2020_one_list(self):
        """The shipped election with the rule of the issue."""
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "..", "data", "elections", "sk-2020",
                            "election.json")
        with open(path) as f:
            sk = json.load(f)
        d = self.start(election=sk)
        pid = sk["provinces"][0]["id"]
        cid = sk["coalitions"][0]["id"]
        r = self.post(d, pid, {"revision": 1, "votes": {cid: 1},
                               "status": "final"})
        self.assertIn(r.status, (201, 422), r.body)
        self.alive(d)


class InternalFailure(EngineTest):
    FP = {"TALLYD_FAILPOINTS": "engine_fail=ceil"}

    @needs_failpoints
    def test_refused_with_500_and_nothing_changes(self):
        d = self.start(env=self.FP)
        r = self.post(d, "hb", ONE_LIST)
        self.assertEqual(r.status, 201, r.body)
        v = self.version(d)
        size = self.journal_bytes(d)
        lb = d.get("/v1/leaderboard")
        for query in ("", "?dry_run=0"):
            r = self.post(d, "ceil", TWO_AT_TWO, query)
            self.assertEqual(r.status, 500, r.body)
            err = r.json()["error"]
            self.assertEqual(err["code"], "internal", r.body)
            self.assertIn("nothing was applied", err["message"])
        # A batch with the failing province is refused whole.
        r = self.batch(d, [dict(ONE_LIST, province="hb3"),
                           dict(TWO_AT_TWO, province="ceil")])
        self.assertEqual(r.status, 500, r.body)
        self.assertEqual(r.json()["error"]["code"], "internal")
        self.assertEqual(r.json()["error"].get("field"), "/results/1")
        self.alive(d)
        self.assertEqual(self.version(d), v)
        self.assertEqual(self.journal_bytes(d), size, "journaled anyway")
        self.assertEqual(d.get("/v1/leaderboard").header("ETag"),
                         lb.header("ETag"))
        self.assertEqual(d.get("/v1/provinces/ceil").json()["revision"], 0)
        self.assertEqual(d.get("/v1/provinces/hb3").json()["revision"], 0)
        log = d.logtext()
        self.assertIn("refused revision 1 of ceil, nothing journaled", log)
        # The rest goes on: the next feed takes the next version.
        r = self.post(d, "dh", ONE_LIST)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.json()["version"], v + 1)
        self.assertEqual(d.stop(), 0, d.logtext())


class UnapplicableRecord(EngineTest):
    def fill(self):
        d = self.start()
        for pid, body in (("hb", ONE_LIST), ("ceil", TWO_AT_TWO),
                          ("dh", ONE_LIST)):
            r = self.post(d, pid, body)
            self.assertEqual(r.status, 201, r.body)
        d.kill()        # no shutdown snapshot: the journal holds them all
        return d.data_dir

    def refuses(self, **kw):
        d = self.start(wait=False, **kw)
        d.expect_exit(1)
        rc = self.wait_exit(d)
        log = d.logtext()
        self.assertEqual(rc, 1, log)        # an exit, not a signal
        seg = sorted(glob.glob(os.path.join(d.data_dir, "journal-*.log")))[-1]
        self.assertIn(seg + ": record 2 (version 2: ceil revision 1) at "
                      "offset ", log)
        self.assertIn("cannot be applied", log)
        self.assertIn("--repair", log)
        self.assertIn("election definition", log)
        return d

    @needs_failpoints
    def test_failpoint_stops_the_start_with_the_record_named(self):
        data = self.fill()
        fp = {"TALLYD_FAILPOINTS": "engine_fail=ceil"}
        self.refuses(env=fp, data_dir=data)
        self.refuses(env=fp, data_dir=data)     # the same, no loop of aborts
        # -n says the same without changing anything.
        # --repair cuts at the record, names it, and moves past its version.
        d = self.start(env=fp, data_dir=data, args=["--repair"])
        log = d.logtext()
        self.assertIn("drops record 2 (version 2): ceil revision 1", log)
        self.assertIn("drops record 3 (version 3): dh revision 1", log)
        self.assertEqual(self.version(d), 4)
        self.assertEqual(d.get("/v1/provinces/hb").json()["revision"], 1)
        self.assertEqual(d.get("/v1/provinces/dh").json()["revision"], 0)
        r = self.post(d, "dh", ONE_LIST)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.json()["version"], 5)
        self.assertEqual(d.stop(), 0, d.logtext())
        d2 = self.start(data_dir=data)
        self.assertEqual(self.version(d2), 5)

    def test_edited_definition_stops_the_start(self):
        data = self.fill()
        # The same election without l1: record 2 names a list it lacks.
        e = copy.deepcopy(ELECTION)
        e["coalitions"] = [c for c in e["coalitions"] if c["id"] != "l1"]
        self.refuses(election=e, data_dir=data)
        # Back to the definition the journal was written under: all there.
        d = self.start(data_dir=data)
        self.assertEqual(self.version(d), 3)


if __name__ == "__main__":
    main()
