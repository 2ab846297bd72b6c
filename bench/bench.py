#!/usr/bin/python3
"""Side-by-side benchmark: PostgreSQL direct vs PgBouncer (transaction mode) vs sluice-proxy.

Starts a private PostgreSQL 15 (max_connections=200, pgbench -i -s 10), a PgBouncer 1.18
(pool_mode=transaction, default_pool_size=20, auth_type=scram-sha-256, client TLS allowed)
and sluice-proxy (max_connections_percent=10 -> 20 server connections), then runs pgbench
select-only (-S) workloads against each:

  persistent : -c 32 -j 2 -T DURATION           (32 long-lived clients)
  prepared   : the same with -M prepared        (named prepared statements; not PgBouncer 1.18)
  jdbc       : 32 pgjdbc connections (prepareThreshold=1), each preparing pgbench's select once
               and executing it over and over (bench/JdbcBench.java; not PgBouncer 1.18)
  connect    : -c 32 -j 2 -T DURATION -C        (a new connection per transaction)

The "relay" contender is build/sluice-bench-relay (bench/relay.cpp): a single-threaded epoll loop
that copies bytes between each client and its own server connection, with no parsing, pooling or
TLS termination (TLS, if any, passes through to PostgreSQL). It is the floor for the extra
loopback hop on this machine: no proxy can beat its ratio to direct by much.

each with TLS (sslmode=require) and without (sslmode=disable; sluice runs with require_tls=false).
The CPU time of each proxy process (utime+stime from /proc/PID/stat) is measured around every
run, and the whole machine's busy CPU time. Prints a markdown table with TPS, proxy CPU us per transaction (= per new client connection
for -C runs) and ratios sluice/PgBouncer and sluice/direct.

Usage: PYTHONPATH=python /usr/bin/python3 bench/bench.py --build build [--duration 5] [--rounds 5] [--warmup 2] [--only pgbouncer,sluice,tls]
  --only takes a comma list of targets (direct, relay, pgbouncer, sluice1, sluice), modes (persistent,
  prepared, jdbc, connect)
  and TLS settings (tls, notls); each given group restricts that dimension.
"""
import argparse
import os
import re
import subprocess
import sys
from statistics import median

from sluice_harness import harness
from sluice_harness.measure import fmt, machine_busy_seconds, proc_user_system_seconds, ratio
from sluice_harness.pgbouncer import POOL, PgBouncer

# sluice runs with its default workers (one per core); sluice1 is the same with workers = 1.
TARGETS = ["direct", "relay", "pgbouncer", "sluice1", "sluice"]
MODES = ["persistent", "prepared", "jdbc", "connect"]
TLS = ["notls", "tls"]


class Relay:
    """build/sluice-bench-relay in front of PostgreSQL: the cost of the hop alone."""

    def __init__(self, binary, pg):
        self.port = harness.free_port()
        self.proc = harness.register_proc(subprocess.Popen([binary, str(self.port), str(pg.port)],
                                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        harness.wait_port("127.0.0.1", self.port, 20, self.proc)
        self.pid = self.proc.pid

    def stop(self):
        self.proc.kill()
        self.proc.wait(5)
        harness.unregister_proc(self.proc)


class JdbcResult:
    """The JDBC workload's outcome, shaped like harness.PgbenchResult."""

    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr
        m = re.search(r"transactions=(\d+) seconds=([\d.]+) failures=(\d+)", stdout)
        self.processed = int(m.group(1)) if m else 0
        self.tps = self.processed / float(m.group(2)) if m and float(m.group(2)) > 0 else 0.0
        self.failed = int(m.group(3)) if m else None


def run_jdbc(env, duration, clients, rows):
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "JdbcBench.java")
    url = f"jdbc:postgresql://{env['PGHOST']}:{env['PGPORT']}/{env['PGDATABASE']}"
    r = subprocess.run(["java", "-cp", "/usr/share/java/postgresql.jar", source, url, env["PGUSER"],
                        env["PGPASSWORD"], env.get("PGSSLMODE", "disable"), str(clients), str(duration),
                        str(rows)], capture_output=True, text=True, timeout=duration * 4 + 120)
    return JdbcResult(r.returncode, r.stdout, r.stderr)


def run_one(env, mode, duration, clients, scale=10):
    if mode == "jdbc":
        return run_jdbc(env, duration, clients, 100000 * scale)
    args = ["-n", "-S", "-c", str(clients), "-j", "2", "-T", str(duration)]
    if mode == "connect":
        args.append("-C")
    if mode == "prepared":
        args += ["-M", "prepared"]
    return harness.run_pgbench(env, args, timeout=duration * 4 + 120)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("SLUICE_BUILD", "build"))
    ap.add_argument("--duration", type=int, default=5, help="seconds per pgbench run (default 5)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="interleaved repetitions per cell; the table shows medians (default 5)")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=2,
                    help="unmeasured seconds of each workload through each target before its rounds "
                         "(default 2; 0: none)")
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--only", default="", help="comma list from: " + ", ".join(TARGETS + MODES + TLS))
    ap.add_argument("--server-tls", action="store_true",
                    help="proxies use TLS towards PostgreSQL too (default: plaintext on the server side for both)")
    args = ap.parse_args()

    only = {x.strip() for x in args.only.split(",") if x.strip()}
    unknown = only - set(TARGETS + MODES + TLS)
    if unknown:
        ap.error(f"unknown --only items: {sorted(unknown)}")
    targets = [t for t in TARGETS if not (only & set(TARGETS)) or t in only]
    modes = [m for m in MODES if not (only & set(MODES)) or m in only]
    tlss = [t for t in TLS if not (only & set(TLS)) or t in only]

    binary = harness.find_proxy_binary(os.path.abspath(args.build))
    if "sluice" in targets and not os.path.exists(binary):
        sys.exit(f"sluice-proxy not found at {binary}")

    print(f"# sluice benchmark: pgbench -S, {args.clients} clients, {args.duration}s per run, scale {args.scale}, "
          f"server pool {POOL}, server-side TLS {'on' if args.server_tls else 'off'}, {os.cpu_count()} CPUs",
          flush=True)
    app = harness.AppDatabase()
    # Room for every contender's pool at once (PgBouncer and four sluice instances keep 20
    # each, direct and relay open 32): with 100, the last proxy to fill its pool found the
    # server full.
    pg = harness.PostgresServer(max_connections=200)
    bouncer = None
    relay = None
    proxies = {}
    results = {}
    runs = {}
    try:
        pg.start()
        print(f"setting up PostgreSQL (pgbench -i -s {args.scale}) ...", flush=True)
        harness.setup_app_database(pg, app, pgbench_scale=args.scale)
        if "relay" in targets:
            relay = Relay(os.path.join(os.path.abspath(args.build), "sluice-bench-relay"), pg)
        if "pgbouncer" in targets:
            bouncer = PgBouncer(pg, app, args.server_tls).start()
        for name in ("sluice", "sluice1"):
            if name not in targets:
                continue
            for tls in tlss:
                extra = {"workers": 1} if name == "sluice1" else {}
                p = harness.Proxy(binary, pg.port, users=[(app.app_user, app.app_password)],
                                  require_tls=(tls == "tls"), max_client_connections=10000,
                                  target={"tls": "require" if args.server_tls else "disable"},
                                  connection_pool={"max_connections_percent": 10,
                                                   "max_idle_connections_percent": 10,
                                                   "connection_borrow_timeout": 120}, **extra)
                p.start()
                proxies[(name, tls)] = p

        for mode in modes:
            for tls in tlss:
                sslmode = "require" if tls == "tls" else "disable"
                # Round -1 is the warm-up: each target's server connections have run the workload
                # before anything is measured (PgBouncer's are shared between the TLS settings,
                # each sluice's are its own, so a cold first round would count against sluice).
                first = -1 if args.warmup > 0 else 0
                for rnd, target in [(r_, t_) for r_ in range(first, args.rounds) for t_ in targets]:
                    if target == "pgbouncer" and mode in ("prepared", "jdbc"):
                        continue  # PgBouncer 1.18 has no prepared statements in transaction mode
                    if target == "direct":
                        env = pg.direct_env(app.app_user, app.app_password, app.dbname, sslmode)
                        pid = None
                    elif target == "relay":
                        env = pg.direct_env(app.app_user, app.app_password, app.dbname, sslmode)
                        env["PGPORT"] = str(relay.port)
                        pid = relay.pid
                    elif target == "pgbouncer":
                        env = pg.direct_env(app.app_user, app.app_password, app.dbname, sslmode)
                        env["PGPORT"] = str(bouncer.port)
                        pid = bouncer.pid
                    else:
                        proxy = proxies[(target, tls)]
                        env = proxy.env(app.app_user, app.app_password, app.dbname, sslmode)
                        pid = proxy.pid
                    if rnd < 0:
                        run_one(env, mode, args.warmup, args.clients, args.scale)
                        continue
                    cpu0 = proc_user_system_seconds(pid) if pid else None
                    busy0 = machine_busy_seconds()
                    r = run_one(env, mode, args.duration, args.clients, args.scale)
                    busy1 = machine_busy_seconds()
                    cpu1 = proc_user_system_seconds(pid) if pid else None
                    cpu_us = user_us = None
                    if pid and r.processed:
                        cpu_us = (sum(cpu1) - sum(cpu0)) * 1e6 / r.processed
                        user_us = (cpu1[0] - cpu0[0]) * 1e6 / r.processed
                    ok = r.returncode == 0 and r.processed > 0 and r.failed in (0, None)
                    machine_us = (busy1 - busy0) * 1e6 / r.processed if r.processed else None
                    runs.setdefault((target, mode, tls), []).append(
                        dict(tps=r.tps if ok else None, cpu_us=cpu_us if ok else None, n=r.processed, ok=ok,
                             user_us=user_us, machine_us=machine_us if ok else None, round=rnd))
                    status = "ok" if ok else f"FAILED (rc={r.returncode})"
                    print(f"  {target:9} {mode:10} {tls:5} round {rnd + 1}: tps={fmt(r.tps, 0)} txns={r.processed}"
                          f" proxy_cpu_us/txn={fmt(cpu_us, 1)} (user {fmt(user_us, 1)})"
                          f" machine_cpu_us/txn={fmt(machine_us, 1)} {status}", flush=True)
                    if not ok:
                        print("    " + r.stderr.strip().replace("\n", "\n    ")[-1500:], flush=True)
    finally:
        for p in proxies.values():
            p.stop()
            p.cleanup()
        if bouncer:
            bouncer.stop()
        if relay:
            relay.stop()
        pg.cleanup()

    for key, rs in runs.items():
        ok = all(x["ok"] for x in rs)
        results[key] = dict(ok=ok, tps=median([x["tps"] for x in rs]) if ok else None,
                            cpu_us=median([x["cpu_us"] for x in rs]) if ok and rs[0]["cpu_us"] is not None else None,
                            machine_us=median([x["machine_us"] for x in rs]) if ok else None)

    def paired(mode, tls, a, b):
        """Median and range of per-round TPS ratios a/b. Runs of one round are seconds apart, so a
        ratio within a round cancels most of the shared machine's drift; the range shows the rest."""
        ra = {x["round"]: x["tps"] for x in runs.get((a, mode, tls), []) if x["ok"]}
        rb = {x["round"]: x["tps"] for x in runs.get((b, mode, tls), []) if x["ok"]}
        rs = sorted(ra[k] / rb[k] for k in ra if k in rb and rb[k])
        if not rs:
            return "n/a"
        return f"{median(rs):.2f} ({rs[0]:.2f}–{rs[-1]:.2f})"

    print()
    print(f"Medians of {args.rounds} interleaved rounds of {args.duration}s; ratios are medians of per-round"
          " ratios (range in brackets). relay = bytes copied, no proxy logic: the floor for the hop.")
    print("| workload | TLS | direct TPS | relay TPS | PgBouncer TPS | sluice TPS | sluice/PgBouncer TPS |"
          " sluice/direct TPS | relay/direct TPS | PgBouncer CPU µs/txn | sluice CPU µs/txn | sluice/PgBouncer CPU |"
          " machine CPU µs/txn: direct, PgBouncer, sluice |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for mode in modes:
        for tls in tlss:
            d = results.get(("direct", mode, tls), {})
            rl = results.get(("relay", mode, tls), {})
            b = results.get(("pgbouncer", mode, tls), {})
            s = results.get(("sluice", mode, tls), {})
            label = f"JDBC, {args.clients} connections, prepare once, execute many" if mode == "jdbc" else \
                f"-S -c {args.clients}" + {"connect": " -C (µs/txn = µs per new client connection)",
                                               "prepared": " -M prepared persistent",
                                               "persistent": " persistent"}[mode]
            print(f"| {label} | {'require' if tls == 'tls' else 'disable'} | {fmt(d.get('tps'))} |"
                  f" {fmt(rl.get('tps'))} | {fmt(b.get('tps'))} | {fmt(s.get('tps'))} |"
                  f" {paired(mode, tls, 'sluice', 'pgbouncer')} | {paired(mode, tls, 'sluice', 'direct')} |"
                  f" {paired(mode, tls, 'relay', 'direct')} |"
                  f" {fmt(b.get('cpu_us'), 1)} | {fmt(s.get('cpu_us'), 1)} | {ratio(s.get('cpu_us'), b.get('cpu_us'))} |"
                  f" {fmt(d.get('machine_us'), 1)}, {fmt(b.get('machine_us'), 1)}, {fmt(s.get('machine_us'), 1)} |")
    if "sluice1" in targets and "sluice" in targets:
        print("\nWorkers: sluice with its default workers (one per core) against workers = 1.")
        print("| workload | TLS | workers=1 TPS | default TPS | default/1 TPS | workers=1 CPU µs/txn |"
              " default CPU µs/txn |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for mode in modes:
            for tls in tlss:
                one = results.get(("sluice1", mode, tls), {})
                dflt = results.get(("sluice", mode, tls), {})
                print(f"| {mode} | {'require' if tls == 'tls' else 'disable'} | {fmt(one.get('tps'))} |"
                      f" {fmt(dflt.get('tps'))} | {paired(mode, tls, 'sluice', 'sluice1')} |"
                      f" {fmt(one.get('cpu_us'), 1)} | {fmt(dflt.get('cpu_us'), 1)} |")
    if ("prepared" in modes or "jdbc" in modes) and "pgbouncer" in targets:
        print("\n-M prepared and JDBC: PgBouncer 1.18 (Debian 12) cannot run named prepared statements in"
              " transaction mode (support came in 1.21), so it has no figures there.")
    failed = [k for k, v in results.items() if not v["ok"]]
    if failed:
        print(f"\nFAILED runs: {failed}")
        sys.exit(1)


if __name__ == "__main__":
    main()
