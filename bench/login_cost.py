#!/usr/bin/python3
"""Noise-free cost of one TLS+SCRAM login through sluice-proxy: instructions and system calls.

storm.py's "proxy CPU per login" reads /proc/PID/stat around a burst on a shared 2-core machine
and moves by ±10 % between identical runs. Two figures that do not:

  instructions  sluice-proxy (workers = 1) runs under callgrind; a burst of --small logins and
                one of --large logins (sluice-bench-burst: sslmode=require, SCRAM, `select 1`,
                disconnect) are counted apart; the difference divided by the difference in
                logins is the cost of a login alone (start-up and warm-up cancel out).
                --keep DIR keeps the large burst's callgrind file for callgrind_annotate.
  syscalls      sluice-proxy runs natively under `strace -c -f` for a burst of --large logins:
                system calls per login, and the most frequent ones.
  cpu           (not by default: it is the noisy figure) sluice-proxy natively, --rounds bursts
                of --cpu-clients logins each: utime and stime per login from /proc/PID/stat, with
                minor page faults per login and the load average. --perf FILE records the last
                burst with `perf record -e cpu-clock` (a software clock: the VM has no hardware
                counters) and --perf-call-graph (fp; dwarf unwinds sluice's own frames too).
  --workers N   the proxy's worker threads for syscalls and cpu (default 1).

Usage: PYTHONPATH=python /usr/bin/python3 bench/login_cost.py --build build
         [--only instructions,syscalls] [--small 50] [--large 250] [--keep DIR]
         [--record-layer sluice|openssl] [--only cpu --rounds 5 --cpu-clients 1000 --workers 1
         --perf FILE]
"""
import argparse
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from sluice_harness import harness, measure

POOL = {"adaptive_concurrency": False, "max_connections_percent": 20, "max_idle_connections_percent": 20,
        "connection_borrow_timeout": 120}


def start_proxy(binary, pg, app, record_layer="sluice", workers=1):
    # One worker: the figure is one loop's work per login, and under callgrind threads run one
    # at a time anyway.
    return harness.Proxy(binary, pg.port, users=[(app.app_user, app.app_password)], require_tls=True,
                         max_client_connections=10000, target={"tls": "disable"}, workers=workers,
                         login_timeout=600, connection_pool=POOL,
                         tls={"record_layer": record_layer}).start(timeout=60)


def burst(tool, conninfo, clients):
    r = subprocess.run([tool, "--burst", "-n", str(clients), "--timeout", "600", conninfo],
                       capture_output=True, text=True, timeout=900)
    if r.returncode != 0 or '"failed":0' not in r.stdout.replace(" ", ""):
        raise RuntimeError(f"burst of {clients} failed (rc={r.returncode}): {r.stdout[-500:]} {r.stderr[-1000:]}")


def callgrind_total(outdir, pid, keep=None):
    for f in glob.glob(f"{outdir}/sluice.{pid}.*"):
        os.unlink(f)
    subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True, check=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        for f in glob.glob(f"{outdir}/sluice.{pid}.*"):
            m = re.search(r"^summary: (\d+)", open(f).read(), re.M)
            if m:
                if keep:
                    shutil.copy(f, os.path.join(keep, "login.callgrind"))
                return int(m.group(1))
        time.sleep(0.2)
    raise RuntimeError("no callgrind dump from sluice-proxy")


def instructions(args, binary, tool, pg, app):
    outdir = tempfile.mkdtemp(prefix="sluice-login-callgrind-")
    wrapper = os.path.join(outdir, "run-sluice")
    with open(wrapper, "w") as f:
        f.write(f'#!/bin/sh\nexec valgrind -q --tool=callgrind --callgrind-out-file={outdir}/sluice.%p '
                f'{binary} "$@"\n')
    os.chmod(wrapper, 0o755)
    proxy = start_proxy(wrapper, pg, app, args.record_layer)
    try:
        conninfo = proxy.dsn(app.app_user, app.app_password, app.dbname, "require", connect_timeout=300)
        burst(tool, conninfo, 20)  # warm-up: pools filled, caches and allocator arenas grown
        counts = {}
        for n in (args.small, args.large):
            subprocess.run(["callgrind_control", "-z", str(proxy.pid)], capture_output=True, check=True)
            burst(tool, conninfo, n)
            counts[n] = callgrind_total(outdir, proxy.pid, args.keep if n == args.large else None)
        per_login = (counts[args.large] - counts[args.small]) / (args.large - args.small)
        print(f"instructions per login: {per_login:,.0f} (callgrind; {counts[args.small]:,} for "
              f"{args.small} logins, {counts[args.large]:,} for {args.large})", flush=True)
    finally:
        proxy.stop()
        proxy.cleanup()
        shutil.rmtree(outdir, ignore_errors=True)


def syscalls(args, binary, tool, pg, app):
    proxy = start_proxy(binary, pg, app, args.record_layer, args.workers)
    out = tempfile.mktemp(prefix="sluice-login-strace-")
    try:
        conninfo = proxy.dsn(app.app_user, app.app_password, app.dbname, "require", connect_timeout=300)
        burst(tool, conninfo, 20)
        tracer = subprocess.Popen(["strace", "-c", "-f", "-o", out, "-p", str(proxy.pid)],
                                  stderr=subprocess.DEVNULL)
        time.sleep(1)
        burst(tool, conninfo, args.large)
        tracer.send_signal(signal.SIGINT)
        tracer.wait(30)
        text = open(out).read()
    finally:
        proxy.stop()
        proxy.cleanup()
        if os.path.exists(out):
            os.unlink(out)
    rows = []
    for line in text.splitlines():
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+)?\s*(\w+)$", line)
        if m and m.group(3) != "total":
            rows.append((int(m.group(1)), m.group(3)))
    total = sum(c for c, _ in rows)
    rows.sort(reverse=True)
    top = ", ".join(f"{name} {c / args.large:.2f}" for c, name in rows[:10])
    print(f"system calls per login: {total / args.large:.1f} (strace -c, {args.large} logins, "
          f"workers={args.workers}): {top}", flush=True)


def minor_faults(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])  # minflt, field 10


def cpu(args, binary, tool, pg, app):
    proxy = start_proxy(binary, pg, app, args.record_layer, args.workers)
    try:
        conninfo = proxy.dsn(app.app_user, app.app_password, app.dbname, "require", connect_timeout=300)
        burst(tool, conninfo, 50)
        for round_ in range(args.rounds):
            recorder = None
            if args.perf and round_ == args.rounds - 1:
                recorder = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "--call-graph",
                                             args.perf_call_graph, "-o", args.perf, "-p", str(proxy.pid)],
                                            stderr=subprocess.DEVNULL)
                time.sleep(1)
            user0, sys0 = measure.proc_user_system_seconds(proxy.pid)
            faults0 = minor_faults(proxy.pid)
            burst(tool, conninfo, args.cpu_clients)
            user1, sys1 = measure.proc_user_system_seconds(proxy.pid)
            faults = (minor_faults(proxy.pid) - faults0) / args.cpu_clients
            if recorder:
                recorder.send_signal(signal.SIGINT)
                recorder.wait(60)
            per = lambda seconds: seconds * 1000 / args.cpu_clients
            print(f"proxy CPU per login (workers={args.workers}, {args.cpu_clients} logins): "
                  f"{per(user1 - user0 + sys1 - sys0):.3f} ms (user {per(user1 - user0):.3f}, "
                  f"sys {per(sys1 - sys0):.3f}); page faults per login {faults:.1f}; "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        proxy.stop()
        proxy.cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("SLUICE_BUILD", "build"))
    ap.add_argument("--only", default="instructions,syscalls")
    ap.add_argument("--small", type=int, default=50)
    ap.add_argument("--large", type=int, default=250)
    ap.add_argument("--keep", default=None, help="folder for the large burst's callgrind file")
    ap.add_argument("--record-layer", default="sluice", choices=["sluice", "openssl"],
                    help="[tls] record_layer of the proxy (default sluice)")
    ap.add_argument("--rounds", type=int, default=5, help="cpu: bursts measured one after the other")
    ap.add_argument("--cpu-clients", type=int, default=1000, help="cpu: logins per burst (default 1000)")
    ap.add_argument("--workers", type=int, default=1,
                    help="syscalls, cpu: the proxy's worker threads (default 1)")
    ap.add_argument("--perf", default=None, help="cpu: perf.data file for the last burst")
    ap.add_argument("--perf-call-graph", default="fp", help="cpu: perf's --call-graph (default fp)")
    args = ap.parse_args()
    only = args.only.split(",")
    build = os.path.abspath(args.build)
    binary = harness.find_proxy_binary(build)
    tool = os.path.join(build, "sluice-bench-burst")
    needs = [("instructions", "valgrind"), ("syscalls", "strace")] + ([("cpu", "perf")] if args.perf else [])
    for needed, what in needs:
        if needed in only and not shutil.which(what):
            sys.exit(f"{what} is not installed")
    app = harness.AppDatabase()
    pg = harness.PostgresServer(max_connections=100)
    try:
        pg.start()
        harness.setup_app_database(pg, app, pgbench_scale=1)
        if "instructions" in only:
            instructions(args, binary, tool, pg, app)
        if "syscalls" in only:
            syscalls(args, binary, tool, pg, app)
        if "cpu" in only:
            cpu(args, binary, tool, pg, app)
    finally:
        pg.cleanup()


if __name__ == "__main__":
    main()
