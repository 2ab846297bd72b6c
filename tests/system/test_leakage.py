"""The leakage suite: for every kind of session state, client A sets it, client B, which gets the
same server connection, does not see it, and A still does.

Tracked state (settings, prepared statements) is not pinned: with one server connection, B borrows
the very backend A just used. Pinned state (temporary tables, advisory locks, WITH HOLD cursors,
LISTEN) keeps A's backend for A alone: B works on the other one meanwhile, and gets A's backend
once A has left and the backend has been wiped."""
import psycopg
import pytest

from sluice_harness import harness

PINNED_KINDS = ["temp_table", "advisory_lock", "hold_cursor", "listen"]


def pool_of(proxy_factory, connections):
    # The test cluster has max_connections = 100, so N percent is N server connections.
    return proxy_factory(connection_pool={"max_connections_percent": connections,
                                          "max_idle_connections_percent": connections,
                                          "connection_borrow_timeout": 10})


def backend(conn):
    return conn.execute("select pg_backend_pid()").fetchone()[0]


def test_setting_is_not_seen_by_the_next_client_on_the_same_backend(proxy_factory, app):
    proxy = pool_of(proxy_factory, 1)
    with proxy.connect(app.app_user, app.app_password) as a, \
            proxy.connect(app.app_user, app.app_password) as b:
        default = b.execute("show work_mem").fetchone()[0]
        a.execute("SET work_mem = '7MB'")
        a.execute("SELECT set_config('app.tenant', 'tenant-a', false)")
        pid_a = backend(a)
        row = b.execute("select pg_backend_pid(), current_setting('work_mem'),"
                        " current_setting('app.tenant', true)").fetchone()
        assert row[0] == pid_a, "with one server connection B must be on A's backend"
        assert row[1] == default and row[2] in (None, ""), f"A's settings leaked to B: {row}"
        row = a.execute("select pg_backend_pid(), current_setting('work_mem'),"
                        " current_setting('app.tenant')").fetchone()
        assert row == (pid_a, "7MB", "tenant-a"), f"A lost its own settings: {row}"
    assert proxy.metrics().get("sluice_database_connections_currently_session_pinned") == 0


def test_prepared_statement_is_not_usable_by_the_next_client_on_the_same_backend(proxy_factory, app):
    proxy = pool_of(proxy_factory, 1)
    with proxy.connect(app.app_user, app.app_password, prepare_threshold=0) as a, \
            proxy.connect(app.app_user, app.app_password, prepare_threshold=0) as b:
        # psycopg prepares this as a named protocol-level statement (_pg3_0) at its first run.
        assert a.execute("select %s::int + 1", [41]).fetchone()[0] == 42
        pid_a = backend(a)
        raw_a, raw_b = a.pgconn, b.pgconn  # libpq itself: prepare and run a statement by name
        assert raw_a.prepare(b"leak_stmt", b"select $1::int * 2").status == psycopg.pq.ExecStatus.COMMAND_OK
        assert backend(b) == pid_a
        result = raw_b.exec_prepared(b"leak_stmt", [b"21"])
        assert result.status == psycopg.pq.ExecStatus.FATAL_ERROR, "B could run A's prepared statement"
        assert result.error_field(psycopg.pq.DiagnosticField.SQLSTATE) == b"26000"
        assert b"leak_stmt" in result.error_message
        result = raw_a.exec_prepared(b"leak_stmt", [b"21"])
        assert result.status == psycopg.pq.ExecStatus.TUPLES_OK and result.get_value(0, 0) == b"42", \
            "A lost its own prepared statement"
        assert backend(a) == pid_a
        assert a.execute("select %s::int + 1", [1]).fetchone()[0] == 2
    assert proxy.metrics().get("sluice_database_connections_currently_session_pinned") == 0


def set_state(kind, a):
    if kind == "temp_table":
        a.execute("CREATE TEMP TABLE leak_tmp (x int)")
        a.execute("INSERT INTO leak_tmp VALUES (1)")
    elif kind == "advisory_lock":
        a.execute("SELECT pg_advisory_lock(777001)")
    elif kind == "hold_cursor":
        a.execute("BEGIN")
        a.execute("DECLARE leak_cur CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, 3) g")
        a.execute("COMMIT")
    elif kind == "listen":
        a.execute("LISTEN leak_channel")


def sees_state(kind, conn):
    """Whether this client's session holds the state (its own, not anyone else's)."""
    if kind == "temp_table":
        return conn.execute("select to_regclass('pg_temp.leak_tmp') is not null").fetchone()[0]
    if kind == "advisory_lock":
        return conn.execute("select count(*) from pg_locks where locktype = 'advisory' and objid = 777001"
                            " and pid = pg_backend_pid() and granted").fetchone()[0] == 1
    if kind == "hold_cursor":
        return conn.execute("select count(*) from pg_cursors where name = 'leak_cur'").fetchone()[0] == 1
    if kind == "listen":
        return conn.execute("select count(*) from pg_listening_channels() c"
                            " where c = 'leak_channel'").fetchone()[0] == 1
    raise AssertionError(kind)


def collect_notifications(conn):
    """A list that fills with the (channel, payload) notifications psycopg takes in for `conn`."""
    got = []
    conn.add_notify_handler(lambda n: got.append((n.channel, n.payload)))
    return got


@pytest.mark.parametrize("kind", PINNED_KINDS)
def test_pinned_state_stays_with_its_client_and_is_wiped_after(proxy_factory, app, kind):
    # One worker: the wiped backend must be the one B borrows next, and with several workers B's
    # own worker would lend B its own idle connection first.
    proxy = proxy_factory(workers=1, connection_pool={"max_connections_percent": 2,
                                                       "max_idle_connections_percent": 2,
                                                       "connection_borrow_timeout": 10})
    with proxy.connect(app.app_user, app.app_password) as b:
        with proxy.connect(app.app_user, app.app_password) as a:
            set_state(kind, a)
            pid_a = backend(a)
            reason = {"temp_table": "temporary_object", "advisory_lock": "advisory_lock",
                      "hold_cursor": "hold_cursor", "listen": "listen"}[kind]
            assert proxy.metrics().get("sluice_database_connections_currently_session_pinned",
                                       reason=reason) == 1
            # B works meanwhile, on the other backend, and holds nothing of A's.
            assert backend(b) != pid_a
            assert not sees_state(kind, b), f"{kind} leaked to B"
            if kind == "listen":
                to_a, to_b = collect_notifications(a), collect_notifications(b)
                with proxy.connect(app.app_user, app.app_password) as c:
                    c.execute("NOTIFY leak_channel, 'for-a'")
                # psycopg takes notifications in while it runs a query.
                harness.wait_for(lambda: a.execute("select 1") and to_a, 10 * harness.SLOW, 0.1,
                                 "A's notification")
                assert to_a == [("leak_channel", "for-a")], f"A got {to_a}"
                for _ in range(5):
                    b.execute("select 1")
                assert to_b == [], f"B received notifications it never listened for: {to_b}"
            # A still has it, on the same backend.
            assert backend(a) == pid_a
            assert sees_state(kind, a), f"A lost its {kind}"
            if kind == "hold_cursor":
                assert [r[0] for r in a.execute("FETCH ALL FROM leak_cur").fetchall()] == [1, 2, 3]
            if kind == "temp_table":
                assert a.execute("select count(*) from leak_tmp").fetchone()[0] == 1

        # A has left: its backend is wiped and goes back to the pool last, so it is the one B
        # borrows next (idle connections are lent most recent first). B finds nothing of A's there.
        harness.wait_for(lambda: proxy.metrics().get("sluice_database_connections_currently_borrowed") == 0,
                         15 * harness.SLOW, 0.05, "A's backend to be wiped and returned")
        row = b.execute("select pg_backend_pid()").fetchone()
        assert row[0] == pid_a, "A's backend was closed instead of wiped and reused"
        assert not sees_state(kind, b), f"{kind} survived A's departure"
        assert proxy.metrics().get("sluice_database_connections_currently_session_pinned") == 0
