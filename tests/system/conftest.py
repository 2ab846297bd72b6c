"""Fixtures for the sluice-proxy system tests.

Run with:  SLUICE_BUILD=/abs/build /usr/bin/python3 -m pytest -q tests/system
SLUICE_SANITIZED=1 scales loads down and timeouts up for an ASan build.
"""
import faulthandler
import os
import signal
import sys

import pytest

# The guide's helpers assert like the tests that use them (they lived in test_cloud_guide.py).
pytest.register_assert_rewrite("sluice_harness.guide")

from sluice_harness import harness  # noqa: E402

SERVER_MAX_CONNECTIONS = 100


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


TEST_TIMEOUT = 150 * harness.SLOW  # seconds per test, a watchdog against hangs


class TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _watchdog():
    def on_alarm(signum, frame):
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        raise TestTimeout(f"test exceeded {TEST_TIMEOUT}s")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIMEOUT)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="session")
def proxy_binary():
    path = harness.find_proxy_binary()
    if not os.path.exists(path):
        pytest.fail(f"sluice-proxy not found at {path}: build it and/or set SLUICE_BUILD", pytrace=False)
    return path


@pytest.fixture(scope="session")
def app():
    return harness.AppDatabase()


@pytest.fixture(scope="session")
def pg(app):
    """A session-wide PostgreSQL 15 (max_connections=100) with roles app/app_md5,
    database appdb with pgbench tables (scale 1), `accounts` and `kv` tables and schema a_schema."""
    server = harness.PostgresServer(max_connections=SERVER_MAX_CONNECTIONS)
    server.start()
    try:
        harness.setup_app_database(server, app, pgbench_scale=1, accounts=100)
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def proxy_factory(request, proxy_binary, pg, app):
    """make_proxy(**overrides) -> started harness.Proxy in front of the session PostgreSQL.

    Overrides are merged into the TOML config (e.g. connection_pool={"max_connections_percent": 1},
    require_tls=False).  `users=` replaces the default secrets (app and app_md5), `auth_type=` sets
    client_password_auth_type, `target_port=` points it elsewhere, `start=False` skips starting.
    On teardown every proxy is stopped and its stderr log is checked for leaked passwords."""
    proxies = []

    def make(start=True, users=None, target_port=None, **overrides):
        if users is None:
            users = [(app.app_user, app.app_password), (app.md5_user, app.md5_password)]
        p = harness.Proxy(proxy_binary, target_port or pg.port, users=users, **overrides)
        proxies.append(p)
        if start:
            p.start()
        return p

    yield make

    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    leaks = []
    for p in proxies:
        try:
            if p.alive():
                p.stop(timeout=40)
        finally:
            log = p.log_text()
            if failed:
                sys.stderr.write(f"\n--- sluice-proxy log ({p.config_path}) ---\n{p.log_tail(80)}\n")
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                if marker in log:
                    leaks.append(f"sanitizer report in the proxy's stderr log: {marker}")
            for secret in set(p.passwords) | {app.app_password, app.md5_password}:
                if secret in log:
                    leaks.append(f"password {secret[:6]}... appears in the proxy's stderr log")
            p.cleanup()
    if leaks:
        pytest.fail("; ".join(sorted(set(leaks))), pytrace=False)


@pytest.fixture
def proxy(proxy_factory):
    """A default proxy: TLS required, SCRAM, cap = 100% of the server's max_connections."""
    return proxy_factory()


def private_pg(app, **extra_conf):
    """A private PostgreSQL with the app database, for a fixture to yield."""
    server = harness.PostgresServer(max_connections=SERVER_MAX_CONNECTIONS, extra_conf=extra_conf)
    server.start()
    try:
        harness.setup_app_database(server, app, pgbench_scale=1, accounts=app.accounts)
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def own_pg(app):
    """A private PostgreSQL (for tests that restart or disturb the server)."""
    yield from private_pg(app)
