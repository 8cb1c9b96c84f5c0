#!/usr/bin/env python3
"""The read API on a small hand-made election whose every seat is worked out
by hand below: views, ranking, CSV, caching and /metrics."""
import csv
import io
import json
import os
import re

from harness import (DaemonTest, gunzip, main, CheckedDaemonTest)

TOKEN = "api-test-ingest-token-0123456789"
AUTH = {"Authorization": "Bearer " + TOKEN}

# D'Hondt, 5 % of valid (list votes + blank) per province, ties by lot.
# "red" runs as "red-s" in the south; its name needs quoting in CSV, and so
# does the name of the east.
ELECTION = {
    "id": "tiny-2024",
    "name": "Tiny Test Election",
    "allocation": {"method": "dhondt",
                   "threshold": {"percent": "5", "of": "valid",
                                 "scope": "province"},
                   "ties": "lot"},
    "coalitions": [
        {"id": "red", "name": 'Red, "United" Left', "short": "Red",
         "color": "#cc0000", "aliases": ["red-s"]},
        {"id": "blue", "name": "Blue Party", "short": "Blue",
         "color": "#0000cc"},
        {"id": "green", "name": "Green Party", "short": "Green"},
        {"id": "gold", "name": "Gold List", "short": "Gold"},
        {"id": "amber", "name": "Amber Movement", "short": "Amber"},
        {"id": "zinc", "name": "Zinc", "short": "Zinc"},
    ],
    "provinces": [
        {"id": "north", "name": "North", "seats": 5},
        {"id": "south", "name": "South", "seats": 3},
        {"id": "east", "name": 'East "Coast", Isles', "seats": 2},
    ],
}

# north, 5 seats.  valid = 1000+600+280+40+60 = 1980; 5 % = 99: zinc fails.
#   quotients: red 1000, 500, 333.3, 250; blue 600, 300, 200; green 280
#   seats 1-5: red 1000, blue 600, red 500, red 333.3, blue 300
#   -> red 3, blue 2, green 0, zinc 0 (threshold failed)
#   next_seat_votes (one more firm seat, others unchanged):
#     red   needs v/4 > 300 (blue's 2nd)      -> 1201: +201 (1200 ties: lot)
#     blue  needs v/3 > 333.3 (red's 3rd)     -> 1001: +401 (1000 ties)
#     green needs v   > 300 (blue's 2nd)      ->  301: +21  (300 ties)
#     zinc  needs v   > 300 and >= 5 %        ->  301: +261
#   last_seat_margin (votes it may lose and keep its seats):
#     red   keeps 3 while v/3 > 280 (green)   ->  841: 159
#     blue  keeps 2 while v/2 > 280 (green)   ->  561: 39
NORTH = {"revision": 1,
         "votes": {"red": 1000, "blue": 600, "green": 280, "zinc": 40},
         "blank": 60, "invalid": 15,
         "stations": {"reporting": 40, "total": 50},
         "status": "partial", "reported_at": "2024-06-09T21:00:00Z"}
NORTH_SEATS = {"red": 3, "blue": 2, "green": 0, "zinc": 0}
NORTH_NEXT = {"red": 201, "blue": 401, "green": 21, "zinc": 261}
NORTH_MARGIN = {"red": 159, "blue": 39}

# south, 3 seats.  valid 2000; 5 % = 100: all pass.
#   quotients: red-s 900, 450, 300; blue 400; gold 350; amber 350
#   -> red-s 2, blue 1; amber and gold equal (0 seats, 350): id order
SOUTH = {"revision": 1,
         "votes": {"red-s": 900, "blue": 400, "gold": 350, "amber": 350},
         "status": "final"}
SOUTH_SEATS = {"red-s": 2, "blue": 1, "amber": 0, "gold": 0}

# east, 2 seats.  valid 1400.
#   quotients: red 600, 300; gold 400; amber 400
#   seat 1 red; seat 2: gold 400 = amber 400, exact tie, "lot" -> pending
EAST = {"revision": 1,
        "votes": {"red": 600, "gold": 400, "amber": 400},
        "status": "final"}

# National: red 1000+900+600 = 2500 votes, 3+2+1 = 6 seats; blue 1000, 3;
# amber 750, 0 (1 pending); gold 750, 0 (1 pending); green 280; zinc 40.
# valid 1980+2000+1400 = 5380; 9 seats allocated, 1 pending, majority 6.
NATIONAL = [("red", 6, 2500), ("blue", 3, 1000), ("amber", 0, 750),
            ("gold", 0, 750), ("green", 0, 280), ("zinc", 0, 40)]




def share(part, whole):
    return round(part * 100.0 / whole, 2)


def metrics(text):
    """Prometheus text as {'name{labels}': value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        out[key] = float(value)
    return out


class ApiTest(CheckedDaemonTest):
    def start(self, args=(), election=None, **kw):
        d = self.daemon(start=False, env={"TALLYD_INGEST_TOKEN": TOKEN}, **kw)
        path = os.path.join(d.tmp, "election.json")
        with open(path, "w") as f:
            json.dump(election or ELECTION, f)
        d.args = ["--election", path] + list(args)
        d.start()
        return d

    def post(self, d, province, body):
        r = d.request("POST", "/v1/provinces/%s/results" % province,
                      body=body, headers=AUTH)
        return r

    def apply(self, d, province, body):
        r = self.post(d, province, body)
        self.assertEqual(r.status, 201, r.body)
        return r.json()["version"]

    def base(self, d):
        for pid, body in (("north", NORTH), ("south", SOUTH), ("east", EAST)):
            self.apply(d, pid, body)

    def province(self, d, pid, query=""):
        r = d.get("/v1/provinces/" + pid + query)
        self.assertEqual(r.status, 200, r.body)
        return r.json()

    def seats(self, d, pid):
        return {l["id"]: l["seats"] for l in self.province(d, pid)["lists"]}


class Views(ApiTest):
    def setUp(self):
        self.d = self.start()

    def test_empty_province(self):
        p = self.province(self.d, "north")
        self.assertEqual((p["revision"], p["status"], p["lists"],
                          p["pending"]), (0, "none", [], []))
        self.assertEqual(self.d.get("/v1/provinces/north/history").json(),
                         {"province": "north", "revisions": []})

    def test_province_detail(self):
        self.base(self.d)
        p = self.province(self.d, "north")
        self.assertEqual(p["id"], "north")
        self.assertEqual(p["name"], "North")
        self.assertEqual(p["seats"], 5)
        self.assertEqual(p["revision"], 1)
        self.assertEqual(p["status"], "partial")
        self.assertEqual(p["reported_at"], "2024-06-09T21:00:00Z")
        self.assertRegex(p["received_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(p["stations"], {"reporting": 40, "total": 50})
        self.assertEqual(p["votes"], {"valid": 1980, "blank": 60,
                                      "invalid": 15})
        self.assertEqual(p["pending"], [])
        self.assertNotIn("steps", p)
        # Sorted seats desc, votes desc.
        self.assertEqual([l["id"] for l in p["lists"]],
                         ["red", "blue", "green", "zinc"])
        for l in p["lists"]:
            with self.subTest(list=l["id"]):
                self.assertEqual(l["coalition"], l["id"])
                self.assertEqual(l["votes"], NORTH["votes"][l["id"]])
                self.assertEqual(l["seats"], NORTH_SEATS[l["id"]])
                self.assertAlmostEqual(l["share"],
                                       share(l["votes"], 1980), places=2)
                self.assertEqual(l["threshold"],
                                 "failed" if l["id"] == "zinc" else "passed")
                self.assertEqual(l["next_seat_votes"], NORTH_NEXT[l["id"]])
                self.assertEqual(l["last_seat_margin"],
                                 NORTH_MARGIN.get(l["id"]))
        # Equal seats and votes: id order; an alias is named as posted.
        s = self.province(self.d, "south")
        self.assertEqual([(l["id"], l["coalition"], l["seats"])
                          for l in s["lists"]],
                         [("red-s", "red", 2), ("blue", "blue", 1),
                          ("amber", "amber", 0), ("gold", "gold", 0)])

    def test_next_seat_votes_and_margin_are_exact(self):
        self.base(self.d)
        rev = 1
        for lid, need in NORTH_NEXT.items():
            with self.subTest(list=lid, next=need):
                for extra, gains in ((need - 1, False), (need, True),
                                     (0, False)):
                    rev += 1
                    votes = dict(NORTH["votes"])
                    votes[lid] += extra
                    self.apply(self.d, "north", dict(NORTH, revision=rev,
                                                     votes=votes))
                    got = self.seats(self.d, "north")[lid]
                    self.assertEqual(got, NORTH_SEATS[lid] + (1 if gains
                                                               else 0),
                                     "%s with +%d" % (lid, extra))
        for lid, margin in NORTH_MARGIN.items():
            with self.subTest(list=lid, margin=margin):
                for lose, keeps in ((margin, True), (margin + 1, False)):
                    rev += 1
                    votes = dict(NORTH["votes"])
                    votes[lid] -= lose
                    self.apply(self.d, "north", dict(NORTH, revision=rev,
                                                     votes=votes))
                    got = self.seats(self.d, "north")[lid]
                    if keeps:
                        self.assertEqual(got, NORTH_SEATS[lid])
                    else:
                        self.assertLess(got, NORTH_SEATS[lid])

    def test_explain_steps(self):
        self.base(self.d)
        p = self.province(self.d, "north", "?explain=1")
        steps = p["steps"]
        self.assertEqual(len(steps), 5)
        self.assertEqual([s["seat"] for s in steps], [1, 2, 3, 4, 5])
        self.assertEqual([s["list"] for s in steps],
                         ["red", "blue", "red", "red", "blue"])
        self.assertEqual([round(s["quotient"]["value"], 2) for s in steps],
                         [1000.0, 600.0, 500.0, 333.33, 300.0])
        self.assertEqual([s["quotient"]["exact"] for s in steps],
                         ["1000/1", "600/1", "1000/2", "1000/3", "600/2"])
        # The same view otherwise.
        plain = self.province(self.d, "north")
        del p["steps"]
        self.assertEqual(p, plain)
        s = self.province(self.d, "south", "?explain=1")
        self.assertEqual(len(s["steps"]), 3)
        self.assertEqual([x["list"] for x in s["steps"]],
                         ["red-s", "red-s", "blue"])

    def test_tie_by_lot_is_pending(self):
        self.base(self.d)
        e = self.province(self.d, "east")
        self.assertEqual(len(e["pending"]), 1, e)
        self.assertEqual((e["pending"][0]["seats"], e["pending"][0]["rule"]),
                         (1, "lot"))
        self.assertEqual(sorted(e["pending"][0]["tied"]), ["amber", "gold"])
        self.assertEqual(e["allocated"], 1)
        self.assertEqual(e["pending_seats"], 1)
        self.assertEqual({l["id"]: l["seats"] for l in e["lists"]},
                         {"red": 1, "gold": 0, "amber": 0})
        self.assertEqual(len(self.province(self.d, "east",
                                           "?explain=1")["steps"]), 1)
        lb = self.d.get("/v1/leaderboard").json()
        self.assertEqual(lb["seats"], {"total": 10, "allocated": 9,
                                       "pending": 1, "majority": 6})
        # Each tied coalition is tied for the one pending seat: it is
        # counted once in seats.pending, never as a row's own seat.
        pend = {c["id"]: c["tied_for"] for c in lb["coalitions"]}
        self.assertEqual(pend, {"red": 0, "blue": 0, "amber": 1, "gold": 1,
                                "green": 0, "zinc": 0})
        self.assertNotIn("pending", lb["coalitions"][0])
        # south, 3 seats: red-s 800, blue 400, gold 400.  Quotients 800,
        # then red-s 400 = blue 400 = gold 400 for the last 2 seats: all
        # three tied, 2 seats pending, the alias named as posted.
        self.apply(self.d, "south", {"revision": 2, "votes": {
            "red-s": 800, "blue": 400, "gold": 400, "amber": 0}})
        s = self.province(self.d, "south")
        self.assertEqual(len(s["pending"]), 1, s)
        self.assertEqual(s["pending"][0]["seats"], 2)
        self.assertEqual(sorted(s["pending"][0]["tied"]),
                         ["blue", "gold", "red-s"])
        self.assertEqual({l["id"]: l["seats"] for l in s["lists"]},
                         {"red-s": 1, "blue": 0, "gold": 0, "amber": 0})
        lb = self.d.get("/v1/leaderboard").json()
        self.assertEqual((lb["seats"]["allocated"], lb["seats"]["pending"]),
                         (7, 3))
        # tied_for: the pending seats of each tie it is in (south's 2 and
        # east's 1), what it may still win by lot.
        self.assertEqual({c["id"]: c["tied_for"] for c in lb["coalitions"]},
                         {"red": 2, "blue": 2, "amber": 1, "gold": 3,
                          "green": 0, "zinc": 0})
        self.apply(self.d, "south", dict(SOUTH, revision=3))
        # One more vote settles it.
        self.apply(self.d, "east", dict(EAST, revision=2,
                                        votes=dict(EAST["votes"], gold=401)))
        e = self.province(self.d, "east")
        self.assertEqual(e["pending"], [])
        self.assertEqual({l["id"]: l["seats"] for l in e["lists"]},
                         {"red": 1, "gold": 1, "amber": 0})
        lb = self.d.get("/v1/leaderboard").json()
        self.assertEqual(lb["seats"]["pending"], 0)
        self.assertEqual(lb["seats"]["allocated"], 10)

    def test_threshold_is_at_least(self):
        # valid = 1000+600+300+100 = 2000: zinc has exactly 5 % and passes
        # (though 100 wins no seat: the 5th seat goes at 300).
        votes = {"red": 1000, "blue": 600, "green": 300, "zinc": 100}
        self.apply(self.d, "north", {"revision": 1, "votes": votes})
        th = {l["id"]: l["threshold"] for l in
              self.province(self.d, "north")["lists"]}
        self.assertEqual(th["zinc"], "passed")
        # 99 of 1999 is under 5 %.
        self.apply(self.d, "north", {"revision": 2,
                                     "votes": dict(votes, zinc=99)})
        th = {l["id"]: l["threshold"] for l in
              self.province(self.d, "north")["lists"]}
        self.assertEqual(th["zinc"], "failed")
        self.assertEqual(th["green"], "passed")

    def test_leaderboard(self):
        self.base(self.d)
        lb = self.d.get("/v1/leaderboard").json()
        self.assertEqual(lb["election"], {"id": "tiny-2024",
                                          "name": "Tiny Test Election"})
        self.assertEqual(lb["provinces"], {"total": 3, "reporting": 3,
                                           "final": 2})
        self.assertEqual(lb["votes"], {"valid": 5380, "blank": 60,
                                       "invalid": 15})
        self.assertEqual(lb["stations"], {"reporting": 40, "total": 50})
        self.assertRegex(lb["updated_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(lb["version"], self.d.get("/healthz").json()["version"])
        self.assertEqual([(c["id"], c["seats"], c["votes"])
                          for c in lb["coalitions"]], NATIONAL)
        self.assertEqual([c["rank"] for c in lb["coalitions"]],
                         [1, 2, 3, 4, 5, 6])
        for c in lb["coalitions"]:
            self.assertAlmostEqual(c["share"], share(c["votes"], 5380),
                                   places=2)
        red = lb["coalitions"][0]
        self.assertEqual((red["name"], red["short"], red["color"]),
                         ('Red, "United" Left', "Red", "#cc0000"))

    def test_provinces(self):
        self.base(self.d)
        r = self.d.get("/v1/provinces")
        ps = r.json()["provinces"]
        self.assertEqual([p["id"] for p in ps], ["north", "south", "east"])
        by = {p["id"]: p for p in ps}
        self.assertEqual(by["north"]["revision"], 1)
        self.assertEqual(by["north"]["status"], "partial")
        self.assertEqual(by["south"]["status"], "final")
        self.assertEqual(by["north"]["leader"], {"list": "red",
                                                 "coalition": "red",
                                                 "votes": 1000, "seats": 3})
        self.assertEqual(by["south"]["leader"], {"list": "red-s",
                                                 "coalition": "red",
                                                 "votes": 900, "seats": 2})
        self.assertEqual(by["east"]["leader"]["list"], "red")
        self.assertEqual(by["north"]["stations"], {"reporting": 40,
                                                   "total": 50})
        self.assertIsNone(by["south"]["stations"])
        self.assertEqual([by[p]["allocated"] for p in ("north", "south",
                                                        "east")], [5, 3, 1])
        self.assertEqual(r.json()["version"],
                         self.d.get("/v1/leaderboard").json()["version"])
        # Before a feed: revision 0, no leader.
        d2 = self.start()
        for p in d2.get("/v1/provinces").json()["provinces"]:
            self.assertEqual((p["revision"], p["status"], p["leader"]),
                             (0, "none", None))

    def test_history(self):
        self.apply(self.d, "north", NORTH)
        rev2 = dict(NORTH, revision=2, status="final",
                    reported_at="2024-06-09T23:30:00+02:00",
                    votes=dict(NORTH["votes"], red=990, green=300),
                    note="recount of station 12")
        self.apply(self.d, "north", rev2)
        h = self.d.get("/v1/provinces/north/history").json()
        self.assertEqual(h["province"], "north")
        r1, r2 = h["revisions"]
        self.assertEqual((r1["revision"], r1["status"], r1["reported_at"],
                          r1["note"]),
                         (1, "partial", "2024-06-09T21:00:00Z", None))
        self.assertEqual(r1["votes"], NORTH["votes"])
        self.assertEqual(r1["changed"], NORTH["votes"])
        self.assertEqual((r2["revision"], r2["status"], r2["reported_at"],
                          r2["note"]),
                         (2, "final", "2024-06-09T23:30:00+02:00",
                          "recount of station 12"))
        self.assertEqual(r2["votes"], rev2["votes"])
        self.assertEqual(r2["changed"], {"red": -10, "green": 20})
        # A list dropped from a snapshot is refused (list_missing); one
        # set to 0 is a change to nothing.
        votes = dict(rev2["votes"])
        del votes["zinc"]
        self.assertError(self.post(self.d, "north", dict(
            rev2, revision=3, votes=votes)), 422, "list_missing", "/votes/zinc")
        votes["zinc"] = 0
        self.apply(self.d, "north", dict(rev2, revision=3, votes=votes))
        h = self.d.get("/v1/provinces/north/history").json()
        self.assertEqual(h["revisions"][2]["changed"], {"zinc": -40})
        self.assertEqual(self.d.get("/v1/provinces/nowhere/history").status,
                         404)

    def test_coalition(self):
        self.base(self.d)
        c = self.d.get("/v1/coalitions/red")
        self.assertEqual(c.status, 200)
        c = c.json()
        self.assertEqual((c["id"], c["name"], c["short"], c["color"]),
                         ("red", 'Red, "United" Left', "Red", "#cc0000"))
        self.assertEqual(c["aliases"], ["red-s"])
        self.assertEqual((c["rank"], c["votes"], c["seats"], c["tied_for"]),
                         (1, 2500, 6, 0))
        self.assertAlmostEqual(c["share"], share(2500, 5380), places=2)
        self.assertEqual([(p["province"], p["list"], p["votes"], p["seats"])
                          for p in c["provinces"]],
                         [("north", "red", 1000, 3), ("south", "red-s", 900, 2),
                          ("east", "red", 600, 1)])
        self.assertAlmostEqual(c["provinces"][1]["share"], 45.0)
        g = self.d.get("/v1/coalitions/gold").json()
        self.assertEqual((g["rank"], g["votes"], g["seats"], g["tied_for"]),
                         (4, 750, 0, 1))
        self.assertEqual([(p["province"], p["tied_for"])
                          for p in g["provinces"]],
                         [("south", 0), ("east", 1)])
        z = self.d.get("/v1/coalitions/zinc").json()
        self.assertEqual([(p["province"], p["seats"]) for p in z["provinces"]],
                         [("north", 0)])
        self.assertError(self.d.get("/v1/coalitions/purple"), 404,
                         "unknown_coalition")
        self.assertError(self.d.get("/v1/provinces/nowhere"), 404,
                         "unknown_province")

    def test_election(self):
        e = self.d.get("/v1/election").json()
        self.assertEqual(e["id"], "tiny-2024")
        self.assertEqual(e["name"], "Tiny Test Election")
        self.assertEqual(e["seats"], 10)
        self.assertEqual(e["allocation"]["method"], "dhondt")
        self.assertEqual(e["allocation"]["ties"], "lot")
        self.assertEqual(e["allocation"]["threshold"]["of"], "valid")
        self.assertEqual(e["allocation"]["threshold"]["scope"], "province")
        self.assertEqual(str(e["allocation"]["threshold"]["percent"]), "5")
        self.assertEqual([(p["id"], p["name"], p["seats"])
                          for p in e["provinces"]],
                         [(p["id"], p["name"], p["seats"])
                          for p in ELECTION["provinces"]])
        red = [c for c in e["coalitions"] if c["id"] == "red"][0]
        self.assertEqual(red["aliases"], ["red-s"])
        self.assertEqual(red["name"], 'Red, "United" Left')


class Ranking(ApiTest):
    # north (5): blue 900, green 620, red 500; valid 2020
    #   quotients 900 b, 620 g, 500 r, 450 b, 310 g | 300 b, 250 r
    #   -> blue 2, green 2, red 1
    # south (3): red-s 700, gold 500, amber 500
    #   quotients 700 r, 500 gold, 500 amber | 350 r -> 1 each
    # east (2): blue 2000, zinc 990; quotients 2000, 1000 b | 990 z -> blue 2
    # National: blue 4 (2900); red 2 (1200); green 2 (620);
    #   amber 1 (500); gold 1 (500); zinc 0 (990).
    # red before green: equal seats, more votes (though "green" < "red");
    # amber before gold: equal in both, by id; zinc last though it has more
    # votes than amber and gold.
    RANKED = [("blue", 4, 2900), ("red", 2, 1200), ("green", 2, 620),
              ("amber", 1, 500), ("gold", 1, 500), ("zinc", 0, 990)]

    def test_ranking(self):
        d = self.start()
        self.apply(d, "north", {"revision": 1, "votes": {
            "blue": 900, "green": 620, "red": 500}})
        self.apply(d, "south", {"revision": 1, "votes": {
            "red-s": 700, "gold": 500, "amber": 500}})
        self.apply(d, "east", {"revision": 1, "votes": {
            "blue": 2000, "zinc": 990}})
        lb = d.get("/v1/leaderboard").json()
        self.assertEqual([(c["id"], c["seats"], c["votes"])
                          for c in lb["coalitions"]], self.RANKED)
        self.assertEqual(lb["seats"]["allocated"], 10)
        rows = list(csv.reader(io.StringIO(
            d.get("/v1/leaderboard.csv").body.decode(), newline="")))
        self.assertEqual([(r[1], int(r[6]), int(r[4])) for r in rows[1:]],
                         self.RANKED)
        for rank, (cid, _, _) in enumerate(self.RANKED, 1):
            self.assertEqual(d.get("/v1/coalitions/" + cid).json()["rank"],
                             rank)


class Csv(ApiTest):
    def setUp(self):
        self.d = self.start()
        self.base(self.d)

    def fetch(self, path):
        r = self.d.get(path)
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("Content-Type").startswith("text/csv"),
                        r.header("Content-Type"))
        self.assertTrue(r.body.endswith(b"\r\n"))
        self.assertEqual(r.body.count(b"\n"), r.body.count(b"\r\n"),
                         "every line ends with CRLF")
        return r, list(csv.reader(io.StringIO(r.body.decode("utf-8"),
                                              newline="")))

    def test_leaderboard_csv(self):
        r, rows = self.fetch("/v1/leaderboard.csv")
        self.assertEqual(rows[0], ["rank", "id", "name", "short", "votes",
                                   "share", "seats", "tied_for", "color"])
        self.assertIn(b'"Red, ""United"" Left"', r.body)
        lb = self.d.get("/v1/leaderboard").json()
        self.assertEqual(len(rows), 1 + len(lb["coalitions"]))
        for row, c in zip(rows[1:], lb["coalitions"]):
            self.assertEqual(len(row), 9)
            self.assertEqual(row, [str(c["rank"]), c["id"], c["name"],
                                   c["short"], str(c["votes"]),
                                   "%.2f" % c["share"], str(c["seats"]),
                                   str(c["tied_for"]), c["color"]])

    def test_provinces_csv(self):
        r, rows = self.fetch("/v1/provinces.csv")
        header = rows[0]
        self.assertEqual(header[:3], ["id", "name", "seats"])
        for col in ("revision", "status", "valid", "blank", "invalid",
                    "allocated", "pending", "leader"):
            self.assertIn(col, header)
        self.assertIn(b'"East ""Coast"", Isles"', r.body)
        ps = self.d.get("/v1/provinces").json()["provinces"]
        self.assertEqual(len(rows), 1 + len(ps))
        for row, p in zip(rows[1:], ps):
            with self.subTest(province=p["id"]):
                self.assertEqual(len(row), len(header))
                x = dict(zip(header, row))
                self.assertEqual((x["id"], x["name"], int(x["seats"])),
                                 (p["id"], p["name"], p["seats"]))
                self.assertEqual(int(x["revision"]), p["revision"])
                self.assertEqual(x["status"], p["status"])
                self.assertEqual(x["reported_at"], p["reported_at"] or "")
                self.assertEqual(x["received_at"], p["received_at"] or "")
                self.assertEqual(int(x["valid"]), p["votes"]["valid"])
                self.assertEqual(int(x["blank"]), p["votes"]["blank"])
                self.assertEqual(int(x["invalid"]), p["votes"]["invalid"])
                self.assertEqual(int(x["allocated"]), p["allocated"])
                self.assertEqual(int(x["pending"]), p["pending_seats"])
                self.assertEqual(x["leader"], p["leader"]["list"])
                st = p["stations"] or {}
                self.assertEqual(x["stations_reporting"],
                                 str(st.get("reporting", "")))
                self.assertEqual(x["stations_total"], str(st.get("total", "")))

    def test_csv_cached_like_json(self):
        for path in ("/v1/leaderboard.csv", "/v1/provinces.csv"):
            with self.subTest(path=path):
                r = self.d.get(path)
                self.assertRegex(r.header("ETag"), r'^"\d+-[0-9a-f]{16}"$')
                self.assertEqual(r.header("Vary"), "Accept-Encoding")
                g = self.d.get(path, headers={"Accept-Encoding": "gzip"})
                self.assertEqual(g.header("Content-Encoding"), "gzip")
                self.assertEqual(gunzip(g.body), r.body)
                n = self.d.get(path, headers={"If-None-Match": r.header("ETag")})
                self.assertEqual((n.status, n.body), (304, b""))


class Caching(ApiTest):
    VIEWS = ("/v1/leaderboard", "/v1/provinces", "/v1/provinces/north",
             "/v1/provinces/north?explain=1", "/v1/provinces/north/history",
             "/v1/coalitions/red", "/v1/election", "/v1/leaderboard.csv")

    def setUp(self):
        self.d = self.start()

    def etag(self, path="/v1/leaderboard"):
        r = self.d.get(path)
        self.assertEqual(r.status, 200)
        return r.header("ETag")

    def test_etag_follows_applied_posts_only(self):
        e0 = self.etag()
        v = self.apply(self.d, "north", NORTH)
        e1 = self.etag()
        self.assertNotEqual(e1, e0)
        self.assertTrue(e1.startswith('"%d-' % v), e1)
        for path in self.VIEWS[1:6]:
            self.assertEqual(self.etag(path), e1, path)
        # Rejected: unchanged.
        r = self.post(self.d, "north", dict(NORTH, revision=2,
                                            votes={"purple": 1}))
        self.assertEqual(r.status, 422)
        r = self.post(self.d, "north", dict(NORTH, blank=1))
        self.assertEqual(r.status, 409)
        self.assertEqual(self.etag(), e1)
        # Duplicate: unchanged.
        self.assertEqual(self.post(self.d, "north", NORTH).status, 200)
        self.assertEqual(self.etag(), e1)
        for path in self.VIEWS[1:6]:
            self.assertEqual(self.etag(path), e1, path)
        self.apply(self.d, "south", SOUTH)
        e2 = self.etag()
        self.assertNotIn(e2, (e0, e1))
        # North did not change: its views keep their validator, so caches
        # keep them; views of the whole tally move on.
        for path in self.VIEWS[2:5]:
            self.assertEqual(self.etag(path), e1, path)
        self.assertEqual(self.etag("/v1/provinces/south"), e2)
        self.assertEqual(self.etag("/v1/coalitions/red"), e2)

    def test_if_none_match(self):
        self.apply(self.d, "north", NORTH)
        for path in self.VIEWS:
            with self.subTest(path=path):
                r = self.d.get(path)
                etag = r.header("ETag")
                n = self.d.get(path, headers={"If-None-Match": etag})
                self.assertEqual(n.status, 304)
                self.assertEqual(n.body, b"")
                self.assertEqual(n.header("ETag"), etag)
                self.assertEqual(n.header("Cache-Control"), "public, max-age=1")
                n = self.d.get(path, headers={
                    "If-None-Match": '"123456", ' + etag})
                self.assertEqual(n.status, 304)
        old = self.etag()
        self.apply(self.d, "south", SOUTH)
        r = self.d.get("/v1/leaderboard", headers={"If-None-Match": old})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["provinces"]["reporting"], 2)
        self.assertNotEqual(r.header("ETag"), old)

    def test_gzip(self):
        self.base(self.d)
        for path in self.VIEWS:
            with self.subTest(path=path):
                r = self.d.get(path)
                g = self.d.get(path, headers={"Accept-Encoding": "gzip"})
                self.assertEqual(g.status, 200)
                self.assertEqual(g.header("Content-Encoding"), "gzip")
                self.assertEqual(g.header("Vary"), "Accept-Encoding")
                self.assertEqual(r.header("Vary"), "Accept-Encoding")
                self.assertIsNone(r.header("Content-Encoding"))
                self.assertEqual(gunzip(g.body), r.body)
                # Other bytes, so another strong validator (RFC 9110 8.8.3).
                self.assertEqual(g.header("ETag"),
                                 r.header("ETag")[:-1] + '-gz"')
                # Either one proves the client holds this version.
                for etag in (r.header("ETag"), g.header("ETag")):
                    n = self.d.get(path, headers={"Accept-Encoding": "gzip",
                                                  "If-None-Match": etag})
                    self.assertEqual(n.status, 304)
                    self.assertEqual(n.header("ETag"), g.header("ETag"))
                self.assertEqual(g.header("Content-Type"),
                                 r.header("Content-Type"))

    def test_gzip_refused_by_weight(self):
        r = self.d.get("/v1/leaderboard")
        for ae in ("gzip;q=0", "gzip; q=0.0", "br, gzip;q=0.000", "identity",
                   "x-gzip", "gzip;Q=0"):
            with self.subTest(accept_encoding=ae):
                n = self.d.get("/v1/leaderboard",
                               headers={"Accept-Encoding": ae})
                self.assertIsNone(n.header("Content-Encoding"))
                self.assertEqual(n.body, r.body)
        for ae in ("GZIP", "deflate, gzip;q=0.5", "gzip;q=1"):
            with self.subTest(accept_encoding=ae):
                g = self.d.get("/v1/leaderboard",
                               headers={"Accept-Encoding": ae})
                self.assertEqual(g.header("Content-Encoding"), "gzip")
                self.assertEqual(gunzip(g.body), r.body)

    def test_cache_control(self):
        for path in self.VIEWS:
            r = self.d.get(path)
            self.assertEqual(r.header("Cache-Control"), "public, max-age=1",
                             path)
            self.assertIsNotNone(r.header("Last-Modified"), path)
        d = self.daemon(start=False)
        conf = os.path.join(d.tmp, "tallyd.conf")
        with open(conf, "w") as f:
            f.write("max_age 7\n")
        d = self.start(args=["-f", conf])
        for path in self.VIEWS:
            r = d.get(path)
            self.assertEqual(r.header("Cache-Control"), "public, max-age=7",
                             path)
        r = d.get("/v1/leaderboard", headers={"If-None-Match":
                                               r.header("ETag")})
        self.assertEqual(r.header("Cache-Control"), "public, max-age=7")
        # Errors and POST answers are not cached.
        self.assertEqual(d.get("/v1/nothing").header("Cache-Control"),
                         "no-store")
        r = self.post(d, "north", NORTH)
        self.assertEqual(r.header("Cache-Control"), "no-store")

    def test_render_cache(self):
        self.base(self.d)
        path = "/v1/provinces/north"
        self.assertEqual(self.d.get(path).status, 200)
        m0 = metrics(self.d.get("/metrics").body.decode())
        b1 = self.d.get(path).body
        b2 = self.d.get(path).body
        self.assertEqual(b1, b2)
        m1 = metrics(self.d.get("/metrics").body.decode())
        self.assertEqual(m1["tallyd_render_cache_hits_total"],
                         m0["tallyd_render_cache_hits_total"] + 2)
        self.assertEqual(m1["tallyd_renders_total"],
                         m0["tallyd_renders_total"])
        # A change: rendered once more, then cached again.  (Nothing is
        # rendered at publish time without event streams: a version's
        # views are rendered when somebody asks for them.)
        self.apply(self.d, "north", dict(NORTH, revision=2))
        self.d.get(path)
        self.d.get(path)
        m2 = metrics(self.d.get("/metrics").body.decode())
        self.assertEqual(m2["tallyd_renders_total"],
                         m1["tallyd_renders_total"] + 1)
        self.assertEqual(m2["tallyd_render_cache_hits_total"],
                         m1["tallyd_render_cache_hits_total"] + 1)


class ExplainLevelling(ApiTest):
    """Issue 21: ?explain=1 embeds the national levelling tier, so its
    validator must move whenever the tier does, even for a province with no
    levelling seat of its own, and the same state must be the same bytes
    after a restart."""

    def test_explain_follows_the_levelling_tier(self):
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "..", "data", "elections", "no-2021",
                               "election.json")) as f:
            e = json.load(f)
        quiet = e["provinces"][-1]
        quiet["levelling_seats"] = 0
        d = self.start(election=e)
        path = "/v1/provinces/%s?explain=1" % quiet["id"]
        self.apply(d, "01", {"revision": 1,
                             "votes": {"A": 1000, "H": 900, "SV": 300}})
        first = d.get(path)
        self.assertEqual(first.status, 200)
        self.apply(d, "02", {"revision": 1,
                             "votes": {"A": 100, "H": 2000, "SV": 900}})
        again = d.get(path, headers={"If-None-Match":
                                     first.header("ETag")})
        self.assertEqual(again.status, 200,
                         "a 304 for stale national levelling figures")
        self.assertNotEqual(again.body, first.body)
        now = d.get(path)
        self.assertEqual(now.body, again.body)
        d.kill()
        d2 = self.start(election=e, data_dir=d.data_dir)
        after = d2.get(path)
        self.assertEqual(after.body, now.body)
        self.assertEqual(after.header("ETag"), now.header("ETag"))


class Metrics(ApiTest):
    def test_metrics(self):
        d = self.start()
        self.base(d)
        d.get("/v1/leaderboard")
        d.get("/v1/leaderboard")
        d.get("/v1/provinces/nowhere")
        r = self.post(d, "north", dict(NORTH, revision=2, votes={"purple": 1}))
        self.assertEqual(r.status, 422)
        r = self.post(d, "north", NORTH)
        self.assertEqual(r.status, 200)
        r = d.request("POST", "/v1/provinces/north/results", body=NORTH)
        self.assertEqual(r.status, 401)
        r = d.get("/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("Content-Type").startswith(
            "text/plain; version=0.0.4"), r.header("Content-Type"))
        text = r.body.decode()
        for line in text.splitlines():
            self.assertRegex(line, r'^(# (HELP|TYPE) \w+ .+|\w+(\{.*\})? '
                                   r'[0-9.e+-]+)$')
        m = metrics(text)
        self.assertEqual(m['tallyd_requests_total{route="/v1/leaderboard",'
                           'status="200"}'], 2)
        self.assertEqual(m['tallyd_requests_total{route="/v1/provinces/{id}",'
                           'status="404"}'], 1)
        self.assertEqual(m['tallyd_requests_total{route='
                           '"/v1/provinces/{id}/results",status="201"}'], 3)
        self.assertEqual(m['tallyd_requests_total{route='
                           '"/v1/provinces/{id}/results",status="422"}'], 1)
        self.assertEqual(m["tallyd_feeds_applied_total"], 3)
        self.assertEqual(m["tallyd_feeds_duplicate_total"], 1)
        self.assertEqual(m['tallyd_feeds_rejected_total{reason="unknown_list"}'],
                         1)
        self.assertEqual(m['tallyd_feeds_rejected_total{reason="unauthorized"}'],
                         1)
        self.assertEqual(m["tallyd_version"],
                         d.get("/v1/leaderboard").json()["version"])
        self.assertEqual(m["tallyd_provinces_reporting"], 3)
        self.assertEqual(m["tallyd_provinces_final"], 2)
        self.assertEqual(m["tallyd_seats_pending"], 1)
        self.assertIn("# TYPE tallyd_requests_total counter", text)
        self.assertIn("# TYPE tallyd_version gauge", text)
        # Counters grow.
        d.get("/v1/leaderboard")
        m2 = metrics(d.get("/metrics").body.decode())
        self.assertEqual(m2['tallyd_requests_total{route="/v1/leaderboard",'
                            'status="200"}'], 4)
        self.assertGreaterEqual(
            m2['tallyd_requests_total{route="/metrics",status="200"}'], 1)
        self.assertFalse(re.search(TOKEN, text))

    def test_refused_framing_is_counted(self):
        """A feed refused before its body is read (413, bad framing) is
        still a request on its route, and a rejected feed."""
        d = self.start()
        d.raw(b"POST /v1/provinces/north/results HTTP/1.1\r\nHost: t\r\n"
              b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
              b"Content-Type: application/json\r\n"
              b"Content-Length: 5000000\r\n\r\n")
        d.raw(b"POST /v1/provinces/north/results HTTP/1.1\r\nHost: t\r\n"
              b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}")
        m = metrics(d.get("/metrics").body.decode())
        self.assertEqual(m.get('tallyd_requests_total{route='
                               '"/v1/provinces/{id}/results",status="413"}'), 1)
        self.assertEqual(m.get('tallyd_requests_total{route='
                               '"/v1/provinces/{id}/results",status="400"}'), 1)
        self.assertEqual(m.get('tallyd_feeds_rejected_total'
                               '{reason="body_too_large"}'), 1)
        self.assertEqual(m.get('tallyd_feeds_rejected_total'
                               '{reason="bad_framing"}'), 1)


if __name__ == "__main__":
    main()
