"""Memory compaction (mm/compaction.c): move movable allocations out of the way so free
pages merge into high-order blocks.

Two scanners walk a zone from both ends, a pageblock at a time, as ``compact_zone()`` does:
the **migrate scanner** (``isolate_migratepages``) from the zone's start upward isolates
movable allocations -- only user memory made with a movable gfp moves (``page_movable``);
unmovable and reclaimable allocations, slab and other kernel pages pin their pageblocks -- and the
**free scanner** (``isolate_freepages``) from the end downward takes free blocks out of the
buddy lists of MOVABLE pageblocks.  ``migrate_pages()`` (procsim/mm/migrate.py) then copies
each isolated allocation into a free block: its ID (procsim/mm/task.py) names the new pfns,
the old block is freed as the kernel frees a migrated folio (through the cpu's pcp list,
drained when the migrate scanner leaves a ``cc.order``-aligned block).  The run ends when the
scanners meet (COMPACT_COMPLETE) or, for an allocation, when ``__compact_finished()`` sees a
free block of the order it needs (COMPACT_SUCCESS).

Who compacts, as in the kernel:

* the allocation slow path (``_alloc_pages_direct_compact``, ``try_to_compact_pages``), for
  orders above 0, with deferral (``compaction_deferred`` / ``defer_compaction`` /
  ``compaction_defer_reset``: after a failed sync run a zone skips the next 2^shift tries);
* ``kcompactd``, one per node on the simulated clock: woken by kswapd after it was asked for
  a high order (``wakeup_kcompactd``), and every HPAGE_FRAG_CHECK_INTERVAL_MSEC for proactive
  compaction while the node's fragmentation score is above ``vm.compaction_proactiveness``'s
  high mark;
* ``compact_nodes()`` / ``compact_node(nid)``: ``vm.compact_memory`` and the per-node
  ``compact`` file, a full sync run of every zone (order -1).

Cost: the scanners step over a free block or an allocated block in one step, so a run
costs O(pageblocks scanned), never O(zone size) (only pfns that are neither -- per-cpu list
pages, reserved memory -- are stepped one by one, as the kernel's loop does).

Skip hints (PB_migrate_skip), fast_isolate_freepages / fast_find_migrateblock (which only
pick where to start), capture_control and lock contention are not modelled.
"""
from __future__ import annotations

import errno
from bisect import bisect_right

from . import gfp as G
from .buddy import Page, MIGRATE_MOVABLE, MAX_PAGE_ORDER, NR_PAGE_ORDERS, PAGE_ALLOC_COSTLY_ORDER
from .errors import MMError
from .layout import MAX_NR_ZONES
from .page_types import PAGEBLOCK_ORDER, PAGEBLOCK_NR_PAGES, pageblock_aligned, pageblock_start_pfn
from .vmstat import KCOMPACTD_INTERVAL

# enum compact_result (include/linux/compaction.h), in its order: try_to_compact_pages keeps the max
(COMPACT_NOT_SUITABLE_ZONE, COMPACT_SKIPPED, COMPACT_DEFERRED, COMPACT_NO_SUITABLE_PAGE, COMPACT_CONTINUE,
 COMPACT_COMPLETE, COMPACT_PARTIAL_SKIPPED, COMPACT_CONTENDED, COMPACT_SUCCESS) = range(9)
# enum compact_priority
COMPACT_PRIO_SYNC_FULL, COMPACT_PRIO_SYNC_LIGHT, COMPACT_PRIO_ASYNC = range(3)
MIN_COMPACT_PRIORITY = COMPACT_PRIO_SYNC_FULL
MIN_COMPACT_COSTLY_PRIORITY = COMPACT_PRIO_SYNC_LIGHT
INIT_COMPACT_PRIORITY = COMPACT_PRIO_ASYNC
# enum migrate_mode
MIGRATE_ASYNC, MIGRATE_SYNC_LIGHT, MIGRATE_SYNC = range(3)

COMPACT_MAX_DEFER_SHIFT = 6
COMPACT_CLUSTER_MAX = 32                      # SWAP_CLUSTER_MAX: pages isolated per migrate batch
COMPACTION_HPAGE_ORDER = PAGEBLOCK_ORDER      # HPAGE_PMD_ORDER on x86-64
SYSCTL_EXTFRAG_THRESHOLD = 500                # vm.extfrag_threshold default
_ALLOC_CMA = G.ALLOC_CMA
_GFP_IO = G.__GFP_IO


def compact_gap(order: int) -> int:
    """compact_gap(): free pages compaction wants beyond the watermark (2 << order)."""
    return 2 << order


# ---- fragmentation (mm/vmstat.c) ------------------------------------------------------------
def fill_contig_page_info(z, suitable_order: int) -> tuple[int, int, int]:
    """fill_contig_page_info(): (free_pages, free_blocks_total, free_blocks_suitable), the
    last counted in blocks of suitable_order."""
    free_pages = total = suitable = 0
    for order in range(NR_PAGE_ORDERS):
        blocks = z.nr_free_order(order)
        total += blocks
        free_pages += blocks << order
        if order >= suitable_order:
            suitable += blocks << (order - suitable_order)
    return free_pages, total, suitable


def unusable_free_index(order: int, info) -> int:
    """unusable_free_index(): thousandths of the free memory unusable for this order."""
    free_pages, _, suitable = info
    if not free_pages:
        return 1000
    return (free_pages - (suitable << order)) * 1000 // free_pages


def fragmentation_index_info(order: int, info) -> int:
    """__fragmentation_index(): -1000 when the request would succeed, else towards 0 for
    lack of memory and towards 1000 for fragmentation."""
    free_pages, total, suitable = info
    if not total:
        return 0
    if suitable:
        return -1000
    return 1000 - (1000 + free_pages * 1000 // (1 << order)) // total


def fragmentation_index(z, order: int) -> int:
    return fragmentation_index_info(order, fill_contig_page_info(z, order))


def extfrag_for_order(z, order: int) -> int:
    """extfrag_for_order(): percent of free pages not in blocks of at least order."""
    free_pages, _, suitable = fill_contig_page_info(z, order)
    if not free_pages:
        return 0
    return (free_pages - (suitable << order)) * 100 // free_pages


LRU_USES = ("anon", "pagecache")


def page_movable(page) -> bool:
    """PageLRU() / __PageMovable(): what migration can move -- user memory made with a
    movable gfp: the boot workload's anon and page cache, and the control file's page
    allocations (they have an ID).  Slab pages, large kmalloc, kernel stacks, page tables,
    percpu and vmalloc pages never move, whatever their gfp said."""
    if page.migratetype != MIGRATE_MOVABLE:
        return False
    return page.use in LRU_USES or (page.use is None and page.owner is not None)   # (PINNED: LRU pages only)


def _reserved_end(z, pfn: int, end: int) -> int:
    """pfn is neither free nor allocated: when it is outside every range the zone gave the
    buddy allocator (memblock reservations such as the memmap, holes), where that stretch
    ends (at most end); else pfn + 1."""
    ranges = z._free_ranges
    gaps = z.compaction_gaps
    if gaps is None or gaps[0] is not ranges:
        gaps = z.compaction_gaps = (ranges, [r[0] for r in ranges], [r[1] for r in ranges])
    _, starts, ends = gaps
    j = bisect_right(starts, pfn) - 1
    if j >= 0 and pfn < ends[j]:
        return pfn + 1                           # buddy memory: one pfn (a tail, isolated, ...)
    return min(starts[j + 1] if j + 1 < len(starts) else end, end)


def run_movable(b) -> bool:
    """page_movable() of every member of page batch b (one gfp, one use, each with an ID)."""
    return b.mt == MIGRATE_MOVABLE and (b.use in LRU_USES or b.use is None)


def _no_runs(pfn):
    return None


_no_runs.span = _no_runs


def skip_isolation_on_order(order: int, target_order: int) -> bool:
    """skip_isolation_on_order(): blocks of pageblock order or more never move, nor (except
    for compact_memory) blocks as large as the order being compacted for."""
    return (target_order >= 0 and order >= target_order) or order >= PAGEBLOCK_ORDER


class CompactControl:
    """struct compact_control: one compaction run of one zone."""
    __slots__ = ("zone", "order", "migratetype", "mode", "direct", "whole_zone", "highest", "alloc_flags",
                 "proactive", "migrate_pfn", "free_pfn", "migratepages", "nr_migratepages", "freepages",
                 "nr_freepages", "total_migrate_scanned", "total_free_scanned", "cpu", "run_page")

    def __init__(self, zone, order, mode, direct, highest=MAX_NR_ZONES - 1, alloc_flags=0,
                 migratetype=MIGRATE_MOVABLE, whole_zone=False, proactive=False, cpu=0):
        self.zone, self.order, self.mode, self.direct = zone, order, mode, direct
        self.highest, self.alloc_flags, self.migratetype = highest, alloc_flags, migratetype
        self.whole_zone, self.proactive, self.cpu = whole_zone, proactive, cpu
        self.migrate_pfn = self.free_pfn = 0
        self.migratepages: list[Page] = []
        self.nr_migratepages = 0
        self.freepages = [[] for _ in range(NR_PAGE_ORDERS)]     # isolated free blocks by order
        self.nr_freepages = 0
        self.total_migrate_scanned = self.total_free_scanned = 0
        self.run_page = None                     # pfn -> Page of an allocation kept as runs (Tasks)


class Compaction:
    """Kernel mixin: direct compaction, kcompactd, compact_memory."""

    def _init_compaction(self):
        """The zones' compaction state (struct zone's compact_* fields) and each node's kcompactd."""
        proactiveness = self.profile.compaction_proactiveness      # None: the version has none
        self.sysctl_compaction_proactiveness = proactiveness or 0
        self.sysctl_extfrag_threshold = SYSCTL_EXTFRAG_THRESHOLD
        self._compaction_suitable = {"6.18": self._compaction_suitable_6_18, "4.9": self._compaction_suitable_4_9,
                                     "3.10": self._compaction_suitable_3_10}[self.profile.compaction_suitable]
        self.last_compact_result = COMPACT_SKIPPED      # of the last direct compaction (the slow path reads it)
        for z in self.zones:
            z.compact_considered = z.compact_defer_shift = z.compact_order_failed = 0
            self.reset_cached_positions(z)
        self._kcompactd_idle = {}
        for pgdat in self.nodes:
            pgdat.kcompactd_max_order = 0
            pgdat.kcompactd_highest_zoneidx = MAX_NR_ZONES - 1
            if pgdat.has_memory and proactiveness is not None:
                self._kcompactd_idle[pgdat.id] = False
                self.queue_delayed_work(("kcompactd", pgdat.id), KCOMPACTD_INTERVAL, self.kcompactd, pgdat.id)

    def count_vm_events(self, item: str, n: int = 1):
        """count_vm_events() for an event the allocator does not drive on every call: the key
        appears on first use, so a machine that never compacts keeps its state digest."""
        if n:
            ev = self.vm_events
            ev[item] = ev.get(item, 0) + n

    @staticmethod
    def reset_cached_positions(z):
        """reset_cached_positions(): the next run starts at both ends of the zone."""
        z.compact_cached_migrate_pfn = [z.start_pfn, z.start_pfn]
        z.compact_cached_free_pfn = pageblock_start_pfn(z.end_pfn - 1) if z.spanned else z.start_pfn

    # ---- deferral -----------------------------------------------------------------------
    @staticmethod
    def compaction_deferred(z, order: int) -> bool:
        """compaction_deferred(): after failures, skip until 2^compact_defer_shift tries passed."""
        limit = 1 << z.compact_defer_shift
        if order < z.compact_order_failed:
            return False
        z.compact_considered += 1
        if z.compact_considered >= limit:
            z.compact_considered = limit
            return False
        return True

    @staticmethod
    def defer_compaction(z, order: int):
        z.compact_considered = 0
        z.compact_defer_shift = min(z.compact_defer_shift + 1, COMPACT_MAX_DEFER_SHIFT)
        if order < z.compact_order_failed:
            z.compact_order_failed = order

    @staticmethod
    def compaction_defer_reset(z, order: int, alloc_success: bool):
        if alloc_success:
            z.compact_considered = z.compact_defer_shift = 0
        if order >= z.compact_order_failed:
            z.compact_order_failed = order + 1

    # ---- suitability ----------------------------------------------------------------------
    def compaction_suitable(self, z, order: int, watermark: int, highest: int) -> bool:
        """compaction_suitable() by the rule of the profile's version (bound at boot in
        _init_compaction): would compaction run (COMPACT_CONTINUE)?"""
        return self._compaction_suitable(z, order, watermark, highest) == COMPACT_CONTINUE

    def _compaction_suitable_6_18(self, z, order, watermark, highest) -> int:
        """6.18: enough order-0 pages above the caller's watermark plus compact_gap() to
        migrate into, and, for costly orders, a failure that is fragmentation's fault
        (fragmentation_index above vm.extfrag_threshold) rather than lack of memory."""
        if not self._watermark_ok(z, 0, watermark + compact_gap(order), highest, _ALLOC_CMA):
            return COMPACT_SKIPPED
        if order > PAGE_ALLOC_COSTLY_ORDER:
            fragindex = fragmentation_index(z, order)
            if 0 <= fragindex <= self.sysctl_extfrag_threshold:
                return COMPACT_SKIPPED
        return COMPACT_CONTINUE

    def _compaction_suitable_4_9(self, z, order, watermark, highest) -> int:
        """4.9 to 6.5 (5.4, 6.1) __compaction_suitable(): the order-0 check is against the low
        watermark for costly orders and the min watermark otherwise, whatever the caller's
        alloc_flags (commit 8348faf91f56), plus compact_gap(); the fragindex test for
        costly orders as in 6.18."""
        mark = z.wmark_low if order > PAGE_ALLOC_COSTLY_ORDER else z.wmark_min
        return self._compaction_suitable_6_18(z, order, mark, highest)

    def _compaction_suitable_3_10(self, z, order, watermark, highest) -> int:
        """3.10: the low watermark plus 2 << order at order 0 for classzone 0, then the
        fragindex test for every order; a fragindex of -1000 (a free block of the order
        exists) that passes the order's watermark is COMPACT_PARTIAL: the allocation would
        succeed without compaction."""
        mark = z.wmark_low + compact_gap(order)
        if not self._watermark_ok(z, 0, mark, 0, 0):
            return COMPACT_SKIPPED
        fragindex = fragmentation_index(z, order)
        if 0 <= fragindex <= self.sysctl_extfrag_threshold:
            return COMPACT_SKIPPED
        if fragindex == -1000 and self._watermark_ok(z, order, mark, 0, 0):
            return COMPACT_SUCCESS
        return COMPACT_CONTINUE

    def compaction_suit_allocation_order(self, z, order, highest, alloc_flags, kcompactd=False) -> int:
        """COMPACT_SUCCESS when the order's watermark already passes, COMPACT_SKIPPED when
        compaction cannot help, else COMPACT_CONTINUE."""
        watermark = z.wmark(alloc_flags & G.ALLOC_WMARK_MASK)
        if self._watermark_ok(z, order, watermark, highest, alloc_flags):
            return COMPACT_SUCCESS
        return self._compaction_suitable(z, order, watermark, highest)

    # ---- the scanners -----------------------------------------------------------------------
    @staticmethod
    def _buddy_order(z, pfn: int) -> int:
        """PageBuddy(page) ? buddy_order(page) : -1, the boot runs of order-10 blocks included."""
        o = z._free.get(pfn)
        if o is not None:
            return o
        if not pfn & ((1 << MAX_PAGE_ORDER) - 1):
            for runs in z._runs:
                for start, count in runs:
                    if start <= pfn < start + (count << MAX_PAGE_ORDER):
                        return MAX_PAGE_ORDER
        return -1

    def _inside_free_block(self, z, start: int) -> bool:
        """The pageblock at start is the upper half of a free max-order block: no page of it
        is a buddy head (the kernel's loops visit each of its pfns and find nothing), so
        the scanners count it scanned in one step."""
        head = start & ~((1 << MAX_PAGE_ORDER) - 1)
        return head != start and self._buddy_order(z, head) == MAX_PAGE_ORDER

    def isolate_migratepages(self, cc) -> bool:
        """isolate_migratepages(): from cc.migrate_pfn, the next pageblock that is a suitable
        source (async direct compaction: only blocks of the request's kind), then
        isolate_migratepages_block() on it.  True when pages were isolated."""
        z = cc.zone
        low = cc.migrate_pfn
        block_start = max(pageblock_start_pfn(low), z.start_pfn)
        block_end = pageblock_start_pfn(low) + PAGEBLOCK_NR_PAGES
        while block_end <= cc.free_pfn:
            block_end = min(block_end, z.end_pfn)
            if cc.mode == MIGRATE_ASYNC and cc.direct:
                mt = z.get_pageblock_migratetype(block_start)
                ok = mt == MIGRATE_MOVABLE if cc.migratetype == MIGRATE_MOVABLE else mt == cc.migratetype
                if not ok:
                    self._update_cached_migrate(cc, block_end)
                    low = cc.migrate_pfn = block_start = block_end
                    block_end = block_start + PAGEBLOCK_NR_PAGES
                    continue
            self._isolate_migratepages_block(cc, low, block_end)
            break
        else:
            cc.migrate_pfn = low
        return cc.nr_migratepages > 0

    def _isolate_migratepages_block(self, cc, low: int, end: int):
        """isolate_migratepages_block(): step over free and pinned blocks, isolate movable
        allocations until COMPACT_CLUSTER_MAX pages are isolated; cc.migrate_pfn says where
        it stopped."""
        z = cc.zone
        free, allocated = z._free, z.allocated
        scanned = isolated = 0
        pfn = low
        if pageblock_aligned(pfn) and self._inside_free_block(z, pfn):
            scanned, pfn = end - pfn, end
        while pfn < end:
            page = allocated.get(pfn)
            if page is None and pfn not in free:     # order-0 bulk work is kept as runs
                if cc.run_page is None:
                    cc.run_page = self.tasks.run_page_finder(z)
                sp = cc.run_page.span(pfn)
                if sp is not None and (not run_movable(sp[1]) or skip_isolation_on_order(sp[1].what, cc.order)):
                    stop = min(sp[0], end)           # each block of it scanned, none isolated
                    scanned += stop - pfn
                    pfn = stop
                    continue
                page = cc.run_page(pfn)
            if page is not None:
                n = 1 << page.order
                scanned += min(n, end - pfn)
                if page_movable(page) and not skip_isolation_on_order(page.order, cc.order):
                    cc.migratepages.append(page)
                    isolated += n
                    cc.nr_migratepages += n
                    pfn += n
                    if cc.nr_migratepages >= COMPACT_CLUSTER_MAX:
                        break
                    continue
                pfn += n
                continue
            o = free.get(pfn)
            if o is None and not pfn & ((1 << MAX_PAGE_ORDER) - 1):
                o = self._buddy_order(z, pfn)
                o = None if o < 0 else o
            if o is not None:
                n = 1 << o
                scanned += min(n, end - pfn)
                pfn += n
            else:
                stop = _reserved_end(z, pfn, end)   # memblock-reserved or a hole: never free
                scanned += stop - pfn               # nor allocated, each pfn scanned in turn
                pfn = stop
        pfn = min(pfn, end)
        cc.total_migrate_scanned += scanned
        self.count_vm_events("compact_isolated", isolated)
        if pfn == end and not isolated:
            self._update_cached_migrate(cc, end)
        cc.migrate_pfn = pfn

    @staticmethod
    def _update_cached_migrate(cc, pfn: int):
        z = cc.zone
        if pfn > z.compact_cached_migrate_pfn[0]:
            z.compact_cached_migrate_pfn[0] = pfn
        if cc.mode != MIGRATE_ASYNC and pfn > z.compact_cached_migrate_pfn[1]:
            z.compact_cached_migrate_pfn[1] = pfn

    def isolate_freepages(self, cc):
        """isolate_freepages(): from cc.free_pfn down to the block after the migrate scanner,
        take free blocks out of MOVABLE pageblocks (whose first page is not already a free
        block of the wanted order) until as many pages are isolated as are to be migrated.
        Async runs scan sparsely (stride) until a block yields something."""
        z = cc.zone
        block_start = pageblock_start_pfn(cc.free_pfn)
        block_end = min(block_start + PAGEBLOCK_NR_PAGES, z.end_pfn)
        isolate_start = cc.free_pfn
        low = pageblock_start_pfn(cc.migrate_pfn) + PAGEBLOCK_NR_PAGES
        # Async runs start with a sparse stride (COMPACT_CLUSTER_MAX) in the kernel, right
        # after fast_isolate_freepages() took free pages off the free lists; without that
        # first step a stride of 32 misses every other-pfn free page, so every run here
        # scans densely (stride 1), as sync runs do.
        stride = 1
        want = cc.order if cc.order > 0 else PAGEBLOCK_ORDER
        while block_start >= low:
            first = max(block_start, z.start_pfn)
            if self._inside_free_block(z, first):
                cc.total_free_scanned += block_end - max(isolate_start, first)
            elif self._buddy_order(z, first) < want and z.get_pageblock_migratetype(first) == MIGRATE_MOVABLE:
                isolate_start, _ = self._isolate_freepages_block(cc, max(isolate_start, first), block_end, stride)
                if isolate_start == block_end and block_start < z.compact_cached_free_pfn:
                    z.compact_cached_free_pfn = block_start      # update_pageblock_skip()
                if cc.nr_freepages >= cc.nr_migratepages:
                    if isolate_start >= block_end:
                        isolate_start = block_start - PAGEBLOCK_NR_PAGES
                    break
            block_end = block_start
            block_start -= PAGEBLOCK_NR_PAGES
            isolate_start = block_start
        cc.free_pfn = isolate_start

    def _isolate_freepages_block(self, cc, pfn: int, end: int, stride: int) -> tuple[int, int]:
        """isolate_freepages_block(): take each free block (__isolate_free_page: only while the
        zone keeps its min mark + the block), step over allocated ones; stop as soon as
        enough pages are isolated.  Returns (where it stopped, pages isolated)."""
        z = cc.zone
        free, allocated = z._free, z.allocated
        scanned = total = 0
        mark = z._watermark[0]
        while pfn < end:
            scanned += 1
            page = allocated.get(pfn)
            if page is not None and page.order:
                if pfn + (1 << page.order) <= end:
                    scanned += (1 << page.order) - 1
                    pfn += 1 << page.order
                else:
                    pfn += stride
                continue
            o = free.get(pfn)
            if o is None:
                pfn += stride
                continue
            n = 1 << o
            if not self._watermark_ok(z, 0, mark + n, 0, _ALLOC_CMA):
                break
            mt = z.get_pageblock_migratetype(pfn)
            z._del(pfn, o, mt)
            z.account_freepages(-n, mt)
            cc.freepages[o].append(pfn)
            scanned += n - 1
            total += n
            cc.nr_freepages += n
            pfn += n
            if cc.nr_migratepages <= cc.nr_freepages:
                break
        cc.total_free_scanned += scanned
        self.count_vm_events("compact_isolated", total)
        return min(pfn, end), total

    def compaction_alloc(self, cc, order: int) -> int:
        """compaction_alloc(): the destination of a migrating block, the smallest isolated free
        block that fits, split (the rest back on cc.freepages); -1 when none is left even
        after one more isolate_freepages()."""
        for attempt in range(2):
            for q in range(order, NR_PAGE_ORDERS):
                if cc.freepages[q]:
                    pfn = cc.freepages[q].pop(0)
                    while q > order:
                        q -= 1
                        cc.freepages[q].insert(0, pfn + (1 << q))
                    cc.nr_freepages -= 1 << order
                    cc.nr_migratepages -= 1 << order
                    return pfn
            if attempt == 0:
                self.isolate_freepages(cc)
        return -1

    def release_freepages(self, cc) -> int:
        """release_free_list(): unused isolated free blocks go back through __free_pages();
        returns the highest pfn released (0 when none)."""
        z, high = cc.zone, 0
        for order in range(NR_PAGE_ORDERS):
            for pfn in cc.freepages[order]:
                page = Page()
                page.pfn, page.order, page.zone, page.migratetype = pfn, order, z, MIGRATE_MOVABLE
                page.cpu, page.use, page.owner = cc.cpu, None, None
                z.allocated[pfn] = page
                self._movable_used(z, pfn, order, +1)
                self.free_pages(page)
                high = max(high, pfn)
            cc.freepages[order] = []
        cc.nr_freepages = 0
        return high

    # ---- one zone -------------------------------------------------------------------------
    def compact_finished(self, cc) -> int:
        """__compact_finished(): scanners met, or (for an allocation) a free block the request
        could take exists once the migrate scanner is at a pageblock boundary; proactive runs
        stop below the low fragmentation-score mark."""
        z = cc.zone
        if (cc.free_pfn >> PAGEBLOCK_ORDER) <= (cc.migrate_pfn >> PAGEBLOCK_ORDER):
            self.reset_cached_positions(z)
            return COMPACT_COMPLETE if cc.whole_zone else COMPACT_PARTIAL_SKIPPED
        if cc.proactive:
            if self.kswapd_is_running(self.nodes[z.node]):
                return COMPACT_PARTIAL_SKIPPED
            score = self.fragmentation_score_zone(z)
            return COMPACT_CONTINUE if score > self.fragmentation_score_wmark(True) else COMPACT_SUCCESS
        if cc.order < 0:
            return COMPACT_CONTINUE
        if not pageblock_aligned(cc.migrate_pfn):
            return COMPACT_CONTINUE
        for order in range(cc.order, NR_PAGE_ORDERS):
            if z._nr[order][cc.migratetype] or (order == MAX_PAGE_ORDER and z._runs[cc.migratetype]):
                return COMPACT_SUCCESS
            if z.find_suitable_fallback(order, cc.migratetype, True) >= 0:
                return COMPACT_SUCCESS
        return COMPACT_CONTINUE                   # compact_finished(): NO_SUITABLE_PAGE goes on

    def compact_zone(self, cc) -> int:
        """compact_zone(): check the zone is worth it, start both scanners (cached positions,
        or the whole zone), then isolate-and-migrate until compact_finished() says stop."""
        z = cc.zone
        if cc.order >= 0:
            ret = self.compaction_suit_allocation_order(z, cc.order, cc.highest, cc.alloc_flags, not cc.direct)
            if ret != COMPACT_CONTINUE:
                return ret
        sync = cc.mode != MIGRATE_ASYNC
        if cc.whole_zone:
            cc.migrate_pfn = z.start_pfn
            cc.free_pfn = pageblock_start_pfn(z.end_pfn - 1)
        else:
            cc.migrate_pfn = z.compact_cached_migrate_pfn[sync]
            cc.free_pfn = z.compact_cached_free_pfn
            if not z.start_pfn <= cc.free_pfn < z.end_pfn:
                cc.free_pfn = z.compact_cached_free_pfn = pageblock_start_pfn(z.end_pfn - 1)
            if not z.start_pfn <= cc.migrate_pfn < z.end_pfn:
                cc.migrate_pfn = z.start_pfn
                z.compact_cached_migrate_pfn = [z.start_pfn, z.start_pfn]
            if cc.migrate_pfn <= z.start_pfn:
                cc.whole_zone = True
        last_migrated = 0
        from .migrate import migrate_pages
        while (ret := self.compact_finished(cc)) == COMPACT_CONTINUE:
            if self.isolate_migratepages(cc):
                last_migrated = max(z.start_pfn, pageblock_start_pfn(cc.migrate_pfn - 1))
                if migrate_pages(self, cc) == -errno.ENOMEM:
                    cc.migratepages, cc.nr_migratepages = [], 0
                    if (cc.free_pfn >> PAGEBLOCK_ORDER) > (cc.migrate_pfn >> PAGEBLOCK_ORDER):
                        ret = COMPACT_CONTENDED
                        break
            # drain the pages migration freed once the migrate scanner left their block, so
            # they merge and compact_finished() sees the result (lru_add_drain_cpu_zone)
            if cc.order > 0 and last_migrated and last_migrated < cc.migrate_pfn & ~((1 << cc.order) - 1):
                self._drain_local_zone(z, cc.cpu)
                last_migrated = 0
        free_pfn = self.release_freepages(cc)
        if free_pfn:
            free_pfn = pageblock_start_pfn(free_pfn)
            if free_pfn > z.compact_cached_free_pfn:
                z.compact_cached_free_pfn = free_pfn
        self.count_vm_events("compact_migrate_scanned", cc.total_migrate_scanned)
        self.count_vm_events("compact_free_scanned", cc.total_free_scanned)
        self.generation += 1
        return ret

    def _drain_local_zone(self, z, cpu: int):
        """drain_local_pages(zone): this cpu's pcp list of the zone back to the buddy."""
        pcp = z.pcp[cpu]
        if pcp.count:
            self._free_pcppages_bulk(z, pcp.count, pcp, 0)

    # ---- direct compaction ------------------------------------------------------------------
    def try_to_compact_pages(self, gfp: int, order: int, flags: int, plan, prio: int, cpu: int) -> int:
        """try_to_compact_pages(): compact each zone of the zonelist (not deferred ones, unless
        at the highest priority) until one succeeds; defer zones a sync run could not help."""
        if not gfp & _GFP_IO:
            return COMPACT_SKIPPED
        highest = G.gfp_zone(gfp)
        rc = COMPACT_SKIPPED
        for z in plan.zonelist:
            if z.idx > highest:
                continue
            if prio > MIN_COMPACT_PRIORITY and self.compaction_deferred(z, order):
                rc = max(rc, COMPACT_DEFERRED)
                continue
            cc = CompactControl(z, order, MIGRATE_ASYNC if prio == COMPACT_PRIO_ASYNC else MIGRATE_SYNC_LIGHT,
                                True, highest, flags, plan.mt, whole_zone=prio == MIN_COMPACT_PRIORITY, cpu=cpu)
            status = self.compact_zone(cc)
            rc = max(rc, status)
            if status == COMPACT_SUCCESS:
                self.compaction_defer_reset(z, order, False)
                break
            if prio != COMPACT_PRIO_ASYNC and status in (COMPACT_COMPLETE, COMPACT_PARTIAL_SKIPPED):
                self.defer_compaction(z, order)
        return rc

    def _alloc_pages_direct_compact(self, gfp: int, order: int, flags: int, plan, cpu: int,
                                    prio: int = INIT_COMPACT_PRIORITY):
        """__alloc_pages_direct_compact(): compact, then try the free lists again
        (compact_stall, then compact_success or compact_fail)."""
        if not order:
            return None
        self.last_compact_result = rc = self.try_to_compact_pages(gfp, order, flags, plan, prio, cpu)
        if rc == COMPACT_SKIPPED:
            return None
        self.count_vm_events("compact_stall")
        page = self._get_page_from_freelist(plan.zonelist, order, flags & ~G.ALLOC_NO_WATERMARKS, plan.mt, cpu)
        if page is not None:
            self.compaction_defer_reset(page.zone, order, True)
            self.count_vm_events("compact_success")
            return page
        self.count_vm_events("compact_fail")
        return None

    # ---- compact_memory, the per-node compact file ----------------------------------------
    def compact_node(self, nid: int, proactive: bool = False) -> None:
        """compact_node(): a full sync run of every populated zone of the node (order -1)."""
        if not 0 <= nid < len(self.nodes):
            raise MMError(errno.EINVAL, f"node {nid} does not exist (nodes 0..{len(self.nodes) - 1})")
        pgdat = self.nodes[nid]
        cpu = pgdat.cpus[0] if pgdat.cpus else 0
        for z in pgdat.zones:
            if not z.populated:
                continue
            cc = CompactControl(z, -1, MIGRATE_SYNC_LIGHT, False, whole_zone=True, proactive=proactive, cpu=cpu)
            self.compact_zone(cc)
            if proactive:
                self.count_vm_events("compact_daemon_migrate_scanned", cc.total_migrate_scanned)
                self.count_vm_events("compact_daemon_free_scanned", cc.total_free_scanned)

    def compact_nodes(self) -> None:
        """compact_nodes(): vm.compact_memory -- every node in turn."""
        for nid in range(len(self.nodes)):
            self.compact_node(nid)

    # ---- kcompactd ----------------------------------------------------------------------------
    def fragmentation_score_wmark(self, low: bool) -> int:
        """fragmentation_score_wmark(): max(100 - proactiveness, 5), the high mark 10 above."""
        wmark_low = max(100 - self.sysctl_compaction_proactiveness, 5)
        return wmark_low if low else min(wmark_low + 10, 100)

    @staticmethod
    def fragmentation_score_zone(z) -> int:
        """fragmentation_score_zone(): the zone's extfrag at the huge page order."""
        return extfrag_for_order(z, COMPACTION_HPAGE_ORDER)

    def fragmentation_score_node(self, pgdat) -> int:
        """fragmentation_score_node(): the zones' scores weighted by their share of the
        node's present pages (fragmentation_score_zone_weighted())."""
        present = sum(z.present for z in pgdat.zones)
        return sum(self.fragmentation_score_zone(z) * z.present // (present + 1) for z in pgdat.zones if z.populated)

    def should_proactive_compact_node(self, pgdat) -> bool:
        if not self.sysctl_compaction_proactiveness or self.kswapd_is_running(pgdat):
            return False
        wmark_high = self.fragmentation_score_wmark(False)
        return self.fragmentation_score_node(pgdat) > wmark_high

    def kcompactd_node_suitable(self, pgdat) -> bool:
        highest = pgdat.kcompactd_highest_zoneidx
        for z in pgdat.zones[:highest + 1]:
            if z.populated and self.compaction_suit_allocation_order(
                    z, pgdat.kcompactd_max_order, highest, G.ALLOC_WMARK_MIN, True) == COMPACT_CONTINUE:
                return True
        return False

    def wakeup_kcompactd(self, pgdat, order: int, highest: int):
        """wakeup_kcompactd(): remember the order and zone, and wake the node's kcompactd if
        some zone is worth compacting for it (it runs when the clock next moves)."""
        if not order:
            return
        pgdat.kcompactd_max_order = max(pgdat.kcompactd_max_order, order)
        pgdat.kcompactd_highest_zoneidx = min(pgdat.kcompactd_highest_zoneidx, highest)
        if not self.kcompactd_node_suitable(pgdat):
            return
        self.queue_delayed_work(("kcompactd_wake", pgdat.id), 0, self.kcompactd_do_work, pgdat.id)

    def kcompactd_do_work(self, nid: int):
        """kcompactd_do_work(): a sync-light run for the order kswapd was asked for, per zone
        not deferred and worth it; a run that could not help drains the pcp lists and defers."""
        pgdat = self.nodes[nid]
        order, highest = pgdat.kcompactd_max_order, pgdat.kcompactd_highest_zoneidx
        self.count_vm_events("compact_daemon_wake")
        cpu = pgdat.cpus[0] if pgdat.cpus else 0
        for z in pgdat.zones[:highest + 1]:
            if not z.populated or self.compaction_deferred(z, order):
                continue
            if self.compaction_suit_allocation_order(z, order, z.idx, G.ALLOC_WMARK_MIN, True) != COMPACT_CONTINUE:
                continue
            cc = CompactControl(z, order, MIGRATE_SYNC_LIGHT, False, highest, cpu=cpu)
            status = self.compact_zone(cc)
            if status == COMPACT_SUCCESS:
                self.compaction_defer_reset(z, order, False)
            elif status in (COMPACT_PARTIAL_SKIPPED, COMPACT_COMPLETE):
                self.drain_all_pages()
                self.defer_compaction(z, order)
            self.count_vm_events("compact_daemon_migrate_scanned", cc.total_migrate_scanned)
            self.count_vm_events("compact_daemon_free_scanned", cc.total_free_scanned)
        if pgdat.kcompactd_max_order <= order:
            pgdat.kcompactd_max_order = 0
        if pgdat.kcompactd_highest_zoneidx >= highest:
            pgdat.kcompactd_highest_zoneidx = MAX_NR_ZONES - 1
        self.generation += 1

    def kcompactd(self, nid: int):
        """kcompactd's timeout (HPAGE_FRAG_CHECK_INTERVAL_MSEC): proactive compaction while the
        node's fragmentation score is above the high mark; no progress defers the next
        check 2^COMPACT_MAX_DEFER_SHIFT intervals.  A check that finds nothing to do is idle
        (the vmstat shepherd may skip idle checks over a long sleep: same bytes)."""
        pgdat = self.nodes[nid]
        delay = KCOMPACTD_INTERVAL
        idle = True
        if self.should_proactive_compact_node(pgdat):
            idle = False
            prev = self.fragmentation_score_node(pgdat)
            self.compact_node(nid, proactive=True)
            if self.fragmentation_score_node(pgdat) >= prev:
                delay = KCOMPACTD_INTERVAL << COMPACT_MAX_DEFER_SHIFT
        self._kcompactd_idle[nid] = idle
        self.queue_delayed_work(("kcompactd", nid), delay, self.kcompactd, nid)

    def kcompactd_idle(self, key) -> bool:
        """For the shepherd's fast-forward: the periodic check of this node found nothing."""
        return self._kcompactd_idle.get(key[1], False)

