"""Named prepared statements in transaction pooling: no pinning, no leaks, PostgreSQL's own errors.

Clients here outnumber server connections, so every test also proves that a statement follows its
client from one server connection to another (or shares one with other clients) correctly."""
import struct
import threading

import pytest

from sluice_harness import harness
from sluice_harness.harness import msg

PIN_LOG = "was pinned"


# ---------------------------------------------------------------- raw protocol helpers

def parse(name: str, sql: str, types=()) -> bytes:
    return msg(b"P", name.encode() + b"\0" + sql.encode() + b"\0" + struct.pack("!H", len(types))
               + b"".join(struct.pack("!I", t) for t in types))


def bind(statement: str, params=(), portal: str = "") -> bytes:
    body = portal.encode() + b"\0" + statement.encode() + b"\0" + struct.pack("!H", 0)
    body += struct.pack("!H", len(params))
    for p in params:
        data = str(p).encode()
        body += struct.pack("!i", len(data)) + data
    return msg(b"B", body + struct.pack("!H", 0))


def describe_statement(name: str) -> bytes:
    return msg(b"D", b"S" + name.encode() + b"\0")


def close_statement(name: str) -> bytes:
    return msg(b"C", b"S" + name.encode() + b"\0")


def execute(portal: str = "") -> bytes:
    return msg(b"E", portal.encode() + b"\0" + struct.pack("!I", 0))


SYNC = msg(b"S")


def exchange(client: harness.RawPgClient, *messages: bytes):
    """Sends the messages (ending with Sync) and returns the replies up to ReadyForQuery as
    (type, payload) pairs."""
    client.send(b"".join(messages))
    replies = []
    while True:
        t, p = client.read_msg()
        replies.append((t, p))
        if t == b"Z":
            return replies


def types(replies) -> str:
    return "".join(t.decode() for t, _ in replies)


def rows(replies):
    out = []
    for t, p in replies:
        if t == b"D":
            (n,) = struct.unpack("!H", p[:2])
            i, row = 2, []
            for _ in range(n):
                (ln,) = struct.unpack("!i", p[i:i + 4])
                i += 4
                row.append(None if ln < 0 else p[i:i + ln].decode())
                i += max(ln, 0)
            out.append(row)
    return out


def error(replies):
    for t, p in replies:
        if t == b"E":
            return harness.parse_error_fields(p)
    return None


def run_prepared(client, name: str, *params):
    return exchange(client, bind(name, params), execute(), SYNC)


@pytest.fixture
def one_connection_proxy(proxy_factory):
    """Every client shares one server connection: whatever one leaves there, the next meets."""
    return proxy_factory(connection_pool={"max_connections_percent": 1, "max_idle_connections_percent": 1,
                                          "connection_borrow_timeout": 30})


def raw_client(proxy, app):
    c = harness.RawPgClient(proxy.host, proxy.port)
    c.login(app.app_user, app.app_password)
    return c


# ---------------------------------------------------------------- semantics

def test_statement_follows_its_client_and_is_invisible_to_others(one_connection_proxy, app):
    proxy = one_connection_proxy
    with raw_client(proxy, app) as a, raw_client(proxy, app) as b:
        replies = exchange(a, parse("s1", "select 'from A'::text"), SYNC)
        assert types(replies) == "1Z", replies
        # B shares the server connection, where "s1" is prepared under another name: B must not see it.
        replies = run_prepared(b, "s1")
        err = error(replies)
        assert err and err["C"] == "26000", replies
        assert err["M"] == 'prepared statement "s1" does not exist'
        assert types(replies) == "EZ"
        assert b.scalar("select 'B still works'") == "B still works"
        # A still has it.
        assert rows(run_prepared(a, "s1")) == [["from A"]]
        assert PIN_LOG not in proxy.log_text()


def test_statement_survives_moving_to_another_server_connection(proxy_factory, pg, app):
    proxy = proxy_factory(connection_pool={"max_connections_percent": 3, "max_idle_connections_percent": 3})
    with raw_client(proxy, app) as a:
        exchange(a, parse("pid_and_value", "select pg_backend_pid(), $1::int * 2", [23]), SYNC)
        pids = set()
        for i in harness.rotating_holders(proxy, app.app_user, app.app_password, 6):
            replies = run_prepared(a, "pid_and_value", i)
            assert error(replies) is None, replies
            pid, doubled = rows(replies)[0]
            assert int(doubled) == 2 * i
            pids.add(pid)
        assert len(pids) >= 2, f"A always ran on backend {pids}: the test did not move it"
    assert PIN_LOG not in proxy.log_text()


def test_bad_sql_fails_at_parse_time_and_creates_nothing(one_connection_proxy, app):
    with raw_client(one_connection_proxy, app) as a:
        replies = exchange(a, parse("bad", "selec 1"), SYNC)
        err = error(replies)
        assert err and err["C"] == "42601", replies
        assert types(replies) == "EZ"
        err = error(run_prepared(a, "bad"))
        assert err and err["C"] == "26000" and err["M"] == 'prepared statement "bad" does not exist'
        # The name is free: preparing it again with good SQL works.
        assert types(exchange(a, parse("bad", "select 7"), SYNC)) == "1Z"
        assert rows(run_prepared(a, "bad")) == [["7"]]


def test_duplicate_name_is_an_error_as_in_postgresql(one_connection_proxy, app):
    with raw_client(one_connection_proxy, app) as a:
        assert types(exchange(a, parse("dup", "select 1"), SYNC)) == "1Z"
        replies = exchange(a, parse("dup", "select 2"), bind("dup"), execute(), SYNC)
        err = error(replies)
        assert err and err["C"] == "42P05" and err["M"] == 'prepared statement "dup" already exists'
        assert types(replies) == "EZ", "the server must skip to Sync after the error, as PostgreSQL does"
        assert rows(run_prepared(a, "dup")) == [["1"]]


def test_error_inside_a_transaction_block_fails_the_block(one_connection_proxy, app):
    with raw_client(one_connection_proxy, app) as a:
        assert a.query("BEGIN").status == "T"
        replies = run_prepared(a, "never_prepared")
        assert error(replies)["C"] == "26000"
        assert replies[-1][1] == b"E", "the transaction block must be failed, as directly"
        assert a.query("ROLLBACK").status == "I"


def test_close_then_reuse_the_name(one_connection_proxy, app):
    with raw_client(one_connection_proxy, app) as a:
        exchange(a, parse("s", "select 'old'::text"), SYNC)
        assert types(exchange(a, close_statement("s"), SYNC)) == "3Z"
        assert error(run_prepared(a, "s"))["C"] == "26000"
        exchange(a, parse("s", "select 'new'::text"), SYNC)
        assert rows(run_prepared(a, "s")) == [["new"]]
        # Closing a name that does not exist is not an error.
        assert types(exchange(a, close_statement("nothing"), SYNC)) == "3Z"


def test_describe_a_named_statement(one_connection_proxy, app):
    with raw_client(one_connection_proxy, app) as a, raw_client(one_connection_proxy, app) as b:
        exchange(a, parse("d", "select $1::int + 1 as next"), SYNC)
        b.scalar("select 1")  # the connection changes hands in between
        replies = exchange(a, describe_statement("d"), SYNC)
        assert types(replies) == "tTZ", replies
        assert replies[1][1].startswith(struct.pack("!H", 1) + b"next\0")


def test_pipeline_with_an_error_undoes_what_followed(one_connection_proxy, app):
    """Parse ok, run it, Parse bad SQL, Parse another: the server skips the last one, so it must not exist."""
    with raw_client(one_connection_proxy, app) as a:
        replies = exchange(a, parse("p1", "select 1"), bind("p1"), execute(),
                           parse("p2", "selec 2"), parse("p3", "select 3"), SYNC)
        assert types(replies) == "12DCEZ", replies
        assert error(run_prepared(a, "p3"))["C"] == "26000"
        assert error(run_prepared(a, "p2"))["C"] == "26000"
        assert rows(run_prepared(a, "p1")) == [["1"]]


def test_identical_statements_are_prepared_once_per_server_connection(one_connection_proxy, app):
    with raw_client(one_connection_proxy, app) as a, raw_client(one_connection_proxy, app) as b:
        assert types(exchange(a, parse("mine", "select 42"), SYNC)) == "1Z"
        assert types(exchange(b, parse("yours", "select 42"), SYNC)) == "1Z"
        assert rows(run_prepared(a, "mine")) == [["42"]]
        assert rows(run_prepared(b, "yours")) == [["42"]]
        count = a.scalar("select count(*) from pg_prepared_statements where statement = 'select 42'")
        assert count == "1"


def test_lru_keeps_each_connection_bounded(proxy_factory, app):
    proxy = proxy_factory(connection_pool={"max_connections_percent": 1, "max_idle_connections_percent": 1,
                                           "max_prepared_statements": 2})
    with raw_client(proxy, app) as a:
        for i in range(5):
            assert types(exchange(a, parse(f"s{i}", f"select {i} as v"), SYNC)) == "1Z"
        for _ in range(3):
            for i in (4, 0, 3, 1, 2):
                assert rows(run_prepared(a, f"s{i}")) == [[str(i)]]
        on_server = int(a.scalar("select count(*) from pg_prepared_statements"))
        assert on_server <= 2, f"{on_server} statements on a connection limited to 2"


def test_deallocate_all_drops_protocol_statements_too(one_connection_proxy, app):
    with raw_client(one_connection_proxy, app) as a:
        exchange(a, parse("x", "select 1"), SYNC)
        assert a.query("DEALLOCATE ALL").error is None
        assert error(run_prepared(a, "x"))["C"] == "26000"
        exchange(a, parse("x", "select 2"), SYNC)
        assert rows(run_prepared(a, "x")) == [["2"]]


# ---------------------------------------------------------------- real drivers

def _sample_pins(proxy, stop, seen):
    while not stop.is_set():
        try:
            seen.append(proxy.metrics().get("sluice_database_connections_currently_session_pinned"))
        except Exception:  # noqa: BLE001 - the proxy may be busy; the next sample counts
            pass
        stop.wait(0.1)


def test_pgbench_prepared_mode_multiplexes_without_pins(proxy_factory, pg, app):
    proxy = proxy_factory(require_tls=False, connection_pool={"max_connections_percent": 5})
    clients = 40
    sampler = harness.ActivitySampler(pg, app.app_user)
    stop, pins = threading.Event(), []
    pin_thread = threading.Thread(target=_sample_pins, args=(proxy, stop, pins), daemon=True)
    sampler.start()
    pin_thread.start()
    try:
        r = harness.run_pgbench(proxy.env(app.app_user, app.app_password, sslmode="disable"),
                                # Select-only: pgbench prepares each client's statements with a
                                # blocking PQprepare, which in any transaction pooler waits forever
                                # behind another of its own clients that holds the only free
                                # connection inside BEGIN ... END.
                                ["-n", "-S", "-M", "prepared", "-c", str(clients), "-j", "2", "-T", "5"],
                                timeout=120 * harness.SLOW)
    finally:
        peak = sampler.stop()
        stop.set()
        pin_thread.join()
    assert r.ok(), r.summary()
    assert r.failed == 0, r.summary()
    assert 1 <= peak <= 5, f"peak server connections {peak}, cap 5"
    assert pins and max(pins) == 0, f"sessions were pinned: {pins}"
    assert PIN_LOG not in proxy.log_text()


def test_psycopg3_prepares_everything_without_pins(proxy_factory, pg, app):
    proxy = proxy_factory(connection_pool={"max_connections_percent": 2, "max_idle_connections_percent": 2})
    sampler = harness.ActivitySampler(pg, app.app_user)
    sampler.start()

    def worker(n):
        with proxy.connect(app.app_user, app.app_password, prepare_threshold=0) as c:
            for i in range(40):
                got = c.execute("select %s::int * %s::int, %s::text", (n, i, f"w{n}")).fetchone()
                assert got == (n * i, f"w{n}"), got
                with c.transaction():
                    c.execute("insert into kv values (%s, %s) on conflict (k) do update set v = excluded.v",
                              (f"prep{n}", str(i)))
                assert c.execute("select v from kv where k = %s", (f"prep{n}",)).fetchone()[0] == str(i)

    failures = harness.run_concurrently(worker, 8)
    peak = sampler.stop()
    assert not failures, failures
    assert 1 <= peak <= 2, f"peak server connections {peak}, cap 2"
    assert PIN_LOG not in proxy.log_text()


def test_psycopg2_server_side_prepare_execute_without_pins(proxy_factory, pg, app):
    """psycopg2 has no protocol-level prepare: SQL PREPARE/EXECUTE, which the proxy translates."""
    import psycopg2
    proxy = proxy_factory(connection_pool={"max_connections_percent": 2, "max_idle_connections_percent": 2})
    sampler = harness.ActivitySampler(pg, app.app_user)
    sampler.start()

    def worker(n):
        conn = psycopg2.connect(proxy.dsn(app.app_user, app.app_password))
        try:
            conn.autocommit = True
            cur = conn.cursor()
            cur.execute(f"PREPARE q(int) AS SELECT $1 * 3 + {n}")
            for i in range(20):
                cur.execute("EXECUTE q(%s)", (i,))
                assert cur.fetchone()[0] == i * 3 + n
                cur.execute("BEGIN")
                cur.execute("EXECUTE q(%s)", (i + 1,))
                assert cur.fetchone()[0] == (i + 1) * 3 + n
                cur.execute("COMMIT")
            cur.execute("DEALLOCATE q")
        finally:
            conn.close()

    failures = harness.run_concurrently(worker, 6)
    peak = sampler.stop()
    assert not failures, failures
    assert 1 <= peak <= 2, f"peak server connections {peak}, cap 2"
    assert PIN_LOG not in proxy.log_text()


def test_asyncpg_default_statement_cache_without_pins(proxy_factory, pg, app):
    """asyncpg prepares every query as a named statement (its default statement cache) and reuses it."""
    import asyncio
    import ssl

    import asyncpg

    proxy = proxy_factory(connection_pool={"max_connections_percent": 2, "max_idle_connections_percent": 2})
    tls = ssl.create_default_context()
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE

    async def client(n):
        conn = await asyncpg.connect(host=proxy.host, port=proxy.port, user=app.app_user,
                                     password=app.app_password, database="appdb", ssl=tls)
        try:
            for i in range(30):
                assert await conn.fetchval("select $1::int * $2::int", n, i) == n * i
                row = await conn.fetchrow("select $1::text as who, $2::int + 1 as next", f"c{n}", i)
                assert (row["who"], row["next"]) == (f"c{n}", i + 1)
                async with conn.transaction():
                    await conn.execute("insert into kv values ($1, $2) on conflict (k) do update set v = excluded.v",
                                       f"apg{n}", str(i))
                assert await conn.fetchval("select v from kv where k = $1", f"apg{n}") == str(i)
        finally:
            await conn.close()

    async def main():
        await asyncio.gather(*(client(n) for n in range(8)))

    sampler = harness.ActivitySampler(pg, app.app_user)
    sampler.start()
    asyncio.run(main())
    peak = sampler.stop()
    assert 1 <= peak <= 2, f"peak server connections {peak}, cap 2"
    assert PIN_LOG not in proxy.log_text()


def test_jdbc_prepare_threshold_1_without_pins(proxy_factory, pg, app):
    """pgjdbc with prepareThreshold=1 uses named server statements from the first execution."""
    import os
    import subprocess
    proxy = proxy_factory(require_tls=False,
                          connection_pool={"max_connections_percent": 2, "max_idle_connections_percent": 2})
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "drivers", "JdbcWorkload.java")
    url = f"jdbc:postgresql://{proxy.host}:{proxy.port}/appdb"
    sampler = harness.ActivitySampler(pg, app.app_user)
    sampler.start()
    r = subprocess.run(["java", "-cp", "/usr/share/java/postgresql.jar", source, url, app.app_user,
                        app.app_password, "6", "30"], capture_output=True, text=True, timeout=180 * harness.SLOW)
    peak = sampler.stop()
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert 1 <= peak <= 2, f"peak server connections {peak}, cap 2"
    assert r.stdout.strip().endswith("ok")
    assert PIN_LOG not in proxy.log_text()


def test_node_postgres_named_queries_without_pins(proxy_factory, pg, app):
    """node-postgres prepares a query object that has a `name` once per connection and then only
    binds it: 8 clients through 2 server connections, TLS on."""
    import os
    import shutil
    import subprocess
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "drivers", "node")
    assert shutil.which("node"), "node is missing: run scripts/install-deps"
    assert os.path.exists(os.path.join(here, "node_modules", "pg")), "npm pg is missing: run scripts/install-deps"
    proxy = proxy_factory(connection_pool={"max_connections_percent": 2, "max_idle_connections_percent": 2})
    sampler = harness.ActivitySampler(pg, app.app_user)
    sampler.start()
    try:
        r = subprocess.run(["node", os.path.join(here, "workload.js"), proxy.host, str(proxy.port), app.app_user,
                            app.app_password, "8", "30"], capture_output=True, text=True, timeout=180 * harness.SLOW)
    finally:
        peak = sampler.stop()
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert r.stdout.strip().endswith("ok")
    assert 1 <= peak <= 2, f"peak server connections {peak}, cap 2"
    assert PIN_LOG not in proxy.log_text()
    assert proxy.metrics().get("sluice_database_connections_currently_session_pinned") == 0
