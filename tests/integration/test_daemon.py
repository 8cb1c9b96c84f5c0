#!/usr/bin/env python3
"""The daemon as a user meets it: command line, endpoints, signals."""
import json
import os
import signal
import subprocess
import time

from harness import (DEFAULT_ELECTION, DaemonTest, gunzip, main, run_tallyd)


def run(args, **kw):
    """tallyd to completion; a sanitizer report in its output fails."""
    return run_tallyd(args, timeout=30, **kw)


class CommandLine(DaemonTest):
    def test_check_default_configuration(self):
        r = run(["-n"], cwd=os.path.dirname(os.path.dirname(DEFAULT_ELECTION)) + "/..")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configuration OK", r.stdout)
        self.assertIn("329 seats", r.stdout)

    def test_check_broken_election_lists_every_error(self):
        d = self.daemon(start=False)
        path = os.path.join(d.tmp, "broken.json")
        with open(path, "w") as f:
            json.dump({"id": "x", "name": "Broken",
                       "allocation": {"method": "dhont"},
                       "coalitions": [{"id": "a", "name": "A"},
                                      {"id": "a", "name": "Again"}],
                       "provinces": [{"id": "p", "name": "P", "seats": 0}]}, f)
        r = run(["-n", "--election", path])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(path + ": /allocation/method: must be one of", r.stderr)
        self.assertIn(path + ": /coalitions/1/id: duplicate", r.stderr)
        self.assertIn(path + ": /provinces/0/seats: must be a positive integer",
                      r.stderr)
        self.assertIn("3 problems", r.stderr)

    def test_check_bad_config_file(self):
        d = self.daemon(start=False)
        conf = os.path.join(d.tmp, "tallyd.conf")
        with open(conf, "w") as f:
            f.write("listen nowhere\nmax_age -3\nbogus 1\n")
        r = run(["-n", "-f", conf])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(conf + ":1: listen", r.stderr)
        self.assertIn(conf + ":2: max_age", r.stderr)
        self.assertIn(conf + ":3: unknown key \"bogus\"", r.stderr)

    def test_shipped_config_file_is_valid(self):
        conf = os.path.join(os.path.dirname(DEFAULT_ELECTION), "..", "tallyd.conf")
        r = run(["-n", "-f", conf])
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_help_and_version(self):
        r = run(["--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("--ingest-listen", r.stdout)
        r = run(["--version"])
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("tallyd "))
        r = run(["--no-such-flag"])
        self.assertEqual(r.returncode, 2)


class Endpoints(DaemonTest):
    def setUp(self):
        self.d = self.daemon(args=["--election", DEFAULT_ELECTION])

    def test_healthz(self):
        r = self.d.get("/healthz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["status"], "ok")

    def test_election(self):
        r = self.d.get("/v1/election")
        self.assertEqual(r.status, 200)
        e = r.json()
        self.assertEqual(e["id"], "iq-2018")
        self.assertEqual(e["seats"], 329)
        self.assertEqual(sum(p["seats"] for p in e["provinces"]), 329)
        self.assertEqual(e["allocation"]["method"], "sainte-lague")
        self.assertEqual(e["allocation"]["first_divisor"], "1.7")
        self.assertEqual(e["allocation"]["ties"], "lot")
        ids = [c["id"] for c in e["coalitions"]]
        for c in ("sairoon", "fatah", "nasr"):
            self.assertIn(c, ids)

    def test_empty_leaderboard(self):
        r = self.d.get("/v1/leaderboard")
        self.assertEqual(r.status, 200)
        lb = r.json()
        self.assertEqual(lb["seats"], {"total": 329, "allocated": 0,
                                       "pending": 0, "majority": 165})
        self.assertEqual(lb["provinces"]["total"], 23)
        self.assertEqual(lb["provinces"]["reporting"], 0)
        self.assertEqual(lb["votes"], {"valid": 0, "blank": 0, "invalid": 0})
        self.assertEqual(lb["election"]["id"], "iq-2018")
        self.assertIsInstance(lb["version"], int)
        self.assertEqual(len(lb["coalitions"]), len(
            self.d.get("/v1/election").json()["coalitions"]))
        for i, c in enumerate(lb["coalitions"]):
            self.assertEqual(c["rank"], i + 1)
            self.assertEqual((c["votes"], c["seats"], c["share"]), (0, 0, 0))
        # Equal seats and votes: ranked by id.
        ids = [c["id"] for c in lb["coalitions"]]
        self.assertEqual(ids, sorted(ids))

    def test_cache_headers_etag_304_gzip(self):
        r = self.d.get("/v1/leaderboard")
        etag = r.header("ETag")
        # "<version>-<digest of the history and the definition>"
        self.assertRegex(etag, r'^"\d+-[0-9a-f]{16}"$')
        self.assertEqual(r.header("Cache-Control"), "public, max-age=1")
        self.assertIsNotNone(r.header("Last-Modified"))
        self.assertEqual(r.header("Vary"), "Accept-Encoding")
        r2 = self.d.get("/v1/leaderboard", headers={"If-None-Match": etag})
        self.assertEqual(r2.status, 304)
        self.assertEqual(r2.body, b"")
        self.assertEqual(r2.header("ETag"), etag)
        r3 = self.d.get("/v1/leaderboard", headers={"If-None-Match": '"999999"'})
        self.assertEqual(r3.status, 200)
        g = self.d.get("/v1/leaderboard", headers={"Accept-Encoding": "gzip, br"})
        self.assertEqual(g.header("Content-Encoding"), "gzip")
        self.assertEqual(gunzip(g.body), r.body)
        n = self.d.get("/v1/leaderboard", headers={"Accept-Encoding": "gzip;q=0"})
        self.assertIsNone(n.header("Content-Encoding"))
        self.assertEqual(n.body, r.body)

    def test_head(self):
        r = self.d.request("HEAD", "/v1/leaderboard")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")

    def test_unknown_path_404(self):
        self.assertError(self.d.get("/v1/nothing"), 404, "not_found")
        self.assertError(self.d.get("/index.html"), 404, "not_found")
        # /v1/ is the route index now (issue 25); a path below it is not.
        self.assertError(self.d.get("/v1/x/"), 404, "not_found")

    def test_wrong_method_405(self):
        r = self.d.request("DELETE", "/v1/leaderboard")
        self.assertError(r, 405, "method_not_allowed")
        self.assertEqual(r.header("Allow"), "GET, HEAD")
        r = self.d.request("POST", "/v1/election", body=b"{}")
        self.assertError(r, 405, "method_not_allowed")

    def test_keep_alive(self):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=10)
        for _ in range(5):
            conn.request("GET", "/v1/leaderboard")
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            self.assertNotEqual((r.getheader("Connection") or "").lower(), "close")
        conn.close()


class Signals(DaemonTest):
    def test_sigterm_stops_cleanly(self):
        d = self.daemon()
        pidfile = os.path.join(d.data_dir, "tallyd.pid")
        with open(pidfile) as f:
            self.assertEqual(int(f.read()), d.proc.pid)
        self.assertEqual(d.stop(signal.SIGTERM), 0)
        self.assertFalse(os.path.exists(pidfile))
        self.assertIn("stopping", d.logtext())

    def test_sigint_stops_cleanly(self):
        d = self.daemon()
        self.assertEqual(d.stop(signal.SIGINT), 0)

    def _election_copy(self, d, **changes):
        with open(DEFAULT_ELECTION) as f:
            e = json.load(f)
        e.update(changes)
        path = os.path.join(d.tmp, "election.json")
        with open(path, "w") as f:
            json.dump(e, f)
        return path

    def test_sighup_reloads_valid_configuration(self):
        d = self.daemon(start=False)
        path = self._election_copy(d)
        d.args = ["--election", path]
        d.start()
        r0 = d.get("/v1/leaderboard")
        v0, e0 = r0.json()["version"], r0.header("ETag")
        self._election_copy(d, name="Renamed election")
        d.send_signal(signal.SIGHUP)
        self.wait_log(d, "reloaded: election iq-2018")
        self.assertEqual(d.get("/v1/election").json()["name"], "Renamed election")
        r = d.get("/v1/leaderboard")
        lb = r.json()
        self.assertEqual(lb["election"]["name"], "Renamed election")
        # Nothing counted: the version stays, the validator does not.
        self.assertEqual(lb["version"], v0)
        self.assertNotEqual(r.header("ETag"), e0)

    def test_sighup_keeps_old_configuration_when_invalid(self):
        d = self.daemon(start=False)
        path = self._election_copy(d)
        d.args = ["--election", path]
        d.start()
        before = d.get("/v1/election").body
        with open(path, "w") as f:
            f.write('{"id": "iq-2018", "name": ')
        d.send_signal(signal.SIGHUP)
        self.wait_log(d, "reload failed; keeping the configuration in force")
        self.assertIn("invalid JSON", d.logtext())
        r = d.get("/v1/election")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, before)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    main()
