"""Protocol features through the proxy: COPY, errors in transactions, pipelining, notices,
ParameterStatus, cancel-free large results."""
import time

import psycopg
import pytest

from sluice_harness import harness


@pytest.fixture
def conn(proxy, app):
    c = proxy.connect(app.app_user, app.app_password)
    yield c
    c.close()


def test_copy_in_and_out(conn):
    conn.execute("create temp table copy_t (id int, name text)")  # pins the session; fine
    rows = [(i, f"name {i}\twith tab" if i % 7 == 0 else f"name {i}") for i in range(5000)]
    with conn.cursor() as cur:
        with cur.copy("copy copy_t (id, name) from stdin") as cp:
            for r in rows:
                cp.write_row(r)
        assert cur.rowcount == 5000
    assert conn.execute("select count(*), sum(id) from copy_t").fetchone() == (5000, sum(range(5000)))
    out = []
    with conn.cursor() as cur:
        with cur.copy("copy (select id, name from copy_t order by id) to stdout") as cp:
            for row in cp.rows():
                out.append((int(row[0]), row[1]))
    assert out == rows
    # raw COPY TO STDOUT in CSV through a regular table
    with conn.cursor() as cur:
        data = b""
        with cur.copy("copy (select id, balance from accounts order by id limit 3) to stdout (format csv)") as cp:
            for chunk in cp:
                data += bytes(chunk)
    assert data.decode().splitlines()[0].startswith("1,")
    assert conn.execute("select 1").fetchone()[0] == 1


def test_copy_in_error_then_recover(conn):
    with pytest.raises(psycopg.errors.BadCopyFileFormat):
        with conn.cursor() as cur:
            with cur.copy("copy kv (k, v) from stdin") as cp:
                cp.write(b"ok-key\tok\n")
                cp.write(b"bad\n")  # missing column
                cp.write(b"x\ty\tz\tw\n")
    assert conn.execute("select count(*) from kv where k = 'ok-key'").fetchone()[0] == 0
    assert conn.execute("select 2").fetchone()[0] == 2


def test_error_in_transaction_then_rollback(proxy, app):
    with proxy.connect(app.app_user, app.app_password, autocommit=False) as c:
        c.execute("select 1")
        with pytest.raises(psycopg.errors.DivisionByZero):
            c.execute("select 1 / 0")
        assert c.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            c.execute("select 1")
        c.rollback()
        assert c.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert c.execute("select 'after rollback'").fetchone()[0] == "after rollback"
        c.rollback()


def test_error_outside_transaction_keeps_connection(conn):
    with pytest.raises(psycopg.errors.UndefinedTable):
        conn.execute("select * from no_such_table")
    with pytest.raises(psycopg.errors.SyntaxError):
        conn.execute("selec 1")
    assert conn.execute("select 3").fetchone()[0] == 3


def test_pipeline_mode(conn):
    with conn.pipeline() as p:
        curs = [conn.execute("select %s::int * 2", (i,)) for i in range(20)]
        p.sync()
        more = [conn.execute("select %s::text", (f"v{i}",)) for i in range(10)]
        p.sync()
        conn.execute("insert into kv values ('pipe', 'x') on conflict (k) do update set v = 'y'")
        p.sync()
    assert [c.fetchone()[0] for c in curs] == [i * 2 for i in range(20)]
    assert [c.fetchone()[0] for c in more] == [f"v{i}" for i in range(10)]
    assert conn.execute("select v from kv where k = 'pipe'").fetchone()[0] in ("x", "y")


def test_pipeline_error_in_middle(conn):
    with pytest.raises(psycopg.errors.DivisionByZero):
        with conn.pipeline() as p:
            a = conn.execute("select 1")
            p.sync()
            conn.execute("select 1 / 0")
            conn.execute("select 2")  # skipped by the server until the next Sync
            p.sync()
    assert a.fetchone()[0] == 1
    assert conn.execute("select 4").fetchone()[0] == 4


def test_raw_pipelined_extended_queries(proxy, app):
    """Several Parse/Bind/Execute/Sync groups sent in one write; answers in order."""
    c = harness.RawPgClient(proxy.host, proxy.port)
    c.login(app.app_user, app.app_password)
    try:
        buf = b""
        for i in range(5):
            sql = f"select {i} + 100".encode()
            buf += harness.msg(b"P", b"\0" + sql + b"\0" + b"\0\0")
            buf += harness.msg(b"B", b"\0\0" + b"\0\0" + b"\0\0" + b"\0\0")
            buf += harness.msg(b"E", b"\0" + b"\0\0\0\0")
            buf += harness.msg(b"S")
        c.send(buf)
        values = []
        for i in range(5):
            r = c.read_result()
            assert r.error is None, r.error
            assert r.status == "I"
            values.append(r.rows[0][0])
        assert values == [str(i + 100) for i in range(5)]
    finally:
        c.close()


def test_notice_passthrough(conn):
    notices = []
    conn.add_notice_handler(lambda d: notices.append((d.severity, d.message_primary)))
    conn.execute("DO $$ BEGIN RAISE NOTICE 'hello from %', 'plpgsql'; RAISE WARNING 'careful'; END $$")
    assert ("NOTICE", "hello from plpgsql") in notices
    assert ("WARNING", "careful") in notices


def test_parameter_status_passthrough(proxy, pg, app):
    with psycopg.connect(pg.direct_dsn(app.app_user, app.app_password, "appdb")) as d:
        direct_version = d.info.parameter_status("server_version")
    with proxy.connect(app.app_user, app.app_password, application_name="ps-test") as c:
        assert c.info.parameter_status("server_version") == direct_version
        assert c.info.parameter_status("application_name") == "ps-test"
        assert c.info.parameter_status("client_encoding") == "UTF8"
        assert c.info.parameter_status("integer_datetimes") == "on"
        c.execute("SET application_name = 'changed'")
        assert c.info.parameter_status("application_name") == "changed"
        c.execute("SET TimeZone = 'Europe/Paris'")
        assert c.info.parameter_status("TimeZone") == "Europe/Paris"


def test_large_result_and_large_query(conn):
    n = conn.execute("select count(*) from (select repeat('z', 1000) from generate_series(1, 20000)) s").fetchone()[0]
    assert n == 20000
    rows = conn.execute("select repeat('z', 1000) from generate_series(1, 5000)").fetchall()
    assert len(rows) == 5000 and rows[0][0] == "z" * 1000
    big = "w" * 1_000_000
    assert conn.execute("select length(%s)", (big,)).fetchone()[0] == 1_000_000


def test_cancel_request(proxy, app):
    """A CancelRequest on a separate connection cancels the running statement of the right client."""
    with proxy.connect(app.app_user, app.app_password) as c:
        import threading
        t = threading.Timer(1.0, c.cancel)
        t.start()
        with pytest.raises(psycopg.errors.QueryCanceled):
            c.execute("select pg_sleep(20)")
        t.join()
        assert c.execute("select 5").fetchone()[0] == 5


def test_idle_clients_give_their_buffers_back_and_resume(proxy_factory, app):
    """A client idle for a second gives its read buffer and TLS buffers back; its next queries,
    large or prepared, work as before."""
    proxy = proxy_factory(require_tls=False)
    tls = proxy.connect(app.app_user, app.app_password, sslmode="require")
    plain = proxy.connect(app.app_user, app.app_password, sslmode="disable")
    try:
        for c in (tls, plain):
            assert c.execute("select 1").fetchone()[0] == 1
        time.sleep(1.8)  # past the 1 s after which idle clients release their buffers
        for c in (tls, plain):
            assert c.execute("select length(repeat('x', 1000000))").fetchone()[0] == 1000000
            assert c.execute("select %s::int + 1", (41,), prepare=True).fetchone()[0] == 42
            big = "y" * 300000
            assert c.execute("select length(%s)", (big,)).fetchone()[0] == 300000
        time.sleep(1.8)
        for c in (tls, plain):
            assert c.execute("select %s::int + 1", (1,), prepare=True).fetchone()[0] == 2
    finally:
        tls.close()
        plain.close()
