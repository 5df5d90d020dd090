"""Page reclaim (mm/vmscan.c, mm/swap.c, mm/shrinker.c of 6.18, the classic two-list LRU
without MGLRU): per-node LRU lists, kswapd's balance_pgdat, direct reclaim, shrinkers.

**LRU.**  Every page allocated for ``anon`` or ``pagecache`` joins its node's lruvec on the
inactive list of its type (lru_cache_add: new anon and file folios both start inactive),
as one folio of 2^order pages.  mark_page_accessed() sets PG_referenced, and a second
access activates the folio (pgactivate).  A list is an insertion-ordered dict: its end is
the head where folios are added, its start the tail reclaim takes from.  The node and
zone LRU counters (nr_{in,}active_{anon,file}, nr_zone_*) follow every move.

**Who may be reclaimed.**  A folio on the LRU has an owner: ``None`` for memory the kernel
itself holds (the ``boot:`` workload's page cache and anon: reclaim frees it), an int ID
for a task's allocation (page cache: ``k.tasks.reclaim(ID)`` drops it and the ID answers
"reclaimed"; anon: ``k.tasks.swap_out(ID)`` frees the page and the task keeps the ID as a
swap entry until ``touch`` faults it back in), or ``PINNED`` (a page whose command is
still running: scanned, rotated back, never freed).

**Reclaim.**  shrink_node() follows get_scan_count() (anon only with free swap, in the
swappiness : 200 - swappiness proportion; cache_trim_mode when the inactive file list alone
can meet the target), shrink_active_list() when inactive_is_low() (pgrefill,
pgdeactivate), shrink_inactive_list() from the tail (pgscan_*, pgsteal_*): clean unmapped
page cache is freed; anon is written to swap (pswpout; the slots stay used until the owner
frees or faults it back) or, with
no swap, activated again.  shrink_slab() asks the dentry/inode shrinker in proportion to
the pages scanned (do_shrink_slab, vm.vfs_cache_pressure, slabs_scanned).

**kswapd** is a kernel thread per node; here it is deferred work on the simulated clock
(procsim/mm/timer.py): wakeup_kswapd() records the request and queues the node's kswapd,
which runs when the clock next moves (the next command's tick, or a sleep).
balance_pgdat() reclaims at priorities 12 down to 1 until a zone of the node is above its
high mark (pageoutrun, kswapd_failures), then takes back the watermark boost; going back to
sleep counts kswapd_high_wmark_hit_quickly (still unbalanced) or, when woken again within
its HZ/10 nap, kswapd_low_wmark_hit_quickly.  **Direct reclaim** (try_to_free_pages) runs
in the slow path below min: SWAP_CLUSTER_MAX pages, allocstall_<zone>, pgscan/pgsteal_direct.

The Kernel mixin ``Vmscan`` holds the entry points the allocator and the clock call; the
LRU and the scan are functions of the kernel here, as in mm/vmscan.c.
"""
from __future__ import annotations

from collections import OrderedDict
from math import isqrt

from . import gfp as G
from . import swapfile
from .layout import MAX_NR_ZONES
from .page_types import PAGE_SIZE
from .timer import TICK_NSEC, HZ

LRU_INACTIVE_ANON, LRU_ACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE = range(4)
LRU_NAMES = ("inactive_anon", "active_anon", "inactive_file", "active_file")
LRU_OF_USE = {"anon": LRU_INACTIVE_ANON, "pagecache": LRU_INACTIVE_FILE}
PINNED = -1                          # owner of a page reclaim may scan but not free
SWAP_CLUSTER_MAX = 32
MAX_RECLAIM_RETRIES = 16             # mm/internal.h
DEF_PRIORITY = 12
SHRINK_BATCH = 128
DEFAULT_SEEKS = 2
ZONE_NAMES_LOWER = ("dma", "dma32", "normal", "movable", "device")


class Lruvec:
    """struct lruvec of one node: four lists of folios (Page -> owner) and PG_referenced."""
    __slots__ = ("lists", "referenced")

    def __init__(self):
        self.lists = [OrderedDict() for _ in range(4)]
        self.referenced: set = set()


def lruvec(k, nid: int) -> Lruvec:
    vecs = getattr(k, "lruvecs", None)
    if vecs is None:
        vecs = k.lruvecs = [Lruvec() for _ in k.nodes]
    return vecs[nid]


def _is_file(lru: int) -> bool:
    return lru >= LRU_INACTIVE_FILE


def _move_counters(k, page, src: int, dst: int) -> None:
    """The node and zone LRU counters of one folio moving from list src to list dst."""
    n = 1 << page.order
    ns, zs = k.nodes[page.zone.node].stat, page.zone.stat
    ns["nr_" + LRU_NAMES[src]] -= n
    ns["nr_" + LRU_NAMES[dst]] += n
    zs["nr_zone_" + LRU_NAMES[src]] -= n
    zs["nr_zone_" + LRU_NAMES[dst]] += n


# ---- entering and leaving the LRU (hooks of the page allocator) ------------------------------
def lru_add(k, page, owner=None) -> None:
    """folio_add_lru(): a new anon or page-cache folio, on its inactive list (the counters
    were moved by the allocator's use accounting).  Pages allocated after boot belong to a
    user: PINNED until the task registry names their ID (set_owner)."""
    if owner is None and getattr(k, "booted", False):
        owner = PINNED
    lruvec(k, page.zone.node).lists[LRU_OF_USE[page.use]][page] = owner


def set_owner(k, page, owner) -> None:
    """The allocation ID (or None, PINNED) reclaim must go through to free this folio."""
    for lst in lruvec(k, page.zone.node).lists:
        if page in lst:
            lst[page] = owner
            return


def lru_del(k, page) -> None:
    """The folio is freed: off its list; an active one has its counters moved back to the
    inactive list first, where the allocator's use accounting takes them off."""
    vec = lruvec(k, page.zone.node)
    vec.referenced.discard(page)
    base = LRU_OF_USE[page.use]
    if vec.lists[base].pop(page, _MISSING) is _MISSING and vec.lists[base + 1].pop(page, _MISSING) is not _MISSING:
        _move_counters(k, page, base + 1, base)


_MISSING = object()


def lru_split(k, folio, pieces) -> None:
    """lru_add_split_folio(): the pieces of a split folio take its place on its list (same
    owner, same PG_referenced); the counters already count their pages there."""
    vec = lruvec(k, folio.zone.node)
    base = LRU_OF_USE[folio.use]
    lru = base + 1 if folio in vec.lists[base + 1] else base
    owner = vec.lists[lru].pop(folio, None)
    referenced = folio in vec.referenced
    vec.referenced.discard(folio)
    for p in pieces:
        vec.lists[lru][p] = owner
        if referenced:
            vec.referenced.add(p)


def lru_migrate(k, src, dst) -> None:
    """migrate_folio_move(): the new folio goes on the LRU list the old one was on (the
    active flag and PG_referenced follow, folio_migrate_flags) with the same owner ID; freeing
    the old folio afterwards takes it off its list."""
    vec = lruvec(k, src.zone.node)
    base = LRU_OF_USE[src.use]
    lru = base + 1 if src in vec.lists[base + 1] else base
    vec.lists[lru][dst] = vec.lists[lru].get(src)
    if lru != base:
        _move_counters(k, dst, base, lru)
    if src in vec.referenced:
        vec.referenced.add(dst)


def folio_active(k, page) -> bool:
    return page in lruvec(k, page.zone.node).lists[LRU_OF_USE[page.use] + 1]


def activate(k, page) -> None:
    """folio_activate(): inactive -> active head, pgactivate."""
    vec = lruvec(k, page.zone.node)
    base = LRU_OF_USE[page.use]
    owner = vec.lists[base].pop(page)
    vec.lists[base + 1][page] = owner
    _move_counters(k, page, base, base + 1)
    _count(k, "pgactivate", 1 << page.order)


def activate_boot(k, blocks, n: int) -> None:
    """The boot workload's oldest n blocks were accessed again: active, as mark_page_accessed
    would have made them (pgactivate counts them, as it would on the machine)."""
    for page in blocks[:n]:
        activate(k, page)


def mark_page_accessed(k, page) -> None:
    """folio_mark_accessed(): the first access sets PG_referenced, the second activates an
    inactive folio (and clears the flag)."""
    vec = lruvec(k, page.zone.node)
    if page not in vec.referenced:
        vec.referenced.add(page)
    elif not folio_active(k, page):
        activate(k, page)
        vec.referenced.discard(page)
    k.generation += 1


def _count(k, event: str, n: int) -> None:
    if n:
        k.vm_events[event] = k.vm_events.get(event, 0) + n


def lru_size(k, nid: int, lru: int, reclaim_idx: int = 4) -> int:
    """lruvec_lru_size() limited to zones up to reclaim_idx."""
    if reclaim_idx >= 4:
        return k.nodes[nid].stat["nr_" + LRU_NAMES[lru]]
    return sum(z.stat["nr_zone_" + LRU_NAMES[lru]] for z in k.nodes[nid].zones[:reclaim_idx + 1])


def inactive_is_low(k, nid: int, inactive_lru: int) -> bool:
    """inactive_is_low(): inactive * sqrt(10 * GB of the type) < active."""
    inactive = lru_size(k, nid, inactive_lru)
    active = lru_size(k, nid, inactive_lru + 1)
    gb = (inactive + active) >> 18
    ratio = isqrt(10 * gb) if gb else 1
    return inactive * ratio < active


# ---- the scan --------------------------------------------------------------------------------
class ScanControl:
    """struct scan_control: what one reclaim pass may do and what it did."""
    __slots__ = ("gfp", "order", "reclaim_idx", "priority", "nr_to_reclaim", "nr_scanned", "nr_reclaimed",
                 "may_swap", "kswapd", "may_deactivate", "cache_trim_mode")

    def __init__(self, gfp: int, order: int, reclaim_idx: int, nr_to_reclaim: int, kswapd: bool):
        self.gfp, self.order, self.reclaim_idx = gfp, order, reclaim_idx
        self.nr_to_reclaim, self.kswapd = nr_to_reclaim, kswapd
        self.priority = DEF_PRIORITY
        self.nr_scanned = self.nr_reclaimed = 0
        self.may_swap = True
        self.may_deactivate = 0
        self.cache_trim_mode = False


def can_reclaim_anon_pages(k) -> bool:
    """can_reclaim_anon_pages(): anon can go somewhere only while swap has free slots."""
    return swapfile.get_nr_swap_pages(k) > 0


def get_scan_count(k, nid: int, sc: ScanControl) -> list[int]:
    """How many pages of each list this priority scans (SCAN_FILE / SCAN_FRACT)."""
    swappiness = getattr(k, "swappiness", 60)
    scan_file_only = not sc.may_swap or not can_reclaim_anon_pages(k) or sc.cache_trim_mode \
        or (swappiness == 0 and sc.priority)
    nr = [0, 0, 0, 0]
    for lru in range(4):
        size = lru_size(k, nid, lru, sc.reclaim_idx)
        scan = size >> sc.priority
        if scan_file_only:
            scan = scan if _is_file(lru) else 0
        else:                                   # SCAN_FRACT with no reclaim cost history yet
            fraction = (200 - swappiness) if _is_file(lru) else swappiness
            scan = scan * fraction // 200
        nr[lru] = scan
    return nr


def shrink_node(k, nid: int, sc: ScanControl) -> None:
    """shrink_node() -> shrink_lruvec(): the lists in SWAP_CLUSTER_MAX bites until the target
    is met, the anon lists rebalanced, then the slab shrinkers for what was scanned."""
    scanned_before = sc.nr_scanned
    reclaimed_before = sc.nr_reclaimed
    # prepare_scan_control(): deactivate a type only when its inactive list is low
    sc.may_deactivate = 0
    if inactive_is_low(k, nid, LRU_INACTIVE_ANON):
        sc.may_deactivate |= 1
    if inactive_is_low(k, nid, LRU_INACTIVE_FILE):
        sc.may_deactivate |= 2
    file_inactive = lru_size(k, nid, LRU_INACTIVE_FILE, sc.reclaim_idx)
    sc.cache_trim_mode = bool(file_inactive >> sc.priority) and not sc.may_deactivate & 2
    nr = get_scan_count(k, nid, sc)
    while nr[LRU_INACTIVE_ANON] or nr[LRU_ACTIVE_FILE] or nr[LRU_INACTIVE_FILE]:
        for lru in range(4):
            if nr[lru]:
                n = min(nr[lru], SWAP_CLUSTER_MAX)
                nr[lru] -= n
                if lru & 1:                      # an active list
                    if sc.may_deactivate & (1 << _is_file(lru)):
                        shrink_active_list(k, nid, n, sc, lru)
                else:
                    sc.nr_reclaimed += shrink_inactive_list(k, nid, n, sc, lru)
        if sc.nr_reclaimed - reclaimed_before >= sc.nr_to_reclaim:
            break
    if can_reclaim_anon_pages(k) and inactive_is_low(k, nid, LRU_INACTIVE_ANON):
        shrink_active_list(k, nid, SWAP_CLUSTER_MAX, sc, LRU_ACTIVE_ANON)
    sc.nr_reclaimed += shrink_slab(k, nid, sc.priority, sc.nr_scanned - scanned_before)


def _isolate(k, nid: int, nr_to_scan: int, sc: ScanControl, lru: int) -> tuple[list, int]:
    """isolate_lru_folios(): up to nr_to_scan pages from the tail of a list, folios in zones
    above reclaim_idx skipped (pgskip_<zone>) and put back at the head."""
    lst = lruvec(k, nid).lists[lru]
    taken, scanned, skipped = [], 0, []
    while lst and scanned < nr_to_scan:
        page, owner = lst.popitem(last=False)
        if page.zone.idx > sc.reclaim_idx:
            skipped.append((page, owner))
            _count(k, "pgskip_" + ZONE_NAMES_LOWER[page.zone.idx], 1 << page.order)
            if len(skipped) > 4 * nr_to_scan:
                break
            continue
        taken.append((page, owner))
        scanned += 1 << page.order
    for page, owner in skipped:
        lst[page] = owner
    return taken, scanned


def shrink_active_list(k, nid: int, nr_to_scan: int, sc: ScanControl, lru: int) -> None:
    """shrink_active_list(): the oldest active folios go to the inactive head (none is
    mapped, so none stays active): pgrefill for the scan, pgdeactivate for the moves."""
    taken, scanned = _isolate(k, nid, nr_to_scan, sc, lru)
    inactive = lruvec(k, nid).lists[lru - 1]
    for page, owner in taken:
        inactive[page] = owner
        _move_counters(k, page, lru, lru - 1)
    _count(k, "pgrefill", scanned)
    _count(k, "pgdeactivate", scanned)


def shrink_inactive_list(k, nid: int, nr_to_scan: int, sc: ScanControl, lru: int) -> int:
    """shrink_inactive_list() -> shrink_folio_list(): returns the pages reclaimed."""
    taken, scanned = _isolate(k, nid, nr_to_scan, sc, lru)
    sc.nr_scanned += scanned
    who = "kswapd" if sc.kswapd else "direct"
    _count(k, "pgscan_" + who, scanned)
    _count(k, "pgscan_file" if _is_file(lru) else "pgscan_anon", scanned)
    vec = lruvec(k, nid)
    reclaimed = 0
    for page, owner in taken:
        n = 1 << page.order
        vec.referenced.discard(page)            # folio_check_references() clears PG_referenced
        if owner == PINNED:
            vec.lists[lru][page] = owner        # not ours to free: rotate back to the head
            continue
        if not _is_file(lru):                   # anon: out to swap, or nowhere to go
            if not sc.gfp & G.__GFP_IO or not _add_to_swap(k, n):
                vec.lists[lru + 1][page] = owner     # activate_locked
                _move_counters(k, page, lru, lru + 1)
                _count(k, "pgactivate", n)
                continue
            _count(k, "pswpout", n)
            _count(k, "pgpgout", n * PAGE_SIZE // 1024)     # the write's sectors, shown in kB
        vec.lists[lru][page] = owner            # free_pages' lru_del takes it off again
        if owner is None:
            if not _is_file(lru):               # the boot workload's anon: its slots stay used
                k.swapped_unowned = getattr(k, "swapped_unowned", 0) + n
            k.free_pages(page)
        elif _is_file(lru):
            k.tasks.reclaim(owner)
        else:
            k.tasks.swap_out(owner)
        reclaimed += n
    _count(k, "pgsteal_" + who, reclaimed)
    _count(k, "pgsteal_file" if _is_file(lru) else "pgsteal_anon", reclaimed)
    return reclaimed


def _add_to_swap(k, nr: int) -> bool:
    """folio_alloc_swap(): nr slots from the highest-priority area with room."""
    for si in sorted(swapfile.swap_info(k), key=lambda s: -s.prio):
        if si.pages - si.inuse_pages >= nr:
            si.inuse_pages += nr
            return True
    return False


# ---- shrinkers -------------------------------------------------------------------------------
def note_boot_slabs(k) -> None:
    """What the dentry/inode shrinker may free: the objects the boot workload left in full
    slabs of SLAB_RECLAIM_ACCOUNT caches (users free their own objects themselves)."""
    from .slub import FULL, SLAB_RECLAIM_ACCOUNT
    pools: dict[str, list] = {}
    slab = getattr(k, "slab", None)
    for s in (slab._slab_of.values() if slab is not None else ()):
        if s.state == FULL and s.cache.flags & SLAB_RECLAIM_ACCOUNT:
            pools.setdefault(s.cache.name, []).extend((s, i) for i in range(s.objects))
    k.shrinkable = pools


def shrink_slab(k, nid: int, priority: int, nr_scanned: int) -> int:
    """do_shrink_slab() of the superblock shrinker (super_cache_count/scan): delta =
    freeable >> priority * 4 / seeks scaled by vfs_cache_pressure, in SHRINK_BATCH bites;
    returns the slab pages freed (reclaim_state).  Counts slabs_scanned."""
    pools = getattr(k, "shrinkable", None)
    if not pools:
        return 0
    pressure = getattr(k, "vfs_cache_pressure", 100)
    freeable = sum(len(v) for v in pools.values()) * pressure // 100
    if not freeable:
        return 0
    total_scan = min((freeable >> priority) * 4 // DEFAULT_SEEKS, 2 * freeable)
    before = k.node_stat_total("nr_slab_reclaimable")
    scanned, touched = 0, set()
    while total_scan >= SHRINK_BATCH or (total_scan and total_scan >= freeable):
        n = min(SHRINK_BATCH, total_scan)
        touched |= _prune(k, pools, n)
        total_scan -= n
        scanned += n
    _count(k, "slabs_scanned", scanned)
    for name in sorted(touched):               # empty slabs back to the page allocator
        k.slab.kmem_cache_shrink(k.slab.find(name))
    return max(0, before - k.node_stat_total("nr_slab_reclaimable"))


def _prune(k, pools: dict, n: int) -> set:
    """prune_dcache_sb / prune_icache_sb: free n unused boot objects; returns the caches touched."""
    touched = set()
    for name in list(pools):
        objs = pools[name]
        c = k.slab.find(name)
        touched.add(name)
        while n and objs:
            s, i = objs.pop()
            k.slab.kmem_cache_free(c, s.base + i * c.size)
            n -= 1
        if not objs:
            del pools[name]
        if not n:
            break
    return touched


def drop_pagecache(k) -> int:
    """drop_pagecache_sb() for every superblock: every clean, unmapped page-cache folio the
    kernel holds is dropped (a user's page-cache allocations go through the task registry);
    returns the pages freed."""
    freed = 0
    for nid in range(len(k.nodes)):
        vec = lruvec(k, nid)
        for lru in (LRU_INACTIVE_FILE, LRU_ACTIVE_FILE):
            for page, owner in list(vec.lists[lru].items()):
                if owner == PINNED:
                    continue
                if owner is None:
                    k.free_pages(page)
                else:
                    k.tasks.reclaim(owner)
                freed += 1 << page.order
    k.generation += 1
    return freed


class Vmscan:
    """Kernel mixin: kswapd on the clock, direct reclaim, the reclaim figures the allocator asks."""

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
        if self.now_ns < pgdat.kswapd_nap_until:    # woken during kswapd_try_to_sleep's HZ/10 nap
            _count(self, "kswapd_low_wmark_hit_quickly", 1)
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
        """One kswapd run: read and reset the request, balance_pgdat(), then
        kswapd_try_to_sleep(): a node still unbalanced counts kswapd_high_wmark_hit_quickly,
        a balanced one naps HZ/10 first (a wake-up in it is kswapd_low_wmark_hit_quickly)."""
        pgdat = self.nodes[nid]
        order, highest = pgdat.kswapd_order, pgdat.kswapd_highest_zoneidx
        pgdat.kswapd_order, pgdat.kswapd_highest_zoneidx = 0, MAX_NR_ZONES
        highest = MAX_NR_ZONES - 1 if highest == MAX_NR_ZONES else highest
        tr = self.trace
        traced, woken_for = tr.active, tr.current
        if traced:                                   # kswapd runs as its own kernel thread
            tr.current = (f"kswapd{nid}", 0)
            tr.emit("mm_vmscan_kswapd_wake", tr.cpu, nid, order)
        highest = MAX_NR_ZONES - 1 if highest == MAX_NR_ZONES else highest
        self.balance_pgdat(pgdat, order, highest)
        if self.pgdat_balanced(pgdat, order, highest):
            pgdat.kswapd_nap_until = self.now_ns + (HZ // 10) * TICK_NSEC
        else:
            _count(self, "kswapd_high_wmark_hit_quickly", 1)
        if traced:
            tr.emit("mm_vmscan_kswapd_sleep", tr.cpu, nid)
            tr.current = woken_for
        # kswapd_try_to_sleep(): balanced at order 0 (a high order kswapd leaves to
        # compaction), it wakes kcompactd for the order it was asked for
        if order and self.pgdat_balanced(pgdat, 0, highest):
            self.wakeup_kcompactd(pgdat, order, highest)

    def balance_pgdat(self, pgdat, order: int, highest: int) -> int:
        """balance_pgdat(): priorities DEF_PRIORITY..1 until a zone is above its high mark
        (boost included); pageoutrun once, kswapd_failures when nothing at all was reclaimed;
        the boost the zones had is taken off at the end.  Returns the pages reclaimed."""
        nid = pgdat.id
        _count(self, "pageoutrun", 1)
        sc = ScanControl(G.GFP_KERNEL, order, highest, 0, kswapd=True)
        while sc.priority >= 1:
            if self.pgdat_balanced(pgdat, order, highest):
                break
            sc.nr_to_reclaim = sum(max(z.wmark_high, SWAP_CLUSTER_MAX)
                                   for z in pgdat.zones[:highest + 1] if z.managed)
            before = sc.nr_reclaimed
            shrink_node(self, nid, sc)
            if sc.nr_reclaimed - before < sc.nr_to_reclaim:
                sc.priority -= 1
        pgdat.kswapd_failures = 0 if sc.nr_reclaimed else pgdat.kswapd_failures + 1
        for z in pgdat.zones[:highest + 1]:
            if z.boost:
                z.boost = 0
        self.generation += 1
        return sc.nr_reclaimed

    def try_to_free_pages(self, zonelist, order: int, gfp: int) -> int:
        """try_to_free_pages() -> do_try_to_free_pages(): SWAP_CLUSTER_MAX pages from the nodes
        of the zonelist, priority DEF_PRIORITY down to 0; allocstall_<highest zone>."""
        highest = zonelist[0].idx
        _count(self, "allocstall_" + ZONE_NAMES_LOWER[highest], 1)
        sc = ScanControl(gfp, order, highest, SWAP_CLUSTER_MAX, kswapd=False)
        tr = self.trace
        if tr.active:
            tr.emit("mm_vmscan_direct_reclaim_begin", tr.cpu, order, gfp)
        nodes = list(dict.fromkeys(z.node for z in zonelist))
        while sc.priority >= 0:
            for nid in nodes:
                shrink_node(self, nid, sc)
                if sc.nr_reclaimed >= sc.nr_to_reclaim:
                    break
            if sc.nr_reclaimed >= sc.nr_to_reclaim:
                break
            sc.priority -= 1
        if sc.nr_reclaimed:                          # shrink_node(): progress revives a hopeless node
            for nid in nodes:
                self.nodes[nid].kswapd_failures = 0
        if tr.active:
            tr.emit("mm_vmscan_direct_reclaim_end", tr.cpu, sc.nr_reclaimed)
        self.generation += 1
        return sc.nr_reclaimed

    def zone_reclaimable_pages(self, z) -> int:
        """zone_reclaimable_pages(): the zone's file LRU, and its anon LRU while swap has room."""
        st = z.stat
        nr = st["nr_zone_inactive_file"] + st["nr_zone_active_file"]
        if can_reclaim_anon_pages(self):
            nr += st["nr_zone_inactive_anon"] + st["nr_zone_active_anon"]
        return nr

    def drop_slab(self) -> int:
        """drop_slab(): the shrinkers at priority 0 until a round frees next to nothing, then
        every cache's empty slabs; counts drop_slab.  Returns the pages freed."""
        self.vm_events["drop_slab"] += 1
        freed, shift = 0, 0
        while True:
            n = shrink_slab(self, 0, 0, 0)
            freed += n
            if not (n >> shift) > 1:
                break
            shift += 1
        freed += sum(self.slab.kmem_cache_shrink(c) for c in list(self.slab.caches))
        self.generation += 1
        return freed
