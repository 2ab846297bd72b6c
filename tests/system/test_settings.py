"""Session settings without pinning: SET, RESET and set_config() are tracked per client and
re-applied on whichever server connection it borrows; transactions undo them as PostgreSQL does.

Most tests share one server connection among clients (cap 1): whatever one client leaves there,
the next one meets, so a leak shows at once."""
import psycopg
import pytest

from sluice_harness import harness

PIN_LOG = "was pinned"


@pytest.fixture
def shared(proxy_factory):
    return proxy_factory(connection_pool={"max_connections_percent": 1, "max_idle_connections_percent": 1,
                                          "connection_borrow_timeout": 20})


def setting(conn, name):
    return conn.execute("select current_setting(%s)", (name,)).fetchone()[0]


def test_set_is_tracked_not_pinned_and_never_leaks(shared, app):
    with shared.connect(app.app_user, app.app_password) as a, shared.connect(app.app_user, app.app_password) as b:
        a.execute("SET work_mem = '7MB'")
        # With one server connection, B could not run at all if A were pinned.
        assert setting(b, "work_mem") == "4MB"
        assert a.execute("SHOW work_mem").fetchone()[0] == "7MB"
        assert setting(b, "work_mem") == "4MB"
        b.execute("SET work_mem = '5MB'")
        assert setting(a, "work_mem") == "7MB"
        assert setting(b, "work_mem") == "5MB"
        m = shared.metrics()
        assert m.get("sluice_database_connections_currently_session_pinned") == 0
    assert PIN_LOG not in shared.log_text()


def test_set_in_a_rolled_back_transaction_is_undone(shared, app):
    with shared.connect(app.app_user, app.app_password) as a, shared.connect(app.app_user, app.app_password) as b:
        a.execute("SET statement_timeout = '11s'")
        a.execute("BEGIN")
        a.execute("SET statement_timeout = '22s'")
        assert setting(a, "statement_timeout") == "22s"
        a.execute("ROLLBACK")
        assert setting(b, "statement_timeout") == "0"
        assert setting(a, "statement_timeout") == "11s"
        a.execute("BEGIN")
        a.execute("SET statement_timeout = '33s'")
        a.execute("COMMIT")
        assert setting(b, "statement_timeout") == "0"
        assert setting(a, "statement_timeout") == "33s"


def test_set_local_and_local_set_config_end_with_the_transaction(shared, app):
    with shared.connect(app.app_user, app.app_password) as a:
        with a.transaction():
            a.execute("SET LOCAL work_mem = '9MB'")
            a.execute("select set_config('application_name', 'local-name', true)")
            assert setting(a, "work_mem") == "9MB"
        assert setting(a, "work_mem") == "4MB"
        assert setting(a, "application_name") != "local-name"


def test_set_config_in_session_scope_is_tracked(shared, app):
    with shared.connect(app.app_user, app.app_password) as a, shared.connect(app.app_user, app.app_password) as b:
        a.execute("select set_config('sluice.custom', 'mine', false)")
        assert setting(a, "sluice.custom") == "mine"
        assert b.execute("select current_setting('sluice.custom', true)").fetchone()[0] in (None, "")


def test_reset_returns_to_the_startup_value(shared, app):
    with shared.connect(app.app_user, app.app_password, options="-c work_mem=6MB") as a, \
            shared.connect(app.app_user, app.app_password) as b:
        assert setting(a, "work_mem") == "6MB"
        a.execute("SET work_mem = '8MB'")
        assert setting(b, "work_mem") == "4MB"
        a.execute("RESET work_mem")
        assert setting(b, "work_mem") == "4MB"
        assert setting(a, "work_mem") == "6MB", "RESET goes back to the value the client started with"
        a.execute("SET work_mem = '8MB'")
        a.execute("RESET ALL")
        assert setting(b, "work_mem") == "4MB"
        assert setting(a, "work_mem") == "6MB"


def test_list_values_survive_moving_to_another_connection(proxy_factory, app):
    proxy = proxy_factory(connection_pool={"max_connections_percent": 3, "max_idle_connections_percent": 3})
    with proxy.connect(app.app_user, app.app_password) as a:
        a.execute('SET search_path TO public, "Odd Schema"')
        expected = setting(a, "search_path")
        pids = set()
        for _ in harness.rotating_holders(proxy, app.app_user, app.app_password, 5):
            pid, path = a.execute("select pg_backend_pid(), current_setting('search_path')").fetchone()
            assert path == expected
            pids.add(pid)
        assert len(pids) >= 2, "A never moved: the test proves nothing"
    assert PIN_LOG not in proxy.log_text()


def test_bad_set_is_reported_and_changes_nothing(shared, app):
    with shared.connect(app.app_user, app.app_password) as a:
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            a.execute("SET work_mem = 'lots'")
        assert setting(a, "work_mem") == "4MB"
        a.execute("select 1")


def test_set_role_still_pins(shared, app):
    with shared.connect(app.app_user, app.app_password) as a:
        a.execute(f"SET ROLE {app.app_user}")
        m = shared.metrics()
        assert m.get("sluice_database_connections_currently_session_pinned", reason="set_role") == 1
    harness.wait_for(lambda: shared.metrics().get("sluice_database_connections_currently_session_pinned") == 0,
                     10, 0.1, "the pin to end with the session")


def test_psycopg2_and_psycopg3_connect_time_settings_do_not_pin(proxy_factory, app):
    import psycopg2
    proxy = proxy_factory(connection_pool={"max_connections_percent": 1, "max_idle_connections_percent": 1,
                                           "connection_borrow_timeout": 20})
    c2 = psycopg2.connect(proxy.dsn(app.app_user, app.app_password))
    c2.autocommit = True
    c3 = proxy.connect(app.app_user, app.app_password)
    try:
        cur = c2.cursor()
        cur.execute("SET TIME ZONE 'Asia/Tokyo'")
        c3.execute("SET DateStyle = 'German'")
        for _ in range(3):
            cur.execute("select current_setting('TimeZone'), current_setting('DateStyle')")
            assert cur.fetchone() == ("Asia/Tokyo", "ISO, MDY")
            assert c3.execute("select current_setting('DateStyle')").fetchone()[0] == "German, DMY"
    finally:
        c2.close()
        c3.close()
    assert PIN_LOG not in proxy.log_text()


def test_custom_settings_row_level_security_style(shared, app):
    """Apps set a tenant with set_config('app.tenant', …, false) or SET app.tenant: pg_settings does not list
    such custom settings, and they must neither leak nor get lost."""
    with shared.connect(app.app_user, app.app_password) as a, shared.connect(app.app_user, app.app_password) as b:
        a.execute("select set_config('app.tenant', 'a-corp', false)")
        b.execute("SET app.tenant = 'b-corp'")
        for _ in range(3):
            assert setting(a, "app.tenant") == "a-corp"
            assert setting(b, "app.tenant") == "b-corp"
        b.execute("RESET app.tenant")
        assert b.execute("select current_setting('app.tenant', true)").fetchone()[0] in (None, "")
        assert setting(a, "app.tenant") == "a-corp"
        with shared.connect(app.app_user, app.app_password) as c:
            assert c.execute("select current_setting('app.tenant', true)").fetchone()[0] in (None, "")
