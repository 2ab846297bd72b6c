"""TLS requirement, client authentication (SCRAM / MD5), identical failures, certificates, target TLS."""
import hashlib
import subprocess
import time

import psycopg
import psycopg2
import pytest

from sluice_harness import harness

TLS_REQUIRED = "This proxy requires TLS connections."


def psql(proxy, user, password, sql, sslmode="require", extra_env=None):
    env = proxy.env(user, password, sslmode=sslmode)
    env.update(extra_env or {})
    return subprocess.run([harness.PSQL, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql], env=env,
                          capture_output=True, text=True, timeout=60 * harness.SLOW)


# -- TLS requirement

def test_plaintext_refused_when_tls_required_psql(proxy, app):
    r = psql(proxy, app.app_user, app.app_password, "select 1", sslmode="disable")
    assert r.returncode != 0
    assert TLS_REQUIRED in r.stderr, r.stderr


def test_plaintext_refused_when_tls_required_psycopg(proxy, app):
    with pytest.raises(psycopg.OperationalError) as ei:
        proxy.connect(app.app_user, app.app_password, sslmode="disable")
    assert TLS_REQUIRED in str(ei.value)


def test_plaintext_refused_raw_sqlstate(proxy, app):
    with harness.RawPgClient(proxy.host, proxy.port, tls=False) as c:
        c.startup(app.app_user)
        err = c.expect_error_and_close()
    assert err["S"] == "FATAL" and err["C"] == "28000" and err["M"] == TLS_REQUIRED, err


def test_plaintext_allowed_when_tls_not_required(proxy_factory, app):
    proxy = proxy_factory(require_tls=False)
    with proxy.connect(app.app_user, app.app_password, sslmode="disable") as c:
        assert c.execute("select 41 + 1").fetchone()[0] == 42
        assert c.pgconn.ssl_in_use is False
    # TLS still accepted
    with proxy.connect(app.app_user, app.app_password, sslmode="require") as c:
        assert c.execute("select 1").fetchone()[0] == 1
        assert c.pgconn.ssl_in_use is True


def test_tls_in_use_with_require(proxy, app):
    with proxy.connect(app.app_user, app.app_password) as c:
        assert c.pgconn.ssl_in_use is True
        assert c.execute("select current_user").fetchone()[0] == app.app_user


@pytest.mark.parametrize("layer", ["sluice", "openssl"])
@pytest.mark.parametrize("max_version", ["TLSv1.2", "TLSv1.3"])
def test_either_record_layer_with_either_tls_version(proxy_factory, app, layer, max_version):
    """[tls] record_layer: a client's TLS 1.3 records move to sluice's record layer after the
    handshake ("sluice") or stay with OpenSSL ("openssl"); TLS 1.2 stays with OpenSSL either way.
    Clients see the same: large and small results both ways, and a clean close."""
    proxy = proxy_factory(tls={"record_layer": layer})
    env = dict(proxy.env(app.app_user, app.app_password), PGSSLMAXPROTOCOLVERSION=max_version)
    r = subprocess.run([harness.PSQL, "-X", "-c", "\\conninfo"], env=env, capture_output=True,
                       text=True, timeout=30)
    assert f"SSL connection (protocol: {max_version}" in r.stdout, r.stdout + r.stderr
    with proxy.connect(app.app_user, app.app_password, ssl_max_protocol_version=max_version) as c:
        for size in (1, 16384, 100000, 3000000):
            assert c.execute("select length(%s::text)", ("x" * size,)).fetchone() == (size,)
            assert c.execute("select repeat('y', %s)", (size,)).fetchone()[0] == "y" * size


# -- authentication

def _failed_login_raw(proxy, user, password):
    c = harness.RawPgClient(proxy.host, proxy.port, tls=True)
    try:
        with pytest.raises(harness.PgError) as ei:
            c.login(user, password)
        _, closed = c.read_until_closed(timeout=5)
        assert closed, "connection not closed after the authentication failure"
        return ei.value.fields, list(c.auth_requests)
    finally:
        c.close()


def test_wrong_password_and_unknown_user_identical(proxy_factory, pg, app):
    proxy = proxy_factory()
    time.sleep(1)  # let any start-up probing of the server finish
    sampler = harness.ActivitySampler(pg, app.app_user)
    sampler.start()
    try:
        wrong, wrong_auth = _failed_login_raw(proxy, app.app_user, "wrong-password-xyz")
        unknown, unknown_auth = _failed_login_raw(proxy, "nosuchuser", "wrong-password-xyz")
        # psycopg/libpq see the same text
        for user in (app.app_user, "nosuchuser"):
            with pytest.raises(psycopg.OperationalError) as ei:
                proxy.connect(user, "wrong-password-xyz")
            assert f'password authentication failed for user "{user}"' in str(ei.value)
        time.sleep(0.3)
    finally:
        peak = sampler.stop()
    assert sampler.samples > 0 and not sampler.errors, sampler.errors
    assert wrong["S"] == "FATAL" and wrong["C"] == "28P01", wrong
    assert wrong["M"] == f'password authentication failed for user "{app.app_user}"', wrong
    assert unknown["M"] == 'password authentication failed for user "nosuchuser"', unknown
    strip = lambda f: {k: v.replace(app.app_user, "X").replace("nosuchuser", "X") for k, v in f.items()}
    assert strip(wrong) == strip(unknown)
    # The same authentication exchange is offered, so user existence is not revealed.
    assert wrong_auth[:1] == unknown_auth[:1] == [10], (wrong_auth, unknown_auth)

    # No server connection was used for any of them.
    assert peak == 0, f"{peak} server connection(s) for {app.app_user} during failed logins"
    assert "nosuchuser" not in pg.log_text()

    m = proxy.metrics()
    assert m.get("sluice_client_connections_setup_failed_auth") == 4
    # A successful login afterwards still works and is not counted as failed.
    with proxy.connect(app.app_user, app.app_password) as c:
        assert c.execute("select 1").fetchone()[0] == 1
    assert proxy.metrics().get("sluice_client_connections_setup_failed_auth") == 4
    assert "wrong-password-xyz" not in proxy.log_text()


def test_scram_client_auth(proxy, app):
    with harness.RawPgClient(proxy.host, proxy.port) as c:
        c.login(app.app_user, app.app_password)
        assert c.auth_requests[0] == 10, c.auth_requests  # AuthenticationSASL
        assert 0 in c.auth_requests
        assert c.scalar("select current_user") == app.app_user
    r = psql(proxy, app.app_user, app.app_password, "select 'scram-ok'")
    assert r.returncode == 0 and r.stdout.strip() == "scram-ok", r.stderr


def test_md5_client_auth(proxy_factory, app):
    proxy = proxy_factory(auth_type="POSTGRES_MD5")
    with harness.RawPgClient(proxy.host, proxy.port) as c:
        c.login(app.app_user, app.app_password)
        assert c.auth_requests[0] == 5, c.auth_requests  # AuthenticationMD5Password
        assert c.scalar("select current_user") == app.app_user
    r = psql(proxy, app.app_user, app.app_password, "select 'md5-ok'")
    assert r.returncode == 0 and r.stdout.strip() == "md5-ok", r.stderr
    conn = psycopg2.connect(proxy.dsn(app.app_user, app.app_password))
    try:
        cur = conn.cursor()
        cur.execute("select current_user")
        assert cur.fetchone()[0] == app.app_user
    finally:
        conn.close()
    r = psql(proxy, app.app_user, "wrong-password-xyz", "select 1")
    assert r.returncode != 0
    assert f'password authentication failed for user "{app.app_user}"' in r.stderr


def test_mixed_auth_types_per_secret(proxy_factory, app):
    proxy = proxy_factory(auth=[
        {"username": app.app_user, "password": app.app_password, "client_password_auth_type": "POSTGRES_MD5"},
        {"username": app.md5_user, "password": app.md5_password,
         "client_password_auth_type": "POSTGRES_SCRAM_SHA_256"},
    ])
    with harness.RawPgClient(proxy.host, proxy.port) as c:
        c.login(app.app_user, app.app_password)
        assert c.auth_requests[0] == 5
    with harness.RawPgClient(proxy.host, proxy.port) as c:
        c.login(app.md5_user, app.md5_password)
        assert c.auth_requests[0] == 10


def test_server_side_md5_role(proxy, pg, app):
    assert pg.scalar("select rolpassword from pg_authid where rolname = %s", params=[app.md5_user]) \
        == "md5" + hashlib.md5((app.md5_password + app.md5_user).encode()).hexdigest()
    with proxy.connect(app.md5_user, app.md5_password) as c:
        assert c.execute("select current_user, count(*) from accounts").fetchone() == (app.md5_user, app.accounts)
    r = psql(proxy, app.md5_user, app.md5_password, "select current_user")
    assert r.returncode == 0 and r.stdout.strip() == app.md5_user, r.stderr


# -- proxy certificates

def test_configured_certificate_verify_full(proxy_factory, app, tmp_path):
    certs = harness.CertBundle(str(tmp_path / "proxy-tls"))
    proxy = proxy_factory(tls={"cert_file": certs.cert, "key_file": certs.key})
    for host in ("127.0.0.1", "localhost"):
        dsn = harness.conninfo(host=host, port=proxy.port, user=app.app_user, password=app.app_password,
                               dbname="appdb", sslmode="verify-full", sslrootcert=certs.ca_cert, connect_timeout=15)
        with psycopg.connect(dsn) as c:
            assert c.execute("select 1").fetchone()[0] == 1
    other = harness.CertBundle(str(tmp_path / "other-ca"))
    dsn = harness.conninfo(host="127.0.0.1", port=proxy.port, user=app.app_user, password=app.app_password,
                           dbname="appdb", sslmode="verify-full", sslrootcert=other.ca_cert, connect_timeout=15)
    with pytest.raises(psycopg.OperationalError) as ei:
        psycopg.connect(dsn)
    assert "certificate verify failed" in str(ei.value)


def test_ephemeral_certificate_fingerprint_logged(proxy, app):
    with harness.RawPgClient(proxy.host, proxy.port) as c:
        der = c.peer_cert_der
        c.login(app.app_user, app.app_password)
    assert der
    fp = hashlib.sha256(der).hexdigest()
    log = proxy.log_text().lower().replace(":", "")
    assert fp in log, "the ephemeral certificate's SHA-256 fingerprint is not in the proxy log"


# -- TLS towards the target

def _proxy_backends_ssl(pg, user):
    with pg.superuser_conn() as c:
        return c.execute("select s.ssl from pg_stat_ssl s join pg_stat_activity a using (pid)"
                         " where a.usename = %s and a.backend_type = 'client backend'", (user,)).fetchall()


@pytest.mark.parametrize("mode,expect_ssl", [("disable", False), ("require", True), ("prefer", True)])
def test_target_tls_modes(proxy_factory, pg, app, mode, expect_ssl):
    proxy = proxy_factory(target={"tls": mode})
    with proxy.connect(app.app_user, app.app_password, autocommit=False) as c:
        c.execute("select 1")  # inside a transaction: the server connection stays borrowed
        rows = _proxy_backends_ssl(pg, app.app_user)
        assert rows, "no server connection for the proxy's user"
        assert all(r[0] is expect_ssl for r in rows), rows
        c.rollback()


def test_target_verify_full(proxy_factory, pg, app, tmp_path):
    proxy = proxy_factory(target={"tls": "verify-full", "ca_file": pg.ca_file})
    with proxy.connect(app.app_user, app.app_password) as c:
        assert c.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()").fetchone()[0] is True


def test_target_verify_full_wrong_ca_fails(proxy_factory, pg, app, tmp_path):
    other = harness.CertBundle(str(tmp_path / "other-ca"))
    proxy = proxy_factory(target={"tls": "verify-full", "ca_file": other.ca_cert},
                          connection_pool={"connection_borrow_timeout": 5})
    with pytest.raises(psycopg.Error):
        with proxy.connect(app.app_user, app.app_password) as c:
            c.execute("select 1")
    assert pg.backend_count(app.app_user) == 0
    assert proxy.alive()


def test_gssenc_request_declined_then_tls(proxy, app):
    """libpq may send a GSSENCRequest first: the proxy says 'N' and the client goes on with TLS."""
    import socket
    import ssl
    import struct
    s = socket.create_connection((proxy.host, proxy.port), timeout=10)
    try:
        s.sendall(struct.pack("!II", 8, 80877104))
        assert s.recv(1) == b"N"
        s.sendall(struct.pack("!II", 8, harness.SSL_REQUEST_CODE))
        assert s.recv(1) == b"S"
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        tls = ctx.wrap_socket(s, server_hostname="localhost")
        c = harness.RawPgClient.__new__(harness.RawPgClient)
        c.sock, c.timeout, c.params, c.auth_requests = tls, 10, {}, []
        c.login(app.app_user, app.app_password)
        assert c.scalar("select 'after gssenc'") == "after gssenc"
    finally:
        s.close()
