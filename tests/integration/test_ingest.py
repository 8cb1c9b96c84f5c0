#!/usr/bin/env python3
"""Feeds as commissions send them: whole real elections, revisions,
batches, every kind of bad input, tokens and the two listeners.

Every rejected feed must leave the tally exactly as it was: the tests check
the leaderboard version and the province's revision after each one.
"""
import copy
import json
import os
import socket
import stat
import time

from harness import (ELECTIONS, DaemonTest, Response, main, CheckedDaemonTest)

TOKEN = "ingest-token-for-the-tests-0123456789"
AUTH = {"Authorization": "Bearer " + TOKEN}




def load(ds, name):
    with open(os.path.join(ELECTIONS, ds, name)) as f:
        return json.load(f)


def entry(ds, province):
    """The results.json entry of one province (a batch entry)."""
    for e in load(ds, "results.json")["results"]:
        if e["province"] == province:
            return e
    raise KeyError(province)


def snapshot(ds, province, **changes):
    """A single-POST body: the entry without "province", with changes."""
    e = copy.deepcopy(entry(ds, province))
    del e["province"]
    e.update(changes)
    return e


def parse_raw(data):
    """A raw HTTP/1.1 response (with Content-Length) as a Response."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if not lines or not lines[0].startswith(b"HTTP/1."):
        raise AssertionError("not an HTTP response: %r" % data[:200])
    status = int(lines[0].split()[1])
    headers = []
    for line in lines[1:]:
        k, _, v = line.decode("latin-1").partition(":")
        headers.append((k.strip(), v.strip()))
    return Response(status, headers, body)


class IngestTest(CheckedDaemonTest):
    """Helpers: a daemon on a real election with an all-provinces token."""

    ds = "es-2019-04"

    def start(self, ds=None, args=(), env=None, **kw):
        ds = ds or self.ds
        e = {"TALLYD_INGEST_TOKEN": TOKEN}
        e.update(env or {})
        return self.daemon(args=["--election", os.path.join(
            ELECTIONS, ds, "election.json")] + list(args), env=e, **kw)

    def post(self, d, province, body, headers=None, port=None):
        h = dict(AUTH)
        h.update(headers or {})
        return d.request("POST", "/v1/provinces/%s/results" % province,
                         body=body, headers=h, port=port)

    def batch(self, d, entries, headers=None, port=None):
        h = dict(AUTH)
        h.update(headers or {})
        return d.request("POST", "/v1/results", body={"results": entries},
                         headers=h, port=port)

    def version(self, d):
        r = d.get("/v1/leaderboard")
        self.assertEqual(r.status, 200)
        return r.json()["version"]

    def revision(self, d, province):
        r = d.get("/v1/provinces/" + province)
        self.assertEqual(r.status, 200)
        return r.json()["revision"]

    def province_seats(self, d, province):
        p = d.get("/v1/provinces/" + province).json()
        return {l["id"]: l["seats"] for l in p["lists"] if l["seats"] > 0}

    def national_seats(self, d):
        lb = d.get("/v1/leaderboard").json()
        return {c["id"]: c["seats"] for c in lb["coalitions"] if c["seats"] > 0}

    def assertApplied(self, r, version=None):
        self.assertEqual(r.status, 201, r.body)
        b = r.json()
        self.assertEqual(b["status"], "applied", r.body)
        if version is not None:
            self.assertEqual(b["version"], version, r.body)
        return b

    def assertElection(self, d, ds):
        """National and provincial seats equal the official ones."""
        exp = load(ds, "expected.json")
        lb = d.get("/v1/leaderboard").json()
        self.assertEqual(lb["seats"]["total"], exp["seats_total"])
        self.assertEqual(lb["seats"]["allocated"], lb["seats"]["total"])
        self.assertEqual(lb["seats"]["pending"], 0)
        self.assertEqual(lb["provinces"]["reporting"], lb["provinces"]["total"])
        self.assertEqual(lb["provinces"]["final"], lb["provinces"]["total"])
        self.assertEqual(
            {c["id"]: c["seats"] for c in lb["coalitions"] if c["seats"]},
            exp["national"])
        provinces = d.get("/v1/provinces").json()["provinces"]
        self.assertEqual(len(provinces), lb["provinces"]["total"])
        self.assertEqual(sorted(p["id"] for p in provinces),
                         sorted(exp["provinces"]))
        for pid, want in exp["provinces"].items():
            self.assertEqual(self.province_seats(d, pid), want,
                             "%s province %s" % (ds, pid))


class RealElections(IngestTest):
    def test_whole_elections_in_one_batch(self):
        for ds in ("es-2019-04", "es-2019-11", "es-2016-06", "no-2021"):
            with self.subTest(ds=ds):
                d = self.start(ds)
                v0 = self.version(d)
                r = d.request("POST", "/v1/results",
                              body=load(ds, "results.json"), headers=AUTH)
                b = self.assertApplied(r, v0 + 1)
                self.assertEqual(len(b["results"]),
                                 len(load(ds, "results.json")["results"]))
                self.assertTrue(all(x["status"] == "applied"
                                    for x in b["results"]))
                self.assertEqual(self.version(d), v0 + 1)
                self.assertElection(d, ds)
                self.check_daemon_log(d)
                d.cleanup()

    def test_province_by_province(self):
        ds = "es-2019-04"
        d = self.start(ds)
        v = self.version(d)
        for e in load(ds, "results.json")["results"]:
            body = dict(e)
            pid = body.pop("province")
            r = self.post(d, pid, body)
            v += 1
            b = self.assertApplied(r, v)
            self.assertEqual((b["province"], b["revision"]), (pid, 1))
        self.assertEqual(self.version(d), v)
        self.assertElection(d, ds)

    def test_bizkaia_correction(self):
        """Provisional count, then the definitive Bizkaia (48) as revision 2:
        EAJ-PNV (000022) 4 -> 3 seats, PP (000083) 0 -> 1."""
        d = self.start("es-2019-11")
        v0 = self.version(d)
        r = d.request("POST", "/v1/results",
                      body=load("es-2019-11-provisional", "results.json"),
                      headers=AUTH)
        self.assertApplied(r, v0 + 1)
        self.assertEqual(self.version(d), v0 + 1)
        prov = load("es-2019-11-provisional", "expected.json")
        self.assertEqual(self.province_seats(d, "48"), prov["provinces"]["48"])
        self.assertEqual(self.province_seats(d, "48")["000022"], 4)
        self.assertNotIn("000083", self.province_seats(d, "48"))
        self.assertEqual(self.national_seats(d), prov["national"])

        definitive = snapshot("es-2019-11", "48", revision=2,
                              note="definitive count (escrutinio general)")
        r = self.post(d, "48", definitive)
        b = self.assertApplied(r, v0 + 2)
        self.assertEqual((b["province"], b["revision"]), ("48", 2))
        self.assertEqual(self.version(d), v0 + 2)
        seats = self.province_seats(d, "48")
        self.assertEqual(seats, load("es-2019-11", "expected.json")
                         ["provinces"]["48"])
        self.assertEqual((seats["000022"], seats["000083"]), (3, 1))
        self.assertEqual(self.national_seats(d),
                         load("es-2019-11", "expected.json")["national"])
        p = d.get("/v1/provinces/48").json()
        self.assertEqual(p["revision"], 2)
        self.assertEqual(p["status"], "final")

        h = d.get("/v1/provinces/48/history").json()
        self.assertEqual(h["province"], "48")
        self.assertEqual([x["revision"] for x in h["revisions"]], [1, 2])
        old = entry("es-2019-11-provisional", "48")
        first, second = h["revisions"]
        self.assertEqual(first["votes"], old["votes"])
        # The first revision's changes are its votes (from nothing).
        self.assertEqual(first["changed"], old["votes"])
        self.assertIsNone(first["note"])
        self.assertEqual(second["votes"], definitive["votes"])
        self.assertEqual(second["note"], definitive["note"])
        want = {k: definitive["votes"][k] - old["votes"][k]
                for k in definitive["votes"]
                if definitive["votes"][k] != old["votes"][k]}
        self.assertTrue(want)
        self.assertEqual(second["changed"], want)
        for x in h["revisions"]:
            self.assertRegex(x["received_at"],
                             r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class Revisions(IngestTest):
    def setUp(self):
        self.d = self.start()
        self.v0 = self.version(self.d)
        self.rev1 = snapshot(self.ds, "01", reported_at="2019-04-28T22:00:00Z",
                             stations={"reporting": 90, "total": 100})
        r = self.post(self.d, "01", self.rev1)
        b = self.assertApplied(r, self.v0 + 1)
        # The receipt of the transparency log (docs/VERIFY.md): the entry
        # of version N is leaf N - 1.
        receipt = b.pop("log")
        self.assertEqual(receipt["index"], self.v0)
        self.assertEqual(b, {"status": "applied", "province": "01",
                             "revision": 1, "version": self.v0 + 1})

    def test_identical_retry_is_duplicate(self):
        r = self.post(self.d, "01", self.rev1)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json(), {"status": "duplicate", "province": "01",
                                    "revision": 1, "version": self.v0 + 1})
        self.assertEqual(self.version(self.d), self.v0 + 1)
        h = self.d.get("/v1/provinces/01/history").json()
        self.assertEqual(len(h["revisions"]), 1)

    def test_retry_with_other_key_order_and_spacing_is_duplicate(self):
        votes = dict(reversed(list(self.rev1["votes"].items())))
        body = dict(reversed(list(self.rev1.items())))
        body["votes"] = votes
        body["stations"] = {"total": 100, "reporting": 90}
        raw = json.dumps(body, indent=3, separators=(" ,  ", " :\t")).encode()
        self.assertNotEqual(raw, json.dumps(self.rev1).encode())
        r = self.post(self.d, "01", raw + b"\r\n",
                      headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["status"], "duplicate")
        self.assertEqual(self.version(self.d), self.v0 + 1)

    def test_same_revision_other_content_conflicts(self):
        for change in ({"blank": self.rev1["blank"] + 1},
                       {"note": "a note"},
                       {"status": "partial"},
                       {"votes": dict(self.rev1["votes"], **{"000027": 1})}):
            with self.subTest(change=change):
                r = self.post(self.d, "01", dict(self.rev1, **change))
                err = self.assertError(r, 409, "revision_conflict", "/revision")
                self.assertIn("revision 2", err["message"])
                self.assertEqual(self.version(self.d), self.v0 + 1)
                self.assertEqual(self.revision(self.d, "01"), 1)

    def test_lower_revision_is_stale_and_names_current(self):
        rev5 = dict(self.rev1, revision=5)
        self.assertApplied(self.post(self.d, "01", rev5), self.v0 + 2)
        for rev in (1, 4):
            r = self.post(self.d, "01", dict(self.rev1, revision=rev))
            err = self.assertError(r, 409, "stale_revision", "/revision")
            self.assertIn("current revision 5", err["message"])
            self.assertEqual(self.version(self.d), self.v0 + 2)
            self.assertEqual(self.revision(self.d, "01"), 5)

    def test_correction_may_lower_numbers(self):
        lower = {k: v // 2 for k, v in self.rev1["votes"].items()}
        rev2 = dict(self.rev1, revision=2, votes=lower, blank=0,
                    note="double-counted stations removed")
        self.assertApplied(self.post(self.d, "01", rev2), self.v0 + 2)
        p = self.d.get("/v1/provinces/01").json()
        self.assertEqual(p["revision"], 2)
        self.assertEqual({l["id"]: l["votes"] for l in p["lists"]}, lower)
        self.assertEqual(p["votes"]["blank"], 0)
        self.assertEqual(p["votes"]["valid"], sum(lower.values()))
        lb = self.d.get("/v1/leaderboard").json()
        self.assertEqual(lb["votes"]["valid"], sum(lower.values()))
        h = self.d.get("/v1/provinces/01/history").json()
        self.assertEqual(len(h["revisions"]), 2)
        self.assertEqual(h["revisions"][1]["changed"],
                         {k: lower[k] - v for k, v in self.rev1["votes"].items()
                          if lower[k] != v})
        self.assertEqual(h["revisions"][1]["note"],
                         "double-counted stations removed")
        # A retry of the correction is a duplicate; of the original, stale.
        self.assertEqual(self.post(self.d, "01", rev2).json()["status"],
                         "duplicate")
        self.assertError(self.post(self.d, "01", self.rev1), 409,
                         "stale_revision")
        self.assertEqual(self.version(self.d), self.v0 + 2)


class Batches(IngestTest):
    def setUp(self):
        self.d = self.start()
        self.assertApplied(self.post(self.d, "01", snapshot(self.ds, "01")))
        self.assertApplied(self.post(self.d, "01",
                                     snapshot(self.ds, "01", revision=2)))
        self.v = self.version(self.d)
        self.before = self.d.get("/v1/provinces").body

    def assertNothingChanged(self):
        self.assertEqual(self.version(self.d), self.v)
        self.assertEqual(self.d.get("/v1/provinces").body, self.before)
        for pid in ("02", "03", "04", "05"):
            self.assertEqual(self.revision(self.d, pid), 0)
        self.assertEqual(self.revision(self.d, "01"), 2)

    def entries(self, *pids):
        return [copy.deepcopy(entry(self.ds, p)) for p in pids]

    def test_unknown_list_rejects_whole_batch(self):
        es = self.entries("02", "03", "04", "05")
        es[3]["votes"]["x"] = 10
        err = self.assertError(self.batch(self.d, es), 422, "unknown_list",
                               "/results/3/votes/x")
        self.assertIn("x", err["message"])
        self.assertNothingChanged()

    def test_stale_revision_rejects_whole_batch(self):
        es = self.entries("02", "01", "03")   # 01 is at revision 2
        err = self.assertError(self.batch(self.d, es), 409, "stale_revision",
                               "/results/1/revision")
        self.assertIn("current revision 2", err["message"])
        self.assertNothingChanged()

    def test_conflict_rejects_whole_batch(self):
        es = self.entries("02", "01")
        es[1]["revision"] = 2
        es[1]["blank"] += 1
        self.assertError(self.batch(self.d, es), 409, "revision_conflict",
                         "/results/1/revision")
        self.assertNothingChanged()

    def test_duplicate_province_rejects_whole_batch(self):
        es = self.entries("02", "03", "02")
        es[2]["revision"] = 2
        self.assertError(self.batch(self.d, es), 422, "duplicate_province",
                         "/results/2/province")
        self.assertNothingChanged()

    def test_other_bad_entries(self):
        cases = [
            ({"province": "99"}, 422, "unknown_province", "/results/1/province"),
            ({"province": 2}, 422, "wrong_type", "/results/1/province"),
            ({"revision": 0}, 422, "out_of_range", "/results/1/revision"),
            ({"bogus": 1}, 422, "unknown_field", "/results/1/bogus"),
            ({"status": "done"}, 422, "invalid_value", "/results/1/status"),
        ]
        for change, status, code, field in cases:
            with self.subTest(change=change):
                es = self.entries("02", "03", "04")
                es[1].update(change)
                self.assertError(self.batch(self.d, es), status, code, field)
                self.assertNothingChanged()
        es = self.entries("02", "03")
        del es[1]["province"]
        self.assertError(self.batch(self.d, es), 422, "missing_field",
                         "/results/1/province")
        self.assertNothingChanged()

    def test_batch_body_shape(self):
        self.assertError(self.batch(self.d, []), 422, "wrong_type", "/results")
        r = self.d.request("POST", "/v1/results", headers=AUTH, body={})
        self.assertError(r, 422, "missing_field", "/results")
        r = self.d.request("POST", "/v1/results", headers=AUTH,
                           body=self.entries("02"))
        self.assertError(r, 422, "wrong_type")
        self.assertNothingChanged()
        r = self.d.request("POST", "/v1/results", headers=AUTH,
                           body={"results": self.entries("02"), "x": 1})
        self.assertError(r, 422, "unknown_field", "/x")
        self.assertNothingChanged()

    def test_stations_pointer_in_batch(self):
        es = self.entries("02", "03")
        es[1]["stations"] = {"reporting": 1}
        self.assertError(self.batch(self.d, es), 422, "missing_field",
                         "/results/1/stations/total")
        self.assertNothingChanged()

    def test_all_duplicates_answer_200(self):
        es = self.entries("02", "03")
        r = self.batch(self.d, es)
        self.assertApplied(r, self.v + 1)
        r = self.batch(self.d, es)
        self.assertEqual(r.status, 200, r.body)
        b = r.json()
        self.assertEqual(b["status"], "duplicate")
        self.assertEqual(b["version"], self.v + 1)
        self.assertEqual([x["status"] for x in b["results"]],
                         ["duplicate", "duplicate"])
        self.assertEqual(self.version(self.d), self.v + 1)

    def test_mixed_new_and_duplicate(self):
        self.assertApplied(self.batch(self.d, self.entries("02")), self.v + 1)
        es = self.entries("01", "02", "03", "04")
        es[0]["revision"] = 2   # as posted alone in setUp: a duplicate
        r = self.batch(self.d, es)
        b = self.assertApplied(r, self.v + 2)
        self.assertEqual(b["results"], [
            {"province": "01", "revision": 2, "status": "duplicate"},
            {"province": "02", "revision": 1, "status": "duplicate"},
            {"province": "03", "revision": 1, "status": "applied"},
            {"province": "04", "revision": 1, "status": "applied"}])
        self.assertEqual(self.version(self.d), self.v + 2)
        for pid in ("02", "03", "04"):
            self.assertEqual(self.revision(self.d, pid), 1)


class AnswerBytes(IngestTest):
    """The answers to feeds, byte for byte: written out by the daemon (not
    dumped by jansson, issue 24), in the order jansson's compact dump gave
    them, the transparency log's receipt last, ending in a newline."""

    def test_single_and_batch_answers(self):
        d = self.start()
        v = self.version(d)
        compact = dict(separators=(",", ":"))

        r = self.post(d, "01", snapshot(self.ds, "01"))
        self.assertEqual(r.status, 201, r.body)
        leaf = r.json()["log"]["leaf_hash"]
        self.assertEqual(r.body, (json.dumps(
            {"province": "01", "revision": 1, "status": "applied",
             "version": v + 1, "log": {"index": v, "leaf_hash": leaf}},
            **compact) + "\n").encode())
        self.assertEqual(r.header("Content-Type"),
                         "application/json; charset=utf-8")
        self.assertEqual(r.header("Cache-Control"), "no-store")

        r = self.post(d, "01", snapshot(self.ds, "01"))
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body, (json.dumps(
            {"province": "01", "revision": 1, "status": "duplicate",
             "version": v + 1}, **compact) + "\n").encode())

        es = [copy.deepcopy(entry(self.ds, p)) for p in ("01", "02", "03")]
        r = self.batch(d, es)
        self.assertEqual(r.status, 201, r.body)
        leaf = r.json()["log"]["leaf_hash"]
        rows = [{"province": "01", "revision": 1, "status": "duplicate"},
                {"province": "02", "revision": 1, "status": "applied"},
                {"province": "03", "revision": 1, "status": "applied"}]
        self.assertEqual(r.body, (json.dumps(
            {"status": "applied", "version": v + 2, "results": rows,
             "log": {"index": v + 1, "leaf_hash": leaf}},
            **compact) + "\n").encode())

        r = self.batch(d, es)
        self.assertEqual(r.status, 200, r.body)
        for row in rows:
            row["status"] = "duplicate"
        self.assertEqual(r.body, (json.dumps(
            {"status": "duplicate", "version": v + 2, "results": rows},
            **compact) + "\n").encode())

        big = snapshot(self.ds, "02", revision=10 ** 15)
        r = self.post(d, "02", big)
        self.assertEqual(r.status, 201, r.body)
        b = r.json()
        self.assertEqual(b["revision"], 10 ** 15)
        self.assertTrue(r.body.startswith(
            b'{"province":"02","revision":1000000000000000,'
            b'"status":"applied","version":'), r.body)


class BadInput(IngestTest):
    """Every class of bad feed: the right status, code and pointer, and the
    tally unchanged."""

    def setUp(self):
        self.d = self.start()
        self.assertApplied(self.post(self.d, "01", snapshot(self.ds, "01")))
        self.v = self.version(self.d)
        self.good = snapshot(self.ds, "01", revision=2)

    def assertUnchanged(self):
        self.assertEqual(self.version(self.d), self.v)
        self.assertEqual(self.revision(self.d, "01"), 1)

    def raw_post(self, head, body=b"", province="01"):
        req = (b"POST /v1/provinces/%s/results HTTP/1.1\r\nHost: t\r\n"
               % province.encode()) + head + b"\r\n" + body
        return parse_raw(self.d.raw(req))

    def test_invalid_snapshots_are_422(self):
        g = self.good
        votes = g["votes"]
        first = sorted(votes)[0]

        def without(k):
            b = copy.deepcopy(g)
            del b[k]
            return b

        def with_votes(**v):
            return dict(g, votes=dict(votes, **v))

        cases = [
            ("unknown field", dict(g, note2="x"), "unknown_field", "/note2"),
            ("province in a single POST", dict(g, province="01"),
             "unknown_field", "/province"),
            ("missing revision", without("revision"), "missing_field",
             "/revision"),
            ("missing votes", without("votes"), "missing_field", "/votes"),
            ("revision 0", dict(g, revision=0), "out_of_range", "/revision"),
            ("revision negative", dict(g, revision=-2), "out_of_range",
             "/revision"),
            ("revision as string", dict(g, revision="2"), "wrong_type",
             "/revision"),
            ("revision float", dict(g, revision=2.0), "wrong_type",
             "/revision"),
            ("votes an array", dict(g, votes=[1, 2]), "wrong_type", "/votes"),
            ("votes a number", dict(g, votes=5), "wrong_type", "/votes"),
            ("unknown list", with_votes(x=1), "unknown_list", "/votes/x"),
            ("unknown list with / and ~", dict(g, votes={"a/b~c": 1}),
             "unknown_list", "/votes/a~1b~0c"),
            ("negative votes", with_votes(**{first: -1}), "out_of_range",
             "/votes/" + first),
            ("float votes 1.5", with_votes(**{first: 1.5}), "wrong_type",
             "/votes/" + first),
            ("float votes 1.0", with_votes(**{first: 1.0}), "wrong_type",
             "/votes/" + first),
            ("votes as string", with_votes(**{first: "10"}), "wrong_type",
             "/votes/" + first),
            ("votes null", with_votes(**{first: None}), "wrong_type",
             "/votes/" + first),
            ("votes over 10^12", with_votes(**{first: 10**12 + 1}),
             "out_of_range", "/votes/" + first),
            ("list and its alias", dict(g, votes={"000009": 1, "000010": 2}),
             "duplicate_list", "/votes/000010"),
            ("blank string", dict(g, blank="12"), "wrong_type", "/blank"),
            ("blank negative", dict(g, blank=-1), "out_of_range", "/blank"),
            ("blank over 10^12", dict(g, blank=10**12 + 1), "out_of_range",
             "/blank"),
            ("invalid float", dict(g, invalid=1.5), "wrong_type", "/invalid"),
            ("invalid negative", dict(g, invalid=-5), "out_of_range",
             "/invalid"),
            ("stations reporting > total",
             dict(g, stations={"reporting": 11, "total": 10}), "out_of_range",
             "/stations/reporting"),
            ("stations unknown field",
             dict(g, stations={"reporting": 1, "total": 2, "closed": 1}),
             "unknown_field", "/stations/closed"),
            ("stations missing total", dict(g, stations={"reporting": 1}),
             "missing_field", "/stations/total"),
            ("stations not an object", dict(g, stations=[1, 2]), "wrong_type",
             "/stations"),
            ("stations negative",
             dict(g, stations={"reporting": -1, "total": 2}), "out_of_range",
             "/stations/reporting"),
            ("bad status", dict(g, status="done"), "invalid_value", "/status"),
            ("status not a string", dict(g, status=True), "wrong_type",
             "/status"),
            ("reported_at not RFC 3339",
             dict(g, reported_at="28/04/2019 22:00"), "invalid_timestamp",
             "/reported_at"),
            ("reported_at without zone",
             dict(g, reported_at="2019-04-28T22:00:00"), "invalid_timestamp",
             "/reported_at"),
            ("reported_at 30 February",
             dict(g, reported_at="2018-02-30T10:00:00Z"), "invalid_timestamp",
             "/reported_at"),
            ("reported_at 29 February 2019",
             dict(g, reported_at="2019-02-29T10:00:00Z"), "invalid_timestamp",
             "/reported_at"),
            ("reported_at hour 24",
             dict(g, reported_at="2019-04-28T24:00:00Z"), "invalid_timestamp",
             "/reported_at"),
            ("reported_at a number", dict(g, reported_at=1556488800),
             "wrong_type", "/reported_at"),
            ("note too long", dict(g, note="n" * 2001), "out_of_range",
             "/note"),
            ("note too long in bytes", dict(g, note="\u00e9" * 1001),
             "out_of_range", "/note"),
            ("note not a string", dict(g, note=["x"]), "wrong_type", "/note"),
            ("body an array", [g], "wrong_type", None),
        ]
        for name, body, code, field in cases:
            with self.subTest(name):
                r = self.post(self.d, "01", body)
                err = self.assertError(r, 422, code, field)
                if field is None:
                    self.assertNotIn(err.get("field"), ("/revision", "/votes"))
                self.assertUnchanged()

    def test_limits_are_inclusive(self):
        first = sorted(self.good["votes"])[0]
        b = dict(self.good, votes=dict(self.good["votes"], **{first: 10**12}),
                 note="n" * 2000, reported_at="2020-02-29T23:59:60.5+05:30",
                 stations={"reporting": 10, "total": 10})
        self.assertApplied(self.post(self.d, "01", b), self.v + 1)
        p = self.d.get("/v1/provinces/01").json()
        self.assertEqual(max(l["votes"] for l in p["lists"]), 10**12)

    def test_body_of_exactly_the_limit(self):
        body = json.dumps(self.good).encode()
        body += b" " * (1024 * 1024 - len(body))
        r = self.post(self.d, "01", body,
                      headers={"Content-Type": "application/json"})
        self.assertApplied(r, self.v + 1)

    def test_huge_integers_are_out_of_range(self):
        """Integers past 64 bits are valid JSON: integers out of range (422,
        with the pointer where it can be found), not malformed JSON."""
        first = sorted(self.good["votes"])[0]
        for value in (10**20, -10**20):
            with self.subTest(value=value):
                body = dict(self.good, votes=dict(self.good["votes"],
                                                  **{first: value}))
                r = self.post(self.d, "01", body)
                err = self.assertError(r, 422, "out_of_range")
                self.assertIn(err.get("field"), (None, "/votes/" + first))
                self.assertUnchanged()
        r = self.post(self.d, "01", dict(self.good, revision=10**20))
        err = self.assertError(r, 422, "out_of_range")
        self.assertIn(err.get("field"), (None, "/revision"))
        self.assertUnchanged()

    def test_malformed_json_is_400(self):
        for body in (b'{"revision": 2, "votes": {', b"", b"revision=2",
                     b'{"revision": 2} trailing', b"\xff\xfe{}"):
            with self.subTest(body=body):
                r = self.post(self.d, "01", body,
                              headers={"Content-Type": "application/json"})
                self.assertError(r, 400, "invalid_json")
                self.assertUnchanged()

    def test_duplicate_keys_are_400(self):
        for body in (b'{"revision": 2, "revision": 3, "votes": {}}',
                     b'{"revision": 2, "votes": {"000027": 1, "000027": 2}}'):
            with self.subTest(body=body):
                r = self.post(self.d, "01", body,
                              headers={"Content-Type": "application/json"})
                self.assertError(r, 400, "invalid_json")
                self.assertUnchanged()

    def test_content_type(self):
        body = json.dumps(self.good).encode()
        for ct in ("text/plain", "application/x-www-form-urlencoded",
                   "application/jsonx", None):
            with self.subTest(ct=ct):
                h = {"Content-Type": ct} if ct else {}
                r = self.post(self.d, "01", body, headers=h)
                self.assertError(r, 415, "unsupported_media_type")
                self.assertUnchanged()
        r = self.post(self.d, "01", body,
                      headers={"Content-Type": "application/json; charset=utf-8"})
        self.assertApplied(r, self.v + 1)

    def test_body_over_limit_by_content_length(self):
        head = (b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
                b"Content-Type: application/json\r\n"
                b"Content-Length: %d\r\n" % (1024 * 1024 + 1))
        r = self.raw_post(head, b"{")
        self.assertError(r, 413, "body_too_large")
        self.assertUnchanged()

    def test_body_over_limit_chunked(self):
        chunk = b" " * 65536
        body = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n"
                        for _ in range(17)) + b"0\r\n\r\n"
        head = (b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
                b"Content-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n")
        r = self.raw_post(head, body)
        self.assertError(r, 413, "body_too_large")
        self.assertUnchanged()
        # A chunked body under the limit is fine.
        good = json.dumps(self.good).encode()
        r = self.raw_post(head, b"%x\r\n" % len(good) + good +
                          b"\r\n0\r\n\r\n")
        self.assertApplied(r, self.v + 1)

    def test_bad_framing(self):
        body = json.dumps(self.good).encode()
        auth = (b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
                b"Content-Type: application/json\r\n")
        cases = [
            ("two Content-Length",
             auth + b"Content-Length: %d\r\nContent-Length: %d\r\n"
             % (len(body), len(body)), body),
            ("two different Content-Length",
             auth + b"Content-Length: 2\r\nContent-Length: %d\r\n"
             % len(body), body),
            ("Content-Length and chunked",
             auth + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n"
             % len(body), b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"),
            ("Transfer-Encoding gzip", auth + b"Transfer-Encoding: gzip\r\n",
             body),
        ]
        for name, head, payload in cases:
            with self.subTest(name):
                r = self.raw_post(head, payload)
                self.assertError(r, 400, "bad_framing")
                self.assertUnchanged()

    def test_unknown_province_404(self):
        """The field and the id, as a batch entry's refusal gives them
        (/results/N/province there, /province here: the path names it)."""
        for pid in ("99", "nowhere"):
            with self.subTest(pid=pid):
                r = self.post(self.d, pid, self.good)
                err = self.assertError(r, 404, "unknown_province",
                                       "/province")
                self.assertIn('"%s"' % pid, err["message"])
                self.assertUnchanged()


class KeepAlive(IngestTest):
    def test_feeds_on_one_connection(self):
        """Errors, applied feeds and reads share one keep-alive connection;
        pipelined feeds are answered in order."""
        import http.client
        d = self.start()
        h = dict(AUTH, **{"Content-Type": "application/json"})
        c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
        good = json.dumps(snapshot(self.ds, "01")).encode()
        for body, status in ((b'{"revision": 1, "votes": {"x": 1}}', 422),
                             (b"{bad", 400), (good, 201), (good, 200)):
            c.request("POST", "/v1/provinces/01/results", body=body,
                      headers=h)
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, status)
        c.request("GET", "/v1/provinces/01")
        r = c.getresponse()
        self.assertEqual(json.loads(r.read())["revision"], 1)
        c.close()
        reqs = b""
        for rev in (2, 3):
            body = json.dumps(snapshot(self.ds, "01", revision=rev)).encode()
            reqs += (b"POST /v1/provinces/01/results HTTP/1.1\r\nHost: t\r\n"
                     b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
                     b"Content-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
        reqs += b"GET /v1/provinces/01 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
            s.sendall(reqs)
            data = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
        self.assertEqual(data.count(b"HTTP/1.1 201 Created"), 2, data)
        self.assertIn(b'"revision":2,"status":"applied"', data)
        self.assertIn(b'"revision":3,"status":"applied"', data)
        self.assertLess(data.index(b'"revision":2,"status"'),
                        data.index(b'"revision":3,"status"'))
        self.assertEqual(self.revision(d, "01"), 3)


class Auth(IngestTest):
    def setUp(self):
        self.body = snapshot(self.ds, "01")

    def assertClientWords(self, err):
        """A 401 says what the client must send (the header, an ingest
        token), never the server's files, which a poster cannot see."""
        self.assertIn("Authorization", err["message"])
        self.assertIn("Bearer <ingest token>", err["message"])
        for server_side in ("token file", "token_file", "TALLYD_INGEST_TOKEN",
                            "ingest.token", "DATA_DIR", "/var/lib"):
            self.assertNotIn(server_side, err["message"])

    def test_no_or_wrong_token_401(self):
        d = self.start()
        v = self.version(d)
        for h in ({"Authorization": ""}, {"Authorization": "Bearer "},
                  {"Authorization": "Bearer wrong-token-0123456789abc"},
                  {"Authorization": "Bearer " + TOKEN + "x"},
                  {"Authorization": "Bearer " + TOKEN[:-1]},
                  {"Authorization": "Basic " + TOKEN}):
            with self.subTest(h=h):
                r = self.post(d, "01", self.body, headers=h)
                err = self.assertError(r, 401, "unauthorized")
                self.assertClientWords(err)
                if h["Authorization"].strip() == "Bearer":
                    # An unset $TOKEN: said so, not "not accepted".
                    self.assertIn("no token", err["message"])
                self.assertTrue(r.header("WWW-Authenticate").startswith(
                    "Bearer"), r.headers)
        r = d.request("POST", "/v1/provinces/01/results", body=self.body)
        self.assertClientWords(self.assertError(r, 401, "unauthorized"))
        self.assertTrue(r.header("WWW-Authenticate").startswith("Bearer"))
        r = d.request("POST", "/v1/results",
                      body={"results": [entry(self.ds, "01")]})
        self.assertError(r, 401, "unauthorized")
        self.assertEqual(self.version(d), v)
        self.assertEqual(self.revision(d, "01"), 0)

    def token_file(self, d, lines):
        import hashlib
        path = os.path.join(d.tmp, "tokens")
        with open(path, "w") as f:
            for tok, scope, label in lines:
                f.write("sha256:%s %s %s\n" % (
                    hashlib.sha256(tok.encode()).hexdigest(), scope, label))
        conf = os.path.join(d.tmp, "tallyd.conf")
        with open(conf, "w") as f:
            f.write("token_file %s\n" % path)
        return conf

    def test_scoped_token(self):
        scoped = "scoped-token-for-01-and-02-abcdef"
        admin = "admin-token-for-every-province-0"
        d = self.start(start=False)
        conf = self.token_file(d, [(scoped, "01,02", "commission north"),
                                   (admin, "*", "national office")])
        d.args += ["-f", conf]
        d.start()
        v = self.version(d)
        sh = {"Authorization": "Bearer " + scoped}
        r = self.post(d, "03", snapshot(self.ds, "03"), headers=sh)
        err = self.assertError(r, 403, "forbidden_province")
        self.assertIn("03", err["message"])
        self.assertEqual(self.version(d), v)
        self.assertEqual(self.revision(d, "03"), 0)
        # Inside a batch: nothing is applied, not even the allowed entry.
        r = self.batch(d, [entry(self.ds, "01"), entry(self.ds, "03")],
                       headers=sh)
        self.assertError(r, 403, "forbidden_province", "/results/1/province")
        self.assertEqual(self.version(d), v)
        self.assertEqual(self.revision(d, "01"), 0)
        self.assertEqual(self.revision(d, "03"), 0)
        # The environment token is not used when a token file is.
        r = self.post(d, "01", self.body)
        self.assertError(r, 401, "unauthorized")
        # Its own provinces work; the admin token may post anywhere.
        self.assertApplied(self.post(d, "01", self.body, headers=sh), v + 1)
        self.assertApplied(self.batch(d, [entry(self.ds, "02")], headers=sh),
                           v + 2)
        self.assertApplied(self.post(d, "03", snapshot(self.ds, "03"),
                                     headers={"Authorization": "Bearer " +
                                              admin}), v + 3)

    def test_token_reloaded_while_the_body_arrives(self):
        """The token is checked when the headers are in (admission) and
        again when the body is (the handler), which reuses what the first
        check found (issue 24: the header was hashed twice) -- but only
        while the same set of tokens is in force: a token revoked by a
        reload between the two is refused (401, nothing applied), and a
        reload that only reorders the tokens still finds the right one."""
        import signal
        first = "first-token-for-province-01-abc"
        other = "other-token-for-province-02-abc"
        d = self.start(start=False)
        conf = self.token_file(d, [(first, "01", "first office"),
                                   (other, "02", "other office")])
        d.args += ["-f", conf]
        d.env.pop("TALLYD_INGEST_TOKEN", None)
        d.start()
        v = self.version(d)

        def reload(lines):
            self.token_file(d, lines)
            before = len(d.logtext())
            d.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 20
            while "reloaded: election" not in d.logtext()[before:]:
                self.assertLess(time.monotonic(), deadline, d.logtext()[-2000:])
                time.sleep(0.05)

        def headers_then_reload(lines, rev):
            body = json.dumps(snapshot(self.ds, "01", revision=rev)).encode()
            s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            s.sendall(b"POST /v1/provinces/01/results HTTP/1.1\r\nHost: t\r\n"
                      b"Authorization: Bearer " + first.encode() + b"\r\n"
                      b"Content-Type: application/json\r\n"
                      b"Connection: close\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body))
            time.sleep(0.3)     # admitted: the headers are in
            reload(lines)
            s.sendall(body)
            data = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
            s.close()
            return parse_raw(data)

        # Revoked between the headers and the body: refused.
        r = headers_then_reload([(other, "02", "other office")], 1)
        self.assertError(r, 401, "unauthorized")
        self.assertEqual(self.version(d), v)
        self.assertEqual(self.revision(d, "01"), 0)
        # Reordered (the token's index moves): still the first office's.
        reload([(first, "01", "first office"), (other, "02", "other office")])
        r = headers_then_reload([(other, "02", "other office"),
                                 (first, "01", "first office")], 2)
        self.assertApplied(r, v + 1)
        h = d.get("/v1/provinces/01/history").json()
        self.assertEqual(h["revisions"][-1]["by"], "first office")

    def test_tokens_never_logged(self):
        d = self.start(args=["-v"])
        wrong = "not-the-token-but-close-0123456"
        self.assertApplied(self.post(d, "01", self.body))
        self.assertError(self.post(d, "02", snapshot(self.ds, "02"),
                                   headers={"Authorization": "Bearer " + wrong}),
                         401, "unauthorized")
        self.assertApplied(self.batch(d, [entry(self.ds, "03")]))
        d.stop()
        log = d.logtext()
        self.assertTrue(log)
        self.assertNotIn(TOKEN, log)
        self.assertNotIn(TOKEN[:16], log)
        self.assertNotIn(wrong, log)

    def test_generated_token(self):
        d = self.start(start=False)
        d.env.pop("TALLYD_INGEST_TOKEN", None)
        d.start()
        path = os.path.join(d.data_dir, "ingest.token")
        st = os.stat(path)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        with open(path) as f:
            tok = f.read().strip()
        self.assertGreaterEqual(len(tok), 16)
        self.assertIn(path, d.logtext())
        self.assertNotIn(tok, d.logtext())
        h = {"Authorization": "Bearer " + tok}
        self.assertError(self.post(d, "01", self.body), 401, "unauthorized")
        self.assertApplied(self.post(d, "01", self.body, headers=h))
        self.assertEqual(d.stop(), 0)
        d.log.close()
        # A second start reuses the token.
        d.start()
        with open(path) as f:
            self.assertEqual(f.read().strip(), tok)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        r = self.post(d, "02", snapshot(self.ds, "02"), headers=h)
        self.assertApplied(r)
        self.assertNotIn(tok, d.logtext())


class Listeners(IngestTest):
    def setUp(self):
        self.d = self.start(ingest=True)
        self.body = snapshot(self.ds, "01")

    def test_post_on_public_port_405(self):
        d = self.d
        v = self.version(d)
        r = self.post(d, "01", self.body)
        self.assertError(r, 405, "method_not_allowed")
        r = self.batch(d, [entry(self.ds, "01")])
        self.assertError(r, 405, "method_not_allowed")
        self.assertEqual(self.version(d), v)
        self.assertEqual(self.revision(d, "01"), 0)
        r = self.post(d, "01", self.body, port=d.ingest_port)
        self.assertApplied(r, v + 1)
        r = self.batch(d, [entry(self.ds, "02")], port=d.ingest_port)
        self.assertApplied(r, v + 2)

    def test_ingest_listener_pool(self):
        """The separate ingest listener's connections have a smaller
        memory pool (8 KiB, issue 24: libmicrohttpd zeroes the pool after
        every request).  What a feed sends still fits: a body of exactly
        body_limit (1 MiB) is taken, in pieces, and one byte more is 413; a
        chunked body larger than the pool is taken; a header section of 6
        KiB is taken; over the pool it is 431 headers_too_large, the same
        refusal as on the public listener past its 16 KiB (unchanged)."""
        d = self.d
        v = self.version(d)
        limit = 1024 * 1024

        def post(body, extra=b"", chunked=False, rev=None):
            head = (b"POST /v1/provinces/01/results HTTP/1.1\r\nHost: t\r\n"
                    b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
                    b"Content-Type: application/json\r\n" + extra)
            if chunked:
                data = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 5000]),
                                                    body[i:i + 5000])
                                for i in range(0, len(body), 5000))
                req = head + b"Transfer-Encoding: chunked\r\n\r\n" + \
                    data + b"0\r\n\r\n"
            else:
                req = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
            return parse_raw(d.raw(req, port=d.ingest_port, timeout=20))

        def padded(rev, size):
            b = json.dumps(snapshot(self.ds, "01", revision=rev)).encode()
            return b + b" " * (size - len(b))

        self.assertApplied(post(padded(1, limit)), v + 1)
        self.assertError(post(padded(2, limit + 1)), 413, "body_too_large")
        self.assertApplied(post(padded(2, 100000), chunked=True), v + 2)
        self.assertApplied(post(padded(3, 2000),
                                extra=b"X-Pad: " + b"a" * 6000 + b"\r\n"),
                           v + 3)
        r = post(padded(4, 2000), extra=b"X-Pad: " + b"a" * 9000 + b"\r\n")
        self.assertError(r, 431, "headers_too_large")
        self.assertEqual(self.revision(d, "01"), 3)
        # The public listener keeps its 16 KiB: 9 KB of headers are read.
        r = parse_raw(d.raw(b"GET /v1/leaderboard HTTP/1.1\r\nHost: t\r\n"
                            b"X-Pad: " + b"a" * 9000 + b"\r\n"
                            b"Connection: close\r\n\r\n"))
        self.assertEqual(r.status, 200, r.body[:200])
        r = parse_raw(d.raw(b"GET /v1/leaderboard HTTP/1.1\r\nHost: t\r\n"
                            b"X-Pad: " + b"a" * 20000 + b"\r\n\r\n"))
        self.assertError(r, 431, "headers_too_large")

    def test_gets_on_both_ports(self):
        d = self.d
        self.assertApplied(self.post(d, "01", self.body, port=d.ingest_port))
        for port in (d.port, d.ingest_port):
            for path in ("/healthz", "/v1/leaderboard", "/v1/provinces/01",
                         "/v1/election", "/metrics"):
                with self.subTest(port=port, path=path):
                    r = d.get(path, port=port)
                    self.assertEqual(r.status, 200, r.body)
        self.assertEqual(d.get("/v1/leaderboard").body,
                         d.get("/v1/leaderboard", port=d.ingest_port).body)

    def test_idle_flood_on_public_port_does_not_block_ingest(self):
        d = self.d
        socks = []
        try:
            for i in range(200):
                s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
                if i % 2:
                    # Slow: a request that never finishes its headers.
                    s.sendall(b"GET /v1/leaderboard HTTP/1.1\r\nHost: x\r\n")
                socks.append(s)
            t0 = time.monotonic()
            r = self.post(d, "01", self.body, port=d.ingest_port)
            took = time.monotonic() - t0
            self.assertApplied(r)
            self.assertLess(took, 2.0)
            t0 = time.monotonic()
            r = d.get("/v1/leaderboard", port=d.ingest_port)
            self.assertEqual(r.status, 200)
            self.assertLess(time.monotonic() - t0, 2.0)
        finally:
            for s in socks:
                s.close()

    def test_flood_over_connection_limit_does_not_take_ingest_slots(self):
        d = self.start(start=False, ingest=True)
        conf = os.path.join(d.tmp, "tallyd.conf")
        with open(conf, "w") as f:
            f.write("connection_limit 16\n")
        d.args += ["-f", conf]
        d.start()
        socks = []
        try:
            for _ in range(40):
                socks.append(socket.create_connection(("127.0.0.1", d.port),
                                                      timeout=5))
            time.sleep(0.2)
            t0 = time.monotonic()
            r = self.post(d, "01", self.body, port=d.ingest_port)
            self.assertApplied(r)
            self.assertLess(time.monotonic() - t0, 2.0)
        finally:
            for s in socks:
                s.close()


if __name__ == "__main__":
    main()
