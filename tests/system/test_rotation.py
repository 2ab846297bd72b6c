"""Secret rotation without an outage, through the proxy, against the real PostgreSQL.

Both orders a rotation comes in:
- Secrets Manager's: a new version staged AWSPENDING, the database password changed, then
  AWSCURRENT moved to the new version (the old one becomes AWSPREVIOUS);
- the plain one: the new password put first (AWSCURRENT, the old one AWSPREVIOUS), ALTER ROLE after.

Clients keep logging in throughout, with whatever password they were last given, and none fails.
Each step that changes the proxy's secret file is followed by SIGHUP (a reload; the logins go on);
the database's backends of the role are ended after ALTER ROLE (the logins pause for that only) so
that the proxy must log in to the server again."""
import json
import os
import threading
import time

import psycopg
import pytest

from sluice_harness import harness

GRACE = 300


class Role:
    """A role of its own per test: the session's app roles keep their passwords."""

    def __init__(self, pg, name, password, md5=False):
        self.pg, self.name, self.md5 = pg, name, md5
        self.set_password(password, create=True)

    def set_password(self, password, create=False):
        with self.pg.superuser_conn() as c:
            if self.md5:
                c.execute("SET password_encryption = 'md5'")
            verb = "CREATE ROLE" if create else "ALTER ROLE"
            c.execute(f"{verb} {self.name} LOGIN PASSWORD '{password}'")

    def end_backends(self):
        """Ends the role's server connections and waits until they are gone, so that the proxy's
        next borrow sees them closed and logs in anew."""
        with self.pg.superuser_conn() as c:
            c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                      (self.name,))
        harness.wait_for(lambda: self.pg.backend_count(self.name) == 0, 20 * harness.SLOW,
                         what=f"{self.name}'s backends to exit")

    def drop(self):
        with self.pg.superuser_conn() as c:
            c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                      (self.name,))
            harness.wait_for(lambda: self.pg.backend_count(self.name) == 0, 20 * harness.SLOW,
                             what="backends to exit")
            c.execute(f"DROP ROLE {self.name}")


def staged_file(user, current, pending=None, previous=None, demoted=None):
    """The proxy's secret file with a rotation's staged versions."""
    def version(stages, password, **extra):
        return {"stages": stages, "secret_string": json.dumps({"username": user, "password": password}),
                **extra}
    versions = [version(["AWSCURRENT"], current)]
    if pending:
        versions.append(version(["AWSPENDING"], pending))
    if previous:
        versions.append(version(["AWSPREVIOUS"], previous, demoted=demoted if demoted is not None else time.time()))
    return {"versions": versions}


class Logins:
    """Clients logging in over and over (a new connection each time) with the password they
    were last given, counting successes and failures."""

    def __init__(self, proxy, user, password):
        self.proxy, self.user = proxy, user
        self.password = password
        self.ok = 0
        self.failures = []
        self._run = threading.Event()
        self._idle = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._run.set()
        self._thread.start()

    def _loop(self):
        while not self._stop:
            if not self._run.is_set():
                self._idle.set()
                self._run.wait()
                continue
            self._idle.clear()
            password = self.password
            try:
                with psycopg.connect(self.proxy.dsn(self.user, password), autocommit=True) as c:
                    assert c.execute("SELECT current_user").fetchone()[0] == self.user
                self.ok += 1
            except Exception as e:  # noqa: BLE001 - every failure counts
                self.failures.append(f"{type(e).__name__}: {e}".strip())

    def pause(self):
        self._run.clear()
        self._idle.clear()
        assert self._idle.wait(30 * harness.SLOW)

    def resume(self):
        self._run.set()

    def run_for(self, logins):
        """Lets at least `logins` more logins happen."""
        target = self.ok + logins
        harness.wait_for(lambda: self.ok >= target or len(self.failures) > 0, 60 * harness.SLOW,
                         what=f"{logins} logins")

    def stop(self):
        self._stop = True
        self._run.set()
        self._thread.join(30)


def login_works(proxy, user, password):
    try:
        with psycopg.connect(proxy.dsn(user, password), autocommit=True) as c:
            return c.execute("SELECT 1").fetchone()[0] == 1
    except psycopg.OperationalError as e:
        assert "password authentication failed" in str(e), e
        return False


class RotatingProxy:
    """A proxy whose secret file the test rewrites and then reloads with SIGHUP."""

    def __init__(self, proxy_factory, role, password, auth_type):
        self.role = role
        self.proxy = proxy_factory(users=[(role.name, password)], auth_type=auth_type,
                                   rotation_grace_seconds=GRACE)
        self.secret_file = os.path.join(self.proxy.dir, "secret0.json")

    def write(self, **staged):
        for key in ("current", "pending", "previous"):
            if staged.get(key):
                self.proxy.passwords.append(staged[key])  # the leak check looks for them too
        text = json.dumps(staged_file(self.role.name, **staged))
        tmp = self.secret_file + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.secret_file)
        outcome = self.proxy.reload()
        assert "reloaded" in outcome and "1 secret" in outcome, outcome

    def renew_server_connections(self, logins):
        logins.pause()
        self.role.end_backends()
        logins.resume()


@pytest.fixture
def role_factory(pg):
    made = []

    def make(password, md5=False):
        role = Role(pg, f"rot_{len(made)}_{os.getpid()}", password, md5=md5)
        made.append(role)
        return role

    yield make
    for role in made:
        role.drop()


@pytest.mark.parametrize("auth_type", ["POSTGRES_SCRAM_SHA_256", "POSTGRES_MD5"])
def test_secrets_manager_order(proxy_factory, role_factory, pg, auth_type):
    old, new = harness.new_password("rot-old"), harness.new_password("rot-new")
    role = role_factory(old)
    rp = RotatingProxy(proxy_factory, role, old, auth_type)
    logins = Logins(rp.proxy, role.name, old)
    try:
        logins.run_for(5)
        # createSecret: the new password staged AWSPENDING. Clients still use the old one; the
        # pending one is not for clients.
        rp.write(current=old, pending=new)
        logins.run_for(5)
        assert not login_works(rp.proxy, role.name, new)
        # setSecret: the database takes the new password. New server connections find that the
        # current one is refused and the pending one works.
        role.set_password(new)
        rp.renew_server_connections(logins)
        logins.run_for(5)
        assert pg.backend_count(role.name) >= 1, "a server login happened"
        harness.wait_for(lambda: "use the password staged AWSPENDING" in rp.proxy.log_text(), 10,
                         what="the proxy to note that AWSPENDING works")
        # finishSecret: AWSCURRENT moves to the new version; the old one becomes AWSPREVIOUS.
        rp.write(current=new, previous=old)
        logins.run_for(5)  # clients that still have the old password, within the grace period
        logins.password = new  # clients that read the secret again
        logins.run_for(5)
        rp.renew_server_connections(logins)
        logins.run_for(5)
        assert login_works(rp.proxy, role.name, old)
        # After the grace period the old password is refused; the new one keeps working.
        rp.write(current=new, previous=old, demoted=time.time() - GRACE - 1)
        logins.run_for(5)
        assert not login_works(rp.proxy, role.name, old)
    finally:
        logins.stop()
    assert logins.failures == [], logins.failures[:3]


def test_plain_order(proxy_factory, role_factory, pg):
    old, new = harness.new_password("rot-old"), harness.new_password("rot-new")
    role = role_factory(old)
    rp = RotatingProxy(proxy_factory, role, old, "POSTGRES_SCRAM_SHA_256")
    logins = Logins(rp.proxy, role.name, old)
    try:
        logins.run_for(5)
        # put-secret-value first: the new password is current before the database has it. Server
        # logins fall back to the previous one; clients may use either.
        rp.write(current=new, previous=old)
        logins.run_for(5)
        rp.renew_server_connections(logins)
        logins.run_for(5)
        harness.wait_for(lambda: "use the password staged AWSPREVIOUS" in rp.proxy.log_text(), 10,
                         what="the proxy to note that AWSPREVIOUS works")
        logins.password = new
        logins.run_for(5)
        # ALTER ROLE after: the remembered previous password is refused now; current works.
        role.set_password(new)
        rp.renew_server_connections(logins)
        logins.run_for(5)
        assert pg.backend_count(role.name) >= 1
        harness.wait_for(lambda: "use the password staged AWSCURRENT" in rp.proxy.log_text(), 10,
                         what="the proxy to go back to AWSCURRENT")
        logins.password = old  # a client that has not read the secret again, within the grace
        logins.run_for(5)
    finally:
        logins.stop()
    assert logins.failures == [], logins.failures[:3]


def test_bad_staged_file_is_refused_with_its_key(proxy_binary, tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"versions": [{"stages": ["AWSPENDING"], "secret_string": "{}"}]}))
    config = tmp_path / "proxy.toml"
    config.write_text(f'[[auth]]\nsecret_file = "{secret}"\n[target]\nhost = "127.0.0.1"\n')
    r = harness.check_config(proxy_binary, str(config))
    assert r.returncode == 2, r
    assert "auth[0].secret_file" in r.stderr and "has no version staged AWSCURRENT" in r.stderr, r.stderr
