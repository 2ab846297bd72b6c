"""The guide, verbatim: after `sluice apply examples/meal-planner/stack.toml`, the guide's three
AWS CLI commands run as written (only --endpoint-url added), and the stack they describe works:
the proxy requires TLS, its target is available, libpq connects by the endpoint name with
sslmode=verify-full, plaintext is refused. The same checks with boto3, and the whole again with
the sluice CLI in place of aws, which prints exactly what aws prints."""
import json
import subprocess

import pytest

from sluice_harness import harness
from sluice_harness.cloud import Serve, ca_bundle_file, psql, serve, wait_available  # noqa: F401
from sluice_harness.guide import PROXY_HOST, SECRET_ARN, STACK, apply, guide_commands, run_verbatim


@pytest.mark.parametrize("tool", ["aws", "sluice"])
def test_the_guides_commands_run_verbatim_after_apply(tool):
    serve_ = Serve(extra=("--account-id", "512662829295"))
    try:
        out = apply(serve_)
        assert "created  secret           " + SECRET_ARN in out
        assert "created  subnet           subnet-0aea07bbb011a0bab" in out
        commands = guide_commands()
        proxy = run_verbatim(serve_, commands[0], tool)["DBProxy"]
        assert proxy["Endpoint"] == PROXY_HOST
        rule = run_verbatim(serve_, commands[1], tool)
        assert rule["Return"] is True
        config = run_verbatim(serve_, commands[2], tool)
        assert config["FunctionName"] == "meal-planner-test-app"
        assert config["FunctionArn"] == "arn:aws:lambda:us-east-1:512662829295:function:meal-planner-test-app"
        assert config["VpcConfig"]["SubnetIds"] == ["subnet-0aea07bbb011a0bab", "subnet-054c26c1e75b269e1"]
        assert config["VpcConfig"]["SecurityGroupIds"] == ["sg-0fd605efde80bd711"]
        assert config["VpcConfig"]["VpcId"] == "vpc-0c5e7d2b9a4f1e368"
        assert config["Environment"]["Variables"]["DB_HOST"] == PROXY_HOST
        assert config["Role"] == "arn:aws:iam::512662829295:role/meal-planner-test-app-role"

        # Applying again changes nothing.
        again = apply(serve_)
        assert "created" not in again and "exists   db-cluster       meal-planner-db" in again

        wait_available(serve_, "meal-planner-db-1")
        serve_.aws("rds", "register-db-proxy-targets", "--db-proxy-name", "meal-planner-proxy",
                   "--db-cluster-identifiers", "meal-planner-db", tool=tool)
        serve_.aws("lambda", "update-function-configuration", "--function-name", "meal-planner-test-app",
                   "--environment", json.dumps({"Variables": {"DB_HOST": PROXY_HOST, "DB_NAME": "mealplanner",
                                                              "DB_SECRET_ARN": SECRET_ARN}}), tool=tool)
        check_stack(serve_, tool)
        if tool == "aws":
            check_stack_with_boto3(serve_)
        else:
            check_same_output_as_aws(serve_)
    finally:
        serve_.stop()


def check_stack(serve_, tool):
    """The guide's checks with the aws CLI or the sluice CLI."""
    def proxy_ready():
        p = serve_.aws("rds", "describe-db-proxies", "--db-proxy-name", "meal-planner-proxy",
                       tool=tool)["DBProxies"][0]
        return p if p["Status"] == "available" else None
    proxy = harness.wait_for(proxy_ready, 30, 0.3, "proxy available")
    assert proxy["RequireTLS"] is True

    def target_available():
        targets = serve_.aws("rds", "describe-db-proxy-targets", "--db-proxy-name", "meal-planner-proxy",
                             tool=tool)["Targets"]
        t = [t for t in targets if t["Type"] == "RDS_INSTANCE"]
        return t and t[0]["TargetHealth"]["State"] == "AVAILABLE"
    harness.wait_for(target_available, 30, 0.3, "target AVAILABLE")
    config = serve_.aws("lambda", "get-function-configuration", "--function-name", "meal-planner-test-app",
                        tool=tool)
    assert config["Environment"]["Variables"]["DB_HOST"] == PROXY_HOST

    ca = ca_bundle_file(serve_)
    secret = json.loads(serve_.aws("secretsmanager", "get-secret-value", "--secret-id",
                                   SECRET_ARN, tool=tool)["SecretString"])
    conn = harness.conninfo(host=PROXY_HOST, port=5432, user=secret["username"], dbname="mealplanner",
                            sslmode="verify-full", sslrootcert=ca, connect_timeout=10)
    row = psql(conn, "select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()",
               secret["password"]).stdout.strip()
    assert row == "mealplanner|t"
    plain = psql(conn.replace("sslmode=verify-full", "sslmode=disable"), "select 1", secret["password"],
                 check=False)
    assert plain.returncode != 0 and "requires TLS" in plain.stderr


SAME_OUTPUT = [
    ("rds", "describe-db-proxies"), ("rds", "describe-db-proxy-targets", "--db-proxy-name", "meal-planner-proxy"),
    ("rds", "describe-db-proxy-target-groups", "--db-proxy-name", "meal-planner-proxy"),
    ("rds", "describe-db-proxy-endpoints"), ("rds", "describe-db-clusters"), ("rds", "describe-db-instances"),
    ("lambda", "get-function-configuration", "--function-name", "meal-planner-test-app"),
    ("lambda", "get-function", "--function-name", "meal-planner-test-app"), ("lambda", "list-functions"),
    ("ec2", "describe-vpcs"), ("ec2", "describe-subnets"), ("ec2", "describe-security-groups"),
    ("ec2", "describe-security-group-rules"), ("ec2", "describe-network-interfaces"),
    ("iam", "list-roles"), ("iam", "get-role", "--role-name", "rds-proxy-role-meal-planner"),
    ("iam", "list-role-policies", "--role-name", "rds-proxy-role-meal-planner"),
    ("secretsmanager", "list-secrets"), ("secretsmanager", "describe-secret", "--secret-id", SECRET_ARN),
    ("rds", "describe-db-proxies", "--db-proxy-name", "no-such-proxy"),
]


def check_same_output_as_aws(serve_):
    """The sluice CLI prints what the aws CLI prints, byte for byte, errors included."""
    for command in SAME_OUTPUT:
        ours = serve_.sluice(*command, check=False)
        theirs = serve_.aws(*command, check=False)
        assert (ours.stdout, ours.stderr) == (theirs.stdout, theirs.stderr), command
        assert (ours.returncode == 0) == (theirs.returncode == 0), command
    assert ours.returncode == 254 and "(DBProxyNotFoundFault)" in ours.stderr


BOTO3_CHECK = r'''
import json, sys, boto3
url = sys.argv[1]
kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="AKIDLOCAL",
          aws_secret_access_key="local-secret")
rds, lam, sm = boto3.client("rds", **kw), boto3.client("lambda", **kw), boto3.client("secretsmanager", **kw)
proxy = rds.describe_db_proxies(DBProxyName="meal-planner-proxy")["DBProxies"][0]
targets = rds.describe_db_proxy_targets(DBProxyName="meal-planner-proxy")["Targets"]
config = lam.get_function_configuration(FunctionName="meal-planner-test-app")
secret = json.loads(sm.get_secret_value(SecretId=sys.argv[2])["SecretString"])
print(json.dumps({"status": proxy["Status"], "tls": proxy["RequireTLS"], "endpoint": proxy["Endpoint"],
                  "health": [t["TargetHealth"]["State"] for t in targets if t["Type"] == "RDS_INSTANCE"],
                  "db_host": config["Environment"]["Variables"]["DB_HOST"],
                  "vpc": config["VpcConfig"]["VpcId"], "user": secret["username"]}))
'''


def check_stack_with_boto3(serve_):
    r = subprocess.run(["python3", "-c", BOTO3_CHECK, serve_.url, SECRET_ARN], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"status": "available", "tls": True, "endpoint": PROXY_HOST,
                                    "health": ["AVAILABLE"], "db_host": PROXY_HOST,
                                    "vpc": "vpc-0c5e7d2b9a4f1e368", "user": "mealplanner"}


def test_apply_refuses_a_bad_stack_before_creating_anything(serve, tmp_path):  # noqa: F811
    wrong_account = subprocess.run([Serve.binary(), "--endpoint-url", serve.url, "apply", STACK],
                                   capture_output=True, text=True, timeout=60)
    assert wrong_account.returncode == 1
    assert "--account-id 512662829295" in wrong_account.stderr
    assert serve.aws("ec2", "describe-vpcs")["Vpcs"] == []

    bad = tmp_path / "bad.toml"
    bad.write_text('[vpc]\ncidr_block = "10.0.0.0/16"\n[[subnet]]\navailability_zone = "us-east-1a"\n')
    r = subprocess.run([Serve.binary(), "--endpoint-url", serve.url, "apply", str(bad)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "subnet[0].cidr_block: is required" in r.stderr, r.stderr
    assert serve.aws("ec2", "describe-vpcs")["Vpcs"] == [], "a VPC was created from a stack with a mistake"
    broken = tmp_path / "broken.toml"
    broken.write_text("[vpc\n")
    r = subprocess.run([Serve.binary(), "--endpoint-url", serve.url, "apply", str(broken)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "line 1" in r.stderr, r.stderr
    unreachable = subprocess.run([Serve.binary(), "--endpoint-url", "http://127.0.0.1:1", "apply", STACK],
                                 capture_output=True, text=True, timeout=60)
    assert unreachable.returncode == 1 and "cannot reach the sluice API" in unreachable.stderr
