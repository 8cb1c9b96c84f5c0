#!/usr/bin/env python3
"""Where the HTTP front meets the rest (issue 21): a rate-limited feed is
refused from its headers, body memory is reserved exactly, every refusal
carries the JSON error body, subscribers and idle connections cannot crowd
out plain requests or feeds, the watchdog follows the journal writer, and a
body cut over TLS is never applied."""
import json
import os
import socket
import ssl
import subprocess
import shutil
import time

from harness import (CheckedDaemonTest, main, needs_failpoints, raise_fd_limit,
                     recv_all, rss_kib, status_of, write_conf)

TOKEN = "ingest-token-for-the-edge-tests-0123456"
AUTH = b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
ENV = {"TALLYD_INGEST_TOKEN": TOKEN}




class EdgeTest(CheckedDaemonTest):

    def conf(self, d, **keys):
        return write_conf(d, **keys)

    def start(self, ingest=False, env=None, **keys):
        d = self.daemon(start=False, env=dict(ENV, **(env or {})),
                        ingest=ingest)
        d.args += self.conf(d, **keys)
        d.start()
        return d

    def post(self, d, revision, port=None, province="baghdad"):
        return d.request("POST", "/v1/provinces/%s/results" % province,
                         body={"revision": revision, "votes": {}},
                         port=port,
                         headers={"Authorization": "Bearer " + TOKEN})

    # --- 1. 429 at the headers ---------------------------------------------

    def test_rate_limit_decided_at_the_headers(self):
        """A token over its ingest_rate is answered 429 from the headers of
        a feed announcing 1 MiB, before any of the body is sent (before: no
        answer until the whole body was read and buffered)."""
        n = 60
        d = self.start(ingest_rate=1, ingest_burst=1,
                       per_ip_connection_limit=0)
        self.assertIn(self.post(d, 1).status, (201, 422))
        head = (b"POST /v1/provinces/baghdad/results HTTP/1.1\r\nHost: x\r\n"
                + AUTH + b"Content-Type: application/json\r\n"
                b"Content-Length: 1048576\r\n\r\n")
        before = rss_kib(d.proc.pid)
        socks = []
        try:
            for _ in range(n):
                s = socket.create_connection(("127.0.0.1", d.port))
                s.sendall(head)
                socks.append(s)
            answers = [recv_all(s, 3) for s in socks]
        finally:
            for s in socks:
                s.close()
        statuses = [status_of(a) for a in answers]
        self.assertEqual(statuses, [429] * n, answers[0][:300])
        self.assertIn(b'"rate_limited"', answers[0])
        self.assertIn(b"Retry-After:", answers[0])
        self.assertLess(rss_kib(d.proc.pid) - before, 8 * 1024)
        # Refusing at the headers takes nothing from the bucket.
        time.sleep(1.1)
        self.assertIn(self.post(d, 2).status, (201, 422))
        self.assertEqual(self.post(d, 3).status, 429)

    # --- 2. body memory reserved exactly -------------------------------------

    def test_body_memory_reserved_exactly(self):
        """Two bodies of 1,500 bytes fit a body_memory of 3,000 exactly
        (before: each reserved 2,048, its buffer's size, and the second
        was refused 503 busy half way)."""
        d = self.start(body_memory=3000, body_limit=2048)
        held = []
        try:
            for _ in range(2):
                s = socket.create_connection(("127.0.0.1", d.port))
                s.sendall(b"POST /v1/results HTTP/1.1\r\nHost: x\r\n" + AUTH +
                          b"Content-Type: application/json\r\n"
                          b"Content-Length: 1500\r\n\r\n{")
                held.append(s)
            time.sleep(0.3)
            for s in held:
                s.sendall(b" " * 1000)
            time.sleep(0.3)
            for s in held:
                s.sendall(b" " * 499)
            for s in held:
                data = recv_all(s, 3)
                self.assertEqual(status_of(data), 400, data[:300])
        finally:
            for s in held:
                s.close()
        # A third one while two are held: over the budget, 503 busy.
        held = []
        try:
            for _ in range(3):
                s = socket.create_connection(("127.0.0.1", d.port))
                s.sendall(b"POST /v1/results HTTP/1.1\r\nHost: x\r\n" + AUTH +
                          b"Content-Type: application/json\r\n"
                          b"Content-Length: 1500\r\n\r\n{")
                held.append(s)
                time.sleep(0.1)
            data = recv_all(held[2], 3)
            self.assertEqual(status_of(data), 503, data[:300])
            self.assertIn(b'"busy"', data)
        finally:
            for s in held:
                s.close()

    # --- 3. libmicrohttpd's own refusals -------------------------------------

    def test_every_refusal_is_one_json_answer(self):
        """What libmicrohttpd refuses itself, before tallyd sees the request:
        one status line and the JSON error body every other error has
        (before: an HTML page, and for Content-Length and Host the status
        line and headers twice)."""
        d = self.start()
        post = (b"POST /v1/results HTTP/1.1\r\nHost: x\r\n" + AUTH +
                b"Content-Type: application/json\r\n")
        chunked = post + b"Transfer-Encoding: chunked\r\n\r\n"
        get = b"GET /v1/leaderboard HTTP/1.1\r\nHost: x\r\n"
        cases = [
            (post + b"Content-Length: abc\r\n\r\n", 400, "bad_framing"),
            (post + b"Content-Length: -1\r\n\r\n", 400, "bad_framing"),
            (post + b"Content-Length: +2\r\n\r\n{}", 400, "bad_framing"),
            (post + b"Content-Length: 1 2\r\n\r\n{}", 400, "bad_framing"),
            (post + b"Content-Length: 99999999999999999999999\r\n\r\n", 413,
             "body_too_large"),
            (b"GET /v1/leaderboard HTTP/1.1\r\n\r\n", 400, "missing_host"),
            (b"GET /v1/leaderboard HTTP/1.1\r\n Host: x\r\n\r\n", 400,
             "missing_host"),
            (get + b"X: " + b"a" * 20000 + b"\r\n\r\n", 431,
             "headers_too_large"),
            (get + b"".join(b"X%d: y\r\n" % i for i in range(3000)) +
             b"\r\n", 431, "headers_too_large"),
            (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414,
             "uri_too_long"),
            (chunked + b"zz\r\nabc\r\n0\r\n\r\n", 400, "bad_framing"),
            (chunked + b"2\r\n{}XX0\r\n\r\n", 400, "bad_framing"),
            (chunked + b"FFFFFFFFFFFFFFFFFF\r\nabc\r\n", 413,
             "body_too_large"),
            (b"GET /v1/leaderboard HTTP/2.0\r\nHost: x\r\n\r\n", 505,
             "http_version"),
            (b"GET /v1/leaderboard HTTX/1.1\r\nHost: x\r\n\r\n", 400,
             "bad_request"),
            (b"GET /v1/leaderboard\r\n\r\n", 400, "bad_request"),
            (get + b"NoColon\r\n\r\n", 400, "bad_request"),
            (get + b"Host: y\r\n\r\n", 400, "bad_request"),
            (b"GET\t/v1/leaderboard HTTP/1.1\r\nHost: x\r\n\r\n", 400,
             "bad_request"),
        ]
        for req, status, code in cases:
            s = socket.create_connection(("127.0.0.1", d.port))
            try:
                s.sendall(req)
            except OSError:
                pass
            data = recv_all(s, 5)
            s.close()
            what = (req[:60], data[:400])
            self.assertEqual(status_of(data), status, what)
            head, _, body = data.partition(b"\r\n\r\n")
            self.assertNotIn(b"\r\nHTTP/1.", head, what)
            self.assertFalse(body.startswith(b"HTTP/"), what)
            self.assertIn(b"\r\nContent-Type: application/json", head, what)
            length = [int(l.split(b":")[1]) for l in head.split(b"\r\n")
                      if l.lower().startswith(b"content-length:")]
            self.assertEqual(length, [len(body)], what)
            err = json.loads(body)["error"]
            self.assertEqual(err["code"], code, what)
            self.assertTrue(err["message"], what)
        # The daemon is fine after all that.
        self.assertEqual(d.get("/v1/leaderboard").status, 200)

    # --- 4. floods from many addresses ---------------------------------------

    def connect_from(self, i, port):
        """A connection from 127.0.<i // 250>.<2 + i % 250>."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.%d.%d" % (i // 250, 2 + i % 250), 0))
        s.connect(("127.0.0.1", port))
        return s

    def test_subscribers_never_crowd_out_a_get(self):
        """40 addresses x 10 event streams against connection_limit 400:
        plain GETs are still answered at once (before: the streams took
        every connection, and a GET waited in the backlog).  Subscribers
        beyond their budget (3/4 of the connections) get 503
        too_many_subscribers with Retry-After."""
        raise_fd_limit(2000)
        d = self.start(connection_limit=400, per_ip_connection_limit=16,
                       sse_max_clients=10000)
        socks, statuses = [], {}
        try:
            for i in range(400):
                s = self.connect_from(i // 10, d.port)
                s.sendall(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
                socks.append(s)
            for s in socks:
                s.settimeout(5)
                try:
                    head = s.recv(4096)
                except (socket.timeout, OSError):
                    head = b""
                st = status_of(head)
                statuses[st] = statuses.get(st, 0) + 1
                if st == 503:
                    self.assertIn(b"too_many_subscribers", head)
                    self.assertIn(b"Retry-After:", head)
            self.assertEqual(statuses.get(200), 300, statuses)
            for _ in range(4):
                t0 = time.monotonic()
                r = d.request("GET", "/v1/leaderboard", timeout=5)
                self.assertEqual(r.status, 200)
                self.assertLess(time.monotonic() - t0, 2.0)
            # A long-poll counts against the same budget.
            etag = d.get("/v1/leaderboard").header("ETag")
            r = d.request("GET", "/v1/leaderboard?wait=5", timeout=5,
                          headers={"If-None-Match": etag})
            self.assertEqual(r.status, 503, r.body)
            self.assertIn(b"too_many_subscribers", r.body)
        finally:
            for s in socks:
                s.close()

    def test_idle_flood_from_many_addresses_does_not_starve_ingest(self):
        """40 addresses x 15 idle connections on the ingest port of
        connection_limit 400: every feed is answered within a second
        (before: the listener stopped accepting at its limit and a feed
        waited until idle connections timed out)."""
        raise_fd_limit(2000)
        d = self.start(ingest=True, connection_limit=400,
                       per_ip_connection_limit=16, connection_timeout=60,
                       request_timeout=60)
        socks = []
        try:
            for i in range(600):
                socks.append(self.connect_from(i // 15, d.ingest_port))
            time.sleep(0.5)
            worst = 0.0
            for rev in range(1, 11):
                t0 = time.monotonic()
                r = self.post(d, rev, port=d.ingest_port)
                worst = max(worst, time.monotonic() - t0)
                self.assertIn(r.status, (201, 422), r.body)
            self.assertLess(worst, 1.0)
            self.wait_log(d, "closed the longest idle one")
        finally:
            for s in socks:
                s.close()

    # --- 5. the watchdog follows the journal writer --------------------------

    @needs_failpoints
    def test_watchdog_holds_back_while_a_sync_hangs(self):
        """With fdatasync taking 4 s (failpoint) and journal_stall_timeout 1,
        WATCHDOG=1 stops for the rest of the sync, the log says why, and the
        pings come back after it (before: a ping every 0.1 s throughout)."""
        import threading
        d = self.daemon(start=False, env=dict(
            ENV, WATCHDOG_USEC="200000",
            TALLYD_FAILPOINTS="sync_delay_ms=4000"))
        d.args += self.conf(d, journal_stall_timeout=1)
        path = os.path.join(d.tmp, "notify.sock")
        n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        n.bind(path)
        self.addCleanup(n.close)
        d.env["NOTIFY_SOCKET"] = path
        d.start()
        pings = []
        done = []

        def post():
            done.append(self.post(d, 1).status)
        t = threading.Thread(target=post)
        t0 = time.monotonic()
        t.start()
        n.settimeout(0.5)
        while time.monotonic() - t0 < 7:
            try:
                msg = n.recv(4096).decode()
            except socket.timeout:
                continue
            if "WATCHDOG=1" in msg.split("\n"):
                pings.append(time.monotonic() - t0)
        t.join(10)
        self.assertEqual(done, [201])
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        self.assertTrue(gaps and max(gaps) >= 2.0, pings)
        # Back after the sync, at the usual pace.
        self.assertTrue(pings and pings[-1] > 5.5, pings)
        self.wait_log(d, "watchdog: not pinging systemd: the journal writer")
        self.wait_log(d, "watchdog: pinging systemd again")

    # --- 7. a body cut over TLS ----------------------------------------------

    def test_body_cut_over_tls_is_never_applied(self):
        """A TLS client that sends half a feed's body and closes (with a TLS
        close_notify, or dropping the TCP connection) has nothing applied,
        gets no answer, and its body memory comes back; a whole body over
        the same listener is applied."""
        if shutil.which("openssl") is None:
            self.skipTest("needs openssl")
        d = self.daemon(start=False, env=ENV, ingest=True)
        key = os.path.join(d.tmp, "t.key")
        crt = os.path.join(d.tmp, "t.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", crt, "-days", "2",
                        "-subj", "/CN=t", "-addext",
                        "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        d.args += self.conf(d, tls_cert=crt, tls_key=key, body_memory=4096,
                            connection_timeout=2)
        d.start()
        ctx = ssl.create_default_context(cafile=crt)
        body = json.dumps({"revision": 1, "votes": {}}).encode()
        body += b" " * (3000 - len(body))

        def send(n, notify):
            raw = socket.create_connection(("127.0.0.1", d.ingest_port))
            s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
            s.sendall(b"POST /v1/provinces/baghdad/results HTTP/1.1\r\n"
                      b"Host: x\r\n" + AUTH +
                      b"Content-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body) + body[:n])
            if n == len(body):
                data = recv_all(s, 5)
                s.close()
                return data
            time.sleep(0.2)
            if notify:
                s = s.unwrap()      # close_notify, then the TCP close
            s.close()
            return None

        for notify in (True, False, True, False):
            self.assertIsNone(send(len(body) // 2, notify))
        # Each held 3,000 of the 4,096 bytes of body_memory: all returned
        # (a gone client is noticed at the latest after connection_timeout).
        deadline = time.monotonic() + 6
        while True:
            data = send(len(body), True)
            if status_of(data) != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(status_of(data), 201, data[:300])
        self.assertEqual(d.get("/v1/leaderboard").json()["version"], 1)
        self.assertEqual(
            d.get("/v1/provinces/baghdad").json()["revision"], 1)


if __name__ == "__main__":
    main()
