"""Worker threads (`workers`): each has its own listening socket (SO_REUSEPORT), clients and pools,
and the cap on server connections is shared exactly. A client's process id in BackendKeyData names
its worker (pid % workers), which is how these tests see that both workers served clients. New
clients go to as few workers as their load needs; the tests that want clients on both workers set
`spread_clients` (every worker takes those the kernel gives it)."""
import threading
import time

import psycopg
import pytest

from sluice_harness import harness

WORKERS = 2


def worker_of(conn):
    return conn.info.backend_pid % WORKERS


def clients_on_both_workers(proxy, app, per_worker, **kw):
    """Connects until each worker has `per_worker` clients (the kernel picks the worker)."""
    by_worker = {w: [] for w in range(WORKERS)}
    spare = []
    for _ in range(200):
        if all(len(v) >= per_worker for v in by_worker.values()):
            break
        c = proxy.connect(app.app_user, app.app_password, **kw)
        w = worker_of(c)
        (by_worker[w] if len(by_worker[w]) < per_worker else spare).append(c)
    for c in spare:
        c.close()
    assert all(len(v) >= per_worker for v in by_worker.values()), \
        f"the kernel put no client on some worker: {[len(v) for v in by_worker.values()]}"
    return by_worker


def test_the_cap_is_exact_across_workers_under_load(proxy_factory, pg, app):
    proxy = proxy_factory(workers=WORKERS, spread_clients=True, connection_pool={"max_connections_percent": 5,
                                                             "max_idle_connections_percent": 5})
    by_worker = clients_on_both_workers(proxy, app, 12)
    conns = [c for v in by_worker.values() for c in v]
    sampler = harness.ActivitySampler(pg, app.app_user)
    sampler.start()
    done = {}

    def work(n):
        c = conns[n]
        for i in range(15):
            with c.transaction():
                assert c.execute("select %s::int, pg_sleep(0.005)", (i,)).fetchone()[0] == i
        done[n] = True

    try:
        failures = harness.run_concurrently(work, len(conns))
        peak = sampler.stop()
        assert not failures, failures
        assert len(done) == len(conns)
        assert 1 <= peak <= 5, f"{peak} server connections under a cap of 5"
        m = proxy.metrics()
        assert m.get("sluice_max_database_connections_allowed") == 5
        assert m.get("sluice_database_connections") <= 5
        assert m.get("sluice_client_connections") == len(conns)
    finally:
        for c in conns:
            c.close()


@pytest.mark.parametrize("target_tls", ["disable", "require"])
def test_one_connection_serves_both_workers_without_new_logins(proxy_factory, pg, app, target_tls):
    """A cap of one: the connection moves between the workers' event loops as their clients need
    it (socket and session intact, over TLS its record keys and sequence numbers too), with its
    prepared statements, instead of being closed and opened again."""
    proxy = proxy_factory(workers=WORKERS, spread_clients=True, target={"tls": target_tls},
                          connection_pool={"max_connections_percent": 1,
                                           "max_idle_connections_percent": 1})
    by_worker = clients_on_both_workers(proxy, app, 2, prepare_threshold=0)
    before = pg.count_authorized_logins(app.app_user)
    pids = set()
    try:
        for rnd in range(6):
            for w in range(WORKERS):
                for c in by_worker[w]:
                    pid, v = c.execute("select pg_backend_pid(), %s::int + 1", (rnd,)).fetchone()
                    assert v == rnd + 1
                    pids.add(pid)
        assert len(pids) == 1, f"a cap of one, yet the clients met backends {pids}"
        assert pg.count_authorized_logins(app.app_user) == before, "a move logged in again"
        with pg.superuser_conn() as su:
            ssl = su.execute("select ssl from pg_stat_ssl where pid = %s", (pids.pop(),)).fetchone()
        assert ssl == (target_tls == "require",)
    finally:
        for v in by_worker.values():
            for c in v:
                c.close()


def test_busy_worker_does_not_starve_the_other(proxy_factory, app):
    """At the cap, clients of both workers are served oldest first: a worker whose own clients keep
    borrowing still hands connections to the other's waiting clients."""
    proxy = proxy_factory(workers=WORKERS, spread_clients=True, connection_pool={"max_connections_percent": 2,
                                                             "max_idle_connections_percent": 2,
                                                             "connection_borrow_timeout": 20})
    by_worker = clients_on_both_workers(proxy, app, 6)
    stop = threading.Event()
    served = {w: 0 for w in range(WORKERS)}
    errors = []

    def hammer(c, w):
        while not stop.is_set():
            try:
                c.execute("select pg_sleep(0.002)")
                served[w] += 1
            except Exception as e:  # noqa: BLE001 - any failure is the finding
                errors.append(repr(e))
                return

    threads = [threading.Thread(target=hammer, args=(c, w), daemon=True)
               for w, v in by_worker.items() for c in v]
    for t in threads:
        t.start()
    time.sleep(3)
    stop.set()
    for t in threads:
        t.join(30)
    for v in by_worker.values():
        for c in v:
            c.close()
    assert not errors, errors
    assert min(served.values()) > 0.2 * max(served.values()), f"served per worker: {served}"


def test_a_light_load_keeps_its_clients_on_one_worker(proxy_factory, app):
    """A few quiet clients all go to the first worker, whichever worker the kernel gave them to
    (the other stays asleep instead of waking for a share of them), and work there, cancels
    included."""
    proxy = proxy_factory(workers=WORKERS)
    conns = [proxy.connect(app.app_user, app.app_password) for _ in range(8)]
    try:
        assert [worker_of(c) for c in conns] == [0] * len(conns)
        for i, c in enumerate(conns):
            assert c.execute("select %s::int", (i,)).fetchone() == (i,)
        timer = threading.Timer(0.3, conns[-1].cancel)
        timer.start()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conns[-1].execute("select pg_sleep(20)")
        timer.join()
        assert proxy.metrics().get("sluice_client_connections") == len(conns)
    finally:
        for c in conns:
            c.close()


def test_a_cancel_reaches_a_session_on_any_worker(proxy_factory, app):
    """A CancelRequest comes on a connection of its own, which the kernel may give to the other
    worker: it is passed to the worker whose session the key names."""
    proxy = proxy_factory(workers=WORKERS, spread_clients=True)
    by_worker = clients_on_both_workers(proxy, app, 4)
    try:
        for w, conns in by_worker.items():
            for c in conns:
                timer = threading.Timer(0.3, c.cancel)
                timer.start()
                t0 = time.monotonic()
                with pytest.raises(psycopg.errors.QueryCanceled):
                    c.execute("select pg_sleep(20)")
                timer.join()
                assert time.monotonic() - t0 < 10 * harness.SLOW
                assert c.execute("select 1").fetchone() == (1,)
    finally:
        for v in by_worker.values():
            for c in v:
                c.close()
