"""`sluice serve` as Secrets Manager, driven by the real aws CLI and boto3 with --endpoint-url.

Values are sealed with AES-GCM under a key file only the owner may read; the state survives a
restart; errors carry the service's own codes."""
import glob
import json
import os
import re
import shutil
import subprocess

from sluice_harness.cloud import Serve, serve  # noqa: F401 - the fixture

ARN = re.compile(r"^arn:aws:secretsmanager:us-east-1:000000000000:secret:(?P<name>.+)-[A-Za-z0-9]{6}$")


def test_secret_lifecycle_with_the_aws_cli(serve):
    created = serve.aws("secretsmanager", "create-secret", "--name", "meal-planner-db-secret",
                        "--secret-string", '{"username":"postgres","password":"first"}')
    m = ARN.match(created["ARN"])
    assert m and m.group("name") == "meal-planner-db-secret", created
    first_version = created["VersionId"]

    got = serve.aws("secretsmanager", "get-secret-value", "--secret-id", "meal-planner-db-secret")
    assert json.loads(got["SecretString"]) == {"username": "postgres", "password": "first"}
    assert got["VersionStages"] == ["AWSCURRENT"] and got["ARN"] == created["ARN"]
    # By ARN too.
    assert serve.aws("secretsmanager", "get-secret-value", "--secret-id", created["ARN"])["Name"] == \
        "meal-planner-db-secret"

    put = serve.aws("secretsmanager", "put-secret-value", "--secret-id", "meal-planner-db-secret",
                    "--secret-string", '{"username":"postgres","password":"second"}')
    assert put["VersionId"] != first_version
    assert "second" in serve.aws("secretsmanager", "get-secret-value", "--secret-id",
                                 "meal-planner-db-secret")["SecretString"]
    previous = serve.aws("secretsmanager", "get-secret-value", "--secret-id", "meal-planner-db-secret",
                         "--version-stage", "AWSPREVIOUS")
    assert "first" in previous["SecretString"] and previous["VersionId"] == first_version

    described = serve.aws("secretsmanager", "describe-secret", "--secret-id", "meal-planner-db-secret")
    assert described["VersionIdsToStages"] == {first_version: ["AWSPREVIOUS"], put["VersionId"]: ["AWSCURRENT"]}
    assert "SecretString" not in described
    listed = serve.aws("secretsmanager", "list-secrets")["SecretList"]
    assert [s["Name"] for s in listed] == ["meal-planner-db-secret"]

    dup = serve.aws("secretsmanager", "create-secret", "--name", "meal-planner-db-secret",
                    "--secret-string", "x", check=False)
    assert dup.returncode != 0 and "ResourceExistsException" in dup.stderr
    missing = serve.aws("secretsmanager", "get-secret-value", "--secret-id", "nope", check=False)
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr
    assert "can't find the specified secret" in missing.stderr

    deleted = serve.aws("secretsmanager", "delete-secret", "--secret-id", "meal-planner-db-secret",
                        "--recovery-window-in-days", "7")
    assert deleted["Name"] == "meal-planner-db-secret" and "DeletionDate" in deleted
    gone = serve.aws("secretsmanager", "get-secret-value", "--secret-id", "meal-planner-db-secret", check=False)
    assert gone.returncode != 0 and "InvalidRequestException" in gone.stderr
    assert serve.aws("secretsmanager", "list-secrets")["SecretList"] == []
    serve.aws("secretsmanager", "delete-secret", "--secret-id", "meal-planner-db-secret",
              "--force-delete-without-recovery")
    after = serve.aws("secretsmanager", "describe-secret", "--secret-id", "meal-planner-db-secret", check=False)
    assert after.returncode != 0 and "ResourceNotFoundException" in after.stderr


def test_values_are_sealed_at_rest_and_survive_a_restart(serve):
    marker = "plaintext-marker-7f3a9c"
    serve.aws("secretsmanager", "create-secret", "--name", "sealed", "--secret-string", marker)
    assert os.stat(os.path.join(serve.home, "secrets.key")).st_mode & 0o777 == 0o600
    assert os.stat(os.path.join(serve.home, "state.db")).st_mode & 0o777 == 0o600
    assert serve.stop() == 0
    files = [p for p in glob.glob(os.path.join(serve.home, "**"), recursive=True) if os.path.isfile(p)]
    assert os.path.join(serve.home, "state.db") in files
    for path in files:
        with open(path, "rb") as f:
            assert marker.encode() not in f.read(), f"the secret value is readable in {path}"
    again = Serve(home=serve.home)
    try:
        got = again.aws("secretsmanager", "get-secret-value", "--secret-id", "sealed")
        assert got["SecretString"] == marker
    finally:
        assert again.stop() == 0
    assert "plaintext-marker" not in open(again.log).read()


def test_boto3(serve):
    """The same calls through boto3 (from the python3 first on PATH, or Debian's)."""
    script = f"""
import boto3, json
sm = boto3.client("secretsmanager", endpoint_url="{serve.url}", region_name="us-east-1",
                  aws_access_key_id="AKIDLOCAL", aws_secret_access_key="local-secret")
arn = sm.create_secret(Name="from-boto3", SecretString=json.dumps({{"password": "b3"}}))["ARN"]
value = sm.get_secret_value(SecretId=arn)
print(json.dumps({{"arn": arn, "value": value["SecretString"], "created": str(value["CreatedDate"])}}))
try:
    sm.describe_secret(SecretId="nope")
except sm.exceptions.ResourceNotFoundException as e:
    print(json.dumps({{"error": e.response["Error"]["Code"]}}))
"""
    python = next(p for p in (shutil.which("python3"), "/usr/bin/python3")
                  if p and subprocess.run([p, "-c", "import boto3"], capture_output=True).returncode == 0)
    r = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    first, second = [json.loads(line) for line in r.stdout.strip().splitlines()]
    assert ARN.match(first["arn"]) and json.loads(first["value"]) == {"password": "b3"}
    assert first["created"].startswith("20")  # a real datetime, parsed by botocore
    assert second == {"error": "ResourceNotFoundException"}


def test_bad_requests_get_the_services_errors(serve):
    status, body = serve.post("secretsmanager.CreateSecret", b'{"SecretString": "x"}')
    assert status == 400 and body["__type"] == "InvalidParameterException"
    assert "Name" in body["Message"]
    status, body = serve.post("secretsmanager.CreateSecret", b"{not json")
    assert status == 400 and body["__type"] == "SerializationException"
    status, body = serve.post("secretsmanager.RotateSecret", b'{"SecretId": "x"}')
    assert status == 400 and body["__type"] == "UnknownOperationException"
    status, body = serve.post("secretsmanager.CreateSecret",
                              b'{"Name": "both", "SecretString": "x", "SecretBinary": "eA=="}')
    assert status == 400 and body["__type"] == "InvalidParameterException"
    # Nothing half-created.
    assert serve.aws("secretsmanager", "list-secrets")["SecretList"] == []


def test_rotation_staging_labels_with_the_aws_cli(serve):
    """Secrets Manager's rotation steps as a rotation function takes them: a version staged
    AWSPENDING, then AWSCURRENT moved to it (AWSPREVIOUS follows to the version it left)."""
    sm = ("secretsmanager",)
    first = serve.aws(*sm, "create-secret", "--name", "rotating",
                      "--secret-string", '{"username":"app","password":"one"}')["VersionId"]
    pending = serve.aws(*sm, "put-secret-value", "--secret-id", "rotating", "--secret-string",
                        '{"username":"app","password":"two"}', "--version-stages", "AWSPENDING")
    assert pending["VersionStages"] == ["AWSPENDING"]
    second = pending["VersionId"]
    assert "one" in serve.aws(*sm, "get-secret-value", "--secret-id", "rotating")["SecretString"]
    by_stage = serve.aws(*sm, "get-secret-value", "--secret-id", "rotating", "--version-stage", "AWSPENDING")
    assert "two" in by_stage["SecretString"] and by_stage["VersionId"] == second
    by_id = serve.aws(*sm, "get-secret-value", "--secret-id", "rotating", "--version-id", second)
    assert by_id["VersionStages"] == ["AWSPENDING"]
    mismatch = serve.aws(*sm, "get-secret-value", "--secret-id", "rotating", "--version-id", second,
                         "--version-stage", "AWSCURRENT", check=False)
    assert mismatch.returncode != 0 and "ResourceNotFoundException" in mismatch.stderr

    # AWSCURRENT is on the first version: moving it must name that version.
    refused = serve.aws(*sm, "update-secret-version-stage", "--secret-id", "rotating", "--version-stage",
                        "AWSCURRENT", "--move-to-version-id", second, check=False)
    assert refused.returncode != 0 and "InvalidParameterException" in refused.stderr
    assert "RemoveFromVersionId" in refused.stderr
    moved = serve.aws(*sm, "update-secret-version-stage", "--secret-id", "rotating", "--version-stage",
                      "AWSCURRENT", "--move-to-version-id", second, "--remove-from-version-id", first)
    assert moved["Name"] == "rotating" and ARN.match(moved["ARN"])
    assert "two" in serve.aws(*sm, "get-secret-value", "--secret-id", "rotating")["SecretString"]
    assert "one" in serve.aws(*sm, "get-secret-value", "--secret-id", "rotating", "--version-stage",
                              "AWSPREVIOUS")["SecretString"]
    stages = serve.aws(*sm, "describe-secret", "--secret-id", "rotating")["VersionIdsToStages"]
    assert stages == {first: ["AWSPREVIOUS"], second: ["AWSPENDING", "AWSCURRENT"]}
    # The rotation function's last step: AWSPENDING off the new version.
    serve.aws(*sm, "update-secret-version-stage", "--secret-id", "rotating", "--version-stage", "AWSPENDING",
              "--remove-from-version-id", second)
    listed = serve.aws(*sm, "list-secret-version-ids", "--secret-id", "rotating")["Versions"]
    assert {v["VersionId"]: v["VersionStages"] for v in listed} == {first: ["AWSPREVIOUS"],
                                                                     second: ["AWSCURRENT"]}
    assert all(v["CreatedDate"] for v in listed)
    cannot = serve.aws(*sm, "update-secret-version-stage", "--secret-id", "rotating", "--version-stage",
                       "AWSCURRENT", "--remove-from-version-id", second, check=False)
    assert cannot.returncode != 0 and "InvalidParameterException" in cannot.stderr
    missing = serve.aws(*sm, "update-secret-version-stage", "--secret-id", "rotating", "--version-stage",
                        "AWSPENDING", "--move-to-version-id", "0" * 32, check=False)
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr

    # put-secret-value without stages: the plain way, AWSCURRENT moves and AWSPREVIOUS follows;
    # the version left without a label is deprecated, listed only on request.
    third = serve.aws(*sm, "put-secret-value", "--secret-id", "rotating", "--secret-string",
                      '{"username":"app","password":"three"}')
    assert third["VersionStages"] == ["AWSCURRENT"]
    listed = serve.aws(*sm, "list-secret-version-ids", "--secret-id", "rotating")["Versions"]
    assert {v["VersionId"]: v["VersionStages"] for v in listed} == {second: ["AWSPREVIOUS"],
                                                                     third["VersionId"]: ["AWSCURRENT"]}
    everything = serve.aws(*sm, "list-secret-version-ids", "--secret-id", "rotating", "--include-deprecated")
    assert {v["VersionId"] for v in everything["Versions"]} == {first, second, third["VersionId"]}
    assert "one" in serve.aws(*sm, "get-secret-value", "--secret-id", "rotating", "--version-id",
                              first)["SecretString"]
