"""The database fails over: [target] hosts = [standby, primary], a real streaming replica.

Read-write work goes to the primary only (the standby is listed first and is never lent); the
primary stops (-m fast) and the standby is promoted; clients go on through the proxy on their
connections (an error only for a statement in flight), new work waits for the new primary and
lands there, and GET /targets and /metrics say which host is the primary. Also: server_lifetime
recycles a server connection once it is idle, never while lent, and server connections carry TCP
keepalives. The same under load, through sluice and PgBouncer: bench/failover.py."""
import json
import subprocess
import threading
import time
import urllib.request

import psycopg
import pytest

import conftest
from sluice_harness import harness

KEPT_SQLSTATES = {"08006", "57P01"}


@pytest.fixture
def cluster(app):
    """(primary, standby): a private primary with table failover_ledger, and its hot standby."""
    for primary in conftest.private_pg(app, synchronous_commit="on"):
        with primary.superuser_conn("appdb") as c:
            c.execute("create table failover_ledger (id text primary key, port int)")
            c.execute(f"grant all on failover_ledger to {app.app_user}")
        standby = harness.StandbyServer(primary)
        try:
            standby.start()
            yield primary, standby
        finally:
            standby.cleanup()


def _targets(proxy):
    with urllib.request.urlopen(f"http://127.0.0.1:{proxy.metrics_port}/targets",
                                timeout=10 * harness.SLOW) as r:
        return json.loads(r.read().decode())["targets"]


def _roles(proxy):
    return {t["port"]: (t["role"], t["state"]) for t in _targets(proxy)}


def _write(conn, key):
    """One autocommit insert; the port of the server that took it."""
    return conn.execute("insert into failover_ledger values (%s, inet_server_port()) returning port",
                        (key,)).fetchone()[0]


def test_writes_follow_the_primary_through_a_promotion(proxy_factory, cluster, app):
    primary, standby = cluster
    proxy = proxy_factory(
        target={"host": None, "port": None,
                "hosts": [f"127.0.0.1:{standby.port}", f"127.0.0.1:{primary.port}"]},
        connection_pool={"max_connections_percent": 20, "connection_borrow_timeout": 60})
    clients = [proxy.connect(app.app_user, app.app_password, autocommit=True) for _ in range(4)]
    try:
        # The standby comes first in hosts, yet every write lands on the primary.
        for i, c in enumerate(clients):
            assert _write(c, f"before-{i}") == primary.port
            assert c.execute("select pg_is_in_recovery()").fetchone()[0] is False
        roles = _roles(proxy)
        assert roles[primary.port] == ("primary", "AVAILABLE"), roles
        assert roles[standby.port] == ("standby", "AVAILABLE"), roles
        assert _targets(proxy)[0]["port"] == primary.port  # the primary speaks for the target
        with standby.superuser_conn("appdb") as s:
            assert s.execute("select count(*) from pg_stat_activity where usename = %s",
                             (app.app_user,)).fetchone()[0] == 0  # no standby connection kept

        with harness.RawPgClient(proxy.host, proxy.port) as raw:
            raw.login(app.app_user, app.app_password)
            assert raw.scalar("select 1") == "1"
            in_flight = {}
            sleeper = threading.Thread(
                target=lambda: in_flight.update(r=raw.query("select pg_sleep(60)")))
            sleeper.start()
            harness.wait_for(lambda: _running(primary, "select pg_sleep(60)"),
                             10 * harness.SLOW, 0.05, "the statement in flight")
            primary.stop("fast")
            sleeper.join(30 * harness.SLOW)
            r = in_flight["r"]
            assert r.error is not None and r.error["C"] in KEPT_SQLSTATES, r.messages
            assert r.error["S"] == "ERROR" and r.status == "I", r.messages

            # New work waits for a primary (connection_borrow_timeout) rather than failing.
            promoter = threading.Timer(0.5, standby.promote)
            promoter.start()
            try:
                assert _write(clients[0], "during") == standby.port
            finally:
                promoter.join()
            # The session in which the statement failed goes on, now on the new primary.
            assert raw.scalar("select inet_server_port()") == str(standby.port)

        for i, c in enumerate(clients):
            assert _write(c, f"after-{i}") == standby.port
            assert not c.closed
        with standby.superuser_conn("appdb") as s:
            ledger = dict(s.execute("select id, port from failover_ledger").fetchall())
        # Commits acknowledged before the failover reached the standby (fast shutdown sends
        # the primary's WAL to its standbys first); the rest landed on the new primary.
        assert {k for k, v in ledger.items() if v == primary.port} == {f"before-{i}" for i in range(4)}
        assert {k for k, v in ledger.items() if v == standby.port} == (
            {"during"} | {f"after-{i}" for i in range(4)})

        roles = _roles(proxy)
        assert roles[standby.port] == ("primary", "AVAILABLE"), roles
        assert roles[primary.port][1] == "UNAVAILABLE", roles
        assert _targets(proxy)[0]["port"] == standby.port
        available = {(labels["port"], labels["role"]): v
                     for name, labels, v in proxy.metrics().samples
                     if name == "sluice_target_available"}
        assert available[(str(standby.port), "primary")] == 1, available
        assert available[(str(primary.port), "unknown")] == 0, available
    finally:
        for c in clients:
            c.close()


def test_no_primary_means_writes_wait_and_then_time_out(proxy_factory, cluster, app):
    """Only a standby answers: no connection is lent (it would take reads but not writes)."""
    primary, standby = cluster
    primary.stop("fast")
    proxy = proxy_factory(
        target={"host": None, "port": None,
                "hosts": [f"127.0.0.1:{primary.port}", f"127.0.0.1:{standby.port}"]},
        connection_pool={"connection_borrow_timeout": 1})
    # A login needs a server connection too (the server's parameters): it waits, then fails.
    with harness.RawPgClient(proxy.host, proxy.port) as raw:
        with pytest.raises(harness.PgError) as failed:
            raw.login(app.app_user, app.app_password)
    message = str(failed.value)
    assert "no primary" in message and f"127.0.0.1:{standby.port}: a standby" in message, message
    roles = _roles(proxy)
    assert roles[standby.port] == ("standby", "AVAILABLE"), roles
    assert roles[primary.port][1] == "UNAVAILABLE", roles
    # The target as a whole (the first entry, what sluice serve reads) cannot take writes.
    assert _targets(proxy)[0]["state"] == "UNAVAILABLE"
    assert proxy.metrics().get("sluice_availability_percentage") == 0


ADMIN, ADMIN_PASSWORD = "ops", "ops-split-brain-console-4c1d"


def _split_brain_proxy(proxy_factory, app, hosts, probe=True, console=False):
    """A proxy on `hosts` whose probe looks at every host each second. With the admin console:
    its user must be a database role too, since the probe logs in as every user."""
    users = [(app.app_user, app.app_password)] + ([(ADMIN, ADMIN_PASSWORD)] if console else [])
    return proxy_factory(
        users=users, admin_users=[ADMIN] if console else [],
        target={"host": None, "port": None, "hosts": [f"127.0.0.1:{h.port}" for h in hosts],
                "health_check_interval": 1 if probe else 0},
        connection_pool={"max_connections_percent": 20, "connection_borrow_timeout": 60})


def _ledger(server):
    with server.superuser_conn("appdb") as s:
        return {k for (k,) in s.execute("select id from failover_ledger").fetchall()}


def _show_targets(proxy):
    with proxy.connect(ADMIN, ADMIN_PASSWORD, dbname="sluice", prepare_threshold=None) as c:
        cur = c.execute("SHOW TARGETS")
        names = [d.name for d in cur.description]
        return {row["port"]: row for row in (dict(zip(names, r)) for r in cur.fetchall())}


def _fenced(proxy, server):
    return _roles(proxy).get(server.port, (None,))[0] == "fenced"


def test_a_former_primary_that_comes_back_gets_no_writes(proxy_factory, cluster, app):
    """Split brain: the old primary is started again after its standby was promoted. It accepts
    writes on its old timeline; the proxy fences it (the newest timeline wins) and every write
    lands on the promoted one. A proxy started afresh with both up picks the promoted one too."""
    primary, standby = cluster
    with primary.superuser_conn() as s:
        s.execute(f"create role {ADMIN} login password '{ADMIN_PASSWORD}'")
    proxy = _split_brain_proxy(proxy_factory, app, [primary, standby], console=True)
    clients = [proxy.connect(app.app_user, app.app_password, autocommit=True) for _ in range(3)]
    try:
        for i, c in enumerate(clients):
            assert _write(c, f"before-{i}") == primary.port
        primary.stop("fast")
        standby.promote()
        for i, c in enumerate(clients):
            assert _write(c, f"promoted-{i}") == standby.port

        primary.start()  # a careless restart: a primary again, on timeline 1
        assert primary.psql("select pg_is_in_recovery()").strip() == "f"
        harness.wait_for(lambda: _fenced(proxy, primary), 15 * harness.SLOW, 0.1,
                         "the former primary to be fenced")
        for r in range(3):
            for i, c in enumerate(clients):
                assert _write(c, f"after-{r}-{i}") == standby.port
        # Counted on each server directly: nothing reached the former primary after the stop.
        assert _ledger(primary) == {f"before-{i}" for i in range(3)}
        assert _ledger(standby) == ({f"before-{i}" for i in range(3)} |
                                    {f"promoted-{i}" for i in range(3)} |
                                    {f"after-{r}-{i}" for r in range(3) for i in range(3)})

        fenced = next(t for t in _targets(proxy) if t["port"] == primary.port)
        assert (fenced["role"], fenced["state"], fenced["reason"]) == (
            "fenced", "UNAVAILABLE", "INVALID_REPLICATION_STATE"), fenced
        assert "newer timeline (2)" in fenced["description"] and fenced["timeline"] == 1, fenced
        assert _targets(proxy)[0]["port"] == standby.port  # the primary speaks for the target
        rows = _show_targets(proxy)
        assert rows[primary.port]["role"] == "fenced" and rows[primary.port]["state"] == "UNAVAILABLE"
        assert rows[standby.port]["role"] == "primary" and rows[standby.port]["state"] == "AVAILABLE"
        assert proxy.metrics().get("sluice_target_split_brain") == 1
        assert "split brain" in proxy.log_text()
    finally:
        for c in clients:
            c.close()

    # Started with both up, the former primary listed first: it picks the promoted one.
    fresh = _split_brain_proxy(proxy_factory, app, [primary, standby], probe=False)
    with fresh.connect(app.app_user, app.app_password, autocommit=True) as c:
        assert _write(c, "fresh") == standby.port
    assert "fresh" not in _ledger(primary)
    assert _fenced(fresh, primary)


def test_a_transaction_on_the_old_primary_is_cut_when_its_standby_is_promoted(
        proxy_factory, cluster, app):
    """The standby is promoted while the primary runs on (both accept writes): the proxy moves to
    the newer timeline and cuts a transaction under way on the old one, as a server loss: the
    client keeps its session, the transaction fails, the next one lands on the new primary."""
    primary, standby = cluster
    proxy = _split_brain_proxy(proxy_factory, app, [primary, standby])
    with proxy.connect(app.app_user, app.app_password, autocommit=True) as c:
        c.execute("begin")
        assert _write(c, "in-transaction") == primary.port
        standby.promote()
        # Cut within a housekeeping period (250 ms) of the probe's finding.
        harness.wait_for(
            lambda: proxy.metrics().get("sluice_target_fenced_connections_cut_total") == 1,
            15 * harness.SLOW, 0.1, "the transaction on the old primary to be cut")
        assert _fenced(proxy, primary)
        with pytest.raises(psycopg.OperationalError) as lost:
            c.execute("select 1")
        assert lost.value.sqlstate in KEPT_SQLSTATES, lost.value
        c.execute("rollback")
        assert _write(c, "next") == standby.port
    assert "in-transaction" not in _ledger(primary) | _ledger(standby)
    assert "next" not in _ledger(primary)


def test_server_lifetime_recycles_idle_connections_never_lent_ones(proxy_factory, pg, app):
    proxy = proxy_factory(connection_pool={"max_connections_percent": 5, "server_lifetime": 1})
    with proxy.connect(app.app_user, app.app_password, autocommit=True) as c:
        first = c.execute("select pg_backend_pid()").fetchone()[0]
        with c.transaction():  # lent for the whole block, past its lifetime
            c.execute("select pg_sleep(1.5)")
            assert c.execute("select pg_backend_pid()").fetchone()[0] == first
        # Returned older than server_lifetime: closed, and the next borrow logs in afresh.
        second = c.execute("select pg_backend_pid()").fetchone()[0]
        assert second != first
        # Idle in the pool past its lifetime: the reaper closes it without a borrow.
        harness.wait_for(lambda: not _backend_exists(pg, second), 10 * harness.SLOW, 0.1,
                         "the idle connection past server_lifetime to close")


def _running(pg, sql):
    with pg.superuser_conn() as s:
        return s.execute("select count(*) from pg_stat_activity where state = 'active' and query = %s",
                         (sql,)).fetchone()[0] > 0


def _backend_exists(pg, pid):
    with pg.superuser_conn() as s:
        return s.execute("select count(*) from pg_stat_activity where pid = %s",
                         (pid,)).fetchone()[0] == 1


def test_server_connections_carry_tcp_keepalives(proxy_factory, pg, app):
    proxy = proxy_factory(target={"tcp_keepalive_idle": 7, "tcp_keepalive_interval": 3,
                                  "tcp_keepalive_count": 2})
    with proxy.connect(app.app_user, app.app_password, autocommit=True) as c:
        c.execute("select 1")
        # The proxy's sockets to the server: a keepalive timer armed (ss shows "timer:(keepalive").
        out = subprocess.run(["ss", "-tnoHp", "state", "established", f"dport = :{pg.port}"],
                             capture_output=True, text=True, check=True).stdout
        mine = [line for line in out.splitlines() if f"pid={proxy.pid}," in line]
        assert mine, out
        assert all("timer:(keepalive" in line for line in mine), mine
