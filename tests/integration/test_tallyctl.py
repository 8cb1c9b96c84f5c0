#!/usr/bin/env python3
"""tallyctl against the real daemon (and, for what today's daemon does not
serve yet -- Server-Sent Events, 503 -- against small Python servers that
record what tallyctl sent).

Every exit code in tallyctl(1) that can be produced today is checked here.
"""
import copy
import http.server
import json
import os
import shutil
import signal
import socketserver
import subprocess
import tempfile
import threading
import time

from harness import ELECTIONS, SOURCE_ROOT, CheckedDaemonTest, free_port, main

TALLYCTL = os.environ.get("TALLYCTL", "tallyctl")
TOKEN = "tallyctl-test-token-0123456789abcdef"
DATASETS = os.environ.get("TALLYD_DATASETS") or os.path.join(
    os.path.dirname(SOURCE_ROOT), "shared", "data",
                        "elections")
DS = "es-2019-04"

# A duplicate is success: the documented outcome of a retry.
EXIT = {"ok": 0, "duplicate": 0, "usage": 2, "invalid": 3, "stale": 4,
        "conflict": 5, "unauthorized": 6, "unavailable": 7, "unsupported": 8,
        "mismatch": 9}


def load(ds, name):
    with open(os.path.join(ELECTIONS, ds, name)) as f:
        return json.load(f)


def entry(province, ds=DS):
    for e in load(ds, "results.json")["results"]:
        if e["province"] == province:
            return copy.deepcopy(e)
    raise KeyError(province)


def need_datasets(test):
    if not os.path.isdir(os.path.join(DATASETS, DS)):
        test.skipTest("no ../shared/data/elections beside the source tree")


class CtlTest(CheckedDaemonTest):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tallyctl-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def start(self, ds=DS, election=None, args=(), **kw):
        election = election or os.path.join(ELECTIONS, ds, "election.json")
        return self.daemon(args=["--election", election] + list(args),
                           env={"TALLYD_INGEST_TOKEN": TOKEN}, **kw)

    def env(self, d=None, url=None, token=TOKEN):
        e = dict(os.environ)
        e.pop("TALLYD_TOKEN", None)
        e["TALLYD_URL"] = url or "http://127.0.0.1:%d" % d.port
        if token is not None:
            e["TALLYD_TOKEN"] = token
        return e

    def ctl(self, d, *args, url=None, token=TOKEN, stdin=None, timeout=60):
        p = subprocess.run([TALLYCTL] + list(args), env=self.env(d, url, token),
                           input=stdin, capture_output=True, timeout=timeout,
                           cwd=self.tmp)
        out, err = p.stdout.decode(), p.stderr.decode()
        self.assertNotIn("runtime error:", err)
        self.assertNotIn("Sanitizer", err)
        return p.returncode, out, err

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text if isinstance(text, str) else json.dumps(text))
        return path

    def province(self, d, pid):
        return d.get("/v1/provinces/" + pid).json()

    def national(self, d):
        lb = d.get("/v1/leaderboard").json()
        return {c["id"]: c["seats"] for c in lb["coalitions"] if c["seats"]}


class Basics(CtlTest):

    def test_help_and_usage(self):
        for cmd in ("post", "lot", "replay", "watch", "token", "check",
                    "import"):
            rc, out, _ = self.ctl(None, cmd, "--help", url="http://x")
            self.assertEqual(rc, 0, cmd)
            self.assertIn("usage: tallyctl " + cmd, out)
        rc, out, _ = self.ctl(None, "--help", url="http://x")
        self.assertEqual(rc, 0)
        self.assertIn("replay", out)
        rc, _, err = self.ctl(None, "frobnicate", url="http://x")
        self.assertEqual(rc, EXIT["usage"])
        rc, _, err = self.ctl(None, "post", url="http://x")
        self.assertEqual(rc, EXIT["usage"])
        rc, _, err = self.ctl(None, "post", "--retry", "x", "f", url="http://x")
        self.assertEqual(rc, EXIT["usage"])

    def test_unavailable(self):
        url = "http://127.0.0.1:%d" % free_port()
        path = self.write("s.json", dict(entry("01"), province="01"))
        t = time.monotonic()
        rc, _, err = self.ctl(None, "post", "--retry", "0", path, url=url)
        self.assertEqual(rc, EXIT["unavailable"], err)
        self.assertIn("unavailable", err)
        # With a retry window it keeps trying for about that long.
        t = time.monotonic()
        rc, _, err = self.ctl(None, "post", "--retry", "1", path, url=url)
        self.assertEqual(rc, EXIT["unavailable"], err)
        self.assertGreaterEqual(time.monotonic() - t, 0.9)
        self.assertIn("retrying", err)
        rc, _, err = self.ctl(None, "watch", "--once", "--retry", "0", url=url)
        self.assertEqual(rc, EXIT["unavailable"], err)


class Post(CtlTest):

    def test_single_snapshot_and_every_answer(self):
        d = self.start()
        body = entry("28")
        path = self.write("madrid.json", body)       # names its province
        rc, out, err = self.ctl(d, "post", path)
        self.assertEqual(rc, EXIT["ok"], err)
        self.assertIn("applied: province 28 revision 1", out)
        self.assertEqual(self.province(d, "28")["revision"], 1)
        # The same again: duplicate, nothing new.
        v = d.get("/v1/leaderboard").json()["version"]
        rc, out, err = self.ctl(d, "post", path)
        self.assertEqual(rc, EXIT["duplicate"], err)
        self.assertIn("duplicate: province 28 revision 1 is already applied "
                      "(held in version %d)" % v, out)
        self.assertEqual(d.get("/v1/leaderboard").json()["version"], v)
        # From stdin, without "province": --province.
        b2 = entry("28")
        del b2["province"]
        b2["revision"] = 2
        b2["status"] = "final"
        rc, out, err = self.ctl(d, "post", "--province", "28", "-",
                                stdin=json.dumps(b2).encode())
        self.assertEqual(rc, EXIT["ok"], err)
        # Lower revision: stale.
        rc, _, err = self.ctl(d, "post", path)
        self.assertEqual(rc, EXIT["stale"], err)
        self.assertIn("409 stale_revision", err)
        # Same revision, other content: conflict.
        b2["votes"]["000096"] += 1
        rc, _, err = self.ctl(d, "post", "-p", "28", "-",
                              stdin=json.dumps(b2).encode())
        self.assertEqual(rc, EXIT["conflict"], err)
        self.assertIn("revision_conflict", err)
        # Unknown list: 422 with the field.
        b2["revision"] = 3
        b2["votes"]["nosuchlist"] = 1
        rc, _, err = self.ctl(d, "post", "-p", "28", "-",
                              stdin=json.dumps(b2).encode())
        self.assertEqual(rc, EXIT["invalid"], err)
        self.assertIn("422 unknown_list", err)
        self.assertIn("[/votes/nosuchlist]", err)
        # Unknown province: 404 unknown_province is invalid input.
        rc, _, err = self.ctl(d, "post", "-p", "nowhere", "-",
                              stdin=json.dumps(b2).encode())
        self.assertEqual(rc, EXIT["invalid"], err)
        # Wrong token, no token: unauthorised.
        rc, _, err = self.ctl(d, "post", path, token="wrong-token-0123456789")
        self.assertEqual(rc, EXIT["unauthorized"], err)
        self.assertIn("401", err)
        rc, _, err = self.ctl(d, "post", path, token=None)
        self.assertEqual(rc, EXIT["unauthorized"], err)
        rc, _, err = self.ctl(d, "post", path, token="two\r\nX-Evil: 1")
        self.assertEqual(rc, EXIT["usage"], err)
        # A token file instead of TALLYD_TOKEN.
        tf = self.write("token", TOKEN + "\n")
        rc, _, err = self.ctl(d, "post", "--token-file", tf, path, token=None)
        self.assertEqual(rc, EXIT["stale"], err)
        self.assertEqual(self.province(d, "28")["revision"], 2)

    def test_post_waits_for_a_daemon_that_restarts(self):
        d = self.start()
        d.stop()
        d.log.close()
        path = os.path.join(ELECTIONS, DS, "results.json")
        p = subprocess.Popen([TALLYCTL, "post", "--retry", "20", path],
                             env=self.env(d), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        time.sleep(0.7)
        d.start()
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err)
        self.assertIn("52 applied", out.decode())
        self.assertIn("retrying", err.decode())
        self.assertEqual(self.national(d), load(DS, "expected.json")["national"])

    def test_json_syntax_error_names_line_and_column(self):
        d = self.start()
        path = self.write("bad.json", '{"revision": 1,\n  "votes": {"000096": 12,}}\n')
        rc, _, err = self.ctl(d, "post", "-p", "28", path)
        self.assertEqual(rc, EXIT["invalid"], err)
        self.assertRegex(err, r"bad\.json:2:\d+: ")
        self.assertEqual(self.province(d, "28")["revision"], 0)

    def test_batch(self):
        d = self.start()
        path = os.path.join(ELECTIONS, DS, "results.json")
        rc, out, err = self.ctl(d, "post", path)
        self.assertEqual(rc, EXIT["ok"], err)
        self.assertIn("52 applied, 0 duplicate", out)
        self.assertEqual(self.national(d), load(DS, "expected.json")["national"])
        rc, out, err = self.ctl(d, "post", path)
        self.assertEqual(rc, EXIT["duplicate"], err)
        self.assertIn("duplicate: 0 applied, 52 duplicate (all already "
                      "held in version 1)", out)
        # A bare array is a batch too.
        arr = [dict(entry("01"), revision=2)]
        rc, out, err = self.ctl(d, "post", self.write("a.json", arr))
        self.assertEqual(rc, EXIT["ok"], err)
        self.assertEqual(self.province(d, "01")["revision"], 2)

    def test_csv_long_and_wide(self):
        d = self.start()
        e28, e08 = entry("28"), entry("08")
        rows = ["province,list,votes"]
        for e in (e28, e08):
            for lid, v in e["votes"].items():
                rows.append("%s,%s,%d" % (e["province"], lid, v))
            rows.append("%s,blank,%d" % (e["province"], e["blank"]))
            rows.append("%s,invalid,%d" % (e["province"], e["invalid"]))
        path = self.write("long.csv", "\r\n".join(rows) + "\r\n")
        rc, out, err = self.ctl(d, "post", "--csv", path, "--revision", "1",
                                "--status", "partial")
        self.assertEqual(rc, EXIT["ok"], err)
        self.assertIn("2 applied", out)
        for e in (e28, e08):
            p = self.province(d, e["province"])
            self.assertEqual(p["revision"], 1)
            self.assertEqual(p["status"], "partial")
            self.assertEqual(p["votes"]["blank"], e["blank"])
            self.assertEqual(p["votes"]["invalid"], e["invalid"])
            self.assertEqual({l["id"]: l["votes"] for l in p["lists"]},
                             e["votes"])
        # Wide: a column per list (empty: not standing there), plus the
        # counters, stations and status; quoted cells and a BOM.
        lists = sorted(set(e28["votes"]) | set(e08["votes"]))
        head = ["province", "revision"] + lists + [
            "blank", "invalid", "stations_reporting", "stations_total",
            "status", "note"]
        lines = [",".join(head)]
        for e, note in ((e28, 'recount, "table 4"'), (e08, "")):
            cells = [e["province"], "2"]
            cells += [str(e["votes"][l]) if l in e["votes"] else ""
                      for l in lists]
            cells += [str(e["blank"]), str(e["invalid"]), "100", "100",
                      "final", '"%s"' % note.replace('"', '""')]
            lines.append(",".join(cells))
        path = self.write("wide.csv", "\ufeff" + "\n".join(lines) + "\n")
        rc, out, err = self.ctl(d, "post", "--csv", path)
        self.assertEqual(rc, EXIT["ok"], err)
        p = self.province(d, "28")
        self.assertEqual((p["revision"], p["status"]), (2, "final"))
        self.assertEqual(p["stations"], {"reporting": 100, "total": 100})
        self.assertEqual({l["id"]: l["votes"] for l in p["lists"]},
                         e28["votes"])
        h = d.get("/v1/provinces/28/history").json()["revisions"]
        self.assertEqual(h[-1]["note"], 'recount, "table 4"')
        rc, out, err = self.ctl(d, "post", "--csv", path)
        self.assertEqual(rc, EXIT["duplicate"], err)

    def test_csv_errors_name_line_and_column(self):
        d = self.start()
        cases = [
            ("province,list,votes\n28,000096,12\n28,000083,12x\n",
             ["--revision", "1"], "e.csv:3:11: votes"),
            ("province,list,votes\n28,000096,1\n28,000096,2\n",
             ["--revision", "1"], "e.csv:3:4: 000096 in province 28 a second"),
            ("province,list,votes\n28,000096\n", ["--revision", "1"],
             "e.csv:2:"),
            ('province,list,votes\n28,"000096,1\n', ["--revision", "1"],
             "e.csv:2:4: the quote opened here is never closed"),
            ("province,list,votes\n28,0000\"96,1\n", ["--revision", "1"],
             "e.csv:2:8: a quote inside an unquoted field"),
            ("province,000096,blank\n28,5,x\n", ["--revision", "1"],
             "e.csv:2:6: blank"),
            ("province,000096,status\n28,5,done\n", ["--revision", "1"],
             "e.csv:2:6: status"),
            ("province,000096\n28,5\n", [], "no revision for province 28"),
            ("province,no such list\n28,5\n", ["--revision", "1"],
             "e.csv:1:10: column"),
            ("Província,Vots\n", ["--revision", "1"], "e.csv:1:1: the first"),
            # Columns count characters, not bytes.
            ("province,000096,note,blank\n28,5,Ñandú €,x\n",
             ["--revision", "1"], "e.csv:2:14: blank"),
        ]
        for text, args, want in cases:
            path = self.write("e.csv", text)
            rc, _, err = self.ctl(d, "post", "--csv", path, *args)
            self.assertEqual(rc, EXIT["invalid"], (text, err))
            self.assertIn(want, err, text)
        # Rejected by the daemon: the line of the entry is named.
        path = self.write("e.csv", "province,list,votes\n28,000096,1\n"
                          "08,000096,1\n08,zzz,3\n")
        rc, _, err = self.ctl(d, "post", "--csv", path, "--revision", "1")
        self.assertEqual(rc, EXIT["invalid"], err)
        self.assertIn("[/results/1/votes/zzz]", err)
        # The bad cell itself, not the first row of its province.
        self.assertIn("e.csv:4:4: HTTP 422 unknown_list", err)
        self.assertEqual(self.province(d, "28")["revision"], 0)


class GlobalOptions(CtlTest):
    """The usage line's form: global options before the command, or after
    it; and a retry script under `set -e` that meets a duplicate."""

    def bare_env(self):
        e = dict(os.environ)
        e.pop("TALLYD_TOKEN", None)
        e.pop("TALLYD_URL", None)
        return e

    def run_ctl(self, *args):
        p = subprocess.run([TALLYCTL] + list(args), env=self.bare_env(),
                           capture_output=True, timeout=60, cwd=self.tmp)
        out, err = p.stdout.decode(), p.stderr.decode()
        self.assertNotIn("runtime error:", err)
        self.assertNotIn("Sanitizer", err)
        return p.returncode, out, err

    def test_options_before_and_after_the_command(self):
        d = self.start()
        url = "http://127.0.0.1:%d" % d.port
        tf = self.write("token", TOKEN + "\n")
        path = self.write("madrid.json", entry("28"))
        rc, out, err = self.run_ctl("--url", url, "--token-file", tf,
                                    "post", path)
        self.assertEqual(rc, EXIT["ok"], err)
        self.assertIn("applied: province 28 revision 1", out)
        self.assertEqual(self.province(d, "28")["revision"], 1)
        # The = forms, -v and --retry before; the rest after.
        b = dict(entry("28"), revision=2)
        rc, out, err = self.run_ctl("--url=" + url, "-v", "--retry=0",
                                    "post", "--token-file", tf,
                                    self.write("r2.json", b))
        self.assertEqual(rc, EXIT["ok"], err)
        self.assertEqual(self.province(d, "28")["revision"], 2)
        # After the command, the command's own option wins over the global.
        dead = "http://127.0.0.1:%d" % free_port()
        rc, out, err = self.run_ctl("--url", dead, "--token-file", tf,
                                    "watch", "--once", "--url", url)
        self.assertEqual(rc, EXIT["ok"], err)
        rc, out, err = self.run_ctl("--url", url, "--retry", "0", "lot",
                                    "--token-file", tf, "-r", "1", "28",
                                    "000096", "000033")
        self.assertNotEqual(rc, EXIT["usage"], err)
        # Bad global options are usage errors that say what is wrong.
        rc, _, err = self.run_ctl("--frobnicate", "post", path)
        self.assertEqual(rc, EXIT["usage"], err)
        self.assertIn("frobnicate", err)
        rc, _, err = self.run_ctl("--retry", "x", "post", path)
        self.assertEqual(rc, EXIT["usage"], err)
        self.assertIn("--retry", err)
        rc, _, err = self.run_ctl("--url", url)
        self.assertEqual(rc, EXIT["usage"], err)
        self.assertIn("usage: tallyctl", err)
        rc, out, _ = self.run_ctl("--url", url, "--help")
        self.assertEqual(rc, 0)
        self.assertIn("usage: tallyctl [--url URL] [--token-file FILE]", out)

    def test_a_retry_script_under_set_e_goes_on_after_a_duplicate(self):
        d = self.start()
        tf = self.write("token", TOKEN + "\n")
        path = self.write("madrid.json", entry("28"))
        batch = os.path.join(ELECTIONS, DS, "results.json")
        script = ("set -e\n"
                  "for i in 1 2 3; do\n"
                  "  \"$CTL\" --url \"$URL\" --token-file \"$TF\" post \"$F\"\n"
                  "  \"$CTL\" --url \"$URL\" --token-file \"$TF\" post \"$B\"\n"
                  "done\n"
                  "echo all-posted\n")
        env = dict(self.bare_env(), CTL=TALLYCTL, TF=tf, F=path, B=batch,
                   URL="http://127.0.0.1:%d" % d.port)
        p = subprocess.run(["sh", "-c", script], env=env, capture_output=True,
                           timeout=120, cwd=self.tmp)
        out, err = p.stdout.decode(), p.stderr.decode()
        self.assertEqual(p.returncode, 0, out + err)
        self.assertIn("all-posted", out)
        # One record per revision: the retries added nothing.
        lb = d.get("/v1/leaderboard").json()
        self.assertEqual(lb["version"], 2, out)
        self.assertEqual(out.count("duplicate: province 28 revision 1 is "
                                   "already applied (held in version 2)"),
                         2, out)


class Replay(CtlTest):

    def test_replay_ends_with_the_official_seats(self):
        need_datasets(self)
        d = self.start()
        rc, out, err = self.ctl(d, "replay", "--speed", "0", "--seed", "5",
                                "--corrections", os.path.join(DATASETS, DS))
        self.assertEqual(rc, EXIT["ok"], out + err)
        self.assertIn("official seats: match (350 seats, 52/52 provinces "
                      "final)", out)
        self.assertIn("correction", out)
        self.assertEqual(self.national(d), load(DS, "expected.json")["national"])
        # Partial revisions first, in a seeded order: the same seed gives
        # the same night (revisions continue from where the daemon is).
        lines = [l for l in out.splitlines() if l.startswith("t+")]
        self.assertGreater(len(lines), 52 * 3)
        rc2, out2, _ = self.ctl(d, "replay", "--speed", "0", "--seed", "5",
                                "--corrections", os.path.join(DATASETS, DS))
        self.assertEqual(rc2, 0, out2)
        strip = lambda ls: [l.split(" revision")[0] for l in ls]
        self.assertEqual(strip(lines), strip(
            [l for l in out2.splitlines() if l.startswith("t+")]))

    def test_replay_from_the_repository(self):
        """A fresh clone has no ../shared datasets, only what
        scripts/import-dataset made of them (tests/data/elections/<id>:
        election.json, results.json, expected.json): replay takes that form
        too (README's rehearsal named ../shared, and said "No such file"
        in a clone).  Two tiers as well (Norway: levelling seats counted
        with the province's), and a dataset whose expected.json has the
        seats of three regions only (Czechia: "provinces_scope"; replay
        compared the other eleven's zero and said MISMATCH)."""
        for ds, summary in ((DS, "350 seats, 52/52"),
                            ("no-2021", "169 seats, 19/19"),
                            ("cz-2017", "200 seats, 14/14")):
            with self.subTest(ds=ds):
                d = self.start(ds=ds)
                rc, out, err = self.ctl(d, "replay", "--speed", "0",
                                        "--seed", "5", "--corrections",
                                        os.path.join(ELECTIONS, ds))
                self.assertEqual(rc, EXIT["ok"], out + err)
                self.assertIn("official seats: match (%s provinces final)"
                              % summary, out)
                self.assertEqual(self.national(d),
                                 load(ds, "expected.json")["national"])
                if os.path.isdir(os.path.join(DATASETS, ds)):
                    # The same night as from the commission's files.
                    d2 = self.start(ds=ds)
                    rc2, out2, err2 = self.ctl(
                        d2, "replay", "--speed", "0", "--seed", "5",
                        "--corrections", os.path.join(DATASETS, ds))
                    self.assertEqual(rc2, EXIT["ok"], out2 + err2)
                    night = lambda o: [l.split(":")[:3] for l in
                                       o.splitlines() if l.startswith("t+")]
                    self.assertEqual(night(out), night(out2))
        # A broken one is named, with the file.
        bad = os.path.join(self.tmp, "broken")
        shutil.copytree(os.path.join(ELECTIONS, DS), bad)
        os.remove(os.path.join(bad, "expected.json"))
        d = self.start()
        rc, out, err = self.ctl(d, "replay", "--speed", "0", bad)
        self.assertEqual(rc, EXIT["invalid"], out + err)
        self.assertIn("expected.json", err)

    def test_replay_says_mismatch(self):
        need_datasets(self)
        e = load(DS, "election.json")
        e["allocation"] = {"method": "sainte-lague", "ties": "votes"}
        d = self.start(election=self.write("sl.json", e))
        rc, out, err = self.ctl(d, "replay", "--speed", "0",
                                os.path.join(DATASETS, DS))
        self.assertEqual(rc, EXIT["mismatch"], out + err)
        self.assertIn("official seats: MISMATCH", out)
        self.assertRegex(out, r"  000096: \d+ seats here, 123 official")

    def test_replay_wrong_election(self):
        need_datasets(self)
        d = self.start(ds="no-2021")
        rc, _, err = self.ctl(d, "replay", "--speed", "0",
                              os.path.join(DATASETS, DS))
        self.assertEqual(rc, EXIT["invalid"], err)
        self.assertIn("is not in the daemon's election", err)

    def test_retries_across_a_restart_lose_and_duplicate_nothing(self):
        need_datasets(self)
        d = self.start()
        env = self.env(d)
        # About 3 s of posting at this speed; the daemon dies in the middle.
        p = subprocess.Popen([TALLYCTL, "replay", "--speed", "5000",
                              "--retry", "30", os.path.join(DATASETS, DS)],
                             env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        time.sleep(1.2)
        d.kill()                              # SIGKILL: no clean shutdown
        d.log.close()
        time.sleep(0.8)
        d.start()
        out, err = p.communicate(timeout=60)
        out, err = out.decode(), err.decode()
        self.assertEqual(p.returncode, 0, out + err)
        self.assertIn("official seats: match", out)
        self.assertIn("retrying", err)
        posted = [l for l in out.splitlines() if l.startswith("t+")]
        n = int(out.split("posted ")[1].split(" feeds")[0])
        self.assertEqual(len(posted), n)
        # Every province's history is exactly its revisions 1..k, once each.
        total = 0
        for prov in load(DS, "election.json")["provinces"]:
            h = d.get("/v1/provinces/%s/history" % prov["id"]).json()
            revs = [r["revision"] for r in h["revisions"]]
            self.assertEqual(revs, list(range(1, len(revs) + 1)), prov["id"])
            want = [l for l in posted if l.split()[1] == prov["id"]]
            self.assertEqual(len(revs), len(want), prov["id"])
            total += len(revs)
        self.assertEqual(total, n)


class Watch(CtlTest):

    def test_once(self):
        d = self.start()
        rc, out, err = self.ctl(d, "watch", "--once")
        self.assertEqual(rc, 0, err)
        self.assertIn("version 0", out)
        self.assertIn("(no results yet)", out)
        self.ctl(d, "post", os.path.join(ELECTIONS, DS, "results.json"))
        rc, out, err = self.ctl(d, "watch", "--once")
        self.assertEqual(rc, 0, err)
        self.assertNotIn("\033[", out)
        self.assertIn("Congreso de los Diputados, 28 April 2019", out)
        self.assertIn("seats 350/350 allocated, 0 pending, majority 176", out)
        self.assertIn("provinces 52/52 reporting, 52 final", out)
        psoe = [l for l in out.splitlines() if " PSOE " in l][0]
        self.assertEqual(psoe.split()[:3], ["1", "PSOE", "123"])
        self.assertIn("7,513,142", psoe)
        self.assertIn("28.67%", psoe)

    def test_polling_fallback_shows_new_numbers(self):
        d = self.start()
        # tallyd has /v1/events now: --poll asks for the fallback.
        p = subprocess.Popen([TALLYCTL, "watch", "--poll", "--interval", "0.1",
                              "--count", "2", "-v"], env=self.env(d),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(0.5)
        self.ctl(d, "post", os.path.join(ELECTIONS, DS, "results.json"))
        out, err = p.communicate(timeout=20)
        out, err = out.decode(), err.decode()
        self.assertEqual(p.returncode, 0, err)
        self.assertIn("version 0", out)
        self.assertIn("provinces 52/52 reporting", out)
        psoe = [l for l in out.splitlines() if " PSOE " in l][0]
        self.assertEqual(psoe.split()[:4], ["1", "PSOE", "123", "+123"])
        self.assertIn("last change: v1", out)
        self.assertIn("PSOE +123", out)
        self.assertIn("provinces reporting 0 -> 52", out)

    def test_in_a_terminal(self):
        if shutil.which("tmux") is None:
            self.skipTest("no tmux")
        d = self.start()
        sock = "tallyctl-test-%d" % os.getpid()
        name = "w"
        tmux = ["tmux", "-L", sock]
        cmd = "env TALLYD_URL=http://127.0.0.1:%d %s watch --interval 0.1" % (
            d.port, TALLYCTL)
        subprocess.run(tmux + ["new-session", "-d", "-s", name, "-x", "110",
                               "-y", "40", cmd], check=True,
                       env=dict(os.environ, TMUX=""))
        self.addCleanup(subprocess.run, tmux + ["kill-server"],
                        capture_output=True)

        def screen_until(*texts, timeout=10):
            # Every one of texts: the pane may be captured half redrawn.
            deadline = time.monotonic() + timeout
            s = ""
            while time.monotonic() < deadline:
                s = subprocess.run(tmux + ["capture-pane", "-p", "-t", name],
                                   capture_output=True).stdout.decode()
                if all(t in s for t in texts):
                    return s
                time.sleep(0.1)
            self.fail("the pane never showed %r:\n%s" % (texts, s))

        screen_until("(no results yet)")
        self.ctl(d, "post", self.write("m.json", entry("28")))
        s = screen_until("provinces 1/52 reporting", "last change: v1",
                         "live (events)")
        # The real daemon's event stream, not polling ("live (events)").
        # Redrawn in place: one table on the screen, not two.
        self.assertEqual(s.count("# party"), 1)
        self.ctl(d, "post", self.write("b.json", entry("08")))
        s = screen_until("provinces 2/52 reporting", "last change: v2")
        self.assertEqual(s.count("# party"), 1)


class SSEHandler(http.server.BaseHTTPRequestHandler):
    """/v1/events: two connections' worth of events; records headers."""

    protocol_version = "HTTP/1.1"
    seen = []

    def log_message(self, *a):
        pass

    @staticmethod
    def board(version, psoe, pp, reporting):
        return {"election": {"id": "t", "name": "Test night"},
                "version": version, "updated_at": "2019-04-28T20:00:0%dZ" % version,
                "seats": {"total": 10, "allocated": psoe + pp, "pending": 0,
                          "majority": 6},
                "provinces": {"total": 3, "reporting": reporting, "final": 0},
                "votes": {"valid": 1000 * version, "blank": 0, "invalid": 0},
                "coalitions": [
                    {"rank": 1, "id": "psoe", "short": "PSOE", "name": "P",
                     "votes": 600 * version, "share": 60.0, "seats": psoe},
                    {"rank": 2, "id": "pp", "short": "PP", "name": "Q",
                     "votes": 400 * version, "share": 40.0, "seats": pp}]}

    def do_GET(self):
        SSEHandler.seen.append((self.path, self.headers.get("Last-Event-ID"),
                                self.headers.get("Accept")))
        if self.path != "/v1/events":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        if [s[0] for s in SSEHandler.seen].count("/v1/events") == 1:
            text = json.dumps(self.board(5, 3, 2, 1), indent=1)
            half = text.index('"coalitions"')
            # A comment, a retry, data split over lines, CRLF endings.
            out = ": hello\n\nretry: 50\r\nevent: leaderboard\r\nid: 5\r\n"
            out += "data: " + text[:half].replace("\n", "\ndata: ") + "\r\n"
            out += "data:" + text[half:].replace("\n", "\ndata:") + "\r\n\r\n"
            out += "event: unknown\ndata: x\n\n"
        else:
            out = "event: change\nid: 6\ndata: {\"version\": 6, " \
                  "\"provinces\": [\"28\", \"08\"]}\n\n"
            out += "event: leaderboard\nid: 6\ndata: %s\n\n" % json.dumps(
                self.board(6, 5, 3, 2))
        self.wfile.write(out.encode())
        self.wfile.flush()


class RecordingHandler(http.server.BaseHTTPRequestHandler):
    """A stand-in for the daemon: canned answers, every request recorded."""

    protocol_version = "HTTP/1.1"
    requests = []
    answers = {}       # (method, path) -> list of (status, headers, body)

    def log_message(self, *a):
        pass

    def answer(self, method):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        RecordingHandler.requests.append(
            (method, self.path, dict(self.headers), body))
        queue = RecordingHandler.answers.get((method, self.path), [])
        status, headers, out = queue.pop(0) if len(queue) > 1 else (
            queue[0] if queue else (404, {}, {"error": {
                "code": "not_found", "message": "no such resource"}}))
        data = json.dumps(out).encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.answer("GET")

    def do_POST(self):
        self.answer("POST")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class FakeDaemon(CtlTest):

    def serve(self, handler):
        srv = Server(("127.0.0.1", 0), handler)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        return "http://127.0.0.1:%d" % srv.server_address[1]

    def test_sse_stream(self):
        SSEHandler.seen = []
        url = self.serve(SSEHandler)
        rc, out, err = self.ctl(None, "watch", "--count", "2", url=url,
                                timeout=20)
        self.assertEqual(rc, 0, err)
        self.assertEqual(SSEHandler.seen[1],
                         ("/v1/events", None, "text/event-stream"))
        # The second connection resumed after the last event id.
        self.assertEqual(SSEHandler.seen[2][1], "5")
        tables = out.split("last change:")
        self.assertIn("Test night — version 5", tables[0])
        self.assertIn("provinces 1/3 reporting", tables[0])
        self.assertIn("version 6", tables[1])
        psoe = [l for l in tables[1].splitlines() if " PSOE " in l][0]
        self.assertEqual(psoe.split()[:4], ["1", "PSOE", "5", "+2"])
        self.assertIn("v6 20:00:06: provinces 28, 08; PSOE +2 PP +1", out)
        # One GET for the table before the first event, then only events.
        self.assertEqual([s[0] for s in SSEHandler.seen],
                         ["/v1/leaderboard", "/v1/events", "/v1/events"])

    def test_lot_request(self):
        RecordingHandler.requests = []
        RecordingHandler.answers = {
            ("GET", "/v1/provinces/28"): [(200, {}, {
                "id": "28", "revision": 4, "pending": [
                    {"seats": 1, "tied": ["a", "b"], "rule": "lot"}]})],
            ("POST", "/v1/provinces/28/lot"): [(201, {}, {
                "status": "applied", "province": "28", "revision": 4})],
        }
        url = self.serve(RecordingHandler)
        rc, out, err = self.ctl(None, "lot", "28", "b", "a", url=url)
        self.assertEqual(rc, 0, err)
        self.assertIn("applied: lot for province 28 at revision 4", out)
        method, path, headers, body = RecordingHandler.requests[-1]
        self.assertEqual((method, path), ("POST", "/v1/provinces/28/lot"))
        self.assertEqual(json.loads(body), {"revision": 4, "order": ["b", "a"]})
        self.assertEqual(headers["Authorization"], "Bearer " + TOKEN)
        self.assertEqual(headers["Content-Type"], "application/json")
        # An explicit revision skips the GET.
        RecordingHandler.requests = []
        rc, out, err = self.ctl(None, "lot", "-r", "7", "28", "a", "b", url=url)
        self.assertEqual(rc, 0, err)
        self.assertEqual([r[0] for r in RecordingHandler.requests], ["POST"])
        self.assertEqual(json.loads(RecordingHandler.requests[0][3])["revision"], 7)
        # Usage: one list, a list twice, a bad id.
        for args in (["28", "a"], ["28", "a", "a"], ["28", "a", "b/c"]):
            rc, _, _ = self.ctl(None, "lot", *args, url=url)
            self.assertEqual(rc, EXIT["usage"], args)

    def test_503_retry_after_is_honoured(self):
        RecordingHandler.requests = []
        busy = (503, {"Retry-After": "1"}, {"error": {
            "code": "journal_unavailable", "message": "disk full"}})
        RecordingHandler.answers = {
            ("POST", "/v1/provinces/28/results"): [busy, busy, (201, {}, {
                "status": "applied", "province": "28", "revision": 1,
                "version": 9})],
        }
        url = self.serve(RecordingHandler)
        path = self.write("m.json", entry("28"))
        t = time.monotonic()
        rc, out, err = self.ctl(None, "post", path, url=url)
        self.assertEqual(rc, 0, err)
        self.assertGreaterEqual(time.monotonic() - t, 1.9)
        self.assertEqual(len(RecordingHandler.requests), 3)
        bodies = {r[3] for r in RecordingHandler.requests}
        self.assertEqual(len(bodies), 1)      # the very same request again
        # Still 503 when the retry window closes: unavailable.
        RecordingHandler.answers[("POST", "/v1/provinces/28/results")] = [busy]
        rc, _, err = self.ctl(None, "post", "--retry", "0", path, url=url)
        self.assertEqual(rc, EXIT["unavailable"], err)
        self.assertIn("503 journal_unavailable", err)


class Lot(CtlTest):
    """tallyctl lot and post against the real daemon, on test_api's small
    election, whose east ties gold and amber for its last seat (rule lot)."""

    def tiny(self):
        from test_api import ELECTION
        return self.start(election=self.write("tiny.json", ELECTION))

    def post(self, d, province, body):
        rc, _, err = self.ctl(d, "post", self.write(
            "p.json", dict(body, province=province)))
        self.assertEqual(rc, EXIT["ok"], err)

    def test_lot_end_to_end(self):
        from test_api import EAST, NORTH
        d = self.tiny()
        rc, _, err = self.ctl(d, "lot", "east", "gold", "amber")
        self.assertEqual(rc, EXIT["invalid"], err)
        self.assertIn("no result yet", err)
        self.post(d, "east", EAST)
        self.post(d, "north", NORTH)
        version = d.get("/v1/leaderboard").json()["version"]
        for args, ex, code in (
                (["east", "gold", "red"], "invalid", "lists_not_tied"),
                (["-r", "5", "east", "gold", "amber"], "invalid",
                 "unknown_revision"),
                (["east", "gold", "zinc"], "invalid", "unknown_list"),
                (["north", "red", "blue"], "conflict", "no_tie_pending")):
            rc, _, err = self.ctl(d, "lot", *args)
            self.assertEqual(rc, EXIT[ex], err)
            self.assertIn(code, err)
        self.assertEqual(d.get("/v1/leaderboard").json()["version"], version)
        rc, out, err = self.ctl(d, "lot", "east", "gold", "amber")
        self.assertEqual(rc, EXIT["ok"], err)
        self.assertIn("applied: lot for province east at revision 1", out)
        e = self.province(d, "east")
        self.assertEqual((e["pending"], e["lot"]["order"]),
                         ([], ["gold", "amber"]))
        lb = d.get("/v1/leaderboard").json()
        self.assertEqual((lb["version"], lb["seats"]["pending"]),
                         (version + 1, 0))
        rc, out, err = self.ctl(d, "lot", "east", "gold", "amber")
        self.assertEqual(rc, EXIT["duplicate"], err)
        self.assertIn("duplicate: the lot for province east at revision 1 "
                      "is already applied (held in version %d)" %
                      (version + 1), out)
        rc, _, err = self.ctl(d, "lot", "east", "amber", "gold")
        self.assertEqual(rc, EXIT["conflict"], err)
        self.assertIn("lot_conflict", err)
        self.post(d, "east", dict(EAST, revision=2, votes=dict(
            EAST["votes"], red=800)))
        rc, _, err = self.ctl(d, "lot", "-r", "1", "east", "gold", "amber")
        self.assertEqual(rc, EXIT["stale"], err)
        self.assertTrue(self.province(d, "east")["lot"]["stale"])

    def test_partial_csv_is_list_missing(self):
        from test_api import NORTH
        d = self.tiny()
        self.post(d, "north", NORTH)
        path = self.write("n.csv", "province,list,votes\nnorth,red,1001\n")
        rc, _, err = self.ctl(d, "post", "--csv", path, "--revision", "2")
        self.assertEqual(rc, EXIT["invalid"], err)
        self.assertIn("list_missing", err)
        self.assertIn("blue", err)
        self.assertEqual(self.province(d, "north")["revision"], 1)


class Tokens(CtlTest):

    def test_token_new_line_is_accepted_by_tallyd(self):
        rc, out, err = self.ctl(None, "token", "new", "--provinces", "28,08",
                                "--label", "madrid desk", "--election",
                                os.path.join(ELECTIONS, DS, "election.json"),
                                url="http://x")
        self.assertEqual(rc, 0, err)
        tok, line = out.splitlines()
        self.assertRegex(tok, r"^[0-9a-f]{64}$")
        self.assertRegex(line, r"^sha256:[0-9a-f]{64} 28,08 madrid desk$")
        rc, out2, _ = self.ctl(None, "token", "new", url="http://x")
        self.assertNotEqual(out2.splitlines()[0], tok)
        self.assertTrue(out2.splitlines()[1].endswith(" *"))
        for bad in (["--label", "a#b"], ["--provinces", "28,,08"],
                    ["--provinces", "a/b"]):
            rc, _, _ = self.ctl(None, "token", "new", *bad, url="http://x")
            self.assertEqual(rc, EXIT["usage"], bad)
        d = self.start(start=False)
        tokens = self.write("tokens", line + "\n")
        conf = self.write("tallyd.conf", "token_file %s\n" % tokens)
        d.args += ["-f", conf]
        d.start()
        rc, out, err = self.ctl(d, "post", self.write("m.json", entry("28")),
                                token=tok)
        self.assertEqual(rc, 0, err)
        rc, out, err = self.ctl(d, "post", self.write("b.json", entry("03")),
                                token=tok)
        self.assertEqual(rc, EXIT["unauthorized"], err)
        self.assertIn("403", err)


class Definitions(CtlTest):

    def test_check_speaks_with_tallyds_messages(self):
        good = os.path.join(ELECTIONS, DS, "election.json")
        rc, out, err = self.ctl(None, "check", good, url="http://x")
        self.assertEqual(rc, 0, err)
        self.assertIn("ok: es-2019-04", out)
        self.assertIn("52 provinces, 350 seats", out)
        bad = load(DS, "election.json")
        bad["allocation"]["treshold"] = bad["allocation"].pop("threshold")
        bad["provinces"][0]["seats"] = 0
        path = self.write("bad.json", bad)
        rc, out, err = self.ctl(None, "check", path, url="http://x")
        self.assertEqual(rc, EXIT["invalid"], err)
        # The very lines tallyd -n prints.
        n = subprocess.run([os.environ.get("TALLYD", "tallyd"), "-n",
                            "--election", path, "--data-dir", self.tmp],
                           capture_output=True, cwd=self.tmp)
        self.assertNotEqual(n.returncode, 0)
        lines = [l for l in err.splitlines() if l.strip()]
        self.assertGreaterEqual(len(lines), 2)
        ntext = (n.stdout + n.stderr).decode()
        for l in lines:
            self.assertIn(l, ntext)
        self.assertIn("/allocation/treshold", err)
        self.assertIn("/provinces/0/seats", err)

    def test_import_gives_a_definition_that_reproduces_the_seats(self):
        need_datasets(self)
        # Spain; Norway with its levelling tier; Poland with a coalition's
        # own threshold and an exempt minority; Slovakia's rounded-up quota.
        for ds in (DS, "no-2021", "pl-2019", "sk-2020"):
            out = os.path.join(self.tmp, ds + ".json")
            rc, _, err = self.ctl(None, "import", "-o", out,
                                  os.path.join(DATASETS, ds), url="http://x")
            self.assertEqual(rc, 0, err)
            rc, _, err = self.ctl(None, "check", out, url="http://x")
            self.assertEqual(rc, 0, err)
            d = self.start(election=out)
            rc, _, err = self.ctl(d, "post", os.path.join(ELECTIONS, ds,
                                                          "results.json"))
            self.assertEqual(rc, 0, err)
            self.assertEqual(self.national(d),
                             load(ds, "expected.json")["national"])
            d.stop()
        # Before the night there are no results: the three files suffice.
        bare = os.path.join(self.tmp, "bare")
        os.mkdir(bare)
        for f in ("constituencies.csv", "parties.csv", "rule.json"):
            shutil.copy(os.path.join(DATASETS, DS, f), bare)
        rc, out, err = self.ctl(None, "import", "--id", "es-test", bare,
                                url="http://x")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["id"], "es-test")
        self.assertEqual(len(json.loads(out)["provinces"]), 52)
        # What is not a dataset is refused, with the reason.
        rc, _, err = self.ctl(None, "import", self.tmp, url="http://x")
        self.assertEqual(rc, EXIT["invalid"])
        self.assertIn("constituencies.csv", err)


if __name__ == "__main__":
    main()
