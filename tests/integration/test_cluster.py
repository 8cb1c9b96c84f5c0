"""Cluster mode (docs/CLUSTER.md): three nats-server processes (JetStream,
routes on loopback) and three tallyd nodes, all on free loopback ports.

  - the night: 4 posters send to random nodes with retries while a random
    NATS server or tallyd node is killed (SIGKILL) and restarted, 10 times;
    then every acknowledged revision is on every node with its exact votes,
    every node has the same version and the same /v1/leaderboard bytes;
  - two nodes given conflicting revision 1 of a province at once: one 201,
    one 409; a retry of an acknowledged post on another node: 200
    duplicate; a batch: 422; a node started afterwards catches up from the
    stream to the same bytes;
  - a node cut off from the quorum refuses posts (503) and says it is
    stale, in /healthz and in the Tallyd-Node header, and keeps serving.
"""
import http.client
import json
import os
import random
import shutil
import tempfile
import threading
import time
import unittest

from harness import TALLYD, DaemonTest, main, seed
import crashloop
import natscluster

TOKEN = crashloop.TOKEN
AUTH = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"}


def request(base, method, path, body=None, timeout=10):
    host, port = base.split("//")[1].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, path, body=data, headers=AUTH if data else {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def post(base, pid, body):
    return request(base, "POST", "/v1/provinces/%s/results" % pid, body)


@unittest.skipUnless(natscluster.have_nats(), "nats-server is not installed")
class ClusterTest(DaemonTest):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tallyd-cluster-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.nodes = []
        self.servers = natscluster.nats_cluster(self.tmp, 3)
        # The nodes (harness.Supervised) are stopped and checked by the
        # harness, before this (cleanups run last-first): exit 0, or a kill
        # -9 the test sent; no sanitizer report in the whole log.
        self.addCleanup(self.stop_servers)
        self.base = crashloop.base_entries()
        self.rnd = random.Random(seed(self.id().rsplit(".", 1)[-1]))

    def stop_servers(self):
        for s in self.servers:
            s.stop()

    def node(self, start=True):
        n = natscluster.Node(TALLYD, "tallyd%d" % (len(self.nodes) + 1),
                             self.tmp, [s.url for s in self.servers],
                             crashloop.election_path(),
                             env={"TALLYD_INGEST_TOKEN": TOKEN})
        self.nodes.append(n)
        if start:
            self.wait(n)
        return n

    def wait(self, n, start=True):
        try:
            if start:
                n.start(wait=False)
            n.wait_ready()
        except RuntimeError as e:
            if "without libnats" in str(e):
                self.skipTest("tallyd was built without libnats")
            raise

    def start_nodes(self, k=3):
        ns = [self.node(start=False) for _ in range(k)]
        for n in ns:
            n.start(wait=False)
        for n in ns:
            self.wait(n, start=False)
        return ns

    def body(self, pid, rev, seed=None):
        r = random.Random(seed) if seed is not None else self.rnd
        e = self.base[pid]
        return {"revision": rev, "blank": r.randint(0, 3000),
                "invalid": r.randint(0, 3000), "status": "partial",
                "votes": {k: max(0, v + r.randint(-500, 500))
                          for k, v in e["votes"].items()}}

    def converge(self, nodes, timeout=30):
        """Wait until every node has applied the whole stream."""
        deadline = time.time() + timeout
        while True:
            hs = []
            for n in nodes:
                try:
                    hs.append(n.health())
                except OSError:
                    hs.append(None)
            if all(h is not None for h in hs):
                vs = {h["version"] for h in hs}
                last = max(h["cluster"]["stream_last"] for h in hs)
                if len(vs) == 1 and vs.pop() >= last and \
                        not any(h["cluster"]["stale"] for h in hs):
                    return hs[0]["version"]
            if time.time() > deadline:
                raise AssertionError("nodes do not converge: %r" % hs)
            time.sleep(0.1)

    def same_bytes(self, nodes, path="/v1/leaderboard"):
        got = [request(n.base, "GET", path) for n in nodes]
        for st, h, b in got:
            self.assertEqual(st, 200)
        self.assertEqual(len({b for _, _, b in got}), 1, path)
        self.assertEqual(len({h["ETag"] for _, h, _ in got}), 1, path)
        return got[0]

    def test_conflict_duplicate_batch_late_node(self):
        a, b, c = self.start_nodes(3)
        pids = sorted(self.base)
        # Conflicting revision 1 of one province on two nodes at once.
        for pid in pids[:3]:
            go = threading.Barrier(2)
            out = []

            def send(node, seed):
                go.wait()
                out.append(post(node.base, pid, self.body(pid, 1, seed))[0])
            ts = [threading.Thread(target=send, args=(a, 1)),
                  threading.Thread(target=send, args=(b, 2))]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            self.assertEqual(sorted(out), [201, 409], pid)
        # A retry of an acknowledged post, on another node: duplicate.
        body = self.body(pids[3], 1)
        st, h, r = post(a.base, pids[3], body)
        self.assertEqual(st, 201, r)
        self.assertIn("tallyd1", h["Tallyd-Node"])
        st, h, r = post(c.base, pids[3], body)
        self.assertEqual(st, 200, r)
        self.assertEqual(json.loads(r)["status"], "duplicate")
        self.assertIn("tallyd3", h["Tallyd-Node"])
        # The node that lost a race knows the winner now.
        st, _, r = post(b.base, pids[0], self.body(pids[0], 2))
        self.assertEqual(st, 201, r)
        # Batches are refused in cluster mode.
        st, _, r = request(a.base, "POST", "/v1/results", {"results": [
            dict(self.body(pids[5], 1), province=pids[5]),
            dict(self.body(pids[6], 1), province=pids[6])]})
        self.assertEqual(st, 422, r)
        self.assertEqual(json.loads(r)["error"]["code"], "batch_in_cluster")
        for i, pid in enumerate(pids[4:12]):
            self.assertEqual(post([a, b, c][i % 3].base, pid,
                                  self.body(pid, 1))[0], 201)
        v = self.converge([a, b, c])
        self.assertGreaterEqual(v, 13)
        self.same_bytes([a, b, c])
        self.same_bytes([a, b, c], "/v1/provinces/%s" % pids[0])
        # A node started after the night catches up to the same bytes.
        d = self.node()
        self.converge([a, b, c, d])
        self.same_bytes([a, b, c, d])
        self.same_bytes([a, d], "/v1/provinces/%s/history" % pids[0])

    def test_cut_off_from_quorum(self):
        a, b, c = self.start_nodes(3)
        pid = sorted(self.base)[0]
        self.assertEqual(post(a.base, pid, self.body(pid, 1))[0], 201)
        self.converge([a, b, c])
        before = request(a.base, "GET", "/v1/leaderboard")[2]
        # Two of three servers gone: no quorum anywhere.
        self.servers[1].kill()
        self.servers[2].kill()
        t0 = time.time()
        body2 = self.body(pid, 2)
        st, h, r = post(a.base, pid, body2)
        self.assertEqual(st, 503, r)
        self.assertEqual(json.loads(r)["error"]["code"], "cluster_unavailable")
        self.assertIn("Retry-After", h)
        self.assertLess(time.time() - t0, 8)
        deadline = time.time() + 10
        while True:
            hz = a.health()
            if hz["cluster"]["stale"]:
                break
            self.assertLess(time.time(), deadline, hz)
            time.sleep(0.2)
        self.assertEqual(hz["status"], "stale")
        st, h, body = request(a.base, "GET", "/v1/leaderboard")
        self.assertEqual(st, 200)
        self.assertEqual(body, before)
        self.assertIn("stale", h["Tallyd-Node"])
        # The quorum back: posts go on.  The refused record may still be
        # in the stream (its leader held it and committed it once the
        # quorum was back): the retry of the same body is safe either way.
        self.servers[1].start()
        self.servers[2].start()
        deadline = time.time() + 30
        while True:
            st, _, r = post(b.base, pid, body2)
            if st in (200, 201):
                break
            self.assertEqual(st, 503, r)
            self.assertLess(time.time(), deadline)
            time.sleep(0.2)
        self.converge([a, b, c])
        self.same_bytes([a, b, c])

    def test_night_with_kills(self):
        nodes = self.start_nodes(3)
        pids = sorted(self.base)
        self.rnd.shuffle(pids)
        shares = [pids[i::4] for i in range(4)]
        acked = {}
        errors = []
        stop = threading.Event()
        lock = threading.Lock()

        def poster(share, seed):
            r = random.Random(seed)
            rev = {pid: 0 for pid in share}
            while not stop.is_set():
                pid = r.choice(share)
                rev[pid] += 1
                b = self.body(pid, rev[pid], r.random())
                deadline = time.time() + 30
                while True:
                    n = r.choice(nodes)
                    try:
                        st, _, resp = post(n.base, pid, b)
                    except OSError:
                        st, resp = None, b""
                    if st in (200, 201):
                        with lock:
                            acked[(pid, rev[pid])] = b
                        break
                    if st not in (None, 503) or time.time() > deadline:
                        errors.append("%s rev %d: %s %r" % (
                            pid, rev[pid], st, resp[:200]))
                        return
                    time.sleep(r.uniform(0.02, 0.1))

        ts = [threading.Thread(target=poster,
                               args=(shares[i], self.rnd.random()),
                               daemon=True) for i in range(4)]
        for t in ts:
            t.start()
        kills = 0
        try:
            while kills < 10:
                time.sleep(self.rnd.uniform(0.3, 0.8))
                victim = self.rnd.choice(self.servers + nodes)
                # kill() raises or records a problem if the victim died by
                # itself; start() then refuses to revive it: a crash fails.
                for n in nodes:
                    self.assertEqual(n.unplanned(), [])
                victim.kill()
                time.sleep(self.rnd.uniform(0.05, 0.3))
                victim.start()
                kills += 1
            time.sleep(0.5)
        finally:
            stop.set()
            for t in ts:
                t.join(40)
        self.assertFalse(errors, errors[:5])
        self.assertGreater(len(acked), 20)
        v = self.converge(nodes, timeout=40)
        self.same_bytes(nodes)
        for n in nodes:
            for pid in pids:
                st, _, r = request(n.base, "GET",
                                   "/v1/provinces/%s/history" % pid)
                self.assertEqual(st, 200)
                hist = {x["revision"]: x for x in json.loads(r)["revisions"]}
                for (apid, rev), b in acked.items():
                    if apid != pid:
                        continue
                    self.assertIn(rev, hist, "%s: %s rev %d lost" % (
                        n.name, pid, rev))
                    self.assertEqual(hist[rev]["votes"], b["votes"])
        print("night: %d kills, %d revisions acknowledged, version %d" % (
            kills, len(acked), v))


if __name__ == "__main__":
    main()
