#!/usr/bin/env python3
"""The Debian package on this machine: install it, check what it put where,
run the installed tallyd the way tallyd.service runs it (as the tallyd user,
with the installed settings, speaking to a NOTIFY_SOCKET we listen on),
verify the installed unit and man pages, then purge it and check that
nothing is left.

It changes the machine, so scripts/test runs it once, alone, as root; it
first purges whatever an earlier interrupted run left, so it can run again.
The installed tallyd keeps its installed settings but listens on a free
port instead of 8080 (other programs on a CI machine may hold 8080).

usage: test_package.py DEB
"""
import glob
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

DEB = None
UNIT = "/usr/lib/systemd/system/tallyd.service"
CONF = "/etc/tallyd/tallyd.conf"
STATE = "/var/lib/tallyd"
FILES = ["/usr/sbin/tallyd", "/usr/bin/tallyctl", CONF, UNIT,
         "/usr/share/tallyd/elections/iraq-2018.json",
         "/usr/share/man/man8/tallyd.8.gz", "/usr/share/man/man5/tallyd.conf.5.gz",
         "/usr/share/man/man1/tallyctl.1.gz",
         "/usr/share/doc/tallyd/OPERATIONS.md"]


def run(*cmd, check=True, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError("%s: exit %d\n%s" % (" ".join(cmd), p.returncode,
                                                  p.stdout))
    return p


def installed():
    p = run("dpkg-query", "-W", "-f=${Status}", "tallyd", check=False)
    return "installed" in p.stdout or "config-files" in p.stdout


def stop_leftover():
    """An installed tallyd that an interrupted run left running holds the
    state dir's lock: stop that one process (the pid in its lock file), and
    only if it is the installed tallyd."""
    try:
        with open(os.path.join(STATE, "tallyd.lock")) as f:
            pid = int(f.read().strip() or 0)
        exe = os.readlink("/proc/%d/exe" % pid)
    except (OSError, ValueError):
        return
    if pid > 1 and exe.startswith("/usr/sbin/tallyd"):
        os.kill(pid, signal.SIGTERM)
        for _ in range(200):
            if not os.path.exists("/proc/%d" % pid):
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                timeout=10) as r:
        return r.status, r.read()


class Package(unittest.TestCase):
    """The steps depend on each other: they run in order (test_1, test_2...)."""

    @classmethod
    def setUpClass(cls):
        stop_leftover()
        if installed():     # an earlier run was interrupted
            run("dpkg", "--purge", "tallyd")
        run("dpkg", "-i", DEB)

    @classmethod
    def tearDownClass(cls):
        if installed():
            run("dpkg", "--purge", "tallyd", check=False)

    def test_1_files_user_state(self):
        for f in FILES:
            self.assertTrue(os.path.isfile(f), f)
        pw = pwd.getpwnam("tallyd")
        self.assertEqual(pw.pw_dir, STATE)
        st = os.stat(STATE)
        self.assertEqual(st.st_uid, pw.pw_uid)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o700)
        # Nothing enabled: no wants/ link anywhere under /etc/systemd.
        links = glob.glob("/etc/systemd/system/*/tallyd.service")
        self.assertEqual(links, [])
        with open(CONF) as f:
            conf = f.read()
        self.assertIn("\nelection /usr/share/tallyd/elections/iraq-2018.json\n",
                      conf)
        self.assertIn("\ndata_dir /var/lib/tallyd\n", conf)

    def test_2_check_installed_config(self):
        p = run("setpriv", "--reuid=tallyd", "--regid=tallyd",
                "--clear-groups", "/usr/sbin/tallyd", "-n", "-f", CONF)
        self.assertIn("configuration OK", p.stdout)
        self.assertIn("election iq-2018", p.stdout)

    def test_2_no_test_hooks_in_the_release_binary(self):
        """The package is the production build: no failpoints compiled in
        (they exist only with -Dfailpoints=true, the test builds)."""
        p = run("/usr/sbin/tallyd", "--version")
        self.assertNotIn("test build", p.stdout)
        with open("/usr/sbin/tallyd", "rb") as f:
            binary = f.read()
        self.assertNotIn(b"TALLYD_FAILPOINTS", binary)
        self.assertNotIn(b"sync_delay_ms", binary)

    def test_3_unit_and_man_pages(self):
        p = run("systemd-analyze", "verify", "--man=no", UNIT, check=False)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertNotIn("tallyd.service", p.stdout)
        for page in glob.glob("/usr/share/man/man*/tally*.gz"):
            p = run("mandoc", "-Tlint", "-W", "warning", page, check=False)
            self.assertEqual(p.returncode, 0, page + "\n" + p.stdout)
            # What man -l shows, with groff's warnings on (man-db), or
            # mandoc's rendering: nothing on stderr.
            cmd = (["man", "--warnings", "-l", page] if shutil.which("man")
                   else ["mandoc", "-Tascii", page])
            p = subprocess.run(cmd, capture_output=True,
                               env=dict(os.environ, MANWIDTH="80",
                                        MANPAGER="cat", PAGER="cat"))
            self.assertEqual(p.returncode, 0, page)
            self.assertEqual(p.stderr, b"", page)
            text = re.sub(rb".\x08", b"", p.stdout)
            self.assertIn(b"SEE ALSO", text, page)

    def test_4_serves_as_the_unit_runs_it(self):
        exec_start = None
        with open(UNIT) as f:
            for line in f:
                if line.startswith("ExecStart="):
                    exec_start = shlex.split(line.split("=", 1)[1])
        self.assertEqual(exec_start, ["/usr/sbin/tallyd", "-d", "-f", CONF])
        port = free_port()
        tmp = tempfile.mkdtemp(prefix="tallyd-pkg-")
        self.addCleanup(shutil.rmtree, tmp, True)
        os.chmod(tmp, 0o755)
        path = os.path.join(tmp, "notify.sock")
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ns.bind(path)
        os.chmod(path, 0o777)
        self.addCleanup(ns.close)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "NOTIFY_SOCKET": path}
        log = open(os.path.join(tmp, "stderr"), "w+")
        self.addCleanup(log.close)
        proc = subprocess.Popen(
            ["setpriv", "--reuid=tallyd", "--regid=tallyd", "--clear-groups",
             "--no-new-privs"] + exec_start +
            ["--listen", "127.0.0.1:%d" % port],
            env=env, cwd="/", stdout=log, stderr=subprocess.STDOUT)

        def stop():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.addCleanup(stop)

        def wait_for(line, timeout=20):
            ns.settimeout(timeout)
            while True:
                try:
                    msg = ns.recv(4096).decode()
                except socket.timeout:
                    log.seek(0)
                    raise AssertionError("no %s:\n%s" % (line, log.read()))
                if line in msg.split("\n"):
                    return msg
        ready = wait_for("READY=1")
        self.assertIn("STATUS=serving version 0 of iq-2018", ready)
        self.assertEqual(get(port, "/healthz")[0], 200)
        self.assertEqual(json.loads(get(port, "/v1/election")[1])["id"],
                         "iq-2018")
        # The token tallyd made for itself, in its state dir, as its user.
        tok = os.path.join(STATE, "ingest.token")
        st = os.stat(tok)
        self.assertEqual(st.st_uid, pwd.getpwnam("tallyd").pw_uid)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        with open(tok) as f:
            token = f.read().strip()
        rq = urllib.request.Request(
            "http://127.0.0.1:%d/v1/provinces/baghdad/results" % port,
            data=json.dumps({"revision": 1, "votes": {"sairoon": 10}}).encode(),
            headers={"Authorization": "Bearer " + token,
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(rq, timeout=10) as r:
            self.assertEqual(r.status, 201)
        proc.send_signal(signal.SIGHUP)
        wait_for("RELOADING=1")
        wait_for("READY=1")
        proc.send_signal(signal.SIGTERM)
        wait_for("STOPPING=1")
        self.assertEqual(proc.wait(20), 0)
        self.assertTrue(glob.glob(os.path.join(STATE, "snapshot-*.snap")))

    def test_5_purge_leaves_nothing(self):
        run("dpkg", "--purge", "tallyd")
        self.assertFalse(installed())
        for f in FILES + [STATE, "/etc/tallyd"]:
            self.assertFalse(os.path.exists(f), f)
        with self.assertRaises(KeyError):
            pwd.getpwnam("tallyd")


if __name__ == "__main__":
    DEB = sys.argv.pop(1)
    if os.geteuid() != 0:
        print("test_package: needs root (it installs a package); skipped")
        sys.exit(77)
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print("test_package: %d tests, %d failed" % (result.testsRun, failed))
    sys.exit(0 if failed == 0 and result.testsRun > 0 else 1)
