#!/usr/bin/env python3
"""The durability contract (docs/ARCHITECTURE.md, "Durability"), tested
on a real daemon and a real journal on disk:

  - a restart (SIGTERM or SIGKILL) keeps every acknowledged feed, byte for
    byte as served;
  - a crash loop: SIGKILL at random moments under concurrent posting never
    loses an acknowledged feed and never invents one;
  - a torn tail is cut and logged; corruption in the middle refuses to start
    with the file and offset, and --repair cuts there;
  - a full disk answers 503 and keeps serving reads, with the partial write
    rolled back; a failing fsync is fatal and acknowledges nothing;
  - no reply leaves before its fsync, concurrent requests share fsyncs, and
    reads do not wait for an fsync;
  - the fsync policies.

Nothing here assumes a single journal segment: segments are found with
glob("journal-*.log"), and byte-level damage is done to the newest one after
a SIGKILL (no shutdown snapshot is written then).
"""
import glob
import http.client
import json
import os
import shutil
import struct
import subprocess
import tempfile
import threading
import time

from harness import (TALLYD, Daemon, DaemonTest, main, needs_failpoints,
                     seed)
import crashloop

TOKEN = crashloop.TOKEN
AUTH = crashloop.AUTH
DS = crashloop.DATASET
MAGIC = b"TLJ1"
HEADER = 20



# ---- the journal format, for reading and damaging segments -------------

def _crc_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


CRC_TABLE = _crc_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


def records(path):
    """The valid records of a segment: [(offset, size, seq, payload dict)]."""
    with open(path, "rb") as f:
        data = f.read()
    out, off = [], 0
    while len(data) - off >= HEADER:
        magic, crc, length, seq = struct.unpack_from("<4sIIQ", data, off)
        end = off + HEADER + length
        if magic != MAGIC or end > len(data) or \
                crc32c(data[off + 8:end]) != crc:
            break
        out.append((off, HEADER + length, seq,
                    json.loads(data[off + HEADER:end].decode())))
        off = end
    return out


def segments(data_dir):
    return sorted(glob.glob(os.path.join(data_dir, "journal-*.log")))


def newest_segment(data_dir):
    s = segments(data_dir)
    assert s, "no journal segment in %s: %s" % (data_dir, os.listdir(data_dir))
    return s[-1]


# ---- feeds ---------------------------------------------------------------

BASE = crashloop.base_entries(DS)
PIDS = sorted(BASE)


def feed(pid, revision=1, delta=0, **changes):
    """A single-POST body for province pid (votes shifted by delta)."""
    e = dict(BASE[pid])
    del e["province"]
    e["revision"] = revision
    e["votes"] = {k: v + delta for k, v in e["votes"].items()}
    e.update(changes)
    return e


def entry(pid, revision=1, delta=0, **changes):
    return dict(feed(pid, revision, delta, **changes), province=pid)


class DurabilityTest(DaemonTest):
    def setUp(self):
        self.t0 = time.monotonic()
        self.data_dir = tempfile.mkdtemp(prefix="tallyd-durability-")
        self.addCleanup(shutil.rmtree, self.data_dir, True)

    def tearDown(self):
        print("  %s: %.2f s" % (self.id().rsplit(".", 1)[-1],
                                time.monotonic() - self.t0))

    def start(self, args=(), env=None, wait=True, data_dir=None):
        e = {"TALLYD_INGEST_TOKEN": TOKEN}
        e.update(env or {})
        d = Daemon(["--election", crashloop.election_path()] + list(args),
                   env=e, data_dir=data_dir or self.data_dir)
        # The harness stops and checks d at the end of the test (its exit
        # status, every sanitizer pattern in its whole log).
        d.start(wait=wait)
        return d

    def stop(self, d):
        """SIGTERM: must exit 0."""
        self.assertEqual(d.stop(), 0, d.logtext())

    def post(self, d, pid, body, timeout=30):
        return d.request("POST", "/v1/provinces/%s/results" % pid, body=body,
                         headers=AUTH, timeout=timeout)

    def batch(self, d, entries, timeout=30):
        return d.request("POST", "/v1/results", body={"results": entries},
                         headers=AUTH, timeout=timeout)

    def applied(self, r):
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.json()["status"], "applied", r.body)
        return r.json()["version"]

    def version(self, d):
        r = d.get("/v1/leaderboard")
        self.assertEqual(r.status, 200, r.body)
        return r.json()["version"]

    def revision(self, d, pid):
        r = d.get("/v1/provinces/" + pid)
        self.assertEqual(r.status, 200, r.body)
        return r.json()["revision"]

    def state(self, d):
        """Everything a reader can see, as served (bytes), but the time of
        the last change, which is not part of the tally."""
        st = {}
        lb = d.get("/v1/leaderboard")
        self.assertEqual(lb.status, 200)
        lbj = lb.json()
        lbj.pop("updated_at", None)
        st["/v1/leaderboard"] = json.dumps(lbj, sort_keys=True)
        for path in ["/v1/provinces", "/v1/leaderboard.csv",
                     "/v1/provinces.csv"] + \
                ["/v1/provinces/%s" % p for p in PIDS] + \
                ["/v1/provinces/%s/history" % p for p in PIDS]:
            r = d.get(path)
            self.assertEqual(r.status, 200, path)
            st[path] = r.body
        return st

    def assertSameState(self, a, b):
        self.assertEqual(sorted(a), sorted(b))
        for k in a:
            self.assertEqual(a[k], b[k], "%s differs after the restart" % k)

    def wait_exit(self, d, timeout=20):
        """Wait for d to end by itself (declare the code with
        d.expect_exit first when it is meant to fail)."""
        return d.wait_exit(timeout)


# ---- restarts --------------------------------------------------------------

class Restart(DurabilityTest):
    def fill(self, d):
        """Singles, corrections, a batch, a duplicate: version 8."""
        v = 0
        for pid in ("01", "02", "03"):
            v += 1
            self.assertEqual(self.applied(self.post(d, pid, feed(pid))), v)
        v += 1
        self.assertEqual(self.applied(self.post(
            d, "01", feed("01", 2, delta=-7, note="recount \u00e9 \"q\""))), v)
        v += 1
        self.assertEqual(self.applied(self.batch(
            d, [entry(p) for p in ("04", "05", "06", "28", "08")])), v)
        v += 1
        self.assertEqual(self.applied(self.batch(
            d, [entry("02", 5, delta=3, status="partial",
                      stations={"reporting": 9, "total": 10},
                      reported_at="2019-04-28T22:10:00+02:00"),
                entry("07")])), v)
        r = self.post(d, "03", feed("03"))       # a retry: 200 duplicate
        self.assertEqual(r.status, 200, r.body)
        v += 1
        self.assertEqual(self.applied(self.post(d, "03", feed("03", 9, 1))), v)
        v += 1
        self.assertEqual(self.applied(self.post(d, "52", feed("52"))), v)
        self.assertEqual(self.version(d), v)
        return v

    def test_sigterm_restart_keeps_everything(self):
        d = self.start()
        v = self.fill(d)
        before = self.state(d)
        self.stop(d)
        d2 = self.start()
        self.assertEqual(self.version(d2), v)
        self.assertSameState(self.state(d2), before)
        # The journal goes on after a restart, and a second restart keeps
        # that too.
        self.assertEqual(self.applied(self.post(d2, "09", feed("09"))), v + 1)
        self.assertEqual(self.post(d2, "01", feed("01", 2, delta=-7,
                                   note="recount \u00e9 \"q\"")).status, 200)
        before = self.state(d2)
        self.stop(d2)
        d3 = self.start()
        self.assertSameState(self.state(d3), before)
        self.assertEqual(self.version(d3), v + 1)

    def test_sigkill_right_after_acknowledgement(self):
        d = self.start()
        v = self.fill(d)
        before = self.state(d)
        d.kill()
        d2 = self.start()
        self.assertSameState(self.state(d2), before)
        self.assertIn("replayed", d2.logtext())
        # Acknowledged, then killed at once: every one is there.
        acked = []
        for i, pid in enumerate(PIDS[10:30]):
            if i % 4 == 3:
                r = self.batch(d2, [entry(pid, 2), entry(PIDS[40 + i % 12],
                                                         10 + i)])
                self.applied(r)
                acked += [(pid, 2), (PIDS[40 + i % 12], 10 + i)]
            else:
                self.applied(self.post(d2, pid, feed(pid, 3, delta=i)))
                acked.append((pid, 3))
        v2 = self.version(d2)
        d2.kill()
        d3 = self.start()
        self.assertEqual(self.version(d3), v2)
        for pid, rev in acked:
            h = d3.get("/v1/provinces/%s/history" % pid).json()
            self.assertIn(rev, [x["revision"] for x in h["revisions"]],
                          "acknowledged %s revision %d lost" % (pid, rev))


class CrashLoopTest(DurabilityTest):
    def test_crash_loop(self):
        iterations = int(os.environ.get("TALLYD_CRASH_ITERATIONS", "20"))
        s = os.environ.get("TALLYD_CRASH_SEED")
        loop = crashloop.CrashLoop(self.data_dir, clients=4,
                                   seed=int(s) if s else seed("crash loop"),
                                   log=lambda s: print("  " + s, flush=True))
        print("  crash loop: %d iterations, seed %d (TALLYD_SEED)" % (
            iterations, loop.seed))
        stats = loop.run(iterations, 0.05, 0.5)
        acked = sum(s[2] for s in stats)
        present = len(loop.seen_present)
        print("  crash loop: %d requests acknowledged, %d sent, %d "
              "unacknowledged revisions found on disk, version %d" % (
                  acked, loop.book.requests_sent, present, stats[-1][4]))
        self.assertGreater(acked, iterations, "the clients hardly posted")


# ---- damage on disk -----------------------------------------------------------

class TornTail(DurabilityTest):
    def setup_journal(self, n=5):
        d = self.start()
        for pid in PIDS[:n]:
            self.applied(self.post(d, pid, feed(pid)))
        before = self.state(d)
        d.kill()                        # no shutdown snapshot
        seg = newest_segment(self.data_dir)
        recs = records(seg)
        self.assertTrue(recs, "the newest segment holds no record")
        self.assertEqual(os.path.getsize(seg),
                         recs[-1][0] + recs[-1][1], "trailing bytes")
        return before, seg, recs

    def check_cut(self, before, seg, size, tail):
        with open(seg, "ab") as f:
            f.write(tail)
        d = self.start()
        log = d.logtext()
        self.assertIn("torn tail", log)
        self.assertIn("%s: torn tail at offset %d" % (seg, size), log)
        self.assertEqual(os.path.getsize(seg), size, "not cut back")
        self.assertSameState(self.state(d), before)
        # Appending goes on after the cut, and survives another crash.
        v = self.version(d)
        self.assertEqual(self.applied(self.post(d, "50", feed("50", 4))),
                         v + 1)
        d.kill()
        d2 = self.start()
        self.assertNotIn("torn tail", d2.logtext())
        self.assertEqual(self.revision(d2, "50"), 4)
        self.assertEqual(self.version(d2), v + 1)
        for pid in PIDS[:5]:
            self.assertEqual(self.revision(d2, pid), 1)

    def test_partial_copy_of_last_record(self):
        before, seg, recs = self.setup_journal()
        off, size, seq, _ = recs[-1]
        with open(seg, "rb") as f:
            f.seek(off)
            last = f.read(size)
        self.check_cut(before, seg, off + size, last[:30])

    def test_partial_headers_and_zeros(self):
        """Torn writes of a next record: part of a header, a header and
        part of a payload, a prefix then zeros (an extended file)."""
        before, seg, recs = self.setup_journal(5)
        off, size, seq, _ = recs[-1]
        end = off + size
        payload = json.dumps({"version": 99, "received_at": "x",
                              "results": []}).encode()
        hdr = struct.pack("<4sIIQ", MAGIC, crc32c(struct.pack(
            "<IQ", len(payload), seq + 1) + payload), len(payload), seq + 1)
        rec = hdr + payload
        cases = [("header 12 bytes", rec[:12]),
                 ("header 19 bytes", rec[:19]),
                 ("header and half the payload", rec[:HEADER + len(payload) // 2]),
                 ("all but the last byte", rec[:-1]),
                 ("a prefix then zeros", rec[:40] + bytes(len(rec) - 40)),
                 ("zeros", bytes(4096)),
                 ("magic then zeros", MAGIC + bytes(100)),
                 ("two bytes of magic then zeros", MAGIC[:2] + bytes(100))]
        for name, tail in cases:
            with self.subTest(tail=name):
                # Each case starts from the same journal.
                with open(seg, "r+b") as f:
                    f.truncate(end)
                with open(seg, "ab") as f:
                    f.write(tail)
                d = self.start(wait=False)
                try:
                    d.wait_ready()
                except AssertionError as e:
                    self.fail("%s: tallyd refused to start: %s" % (name, e))
                self.assertIn("torn tail at offset %d" % end, d.logtext())
                self.assertEqual(os.path.getsize(seg), end)
                self.assertSameState(self.state(d), before)
                d.kill()


class Corruption(DurabilityTest):
    def setup_journal(self, n=6):
        d = self.start()
        for pid in PIDS[:n]:
            self.applied(self.post(d, pid, feed(pid)))
        d.kill()
        seg = newest_segment(self.data_dir)
        recs = records(seg)
        self.assertGreaterEqual(len(recs), 3, "want 3 records in %s" % seg)
        return seg, recs

    def damage(self, seg, at, xor):
        with open(seg, "r+b") as f:
            f.seek(at)
            b = f.read(1)
            f.seek(at)
            f.write(bytes([b[0] ^ xor]))

    def refuses(self, seg, off):
        d = self.start(wait=False)
        d.expect_exit(1)
        rc = self.wait_exit(d)
        log = d.logtext()
        self.assertNotEqual(rc, 0, log)
        self.assertIn(seg, log)
        self.assertIn("corrupt record at offset %d " % off, log)
        self.assertIn("--repair", log)
        return d

    def repairs(self, seg, recs, k):
        """--repair: starts, logs the loss, serves records before k."""
        size = os.path.getsize(seg)
        off = recs[k][0]
        d = self.start(["--repair"])
        log = d.logtext()
        self.assertIn("--repair", log)
        self.assertIn("corrupt record at offset %d" % off, log)
        self.assertIn("%d bytes after it are lost" % (size - off), log)
        # Cut there; then one record with no results moves the tally past
        # every version the cut records had (clients may have seen them).
        after = records(seg)
        self.assertEqual([r[0] for r in after[:k]], [r[0] for r in recs[:k]])
        self.assertEqual(len(after), k + 1)
        self.assertEqual(after[k][0], off)
        self.assertEqual(after[k][3]["results"], [])
        self.assertEqual(after[k][3]["version"], recs[-1][3]["version"] + 1)
        kept = {res["province"] for _, _, _, p in recs[:k]
                for res in p["results"]}
        lost = {res["province"] for _, _, _, p in recs[k:]
                for res in p["results"]}
        for pid in kept:
            self.assertEqual(self.revision(d, pid), 1, pid)
        for pid in lost - kept:
            self.assertEqual(self.revision(d, pid), 0, pid)
        self.assertEqual(self.version(d), recs[-1][3]["version"] + 1)
        # The cut is for good: a plain start works afterwards, and the
        # lost provinces can be posted again.
        v = self.version(d)
        pid = sorted(lost - kept)[0]
        self.assertEqual(self.applied(self.post(d, pid, feed(pid))), v + 1)
        d.kill()
        d2 = self.start()
        self.assertEqual(self.version(d2), v + 1)
        self.assertEqual(self.revision(d2, pid), 1)

    def test_flipped_payload_byte(self):
        seg, recs = self.setup_journal()
        k = len(recs) // 2
        off, size, _, _ = recs[k]
        self.damage(seg, off + HEADER + size // 3, 0x20)
        self.refuses(seg, off)
        # Refusing leaves the file alone.
        self.assertEqual(os.path.getsize(seg), recs[-1][0] + recs[-1][1])
        self.refuses(seg, off)
        self.repairs(seg, recs, k)

    def test_flipped_crc_and_seq(self):
        for field, at in (("crc", 5), ("seq", 13), ("magic", 1)):
            with self.subTest(field=field):
                shutil.rmtree(self.data_dir)
                os.mkdir(self.data_dir)
                seg, recs = self.setup_journal(4)
                off = recs[1][0]
                self.damage(seg, off + at, 0x01)
                self.refuses(seg, off)

    def test_flipped_length_bit(self):
        """One bit of a middle record's length: the record now seems to run
        past the end of the file.  That is damage (valid records follow), not
        a torn tail: cutting there would drop acknowledged feeds."""
        seg, recs = self.setup_journal()
        k = 1
        off = recs[k][0]
        self.damage(seg, off + 10, 0x01)        # length + 65536
        d = self.start(wait=False)
        d.expect_exit(1)
        # Until it refuses (exits) or serves: no guess of how long either
        # takes on a loaded machine.
        deadline = time.monotonic() + 30
        rc = d.poll()
        while rc is None and time.monotonic() < deadline:
            try:
                if d.get("/healthz", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.02)
            rc = d.poll()
        if rc is None:
            d.expect_exit(None)
            d.wait_ready()
            lost = [pid for pid in PIDS[:6] if self.revision(d, pid) == 0]
            self.fail("tallyd started on a journal with a damaged length "
                      "in record %d of %d; acknowledged provinces %s are "
                      "gone; log:\n%s" % (k, len(recs), lost, d.logtext()))
        self.refuses(seg, off)

    def test_sequence_gap(self):
        """A valid record with the wrong sequence number (a record lost
        from the middle) is corruption too."""
        seg, recs = self.setup_journal(5)
        with open(seg, "rb") as f:
            data = f.read()
        o1, s1 = recs[1][0], recs[1][1]
        with open(seg, "wb") as f:
            f.write(data[:o1] + data[o1 + s1:])   # drop record 1
        self.refuses(seg, o1)


# ---- write and sync failures ----------------------------------------------------

class EndDamage(DurabilityTest):
    """Issue 21: damage at the journal's end is not a torn write.  The
    daemon keeps the acknowledged high-water mark in DATA_DIR/journal.acked
    (the sequence after, and the version of, the last record written and
    synced before its answer); a journal that ends before it lost
    acknowledged results: refuse to start, or with --repair name every lost
    version and never hand one of them out again."""

    N = 28

    def fill(self):
        d = self.start()
        acked = []
        for i, pid in enumerate(PIDS[:self.N]):
            acked.append((pid, self.applied(self.post(d, pid, feed(pid)))))
        d.kill()                        # no shutdown snapshot
        seg = newest_segment(self.data_dir)
        recs = records(seg)
        self.assertEqual(len(recs), self.N)
        self.assertEqual([r[3]["version"] for r in recs],
                         [v for _, v in acked])
        return seg, recs, acked

    def refuses(self, seg, size, lost):
        d = self.start(wait=False)
        d.expect_exit(1)
        rc = self.wait_exit(d)
        log = d.logtext()
        self.assertEqual(rc, 1, log)
        self.assertNotIn("torn tail", log)
        self.assertIn("acknowledged records are lost, versions %d to %d" % (
            lost[0], lost[-1]), log)
        self.assertIn("--repair", log)
        self.assertEqual(os.path.getsize(seg), size, "refusing changed it")
        return log

    def repairs(self, lost, acked, kept_pids):
        d = self.start(["--repair"])
        log = d.logtext()
        for v in lost:
            self.assertIn("acknowledged version %d is lost" % v, log)
        # No version number that was ever acknowledged is handed out again:
        # a version record moves the tally past the highest one.
        top = max(v for _, v in acked)
        self.assertEqual(self.version(d), top + 1)
        pid = [p for p, v in acked if v in lost][0]
        self.assertEqual(self.revision(d, pid), 0)
        for p in kept_pids:
            self.assertEqual(self.revision(d, p), 1)
        self.assertEqual(self.applied(self.post(d, pid, feed(pid))), top + 2)
        # The loss is accepted for good: plain starts work again.
        d.kill()
        d2 = self.start()
        self.assertEqual(self.version(d2), top + 2)
        self.assertNotIn("lost", d2.logtext())
        self.stop(d2)

    def test_cut_in_half_at_a_record_boundary(self):
        seg, recs, acked = self.fill()
        k = len(recs) // 2
        with open(seg, "r+b") as f:
            f.truncate(recs[k][0])
        lost = [r[3]["version"] for r in recs[k:]]
        log = self.refuses(seg, recs[k][0], lost)
        self.assertIn("not a torn write", log)
        self.refuses(seg, recs[k][0], lost)     # still, and unchanged
        self.repairs(lost, acked, [p for p, _ in acked[:k]])

    def test_bit_flip_in_the_last_acknowledged_record(self):
        seg, recs, acked = self.fill()
        off, size, _, _ = recs[-1]
        with open(seg, "r+b") as f:
            f.seek(off + HEADER + size // 2)
            b = f.read(1)
            f.seek(off + HEADER + size // 2)
            f.write(bytes([b[0] ^ 0x04]))
        lost = [recs[-1][3]["version"]]
        log = self.refuses(seg, off + size, lost)
        self.assertIn("damage at offset %d, not a torn write" % off, log)
        self.repairs(lost, acked, [p for p, _ in acked[:-1]])

    def test_a_segment_followed_by_another_ends_early(self):
        """A segment followed by a later one cannot have a torn tail: one
        that ends before the next begins lost acknowledged records."""
        seg, recs, acked = self.fill()
        # Split the journal in two segments, as a rotation would have:
        # records 1-12 and 13-28 (journal-000000000000000d.log).
        with open(seg, "rb") as f:
            data = f.read()
        k = 12
        second = os.path.join(self.data_dir, "journal-%016x.log" %
                              recs[k][2])
        with open(second, "wb") as f:
            f.write(data[recs[k][0]:])
        with open(seg, "r+b") as f:
            f.truncate(recs[k][0])
        d = self.start()                # the split journal is sound
        self.assertEqual(self.version(d), acked[-1][1])
        d.kill()
        # Now the first segment loses its last two records.
        with open(seg, "r+b") as f:
            f.truncate(recs[k - 2][0])
        d = self.start(wait=False)
        d.expect_exit(1)
        self.assertEqual(self.wait_exit(d), 1, d.logtext())
        log = d.logtext()
        self.assertIn("%s: damage: it ends before sequence %d but the next "
                      "segment" % (seg, recs[k - 2][2]), log)
        self.assertIn("no torn write", log)
        self.assertIn("--repair", log)
        self.assertTrue(os.path.exists(second))
        lost = [r[3]["version"] for r in recs[k - 2:]]
        self.repairs(lost, acked, [p for p, _ in acked[:k - 2]])
        self.assertFalse(os.path.exists(second))
        self.assertTrue(os.path.exists(second + ".lost"))

    def test_journal_ending_inside_the_snapshot(self):
        """A segment the snapshot ends inside, cut short: what it lacks the
        snapshot holds, nothing is lost, and appends must not leave a gap
        in its sequence (the next start would take that for corruption)."""
        d = self.start()
        for pid in PIDS[:8]:
            self.applied(self.post(d, pid, feed(pid)))
        d.kill()
        seg = newest_segment(self.data_dir)
        recs = records(seg)
        with open(seg, "rb") as f:
            data = f.read()
        d = self.start()
        self.stop(d)                    # the final snapshot covers all 8
        self.assertTrue(glob.glob(os.path.join(self.data_dir,
                                               "snapshot-*.snap")))
        for s in segments(self.data_dir):
            os.unlink(s)
        # As a crash before pruning leaves it, then cut short.
        with open(seg, "wb") as f:
            f.write(data[:recs[5][0]])
        d = self.start()
        self.assertEqual(self.version(d), 8)
        self.assertEqual(self.applied(self.post(d, PIDS[9], feed(PIDS[9]))),
                         9)
        d.kill()
        d2 = self.start()
        self.assertEqual(self.version(d2), 9)
        self.assertEqual(self.revision(d2, PIDS[9]), 1)
        self.stop(d2)

    def test_check_mode_reports_the_damage(self):
        seg, recs, acked = self.fill()
        with open(seg, "r+b") as f:
            f.truncate(recs[-3][0])
        d = Daemon(["--election", crashloop.election_path(), "-n"],
                   env={"TALLYD_INGEST_TOKEN": TOKEN}, data_dir=self.data_dir)
        self.addCleanup(d.cleanup)
        d.expect_exit(1)
        d.start(wait=False)
        rc = self.wait_exit(d)
        self.assertNotEqual(rc, 0, d.logtext())
        self.assertIn("acknowledged records are lost", d.logtext())
        self.assertEqual(os.path.getsize(seg), recs[-3][0])

    @needs_failpoints
    def test_torn_unacknowledged_record_still_recovers(self):
        """A record written but killed before its sync ended (so never
        acknowledged, and not in the mark): damaged or cut, it is a torn
        tail and the start goes on by itself, as before."""
        for how in ("cut", "flip"):
            with self.subTest(how=how):
                shutil.rmtree(self.data_dir)
                os.mkdir(self.data_dir)
                d = self.start(env={"TALLYD_FAILPOINTS":
                                    "sync_delay_ms=3000"})
                v = self.applied(self.post(d, "01", feed("01")))
                def unanswered():
                    try:
                        self.post(d, "02", feed("02"), timeout=10)
                    except (OSError, http.client.HTTPException):
                        pass    # killed before the answer: expected
                th = threading.Thread(target=unanswered)
                th.start()
                seg = newest_segment(self.data_dir)
                deadline = time.monotonic() + 10
                while len(records(seg)) < 2 and time.monotonic() < deadline:
                    time.sleep(0.02)
                recs = records(seg)
                self.assertEqual(len(recs), 2, "the second record was "
                                 "not written")
                d.kill()                # during its sync: never answered
                th.join(10)
                off, size, _, _ = recs[-1]
                with open(seg, "r+b") as f:
                    if how == "cut":
                        f.truncate(off + size - 3)
                    else:
                        f.seek(off + HEADER + 2)
                        b = f.read(1)
                        f.seek(off + HEADER + 2)
                        f.write(bytes([b[0] ^ 0x10]))
                d2 = self.start()
                self.assertIn("torn tail at offset %d" % off, d2.logtext())
                self.assertEqual(self.version(d2), v)
                self.assertEqual(self.applied(self.post(d2, "02", feed("02"))),
                                 v + 1)
                self.stop(d2)


class Enospc(DurabilityTest):
    @needs_failpoints
    def test_full_disk_answers_503_and_rolls_back(self):
        d = self.start()
        v = self.applied(self.post(d, "01", feed("01")))
        seg = newest_segment(self.data_dir)
        size = os.path.getsize(seg)
        before = self.state(d)
        flag = os.path.join(self.data_dir, "failpoint.enospc")
        with open(flag, "w"):
            pass
        for attempt in range(3):
            r = self.post(d, "02", feed("02"))
            self.assertEqual(r.status, 503, r.body)
            self.assertEqual(r.json()["error"]["code"], "journal_unavailable")
            self.assertIsNotNone(r.header("Retry-After"), r.headers)
            self.assertTrue(r.header("Retry-After").isdigit())
            r = self.batch(d, [entry("03"), entry("04")])
            self.assertEqual(r.status, 503, r.body)
            self.assertEqual(r.json()["error"]["code"], "journal_unavailable")
            # Reads go on and see nothing new; the partial write is gone.
            self.assertEqual(self.version(d), v)
            self.assertSameState(self.state(d), before)
            self.assertEqual(os.path.getsize(seg), size, "partial write kept")
        self.assertIn("journal write failed", d.logtext())
        # Health says so: reads are fine, feeds are not.
        h = d.get("/healthz")
        self.assertEqual(h.status, 200)
        self.assertEqual(h.json()["status"], "degraded")
        self.assertFalse(h.json()["ingest"])
        self.assertIn("No space left on device", h.json()["reasons"][0])
        os.unlink(flag)
        self.assertEqual(self.applied(self.post(d, "02", feed("02"))), v + 1)
        h = d.get("/healthz").json()
        self.assertEqual((h["status"], h["ingest"]), ("ok", True))
        self.assertNotIn("reasons", h)
        self.assertEqual(self.applied(self.batch(d, [entry("03"),
                                                     entry("04")])), v + 2)
        self.assertEqual(self.revision(d, "02"), 1)
        after = self.state(d)
        # The records written after the failures follow the last good one
        # (no hole where the failed writes were).
        recs = records(seg)
        good_end = recs[-1][0] + recs[-1][1] if recs else 0
        file_size = os.path.getsize(seg)
        d.kill()
        d2 = self.start(wait=False)
        try:
            d2.wait_ready()
        except AssertionError as e:
            self.fail("restart after ENOSPC failed (%s: valid records end at "
                      "%d, the file at %d): %s" % (seg, good_end, file_size, e))
        self.assertEqual(good_end, file_size, "bytes after the last record")
        self.assertSameState(self.state(d2), after)

    @needs_failpoints
    def test_write_enospc_failpoint_count(self):
        """TALLYD_FAILPOINTS=write_enospc=2: two failed writes, then fine."""
        d = self.start(env={"TALLYD_FAILPOINTS": "write_enospc=2"})
        for i in range(2):
            r = self.post(d, "01", feed("01"))
            self.assertEqual(r.status, 503, r.body)
            self.assertEqual(self.version(d), 0)
        self.assertEqual(self.applied(self.post(d, "01", feed("01"))), 1)
        self.assertEqual(self.applied(self.post(d, "02", feed("02"))), 2)
        before = self.state(d)
        seg = newest_segment(self.data_dir)
        recs = records(seg)
        d.kill()
        d2 = self.start(wait=False)
        try:
            d2.wait_ready()
        except AssertionError as e:
            self.fail("restart after ENOSPC failed (%s: %d valid records "
                      "from offset %s, file %d bytes): %s" % (
                          seg, len(recs), recs[0][0] if recs else None,
                          os.path.getsize(seg), e))
        self.assertSameState(self.state(d2), before)


class SyncFailure(DurabilityTest):
    @needs_failpoints
    def test_failed_fsync_is_fatal_and_unacknowledged(self):
        d = self.start(env={"TALLYD_FAILPOINTS": "sync_fail"})
        try:
            r = self.post(d, "01", feed("01"), timeout=10)
            status = r.status
        except (OSError, http.client.HTTPException) as e:
            # The connection closed: expected.
            status = repr(e)
        self.assertFalse(isinstance(status, int) and 200 <= status < 300,
                         "a POST was acknowledged though its fsync failed")
        d.expect_exit(1)                # fatal: exit 1, nothing acknowledged
        rc = self.wait_exit(d)
        self.assertNotEqual(rc, 0)
        log = d.logtext()
        self.assertIn("fdatasync", log)
        self.assertIn("fatal", log)
        # Restart without the failpoint.  The record was written before the
        # sync failed, so it may be on disk (and replayed) or not: nothing
        # was acknowledged, so either is within the contract.  What is
        # observed is printed.
        d2 = self.start()
        v, rev = self.version(d2), self.revision(d2, "01")
        print("  after a failed fsync: POST answered %r; on restart "
              "version %d, province 01 revision %d" % (status, v, rev))
        self.assertIn((v, rev), ((0, 0), (1, 1)))
        # The journal is usable afterwards.
        self.assertEqual(self.applied(self.post(d2, "02", feed("02"))), v + 1)


# ---- group commit -------------------------------------------------------------------

class GroupCommit(DurabilityTest):
    DELAY = 0.3

    @needs_failpoints
    def test_no_reply_before_fsync_and_shared_syncs(self):
        d = self.start(env={"TALLYD_FAILPOINTS":
                            "sync_delay_ms=%d" % (self.DELAY * 1000)})
        self.assertIn("failpoints", d.logtext())
        t = time.monotonic()
        self.applied(self.post(d, "01", feed("01")))
        took = time.monotonic() - t
        self.assertGreaterEqual(took, self.DELAY, "answered before the sync")

        # Eight at once share syncs.
        n = 8
        barrier = threading.Barrier(n)
        results = [None] * n

        def one(i):
            pid = PIDS[10 + i]
            barrier.wait()
            results[i] = self.post(d, pid, feed(pid))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        t = time.monotonic()
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        total = time.monotonic() - t
        for r in results:
            self.applied(r)
        self.assertEqual(self.version(d), 1 + n)
        print("  %d concurrent POSTs with a %.1f s fsync: %.3f s" % (
            n, self.DELAY, total))
        self.assertLess(total, n * self.DELAY * 0.6,
                        "concurrent POSTs do not share fsyncs")
        self.assertGreaterEqual(total, self.DELAY)

    def hold_syncs(self):
        """failpoint.sync_hold: every sync waits until release_syncs()."""
        hold = os.path.join(self.data_dir, "failpoint.sync_hold")
        open(hold, "w").close()
        self.addCleanup(lambda: os.path.exists(hold) and os.unlink(hold))
        return hold

    def wait_sync_held(self, d, timeout=20):
        """Until a sync is held: a record written, not yet durable."""
        held = os.path.join(self.data_dir, "failpoint.sync_held")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(held):
                return
            self.assertIsNone(d.proc.poll(), d.logtext())
            time.sleep(0.005)
        self.fail("no sync was ever held:\n" + d.logtext())

    def wait_log_count(self, d, text, n, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if d.logtext().count(text) >= n:
                return
            time.sleep(0.005)
        self.fail("log never said %r %d times:\n%s" % (text, n, d.logtext()))

    @needs_failpoints
    def test_retry_of_an_unsynced_feed_waits_for_it(self):
        """A retry that arrives while the original is being synced is a
        duplicate of something not yet durable: it is answered only after
        the original's sync, never before.  The sync is held by a failpoint
        until both have arrived, so that no ordering is left to timing."""
        d = self.start(["-v"])
        hold = self.hold_syncs()
        out = {}

        def original():
            out["r"] = self.post(d, "01", feed("01"))
            out["done"] = time.monotonic()

        def retry():
            out["retry"] = self.post(d, "01", feed("01"))
            out["retry_done"] = time.monotonic()

        th = threading.Thread(target=original)
        th.start()
        self.wait_sync_held(d)              # the original: written, unsynced
        rt = threading.Thread(target=retry)
        rt.start()
        # The retry has arrived (-v logs each accepted feed) ...
        self.wait_log_count(d, "accepted 01 revision 1 ", 2)
        # ... and, the sync held, neither may be answered.  (A daemon that
        # answered the retry early is caught here if its answer comes
        # within this 0.3 s; it never makes a right daemon fail.)
        time.sleep(0.3)
        self.assertNotIn("retry", out, "the retry was answered before the "
                         "original's sync")
        self.assertNotIn("r", out, "answered before the sync")
        released = time.monotonic()
        os.unlink(hold)
        th.join(30)
        rt.join(30)
        self.applied(out["r"])
        r = out["retry"]
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["status"], "duplicate")
        self.assertGreaterEqual(out["retry_done"], released)
        self.assertEqual(self.version(d), 1)

    @needs_failpoints
    def test_reads_do_not_wait_for_fsync(self):
        """Reads while a sync is held (indefinitely, by a failpoint): each
        is answered (a read waiting for the sync would hang, 5 s timeout),
        and none shows the feed not yet durable."""
        d = self.start()
        v0 = self.version(d)
        before = d.get("/v1/provinces/01").body
        hold = self.hold_syncs()
        out = {}

        def poster():
            out["r"] = self.post(d, "01", feed("01"))

        th = threading.Thread(target=poster)
        th.start()
        self.wait_sync_held(d)
        for path in ("/v1/leaderboard", "/v1/provinces/01", "/healthz",
                     "/v1/provinces/01/history", "/v1/provinces"):
            try:
                r = d.get(path, timeout=5)
            except OSError as e:
                self.fail("%s waited for the held fsync: %s" % (path, e))
            self.assertEqual(r.status, 200)
            if path == "/v1/leaderboard":
                # Not applied before it is durable.
                self.assertEqual(r.json()["version"], v0,
                                 "a reader saw a feed not yet synced")
            if path == "/v1/provinces/01":
                self.assertEqual(r.body, before)
        self.assertTrue(th.is_alive(), "the POST did not wait for its sync")
        os.unlink(hold)
        th.join(30)
        self.applied(out["r"])
        self.assertEqual(self.version(d), v0 + 1)


# ---- fsync policies ----------------------------------------------------------------------

class Snapshots(DurabilityTest):
    """Periodic and final snapshots: start-up reads them, history still works."""

    def conf(self, every):
        path = os.path.join(self.data_dir, "..", os.path.basename(
            self.data_dir) + ".conf")
        with open(path, "w") as f:
            f.write("snapshot_every %d\n" % every)
        self.addCleanup(lambda: os.path.exists(path) and os.unlink(path))
        return ["-f", path]

    def snapshots(self):
        return sorted(glob.glob(os.path.join(self.data_dir, "snapshot-*.snap")))

    def test_periodic_snapshot_then_crash(self):
        d = self.start(self.conf(5))
        for i, pid in enumerate(PIDS[:8]):
            self.applied(self.post(d, pid, feed(pid)))
        for pid in PIDS[:3]:
            self.applied(self.post(d, pid, feed(pid, 2, delta=11,
                                                note="correction")))
        self.wait_log(d, "written; older segments removed")
        self.assertEqual(len(self.snapshots()), 1)
        # After the snapshot: more feeds, only in the journal.
        self.applied(self.post(d, PIDS[0], feed(PIDS[0], 3, delta=-2)))
        self.applied(self.post(d, PIDS[20], feed(PIDS[20])))
        before = self.state(d)
        d.kill()
        # Segments the snapshot covers are gone; the newer one is kept.
        first = int(os.path.basename(self.snapshots()[0])[9:25], 16)
        for seg in segments(self.data_dir):
            self.assertGreaterEqual(
                int(os.path.basename(seg)[8:24], 16), first, seg)
        d2 = self.start(self.conf(5))
        self.assertIn("snapshot: ", d2.logtext())
        self.assertSameState(self.state(d2), before)
        h = d2.get("/v1/provinces/%s/history" % PIDS[0]).json()
        self.assertEqual([r["revision"] for r in h["revisions"]], [1, 2, 3])
        self.assertEqual(h["revisions"][1]["note"], "correction")

    def test_older_revisions_leave_memory_after_a_snapshot(self):
        """A long night costs disk, not RAM: after a periodic snapshot the
        revisions it holds that are no longer current are read from it."""
        d = self.start(self.conf(10))
        for rev in range(1, 13):
            self.applied(self.post(d, PIDS[0], feed(PIDS[0], rev, delta=rev,
                                                    note="count %d" % rev)))
        self.wait_log(d, "older revisions moved to it from memory")
        history = d.get("/v1/provinces/%s/history" % PIDS[0])
        self.assertEqual(history.status, 200)
        revs = history.json()["revisions"]
        self.assertEqual([r["revision"] for r in revs], list(range(1, 13)))
        self.assertEqual(revs[4]["note"], "count 5")

        def in_memory():
            m = d.get("/metrics").body.decode()
            return int(m.split("\ntallyd_revisions_in_memory ")[1].split()[0])
        # 12 revisions: the snapshot holds the first 10 (9 no longer
        # current); the current one and those after stay in memory.
        self.assertLessEqual(in_memory(), 3)
        # More revisions, another snapshot: still bounded, history whole.
        for rev in range(13, 25):
            self.applied(self.post(d, PIDS[0], feed(PIDS[0], rev, delta=rev)))
        deadline = time.monotonic() + 20
        while in_memory() > 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertLessEqual(in_memory(), 3)
        h2 = d.get("/v1/provinces/%s/history" % PIDS[0]).json()["revisions"]
        self.assertEqual(h2[:12], revs)
        self.assertEqual(len(h2), 24)
        before = self.state(d)
        self.stop(d)
        d = self.start(self.conf(10))
        self.assertSameState(self.state(d), before)
        self.stop(d)

    def test_clean_stop_writes_a_snapshot(self):
        d = self.start(self.conf(0))
        for pid in PIDS[:6]:
            self.applied(self.post(d, pid, feed(pid)))
        self.applied(self.post(d, PIDS[0], feed(PIDS[0], 2, delta=5)))
        before = self.state(d)
        self.stop(d)
        self.assertEqual(len(self.snapshots()), 1)
        for seg in segments(self.data_dir):
            self.assertEqual(os.path.getsize(seg), 0, seg)
        d2 = self.start(self.conf(0))
        self.assertIn("snapshot: 7 revisions", d2.logtext())
        self.assertSameState(self.state(d2), before)
        # Going on after a snapshot start, then a crash: all there.
        self.applied(self.post(d2, PIDS[1], feed(PIDS[1], 2, delta=1)))
        before = self.state(d2)
        d2.kill()
        d3 = self.start(self.conf(0))
        self.assertSameState(self.state(d3), before)

    def test_damaged_snapshot_refuses_to_start(self):
        d = self.start(self.conf(0))
        for pid in PIDS[:4]:
            self.applied(self.post(d, pid, feed(pid)))
        self.stop(d)
        snap = self.snapshots()[0]
        with open(snap, "r+b") as f:
            f.seek(os.path.getsize(snap) - 10)
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 0x20]))
        d2 = self.start(self.conf(0), wait=False)
        d2.expect_exit(1)
        self.assertNotEqual(self.wait_exit(d2), 0)
        self.assertIn("damaged at offset", d2.logtext())


class Policies(DurabilityTest):
    def conf(self, value):
        path = os.path.join(self.data_dir + "-conf")
        os.makedirs(path, exist_ok=True)
        self.addCleanup(shutil.rmtree, path, True)
        conf = os.path.join(path, "tallyd.conf")
        with open(conf, "w") as f:
            f.write("# durability test\nelection %s\nfsync %s\n" % (
                crashloop.election_path(), value))
        return conf

    def check_policy(self, value, warning):
        conf = self.conf(value)
        d = self.start(["-f", conf])
        log = d.logtext()
        self.assertIn(warning, log)
        self.assertIn("warn", log[log.index(warning) - 30:log.index(warning)])
        self.assertEqual(self.applied(self.post(d, "01", feed("01"))), 1)
        self.assertEqual(self.applied(self.batch(d, [entry("02"),
                                                     entry("03")])), 2)
        before = self.state(d)
        self.stop(d)
        d2 = self.start(["-f", conf])
        self.assertSameState(self.state(d2), before)
        return d2

    def test_batch(self):
        d = self.check_policy("batch:50", "fsync policy batch:50")
        # The record is written before the reply (synced within 50 ms):
        # a SIGKILL right after keeps it.
        self.applied(self.post(d, "04", feed("04")))
        d.kill()
        d2 = self.start(["-f", self.conf("batch:50")])
        self.assertEqual(self.revision(d2, "04"), 1)

    def test_off(self):
        self.check_policy("off", "fsync policy off")

    def test_always_is_default(self):
        d = self.start()
        self.assertIn("fsync policy always", d.logtext())

    def test_bad_values(self):
        for value in ("sometimes", "batch:", "batch:0", "batch:x",
                      "batch:60001", "ALWAYS", ""):
            with self.subTest(value=value):
                conf = self.conf(value)
                r = subprocess.run([TALLYD, "-n", "-f", conf],
                                   capture_output=True, text=True, timeout=30)
                self.assertNotEqual(r.returncode, 0, r.stdout)
                self.assertIn("fsync", r.stderr)
                if value:
                    self.assertIn(value, r.stderr)


if __name__ == "__main__":
    main()
