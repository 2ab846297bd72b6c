"""Client limits and lifecycle: max_client_connections, idle_client_timeout, SIGTERM drain."""
import signal
import socket
import time

import psycopg
import pytest

from sluice_harness import harness


def test_max_client_connections(proxy_factory, app):
    proxy = proxy_factory(max_client_connections=2)
    a = proxy.connect(app.app_user, app.app_password)
    b = proxy.connect(app.app_user, app.app_password)
    try:
        with pytest.raises(psycopg.OperationalError) as ei:
            proxy.connect(app.app_user, app.app_password)
        assert "The maximum number of client connections to the proxy exceeded 2." in str(ei.value)
        # raw: FATAL 53300
        with harness.RawPgClient(proxy.host, proxy.port) as raw:
            raw.startup(app.app_user)
            err = raw.expect_error_and_close()
        assert err["C"] == "53300" and err["S"] == "FATAL", err
        assert err["M"] == "The maximum number of client connections to the proxy exceeded 2."
        assert a.execute("select 1").fetchone()[0] == 1
        assert b.execute("select 2").fetchone()[0] == 2
    finally:
        a.close()

    def third_gets_in():
        try:
            with proxy.connect(app.app_user, app.app_password) as c:
                return c.execute("select 3").fetchone()[0] == 3
        except psycopg.OperationalError:
            return False
    harness.wait_for(third_gets_in, 10 * harness.SLOW, 0.2, "a slot to free up after a client left")
    b.close()


def test_idle_client_timeout(proxy_factory, app):
    proxy = proxy_factory(idle_client_timeout=1)
    idle = proxy.connect(app.app_user, app.app_password)
    busy = proxy.connect(app.app_user, app.app_password)
    assert idle.execute("select 1").fetchone()[0] == 1
    t0 = time.monotonic()
    # the busy client sends something every 0.3 s for 3 s and must never be cut off
    while time.monotonic() - t0 < 3.0:
        assert busy.execute("select 1").fetchone()[0] == 1
        time.sleep(0.3)
    with pytest.raises(psycopg.OperationalError):
        idle.execute("select 2")
    idle.close()
    busy.close()


def test_idle_client_timeout_not_too_early(proxy_factory, app):
    proxy = proxy_factory(idle_client_timeout=3)
    c = proxy.connect(app.app_user, app.app_password)
    time.sleep(1.5)
    assert c.execute("select 1").fetchone()[0] == 1
    time.sleep(5)
    with pytest.raises(psycopg.OperationalError):
        c.execute("select 2")
    c.close()


def test_sigterm_lets_open_transaction_finish(proxy_factory, pg, app):
    proxy = proxy_factory()
    key = f"sigterm-{time.time_ns()}"
    c = proxy.connect(app.app_user, app.app_password)
    c.execute("BEGIN")
    c.execute("insert into kv values (%s, 'first')", (key,))
    proxy.signal(signal.SIGTERM)
    time.sleep(1.0 * harness.SLOW)
    assert proxy.alive(), "the proxy exited while a transaction was open"
    # it no longer accepts new clients
    with pytest.raises((psycopg.OperationalError, OSError)):
        with psycopg.connect(proxy.dsn(app.app_user, app.app_password, connect_timeout=3)) as n:
            n.execute("select 1")
    c.execute("update kv set v = 'second' where k = %s", (key,))
    c.execute("COMMIT")
    c.close()
    rc = proxy.wait(35 * harness.SLOW)
    assert rc == 0, f"exit code {rc}"
    assert pg.scalar("select v from kv where k = %s", "appdb", [key]) == "second"


def test_sigterm_idle_exits_promptly(proxy_factory, app):
    proxy = proxy_factory()
    with proxy.connect(app.app_user, app.app_password) as c:
        c.execute("select 1")
    idle = proxy.connect(app.app_user, app.app_password)  # connected, not in a transaction
    t0 = time.monotonic()
    proxy.signal(signal.SIGTERM)
    rc = proxy.wait(35 * harness.SLOW)
    assert rc == 0
    assert time.monotonic() - t0 < 30
    with pytest.raises(psycopg.OperationalError):
        idle.execute("select 1")
    idle.close()
    with pytest.raises(OSError):
        socket.create_connection((proxy.host, proxy.port), timeout=2).close()
