"""Query cancellation through the proxy: proxy-issued keys, the right query only, never another client's."""
import socket
import struct
import threading
import time

import psycopg
import pytest



def send_cancel(proxy, pid: int, key: int) -> None:
    with socket.create_connection((proxy.host, proxy.port), timeout=5) as s:
        s.sendall(struct.pack("!III", 16, 80877102, pid) + struct.pack("!I", key))
        s.settimeout(5)
        try:
            s.recv(1)  # the proxy closes once it has acted
        except OSError:
            pass


def test_cancel_ends_a_long_query_within_a_second(proxy, app):
    with proxy.connect(app.app_user, app.app_password) as c:
        timer = threading.Timer(0.5, c.cancel)
        t0 = time.monotonic()
        timer.start()
        with pytest.raises(psycopg.errors.QueryCanceled):
            c.execute("select pg_sleep(10)")
        elapsed = time.monotonic() - t0
        timer.join()
        assert elapsed < 0.5 + 1.0, f"cancelled after {elapsed:.2f}s"
        assert c.execute("select 1").fetchone()[0] == 1


def test_wrong_key_does_nothing(proxy, app):
    with proxy.connect(app.app_user, app.app_password) as c:
        pid = c.info.backend_pid
        done = []
        t = threading.Thread(target=lambda: done.append(c.execute("select pg_sleep(1.5), 'finished'").fetchone()[1]))
        t.start()
        time.sleep(0.4)
        send_cancel(proxy, pid, 0x12345678)       # a guess
        send_cancel(proxy, pid ^ 0xFFFF, 0)       # another session's pid, no key
        t.join()
        assert done == ["finished"]


class SlowStartRelay:
    """A TCP relay to PostgreSQL that holds the first bytes of every new connection for `delay`
    seconds, then passes everything through: a cancel request (always a new connection) reaches
    the server late, while established connections run at full speed."""

    def __init__(self, target_port: int, delay: float):
        self.target_port = target_port
        self.delay = delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pump, args=(client, server, self.delay), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, 0), daemon=True).start()

    @staticmethod
    def _pump(src, dst, delay):
        first = True
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if first and delay:
                    time.sleep(delay)
                first = False
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (dst, src):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.closed = True
        self.listener.close()


def test_late_cancel_never_reaches_the_next_client(proxy_factory, pg, app):
    """A's cancel is still on its way to the server when A's query ends and B is waiting for the
    same (only) server connection: B must not get the connection until the server has taken the
    cancel, or the late signal would cancel B's query."""
    relay = SlowStartRelay(pg.port, delay=0.5)
    proxy = proxy_factory(target_port=relay.port,
                          connection_pool={"max_connections_percent": 1, "max_idle_connections_percent": 1,
                                           "connection_borrow_timeout": 60})
    a = proxy.connect(app.app_user, app.app_password, prepare_threshold=None)
    b = proxy.connect(app.app_user, app.app_password, prepare_threshold=None)
    try:
        a.execute("select 1")  # the one server connection is open and idle
        results = {}

        def run(name, conn, sql):
            try:
                results[name] = conn.execute(sql).fetchone()[0]
            except psycopg.Error as e:
                results[name] = e

        ta = threading.Thread(target=run, args=("a", a, "select 'a-done' from pg_sleep(0.4)"))
        ta.start()
        time.sleep(0.1)
        a.cancel()  # reaches the server about 0.5 s later, after A's query has ended
        tb = threading.Thread(target=run, args=("b", b, "select 'b-done' from pg_sleep(1)"))
        tb.start()
        ta.join()
        tb.join()
        assert results["a"] == "a-done", "the cancel arrived too early to test the race"
        assert results["b"] == "b-done", f"B's query was hit by A's cancel: {results['b']!r}"
    finally:
        a.close()
        b.close()
        relay.close()
