"""PgBouncer 1.18 in transaction pooling mode in front of a harness PostgreSQL: the bench's
(bench/bench.py, bench/instructions.py) reference pooler. Runs as the postgres user, with SCRAM
client logins, client TLS allowed and server TLS optional."""
import os
import shutil
import subprocess
import tempfile

from sluice_harness import harness

POOL = 20  # server connections, as sluice-proxy gets in the bench


class PgBouncer:
    def __init__(self, pg, app, server_tls, pool_size=POOL, stored_secret=False, max_clients=1000,
                 nofile=4096):
        # max_clients and nofile: room for a storm (runuser resets the soft open-file limit, so
        # it is raised in the shell that execs PgBouncer); listen_backlog as deep as sluice's.
        self.nofile = nofile
        self.dir = tempfile.mkdtemp(prefix="sluice-bench-pgbouncer-")
        os.chmod(self.dir, 0o755)
        self.port = harness.free_port()
        self.certs = harness.CertBundle(os.path.join(self.dir, "tls"))
        self.logfile = os.path.join(self.dir, "pgbouncer.log")
        self.pidfile = os.path.join(self.dir, "pgbouncer.pid")
        userlist = os.path.join(self.dir, "userlist.txt")
        # A plaintext password makes PgBouncer derive the SCRAM keys (4096 PBKDF2 rounds) at every
        # login, as the reference figures assume; with the server's stored verifier
        # (stored_secret) a login costs it only a few HMACs.
        secret = app.app_password
        if stored_secret:
            secret = pg.psql(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{app.app_user}'").strip()
        with open(userlist, "w") as f:
            f.write(f'"{app.app_user}" "{secret}"\n')
        ini = os.path.join(self.dir, "pgbouncer.ini")
        with open(ini, "w") as f:
            f.write(f"""[databases]
{app.dbname} = host=127.0.0.1 port={pg.port} dbname={app.dbname}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {userlist}
pool_mode = transaction
default_pool_size = {pool_size}
max_db_connections = {pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = {max_clients}
listen_backlog = 4096
logfile = {self.logfile}
pidfile = {self.pidfile}
log_connections = 0
log_disconnections = 0
client_tls_sslmode = allow
client_tls_key_file = {self.certs.key}
client_tls_cert_file = {self.certs.cert}
server_tls_sslmode = {"require" if server_tls else "disable"}
""")
        harness.chown_tree_to_postgres(self.dir)
        self.ini = ini
        self.proc = None

    def start(self):
        cmd = ["runuser", "-u", harness.PG_USER, "--", "bash", "-c", f'ulimit -n {self.nofile}; exec "$@"', "bash",
               harness.PGBOUNCER, self.ini]
        self.proc = harness.register_proc(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                                           start_new_session=True))
        harness.wait_port("127.0.0.1", self.port, 20, self.proc)
        # runuser forks: the pgbouncer process is a child; measure the real pid from the pidfile
        self.pid = int(harness.wait_for(lambda: os.path.exists(self.pidfile) and open(self.pidfile).read().strip(),
                                        10, 0.05, "pgbouncer pidfile"))
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=20):
        try:
            with open(self.logfile, errors="replace") as f:
                return "\n".join(f.read().splitlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.kill(self.pid, 15)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(5)
            harness.unregister_proc(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)
