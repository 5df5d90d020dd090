"""/proc/loadavg as fs/proc/loadavg.c prints it: the 1, 5 and 15 minute load averages
(kernel/sched/loadavg.c, sampled every 5 s on the simulated clock: procsim/mm/sched.py),
runnable/total threads and the last pid handed out."""
from __future__ import annotations

from ..mm.sched import FSHIFT, FIXED_1
from . import View

BOOT_THREADS = 120        # kernel threads and daemons of a booted system


def _load(x: int) -> str:
    """LOAD_INT(x).LOAD_FRAC(x)."""
    return "%d.%02d" % (x >> FSHIFT, ((x & (FIXED_1 - 1)) * 100) >> FSHIFT)


def render(k) -> bytes:
    a = k.avenrun
    # loadavg_proc_show() adds FIXED_1/200 to round to hundredths
    l1, l5, l15 = (_load(x + FIXED_1 // 200) for x in a)
    running = k.nr_running() + 1                               # + the task reading this file
    threads = BOOT_THREADS + sum(1 for _ in k.tasks)
    return f"{l1} {l5} {l15} {running}/{threads} {k.nr_processes()}\n".encode()


FILES = {"loadavg": View(0o444, render)}
