"""Simulated CPUs and the actors that take turns on them (kernel/sched/core.c, reduced).

Linux memory management is several actors working at once: a task faults pages in on its
CPU while kswapd, woken at the low watermark, reclaims on another; kcompactd, the vmstat
worker and the OOM reaper run when they are due.  procsim runs them on one simulated clock
(``timer.py``): every actor has its own position in time, and the queue of what is due next,
ordered by (time, queue order), is the whole scheduler.

* **The task a command runs for** (``TaskClock``): page i of a ``count=K`` command is
  allocated at ``t0 + i * cost``.  Before each page, everything due by then runs (kswapd's
  steps, the vmstat worker...), so the task and the kernel threads interleave as on two
  CPUs; the runs path (``alloc_pages_runs``) takes a stretch of pages at once only up to the
  next due item (``room``), so both paths see the same interleaving, page for page.
* **kswapd** (vmscan.py) is a generator: the kernel's kswapd() loop, balance_pgdat() and
  kswapd_try_to_sleep(), which yields how long each kswapd_shrink_node() took (the pages it
  scanned and reclaimed, at the costs below), a nap of HZ/10, or sleep until woken.  Its
  work takes effect when the step starts; kswapd is then busy until the step's cost has
  passed.  kcompactd and the vmstat worker are deferred work on the same queue.
* **CPU time**: what each simulated CPU spent in the kernel (``cpu_system_ns``): the
  task's faults and allocations on its CPU, kswapd's steps on a CPU of its node.
  /proc/stat prints it; everything else is idle.

Costs per page (the same on every profile: they are the hardware's, not the kernel
version's; ``COSTS`` is the table):

* an anonymous 4 KiB fault with zeroing: 1 µs -- the median minor fault measured with
  rdtsc on a 3.2 GHz Core i7 under Linux 6.6 is ~1.0 µs (min 0.58 µs); clear_page alone is
  a few hundred ns at 10-20 GB/s.
* a page-cache page written by ``write(2)`` (dd): 2 µs -- copy_from_user of 4 KiB plus the
  page-cache insertion and ext4's block mapping; buffered writes into a cache that must be
  reclaimed run at ~1-2 GB/s a core.
* a page the allocator hands out with nothing else (``alloc_pages`` without a use): 0.25 µs,
  the pcp fast path plus the caller's bookkeeping.
* kswapd: 0.1 µs a page scanned (isolation, the reference check) and 0.4 µs more a page
  reclaimed (rmap/mapping checks, __remove_mapping, the free): a kswapd reclaiming clean
  page cache keeps up with 2 GB/s of writes on one CPU, with room to spare, as it does on
  real machines; 1 µs for a pass that found nothing.
* a page migrated by compaction: 2 µs (unmap, copy 4 KiB, remap).

These are estimates of the right order, not measurements of one machine; what they decide
is who wins the race between a task and kswapd, which the real figures decide the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

from .timer import HZ

# kernel/sched/loadavg.c: the load average, sampled every LOAD_FREQ, in FSHIFT fixed point
FSHIFT = 11
FIXED_1 = 1 << FSHIFT
LOAD_FREQ = 5 * HZ + 1                      # jiffies: 5 s intervals (+1 so it does not beat with HZ work)
EXP_1, EXP_5, EXP_15 = 1884, 2014, 2037     # 1/exp(5sec/1min), 5 min, 15 min in fixed point
# An idle booted system forked this many processes before anyone looks (init, the kernel
# threads, udev, a shell...): /proc/stat "processes" starts here
BOOT_FORKS = 350


def calc_load(load: int, exp: int, active: int) -> int:
    """calc_load(): one exponential step, rounded up while the load rises."""
    newload = load * exp + active * (FIXED_1 - exp)
    if active >= load:
        newload += FIXED_1 - 1
    return newload // FIXED_1


def calc_load_n(load: int, exp: int, active: int, n: int) -> int:
    """calc_load_n(): n steps at once (fixed_power_int(exp, FSHIFT, n)), as the kernel
    catches up after a NO_HZ idle stretch."""
    e = FIXED_1
    x, m = exp, n
    while m:                                  # fixed_power_int(): rounded fixed-point power
        if m & 1:
            e = (e * x + (FIXED_1 >> 1)) >> FSHIFT
        m >>= 1
        if m:
            x = (x * x + (FIXED_1 >> 1)) >> FSHIFT
    return calc_load(load, e, active)


@dataclass(frozen=True)
class Costs:
    """Simulated nanoseconds of CPU work (see the module docstring for the figures' sources)."""
    fault_anon: int = 1000
    fault_pagecache: int = 2000
    alloc_page: int = 250
    kswapd_scan: int = 100
    kswapd_reclaim: int = 400
    kswapd_pass: int = 1000
    migrate_page: int = 2000

    def fault(self, use: str | None, order: int = 0) -> int:
        """What allocating one block of 2^order pages for ``use`` costs the task."""
        per = self.fault_anon if use == "anon" else self.fault_pagecache if use == "pagecache" else self.alloc_page
        return per << order


COSTS = Costs()


class TaskClock:
    """The task a command runs for, faulting in a loop on its CPU: block i is allocated at
    ``t0 + i * cost``.  ``at(i)`` runs what falls due before block i; ``room(i)`` is how
    many blocks from i on start before the next due item (a stretch the runs path may take
    at once); ``done(n)`` ends the command's work after n blocks."""
    __slots__ = ("k", "cpu", "cost", "t0")

    def __init__(self, k, cpu: int, use: str | None, order: int = 0):
        self.k, self.cpu = k, cpu
        self.cost = k.costs.fault(use, order)
        self.t0 = k.now_ns
        k.task_busy = True

    def at(self, i: int) -> None:
        t = self.t0 + i * self.cost
        k = self.k
        due = k.next_due_ns()
        if due is not None and due <= t:
            k.advance_to(t)
        else:
            k._now_ns = max(k._now_ns, t)        # nothing due: the clock alone moves

    def room(self, i: int) -> int:
        due = self.k.next_due_ns()
        if due is None:
            return 1 << 62
        t = self.t0 + i * self.cost
        return max(1, -(-(due - t) // self.cost))

    def done(self, n: int) -> None:
        self.at(n)
        self.k.task_busy = False
        self.k.cpu_system_ns[self.cpu] += n * self.cost
        self.k.generation += 1


class Sched:
    """Kernel mixin: the simulated CPUs' accounting and the per-page costs."""

    def _init_sched(self):
        self.costs = COSTS
        self.cpu_system_ns = [0] * self.nr_cpu_ids     # kernel time per simulated CPU
        self.nr_switches = 0                           # /proc/stat ctxt: actor switches
        self.task_busy = False                         # a command's task is on its CPU
        self.avenrun = [0, 0, 0]                       # the 1, 5, 15 minute load, FSHIFT fixed point
        self.boot_epoch_s = 1767225600                 # btime: 2026-01-01 00:00 UTC (a live mount sets it)
        self.queue_delayed_work("calc_load", LOAD_FREQ, self.calc_global_load)

    def nr_running(self) -> int:
        """Runnable actors: a command's task on its CPU, every kswapd that is awake."""
        return self.task_busy + sum(1 for p in self.nodes if p.kswapd_state == 1)

    def calc_global_load(self, _=None, missed: int = 0):
        """calc_global_load(): every LOAD_FREQ, fold the runnable count into the averages
        (``missed`` idle intervals the vmstat fast-forward skipped are folded at once)."""
        active = self.nr_running() * FIXED_1
        a = self.avenrun
        for i, exp in enumerate((EXP_1, EXP_5, EXP_15)):
            a[i] = calc_load_n(a[i], exp, 0, missed) if missed else calc_load(a[i], exp, active)
        if not missed:
            self.queue_delayed_work("calc_load", LOAD_FREQ, self.calc_global_load)

    def nr_processes(self) -> int:
        """total_forks: the boot's, then one per task a command created."""
        return BOOT_FORKS + self.tasks._next_pid - 2

    def task_clock(self, cpu: int | None, node: int | None, use: str | None, order: int = 0) -> TaskClock:
        if cpu is None:
            cpu = self.default_cpu(node) if node is not None else 0
        return TaskClock(self, cpu, use, order)

    def kthread_cpu(self, nid: int) -> int:
        """The CPU a node's kernel thread runs on: the node's last CPU (the first is where
        commands run by default), cpu 0 for a node without CPUs."""
        cpus = self.nodes[nid].cpus
        return cpus[-1] if cpus else self.nr_cpu_ids - 1

    def account_kthread(self, nid: int, ns: int) -> None:
        self.cpu_system_ns[self.kthread_cpu(nid)] += ns
        self.nr_switches += 1
