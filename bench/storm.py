#!/usr/bin/python3
"""Storm bench: the Lambda pattern. Direct PostgreSQL vs PgBouncer (transaction mode) vs sluice-proxy.

Starts a private PostgreSQL 15 (max_connections=100), a PgBouncer 1.18 (pool_mode=transaction,
default_pool_size=20, auth_type=scram-sha-256, client TLS allowed, max_client_conn raised,
listen_backlog 4096 as sluice's) and sluice-proxy (max_connections_percent=20 -> 20 server
connections), all as bench/bench.py configures them, and drives them with
build/sluice-bench-burst (bench/burst.cpp: one thread, libpq's non-blocking API):

  burst     N clients (--clients, default 1000,2000) open TLS+SCRAM connections at once
            (sslmode=require), run `select 1` and disconnect. Success, p50/p99/max ms from a
            client's start to its first result, and the proxy's CPU (utime+stime from
            /proc/PID/stat) per login attempt. Direct PostgreSQL is expected to refuse most of
            them ("too many clients").
  storm     16 established TLS clients (--bystanders) run `select 1` back to back; their p99 in
            a quiet spell (--quiet-seconds) and while the burst runs, per target.
  memory    RSS growth (VmRSS, /proc/PID/status) of a fresh PgBouncer and a fresh sluice-proxy
            with --idle (default 10,000) idle clients over TLS and over plaintext (sluice with
            require_tls=false), per client in KB. Each held client logged in and ran `select 1`
            once; the figure is read 12 s after the last login, when sluice has released idle
            clients' buffers and returned the pages (its trim runs every 10 s).
  transfer  one client reads a --transfer-mib (default 200) MiB value (`select repeat('x', …)`)
            through each target while the bystanders run `select 1`: their p50/p99/max and the
            proxy's peak RSS growth (VmHWM after resetting it through /proc/PID/clear_refs).

The burst tool is one thread, so at 1,000+ clients its own libpq work (a TLS handshake and
4096 PBKDF2 rounds of SCRAM per login, ~3-5 ms each) shares the machine's CPUs with the proxy
and PostgreSQL and bounds every target's time to first result; its CPU per login is printed.

Usage: PYTHONPATH=python /usr/bin/python3 bench/storm.py --build build [--clients 1000,2000]
         [--rounds 1] [--only burst,storm,memory,transfer,direct,pgbouncer,sluice]
  --only takes a comma list of sections (burst, storm, memory, transfer) and targets (direct,
  pgbouncer, sluice); each given group restricts that dimension.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from statistics import median

from sluice_harness import harness
from sluice_harness.measure import fmt, ratio, reset_peak_rss, rss_kb
from sluice_harness.pgbouncer import POOL, PgBouncer

SECTIONS = ["burst", "storm", "memory", "transfer"]
TARGETS = ["direct", "pgbouncer", "sluice"]
HOLD_CONCURRENCY = 200  # logins at once while filling a proxy with idle clients


IDLE_SETTLE_SECONDS = 12


def hard_nofile():
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


WORKERS = None  # --workers; None keeps sluice-proxy's default (one per core)


def start_sluice(binary, pg, app, tls, max_clients):
    extra = {} if WORKERS is None else {"workers": WORKERS}
    p = harness.Proxy(binary, pg.port, users=[(app.app_user, app.app_password)], require_tls=tls, **extra,
                      max_client_connections=max_clients, target={"tls": "disable"},
                      connection_pool={"max_connections_percent": 20, "max_idle_connections_percent": 20,
                                       "connection_borrow_timeout": 120})
    return p.start()


def med(values):
    values = [v for v in values if v is not None]
    return median(values) if values else None


class Loop:
    """sluice-bench-burst --loop: N established clients running `select 1` back to back; window()
    returns the latencies since the previous call."""

    def __init__(self, tool, conninfo, clients):
        self.proc = harness.register_proc(subprocess.Popen(
            [tool, "--loop", "-n", str(clients), "--timeout", "60", conninfo], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True))
        self.ready = self._line(90)
        if self.ready.get("failed"):
            raise RuntimeError(f"bystanders failed to connect: {self.ready}")

    def _line(self, timeout):
        result = {}

        def read():
            result["line"] = self.proc.stdout.readline()

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(timeout)
        line = result.get("line")
        if not line:
            raise RuntimeError(f"sluice-bench-burst --loop gave no output (rc={self.proc.poll()}): "
                               f"{self.proc.stderr.read() if self.proc.poll() is not None else ''}")
        return json.loads(line)

    def window(self):
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return self._line(30)

    def stop(self):
        try:
            if self.proc.poll() is None:
                self.proc.stdin.close()
                self.proc.wait(30)
        except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
            self.proc.kill()
            self.proc.wait(5)
        harness.unregister_proc(self.proc)


def run_burst(tool, conninfo, clients, timeout, extra=()):
    r = subprocess.run([tool, "--burst", "-n", str(clients), "--timeout", str(timeout), *extra, conninfo],
                       capture_output=True, text=True, timeout=timeout + 120)
    if r.returncode != 0 or not r.stdout.strip():
        raise RuntimeError(f"sluice-bench-burst failed (rc={r.returncode}): {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def error_summary(result, width=90):
    errs = result.get("errors") or []
    if not errs:
        return ""
    parts = []
    for e in errs:
        msg = e["message"]
        # The interesting part of libpq's message is what follows the address.
        if "failed: " in msg:
            msg = msg.split("failed: ", 1)[1]
        parts.append(f"{e['count']}× {msg[:width]}")
    more = result.get("error_kinds", 0) - len(errs)
    return "; ".join(parts) + (f" (+{more} kinds)" if more > 0 else "")


class Bench:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.tool = os.path.join(self.build, "sluice-bench-burst")
        self.binary = harness.find_proxy_binary(self.build)
        self.app = harness.AppDatabase()
        self.pg = harness.PostgresServer(max_connections=100)
        self.max_clients = max(args.idle, max(args.clients)) + 2 * args.bystanders + 100
        self.bouncer = None
        self.sluice = None
        self.broken = []

    # -- endpoints
    def conninfo(self, target, sslmode="require", port=None):
        if port is None:
            port = {"direct": self.pg.port, "pgbouncer": self.bouncer and self.bouncer.port,
                    "sluice": self.sluice and self.sluice.port}[target]
        return harness.conninfo(host="127.0.0.1", port=port, user=self.app.app_user, password=self.app.app_password,
                                dbname=self.app.dbname, sslmode=sslmode, gssencmode="disable")

    def pid(self, target):
        return {"direct": None, "pgbouncer": self.bouncer and self.bouncer.pid,
                "sluice": self.sluice and self.sluice.pid}[target]

    def check_alive(self, target, what):
        proc = {"pgbouncer": self.bouncer, "sluice": self.sluice}.get(target)
        if proc is not None and not proc.alive():
            note = f"{target} exited during {what}: rc={proc.proc.returncode}\n{proc.log_tail()}"
            self.broken.append(note)
            raise RuntimeError(note)

    def settle(self):
        """Waits for a burst's leftovers to leave PostgreSQL: at most the two pools' connections
        plus the bench's own stay."""
        limit = 2 * POOL + self.args.bystanders

        def quiet():
            try:
                return self.pg.backend_count(self.app.app_user) <= limit
            except Exception:
                return False

        try:
            harness.wait_for(quiet, 60, 0.2, "PostgreSQL backends to settle")
        except Exception:
            pass
        time.sleep(1)

    # -- sections
    def burst(self, target, clients):
        self.settle()
        pid = self.pid(target)
        cpu0 = harness.proc_cpu_seconds(pid) if pid else None
        r = run_burst(self.tool, self.conninfo(target), clients, self.args.timeout)
        cpu1 = harness.proc_cpu_seconds(pid) if pid else None
        self.check_alive(target, f"a burst of {clients}")
        r["proxy_cpu_ms_per_login"] = (cpu1 - cpu0) * 1e3 / clients if pid else None
        r["tool_cpu_ms_per_login"] = r["cpu_ms"] / clients
        return r

    def storm(self, target, clients):
        self.settle()
        loop = Loop(self.tool, self.conninfo(target), self.args.bystanders)
        try:
            time.sleep(0.5)
            loop.window()  # warm-up, dropped
            time.sleep(self.args.quiet_seconds)
            quiet = loop.window()
            b = run_burst(self.tool, self.conninfo(target), clients, self.args.timeout)
            during = loop.window()
        finally:
            loop.stop()
        self.check_alive(target, f"the storm of {clients}")
        return dict(quiet=quiet, during=during, burst=b)

    def memory(self, target, tls):
        """A fresh proxy: warmed by a small burst, then --idle clients held idle."""
        sslmode = "require" if tls else "disable"
        proxy = None
        holder = None
        try:
            if target == "pgbouncer":
                proxy = PgBouncer(self.pg, self.app, False, stored_secret=self.args.pgbouncer_stored_secret,
                                  max_clients=self.max_clients, nofile=hard_nofile()).start()
            else:
                proxy = start_sluice(self.binary, self.pg, self.app, tls, self.max_clients)
            port, pid = proxy.port, proxy.pid
            conninfo = self.conninfo(target, sslmode, port)
            run_burst(self.tool, conninfo, 20, 60)
            time.sleep(3)
            rss0 = rss_kb(pid)
            t0 = time.monotonic()
            holder = harness.register_proc(subprocess.Popen(
                [self.tool, "--hold", "-n", str(self.args.idle), "--concurrency", str(HOLD_CONCURRENCY),
                 "--timeout", str(self.args.timeout), conninfo], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, start_new_session=True))
            held = self._read_json_line(holder, self.args.idle * 0.05 + 300)
            fill_s = time.monotonic() - t0
            # Idle clients give their buffers back after 1 s and sluice returns freed pages every
            # 10 s (malloc_trim): read the steady state, for both proxies alike.
            time.sleep(IDLE_SETTLE_SECONDS)
            rss1 = rss_kb(pid)
            out, _ = holder.communicate(timeout=120)  # closes its stdin: the clients leave
            harness.unregister_proc(holder)
            holder = None
            exit_line = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
            time.sleep(3)
            alive = proxy.alive()
            rss2 = rss_kb(pid) if alive else None
            if not alive:
                self.broken.append(f"{target} ({sslmode}) exited while holding idle clients")
            n = held.get("ok", 0)
            return dict(held=n, failed=held.get("failed"), errors=held, dropped=exit_line.get("dropped"),
                        rss0=rss0, rss1=rss1, rss2=rss2, fill_s=fill_s,
                        per_client_kb=(rss1 - rss0) / n if n and rss1 is not None else None)
        finally:
            if holder is not None and holder.poll() is None:
                holder.kill()
                holder.wait(10)
                harness.unregister_proc(holder)
            if proxy is not None:
                proxy.stop()
                if target == "sluice":
                    proxy.cleanup()

    @staticmethod
    def _read_json_line(proc, timeout):
        result = {}

        def read():
            result["line"] = proc.stdout.readline()

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(timeout)
        if not result.get("line"):
            raise RuntimeError(f"sluice-bench-burst --hold gave no output within {timeout:.0f}s")
        return json.loads(result["line"])

    def transfer(self, target):
        self.settle()
        pid = self.pid(target)
        size = self.args.transfer_mib * 1024 * 1024
        loop = Loop(self.tool, self.conninfo(target), self.args.bystanders)
        samples = []
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    samples.append(rss_kb(pid))
                except OSError:
                    return
                stop.wait(0.01)

        sampler = threading.Thread(target=sample, daemon=True) if pid else None
        try:
            time.sleep(0.5)
            loop.window()
            time.sleep(1)
            quiet = loop.window()
            rss0 = rss_kb(pid) if pid else None
            hwm_reset = reset_peak_rss(pid) if pid else False
            if sampler:
                sampler.start()
            r = run_burst(self.tool, self.conninfo(target), 1, self.args.timeout,
                          ["--sql", f"select repeat('x', {size})"])
            during = loop.window()
            stop.set()
            if sampler:
                sampler.join(5)
            peak = None
            if pid:
                peaks = [s for s in samples if s is not None] + [rss_kb(pid)]
                if hwm_reset:
                    peaks.append(rss_kb(pid, "VmHWM"))
                peak = max(peaks)
        finally:
            stop.set()
            loop.stop()
        self.check_alive(target, "the large transfer")
        return dict(result=r, quiet=quiet, during=during, rss0=rss0,
                    peak_growth_kb=(peak - rss0) if pid else None, rss_after=rss_kb(pid) if pid else None)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("SLUICE_BUILD", "build"))
    ap.add_argument("--clients", default="1000,2000", help="burst sizes, comma list (default 1000,2000)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="interleaved repetitions of the burst and storm runs; tables show medians (default 1)")
    ap.add_argument("--only", default="", help="comma list from: " + ", ".join(SECTIONS + TARGETS))
    ap.add_argument("--bystanders", type=int, default=16)
    ap.add_argument("--workers", type=int, default=None,
                    help="sluice-proxy's worker threads (default: its own default, one per core)")
    ap.add_argument("--quiet-seconds", type=float, default=3)
    ap.add_argument("--idle", type=int, default=10000, help="idle clients for the memory section (default 10000)")
    ap.add_argument("--transfer-mib", type=int, default=200)
    ap.add_argument("--timeout", type=int, default=120, help="seconds a burst client may take (default 120)")
    ap.add_argument("--pgbouncer-stored-secret", action="store_true",
                    help="PgBouncer's userlist holds the server's SCRAM verifier instead of the password "
                         "(it then skips the 4096 PBKDF2 rounds per login)")
    args = ap.parse_args()
    global WORKERS
    WORKERS = args.workers
    args.clients = [int(x) for x in args.clients.split(",") if x.strip()]

    only = {x.strip() for x in args.only.split(",") if x.strip()}
    unknown = only - set(SECTIONS + TARGETS)
    if unknown:
        ap.error(f"unknown --only items: {sorted(unknown)}")
    sections = [s for s in SECTIONS if not (only & set(SECTIONS)) or s in only]
    targets = [t for t in TARGETS if not (only & set(TARGETS)) or t in only]

    bench = Bench(args)
    if not os.path.exists(bench.tool):
        sys.exit(f"sluice-bench-burst not found at {bench.tool}")
    if "sluice" in targets and not os.path.exists(bench.binary):
        sys.exit(f"sluice-proxy not found at {bench.binary}")

    print(f"# sluice storm bench: bursts of {', '.join(map(str, args.clients))} TLS+SCRAM clients, "
          f"{args.bystanders} bystanders, {args.idle:,} idle clients, a {args.transfer_mib} MiB value; "
          f"server max_connections 100, pool {POOL}, PgBouncer userlist "
          f"{'SCRAM verifier' if args.pgbouncer_stored_secret else 'plaintext password'}, "
          f"{os.cpu_count()} CPUs, open files {hard_nofile()}", flush=True)
    bursts, storms, memories, transfers = {}, {}, {}, {}
    started = time.monotonic()
    try:
        bench.pg.start()
        harness.setup_app_database(bench.pg, bench.app, pgbench_scale=1)
        if "pgbouncer" in targets and ({"burst", "storm", "transfer"} & set(sections)):
            bench.bouncer = PgBouncer(bench.pg, bench.app, False, stored_secret=args.pgbouncer_stored_secret,
                                      max_clients=bench.max_clients, nofile=hard_nofile()).start()
        if "sluice" in targets and ({"burst", "storm", "transfer"} & set(sections)):
            bench.sluice = start_sluice(bench.binary, bench.pg, bench.app, True, bench.max_clients)

        for rnd in range(args.rounds):
            for n in args.clients:
                for target in targets:
                    if "burst" in sections:
                        r = bench.burst(target, n)
                        bursts.setdefault((n, target), []).append(r)
                        print(f"  burst {n:5} {target:9} round {rnd + 1}: ok {r['ok']}/{n} p50 {r['p50_ms']} ms"
                              f" p99 {r['p99_ms']} ms max {r['max_ms']} ms wall {r['wall_ms'] / 1e3:.1f}s"
                              f" proxy_cpu_ms/login {fmt(r['proxy_cpu_ms_per_login'], 3)}"
                              f" tool_cpu_ms/login {r['tool_cpu_ms_per_login']:.2f} {error_summary(r)}", flush=True)
                    if "storm" in sections:
                        s = bench.storm(target, n)
                        storms.setdefault((n, target), []).append(s)
                        print(f"  storm {n:5} {target:9} round {rnd + 1}: bystander p99 quiet {s['quiet']['p99_ms']} ms"
                              f" during {s['during']['p99_ms']} ms (max {s['during']['max_ms']} ms,"
                              f" oldest outstanding {s['during']['outstanding_max_ms']} ms, lost {s['during']['lost']})"
                              f" burst ok {s['burst']['ok']}/{n} {error_summary(s['burst'])}", flush=True)

        if "memory" in sections:
            for target in [t for t in targets if t != "direct"]:
                for tls in (True, False):
                    m = bench.memory(target, tls)
                    memories[(target, tls)] = m
                    print(f"  memory {target:9} {'tls' if tls else 'plain':5}: held {m['held']}/{args.idle}"
                          f" (dropped later {m['dropped']}) in {m['fill_s']:.1f}s, RSS {m['rss0']} -> {m['rss1']} kB,"
                          f" {fmt(m['per_client_kb'], 2)} KB/client, after release {m['rss2']} kB"
                          f" {error_summary(m['errors'])}", flush=True)

        if "transfer" in sections:
            for target in targets:
                t = bench.transfer(target)
                transfers[target] = t
                r = t["result"]
                print(f"  transfer {target:9}: {r['ok']}/1 in {r['max_ms']} ms, bystander p99 quiet"
                      f" {t['quiet']['p99_ms']} ms during {t['during']['p99_ms']} ms (max {t['during']['max_ms']} ms),"
                      f" RSS peak growth {fmt(t['peak_growth_kb'])} kB {error_summary(r)}", flush=True)
    finally:
        if bench.sluice:
            bench.sluice.stop()
            bench.sluice.cleanup()
        if bench.bouncer:
            bench.bouncer.stop()
        bench.pg.cleanup()

    report(args, targets, bursts, storms, memories, transfers)
    print(f"\n(total {time.monotonic() - started:.0f}s)")
    if bench.broken:
        print("\nBROKEN:\n" + "\n".join(bench.broken))
        sys.exit(1)


def report(args, targets, bursts, storms, memories, transfers):
    rounds = f"median of {args.rounds} rounds" if args.rounds > 1 else "one round"
    if bursts:
        print(f"\n## Burst: N TLS+SCRAM clients at once, `select 1`, disconnect ({rounds})\n")
        print("| clients | target | ok | p50 ms | p99 ms | max ms | proxy CPU ms/login | burst tool CPU ms/login |"
              " wall s | errors |")
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
        for n in args.clients:
            for target in targets:
                rs = bursts.get((n, target))
                if not rs:
                    continue
                ok = med([r["ok"] for r in rs])
                print(f"| {n:,} | {target} | {ok / n * 100:.1f} % | {fmt(med([r['p50_ms'] for r in rs]), 0)} |"
                      f" {fmt(med([r['p99_ms'] for r in rs]), 0)} | {fmt(med([r['max_ms'] for r in rs]), 0)} |"
                      f" {fmt(med([r['proxy_cpu_ms_per_login'] for r in rs]), 3)} |"
                      f" {fmt(med([r['tool_cpu_ms_per_login'] for r in rs]), 2)} |"
                      f" {fmt(med([r['wall_ms'] / 1e3 for r in rs]), 1)} |"
                      f" {' / '.join(e for e in (error_summary(r, 70) for r in rs) if e)} |")
        if "pgbouncer" in targets and "sluice" in targets:
            print("\n| clients | sluice/PgBouncer p99 | sluice/PgBouncer proxy CPU per login |")
            print("|---:|---:|---:|")
            for n in args.clients:
                b, s = bursts.get((n, "pgbouncer")), bursts.get((n, "sluice"))
                if b and s:
                    print(f"| {n:,} | {ratio(med([r['p99_ms'] for r in s]), med([r['p99_ms'] for r in b]))} |"
                          f" {ratio(med([r['proxy_cpu_ms_per_login'] for r in s]), med([r['proxy_cpu_ms_per_login'] for r in b]))} |")
    if storms:
        print(f"\n## Storm fairness: {args.bystanders} established TLS clients running `select 1` back to back"
              f" ({rounds})\n")
        print("| burst | target | p99 quiet ms | p99 during burst ms | during/quiet | max during ms |"
              " oldest outstanding ms | queries/s quiet, during | bystanders lost | burst ok | burst errors |")
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for n in args.clients:
            for target in targets:
                ss = storms.get((n, target))
                if not ss:
                    continue
                q = med([s["quiet"]["p99_ms"] for s in ss])
                d = med([s["during"]["p99_ms"] for s in ss])
                qps_q = med([s["quiet"]["queries"] / s["quiet"]["seconds"] for s in ss if s["quiet"]["seconds"]])
                qps_d = med([s["during"]["queries"] / s["during"]["seconds"] for s in ss if s["during"]["seconds"]])
                ok = med([s["burst"]["ok"] for s in ss])
                print(f"| {n:,} | {target} | {fmt(q, 2)} | {fmt(d, 2)} | {ratio(d, q)} |"
                      f" {fmt(med([s['during']['max_ms'] for s in ss]), 1)} |"
                      f" {fmt(med([s['during']['outstanding_max_ms'] for s in ss]), 1)} |"
                      f" {fmt(qps_q)}, {fmt(qps_d)} | {max(s['during']['lost'] for s in ss)} |"
                      f" {ok / n * 100:.1f} % | {' / '.join(e for e in (error_summary(s['burst'], 70) for s in ss) if e)} |")
    if memories:
        print(f"\n## Memory: {args.idle:,} idle clients (each logged in and ran `select 1` once), fresh processes\n")
        print("| target | client TLS | held | RSS before MB | RSS with clients MB | KB per client |"
              " RSS after they left MB | fill s |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for (target, tls), m in memories.items():
            mb = lambda kb: fmt(kb / 1024, 1) if kb is not None else "n/a"  # noqa: E731
            print(f"| {target} | {'require' if tls else 'disable'} | {m['held']:,} | {mb(m['rss0'])} |"
                  f" {mb(m['rss1'])} | {fmt(m['per_client_kb'], 2)} | {mb(m['rss2'])} | {m['fill_s']:.1f} |")
        for tls in (True, False):
            b, s = memories.get(("pgbouncer", tls)), memories.get(("sluice", tls))
            if b and s:
                print(f"\nsluice/PgBouncer KB per client, {'TLS' if tls else 'plaintext'}:"
                      f" {ratio(s['per_client_kb'], b['per_client_kb'])}", end="")
        print()
    if transfers:
        print(f"\n## Large transfer: one client reads a {args.transfer_mib} MiB value (TLS) while"
              f" {args.bystanders} bystanders run `select 1`\n")
        print("| target | transfer s | MiB/s | bystander p99 quiet ms | bystander p50 / p99 / max during ms |"
              " proxy peak RSS growth MB |")
        print("|---|---:|---:|---:|---:|---:|")
        for target, t in transfers.items():
            r = t["result"]
            secs = r["max_ms"] / 1e3 if r["ok"] and r["max_ms"] is not None else None
            d = t["during"]
            growth = t["peak_growth_kb"]
            print(f"| {target} | {fmt(secs, 2) if r['ok'] else 'FAILED: ' + error_summary(r, 60)} |"
                  f" {fmt(args.transfer_mib / secs, 0) if secs else 'n/a'} | {fmt(t['quiet']['p99_ms'], 2)} |"
                  f" {fmt(d['p50_ms'], 2)} / {fmt(d['p99_ms'], 2)} / {fmt(d['max_ms'], 1)} |"
                  f" {fmt(growth / 1024, 1) if growth is not None else 'n/a'} |")


if __name__ == "__main__":
    main()
