"""`sluice serve` as IAM (Query protocol), driven by the aws CLI: roles with trust policies,
inline and customer-managed policies, attachments, and the service's errors."""
import json
import urllib.parse

from sluice_harness.cloud import post_form, serve  # noqa: F401 - the fixture

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "rds.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
READ_SECRET = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
    "Resource": "arn:aws:secretsmanager:us-east-1:000000000000:secret:meal-planner-*"}]})


def test_role_with_inline_and_managed_policies(serve):
    role = serve.aws("iam", "create-role", "--role-name", "rds-proxy-role-meal-planner",
                     "--assume-role-policy-document", TRUST, "--description", "proxy reads the secret")["Role"]
    assert role["Arn"] == "arn:aws:iam::000000000000:role/rds-proxy-role-meal-planner"
    assert role["RoleId"].startswith("AROA") and len(role["RoleId"]) == 21
    assert role["AssumeRolePolicyDocument"] == json.loads(TRUST)  # the CLI decodes it
    got = serve.aws("iam", "get-role", "--role-name", "rds-proxy-role-meal-planner")["Role"]
    assert got["Arn"] == role["Arn"] and got["Description"] == "proxy reads the secret"
    assert got["MaxSessionDuration"] == 3600

    serve.aws("iam", "put-role-policy", "--role-name", "rds-proxy-role-meal-planner",
              "--policy-name", "read-db-secret", "--policy-document", READ_SECRET)
    inline = serve.aws("iam", "get-role-policy", "--role-name", "rds-proxy-role-meal-planner",
                       "--policy-name", "read-db-secret")
    assert inline["PolicyDocument"] == json.loads(READ_SECRET)
    assert serve.aws("iam", "list-role-policies", "--role-name",
                     "rds-proxy-role-meal-planner")["PolicyNames"] == ["read-db-secret"]

    policy = serve.aws("iam", "create-policy", "--policy-name", "deny-admin-secret", "--policy-document",
                       json.dumps({"Statement": [{"Effect": "Deny", "Action": "secretsmanager:*",
                                                  "Resource": "*admin*"}]}))["Policy"]
    assert policy["Arn"] == "arn:aws:iam::000000000000:policy/deny-admin-secret"
    serve.aws("iam", "attach-role-policy", "--role-name", "rds-proxy-role-meal-planner",
              "--policy-arn", policy["Arn"])
    serve.aws("iam", "attach-role-policy", "--role-name", "rds-proxy-role-meal-planner",
              "--policy-arn", "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole")
    attached = serve.aws("iam", "list-attached-role-policies", "--role-name",
                         "rds-proxy-role-meal-planner")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [
        policy["Arn"], "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"]
    assert serve.aws("iam", "get-policy", "--policy-arn", policy["Arn"])["Policy"]["AttachmentCount"] == 1
    assert [r["RoleName"] for r in serve.aws("iam", "list-roles")["Roles"]] == ["rds-proxy-role-meal-planner"]

    # Deleting in the wrong order is refused, as IAM does; in the right order it works.
    conflict = serve.aws("iam", "delete-role", "--role-name", "rds-proxy-role-meal-planner", check=False)
    assert conflict.returncode != 0 and "DeleteConflict" in conflict.stderr
    busy = serve.aws("iam", "delete-policy", "--policy-arn", policy["Arn"], check=False)
    assert busy.returncode != 0 and "DeleteConflict" in busy.stderr
    for arn in (policy["Arn"], "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"):
        serve.aws("iam", "detach-role-policy", "--role-name", "rds-proxy-role-meal-planner", "--policy-arn", arn)
    serve.aws("iam", "delete-role-policy", "--role-name", "rds-proxy-role-meal-planner",
              "--policy-name", "read-db-secret")
    serve.aws("iam", "delete-role", "--role-name", "rds-proxy-role-meal-planner")
    serve.aws("iam", "delete-policy", "--policy-arn", policy["Arn"])
    gone = serve.aws("iam", "get-role", "--role-name", "rds-proxy-role-meal-planner", check=False)
    assert gone.returncode != 0 and "NoSuchEntity" in gone.stderr


def test_iam_errors(serve):
    serve.aws("iam", "create-role", "--role-name", "r1", "--assume-role-policy-document", TRUST)
    dup = serve.aws("iam", "create-role", "--role-name", "r1", "--assume-role-policy-document", TRUST, check=False)
    assert dup.returncode != 0 and "EntityAlreadyExists" in dup.stderr
    bad = serve.aws("iam", "put-role-policy", "--role-name", "r1", "--policy-name", "p",
                    "--policy-document", '{"Statement": [{"Effect": "Perhaps", "Action": "*"}]}', check=False)
    assert bad.returncode != 0 and "MalformedPolicyDocument" in bad.stderr
    missing = serve.aws("iam", "attach-role-policy", "--role-name", "r1", "--policy-arn",
                        "arn:aws:iam::000000000000:policy/nope", check=False)
    assert missing.returncode != 0 and "NoSuchEntity" in missing.stderr
    nobody = serve.aws("iam", "put-role-policy", "--role-name", "nobody", "--policy-name", "p",
                       "--policy-document", READ_SECRET, check=False)
    assert nobody.returncode != 0 and "NoSuchEntity" in nobody.stderr
    # Server-side validation of what the CLI would refuse to send.
    status, text = post_form(serve, "Action=CreateRole&Version=2010-05-08&RoleName=r2")
    assert status == 400 and "<Code>ValidationError</Code>" in text and "AssumeRolePolicyDocument" in text
    status, text = post_form(serve, urllib.parse.urlencode({
        "Action": "CreateRole", "Version": "2010-05-08", "RoleName": "bad name", "AssumeRolePolicyDocument": TRUST}))
    assert status == 400 and "<Code>ValidationError</Code>" in text
    status, text = post_form(serve, urllib.parse.urlencode({
        "Action": "CreateRole", "Version": "2010-05-08", "RoleName": "r3", "AssumeRolePolicyDocument": TRUST,
        "MaxSessionDuration": "12abc"}))
    assert status == 400 and "<Code>ValidationError</Code>" in text and "MaxSessionDuration" in text
    status, text = post_form(serve, "Action=Frobnicate&Version=2010-05-08")
    assert status == 400 and "<Code>InvalidAction</Code>" in text
    # Nothing half-created.
    assert [r["RoleName"] for r in serve.aws("iam", "list-roles")["Roles"]] == ["r1"]
