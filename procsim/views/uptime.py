"""/proc/uptime as fs/proc/uptime.c prints it: seconds since boot and the idle time summed
over all cpus, both with two decimals ("%lu.%02lu %lu.%02lu\\n").

Both come from the simulated clock (``k.now_ns``), never the host's: idle is every cpu's
uptime less what it spent in the kernel (commands' faults, kswapd: ``k.cpu_system_ns``).
"""
from __future__ import annotations

from ..mm.timer import NSEC_PER_SEC, USER_HZ
from . import View


def _seconds(ns: int) -> str:
    """uptime_proc_show(): whole seconds, then the remainder in hundredths (truncated)."""
    sec, rem = divmod(ns, NSEC_PER_SEC)
    return "%d.%02d" % (sec, rem // (NSEC_PER_SEC // USER_HZ))


def render(k) -> bytes:
    uptime = k.now_ns
    idle = sum(uptime - min(ns, uptime) for ns in k.cpu_system_ns)
    return f"{_seconds(uptime)} {_seconds(idle)}\n".encode()


FILES = {"uptime": View(0o444, render)}
