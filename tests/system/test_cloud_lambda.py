"""`sluice serve` as Lambda's control API (REST-JSON), driven by the aws CLI: the guide's
`get-function-configuration` with VpcConfig resolved from the subnets, updates of configuration and
code, reserved concurrency and the account's settings, and errors."""
import base64
import hashlib
import json
import os
import shutil
import zipfile

from sluice_harness.cloud import Serve, rest, serve  # noqa: F401 - the fixture

ROLE = "arn:aws:iam::000000000000:role/meal-planner-lambda-role"


def make_zip(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\necho hello\n")
    return path


def network(serve):
    vpc = serve.aws("ec2", "create-vpc", "--cidr-block", "10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [serve.aws("ec2", "create-subnet", "--vpc-id", vpc, "--cidr-block", f"10.0.{i}.0/24")["Subnet"]["SubnetId"]
               for i in (1, 2)]
    sg = serve.aws("ec2", "create-security-group", "--group-name", "app", "--description", "app",
                   "--vpc-id", vpc)["GroupId"]
    return vpc, subnets, sg


def test_function_configuration_as_the_guide_reads_it(serve, tmp_path):
    vpc, subnets, sg = network(serve)
    package = make_zip(str(tmp_path / "function.zip"))
    created = serve.aws("lambda", "create-function", "--function-name", "meal-planner-test-app",
                        "--runtime", "provided.al2023", "--handler", "bootstrap", "--role", ROLE,
                        "--zip-file", f"fileb://{package}", "--timeout", "15",
                        "--vpc-config", f"SubnetIds={','.join(subnets)},SecurityGroupIds={sg}",
                        "--environment", "Variables={DB_HOST=proxy.local,DB_NAME=meals}")
    assert created["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:meal-planner-test-app"
    digest = base64.b64encode(hashlib.sha256(open(package, "rb").read()).digest()).decode()
    assert created["CodeSha256"] == digest and created["CodeSize"] == os.path.getsize(package)

    config = serve.aws("lambda", "get-function-configuration", "--function-name", "meal-planner-test-app",
                       "--region", "us-east-1")
    assert config["VpcConfig"] == {"SubnetIds": subnets, "SecurityGroupIds": [sg], "VpcId": vpc,
                                   "Ipv6AllowedForDualStack": False}
    assert config["Environment"] == {"Variables": {"DB_HOST": "proxy.local", "DB_NAME": "meals"}}
    for field, value in [("Runtime", "provided.al2023"), ("Handler", "bootstrap"), ("Role", ROLE),
                         ("Timeout", 15), ("MemorySize", 128), ("Version", "$LATEST"), ("State", "Active"),
                         ("LastUpdateStatus", "Successful"), ("PackageType", "Zip"),
                         ("Architectures", ["x86_64"]), ("EphemeralStorage", {"Size": 512}),
                         ("TracingConfig", {"Mode": "PassThrough"})]:
        assert config[field] == value, field
    assert config["LastModified"].endswith("+0000") and config["RevisionId"]

    updated = serve.aws("lambda", "update-function-configuration", "--function-name", "meal-planner-test-app",
                        "--timeout", "30", "--memory-size", "256",
                        "--environment", "Variables={DB_HOST=other.local}")
    assert (updated["Timeout"], updated["MemorySize"]) == (30, 256)
    assert updated["Environment"]["Variables"] == {"DB_HOST": "other.local"}
    assert updated["RevisionId"] != config["RevisionId"]
    got = serve.aws("lambda", "get-function", "--function-name", "meal-planner-test-app")
    assert got["Configuration"]["Timeout"] == 30
    names = [f["FunctionName"] for f in serve.aws("lambda", "list-functions")["Functions"]]
    assert names == ["meal-planner-test-app"]
    serve.aws("lambda", "delete-function", "--function-name", "meal-planner-test-app")
    gone = serve.aws("lambda", "get-function-configuration", "--function-name", "meal-planner-test-app", check=False)
    assert gone.returncode != 0 and "ResourceNotFoundException" in gone.stderr


def test_lambda_errors(serve, tmp_path):
    vpc, subnets, sg = network(serve)
    package = make_zip(str(tmp_path / "f.zip"))
    base = ["lambda", "create-function", "--runtime", "provided.al2023", "--handler", "bootstrap",
            "--role", ROLE, "--zip-file", f"fileb://{package}"]
    serve.aws(*base, "--function-name", "f1")
    dup = serve.aws(*base, "--function-name", "f1", check=False)
    assert dup.returncode != 0 and "ResourceConflictException" in dup.stderr
    bad_subnet = serve.aws(*base, "--function-name", "f2", "--vpc-config",
                           f"SubnetIds=subnet-00000000000000000,SecurityGroupIds={sg}", check=False)
    assert bad_subnet.returncode != 0 and "InvalidParameterValueException" in bad_subnet.stderr
    bad_role = serve.aws(*base[:-4], "--role", "not-a-role", "--zip-file", f"fileb://{package}",
                         "--function-name", "f3", check=False)
    assert bad_role.returncode != 0 and "InvalidParameterValueException" in bad_role.stderr
    # What the CLI would refuse to send, straight to the API.
    function = {"FunctionName": "f4", "Runtime": "provided.al2023", "Handler": "bootstrap", "Role": ROLE,
                "Code": {"ZipFile": base64.b64encode(b"plain text").decode()}}
    status, error_type, body = rest(serve, "POST", "/2015-03-31/functions", function)
    assert (status, error_type) == (400, "InvalidParameterValueException") and "unzip" in body["message"]
    status, error_type, body = rest(serve, "POST", "/2015-03-31/functions", dict(function, Timeout=901))
    assert (status, error_type) == (400, "InvalidParameterValueException") and "Timeout" in body["message"]
    status, error_type, _ = rest(serve, "GET", "/2015-03-31/functions/bad%zzname/configuration")
    assert (status, error_type) == (400, "InvalidParameterValueException")
    status, error_type, _ = rest(serve, "GET", "/2015-03-31/functions/nope/configuration")
    assert (status, error_type) == (404, "ResourceNotFoundException")
    missing = serve.aws("lambda", "get-function", "--function-name", "nope", check=False)
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr
    # Nothing half-created.
    assert [f["FunctionName"] for f in serve.aws("lambda", "list-functions")["Functions"]] == ["f1"]


def test_code_from_a_local_path(serve, tmp_path):
    """No S3 here: S3Bucket=sluice-local runs the code where it lies (a folder or a zip)."""
    folder = tmp_path / "function"
    folder.mkdir()
    (folder / "bootstrap").write_text("#!/bin/sh\necho hello\n")
    (folder / "lib.txt").write_text("data")
    created = serve.aws("lambda", "create-function", "--function-name", "from-folder", "--runtime",
                        "provided.al2023", "--handler", "bootstrap", "--role", ROLE, "--code",
                        f"S3Bucket=sluice-local,S3Key={folder}")
    assert created["CodeSize"] == len("#!/bin/sh\necho hello\n") + len("data")
    material = b"bootstrap\0#!/bin/sh\necho hello\n" + b"lib.txt\0data"
    assert created["CodeSha256"] == base64.b64encode(hashlib.sha256(material).digest()).decode()
    package = make_zip(str(tmp_path / "function.zip"))
    zipped = serve.aws("lambda", "create-function", "--function-name", "from-zip", "--runtime",
                       "provided.al2023", "--handler", "bootstrap", "--role", ROLE, "--code",
                       f"S3Bucket=sluice-local,S3Key={package}")
    with open(package, "rb") as f:
        assert zipped["CodeSha256"] == base64.b64encode(hashlib.sha256(f.read()).digest()).decode()
    # Deleting the function leaves the user's code alone.
    serve.aws("lambda", "delete-function", "--function-name", "from-folder")
    serve.aws("lambda", "delete-function", "--function-name", "from-zip")
    assert (folder / "bootstrap").exists() and os.path.exists(package)
    for code, wanted in ((f"S3Bucket=my-bucket,S3Key={package}", "sluice has no S3"),
                         ("S3Bucket=sluice-local,S3Key=relative/path", "absolute path"),
                         (f"S3Bucket=sluice-local,S3Key={tmp_path}/missing", "absolute path")):
        r = serve.aws("lambda", "create-function", "--function-name", "bad", "--runtime", "provided.al2023",
                      "--handler", "bootstrap", "--role", ROLE, "--code", code, check=False)
        assert r.returncode != 0 and "InvalidParameterValueException" in r.stderr and wanted in r.stderr, r.stderr
    assert serve.aws("lambda", "list-functions")["Functions"] == []


def test_update_function_code(serve, tmp_path):
    """A new package: new CodeSha256, CodeSize and RevisionId; the old upload is replaced."""
    first = make_zip(str(tmp_path / "first.zip"))
    created = serve.aws("lambda", "create-function", "--function-name", "f", "--runtime", "provided.al2023",
                        "--handler", "bootstrap", "--role", ROLE, "--zip-file", f"fileb://{first}")
    second = str(tmp_path / "second.zip")
    with zipfile.ZipFile(second, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\necho changed\n")
    for tool in ("aws", "sluice"):
        updated = serve.aws("lambda", "update-function-code", "--function-name", "f", "--zip-file",
                            f"fileb://{second}", tool=tool)
        with open(second, "rb") as f:
            assert updated["CodeSha256"] == base64.b64encode(hashlib.sha256(f.read()).digest()).decode()
        assert updated["CodeSize"] == os.path.getsize(second)
        assert updated["RevisionId"] != created["RevisionId"] and updated["LastModified"]
        created = updated
    packages = os.listdir(os.path.join(serve.home, "functions"))
    assert len(packages) == 1, packages  # the old upload is gone
    stale = serve.aws("lambda", "update-function-code", "--function-name", "f", "--zip-file", f"fileb://{first}",
                      "--revision-id", "not-the-current-one", check=False)
    assert stale.returncode != 0 and "(PreconditionFailedException)" in stale.stderr
    for args, wanted in (((), "Please provide a source for function code"),
                         (("--s3-bucket", "bucket", "--s3-key", "k"), "sluice has no S3")):
        r = serve.aws("lambda", "update-function-code", "--function-name", "f", *args, check=False)
        assert r.returncode != 0 and "(InvalidParameterValueException)" in r.stderr and wanted in r.stderr
    missing = serve.aws("lambda", "update-function-code", "--function-name", "nope", "--zip-file",
                        f"fileb://{first}", check=False)
    assert missing.returncode != 0 and "(ResourceNotFoundException)" in missing.stderr
    assert serve.aws("lambda", "get-function", "--function-name", "f")["Configuration"]["CodeSha256"] == \
        created["CodeSha256"]


def test_reserved_concurrency_and_account_settings(tmp_path):
    """Reservations come out of the account's limit (--account-concurrency), which keeps a minimum
    unreserved: AWS's 100, or a tenth of a smaller limit. sluice prints what aws prints."""
    serve_ = Serve(extra=("--account-concurrency", "200"))
    try:
        package = make_zip(str(tmp_path / "f.zip"))
        for name in ("f", "g"):
            serve_.aws("lambda", "create-function", "--function-name", name, "--runtime", "provided.al2023",
                       "--handler", "bootstrap", "--role", ROLE, "--zip-file", f"fileb://{package}")

        def same(*command):
            ours, theirs = serve_.sluice(*command, check=False), serve_.aws(*command, check=False)
            assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), (command, ours, theirs)
            return json.loads(ours.stdout) if ours.stdout.strip() else None

        assert same("lambda", "get-function-concurrency", "--function-name", "f") is None
        assert same("lambda", "put-function-concurrency", "--function-name", "f",
                    "--reserved-concurrent-executions", "150") == {"ReservedConcurrentExecutions": 150}
        assert same("lambda", "get-function-concurrency", "--function-name", "f") == \
            {"ReservedConcurrentExecutions": 150}
        assert serve_.aws("lambda", "get-function", "--function-name", "f")["Concurrency"] == \
            {"ReservedConcurrentExecutions": 150}
        assert "ReservedConcurrentExecutions" not in serve_.aws("lambda", "get-function-configuration",
                                                                "--function-name", "f")
        settings = same("lambda", "get-account-settings")
        assert settings["AccountLimit"]["ConcurrentExecutions"] == 200
        assert settings["AccountLimit"]["UnreservedConcurrentExecutions"] == 50
        assert settings["AccountUsage"] == {"TotalCodeSize": 2 * os.path.getsize(package), "FunctionCount": 2}

        # 200 - 150 - 31 < 20 (a tenth of 200).
        refused = serve_.aws("lambda", "put-function-concurrency", "--function-name", "g",
                             "--reserved-concurrent-executions", "31", check=False)
        assert refused.returncode != 0
        assert refused.stderr.strip().endswith(
            "Specified ReservedConcurrentExecutions for function decreases account's "
            "UnreservedConcurrentExecution below its minimum value of [20]."), refused.stderr
        serve_.aws("lambda", "put-function-concurrency", "--function-name", "g",
                   "--reserved-concurrent-executions", "30")
        same("lambda", "delete-function-concurrency", "--function-name", "f")
        assert same("lambda", "get-function-concurrency", "--function-name", "f") is None
        assert serve_.aws("lambda", "get-account-settings")["AccountLimit"]["UnreservedConcurrentExecutions"] == 170
        missing = serve_.aws("lambda", "get-function-concurrency", "--function-name", "nope", check=False)
        assert missing.returncode != 0 and "(ResourceNotFoundException)" in missing.stderr
    finally:
        serve_.stop()
        shutil.rmtree(serve_.home, ignore_errors=True)


def test_lambda_paths_sluice_does_not_serve_get_lambdas_errors(serve):
    """Every Lambda path answers in Lambda's JSON error shape, not another service's XML."""
    for command, operation in ((("lambda", "list-event-source-mappings"), "ListEventSourceMappings"),
                               (("lambda", "list-layers"), "ListLayers"),
                               (("lambda", "get-function-url-config", "--function-name", "f"),
                                "GetFunctionUrlConfig")):
        r = serve.aws(*command, check=False)
        assert r.returncode != 0, (command, r.stderr)
        assert f"An error occurred (UnknownOperationException) when calling the {operation} operation: " \
               "sluice does not implement" in r.stderr, r.stderr
    status, error_type, body = rest(serve, "GET", "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A0%3Afunction%3Af")
    assert (status, error_type, body["Type"]) == (404, "UnknownOperationException", "User")
