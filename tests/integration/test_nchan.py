#!/usr/bin/env python3
"""tallyd in publisher mode (publish_url) behind the push front of
config/nchan/tallyd.conf: nginx with Debian's nchan module, run from that
file with its ports and paths replaced.  Subscribers connect to nginx
(EventSource and long-poll); each gets every version's leaderboard, the
very bytes GET /v1/leaderboard gave at that version; a Last-Event-ID
resumes from nchan's buffer; everything else is proxied to tallyd.  The
front killed while feeds are posted: every POST is still answered at once,
the outage is logged once and counted, and once the front is back its
subscribers get the latest version without another POST.

Needs nginx and libnginx-mod-nchan (scripts/setup): without them the
tests skip, which fails the file under CI=true."""
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

from harness import (CheckedDaemonTest, SOURCE_ROOT, free_port, main,
                     run_tallyd, write_conf)
from test_live import SSE

TOKEN = "nchan-test-ingest-token-0123456789"
AUTH = {"Authorization": "Bearer " + TOKEN}
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
MODULE = "/usr/lib/nginx/modules/ngx_nchan_module.so"
LIVE = "/live/leaderboard"


def render(conf, public, publisher, upstream, prefix):
    """config/nchan/tallyd.conf with test ports and paths (asserting each
    literal is there, so that the file cannot drift from the test)."""
    for a, b in (("listen 80;", "listen 127.0.0.1:%d;" % public),
                 ("127.0.0.1:8081", "127.0.0.1:%d" % publisher),
                 ("server 127.0.0.1:8080;", "server 127.0.0.1:%d;" %
                  upstream),
                 ("/run/nginx.pid", prefix + "/nginx.pid"),
                 ("/var/log/nginx/tallyd-nchan-error.log",
                  prefix + "/error.log"),
                 ("worker_processes auto;", "worker_processes 2;"),
                 ("worker_connections 65536;", "worker_connections 4096;"),
                 ("worker_rlimit_nofile 200000;",
                  "worker_rlimit_nofile 8192;")):
        assert a in conf, a
        conf = conf.replace(a, b)
    return conf


class Front:
    """nginx + nchan from config/nchan/tallyd.conf in a temp dir, as this
    user, in the foreground (a master and its workers: nchan needs the
    master), in a process group of its own so that kill() is a crash of
    the whole front."""

    def __init__(self, test, tmp, upstream):
        self.test = test
        self.prefix = os.path.join(tmp, "nchan")
        os.makedirs(self.prefix, exist_ok=True)
        self.port, self.pub_port = free_port(), free_port()
        with open(os.path.join(SOURCE_ROOT, "config", "nchan",
                               "tallyd.conf")) as f:
            conf = render(f.read(), self.port, self.pub_port, upstream,
                          self.prefix)
        self.path = os.path.join(self.prefix, "nginx.conf")
        with open(self.path, "w") as f:
            f.write(conf)
        self.cmd = [NGINX, "-p", self.prefix, "-c", self.path, "-e",
                    self.prefix + "/error.log"]
        self.proc = None
        test.addCleanup(self.stop)

    @property
    def publish_url(self):
        return "http://127.0.0.1:%d/pub/leaderboard" % self.pub_port

    def check(self):
        t = subprocess.run(self.cmd + ["-t"], capture_output=True,
                           text=True)
        self.test.assertEqual(t.returncode, 0, t.stdout + t.stderr)
        self.test.assertIn("test is successful", t.stderr)

    def start(self):
        self.proc = subprocess.Popen(self.cmd + ["-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.pub_port,
                                               timeout=5)
                c.request("GET", "/pub/leaderboard")
                c.getresponse().read()
                c.close()
                return
            except OSError:
                time.sleep(0.05)
        self.test.fail("nginx did not start:\n" + self.errors())

    def errors(self):
        try:
            with open(self.prefix + "/error.log") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def kill(self):
        """A crash: the master and its workers, SIGKILL."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        # The workers are gone when their listening socket is.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                time.sleep(0.05)
            except OSError:
                return
        self.test.fail("nginx's workers outlived their master")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class FrontSSE(SSE):
    """test_live's event-stream client, for a body that may come chunked
    (tallyd) or not (nchan closes nothing: the stream is the body)."""

    def _dechunk(self):
        if b"chunked" in self.head.lower():
            return SSE._dechunk(self)
        self.text += self.buf.decode()
        self.buf = b""


def leaderboard_events(events):
    return [e for e in events if e.get("event") == "leaderboard"]


def version_of(data):
    return int(re.search(r'"version":(\d+)', data).group(1))


def long_poll(port, etag=None, timeout=30):
    """One long-poll through the front: (status, ETag, body)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", LIVE, headers={"If-None-Match": etag} if etag
                  else {})
        r = c.getresponse()
        return r.status, r.getheader("ETag"), r.read()
    finally:
        c.close()


class LongPoller(threading.Thread):
    """Walks the channel with If-None-Match, keeping every body."""

    def __init__(self, port, want):
        super().__init__(daemon=True)
        self.port, self.want = port, want
        self.bodies = []
        self.error = None

    def run(self):
        etag = None
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                status, tag, body = long_poll(self.port, etag)
                if status != 200:
                    continue
                etag = tag
                self.bodies.append(body)
                if version_of(body.decode()) >= self.want:
                    return
        except BaseException as e:     # noqa: B902 - re-raised in the test
            self.error = e


class Nchan(CheckedDaemonTest):
    def setUp(self):
        if not os.path.exists(NGINX):
            self.skipTest("no nginx (scripts/setup installs it)")
        if not os.path.exists(MODULE):
            self.skipTest("no nchan module (scripts/setup installs "
                          "libnginx-mod-nchan)")

    def start(self):
        """tallyd publishing to a front that is not up yet (it retries),
        then the front."""
        d = self.daemon(start=False, env={"TALLYD_INGEST_TOKEN": TOKEN})
        front = Front(self, d.tmp, d.port)
        front.check()
        d.args += write_conf(d, publish_url=front.publish_url)
        d.start()
        front.start()
        # Until the front took the current version (versions posted while
        # it was not up are coalesced into the latest: a test of its own).
        deadline = time.monotonic() + 10
        while self.metrics(d).get("tallyd_publish_published_total", 0) < 1:
            self.assertLess(time.monotonic(), deadline, d.logtext())
            time.sleep(0.05)
        return d, front

    def post(self, d, port, province, revision, votes):
        t0 = time.monotonic()
        r = d.request("POST", "/v1/provinces/%s/results" % province,
                      port=port, headers=AUTH,
                      body={"revision": revision, "votes": votes},
                      timeout=10)
        self.assertEqual(r.status, 201, r.body)
        return r.json()["version"], time.monotonic() - t0

    def metrics(self, d):
        out = {}
        for line in d.get("/metrics").body.decode().splitlines():
            if line.startswith("tallyd_publish_"):
                k, _, v = line.partition(" ")
                out[k] = float(v)
        return out

    def test_every_version_to_every_subscriber(self):
        d, front = self.start()
        # The current version is published at start: a subscriber that
        # comes first gets version 0 at once.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status, _, body = long_poll(front.port, timeout=5)
            if status == 200:
                break
            time.sleep(0.1)
        self.assertEqual(status, 200)
        self.assertEqual(body, d.get("/v1/leaderboard").body)
        n = 30
        subs = [FrontSSE(front.port, LIVE,
                         headers={"Accept": "text/event-stream"})
                for _ in range(3)]
        for s in subs:
            self.assertEqual(s.status(), 200)
            self.assertTrue(s.header("Content-Type").startswith(
                "text/event-stream"))
            s.wait_for(lambda evs: len(leaderboard_events(evs)) >= 1)
        own = FrontSSE(d.port, "/v1/events")
        own.wait_for(lambda evs: len(leaderboard_events(evs)) >= 1)
        pollers = [LongPoller(front.port, n) for _ in range(2)]
        for p in pollers:
            p.start()
        want = {}
        provinces = ["baghdad", "basra", "nineveh", "erbil", "najaf"]
        for i in range(n):
            # Feeds come through the front too (proxied to tallyd).
            v, _ = self.post(d, front.port, provinces[i % 5], i // 5 + 1,
                             {"sairoon": 100 + i, "fatah": 90 + 2 * i})
            self.assertEqual(v, i + 1)
            want[v] = d.get("/v1/leaderboard").body
        own_data = {}
        for e in leaderboard_events(own.wait_for(
                lambda evs: any(version_of(e["data"]) == n
                                for e in leaderboard_events(evs)))):
            own_data[version_of(e["data"])] = e["data"]
        self.assertIn(n, own_data)
        for s in subs:
            evs = leaderboard_events(s.wait_for(
                lambda evs: any(version_of(e["data"]) == n
                                for e in leaderboard_events(evs)), 20))
            got = [version_of(e["data"]) for e in evs]
            self.assertEqual(got, list(range(got[0], n + 1)))
            self.assertLessEqual(got[0], 1)
            for e in evs:
                v = version_of(e["data"])
                if v == 0:
                    continue
                # The SSE data (lines joined by "\n", RFC 8895's parse,
                # the last line an empty one: the body's final newline)
                # is the body of GET /v1/leaderboard at that version...
                self.assertEqual((e["data"] + "\n").encode()
                                 if not e["data"].endswith("\n")
                                 else e["data"].encode(), want[v])
                # ... and tallyd's own stream's data for that version
                # (when it sent that one: it conflates a slow reader).
                if v in own_data:
                    self.assertEqual(e["data"].rstrip("\n"), own_data[v])
                self.assertRegex(e["id"], r"^\d+:\d+$")
            s.close()
        own.close()
        for p in pollers:
            p.join(60)
            self.assertFalse(p.is_alive())
            if p.error:
                raise p.error
            vs = [version_of(b.decode()) for b in p.bodies]
            self.assertEqual(vs, list(range(vs[0], n + 1)))
            for b in p.bodies:
                if version_of(b.decode()) > 0:
                    self.assertEqual(b, want[version_of(b.decode())])
        # A subscriber that resumes with the id of version 10's event gets
        # 11 and on from nchan's buffer, not the whole state again.
        first = FrontSSE(front.port, LIVE,
                         headers={"Accept": "text/event-stream"})
        evs = leaderboard_events(first.wait_for(
            lambda evs: len(leaderboard_events(evs)) >= 1))
        self.assertEqual(version_of(evs[0]["data"]), n)
        first.close()
        m = self.metrics(d)
        self.assertEqual(m["tallyd_publish_version"], n)
        self.assertEqual(m["tallyd_publish_up"], 1)
        self.assertGreaterEqual(m["tallyd_publish_published_total"], n + 1)
        self.assertEqual(m["tallyd_publish_coalesced_total"], 0)

    def test_resume_with_last_event_id(self):
        d, front = self.start()
        s = FrontSSE(front.port, LIVE, headers={"Accept":
                                                "text/event-stream"})
        for i in range(12):
            self.post(d, d.port, "baghdad", i + 1, {"sairoon": 10 * i})
        evs = leaderboard_events(s.wait_for(
            lambda evs: any(version_of(e["data"]) == 12
                            for e in leaderboard_events(evs))))
        s.close()
        at = [e for e in evs if version_of(e["data"]) == 5][0]
        r = FrontSSE(front.port, LIVE, headers={
            "Accept": "text/event-stream", "Last-Event-ID": at["id"]})
        got = [version_of(e["data"]) for e in leaderboard_events(r.wait_for(
            lambda evs: any(version_of(e["data"]) == 12
                            for e in leaderboard_events(evs))))]
        self.assertEqual(got, list(range(6, 13)))
        r.close()

    def test_front_down_then_back(self):
        d, front = self.start()
        self.post(d, d.port, "baghdad", 1, {"sairoon": 1})
        s = FrontSSE(front.port, LIVE, headers={"Accept":
                                                "text/event-stream"})
        s.wait_for(lambda evs: any(version_of(e["data"]) == 1
                                   for e in leaderboard_events(evs)))
        s.close()
        # (tallyd started before the front: that outage was said too.)
        said = d.logtext().count("is unreachable")
        front.kill()
        # Ingest goes on at its own pace while the front is gone: every
        # POST answered at once, none waits for the publisher.
        slowest = 0
        for i in range(40):
            v, took = self.post(d, d.port, "basra", i + 1,
                                {"fatah": 1000 + i})
            slowest = max(slowest, took)
        self.assertEqual(v, 41)
        self.assertLess(slowest, 2.0)
        deadline = time.monotonic() + 10
        while self.metrics(d)["tallyd_publish_up"] != 0:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.1)
        m = self.metrics(d)
        self.assertGreater(m["tallyd_publish_failures_total"], 0)
        deadline = time.monotonic() + 10
        while d.logtext().count("is unreachable") == said:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        time.sleep(1.5)         # several retries: still one line
        self.assertEqual(d.logtext().count("is unreachable"), said + 1)
        final = d.get("/v1/leaderboard").body
        # Back, empty (nchan kept everything in memory): without another
        # POST, its subscribers get the final state.
        front.start()
        deadline = time.monotonic() + 15
        body = None
        while time.monotonic() < deadline:
            status, _, body = long_poll(front.port, timeout=5)
            if status == 200 and body == final:
                break
            time.sleep(0.1)
        self.assertEqual(body, final)
        s = FrontSSE(front.port, LIVE, headers={"Accept":
                                                "text/event-stream"})
        evs = leaderboard_events(s.wait_for(
            lambda evs: len(leaderboard_events(evs)) >= 1))
        self.assertEqual(evs[-1]["data"].encode() + b"\n", final)
        self.wait_log(d, "back in service")
        m = self.metrics(d)
        self.assertEqual(m["tallyd_publish_up"], 1)
        self.assertEqual(m["tallyd_publish_version"], 41)
        # The versions posted while it was down went as the latest only.
        self.assertGreater(m["tallyd_publish_coalesced_total"], 0)
        # And on from there.
        self.post(d, d.port, "nineveh", 1, {"nasr": 5})
        s.wait_for(lambda evs: any(version_of(e["data"]) == 42
                                   for e in leaderboard_events(evs)))
        s.close()

    def test_front_restarted_while_idle(self):
        """nchan restarted between two versions (nothing failed on the
        publisher's side): the idle probe finds the channel gone and
        publishes the last version again."""
        d, front = self.start()
        self.post(d, d.port, "baghdad", 1, {"sairoon": 1})
        final = d.get("/v1/leaderboard").body
        deadline = time.monotonic() + 10
        while self.metrics(d)["tallyd_publish_version"] != 1:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        front.stop()
        front.start()
        deadline = time.monotonic() + 15
        body = None
        while time.monotonic() < deadline:
            status, _, body = long_poll(front.port, timeout=5)
            if status == 200:
                break
            time.sleep(0.1)
        self.assertEqual(body, final)
        self.assertGreaterEqual(
            self.metrics(d)["tallyd_publish_republished_total"], 1)

    def test_bad_publish_url(self):
        for bad in ("ftp://127.0.0.1/pub", "http://127.0.0.1:8081",
                    "http://127.0.0.1:0/pub", "http:///pub",
                    "http://127.0.0.1:8081/pub leaderboard"):
            d = self.daemon(start=False)
            r = run_tallyd(["-n"] + write_conf(d, publish_url=bad))
            self.assertNotEqual(r.returncode, 0, bad)
            self.assertIn("publish_url", r.stderr + r.stdout)
            self.assertIn("http://HOST[:PORT]/PATH", r.stderr + r.stdout)


if __name__ == "__main__":
    main()
