#!/usr/bin/env python3
"""tallyd behind a real nginx started from config/nginx/tallyd.conf (ports
and paths replaced, a self-signed certificate made here): `nginx -t`
accepts it; readers get HTTPS only (plain HTTP is a redirect); feeds are
refused on this public side (403, never reaching tallyd: they go to the
ingest listener); pollers are absorbed by the cache, the event stream
delivers every version unbuffered, long-polls pass through."""
import asyncio
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import warnings

from harness import (CheckedDaemonTest, Response, SOURCE_ROOT, free_port,
                     main)
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


async def poller(port, paths, until, counts, ctx):
    reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                   ssl=ctx)
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


async def pollers(port, n, seconds, counts, ctx):
    until = time.monotonic() + seconds
    paths = ["/v1/leaderboard", "/v1/provinces"]
    tasks = []
    for k in range(n):
        tasks.append(asyncio.ensure_future(poller(port, paths[k % 2:] +
                                                  paths[:k % 2], until,
                                                  counts, ctx)))
        if k % 50 == 49:
            await asyncio.sleep(0.01)
    await asyncio.gather(*tasks)


class TlsSSE(SSE):
    """test_live's event-stream client, over TLS."""

    def __init__(self, port, ctx, path="/v1/events"):
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        self.s.settimeout(10)
        self.s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" %
                        path).encode())
        self.buf = b""
        self.head = None
        self.text = ""
        self.closed = False


class Nginx(CheckedDaemonTest):
    def setUp(self):
        if not os.path.exists(NGINX):
            self.skipTest("no nginx (scripts/setup installs nginx-light)")

    def https(self, method, path, headers=None, body=None, port=None):
        """A request to nginx's HTTPS port, trusting the test's
        certificate only (and checking its name)."""
        c = http.client.HTTPSConnection("127.0.0.1", port or self.port,
                                        context=self.ctx, timeout=30)
        try:
            if isinstance(body, dict):
                body = json.dumps(body).encode()
                headers = dict(headers or {},
                               **{"Content-Type": "application/json"})
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            c.close()

    def start_nginx(self, d):
        """nginx from config/nginx/tallyd.conf, in front of d; sets
        self.port (HTTPS), self.plain_port (HTTP) and self.ctx."""
        port, plain = free_port(), free_port()
        prefix = os.path.join(d.tmp, "nginx")
        os.makedirs(os.path.join(prefix, "cache"))
        crt, key = prefix + "/tallyd.pem", prefix + "/tallyd.key"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", crt, "-days", "2",
                        "-subj", "/CN=tallyd.test",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        with open(os.path.join(SOURCE_ROOT, "config", "nginx",
                               "tallyd.conf")) as f:
            conf = f.read()
        for a, b in (("127.0.0.1:8080", "127.0.0.1:%d" % d.port),
                     ("listen 80;", "listen 127.0.0.1:%d;" % plain),
                     ("listen 443 ssl http2;",
                      "listen 127.0.0.1:%d ssl http2;" % port),
                     ("/etc/ssl/certs/tallyd.pem", crt),
                     ("/etc/ssl/private/tallyd.key", key),
                     ("/run/nginx.pid", prefix + "/nginx.pid"),
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
        cmd = [NGINX, "-p", prefix, "-c", path, "-e", prefix + "/error.log",
               "-g", "daemon off; master_process off;"]
        # nginx -t: the file as nginx reads it, certificate included.
        t = subprocess.run(cmd + ["-t"], capture_output=True, text=True)
        self.assertEqual(t.returncode, 0, t.stdout + t.stderr)
        self.assertIn("test is successful", t.stderr)
        # One process as this user (no privilege drop), in the foreground.
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                             stderr=subprocess.STDOUT)

        def stop():
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.addCleanup(stop)
        self.port, self.plain_port = port, plain
        self.ctx = ssl.create_default_context(cafile=crt)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.https("GET", "/healthz").status == 200:
                    return port
            except OSError:
                time.sleep(0.05)
        self.fail("nginx did not start:\n" + open(prefix + "/error.log").read())

    def test_in_force_under_debians_unit(self):
        """Copied over /etc/nginx/nginx.conf (docs/DEPLOY.md), the file is
        run by Debian's nginx.service, which waits for its PIDFile: the
        pid path must be that one (it was /run/nginx-tallyd.pid, and
        systemctl start nginx hung until its timeout)."""
        with open(os.path.join(SOURCE_ROOT, "config", "nginx",
                               "tallyd.conf")) as f:
            conf = f.read()
        unit = None
        for u in ("/lib/systemd/system/nginx.service",
                  "/usr/lib/systemd/system/nginx.service"):
            if os.path.exists(u):
                unit = u
        self.assertTrue(unit, "no nginx.service: scripts/setup installs "
                        "nginx-light")
        with open(unit) as f:
            want = re.search(r"(?m)^PIDFile=(\S+)", f.read()).group(1)
        self.assertEqual(re.findall(r"(?m)^pid (\S+);", conf), [want])
        with open(os.path.join(SOURCE_ROOT, "docs", "DEPLOY.md")) as f:
            deploy = f.read()
        self.assertIn("/usr/share/tallyd/nginx/tallyd.conf "
                      "/etc/nginx/nginx.conf", deploy)

    def test_public_side_refuses_feeds_and_plain_http(self):
        d = self.daemon(start=False, ingest=True,
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        d.start()
        port = self.start_nginx(d)
        feed = {"revision": 1, "votes": {"sairoon": 10}}
        m0 = metrics(d.get("/metrics").body.decode())
        # A feed on the public side, even with a good token: 403 from
        # nginx, and tallyd never saw it.
        for path in ("/v1/provinces/baghdad/results", "/v1/results",
                     "/v1/provinces/baghdad/lot", "/v1/events", "/metrics"):
            for method in ("POST", "PUT", "DELETE", "PATCH"):
                r = self.https(method, path, headers=AUTH, body=feed)
                self.assertEqual(r.status, 403, (method, path, r.body))
        m1 = metrics(d.get("/metrics").body.decode())
        self.assertEqual(m1["tallyd_version"], m0["tallyd_version"])
        self.assertEqual(
            sum(v for k, v in m1.items()
                if k.startswith("tallyd_requests_total") and
                'method="POST"' in k),
            sum(v for k, v in m0.items()
                if k.startswith("tallyd_requests_total") and
                'method="POST"' in k))
        # Reads, HEAD and CORS preflights pass.
        self.assertEqual(self.https("GET", "/v1/leaderboard").status, 200)
        self.assertEqual(self.https("HEAD", "/v1/leaderboard").status, 200)
        r = self.https("OPTIONS", "/v1/leaderboard",
                       headers={"Origin": "https://news.example",
                                "Access-Control-Request-Method": "GET"})
        self.assertIn(r.status, (200, 204), r.body)
        # Feeds go to the ingest listener itself.
        r = d.request("POST", "/v1/provinces/baghdad/results",
                      port=d.ingest_port, headers=AUTH, body=feed)
        self.assertEqual(r.status, 201, r.body)
        # Plain HTTP only redirects to HTTPS, for reads and feeds alike.
        for method in ("GET", "POST"):
            r = d.request(method, "/v1/leaderboard?x=1",
                          port=self.plain_port, headers=AUTH,
                          body=feed if method == "POST" else None)
            self.assertEqual(r.status, 301, r.body)
            self.assertRegex(r.header("Location"),
                             r"^https://127\.0\.0\.1(:\d+)?/v1/leaderboard\?x=1$")
        # Only TLS 1.2 and 1.3 are offered.
        tls11 = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        tls11.check_hostname = False
        tls11.verify_mode = ssl.CERT_NONE
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                tls11.minimum_version = ssl.TLSVersion.TLSv1
                tls11.maximum_version = ssl.TLSVersion.TLSv1_1
            tls11.set_ciphers("ALL:@SECLEVEL=0")
        except (ValueError, ssl.SSLError):
            tls11 = None
        if tls11 is not None:
            with socket.create_connection(("127.0.0.1", port), 5) as raw:
                with self.assertRaises((ssl.SSLError, OSError)):
                    tls11.wrap_socket(raw).do_handshake()

    def test_event_stream_is_not_buffered(self):
        d = self.daemon(start=False, ingest=True,
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        d.start()
        port = self.start_nginx(d)
        sse = TlsSSE(port, self.ctx)
        self.assertEqual(sse.status(), 200)
        self.assertIsNone(sse.header("X-Cache-Status"))
        sse.wait_for(lambda e: len(leaderboards(e)) >= 1)
        # Each version reaches the reader at once, not when a buffer fills.
        for rev in (1, 2, 3):
            t0 = time.monotonic()
            r = d.request("POST", "/v1/provinces/baghdad/results",
                          port=d.ingest_port, headers=AUTH,
                          body={"revision": rev, "votes": {"sairoon": rev}})
            self.assertEqual(r.status, 201, r.body)
            v = r.json()["version"]
            sse.wait_for(lambda e: version(leaderboards(e)[-1]) == v,
                         timeout=5)
            self.assertLess(time.monotonic() - t0, 2.0)
        sse.close()

    def test_cache_absorbs_pollers(self):
        d = self.daemon(start=False, ingest=True,
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        d.start()
        port = self.start_nginx(d)
        # Feeds go to the ingest listener (nginx refuses them).
        r = d.request("POST", "/v1/provinces/baghdad/results",
                      port=d.ingest_port, headers=AUTH,
                      body={"revision": 1, "votes": {"sairoon": 10}})
        self.assertEqual(r.status, 201, r.body)
        sse = TlsSSE(port, self.ctx)
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
                              port=d.ingest_port, headers=AUTH,
                              body={"revision": rev,
                                    "votes": {"sairoon": 10 + rev}})
                self.assertEqual(r.status, 201, r.body)
                posted.append(r.json()["version"])
                rev += 1
                time.sleep(0.2)
        t = Worker(feed)
        counts = [0, 0]
        t.start()
        asyncio.run(pollers(port, POLLERS, SECONDS, counts, self.ctx))
        t.join_checked()
        m1 = metrics(d.get("/metrics").body.decode())
        versions = int(m1["tallyd_version"]) - v0
        self.assertEqual(versions, len(posted))
        # Every poller more than once (each poll over TLS; a loaded
        # machine makes fewer: 876 of each view with a load of 13 on 2
        # cores).
        self.assertGreater(counts[0], POLLERS)
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
        r = self.https("GET", "/v1/leaderboard?wait=1",
                       headers={"If-None-Match": etag})
        self.assertEqual(r.status, 304)
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        out = {}

        def poll():
            out["r"] = self.https("GET", "/v1/leaderboard?wait=30",
                                  headers={"If-None-Match": etag})
        th = Worker(poll)
        th.start()
        wait_long_polls(d, 1)       # parked in tallyd behind nginx
        r = d.request("POST", "/v1/provinces/basra/results",
                      port=d.ingest_port, headers=AUTH,
                      body={"revision": 1, "votes": {"sairoon": 10}})
        self.assertEqual(r.status, 201)
        th.join_checked(10)
        self.assertEqual(out["r"].status, 200)
        self.assertEqual(out["r"].json()["version"], 1)
        # The version URL is cached for good.
        loc = out["r"].header("Content-Location")
        r = self.https("GET", loc)
        self.assertEqual(r.status, 200)
        r = self.https("GET", loc)
        self.assertEqual(r.header("X-Cache-Status"), "HIT")


if __name__ == "__main__":
    main()
