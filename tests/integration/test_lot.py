#!/usr/bin/env python3
"""Issue 14: lots for pending ties (journaled, durable, in history), posting
safety (list_missing), pending seats counted once, and a history that says
what changed and who posted it.  The election and feeds are test_api's."""
import json
import os
import signal

from harness import CheckedDaemonTest, main
from test_api import ELECTION, NORTH, SOUTH, EAST, TOKEN, AUTH

LOT = "/v1/provinces/east/lot"


class LotTest(CheckedDaemonTest):
    def start(self, data_dir=None):
        d = self.daemon(start=False, env={"TALLYD_INGEST_TOKEN": TOKEN},
                        data_dir=data_dir)
        path = os.path.join(d.tmp, "election.json")
        with open(path, "w") as f:
            json.dump(ELECTION, f)
        d.args = ["--election", path]
        d.start()
        return d

    def post(self, d, province, body, path="results"):
        return d.request("POST", "/v1/provinces/%s/%s" % (province, path),
                         body=body, headers=AUTH)

    def apply(self, d, province, body):
        r = self.post(d, province, body)
        self.assertEqual(r.status, 201, r.body)
        return r.json()["version"]

    def base(self, d):
        for pid, body in (("north", NORTH), ("south", SOUTH), ("east", EAST)):
            self.apply(d, pid, body)

    def lot(self, d, body):
        return d.request("POST", LOT, body=body, headers=AUTH)

    def state(self, d):
        return (d.get("/v1/leaderboard").body, d.get("/v1/provinces/east").body,
                d.get("/v1/provinces/east/history").body)

    def test_a_lot_made_moot_by_a_definition_edit_does_not_stop_the_start(self):
        """Found by the model-based test: a lot drawn, then the definition
        edited (SIGHUP keeps it until the restart) so that the tie is gone.
        The restart rebuilds the tally from the journal under the new
        definition: the lot no longer settles anything.  It used to stop
        every start ("cannot be applied ... --repair", and --repair would
        have cut every later feed); it is kept without effect, with its
        version, and said so."""
        for how in ("stop", "kill"):
            with self.subTest(how=how):
                d = self.start()
                self.base(d)
                r = self.lot(d, {"revision": 1, "order": ["gold", "amber"]})
                self.assertEqual(r.status, 201, r.body)
                later = dict(SOUTH, revision=2)
                v = self.apply(d, "south", later)
                path = os.path.join(d.tmp, "election.json")
                edited = json.loads(json.dumps(ELECTION))
                for pv in edited["provinces"]:
                    if pv["id"] == "east":
                        pv["seats"] = 3         # red, gold, amber: no tie
                with open(path, "w") as f:
                    json.dump(edited, f)
                d.send_signal(signal.SIGHUP)
                self.wait_log(d, "kept until the next restart")
                if how == "stop":
                    self.assertEqual(d.stop(), 0, d.logtext())
                else:
                    d.kill()
                d.start()
                if how == "kill":       # the journal replayed, not a snapshot
                    self.assertIn("no longer settles a tie", d.logtext())
                lb = d.get("/v1/leaderboard").json()
                self.assertEqual(lb["version"], v)
                self.assertEqual((lb["seats"]["total"], lb["seats"]["pending"]),
                                 (11, 0))
                e = d.get("/v1/provinces/east").json()
                self.assertEqual({l["id"]: l["seats"] for l in e["lists"]},
                                 {"red": 1, "gold": 1, "amber": 1})
                self.assertEqual(d.get("/v1/provinces/south").json()["revision"],
                                 2)
                # And the next feed takes the next version, as ever.
                self.assertEqual(self.apply(d, "south", dict(SOUTH, revision=3)),
                                 v + 1)

    def test_a_snapshot_does_not_revive_a_lot_an_edit_made_moot(self):
        """Found by the model-based test (tests/model/fixed/
        moot-lot-snapshot.json): a lot drawn while an edited definition
        waits for the restart, under which the tie it settled is gone.
        Journal replay keeps it without effect, so a later revision that
        ties the same lists again leaves the seat pending.  A clean stop
        wrote the lot into the final snapshot, and loading it applied the
        lot unchecked: the later tie was settled by a draw made for another
        one, so the same log gave other seats after a clean stop than after
        kill -9.  Both must give the journal's answer."""
        definition = {
            "id": "moot-snap", "name": "A lot an edit makes moot",
            "allocation": {"method": "dhondt", "ties": "lot"},
            "coalitions": [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}],
            "provinces": [{"id": "p0", "name": "P0", "seats": 1},
                          {"id": "p1", "name": "P1", "seats": 2}]}
        for how in ("kill", "stop"):
            with self.subTest(how=how):
                d = self.daemon(start=False, env={"TALLYD_INGEST_TOKEN": TOKEN})
                path = os.path.join(d.tmp, "election.json")
                with open(path, "w") as f:
                    json.dump(definition, f)
                d.args = ["--election", path]
                d.start()
                self.apply(d, "p0", {"revision": 1, "votes": {"a": 5, "b": 5}})
                self.assertEqual(d.get("/v1/provinces/p0").json()["pending"][0]
                                 ["tied"], ["a", "b"])
                # Two seats: a 5 and b 5 take one each, no tie to settle.
                edited = json.loads(json.dumps(definition))
                edited["provinces"][0]["seats"] = 2
                with open(path, "w") as f:
                    json.dump(edited, f)
                d.send_signal(signal.SIGHUP)
                self.wait_log(d, "kept until the next restart")
                r = d.request("POST", "/v1/provinces/p0/lot", body={
                    "revision": 1, "order": ["a", "b"]}, headers=AUTH)
                self.assertEqual(r.status, 201, r.body)
                if how == "stop":
                    self.assertEqual(d.stop(), 0, d.logtext())
                else:
                    d.kill()
                d.start()
                # a 10, b 5: a's second quotient (5) ties b's first for the
                # second seat; the lot was drawn for another tie.
                self.apply(d, "p0", {"revision": 2, "votes": {"a": 10, "b": 5}})
                e = d.get("/v1/provinces/p0").json()
                self.assertEqual({l["id"]: l["seats"] for l in e["lists"]},
                                 {"a": 1, "b": 0}, how)
                self.assertEqual([(p["seats"], p["tied"]) for p in e["pending"]],
                                 [(1, ["a", "b"])], how)
                d.stop()

    def test_a_lot_an_edit_made_moot_settles_its_tie_again_under_the_old_definition(self):
        """A lot is a record of the log: made moot by an edit, it is kept
        without effect, and an edit back to the definition it was drawn
        under puts it in force again -- also when the restart in between
        wrote a snapshot (it used to keep only the lots in force, so the
        draw was lost and the seat stayed pending after a clean stop, but
        not after kill -9, which replays the journal)."""
        definition = {
            "id": "moot-back", "name": "A lot made moot and back",
            "allocation": {"method": "dhondt", "ties": "lot"},
            "coalitions": [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}],
            "provinces": [{"id": "p0", "name": "P0", "seats": 1},
                          {"id": "p1", "name": "P1", "seats": 2}]}
        for how in ("kill", "stop"):
            with self.subTest(how=how):
                d = self.daemon(start=False, env={"TALLYD_INGEST_TOKEN": TOKEN})
                path = os.path.join(d.tmp, "election.json")

                def write(defn):
                    with open(path, "w") as f:
                        json.dump(defn, f)
                write(definition)
                d.args = ["--election", path]
                d.start()
                self.apply(d, "p0", {"revision": 1, "votes": {"a": 5, "b": 5}})
                r = d.request("POST", "/v1/provinces/p0/lot", body={
                    "revision": 1, "order": ["b", "a"]}, headers=AUTH)
                self.assertEqual(r.status, 201, r.body)
                drawn = d.get("/v1/provinces/p0").json()
                self.assertEqual({l["id"]: l["seats"] for l in drawn["lists"]},
                                 {"a": 0, "b": 1})
                edited = json.loads(json.dumps(definition))
                edited["provinces"][0]["seats"] = 2     # no tie: moot
                write(edited)
                d.stop()
                d.start()
                e = d.get("/v1/provinces/p0").json()
                self.assertEqual({l["id"]: l["seats"] for l in e["lists"]},
                                 {"a": 1, "b": 1})
                # A record after it, so that a clean stop writes a snapshot.
                self.apply(d, "p1", {"revision": 1, "votes": {"a": 3, "b": 1}})
                if how == "stop":
                    self.assertEqual(d.stop(), 0, d.logtext())
                else:
                    d.kill()
                write(definition)
                d.start()
                e = d.get("/v1/provinces/p0").json()
                self.assertEqual({l["id"]: l["seats"] for l in e["lists"]},
                                 {"a": 0, "b": 1}, how)
                self.assertEqual(e["pending"], [], how)
                d.stop()

    def test_lot_resolves_the_pending_seat_and_survives_restarts(self):
        d = self.start()
        self.base(d)
        lb = d.get("/v1/leaderboard").json()
        self.assertEqual(lb["seats"]["pending"], 1)
        # Counted once: rows hold firm seats; tied_for is not summed.
        self.assertEqual(sum(c["seats"] for c in lb["coalitions"]) +
                         lb["seats"]["pending"], 10)
        r = self.lot(d, {"revision": 1, "order": ["gold", "amber"]})
        self.assertEqual(r.status, 201, r.body)
        out = r.json()
        self.assertEqual((out["status"], out["province"], out["revision"]),
                         ("applied", "east", 1))
        self.assertEqual(out["version"], lb["version"] + 1)
        e = d.get("/v1/provinces/east").json()
        self.assertEqual(e["pending"], [])
        self.assertEqual({l["id"]: l["seats"] for l in e["lists"]},
                         {"red": 1, "gold": 1, "amber": 0})
        self.assertEqual((e["lot"]["order"], e["lot"]["in_force"],
                          e["lot"]["stale"], e["lot"]["by"]),
                         (["gold", "amber"], True, False, "environment"))
        lb = d.get("/v1/leaderboard").json()
        self.assertEqual((lb["seats"]["allocated"], lb["seats"]["pending"]),
                         (10, 0))
        self.assertEqual({c["id"]: c["tied_for"] for c in lb["coalitions"]
                          if c["tied_for"]}, {})
        # The same lot again is a duplicate; another order a conflict.
        r = self.lot(d, {"revision": 1, "order": ["gold", "amber"]})
        self.assertEqual((r.status, r.json()["status"]), (200, "duplicate"))
        self.assertError(self.lot(d, {"revision": 1,
                                      "order": ["amber", "gold"]}),
                         409, "lot_conflict")
        h = d.get("/v1/provinces/east/history").json()
        self.assertEqual(h["revisions"][0]["lots"][0]["order"],
                         ["gold", "amber"])
        self.assertEqual(h["revisions"][0]["by"], "environment")
        before = self.state(d)
        # From the journal (a crash: no final snapshot) ...
        d.kill()
        d2 = self.start(data_dir=d.data_dir)
        self.assertEqual(self.state(d2), before)
        # ... and from the snapshot a clean stop writes.
        self.assertEqual(d2.stop(), 0)
        self.assertTrue(any(n.endswith(".snap")
                            for n in os.listdir(d.data_dir)))
        d3 = self.start(data_dir=d.data_dir)
        self.assertEqual(self.state(d3), before)

    def test_a_lot_moves_the_levelling_tier_like_a_fresh_count(self):
        """Issue 21: a lot settles a district seat, and the national
        levelling tier (Norway) must be computed again, live, at replay and
        from a snapshot: the same figures as posting the same votes anew."""
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, "..", "data", "elections", "no-2021",
                            "election.json")
        d = self.daemon(start=False, env={"TALLYD_INGEST_TOKEN": TOKEN})
        d.args = ["--election", path]
        d.start()
        votes = {"A": 1000, "H": 1000, "SV": 300}
        r = self.post(d, "01", {"revision": 1, "votes": votes})
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(d.get("/v1/provinces/01").json()["pending"][0]
                         ["tied"], ["A", "H"])
        r = self.post(d, "01", {"revision": 1, "order": ["A", "H"]}, "lot")
        self.assertEqual(r.status, 201, r.body)

        def seats(d):
            lb = d.get("/v1/leaderboard").json()
            return {c["id"]: c["seats"] for c in lb["coalitions"]
                    if c["seats"]}

        after_lot = seats(d)
        state = (d.get("/v1/leaderboard").body,
                 d.get("/v1/provinces/01?explain=1").body)
        # A fresh computation of the very same votes (the lot stays in
        # force for the same tie) gives the figures the lot must give.
        fresh = self.daemon(start=False, env={"TALLYD_INGEST_TOKEN": TOKEN})
        fresh.args = ["--election", path]
        fresh.start()
        self.assertEqual(self.post(fresh, "01", {"revision": 1, "votes":
                                                 votes}).status, 201)
        self.assertEqual(self.post(fresh, "01", {"revision": 1, "order":
                                                 ["A", "H"]}, "lot").status,
                         201)
        self.assertEqual(self.post(fresh, "01", {"revision": 2, "votes":
                                                 votes}).status, 201)
        self.assertEqual(seats(fresh), {"A": 12, "H": 12, "SV": 3})
        self.assertEqual(after_lot, {"A": 12, "H": 12, "SV": 3})
        # Replayed from the journal (kill: no snapshot) ...
        d.kill()
        d2 = self.daemon(start=False, env={"TALLYD_INGEST_TOKEN": TOKEN},
                         data_dir=d.data_dir)
        d2.args = ["--election", path]
        d2.start()
        self.assertEqual((d2.get("/v1/leaderboard").body,
                          d2.get("/v1/provinces/01?explain=1").body), state)
        # ... and restored from the snapshot a clean stop writes.
        self.assertEqual(d2.stop(), 0)
        d3 = self.daemon(start=False, env={"TALLYD_INGEST_TOKEN": TOKEN},
                         data_dir=d.data_dir)
        d3.args = ["--election", path]
        d3.start()
        self.assertEqual((d3.get("/v1/leaderboard").body,
                          d3.get("/v1/provinces/01?explain=1").body), state)

    def test_post_query_parameters_are_strict(self):
        """Issue 21: a misspelt or malformed query parameter on a POST
        applied for real; the lot route ignored ?dry_run=1 altogether."""
        d = self.start()
        self.base(d)
        before = self.state(d)
        bad = ("dry-run=1", "dryrun=1", "dry_run=on", "dry_run=2",
               "dry_run=", "dry_run", "dry_run=0&dry_run=1",
               "dry_run=1&dry_run=1", "dry_run=1&x=1")
        south2 = dict(SOUTH, revision=2)
        for q in bad:
            for path, body in (("/v1/provinces/south/results", south2),
                               ("/v1/results",
                                {"results": [dict(south2,
                                                  province="south")]}),
                               (LOT, {"revision": 1,
                                      "order": ["gold", "amber"]})):
                r = d.request("POST", path + "?" + q, body=body,
                              headers=AUTH)
                self.assertError(r, 400, "bad_query")
                msg = r.json()["error"]["message"]
                self.assertTrue("dry_run" in msg, msg)
        self.assertEqual(self.state(d), before)
        # A dry run of the lot says what it would do and changes nothing.
        version = d.get("/v1/leaderboard").json()["version"]
        r = d.request("POST", LOT + "?dry_run=1", headers=AUTH,
                      body={"revision": 1, "order": ["gold", "amber"]})
        self.assertEqual(r.status, 200, r.body)
        out = r.json()
        self.assertEqual((out["dry_run"], out["status"], out["province"],
                          out["version"], out["seats"], out["pending"]),
                         (True, "applied", "east", version + 1,
                          {"gold": 1}, 0))
        self.assertEqual(out["national_seats"], {"gold": 1})
        self.assertEqual(self.state(d), before)
        # ... and a refused lot is refused the same way.
        self.assertError(d.request("POST", LOT + "?dry_run=true",
                                   headers=AUTH,
                                   body={"revision": 1,
                                         "order": ["gold", "red"]}),
                         422, "lists_not_tied")
        # dry_run=0 is a real post.
        r = d.request("POST", LOT + "?dry_run=0", headers=AUTH,
                      body={"revision": 1, "order": ["gold", "amber"]})
        self.assertEqual((r.status, r.json()["version"]), (201, version + 1))
        r = d.request("POST", LOT + "?dry_run=1", headers=AUTH,
                      body={"revision": 1, "order": ["gold", "amber"]})
        self.assertEqual((r.status, r.json()["status"]), (200, "duplicate"))

    def test_bad_lots_change_nothing(self):
        d = self.start()
        self.assertError(self.lot(d, {"revision": 1, "order": ["gold",
                                                               "amber"]}),
                         422, "unknown_revision", "/revision")
        self.base(d)
        self.apply(d, "east", dict(EAST, revision=2))
        before = self.state(d)
        for body, status, code, field in (
                ({"revision": 1, "order": ["gold", "amber"]}, 409,
                 "stale_revision", "/revision"),
                ({"revision": 3, "order": ["gold", "amber"]}, 422,
                 "unknown_revision", "/revision"),
                ({"revision": 2, "order": ["gold", "red"]}, 422,
                 "lists_not_tied", "/order"),
                ({"revision": 2, "order": ["gold"]}, 422, "out_of_range",
                 "/order"),
                ({"revision": 2, "order": ["gold", "gold"]}, 422,
                 "duplicate_list", "/order/1"),
                ({"revision": 2, "order": ["gold", "nobody"]}, 422,
                 "unknown_list", "/order/1"),
                ({"revision": 2, "order": ["gold", "blue"]}, 422,
                 "unknown_list", "/order/1"),
                ({"revision": 2, "order": "gold"}, 422, "wrong_type",
                 "/order"),
                ({"revision": 2}, 422, "missing_field", "/order"),
                ({"revision": 2, "order": ["gold", "amber"], "x": 1}, 422,
                 "unknown_field", "/x")):
            self.assertError(self.lot(d, body), status, code, field)
        r = d.request("POST", LOT, body={"revision": 2,
                                         "order": ["gold", "amber"]})
        self.assertEqual(r.status, 401)
        # No tie pending in the north.
        self.assertError(self.post(d, "north", {"revision": 1, "order": [
            "red", "blue"]}, path="lot"), 409, "no_tie_pending")
        self.assertEqual(self.state(d), before)

    def test_a_later_count_that_changes_the_tie_makes_the_lot_stale(self):
        d = self.start()
        self.base(d)
        self.assertEqual(self.lot(d, {"revision": 1, "order": [
            "amber", "gold"]}).status, 201)
        # A revision that keeps the same tie keeps the lot in force.
        self.apply(d, "east", dict(EAST, revision=2, blank=5))
        e = d.get("/v1/provinces/east").json()
        self.assertEqual((e["pending"], e["lot"]["in_force"]), ([], True))
        self.assertEqual({l["id"]: l["seats"] for l in e["lists"]},
                         {"red": 1, "gold": 0, "amber": 1})
        # red 800: quotients 800, 400 (red) = 400 (gold) = 400 (amber).
        self.apply(d, "east", dict(EAST, revision=3, votes=dict(
            EAST["votes"], red=800)))
        e = d.get("/v1/provinces/east").json()
        self.assertEqual((e["lot"]["stale"], e["lot"]["revision"]), (True, 1))
        self.assertEqual(sorted(e["pending"][0]["tied"]),
                         ["amber", "gold", "red"])
        self.assertEqual(d.get("/v1/leaderboard").json()["seats"]["pending"],
                         1)

    def test_partial_repost_is_refused(self):
        d = self.start()
        self.base(d)
        before = self.state(d) + (d.get("/v1/provinces/north").body,)
        r = self.post(d, "north", {"revision": 2, "votes": {"red": 1001}})
        err = self.assertError(r, 422, "list_missing", "/votes/blue")
        for l in ("blue", "green", "zinc"):
            self.assertIn(l, err["message"])
        # In a batch, the pointer names the entry.
        r = d.request("POST", "/v1/results", body={"results": [
            {"province": "south", "revision": 2, "votes": SOUTH["votes"]},
            {"province": "north", "revision": 2, "votes": {"red": 1001}}]},
            headers=AUTH)
        self.assertError(r, 422, "list_missing", "/results/1/votes/blue")
        self.assertEqual(self.state(d) + (d.get("/v1/provinces/north").body,),
                         before)
        # Saying 0 is a correction to zero.
        self.apply(d, "north", {"revision": 2, "votes": {
            "red": 1001, "blue": 0, "green": 0, "zinc": 0}})

    def test_history_says_what_changed_and_who(self):
        d = self.start()
        self.apply(d, "north", NORTH)
        self.apply(d, "north", dict(NORTH, revision=2, blank=70, invalid=10,
                                    status="final",
                                    stations={"reporting": 50, "total": 50},
                                    votes=dict(NORTH["votes"], blue=1100)))
        h = d.get("/v1/provinces/north/history").json()
        r1, r2 = h["revisions"]
        self.assertEqual(r1["by"], "environment")
        self.assertEqual(r1["delta"]["status"], {"from": None, "to": "partial"})
        self.assertEqual(r1["seats_moved"], {"red": 3, "blue": 2})
        self.assertEqual(r2["changed"], {"blue": 500})
        self.assertEqual(r2["delta"], {
            "blank": 10, "invalid": -5, "stations": {"reporting": 10},
            "status": {"from": "partial", "to": "final"}})
        # blue 1100: 1100, 1000 (red), 550, 500 (red), 366.7 -> blue 3, red 2
        self.assertEqual(r2["seats_moved"], {"red": -1, "blue": 1})
        self.assertEqual(r2["lots"], [])

    def test_dry_run_changes_nothing_and_predicts_the_post(self):
        d = self.start()
        self.base(d)
        journal = lambda: sum(os.path.getsize(os.path.join(d.data_dir, n))
                              for n in os.listdir(d.data_dir)
                              if n.startswith("journal-"))
        before, size = self.state(d), journal()
        lb0 = d.get("/v1/leaderboard").json()
        # gold 401 wins east's tied seat; red loses one in the north.
        east = dict(EAST, revision=2, votes=dict(EAST["votes"], gold=401))
        north = dict(NORTH, revision=2, votes=dict(NORTH["votes"], blue=1100))
        r = d.request("POST", "/v1/provinces/east/results?dry_run=1",
                      body=east, headers=AUTH)
        self.assertEqual(r.status, 200, r.body)
        one = r.json()
        self.assertEqual((one["dry_run"], one["status"], one["province"],
                          one["revision"], one["version"], one["votes"],
                          one["seats"], one["pending"],
                          one["national_seats"]),
                         (True, "applied", "east", 2, lb0["version"] + 1,
                          {"gold": 1}, {"gold": 1}, 0, {"gold": 1}))
        r = d.request("POST", "/v1/results?dry_run=1", headers=AUTH,
                      body={"results": [dict(east, province="east"),
                                        dict(north, province="north")]})
        self.assertEqual(r.status, 200, r.body)
        batch = r.json()
        self.assertEqual(batch["national_seats"],
                         {"gold": 1, "blue": 1, "red": -1})
        self.assertEqual(batch["results"][1]["seats"],
                         {"blue": 1, "red": -1})
        # Refusals are the real ones, and a dry run of them changes nothing.
        r = d.request("POST", "/v1/provinces/north/results?dry_run=1",
                      body={"revision": 2, "votes": {"red": 1}}, headers=AUTH)
        self.assertError(r, 422, "list_missing", "/votes/blue")
        r = d.request("POST", "/v1/provinces/north/results?dry_run=1",
                      body=NORTH, headers=AUTH)
        self.assertEqual(r.json()["status"], "duplicate")
        self.assertEqual((self.state(d), journal()), (before, size))
        # The real post does what was predicted.
        r = d.request("POST", "/v1/results", headers=AUTH,
                      body={"results": [dict(east, province="east"),
                                        dict(north, province="north")]})
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.json()["version"], batch["version"])
        lb1 = d.get("/v1/leaderboard").json()
        seats0 = {c["id"]: c["seats"] for c in lb0["coalitions"]}
        seats1 = {c["id"]: c["seats"] for c in lb1["coalitions"]}
        self.assertEqual({k: seats1[k] - seats0[k] for k in seats0
                          if seats1[k] != seats0[k]}, batch["national_seats"])
        h = d.get("/v1/provinces/north/history").json()
        self.assertEqual(h["revisions"][1]["seats_moved"],
                         batch["results"][1]["seats"])
        # One info line per applied feed; refusals at info too.
        self.wait_log(d, "applied north revision 2 as version %d (token "
                      "environment)" % batch["version"])
        self.wait_log(d, "refused POST /v1/provinces/north/results: 422 "
                      "list_missing")

    def test_every_problem_of_a_feed_at_once(self):
        d = self.start()
        r = self.post(d, "north", {"revision": 0, "x": 1, "status": "done",
                                   "votes": {"nobody": 1, "red": -1,
                                             "blue": 5},
                                   "stations": {"reporting": 9, "total": 2}})
        err = self.assertError(r, 422, r.json()["error"]["code"])
        body = r.json()
        got = {(x["code"], x["field"]) for x in body["errors"]}
        self.assertEqual(got, {
            ("unknown_field", "/x"), ("out_of_range", "/revision"),
            ("unknown_list", "/votes/nobody"), ("out_of_range", "/votes/red"),
            ("out_of_range", "/stations/reporting"),
            ("invalid_value", "/status")})
        # The first is also the single error of the compatible shape.
        self.assertEqual((err["code"], err["field"]),
                         (body["errors"][0]["code"], body["errors"][0]["field"]))
        r = d.request("POST", "/v1/results", headers=AUTH, body={"results": [
            {"province": "north", "revision": 1, "votes": {"red": "1"}},
            {"province": "south", "revision": 1, "votes": {"red-s": 1}},
            {"province": "east", "votes": {"red": 1}, "blank": -1}]})
        self.assertError(r, 422, "wrong_type", "/results/0/votes/red")
        self.assertEqual({(x["code"], x["field"]) for x in r.json()["errors"]},
                         {("wrong_type", "/results/0/votes/red"),
                          ("missing_field", "/results/2/revision"),
                          ("out_of_range", "/results/2/blank")})
        # One problem: the shape of before, no "errors".
        r = self.post(d, "north", {"revision": 1, "votes": {"nobody": 1}})
        self.assertError(r, 422, "unknown_list", "/votes/nobody")
        self.assertNotIn("errors", r.json())
        self.assertEqual(d.get("/v1/leaderboard").json()["version"], 0)


if __name__ == "__main__":
    main()
