#!/usr/bin/python3
"""sluice demo: the guide's story on this machine, end to end.

1. `sluice serve` (a local region, account 512662829295), then `sluice apply
   examples/meal-planner/stack.toml`: the VPC, subnets, security group, roles, the secret, the
   Aurora Serverless v2 cluster (a real PostgreSQL 15) and `meal-planner-test-app` (C++, libpq).
2. The guide's three AWS CLI commands, verbatim (with --endpoint-url): create-db-proxy,
   authorize-security-group-ingress, get-function-configuration.
3. The cluster registered as the proxy's target, the pool capped at 20 server connections.
4. The function, invoked with the aws CLI: migrate, three recipes, a week's plan, a shopping list.
5. A burst of 500 concurrent invocations through the proxy, then the same burst with DB_HOST
   pointed straight at the cluster: the connection exhaustion the proxy prevents.

Everything it starts is stopped at the end. The last line is
`demo: invocations ok=N failed=M peak_client_connections=X peak_database_connections=Y`
for the invocations through the proxy. Exits non-zero if anything did not go as described.

Usage: PYTHONPATH=python /usr/bin/python3 scripts/demo.py --build build
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from sluice_harness import guide, harness
from sluice_harness.cloud import Serve, invoke_burst, register_target

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FUNCTION = "meal-planner-test-app"
PROXY_HOST = "meal-planner-proxy.proxy-cczg0cscuj55.us-east-1.rds.sluice.internal"
CLUSTER_HOST = "meal-planner-db.cluster-cczg0cscuj55.us-east-1.rds.sluice.internal"
POOL_PERCENT = 11  # of the 1-ACU cluster's 189 connections: 20
RECIPES = [
    {"name": "Dal", "servings": 4, "ingredients": [{"name": "red lentils", "quantity": 300, "unit": "g"},
                                                   {"name": "onion", "quantity": 1, "unit": "pc"}]},
    {"name": "Shakshuka", "servings": 2, "ingredients": [{"name": "egg", "quantity": 4, "unit": "pc"},
                                                         {"name": "onion", "quantity": 1, "unit": "pc"}]},
    {"name": "Risotto", "servings": 3, "ingredients": [{"name": "rice", "quantity": 250, "unit": "g"},
                                                       {"name": "stock", "quantity": 1, "unit": "l"}]},
]


def say(text=""):
    print(text, flush=True)


class Sampler:
    """Peaks while a burst runs: the proxy's client and database connections (its /metrics) and
    the cluster's client backends (pg_stat_activity, over a connection opened beforehand)."""

    def __init__(self, metrics_url, database):
        self.metrics_url, self.database = metrics_url, database
        self.peak = {"proxy_clients": 0, "proxy_database": 0, "cluster_backends": 0}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self):
        while not self.stopping.is_set():
            if self.metrics_url:
                try:
                    with urllib.request.urlopen(self.metrics_url, timeout=2) as r:
                        metrics = harness.Metrics(r.read().decode())
                    self.peak["proxy_clients"] = max(self.peak["proxy_clients"],
                                                     metrics.get("sluice_client_connections"))
                    self.peak["proxy_database"] = max(self.peak["proxy_database"],
                                                      metrics.get("sluice_database_connections"))
                except OSError:
                    pass
            try:
                count = self.database.execute(
                    "select count(*) from pg_stat_activity where backend_type = 'client backend' "
                    "and pid <> pg_backend_pid()").fetchone()[0]
                self.peak["cluster_backends"] = max(self.peak["cluster_backends"], count)
            except Exception:  # the cluster may refuse even this while it is full
                pass
            time.sleep(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join()


def aws_invoke(serve, event, out_dir):
    """`aws lambda invoke` as a reader types it; the payload it wrote."""
    out = os.path.join(out_dir, "response.json")
    r = serve.aws("lambda", "invoke", "--function-name", FUNCTION, "--payload", json.dumps(event), out,
                  check=False)
    if r.returncode != 0:
        raise RuntimeError(f"aws lambda invoke: {r.stderr.strip()}")
    printed = json.loads(r.stdout)
    with open(out) as f:
        payload = json.load(f)
    if printed.get("FunctionError"):
        raise RuntimeError(f"{event['action']}: {payload}")
    return payload


def burst(serve, count):
    # A second of other work per invocation (work_ms, before the transaction): invocations overlap
    # as on Lambda, where a cold start alone takes longer than here.
    return invoke_burst(serve, FUNCTION, count, {
        "action": "add_recipe", "work_ms": 1000,
        "recipe": {"name": "burst-{n}", "servings": 1, "ingredients": [{"name": "rice", "quantity": 80, "unit": "g"}]}})


def set_db_host(serve, host):
    config = serve.aws("lambda", "update-function-configuration", "--function-name", FUNCTION, "--environment",
                       json.dumps({"Variables": dict(serve.aws("lambda", "get-function-configuration",
                                                               "--function-name", FUNCTION)
                                                     ["Environment"]["Variables"], DB_HOST=host)}))
    return config["Environment"]["Variables"]["DB_HOST"]


def metrics_url(serve):
    """The proxy's /metrics (its listener is in the proxy's configuration under our home)."""
    path = os.path.join(serve.home, "proxies", "meal-planner-proxy", "proxy.toml")
    with open(path) as f:
        match = re.search(r"\[metrics\]\s*listen\s*=\s*'([^']+)'", f.read())
    return f"http://{match.group(1)}/metrics" if match else None


def run(args, problems):
    import psycopg  # Debian's python3-psycopg (scripts/install-deps)
    build = os.path.abspath(args.build)
    os.environ["SLUICE_BUILD"] = build
    work = tempfile.mkdtemp(prefix="sluice-demo-out-")
    serve = Serve(home=tempfile.mkdtemp(prefix="sluice-demo-"), extra=("--account-id", "512662829295"))
    try:
        say(f"Started sluice serve on {serve.url} (state in {serve.home})")
        applied = subprocess.run([Serve.binary(), "--endpoint-url", serve.url, "apply", guide.STACK],
                                 capture_output=True, text=True, timeout=300)
        if applied.returncode != 0:
            problems.append("sluice apply: " + applied.stderr.strip())
            return None
        say(f"$ sluice apply {os.path.relpath(guide.STACK, ROOT)}   "
            f"({applied.stdout.count('created')} resources created)")
        say("\nThe guide's commands, verbatim:")
        for command in guide.guide_commands():
            say("$ " + command)
            output = guide.run_verbatim(serve, command)
            if command.startswith("aws lambda get-function-configuration"):
                say("  Environment.Variables.DB_HOST = " + output["Environment"]["Variables"]["DB_HOST"])
                say("  VpcConfig = " + json.dumps({k: output["VpcConfig"][k] for k in ("SubnetIds", "SecurityGroupIds")}))
        register_target(serve, "meal-planner-proxy", "meal-planner-db", POOL_PERCENT)
        say(f"\nRegistered meal-planner-db as the proxy's target: AVAILABLE, pool capped at {POOL_PERCENT} % "
            "of its 189 connections = 20")
        say(f"DB_HOST = {set_db_host(serve, PROXY_HOST)}")

        say("\nThe function, invoked with the aws CLI (inside the VPC, credentials from Secrets Manager, "
            "verify-full TLS to the proxy):")
        say("  migrate        -> " + json.dumps(aws_invoke(serve, {"action": "migrate"}, work)))
        ids = []
        for recipe in RECIPES:
            ids.append(aws_invoke(serve, {"action": "add_recipe", "recipe": recipe}, work)["recipe_id"])
            say(f"  add_recipe     -> {recipe['name']}: recipe_id {ids[-1]}")
        plan = aws_invoke(serve, {"action": "plan_week", "week_start": "2026-11-30"}, work)
        say("  plan_week      -> " + ", ".join(f"{d['date'][5:]}: {d['recipe_id']}" for d in plan["days"]))
        items = aws_invoke(serve, {"action": "shopping_list", "week_start": "2026-11-30"}, work)["items"]
        say("  shopping_list  -> " + ", ".join(f"{i['quantity']} {i['unit']} {i['name']}" for i in items))
        story = 3 + len(RECIPES)

        secret = json.loads(serve.aws("secretsmanager", "get-secret-value", "--secret-id",
                                      guide.SECRET_ARN)["SecretString"])
        database = psycopg.connect(host=CLUSTER_HOST, dbname="mealplanner", user=secret["username"],
                                   password=secret["password"], sslmode="require", autocommit=True,
                                   connect_timeout=15)
        say(f"\nA burst of {args.burst} concurrent invocations through the proxy (add_recipe, each with a second of "
        "other work first) ...")
        with Sampler(metrics_url(serve), database) as through_proxy:
            proxied = burst(serve, args.burst)
        view = json.loads(urllib.request.urlopen(f"{serve.url}/sluice/functions/{FUNCTION}", timeout=10).read())
        written = database.execute("select count(*) from recipes where name like 'burst-%'").fetchone()[0]
        say(f"  invocations ok={proxied['ok']} failed={proxied['function_errors'] + proxied['http_errors']} "
            f"in {proxied['elapsed_s']:.1f} s (p50 {proxied['p50_ms']:.0f} ms, p99 {proxied['p99_ms']:.0f} ms), "
            f"{written} recipes written")
        say(f"  execution environments: {len(view['Environments'])}, peak concurrency {view['PeakConcurrency']}")
        say(f"  peak client connections at the proxy: {through_proxy.peak['proxy_clients']:.0f}; "
            f"peak database connections: {through_proxy.peak['cluster_backends']} "
            f"(the proxy's count: {through_proxy.peak['proxy_database']:.0f}, cap 20)")
        if proxied["ok"] != args.burst:
            problems.append(f"through the proxy: {proxied}")
        if through_proxy.peak["cluster_backends"] > 20:
            problems.append(f"{through_proxy.peak['cluster_backends']} database connections through a proxy capped at 20")
        if written != args.burst:
            problems.append(f"{written} of {args.burst} burst recipes in the database")

        say(f"\nThe same burst with DB_HOST = {set_db_host(serve, CLUSTER_HOST)} (straight to the cluster) ...")
        with Sampler(None, database) as direct_peak:
            direct = burst(serve, args.burst)
        say(f"  invocations ok={direct['ok']} failed={direct['function_errors'] + direct['http_errors']}; "
            f"peak database connections {direct_peak.peak['cluster_backends']} (max_connections 189)")
        if direct["first_error"]:
            say(f"  first error: {direct['first_error']}")
        if direct["function_errors"] == 0:
            problems.append("the direct burst did not exhaust the cluster's connections")
        set_db_host(serve, PROXY_HOST)  # frozen environments holding direct connections retire
        database.close()
        return (proxied["ok"] + story, proxied["function_errors"] + proxied["http_errors"],
                int(through_proxy.peak["proxy_clients"]), through_proxy.peak["cluster_backends"])
    except Exception as e:  # the summary says what failed
        problems.append(f"{type(e).__name__}: {e}")
        return None
    finally:
        code = serve.stop()
        if code != 0:
            problems.append(f"sluice serve exit code {code} on SIGTERM")
            print(open(serve.log).read()[-3000:], file=sys.stderr)
        shutil.rmtree(serve.home, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("SLUICE_BUILD", "build"))
    ap.add_argument("--burst", type=int, default=500, help="concurrent invocations per burst (default 500)")
    args = ap.parse_args()
    for tool in ("aws",):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (scripts/install-deps installs it)")
    t0 = time.monotonic()
    problems = []
    result = run(args, problems)
    say(f"\ntotal time: {time.monotonic() - t0:.1f} s")
    if problems:
        say("\nFAILED:")
        for p in problems:
            say(f"  - {p}")
    if result:
        ok, failed, clients, database = result
        say(f"demo: invocations ok={ok} failed={failed} peak_client_connections={clients} "
            f"peak_database_connections={database}")
    sys.exit(1 if problems or not result else 0)


if __name__ == "__main__":
    main()
