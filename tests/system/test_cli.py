"""`sluice SERVICE OPERATION`: the aws CLI's commands, flags and output, from botocore's models,
through the same HTTP API as everything else."""
import json
import os
import re
import subprocess

from sluice_harness.cloud import Serve, serve  # noqa: F401


def sluice(*args, env_extra=None):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDLOCAL", AWS_SECRET_ACCESS_KEY="local-secret",
               AWS_DEFAULT_REGION="us-east-1")
    env.pop("SLUICE_ENDPOINT", None)
    env.update(env_extra or {})
    return subprocess.run([Serve.binary(), *args], capture_output=True, text=True, env=env, timeout=60)


def operations(service):
    r = sluice(service, "help")
    assert r.returncode == 0, r.stderr
    return [line.strip() for line in r.stdout.splitlines() if line.startswith("  ")]


def required_flags(service, operation):
    """(flag, type) of the operation's required flags, from `sluice SERVICE OPERATION help`."""
    r = sluice(service, operation, "help")
    assert r.returncode == 0, r.stderr
    return re.findall(r"^  (--[a-z0-9-]+) \(([a-z]+)[^)]*\) required$", r.stdout, re.M)


def test_help_lists_the_services_operations_and_flags():
    top = sluice("--help")
    assert top.returncode == 0
    assert "services: ec2 iam lambda logs rds secretsmanager sts" in top.stdout
    assert set(operations("rds")) >= {"create-db-proxy", "describe-db-proxies", "register-db-proxy-targets",
                                      "modify-db-proxy-target-group", "create-db-cluster"}
    assert "authorize-security-group-ingress" in operations("ec2")
    assert required_flags("rds", "create-db-proxy") == [
        ("--db-proxy-name", "string"), ("--engine-family", "string"), ("--role-arn", "string"),
        ("--vpc-subnet-ids", "list")]
    ingress = sluice("ec2", "authorize-security-group-ingress", "help").stdout
    for flag in ("--protocol", "--port", "--cidr", "--source-group", "--ip-permissions"):
        assert "  " + flag + " " in ingress
    assert "[--no-require-tls]" in sluice("rds", "create-db-proxy", "help").stdout


def test_every_operation_the_cli_offers_is_served(serve):  # noqa: F811
    """Each operation, called with made-up required values, reaches a handler: whatever the
    answer (not found, invalid value…), it is never "not implemented"."""
    values = {"string": "x-1", "integer": "1", "long": "1", "list": "x-1", "structure": "{}",
              "boolean": None, "timestamp": "2026-01-01T00:00:00Z", "double": "1"}
    # Lists of structures need one in shorthand.
    special = {"--log-events": "timestamp=1,message=m"}
    checked = 0
    for service in ("ec2", "iam", "lambda", "logs", "rds", "secretsmanager", "sts"):
        for operation in operations(service):
            args = []
            for flag, kind in required_flags(service, operation):
                args += [flag] if values[kind] is None else [flag, special.get(flag, values[kind])]
            if (service, operation) == ("lambda", "invoke"):
                args.append(os.path.join(serve.home, "payload.out"))  # the positional outfile
            r = sluice("--endpoint-url", serve.url, service, operation, *args)
            assert r.returncode in (0, 254), (service, operation, r.stderr)
            assert "(InvalidAction)" not in r.stderr and "(UnknownOperationException)" not in r.stderr, \
                (service, operation, r.stderr)
            checked += 1
    assert checked == 79


def test_command_line_mistakes_exit_252_and_say_what_is_wrong(serve):  # noqa: F811
    r = sluice("--endpoint-url", serve.url, "rds", "create-db-proxy", "--db-proxy-name", "p")
    assert r.returncode == 252
    assert "the following arguments are required: --engine-family, --role-arn, --vpc-subnet-ids" in r.stderr
    r = sluice("--endpoint-url", serve.url, "rds", "describe-db-proxiez")
    assert r.returncode == 252 and "Invalid choice" in r.stderr and "describe-db-proxies" in r.stderr
    r = sluice("--endpoint-url", serve.url, "rds", "describe-db-proxies", "--bogus", "1")
    assert r.returncode == 252 and "Unknown options: --bogus" in r.stderr
    r = sluice("--endpoint-url", serve.url, "rds", "create-db-proxy", "--db-proxy-name", "p", "--engine-family",
               "POSTGRESQL", "--role-arn", "arn:r", "--vpc-subnet-ids", "s", "--auth", "AuthScheme")
    assert r.returncode == 252 and "Error parsing parameter '--auth'" in r.stderr
    r = sluice("--endpoint-url", serve.url, "rds", "describe-db-proxies", "--query", "DBProxies[0]")
    assert r.returncode == 252 and "--query is not supported" in r.stderr
    r = sluice("--endpoint-url", serve.url, "--output", "text", "rds", "describe-db-proxies")
    assert r.returncode == 252 and "only json is supported" in r.stderr
    r = sluice("rds", "describe-db-proxies", env_extra={"SLUICE_ENDPOINT": "http://127.0.0.1:1"})
    assert r.returncode == 255 and 'Could not connect to the endpoint URL: "http://127.0.0.1:1"' in r.stderr


def test_service_errors_are_printed_as_aws_prints_them(serve):  # noqa: F811
    """Duplicates, unknown ids and bad values: the same code, message and exit status as aws."""
    serve.sluice("secretsmanager", "create-secret", "--name", "dup", "--secret-string", "v")
    vpc = serve.sluice("ec2", "create-vpc", "--cidr-block", "10.9.0.0/16")["Vpc"]["VpcId"]
    group = serve.sluice("ec2", "create-security-group", "--group-name", "g", "--description", "d",
                         "--vpc-id", vpc)["GroupId"]
    rule = ("ec2", "authorize-security-group-ingress", "--group-id", group, "--protocol", "tcp", "--port", "5432",
            "--source-group", group)
    assert serve.sluice(*rule)["Return"] is True
    cases = [
        (("secretsmanager", "create-secret", "--name", "dup", "--secret-string", "v"), "ResourceExistsException"),
        (rule, "InvalidPermission.Duplicate"),
        (("rds", "describe-db-proxies", "--db-proxy-name", "nope"), "DBProxyNotFoundFault"),
        (("iam", "get-role", "--role-name", "nope"), "NoSuchEntity"),
        (("lambda", "get-function", "--function-name", "nope"), "ResourceNotFoundException"),
        (("ec2", "create-subnet", "--vpc-id", vpc, "--cidr-block", "10.10.0.0/24"), "InvalidSubnet.Range"),
    ]
    for command, code in cases:
        ours = serve.sluice(*command, check=False)
        theirs = serve.aws(*command, check=False)
        assert ours.returncode == 254, (command, ours.stderr)
        assert f"An error occurred ({code}) when calling the " in ours.stderr, (command, ours.stderr)
        # Messages may name fresh ids; the line's shape is the same as aws's.
        assert ours.stderr.split(":")[0] == theirs.stderr.split(":")[0], (command, ours.stderr, theirs.stderr)


def test_input_from_files_json_and_the_environment(serve, tmp_path):  # noqa: F811
    policy = tmp_path / "trust.json"
    policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "rds.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    env = {"SLUICE_ENDPOINT": serve.url}
    r = sluice("iam", "create-role", "--role-name", "from-file", "--assume-role-policy-document",
               f"file://{policy}", env_extra=env)
    assert r.returncode == 0, r.stderr
    role = json.loads(r.stdout)["Role"]
    # As aws prints it: the policy document decoded into JSON, not the URL-encoded text IAM sends.
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "rds.amazonaws.com"}
    r = sluice("secretsmanager", "create-secret", "--cli-input-json",
               json.dumps({"Name": "from-json", "SecretString": "s-1", "Description": "d"}), env_extra=env)
    assert r.returncode == 0, r.stderr
    described = serve.aws("secretsmanager", "describe-secret", "--secret-id", "from-json")
    assert described["Description"] == "d"
    assert serve.aws("secretsmanager", "get-secret-value", "--secret-id", "from-json")["SecretString"] == "s-1"
    # Lists are followed to their end and printed whole, without the paging tokens, as aws does.
    for i in range(3):
        serve.sluice("secretsmanager", "create-secret", "--name", f"many-{i}", "--secret-string", "v")
    names = ["from-json", "many-0", "many-1", "many-2"]
    for tool in ("sluice", "aws"):
        listed = serve.aws("secretsmanager", "list-secrets", "--page-size", "1", tool=tool)
        assert "NextToken" not in listed and sorted(s["Name"] for s in listed["SecretList"]) == names
        one_page = serve.aws("secretsmanager", "list-secrets", "--max-results", "3", tool=tool)
        assert len(one_page["SecretList"]) == 3 and one_page["NextToken"]
        rest = serve.aws("secretsmanager", "list-secrets", "--max-results", "3", "--next-token",
                         one_page["NextToken"], tool=tool)
        assert len(rest["SecretList"]) == 1 and "NextToken" not in rest
    bad = serve.sluice("secretsmanager", "list-secrets", "--next-token", "bm9wZQ==", check=False)
    assert bad.returncode == 254 and "(InvalidNextTokenException)" in bad.stderr


def test_lambda_invoke_takes_an_outfile_as_aws_does(serve, tmp_path):  # noqa: F811
    """The aws CLI's `lambda invoke` customization: a positional outfile, required, anywhere."""
    out = str(tmp_path / "out.json")
    r = sluice("--endpoint-url", serve.url, "lambda", "invoke", "--function-name", "f")
    assert r.returncode == 252 and "the following arguments are required: outfile" in r.stderr, r.stderr
    r = sluice("--endpoint-url", serve.url, "lambda", "invoke")
    assert r.returncode == 252 and "the following arguments are required: --function-name, outfile" in r.stderr
    r = sluice("--endpoint-url", serve.url, "lambda", "invoke", "--function-name", "f", out, "extra")
    assert r.returncode == 252 and "Unknown options: extra" in r.stderr, r.stderr
    r = sluice("--endpoint-url", serve.url, "--cli-binary-format", "hex", "lambda", "invoke", "--function-name",
               "f", out)
    assert r.returncode == 252 and "--cli-binary-format" in r.stderr, r.stderr
    r = sluice("--endpoint-url", serve.url, "lambda", "invoke", "--function-name", "f", "--cli-binary-format",
               "base64", "--payload", "{not base64}", out)
    assert r.returncode == 252 and "Invalid base64" in r.stderr, r.stderr
    assert "outfile (string" in sluice("lambda", "invoke", "help").stdout
    # A service error leaves no file, as with aws.
    for tool in ("sluice", "aws"):
        r = serve.aws("lambda", "invoke", "--function-name", "nope", out, tool=tool, check=False)
        assert r.returncode != 0 and "(ResourceNotFoundException)" in r.stderr, (tool, r.stderr)
        assert not os.path.exists(out)
