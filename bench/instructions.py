#!/usr/bin/python3
"""Noise-free companion to bench.py: user-space instructions per transaction, sluice vs PgBouncer.

TPS and CPU time on a shared 2-core machine move by ±10% between identical runs. The number of
instructions a proxy executes per transaction does not: each proxy runs under valgrind's
callgrind, which counts them. pgbench -S (32 persistent clients) runs twice through each proxy,
with a short and a long transaction count; the difference between the two counts, divided by the
difference in transactions, is the cost of a transaction alone (logins and warm-up cancel out).
Kernel time (the system calls) is not counted; bench.py's CPU columns include it.

Usage: PYTHONPATH=python /usr/bin/python3 bench/instructions.py --build build [--only tls,notls]
"""
import argparse
import glob
import os
import re
import shutil
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


def instructions_since_zero(outdir, name, pid, as_user):
    """Dumps the counts since the last zeroing and returns their total."""
    pre = ["runuser", "-u", as_user, "--"] if as_user else []
    for f in glob.glob(f"{outdir}/{name}.{pid}.*"):
        os.unlink(f)
    subprocess.run(pre + ["callgrind_control", "-d", str(pid)], capture_output=True, check=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        for f in glob.glob(f"{outdir}/{name}.{pid}.*"):
            m = re.search(r"^summary: (\d+)", open(f).read(), re.M)
            if m:
                return int(m.group(1))
        time.sleep(0.2)
    raise RuntimeError(f"no callgrind dump from {name} (pid {pid})")


def per_transaction(env, pid, outdir, name, as_user=None):
    pre = ["runuser", "-u", as_user, "--"] if as_user else []

    def run(transactions):
        subprocess.run(pre + ["callgrind_control", "-z", str(pid)], capture_output=True, check=True)
        r = harness.run_pgbench(env, ["-n", "-S", "-c", str(CLIENTS), "-j", "2", "-t", str(transactions)],
                                timeout=900)
        if r.returncode != 0 or r.failed not in (0, None):
            raise RuntimeError(f"pgbench through {name} failed: {r.stderr[-800:]}")
        return instructions_since_zero(outdir, name, pid, as_user)

    harness.run_pgbench(env, ["-n", "-S", "-c", str(CLIENTS), "-j", "2", "-t", "20"], timeout=900)  # warm up
    short = run(SHORT)
    long = run(LONG)
    if os.environ.get("SLUICE_BENCH_DEBUG"):
        print(f"    {name}: {short:,} instructions for {SHORT}/client, {long:,} for {LONG}/client", flush=True)
    return (long - short) / (CLIENTS * (LONG - SHORT))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("SLUICE_BUILD", "build"))
    ap.add_argument("--only", default="", help="tls, notls or both (default both)")
    args = ap.parse_args()
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
            proxy = harness.Proxy(wrapper(outdir, binary, "sluice"), pg.port,
                                  users=[(app.app_user, app.app_password)], require_tls=(tls == "tls"),
                                  max_client_connections=10000, target={"tls": "disable"},
                                  # One worker: callgrind runs threads one at a time and ~50x
                                  # slower, so every wait exceeds the workers' patience and
                                  # connections would move at every release, which a real run
                                  # does not do (bench.py's sluice1/sluice columns compare).
                                  workers=1,
                                  # Under callgrind the proxy runs ~50x slower and is the
                                  # bottleneck, so an adaptive limit would measure valgrind,
                                  # not the server: count the relay path with the plain cap.
                                  connection_pool={"adaptive_concurrency": False,
                                                   "max_connections_percent": 20,
                                                   "max_idle_connections_percent": 20,
                                                   "connection_borrow_timeout": 120})
            proxy.start(timeout=60)
            try:
                results[("sluice", tls)] = per_transaction(
                    proxy.env(app.app_user, app.app_password, app.dbname, sslmode), proxy.pid, outdir, "sluice")
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
                results[("pgbouncer", tls)] = per_transaction(env, bouncer.pid, outdir, "pgbouncer",
                                                              as_user=harness.PG_USER)
            finally:
                harness.PGBOUNCER = real
                bouncer.stop()
            print(f"  {tls:5}: PgBouncer {results[('pgbouncer', tls)]:,.0f}, "
                  f"sluice {results[('sluice', tls)]:,.0f} instructions/txn", flush=True)
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
