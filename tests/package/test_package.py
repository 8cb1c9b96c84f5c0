#!/usr/bin/env python3
"""The Debian package on a copy of this machine: install it, check what it
put where, run the installed tallyd the way tallyd.service runs it (as the
tallyd user, with the installed settings, speaking to a NOTIFY_SOCKET we
listen on), verify the installed unit and man pages, then `systemctl
enable` it, purge it and check that nothing is left (no enable link
either), and install and purge it once more.

It runs in a root of its own: in a private mount namespace, an overlay
whose lower layer is this machine's / and whose upper layer is a tmpfs,
chrooted into.  dpkg, adduser, systemctl and the tests write only into
the tmpfs, which goes with the namespace, so the machine is never changed
and what an earlier installation left on it (an installed tallyd, the
links of a `systemctl enable` that an older postrm did not remove, the
tallyd user, /var/lib/tallyd) cannot fail the tests: it is cleared in the
copy first.  After the run the machine's own tallyd state is compared with
what it was before; a difference is a failure.  Without the rights to
build that root (mount namespaces, overlayfs), the test is skipped (77)
rather than installing into the machine.

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
IN_OWN_ROOT = "--in-own-root"
DSH = "/var/lib/systemd/deb-systemd-helper-enabled"
UNIT = "/usr/lib/systemd/system/tallyd.service"
CONF = "/etc/tallyd/tallyd.conf"
STATE = "/var/lib/tallyd"
FILES = ["/usr/sbin/tallyd", "/usr/bin/tallyctl", CONF, UNIT,
         "/usr/share/tallyd/elections/iraq-2018.json",
         "/usr/share/man/man8/tallyd.8.gz", "/usr/share/man/man5/tallyd.conf.5.gz",
         "/usr/share/man/man1/tallyctl.1.gz",
         "/usr/share/doc/tallyd/OPERATIONS.md",
         "/usr/share/doc/tallyd/ELECTION.md",
         "/usr/share/doc/tallyd/DEPLOY.md",
         "/usr/share/doc/tallyd/API.md",
         "/usr/share/doc/tallyd/NEWSROOM.md",
         "/usr/share/doc/tallyd/VERIFY.md",
         "/usr/share/tallyd/nginx/tallyd.conf",
         "/usr/share/tallyd/nchan/tallyd.conf",
         "/usr/share/tallyd/prometheus/tallyd-alerts.yml"]


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


def tallyd_links():
    """Links to tallyd.service under /etc/systemd/system (enable, mask)."""
    return sorted(p for p in glob.glob("/etc/systemd/system/*/tallyd.service")
                  + glob.glob("/etc/systemd/system/tallyd.service")
                  if os.path.islink(p))


def leftovers():
    """Everything of tallyd's on this root: [] on a machine where tallyd
    never was (and after a purge)."""
    out = [f for f in FILES + [STATE, "/etc/tallyd"] if os.path.lexists(f)]
    out += tallyd_links()
    out += sorted(glob.glob(os.path.join(DSH, "**", "tallyd.service*"),
                            recursive=True))
    for db in ("passwd", "group"):
        if run("getent", db, "tallyd", check=False).returncode == 0:
            out.append("%s entry tallyd" % db)
    return out


def clean_slate():
    """This root is a copy of the machine: clear what an earlier
    installation of tallyd left in it, so that the tests start where tallyd
    never was.  Only the copy changes."""
    found = []
    if installed():
        found.append("the installed package")
        if run("dpkg", "--purge", "tallyd", check=False).returncode != 0:
            run("dpkg", "--purge", "--force-remove-reinstreq", "tallyd")
    for link in tallyd_links():
        os.unlink(link)
        found.append(link)
    for f in glob.glob(os.path.join(DSH, "**", "tallyd.service*"),
                       recursive=True):
        os.unlink(f)
        found.append(f)
    for d in (STATE, "/etc/tallyd"):
        if os.path.lexists(d):
            shutil.rmtree(d)
            found.append(d)
    if run("getent", "passwd", "tallyd", check=False).returncode == 0:
        run("userdel", "tallyd")
        found.append("user tallyd")
    if run("getent", "group", "tallyd", check=False).returncode == 0:
        run("groupdel", "tallyd")
        found.append("group tallyd")
    if found:
        print("test_package: cleared in its own root what an earlier "
              "installation left: " + ", ".join(found))
    left = leftovers()
    assert left == [], "cannot clear %s" % left


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                timeout=10) as r:
        return r.status, r.read()


def control():
    """The package's control fields, as dpkg-deb reads them."""
    out = run("dpkg-deb", "-f", DEB).stdout
    fields, key = {}, None
    for line in out.splitlines():
        if line.startswith(" ") and key:
            fields[key] += "\n" + line
        else:
            key, _, v = line.partition(":")
            fields[key] = v.strip()
    return fields


def nats_packages():
    """The installed packages holding libnats (the library, its -dev)."""
    p = run("dpkg-query", "-W", "-f=${Package} ${Status}\n", "libnats*",
            check=False)
    return [ln.split()[0] for ln in p.stdout.splitlines()
            if ln.endswith(" installed")]


class Package(unittest.TestCase):
    """The steps depend on each other: they run in order (test_1, test_2...)."""

    def test_0_control_fields(self):
        """libnats only recommended (cluster mode alone needs it); a
        Maintainer in the form Debian requires, no placeholder Homepage."""
        f = control()
        self.assertNotIn("libnats", f["Depends"])
        self.assertRegex(f.get("Recommends", ""), r"(^|, )libnats[-.0-9a-z]*")
        self.assertRegex(f["Maintainer"], r"^[^<>,]+ <[^<>@\s]+@[^<>\s]+>$")
        # A host mail can reach: no placeholder (it was tallyd@localhost),
        # none of the names RFC 2606 and RFC 6761 reserve.
        host = f["Maintainer"].rsplit("@", 1)[1].rstrip(">").lower()
        self.assertIn(".", host)
        self.assertNotRegex(host, r"(^|\.)(localhost|localdomain|local|invalid|"
                            r"test|example)$|(^|\.)example\.(com|net|org)$")
        if "Homepage" in f:
            self.assertRegex(f["Homepage"], r"^https://")
            self.assertNotIn("localhost", f["Homepage"])
        p = run("ldd", "/usr/sbin/tallyd")
        self.assertNotIn("libnats", p.stdout)

    def test_0_lintian(self):
        """Debian's own checks find nothing: it said no-changelog,
        unstripped binaries, a copyright without notice, systemctl in
        prerm, /usr/bin/deb-systemd-helper in a test (scripts/setup
        installs lintian)."""
        self.assertTrue(shutil.which("lintian"), "lintian is missing: run "
                        "scripts/setup")
        p = run("lintian", "--fail-on", "warning", "--tag-display-limit",
                "0", DEB, check=False)
        self.assertEqual(p.returncode, 0, p.stdout)

    @classmethod
    def setUpClass(cls):
        clean_slate()
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

    def test_5_enabled_then_purged_leaves_nothing(self):
        # What an operator does: enable it (systemctl works on the files
        # when no systemd runs, as in this root), later purge it.
        run("systemctl", "enable", "tallyd.service")
        self.assertEqual(tallyd_links(), [
            "/etc/systemd/system/multi-user.target.wants/tallyd.service"])
        run("dpkg", "--purge", "tallyd")
        self.assertFalse(installed())
        self.assertEqual(leftovers(), [])
        with self.assertRaises(KeyError):
            pwd.getpwnam("tallyd")

    def test_7_serves_without_libnats(self):
        """This root without libnats: the package installs (libnats is
        only recommended), a single node starts and serves; a cluster start
        fails at once saying what to install."""
        removed = nats_packages()
        if removed:
            run("dpkg", "--purge", *removed)
        self.assertEqual(nats_packages(), [])
        self.assertEqual(glob.glob("/usr/lib/*/libnats.so*"), [])
        run("dpkg", "-i", DEB)
        self.addCleanup(run, "dpkg", "--purge", "tallyd", check=False)
        p = run("ldd", "/usr/sbin/tallyd")
        self.assertNotIn("not found", p.stdout)
        run("setpriv", "--reuid=tallyd", "--regid=tallyd", "--clear-groups",
            "/usr/sbin/tallyd", "-n", "-f", CONF)
        port = free_port()
        tmp = tempfile.mkdtemp(prefix="tallyd-pkg-")
        self.addCleanup(shutil.rmtree, tmp, True)
        os.chmod(tmp, 0o755)
        log = open(os.path.join(tmp, "stderr"), "w+")
        self.addCleanup(log.close)
        cmd = ["setpriv", "--reuid=tallyd", "--regid=tallyd",
               "--clear-groups", "/usr/sbin/tallyd", "-d", "-f", CONF,
               "--listen", "127.0.0.1:%d" % port]
        proc = subprocess.Popen(cmd, cwd="/", stdout=log,
                                stderr=subprocess.STDOUT)
        self.addCleanup(lambda: proc.poll() is None and
                        (proc.kill(), proc.wait()))
        deadline = time.monotonic() + 20
        while True:
            try:
                self.assertEqual(get(port, "/healthz")[0], 200)
                break
            except OSError:
                if proc.poll() is not None:
                    log.seek(0)
                    self.fail("tallyd exited: " + log.read())
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(20), 0)
        # Cluster mode without libnats: refused, naming the package.
        conf = os.path.join(tmp, "cluster.conf")
        with open(CONF) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(text + "\ncluster_urls nats://127.0.0.1:4222\n"
                    "data_dir %s/cluster-data\n" % tmp)
        os.chmod(conf, 0o644)
        os.makedirs(os.path.join(tmp, "cluster-data"), 0o700)
        shutil.chown(os.path.join(tmp, "cluster-data"), "tallyd", "tallyd")
        for check in (["-n"], []):
            p = run("setpriv", "--reuid=tallyd", "--regid=tallyd",
                    "--clear-groups", "/usr/sbin/tallyd", "-d", "-f", conf,
                    "--listen", "127.0.0.1:%d" % port, *check, check=False,
                    timeout=30)
            self.assertEqual(p.returncode, 1, p.stdout)
            self.assertIn("cluster mode needs libnats", p.stdout)
            self.assertRegex(p.stdout, r"apt install libnats[-.0-9a-z]*")

    def test_6_install_again_after_the_purge(self):
        # As on a machine where it was once installed and enabled: the
        # new installation is not enabled, and its purge leaves nothing.
        run("dpkg", "-i", DEB)
        self.assertEqual(tallyd_links(), [])
        self.assertTrue(os.path.isdir(STATE))
        run("dpkg", "--purge", "tallyd")
        self.assertEqual(leftovers(), [])


def host_state():
    """The machine's own tallyd state, to show that the run changed none."""
    return {"package": run("dpkg-query", "-W", "-f=${Status} ${Version}",
                           "tallyd", check=False).stdout,
            "leftovers": leftovers(),
            "links": [(p, os.readlink(p)) for p in tallyd_links()]}


# Run by sh in a private mount namespace: $1 an empty directory, $2 the
# package, $3 this file, $4 the python to run it with.  The overlay's lower layer is the root file
# system only (not the mounts below it), so /proc, /sys and /dev are bound
# in and /run and /tmp are fresh; the package and this file are copied in
# (they may live on a mount the overlay does not show).
BUILD_ROOT = r"""
set -eu
t=$1
mount -t tmpfs -o mode=0755 tallyd-pkgroot "$t"
mkdir "$t/upper" "$t/work" "$t/root"
mount -t overlay tallyd-pkgroot \
    -o "lowerdir=/,upperdir=$t/upper,workdir=$t/work" "$t/root"
for m in /proc /sys /dev; do mount --rbind "$m" "$t/root$m"; done
mount -t tmpfs -o mode=0755 tallyd-run "$t/root/run"
mount -t tmpfs -o mode=1777 tallyd-tmp "$t/root/tmp"
mkdir -p "$t/root/var/tmp/tallyd-package-test"
cp "$2" "$t/root/var/tmp/tallyd-package-test/tallyd.deb"
cp "$3" "$t/root/var/tmp/tallyd-package-test/test_package.py"
echo "test_package: own root ready"
exec chroot "$t/root" "$4" \
    /var/tmp/tallyd-package-test/test_package.py --in-own-root \
    /var/tmp/tallyd-package-test/tallyd.deb
"""


def in_own_root(deb):
    """Run the tests in a root of their own; then check the machine."""
    before = host_state()
    tmp = tempfile.mkdtemp(prefix="tallyd-pkgroot-")
    try:
        p = subprocess.run(["unshare", "--mount", "--propagation", "private",
                            "--", "sh", "-c", BUILD_ROOT, "sh", tmp,
                            os.path.abspath(deb), os.path.abspath(__file__),
                            sys.executable],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    finally:
        os.rmdir(tmp)   # the tmpfs went with the namespace
    if "test_package: own root ready" not in p.stdout:
        print(p.stdout.rstrip())
        print("test_package: cannot build a root of its own (a mount "
              "namespace and overlayfs are needed); skipped rather than "
              "installing into this machine")
        return 77
    counts = re.search(r"^test_package: (\d+) tests, (\d+) failed$",
                       p.stdout, re.M)
    for line in p.stdout.splitlines():
        if not re.match(r"test_package: (own root ready|\d+ tests)", line):
            print(line)
    n, failed = (int(counts.group(1)), int(counts.group(2))) if counts \
        else (0, 1)
    after = host_state()
    print("test_host_untouched ... %s" % ("ok" if after == before else
                                          "FAIL"))
    if after != before:
        print("FAIL: the machine's tallyd state changed:\n  before %s\n"
              "  after  %s" % (before, after))
        failed += 1
    print("test_package: %d tests, %d failed" % (n + 1, failed))
    return 0 if failed == 0 and p.returncode == 0 and counts else 1


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("test_package: needs root (it installs a package); skipped")
        sys.exit(77)
    if sys.argv[1] != IN_OWN_ROOT:
        sys.exit(in_own_root(sys.argv[1]))
    sys.argv.pop(1)
    DEB = sys.argv.pop(1)
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print("test_package: %d tests, %d failed" % (result.testsRun, failed))
    sys.exit(0 if failed == 0 and result.testsRun > 0 else 1)
