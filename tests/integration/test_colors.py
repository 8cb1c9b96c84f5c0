#!/usr/bin/env python3
"""Colours: one colour per coalition, the same in every view and on every
start, told apart (lib/palette.c, docs/ELECTION.md "Colours").

Through the real interfaces: /v1/election, /v1/leaderboard,
/v1/coalitions/{id}, /v1/leaderboard.svg and /v1/leaderboard.csv of a
running daemon; `tallyctl import` and `tallyctl check` as built.

- a definition without colours is drawn in distinct palette colours (not
  the blue-greys of before), the same in JSON, SVG and CSV, and again the
  same after a restart;
- Spain 2019: PSOE keeps its own red; ECP-GUANYEM #6f2e63, PODEMOS-EU and
  PODEMOS-IU (both #6b2e68), all with seats, are drawn in three colours no
  two of which are near-identical;
- `tallyctl import` writes a colour for every coalition (Poland 2023: PiS,
  KO and Trzecia Droga apart); `tallyctl check` warns on missing and
  near-identical colours, and still says ok.
"""
import csv
import io
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET

from harness import ELECTIONS, SOURCE_ROOT, CheckedDaemonTest, main

TOKEN = "colors-test-ingest-token-0123456789"
AUTH = {"Authorization": "Bearer " + TOKEN}
SVGNS = "{http://www.w3.org/2000/svg}"
ES = os.path.join(ELECTIONS, "es-2019-04")
TALLYCTL = os.environ.get("TALLYCTL", "tallyctl")
DATASETS = os.environ.get("TALLYD_DATASETS") or os.path.join(
    os.path.dirname(SOURCE_ROOT), "shared", "data", "elections")
HEX = re.compile(r"^#[0-9a-f]{6}$")
# What lists without a colour were drawn in before (lib/hemicycle.c).
OLD_GREYS = {"#78909c", "#90a4ae", "#607d8b", "#b0bec5", "#546e7a",
             "#a1887f"}
NEAR = 32   # TALLY_COLOR_NEAR


def distance(a, b):
    """The redmean distance, as lib/palette.c computes it."""
    x = [int(a[i:i + 2], 16) for i in (1, 3, 5)]
    y = [int(b[i:i + 2], 16) for i in (1, 3, 5)]
    rm = (x[0] + y[0]) // 2
    dr, dg, db = x[0] - y[0], x[1] - y[1], x[2] - y[2]
    d2 = ((512 + rm) * dr * dr + 1024 * dg * dg + (767 - rm) * db * db)
    return (d2 // 256) ** 0.5


def load(path):
    with open(path) as f:
        return json.load(f)


# Six lists without a colour, two sharing one, a seventh with its own.
PLAIN = {
    "id": "plain", "name": "Plain",
    "allocation": {"method": "dhondt"},
    "coalitions": [
        {"id": "a", "name": "A"}, {"id": "b", "name": "B"},
        {"id": "c", "name": "C"}, {"id": "d", "name": "D"},
        {"id": "e", "name": "E"}, {"id": "f", "name": "F"},
        {"id": "twin1", "name": "Twin 1", "color": "#6b2e68"},
        {"id": "twin2", "name": "Twin 2", "color": "#6B2E68"},
        {"id": "red", "name": "Red", "color": "#e30613"},
    ],
    "provinces": [{"id": "p", "name": "P", "seats": 45}],
}
PLAIN_VOTES = {"a": 9000, "b": 8000, "c": 7000, "d": 6000, "e": 5000,
               "f": 4000, "twin1": 3500, "twin2": 3000, "red": 2500}


class Views(CheckedDaemonTest):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tallyd-colors-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def start(self, election):
        return self.daemon(args=["--election", election],
                           env={"TALLYD_INGEST_TOKEN": TOKEN})

    def views(self, d):
        """{id: colour} from each view; asserts they agree."""
        election = {c["id"]: c for c in d.get("/v1/election").json()[
            "coalitions"]}
        lb = {c["id"]: c for c in d.get("/v1/leaderboard").json()[
            "coalitions"]}
        rows = list(csv.DictReader(io.StringIO(
            d.get("/v1/leaderboard.csv").body.decode())))
        svg = ET.fromstring(d.get("/v1/leaderboard.svg").body)
        groups = {g.get("data-coalition"): g.get("fill") for g in svg.findall(
            ".//" + SVGNS + "g[@data-coalition]")}
        colours = {}
        for cid, c in election.items():
            self.assertRegex(c["color"], HEX, cid)
            self.assertIn(c["color_source"],
                          ("definition", "palette", "adjusted"))
            self.assertEqual(lb[cid]["color"], c["color"], cid)
            self.assertEqual(lb[cid]["color_source"], c["color_source"])
            co = d.get("/v1/coalitions/" + cid).json()
            self.assertEqual(co["color"], c["color"], cid)
            colours[cid] = c["color"]
        self.assertEqual({r["id"]: r["color"] for r in rows}, colours)
        for cid, fill in groups.items():
            self.assertEqual(fill, colours[cid], cid)
        seated = [cid for cid, c in lb.items() if c["seats"] > 0]
        return election, colours, seated, groups

    def test_without_colours_and_with_twins(self):
        path = os.path.join(self.tmp, "plain.json")
        with open(path, "w") as f:
            json.dump(PLAIN, f)
        d = self.start(path)
        r = d.request("POST", "/v1/provinces/p/results", headers=AUTH, body={
            "revision": 1, "votes": PLAIN_VOTES, "status": "final"})
        self.assertEqual(r.status, 201, r.body)
        election, colours, seated, groups = self.views(d)
        self.assertEqual(len(seated), 9)
        self.assertEqual(set(groups), set(seated))
        for cid in "abcdef":
            self.assertEqual(election[cid]["color_source"], "palette")
            self.assertNotIn(colours[cid], OLD_GREYS)
        # The first keeps its own; the second, too near, is drawn apart and
        # says what the definition gave.
        self.assertEqual(election["twin1"]["color"], "#6b2e68")
        self.assertEqual(election["twin1"]["color_source"], "definition")
        self.assertEqual(election["twin2"]["color_source"], "adjusted")
        self.assertEqual(election["twin2"]["color_defined"], "#6B2E68")
        self.assertEqual(election["red"]["color"], "#e30613")
        for x, y in itertools.combinations(seated, 2):
            self.assertGreaterEqual(distance(colours[x], colours[y]), NEAR,
                                    "%s %s and %s %s look alike" % (
                                        x, colours[x], y, colours[y]))
        # The same after a restart (and on any node: from the definition).
        d.stop()
        d.start()
        self.assertEqual(self.views(d)[1], colours)

    def test_a_hundred_lists_without_colours(self):
        """Past the palette and its tones the palette starts again; the
        first lists get its colours in order (under ASan: no overrun)."""
        e = {"id": "many", "name": "Many", "allocation": {"method": "dhondt"},
             "coalitions": [{"id": "l%03d" % i, "name": "L%d" % i}
                            for i in range(100)],
             "provinces": [{"id": "p", "name": "P", "seats": 10}]}
        path = os.path.join(self.tmp, "many.json")
        with open(path, "w") as f:
            json.dump(e, f)
        d = self.start(path)
        cs = d.get("/v1/election").json()["coalitions"]
        self.assertEqual([c["color"] for c in cs[:4]],
                         ["#0072b2", "#e69f00", "#882255", "#33bbee"])
        for c in cs:
            self.assertRegex(c["color"], HEX)
            self.assertEqual(c["color_source"], "palette")
        first = [c["color"] for c in cs[:60]]
        for x, y in itertools.combinations(range(60), 2):
            self.assertGreaterEqual(distance(first[x], first[y]), NEAR,
                                    "%d and %d" % (x, y))

    def test_spain_told_apart(self):
        d = self.start(os.path.join(ES, "election.json"))
        r = d.request("POST", "/v1/results", headers=AUTH,
                      body=load(os.path.join(ES, "results.json")))
        self.assertEqual(r.status, 201, r.body)
        election, colours, seated, _ = self.views(d)
        self.assertEqual(colours["000096"], "#e30613")     # PSOE, its own
        # ECP-GUANYEM #6f2e63, PODEMOS-EU and PODEMOS-IU #6b2e68: 7, 2 and
        # 33 seats, three purples that were indistinguishable.
        trio = ["000032", "000075", "000077"]
        for cid in trio:
            self.assertIn(cid, seated)
        for x, y in itertools.combinations(trio, 2):
            self.assertGreaterEqual(distance(colours[x], colours[y]), NEAR)
        for x, y in itertools.combinations(seated, 2):
            self.assertGreaterEqual(distance(colours[x], colours[y]), NEAR,
                                    "%s and %s" % (x, y))
        # Every defined colour is kept or, adjusted, still named.
        defined = {c["id"]: c["color"] for c in load(os.path.join(
            ES, "election.json"))["coalitions"]}
        for cid, c in election.items():
            if c["color_source"] == "definition":
                self.assertEqual(c["color"], defined[cid].lower())
            else:
                self.assertEqual(c["color_source"], "adjusted")
                self.assertEqual(c["color_defined"], defined[cid])


class Ctl(CheckedDaemonTest):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tallyctl-colors-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def ctl(self, *args):
        p = subprocess.run([TALLYCTL] + list(args), capture_output=True,
                           timeout=60, cwd=self.tmp)
        err = p.stderr.decode()
        self.assertNotIn("runtime error:", err)
        self.assertNotIn("Sanitizer", err)
        return p.returncode, p.stdout.decode(), err

    def test_import_assigns_colours(self):
        if not os.path.isdir(os.path.join(DATASETS, "pl-2023")):
            self.skipTest("no ../shared/data/elections beside the source tree")
        out = os.path.join(self.tmp, "pl.json")
        rc, _, err = self.ctl("import", "-o", out,
                              os.path.join(DATASETS, "pl-2023"))
        self.assertEqual(rc, 0, err)
        cs = load(out)["coalitions"]
        colours = {c["id"]: c.get("color") for c in cs}
        for cid, col in colours.items():
            self.assertRegex(col or "", HEX, cid)
        # PiS, KO and Trzecia Droga, the three largest, far apart; and no
        # two lists of the definition near-identical.
        for x, y in itertools.combinations(colours, 2):
            self.assertGreaterEqual(distance(colours[x], colours[y]), NEAR,
                                    "%s and %s" % (x, y))
        for x, y in itertools.combinations(("PIS", "KO", "TD"), 2):
            self.assertGreaterEqual(distance(colours[x], colours[y]), 100)
        # The imported definition draws what it says, and check is silent.
        rc, out_, err = self.ctl("check", out)
        self.assertEqual(rc, 0, err)
        self.assertNotIn("warning", err)
        d = self.daemon(args=["--election", out])
        for c in d.get("/v1/election").json()["coalitions"]:
            self.assertEqual(c["color"], colours[c["id"]])
            self.assertEqual(c["color_source"], "definition")

    def test_check_warns_on_missing_and_near_identical(self):
        path = os.path.join(self.tmp, "plain.json")
        with open(path, "w") as f:
            json.dump(PLAIN, f)
        rc, out, err = self.ctl("check", path)
        self.assertEqual(rc, 0, err)          # warnings, not errors
        self.assertIn("ok: plain", out)
        for i, cid in enumerate("abcdef"):
            self.assertIn("/coalitions/%d: warning: %s has no \"color\"" %
                          (i, cid), err)
        self.assertRegex(err, r"/coalitions/7/color: warning: twin2's "
                         r"#6B2E68 is near-identical to twin1's #6b2e68 "
                         r"\(/coalitions/6, distance 0, under 32\): drawn "
                         r"as #[0-9a-f]{6}")
        self.assertNotIn("red", err)
        # Spain: PODEMOS-IU (000077) #6b2e68 is named, with the colour
        # every view draws it in.
        rc, out, err = self.ctl("check", os.path.join(ES, "election.json"))
        self.assertEqual(rc, 0, err)
        self.assertRegex(err, r"/coalitions/49/color: warning: 000077's "
                         r"#6b2e68 is near-identical to 000032's #6f2e63")


if __name__ == "__main__":
    main()
