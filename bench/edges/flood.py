#!/usr/bin/env python3
"""Issue 21: 160 addresses x 64 event streams (10,240) against the default
connection_limit, then 4 plain GETs with a 5 s timeout.  Usage: flood.py TALLYD"""
import socket, subprocess, time, os, sys, resource, http.client, shutil
import tempfile
TMP=tempfile.mkdtemp(prefix="tallyd-edges-")
TALLYD=sys.argv[1]; port=18900+os.getpid()%500
resource.setrlimit(resource.RLIMIT_NOFILE,(20000,20000))
d=os.path.join(TMP, "flood-var"); shutil.rmtree(d, True)
p=subprocess.Popen([TALLYD,"-d","--listen","127.0.0.1:%d"%port,"--data-dir",d,"--election",os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "config", "elections", "iraq-2018.json")],stdout=open(os.path.join(TMP, "flood.log"),"w"),stderr=subprocess.STDOUT,env=dict(os.environ,TALLYD_INGEST_TOKEN="t"*32))
time.sleep(1.5)
socks=[]
try:
    for a in range(160):
        for k in range(64):
            s=socket.socket(); s.bind(("127.0.%d.%d"%(a//250, 2+a%250),0)); s.setblocking(False)
            try: s.connect(("127.0.0.1",port))
            except BlockingIOError: pass
            socks.append(s)
    time.sleep(1)
    for s in socks:
        try: s.send(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        except OSError: pass
    time.sleep(3)
    ok=0
    for i in range(4):
        t0=time.monotonic()
        try:
            c=http.client.HTTPConnection("127.0.0.1",port,timeout=5); c.request("GET","/v1/leaderboard"); r=c.getresponse(); r.read(); ok+= r.status==200
            print("GET", r.status, "%.3f s"%(time.monotonic()-t0))
        except Exception as e: print("GET failed", e, "%.3f s"%(time.monotonic()-t0))
    print("answered %d of 4"%ok)
finally:
    for s in socks: s.close()
    p.terminate(); p.wait()
shutil.rmtree(TMP, True)
