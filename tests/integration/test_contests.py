#!/usr/bin/env python3
"""Several contests in one tallyd (issue 23): Spain April 2019 and Czechia
2017 served together, each reproducing its official seats; the contest
routes (/v1/contests, /v1/contests/{id}/...); refusals that change nothing
(an unknown contest, a province of another contest, a duplicate id); the
isolation of contests (a contest's bytes and ETags do not move while another
is posted); one journal for both, back byte for byte after kill -9; and a
journal written by one contest replaying unchanged under several.
"""
import http.client
import json
import os
import signal
import subprocess
import threading
import time
import zlib

import crashloop
from harness import ELECTIONS, CheckedDaemonTest, Daemon, main, run_tallyd, \
    seed, needs_failpoints
from test_live import SSE, long_polls

TALLYCTL = os.environ.get("TALLYCTL", "tallyctl")

TOKEN = "ingest-token-for-the-tests-0123456789"
AUTH = {"Authorization": "Bearer " + TOKEN}
ES, CZ = "es-2019-04", "cz-2017"


def load(ds, name):
    with open(os.path.join(ELECTIONS, ds, name)) as f:
        return json.load(f)


def definition(ds):
    return os.path.join(ELECTIONS, ds, "election.json")


def entries(ds):
    """The dataset's province snapshots, each without its "province"."""
    out = []
    for e in load(ds, "results.json")["results"]:
        e = dict(e)
        out.append((e.pop("province"), e))
    return out


class ContestsDaemon(Daemon):
    """A Daemon that a crash loop written for one contest drives across
    two: its "provinces" are "<contest>/<id>", and its requests go to the
    contest routes; a batch naming provinces of both contests is sent as
    one batch across contests ("contest" per entry, Spain's left to the
    route), atomic: loop.extra counts the versions it adds beyond one, and
    loop.batches what each batch held, for the all-or-none check."""

    def __init__(self, loop, *args, **kw):
        super().__init__(*args, **kw)
        self.loop = loop

    def request(self, method, path, body=None, headers=None, **kw):
        parts = path.split("/")
        if path.startswith("/v1/provinces/") and len(parts) >= 5:
            # /v1/provinces/<c>/<id>[/...] -> /v1/contests/<c>/provinces/...
            path = "/".join(["", "v1", "contests", parts[3], "provinces"] +
                            parts[4:])
            return super().request(method, path, body=body, headers=headers,
                                   **kw)
        if path != "/v1/results" or method != "POST":
            return super().request(method, path, body=body, headers=headers,
                                   **kw)
        results, contests = [], set()
        for e in body["results"]:
            c, pid = e["province"].split("/")
            contests.add(c)
            e = dict(e, province=pid)
            if c != ES:
                e["contest"] = c
            results.append(e)
        with self.loop.book.lock:
            self.loop.extra_sent += len(contests) - 1
            self.loop.batches.append([(e["province"], e["revision"])
                                      for e in body["results"]])
        r = super().request("POST", "/v1/results", body={"results": results},
                            headers=headers, **kw)
        if 200 <= r.status < 300:
            with self.loop.book.lock:
                self.loop.extra_acked += len(contests) - 1
        return r


class ContestsCrashLoop(crashloop.CrashLoop):
    """tests/integration/crashloop.py's loop over Spain April 2019 and
    Czechia 2017 in one tallyd: every acknowledged revision of either
    survives every kill -9, nothing never sent appears, and the contests'
    versions add up to the requests (one version a request a contest)."""

    def __init__(self, data_dir, **kw):
        super().__init__(data_dir, **kw)
        self.base = {}
        for ds in (ES, CZ):
            for pid, e in crashloop.base_entries(ds).items():
                self.base["%s/%s" % (ds, pid)] = e
        self.extra_sent = self.extra_acked = 0
        self.batches = []
        self.checked = 0    # batches checked (verify)
        self.cross = 0      # batches across contests found applied

    def daemon(self):
        return ContestsDaemon(self, ["--election", definition(ES),
                                     "--election", definition(CZ)],
                              env=self.env, data_dir=self.data_dir)

    def verify(self, d):
        problems, present, _ = super().verify(d)
        problems = [p for p in problems if not p.startswith("version ")]
        version = sum(c["version"] for c in
                      d.get("/v1/contests").json()["contests"])
        lo = self.book.requests_acked + self.extra_acked
        hi = self.book.requests_sent + self.extra_sent
        if not lo <= version <= hi:
            problems.append("the contests' versions add up to %d, not "
                            "within %d..%d" % (version, lo, hi))
        # A batch (across contests or not) is there whole or not at all:
        # those sent since the last restart (the earlier ones were checked,
        # and a restart adds nothing to what an earlier one replayed).
        with self.book.lock:
            batches = self.batches[self.checked:]
            self.checked = len(self.batches)
        hist = {}
        for batch in batches:
            for pid, _ in batch:
                if pid not in hist:
                    c, p = pid.split("/")
                    # The base verify validated these very bodies.
                    h = d.get("/v1/contests/%s/provinces/%s/history" % (
                        c, p), validate=False)
                    hist[pid] = {x["revision"] for x in
                                 h.json()["revisions"]}
        for batch in batches:
            there = [rev in hist[pid] for pid, rev in batch]
            if any(there) and not all(there):
                problems.append("a batch is half there: %r" % list(
                    zip(batch, there)))
            if all(there) and len({pid.split("/")[0] for pid, _ in
                                   batch}) > 1:
                self.cross += 1
        return problems, present, version


class Contests(CheckedDaemonTest):
    def two(self, *more, **kw):
        args = ["--election", definition(ES), "--election", definition(CZ)]
        return self.daemon(args=args + list(more),
                           env={"TALLYD_INGEST_TOKEN": TOKEN}, **kw)

    def post(self, d, contest, pid, body, status=201):
        r = d.request("POST", "/v1/contests/%s/provinces/%s/results" % (
            contest, pid), body=body, headers=AUTH)
        self.assertEqual(r.status, status, r.body)
        return r

    def seats(self, d, contest):
        lb = d.get("/v1/contests/%s/leaderboard" % contest).json()
        return lb, {c["id"]: c["seats"] for c in lb["coalitions"]
                    if c["seats"]}

    def views(self, d, contest, pids):
        """Bytes and ETags of a contest's views (the journaled times are in
        the bytes, so equal bytes mean the same records)."""
        base = "/v1/contests/%s" % contest
        out = {}
        for path in ["/leaderboard", "/leaderboard.csv", "/provinces",
                     "/election"] + ["/provinces/" + p for p in pids] + \
                ["/provinces/%s/history" % p for p in pids]:
            r = d.get(base + path)
            self.assertEqual(r.status, 200, (path, r.body))
            out[path] = (r.body, r.header("ETag"))
        return out

    def test_spain_and_czechia_together_reproduce_their_official_seats(self):
        d = self.two()
        # Czechia one province at a time, Spain as one batch, interleaved.
        cz = entries(CZ)
        for pid, body in cz[:7]:
            self.post(d, CZ, pid, body)
        r = d.request("POST", "/v1/contests/%s/results" % ES,
                      body=load(ES, "results.json"), headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.json()["version"], 1)
        # Each contest has its own transparency log: a receipt of
        # Czechia's version in Czechia's log (test_tlog_contests.py).
        for pid, body in cz[7:]:
            r = self.post(d, CZ, pid, body)
            self.assertEqual(r.json()["log"]["index"],
                             r.json()["version"] - 1)
        self.assertEqual(r.json()["version"], len(cz))
        for ds in (ES, CZ):
            exp = load(ds, "expected.json")
            lb, seats = self.seats(d, ds)
            self.assertEqual(lb["election"]["id"], ds)
            self.assertEqual(lb["seats"]["total"], exp["seats_total"])
            self.assertEqual(lb["seats"]["allocated"], exp["seats_total"])
            self.assertEqual(seats, exp["national"], ds)
            for pid, want in exp["provinces"].items():
                p = d.get("/v1/contests/%s/provinces/%s" % (ds, pid)).json()
                self.assertEqual({l["id"]: l["seats"] for l in p["lists"]
                                  if l["seats"]}, want, (ds, pid))
        # The plain routes are the first contest's, byte for byte.
        for path in ("/leaderboard", "/provinces", "/election"):
            a, b = d.get("/v1" + path), d.get("/v1/contests/%s%s" % (ES, path))
            self.assertEqual(a.body, b.body, path)
            self.assertEqual(a.header("ETag"), b.header("ETag"), path)
        # The list: every contest, in the order given.
        lst = d.get("/v1/contests").json()
        self.assertEqual(lst["default"], ES)
        self.assertEqual([c["id"] for c in lst["contests"]], [ES, CZ])
        es, cz_row = lst["contests"]
        self.assertEqual(es["version"], 1)
        self.assertEqual(cz_row["version"], len(cz))
        self.assertEqual(cz_row["seats"], {"total": 200, "allocated": 200,
                                           "majority": 101})
        self.assertEqual(cz_row["provinces"], {"total": 14, "reporting": 14,
                                               "final": 14})
        self.assertEqual(cz_row["leader"]["id"], "ANO")
        self.assertEqual(cz_row["leader"]["seats"], 78)
        self.assertEqual(es["leader"]["short"], "PSOE")
        # Neither clinched a majority; once counted, nobody can.
        self.assertEqual(es["majority"], {"status": "hung",
                                          "coalition": None})
        self.assertEqual(cz_row["leaderboard"],
                         "/v1/contests/%s/leaderboard" % CZ)
        # The index lists the contest routes.
        paths = [x["path"] for x in d.get("/v1/").json()["routes"]]
        self.assertIn("/v1/contests", paths)
        self.assertIn("/v1/contests/{contest}/provinces/{id}/results", paths)
        # A contest's kept version is under its own prefix.
        r = d.get("/v1/contests/%s/leaderboard" % CZ)
        loc = r.header("Content-Location")
        self.assertTrue(loc.startswith("/v1/contests/%s/versions/%d-" % (
            CZ, len(cz))), loc)
        v = d.get(loc)
        self.assertEqual(v.status, 200)
        self.assertEqual(v.body, r.body)
        bare = d.get("/v1/contests/%s/versions/%d/leaderboard" % (CZ, len(cz)))
        self.assertEqual(bare.status, 302)
        self.assertEqual(bare.header("Location"), loc)
        # The transparency log holds the first contest's one version, and
        # verifies (its records carry the contest; its entries do not).
        self.verify_log(d, 1)
        d.kill()
        d.start()
        self.verify_log(d, 1)

    def verify_log(self, d, entries):
        key = d.get("/log/key").body.decode().strip()
        v = subprocess.run([TALLYCTL, "verify", "log",
                            "http://127.0.0.1:%d" % d.port, "--key", key,
                            "--election", definition(ES)],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        self.assertIn("%d entries" % entries, v.stdout)
        self.assertIn("every signed leaderboard reproduced", v.stdout)

    def test_another_pair_norway_2021_and_poland_2023(self):
        # Norway's levelling seats and Poland's national threshold, side by
        # side: each as it is alone (test_elections.py).
        pair = ("no-2021", "pl-2023")
        d = self.daemon(args=["--election", definition(pair[0]),
                              "--election", definition(pair[1])],
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        for ds in reversed(pair):
            r = d.request("POST", "/v1/contests/%s/results" % ds,
                          body=load(ds, "results.json"), headers=AUTH)
            self.assertEqual(r.status, 201, r.body)
        before = {}
        for ds in pair:
            exp = load(ds, "expected.json")
            lb, seats = self.seats(d, ds)
            self.assertEqual(lb["seats"]["allocated"], exp["seats_total"])
            self.assertEqual(seats, exp["national"], ds)
            for pid, want in exp["provinces"].items():
                p = d.get("/v1/contests/%s/provinces/%s" % (ds, pid)).json()
                self.assertEqual({l["id"]: l["seats"] for l in p["lists"]
                                  if l["seats"]}, want, (ds, pid))
            for pid, want in exp.get("levelling", {}).items():
                p = d.get("/v1/contests/%s/provinces/%s" % (ds, pid)).json()
                self.assertEqual(p["levelling_seats"], sum(want.values()),
                                 (ds, pid))
            before[ds] = self.views(d, ds, list(exp["provinces"])[:3])
        d.kill()
        d.start()
        for ds in pair:
            exp = load(ds, "expected.json")
            self.assertEqual(self.views(d, ds, list(exp["provinces"])[:3]),
                             before[ds], ds)

    def test_newsroom_routes_and_calls_of_a_contest(self):
        d = self.two()
        r = d.request("POST", "/v1/contests/%s/results" % CZ,
                      body=load(CZ, "results.json"), headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        base = "/v1/contests/%s" % CZ
        ch = d.get(base + "/changes?since=0")
        self.assertEqual(ch.status, 200, ch.body)
        self.assertEqual(len(ch.json()["changes"]), 14)
        self.assertEqual(d.get("/v1/changes?since=0").json()["changes"], [])
        csv = d.get(base + "/results.csv")
        self.assertEqual(csv.status, 200)
        self.assertIn("PHA", csv.body.decode())
        self.assertNotIn("PHA", d.get("/v1/results.csv").body.decode())
        self.assertEqual(d.get(base + "/results.jsonl").status, 200)
        self.assertEqual(d.get(base + "/provinces/PHA/history.csv").status,
                         200)
        svg = d.get(base + "/map.svg")
        self.assertEqual(svg.status, 200)
        self.assertTrue(svg.header("Content-Type").startswith("image/svg"))
        # A declared call: a record and a version of that contest only.
        r = d.request("POST", base + "/calls", headers=AUTH, body={
            "scope": "national", "what": "first_place", "coalition": "ANO",
            "note": "desk"})
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.json()["version"], 2)
        calls = d.get(base + "/calls").json()
        self.assertIn("ANO", [c.get("coalition") for c in calls["calls"]
                              if c["kind"] == "declared"])
        self.assertFalse([c for c in d.get("/v1/calls").json()["calls"]
                          if c["kind"] == "declared"])
        r = d.request("POST", base + "/calls/%s/retract" % r.json()["call"][
            "id"], headers=AUTH, body={})
        self.assertEqual(r.status, 201, r.body)
        before = d.get(base + "/calls").body
        d.kill()
        d.start()
        self.assertEqual(d.get(base + "/calls").body, before)
        self.assertEqual(d.get(base + "/leaderboard").json()["version"], 3)
        self.assertEqual(d.get("/v1/leaderboard").json()["version"], 0)

    def test_refusals_change_nothing(self):
        d = self.two()
        self.post(d, CZ, "PHA", entries(CZ)[0][1])
        before = {c: self.views(d, c, []) for c in (ES, CZ)}
        journal = self.journal_bytes(d)
        # An unknown contest: 404 with its own code, for reads and feeds.
        for path in ("/v1/contests/nope/leaderboard",
                     "/v1/contests/nope/provinces/PHA",
                     "/v1/contests/nope/election"):
            self.assertError(d.get(path), 404, "unknown_contest")
        self.assertError(d.request(
            "POST", "/v1/contests/nope/provinces/PHA/results",
            body=entries(CZ)[0][1], headers=AUTH), 404, "unknown_contest")
        # A province known only to the other contest.
        body = dict(entries(CZ)[1][1], revision=5)
        self.assertError(d.request(
            "POST", "/v1/contests/%s/provinces/STC/results" % ES, body=body,
            headers=AUTH), 404, "unknown_province")
        self.assertError(d.get("/v1/contests/%s/provinces/STC" % ES), 404,
                         "unknown_province")
        self.assertError(d.request(
            "POST", "/v1/provinces/STC/results", body=body, headers=AUTH),
            404, "unknown_province")
        # A batch naming the other contest's province: nothing applied.
        self.assertError(d.request(
            "POST", "/v1/contests/%s/results" % ES, body={"results": [
                dict(entries(ES)[0][1], province=entries(ES)[0][0]),
                dict(body, province="STC")]}, headers=AUTH), 422,
            "unknown_province", "/results/1/province")
        # Without a token: refused before anything is looked up.
        r = d.request("POST", "/v1/contests/%s/provinces/STC/results" % CZ,
                      body=body)
        self.assertEqual(r.status, 401, r.body)
        for c in (ES, CZ):
            self.assertEqual(self.views(d, c, []), before[c], c)
        self.assertEqual(self.journal_bytes(d), journal)
        lst = d.get("/v1/contests").json()["contests"]
        self.assertEqual([c["version"] for c in lst], [0, 1])
        # Counted where /metrics reads, under the contest routes.
        m = d.get("/metrics").body.decode()
        for line in (
                'tallyd_requests_total{route="/v1/contests/{contest}/'
                'provinces/{id}/results",status="201"} 1',
                'tallyd_requests_total{route="/v1/contests/{contest}/'
                'provinces/{id}/results",status="404"} 2',
                'tallyd_feeds_rejected_total{reason="unknown_contest"} 1',
                'tallyd_feeds_rejected_total{reason="unknown_province"} 3'):
            self.assertIn(line, m)

    def batch(self, d, entries_, path="/v1/results", headers=AUTH):
        return d.request("POST", path, body={"results": entries_},
                         headers=headers)

    def test_a_batch_across_contests_is_atomic(self):
        """POST /v1/results with "contest" per entry: applied in both
        contests or in neither.  A bad entry of the second contest (found
        by the parse, or only against its applied state: a revision
        conflict), an unknown contest, a province of the other contest:
        refused naming the entry, and neither contest's bytes, ETags nor
        the journal move."""
        d = self.two()
        es, cz = entries(ES), entries(CZ)
        self.post(d, ES, *es[0])
        self.post(d, CZ, *cz[0])
        es_p, cz_p = [p for p, _ in es[:3]], [p for p, _ in cz[:3]]
        before = (self.views(d, ES, es_p), self.views(d, CZ, cz_p))
        journal = self.journal_bytes(d)

        def e(contest, i, **kw):
            pid, body = (cz if contest == CZ else es)[i]
            out = dict(body, province=pid, **kw)
            if contest is not None:
                out["contest"] = contest
            return out
        good = [e(None, 1), e(CZ, 1), e(CZ, 2)]
        for body, status, code, field in (
                # The second contest's last entry names an unknown list.
                ([e(None, 1), e(CZ, 1), e(CZ, 2, votes={"nobody": 5})],
                 422, "unknown_list", "/results/2/votes/nobody"),
                # Same revision, other content, in the second contest:
                # only its applied state says so.
                ([e(None, 1), e(CZ, 0, note="other")], 409,
                 "revision_conflict", "/results/1"),
                ([e(None, 1), e(CZ, 0, revision=0)], 422, None,
                 "/results/1/revision"),
                ([e(None, 1), e("nope", 1)], 404, "unknown_contest",
                 "/results/1/contest"),
                ([e(None, 1), dict(e(ES, 1), contest=7)], 422, "wrong_type",
                 "/results/1/contest"),
                # A Czech region under Spain's contest.
                ([e(CZ, 1), dict(e(CZ, 2), contest=ES)], 422,
                 "unknown_province", "/results/1/province"),
                ([e(CZ, 1), e(CZ, 1)], 422, "duplicate_province",
                 "/results/1/province")):
            r = self.batch(d, body)
            self.assertEqual(r.status, status, (body, r.body))
            err = r.json()["error"]
            if code is not None:
                self.assertEqual(err["code"], code, r.body)
            self.assertTrue(err.get("field", "").startswith(field), r.body)
            self.assertEqual((self.views(d, ES, es_p),
                              self.views(d, CZ, cz_p)), before, body)
            self.assertEqual(self.journal_bytes(d), journal, body)
        self.assertEqual([c["version"] for c in d.get("/v1/contests").json()[
            "contests"]], [1, 1])
        # ?dry_run=1: each contest's part as its own dry run says it.
        r = self.batch(d, good, path="/v1/results?dry_run=1")
        self.assertEqual(r.status, 200, r.body)
        dry = r.json()
        self.assertEqual([(c["id"], c["version"], len(c["results"]))
                          for c in dry["contests"]], [(ES, 2, 1), (CZ, 2, 2)])
        self.assertEqual((self.views(d, ES, es_p), self.views(d, CZ, cz_p)),
                         before)
        # The good batch: one new version in each contest, each entry
        # answered with its contest and that contest's version.
        r = self.batch(d, good)
        self.assertEqual(r.status, 201, r.body)
        a = r.json()
        self.assertEqual([(x["contest"], x["province"], x["status"],
                           x["version"]) for x in a["results"]],
                         [(ES, es[1][0], "applied", 2),
                          (CZ, cz[1][0], "applied", 2),
                          (CZ, cz[2][0], "applied", 2)])
        # Each part with its receipt, in its contest's own log.
        self.assertEqual([dict(c, log=c["log"]["index"])
                          for c in a["contests"]], [
            {"id": ES, "status": "applied", "version": 2, "log": 1},
            {"id": CZ, "status": "applied", "version": 2, "log": 1}])
        self.assertEqual([c["version"] for c in d.get("/v1/contests").json()[
            "contests"]], [2, 2])
        for contest, pid, body in ((ES,) + es[1], (CZ,) + cz[2]):
            got = d.get("/v1/contests/%s/provinces/%s" % (contest, pid))
            self.assertEqual(got.json()["revision"], body["revision"])
        # Sent again: every entry a duplicate, 200, nothing written.
        journal = self.journal_bytes(d)
        r = self.batch(d, good)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["status"], "duplicate")
        self.assertEqual(self.journal_bytes(d), journal)
        # Through a contest's route: its own entries need no "contest".
        r = self.batch(d, [dict(cz[3][1], province=cz[3][0]), e(ES, 3)],
                       path="/v1/contests/%s/results" % CZ)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual([(x["contest"], x["version"]) for x in
                          r.json()["results"]], [(CZ, 3), (ES, 3)])
        # One contest's entries all repeats: the other's alone is written,
        # an ordinary record (no "batch" member to wait for at replay).
        size = len(self.journal_bytes(d))
        r = self.batch(d, [e(None, 1), e(CZ, 5)])
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual([dict(c, log=c.get("log", {}).get("index"))
                          for c in r.json()["contests"]], [
            {"id": ES, "status": "duplicate", "version": 3, "log": None},
            {"id": CZ, "status": "applied", "version": 4, "log": 3}])
        tail = self.journal_bytes(d)[size:]
        self.assertIn(b'"contest":"%s"}' % CZ.encode(), tail)
        self.assertNotIn(b'"batch"', tail)
        # The first contest's transparency log verifies through them.
        self.verify_log(d, 3)
        # kill -9: the batches come back whole, byte for byte.
        es_p, cz_p = [p for p, _ in es[:4]], [p for p, _ in cz[:6]]
        before = (self.views(d, ES, es_p), self.views(d, CZ, cz_p))
        d.kill()
        d.start()
        self.assertEqual((self.views(d, ES, es_p), self.views(d, CZ, cz_p)),
                         before)

    def test_a_batch_across_contests_names_the_entry_a_token_may_not_post(
            self):
        cz_all = "czech-desk-token-0123456789abcdef"
        admin = "admin-token-for-every-contest-000"
        conf = self.token_file(((cz_all, CZ + "/*"), (admin, "*")))
        d = self.daemon(args=["-f", conf, "--election", definition(ES),
                              "--election", definition(CZ)])
        es, cz = entries(ES), entries(CZ)
        body = [dict(cz[0][1], province=cz[0][0], contest=CZ),
                dict(es[0][1], province=es[0][0])]
        before = d.get("/v1/contests").body
        r = self.batch(d, body, headers={"Authorization": "Bearer " + cz_all})
        err = self.assertError(r, 403, "forbidden_contest",
                               "/results/1/contest")
        self.assertIn(ES, err["message"])
        self.assertEqual(d.get("/v1/contests").body, before)
        # Its own contest only, named on the plain route: taken.
        r = self.batch(d, body[:1], headers={
            "Authorization": "Bearer " + cz_all})
        self.assertEqual(r.status, 201, r.body)
        r = self.batch(d, body, headers={"Authorization": "Bearer " + admin})
        self.assertEqual(r.status, 201, r.body)

    @needs_failpoints
    def test_a_batch_torn_after_its_first_contest_applies_in_none(self):
        """The records of a batch across contests are written in one job;
        a write torn after the first contest's record (never
        acknowledged) must not bring half the batch back: the start cuts
        the unfinished batch and neither contest has it."""
        d = self.two()
        es, cz = entries(ES), entries(CZ)
        self.post(d, ES, *es[0])
        self.post(d, CZ, *cz[0])
        es_p, cz_p = [p for p, _ in es[:3]], [p for p, _ in cz[:3]]
        before = (self.views(d, ES, es_p), self.views(d, CZ, cz_p))
        size = len(self.journal_bytes(d))
        hold = os.path.join(d.data_dir, "failpoint.sync_hold")
        held = os.path.join(d.data_dir, "failpoint.sync_held")
        open(hold, "w").close()
        self.addCleanup(lambda: os.path.exists(hold) and os.unlink(hold))
        def send(body):
            try:
                self.batch(d, body)
            except OSError:
                pass    # killed before it answers: what the test wants
        t = threading.Thread(target=send, args=([
            dict(es[1][1], province=es[1][0]),
            dict(cz[1][1], province=cz[1][0], contest=CZ)],))
        t.daemon = True
        t.start()
        deadline = time.monotonic() + 20
        while not os.path.exists(held) and time.monotonic() < deadline:
            time.sleep(0.005)
        self.assertTrue(os.path.exists(held), "no sync was held")
        d.kill()
        os.unlink(hold)
        t.join(10)
        # Written whole (unsynced, unanswered): two records.  Keep the
        # first only, as a torn write may.
        seg = sorted(n for n in os.listdir(d.data_dir)
                     if n.startswith("journal-") and n.endswith(".log"))[-1]
        path = os.path.join(d.data_dir, seg)
        with open(path, "rb") as f:
            data = f.read()
        off, recs = 0, []
        while off + 20 <= len(data):
            n = int.from_bytes(data[off + 8:off + 12], "little")
            recs.append((off, data[off + 20:off + 20 + n]))
            off += 20 + n
        self.assertIn(b'"batch":[1,2],"contest":"%s"}' % ES.encode(),
                      recs[-2][1])
        self.assertIn(b'"batch":[2,2],"contest":"%s"}' % CZ.encode(),
                      recs[-1][1])
        with open(path, "r+b") as f:
            f.truncate(recs[-1][0])
        d.start()
        self.assertEqual((self.views(d, ES, es_p), self.views(d, CZ, cz_p)),
                         before)
        self.wait_log(d, "a batch across contests ended after 1 of its 2")
        self.assertEqual(len(self.journal_bytes(d)), size)
        # The batch again: taken whole, and whole after a restart.
        r = self.batch(d, [dict(es[1][1], province=es[1][0]),
                           dict(cz[1][1], province=cz[1][0], contest=CZ)])
        self.assertEqual(r.status, 201, r.body)
        after = (self.views(d, ES, es_p), self.views(d, CZ, cz_p))
        d.kill()
        d.start()
        self.assertEqual((self.views(d, ES, es_p), self.views(d, CZ, cz_p)),
                         after)

    def test_a_contest_does_not_move_while_another_is_posted(self):
        d = self.two()
        es, cz = entries(ES), entries(CZ)
        for pid, body in es[:3]:
            self.post(d, ES, pid, body)
        pids = [p for p, _ in es[:4]]
        at_k = self.views(d, ES, pids)
        loc = d.get("/v1/contests/%s/leaderboard" % ES).header(
            "Content-Location")
        # B posted in between, in rounds of its own and beside A's.
        for pid, body in cz:
            self.post(d, CZ, pid, body)
        self.assertEqual(self.views(d, ES, pids), at_k)
        self.assertEqual(d.get("/v1/leaderboard").body,
                         at_k["/leaderboard"][0])
        # If-None-Match still holds: a cache keeps A's bytes.
        r = d.get("/v1/contests/%s/leaderboard" % ES, headers={
            "If-None-Match": at_k["/leaderboard"][1]})
        self.assertEqual(r.status, 304)
        self.assertEqual(d.get(loc).body, at_k["/leaderboard"][0])
        # And the other way round: A moves on, B's views stay.
        cz_views = self.views(d, CZ, [p for p, _ in cz[:3]])
        for pid, body in es[3:6]:
            self.post(d, ES, pid, body)
        self.assertEqual(self.views(d, CZ, [p for p, _ in cz[:3]]), cz_views)
        self.assertEqual(d.get("/v1/contests/%s/leaderboard" % ES).json()[
            "version"], 6)
        self.assertEqual(d.get("/v1/contests/%s/leaderboard" % CZ).json()[
            "version"], len(cz))
        # /healthz and /metrics name every contest, each at its version.
        h = d.get("/healthz").json()
        self.assertEqual((h["election"], h["version"]), (ES, 6))
        self.assertEqual(h["contests"], [
            {"id": ES, "version": 6, "ingest": True},
            {"id": CZ, "version": len(cz), "ingest": True}])
        m = d.get("/metrics").body.decode()
        for line in ['tallyd_contest_version{contest="%s"} 6' % ES,
                     'tallyd_contest_version{contest="%s"} %d' % (CZ, len(cz)),
                     'tallyd_contest_feeds_applied_total{contest="%s"} %d'
                     % (CZ, len(cz)),
                     'tallyd_contest_provinces_reporting{contest="%s"} 6'
                     % ES, "tallyd_version 6"]:
            self.assertIn(line + "\n", m)

    def test_kill_9_and_restart_bring_both_back_byte_for_byte(self):
        d = self.two()
        es, cz = entries(ES), entries(CZ)
        for i in range(8):
            self.post(d, ES, *es[i])
            self.post(d, CZ, *cz[i])
        # A correction, a duplicate and a conflict, per contest.
        self.post(d, CZ, cz[0][0], dict(cz[0][1], revision=2))
        self.post(d, ES, es[0][0], es[0][1], status=200)
        self.post(d, CZ, cz[1][0], dict(cz[1][1], note="other"), status=409)
        es_p, cz_p = [p for p, _ in es[:9]], [p for p, _ in cz[:9]]
        before = (self.views(d, ES, es_p), self.views(d, CZ, cz_p),
                  d.get("/v1/contests").body)
        d.kill()
        d.start()
        after = (self.views(d, ES, es_p), self.views(d, CZ, cz_p),
                 d.get("/v1/contests").body)
        self.assertEqual(after[0], before[0])
        self.assertEqual(after[1], before[1])
        self.assertEqual(after[2], before[2])
        # Each goes on from its own version.
        r = self.post(d, CZ, *cz[8])
        self.assertEqual(r.json()["version"], 10)
        r = self.post(d, ES, *es[8])
        self.assertEqual(r.json()["version"], 9)
        # A clean stop writes no snapshot that would cut the other
        # contest's records out of the journal.
        before = (self.views(d, ES, es_p), self.views(d, CZ, cz_p))
        self.assertEqual(d.stop(), 0)
        d.start()
        self.assertEqual((self.views(d, ES, es_p), self.views(d, CZ, cz_p)),
                         before)
        self.assertFalse([n for n in os.listdir(d.data_dir)
                          if n.startswith("snapshot")])

    def test_a_journal_of_one_contest_replays_under_several(self):
        es, cz = entries(ES), entries(CZ)
        one = self.daemon(args=["--election", definition(ES)],
                          env={"TALLYD_INGEST_TOKEN": TOKEN})
        for pid, body in es[:3]:
            r = one.request("POST", "/v1/provinces/%s/results" % pid,
                            body=body, headers=AUTH)
            self.assertEqual(r.status, 201, r.body)
        lb = one.get("/v1/leaderboard")
        # A clean stop: its final snapshot covers the journal so far.
        self.assertEqual(one.stop(), 0)
        # The same data dir, now with Czechia beside it.
        d = self.two(data_dir=one.data_dir)
        r = d.get("/v1/leaderboard")
        self.assertEqual((r.body, r.header("ETag")),
                         (lb.body, lb.header("ETag")))
        self.post(d, CZ, *cz[0])
        self.post(d, ES, *es[3])
        d.kill()
        d.start()
        self.assertEqual(d.get("/v1/contests/%s/leaderboard" % ES).json()[
            "version"], 4)
        self.assertEqual(d.get("/v1/contests/%s/leaderboard" % CZ).json()[
            "version"], 1)
        d.stop()
        # Without Czechia's definition, its records cannot be placed.
        r = run_tallyd(["-n", "--data-dir", d.data_dir, "--election",
                        definition(ES)])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('contest "%s", which is not defined' % CZ,
                      r.stdout + r.stderr)

    def test_events_and_long_polls_stay_with_their_contest(self):
        d = self.two()
        es, cz = entries(ES), entries(CZ)
        # /v1/events is the first contest's: another's versions never
        # reach it.
        c = SSE(d.port)
        self.addCleanup(c.close)
        self.assertEqual(c.status(), 200)
        c.wait_for(lambda evs: any(e.get("event") == "leaderboard"
                                   for e in evs))
        n0 = len(c.events())
        self.post(d, CZ, *cz[0])
        self.post(d, ES, *es[0])
        evs = c.wait_for(lambda evs: any(e.get("event") == "change"
                                         for e in evs[n0:]))[n0:]
        self.assertEqual([e["id"].split("-")[0] for e in evs
                          if e.get("event") == "change"], ["1"])
        self.assertFalse(CZ in c.text or '"%s"' % cz[0][0] in c.text,
                         "another contest's version reached /v1/events")
        # A long-poll on a contest wakes on that contest's post...
        r0 = d.get("/v1/contests/%s/leaderboard" % CZ)
        t = threading.Timer(0.3, self.post, (d, CZ) + cz[1])
        t.start()
        self.addCleanup(t.cancel)
        r = d.get("/v1/contests/%s/leaderboard?wait=10" % CZ,
                  headers={"If-None-Match": r0.header("ETag")})
        t.join()
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["version"], 2)
        # ... and not on another's.
        r0 = d.get("/v1/contests/%s/leaderboard" % CZ)
        t = threading.Timer(0.3, self.post, (d, ES) + es[1])
        t.start()
        t0 = time.monotonic()
        r = d.get("/v1/contests/%s/leaderboard?wait=2" % CZ,
                  headers={"If-None-Match": r0.header("ETag")})
        t.join()
        self.assertEqual(r.status, 304)
        self.assertGreater(time.monotonic() - t0, 1.5)

    def sse(self, d, path, **kw):
        """An event stream, once its hello (every snapshot) is in."""
        c = SSE(d.port, path, **kw)
        self.addCleanup(c.close)
        self.assertEqual(c.status(), 200, c.text)
        return c

    def named(self, evs, kind):
        """{contest: [data]} of the events of a kind on a named stream,
        checking that each event's id names the contest its data names."""
        out = {}
        for e in evs:
            if e.get("event") != kind:
                continue
            data = json.loads(e["data"])
            contest = data["election"]["id"] if kind == "leaderboard" \
                else data["contest"]
            self.assertEqual(e["id"].split(":")[0], contest, e)
            out.setdefault(contest, []).append(data)
        return out

    def test_a_contests_own_event_stream(self):
        """GET /v1/contests/{c}/events is that contest's /v1/events: its
        versions only, the same events and ids, a resume by Last-Event-ID
        that holds across a restart."""
        d = self.two()
        es, cz = entries(ES), entries(CZ)
        first = self.sse(d, "/v1/events")
        other = self.sse(d, "/v1/contests/%s/events" % CZ)
        for c, contest in ((first, ES), (other, CZ)):
            evs = c.wait_for(lambda evs: any(e.get("event") == "leaderboard"
                                             for e in evs))
            self.assertEqual([e.get("event") for e in evs[1:]],
                             ["snapshot", "leaderboard"])
            self.assertEqual(json.loads(evs[-1]["data"])["election"]["id"],
                             contest)
        self.post(d, CZ, *cz[0])
        self.post(d, CZ, *cz[1])
        self.post(d, ES, *es[0])
        evs = other.wait_for(lambda evs: sum(e.get("event") == "change"
                                             for e in evs) == 2)
        changes = [e for e in evs if e.get("event") == "change"]
        # (Czechia's national threshold may move other provinces too.)
        self.assertEqual([cz[i][0] in [p["id"] for p in json.loads(
            e["data"])["provinces"]] for i, e in enumerate(changes)],
            [True, True])
        lb = d.get("/v1/contests/%s/leaderboard" % CZ)
        # The id is the contest's own stamp, as on /v1/events.
        self.assertEqual(changes[-1]["id"], lb.header("ETag").strip('"'))
        self.assertNotIn("contest", json.loads(changes[0]["data"]))
        evs = first.wait_for(lambda evs: any(e.get("event") == "change"
                                             for e in evs))
        self.assertEqual([json.loads(e["data"])["provinces"][0]["id"]
                          for e in evs if e.get("event") == "change"],
                         [es[0][0]])
        # Whatever else reached the contest's stream is in by now.
        other.s.settimeout(0.3)
        while other._fill():
            pass
        self.assertEqual(sum(e.get("event") == "change"
                             for e in other.events()), 2,
                         "another contest's version reached the stream")
        last = changes[-1]["id"]
        other.close()
        first.close()
        # Resumed at its current version after a restart: no snapshot,
        # then the next version of this contest.
        d.stop()
        d.start()
        c = self.sse(d, "/v1/contests/%s/events" % CZ,
                     headers={"Last-Event-ID": last})
        self.post(d, ES, *es[1])
        self.post(d, CZ, *cz[2])
        evs = c.wait_for(lambda evs: any(e.get("event") == "change"
                                         for e in evs))
        self.assertEqual([e.get("event") for e in evs[1:]],
                         ["change", "leaderboard"])
        self.assertEqual(json.loads(evs[1]["data"])["version"], 3)
        # An older id starts from a snapshot; an unknown contest is 404.
        c = self.sse(d, "/v1/contests/%s/events" % CZ,
                     headers={"Last-Event-ID": last})
        evs = c.wait_for(lambda evs: any(e.get("event") == "leaderboard"
                                         for e in evs))
        self.assertEqual(evs[1]["event"], "snapshot")
        r = d.get("/v1/contests/nope/events")
        self.assertEqual((r.status, r.json()["error"]["code"]),
                         (404, "unknown_contest"))
        # gzip as on /v1/events.
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
        self.addCleanup(conn.close)
        conn.request("GET", "/v1/contests/%s/events" % CZ,
                     headers={"Accept-Encoding": "gzip"})
        r = conn.getresponse()
        self.assertEqual((r.status, r.getheader("Content-Encoding")),
                         (200, "gzip"))
        z, out = zlib.decompressobj(31), b""
        while len(out) < 5:
            out += z.decompress(r.read1())
        self.assertEqual(out[:5], b"retry")

    def test_several_contests_on_one_stream(self):
        """GET /v1/events?contests=a,b: both contests on one connection,
        each event naming its contest (id "<contest>:<n>-<digest>", data
        "contest"); Last-Event-ID lists an id per contest and resumes each,
        across a restart too; bad lists refused before the stream."""
        d = self.two()
        es, cz = entries(ES), entries(CZ)
        both = "/v1/events?contests=%s,%s" % (CZ, ES)
        c = self.sse(d, both)
        evs = c.wait_for(lambda evs: len(self.named(evs, "leaderboard")) == 2)
        self.assertEqual(self.named(evs, "snapshot"),
                         {CZ: [{"contest": CZ, "version": 0}],
                          ES: [{"contest": ES, "version": 0}]})
        self.post(d, CZ, *cz[0])
        self.post(d, ES, *es[0])
        self.post(d, ES, *es[1])
        evs = c.wait_for(lambda evs: sum(
            len(v) for v in self.named(evs, "change").values()) == 3)
        changes = self.named(evs, "change")
        self.assertEqual([(x["version"], x["provinces"][0]["id"])
                          for x in changes[CZ]], [(1, cz[0][0])])
        self.assertEqual([(x["version"], x["provinces"][0]["id"])
                          for x in changes[ES]],
                         [(1, es[0][0]), (2, es[1][0])])
        self.assertEqual([x["version"] for x in
                          self.named(evs, "leaderboard")[ES]], [0, 1, 2])
        last = {}
        for e in evs:
            if "id" in e:
                last[e["id"].split(":")[0]] = e["id"]
        c.close()
        # Refused before anything is streamed.
        for q, status in (("", 400), ("%s,%s" % (CZ, CZ), 400),
                          ("%s," % CZ, 400), ("%s,nope" % CZ, 404),
                          (",".join("c%d" % i for i in range(17)), 400),
                          ("a%%3Ab", 400)):
            r = d.get("/v1/events?contests=" + q)
            self.assertEqual(r.status, status, (q, r.body))
            self.assertEqual(r.json()["error"]["code"], "unknown_contest"
                             if status == 404 else "invalid_contests")
        r = d.get("/v1/contests/%s/events?contests=%s" % (CZ, ES))
        self.assertEqual(r.status, 400, r.body)
        # One id per contest, each resumed: after a restart, nothing but
        # what comes next.
        d.stop()
        d.start()
        c = self.sse(d, both, headers={"Last-Event-ID": ",".join(
            last.values())})
        self.post(d, CZ, *cz[1])
        evs = c.wait_for(lambda evs: self.named(evs, "change"))
        self.assertEqual([e.get("event") for e in evs[1:]],
                         ["change", "leaderboard"])
        self.assertEqual(self.named(evs, "change")[CZ][0]["version"], 2)
        # EventSource sends the last id only: that contest resumes, the
        # other starts from its snapshot.
        c = self.sse(d, both, headers={"Last-Event-ID": last[ES]})
        evs = c.wait_for(lambda evs: self.named(evs, "leaderboard"))
        self.assertEqual(self.named(evs, "snapshot"),
                         {CZ: [{"contest": CZ, "version": 2}]})
        self.assertEqual(list(self.named(evs, "leaderboard")), [CZ])

    def test_long_polls_of_every_contest_share_the_budget(self):
        """sse_max_clients bounds subscribers across contests: long-polls
        parked on one contest count against a stream or long-poll of
        another."""
        conf = os.path.join(self.tmpdir(), "tallyd.conf")
        with open(conf, "w") as f:
            f.write("sse_max_clients 2\n")
        d = self.two("-f", conf)
        path = "/v1/contests/%s/leaderboard" % CZ
        tag = d.get(path).header("ETag")
        out = []
        polls = [threading.Thread(target=lambda: out.append(d.get(
            path + "?wait=3", headers={"If-None-Match": tag}).status))
            for _ in range(2)]
        for t in polls:
            t.start()
        deadline = time.monotonic() + 5
        while long_polls(d) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(long_polls(d), 2)
        r = d.get("/v1/leaderboard?wait=3", headers={
            "If-None-Match": d.get("/v1/leaderboard").header("ETag")})
        self.assertEqual(r.status, 503, r.body)
        self.assertEqual(r.json()["error"]["code"], "too_many_subscribers")
        r = d.get("/v1/events?contests=%s" % ES)
        self.assertEqual(r.status, 503, r.body)
        for t in polls:
            t.join()
        self.assertEqual(out, [304, 304])

    def test_the_list_long_polls_several_contests(self):
        """GET /v1/contests?contests=a,b&wait=S, the long-poll of several
        contests: its ETag names their versions; with If-None-Match it
        waits until one of them moves (200) or S seconds pass (304)."""
        d = self.two()
        es, cz = entries(ES), entries(CZ)
        r = d.get("/v1/contests")
        self.assertEqual(r.header("Cache-Control"), "no-store")
        self.assertEqual(d.get("/v1/contests", headers={
            "If-None-Match": r.header("ETag")}).status, 304)
        only = "/v1/contests?contests=%s" % CZ
        r = d.get(only)
        self.assertEqual([c["id"] for c in r.json()["contests"]], [CZ])
        # Another contest's post leaves it waiting...
        t = threading.Timer(0.2, self.post, (d, ES) + es[0])
        t.start()
        self.addCleanup(t.cancel)
        t0 = time.monotonic()
        r2 = d.get(only + "&wait=1", headers={"If-None-Match":
                                              r.header("ETag")})
        t.join()
        self.assertEqual(r2.status, 304)
        self.assertGreater(time.monotonic() - t0, 0.9)
        self.assertEqual(r2.header("ETag"), r.header("ETag"))
        # ... its own wakes it, with the new list and tag.
        both = "/v1/contests?contests=%s,%s" % (CZ, ES)
        tag = d.get(both).header("ETag")
        t = threading.Timer(0.2, self.post, (d, CZ) + cz[0])
        t.start()
        r = d.get(both + "&wait=10", headers={"If-None-Match": tag})
        t.join()
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual([(c["id"], c["version"]) for c in
                          r.json()["contests"]], [(CZ, 1), (ES, 1)])
        self.assertNotEqual(r.header("ETag"), tag)
        self.assertEqual(r.header("ETag"), d.get(both).header("ETag"))
        for q, code in (("contests=%s,%s" % (CZ, CZ), "invalid_contests"),
                        ("contests=nope", "unknown_contest"),
                        ("wait=61", "invalid_wait")):
            r = d.get("/v1/contests?" + q)
            self.assertEqual(r.json()["error"]["code"], code, q)
        # Parked ones are answered at the stop.
        tag = d.get(both).header("ETag")
        out = []
        t = threading.Thread(target=lambda: out.append(d.get(
            both + "&wait=30", headers={"If-None-Match": tag}).status))
        t.start()
        deadline = time.monotonic() + 5
        while long_polls(d) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(d.stop(), 0)
        t.join()
        self.assertEqual(out, [304])

    def test_a_slow_reader_of_several_contests_is_conflated_per_contest(self):
        """A named stream that does not keep up is given a snapshot of each
        of its contests, never of one only: every contest's versions arrive
        in order, or after a snapshot of that contest, up to its last."""
        d = self.two()
        es, cz = entries(ES), entries(CZ)
        slow = self.sse(d, "/v1/events?contests=%s,%s" % (ES, CZ),
                        rcvbuf=4096)
        time.sleep(0.2)
        n = 40
        for r in range(1, n + 1):
            self.post(d, ES, es[0][0], dict(es[0][1], revision=r))
            self.post(d, CZ, cz[0][0], dict(cz[0][1], revision=r))
        evs = slow.wait_for(lambda evs: all(
            v and v[-1]["version"] == n for v in (
                self.named(evs, "leaderboard").get(c) for c in (ES, CZ))),
            timeout=20)
        last, snapshots = {}, 0
        for e in evs:
            kind = e.get("event")
            if kind == "snapshot":
                data = json.loads(e["data"])
                last[data["contest"]] = data["version"]
                snapshots += 1
            elif kind == "change":
                data = json.loads(e["data"])
                self.assertEqual(data["version"], last[data["contest"]] + 1,
                                 "%s: a skip without a snapshot" % e["id"])
                last[data["contest"]] = data["version"]
        self.assertEqual(last, {ES: n, CZ: n})
        # Conflated indeed: fewer than every version of both was sent.
        self.assertGreater(snapshots, 2)

    def test_crash_loop_posting_to_both_contests(self):
        iterations = int(os.environ.get("TALLYD_CRASH_ITERATIONS", "10"))
        tmp = self.tmpdir()
        loop = ContestsCrashLoop(os.path.join(tmp, "var"), clients=4,
                                 seed=seed("contests crash loop"),
                                 log=lambda s: print("  " + s, flush=True))
        stats = loop.run(iterations, 0.05, 0.4)
        acked = sum(s[2] for s in stats)
        self.assertGreater(acked, iterations, "the clients hardly posted")
        # Batches across contests were applied (and found whole).
        self.assertGreater(loop.cross, 0, "no batch across contests")
        # Both contests were posted.
        d = loop.daemon().start()
        self.addCleanup(d.cleanup)
        self.assertTrue(all(c["version"] > 0 for c in
                            d.get("/v1/contests").json()["contests"]))

    def test_tallyctl_contest(self):
        d = self.two()
        env = dict(os.environ, TALLYD_URL="http://127.0.0.1:%d" % d.port,
                   TALLYD_TOKEN=TOKEN)

        def ctl(*args):
            return subprocess.run([TALLYCTL] + list(args), env=env,
                                  capture_output=True, text=True, timeout=60)
        # watch --contest follows the contest's own event stream: with
        # polls 60 s apart, the second table can only come from it.
        w = subprocess.Popen([TALLYCTL, "-v", "watch", "--contest", CZ,
                              "--count", "2", "--interval", "60"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        try:
            time.sleep(1.5)
            r = ctl("post", "--contest", CZ, os.path.join(ELECTIONS, CZ,
                                                          "results.json"))
            out, err = w.communicate(timeout=30)
        finally:
            w.kill()
        self.assertEqual(w.returncode, 0, out + err)
        self.assertNotIn("polling", err)
        self.assertIn("October 2017", out)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("14 applied", r.stdout)
        _, seats = self.seats(d, CZ)
        self.assertEqual(seats, load(CZ, "expected.json")["national"])
        self.assertEqual(d.get("/v1/leaderboard").json()["version"], 0)
        r = ctl("show", "--contest", CZ, "PHA")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("province PHA", r.stdout)
        r = ctl("watch", "--contest", CZ, "--once")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("October 2017", r.stdout)
        r = ctl("post", "--contest", "nope", os.path.join(ELECTIONS, CZ,
                                                          "results.json"))
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("unknown_contest", r.stderr)
        r = ctl("post", "--contest", "a/b", "-")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        # Without --contest: the first contest, as before.
        r = ctl("show", "01")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_tallyctl_replay_rehearses_two_datasets_at_once(self):
        """tallyctl replay DIR DIR: one night of two contests, their feeds
        interleaved in simulated time, each to the contest named like its
        directory; each ends on its official seats."""
        NO = "no-2021"     # Czechia's expected.json covers 3 regions
        d = self.daemon(args=["--election", definition(ES), "--election",
                              definition(NO)],
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        env = dict(os.environ, TALLYD_URL="http://127.0.0.1:%d" % d.port,
                   TALLYD_TOKEN=TOKEN)
        r = subprocess.run([TALLYCTL, "replay", "--speed", "0",
                            "--corrections", os.path.join(ELECTIONS, ES),
                            os.path.join(ELECTIONS, NO) + "/"], env=env,
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("replay %s: 52 provinces; %s: 19 provinces" % (ES, NO),
                      r.stdout)
        self.assertIn("%s: official seats: match" % ES, r.stdout)
        self.assertIn("%s: official seats: match" % NO, r.stdout)
        # Interleaved: feeds of both before either contest is final.
        lines = [x.split()[1].split("/")[0] for x in r.stdout.splitlines()
                 if x.startswith("t+")]
        first_no = lines.index(NO)
        self.assertIn(ES, lines[first_no:])
        for c in (ES, NO):
            exp = load(c, "expected.json")
            self.assertEqual(self.seats(d, c)[1], exp["national"], c)
        # A directory that names no contest served: refused, says so.
        r = subprocess.run([TALLYCTL, "replay", "--speed", "0",
                            os.path.join(ELECTIONS, ES),
                            os.path.join(ELECTIONS, CZ)], env=env,
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("unknown_contest", r.stderr)

    def test_reload_and_backup_with_several_contests(self):
        import signal
        tmp = self.tmpdir()
        es_path = os.path.join(tmp, "es.json")
        with open(es_path, "w") as f:
            json.dump(load(ES, "election.json"), f)
        d = self.daemon(args=["--election", es_path, "--election",
                              definition(CZ)],
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        self.post(d, CZ, *entries(CZ)[0])
        before = d.get("/v1/contests").body
        # Nothing is counted in the first contest, but its id names its
        # records: another id waits for a restart, and nothing changes.
        with open(es_path, "w") as f:
            json.dump(dict(load(ES, "election.json"), id="es-renamed"), f)
        d.send_signal(signal.SIGHUP)
        self.wait_log(d, "another id takes a restart")
        self.wait_log(d, "reload failed; keeping the configuration in force")
        self.assertEqual(d.get("/v1/contests").body, before)
        self.post(d, ES, *entries(ES)[0])
        # A backup is a snapshot of one tally: refused, saying what to do.
        d.send_signal(signal.SIGUSR1)
        self.wait_log(d, "SIGUSR1: no backup with 2 contests")
        d.kill()
        with open(es_path, "w") as f:
            json.dump(load(ES, "election.json"), f)
        d.start()
        self.assertEqual([c["version"] for c in d.get("/v1/contests").json()[
            "contests"]], [1, 1])

    def token_file(self, lines):
        """A tallyd.conf naming a token file of (token, scope) lines."""
        import hashlib
        tmp = self.tmpdir()
        with open(os.path.join(tmp, "tokens"), "w") as f:
            for tok, scope in lines:
                f.write("sha256:%s %s label-%s\n" % (
                    hashlib.sha256(tok.encode()).hexdigest(), scope,
                    tok[:8]))
        with open(os.path.join(tmp, "tallyd.conf"), "w") as f:
            f.write("token_file %s\n" % os.path.join(tmp, "tokens"))
        return os.path.join(tmp, "tallyd.conf")

    def test_a_token_scoped_to_provinces_posts_to_the_first_contest_only(self):
        NO = "no-2021"
        scoped = "scoped-token-for-01-and-02-abcdef"
        admin = "admin-token-for-every-province-0"
        conf = self.token_file(((scoped, "01,02"), (admin, "*")))
        d = self.daemon(args=["-f", conf, "--election", definition(ES),
                              "--election", definition(NO)])
        es, no = dict(entries(ES)), dict(entries(NO))

        def post(tok, contest, pid, body):
            return d.request("POST", "/v1/contests/%s/provinces/%s/results"
                             % (contest, pid), body=body,
                             headers={"Authorization": "Bearer " + tok})
        # Scoped to Spain's 01 (Araba/Alava): Norway's 01 (Ostfold) has
        # the same id and is not its to post; the token names no province
        # of Norway's at all.
        err = self.assertError(post(scoped, NO, "01", no["01"]), 403,
                               "forbidden_contest")
        self.assertIn("contest no-2021", err["message"])
        self.assertEqual(post(scoped, ES, "01", es["01"]).status, 201)
        self.assertError(post(scoped, ES, "03", es["03"]), 403,
                         "forbidden_province")
        # Nor a call on Norway's 01 (calls checked the first contest's
        # provinces against every contest).
        self.assertError(d.request(
            "POST", "/v1/contests/%s/calls" % NO, body={
                "scope": "province", "province": "01", "what": "seats"},
            headers={"Authorization": "Bearer " + scoped}), 403,
            "forbidden_contest")
        self.assertEqual(post(admin, NO, "01", no["01"]).status, 201)
        self.assertEqual([c["version"] for c in d.get("/v1/contests").json()[
            "contests"]], [1, 1])

    def test_dot_segment_ids_are_refused(self):
        """A contest id "." or ".." would make /v1/contests/../... URLs
        (a browser or curl resolves them to /v1/...): refused at start
        and by -n, naming the file and the member, as is a province's."""
        tmp = self.tmpdir()
        for which, dot in (("id", ".."), ("id", "."), ("province", "..")):
            e = load(CZ, "election.json")
            if which == "id":
                e["id"] = dot
            else:
                e["provinces"][0]["id"] = dot
            path = os.path.join(tmp, "cz-%s-%d.json" % (which, len(dot)))
            with open(path, "w") as f:
                json.dump(e, f)
            ptr = "/id" if which == "id" else "/provinces/0/id"
            for extra in (["-n"], ["--listen", "127.0.0.1:1"]):
                r = run_tallyd(extra + ["--data-dir", os.path.join(
                    tmp, "var"), "--election", definition(ES),
                    "--election", path])
                out = r.stdout + r.stderr
                self.assertNotEqual(r.returncode, 0, out)
                self.assertIn('%s: %s: "%s" is not an id: ids go into URLs'
                              % (path, ptr, dot), out)
            # Refused before the data dir is touched.
            self.assertFalse(os.path.exists(os.path.join(tmp, "var")))
        # As the first (or only) contest too.
        r = run_tallyd(["-n", "--data-dir", os.path.join(tmp, "var"),
                        "--election", os.path.join(tmp, "cz-id-2.json")])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('/id: ".." is not an id', r.stdout + r.stderr)

    def test_tokens_scoped_to_a_contest(self):
        """Token file scopes CONTEST/id and CONTEST/* (plain ids stay the
        first contest's): a token of Czechia is refused 403
        forbidden_contest on Spain, on every route that posts, and changes
        nothing; one of some Czech regions is refused the others."""
        cz_all = "czech-desk-token-0123456789abcdef"
        mixed = "mixed-token-spain01-czech-prague0"
        by_id = "spain-by-its-contest-id-012345678"
        admin = "admin-token-for-every-contest-000"
        conf = self.token_file(((cz_all, CZ + "/*"),
                                (mixed, "01,%s/PHA,%s/STC" % (CZ, CZ)),
                                (by_id, ES + "/02"), (admin, "*")))
        d = self.daemon(args=["-f", conf, "--election", definition(ES),
                              "--election", definition(CZ)])
        es, cz = dict(entries(ES)), dict(entries(CZ))

        def post(tok, path, body):
            return d.request("POST", path, body=body,
                             headers={"Authorization": "Bearer " + tok})

        def one(tok, contest, pid, body):
            return post(tok, "/v1/contests/%s/provinces/%s/results" % (
                contest, pid), body)

        def state():
            return (d.get("/v1/contests").json()["contests"],
                    d.get("/v1/leaderboard").body,
                    d.get("/v1/contests/%s/leaderboard" % CZ).body)
        # Czechia's desk: any Czech region, nothing of Spain's (plain and
        # contest routes, a batch, a lot, a call), refused before the body
        # is looked at.
        self.assertEqual(one(cz_all, CZ, "JHM", cz["JHM"]).status, 201)
        before = state()
        for path, body in (
                ("/v1/provinces/01/results", es["01"]),
                ("/v1/contests/%s/provinces/01/results" % ES, es["01"]),
                ("/v1/results", {"results": [dict(es["01"],
                                                  province="01")]}),
                ("/v1/contests/%s/results" % ES, {"results": [dict(
                    es["01"], province="01")]}),
                ("/v1/provinces/01/lot", {"order": ["x"]}),
                ("/v1/calls", {"scope": "national", "what": "first_place",
                               "coalition": "000096"}),
                ("/v1/provinces/nowhere/results", es["01"])):
            err = self.assertError(post(cz_all, path, body), 403,
                                   "forbidden_contest")
            self.assertIn(ES, err["message"])
        self.assertEqual(state(), before, "a refusal changed something")
        # Prague and Central Bohemia, and Spain's 01 (a plain id: the
        # first contest's); not Brno, not Spain's 02.
        self.assertEqual(one(mixed, CZ, "PHA", cz["PHA"]).status, 201)
        self.assertEqual(one(mixed, ES, "01", es["01"]).status, 201)
        err = self.assertError(one(mixed, CZ, "JHM", dict(
            cz["JHM"], revision=cz["JHM"]["revision"] + 1)), 403,
            "forbidden_province")
        self.assertIn("JHM", err["message"])
        self.assertError(post(mixed, "/v1/contests/%s/results" % CZ, {
            "results": [dict(cz["STC"], province="STC"),
                        dict(cz["ZLK"], province="ZLK")]}), 403,
            "forbidden_province", "/results/1/province")
        self.assertError(post(mixed, "/v1/provinces/02/results", es["02"]),
                         403, "forbidden_province")
        # A national call in Czechia needs every Czech region.
        self.assertError(post(mixed, "/v1/contests/%s/calls" % CZ, {
            "scope": "national", "what": "first_place", "coalition": "ANO"}),
            403, "forbidden_national")
        # The first contest by its own id.
        self.assertEqual(post(by_id, "/v1/provinces/02/results",
                              es["02"]).status, 201)
        self.assertError(post(by_id, "/v1/contests/%s/provinces/STC/"
                              "results" % CZ, cz["STC"]), 403,
                         "forbidden_contest")
        self.assertEqual(one(admin, CZ, "STC", cz["STC"]).status, 201)
        self.assertEqual([c["version"] for c in d.get("/v1/contests").json()[
            "contests"]], [2, 3])

        # A scope naming a contest or a province that is not served: no
        # start, no check, no reload (which keeps the tokens in force).
        for scope, says in (("nope/*", 'no contest "nope"'),
                            (CZ + "/XX", 'no province "XX" in contest ' + CZ),
                            (CZ + "/", "is not CONTEST/id"),
                            ("01,*", '"*" is the whole scope')):
            bad = self.token_file(((admin, scope),))
            for extra in (["-n"], ["--listen", "127.0.0.1:1"]):
                r = run_tallyd(extra + ["-f", bad, "--data-dir", os.path.join(
                    self.tmpdir(), "var"), "--election", definition(ES),
                    "--election", definition(CZ)])
                self.assertNotEqual(r.returncode, 0, (scope, extra))
                self.assertIn(says, r.stdout + r.stderr, (scope, extra))
        with open(conf.replace("tallyd.conf", "tokens"), "w") as f:
            import hashlib
            f.write("sha256:%s nope/* x\n" % hashlib.sha256(
                cz_all.encode()).hexdigest())
        d.send_signal(signal.SIGHUP)
        self.wait_log(d, 'no contest "nope"')
        self.assertEqual(one(cz_all, CZ, "JHC", cz["JHC"]).status, 201)

        # tallyctl --contest makes such a line, checked against that
        # contest's provinces (the daemon's, or --election's).
        def ctl(*args):
            return subprocess.run([TALLYCTL, "--url", "http://127.0.0.1:%d"
                                   % d.port, "--contest", CZ] + list(args),
                                  capture_output=True, text=True, timeout=60)
        r = ctl("token", "new", "--provinces", "PHA,STC", "--label", "cz")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines()[1].split()[1:],
                         ["%s/PHA,%s/STC" % (CZ, CZ), "cz"])
        r = ctl("token", "new")
        self.assertEqual(r.stdout.splitlines()[1].split()[1], CZ + "/*")
        r = subprocess.run([TALLYCTL, "--url", "http://127.0.0.1:%d" % d.port,
                            "--contest", "nope", "token", "new"],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("unknown_contest", r.stderr)
        self.assertEqual(r.stdout, "")
        r = ctl("token", "new", "--provinces", "01")
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        r = ctl("token", "new", "--provinces", "PHA", "--election",
                definition(ES))
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("is contest %s, not %s" % (ES, CZ), r.stderr)

    @needs_failpoints
    def test_one_fsync_for_the_rounds_of_both_contests(self):
        """Group commit across contests: rounds of both contests that
        waited for the same journal job go to disk in one job, one
        fdatasync (a failpoint holds the first job's sync until both have
        arrived, so that nothing is left to timing)."""
        d = self.two("-v")
        es, cz = entries(ES), entries(CZ)
        hold = os.path.join(d.data_dir, "failpoint.sync_hold")
        held = os.path.join(d.data_dir, "failpoint.sync_held")
        open(hold, "w").close()
        self.addCleanup(lambda: os.path.exists(hold) and os.unlink(hold))

        def fsyncs():
            for line in d.get("/metrics").body.decode().splitlines():
                if line.startswith("tallyd_journal_fsync_seconds_count "):
                    return int(line.split()[1])
            raise AssertionError("no fsync count in /metrics")
        n0 = fsyncs()
        out = {}

        def post(key, contest, pid, body):
            out[key] = d.request("POST", "/v1/contests/%s/provinces/%s/"
                                 "results" % (contest, pid), body=body,
                                 headers=AUTH)
        ts = [threading.Thread(target=post, args=("a", ES) + es[0])]
        ts[0].start()
        deadline = time.monotonic() + 20
        while not os.path.exists(held) and time.monotonic() < deadline:
            time.sleep(0.005)
        self.assertTrue(os.path.exists(held), "no sync was held")
        ts += [threading.Thread(target=post, args=("b", ES) + es[1]),
               threading.Thread(target=post, args=("c", CZ) + cz[0])]
        for t in ts[1:]:
            t.start()
        # Both have reached the core (-v logs each accepted feed).
        self.wait_log(d, "accepted %s revision 1 " % es[1][0])
        self.wait_log(d, "accepted %s revision 1 " % cz[0][0])
        os.unlink(hold)
        for t in ts:
            t.join(30)
        self.assertEqual([out[k].status for k in "abc"], [201] * 3)
        self.assertEqual(fsyncs() - n0, 2)
        self.assertEqual([c["version"] for c in d.get("/v1/contests").json()[
            "contests"]], [2, 1])

    def test_duplicate_ids_are_refused_at_start(self):
        """Two definitions with one id, or one that does not load, refuse
        the start before the data dir is touched (its lock, ingest.token
        and tallyd.log were made first, then the start was refused)."""
        bad = os.path.join(self.tmpdir(), "bad.json")
        with open(bad, "w") as f:
            f.write('{"id": "broken", "provinces": [')
        for args in (["-n"], ["-d"]):
            var = os.path.join(self.tmpdir(), "var")
            r = run_tallyd(args + ["--listen", "127.0.0.1:1",
                                   "--data-dir", var,
                                   "--election", definition(CZ),
                                   "--election", definition(ES),
                                   "--election", definition(CZ)])
            self.assertNotEqual(r.returncode, 0, args)
            out = r.stdout + r.stderr
            self.assertIn('contest 3 (%s) has the id "%s" of contest 1' % (
                definition(CZ), CZ), out)
            self.assertIn("each contest needs an id of its own", out)
            self.assertFalse(os.path.exists(var) and os.listdir(var),
                             os.listdir(var) if os.path.exists(var) else "")
            r = run_tallyd(args + ["--listen", "127.0.0.1:1",
                                   "--data-dir", var,
                                   "--election", definition(ES),
                                   "--election", bad])
            self.assertNotEqual(r.returncode, 0, args)
            self.assertIn("contest 2: election %s invalid" % bad,
                          r.stdout + r.stderr)
            self.assertFalse(os.path.exists(var) and os.listdir(var),
                             os.listdir(var) if os.path.exists(var) else "")

    def test_a_stream_follows_its_contest_across_a_reload(self):
        """A contest's event stream opened before a reload that removes a
        contest ahead of it goes on following its own contest, and a
        contest the reload adds never reaches it: a stream's topic is a
        number no other contest is given.  (The topics were the array's
        indexes: after the removal Norway published under Czechia's old
        one, and the contest added took Norway's.)"""
        NO = "no-2021"
        conf = os.path.join(self.tmpdir(), "tallyd.conf")

        def write(contests):
            with open(conf, "w") as f:
                f.write("election %s\n" % definition(ES))
                for c in contests:
                    f.write("contest %s\n" % c)

        def reload(text):
            n = d.logtext().count(text)
            d.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 20
            while d.logtext().count(text) <= n:
                self.assertLess(time.monotonic(), deadline, text)
                time.sleep(0.02)
        write([definition(CZ), definition(NO)])
        d = self.daemon(args=["-f", conf],
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        no, cz = entries(NO), entries(CZ)
        self.post(d, NO, *no[0])
        one = self.sse(d, "/v1/contests/%s/events" % NO)
        both = self.sse(d, "/v1/events?contests=%s,%s" % (ES, NO))
        gone = self.sse(d, "/v1/contests/%s/events" % CZ)
        for c in (one, both):
            c.wait_for(lambda evs: sum(e.get("event") == "leaderboard"
                                       for e in evs) == (1 if c is one
                                                          else 2))
        # Czechia (nothing counted) goes: Norway moves up the array.
        write([definition(NO)])
        reload("reload: 2 contests served")
        # Czechia's own stream ends with it (and only that one).
        deadline = time.monotonic() + 10
        while not gone.closed:
            self.assertLess(time.monotonic(), deadline, "stream went on")
            gone._fill()
        self.post(d, NO, *no[1])
        evs = one.wait_for(lambda evs: any(e.get("event") == "change"
                                           for e in evs))
        lb = d.get("/v1/contests/%s/leaderboard" % NO)
        self.assertEqual([e["id"] for e in evs if e.get("event") ==
                          "change"], [lb.header("ETag").strip('"')])
        evs = both.wait_for(lambda evs: any(e.get("event") == "change"
                                            for e in evs))
        self.assertEqual([e["id"] for e in evs if e.get("event") ==
                          "change"], ["%s:%s" % (NO, lb.header(
                              "ETag").strip('"'))])
        # Czechia comes back, after Norway: its versions reach neither.
        write([definition(NO), definition(CZ)])
        reload("reload: 3 contests served")
        self.post(d, CZ, *cz[0])
        self.post(d, NO, *no[2])
        lb = d.get("/v1/contests/%s/leaderboard" % NO)
        for c, prefix in ((one, ""), (both, NO + ":")):
            evs = c.wait_for(lambda evs: sum(e.get("event") == "change"
                                             for e in evs) == 2)
            c.s.settimeout(0.3)
            while c._fill():
                pass
            self.assertEqual([e["id"] for e in c.events()
                              if e.get("event") == "change"][1:],
                             [prefix + lb.header("ETag").strip('"')])

    def test_sighup_adds_and_removes_contests(self):
        """SIGHUP with new `contest` lines: the contest is served at once
        (routes, /v1/contests, a token file naming it, a batch across
        contests), the others' bytes do not move, and kill -9 brings all
        back; a contest with results cannot be removed (the reload is
        refused, the set in force is kept), one without results can; a
        changed definition of a contest with results waits for the
        restart."""
        NO = "no-2021"
        tmp = self.tmpdir()
        conf = os.path.join(tmp, "tallyd.conf")
        tokens = os.path.join(tmp, "tokens")
        no_tok = "norway-desk-token-0123456789abcdef"

        def write(contests, no_token=False):
            import hashlib
            with open(tokens, "w") as f:
                f.write("sha256:%s * admin\n" % hashlib.sha256(
                    TOKEN.encode()).hexdigest())
                if no_token:
                    f.write("sha256:%s %s/* norway\n" % (hashlib.sha256(
                        no_tok.encode()).hexdigest(), NO))
            with open(conf, "w") as f:
                f.write("election %s\ntoken_file %s\nsnapshot_every 2\n" % (
                    definition(ES), tokens))
                for c in contests:
                    f.write("contest %s\n" % c)

        def ids():
            return [c["id"] for c in d.get("/v1/contests").json()[
                "contests"]]

        def reload(text):
            n = d.logtext().count(text)
            d.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 20
            while d.logtext().count(text) <= n:
                self.assertLess(time.monotonic(), deadline, text)
                time.sleep(0.02)
        # One contest at start (snapshots written): Spain.
        write([])
        d = self.daemon(args=["-f", conf])
        es, cz = entries(ES), entries(CZ)
        no = entries(NO)
        for i in range(3):
            self.post(d, ES, *es[i])
        self.assertEqual(ids(), [ES])

        def snapshots():
            return sorted(n for n in os.listdir(d.data_dir)
                          if n.startswith("snapshot"))
        deadline = time.monotonic() + 20
        while not snapshots():
            self.assertLess(time.monotonic(), deadline, "no snapshot")
            time.sleep(0.05)
        es_p = [p for p, _ in es[:4]]
        es_views = self.views(d, ES, es_p)
        # Czechia and Norway come, with a token of Norway's.
        write([definition(CZ), definition(NO)], no_token=True)
        reload("reload: 3 contests served")
        self.assertIn("contest %s added" % NO, d.logtext())
        self.assertEqual(ids(), [ES, CZ, NO])
        self.assertEqual(self.views(d, ES, es_p), es_views)
        self.post(d, CZ, *cz[0])
        r = d.request("POST", "/v1/contests/%s/provinces/%s/results" % (
            NO, no[0][0]), body=no[0][1],
            headers={"Authorization": "Bearer " + no_tok})
        self.assertEqual(r.status, 201, r.body)
        self.assertError(d.request(
            "POST", "/v1/provinces/%s/results" % es[3][0], body=es[3][1],
            headers={"Authorization": "Bearer " + no_tok}), 403,
            "forbidden_contest")
        r = self.batch(d, [dict(es[3][1], province=es[3][0]),
                           dict(no[1][1], province=no[1][0], contest=NO)])
        self.assertEqual(r.status, 201, r.body)
        for i in range(4, 7):
            self.post(d, ES, *es[i])
        self.assertEqual([c["version"] for c in d.get("/v1/contests").json()[
            "contests"]], [7, 1, 2])
        cz_p, no_p = [p for p, _ in cz[:2]], [p for p, _ in no[:3]]
        # No snapshot since: it would hold Spain's tally only, and its
        # prune would remove the others' records.
        snaps = snapshots()
        time.sleep(1.5)
        self.assertEqual(snapshots(), snaps)
        before = (self.views(d, ES, es_p), self.views(d, CZ, cz_p),
                  self.views(d, NO, no_p))
        # Czechia has results: leaving it out is refused, nothing moves.
        write([definition(NO)], no_token=True)
        reload("reload failed; keeping the configuration in force")
        self.assertIn("contest %s (%s) is no longer in the configuration "
                      "but has results" % (CZ, definition(CZ)), d.logtext())
        self.assertEqual(ids(), [ES, CZ, NO])
        self.assertEqual((self.views(d, ES, es_p), self.views(d, CZ, cz_p),
                          self.views(d, NO, no_p)), before)
        # A contest without results comes and goes.
        PL = "pl-2023"
        write([definition(CZ), definition(NO), definition(PL)],
              no_token=True)
        reload("reload: 4 contests served")
        self.assertEqual(ids(), [ES, CZ, NO, PL])
        write([definition(CZ), definition(NO)], no_token=True)
        reload("reload: 3 contests served")
        self.assertIn("contest %s (%s) removed" % (PL, definition(PL)),
                      d.logtext())
        self.assertEqual(ids(), [ES, CZ, NO])
        self.assertError(d.get("/v1/contests/%s/leaderboard" % PL), 404,
                         "unknown_contest")
        # Czechia's definition edited while it has results: kept, logged.
        cz_edit = os.path.join(tmp, "cz.json")
        with open(cz_edit, "w") as f:
            json.dump(dict(load(CZ, "election.json"), name="edited"), f)
        write([cz_edit, definition(NO)], no_token=True)
        reload("contest %s: results are counted: its definition in force "
               "is kept" % CZ)
        self.assertEqual((self.views(d, ES, es_p), self.views(d, CZ, cz_p),
                          self.views(d, NO, no_p)), before)
        # kill -9: the three come back byte for byte (Spain's records from
        # before the reload had no contest member; its snapshot stopped).
        write([definition(CZ), definition(NO)], no_token=True)
        d.kill()
        d.start()
        self.assertEqual((self.views(d, ES, es_p), self.views(d, CZ, cz_p),
                          self.views(d, NO, no_p)), before)
        self.assertEqual(d.stop(), 0)
        d.start()
        self.assertEqual((self.views(d, ES, es_p), self.views(d, CZ, cz_p),
                          self.views(d, NO, no_p)), before)

    def test_the_config_file_lists_contests(self):
        tmp = self.tmpdir()
        conf = os.path.join(tmp, "tallyd.conf")
        with open(conf, "w") as f:
            f.write("election %s\ncontest %s\n" % (definition(CZ),
                                                    definition(ES)))
        d = self.daemon(args=["-f", conf], env={"TALLYD_INGEST_TOKEN": TOKEN})
        self.assertEqual([c["id"] for c in d.get("/v1/contests").json()[
            "contests"]], [CZ, ES])
        self.assertEqual(d.get("/v1/election").json()["id"], CZ)
        r = run_tallyd(["-n", "-f", conf, "--data-dir", d.data_dir])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("2 contests", r.stdout)
        # One --election replaces the file's list: one contest.
        d.stop()
        d2 = self.daemon(args=["-f", conf, "--election", definition(ES)],
                         env={"TALLYD_INGEST_TOKEN": TOKEN})
        self.assertEqual([c["id"] for c in d2.get("/v1/contests").json()[
            "contests"]], [ES])

    def journal_bytes(self, d):
        out = b""
        for name in sorted(os.listdir(d.data_dir)):
            if name.startswith("journal-") and name.endswith(".log"):
                with open(os.path.join(d.data_dir, name), "rb") as f:
                    out += f.read()
        return out

    def tmpdir(self):
        import shutil
        import tempfile
        t = tempfile.mkdtemp(prefix="tallyd-contests-")
        self.addCleanup(shutil.rmtree, t, True)
        return t


if __name__ == "__main__":
    main()
