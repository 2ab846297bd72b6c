#!/usr/bin/python3
"""CPU contention: the proxies while other programs keep the machine's CPU busy.

The adaptive concurrency limit (docs/adaptive-concurrency.md) reads slower transactions as a
server queue. When the slowness comes from programs that are not the database, backing off hands
the CPU to those programs; this bench shows whether sluice holds its own there.

A private PostgreSQL 15 (max_connections 200, pgbench -i -s SCALE), PgBouncer 1.18 (transaction
mode, 20 server connections) and sluice-proxy twice (10 % of max_connections = 20 server
connections, one proxy per TLS setting, so all fit): with
`adaptive_concurrency = true` (the default) and `false` (the fixed cap), set up as in
bench/bench.py. For each count of busy programs (`yes >/dev/null`, niced 0 like the database),
pgbench -S -c CLIENTS -j 2 runs against each proxy, TLS and plaintext, in interleaved rounds
after an unmeasured 3 s warm-up of each.
While sluice adaptive runs, its /metrics limit (sluice_database_connections_concurrency_limit,
summed over workers) is read every 0.2 s.

Prints per-run lines, then a markdown table: TPS medians, per-round ratios sluice/PgBouncer
(median and range), and the adaptive limit's range (min, median, max).

Usage: PYTHONPATH=python /usr/bin/python3 bench/contention.py --build build
    [--hogs 0,2] [--rounds 5] [--duration 8] [--only tls,notls]
    [--compare-binary OTHER/sluice-proxy]   # adds "sluice-other": that binary, adaptive on
"""
import argparse
import os
import subprocess
import sys
import threading
from statistics import median

from sluice_harness import harness
from sluice_harness.measure import fmt
from sluice_harness.pgbouncer import PgBouncer

LIMIT_METRIC = "sluice_database_connections_concurrency_limit"
TLS = ["notls", "tls"]


class Hogs:
    """`count` busy programs that are not the database: each spins on a core at nice 0."""

    def __init__(self, count):
        self.procs = [harness.register_proc(subprocess.Popen(["yes"], stdout=subprocess.DEVNULL,
                                                             stdin=subprocess.DEVNULL))
                      for _ in range(count)]

    def stop(self):
        for p in self.procs:
            p.kill()
            p.wait(5)
            harness.unregister_proc(p)
        self.procs = []


class LimitWatcher(threading.Thread):
    """Reads sluice's adaptive limit off /metrics while a run goes on."""

    def __init__(self, proxy, interval=0.2):
        super().__init__(daemon=True)
        self.proxy, self.interval = proxy, interval
        self.values = []
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(self.interval):
            try:
                self.values.append(self.proxy.metrics().get(LIMIT_METRIC))
            except Exception:  # a slow /metrics on a busy machine skips a reading
                pass

    def stop(self):
        self.done.set()
        self.join(10)
        return self.values


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("SLUICE_BUILD", "build"))
    ap.add_argument("--hogs", default=f"0,{os.cpu_count()}",
                    help="comma list of busy-program counts (default: 0 and one per CPU)")
    ap.add_argument("--duration", type=int, default=8, help="seconds per pgbench run (default 8)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds per cell (default 5)")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--only", default="", help="tls and/or notls")
    ap.add_argument("--compare-binary", default="",
                    help="another sluice-proxy build to run adaptive beside this one (before/after)")
    args = ap.parse_args()

    hog_counts = [int(x) for x in args.hogs.split(",") if x.strip()]
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    tlss = [t for t in TLS if not only or t in only]
    binary = harness.find_proxy_binary(os.path.abspath(args.build))
    if not os.path.exists(binary):
        sys.exit(f"sluice-proxy not found at {binary}")
    # name -> (binary, adaptive_concurrency)
    sluices = {"sluice": (binary, True), "sluice-fixed": (binary, False)}
    if args.compare_binary:
        sluices["sluice-other"] = (os.path.abspath(args.compare_binary), True)
    targets = ["pgbouncer", *sluices]

    print(f"# contention bench: pgbench -S -c {args.clients} -j 2, {args.duration}s per run, scale {args.scale},"
          f" busy programs {hog_counts}, {os.cpu_count()} CPUs, {args.rounds} rounds", flush=True)
    app = harness.AppDatabase()
    # Six sluice proxies and PgBouncer keep 20 server connections each: max_connections 200 and
    # 10 % for sluice (20 each, as in bench.py) leave room for all.
    pg = harness.PostgresServer(max_connections=200)
    bouncer, hogs = None, None
    proxies = {}
    runs = {}  # (hogs, tls, target) -> [dict(round, tps, limits)]
    failed = False

    def target_env(target, tls, sslmode):
        if target == "pgbouncer":
            env = pg.direct_env(app.app_user, app.app_password, app.dbname, sslmode)
            env["PGPORT"] = str(bouncer.port)
            return env
        return proxies[(target, tls)].env(app.app_user, app.app_password, app.dbname, sslmode)

    try:
        pg.start()
        harness.setup_app_database(pg, app, pgbench_scale=args.scale)
        bouncer = PgBouncer(pg, app, False).start()
        for name, (path, adaptive) in sluices.items():
            for tls in tlss:
                p = harness.Proxy(path, pg.port, users=[(app.app_user, app.app_password)],
                                  require_tls=(tls == "tls"), max_client_connections=10000,
                                  target={"tls": "disable"},
                                  connection_pool={"max_connections_percent": 10,
                                                   "max_idle_connections_percent": 10,
                                                   "connection_borrow_timeout": 120,
                                                   "adaptive_concurrency": adaptive})
                p.start()
                proxies[(name, tls)] = p
        for count in hog_counts:
            hogs = Hogs(count)
            for tls in tlss:
                sslmode = "require" if tls == "tls" else "disable"
                # Unmeasured warm-up: pools fill and the adaptive limit meets this load first.
                for target in targets:
                    harness.run_pgbench(target_env(target, tls, sslmode),
                                        ["-n", "-S", "-c", str(args.clients), "-j", "2", "-T", "3"], timeout=120)
                for rnd in range(args.rounds):
                    for target in targets:
                        env = target_env(target, tls, sslmode)
                        watcher = None if target == "pgbouncer" else LimitWatcher(proxies[(target, tls)])
                        if watcher:
                            watcher.start()
                        r = harness.run_pgbench(env, ["-n", "-S", "-c", str(args.clients), "-j", "2",
                                                      "-T", str(args.duration)], timeout=args.duration * 4 + 120)
                        limits = watcher.stop() if watcher else []
                        ok = r.returncode == 0 and r.processed > 0 and r.failed in (0, None)
                        failed |= not ok
                        runs.setdefault((count, tls, target), []).append(
                            dict(round=rnd, tps=r.tps if ok else None, limits=limits))
                        lim = f" limit min/median/max={min(limits):.0f}/{median(limits):.0f}/{max(limits):.0f}" \
                            if limits else ""
                        print(f"  hogs={count} {tls:5} round {rnd + 1} {target:12} tps={fmt(r.tps, 0)}{lim}"
                              f" {'ok' if ok else f'FAILED (rc={r.returncode})'}", flush=True)
                        if not ok:
                            print("    " + r.stderr.strip().replace("\n", "\n    ")[-1500:], flush=True)
            hogs.stop()
            hogs = None
    finally:
        if hogs:
            hogs.stop()
        for p in proxies.values():
            p.stop()
            p.cleanup()
        if bouncer:
            bouncer.stop()
        pg.cleanup()

    def tps_median(key):
        xs = [x["tps"] for x in runs.get(key, []) if x["tps"] is not None]
        return median(xs) if xs else None

    def paired(count, tls, a, b):
        """Median and range of per-round TPS ratios a/b (runs of a round are seconds apart)."""
        ra = {x["round"]: x["tps"] for x in runs.get((count, tls, a), []) if x["tps"]}
        rb = {x["round"]: x["tps"] for x in runs.get((count, tls, b), []) if x["tps"]}
        rs = sorted(ra[k] / rb[k] for k in ra if k in rb)
        return f"{median(rs):.2f} ({rs[0]:.2f}–{rs[-1]:.2f})" if rs else "n/a"

    def limit_range(count, tls, target):
        xs = [v for x in runs.get((count, tls, target), []) for v in x["limits"]]
        return f"{min(xs):.0f} / {median(xs):.0f} / {max(xs):.0f}" if xs else "n/a"

    print()
    print(f"Medians of {args.rounds} interleaved rounds of {args.duration}s; ratios are medians of per-round"
          " ratios (range in brackets); limit = sluice adaptive's /metrics limit over its runs (min / median / max).")
    others = [t for t in sluices if t != "sluice"]
    head = "| busy programs | TLS | PgBouncer TPS | " + " | ".join(f"{t} TPS" for t in sluices) + " | " + \
        " | ".join(f"{t}/PgBouncer" for t in sluices) + " | sluice/sluice-fixed | adaptive limit |" + \
        ("" if "sluice-other" not in sluices else " sluice-other limit |")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for count in hog_counts:
        for tls in tlss:
            row = [str(count), "require" if tls == "tls" else "disable", fmt(tps_median((count, tls, "pgbouncer")))]
            row += [fmt(tps_median((count, tls, t))) for t in sluices]
            row += [paired(count, tls, t, "pgbouncer") for t in sluices]
            row.append(paired(count, tls, "sluice", "sluice-fixed"))
            row.append(limit_range(count, tls, "sluice"))
            if "sluice-other" in others:
                row.append(limit_range(count, tls, "sluice-other"))
            print("| " + " | ".join(row) + " |")
    if failed:
        print("\nFAILED runs: see above")
        sys.exit(1)


if __name__ == "__main__":
    main()
