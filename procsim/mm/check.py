"""Invariants of the simulated kernel, as code.  ``check(kernel)`` raises AssertionError
with a precise message at the first broken rule; tests call it after every step.

``state_digest(kernel)`` hashes everything a command may change (free lists, pcp lists,
allocations, pageblocks, counters, slab state), so a test can prove that a rejected
command left the machine exactly as it was.
"""
from __future__ import annotations

import hashlib

from .buddy import (MAX_PAGE_ORDER, MIGRATE_HIGHATOMIC, MIGRATE_ISOLATE, MIGRATE_TYPES, NR_PAGE_ORDERS,
                    migratetype_is_mergeable, pindex_to_order)
from .layout import PAGEBLOCK_ORDER


def check(kernel) -> None:
    runs = _run_pages(kernel)
    for z in kernel.zones:
        check_zone(z, runs.get(z, ()))
    if kernel.slab is not None and hasattr(kernel.slab, "check"):
        kernel.slab.check()
    kernel.tasks.check()
    check_counters(kernel)


# node_stat items a page allocation's ``use`` feeds, per page (the stack counter is in kB)
_USE_ITEMS = {"anon": (("nr_anon_pages", "nr_inactive_anon"), "nr_zone_inactive_anon", 1),
              "pagecache": (("nr_file_pages", "nr_inactive_file"), "nr_zone_inactive_file", 1),
              "kernel_stack": (("nr_kernel_stack",), None, 4),
              "page_tables": (("nr_page_table_pages",), None, 1)}


def check_counters(kernel) -> None:
    """The counters the views print agree with the pages they count.

    meminfo's MemFree is Σ zone NR_FREE_PAGES; Slab is node nr_slab_* = slab pages plus
    large kmalloc pages; AnonPages, Cached, KernelStack, PageTables are the pages allocated
    with that use; every slab and large kmalloc page is a live buddy allocation.
    """
    assert kernel.nr_free_pages == sum(z.nr_free for z in kernel.zones)
    for n in kernel.nodes:
        assert n.nr_free == sum(z.nr_free for z in n.zones), f"node {n.id}: nr_free != Σ zones"
    for name, v in kernel.vm_events.items():
        assert v >= 0, f"vm event {name} is negative ({v})"
    expect: dict[tuple[int, str], int] = {}
    zone_expect: dict[tuple[int, str], int] = {}
    runs = _run_pages(kernel)
    for zi, z in enumerate(kernel.zones):
        uses = [(page.use, 1 << page.order) for page in z.allocated.values()]
        uses += [(b.use, n) for _, n, b in runs.get(z, ())]
        for use, n in uses:
            if use in _USE_ITEMS:
                items, zitem, unit = _USE_ITEMS[use]
                for it in items:
                    expect[z.node, it] = expect.get((z.node, it), 0) + unit * n
                if zitem:
                    zone_expect[zi, zitem] = zone_expect.get((zi, zitem), 0) + n
        for item in ("nr_zone_inactive_anon", "nr_zone_inactive_file"):      # inactive + active: the LRU
            lru = z.stat[item] + z.stat[item.replace("inactive", "active")]
            assert lru == zone_expect.get((zi, item), 0), \
                f"{z!r}: {item} (+ active) {lru} but {zone_expect.get((zi, item), 0)} pages allocated for it"
    slab = kernel.slab
    if slab is not None and hasattr(slab, "slab_pages"):
        for key, pages in slab.slab_pages().items():
            expect[key] = expect.get(key, 0) + pages
        for s in slab._slab_of.values():
            assert s.page.zone.allocated.get(s.pfn) is s.page, f"slab page {s.pfn:#x} is not allocated"
            assert s.page.order == s.order
        for pfn, page in slab._large.items():
            assert page.zone.allocated.get(pfn) is page, f"large kmalloc page {pfn:#x} is not allocated"
    for n in kernel.nodes:
        for item in ("nr_slab_reclaimable", "nr_slab_unreclaimable", "nr_anon_pages", "nr_inactive_anon",
                     "nr_file_pages", "nr_inactive_file", "nr_kernel_stack", "nr_page_table_pages"):
            got = n.stat[item] + n.stat.get(item.replace("inactive", "active"), 0) * ("inactive" in item)
            assert got == expect.get((n.id, item), 0), \
                f"node {n.id}: {item} {got} but the pages say {expect.get((n.id, item), 0)}"
    check_lru(kernel)
    check_swap(kernel)


def check_swap(kernel) -> None:
    """Every swap slot in use holds a page: a task's swap entry or the boot workload's anon."""
    from .swapfile import swap_info
    from .task import MM_SWAPENTS
    inuse = sum(si.inuse_pages for si in swap_info(kernel))
    owned = sum(t.rss[MM_SWAPENTS] for t in kernel.tasks)
    assert inuse == owned + kernel.swapped_unowned, \
        f"{inuse} swap slots in use, but tasks hold {owned} swap entries"


def check_lru(kernel) -> None:
    """Every anon and page-cache page is on exactly one LRU list of its node, of its type --
    as a folio entry or as a member of a run of its batch -- the lists are well linked and
    add up to the LRU counters; a folio's ID names a live allocation of that page; a batch's
    run entries are sorted, disjoint, linked, and with its folio entries cover its members."""
    from .task import LIVE, _RECLAIMED, _SWAPPED
    from .vmscan import LRU_NAMES, LRU_OF_USE, _run_entry, lruvec
    tasks = kernel.tasks
    runs_seen: set = set()
    folio_entries: set = set()
    for n in kernel.nodes:
        vec = lruvec(kernel, n.id)
        nfolios = 0
        for lru in range(4):
            head = vec.heads[lru]
            prev, e, total = head, head.next, 0
            while e is not head:
                assert e.prev is prev and e.lru == lru and e.zone.node == n.id and e.hi > e.lo, \
                    f"node {n.id}: {LRU_NAMES[lru]} list is broken at an entry"
                total += e.hi - e.lo
                if e.page is not None:
                    page, id_ = e.page, e.page.id
                    nfolios += 1
                    assert vec.folios.get(page) is e and e.lo == 0 and e.hi == 1 << page.order, \
                        f"LRU page {page.pfn:#x}: entry not filed"
                    assert page.zone.allocated.get(page.pfn) is page, f"LRU page {page.pfn:#x} is not allocated"
                    assert LRU_OF_USE[page.use] == lru & ~1, f"LRU page {page.pfn:#x} ({page.use}) on {LRU_NAMES[lru]}"
                    if id_ > 0:
                        a = kernel.tasks.lookup(id_)
                        assert a is not None and a.state == LIVE and a.page is page, \
                            f"LRU page {page.pfn:#x}: ID {id_} is not this live page"
                    folio_entries.add(e)
                else:
                    b = e.batch
                    where = f"LRU run of IDs {b.first + e.lo}-{b.first + e.hi - 1}"
                    assert tasks._batches.get(b.first) is b and LRU_OF_USE[b.use] == lru & ~1, f"{where}: not a live batch's"
                    assert e in b.lru, f"{where}: not in its batch's runs"
                    for _, p, _m, z in b.stretch(e.lo, e.hi):
                        assert p < _RECLAIMED and z is e.zone, f"{where}: a member is gone or in another zone"
                    runs_seen.add(e)
                prev, e = e, e.next
            assert head.prev is prev, f"node {n.id}: {LRU_NAMES[lru]} list is broken at its tail"
            assert total == n.stat["nr_" + LRU_NAMES[lru]], \
                f"node {n.id}: {LRU_NAMES[lru]} list holds {total} pages, its counter says {n.stat['nr_' + LRU_NAMES[lru]]}"
        assert nfolios == len(vec.folios), f"node {n.id}: folio entries not on a list"
        for z in n.zones:                        # a page with no folio entry: in a run, through its ID
            for page in z.allocated.values():
                if page.use in LRU_OF_USE and vec.folios.get(page) is None:
                    assert _run_entry(kernel, page)[0] is not None, \
                        f"{page.use} page {page.pfn:#x} is on no LRU list"
    for b in (tasks.batches() if tasks is not None else ()):
        if b.kind != "pages" or b.use not in LRU_OF_USE:
            assert not b.lru, f"batch {b.first}: LRU runs but no LRU use"
            continue
        end, covered = 0, 0
        for e in b.lru:
            assert e in runs_seen and e.lo >= end, f"batch {b.first}: run entries overlap, unsorted or off the lists"
            end = e.hi
            covered += e.hi - e.lo
        live = b.live - sum(n for _, p, n, _ in b.segments() if p == _SWAPPED)   # swapped: off the LRU
        for i, page in b._pages.items():
            entry = lruvec(kernel, page.zone.node).folios.get(page)
            if entry is not None:
                assert entry in folio_entries and not any(e.lo <= i < e.hi for e in b.lru), \
                    f"ID {b.first + i} is on the LRU twice"
                covered += 1 << b.what
            elif page.use not in LRU_OF_USE:
                live -= 1                        # moved (Tasks.move) to a page of no LRU use
        assert covered == live << b.what, f"batch {b.first}: {covered} pages on the LRU, {live << b.what} expected"


def lru_digest(kernel, nid: int) -> list:
    """The LRU lists of a node oldest first, as runs of (zone, pfn, pages, order, owner,
    PG_referenced): owner the ID (None: the kernel's own; -1: PINNED); neighbouring order-0 pages
    merged when the pfns, owners (the same, or IDs counting up) and flags continue, so folios
    one by one and runs give the same value."""
    from .vmscan import lruvec
    vec = lruvec(kernel, nid)
    lists = []
    for lru in range(4):
        out: list = []
        for e in vec.entries(lru):
            if e.page is not None:
                p = e.page
                items = (((p.zone.node, p.zone.idx), p.pfn, 1 << p.order, p.order, p.id or None),)
            else:
                b = e.batch
                items = (((z.node, z.idx), pfn, m, 0, b.first + i)
                         for i, pfn, m, z in b.stretch(e.lo, e.hi))
            for zone, pfn, m, order, owner in items:
                if out:
                    last = out[-1]
                    lowner = last[4]
                    if not order and not last[3] and last[0] == zone and last[1] + last[2] == pfn \
                            and last[5] == e.ref and (owner == lowner if owner is None or owner < 0
                                                      else lowner is not None and lowner > 0 and lowner + last[2] == owner):
                        last[2] += m
                        continue
                out.append([zone, pfn, m, order, owner, e.ref])
        lists.append(out)
    return lists


def _run_pages(kernel) -> dict:
    """zone -> [(first pfn, pages, batch)]: the live task pages kept as runs, which the
    zones' ``allocated`` maps do not hold (procsim.mm.task)."""
    out: dict = {}
    for z, pfn, n, b in kernel.tasks.run_pages():
            out.setdefault(z, []).append((pfn, n, b))
    return out


def _allocated(z, runs) -> list:
    """Everything allocated in z as canonical runs (pfn, pages, order, migratetype, cpu, use):
    the same whether the pages came one by one with a Page each or as runs."""
    items = sorted([(p, 1 << pg.order, pg.order, pg.migratetype, pg.cpu, pg.use)
                    for p, pg in z.allocated.items()]
                   + [(p, n, b.what, b.mt, b.cpu, b.use) for p, n, b in runs])
    out: list = []
    for p, n, order, mt, cpu, use in items:
        if out and not order and not out[-1][2] and out[-1][0] + out[-1][1] == p and out[-1][3:] == [mt, cpu, use]:
            out[-1][1] += n
        else:
            out.append([p, n, order, mt, cpu, use])
    return out


def state_digest(kernel) -> str:
    """A hash of the whole allocation state (not ``generation``, which is only a cache key).

    Zone flags and pcp tuning are in it: a failed allocation may set ZONE_BELOW_HIGH (as the
    kernel's does), and that steers later pcp frees, so replays must reproduce it too."""
    h = hashlib.sha256()

    def put(*parts):
        h.update(repr(parts).encode())
        h.update(b"\n")

    runs = _run_pages(kernel)
    for z in kernel.zones:
        put("zone", z.node, z.idx, z.nr_free, z.nr_free_highatomic, z.nr_reserved_highatomic, z.boost,
            z.below_high,
            tuple(z._watermark), tuple(z.lowmem_reserve), sorted(z.stat.items()), sorted(z.numa.items()),
            bytes(z.pageblock_mt), sorted((k, v) for k, v in z.movable_used.items() if v))
        for o in range(NR_PAGE_ORDERS):
            for mt in range(MIGRATE_TYPES):
                s = -1 - o * MIGRATE_TYPES - mt
                blocks, p = [], z._nxt[s]
                while p != s:
                    blocks.append(p)
                    p = z._nxt[p]
                put("free_list", o, mt, z._nr[o][mt], blocks)
        put("runs", [[tuple(r) for r in runs] for runs in z._runs])
        for cpu, pcp in enumerate(z.pcp):
            put("pcp", cpu, pcp.count, pcp.high, pcp.batch, pcp.high_min, pcp.high_max,
                pcp.alloc_factor, pcp.free_count, pcp.prev_free_high_order,
                [list(l) for l in pcp.lists])
        put("allocated", _allocated(z, runs.get(z, ())))
    for n in kernel.nodes:
        put("node", n.id, sorted(n.stat.items()), n.kswapd_failures)
    for n in kernel.nodes:                     # LRU order, owners and flags steer what reclaim takes next
        put("lru", n.id, lru_digest(kernel, n.id))
    put("swap", [(si.pages, si.inuse_pages) for si in kernel.swap_info],
        sorted((name, len(objs)) for name, objs in kernel.shrinkable.items()), list(kernel.nr_deferred),
        sorted((a, getattr(kernel, a)) for a in ("min_free_kbytes", "watermark_scale_factor",
                                                     "percpu_pagelist_high_fraction", "swappiness",
                                                     "vfs_cache_pressure")))
    log = kernel.printk_ring
    put("printk", log.next_seq, [(r.seq, r.level, r.ts_usec, r.text) for r in log.records])
    put("vm_events", sorted(kernel.vm_events.items()))
    tasks = kernel.tasks                       # who owns what: IDs, tags, counters
    put("tasks", tasks.next_id, [(t.pid, t.tag, t.oom_score_adj, t.rss, t.pgtables_bytes, t.kernel_pages,
                                  t.objects) for t in tasks])
    for b in tasks.batches():
        put("batch", b.first, b.last, b.task.pid, b.kind, b.what, b.use, b.live,
            [(i, p, n) for i, p, n, _ in b.segments()] if b.kind == "pages" else list(b.entries()))
    slab = kernel.slab
    if slab is not None:
        put("large", sorted((p, pg.order) for p, pg in slab._large.items()), list(slab.large_pages))
        for c in slab.caches:
            put("cache", c.name, c.size, c.order, c.inuse, c.nr_slabs, c.pages,
                sorted((cpu, s.pfn) for cpu, s in c.cpu_slab.items()),
                sorted((cpu, [s.pfn for s in l]) for cpu, l in c.cpu_partial_list.items()),
                [(n.id, n.nr_slabs, n.total_objects, n.partial_free, [s.pfn for s in n.partial])
                 for n in c.node if n is not None])
        for pfn in sorted(slab._slab_of):
            s = slab._slab_of[pfn]
            put("slab", pfn, s.cache.name, s.state, s.cpu, s.inuse, list(s.free), bytes(s.used))
    return h.hexdigest()


def check_zone(z, runs=()) -> None:
    """The zone's books agree; ``runs`` are its task pages kept as runs, (pfn, pages, batch)."""
    where = repr(z)
    intervals = []
    counts = [[0] * MIGRATE_TYPES for _ in range(NR_PAGE_ORDERS)]
    free = highatomic = 0
    on_list = {}                                  # free block -> the list head it was found on
    for o in range(NR_PAGE_ORDERS):
        for mt in range(MIGRATE_TYPES):
            s = -1 - o * MIGRATE_TYPES - mt
            p = z._nxt[s]
            while p != s:
                assert z._free.get(p) == o, f"{where}: pfn {p:#x} on order-{o} list but recorded as {z._free.get(p)}"
                assert p % (1 << o) == 0, f"{where}: free block {p:#x} not aligned to order {o}"
                assert z._nxt[z._prv[p]] == p, f"{where}: free block {p:#x}'s links disagree"
                on_list[p] = s
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
        assert on_list.get(p) == s, f"{where}: block {p:#x} order {o} is not on its pageblock's type-{mt} list"
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
    for p, n, _ in runs:
        intervals.append((p, p + n, "allocated run"))
        used += n
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
    for mt in z.pageblock_mt:
        blocks[mt] += 1
    blocks[1] -= len(z.pageblock_mt) - z.valid_pageblocks   # blocks without RAM stay Movable
    assert blocks == z.pageblock_counts(), f"{where}: pageblock counts {z.pageblock_counts()} != {blocks}"


def _isolated(z) -> int:
    return sum(z._nr[o][MIGRATE_ISOLATE] << o for o in range(NR_PAGE_ORDERS))
