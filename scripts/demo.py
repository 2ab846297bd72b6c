#!/usr/bin/python3
"""sluice demo: a burst of short-lived TLS clients multiplexed over 20 server connections.

Starts a private PostgreSQL 15 (max_connections=100) and a sluice-proxy in front of it
(max_connections_percent=20 -> at most 20 server connections, TLS required, ephemeral
certificate), runs 500 short-lived TLS clients (pgbench -C -c 100 -t 5 -S: every transaction on a
new connection), samples pg_stat_activity for the peak number of server connections, reads
/metrics, prints a summary and stops everything. Exits non-zero if anything failed.

Then the guide's stack (scripts/demo_stack.py): sluice serve, sluice apply, the guide's commands,
and a burst of verify-full clients through the proxy's endpoint name.

Usage: /usr/bin/python3 scripts/demo.py --build build
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "system"))

import demo_stack  # noqa: E402
import harness  # noqa: E402

SERVER_MAX_CONNECTIONS = 100
PERCENT = 20


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("SLUICE_BUILD", "build"))
    ap.add_argument("--clients", type=int, default=100, help="concurrent clients (default 100)")
    ap.add_argument("--per-client", type=int, default=5, help="connections per client (default 5)")
    args = ap.parse_args()
    os.environ.setdefault("SLUICE_BUILD", os.path.abspath(args.build))

    binary = harness.find_proxy_binary(os.path.abspath(args.build))
    if not os.path.exists(binary):
        sys.exit(f"sluice-proxy not found at {binary} (run `make build`)")
    cap = SERVER_MAX_CONNECTIONS * PERCENT // 100
    total = args.clients * args.per_client
    problems = []
    t_start = time.monotonic()
    app = harness.AppDatabase()
    pg = harness.PostgresServer(max_connections=SERVER_MAX_CONNECTIONS)
    proxy = None
    try:
        print(f"Starting PostgreSQL 15 (max_connections={SERVER_MAX_CONNECTIONS}) ...", flush=True)
        pg.start()
        harness.setup_app_database(pg, app, pgbench_scale=1)
        proxy = harness.Proxy(binary, pg.port, users=[(app.app_user, app.app_password)], name="sluice-demo",
                              require_tls=True,
                              connection_pool={"max_connections_percent": PERCENT,
                                               "connection_borrow_timeout": 60})
        proxy.start()
        print(f"Started sluice-proxy on 127.0.0.1:{proxy.port} (TLS required, ephemeral certificate), "
              f"metrics on 127.0.0.1:{proxy.metrics_port}, cap {cap} server connections", flush=True)
        before = proxy.metrics()
        print(f"Running {total} short-lived TLS clients: pgbench -C -c {args.clients} -t {args.per_client} -S ...",
              flush=True)
        sampler = harness.ActivitySampler(pg, app.app_user, interval=0.01)
        sampler.start()
        t0 = time.monotonic()
        r = harness.run_pgbench(proxy.env(app.app_user, app.app_password, sslmode="require"),
                                ["-n", "-S", "-C", "-c", str(args.clients), "-j", "2", "-t", str(args.per_client)],
                                timeout=300)
        elapsed = time.monotonic() - t0
        peak = sampler.stop()
        after = proxy.metrics()

        received = after.get("sluice_client_connections_received") - before.get("sluice_client_connections_received")
        queries = after.get("sluice_query_requests") - before.get("sluice_query_requests")
        failed_auth = after.get("sluice_client_connections_setup_failed_auth")
        db_conns = after.get("sluice_database_connections")
        allowed = after.get("sluice_max_database_connections_allowed")

        errors = 0 if r.returncode == 0 else max(1, total - r.processed)
        if r.failed:
            errors = max(errors, r.failed)
        if r.returncode != 0 or r.processed != total:
            problems.append(f"pgbench: {r.processed}/{total} transactions, rc={r.returncode}: "
                            f"{r.stderr.strip()[-500:]}")
        if peak > cap:
            problems.append(f"peak server connections {peak} exceeds the cap {cap}")
        if sampler.errors:
            problems.append(f"sampler: {sampler.errors}")
        if allowed != cap:
            problems.append(f"sluice_max_database_connections_allowed={allowed}, expected {cap}")
        if received < total:
            problems.append(f"the proxy counted {received:.0f} client connections, expected >= {total}")

        print()
        print("sluice demo summary")
        print("-------------------")
        print(f"clients served            : {r.processed} of {total} (each a new TLS connection), "
              f"{elapsed:.1f} s, {r.processed / elapsed:.0f} connections/s")
        print(f"peak server connections   : {peak} (cap {cap}, PostgreSQL max_connections {SERVER_MAX_CONNECTIONS};"
              f" {sampler.samples} samples of pg_stat_activity)")
        print(f"errors                    : {errors}")
        print(f"metrics                   : client_connections_received +{received:.0f}, "
              f"query_requests +{queries:.0f}, database_connections {db_conns:.0f}, "
              f"max_database_connections_allowed {allowed:.0f}, setup_failed_auth {failed_auth:.0f}")
    except Exception as e:
        problems.append(f"{type(e).__name__}: {e}")
    finally:
        rc = None
        if proxy is not None:
            rc = proxy.stop()
            if rc != 0:
                problems.append(f"sluice-proxy exit code {rc} on SIGTERM (expected 0)")
                print(proxy.log_tail(30), file=sys.stderr)
            proxy.cleanup()
        pg.cleanup()
    demo_stack.run(problems)
    print(f"total time                : {time.monotonic() - t_start:.1f} s")
    if problems:
        print("\nFAILED:")
        for p in problems:
            print(f"  - {p}")
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
