"""Faults: clients vanishing mid-transaction, server connections terminated, database restarts."""
import signal
import subprocess
import time

import psycopg
import pytest

from sluice_harness import harness


def _txn_state(pg, user):
    with pg.superuser_conn("appdb") as c:
        idle_in_txn = c.execute(
            "select count(*) from pg_stat_activity where usename = %s and state like 'idle in transaction%%'",
            (user,)).fetchone()[0]
        locks = c.execute(
            "select count(*) from pg_locks l join pg_stat_activity a using (pid)"
            " where a.usename = %s and l.locktype in ('relation', 'tuple', 'transactionid')"
            " and l.relation is distinct from 'pg_locks'::regclass", (user,)).fetchone()[0]
    return idle_in_txn, locks


def _wait_row_locked(pg, user):
    def locked():
        n, locks = _txn_state(pg, user)
        return n >= 1 and locks >= 1
    harness.wait_for(locked, 15 * harness.SLOW, 0.1, "the client's transaction to hold the row lock")


def _assert_released_and_row_updatable(proxy, pg, app, row_id):
    harness.wait_for(lambda: _txn_state(pg, app.app_user) == (0, 0), 10 * harness.SLOW, 0.1,
                     "no idle-in-transaction backend and no locks for the proxy's user")
    with proxy.connect(app.app_user, app.app_password, options="-c lock_timeout=5s") as c:
        c.execute("update accounts set balance = balance where id = %s", (row_id,))
        assert c.execute("select count(*) from accounts where id = %s", (row_id,)).fetchone()[0] == 1


def test_psql_killed_inside_transaction(proxy_factory, pg, app):
    proxy = proxy_factory(connection_pool={"max_connections_percent": 5})
    env = proxy.env(app.app_user, app.app_password)
    p = subprocess.Popen([harness.PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    harness.register_proc(p)
    try:
        p.stdin.write("BEGIN;\nUPDATE accounts SET balance = balance + 0 WHERE id = 1;\n")
        p.stdin.flush()
        _wait_row_locked(pg, app.app_user)
        p.send_signal(signal.SIGKILL)
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
        harness.unregister_proc(p)
    _assert_released_and_row_updatable(proxy, pg, app, 1)


def test_raw_socket_closed_inside_transaction(proxy_factory, pg, app):
    proxy = proxy_factory(connection_pool={"max_connections_percent": 5})
    c = harness.RawPgClient(proxy.host, proxy.port)
    c.login(app.app_user, app.app_password)
    r = c.query("BEGIN; SELECT balance FROM accounts WHERE id = 2 FOR UPDATE")
    assert r.error is None and r.status == "T", (r.error, r.status)
    _wait_row_locked(pg, app.app_user)
    c.sock.close()  # no Terminate message, just gone
    _assert_released_and_row_updatable(proxy, pg, app, 2)


def test_client_vanishes_with_query_running(proxy_factory, pg, app):
    """The client disappears while its (long) statement runs inside a transaction."""
    proxy = proxy_factory(connection_pool={"max_connections_percent": 5})
    c = harness.RawPgClient(proxy.host, proxy.port)
    c.login(app.app_user, app.app_password)
    c.send(harness.msg(b"Q", b"BEGIN; UPDATE accounts SET balance = balance WHERE id = 3; SELECT pg_sleep(3)\0"))
    harness.wait_for(lambda: _txn_state(pg, app.app_user)[1] >= 1, 15 * harness.SLOW, 0.1, "row lock")
    c.sock.close()
    harness.wait_for(lambda: _txn_state(pg, app.app_user) == (0, 0), 15 * harness.SLOW, 0.2,
                     "the abandoned transaction to be rolled back")
    with pg.superuser_conn("appdb") as s:
        # nothing is still running for the vanished client
        assert s.execute("select count(*) from pg_stat_activity where usename = %s and state = 'active'",
                         (app.app_user,)).fetchone()[0] == 0
    _assert_released_and_row_updatable(proxy, pg, app, 3)


def _terminate_proxy_backends(pg, user):
    with pg.superuser_conn() as c:
        return c.execute("select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity"
                         " where usename = %s and backend_type = 'client backend') t", (user,)).fetchone()[0]


def test_server_connection_terminated(proxy_factory, pg, app):
    proxy = proxy_factory(connection_pool={"max_connections_percent": 5, "max_idle_connections_percent": 5})
    # warm the pool with a few idle connections, then hold one in a transaction
    others = [proxy.connect(app.app_user, app.app_password, autocommit=False) for _ in range(3)]
    for o in others:
        o.execute("select 1")
    for o in others:
        o.commit()
        o.close()
    c = proxy.connect(app.app_user, app.app_password)
    c.execute("BEGIN")
    c.execute("select 1")
    killed = _terminate_proxy_backends(pg, app.app_user)
    assert killed >= 1
    # Every terminated backend gone (its goodbye sent): the pool's check before a borrow then
    # drops the dead idle ones, and `select 3` below borrows a live connection.
    harness.wait_for(lambda: pg.backend_count(app.app_user) == 0, 10, 0.1, "terminated backends to exit")
    # The session goes on: the failed block is reported, then rolled back by the proxy.
    with pytest.raises(psycopg.OperationalError) as ei:
        c.execute("select 2")
    assert ei.value.sqlstate in ("08006", "57P01"), (ei.value.sqlstate, str(ei.value))
    assert not c.closed
    c.execute("ROLLBACK")
    assert c.execute("select 3").fetchone()[0] == 3
    c.close()
    # Only the connection `select 3` opened is left.
    harness.wait_for(lambda: pg.backend_count(app.app_user) <= 1, 10, 0.1, "terminated backends to exit")
    time.sleep(1)
    # The pool must not hand out the dead connections: every new client works.
    for i in range(5):
        with proxy.connect(app.app_user, app.app_password) as n:
            assert n.execute("select %s::int", (i,)).fetchone()[0] == i
    assert proxy.alive()


def test_server_connection_terminated_raw_sqlstate(proxy_factory, pg, app):
    """The backend of a transaction is terminated: the client's next statement gets one
    ErrorResponse (the server's 57P01, as an ERROR), its block is failed (ReadyForQuery 'E'),
    the proxy answers its ROLLBACK, and the connection goes on."""
    proxy = proxy_factory(connection_pool={"max_connections_percent": 5})
    c = harness.RawPgClient(proxy.host, proxy.port)
    try:
        c.login(app.app_user, app.app_password)
        r = c.query("BEGIN; SELECT 1")
        assert r.error is None and r.status == "T"
        assert _terminate_proxy_backends(pg, app.app_user) >= 1
        time.sleep(0.5)
        r = c.query("select 2")
        errors = [harness.parse_error_fields(p) for t, p in r.messages if t == b"E"]
        assert len(errors) == 1, r.messages
        assert errors[0]["C"] in ("08006", "57P01") and errors[0]["S"] == "ERROR", errors
        assert r.status == "E"
        r = c.query("ROLLBACK")
        assert r.error is None and r.tags == ["ROLLBACK"] and r.status == "I", r.messages
        assert c.scalar("select 3") == "3"
    finally:
        c.close()
    with proxy.connect(app.app_user, app.app_password) as n:
        assert n.execute("select 1").fetchone()[0] == 1


def test_idle_pooled_connections_terminated(proxy_factory, pg, app):
    """Only idle pooled connections die; a client that is between transactions keeps working."""
    proxy = proxy_factory(connection_pool={"max_connections_percent": 5, "max_idle_connections_percent": 5})
    c = proxy.connect(app.app_user, app.app_password)
    assert c.execute("select 1").fetchone()[0] == 1
    assert _terminate_proxy_backends(pg, app.app_user) >= 1
    harness.wait_for(lambda: pg.backend_count(app.app_user) == 0, 10, 0.1, "terminated backends to exit")
    time.sleep(1)
    assert c.execute("select 2").fetchone()[0] == 2
    c.close()


def test_database_restart(proxy_factory, own_pg, app):
    proxy = proxy_factory(target_port=own_pg.port,
                          connection_pool={"max_connections_percent": 10, "connection_borrow_timeout": 10})
    with proxy.connect(app.app_user, app.app_password) as c:
        assert c.execute("select count(*) from accounts").fetchone()[0] == app.accounts
    idle_client = proxy.connect(app.app_user, app.app_password)
    own_pg.restart()

    def new_client_works():
        try:
            with proxy.connect(app.app_user, app.app_password) as n:
                return n.execute("select count(*) from accounts").fetchone()[0] == app.accounts
        except psycopg.Error:
            return False
    harness.wait_for(new_client_works, 15 * harness.SLOW, 0.5, "a new client to work after the restart")
    for _ in range(5):
        assert new_client_works()
    # an existing client between transactions either works or gets a clean error, never a hang
    try:
        idle_client.execute("select 1")
    except psycopg.Error:
        pass
    idle_client.close()
    assert proxy.alive()


def test_database_down_then_up(proxy_factory, own_pg, app):
    proxy = proxy_factory(target_port=own_pg.port,
                          connection_pool={"max_connections_percent": 10, "connection_borrow_timeout": 2})
    own_pg.stop()
    with pytest.raises(psycopg.Error):
        with proxy.connect(app.app_user, app.app_password) as c:
            c.execute("select 1")
    assert proxy.alive()
    own_pg.start()

    def works():
        try:
            with proxy.connect(app.app_user, app.app_password) as c:
                return c.execute("select 1").fetchone()[0] == 1
        except psycopg.Error:
            return False
    harness.wait_for(works, 15 * harness.SLOW, 0.5, "a client to work once the database is back")
