#!/usr/bin/env python3
"""A tallyd that misbehaves when it is stopped (tests/misbehave/run-all).

    supervise.py segv|exit1 ARGS...

Runs TALLYD_REAL with ARGS as a child (dying with this process, through
PR_SET_PDEATHSIG, so a kill -9 of this pid kills the daemon too) and
passes signals on.  Once the daemon has ended after a SIGTERM or SIGINT
(a stop, after the test's last request), this process ends with SIGSEGV
(segv) or exit 1 (exit1) instead of the daemon's clean 0; other ends are
passed on as they were.  Without -d (tallyd -n, --version, a background
start) it is the real daemon, unchanged.
"""
import ctypes
import os
import signal
import sys

mode, args = sys.argv[1], sys.argv[2:]
real = os.environ["TALLYD_REAL"]
if "-d" not in args:
    os.execv(real, [real] + args)
parent = os.getpid()
pid = os.fork()
if pid == 0:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)
    os.execv(real, [real] + args)
stopping = False


def stop(sig, frame):
    global stopping
    stopping = True
    os.kill(pid, sig)


def forward(sig, frame):
    os.kill(pid, sig)


for s in (signal.SIGTERM, signal.SIGINT):
    signal.signal(s, stop)
for s in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCONT):
    signal.signal(s, forward)
_, status = os.waitpid(pid, 0)
if stopping:
    if mode == "segv":
        signal.signal(signal.SIGSEGV, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGSEGV)
    os._exit(1)
if os.WIFSIGNALED(status):
    signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
    os.kill(os.getpid(), os.WTERMSIG(status))
os._exit(os.WEXITSTATUS(status))
