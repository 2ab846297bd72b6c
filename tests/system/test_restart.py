"""The database restarts under load: clients keep their connections to the proxy.

A client with a statement in flight gets one ErrorResponse (08006 or 57P01, severity ERROR) and
its session goes on; inside a transaction block it sees the block failed (ReadyForQuery 'E')
and the ROLLBACK it sends is answered by the proxy; new work waits for the database (up to
connection_borrow_timeout) and then succeeds. Pinned sessions lose their connection. No
acknowledged commit is lost or duplicated. The same under load, with errors counted and the
longest time without a commit, through sluice and PgBouncer: bench/restart.py."""
import threading
import time

import psycopg
import pytest

import conftest
from sluice_harness import harness

KEPT_SQLSTATES = {"08006", "57P01"}


@pytest.fixture
def own_pg(app):
    """A private PostgreSQL whose acknowledged commits survive `-m immediate`: the harness's
    usual synchronous_commit=off would lose the last ones in the crash, the proxy or not."""
    yield from conftest.private_pg(app, synchronous_commit="on")


def _proxy(proxy_factory, own_pg, **pool):
    settings = {"max_connections_percent": 20, "connection_borrow_timeout": 60}
    settings.update(pool)
    return proxy_factory(target_port=own_pg.port, connection_pool=settings)


def _ledger(own_pg, app):
    with own_pg.superuser_conn("appdb") as c:
        c.execute("drop table if exists restart_ledger")
        c.execute("create table restart_ledger (id text primary key, a int, b int, d int)")
        c.execute(f"grant all on restart_ledger to {app.app_user}")
        c.execute("update accounts set balance = %s", (app.initial_balance,))


def test_statement_in_flight_gets_one_error_and_the_session_goes_on(proxy_factory, own_pg, app):
    proxy = _proxy(proxy_factory, own_pg)
    with harness.RawPgClient(proxy.host, proxy.port) as c:
        c.login(app.app_user, app.app_password)
        assert c.scalar("select 1") == "1"
        restarted = threading.Thread(target=lambda: (time.sleep(1), own_pg.restart("fast")))
        restarted.start()
        r = c.query("select pg_sleep(30)")
        restarted.join()
        assert r.error is not None, r.messages
        assert r.error["C"] in KEPT_SQLSTATES and r.error["S"] == "ERROR", r.error
        assert sum(1 for t, _ in r.messages if t == b"E") == 1, r.messages
        assert r.status == "I"
        # New work waits for the database and then succeeds, on the same connection.
        assert c.scalar("select 2") == "2"
    assert proxy.metrics().get("sluice_client_sessions_kept_after_server_loss") == 1


def test_transaction_block_fails_and_the_proxy_answers_its_rollback(proxy_factory, own_pg, app):
    proxy = _proxy(proxy_factory, own_pg)
    with harness.RawPgClient(proxy.host, proxy.port) as c:
        c.login(app.app_user, app.app_password)
        r = c.query("BEGIN; update accounts set balance = balance + 1 where id = 1")
        assert r.error is None and r.status == "T"
        own_pg.restart("fast")
        r = c.query("update accounts set balance = balance + 1 where id = 2")
        assert r.error is not None and r.error["C"] in KEPT_SQLSTATES and r.error["S"] == "ERROR", r.messages
        assert r.status == "E"
        r = c.query("select 1")
        assert r.error is not None and r.error["C"] == "25P02" and r.status == "E", r.messages
        r = c.query("ROLLBACK")
        assert r.error is None and r.tags == ["ROLLBACK"] and r.status == "I", r.messages
        r = c.query("BEGIN; select 3; COMMIT")
        assert r.error is None and r.rows == [["3"]] and r.status == "I", r.messages


def test_psycopg_transaction_after_restart_rolls_back_and_retries(proxy_factory, own_pg, app):
    """The extended protocol in a failed block: psycopg's rollback, then the retry commits."""
    proxy = _proxy(proxy_factory, own_pg)
    _ledger(own_pg, app)
    conn = proxy.connect(app.app_user, app.app_password, autocommit=False)
    conn.execute("insert into restart_ledger values (%s, 1, 2, 3)", ("first",))
    own_pg.restart("immediate")
    with pytest.raises(psycopg.OperationalError) as ei:
        conn.execute("insert into restart_ledger values (%s, 1, 2, 3)", ("second",))
    assert ei.value.sqlstate in KEPT_SQLSTATES, ei.value
    assert not conn.closed
    conn.rollback()
    conn.execute("insert into restart_ledger values (%s, 1, 2, 3)", ("retry",))
    conn.commit()
    with own_pg.superuser_conn("appdb") as c:
        ids = sorted(r[0] for r in c.execute("select id from restart_ledger"))
    assert ids == ["retry"], ids
    conn.close()


def test_idle_clients_keep_working_across_restarts(proxy_factory, own_pg, app):
    proxy = _proxy(proxy_factory, own_pg)
    idle = [proxy.connect(app.app_user, app.app_password) for _ in range(4)]
    for c in idle:
        assert c.execute("select 1").fetchone()[0] == 1
    for mode in ("fast", "immediate"):
        own_pg.restart(mode)
        for i, c in enumerate(idle):
            assert c.execute("select %s::int", (i,)).fetchone()[0] == i, mode
    for c in idle:
        c.close()


def test_pinned_session_loses_its_connection(proxy_factory, own_pg, app):
    proxy = _proxy(proxy_factory, own_pg)
    pinned = proxy.connect(app.app_user, app.app_password)
    pinned.execute("select pg_advisory_lock(42)")  # session state on that server: pinned
    other = proxy.connect(app.app_user, app.app_password)
    assert other.execute("select 1").fetchone()[0] == 1
    own_pg.restart("fast")
    with pytest.raises(psycopg.OperationalError):
        pinned.execute("select 1")
    assert pinned.closed or pinned.broken
    assert other.execute("select 2").fetchone()[0] == 2
    other.close()
    with proxy.connect(app.app_user, app.app_password) as n:
        assert n.execute("select 3").fetchone()[0] == 3
    assert proxy.metrics().get("sluice_client_sessions_kept_after_server_loss") == 0
