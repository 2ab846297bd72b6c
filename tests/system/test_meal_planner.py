"""The guide's story end to end: `meal-planner-test-app` (C++, libpq) runs as Lambda runs it,
inside the VPC, and reaches Aurora through meal-planner-proxy by its endpoint name with
sslmode=verify-full, using credentials its execution role reads from Secrets Manager.

One stack for the module: `sluice apply examples/meal-planner/stack.toml`, the guide's three
commands verbatim, the cluster registered as the proxy's target with a cap of 20 server
connections."""
import json
import os
import threading
import time

import psycopg
import pytest

from sluice_harness import guide, harness
from sluice_harness.cloud import Serve, invoke_burst, register_target
from test_functions import environments, invoke

FUNCTION = "meal-planner-test-app"
CLUSTER_HOST = "meal-planner-db.cluster-cczg0cscuj55.us-east-1.rds.sluice.internal"
GROUP = "sg-0fd605efde80bd711"
WEEK = "2026-11-30"
SERVER_CAP = 20  # 11 % of the 1-ACU cluster's max_connections (189)

pytestmark = pytest.mark.skipif(
    not os.path.exists(os.path.join(os.path.dirname(guide.STACK), "../../build/functions/meal-planner-test-app.zip")),
    reason="the function package is built by `make build`")


@pytest.fixture(scope="module")
def stack():
    serve = Serve(extra=("--account-id", "512662829295"))
    try:
        guide.apply(serve)
        for command in guide.guide_commands():
            guide.run_verbatim(serve, command)
        register_target(serve, "meal-planner-proxy", "meal-planner-db", 11)  # 11 % of 189: 20
        yield serve
    finally:
        assert serve.stop() == 0


def call(serve, event):
    """One invocation: (result or error document, whether it was a function error)."""
    status, headers, body = invoke(serve, FUNCTION, event, timeout=120)
    assert status == 200, body
    return json.loads(body), headers.get("X-Amz-Function-Error") == "Unhandled"


def ok(serve, event):
    result, failed = call(serve, event)
    assert not failed, result
    return result


def database(serve):
    """A connection straight to the cluster (the host's exception), as the master user."""
    secret = json.loads(serve.aws("secretsmanager", "get-secret-value", "--secret-id", guide.SECRET_ARN)["SecretString"])
    return psycopg.connect(host=CLUSTER_HOST, port=5432, dbname="mealplanner", user=secret["username"],
                           password=secret["password"], sslmode="require", autocommit=True, connect_timeout=15)


def test_every_event_through_the_proxy(stack):
    assert ok(stack, {"action": "migrate"})
    assert ok(stack, {"action": "migrate"})  # idempotent
    health = ok(stack, {"action": "health"})
    assert health["tls"] is True and health["server_version"].startswith("15")
    dal = ok(stack, {"action": "add_recipe", "recipe": {"name": "Dal", "servings": 4, "ingredients": [
        {"name": "lentils", "quantity": 300, "unit": "g"}, {"name": "onion", "quantity": 1, "unit": "pc"}]}})
    soup = ok(stack, {"action": "add_recipe", "recipe": {"name": "Soup", "servings": 2, "ingredients": [
        {"name": "lentils", "quantity": 100, "unit": "g"}, {"name": "stock", "quantity": 0.5, "unit": "l"}]}})
    with database(stack) as conn:
        names = [r[0] for r in conn.execute("select name from recipes where id in (%s, %s) order by id",
                                            (dal["recipe_id"], soup["recipe_id"]))]
        assert names == ["Dal", "Soup"]
        # Only these two recipes from here on: the plan cycles through every recipe.
        conn.execute("delete from meal_plans")
        conn.execute("delete from ingredients where recipe_id not in (%s, %s)", (dal["recipe_id"], soup["recipe_id"]))
        conn.execute("delete from recipes where id not in (%s, %s)", (dal["recipe_id"], soup["recipe_id"]))
    plan = ok(stack, {"action": "plan_week", "week_start": WEEK})
    assert [d["date"] for d in plan["days"]] == [f"2026-{m}" for m in (
        "11-30", "12-01", "12-02", "12-03", "12-04", "12-05", "12-06")]
    planned = [d["recipe_id"] for d in plan["days"]]
    assert set(planned) == {dal["recipe_id"], soup["recipe_id"]}
    dals, soups = planned.count(dal["recipe_id"]), planned.count(soup["recipe_id"])
    items = {(i["name"], i["unit"]): i["quantity"] for i in ok(stack, {"action": "shopping_list", "week_start": WEEK})["items"]}
    assert items == {("lentils", "g"): 300 * dals + 100 * soups, ("onion", "pc"): dals, ("stock", "l"): 0.5 * soups}
    # Warm invocations reuse the environment and its connection.
    view = environments(stack, FUNCTION)
    assert view["Environments"] and view["PeakConcurrency"] == 1


def test_bad_input_is_a_function_error_and_writes_nothing(stack):
    ok(stack, {"action": "migrate"})
    with database(stack) as conn:
        before = conn.execute("select count(*) from recipes").fetchone()[0]
    for event, error_type in [
            ({"action": "cook"}, "UnknownAction"),
            ({"no": "action"}, "UnknownAction"),
            ({"action": "add_recipe", "recipe": {"name": "", "servings": 1, "ingredients": []}}, "InvalidRecipe"),
            ({"action": "add_recipe", "recipe": {"name": "X", "servings": 2, "ingredients": [
                {"name": "salt", "quantity": -1, "unit": "g"}]}}, "InvalidRecipe"),
            ({"action": "plan_week", "week_start": "2026-02-30"}, "InvalidDate"),
            ({"action": "shopping_list", "week_start": "soon"}, "InvalidDate"),
            ([1, 2], "InvalidEvent")]:
        result, failed = call(stack, event)
        assert failed and result["errorType"] == error_type, (event, result)
    with database(stack) as conn:
        assert conn.execute("select count(*) from recipes").fetchone()[0] == before


def new_environments(serve):
    """Retires the warm environments (a configuration change), so the next invocation connects anew."""
    config = serve.aws("lambda", "get-function-configuration", "--function-name", FUNCTION)
    variables = config["Environment"]["Variables"]
    variables["GENERATION"] = str(int(variables.get("GENERATION", "0")) + 1)
    serve.aws("lambda", "update-function-configuration", "--function-name", FUNCTION,
              "--environment", json.dumps({"Variables": variables}))


def test_security_groups_apply_to_the_function(stack):
    ok(stack, {"action": "health"})
    # Without the guide's self-referencing rule the proxy does not admit the function.
    stack.aws("ec2", "revoke-security-group-ingress", "--group-id", GROUP, "--protocol", "tcp", "--port", "5432",
              "--source-group", GROUP)
    try:
        new_environments(stack)
        result, failed = call(stack, {"action": "health"})
        assert failed, result
    finally:
        stack.aws("ec2", "authorize-security-group-ingress", "--group-id", GROUP, "--protocol", "tcp",
                  "--port", "5432", "--source-group", GROUP)
    new_environments(stack)
    assert ok(stack, {"action": "health"})["tls"] is True
    # Nor does it when the function's own group may not send to it.
    stack.aws("ec2", "revoke-security-group-egress", "--group-id", GROUP, "--ip-permissions",
              json.dumps([{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]))
    try:
        new_environments(stack)
        result, failed = call(stack, {"action": "health"})
        assert failed, result
    finally:
        stack.aws("ec2", "authorize-security-group-egress", "--group-id", GROUP, "--ip-permissions",
                  json.dumps([{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]))
    new_environments(stack)
    assert ok(stack, {"action": "health"})["tls"] is True


def test_a_burst_of_500_invocations_shares_20_server_connections(stack):
    ok(stack, {"action": "migrate"})
    with database(stack) as conn:
        before = conn.execute("select count(*) from recipes").fetchone()[0]
    peak = [0]
    sampling = threading.Event()
    conn = database(stack)

    def sample():
        with conn:
            while not sampling.is_set():
                count = conn.execute("select count(*) from pg_stat_activity where backend_type = 'client backend' "
                                     "and pid <> pg_backend_pid()").fetchone()[0]
                peak[0] = max(peak[0], count)
                time.sleep(0.05)
    sampler = threading.Thread(target=sample)
    sampler.start()
    t0 = time.monotonic()
    try:
        # A second of other work before each transaction: the invocations overlap, one environment each.
        summary = invoke_burst(stack, FUNCTION, 500, {"action": "add_recipe", "work_ms": 1000, "recipe": {
            "name": "burst-{n}", "servings": 1, "ingredients": [{"name": "rice", "quantity": 1, "unit": "g"}]}})
    finally:
        sampling.set()
        sampler.join()
    elapsed = time.monotonic() - t0
    assert summary["ok"] == 500, summary
    print(f"500 invocations in {elapsed:.1f} s, peak server connections {peak[0]}, "
          f"peak concurrency {environments(stack, FUNCTION)['PeakConcurrency']}")
    assert 1 <= peak[0] <= SERVER_CAP
    # Many more clients than server connections (about 300–450 environments here, fewer under ASan).
    assert environments(stack, FUNCTION)["PeakConcurrency"] > 5 * SERVER_CAP
    with database(stack) as conn:
        assert conn.execute("select count(*) from recipes").fetchone()[0] == before + 500
        assert conn.execute("select count(*) from recipes where name like 'burst-%%'").fetchone()[0] == 500


def test_init_errors_name_their_cause(stack):
    """The function's init reads its configuration and its secret; what fails is reported as
    Lambda reports init errors, through the real host and the real role evaluation."""
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
        "Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    stack.aws("iam", "create-role", "--role-name", "no-secret-role", "--assume-role-policy-document", trust)
    config = stack.aws("lambda", "get-function-configuration", "--function-name", FUNCTION)
    code = os.path.join(os.path.dirname(guide.STACK), "../../build/functions/meal-planner-test-app.zip")
    cases = [("meal-planner-no-host", config["Role"], {"DB_NAME": "mealplanner", "DB_SECRET_ARN": guide.SECRET_ARN},
              "Runtime.ConfigError", "DB_HOST"),
             ("meal-planner-no-secret", "arn:aws:iam::512662829295:role/no-secret-role",
              config["Environment"]["Variables"], "SecretsManager.AccessDeniedException", "not authorized")]
    for name, role, variables, error_type, words in cases:
        stack.aws("lambda", "create-function", "--function-name", name, "--runtime", "provided.al2023",
                  "--handler", "bootstrap", "--role", role, "--code", f"S3Bucket=sluice-local,S3Key={os.path.abspath(code)}",
                  "--vpc-config", "SubnetIds=subnet-0aea07bbb011a0bab,SecurityGroupIds=sg-0fd605efde80bd711",
                  "--environment", json.dumps({"Variables": variables}))

        def ready():
            status, _, body = invoke(stack, name, {"action": "health"})
            return (status, body) if status != 502 else None  # its Hyperplane interface comes first
        status, body = harness.wait_for(ready, 20, 0.3, f"{name} ready")
        result = json.loads(body)
        assert status == 200 and result["errorType"] == error_type and words in result["errorMessage"], result
        assert "meal-planner-local-dev-password" not in body


def test_straight_to_the_cluster_functions_exhaust_its_connections(stack):
    """Last in this module: it fills the cluster with the connections of frozen environments.
    Inside the VPC the cluster's name resolves to its own interface there, admitted by its
    security group; each environment holds its own server connection, so a burst larger than
    max_connections (189) fails, which is what the proxy prevents."""
    config = stack.aws("lambda", "get-function-configuration", "--function-name", FUNCTION)
    variables = dict(config["Environment"]["Variables"], DB_HOST=CLUSTER_HOST)
    stack.aws("lambda", "update-function-configuration", "--function-name", FUNCTION,
              "--environment", json.dumps({"Variables": variables}))
    health = ok(stack, {"action": "health"})
    assert health["tls"] is True
    # Ten seconds of work each: no environment is free for another invocation before the burst
    # has started more than the cluster can take, however slowly this machine starts processes
    # (with one second, a slow start reused environments and every connection fit).
    summary = invoke_burst(stack, FUNCTION, 300, {"action": "health", "work_ms": 10000})
    assert summary["ok"] + summary["function_errors"] == 300, summary
    assert summary["function_errors"] > 0, summary
    assert set(summary["error_types"]) == {"DatabaseError"}, summary
    assert "too many clients" in summary["first_error"], summary
    # Far more environments than the proxy's 20 server connections, each holding its own
    # connection while frozen (how many depends on how fast failed invocations free theirs).
    assert len(environments(stack, FUNCTION)["Environments"]) > 5 * SERVER_CAP
    harness.wait_for(lambda: all(env["Frozen"] for env in environments(stack, FUNCTION)["Environments"]),
                     10, 0.1, "every environment frozen between invocations")
