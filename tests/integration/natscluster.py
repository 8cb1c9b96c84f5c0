"""A local NATS JetStream cluster and tallyd nodes on loopback.

Used by scripts/cluster and tests/integration/test_cluster.py: real
nats-server processes on free loopback ports, each with its own store dir,
routes between them on loopback; tallyd nodes in cluster mode with their
own data dirs and configuration files.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

from harness import Supervised, free_port

NATS_SERVER = os.environ.get("NATS_SERVER", shutil.which("nats-server") or "nats-server")


def have_nats():
    return shutil.which(NATS_SERVER) is not None or os.path.exists(NATS_SERVER)


class NatsServer:
    def __init__(self, name, root, port=None, cluster_port=None):
        self.name = name
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = port or free_port()
        self.cluster_port = cluster_port or free_port()
        self.proc = None
        self.routes = []

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    def write_conf(self):
        routes = ",\n    ".join("nats-route://127.0.0.1:%d" % p for p in self.routes)
        conf = """server_name: %s
listen: 127.0.0.1:%d
jetstream {
  store_dir: "%s"
  max_memory_store: 64MB
  max_file_store: 2GB
}
cluster {
  name: tallyd
  listen: 127.0.0.1:%d
  routes: [
    %s
  ]
}
""" % (self.name, self.port, os.path.join(self.dir, "js"), self.cluster_port, routes)
        with open(os.path.join(self.dir, "nats.conf"), "w") as f:
            f.write(conf)

    def start(self):
        self.write_conf()
        log = open(os.path.join(self.dir, "nats.log"), "ab")
        self.proc = subprocess.Popen(
            [NATS_SERVER, "-c", os.path.join(self.dir, "nats.conf")],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server %s did not start" % self.name)

    def kill(self):
        """A planned kill -9.  A server that died by itself is an error
        (nats-server does not crash in a healthy test): it is not revived
        silently."""
        if self.proc is None:
            return
        if self.proc.poll() is not None:
            raise AssertionError("nats-server %s died by itself (exit %s)" % (
                self.name, self.proc.returncode))
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def nats_cluster(root, n=3):
    servers = [NatsServer("n%d" % (i + 1), root) for i in range(n)]
    for s in servers:
        s.routes = [o.cluster_port for o in servers if o is not s]
    try:
        for s in servers:
            s.start()
    except (OSError, RuntimeError):
        for s in servers:
            s.stop()
        raise
    return servers


class Node(Supervised):
    """One tallyd in cluster mode (foreground, -d).  Supervised like the
    harness's Daemon: each process's end is judged (a kill -9 through
    kill() is planned; any other death is a problem), the whole log is
    scanned at cleanup(), and a node that died by itself is never revived
    silently: start() raises."""

    def __init__(self, tallyd, name, root, urls, election, stream="TALLY",
                 replicas=3, env=None, port=None):
        self.tallyd = tallyd
        self.name = name
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = port or free_port()
        self.urls = urls
        self.election = election
        self.stream = stream
        self.replicas = replicas
        self.env = dict(os.environ)
        if env:
            self.env.update(env)
        self.log_path = os.path.join(self.dir, "tallyd.log")
        self._supervise(name)

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def write_conf(self):
        with open(os.path.join(self.dir, "tallyd.conf"), "w") as f:
            f.write("election %s\nlisten 127.0.0.1:%d\ndata_dir %s\n"
                    "cluster_urls \"%s\"\ncluster_stream %s\n"
                    "cluster_replicas %d\ncluster_node %s\n"
                    "snapshot_every 1000\n" % (
                        os.path.abspath(self.election), self.port,
                        os.path.join(self.dir, "var"), ",".join(self.urls),
                        self.stream, self.replicas, self.name))

    def start(self, wait=True):
        self._before_start()
        if self.problems:
            raise AssertionError("not restarting %s: %s" % (
                self.name, "; ".join(self.problems)))
        self.write_conf()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.tallyd, "-d", "-f", os.path.join(self.dir, "tallyd.conf")],
            stdout=log, stderr=subprocess.STDOUT, env=self.env,
            start_new_session=True)
        log.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=90):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("tallyd %s exited: %s" % (self.name, self.log_tail()))
            try:
                self.health()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("tallyd %s did not start: %s" % (self.name, self.log_tail()))

    def log_tail(self, n=4000):
        return self.logtext()[-n:]

    def logtext(self):
        if self.finished and self.final_log is not None:
            return self.final_log
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def health(self, timeout=10):
        # 10 s, not 2: a TSan node on a loaded 2-core machine once took
        # longer than 2 s to answer while its NATS servers were frozen
        # (test_unacknowledged_posts_expire); a loop really blocked still
        # fails here.
        with urllib.request.urlopen(self.base + "/healthz",
                                    timeout=timeout) as r:
            return json.loads(r.read())

    def stop(self, sig=signal.SIGTERM, timeout=15):
        return Supervised.stop(self, sig, timeout)
