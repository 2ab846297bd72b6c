#!/usr/bin/python3
"""What a second worker thread costs: pgbench -S -c 32 against sluice with workers = 1 and 2.

For each run it reports TPS, the proxy's CPU per transaction, and per transaction: context
switches of the proxy's threads (voluntary and involuntary, from /proc/PID/task/*/status), server
logins, borrows that waited, connections moved between workers and wake-ups one worker posted to
another (from /metrics); and how the clients and the transactions were spread over the workers.

Usage: PYTHONPATH=python /usr/bin/python3 bench/workers.py --build build [--rounds 3] [--duration 5]
    [--only tls,notls] [--workers 1,2] [--adaptive on,off] [--placement pack,spread]
    [--compare-binary OTHER/sluice-proxy]  (an older binary: leave --placement at one value)
"""
import argparse
import glob
import os
import sys
from statistics import median

from sluice_harness import harness
from sluice_harness.measure import proc_user_system_seconds

COUNTERS = ["database_connections_setup_succeeded", "database_connections_borrow_waits",
            "database_connections_moved", "worker_cross_posts", "query_requests"]


def thread_switches(pid):
    """{thread name+tid: (voluntary, involuntary, cpu ticks)} for every thread of `pid`."""
    out = {}
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            status = open(os.path.join(task, "status")).read()
            stat = open(os.path.join(task, "stat")).read()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        after = stat[stat.rindex(")") + 2:].split()
        ticks = int(after[11]) + int(after[12])
        out[os.path.basename(task)] = (int(fields["voluntary_ctxt_switches"]),
                                       int(fields["nonvoluntary_ctxt_switches"]), ticks)
    return out


def counters(proxy):
    m = proxy.metrics()
    return {c: m.get("sluice_" + c) if m.has("sluice_" + c) else 0.0 for c in COUNTERS}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("SLUICE_BUILD", "build"))
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--only", default="notls,tls")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--adaptive", default="on")
    ap.add_argument("--placement", default="pack,spread",
                    help="with 2+ workers: pack (by load, the default) and/or spread (spread_clients)")
    ap.add_argument("--compare-binary", default=None)
    args = ap.parse_args()
    tlss = [t for t in args.only.split(",") if t]
    binaries = {"": harness.find_proxy_binary(os.path.abspath(args.build))}
    if args.compare_binary:
        binaries["other"] = os.path.abspath(args.compare_binary)
    app = harness.AppDatabase()
    pg = harness.PostgresServer(max_connections=200)
    proxies = {}
    rows = {}
    try:
        pg.start()
        harness.setup_app_database(pg, app, pgbench_scale=10)
        for label, binary in binaries.items():
            for w in [int(x) for x in args.workers.split(",")]:
                for adaptive, placement, tls in [(a, pl, t) for a in args.adaptive.split(",")
                                                 for pl in (args.placement.split(",") if w > 1 else ["pack"])
                                                 for t in tlss]:
                    if True:
                        p = harness.Proxy(binary, pg.port, users=[(app.app_user, app.app_password)],
                                          require_tls=(tls == "tls"), max_client_connections=10000,
                                          workers=w, target={"tls": "disable"},
                                          spread_clients=(placement == "spread"),
                                          connection_pool={"max_connections_percent": 10,
                                                           "max_idle_connections_percent": 10,
                                                           "connection_borrow_timeout": 120,
                                                           "adaptive_concurrency": adaptive == "on"})
                        p.start()
                        tag = f"w{w} {adaptive}" + (f" {placement}" if w > 1 else "")
                        proxies[(label + (" " if label else "") + tag, tls)] = p
        for tls in tlss:
            sslmode = "require" if tls == "tls" else "disable"
            for rnd in range(args.rounds):
                for (name, t), p in proxies.items():
                    if t != tls:
                        continue
                    env = p.env(app.app_user, app.app_password, app.dbname, sslmode)
                    c0, t0, cpu0 = counters(p), thread_switches(p.pid), proc_user_system_seconds(p.pid)
                    load = os.getloadavg()[0]
                    r = harness.run_pgbench(env, ["-n", "-S", "-c", str(args.clients), "-j", "2",
                                                  "-T", str(args.duration)], timeout=args.duration * 4 + 60)
                    c1, t1, cpu1 = counters(p), thread_switches(p.pid), proc_user_system_seconds(p.pid)
                    n = max(r.processed, 1)
                    per = {k: (c1[k] - c0[k]) / n for k in COUNTERS}
                    vol = sum(t1[k][0] - t0.get(k, (0, 0, 0))[0] for k in t1) / n
                    invol = sum(t1[k][1] - t0.get(k, (0, 0, 0))[1] for k in t1) / n
                    busy = sorted(((t1[k][2] - t0.get(k, (0, 0, 0))[2]) for k in t1), reverse=True)
                    row = dict(tps=r.tps, cpu=(sum(cpu1) - sum(cpu0)) * 1e6 / n, vol=vol, invol=invol,
                               logins=per["database_connections_setup_succeeded"] * 1000,
                               waits=per["database_connections_borrow_waits"],
                               moved=per["database_connections_moved"] * 1000,
                               posts=per["worker_cross_posts"] * 1000, load=load)
                    rows.setdefault((name, tls), []).append(row)
                    print(f"{name:14} {tls:5} r{rnd + 1} load {load:4.1f} tps {r.tps:7.0f} cpu/txn {row['cpu']:5.1f}us"
                          f" ctxsw/txn vol {vol:.3f} invol {invol:.3f} logins/1k {row['logins']:.2f}"
                          f" waits/txn {row['waits']:.3f} moves/1k {row['moved']:.2f} posts/1k {row['posts']:.2f}"
                          f" thread ticks {busy[:3]}", flush=True)
    finally:
        for p in proxies.values():
            p.stop()
            p.cleanup()
        pg.cleanup()
    print("\n| proxy | TLS | TPS | CPU µs/txn | ctx sw/txn (vol+invol) | waits/txn | moves/1k txn | posts/1k txn |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for (name, tls), rs in rows.items():
        med = {k: median(x[k] for x in rs) for k in rs[0]}
        print(f"| {name} | {tls} | {med['tps']:.0f} | {med['cpu']:.1f} | {med['vol'] + med['invol']:.3f} |"
              f" {med['waits']:.3f} | {med['moved']:.2f} | {med['posts']:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
