"""The database restarts under load: clients keep their connections to the proxy.

A client with a statement in flight gets one ErrorResponse (08006 or 57P01, severity ERROR) and
its session goes on; inside a transaction block it sees the block failed (ReadyForQuery 'E')
and the ROLLBACK it sends is answered by the proxy; new work waits for the database (up to
connection_borrow_timeout) and then succeeds. Pinned sessions lose their connection. No
acknowledged commit is lost or duplicated, also under load (16 clients, TLS and plaintext, both
restart modes). The same load with the longest time without a commit, through sluice and
PgBouncer: bench/restart.py."""
import os
import threading
import time

import psycopg
import pytest

import conftest
from sluice_harness import harness, transfers

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


def test_restart_under_load_keeps_every_client(proxy_factory, own_pg, app):
    """16 clients (half TLS) run money transfers; PostgreSQL restarts -m fast, then -m immediate.
    Per restart each client keeps its connection, sees at most two errors (08006 or 57P01,
    severity ERROR: its statement in flight or its transaction block gone; rarely a second when
    its next borrow gets a connection whose server is dying but has not said so yet), rolls back
    on the same connection and commits again; the ledger holds every acknowledged transfer once.
    SLUICE_KEEP_PROXY_LOG=FILE keeps the proxy's log, for loops that hunt a rare failure."""
    clients = 16
    proxy = proxy_factory(target_port=own_pg.port, require_tls=False,
                          connection_pool={"max_connections_percent": 20,
                                           "connection_borrow_timeout": 60})
    transfers.prepare_ledger(own_pg, app, "restart_ledger")
    dsns = [proxy.dsn(app.app_user, app.app_password, app.dbname,
                      "require" if i % 2 == 0 else "disable") for i in range(clients)]
    # Clients 0, 1, 4, 5, ... prepare their statements on the server (psycopg's default): a
    # restart takes those away too.
    load = transfers.TransferLoad(app, dsns, "restart_ledger", reconnect=False,
                                  prepare_threshold=lambda i: 5 if i % 4 < 2 else None).start()
    try:
        behind = load.wait_for_progress("before", 2, 20 * harness.SLOW)
        assert not behind, "\n".join(c.describe() for c in behind)
        for mode in ("fast", "immediate"):
            load.phase(mode)  # statements in flight while the server restarts
            print(f"{time.time():.3f} restart -m {mode}")  # shown on failure, beside the log
            own_pg.restart(mode)
            load.phase(f"after {mode}")
            print(f"{time.time():.3f} restarted")  # new work, on the restarted server
            # No client stuck: each commits transfers it began after the restart.
            behind = load.wait_for_progress(f"after {mode}", 2, 30 * harness.SLOW)
            assert not behind, f"-m {mode}: clients stuck:\n" + "\n".join(c.describe() for c in behind)
            for c in load.clients:
                assert not c.lost, c.describe()
                seen = [e for e in c.errors if e.phase in (mode, f"after {mode}")]
                assert len(seen) <= 2, c.describe()
                for e in seen:
                    assert e.sqlstate in KEPT_SQLSTATES and e.severity == "ERROR", (mode, e)
        assert not load.errors("before")
    finally:
        hung = load.stop(timeout=15 * harness.SLOW)
        if os.environ.get("SLUICE_KEEP_PROXY_LOG"):
            with open(os.environ["SLUICE_KEEP_PROXY_LOG"], "w") as f:
                f.write(proxy.log_text())
    assert hung == 0
    assert not any(c.lost for c in load.clients)
    ledger = load.check_ledger(own_pg)
    assert ledger == dict(lost_commits=0, duplicated=0, consistent=True), ledger
    assert len(load.acknowledged) >= clients * 6
