"""`sluice serve --strict-auth`: SigV4 signatures are verified against configured access keys, for
every protocol (JSON 1.1, Query, EC2 query, REST-JSON paths)."""
import os
import shutil
import subprocess
import tempfile

import pytest

from sluice_harness.cloud import Serve, post_form, rest

GOOD = ("AKIDLOCAL", "local-secret")


@pytest.fixture
def strict():
    home = tempfile.mkdtemp(prefix="sluice-serve-")
    with open(os.path.join(home, "access-keys"), "w") as f:
        f.write("# id secret\nAKIDLOCAL local-secret\nAKIDOTHER other-secret\n")
    s = Serve(home=home, extra=["--strict-auth"])
    yield s
    if s.proc.poll() is None:
        assert s.stop() == 0
    shutil.rmtree(home, ignore_errors=True)


def test_signed_requests_pass_for_every_protocol(strict):
    assert "ARN" in strict.aws("secretsmanager", "create-secret", "--name", "s", "--secret-string", "v", key=GOOD)
    assert strict.aws("iam", "list-roles", key=GOOD)["Roles"] == []
    assert len(strict.aws("ec2", "describe-vpcs", key=GOOD)["Vpcs"]) == 0
    assert strict.aws("lambda", "list-functions", key=GOOD)["Functions"] == []
    # An encoded ARN in a REST path.
    missing = strict.aws("lambda", "get-function-configuration", "--function-name",
                         "arn:aws:lambda:us-east-1:000000000000:function:nope", key=GOOD, check=False)
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr
    assert strict.aws("secretsmanager", "list-secrets", key=("AKIDOTHER", "other-secret"))["SecretList"]


def test_wrong_unknown_and_missing_signatures_are_refused(strict):
    wrong = ("AKIDLOCAL", "not-the-secret")
    for args, code in [(["secretsmanager", "list-secrets"], "InvalidSignatureException"),
                       (["iam", "list-roles"], "SignatureDoesNotMatch"),
                       (["ec2", "describe-vpcs"], "SignatureDoesNotMatch"),
                       (["lambda", "list-functions"], "InvalidSignatureException")]:
        r = strict.aws(*args, key=wrong, check=False)
        assert r.returncode != 0 and code in r.stderr, (args, r.stderr)
    unknown = strict.aws("secretsmanager", "list-secrets", key=("AKIDNOBODY", "x"), check=False)
    assert unknown.returncode != 0 and "UnrecognizedClientException" in unknown.stderr
    unknown = strict.aws("iam", "list-roles", key=("AKIDNOBODY", "x"), check=False)
    assert unknown.returncode != 0 and "InvalidClientTokenId" in unknown.stderr
    status, text = post_form(strict, "Action=ListRoles&Version=2010-05-08")
    assert status == 403 and "<Code>MissingAuthenticationToken</Code>" in text
    status, error_type, _ = rest(strict, "GET", "/2015-03-31/functions")
    assert (status, error_type) == (403, "MissingAuthenticationTokenException")


def test_strict_auth_without_keys_refuses_to_start():
    home = tempfile.mkdtemp(prefix="sluice-serve-")
    try:
        binary = Serve.binary()
        r = subprocess.run([binary, "serve", "--home", home, "--listen", "127.0.0.1:0", "--strict-auth"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and "--strict-auth needs access keys" in r.stderr
    finally:
        shutil.rmtree(home, ignore_errors=True)
