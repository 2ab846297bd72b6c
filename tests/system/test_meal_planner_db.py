"""meal-planner-test-app's bootstrap against a real PostgreSQL 15 over TLS (sslmode=verify-full):
every event and its bad-input cases with `bootstrap --local` (rows really written, nothing written
by a refused event, a dropped connection reopened). The Lambda mode runs under the real function
host in test_meal_planner.py."""
import json
import os
import stat
import subprocess
import uuid
import zipfile

import pytest

from sluice_harness import harness

BUILD = os.path.abspath(os.environ.get("SLUICE_BUILD") or os.path.join(os.path.dirname(__file__), "..", "..", "build"))
PACKAGE = os.path.join(BUILD, "functions", "meal-planner-test-app.zip")
BOOTSTRAP = os.path.join(BUILD, "functions", "meal-planner-test-app", "bootstrap")
USER = "mealplanner"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:512662829295:secret:rds-proxy-secret-meal-planner-7Ps2c0"

DAL = {"name": "Dal", "servings": 4, "ingredients": [
    {"name": "lentils", "quantity": 300, "unit": "g"},
    {"name": "ghee", "quantity": 0.1, "unit": "kg"},
    {"name": "onion", "quantity": 1, "unit": ""}]}
RISOTTO = {"name": "Risotto", "servings": 2, "ingredients": [
    {"name": "rice", "quantity": 200, "unit": "g"},
    {"name": "onion", "quantity": 0.5, "unit": ""},
    {"name": "lentils", "quantity": 1.5, "unit": "cup"},
    {"name": "ghee", "quantity": 0.05, "unit": "kg"}]}


@pytest.fixture(scope="module")
def server():
    if not os.path.exists(BOOTSTRAP):
        pytest.fail(f"{BOOTSTRAP} not found: build meal-planner-test-app and/or set SLUICE_BUILD", pytrace=False)
    pg = harness.PostgresServer(max_connections=50)
    pg.start()
    pg.password = harness.new_password("meal-pw")
    with pg.superuser_conn() as c:
        c.execute(f"CREATE ROLE {USER} LOGIN PASSWORD '{pg.password}'")
    try:
        yield pg
    finally:
        pg.cleanup()


@pytest.fixture
def db(server):
    """A fresh database owned by the function's user, per test."""
    name = "meals_" + uuid.uuid4().hex[:10]
    with server.superuser_conn() as c:
        c.execute(f"CREATE DATABASE {name} OWNER {USER}")
    server.dbname = name
    return server


def local_env(pg, **overrides):
    env = harness.clean_libpq_env()
    env.update(DB_HOST="127.0.0.1", DB_PORT=str(pg.port), DB_NAME=pg.dbname, DB_USER=USER,
               DB_PASSWORD=pg.password, DB_SSLMODE="verify-full", DB_SSLROOTCERT=pg.ca_file)
    env.update(overrides)
    return env


def local(pg, *events, **env):
    """Runs events with `bootstrap --local`; returns ([parsed result per event], exit code)."""
    r = subprocess.run([BOOTSTRAP, "--local", *[json.dumps(e) if not isinstance(e, str) else e for e in events]],
                       env=local_env(pg, **env), capture_output=True, text=True, timeout=60)
    assert pg.password not in r.stdout + r.stderr, "the password leaked into the function's output"
    lines = r.stdout.splitlines()
    assert len(lines) == len(events), (r.stdout, r.stderr)
    return [json.loads(line) for line in lines], r.returncode


def one(pg, event, **env):
    (result,), code = local(pg, event, **env)
    assert code == (1 if "errorType" in result else 0)
    return result


def query(pg, sql, params=None):
    with pg.superuser_conn(pg.dbname) as c:
        return c.execute(sql, params).fetchall()


def counts(pg):
    return {t: query(pg, f"select count(*) from {t}")[0][0] for t in ("recipes", "ingredients", "meal_plans")}


def test_package_has_an_executable_bootstrap_at_its_root():
    with zipfile.ZipFile(PACKAGE) as z:
        (info,) = z.infolist()
        assert info.filename == "bootstrap"
        assert stat.S_IMODE(info.external_attr >> 16) == 0o755


def test_migrate_is_idempotent_and_health_reports_tls(db):
    assert one(db, {"action": "migrate"}) == {"migrated": True}
    assert one(db, {"action": "migrate"}) == {"migrated": True}
    assert counts(db) == {"recipes": 0, "ingredients": 0, "meal_plans": 0}
    health = one(db, {"action": "health"})
    assert health["server_version"].startswith("15")
    assert health["tls"] is True and health["server_side_tls"] is True
    assert health["tls_protocol"].startswith("TLS")
    assert (health["database"], health["user"]) == (db.dbname, USER)
    # Without TLS the function says so.
    plain = one(db, {"action": "health"}, DB_SSLMODE="disable")
    assert plain["tls"] is False and plain["server_side_tls"] is False


def test_verify_full_refuses_a_server_it_cannot_verify(db, tmp_path):
    other_ca = harness.CertBundle(str(tmp_path / "other")).ca_cert
    result = one(db, {"action": "health"}, DB_SSLROOTCERT=other_ca)
    assert result["errorType"] == "DatabaseError"
    assert "certificate verify failed" in result["errorMessage"]
    wrong_password = one(db, {"action": "health"}, DB_PASSWORD="not-the-password")
    assert wrong_password["errorType"] == "DatabaseError"
    assert "password authentication failed" in wrong_password["errorMessage"]


def test_add_recipe_writes_the_recipe_and_its_ingredients(db):
    one(db, {"action": "migrate"})
    first = one(db, {"action": "add_recipe", "recipe": DAL})
    second = one(db, {"action": "add_recipe", "recipe": RISOTTO})
    assert set(first) == {"recipe_id"} and second["recipe_id"] > first["recipe_id"]
    assert query(db, "select id, name, servings from recipes order by id") == [
        (first["recipe_id"], "Dal", 4), (second["recipe_id"], "Risotto", 2)]
    rows = query(db, "select name, quantity::text, unit from ingredients where recipe_id = %s order by position",
                 (first["recipe_id"],))
    assert rows == [("lentils", "300", "g"), ("ghee", "0.1", "kg"), ("onion", "1", "")]


BAD_RECIPES = [
    {"servings": 4, "ingredients": DAL["ingredients"]},
    {"name": "", "servings": 4, "ingredients": DAL["ingredients"]},
    {"name": "Dal", "servings": 0, "ingredients": DAL["ingredients"]},
    {"name": "Dal", "servings": 2.5, "ingredients": DAL["ingredients"]},
    {"name": "Dal", "servings": "4", "ingredients": DAL["ingredients"]},
    {"name": "Dal", "servings": 4, "ingredients": []},
    {"name": "Dal", "servings": 4},
    {"name": "Dal", "servings": 4, "ingredients": [{"quantity": 1, "unit": "g"}]},
    {"name": "Dal", "servings": 4, "ingredients": [{"name": "a", "quantity": 0, "unit": "g"}]},
    {"name": "Dal", "servings": 4, "ingredients": [{"name": "a", "quantity": -3, "unit": "g"}]},
    {"name": "Dal", "servings": 4, "ingredients": [{"name": "a", "quantity": "3", "unit": "g"}]},
    {"name": "Dal", "servings": 4, "ingredients": [{"name": "a", "quantity": 3, "unit": 7}]},
    # The first ingredient is good: nothing of the recipe may be written all the same.
    {"name": "Dal", "servings": 4, "ingredients": [{"name": "a", "quantity": 3, "unit": "g"}, {"name": "b"}]},
    "Dal",
]


def test_bad_events_write_nothing(db):
    one(db, {"action": "migrate"})
    one(db, {"action": "add_recipe", "recipe": DAL})
    one(db, {"action": "plan_week", "week_start": "2026-11-30"})
    before = counts(db)
    cases = [("not json", "InvalidEvent"), ("[1, 2]", "InvalidEvent"), ('"migrate"', "InvalidEvent"),
             ({}, "UnknownAction"), ({"action": "drop"}, "UnknownAction"), ({"action": None}, "UnknownAction"),
             ({"action": "add_recipe"}, "InvalidRecipe")]
    cases += [({"action": "add_recipe", "recipe": r}, "InvalidRecipe") for r in BAD_RECIPES]
    for action in ("plan_week", "shopping_list"):
        cases += [({"action": action, "week_start": d}, "InvalidDate")
                  for d in ("2026-02-30", "2026-13-01", "30/11/2026", "", None, 20261130)]
        cases.append(({"action": action}, "InvalidDate"))
    results, code = local(db, *[c for c, _ in cases])
    assert code == 1
    for (case, expected), result in zip(cases, results):
        assert result.get("errorType") == expected, (case, result)
        assert result["errorMessage"] and result["stackTrace"] == []
    assert counts(db) == before


def test_a_database_error_rolls_the_whole_event_back(db):
    one(db, {"action": "migrate"})
    # A trigger fails the second ingredient's insert: the recipe and the first ingredient go too.
    with db.superuser_conn(db.dbname) as c:
        c.execute("""create function refuse_poison() returns trigger language plpgsql as $$
                     begin if new.name = 'poison' then raise exception 'poison is not food'; end if;
                     return new; end $$""")
        c.execute("create trigger refuse_poison before insert on ingredients "
                  "for each row execute function refuse_poison()")
    recipe = {"name": "Stew", "servings": 2, "ingredients": [
        {"name": "carrot", "quantity": 2, "unit": ""}, {"name": "poison", "quantity": 1, "unit": "g"}]}
    result = one(db, {"action": "add_recipe", "recipe": recipe})
    assert result["errorType"] == "DatabaseError"
    assert "poison is not food" in result["errorMessage"]
    assert counts(db) == {"recipes": 0, "ingredients": 0, "meal_plans": 0}
    # Before migrate, PostgreSQL's own message.
    unmigrated = db.dbname + "_new"
    with db.superuser_conn() as c:
        c.execute(f"CREATE DATABASE {unmigrated} OWNER {USER}")
    missing = one(db, {"action": "add_recipe", "recipe": DAL}, DB_NAME=unmigrated)
    assert missing["errorType"] == "DatabaseError"
    assert 'relation "recipes" does not exist' in missing["errorMessage"]


def test_plan_week_cycles_recipes_and_replaces_the_week(db):
    one(db, {"action": "migrate"})
    assert one(db, {"action": "plan_week", "week_start": "2026-11-30"})["errorType"] == "NoRecipes"
    assert counts(db)["meal_plans"] == 0
    dal = one(db, {"action": "add_recipe", "recipe": DAL})["recipe_id"]
    plan = one(db, {"action": "plan_week", "week_start": "2026-11-30"})
    dates = ["2026-11-30", "2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04", "2026-12-05", "2026-12-06"]
    assert plan == {"days": [{"date": d, "recipe_id": dal} for d in dates]}

    risotto = one(db, {"action": "add_recipe", "recipe": RISOTTO})["recipe_id"]
    # An overlapping week elsewhere stays as it was outside the replanned days.
    one(db, {"action": "plan_week", "week_start": "2026-11-27"})
    plan = one(db, {"action": "plan_week", "week_start": "2026-11-30"})
    expected = [dal, risotto, dal, risotto, dal, risotto, dal]
    assert plan == {"days": [{"date": d, "recipe_id": r} for d, r in zip(dates, expected)]}
    rows = query(db, "select plan_date::text, recipe_id from meal_plans order by plan_date")
    assert rows == [("2026-11-27", dal), ("2026-11-28", risotto), ("2026-11-29", dal)] + list(zip(dates, expected))


def test_shopping_list_totals_the_planned_week(db):
    one(db, {"action": "migrate"})
    assert one(db, {"action": "shopping_list", "week_start": "2026-11-30"}) == {"items": []}
    one(db, {"action": "add_recipe", "recipe": DAL})
    one(db, {"action": "add_recipe", "recipe": RISOTTO})
    one(db, {"action": "plan_week", "week_start": "2026-11-30"})  # Dal x4, Risotto x3
    one(db, {"action": "plan_week", "week_start": "2026-12-07"})  # the next week: not counted
    result = one(db, {"action": "shopping_list", "week_start": "2026-11-30"})
    assert result == {"items": [
        {"name": "ghee", "quantity": 0.55, "unit": "kg"},      # 4 x 0.1 + 3 x 0.05, exact
        {"name": "lentils", "quantity": 4.5, "unit": "cup"},   # 3 x 1.5
        {"name": "lentils", "quantity": 1200, "unit": "g"},    # 4 x 300
        {"name": "onion", "quantity": 5.5, "unit": ""},        # 4 x 1 + 3 x 0.5
        {"name": "rice", "quantity": 600, "unit": "g"},        # 3 x 200
    ]}
    # Integral totals are printed as integers.
    raw = subprocess.run([BOOTSTRAP, "--local", '{"action":"shopping_list","week_start":"2026-11-30"}'],
                         env=local_env(db), capture_output=True, text=True, timeout=60).stdout
    assert '"quantity":1200,' in raw and '"quantity":0.55,' in raw
    # A partly planned week counts its planned days only: 12-10 Risotto, 12-11 Dal, 12-12 Risotto,
    # 12-13 Dal (the 12-07 plan), nothing after.
    assert one(db, {"action": "shopping_list", "week_start": "2026-12-10"}) == {"items": [
        {"name": "ghee", "quantity": 0.3, "unit": "kg"},
        {"name": "lentils", "quantity": 3, "unit": "cup"},
        {"name": "lentils", "quantity": 600, "unit": "g"},
        {"name": "onion", "quantity": 3, "unit": ""},
        {"name": "rice", "quantity": 400, "unit": "g"},
    ]}


def test_a_dropped_connection_is_reopened_once(db):
    """Warm invocations share one connection; a proxy that reclaimed it (here: the backend
    terminated, then the whole server restarted) costs a reconnect, not an error."""
    one(db, {"action": "migrate"})
    proc = subprocess.Popen([BOOTSTRAP, "--local"], env=local_env(db), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    harness.register_proc(proc)
    try:
        def send(event):
            proc.stdin.write(json.dumps(event) + "\n")
            proc.stdin.flush()
            return json.loads(proc.stdout.readline())

        def backends():
            return [r[0] for r in query(db, "select pid from pg_stat_activity "
                                            "where application_name = 'meal-planner-test-app'")]

        assert "recipe_id" in send({"action": "add_recipe", "recipe": DAL})
        assert send({"action": "health"})["tls"] is True
        (pid,) = backends()
        assert "recipe_id" in send({"action": "add_recipe", "recipe": DAL})
        assert backends() == [pid], "warm events reuse the connection"

        query(db, "select pg_terminate_backend(%s)", (pid,))
        harness.wait_for(lambda: not backends(), 10, what="the backend to go")
        assert "recipe_id" in send({"action": "add_recipe", "recipe": RISOTTO})
        (new_pid,) = backends()
        assert new_pid != pid

        db.restart()
        assert send({"action": "health"})["server_version"].startswith("15")
        proc.stdin.close()
        stderr = proc.stderr.read()
        assert proc.wait(timeout=30) == 0
        assert stderr.count("reconnecting") == 2, stderr
        assert db.password not in stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        harness.unregister_proc(proc)
    # Each add_recipe was written once: the retried one too.
    assert query(db, "select name, count(*) from recipes group by name order by name") == [("Dal", 2), ("Risotto", 1)]


def test_local_mode_config_errors(db):
    env = local_env(db)
    del env["DB_HOST"]
    r = subprocess.run([BOOTSTRAP, "--local", '{"action":"health"}'], env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2
    assert json.loads(r.stdout)["errorType"] == "Runtime.ConfigError"
    assert "DB_HOST" in json.loads(r.stdout)["errorMessage"]
