"""A live mount's clock follows the wall clock (``procsim mount``, the default; ``--clock=virtual``
keeps the core's clock moving only on commands and ``sleep``).

The core never reads the host's clock (procsim/mm is pure); the shell moves it.  A thread
wakes when the next item of deferred work falls due (kswapd finishing, the vmstat worker,
kcompactd, the load average), at most every ``MAX_PERIOD`` seconds so uptime keeps up, and
calls ``Kernel.advance_to(wall ns)`` under the session lock.  Nothing due and nothing read:
it sleeps, so an idle mount costs a few wake-ups a second.  Commands first bring the clock
to the wall (``stamp``), and the journal records the simulated time each batch ran at, so a
replay gives back what was acknowledged.
"""
from __future__ import annotations

import threading
import time

from procsim.harness import quiet_thread

NS = 1_000_000_000
MAX_PERIOD = 0.25            # seconds: how stale uptime may get between reads
MIN_PERIOD = 0.005           # never spin faster than this


class WallClock:
    def __init__(self, session):
        self.session = session
        self._boots = None
        self._offset = 0
        self._stop = threading.Event()
        self._thread = None
        self.wakeups = 0
        # called outside the lock after a background advance changed the state: how the shell
        # wakes blocked readers (kmsg, trace_pipe) when kernel threads logged or traced
        self.listeners: list = []
        self._sync()

    def _sync(self) -> None:
        """Anchor: the simulated clock's now is the wall's now (after a boot or a replay)."""
        k = self.session.kernel
        self._boots = self.session.control.boots
        self._offset = time.monotonic_ns() - k.now_ns
        k.boot_epoch_s = int(time.time()) - k.now_ns // NS        # btime: when this machine "booted"

    def now_ns(self) -> int:
        return time.monotonic_ns() - self._offset

    def advance(self) -> int | None:
        """Bring the core to the wall (caller holds the session lock); the next due time."""
        if self.session.control.boots != self._boots:
            self._sync()
        k = self.session.kernel
        now = self.now_ns()
        if now > k.now_ns:
            k.advance_to(now)
        return k.next_due_ns()

    def start(self) -> None:
        self._thread = quiet_thread(self._run, "procsim-clock")   # stop signals are the main thread's

    def _run(self) -> None:
        wait = 0.0
        while not self._stop.wait(wait):
            self.wakeups += 1
            (due, now), moved = self.session.kernel_work(lambda: (self.advance(), self.now_ns()))
            if moved:                               # kernel threads logged or traced (readers woken)
                for fn in self.listeners:
                    fn()
            wait = MAX_PERIOD if due is None else min(MAX_PERIOD, max(MIN_PERIOD, (due - now) / NS))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
