"""`build/sluice serve` for the control plane's system tests, bench/functions.py and scripts/demo.py:
the region on a free port, the aws CLI against it, the `serve` fixture, and helpers for
Aurora clusters, proxy targets and invocation bursts."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request

import pytest

from sluice_harness import harness


class Serve:
    """`build/sluice serve` on a free port with its own home folder."""

    def __init__(self, home=None, extra=()):
        self.home = home or tempfile.mkdtemp(prefix="sluice-serve-")
        self.port = harness.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = os.path.join(tempfile.gettempdir(), f"sluice-serve-{self.port}.log")
        binary = self.binary()
        self.proc = harness.register_proc(subprocess.Popen(
            [binary, "serve", "--home", self.home, "--listen", f"127.0.0.1:{self.port}", *extra],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "w")))
        harness.wait_port("127.0.0.1", self.port, 20, self.proc)

    @staticmethod
    def binary():
        return os.path.join(os.path.dirname(harness.find_proxy_binary()), "sluice")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(20)
        harness.unregister_proc(self.proc)
        return code

    def aws(self, *args, check=True, key=("AKIDLOCAL", "local-secret"), tool="aws"):
        """An aws CLI command against this region: its parsed JSON, or with check=False the
        CompletedProcess. tool="sluice" runs the same command with the sluice CLI; tool may also be
        a path (/usr/bin/aws for CLI v2). key is (access key, secret[, session token])."""
        env = dict(os.environ, AWS_ACCESS_KEY_ID=key[0], AWS_SECRET_ACCESS_KEY=key[1],
                   AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null",
                   AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_PAGER="")
        env.pop("AWS_SESSION_TOKEN", None)
        if len(key) > 2:
            env["AWS_SESSION_TOKEN"] = key[2]
        program = self.binary() if tool == "sluice" else tool
        r = subprocess.run([program, "--endpoint-url", self.url, "--output", "json", *args],
                           capture_output=True, text=True, env=env, timeout=60)
        if check:
            assert r.returncode == 0, r.stderr
            return json.loads(r.stdout) if r.stdout.strip() else None
        return r

    def sluice(self, *args, check=True, key=("AKIDLOCAL", "local-secret")):
        """The same command with the sluice CLI (`sluice SERVICE OPERATION …`)."""
        return self.aws(*args, check=check, key=key, tool="sluice")

    def post(self, target, body: bytes):
        request = urllib.request.Request(self.url + "/", data=body, method="POST", headers={
            "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())


@pytest.fixture
def serve():
    s = Serve()
    yield s
    if s.proc.poll() is None:
        assert s.stop() == 0
    shutil.rmtree(s.home, ignore_errors=True)


def post_form(serve_: Serve, body: str):
    """A raw Query-protocol request: (HTTP status, response text)."""
    request = urllib.request.Request(serve_.url + "/", data=body.encode(), method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def rest(serve_: Serve, method: str, path: str, body=None):
    """A raw REST-JSON request (lambda): (HTTP status, error type header, parsed body or None)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(serve_.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            raw = r.read()
            return r.status, None, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, e.headers.get("x-amzn-ErrorType"), json.loads(raw) if raw else None


def psql(conninfo_: str, sql: str, password: str, check=True):
    """psql -Atc SQL against a libpq connection string; the CompletedProcess."""
    env = dict(harness.clean_libpq_env(), PGPASSWORD=password)
    r = subprocess.run(["psql", "-X", "-At", "-d", conninfo_, "-c", sql], capture_output=True,
                       text=True, env=env, timeout=60)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def ca_bundle_file(serve_: Serve) -> str:
    """`sluice ca-bundle`, written to a file for sslrootcert."""
    r = subprocess.run([Serve.binary(), "--endpoint-url", serve_.url, "ca-bundle"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("-----BEGIN CERTIFICATE-----")
    path = os.path.join(serve_.home, "ca-bundle-copy.pem")
    with open(path, "w") as f:
        f.write(r.stdout)
    return path


def create_aurora(serve_: Serve, cluster: str, password: str, max_acus: float = 1, database="meals"):
    """An Aurora Serverless v2 cluster with its writer, waited for until available; the instance."""
    serve_.aws("rds", "create-db-cluster", "--db-cluster-identifier", cluster, "--engine", "aurora-postgresql",
               "--master-username", "app", "--master-user-password", password, "--database-name", database,
               "--serverless-v2-scaling-configuration", f"MinCapacity=0.5,MaxCapacity={max_acus}")
    serve_.aws("rds", "create-db-instance", "--db-instance-identifier", cluster + "-1", "--db-cluster-identifier",
               cluster, "--engine", "aurora-postgresql", "--db-instance-class", "db.serverless")
    return wait_available(serve_, cluster + "-1")


def wait_available(serve_: Serve, instance: str, timeout=60):
    def available():
        i = serve_.aws("rds", "describe-db-instances", "--db-instance-identifier", instance)["DBInstances"][0]
        return i if i["DBInstanceStatus"] == "available" else None
    return harness.wait_for(available, timeout, 0.3, f"DB instance {instance} available")


def register_target(serve_: Serve, proxy: str, cluster: str, pool_percent: int, timeout=120):
    """`cluster` as the proxy's target, its pool capped at `pool_percent` of the cluster's
    max_connections (idle ones too), waited for until the target is AVAILABLE."""
    serve_.aws("rds", "register-db-proxy-targets", "--db-proxy-name", proxy, "--db-cluster-identifiers", cluster)
    serve_.aws("rds", "modify-db-proxy-target-group", "--db-proxy-name", proxy, "--target-group-name", "default",
               "--connection-pool-config", json.dumps({"MaxConnectionsPercent": pool_percent,
                                                       "MaxIdleConnectionsPercent": pool_percent,
                                                       "ConnectionBorrowTimeout": 120}))

    def available():
        targets = serve_.aws("rds", "describe-db-proxy-targets", "--db-proxy-name", proxy)["Targets"]
        return [t["TargetHealth"]["State"] for t in targets if t["Type"] == "RDS_INSTANCE"] == ["AVAILABLE"]
    harness.wait_for(available, timeout, 0.5, f"{proxy}'s target AVAILABLE")


def invoke_burst(serve_: Serve, function: str, count: int, event: dict, timeout=600) -> dict:
    """`build/sluice-invoke-burst`: `count` invocations of `function` sent at one instant ({n} in
    the event becomes each one's number); its JSON summary."""
    binary = os.path.join(os.path.dirname(Serve.binary()), "sluice-invoke-burst")
    r = subprocess.run([binary, "--url", serve_.url, "--function", function, "--count", str(count),
                        "--payload", json.dumps(event)], capture_output=True, text=True, timeout=timeout)
    if not r.stdout.strip():
        raise RuntimeError(f"sluice-invoke-burst printed nothing (exit {r.returncode}): {r.stderr[-800:]}")
    return json.loads(r.stdout)
