#!/usr/bin/python3
"""Database restarts as clients see them: sluice-proxy against PgBouncer.

A private PostgreSQL 15 (synchronous_commit on, so that acknowledged commits survive even
`-m immediate`), PgBouncer 1.18 (transaction mode, 20 server connections) and sluice-proxy (20
server connections, connection_borrow_timeout 60 s). CLIENTS psycopg clients (autocommit off)
each run money transfers in a loop (python/sluice_harness/transfers.py): two UPDATEs of
`accounts` and an INSERT into a ledger, then COMMIT. After a warm-up, PostgreSQL restarts
(`pg_ctl restart -m fast`, then `-m immediate`) and the load goes on for a few seconds. A
client whose connection closes reconnects (that is what PgBouncer's clients must do).

Per proxy and restart mode:
  commits        acknowledged COMMITs
  errors         statements that failed, and how many clients saw any
  lost conns     client connections that closed (sluice keeps them; see tests/system/test_restart.py)
  longest gap    the longest time without any client's COMMIT succeeding
  stuck          clients that committed nothing after the restart
  lost commits   acknowledged transfers missing from the ledger afterwards (must be 0), and
                 whether the balances still sum to the start total and agree with the ledger

Usage: PYTHONPATH=python /usr/bin/python3 bench/restart.py --build build [--clients 16]
         [--after 5] [--modes fast,immediate]
"""
import argparse
import os
import sys
import time

from sluice_harness import harness, transfers
from sluice_harness.pgbouncer import PgBouncer


def run_once(pg, app, dsn, clients, mode, after):
    transfers.prepare_ledger(pg, app, "restart_ledger")
    # No server-side prepared statements: PgBouncer 1.18 cannot carry them.
    load = transfers.TransferLoad(app, [dsn] * clients, "restart_ledger").start()
    time.sleep(3)
    load.phase("during")
    pg.restart(mode)
    load.phase("after")
    time.sleep(after)
    hung = load.stop(90)
    return dict(load.summary("after"), hung=hung, **load.check_ledger(pg))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("SLUICE_BUILD", "build"))
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--after", type=float, default=5, help="seconds of load after the restart")
    ap.add_argument("--modes", default="fast,immediate")
    args = ap.parse_args()
    modes = args.modes.split(",")
    print(f"# restart bench: {args.clients} psycopg clients of money transfers, pg_ctl restart -m "
          f"{'/'.join(modes)}, {args.after:g} s of load after each", flush=True)
    app = harness.AppDatabase()
    pg = harness.PostgresServer(max_connections=100, extra_conf={"synchronous_commit": "on"})
    bouncer = proxy = None
    rows = []
    ok = True
    try:
        pg.start()
        harness.setup_app_database(pg, app, pgbench_scale=1, accounts=app.accounts)
        bouncer = PgBouncer(pg, app, False).start()
        proxy = harness.Proxy(os.path.join(os.path.abspath(args.build), "sluice-proxy"), pg.port,
                              users=[(app.app_user, app.app_password)], target={"tls": "disable"},
                              require_tls=False,
                              connection_pool={"max_connections_percent": 20,
                                               "connection_borrow_timeout": 60})
        proxy.start()
        targets = {
            "pgbouncer": harness.conninfo(host="127.0.0.1", port=bouncer.port, user=app.app_user,
                                     password=app.app_password, dbname=app.dbname, sslmode="disable"),
            "sluice": proxy.dsn(app.app_user, app.app_password, app.dbname, "disable"),
        }
        for mode in modes:
            for name, dsn in targets.items():
                r = run_once(pg, app, dsn, args.clients, mode, args.after)
                rows.append((mode, name, r))
                ok &= r["lost_commits"] == 0 and r["duplicated"] == 0 and r["consistent"] and r["hung"] == 0
                print(f"  -m {mode:9} {name:9} {r}", flush=True)
    finally:
        if proxy:
            proxy.stop()
        if bouncer:
            bouncer.stop()
        pg.cleanup()
    print()
    print("| restart | proxy | commits | errors (clients) | SQLSTATEs | connections lost | longest gap s |"
          " stuck clients | lost commits | consistent |")
    print("|---|---|---:|---:|---|---:|---:|---:|---:|---|")
    for mode, name, r in rows:
        print(f"| -m {mode} | {name} | {r['commits']} | {r['errors']} ({r['clients_with_errors']}) |"
              f" {', '.join(r['sqlstates'])} | {r['lost']} | {r['gap']:.2f} | {r['stuck']} |"
              f" {r['lost_commits']} | {'yes' if r['consistent'] else 'NO'} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
