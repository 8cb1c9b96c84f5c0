#!/usr/bin/env python3
"""Live updates through the running daemon: GET /v1/events (Server-Sent
Events), long-poll (?wait=S), immutable version URLs, CORS."""
import json
import os
import signal
import socket
import time

from harness import TALLYD, CheckedDaemonTest, gunzip, main, needs_failpoints

TOKEN = "live-test-ingest-token-0123456789"
AUTH = {"Authorization": "Bearer " + TOKEN}



def under_tsan():
    """Is the tallyd under test built with ThreadSanitizer?"""
    try:
        with open(TALLYD, "rb") as f:
            return b"__tsan_init" in f.read()
    except OSError:
        return False

class SSE:
    """A raw event-stream client: parses events as they arrive."""

    def __init__(self, port, path="/v1/events", headers=None, rcvbuf=None):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.connect(("127.0.0.1", port))
        self.s.settimeout(10)
        hdrs = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
        self.s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" %
                        (path, hdrs)).encode())
        self.buf = b""
        self.head = None
        self.text = ""
        self.closed = False

    def _fill(self):
        try:
            b = self.s.recv(65536)
        except socket.timeout:
            return False
        if not b:
            self.closed = True
            return False
        self.buf += b
        if self.head is None and b"\r\n\r\n" in self.buf:
            self.head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        if self.head is not None:
            self._dechunk()
        return True

    def _dechunk(self):
        while True:
            line, sep, rest = self.buf.partition(b"\r\n")
            if not sep:
                return
            size = int(line.split(b";")[0], 16)
            if len(rest) < size + 2:
                return
            self.text += rest[:size].decode()
            self.buf = rest[size + 2:]
            if size == 0:
                self.closed = True

    def status(self):
        while self.head is None and self._fill():
            pass
        return int(self.head.split(b" ")[1])

    def header(self, name):
        self.status()
        for line in self.head.split(b"\r\n")[1:]:
            k, _, v = line.decode().partition(":")
            if k.strip().lower() == name.lower():
                return v.strip()
        return None

    def events(self):
        """Complete events so far: dicts with id, event, data; comments."""
        out = []
        for block in self.text.split("\n\n")[:-1]:
            ev = {}
            for line in block.split("\n"):
                k, _, v = line.partition(":")
                v = v[1:] if v.startswith(" ") else v
                if k == "":
                    ev.setdefault("comment", v)
                elif k == "data":
                    ev["data"] = ev.get("data", "") + v
                else:
                    ev[k] = v
            out.append(ev)
        return out

    def wait_for(self, pred, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self.events()):
                return self.events()
            if self.closed or (not self._fill() and self.closed):
                break
        raise AssertionError("never got it; events: %r" % self.events()[-5:])

    def close(self):
        self.s.close()


def long_polls(d):
    """tallyd_long_polls: the long-polls parked in the daemon now."""
    for line in d.get("/metrics").body.decode().splitlines():
        if line.startswith("tallyd_long_polls "):
            return int(line.split()[1])
    raise AssertionError("no tallyd_long_polls in /metrics")


def wait_long_polls(d, n, timeout=20):
    """Until n long-polls are parked: a change made after this wakes them
    (made before, it would answer them at once, testing nothing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if long_polls(d) >= n:
            return
        time.sleep(0.01)
    raise AssertionError("never %d long-polls parked (%d)" %
                         (n, long_polls(d)))


def leaderboards(evs):
    return [e for e in evs if e.get("event") == "leaderboard"]


def version(ev):
    """The version of an event id "<version>-<digest>" (issue 21: ids carry
    the epoch's digest)."""
    n, _, digest = ev["id"].partition("-")
    assert len(digest) == 16, ev["id"]
    return int(n)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Live(CheckedDaemonTest):
    def start(self, conf=""):
        d = self.daemon(start=False, env={"TALLYD_INGEST_TOKEN": TOKEN})
        path = os.path.join(d.tmp, "tallyd.conf")
        with open(path, "w") as f:
            f.write(conf)
        d.args = ["-f", path]
        d.start()
        return d

    def post(self, d, rev, province="baghdad", port=None):
        r = d.request("POST", "/v1/provinces/%s/results" % province,
                      body={"revision": rev, "votes": {"sairoon": 1000 + rev,
                                                       "fatah": 900}},
                      headers=AUTH, port=port)
        self.assertEqual(r.status, 201, r.body)
        self.assertIsNone(r.header("Access-Control-Allow-Origin"))
        return r.json()["version"]

    def test_events_in_order(self):
        d = self.start()
        c = SSE(d.port)
        self.assertEqual(c.status(), 200)
        self.assertTrue(c.header("Content-Type").startswith("text/event-stream"))
        self.assertEqual(c.header("Cache-Control"), "no-store")
        self.assertEqual(c.header("X-Accel-Buffering"), "no")
        self.assertEqual(c.header("Access-Control-Allow-Origin"), "*")
        evs = c.wait_for(lambda e: len(e) >= 3)
        self.assertEqual(evs[0], {"retry": "3000"})
        # A stream starts from a snapshot, which says so.
        self.assertEqual((version(evs[1]), evs[1]["event"],
                          json.loads(evs[1]["data"])),
                         (0, "snapshot", {"version": 0}))
        self.assertEqual((evs[2]["id"], evs[2]["event"]),
                         (evs[1]["id"], "leaderboard"))
        versions = [self.post(d, r, p) for r, p in
                    ((1, "baghdad"), (2, "baghdad"), (1, "basra"))]
        self.assertEqual(versions, [1, 2, 3])
        evs = c.wait_for(lambda e: len(e) >= 9)[3:]
        self.assertEqual([(version(e), e["event"]) for e in evs],
                         [(1, "change"), (1, "leaderboard"),
                          (2, "change"), (2, "leaderboard"),
                          (3, "change"), (3, "leaderboard")])
        # The id is the version's ETag.
        self.assertEqual('"%s"' % evs[5]["id"],
                         d.get("/v1/leaderboard").header("ETag"))
        self.assertEqual(json.loads(evs[4]["data"]),
                         {"version": 3, "provinces": [
                             {"id": "basra", "revision": 1,
                              "status": "partial", "settled": False}]})
        # A final count settles the province: the change event says so.
        v = d.request("POST", "/v1/provinces/basra/results",
                      body={"revision": 2, "status": "final",
                            "votes": {"sairoon": 1001, "fatah": 900}},
                      headers=AUTH).json()["version"]
        evs = c.wait_for(lambda e: len(e) >= 11)
        self.assertEqual(json.loads(evs[9]["data"]), {
            "version": v, "provinces": [{"id": "basra", "revision": 2,
                                         "status": "final", "settled": True}]})
        # The leaderboard event is exactly GET /v1/leaderboard's bytes.
        body = d.get("/v1/leaderboard").body
        self.assertEqual(evs[10]["data"].encode() + b"\n", body)
        c.close()

    def test_resume(self):
        d = self.start()
        for r in (1, 2, 3):
            self.post(d, r)
        cur = d.get("/v1/leaderboard").header("ETag").strip('"')
        one = "1-" + cur.split("-")[1]
        # Only the exact current id resumes without a snapshot: an older
        # one (its events are not kept), a bare number, another digest.
        cases = [({"Last-Event-ID": cur}, "/v1/events", False),
                 ({}, "/v1/events?last_event_id=" + cur, False),
                 ({"Last-Event-ID": "3"}, "/v1/events", True),
                 ({"Last-Event-ID": one}, "/v1/events", True),
                 ({"Last-Event-ID": "3-0123456789abcdef"}, "/v1/events",
                  True),
                 ({"Last-Event-ID": "garbage"}, "/v1/events", True),
                 ({}, "/v1/events", True)]
        for headers, path, lb in cases:
            c = SSE(d.port, path, headers)
            evs = c.wait_for(lambda e: len(e) >= (3 if lb else 1))
            if not lb:
                c.s.settimeout(0.5)
                c._fill()
                evs = c.events()
            self.assertEqual(evs[0], {"retry": "3000"})
            if lb:
                self.assertEqual([(e["id"], e["event"]) for e in evs[1:3]],
                                 [(cur, "snapshot"), (cur, "leaderboard")],
                                 (headers, path))
            else:
                self.assertEqual(len(evs), 1, (headers, path, evs))
            c.close()
        # A resumed client then gets the next version.
        c = SSE(d.port, headers={"Last-Event-ID": cur})
        c.wait_for(lambda e: len(e) >= 1)
        self.post(d, 4)
        evs = c.wait_for(lambda e: len(leaderboards(e)) >= 1)
        self.assertEqual(version(leaderboards(evs)[0]), 4)
        self.assertEqual([e["event"] for e in evs[1:]],
                         ["change", "leaderboard"])
        c.close()
        # Another data dir: the same version number is another state, so
        # the old id is not taken for it.
        d.kill()
        d2 = self.start()
        for r in (1, 2, 3, 4):
            self.post(d2, r + 10)
        c = SSE(d2.port, headers={"Last-Event-ID": evs[-1]["id"]})
        evs2 = c.wait_for(lambda e: len(e) >= 3)
        self.assertEqual(evs2[1]["event"], "snapshot")
        self.assertEqual(version(evs2[2]), 4)
        self.assertNotEqual(evs2[2]["id"], evs[-1]["id"])
        c.close()

    def test_slow_subscriber_conflated(self):
        # ASan keeps freed memory in quarantine: it would look like growth.
        env = {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") +
               ":quarantine_size_mb=0"}
        d = self.daemon(start=False, env=dict(env, TALLYD_INGEST_TOKEN=TOKEN))
        path = os.path.join(d.tmp, "tallyd.conf")
        with open(path, "w") as f:
            f.write("sse_stall_timeout 60\nkeep_versions 8\n")
        d.args = ["-f", path]
        d.start()
        # Warm up (the version ring full, the allocator grown), then a
        # subscriber that stops reading while 200 versions are published.
        # Every version is rendered, as a subscriber makes it (versions
        # enter the ring as they are served).
        for r in range(1, 51):
            self.post(d, r)
            d.get("/v1/leaderboard")
        # The same 200 posts, without and then with a stalled subscriber:
        # the tally's own history grows alike; a backlog of 200 versions
        # of events would add about 1.3 MB.
        rss = [rss_kib(d.proc.pid)]
        for r in range(51, 251):
            self.post(d, r)
            d.get("/v1/leaderboard")
        rss.append(rss_kib(d.proc.pid))
        slow = SSE(d.port, rcvbuf=4096)
        self.assertEqual(slow.status(), 200)
        time.sleep(0.3)
        # 200 versions with the stalled subscriber (its buffers and the
        # allocator settle), then 200 more: those must grow no more than
        # the tally's history alone did, where a backlog would add ~3.4 MB.
        for r in range(251, 451):
            self.post(d, r)
        time.sleep(0.2)
        rss.append(rss_kib(d.proc.pid))
        for r in range(451, 651):
            self.post(d, r)
        time.sleep(0.2)
        rss.append(rss_kib(d.proc.pid))
        print("RSS KiB", rss)
        # ThreadSanitizer's allocator and shadow memory make these deltas
        # swing by a megabyte or two (measured on the commit before issue
        # 15 too: 1.9 to 4.1 MB against 1.2 MB); the release and ASan
        # builds hold the strict bound.
        slack = 2560 if under_tsan() else 512
        self.assertLess(rss[3] - rss[2], rss[1] - rss[0] + slack, rss)
        evs = slow.wait_for(lambda e: leaderboards(e) and
                            version(leaderboards(e)[-1]) == 650)
        lbs = leaderboards(evs)
        self.assertEqual(json.loads(lbs[-1]["data"])["version"], 650)
        ids = [version(e) for e in lbs]
        self.assertEqual(ids, sorted(ids))
        # Every skip of versions is announced by a snapshot event.
        last = None
        for e in evs:
            if e.get("event") == "snapshot":
                last = None
            elif e.get("event") == "change":
                if last is not None:
                    self.assertEqual(version(e), last + 1, e["id"])
                last = version(e)
        self.assertLess(len(lbs), 150, "not conflated: %d events" % len(lbs))
        slow.close()

    def check_in_order(self, evs, name):
        """Every version in order, or a snapshot event that says the stream
        skipped some (issue 21)."""
        last = None
        for e in evs:
            if e.get("event") == "snapshot":
                last = version(e)
            elif e.get("event") == "change":
                self.assertIsNotNone(last, name)
                self.assertEqual(version(e), last + 1,
                                 "%s: version %d after %d without a "
                                 "snapshot" % (name, version(e), last))
                last = version(e)
        return last

    def test_heartbeats_and_rounds_skip_no_version(self):
        """A heartbeat queued just before a fan-out of several versions
        left a caught-up stream with only the newest of them."""
        import threading
        d = self.start("sse_heartbeat 1\n")
        provinces = [p["id"] for p in d.get("/v1/provinces").json()
                     ["provinces"]][:8]
        streams = [SSE(d.port) for _ in range(4)]
        for c in streams:
            self.assertEqual(c.status(), 200)
        stop = time.monotonic() + 4.5
        done = []

        def reader(c):
            # Keeps up, so that conflation is rare and a skip shows.
            c.s.settimeout(0.2)
            while time.monotonic() < stop + 1 and not c.closed:
                c._fill()
        readers = [threading.Thread(target=reader, args=(c,))
                   for c in streams]
        for t in readers:
            t.start()

        def poster(pid):
            rev = 0
            while time.monotonic() < stop:
                rev += 1
                r = d.request("POST", "/v1/provinces/%s/results" % pid,
                              body={"revision": rev,
                                    "votes": {"sairoon": rev}},
                              headers=AUTH)
                self.assertEqual(r.status, 201, r.body)
            done.append(rev)
        ths = [threading.Thread(target=poster, args=(p,)) for p in provinces]
        for t in ths:
            t.start()
        # Streams opened while versions are being published: never a
        # version twice, never one skipped without a snapshot.
        late = []
        while time.monotonic() < stop - 0.5:
            time.sleep(0.3)
            c = SSE(d.port)
            self.assertEqual(c.status(), 200)
            late.append(c)
            readers.append(threading.Thread(target=reader, args=(c,)))
            readers[-1].start()
        streams += late
        for t in ths:
            t.join()
        for t in readers:
            t.join()
        last = d.get("/v1/leaderboard").json()["version"]
        self.assertEqual(last, sum(done))
        for i, c in enumerate(streams):
            c.s.settimeout(10)
            evs = c.wait_for(lambda e: any(x.get("event") in (
                "change", "snapshot") and version(x) == last for x in e))
            self.assertTrue(any("comment" in x for x in evs))
            self.check_in_order(evs, "stream %d" % i)
            c.close()

    def test_heartbeat_and_limit(self):
        d = self.start("sse_heartbeat 1\nsse_max_clients 2\n")
        a, b = SSE(d.port), SSE(d.port)
        self.assertEqual((a.status(), b.status()), (200, 200))
        r = d.get("/v1/events")
        self.assertEqual(r.status, 503)
        self.assertEqual(r.json()["error"]["code"], "too_many_subscribers")
        self.assertTrue(r.header("Retry-After"))
        evs = a.wait_for(lambda e: sum(1 for x in e if "comment" in x) >= 2,
                         timeout=5)
        self.assertTrue(any("comment" in x for x in evs))
        b.close()
        time.sleep(1.5)   # b's end is seen at its next heartbeat
        c = SSE(d.port)
        self.assertEqual(c.status(), 200)
        a.close()
        c.close()

    def test_long_poll(self):
        d = self.start()
        self.post(d, 1)
        r = d.get("/v1/leaderboard?wait=5")
        self.assertEqual(r.status, 200)          # no If-None-Match: at once
        etag = r.header("ETag")
        self.assertEqual(r.header("Content-Location"),
                         "/v1/versions/%s/leaderboard" % etag.strip('"'))
        t0 = time.monotonic()
        r = d.get("/v1/leaderboard?wait=1", headers={"If-None-Match": etag})
        self.assertEqual(r.status, 304)
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        # Answered the moment the view changes.
        import threading
        out = {}

        def poll(path, et, key):
            t = time.monotonic()
            out[key] = (d.get(path, headers={"If-None-Match": et}),
                        time.monotonic() - t)
        pe = d.get("/v1/provinces/basra").header("ETag")
        ths = [threading.Thread(target=poll, args=(
                   "/v1/leaderboard?wait=30", etag, "lb")),
               threading.Thread(target=poll, args=(
                   "/v1/provinces?wait=30", d.get("/v1/provinces").header(
                       "ETag"), "pv"))]
        for t in ths:
            t.start()
        wait_long_polls(d, 2)
        # basra's wait is short: parked just before the change.
        ths.append(threading.Thread(target=poll, args=(
            "/v1/provinces/basra?wait=2", pe, "basra")))
        ths[-1].start()
        wait_long_polls(d, 3)
        v = self.post(d, 2)
        for t in ths:
            t.join(60)
            self.assertFalse(t.is_alive(), "a long-poll never came back")
        r, took = out["lb"]
        self.assertEqual(r.status, 200)
        self.assertLess(took, 5)
        self.assertEqual(r.json()["version"], v)
        self.assertEqual(r.body, d.get("/v1/leaderboard").body)
        self.assertEqual(r.header("ETag"), d.get("/v1/leaderboard").header("ETag"))
        self.assertEqual(out["pv"][0].status, 200)
        # basra did not change: its own view keeps its tag, 304 after 2 s.
        self.assertEqual(out["basra"][0].status, 304)
        self.assertGreaterEqual(out["basra"][1], 1.9)
        etag = d.get("/v1/leaderboard").header("ETag")
        self.assertEqual(d.get("/v1/leaderboard?wait=61",
                               headers={"If-None-Match": etag}).status, 400)

    def test_long_poll_gzip(self):
        """A long-poll that takes gzip is answered with the version's gzip
        bytes, compressed once and shared by every such long-poll: the same
        bytes and tag as a gzip GET of that version."""
        import threading
        d = self.start()
        self.post(d, 1)
        gz = {"Accept-Encoding": "gzip"}
        etag = d.get("/v1/leaderboard", headers=gz).header("ETag")
        self.assertTrue(etag.endswith('-gz"'), etag)
        out = []

        def poll():
            out.append(d.get("/v1/leaderboard?wait=30", headers=dict(
                gz, **{"If-None-Match": etag})))
        ths = [threading.Thread(target=poll) for _ in range(3)]
        for t in ths:
            t.start()
        wait_long_polls(d, 3)
        v = self.post(d, 2)
        for t in ths:
            t.join(60)
            self.assertFalse(t.is_alive(), "a long-poll never came back")
        now = d.get("/v1/leaderboard", headers=gz)
        self.assertEqual(now.header("Content-Encoding"), "gzip")
        for r in out:
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("Content-Encoding"), "gzip")
            self.assertEqual(r.header("ETag"), now.header("ETag"))
            self.assertEqual(r.body, now.body)
            self.assertEqual(json.loads(gunzip(r.body))["version"], v)
        # Without gzip: the plain bytes and tag, as before.
        etag = d.get("/v1/leaderboard").header("ETag")
        out.clear()
        t = threading.Thread(target=lambda: out.append(d.get(
            "/v1/leaderboard?wait=30", headers={"If-None-Match": etag})))
        t.start()
        wait_long_polls(d, 1)
        self.post(d, 3)
        t.join(60)
        self.assertIsNone(out[0].header("Content-Encoding"))
        self.assertEqual(out[0].body, d.get("/v1/leaderboard").body)

    def test_long_poll_many_waiters_one_answer(self):
        """Issue 24: every long-poll of a version is answered from the
        view's own response, one per representation, queued to each
        connection: the same bytes and headers as a GET of that version,
        plain or gzip.  Waiters whose clients vanished mid-wait (reset or
        closed) disturb none of the others, and each connection takes its
        next long-poll."""
        import http.client
        import struct
        d = self.start()
        self.post(d, 1)
        gz = {"Accept-Encoding": "gzip"}

        def park(out, n, gzip):
            hs = dict(gz) if gzip else {}
            hs["If-None-Match"] = d.get("/v1/leaderboard",
                                        headers=hs).header("ETag")
            for _ in range(n):
                c = http.client.HTTPConnection("127.0.0.1", d.port,
                                               timeout=30)
                c.request("GET", "/v1/leaderboard?wait=30", headers=hs)
                out.append((c, gzip))

        def same(headers):
            return sorted((k, v) for k, v in headers if k != "Date")
        waiters, gone = [], []
        park(waiters, 12, False)
        park(waiters, 12, True)
        park(gone, 2, False)
        park(gone, 2, True)
        wait_long_polls(d, 28)
        for i, (c, _) in enumerate(gone):
            if i % 2 == 0:      # a reset rather than a FIN
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                  struct.pack("ii", 1, 0))
            c.close()
        for rev in (2, 3):
            v = self.post(d, rev)
            want = {g: d.get("/v1/leaderboard", headers=gz if g else {})
                    for g in (False, True)}
            self.assertEqual(want[True].header("Content-Encoding"), "gzip")
            for c, g in waiters:
                r = c.getresponse()
                body = r.read()
                self.assertEqual(r.status, 200)
                self.assertEqual(body, want[g].body)
                self.assertEqual(same(r.getheaders()), same(want[g].headers))
                self.assertEqual(json.loads(gunzip(body) if g else body)[
                    "version"], v)
            self.assertEqual(long_polls(d), 0)
            if rev == 2:        # again, on the same connections
                for c, g in waiters:
                    hs = dict(gz) if g else {}
                    hs["If-None-Match"] = want[g].header("ETag")
                    c.request("GET", "/v1/leaderboard?wait=30", headers=hs)
                wait_long_polls(d, len(waiters))
        for c, _ in waiters:
            c.close()

    @needs_failpoints
    def test_long_poll_timing_out_after_its_view_moved(self):
        """A long-poll whose time runs out after its view moved, before the
        wake (here held back 4 s by a failpoint), gets the new bytes: a
        304 then carried the new version's ETag for the bytes the client
        held, and it never fetched that version."""
        d = self.daemon(start=False, env={"TALLYD_INGEST_TOKEN": TOKEN,
                                          "TALLYD_FAILPOINTS":
                                          "wake_delay_ms=4000"})
        d.start()
        self.post(d, 1)
        etag = d.get("/v1/leaderboard").header("ETag")
        import threading
        out = []
        t = threading.Thread(target=lambda: out.append(d.get(
            "/v1/leaderboard?wait=2", headers={"If-None-Match": etag})))
        t.start()
        wait_long_polls(d, 1)
        v = self.post(d, 2)
        t.join(30)
        now = d.get("/v1/leaderboard")
        self.assertEqual(out[0].status, 200)
        self.assertEqual(out[0].header("ETag"), now.header("ETag"))
        self.assertEqual(out[0].json()["version"], v)

    def test_long_polls_across_a_definition_swap(self):
        """A definition swapped (SIGHUP, nothing counted yet) while
        long-polls wait answers each at once for the new election: the
        leaderboard's new bytes, a province found by its id in the new
        definition (a long-poll held its index in the old one), 404 for a
        province the new one lacks.  Before, they waited out their time,
        then got 304 with the new election's ETag, from the view at the
        old index: another province, or past the end of the cache."""
        import http.client
        import shutil
        import tempfile
        tmp = tempfile.mkdtemp(prefix="tallyd-swap-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "e.json")

        def election(name, ids):
            with open(path, "w") as f:
                json.dump({"id": "small", "name": name,
                           "allocation": {"method": "dhondt",
                                          "ties": "votes"},
                           "coalitions": [{"id": "red", "name": "Red"},
                                          {"id": "blue", "name": "Blue"}],
                           "provinces": [{"id": i, "name": i.upper(),
                                          "seats": 3} for i in ids]}, f)
        election("Before", ["p0", "p1", "p2", "p3", "p4"])
        d = self.daemon(["--election", path],
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        polls = {}
        for path_ in ("/v1/leaderboard", "/v1/provinces/p1",
                      "/v1/provinces/p2", "/v1/provinces/p4"):
            c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
            c.request("GET", path_ + "?wait=20", headers={
                "If-None-Match": d.get(path_).header("ETag")})
            polls[path_] = c
        wait_long_polls(d, 4)
        # p1 moves from index 1 to 2; p2 and p4 are gone (2 is in range).
        election("After", ["p9", "p8", "p1"])
        t0 = time.monotonic()
        d.send_signal(signal.SIGHUP)
        got = {}
        for path_, c in polls.items():
            r = c.getresponse()
            got[path_] = (r.status, r.getheader("ETag"), r.read())
            c.close()
        self.assertLess(time.monotonic() - t0, 10)
        for path_ in ("/v1/leaderboard", "/v1/provinces/p1"):
            now = d.get(path_)
            self.assertEqual(got[path_], (200, now.header("ETag"), now.body),
                             path_)
        self.assertIn(b"After", got["/v1/leaderboard"][2])
        self.assertEqual(json.loads(got["/v1/provinces/p1"][2])["id"], "p1")
        for path_ in ("/v1/provinces/p2", "/v1/provinces/p4"):
            self.assertEqual(got[path_][0], 404, path_)
            self.assertEqual(json.loads(got[path_][2])["error"]["code"],
                             "unknown_province")
        self.assertEqual(long_polls(d), 0)
        self.assertEqual(d.stop(signal.SIGTERM), 0, d.logtext())

    def test_stalled_subscriber_dropped_with_resume_id(self):
        """A subscriber that stops reading is not buffered without bound:
        once its socket has not drained for sse_stall_timeout it is
        dropped; the last event it got carries an id, and a reconnect with
        that id as Last-Event-ID resumes (a snapshot that says so, then
        every later version)."""
        d = self.start("sse_stall_timeout 2\n")
        self.post(d, 1)
        slow = SSE(d.port, rcvbuf=4096)
        self.assertEqual(slow.status(), 200)
        slow.wait_for(lambda e: leaderboards(e))
        # It stops reading; versions keep coming until its socket is full.
        r = 2
        deadline = time.monotonic() + 20
        gone = False
        while time.monotonic() < deadline and not gone:
            for _ in range(20):
                self.post(d, r)
                r += 1
            for line in d.get("/metrics").body.decode().splitlines():
                if line.startswith("tallyd_event_streams "):
                    gone = int(line.split()[1]) == 0
            time.sleep(0.2)
        self.assertTrue(gone, "the stalled subscriber is still connected")
        # What it had was delivered whole up to the close.
        deadline = time.monotonic() + 20
        while not slow.closed and time.monotonic() < deadline:
            slow._fill()
        self.assertTrue(slow.closed, "the stalled stream was not closed")
        lbs = leaderboards(slow.events())
        self.assertTrue(lbs)
        last_id = lbs[-1]["id"]
        self.assertLess(version(lbs[-1]), r - 1)
        # Resume: a snapshot event (versions were skipped), then new ones.
        again = SSE(d.port, headers={"Last-Event-ID": last_id})
        self.assertEqual(again.status(), 200)
        evs = again.wait_for(lambda e: leaderboards(e))
        self.assertEqual([e.get("event") for e in evs[:3]],
                         [None, "snapshot", "leaderboard"])
        self.assertEqual(version(leaderboards(evs)[-1]), r - 1)
        v = self.post(d, r)
        evs = again.wait_for(lambda e: version(leaderboards(e)[-1]) == v)
        self.check_in_order(evs, "resumed")
        again.close()
        slow.close()

    def test_version_urls(self):
        d = self.start("keep_versions 3\n")
        bodies = {}
        for r in range(1, 6):
            v = self.post(d, r)
            g = d.get("/v1/leaderboard")
            bodies[v] = (g.body, g.header("ETag"), d.get("/v1/provinces").body,
                         g.header("Content-Location"))
        for v in (3, 4, 5):
            tag = bodies[v][1].strip('"')
            self.assertEqual(bodies[v][3], "/v1/versions/%s/leaderboard" % tag)
            r = d.get(bodies[v][3])
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, bodies[v][0])
            self.assertEqual(r.header("ETag"), bodies[v][1])
            self.assertEqual(r.header("Cache-Control"),
                             "public, max-age=31536000, immutable")
            self.assertEqual(d.get("/v1/versions/%s/provinces" % tag).body,
                             bodies[v][2])
            # A bare number names no body for good: a redirect, not kept.
            r = d.get("/v1/versions/%d/leaderboard" % v)
            self.assertEqual(r.status, 302)
            self.assertEqual(r.header("Location"), bodies[v][3])
            self.assertEqual(r.header("Cache-Control"), "no-store")
            # Another digest (another epoch) is not this version.
            r = d.get("/v1/versions/%d-0123456789abcdef/leaderboard" % v)
            self.assertEqual(r.status, 404)
        for v in ("2", "6", "0", "x", "-1", "3-x", "3-"):
            r = d.get("/v1/versions/%s/leaderboard" % v)
            self.assertEqual(r.status, 404, v)
            err = r.json()["error"]
            self.assertEqual(err["code"], "unknown_version")
            self.assertIn("3 to 5", err["message"])

    def test_cors(self):
        d = self.start()
        r = d.get("/v1/leaderboard")
        self.assertEqual(r.header("Access-Control-Allow-Origin"), "*")
        self.assertEqual(r.header("Access-Control-Expose-Headers"),
                         "ETag, Content-Location, Tally-Log-Size")
        r = d.request("OPTIONS", "/v1/events", headers={
            "Origin": "https://news.example", "Access-Control-Request-Method":
            "GET", "Access-Control-Request-Headers": "last-event-id"})
        self.assertEqual(r.status, 204)
        self.assertEqual(r.header("Access-Control-Allow-Origin"), "*")
        self.assertIn("GET", r.header("Access-Control-Allow-Methods"))
        self.assertIn("Last-Event-ID", r.header("Access-Control-Allow-Headers"))
        # Configured origin; none at all when empty.
        d2 = self.start('cors_origin "https://news.example"\n')
        self.assertEqual(d2.get("/v1/provinces").header(
            "Access-Control-Allow-Origin"), "https://news.example")
        d3 = self.start('cors_origin ""\n')
        self.assertIsNone(d3.get("/v1/provinces").header(
            "Access-Control-Allow-Origin"))
        # Never on feeds.
        self.post(d, 1)
        r = d.request("OPTIONS", "/v1/provinces/baghdad/results")
        self.assertIsNone(r.header("Access-Control-Allow-Origin"))

    def test_event_stream_gzip(self):
        """An event stream that takes gzip: every event compressed once for
        all such subscribers; the body is one gzip member (its trailer, the
        CRC and length of what was sent, written when the stream ends), so
        the whole body decompresses and checks, and holds every version in
        order.  Without gzip the same stream is plain."""
        import zlib
        d = self.start()
        self.post(d, 1)
        socks = []
        for hdrs in ("Accept-Encoding: gzip\r\n", "Accept-Encoding: gzip\r\n",
                     ""):
            s = socket.create_connection(("127.0.0.1", d.port))
            s.sendall(("GET /v1/events HTTP/1.1\r\nHost: x\r\n%s\r\n" %
                       hdrs).encode())
            socks.append(s)
        time.sleep(0.3)
        for r in range(2, 6):
            self.post(d, r)
        time.sleep(0.3)
        socks[0].settimeout(5)
        part = b""
        while b"\r\n\r\n" not in part:
            part += socks[0].recv(65536)
        self.assertEqual(d.stop(signal.SIGTERM), 0, d.logtext())
        bodies = []
        for s in socks:
            s.settimeout(5)
            buf = part if s is socks[0] else b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                buf += b
            s.close()
            head, _, rest = buf.partition(b"\r\n\r\n")
            body = b""
            while True:
                line, _, rest = rest.partition(b"\r\n")
                size = int(line, 16)
                if size == 0:
                    break
                body += rest[:size]
                rest = rest[size + 2:]
            bodies.append((head.decode(), body))
        self.assertEqual(bodies[0][1], bodies[1][1])
        for head, body in bodies[:2]:
            self.assertIn("Content-Encoding: gzip", head)
            text = gunzip(body).decode()     # checks CRC and length
            # The first events decompress before the stream ends.
            live = zlib.decompressobj(16 + 15).decompress(body[:-10])
            self.assertTrue(live.startswith(b"retry: 3000\n\n"), live[:40])
            self.assertEqual(text, bodies[2][1].decode())
        self.assertNotIn("Content-Encoding", bodies[2][0])
        versions = [int(line.split()[1].split("-")[0])
                    for line in bodies[2][1].decode().splitlines()
                    if line.startswith("id: ")]
        self.assertEqual(sorted(set(versions)), [1, 2, 3, 4, 5])
        self.assertEqual(versions, sorted(versions))

    def test_head_of_event_stream_has_no_events(self):
        """HEAD /v1/events: the stream's headers, never its events (plain
        HTTP/1.1 streams are written by tallyd itself; HEAD is not), and
        not one byte after its head: the next response on the connection
        starts right there (libmicrohttpd 0.9.75 wrote a chunked stream's
        last chunk, "0\\r\\n\\r\\n", after a HEAD's head)."""
        d = self.start()
        self.post(d, 1)
        s = socket.create_connection(("127.0.0.1", d.port))
        s.settimeout(0.5)
        s.sendall(b"HEAD /v1/events HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = b""
        deadline = time.monotonic() + 1.5
        try:
            while time.monotonic() < deadline:
                b = s.recv(65536)
                if not b:
                    break
                buf += b
        except socket.timeout:
            pass
        s.close()
        self.assertTrue(buf.startswith(b"HTTP/1.1 200 "), buf[:80])
        head, _, rest = buf.partition(b"\r\n\r\n")
        self.assertIn(b"text/event-stream", head)
        self.assertNotIn(b"retry:", buf)
        self.assertNotIn(b"event:", buf)
        self.assertTrue(rest.startswith(b"HTTP/1.1 200 "), rest[:80])
        self.assertIn(b'"status":"ok"', rest)

    def test_stop_with_subscribers(self):
        d = self.start()
        self.post(d, 1)
        subs = [SSE(d.port) for _ in range(5)]
        for c in subs:
            c.wait_for(lambda e: len(e) >= 2)
        etag = d.get("/v1/leaderboard").header("ETag")
        poller = socket.create_connection(("127.0.0.1", d.port))
        poller.sendall(("GET /v1/leaderboard?wait=60 HTTP/1.1\r\nHost: x\r\n"
                        "If-None-Match: %s\r\n\r\n" % etag).encode())
        time.sleep(0.3)
        t0 = time.monotonic()
        self.assertEqual(d.stop(signal.SIGTERM), 0, d.logtext())
        self.assertLess(time.monotonic() - t0, 5)
        poller.settimeout(5)
        self.assertIn(b" 304 ", poller.recv(4096))
        for c in subs:
            c.wait_for(lambda e: c.closed, timeout=5) if not c.closed else None
            self.assertTrue(c.closed)
            c.close()
        poller.close()


if __name__ == "__main__":
    main()
