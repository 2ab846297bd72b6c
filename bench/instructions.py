#!/usr/bin/python3
"""Noise-free companion to bench.py: user-space instructions per transaction, sluice vs PgBouncer.

TPS and CPU time on a shared 2-core machine move by ±10% between identical runs. The number of
instructions a proxy executes per transaction does not: each proxy runs under valgrind's
callgrind, which counts them. pgbench -S (32 persistent clients) runs twice through each proxy,
with a short and a long transaction count; the difference between the two counts, divided by the
difference in transactions, is the cost of a transaction alone (logins and warm-up cancel out).
Kernel time (the system calls) is not counted; bench.py's CPU columns include it.

--keep DIR keeps each proxy's callgrind file of the long run (DIR/sluice-TLS.callgrind,
DIR/pgbouncer-TLS.callgrind) for callgrind_annotate. --syscalls also runs each proxy natively
under `strace -c -f` for the same two runs: system calls per transaction (the difference over
the difference in transactions, so logins cancel out) and the most frequent ones.

Usage: PYTHONPATH=python /usr/bin/python3 bench/instructions.py --build build [--only tls,notls]
         [--keep DIR] [--syscalls]
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

import bench
from sluice_harness import harness
from sluice_harness.pgbouncer import PgBouncer

CLIENTS = 32
SHORT, LONG = 100, 600  # transactions per client in the two runs


def wrapper(outdir, binary, name):
    """A script that runs `binary` under callgrind (valgrind runs in place: the pid stays)."""
    path = os.path.join(outdir, f"run-{name}")
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\nexec valgrind -q --tool=callgrind --callgrind-out-file={outdir}/{name}.%p '
                f'{binary} "$@"\n')
    os.chmod(path, 0o755)
    return path


def instructions_since_zero(outdir, name, pid, as_user, keep=None):
    """Dumps the counts since the last zeroing and returns their total (the file copied to `keep`)."""
    pre = ["runuser", "-u", as_user, "--"] if as_user else []
    for f in glob.glob(f"{outdir}/{name}.{pid}.*"):
        os.unlink(f)
    subprocess.run(pre + ["callgrind_control", "-d", str(pid)], capture_output=True, check=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        for f in glob.glob(f"{outdir}/{name}.{pid}.*"):
            m = re.search(r"^summary: (\d+)", open(f).read(), re.M)
            if m:
                if keep:
                    shutil.copy(f, keep)
                return int(m.group(1))
        time.sleep(0.2)
    raise RuntimeError(f"no callgrind dump from {name} (pid {pid})")


def pgbench(env, name, transactions):
    r = harness.run_pgbench(env, ["-n", "-S", "-c", str(CLIENTS), "-j", "2", "-t", str(transactions)],
                            timeout=900)
    if r.returncode != 0 or r.failed not in (0, None):
        raise RuntimeError(f"pgbench through {name} failed: {r.stderr[-800:]}")


def per_transaction(env, pid, outdir, name, as_user=None, keep=None):
    pre = ["runuser", "-u", as_user, "--"] if as_user else []

    def run(transactions, keep=None):
        subprocess.run(pre + ["callgrind_control", "-z", str(pid)], capture_output=True, check=True)
        pgbench(env, name, transactions)
        return instructions_since_zero(outdir, name, pid, as_user, keep)

    pgbench(env, name, 20)  # warm up
    short = run(SHORT)
    long = run(LONG, keep)
    if os.environ.get("SLUICE_BENCH_DEBUG"):
        print(f"    {name}: {short:,} instructions for {SHORT}/client, {long:,} for {LONG}/client", flush=True)
    return (long - short) / (CLIENTS * (LONG - SHORT))


def syscalls_per_transaction(env, pid, name):
    """System calls per transaction by name, natively under `strace -c -f`, long run less short."""

    def run(transactions):
        out = tempfile.mktemp(prefix="sluice-txn-strace-")
        tracer = subprocess.Popen(["strace", "-c", "-f", "-o", out, "-p", str(pid)], stderr=subprocess.DEVNULL)
        try:
            time.sleep(1)  # attached to every thread
            pgbench(env, name, transactions)
        finally:
            tracer.send_signal(signal.SIGINT)
            tracer.wait(30)
        counts = {}
        with open(out) as f:
            for line in f:
                m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+)?\s*(\w+)$", line)
                if m and m.group(3) != "total":
                    counts[m.group(3)] = int(m.group(1))
        os.unlink(out)
        return counts

    pgbench(env, name, 20)  # warm up
    short, long = run(SHORT), run(LONG)
    per = {k: (long.get(k, 0) - short.get(k, 0)) / (CLIENTS * (LONG - SHORT)) for k in set(short) | set(long)}
    top = sorted(((v, k) for k, v in per.items() if v >= 0.005), reverse=True)
    return sum(per.values()), ", ".join(f"{k} {v:.2f}" for v, k in top)


def sluice_proxy(binary, pg, app, tls):
    return harness.Proxy(binary, pg.port, users=[(app.app_user, app.app_password)], require_tls=(tls == "tls"),
                         max_client_connections=10000, target={"tls": "disable"},
                         # One worker: callgrind runs threads one at a time and ~50x slower, so
                         # every wait exceeds the workers' patience and connections would move
                         # at every release, which a real run does not do (bench.py's
                         # sluice1/sluice columns compare).
                         workers=1,
                         # Under callgrind the proxy runs ~50x slower and is the bottleneck, so
                         # an adaptive limit would measure valgrind, not the server: count the
                         # relay path with the plain cap.
                         connection_pool={"adaptive_concurrency": False,
                                          "max_connections_percent": 20,
                                          "max_idle_connections_percent": 20,
                                          "connection_borrow_timeout": 120})


def syscalls(binary, pg, app, tls):
    """Both proxies natively, one after the other: their system calls per transaction."""
    sslmode = "require" if tls == "tls" else "disable"
    proxy = sluice_proxy(binary, pg, app, tls)
    proxy.start(timeout=60)
    try:
        s = syscalls_per_transaction(proxy.env(app.app_user, app.app_password, app.dbname, sslmode), proxy.pid,
                                     "sluice")
    finally:
        proxy.stop()
        proxy.cleanup()
    bouncer = PgBouncer(pg, app, False, stored_secret=True)
    try:
        bouncer.start()
        env = pg.direct_env(app.app_user, app.app_password, app.dbname, sslmode)
        env["PGPORT"] = str(bouncer.port)
        b = syscalls_per_transaction(env, bouncer.pid, "pgbouncer")
    finally:
        bouncer.stop()
    print(f"  {tls:5}: system calls/txn (strace -c -f): PgBouncer {b[0]:.2f} ({b[1]}); "
          f"sluice {s[0]:.2f} ({s[1]})", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("SLUICE_BUILD", "build"))
    ap.add_argument("--only", default="", help="tls, notls or both (default both)")
    ap.add_argument("--keep", default=None, help="folder for each proxy's callgrind file of the long run")
    ap.add_argument("--syscalls", action="store_true", help="also count system calls per transaction (strace)")
    args = ap.parse_args()
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    if args.syscalls and not shutil.which("strace"):
        sys.exit("strace is not installed")
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (scripts/install-deps installs it)")
    tlss = [t for t in bench.TLS if not args.only or t in args.only.split(",")]
    binary = harness.find_proxy_binary(os.path.abspath(args.build))

    outdir = tempfile.mkdtemp(prefix="sluice-bench-callgrind-")
    os.chmod(outdir, 0o777)  # PgBouncer runs as postgres and writes its counts here too
    app = harness.AppDatabase()
    pg = harness.PostgresServer(max_connections=100)
    results = {}
    try:
        pg.start()
        harness.setup_app_database(pg, app, pgbench_scale=1)
        for tls in tlss:
            sslmode = "require" if tls == "tls" else "disable"
            proxy = sluice_proxy(wrapper(outdir, binary, "sluice"), pg, app, tls)
            proxy.start(timeout=60)
            try:
                results[("sluice", tls)] = per_transaction(
                    proxy.env(app.app_user, app.app_password, app.dbname, sslmode), proxy.pid, outdir, "sluice",
                    keep=args.keep and os.path.join(args.keep, f"sluice-{tls}.callgrind"))
            finally:
                proxy.stop()
                proxy.cleanup()
            real = harness.PGBOUNCER
            harness.PGBOUNCER = wrapper(outdir, real, "pgbouncer")
            # With the stored SCRAM verifier: otherwise its logins (PBKDF2, and not equally many
            # per run) would swamp the per-transaction figure.
            bouncer = PgBouncer(pg, app, False, stored_secret=True)
            try:
                bouncer.start()
                env = pg.direct_env(app.app_user, app.app_password, app.dbname, sslmode)
                env["PGPORT"] = str(bouncer.port)
                results[("pgbouncer", tls)] = per_transaction(env, bouncer.pid, outdir, "pgbouncer", as_user=harness.PG_USER,
                    keep=args.keep and os.path.join(args.keep, f"pgbouncer-{tls}.callgrind"))
            finally:
                harness.PGBOUNCER = real
                bouncer.stop()
            print(f"  {tls:5}: PgBouncer {results[('pgbouncer', tls)]:,.0f}, "
                  f"sluice {results[('sluice', tls)]:,.0f} instructions/txn", flush=True)
            if args.syscalls:
                syscalls(binary, pg, app, tls)
    finally:
        pg.cleanup()
        shutil.rmtree(outdir, ignore_errors=True)

    print()
    print(f"User-space instructions per transaction (callgrind), pgbench -S, {CLIENTS} persistent clients,"
          f" {LONG - SHORT} transactions per client counted.")
    print("| TLS | PgBouncer instructions/txn | sluice instructions/txn | sluice/PgBouncer |")
    print("|---|---:|---:|---:|")
    for tls in tlss:
        b, s = results[("pgbouncer", tls)], results[("sluice", tls)]
        print(f"| {'require' if tls == 'tls' else 'disable'} | {b:,.0f} | {s:,.0f} | {s / b:.2f} |")


if __name__ == "__main__":
    main()
