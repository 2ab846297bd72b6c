"""`sluice-proxy --check --config FILE`: exit 0 for a valid file, 2 plus one line naming the bad key."""
import json
import re
import os

import pytest

from sluice_harness import harness

VALID = """\
name = "meal-planner-proxy"
listen = "127.0.0.1:{port}"
require_tls = true
idle_client_timeout = 1800
max_client_connections = 10000
max_message_size = 16777216
login_timeout = 15
max_pending_logins = 5000
max_concurrent_logins = 100
auth_failure_delay = 0

[tls]
cert_file = "server.crt"
key_file = "server.key"

[[auth]]
secret_file = "secret.json"
client_password_auth_type = "POSTGRES_SCRAM_SHA_256"

[target]
host = "127.0.0.1"
port = {target_port}
tls = "prefer"
ca_file = ""

[connection_pool]
max_connections_percent = 100
max_idle_connections_percent = 50
connection_borrow_timeout = 120
init_query = ""

[metrics]
listen = "127.0.0.1:{metrics_port}"
"""


@pytest.fixture
def config_dir(tmp_path):
    certs = harness.CertBundle(str(tmp_path / "certs"))
    os.rename(certs.cert, tmp_path / "server.crt")
    os.rename(certs.key, tmp_path / "server.key")
    (tmp_path / "secret.json").write_text(json.dumps({"username": "app", "password": "config-test-pw"}))
    return tmp_path


def valid_text():
    # The target is deliberately not running: --check must not need it.
    return VALID.format(port=harness.free_port(), target_port=harness.free_port(),
                        metrics_port=harness.free_port())


def check(proxy_binary, config_dir, text):
    path = config_dir / "sluice.toml"
    path.write_text(text)
    return harness.check_config(proxy_binary, str(path))


def test_valid_config_exits_0(proxy_binary, config_dir):
    r = check(proxy_binary, config_dir, valid_text())
    assert r.returncode == 0, f"stdout={r.stdout!r} stderr={r.stderr!r}"


def test_minimal_config_exits_0(proxy_binary, config_dir):
    text = (f'listen = "127.0.0.1:{harness.free_port()}"\n'
            '[[auth]]\nsecret_file = "secret.json"\n'
            f'[target]\nhost = "127.0.0.1"\nport = {harness.free_port()}\n')
    r = check(proxy_binary, config_dir, text)
    assert r.returncode == 0, f"stdout={r.stdout!r} stderr={r.stderr!r}"


BAD = [
    ("target_tls_sometimes", (r'^tls = "prefer"', 'tls = "sometimes"'), "tls"),
    ("pool_percent_zero", ("max_connections_percent = 100", "max_connections_percent = 0"), "max_connections_percent"),
    ("pool_percent_101", ("max_connections_percent = 100", "max_connections_percent = 101"), "max_connections_percent"),
    ("auth_type_unknown", ('"POSTGRES_SCRAM_SHA_256"', '"PLAINTEXT"'), "client_password_auth_type"),
    ("require_tls_not_bool", ("require_tls = true", 'require_tls = "yes"'), "require_tls"),
    ("listen_bad_port", (r'^listen = "127\.0\.0\.1:\d+"', 'listen = "127.0.0.1:notaport"'), "listen"),
    ("idle_percent_above_max", ("max_connections_percent = 100", "max_connections_percent = 30"),
     "max_idle_connections_percent"),
    ("borrow_timeout_negative", ("connection_borrow_timeout = 120", "connection_borrow_timeout = -5"),
     "connection_borrow_timeout"),
    ("login_timeout_zero", ("login_timeout = 15", "login_timeout = 0"), "login_timeout"),
    ("pending_logins_zero", ("max_pending_logins = 5000", "max_pending_logins = 0"), "max_pending_logins"),
    ("concurrent_logins_zero", ("max_concurrent_logins = 100", "max_concurrent_logins = 0"),
     "max_concurrent_logins"),
    ("auth_delay_too_long", ("auth_failure_delay = 0", "auth_failure_delay = 60000"), "auth_failure_delay"),
]


@pytest.mark.parametrize("edit,key", [(b[1], b[2]) for b in BAD], ids=[b[0] for b in BAD])
def test_bad_value_exits_2_naming_key(proxy_binary, config_dir, edit, key):
    text = valid_text()
    old, new = edit
    text, n = re.subn(old, new, text, count=1, flags=re.M)
    assert n == 1, old
    r = check(proxy_binary, config_dir, text)
    out = (r.stdout + r.stderr).strip()
    assert r.returncode == 2, f"rc={r.returncode} output={out!r}"
    lines = out.splitlines()
    assert len(lines) == 1, f"expected exactly one line, got {lines!r}"
    assert key in lines[0], f"line does not name {key!r}: {lines[0]!r}"


def test_missing_target_exits_2(proxy_binary, config_dir):
    text = valid_text()
    start = text.index("[target]")
    end = text.index("[connection_pool]")
    text = text[:start] + text[end:]
    r = check(proxy_binary, config_dir, text)
    out = (r.stdout + r.stderr).strip()
    assert r.returncode == 2, f"rc={r.returncode} output={out!r}"
    lines = out.splitlines()
    assert len(lines) == 1, f"expected exactly one line, got {lines!r}"
    assert "target" in lines[0], lines[0]


def test_unparsable_toml_exits_2(proxy_binary, config_dir):
    r = check(proxy_binary, config_dir, valid_text() + "\nthis is = = not toml\n")
    assert r.returncode == 2, f"rc={r.returncode} output={(r.stdout + r.stderr)!r}"
    assert len((r.stdout + r.stderr).strip().splitlines()) == 1


def test_check_does_not_leak_secret(proxy_binary, config_dir):
    text = valid_text().replace('tls = "prefer"', 'tls = "sometimes"')
    r = check(proxy_binary, config_dir, text)
    assert r.returncode == 2
    assert "config-test-pw" not in r.stdout + r.stderr


def test_json_logs_one_object_per_line_at_the_chosen_level(proxy_factory, app):
    """log_format = "json": every line the proxy writes is one JSON object with time, level and
    message, also for a failed login whose user name is hostile; log_level picks what is written."""
    proxy = proxy_factory(log_format="json", log_level="debug")
    with proxy.connect(app.app_user, app.app_password) as c:
        assert c.execute("select 1").fetchone() == (1,)
    with pytest.raises(Exception):
        proxy.connect('bad"user\\name', "wrong")
    lines = [l for l in proxy.log_text().splitlines() if l.strip()]
    assert lines, "the proxy logged nothing"
    records = [json.loads(l) for l in lines]  # every line parses
    for r in records:
        assert set(r) == {"time", "level", "thread", "message"}, r
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["time"]), r
    levels = {r["level"] for r in records}
    assert "debug" in levels and "info" in levels, levels
    assert any("listening" in r["message"] for r in records)

    quiet = proxy_factory(log_format="json", log_level="warn")
    with quiet.connect(app.app_user, app.app_password) as c:
        c.execute("select 1")
    assert all(json.loads(l)["level"] in ("warning", "error", "critical")
               for l in quiet.log_text().splitlines() if l.strip())
