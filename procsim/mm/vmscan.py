"""Page reclaim (mm/vmscan.c, mm/swap.c, mm/shrinker.c of 6.18, the classic two-list LRU
without MGLRU): per-node LRU lists, kswapd's balance_pgdat, direct reclaim, shrinkers.

**LRU.**  Every page allocated for ``anon`` or ``pagecache`` joins its node's lruvec on the
inactive list of its type (lru_cache_add: new anon and file folios both start inactive).
mark_page_accessed() sets PG_referenced, and a second access activates the folio
(pgactivate).  A list is the kernel's doubly linked ``list_head``: ``LruEntry`` objects
linked through ``prev``/``next`` around a sentinel, the head (``head.next``) where folios
are added, the tail (``head.prev``) reclaim takes from.  The node and zone LRU counters
(nr_{in,}active_{anon,file}, nr_zone_*) follow every move.

**Entries.**  An entry is one folio (``page``: a Page of 2^order pages: the boot workload's
page cache and anon, allocations made page by page) or a **run**: members ``lo..hi-1`` of
a task's page batch (mm/task.py) made by one order-0 ``count=K`` command, in allocation
order (the oldest member, ``lo``, nearest the tail), all in one zone, on one list, with
one PG_referenced state.  A run stands for exactly the order-0 folios it holds, in that
order: a scan takes pages from the tail run and splits it where it stops
(SWAP_CLUSTER_MAX bites, as page by page); moved pieces go to the head of their new list,
merged with the head entry when they continue it (same batch, next members: the same
order); whatever changes part of a run in mid-list (touch, free, reclaim or migration of
some members) splits it in place.  A batch keeps its run entries sorted by ``lo``
(``Batch.lru``), so finding a member's entry is a bisect.  Every operation costs what the
entries it touches cost, not what their pages cost.

**Who may be reclaimed.**  An entry keeps no owner of its own: it holds one reference to
the allocation's identity (docs/DESIGN.md, "Where an allocation's identity lives").  A run
entry's member i is ID ``batch.first + i``; a folio entry reads its page's ``owner``: None
for memory the kernel itself holds (the ``boot:`` workload's page cache and anon: reclaim
frees it), a task's batch (the page is its member ``idx``), or ``PINNED`` (a user's page not
named yet: scanned, rotated back, never freed, as shrink_folio_list keeps a locked folio).  Reclaim goes
through the task registry: page cache ``k.tasks.reclaim(ID, n)`` (the IDs answer
"reclaimed"), anon ``k.tasks.swap_out(ID, n)`` (the task keeps the IDs as swap entries until
``touch`` faults them back in).  An anon/page-cache command's blocks get their IDs as soon
as each is made (mm/task.py ``_fault_in``), so reclaim under the command may take its own
earlier blocks, as the kernel reclaims a process's earlier pages.

**Reclaim.**  shrink_node() follows get_scan_count() (anon only with free swap, in the
swappiness : 200 - swappiness proportion; cache_trim_mode when the inactive file list alone
can meet the target), shrink_active_list() when inactive_is_low() (pgrefill,
pgdeactivate), shrink_inactive_list() from the tail (pgscan_*, pgsteal_*): clean unmapped
page cache is freed; anon is written to swap (pswpout; the slots stay used until the owner
frees or faults it back) or, with
no swap, activated again.  shrink_slab() asks the superblock shrinker for the node's unused
dentries and inodes by the reclaim priority (do_shrink_slab, nr_deferred, vm.vfs_cache_pressure,
slabs_scanned).

**kswapd** is a kernel thread per node; here an actor on the simulated clock (mm/sched.py):
a generator running kswapd(), balance_pgdat() and kswapd_try_to_sleep() that yields the cost
of each pass, so it reclaims beside the task that woke it.  wakeup_kswapd() records the
request and wakes it when it sleeps or naps.  balance_pgdat() reclaims the watermark boost of
a balanced node (no swap), or at priorities 12 down to 1 until a zone of the node is above its
high mark (pageoutrun, kswapd_failures), then takes the boost back and wakes kcompactd;
going back to sleep counts kswapd_high_wmark_hit_quickly (still unbalanced) or, when woken
in its HZ/10 nap, kswapd_low_wmark_hit_quickly.  **Direct reclaim** (try_to_free_pages) runs
in the slow path below min: SWAP_CLUSTER_MAX pages, allocstall_<zone>, pgscan/pgsteal_direct.

The Kernel mixin ``Vmscan`` holds the entry points the allocator and the clock call; the
LRU and the scan are functions of the kernel here, as in mm/vmscan.c.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from math import isqrt

from . import gfp as G
from . import swapfile
from .layout import MAX_NR_ZONES
from .page_types import PAGE_SIZE, PAGEBLOCK_ORDER
from .timer import TICK_NSEC, HZ

LRU_INACTIVE_ANON, LRU_ACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE = range(4)
LRU_NAMES = ("inactive_anon", "active_anon", "inactive_file", "active_file")
LRU_OF_USE = {"anon": LRU_INACTIVE_ANON, "pagecache": LRU_INACTIVE_FILE}


class Pinned:
    """The identity record of a user's LRU page the task registry has not named yet (lru_add
    after boot: the pages swap_in gathers before it commits, a page a test allocates for a
    user outside the registry): reclaim scans it, rotates it back and never frees it.  Its
    ID, ``first + idx``, is -1: no allocation's."""
    __slots__ = ()
    first = -1

    def __repr__(self):
        return "PINNED"


PINNED = Pinned()
SWAP_CLUSTER_MAX = 32
MAX_RECLAIM_RETRIES = 16             # mm/internal.h
DEF_PRIORITY = 12
SHRINK_BATCH = 128
DEFAULT_SEEKS = 2
ZONE_NAMES_LOWER = ("dma", "dma32", "normal", "movable", "device")


KSWAPD_SLEEPING, KSWAPD_RUNNING, KSWAPD_NAPPING = range(3)   # PgData.kswapd_state
KSWAPD_NAP, KSWAPD_SLEEP = "nap", "sleep"                    # what the kswapd generator yields besides ns


YOUNG_DATA, YOUNG_TEXT = 1, 2           # LruEntry.young: a mapping running programs keep touching


class LruEntry:
    """One element of an LRU list (a folio's ``lru`` list_head): a folio (``page``, pages
    ``lo..hi`` = ``0..2^order``) or a run of ``batch`` members ``lo..hi-1``: its one
    reference to the allocation's identity.  ``lru`` is the list it is on (kept while
    isolated: ``prev`` is None then), ``ref`` PG_referenced."""
    __slots__ = ("prev", "next", "lru", "zone", "page", "batch", "lo", "hi", "ref", "mapped", "young")

    def __init__(self, lru=-1, zone=None, page=None, batch=None, lo=0, hi=0, ref=False):
        self.prev = self.next = None
        self.lru, self.zone, self.page, self.batch = lru, zone, page, batch
        self.lo, self.hi, self.ref = lo, hi, ref
        self.mapped = False                     # a page-cache folio some process maps (NR_FILE_MAPPED)
        self.young = 0                          # its ptes are found young at every rmap walk: YOUNG_DATA
                                                # (boot.pages[].touched) or YOUNG_TEXT (VM_EXEC, .text)


class Lruvec:
    """struct lruvec of one node: four lists (sentinels: ``heads[lru].next`` is the newest
    entry, ``.prev`` the oldest) and the folio entries by Page."""
    __slots__ = ("heads", "folios")

    def __init__(self):
        self.heads = []
        for _ in range(4):
            s = LruEntry()
            s.prev = s.next = s
            self.heads.append(s)
        self.folios: dict = {}

    def entries(self, lru: int):
        """The entries of a list, oldest (tail) first."""
        head = self.heads[lru]
        e = head.prev
        while e is not head:
            yield e
            e = e.prev


def lruvec(k, nid: int) -> Lruvec:
    return k.lruvecs[nid]


def _is_file(lru: int) -> bool:
    return lru >= LRU_INACTIVE_FILE


def _move_counters(k, zone, n: int, src: int, dst: int) -> None:
    """The node and zone LRU counters of n pages of zone moving from list src to list dst."""
    ns, zs = k.nodes[zone.node].stat, zone.stat
    ns["nr_" + LRU_NAMES[src]] -= n
    ns["nr_" + LRU_NAMES[dst]] += n
    zs["nr_zone_" + LRU_NAMES[src]] -= n
    zs["nr_zone_" + LRU_NAMES[dst]] += n


# ---- the list_head operations ------------------------------------------------------------------
def _unlink(e) -> None:
    """list_del(): off its list (nothing if it is isolated already)."""
    p = e.prev
    if p is not None:
        n = e.next
        p.next = n
        n.prev = p
        e.prev = e.next = None


def _lo(e) -> int:
    return e.lo


def _index(b, e) -> int:
    """Where run entry e sits in its batch's ``lru`` (sorted by lo)."""
    j = bisect_left(b.lru, e.lo, key=_lo)
    assert b.lru[j] is e
    return j


def _add_head(k, e) -> None:
    """list_add() at the head of e's list; a run continuing the head run merges into it."""
    head = lruvec(k, e.zone.node).heads[e.lru]
    h = head.next
    b = e.batch
    if b is not None and h.batch is b and h.hi == e.lo and h.zone is e.zone and h.ref == e.ref:
        h.hi = e.hi
        del b.lru[_index(b, e)]
        return
    e.prev, e.next = head, h
    h.prev = head.next = e


def _split(b, j: int, e, m: int):
    """Run e = b.lru[j] keeps members lo..m-1; a new entry m..hi-1 follows it on the head
    side (the same place on the list) and in b.lru.  Returns the new entry."""
    f = LruEntry(e.lru, e.zone, None, b, m, e.hi, e.ref)
    e.hi = m
    p = e.prev
    if p is not None:
        f.prev, f.next = p, e
        p.next = e.prev = f
    b.lru.insert(j + 1, f)
    return f


def _cut(b, j: int, e, a: int, c: int):
    """The members a..c-1 of run e = b.lru[j] as an entry of their own, in place: (entry, j)."""
    if a > e.lo:
        e, j = _split(b, j, e, a), j + 1
    if c < e.hi:
        _split(b, j, e, c)
    return e, j


# ---- entering and leaving the LRU (hooks of the page allocator and the task registry) ---------
def lru_add(k, page) -> None:
    """folio_add_lru(): a new anon or page-cache folio, on its inactive list (the counters
    were moved by the allocator's use accounting).  Pages allocated after boot belong to a
    user: their ``owner`` is PINNED until the task registry names them."""
    if k.booted:
        page.owner, page.idx = PINNED, 0
    e = LruEntry(LRU_OF_USE[page.use], page.zone, page, None, 0, 1 << page.order)
    lruvec(k, page.zone.node).folios[page] = e
    _add_head(k, e)


def lru_add_run(k, b, lo: int, hi: int, zone) -> None:
    """folio_add_lru() of batch b's order-0 members lo..hi-1 (allocated in that order from
    zone, after every member already on the LRU), each reclaimed through its own ID."""
    e = LruEntry(LRU_OF_USE[b.use], zone, None, b, lo, hi)
    b.lru.append(e)
    _add_head(k, e)


def _run_entry(k, page):
    """(batch, j) of the run entry holding a task's page kept as part of a run, or (None, -1)."""
    b = page.owner
    if b is None or b is PINNED:
        return None, -1
    i = page.idx
    lst = b.lru
    j = bisect_right(lst, i, key=_lo) - 1
    return (b, j) if j >= 0 and lst[j].hi > i else (None, -1)


def lru_del(k, page) -> None:
    """The folio is freed: off its list; an active one has its counters moved back to the
    inactive list first, where the allocator's use accounting takes them off.  A page that
    is a member of a run leaves the run (split in place)."""
    e = lruvec(k, page.zone.node).folios.pop(page, None)
    if e is not None:
        _unlink(e)
        if e.mapped:                            # unmapped before it is freed (try_to_unmap)
            _map(k, e, -1)
        if e.lru & 1:
            _move_counters(k, page.zone, e.hi, e.lru, e.lru - 1)
        return
    b, j = _run_entry(k, page)
    if b is not None:
        i = page.idx
        lru_del_run(k, b, i, i + 1)


def lru_del_run(k, b, lo: int, hi: int) -> None:
    """lru_del() of batch b's members lo..hi-1 kept in runs (members with a folio entry of
    their own are lru_del()'s): the pieces are cut out of their runs, the rest stays in place."""
    lst = b.lru
    j = bisect_right(lst, lo, key=_lo) - 1
    if j < 0 or lst[j].hi <= lo:
        j += 1
    elif lst[j].lo < lo:
        _split(b, j, lst[j], lo)
        j += 1
    j1 = j
    while j1 < len(lst) and lst[j1].lo < hi:
        e = lst[j1]
        if e.hi > hi:
            _split(b, j1, e, hi)
        _unlink(e)
        if e.lru & 1:
            _move_counters(k, e.zone, e.hi - e.lo, e.lru, e.lru - 1)
        j1 += 1
    del lst[j:j1]


def lru_split(k, folio, pieces) -> None:
    """lru_add_split_folio(): the pieces of a split folio take its place on its list, lowest
    first (the same PG_referenced; split_page gave them its id); the counters already count
    their pages there."""
    folios = lruvec(k, folio.zone.node).folios
    e = folios.pop(folio)
    at = e
    for p in pieces:
        f = folios[p] = LruEntry(e.lru, p.zone, p, None, 0, 1 << p.order, e.ref)
        f.mapped, f.young = e.mapped, e.young     # nr_mapped counted the pages already
        q = at.prev
        f.prev, f.next = q, at
        q.next = at.prev = f
        at = f
    _unlink(e)


def _entry_of(k, page):
    """The LRU entry holding a page: its folio entry or the run of its batch (or None)."""
    e = lruvec(k, page.zone.node).folios.get(page)
    if e is not None:
        return e
    b, j = _run_entry(k, page)
    return b.lru[j] if b is not None else None


def lru_migrate(k, src, dst) -> None:
    """migrate_folio_move(): the new folio goes on the LRU list the old one was on (the
    active flag and PG_referenced follow, folio_migrate_flags) at its head (folio_add_lru;
    the identity follows in ``dst.owner``, move_page); freeing the old folio afterwards takes it off
    its list (or its run)."""
    e = _entry_of(k, src)
    base = LRU_OF_USE[src.use]
    lru, ref = (e.lru, e.ref) if e is not None else (base, False)
    d = LruEntry(lru, dst.zone, dst, None, 0, 1 << dst.order, ref)
    lruvec(k, dst.zone.node).folios[dst] = d
    if e is not None and e.mapped:              # remove_migration_ptes(): mapped again
        _map(k, d, +1)
        d.young = e.young
    _add_head(k, d)
    if lru != base:
        _move_counters(k, dst.zone, 1 << dst.order, base, lru)


def folio_active(k, page) -> bool:
    e = _entry_of(k, page)
    return e is not None and bool(e.lru & 1)


def _activate(k, e) -> None:
    """An isolated or listed inactive entry to the active head: counters, pgactivate."""
    _unlink(e)
    n = e.hi - e.lo
    e.lru += 1
    _move_counters(k, e.zone, n, e.lru - 1, e.lru)
    _add_head(k, e)
    _count(k, "pgactivate", n)


def activate(k, page) -> None:
    """folio_activate(): inactive -> active head, pgactivate."""
    _activate(k, lruvec(k, page.zone.node).folios[page])


def activate_boot(k, blocks, n: int) -> None:
    """The boot workload's oldest n blocks were accessed again: active, as mark_page_accessed
    would have made them (pgactivate counts them, as it would on the machine)."""
    for page in blocks[:n]:
        activate(k, page)


def _map(k, e, sign: int) -> None:
    """folio_add_file_rmap / folio_remove_rmap: NR_FILE_MAPPED of the folio's node."""
    e.mapped = sign > 0
    k.nodes[e.zone.node].stat["nr_mapped"] += sign * (e.hi - e.lo)


def map_boot(k, blocks, n: int, touched: int = 0, text: int = 0) -> None:
    """The boot workload's oldest n page-cache blocks are mapped by processes (program text,
    libraries: boot.pages[].mapped), the blocks activate_boot() made active first; running
    programs keep touching the oldest ``touched`` of them, of which the oldest ``text`` are
    executable (boot.pages[].touched, .text)."""
    for i, page in enumerate(blocks[:n]):
        e = lruvec(k, page.zone.node).folios[page]
        _map(k, e, +1)
        e.young = YOUNG_TEXT if i < text else YOUNG_DATA if i < touched else 0


def mark_page_accessed(k, page) -> None:
    """folio_mark_accessed(): the first access sets PG_referenced, the second activates an
    inactive folio (and clears the flag)."""
    e = lruvec(k, page.zone.node).folios.get(page)
    if e is None:
        b, j = _run_entry(k, page)
        if b is not None:
            i = page.idx
            _mark_run(k, b, j, i, i + 1)
        return
    if not e.ref:
        e.ref = True
    elif not e.lru & 1:
        e.ref = False
        _activate(k, e)
    k.generation += 1


def _mark_run(k, b, j: int, a: int, c: int) -> None:
    """folio_mark_accessed() of members a..c-1 of run b.lru[j], one after the other: they
    share a state, so they all make the same step (the activated ones reach the active
    head in member order)."""
    e = b.lru[j]
    k.generation += c - a
    if e.ref and e.lru & 1:
        return
    e, j = _cut(b, j, e, a, c)
    if not e.ref:
        e.ref = True
    else:
        e.ref = False
        _activate(k, e)


def mark_members_accessed(k, b, lo: int, hi: int) -> None:
    """mark_page_accessed() of batch b's live members lo..hi-1 in ID order (the control
    file's ``touch``): runs a piece at a time, members with a folio entry one by one."""
    lst = b.lru
    i = lo
    while i < hi:
        j = bisect_right(lst, i, key=_lo) - 1
        if j >= 0 and lst[j].hi > i:
            c = min(hi, lst[j].hi)
            _mark_run(k, b, j, i, c)
            i = c
            continue
        end = min(hi, lst[j + 1].lo) if j + 1 < len(lst) else hi
        for m in range(i, end):
            page = b._pages.get(m)
            if page is not None:
                mark_page_accessed(k, page)
        i = end


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
    swappiness = k.swappiness
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
    is met, the anon lists rebalanced, then the slab shrinkers at this priority."""
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
    slab_before = k.node_stat_total("nr_slab_reclaimable")
    shrink_slab(k, sc.gfp, nid, sc.priority)
    sc.nr_reclaimed += max(0, slab_before - k.node_stat_total("nr_slab_reclaimable"))   # reclaim_state
    if sc.nr_reclaimed > reclaimed_before:      # progress revives a node kswapd gave up on
        k.nodes[nid].kswapd_failures = 0


def _isolate(k, nid: int, nr_to_scan: int, sc: ScanControl, lru: int) -> tuple[list, int]:
    """isolate_lru_folios(): up to nr_to_scan pages from the tail of a list (the tail run
    split where the bite ends), entries in zones above reclaim_idx skipped (pgskip_<zone>,
    at most 4 * nr_to_scan folios) and put back at the head.  Returns the isolated entries,
    oldest first, and the pages they hold."""
    head = lruvec(k, nid).heads[lru]
    taken, skipped = [], []
    scanned = nskipped = 0
    limit = 4 * nr_to_scan
    while head.prev is not head and scanned < nr_to_scan:
        e = head.prev
        skip = e.zone.idx > sc.reclaim_idx
        n = e.hi - e.lo
        if e.batch is not None:              # a run: as many order-0 folios as the loop takes
            m = min(n, limit + 1 - nskipped) if skip else min(n, nr_to_scan - scanned)
            if m < n:
                _split(e.batch, _index(e.batch, e), e, e.lo + m)
                n = m
        _unlink(e)
        if skip:
            skipped.append(e)
            nskipped += 1 if e.batch is None else n
            _count(k, "pgskip_" + ZONE_NAMES_LOWER[e.zone.idx], n)
            if nskipped > limit:
                break
            continue
        taken.append(e)
        scanned += n
    for e in skipped:
        _add_head(k, e)
    return taken, scanned


def shrink_active_list(k, nid: int, nr_to_scan: int, sc: ScanControl, lru: int) -> None:
    """shrink_active_list(): the oldest active folios go to the inactive head, but for the
    text of running programs (young ptes and VM_EXEC: rotated back to the active head, the
    rule that keeps executables in memory): pgrefill for the scan, pgdeactivate for the moves."""
    taken, scanned = _isolate(k, nid, nr_to_scan, sc, lru)
    moved = 0
    for e in taken:
        n = e.hi - e.lo
        _count(k, "pgrefill_" + ZONE_NAMES_LOWER[e.zone.idx], n)     # 3.10's zone events
        if e.young != YOUNG_TEXT:
            e.lru = lru - 1
            _move_counters(k, e.zone, n, lru, lru - 1)
            moved += n
        _add_head(k, e)
    _count(k, "pgrefill", scanned)
    _count(k, "pgdeactivate", moved)


def shrink_inactive_list(k, nid: int, nr_to_scan: int, sc: ScanControl, lru: int) -> int:
    """shrink_inactive_list() -> shrink_folio_list(): returns the pages reclaimed."""
    taken, scanned = _isolate(k, nid, nr_to_scan, sc, lru)
    sc.nr_scanned += scanned
    who = "kswapd" if sc.kswapd else "direct"
    _count(k, "pgscan_" + who, scanned)
    _count(k, "pgscan_file" if _is_file(lru) else "pgscan_anon", scanned)
    reclaimed = 0
    for e in taken:
        n = e.hi - e.lo
        zone = ZONE_NAMES_LOWER[e.zone.idx]
        _count(k, f"pgscan_{who}_{zone}", n)    # 3.10 counted reclaim per zone
        referenced, e.ref = e.ref, False        # folio_check_references() clears PG_referenced
        if e.young:                             # referenced ptes set PG_referenced; executable or
            e.ref = True                        # seen before: activate, else keep (FOLIOREF_KEEP)
            if e.young == YOUNG_TEXT or referenced:
                _activate(k, e)
            else:
                _add_head(k, e)
            continue
        owner = e.page.owner if e.batch is None else None  # a folio's record (None: the kernel's own)
        if owner is PINNED:
            _add_head(k, e)                     # not ours to free: rotate back to the head
            continue
        rest = None
        if not _is_file(lru):                   # anon: out to swap, or nowhere to go
            if e.batch is not None and sc.gfp & G.__GFP_IO:
                free = swapfile.get_nr_swap_pages(k)
                if 0 < free < n:                # each page of a run is its own folio: the first
                    rest = _split(e.batch, _index(e.batch, e), e, e.lo + free)   # get the last slots
                    n = free
            if not sc.gfp & G.__GFP_IO or not _add_to_swap(k, n):
                _activate(k, e)                 # activate_locked
                continue
            _count(k, "pswpout", n)
            _count(k, "pgpgout", n * PAGE_SIZE // 1024)     # the write's sectors, shown in kB
        if e.batch is not None:                 # the freeing takes the isolated entry off
            (k.tasks.reclaim if _is_file(lru) else k.tasks.swap_out)(e.batch.first + e.lo, n)
        elif owner is None:
            if not _is_file(lru):               # the boot workload's anon: its slots stay used
                k.swapped_unowned += n
            k.free_pages(e.page)
        elif _is_file(lru):
            k.tasks.reclaim(e.page.id)
        else:
            k.tasks.swap_out(e.page.id)
        _count(k, f"pgsteal_{who}_{zone}", n)
        reclaimed += n
        if rest is not None:                    # swap full: the run's later folios stay
            _activate(k, rest)
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
def _sb_cache(name: str) -> bool:
    """The caches on a superblock's LRUs (s_dentry_lru, s_inode_lru): what super_cache_count
    counts.  Not sockfs's or procfs's inodes: their drop_inode is generic_delete_inode, so an
    unused one is evicted at its last iput and never waits on an LRU."""
    return name == "dentry" or (name.endswith("inode_cache") and name not in ("sock_inode_cache", "proc_inode_cache"))


def note_boot_slabs(k) -> None:
    """What the boot superblock's shrinker finds on its list_lrus: the boot workload's unused
    dentries and inodes (SLAB_RECLAIM_ACCOUNT, no reference held), kept per node as list_lru
    keeps them.  boot.caches[].unused says how many of a cache's objects are unused (all when
    not said); the others are in use (the pinned dentries of rootfs, devtmpfs, tracefs, an
    inode held by its dentry) and no shrinker or drop_caches frees them.  A user's objects are
    freed by their owner only.  Pools are keyed (cache, node)."""
    from .slub import SLAB_RECLAIM_ACCOUNT
    unused = {bc.name: bc.unused for bc in k.boot_caches}
    pools: dict[tuple[str, int], list] = {}
    slab = k.slab
    for s in (slab._slab_of.values() if slab is not None else ()):
        c = s.cache
        if c.flags & SLAB_RECLAIM_ACCOUNT and _sb_cache(c.name):
            pools.setdefault((c.name, s.node), []).extend((s, i) for i in range(s.objects) if s.used[i])
    for name, want in unused.items():          # the unused ones, spread over the nodes as apply_boot spread them
        keys = sorted(key for key in pools if key[0] == name)
        if want is None or not keys:
            continue
        for j, key in enumerate(keys):
            del pools[key][want // len(keys) + (j < want % len(keys)):]
            if not pools[key]:
                del pools[key]
    k.shrinkable = pools
    k.nr_deferred = [0] * len(k.nodes)


def super_cache_count(k, nid: int) -> tuple[int, int]:
    """super_cache_count(): the node's unused dentries and inodes (list_lru_shrink_count)."""
    dentries = inodes = 0
    for (name, n), objs in k.shrinkable.items():
        if n == nid:
            if name == "dentry":
                dentries += len(objs)
            else:
                inodes += len(objs)
    return dentries, inodes


def shrink_slab(k, gfp: int, nid: int, priority: int) -> int:
    """shrink_slab() -> do_shrink_slab() of the superblock shrinker (NUMA-aware: the node's
    objects and the node's nr_deferred), the same arithmetic in 6.1's mm/vmscan.c and 6.18's
    mm/shrinker.c: freeable = vfs_pressure_ratio(count); delta = (freeable >> priority) * 4 /
    seeks; total_scan = (nr_deferred >> priority) + delta, at most 2 * freeable, scanned in
    SHRINK_BATCH bites while total_scan >= SHRINK_BATCH or >= freeable (a small cache under
    high pressure is scanned whole); what was not scanned is deferred to the next call.
    super_cache_scan() stops (SHRINK_STOP) without __GFP_FS.  Counts slabs_scanned; returns
    the objects freed."""
    d, i = super_cache_count(k, nid)
    freeable = (d + i) * k.vfs_cache_pressure // 100        # vfs_pressure_ratio()
    if not freeable:
        return 0
    nr, k.nr_deferred[nid] = k.nr_deferred[nid], 0          # xchg_nr_deferred()
    delta = (freeable >> priority) * 4 // DEFAULT_SEEKS
    total_scan = min((nr >> priority) + delta, 2 * freeable)
    scanned = freed = 0
    while total_scan >= SHRINK_BATCH or total_scan >= freeable:
        n = min(SHRINK_BATCH, total_scan)
        if not gfp & G.__GFP_FS:                            # super_cache_scan: SHRINK_STOP
            break
        freed += super_cache_scan(k, nid, n)
        _count(k, "slabs_scanned", n)
        total_scan -= n
        scanned += n
    k.nr_deferred[nid] += min(max(nr + delta - scanned, 0), 2 * freeable)    # add_nr_deferred()
    return freed


def super_cache_scan(k, nid: int, nr_to_scan: int) -> int:
    """super_cache_scan(): the scan shared between the dentry and inode LRUs in proportion
    (mult_frac, +1 each), prune_dcache_sb() then prune_icache_sb(); every unused object
    walked is freed.  Returns the objects freed."""
    d, i = super_cache_count(k, nid)
    total = d + i + 1
    dentries, inodes = nr_to_scan * d // total, nr_to_scan * i // total
    freed = _prune(k, [key for key in sorted(k.shrinkable) if key[1] == nid and key[0] == "dentry"],
                   dentries + 1)
    return freed + _prune(k, [key for key in sorted(k.shrinkable) if key[1] == nid and key[0] != "dentry"],
                          inodes + 1)


def _prune(k, keys: list, n: int) -> int:
    """prune_dcache_sb / prune_icache_sb: free up to n unused objects from the tail of the
    LRUs ``keys``; returns how many were freed."""
    pools, freed = k.shrinkable, 0
    tr = k.trace
    try:
        for key in keys:
            objs = pools[key]
            c = k.slab.find(key[0])
            take = min(n, len(objs))         # the frees' events: one run record per cache
            k.slab.kmem_cache_free_bulk(c, [s.base + i * c.size for s, i in (objs.pop() for _ in range(take))])
            n -= take
            freed += take
            if not objs:
                del pools[key]
            if not n:
                break
    finally:
        if tr.active:
            tr.flush()
    return freed


def drop_pagecache(k) -> int:
    """drop_pagecache_sb() for every superblock: every clean, unmapped page-cache folio the
    kernel holds is dropped (a mapped one stays: invalidate_mapping_pages skips it) (a user's page-cache allocations go through the task registry),
    oldest first; returns the pages freed."""
    freed = 0
    for nid in range(len(k.nodes)):
        vec = lruvec(k, nid)
        for lru in (LRU_INACTIVE_FILE, LRU_ACTIVE_FILE):
            for page, b, lo, hi, owner in [(e.page, e.batch, e.lo, e.hi, e.page and e.page.owner)
                                            for e in vec.entries(lru)
                                            if not e.mapped]:    # mapping_evict_folio(): mapped stays
                if owner is PINNED:
                    continue
                if b is not None:
                    k.tasks.reclaim(b.first + lo, hi - lo)
                elif owner is None:
                    k.free_pages(page)
                else:
                    k.tasks.reclaim(owner.first + page.idx)
                freed += hi - lo
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
        kswapd if it waits (asleep, or napping in kswapd_try_to_sleep) unless it gave up
        (kswapd_failures) or the node is balanced and unboosted.  A running kswapd sees the
        request when its balance_pgdat() ends."""
        pgdat = self.nodes[zone.node]
        if not zone.managed:
            return
        pgdat.kswapd_order, pgdat.kswapd_highest_zoneidx = self.kswapd_request(pgdat, order, highest)
        if self.kswapd_wake_refused(pgdat, order, highest):
            return
        self.kswapd_wakeups += 1
        if self.trace.active:
            self.trace.emit("mm_vmscan_wakeup_kswapd", self.trace.cpu, pgdat.id, order, gfp)
        key = ("kswapd", pgdat.id)
        if pgdat.kswapd_state == KSWAPD_NAPPING:    # schedule_timeout(HZ/10) returns early
            self.cancel_delayed_work(key)
            pgdat.kswapd_remaining = True
        pgdat.kswapd_state = KSWAPD_RUNNING
        self.queue_work_at(key, self.now_ns, self._kswapd_step, pgdat.id)

    @staticmethod
    def kswapd_request(pgdat, order: int, highest: int) -> tuple[int, int]:
        """(kswapd_order, kswapd_highest_zoneidx) once wakeup_kswapd() has noted a request
        for order up to zone ``highest``: the largest of each asked for since kswapd last read them."""
        hz = pgdat.kswapd_highest_zoneidx
        return max(pgdat.kswapd_order, order), highest if hz == MAX_NR_ZONES or hz < highest else hz

    def kswapd_wake_refused(self, pgdat, order: int, highest: int) -> bool:
        """wakeup_kswapd() wakes no one: kswapd is running already (!waitqueue_active; it
        sees the request when balance_pgdat() ends), gave up (kswapd_failures), or the node
        is balanced and unboosted.  The allocator's fast path asks the same rule
        (_kswapd_wake_is_noop)."""
        return pgdat.kswapd_state == KSWAPD_RUNNING or pgdat.kswapd_failures >= MAX_RECLAIM_RETRIES or (
            self.pgdat_balanced(pgdat, order, highest) and not self.pgdat_watermark_boosted(pgdat, highest))

    def kswapd_is_running(self, pgdat) -> bool:
        """kswapd_is_running(): the thread is awake (not asleep, not napping)."""
        return pgdat.kswapd_state == KSWAPD_RUNNING

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

    def prepare_kswapd_sleep(self, pgdat, order: int, highest: int) -> bool:
        """prepare_kswapd_sleep(): a hopeless node or a balanced one may sleep."""
        return pgdat.kswapd_failures >= MAX_RECLAIM_RETRIES or self.pgdat_balanced(pgdat, order, highest)

    # kswapd is an actor (mm/sched.py): a generator that yields how long each step took
    # (ns), KSWAPD_NAP for kswapd_try_to_sleep's HZ/10 nap (it is sent True when woken
    # early), or KSWAPD_SLEEP to sleep until wakeup_kswapd().
    def _kswapd_step(self, nid: int):
        """Run the node's kswapd until its next yield, and queue what follows."""
        pgdat = self.nodes[nid]
        if pgdat.kswapd_thread is None:
            pgdat.kswapd_thread = self._kswapd_thread(pgdat)
            remaining = None
        else:
            remaining, pgdat.kswapd_remaining = pgdat.kswapd_remaining, False
        tr = self.trace
        woken_for = tr.current
        if tr.active:                                # kswapd runs as its own kernel thread
            tr.current = (f"kswapd{nid}", 0)
        try:
            y = pgdat.kswapd_thread.send(remaining)
        finally:
            tr.current = woken_for
        key = ("kswapd", nid)
        if y is KSWAPD_SLEEP:
            pgdat.kswapd_state = KSWAPD_SLEEPING
        elif y is KSWAPD_NAP:
            pgdat.kswapd_state = KSWAPD_NAPPING
            self.queue_work_at(key, self.now_ns + (HZ // 10) * TICK_NSEC, self._kswapd_step, nid)
        else:
            self.account_kthread(nid, y)
            self.queue_work_at(key, self.now_ns + y, self._kswapd_step, nid)

    def _kswapd_thread(self, pgdat):
        """kswapd(): woken, read and reset the request, balance_pgdat(), then
        kswapd_try_to_sleep(): balanced (or hopeless), it wakes kcompactd and naps HZ/10; a
        wake-up in the nap is kswapd_low_wmark_hit_quickly, a node unbalanced after it (or
        right after balance_pgdat) kswapd_high_wmark_hit_quickly -- both run again at once;
        otherwise it sleeps until woken."""
        nid = pgdat.id
        tr = self.trace
        highest = MAX_NR_ZONES - 1                   # pgdat->nr_zones - 1
        while True:
            alloc_order = pgdat.kswapd_order
            if pgdat.kswapd_highest_zoneidx != MAX_NR_ZONES:
                highest = pgdat.kswapd_highest_zoneidx
            pgdat.kswapd_order, pgdat.kswapd_highest_zoneidx = 0, MAX_NR_ZONES
            if tr.active:
                tr.emit("mm_vmscan_kswapd_wake", tr.cpu, nid, alloc_order)
            reclaim_order = yield from self.balance_pgdat(pgdat, alloc_order, highest)
            if reclaim_order >= alloc_order:         # else: goto kswapd_try_sleep with these orders
                alloc_order = reclaim_order = pgdat.kswapd_order
                if pgdat.kswapd_highest_zoneidx != MAX_NR_ZONES:
                    highest = pgdat.kswapd_highest_zoneidx
            # kswapd_try_to_sleep()
            remaining = False
            if self.prepare_kswapd_sleep(pgdat, reclaim_order, highest):
                self.wakeup_kcompactd(pgdat, alloc_order, highest)
                remaining = yield KSWAPD_NAP
                if remaining:
                    if pgdat.kswapd_highest_zoneidx == MAX_NR_ZONES or pgdat.kswapd_highest_zoneidx < highest:
                        pgdat.kswapd_highest_zoneidx = highest
                    pgdat.kswapd_order = max(pgdat.kswapd_order, reclaim_order)
            if not remaining and self.prepare_kswapd_sleep(pgdat, reclaim_order, highest):
                if tr.active:
                    tr.emit("mm_vmscan_kswapd_sleep", tr.cpu, nid)
                yield KSWAPD_SLEEP
            else:
                _count(self, "kswapd_low_wmark_hit_quickly" if remaining else "kswapd_high_wmark_hit_quickly", 1)

    def kswapd_shrink_node(self, pgdat, sc: ScanControl) -> bool:
        """kswapd_shrink_node(): reclaim the node's high marks' worth; a high-order run that
        reclaimed compact_gap(order) goes on at order 0.  True when the pass scanned at
        least what it was to reclaim (no need to raise the priority)."""
        sc.nr_to_reclaim = sum(max(z.wmark_high, SWAP_CLUSTER_MAX)
                               for z in pgdat.zones[:sc.reclaim_idx + 1] if z.managed)
        shrink_node(self, pgdat.id, sc)
        if sc.order and sc.nr_reclaimed >= 2 << sc.order:      # compact_gap(order)
            sc.order = 0
        return sc.nr_scanned >= sc.nr_to_reclaim

    def balance_pgdat(self, pgdat, order: int, highest: int):
        """balance_pgdat() (a generator: yields each pass's cost, returns the order it ended
        at): pageoutrun once; a boosted node balanced at its boosted marks reclaims the
        boost first, without swap (priority held at DEF_PRIORITY - 2); an unbalanced one
        drops the boost and reclaims at priorities DEF_PRIORITY..1 until balanced, raising
        the priority only after a pass that scanned less than it was to reclaim or reclaimed
        nothing.  kswapd_failures counts a run that ended unbalanced with nothing reclaimed;
        the boosts the zones had are taken off and kcompactd woken at pageblock order."""
        costs = self.costs
        _count(self, "pageoutrun", 1)
        sc = ScanControl(G.GFP_KERNEL, order, highest, 0, kswapd=True)
        zone_boosts = [z.boost if z.managed else 0 for z in pgdat.zones[:highest + 1]]
        nr_boost_reclaim = boosted = sum(zone_boosts)
        while True:                                  # restart:
            sc.priority = DEF_PRIORITY
            restart = balanced_out = False
            while sc.priority >= 1:
                nr_reclaimed = sc.nr_reclaimed
                raise_priority = True
                sc.reclaim_idx = highest
                balanced = self.pgdat_balanced(pgdat, sc.order, highest)
                if not balanced and nr_boost_reclaim:
                    nr_boost_reclaim, restart = 0, True
                    break
                if not nr_boost_reclaim and balanced:
                    balanced_out = True
                    break
                if nr_boost_reclaim and sc.priority == DEF_PRIORITY - 2:
                    raise_priority = False
                sc.may_swap = not nr_boost_reclaim    # boosted reclaim: no swap, no writeback
                sc.nr_scanned = 0
                if self.kswapd_shrink_node(pgdat, sc):
                    raise_priority = False
                nr_reclaimed = sc.nr_reclaimed - nr_reclaimed
                self.generation += 1
                yield max(costs.kswapd_pass, sc.nr_scanned * costs.kswapd_scan + nr_reclaimed * costs.kswapd_reclaim)
                nr_boost_reclaim -= min(nr_boost_reclaim, nr_reclaimed)
                if nr_boost_reclaim and not nr_reclaimed:
                    break
                if raise_priority or not nr_reclaimed:
                    sc.priority -= 1
            if restart:
                continue
            if not balanced_out and not sc.nr_reclaimed:
                pgdat.kswapd_failures += 1
            break
        if boosted:
            for z, b in zip(pgdat.zones[:highest + 1], zone_boosts, strict=True):
                if b:
                    z.boost -= min(z.boost, b)
            self.wakeup_kcompactd(pgdat, PAGEBLOCK_ORDER, highest)
        self.generation += 1
        return sc.order

    def try_to_free_pages(self, zonelist, order: int, gfp: int) -> int:
        """try_to_free_pages() -> do_try_to_free_pages(): SWAP_CLUSTER_MAX pages from the nodes
        of the zonelist, priority DEF_PRIORITY down to 0; allocstall_<zone> and reclaim_idx
        from gfp_zone(gfp): a GFP_HIGHUSER_MOVABLE fault stalls in the movable zone's count
        whatever zone it was served from."""
        highest = G.gfp_zone(gfp)
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
        if tr.active:
            tr.emit("mm_vmscan_direct_reclaim_end", tr.cpu, sc.nr_reclaimed)
        self.generation += 1
        return sc.nr_reclaimed

    def zone_reclaimable_pages(self, z) -> int:
        """zone_reclaimable_pages(): the zone's file LRU, and its anon LRU while swap has room;
        a zone with none of either counts its free pages instead where the profile's version
        does (Profile.reclaimable_counts_free), so should_reclaim_retry() counts them twice:
        the real 6.1 guest's DMA zone keeps the hog retrying reclaim 16 more times before the
        OOM kill."""
        st = z.stat
        nr = st["nr_zone_inactive_file"] + st["nr_zone_active_file"]
        if can_reclaim_anon_pages(self):
            nr += st["nr_zone_inactive_anon"] + st["nr_zone_active_anon"]
        if not nr and self.profile.reclaimable_counts_free:
            return z.nr_free
        return nr

    def drop_slab(self) -> int:
        """drop_slab(): drop_slab_node() of every node at priority 0 (GFP_KERNEL), again while
        a round freed more than 1 << shift objects; counts drop_slab.  Only shrinkers run:
        objects in use stay, and so do the empty slabs SLUB keeps on a node's partial list
        (up to min_partial; kmem_cache_shrink is another path).  Returns the slab pages freed."""
        self.vm_events["drop_slab"] += 1
        slab_pages = lambda: self.node_stat_total("nr_slab_reclaimable") + self.node_stat_total("nr_slab_unreclaimable")
        before, shift = slab_pages(), 0
        while True:
            n = sum(shrink_slab(self, G.GFP_KERNEL, nid, 0) for nid in range(len(self.nodes)))
            if not (n >> shift) > 1:
                break
            shift += 1
        self.generation += 1
        return max(0, before - slab_pages())
