"""Invariants of the simulated kernel, as code.  ``check(kernel)`` raises AssertionError
with a precise message at the first broken rule; tests call it after every step."""
from __future__ import annotations

from .buddy import (MAX_PAGE_ORDER, MIGRATE_HIGHATOMIC, MIGRATE_ISOLATE, MIGRATE_TYPES, NR_PAGE_ORDERS,
                    migratetype_is_mergeable, pindex_to_order)
from .layout import PAGEBLOCK_ORDER


def check(kernel) -> None:
    for z in kernel.zones:
        check_zone(z)
    if kernel.slab is not None and hasattr(kernel.slab, "check"):
        kernel.slab.check()


def check_zone(z) -> None:
    where = repr(z)
    intervals = []
    counts = [[0] * MIGRATE_TYPES for _ in range(NR_PAGE_ORDERS)]
    free = highatomic = 0
    for o in range(NR_PAGE_ORDERS):
        for mt in range(MIGRATE_TYPES):
            s = -1 - o * MIGRATE_TYPES - mt
            p = z._nxt[s]
            while p != s:
                assert z._free.get(p) == o, f"{where}: pfn {p:#x} on order-{o} list but recorded as {z._free.get(p)}"
                assert p % (1 << o) == 0, f"{where}: free block {p:#x} not aligned to order {o}"
                intervals.append((p, p + (1 << o), "free"))
                counts[o][mt] += 1
                p = z._nxt[p]
        for mt in range(MIGRATE_TYPES):
            if o == MAX_PAGE_ORDER:
                for start, n in z._runs[mt]:
                    assert n > 0 and start % (1 << o) == 0, f"{where}: bad run {start:#x}+{n}"
                    intervals.append((start, start + (n << o), "run"))
                    counts[o][mt] += n
    for o in range(NR_PAGE_ORDERS):
        for mt in range(MIGRATE_TYPES):
            assert counts[o][mt] == z._nr[o][mt], \
                f"{where}: free_area[{o}] type {mt} count {z._nr[o][mt]} but the list holds {counts[o][mt]}"
            pages = counts[o][mt] << o
            if mt != MIGRATE_ISOLATE:
                free += pages
            if mt == MIGRATE_HIGHATOMIC:
                highatomic += pages
    assert len(z._free) == sum(sum(c) for c in counts) - sum(n for r in z._runs for _, n in r), \
        f"{where}: free map has blocks on no list"
    assert free == z.nr_free, f"{where}: nr_free {z.nr_free} but the lists hold {free} pages"
    assert highatomic == z.nr_free_highatomic, f"{where}: nr_free_highatomic {z.nr_free_highatomic} != {highatomic}"

    # the list a free block sits on is its pageblock's type; buddies are merged
    for p, o in z._free.items():
        mt = z.get_pageblock_migratetype(p)
        s = -1 - o * MIGRATE_TYPES - mt
        q = z._prv[p]
        while q >= 0:
            q = z._prv[q]
        assert q == s, f"{where}: block {p:#x} order {o} is not on its pageblock's type-{mt} list"
        if o < MAX_PAGE_ORDER:
            b = p ^ (1 << o)
            if z._free.get(b) == o:
                bmt = z.get_pageblock_migratetype(b)
                assert o >= PAGEBLOCK_ORDER and bmt != mt and not (
                    migratetype_is_mergeable(mt) and migratetype_is_mergeable(bmt)), \
                    f"{where}: free buddies {p:#x} and {b:#x} of order {o} were not merged"

    pcp_pages = 0
    for cpu, pcp in enumerate(z.pcp):
        n = 0
        for i, lst in enumerate(pcp.lists):
            o = pindex_to_order(i)
            for p in lst:
                intervals.append((p, p + (1 << o), f"pcp{cpu}"))
                n += 1 << o
        assert n == pcp.count, f"{where}: cpu {cpu} pcp count {pcp.count} but its lists hold {n} pages"
        pcp_pages += n
    used = 0
    for p, page in z.allocated.items():
        assert page.pfn == p and page.zone is z, f"{where}: allocation record {p:#x} is inconsistent"
        intervals.append((p, p + (1 << page.order), "allocated"))
        used += 1 << page.order
    assert free + _isolated(z) + used + pcp_pages == z.managed, \
        f"{where}: free {free} + allocated {used} + pcp {pcp_pages} != managed {z.managed}"

    intervals.sort()
    ranges = list(z._free_ranges)
    ri = 0
    last_end, last_what = -1, None
    for s, e, what in intervals:
        assert s >= last_end, f"{where}: {what} [{s:#x}, {e:#x}) overlaps {last_what} ending at {last_end:#x}"
        while ri < len(ranges) and ranges[ri][1] <= s:
            ri += 1
        assert ri < len(ranges) and ranges[ri][0] <= s and e <= ranges[ri][1], \
            f"{where}: {what} [{s:#x}, {e:#x}) lies outside the zone's memory given to the buddy"
        last_end, last_what = e, what

    blocks = [0] * MIGRATE_TYPES
    for i, mt in enumerate(z.pageblock_mt):
        blocks[mt] += 1
    blocks[1] -= len(z.pageblock_mt) - z.valid_pageblocks   # blocks without RAM stay Movable
    assert blocks == z.pageblock_counts(), f"{where}: pageblock counts {z.pageblock_counts()} != {blocks}"


def _isolated(z) -> int:
    return sum(z._nr[o][MIGRATE_ISOLATE] << o for o in range(NR_PAGE_ORDERS))
