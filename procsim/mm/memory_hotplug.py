"""Memory blocks and hotplug (drivers/base/memory.c, mm/memory_hotplug.c, mm/page_isolation.c,
arch/x86/mm/init_64.c probe_memory_block_size, 6.18).

Boot memory is cut into memory blocks of ``memory_block_size_bytes()``: 128 MiB (the section
size) below 64 GiB of address space, else 2 GiB on bare metal (procsim's machines are bare
metal).  A block exists where one of its sections has RAM, and starts online.

``offline_pages()`` does what the kernel does for ``echo offline > memoryN/state``:

* refuse a block with holes (EINVAL "memory holes") or spanning zones (EINVAL);
* zone_pcp_disable(): the zone's pcp lists drained back to the buddy;
* start_isolate_page_range(): every pageblock of the block is checked with
  has_unmovable_pages() -- a slab page, a kernel page, a memblock-reserved page makes the
  offline fail with EBUSY (dump_page()'s "unmovable page" line in the log), nothing isolated;
  else each pageblock becomes MIGRATE_ISOLATE and its free pages move to the Isolate lists;
* scan_movable_pages()/do_migrate_range(): the movable allocations (user memory: LRU pages
  and the control file's movable pages) migrate out with migrate.migrate_pages(), to free
  pages the compaction free scanner isolates in the rest of the zone (the kernel's
  alloc_migration_target() may also use another zone or node; procsim keeps the zone);
  no room: EBUSY, isolation undone;
* test_pages_isolated(), __offline_isolated_pages(): the free pages leave the buddy; the
  zone's present and managed pages shrink (MemTotal with them); init_per_zone_wmark_min()
  recomputes min_free_kbytes (unless the user set it), the watermarks, pcp limits, stat
  thresholds and lowmem_reserve.

``online_pages()`` is the reverse: present and managed grow, the block's pages are freed to
the tail of the Movable order-10 free list (generic_online_page with FPI_TO_TAIL, then
undo_isolate_page_range), init_per_zone_wmark_min().  Onlining picks the zone as
zone_for_pfn_range() does (valid_zones): online/online_kernel the node's kernel zone for the
range; online_movable ZONE_MOVABLE -- procsim only onlines a block back into a zone whose
span holds it (EINVAL otherwise, said in the reply).  The kernel shrinks a zone's span when
the offlined block is at its edge; procsim keeps spans.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from functools import lru_cache

from .buddy import (MIGRATE_ISOLATE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE, MAX_PAGE_ORDER, PAGEBLOCK_NR_PAGES,
                    PAGEBLOCK_ORDER)
from .errors import MMError
from .layout import ZONE_MOVABLE, ZONE_NORMAL
from .page_types import PAGE_SIZE
from .printk import pr_warn

MiB, GiB = 1 << 20, 1 << 30
SECTION_SIZE_BITS = 27                               # x86-64 sparsemem: 128 MiB sections
PAGES_PER_SECTION = 1 << (SECTION_SIZE_BITS - 12)
MIN_MEMORY_BLOCK_SIZE = 1 << SECTION_SIZE_BITS
MAX_BLOCK_SIZE = 2 * GiB
MEM_SIZE_FOR_LARGE_BLOCK = 64 * GiB
ONLINE_TYPES = ("offline", "online", "online_kernel", "online_movable")   # online_type_to_str[]


@dataclass
class MemoryBlock:
    """struct memory_block: its number, pfns, node(s) and state."""
    id: int
    start_pfn: int
    nr_pages: int
    nodes: tuple[int, ...]
    online: bool = True

    @property
    def phys_index(self) -> int:
        """The first section's number (phys_index)."""
        return self.start_pfn // PAGES_PER_SECTION


def _max_pfn(layout) -> int:
    return max((n.end_pfn for n in layout.nodes if n.ram), default=0)


def probe_memory_block_size(layout, version: str = "6.18") -> int:
    """probe_memory_block_size(): 128 MiB below 64 GiB of RAM end, else MAX_BLOCK_SIZE on
    bare metal (no X86_FEATURE_HYPERVISOR, since 5.9); before 5.9 the largest power of two up
    to 2 GiB the end of RAM is aligned to."""
    boot_mem_end = _max_pfn(layout) * PAGE_SIZE
    if boot_mem_end < MEM_SIZE_FOR_LARGE_BLOCK:
        return MIN_MEMORY_BLOCK_SIZE
    if version not in ("5.4", "3.10"):
        return MAX_BLOCK_SIZE
    bz = MAX_BLOCK_SIZE
    while bz > MIN_MEMORY_BLOCK_SIZE and boot_mem_end & (bz - 1):
        bz >>= 1
    return bz


def memory_block_size_bytes(k) -> int:
    return _block_size(k.layout, k.profile.version)


@lru_cache(maxsize=16)
def _block_size(layout, version: str = "6.18") -> int:
    return probe_memory_block_size(layout, version)


@lru_cache(maxsize=16)
def boot_blocks(layout, version: str = "6.18") -> tuple[tuple[int, int, int, tuple[int, ...]], ...]:
    """(id, start_pfn, nr_pages, nodes) of every block with a present section, in id order
    (memory_dev_init -> add_boot_memory_block for each present section's block)."""
    per_block = _block_size(layout, version) // PAGE_SIZE
    nodes: dict[int, list[int]] = {}
    for n in layout.nodes:
        for s, e in n.ram:
            for sec in range(s // PAGES_PER_SECTION, (e - 1) // PAGES_PER_SECTION + 1):
                b = sec * PAGES_PER_SECTION // per_block
                if n.id not in nodes.setdefault(b, []):
                    nodes[b].append(n.id)
    return tuple((b, b * per_block, per_block, tuple(sorted(ns))) for b, ns in sorted(nodes.items()))


def memory_blocks(k) -> dict[int, MemoryBlock]:
    """The kernel's blocks by id (all online after boot)."""
    return k.memory_blocks


def init_memory_blocks(k) -> dict[int, MemoryBlock]:
    """memory_dev_init(): a block for each memory_block_size_bytes() of boot memory."""
    return {b: MemoryBlock(b, s, n, nodes) for b, s, n, nodes in boot_blocks(k.layout, k.profile.version)}


def block(k, nr: int) -> MemoryBlock:
    b = memory_blocks(k).get(nr)
    if b is None:
        raise MMError(errno.ENODEV, f"no memory block {nr} (blocks: {_span(memory_blocks(k))})")
    return b


def _span(blocks) -> str:
    ids = sorted(blocks)
    return f"{ids[0]}-{ids[-1]}" if ids else "none"


# --------------------------------------------------------------------------------------------
# what sysfs shows

def _ram(k, nid: int, start: int, end: int) -> int:
    """System RAM pages of node nid in [start, end) (walk_system_ram_range)."""
    return sum(max(0, min(e, end) - max(s, start)) for s, e in k.layout.nodes[nid].ram)


def block_zone(k, b: MemoryBlock):
    """mem->zone: the one zone holding all the block's present pages, or None (it spans
    zones: valid_zones says "none", offlining is EINVAL).  A block only ever goes back
    online into the zone it left, so the boot layout says which."""
    found = [z for z in k.zones if z.node in b.nodes and _zone_has(k, z, b.start_pfn, b.start_pfn + b.nr_pages)]
    return found[0] if len(found) == 1 else None


def _intersects(z, start: int, nr: int) -> bool:
    """zone_intersects()."""
    return bool(z.spanned) and start < z.end_pfn and z.start_pfn < start + nr


def default_kernel_zone_for_pfn(k, nid: int, start: int, nr: int):
    for z in k.nodes[nid].zones:
        if z.idx <= ZONE_NORMAL and _intersects(z, start, nr):
            return z
    return k.nodes[nid].zones[ZONE_NORMAL]


def zone_for_pfn_range(k, online_type: str, nid: int, start: int, nr: int):
    """zone_for_pfn_range() with the default contig-zones policy and no movable_node."""
    if online_type == "online_kernel":
        return default_kernel_zone_for_pfn(k, nid, start, nr)
    movable = k.nodes[nid].zones[ZONE_MOVABLE]
    if online_type == "online_movable":
        return movable
    kernel = default_kernel_zone_for_pfn(k, nid, start, nr)
    in_kernel, in_movable = _intersects(kernel, start, nr), _intersects(movable, start, nr)
    if in_kernel != in_movable:
        return kernel if in_kernel else movable
    return kernel


def valid_zones(k, b: MemoryBlock) -> str:
    """valid_zones_show(): an online block's zone ("none" across zones); an offline one's
    default zone, then the others it may go to."""
    if b.online:
        z = block_zone(k, b)
        return "none" if z is None else z.name
    nid = b.nodes[0]
    default = zone_for_pfn_range(k, "online", nid, b.start_pfn, b.nr_pages)
    names = [default.name]
    for t in ("online_kernel", "online_movable"):
        z = zone_for_pfn_range(k, t, nid, b.start_pfn, b.nr_pages)
        if z is not default:
            names.append(z.name)
    return " ".join(names)


def removable(k, b: MemoryBlock) -> int:
    """removable_show(): 1 (CONFIG_MEMORY_HOTREMOVE) since 5.9; before, whether every
    pageblock of an online block is free of unmovable pages (offline: 1)."""
    if k.profile.version not in ("5.4", "3.10") or not b.online:
        return 1
    z = block_zone(k, b)
    return int(z is not None and _first_unmovable(k, z, b.start_pfn, b.start_pfn + b.nr_pages) is None)


# --------------------------------------------------------------------------------------------
# page isolation

def _free_ranges_gaps(z, lo: int, hi: int):
    """Pfns of [lo, hi) outside the zone's buddy memory (memblock-reserved: PageReserved)."""
    pos = lo
    for s, e in z._free_ranges:
        if e <= pos:
            continue
        if s >= hi:
            break
        if s > pos:
            return pos
        pos = max(pos, e)
        if pos >= hi:
            return None
    return pos if pos < hi else None


def _allocations_in(k, z, lo: int, hi: int):
    """Every allocation with its head in [lo, hi): Pages from z.allocated and, for order-0
    work kept as runs, one Page per member (Tasks.run_page_finder), in pfn order."""
    out = [p for pfn, p in z.allocated.items() if lo <= pfn < hi]
    tasks = k.tasks
    if tasks is not None:
        find = None
        for zz, p, n, b, _i in tasks._run_members():
            if zz is not z or p >= hi or p + n <= lo:
                continue
            if find is None:
                find = tasks.run_page_finder(z)
            step = 1 << b.what
            for pfn in range(max(p, lo), min(p + n, hi), step):
                page = find(pfn)
                if page is not None:
                    out.append(page)
    out.sort(key=lambda page: page.pfn)
    return out


def _first_unmovable(k, z, lo: int, hi: int):
    """has_unmovable_pages() over [lo, hi): the first pfn migration cannot empty, or None."""
    from .compaction import page_movable
    gap = _free_ranges_gaps(z, lo, hi)
    bad = [gap] if gap is not None else []
    for page in _allocations_in(k, z, lo, hi):
        if not page_movable(page):
            bad.append(page.pfn)
            break
    return min(bad) if bad else None


def _take_runs(z, lo: int, hi: int) -> list[tuple[int, int]]:
    """Cut the order-10 tail runs' blocks in [lo, hi) out of the free lists (a run split in
    two stays two runs, in list order); returns them as (pfn, migratetype)."""
    out = []
    for mt, runs in enumerate(z._runs):
        kept = []
        for start, count in runs:
            end = start + (count << MAX_PAGE_ORDER)
            if end <= lo or start >= hi:
                kept.append([start, count])
                continue
            a, b = max(start, lo), min(end, hi)
            if a > start:
                kept.append([start, (a - start) >> MAX_PAGE_ORDER])
            for pfn in range(a, b, 1 << MAX_PAGE_ORDER):
                out.append((pfn, mt))
                z._nr[MAX_PAGE_ORDER][mt] -= 1
            if end > b:
                kept.append([b, (end - b) >> MAX_PAGE_ORDER])
        runs.clear()
        runs.extend(kept)
    return out


def _isolate_range(z, lo: int, hi: int) -> list[int]:
    """set_migratetype_isolate() on every pageblock of [lo, hi): its free pages to the
    Isolate lists' tails.  Returns the pageblocks' former types (for the undo)."""
    before = [z.get_pageblock_migratetype(p) for p in range(lo, hi, PAGEBLOCK_NR_PAGES)]
    moved = set()
    for pfn, mt in _take_runs(z, lo, hi):
        z.account_freepages(-(1 << MAX_PAGE_ORDER), mt)
        z._add(pfn, MAX_PAGE_ORDER, MIGRATE_ISOLATE, tail=True)
        moved.add(pfn)
    for start in range(lo, hi, PAGEBLOCK_NR_PAGES):
        mt = z.get_pageblock_migratetype(start)        # a free block sits on its pageblock's list
        for pfn, o in list(z._free_in_block(start)):
            if pfn in moved:
                continue
            z._del(pfn, o, mt)
            z.account_freepages(-(1 << o), mt)
            z._add(pfn, o, MIGRATE_ISOLATE, tail=True)
        z.set_pageblock_migratetype(start, MIGRATE_ISOLATE)
    return before


def _undo_isolate(z, lo: int, hi: int, types: list[int]) -> None:
    """undo_isolate_page_range(): each pageblock back to its type (6.18 keeps it beside the
    isolate bit), its free pages to that type's list tails."""
    for i, start in enumerate(range(lo, hi, PAGEBLOCK_NR_PAGES)):
        mt = types[i]
        for pfn, o in list(z._free_in_block(start)):
            z._del(pfn, o, MIGRATE_ISOLATE)
            z._add(pfn, o, mt, tail=True)
            z.account_freepages(1 << o, mt)
        z.set_pageblock_migratetype(start, mt)


# --------------------------------------------------------------------------------------------
# offline / online

def _ranges_minus(ranges, lo: int, hi: int) -> tuple:
    out = []
    for s, e in ranges:
        if e <= lo or s >= hi:
            out.append((s, e))
            continue
        if s < lo:
            out.append((s, lo))
        if e > hi:
            out.append((hi, e))
    return tuple(out)


def _ranges_plus(ranges, lo: int, hi: int) -> tuple:
    merged: list[list[int]] = []
    for s, e in sorted(list(ranges) + [(lo, hi)]):
        if merged and merged[-1][1] >= s:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return tuple((s, e) for s, e in merged)


def _dump_unmovable(k, pfn: int) -> None:
    """has_unmovable_pages() with REPORT_FAILURE: dump_page(page, "unmovable page")."""
    pr_warn(k, f"page: refcount:1 mapcount:0 mapping:0000000000000000 index:0x0 pfn:{pfn:#x}")
    pr_warn(k, "page dumped because: unmovable page")


def offline_pages(k, start_pfn: int, nr_pages: int) -> None:
    """offline_pages() of one block's range (see the module)."""
    from .compaction import page_movable
    end = start_pfn + nr_pages
    nids = [n.id for n in k.nodes if _ram(k, n.id, start_pfn, end)]
    ram = sum(_ram(k, nid, start_pfn, end) for nid in nids)
    if ram != nr_pages:
        raise MMError(errno.EINVAL, f"memory offlining [mem {start_pfn << 12:#010x}-{(end << 12) - 1:#010x}] "
                                    f"failed due to memory holes")
    zones = [z for z in k.zones if z.node in nids and _zone_has(k, z, start_pfn, end)]
    if len(zones) != 1:
        raise MMError(errno.EINVAL, "the block spans zones (valid_zones: none): it cannot go offline")
    z = zones[0]
    if z.present - nr_pages <= 0 and z.idx != ZONE_MOVABLE:
        raise MMError(errno.EBUSY, f"procsim does not offline the last memory of Node {z.node} {z.name}")
    # zone_pcp_disable(): drain the zone's pcp lists so no page of the range hides there
    k.drain_all_pages()
    bad = _first_unmovable(k, z, start_pfn, end)
    if bad is not None:
        _dump_unmovable(k, bad)
        k.generation += 1
        raise MMError(errno.EBUSY, f"memory offlining [mem {start_pfn << 12:#010x}-{(end << 12) - 1:#010x}] "
                                   f"failed due to failure to isolate range (unmovable page at pfn {bad:#x})")
    types = _isolate_range(z, start_pfn, end)
    # do_migrate_range(): the movable allocations go to free pages elsewhere in the zone
    sources = [p for p in _allocations_in(k, z, start_pfn, end) if page_movable(p)]
    if sources and not do_migrate_range(k, z, sources):
        k.drain_all_pages()
        _undo_isolate(z, start_pfn, end, types)
        k.generation += 1
        left = len(_allocations_in(k, z, start_pfn, end))
        raise MMError(errno.EBUSY, f"memory offlining [mem {start_pfn << 12:#010x}-{(end << 12) - 1:#010x}] "
                                   f"failed: no free page in Node {z.node} {z.name} above its min mark to "
                                   f"migrate {left} allocation(s) to")
    k.drain_all_pages()
    # test_pages_isolated() + __offline_isolated_pages(): every page free on an Isolate list
    freed = 0
    for start in range(start_pfn, end, PAGEBLOCK_NR_PAGES):
        for pfn, o in list(z._free_in_block(start)):
            z._del(pfn, o, MIGRATE_ISOLATE)
            freed += 1 << o
    assert freed == nr_pages, f"offline: {freed} of {nr_pages} pages were free and isolated"
    # the sections are offline: their pageblocks count nowhere (pagetypeinfo skips them)
    for start in range(start_pfn, end, PAGEBLOCK_NR_PAGES):
        z.set_pageblock_migratetype(start, MIGRATE_MOVABLE)
    nb = nr_pages // PAGEBLOCK_NR_PAGES
    z._pb_counts[MIGRATE_MOVABLE] -= nb
    z.valid_pageblocks -= nb
    z._free_ranges = _ranges_minus(z._free_ranges, start_pfn, end)
    z.managed -= nr_pages                      # adjust_managed_page_count()
    z.present -= nr_pages                      # adjust_present_page_count()
    _offlined(k)[start_pfn] = (z.node, z.idx)
    if not z.present:                          # the zone is empty: zone_pcp_reset, zonelists, span 0
        z.populated = False
        z.start_pfn = z.end_pfn = z.spanned = z._pb_base = 0
        z.pageblock_mt = bytearray()
        z.valid_pageblocks = 0
        for pcp in z.pcp:
            pcp.high = pcp.high_min = pcp.high_max = 0
            pcp.batch = 1
        k.reset_cached_positions(z)
        k._build_zonelists()
        k._init_node_states()
    k.init_per_zone_wmark_min()
    k.generation += 1


def _migration_target(k, z, order: int) -> int:
    """alloc_migration_target() kept to the zone: a block from its buddy lists (Movable
    first, then the fallbacks), never below the min mark; -1 when there is none."""
    if z.nr_free - (1 << order) < z.wmark_min:
        return -1
    for mt in (MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE):
        pfn = z.rmqueue_smallest(order, mt)
        if pfn >= 0:
            return pfn
    return -1


def do_migrate_range(k, z, sources) -> bool:
    """migrate_pages() of the isolated range's movable allocations: each to a new block
    (move_page: its ID and LRU place along, the old block freed onto the Isolate list); a
    large block with no destination is split and its pages go one by one, unless it has a
    control-file ID (an ID names the whole block).  False when some could not move."""
    from .migrate import move_page, try_split_folio
    tasks = k.tasks
    ok = failed = 0
    work = sources[::-1]
    while work:
        src = work.pop()
        dst = _migration_target(k, z, src.order)
        if dst < 0:
            if try_split_folio(k, src, work):
                continue
            failed += 1 << src.order
            break
        move_page(k, tasks, src, dst, 0)
        ok += 1 << src.order
    k.count_vm_events("pgmigrate_success", ok)
    k.count_vm_events("pgmigrate_fail", failed)
    return not failed


def _zone_has(k, z, lo: int, hi: int) -> bool:
    """The zone holds pages of [lo, hi): the boot layout says so, unless a block of it was
    onlined into another zone since (k.block_home)."""
    homes = k.block_home
    per = memory_block_size_bytes(k) // PAGE_SIZE
    moved = [h for b, h in homes.items() if b < hi and lo < b + per]
    if moved:
        return (z.node, z.idx) in moved
    return any(min(e, hi) > max(s, lo) for s, e in k.layout.nodes[z.node].zones[z.idx].ram)


def _offlined(k) -> dict:
    """start pfn of each offline block -> (node, zone index) it left."""
    return k.offlined_blocks


def online_pages(k, start_pfn: int, nr_pages: int, zone) -> None:
    """online_pages() into ``zone`` (see the module)."""
    end = start_pfn + nr_pages
    z = zone
    if z.start_pfn > start_pfn or z.end_pfn < end or not z.spanned:
        _grow_zone(k, z, start_pfn, end)        # move_pfn_range_to_zone() -> resize_zone_range()
    was_populated = z.populated
    nb = nr_pages // PAGEBLOCK_NR_PAGES
    z.valid_pageblocks += nb
    z._pb_counts[MIGRATE_MOVABLE] += nb
    z._free_ranges = _ranges_plus(z._free_ranges, start_pfn, end)
    z.present += nr_pages
    z.managed += nr_pages                      # __free_pages_core(): totalram and managed
    # generic_online_page(): MAX_PAGE_ORDER blocks to the tail of the (isolated) list, then
    # undo_isolate_page_range() moves them to the Movable list's tail, in pfn order
    pfn = start_pfn
    runs = z._runs[MIGRATE_MOVABLE]
    n = nr_pages >> MAX_PAGE_ORDER
    if runs and runs[-1][0] + (runs[-1][1] << MAX_PAGE_ORDER) == pfn:
        runs[-1][1] += n
    else:
        runs.append([pfn, n])
    z._nr[MAX_PAGE_ORDER][MIGRATE_MOVABLE] += n
    z.account_freepages(n << MAX_PAGE_ORDER, MIGRATE_MOVABLE)
    _offlined(k).pop(start_pfn, None)
    k.block_home[start_pfn] = (z.node, z.idx)    # the block's zone from now on
    if not was_populated:                      # setup_zone_pageset(), build_all_zonelists()
        z.populated = True
        k.zone_pcp_update(z)
        k._build_zonelists()
        k._init_node_states()
    k.init_per_zone_wmark_min()
    k.generation += 1


def _grow_zone(k, z, start: int, end: int) -> None:
    """resize_zone_range(): the zone's span grows to cover [start, end); the pageblock
    array with it (pageblocks without present pages count nowhere, as holes)."""
    if not z.spanned:
        lo, hi = start, end
        old = bytearray()
    else:
        lo, hi = min(z.start_pfn, start), max(z.end_pfn, end)
        old = z.pageblock_mt
    base = lo >> PAGEBLOCK_ORDER
    nblocks = ((hi - 1) >> PAGEBLOCK_ORDER) - base + 1
    mt = bytearray([MIGRATE_MOVABLE]) * nblocks
    if old:
        off = z._pb_base - base
        mt[off:off + len(old)] = old
    z.pageblock_mt, z._pb_base = mt, base
    z.start_pfn, z.end_pfn = lo, hi
    z.spanned = hi - lo
    k.reset_cached_positions(z)


# --------------------------------------------------------------------------------------------
# the sysfs interface: state_store / online_store

def set_state(k, nr: int, online_type: str) -> str:
    """state_store(): "offline", "online", "online_kernel", "online_movable" for block nr.
    EINVAL for a block already in that state (device_online/offline return 1) or a bad
    word.  Returns the new state."""
    if online_type not in ONLINE_TYPES:
        raise MMError(errno.EINVAL, f"memory block state must be one of {', '.join(ONLINE_TYPES)}")
    b = block(k, nr)
    if online_type == "offline":
        if not b.online:
            raise MMError(errno.EINVAL, f"memory block {nr} is already offline")
        if block_zone(k, b) is None:
            raise MMError(errno.EINVAL, f"memory block {nr} spans zones (valid_zones: none): it cannot go offline")
        offline_pages(k, b.start_pfn, b.nr_pages)
        b.online = False
        return "offline"
    if b.online:
        raise MMError(errno.EINVAL, f"memory block {nr} is already online")
    z = zone_for_pfn_range(k, online_type, b.nodes[0], b.start_pfn, b.nr_pages)
    online_pages(k, b.start_pfn, b.nr_pages, z)
    b.online = True
    return "online"
