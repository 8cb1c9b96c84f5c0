"""The cluster variant of the model-based test: the same operations against
three tallyd nodes on a 3-server NATS JetStream cluster (natscluster.py),
with faults (kill -9 a node and restart it, stop and restart a NATS
server).  Posts go to a different node each time."""
import http.client
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import natscluster  # noqa: E402
from harness import TALLYD, Response  # noqa: E402

import driver  # noqa: E402


def available():
    return natscluster.have_nats()


class ModelNode(natscluster.Node):
    """A cluster node with the model's settings and the harness's request()."""

    def __init__(self, *a, extra="", **kw):
        natscluster.Node.__init__(self, *a, **kw)
        self.extra = extra

    def write_conf(self):
        natscluster.Node.write_conf(self)
        with open(os.path.join(self.dir, "tallyd.conf"), "a") as f:
            # The node's own snapshot_every 1000 stays (its line comes first:
            # a later line overrides), so the model's setting applies.
            f.write(self.extra)

    def request(self, method, path, body=None, headers=None, timeout=20):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            c.close()

    def logtext(self):
        return self.log_tail(20000)

    def send_signal(self, sig):
        self.proc.send_signal(sig)


class Cluster:
    """Three NATS servers and three tallyd nodes; the Single interface."""

    def __init__(self, election_path, conf_txt):
        self.root = tempfile.mkdtemp(prefix="tallyd-model-cluster-")
        self.election = election_path
        self.conf = "".join(l + "\n" for l in conf_txt.splitlines()
                            if not l.startswith("log_level"))
        self.servers = []
        self.ns = []
        self.restarts = 0
        self.node_restarts = [0, 0, 0]

    def nodes(self):
        return self.ns

    def start(self):
        self.servers = natscluster.nats_cluster(self.root, 3)
        urls = [s.url for s in self.servers]
        for i in range(3):
            n = ModelNode(TALLYD, "node%d" % i, self.root, urls, self.election,
                          env={"TALLYD_INGEST_TOKEN": driver.TOKEN}, extra=self.conf)
            self.ns.append(n)
            n.start(wait=False)
        for n in self.ns:
            try:
                n.wait_ready()
            except RuntimeError as e:
                raise driver.Failure("start", str(e)[-3000:])

    def alive(self):
        return all(n.proc is not None and n.proc.poll() is None for n in self.ns)

    def stop(self):
        bad = []
        for n in self.ns:
            n.stop()
            if n.proc.returncode != 0:
                bad.append("%s exited %s:\n%s" % (n.name, n.proc.returncode, n.log_tail(3000)))
        for s in self.servers:
            s.stop()
            s.proc = None    # stopped by us: cleanup's kill() must not call it dead
        if bad:
            raise driver.Failure("stop", "\n".join(bad))

    def restart(self, kill, which=None):
        which = 0 if which is None else which % 3
        n = self.ns[which]
        if kill:
            n.kill()
        else:
            n.stop()
            if n.proc.returncode != 0:
                raise driver.Failure("stop", "%s exited %s at SIGTERM:\n%s" % (
                    n.name, n.proc.returncode, n.log_tail(3000)))
        self.restarts += 1
        self.node_restarts[which] += 1
        try:
            n.start()
        except RuntimeError as e:
            raise driver.Failure("restart", str(e)[-3000:])

    def nats_restart(self, which):
        s = self.servers[which % 3]
        s.stop()
        time.sleep(0.3)
        s.start()

    def reload(self):
        for n in self.ns:
            n.send_signal(1)
        time.sleep(0.2)

    def cleanup(self):
        for n in self.ns:
            n.kill()
        died = []
        for s in self.servers:
            try:
                s.kill()
            except AssertionError as e:
                # Say so with its log, but do not hide the run's outcome.
                try:
                    with open(os.path.join(s.dir, "nats.log"), "rb") as f:
                        tail = f.read()[-2000:].decode(errors="replace")
                except OSError:
                    tail = ""
                died.append("%s\n%s" % (e, tail))
        shutil.rmtree(self.root, ignore_errors=True)
        for d in died:
            print("cluster cleanup: %s" % d, file=sys.stderr)
