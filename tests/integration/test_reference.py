#!/usr/bin/env python3
"""The API's reference through the running daemon (issue 25): the route
index (GET /v1/), every version in the kept range servable or the message
honest, the version of each history row and the national changes feed
(GET /v1/changes?since=V), the same bytes after a restart."""
import glob
import json
import os
import re
import struct

import schemas
from harness import CheckedDaemonTest, main
from test_durability import MAGIC, HEADER, crc32c

TOKEN = "reference-test-ingest-token-0123456789"
AUTH = {"Authorization": "Bearer " + TOKEN}
ROUTES_C = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                        "daemon", "routes.c")


def table_patterns():
    """The patterns of daemon/routes.c's table, read from the source."""
    with open(ROUTES_C) as f:
        text = f.read()
    table = text[text.index("api_routes[R_COUNT] = {"):]
    table = table[:table.index("\n};")]
    return re.findall(r'\{ R_[A-Z_]+, ROUTE_[A-Z]+,\s*"([^"]*)"', table)


class Reference(CheckedDaemonTest):
    def start(self, conf=""):
        d = self.daemon(start=False, env={"TALLYD_INGEST_TOKEN": TOKEN})
        path = os.path.join(d.tmp, "tallyd.conf")
        with open(path, "w") as f:
            f.write(conf)
        d.args = ["-f", path]
        d.start()
        return d

    def post(self, d, province, rev, sairoon, fatah=900):
        r = d.request("POST", "/v1/provinces/%s/results" % province,
                      body={"revision": rev, "votes": {"sairoon": sairoon,
                                                       "fatah": fatah}},
                      headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        return r.json()["version"]

    def test_index_lists_every_route(self):
        d = self.start()
        want = table_patterns()
        self.assertIn("/v1/changes", want)
        for path in ("/v1/", "/v1"):
            r = d.get(path)
            self.assertEqual(r.status, 200, (path, r.body))
            self.assertTrue(r.header("Content-Type").startswith(
                "application/json"))
            idx = r.json()
            self.assertEqual([x["path"] for x in idx["routes"]], want)
            for x in idx["routes"]:
                self.assertTrue(x["description"], x)
                self.assertEqual(x["token"], x["method"] == "POST", x)
                self.assertEqual(x["href"], None if "{" in x["path"]
                                 else x["path"], x)
                if x["schema"] is not None:
                    # The very file the tests validate against, served.
                    self.assertRegex(x["schema"],
                                     r"^/v1/schemas/[a-z]+\.json$")
                    r = d.get(x["schema"])
                    self.assertEqual(r.status, 200, x)
                    self.assertEqual(r.header("Content-Type"),
                                     "application/schema+json")
                    with open(os.path.join(schemas.SCHEMA_DIR, os.path.basename(
                            x["schema"])), "rb") as f:
                        self.assertEqual(r.body, f.read())
                    self.assertEqual(d.get(x["schema"], headers={
                        "If-None-Match": r.header("ETag")}).status, 304)
        self.assertError(d.get("/v1/schemas/nothing.json"), 404, "not_found")
        self.assertError(d.get("/v1/schemas/leaderboard"), 404, "not_found")
        # Every link of the index answers (a GET one, not the stream; the
        # witnessed checkpoint is 404 until a witness cosigned one).
        for x in idx["routes"]:
            if x["href"] is None or x["method"] != "GET, HEAD" or \
                    x["href"] in ("/v1/events", "/v1/changes",
                                  "/log/witnessed"):
                continue
            self.assertNotEqual(d.get(x["href"]).status, 404, x)
        self.assertEqual(d.get("/v1/changes?since=0").status, 200)
        # A wrong path points to the index.
        r = d.get("/v1/nothing")
        self.assertIn("GET /v1/ lists every route",
                      self.assertError(r, 404, "not_found")["message"])

    def test_every_kept_version_is_served(self):
        """Five versions posted and nobody reading: version 3 was missing
        from the ring while the 404 said "versions 0 to 5 are kept"."""
        d = self.start("keep_versions 8\n")
        for rev in range(1, 6):
            self.post(d, "baghdad", rev, 1000 + rev)
        received = {x["version"]: x["received_at"] for x in d.get(
            "/v1/provinces/baghdad/history").json()["revisions"]}
        for v in range(1, 6):
            r = d.get("/v1/versions/%d/leaderboard" % v)
            self.assertEqual(r.status, 302, (v, r.body))
            loc = r.header("Location")
            r = d.get(loc)
            self.assertEqual(r.status, 200, (v, r.body))
            self.assertEqual(r.json()["version"], v)
            # Written from that version's totals when first asked: its
            # time is its revision's, its tag the one its URL names.
            self.assertEqual(r.json()["updated_at"], received[v])
            self.assertEqual(r.header("ETag"), '"%s"' % loc.split("/")[3])
            self.assertEqual(d.get(loc).body, r.body)
            self.assertEqual(d.get(loc.replace("leaderboard",
                                               "leaderboard.svg")).status,
                             200)
        # A provinces list nobody was served at version 3 is not kept, and
        # the message says why instead of naming a range that holds it.
        r = d.get("/v1/versions/3/provinces")
        msg = self.assertError(r, 404, "unknown_version")["message"]
        self.assertIn("kept only when it was served", msg)
        self.assertNotIn("3 to 5 are", msg)
        # Served now, at version 5: kept.
        d.get("/v1/provinces")
        self.assertEqual(d.get("/v1/versions/5/provinces").status, 302)
        # Outside the range: the range, which holds every version named.
        r = d.get("/v1/versions/9/leaderboard")
        self.assertIn("versions 1 to 5 are", self.assertError(
            r, 404, "unknown_version")["message"])

    def test_kept_versions_of_a_comparison_are_whole(self):
        """A leaderboard with members read from the provinces (the
        comparison with a previous election) is rendered at publish, not
        written from the totals: a kept version has its `change` too."""
        here = os.path.dirname(os.path.abspath(__file__))
        definition = os.path.join(here, "..", "data", "newsroom",
                                  "es-2019-04-vs-2016-06.json")
        with open(os.path.join(here, "..", "data", "elections", "es-2019-04",
                               "results.json")) as f:
            entries = json.load(f)["results"][:3]
        d = self.daemon(args=["--election", definition],
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        for e in entries:
            body = dict(e)
            pid = body.pop("province")
            r = d.request("POST", "/v1/provinces/%s/results" % pid,
                          body=body, headers=AUTH)
            self.assertEqual(r.status, 201, r.body)
        for v in (1, 2):
            r = d.get(d.get("/v1/versions/%d/leaderboard" % v).header(
                "Location"))
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()["version"], v)
            self.assertEqual(r.json()["change"]["previous"]["id"],
                             "es-2016-06")

    def history_versions(self, d, province):
        h = d.get("/v1/provinces/%s/history" % province).json()
        return [(x["revision"], x["version"]) for x in h["revisions"]]

    def test_history_rows_and_changes_feed(self):
        # Snapshots every 2 records: older revisions are read back from disk.
        d = self.start("snapshot_every 2\n")
        self.assertEqual(self.post(d, "baghdad", 1, 1000), 1)
        self.assertEqual(self.post(d, "basra", 1, 500), 2)
        self.assertEqual(self.post(d, "baghdad", 2, 1500), 3)
        r = d.request("POST", "/v1/results", headers=AUTH, body={"results": [
            {"province": "basra", "revision": 2,
             "votes": {"sairoon": 600, "fatah": 900}},
            {"province": "baghdad", "revision": 3,
             "votes": {"sairoon": 1400, "fatah": 900}}]})
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(self.post(d, "baghdad", 4, 1600), 5)
        self.assertEqual(self.history_versions(d, "baghdad"),
                         [(1, 1), (2, 3), (3, 4), (4, 5)])
        self.assertEqual(self.history_versions(d, "basra"), [(1, 2), (2, 4)])

        r = d.get("/v1/changes?since=0")
        self.assertEqual(r.status, 200, r.body)
        ch = r.json()
        self.assertEqual((ch["since"], ch["version"], ch["kept_after"],
                          ch["more"], ch["next"]), (0, 5, 0, False, None))
        # Version order; in one version, the election's province order
        # (baghdad comes before basra in the definition).
        order = [p["id"] for p in d.get("/v1/election").json()["provinces"]]
        rows = [(x["version"], x["province"], x["revision"])
                for x in ch["changes"]]
        v4 = sorted([("baghdad", 3), ("basra", 2)],
                    key=lambda x: order.index(x[0]))
        self.assertEqual(rows, [(1, "baghdad", 1), (2, "basra", 1),
                                (3, "baghdad", 2)] +
                         [(4,) + x for x in v4] + [(5, "baghdad", 4)])
        # A row is the province's history row, with its province.
        hist = d.get("/v1/provinces/baghdad/history").json()["revisions"]
        row = [x for x in ch["changes"] if x["version"] == 3][0]
        self.assertEqual(dict(row, province=None),
                         dict(hist[1], province=None))
        # A correction (a lower count) shows in `changed`.
        row = [x for x in ch["changes"] if x["version"] == 4 and
               x["province"] == "baghdad"][0]
        self.assertEqual(row["changed"], {"sairoon": -100})
        # What a client that saw version 3 missed.
        r = d.get("/v1/changes?since=3")
        self.assertEqual([(x["version"], x["province"]) for x in
                          r.json()["changes"]],
                         [(4,) + (x[0],) for x in v4] + [(5, "baghdad")])
        self.assertEqual(d.get("/v1/changes?since=5").json()["changes"], [])
        self.assertEqual(d.get("/v1/changes?since=99").json()["changes"], [])
        # Conditional: the whole tally's tag.
        etag = r.header("ETag")
        self.assertEqual(etag, d.get("/v1/leaderboard").header("ETag"))
        self.assertEqual(d.get("/v1/changes?since=3", headers={
            "If-None-Match": etag}).status, 304)
        self.assertTrue(r.header("Cache-Control").startswith("public"))
        for bad in ("", "x", "-1", "1.5", "99999999999999999999"):
            self.assertError(d.get("/v1/changes?since=" + bad), 400,
                             "bad_query", "since")
        self.assertError(d.get("/v1/changes"), 400, "bad_query", "since")

        # The same bytes after a clean stop (a snapshot) and after a kill -9
        # (the journal replayed).
        before = {p: d.get(p).body for p in (
            "/v1/changes?since=0", "/v1/changes?since=2",
            "/v1/provinces/baghdad/history", "/v1/provinces/basra/history")}
        for how in ("stop", "kill"):
            if how == "stop":
                self.assertEqual(d.stop(), 0)
            else:
                self.post(d, "basra", 3, 700)
                before = {p: d.get(p).body for p in before}
                d.kill()
            d.start()
            for p, body in before.items():
                self.assertEqual(d.get(p).body, body, (how, p))

    def test_changes_come_in_pages_of_whole_versions(self):
        """At most 1000 rows an answer (a bound on what one request reads
        back from disk), cut between versions, with where to go on."""
        d = self.start("snapshot_every 7\n")
        ids = [p["id"] for p in d.get("/v1/election").json()["provinces"]]
        n = len(ids)
        versions = 1000 // n + 2
        for rev in range(1, versions + 1):
            r = d.request("POST", "/v1/results", headers=AUTH, body={
                "results": [{"province": pid, "revision": rev,
                             "votes": {"sairoon": 100 + rev, "fatah": 90}}
                            for pid in ids]})
            self.assertEqual(r.status, 201, r.body)
        ch = d.get("/v1/changes?since=0").json()
        whole = -(-1000 // n)            # versions until 1000 rows
        self.assertTrue(ch["more"])
        self.assertEqual(ch["next"], whole)
        self.assertEqual(len(ch["changes"]), whole * n)
        self.assertEqual(ch["changes"][-1]["version"], whole)
        rest = d.get("/v1/changes?since=%d" % ch["next"]).json()
        self.assertEqual((rest["more"], rest["next"]), (False, None))
        self.assertEqual([(x["version"], x["province"]) for x in
                          ch["changes"] + rest["changes"]],
                         [(v, pid) for v in range(1, versions + 1)
                          for pid in ids])
        # Older revisions are read back from the snapshot on disk: the
        # rows are the histories' own.
        hist = d.get("/v1/provinces/%s/history" % ids[-1]).json()
        self.assertEqual([x for x in ch["changes"] + rest["changes"]
                          if x["province"] == ids[-1]],
                         [dict(x, province=ids[-1]) for x in
                          hist["revisions"]])

    def test_changes_older_than_the_history_is_410(self):
        """A snapshot written before versions were kept: its revisions have
        none, so the feed cannot say what happened after an older version
        and says so (410) instead of answering with a hole."""
        d = self.start("snapshot_every 2\n")
        for rev, pid in ((1, "baghdad"), (1, "basra"), (2, "baghdad")):
            self.post(d, pid, rev, 1000 + rev)
        self.assertEqual(d.stop(), 0)
        # The newest snapshot, rewritten as an older tallyd wrote it: no
        # "version" in its revision records.
        snap = sorted(glob.glob(os.path.join(d.data_dir,
                                             "snapshot-*.snap")))[-1]
        with open(snap, "rb") as f:
            data = f.read()
        out, off, stripped = b"", 0, 0
        while off < len(data):
            magic, _, length, seq = struct.unpack_from("<4sIIQ", data, off)
            self.assertEqual(magic, MAGIC)
            payload = data[off + HEADER:off + HEADER + length]
            new = re.sub(rb',"version":[0-9]+}$', b"}", payload)
            stripped += new != payload
            out += struct.pack("<4sIIQ", MAGIC, crc32c(struct.pack(
                "<IQ", len(new), seq) + new), len(new), seq) + new
            off += HEADER + length
        self.assertEqual(stripped, 3)
        with open(snap, "wb") as f:
            f.write(out)
        d.start()
        self.assertEqual(self.history_versions(d, "baghdad"),
                         [(1, None), (2, None)])
        r = d.get("/v1/changes?since=0")
        err = self.assertError(r, 410, "history_not_kept", "since")
        self.assertIn("after version 3", err["message"])
        self.assertEqual(self.post(d, "basra", 2, 1500), 4)
        self.assertError(d.get("/v1/changes?since=2"), 410,
                         "history_not_kept", "since")
        ch = d.get("/v1/changes?since=3").json()
        self.assertEqual(ch["kept_after"], 3)
        self.assertEqual([(x["version"], x["province"]) for x in
                          ch["changes"]], [(4, "basra")])

    def test_schemas_catch_what_drifts(self):
        """The harness's check refuses an answer that breaks its schema
        (here the colour fields: a null colour, an unknown source, a
        defined colour without `adjusted`), and validate=False lets a test
        read a deliberately broken one."""
        d = self.start()
        lb = d.get("/v1/leaderboard")
        doc = lb.json()
        co = doc["coalitions"][0]
        self.assertRegex(co["color"], "^#[0-9a-f]{6}$")
        self.assertIn(co["color_source"], ("definition", "palette",
                                           "adjusted"))
        hdrs = [("Content-Type", "application/json")]
        for broken in ({"color": None}, {"color_source": "random"},
                       {"color_defined": "#123456"}, {"extra_field": 1}):
            bad = json.loads(json.dumps(doc))
            bad["coalitions"][0].update(broken)
            with self.assertRaises(AssertionError, msg=broken):
                schemas.check("GET", "/v1/leaderboard", 200, hdrs,
                              json.dumps(bad).encode())
        bad = json.loads(json.dumps(doc))
        bad["coalitions"][0].update(color_source="adjusted")
        with self.assertRaises(AssertionError):
            schemas.check("GET", "/v1/leaderboard", 200, hdrs,
                          json.dumps(bad).encode())
        bad["coalitions"][0]["color_defined"] = "#6B2E68"
        schemas.check("GET", "/v1/leaderboard", 200, hdrs,
                      json.dumps(bad).encode())
        # Errors have one shape whatever the route.
        with self.assertRaises(AssertionError):
            schemas.check("GET", "/v1/nothing", 404, hdrs, b'{"error": "x"}')
        # Every schema a route names exists and is a valid schema.
        for x in d.get("/v1/").json()["routes"]:
            if x["schema"]:
                schemas.validator(os.path.basename(x["schema"])[:-5])


if __name__ == "__main__":
    main()
