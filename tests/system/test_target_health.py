"""GET /targets: the target's health as describe-db-proxy-targets reports it (TargetHealth), judged
from the proxy's logins to the server and from the active probe ([target] health_check_interval)."""
import json
import re
import signal
import time
import urllib.error
import urllib.request

import psycopg
import pytest

from sluice_harness import harness

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def targets(proxy):
    """(content type, the one target) from GET /targets."""
    url = f"http://127.0.0.1:{proxy.metrics_port}/targets"
    with urllib.request.urlopen(url, timeout=10 * harness.SLOW) as r:
        content_type = r.headers.get("Content-Type")
        doc = json.loads(r.read().decode())
    assert list(doc) == ["targets"] and len(doc["targets"]) == 1, doc
    return content_type, doc["targets"][0]


def wait_state(proxy, state, reason="", timeout=10):
    def reached():
        _, t = targets(proxy)
        return t if (t["state"], t["reason"]) == (state, reason) else None
    return harness.wait_for(reached, timeout * harness.SLOW, 0.1, f"target health {state} {reason}")


def test_available_after_startup_with_probe(proxy_factory, pg, app):
    proxy = proxy_factory(target={"health_check_interval": 1})
    t = wait_state(proxy, "AVAILABLE")
    content_type, _ = targets(proxy)
    assert content_type == "application/json"
    assert set(t) == {"host", "port", "role", "state", "reason", "description", "checked_at",
                      "timeline"}
    assert t["timeline"] is None  # learned with [target] hosts only (split brain)
    assert (t["host"], t["port"]) == ("127.0.0.1", pg.port)
    assert TIMESTAMP.match(t["checked_at"]), t
    assert t["description"]
    # One warm connection per configured user, in database postgres, kept in the pool.
    for user in (app.app_user, app.md5_user):
        harness.wait_for(lambda: pg.backend_count(user, "postgres") == 1, 10 * harness.SLOW, 0.1,
                         f"the probe's warm connection for {user}")
    time.sleep(2.5)  # a few more probe rounds reuse it rather than log in again
    for user in (app.app_user, app.md5_user):
        assert pg.backend_count(user, "postgres") == 1
    with proxy.connect(app.app_user, app.app_password) as c:
        assert c.execute("select 1").fetchone()[0] == 1


def test_probe_leaves_out_admin_users_that_are_not_database_roles(proxy_factory, pg, app):
    # An admin_users entry is the proxy's own console login: it need not exist in the database.
    # Probed like a database user, it failed every round and the target read AUTH_FAILURE.
    admin_user, admin_password = "probe_console_admin", harness.new_password("console")
    proxy = proxy_factory(users=[(app.app_user, app.app_password), (admin_user, admin_password)],
                          admin_users=[admin_user], target={"health_check_interval": 1})
    wait_state(proxy, "AVAILABLE")
    harness.wait_for(lambda: pg.backend_count(app.app_user, "postgres") == 1, 10 * harness.SLOW, 0.1,
                     "the probe's warm connection")
    time.sleep(2.5)  # a few more probe rounds
    _, t = targets(proxy)
    assert (t["state"], t["reason"]) == ("AVAILABLE", ""), t
    assert admin_user not in proxy.log_text(), proxy.log_tail()
    with proxy.connect(admin_user, admin_password, dbname="sluice", prepare_threshold=None) as c:
        assert c.execute("show version").fetchone()


def test_auth_failure_names_the_user_not_the_password(proxy_factory, app):
    wrong = harness.new_password("wrong-pw")
    proxy = proxy_factory(users=[(app.app_user, wrong)], target={"health_check_interval": 1})
    t = wait_state(proxy, "UNAVAILABLE", "AUTH_FAILURE")
    assert f'"{app.app_user}"' in t["description"], t
    assert wrong not in t["description"] and app.app_password not in t["description"], t
    assert "password authentication failed" in t["description"], t
    assert TIMESTAMP.match(t["checked_at"]), t
    assert proxy.metrics().get("sluice_availability_percentage") == 0


def test_connection_failed_when_nothing_listens(proxy_factory, app):
    proxy = proxy_factory(target_port=harness.free_port(), target={"health_check_interval": 1})
    t = wait_state(proxy, "UNAVAILABLE", "CONNECTION_FAILED")
    assert "refused" in t["description"].lower(), t
    # The probe retries a refused login for a few seconds; SIGTERM must still end the proxy soon.
    t0 = time.monotonic()
    assert proxy.stop(timeout=20) == 0
    assert time.monotonic() - t0 < 8 * harness.SLOW


def test_probe_logs_in_afresh_after_a_failure(proxy_factory, pg, app):
    """A client's login to a database that does not exist is on record as a failure; the probe's
    warm connection cannot tell that the target is fine, so it logs in anew."""
    proxy = proxy_factory(target={"health_check_interval": 1})
    wait_state(proxy, "AVAILABLE")
    with pytest.raises(psycopg.OperationalError) as ei:
        proxy.connect(app.app_user, app.app_password, dbname="no_such_db")
    assert "no_such_db" in str(ei.value)
    harness.wait_for(lambda: "target health: UNAVAILABLE CONNECTION_FAILED" in proxy.log_text(),
                     5 * harness.SLOW, 0.1, "the failed login on record")
    wait_state(proxy, "AVAILABLE")
    assert pg.backend_count(app.app_user, "postgres") <= 2


def test_registering_until_the_first_client_without_probe(proxy_factory, app):
    proxy = proxy_factory()
    time.sleep(1.0)  # no probe: nothing logs in on its own
    _, t = targets(proxy)
    assert (t["state"], t["reason"], t["checked_at"]) == ("REGISTERING", "", None), t
    with proxy.connect(app.app_user, app.app_password) as c:
        assert c.execute("select 1").fetchone()[0] == 1
    _, t = targets(proxy)
    assert (t["state"], t["reason"]) == ("AVAILABLE", ""), t
    assert TIMESTAMP.match(t["checked_at"]), t


def test_probe_at_the_cap_leaves_clients_alone(proxy_factory, pg, app):
    """Cap 1: a client's transaction holds the only connection; the probe must neither take it,
    nor wait for it, nor call the target unavailable."""
    proxy = proxy_factory(users=[(app.app_user, app.app_password)], target={"health_check_interval": 1},
                          connection_pool={"max_connections_percent": 1, "connection_borrow_timeout": 10})
    wait_state(proxy, "AVAILABLE")
    with proxy.connect(app.app_user, app.app_password) as c:
        c.execute("BEGIN")
        backend = c.execute("select pg_backend_pid()").fetchone()[0]
        time.sleep(3.0)  # several probe rounds
        assert c.execute("select pg_backend_pid()").fetchone()[0] == backend
        _, t = targets(proxy)
        assert t["state"] == "AVAILABLE", t
        c.execute("COMMIT")
    assert proxy.metrics().get("sluice_database_connections_borrow_timeouts") == 0


def test_sigterm_exits_promptly_with_probe(proxy_factory, app):
    proxy = proxy_factory(target={"health_check_interval": 3600})
    wait_state(proxy, "AVAILABLE")
    t0 = time.monotonic()
    proxy.signal(signal.SIGTERM)
    assert proxy.wait(10 * harness.SLOW) == 0
    assert time.monotonic() - t0 < 3 * harness.SLOW


def test_unknown_paths_still_404(proxy):
    for path in ("/nope", "/targets/x", "/"):
        with pytest.raises(urllib.error.HTTPError) as ei:
            urllib.request.urlopen(f"http://127.0.0.1:{proxy.metrics_port}{path}", timeout=10)
        assert ei.value.code == 404, path
