"""SQL PREPARE / EXECUTE / DEALLOCATE in transaction pooling: no pinning, PostgreSQL's own answers.

The proxy renames each client's SQL statements to its own server names and prepares them on
whatever server connection the client borrows. These tests run the same script straight against
PostgreSQL and through the proxy, while other clients push the scripted client from one server
connection to another, and require the very same outcome: rows, command tags, and errors with
their SQLSTATE, message and position."""

import psycopg
import pytest

from sluice_harness import harness

PIN_LOG = "was pinned"

SCRIPT = [
    "PREPARE a AS SELECT 1 AS one",
    "EXECUTE a",
    "PREPARE a AS SELECT 2",  # 42P05
    "EXECUTE nosuch",  # 26000
    "DEALLOCATE nosuch",  # 26000
    "PREPARE typed (int, text) AS SELECT $1 + 1, $2 || '!'",
    "EXECUTE typed (41, 'hi')",
    "EXPLAIN (COSTS off) EXECUTE typed(1, 'x')",
    "PREPARE bad AS SELECT nosuch_column",  # 42703, with a position
    "EXECUTE typed (1, 'x', 3)",  # 42601: wrong number of parameters
    "EXECUTE bad",  # 26000
    "PREPARE Mixed AS SELECT 'folded'",
    'EXECUTE "mixed"',
    'PREPARE "Quoted ""Name""" AS SELECT \'kept case\'',
    'EXECUTE "Quoted ""Name"""',
    "BEGIN",
    "PREPARE in_tx AS SELECT 'kept'",
    "SELECT 1/0",  # 22012
    "EXECUTE a",  # 25P02 in the failed transaction
    "DEALLOCATE a",  # 25P02
    "PREPARE other AS SELECT 3",  # 25P02
    "DEALLOCATE ALL",  # 25P02
    "ROLLBACK",
    "EXECUTE in_tx",  # 'kept': PREPARE is not transactional
    "EXECUTE other",  # 26000
    "BEGIN",
    "EXECUTE typed(2, 'in a transaction')",
    "DEALLOCATE a",
    "COMMIT",
    "EXECUTE a",  # 26000
    "DEALLOCATE PREPARE typed",
    "PREPARE x AS SELECT $1::int * 2 -- a trailing comment",
    "EXECUTE x(21)",
    "CREATE TEMP TABLE doubled AS EXECUTE x(5)",
    "SELECT * FROM doubled",
    "DEALLOCATE ALL",
    "EXECUTE x(1)",  # 26000
    "EXECUTE in_tx",  # 26000
]


def outcome(conn, sql):
    try:
        cur = conn.execute(sql)
        return ("ok", cur.statusmessage, cur.fetchall() if cur.description else None)
    except psycopg.Error as e:
        return ("error", e.sqlstate, e.diag.message_primary, e.diag.statement_position)


def test_same_answers_as_postgres_while_moving_between_connections(proxy_factory, pg, app):
    direct_results = []
    with psycopg.connect(pg.direct_dsn(app.app_user, app.app_password, app.dbname), autocommit=True) as d:
        for sql in SCRIPT:
            direct_results.append(outcome(d, sql))
    assert ("error", "42P05", 'prepared statement "a" already exists', None) in direct_results  # sanity

    proxy = proxy_factory(connection_pool={"max_connections_percent": 3, "max_idle_connections_percent": 3})
    proxied = []
    pids = set()
    with proxy.connect(app.app_user, app.app_password) as a:
        for i in harness.rotating_holders(proxy, app.app_user, app.app_password, len(SCRIPT)):
            proxied.append(outcome(a, SCRIPT[i]))
            if a.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                # Not prepared by psycopg: the script's DEALLOCATE ALL would drop it, as PostgreSQL does.
                pids.add(a.execute("select pg_backend_pid()", prepare=False).fetchone()[0])
    for sql, want, got in zip(SCRIPT, direct_results, proxied):
        assert got == want, f"{sql}: direct {want}, proxy {got}"
    assert len(pids) >= 2, "the client never moved to another server connection"
    text = proxy.log_text()
    # Only the temporary table pins (CREATE TEMP TABLE … AS EXECUTE), nothing before it.
    assert text.count(PIN_LOG) == 1 and "temporary table" in text.split(PIN_LOG, 1)[1].split("\n", 1)[0]


def test_many_clients_share_a_small_pool_without_pins(proxy_factory, pg, app):
    """Clients outnumber server connections 3 to 1. Each prepares statements with SQL (some with
    the same text as the others', some with a type list), then runs them with simple-protocol
    EXECUTE (parameters merged by psycopg's ClientCursor) and through the extended protocol, where
    after 5 uses psycopg runs its own named statement of "EXECUTE mine(2, 3)", which runs the
    client's statement in turn. (PostgreSQL takes no $n parameters in EXECUTE's arguments.)"""
    proxy = proxy_factory(connection_pool={"max_connections_percent": 2, "max_idle_connections_percent": 2})
    sampler = harness.ActivitySampler(pg, app.app_user)
    sampler.start()

    def client(n):
        with proxy.connect(app.app_user, app.app_password) as c:
            bound_here = psycopg.ClientCursor(c)  # parameters merged into a simple query
            c.execute("PREPARE shared AS SELECT $1::int + 1000")
            c.execute(f"PREPARE mine (int, int) AS SELECT $1 * $2 + {n}")
            for i in range(25):
                assert c.execute(f"EXECUTE shared({i})").fetchone()[0] == i + 1000
                assert bound_here.execute("EXECUTE mine(%s, %s)", (i, 2)).fetchone()[0] == 2 * i + n
                # Binary results make psycopg use the extended protocol; from the 5th time on
                # it runs its own named statement of this text.
                assert c.execute("EXECUTE mine(2, 3)", binary=True).fetchone()[0] == 6 + n
                with c.transaction():
                    assert c.execute("EXECUTE shared(7)", binary=True).fetchone()[0] == 1007
            c.execute("DEALLOCATE mine")
            with pytest.raises(psycopg.errors.InvalidSqlStatementName):
                c.execute("EXECUTE mine(1, 1)")
            assert c.execute("EXECUTE shared(1)").fetchone()[0] == 1001

    failures = harness.run_concurrently(client, 6)
    peak = sampler.stop()
    assert not failures, failures
    assert peak <= 2, f"{peak} server connections for a cap of 2"
    assert PIN_LOG not in proxy.log_text()
    assert proxy.metrics().get("sluice_database_connections_currently_session_pinned", reason="sql_prepare") == 0


def test_statements_beyond_the_server_lru_are_prepared_again(proxy_factory, app):
    proxy = proxy_factory(connection_pool={"max_connections_percent": 3, "max_idle_connections_percent": 3,
                                           "max_prepared_statements": 2})
    with proxy.connect(app.app_user, app.app_password) as a:
        for k in range(5):
            a.execute(f"PREPARE s{k} AS SELECT {k} * $1::int")
        for i in harness.rotating_holders(proxy, app.app_user, app.app_password, 12):
            for k in range(5):
                assert a.execute(f"EXECUTE s{k}({i})").fetchone()[0] == k * i
            held = a.execute("select count(*) from pg_prepared_statements").fetchone()[0]
            assert held <= 2, f"{held} statements on a server connection whose LRU holds 2"
    assert PIN_LOG not in proxy.log_text()


def test_others_cannot_execute_a_clients_statement(proxy_factory, app):
    proxy = proxy_factory(connection_pool={"max_connections_percent": 1, "max_idle_connections_percent": 1,
                                           "connection_borrow_timeout": 30})
    with proxy.connect(app.app_user, app.app_password) as a, proxy.connect(app.app_user, app.app_password) as b:
        a.execute("PREPARE secret AS SELECT 'only for A'")
        assert a.execute("EXECUTE secret").fetchone()[0] == "only for A"
        server_name = b.execute("select name from pg_prepared_statements").fetchone()[0]
        assert server_name.startswith("sluice_"), server_name
        # B shares A's server connection, where the statement lives under the proxy's name:
        # neither name is B's.
        for name in ("secret", server_name):
            with pytest.raises(psycopg.errors.InvalidSqlStatementName):
                b.execute(f"EXECUTE {name}")
        assert a.execute("EXECUTE secret").fetchone()[0] == "only for A"


def test_psycopg_statement_cache_maintenance_does_not_pin(proxy_factory, pg, app):
    """psycopg 3 deallocates its own statements through the extended protocol: one by one when its
    cache (prepared_max) overflows, and all of them after a ROLLBACK. Neither may pin, and the
    statements it keeps must go on working on any server connection."""
    proxy = proxy_factory(connection_pool={"max_connections_percent": 2, "max_idle_connections_percent": 2})
    sampler = harness.ActivitySampler(pg, app.app_user)
    sampler.start()

    def client(n):
        with proxy.connect(app.app_user, app.app_password, prepare_threshold=0) as c:
            c.prepared_max = 2
            for i in range(30):
                k = i % 4  # four texts through a cache of two: a DEALLOCATE per statement
                assert c.execute(f"select %s::int + {k}", (i,)).fetchone()[0] == i + k
                if i % 7 == 3:
                    c.execute("BEGIN")
                    c.execute("select %s::int", (i,))
                    c.execute("ROLLBACK")  # psycopg then sends DEALLOCATE ALL

    failures = harness.run_concurrently(client, 4)
    peak = sampler.stop()
    assert not failures, failures
    assert peak <= 2, f"{peak} server connections for a cap of 2"
    assert PIN_LOG not in proxy.log_text()


def test_sql_execute_of_a_protocol_statement_with_declared_types(proxy_factory, app):
    """EXECUTE through SQL of a statement the client prepared with a protocol Parse: on its own
    connection it runs; on one that lacks it, whose declared parameter type OIDs have no SQL
    spelling here, the proxy refuses with 0A000 instead of running something else."""
    from test_prepared import SYNC, exchange, parse, raw_client
    proxy = proxy_factory(connection_pool={"max_connections_percent": 3, "max_idle_connections_percent": 3})
    untyped_seen = typed_refused = False
    with raw_client(proxy, app) as a:
        assert exchange(a, parse("typed_oid", "select $1::int * 2", [23]), SYNC)[-1][0] == b"Z"
        exchange(a, parse("untyped", "select $1::int * 3"), SYNC)
        assert a.query("EXECUTE typed_oid(21)").rows == [["42"]]  # the connection it was parsed on
        for _ in harness.rotating_holders(proxy, app.app_user, app.app_password, 3):
            # Without declared types the proxy prepares it with SQL anywhere.
            assert a.query("EXECUTE untyped(5)").rows == [["15"]]
            untyped_seen = True
            typed = a.query("EXECUTE typed_oid(21)")
            if typed.error is not None:
                assert typed.error["C"] == "0A000" and "typed_oid" in typed.error["M"], typed.error
                typed_refused = True
            else:
                assert typed.rows == [["42"]]
        assert a.query("select 1").rows == [["1"]]
    assert untyped_seen and typed_refused, "the client never met a connection that lacked the statement"
    assert PIN_LOG not in proxy.log_text()
