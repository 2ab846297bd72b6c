"""[connection_pool] adaptive_concurrency: below the cap, sluice lends only as many server connections
as the server can use at once, and never holds a client back for long."""
import statistics
import threading
import time

from sluice_harness import harness


def limit_of(proxy):
    return proxy.metrics().get("sluice_database_connections_concurrency_limit")


def test_a_saturated_server_gets_fewer_busy_connections_than_the_cap(proxy_factory, pg, app):
    proxy = proxy_factory(connection_pool={"max_connections_percent": 20, "max_idle_connections_percent": 20})
    limits, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            limits.append(limit_of(proxy))
            time.sleep(0.05)
    watcher = threading.Thread(target=watch)
    sampler = harness.ActivitySampler(pg, app.app_user)
    sampler.start()
    watcher.start()
    try:
        r = harness.run_pgbench(proxy.env(app.app_user, app.app_password),
                                ["-n", "-S", "-c", "32", "-j", "2", "-T", "4"], timeout=120 * harness.SLOW)
    finally:
        stop.set()
        watcher.join()
        peak = sampler.stop()
    assert r.ok() and r.failed == 0, r.summary()
    assert peak <= 20
    later = limits[len(limits) // 2:]
    # pgbench -S with 32 clients keeps this machine's few cores busy: a handful lent, not 20.
    assert statistics.median(later) < 20, limits


def test_clients_holding_transactions_never_lock_others_out(proxy_factory, app):
    """Each client keeps a transaction open on its server connection, so each needs one more
    than the adaptive limit started with: the limit gives way within a fraction of a second."""
    proxy = proxy_factory(connection_pool={"max_connections_percent": 20, "connection_borrow_timeout": 10})
    holders = []
    try:
        started = time.monotonic()
        for i in range(8):
            c = proxy.connect(app.app_user, app.app_password)
            c.execute("BEGIN")
            assert c.execute("select %s::int", (i,)).fetchone()[0] == i
            holders.append(c)
        elapsed = time.monotonic() - started
        assert elapsed < 8 * harness.SLOW, f"8 transactions took {elapsed:.1f} s to start"
        assert limit_of(proxy) >= 8
        # A transaction that waits for another client's row, which that client commits.
        holders[0].execute("insert into kv values ('held', 'x') on conflict (k) do update set v = 'x'")
        holders[0].execute("COMMIT")
        holders[1].execute("select * from kv where k = 'held' for update")
        holders[1].execute("COMMIT")
    finally:
        for c in holders:
            c.close()


def test_switched_off_the_limit_is_the_cap(proxy_factory, app):
    proxy = proxy_factory(connection_pool={"max_connections_percent": 20, "adaptive_concurrency": False})
    c = proxy.connect(app.app_user, app.app_password)
    try:
        c.execute("select 1")
        assert limit_of(proxy) == 20
    finally:
        c.close()


def test_another_pool_is_served_while_one_pool_saturates_the_server(proxy_factory, app):
    """The limit is shared by all pools and served oldest first: a client of a second pool keeps
    getting connections while pgbench keeps the first pool's clients queued."""
    proxy = proxy_factory(connection_pool={"max_connections_percent": 20, "max_idle_connections_percent": 20})
    result = {}

    def load():
        result["pgbench"] = harness.run_pgbench(proxy.env(app.app_user, app.app_password),
                                                ["-n", "-S", "-c", "24", "-j", "2", "-T", "4"],
                                                timeout=120 * harness.SLOW)
    loader = threading.Thread(target=load)
    loader.start()
    try:
        time.sleep(1)
        other = proxy.connect(app.md5_user, app.md5_password, dbname="postgres")
        slowest = 0.0
        for i in range(50):
            t = time.monotonic()
            assert other.execute("select %s::int", (i,)).fetchone()[0] == i
            slowest = max(slowest, time.monotonic() - t)
        other.close()
    finally:
        loader.join()
    r = result["pgbench"]
    assert r.ok() and r.failed == 0, r.summary()
    assert slowest < 1.0 * harness.SLOW, f"a query of the second pool waited {slowest:.2f} s"
