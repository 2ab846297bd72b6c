"""The guide's story as code, shared by test_cloud_guide.py, test_meal_planner.py,
bench/functions.py and scripts/demo.py: the stack file, the guide's three AWS CLI commands (read
from the guide beside the checkout, or FALLBACK) run verbatim against a `sluice serve`, and
`sluice apply` of examples/meal-planner/stack.toml."""
import json
import os
import shlex
import subprocess

from sluice_harness.cloud import Serve

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout
STACK = os.path.join(ROOT, "examples", "meal-planner", "stack.toml")
GUIDE = os.path.join(ROOT, "..", "shared", "guide", "lambda-rds-proxy-guide.md")
PROXY_HOST = "meal-planner-proxy.proxy-cczg0cscuj55.us-east-1.rds.sluice.internal"
SECRET_ARN = ("arn:aws:secretsmanager:us-east-1:512662829295:secret:"
              "rds-proxy-secret-meal-planner-7Ps2c0")


FALLBACK = [
    'aws rds create-db-proxy --db-proxy-name meal-planner-proxy --engine-family POSTGRESQL '
    '--role-arn arn:aws:iam::512662829295:role/rds-proxy-role-meal-planner '
    '--vpc-subnet-ids "subnet-0aea07bbb011a0bab,subnet-054c26c1e75b269e1" '
    '--vpc-security-group-ids "sg-0fd605efde80bd711" '
    '--auth "AuthScheme=SECRETS,SecretArn=arn:aws:secretsmanager:us-east-1:512662829295:secret:'
    'rds-proxy-secret-meal-planner-7Ps2c0,IAMAuth=DISABLED" --require-tls',
    'aws ec2 authorize-security-group-ingress --group-id sg-0fd605efde80bd711 --protocol tcp '
    '--port 5432 --source-group sg-0fd605efde80bd711',
    'aws lambda get-function-configuration --function-name meal-planner-test-app --region us-east-1',
]


def guide_commands():
    """The ```bash blocks of the guide (joined at their backslashes), or FALLBACK, the same
    commands, where the guide is not beside the checkout."""
    if not os.path.exists(GUIDE):
        return FALLBACK
    text = open(GUIDE).read()
    blocks = [chunk.split("```")[0].replace("\\\n", " ").strip() for chunk in text.split("```bash")[1:]]
    assert [shlex.split(b) for b in blocks] == [shlex.split(c) for c in FALLBACK]
    return blocks


def run_verbatim(serve_, command, tool="aws"):
    """A guide command through bash, as a reader pastes it, with --endpoint-url added (and with
    tool="sluice", `aws` replaced by the sluice CLI)."""
    assert command.startswith("aws ")
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDLOCAL", AWS_SECRET_ACCESS_KEY="local-secret",
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_DEFAULT_OUTPUT="json")
    program = shlex.quote(Serve.binary()) if tool == "sluice" else "aws"
    line = program + " --endpoint-url " + serve_.url + command[len("aws"):]
    r = subprocess.run(["bash", "-c", line], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, (line, r.stderr)
    return json.loads(r.stdout) if r.stdout.strip() else None


def apply(serve_):
    r = subprocess.run([Serve.binary(), "--endpoint-url", serve_.url, "apply", STACK], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout
