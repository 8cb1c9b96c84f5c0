#!/usr/bin/env python3
"""Issue 21: 60 clients of a token over ingest_rate announce 1 MiB each: how
many get 429 before sending a body byte, and the daemon's peak RSS (VmHWM).
Usage: FIELD=VmHWM rate.py TALLYD"""
import socket, subprocess, time, os, sys, shutil, http.client, json
import tempfile
TMP=tempfile.mkdtemp(prefix="tallyd-edges-")
TALLYD=sys.argv[1]; port=19500+os.getpid()%300
d=os.path.join(TMP, "rate-var"); shutil.rmtree(d, True)
conf=os.path.join(TMP, "rate.conf"); open(conf,"w").write("ingest_rate 1\ningest_burst 1\nper_ip_connection_limit 0\n")
T="t"*32
p=subprocess.Popen([TALLYD,"-d","-f",conf,"--listen","127.0.0.1:%d"%port,"--data-dir",d,"--election",os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "config", "elections", "iraq-2018.json")],stdout=open(os.path.join(TMP, "rate.log"),"w"),stderr=subprocess.STDOUT,env=dict(os.environ,TALLYD_INGEST_TOKEN=T))
time.sleep(1.5)
def rss():
    for l in open("/proc/%d/status"%p.pid):
        if l.startswith(os.environ.get("FIELD","VmRSS")): return int(l.split()[1])//1024
c=http.client.HTTPConnection("127.0.0.1",port); c.request("POST","/v1/provinces/baghdad/results",body=json.dumps({"revision":1,"votes":{}}),headers={"Authorization":"Bearer "+T,"Content-Type":"application/json"}); print("first", c.getresponse().status)
before=rss()
head=b"POST /v1/provinces/baghdad/results HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+T.encode()+b"\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n"
socks=[]
t0=time.monotonic()
for i in range(60):
    s=socket.create_connection(("127.0.0.1",port)); s.sendall(head); s.setblocking(False); socks.append(s)
time.sleep(0.3)
early=0
for s in socks:
    try:
        b=s.recv(100)
        if b.startswith(b"HTTP/1.1 429"): early+=1
    except BlockingIOError: pass
body=b" "*1048576
for s in socks:
    s.setblocking(True); s.settimeout(5)
    try: s.sendall(body)
    except OSError: pass
time.sleep(1)
print("answered 429 before any body byte: %d of 60; RSS %d -> %d MiB"%(early,before,rss()))
for s in socks: s.close()
p.terminate(); p.wait()
shutil.rmtree(TMP, True)
