#!/usr/bin/env python3
"""What a results desk asks of tallyd (issue 28), through the real HTTP API:
the flat file (/v1/results.csv, /v1/results.jsonl, ?since=VERSION), a
province's history as CSV, the comparison with a previous election, the
expected vote, and the map.  Real elections, replayed province by province in
a random order with corrections, against the leaderboard and the official
figures.
"""
import csv
import gzip
import io
import xml.etree.ElementTree as ET
import json
import os
import random
import shutil
import tempfile

from harness import (DEFAULT_ELECTION, ELECTIONS, SOURCE_ROOT,
                     CheckedDaemonTest, free_port, main, run_tallyd, seed)

NEWSROOM = os.path.join(SOURCE_ROOT, "tests", "data", "newsroom")
ES_COMPARE = os.path.join(NEWSROOM, "es-2019-04-vs-2016-06.json")

TOKEN = "ingest-token-for-the-tests-0123456789"
AUTH = {"Authorization": "Bearer " + TOKEN}


def load(ds, name):
    with open(os.path.join(ELECTIONS, ds, name)) as f:
        return json.load(f)


def rows_csv(body):
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"))))


def rows_jsonl(body):
    return [json.loads(line) for line in body.decode("utf-8").splitlines()]


def corrupted(entry, rng):
    """A first count that a correction will replace: some votes moved."""
    bad = json.loads(json.dumps(entry))
    bad["revision"] = 1
    bad["status"] = "partial"
    for k in bad["votes"]:
        bad["votes"][k] = max(0, bad["votes"][k] - rng.randrange(0, 500))
    return bad


class Newsroom(CheckedDaemonTest):
    def start(self, definition, **kw):
        return self.daemon(args=["--election", definition],
                           env={"TALLYD_INGEST_TOKEN": TOKEN}, **kw)

    def post(self, d, entry):
        body = dict(entry)
        pid = body.pop("province")
        r = d.request("POST", "/v1/provinces/%s/results" % pid, body=body,
                      headers=AUTH)
        self.assertIn(r.status, (200, 201), r.body)
        return r.json()

    def replay(self, d, ds, rng, until=None):
        """Every province of ds in a random order, each first as a partial
        count (revision 1) and, for most, corrected to the official final
        count (revision 2), the corrections interleaved with other
        provinces.  Returns the entries posted, in order."""
        entries = load(ds, "results.json")["results"]
        rng.shuffle(entries)
        later = []
        posted = []
        for e in entries[:until]:
            self.post(d, corrupted(e, rng))
            posted.append(e["province"])
            fixed = dict(e, revision=2)
            later.append(fixed)
            if rng.random() < 0.5:
                self.post(d, later.pop(rng.randrange(len(later))))
        for e in later:
            self.post(d, e)
        return posted

    # --- 1. the flat file -------------------------------------------------

    def test_flat_file_totals_equal_the_leaderboard(self):
        s = seed("flat")
        for ds in ("es-2016-06", "es-2019-04", "no-2021", "pl-2019",
                   "cz-2017"):
            with self.subTest(ds=ds):
                rng = random.Random("%s-%s" % (s, ds))
                d = self.start(os.path.join(ELECTIONS, ds, "election.json"))
                self.replay(d, ds, rng)
                lb = d.get("/v1/leaderboard").json()
                r = d.get("/v1/results.csv")
                self.assertEqual(r.status, 200)
                self.assertTrue(r.header("Content-Type").startswith(
                    "text/csv"))
                rows = rows_csv(r.body)
                votes, seats = {}, {}
                for row in rows:
                    c = row["coalition"]
                    votes[c] = votes.get(c, 0) + int(row["votes"])
                    seats[c] = seats.get(c, 0) + int(row["seats"]) + \
                        int(row["levelling_seats"])
                    self.assertEqual(row["contest"], lb["election"]["id"])
                    # Every province is final and official: certain.
                    self.assertEqual(row["certain"], "true", row)
                    self.assertEqual(row["seats_min"], row["seats"])
                    self.assertEqual(row["seats_max"], row["seats"])
                    self.assertEqual(row["revision"], "2")
                    # The share is exact: 100 * votes / valid, half up.
                    v, t = int(row["votes"]), int(row["valid"])
                    q = (v * 2000000 + t) // (2 * t)
                    self.assertEqual(row["share"], "%d.%04d" % divmod(q,
                                     10000))
                for c in lb["coalitions"]:
                    self.assertEqual(votes.get(c["id"], 0), c["votes"], c)
                    self.assertEqual(seats.get(c["id"], 0), c["seats"], c)
                self.assertEqual(sum(votes.values()),
                                 lb["votes"]["valid"] - lb["votes"]["blank"])
                # The JSON lines hold the same rows, typed.
                j = d.get("/v1/results.jsonl")
                self.assertEqual(j.status, 200)
                self.assertTrue(j.header("Content-Type").startswith(
                    "application/jsonl"))
                jrows = rows_jsonl(j.body)
                self.assertEqual(len(jrows), len(rows))
                for a, b in zip(rows, jrows):
                    self.assertEqual({k: str(v).lower() if isinstance(v, bool)
                                      else ("%.4f" % v if k == "share"
                                            else str(v))
                                      for k, v in b.items()}, a)
                self.check_daemon_log(d)

    def test_since_gives_the_rows_of_provinces_changed_after(self):
        rng = random.Random(seed("since"))
        ds = "es-2019-04"
        d = self.start(os.path.join(ELECTIONS, ds, "election.json"))
        entries = load(ds, "results.json")["results"]
        rng.shuffle(entries)
        first, second = entries[:20], entries[20:]
        for e in first:
            self.post(d, e)
        v = d.get("/v1/leaderboard").json()["version"]
        for e in second:
            self.post(d, e)
        # A correction to a province of the first half moves it too.
        fixed = dict(first[0], revision=2)
        self.post(d, fixed)
        r = d.get("/v1/results.csv?since=%d" % v)
        self.assertEqual(r.status, 200)
        rows = rows_csv(r.body)
        got = {row["province"] for row in rows}
        self.assertEqual(got, {e["province"] for e in second} |
                         {first[0]["province"]})
        self.assertTrue(all(int(row["version"]) > v for row in rows))
        # since=0 is the whole file, byte for byte.
        whole = d.get("/v1/results.csv")
        self.assertEqual(d.get("/v1/results.csv?since=0").body, whole.body)
        # The newest version: nothing changed after it, only the header.
        last = d.get("/v1/leaderboard").json()["version"]
        r = d.get("/v1/results.jsonl?since=%d" % last)
        self.assertEqual((r.status, r.body), (200, b""))
        # A conditional GET of a delta.
        r = d.get("/v1/results.csv?since=%d" % v)
        r2 = d.get("/v1/results.csv?since=%d" % v,
                   headers={"If-None-Match": r.header("ETag")})
        self.assertEqual(r2.status, 304)
        for q in ("since=", "since=-1", "since=1.5", "since=abc",
                  "since=99999999999999999999999", "since=1&since=2",
                  "sinse=3", "since"):
            with self.subTest(q=q):
                self.assertError(d.get("/v1/results.csv?" + q), 400,
                                 "bad_query")
                self.assertError(d.get("/v1/results.jsonl?" + q), 400,
                                 "bad_query")

    def test_history_csv_and_restart_keep_the_bytes(self):
        rng = random.Random(seed("history"))
        ds = "es-2019-04"
        d = self.start(os.path.join(ELECTIONS, ds, "election.json"))
        self.replay(d, ds, rng, until=10)
        pid = d.get("/v1/results.csv").body and \
            rows_csv(d.get("/v1/results.csv").body)[0]["province"]
        h = d.get("/v1/provinces/%s/history.csv" % pid)
        self.assertEqual(h.status, 200)
        rows = rows_csv(h.body)
        revs = sorted({int(r["revision"]) for r in rows})
        self.assertEqual(revs, [1, 2])
        js = d.get("/v1/provinces/%s/history" % pid).json()
        for rev in js["revisions"]:
            mine = {r["list"]: r for r in rows
                    if int(r["revision"]) == rev["revision"]}
            for lid, n in rev["votes"].items():
                self.assertEqual(int(mine[lid]["votes"]), n)
            for lid, dv in rev["changed"].items():
                self.assertEqual(int(mine[lid]["votes_change"]), dv)
            for lid, ds_ in rev["seats_moved"].items():
                self.assertEqual(int(mine[lid]["seats_change"]), ds_)
        # Bounds before and after: the partial first count bounds nothing
        # (no electorate, no stations in Spain's feeds), the final one is
        # exact; the second revision's "before" is the first's.
        for r in rows:
            if r["revision"] == "1":
                self.assertEqual((r["seats_min"], r["seats_max"]), ("", ""))
            else:
                self.assertEqual((r["seats_min"], r["seats_max"]),
                                 (r["seats"], r["seats"]), r)
                self.assertEqual((r["seats_min_before"],
                                  r["seats_max_before"]), ("", ""))
        # With an electorate in the feed, bounds are known while counting,
        # and a revision's "before" is the revision before's "after".
        entry = [e for e in load(ds, "results.json")["results"]
                 if e["province"] == pid][0]
        ballots = sum(entry["votes"].values()) + entry.get("blank", 0) + \
            entry.get("invalid", 0)
        self.post(d, dict(entry, revision=3, status="partial",
                          registered=ballots + 2000))
        self.post(d, dict(entry, revision=4, status="partial",
                          registered=ballots + 500000))
        rows = rows_csv(d.get("/v1/provinces/%s/history.csv" % pid).body)
        after3 = {r["list"]: (r["seats_min"], r["seats_max"]) for r in rows
                  if r["revision"] == "3"}
        before4 = {r["list"]: (r["seats_min_before"], r["seats_max_before"])
                   for r in rows if r["revision"] == "4"}
        self.assertEqual(after3, before4)
        self.assertTrue(all(a != "" and b != "" for a, b in after3.values()))
        live = {r["id"]: (str(r["seats_min"]), str(r["seats_max"])) for r in
                d.get("/v1/provinces/" + pid).json()["lists"]}
        self.assertEqual({r["list"]: (r["seats_min"], r["seats_max"])
                          for r in rows if r["revision"] == "4"}, live)
        self.assertError(d.get("/v1/provinces/nowhere/history.csv"), 404,
                         "unknown_province")
        # The same bytes and tags after a restart (views are a function of
        # the definition and the log).
        paths = ["/v1/results.csv", "/v1/results.jsonl",
                 "/v1/results.csv?since=3",
                 "/v1/provinces/%s/history.csv" % pid]
        before = {p: d.get(p) for p in paths}
        d.stop()
        d.start()
        for p in paths:
            r = d.get(p)
            self.assertEqual(r.body, before[p].body, p)
            self.assertEqual(r.header("ETag"), before[p].header("ETag"), p)

    # --- 2. the comparison with the previous election ----------------------

    def test_spain_2019_against_2016_seat_changes_are_the_official_ones(self):
        rng = random.Random(seed("compare"))
        with open(ES_COMPARE) as f:
            definition = json.load(f)
        lineage = {c["id"]: c.get("predecessors", [])
                   for c in definition["coalitions"]}
        now = load("es-2019-04", "expected.json")["national"]
        before = load("es-2016-06", "expected.json")["national"]
        d = self.start(ES_COMPARE)
        self.replay(d, "es-2019-04", rng)
        lb = d.get("/v1/leaderboard").json()
        ch = lb["change"]
        self.assertEqual(ch["previous"]["id"], "es-2016-06")
        got = {c["id"]: c for c in ch["coalitions"]}
        for cid, preds in lineage.items():
            official = now.get(cid, 0) - sum(before.get(p, 0) for p in preds)
            self.assertEqual(got[cid]["seats"], official, cid)
            self.assertEqual(got[cid]["seats_before"],
                             sum(before.get(p, 0) for p in preds), cid)
        # As reported on the night: PSOE 85 -> 123, PP 137 -> 66, Cs 32 ->
        # 57, Vox 0 -> 24, Unidas Podemos with its confluences 71 -> 42.
        self.assertEqual(got["000096"]["seats"], 38)
        self.assertEqual(got["000083"]["seats"], -71)
        self.assertEqual(got["000022"]["seats"], 25)
        self.assertEqual(got["000117"]["seats"], 24)
        self.assertEqual(sum(got[c]["seats"] for c in
                             ("000077", "000032", "000075")), 42 - 71)
        # Vote shares in percentage points, exact: 100 (a/b - c/d), half
        # away from zero, 2 places.
        prev_valid = sum(sum(e["votes"].values()) + e.get("blank", 0)
                         for e in load("es-2016-06", "results.json")
                         ["results"])
        for c in lb["coalitions"]:
            a, b = c["votes"], lb["votes"]["valid"]
            cc, dd = got[c["id"]]["votes_before"], prev_valid
            num = (a * dd - cc * b) * 10000
            q = (2 * abs(num) + b * dd) // (2 * b * dd)
            want = "%s%d.%02d" % ("-" if num < 0 and q else "", q // 100,
                                  q % 100)
            self.assertEqual(got[c["id"]]["share_change"], want, c["id"])
        # Flipped provinces: the first place changed hands along the
        # lineage (Madrid: PP in 2016, PSOE in 2019).
        self.assertIn("28", ch["flipped"])
        m = d.get("/v1/provinces/28").json()["change"]
        self.assertEqual((m["first_place_before"], m["first_place_now"],
                          m["flipped"]), ("000083", "000096", True))
        prov_seats = {}
        for p in definition["provinces"]:
            pc = d.get("/v1/provinces/" + p["id"]).json()["change"]
            self.assertEqual(pc["flipped"], p["id"] in ch["flipped"])
            for row in pc["coalitions"]:
                prov_seats[row["id"]] = prov_seats.get(row["id"], 0) + \
                    row["seats"]
        # The provinces' changes add up to the national ones.
        for cid, row in got.items():
            self.assertEqual(prov_seats.get(cid, 0), row["seats"], cid)
        co = d.get("/v1/coalitions/000077").json()["change"]
        self.assertEqual(co["predecessors"], ["000059", "000055"])
        self.assertEqual((co["seats_before"], co["seats"]), (54, -21))
        self.assertEqual(sum(r["seats"] for r in co["provinces"]), -21)
        # The same bytes after a restart.
        paths = ["/v1/leaderboard", "/v1/provinces/28", "/v1/coalitions/000077"]
        kept = {p: d.get(p) for p in paths}
        d.stop()
        d.start()
        for p in paths:
            r = d.get(p)
            self.assertEqual((r.body, r.header("ETag")),
                             (kept[p].body, kept[p].header("ETag")), p)

    def test_edited_previous_results_move_the_validators(self):
        tmp = tempfile.mkdtemp(prefix="tallyd-newsroom-")
        self.addCleanup(shutil.rmtree, tmp)
        with open(ES_COMPARE) as f:
            definition = json.load(f)
        definition["previous"] = {"definition": "prev.json",
                                  "results": "prev-results.json"}
        shutil.copy(os.path.join(ELECTIONS, "es-2016-06", "election.json"),
                    os.path.join(tmp, "prev.json"))
        prev = load("es-2016-06", "results.json")
        with open(os.path.join(tmp, "prev-results.json"), "w") as f:
            json.dump(prev, f)
        path = os.path.join(tmp, "es.json")
        with open(path, "w") as f:
            json.dump(definition, f)
        d = self.start(path)
        self.post(d, load("es-2019-04", "results.json")["results"][0])
        before = d.get("/v1/leaderboard")
        # A correction of the previous official results, then a restart:
        # the same log, other bytes, so another tag.
        prev["results"][0]["votes"][next(iter(prev["results"][0]["votes"]))] \
            += 100000
        with open(os.path.join(tmp, "prev-results.json"), "w") as f:
            json.dump(prev, f)
        d.stop()
        d.start()
        after = d.get("/v1/leaderboard")
        self.assertNotEqual(after.body, before.body)
        self.assertNotEqual(after.header("ETag"), before.header("ETag"))
        # A missing previous file is named at the check (tallyd -n).
        os.remove(os.path.join(tmp, "prev-results.json"))
        r = run_tallyd(["-n", "--election", path, "--data-dir",
                        os.path.join(tmp, "var2")])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("/previous/results: cannot read", r.stdout + r.stderr)

    def test_a_wrong_lineage_refuses_the_start(self):
        tmp = tempfile.mkdtemp(prefix="tallyd-newsroom-")
        self.addCleanup(shutil.rmtree, tmp)
        with open(ES_COMPARE) as f:
            definition = json.load(f)
        definition["previous"] = {
            "definition": os.path.join(ELECTIONS, "es-2016-06",
                                       "election.json"),
            "results": os.path.join(ELECTIONS, "es-2016-06", "results.json")}
        cases = {
            "unknown": ("000096", ["999999"], "no coalition \"999999\""),
            "twice": ("000083", ["000077"], "already the predecessor"),
        }
        for name, (cid, preds, msg) in cases.items():
            with self.subTest(name=name):
                bad = json.loads(json.dumps(definition))
                for c in bad["coalitions"]:
                    if c["id"] == cid:
                        c["predecessors"] = preds
                path = os.path.join(tmp, name + ".json")
                with open(path, "w") as f:
                    json.dump(bad, f)
                r = run_tallyd(["-d", "--listen", "127.0.0.1:%d" %
                                free_port(), "--data-dir",
                                os.path.join(tmp, name), "--election", path])
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn(msg, r.stdout + r.stderr)

    # --- 3. the expected vote -------------------------------------------------

    def test_expected_vote_is_an_estimate_kept_apart(self):
        tmp = tempfile.mkdtemp(prefix="tallyd-newsroom-")
        self.addCleanup(shutil.rmtree, tmp)
        ds = "es-2019-04"
        definition = load(ds, "election.json")
        entries = {e["province"]: e for e in load(ds, "results.json")
                   ["results"]}
        ballots = {pid: sum(e["votes"].values()) + e.get("blank", 0) +
                   e.get("invalid", 0) for pid, e in entries.items()}
        expected = {}
        for i, p in enumerate(definition["provinces"]):
            if i % 3 == 0:
                p["expected_ballots"] = ballots[p["id"]] + 1000 * i
                expected[p["id"]] = p["expected_ballots"]
            elif i % 3 == 1:
                # 71.5 % of a made-up electorate, floored.
                p["registered"] = ballots[p["id"]] * 2 + 7
                p["expected_turnout"] = "71.5"
                expected[p["id"]] = p["registered"] * 715 // 1000
        path = os.path.join(tmp, "expected.json")
        with open(path, "w") as f:
            json.dump(definition, f)
        d = self.start(path)
        plain = self.start(os.path.join(ELECTIONS, ds, "election.json"))
        posted = list(entries)[:30]
        for pid in posted:
            self.post(d, entries[pid])
            self.post(plain, entries[pid])

        def share(n, t):
            q = (n * 20000 + t) // (2 * t)
            return "%d.%02d" % divmod(q, 100)
        for p in definition["provinces"]:
            v = d.get("/v1/provinces/" + p["id"]).json()
            if p["id"] not in expected:
                self.assertNotIn("expected", v)
                continue
            n = ballots[p["id"]] if p["id"] in posted else 0
            self.assertEqual(v["expected"], {
                "ballots": expected[p["id"]], "counted": n,
                "counted_share": share(n, expected[p["id"]]),
                "estimate": True}, p["id"])
        lb = d.get("/v1/leaderboard").json()
        n = sum(ballots[p] for p in posted if p in expected)
        t = sum(expected.values())
        self.assertEqual(lb["expected"], {
            "ballots": t, "counted": n, "counted_share": share(n, t),
            "provinces": len(expected), "estimate": True})
        # The exact counts and seats are those of the same election
        # without any expectation.
        lb0 = plain.get("/v1/leaderboard").json()
        for k in ("coalitions", "seats", "votes", "provinces"):
            self.assertEqual(lb[k], lb0[k], k)
        def untimed(body):
            return [dict(r, updated_at=None) for r in rows_csv(body)]
        self.assertEqual(untimed(d.get("/v1/results.csv").body),
                         untimed(plain.get("/v1/results.csv").body))
        # A turnout without an electorate is refused, naming the field.
        definition["provinces"][0].pop("expected_ballots")
        definition["provinces"][0]["expected_turnout"] = "70"
        with open(path, "w") as f:
            json.dump(definition, f)
        r = run_tallyd(["-n", "--election", path, "--data-dir",
                        os.path.join(tmp, "var")])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("/provinces/0/expected_turnout", r.stdout + r.stderr)

    # --- 4. the map -------------------------------------------------------------

    def check_map(self, d, definition):
        """The map's tiles against the provinces' leaders and colours."""
        svg = "{http://www.w3.org/2000/svg}"
        colour = {c["id"]: c["color"] for c in
                  d.get("/v1/election").json()["coalitions"]}
        provinces = {p["id"]: p for p in
                     d.get("/v1/provinces").json()["provinces"]}
        r = d.get("/v1/map.svg", headers={"Accept-Encoding": "gzip"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "image/svg+xml")
        body = gzip.decompress(r.body) if r.header("Content-Encoding") \
            else r.body
        root = ET.fromstring(body)          # well-formed, or this raises
        self.assertEqual(root.tag, svg + "svg")
        tiles = [e for e in root.iter(svg + "rect")
                 if e.get("class") == "province"]
        self.assertEqual(sorted(t.get("data-province") for t in tiles),
                         sorted(p["id"] for p in definition["provinces"]))
        for t in tiles:
            lead = provinces[t.get("data-province")]["leader"]
            if lead is None:
                self.assertEqual(t.get("fill"), "#e0e0e0")
                self.assertIsNone(t.get("data-first"))
            else:
                self.assertEqual(t.get("data-first"), lead["coalition"])
                self.assertEqual(t.get("fill"), colour[lead["coalition"]])
        # by=seats: each tile's bars are its seats by coalition.
        root = ET.fromstring(d.get("/v1/map.svg?by=seats").body)
        self.assertEqual(root.get("data-by"), "seats")
        for g in root.iter(svg + "g"):
            if g.get("class") != "tile":
                continue
            tile = g.find(svg + "rect")
            pid = tile.get("data-province")
            bars = {b.get("data-coalition"): int(b.find(svg + "title").text
                                                 .rsplit(": ", 1)[1])
                    for b in g.findall(svg + "rect")
                    if b.get("class") == "seats"}
            v = d.get("/v1/provinces/" + pid).json()
            want = {}
            for row in v["lists"]:
                n = row["seats"] + row["levelling_seats"]
                if n:
                    want[row["coalition"]] = want.get(row["coalition"], 0) + n
            self.assertEqual(bars, want, pid)
        return len(gzip.compress(body)), len(tiles)

    def test_map_of_iraq_and_spain(self):
        rng = random.Random(seed("map"))
        with open(DEFAULT_ELECTION) as f:
            iraq = json.load(f)
        d = self.start(DEFAULT_ELECTION)
        ids = [c["id"] for c in iraq["coalitions"]]
        # A night half counted: made-up votes in 17 of the 23 provinces.
        for p in rng.sample(iraq["provinces"], 17):
            votes = {c: rng.randrange(0, 200000)
                     for c in rng.sample(ids, min(8, len(ids)))}
            self.post(d, {"province": p["id"], "revision": 1,
                          "votes": votes, "status": "partial"})
        size, n = self.check_map(d, iraq)
        self.assertEqual(n, 23)     # 18 governorates and 5 quota seats
        self.assertLessEqual(size, 60 * 1024)
        print("iraq map: %d bytes gzip" % size)
        for q in ("by=votes", "by=", "by=seats&by=first", "colour=1"):
            with self.subTest(q=q):
                self.assertError(d.get("/v1/map.svg?" + q), 400,
                                 "bad_query")
        kept = {q: d.get("/v1/map.svg" + q) for q in ("", "?by=seats")}
        d.stop()
        d.start()
        for q, r in kept.items():
            r2 = d.get("/v1/map.svg" + q)
            self.assertEqual((r2.body, r2.header("ETag")),
                             (r.body, r.header("ETag")), q)
        # The page shows it.
        page = d.get("/").body.decode()
        self.assertIn('id="map"', page)
        self.assertIn("/v1/map.svg", page)
        # Spain: the 52 provinces of the hand-made tile map.
        with open(ES_COMPARE) as f:
            spain = json.load(f)
        es = self.start(ES_COMPARE)
        self.replay(es, "es-2019-04", rng, until=40)
        size, n = self.check_map(es, spain)
        self.assertEqual(n, 52)


if __name__ == "__main__":
    main()
