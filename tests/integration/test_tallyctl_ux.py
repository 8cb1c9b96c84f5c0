#!/usr/bin/env python3
"""tallyctl as a commission's operator meets it (issue 25): --dry-run,
--revision next, show, TLS with a private CA (--cacert, --insecure) and TLS
failures as clear, non-retried errors, every error of errors[] at its line
and column, "did you mean", 401/403 in tallyctl's words, token new checked
against the election.  Each test runs the built tallyctl against a running
tallyd.
"""
import json
import os
import shutil
import subprocess
import time

from harness import ELECTIONS, free_port, main, write_conf
from test_tallyctl import DS, EXIT, TOKEN, CtlTest, entry, load

EXIT = dict(EXIT, tls=11)
ES = os.path.join(ELECTIONS, DS, "election.json")


def leaderboard_version(d):
    return d.get("/v1/leaderboard").json()["version"]


class DryRun(CtlTest):

    def test_dry_run_prints_seat_changes_and_applies_nothing(self):
        d = self.start()
        path = self.write("madrid.json", entry("28"))
        rc, out, err = self.ctl(d, "post", "--dry-run", path)
        self.assertEqual(rc, EXIT["ok"], err)
        self.assertIn("dry run: nothing was applied", out)
        self.assertIn("province 28 revision 1: would be applied", out)
        # Madrid 2019: PSOE 11, Cs 8, PP 7, Podemos 6, Vox 5, by list
        # (with its short name) and nationally by coalition.
        seats = [l for l in out.splitlines() if l.startswith("  seats:")]
        self.assertEqual(len(seats), 1, out)
        for want in ("+11 000096 PSOE", "+8 000022 Cs", "+7 000083 PP",
                     "+5 000117 VOX"):
            self.assertIn(want, seats[0])
        national = [l for l in out.splitlines()
                    if l.startswith("national seats:")]
        self.assertEqual(len(national), 1, out)
        self.assertIn("+11 000096 PSOE", national[0])
        self.assertEqual(leaderboard_version(d), 0)
        self.assertEqual(self.province(d, "28")["revision"], 0)
        # A batch and a CSV export: every province, nothing applied.
        rc, out, err = self.ctl(d, "post", "-n", os.path.join(
            ELECTIONS, DS, "results.json"))
        self.assertEqual(rc, EXIT["ok"], err)
        self.assertEqual(out.count(": would be applied"), 52, out)
        total = sum(load(DS, "expected.json")["national"].values())
        self.assertIn("national seats: ", out)
        got = sum(int(x.split()[0]) for x in out.split(
            "national seats: ")[1].splitlines()[0].split(", "))
        self.assertEqual(got, total)
        csv = self.write("m.csv", "province,list,votes\n" + "".join(
            "28,%s,%d\n" % kv for kv in entry("28")["votes"].items()))
        rc, out, err = self.ctl(d, "post", "--dry-run", "--csv", csv,
                                "--revision", "1")
        self.assertEqual(rc, EXIT["ok"], err)
        self.assertIn("+11 000096 PSOE", out)
        self.assertEqual(leaderboard_version(d), 0)
        # Applied for real, the same again is a duplicate in a dry run.
        rc, _, err = self.ctl(d, "post", path)
        self.assertEqual(rc, EXIT["ok"], err)
        rc, out, err = self.ctl(d, "post", "--dry-run", path)
        self.assertEqual(rc, EXIT["ok"], err)
        self.assertIn("a duplicate", out)
        self.assertIn("national seats: no change", out)
        # A refused dry run exits as the post would, with nothing applied.
        bad = self.write("bad.json", dict(entry("28"), revision=2,
                                          votes={"000096": 1}))
        rc, out, err = self.ctl(d, "post", "--dry-run", bad)
        self.assertEqual(rc, EXIT["invalid"], err)
        self.assertIn("list_missing", err)
        self.assertEqual(leaderboard_version(d), 1)


class RevisionNext(CtlTest):

    def test_revision_next_posts_the_current_revision_plus_one(self):
        d = self.start()
        body = entry("28")
        del body["revision"]
        path = self.write("madrid.json", body)
        for want in (1, 2, 3):
            rc, out, err = self.ctl(d, "post", "--revision", "next", path)
            self.assertEqual(rc, EXIT["ok"], err)
            self.assertIn("applied: province 28 revision %d" % want, out)
            self.assertIn("province 28 is at revision %d: posting revision "
                          "%d" % (want - 1, want), err)
            self.assertEqual(self.province(d, "28")["revision"], want)
        # A file's own revision gives way to the command line, which says so.
        old = self.write("old.json", entry("28"))           # revision 1
        rc, out, err = self.ctl(d, "post", "-r", "next", old)
        self.assertEqual(rc, EXIT["ok"], err)
        self.assertIn("replaces the file's revision 1", err)
        self.assertEqual(self.province(d, "28")["revision"], 4)
        # A CSV: each province its own next (28 at 4, 08 at 0).
        rows = ["province,list,votes"]
        for e in (entry("28"), entry("08")):
            rows += ["%s,%s,%d" % (e["province"], l, v)
                     for l, v in e["votes"].items()]
        csv = self.write("two.csv", "\n".join(rows) + "\n")
        rc, out, err = self.ctl(d, "post", "--csv", csv, "--revision", "next")
        self.assertEqual(rc, EXIT["ok"], err)
        self.assertEqual(self.province(d, "28")["revision"], 5)
        self.assertEqual(self.province(d, "08")["revision"], 1)
        rc, _, err = self.ctl(d, "post", "--revision", "nxt", path)
        self.assertEqual(rc, EXIT["usage"], err)


class Show(CtlTest):

    def test_show_a_province(self):
        rc, out, _ = self.ctl(None, "show", "--help", url="http://x")
        self.assertEqual(rc, EXIT["ok"])
        self.assertIn("usage: tallyctl show", out)
        d = self.start()
        rc, out, err = self.ctl(d, "show", "28", token=None)
        self.assertEqual(rc, EXIT["ok"], err)
        self.assertIn("province 28 (Madrid), 37 seats", out)
        self.assertIn("revision: 0 (no result yet; the first post is "
                      "revision 1)", out)
        body = dict(entry("28"), revision=2, status="partial",
                    stations={"reporting": 9000, "total": 9876})
        rc, _, err = self.ctl(d, "post", self.write("m.json", body))
        self.assertEqual(rc, EXIT["ok"], err)
        rc, out, err = self.ctl(d, "show", "28", token=None)
        self.assertEqual(rc, EXIT["ok"], err)
        self.assertIn("revision: 2, partial (the next post is revision 3)",
                      out)
        self.assertIn("stations: 9,000 of 9,876 reporting", out)
        self.assertIn("votes: 3,782,247 valid (blank 24,631), invalid "
                      "32,112", out)
        self.assertIn("seats: 37 of 37 allocated", out)
        rows = {l.split()[0]: l.split() for l in out.splitlines()
                if l.startswith("  0")}
        self.assertEqual(rows["000096"][1:3], ["PSOE", "1,031,534"])
        self.assertEqual(rows["000096"][-1], "11")
        self.assertIn("below the threshold", " ".join(rows["000063"]))
        rc, out, err = self.ctl(d, "show", "--json", "28", token=None)
        self.assertEqual(rc, EXIT["ok"], err)
        self.assertEqual(json.loads(out)["revision"], 2)
        rc, out, err = self.ctl(d, "show", "82", token=None)
        self.assertEqual(rc, EXIT["invalid"], err)
        self.assertIn("did you mean 28 (Madrid)?", err)
        rc, out, err = self.ctl(d, "show", "Madird", token=None)
        self.assertEqual(rc, EXIT["invalid"], err)
        self.assertIn("did you mean 28 (Madrid)?", err)

    def test_show_a_pending_tie(self):
        from test_api import ELECTION, EAST
        d = self.start(election=self.write("tiny.json", ELECTION))
        rc, _, err = self.ctl(d, "post", self.write(
            "e.json", dict(EAST, province="east")))
        self.assertEqual(rc, EXIT["ok"], err)
        rc, out, err = self.ctl(d, "show", "east")
        self.assertEqual(rc, EXIT["ok"], err)
        self.assertIn("seats: 1 of 2 allocated, 1 pending a lot", out)
        self.assertIn("pending tie: 1 seat(s), rule lot, between", out)
        self.assertRegex(out, r"tallyctl lot east (gold amber|amber gold)")
        rc, _, err = self.ctl(d, "lot", "east", "gold", "amber")
        self.assertEqual(rc, EXIT["ok"], err)
        rc, out, err = self.ctl(d, "show", "east")
        self.assertNotIn("pending tie", out)
        self.assertIn("lot: drawn for revision 1, order gold, amber", out)


class Tls(CtlTest):
    """TLS ingest with a private CA: a CA certificate, and the daemon's
    certificate signed by it (as a commission's IT would set it up)."""

    def openssl(self, *args):
        subprocess.run(["openssl"] + list(args), check=True,
                       capture_output=True, cwd=self.tmp)

    def ca(self, name):
        self.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                     name + ".key", "-out", name + ".crt", "-days", "2",
                     "-subj", "/CN=" + name)
        return os.path.join(self.tmp, name + ".crt")

    def leaf(self, ca):
        self.openssl("req", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                     "srv.key", "-out", "srv.csr", "-subj", "/CN=tallyd")
        with open(os.path.join(self.tmp, "ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\n")
        self.openssl("x509", "-req", "-in", "srv.csr", "-CA", ca + ".crt",
                     "-CAkey", ca + ".key", "-CAcreateserial", "-out",
                     "srv.crt", "-days", "2", "-extfile", "ext")
        return (os.path.join(self.tmp, "srv.crt"),
                os.path.join(self.tmp, "srv.key"))

    def test_private_ca_and_tls_failures(self):
        if shutil.which("openssl") is None:
            self.skipTest("needs openssl")
        ca = self.ca("commission-ca")
        other = self.ca("other-ca")
        crt, key = self.leaf("commission-ca")
        d = self.start(start=False, ingest=True)
        d.args += write_conf(d, tls_cert=crt, tls_key=key)
        d.start()
        tls = "https://127.0.0.1:%d" % d.ingest_port
        path = self.write("m.json", entry("28"))

        def post(url, *opts, env_cacert=None):
            e = self.env(url=url)
            if env_cacert:
                e["TALLYD_CACERT"] = env_cacert
            t = time.monotonic()
            p = subprocess.run([os.environ.get("TALLYCTL", "tallyctl")] +
                               list(opts) + ["post", path], env=e,
                               capture_output=True, text=True, timeout=60)
            self.assertNotIn("Sanitizer", p.stderr)
            self.assertNotIn("runtime error:", p.stderr)
            return p.returncode, p.stdout, p.stderr, time.monotonic() - t

        # The system's CAs do not know the commission's: a clear error,
        # not retried (the default --retry is 30 s), with the fix.
        rc, _, err, took = post(tls)
        self.assertEqual(rc, EXIT["tls"], err)
        self.assertLess(took, 10)
        self.assertNotIn("retrying", err)
        self.assertIn("signed by a CA tallyctl does not trust", err)
        self.assertIn("--cacert FILE", err)
        self.assertNotIn("SSL certificate problem", err)   # curl's words
        rc, _, err, _ = post(tls, "--cacert", other)
        self.assertEqual(rc, EXIT["tls"], err)
        self.assertIn("not the one in --cacert", err)
        # The right CA, by option or environment; --insecure skips it.
        rc, out, err, _ = post(tls, "--cacert", ca)
        self.assertEqual(rc, EXIT["ok"], err)
        self.assertIn("applied: province 28 revision 1", out)
        rc, out, err, _ = post(tls, env_cacert=ca)
        self.assertEqual(rc, EXIT["duplicate"], err)
        rc, out, err, _ = post(tls, "--insecure")
        self.assertEqual(rc, EXIT["duplicate"], err)
        # A name the certificate does not hold.
        rc, _, err, _ = post("https://localhost:%d" % d.ingest_port,
                             "--cacert", ca)
        self.assertEqual(rc, EXIT["tls"], err)
        self.assertIn("not issued for that name", err)
        # Plain http:// to the TLS port: not "Server returned nothing"
        # retried for 30 s, but what to write instead.
        rc, _, err, took = post("http://127.0.0.1:%d" % d.ingest_port)
        self.assertEqual(rc, EXIT["tls"], err)
        self.assertLess(took, 10)
        self.assertNotIn("returned nothing", err)
        self.assertIn("expects TLS", err)
        self.assertIn("--url https://127.0.0.1:%d" % d.ingest_port, err)
        # https:// to the plain public port.
        rc, _, err, _ = post("https://127.0.0.1:%d" % d.port, "--cacert", ca)
        self.assertEqual(rc, EXIT["tls"], err)
        self.assertIn("answers plain HTTP, not TLS", err)
        # A --cacert that holds no certificate is a usage error at once.
        rc, _, err, _ = post(tls, "--cacert", path)
        self.assertEqual(rc, EXIT["usage"], err)
        self.assertIn("no PEM certificate", err)
        # A daemon that is down is still retried (exit 7), TLS or not.
        down = "http://127.0.0.1:%d" % free_port()
        rc, _, err, _ = post(down, "--retry", "0")
        self.assertEqual(rc, EXIT["unavailable"], err)
        self.assertEqual(self.province(d, "28")["revision"], 1)


class Errors(CtlTest):

    def test_every_error_with_line_and_column_of_a_json_file(self):
        d = self.start()
        path = self.write("bad.json",
                          '{"revision": 5,\n'
                          ' "votes": {"000096": 1031534, "zz": 1,\n'
                          '  "PSEO": 3},\n'
                          ' "foo": 1, "status": "x"}\n')
        rc, _, err = self.ctl(d, "post", "-p", "28", path)
        self.assertEqual(rc, EXIT["invalid"], err)
        self.assertIn("HTTP 422: 4 problems, nothing was applied", err)
        for want in ('bad.json:4:2: HTTP 422 unknown_field: unknown field "foo"',
                     'bad.json:2:31: HTTP 422 unknown_list: no list "zz"',
                     'bad.json:3:3: HTTP 422 unknown_list: no list "PSEO"',
                     'bad.json:4:12: HTTP 422 invalid_value'):
            self.assertIn(want, err)
        self.assertIn("did you mean 000096 (PSOE)?", err)
        # A bare array batch: /results/1/... is the file's second element.
        arr = [dict(entry("01")), dict(entry("02"), province="2")]
        text = json.dumps(arr, indent=1)
        path = self.write("arr.json", text)
        rc, _, err = self.ctl(d, "post", path)
        self.assertEqual(rc, EXIT["invalid"], err)
        line = text[:text.index('"province": "2"')].count("\n") + 1
        self.assertIn("arr.json:%d:" % line, err)
        self.assertIn("unknown_province", err)
        self.assertEqual(leaderboard_version(d), 0)

    def test_csv_errors_point_at_the_bad_cell(self):
        d = self.start()
        # Long: the bad list's own line (4), not its province's first (3).
        path = self.write("e.csv", "province,list,votes\n28,000096,1\n"
                          "08,000096,1\n08,zzz,3\n08,000083,5\n")
        rc, _, err = self.ctl(d, "post", "--csv", path, "--revision", "1")
        self.assertEqual(rc, EXIT["invalid"], err)
        self.assertIn('e.csv:4:4: HTTP 422 unknown_list: no list "zzz"', err)
        # Wide: each cell of two rows, all problems at once.
        path = self.write("w.csv", "province,000096,PSEO,stations_reporting,"
                          "stations_total\n02,5,,3,2\n09,5,6,,\n")
        rc, _, err = self.ctl(d, "post", "--csv", path, "--revision", "1")
        self.assertEqual(rc, EXIT["invalid"], err)
        self.assertIn("2 problems", err)
        self.assertIn("w.csv:2:7: HTTP 422 out_of_range", err)
        self.assertIn('w.csv:3:6: HTTP 422 unknown_list: no list "PSEO"', err)
        self.assertIn("did you mean 000096 (PSOE)?", err)
        self.assertEqual(leaderboard_version(d), 0)


class PostArguments(CtlTest):

    def test_province_as_an_argument_says_province_option(self):
        """`post 28 file.json` (the way `show 28` takes its province) said
        only the usage; the last line now says what to type, and nothing
        is posted."""
        d = self.start()
        body = entry("28")
        del body["province"]
        path = self.write("28.json", body)
        v = leaderboard_version(d)
        rc, out, err = self.ctl(d, "post", "28", path)
        self.assertEqual(rc, EXIT["usage"], err)
        self.assertIn("tallyctl post --province 28 %s" % path,
                      err.strip().splitlines()[-1])
        rc, out, err = self.ctl(d, "post")
        self.assertEqual(rc, EXIT["usage"], err)
        self.assertIn("which FILE?", err.strip().splitlines()[-1])
        self.assertEqual(leaderboard_version(d), v)
        rc, out, err = self.ctl(d, "post", "--province", "28", path)
        self.assertEqual(rc, EXIT["ok"], err)
        self.assertEqual(leaderboard_version(d), v + 1)


class DidYouMean(CtlTest):

    def test_swapped_letters_in_a_list_id_whose_short_name_is_the_id(self):
        """Iraq's "fatah" is also its short name "Fatah": the two counted as
        two candidates, so "fatha" (two letters swapped, a newcomer's
        first typo) got no suggestion at all."""
        from harness import DEFAULT_ELECTION
        d = self.start(election=DEFAULT_ELECTION)
        path = self.write("iq.csv", "province,list,votes\nbaghdad,sairoon,"
                          "1000\nbaghdad,fatha,900\n")
        rc, out, err = self.ctl(d, "post", "--csv", path, "--revision", "1")
        self.assertEqual(rc, EXIT["invalid"], err)
        self.assertIn("iq.csv:3:", err)
        self.assertIn("did you mean fatah?", err)

    def test_subcommands_and_options(self):
        for args, want in ((["shwo", "28"], "did you mean 'show'?"),
                           (["pots", "f"], "did you mean 'post'?"),
                           (["post", "--dryrun", "f"],
                            "did you mean --dry-run?"),
                           (["post", "--dry_run", "f"],
                            "did you mean --dry-run?"),
                           (["post", "--revison", "1", "f"],
                            "did you mean --revision?"),
                           (["--rul", "http://x", "post", "f"],
                            "did you mean --url?"),
                           (["post", "--cacrt", "x", "f"],
                            "did you mean --cacert?")):
            rc, _, err = self.ctl(None, *args, url="http://x")
            self.assertEqual(rc, EXIT["usage"], (args, err))
            self.assertIn(want, err, args)
        rc, _, err = self.ctl(None, "post", "--revision", url="http://x")
        self.assertEqual(rc, EXIT["usage"], err)
        self.assertIn("--revision needs a value", err)
        rc, _, err = self.ctl(None, "post", "--dry-run=1", "f", url="http://x")
        self.assertEqual(rc, EXIT["usage"], err)
        self.assertIn("option --dry-run takes no value", err)
        rc, _, err = self.ctl(None, "post", "-x", "f", url="http://x")
        self.assertEqual(rc, EXIT["usage"], err)
        self.assertIn("unknown option -x", err)
        rc, _, err = self.ctl(None, "post", "f", "-r", url="http://x")
        self.assertEqual(rc, EXIT["usage"], err)
        self.assertIn("option -r needs a value", err)
        # A command still on getopt_long keeps glibc's message.
        rc, _, err = self.ctl(None, "import", "--bogus", "d", url="http://x")
        self.assertEqual(rc, EXIT["usage"], err)
        self.assertIn("--bogus", err)

    def test_provinces_and_lists(self):
        d = self.start()
        body = dict(entry("28"), province="Madrid")
        rc, _, err = self.ctl(d, "post", self.write("m.json", body))
        self.assertEqual(rc, EXIT["invalid"], err)
        self.assertIn("did you mean 28 (Madrid)?", err)
        body = entry("28")
        body["votes"]["psoe"] = body["votes"].pop("000096")
        rc, _, err = self.ctl(d, "post", self.write("m.json", body))
        self.assertEqual(rc, EXIT["invalid"], err)
        self.assertIn("did you mean 000096 (PSOE)?", err)
        self.assertEqual(leaderboard_version(d), 0)


class Auth(CtlTest):

    def test_401_and_403_name_tallyctls_options(self):
        d = self.start()
        path = self.write("m.json", entry("28"))
        rc, _, err = self.ctl(d, "post", path, token=None)
        self.assertEqual(rc, EXIT["unauthorized"], err)
        self.assertIn("no ingest token was sent", err)
        self.assertIn("TALLYD_TOKEN", err)
        self.assertIn("--token-file FILE", err)
        for server_side in ("token_file", "ingest.token",
                            "TALLYD_INGEST_TOKEN", "DATA_DIR"):
            self.assertNotIn(server_side, err)
        rc, _, err = self.ctl(d, "post", path, token="not-the-token-0000")
        self.assertEqual(rc, EXIT["unauthorized"], err)
        self.assertIn("the token from TALLYD_TOKEN is not accepted", err)
        self.assertNotIn("ingest.token", err)
        bad = self.write("bad.token", "not-the-token-0000\n")
        rc, _, err = self.ctl(d, "--token-file", bad, "post", path,
                              token=None)
        self.assertEqual(rc, EXIT["unauthorized"], err)
        self.assertIn("the token from --token-file %s" % bad, err)
        # 403: a token for Madrid posting Barcelona.
        rc, out, err = self.ctl(d, "token", "new", "--provinces", "28")
        self.assertEqual(rc, EXIT["ok"], err)
        tok, line = out.splitlines()
        d.stop()
        tokens = self.write("tokens", line + "\n")
        d.args += write_conf(d, token_file=tokens)
        d.start()
        rc, _, err = self.ctl(d, "post", self.write("b.json", entry("08")),
                              token=tok)
        self.assertEqual(rc, EXIT["unauthorized"], err)
        self.assertIn("may not post province 08", err)
        self.assertIn("tallyctl token new --provinces 08", err)


class TokenNew(CtlTest):

    def test_token_new_checks_the_provinces(self):
        # Against the definition file.
        rc, out, err = self.ctl(None, "token", "new", "--election", ES,
                                "--provinces", "28,08", url="http://x")
        self.assertEqual(rc, EXIT["ok"], err)
        self.assertRegex(out.splitlines()[1], r" 28,08$")
        rc, out, err = self.ctl(None, "token", "new", "--election", ES,
                                "--provinces", "28,Madird,99",
                                url="http://x")
        self.assertEqual(rc, EXIT["invalid"], err)
        self.assertEqual(out, "")                       # no token made
        self.assertIn('no province "Madird" in the election; did you mean '
                      '28 (Madrid)?', err)
        self.assertIn('no province "99"', err)
        # Against the running daemon.
        d = self.start()
        rc, out, err = self.ctl(d, "token", "new", "-p", "82")
        self.assertEqual(rc, EXIT["invalid"], err)
        self.assertIn("did you mean 28 (Madrid)?", err)
        rc, out, err = self.ctl(d, "token", "new", "-p", "28")
        self.assertEqual(rc, EXIT["ok"], err)
        # Neither: refused, with the way out.
        rc, out, err = self.ctl(None, "token", "new", "-p", "28", "--retry",
                                "0", url="http://127.0.0.1:%d" % free_port())
        self.assertEqual(rc, EXIT["unavailable"], err)
        self.assertIn("--election FILE", err)
        # "*" needs no election.
        rc, out, err = self.ctl(None, "token", "new", url="http://x")
        self.assertEqual(rc, EXIT["ok"], err)


if __name__ == "__main__":
    main()
