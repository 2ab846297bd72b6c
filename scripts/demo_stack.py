"""The second act of `make demo`: the guide's whole stack on this machine.

Starts `sluice serve` (account 512662829295, a temporary home), creates the guide's environment
with `sluice apply examples/meal-planner/stack.toml`, runs the guide's three AWS CLI commands as
written (with --endpoint-url), registers the Aurora cluster as the proxy's target, caps the pool at
10 % of the cluster's max_connections, then sends a burst of short-lived TLS clients to the
proxy's endpoint name with sslmode=verify-full. Prints what happened and stops everything.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import harness
from cloud import Serve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STACK = os.path.join(ROOT, "examples", "meal-planner", "stack.toml")
PROXY = "meal-planner-proxy.proxy-cczg0cscuj55.us-east-1.rds.sluice.internal"
SECRET = "arn:aws:secretsmanager:us-east-1:512662829295:secret:rds-proxy-secret-meal-planner-7Ps2c0"
GUIDE = [
    ["rds", "create-db-proxy", "--db-proxy-name", "meal-planner-proxy", "--engine-family", "POSTGRESQL",
     "--role-arn", "arn:aws:iam::512662829295:role/rds-proxy-role-meal-planner",
     "--vpc-subnet-ids", "subnet-0aea07bbb011a0bab,subnet-054c26c1e75b269e1",
     "--vpc-security-group-ids", "sg-0fd605efde80bd711",
     "--auth", f"AuthScheme=SECRETS,SecretArn={SECRET},IAMAuth=DISABLED", "--require-tls"],
    ["ec2", "authorize-security-group-ingress", "--group-id", "sg-0fd605efde80bd711", "--protocol", "tcp",
     "--port", "5432", "--source-group", "sg-0fd605efde80bd711"],
    ["lambda", "get-function-configuration", "--function-name", "meal-planner-test-app", "--region", "us-east-1"],
]


def run(problems, clients=50, per_client=4):
    if not shutil.which("aws"):
        problems.append("the aws CLI is not installed (scripts/install-deps installs awscli)")
        return
    os.environ["PGCONNECT_TIMEOUT"] = "15"
    serve = Serve(home=tempfile.mkdtemp(prefix="sluice-demo-"), extra=("--account-id", "512662829295"))
    try:
        print(f"\nStarted sluice serve on {serve.url} (state in {serve.home})", flush=True)
        applied = subprocess.run([Serve.binary(), "--endpoint-url", serve.url, "apply", STACK], capture_output=True,
                                 text=True, timeout=120)
        if applied.returncode != 0:
            problems.append("sluice apply: " + applied.stderr.strip())
            return
        print(f"sluice apply {os.path.relpath(STACK, ROOT)}: "
              f"{applied.stdout.count('created')} resources created", flush=True)
        for command in GUIDE:
            print("aws " + " ".join(command[:2]) + " …", flush=True)
            serve.aws(*command)
        serve.aws("rds", "register-db-proxy-targets", "--db-proxy-name", "meal-planner-proxy",
                  "--db-cluster-identifiers", "meal-planner-db")
        serve.aws("rds", "modify-db-proxy-target-group", "--db-proxy-name", "meal-planner-proxy",
                  "--target-group-name", "default", "--connection-pool-config",
                  json.dumps({"MaxConnectionsPercent": 10, "MaxIdleConnectionsPercent": 10,
                              "ConnectionBorrowTimeout": 60}))

        def available():
            targets = serve.aws("rds", "describe-db-proxy-targets", "--db-proxy-name", "meal-planner-proxy")
            health = [t["TargetHealth"]["State"] for t in targets["Targets"] if t["Type"] == "RDS_INSTANCE"]
            return health == ["AVAILABLE"]
        harness.wait_for(available, 90, 0.5, "the proxy's target AVAILABLE")
        print(f"Proxy endpoint {PROXY}: target AVAILABLE", flush=True)

        bundle = os.path.join(serve.home, "rds-ca.pem")
        with open(bundle, "w") as f:
            f.write(subprocess.run([Serve.binary(), "--endpoint-url", serve.url, "ca-bundle"], capture_output=True,
                                   text=True, check=True, timeout=30).stdout)
        secret = json.loads(serve.aws("secretsmanager", "get-secret-value", "--secret-id", SECRET)["SecretString"])
        env = dict(harness.clean_libpq_env(), PGHOST=PROXY, PGPORT="5432", PGUSER=secret["username"],
                   PGPASSWORD=secret["password"], PGDATABASE="mealplanner", PGSSLMODE="verify-full",
                   PGSSLROOTCERT=bundle)
        init = harness.run_pgbench(env, ["-i", "-s", "1", "-q"], timeout=300)
        if init.returncode != 0:
            problems.append("pgbench -i through the proxy: " + init.stderr.strip()[-300:])
            return
        total = clients * per_client
        print(f"Running {total} short-lived verify-full TLS clients to {PROXY} "
              f"(pgbench -C -c {clients} -t {per_client} -S) ...", flush=True)
        t0 = time.monotonic()
        r = harness.run_pgbench(env, ["-n", "-S", "-C", "-c", str(clients), "-j", "2", "-t", str(per_client)],
                                timeout=300)
        elapsed = time.monotonic() - t0
        peak = int(subprocess.run(
            ["psql", "-X", "-At", "-c",
             "select count(*) from pg_stat_activity where usename = current_user and pid <> pg_backend_pid()"],
            env=dict(env, PGHOST=f"meal-planner-db.cluster-cczg0cscuj55.us-east-1.rds.sluice.internal"),
            capture_output=True, text=True, timeout=30).stdout.strip() or 0)
        plain = subprocess.run(["psql", "-X", "-At", "-c", "select 1"], env=dict(env, PGSSLMODE="disable"),
                               capture_output=True, text=True, timeout=30)
        if r.returncode != 0 or r.processed != total:
            problems.append(f"pgbench through the proxy: {r.processed}/{total}: {r.stderr.strip()[-300:]}")
        if plain.returncode == 0:
            problems.append("a plaintext client got through a proxy created with --require-tls")
        print()
        print("the guide's stack")
        print("-----------------")
        print(f"clients served            : {r.processed} of {total} through {PROXY}, {elapsed:.1f} s")
        print(f"server connections now    : {peak} (pool cap 10 % of the cluster's max_connections 189 = 18)")
        print(f"plaintext client          : refused ({plain.stderr.strip().splitlines()[-1] if plain.stderr else ''})")
    except Exception as e:  # the summary says what failed
        problems.append(f"{type(e).__name__}: {e}")
    finally:
        code = serve.stop()
        if code != 0:
            problems.append(f"sluice serve exit code {code} on SIGTERM")
        shutil.rmtree(serve.home, ignore_errors=True)
