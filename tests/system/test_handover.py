"""Zero-downtime upgrade: a new sluice-proxy started with --takeover takes the running one's very
listening sockets (and their accept queues) over its handover_socket; the old one stops accepting
only once the new one confirmed, and drains. Under load no connection attempt fails."""
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import urllib.request

import psycopg
import pytest

from sluice_harness import harness


@pytest.fixture
def handover_socket():
    # Short: a Unix socket's path holds at most 107 bytes.
    directory = tempfile.mkdtemp(prefix="sluice-ho-")
    yield os.path.join(directory, "proxy.sock")
    shutil.rmtree(directory, ignore_errors=True)


class Successor:
    """`sluice-proxy --takeover` with the old proxy's configuration and `overrides`."""

    def __init__(self, old, binary, **overrides):
        config = harness.deep_merge(old.config, overrides)
        self.config_path = os.path.join(old.dir, f"successor-{time.time_ns()}.toml")
        with open(self.config_path, "w") as f:
            f.write(harness.to_toml(config))
        self.logfile = self.config_path + ".log"
        self._log = open(self.logfile, "ab")
        self.proc = harness.register_proc(subprocess.Popen(
            [binary, "--config", self.config_path, "--takeover"], stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=self._log, start_new_session=True))

    def log_text(self):
        with open(self.logfile, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40 * harness.SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        harness.unregister_proc(self.proc)
        self._log.close()


class Churn:
    """Threads that connect, run `select 1` and disconnect, over and over."""

    def __init__(self, proxy, app, threads):
        self.dsn = proxy.dsn(app.app_user, app.app_password)
        self.ok = []        # monotonic time of each success
        self.failed = []    # what went wrong
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self._threads:
            t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True) as c:
                    assert c.execute("select 1").fetchone() == (1,)
                self.ok.append(time.monotonic())
            except Exception as e:  # every failure counts
                self.failed.append(repr(e))

    def successes_since(self, t):
        return sum(1 for s in list(self.ok) if s > t)

    def wait_for_successes_since(self, t, count, what):
        harness.wait_for(lambda: self.successes_since(t) >= count or self.failed, 60 * harness.SLOW,
                         0.05, what)
        assert not self.failed, self.failed[:5]

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(30 * harness.SLOW)


def test_takeover_under_load_refuses_nobody(proxy_factory, proxy_binary, pg, app, handover_socket):
    old = proxy_factory(workers=2, handover_socket=handover_socket)
    assert stat.S_IMODE(os.stat(handover_socket).st_mode) == 0o600
    # Sessions with a transaction open across the handover: the old process finishes them.
    keys = [f"handover-{time.time_ns()}-{i}" for i in range(3)]
    sessions = []
    for key in keys:
        c = old.connect(app.app_user, app.app_password)
        c.execute("BEGIN")
        c.execute("insert into kv values (%s, 'before')", (key,))
        sessions.append(c)
    churn = Churn(old, app, threads=6)
    successor = None
    try:
        churn.wait_for_successes_since(0, 30, "the load to run")
        # Another number of workers: the three take the two sockets between them.
        successor = Successor(old, proxy_binary, workers=3)
        harness.wait_for(lambda: "accepts now" in old.log_text() or successor.proc.poll() is not None,
                         30 * harness.SLOW, 0.05, "the old proxy to hand over")
        assert successor.proc.poll() is None, successor.log_text()
        handed_over = time.monotonic()
        churn.wait_for_successes_since(handed_over, 30, "clients served after the handover")
        # The old process still runs for its open transactions, which finish normally.
        assert old.alive()
        for key, c in zip(keys, sessions):
            c.execute("update kv set v = 'after' where k = %s", (key,))
            c.execute("COMMIT")
            c.close()
        assert old.wait(30 * harness.SLOW) == 0
        old_gone = time.monotonic()
        churn.wait_for_successes_since(old_gone, 30, "clients served by the new proxy alone")
        churn.stop()
        assert not churn.failed, churn.failed[:5]
        for key in keys:
            assert pg.scalar("select v from kv where k = %s", dbname=app.dbname, params=(key,)) == "after"
        # The metrics listener moved too, and the new process offers its sockets in turn.
        with urllib.request.urlopen(f"http://127.0.0.1:{old.metrics_port}/metrics", timeout=10) as r:
            assert b"sluice_" in r.read()
        assert stat.S_IMODE(os.stat(handover_socket).st_mode) == 0o600
        assert "stopped accepting" in successor.log_text()
        with psycopg.connect(old.dsn(app.app_user, app.app_password), autocommit=True) as c:
            assert c.execute("select 2").fetchone() == (2,)
    finally:
        churn.stop()
        for c in sessions:
            c.close()
        if successor:
            successor.stop()
    assert not os.path.exists(handover_socket), "the last proxy removes its socket file"


def test_a_successor_that_fails_before_confirming_changes_nothing(proxy_factory, proxy_binary, app,
                                                                  handover_socket):
    old = proxy_factory(handover_socket=handover_socket)
    churn = Churn(old, app, threads=3)
    successor = None
    try:
        churn.wait_for_successes_since(0, 10, "the load to run")
        # It receives the sockets, then cannot listen on its second address (not this host's) and
        # exits before it confirms.
        broken = Successor(old, proxy_binary, listen=[f"127.0.0.1:{old.port}", "192.0.2.1:6432"])
        assert broken.proc.wait(30 * harness.SLOW) != 0
        log = broken.log_text()
        broken.stop()
        assert "listening socket" in log and "from pid" in log and "bind" in log, log
        failed_at = time.monotonic()
        churn.wait_for_successes_since(failed_at, 20, "the old proxy to go on accepting")
        assert old.alive()
        harness.wait_for(lambda: "failed before it confirmed" in old.log_text(), 10 * harness.SLOW,
                         0.05, "the old proxy to note the failed handover")
        # It still offers its sockets: the next attempt succeeds.
        successor = Successor(old, proxy_binary)
        assert old.wait(30 * harness.SLOW) == 0
        churn.wait_for_successes_since(time.monotonic(), 20, "the successor to serve")
        churn.stop()
        assert not churn.failed, churn.failed[:5]
    finally:
        churn.stop()
        if successor:
            successor.stop()


def test_an_inherited_listener_moves_with_its_label(proxy_factory, proxy_binary, app, tmp_path,
                                                   handover_socket):
    # A socket inherited as fd:N (as sluice serve passes them): the successor, not started by
    # that parent, has no such descriptor and gets it in the handover, label and all: the
    # admission rule naming "fd:N" still admits the loopback.
    inherited = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    inherited.bind(("127.0.0.1", 0))
    inherited.listen(128)
    fd = inherited.fileno()
    rules = tmp_path / "admission"
    rules.write_text(f"fd:{fd} 127.0.0.1/32\n")
    old = proxy_factory(start=False, metrics=False, listen=f"fd:{fd}", handover_socket=handover_socket,
                        admission={"file": str(rules)})
    old.port = inherited.getsockname()[1]
    old._log = open(old.logfile, "ab")
    old.proc = harness.register_proc(subprocess.Popen(
        [proxy_binary, "--config", old.config_path], stdin=subprocess.DEVNULL, stdout=old._log,
        stderr=old._log, start_new_session=True, pass_fds=[fd]))
    inherited.close()  # the proxy's now
    successor = None
    try:
        harness.wait_for(lambda: os.path.exists(handover_socket) or not old.alive(), 20 * harness.SLOW,
                         0.05, "the proxy to start")
        churn = Churn(old, app, threads=2)
        try:
            churn.wait_for_successes_since(0, 5, "the load to run")
            successor = Successor(old, proxy_binary, workers=2)
            assert old.wait(30 * harness.SLOW) == 0, old.log_tail()
            churn.wait_for_successes_since(time.monotonic(), 10, "the successor to serve fd:N")
        finally:
            churn.stop()
        assert not churn.failed, churn.failed[:5]
        assert f"listening on fd:{fd} (taken over" in successor.log_text()
        assert "refused a connection" not in successor.log_text()
    finally:
        if successor:
            successor.stop()


def process_running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def stop_process(pid):
    """SIGTERM a process that is not our child (SIGUSR2's successor) and wait for it to exit."""
    if not process_running(pid):
        return
    os.kill(pid, signal.SIGTERM)
    try:
        harness.wait_for(lambda: not process_running(pid), 40 * harness.SLOW, 0.05, f"pid {pid} to exit")
    finally:
        if process_running(pid):
            os.kill(pid, signal.SIGKILL)


def test_sigusr2_upgrades_in_place(proxy_factory, app, handover_socket, monkeypatch):
    # What `systemctl kill --signal=SIGUSR2 --kill-whom=main sluice-proxy` does, with systemd's
    # notification socket played by the test: READY=1 from the first process, then the
    # successor's MAINPID (the unit is Type=notify, NotifyAccess=all).
    notify_path = os.path.join(os.path.dirname(handover_socket), "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(20 * harness.SLOW)
    monkeypatch.setenv("NOTIFY_SOCKET", notify_path)
    old = proxy_factory(handover_socket=handover_socket)
    assert notify.recv(4096) == b"READY=1"
    churn = Churn(old, app, threads=3)

    def successor_pid():
        m = re.search(r"handover: pid (\d+) accepts now", old.log_text())
        return int(m.group(1)) if m else None
    try:
        churn.wait_for_successes_since(0, 10, "the load to run")
        old.signal(signal.SIGUSR2)
        assert old.wait(30 * harness.SLOW) == 0, old.log_tail()
        new_pid = successor_pid()
        assert new_pid and new_pid != old.pid and process_running(new_pid), old.log_tail()
        assert notify.recv(4096) == f"MAINPID={new_pid}\nREADY=1".encode()
        churn.wait_for_successes_since(time.monotonic(), 20, "the successor to serve")
        churn.stop()
        assert not churn.failed, churn.failed[:5]
        assert "SIGUSR2: started" in old.log_text()
    finally:
        churn.stop()
        notify.close()
        if successor_pid():
            stop_process(successor_pid())


def test_takeover_needs_a_running_proxy_and_a_running_proxy_needs_takeover(
        proxy_factory, proxy_binary, app, handover_socket):
    # Nobody answers: --takeover refuses to start (and binds nothing).
    idle = proxy_factory(start=False, handover_socket=handover_socket)
    r = subprocess.run([proxy_binary, "--config", idle.config_path, "--takeover"],
                       capture_output=True, text=True, timeout=30 * harness.SLOW)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "no running sluice-proxy answers at " + handover_socket in r.stderr + r.stdout
    # One runs: starting another without --takeover is refused rather than sharing the port.
    running = proxy_factory(handover_socket=handover_socket)
    r = subprocess.run([proxy_binary, "--config", running.config_path],
                       capture_output=True, text=True, timeout=30 * harness.SLOW)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "start this one with --takeover" in r.stderr + r.stdout
    with running.connect(app.app_user, app.app_password) as c:
        assert c.execute("select 1").fetchone() == (1,)
    # A socket file left by a proxy that died is no obstacle.
    running.kill()
    assert os.path.exists(handover_socket)
    again = proxy_factory(handover_socket=handover_socket)
    with again.connect(app.app_user, app.app_password) as c:
        assert c.execute("select 1").fetchone() == (1,)


def test_a_reload_changes_what_is_handed_over(proxy_factory, proxy_binary, app, handover_socket):
    """A listen address added by SIGHUP is offered to the successor with the others, one that
    was removed is not, and a moved metrics endpoint moves along."""
    old = proxy_factory(workers=2, handover_socket=handover_socket)
    first = f"127.0.0.1:{old.port}"
    added_port, metrics_port = harness.free_port(), harness.free_port()
    old.reload(listen=[first, f"127.0.0.1:{added_port}"], metrics={"listen": f"127.0.0.1:{metrics_port}"})
    successor = Successor(old, proxy_binary)
    try:
        harness.wait_for(lambda: "accepts now" in old.log_text() or successor.proc.poll() is not None,
                         30 * harness.SLOW, 0.05, "the old proxy to hand over")
        assert successor.proc.poll() is None, successor.log_text()
        received = re.search(r"received (\d+) listening sockets of (\d+) listeners", successor.log_text())
        assert received and received.group(2) == "3", successor.log_text()  # two addresses, metrics
        assert "bound anew" not in successor.log_text() and "cannot bind" not in successor.log_text()
        assert old.wait(30 * harness.SLOW) == 0
        for port in (old.port, added_port):
            dsn = old.dsn(app.app_user, app.app_password).replace(f"port={old.port}", f"port={port}")
            with psycopg.connect(dsn, autocommit=True) as c:
                assert c.execute("select 1").fetchone() == (1,)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
            assert b"sluice_" in r.read()
    finally:
        successor.stop()
