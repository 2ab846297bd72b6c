#!/usr/bin/python3
"""Zero-downtime upgrades under load: a chain of handovers (`--takeover`, see README "Upgrading
without downtime") while CLIENTS threads connect over TLS, run `select 1` and disconnect, in a
loop, and SESSIONS clients keep a transaction open across each handover (committed once the
successor has confirmed).

Per handover:
  workers     the old and the new process's worker counts (they differ on purpose)
  takeover    from starting the new process to its confirmation (it loads TLS, secrets, then
              takes the sockets)
  drain       from the confirmation to the old process's exit: its open transactions commit 0.2 s
              after the confirmation, then it exits once its last client left
  attempts    connection attempts made meanwhile, and how many failed (must be 0)

Usage: PYTHONPATH=python /usr/bin/python3 bench/handover.py --build build [--clients 16]
         [--handovers 5]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import psycopg

from sluice_harness import harness


class Load:
    def __init__(self, dsn, clients):
        self.dsn = dsn
        self.attempts = 0
        self.failures = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]
        for t in self._threads:
            t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True) as c:
                    c.execute("select 1").fetchone()
                error = None
            except Exception as e:
                error = repr(e)
            with self._lock:
                self.attempts += 1
                if error:
                    self.failures.append(error)

    def counts(self):
        with self._lock:
            return self.attempts, len(self.failures)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(30)


def wait_for_text(path, text, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, "rb") as f:
            if text in f.read().decode(errors="replace"):
                return True
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("SLUICE_BUILD", "build"))
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--handovers", type=int, default=5)
    args = ap.parse_args()
    binary = os.path.join(os.path.abspath(args.build), "sluice-proxy")
    print(f"# handover bench: {args.clients} threads connect/select 1/disconnect over TLS, "
          f"{args.sessions} open transactions per handover, {args.handovers} handovers", flush=True)
    app = harness.AppDatabase()
    pg = harness.PostgresServer(max_connections=100)
    sockdir = tempfile.mkdtemp(prefix="sluice-ho-")
    socket_path = os.path.join(sockdir, "proxy.sock")
    first = load = None
    procs = []
    ok = True
    try:
        pg.start()
        harness.setup_app_database(pg, app, pgbench_scale=1, accounts=app.accounts)
        first = harness.Proxy(binary, pg.port, users=[(app.app_user, app.app_password)],
                              handover_socket=socket_path, workers=2)
        first.start()
        current = first.proc
        dsn = first.dsn(app.app_user, app.app_password, app.dbname)
        load = Load(dsn, args.clients)
        time.sleep(1)
        print(f"{'#':>2} {'workers':>8} {'takeover':>9} {'drain':>7} {'attempts':>9} {'failed':>7}")
        for n in range(1, args.handovers + 1):
            sessions = []
            for _ in range(args.sessions):
                c = psycopg.connect(dsn, autocommit=False)
                c.execute("select 1")  # a transaction is open now
                sessions.append(c)
            workers = 1 + n % 3
            config = harness.deep_merge(first.config, {"workers": workers})
            path = os.path.join(first.dir, f"successor-{n}.toml")
            with open(path, "w") as f:
                f.write(harness.to_toml(config))
            log = path + ".log"
            before = load.counts()
            t0 = time.monotonic()
            with open(log, "ab") as out:
                proc = harness.register_proc(subprocess.Popen(
                    [binary, "--config", path, "--takeover"], stdin=subprocess.DEVNULL, stdout=out,
                    stderr=out, start_new_session=True))
            procs.append(proc)
            if not wait_for_text(log, "stopped accepting", proc):
                print(f"handover {n} did not complete:\n" + open(log).read(), file=sys.stderr)
                ok = False
                break
            t1 = time.monotonic()
            time.sleep(0.2)  # the load goes on across the old process's drain
            for c in sessions:
                c.commit()
                c.close()
            current.wait(60)
            t2 = time.monotonic()
            time.sleep(0.5)
            after = load.counts()
            old_workers = 2 if n == 1 else 1 + (n - 1) % 3
            failed = after[1] - before[1]
            ok = ok and failed == 0
            print(f"{n:>2} {f'{old_workers}->{workers}':>8} {(t1 - t0) * 1000:>7.0f}ms "
                  f"{(t2 - t1) * 1000:>5.0f}ms {after[0] - before[0]:>9} {failed:>7}", flush=True)
            current = proc
        load.stop()
        attempts, failures = load.counts()
        print(f"total: {attempts} connection attempts, {failures} failed")
        for f in load.failures[:5]:
            print("  " + f)
    finally:
        if load:
            load.stop()
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(60)
            harness.unregister_proc(proc)
        if first:
            first.cleanup()
        pg.cleanup()
        shutil.rmtree(sockdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
