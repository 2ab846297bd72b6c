"""SIGHUP reloads sluice-proxy's configuration and secret files: what changed applies to what
comes next, and the sessions already there carry on (issue 15, "Change without downtime")."""
import json
import os
import socket
import tempfile

import psycopg
import pytest

from sluice_harness import harness


def _plain(proxy, app, **params):
    return proxy.connect(app.app_user, app.app_password, sslmode="disable", **params)


def _login_error(proxy, user, password, **params):
    with pytest.raises(psycopg.OperationalError) as error:
        proxy.connect(user, password, **params).close()
    return str(error.value)


def _one(conn, sql):
    return conn.execute(sql).fetchone()[0]


@pytest.fixture
def reload_user(pg, app):
    """A role of its own, so that its password may change."""
    name, password = "reload_user", harness.new_password("reload-pw")
    pg.psql(f"DROP ROLE IF EXISTS {name}; CREATE ROLE {name} LOGIN PASSWORD '{password}';"
            f"GRANT CONNECT ON DATABASE {app.dbname} TO {name};")
    yield name, password
    pg.psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{name}'")
    pg.psql(f"DROP ROLE IF EXISTS {name}", check=False)


def test_session_settings_reload_and_clients_stay(proxy_factory, app):
    """require_tls, max_client_connections, the pool cap and the log level change at SIGHUP;
    an idle session and one inside a transaction block carry on across every reload."""
    proxy = proxy_factory(workers=2)
    idle = proxy.connect(app.app_user, app.app_password)
    busy = proxy.connect(app.app_user, app.app_password, autocommit=False)
    busy.execute("UPDATE accounts SET balance = balance WHERE id = 1")

    assert "requires TLS" in _login_error(proxy, app.app_user, app.app_password, sslmode="disable")
    line = proxy.reload(require_tls=False)
    assert "require_tls" in line, line
    with _plain(proxy, app) as plain:
        assert _one(plain, "select 1") == 1

    cap_before = proxy.metrics().get("sluice_max_database_connections_allowed")
    line = proxy.reload(connection_pool={"max_connections_percent": 50,
                                         "max_idle_connections_percent": 25})
    assert "connection_pool.max_connections_percent" in line, line
    harness.wait_for(
        lambda: proxy.metrics().get("sluice_max_database_connections_allowed") == cap_before // 2,
        timeout=10, what="the cap to follow max_connections_percent")

    proxy.reload(max_client_connections=2, log_level="debug")
    assert "maximum number of client connections" in _login_error(
        proxy, app.app_user, app.app_password)

    assert _one(idle, "select 2") == 2
    busy.commit()
    # debug_logging follows log_level: the server connection's return is logged now.
    harness.wait_for(lambda: " debug server connection" in proxy.log_text(), timeout=10,
                     what="a debug line")
    assert _one(busy, "select 3") == 3
    idle.close()
    busy.close()


def test_init_query_reload_replaces_server_connections(proxy_factory, app):
    """A new init_query applies to every server connection lent afterwards: the pooled ones,
    set up with the old one, are replaced; a session inside a transaction keeps its connection
    until the block ends."""
    proxy = proxy_factory(workers=2)
    with proxy.connect(app.app_user, app.app_password) as conn:
        assert _one(conn, "SHOW statement_timeout") == "0"
        block = proxy.connect(app.app_user, app.app_password, autocommit=False)
        pid_in_block = _one(block, "select pg_backend_pid()")
        proxy.reload(connection_pool={"init_query": "SET statement_timeout = 4321"})
        assert _one(conn, "SHOW statement_timeout") == "4321ms"
        assert _one(block, "select pg_backend_pid()") == pid_in_block  # still its own
        block.commit()
        block.close()
    with proxy.connect(app.app_user, app.app_password) as fresh:
        assert _one(fresh, "SHOW statement_timeout") == "4321ms"


def test_listen_addresses_come_and_go(proxy_factory, app):
    proxy = proxy_factory(workers=2)
    first = f"127.0.0.1:{proxy.port}"
    second_port = harness.free_port()
    kept = proxy.connect(app.app_user, app.app_password)
    line = proxy.reload(listen=[first, f"127.0.0.1:{second_port}"])
    assert "listen" in line, line
    dsn = proxy.dsn(app.app_user, app.app_password).replace(f"port={proxy.port}",
                                                            f"port={second_port}")
    with psycopg.connect(dsn, autocommit=True) as other:
        assert _one(other, "select 1") == 1
    proxy.reload(listen=f"127.0.0.1:{second_port}")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=5).close()
    assert _one(kept, "select 4") == 4  # taken from the listener that went: it stays
    kept.close()


def test_secret_changes_apply_to_new_logins(proxy_factory, pg, app, reload_user):
    """A new secret file, a changed password and a removed secret take effect at SIGHUP; a
    session logged in with the old password carries on."""
    name, password = reload_user
    proxy = proxy_factory()
    assert "password authentication failed" in _login_error(proxy, name, password)

    secret = os.path.join(proxy.dir, "reload-user.json")
    with open(secret, "w") as f:
        json.dump({"username": name, "password": password}, f)
    auth = proxy.config["auth"] + [{"secret_file": secret}]
    line = proxy.reload(auth=auth)
    assert "1 secret changed" in line, line
    old_session = proxy.connect(name, password)
    assert _one(old_session, "select current_user") == name

    new_password = harness.new_password("reload-pw2")
    proxy.passwords += [password, new_password]  # checked absent from the log at teardown
    pg.psql(f"ALTER ROLE {name} PASSWORD '{new_password}'")
    with open(secret, "w") as f:
        json.dump({"username": name, "password": new_password}, f)
    assert "1 secret changed" in proxy.reload()
    assert "password authentication failed" in _login_error(proxy, name, password)
    with proxy.connect(name, new_password) as conn:
        # A new server connection logs in with the new password.
        conn.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                     "where usename = current_user and pid <> pg_backend_pid()")
        assert _one(conn, "select current_user") == name
    assert _one(old_session, "select 5") == 5
    old_session.close()

    proxy.reload(auth=auth[:-1])
    assert "password authentication failed" in _login_error(proxy, name, new_password)


def test_unreadable_secret_answers_logins_with_the_cause(proxy_factory, app):
    proxy = proxy_factory()
    auth = proxy.config["auth"] + [{"unavailable_reason": "the proxy's role may not read secret X"}]
    proxy.reload(auth=auth)
    error = _login_error(proxy, "someone", "whatever")
    assert "no credentials for the role" in error and "may not read secret X" in error, error
    with proxy.connect(app.app_user, app.app_password) as conn:  # the others are unaffected
        assert _one(conn, "select 1") == 1


def test_tls_certificate_is_read_again(proxy_factory, app):
    directory = tempfile.mkdtemp(prefix="sluice-reload-tls-")
    first = harness.CertBundle(os.path.join(directory, "a"))
    second = harness.CertBundle(os.path.join(directory, "b"))
    proxy = proxy_factory(tls={"cert_file": first.cert, "key_file": first.key})
    kept = proxy.connect(app.app_user, app.app_password, sslmode="verify-full",
                         sslrootcert=first.ca_cert)
    proxy.reload(tls={"cert_file": second.cert, "key_file": second.key})
    assert "certificate verify failed" in _login_error(
        proxy, app.app_user, app.app_password, sslmode="verify-full", sslrootcert=first.ca_cert)
    with proxy.connect(app.app_user, app.app_password, sslmode="verify-full",
                       sslrootcert=second.ca_cert) as conn:
        assert _one(conn, "select 1") == 1
    assert _one(kept, "select 6") == 6
    kept.close()


def test_bad_configuration_is_refused_and_the_old_one_stays(proxy_factory, app):
    proxy = proxy_factory(workers=2)
    auth = proxy.config["auth"]
    line = proxy.reload(connection_pool={"max_connections_percent": 0})
    assert "reload failed" in line and "max_connections_percent" in line, line
    line = proxy.reload(connection_pool={"max_connections_percent": 100},
                        auth=[{"secret_file": "/nonexistent/secret.json"}])
    assert "reload failed" in line and "cannot read" in line, line
    with proxy.connect(app.app_user, app.app_password) as conn:
        assert _one(conn, "select 1") == 1
    line = proxy.reload(auth=auth, workers=1)
    assert "reloaded" in line, line
    assert "workers changes only at a restart" in proxy.log_text()
    with proxy.connect(app.app_user, app.app_password) as conn:
        assert _one(conn, "select 1") == 1


def test_every_other_key_reloads_with_clients_kept(proxy_factory, app):
    """The remaining reloadable keys at once: each is named in the reload's log line, and the
    ones with an outside view take effect (the metrics endpoint moves, admission closes the
    listener to new clients, a new target replaces the server connection under an idle
    session), while that session carries on."""
    proxy = proxy_factory(workers=2)
    kept = proxy.connect(app.app_user, app.app_password)
    pid_before = _one(kept, "select pg_backend_pid()")
    admission = os.path.join(proxy.dir, "admission")
    with open(admission, "w") as f:
        f.write("# nobody\n")
    metrics_port = harness.free_port()
    line = proxy.reload(
        idle_client_timeout=1700, login_timeout=20, max_pending_logins=4000,
        max_concurrent_logins=50, auth_failure_delay=10, max_message_size=32 * 1024 * 1024,
        target={"host": "localhost", "health_check_interval": 1},
        connection_pool={"connection_borrow_timeout": 60, "idle_connection_seconds": 200,
                         "max_prepared_statements": 100, "adaptive_concurrency": False},
        metrics={"listen": f"127.0.0.1:{metrics_port}"}, admission={"file": admission})
    for key in ("idle_client_timeout", "login_timeout", "max_pending_logins",
                "max_concurrent_logins", "auth_failure_delay", "max_message_size", "target.host",
                "target.health_check_interval", "connection_pool.connection_borrow_timeout",
                "connection_pool.idle_connection_seconds",
                "connection_pool.max_prepared_statements",
                "connection_pool.adaptive_concurrency", "metrics.listen", "admission.file"):
        assert key in line, (key, line)
    old_metrics, proxy.metrics_port = proxy.metrics_port, metrics_port
    harness.wait_for(lambda: proxy.metrics().get("sluice_client_connections") >= 1, 10,
                     what="metrics on the new address")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", old_metrics), timeout=5).close()
    # Admission: the listener admits nobody now; the proxy closes new clients unanswered.
    assert "server closed the connection" in _login_error(proxy, app.app_user, app.app_password)
    # The session's next statement runs on a server connection of the new target.
    assert _one(kept, "select pg_backend_pid()") != pid_before
    assert _one(kept, "select 7") == 7
    kept.close()
