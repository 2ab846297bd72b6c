"""Real client libraries and tools through the proxy: psql, psycopg2 (libpq), psycopg 3, pgbench."""
import subprocess

import psycopg
import psycopg2
import pytest

from sluice_harness import harness

CLIENTS = 4 if harness.SANITIZED else 8
TXNS = 25 if harness.SANITIZED else 100


def test_psql_select_1(proxy, app):
    r = subprocess.run([harness.PSQL, "-X", "-At", "-c", "select 1"], env=proxy.env(app.app_user, app.app_password),
                       capture_output=True, text=True, timeout=60 * harness.SLOW)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1"


def test_psql_script(proxy, app):
    script = """
\\set ON_ERROR_STOP 1
BEGIN;
INSERT INTO kv VALUES ('psql-script', 'v1') ON CONFLICT (k) DO UPDATE SET v = excluded.v;
UPDATE kv SET v = 'v2' WHERE k = 'psql-script';
COMMIT;
SELECT v FROM kv WHERE k = 'psql-script';
SELECT count(*) FROM kv WHERE k = 'psql-script';
"""
    r = subprocess.run([harness.PSQL, "-X", "-At", "-q"], input=script, env=proxy.env(app.app_user, app.app_password),
                       capture_output=True, text=True, timeout=60 * harness.SLOW)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["v2", "1"], r.stdout


def test_psycopg2(proxy, app):
    conn = psycopg2.connect(proxy.dsn(app.app_user, app.app_password))
    try:
        cur = conn.cursor()
        cur.execute("select %s::int + %s::int, %s::text", (40, 2, "héllo"))
        assert cur.fetchone() == (42, "héllo")
        cur.execute("insert into kv values ('psycopg2', 'a') on conflict (k) do update set v = 'a'")
        conn.commit()
        cur.execute("update kv set v = 'rolled back' where k = 'psycopg2'")
        conn.rollback()
        cur.execute("select v from kv where k = 'psycopg2'")
        assert cur.fetchone()[0] == "a"
        cur.execute("select generate_series(1, 5000)")
        assert len(cur.fetchall()) == 5000
        conn.commit()
    finally:
        conn.close()


def test_psycopg3(proxy, app):
    with proxy.connect(app.app_user, app.app_password, autocommit=False) as c:
        # psycopg 3 uses the extended protocol with parameters
        assert c.execute("select %s::int * 2, %s", (21, "x")).fetchone() == (42, "x")
        c.execute("insert into kv values ('psycopg3', '1') on conflict (k) do update set v = '1'")
        c.commit()
        with c.transaction():
            c.execute("update kv set v = '2' where k = 'psycopg3'")
        assert c.execute("select v from kv where k = 'psycopg3'").fetchone()[0] == "2"
        rows = c.execute("select i, repeat('x', i) from generate_series(1, 300) i").fetchall()
        assert len(rows) == 300 and rows[-1][1] == "x" * 300
        # binary results
        cur = c.cursor(binary=True)
        assert cur.execute("select 123456789012::bigint, 1.5::float8").fetchone() == (123456789012, 1.5)
        c.commit()


def test_psycopg3_prepared_statements(proxy, app):
    """psycopg prepares statements server-side after a few executions (named statements pin the session)."""
    with proxy.connect(app.app_user, app.app_password, prepare_threshold=0) as c:
        for i in range(20):
            assert c.execute("select %s::int + 1", (i,)).fetchone()[0] == i + 1
        for i in range(5):
            assert c.execute("select %s::text || 'x'", (str(i),), prepare=True).fetchone()[0] == f"{i}x"


def _pgbench(proxy, app, *args):
    r = harness.run_pgbench(proxy.env(app.app_user, app.app_password),
                            ["-n", "-c", str(CLIENTS), "-j", "2", "-t", str(TXNS), *args],
                            timeout=240 * harness.SLOW)
    assert r.ok(), r.summary()
    assert r.processed == CLIENTS * TXNS, r.summary()
    return r


@pytest.mark.parametrize("mode", ["simple", "extended", "prepared"])
def test_pgbench_tpcb(proxy, app, mode):
    _pgbench(proxy, app, "-M", mode)


@pytest.mark.parametrize("mode", ["simple", "extended"])
def test_pgbench_select_only_reconnect(proxy, app, mode):
    """-C: a new TLS connection for every transaction."""
    _pgbench(proxy, app, "-M", mode, "-S", "-C")


def test_many_sequential_connections_psycopg(proxy, app):
    for i in range(30):
        with psycopg.connect(proxy.dsn(app.app_user, app.app_password)) as c:
            assert c.execute("select %s::int", (i,)).fetchone()[0] == i


def test_unknown_database_error_passthrough(proxy, app):
    with pytest.raises(psycopg.OperationalError) as ei:
        psycopg.connect(proxy.dsn(app.app_user, app.app_password, dbname="no_such_db"))
    assert 'database "no_such_db" does not exist' in str(ei.value)
    with proxy.connect(app.app_user, app.app_password) as c:
        assert c.execute("select 1").fetchone()[0] == 1
