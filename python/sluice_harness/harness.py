"""Reusable system-test harness for sluice-proxy.

Imported (`from sluice_harness import harness`) by the pytest suite in tests/system, by the
benches in bench/ and by scripts/demo.py.  Needs Debian 12 with the
PostgreSQL 15 server binaries, psql, pgbench, openssl and Debian's python3
(psycopg 3).  Everything runs on 127.0.0.1 with random free ports, in
temporary directories that are removed on teardown.

PostgreSQL refuses to run as root, so the server runs as the `postgres` user
(via runuser) with a data directory that user owns.
"""
from __future__ import annotations

import atexit
import base64
import hashlib
import hmac
import json
import os
import pwd
import random
import re
import secrets
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import urllib.request
from typing import Any, Dict, Iterable, List, Optional, Tuple

PG_BIN = "/usr/lib/postgresql/15/bin"
PSQL = "/usr/bin/psql"
PGBENCH = "/usr/bin/pgbench"
PGBOUNCER = "/usr/sbin/pgbouncer"
OPENSSL = "/usr/bin/openssl"
PG_USER = "postgres"

SANITIZED = os.environ.get("SLUICE_SANITIZED", "") not in ("", "0")
# Multiplier for timeouts/waits: an ASan+UBSan build of the proxy is slower.
SLOW = 3 if SANITIZED else 1

# Every process we start is registered here so that a crashed test run does
# not leave strays behind.
_LIVE_PROCS: Dict[int, subprocess.Popen] = {}
_LIVE_SERVERS: List["PostgresServer"] = []


def _kill_strays() -> None:
    for proc in list(_LIVE_PROCS.values()):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                try:
                    proc.kill()
                except ProcessLookupError:
                    pass
    _LIVE_PROCS.clear()
    for srv in list(_LIVE_SERVERS):
        try:
            srv.cleanup()
        except Exception:
            pass


atexit.register(_kill_strays)


def register_proc(proc: subprocess.Popen) -> subprocess.Popen:
    _LIVE_PROCS[proc.pid] = proc
    return proc


def unregister_proc(proc: subprocess.Popen) -> None:
    _LIVE_PROCS.pop(proc.pid, None)


# --------------------------------------------------------------------------
# small helpers


_handed_out: set = set()  # ports free_port() returned in this process


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, drawn from below the kernel's ephemeral
    range: a port the kernel hands out itself (an outgoing connection, a bind to port 0) could be
    taken again between this call and the bind of the server it is for."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral_low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    for _ in range(200):
        port = random.randint(10000, max(10001, ephemeral_low - 1))
        if port in _handed_out:
            continue  # given to a server of ours that may not have bound it yet
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
                _handed_out.add(port)
                return port
            except OSError:
                continue
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(host: str, port: int, timeout: float, proc: Optional[subprocess.Popen] = None) -> None:
    deadline = time.monotonic() + timeout
    last_err: Optional[Exception] = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError as e:
            last_err = e
            time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} did not accept connections within {timeout}s ({last_err})")


def run_concurrently(worker, count: int, timeout: float = 120) -> List[str]:
    """Runs worker(0) … worker(count - 1) on threads at once; returns what went wrong, one line per
    failed worker (an exception it raised, or that it was still running after `timeout`)."""
    failures: List[str] = []

    def guarded(n):
        try:
            worker(n)
        except Exception as e:  # noqa: BLE001 - reported to the caller
            failures.append(f"worker {n}: {e!r}")

    threads = [threading.Thread(target=guarded, args=(n,), daemon=True) for n in range(count)]
    for t in threads:
        t.start()
    for n, t in enumerate(threads):
        t.join(timeout)
        if t.is_alive():
            failures.append(f"worker {n}: still running after {timeout} s")
    return failures


def wait_for(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Polls predicate() until it returns a truthy value; returns that value."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")
        time.sleep(interval)


def postgres_uid_gid() -> Tuple[int, int]:
    pw = pwd.getpwnam(PG_USER)
    return pw.pw_uid, pw.pw_gid


def chown_tree_to_postgres(path: str) -> None:
    uid, gid = postgres_uid_gid()
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            os.chown(os.path.join(root, n), uid, gid)


def run_as_postgres(args: List[str], *, nofile: int = 4096, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Runs a command as the postgres user with a raised open-files limit."""
    cmd = ["runuser", "-u", PG_USER, "--", "bash", "-c", f'ulimit -n {nofile}; exec "$@"', "bash"] + args
    return subprocess.run(cmd, check=check, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def new_password(prefix: str) -> str:
    # Distinctive, so that a leak into logs or metrics is easy to detect.
    return f"{prefix}-{secrets.token_hex(12)}"


def conninfo(**params) -> str:
    """A libpq keyword/value connection string with proper quoting."""
    parts = []
    for k, v in params.items():
        if v is None:
            continue
        v = str(v)
        if v == "" or re.search(r"[\s'\\]", v):
            v = "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
        parts.append(f"{k}={v}")
    return " ".join(parts)


def proc_cpu_seconds(pid: int) -> float:
    """utime+stime of a process from /proc/PID/stat, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    rest = data[data.rindex(")") + 2:].split()
    # fields after comm: state(3) ... utime is field 14, stime 15 (1-based)
    utime, stime = int(rest[11]), int(rest[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------
# certificates


class CertBundle:
    """A throw-away CA and a server certificate signed by it, for 127.0.0.1/localhost (ECDSA P-256)."""

    def __init__(self, directory: str, cn: str = "localhost", owner_postgres: bool = False):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.ca_cert = os.path.join(directory, "ca.crt")
        self.ca_key = os.path.join(directory, "ca.key")
        self.cert = os.path.join(directory, "server.crt")
        self.key = os.path.join(directory, "server.key")
        csr = os.path.join(directory, "server.csr")
        ext = os.path.join(directory, "server.ext")

        def ossl(*args):
            subprocess.run([OPENSSL, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        # ECDSA P-256, as the proxy's own and the control plane's certificates: a TLS server signs
        # with its key in every full handshake, and P-256 signs in a fraction of RSA-2048's time.
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        ossl("req", "-x509", *ec, "-nodes", "-keyout", self.ca_key, "-out", self.ca_cert,
             "-days", "30", "-subj", f"/CN=sluice test CA {secrets.token_hex(4)}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        ossl("req", "-new", *ec, "-nodes", "-keyout", self.key, "-out", csr, "-subj", f"/CN={cn}")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n"
                    "keyUsage=digitalSignature\n"
                    "extendedKeyUsage=serverAuth\n"
                    "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        ossl("x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key, "-CAcreateserial",
             "-out", self.cert, "-days", "30", "-sha256", "-extfile", ext)
        os.chmod(self.key, 0o600)
        if owner_postgres:
            uid, gid = postgres_uid_gid()
            for p in (self.cert, self.key, self.ca_cert):
                os.chown(p, uid, gid)

    def fingerprint_sha256(self) -> str:
        out = subprocess.run([OPENSSL, "x509", "-in", self.cert, "-noout", "-fingerprint", "-sha256"],
                             check=True, capture_output=True, text=True).stdout
        return out.strip().split("=", 1)[1].replace(":", "").lower()


# --------------------------------------------------------------------------
# PostgreSQL


class PostgresServer:
    """A private PostgreSQL 15 cluster on 127.0.0.1:<random port>, run as `postgres`."""

    def __init__(self, max_connections: int = 100, extra_conf: Optional[Dict[str, Any]] = None):
        self.max_connections = max_connections
        self.extra_conf = extra_conf or {}
        self.tmp = tempfile.mkdtemp(prefix="sluice-pg-")
        os.chmod(self.tmp, 0o755)
        self.data = os.path.join(self.tmp, "data")
        self.sockdir = self.tmp
        self.logfile = os.path.join(self.tmp, "postgres.log")
        self.port = free_port()
        self.host = "127.0.0.1"
        self.certs: Optional[CertBundle] = None
        self.running = False
        self._initialised = False
        _LIVE_SERVERS.append(self)

    # -- lifecycle
    def init(self) -> "PostgresServer":
        uid, gid = postgres_uid_gid()
        os.chown(self.tmp, uid, gid)
        run_as_postgres([f"{PG_BIN}/initdb", "-D", self.data, "-U", PG_USER, "-E", "UTF8", "--locale=C",
                         "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"])
        self.certs = CertBundle(os.path.join(self.tmp, "tls"), owner_postgres=True)
        os.chown(self.certs.dir, uid, gid)
        conf = {
            "listen_addresses": "127.0.0.1",
            "port": self.port,
            "unix_socket_directories": self.sockdir,
            "max_connections": self.max_connections,
            "ssl": "on",
            "ssl_cert_file": self.certs.cert,
            "ssl_key_file": self.certs.key,
            "ssl_ca_file": self.certs.ca_cert,
            "password_encryption": "scram-sha-256",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "128MB",
            "log_connections": "on",
            "log_line_prefix": "%m [%p] %q%u@%d ",
            "timezone": "UTC",
            "log_timezone": "UTC",
        }
        conf.update(self.extra_conf)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\n# sluice test harness\n")
            for k, v in conf.items():
                if isinstance(v, str):
                    v = "'" + v.replace("'", "''") + "'"
                f.write(f"{k} = {v}\n")
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            f.write("# TYPE DATABASE USER ADDRESS METHOD\n"
                    "local all postgres trust\n"
                    "local replication postgres trust\n"  # pg_basebackup for StandbyServer
                    "host all app_md5 127.0.0.1/32 md5\n"
                    "host all all 127.0.0.1/32 scram-sha-256\n")
        chown_tree_to_postgres(self.tmp)
        self._initialised = True
        return self

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run_as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.data, *args], check=check)

    def start(self) -> "PostgresServer":
        if not self._initialised:
            self.init()
        r = self._pg_ctl("-l", self.logfile, "-w", "-t", "60", "start", check=False)
        if r.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed:\n{r.stdout}\n{self.log_tail()}")
        self.running = True
        return self

    def stop(self, mode: str = "fast") -> None:
        if self.running:
            self._pg_ctl("-m", mode, "-w", "-t", "60", "stop", check=False)
            self.running = False

    def restart(self, mode: str = "fast") -> None:
        r = self._pg_ctl("-l", self.logfile, "-m", mode, "-w", "-t", "60", "restart", check=False)
        if r.returncode != 0:
            raise RuntimeError(f"pg_ctl restart failed:\n{r.stdout}\n{self.log_tail()}")
        self.running = True

    def pid(self) -> int:
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            return int(f.readline())

    def cleanup(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
            if self in _LIVE_SERVERS:
                _LIVE_SERVERS.remove(self)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    def log_text(self) -> str:
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    def promote(self) -> None:
        """Ends recovery (a standby becomes a primary); returns once it accepts writes."""
        r = self._pg_ctl("-w", "-t", "60", "promote", check=False)
        if r.returncode != 0:
            raise RuntimeError(f"pg_ctl promote failed:\n{r.stdout}\n{self.log_tail()}")

    # -- client helpers
    @property
    def ca_file(self) -> str:
        assert self.certs is not None
        return self.certs.ca_cert

    def superuser_conn(self, dbname: str = "postgres", autocommit: bool = True):
        import psycopg
        return psycopg.connect(host=self.sockdir, port=self.port, user=PG_USER, dbname=dbname,
                               autocommit=autocommit, connect_timeout=10)

    def psql(self, sql: str, dbname: str = "postgres", check: bool = True) -> str:
        r = subprocess.run([PSQL, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", self.sockdir, "-p", str(self.port),
                            "-U", PG_USER, "-d", dbname, "-c", sql],
                           capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise RuntimeError(f"psql failed ({r.returncode}): {r.stderr}")
        return r.stdout

    def scalar(self, sql: str, dbname: str = "postgres", params=None):
        with self.superuser_conn(dbname) as c:
            row = c.execute(sql, params).fetchone()
            return row[0] if row else None

    def direct_env(self, user: str, password: str, dbname: str, sslmode: str = "disable") -> Dict[str, str]:
        """Environment for psql/pgbench connecting straight to PostgreSQL over TCP."""
        env = clean_libpq_env()
        env.update(PGHOST=self.host, PGPORT=str(self.port), PGUSER=user, PGPASSWORD=password,
                   PGDATABASE=dbname, PGSSLMODE=sslmode)
        return env

    def direct_dsn(self, user: str, password: str, dbname: str, sslmode: str = "disable", **params) -> str:
        return conninfo(host=self.host, port=self.port, user=user, password=password, dbname=dbname,
                        sslmode=sslmode, **params)

    def backend_count(self, user: str, dbname: Optional[str] = None) -> int:
        sql = "select count(*) from pg_stat_activity where backend_type = 'client backend' and usename = %s"
        params: List[Any] = [user]
        if dbname:
            sql += " and datname = %s"
            params.append(dbname)
        return int(self.scalar(sql, params=params))

    def count_authorized_logins(self, user: str) -> int:
        """How many 'connection authorized: user=USER' lines the server logged (log_connections)."""
        return len(re.findall(rf"connection authorized: user={re.escape(user)} ", self.log_text()))


def clean_libpq_env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = "15"
    return env


class AppDatabase:
    """Names and passwords of the roles and database the tests use."""

    def __init__(self, dbname: str = "appdb"):
        self.dbname = dbname
        self.app_user = "app"
        self.app_password = new_password("app-pw")
        self.md5_user = "app_md5"
        self.md5_password = new_password("md5-pw")
        self.accounts = 100
        self.initial_balance = 1000

    def passwords(self) -> List[str]:
        return [self.app_password, self.md5_password]


def setup_app_database(pg: PostgresServer, app: AppDatabase, pgbench_scale: int = 1, accounts: int = 100) -> None:
    """Roles app (SCRAM) and app_md5 (md5-hashed), database, pgbench tables, accounts, a_schema."""
    app.accounts = accounts
    with pg.superuser_conn() as c:
        c.execute(f"CREATE ROLE {app.app_user} LOGIN PASSWORD '{app.app_password}'")
        c.execute("SET password_encryption = 'md5'")
        c.execute(f"CREATE ROLE {app.md5_user} LOGIN PASSWORD '{app.md5_password}'")
        c.execute("RESET password_encryption")
        c.execute(f"CREATE DATABASE {app.dbname} OWNER {app.app_user}")
    env = pg.direct_env(app.app_user, app.app_password, app.dbname)
    r = subprocess.run([PGBENCH, "-i", "-q", "-s", str(pgbench_scale)], env=env, capture_output=True, text=True,
                       timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"pgbench -i failed: {r.stderr}")
    with pg.superuser_conn(app.dbname) as c:
        c.execute(f"SET ROLE {app.app_user}")
        c.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL)")
        c.execute("INSERT INTO accounts SELECT g, %s FROM generate_series(1, %s) g",
                  (app.initial_balance, accounts))
        c.execute("CREATE TABLE kv (k text PRIMARY KEY, v text)")
        c.execute("CREATE SCHEMA a_schema")
        c.execute("CREATE TABLE a_schema.marker (which text)")
        c.execute("INSERT INTO a_schema.marker VALUES ('a_schema')")
        c.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public, a_schema TO {app.md5_user}")
        c.execute(f"GRANT USAGE ON SCHEMA a_schema TO {app.md5_user}")
        c.execute("RESET ROLE")
        c.execute("ANALYZE")


# --------------------------------------------------------------------------
# sluice-proxy


def find_proxy_binary(build_dir: Optional[str] = None) -> str:
    build_dir = build_dir or os.environ.get("SLUICE_BUILD") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "build")
    path = os.path.abspath(os.path.join(build_dir, "sluice-proxy"))
    return path


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot encode {v!r} as TOML")


def to_toml(doc: Dict[str, Any]) -> str:
    """Minimal TOML writer: scalars, tables (dict) and arrays of tables (list of dict)."""
    lines: List[str] = []
    tables: List[Tuple[str, Dict[str, Any]]] = []
    arrays: List[Tuple[str, List[Dict[str, Any]]]] = []
    for k, v in doc.items():
        if v is None:
            continue
        if isinstance(v, dict):
            tables.append((k, v))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            arrays.append((k, v))
        else:
            lines.append(f"{k} = {toml_value(v)}")
    for name, items in arrays:
        for item in items:
            lines.append("")
            lines.append(f"[[{name}]]")
            lines.extend(f"{k} = {toml_value(v)}" for k, v in item.items() if v is not None)
    for name, table in tables:
        lines.append("")
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in table.items() if v is not None)
    return "\n".join(lines) + "\n"


def deep_merge(base: Dict[str, Any], over: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


class Metrics:
    """Parsed Prometheus text exposition."""

    LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)(?:\s+\d+)?$')
    LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

    def __init__(self, text: str):
        self.text = text
        self.samples: List[Tuple[str, Dict[str, str], float]] = []
        self.types: Dict[str, str] = {}
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                parts = line.split()
                if len(parts) >= 4 and parts[1] == "TYPE":
                    self.types[parts[2]] = parts[3]
                continue
            m = self.LINE.match(line)
            if not m:
                raise ValueError(f"unparsable metrics line: {line!r}")
            labels = dict(self.LABEL.findall(m.group(2) or ""))
            self.samples.append((m.group(1), labels, float(m.group(3))))

    def names(self) -> set:
        return {s[0] for s in self.samples}

    def has(self, name: str) -> bool:
        return name in self.names()

    def get(self, name: str, **labels) -> float:
        """The value of `name`: with labels, the sum over the series whose labels include them; without,
        the unlabelled series if there is one (a total next to per-reason series), else the sum of all.
        KeyError if none."""
        if not labels:
            plain = [v for n, l, v in self.samples if n == name and not l]
            if plain:
                return plain[0]
        found = [v for n, l, v in self.samples if n == name and all(l.get(k) == x for k, x in labels.items())]
        if not found:
            raise KeyError(f"metric {name}{labels or ''} not found")
        return sum(found)


class StandbyServer(PostgresServer):
    """A hot standby of `primary`, streaming from it: pg_basebackup -R of the running primary
    (over its Unix socket, as postgres), then its own port and socket directory. The roles,
    databases and TLS files are the primary's; promote() makes it a primary."""

    def __init__(self, primary: PostgresServer):
        super().__init__(max_connections=primary.max_connections)
        self.primary = primary

    def init(self) -> "StandbyServer":
        uid, gid = postgres_uid_gid()
        os.chown(self.tmp, uid, gid)
        run_as_postgres([f"{PG_BIN}/pg_basebackup", "-D", self.data, "-h", self.primary.sockdir,
                         "-p", str(self.primary.port), "-U", PG_USER, "-R", "-X", "stream",
                         "-c", "fast", "--no-sync"])
        self.certs = self.primary.certs
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(f"\n# sluice test harness: standby\nport = {self.port}\n"
                    f"unix_socket_directories = '{self.sockdir}'\nhot_standby = on\n")
        chown_tree_to_postgres(self.tmp)
        self._initialised = True
        return self


class Proxy:
    """A sluice-proxy process with a generated config in a temp dir."""

    def __init__(self, binary: str, target_port: int, users: Iterable[Tuple[str, str]] = (),
                 auth_type: str = "POSTGRES_SCRAM_SHA_256", auth: Optional[List[Dict[str, Any]]] = None,
                 metrics: bool = True, **overrides):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="sluice-proxy-")
        self.port = free_port()
        self.metrics_port = free_port() if metrics else None
        self.host = "127.0.0.1"
        self.logfile = os.path.join(self.dir, "proxy.stderr.log")
        self.proc: Optional[subprocess.Popen] = None
        self.passwords: List[str] = []
        auth_entries = []
        entries = auth if auth is not None else [
            {"username": u, "password": p, "client_password_auth_type": auth_type} for u, p in users]
        for i, e in enumerate(entries):
            secret_path = os.path.join(self.dir, f"secret{i}.json")
            with open(secret_path, "w") as f:
                json.dump({"username": e["username"], "password": e["password"]}, f)
            os.chmod(secret_path, 0o600)
            self.passwords.append(e["password"])
            auth_entries.append({"secret_file": secret_path,
                                 "client_password_auth_type": e.get("client_password_auth_type", auth_type)})
        base: Dict[str, Any] = {
            "name": "sluice-test-proxy",
            "listen": f"127.0.0.1:{self.port}",
            "require_tls": True,
            "idle_client_timeout": 1800,
            "max_client_connections": 10000,
            "auth": auth_entries,
            "target": {"host": "127.0.0.1", "port": target_port, "tls": "prefer"},
            "connection_pool": {"max_connections_percent": 100, "max_idle_connections_percent": 50,
                                "connection_borrow_timeout": 120 * 1},
        }
        if self.metrics_port:
            base["metrics"] = {"listen": f"127.0.0.1:{self.metrics_port}"}
        self.config = deep_merge(base, overrides)
        pool = self.config["connection_pool"]
        if "max_idle_connections_percent" not in overrides.get("connection_pool", {}):
            # like RDS Proxy, the idle percentage may not exceed max_connections_percent
            pool["max_idle_connections_percent"] = min(50, pool["max_connections_percent"])
        self.config_path = os.path.join(self.dir, "sluice.toml")
        with open(self.config_path, "w") as f:
            f.write(to_toml(self.config))

    # -- lifecycle
    def start(self, timeout: float = 20) -> "Proxy":
        if not os.path.exists(self.binary):
            raise FileNotFoundError(f"sluice-proxy binary not found at {self.binary} (set SLUICE_BUILD)")
        self._log = open(self.logfile, "ab")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        self.proc = register_proc(subprocess.Popen(
            [self.binary, "--config", self.config_path], stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=self._log, start_new_session=True, env=env))
        try:
            wait_port(self.host, self.port, timeout * SLOW, self.proc)
            if self.metrics_port:
                wait_port(self.host, self.metrics_port, timeout * SLOW, self.proc)
        except Exception as e:
            raise RuntimeError(f"{e}\n--- proxy log ---\n{self.log_tail()}") from e
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        rc = self.proc.wait(timeout)
        unregister_proc(self.proc)
        return rc

    def stop(self, timeout: float = 40) -> Optional[int]:
        """SIGTERM and wait; returns the exit code (kills and returns None after timeout)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        unregister_proc(self.proc)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
        if self.proc is not None:
            unregister_proc(self.proc)

    def cleanup(self) -> None:
        self.kill()
        try:
            self._log.close()
        except Exception:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- reload
    def write_config(self, **overrides) -> None:
        """Merges `overrides` into the configuration and rewrites the file (no reload yet)."""
        self.config = deep_merge(self.config, overrides)
        with open(self.config_path, "w") as f:
            f.write(to_toml(self.config))

    def reload(self, timeout: float = 20, **overrides) -> str:
        """Rewrites the configuration with `overrides`, sends SIGHUP and returns the proxy's log
        line that ends the reload ("reloaded …" or "reload failed …")."""
        if overrides:
            self.write_config(**overrides)

        def outcomes(text):
            return [line for line in text.splitlines() if "reloaded " in line or "reload failed" in line]
        before = len(outcomes(self.log_text()))
        self.signal(signal.SIGHUP)
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            lines = outcomes(self.log_text())
            if len(lines) > before:
                return lines[before]
            if not self.alive():
                raise RuntimeError(f"the proxy exited during a reload\n{self.log_tail()}")
            time.sleep(0.02)
        raise TimeoutError(f"no reload outcome in the log\n{self.log_tail()}")

    # -- client helpers
    def dsn(self, user: str, password: Optional[str], dbname: str = "appdb", sslmode: str = "require",
            **params) -> str:
        params.setdefault("connect_timeout", 15 * SLOW)
        return conninfo(host=self.host, port=self.port, user=user, password=password, dbname=dbname,
                        sslmode=sslmode, **params)

    def env(self, user: str, password: Optional[str], dbname: str = "appdb", sslmode: str = "require") -> Dict[str, str]:
        env = clean_libpq_env()
        env.update(PGHOST=self.host, PGPORT=str(self.port), PGUSER=user, PGDATABASE=dbname, PGSSLMODE=sslmode)
        env["PGCONNECT_TIMEOUT"] = str(15 * SLOW)
        if password is not None:
            env["PGPASSWORD"] = password
        return env

    def connect(self, user: str, password: str, dbname: str = "appdb", sslmode: str = "require",
                autocommit: bool = True, **params):
        """psycopg 3 connection; extra keywords are libpq parameters, except psycopg's own prepare_threshold."""
        import psycopg
        kw = {k: params.pop(k) for k in ("prepare_threshold",) if k in params}
        return psycopg.connect(self.dsn(user, password, dbname, sslmode, **params), autocommit=autocommit, **kw)

    def metrics_text(self) -> str:
        assert self.metrics_port, "metrics disabled for this proxy"
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10 * SLOW) as r:
            return r.read().decode()

    def metrics(self) -> Metrics:
        return Metrics(self.metrics_text())

    def log_text(self) -> str:
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    def cap(self, server_max_connections: int) -> int:
        pct = self.config["connection_pool"]["max_connections_percent"]
        return server_max_connections * pct // 100

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


def check_config(binary: str, config_path: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([binary, "--check", "--config", config_path], capture_output=True, text=True,
                          timeout=timeout * SLOW)


# --------------------------------------------------------------------------
# raw protocol client (for malformed-packet and exact-message tests)

SSL_REQUEST_CODE = 80877103
PROTOCOL_3 = 196608


class PgError(Exception):
    def __init__(self, fields: Dict[str, str]):
        self.fields = fields
        super().__init__(f"{fields.get('S')} {fields.get('C')}: {fields.get('M')}")

    @property
    def sqlstate(self) -> Optional[str]:
        return self.fields.get("C")


def parse_error_fields(payload: bytes) -> Dict[str, str]:
    fields: Dict[str, str] = {}
    i = 0
    while i < len(payload) and payload[i] != 0:
        code = chr(payload[i])
        end = payload.index(b"\0", i + 1)
        fields[code] = payload[i + 1:end].decode(errors="replace")
        i = end + 1
    return fields


def msg(type_byte: bytes, payload: bytes = b"") -> bytes:
    return type_byte + struct.pack("!I", len(payload) + 4) + payload


def startup_packet(params: Dict[str, str], protocol: int = PROTOCOL_3) -> bytes:
    body = struct.pack("!I", protocol)
    for k, v in params.items():
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


class QueryResult:
    def __init__(self):
        self.rows: List[List[Optional[str]]] = []
        self.tags: List[str] = []
        self.error: Optional[Dict[str, str]] = None
        self.notices: List[Dict[str, str]] = []
        self.status: Optional[str] = None
        self.messages: List[Tuple[bytes, bytes]] = []


class RawPgClient:
    """A minimal PostgreSQL v3 frontend over a plain or TLS socket (SCRAM-SHA-256, MD5, cleartext)."""

    def __init__(self, host: str, port: int, tls: bool = True, timeout: float = 10):
        self.timeout = timeout * SLOW
        self.sock = socket.create_connection((host, port), timeout=self.timeout)
        self.tls = tls
        self.peer_cert_der: Optional[bytes] = None
        self.params: Dict[str, str] = {}
        self.auth_requests: List[int] = []
        if tls:
            self.sock.sendall(struct.pack("!II", 8, SSL_REQUEST_CODE))
            answer = self._recv_exact(1)
            if answer != b"S":
                raise RuntimeError(f"server refused TLS (answered {answer!r})")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
            self.peer_cert_der = self.sock.getpeercert(binary_form=True)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("connection closed by peer")
            buf += chunk
        return buf

    def read_msg(self) -> Tuple[bytes, bytes]:
        t = self._recv_exact(1)
        (length,) = struct.unpack("!I", self._recv_exact(4))
        if length < 4 or length > 1 << 30:
            raise RuntimeError(f"bad message length {length} for type {t!r}")
        return t, self._recv_exact(length - 4)

    def read_until_closed(self, timeout: Optional[float] = None) -> Tuple[List[Tuple[bytes, bytes]], bool]:
        """Reads messages until EOF/reset; returns (messages, closed)."""
        self.sock.settimeout(timeout or self.timeout)
        out = []
        try:
            while True:
                out.append(self.read_msg())
        except (EOFError, ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return out, True
        except socket.timeout:
            return out, False
        except OSError:
            return out, True
        finally:
            self.sock.settimeout(self.timeout)

    def expect_error_and_close(self, timeout: Optional[float] = None) -> Dict[str, str]:
        """The next message must be an ErrorResponse (its fields are returned) and then the connection closes."""
        msgs, closed = self.read_until_closed(timeout)
        errors = [parse_error_fields(p) for t, p in msgs if t == b"E"]
        if not errors:
            raise AssertionError(f"expected an ErrorResponse, got {[t for t, _ in msgs]} (closed={closed})")
        if not closed:
            raise AssertionError(f"connection still open after ErrorResponse {errors[0]}")
        return errors[0]

    def startup(self, user: str, database: str = "appdb", **params: str) -> None:
        p = {"user": user, "database": database}
        p.update(params)
        self.send(startup_packet(p))

    def login(self, user: str, password: str, database: str = "appdb", **params: str) -> None:
        """Startup + authentication; raises PgError on an ErrorResponse. Stops at ReadyForQuery."""
        self.startup(user, database, **params)
        self.authenticate(user, password)

    def authenticate(self, user: str, password: str) -> None:
        scram: Optional[_Scram] = None
        while True:
            t, p = self.read_msg()
            if t == b"E":
                raise PgError(parse_error_fields(p))
            if t == b"R":
                (code,) = struct.unpack("!I", p[:4])
                self.auth_requests.append(code)
                if code == 0:
                    continue
                if code == 3:
                    self.send(msg(b"p", password.encode() + b"\0"))
                elif code == 5:
                    salt = p[4:8]
                    inner = hashlib.md5((password + user).encode()).hexdigest()
                    outer = "md5" + hashlib.md5(inner.encode() + salt).hexdigest()
                    self.send(msg(b"p", outer.encode() + b"\0"))
                elif code == 10:
                    mechs = [m for m in p[4:].split(b"\0") if m]
                    if b"SCRAM-SHA-256" not in mechs:
                        raise RuntimeError(f"no SCRAM-SHA-256 in {mechs}")
                    scram = _Scram(password)
                    first = scram.client_first().encode()
                    self.send(msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first))
                elif code == 11:
                    assert scram is not None
                    self.send(msg(b"p", scram.client_final(p[4:].decode()).encode()))
                elif code == 12:
                    assert scram is not None
                    scram.verify_server_final(p[4:].decode())
                else:
                    raise RuntimeError(f"unsupported auth request {code}")
            elif t == b"S":
                k, v, _ = p.split(b"\0", 2)
                self.params[k.decode()] = v.decode()
            elif t == b"K":
                pass
            elif t == b"N":
                pass
            elif t == b"Z":
                return
            else:
                raise RuntimeError(f"unexpected message {t!r} during startup")

    def query(self, sql: str) -> QueryResult:
        self.send(msg(b"Q", sql.encode() + b"\0"))
        return self.read_result()

    def read_result(self) -> QueryResult:
        res = QueryResult()
        while True:
            t, p = self.read_msg()
            res.messages.append((t, p))
            if t == b"D":
                (n,) = struct.unpack("!H", p[:2])
                i = 2
                row: List[Optional[str]] = []
                for _ in range(n):
                    (ln,) = struct.unpack("!i", p[i:i + 4])
                    i += 4
                    if ln < 0:
                        row.append(None)
                    else:
                        row.append(p[i:i + ln].decode())
                        i += ln
                res.rows.append(row)
            elif t == b"C":
                res.tags.append(p.rstrip(b"\0").decode())
            elif t == b"E":
                res.error = parse_error_fields(p)
            elif t == b"N":
                res.notices.append(parse_error_fields(p))
            elif t == b"S":
                k, v, _ = p.split(b"\0", 2)
                self.params[k.decode()] = v.decode()
            elif t == b"Z":
                res.status = p.decode()
                return res

    def scalar(self, sql: str) -> Optional[str]:
        r = self.query(sql)
        if r.error:
            raise PgError(r.error)
        return r.rows[0][0]


class _Scram:
    def __init__(self, password: str):
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = f"n=,r={self.nonce}"
        self.server_signature = b""

    def client_first(self) -> str:
        return "n,," + self.first_bare

    def client_final(self, server_first: str) -> str:
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        rnonce, salt, iters = attrs["r"], base64.b64decode(attrs["s"]), int(attrs["i"])
        if not rnonce.startswith(self.nonce):
            raise RuntimeError("server nonce does not extend client nonce")
        salted = hashlib.pbkdf2_hmac("sha256", self.password, salt, iters)
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={rnonce}"
        auth_message = f"{self.first_bare},{server_first},{without_proof}".encode()
        client_sig = hmac.new(stored_key, auth_message, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, client_sig))
        server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        self.server_signature = hmac.new(server_key, auth_message, "sha256").digest()
        return f"{without_proof},p={base64.b64encode(proof).decode()}"

    def verify_server_final(self, server_final: str) -> None:
        attrs = dict(kv.split("=", 1) for kv in server_final.split(","))
        if "e" in attrs:
            raise RuntimeError(f"SCRAM error from server: {attrs['e']}")
        if base64.b64decode(attrs["v"]) != self.server_signature:
            raise RuntimeError("SCRAM server signature mismatch")


# --------------------------------------------------------------------------
# pgbench


class PgbenchResult:
    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        m = re.search(r"number of transactions actually processed: (\d+)", stdout)
        self.processed = int(m.group(1)) if m else 0
        m = re.search(r"number of failed transactions: (\d+)", stdout)
        self.failed = int(m.group(1)) if m else None
        m = re.search(r"^tps = ([\d.]+)", stdout, re.M)
        self.tps = float(m.group(1)) if m else 0.0

    def ok(self) -> bool:
        return self.returncode == 0 and self.processed > 0 and (self.failed in (0, None)) \
            and "error" not in self.stderr.lower()

    def summary(self) -> str:
        return (f"rc={self.returncode} processed={self.processed} failed={self.failed} tps={self.tps}\n"
                f"--- stdout ---\n{self.stdout[-3000:]}\n--- stderr ---\n{self.stderr[-3000:]}")


def run_pgbench(env: Dict[str, str], args: List[str], timeout: float = 300) -> PgbenchResult:
    r = subprocess.run([PGBENCH, *args], env=env, capture_output=True, text=True, timeout=timeout)
    return PgbenchResult(r.returncode, r.stdout, r.stderr)


def rotating_holders(proxy: "Proxy", user: str, password: str, rounds: int, keep: int = 2):
    """Yields `rounds` times. Before each, another client takes a server connection inside an open
    transaction (at most `keep` at once, the oldest let go first), so a client that runs between the
    yields is pushed from one server connection to another."""
    holders = []
    try:
        for i in range(rounds):
            h = proxy.connect(user, password)
            h.execute("BEGIN")
            h.execute("select 1")
            holders.append(h)
            yield i
            if len(holders) >= keep:
                holders.pop(0).close()
    finally:
        for h in holders:
            h.close()


class ActivitySampler(threading.Thread):
    """Polls pg_stat_activity for the number of client backends of a user; records the peak."""

    def __init__(self, pg: PostgresServer, user: str, interval: float = 0.02):
        super().__init__(daemon=True)
        self.pg = pg
        self.user = user
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self.errors: List[str] = []
        self._stop_evt = threading.Event()

    def run(self) -> None:
        try:
            with self.pg.superuser_conn() as c:
                while not self._stop_evt.is_set():
                    (n,) = c.execute("select count(*) from pg_stat_activity where backend_type = 'client backend'"
                                     " and usename = %s", (self.user,)).fetchone()
                    self.peak = max(self.peak, n)
                    self.samples += 1
                    self._stop_evt.wait(self.interval)
        except Exception as e:  # pragma: no cover - reported via .errors
            self.errors.append(repr(e))

    def stop(self) -> int:
        self._stop_evt.set()
        self.join(10)
        return self.peak
