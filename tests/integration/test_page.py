#!/usr/bin/env python3
"""The election-night page (GET /) and the hemicycle image
(GET /v1/leaderboard.svg).

Over HTTP, in every build: both are cached views (ETag, 304, gzip once),
the SVG is well-formed with one mark per seat, names in other languages are
in /v1/election.

In a real browser (Debian's chromium, headless, driven by chromedriver via
python3-selenium), once per `scripts/test` run (TALLYD_BROWSER_TESTS=1, set
for the release build): Spain 2019 posted as one batch shows PSOE first with
123 seats and 350 seat marks; a further POST changes the page without a
reload within 2 s; the Zaragoza drill-down shows the 54 votes Cs lacked for
a seat; no console errors; no horizontal scroll at 360 px; ?lang=ar on Iraq
is right to left with Arabic names; the keyboard reaches the drill-down.
With two contests (Spain 2019, Czechia 2017) / is the night: a card each
from /v1/contests, following posts; a card opens that contest's page
(?contest=ID), live; one contest is today's page.
Screenshots go to TALLYD_ARTIFACTS (desktop, phone, Arabic, night).
"""
import json
import os
import random
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

from harness import (CheckedDaemonTest, ELECTIONS, DEFAULT_ELECTION, gunzip,
                     main, may_skip)

TOKEN = "page-test-ingest-token-0123456789"
AUTH = {"Authorization": "Bearer " + TOKEN}
SVGNS = "{http://www.w3.org/2000/svg}"
ES = os.path.join(ELECTIONS, "es-2019-04")


def load(path):
    with open(path) as f:
        return json.load(f)


def iraq_results(seed=1, share=0.75):
    """Made-up partial results for most of Iraq's provinces (not real)."""
    rnd = random.Random(seed)
    e = load(DEFAULT_ELECTION)
    ids = [c["id"] for c in e["coalitions"]]
    out = []
    for i, p in enumerate(e["provinces"]):
        if rnd.random() > share:
            continue
        lists = set(rnd.sample(ids[:14], 6) + rnd.sample(ids, 3))
        total = 4000 + 10 * i
        out.append({"province": p["id"], "revision": 1,
                    "votes": {c: rnd.randint(1000, 200000) for c in lists},
                    "blank": 500, "invalid": 900,
                    "stations": {"reporting": rnd.randint(total // 3, total),
                                 "total": total},
                    "status": rnd.choice(["partial", "partial", "final"])})
    return {"results": out}


def browser_wanted():
    return os.environ.get("TALLYD_BROWSER_TESTS") == "1"


def chrome():
    """A headless chromium with a new empty profile, or skip."""
    try:
        from selenium import webdriver
    except ImportError:
        # meson may run a python3 other than Debian's (pyenv): use Debian's
        # python3-selenium all the same.
        sys.path.append("/usr/lib/python3/dist-packages")
        try:
            from selenium import webdriver
        except ImportError:
            raise unittest.SkipTest("python3-selenium is not installed")
    from selenium.webdriver.chrome.service import Service
    if not os.path.exists("/usr/bin/chromedriver"):
        raise unittest.SkipTest("chromium-driver is not installed")
    profile = tempfile.mkdtemp(prefix="tallyd-chromium-")
    opts = webdriver.ChromeOptions()
    for a in ("--headless", "--no-sandbox", "--disable-gpu",
              "--disable-dev-shm-usage", "--no-first-run",
              "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--user-data-dir=" + profile):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"),
                         options=opts)
    d.set_script_timeout(10)
    return d, profile


class Http(CheckedDaemonTest):
    def test_page_is_a_cached_view(self):
        d = self.daemon()
        r = d.get("/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
        body = r.body.decode("utf-8")
        self.assertIn('id="hemicycle"', body)
        self.assertIn("<script>", body)
        self.assertNotIn('src="app.js"', body)   # inlined at build time
        self.assertNotIn("http://", body.replace("http://www.w3.org", ""))
        self.assertNotIn("https://", body)        # no external asset
        self.assertLess(len(r.body), 100 * 1024)
        etag = r.header("ETag")
        self.assertTrue(etag)
        self.assertIn("max-age=", r.header("Cache-Control"))
        self.assertEqual(d.get("/", headers={"If-None-Match": etag}).status,
                         304)
        g = d.get("/", headers={"Accept-Encoding": "gzip"})
        self.assertEqual(g.header("Content-Encoding"), "gzip")
        self.assertEqual(gunzip(g.body), r.body)
        # The page does not change with the tally.
        d.request("POST", "/v1/results", body=iraq_results(), headers=AUTH)
        self.assertEqual(d.get("/").header("ETag"), etag)
        self.assertEqual(d.request("HEAD", "/").status, 200)
        self.assertEqual(d.request("POST", "/").status, 405)

    def test_svg_is_a_cached_view_per_version(self):
        d = self.daemon(args=["--election", os.path.join(ES, "election.json")],
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        r = d.get("/v1/leaderboard.svg")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "image/svg+xml")
        root = ET.fromstring(r.body)
        seats = root.findall(".//" + SVGNS + "circle[@class='seat']")
        self.assertEqual(len(seats), 350)
        self.assertIn("Majority 176", r.body.decode())
        empty_tag = r.header("ETag")
        p = d.request("POST", "/v1/results", body=load(os.path.join(
            ES, "results.json")), headers=AUTH)
        self.assertEqual(p.status, 201, p.body)
        r = d.get("/v1/leaderboard.svg")
        self.assertNotEqual(r.header("ETag"), empty_tag)
        root = ET.fromstring(r.body)
        groups = root.findall(".//" + SVGNS + "g[@data-coalition]")
        self.assertEqual(groups[0].get("data-coalition"), "000096")
        self.assertEqual(groups[0].get("fill"), "#e30613")
        self.assertEqual(len(groups[0].findall(SVGNS + "circle")), 123)
        self.assertEqual(sum(len(g.findall(SVGNS + "circle")) for g in groups),
                         350)
        self.assertEqual(d.get("/v1/leaderboard.svg", headers={
            "If-None-Match": r.header("ETag")}).status, 304)
        g = d.get("/v1/leaderboard.svg", headers={"Accept-Encoding": "gzip"})
        self.assertEqual(gunzip(g.body), r.body)
        # Kept versions: the image as it was, immutable.
        self.assertEqual(r.header("Content-Location"),
                         "/v1/versions/%s/leaderboard.svg" %
                         r.header("ETag").strip('"'))
        v1 = d.get(r.header("Content-Location"))
        self.assertEqual(v1.status, 200)
        self.assertEqual(v1.header("Content-Type"), "image/svg+xml")
        self.assertIn("immutable", v1.header("Cache-Control"))
        self.assertEqual(v1.header("ETag"), r.header("ETag"))
        self.assertEqual(v1.body, r.body)
        # Version 0 was served (the empty chart above), so it is kept.
        v0 = d.get("/v1/versions/%s/leaderboard.svg" % empty_tag.strip('"'))
        self.assertEqual(v0.status, 200)
        root = ET.fromstring(v0.body)
        self.assertEqual(len(root.findall(
            ".//" + SVGNS + "g[@class='unallocated']/" + SVGNS + "circle")),
            350)
        self.assertEqual(d.get("/v1/versions/9/leaderboard.svg").status, 404)

    def test_election_has_arabic_names(self):
        d = self.daemon()
        e = d.get("/v1/election").json()
        self.assertEqual(e["names"]["ar"][:6], "العراق")
        pv = {p["id"]: p for p in e["provinces"]}
        self.assertEqual(len([p for p in e["provinces"] if "ar" in p.get(
            "names", {})]), 23)
        self.assertEqual(pv["baghdad"]["names"]["ar"], "بغداد")
        co = {c["id"]: c for c in e["coalitions"]}
        self.assertEqual(co["sairoon"]["names"]["ar"], "تحالف سائرون")
        self.assertEqual(co["fatah"]["names"]["ar"], "تحالف الفتح")
        self.assertEqual(co["nasr"]["names"]["ar"], "ائتلاف النصر")


@may_skip("browser", "the browser tests run once per scripts/test, in the "
          "release build")
@unittest.skipUnless(browser_wanted(), "browser tests run once per scripts/test "
                     "(TALLYD_BROWSER_TESTS=1)")
class Browser(CheckedDaemonTest):
    @classmethod
    def setUpClass(cls):
        cls.driver, cls.profile = chrome()
        cls.artifacts = os.environ.get("TALLYD_ARTIFACTS") or tempfile.mkdtemp()
        os.makedirs(cls.artifacts, exist_ok=True)

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        import shutil
        shutil.rmtree(cls.profile, ignore_errors=True)

    def wait(self, js, timeout=5.0, what=None):
        """Poll a JS expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.driver.execute_script("return (" + js + ");")
            if v:
                return v
            if time.monotonic() > deadline:
                self.fail("timed out: %s" % (what or js))
            time.sleep(0.05)

    def console_errors(self, d):
        errs = [e for e in self.driver.get_log("browser")
                if e["level"] == "SEVERE"]
        if not d.has_events:
            # Without /v1/events the page's first try is a 404 (logged by
            # the browser itself), then it polls.
            errs = [e for e in errs if "/v1/events" not in e["message"]]
        return errs

    def shot(self, name):
        h = self.driver.execute_script(
            "return document.documentElement.scrollHeight")
        w = self.driver.execute_script("return window.outerWidth")
        self.driver.set_window_size(w, min(h + 140, 3000))
        time.sleep(0.3)
        self.driver.save_screenshot(os.path.join(self.artifacts, name))

    def start(self, election):
        d = self.daemon(args=["--election", election],
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        # A stream answers 200 at once; without one, a JSON 404.
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=5)
        c.request("GET", "/v1/events")
        d.has_events = c.getresponse().status == 200
        c.close()
        # Leave the page before the daemon stops (cleanups run last
        # first), and start with an empty console.
        self.addCleanup(self.driver.get, "about:blank")
        self.driver.get_log("browser")
        return d

    def test_spain(self):
        d = self.start(os.path.join(ES, "election.json"))
        r = d.request("POST", "/v1/results", body=load(os.path.join(
            ES, "results.json")), headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        drv = self.driver
        drv.set_window_size(1280, 900)
        drv.get("http://127.0.0.1:%d/" % d.port)
        first = "document.querySelector('#ranking tbody tr')"
        self.wait(first + " && " + first + ".dataset.coalition === '000096'",
                  what="PSOE first")
        self.assertEqual(drv.execute_script(
            "return " + first + ".querySelector('td[data-field=seats]')"
            ".textContent"), "123")
        self.assertEqual(drv.execute_script(
            "return document.querySelectorAll('#hemicycle .seat').length"), 350)
        self.assertEqual(drv.execute_script(
            "return document.querySelectorAll('#hemicycle "
            ".seat[data-coalition=\"000096\"]').length"), 123)
        self.assertEqual(drv.execute_script(
            "return document.querySelectorAll('#provinces [data-province]')"
            ".length"), 52)
        self.assertEqual(drv.execute_script(
            "return document.getElementById('version').textContent"), "1")
        # The event stream where the daemon has one, else polling.
        self.wait("document.getElementById('conn').dataset.state === '%s'" %
                  ("live" if d.has_events else "polling"),
                  what="the connection indicator")

        # Live: a correction in Zaragoza, no reload, within 2 s.
        drv.execute_script("window.__still_here = 42;")
        zgz = [x for x in load(os.path.join(ES, "results.json"))["results"]
               if x["province"] == "50"][0]
        zgz = dict(zgz, revision=2, note="Cs ballots found in one station")
        zgz["votes"] = dict(zgz["votes"])
        zgz["votes"]["000022"] += 100
        zgz["votes"]["000096"] -= 100
        del zgz["province"]
        t0 = time.monotonic()
        r = d.request("POST", "/v1/provinces/50/results", body=zgz,
                      headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        self.wait("document.getElementById('version').textContent === '2'",
                  timeout=2.0, what="version 2 shown within 2 s")
        self.wait("document.querySelector('#ticker li')", timeout=2.0,
                  what="the ticker names the change")
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertEqual(drv.execute_script("return window.__still_here"), 42,
                         "the page reloaded")
        self.assertIn("Zaragoza", drv.execute_script(
            "return document.querySelector('#ticker li').textContent"))
        # Cs took PSOE's last seat in Zaragoza: 122 seats, shown as -1.
        self.wait("document.querySelector('#ranking tr[data-coalition=\"000096\"]"
                  " td[data-field=seats]').textContent === '122'",
                  timeout=2.0, what="PSOE 122 after the correction")
        self.assertEqual(drv.execute_script(
            "return document.querySelector('#ranking tr[data-coalition=\"000096\"]"
            " td[data-field=change]').textContent"), "\u22121")
        self.shot("desktop.png")

        # The drill-down: Zaragoza as first posted, where Cs lacked 54 votes.
        drv.set_window_size(1280, 900)
        drv.get("http://127.0.0.1:%d/#/provinces/50" % d.port)
        self.wait("document.querySelector('#drill-history li.correction')",
                  what="the correction is highlighted")
        hist = drv.execute_script(
            "return document.getElementById('drill-history').textContent")
        self.assertIn("Cs ballots found", hist)
        self.assertEqual(drv.execute_script(
            "return location.hash"), "#/provinces/50")
        self.assertTrue(drv.execute_script(
            "return document.getElementById('overview').hidden"))
        # Revision 1's numbers: post it to a fresh daemon to see the 54.
        d2 = self.start(os.path.join(ES, "election.json"))
        d2.request("POST", "/v1/results", body=load(os.path.join(
            ES, "results.json")), headers=AUTH)
        drv.get("http://127.0.0.1:%d/#/provinces/50" % d2.port)
        gap = self.wait(
            "Array.from(document.querySelectorAll('#drill-lists "
            "td[data-field=next_seat_votes]')).map(function (e) "
            "{ return e.textContent; }).indexOf('54') >= 0",
            what="the 54-vote gap")
        self.assertTrue(gap)
        self.assertIn("Zaragoza", drv.execute_script(
            "return document.getElementById('drill-title').textContent"))
        self.assertTrue(drv.execute_script(
            "return document.querySelectorAll('#drill-steps li').length === 7"))

        # The keyboard reaches a province and its drill-down.
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.common.action_chains import ActionChains
        drv.get("http://127.0.0.1:%d/" % d2.port)
        self.wait("document.querySelector('#provinces a')")
        for _ in range(80):
            ActionChains(drv).send_keys(Keys.TAB).perform()
            if drv.execute_script("return !!document.activeElement.closest("
                                  "'#provinces tbody a')"):
                break
        else:
            self.fail("Tab never reached a province link")
        ActionChains(drv).send_keys(Keys.ENTER).perform()
        self.wait("document.activeElement.id === 'drill-title'",
                  what="focus moves to the drill-down's heading")
        self.assertTrue(drv.execute_script(
            "return location.hash.indexOf('#/provinces/') === 0"))

        # A phone: no horizontal scroll.  A headless window is never
        # narrower than 500 px: the phone is emulated.
        drv.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": 360, "height": 780, "deviceScaleFactor": 2,
            "mobile": True})
        drv.get("http://127.0.0.1:%d/" % d2.port)
        self.wait("document.querySelectorAll('#hemicycle .seat').length === 350")
        time.sleep(0.3)
        iw, sw, cw = drv.execute_script(
            "return [window.innerWidth, document.documentElement.scrollWidth, "
            "document.documentElement.clientWidth]")
        self.assertEqual(iw, 360)
        self.assertLessEqual(sw, cw, "horizontal scroll at 360 px")
        drv.save_screenshot(os.path.join(self.artifacts, "phone.png"))
        drv.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        self.assertEqual(self.console_errors(d), [])

    def test_polling_fallback(self):
        """Without the stream (?poll=1 stands in for a daemon or a proxy
        that lacks it) the page long-polls with If-None-Match."""
        d = self.start(DEFAULT_ELECTION)
        batch = iraq_results()
        r = d.request("POST", "/v1/results", body=batch, headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        drv = self.driver
        drv.get("http://127.0.0.1:%d/?poll=1" % d.port)
        self.wait("document.getElementById('conn').dataset.state === "
                  "'polling' && document.getElementById('version')"
                  ".textContent === '1'")
        drv.execute_script("window.__still_here = 7;")
        one = dict(batch["results"][0], revision=2)
        pid = one.pop("province")
        one["votes"] = {k: v + 1000 for k, v in one["votes"].items()}
        r = d.request("POST", "/v1/provinces/%s/results" % pid, body=one,
                      headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        self.wait("document.getElementById('version').textContent === '2'",
                  timeout=2.0, what="version 2 within 2 s by polling")
        self.assertEqual(drv.execute_script("return window.__still_here"), 7)
        self.assertEqual(self.console_errors(d), [])

    def test_log_section(self):
        """The footer names the signed results log: the checkpoint's
        size (= the version) and root, as /log/checkpoint has them."""
        d = self.start(DEFAULT_ELECTION)
        batch = iraq_results()
        r = d.request("POST", "/v1/results", body=batch, headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        self.driver.get("http://127.0.0.1:%d/" % d.port)
        self.wait("!document.getElementById('log').hidden && "
                  "document.getElementById('log-size').textContent === '1'",
                  what="the log section at size 1")
        cp = d.get("/log/checkpoint").body.decode().split("\n")
        self.assertEqual(cp[1], "1")
        self.assertEqual(self.driver.execute_script(
            "return document.getElementById('log-root').textContent"), cp[2])
        self.assertEqual(self.driver.execute_script(
            "return document.querySelector('#log a[href=\"/log/key\"]')"
            " !== null"), True)
        self.assertEqual(self.console_errors(d), [])

    def test_iraq_in_arabic(self):
        d = self.start(DEFAULT_ELECTION)
        batch = iraq_results()
        # A tie for the Yazidi seat: pending until a lot is drawn.
        batch["results"] = [x for x in batch["results"]
                            if x["province"] != "quota-yazidi"]
        batch["results"].append({"province": "quota-yazidi", "revision": 1,
                                 "votes": {"sairoon": 500, "fatah": 500}})
        r = d.request("POST", "/v1/results", body=batch, headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        drv = self.driver
        drv.set_window_size(1280, 900)
        drv.get("http://127.0.0.1:%d/?lang=ar" % d.port)
        self.wait("document.querySelectorAll('#provinces [data-province]')"
                  ".length === 23")
        self.assertEqual(drv.execute_script(
            "return document.documentElement.dir"), "rtl")
        self.assertEqual(drv.execute_script(
            "return document.documentElement.lang"), "ar")
        self.assertIn("مجلس النواب", drv.execute_script(
            "return document.getElementById('election-name').textContent"))
        self.assertEqual(drv.execute_script(
            "return document.querySelector('#provinces "
            "[data-province=baghdad] th').textContent"), "بغداد")
        self.assertEqual(drv.execute_script(
            "return document.querySelectorAll('#hemicycle .seat').length"), 329)
        self.assertTrue(drv.execute_script(
            "return document.querySelector('#lang').value === 'ar'"))
        # The pending seat is hatched, focusable, and names the tied lists.
        self.wait("document.querySelectorAll('#hemicycle .seat.pending')"
                  ".length === 1", what="one pending seat")
        self.wait("(function () { var s = document.querySelector("
                  "'#hemicycle .seat.pending'); s.focus(); var t = "
                  "document.getElementById('hemi-tip'); return !t.hidden && "
                  "t.textContent.indexOf('سائرون') >= 0 && "
                  "t.textContent.indexOf('الفتح') >= 0; })()",
                  what="the tied lists on focus")
        # The map tallyd draws in English is relabelled in Arabic: its
        # title, each tile's name and tooltip, the legend.
        self.wait("(function () { var t = document.querySelector("
                  "'#map svg > title'); return t && t.textContent.indexOf("
                  "'حسب المحافظة') >= 0; })()", what="the map's title")
        m = drv.execute_script("""
            var g = document.querySelector('#map rect[data-province=baghdad]')
                .parentNode;
            return [g.querySelector('rect.province title').textContent,
                    g.querySelector('text').textContent,
                    document.querySelector('#map svg > text').textContent,
                    Array.prototype.map.call(document.querySelectorAll(
                        '#map g.legend text'), function (e) {
                        return e.textContent; })];""")
        self.assertTrue(m[0].startswith("بغداد: المتصدر "), m)
        self.assertIn("69", m[0])
        self.assertEqual(m[1], "بغداد")
        self.assertIn("مجلس النواب", m[2])
        self.assertIn("تحالف الفتح", m[3])
        self.assertNotIn("not reporting", m[3])
        self.shot("arabic.png")
        self.assertEqual(self.console_errors(d), [])

    # Every element of a card inside the card; every cell's text inside its
    # cell (a clipped leading digit turned 87.50 into "37.50" in Arabic).
    OVERFLOW_JS = """
    var bad = [];
    function inside(r, c) {
      return r.left >= c.left - 0.5 && r.right <= c.right + 0.5;
    }
    function what(e) {
      return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
        (e.className && e.className.baseVal === undefined && e.className ?
         '.' + e.className : '') + ' "' + (e.textContent || '').slice(0, 30) +
        '"';
    }
    document.querySelectorAll('.card, .headline, .top, .scroll').forEach(
        function (card) {
      if (!card.getClientRects().length) return;
      var c = card.getBoundingClientRect();
      if (c.right > window.innerWidth + 0.5 || c.left < -0.5)
        bad.push('card ' + what(card) + ' leaves the window: ' +
                 c.left + '..' + c.right + ' of ' + window.innerWidth);
      card.querySelectorAll('*').forEach(function (e) {
        if (!e.getClientRects().length || e.closest('.sr, [hidden]')) return;
        var r = e.getBoundingClientRect();
        if (r.width === 0 || r.height === 0) return;
        var box = card.classList.contains('scroll') ? card : c;
        if (card.classList.contains('scroll')) return;
        if (!inside(r, c))
          bad.push(what(e) + ' ' + r.left.toFixed(1) + '..' +
                   r.right.toFixed(1) + ' outside its card ' +
                   c.left.toFixed(1) + '..' + c.right.toFixed(1));
      });
    });
    document.querySelectorAll('#provinces td, #provinces th, #ranking td, ' +
                              '#ranking th').forEach(function (td) {
      if (!td.getClientRects().length) return;
      var c = td.getBoundingClientRect();
      td.querySelectorAll('*').forEach(function (e) {
        if (!e.getClientRects().length || e.closest('.sr')) return;
        var r = e.getBoundingClientRect();
        if (r.width && !inside(r, c))
          bad.push(what(e) + ' ' + r.left.toFixed(1) + '..' +
                   r.right.toFixed(1) + ' outside its cell ' +
                   c.left.toFixed(1) + '..' + c.right.toFixed(1));
      });
    });
    var sw = document.documentElement.scrollWidth;
    if (sw > document.documentElement.clientWidth)
      bad.push('horizontal scroll: ' + sw + ' > ' +
               document.documentElement.clientWidth);
    return bad;
    """

    def overflow_at(self, url, widths, ready, shots=()):
        drv = self.driver
        problems = []
        for w in widths:
            drv.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": w, "height": 900, "deviceScaleFactor": 1,
                "mobile": w < 600})
            drv.get(url)
            self.wait(ready, what="the page at %d px" % w)
            # The provinces and the ticker are laid out when seen
            # (content-visibility): bring them into view first.
            drv.execute_script("window.scrollTo(0, document.body"
                               ".scrollHeight);")
            time.sleep(0.4)
            for p in drv.execute_script(self.OVERFLOW_JS)[:8]:
                problems.append("%d px: %s" % (w, p))
            if w in shots:
                drv.execute_script("window.scrollTo(0, 0);")
                h = drv.execute_script(
                    "return document.documentElement.scrollHeight")
                drv.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                    "width": w, "height": min(h, 5000),
                    "deviceScaleFactor": 1, "mobile": w < 600})
                time.sleep(0.4)
                drv.execute_script("window.scrollTo(0, 0);")
                png = drv.execute_cdp_cmd("Page.captureScreenshot", {
                    "format": "png"})
                import base64
                with open(os.path.join(self.artifacts, shots[w]), "wb") as f:
                    f.write(base64.b64decode(png["data"]))
        drv.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        return problems

    def test_no_overflow_from_360_to_1920_px(self):
        """LTR (Spain, long names, 52 provinces) and RTL (Iraq in Arabic,
        stations counted): nothing wider than its card, no cell's text
        outside its cell, no horizontal scroll."""
        widths = (360, 414, 560, 561, 640, 768, 900, 901, 1024, 1280, 1440,
                  1920)
        d = self.start(os.path.join(ES, "election.json"))
        r = d.request("POST", "/v1/results", body=load(os.path.join(
            ES, "results.json")), headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        problems = self.overflow_at(
            "http://127.0.0.1:%d/" % d.port, widths,
            "document.querySelectorAll('#provinces [data-province]').length"
            " === 52 && document.querySelectorAll('#hemicycle .seat')"
            ".length === 350", shots={1280: "overflow-ltr-1280.png"})
        d2 = self.start(DEFAULT_ELECTION)
        batch = iraq_results(share=1.0)
        for x in batch["results"]:
            # 87.50 % of stations: the leading digit must stay.
            x["stations"] = {"reporting": 3500, "total": 4000}
        r = d2.request("POST", "/v1/results", body=batch, headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        problems += self.overflow_at(
            "http://127.0.0.1:%d/?lang=ar" % d2.port, widths,
            "document.querySelectorAll('#provinces [data-province]').length"
            " === 23 && document.documentElement.dir === 'rtl'",
            shots={1280: "overflow-rtl-1280.png", 768: "overflow-rtl-768.png",
                   360: "overflow-rtl-360.png"})
        self.assertEqual(problems, [], "\n".join(problems))
        self.assertEqual(self.console_errors(d2), [])

    # Where a cell's "%" is drawn against its digits: [x of the sign, x of
    # the first digit, x of the last digit], in CSS pixels, or null.
    SIGN_JS = """
    var cell = arguments[0], node = null, w = document.createTreeWalker(
        cell, NodeFilter.SHOW_TEXT);
    while (w.nextNode()) if (/[%\u066a]/.test(w.currentNode.data)) {
      node = w.currentNode; break; }
    if (!node) return null;
    function x(i) { var r = document.createRange(); r.setStart(node, i);
      r.setEnd(node, i + 1); return r.getBoundingClientRect().left; }
    // The figure the sign belongs to: the digits just before it in the
    // text, across bidi marks and spaces.
    var s = node.data, k = s.search(/[%\u066a]/), i = k - 1, first, last;
    while (i >= 0 && /[\u200e\u200f\u061c\u2068\u2069 \u00a0]/.test(s[i]))
      i--;
    last = i;
    while (i >= 0 && /[0-9\u0660-\u0669\u06f0-\u06f9.,\u066b\u066c]/.test(
        s[i])) if (/[.,\u066b\u066c]/.test(s[i--]) === false) first = i + 1;
    if (last < 0 || first === undefined) return null;
    return [x(k), x(first), x(last)];
    """

    def test_arabic_percentages_read_correctly(self):
        """In Arabic (right to left) every percentage is the locale's form,
        isolated from the text around it, and drawn with the sign after
        the figure as the locale writes it: it read "% 9.06" (a figure and
        a no-break space and a sign, glued by hand).  The same cells in
        English read "9.06%"."""
        d = self.start(DEFAULT_ELECTION)
        batch = iraq_results(share=1.0)
        for x in batch["results"]:
            x["stations"] = {"reporting": 3500, "total": 4000}
        r = d.request("POST", "/v1/results", body=batch, headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        drv = self.driver
        drv.set_window_size(1280, 900)
        expect = drv.execute_script(
            "return new Intl.NumberFormat('ar', {style: 'percent', "
            "minimumFractionDigits: 2, maximumFractionDigits: 2})"
            ".format(0.875)")
        for lang, fsi, pdi in (("ar", "\u2068", "\u2069"), ("en", "", "")):
            drv.get("http://127.0.0.1:%d/?lang=%s" % (d.port, lang))
            self.wait("document.querySelectorAll('#provinces [data-province]"
                      "').length === 23 && document.querySelector('#ranking "
                      "tbody tr td:nth-child(4)')")
            drv.execute_script("window.scrollTo(0, document.body"
                               ".scrollHeight);")
            time.sleep(0.4)
            cells = drv.find_elements(
                "css selector", "#ranking tbody tr td:nth-child(4), "
                "#provinces td.progress-cell .pct, #stat-stations")
            self.assertGreater(len(cells), 10)
            progress = drv.find_element(
                "css selector", "#provinces tr[data-province=baghdad] "
                "td.progress-cell .pct")
            self.assertEqual(progress.get_attribute("textContent"),
                             fsi + (expect if lang == "ar" else "87.50%") +
                             pdi)
            for c in cells:
                text = c.get_attribute("textContent")
                with self.subTest(lang=lang, text=text):
                    self.assertNotIn("\u00a0%", text)
                    self.assertNotIn(" %", text)
                    if fsi:
                        self.assertIn(fsi, text)
                        self.assertEqual(text.count(fsi), text.count(pdi))
                    where = drv.execute_script(self.SIGN_JS, c)
                    self.assertIsNotNone(where, text)
                    sign, first, last = where
                    # Latin digits in both: the sign right of the figure.
                    self.assertGreater(sign, last, text)
                    self.assertGreater(last, first, text)
            if lang == "ar":
                self.shot("percent-ar-1280.png")
        self.assertEqual(self.console_errors(d), [])

    def test_progress_on_narrow_screens(self):
        """At 560 px and less the Provinces progress is shown, compact (the
        figure over a thin bar): it was hidden.  Both directions."""
        d = self.start(DEFAULT_ELECTION)
        batch = iraq_results(share=1.0)
        for x in batch["results"]:
            x["stations"] = {"reporting": 3500, "total": 4000}
        r = d.request("POST", "/v1/results", body=batch, headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        drv = self.driver
        for lang in ("ar", "en"):
            drv.get("about:blank")
            for w in (360, 414, 560):
                drv.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                    "width": w, "height": 900, "deviceScaleFactor": 1,
                    "mobile": True})
                if w == 360:
                    drv.get("http://127.0.0.1:%d/?lang=%s" % (d.port, lang))
                self.wait("document.querySelectorAll('#provinces "
                          "[data-province]').length === 23", timeout=15,
                          what="the page at %d px in %s" % (w, lang))
                drv.execute_script("document.getElementById('provinces')"
                                   ".scrollIntoView();")
                time.sleep(0.4)
                got = drv.execute_script("""
                    var th = document.querySelector('#provinces th.progress-col'),
                        c = document.querySelector('#provinces '
                          + 'tr[data-province=baghdad] td.progress-cell'),
                        bar = c.querySelector('.progress'),
                        fill = bar.querySelector('i'),
                        pct = c.querySelector('.pct'),
                        card = c.closest('.card').getBoundingClientRect(),
                        r = c.getBoundingClientRect(),
                        b = bar.getBoundingClientRect(),
                        f = fill.getBoundingClientRect();
                    return {header: th.getClientRects().length > 0,
                            cell: r.width, bar: b.width, fill: f.width,
                            text: pct.getClientRects().length ?
                              pct.textContent : null,
                            inside: r.left >= card.left - 0.5 &&
                              r.right <= card.right + 0.5,
                            visible: getComputedStyle(bar).visibility};
                    """)
                with self.subTest(width=w, lang=lang):
                    self.assertTrue(got["header"], got)
                    self.assertGreater(got["cell"], 0, got)
                    self.assertGreaterEqual(got["bar"], 20, got)
                    self.assertAlmostEqual(got["fill"] / got["bar"], 0.88,
                                           delta=0.03)
                    self.assertEqual(got["visible"], "visible")
                    self.assertIn("87", got["text"] or "", got)
                    self.assertTrue(got["inside"], got)
                if w == 360:
                    import base64
                    png = drv.execute_cdp_cmd("Page.captureScreenshot", {
                        "format": "png"})
                    with open(os.path.join(self.artifacts, "narrow-%s-360.png"
                                           % lang), "wb") as f:
                        f.write(base64.b64decode(png["data"]))
        drv.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        self.assertEqual(self.console_errors(d), [])

    def test_progress_only_from_real_counts(self):
        """A partial count without station counts gets no bar (it had a
        made-up half bar); the national stations figure is a percentage
        only when every province sent station counts, and otherwise says
        which provinces it covers (it read "68.89 % of stations" for 5 of
        23)."""
        d = self.start(DEFAULT_ELECTION)
        batch = iraq_results(share=1.0)
        with_stations = []
        for i, x in enumerate(batch["results"]):
            if i % 4 == 0:
                with_stations.append(x["province"])
                x["stations"] = {"reporting": 30, "total": 40}
            else:
                del x["stations"]
        plain_partial = batch["results"][1]
        plain_partial["status"] = "partial"
        plain_final = batch["results"][2]
        plain_final["status"] = "final"
        r = d.request("POST", "/v1/results", body=batch, headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        drv = self.driver
        drv.set_window_size(1280, 900)
        drv.get("http://127.0.0.1:%d/" % d.port)
        self.wait("document.querySelectorAll('#provinces [data-province]')"
                  ".length === 23")
        time.sleep(0.3)

        def bar(pid):
            """[bar visible, its fill's width, the cell's text]"""
            return drv.execute_script(
                "var c = document.querySelector('#provinces tr[data-province="
                "\"' + arguments[0] + '\"] td.progress-cell'), "
                "b = c.querySelector('.progress'); return [getComputedStyle(b)"
                ".visibility !== 'hidden', b.querySelector('i').style.width, "
                "c.textContent]", pid)
        vis, width, text = bar(plain_partial["province"])
        self.assertFalse(vis and width not in ("0", "0%", ""),
                         "a bar of %s for a partial count without station "
                         "counts" % width)
        self.assertEqual(text, "\u2013")
        self.assertEqual(bar(plain_final["province"])[:2], [True, "100%"])
        self.assertEqual(bar(with_stations[0]), [True, "75%", "75.00%"])
        # Nationally: the counts and the provinces they cover, no percent.
        self.wait("!document.getElementById('stat-stations-box').hidden")
        text, covers = drv.execute_script(
            "var e = document.getElementById('stat-stations'); "
            "return [e.textContent, e.dataset.covers]")
        n = len(with_stations)
        self.assertEqual(text, "%d of %d in %d of 23 provinces" % (
            30 * n, 40 * n, n))
        self.assertNotIn("%", text)
        self.assertEqual(sorted(covers.split()), sorted(with_stations))
        # Every province with station counts: a national percentage.
        for x in batch["results"]:
            x["revision"] = 2
            x["stations"] = {"reporting": 30, "total": 40}
        r = d.request("POST", "/v1/results", body=batch, headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        self.wait("document.getElementById('stat-stations').dataset.covers"
                  " === 'all'", what="all provinces with station counts")
        self.assertEqual(drv.execute_script(
            "return document.getElementById('stat-stations').textContent"),
            "75.00% (690 of 920)")
        self.assertEqual(self.console_errors(d), [])

    def spain_with_corrections(self, d):
        """Spain as one batch, then three more versions: Zaragoza's
        correction (Cs takes a PSOE seat), Madrid and Sevilla again."""
        r = d.request("POST", "/v1/results", body=load(os.path.join(
            ES, "results.json")), headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        entries = {x["province"]: x for x in load(os.path.join(
            ES, "results.json"))["results"]}

        def again(pid, rev, moves):
            x = dict(entries[pid], revision=rev)
            x["votes"] = dict(x["votes"])
            for k, v in moves.items():
                x["votes"][k] += v
            del x["province"]
            r = d.request("POST", "/v1/provinces/%s/results" % pid, body=x,
                          headers=AUTH)
            self.assertEqual(r.status, 201, r.body)
        return again

    def test_ticker_seeded_from_history(self):
        """Opened after results came in, the ticker lists them, newest
        first, with the correction and the seat it moved (it was empty)."""
        d = self.start(os.path.join(ES, "election.json"))
        again = self.spain_with_corrections(d)
        # received_at counts whole seconds, and a history says no version:
        # a second apart, the order is known.
        for pid, moves in (("28", {"000096": 500}), ("41", {"000096": 300}),
                           ("50", {"000022": 100, "000096": -100})):
            time.sleep(1.05)
            again(pid, 2, moves)
        drv = self.driver
        drv.set_window_size(1280, 900)
        drv.get("http://127.0.0.1:%d/" % d.port)
        self.wait("document.querySelectorAll('#ticker li').length >= 4",
                  what="the ticker seeded from the history")
        first = drv.execute_script(
            "var li = document.querySelector('#ticker li'); return "
            "[li.dataset.province, li.dataset.revision, li.textContent, "
            "!!li.querySelector('.tag.correction')]")
        self.assertEqual(first[:2], ["50", "2"])
        self.assertIn("Zaragoza", first[2])
        self.assertIn("Cs +1", first[2])
        self.assertTrue(first[3], "the correction is marked")
        order = drv.execute_script(
            "return Array.from(document.querySelectorAll('#ticker li'))"
            ".slice(0, 3).map(function (l) { return l.dataset.province; })")
        self.assertEqual(order, ["50", "41", "28"])
        self.assertLessEqual(drv.execute_script(
            "return document.querySelectorAll('#ticker li').length"), 40)
        self.assertEqual(self.console_errors(d), [])

    def test_ticker_replays_in_version_order(self):
        """Opened late, the ticker is seeded from one request to
        /v1/changes (it read up to 20 provinces' histories, one request
        each), and revisions posted in the same second keep the order they
        were applied in (the histories said no version, so the same second
        was ordered by revision, then by chance)."""
        d = self.start(os.path.join(ES, "election.json"))
        again = self.spain_with_corrections(d)
        # Not the definition's order, all in (about) one second.
        for pid in ("50", "28", "41", "09"):
            again(pid, 2, {"000096": 10})
        drv = self.driver
        drv.set_window_size(1280, 900)
        drv.get("http://127.0.0.1:%d/" % d.port)
        self.wait("document.querySelectorAll('#ticker li[data-revision=\"2\"]')"
                  ".length >= 4", what="the ticker seeded from the changes")
        order = drv.execute_script(
            "return Array.from(document.querySelectorAll('#ticker li'))"
            ".slice(0, 4).map(function (l) { return l.dataset.province + '@'"
            " + l.dataset.version; })")
        self.assertEqual(order, ["09@5", "41@4", "28@3", "50@2"])
        urls = drv.execute_script(
            "return performance.getEntriesByType('resource')"
            ".map(function (e) { return e.name; })")
        self.assertEqual([u for u in urls if "/history" in u], [], urls)
        self.assertEqual(len([u for u in urls if "/v1/changes?since=" in u]),
                         1, urls)
        self.assertEqual(self.console_errors(d), [])

    def test_reconnect_catches_up(self):
        """Versions published while the page was cut off are listed one by
        one from the histories after it reconnects, under a visible line
        saying it caught up (before, the stream's snapshot was ignored)."""
        d = self.start(os.path.join(ES, "election.json"))
        if not d.has_events:
            self.skipTest("this daemon has no /v1/events")
        again = self.spain_with_corrections(d)
        drv = self.driver
        drv.set_window_size(1280, 900)
        drv.get("http://127.0.0.1:%d/" % d.port)
        self.wait("document.getElementById('conn').dataset.state === 'live'"
                  " && document.getElementById('version').textContent === "
                  "'1'", what="live at version 1")
        d.stop()
        self.wait("document.getElementById('conn').dataset.state !== 'live'",
                  what="the page notices the daemon went away")
        d.start()
        again("28", 2, {"000096": 500})
        again("41", 2, {"000096": 300})
        again("50", 2, {"000022": 100, "000096": -100})
        self.wait("document.getElementById('version').textContent === '4'",
                  timeout=15, what="version 4 after the reconnect")
        self.wait("document.querySelector('#ticker li.resync')", timeout=5,
                  what="a visible line: caught up after the reconnect")
        got = drv.execute_script(
            "return Array.from(document.querySelectorAll('#ticker "
            "li.from-history')).map(function (l) { return l.dataset.province"
            " + ':' + l.dataset.revision; })")
        for x in ("28:2", "41:2", "50:2"):
            self.assertIn(x, got)
        self.assertIn("versions 2 to 4", drv.execute_script(
            "return document.querySelector('#ticker li.resync').textContent"))
        self.assertEqual(drv.execute_script(
            "return document.querySelector('#ticker li').className"),
            "resync", "the line is above what it caught up")
        # Right under it, what it caught up, newest first, in version order
        # (the ticker was full already: opened at version 1, it was seeded
        # with that version's 52 provinces, so counting entries says
        # nothing).
        self.assertEqual(drv.execute_script(
            "return Array.from(document.querySelectorAll('#ticker li'))"
            ".slice(1, 4).map(function (l) { return l.dataset.province + ':'"
            " + l.dataset.revision + '@' + l.dataset.version; })"),
            ["50:2@4", "41:2@3", "28:2@2"])
        self.shot("reconnect.png")

    def test_night_of_two_contests(self):
        """Two contests (Spain April 2019, Czechia 2017): / is the night,
        a card per contest with what /v1/contests says; a card opens that
        contest's own view (?contest=ID, read from /v1/contests/ID/...),
        which follows its posts live; one contest is today's page."""
        cz = os.path.join(ELECTIONS, "cz-2017")
        d = self.daemon(args=["--election", os.path.join(ES, "election.json"),
                              "--election", os.path.join(cz, "election.json")],
                        env={"TALLYD_INGEST_TOKEN": TOKEN})
        self.addCleanup(self.driver.get, "about:blank")
        self.driver.get_log("browser")
        r = d.request("POST", "/v1/results", body=load(os.path.join(
            ES, "results.json")), headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        czr = load(os.path.join(cz, "results.json"))["results"]
        r = d.request("POST", "/v1/contests/cz-2017/results",
                      body={"results": czr[:-1]}, headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        drv = self.driver
        drv.set_window_size(1280, 900)
        drv.get("http://127.0.0.1:%d/" % d.port)
        card = "document.querySelector('#contests li[data-contest=\"%s\"]')"
        self.wait("document.querySelectorAll('#contests li').length === 2",
                  what="two cards")
        self.assertFalse(drv.execute_script(
            "return document.getElementById('night').hidden"))
        self.assertTrue(drv.execute_script(
            "return document.getElementById('overview').hidden"))
        field = card + ".querySelector('[data-field=%s]').textContent"
        es_leader = drv.execute_script("return " + field % ("es-2019-04",
                                                            "leader"))
        self.assertIn("PSOE", es_leader)
        self.assertIn("123 seats", es_leader)
        self.assertEqual(drv.execute_script(
            "return " + field % ("es-2019-04", "provinces_reporting")),
            "52 of 52")
        self.assertIn("350", drv.execute_script(
            "return " + field % ("es-2019-04", "seats")))
        self.assertEqual(drv.execute_script(
            "return " + card % "es-2019-04" + ".dataset.majority"), "hung")
        self.assertIn("ANO", drv.execute_script(
            "return " + field % ("cz-2017", "leader")))
        self.assertEqual(drv.execute_script(
            "return " + field % ("cz-2017", "provinces_reporting")),
            "13 of 14")
        self.assertIn("Poslanecká sněmovna", drv.execute_script(
            "return " + card % "cz-2017" + ".textContent"))
        # Both contests on one event stream (/v1/events?contests=...).
        self.wait("document.getElementById('conn').dataset.state === 'live'",
                  what="the night's event stream")
        # The last Czech region: the card follows (an event, then the list).
        last = dict(czr[-1])
        pid = last.pop("province")
        r = d.request("POST", "/v1/contests/cz-2017/provinces/%s/results" %
                      pid, body=last, headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        self.wait(field % ("cz-2017", "provinces_reporting") +
                  " === '14 of 14'", timeout=5.0, what="the card follows")
        self.assertIn("78 seats", drv.execute_script(
            "return " + field % ("cz-2017", "leader")))
        self.shot("night.png")

        # A card opens that contest's view: its leaderboard, its provinces.
        drv.execute_script(card % "cz-2017" + ".querySelector('a').click()")
        self.wait("location.search === '?contest=cz-2017'")
        first = "document.querySelector('#ranking tbody tr')"
        self.wait(first + " && " + first + ".dataset.coalition === 'ANO'",
                  what="ANO first in Czechia's leaderboard")
        self.assertEqual(drv.execute_script(
            "return " + first + ".querySelector('td[data-field=seats]')"
            ".textContent"), "78")
        self.assertEqual(drv.execute_script(
            "return document.querySelectorAll('#hemicycle .seat').length"), 200)
        self.assertEqual(drv.execute_script(
            "return document.querySelectorAll('#provinces [data-province]')"
            ".length"), 14)
        self.assertIn("Poslanecká", drv.execute_script(
            "return document.getElementById('election-name').textContent"))
        self.assertFalse(drv.execute_script(
            "return document.getElementById('night-link').hidden"))
        self.assertEqual(drv.execute_script(
            "return document.querySelector('#foot-links a').getAttribute("
            "'href')"), "/v1/contests/cz-2017/leaderboard")
        self.assertEqual(drv.execute_script(
            "return document.getElementById('version').textContent"), "2")
        # Live in that contest: a Czech correction moves its version; a
        # Spanish post does not touch the page.
        again = dict(last, revision=last["revision"] + 1)
        r = d.request("POST", "/v1/contests/cz-2017/provinces/%s/results" %
                      pid, body=again, headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        self.wait("document.getElementById('version').textContent === '3'",
                  timeout=3.0, what="Czechia's version 3 on its page")
        self.shot("night-contest.png")
        # Back to the night.
        drv.execute_script("document.getElementById('night-link').click()")
        self.wait("document.querySelectorAll('#contests li').length === 2",
                  what="the night again")
        # Without the stream (?poll=1): the list's long-poll, woken by a
        # post at once (it used to be read every 3 s).
        drv.get("http://127.0.0.1:%d/?poll=1" % d.port)
        self.wait("document.getElementById('conn').dataset.state === "
                  "'polling' && document.querySelectorAll('#contests li')"
                  ".length === 2", what="the night, polling")
        time.sleep(0.3)
        again = dict(again, revision=again["revision"] + 1)
        r = d.request("POST", "/v1/contests/cz-2017/provinces/%s/results" %
                      pid, body=again, headers=AUTH)
        self.assertEqual(r.status, 201, r.body)
        self.wait(field % ("cz-2017", "version") + ".indexOf(' 4') !== -1",
                  timeout=1.5, what="Czechia's version 4 by the long-poll")
        # On a phone: the cards in one column, no horizontal scroll.
        drv.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": 360, "height": 780, "deviceScaleFactor": 2,
            "mobile": True})
        drv.get("http://127.0.0.1:%d/" % d.port)
        self.wait("document.querySelectorAll('#contests li').length === 2")
        time.sleep(0.3)
        sw, cw = drv.execute_script(
            "return [document.documentElement.scrollWidth, "
            "document.documentElement.clientWidth]")
        self.assertLessEqual(sw, cw, "horizontal scroll at 360 px")
        drv.save_screenshot(os.path.join(self.artifacts, "night-phone.png"))
        drv.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        # In Arabic: the night's own words too, right to left (they were
        # English in an Arabic page).
        drv.get("http://127.0.0.1:%d/?lang=ar" % d.port)
        self.wait("document.querySelectorAll('#contests li').length === 2")
        self.assertEqual(drv.execute_script(
            "return document.documentElement.dir"), "rtl")
        self.assertEqual(drv.execute_script(
            "return document.getElementById('election-name').textContent"),
            "ليلة الانتخابات")
        night = drv.execute_script(
            "return document.getElementById('night').textContent")
        self.assertIn("الانتخابات", night)
        self.assertIn("لا قائمة تستطيع بلوغ الأغلبية", night)
        for en in ("Contests", "No list can reach", "votes"):
            self.assertNotIn(en, night)
        drv.save_screenshot(os.path.join(self.artifacts, "night-ar.png"))
        # An unknown contest: the night, saying so.
        drv.get("http://127.0.0.1:%d/?contest=nope" % d.port)
        self.wait("!document.getElementById('night-missing').hidden",
                  what="no contest nope")
        self.assertIn("nope", drv.execute_script(
            "return document.getElementById('night-missing').textContent"))
        # An unknown contest's stream is a 404: the browser's own line, not
        # an error of the page.
        errs = [e for e in self.driver.get_log("browser")
                if e["level"] == "SEVERE" and "/events" not in e["message"]
                and "/v1/contests/nope/" not in e["message"]]
        self.assertEqual(errs, [])

        # One contest: today's page, no night.
        d1 = self.start(os.path.join(ES, "election.json"))
        drv.get("http://127.0.0.1:%d/" % d1.port)
        self.wait("document.querySelectorAll('#hemicycle .seat').length "
                  "=== 350", what="the one contest's hemicycle")
        self.assertTrue(drv.execute_script(
            "return document.getElementById('night').hidden"))
        self.assertTrue(drv.execute_script(
            "return document.getElementById('night-link').hidden"))
        self.assertEqual(self.console_errors(d1), [])


if __name__ == "__main__":
    main()
