"""`sluice serve` as Lambda's configuration API (REST-JSON), driven by the aws CLI: the guide's
`get-function-configuration` with VpcConfig resolved from the subnets, updates, and errors."""
import base64
import hashlib
import os
import zipfile

from cloud import rest, serve  # noqa: F401 - the fixture

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
