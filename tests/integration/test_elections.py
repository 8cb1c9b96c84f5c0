#!/usr/bin/env python3
"""Every real election with votes, through the daemon's API: the official
seats of each dataset (district seats per province where published,
levelling seats per province, national totals), and the named cases of
issue 13: Opole 2019 (an exempt minority), United Left 2015 (a coalition's
own 8 % threshold), PS-SPOLU 2020 (Slovakia's 7 % for coalitions).
"""
import json
import os

from harness import ELECTIONS, CheckedDaemonTest, main

TOKEN = "ingest-token-for-the-tests-0123456789"
AUTH = {"Authorization": "Bearer " + TOKEN}

DATASETS = ("es-2016-06", "es-2019-04", "es-2019-11", "es-2019-11-provisional",
            "no-2009", "no-2013", "no-2017", "no-2021", "no-2025",
            "pl-2015", "pl-2019", "pl-2023", "sk-2020", "cz-2017")


def load(ds, name):
    with open(os.path.join(ELECTIONS, ds, name)) as f:
        return json.load(f)


class Elections(CheckedDaemonTest):
    def counted(self, ds):
        """A daemon on `ds` with the whole election posted in one batch."""
        d = self.daemon(args=["--election", os.path.join(
            ELECTIONS, ds, "election.json")],
            env={"TALLYD_INGEST_TOKEN": TOKEN})
        r = d.request("POST", "/v1/results", body=load(ds, "results.json"),
                      headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        return d

    def province(self, d, pid, query=""):
        r = d.get("/v1/provinces/" + pid + query)
        self.assertEqual(r.status, 200, r.body)
        return r.json()

    def list_row(self, d, pid, lid):
        for row in self.province(d, pid)["lists"]:
            if row["id"] == lid:
                return row
        raise KeyError((pid, lid))

    def test_every_dataset_reproduces_its_official_seats(self):
        for ds in DATASETS:
            with self.subTest(ds=ds):
                d = self.counted(ds)
                exp = load(ds, "expected.json")
                lb = d.get("/v1/leaderboard").json()
                self.assertEqual(lb["seats"]["total"], exp["seats_total"])
                self.assertEqual(lb["seats"]["allocated"], exp["seats_total"])
                self.assertEqual(lb["seats"]["pending"], 0)
                self.assertEqual({c["id"]: c["seats"] for c in lb["coalitions"]
                                  if c["seats"]}, exp["national"])
                for c in lb["coalitions"]:
                    self.assertEqual(c["seats"], c["district_seats"] +
                                     c["levelling_seats"], c["id"])
                # District seats where they are published.
                for pid, want in exp["provinces"].items():
                    p = self.province(d, pid)
                    self.assertEqual({l["id"]: l["seats"] for l in p["lists"]
                                      if l["seats"]}, want, (ds, pid))
                # Levelling seats: each county's to the right party.
                lev = exp.get("levelling")
                if lev is not None:
                    nat_lev = {}
                    for pid, want in lev.items():
                        p = self.province(d, pid)
                        self.assertEqual(p["levelling_seats"],
                                         sum(want.values()), (ds, pid))
                        self.assertEqual({l["id"]: l["levelling_seats"]
                                          for l in p["lists"]
                                          if l["levelling_seats"]}, want,
                                         (ds, pid))
                        for k, n in want.items():
                            nat_lev[k] = nat_lev.get(k, 0) + n
                    self.assertEqual({c["id"]: c["levelling_seats"]
                                      for c in lb["coalitions"]
                                      if c["levelling_seats"]}, nat_lev)
                else:
                    self.assertTrue(all(c["levelling_seats"] == 0
                                        for c in lb["coalitions"]))
                self.check_daemon_log(d)
                d.cleanup()

    def test_opole_2019_german_minority_is_exempt(self):
        d = self.counted("pl-2019")
        seats = {l["id"]: l["seats"]
                 for l in self.province(d, "21")["lists"]}
        self.assertEqual((seats["MN"], seats["PIS"]), (1, 5))
        mn = self.list_row(d, "21", "MN")
        self.assertEqual(mn["threshold"], "exempt")
        self.assertIsNone(mn["threshold_percent"])
        self.assertIn("national minority", mn["threshold_reason"])
        c = d.get("/v1/coalitions/MN").json()
        self.assertEqual((c["seats"], c["threshold"]), (1, "exempt"))
        # KO carries its own 8 % and passes it.
        ko = self.list_row(d, "21", "KO")
        self.assertEqual((ko["threshold"], ko["threshold_percent"]),
                         ("passed", "8"))
        self.assertIn("its own threshold of 8 %", ko["threshold_reason"])

    def test_united_left_2015_below_its_own_8_percent(self):
        d = self.counted("pl-2015")
        lb = {c["id"]: c for c in d.get("/v1/leaderboard").json()["coalitions"]}
        self.assertEqual(lb["ZL"]["seats"], 0)
        self.assertEqual(lb["PIS"]["seats"], 235)
        self.assertEqual(lb["MN"]["seats"], 1)
        zl = self.list_row(d, "19", "ZL")
        self.assertEqual((zl["threshold"], zl["threshold_percent"], zl["seats"]),
                         ("excluded", "8", 0))
        self.assertTrue(zl["threshold_reason"].startswith(
            "below its own threshold of 8 % of the national vote"),
            zl["threshold_reason"])
        # KORWiN, 4.76 %: below the ordinary 5 %.
        kw = self.list_row(d, "19", "KORWIN")
        self.assertEqual((kw["threshold"], kw["threshold_percent"]),
                         ("excluded", "5"))
        self.assertEqual(kw["threshold_reason"],
                         "below the threshold of 5 % of the national vote")

    def test_ps_spolu_2020_below_7_percent(self):
        d = self.counted("sk-2020")
        row = self.list_row(d, "SK", "PS-SPOLU")
        self.assertEqual((row["threshold"], row["threshold_percent"],
                          row["seats"]), ("excluded", "7", 0))
        p = self.province(d, "SK", "?explain=1")
        # Act 180/2014 s. 66(2): 2,061,100 / 151 rounded up.
        self.assertEqual(p["quota"]["exact"], "13650/1")
        self.assertEqual(p["method"], "hagenbach-bischoff-ceil")

    def test_restart_keeps_the_levelling_tier(self):
        """A clean stop writes a snapshot; the restarted daemon reads it
        back and re-computes the same tier, byte for byte."""
        ds = "no-2025"
        d = self.counted(ds)
        views = ("/v1/leaderboard", "/v1/provinces/03?explain=1",
                 "/v1/coalitions/A")
        before = [d.get(v).json() for v in views]
        self.assertEqual(d.stop(), 0, d.logtext())
        d2 = self.daemon(args=["--election", os.path.join(
            ELECTIONS, ds, "election.json")],
            env={"TALLYD_INGEST_TOKEN": TOKEN}, data_dir=d.data_dir)
        after = [d2.get(v).json() for v in views]
        for b, a in zip(before, after):
            for k in ("updated_at", "received_at"):
                b.pop(k, None)
                a.pop(k, None)
            self.assertEqual(a, b)

    def test_norway_explain_shows_the_levelling_tier(self):
        d = self.counted("no-2021")
        p = self.province(d, "03", "?explain=1")
        lv = p["levelling"]
        self.assertEqual((lv["seats"], lv["pending"], lv["unassigned"]),
                         (19, 0, 0))
        self.assertEqual(lv["threshold"]["percent"], "4")
        self.assertEqual(len(lv["assignment"]), 19)
        self.assertEqual(sorted(a["province"] for a in lv["assignment"]),
                         sorted(load("no-2021", "expected.json")["levelling"]))
        nat = {r["coalition"]: r for r in lv["national"]}
        self.assertEqual(sum(r["levelling_seats"] for r in nat.values()), 19)
        for r in nat.values():
            if r["eligible"] and r["set_aside_in_round"] is None:
                self.assertEqual(r["national_share"],
                                 r["district_seats"] + r["levelling_seats"])
        # Below 4 %: no levelling seats, whatever its district seats.
        self.assertFalse(nat["PF"]["eligible"])
        self.assertEqual(nat["PF"]["levelling_seats"], 0)


if __name__ == "__main__":
    main()
