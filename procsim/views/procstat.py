"""/proc/stat as fs/proc/stat.c prints it (show_stat()): the summed ``cpu`` line and one line
per simulated CPU (user nice system idle iowait irq softirq steal guest guest_nice, in
USER_HZ ticks), ``intr``, ``ctxt``, ``btime``, ``processes``, ``procs_running``,
``procs_blocked`` and ``softirq``.

Everything comes from the simulated clock and CPUs (procsim/mm/sched.py): system time is
what a CPU spent faulting pages in for commands and running kswapd; the rest of the uptime
is idle.  Interrupts: each CPU's local timer ticks HZ times a second while busy, and the
timekeeping CPU (cpu 0) ticks all along (NO_HZ idle stops the others); they are arch
interrupts (LOC), so they count in the ``intr`` total only, the per-IRQ columns being the 16
legacy IRQs with none raised.  ``softirq``: a TIMER and an RCU softirq per tick.
"""
from __future__ import annotations

from ..mm.timer import NSEC_PER_SEC, USER_HZ, TICK_NSEC
from . import View

NR_LEGACY_IRQS = 16
NR_SOFTIRQS = 10          # HI TIMER NET_TX NET_RX BLOCK IRQ_POLL TASKLET SCHED HRTIMER RCU


def _clock_t(ns: int) -> int:
    """nsec_to_clock_t()."""
    return ns // (NSEC_PER_SEC // USER_HZ)


def _line(name: str, system: int, idle: int) -> str:
    # user nice system idle iowait irq softirq steal guest guest_nice
    return f"{name} 0 0 {_clock_t(system)} {_clock_t(idle)} 0 0 0 0 0 0"


def render(k) -> bytes:
    up = k.now_ns
    busy = [min(ns, up) for ns in k.cpu_system_ns]
    lines = [_line("cpu ", sum(busy), sum(up - b for b in busy))]
    lines += [_line(f"cpu{c}", b, up - b) for c, b in enumerate(busy)]
    ticks = up // TICK_NSEC + sum(b // TICK_NSEC for b in busy[1:])
    lines.append(f"intr {ticks}" + " 0" * NR_LEGACY_IRQS)
    lines.append(f"ctxt {k.nr_switches}")
    lines.append(f"btime {k.boot_epoch_s}")
    lines.append(f"processes {k.nr_processes()}")
    lines.append(f"procs_running {k.nr_running() + 1}")      # + the task reading this file
    lines.append("procs_blocked 0")
    soft = [0] * NR_SOFTIRQS
    soft[1] = soft[9] = ticks                                  # TIMER, RCU
    lines.append(f"softirq {sum(soft)} " + " ".join(map(str, soft)))
    return ("\n".join(lines) + "\n").encode()


FILES = {"stat": View(0o444, render)}
