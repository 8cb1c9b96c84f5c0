#!/usr/bin/env python3
"""tallyd behind a real nginx started from config/nginx/tallyd.conf (ports
and paths replaced): pollers are absorbed by the cache, the event stream
delivers every version, long-polls and feeds pass through."""
import asyncio
import os
import re
import shutil
import subprocess
import threading
import time

from harness import (CheckedDaemonTest, SOURCE_ROOT, free_port, main)
from test_live import SSE, leaderboards, version, wait_long_polls

TOKEN = "nginx-test-ingest-token-0123456789"
AUTH = {"Authorization": "Bearer " + TOKEN}
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
POLLERS = int(os.environ.get("TALLYD_NGINX_POLLERS", "500"))
SECONDS = float(os.environ.get("TALLYD_NGINX_SECONDS", "6"))


class Worker(threading.Thread):
    """A thread whose exception (a failed assertion included) is raised
    again in the test by join_checked(), instead of being printed and
    lost."""

    def __init__(self, target):
        super().__init__(daemon=True)
        self.fn = target
        self.error = None

    def run(self):
        try:
            self.fn()
        except BaseException as e:      # noqa: B902 - re-raised in the test
            self.error = e

    def join_checked(self, timeout=60):
        self.join(timeout)
        if self.is_alive():
            raise AssertionError("%s still running after %s s" %
                                 (self.fn.__name__, timeout))
        if self.error is not None:
            raise self.error


def metrics(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


def upstream_gets(m, route):
    return sum(v for k, v in m.items() if k.startswith(
        'tallyd_requests_total{route="%s",' % route))


async def poller(port, paths, until, counts):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    try:
        while time.monotonic() < until:
            path = paths[i % len(paths)]
            i += 1
            writer.write(("GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path).encode())
            head = await reader.readuntil(b"\r\n\r\n")
            n = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            await reader.readexactly(n)
            counts[0] += 1
            if not head.startswith(b"HTTP/1.1 200"):
                counts[1] += 1
            await asyncio.sleep(0.5)
    finally:
        writer.close()


async def pollers(port, n, seconds, counts):
    until = time.monotonic() + seconds
    paths = ["/v1/leaderboard", "/v1/provinces"]
    tasks = []
    for k in range(n):
        tasks.append(asyncio.ensure_future(poller(port, paths[k % 2:] +
                                                  paths[:k % 2], until,
                                                  counts)))
        if k % 50 == 49:
            await asyncio.sleep(0.01)
    await asyncio.gather(*tasks)


class Nginx(CheckedDaemonTest):
    def setUp(self):
        if not os.path.exists(NGINX):
            self.skipTest("no nginx (scripts/setup installs nginx-light)")

    def start_nginx(self, d):
        port = free_port()
        prefix = os.path.join(d.tmp, "nginx")
        os.makedirs(os.path.join(prefix, "cache"))
        with open(os.path.join(SOURCE_ROOT, "config", "nginx",
                               "tallyd.conf")) as f:
            conf = f.read()
        for a, b in (("127.0.0.1:8080", "127.0.0.1:%d" % d.port),
                     ("127.0.0.1:8081", "127.0.0.1:%d" % d.ingest_port),
                     ("listen 80;", "listen 127.0.0.1:%d;" % port),
                     ("/run/nginx-tallyd.pid", prefix + "/nginx.pid"),
                     ("/var/log/nginx/tallyd-error.log", prefix + "/error.log"),
                     ("/var/cache/nginx/tallyd", prefix + "/cache"),
                     ("worker_processes auto;", "worker_processes 1;"),
                     ("worker_connections 16384;",
                      "worker_connections 2048;")):
            self.assertIn(a, conf)
            conf = conf.replace(a, b)
        path = os.path.join(prefix, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        # One process as this user (no privilege drop), in the foreground.
        p = subprocess.Popen([NGINX, "-p", prefix, "-c", path, "-e",
                              prefix + "/error.log", "-g",
                              "daemon off; master_process off;"],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.STDOUT)

        def stop():
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.addCleanup(stop)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if d.get("/healthz", port=port).status == 200:
                    return port
            except OSError:
                time.sleep(0.05)
        self.fail("nginx did not start:\n" + open(prefix + "/error.log").read())

    def test_cache_absorbs_pollers(self):
        d = self.daemon(start=False, ingest=True,
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        d.start()
        port = self.start_nginx(d)
        # Feeds through nginx reach the ingest listener; never CORS.
        r = d.request("POST", "/v1/provinces/baghdad/results", port=port,
                      headers=AUTH, body={"revision": 1,
                                          "votes": {"sairoon": 10}})
        self.assertEqual(r.status, 201, r.body)
        self.assertIsNone(r.header("Access-Control-Allow-Origin"))
        sse = SSE(port)
        self.assertEqual(sse.status(), 200)
        sse.wait_for(lambda e: len(leaderboards(e)) >= 1)
        m0 = metrics(d.get("/metrics").body.decode())
        v0 = int(m0["tallyd_version"])

        posted = []

        def feed():
            rev = 2
            until = time.monotonic() + SECONDS
            while time.monotonic() < until:
                r = d.request("POST", "/v1/provinces/baghdad/results",
                              port=port, headers=AUTH,
                              body={"revision": rev,
                                    "votes": {"sairoon": 10 + rev}})
                self.assertEqual(r.status, 201, r.body)
                posted.append(r.json()["version"])
                rev += 1
                time.sleep(0.2)
        t = Worker(feed)
        counts = [0, 0]
        t.start()
        asyncio.run(pollers(port, POLLERS, SECONDS, counts))
        t.join_checked()
        m1 = metrics(d.get("/metrics").body.decode())
        versions = int(m1["tallyd_version"]) - v0
        self.assertEqual(versions, len(posted))
        self.assertGreater(counts[0], POLLERS * 2)
        self.assertEqual(counts[1], 0)
        for route in ("/v1/leaderboard", "/v1/provinces"):
            up = upstream_gets(m1, route) - upstream_gets(m0, route)
            print("%s: %d polls served by nginx, %d reached tallyd over "
                  "%d versions" % (route, counts[0] // 2, up, versions))
            # A handful per view per version (lock + stale while updating).
            self.assertLessEqual(up, 3 * versions + 3, route)
        # Every version through nginx's event stream, in order.
        last = posted[-1]
        evs = sse.wait_for(lambda e: version(leaderboards(e)[-1]) == last)
        ids = [version(e) for e in leaderboards(evs)]
        self.assertEqual(ids, list(range(ids[0], ids[-1] + 1)))
        self.assertLessEqual(ids[0], posted[0])
        sse.close()

    def test_long_poll_through_nginx(self):
        d = self.daemon(start=False, ingest=True,
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        d.start()
        port = self.start_nginx(d)
        etag = d.get("/v1/leaderboard").header("ETag")
        t0 = time.monotonic()
        r = d.get("/v1/leaderboard?wait=1", port=port,
                  headers={"If-None-Match": etag})
        self.assertEqual(r.status, 304)
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        out = {}

        def poll():
            out["r"] = d.get("/v1/leaderboard?wait=30", port=port,
                             headers={"If-None-Match": etag})
        th = Worker(poll)
        th.start()
        wait_long_polls(d, 1)       # parked in tallyd behind nginx
        r = d.request("POST", "/v1/provinces/basra/results", port=port,
                      headers=AUTH, body={"revision": 1,
                                          "votes": {"sairoon": 10}})
        self.assertEqual(r.status, 201)
        th.join_checked(10)
        self.assertEqual(out["r"].status, 200)
        self.assertEqual(out["r"].json()["version"], 1)
        # The version URL is cached for good.
        loc = out["r"].header("Content-Location")
        r = d.get(loc, port=port)
        self.assertEqual(r.status, 200)
        r = d.get(loc, port=port)
        self.assertEqual(r.header("X-Cache-Status"), "HIT")


if __name__ == "__main__":
    main()
