#!/usr/bin/env python3
"""Race calls (issue 28), through the running daemon: the certain calls the
exact bounds prove, on every real election replayed in a random province
order with corrections (none contradicted by the final result; the national
first place called at the version it first became certain, cross-checked
against the leaderboard's bounds at every version; every call delivered as
an SSE "call" event), declared calls and their retraction (bad input
changes nothing; the calls survive a restart and a kill -9), and a 3-node
cluster that sees the same calls.
"""
import concurrent.futures
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import (ELECTIONS, TALLYD, CheckedDaemonTest, DaemonTest, main,
                     seed)

TALLYCTL = os.environ.get("TALLYCTL", "tallyctl")
TOKEN = "ingest-token-for-the-tests-0123456789"
AUTH = {"Authorization": "Bearer " + TOKEN}

DATASETS = ("es-2016-06", "es-2019-04", "es-2019-11", "es-2019-11-provisional",
            "no-2009", "no-2013", "no-2017", "no-2021", "no-2025",
            "pl-2015", "pl-2019", "pl-2023", "sk-2020", "cz-2017")

FIELDS = {"id", "kind", "scope", "province", "what", "coalition", "version",
          "at", "note", "retracted"}


def load(ds, name):
    with open(os.path.join(ELECTIONS, ds, name)) as f:
        return json.load(f)


def electorate(entry, rng):
    """A registered electorate for entry: its ballots and a few who did not
    vote, so that the bounds know how many ballots may still come."""
    return sum(entry["votes"].values()) + entry.get("blank", 0) + \
        entry.get("invalid", 0) + rng.randrange(0, 2000)


def corrupted(entry, rng, registered=None):
    """A first count that a correction will replace: some votes missing."""
    bad = json.loads(json.dumps(entry))
    bad["revision"] = 1
    bad["status"] = "partial"
    if registered is not None:
        bad["registered"] = registered
    for k in bad["votes"]:
        bad["votes"][k] = max(0, bad["votes"][k] - rng.randrange(0, 500))
    return bad


def certain_leader(lb):
    """The leaderboard's own answer: the coalition whose fewest seats exceed
    every other's most, or None."""
    cs = lb["coalitions"]
    lead = max(cs, key=lambda c: c["seats_min"])
    if all(lead["seats_min"] > c["seats_max"] for c in cs if c is not lead):
        return lead["id"]
    return None


class Reader:
    """The event stream read by curl (a process of its own, so that it
    keeps up however busy the tests' interpreter is: a stream that cannot
    take a version is sent a snapshot instead, by design) into a file,
    parsed on demand."""

    def __init__(self, port, tmp):
        self.path = os.path.join(tmp, "events-%d.txt" % time.monotonic_ns())
        self.out = open(self.path, "wb")
        self.proc = subprocess.Popen(
            ["curl", "-sN", "--max-time", "900",
             "http://127.0.0.1:%d/v1/events" % port],
            stdout=self.out, stderr=subprocess.DEVNULL)

    def status(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.snapshots():
                return 200
            time.sleep(0.02)
        return None

    def start(self):
        pass

    def events(self):
        with open(self.path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        out = []
        for block in text.split("\n\n")[:-1]:
            ev = {}
            for line in block.split("\n"):
                k, _, v = line.partition(":")
                v = v[1:] if v.startswith(" ") else v
                if k == "data":
                    ev["data"] = ev.get("data", "") + v
                elif k:
                    ev[k] = v
            out.append(ev)
        return out

    def wait_version(self, version, timeout=20):
        """Until the stream has carried `version` (its id "<n>-<digest>"):
        the replay waits for it after each post, so that a reader on a
        loaded machine is never so far behind that the stream sends it a
        snapshot in place of the versions (and their calls) it missed."""
        mark = ("\nid: %d-" % version).encode()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.path, "rb") as f:
                if mark in f.read():
                    return True
            time.sleep(0.01)
        return False

    def calls(self):
        return [json.loads(e["data"]) for e in self.events()
                if e.get("event") == "call"]

    def snapshots(self):
        return [e for e in self.events() if e.get("event") == "snapshot"]

    def finish(self):
        self.proc.terminate()
        self.proc.wait()
        self.out.close()


class Calls(CheckedDaemonTest):
    def start(self, definition, **kw):
        return self.daemon(args=["--election", definition],
                           env={"TALLYD_INGEST_TOKEN": TOKEN}, **kw)

    def post(self, d, entry):
        body = dict(entry)
        pid = body.pop("province")
        r = d.request("POST", "/v1/provinces/%s/results" % pid, body=body,
                      headers=AUTH)
        self.assertIn(r.status, (200, 201), r.body)
        return r

    def calls(self, d):
        r = d.get("/v1/calls")
        self.assertEqual(r.status, 200, r.body)
        return r.json()

    # --- certain calls on every real election -----------------------------

    def replay_checked(self, ds, rng):
        """ds replayed (each province first a partial count with votes
        missing, then corrected to the official count, corrections
        interleaved), the leaderboard read after every version.  Returns
        the daemon, the first version at which the leaderboard's bounds
        made a first place certain and whose, and the SSE reader."""
        d = self.start(os.path.join(ELECTIONS, ds, "election.json"))
        reader = Reader(d.port, d.tmp)
        self.assertEqual(reader.status(), 200)
        reader.start()
        entries = load(ds, "results.json")["results"]
        rng.shuffle(entries)
        later, first = [], None
        lb = d.get("/v1/leaderboard").json()

        def step(entry):
            nonlocal first, lb
            r = self.post(d, entry)
            if r.status != 201:
                return
            lb = d.get("/v1/leaderboard").json()
            self.assertEqual(lb["version"], r.json()["version"])
            self.assertTrue(reader.wait_version(lb["version"]),
                            (ds, lb["version"]))
            lead = certain_leader(lb)
            if lead is not None and first is None:
                first = (lb["version"], lead)
            # Once certain, the leaderboard never says otherwise.
            if first is not None:
                self.assertEqual(lead, first[1], (ds, lb["version"]))

        for e in entries:
            reg = electorate(e, rng)
            step(corrupted(e, rng, reg))
            later.append(dict(e, revision=2, registered=reg))
            if rng.random() < 0.5:
                step(later.pop(rng.randrange(len(later))))
        for e in later:
            step(e)
        return d, first, reader

    def check_against_final(self, d, ds, calls):
        lb = d.get("/v1/leaderboard").json()
        majority = lb["seats"]["majority"]
        final = {c["id"]: c["seats"] for c in lb["coalitions"]}
        for c in calls:
            self.assertEqual(set(c) & FIELDS, FIELDS, c)
            self.assertEqual(c["kind"], "certain", c)
            # Never contradicted: none had to be taken back.
            self.assertFalse(c["retracted"], (ds, c))
            if c["what"] == "seats":
                p = d.get("/v1/provinces/" + c["province"]).json()
                got = {}
                for row in p["lists"]:
                    k = row.get("coalition", row["id"])
                    if row["seats"]:
                        got[k] = got.get(k, 0) + row["seats"]
                self.assertEqual(got, c["seats"], (ds, c))
            elif c["what"] == "first_place":
                self.assertEqual(c["scope"], "national")
                rest = [n for k, n in final.items() if k != c["coalition"]]
                self.assertTrue(all(final[c["coalition"]] > n for n in rest),
                                (ds, c, final))
            else:
                self.assertGreaterEqual(final[c["coalition"]], majority,
                                        (ds, c))

    def test_certain_calls_on_every_real_election(self):
        """On every real election, replayed in a random province order with
        corrections: 0 certain calls contradicted by the final result, the
        national first place called at the very version the leaderboard's
        bounds first made it certain, every province's seats called once the
        province is settled, every call delivered as an SSE event."""
        rng = random.Random(seed("calls"))
        total = 0
        for ds in DATASETS:
            with self.subTest(ds=ds):
                d, first, reader = self.replay_checked(ds, rng)
                got = self.calls(d)
                calls = got["calls"]
                total += len(calls)
                if os.environ.get("CALLS_STATS"):
                    print(ds, "calls", len(calls), "first place", first,
                          "of", got["version"], "versions; majority",
                          [(c["coalition"], c["version"]) for c in calls
                           if c["what"] == "majority"])
                self.check_against_final(d, ds, calls)
                fp = [c for c in calls if c["what"] == "first_place"]
                if first is None:
                    self.assertEqual(fp, [], ds)
                else:
                    self.assertEqual(len(fp), 1, (ds, fp))
                    self.assertEqual((fp[0]["version"], fp[0]["coalition"]),
                                     first, ds)
                # Every province is final: each one's seats are called.
                n_prov = len(load(ds, "election.json")["provinces"])
                seats = {c["province"] for c in calls if c["what"] == "seats"}
                self.assertEqual(len(seats), n_prov, ds)
                # Ids name each call by its version (and its place among
                # the certain calls of that version), versions never go
                # back.
                self.assertEqual(len({c["id"] for c in calls}), len(calls))
                for c in calls:
                    self.assertTrue(c["id"].startswith("c%d." % c["version"])
                                    if c["kind"] == "certain" else
                                    c["id"] == "d%d" % c["version"], c)
                vs = [c["version"] for c in calls]
                self.assertEqual(vs, sorted(vs))
                # Every call arrived by SSE, once, as GET shows it.
                deadline = time.monotonic() + 10
                while len(reader.calls()) < len(calls) and \
                        time.monotonic() < deadline:
                    time.sleep(0.05)
                reader.finish()
                self.assertEqual(len(reader.snapshots()), 1, ds)
                self.assertEqual(reader.calls(), calls, ds)
                # The same calls after a restart (snapshot) and after a
                # kill -9 (journal replay).
                d.stop()
                d.start()
                self.assertEqual(self.calls(d), got, ds)
                d.kill()
                d.start()
                self.assertEqual(self.calls(d), got, ds)
                d.stop()
        self.assertGreater(total, 0)

    # --- declared calls -----------------------------------------------------

    def test_declared_calls_retract_restart_kill(self):
        """Declared calls and their retraction: journal records with their
        own versions; bad input is refused with a stable code and changes
        nothing; everything survives a clean restart (snapshot) and a
        kill -9 (journal), and a retracted call is kept."""
        ds = "es-2019-04"
        d = self.start(os.path.join(ELECTIONS, ds, "election.json"))
        entries = load(ds, "results.json")["results"]
        self.post(d, entries[0])        # final: its seats are certain
        for e in entries[1:3]:
            self.post(d, corrupted(e, random.Random(1)))
        pid = entries[0]["province"]
        lead = max(entries[0]["votes"], key=entries[0]["votes"].get)
        base = self.calls(d)
        v0 = base["version"]

        def declare(body, status=201):
            r = d.request("POST", "/v1/calls", body=body, headers=AUTH)
            self.assertEqual(r.status, status, r.body)
            return r.json()

        # A call changes no province's view: its ETag stays.
        first_pid = load(ds, "election.json")["provinces"][0]["id"]
        tag = d.get("/v1/provinces/" + first_pid).header("ETag")
        a = declare({"scope": "province", "province": pid,
                     "what": "first_place", "coalition": lead,
                     "note": "Decision desk: Álava to %s" % lead})
        self.assertEqual(a["version"], v0 + 1)
        self.assertEqual(a["call"]["kind"], "declared")
        self.assertEqual(a["call"]["version"], v0 + 1)
        self.assertEqual(a["call"]["province"], pid)
        self.assertEqual(a["call"]["note"], "Decision desk: Álava to %s" % lead)
        self.assertFalse(a["call"]["retracted"])
        b = declare({"scope": "national", "what": "majority",
                     "coalition": lead})
        c = declare({"scope": "province", "province": pid, "what": "seats"})
        self.assertEqual(c["version"], v0 + 3)
        self.assertEqual(d.get("/v1/provinces/" + first_pid).header("ETag"),
                         tag)
        # The leaderboard moves with the version like for a lot.
        self.assertEqual(d.get("/v1/leaderboard").json()["version"], v0 + 3)
        before = self.calls(d)

        bad = [
            ({"scope": "county", "what": "seats"}, 422, "bad_value"),
            ({"scope": "national"}, 422, "missing_field"),
            ({"scope": "national", "what": "seats"}, 422, "bad_call"),
            ({"scope": "province", "province": pid, "what": "majority",
              "coalition": lead}, 422, "bad_call"),
            ({"scope": "national", "what": "first_place"}, 422,
             "coalition_required"),
            ({"scope": "province", "province": pid, "what": "seats",
              "coalition": lead}, 422, "coalition_not_allowed"),
            ({"scope": "province", "province": "nowhere", "what": "seats"},
             422, "unknown_province"),
            ({"scope": "province", "what": "seats"}, 422,
             "province_required"),
            ({"scope": "national", "province": pid, "what": "first_place",
              "coalition": lead}, 422, "province_not_allowed"),
            ({"scope": "national", "what": "first_place",
              "coalition": "nobody"}, 422, "unknown_coalition"),
            ({"scope": "national", "what": "first_place", "coalition": lead,
              "note": "x" * 501}, 422, "note_too_long"),
            ({"scope": "national", "what": "first_place", "coalition": lead,
              "colour": "red"}, 422, "unknown_field"),
            ({"scope": 1, "what": "seats"}, 422, "wrong_type"),
            ([1, 2], 422, "wrong_type"),
        ]
        for body, status, code in bad:
            r = d.request("POST", "/v1/calls", body=body, headers=AUTH)
            self.assertError(r, status, code)
        r = d.request("POST", "/v1/calls", body=b"{not json",
                      headers=dict(AUTH, **{"Content-Type":
                                            "application/json"}))
        self.assertError(r, 400, "invalid_json")
        r = d.request("POST", "/v1/calls", body={"scope": "national",
                                                 "what": "majority",
                                                 "coalition": lead})
        self.assertEqual(r.status, 401, r.body)
        for path, status, code in (
                ("/v1/calls/999/retract", 404, "unknown_call"),
                ("/v1/calls/x/retract", 404, "unknown_call"),
                ("/v1/calls/1/retract", 404, "unknown_call"),
                ("/v1/calls/%s/retract" % base["calls"][0]["id"], 409,
                 "not_declared")):
            r = d.request("POST", path, body={}, headers=AUTH)
            self.assertError(r, status, code)
        r = d.request("POST", "/v1/calls/%s/retract" % b["call"]["id"],
                      body={"why": "x"}, headers=AUTH)
        self.assertError(r, 422, "unknown_field")
        r = d.request("GET", "/v1/calls/1/retract")
        self.assertEqual(r.status, 405, r.body)
        # A dry run checks and changes nothing.
        r = d.request("POST", "/v1/calls?dry_run=1", body={
            "scope": "national", "what": "majority", "coalition": lead},
            headers=AUTH)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["status"], "valid")
        self.assertEqual(self.calls(d), before)

        r = d.request("POST", "/v1/calls/%s/retract" % b["call"]["id"],
                      body={}, headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        got = r.json()
        self.assertEqual(got["version"], v0 + 4)
        self.assertTrue(got["call"]["retracted"])
        self.assertEqual(got["call"]["retracted_version"], v0 + 4)
        self.assertEqual(got["call"]["version"], v0 + 2)
        # A retried retraction (the answer lost on the way): 200
        # duplicate, the call as it stands, nothing recorded.
        r = d.request("POST", "/v1/calls/%s/retract" % b["call"]["id"],
                      body={}, headers=AUTH)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["status"], "duplicate")
        self.assertEqual(r.json()["version"], v0 + 4)
        self.assertEqual(r.json()["call"], got["call"])
        after = self.calls(d)
        self.assertEqual(after["version"], v0 + 4)
        self.assertEqual(len(after["calls"]), len(before["calls"]))
        kept = [x for x in after["calls"] if x["id"] == b["call"]["id"]]
        self.assertEqual(len(kept), 1)
        self.assertTrue(kept[0]["retracted"])
        # /metrics counts GET and POST /v1/calls apart: no series twice.
        lines = [l for l in d.get("/metrics").body.decode().splitlines()
                 if l.startswith("tallyd_requests_total{")]
        keys = [l.rsplit(" ", 1)[0] for l in lines]
        self.assertEqual(len(keys), len(set(keys)), keys)
        self.assertIn('tallyd_requests_total{route="/v1/calls",'
                      'status="200"}', keys)
        self.assertIn('tallyd_requests_total{route="POST /v1/calls",'
                      'status="201"}', keys)
        # A kill -9 before any clean stop: the journal alone (the
        # duplicates above wrote nothing: the version is the same).
        d.kill()
        d.start()
        self.assertEqual(self.calls(d), after)
        self.assertEqual(d.get("/v1/provinces/" + first_pid).header("ETag"),
                         tag)
        # A clean stop writes a snapshot (the calls in its header).
        d.stop()
        d.start()
        self.assertEqual(self.calls(d), after)
        self.assertEqual(d.get("/v1/provinces/" + first_pid).header("ETag"),
                         tag)
        # Then a snapshot and a journal tail after it.
        c2 = declare({"scope": "national", "what": "first_place",
                      "coalition": lead})
        final = self.calls(d)
        self.assertEqual(final["calls"][-1]["id"], c2["call"]["id"])
        d.kill()
        d.start()
        self.assertEqual(self.calls(d), final)

    def test_a_retried_declaration_is_a_duplicate(self):
        """POST /v1/calls is idempotent: a declaration repeating a call that
        stands (same scope, province, what, coalition and note) answers 200
        "duplicate" with that call and records nothing, sent again or many
        at once; another note, or the same call after its retraction, is a
        new call.  A restart finds one call."""
        ds = "es-2019-04"
        d = self.start(os.path.join(ELECTIONS, ds, "election.json"))
        entries = load(ds, "results.json")["results"]
        self.post(d, corrupted(entries[0], random.Random(1)))
        lead = max(entries[0]["votes"], key=entries[0]["votes"].get)
        body = {"scope": "national", "what": "first_place",
                "coalition": lead, "note": "desk A"}
        r = d.request("POST", "/v1/calls", body=body, headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        made = r.json()
        v = made["version"]
        r = d.request("POST", "/v1/calls", body=body, headers=AUTH)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json(), {"status": "duplicate", "version": v,
                                    "call": made["call"]})
        # Eight at once, each on its own connection: none is recorded.
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            rs = list(pool.map(lambda _: d.request(
                "POST", "/v1/calls", body=body, headers=AUTH), range(8)))
        self.assertEqual([x.status for x in rs], [200] * 8)
        self.assertEqual(self.calls(d)["version"], v)
        # Another note is another call; two new ones sent at once make one.
        other = dict(body, note="desk B")
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            rs = list(pool.map(lambda _: d.request(
                "POST", "/v1/calls", body=other, headers=AUTH), range(2)))
        self.assertEqual(sorted(x.status for x in rs), [200, 201],
                         [x.body for x in rs])
        self.assertEqual(self.calls(d)["version"], v + 1)
        declared = [c for c in self.calls(d)["calls"]
                    if c["kind"] == "declared"]
        self.assertEqual(len(declared), 2, declared)
        # Retracted, the same call may be declared again.
        r = d.request("POST", "/v1/calls/%s/retract" % made["call"]["id"],
                      body={}, headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        r = d.request("POST", "/v1/calls", body=body, headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.json()["version"], v + 3)
        after = self.calls(d)
        d.kill()
        d.start()
        self.assertEqual(self.calls(d), after)
        r = d.request("POST", "/v1/calls", body=body, headers=AUTH)
        self.assertEqual(r.json()["status"], "duplicate", r.body)
        # The log replays with its calls: a retraction names its call by
        # the id the declaration took at its version (tallyctl verify
        # failed there with unknown_call before it derived the calls).
        key = d.get("/log/key").body.decode().strip()
        p = subprocess.run([TALLYCTL, "verify", "log",
                            "http://127.0.0.1:%d" % d.port, "--key", key,
                            "--election", os.path.join(ELECTIONS, ds,
                                                       "election.json")],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_a_correction_that_reopens_a_province_retracts_its_call(self):
        """Certain calls are derived, not stored apart: a correction that
        reopens a province (a count posted as final, then corrected to a
        partial one with many ballots still to come) retracts its seats
        call at that version, and the final count calls it again; the same
        after a restart."""
        ds = "es-2019-04"
        d = self.start(os.path.join(ELECTIONS, ds, "election.json"))
        e = load(ds, "results.json")["results"][0]
        pid = e["province"]
        self.post(d, dict(e, revision=1))
        c1 = [c for c in self.calls(d)["calls"] if c["province"] == pid]
        self.assertEqual(len(c1), 1)
        self.assertEqual(c1[0]["version"], 1)
        reopened = dict(e, revision=2, status="partial",
                        registered=10 * sum(e["votes"].values()))
        self.assertEqual(self.post(d, reopened).json()["version"], 2)
        c2 = [c for c in self.calls(d)["calls"] if c["province"] == pid]
        self.assertEqual(len(c2), 1)
        self.assertTrue(c2[0]["retracted"])
        self.assertEqual(c2[0]["retracted_version"], 2)
        self.post(d, dict(e, revision=3))
        got = self.calls(d)
        c3 = [c for c in got["calls"] if c["province"] == pid]
        self.assertEqual([c["retracted"] for c in c3], [True, False])
        self.assertEqual(c3[1]["version"], 3)
        self.assertEqual(c3[1]["seats"], c1[0]["seats"])
        d.kill()
        d.start()
        self.assertEqual(self.calls(d), got)

    def test_a_call_made_moot_by_a_definition_edit_does_not_stop_the_start(self):
        """A declared call naming a coalition the edited definition no
        longer has (and its retraction) stay in the journal without effect:
        the daemon starts, as for a lot made moot."""
        definition = load("es-2019-04", "election.json")
        d = self.daemon(start=False, env={"TALLYD_INGEST_TOKEN": TOKEN})
        path = os.path.join(d.tmp, "election.json")
        with open(path, "w") as f:
            json.dump(definition, f)
        d.args = ["--election", path]
        d.start()
        gone = definition["coalitions"][-1]["id"]
        kept = definition["coalitions"][0]["id"]
        r = d.request("POST", "/v1/calls", body={
            "scope": "national", "what": "first_place", "coalition": gone},
            headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.json()["call"]["id"], "d1")
        r = d.request("POST", "/v1/calls/d1/retract", body={}, headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        r = d.request("POST", "/v1/calls", body={
            "scope": "national", "what": "majority", "coalition": kept},
            headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        d.kill()
        definition["coalitions"].pop()
        with open(path, "w") as f:
            json.dump(definition, f)
        d.start()
        got = self.calls(d)
        self.assertEqual(got["version"], 3)
        self.assertEqual([(c["id"], c["coalition"], c["version"])
                          for c in got["calls"]], [("d3", kept, 3)])

    def test_a_declared_call_keeps_its_id_when_an_edit_changes_the_certain_calls(self):
        """A declared call's id is its record's version: an edited
        definition taken at a restart that proves fewer certain calls before
        it (here: a province's seat goes from certain to pending) leaves the
        id as it was, and the desk retracts the call by that id (issue 21:
        ids were the order made, so the call's id moved from 2 to 1)."""
        definition = {
            "id": "ids-edit", "name": "Call ids across an edit",
            "allocation": {"method": "dhondt", "ties": "lot"},
            "coalitions": [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}],
            "provinces": [{"id": "p0", "name": "P0", "seats": 1},
                          {"id": "p1", "name": "P1", "seats": 3}]}
        for kill in (True, False):
            d = self.daemon(start=False, env={"TALLYD_INGEST_TOKEN": TOKEN})
            path = os.path.join(d.tmp, "election.json")
            with open(path, "w") as f:
                json.dump(definition, f)
            d.args = ["--election", path]
            d.start()
            r = d.request("POST", "/v1/provinces/p0/results", body={
                "revision": 1, "votes": {"a": 10, "b": 5}, "status": "final"},
                headers=AUTH)
            self.assertEqual(r.status, 201, r.body)
            before = self.calls(d)["calls"]
            self.assertEqual([(c["kind"], c["province"]) for c in before],
                             [("certain", "p0")])
            r = d.request("POST", "/v1/calls", body={
                "scope": "national", "what": "majority", "coalition": "a"},
                headers=AUTH)
            self.assertEqual(r.status, 201, r.body)
            made = r.json()["call"]
            self.assertEqual(made["id"], "d2")
            # A second one, retracted before the restart (the snapshot
            # written at a clean stop holds it and its retraction).
            r = d.request("POST", "/v1/calls", body={
                "scope": "province", "province": "p1", "what": "seats"},
                headers=AUTH)
            self.assertEqual(r.status, 201, r.body)
            self.assertEqual(r.json()["call"]["id"], "d3")
            r = d.request("POST", "/v1/calls/d3/retract", body={},
                          headers=AUTH)
            self.assertEqual(r.status, 201, r.body)
            # Two seats in p0: D'Hondt ties a's second quotient (5) with
            # b's first (5), and the rule is lot: the seats are pending.
            edited = json.loads(json.dumps(definition))
            edited["provinces"][0]["seats"] = 2
            with open(path, "w") as f:
                json.dump(edited, f)
            if kill:
                d.kill()
            else:
                d.stop()
            d.start()
            if not kill:    # the snapshot, replayed under the edit
                self.assertIn("replayed in order", d.logtext())
            after = self.calls(d)["calls"]
            self.assertEqual([(c["id"], c["kind"], c["version"],
                               c["retracted_version"]) for c in after],
                             [("d2", "declared", 2, None),
                              ("d3", "declared", 3, 4)], kill)
            r = d.request("POST", "/v1/calls/%s/retract" % made["id"],
                          body={}, headers=AUTH)
            self.assertEqual(r.status, 201, r.body)
            self.assertEqual(r.json()["call"]["id"], "d2")
            self.assertTrue(r.json()["call"]["retracted"])
            d.stop()

    def test_declared_call_event(self):
        """A declared call and its retraction each arrive as an SSE
        "call" event with the version that made it."""
        ds = "sk-2020"
        d = self.start(os.path.join(ELECTIONS, ds, "election.json"))
        reader = Reader(d.port, d.tmp)
        self.assertEqual(reader.status(), 200)
        reader.start()
        lb = d.get("/v1/leaderboard").json()
        cid = lb["coalitions"][0]["id"]
        r = d.request("POST", "/v1/calls", body={
            "scope": "national", "what": "first_place", "coalition": cid,
            "note": "called"}, headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        call = r.json()["call"]
        r = d.request("POST", "/v1/calls/%s/retract" % call["id"], body={},
                      headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        deadline = time.monotonic() + 10
        while len(reader.calls()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        reader.finish()
        evs = reader.calls()
        self.assertEqual(len(evs), 2, evs)
        self.assertEqual(evs[0], call)
        self.assertTrue(evs[1]["retracted"])
        self.assertEqual(evs[1]["id"], call["id"])


try:
    import natscluster
    import crashloop
    HAVE_NATS = natscluster.have_nats()
except ImportError:
    HAVE_NATS = False


@unittest.skipUnless(HAVE_NATS, "nats-server is not installed")
class ClusterCalls(DaemonTest):
    """Three nodes on one stream: declared calls posted on different nodes
    and the certain calls of the counts are the same on every node, at the
    same versions, and after a node restarts."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tallyd-calls-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.servers = natscluster.nats_cluster(self.tmp, 3)
        self.addCleanup(lambda: [s.stop() for s in self.servers])
        self.nodes = []

    def node(self):
        n = natscluster.Node(TALLYD, "tallyd%d" % (len(self.nodes) + 1),
                             self.tmp, [s.url for s in self.servers],
                             crashloop.election_path(),
                             env={"TALLYD_INGEST_TOKEN": TOKEN})
        self.nodes.append(n)
        return n

    def req(self, n, method, path, body=None):
        import http.client
        host, port = n.base.split("//")[1].split(":")
        c = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            data = json.dumps(body).encode() if body is not None else None
            hdrs = dict(AUTH, **{"Content-Type": "application/json"}) \
                if data else {}
            c.request(method, path, body=data, headers=hdrs)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def converge(self, ns, timeout=30):
        deadline = time.time() + timeout
        while True:
            try:
                hs = [n.health() for n in ns]
                vs = {h["version"] for h in hs}
                last = max(h["cluster"]["stream_last"] for h in hs)
                if len(vs) == 1 and vs.pop() >= last:
                    return
            except OSError:
                pass
            if time.time() > deadline:
                raise AssertionError("nodes do not converge")
            time.sleep(0.1)

    def same_calls(self, ns):
        got = [self.req(n, "GET", "/v1/calls") for n in ns]
        for st, b in got:
            self.assertEqual(st, 200, b)
        self.assertEqual(len({b for _, b in got}), 1, got)
        return json.loads(got[0][1])

    def test_three_nodes_see_the_same_calls(self):
        ns = [self.node() for _ in range(3)]
        for n in ns:
            n.start(wait=False)
        try:
            for n in ns:
                n.wait_ready()
        except RuntimeError as e:
            if "without libnats" in str(e):
                self.skipTest("tallyd was built without libnats")
            raise
        base = crashloop.base_entries()
        pids = sorted(base)
        lead = None
        for i, pid in enumerate(pids):
            body = dict(base[pid])
            body.pop("province")
            body["revision"] = 1
            st, b = self.req(ns[i % 3], "POST",
                             "/v1/provinces/%s/results" % pid, body)
            self.assertEqual(st, 201, b)
            if lead is None:
                lead = max(body["votes"], key=body["votes"].get)
        st, b = self.req(ns[0], "POST", "/v1/calls", {
            "scope": "national", "what": "first_place", "coalition": lead,
            "note": "node 1"})
        self.assertEqual(st, 201, b)
        first = json.loads(b)
        st, b = self.req(ns[1], "POST", "/v1/calls", {
            "scope": "province", "province": pids[0], "what": "seats"})
        self.assertEqual(st, 201, b)
        st, b = self.req(ns[2], "POST", "/v1/calls/%s/retract" %
                         first["call"]["id"], {})
        self.assertEqual(st, 201, b)
        # Once a node has the retraction, it answers a retry "duplicate".
        self.converge(ns)
        st, b = self.req(ns[1], "POST", "/v1/calls/%s/retract" %
                         first["call"]["id"], {})
        self.assertEqual(st, 200, b)
        self.assertEqual(json.loads(b)["status"], "duplicate")
        st, b = self.req(ns[2], "POST", "/v1/calls", {
            "scope": "province", "province": pids[0], "what": "seats"})
        self.assertEqual(st, 200, b)
        self.assertEqual(json.loads(b)["status"], "duplicate")
        calls = self.same_calls(ns)
        kinds = {c["kind"] for c in calls["calls"]}
        self.assertEqual(kinds, {"certain", "declared"})
        declared = [c for c in calls["calls"] if c["kind"] == "declared"]
        self.assertEqual(len(declared), 2)
        self.assertEqual(declared[0]["version"], first["version"])
        self.assertTrue(declared[0]["retracted"])
        # A node killed and restarted reads the same calls back.
        ns[2].kill()
        ns[2].start(wait=False)
        ns[2].wait_ready()
        self.converge(ns)
        self.assertEqual(self.same_calls(ns), calls)


if __name__ == "__main__":
    main()
