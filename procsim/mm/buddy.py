"""The zone: free_area[order][migratetype], pageblocks, per-cpu page lists (mm/page_alloc.c).

Free lists are doubly linked lists of pfns kept in two dicts per zone, so taking the list
head, adding at head or tail and unlinking a merging buddy are all O(1), as in the kernel.
The long untouched stretch of max-order blocks that boot leaves on the Movable order-10
list is kept as runs ``[start_pfn, count]`` at the list's tail, so a 4 TiB machine starts
with a handful of entries instead of a million.  Nothing here is per page.
"""
from __future__ import annotations

from collections import deque

from .layout import ZONE_NAMES, ZoneLayout
from .trace import Trace
from .vmstat import ZONE_STAT_ITEMS, NUMA_STAT_ITEMS
from .page_types import PAGEBLOCK_ORDER, PAGEBLOCK_NR_PAGES, MAX_PAGE_ORDER, NR_PAGE_ORDERS  # noqa: F401
from .page_types import pageblock_start_pfn

MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_HIGHATOMIC, MIGRATE_ISOLATE = range(5)
MIGRATE_PCPTYPES = 3
MIGRATE_TYPES = 5
MIGRATETYPE_NAMES = ("Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate")
PAGE_ALLOC_COSTLY_ORDER = 3
PCP_BATCH_SCALE_MAX = 5
NR_LOWORDER_PCP_LISTS = MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1)
NR_PCP_LISTS = NR_LOWORDER_PCP_LISTS + 2
FALLBACKS = ((MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE),     # Unmovable
             (MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE),   # Movable
             (MIGRATE_UNMOVABLE, MIGRATE_MOVABLE))       # Reclaimable



def pcp_allowed_order(order: int) -> bool:
    return order <= PAGE_ALLOC_COSTLY_ORDER or order == PAGEBLOCK_ORDER


def order_to_pindex(mt: int, order: int) -> int:
    if order > PAGE_ALLOC_COSTLY_ORDER:
        return NR_LOWORDER_PCP_LISTS + (mt == MIGRATE_MOVABLE)
    return MIGRATE_PCPTYPES * order + mt


def pindex_to_order(pindex: int) -> int:
    return PAGEBLOCK_ORDER if pindex >= NR_LOWORDER_PCP_LISTS else pindex // MIGRATE_PCPTYPES


def migratetype_is_mergeable(mt: int) -> bool:
    return mt < MIGRATE_PCPTYPES


class Page:
    """One allocation: the head page of a 2^order block (a struct page pointer, in spirit).

    The allocator fills the fields one by one after ``Page()``: a class without ``__init__``
    is the cheapest object CPython makes, and one is made per allocation.
    """
    # ``owner``: the page's one reference to its identity record (docs/DESIGN.md): the task
    # batch it is member ``idx`` of, set by Tasks (migration moves it along, reclaim reads
    # it); None on the kernel's own pages; vmscan.PINNED on a user's LRU page the registry
    # has not named yet.  ``idx`` is set with a record, never read without one.
    __slots__ = ("pfn", "order", "zone", "migratetype", "cpu", "use", "owner", "idx")

    @property
    def id(self) -> int:
        """The control file's ID of the allocation, ``owner.first + idx``: 0 on the kernel's
        own pages, -1 (PINNED's) on a user's page not named yet."""
        o = self.owner
        return 0 if o is None else o.first + self.idx

    @property
    def node(self) -> int:
        return self.zone.node

    @property
    def nr_pages(self) -> int:
        return 1 << self.order

    def __repr__(self):
        return f"<Page pfn={self.pfn:#x} order={self.order} {self.zone}>"


class PerCpuPages:
    """struct per_cpu_pages: 14 lists (orders 0-3 x 3 types, THP movable/other)."""
    __slots__ = ("lists", "count", "high", "batch", "high_min", "high_max", "alloc_factor", "free_count",
                 "prev_free_high_order", "expire", "stat_diff")

    def __init__(self):
        self.lists = [deque() for _ in range(NR_PCP_LISTS)]
        self.count = self.high = self.alloc_factor = self.free_count = 0
        self.batch, self.high_min, self.high_max = 1, 0, 0
        self.prev_free_high_order = False
        self.expire = 0                          # vmstat intervals left before a remote pcp is drained
        # This cpu moved pages between the zone's free lists and itself since the vmstat
        # worker last looked: its per-cpu NR_FREE_PAGES diff is nonzero (need_update()).
        self.stat_diff = False


def largest_block(pfn: int, end: int) -> int:
    """The order of the largest naturally aligned block at pfn that ends by end (at most
    MAX_PAGE_ORDER): how memblock_free_all and free_reserved_area hand ranges over."""
    order = min(MAX_PAGE_ORDER, (pfn & -pfn).bit_length() - 1 if pfn else MAX_PAGE_ORDER)
    while pfn + (1 << order) > end:
        order -= 1
    return order


def _blocks_starting_in_holes(ram, order: int) -> list[int]:
    """Indexes of the 2^order blocks that hold RAM but whose first pfn is not RAM.

    memmap_init_range() marks a pageblock MIGRATE_MOVABLE when it initialises the block's
    first page as memory; a block starting in a hole (the DMA zone's pfn 0, or one cut by an
    e820-reserved range) keeps the zeroed bitmap's MIGRATE_UNMOVABLE (mm/mm_init.c, 6.1 and
    6.18 alike): real kernels show DMA as 1 Unmovable / 7 Movable."""
    out = []
    for s, _e in ram:
        b = s >> order
        if b << order != s and not any(rs <= b << order < re for rs, re in ram):
            out.append(b)
    return out


class Zone:
    """struct zone, with its free_area and pagesets."""

    trace = Trace()                              # the Kernel gives each zone its own (k.trace)

    def __init__(self, lay: ZoneLayout, nr_cpus: int, stat_items=ZONE_STAT_ITEMS, numa_items=NUMA_STAT_ITEMS):
        self.node, self.idx, self.name = lay.node, lay.idx, ZONE_NAMES[lay.idx]
        self.start_pfn, self.end_pfn = lay.start_pfn, lay.end_pfn
        self.spanned, self.present, self.managed = lay.spanned, lay.present, lay.managed
        self.valid_pageblocks = lay.valid_pageblocks
        self.cma = 0
        self.populated = self.present > 0
        self._watermark = [0, 0, 0, 0]          # min low high promo, boost excluded
        self.boost = 0
        self.lowmem_reserve = [0] * 5
        self.stat = dict.fromkeys(stat_items, 0)
        self.numa = dict.fromkeys(numa_items, 0)
        self.stat_threshold = 0
        self.below_high = False                  # ZONE_BELOW_HIGH
        self.compaction_gaps = None              # compaction.py: (ranges, starts, ends) of _free_ranges
        self.boosted_wmark = False               # ZONE_BOOSTED_WATERMARK: wake kswapd on the next rmqueue
        self.nr_free = 0                         # NR_FREE_PAGES
        self.nr_free_highatomic = 0
        self.nr_reserved_highatomic = 0
        self.pcp = [PerCpuPages() for _ in range(nr_cpus)]
        # free_area: the linked lists, their lengths, the order-10 tail runs
        self._free: dict[int, int] = {}          # pfn -> order, explicit free blocks
        self._nxt: dict[int, int] = {}
        self._prv: dict[int, int] = {}
        self._nr = [[0] * MIGRATE_TYPES for _ in range(NR_PAGE_ORDERS)]
        self._runs = [deque() for _ in range(MIGRATE_TYPES)]   # order-10 runs per type: [start, count]
        for o in range(NR_PAGE_ORDERS):
            for mt in range(MIGRATE_TYPES):
                s = _sentinel(o, mt)
                self._nxt[s] = self._prv[s] = s
        self._pb_base = self.start_pfn >> PAGEBLOCK_ORDER
        nblocks = ((self.end_pfn - 1) >> PAGEBLOCK_ORDER) - self._pb_base + 1 if self.spanned else 0
        self.pageblock_mt = bytearray([MIGRATE_MOVABLE]) * nblocks
        self._pb_counts = [0, self.valid_pageblocks, 0, 0, 0]
        for pb in _blocks_starting_in_holes(lay.ram, PAGEBLOCK_ORDER):
            self.set_pageblock_migratetype(pb << PAGEBLOCK_ORDER, MIGRATE_UNMOVABLE)
        self._pb_valid = None                    # pageblock indexes without RAM (rare: holes of whole sections)
        self.movable_used: dict[int, int] = {}  # pageblock index -> allocated movable pages
        self.allocated: dict[int, Page] = {}     # head pfn -> Page handed out (pcp pages excluded)
        self._free_ranges = lay.free
        self._late_ranges = lay.late

    def __repr__(self):
        return f"Node {self.node} {self.name}"

    # ---- watermarks (boost included, like wmark_pages()) ----------------------------------
    @property
    def wmark_min(self): return self._watermark[0] + self.boost
    @property
    def wmark_low(self): return self._watermark[1] + self.boost
    @property
    def wmark_high(self): return self._watermark[2] + self.boost
    @property
    def wmark_promo(self): return self._watermark[3] + self.boost

    def wmark(self, i: int) -> int:
        return self._watermark[i] + self.boost

    # ---- read-only views of free_area ----------------------------------------------------
    def free_count(self, order: int, mt: int) -> int:
        return self._nr[order][mt]

    def nr_free_order(self, order: int) -> int:
        return sum(self._nr[order])

    @property
    def nr_free_blocks(self) -> int:
        """NR_FREE_PAGES_BLOCKS: free pages in blocks of at least pageblock order."""
        return sum(sum(self._nr[o]) << o for o in range(PAGEBLOCK_ORDER, NR_PAGE_ORDERS))

    def pageblock_counts(self) -> list[int]:
        return list(self._pb_counts)

    def free_blocks(self):
        """Every free block as (pfn, order, migratetype), in list order: for invariant checks."""
        for o in range(NR_PAGE_ORDERS):
            for mt in range(MIGRATE_TYPES):
                s = _sentinel(o, mt)
                p = self._nxt[s]
                while p != s:
                    yield p, o, mt
                    p = self._nxt[p]
                if o == MAX_PAGE_ORDER:
                    for start, count in self._runs[mt]:
                        for i in range(count):
                            yield start + (i << MAX_PAGE_ORDER), o, mt

    def pcp_count(self) -> int:
        return sum(p.count for p in self.pcp)

    # ---- pageblock migratetype ------------------------------------------------------------
    def get_pageblock_migratetype(self, pfn: int) -> int:
        return self.pageblock_mt[(pfn >> PAGEBLOCK_ORDER) - self._pb_base]

    def set_pageblock_migratetype(self, pfn: int, mt: int):
        i = (pfn >> PAGEBLOCK_ORDER) - self._pb_base
        old = self.pageblock_mt[i]
        if old != mt:
            self.pageblock_mt[i] = mt
            self._pb_counts[old] -= 1
            self._pb_counts[mt] += 1

    def change_pageblock_range(self, pfn: int, order: int, mt: int):
        for b in range(max(1, (1 << order) // PAGEBLOCK_NR_PAGES)):
            self.set_pageblock_migratetype(pfn + b * PAGEBLOCK_NR_PAGES, mt)

    # ---- free lists -----------------------------------------------------------------------
    def _add(self, pfn: int, order: int, mt: int, tail: bool = False):
        s = -1 - order * MIGRATE_TYPES - mt      # _sentinel(), inline: the hottest helper at boot
        nxt, prv = self._nxt, self._prv
        if tail:
            last = prv[s]
            nxt[last] = pfn; prv[pfn] = last; nxt[pfn] = s; prv[s] = pfn
        else:
            first = nxt[s]
            nxt[s] = pfn; prv[pfn] = s; nxt[pfn] = first; prv[first] = pfn
        self._free[pfn] = order
        self._nr[order][mt] += 1

    def _del(self, pfn: int, order: int, mt: int):
        nxt, prv = self._nxt, self._prv
        p = prv.pop(pfn)
        n = nxt.pop(pfn)
        nxt[p] = n
        prv[n] = p
        del self._free[pfn]
        self._nr[order][mt] -= 1

    def _first(self, order: int, mt: int) -> int:
        """The list head's pfn, or -1 (get_page_from_free_area)."""
        s = -1 - order * MIGRATE_TYPES - mt      # _sentinel(), inline
        p = self._nxt[s]
        if p != s:
            return p
        if order == MAX_PAGE_ORDER and self._runs[mt]:
            return self._runs[mt][0][0]
        return -1

    def _take(self, pfn: int, order: int, mt: int):
        """Unlink a block found by _first (it may be the head of a run)."""
        if pfn in self._free:
            self._del(pfn, order, mt)
            return
        run = self._runs[mt][0]
        run[0] += 1 << MAX_PAGE_ORDER
        run[1] -= 1
        if not run[1]:
            self._runs[mt].popleft()
        self._nr[order][mt] -= 1

    def is_free_block(self, pfn: int, order: int) -> bool:
        return self._free.get(pfn) == order

    def account_freepages(self, nr: int, mt: int):
        if mt == MIGRATE_ISOLATE:
            return
        self.nr_free += nr
        if mt == MIGRATE_HIGHATOMIC:
            self.nr_free_highatomic += nr

    def seed(self):
        """memblock_free_all(): free every free range in the largest aligned blocks, to the tail."""
        total = 0
        for start, end in self._free_ranges:
            pfn = start
            while pfn < end:
                order = largest_block(pfn, end)
                mt = self.get_pageblock_migratetype(pfn)     # __free_pages_ok: the block's type
                if order == MAX_PAGE_ORDER and mt == MIGRATE_MOVABLE:
                    n = (end - pfn) >> MAX_PAGE_ORDER
                    runs = self._runs[MIGRATE_MOVABLE]
                    if runs and runs[-1][0] + (runs[-1][1] << MAX_PAGE_ORDER) == pfn:
                        runs[-1][1] += n
                    else:
                        runs.append([pfn, n])
                    self._nr[MAX_PAGE_ORDER][MIGRATE_MOVABLE] += n
                    pfn += n << MAX_PAGE_ORDER
                    total += n << MAX_PAGE_ORDER
                    continue
                self._add(pfn, order, mt, tail=True)
                pfn += 1 << order
                total += 1 << order
        self.nr_free = total
        return total

    def free_late(self) -> int:
        """free_reserved_area() of the initrd and the kernel's init memory, after the
        watermarks are set: each page joins the buddy (merging) and managed grows."""
        total = 0
        for start, end in self._late_ranges:
            pfn = start
            while pfn < end:
                order = largest_block(pfn, end)
                self.free_one_page(pfn, order, self.get_pageblock_migratetype(pfn))
                pfn += 1 << order
                total += 1 << order
        self.managed += total
        merged: list[list[int]] = []
        for s, e in sorted(self._free_ranges + self._late_ranges):
            if merged and merged[-1][1] == s:
                merged[-1][1] = e
            else:
                merged.append([s, e])
        self._free_ranges = tuple((s, e) for s, e in merged)
        self._late_ranges = ()
        return total

    # ---- taking blocks: __rmqueue and friends ---------------------------------------------
    def expand(self, pfn: int, low: int, high: int, mt: int) -> int:
        """Split a 2^high block down to 2^low, upper halves to the list heads."""
        nr_added = 0
        size = 1 << high
        while high > low:
            high -= 1
            size >>= 1
            self._add(pfn + size, high, mt)
            nr_added += size
        return nr_added

    def rmqueue_smallest(self, order: int, mt: int) -> int:
        nr = self._nr
        for q in range(order, NR_PAGE_ORDERS):
            if not nr[q][mt]:                    # empty list: _first() would say -1
                continue
            pfn = self._first(q, mt)
            self._take(pfn, q, mt)
            # one account_freepages() for "take 2^q, give back the split-off halves"
            self.account_freepages(self.expand(pfn, order, q, mt) - (1 << q), mt)
            if self.trace.active:
                self.trace.emit("mm_page_alloc_zone_locked", self.trace.cpu, pfn, order, mt,
                                pcp_allowed_order(order) and mt < MIGRATE_PCPTYPES)
            return pfn
        return -1

    def rmqueue_runs(self, mt: int, want: int, runs: list) -> int:
        """Up to ``want`` successive rmqueue_smallest(0, mt) calls at once; the pages go onto
        ``runs`` ([pfn, n], extending the last when they follow it).  Returns how many.

        The smallest non-empty order q of mt is the one rmqueue_smallest() splits; every list
        below q is empty, so the next calls take exactly the halves expand() put back, in
        ascending pfn order, until the block is used up.  What is left of it after n pages,
        [pfn+n, pfn+2^q), is the halves' aligned split, each block alone on its list.  So
        the pages, the lists and the counters are those of the single calls."""
        nr = self._nr
        got = 0
        while got < want:
            for q in range(NR_PAGE_ORDERS):
                if nr[q][mt]:
                    break
            else:
                break
            pfn = self._first(q, mt)
            self._take(pfn, q, mt)
            size = 1 << q
            n = r = min(size, want - got)
            while r < size:                      # the rest of the block: blocks of lowbit(r) pages
                o = (r & -r).bit_length() - 1
                self._add(pfn + r, o, mt)
                r += 1 << o
            self.account_freepages(-n, mt)
            if self.trace.active:                # each call's mm_page_alloc_zone_locked
                self.trace.emit_pfns("mm_page_alloc_zone_locked", self.trace.cpu, range(pfn, pfn + n), 0, mt,
                                     mt < MIGRATE_PCPTYPES)
            if runs and runs[-1][0] + runs[-1][1] == pfn:
                runs[-1][1] += n
            else:
                runs.append([pfn, n])
            got += n
        return got

    def free_range(self, lo: int, hi: int, descending: bool = False):
        """free_one_page() for every page of [lo, hi), one at a time, in ascending (or
        descending) pfn order, each with its pageblock's migratetype.

        Freed one by one, the pages of an aligned block B of the range reach outside B only
        when B's last page merges the whole of B: until then every buddy they meet lies in B.
        So freeing the range page by page is freeing its aligned blocks (cut at pageblock
        boundaries, where the migratetype may change) as whole blocks, in the same order:
        same merges, same list positions, same counters."""
        blocks = []
        p = lo
        while p < hi:
            o = min((p & -p).bit_length() - 1 if p else PAGEBLOCK_ORDER, PAGEBLOCK_ORDER)
            while p + (1 << o) > hi:
                o -= 1
            blocks.append((p, o))
            p += 1 << o
        if descending:
            blocks.reverse()
        get_mt, free_one = self.get_pageblock_migratetype, self.free_one_page
        for p, o in blocks:
            free_one(p, o, get_mt(p))

    def find_suitable_fallback(self, order: int, mt: int, claimable: bool) -> int:
        if claimable and not (order >= PAGEBLOCK_ORDER or order >= PAGEBLOCK_ORDER // 2
                              or mt in (MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE)):
            return -2
        nr = self._nr[order]
        for fmt in FALLBACKS[mt]:
            if nr[fmt]:
                return fmt
        return -1

    def rmqueue_claim(self, order: int, mt: int, nofragment: bool, boost_factor: int, kswapd: bool) -> int:
        min_order = PAGEBLOCK_ORDER if order < PAGEBLOCK_ORDER and nofragment else order
        for q in range(MAX_PAGE_ORDER, min_order - 1, -1):
            fmt = self.find_suitable_fallback(q, mt, True)
            if fmt == -1:
                continue
            if fmt == -2:
                break
            pfn = self._first(q, fmt)
            got = self.try_to_claim_block(pfn, q, order, mt, fmt, boost_factor, kswapd)
            if got >= 0:
                if self.trace.active:
                    self._trace_extfrag(got, order, q, mt, fmt)
                return got
        return -1

    def try_to_claim_block(self, pfn, current_order, order, start_type, block_type, boost_factor, kswapd) -> int:
        if current_order >= PAGEBLOCK_ORDER:
            self._take(pfn, current_order, block_type)
            self.account_freepages(-(1 << current_order), block_type)
            self.change_pageblock_range(pfn, current_order, start_type)
            self.account_freepages(self.expand(pfn, order, current_order, start_type), start_type)
            return pfn
        if self.boost_watermark(boost_factor) and kswapd:
            self.boosted_wmark = True
        start = pageblock_start_pfn(pfn)
        if start < self.start_pfn or start + PAGEBLOCK_NR_PAGES > self.end_pfn:
            return -1                            # prep_move_freepages_block: block crosses the zone
        free_pages = sum(1 << o for _, o in self._free_in_block(start))
        movable = self.movable_used.get(start >> PAGEBLOCK_ORDER, 0)
        if start_type == MIGRATE_MOVABLE:
            alike = movable
        elif block_type == MIGRATE_MOVABLE:
            alike = PAGEBLOCK_NR_PAGES - free_pages - movable
        else:
            alike = 0
        if free_pages + alike >= PAGEBLOCK_NR_PAGES // 2:
            self.move_freepages_block(start, block_type, start_type)
            self.set_pageblock_migratetype(start, start_type)
            return self.rmqueue_smallest(order, start_type)
        return -1

    def _free_in_block(self, start: int):
        pfn, end, free = start, start + PAGEBLOCK_NR_PAGES, self._free
        while pfn < end:
            o = free.get(pfn)
            if o is None:
                pfn += 1
            else:
                yield pfn, o
                pfn += 1 << o

    def move_freepages_block(self, start: int, old_mt: int, new_mt: int) -> int:
        moved = 0
        for pfn, o in list(self._free_in_block(start)):
            self._del(pfn, o, old_mt)
            self._add(pfn, o, new_mt)
            moved += 1 << o
        self.account_freepages(-moved, old_mt)
        self.account_freepages(moved, new_mt)
        return moved

    def rmqueue_steal(self, order: int, mt: int, boost_factor: int = 0, kswapd: bool = False) -> int:
        """__rmqueue_steal(): the smallest free block of a fallback type, split for us.  Before
        6.15 (steal_suitable_fallback) a steal below pageblock order boosted the watermarks too:
        the caller passes boost_factor then."""
        for q in range(order, NR_PAGE_ORDERS):
            fmt = self.find_suitable_fallback(q, mt, False)
            if fmt == -1:
                continue
            if boost_factor and q < PAGEBLOCK_ORDER and self.boost_watermark(boost_factor) and kswapd:
                self.boosted_wmark = True
            pfn = self._first(q, fmt)
            self._take(pfn, q, fmt)
            self.account_freepages(-(1 << q), fmt)
            self.account_freepages(self.expand(pfn, order, q, fmt), fmt)
            if self.trace.active:
                self._trace_extfrag(pfn, order, q, mt, fmt)
            return pfn
        return -1

    def _trace_extfrag(self, pfn, order, fallback_order, mt, fallback_mt):
        """mm_page_alloc_extfrag: change_ownership says whether the pageblock is now ours."""
        self.trace.emit("mm_page_alloc_extfrag", self.trace.cpu, pfn, order, fallback_order, mt, fallback_mt,
                        self.get_pageblock_migratetype(pfn) == mt)

    def boost_watermark(self, factor: int) -> bool:
        """Fallbacks below pageblock order raise the watermarks (kswapd resets them)."""
        if not factor or self.managed < 4 * PAGEBLOCK_NR_PAGES:
            return False
        max_boost = max(PAGEBLOCK_NR_PAGES, self._watermark[2] * factor // 10000)
        self.boost = min(self.boost + PAGEBLOCK_NR_PAGES, max_boost)
        return True

    # ---- freeing: __free_one_page ---------------------------------------------------------
    def free_one_page(self, pfn: int, order: int, mt: int, to_tail: bool = False):
        """__free_one_page(): merge with free buddies, then add at the head (or the tail, when
        the next-higher buddy is free and a merge is likely).  mt is pfn's pageblock type."""
        self.account_freepages(1 << order, mt)
        free = self._free
        buddy = pfn
        while order < MAX_PAGE_ORDER:
            buddy = pfn ^ (1 << order)
            if free.get(buddy) != order:
                break
            if order < PAGEBLOCK_ORDER:          # the buddy is in pfn's pageblock: type mt (every caller's)
                self._del(buddy, order, mt)
            else:
                bmt = self.get_pageblock_migratetype(buddy)
                if bmt != mt and not (migratetype_is_mergeable(mt) and migratetype_is_mergeable(bmt)):
                    break
                self._del(buddy, order, bmt)
                if bmt != mt:                    # match the buddy's type, so expand() stays consistent
                    self.set_pageblock_migratetype(buddy, mt)
            pfn &= buddy
            order += 1
        if not to_tail and order < MAX_PAGE_ORDER - 1:
            higher = buddy & pfn
            to_tail = free.get(higher ^ (1 << (order + 1))) == order + 1
        self._add(pfn, order, mt, tail=to_tail)


def _sentinel(order: int, mt: int) -> int:
    return -1 - order * MIGRATE_TYPES - mt
