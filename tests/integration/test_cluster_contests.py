#!/usr/bin/env python3
"""Several contests in cluster mode (docs/CLUSTER.md, "Several contests"):
three nats-server processes (JetStream, routes on loopback) and three
tallyd nodes serving Spain April 2019 (the first contest) and Czechia 2017
(a contest line), each contest on a JetStream stream of its own.

  - posts to both contests, on every node at once, converge: every node
    has each contest's own version (its posts, plus its stream's epoch
    record: not the sum of both) and byte-identical views with one ETag;
    both contests end on their official seats;
  - a node killed with -9 while both are posted (and one stopped cleanly,
    which writes the first contest's snapshot) comes back byte-identical;
  - a batch across contests is refused (422 batch_in_cluster) and changes
    nothing on any node; each contest's own posts go on; a reload that
    would add or remove a contest is refused and changes nothing; SIGUSR1
    says the streams hold the contests;
  - two contest ids that would share a stream or subjects refuse the start.
"""
import base64
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from harness import ELECTIONS, TALLYD, DaemonTest, main
import natscluster

TALLYCTL = os.environ.get("TALLYCTL", "tallyctl")
TOKEN = "ingest-token-for-the-tests-0123456789"
AUTH = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"}
ES, CZ = "es-2019-04", "cz-2017"


def definition(ds):
    return os.path.join(ELECTIONS, ds, "election.json")


def load(ds, name):
    with open(os.path.join(ELECTIONS, ds, name)) as f:
        return json.load(f)


def entries(ds):
    out = []
    for e in load(ds, "results.json")["results"]:
        e = dict(e)
        out.append((e.pop("province"), e))
    return out


def request(base, method, path, body=None, timeout=15):
    host, port = base.split("//")[1].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, path, body=data, headers=AUTH if data else {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def post(base, contest, pid, body):
    """One province of one contest, retried while the cluster answers 503
    (a retry of the same body is answered 201 or 200 duplicate)."""
    deadline = time.time() + 60
    while True:
        try:
            st, h, b = request(base, "POST",
                               "/v1/contests/%s/provinces/%s/results" % (
                                   contest, pid), body)
        except OSError:
            st, b = None, b""
        if st in (200, 201) or time.time() > deadline:
            return st, b
        if st not in (None, 503):
            return st, b
        time.sleep(0.2)


@unittest.skipUnless(natscluster.have_nats(), "nats-server is not installed")
class ClusterContestsTest(DaemonTest):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tallyd-clc-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.nodes = []
        self.servers = natscluster.nats_cluster(self.tmp, 3)
        self.addCleanup(self.stop_servers)

    def stop_servers(self):
        for s in self.servers:
            s.stop()

    def node(self, contests=(CZ,)):
        n = natscluster.Node(TALLYD, "tallyd%d" % (len(self.nodes) + 1),
                             self.tmp, [s.url for s in self.servers],
                             definition(ES), env={"TALLYD_INGEST_TOKEN": TOKEN})
        n.conf_extra = "".join("contest %s\n" % definition(c)
                               for c in contests)
        self.nodes.append(n)
        return n

    def wait(self, n):
        try:
            n.wait_ready()
        except RuntimeError as e:
            if "without libnats" in str(e):
                self.skipTest("tallyd was built without libnats")
            raise

    def start_nodes(self, k=3):
        ns = [self.node() for _ in range(k)]
        for n in ns:
            n.start(wait=False)
        for n in ns:
            self.wait(n)
        return ns

    def versions(self, n):
        st, _, b = request(n.base, "GET", "/v1/contests")
        self.assertEqual(st, 200, b)
        return {c["id"]: c["version"] for c in json.loads(b)["contests"]}

    def converge(self, nodes, want, timeout=60):
        """Wait until every node has each contest at version want[c]."""
        deadline = time.time() + timeout
        while True:
            got = []
            for n in nodes:
                try:
                    got.append(self.versions(n))
                except OSError:
                    got.append(None)
            if all(g == want for g in got):
                return
            if time.time() > deadline:
                raise AssertionError("nodes do not converge on %r: %r" % (
                    want, got))
            time.sleep(0.1)

    def same_bytes(self, nodes, path):
        got = [request(n.base, "GET", path) for n in nodes]
        for st, h, b in got:
            self.assertEqual(st, 200, (path, b))
        self.assertEqual(len({b for _, _, b in got}), 1, path)
        self.assertEqual(len({h["ETag"] for _, h, _ in got}), 1, path)
        self.assertEqual(len({h.get("Last-Modified") for _, h, _ in got}), 1,
                         path)
        return got[0]

    def same_views(self, nodes, pids_of):
        views = {}
        for c in (ES, CZ):
            paths = ["/v1/contests/%s/leaderboard" % c,
                     "/v1/contests/%s/provinces" % c,
                     "/v1/contests/%s/leaderboard.csv" % c]
            paths += ["/v1/contests/%s/provinces/%s" % (c, p)
                      for p in pids_of[c]]
            for p in paths:
                views[p] = self.same_bytes(nodes, p)
        # The plain routes are the first contest's.
        self.assertEqual(self.same_bytes(nodes, "/v1/leaderboard")[2],
                         views["/v1/contests/%s/leaderboard" % ES][2])
        return views

    def post_all(self, nodes, work):
        """work: [(contest, pid, body)], spread over the nodes, 4 posters
        at once; every answer must be 201."""
        errors = []
        lock = threading.Lock()
        items = list(enumerate(work))

        def poster(k):
            for i, (c, pid, body) in items[k::4]:
                n = nodes[i % len(nodes)]
                st, b = post(n.base, c, pid, body)
                if st != 201:
                    with lock:
                        errors.append((c, pid, n.name, st, b[:300]))
        ts = [threading.Thread(target=poster, args=(k,)) for k in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])

    def assert_official(self, n):
        for c in (ES, CZ):
            exp = load(c, "expected.json")
            st, _, b = request(n.base, "GET", "/v1/contests/%s/leaderboard" % c)
            lb = json.loads(b)
            self.assertEqual(lb["election"]["id"], c)
            self.assertEqual(lb["seats"]["allocated"], exp["seats_total"], c)
            self.assertEqual({x["id"]: x["seats"] for x in lb["coalitions"]
                              if x["seats"]}, exp["national"], c)
            for pid, want in exp["provinces"].items():
                st, _, b = request(n.base, "GET", "/v1/contests/%s/provinces/"
                                   "%s" % (c, pid))
                p = json.loads(b)
                self.assertEqual({x["id"]: x["seats"] for x in p["lists"]
                                  if x["seats"]}, want, (c, pid))

    def test_posts_to_both_contests_converge_with_their_own_versions(self):
        nodes = self.start_nodes()
        es, cz = entries(ES), entries(CZ)
        # Each contest's stream starts with its epoch record (version 1).
        self.converge(nodes, {ES: 1, CZ: 1})
        work = []
        for i in range(max(len(es), len(cz))):
            if i < len(cz):
                work.append((CZ, cz[i][0], cz[i][1]))
            if i < len(es):
                work.append((ES, es[i][0], es[i][1]))
        self.post_all(nodes, work)
        # A contest's version is its own stream's position: its own posts
        # and its epoch, whatever the other contest took.
        self.converge(nodes, {ES: 1 + len(es), CZ: 1 + len(cz)})
        self.same_views(nodes, {ES: [p for p, _ in es[:5]],
                                CZ: [p for p, _ in cz]})
        for n in nodes:
            self.assert_official(n)
        # /healthz speaks of the first contest's stream, and lists each
        # contest with its own stream, caught up.
        h = nodes[0].health()
        self.assertEqual(h["cluster"]["stream"], "TALLY")
        for n in nodes:
            rows = {r["id"]: r for r in n.health()["contests"]}
            self.assertEqual(rows[ES]["cluster"]["stream"], "TALLY")
            self.assertEqual(rows[CZ]["cluster"]["stream"], "TALLY_cz-2017")
            for c, v in ((ES, 1 + len(es)), (CZ, 1 + len(cz))):
                self.assertEqual(rows[c]["version"], v)
                self.assertEqual(rows[c]["cluster"]["stream_last"], v)
                self.assertEqual(rows[c]["cluster"]["lag"], 0)
                self.assertTrue(rows[c]["cluster"]["connected"])
                self.assertFalse(rows[c]["cluster"]["stale"])

    def test_each_contests_log_is_the_same_on_every_node(self):
        """With a shared log_key, every contest's transparency log
        (docs/VERIFY.md "Several contests") is computed alike on every node:
        the same checkpoint bytes, size = the contest's version (its stream's
        position), and `tallyctl verify log` replays each contest's entries
        to the leaderboards every node serves."""
        keyfile = os.path.join(self.tmp, "log.key")
        with open(keyfile, "w") as f:
            f.write(base64.b64encode(os.urandom(32)).decode() + "\n")
        os.chmod(keyfile, 0o600)
        nodes = [self.node() for _ in range(3)]
        for n in nodes:
            n.conf_extra += "log_key %s\n" % keyfile
            n.start(wait=False)
        for n in nodes:
            self.wait(n)
        es, cz = entries(ES), entries(CZ)
        work = [(CZ, p, b) for p, b in cz] + [(ES, p, b) for p, b in es[:10]]
        self.post_all(nodes, work)
        want = {ES: 11, CZ: 1 + len(cz)}
        self.converge(nodes, want)
        for c, base in ((ES, ""), (CZ, "/v1/contests/" + CZ)):
            got = [request(n.base, "GET", base + "/log/checkpoint")
                   for n in nodes]
            self.assertEqual([st for st, _, _ in got], [200] * 3, c)
            self.assertEqual(len({b for _, _, b in got}), 1, (c, got))
            self.assertEqual(int(got[0][2].split(b"\n")[1]), want[c], c)
            st, _, key = request(nodes[0].base, "GET", base + "/log/key")
            self.assertEqual(st, 200, key)
            for n in nodes:
                r = subprocess.run(
                    [TALLYCTL] + (["--contest", c] if base else []) +
                    ["verify", "log", n.base, "--key", key.decode().strip(),
                     "--election", definition(c)],
                    capture_output=True, text=True, timeout=120)
                self.assertEqual(r.returncode, 0, (c, n.name, r.stdout,
                                                   r.stderr))

    def test_a_further_contests_cut_off_stream_shows_in_healthz(self):
        """Two of the three NATS servers gone: every contest's stream is cut
        off.  /healthz says so for each contest, names the further one in
        its reasons and is "stale", and the views keep being served."""
        nodes = self.start_nodes(1)
        self.converge(nodes, {ES: 1, CZ: 1})
        self.servers[1].kill()
        self.servers[2].kill()
        deadline = time.time() + 20
        while True:
            h = nodes[0].health()
            rows = {r["id"]: r for r in h["contests"]}
            if rows[CZ]["cluster"]["stale"] and rows[ES]["cluster"]["stale"]:
                break
            self.assertLess(time.time(), deadline, h)
            time.sleep(0.2)
        self.assertEqual(h["status"], "stale", h)
        self.assertTrue(any(("contest %s" % CZ) in r and "TALLY_cz-2017" in r
                            for r in h.get("reasons", [])), h)
        st, _, _ = request(nodes[0].base, "GET",
                           "/v1/contests/%s/leaderboard" % CZ)
        self.assertEqual(st, 200)

    def test_a_node_killed_with_9_comes_back_byte_identical(self):
        nodes = self.start_nodes()
        es, cz = entries(ES), entries(CZ)
        half_es, half_cz = len(es) // 2, len(cz) // 2
        self.post_all(nodes, [(ES, p, b) for p, b in es[:half_es]] +
                      [(CZ, p, b) for p, b in cz[:half_cz]])
        want = {ES: 1 + half_es, CZ: 1 + half_cz}
        self.converge(nodes, want)
        self.same_views(nodes, {ES: [es[0][0]], CZ: [cz[0][0]]})
        # kill -9 one node; stop another cleanly (it writes the first
        # contest's snapshot, the further contest replays its stream).
        nodes[2].kill()
        self.assertEqual(nodes[1].stop(), 0)
        # Posted while they are down, on the node that stays.
        self.post_all([nodes[0]], [(ES, p, b) for p, b in es[half_es:]] +
                      [(CZ, p, b) for p, b in cz[half_cz:]])
        for n in nodes[1:]:
            n.start(wait=False)
        for n in nodes[1:]:
            self.wait(n)
        self.converge(nodes, {ES: 1 + len(es), CZ: 1 + len(cz)})
        after = self.same_views(nodes, {ES: [es[0][0], es[-1][0]],
                                        CZ: [cz[0][0], cz[-1][0]]})
        for n in nodes:
            self.assert_official(n)
        # And once more after a kill -9 with nothing new: the same bytes.
        nodes[0].kill()
        nodes[0].start(wait=False)
        self.wait(nodes[0])
        self.converge(nodes, {ES: 1 + len(es), CZ: 1 + len(cz)})
        again = self.same_views(nodes, {ES: [es[-1][0]], CZ: [cz[-1][0]]})
        for p in again:
            self.assertEqual(again[p][2], after[p][2], p)
            self.assertEqual(again[p][1]["ETag"], after[p][1]["ETag"], p)

    def test_a_batch_across_contests_is_refused_and_changes_nothing(self):
        nodes = self.start_nodes()
        es, cz = entries(ES), entries(CZ)
        self.post_all(nodes, [(ES, es[0][0], es[0][1]),
                              (CZ, cz[0][0], cz[0][1])])
        want = {ES: 2, CZ: 2}
        self.converge(nodes, want)
        before = self.same_views(nodes, {ES: [es[1][0]], CZ: [cz[1][0]]})
        batch = {"results": [dict(es[1][1], province=es[1][0]),
                             dict(cz[1][1], province=cz[1][0],
                                  contest=CZ)]}
        # On a contest's route, an entry without "contest" is its own.
        named = {"results": [dict(es[1][1], province=es[1][0], contest=ES),
                             dict(cz[1][1], province=cz[1][0])]}
        for n in nodes:
            for path, body in (("/v1/results", batch),
                               ("/v1/contests/%s/results" % CZ, named),
                               ("/v1/results?dry_run=1", batch)):
                st, _, b = request(n.base, "POST", path, body)
                self.assertEqual(st, 422, (path, b))
                err = json.loads(b)["error"]
                self.assertEqual(err["code"], "batch_in_cluster")
                self.assertIn("post each contest's part separately",
                              err["message"])
                self.assertIn("nothing was applied", err["message"])
        time.sleep(1)
        self.converge(nodes, want)
        after = self.same_views(nodes, {ES: [es[1][0]], CZ: [cz[1][0]]})
        for p in before:
            self.assertEqual(after[p][2], before[p][2], p)
            self.assertEqual(after[p][1]["ETag"], before[p][1]["ETag"], p)
        # Each contest's part on its own goes through, on every node.
        self.assertEqual(post(nodes[1].base, ES, es[1][0], es[1][1])[0], 201)
        self.assertEqual(post(nodes[2].base, CZ, cz[1][0], cz[1][1])[0], 201)
        # A batch of one contest's one province is one record.
        st, _, b = request(nodes[0].base, "POST", "/v1/contests/%s/results" %
                           CZ, {"results": [dict(cz[2][1],
                                                 province=cz[2][0])]})
        self.assertEqual(st, 201, b)
        self.converge(nodes, {ES: 3, CZ: 4})

        # A reload that would add or remove a contest is refused whole.
        n = nodes[0]
        n.conf_extra = ""               # removes Czechia
        n.write_conf()
        n.send_signal(signal.SIGHUP)
        deadline = time.time() + 20
        while "cannot be removed by a reload" not in n.logtext():
            self.assertLess(time.time(), deadline, n.log_tail())
            time.sleep(0.1)
        n.conf_extra = "contest %s\ncontest %s\n" % (definition(CZ),
                                                     definition("no-2021"))
        n.write_conf()
        n.send_signal(signal.SIGHUP)
        deadline = time.time() + 20
        while "contest no-2021 cannot be added by a reload" not in \
                n.logtext():
            self.assertLess(time.time(), deadline, n.log_tail())
            time.sleep(0.1)
        st, _, b = request(n.base, "GET", "/v1/contests")
        self.assertEqual([c["id"] for c in json.loads(b)["contests"]],
                         [ES, CZ])
        self.assertEqual(post(n.base, CZ, cz[3][0], cz[3][1])[0], 201)
        self.converge(nodes, {ES: 3, CZ: 5})
        # SIGUSR1 (a backup is a snapshot of one tally) says where the
        # contests are kept: in their streams, not a journal.
        n.send_signal(signal.SIGUSR1)
        deadline = time.time() + 20
        while "each contest's stream holds it" not in n.logtext():
            self.assertLess(time.time(), deadline, n.log_tail())
            time.sleep(0.1)

    def test_contests_that_would_share_a_stream_refuse_the_start(self):
        # "cz-2017" and "cz.2017" would both be stream TALLY_cz-2017...
        # not quite: '.' becomes '_'; take ids a_b and a.b.
        d = os.path.join(self.tmp, "defs")
        os.makedirs(d)
        paths = []
        for cid in ("x_2017", "x.2017"):
            e = load(CZ, "election.json")
            e["id"] = cid
            p = os.path.join(d, cid + ".json")
            with open(p, "w") as f:
                json.dump(e, f)
            paths.append(p)
        n = natscluster.Node(TALLYD, "tallyd1", self.tmp,
                             [s.url for s in self.servers], definition(ES),
                             env={"TALLYD_INGEST_TOKEN": TOKEN})
        self.nodes.append(n)
        n.conf_extra = "".join("contest %s\n" % p for p in paths)
        n.expect_exit(1)
        n.start(wait=False)
        rc = n.wait_exit(90)
        self.assertEqual(rc, 1)
        log = n.logtext()
        if "without libnats" in log:
            self.skipTest("tallyd was built without libnats")
        self.assertIn("contests x_2017 and x.2017 would share the stream", log)


if __name__ == "__main__":
    main()
