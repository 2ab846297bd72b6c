"""Logins under abuse: clients that never finish logging in are closed after login_timeout,
at most max_pending_logins may be logging in at once (more are told so at once), failed logins
are answered after auth_failure_delay; logged-in clients go on working through all of it."""
import socket
import time

import psycopg
import pytest

from sluice_harness import harness


def _half_open(proxy):
    """A TCP connection that never sends a byte."""
    return socket.create_connection((proxy.host, proxy.port), timeout=10)


def _closed_with(sock, timeout=10):
    """Everything the proxy sent until it closed the connection (raises if it stays open)."""
    sock.settimeout(timeout)
    received = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return received
        received += chunk


def test_a_login_that_never_finishes_is_closed_after_login_timeout(proxy_factory, app):
    proxy = proxy_factory(require_tls=False, login_timeout=1)
    with proxy.connect(app.app_user, app.app_password, sslmode="disable") as working:
        silent = _half_open(proxy)
        slow = _half_open(proxy)
        packet = harness.startup_packet({"user": app.app_user, "database": app.dbname})
        # Slowloris: a byte now and then, never the whole packet. It stops before the proxy's
        # timeout, so that no byte of its races the proxy's close.
        for byte in packet[:4]:
            slow.sendall(bytes([byte]))
            time.sleep(0.15)
        assert b"timeout expired during login" in _closed_with(slow)
        assert b"timeout expired during login" in _closed_with(silent)
        slow.close()
        silent.close()
        assert working.execute("select 1").fetchone()[0] == 1


def test_at_most_max_pending_logins_are_logging_in_at_once(proxy_factory, app):
    proxy = proxy_factory(require_tls=False, max_pending_logins=3, login_timeout=30)
    with proxy.connect(app.app_user, app.app_password, sslmode="disable") as working:
        pending = [_half_open(proxy) for _ in range(3)]
        time.sleep(0.3)  # the proxy has taken them
        refused = _half_open(proxy)
        error = harness.parse_error_fields(_closed_with(refused)[5:])
        refused.close()
        assert error["C"] == "53300", error
        assert "max_pending_logins" in error["M"], error
        with pytest.raises(psycopg.OperationalError, match="max_pending_logins"):
            proxy.connect(app.app_user, app.app_password, sslmode="disable")
        # Logged-in clients are not pending: they work on.
        assert working.execute("select 2").fetchone()[0] == 2
        pending.pop().close()
        time.sleep(0.3)
        with proxy.connect(app.app_user, app.app_password, sslmode="disable") as late:
            assert late.execute("select 3").fetchone()[0] == 3
        for s in pending:
            s.close()


def test_a_failed_login_is_answered_after_auth_failure_delay(proxy_factory, app):
    proxy = proxy_factory(require_tls=False, auth_failure_delay=400)
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        proxy.connect(app.app_user, "wrong", sslmode="disable")
    assert time.monotonic() - started >= 0.4
    with proxy.connect(app.app_user, app.app_password, sslmode="disable") as ok:
        assert ok.execute("select 1").fetchone()[0] == 1


def _wait_metric(proxy, name, value, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        current = proxy.metrics().get(name)
        if current == value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} is {current}, expected {value}")
        time.sleep(0.05)


def test_at_most_max_concurrent_logins_do_login_work_and_the_rest_wait_their_turn(proxy_factory, app):
    # The gate is per worker: with one, every client below meets the same gate.
    proxy = proxy_factory(require_tls=False, max_concurrent_logins=2, login_timeout=60, workers=1)
    with proxy.connect(app.app_user, app.app_password, sslmode="disable") as working:
        half_open = _half_open(proxy)  # sends nothing: takes no place at the gate
        holders = []
        for _ in range(2):  # the first bytes of a startup packet, never the rest
            s = _half_open(proxy)
            s.sendall(b"\x00\x00")
            holders.append(s)
        _wait_metric(proxy, "sluice_client_logins_in_progress", 2)
        waiter = harness.RawPgClient(proxy.host, proxy.port, tls=False)
        waiter.startup(app.app_user)
        _wait_metric(proxy, "sluice_client_logins_waiting", 1)
        assert working.execute("select 1").fetchone()[0] == 1, "logged-in clients work on"
        holders.pop().close()  # its place goes to the one waiting, which now logs in
        waiter.authenticate(app.app_user, app.app_password)
        assert waiter.scalar("select 2") == "2"
        waiter.close()
        _wait_metric(proxy, "sluice_client_logins_waiting", 0)
        for s in holders + [half_open]:
            s.close()
        _wait_metric(proxy, "sluice_client_logins_in_progress", 0)


def test_near_the_open_file_limit_new_clients_are_refused_and_established_work_goes_on(
        proxy_binary, pg, app, tmp_path):
    """Under an open-file limit of 200, half-open connections cannot take the descriptors that
    logged-in clients' server connections and the metrics endpoint need."""
    wrapper = tmp_path / "sluice-proxy"
    wrapper.write_text(f'#!/bin/sh\nexec prlimit --nofile=200:200 {proxy_binary} "$@"\n')
    wrapper.chmod(0o755)
    # Two workers: one accepts the flood for the other, and the clients on their way between
    # them count against the budget too (they once overran the limit).
    proxy = harness.Proxy(str(wrapper), pg.port, users=[(app.app_user, app.app_password)],
                          require_tls=False, login_timeout=60, workers=2,
                          connection_pool={"max_connections_percent": 10,
                                           "max_idle_connections_percent": 10})
    proxy.start()
    flood = []
    try:
        working = [proxy.connect(app.app_user, app.app_password, sslmode="disable") for _ in range(3)]
        for c in working:
            c.execute("begin")  # each holds a server connection of its own
        refused = 0
        for _ in range(250):
            try:
                s = _half_open(proxy)
            except OSError:
                break
            flood.append(s)
        time.sleep(0.5)  # the refusals are written at accept
        for s in flood:
            s.setblocking(False)
            try:
                data = s.recv(4096)
            except OSError:  # nothing (still logging in), or reset after the refusal
                continue
            if data[:1] == b"E" and b"53300" in data and b"file descriptors" in data:
                refused += 1
        assert refused > 0, "the flood should reach the descriptor budget"
        for i, c in enumerate(working):
            assert c.execute("select %s::int", (i,)).fetchone()[0] == i
            c.execute("commit")
        assert proxy.metrics().get("sluice_client_connections") == 3, "the metrics endpoint answers"
        for s in flood:
            s.close()
        flood = []
        deadline = time.monotonic() + 10
        while True:
            try:
                with proxy.connect(app.app_user, app.app_password, sslmode="disable") as late:
                    assert late.execute("select 1").fetchone()[0] == 1
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert "Too many open files" not in proxy.log_text()
        for c in working:
            c.close()
    finally:
        for s in flood:
            s.close()
        proxy.stop()
        proxy.cleanup()


def test_the_wait_at_the_login_gate_does_not_count_towards_login_timeout(proxy_factory, app):
    """A storm queues at the gate: a client that waited its turn still has all of login_timeout
    for its own login. Here the gate's one place is held until login_timeout ends the holder
    (2 s); the waiter then takes a further second to answer the password request, 2.5 s after it
    came, which the old rule (counting from the first byte) would have cut off."""
    proxy = proxy_factory(require_tls=False, max_concurrent_logins=1, login_timeout=2, workers=1)
    holder = _half_open(proxy)
    holder.sendall(b"\x00\x00")  # takes the gate's place, never finishes
    _wait_metric(proxy, "sluice_client_logins_in_progress", 1)
    time.sleep(0.5)
    waiter = harness.RawPgClient(proxy.host, proxy.port, tls=False)
    try:
        waiter.startup(app.app_user)
        _wait_metric(proxy, "sluice_client_logins_waiting", 1)
        t, _ = waiter.read_msg()  # the password request comes once the holder is gone (~2 s)
        assert t == b"R"
        time.sleep(1.0)
        waiter.send(harness.msg(b"p", b"wrong-on-purpose\0"))  # any answer: the login is alive
        t, p = waiter.read_msg()
        assert t in (b"R", b"E"), t
        if t == b"E":
            assert harness.parse_error_fields(p)["C"] != "08006", "cut off by login_timeout"
    finally:
        waiter.close()
        holder.close()
