"""Malformed and oversized packets get an ErrorResponse and a closed connection, and never disturb
other clients (a psycopg client keeps querying throughout each test)."""
import random
import socket
import struct
import threading
import time

import psycopg
import pytest

from sluice_harness import harness

MAX_MESSAGE = 65536


class Bystander(threading.Thread):
    """A well-behaved client querying in a loop while the test misbehaves."""

    def __init__(self, proxy, app):
        super().__init__(daemon=True)
        self.conn = proxy.connect(app.app_user, app.app_password)
        self.ok = 0
        self.errors = []
        self._stop_evt = threading.Event()

    def run(self):
        i = 0
        while not self._stop_evt.is_set():
            try:
                i += 1
                assert self.conn.execute("select %s::int", (i,)).fetchone()[0] == i
                self.ok += 1
            except Exception as e:
                self.errors.append(repr(e))
                return
            time.sleep(0.01)

    def finish(self):
        self._stop_evt.set()
        self.join(30)
        self.conn.close()
        assert not self.errors, self.errors
        assert self.ok > 0


@pytest.fixture(params=["tls-scram", "plain-md5"])
def setup(request, proxy_factory, app):
    if request.param == "tls-scram":
        proxy = proxy_factory(max_message_size=MAX_MESSAGE)
        tls = True
    else:
        proxy = proxy_factory(max_message_size=MAX_MESSAGE, require_tls=False, auth_type="POSTGRES_MD5")
        tls = False
    by = Bystander(proxy, app)
    by.start()
    yield proxy, tls
    by.finish()
    assert proxy.alive()
    with proxy.connect(app.app_user, app.app_password) as c:
        assert c.execute("select 'still fine'").fetchone()[0] == "still fine"


def raw(proxy, tls):
    return harness.RawPgClient(proxy.host, proxy.port, tls=tls)


def logged_in(proxy, tls, app):
    c = raw(proxy, tls)
    c.login(app.app_user, app.app_password)
    assert c.scalar("select 1") == "1"
    return c


def test_oversized_startup_packet(setup, app):
    proxy, tls = setup
    with raw(proxy, tls) as c:
        c.send(struct.pack("!II", 20000, harness.PROTOCOL_3) + b"user\0app\0")
        err = c.expect_error_and_close()
    assert err["C"] == "08P01", err


def test_protocol_2_startup(setup, app):
    proxy, tls = setup
    with raw(proxy, tls) as c:
        body = struct.pack("!I", 0x00020000) + b"appdb".ljust(64, b"\0") + b"app".ljust(32, b"\0") + b"\0" * 192
        c.send(struct.pack("!I", len(body) + 4) + body)
        err = c.expect_error_and_close()
    assert err["C"] == "0A000", err
    assert err.get("S") == "FATAL", err


def test_unknown_request_code(setup, app):
    proxy, tls = setup
    with raw(proxy, tls) as c:
        c.send(struct.pack("!II", 8, (1234 << 16) | 9999))
        err = c.expect_error_and_close()
    assert err["C"] == "0A000", err


def test_startup_length_too_small(setup, app):
    proxy, tls = setup
    with raw(proxy, tls) as c:
        c.send(struct.pack("!I", 3))
        msgs, closed = c.read_until_closed(timeout=10)
    assert closed, "connection left open after a startup length of 3"


def test_unknown_message_type_after_auth(setup, app):
    proxy, tls = setup
    c = logged_in(proxy, tls, app)
    try:
        c.send(b"\x01" + struct.pack("!I", 4))
        err = c.expect_error_and_close()
        assert err["C"] == "08P01", err
    finally:
        c.close()


def test_declared_length_above_max_message_size(setup, app):
    proxy, tls = setup
    c = logged_in(proxy, tls, app)
    try:
        c.send(b"Q" + struct.pack("!I", MAX_MESSAGE * 16) + b"select 1")
        err = c.expect_error_and_close()
        assert err["C"] == "08P01", err
    finally:
        c.close()


def test_huge_declared_length(setup, app):
    proxy, tls = setup
    c = logged_in(proxy, tls, app)
    try:
        c.send(b"Q" + struct.pack("!I", 0x7FFFFFF0))
        err = c.expect_error_and_close()
        assert err["C"] == "08P01", err
    finally:
        c.close()


def test_length_below_4(setup, app):
    proxy, tls = setup
    c = logged_in(proxy, tls, app)
    try:
        c.send(b"Q" + struct.pack("!I", 2))
        err = c.expect_error_and_close()
        assert err["C"] == "08P01", err
    finally:
        c.close()


def test_message_within_limit_still_works(setup, app):
    proxy, tls = setup
    c = logged_in(proxy, tls, app)
    try:
        payload = "x" * (MAX_MESSAGE // 2)
        assert c.scalar(f"select length('{payload}')") == str(len(payload))
    finally:
        c.close()


def test_real_oversized_query_psycopg(setup, app):
    """SQL text bigger than max_message_size (the proxy must read it whole) fails for that
    client only."""
    proxy, tls = setup
    conn = proxy.connect(app.app_user, app.app_password, sslmode="require" if tls else "disable")
    try:
        with pytest.raises(psycopg.Error):
            conn.execute(f"select length('{'y' * (MAX_MESSAGE * 2)}')")
            conn.execute("select 1")
    finally:
        conn.close()


def test_bind_parameters_over_max_message_size_stream_through(setup, app):
    """max_message_size limits only what the proxy parses: a Bind's parameters pass as they
    come, whatever their size (here 32 times the limit), and the value arrives intact."""
    proxy, tls = setup
    conn = proxy.connect(app.app_user, app.app_password, sslmode="require" if tls else "disable")
    try:
        value = "y" * (MAX_MESSAGE * 32) + "z"
        assert conn.execute("select length(%s), right(%s, 2)", (value, value)).fetchone() == \
            (len(value), "yz")
        assert conn.execute("select 1").fetchone() == (1,)
    finally:
        conn.close()


def test_garbage_during_authentication(setup, app):
    proxy, tls = setup
    with raw(proxy, tls) as c:
        c.startup(app.app_user)
        t, p = c.read_msg()
        assert t == b"R"
        c.send(b"Z" + struct.pack("!I", 5) + b"I")  # not a password message
        err = c.expect_error_and_close()
    assert err["C"] in ("08P01", "28P01"), err


def test_truncated_startup_then_close(setup, app):
    proxy, tls = setup
    for _ in range(20):
        with raw(proxy, tls) as c:
            c.send(struct.pack("!I", 100) + struct.pack("!I", harness.PROTOCOL_3) + b"user\0")
    # the half-open clients are released: only the bystander remains connected
    harness.wait_for(lambda: proxy.metrics().get("sluice_client_connections") <= 1, 15 * harness.SLOW, 0.2,
                     "abandoned startup attempts to be dropped")


def test_oversized_query_gets_the_fatal_not_a_reset(setup, app):
    """The client is still sending when the proxy refuses the message: what it sends is read and
    dropped until the FATAL is through, so the driver reports the proxy's reason."""
    proxy, tls = setup
    conn = proxy.connect(app.app_user, app.app_password, sslmode="require" if tls else "disable")
    try:
        with pytest.raises(psycopg.OperationalError, match="exceeds max_message_size"):
            conn.execute(f"select length('{'y' * (8 * 1024 * 1024)}')")
    finally:
        conn.close()


def _first_message_after_startup(host, port, tls, user, database, protocol, **params):
    c = harness.RawPgClient(host, port, tls=tls)
    p = {"user": user, "database": database}
    p.update(params)
    c.send(harness.startup_packet(p, protocol=protocol))
    return c, c.read_msg()


@pytest.mark.parametrize("protocol,options", [((3 << 16) | 2, {}),
                                              ((3 << 16) | 0, {"_pq_.sluice_test": "on"}),
                                              ((3 << 16) | 1, {"_pq_.a": "1", "_pq_.b": "2"})])
def test_newer_protocol_versions_are_negotiated_as_postgresql_does(setup, app, pg, protocol, options):
    proxy, tls = setup
    direct, (t_direct, p_direct) = _first_message_after_startup(
        pg.host, pg.port, False, app.app_user, app.dbname, protocol, **options)
    direct.close()
    assert t_direct == b"v", "PostgreSQL 15 answers with NegotiateProtocolVersion"
    c, (t, p) = _first_message_after_startup(proxy.host, proxy.port, tls, app.app_user, app.dbname,
                                             protocol, **options)
    try:
        assert (t, p) == (t_direct, p_direct)
        (version, count) = struct.unpack("!II", p[:8])
        assert version == 3 << 16 and count == len(options)
        c.authenticate(app.app_user, app.app_password)  # the login goes on as usual
        assert c.scalar("select 1") == "1"
    finally:
        c.close()


def test_a_client_that_disconnects_after_each_byte(setup, app):
    """Every prefix of a login and a query, each on its own connection closed right after it."""
    proxy, tls = setup
    stream = harness.startup_packet({"user": app.app_user, "database": app.dbname})
    if tls:
        stream = struct.pack("!II", 8, harness.SSL_REQUEST_CODE)
    stream += b"Q" + struct.pack("!I", 13) + b"select 1\0"
    for n in range(1, len(stream) + 1):
        s = socket.create_connection((proxy.host, proxy.port), timeout=10)
        s.sendall(stream[:n])
        s.close()
    assert proxy.alive()


def _read_until_closed(s):
    """Reads until the proxy closes the connection (a reset counts as closed)."""
    s.settimeout(10)
    while True:
        try:
            if not s.recv(4096):
                return
        except ConnectionResetError:
            return


def test_ssl_negotiation_then_plaintext(setup, app):
    proxy, tls = setup
    s = socket.create_connection((proxy.host, proxy.port), timeout=10)
    try:
        s.sendall(struct.pack("!II", 8, harness.SSL_REQUEST_CODE))
        assert s.recv(1) == b"S"
        # A plaintext startup where the TLS ClientHello should be: the handshake fails and the
        # connection closes.
        s.sendall(harness.startup_packet({"user": app.app_user, "database": app.dbname}))
        _read_until_closed(s)
    finally:
        s.close()
    assert proxy.alive()


def test_random_garbage_instead_of_a_startup_packet(setup, app):
    proxy, tls = setup
    rng = random.Random(1414)
    for _ in range(30):
        s = socket.create_connection((proxy.host, proxy.port), timeout=10)
        try:
            s.sendall(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096))))
            _read_until_closed(s)
        finally:
            s.close()
    assert proxy.alive()
