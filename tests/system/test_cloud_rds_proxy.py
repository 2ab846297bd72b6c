"""`sluice serve` as RDS Proxy, driven by the aws CLI: a proxy that is a running sluice-proxy in
front of a real Aurora cluster, logging in with the secret its role may read, reached by its
endpoint name with sslmode=verify-full, reporting target health from the running proxy."""
import json
import os
import signal
import socket
import threading
import time

from sluice_harness import harness
from sluice_harness.cloud import Serve, ca_bundle_file, create_aurora, post_form, psql, serve  # noqa: F401

DB_PASSWORD = "meal-planner-db-pw"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "rds.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def read_secret_policy(arn):
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": arn}]})


def network(serve_):
    vpc = serve_.aws("ec2", "create-vpc", "--cidr-block", "10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [serve_.aws("ec2", "create-subnet", "--vpc-id", vpc, "--cidr-block", cidr, "--availability-zone",
                          zone)["Subnet"]["SubnetId"]
               for cidr, zone in (("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b"))]
    group = serve_.aws("ec2", "create-security-group", "--group-name", "meal-planner", "--description",
                       "proxy and function", "--vpc-id", vpc)["GroupId"]
    serve_.aws("ec2", "authorize-security-group-ingress", "--group-id", group, "--protocol", "tcp",
               "--port", "5432", "--source-group", group)
    return vpc, subnets, group


def stack(serve_, allow_secret=True):
    """The guide's environment: network, secret, role, cluster; returns its names."""
    vpc, subnets, group = network(serve_)
    secret = serve_.aws("secretsmanager", "create-secret", "--name", "rds-proxy-secret-meal-planner",
                        "--secret-string", json.dumps({"username": "app", "password": DB_PASSWORD,
                                                       "engine": "postgres"}))["ARN"]
    role = serve_.aws("iam", "create-role", "--role-name", "rds-proxy-role-meal-planner",
                      "--assume-role-policy-document", TRUST)["Role"]["Arn"]
    if allow_secret:
        serve_.aws("iam", "put-role-policy", "--role-name", "rds-proxy-role-meal-planner", "--policy-name",
                   "read-secret", "--policy-document", read_secret_policy(secret))
    create_aurora(serve_, "meal-planner-db", DB_PASSWORD)
    return {"vpc": vpc, "subnets": subnets, "group": group, "secret": secret, "role": role}


def create_proxy(serve_, s, *extra):
    return serve_.aws("rds", "create-db-proxy", "--db-proxy-name", "meal-planner-proxy", "--engine-family",
                      "POSTGRESQL", "--role-arn", s["role"], "--vpc-subnet-ids", ",".join(s["subnets"]),
                      "--vpc-security-group-ids", s["group"], "--auth",
                      f"AuthScheme=SECRETS,SecretArn={s['secret']},IAMAuth=DISABLED", "--require-tls",
                      *extra)["DBProxy"]


def instance_target(serve_, proxy="meal-planner-proxy"):
    targets = serve_.aws("rds", "describe-db-proxy-targets", "--db-proxy-name", proxy)["Targets"]
    return next((t for t in targets if t["Type"] == "RDS_INSTANCE"), None)


def wait_target(serve_, state, reason=None, timeout=30):
    def reached():
        t = instance_target(serve_)
        health = t and t["TargetHealth"]
        return t if health and health["State"] == state and health.get("Reason") == reason else None
    return harness.wait_for(reached, timeout, 0.3, f"target {state} {reason}")


def wait_proxy_available(serve_, name="meal-planner-proxy"):
    def available():
        p = serve_.aws("rds", "describe-db-proxies", "--db-proxy-name", name)["DBProxies"][0]
        return p if p["Status"] == "available" else None
    return harness.wait_for(available, 30, 0.3, "proxy available")


def through(host, ca, sql="select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()",
            sslmode="verify-full", password=DB_PASSWORD, check=True):
    return psql(harness.conninfo(host=host, port=5432, user="app", dbname="meals", sslmode=sslmode,
                                 sslrootcert=ca, connect_timeout=10), sql, password, check=check)


def test_the_guides_proxy_runs_and_requires_tls(serve):
    s = stack(serve)
    proxy = create_proxy(serve, s, "--idle-client-timeout", "900")
    assert proxy["Status"] == "creating"
    assert proxy["DBProxyArn"].startswith("arn:aws:rds:us-east-1:000000000000:db-proxy:prx-")
    assert len(proxy["DBProxyArn"].split("prx-")[1]) == 17
    assert proxy["Auth"] == [{"AuthScheme": "SECRETS", "SecretArn": s["secret"], "IAMAuth": "DISABLED",
                              "ClientPasswordAuthType": "POSTGRES_SCRAM_SHA_256"}]
    assert proxy["VpcId"] == s["vpc"] and proxy["VpcSubnetIds"] == s["subnets"]
    region_id = proxy["Endpoint"].split(".")[1].removeprefix("proxy-")
    assert proxy["Endpoint"] == f"meal-planner-proxy.proxy-{region_id}.us-east-1.rds.sluice.internal"
    proxy = wait_proxy_available(serve)
    assert proxy["RequireTLS"] is True and proxy["IdleClientTimeout"] == 900

    registered = serve.aws("rds", "register-db-proxy-targets", "--db-proxy-name", "meal-planner-proxy",
                           "--db-cluster-identifiers", "meal-planner-db")["DBProxyTargets"]
    assert {t["Type"] for t in registered} == {"TRACKED_CLUSTER", "RDS_INSTANCE"}
    target = wait_target(serve, "AVAILABLE")
    assert target["Endpoint"].startswith("meal-planner-db-1.") and target["Port"] == 5432
    assert target["Role"] == "READ_WRITE" and target["TrackedClusterId"] == "meal-planner-db"

    ca = ca_bundle_file(serve)
    assert through(proxy["Endpoint"], ca).stdout.strip() == "app|t"
    plaintext = through(proxy["Endpoint"], ca, sslmode="disable", check=False)
    assert plaintext.returncode != 0 and "requires TLS" in plaintext.stderr
    wrong = through(proxy["Endpoint"], ca, password="not-the-password", check=False)
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr
    # The proxy's address is its own: the cluster's is another.
    assert socket.gethostbyname(proxy["Endpoint"]) != socket.gethostbyname(target["Endpoint"])

    group = serve.aws("rds", "describe-db-proxy-target-groups", "--db-proxy-name",
                      "meal-planner-proxy")["TargetGroups"][0]
    assert group["TargetGroupName"] == "default" and group["IsDefault"] is True
    assert group["ConnectionPoolConfig"]["MaxConnectionsPercent"] == 100
    assert group["TargetGroupArn"].startswith("arn:aws:rds:us-east-1:000000000000:target-group:prx-tg-")
    # The pool configuration reaches the running proxy: 1 % of 189 connections is one.
    serve.aws("rds", "modify-db-proxy-target-group", "--db-proxy-name", "meal-planner-proxy",
              "--target-group-name", "default", "--connection-pool-config",
              json.dumps({"MaxConnectionsPercent": 1, "MaxIdleConnectionsPercent": 1,
                          "ConnectionBorrowTimeout": 5, "InitQuery": "SET statement_timeout = 4321"}))
    wait_target(serve, "AVAILABLE")
    harness.wait_for(lambda: through(proxy["Endpoint"], ca, "show statement_timeout", check=False).stdout.strip()
                     == "4321ms", 20, 0.5, "the new pool settings")
    serve.aws("rds", "deregister-db-proxy-targets", "--db-proxy-name", "meal-planner-proxy",
              "--db-cluster-identifiers", "meal-planner-db")
    assert serve.aws("rds", "describe-db-proxy-targets", "--db-proxy-name", "meal-planner-proxy")["Targets"] == []


def test_a_role_that_cannot_read_the_secret_gives_auth_failure(serve):
    s = stack(serve, allow_secret=False)
    create_proxy(serve, s)
    serve.aws("rds", "register-db-proxy-targets", "--db-proxy-name", "meal-planner-proxy",
              "--db-cluster-identifiers", "meal-planner-db")
    target = wait_target(serve, "UNAVAILABLE", "AUTH_FAILURE")
    assert "secretsmanager:GetSecretValue" in target["TargetHealth"]["Description"]
    assert s["role"] in target["TargetHealth"]["Description"]
    assert DB_PASSWORD not in json.dumps(target)

    serve.aws("iam", "put-role-policy", "--role-name", "rds-proxy-role-meal-planner", "--policy-name",
              "read-secret", "--policy-document", read_secret_policy(s["secret"]))
    wait_target(serve, "AVAILABLE")
    ca = ca_bundle_file(serve)
    proxy = serve.aws("rds", "describe-db-proxies")["DBProxies"][0]
    assert through(proxy["Endpoint"], ca).stdout.strip() == "app|t"

    # An explicit Deny wins over the Allow.
    serve.aws("iam", "put-role-policy", "--role-name", "rds-proxy-role-meal-planner", "--policy-name",
              "deny-secret", "--policy-document", json.dumps({"Statement": [{
                  "Effect": "Deny", "Action": "secretsmanager:*", "Resource": "*"}]}))
    target = wait_target(serve, "UNAVAILABLE", "AUTH_FAILURE")
    assert "Deny" in target["TargetHealth"]["Description"] or "deny" in target["TargetHealth"]["Description"]

    # A wrong password in the secret: the running proxy reports the failed login. Twice, as the
    # proxy also tries the version staged AWSPREVIOUS (a rotation's old password may still be the
    # database's).
    serve.aws("iam", "delete-role-policy", "--role-name", "rds-proxy-role-meal-planner", "--policy-name",
              "deny-secret")
    for stale in ("stale-password", "stale-password-2"):
        serve.aws("secretsmanager", "put-secret-value", "--secret-id", s["secret"], "--secret-string",
                  json.dumps({"username": "app", "password": stale}))
    target = wait_target(serve, "UNAVAILABLE", "AUTH_FAILURE")
    assert "stale-password" not in json.dumps(target)


def test_a_rotation_secrets_manager_style(serve):
    """createSecret, setSecret, finishSecret as a rotation function takes them, with the aws CLI:
    serve gives the proxy the staged versions (a SIGHUP each), and a client that keeps the old
    password logs in over and over throughout without a failure."""
    s = stack(serve)
    create_proxy(serve, s)
    serve.aws("rds", "register-db-proxy-targets", "--db-proxy-name", "meal-planner-proxy",
              "--db-cluster-identifiers", "meal-planner-db")
    wait_target(serve, "AVAILABLE")
    ca = ca_bundle_file(serve)
    endpoint = serve.aws("rds", "describe-db-proxies")["DBProxies"][0]["Endpoint"]
    secret_file = os.path.join(serve.home, "proxies", "meal-planner-proxy", "secret-0.json")
    new_password = "meal-planner-db-pw-rotated"

    def logs_in(password):
        return through(endpoint, ca, "select current_user", password=password, check=False).returncode == 0

    def file_has(text):
        with open(secret_file) as f:
            return text in f.read()

    results = {"ok": 0, "failed": 0}
    stop = threading.Event()

    def keep_logging_in():  # with the password it was given first, as a slow client would
        while not stop.is_set():
            results["ok" if logs_in(DB_PASSWORD) else "failed"] += 1

    client = threading.Thread(target=keep_logging_in, daemon=True)
    client.start()
    try:
        (old_version,) = serve.aws("secretsmanager", "describe-secret",
                                   "--secret-id", s["secret"])["VersionIdsToStages"]
        pending = serve.aws("secretsmanager", "put-secret-value", "--secret-id", s["secret"], "--secret-string",
                            json.dumps({"username": "app", "password": new_password}), "--version-stages",
                            "AWSPENDING")
        harness.wait_for(lambda: file_has("AWSPENDING"), 20, 0.2, "the pending version in the proxy's file")
        harness.wait_for(lambda: "reloaded" in open(os.path.join(serve.home, "proxies", "meal-planner-proxy",
                                                                 "proxy.log")).read(), 20, 0.2, "a reload")
        assert not logs_in(new_password), "AWSPENDING is not for clients"

        # setSecret: the database takes the pending password; the proxy's server logins follow.
        through(endpoint, ca, f"alter role app password '{new_password}'")
        # finishSecret: AWSCURRENT to the new version; the old one is AWSPREVIOUS, within its grace.
        serve.aws("secretsmanager", "update-secret-version-stage", "--secret-id", s["secret"], "--version-stage",
                  "AWSCURRENT", "--move-to-version-id", pending["VersionId"], "--remove-from-version-id",
                  old_version)
        harness.wait_for(lambda: file_has('"demoted"'), 20, 0.2, "the previous version in the proxy's file")
        harness.wait_for(lambda: logs_in(new_password), 20, 0.3, "clients with the new password")
        wait_target(serve, "AVAILABLE")
        done = results["ok"] + 3
        harness.wait_for(lambda: results["ok"] >= done, 20, 0.1, "more logins with the old password")
    finally:
        stop.set()
        client.join(30)
    assert results["failed"] == 0 and results["ok"] > 3, results
    log = open(os.path.join(serve.home, "proxies", "meal-planner-proxy", "proxy.log")).read()
    assert new_password not in log and DB_PASSWORD not in log


def test_extra_endpoint_errors_and_restart(serve):
    s = stack(serve)
    create_proxy(serve, s)
    serve.aws("rds", "register-db-proxy-targets", "--db-proxy-name", "meal-planner-proxy",
              "--db-cluster-identifiers", "meal-planner-db")
    endpoint = serve.aws("rds", "create-db-proxy-endpoint", "--db-proxy-name", "meal-planner-proxy",
                         "--db-proxy-endpoint-name", "writer", "--vpc-subnet-ids", *s["subnets"],
                         "--target-role", "READ_WRITE")["DBProxyEndpoint"]
    assert endpoint["Endpoint"].startswith("writer.endpoint.proxy-")
    assert endpoint["VpcSecurityGroupIds"] == [s["group"]] and endpoint["IsDefault"] is False
    wait_target(serve, "AVAILABLE")
    listed = serve.aws("rds", "describe-db-proxy-endpoints", "--db-proxy-name", "meal-planner-proxy")
    assert [(e["DBProxyEndpointName"], e["IsDefault"]) for e in listed["DBProxyEndpoints"]] == [
        ("meal-planner-proxy", True), ("writer", False)]
    ca = ca_bundle_file(serve)
    harness.wait_for(lambda: through(endpoint["Endpoint"], ca, check=False).returncode == 0, 20, 0.3,
                     "the extra endpoint")
    assert through(endpoint["Endpoint"], ca).stdout.strip() == "app|t"

    cases = [
        (["create-db-proxy", "--db-proxy-name", "meal-planner-proxy", "--engine-family", "POSTGRESQL",
          "--role-arn", s["role"], "--vpc-subnet-ids", *s["subnets"], "--auth",
          f"SecretArn={s['secret']}"], "DBProxyAlreadyExistsFault"),
        (["create-db-proxy", "--db-proxy-name", "other", "--engine-family", "MYSQL", "--role-arn", s["role"],
          "--vpc-subnet-ids", *s["subnets"], "--auth", f"SecretArn={s['secret']}"], "InvalidParameterValue"),
        (["create-db-proxy", "--db-proxy-name", "other", "--engine-family", "POSTGRESQL", "--role-arn",
          s["role"], "--vpc-subnet-ids", "subnet-0000000000000000a", "--auth", f"SecretArn={s['secret']}"],
         "InvalidSubnet"),
        (["create-db-proxy", "--db-proxy-name", "other", "--engine-family", "POSTGRESQL", "--role-arn",
          s["role"], "--vpc-subnet-ids", *s["subnets"], "--auth", "SecretArn=arn:aws:s3:::a-bucket-not-a-secret"],
         "InvalidParameterValue"),
        (["describe-db-proxies", "--db-proxy-name", "nosuch"], "DBProxyNotFoundFault"),
        (["describe-db-proxy-targets", "--db-proxy-name", "nosuch"], "DBProxyNotFoundFault"),
        (["describe-db-proxy-targets", "--db-proxy-name", "meal-planner-proxy", "--target-group-name", "x"],
         "DBProxyTargetGroupNotFoundFault"),
        (["register-db-proxy-targets", "--db-proxy-name", "meal-planner-proxy", "--db-cluster-identifiers",
          "meal-planner-db"], "DBProxyTargetAlreadyRegisteredFault"),
        (["deregister-db-proxy-targets", "--db-proxy-name", "meal-planner-proxy", "--db-cluster-identifiers",
          "nosuch"], "DBProxyTargetNotFoundFault"),
        (["modify-db-proxy-target-group", "--db-proxy-name", "meal-planner-proxy", "--target-group-name",
          "default", "--connection-pool-config", "MaxConnectionsPercent=10,MaxIdleConnectionsPercent=20"],
         "InvalidParameterValue"),
        (["create-db-proxy-endpoint", "--db-proxy-name", "meal-planner-proxy", "--db-proxy-endpoint-name",
          "writer", "--vpc-subnet-ids", *s["subnets"]], "DBProxyEndpointAlreadyExistsFault"),
        (["delete-db-proxy-endpoint", "--db-proxy-endpoint-name", "nosuch"], "DBProxyEndpointNotFoundFault"),
        (["delete-db-cluster", "--db-cluster-identifier", "meal-planner-db", "--skip-final-snapshot"],
         "InvalidDBClusterStateFault"),
    ]
    for args, code in cases:
        r = serve.aws("rds", *args, check=False)
        assert r.returncode != 0 and f"({code})" in r.stderr, (args, r.stderr)
    assert [p["DBProxyName"] for p in serve.aws("rds", "describe-db-proxies")["DBProxies"]] == ["meal-planner-proxy"]

    # Restarting sluice serve brings the database and the proxy back, with both endpoints.
    proxy = serve.aws("rds", "describe-db-proxies")["DBProxies"][0]
    assert serve.stop() == 0
    again = Serve(home=serve.home)
    serve.proc, serve.port, serve.url = again.proc, again.port, again.url
    wait_target(serve, "AVAILABLE", timeout=60)
    for host in (proxy["Endpoint"], endpoint["Endpoint"]):
        harness.wait_for(lambda: through(host, ca, check=False).returncode == 0, 20, 0.3, host)

    serve.aws("rds", "delete-db-proxy-endpoint", "--db-proxy-endpoint-name", "writer")
    deleted = serve.aws("rds", "delete-db-proxy", "--db-proxy-name", "meal-planner-proxy")["DBProxy"]
    assert deleted["Status"] == "deleting"
    assert serve.aws("rds", "describe-db-proxies")["DBProxies"] == []
    assert not os.path.exists(os.path.join(serve.home, "proxies", "meal-planner-proxy"))
    with open("/etc/hosts") as f:
        assert "meal-planner-proxy" not in f.read()


def proxy_pid(serve_, name="meal-planner-proxy"):
    """The pid of the sluice-proxy sluice serve runs for `name` (by its configuration's path)."""
    config = os.path.join(serve_.home, "proxies", name, "proxy.toml").encode()
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if config in f.read().split(b"\0"):
                    return int(entry)
        except (OSError, ValueError):
            continue
    return None


def test_the_api_answers_while_a_proxys_health_probe_hangs(serve):
    """Target health comes from the running proxy (GET /targets, 500 ms timeout, once a second).
    A stopped proxy accepts that connection and never answers, so each probe waits its whole
    timeout; the probes run off the API's thread, so no API call waits on them."""
    s = stack(serve)
    create_proxy(serve, s)
    wait_proxy_available(serve)
    serve.aws("rds", "register-db-proxy-targets", "--db-proxy-name", "meal-planner-proxy",
              "--db-cluster-identifiers", "meal-planner-db")
    wait_target(serve, "AVAILABLE")
    pid = harness.wait_for(lambda: proxy_pid(serve), 10, 0.2, "the proxy's process")
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(1.5)  # probes now hang
        slowest = 0.0
        deadline = time.monotonic() + 4  # about four probes, each 500 ms long
        while time.monotonic() < deadline:
            started = time.monotonic()
            status, body = post_form(serve, "Action=DescribeDBProxyTargets&Version=2014-10-31"
                                            "&DBProxyName=meal-planner-proxy")
            slowest = max(slowest, time.monotonic() - started)
            assert status == 200, body
            time.sleep(0.02)
        # An API call takes a few milliseconds; one that waited on a probe would take up to 500.
        assert slowest < 0.3, f"an API call took {slowest * 1000:.0f} ms while a probe hung"
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_target(serve, "AVAILABLE")


def test_modifications_are_reloaded_and_clients_keep_their_sessions(serve):
    """modify-db-proxy, modify-db-proxy-target-group, create-db-proxy-endpoint and a role that
    loses its secret: the same sluice-proxy process applies each (SIGHUP), a client connected
    throughout keeps its session, and a login without credentials is told why."""
    import psycopg
    s = stack(serve)
    create_proxy(serve, s)
    serve.aws("rds", "register-db-proxy-targets", "--db-proxy-name", "meal-planner-proxy",
              "--db-cluster-identifiers", "meal-planner-db")
    wait_target(serve, "AVAILABLE")
    ca = ca_bundle_file(serve)
    proxy = wait_proxy_available(serve)
    pid = proxy_pid(serve)
    conn = psycopg.connect(harness.conninfo(host=proxy["Endpoint"], port=5432, user="app", dbname="meals",
                                            sslmode="verify-full", sslrootcert=ca, password=DB_PASSWORD,
                                            connect_timeout=10), autocommit=True)
    log = os.path.join(serve.home, "proxies", "meal-planner-proxy", "proxy.log")

    def reloads():
        with open(log) as f:
            return f.read().count("reloaded ")

    serve.aws("rds", "modify-db-proxy", "--db-proxy-name", "meal-planner-proxy", "--idle-client-timeout", "900")
    harness.wait_for(lambda: reloads() >= 1, 20, 0.2, "the proxy to reload")
    serve.aws("rds", "modify-db-proxy-target-group", "--db-proxy-name", "meal-planner-proxy",
              "--target-group-name", "default", "--connection-pool-config",
              "MaxConnectionsPercent=50,MaxIdleConnectionsPercent=20,InitQuery=SET statement_timeout = 4321")
    harness.wait_for(lambda: conn.execute("SHOW statement_timeout").fetchone()[0] == "4321ms", 20, 0.2,
                     "the new init query on the client's next statement")
    endpoint = serve.aws("rds", "create-db-proxy-endpoint", "--db-proxy-name", "meal-planner-proxy",
                         "--db-proxy-endpoint-name", "writer", "--vpc-subnet-ids", *s["subnets"],
                         "--target-role", "READ_WRITE")["DBProxyEndpoint"]
    harness.wait_for(lambda: through(endpoint["Endpoint"], ca, check=False).returncode == 0, 20, 0.3,
                     "the new endpoint")
    assert proxy_pid(serve) == pid, "a modification restarted the proxy"
    assert conn.execute("select 1").fetchone()[0] == 1

    serve.aws("iam", "delete-role-policy", "--role-name", "rds-proxy-role-meal-planner", "--policy-name",
              "read-secret")
    wait_target(serve, "UNAVAILABLE", "AUTH_FAILURE")
    refused = harness.wait_for(
        lambda: (lambda r: r if "no credentials for the role" in r.stderr else None)(
            through(proxy["Endpoint"], ca, check=False)), 20, 0.3, "logins to be told the cause")
    assert refused.returncode != 0 and "secretsmanager:GetSecretValue" in refused.stderr, refused.stderr
    assert proxy_pid(serve) == pid
    assert conn.execute("select 2").fetchone()[0] == 2  # logged in before: carries on
    conn.close()
