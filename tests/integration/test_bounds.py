"""Seat bounds through the running daemon: seats_min / seats_max per list and
coalition, settled and the uncounted bound per province, the majority.

The expected bounds come from a brute force written here: every way of
casting at most U more ballots over the lists and blank, allocated by a
D'Hondt written from the rule (ties by votes, then pending)."""
import itertools
import json
import os
from fractions import Fraction

from harness import CheckedDaemonTest, main

TOKEN = "bounds-test-ingest-token-0123456789"
AUTH = {"Authorization": "Bearer " + TOKEN}

ELECTION = {
    "id": "bounds-2024",
    "name": "Bounds Test Election",
    "allocation": {"method": "dhondt", "ties": "votes"},
    "station_ballots_max": 5,
    "coalitions": [
        {"id": "red", "name": "Red", "aliases": ["red-w"]},
        {"id": "blue", "name": "Blue"},
        {"id": "green", "name": "Green"},
    ],
    "provinces": [
        {"id": "north", "name": "North", "seats": 5, "registered": 205},
        {"id": "south", "name": "South", "seats": 3, "registered": 1000},
        {"id": "east", "name": "East", "seats": 2},
        {"id": "west", "name": "West", "seats": 3},
        {"id": "far", "name": "Far", "seats": 4},
    ],
}
SEATS_TOTAL = 17


def dhondt(votes, seats):
    """{list: (firm seats, firm + tied seat)} under D'Hondt, ties by votes."""
    quots = sorted(((Fraction(v, d), v, l) for l, v in votes.items() if v > 0
                    for d in range(1, seats + 1)), reverse=True)
    firm = {l: 0 for l in votes}
    tied = set()
    if len(quots) <= seats:
        for _, _, l in quots:
            firm[l] += 1
        return {l: (firm[l], firm[l]) for l in votes}
    cut = quots[seats - 1][0]
    above = [q for q in quots if q[0] > cut]
    group = [q for q in quots if q[0] == cut]
    for _, _, l in above:
        firm[l] += 1
    left = seats - len(above)
    if len(group) <= left:
        for _, _, l in group:
            firm[l] += 1
    else:
        group.sort(key=lambda q: -q[1])
        edge = group[left - 1][1]
        more = [q for q in group if q[1] > edge]
        same = [q for q in group if q[1] == edge]
        for _, _, l in more:
            firm[l] += 1
        left -= len(more)
        if len(same) == left:
            for _, _, l in same:
                firm[l] += 1
        else:
            tied = {q[2] for q in same}
    return {l: (firm[l], firm[l] + (1 if l in tied else 0)) for l in votes}


def brute(votes, seats, U):
    """{list: (fewest firm seats, most reachable)} over every distribution."""
    lists = sorted(votes)
    lo = {l: seats for l in lists}
    hi = {l: 0 for l in lists}
    for add in itertools.product(range(U + 1), repeat=len(lists)):
        if sum(add) > U:
            continue
        got = dhondt({l: votes[l] + a for l, a in zip(lists, add)}, seats)
        for l in lists:
            lo[l] = min(lo[l], got[l][0])
            hi[l] = max(hi[l], got[l][1])
    return {l: (lo[l], hi[l]) for l in lists}


NORTH = {"revision": 1, "votes": {"red": 100, "blue": 60, "green": 28},
         "blank": 6, "invalid": 1, "status": "partial"}
NORTH_U = 205 - (188 + 6 + 1)          # registered minus counted: 10
SOUTH = {"revision": 1, "votes": {"red": 500, "blue": 300, "green": 100},
         "status": "final"}
EAST = {"revision": 1, "votes": {"red": 50, "blue": 40}, "status": "partial"}
WEST = {"revision": 1, "votes": {"red-w": 70, "blue": 50, "green": 20},
        "stations": {"reporting": 3, "total": 4}, "status": "partial"}
WEST_U = 1 * 5                          # one station x station_ballots_max


class Bounds(CheckedDaemonTest):
    def setUp(self):
        d = self.daemon(start=False, env={"TALLYD_INGEST_TOKEN": TOKEN})
        path = os.path.join(d.tmp, "election.json")
        with open(path, "w") as f:
            json.dump(ELECTION, f)
        d.args = ["--election", path]
        self.d = d.start()

    def apply(self, pid, body):
        r = self.d.request("POST", "/v1/provinces/%s/results" % pid,
                           body=body, headers=AUTH)
        self.assertEqual(r.status, 201, r.body)

    def province(self, pid):
        r = self.d.get("/v1/provinces/" + pid)
        self.assertEqual(r.status, 200, r.body)
        return r.json()

    def bounds(self, p):
        return {l["id"]: (l["seats_min"], l["seats_max"]) for l in p["lists"]}

    def test_registered_bound_is_exact(self):
        self.apply("north", NORTH)
        p = self.province("north")
        self.assertEqual(p["uncounted"], {"votes": NORTH_U,
                                          "from": "registered",
                                          "exact": True})
        want = brute(NORTH["votes"], 5, NORTH_U)
        self.assertEqual(self.bounds(p), want)
        self.assertEqual(p["settled"], all(a == b for a, b in want.values()))
        for l in p["lists"]:
            self.assertLessEqual(l["seats_min"], l["seats"])
            self.assertGreaterEqual(l["seats_max"], l["seats"])

    def test_feed_registered_overrides_definition(self):
        self.apply("north", dict(NORTH, registered=198))
        p = self.province("north")
        self.assertEqual(p["uncounted"]["votes"], 3)
        self.assertEqual(self.bounds(p), brute(NORTH["votes"], 5, 3))

    def test_final_is_settled(self):
        self.apply("south", SOUTH)
        p = self.province("south")
        self.assertTrue(p["settled"])
        self.assertEqual(p["uncounted"], {"votes": 0, "from": "final",
                                          "exact": True})
        for l in p["lists"]:
            self.assertEqual((l["seats_min"], l["seats_max"]),
                             (l["seats"], l["seats"]))

    def test_provinces_filtered_by_settled(self):
        self.apply("south", SOUTH)      # final: settled
        self.apply("east", EAST)        # no bound: open
        every = self.d.get("/v1/provinces").json()["provinces"]
        open_ = self.d.get("/v1/provinces?settled=false")
        self.assertEqual(open_.status, 200)
        settled = self.d.get("/v1/provinces?settled=true").json()["provinces"]
        ids = lambda rows: sorted(r["id"] for r in rows)
        self.assertEqual(ids(settled), ["south"])
        self.assertEqual(ids(open_.json()["provinces"]),
                         sorted(r["id"] for r in every if r["id"] != "south"))
        # Cached like every view: a conditional GET gets 304.
        r = self.d.get("/v1/provinces?settled=false",
                       headers={"If-None-Match": open_.header("ETag")})
        self.assertEqual(r.status, 304)
        bad = self.d.get("/v1/provinces?settled=maybe")
        self.assertEqual(bad.status, 400)
        self.assertEqual(bad.json()["error"]["code"], "bad_query")

    def test_no_bound_no_guarantee(self):
        self.apply("east", EAST)
        p = self.province("east")
        self.assertFalse(p["settled"])
        self.assertEqual(p["uncounted"], {"votes": None, "from": "unknown",
                                          "exact": False})
        for l in p["lists"]:
            self.assertIsNone(l["seats_min"])
            self.assertIsNone(l["seats_max"])
        before = self.province("far")
        self.assertFalse(before["settled"])
        self.assertEqual(before["uncounted"]["votes"], None)

    def test_stations_bound(self):
        self.apply("west", WEST)
        p = self.province("west")
        self.assertEqual(p["uncounted"], {"votes": WEST_U, "from": "stations",
                                          "exact": True})
        self.assertEqual(self.bounds(p), brute(WEST["votes"], 3, WEST_U))

    def test_leaderboard_and_majority(self):
        for pid, body in (("north", NORTH), ("south", SOUTH), ("east", EAST),
                          ("west", WEST)):
            self.apply(pid, body)
        lb = self.d.get("/v1/leaderboard").json()
        north = brute(NORTH["votes"], 5, NORTH_U)
        west = brute(WEST["votes"], 3, WEST_U)
        south = dhondt(SOUTH["votes"], 3)
        rows = {c["id"]: c for c in lb["coalitions"]}
        for cid, wl in (("red", "red-w"), ("blue", "blue"),
                        ("green", "green")):
            with self.subTest(coalition=cid):
                lo = north[cid][0] + west[wl][0] + south[cid][0]
                # east has no bound (its lists may reach both seats), far
                # has not reported (anyone may win its 4).
                hi = (north[cid][1] + west[wl][1] + south[cid][0] +
                      (2 if cid in EAST["votes"] else 0) + 4)
                self.assertEqual((rows[cid]["seats_min"],
                                  rows[cid]["seats_max"]), (lo, hi))
                self.assertLessEqual(lo, rows[cid]["seats"])
                majority = SEATS_TOTAL // 2 + 1
                self.assertEqual(rows[cid]["majority"],
                                 "clinched" if lo >= majority else
                                 "out_of_reach" if hi < majority else
                                 "possible")
        self.assertEqual(lb["provinces_settled"],
                         sum(1 for pid in ("north", "south", "east", "west")
                             if self.province(pid)["settled"]))
        c = self.d.get("/v1/coalitions/red").json()
        self.assertEqual((c["seats_min"], c["seats_max"], c["majority"]),
                         (rows["red"]["seats_min"], rows["red"]["seats_max"],
                          rows["red"]["majority"]))
        ps = {p["id"]: p for p in self.d.get("/v1/provinces").json()
              ["provinces"]}
        self.assertTrue(ps["south"]["settled"])
        self.assertFalse(ps["east"]["settled"])
        self.assertFalse(ps["far"]["settled"])

    def test_definition_fields_round_trip(self):
        el = self.d.get("/v1/election").json()
        self.assertEqual(el["station_ballots_max"], 5)
        by = {p["id"]: p for p in el["provinces"]}
        self.assertEqual(by["north"]["registered"], 205)
        self.assertNotIn("registered", by["east"])


MAJ = {
    "id": "maj-2024",
    "name": "Majority Test Election",
    "allocation": {"method": "dhondt", "ties": "votes"},
    "coalitions": [{"id": "red", "name": "Red"}, {"id": "blue", "name": "Blue"},
                   {"id": "green", "name": "Green"}],
    "provinces": [
        {"id": "a", "name": "A", "seats": 5, "registered": 100},
        {"id": "b", "name": "B", "seats": 4, "registered": 70},
    ],
}
MAJ_FEEDS = {"a": {"revision": 1, "votes": {"red": 45, "blue": 40,
                                             "green": 9}},
             "b": {"revision": 1, "votes": {"red": 30, "blue": 31,
                                             "green": 3}}}


def maj_brute(cid):
    """(to_win, to_lose) for coalition cid by enumeration: ballots for it
    only (to win), or for its rivals only (to lose), per province at most
    its uncounted."""
    seats_total = sum(p["seats"] for p in MAJ["provinces"])
    majority = seats_total // 2 + 1
    per = []
    for p in MAJ["provinces"]:
        votes = MAJ_FEEDS[p["id"]]["votes"]
        U = p["registered"] - sum(votes.values())
        rivals = sorted(l for l in votes if l != cid)
        win = {}     # ballots -> firm seats, all to cid
        for x in range(U + 1):
            win[x] = dhondt(dict(votes, **{cid: votes[cid] + x}),
                            p["seats"])[cid][0]
        lose = {}    # ballots -> fewest firm seats, all to rivals
        for add in itertools.product(range(U + 1), repeat=len(rivals)):
            if sum(add) > U:
                continue
            v = dict(votes)
            for l, a in zip(rivals, add):
                v[l] += a
            got = dhondt(v, p["seats"])[cid][0]
            lose[sum(add)] = min(lose.get(sum(add), got), got)
        per.append((win, lose))
    now = sum(dhondt(MAJ_FEEDS[p["id"]]["votes"], p["seats"])[cid][0]
              for p in MAJ["provinces"])
    best_win = best_lose = None
    for xa, xb in itertools.product(per[0][0], per[1][0]):
        if per[0][0][xa] + per[1][0][xb] >= majority:
            if best_win is None or xa + xb < best_win:
                best_win = xa + xb
        if xa in per[0][1] and xb in per[1][1] and \
                per[0][1][xa] + per[1][1][xb] < majority:
            if best_lose is None or xa + xb < best_lose:
                best_lose = xa + xb
    return now, majority, best_win, best_lose


class Majority(CheckedDaemonTest):
    def test_votes_to_decide_the_majority(self):
        d = self.daemon(start=False, env={"TALLYD_INGEST_TOKEN": TOKEN})
        path = os.path.join(d.tmp, "election.json")
        with open(path, "w") as f:
            json.dump(MAJ, f)
        d.args = ["--election", path]
        d.start()
        for pid, body in MAJ_FEEDS.items():
            r = d.request("POST", "/v1/provinces/%s/results" % pid,
                          body=body, headers=AUTH)
            self.assertEqual(r.status, 201, r.body)
        for cid in ("red", "blue"):
            with self.subTest(coalition=cid):
                c = d.get("/v1/coalitions/" + cid).json()
                now, majority, win, lose = maj_brute(cid)
                self.assertEqual(c["seats"], now)
                # Both still open: the uncounted can swing it either way.
                self.assertEqual(c["majority"], "possible")
                self.assertEqual(c["majority_votes"], {
                    "to_win": 0 if now >= majority else win,
                    "to_lose": 0 if now < majority else lose,
                    "exact": True})


# The case: a coalition with its own threshold (Poland's 8 %) and an
# exempt one sent every province to the engine search, which gave up with
# seats_min 0 and seats_max all seats.
COALITION = {
    "id": "coalition-2024",
    "name": "Coalition Threshold Test Election",
    "allocation": {"method": "dhondt", "ties": "votes",
                   "threshold": {"percent": "5", "of": "list",
                                 "scope": "national"}},
    "coalitions": [
        {"id": "kkw", "name": "Coalition committee",
         "threshold": {"percent": "8", "reason": "coalition"}},
        {"id": "party", "name": "Party"},
        {"id": "minority", "name": "Minority",
         "threshold": {"exempt": True, "reason": "national minority"}},
    ],
    "provinces": [{"id": "only", "name": "Only", "seats": 3,
                   "registered": 93}],
}


class CoalitionThreshold(CheckedDaemonTest):
    def test_bounds_exact_under_a_coalition_threshold(self):
        d = self.daemon(start=False, env={"TALLYD_INGEST_TOKEN": TOKEN})
        path = os.path.join(d.tmp, "election.json")
        with open(path, "w") as f:
            json.dump(COALITION, f)
        d.args = ["--election", path]
        d.start()
        votes = {"kkw": 14, "party": 29}
        r = d.request("POST", "/v1/provinces/only/results",
                      body={"revision": 1, "votes": votes}, headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        p = d.get("/v1/provinces/only").json()
        # 14 / (43 + 50) is still above 8 %: no fate is open, so the
        # bounds are those of plain D'Hondt over the 50 uncounted.
        self.assertEqual(p["uncounted"], {"votes": 50, "from": "registered",
                                          "exact": True})
        got = {l["id"]: (l["seats_min"], l["seats_max"]) for l in p["lists"]}
        self.assertEqual(got, brute(votes, 3, 50))
        self.assertEqual(got, {"kkw": (0, 2), "party": (1, 3)})
        c = d.get("/v1/coalitions/party").json()
        self.assertEqual((c["seats_min"], c["seats_max"]), (1, 3))


if __name__ == "__main__":
    main()
