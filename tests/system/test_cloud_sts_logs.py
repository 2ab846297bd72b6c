"""`sluice serve` as STS and CloudWatch Logs, and calls signed with temporary role credentials,
driven by the real aws CLI (v1 on PATH, v2 at /usr/bin/aws where installed) and boto3.

Role credentials (what function environments get) act as
arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION and may do only what the role's policies allow;
each service refuses the rest with its own AccessDenied shape."""
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from sluice_harness import harness
from sluice_harness.cloud import Serve, serve  # noqa: F401 - the fixture

ACCOUNT = "000000000000"
GROUP = "/aws/lambda/meal-planner-test-app"
STREAM = "2026/12/05/[$LATEST]0123456789abcdef0123456789abcdef"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def aws_v2():
    """/usr/bin/aws when it is the aws CLI v2 (Debian's awscli), else None."""
    path = "/usr/bin/aws"
    if not os.path.exists(path):
        return None
    r = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
    return path if r.stdout.startswith("aws-cli/2") else None


def run_aws(serve_, *args, credentials=None, tool="aws", check=True):
    """An aws CLI command with these credentials (key, secret[, session token]): its parsed JSON,
    or with check=False the CompletedProcess."""
    return serve_.aws(*args, key=credentials or ("AKIDLOCAL", "local-secret"), tool=tool, check=check)


def now_ms():
    return int(time.time() * 1000)


def make_group_with_events(serve_, messages, start=None):
    """GROUP with STREAM holding `messages`, 1 ms apart; their first timestamp."""
    serve_.aws("logs", "create-log-group", "--log-group-name", GROUP)
    serve_.aws("logs", "create-log-stream", "--log-group-name", GROUP, "--log-stream-name", STREAM)
    start = start or now_ms() - 60_000
    events = [{"timestamp": start + i, "message": m} for i, m in enumerate(messages)]
    put = serve_.aws("logs", "put-log-events", "--log-group-name", GROUP, "--log-stream-name", STREAM,
                     "--log-events", json.dumps(events))
    assert "rejectedLogEventsInfo" not in put
    return start


def test_logs_with_the_aws_cli(serve):
    start = make_group_with_events(serve, ["START RequestId: 1 Version: $LATEST",
                                           "connected to the database",
                                           "ERROR could not plan meals: timeout",
                                           "END RequestId: 1"])
    serve.aws("logs", "create-log-group", "--log-group-name", "/aws/lambda/other")

    dup = serve.aws("logs", "create-log-group", "--log-group-name", GROUP, check=False)
    assert dup.returncode != 0 and "ResourceAlreadyExistsException" in dup.stderr
    assert "The specified log group already exists" in dup.stderr
    missing = serve.aws("logs", "describe-log-streams", "--log-group-name", "/aws/lambda/nope", check=False)
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr
    assert "The specified log group does not exist." in missing.stderr
    no_stream = serve.aws("logs", "get-log-events", "--log-group-name", GROUP, "--log-stream-name", "nope",
                          check=False)
    assert "The specified log stream does not exist." in no_stream.stderr
    bad = serve.aws("logs", "create-log-group", "--log-group-name", "has spaces", check=False)
    assert bad.returncode != 0 and "InvalidParameterException" in bad.stderr

    groups = serve.aws("logs", "describe-log-groups", "--log-group-name-prefix", "/aws/lambda/meal")
    assert [g["logGroupName"] for g in groups["logGroups"]] == [GROUP]
    assert groups["logGroups"][0]["arn"] == f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{GROUP}:*"
    # The CLI follows nextToken across pages of one.
    paged = serve.aws("logs", "describe-log-groups", "--page-size", "1")
    assert [g["logGroupName"] for g in paged["logGroups"]] == ["/aws/lambda/meal-planner-test-app",
                                                               "/aws/lambda/other"]

    streams = serve.aws("logs", "describe-log-streams", "--log-group-name", GROUP, "--order-by",
                        "LastEventTime", "--descending")["logStreams"]
    assert [s["logStreamName"] for s in streams] == [STREAM]
    assert streams[0]["firstEventTimestamp"] == start and streams[0]["lastEventTimestamp"] == start + 3

    got = serve.aws("logs", "get-log-events", "--log-group-name", GROUP, "--log-stream-name", STREAM,
                    "--start-from-head", "--limit", "3")
    assert [e["message"] for e in got["events"]][0].startswith("START")
    assert len(got["events"]) == 3
    assert got["nextForwardToken"].startswith("f/") and got["nextBackwardToken"].startswith("b/")
    rest = serve.aws("logs", "get-log-events", "--log-group-name", GROUP, "--log-stream-name", STREAM,
                     "--next-token", got["nextForwardToken"])
    assert [e["message"] for e in rest["events"]] == ["END RequestId: 1"]
    end = serve.aws("logs", "get-log-events", "--log-group-name", GROUP, "--log-stream-name", STREAM,
                    "--next-token", rest["nextForwardToken"])
    assert end["events"] == [] and end["nextForwardToken"] == rest["nextForwardToken"]

    found = serve.aws("logs", "filter-log-events", "--log-group-name", GROUP, "--filter-pattern", "ERROR")
    assert [e["message"] for e in found["events"]] == ["ERROR could not plan meals: timeout"]
    event = found["events"][0]
    assert event["logStreamName"] == STREAM and event["timestamp"] == start + 2
    assert re.fullmatch(r"\d{56}", event["eventId"]) and event["ingestionTime"] >= event["timestamp"]
    phrase = serve.aws("logs", "filter-log-events", "--log-group-name", GROUP, "--filter-pattern",
                       '"the database"')
    assert [e["message"] for e in phrase["events"]] == ["connected to the database"]
    assert serve.aws("logs", "filter-log-events", "--log-group-name", GROUP, "--filter-pattern",
                     "error")["events"] == []  # case-sensitive, as CloudWatch
    # Pages of one event, followed by the CLI: every event once, in order.
    every = serve.aws("logs", "filter-log-events", "--log-group-name", GROUP, "--page-size", "1",
                      "--start-time", str(start + 1))
    assert [e["message"] for e in every["events"]] == ["connected to the database",
                                                      "ERROR could not plan meals: timeout",
                                                      "END RequestId: 1"]

    serve.aws("logs", "delete-log-group", "--log-group-name", "/aws/lambda/other")
    assert [g["logGroupName"] for g in serve.aws("logs", "describe-log-groups")["logGroups"]] == [GROUP]


def test_logs_tail_with_aws_cli_v2(serve):
    aws2 = aws_v2()
    if not aws2:
        pytest.skip("the aws CLI v2 (/usr/bin/aws, Debian's awscli) is not installed")
    make_group_with_events(serve, ["first line", "ERROR second line", "third line"])
    out = run_aws(serve, "logs", "tail", GROUP, tool=aws2, check=False)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3 and lines[1].endswith(f"{STREAM} ERROR second line"), out.stdout
    errors = run_aws(serve, "logs", "tail", GROUP, "--filter-pattern", "ERROR", "--format", "short",
                     tool=aws2, check=False)
    assert errors.returncode == 0 and errors.stdout.splitlines()[0].endswith(" ERROR second line")

    # --follow polls FilterLogEvents from the newest timestamp it saw: a later event shows up once.
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDLOCAL", AWS_SECRET_ACCESS_KEY="local-secret",
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    follow = harness.register_proc(subprocess.Popen(
        [aws2, "--endpoint-url", serve.url, "logs", "tail", GROUP, "--follow", "--format", "short"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True))
    try:
        time.sleep(2)
        serve.aws("logs", "put-log-events", "--log-group-name", GROUP, "--log-stream-name", STREAM,
                  "--log-events", json.dumps([{"timestamp": now_ms(), "message": "arrived later"}]))
        time.sleep(7)  # the CLI polls every 5 s
    finally:
        os.killpg(follow.pid, signal.SIGINT)
        stdout, stderr = follow.communicate(timeout=20)
        harness.unregister_proc(follow)
    messages = [line.split(" ", 1)[1] for line in stdout.splitlines()]
    assert messages == ["first line", "ERROR second line", "third line", "arrived later"], stderr


def test_logs_survive_a_restart(serve):
    start = make_group_with_events(serve, ["before the restart"])
    assert serve.stop() == 0
    again = Serve(home=serve.home)
    try:
        got = again.aws("logs", "get-log-events", "--log-group-name", GROUP, "--log-stream-name", STREAM)
        assert [e["message"] for e in got["events"]] == ["before the restart"]
        again.aws("logs", "put-log-events", "--log-group-name", GROUP, "--log-stream-name", STREAM,
                  "--log-events", json.dumps([{"timestamp": start + 5, "message": "after it"}]))
        found = again.aws("logs", "filter-log-events", "--log-group-name", GROUP)
        assert [e["message"] for e in found["events"]] == ["before the restart", "after it"]
        stream = again.aws("logs", "describe-log-streams", "--log-group-name", GROUP)["logStreams"][0]
        assert stream["lastEventTimestamp"] == start + 5
    finally:
        assert again.stop() == 0


def test_get_caller_identity_with_plain_keys(serve):
    expected = {"UserId": ACCOUNT, "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:root"}
    assert serve.aws("sts", "get-caller-identity") == expected
    if aws_v2():
        assert run_aws(serve, "sts", "get-caller-identity", tool=aws_v2()) == expected


def assume_function_role(serve_):
    """The guide's function role: may read one secret. (allowed ARN, other ARN, credentials)."""
    allowed = serve_.aws("secretsmanager", "create-secret", "--name", "meal-planner-db-secret",
                         "--secret-string", '{"password":"p1"}')["ARN"]
    other = serve_.aws("secretsmanager", "create-secret", "--name", "admin-secret",
                       "--secret-string", "p2")["ARN"]
    serve_.aws("iam", "create-role", "--role-name", "meal-planner-function-role",
               "--assume-role-policy-document", TRUST)
    serve_.aws("iam", "put-role-policy", "--role-name", "meal-planner-function-role", "--policy-name",
               "read-db-secret", "--policy-document", json.dumps({
                   "Version": "2012-10-17", "Statement": [{
                       "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": allowed}]}))
    assumed = serve_.aws("sts", "assume-role", "--role-arn",
                         f"arn:aws:iam::{ACCOUNT}:role/meal-planner-function-role",
                         "--role-session-name", "meal-planner-test-app", "--duration-seconds", "900")
    c = assumed["Credentials"]
    assert re.fullmatch(r"ASIA[A-Z2-7]{16}", c["AccessKeyId"]) and len(c["SecretAccessKey"]) == 40
    assert len(c["SessionToken"]) > 100 and c["Expiration"].startswith("20")
    user = assumed["AssumedRoleUser"]
    assert user["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/meal-planner-function-role/meal-planner-test-app"
    assert re.fullmatch(r"AROA[A-Z2-7]{17}:meal-planner-test-app", user["AssumedRoleId"])
    return allowed, other, (c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]), user


def test_role_credentials_are_held_to_the_roles_policies(serve):
    allowed, other, creds, user = assume_function_role(serve)
    role_user = user["Arn"]

    got = run_aws(serve, "secretsmanager", "get-secret-value", "--secret-id", "meal-planner-db-secret",
                  credentials=creds)
    assert got["ARN"] == allowed and json.loads(got["SecretString"]) == {"password": "p1"}
    assert run_aws(serve, "secretsmanager", "get-secret-value", "--secret-id", allowed,
                   credentials=creds)["ARN"] == allowed

    # Another secret, one that does not exist, another operation: the same refusal, naming the
    # secret as the caller did (existence is never revealed to a caller who may not read it).
    for secret_id, operation, action in [("admin-secret", "get-secret-value", "GetSecretValue"),
                                         (other, "get-secret-value", "GetSecretValue"),
                                         ("no-such-secret", "get-secret-value", "GetSecretValue"),
                                         ("meal-planner-db-secret", "describe-secret", "DescribeSecret")]:
        r = run_aws(serve, "secretsmanager", operation, "--secret-id", secret_id, credentials=creds,
                    check=False)
        assert r.returncode != 0
        assert (f"An error occurred (AccessDeniedException) when calling the {action} operation: "
                f"User: {role_user} is not authorized to perform: secretsmanager:{action} on resource: "
                f"{secret_id} because no identity-based policy allows the secretsmanager:{action} "
                "action") in r.stderr, r.stderr
    listed = run_aws(serve, "secretsmanager", "list-secrets", credentials=creds, check=False)
    assert (f"User: {role_user} is not authorized to perform: secretsmanager:ListSecrets because no "
            "identity-based policy allows the secretsmanager:ListSecrets action") in listed.stderr

    expected = {"UserId": user["AssumedRoleId"], "Account": ACCOUNT, "Arn": role_user}
    assert run_aws(serve, "sts", "get-caller-identity", credentials=creds) == expected
    if aws_v2():
        assert run_aws(serve, "sts", "get-caller-identity", credentials=creds, tool=aws_v2()) == expected

    rds = run_aws(serve, "rds", "describe-db-proxies", credentials=creds, check=False)
    assert rds.returncode != 0 and "An error occurred (AccessDenied) when calling the DescribeDBProxies" in rds.stderr
    assert (f"User: {role_user} is not authorized to perform: rds:DescribeDBProxies on resource: "
            f"arn:aws:rds:us-east-1:{ACCOUNT}:db-proxy:* because no identity-based policy allows the "
            "rds:DescribeDBProxies action") in rds.stderr
    ec2 = run_aws(serve, "ec2", "describe-vpcs", credentials=creds, check=False)
    assert ("An error occurred (UnauthorizedOperation) when calling the DescribeVpcs operation: You are "
            f"not authorized to perform this operation. User: {role_user} is not authorized to perform: "
            "ec2:DescribeVpcs because no identity-based policy allows the ec2:DescribeVpcs action") in ec2.stderr
    lam = run_aws(serve, "lambda", "get-function-configuration", "--function-name", "meal-planner",
                  credentials=creds, check=False)
    assert ("An error occurred (AccessDeniedException) when calling the GetFunctionConfiguration "
            f"operation: User: {role_user} is not authorized to perform: lambda:GetFunctionConfiguration "
            f"on resource: arn:aws:lambda:us-east-1:{ACCOUNT}:function:meal-planner because no "
            "identity-based policy allows the lambda:GetFunctionConfiguration action") in lam.stderr
    iam = run_aws(serve, "iam", "delete-role", "--role-name", "meal-planner-function-role",
                  credentials=creds, check=False)
    assert "(AccessDenied)" in iam.stderr and "iam:DeleteRole" in iam.stderr
    assert serve.aws("iam", "get-role", "--role-name", "meal-planner-function-role")  # still there


def test_role_credentials_must_be_whole(serve):
    _, _, (key, secret, token), _ = assume_function_role(serve)
    read = ("secretsmanager", "get-secret-value", "--secret-id", "meal-planner-db-secret")
    wrong_token = run_aws(serve, *read, credentials=(key, secret, token[:-4] + "AAAA"), check=False)
    assert ("An error occurred (UnrecognizedClientException) when calling the GetSecretValue operation: "
            "The security token included in the request is invalid.") in wrong_token.stderr
    no_token = run_aws(serve, *read, credentials=(key, secret), check=False)
    assert "UnrecognizedClientException" in no_token.stderr
    bad_signature = run_aws(serve, *read, credentials=(key, "x" * 40, token), check=False)
    assert ("An error occurred (InvalidSignatureException) when calling the GetSecretValue operation: "
            "The request signature we calculated does not match") in bad_signature.stderr
    query_signature = run_aws(serve, "sts", "get-caller-identity", credentials=(key, "x" * 40, token),
                              check=False)
    assert "(SignatureDoesNotMatch)" in query_signature.stderr
    unknown = run_aws(serve, "sts", "get-caller-identity",
                      credentials=("ASIAAAAAAAAAAAAAAAAA", secret, token), check=False)
    assert ("An error occurred (InvalidClientTokenId) when calling the GetCallerIdentity operation: "
            "The security token included in the request is invalid.") in unknown.stderr
    # The credentials live as long as the sluice serve that issued them.
    assert serve.stop() == 0
    again = Serve(home=serve.home)
    try:
        gone = run_aws(again, *read, credentials=(key, secret, token), check=False)
        assert "UnrecognizedClientException" in gone.stderr
    finally:
        assert again.stop() == 0


def test_role_credentials_with_boto3(serve):
    allowed, _, (key, secret, token), user = assume_function_role(serve)
    script = f"""
import boto3, json
kw = dict(endpoint_url="{serve.url}", region_name="us-east-1", aws_access_key_id="{key}",
          aws_secret_access_key="{secret}", aws_session_token="{token}")
sm, sts = boto3.client("secretsmanager", **kw), boto3.client("sts", **kw)
out = {{"value": sm.get_secret_value(SecretId="meal-planner-db-secret")["SecretString"],
        "arn": sts.get_caller_identity()["Arn"]}}
try:
    sm.get_secret_value(SecretId="admin-secret")
except sm.exceptions.ClientError as e:
    out["error"] = e.response["Error"]
    out["status"] = e.response["ResponseMetadata"]["HTTPStatusCode"]
print(json.dumps(out))
"""
    python = next(p for p in (shutil.which("python3"), "/usr/bin/python3")
                  if p and subprocess.run([p, "-c", "import boto3"], capture_output=True).returncode == 0)
    r = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert json.loads(out["value"]) == {"password": "p1"} and out["arn"] == user["Arn"]
    assert out["status"] == 400 and out["error"]["Code"] == "AccessDeniedException"
    assert out["error"]["Message"] == (
        f"User: {user['Arn']} is not authorized to perform: secretsmanager:GetSecretValue on resource: "
        "admin-secret because no identity-based policy allows the secretsmanager:GetSecretValue action")


def test_assume_role_refusals(serve):
    serve.aws("iam", "create-role", "--role-name", "short", "--assume-role-policy-document", TRUST)
    role = f"arn:aws:iam::{ACCOUNT}:role/short"
    missing = serve.aws("sts", "assume-role", "--role-arn", f"arn:aws:iam::{ACCOUNT}:role/nope",
                        "--role-session-name", "s1", check=False)
    assert ("An error occurred (AccessDenied) when calling the AssumeRole operation: User: "
            f"arn:aws:iam::{ACCOUNT}:root is not authorized to perform: sts:AssumeRole on resource: "
            f"arn:aws:iam::{ACCOUNT}:role/nope") in missing.stderr
    too_long = serve.aws("sts", "assume-role", "--role-arn", role, "--role-session-name", "s1",
                         "--duration-seconds", "7200", check=False)
    assert "(ValidationError)" in too_long.stderr and "MaxSessionDuration" in too_long.stderr
    bad_name = serve.aws("sts", "assume-role", "--role-arn", role, "--role-session-name", "a b",
                         check=False)
    assert "(ValidationError)" in bad_name.stderr
