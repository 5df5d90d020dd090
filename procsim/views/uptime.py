"""/proc/uptime as fs/proc/uptime.c prints it: seconds since boot and the idle time summed
over all cpus, both with two decimals ("%lu.%02lu %lu.%02lu\\n").

Both come from the simulated clock (``k.now_ns``), never the host's.  The simulated machine
runs no tasks, so every cpu has been idle all along: idle = uptime x nr_cpu_ids.
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
    return f"{_seconds(uptime)} {_seconds(uptime * k.nr_cpu_ids)}\n".encode()


FILES = {"uptime": View(0o444, render)}
