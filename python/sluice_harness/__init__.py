"""sluice's test harness: real PostgreSQL servers, sluice-proxy, PgBouncer and `sluice serve`,
started on free ports in temporary folders and torn down afterwards.

Used by the system tests (tests/system), the benches (bench/) and the demo (scripts/demo.py), which
import it as a package: `from sluice_harness import harness`. It lives in python/, which pytest puts
on sys.path (`pythonpath = python` in pytest.ini) and the Makefile exports as PYTHONPATH; by hand:
`PYTHONPATH=python /usr/bin/python3 bench/bench.py --build build`.

Modules:
  harness    PostgreSQL (PostgresServer, AppDatabase), sluice-proxy (Proxy, Metrics, its TOML),
             TLS certificates, a raw wire-protocol client (RawPgClient), pgbench, waiting and
             process bookkeeping
  cloud      `build/sluice serve` (Serve, the `serve` pytest fixture), the aws CLI against it,
             Aurora clusters, proxy targets and invocation bursts
  guide      the guide's story: examples/meal-planner/stack.toml applied, the guide's three AWS
             CLI commands run verbatim
  pgbouncer  PgBouncer in transaction mode, the benches' reference pooler
"""
