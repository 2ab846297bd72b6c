"""Large values stream through the proxy: rows, COPY data and Bind parameters far larger than
max_message_size pass with the proxy's memory bounded by a few buffers, SQL text up to the
default max_message_size (a 10 MiB bytea sent as text by psycopg2) is admitted, memory goes back
after a transfer, and other clients keep working while one streams.

Memory figures are read from /proc (VmHWM, reset through clear_refs, catches the peak); under
AddressSanitizer they mean nothing (quarantine, shadow memory), so only correctness is checked."""
import hashlib
import os
import threading
import time

import psycopg
import pytest

from sluice_harness import harness
from sluice_harness.measure import reset_peak_rss, rss_kb

MIB = 1024 * 1024
# Under AddressSanitizer memory is not checked (see above) and every byte costs several times
# more, so the values are a quarter as large: still thousands of 64 KiB buffers each way.
SIZE_DIVISOR = 4 if harness.SANITIZED else 1
# The proxy's own buffers per connection are a few 64 KiB pieces; 8 MiB leaves room for the
# allocator and the TLS records, and is 25 times less than the 200 MiB value.
MAX_GROWTH = 8 * MIB


class PeakMemory:
    """The proxy's RSS peak over a block, from the kernel's high-water mark."""

    def __init__(self, pid):
        self.pid = pid

    def __enter__(self):
        assert reset_peak_rss(self.pid)
        self.before = rss_kb(self.pid)
        return self

    def __exit__(self, *exc):
        self.growth = (rss_kb(self.pid, "VmHWM") - self.before) * 1024

    def check(self, what):
        print(f"{what}: proxy RSS peak growth {self.growth / 1024:.0f} KiB")
        if harness.SANITIZED:
            return
        assert self.growth <= MAX_GROWTH, f"{what}: proxy RSS grew by {self.growth / MIB:.1f} MiB"


class Bystander(threading.Thread):
    """Another client querying while the large value moves: it must see no error."""

    def __init__(self, proxy, app, sslmode):
        super().__init__(daemon=True)
        self.conn = proxy.connect(app.app_user, app.app_password, sslmode=sslmode, autocommit=True)
        self.stop_evt = threading.Event()
        self.ok = 0
        self.errors = []

    def run(self):
        while not self.stop_evt.is_set():
            try:
                assert self.conn.execute("select 1").fetchone() == (1,)
                self.ok += 1
            except Exception as e:  # noqa: BLE001 - any failure is the finding
                self.errors.append(repr(e))
                return
            time.sleep(0.005)

    def finish(self):
        self.stop_evt.set()
        self.join(30)
        self.conn.close()
        assert not self.errors, self.errors
        assert self.ok > 0


@pytest.fixture(params=["tls", "plain"])
def setup(request, proxy_factory, app):
    if request.param == "tls":
        return proxy_factory(), "require"
    return proxy_factory(require_tls=False), "disable"


def test_200mib_row_streams_to_the_client(setup, app):
    proxy, sslmode = setup
    size = 200 * MIB // SIZE_DIVISOR
    conn = proxy.connect(app.app_user, app.app_password, sslmode=sslmode, autocommit=True)
    by = Bystander(proxy, app, sslmode)
    try:
        conn.execute("select 1")
        by.start()
        with PeakMemory(proxy.pid) as peak:
            value = conn.execute("select repeat('x', %s) || 'end'", (size - 3,)).fetchone()[0]
        assert len(value) == size and value.endswith("xend")
        del value
        peak.check("a 200 MiB row")
        # The connection goes back and is reused as usual.
        assert conn.execute("select 2").fetchone() == (2,)
    finally:
        by.finish()
        conn.close()


def test_large_bind_parameter_streams_to_the_server(setup, app):
    proxy, sslmode = setup
    size = 100 * MIB // SIZE_DIVISOR
    conn = proxy.connect(app.app_user, app.app_password, sslmode=sslmode, autocommit=True)
    try:
        conn.execute("select 1")
        payload = b"b" * (size - 1) + b"!"
        with PeakMemory(proxy.pid) as peak:
            got = conn.execute("select length(%s::bytea), md5(%s::bytea)", (payload, payload)).fetchone()
        assert got == (size, hashlib.md5(payload).hexdigest())
        peak.check("a 100 MiB Bind parameter")
    finally:
        conn.close()


def test_100mib_copy_in_and_out(setup, app, pg):
    proxy, sslmode = setup
    size = 100 * MIB // SIZE_DIVISOR
    table = f"big_copy_{os.getpid()}_{sslmode}"
    pg.psql(f"drop table if exists {table}; create table {table}(v text); "
            f"grant all on {table} to {app.app_user}", dbname=app.dbname)
    conn = proxy.connect(app.app_user, app.app_password, sslmode=sslmode, autocommit=True)
    by = Bystander(proxy, app, sslmode)
    try:
        conn.execute("select 1")
        by.start()
        row = b"c" * (size - 1) + b"\n"
        with PeakMemory(proxy.pid) as peak_in:
            with conn.cursor() as cur:
                with cur.copy(f"copy {table} from stdin") as copy:
                    # One CopyData message of 100 MiB, then the same again in 1 MiB pieces.
                    copy.write(row)
                    for i in range(0, size, MIB):
                        copy.write(row[i:i + MIB])
        peak_in.check("100 MiB COPY FROM STDIN")
        assert conn.execute(f"select count(*), min(length(v)), max(length(v)) from {table}").fetchone() == \
            (2, size - 1, size - 1)
        received = 0
        digest = hashlib.md5()
        with PeakMemory(proxy.pid) as peak_out:
            with conn.cursor() as cur:
                with cur.copy(f"copy (select v from {table} limit 1) to stdout") as copy:
                    for data in copy:
                        received += len(data)
                        digest.update(data)
        peak_out.check("100 MiB COPY TO STDOUT")
        assert received == size
        assert digest.hexdigest() == hashlib.md5(row).hexdigest()
    finally:
        by.finish()
        conn.close()
        pg.psql(f"drop table if exists {table}", dbname=app.dbname)


def test_10mib_bytea_from_psycopg2_and_memory_back(proxy_factory, app, pg):
    """psycopg2 sends a bytea as hex text inside the SQL (20 MiB for 10 MiB): the default
    max_message_size admits it, the value arrives intact, and the proxy's memory goes back."""
    psycopg2 = pytest.importorskip("psycopg2")
    proxy = proxy_factory()
    table = f"big_bytea_{os.getpid()}"
    pg.psql(f"drop table if exists {table}; create table {table}(id int, v bytea); "
            f"grant all on {table} to {app.app_user}", dbname=app.dbname)
    conn = psycopg2.connect(proxy.dsn(app.app_user, app.app_password))
    conn.autocommit = True
    try:
        cur = conn.cursor()
        cur.execute("select 1")
        baseline = rss_kb(proxy.pid)
        data = os.urandom(10 * MIB)
        cur.execute(f"insert into {table} values (1, %s)", (psycopg2.Binary(data),))
        cur.execute(f"select md5(v), length(v) from {table} where id = 1")
        assert cur.fetchone() == (hashlib.md5(data).hexdigest(), len(data))
        cur.execute(f"select v from {table} where id = 1")
        assert bytes(cur.fetchone()[0]) == data
        if not harness.SANITIZED:
            # The 20 MiB message was held whole (the proxy reads SQL); afterwards its buffers go
            # back, and the periodic trim returns the pages.
            harness.wait_for(lambda: rss_kb(proxy.pid) - baseline <= 4 * 1024, 30, 0.5,
                             "the proxy's RSS to come back after the transfer")
    finally:
        conn.close()
        pg.psql(f"drop table if exists {table}", dbname=app.dbname)
