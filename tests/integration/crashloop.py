#!/usr/bin/env python3
"""Kill tallyd with SIGKILL while clients post, restart it, and check that
every acknowledged feed survived and nothing that was never sent appeared.

Used by test_durability.py (CrashLoop.run); also runnable on its own for
long soaks:

    TALLYD=build/daemon/tallyd python3 tests/integration/crashloop.py -n 500

Each of `clients` threads owns a disjoint set of provinces and posts new
revisions of them (single POSTs and small batches) as fast as it can.  Every
feed is recorded as *sent* before its request goes out, and as
*acknowledged* when the answer is 2xx.  Revisions are never reused, so a
(province, revision) names exactly one body.  After each restart:

  - every acknowledged revision is in the province's history with exactly
    the votes, blank, invalid and status sent, and the province's current
    revision is at least the last acknowledged one;
  - every revision in a history was sent, with exactly those values (an
    unacknowledged one may or may not be there: it was in flight);
  - histories strictly increase, the current revision is the last in the
    history, and the version lies between the number of acknowledged
    requests and the number of requests sent.
"""
import argparse
import http.client
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import traceback

from harness import ELECTIONS, Daemon, seed as fresh_seed

TOKEN = "ingest-token-for-the-durability-tests-0123"
AUTH = {"Authorization": "Bearer " + TOKEN}
DATASET = "es-2019-04"


def election_path(ds=DATASET):
    return os.path.join(ELECTIONS, ds, "election.json")


def base_entries(ds=DATASET):
    with open(os.path.join(ELECTIONS, ds, "results.json")) as f:
        return {e["province"]: e for e in json.load(f)["results"]}


class Book:
    """What was sent and what was acknowledged, shared by the clients."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent = {}          # (pid, rev) -> body without "province"
        self.acked = {}         # (pid, rev) -> body
        self.last_acked = {}    # pid -> highest acknowledged revision
        self.next_rev = {}      # pid -> next revision to send
        self.requests_sent = 0  # requests carrying at least one new revision
        self.requests_acked = 0
        self.errors = []        # unexpected answers

    def take(self, pid, body):
        with self.lock:
            rev = self.next_rev.get(pid, 1)
            self.next_rev[pid] = rev + 1
            b = dict(body, revision=rev)
            self.sent[(pid, rev)] = b
            return b


class Client(threading.Thread):
    def __init__(self, loop, d, pids, rnd):
        super().__init__(daemon=True)
        self.loop, self.d, self.pids, self.rnd = loop, d, pids, rnd
        self.acked = 0

    def body(self, pid):
        e = self.loop.base[pid]
        r = self.rnd
        votes = {k: max(0, v + r.randint(-500, 500))
                 for k, v in e["votes"].items()}
        return {"votes": votes, "blank": r.randint(0, 3000),
                "invalid": r.randint(0, 3000),
                "status": r.choice(("partial", "final"))}

    def run(self):
        book = self.loop.book
        while True:
            n = 1 if self.rnd.random() < 0.6 else self.rnd.randint(2, 4)
            pids = self.rnd.sample(self.pids, min(n, len(self.pids)))
            feeds = [(pid, book.take(pid, self.body(pid))) for pid in pids]
            with book.lock:
                book.requests_sent += 1
            try:
                if n == 1:
                    pid, b = feeds[0]
                    r = self.d.request(
                        "POST", "/v1/provinces/%s/results" % pid, body=b,
                        headers=AUTH, timeout=10)
                else:
                    r = self.d.request(
                        "POST", "/v1/results", headers=AUTH, timeout=10,
                        body={"results": [dict(b, province=pid)
                                          for pid, b in feeds]})
            except (OSError, http.client.HTTPException) as e:
                # Refused or reset: expected once the kill is planned (the
                # loop sets the flag before it sends SIGKILL), a problem
                # before: the daemon died by itself, or hung for 10 s.
                if not self.loop.killing.is_set():
                    with book.lock:
                        book.errors.append("before the kill: %r" % e)
                return
            except Exception:   # noqa: BLE001 - reported, not swallowed
                with book.lock:
                    book.errors.append(traceback.format_exc())
                return
            if 200 <= r.status < 300:
                with book.lock:
                    if r.status != 201:
                        book.errors.append("%d %r" % (r.status, r.body[:300]))
                    book.requests_acked += 1
                    for pid, b in feeds:
                        book.acked[(pid, b["revision"])] = b
                        if b["revision"] > book.last_acked.get(pid, 0):
                            book.last_acked[pid] = b["revision"]
                self.acked += 1
            else:
                with book.lock:
                    book.errors.append("%d %r" % (r.status, r.body[:300]))
                return


class CrashLoop:
    def __init__(self, data_dir, clients=4, seed=None, env=None, log=print):
        self.data_dir = data_dir
        self.clients = clients
        self.seed = seed if seed is not None else fresh_seed("crash loop")
        self.rnd = random.Random(self.seed)
        self.env = {"TALLYD_INGEST_TOKEN": TOKEN}
        self.env.update(env or {})
        self.base = base_entries()
        self.book = Book()
        self.log = log
        self.seen_present = set()   # unacked (pid, rev) found on disk
        self.killing = threading.Event()    # set just before each kill -9

    def daemon(self):
        return Daemon(["--election", election_path()], env=self.env,
                      data_dir=self.data_dir)

    def verify(self, d):
        """Check the restarted daemon against the book; returns a list of
        problems (empty when all is well) and the unacked-present count."""
        book = self.book
        problems = []
        present_unacked = 0
        lb = d.get("/v1/leaderboard").json()
        version = lb["version"]
        if version < book.requests_acked:
            problems.append("version %d < %d acknowledged requests" %
                            (version, book.requests_acked))
        if version > book.requests_sent:
            problems.append("version %d > %d requests sent" %
                            (version, book.requests_sent))
        keys = ("votes", "blank", "invalid", "status")
        for pid in sorted(self.base):
            h = d.get("/v1/provinces/%s/history" % pid)
            p = d.get("/v1/provinces/%s" % pid)
            if h.status != 200 or p.status != 200:
                problems.append("%s: GET %d/%d" % (pid, h.status, p.status))
                continue
            revs = h.json()["revisions"]
            cur = p.json()["revision"]
            seen = [x["revision"] for x in revs]
            if seen != sorted(set(seen)):
                problems.append("%s: history not increasing: %s" % (pid, seen))
            if cur != (seen[-1] if seen else 0):
                problems.append("%s: current revision %d, history ends %s" %
                                (pid, cur, seen[-1:]))
            if cur < book.last_acked.get(pid, 0):
                problems.append("%s: revision %d < acknowledged %d" %
                                (pid, cur, book.last_acked[pid]))
            inhist = {}
            for x in revs:
                rev = x["revision"]
                inhist[rev] = x
                b = book.sent.get((pid, rev))
                if b is None:
                    problems.append("%s: revision %d was never sent" %
                                    (pid, rev))
                    continue
                got = {"votes": x["votes"], "blank": x.get("blank"),
                       "invalid": x.get("invalid"), "status": x.get("status")}
                want = {k: b[k] for k in keys}
                for k in keys:
                    if k in ("blank", "invalid", "status") and k not in x:
                        got.pop(k)
                        want.pop(k)
                if got != want:
                    problems.append("%s revision %d: %r, sent %r" %
                                    (pid, rev, got, want))
                if (pid, rev) not in book.acked:
                    present_unacked += 1
                    self.seen_present.add((pid, rev))
            for (apid, rev) in book.acked:
                if apid == pid and rev not in inhist:
                    problems.append("%s: acknowledged revision %d lost" %
                                    (pid, rev))
            # An unacked revision seen on disk once must stay there.
            for (spid, rev) in self.seen_present:
                if spid == pid and rev not in inhist:
                    problems.append("%s: revision %d was replayed before, "
                                    "now it is gone" % (pid, rev))
        return problems, present_unacked, version

    def run(self, iterations, min_delay=0.05, max_delay=0.5, check=None):
        """`check(problems, d)` is called after each restart (default: raise
        on the first problem).  Returns per-iteration stats."""
        pids = sorted(self.base)
        self.rnd.shuffle(pids)
        shares = [pids[i::self.clients] for i in range(self.clients)]
        stats = []

        def finish(it, d):
            """The harness's teardown of one daemon: its exit (a kill -9
            sent by d.kill() is planned, any other death is not) and its
            whole log, read before it is deleted."""
            problems = d.cleanup()
            if problems:
                raise AssertionError(
                    "iteration %d (seed %d): %s\nlog:\n%s" % (
                        it, self.seed, "\n".join(problems),
                        (d.final_log or "")[-3000:]))

        def fail(it, problems, d):
            msg = ("iteration %d (seed %d): %d problems:\n  %s\n"
                   "unexpected answers: %s\nlog:\n%s" % (
                       it, self.seed, len(problems),
                       "\n  ".join(problems[:20]), self.book.errors[:5],
                       d.logtext()[-3000:]))
            if check:
                check(msg)
            else:
                raise AssertionError(msg)

        d = self.daemon().start()
        try:
            for it in range(iterations):
                before = self.book.requests_acked
                threads = [Client(self, d, shares[i],
                                  random.Random(self.rnd.random()))
                           for i in range(self.clients)]
                self.killing.clear()
                for t in threads:
                    t.start()
                delay = self.rnd.uniform(min_delay, max_delay)
                time.sleep(delay)
                self.killing.set()
                d.kill()
                for t in threads:
                    t.join(15)
                    if t.is_alive():
                        raise AssertionError("a client hangs after the kill")
                if self.book.errors:
                    fail(it, ["clients: %s" % e for e in self.book.errors[:5]], d)
                finish(it, d)
                acked = self.book.requests_acked - before
                d = self.daemon().start()
                seen_before = len(self.seen_present)
                problems, present, version = self.verify(d)
                new = len(self.seen_present) - seen_before
                stats.append((it, delay, acked, new, version))
                self.log("crash %2d: killed after %.3f s: %4d requests "
                         "acknowledged; %d unacknowledged revisions found "
                         "replayed (%d in all); version %d" % (
                             it, delay, acked, new, present, version))
                if problems or self.book.errors:
                    fail(it, problems, d)
            # Last, a clean stop and start (a shutdown snapshot, once there
            # is one) must keep the same.
            rc = d.stop()
            if rc != 0:
                raise AssertionError("SIGTERM: exit %s:\n%s" % (
                    rc, d.logtext()[-3000:]))
            finish(iterations, d)
            d = self.daemon().start()
            problems, present, version = self.verify(d)
            if problems:
                fail(iterations, problems, d)
            finish(iterations + 1, d)
        finally:
            d.cleanup()
        return stats


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--iterations", type=int, default=50)
    ap.add_argument("-c", "--clients", type=int, default=4)
    ap.add_argument("-s", "--seed", type=int,
                    help="default: TALLYD_SEED, else a fresh one")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="tallyd-crashloop-")
    try:
        loop = CrashLoop(os.path.join(tmp, "var"), args.clients, args.seed)
        print("crash loop: seed %d (-s or TALLYD_SEED to repeat)" % loop.seed,
              flush=True)
        t0 = time.monotonic()
        loop.run(args.iterations)
        print("%d crashes, %d requests acknowledged, all present (%.1f s)" % (
            args.iterations, loop.book.requests_acked, time.monotonic() - t0))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
