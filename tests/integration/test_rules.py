#!/usr/bin/env python3
"""Which threshold applies where, through the running daemon
(docs/ELECTION.md): a province's own `allocation` inherits nothing from the
election's, not even a national threshold; a coalition's own percent
replaces the percent of the threshold in force and an exemption takes it out
of every threshold.  The live views, a province's history (`seats_moved`)
and a dry run (`?dry_run=1`) must all divide the seats by that one rule:
history and dry-run seat deltas are checked against the differences of the
live views before and after each feed."""
import json
import os

from harness import CheckedDaemonTest, main

TOKEN = "rules-test-ingest-token-0123456789"
AUTH = {"Authorization": "Bearer " + TOKEN}


def national_own_alloc():
    """A national 5 % threshold of list votes; p1 has its own D'Hondt with
    no threshold."""
    return {"id": "noa", "name": "NOA",
            "allocation": {"method": "dhondt",
                           "threshold": {"percent": "5", "of": "list",
                                         "scope": "national"}},
            "coalitions": [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}],
            "provinces": [
                {"id": "p0", "name": "P0", "seats": 2},
                {"id": "p1", "name": "P1", "seats": 2, "registered": 9,
                 "allocation": {"method": "dhondt"}}]}


def own_thresholds():
    """Sainte-Laguë, 4 seats, a 20 % province threshold of list votes in p2;
    c0 and c2 exempt (the model's case), c3 with its own 30 % over the
    election's 10 % (p0), c1 and c4 plain."""
    return {"id": "own", "name": "Own",
            "allocation": {"method": "dhondt", "ties": "votes",
                           "threshold": {"percent": "10", "of": "list",
                                         "scope": "province"}},
            "coalitions": [
                {"id": "c0", "name": "C0", "aliases": ["c0-a"],
                 "threshold": {"exempt": True, "reason": "minority"}},
                {"id": "c1", "name": "C1"},
                {"id": "c2", "name": "C2",
                 "threshold": {"exempt": True, "reason": "minority"}},
                {"id": "c3", "name": "C3",
                 "threshold": {"percent": "30", "reason": "coalition"}},
                {"id": "c4", "name": "C4"}],
            "provinces": [
                {"id": "p0", "name": "P0", "seats": 5},
                {"id": "p2", "name": "P2", "seats": 4,
                 "allocation": {"method": "sainte-lague", "ties": "votes",
                                "threshold": {"percent": "20", "of": "list",
                                              "scope": "province"}}}]}


class Rules(CheckedDaemonTest):
    def start(self, election):
        d = self.daemon(start=False, env={"TALLYD_INGEST_TOKEN": TOKEN})
        path = os.path.join(d.tmp, "election.json")
        with open(path, "w") as f:
            json.dump(election, f)
        d.args += ["--election", path]
        d.start()
        return d

    def post(self, d, pid, rev, votes, dry=False):
        r = d.request("POST", "/v1/provinces/%s/results%s" %
                      (pid, "?dry_run=1" if dry else ""),
                      body={"revision": rev, "votes": votes}, headers=AUTH)
        self.assertEqual(r.status, 200 if dry else 201, r.body)
        return r.json()

    def view(self, d, pid):
        r = d.get("/v1/provinces/" + pid)
        self.assertEqual(r.status, 200, r.body)
        return r.json()

    def seats(self, d, pid):
        return {row["id"]: row["seats"] for row in self.view(d, pid)["lists"]}

    def national(self, d):
        lb = d.get("/v1/leaderboard").json()
        return {c["id"]: c["seats"] for c in lb["coalitions"]}

    @staticmethod
    def nonzero(d):
        return {k: v for k, v in d.items() if v}

    @staticmethod
    def diff(after, before):
        d = {k: after.get(k, 0) - before.get(k, 0)
             for k in set(after) | set(before)}
        return {k: v for k, v in d.items() if v}

    def test_own_allocation_inherits_no_national_threshold(self):
        d = self.start(national_own_alloc())
        self.post(d, "p0", 1, {"a": 100, "b": 1})
        self.post(d, "p1", 1, {"a": 5, "b": 4})
        # b has 5 of 110 list votes: under the national 5 %, so out in p0.
        rows = {r["id"]: r for r in self.view(d, "p0")["lists"]}
        self.assertEqual(rows["b"]["threshold"], "excluded")
        self.assertEqual(rows["a"]["seats"], 2)
        # p1's own D'Hondt has no threshold: a 5, b 4, 2.5 -> a 1, b 1.
        p1 = self.view(d, "p1")
        rows = {r["id"]: r for r in p1["lists"]}
        self.assertEqual({k: r["seats"] for k, r in rows.items()},
                         {"a": 1, "b": 1})
        self.assertNotEqual(rows["b"]["threshold"], "excluded", rows["b"])
        self.assertIsNone(rows["b"].get("threshold_reason"), rows["b"])
        self.assertEqual(self.national(d), {"a": 3, "b": 1})
        # Every registered voter counted: the bounds are the seats.
        self.assertEqual((rows["b"]["seats_min"], rows["b"]["seats_max"]),
                         (1, 1), rows["b"])
        h = d.get("/v1/provinces/p1/history").json()
        self.assertEqual(h["revisions"][0]["seats_moved"], {"a": 1, "b": 1})
        # A dry run in p1 divides by p1's own rule too: b 6 still 1 seat.
        j = self.post(d, "p1", 2, {"a": 5, "b": 6}, dry=True)
        self.assertEqual(j["national_seats"], {})
        j = self.post(d, "p1", 2, {"a": 11, "b": 4}, dry=True)
        self.assertEqual(self.nonzero(j["seats"]),
                         {"a": 1, "b": -1})

    def test_own_allocation_district_seats_feed_the_levelling_tier(self):
        """The levelling tier takes p1's district seats as p1's own rule
        gave them: b keeps its district seat there."""
        e = national_own_alloc()
        e["provinces"][0]["levelling_seats"] = 1
        e["levelling"] = {
            "allocation": {"method": "sainte-lague", "threshold": None},
            "assignment": {"method": "sainte-lague", "scale": "none"}}
        d = self.start(e)
        self.post(d, "p0", 1, {"a": 100, "b": 1})
        self.post(d, "p1", 1, {"a": 5, "b": 4})
        self.assertEqual(self.seats(d, "p1"), {"a": 1, "b": 1})
        # District a 3, b 1.  Tier: 1 + 4 seats by Sainte-Laguë on a 105,
        # b 5: a 5, b 0; b has more district seats than its share and is
        # set aside; a's 4 of the remaining 4 less its 3: 1 levelling seat.
        lb = {c["id"]: c for c in d.get("/v1/leaderboard").json()["coalitions"]}
        self.assertEqual({k: (c["district_seats"], c["levelling_seats"],
                              c["seats"]) for k, c in lb.items()},
                         {"a": (3, 1, 4), "b": (1, 0, 1)})

    def test_history_and_dry_run_follow_own_thresholds(self):
        d = self.start(own_thresholds())
        feeds = [
            # The model's case: the view gives c0 3, c2 1 (c2 exempt).
            ("p2", {"c0": 21, "c1": 0, "c2": 4}),
            # c3 has 25 % of p0: over the 10 % but under its own 30 %.
            ("p0", {"c0": 10, "c1": 40, "c3": 25, "c4": 25}),
            ("p2", {"c0": 21, "c1": 10, "c2": 4, "c4": 40}),
            ("p0", {"c0": 2, "c1": 30, "c3": 34, "c4": 34}),
            ("p2", {"c0": 5, "c1": 30, "c2": 3, "c4": 62}),
            ("p0", {"c0": 1, "c1": 60, "c3": 25, "c4": 14}),
        ]
        rev = {}
        for pid, votes in feeds:
            with self.subTest(province=pid, votes=votes):
                rev[pid] = rev.get(pid, 0) + 1
                before, nat_before = self.seats(d, pid), self.national(d)
                dry = self.post(d, pid, rev[pid], votes, dry=True)
                self.post(d, pid, rev[pid], votes)
                after, nat_after = self.seats(d, pid), self.national(d)
                moved = self.diff(after, before)
                self.assertEqual(self.nonzero(dry["seats"]),
                                 moved)
                self.assertEqual(dry["national_seats"],
                                 self.diff(nat_after, nat_before))
                h = d.get("/v1/provinces/%s/history" % pid).json()
                self.assertEqual(
                    self.nonzero(h["revisions"][-1]["seats_moved"]), moved)
        # The views themselves, worked by hand.  p2 (Sainte-Laguë, 20 % of
        # 100 list votes): c1 30 and c4 62 pass, c0 5 and c2 3 are exempt;
        # quotients c4 62, c1 30, c4 20.7, c4 12.4 -> c4 3, c1 1.
        self.assertEqual(self.seats(d, "p2"), {"c0": 0, "c1": 1, "c2": 0,
                                               "c4": 3})
        # p0 (D'Hondt, 10 % of 100; c3 needs 30 %): c0 1 is exempt, c3 25
        # is out; c1 60, 30, c4 14, c1 20, c1 15 -> c1 4, c4 1.
        self.assertEqual(self.seats(d, "p0"), {"c0": 0, "c1": 4, "c3": 0,
                                               "c4": 1})


if __name__ == "__main__":
    main()
