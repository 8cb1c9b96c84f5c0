#!/usr/bin/env python3
"""Settings and outputs that had no test through the running daemon:
log_level, backup_dir, public_tls_cert/public_tls_key, the error list cut at
16 (errors_omitted), and every metric the alert rules of docs/OPERATIONS.md
read, each present and moving the way the rule expects."""
import base64
import calendar
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time

from harness import CheckedDaemonTest, SOURCE_ROOT, free_port, main, \
    needs_failpoints
from test_api import ELECTION, NORTH, SOUTH, EAST

TOKEN = "config-test-ingest-token-0123456789"
AUTH = {"Authorization": "Bearer " + TOKEN}
ENV = {"TALLYD_INGEST_TOKEN": TOKEN}


def metric(text, name, labels=None):
    """The value of one sample of /metrics (None when absent)."""
    pat = re.escape(name + ("{%s}" % labels if labels else "")) + r" (\S+)\n"
    m = re.search(r"(?m)^" + pat, text)
    return float(m.group(1)) if m else None


class ConfigTest(CheckedDaemonTest):
    def start(self, conf="", election=None, ingest=False, env=None,
              args=(), wait=True):
        d = self.daemon(start=False, env=dict(ENV, **(env or {})),
                        ingest=ingest)
        path = os.path.join(d.tmp, "tallyd.conf")
        with open(path, "w") as f:
            f.write(conf)
        d.args += ["-f", path] + list(args)
        if election is not None:
            epath = os.path.join(d.tmp, "election.json")
            with open(epath, "w") as f:
                json.dump(election, f)
            d.args += ["--election", epath]
        d.start(wait=wait)
        return d

    def post(self, d, province, body, port=None, headers=AUTH):
        return d.request("POST", "/v1/provinces/%s/results" % province,
                         body=body, headers=headers, port=port)

    def metrics(self, d):
        r = d.get("/metrics")
        self.assertEqual(r.status, 200)
        return r.body.decode()

    # --- log_level -----------------------------------------------------------

    def test_log_level(self):
        feed = {"revision": 1, "votes": {"sairoon": 5}}
        # debug: each accepted feed and each refusal.
        d = self.start("log_level debug\n")
        self.assertEqual(self.post(d, "basra", feed).status, 201)
        self.wait_log(d, "accepted basra revision 1 ")
        self.wait_log(d, "applied basra revision 1 ")
        # info (the default): the applied feed, not the accepted one.
        d = self.start("")
        self.assertEqual(self.post(d, "basra", feed).status, 201)
        self.wait_log(d, "applied basra revision 1 ")
        self.assertNotIn("accepted basra", d.logtext())
        # warn: neither; warnings still are.
        d = self.start("log_level warn\nfsync off\n")
        self.assertEqual(self.post(d, "basra", feed).status, 201)
        self.assertEqual(d.get("/healthz").status, 200)
        log = d.logtext()
        self.assertIn("fsync policy off", log)          # a warning
        self.assertNotIn("applied basra", log)
        self.assertNotIn("listening on", log)           # info
        # A wrong level is refused at start, naming the key.
        d = self.start("log_level loud\n", wait=False)
        d.expect_exit(1)
        self.assertEqual(d.wait_exit(20), 1)
        self.assertIn("log_level", d.logtext())

    # --- backup_dir --------------------------------------------------------------

    def test_backup_dir(self):
        d = self.daemon(start=False, env=ENV)
        backups = os.path.join(d.tmp, "elsewhere", "backups")
        path = os.path.join(d.tmp, "tallyd.conf")
        with open(path, "w") as f:
            f.write("backup_dir %s\n" % backups)
        d.args += ["-f", path]
        d.start()
        self.assertEqual(self.post(d, "basra", {"revision": 1, "votes": {
            "sairoon": 5}}).status, 201)
        d.send_signal(signal.SIGUSR1)
        self.wait_log(d, "backup written to")
        m = re.search(r"backup written to (\S+) \(version (\d+)\)",
                      d.logtext())
        where, version = m.group(1), int(m.group(2))
        self.assertEqual(version, 1)
        self.assertEqual(os.path.dirname(where), backups)
        self.assertRegex(os.path.basename(where), r"^tallyd-iq-2018-.*-v1$")
        files = sorted(os.listdir(where))
        self.assertIn("election.json", files)
        self.assertEqual(len([f for f in files if f.endswith(".snap")]), 1,
                         files)
        # Nothing in the default place.
        self.assertFalse(os.path.exists(os.path.join(d.data_dir, "backups")))
        # The snapshot alone restores the tally.
        snap = [f for f in files if f.endswith(".snap")][0]
        r = self.daemon(start=False, env=ENV)
        os.makedirs(r.data_dir)
        os.link(os.path.join(where, snap), os.path.join(r.data_dir, snap))
        r.start()
        self.assertEqual(r.get("/v1/provinces/basra").body,
                         d.get("/v1/provinces/basra").body)

    # --- public_tls_* --------------------------------------------------------------

    def make_cert(self, dirname, cn):
        key = os.path.join(dirname, cn + ".key")
        crt = os.path.join(dirname, cn + ".crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", crt, "-days", "2",
                        "-subj", "/CN=" + cn,
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        return crt, key

    def https_get(self, port, path, cafile):
        ctx = ssl.create_default_context(cafile=cafile)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: "
                           "close\r\n\r\n" % path).encode())
                out = b""
                while True:
                    b = s.recv(65536)
                    if not b:
                        return out, s.version()
                    out += b

    def test_public_tls(self):
        d = self.daemon(start=False, env=ENV, ingest=True)
        crt, key = self.make_cert(d.tmp, "public")
        path = os.path.join(d.tmp, "tallyd.conf")
        with open(path, "w") as f:
            f.write("public_tls_cert %s\npublic_tls_key %s\n" % (crt, key))
        d.args += ["-f", path]
        d.start(wait=False)
        # The public listener speaks TLS only; the ingest one stays plain.
        deadline = time.monotonic() + 20
        while True:
            try:
                out, version = self.https_get(d.port, "/healthz", crt)
                break
            except (OSError, ssl.SSLError):
                self.assertIsNone(d.proc.poll(), d.logtext())
                self.assertLess(time.monotonic(), deadline, d.logtext())
                time.sleep(0.05)
        self.assertTrue(out.startswith(b"HTTP/1.1 200"), out[:200])
        self.assertIn(version, ("TLSv1.2", "TLSv1.3"))
        out, _ = self.https_get(d.port, "/v1/leaderboard", crt)
        self.assertTrue(out.startswith(b"HTTP/1.1 200"), out[:200])
        with self.assertRaises((OSError, ValueError)):
            # Plain HTTP on the TLS port: no HTTP answer.
            r = d.get("/healthz", timeout=5)
            raise ValueError("answered %d over plain HTTP" % r.status)
        r = self.post(d, "basra", {"revision": 1, "votes": {"sairoon": 5}},
                      port=d.ingest_port)
        self.assertEqual(r.status, 201, r.body)
        # A certificate without its key is refused at start.
        bad = self.daemon(start=False, env=ENV, ingest=True)
        path = os.path.join(bad.tmp, "tallyd.conf")
        with open(path, "w") as f:
            f.write("public_tls_cert %s\n" % crt)
        bad.args += ["-f", path]
        bad.expect_exit(1)
        bad.start(wait=False)
        self.assertEqual(bad.wait_exit(20), 1)
        self.assertIn("public_tls_key", bad.logtext())
        self.assertNotIn("replayed", bad.logtext())     # found first
        # Without ingest_listen there is no public listener of its own:
        # refused, rather than plain HTTP where TLS was asked for.
        one = self.daemon(start=False, env=ENV)
        path = os.path.join(one.tmp, "tallyd.conf")
        with open(path, "w") as f:
            f.write("public_tls_cert %s\npublic_tls_key %s\n" % (crt, key))
        one.args += ["-f", path]
        one.expect_exit(1)
        one.start(wait=False)
        self.assertEqual(one.wait_exit(20), 1)
        self.assertIn("ingest_listen", one.logtext())

    # --- errors_omitted -------------------------------------------------------------

    def test_error_list_is_cut_at_16(self):
        d = self.start()
        before = d.get("/v1/leaderboard").body
        votes = {"nobody%02d" % i: 1 for i in range(20)}
        r = self.post(d, "basra", {"revision": 1, "votes": votes})
        self.assertEqual(r.status, 422, r.body)
        body = r.json()
        self.assertEqual(body["error"]["code"], "unknown_list")
        self.assertEqual(len(body["errors"]), 16)
        self.assertEqual(body["errors_omitted"], 4)
        self.assertTrue(all(e["code"] == "unknown_list"
                            for e in body["errors"]))
        # 16 exactly: every one listed, nothing omitted.
        votes = {"nobody%02d" % i: 1 for i in range(16)}
        body = self.post(d, "basra", {"revision": 1, "votes": votes}).json()
        self.assertEqual(len(body["errors"]), 16)
        self.assertNotIn("errors_omitted", body)
        # The same in a batch.
        r = d.request("POST", "/v1/results", headers=AUTH, body={
            "results": [{"province": "basra", "revision": 1, "votes": {
                "nobody%02d" % i: 1 for i in range(20)}}]})
        self.assertEqual(r.status, 422, r.body)
        self.assertEqual(r.json()["errors_omitted"], 4)
        self.assertEqual(d.get("/v1/leaderboard").body, before)

    # --- the metrics of the alert rules ------------------------------------------

    @needs_failpoints
    def test_alert_metrics(self):
        """docs/OPERATIONS.md "During": each metric an alert rule reads is
        there and moves as the rule expects."""
        t_start = time.time()
        d = self.start("connection_limit 100\n", election=ELECTION,
                       env={"TALLYD_FAILPOINTS": "sync_delay_ms=150"})
        m = self.metrics(d)
        # TallydRestarted: changes(tallyd_start_time_seconds) on a restart.
        started = metric(m, "tallyd_start_time_seconds")
        self.assertLessEqual(abs(started - t_start), 5)
        # TallydMixedBuilds: tallyd_build_info by commit.
        self.assertRegex(m, r'(?m)^tallyd_build_info\{version="[^"]+",'
                         r'commit="[^"]+"\} 1$')
        # TallydDiskLow: free and size of the data dir's file system.
        vfs = os.statvfs(d.data_dir)
        free = metric(m, "tallyd_data_dir_free_bytes")
        size = metric(m, "tallyd_data_dir_size_bytes")
        self.assertEqual(size, vfs.f_blocks * vfs.f_frsize)
        self.assertLessEqual(abs(free - vfs.f_bavail * vfs.f_frsize),
                             64 << 20)
        self.assertLessEqual(free, size)
        # TallydNoResults: no age before the first result; provinces_final.
        self.assertIsNone(metric(m, "tallyd_last_applied_age_seconds"))
        self.assertEqual(metric(m, "tallyd_provinces_final"), 0)
        # TallydTieForLot: no seat pending yet.
        self.assertEqual(metric(m, "tallyd_seats_pending"), 0)
        fsyncs = metric(m, "tallyd_journal_fsync_seconds_count")
        slow = metric(m, "tallyd_journal_fsync_seconds_bucket", 'le="+Inf"') \
            - metric(m, "tallyd_journal_fsync_seconds_bucket", 'le="0.1"')

        # Feeds: NORTH is final; EAST leaves a seat to a lot.
        for pid, body in (("north", NORTH), ("south", SOUTH), ("east", EAST)):
            self.assertEqual(self.post(d, pid, body).status, 201)
        m = self.metrics(d)
        self.assertEqual(metric(m, "tallyd_provinces_final"),
                         sum(1 for b in (NORTH, SOUTH, EAST)
                             if b.get("status") == "final"))
        age = metric(m, "tallyd_last_applied_age_seconds")
        self.assertTrue(0 <= age <= 5, age)
        self.assertEqual(metric(m, "tallyd_seats_pending"), 1)
        # TallydFsyncSlow: three syncs of 150 ms (the failpoint), each
        # above the 0.1 s the rule's p99 compares with.
        self.assertEqual(metric(m, "tallyd_journal_fsync_seconds_count"),
                         fsyncs + 3)
        self.assertEqual(
            metric(m, "tallyd_journal_fsync_seconds_bucket", 'le="+Inf"') -
            metric(m, "tallyd_journal_fsync_seconds_bucket", 'le="0.1"'),
            slow + 3)

        # TallydAuthFailures: unauthorized and forbidden_province.
        def rejected(m, reason):
            return metric(m, "tallyd_feeds_rejected_total",
                          'reason="%s"' % reason) or 0
        u0 = rejected(m, "unauthorized")
        for _ in range(3):
            r = self.post(d, "north", NORTH,
                          headers={"Authorization": "Bearer wrong-token-"
                                   "0123456789abcdef0123"})
            self.assertEqual(r.status, 401)
        m = self.metrics(d)
        self.assertEqual(rejected(m, "unauthorized"), u0 + 3)

        # TallydJournalWriteFailing: a failed write counts.
        w0 = metric(m, "tallyd_journal_write_failures_total")
        flag = os.path.join(d.data_dir, "failpoint.enospc")
        open(flag, "w").close()
        r = self.post(d, "north", dict(NORTH, revision=2))
        os.unlink(flag)
        self.assertEqual(r.status, 503, r.body)
        m = self.metrics(d)
        self.assertEqual(metric(m, "tallyd_journal_write_failures_total"),
                         w0 + 1)

        # TallydTieForLot clears when the lot is drawn.
        r = d.request("POST", "/v1/provinces/east/lot", headers=AUTH,
                      body={"revision": 1, "order": ["gold", "amber"]})
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(metric(self.metrics(d), "tallyd_seats_pending"), 0)

        # TallydRestarted: a restart moves tallyd_start_time_seconds (a
        # value in whole seconds: restart in the next second at the
        # earliest, as any real restart is).
        self.assertEqual(d.stop(), 0, d.logtext())
        time.sleep(max(0.0, started + 1.05 - time.time()))
        d.log.close()
        d.start()
        self.assertGreater(metric(self.metrics(d),
                                  "tallyd_start_time_seconds"), started)


    # --- reload, backup and TLS metrics (issue 25) ------------------------------

    def reload(self, d, ok=True):
        """SIGHUP; wait until it is taken (or refused); the log it wrote."""
        before = len(d.logtext())
        d.send_signal(signal.SIGHUP)
        end = "reloaded: election" if ok else "reload failed"
        deadline = time.monotonic() + 20
        while end not in d.logtext()[before:]:
            self.assertLess(time.monotonic(), deadline, d.logtext()[-3000:])
            time.sleep(0.05)
        return d.logtext()[before:]

    def test_reload_says_what_changed(self):
        """A reload names each setting it changed and each one that waits
        for a restart (which stays in force, and in /metrics); no warning
        when nothing changed, the definition included, once counted."""
        d = self.start("max_age 1\nconnection_limit 100\n",
                       election=ELECTION)
        conf = os.path.join(d.tmp, "tallyd.conf")
        self.assertEqual(self.post(d, "north", NORTH).status, 201)
        m = self.metrics(d)
        self.assertEqual(metric(m, "tallyd_last_reload_timestamp_seconds"), 0)
        self.assertIsNone(metric(m, "tallyd_last_reload_success"))
        # Nothing changed (results counted): not one warning.
        log = self.reload(d)
        self.assertIn("reload: no setting changed", log)
        self.assertNotIn(" warn ", log)
        m = self.metrics(d)
        self.assertEqual(metric(m, "tallyd_last_reload_success"), 1)
        self.assertLessEqual(abs(metric(
            m, "tallyd_last_reload_timestamp_seconds") - time.time()), 5)
        self.assertEqual(metric(m, "tallyd_settings_waiting_for_restart"), 0)
        # A live setting and one that needs a restart.
        with open(conf, "w") as f:
            f.write("max_age 7\nconnection_limit 200\n")
        log = self.reload(d)
        self.assertRegex(log, r"info reload: max_age changed from 1 to 7\n")
        self.assertRegex(log, r"warn reload: connection_limit changed from "
                         r"100 to 200: it takes effect at the next restart; "
                         r"100 stays in force")
        self.assertNotIn("max_age changed from 1 to 7: it takes", log)
        self.assertIn("max-age=7", d.get("/v1/leaderboard")
                      .header("Cache-Control"))
        m = self.metrics(d)
        self.assertEqual(metric(m, "tallyd_listener_connection_limit"), 100)
        self.assertEqual(metric(m, "tallyd_settings_waiting_for_restart"), 1)
        # The same file again: the restart setting still waits, said once
        # more; the live one is not named.
        log = self.reload(d)
        self.assertIn("connection_limit changed from 100 to 200", log)
        self.assertNotIn("max_age", log)
        # An edited definition while counted: that warning, and only then.
        epath = os.path.join(d.tmp, "election.json")
        with open(epath, "w") as f:
            json.dump(dict(ELECTION, name="Renamed"), f)
        log = self.reload(d)
        self.assertIn("kept until the next restart", log)
        with open(epath, "w") as f:
            json.dump(ELECTION, f)
        log = self.reload(d)
        self.assertNotIn("kept until the next restart", log)
        # A refused reload shows in /metrics.
        with open(conf, "w") as f:
            f.write("max_age soon\n")
        self.reload(d, ok=False)
        m = self.metrics(d)
        self.assertEqual(metric(m, "tallyd_last_reload_success"), 0)
        self.assertIn("max-age=7", d.get("/v1/leaderboard")
                      .header("Cache-Control"))

    def test_reload_keeps_verbose(self):
        """-v held only until the first reload (log_level from the file
        replaced it, silently)."""
        d = self.start("", args=["-v"])
        log = self.reload(d)
        self.assertIn("reload: no setting changed", log)
        self.assertNotIn("log_level", log)
        before = len(d.logtext())
        self.assertEqual(self.post(d, "basra", {"revision": 1, "votes": {
            "sairoon": 5}}).status, 201)
        time.sleep(0.2)
        self.assertIn(" debug ", d.logtext()[before:])

    def test_backup_metrics(self):
        d = self.start("")
        conf = os.path.join(d.tmp, "tallyd.conf")
        m = self.metrics(d)
        self.assertEqual(metric(m, "tallyd_last_backup_timestamp_seconds"), 0)
        self.assertEqual(metric(
            m, "tallyd_last_backup_success_timestamp_seconds"), 0)
        self.assertIsNone(metric(m, "tallyd_last_backup_success"))
        self.assertEqual(metric(m, "tallyd_provinces"),
                         len(d.get("/v1/election").json()["provinces"]))
        d.send_signal(signal.SIGUSR1)
        self.wait_log(d, "backup written to")
        m = self.metrics(d)
        self.assertEqual(metric(m, "tallyd_last_backup_success"), 1)
        ok_at = metric(m, "tallyd_last_backup_success_timestamp_seconds")
        self.assertLessEqual(abs(ok_at - time.time()), 5)
        self.assertEqual(metric(m, "tallyd_last_backup_timestamp_seconds"),
                         ok_at)
        # A backup_dir that cannot be made (under a file): it fails.
        blocker = os.path.join(d.tmp, "not-a-dir")
        open(blocker, "w").close()
        with open(conf, "w") as f:
            f.write("backup_dir %s/backups\n" % blocker)
        self.reload(d)
        time.sleep(1.1)         # the failure's timestamp must differ
        d.send_signal(signal.SIGUSR1)
        self.wait_log(d, "failed (status")
        m = self.metrics(d)
        self.assertEqual(metric(m, "tallyd_last_backup_success"), 0)
        self.assertEqual(metric(
            m, "tallyd_last_backup_success_timestamp_seconds"), ok_at)
        self.assertGreater(metric(m, "tallyd_last_backup_timestamp_seconds"),
                           ok_at)

    def not_after(self, crt):
        out = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in",
                              crt], check=True, capture_output=True,
                             text=True).stdout
        return calendar.timegm(time.strptime(
            out.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y GMT"))

    def test_tls_cert_expiry_metric(self):
        d = self.daemon(start=False, env=ENV, ingest=True)
        crt, key = self.make_cert(d.tmp, "ingest")
        path = os.path.join(d.tmp, "tallyd.conf")
        with open(path, "w") as f:
            f.write("tls_cert %s\ntls_key %s\n" % (crt, key))
        d.args += ["-f", path]
        d.start()
        m = self.metrics(d)
        self.assertEqual(metric(m, "tallyd_tls_cert_expiry_timestamp_seconds",
                                'setting="tls_cert"'), self.not_after(crt))
        self.assertIsNone(metric(m, "tallyd_tls_cert_expiry_timestamp_seconds",
                                 'setting="public_tls_cert"'))
        # A renewed certificate (30 days), taken by a reload.
        subprocess.run(["openssl", "req", "-x509", "-key", key, "-out", crt,
                        "-days", "30", "-subj", "/CN=ingest",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        self.reload(d)
        m = self.metrics(d)
        expiry = metric(m, "tallyd_tls_cert_expiry_timestamp_seconds",
                        'setting="tls_cert"')
        self.assertEqual(expiry, self.not_after(crt))
        self.assertGreater(expiry, time.time() + 29 * 86400)

    def test_alert_rules_file(self):
        """config/prometheus/tallyd-alerts.yml (shipped in the package):
        valid rules (promtool check rules, Debian's prometheus package,
        installed by scripts/setup; and the structure Prometheus reads),
        nothing tied to one election, and every metric it names is one a
        running tallyd exports -- with TLS, after a feed, a refused feed, a
        backup and a reload, so that each conditional metric is there -- in
        a form promtool check metrics finds nothing to say about."""
        import yaml
        path = os.path.join(SOURCE_ROOT, "config", "prometheus",
                            "tallyd-alerts.yml")
        with open(path) as f:
            text = f.read()
        doc = yaml.safe_load(text)
        promtool = shutil.which("promtool")
        self.assertTrue(promtool, "promtool is missing: run scripts/setup "
                        "(Debian's prometheus package)")
        p = subprocess.run([promtool, "check", "rules", path],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(set(doc), {"groups"})
        names, exprs = set(), []
        for g in doc["groups"]:
            self.assertLessEqual(set(g), {"name", "rules", "interval"})
            self.assertTrue(g["name"])
            for r in g["rules"]:
                self.assertLessEqual(set(r), {"alert", "expr", "for",
                                              "labels", "annotations"}, r)
                self.assertRegex(r["alert"], r"^Tallyd[A-Za-z]+$")
                self.assertNotIn(r["alert"], names)
                names.add(r["alert"])
                self.assertIsInstance(r["expr"], str)
                if "for" in r:
                    self.assertRegex(r["for"], r"^\d+[smhd]$")
                self.assertIn(r["labels"]["severity"],
                              ("critical", "warning", "info"))
                self.assertTrue(r["annotations"]["summary"])
                e = r["expr"]
                for a, b in ("()", "[]", "{}"):
                    depth = 0
                    for c in e:
                        depth += (c == a) - (c == b)
                        self.assertGreaterEqual(depth, 0, e)
                    self.assertEqual(depth, 0, e)
                exprs.append(e)
        # No election's size in a rule: the number of provinces is a metric.
        self.assertIn("tallyd_provinces_final < tallyd_provinces\n",
                      text)
        self.assertNotRegex(text, r"provinces_\w+ *[<>=]+ *\d")
        # What tallyd exports, each conditional metric made to appear.
        d = self.daemon(start=False, env=ENV, ingest=True)
        crt, key = self.make_cert(d.tmp, "ingest")
        conf = os.path.join(d.tmp, "tallyd.conf")
        # A witness (no one listening: its metrics show the failure).
        wpub = b"\x04" + bytes(range(32))
        wid = hashlib.sha256(b"w.test/1\n" + wpub).digest()[:4].hex()
        with open(conf, "w") as f:
            f.write("tls_cert %s\ntls_key %s\n" % (crt, key))
            f.write("witness http://127.0.0.1:%d w.test/1+%s+%s\n" % (
                free_port(), wid, base64.b64encode(wpub).decode()))
            # A push front (none listening: tallyd_publish_up 0).
            f.write("publish_url http://127.0.0.1:%d/pub/leaderboard\n" %
                    free_port())
        d.args += ["-f", conf]
        d.start()
        ctx = ssl.create_default_context(cafile=crt)
        for token in (TOKEN, "wrong-token-0123456789abcdef0123"):
            c = http.client.HTTPSConnection("127.0.0.1", d.ingest_port,
                                            context=ctx, timeout=10)
            c.request("POST", "/v1/provinces/basra/results",
                      body=json.dumps({"revision": 1,
                                       "votes": {"sairoon": 5}}),
                      headers={"Authorization": "Bearer " + token,
                               "Content-Type": "application/json"})
            self.assertEqual(c.getresponse().status,
                             201 if token == TOKEN else 401)
            c.close()
        d.send_signal(signal.SIGUSR1)
        self.wait_log(d, "backup written to")
        self.reload(d)
        text = self.metrics(d)
        # Its lint (names, units, suffixes, HELP and TYPE) exits 0 only
        # when it found nothing.
        p = subprocess.run([promtool, "check", "metrics"], input=text,
                           capture_output=True, text=True)
        self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""))
        exported = set(re.findall(r"(?m)^(tallyd_\w+)", text))
        named = set()
        for e in exprs:
            named |= set(re.findall(r"\btallyd_\w+", e))
        self.assertGreaterEqual(len(named), 20)
        self.assertEqual(sorted(named - exported), [])

    def test_connection_metrics(self):
        """TallydConnectionsNearLimit and TallydFdsNearLimit: 20 idle
        connections show in both.  (A daemon of its own: after the journal
        write failure of test_alert_metrics, the count was once seen not
        to move under load; see issue 26's note.)"""
        d = self.start("connection_limit 100\n")
        m = self.metrics(d)
        self.assertEqual(metric(m, "tallyd_listener_connection_limit"), 100)
        label = 'listener="public",address="127.0.0.1:%d"' % d.port
        c0 = metric(m, "tallyd_listener_connections", label)
        f0 = metric(m, "tallyd_open_fds")
        self.assertGreater(metric(m, "tallyd_max_fds"), f0)
        socks = [socket.create_connection(("127.0.0.1", d.port))
                 for _ in range(20)]
        try:
            deadline = time.monotonic() + 20
            while True:
                m = self.metrics(d)
                if metric(m, "tallyd_listener_connections", label) >= c0 + 20:
                    break
                self.assertLess(time.monotonic(), deadline, m)
                time.sleep(0.05)
            self.assertGreaterEqual(metric(m, "tallyd_open_fds"), f0 + 20)
        finally:
            for s in socks:
                s.close()


if __name__ == "__main__":
    main()
