"""Reclaim (mm/vmscan.c): kswapd's wake-up and its run, and drop_slab().

kswapd is a kernel thread per node; here it is deferred work on the simulated clock
(procsim/mm/timer.py): wakeup_kswapd() records the request and queues the node's kswapd,
which runs when the clock next moves (the next command's tick, or a sleep).  It does not
reclaim yet (a later issue adds that); what it does now is what balance_pgdat() does last:
take back the watermark boost that fallbacks put on the node's zones.
"""
from __future__ import annotations

from .layout import MAX_NR_ZONES
from .page_alloc import MAX_RECLAIM_RETRIES


class Vmscan:
    """Kernel mixin: kswapd and the reclaim entry points."""

    def wake_all_kswapds(self, order: int, gfp: int, zonelist, highest: int):
        """wake_all_kswapds(): wake the kswapd of every node in the zonelist, once per node."""
        last = None
        for z in zonelist:
            if z.idx <= highest and z.node != last:
                last = z.node
                self.wakeup_kswapd(z, gfp, order, highest)

    def wakeup_kswapd(self, zone, gfp: int, order: int, highest: int):
        """wakeup_kswapd(): note the largest order and zone asked for, and wake the node's
        kswapd unless it gave up (kswapd_failures) or the node is balanced and unboosted."""
        pgdat = self.nodes[zone.node]
        if not zone.managed:
            return
        pgdat.kswapd_order = max(pgdat.kswapd_order, order)
        if pgdat.kswapd_highest_zoneidx == MAX_NR_ZONES or pgdat.kswapd_highest_zoneidx < highest:
            pgdat.kswapd_highest_zoneidx = highest
        if self.delayed_work_pending(("kswapd", pgdat.id)):
            return                                   # already awake
        if pgdat.kswapd_failures >= MAX_RECLAIM_RETRIES or (
                self.pgdat_balanced(pgdat, order, highest) and not self.pgdat_watermark_boosted(pgdat, highest)):
            return
        self.kswapd_wakeups += 1
        if self.trace.active:
            self.trace.emit("mm_vmscan_wakeup_kswapd", self.trace.cpu, pgdat.id, order, gfp)
        self.queue_delayed_work(("kswapd", pgdat.id), 0, self.kswapd, pgdat.id)

    def pgdat_balanced(self, pgdat, order: int, highest: int) -> bool:
        """pgdat_balanced(): some managed zone up to ``highest`` is above its high mark."""
        managed = False
        for z in pgdat.zones[:highest + 1]:
            if not z.managed:
                continue
            managed = True
            if self._watermark_ok(z, order, z.wmark_high, highest, 0):
                return True
        return not managed

    @staticmethod
    def pgdat_watermark_boosted(pgdat, highest: int) -> bool:
        return any(z.boost for z in pgdat.zones[:highest + 1])

    def kswapd(self, nid: int):
        """One kswapd run: read and reset the request, then balance_pgdat()."""
        pgdat = self.nodes[nid]
        order, highest = pgdat.kswapd_order, pgdat.kswapd_highest_zoneidx
        pgdat.kswapd_order, pgdat.kswapd_highest_zoneidx = 0, MAX_NR_ZONES
        tr = self.trace
        traced, woken_for = tr.active, tr.current
        if traced:                                   # kswapd runs as its own kernel thread
            tr.current = (f"kswapd{nid}", 0)
            tr.emit("mm_vmscan_kswapd_wake", tr.cpu, nid, order)
        highest = MAX_NR_ZONES - 1 if highest == MAX_NR_ZONES else highest
        self.balance_pgdat(pgdat, order, highest)
        if traced:
            tr.emit("mm_vmscan_kswapd_sleep", tr.cpu, nid)
            tr.current = woken_for
        # kswapd_try_to_sleep(): balanced at order 0 (a high order kswapd leaves to
        # compaction), it wakes kcompactd for the order it was asked for
        if order and self.pgdat_balanced(pgdat, 0, highest):
            self.wakeup_kcompactd(pgdat, order, highest)

    def balance_pgdat(self, pgdat, order: int, highest: int):
        """balance_pgdat(), without reclaim for now: the boost the zones had when kswapd
        started is taken off at the end ("if (boosted) ... watermark_boost -= ...")."""
        for z in pgdat.zones[:highest + 1]:
            if z.boost:
                z.boost = 0
        self.generation += 1

    def drop_slab(self) -> int:
        """The slab half of vm.drop_caches: shrink every cache; returns the pages freed."""
        self.vm_events["drop_slab"] += 1
        freed = sum(self.slab.kmem_cache_shrink(c) for c in list(self.slab.caches))
        self.generation += 1
        return freed

