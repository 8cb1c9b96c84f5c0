#!/usr/bin/env python3
"""Delta events and coalescing on the event streams (issue 24).

GET /v1/events?deltas=1 sends the whole leaderboard on connect (and on a
resume whose gap is not filled), then one small `delta` event per version:
the provinces changed (their GET /v1/provinces/{id} bodies) and the members
and coalition rows of the leaderboard that changed.  A client applying them
holds exactly GET /v1/leaderboard's data.  With sse_coalesce_ms, versions
that come faster than that are sent as one event per contest per interval,
the last one always the newest version.
"""
import copy
import json
import os
import random
import signal
import threading
import time

from harness import ELECTIONS, CheckedDaemonTest, main, seed
from test_live import SSE

TOKEN = "deltas-test-ingest-token-0123456789"
AUTH = {"Authorization": "Bearer " + TOKEN}
ES, CZ = "es-2019-04", "cz-2017"


def definition(ds):
    return os.path.join(ELECTIONS, ds, "election.json")


def entries(ds):
    with open(os.path.join(ELECTIONS, ds, "results.json")) as f:
        out = []
        for e in json.load(f)["results"]:
            e = dict(e)
            out.append((e.pop("province"), e))
        return out


def scaled(e, num, den, rev):
    """Snapshot e counted num/den of the way, as revision rev (partial)."""
    e = dict(e)
    e["votes"] = {k: v * num // den for k, v in e["votes"].items()}
    for k in ("blank", "invalid"):
        if k in e:
            e[k] = e[k] * num // den
    e.pop("stations", None)
    e["revision"] = rev
    e["status"] = "final" if num == den else "partial"
    return e


class Client:
    """A dashboard: the whole leaderboard on (re)connect, deltas applied,
    the province rows kept by id.  Per contest (named streams: the id's
    "<contest>:" prefix)."""

    def __init__(self, test, port, path, headers=None):
        self.t = test
        self.sse = SSE(port, path, headers)
        test.addCleanup(self.close)
        test.assertEqual(self.sse.status(), 200, self.sse.text)
        # A dashboard reads all the time (one that stops is conflated to
        # a snapshot, test_live.py): a thread takes the bytes as they come.
        self.lock = threading.Lock()
        self.stop = False
        self.sse.s.settimeout(0.05)
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()
        self.done = 0
        self.snapshots = 0
        self.lb = {}         # contest -> leaderboard data
        self.rows = {}       # contest -> {province id: detail}
        self.kinds = []      # (contest, event) in order
        self.last_id = {}    # contest -> last id
        self.sizes = {"delta": [], "leaderboard": []}
        self.province_sets = []   # the provinces of each delta

    def read(self):
        while not self.stop and not self.sse.closed:
            try:
                b = self.sse.s.recv(65536)
            except OSError:
                continue
            if not b:
                self.sse.closed = True
                return
            with self.lock:
                self.sse.buf += b
                if self.sse.head is not None:
                    self.sse._dechunk()

    def close(self):
        self.stop = True
        self.reader.join()
        self.sse.close()

    def events(self):
        with self.lock:
            return self.sse.events()

    def contest_of(self, ev):
        i = ev["id"]
        return i.split(":")[0] if ":" in i else ""

    def step(self):
        evs = self.events()
        for ev in evs[self.done:]:
            kind = ev.get("event")
            if kind is None or "id" not in ev:
                continue
            c = self.contest_of(ev)
            self.kinds.append((c, kind))
            self.last_id[c] = ev["id"]
            data = json.loads(ev["data"])
            if kind == "snapshot" and c in self.lb:
                # Skipped versions: rows are read again (GET).
                self.snapshots += 1
                print("conflated at", ev["id"])
            if kind == "leaderboard":
                self.lb[c] = data
                self.sizes["leaderboard"].append(len(ev["data"]))
            elif kind == "delta":
                self.sizes["delta"].append(len(ev["data"]))
                self.apply(c, data)
        self.done = len(evs)

    def apply(self, c, d):
        lb = self.lb[c]
        self.t.assertEqual(lb["version"], d["from"],
                           "a delta from another version than held")
        if c:
            self.t.assertEqual(d["contest"], c)
        L = d["leaderboard"]
        for k in L.get("unset", []):
            lb.pop(k, None)
        lb.update(L["set"])
        if "coalitions" in L:
            rows = {r["id"]: r for r in lb["coalitions"]}
            for r in L["coalitions"]:
                rows.setdefault(r["id"], {}).update(r)
            for r in L.get("coalitions_replace", []):
                rows[r["id"]] = r
            order = L.get("order") or [r["id"] for r in lb["coalitions"]]
            lb["coalitions"] = [rows[i] for i in order]
        self.t.assertEqual(lb["version"], d["version"])
        self.province_sets.append([p["id"] for p in d["provinces"]])
        for p in d["provinces"]:
            self.rows.setdefault(c, {})[p["id"]] = p

    def wait_version(self, v, c="", timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.step()
            if self.lb.get(c, {}).get("version") == v:
                return
            time.sleep(0.01)
        raise AssertionError("never version %d on %r: %r" % (
            v, c, self.kinds[-5:]))


class Deltas(CheckedDaemonTest):
    def start(self, conf="", elections=(ES,)):
        d = self.daemon(start=False, env={"TALLYD_INGEST_TOKEN": TOKEN})
        path = os.path.join(d.tmp, "tallyd.conf")
        with open(path, "w") as f:
            f.write(conf)
        d.args = ["-f", path]
        for e in elections:
            d.args += ["--election", definition(e)]
        d.start()
        return d

    def post(self, d, pid, body, prefix="/v1"):
        r = d.request("POST", "%s/provinces/%s/results" % (prefix, pid),
                      body=body, headers=AUTH)
        self.assertIn(r.status, (200, 201), r.body)
        return r.json()["version"]

    def batch(self, d, items, prefix="/v1"):
        r = d.request("POST", "%s/results" % prefix, body={"results": [
            dict(e, province=pid) for pid, e in items]}, headers=AUTH)
        self.assertIn(r.status, (200, 201), r.body)
        return r.json()["version"]

    def night(self, d, rng, prefix="/v1", ds=ES, hook=None):
        """An election night on d: partial counts, batches, corrections
        (lower numbers), finals.  The last version."""
        es = entries(ds)
        rev = {}
        v = 0
        steps = []
        for pid, e in es:
            steps.append((pid, e, 1, 3))
        for pid, e in es[:45]:
            steps.append((pid, e, 2, 3))
        rng.shuffle(steps)
        i = 0
        while i < len(steps):
            n = rng.choice((1, 1, 1, 3))
            chunk = []
            seen = set()
            while i < len(steps) and len(chunk) < n and \
                    steps[i][0] not in seen:
                pid, e, num, den = steps[i]
                rev[pid] = rev.get(pid, 0) + 1
                chunk.append((pid, scaled(e, num, den, rev[pid])))
                seen.add(pid)
                i += 1
            if len(chunk) == 1:
                v = self.post(d, chunk[0][0], chunk[0][1], prefix)
            else:
                v = self.batch(d, chunk, prefix)
            if hook:
                hook(v)
        # Corrections: a newer revision with fewer votes.
        for pid, e in es[:5]:
            rev[pid] = rev.get(pid, 0) + 1
            v = self.post(d, pid, scaled(e, 1, 4, rev[pid]), prefix)
        # Finals.
        for pid, e in es[:10]:
            rev[pid] = rev.get(pid, 0) + 1
            v = self.post(d, pid, scaled(e, 1, 1, rev[pid]), prefix)
        return v, sorted(rev)

    def check_rows(self, d, client, pids, prefix="/v1", c=""):
        # Rows come from deltas alone while the stream was never conflated
        # (a reader that keeps up).
        self.assertEqual(client.snapshots, 0, "conflated: rows incomplete")
        for pid in pids:
            self.assertEqual(client.rows[c][pid],
                             d.get("%s/provinces/%s" % (prefix, pid)).json(),
                             pid)

    def test_night_of_deltas(self):
        """A client applying deltas to the leaderboard it got on connect
        ends with exactly GET /v1/leaderboard's data after a night of
        POSTs, batches and corrections; a resume by Last-Event-ID mid-night
        works; clients without ?deltas=1 get what they always got."""
        rng = random.Random(seed())
        d = self.start()
        client = Client(self, d.port, "/v1/events?deltas=1")
        twin = Client(self, d.port, "/v1/events?deltas=1")
        full = Client(self, d.port, "/v1/events")
        client.wait_version(0)
        resumed = {}

        def hook(v):
            # A dashboard keeps up (a reader that does not is conflated to
            # a snapshot, and then reads the rows again: test_live.py);
            # this machine's load may stall the test's readers, so the
            # night waits for them now and then.
            if v % 10 == 0:
                for c in (client, twin, full):
                    c.wait_version(v)
            if v == 1:
                client.wait_version(v)
                resumed["id1"] = client.last_id[""]
            if v == 10:
                resumed["id10"] = client.last_id[""]
                resumed["lb10"] = copy.deepcopy(client.lb[""])
            # Mid-night: a subscriber that drops and resumes with its last
            # id (the current one: deltas go on, no leaderboard again).
            if v == 20:
                late = Client(self, d.port, "/v1/events?deltas=1")
                late.wait_version(v)
                last = late.last_id[""]
                late.close()
                resumed["c"] = Client(self, d.port, "/v1/events?deltas=1",
                                      {"Last-Event-ID": last})
                resumed["c"].lb[""] = late.lb[""]
            if v == 30:
                # An older id: the gap is filled from the deltas kept
                # (the last 64), no leaderboard again.
                resumed["old"] = Client(
                    self, d.port, "/v1/events?deltas=1",
                    {"Last-Event-ID": resumed["id10"]})
                resumed["old"].lb[""] = resumed["lb10"]
        v, pids = self.night(d, rng, hook=hook)
        self.assertGreater(v, 66)
        # An id older than the deltas kept: the whole leaderboard.
        resumed["older"] = Client(self, d.port, "/v1/events?deltas=1",
                                  {"Last-Event-ID": resumed["id1"]})
        for c in (client, twin, resumed["c"], resumed["old"],
                  resumed["older"]):
            c.wait_version(v)
            self.assertEqual(c.lb[""], d.get("/v1/leaderboard").json())
        self.check_rows(d, client, pids)
        # One leaderboard (on connect), then only deltas: v of them.
        self.assertEqual(client.kinds[:2], [("", "snapshot"),
                                            ("", "leaderboard")])
        # (Calls that became certain come as call events, as ever.)
        self.assertLessEqual({k for _, k in client.kinds[2:]},
                             {"delta", "call"})
        self.assertIn("call", {k for _, k in client.kinds})
        self.assertEqual(len(client.sizes["delta"]), v)
        # Small: a delta is a fraction of the leaderboard.
        mean = sum(client.sizes["delta"]) / len(client.sizes["delta"])
        print("leaderboard %d bytes, delta mean %.0f" % (
            client.sizes["leaderboard"][0], mean))
        # The resumed ones got no leaderboard again (the gap was filled);
        # the one from before the deltas kept got one.
        self.assertNotIn(("", "leaderboard"), resumed["c"].kinds)
        self.assertNotIn(("", "leaderboard"), resumed["old"].kinds)
        self.assertEqual(resumed["old"].kinds[0], ("", "delta"))
        self.assertEqual(resumed["older"].kinds[:2], [("", "snapshot"),
                                                      ("", "leaderboard")])
        # Pure: two subscribers got the same bytes.
        self.assertEqual(client.sse.text, twin.sse.text)
        # Existing clients: change + leaderboard per version, as before.
        full.wait_version(v)
        self.assertEqual(full.lb[""], d.get("/v1/leaderboard").json())
        # (Every version, unless the test's reader lagged and the stream
        # was conflated: then a snapshot says so, as it always did.)
        if full.snapshots == 0:
            self.assertEqual(full.kinds.count(("", "change")), v)
            self.assertEqual(full.kinds.count(("", "leaderboard")), v + 1)
        self.assertNotIn(("", "delta"), full.kinds)
        # Small: a delta is a fraction of the leaderboard's bytes.
        self.assertLess(mean, client.sizes["leaderboard"][0] / 2)
        # A bad value is refused, saying what to send.
        r = d.get("/v1/events?deltas=yes")
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["error"]["code"], "invalid_deltas")

    def burst(self, d, n, prefix="/v1", ds=ES, threads=4):
        """n POSTs at once from a few threads, over many provinces: the
        last version."""
        es = entries(ds)
        jobs = [(pid, scaled(e, k + 1, n // len(es) + 2, k + 1))
                for k in range(n // len(es) + 1) for pid, e in es][:n]
        # Each province's revisions in order: one thread per province.
        by = {}
        for pid, e in jobs:
            by.setdefault(pid, []).append(e)
        lanes = [[] for _ in range(threads)]
        for i, pid in enumerate(sorted(by)):
            lanes[i % threads].append(pid)
        versions = []

        def run(pids):
            k = 0
            while True:
                work = [(p, by[p][k]) for p in pids if k < len(by[p])]
                if not work:
                    return
                for pid, e in work:
                    versions.append(self.post(d, pid, e, prefix))
                k += 1
        ts = [threading.Thread(target=run, args=(lane,)) for lane in lanes]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(len(versions), n)
        return max(versions), sorted(by)

    def test_coalescing(self):
        """A burst of 200 POSTs with sse_coalesce_ms 200: far fewer events,
        the last one the final leaderboard; a coalesced delta covers every
        province changed since the previous event."""
        d = self.start("sse_coalesce_ms 200\n")
        full = Client(self, d.port, "/v1/events")
        client = Client(self, d.port, "/v1/events?deltas=1")
        client.wait_version(0)
        t0 = time.monotonic()
        v, pids = self.burst(d, 200)
        took = time.monotonic() - t0
        client.wait_version(v)
        full.wait_version(v)
        lb = d.get("/v1/leaderboard").json()
        self.assertEqual(client.lb[""], lb)
        self.assertEqual(full.lb[""], lb)
        n = len(client.sizes["delta"])
        # At most one event per 200 ms (and the first at once).
        print("200 posts in %.2f s: %d deltas, %d leaderboards" % (
            took, n, len(full.sizes["leaderboard"]) - 1))
        self.assertLessEqual(n, took / 0.2 + 2)
        self.assertLess(n, 50)
        self.assertLess(len(full.sizes["leaderboard"]), 50)
        # Every province posted has its current row (no delta missed one).
        self.check_rows(d, client, pids)
        # A coalesced change event says where it starts.
        evs = [json.loads(e["data"]) for e in full.events()
               if e.get("event") == "change"]
        self.assertTrue(any("from" in e and e["version"] - e["from"] > 1
                            for e in evs), evs[:3])
        # After a quiet interval, the next version is sent at once.
        time.sleep(0.3)
        pid, e = entries(ES)[0]
        t0 = time.monotonic()
        v = self.post(d, pid, scaled(e, 1, 1, 1000))
        client.wait_version(v)
        self.assertLess(time.monotonic() - t0, 0.15)

    def test_two_contests(self):
        """Deltas and coalescing per contest: a named stream of both
        contests and a contest's own stream, each ending with its
        contest's leaderboard."""
        d = self.start("sse_coalesce_ms 100\n", elections=(ES, CZ))
        both = Client(self, d.port, "/v1/events?contests=%s,%s&deltas=1" %
                      (ES, CZ))
        cz = Client(self, d.port, "/v1/contests/%s/events?deltas=1" % CZ)
        both.wait_version(0, ES)
        both.wait_version(0, CZ)
        cz.wait_version(0)
        out = {}

        def run(ds):
            out[ds] = self.burst(d, 120, prefix="/v1/contests/" + ds, ds=ds,
                                 threads=2)
        ts = [threading.Thread(target=run, args=(ds,)) for ds in (ES, CZ)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for ds in (ES, CZ):
            v, pids = out[ds]
            both.wait_version(v, ds)
            lb = d.get("/v1/contests/%s/leaderboard" % ds).json()
            self.assertEqual(both.lb[ds], lb)
            self.check_rows(d, both, pids, "/v1/contests/" + ds, ds)
            if ds == CZ:
                cz.wait_version(v)
                self.assertEqual(cz.lb[""], lb)
                self.check_rows(d, cz, pids, "/v1/contests/" + ds)
        per = {}
        for c, k in both.kinds:
            if k == "delta":
                per[c] = per.get(c, 0) + 1
        print("deltas per contest for 120 posts each:", per)
        for ds in (ES, CZ):
            self.assertLess(per[ds], 100)

    def test_coalesced_event_sent_at_stop(self):
        """A version waiting for the coalescing interval goes out before
        the streams end at a stop: the last event is the final state."""
        d = self.start("sse_coalesce_ms 60000\n")
        es = entries(ES)
        full = Client(self, d.port, "/v1/events")
        delta = Client(self, d.port, "/v1/events?deltas=1")
        delta.wait_version(0)
        self.post(d, es[0][0], scaled(es[0][1], 1, 2, 1))
        v = self.post(d, es[1][0], scaled(es[1][1], 1, 2, 1))
        time.sleep(0.3)
        full.step()
        self.assertLess(full.lb[""]["version"], v, "not coalesced")
        lb = d.get("/v1/leaderboard").json()
        self.assertEqual(d.stop(signal.SIGTERM), 0, d.logtext())
        for c in (full, delta):
            c.wait_version(v)
            self.assertEqual(c.lb[""], lb)

    def test_stalled_delta_subscriber_dropped_with_resume_id(self):
        """A subscriber of deltas that stops reading holds at most a few
        fan-outs' events (then it is conflated), is dropped once its socket
        has not drained for sse_stall_timeout, and resumes with the id of
        the last event it got whole: the whole leaderboard, then deltas."""
        d = self.start("sse_stall_timeout 2\n")
        es = entries(ES)
        slow = SSE(d.port, "/v1/events?deltas=1", rcvbuf=4096)
        self.addCleanup(slow.close)
        self.assertEqual(slow.status(), 200)
        slow.wait_for(lambda e: any(x.get("event") == "leaderboard"
                                    for x in e))
        rev = 0
        deadline = time.monotonic() + 30
        gone = False
        while time.monotonic() < deadline and not gone:
            rev += 1
            for pid, e in es[:20]:
                self.post(d, pid, scaled(e, rev, 1000, rev))
            for line in d.get("/metrics").body.decode().splitlines():
                if line.startswith("tallyd_event_streams "):
                    gone = int(line.split()[1]) == 0
            time.sleep(0.2)
        self.assertTrue(gone, "the stalled subscriber is still connected")
        deadline = time.monotonic() + 20
        while not slow.closed and time.monotonic() < deadline:
            slow._fill()
        self.assertTrue(slow.closed, "the stalled stream was not closed")
        got = [e for e in slow.events() if e.get("event") in
               ("delta", "leaderboard")]
        last_id = got[-1]["id"]
        # What it held when dropped: its leaderboard and deltas applied.
        held = Client.__new__(Client)
        held.t, held.lb, held.rows, held.province_sets = self, {}, {}, []
        for e in got:
            if e["event"] == "leaderboard":
                held.lb[""] = json.loads(e["data"])
            else:
                held.apply("", json.loads(e["data"]))
        v = self.post(d, es[0][0], scaled(es[0][1], 1, 1, rev + 1))
        self.assertLess(int(last_id.split("-")[0]), v)
        again = Client(self, d.port, "/v1/events?deltas=1",
                       {"Last-Event-ID": last_id})
        again.lb[""] = held.lb[""]
        again.wait_version(v)
        # The whole leaderboard, or (its id among the deltas kept) the
        # deltas since.
        if again.kinds[0] != ("", "delta"):
            self.assertEqual(again.kinds[:2], [("", "snapshot"),
                                               ("", "leaderboard")])
        v = self.post(d, es[1][0], scaled(es[1][1], 1, 1, rev + 1))
        again.wait_version(v)
        self.assertIn(("", "delta"), again.kinds[2:])
        self.assertNotIn(("", "leaderboard"), again.kinds[2:])
        self.assertEqual(again.lb[""], d.get("/v1/leaderboard").json())


if __name__ == "__main__":
    main()
