"""Connection pooling: the server-connection cap, multiplexing, borrow timeout, pinning, consistency."""
import os
import threading
import time

import psycopg
import pytest

from sluice_harness import harness
from conftest import SERVER_MAX_CONNECTIONS

BORROW_TIMEOUT_MSG = "Timed-out waiting to acquire database connection."


def test_200_clients_capped_at_20_server_connections(proxy_factory, pg, app):
    proxy = proxy_factory(connection_pool={"max_connections_percent": 20})
    cap = SERVER_MAX_CONNECTIONS * 20 // 100
    assert cap == 20
    clients = 100 if harness.SANITIZED else 200
    sampler = harness.ActivitySampler(pg, app.app_user)
    sampler.start()
    try:
        r = harness.run_pgbench(proxy.env(app.app_user, app.app_password),
                                ["-n", "-S", "-c", str(clients), "-j", "2", "-T", "5"],
                                timeout=120 * harness.SLOW)
    finally:
        peak = sampler.stop()
    assert not sampler.errors, sampler.errors
    assert r.ok(), r.summary()
    assert f"number of clients: {clients}" in r.stdout
    assert r.failed == 0, r.summary()
    assert sampler.samples > 10
    assert 2 <= peak <= cap, f"peak server connections {peak}, cap {cap}"


def test_multiplexing_many_clients_one_server_connection(proxy_factory, pg, app):
    proxy = proxy_factory(connection_pool={"max_connections_percent": 1, "max_idle_connections_percent": 1, "connection_borrow_timeout": 20})
    conns = [proxy.connect(app.app_user, app.app_password) for _ in range(6)]
    try:
        pids = set()
        for rnd in range(5):
            for i, c in enumerate(conns):
                pid, v = c.execute("select pg_backend_pid(), %s::int", (rnd * 10 + i,)).fetchone()
                assert v == rnd * 10 + i
                pids.add(pid)
        assert len(pids) == 1, f"cap is 1 but clients saw backends {pids}"
        assert pg.backend_count(app.app_user) == 1
        # transactions of different clients are serialised on the single server connection
        with conns[0].transaction():
            conns[0].execute("insert into kv values ('mux', 'a') on conflict (k) do update set v = 'a'")
        assert conns[1].execute("select v from kv where k = 'mux'").fetchone()[0] == "a"
    finally:
        for c in conns:
            c.close()


def test_borrow_timeout(proxy_factory, pg, app):
    proxy = proxy_factory(connection_pool={"max_connections_percent": 1, "max_idle_connections_percent": 1, "connection_borrow_timeout": 1})
    a = proxy.connect(app.app_user, app.app_password)
    b = proxy.connect(app.app_user, app.app_password)
    try:
        a.execute("BEGIN")
        a.execute("select 1")
        t0 = time.monotonic()
        with pytest.raises(psycopg.Error) as ei:
            b.execute("select 2")
        waited = time.monotonic() - t0
        assert ei.value.sqlstate == "08000", (ei.value.sqlstate, str(ei.value))
        assert ei.value.diag.message_primary == BORROW_TIMEOUT_MSG
        assert waited >= 0.8, f"gave up after {waited:.2f}s, before the 1 s borrow timeout"
        # A is unaffected and, once it commits, B can work again.
        assert a.execute("select 3").fetchone()[0] == 3
        a.execute("COMMIT")
        if not b.closed:
            assert b.execute("select 4").fetchone()[0] == 4
        with proxy.connect(app.app_user, app.app_password) as c:
            assert c.execute("select 5").fetchone()[0] == 5
    finally:
        a.close()
        b.close()


def test_pinned_session_keeps_its_connection(proxy_factory, pg, app):
    """A temp table pins the session: with cap 1 another client times out until the pinned client leaves."""
    proxy = proxy_factory(connection_pool={"max_connections_percent": 1, "max_idle_connections_percent": 1, "connection_borrow_timeout": 1})
    a = proxy.connect(app.app_user, app.app_password)
    try:
        a.execute("CREATE TEMP TABLE pinned_here (a int)")
        a.execute("SET work_mem = '7MB'")
        pid_a = a.execute("select pg_backend_pid()").fetchone()[0]
        with proxy.connect(app.app_user, app.app_password) as b:
            with pytest.raises(psycopg.Error) as ei:
                b.execute("select 1")
            assert ei.value.sqlstate == "08000"
        for _ in range(3):
            assert a.execute("select pg_backend_pid(), current_setting('work_mem')").fetchone() == (pid_a, "7MB")
    finally:
        a.close()
    # once A has left, the connection (cleaned or replaced) serves others, without A's setting
    def query_b():
        try:
            with proxy.connect(app.app_user, app.app_password) as b:
                return b.execute("select current_setting('work_mem')").fetchone()
        except psycopg.Error:
            return None
    row = harness.wait_for(query_b, 10 * harness.SLOW, 0.2, "a client to get the connection back")
    assert row[0] == "4MB"


def test_sql_prepared_statement_stays_its_clients_without_pinning(proxy_factory, app):
    proxy = proxy_factory(connection_pool={"max_connections_percent": 2, "connection_borrow_timeout": 10})
    with proxy.connect(app.app_user, app.app_password) as a, proxy.connect(app.app_user, app.app_password) as b:
        a.execute("PREPARE getbal(int) AS SELECT balance FROM accounts WHERE id = $1")
        for i in range(5):
            # interleave another client's work; A's SQL-level prepared statement must stay usable
            b.execute("select %s::int", (i,))
            assert a.execute("EXECUTE getbal(1)").fetchone()[0] is not None
        with pytest.raises(psycopg.errors.InvalidSqlStatementName):
            b.execute("EXECUTE getbal(1)")
    assert "was pinned" not in proxy.log_text()


def test_money_transfers_consistent(proxy_factory, pg, app, tmp_path):
    proxy = proxy_factory(connection_pool={"max_connections_percent": 10})
    n = app.accounts
    with pg.superuser_conn("appdb") as c:
        c.execute("update accounts set balance = %s", (app.initial_balance,))
    script = tmp_path / "transfer.sql"
    script.write_text(f"""
\\set a random(1, {n})
\\set b random(1, {n})
\\set d random(1, 100)
\\set lo least(:a, :b)
\\set hi greatest(:a, :b)
BEGIN;
UPDATE accounts SET balance = balance - :d WHERE id = :lo;
UPDATE accounts SET balance = balance + :d WHERE id = :hi;
END;
""")
    os.chmod(tmp_path, 0o755)
    os.chmod(script, 0o644)
    clients = 16 if harness.SANITIZED else 40
    txns = 25 if harness.SANITIZED else 50
    sampler = harness.ActivitySampler(pg, app.app_user)
    sampler.start()
    try:
        r = harness.run_pgbench(proxy.env(app.app_user, app.app_password),
                                ["-n", "-c", str(clients), "-j", "2", "-t", str(txns), "-M", "extended",
                                 "-f", str(script)], timeout=240 * harness.SLOW)
    finally:
        peak = sampler.stop()
    assert r.ok(), r.summary()
    assert r.processed == clients * txns, r.summary()
    assert peak <= SERVER_MAX_CONNECTIONS * 10 // 100
    with pg.superuser_conn("appdb") as c:
        total, moved = c.execute("select sum(balance), sum(abs(balance - %s)) from accounts",
                                 (app.initial_balance,)).fetchone()
    assert total == n * app.initial_balance
    assert moved > 0, "no money moved: the workload did nothing"


def test_money_transfers_psycopg_threads(proxy_factory, pg, app):
    """The same invariant with psycopg 3 clients in threads, each transfer in an explicit transaction."""
    proxy = proxy_factory(connection_pool={"max_connections_percent": 5})
    n = app.accounts
    with pg.superuser_conn("appdb") as c:
        c.execute("update accounts set balance = %s", (app.initial_balance,))
    errors = []
    done = [0]
    lock = threading.Lock()

    def worker(seed):
        import random
        rnd = random.Random(seed)
        try:
            with proxy.connect(app.app_user, app.app_password) as conn:
                for _ in range(20):
                    a, b = sorted(rnd.sample(range(1, n + 1), 2))
                    d = rnd.randint(1, 50)
                    with conn.transaction():
                        conn.execute("update accounts set balance = balance - %s where id = %s", (d, a))
                        conn.execute("update accounts set balance = balance + %s where id = %s", (d, b))
                    with lock:
                        done[0] += 1
        except Exception as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8 if harness.SANITIZED else 20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180 * harness.SLOW)
    assert not errors, errors[:5]
    assert done[0] == len(threads) * 20
    with pg.superuser_conn("appdb") as c:
        total, moved = c.execute("select sum(balance), sum(abs(balance - %s)) from accounts",
                                 (app.initial_balance,)).fetchone()
    assert total == n * app.initial_balance and moved > 0


def test_cap_is_shared_by_all_pools(proxy_factory, pg, app):
    """One pool per (database, user), but the cap bounds their total; an idle connection of one pool
    makes room for another pool when the cap is reached."""
    proxy = proxy_factory(connection_pool={"max_connections_percent": 3, "max_idle_connections_percent": 3,
                                           "connection_borrow_timeout": 2})
    cap = SERVER_MAX_CONNECTIONS * 3 // 100
    holders = [
        proxy.connect(app.app_user, app.app_password, dbname="appdb"),
        proxy.connect(app.app_user, app.app_password, dbname="postgres"),
        proxy.connect(app.md5_user, app.md5_password, dbname="appdb"),
    ]
    assert len(holders) == cap
    try:
        for h in holders:
            h.execute("BEGIN")
            h.execute("select 1")
        with pg.superuser_conn() as s:
            pools = s.execute("select count(distinct (datname, usename)) from pg_stat_activity"
                              " where usename in (%s, %s) and backend_type = 'client backend'",
                              (app.app_user, app.md5_user)).fetchone()[0]
        assert pools == 3
        # a fourth pool's client waits and times out (at login, if the proxy needs a server connection
        # to log it in, or at its first query)
        with pytest.raises(psycopg.Error) as ei:
            with proxy.connect(app.md5_user, app.md5_password, dbname="postgres") as d:
                d.execute("select 1")
        assert ei.value.sqlstate == "08000" or BORROW_TIMEOUT_MSG in str(ei.value), str(ei.value)
        holders[0].execute("COMMIT")  # its connection goes idle in the (appdb, app) pool
        with proxy.connect(app.md5_user, app.md5_password, dbname="postgres", options="-c lock_timeout=1s") as d:
            assert d.execute("select current_user, current_database()").fetchone() == (app.md5_user, "postgres")
        n = int(pg.scalar("select count(*) from pg_stat_activity where usename in (%s, %s)"
                          " and backend_type = 'client backend'", params=[app.app_user, app.md5_user]))
        assert n <= cap
    finally:
        for h in holders:
            h.close()


def test_init_query(proxy_factory, app):
    proxy = proxy_factory(connection_pool={"max_connections_percent": 1, "max_idle_connections_percent": 1,
                                           "connection_borrow_timeout": 5,
                                           "init_query": "SET statement_timeout = 4321"})
    with proxy.connect(app.app_user, app.app_password) as a, proxy.connect(app.app_user, app.app_password) as b:
        # both clients share the single connection: the init query does not pin it
        for _ in range(3):
            assert a.execute("show statement_timeout").fetchone()[0] == "4321ms"
            assert b.execute("show statement_timeout").fetchone()[0] == "4321ms"


def test_borrow_waits_for_release(proxy_factory, app):
    """With cap 1, a second client's query waits (shorter than the borrow timeout) and then runs."""
    proxy = proxy_factory(connection_pool={"max_connections_percent": 1, "max_idle_connections_percent": 1,
                                           "connection_borrow_timeout": 20})
    a = proxy.connect(app.app_user, app.app_password)
    b = proxy.connect(app.app_user, app.app_password)
    try:
        a.execute("BEGIN")
        a.execute("select 1")
        result = {}

        def run_b():
            t0 = time.monotonic()
            try:
                result["value"] = b.execute("select 'b ran'").fetchone()[0]
            except Exception as e:
                result["error"] = repr(e)
            result["waited"] = time.monotonic() - t0

        t = threading.Thread(target=run_b)
        t.start()
        time.sleep(1.0)
        assert t.is_alive(), f"B did not wait for the only server connection: {result}"
        a.execute("COMMIT")
        t.join(30)
        assert result.get("value") == "b ran", result
        assert result["waited"] >= 0.9
    finally:
        a.close()
        b.close()


def test_pgbench_extended_through_single_connection(proxy_factory, pg, app):
    """Unnamed extended-protocol statements of many clients interleave on one server connection."""
    proxy = proxy_factory(connection_pool={"max_connections_percent": 1, "max_idle_connections_percent": 1,
                                           "connection_borrow_timeout": 60})
    clients = 4 if harness.SANITIZED else 8
    sampler = harness.ActivitySampler(pg, app.app_user)
    sampler.start()
    try:
        r = harness.run_pgbench(proxy.env(app.app_user, app.app_password),
                                ["-n", "-M", "extended", "-c", str(clients), "-j", "2", "-t", "50"],
                                timeout=240 * harness.SLOW)
    finally:
        peak = sampler.stop()
    assert r.ok(), r.summary()
    assert r.processed == clients * 50
    assert peak == 1


@pytest.mark.parametrize("state", ["hold_cursor", "sequence_currval", "advisory_lock", "listen"])
def test_session_state_pins(proxy_factory, pg, app, state):
    """Session-scoped state keeps working while other clients use the pool (the session is pinned)."""
    proxy = proxy_factory(connection_pool={"max_connections_percent": 3, "max_idle_connections_percent": 3,
                                           "connection_borrow_timeout": 10})
    a = proxy.connect(app.app_user, app.app_password)
    others = [proxy.connect(app.app_user, app.app_password) for _ in range(2)]
    try:
        if state == "hold_cursor":
            a.execute("DECLARE pin_c CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, 100) g")
            check = lambda i: a.execute("FETCH 1 FROM pin_c").fetchone()[0] == i + 1
        elif state == "sequence_currval":
            a.execute("CREATE SEQUENCE IF NOT EXISTS pin_seq")
            first = a.execute("select nextval('pin_seq')").fetchone()[0]
            check = lambda i: a.execute("select currval('pin_seq')").fetchone()[0] == first
        elif state == "advisory_lock":
            a.execute("select pg_advisory_lock(777)")
            mypid = a.execute("select pg_backend_pid()").fetchone()[0]
            check = lambda i: a.execute(
                "select count(*) from pg_locks where locktype = 'advisory' and objid = 777 and pid = %s",
                (mypid,)).fetchone()[0] == 1 and a.execute("select pg_backend_pid()").fetchone()[0] == mypid
        else:
            a.execute("LISTEN pin_chan")
            check = lambda i: a.execute("select count(*) from pg_listening_channels() c"
                                        " where c = 'pin_chan'").fetchone()[0] == 1
        for i in range(6):
            # other clients grab connections in transactions, so an unpinned A would move
            for o in others:
                o.execute("BEGIN")
                o.execute("select 1")
            assert check(i), f"{state}: session state lost on iteration {i}"
            for o in others:
                o.execute("COMMIT")
        m = proxy.metrics()
        assert m.get("sluice_database_connections_currently_session_pinned") >= 1
    finally:
        a.close()
        for o in others:
            o.close()


def test_a_full_server_is_not_asked_again_by_every_waiting_client(proxy_factory, app):
    """Other programs hold most of the server's max_connections: the proxy's cap (12) is more
    than the server will give it (3). Its clients wait for the connections it has instead of
    each retrying a login every 250 ms (each refusal costs the server a backend's start)."""
    server = harness.PostgresServer(max_connections=12)  # 9 for non-superusers
    server.start()
    others = []
    try:
        harness.setup_app_database(server, app, pgbench_scale=1, accounts=app.accounts)
        dsn = server.direct_env(app.app_user, app.app_password, app.dbname)
        for _ in range(6):
            others.append(psycopg.connect(host=dsn["PGHOST"], port=dsn["PGPORT"], user=app.app_user,
                                          password=app.app_password, dbname=app.dbname))
        proxy = proxy_factory(target_port=server.port, require_tls=False,
                              connection_pool={"connection_borrow_timeout": 60})
        r = harness.run_pgbench(proxy.env(app.app_user, app.app_password, sslmode="disable"),
                                ["-n", "-S", "-c", "8", "-j", "2", "-T", "4"], timeout=120 * harness.SLOW)
        assert r.ok(), r.summary()
        assert r.failed == 0, r.summary()
        m = proxy.metrics()
        assert m.get("sluice_database_connections") == 3, "all the server would give"
        refused = m.get("sluice_database_connections_setup_failed")
        # The first logins of the burst are refused together; after that one login a second
        # tries the server. Every waiting client retrying each 250 ms would be about 80.
        assert 1 <= refused <= 25, f"{refused} refused logins in 4 s"
        assert "remaining connection slots are reserved" in proxy.log_text()  # 53300
    finally:
        for c in others:
            c.close()
        server.cleanup()
