#!/usr/bin/env python3
"""The daemon's lifecycle edges, through the running daemon (docs/ARCHITECTURE.md):

  - a reload to an election with more, or fewer, provinces, then a post to
    every province; a reload once results are counted keeps the definition;
  - validators: the same ETag never names two bodies across reloads,
    definition edits, restarts, and a reset data dir; unchanged provinces keep
    theirs; If-Modified-Since;
  - stop: a POST parked on a slow fsync is answered (201 when it becomes
    durable within the grace period; 503 shutting_down at a second signal),
    the exit is 0, and nothing durable is lost or pruned;
  - the journal writer never holds the loop: `batch:` with a slow disk keeps
    reads fast;
  - one daemon per data dir; a background start waits until it serves, and
    fails with the reason; `-n` checks everything a start would;
  - --repair of a corrupt first record in a segment that is not the last;
  - SIGHUP reopens the log file (logrotate).
"""
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from harness import (DEFAULT_ELECTION, TALLYD, Daemon, failpoints_built,
                     free_port, main, may_skip, needs_failpoints)
import crashloop
from test_durability import (AUTH, HEADER, PIDS, TOKEN, DurabilityTest,
                             entry, feed, records, segments)


def small_election(n, path, name="Small"):
    """An election of n one-list-per-coalition provinces."""
    e = {
        "id": "small", "name": name,
        "allocation": {"method": "dhondt", "ties": "votes"},
        "coalitions": [{"id": "red", "name": "Red"},
                       {"id": "blue", "name": "Blue"}],
        "provinces": [{"id": "p%02d" % i, "name": "P%d" % i, "seats": 3}
                      for i in range(n)],
    }
    with open(path, "w") as f:
        json.dump(e, f)
    return path


def small_feed(i, revision=1):
    return {"revision": revision, "votes": {"red": 100 + i, "blue": 50 + i}}


class Reload(DurabilityTest):
    def test_reload_to_more_and_fewer_provinces(self):
        tmp = tempfile.mkdtemp(prefix="tallyd-reload-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = small_election(5, os.path.join(tmp, "e.json"))
        d = Daemon(["--election", path], env={"TALLYD_INGEST_TOKEN": TOKEN},
                   data_dir=self.data_dir)
        d.start()
        for n in (30, 3, 12):
            small_election(n, path, name="Small %d" % n)
            d.send_signal(signal.SIGHUP)
            self.wait_log(d, "reloaded: election small", timeout=10)
            deadline = time.monotonic() + 10
            while len(d.get("/v1/provinces").json()["provinces"]) != n:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
            with open(d.log_path, "ab") as f:
                f.truncate(0)
        for i in range(12):
            r = self.post(d, "p%02d" % i, small_feed(i))
            self.assertEqual(r.status, 201, r.body)
        lb = d.get("/v1/leaderboard").json()
        self.assertEqual(lb["provinces"], {"total": 12, "reporting": 12,
                                           "final": 0})
        self.assertEqual(lb["seats"]["allocated"], 36)
        # Counted now: a reload keeps the definition in force.
        small_election(40, path, name="Too late")
        d.send_signal(signal.SIGHUP)
        self.wait_log(d, "kept until the next restart")
        self.assertEqual(len(d.get("/v1/provinces").json()["provinces"]), 12)
        self.assertEqual(self.post(d, "p13", small_feed(13)).status, 404)
        self.stop(d)


    def test_definition_swap_starts_a_new_epoch(self):
        """Issue 21: a definition swapped by SIGHUP left the old election
        in the version ring and the SSE hello: /v1/leaderboard's
        Content-Location served the old election marked immutable, and its
        .svg answered 500."""
        from test_live import SSE
        tmp = tempfile.mkdtemp(prefix="tallyd-epoch-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = small_election(5, os.path.join(tmp, "e.json"), name="Before")
        d = Daemon(["--election", path], env={"TALLYD_INGEST_TOKEN": TOKEN},
                   data_dir=self.data_dir)
        self.addCleanup(d.cleanup)
        d.start()
        old = d.get("/v1/leaderboard")
        old_loc = old.header("Content-Location")
        self.assertEqual(d.get(old_loc).body, old.body)
        self.assertEqual(d.get(old_loc + ".svg").status, 200)
        old_svg = d.get("/v1/leaderboard.svg")
        stream = SSE(d.port)
        hello = stream.wait_for(lambda e: len(e) >= 3)
        self.assertIn("Before", hello[2]["data"])
        small_election(7, path, name="After")
        d.send_signal(signal.SIGHUP)
        self.wait_log(d, "reloaded: election small", timeout=10)
        new = d.get("/v1/leaderboard")
        self.assertIn(b"After", new.body)
        loc = new.header("Content-Location")
        self.assertNotEqual(loc, old_loc)
        r = d.get(loc)
        self.assertEqual((r.status, r.body), (200, new.body))
        self.assertIn("immutable", r.header("Cache-Control"))
        svg = d.get("/v1/leaderboard.svg")
        self.assertEqual(svg.status, 200)
        self.assertNotEqual(svg.header("ETag"), old_svg.header("ETag"))
        r = d.get(svg.header("Content-Location"))
        self.assertEqual((r.status, r.body), (200, svg.body))
        # The old URLs never serve the new election.
        for u, body in ((old_loc, old.body), (old_loc + ".svg",
                                              old_svg.body)):
            r = d.get(u)
            self.assertIn(r.status, (200, 404), u)
            if r.status == 200:
                self.assertEqual(r.body, body, u)
        # Open streams start again from a snapshot of the new election;
        # the old id resumes nothing.
        evs = stream.wait_for(lambda e: any(
            x.get("event") == "leaderboard" and "After" in x["data"]
            for x in e))
        self.assertEqual(evs[-2]["event"], "snapshot")
        stream.close()
        c = SSE(d.port, headers={"Last-Event-ID": hello[2]["id"]})
        evs = c.wait_for(lambda e: len(e) >= 3)
        self.assertEqual(evs[1]["event"], "snapshot")
        self.assertIn("After", evs[2]["data"])
        self.assertNotEqual(evs[2]["id"], hello[2]["id"])
        c.close()
        self.stop(d)


class Validators(DurabilityTest):
    def etags(self, d, paths):
        out = {}
        for p in paths:
            r = d.get(p)
            self.assertEqual(r.status, 200, p)
            out[p] = (r.header("ETag"), r.body)
        return out

    def test_reset_data_dir_never_repeats_an_etag(self):
        d = self.start()
        self.applied(self.post(d, PIDS[0], feed(PIDS[0])))
        before = self.etags(d, ["/v1/leaderboard", "/v1/provinces/" + PIDS[0]])
        self.stop(d)
        shutil.rmtree(self.data_dir)
        os.mkdir(self.data_dir)
        d = self.start()
        # The same version number, other contents.
        self.applied(self.post(d, PIDS[0], feed(PIDS[0], delta=7)))
        after = self.etags(d, before)
        for p in before:
            self.assertNotEqual(before[p][1], after[p][1])
            self.assertNotEqual(before[p][0], after[p][0], p)
            r = d.get(p, headers={"If-None-Match": before[p][0]})
            self.assertEqual(r.status, 200, p)

    def test_restart_keeps_validators_of_the_same_history(self):
        d = self.start()
        self.applied(self.post(d, PIDS[0], feed(PIDS[0])))
        self.applied(self.post(d, PIDS[1], feed(PIDS[1])))
        paths = ["/v1/leaderboard", "/v1/provinces", "/v1/election"]
        before = self.etags(d, paths)
        self.stop(d)
        d = self.start()
        after = self.etags(d, paths)
        for p in paths:
            self.assertEqual(before[p], after[p], p)
            r = d.get(p, headers={"If-None-Match": before[p][0]})
            self.assertEqual(r.status, 304, p)
        # Last-Modified and updated_at come from the journal, not the start.
        lb = json.loads(after["/v1/leaderboard"][1])
        self.assertEqual(lb["updated_at"],
                         json.loads(before["/v1/leaderboard"][1])["updated_at"])

    def views(self, d):
        """Every view's ETag, Last-Modified and bytes (the leaderboard's
        updated_at included: it is the journaled time)."""
        paths = ["/v1/leaderboard", "/v1/provinces", "/v1/leaderboard.csv"]
        for p in PIDS:
            paths += ["/v1/provinces/" + p, "/v1/provinces/%s/history" % p]
        out = {}
        for p in paths:
            r = d.get(p)
            self.assertEqual(r.status, 200, p)
            out[p] = (r.header("ETag"), r.header("Last-Modified"), r.body)
        return out

    def assertSameViews(self, before, after, how):
        for p in before:
            self.assertEqual(before[p][2], after[p][2], "%s: %s" % (how, p))
            self.assertEqual(before[p][:2], after[p][:2],
                             "%s: %s has the same bytes under another "
                             "stamp" % (how, p))

    def test_every_view_keeps_its_stamp_across_restarts(self):
        """A view's stamp is a function of the log's prefix: the same after
        a clean stop (a snapshot), a kill -9 (the journal replayed), a
        snapshot plus records after it."""
        d = self.start()
        self.applied(self.post(d, PIDS[0], feed(PIDS[0])))
        self.applied(self.post(d, PIDS[1], feed(PIDS[1])))
        time.sleep(1.1)         # another second: Last-Modified tells
        self.applied(self.post(d, PIDS[2], feed(PIDS[2])))
        self.applied(self.post(d, PIDS[0], feed(PIDS[0], revision=2,
                                                 delta=3)))
        live = self.views(d)
        # Provinces changed at different versions: different stamps.
        self.assertNotEqual(live["/v1/provinces/" + PIDS[1]][0],
                            live["/v1/provinces/" + PIDS[2]][0])
        self.stop(d)            # the final snapshot
        self.assertTrue(glob.glob(os.path.join(self.data_dir,
                                               "snapshot-*.snap")))
        d = self.start()
        self.assertSameViews(live, self.views(d), "after a clean stop")
        d.kill()                # the snapshot, nothing after it
        d = self.start()
        self.assertSameViews(live, self.views(d), "after kill -9")
        self.applied(self.post(d, PIDS[3], feed(PIDS[3])))
        live = self.views(d)
        d.kill()                # the snapshot, then the journal
        d = self.start()
        self.assertSameViews(live, self.views(d),
                             "after kill -9 with a record past the snapshot")
        self.stop(d)

    def test_journal_replay_keeps_every_stamp(self):
        """Without any snapshot (kill -9 only), replay moves the stamps as
        they moved live."""
        d = self.start()
        self.applied(self.post(d, PIDS[0], feed(PIDS[0])))
        self.applied(self.post(d, PIDS[1], feed(PIDS[1])))
        self.applied(self.post(d, PIDS[0], feed(PIDS[0], revision=2,
                                                 delta=1)))
        live = self.views(d)
        d.kill()
        self.assertFalse(glob.glob(os.path.join(self.data_dir,
                                                "snapshot-*.snap")))
        d = self.start()
        self.assertSameViews(live, self.views(d), "after kill -9")
        self.stop(d)

    def test_definition_edit_and_restart_changes_the_election_etag(self):
        tmp = tempfile.mkdtemp(prefix="tallyd-defedit-")
        self.addCleanup(shutil.rmtree, tmp, True)
        with open(crashloop.election_path()) as f:
            e = json.load(f)
        path = os.path.join(tmp, "e.json")
        with open(path, "w") as f:
            json.dump(e, f)
        d = Daemon(["--election", path], env={"TALLYD_INGEST_TOKEN": TOKEN},
                   data_dir=self.data_dir)
        d.start()
        self.applied(self.post(d, PIDS[0], feed(PIDS[0])))
        old = self.etags(d, ["/v1/election", "/v1/leaderboard"])
        # Counted: a reload keeps the definition; the views keep theirs too.
        e["coalitions"][0]["name"] = "Renamed coalition"
        with open(path, "w") as f:
            json.dump(e, f)
        d.send_signal(signal.SIGHUP)
        self.wait_log(d, "kept until the next restart")
        self.assertEqual(self.etags(d, old), old)
        self.assertEqual(d.stop(), 0)
        # The restart takes the edit: same version, other bodies, other tags.
        d = Daemon(["--election", path], env={"TALLYD_INGEST_TOKEN": TOKEN},
                   data_dir=self.data_dir)
        d.start()
        new = self.etags(d, old)
        for p in old:
            self.assertNotEqual(old[p][1], new[p][1], p)
            self.assertNotEqual(old[p][0], new[p][0], p)
            r = d.get(p, headers={"If-None-Match": old[p][0]})
            self.assertEqual(r.status, 200, p)
            self.assertIn(b"Renamed coalition", r.body)
        self.assertEqual(d.stop(), 0)

    def test_if_modified_since(self):
        d = self.start()
        self.applied(self.post(d, PIDS[0], feed(PIDS[0])))
        time.sleep(1.1)     # leave the second of the change
        r = d.get("/v1/leaderboard")
        lm = r.header("Last-Modified")
        self.assertEqual(d.get("/v1/leaderboard", headers={
            "If-Modified-Since": lm}).status, 304)
        self.assertEqual(d.get("/v1/leaderboard", headers={
            "If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}).status, 200)
        # Two versions in one second: Last-Modified cannot tell them apart.
        self.applied(self.post(d, PIDS[1], feed(PIDS[1])))
        self.applied(self.post(d, PIDS[2], feed(PIDS[2])))
        lm2 = d.get("/v1/leaderboard").header("Last-Modified")
        r = d.get("/v1/leaderboard", headers={"If-Modified-Since": lm2})
        if lm2 != lm:
            self.assertEqual(r.status, 200)
        # If-None-Match wins over If-Modified-Since.
        r = d.get("/v1/leaderboard", headers={
            "If-Modified-Since": lm2, "If-None-Match": '"1-0000000000000000"'})
        self.assertEqual(r.status, 200)


@may_skip("failpoints", "every test here drives TALLYD_FAILPOINTS, which a "
          "binary built as shipped has not")
class Stop(DurabilityTest):
    def setUp(self):
        super().setUp()
        if not failpoints_built():
            self.skipTest("tallyd built without failpoints")

    def post_async(self, d, pid, body, out):
        def run():
            try:
                out.append(self.post(d, pid, body, timeout=60))
            except Exception as exc:    # noqa: BLE001
                out.append(exc)
        t = threading.Thread(target=run)
        t.start()
        return t

    def test_stop_answers_a_post_parked_on_a_slow_sync(self):
        d = self.start(env={"TALLYD_FAILPOINTS": "sync_delay_ms=1500"})
        out = []
        t = self.post_async(d, PIDS[0], feed(PIDS[0]), out)
        time.sleep(0.4)     # the POST is parked in the fsync now
        d.send_signal(signal.SIGTERM)
        t.join(30)
        self.assertEqual(self.wait_exit(d), 0, d.logtext())
        self.assertEqual(out[0].status, 201, out[0].body)
        v = out[0].json()["version"]
        # Durable, applied, and in the final snapshot; no segment pruned away.
        d = self.start()
        self.assertEqual(self.version(d), v)
        self.assertEqual(self.revision(d, PIDS[0]), 1)
        self.stop(d)

    def test_second_signal_answers_503_and_loses_nothing(self):
        d = self.start(env={"TALLYD_FAILPOINTS": "sync_delay_ms=3000"})
        first = []
        t1 = self.post_async(d, PIDS[0], feed(PIDS[0]), first)
        time.sleep(0.3)
        queued = []
        t2 = self.post_async(d, PIDS[1], feed(PIDS[1]), queued)
        time.sleep(0.3)
        d.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        d.send_signal(signal.SIGTERM)
        t1.join(30)
        t2.join(30)
        self.assertEqual(self.wait_exit(d), 0, d.logtext())
        for r in (first[0], queued[0]):
            self.assertEqual(r.status, 503, r.body)
            self.assertEqual(r.json()["error"]["code"], "shutting_down")
            self.assertEqual(r.header("Retry-After"), "5")
        log = d.logtext()
        self.assertIn("signal again", log)
        self.assertNotIn("AddressSanitizer", log)
        # The round in the journal became durable: applied and kept (the
        # contract allows it: a retry is a duplicate).  The queued one was
        # never written.
        d = self.start()
        self.assertEqual(self.revision(d, PIDS[0]), 1)
        self.assertEqual(self.revision(d, PIDS[1]), 0)
        r = self.post(d, PIDS[0], feed(PIDS[0]))
        self.assertEqual((r.status, r.json()["status"]), (200, "duplicate"))
        self.applied(self.post(d, PIDS[1], feed(PIDS[1])))
        self.stop(d)

    def test_new_feed_during_drain_gets_503(self):
        d = self.start(env={"TALLYD_FAILPOINTS": "sync_delay_ms=1500"})
        conn = __import__("http.client").client.HTTPConnection(
            "127.0.0.1", d.port, timeout=30)
        self.addCleanup(conn.close)
        conn.request("GET", "/healthz")     # a kept-alive connection
        conn.getresponse().read()
        out = []
        t = self.post_async(d, PIDS[0], feed(PIDS[0]), out)
        time.sleep(0.3)
        d.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        body = json.dumps(feed(PIDS[1])).encode()
        conn.request("POST", "/v1/provinces/%s/results" % PIDS[1], body=body,
                     headers=dict(AUTH, **{"Content-Type": "application/json"}))
        r = conn.getresponse()
        data = r.read()
        self.assertEqual(r.status, 503, data)
        self.assertEqual(json.loads(data)["error"]["code"], "shutting_down")
        t.join(30)
        self.assertEqual(out[0].status, 201)
        self.assertEqual(self.wait_exit(d), 0, d.logtext())


class GroupCommitOrder(DurabilityTest):
    @needs_failpoints
    def test_no_409_from_a_revision_that_is_not_durable(self):
        """Two different revision 1s of one province in one round: the
        second waits for the first to be durable; when the first cannot be
        written, the second is not refused with a 409 naming it."""
        d = self.start(env={"TALLYD_FAILPOINTS": "sync_delay_ms=800"})
        flag = os.path.join(self.data_dir, "failpoint.enospc")
        out = {}

        def post(key, pid, body):
            out[key] = self.post(d, pid, body)
        ta = threading.Thread(target=post, args=("a", PIDS[0], feed(PIDS[0])))
        ta.start()
        time.sleep(0.3)     # A is in its slow sync: the journal is busy
        open(flag, "w").close()
        t1 = threading.Thread(target=post, args=("b1", PIDS[1], feed(PIDS[1])))
        t1.start()
        time.sleep(0.1)
        t2 = threading.Thread(target=post, args=(
            "b2", PIDS[1], feed(PIDS[1], delta=5)))
        t2.start()
        for t in (ta, t1, t2):
            t.join(30)
        os.unlink(flag)
        self.assertEqual(out["a"].status, 201)
        self.assertEqual(out["b1"].status, 503, out["b1"].body)
        self.assertEqual(out["b2"].status, 503, out["b2"].body)
        self.assertEqual(self.revision(d, PIDS[1]), 0)
        self.applied(self.post(d, PIDS[1], feed(PIDS[1], delta=5)))
        self.stop(d)


class SlowDisk(DurabilityTest):
    @needs_failpoints
    def test_batch_sync_never_holds_the_loop(self):
        # Every sync takes 2 s; under batch:50 the writer syncs on its own.
        d = self.start(["-f", self.conf("fsync batch:50\n")],
                       env={"TALLYD_FAILPOINTS": "sync_delay_ms=2000"})
        self.applied(self.post(d, PIDS[0], feed(PIDS[0])))
        worst = 0.0
        posted = []
        t = threading.Thread(target=lambda: posted.append(
            self.post(d, PIDS[1], feed(PIDS[1]))))
        t.start()
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            t0 = time.monotonic()
            self.assertEqual(d.get("/healthz").status, 200)
            worst = max(worst, time.monotonic() - t0)
            time.sleep(0.01)
        t.join(30)
        self.assertEqual(posted[0].status, 201)
        # Before the fix, /healthz waited behind the sync's mutex (1.65 s).
        self.assertLess(worst, 0.5, "a read waited %.2f s" % worst)
        self.stop(d)

    def conf(self, text):
        path = os.path.join(tempfile.mkdtemp(prefix="tallyd-conf-"), "t.conf")
        self.addCleanup(shutil.rmtree, os.path.dirname(path), True)
        with open(path, "w") as f:
            f.write(text)
        return path


class OneDaemonPerDataDir(DurabilityTest):
    def test_second_daemon_on_the_same_data_dir_refuses(self):
        d = self.start()
        other = Daemon(["--election", crashloop.election_path()],
                       env={"TALLYD_INGEST_TOKEN": TOKEN},
                       data_dir=self.data_dir)
        other.expect_exit(1)
        other.start(wait=False)
        self.assertEqual(other.wait_exit(20), 1)
        log = other.logtext()
        self.assertIn("in use by another tallyd (pid %d)" % d.proc.pid, log)
        # The first is untouched and still takes feeds.
        self.applied(self.post(d, PIDS[0], feed(PIDS[0])))
        self.stop(d)
        # The lock goes with the process, also after kill -9.
        d = self.start()
        d.kill()
        d2 = self.start()
        self.assertEqual(self.revision(d2, PIDS[0]), 1)
        self.stop(d2)

    def refused(self, holder):
        """A second tallyd on the data dir: it must exit 1 naming holder."""
        other = Daemon(["--election", crashloop.election_path()],
                       env={"TALLYD_INGEST_TOKEN": TOKEN},
                       data_dir=self.data_dir)
        self.addCleanup(other.cleanup)
        other.expect_exit(1)
        other.start(wait=False)
        try:
            rc = other.wait_exit(10)
        except AssertionError:
            self.fail("a second tallyd runs on the same data dir:\n" +
                      other.logtext())
        log = other.logtext()
        self.assertEqual(rc, 1, log)
        self.assertIn("in use by another tallyd (pid %d)" % holder, log)

    def test_removing_the_lock_file_does_not_defeat_the_lock(self):
        d = self.start()
        v = self.applied(self.post(d, PIDS[0], feed(PIDS[0])))
        # The lock is on the open directory, not the file's existence: an
        # operator cleaning up "stale" files must not let a second daemon
        # hand out the same versions.
        os.unlink(os.path.join(self.data_dir, "tallyd.lock"))
        self.refused(d.proc.pid)
        # Nor the pid file: the holder is then found in /proc/locks.
        os.unlink(os.path.join(self.data_dir, "tallyd.pid"))
        self.refused(d.proc.pid)
        # The refusals took nothing from the first one.
        self.assertEqual(self.applied(self.post(d, PIDS[1], feed(PIDS[1]))),
                         v + 1)
        # The lock goes with the process after kill -9, file or no file.
        d.kill()
        d2 = self.start()
        self.assertEqual(self.revision(d2, PIDS[0]), 1)
        self.assertEqual(self.revision(d2, PIDS[1]), 1)
        self.assertEqual(self.version(d2), v + 1)
        self.assertTrue(os.path.exists(os.path.join(self.data_dir,
                                                    "tallyd.lock")))
        self.stop(d2)


class Background(DurabilityTest):
    def run_bg(self, args, env=None):
        e = dict(os.environ, TALLYD_INGEST_TOKEN=TOKEN)
        e.update(env or {})
        return subprocess.run([TALLYD, "--election", crashloop.election_path(),
                               "--data-dir", self.data_dir] + args,
                              capture_output=True, text=True, env=e,
                              timeout=60)

    def pid(self):
        with open(os.path.join(self.data_dir, "tallyd.pid")) as f:
            return int(f.read())

    def election_id(self):
        with open(crashloop.election_path()) as f:
            return json.load(f)["id"]

    def test_background_start_returns_when_serving(self):
        port = free_port()
        r = self.run_bg(["--listen", "127.0.0.1:%d" % port])
        self.assertEqual(r.returncode, 0, r.stderr)
        pid = self.pid()
        self.addCleanup(lambda: os.kill(pid, signal.SIGKILL)
                        if os.path.exists("/proc/%d" % pid) else None)
        # It says where (a newcomer saw nothing and had to guess).
        self.assertEqual(r.stdout, "tallyd: serving %s at http://127.0.0.1:"
                         "%d/ (pid %d, log %s)\n" % (
                             self.election_id(),
                             port, pid,
                             os.path.join(self.data_dir, "tallyd.log")))
        # It answers at once: the start returned only once it listened.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                      b"Connection: close\r\n\r\n")
            self.assertIn(b"200 OK", s.recv(4096))
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while os.path.exists("/proc/%d" % pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def test_background_start_on_a_taken_port_fails(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            r = self.run_bg(["--listen", "127.0.0.1:%d" % port])
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("did not start", r.stderr)
        self.assertIn("127.0.0.1:%d" % port, r.stderr)

    def test_background_start_says_why_on_the_terminal(self):
        """Issue 25: a start refused for a bad token file said only
        "cannot set up the API: fix the problems above" on the terminal;
        the problems were in the log file alone."""
        tokens = os.path.join(self.data_dir + "-tokens")
        with open(tokens, "w") as f:
            f.write("sha256:nothex baghdad commission\n")
        self.addCleanup(os.unlink, tokens)
        conf = os.path.join(self.data_dir + ".conf")
        with open(conf, "w") as f:
            f.write("token_file %s\n" % tokens)
        self.addCleanup(os.unlink, conf)
        r = self.run_bg(["-f", conf, "--listen", "127.0.0.1:%d" % free_port()])
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("did not start", r.stderr)
        # The cause itself: the file and line of the bad token.
        self.assertIn("%s:1" % tokens, r.stderr)
        log = open(os.path.join(self.data_dir, "tallyd.log")).read()
        cause = [l for l in log.splitlines() if "%s:1" % tokens in l]
        self.assertTrue(cause, log)
        self.assertIn(cause[0].split(" warn ", 1)[1], r.stderr)


class Check(DurabilityTest):
    def check(self, *args, env=None):
        e = dict(os.environ)
        e.pop("TALLYD_INGEST_TOKEN", None)
        e.update(env or {})
        return subprocess.run([TALLYD, "-n", "--election",
                               crashloop.election_path(), "--data-dir",
                               self.data_dir] + list(args),
                              capture_output=True, text=True, env=e, timeout=60)

    def conf(self, text):
        path = os.path.join(self.data_dir + "-conf")
        os.makedirs(path, exist_ok=True)
        self.addCleanup(shutil.rmtree, path, True)
        p = os.path.join(path, "t.conf")
        with open(p, "w") as f:
            f.write(text)
        return p

    def test_broken_token_file_fails(self):
        tokens = os.path.join(self.data_dir, "tokens")
        with open(tokens, "w") as f:
            f.write("sha256:nothex %s\n" % PIDS[0])
            f.write("sha256:%s nowhere-province\n" % ("ab" * 32))
        r = self.check("-f", self.conf("token_file %s\n" % tokens))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("tokens:1", r.stderr)
        self.assertIn("tokens:2", r.stderr)
        self.assertNotIn("configuration OK", r.stdout)
        r = self.check("-f", self.conf("token_file %s/none\n" % self.data_dir))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        # 64 characters that are not all hexadecimal: that line is named,
        # with why; a hash in upper case is as good as in lower case.
        with open(tokens, "w") as f:
            f.write("sha256:%s %s\n" % ("AB" * 32, PIDS[0]))
            f.write("sha256:%sz %s\n" % ("ab" * 31 + "a", PIDS[0]))
        r = self.check("-f", self.conf("token_file %s\n" % tokens))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertNotIn("tokens:1", r.stderr)
        self.assertIn("tokens:2: the hash is not hexadecimal", r.stderr)
        with open(tokens, "w") as f:
            f.write("sha256:%s %s\n" % ("AB" * 32, PIDS[0]))
        r = self.check("-f", self.conf("token_file %s\n" % tokens))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_check_reads_the_journal_and_changes_nothing(self):
        d = self.start()
        self.applied(self.post(d, PIDS[0], feed(PIDS[0])))
        self.applied(self.post(d, PIDS[1], feed(PIDS[1])))
        d.kill()
        seg = segments(self.data_dir)[-1]
        listing = sorted(os.listdir(self.data_dir))
        with open(seg, "ab") as f:
            f.write(b"TLJ1torn")        # a torn tail a start would cut
        size = os.path.getsize(seg)
        r = self.check(env={"TALLYD_INGEST_TOKEN": TOKEN})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("configuration OK", r.stdout)
        self.assertIn("2 journal records", r.stdout)
        self.assertIn("a start would drop", r.stderr)
        self.assertEqual(os.path.getsize(seg), size)
        self.assertEqual(sorted(os.listdir(self.data_dir)), listing)
        # Corruption in the middle: refused, with what to do.
        with open(seg, "r+b") as f:
            f.seek(HEADER + 3)
            b = f.read(1)
            f.seek(HEADER + 3)
            f.write(bytes([b[0] ^ 0xFF]))
        r = self.check(env={"TALLYD_INGEST_TOKEN": TOKEN})
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("--repair", r.stderr)

    def test_generated_token_not_written_by_a_check(self):
        r = self.check()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.data_dir,
                                                     "ingest.token")))


class RepairAcrossSegments(DurabilityTest):
    def test_corrupt_first_record_of_a_middle_segment(self):
        d = self.start()
        for i, pid in enumerate(PIDS[:6]):
            self.applied(self.post(d, pid, feed(pid)))
        d.kill()
        seg = segments(self.data_dir)[-1]
        recs = records(seg)
        self.assertEqual(len(recs), 6)
        with open(seg, "rb") as f:
            data = f.read()
        os.unlink(seg)
        # Three segments: records 1-2, 3-4, 5-6.
        names = []
        for k in range(3):
            first = recs[2 * k]
            end = recs[2 * k + 1][0] + recs[2 * k + 1][1]
            name = os.path.join(self.data_dir, "journal-%016x.log" % first[2])
            with open(name, "wb") as f:
                f.write(data[first[0]:end])
            names.append(name)
        # Damage the first record of the middle segment.
        with open(names[1], "r+b") as f:
            f.seek(HEADER + 2)
            f.write(b"#")
        d = self.start(wait=False)
        d.expect_exit(1)
        self.assertEqual(self.wait_exit(d), 1)
        self.assertIn("--repair", d.logtext())
        # A dry run says what it would cut and changes nothing.
        def contents():
            out = {}
            for n in names:
                with open(n, "rb") as f:
                    out[n] = f.read()
            return out
        before = contents()
        r = subprocess.run([TALLYD, "-n", "--repair", "--election",
                            crashloop.election_path(), "--data-dir",
                            self.data_dir], capture_output=True, text=True,
                           env=dict(os.environ, TALLYD_INGEST_TOKEN=TOKEN))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("would cut", r.stderr)
        self.assertEqual(contents(), before)
        d = self.start(["--repair"])
        self.assertEqual([self.revision(d, p) for p in PIDS[:6]],
                         [1, 1, 0, 0, 0, 0])
        self.assertTrue(os.path.exists(names[2] + ".lost"))
        log = d.logtext()
        # The intact records it drops are named, to be posted again.
        for pid in PIDS[3:6]:
            self.assertIn("%s revision 1" % pid, log)
        side = [f for f in os.listdir(self.data_dir) if f.endswith(".cut")]
        self.assertEqual(len(side), 1, os.listdir(self.data_dir))
        with open(os.path.join(self.data_dir, side[0]), "rb") as f:
            self.assertEqual(f.read(), before[names[1]])
        self.assertEqual(os.stat(os.path.join(self.data_dir, side[0])).st_mode
                         & 0o777, 0o600)
        # Versions 1-6 were seen by clients: the tally moves past them.
        self.assertEqual(self.version(d), 7)
        # The cut segment takes the new records; a restart agrees.
        self.assertEqual(self.applied(self.post(d, PIDS[2],
                                                feed(PIDS[2], revision=2))), 8)
        self.stop(d)
        d = self.start()
        self.assertEqual(self.revision(d, PIDS[2]), 2)
        self.assertEqual(self.version(d), 8)
        self.stop(d)


class LostJournal(DurabilityTest):
    def test_a_data_dir_that_lost_its_journal_refuses_an_empty_start(self):
        d = self.start()
        self.applied(self.post(d, PIDS[0], feed(PIDS[0])))
        self.stop(d)
        for f in os.listdir(self.data_dir):
            if f.startswith(("journal-", "snapshot-")):
                os.unlink(os.path.join(self.data_dir, f))
        d = self.start(wait=False)
        d.expect_exit(1)
        self.assertEqual(self.wait_exit(d), 1)
        self.assertIn("--empty", d.logtext())
        d = self.start(["--empty"])
        self.assertEqual(self.version(d), 0)
        self.stop(d)
        # From then on, a plain start again.
        d = self.start()
        self.stop(d)


class RateLimit(DurabilityTest):
    def test_a_token_over_its_rate_gets_429_and_others_do_not(self):
        tmp = tempfile.mkdtemp(prefix="tallyd-rate-")
        self.addCleanup(shutil.rmtree, tmp, True)
        other = "another-ingest-token-for-the-tests-0001"
        tokens = os.path.join(tmp, "tokens")
        import hashlib
        with open(tokens, "w") as f:
            for tok, label in ((TOKEN, "loud"), (other, "quiet")):
                f.write("sha256:%s * %s\n" % (
                    hashlib.sha256(tok.encode()).hexdigest(), label))
        conf = os.path.join(tmp, "t.conf")
        with open(conf, "w") as f:
            f.write("token_file %s\ningest_rate 2\ningest_burst 3\n" % tokens)
        d = self.start(["-f", conf])
        codes = []
        for i in range(6):
            r = self.post(d, PIDS[i], feed(PIDS[i]))
            codes.append(r.status)
            if r.status == 429:
                self.assertEqual(r.json()["error"]["code"], "rate_limited")
                self.assertIn("loud", r.json()["error"]["message"])
                self.assertTrue(r.header("Retry-After").isdigit())
        self.assertEqual(codes[:3], [201, 201, 201])
        self.assertIn(429, codes[3:])
        # Nothing refused was applied; the other token is not limited.
        applied = codes.count(201)
        self.assertEqual(self.version(d), applied)
        r = d.request("POST", "/v1/provinces/%s/results" % PIDS[10],
                      body=feed(PIDS[10]),
                      headers={"Authorization": "Bearer " + other})
        self.assertEqual(r.status, 201, r.body)
        # The bucket refills: after a second, posts go through again.
        time.sleep(1.1)
        self.applied(self.post(d, PIDS[11], feed(PIDS[11])))
        m = d.get("/metrics").body.decode()
        self.assertIn('tallyd_feeds_rejected_total{reason="rate_limited"}', m)
        self.stop(d)


class LogReopen(DurabilityTest):
    def test_sighup_reopens_the_log_file(self):
        logdir = tempfile.mkdtemp(prefix="tallyd-log-")
        self.addCleanup(shutil.rmtree, logdir, True)
        log = os.path.join(logdir, "tallyd.log")
        conf = os.path.join(logdir, "t.conf")
        with open(conf, "w") as f:
            f.write("log_file %s\n" % log)
        d = self.start(["-f", conf])
        self.wait_log_file(log, "serving election")
        os.rename(log, log + ".1")      # what logrotate does
        d.send_signal(signal.SIGHUP)
        self.wait_log_file(log, "reloaded")
        with open(log + ".1") as f:
            self.assertNotIn("reloaded", f.read())
        self.stop(d)

    def wait_log_file(self, path, text):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if os.path.exists(path):
                with open(path) as f:
                    if text in f.read():
                        return
            time.sleep(0.05)
        self.fail("%s never said %r" % (path, text))


if __name__ == "__main__":
    main()
