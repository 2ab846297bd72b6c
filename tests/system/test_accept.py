"""Accepting clients: each worker takes connections with accept4 as its listener becomes
readable and hands them to its poller. The peer's address comes with the connection, and the
admission rules decide on it before the proxy sends a byte."""
import socket
import time

from sluice_harness import harness


def _refused_without_a_byte(proxy):
    sock = socket.create_connection((proxy.host, proxy.port), timeout=10)
    sock.settimeout(10)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    finally:
        sock.close()


def test_admission_decides_on_the_accepted_peer_address(proxy_factory, app, tmp_path):
    rules = tmp_path / "admission"
    proxy = proxy_factory(start=False, admission={"file": str(rules)})
    listener = f"{proxy.host}:{proxy.port}"
    rules.write_text(f"{listener} 10.0.0.0/8\n")  # the loopback is not admitted
    proxy.start()

    assert _refused_without_a_byte(proxy)
    harness.wait_for(lambda: f"refused a connection from 127.0.0.1 on {listener}" in proxy.log_text(),
                     10, 0.1, "the refusal in the log")

    rules.write_text(f"{listener} 10.0.0.0/8\n{listener} 127.0.0.1/32\n")
    deadline = time.monotonic() + 10
    while True:  # the file is re-read within a quarter of a second of its change
        try:
            with proxy.connect(app.app_user, app.app_password) as conn:
                assert conn.execute("select 1").fetchone() == (1,)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_a_burst_of_clients_is_accepted_and_logged_in(proxy_factory, app):
    # More clients at once than one turn of the accept loop takes (16): the rest are taken on
    # the following turns, none is left in the listener's backlog.
    proxy = proxy_factory(workers=1)

    def login(_):
        with proxy.connect(app.app_user, app.app_password) as conn:
            assert conn.execute("select 1").fetchone() == (1,)

    errors = harness.run_concurrently(login, 60, timeout=120)
    assert errors == []
