#!/usr/bin/python3
"""A failover as clients see it: sluice-proxy against PgBouncer.

Per proxy, a fresh cluster: a private PostgreSQL 15 primary (synchronous_commit on) and a hot
standby streaming from it (pg_basebackup -R). sluice-proxy has [target] hosts = [primary,
standby] (20 server connections, connection_borrow_timeout 60 s) and finds the new primary
itself. PgBouncer 1.18 takes one host per database: it points at the primary, and after the
promotion it gets what an operator's (or a DNS/VIP switch's) failover gives it: its [databases]
line is rewritten to the new primary and it is RELOADed (SIGHUP), at once.

CLIENTS psycopg clients (autocommit off) run money transfers in a loop (two UPDATEs and a ledger
INSERT, then COMMIT: python/sluice_harness/transfers.py). After a warm-up the primary stops
(`pg_ctl stop -m fast`, which first sends
its WAL to the standby) and the standby is promoted (`pg_ctl promote -w`); the load goes on for
a few seconds. A client whose connection closes reconnects.

Per proxy:
  commits        acknowledged COMMITs
  errors         statements that failed, and how many clients saw any
  lost conns     client connections that closed (sluice keeps them)
  longest gap    the longest time without any client's COMMIT succeeding (the failover's cost)
  stuck          clients that committed nothing after the promotion
  lost commits   acknowledged transfers missing from the new primary's ledger (must be 0)

Usage: PYTHONPATH=python /usr/bin/python3 bench/failover.py --build build [--clients 16]
         [--after 5]
"""
import argparse
import os
import signal
import sys
import time

from sluice_harness import harness, transfers
from sluice_harness.pgbouncer import PgBouncer


def make_cluster(app):
    primary = harness.PostgresServer(max_connections=100, extra_conf={"synchronous_commit": "on"})
    primary.start()
    harness.setup_app_database(primary, app, pgbench_scale=1, accounts=app.accounts)
    transfers.prepare_ledger(primary, app, "failover_ledger")
    standby = harness.StandbyServer(primary).start()
    return primary, standby


def run_once(primary, standby, app, dsn, clients, after, promoted):
    # No server-side prepared statements: PgBouncer 1.18 cannot carry them.
    load = transfers.TransferLoad(app, [dsn] * clients, "failover_ledger", connect_timeout=5).start()
    time.sleep(3)
    load.phase("during")
    started = time.monotonic()
    primary.stop("fast")
    standby.promote()
    promoted()
    failover_s = time.monotonic() - started
    load.phase("after")
    time.sleep(after)
    hung = load.stop(90)
    return dict(load.summary("after"), hung=hung, failover_s=failover_s,
                **load.check_ledger(standby))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("SLUICE_BUILD", "build"))
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--after", type=float, default=5, help="seconds of load after the promotion")
    args = ap.parse_args()
    print(f"# failover bench: {args.clients} psycopg clients of money transfers; the primary stops "
          f"(-m fast), the standby is promoted; {args.after:g} s of load after", flush=True)
    app = harness.AppDatabase()
    rows = []
    ok = True
    for name in ("pgbouncer", "sluice"):
        primary = standby = bouncer = proxy = None
        try:
            primary, standby = make_cluster(app)
            if name == "pgbouncer":
                bouncer = PgBouncer(primary, app, False).start()
                dsn = harness.conninfo(host="127.0.0.1", port=bouncer.port, user=app.app_user,
                                       password=app.app_password, dbname=app.dbname,
                                       sslmode="disable")

                def promoted(bouncer=bouncer, old=primary.port, new=standby.port):
                    with open(bouncer.ini) as f:
                        ini = f.read()
                    with open(bouncer.ini, "w") as f:
                        f.write(ini.replace(f"port={old} ", f"port={new} "))
                    os.kill(bouncer.pid, signal.SIGHUP)
            else:
                proxy = harness.Proxy(
                    os.path.join(os.path.abspath(args.build), "sluice-proxy"), primary.port,
                    users=[(app.app_user, app.app_password)], require_tls=False,
                    target={"host": None, "port": None, "tls": "disable",
                            "hosts": [f"127.0.0.1:{primary.port}", f"127.0.0.1:{standby.port}"]},
                    connection_pool={"max_connections_percent": 20,
                                     "connection_borrow_timeout": 60})
                proxy.start()
                dsn = proxy.dsn(app.app_user, app.app_password, app.dbname, "disable")

                def promoted():
                    pass
            r = run_once(primary, standby, app, dsn, args.clients, args.after, promoted)
            rows.append((name, r))
            ok &= r["lost_commits"] == 0 and r["duplicated"] == 0 and r["hung"] == 0
            print(f"  {name:9} {r}", flush=True)
        finally:
            if proxy:
                proxy.stop()
                proxy.cleanup()
            if bouncer:
                bouncer.stop()
            if standby:
                standby.cleanup()
            if primary:
                primary.cleanup()
    print()
    print("| proxy | commits | errors (clients) | SQLSTATEs | connections lost | longest gap s |"
          " stuck clients | lost commits | stop + promote s |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for name, r in rows:
        print(f"| {name} | {r['commits']} | {r['errors']} ({r['clients_with_errors']}) |"
              f" {', '.join(r['sqlstates'])} | {r['lost']} | {r['gap']:.2f} | {r['stuck']} |"
              f" {r['lost_commits']} | {r['failover_s']:.2f} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
