#!/usr/bin/python3
"""bench/page.py - the election-night page in headless chromium: its weight,
its time to first render, and whether it stays smooth under a burst of
versions.

    /usr/bin/python3 bench/page.py [--tallyd build-release/daemon/tallyd]
        [--seconds 10] [--rate 10] [--poll]

For Iraq 2018 (made-up partial results, 23 provinces) and a synthetic
election of 100 provinces x 12 coalitions, each on a fresh tallyd on
loopback:

  weight   GET / plain and gzip bytes (the page; its data comes after it)
  render   Navigation Timing (DOMContentLoaded, load), first contentful
           paint, and the page's own mark 'tallyd-first-render' (headline,
           hemicycle, ranking and provinces drawn from the daemon's data);
           median of 5 loads, each in a fresh tab
  smooth   while versions arrive --rate times a second for --seconds (one
           province snapshot per POST, rotating), long tasks (> 50 ms,
           PerformanceObserver 'longtask') and the versions the page showed

Debian's python3 (for python3-selenium), chromium and chromium-driver.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

OBSERVER = """
window.__long = [];
try {
  new PerformanceObserver(function (l) {
    l.getEntries().forEach(function (e) { window.__long.push(e.duration); });
  }).observe({ type: 'longtask', buffered: true });
} catch (e) {}
"""


def synthetic(n_prov=100, n_co=12):
    cos = [{"id": "c%02d" % i, "name": "Coalition %d" % i, "short": "C%d" % i,
            "color": "#%02x%02x%02x" % ((i * 53) % 256, (i * 101) % 256,
                                        (i * 197) % 256)}
           for i in range(n_co)]
    provs = [{"id": "p%03d" % i, "name": "Province %d" % i,
              "seats": 3 + i % 8} for i in range(n_prov)]
    return {"id": "syn-100", "name": "Synthetic, 100 provinces",
            "allocation": {"method": "dhondt", "ties": "votes"},
            "coalitions": cos, "provinces": provs}


def feeds(election, revision, seed):
    import random
    rnd = random.Random(seed)
    out = []
    for p in election["provinces"]:
        votes = {c["id"]: rnd.randint(100, 50000)
                 for c in election["coalitions"][:12]}
        out.append({"province": p["id"], "revision": revision,
                    "votes": votes, "blank": 100, "invalid": 50,
                    "stations": {"reporting": 50, "total": 100},
                    "status": "partial"})
    return out


def measure(name, election_path, election, first_batch, args):
    d = Daemon(args=["--election", election_path],
               env={"TALLYD_INGEST_TOKEN": TOKEN})
    d.start()
    try:
        r = d.request("POST", "/v1/results", body={"results": first_batch},
                      headers=AUTH)
        assert r.status == 201, r.body
        plain = len(d.get("/").body)
        gz = len(d.get("/", headers={"Accept-Encoding": "gzip"}).body)
        drv, profile = chrome()
        drv.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                            {"source": OBSERVER})
        drv.set_window_size(1280, 900)
        url = "http://127.0.0.1:%d/%s" % (d.port, "?poll=1" if args.poll
                                           else "")
        runs = []
        for _ in range(5):
            drv.get("about:blank")
            drv.get(url)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                m = drv.execute_script(
                    "var m = performance.getEntriesByName('tallyd-first-render');"
                    "return m.length ? m[0].startTime : null;")
                if m is not None:
                    break
                time.sleep(0.02)
            nav = drv.execute_script(
                "var n = performance.getEntriesByType('navigation')[0];"
                "var p = performance.getEntriesByName('first-contentful-paint');"
                "return [n.domContentLoadedEventEnd, n.loadEventEnd,"
                " p.length ? p[0].startTime : null];")
            runs.append((nav[0], nav[1], nav[2], m))
        med = [statistics.median([r[i] for r in runs if r[i] is not None])
               for i in range(4)]

        # A burst: `rate` versions a second for `seconds`.
        drv.execute_script("window.__long = []; window.tallydRenderStats = "
                           "{n: 0, total: 0, max: 0};")
        n = int(args.rate * args.seconds)
        provs = election["provinces"]
        rev = {}
        t0 = time.monotonic()
        v0 = int(drv.execute_script(
            "return document.getElementById('version').textContent"))
        seen = set()
        # Each snapshot names the lists its province had (a snapshot is
        # cumulative: a list once counted may not disappear), counts grow.
        lists = {x["province"]: dict(x["votes"]) for x in first_batch}
        import random
        rnd = random.Random(7)
        for i in range(n):
            p = provs[i % len(provs)]["id"]
            rev[p] = rev.get(p, 1) + 1
            votes = lists.setdefault(p, {c["id"]: 100 for c in
                                         election["coalitions"][:12]})
            for k in votes:
                votes[k] += rnd.randint(0, 3000)
            body = {"revision": rev[p], "votes": votes, "blank": 100,
                    "invalid": 50, "status": "partial"}
            r = d.request("POST", "/v1/provinces/%s/results" % p, body=body,
                          headers=AUTH)
            assert r.status == 201, r.body
            if i % 3 == 0:
                seen.add(drv.execute_script(
                    "return document.getElementById('version').textContent"))
            delay = t0 + (i + 1) / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        time.sleep(1.5)
        last = int(drv.execute_script(
            "return document.getElementById('version').textContent"))
        longs = drv.execute_script("return window.__long;")
        rs = drv.execute_script("return window.tallydRenderStats;")
        mode = drv.execute_script(
            "return document.getElementById('conn').dataset.state")
        drv.quit()
        import shutil
        shutil.rmtree(profile, ignore_errors=True)
        print("%-8s page %6d B, gzip %5d B | DOMContentLoaded %5.0f ms, "
              "load %5.0f ms, FCP %5.0f ms, first render %5.0f ms | "
              "%d versions at %g/s (%s): page showed v%d..v%d (%d samples), "
              "renders %d (mean %.1f ms, max %.1f ms), "
              "long tasks %d (max %.0f ms)" % (
                  name, plain, gz, med[0], med[1], med[2], med[3], n,
                  args.rate, mode, v0, last, len(seen), rs["n"],
                  rs["total"] / max(rs["n"], 1), rs["max"], len(longs),
                  max(longs) if longs else 0))
    finally:
        d.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tallyd", default=os.path.join(
        HERE, "..", "build-release", "daemon", "tallyd"))
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rate", type=float, default=10)
    ap.add_argument("--poll", action="store_true",
                    help="the page long-polls instead of using /v1/events")
    args = ap.parse_args()
    args.tallyd = os.path.abspath(args.tallyd)
    os.environ["TALLYD"] = args.tallyd
    global Daemon, DEFAULT_ELECTION, TOKEN, AUTH, chrome, iraq_results
    from harness import Daemon, DEFAULT_ELECTION
    from test_page import TOKEN, AUTH, chrome, iraq_results
    with open(DEFAULT_ELECTION) as f:
        iraq = json.load(f)
    measure("iraq", DEFAULT_ELECTION, iraq, iraq_results()["results"], args)
    syn = synthetic()
    tmp = tempfile.mkdtemp(prefix="tallyd-page-")
    path = os.path.join(tmp, "syn.json")
    with open(path, "w") as f:
        json.dump(syn, f)
    measure("syn-100", path, syn, feeds(syn, 1, 0), args)


if __name__ == "__main__":
    main()
