"""The simulated clock and deferred work (kernel/time/timer.c, kernel/workqueue.c, reduced).

Much of the kernel's memory work happens later, not inside the call that caused it: the
vmstat worker folds counters and trims per-cpu lists once a second, kswapd runs after an
allocation woke it.  procsim keeps that shape with a clock that only moves when it is
told to, so the same commands always give the same bytes:

* ``now_ns`` is the time since boot in integer nanoseconds (CLOCK_BOOTTIME; /proc/uptime
  prints it); ``jiffies`` counts ticks of HZ = 250 (Debian's CONFIG_HZ_250) from
  INITIAL_JIFFIES, as the kernel does, so it wraps its low 32 bits five minutes after boot.
* ``queue_delayed_work(key, delay, fn, arg)`` puts work on the queue, due ``delay`` jiffies
  from now; a key already queued is not queued again (``delayed_work_pending()``).
* ``sleep(ns)`` moves the clock forward, running every due item in clock order (ties in
  the order they were queued), each at its own due time; ``tick()`` is the fixed cost
  of one control command.

Nothing here reads the host clock.
"""
from __future__ import annotations

import errno
import heapq

from .errors import MMError

HZ = 250                                    # CONFIG_HZ_250, Debian's choice
NSEC_PER_SEC = 1_000_000_000
TICK_NSEC = NSEC_PER_SEC // HZ              # 4 ms
INITIAL_JIFFIES = (-300 * HZ) & 0xFFFFFFFF  # ((unsigned long)(unsigned int)(-300*HZ))
JIFFIES_MASK = (1 << 64) - 1
USER_HZ = 100                               # /proc/uptime prints hundredths
# A control command costs one jiffy: the smallest step a kernel timer can see, so work a
# command queued (kswapd it woke) runs before the next command starts, while a script of
# 250 commands ages the machine by one second, as a busy shell would.
COMMAND_COST_NS = TICK_NSEC
# Boot ends this long after the kernel started: time for the boot workload's pagesets to
# decay to high_min (from high_max that takes at most ~40 vmstat intervals on the shipped
# configs), as on a machine someone logs into a minute after power-on.
BOOT_UPTIME_NS = 60 * NSEC_PER_SEC


class Timers:
    """Kernel mixin: the clock and the queue of deferred work (work items and kernel threads'
    next steps, ordered by (due ns, queue order))."""

    def _init_timers(self):
        self._now_ns = 0
        self._work: list[tuple[int, int, object, object, object]] = []   # (due ns, seq, key, fn, arg)
        self._pending: set = set()
        self._seq = 0
        self._sleep_until = 0                     # where the current advance ends (periodic work may skip to it)

    @property
    def now_ns(self) -> int:
        """Nanoseconds since boot (ktime_get_boottime_ns())."""
        return self._now_ns

    @property
    def jiffies(self) -> int:
        """The jiffies counter: INITIAL_JIFFIES plus the ticks since boot, 64-bit."""
        return (INITIAL_JIFFIES + self._now_ns // TICK_NSEC) & JIFFIES_MASK

    def queue_delayed_work(self, key, delay: int, fn, arg=None) -> bool:
        """queue_delayed_work(): run fn(arg) ``delay`` jiffies from now (on a tick); False if
        key is queued."""
        return self.queue_work_at(key, (self._now_ns // TICK_NSEC + delay) * TICK_NSEC, fn, arg)

    def queue_work_at(self, key, ns: int, fn, arg=None) -> bool:
        """Run fn(arg) at ``ns`` (not before now): a kernel thread's next step, due when the
        work it just did is done.  False if key is queued."""
        if key in self._pending:
            return False
        self._pending.add(key)
        self._seq += 1
        heapq.heappush(self._work, (max(ns, self._now_ns), self._seq, key, fn, arg))
        return True

    def cancel_delayed_work(self, key) -> bool:
        """cancel_delayed_work(): take key's item off the queue; False if it was not queued."""
        if key not in self._pending:
            return False
        self._pending.discard(key)
        self._work[:] = [w for w in self._work if w[2] != key]
        heapq.heapify(self._work)
        return True

    def delayed_work_pending(self, key) -> bool:
        return key in self._pending

    def next_due_ns(self) -> int | None:
        """When the next queued item falls due (None: nothing queued)."""
        return self._work[0][0] if self._work else None

    def advance_to(self, ns: int):
        """Move the clock to ``ns`` (never back), running every item due on the way in
        (due, queue order), each at its own due time: what the CPUs other than the one a
        command runs on did meanwhile, or an idle machine's timers."""
        end = max(ns, self._now_ns)
        self._sleep_until = end
        work = self._work
        while work and work[0][0] <= end:
            due, _, key, fn, arg = heapq.heappop(work)
            self._pending.discard(key)
            self._now_ns = max(self._now_ns, due)
            fn(arg)
        if end != self._now_ns:
            self._now_ns = end
        self.generation += 1                       # the clock is state: /proc/uptime moved

    def sleep(self, ns: int):
        """Let ``ns`` nanoseconds pass, running the deferred work that falls due on the way."""
        if not isinstance(ns, int) or isinstance(ns, bool) or ns < 0:
            raise MMError(errno.EINVAL, f"sleep: {ns!r} is not a whole number of nanoseconds >= 0")
        self.advance_to(self._now_ns + ns)

    def tick(self):
        """The clock cost of one control command (COMMAND_COST_NS), and a timeline sample."""
        self.sleep(COMMAND_COST_NS)
        self.timeline.sample(self)
