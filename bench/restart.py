#!/usr/bin/python3
"""Database restarts as clients see them: sluice-proxy against PgBouncer.

A private PostgreSQL 15 (synchronous_commit on, so that acknowledged commits survive even
`-m immediate`), PgBouncer 1.18 (transaction mode, 20 server connections) and sluice-proxy (20
server connections, connection_borrow_timeout 60 s). CLIENTS psycopg clients (autocommit off)
each run money transfers in a loop: two UPDATEs of `accounts` and an INSERT into a ledger, then
COMMIT. After a warm-up, PostgreSQL restarts (`pg_ctl restart -m fast`, then `-m immediate`)
and the load goes on for a few seconds. A client whose connection closes reconnects (that is
what PgBouncer's clients must do).

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
import threading
import time
import uuid

import psycopg

from sluice_harness import harness
from sluice_harness.pgbouncer import PgBouncer


def run_once(pg, app, dsn, clients, mode, after):
    with pg.superuser_conn("appdb") as c:
        c.execute("drop table if exists restart_ledger")
        c.execute("create table restart_ledger (id text primary key, a int, b int, d int)")
        c.execute(f"grant all on restart_ledger to {app.app_user}")
        c.execute("update accounts set balance = %s", (app.initial_balance,))
    stop = threading.Event()
    lock = threading.Lock()
    acknowledged, errors, lost = [], [], []
    commits_after = [0] * clients
    state = dict(phase="before", last=time.monotonic(), gap=0.0)

    def worker(i):
        import random
        rnd = random.Random(i)
        conn = None
        while not stop.is_set():
            if conn is None or conn.closed or conn.broken:
                try:
                    # No server-side prepared statements: PgBouncer 1.18 cannot carry them.
                    conn = psycopg.connect(dsn, autocommit=False, prepare_threshold=None)
                except psycopg.Error:
                    time.sleep(0.05)
                    continue
            a, b = sorted(rnd.sample(range(1, app.accounts + 1), 2))
            d = rnd.randint(1, 50)
            tid = uuid.uuid4().hex
            try:
                conn.execute("update accounts set balance = balance - %s where id = %s", (d, a))
                conn.execute("update accounts set balance = balance + %s where id = %s", (d, b))
                conn.execute("insert into restart_ledger values (%s, %s, %s, %s)", (tid, a, b, d))
                conn.commit()
                now = time.monotonic()
                with lock:
                    acknowledged.append(tid)
                    state["gap"] = max(state["gap"], now - state["last"])
                    state["last"] = now
                    if state["phase"] == "after":
                        commits_after[i] += 1
            except psycopg.Error as e:
                with lock:
                    errors.append((i, e.sqlstate))
                if conn.closed or conn.broken:
                    with lock:
                        lost.append(i)
                    continue
                try:
                    conn.rollback()
                except psycopg.Error:
                    with lock:
                        lost.append(i)
                    conn.close()
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(3)
    state["phase"] = "during"
    pg.restart(mode)
    state["phase"] = "after"
    time.sleep(after)
    stop.set()
    for t in threads:
        t.join(90)
    hung = sum(t.is_alive() for t in threads)
    with pg.superuser_conn("appdb") as c:
        total = c.execute("select sum(balance) from accounts").fetchone()[0]
        ledger = {r[0] for r in c.execute("select id from restart_ledger")}
        drift = c.execute(
            "select count(*) from accounts x where balance <> %s"
            " + coalesce((select sum(d) from restart_ledger where b = x.id), 0)"
            " - coalesce((select sum(d) from restart_ledger where a = x.id), 0)",
            (app.initial_balance,)).fetchone()[0]
    return dict(commits=len(acknowledged), errors=len(errors), clients_with_errors=len({e[0] for e in errors}),
                sqlstates=sorted({e[1] or "none" for e in errors}), lost=len(lost), gap=state["gap"],
                stuck=sum(1 for n in commits_after if n == 0), hung=hung,
                lost_commits=sum(1 for t in acknowledged if t not in ledger),
                consistent=total == app.accounts * app.initial_balance and drift == 0)


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
                ok &= r["lost_commits"] == 0 and r["consistent"] and r["hung"] == 0
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
