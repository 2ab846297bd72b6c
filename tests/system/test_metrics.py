"""GET /metrics: Prometheus text with the RDS-Proxy-like series and sensible values."""
import urllib.error
import urllib.request

import psycopg
import pytest

from sluice_harness import harness
from conftest import SERVER_MAX_CONNECTIONS

SERIES = [
    "sluice_client_connections",
    "sluice_database_connections",
    "sluice_database_connections_currently_borrowed",
    "sluice_database_connections_currently_session_pinned",
    "sluice_max_database_connections_allowed",
    "sluice_client_connections_setup_failed_auth",
    "sluice_client_connections_received",
    "sluice_query_requests",
]


def _pct_proxy(proxy_factory, pct=20):
    return proxy_factory(connection_pool={"max_connections_percent": pct, "max_idle_connections_percent": pct})


def test_metrics_series_present(proxy_factory, app):
    proxy = _pct_proxy(proxy_factory)
    with proxy.connect(app.app_user, app.app_password) as c:
        c.execute("select 1")
    m = proxy.metrics()
    missing = [s for s in SERIES if not m.has(s)]
    assert not missing, f"missing series: {missing}"
    hist = "sluice_database_connections_borrow_latency"
    assert m.types.get(hist) == "histogram", m.types.get(hist)
    for suffix in ("_bucket", "_sum", "_count"):
        assert m.has(hist + suffix), hist + suffix
    inf = [v for n, l, v in m.samples if n == hist + "_bucket" and l.get("le") == "+Inf"]
    assert inf and sum(inf) == m.get(hist + "_count") >= 1
    # Both response latencies are there, each with the query just answered.
    for hist in ("sluice_query_response_latency", "sluice_query_database_response_latency"):
        assert m.types.get(hist) == "histogram", hist
        assert m.get(hist + "_count") >= 1, hist
        inf = [v for n, l, v in m.samples if n == hist + "_bucket" and l.get("le") == "+Inf"]
        assert inf and sum(inf) == m.get(hist + "_count"), hist


def test_metrics_values(proxy_factory, pg, app):
    proxy = _pct_proxy(proxy_factory, 20)
    cap = SERVER_MAX_CONNECTIONS * 20 // 100
    with proxy.connect(app.app_user, app.app_password) as warm:
        warm.execute("select 1")
    # The close reaches the proxy (and its gauges) a moment after the client is done with it.
    harness.wait_for(lambda: proxy.metrics().get("sluice_client_connections") == 0, 5, 0.02,
                     "the warm-up client gone")
    m0 = proxy.metrics()
    assert m0.get("sluice_max_database_connections_allowed") == cap
    base_clients = m0.get("sluice_client_connections")
    base_received = m0.get("sluice_client_connections_received")
    base_queries = m0.get("sluice_query_requests")

    c = proxy.connect(app.app_user, app.app_password, prepare_threshold=None)  # no automatic prepares (pinning)
    try:
        for i in range(10):
            c.execute("select %s::int", (i,))
        m1 = proxy.metrics()
        assert m1.get("sluice_client_connections") == base_clients + 1
        assert m1.get("sluice_client_connections_received") >= base_received + 1
        assert m1.get("sluice_query_requests") >= base_queries + 10
        assert 1 <= m1.get("sluice_database_connections") <= cap
        assert m1.get("sluice_database_connections") == pg.backend_count(app.app_user)
        # The connection goes back right after the reply is written; the metrics endpoint may
        # run on another worker thread, so it may see the release a moment after the client
        # saw the reply.
        harness.wait_for(
            lambda: proxy.metrics().get("sluice_database_connections_currently_borrowed") == 0, 5,
            0.02, "the connection back in the pool")

        c.execute("BEGIN")
        c.execute("select 1")
        m2 = proxy.metrics()
        assert m2.get("sluice_database_connections_currently_borrowed") == 1
        c.execute("COMMIT")
        assert proxy.metrics().get("sluice_database_connections_currently_borrowed") == 0

        assert m2.get("sluice_database_connections_currently_session_pinned") == 0
        c.execute("SET work_mem = '5MB'")  # tracked, not pinned
        assert proxy.metrics().get("sluice_database_connections_currently_session_pinned") == 0
        c.execute("CREATE TEMP TABLE pin_me (a int)")
        m3 = proxy.metrics()
        assert m3.get("sluice_database_connections_currently_session_pinned") == 1
        assert m3.get("sluice_database_connections_currently_session_pinned", reason="temporary_object") == 1
    finally:
        c.close()
    harness.wait_for(lambda: proxy.metrics().get("sluice_client_connections") == base_clients, 10, 0.1,
                     "client gauge to drop after disconnect")
    harness.wait_for(lambda: proxy.metrics().get("sluice_database_connections_currently_session_pinned") == 0,
                     10, 0.1, "pinned gauge to drop after the pinned client left")


def test_query_requests_count_prepared_statement_executions(proxy_factory, app):
    """Executions of a protocol-level named prepared statement (Bind/Execute without Parse) are queries too."""
    proxy = _pct_proxy(proxy_factory)
    with proxy.connect(app.app_user, app.app_password, prepare_threshold=0) as c:
        c.execute("select %s::int", (0,))
        before = proxy.metrics().get("sluice_query_requests")
        for i in range(10):
            assert c.execute("select %s::int", (i,)).fetchone()[0] == i
        after = proxy.metrics().get("sluice_query_requests")
    assert after - before >= 10, f"10 executions counted as {after - before}"


def test_metrics_cap_follows_percent(proxy_factory, app):
    proxy = _pct_proxy(proxy_factory, 7)
    with proxy.connect(app.app_user, app.app_password) as c:
        c.execute("select 1")
    assert proxy.metrics().get("sluice_max_database_connections_allowed") == SERVER_MAX_CONNECTIONS * 7 // 100


def test_metrics_no_secrets(proxy_factory, app):
    proxy = _pct_proxy(proxy_factory)
    with proxy.connect(app.app_user, app.app_password) as c:
        c.execute("select 1")
    with pytest.raises(psycopg.OperationalError):
        proxy.connect(app.app_user, "wrong-password-xyz")
    text = proxy.metrics_text()
    for secret in (app.app_password, app.md5_password, "wrong-password-xyz"):
        assert secret not in text
    log = proxy.log_text()
    assert log.strip(), "the proxy logged nothing at all"
    for secret in (app.app_password, app.md5_password, "wrong-password-xyz"):
        assert secret not in log


def test_metrics_unknown_path_404(proxy):
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(f"http://127.0.0.1:{proxy.metrics_port}/nope", timeout=10)
    assert ei.value.code == 404
