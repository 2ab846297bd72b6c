"""The function host: Lambda's Invoke API and execution environments as processes.

Each test runs `sluice serve`, creates functions whose `bootstrap` is the Python probe in
tests/system/functions/probe (a custom runtime speaking the Runtime API with urllib), and invokes
them over HTTP as the AWS SDKs do.
"""
import base64
import concurrent.futures
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from sluice_harness import harness
from sluice_harness.cloud import Serve

HERE = os.path.dirname(os.path.abspath(__file__))
ROLE = "arn:aws:iam::000000000000:role/fn-role"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def code_folder(name="probe", replace=None):
    """A world-readable copy of tests/system/functions/NAME (functions run as nobody); `replace`
    edits the bootstrap's text, which makes another code version."""
    folder = tempfile.mkdtemp(prefix="sluice-fn-")
    os.chmod(folder, 0o755)
    for entry in os.listdir(os.path.join(HERE, "functions", name)):
        target = os.path.join(folder, entry)
        shutil.copy2(os.path.join(HERE, "functions", name, entry), target)
        if replace:
            with open(target) as f:
                text = f.read()
            with open(target, "w") as f:
                f.write(text.replace(*replace))
        os.chmod(target, 0o755)
    return folder


def start(*extra):
    serve = Serve(extra=extra)
    serve.aws("iam", "create-role", "--role-name", "fn-role", "--assume-role-policy-document", TRUST)
    return serve


@pytest.fixture
def host():
    serve = start("--event-retry-seconds", "0.5")
    yield serve
    stop(serve)


def stop(serve):
    if serve.proc.poll() is None:
        assert serve.stop() == 0
    shutil.rmtree(serve.home, ignore_errors=True)


def create_function(serve, name, code=None, timeout=3, memory=128, variables=None):
    serve.aws("lambda", "create-function", "--function-name", name, "--runtime", "provided.al2023",
              "--handler", "bootstrap", "--role", ROLE, "--timeout", str(timeout), "--memory-size", str(memory),
              "--code", f"S3Bucket=sluice-local,S3Key={code or code_folder()}",
              "--environment", json.dumps({"Variables": variables or {"PROBE_GREETING": "hello"}}))


def invoke(serve, name, payload=None, invocation_type=None, tail=False, timeout=60):
    """POST …/invocations as the SDKs send it: (status, headers, body text)."""
    headers = {"Content-Type": "application/json"}
    if invocation_type:
        headers["X-Amz-Invocation-Type"] = invocation_type
    if tail:
        headers["X-Amz-Log-Type"] = "Tail"
    data = json.dumps(payload if payload is not None else {}).encode()
    request = urllib.request.Request(f"{serve.url}/2015-03-31/functions/{name}/invocations", data=data,
                                     method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def ok(serve, name, payload=None):
    status, headers, body = invoke(serve, name, payload)
    assert status == 200, body
    assert "X-Amz-Function-Error" not in headers, body
    return json.loads(body)


def environments(serve, name):
    with urllib.request.urlopen(f"{serve.url}/sluice/functions/{name}", timeout=10) as r:
        return json.loads(r.read())


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def test_invoke_runs_the_bootstrap_with_lambdas_environment(host):
    create_function(host, "probe")
    before_ms = time.time() * 1000
    result = ok(host, "probe", {"hello": "world"})
    assert result["event"] == {"hello": "world"}
    env = result["env"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "probe"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_REGION"] == "us-east-1"
    assert env["_HANDLER"] == "bootstrap"
    assert env["LAMBDA_TASK_ROOT"] == result["cwd"]
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/probe"
    assert env["AWS_ACCESS_KEY_ID"].startswith("ASIA") and len(env["AWS_ACCESS_KEY_ID"]) == 20
    assert env["AWS_ENDPOINT_URL"] == "http://" + env["AWS_LAMBDA_RUNTIME_API"]
    assert env["PROBE_GREETING"] == "hello"
    assert result["arn"] == "arn:aws:lambda:us-east-1:000000000000:function:probe"
    assert before_ms + 2000 < result["deadline_ms"] < time.time() * 1000 + 3000
    # Functions run unprivileged, as on Lambda.
    assert result["uid"] == pwd.getpwnam("nobody").pw_uid
    # The SDKs' own variables are served: GetFunctionConfiguration through the environment's
    # endpoint reaches the same API.
    status, headers, _ = invoke(host, "probe", {}, invocation_type="DryRun")
    assert status == 204 and headers["X-Amz-Executed-Version"] == "$LATEST"


def test_warm_environments_are_reused_and_frozen_between_invocations(host):
    create_function(host, "probe")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(10)
    first = ok(host, "probe", {"do": "connect", "host": "127.0.0.1", "port": listener.getsockname()[1]})
    held, _ = listener.accept()
    second = ok(host, "probe", {"do": "spin"})
    assert second["pid"] == first["pid"] and second["count"] == 2
    view = environments(host, "probe")
    assert len(view["Environments"]) == 1
    harness.wait_for(lambda: environments(host, "probe")["Environments"][0]["Frozen"], 5, 0.05, "frozen")
    # Frozen: the spinning thread gets no CPU, and the socket it opened stays open and idle.
    cpu = harness.proc_cpu_seconds(first["pid"])
    time.sleep(1.0)
    assert harness.proc_cpu_seconds(first["pid"]) - cpu < 0.05
    held.settimeout(0.5)
    with pytest.raises(socket.timeout):
        held.recv(1)  # no EOF: still connected
    # Thawed for the next invocation, in the same process.
    third = ok(host, "probe", {})
    assert third["pid"] == first["pid"] and third["count"] == 3
    held.close()
    listener.close()


def test_without_cgroups_environments_freeze_with_signals():
    serve = start("--cgroup-root", "/nonexistent")
    try:
        create_function(serve, "plain")
        first = ok(serve, "plain", {"do": "spin"})
        harness.wait_for(lambda: environments(serve, "plain")["Environments"][0]["Frozen"], 5, 0.05, "frozen")
        def state():
            with open(f"/proc/{first['pid']}/stat") as f:
                return f.read().split(")")[-1].split()[0]
        # Stopped by SIGSTOP: kill() returns before the process has stopped, so on a busy
        # machine the state may still read R for a moment.
        harness.wait_for(lambda: state() == "T", 5, 0.01, "stopped by SIGSTOP")
        cpu = harness.proc_cpu_seconds(first["pid"])
        time.sleep(1.0)
        assert harness.proc_cpu_seconds(first["pid"]) - cpu < 0.05
        second = ok(serve, "plain", {})
        assert second["pid"] == first["pid"] and second["count"] == 2
    finally:
        stop(serve)


def test_runtime_api_contract(host):
    create_function(host, "probe")
    # An unknown request ID is refused with 400.
    result = ok(host, "probe", {"do": "bad_id"})
    assert result["status"] == 400 and result["body"]["errorType"] == "InvalidRequestID"
    # A handled error: X-Amz-Function-Error and the runtime's own error document.
    status, headers, body = invoke(host, "probe", {"do": "error"})
    assert status == 200 and headers["X-Amz-Function-Error"] == "Unhandled"
    assert json.loads(body) == {"errorMessage": "failed on purpose", "errorType": "RuntimeError",
                                "stackTrace": []}
    # A response over 6 MB is Lambda's error, and the environment goes on.
    status, headers, body = invoke(host, "probe", {"do": "big"})
    assert headers["X-Amz-Function-Error"] == "Unhandled"
    assert json.loads(body)["errorType"] == "Function.ResponseSizeTooLarge"
    assert ok(host, "probe", {})["count"] >= 3
    # A request over 6 MB never reaches the function.
    status, headers, body = invoke(host, "probe", {"x": "y" * (6 * 1024 * 1024)})
    assert status == 413 and headers["x-amzn-ErrorType"] == "RequestTooLargeException"


def test_init_errors_are_reported_as_lambda_does(host):
    create_function(host, "broken", variables={"PROBE_INIT_ERROR": "1"})
    status, headers, body = invoke(host, "broken", {}, tail=True)
    assert status == 200 and headers["X-Amz-Function-Error"] == "Unhandled"
    assert json.loads(body) == {"errorMessage": "init failed on purpose", "errorType": "Probe.InitFailure"}
    log = base64.b64decode(headers["X-Amz-Log-Result"]).decode()
    assert "INIT_REPORT" in log and "Status: error" in log
    # No bootstrap at all.
    empty = tempfile.mkdtemp(prefix="sluice-fn-")
    os.chmod(empty, 0o755)
    create_function(host, "empty", code=empty)
    status, headers, body = invoke(host, "empty", {})
    assert headers["X-Amz-Function-Error"] == "Unhandled"
    assert json.loads(body)["errorType"] == "Runtime.InvalidEntrypoint"


def test_an_init_that_never_finishes_is_ended(host):
    # Lambda's 10 s init limit, plus the function's timeout for the retry inside the invocation.
    create_function(host, "stuck", timeout=1, variables={"PROBE_INIT_SLEEP": "60"})
    t0 = time.monotonic()
    status, headers, body = invoke(host, "stuck", {})
    assert 10.5 < time.monotonic() - t0 < 20
    assert headers["X-Amz-Function-Error"] == "Unhandled"
    assert json.loads(body)["errorType"] == "Runtime.InitError"
    harness.wait_for(lambda: environments(host, "stuck")["Environments"] == [], 10, 0.1, "the environment ended")


def test_timeout_ends_the_invocation_and_resets_the_environment(host):
    create_function(host, "slow", timeout=1)
    pid = ok(host, "slow", {})["pid"]
    t0 = time.monotonic()
    status, headers, body = invoke(host, "slow", {"do": "sleep", "seconds": 5})
    elapsed = time.monotonic() - t0
    assert headers["X-Amz-Function-Error"] == "Unhandled"
    error = json.loads(body)
    assert error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in error["errorMessage"]
    assert 0.9 < elapsed < 4
    harness.wait_for(lambda: not alive(pid), 5, 0.05, "the timed-out environment gone")
    assert ok(host, "slow", {})["pid"] != pid


@pytest.mark.skipif(not os.path.exists("/sys/fs/cgroup/memory/cgroup.procs") or os.geteuid() != 0,
                    reason="needs the cgroup v1 memory controller and root")
def test_memory_size_is_enforced(host):
    create_function(host, "hungry", memory=128)
    status, headers, body = invoke(host, "hungry", {"do": "oom", "mb": 400}, tail=True)
    assert headers["X-Amz-Function-Error"] == "Unhandled"
    error = json.loads(body)
    assert error["errorType"] == "Runtime.OutOfMemory", body
    assert "Runtime exited with error: signal: killed" in error["errorMessage"]
    report = [line for line in base64.b64decode(headers["X-Amz-Log-Result"]).decode().splitlines()
              if line.startswith("REPORT")][0]
    assert "Memory Size: 128 MB" in report and "Max Memory Used: 128 MB" in report
    # A new environment serves the next invocation.
    assert ok(host, "hungry", {})["count"] == 1


def concurrent_invocations(serve, name, count, payload):
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: invoke(serve, name, payload), range(count)))


def test_concurrency_scales_out_and_throttles_at_the_limits():
    serve = start("--account-concurrency", "4")
    try:
        create_function(serve, "wide")
        results = concurrent_invocations(serve, "wide", 6, {"do": "sleep", "seconds": 1.5})
        throttled = [r for r in results if r[0] == 429]
        done = [r for r in results if r[0] == 200]
        assert len(done) == 4 and len(throttled) == 2, [r[0] for r in results]
        for status, headers, body in throttled:
            assert headers["x-amzn-ErrorType"] == "TooManyRequestsException"
            assert json.loads(body) == {"Type": "User", "message": "Rate Exceeded.",
                                        "Reason": "ConcurrentInvocationLimitExceeded"}
        assert len({json.loads(body)["pid"] for _, _, body in done}) == 4  # one environment each
        assert environments(serve, "wide")["PeakConcurrency"] == 4
        # Reserved concurrency caps one function.
        serve.aws("lambda", "put-function-concurrency", "--function-name", "wide",
                  "--reserved-concurrent-executions", "1")
        results = concurrent_invocations(serve, "wide", 3, {"do": "sleep", "seconds": 1})
        assert sorted(r[0] for r in results) == [200, 429, 429]
        assert {json.loads(r[2]).get("Reason") for r in results if r[0] == 429} == {
            "ReservedFunctionConcurrentInvocationLimitExceeded"}
        serve.aws("lambda", "put-function-concurrency", "--function-name", "wide",
                  "--reserved-concurrent-executions", "0")
        assert invoke(serve, "wide", {})[0] == 429
        serve.aws("lambda", "delete-function-concurrency", "--function-name", "wide")
        assert invoke(serve, "wide", {})[0] == 200
    finally:
        stop(serve)


def test_idle_environments_are_reclaimed():
    serve = start("--function-idle-seconds", "1")
    try:
        create_function(serve, "brief")
        pid = ok(serve, "brief", {})["pid"]
        harness.wait_for(lambda: not alive(pid), 10, 0.1, "the idle environment reclaimed")
        assert environments(serve, "brief")["Environments"] == []
        assert ok(serve, "brief", {})["count"] == 1  # a cold start
    finally:
        stop(serve)


def filter_log_events(serve, name, pattern):
    result = serve.aws("logs", "filter-log-events", "--log-group-name", f"/aws/lambda/{name}",
                       "--filter-pattern", pattern)
    return [e["message"] for e in result["events"]]


def test_event_invocations_are_queued_and_retried_twice(host):
    create_function(host, "async")
    status, headers, body = invoke(host, "async", {"do": "error"}, invocation_type="Event")
    assert status == 202 and body == ""
    # The first attempt and two retries (0.5 s, then 1 s later here), then it is dropped.
    harness.wait_for(lambda: len(filter_log_events(host, "async", "START")) == 3, 15, 0.2,
                     "three attempts")
    time.sleep(2)
    assert len(filter_log_events(host, "async", "START")) == 3
    # A successful event runs once.
    invoke(host, "async", {"do": "print", "lines": ["event ran"]}, invocation_type="Event")
    harness.wait_for(lambda: filter_log_events(host, "async", '"event ran"'), 10, 0.2, "the event")
    assert len(filter_log_events(host, "async", "START")) == 4


def test_logs_tail_and_cloudwatch(host):
    create_function(host, "chatty")
    status, headers, body = invoke(host, "chatty", {"do": "print", "lines": ["first line", "second line"]},
                                   tail=True)
    log = base64.b64decode(headers["X-Amz-Log-Result"]).decode().splitlines()
    starts = [i for i, line in enumerate(log) if line.startswith("START RequestId: ")]
    assert starts and log[starts[-1]].endswith("Version: $LATEST")
    rest = log[starts[-1] + 1:]
    assert rest[:2] == ["first line", "second line"]
    assert rest[2].startswith("END RequestId: ")
    report = rest[3]
    for field in ("Duration: ", "Billed Duration: ", "Memory Size: 128 MB", "Max Memory Used: ",
                  "Init Duration: "):
        assert field in report, report
    # The second invocation of the environment reports no init.
    status, headers, body = invoke(host, "chatty", {}, tail=True)
    assert "Init Duration" not in base64.b64decode(headers["X-Amz-Log-Result"]).decode()
    streams = host.aws("logs", "describe-log-streams", "--log-group-name", "/aws/lambda/chatty")["logStreams"]
    assert len(streams) == 1
    assert streams[0]["logStreamName"].split("]")[0].endswith("[$LATEST")
    assert len(filter_log_events(host, "chatty", '"second line"')) == 1
    # `aws logs tail` (CLI v2) reads the same.
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDLOCAL", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    tail = subprocess.run(["/usr/bin/aws", "--endpoint-url", host.url, "logs", "tail", "/aws/lambda/chatty",
                           "--since", "1h"], capture_output=True, text=True, env=env, timeout=60)
    assert tail.returncode == 0, tail.stderr
    assert "second line" in tail.stdout and "REPORT RequestId" in tail.stdout


def test_new_code_and_configuration_get_new_environments(host):
    create_function(host, "changing")
    old = ok(host, "changing", {})
    assert old["env"]["PROBE_GREETING"] == "hello"
    host.aws("lambda", "update-function-configuration", "--function-name", "changing",
             "--environment", json.dumps({"Variables": {"PROBE_GREETING": "bonjour"}}))
    new = ok(host, "changing", {})
    assert new["env"]["PROBE_GREETING"] == "bonjour" and new["pid"] != old["pid"]
    harness.wait_for(lambda: not alive(old["pid"]), 10, 0.1, "the old environment retired")
    code = code_folder(replace=('"count": count,', '"count": count, "version": 2,'))
    host.aws("lambda", "update-function-code", "--function-name", "changing", "--s3-bucket", "sluice-local",
             "--s3-key", code)
    newest = ok(host, "changing", {})
    assert newest["version"] == 2 and newest["pid"] != new["pid"]


def test_execution_role_credentials_are_checked_against_the_role(host):
    own = host.aws("secretsmanager", "create-secret", "--name", "fn-secret", "--secret-string", "s3cr3t-value")
    other = host.aws("secretsmanager", "create-secret", "--name", "other-secret", "--secret-string", "nope")
    host.aws("iam", "put-role-policy", "--role-name", "fn-role", "--policy-name", "read-own",
             "--policy-document", json.dumps({"Version": "2012-10-17", "Statement": [
                 {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": own["ARN"]}]}))
    create_function(host, "reader")
    assert ok(host, "reader", {"do": "secret", "id": own["ARN"]}) == {"value": "s3cr3t-value"}
    denied = ok(host, "reader", {"do": "secret", "id": other["ARN"]})
    assert denied["error"] == "AccessDeniedException"
    assert denied["message"].startswith(
        "User: arn:aws:sts::000000000000:assumed-role/fn-role/reader is not authorized to perform: "
        "secretsmanager:GetSecretValue on resource: " + other["ARN"])
    assert ok(host, "reader", {"do": "whoami"}) == "arn:aws:sts::000000000000:assumed-role/fn-role/reader"


def test_cli_invoke_matches_the_aws_cli(host, tmp_path):
    create_function(host, "cli")
    outputs = {}
    for tool in ("aws", "sluice"):
        out = tmp_path / f"{tool}.json"
        r = host.aws("lambda", "invoke", "--function-name", "cli", "--payload", '{"via": "cli"}', str(out),
                     check=False, tool=tool)
        assert r.returncode == 0, r.stderr
        outputs[tool] = r.stdout
        assert json.loads(out.read_text())["event"] == {"via": "cli"}
    assert outputs["aws"] == outputs["sluice"]
    assert json.loads(outputs["aws"]) == {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
    # CLI v2 reads --payload as base64 unless told otherwise.
    out = tmp_path / "v2.json"
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDLOCAL", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    r = subprocess.run(["/usr/bin/aws", "--endpoint-url", host.url, "lambda", "invoke", "--function-name", "cli",
                        "--cli-binary-format", "raw-in-base64-out", "--payload", '{"via": "v2"}', str(out)],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["event"] == {"via": "v2"}
    # A function error: the CLI prints FunctionError and exits 0, as aws does.
    for tool in ("aws", "sluice"):
        r = host.aws("lambda", "invoke", "--function-name", "cli", "--payload", '{"do": "error"}',
                     str(tmp_path / "e.json"), check=False, tool=tool)
        assert r.returncode == 0 and json.loads(r.stdout)["FunctionError"] == "Unhandled"


def test_a_curl_shell_bootstrap_runs_too(host):
    create_function(host, "shell", code=code_folder("../../../examples/shell-function"))
    status, headers, body = invoke(host, "shell", {"x": 1})
    assert status == 200 and "X-Amz-Function-Error" not in headers, body
    assert json.loads(body) == {"echo": {"x": 1}}
    status, headers, body = invoke(host, "shell", {"fail": True})
    assert headers.get("X-Amz-Function-Error") == "Unhandled"


def test_unknown_function_and_bad_payload(host):
    status, headers, body = invoke(host, "missing", {})
    assert status == 404 and headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    create_function(host, "probe")
    request = urllib.request.Request(f"{host.url}/2015-03-31/functions/probe/invocations", data=b"{not json",
                                     method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(request, timeout=30)
    assert e.value.code == 400 and e.value.headers["x-amzn-ErrorType"] == "InvalidRequestContentException"
