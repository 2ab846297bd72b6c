#!/usr/bin/python3
"""The function host's benchmark: bursts of cold invocations through RDS Proxy and direct, and the
host's own cost per warm invocation and per cold start.

Starts `sluice serve` with the guide's stack (as tests/system/test_meal_planner.py does: `sluice
apply examples/meal-planner/stack.toml`, the guide's commands verbatim, the cluster registered as
the proxy's target with MaxConnectionsPercent 11, a cap of 20 server connections on the 1-ACU
cluster whose max_connections is 189), then:

  bursts    build/sluice-invoke-burst sends N add_recipe invocations of meal-planner-test-app at
            one instant (every connection is opened first), N = 100, 500, 1000, through the
            proxy and then direct (DB_HOST = the cluster's writer endpoint). Every level starts
            cold: a configuration change retires the warm environments first. While a burst
            runs, the cluster's client backends are counted (pg_stat_activity, every 20 ms) and
            the host's busy environments (GET /sluice/functions/NAME, every 100 ms).
  warm      examples/echo-function (C++, returns its event) invoked 1000 times in a row over one
            keep-alive HTTP connection; REPORT Duration (delivery to response, measured by the
            host) from CloudWatch Logs; the same connection's round trip for an API call that
            runs no function, the floor of the client and the HTTP exchange.
  cold      10 first invocations each of echo-function, the same in the VPC, and
            meal-planner-test-app (health), environments retired in between: Init Duration from
            the REPORT line (environment created -> the runtime's first /next) and end to end.

Prints a markdown table with medians and the issue's targets. Bounded by --budget seconds (an
alarm stops the run and everything it started). Traffic goes to 127.0.0.1 and the VPC namespaces
sluice serve creates only. Exits 1 if an invocation through the proxy failed or the run broke.

Usage: PYTHONPATH=python /usr/bin/python3 bench/functions.py --build build [--levels 100,500,1000] [--cold 10]
"""
import argparse
import base64
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from statistics import median

from sluice_harness import guide, harness
from sluice_harness.cloud import Serve, invoke_burst, register_target

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

ACCOUNT = "512662829295"
FUNCTION = "meal-planner-test-app"
PROXY = "meal-planner-proxy"
PROXY_HOST = guide.PROXY_HOST
CLUSTER_HOST = "meal-planner-db.cluster-cczg0cscuj55.us-east-1.rds.sluice.internal"
SUBNETS = ["subnet-0aea07bbb011a0bab", "subnet-054c26c1e75b269e1"]
GROUP = "sg-0fd605efde80bd711"
SERVER_CAP = 20  # 11 % of the 1-ACU cluster's max_connections (189)
CLUSTER_MAX_CONNECTIONS = 189
ECHO = "echo-function"
ECHO_VPC = "echo-function-vpc"
ECHO_ROLE = "echo-function-role"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
ADD_RECIPE = ('{"action":"add_recipe","recipe":{"name":"bench-{n}","servings":1,'
              '"ingredients":[{"name":"rice","quantity":1,"unit":"g"}]}}')
# What libpq says when it cannot reach a server at all.
UNREACHABLE = re.compile(r"could not connect|could not translate host name|Connection refused|timeout expired|"
                         r"No route to host|Network is unreachable|Name or service not known|"
                         r"Temporary failure in name resolution", re.I)
TOO_MANY = re.compile(r"too many clients|remaining connection slots|53300", re.I)


class OutOfTime(Exception):
    pass


def log(message):
    print(message, flush=True)


# --------------------------------------------------------------------------------------------
# the stack


def start_stack():
    """sluice serve with the guide's stack and the proxy's target registered: the Serve."""
    serve = Serve(extra=("--account-id", ACCOUNT))
    try:
        guide.apply(serve)
        for command in guide.guide_commands():
            guide.run_verbatim(serve, command)
        register_target(serve, PROXY, "meal-planner-db", 11)  # 11 % of 189: 20 server connections
    except BaseException:
        stop_stack(serve)
        raise
    return serve


def stop_stack(serve):
    """Stops sluice serve (it stops its clusters, proxies and functions); SIGKILL as a last resort."""
    if serve.proc.poll() is None:
        try:
            serve.stop()
        except subprocess.TimeoutExpired:
            serve.proc.kill()
            serve.proc.wait(10)
            harness.unregister_proc(serve.proc)
    shutil.rmtree(serve.home, ignore_errors=True)


def secret(serve):
    return json.loads(serve.aws("secretsmanager", "get-secret-value", "--secret-id",
                                guide.SECRET_ARN)["SecretString"])


def database(serve):
    """A connection straight to the cluster (the host's exception), as the master user."""
    import psycopg
    s = secret(serve)
    return psycopg.connect(host=CLUSTER_HOST, port=5432, dbname="mealplanner", user=s["username"],
                           password=s["password"], sslmode="require", autocommit=True, connect_timeout=15)


def client_backends(conn):
    return conn.execute("select count(*) from pg_stat_activity where backend_type = 'client backend' "
                        "and pid <> pg_backend_pid()").fetchone()[0]


def environments(serve, name):
    with urllib.request.urlopen(f"{serve.url}/sluice/functions/{name}", timeout=30) as r:
        return json.loads(r.read())


def invoke(serve, name, payload, tail=False, timeout=120):
    """One RequestResponse invocation: (status, headers, body, seconds)."""
    headers = {"Content-Type": "application/json"}
    if tail:
        headers["X-Amz-Log-Type"] = "Tail"
    request = urllib.request.Request(f"{serve.url}/2015-03-31/functions/{name}/invocations",
                                     data=json.dumps(payload).encode(), method="POST", headers=headers)
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            body = r.read().decode()
            return r.status, dict(r.headers), body, time.perf_counter() - t0
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode(), time.perf_counter() - t0


def retire(serve, name, **variables):
    """Retires the function's warm environments with a configuration change (new configuration,
    new environments; the old ones are reclaimed) and waits until they are gone. `variables`
    are set too (None removes one)."""
    config = serve.aws("lambda", "get-function-configuration", "--function-name", name)
    current = dict(config.get("Environment", {}).get("Variables", {}))
    current["BENCH_GENERATION"] = str(int(current.get("BENCH_GENERATION", "0")) + 1)
    for key, value in variables.items():
        if value is None:
            current.pop(key, None)
        else:
            current[key] = value
    serve.aws("lambda", "update-function-configuration", "--function-name", name,
              "--environment", json.dumps({"Variables": current}))
    harness.wait_for(lambda: not environments(serve, name)["Environments"], 90, 0.05,
                     f"{name}'s old environments reclaimed")


# --------------------------------------------------------------------------------------------
# bursts


class Sampler:
    """Peak client backends at the cluster and peak busy environments at the host, while a burst
    runs. The database connection is opened before the burst (the cluster may be full during it)."""

    def __init__(self, serve, conn):
        self.serve, self.conn = serve, conn
        self.peak_backends = 0
        self.peak_busy = 0
        self.peak_environments = 0
        self.errors = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._database, daemon=True),
                        threading.Thread(target=self._host, daemon=True)]

    def _database(self):
        while not self.stopping.is_set():
            try:
                self.peak_backends = max(self.peak_backends, client_backends(self.conn))
            except Exception as e:  # noqa: BLE001 - reported with the results
                self.errors.append(f"pg_stat_activity: {e}")
                return
            time.sleep(0.02)

    def _host(self):
        while not self.stopping.is_set():
            try:
                view = environments(self.serve, FUNCTION)
                self.peak_busy = max(self.peak_busy, view["Busy"])
                self.peak_environments = max(self.peak_environments, len(view["Environments"]))
            except Exception as e:  # noqa: BLE001
                self.errors.append(f"/sluice/functions: {e}")
            time.sleep(0.1)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for t in self.threads:
            t.join(30)


def burst_level(build, serve, conn, path, count, timeout):
    """One cold burst: retire, sample, burst. The result with the samples added."""
    retire(serve, FUNCTION)
    # The previous level's direct connections close as their environments end; the proxy keeps
    # its pool (at most SERVER_CAP).
    deadline = time.monotonic() + 30
    while client_backends(conn) > SERVER_CAP and time.monotonic() < deadline:
        time.sleep(0.1)
    before = client_backends(conn)
    window = [int(time.time() * 1000), None]
    with Sampler(serve, conn) as sampler:
        result = invoke_burst(serve, FUNCTION, count, json.loads(ADD_RECIPE), timeout)
    window[1] = int(time.time() * 1000) + 1
    time.sleep(0.3)  # the last environments' log lines
    result.update(path=path, backends_before=before, peak_backends=sampler.peak_backends,
                  started=environments_started(serve, FUNCTION, window),
                  peak_busy=sampler.peak_busy, peak_environments=sampler.peak_environments,
                  peak_concurrency=environments(serve, FUNCTION)["PeakConcurrency"],
                  sampler_errors=sampler.errors[:3])
    errors = result["count"] - result["ok"]
    log(f"  {path:6} {count:5}: ok={result['ok']} errors={errors} {result['invocations_per_s']:.0f} inv/s "
        f"p50={result['p50_ms']:.0f} ms p99={result['p99_ms']:.0f} ms peak server connections="
        f"{sampler.peak_backends} (before {before}) environments started={result['started']} "
        f"peak busy environments={sampler.peak_busy} PeakConcurrency={result['peak_concurrency']}")
    for message, n in list(result.get("error_messages", {}).items())[:3]:
        log(f"      {n} x {message}")
    for e in sampler.errors[:3]:
        log(f"      sampler: {e}")
    return result


def environments_started(serve, name, window):
    """Environments that started in a window (epoch ms): their first REPORT line carries an Init
    Duration, a failed init an INIT_REPORT line."""
    events = serve.aws("logs", "filter-log-events", "--log-group-name", f"/aws/lambda/{name}",
                       "--filter-pattern", '"Init Duration"', "--start-time", str(window[0]),
                       "--end-time", str(window[1]))["events"]
    return len(events)


def unreachable(result):
    """Every invocation failed to connect: the direct path does not exist in this build."""
    messages = result.get("error_messages", {})
    return result["ok"] == 0 and messages and all(UNREACHABLE.search(m) for m in messages if m != "(other messages)")


# --------------------------------------------------------------------------------------------
# the echo function


def create_echo(serve, zip_path):
    serve.aws("iam", "create-role", "--role-name", ECHO_ROLE, "--assume-role-policy-document", TRUST)
    serve.aws("iam", "attach-role-policy", "--role-name", ECHO_ROLE, "--policy-arn",
              "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole")
    role = f"arn:aws:iam::{ACCOUNT}:role/{ECHO_ROLE}"
    for name, vpc in ((ECHO, None), (ECHO_VPC, f"SubnetIds={','.join(SUBNETS)},SecurityGroupIds={GROUP}")):
        args = ["lambda", "create-function", "--function-name", name, "--runtime", "provided.al2023",
                "--handler", "bootstrap", "--role", role, "--timeout", "3", "--memory-size", "128",
                "--code", f"S3Bucket=sluice-local,S3Key={zip_path}",
                "--environment", json.dumps({"Variables": {"BENCH_GENERATION": "0"}})]
        if vpc:
            args += ["--vpc-config", vpc]
        serve.aws(*args)

        def active():
            c = serve.aws("lambda", "get-function-configuration", "--function-name", name)
            return c.get("State", "Active") == "Active"
        harness.wait_for(active, 60, 0.2, f"{name} Active")


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def warm_latency(serve, count):
    """`count` invocations of the echo function in a row over one keep-alive connection, then as
    many API calls that run no function: (invocation latencies, floor latencies) in ms, and the
    window (epoch ms) of the invocations."""
    conn = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=30)
    path = f"/2015-03-31/functions/{ECHO}/invocations"
    headers = {"Content-Type": "application/json"}
    body = b'{"ping":1}'

    def call(method, target, data):
        t0 = time.perf_counter_ns()
        conn.request(method, target, body=data, headers=headers)
        r = conn.getresponse()
        payload = r.read()
        elapsed = (time.perf_counter_ns() - t0) / 1e6
        if r.status != 200 or r.getheader("X-Amz-Function-Error"):
            raise RuntimeError(f"{method} {target}: {r.status} {payload[:300]!r}")
        if r.getheader("Connection", "").lower() == "close":
            raise RuntimeError("the host closed the keep-alive connection")
        return elapsed

    for _ in range(50):  # warm: the environment, the connection, the code paths
        call("POST", path, body)
    time.sleep(0.3)
    start_ms = int(time.time() * 1000)
    invocations = [call("POST", path, body) for _ in range(count)]
    end_ms = int(time.time() * 1000) + 1
    floor = [call("GET", f"/sluice/functions/{ECHO}", None) for _ in range(count)]
    conn.close()
    return invocations, floor, (start_ms, end_ms)


REPORT_DURATION = re.compile(r"REPORT RequestId: \S+\tDuration: ([\d.]+) ms")
INIT_DURATION = re.compile(r"Init Duration: ([\d.]+) ms")


def report_durations(serve, name, window):
    """REPORT lines' Duration (ms) in a window, from CloudWatch Logs (filter-log-events)."""
    events = serve.aws("logs", "filter-log-events", "--log-group-name", f"/aws/lambda/{name}",
                       "--filter-pattern", "REPORT", "--start-time", str(window[0]),
                       "--end-time", str(window[1]))["events"]
    return [float(m.group(1)) for e in events if (m := REPORT_DURATION.search(e["message"]))
            and "Init Duration" not in e["message"]]


def cold_starts(serve, name, payload, count):
    """`count` first invocations, each of a new environment: (Init Duration ms, end-to-end ms,
    REPORT Duration ms) lists."""
    inits, ends, durations = [], [], []
    for _ in range(count):
        retire(serve, name)
        status, headers, body, seconds = invoke(serve, name, payload, tail=True)
        if status != 200 or headers.get("X-Amz-Function-Error"):
            raise RuntimeError(f"cold invocation of {name}: {status} {body[:300]}")
        tail = base64.b64decode(headers.get("X-Amz-Log-Result", "")).decode(errors="replace")
        report = [line for line in tail.splitlines() if line.startswith("REPORT")]
        init = INIT_DURATION.search(report[-1]) if report else None
        if not init:
            raise RuntimeError(f"no Init Duration in the first invocation's REPORT line: {tail[-400:]}")
        inits.append(float(init.group(1)))
        durations.append(float(REPORT_DURATION.search(report[-1]).group(1)))
        ends.append(seconds * 1000)
    return inits, ends, durations


# --------------------------------------------------------------------------------------------
# output


def fmt(v, digits=0):
    return "n/a" if v is None else f"{v:,.{digits}f}"


def yes(flag):
    return "n/a" if flag is None else ("yes" if flag else "**no**")


def print_tables(args, bursts, direct_note, warm, cold, echo_note):
    log("")
    log(f"meal-planner-test-app (C++, libpq, verify-full) bursts of add_recipe, every level cold; proxy cap "
        f"{SERVER_CAP} server connections, cluster max_connections {CLUSTER_MAX_CONNECTIONS}; {os.cpu_count()} CPUs, "
        "shared. Peak server connections: client backends at the cluster, sampled every 20 ms (the proxy's "
        "pool included; before the burst in brackets). Environments started: first REPORT lines (Init "
        "Duration) in the burst's window. Peak busy environments: GET /sluice/functions/NAME every 100 ms, "
        "a lower bound. PeakConcurrency: the host's own peak since sluice serve started (it does not reset).")
    log("| path | concurrent invocations | ok | errors | invocations/s | p50 ms | p99 ms |"
        " peak server connections | environments started | peak busy environments (sampled) |"
        " PeakConcurrency (running max) | errors seen |")
    log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in bursts:
        errors = r["count"] - r["ok"]
        seen = "; ".join(f"{n}× {t}" for t, n in r["error_types"].items()) or "–"
        if any(TOO_MANY.search(m) for m in r.get("error_messages", {})):
            seen += " (53300 too many clients)"
        log(f"| {r['path']} | {r['count']:,} | {r['ok']:,} | {errors:,} | {fmt(r['invocations_per_s'])} |"
            f" {fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} | {r['peak_backends']} ({r['backends_before']}) |"
            f" {r['started']} | {r['peak_busy']} | {r['peak_concurrency']} | {seen} |")
    if direct_note:
        log("")
        log(direct_note)
    elif any(r["path"] == "direct" for r in bursts):
        log("")
        log(f"direct: the cluster's {CLUSTER_MAX_CONNECTIONS} connection slots are shared with the proxy's idle pool"
            " (the \"before\" count) and the sampling connection.")

    log("")
    if echo_note:
        log(echo_note)
    elif warm:
        inv, floor, durations = warm["invocations"], warm["floor"], warm["durations"]
        log(f"echo-function (C++, src/runtime, returns its event): {len(inv)} warm invocations in a row over one"
            f" keep-alive HTTP connection (Python http.client); {args.cold} cold starts each, environments"
            " retired in between.")
        log("| measurement | median ms | p99 ms | n |")
        log("|---|---:|---:|---:|")
        log(f"| warm invocation, end to end (client + HTTP + host + runtime) | {median(inv):.3f} |"
            f" {percentile(inv, 0.99):.3f} | {len(inv)} |")
        if durations:
            log(f"| warm REPORT Duration (host-measured, delivery to response) | {median(durations):.3f} |"
                f" {percentile(durations, 0.99):.3f} | {len(durations)} |")
        log(f"| API round trip without a function (GET /sluice/functions/…: client + HTTP floor) |"
            f" {median(floor):.3f} | {percentile(floor, 0.99):.3f} | {len(floor)} |")
        log(f"| host overhead per warm invocation = end to end − floor (medians) |"
            f" {median(inv) - median(floor):.3f} | | |")
        for name, (inits, ends, durs) in cold.items():
            log(f"| cold start, {name}: Init Duration (environment created → runtime's first /next) |"
                f" {median(inits):.1f} | {max(inits):.1f} (max) | {len(inits)} |")
            log(f"| cold start, {name}: first invocation end to end | {median(ends):.1f} |"
                f" {max(ends):.1f} (max) | {len(ends)} |")
            log(f"| cold start, {name}: first invocation's REPORT Duration | {median(durs):.1f} |"
                f" {max(durs):.1f} (max) | {len(durs)} |")

    # The targets.
    log("")
    log("| target | result | met |")
    log("|---|---|---|")
    proxy = [r for r in bursts if r["path"] == "proxy"]
    log("| through the proxy: 0 errors at every level | "
        + ", ".join(f"{r['count'] - r['ok']} at {r['count']}" for r in proxy)
        + f" | {yes(all(r['ok'] == r['count'] for r in proxy) if proxy else None)} |")
    log(f"| through the proxy: at most {SERVER_CAP} server connections | peak "
        + ", ".join(str(r["peak_backends"]) for r in proxy)
        + f" | {yes(all(r['peak_backends'] <= SERVER_CAP for r in proxy) if proxy else None)} |")
    direct = {r["count"]: r for r in bursts if r["path"] == "direct"}
    top = direct.get(max(direct)) if direct else None
    if top:
        too_many = sum(n for m, n in top.get("error_messages", {}).items() if TOO_MANY.search(m))
        kinds = ", ".join(f"{n}× {t}" for t, n in top["error_types"].items())
        log(f"| direct fails at {top['count']} (expected: 53300 too many clients; max_connections"
            f" {CLUSTER_MAX_CONNECTIONS}) | {top['count'] - top['ok']} errors ({kinds}; {too_many} of them 53300),"
            f" peak {top['peak_backends']} server connections | {yes(top['ok'] < top['count'])} |")
    else:
        log("| direct fails at 1000 (53300 too many clients) | not measured: " + (direct_note or "skipped")
            + " | n/a |")
    if warm and cold:
        overhead = median(warm["invocations"]) - median(warm["floor"])
        log(f"| host overhead per warm invocation < 1 ms (empty function, median) | {overhead:.3f} ms"
            f" (end to end {median(warm['invocations']):.3f} ms incl. the client) | {yes(overhead < 1.0)} |")
        inits = cold[ECHO][0]
        log(f"| cold start of the C++ function < 50 ms of host time (echo-function Init Duration, median) |"
            f" {median(inits):.1f} ms (in the VPC {median(cold[ECHO_VPC][0]):.1f} ms) | {yes(median(inits) < 50)} |")
    else:
        log("| host overhead per warm invocation < 1 ms | not measured | n/a |")
        log("| cold start of the C++ function < 50 ms of host time | not measured | n/a |")


# --------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("SLUICE_BUILD", "build"))
    ap.add_argument("--levels", default="100,500,1000", help="burst sizes (default 100,500,1000)")
    ap.add_argument("--warm", type=int, default=1000, help="sequential warm invocations (default 1000)")
    ap.add_argument("--cold", type=int, default=10, help="cold starts per function (default 10)")
    ap.add_argument("--only", default="", help="comma list from: proxy, direct, echo (default all)")
    ap.add_argument("--echo-zip", default=None,
                    help="echo-function's package (default BUILD/functions/echo-function.zip)")
    ap.add_argument("--budget", type=int, default=540, help="seconds before the run is stopped (default 540)")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    os.environ.setdefault("SLUICE_BUILD", build)
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    only = {x.strip() for x in args.only.split(",") if x.strip()} or {"proxy", "direct", "echo"}
    echo_zip = os.path.abspath(args.echo_zip or os.path.join(build, "functions", "echo-function.zip"))
    for binary in ("sluice", "sluice-proxy", "sluice-invoke-burst"):
        if not os.path.exists(os.path.join(build, binary)):
            sys.exit(f"{binary} not found in {build} (run `make build`)")
    if not os.path.exists(os.path.join(ROOT, "build", "functions", "meal-planner-test-app.zip")):
        sys.exit("build/functions/meal-planner-test-app.zip not found (the stack's function; run `make build`)")

    def out_of_time(*_):
        raise OutOfTime(f"the run took longer than its budget of {args.budget} s")
    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(args.budget)

    log(f"# sluice function-host benchmark: bursts of {', '.join(map(str, levels))} through the proxy and direct,"
        f" echo-function warm x{args.warm} and cold x{args.cold}, {os.cpu_count()} CPUs")
    t_start = time.monotonic()
    bursts, warm, cold = [], {}, {}
    direct_note = echo_note = None
    serve = conn = None
    failed = False
    try:
        log("starting sluice serve and the guide's stack ...")
        serve = start_stack()
        log(f"  ready in {time.monotonic() - t_start:.0f} s ({serve.url}, log {serve.log})")
        status, headers, body, _ = invoke(serve, FUNCTION, {"action": "migrate"})
        if status != 200 or headers.get("X-Amz-Function-Error"):
            raise RuntimeError(f"migrate failed: {status} {body[:400]}")
        conn = database(serve)
        burst_timeout = 300

        if "proxy" in only:
            log("bursts through the proxy ...")
            for n in levels:
                bursts.append(burst_level(build, serve, conn, "proxy", n, burst_timeout))
        if "direct" in only:
            log("bursts direct to the cluster's writer endpoint ...")
            retire(serve, FUNCTION, DB_HOST=CLUSTER_HOST)
            for n in levels:
                r = burst_level(build, serve, conn, "direct", n, burst_timeout)
                if n == levels[0] and unreachable(r):
                    direct_note = "direct: cluster endpoints are not reachable from the VPC in this build"
                    log("  " + direct_note)
                    break
                bursts.append(r)
            retire(serve, FUNCTION, DB_HOST=PROXY_HOST)

        if "echo" in only:
            if not os.path.exists(echo_zip):
                echo_note = (f"echo-function: {echo_zip} not found; the top-level CMakeLists.txt needs "
                             "add_subdirectory(examples/echo-function)")
                log(echo_note)
            else:
                log(f"echo-function: {args.warm} warm invocations in a row ...")
                create_echo(serve, echo_zip)
                invocations, floor, window = warm_latency(serve, args.warm)
                time.sleep(0.5)  # the last REPORT lines are in the log store already; be safe
                warm = dict(invocations=invocations, floor=floor,
                            durations=report_durations(serve, ECHO, window))
                log(f"  end to end median {median(invocations):.3f} ms, floor {median(floor):.3f} ms, "
                    f"REPORT Duration median {median(warm['durations']):.3f} ms ({len(warm['durations'])} lines)")
                log(f"cold starts ({args.cold} each) ...")
                for name, payload in ((ECHO, {"cold": True}), (ECHO_VPC, {"cold": True}),
                                      (FUNCTION, {"action": "health"})):
                    cold[name] = cold_starts(serve, name, payload, args.cold)
                    log(f"  {name}: Init Duration median {median(cold[name][0]):.1f} ms, first invocation "
                        f"median {median(cold[name][1]):.1f} ms")
    except BaseException as e:  # noqa: BLE001 - everything stops below; the error is reported
        failed = True
        log(f"FAILED: {type(e).__name__}: {e}")
        if serve:
            log(f"  sluice serve's log: {serve.log}")
    finally:
        signal.alarm(0)
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass
        if serve is not None:
            stop_stack(serve)
            if not failed:
                try:
                    os.unlink(serve.log)
                except OSError:
                    pass

    if bursts or warm:
        print_tables(args, bursts, direct_note, warm, cold, echo_note)
    log(f"\n(whole run {time.monotonic() - t_start:.0f} s)")
    proxy_errors = any(r["ok"] != r["count"] for r in bursts if r["path"] == "proxy")
    if failed or proxy_errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
