"""Money transfers under a disturbance: the load of bench/restart.py, bench/failover.py and
tests/system/test_restart.py.

Each client (a thread with its own psycopg connection, autocommit off) runs transfers in a
loop: two UPDATEs of `accounts` and an INSERT into a ledger table, then COMMIT. A statement
that fails is followed by the client's ROLLBACK, and the client goes on on the same connection;
a connection that closes is counted lost (and opened again when `reconnect`). Everything is
counted per phase (`phase()` marks them: "before", then one per disturbance), and the ledger
says afterwards whether every acknowledged commit is there exactly once and the balances agree.
"""
from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import psycopg


def prepare_ledger(server, app, table: str) -> None:
    """A fresh ledger table the app user may write, and every balance back to the start."""
    with server.superuser_conn(app.dbname) as c:
        c.execute(f"drop table if exists {table}")
        c.execute(f"create table {table} (id text primary key, a int, b int, d int)")
        c.execute(f"grant all on {table} to {app.app_user}")
        c.execute("update accounts set balance = %s", (app.initial_balance,))


@dataclass
class TransferError:
    phase: str
    sqlstate: Optional[str]
    severity: Optional[str]
    step: str          # the statement that failed ("update 1", "commit", ...)
    message: str


@dataclass
class Client:
    index: int
    dsn: str
    errors: List[TransferError] = field(default_factory=list)
    lost: List[str] = field(default_factory=list)              # phases of lost connections
    commits: Dict[str, int] = field(default_factory=dict)      # acknowledged, per phase
    started: Dict[str, int] = field(default_factory=dict)      # transfers begun, per phase
    # Commits of transfers that began after the phase was marked (on the server as it is now).
    fresh_commits: Dict[str, int] = field(default_factory=dict)
    step: str = "connecting"   # what it does now, and since when: a stuck client shows here
    since: float = 0.0
    done: bool = False         # the thread ended (stopped, or its connection is gone)
    crashed: str = ""          # what ended it otherwise (a driver's own exception)

    def describe(self) -> str:
        return (f"client {self.index} ({'plain' if 'sslmode=disable' in self.dsn else 'TLS'}):"
                f" {self.step} for {time.monotonic() - self.since:.1f} s, errors"
                f" {[(e.phase, e.sqlstate, e.step) for e in self.errors]}, lost {self.lost},"
                f" commits {self.commits}{', crashed: ' + self.crashed if self.crashed else ''}")


class TransferLoad:
    """`dsns[i]` is client i's connection string. `reconnect`: a client whose connection closed
    opens another (what PgBouncer's clients must do); otherwise it stops. `prepare_threshold`:
    psycopg's, for every client or (a callable) per client index; None prepares nothing on the
    server (PgBouncer 1.18 cannot carry prepared statements)."""

    def __init__(self, app, dsns: Sequence[str], table: str, reconnect: bool = True,
                 prepare_threshold=None, connect_timeout: Optional[int] = None):
        self.app = app
        self.table = table
        self.reconnect = reconnect
        self.prepare_threshold = prepare_threshold
        self.connect_timeout = connect_timeout
        self.clients = [Client(i, dsn) for i, dsn in enumerate(dsns)]
        self.lock = threading.Lock()
        self.acknowledged: List[str] = []
        self.current = "before"
        self.marked = time.monotonic()
        self.last_commit = time.monotonic()
        self.gap = 0.0  # the longest time without any client's COMMIT succeeding
        self._stop = threading.Event()
        self._threads: List[threading.Thread] = []

    # -- running
    def start(self) -> "TransferLoad":
        self.last_commit = time.monotonic()
        for c in self.clients:
            t = threading.Thread(target=self._run, args=(c,), daemon=True)
            self._threads.append(t)
            t.start()
        return self

    def phase(self, name: str) -> None:
        with self.lock:
            self.current = name
            self.marked = time.monotonic()

    def stop(self, timeout: float = 90) -> int:
        """Stops the clients; returns how many are still inside a call after `timeout`."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self.lock:
            # A gap still open at the end counts too (clients that never came back).
            self.gap = max(self.gap, time.monotonic() - self.last_commit)
        return sum(t.is_alive() for t in self._threads)

    def wait_for_progress(self, phase: str, commits: int, timeout: float) -> List[Client]:
        """Waits until every client committed `commits` transfers begun in `phase`; returns
        the clients that did not in time."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                behind = [c for c in self.clients if c.fresh_commits.get(phase, 0) < commits]
            if not behind or time.monotonic() > deadline:
                return behind
            if all(c.done for c in behind):
                return behind
            time.sleep(0.05)

    def _connect(self, c: Client):
        kw = {}
        if self.connect_timeout is not None:
            kw["connect_timeout"] = self.connect_timeout
        threshold = self.prepare_threshold
        if callable(threshold):
            threshold = threshold(c.index)
        return psycopg.connect(c.dsn, autocommit=False, prepare_threshold=threshold, **kw)

    def _at(self, c: Client, step: str) -> None:
        c.step = step
        c.since = time.monotonic()

    def _run(self, c: Client) -> None:
        rnd = random.Random(c.index)
        conn = None
        try:
            while not self._stop.is_set():
                if conn is None or conn.closed or conn.broken:
                    if conn is not None and not self.reconnect:
                        return
                    self._at(c, "connecting")
                    try:
                        conn = self._connect(c)
                    except psycopg.Error:
                        if not self.reconnect:
                            raise
                        time.sleep(0.05)
                        continue
                self._transfer(c, conn, rnd)
        except Exception as e:
            c.crashed = f"{type(e).__name__}: {e} in {c.step}"
            raise
        finally:
            c.done = True
            self._at(c, "done")
            if conn is not None:
                conn.close()

    def _transfer(self, c: Client, conn, rnd: random.Random) -> None:
        a, b = sorted(rnd.sample(range(1, self.app.accounts + 1), 2))
        d = rnd.randint(1, 50)
        tid = uuid.uuid4().hex
        with self.lock:
            began = self.current
            c.started[began] = c.started.get(began, 0) + 1
        step = "update 1"
        try:
            self._at(c, step)
            conn.execute("update accounts set balance = balance - %s where id = %s", (d, a))
            self._at(c, step := "update 2")
            conn.execute("update accounts set balance = balance + %s where id = %s", (d, b))
            self._at(c, step := "insert")
            conn.execute(f"insert into {self.table} values (%s, %s, %s, %s)", (tid, a, b, d))
            self._at(c, step := "commit")
            conn.commit()
            self._at(c, "between transfers")
            now = time.monotonic()
            with self.lock:
                self.acknowledged.append(tid)
                self.gap = max(self.gap, now - self.last_commit)
                self.last_commit = now
                c.commits[self.current] = c.commits.get(self.current, 0) + 1
                if began == self.current:
                    c.fresh_commits[began] = c.fresh_commits.get(began, 0) + 1
        except psycopg.Error as e:
            with self.lock:
                c.errors.append(TransferError(self.current, e.sqlstate, e.diag.severity_nonlocalized
                                              or e.diag.severity, step, str(e).strip()))
            if conn.closed or conn.broken:
                with self.lock:
                    c.lost.append(self.current)
                return
            try:
                self._at(c, "rollback")
                # psycopg follows its ROLLBACK with a DEALLOCATE ALL when it prepared statements:
                # that one needs a server, and may fail as any statement may.
                conn.rollback()
            except psycopg.Error as e:
                with self.lock:
                    c.errors.append(TransferError(self.current, e.sqlstate, e.diag.severity_nonlocalized
                                                  or e.diag.severity, "rollback", str(e).strip()))
                    if conn.closed or conn.broken:
                        c.lost.append(self.current)

    # -- results
    def errors(self, phase: Optional[str] = None) -> List[TransferError]:
        return [e for c in self.clients for e in c.errors if phase is None or e.phase == phase]

    def summary(self, phase: str) -> dict:
        """The bench's figures for a run disturbed once, marked `phase`."""
        errors = self.errors()
        return dict(commits=len(self.acknowledged), errors=len(errors),
                    clients_with_errors=sum(1 for c in self.clients if c.errors),
                    sqlstates=sorted({e.sqlstate or "none" for e in errors}),
                    lost=sum(len(c.lost) for c in self.clients), gap=self.gap,
                    stuck=sum(1 for c in self.clients if c.commits.get(phase, 0) == 0))

    def check_ledger(self, server) -> dict:
        """lost_commits: acknowledged transfers missing from the ledger; consistent: the
        balances sum to the start total and each agrees with the ledger (nothing applied twice
        or half)."""
        app = self.app
        with server.superuser_conn(app.dbname) as c:
            total = c.execute("select sum(balance) from accounts").fetchone()[0]
            ledger = [r[0] for r in c.execute(f"select id from {self.table}")]
            drift = c.execute(
                "select count(*) from accounts x where balance <> %s"
                f" + coalesce((select sum(d) from {self.table} where b = x.id), 0)"
                f" - coalesce((select sum(d) from {self.table} where a = x.id), 0)",
                (app.initial_balance,)).fetchone()[0]
        present = set(ledger)
        return dict(lost_commits=sum(1 for t in self.acknowledged if t not in present),
                    duplicated=len(ledger) - len(present),
                    consistent=total == app.accounts * app.initial_balance and drift == 0)
