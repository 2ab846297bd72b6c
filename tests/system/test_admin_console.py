"""The admin console: psql and psycopg on database "sluice" as one of admin_users. PgBouncer 1.18's
SHOW commands (columns, types, plausible values under a little load, gathered from two workers),
PAUSE/RESUME (a client's query waits while paused and completes after RESUME), RELOAD, SHUTDOWN,
non-admins refused, unknown commands answered with an error and the session kept."""
import csv
import io
import subprocess
import threading

import psycopg
import pytest

from sluice_harness import harness

ADMIN, ADMIN_PASSWORD = "ops", "ops-console-password-7f3a"

POOLS_COLUMNS = ["database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req",
                 "cl_waiting_cancel_req", "sv_active", "sv_active_cancel", "sv_being_canceled",
                 "sv_idle", "sv_used", "sv_tested", "sv_login", "maxwait", "maxwait_us", "pool_mode"]
CONNECTION_COLUMNS = ["type", "user", "database", "state", "addr", "port", "local_addr", "local_port",
                      "connect_time", "request_time", "wait", "wait_us", "close_needed", "ptr", "link",
                      "remote_pid", "tls", "application_name"]
STATS_COLUMNS = ["database", "total_xact_count", "total_query_count", "total_received", "total_sent",
                 "total_xact_time", "total_query_time", "total_wait_time", "avg_xact_count",
                 "avg_query_count", "avg_recv", "avg_sent", "avg_xact_time", "avg_query_time",
                 "avg_wait_time"]
TEXT, INT4, NUMERIC = 25, 23, 1700


@pytest.fixture
def console_proxy(proxy_factory, app):
    return proxy_factory(
        users=[(app.app_user, app.app_password), (app.md5_user, app.md5_password), (ADMIN, ADMIN_PASSWORD)],
        admin_users=[ADMIN], workers=2)


def admin(proxy):
    # No automatic prepares: psycopg would prepare a query run five times (extended protocol),
    # which the console, like PgBouncer's, does not take.
    return proxy.connect(ADMIN, ADMIN_PASSWORD, dbname="sluice", prepare_threshold=None)


def show(conn, what):
    """(column names, type OIDs, rows as dicts) of SHOW `what`."""
    cur = conn.execute(f"SHOW {what}")
    names = [d.name for d in cur.description]
    types = [d.type_code for d in cur.description]
    return names, types, [dict(zip(names, row)) for row in cur.fetchall()]


def psql(proxy, user, password, command, dbname="sluice"):
    return subprocess.run([harness.PSQL, "-X", "--csv", "-c", command], env=proxy.env(user, password, dbname),
                          capture_output=True, text=True, timeout=60 * harness.SLOW)


def test_show_commands_answer_in_pgbouncers_columns(console_proxy, app):
    proxy = console_proxy
    holder = proxy.connect(app.app_user, app.app_password, application_name="holder")
    idle = proxy.connect(app.app_user, app.app_password)
    for _ in range(5):
        idle.execute("select 1")
    holder.execute("begin")
    holder.execute("select 1")  # holds a lent server connection until commit
    holder_pid = holder.info.backend_pid
    try:
        r = psql(proxy, ADMIN, ADMIN_PASSWORD, "SHOW POOLS")
        assert r.returncode == 0, r.stderr
        rows = list(csv.DictReader(io.StringIO(r.stdout)))
        assert list(rows[0].keys())[:len(POOLS_COLUMNS)] == POOLS_COLUMNS
        app_pool = [row for row in rows if row["database"] == "appdb" and row["user"] == app.app_user]
        assert len(app_pool) == 1, rows
        assert int(app_pool[0]["cl_active"]) >= 2 and int(app_pool[0]["sv_active"]) >= 1, app_pool

        with admin(proxy) as c:
            names, types, pools = show(c, "POOLS")
            assert names[:len(POOLS_COLUMNS)] == POOLS_COLUMNS
            assert types[:2] == [TEXT, TEXT] and set(types[2:15]) == {INT4} and types[15] == TEXT
            mine = {(p["database"], p["user"]): p for p in pools}
            p = mine[("appdb", app.app_user)]
            assert p["cl_active"] >= 2 and p["cl_waiting"] == 0
            assert p["sv_active"] == 1 and p["sv_login"] == 0 and p["pool_mode"] == "transaction"
            assert mine[("sluice", ADMIN)]["cl_active"] >= 1  # the console lists itself, as PgBouncer does
            assert mine[("sluice", ADMIN)]["sv_active"] == 0

            names, types, clients = show(c, "CLIENTS")
            assert names[:len(CONNECTION_COLUMNS)] == CONNECTION_COLUMNS
            apps = [x for x in clients if x["database"] == "appdb"]
            assert len(apps) == 2 and {x["user"] for x in apps} == {app.app_user}
            assert all(x["tls"] == "TLS" and x["addr"] == "127.0.0.1" and x["port"] > 0 for x in apps)
            held = [x for x in apps if x["application_name"] == "holder"]
            assert len(held) == 1 and held[0]["ptr"] == f"c{holder_pid}" and held[0]["link"].startswith("s")
            assert held[0]["connect_time"].endswith(" UTC")
            assert {x["worker"] for x in clients} <= {0, 1}

            names, types, servers = show(c, "SERVERS")
            assert names[:len(CONNECTION_COLUMNS)] == CONNECTION_COLUMNS
            linked = [s for s in servers if s["link"] == held[0]["ptr"]]
            assert len(linked) == 1 and linked[0]["ptr"] == held[0]["link"], servers
            assert linked[0]["state"] == "active" and linked[0]["remote_pid"] > 0
            assert linked[0]["application_name"] == "holder"
            backend = idle.execute("select pid from pg_stat_activity where application_name = 'holder'").fetchall()
            assert [row[0] for row in backend] == [linked[0]["remote_pid"]]

            names, types, stats = show(c, "STATS")
            assert names == STATS_COLUMNS and types == [TEXT] + [NUMERIC] * 14
            appdb = [s for s in stats if s["database"] == "appdb"][0]
            assert appdb["total_query_count"] >= 7  # 5 + 1 + the holder's, and the pg_stat_activity query
            assert appdb["total_xact_count"] >= 5 and appdb["total_xact_time"] > 0

            names, types, totals = show(c, "STATS_TOTALS")  # what pgbouncer_exporter reads
            assert names == ["database", "xact_count", "query_count", "bytes_received", "bytes_sent",
                             "xact_time", "query_time", "wait_time"] and types == [TEXT] + [NUMERIC] * 7
            assert [t["query_count"] for t in totals if t["database"] == "appdb"] == [appdb["total_query_count"]]

            names, types, config = show(c, "CONFIG")
            assert names == ["key", "value", "default", "changeable"]
            values = {row["key"]: row["value"] for row in config}
            assert values["admin_users"] == ADMIN and values["workers"] == "2"
            assert values["max_client_conn"] == "10000"  # PgBouncer's name, for pgbouncer_exporter
            assert ADMIN_PASSWORD not in str(config) and app.app_password not in str(config)

            names, types, targets = show(c, "TARGETS")
            assert names[:5] == ["host", "port", "state", "reason", "description"]
            assert len(targets) == 1 and targets[0]["state"] == "AVAILABLE" and targets[0]["reason"] is None
            assert targets[0]["port"] == proxy.config["target"]["port"]
            assert names[-1] == "role" and targets[0]["role"] == "primary"  # it said in_hot_standby = off

            names, types, databases = show(c, "DATABASES")
            assert "paused" in names and [d["paused"] for d in databases if d["name"] == "appdb"] == [0]
            names, types, lists = show(c, "LISTS")
            assert names == ["list", "items"] and {row["list"] for row in lists} >= {"databases", "pools"}

            names, types, version = show(c, "VERSION")
            assert names == ["version"] and "sluice-proxy" in version[0]["version"]

            notices = []
            c.add_notice_handler(lambda d: notices.append(d.message_detail))  # valid in the callback only
            cur = c.execute("show help;")
            assert cur.statusmessage == "SHOW" and cur.description is None
            assert notices and "SHOW HELP|VERSION|POOLS" in notices[0]
    finally:
        holder.execute("commit")
        holder.close()
        idle.close()


def test_unknown_commands_and_extended_protocol_keep_the_session(console_proxy):
    with admin(console_proxy) as c:
        for bad in ("SELECT 1", "SHOW FOO", "SHOW POOLS; SHOW CLIENTS"):
            with pytest.raises(psycopg.errors.SyntaxError) as e:
                c.execute(bad)
            assert "SHOW HELP" in str(e.value) or "one admin console command" in str(e.value)
        with pytest.raises(psycopg.errors.FeatureNotSupported) as e:
            c.execute("SHOW %s", ["POOLS"])  # parameters: the extended protocol
        assert "simple queries only" in str(e.value)
        assert c.execute("SHOW VERSION").fetchone()[0].startswith("sluice-proxy")
    r = psql(console_proxy, ADMIN, ADMIN_PASSWORD, "SHOW NOTHING")
    assert r.returncode != 0 and 'unknown admin console command "SHOW NOTHING"' in r.stderr


def test_only_admin_users_reach_the_console(console_proxy, app):
    with pytest.raises(psycopg.OperationalError) as e:
        console_proxy.connect(app.app_user, app.app_password, dbname="sluice")
    assert "may not use the admin console" in str(e.value) and "admin_users" in str(e.value)
    with pytest.raises(psycopg.OperationalError) as e:
        console_proxy.connect(ADMIN, "wrong-password", dbname="sluice")
    assert "password authentication failed" in str(e.value)
    r = psql(console_proxy, app.app_user, app.app_password, "SHOW POOLS")
    assert r.returncode != 0 and "may not use the admin console" in r.stderr
    # The console never needed a server connection: the admin user is no PostgreSQL role.
    with admin(console_proxy) as c:
        _, _, pools = show(c, "POOLS")
        assert [p["sv_active"] + p["sv_idle"] + p["sv_login"] for p in pools if p["database"] == "sluice"] == [0]


def test_pause_waits_for_lent_connections_then_holds_clients_until_resume(console_proxy, app):
    proxy = console_proxy
    holder = proxy.connect(app.app_user, app.app_password)
    holder.execute("begin")
    holder.execute("select 1")
    client = proxy.connect(app.app_user, app.app_password)  # logged in before: its query is what waits
    client.execute("select 1")
    watcher = admin(proxy)
    pausing = admin(proxy)
    answers = {}

    def run(name, conn, sql):
        try:
            answers[name] = conn.execute(sql).statusmessage if name != "query" else conn.execute(sql).fetchone()[0]
        except Exception as e:  # reported through `answers`
            answers[name] = e

    def paused_flag():
        _, _, databases = show(watcher, "DATABASES")
        return [d["paused"] for d in databases if d["name"] == "appdb"] == [1]

    pause = threading.Thread(target=run, args=("pause", pausing, "PAUSE"))
    pause.start()
    try:
        harness.wait_for(paused_flag, 20 * harness.SLOW, what="PAUSE to begin")
        assert "pause" not in answers, "PAUSE must wait for the lent connection"
        holder.execute("commit")
        pause.join(20 * harness.SLOW)
        assert answers.get("pause") == "PAUSE", answers

        query = threading.Thread(target=run, args=("query", client, "select 42"))
        query.start()

        def waiting():
            _, _, pools = show(watcher, "POOLS")
            return [p["cl_waiting"] for p in pools if p["database"] == "appdb"] == [1]

        harness.wait_for(waiting, 20 * harness.SLOW, what="the client to wait while paused")
        assert "query" not in answers
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
            watcher.execute("PAUSE")  # paused already
        assert watcher.execute("RESUME").statusmessage == "RESUME"
        query.join(20 * harness.SLOW)
        assert answers.get("query") == 42, answers
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
            watcher.execute("RESUME")  # not paused
    finally:
        try:
            watcher.execute("RESUME")
        except psycopg.Error:
            pass
        holder.close()
        client.close()
        pausing.close()
        watcher.close()


def test_reload_answers_reloads_and_the_proxy_stays_up(console_proxy):
    console_proxy.write_config(idle_client_timeout=1234)
    with admin(console_proxy) as c:
        assert c.execute("RELOAD").statusmessage == "RELOAD"
        harness.wait_for(lambda: "changed idle_client_timeout" in console_proxy.log_text(), 10,
                         what="the reload the console asked for")
        assert c.execute("SHOW VERSION").fetchone()[0].startswith("sluice-proxy")
    assert console_proxy.alive()


def test_shutdown_answers_then_drains_like_sigterm(console_proxy, app):
    with console_proxy.connect(app.app_user, app.app_password) as c:
        c.execute("select 1")
    r = psql(console_proxy, ADMIN, ADMIN_PASSWORD, "SHUTDOWN")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "SHUTDOWN"
    assert console_proxy.wait(30 * harness.SLOW) == 0
    assert "admin console: SHUTDOWN" in console_proxy.log_text()


def test_console_logins_follow_the_usual_rules(proxy_factory, app):
    """MD5 for an admin whose secret says so; TLS required as for every client."""
    proxy = proxy_factory(auth=[
        {"username": app.app_user, "password": app.app_password},
        {"username": ADMIN, "password": ADMIN_PASSWORD, "client_password_auth_type": "POSTGRES_MD5"}],
        admin_users=[ADMIN])
    with admin(proxy) as c:
        assert c.execute("SHOW VERSION").fetchone()[0].startswith("sluice-proxy")
    with pytest.raises(psycopg.OperationalError) as e:
        proxy.connect(ADMIN, ADMIN_PASSWORD, dbname="sluice", sslmode="disable")
    assert "requires TLS" in str(e.value)
