"""Per-client session state on shared server connections: startup parameters are honoured per
client, and session state (SET, temp tables, advisory locks, LISTEN) never leaks to another client."""
import psycopg
import pytest

from sluice_harness import harness

PROBE = ("select current_setting('search_path'), current_setting('application_name'),"
         " current_setting('TimeZone'), current_setting('DateStyle'), current_setting('extra_float_digits'),"
         " current_setting('statement_timeout'), current_setting('client_encoding'),"
         " '2020-01-02 03:04:05+00'::timestamptz::text, (0.1::float8)::text,"
         " to_regclass('marker') is not null")

A_PARAMS = {"application_name": "a", "options": "-c search_path=a_schema", "TimeZone": "Asia/Tokyo",
            "DateStyle": "SQL, DMY", "extra_float_digits": "0"}
C_PARAMS = {"application_name": "c", "client_encoding": "LATIN1",
            "options": "-c statement_timeout=12345 -c search_path=public"}

REPORTED = ("application_name", "TimeZone", "DateStyle", "client_encoding", "server_version",
            "standard_conforming_strings", "integer_datetimes", "IntervalStyle", "is_superuser",
            "session_authorization", "server_encoding")


def cap1_proxy(proxy_factory, borrow_timeout=10):
    return proxy_factory(connection_pool={"max_connections_percent": 1, "max_idle_connections_percent": 1,
                                          "connection_borrow_timeout": borrow_timeout})


def _raw_row(client):
    r = client.query(PROBE)
    assert r.error is None, r.error
    return tuple(r.rows[0])


def _psy_row(conn):
    # psycopg returns typed values; compare as text like the raw client
    return tuple(None if v is None else ("t" if v is True else "f" if v is False else str(v))
                 for v in conn.execute(PROBE).fetchone())


def test_startup_parameters_per_client_on_shared_connection(proxy_factory, pg, app):
    proxy = cap1_proxy(proxy_factory)

    # Ground truth: the same clients straight to PostgreSQL.
    with harness.RawPgClient(pg.host, pg.port) as direct_a:
        direct_a.login(app.app_user, app.app_password, **A_PARAMS)
        want_a = _raw_row(direct_a)
        want_a_params = {k: direct_a.params.get(k) for k in REPORTED}
    with psycopg.connect(pg.direct_dsn(app.app_user, app.app_password, "appdb")) as direct_b:
        want_b = _psy_row(direct_b)
    with psycopg.connect(pg.direct_dsn(app.app_user, app.app_password, "appdb", **C_PARAMS)) as direct_c:
        want_c = _psy_row(direct_c)
    assert len({want_a, want_b, want_c}) == 3, "the probe does not tell the clients apart"

    a = harness.RawPgClient(proxy.host, proxy.port)
    a.login(app.app_user, app.app_password, **A_PARAMS)
    b = proxy.connect(app.app_user, app.app_password)
    c = proxy.connect(app.app_user, app.app_password, **C_PARAMS)
    try:
        # ParameterStatus messages at startup reflect the client's own parameters
        assert {k: a.params.get(k) for k in REPORTED} == want_a_params
        assert c.info.parameter_status("application_name") == "c"
        assert c.info.encoding in ("iso8859-1", "latin1", "latin-1"), c.info.encoding

        pids = set()
        for _ in range(3):
            assert _raw_row(a) == want_a
            assert _psy_row(b) == want_b
            assert _psy_row(c) == want_c
            assert c.execute("select 'é'").fetchone()[0] == "é"
            pids.add(a.scalar("select pg_backend_pid()"))
            pids.add(str(b.execute("select pg_backend_pid()").fetchone()[0]))
            pids.add(str(c.execute("select pg_backend_pid()").fetchone()[0]))
        assert len(pids) == 1, f"clients did not share the single server connection: {pids}"
    finally:
        a.close()
        b.close()
        c.close()


def _defaults(pg, app):
    with psycopg.connect(pg.direct_dsn(app.app_user, app.app_password, "appdb")) as d:
        return d.execute("select current_setting('search_path'), current_setting('TimeZone'),"
                         " current_setting('work_mem'), current_setting('application_name')").fetchone()


def _borrow_after_leave(proxy, app, fn):
    def attempt():
        try:
            with proxy.connect(app.app_user, app.app_password) as b:
                return (fn(b),)
        except psycopg.OperationalError:
            return None
    return harness.wait_for(attempt, 15 * harness.SLOW, 0.2, "the pinned connection to be released")[0]


def test_session_state_never_leaks_after_disconnect(proxy_factory, pg, app):
    proxy = cap1_proxy(proxy_factory, borrow_timeout=2)
    defaults = _defaults(pg, app)
    with proxy.connect(app.app_user, app.app_password) as a:
        pid_a = a.execute("select pg_backend_pid()").fetchone()[0]
        a.execute("SET search_path = a_schema")
        a.execute("SET TimeZone = 'America/New_York'")
        a.execute("SET work_mem = '9MB'")
        a.execute("SET application_name = 'leaky'")
        a.execute("CREATE TEMP TABLE tmp_leak (x int)")
        a.execute("INSERT INTO tmp_leak VALUES (1)")
        a.execute("SELECT pg_advisory_lock(4242)")
        a.execute("LISTEN leak_channel")
        a.execute("PREPARE leak_stmt AS SELECT 1")
        assert a.execute("select current_setting('search_path'), current_setting('TimeZone'),"
                         " current_setting('work_mem'), current_setting('application_name')").fetchone() \
            == ("a_schema", "America/New_York", "9MB", "leaky")
        assert a.execute("select count(*) from tmp_leak").fetchone()[0] == 1

    def probe(b):
        return b.execute(
            "select current_setting('search_path'), current_setting('TimeZone'), current_setting('work_mem'),"
            " current_setting('application_name'), to_regclass('pg_temp.tmp_leak') is null"
            " and to_regclass('tmp_leak') is null,"
            " (select count(*) from pg_locks where locktype = 'advisory' and objid = 4242),"
            " (select count(*) from pg_listening_channels()),"
            " (select count(*) from pg_prepared_statements where name = 'leak_stmt'),"
            " pg_backend_pid()").fetchone()

    row = _borrow_after_leave(proxy, app, probe)
    assert row[:4] == defaults, f"session settings leaked: {row[:4]} vs defaults {defaults}"
    assert row[4] is True, "temp table leaked to another client"
    assert row[5] == 0, "advisory lock still held"
    assert row[6] == 0, "LISTEN leaked"
    assert row[7] == 0, "prepared statement leaked"
    assert pg.backend_count(app.app_user) <= 1
    _ = pid_a  # the connection may have been cleaned (same pid) or replaced (new pid): both fine


def test_set_is_not_visible_to_concurrent_client(proxy_factory, pg, app):
    """With room for two server connections, a pinned client's SETs stay on its own connection."""
    proxy = proxy_factory(connection_pool={"max_connections_percent": 2, "max_idle_connections_percent": 2,
                                           "connection_borrow_timeout": 10})
    defaults = _defaults(pg, app)
    with proxy.connect(app.app_user, app.app_password) as a, proxy.connect(app.app_user, app.app_password) as b:
        a.execute("SET search_path = a_schema")
        a.execute("CREATE TEMP TABLE tmp_only_a (x int)")
        for _ in range(5):
            assert b.execute("select current_setting('search_path'), to_regclass('tmp_only_a') is null"
                             ).fetchone() == (defaults[0], True)
            assert a.execute("select which from marker").fetchone()[0] == "a_schema"
            with pytest.raises(psycopg.errors.UndefinedTable):
                b.execute("select which from marker")


def test_temp_table_in_transaction_then_disconnect(proxy_factory, pg, app):
    proxy = cap1_proxy(proxy_factory, borrow_timeout=2)
    with proxy.connect(app.app_user, app.app_password, autocommit=False) as a:
        a.execute("CREATE TEMP TABLE tmp_txn (x int) ON COMMIT PRESERVE ROWS")
        a.execute("INSERT INTO tmp_txn VALUES (1)")
        a.commit()
        assert a.execute("select count(*) from tmp_txn").fetchone()[0] == 1
        a.commit()
    gone = _borrow_after_leave(proxy, app, lambda b: b.execute("select to_regclass('tmp_txn') is null").fetchone()[0])
    assert gone is True


@pytest.mark.parametrize("how", ["terminate", "error_state", "socket_close"])
def test_abandoned_transaction_is_rolled_back_not_inherited(proxy_factory, pg, app, how):
    """A client leaves inside a transaction: its work is rolled back and the next client on the same
    (cap 1) connection starts outside any transaction."""
    proxy = cap1_proxy(proxy_factory, borrow_timeout=5)
    key = f"abandoned-{how}"
    with pg.superuser_conn("appdb") as s:
        s.execute("delete from kv where k in (%s, %s)", (key, key + "-b"))
    if how == "socket_close":
        raw = harness.RawPgClient(proxy.host, proxy.port)
        raw.login(app.app_user, app.app_password)
        r = raw.query(f"BEGIN; INSERT INTO kv VALUES ('{key}', 'x')")
        assert r.status == "T"
        raw.sock.close()
    else:
        a = proxy.connect(app.app_user, app.app_password)
        a.execute("BEGIN")
        a.execute("insert into kv values (%s, 'x')", (key,))
        if how == "error_state":
            with pytest.raises(psycopg.errors.DivisionByZero):
                a.execute("select 1 / 0")
        a.close()  # Terminate while in a transaction

    def b_probe(b):
        status_before = b.info.transaction_status
        row = b.execute("select count(*) from kv where k = %s", (key,)).fetchone()[0]
        # if we were inside A's transaction, this would be visible / fail as aborted
        b.execute("insert into kv values (%s, 'b') on conflict (k) do nothing", (key + "-b",))
        return status_before, row, b.info.transaction_status
    status_before, row, status_after = _borrow_after_leave(proxy, app, b_probe)
    assert row == 0, "the abandoned transaction's insert is visible"
    assert status_after == psycopg.pq.TransactionStatus.IDLE
    # B's autocommit insert is durable and A's insert never appears
    assert pg.scalar("select count(*) from kv where k = %s", "appdb", [key]) == 0
    assert pg.scalar("select count(*) from kv where k = %s", "appdb", [key + "-b"]) == 1
    assert pg.scalar("select count(*) from pg_stat_activity where usename = %s and state like 'idle in transaction%%'",
                     "postgres", [app.app_user]) == 0


def test_pinned_connection_is_wiped_and_reused_not_reopened(proxy_factory, pg, app):
    """When a pinned client leaves, DISCARD ALL wipes every kind of session state and the same backend
    serves the next client: no reconnect, no leak."""
    proxy = cap1_proxy(proxy_factory, borrow_timeout=10)
    defaults = _defaults(pg, app)
    with proxy.connect(app.app_user, app.app_password, prepare_threshold=None) as a:
        pid_a = a.execute("select pg_backend_pid()").fetchone()[0]
        a.execute("CREATE TEMP TABLE wiped_tmp (x int)")
        a.execute("SELECT pg_advisory_lock(5151)")
        a.execute("LISTEN wiped_channel")
        a.execute("BEGIN")
        a.execute("DECLARE wiped_cursor CURSOR WITH HOLD FOR SELECT 1")
        a.execute("COMMIT")
        a.execute("PREPARE wiped_stmt AS SELECT 1")
        a.execute("SET work_mem = '9MB'")
        a.execute(f"SET ROLE {app.app_user}")
        a.execute("BEGIN")  # and leave inside a transaction
        a.execute("select 1")

    def probe(b):
        return b.execute(
            "select pg_backend_pid(), current_setting('search_path'), current_setting('TimeZone'),"
            " current_setting('work_mem'), current_setting('application_name'),"
            " to_regclass('pg_temp.wiped_tmp') is null,"
            " (select count(*) from pg_locks where locktype = 'advisory' and objid = 5151),"
            " (select count(*) from pg_listening_channels()),"
            " (select count(*) from pg_cursors),"
            " (select count(*) from pg_prepared_statements),"
            " current_user = session_user").fetchone()

    row = _borrow_after_leave(proxy, app, probe)
    assert row[0] == pid_a, "the pinned connection was closed and reopened instead of wiped"
    assert row[1:5] == defaults, f"settings leaked: {row[1:5]} vs {defaults}"
    assert row[5:] == (True, 0, 0, 0, 0, True), f"state leaked: {row[5:]}"
    assert proxy.metrics().get("sluice_database_connections_currently_session_pinned") == 0
