"""The page allocator proper (mm/page_alloc.c): alloc and free, per-cpu lists, rmqueue,
the watermark checks and the slow path.

The hot paths are written for few Python steps (see docs/DESIGN.md "fast paths");
``benchmarks/determinism.py --check`` proves each such change leaves every pfn as it was.
"""
from __future__ import annotations

import errno
from collections import deque
from itertools import islice

from .page_types import PAGE_SIZE
from . import gfp as G
from .buddy import (Zone, Page, PerCpuPages, MIGRATE_MOVABLE, MIGRATE_HIGHATOMIC, MIGRATE_ISOLATE, MIGRATE_PCPTYPES,
                    MAX_PAGE_ORDER, NR_PAGE_ORDERS, NR_PCP_LISTS,
                    PAGE_ALLOC_COSTLY_ORDER, PCP_BATCH_SCALE_MAX, pcp_allowed_order, order_to_pindex,
                    pindex_to_order, migratetype_is_mergeable)
from .compaction import COMPACT_DEFERRED
from .errors import MMError
from . import oom_kill
from .show_mem import explain_nopage
from .vmscan import LRU_OF_USE, MAX_RECLAIM_RETRIES, lru_add, lru_del
from .layout import ZONE_DMA32, ZONE_NORMAL, ZONE_MOVABLE, PAGEBLOCK_ORDER, PAGEBLOCK_NR_PAGES
from .page_types import pageblock_ranges, pageblock_start_pfn

# What a page allocation is for: node counters it feeds (per page; the stack counter is in kB),
# and the zone LRU counter, so meminfo/zoneinfo follow what the workload allocated.
PAGE_USES = {
    "anon": (("nr_anon_pages", "nr_inactive_anon"), "nr_zone_inactive_anon", 1),
    "pagecache": (("nr_file_pages", "nr_inactive_file"), "nr_zone_inactive_file", 1),
    "kernel_stack": (("nr_kernel_stack",), None, PAGE_SIZE // 1024),
    "page_tables": (("nr_page_table_pages",), None, 1),
    "percpu": ((), None, 1),
    "vmalloc": ((), None, 1),
}
USE_GFP = {"anon": G.GFP_HIGHUSER_MOVABLE, "pagecache": G.GFP_HIGHUSER_MOVABLE, "kernel_stack": G.GFP_KERNEL,
           "page_tables": G.GFP_KERNEL_ACCOUNT, "percpu": G.GFP_KERNEL, "vmalloc": G.GFP_KERNEL}

class _Plan:
    """A (node, gfp) request worked out once: the zonelist and what the fast path reads."""
    __slots__ = ("node", "zonelist", "mt", "flags", "zone", "pgalloc", "local0", "highest")

    def __init__(self, node: int, zonelist: list[Zone], mt: int, flags: int, cpu0_node: int, highest: int = 0):
        self.node, self.zonelist, self.mt, self.flags, self.highest = node, zonelist, mt, flags, highest
        self.zone = zonelist[0]                   # the preferred zone
        self.pgalloc = _PGALLOC[self.zone.idx]
        self.local0 = "numa_local" if self.zone.node == cpu0_node else "numa_other"   # for cpu 0



class PageAlloc:
    """Kernel mixin: the allocator's entry points and everything under them."""

    # Order-0 bulk work in runs of contiguous pages (alloc_pages_runs, free_pages_run, the pcp
    # refill).  False makes every one of them the per-page reference the tests compare with.
    page_runs = True
    _refilled = None                             # (pcp list, runs) the last pcp refill put there
    _known = None                                # what alloc_pages_runs last knew a pcp list held, as runs

    def default_cpu(self, node: int | None) -> int:
        if node is None:
            return 0
        cpus = self.nodes[node].cpus
        return cpus[0] if cpus else 0

    def _check_args(self, order, node, cpu):
        if not isinstance(order, int) or not 0 <= order <= MAX_PAGE_ORDER:
            raise MMError(errno.EINVAL, f"order {order} out of range 0..{MAX_PAGE_ORDER}")
        if node is not None and not 0 <= node < len(self.nodes):
            raise MMError(errno.EINVAL, f"node {node} does not exist (nodes 0..{len(self.nodes) - 1})")
        if cpu is not None and not 0 <= cpu < self.nr_cpu_ids:
            raise MMError(errno.EINVAL, f"cpu {cpu} does not exist (cpus 0..{self.nr_cpu_ids - 1})")

    def alloc_pages(self, order: int, gfp: int = G.GFP_KERNEL, node: int | None = None,
                    cpu: int | None = None, use: str | None = None) -> Page:
        """__alloc_pages(): fast path at the low watermark, then the slow path at min (kswapd,
        direct compaction and reclaim, the OOM killer).  When even the slow path fails the
        request fails with ENOMEM saying why, zone by zone; the allocation state is as it was,
        apart from what reclaim freed, what compaction moved and the log warn_alloc wrote."""
        if node is None and cpu is None and use is None and order.__class__ is int and 0 <= order <= MAX_PAGE_ORDER:
            cpu = 0                                # the common call: cpu 0, its own node, no use
            plan = self._plans0.get(gfp) or self._plan(self.cpu_node[0], gfp, cpu0=True)
            local = plan.local0
        else:
            self._check_args(order, node, cpu)
            if use is not None and use not in PAGE_USES:
                raise MMError(errno.EINVAL, f"unknown page use {use!r} (one of {', '.join(PAGE_USES)})")
            if cpu is None:
                cpu = self.default_cpu(node) if node is not None else 0
            if node is None:
                node = self.cpu_node[cpu]
            plan = self._plans.get((node, gfp)) or self._plan(node, gfp)
            local = "numa_local" if plan.zone.node == self.cpu_node[cpu] else "numa_other"
        tr = self.trace
        if tr.active:
            tr.cpu = cpu
        # Fast path, the case boot, count=K loops and SLUB refills hit millions of times:
        # the preferred zone is above its high watermark and this cpu's pcp list has a
        # block.  It decides exactly what _get_page_from_freelist would (first zone, high
        # mark, pcp head) without its loop; anything else goes there, nothing changed yet.
        z, mt = plan.zone, plan.mt
        page = None
        pindex = _PCP_LIST[order][mt]
        if pindex >= 0 and not z.below_high:
            pcp = z.pcp[cpu]
            lst = pcp.lists[pindex]
            if lst and self._watermark_fast(z, order, z._watermark[2] + z.boost, z.idx, plan.flags):
                nr = 1 << order
                pcp.free_count >>= 1
                pcp.count -= nr
                pfn = lst.popleft()
                # _prep_new_page() for the preferred zone, spelled out: no numa_miss, no HighAtomic
                self.vm_events[plan.pgalloc] += nr
                numa = z.numa
                numa["numa_hit"] += 1
                numa[local] += 1
                page = Page()
                page.pfn = pfn; page.order = order; page.zone = z; page.migratetype = mt
                page.cpu = cpu; page.use = None; page.owner = None
                z.allocated[pfn] = page
                if mt == MIGRATE_MOVABLE:
                    self._movable_used(z, pfn, order, +1)
        if page is None:
            page = self._get_page_from_freelist(plan.zonelist, order, plan.flags, mt, cpu) or \
                self._alloc_pages_slowpath(gfp, order, plan, cpu)
            if page is None:
                if tr.active:
                    tr.emit("mm_page_alloc", cpu, -1, order, mt, gfp)
                raise MMError(errno.ENOMEM, explain_nopage(self, plan.zonelist, order, gfp, plan.node))
        if use:
            page.use = use
            self._account_use(page, +1)
            if use in LRU_OF_USE:
                lru_add(self, page)
        if tr.active:
            tr.emit("mm_page_alloc", cpu, page.pfn, order, mt, gfp)
        self.generation += 1
        return page

    def alloc_pages_bulk(self, order: int, gfp: int, nr: int, node: int | None = None,
                         cpu: int | None = None, use: str | None = None) -> list[Page]:
        """alloc_pages_bulk(): nr blocks of one kind in one call, all or nothing (ENOMEM frees
        what was taken).  The per-request work is done once, which is what makes booting a
        machine with gigabytes of page cache quick."""
        if nr <= 0:
            return []
        first = self.alloc_pages(order, gfp, node, cpu, use)
        cpu, node = first.cpu, first.zone.node if node is None else node
        plan = self._plans.get((node, gfp)) or self._plan(node, gfp)
        zonelist, mt, flags = plan.zonelist, plan.mt, plan.flags
        pages = [first]
        get, slowpath = self._get_page_from_freelist, self._alloc_pages_slowpath
        for _ in range(nr - 1):
            page = get(zonelist, order, flags, mt, cpu) or slowpath(gfp, order, plan, cpu)
            if page is None:
                for p in reversed(pages):
                    self.free_pages(p)
                raise MMError(errno.ENOMEM, f"alloc_pages_bulk: only {len(pages)} of {nr} order-{order} blocks "
                                            f"({G.format_gfp(gfp)}) on node {node}")
            pages.append(page)
        if use:                                   # the counters once per zone, not once per page
            per_zone: dict[Zone, int] = {}
            for page in pages[1:]:
                page.use = use
                per_zone[page.zone] = per_zone.get(page.zone, 0) + 1
                if use in LRU_OF_USE:
                    lru_add(self, page)
            for z, n in per_zone.items():
                self._account_use_pages(use, z, n << order)
        self.generation += 1
        return pages

    # ---- order-0 bulk work in runs: alloc_pages_runs(), free_pages_run() ---------------------
    def alloc_pages_runs(self, gfp: int, nr: int, node: int | None = None, cpu: int | None = None,
                         use: str | None = None, out: list | None = None, made=None):
        """nr calls of alloc_pages(0, gfp, node, cpu, use), with every pfn, counter and flag
        they would leave, at a cost that grows with the pcp refills, not the pages.

        Returns (runs, cpu, error): runs [[zone, pfn, n], ...] in allocation order (pages
        pfn..pfn+n-1 ascending, no Page objects: the caller keeps them, see mm/task.py), the
        cpu they were allocated on, and the MMError of the call that failed (None if none);
        the runs made before a failure stay allocated for the caller to free.  ``out``, when
        given, is the list the runs are appended to (the caller sees them grow: the OOM killer
        counts them as the allocating task's).  ``made(zone, pfn, n)``: for anon and page cache,
        called for each stretch as it is made, in allocation order -- the caller makes them
        the task's and puts them on the LRU there, where each page's alloc_pages() would have
        (mm/task.py ``Tasks._made``).

        Between refills a pcp list only shrinks: the zone's free pages, its watermarks and
        flags do not move, so every call until the list is empty decides what the first one
        did.  ``_pcp_source`` finds that decision without side effects; the pops are then
        counted at once.  Anything else (a refill, a flag the call would set, kswapd to
        wake, the slow path, a failure) is one real alloc_pages() call."""
        self._check_args(0, node, cpu)
        if use is not None and use not in PAGE_USES:
            raise MMError(errno.EINVAL, f"unknown page use {use!r} (one of {', '.join(PAGE_USES)})")
        if use in LRU_OF_USE and made is None:
            raise MMError(errno.EINVAL, f"alloc_pages_runs: {use} pages join the LRU as a task's runs (made=)")
        if cpu is None:
            cpu = self.default_cpu(node) if node is not None else 0
        pnode = self.cpu_node[cpu] if node is None else node
        plan = self._plans.get((pnode, gfp)) or self._plan(pnode, gfp)
        mt, pindex = plan.mt, _PCP_LIST[0][plan.mt]
        cpu_node, vm_events = self.cpu_node[cpu], self.vm_events
        out = [] if out is None else out
        known = self._known                      # (pcp list, runs): what that list holds, as runs
        left, err = nr, None
        tr = self.trace
        slow_flags = G.gfp_to_alloc_flags(gfp, 0)
        clock = self.task_clock(cpu, node, use)   # the task faults page i at t0 + i * cost (mm/sched.py)
        while left:
            clock.at(nr - left)                  # what fell due meanwhile runs first (kswapd beside it)
            z = self._pcp_source(plan, cpu, pindex, slow_flags) if self.page_runs else None
            if z is None:                        # one real call
                self._refilled = None
                try:
                    page = self.alloc_pages(0, gfp, node, cpu)
                except MMError as e:
                    err = e
                    break
                z, pfn = page.zone, page.pfn
                del z.allocated[pfn]             # the caller keeps the page, not a Page
                lst = z.pcp[cpu].lists[pindex]
                if use:
                    self._account_use_pages(use, z, 1)
                    if made is not None:
                        made(z, pfn, 1)
                if self._refilled is not None and self._refilled[0] is lst:
                    known = (lst, deque(self._refilled[1]))
                if known is not None and known[0] is lst and known[1] and known[1][0][0] == pfn:
                    head = known[1][0]
                    head[0] += 1
                    head[1] -= 1
                    if not head[1]:
                        known[1].popleft()
                _add_run(out, z, pfn, 1)
                left -= 1
                continue
            pcp = z.pcp[cpu]
            lst = pcp.lists[pindex]
            k = min(len(lst), left, clock.room(nr - left))
            if known is not None and (known[0] is not lst or not known[1] or sum(n for _, n in known[1]) != len(lst)
                                      or known[1][0][0] != lst[0] or sum(known[1][-1]) - 1 != lst[-1]):
                known = None                     # (kept from an earlier call: checked at both ends)
            if tr.active:                        # each pop's mm_page_alloc, in popping order
                tr.cpu = cpu
                tr.emit_pfns("mm_page_alloc", cpu, islice(lst, k), 0, mt, gfp, step=clock.cost)
            if known is None:                    # a list filled before this call: page by page
                for _ in range(k):
                    pfn = lst.popleft()
                    _add_run(out, z, pfn, 1)
                    if made is not None:
                        made(z, pfn, 1)
                    if mt == MIGRATE_MOVABLE:
                        self._movable_used(z, pfn, 0, +1)
            else:
                runs, todo = known[1], k
                while todo:
                    head = runs[0]
                    n = min(todo, head[1])
                    _add_run(out, z, head[0], n)
                    if made is not None:
                        made(z, head[0], n)
                    if mt == MIGRATE_MOVABLE:
                        self._movable_used_range(z, head[0], n, +1)
                    head[0] += n
                    head[1] -= n
                    if not head[1]:
                        runs.popleft()
                    todo -= n
                if k == len(lst):
                    lst.clear()
                else:
                    for _ in range(k):
                        lst.popleft()
            # the pops' counters: rmqueue's pcp bookkeeping and zone_statistics()
            pcp.free_count >>= k
            pcp.count -= k
            vm_events[_PGALLOC[z.idx]] += k
            numa = z.numa
            if z.node == plan.zone.node:
                numa["numa_hit"] += k
            else:
                numa["numa_miss"] += k
                plan.zone.numa["numa_foreign"] += k
            numa["numa_local" if z.node == cpu_node else "numa_other"] += k
            if use:                              # as each page's alloc would: a dump sees them
                self._account_use_pages(use, z, k)
            self.generation += k
            left -= k
        self._known = known
        clock.done(nr - left)
        return out, cpu, err

    def _pcp_source(self, plan: _Plan, cpu: int, pindex: int, slow_flags: int = 0) -> Zone | None:
        """The zone whose pcp list the next order-0 alloc_pages() of plan would pop, when
        that call changes nothing but the pop's counters; None when it would refill, set
        ZONE_BELOW_HIGH, wake kswapd or go further (the caller then makes the real call).
        Reads what alloc_pages() and _get_page_from_freelist() read, in the same order.

        When no zone passes the low mark, the call enters the slow path: with its alloc
        flags (``slow_flags``, gfp_to_alloc_flags()), a wake of kswapd that changes nothing
        (already queued, or refused as before: _kswapd_wake_is_noop) and a first
        get_page_from_freelist() at the min mark that pops a pcp list, that call too changes
        nothing but the pop's counters -- the stretch of a fill below low while kswapd runs."""
        z = plan.zone
        if pindex < 0:
            return None
        if not z.below_high and z.pcp[cpu].lists[pindex] and \
                self._watermark_fast(z, 0, z._watermark[2] + z.boost, z.idx, plan.flags):
            return z                             # the fast path
        zz = self._pcp_walk(plan, cpu, pindex, plan.flags)
        if zz is not _NO_ZONE:
            return zz
        if not slow_flags or slow_flags & (G.ALLOC_HIGHATOMIC | G.ALLOC_NO_WATERMARKS) or \
                (slow_flags & G.ALLOC_KSWAPD and not self._kswapd_wake_is_noop(plan)):
            return None
        zz = self._pcp_walk(plan, cpu, pindex, slow_flags)
        return None if zz is _NO_ZONE else zz

    def _pcp_walk(self, plan: _Plan, cpu: int, pindex: int, flags: int):
        """_get_page_from_freelist()'s zone walk without its side effects: the zone whose
        pcp list it would pop, None when it would do more (set ZONE_BELOW_HIGH, refill, reset
        a boost), _NO_ZONE when no zone passes its mark."""
        z = plan.zone
        multi = len(self.nodes) > 1
        while True:
            nofrag = flags & G.ALLOC_NOFRAGMENT
            for zz in plan.zonelist:
                if nofrag and multi and zz.node != z.node:
                    flags &= ~G.ALLOC_NOFRAGMENT
                    break
                if not zz.below_high:
                    if not self._watermark_fast(zz, 0, zz._watermark[2] + zz.boost, z.idx, flags):
                        return None              # it would set ZONE_BELOW_HIGH
                elif not (flags & G.ALLOC_NO_WATERMARKS or self._watermark_fast(
                        zz, 0, zz.wmark(flags & G.ALLOC_WMARK_MASK), z.idx, flags)):
                    continue
                if zz.pcp[cpu].lists[pindex] and not (zz.boosted_wmark and flags & G.ALLOC_KSWAPD):
                    return zz
                return None
            else:
                return _NO_ZONE

    def _kswapd_wake_is_noop(self, plan: _Plan) -> bool:
        """wake_all_kswapds() for an order-0 request of plan would change nothing: every
        node's kswapd is queued already or would be refused (kswapd_failures, balanced and
        unboosted), and the order and zone it was asked for stay (wakeup_kswapd's reads)."""
        highest = plan.highest
        last = None
        for z in plan.zonelist:
            if z.idx > highest or z.node == last:
                continue
            last = z.node
            if not z.managed:
                continue
            pgdat = self.nodes[z.node]
            if self.kswapd_request(pgdat, 0, highest) != (pgdat.kswapd_order, pgdat.kswapd_highest_zoneidx) \
                    or not self.kswapd_wake_refused(pgdat, 0, highest):
                return False
        return True

    def free_pages_run(self, z: Zone, pfn: int, n: int, cpu: int, mt: int, use: str | None = None,
                       descending: bool = False) -> None:
        """free_pages() of the order-0 pages pfn..pfn+n-1 of z, allocated on cpu as migratetype
        mt (with ``use``), one after the other in ascending (or descending) pfn order: every
        list, counter and flag as those n calls leave them, at a cost that grows with the pcp
        flushes, not the pages.

        A free that neither re-tunes pcp->high nor flushes (the zone not below its high
        mark, count still under high) only adds the page at the list head and moves
        counters: such stretches are counted at once, and the pages they add are kept as
        runs at the head of the list.  A flush frees from the tail, so it takes the list's
        older pages first and then the oldest of those runs, handed to the buddy as ranges
        (Zone.free_range).  Every other free is done as free_pages() does it."""
        if not self.page_runs:                   # the reference: n free_pages() calls
            for p in (range(pfn + n - 1, pfn - 1, -1) if descending else range(pfn, pfn + n)):
                page = Page()
                page.pfn = p; page.order = 0; page.zone = z; page.migratetype = mt; page.cpu = cpu; page.use = use; page.owner = None
                z.allocated[p] = page
                self.free_pages(page)
            return
        if mt == MIGRATE_MOVABLE:
            self._movable_used_range(z, pfn, n, -1)
        if use:
            self._account_use_pages(use, z, -n)
        self.vm_events["pgfree"] += n
        self.generation += n
        tr = z.trace
        if tr.active:
            tr.cpu = cpu
        pcp = z.pcp[cpu]
        head: deque = deque()                    # [lo, hi] runs at the list head, oldest first
        hpindex = -1
        for s, e in pageblock_ranges(pfn, pfn + n, descending):   # each pageblock's stretch, in freeing order
            bmt = z.pageblock_mt[(s >> PAGEBLOCK_ORDER) - z._pb_base]
            pindex = _PCP_LIST[0][bmt]
            if pindex != hpindex:
                self._head_to_list(pcp, hpindex, head, descending)
                hpindex = pindex
            if pindex < 0:                       # an Isolate pageblock: straight to the buddy
                if tr.active:
                    tr.emit_pfns("mm_page_free", cpu, range(e - 1, s - 1, -1) if descending else range(s, e), 0)
                z.free_range(s, e, descending)
                pcp.stat_diff = True
            else:
                self._free_stretch(z, pcp, pindex, s, e, head, descending)
        self._head_to_list(pcp, hpindex, head, descending)

    def _free_stretch(self, z: Zone, pcp: PerCpuPages, pindex: int, s: int, e: int, head: deque,
                      descending: bool) -> None:
        """free_pages() of pages s..e-1 (one pageblock) onto pcp list pindex, head runs in ``head``."""
        batch = pcp.batch
        cap = batch << PCP_BATCH_SCALE_MAX
        while s < e:
            high = pcp.high
            quiet = min(e - s, _pcp_free_headroom(pcp, z))
            if quiet > 0:                        # frees that only add a page and count it
                pcp.alloc_factor >>= quiet
                pcp.count += quiet
                if pcp.free_count < cap:
                    pcp.free_count = min(pcp.free_count + quiet, cap)
            else:                                # one free that re-tunes high, as free_pages() does it
                quiet = 1
                pcp.alloc_factor >>= 1
                pcp.count += 1
                if pcp.free_count < cap:
                    pcp.free_count += 1
                high = self._nr_pcp_high(pcp, z, batch, False)
            pcp.prev_free_high_order = False
            if z.trace.active:                   # each free's mm_page_free, before a flush's drains
                z.trace.emit_pfns("mm_page_free", z.trace.cpu,
                                  range(e - 1, e - quiet - 1, -1) if descending else range(s, s + quiet), 0)
            if descending:
                _push(head, e - quiet, e, True)
                e -= quiet
            else:
                _push(head, s, s + quiet, False)
                s += quiet
            if pcp.count >= high:
                self._flush_head(z, self._nr_pcp_free(pcp, batch, high, False), pcp, pindex, head)
                self._clear_below_high(z)

    def _flush_head(self, z: Zone, count: int, pcp: PerCpuPages, pindex: int, head: deque) -> None:
        """free_pcppages_bulk() from list pindex whose newest pages are the runs in head: the
        list's own pages from the tail, then the oldest runs, then the other lists."""
        count = min(count, pcp.count)
        if count > 0:
            pcp.stat_diff = True
        lst = pcp.lists[pindex]
        tr = z.trace
        while count > 0 and lst:
            p = lst.pop()
            count -= 1
            pcp.count -= 1
            mt = z.get_pageblock_migratetype(p)
            if tr.active:
                tr.emit("mm_page_pcpu_drain", tr.cpu, p, 0, mt)
            z.free_one_page(p, 0, mt)
        while count > 0 and head:
            r = head[0]
            lo, hi, desc = r
            take = min(count, hi - lo)
            if tr.active:
                _trace_drains(z, range(hi - 1, hi - take - 1, -1) if desc else range(lo, lo + take))
            if desc:
                z.free_range(hi - take, hi, True)
                r[1] = hi - take
            else:
                z.free_range(lo, lo + take, False)
                r[0] = lo + take
            if r[0] == r[1]:
                head.popleft()
            count -= take
            pcp.count -= take
        if count > 0:                            # this list is empty: the round robin goes on
            self._free_pcppages_bulk(z, count, pcp, pindex)

    @staticmethod
    def _head_to_list(pcp: PerCpuPages, pindex: int, head: deque, descending: bool) -> None:
        """The head runs onto the list, as the single frees would have put them there."""
        if pindex >= 0 and head:
            lst = pcp.lists[pindex]
            for lo, hi, desc in head:
                lst.extendleft(range(hi - 1, lo - 1, -1) if desc else range(lo, hi))
        head.clear()

    def _movable_used_range(self, z: Zone, pfn: int, n: int, sign: int) -> None:
        """_movable_used() of n order-0 pages from pfn, one add per pageblock."""
        used = z.movable_used
        for s, e in pageblock_ranges(pfn, pfn + n):
            b = s >> PAGEBLOCK_ORDER
            used[b] = used.get(b, 0) + sign * (e - s)

    def _plan(self, node: int, gfp: int, cpu0: bool = False) -> "_Plan":
        """What a (node, gfp) request needs, worked out once: the zonelist cut at the highest
        allowed zone, the migratetype, the fast path's alloc flags (ALLOC_NOFRAGMENT rule)."""
        highest = G.gfp_zone(gfp)
        full = self.zonelists_thisnode[node] if gfp & _GFP_THISNODE else self.zonelists[node]
        zonelist = [z for z in full if z.idx <= highest]
        if not zonelist:
            raise MMError(errno.ENOMEM, f"no zone on node {node} satisfies {G.format_gfp(gfp)}")
        preferred = zonelist[0]
        flags = G.ALLOC_WMARK_LOW | (gfp & _GFP_KSWAPD_RECLAIM)
        if preferred.idx == ZONE_NORMAL and (len(self.nodes) == 1
                                             or self.nodes[preferred.node].zones[ZONE_DMA32].populated):
            flags |= G.ALLOC_NOFRAGMENT
        plan = self._plans[(node, gfp)] = _Plan(node, zonelist, G.gfp_migratetype(gfp), flags, self.cpu_node[0],
                                                highest)
        if cpu0:
            self._plans0[gfp] = plan
        return plan

    # ---- the slow path: __alloc_pages_slowpath() -------------------------------------------
    def _alloc_pages_slowpath(self, gfp: int, order: int, plan: _Plan, cpu: int) -> Page | None:
        """__alloc_pages_slowpath(): the fast path failed at the low mark.  Wake kswapd, retry
        at the min mark with the reserves the gfp allows, then direct compaction and reclaim
        while should_reclaim_retry() sees a chance, then the OOM killer for a request that may
        not fail (__alloc_pages_may_oom: a kill resets the no-progress count); give up with
        warn_alloc()."""
        flags = G.gfp_to_alloc_flags(gfp, order)
        zonelist, mt = plan.zonelist, plan.mt
        highest = G.gfp_zone(gfp)
        costly = order > PAGE_ALLOC_COSTLY_ORDER
        if flags & G.ALLOC_KSWAPD:
            self.wake_all_kswapds(order, gfp, zonelist, highest)
        page = self._get_page_from_freelist(zonelist, order, flags, mt, cpu)
        if page is not None:
            return page
        can_direct_reclaim = gfp & _GFP_DIRECT_RECLAIM
        if can_direct_reclaim and (costly or (order and mt != MIGRATE_MOVABLE)) \
                and not flags & G.ALLOC_NO_WATERMARKS:
            page = self._alloc_pages_direct_compact(gfp, order, flags, plan, cpu)
            if page is not None:
                return page
            # costly __GFP_NORETRY: give up when compaction was skipped or deferred, else
            # one more pass of the retry loop, at async priority
            if costly and gfp & _GFP_NORETRY and self.last_compact_result <= COMPACT_DEFERRED:
                self.warn_alloc(gfp, order, plan.node, cpu)
                return None
        no_progress_loops = 0
        while True:                                           # retry:
            if flags & G.ALLOC_KSWAPD:
                self.wake_all_kswapds(order, gfp, zonelist, highest)
            page = self._get_page_from_freelist(zonelist, order, flags, mt, cpu)
            if page is not None:
                return page
            if not can_direct_reclaim:
                break
            page, progress = self._alloc_pages_direct_reclaim(gfp, order, flags, plan, cpu)
            if page is not None:
                return page
            page = self._alloc_pages_direct_compact(gfp, order, flags, plan, cpu)
            if page is not None:
                return page
            # costly orders retry only as __GFP_RETRY_MAYFAIL and when they may compact (__GFP_IO)
            if gfp & _GFP_NORETRY or (costly and (not gfp & _GFP_RETRY_MAYFAIL or not gfp & _GFP_IO)):
                break
            no_progress_loops = 0 if progress and not costly else no_progress_loops + 1
            if self._should_reclaim_retry(order, flags, zonelist, highest, no_progress_loops, mt):
                continue
            if oom_kill.may_oom(gfp, order, highest) and oom_kill.oom_kill_tasks(self, gfp, order) is not None:
                no_progress_loops = 0
                continue
            break
        self.warn_alloc(gfp, order, plan.node, cpu)
        return None

    # The kernel's __alloc_pages_direct_reclaim / __alloc_pages_direct_compact: one leading
    # underscore here, because Python mangles double-underscore names inside a class.  They
    # call into the rooms that do the work (vmscan: try_to_free_pages; compaction.py overrides
    # the compaction hook).
    def _alloc_pages_direct_reclaim(self, gfp: int, order: int, flags: int, plan: _Plan, cpu: int):
        """__alloc_pages_direct_reclaim() -> (page or None, pages reclaimed): try_to_free_pages(),
        then the freelists again, once more after drain_all_pages() (the freed pages may sit
        on pcp lists)."""
        progress = self.try_to_free_pages(plan.zonelist, order, gfp)
        if not progress:
            return None, 0
        page = self._get_page_from_freelist(plan.zonelist, order, flags, plan.mt, cpu)
        if page is None:
            self.unreserve_highatomic_pageblock(plan.zonelist, G.gfp_zone(gfp), plan.mt, False)
            self.drain_all_pages()
            page = self._get_page_from_freelist(plan.zonelist, order, flags, plan.mt, cpu)
        return page, progress

    def _alloc_pages_direct_compact(self, gfp: int, order: int, flags: int, plan: _Plan, cpu: int):
        """__alloc_pages_direct_compact(): the Compaction mixin (compaction.py) overrides this."""
        return None

    def _should_reclaim_retry(self, order: int, flags: int, zonelist, highest: int, no_progress_loops: int,
                              mt: int = MIGRATE_MOVABLE) -> bool:
        """should_reclaim_retry(): retry while some zone would pass its min mark if every page
        reclaim could free were free (zone_reclaimable_pages(), vmscan), at most
        MAX_RECLAIM_RETRIES times without progress -- and then once more for each highatomic
        pageblock it can give back before the OOM killer."""
        if no_progress_loops > MAX_RECLAIM_RETRIES:
            return self.unreserve_highatomic_pageblock(zonelist, highest, mt, True)
        tr = self.trace
        for z in zonelist:
            if z.idx > highest:
                continue
            reclaimable = self.zone_reclaimable_pages(z)
            available = z.nr_free + reclaimable
            ok = self._watermark_ok(z, order, z.wmark_min, highest, flags, available)
            if tr.active:
                tr.emit("reclaim_retry_zone", tr.cpu, z.node, z.idx, order, reclaimable, available, z.wmark_min,
                        no_progress_loops, ok)
            if ok:
                return True
        return False

    def _get_page_from_freelist(self, zonelist, order, flags, mt, cpu):
        preferred = zonelist[0]
        multi = len(self.nodes) > 1
        while True:
            nofrag = flags & G.ALLOC_NOFRAGMENT
            retry = False
            for z in zonelist:
                if nofrag and multi and z.node != preferred.node:
                    flags &= ~G.ALLOC_NOFRAGMENT         # locality beats fragmentation avoidance
                    retry = True
                    break
                if not z.below_high:
                    if self._watermark_fast(z, order, z._watermark[2] + z.boost, preferred.idx, flags):
                        page = self._rmqueue(preferred, z, order, flags, mt, cpu)
                        if page is not None:
                            return page
                        continue
                    z.below_high = True
                if flags & G.ALLOC_NO_WATERMARKS or self._watermark_fast(
                        z, order, z.wmark(flags & G.ALLOC_WMARK_MASK), preferred.idx, flags):
                    page = self._rmqueue(preferred, z, order, flags, mt, cpu)
                    if page is not None:
                        return page
            if retry:
                continue
            if nofrag:
                flags &= ~G.ALLOC_NOFRAGMENT
                continue
            return None

    # ---- the watermark rule: __zone_watermark_ok() and zone_watermark_fast() ----------------
    # Every watermark decision goes through these two, as in the kernel: _watermark_ok is
    # the rule, _watermark_fast its order-0 shortcut (the same comparison before the
    # reserves lower the mark).  The allocator's fast path calls _watermark_fast too.
    def _watermark_ok(self, z: Zone, order, mark, highest, flags, free: int | None = None) -> bool:
        """__zone_watermark_ok(): usable free pages against the mark lowered by the reserves
        the request may use, then (order > 0) a free block of at least that order.  ``free``
        is the zone's free pages unless the caller counts more (should_reclaim_retry)."""
        # __zone_watermark_unusable_free(): the rest of the block, and the HighAtomic
        # reserve unless the request may dip into reserves
        free = (z.nr_free if free is None else free) - ((1 << order) - 1)
        if not flags & _ALLOC_RESERVES:
            free -= z.nr_free_highatomic
        m = mark
        if flags & _ALLOC_RESERVES:
            if flags & G.ALLOC_MIN_RESERVE:
                m -= m // 2
                if flags & G.ALLOC_NON_BLOCK:
                    m -= m // 4
            if flags & G.ALLOC_OOM:
                m -= m // 2
        if free <= m + z.lowmem_reserve[highest]:
            return False
        if not order:
            return True
        for nr in z._nr[order:]:
            if nr[0] or nr[1] or nr[2]:
                return True
            if flags & (G.ALLOC_HIGHATOMIC | G.ALLOC_OOM) and nr[MIGRATE_HIGHATOMIC]:
                return True
        return False

    def _watermark_fast(self, z: Zone, order, mark, highest, flags) -> bool:
        """zone_watermark_fast(): order 0 passes on the plain comparison; otherwise the full
        rule, and a boosted zone lets ALLOC_MIN_RESERVE order-0 requests use the unboosted min."""
        if not order:                            # the unusable free pages at order 0: HighAtomic only
            if z.nr_free - (0 if flags & _ALLOC_RESERVES else z.nr_free_highatomic) > mark + z.lowmem_reserve[highest]:
                return True
        if self._watermark_ok(z, order, mark, highest, flags):
            return True
        if not order and flags & G.ALLOC_MIN_RESERVE and z.boost and (flags & G.ALLOC_WMARK_MASK) == G.ALLOC_WMARK_MIN:
            return self._watermark_ok(z, order, z._watermark[0], highest, flags)
        return False

    def _rmqueue(self, preferred: Zone, z: Zone, order, flags, mt, cpu) -> Page | None:
        pfn = -1
        pindex = _PCP_LIST[order][mt]
        if pindex >= 0:
            pcp = z.pcp[cpu]
            lst = pcp.lists[pindex]
            if lst:                              # the common case: the pcp list has a page
                pcp.free_count >>= 1
                pcp.count -= 1 << order
                pfn = lst.popleft()
            else:
                pfn = self._rmqueue_pcplist(z, order, mt, flags, cpu)
        if pfn < 0:
            pfn = self._rmqueue_buddy(z, order, mt, flags)
            if pfn < 0:
                return None
            z.pcp[cpu].stat_diff = True
        page = self._prep_new_page(preferred, z, pfn, order, flags, mt, cpu)
        if z.boosted_wmark and flags & G.ALLOC_KSWAPD:
            z.boosted_wmark = False              # a fallback boosted the zone: kswapd resets it
            self.wakeup_kswapd(z, 0, 0, z.idx)
        return page

    def _prep_new_page(self, preferred: Zone, z: Zone, pfn, order, flags, mt, cpu) -> Page:
        """The block at pfn is taken: count the event (zone_statistics) and hand out its Page."""
        self.vm_events[_PGALLOC[z.idx]] += 1 << order
        numa = z.numa
        if z.node == preferred.node:
            numa["numa_hit"] += 1
        else:
            numa["numa_miss"] += 1
            preferred.numa["numa_foreign"] += 1
        numa["numa_local" if z.node == self.cpu_node[cpu] else "numa_other"] += 1
        page = Page()
        page.pfn = pfn; page.order = order; page.zone = z; page.migratetype = mt; page.cpu = cpu; page.use = None; page.owner = None
        z.allocated[pfn] = page
        if mt == MIGRATE_MOVABLE:
            self._movable_used(z, pfn, order, +1)
        if flags & G.ALLOC_HIGHATOMIC:
            self._reserve_highatomic_pageblock(z, pfn, order)
        return page

    def _rmqueue_pcplist(self, z: Zone, order, mt, flags, cpu) -> int:
        pcp = z.pcp[cpu]
        pcp.free_count >>= 1
        lst = pcp.lists[_PCP_LIST[order][mt]]
        if not lst:
            self._rmqueue_bulk(z, order, mt, flags, self._nr_pcp_alloc(pcp, z, order), pcp, lst)
            if not lst:
                return -1
            pcp.stat_diff = True
        pcp.count -= 1 << order
        return lst.popleft()

    def _rmqueue_bulk(self, z: Zone, order, mt, flags, batch: int, pcp: PerCpuPages, lst) -> None:
        """rmqueue_bulk(): batch blocks from the buddy onto the tail of an empty pcp list.

        Order 0 takes whole stretches of rmqueue_smallest() calls at once
        (Zone.rmqueue_runs) unless ``page_runs`` is off (the per-page reference);
        fallbacks (claim, steal) go one block at a time as __rmqueue() does.  The list's
        content is left in ``_refilled`` as runs [lst, [pfn, n]...] for alloc_pages_runs."""
        mode = [0]
        runs = []
        left = batch
        while left:
            if not order and not mode[0] and self.page_runs:
                n = z.rmqueue_runs(mt, left, runs)
                if n:
                    left -= n
                    continue
            pfn = self._rmqueue_typed(z, order, mt, flags, mode)
            if pfn < 0:
                break
            if runs and runs[-1][0] + runs[-1][1] == pfn and not order:
                runs[-1][1] += 1
            else:
                runs.append([pfn, 1])
            left -= 1
        for pfn, n in runs:                      # the list was empty: it is the runs, in order
            lst.extend(range(pfn, pfn + n))
        pcp.count += (batch - left) << order
        self._refilled = (lst, runs)

    def _nr_pcp_alloc(self, pcp: PerCpuPages, z: Zone, order: int) -> int:
        base = pcp.batch
        high = pcp.high = min(max(pcp.high, pcp.high_min), pcp.high_max)
        if high < base:
            return 1
        batch = base if order else base << pcp.alloc_factor
        if pcp.high_min != pcp.high_max and not z.below_high:
            high = pcp.high = min(high + batch, pcp.high_max)
        if not order:
            max_nr = max(high - pcp.count - base, base)
            if batch <= max_nr and pcp.alloc_factor < PCP_BATCH_SCALE_MAX:
                pcp.alloc_factor += 1
            batch = min(batch, max_nr)
        if batch > 1:
            batch = max(batch >> order, 2)
        return batch

    def _rmqueue_buddy(self, z: Zone, order, mt, flags) -> int:
        pfn = -1
        if flags & G.ALLOC_HIGHATOMIC:
            pfn = z.rmqueue_smallest(order, MIGRATE_HIGHATOMIC)
        if pfn < 0:
            pfn = self._rmqueue_typed(z, order, mt, flags, [0])
            if pfn < 0 and flags & (G.ALLOC_OOM | G.ALLOC_NON_BLOCK):
                pfn = z.rmqueue_smallest(order, MIGRATE_HIGHATOMIC)
        return pfn

    def _rmqueue_typed(self, z: Zone, order, mt, flags, mode) -> int:
        """__rmqueue(): own type, then claim a pageblock, then steal; mode persists over a bulk refill."""
        if mode[0] == 0:
            pfn = z.rmqueue_smallest(order, mt)
            if pfn >= 0:
                return pfn
        if mode[0] <= 1:
            pfn = z.rmqueue_claim(order, mt, flags & G.ALLOC_NOFRAGMENT, self.watermark_boost_factor,
                                  flags & G.ALLOC_KSWAPD)
            if pfn >= 0:
                mode[0] = 0
                return pfn
        if not flags & G.ALLOC_NOFRAGMENT:
            pfn = z.rmqueue_steal(order, mt, self.watermark_boost_factor if self.profile.steal_boosts else 0,
                                  flags & G.ALLOC_KSWAPD)
            if pfn >= 0:
                mode[0] = 2
                return pfn
        return -1

    def unreserve_highatomic_pageblock(self, zonelist, highest: int, mt: int, force: bool) -> bool:
        """unreserve_highatomic_pageblock(): the first free page on a zone's HIGHATOMIC lists
        (lowest order first) turns its pageblock into the requester's migratetype, its free
        pages with it; the reserve shrinks by a pageblock.  Without ``force`` a zone keeps its
        last reserved pageblock.  True when pages moved."""
        for z in zonelist:
            if z.idx > highest or not z.nr_reserved_highatomic:
                continue
            if not force and z.nr_reserved_highatomic <= PAGEBLOCK_NR_PAGES:
                continue
            for order in range(NR_PAGE_ORDERS):
                pfn = z._first(order, MIGRATE_HIGHATOMIC)
                if pfn < 0:
                    continue
                start = pageblock_start_pfn(pfn)
                if z.get_pageblock_migratetype(pfn) == MIGRATE_HIGHATOMIC:
                    z.nr_reserved_highatomic -= min(PAGEBLOCK_NR_PAGES, z.nr_reserved_highatomic)
                z.set_pageblock_migratetype(start, mt)
                if z.move_freepages_block(start, MIGRATE_HIGHATOMIC, mt):
                    return True
        return False

    def _reserve_highatomic_pageblock(self, z: Zone, pfn: int, order: int):
        limit = z.managed // 100
        if limit < PAGEBLOCK_NR_PAGES:
            return
        limit = -(-limit // PAGEBLOCK_NR_PAGES) * PAGEBLOCK_NR_PAGES
        if z.nr_reserved_highatomic >= limit:
            return
        mt = z.get_pageblock_migratetype(pfn)
        if not migratetype_is_mergeable(mt):
            return
        if order < PAGEBLOCK_ORDER:
            start = pageblock_start_pfn(pfn)
            if start < z.start_pfn or start + PAGEBLOCK_NR_PAGES > z.end_pfn:
                return
            z.move_freepages_block(start, mt, MIGRATE_HIGHATOMIC)
            z.set_pageblock_migratetype(start, MIGRATE_HIGHATOMIC)
            z.nr_reserved_highatomic += PAGEBLOCK_NR_PAGES
        else:
            z.change_pageblock_range(pfn, order, MIGRATE_HIGHATOMIC)
            z.nr_reserved_highatomic += 1 << order

    def _movable_used(self, z: Zone, pfn: int, order: int, sign: int):
        """Movable pages in use per pageblock (steal_suitable_fallback()'s movable_pages)
        as a page of ``order`` at pfn is allocated (sign 1) or freed (-1)."""
        if order < PAGEBLOCK_ORDER:              # the common case: inside one pageblock
            b = pfn >> PAGEBLOCK_ORDER
            z.movable_used[b] = z.movable_used.get(b, 0) + (sign << order)
        else:
            self._movable_used_range(z, pfn, 1 << order, sign)

    def _account_use(self, page: Page, sign: int):
        self._account_use_pages(page.use, page.zone, sign * (1 << page.order))

    def _account_use_pages(self, use: str, zone: Zone, n: int):
        """n pages of zone (negative: freed) start or stop being used for use."""
        items, zone_item, unit = PAGE_USES[use]
        stat = self.nodes[zone.node].stat
        for it in items:
            stat[it] += n * unit
        if zone_item:
            zone.stat[zone_item] += n
        if use == "percpu":
            self.percpu_pages += n
        elif use == "vmalloc":
            self.vmalloc_pages += n

    def free_pages(self, page: Page):
        """__free_pages(): pcp-sized orders through the cpu's pageset, the rest straight to the buddy."""
        z, pfn, order = page.zone, page.pfn, page.order
        other = z.allocated.pop(pfn, None)
        if other is not page:
            if other is not None:
                z.allocated[pfn] = other
            raise MMError(errno.EINVAL, f"free_pages: pfn {pfn:#x} order {order} is not allocated (double free?)")
        if page.migratetype == MIGRATE_MOVABLE:
            self._movable_used(z, pfn, order, -1)
        if page.use:
            if page.use in LRU_OF_USE:
                lru_del(self, page)
            self._account_use(page, -1)
        tr = self.trace
        if tr.active:
            tr.cpu = page.cpu
            tr.emit("mm_page_free", page.cpu, pfn, order)
        nr = 1 << order
        self.vm_events["pgfree"] += nr
        self.generation += 1
        mt = z.pageblock_mt[(pfn >> PAGEBLOCK_ORDER) - z._pb_base]
        pindex = _PCP_LIST[order][mt]
        if pindex < 0:                           # not a pcp order, or an Isolate pageblock
            z.free_one_page(pfn, order, mt)
            z.pcp[page.cpu].stat_diff = True
            return
        # free_frozen_page_commit(): onto the list head, then tune high and maybe free a batch
        pcp = z.pcp[page.cpu]
        retune = _pcp_free_headroom(pcp, z) < nr
        pcp.alloc_factor >>= 1
        pcp.lists[pindex].appendleft(pfn)
        pcp.count += nr
        batch = pcp.batch
        free_high = False
        if order and order <= PAGE_ALLOC_COSTLY_ORDER:
            free_high = pcp.free_count >= batch + pcp.high_min // 2 and pcp.prev_free_high_order
            pcp.prev_free_high_order = True
        else:
            pcp.prev_free_high_order = False
        if pcp.free_count < batch << PCP_BATCH_SCALE_MAX:
            pcp.free_count += nr
        # The common free has headroom: _nr_pcp_high() would leave high alone and count stays
        # under it, so neither the call nor a flush happens.
        if free_high or retune:
            high = self._nr_pcp_high(pcp, z, batch, free_high)
            if pcp.count >= high:
                self._free_pcppages_bulk(z, self._nr_pcp_free(pcp, batch, high, free_high), pcp, pindex)
                self._clear_below_high(z)

    def _clear_below_high(self, z: Zone) -> None:
        """After a pcp flush: ZONE_BELOW_HIGH goes once the zone is above its high mark again."""
        if z.below_high and self._watermark_ok(z, 0, z.wmark_high, ZONE_MOVABLE, 0):
            z.below_high = False

    @staticmethod
    def _nr_pcp_high(pcp: PerCpuPages, z: Zone, batch, free_high) -> int:
        high = pcp.high = min(max(pcp.high, pcp.high_min), pcp.high_max)
        if not high:
            return 0
        if free_high:
            pcp.high = max(high - (batch << PCP_BATCH_SCALE_MAX), pcp.high_min)
            return 0
        if pcp.high_min == pcp.high_max:
            return high
        if z.below_high:
            pcp.high = max(high - max(pcp.free_count, batch), pcp.high_min)
            high = max(pcp.count, pcp.high_min)
        elif pcp.count >= high:
            need = pcp.free_count + batch
            if pcp.high < need:
                pcp.high = min(max(need, pcp.high_min), pcp.high_max)
        return high

    @staticmethod
    def _nr_pcp_free(pcp: PerCpuPages, batch, high, free_high) -> int:
        if free_high:
            return min(pcp.count, batch << PCP_BATCH_SCALE_MAX)
        if high < batch:
            return 1
        return min(max(pcp.free_count, batch), max(high - batch, batch))

    @staticmethod
    def _free_pcppages_bulk(z: Zone, count: int, pcp: PerCpuPages, pindex: int, runs: bool = False):
        """Round-robin over the lists from the one just freed to, taking from the tails.
        ``runs`` (page_runs): a stretch of consecutive pfns at an order-0 list's
        tail is handed to the buddy as the range it is (Zone.free_range: the same frees in
        the same order), not page by page."""
        count = min(count, pcp.count)
        if count > 0:
            pcp.stat_diff = True                 # NR_FREE_PAGES moved on this cpu
        pindex -= 1
        while count > 0:
            while True:
                pindex = pindex + 1 if pindex < NR_PCP_LISTS - 1 else 0
                lst = pcp.lists[pindex]
                if lst:
                    break
            order = pindex_to_order(pindex)
            n = 1 << order
            if runs and not order:
                while count > 0 and lst:
                    m, step = _tail_stretch(lst, count)
                    p = lst[-1]
                    if m == len(lst):
                        lst.clear()
                    else:
                        for _ in range(m):
                            lst.pop()
                    count -= m
                    pcp.count -= m
                    if z.trace.active:           # the pops' drains, in popping order
                        _trace_drains(z, range(p, p - m, -1) if step < 0 else range(p, p + m))
                    if step < 0:                 # popped p, p-1, ...: descending
                        z.free_range(p - m + 1, p + 1, True)
                    else:
                        z.free_range(p, p + m, False)
                continue
            while count > 0 and lst:
                pfn = lst.pop()
                count -= n
                pcp.count -= n
                mt = z.get_pageblock_migratetype(pfn)
                if z.trace.active:
                    z.trace.emit("mm_page_pcpu_drain", z.trace.cpu, pfn, order, mt)
                z.free_one_page(pfn, order, mt)


    # ---- exact-size allocations: alloc_pages_exact(), split_page() -----------------------
    def alloc_pages_exact(self, size: int, gfp: int = G.GFP_KERNEL, node: int | None = None,
                          cpu: int | None = None) -> list[Page]:
        """alloc_pages_exact(): the covering order (get_order(size)) without __GFP_COMP, split
        into order-0 pages, the tail beyond PAGE_ALIGN(size) freed (make_alloc_exact()).
        Returns the pages kept, lowest pfn first."""
        if not isinstance(size, int) or size <= 0:
            raise MMError(errno.EINVAL, f"alloc_pages_exact: size {size!r} must be a positive number of bytes")
        nr = -(-size // PAGE_SIZE)
        order = (nr - 1).bit_length()
        if order > MAX_PAGE_ORDER:
            raise MMError(errno.EINVAL, f"alloc_pages_exact: {size} bytes need order {order} > {MAX_PAGE_ORDER}")
        pages = self.split_page(self.alloc_pages(order, gfp & ~_GFP_COMP, node, cpu))
        for p in pages[nr:]:
            self.free_pages(p)
        return pages[:nr]

    def split_page(self, page: Page) -> list[Page]:
        """split_page(): a non-compound 2^order block becomes 2^order order-0 pages (with its
        identity: a user's folio not named yet stays PINNED, vmscan.lru_split; a named one is
        never split)."""
        z = page.zone
        if z.allocated.get(page.pfn) is not page:
            raise MMError(errno.EINVAL, f"split_page: pfn {page.pfn:#x} is not allocated")
        out = []
        for pfn in range(page.pfn, page.pfn + (1 << page.order)):
            p = Page()
            p.pfn, p.order, p.zone, p.migratetype, p.cpu, p.use, p.owner, p.idx = \
                pfn, 0, z, page.migratetype, page.cpu, None, page.owner, 0
            z.allocated[pfn] = p
            out.append(p)
        if page.use:                              # the use moves to the pieces, counted once
            for p in out:
                p.use = page.use
        self.generation += 1
        return out

    def drain_all_pages(self):
        """drain_all_pages(): every pcp list back to the buddy (memory pressure, drop_caches)."""
        runs = self.page_runs
        for z in self.zones:
            for pcp in z.pcp:
                if pcp.count:
                    self._free_pcppages_bulk(z, pcp.count, pcp, 0, runs)
        self.generation += 1


    @staticmethod
    def decay_pcp_high(z: Zone, pcp: PerCpuPages) -> bool:
        """decay_pcp_high() (6.18), from the vmstat worker once a second: high falls by 1/8
        (never below high_min, nor more than batch << 5 under count) and whatever the list
        holds above the new high goes back to the buddy.  True while there is more to do."""
        todo = False
        high_min = pcp.high_min
        if pcp.high > high_min:
            pcp.high = max(pcp.count - (pcp.batch << PCP_BATCH_SCALE_MAX), pcp.high - (pcp.high >> 3), high_min)
            todo = pcp.high > high_min
        to_drain = pcp.count - pcp.high
        if to_drain > 0:
            PageAlloc._free_pcppages_bulk(z, to_drain, pcp, 0)
            todo = True
        return todo

    @staticmethod
    def drain_zone_pages(z: Zone, pcp: PerCpuPages):
        """drain_zone_pages(): a remote node's expired pageset gives back up to one batch."""
        to_drain = min(pcp.count, pcp.batch)
        if to_drain > 0:
            PageAlloc._free_pcppages_bulk(z, to_drain, pcp, 0)


# Names with two leading underscores would be mangled inside the class body.
_GFP_THISNODE = G.__GFP_THISNODE
_GFP_KSWAPD_RECLAIM = G.__GFP_KSWAPD_RECLAIM
_GFP_DIRECT_RECLAIM = G.__GFP_DIRECT_RECLAIM
_GFP_NORETRY = G.__GFP_NORETRY
_GFP_RETRY_MAYFAIL = G.__GFP_RETRY_MAYFAIL
_GFP_IO = G.__GFP_IO
_GFP_COMP = G.__GFP_COMP
_ALLOC_RESERVES = G.ALLOC_RESERVES
# The pcp list of a block by (order, migratetype), or -1 where the pcp is bypassed (orders
# without a list, Isolate pageblocks); freed HighAtomic blocks go to the Movable list.
_PCP_LIST = tuple(tuple(order_to_pindex(mt if mt < MIGRATE_PCPTYPES else MIGRATE_MOVABLE, o)
                        if pcp_allowed_order(o) and mt != MIGRATE_ISOLATE else -1 for mt in range(5))
                  for o in range(NR_PAGE_ORDERS))


def _tail_stretch(lst: deque, limit: int) -> tuple[int, int]:
    """How many pages, at most limit, the tail of a pcp list holds as consecutive pfns in
    popping order, and their direction (+1 ascending, -1 descending; 0 for one page)."""
    it = reversed(lst)
    p = next(it)
    m, step = 1, 0
    for q in it:
        if m >= limit:
            break
        if not step:
            if q == p - 1 or q == p + 1:
                step = q - p
            else:
                break
        elif q != p + step * m:
            break
        m += 1
    return m, step


def _trace_drains(z: Zone, pfns: range) -> None:
    """mm_page_pcpu_drain of each page free_pcppages_bulk() pops, in popping order, with its
    pageblock's migratetype (free_one_page() of the pages before does not change it): one
    emit_pfns() per pageblock the range crosses."""
    tr = z.trace
    if not tr.enabled["mm_page_pcpu_drain"] or not pfns:
        return
    if pfns.step > 0:
        for s, e in pageblock_ranges(pfns[0], pfns[-1] + 1):
            tr.emit_pfns("mm_page_pcpu_drain", tr.cpu, range(s, e), 0, z.get_pageblock_migratetype(s))
    else:
        for s, e in pageblock_ranges(pfns[-1], pfns[0] + 1, True):
            tr.emit_pfns("mm_page_pcpu_drain", tr.cpu, range(e - 1, s - 1, -1), 0, z.get_pageblock_migratetype(s))


def _pcp_free_headroom(pcp: PerCpuPages, z: Zone) -> int:
    """How many more pages freed onto pcp leave pcp->high as it is and free no batch: in
    free_frozen_page_commit(), _nr_pcp_high() returns pcp->high untouched while the zone is
    not below its high mark (ZONE_BELOW_HIGH) and high is within [high_min, high_max], and
    nothing is flushed while count stays under high.  0 or less: the next free re-tunes.
    free_pages() and the runs path (_free_stretch) both ask this rule."""
    high = pcp.high
    if z.below_high or not pcp.high_min <= high <= pcp.high_max:
        return 0
    return high - pcp.count - 1


def _add_run(out: list, z: Zone, pfn: int, n: int) -> None:
    """Append pages pfn..pfn+n-1 of z to a run list, extending the last run when they follow it."""
    if out:
        last = out[-1]
        if last[0] is z and last[1] + last[2] == pfn:
            last[2] += n
            return
    out.append([z, pfn, n])


def _push(head: deque, lo: int, hi: int, desc: bool) -> None:
    """Pages lo..hi-1 freed (in ``desc`` order) onto a list head kept as runs."""
    if head:
        r = head[-1]
        if r[2] == desc and (r[0] == hi if desc else r[1] == lo):
            if desc:
                r[0] = lo
            else:
                r[1] = hi
            return
    head.append([lo, hi, desc])


_NO_ZONE = object()                          # _pcp_walk(): no zone passes its watermark
_PGALLOC = ("pgalloc_dma", "pgalloc_dma32", "pgalloc_normal", "pgalloc_movable", "pgalloc_device")
