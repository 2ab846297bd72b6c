"""What the benches and the memory tests read off processes: CPU time and RSS from /proc, and how
the tables print numbers."""
import os
from typing import Optional, Tuple


def proc_user_system_seconds(pid: int) -> Tuple[float, float]:
    """(utime, stime) of a process from /proc/PID/stat, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(rest[11]) / tick, int(rest[12]) / tick


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy (user, nice, system, irq, softirq), from /proc/stat.
    Per transaction it is what every process of the run cost together: pgbench, PostgreSQL and the
    proxy; it moves far less between rounds than TPS does on a shared machine."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int, field: str = "VmRSS") -> Optional[int]:
    """A memory figure of /proc/PID/status (VmRSS, VmHWM ...), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def reset_peak_rss(pid: int) -> bool:
    """Resets VmHWM to the current RSS (Linux 4.0+: `5` to /proc/PID/clear_refs)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def fmt(v, digits=0) -> str:
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}"


def ratio(a, b) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}"
