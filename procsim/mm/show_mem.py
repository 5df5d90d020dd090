"""Memory reports and totals: si_mem_available() and show_mem() (mm/show_mem.c), the
overcommit figures (mm/util.c vm_commit_limit(), vm_committed_as), and warn_alloc()
(mm/page_alloc.c).

show_mem(): the memory report the kernel prints when an allocation fails or the OOM killer
runs (mm/show_mem.c __show_mem / show_free_areas, 6.18), computed from the live state, and
warn_alloc() (mm/page_alloc.c), the "page allocation failure" warning that carries it.

Printed through printk as the kernel does, record by record: ``Mem-Info:``, one multi-line
record of global counters, a line per node, per zone (watermarks, LRU sizes, pcp pages)
with its ``lowmem_reserve[]:``, the buddy lists per zone (``12*4kB (UME) ... = NkB``),
hugetlb per node, page cache and swap totals, RAM/reserved counts.  The kernel this models
is configured as the distributions ship x86-64 (NUMA, THP, HUGETLB, CMA, MEMORY_FAILURE;
no SHADOW_CALL_STACK or MEM_ALLOC_PROFILING); dump_stack()'s call trace is not simulated.
"""
from __future__ import annotations

from . import gfp as G
from . import printk as P
from . import swapfile
from .buddy import MIGRATE_TYPES, NR_PAGE_ORDERS
from .layout import ZONE_MOVABLE, MAX_NR_ZONES

SHOW_MEM_FILTER_NODES = 0x0001
OVERCOMMIT_RATIO = 50               # vm.overcommit_ratio
MIGRATE_LETTERS = "UMEHI"                  # show_migration_types(): Unmovable Movable rEclaimable Highatomic Isolate
HSTATE_KB = (1048576, 2048)                # the hstates for_each_hstate() walks on x86-64: 1G, then 2M


def K(pages: int) -> int:
    return pages << 2


def _pcp_pages(z) -> int:
    return sum(p.count for p in z.pcp)


def _zones(k, max_zone_idx: int, nodes) -> list:
    """for_each_populated_zone() up to max_zone_idx, on the nodes shown."""
    return [z for z in k.zones if z.populated and z.idx <= max_zone_idx and z.node in nodes]


def show_free_areas(k, max_zone_idx: int = MAX_NR_ZONES - 1, nodes=None, cpu: int = 0) -> list[str]:
    """The records of show_free_areas(), in order (texts; all at the default loglevel)."""
    nodes = set(range(len(k.nodes))) if nodes is None else set(nodes)
    zones = _zones(k, max_zone_idx, nodes)
    st = k.node_stat_total
    free_pcp = sum(_pcp_pages(z) for z in zones)
    out = [f"active_anon:{st('nr_active_anon')} inactive_anon:{st('nr_inactive_anon')} "
           f"isolated_anon:{st('nr_isolated_anon')}\n"
           f" active_file:{st('nr_active_file')} inactive_file:{st('nr_inactive_file')} "
           f"isolated_file:{st('nr_isolated_file')}\n"
           f" unevictable:{st('nr_unevictable')} dirty:{st('nr_dirty')} writeback:{st('nr_writeback')}\n"
           f" slab_reclaimable:{st('nr_slab_reclaimable')} slab_unreclaimable:{st('nr_slab_unreclaimable')}\n"
           f" mapped:{st('nr_mapped')} shmem:{st('nr_shmem')} pagetables:{st('nr_page_table_pages')}\n"
           f" sec_pagetables:{st('nr_sec_page_table_pages')} bounce:0\n"
           f" kernel_misc_reclaimable:{st('nr_kernel_misc_reclaimable')}\n"
           f" free:{k.nr_free_pages} free_pcp:{free_pcp} free_cma:{k.zone_stat_total('nr_free_cma')}"]
    sp = " " if k.profile.show_mem_thp_space else ""
    for node in k.nodes:
        if node.id not in nodes or not any(z.managed for z in node.zones[:max_zone_idx + 1]):
            continue
        s = node.stat
        out.append(
            f"Node {node.id} active_anon:{K(s['nr_active_anon'])}kB inactive_anon:{K(s['nr_inactive_anon'])}kB"
            f" active_file:{K(s['nr_active_file'])}kB inactive_file:{K(s['nr_inactive_file'])}kB"
            f" unevictable:{K(s['nr_unevictable'])}kB isolated(anon):{K(s['nr_isolated_anon'])}kB"
            f" isolated(file):{K(s['nr_isolated_file'])}kB mapped:{K(s['nr_mapped'])}kB"
            f" dirty:{K(s['nr_dirty'])}kB writeback:{K(s['nr_writeback'])}kB shmem:{K(s['nr_shmem'])}kB"
            f" shmem_thp:{sp}{K(s['nr_shmem_hugepages'])}kB shmem_pmdmapped:{sp}{K(s['nr_shmem_pmdmapped'])}kB"
            f" anon_thp:{sp}{K(s['nr_anon_transparent_hugepages'])}kB writeback_tmp:0kB"
            f" kernel_stack:{s['nr_kernel_stack']}kB pagetables:{K(s['nr_page_table_pages'])}kB"
            f" sec_pagetables:{K(s['nr_sec_page_table_pages'])}kB"
            f" all_unreclaimable? {'yes' if node.unreclaimable else 'no'}")
    for z in zones:
        zs = z.stat
        out.append(
            f"Node {z.node} {z.name} free:{K(z.nr_free)}kB boost:{K(z.boost)}kB min:{K(z.wmark_min)}kB"
            f" low:{K(z.wmark_low)}kB high:{K(z.wmark_high)}kB"
            f" reserved_highatomic:{K(z.nr_reserved_highatomic)}KB"
            f" active_anon:{K(zs['nr_zone_active_anon'])}kB inactive_anon:{K(zs['nr_zone_inactive_anon'])}kB"
            f" active_file:{K(zs['nr_zone_active_file'])}kB inactive_file:{K(zs['nr_zone_inactive_file'])}kB"
            f" unevictable:{K(zs['nr_zone_unevictable'])}kB writepending:{K(zs['nr_zone_write_pending'])}kB"
            f" present:{K(z.present)}kB managed:{K(z.managed)}kB mlocked:{K(zs['nr_mlock'])}kB bounce:0kB"
            f" free_pcp:{K(_pcp_pages(z))}kB local_pcp:{K(z.pcp[cpu].count)}kB free_cma:{K(zs['nr_free_cma'])}kB")
        out.append("lowmem_reserve[]:" + "".join(f" {r}" for r in z.lowmem_reserve))
    for z in zones:
        parts, total = [], 0
        for order in range(NR_PAGE_ORDERS):
            nr = z.nr_free_order(order)
            total += nr << order
            parts.append(f"{nr}*{K(1) << order}kB ")
            if nr:
                types = "".join(MIGRATE_LETTERS[mt] for mt in range(MIGRATE_TYPES) if z.free_count(order, mt))
                parts.append(f"({types}) ")
        out.append(f"Node {z.node} {z.name}: {''.join(parts)}= {K(total)}kB")
    for nid in sorted(nodes):
        out += [f"Node {nid} hugepages_total=0 hugepages_free=0 hugepages_surp=0 hugepages_size={kb}kB"
                for kb in HSTATE_KB]
    out.append(f"{k.node_stat_total('nr_file_pages')} total pagecache pages")
    out += show_swap_cache_info(k)
    return out


def show_swap_cache_info(k) -> list[str]:
    """mm/swap_state.c show_swap_cache_info()."""
    return [f"{swapfile.total_swapcache_pages(k)} pages in swap cache",
            f"Free swap  = {K(swapfile.get_nr_swap_pages(k))}kB",
            f"Total swap = {K(swapfile.total_swap_pages(k))}kB"]


def show_mem_lines(k, filter: int = 0, nodemask=None, max_zone_idx: int = MAX_NR_ZONES - 1,
                   cpu: int = 0) -> list[str]:
    """__show_mem()'s records.  With SHOW_MEM_FILTER_NODES and no nodemask the current
    task's cpuset (every node here) decides which nodes are shown."""
    nodes = set(nodemask) if (filter & SHOW_MEM_FILTER_NODES and nodemask is not None) else None
    out = ["Mem-Info:", *show_free_areas(k, max_zone_idx, nodes, cpu)]
    populated = [z for z in k.zones if z.populated]
    out += [f"{sum(z.present for z in populated)} pages RAM",
            f"{sum(z.present for z in populated if z.idx == ZONE_MOVABLE)} pages HighMem/MovableOnly",
            f"{sum(z.present - z.managed for z in populated)} pages reserved"]
    # CONFIG_CMA and CONFIG_MEMORY_FAILURE lines, as the version's meminfo shows them configured
    if "CmaTotal" in k.profile.meminfo_lines:
        out.append("0 pages cma reserved")
    if "HardwareCorrupted" in k.profile.meminfo_lines:
        out.append("0 pages hwpoisoned")
    return out


def show_mem(k, filter: int = 0, nodemask=None, max_zone_idx: int = MAX_NR_ZONES - 1, cpu: int = 0) -> None:
    for text in show_mem_lines(k, filter, nodemask, max_zone_idx, cpu):
        P.printk(k, text)


# ---- warn_alloc ----------------------------------------------------------------------------
DEFAULT_RATELIMIT_INTERVAL_NS = 5 * 10**9   # DEFINE_RATELIMIT_STATE(nopage_rs, 5*HZ, 10)
DEFAULT_RATELIMIT_BURST = 10


class RatelimitState:
    """lib/ratelimit.c ___ratelimit() in simulated time: burst messages per interval; the
    ones refused are counted and reported when the next interval opens."""

    def __init__(self, name: str, interval_ns: int = DEFAULT_RATELIMIT_INTERVAL_NS,
                 burst: int = DEFAULT_RATELIMIT_BURST):
        self.name, self.interval, self.burst = name, interval_ns, burst
        self.begin = None
        self.printed = self.missed = 0

    def __call__(self, k) -> bool:
        now = k.now_ns
        if self.begin is None:
            self.begin = now
        if now > self.begin + self.interval:
            if self.missed:
                P.pr_warn(k, f"{self.name}: {self.missed} callbacks suppressed")
                self.missed = 0
            self.begin, self.printed = now, 0
        if self.burst > self.printed:
            self.printed += 1
            return True
        self.missed += 1
        return False


def _nopage_rs(k) -> RatelimitState:
    return k.nopage_rs


def mems_allowed(k) -> str:
    """The root cpuset's mems_allowed (N_MEMORY) as %*pbl."""
    return P.bitmap_list(n.id for n in k.nodes if n.has_memory)


def warn_alloc(k, gfp: int, order: int, comm: str = "procsim", nodemask=None, cpu: int = 0) -> bool:
    """warn_alloc(gfp, nodemask, "page allocation failure: order:%u", order): the warning
    line (with the current cpuset), then warn_alloc_show_mem().  __GFP_NOWARN and the
    ratelimit (10 per 5 s) keep it quiet; returns whether it printed."""
    if gfp & G.__GFP_NOWARN or not _nopage_rs(k)(k):
        return False
    if gfp & G.__GFP_DMA and not any(z.managed for z in k.zones if z.idx == 0):
        return False
    nm = "(null)" if nodemask is None else P.bitmap_list(nodemask)
    P.pr_warn(k, f"{comm[:15]}: page allocation failure: order:{order}, mode:{gfp:#x}"
                 f"({P.format_gfp_flags(gfp, k.profile.gfpflag_names)}), nodemask={nm},cpuset=/,mems_allowed={mems_allowed(k)}")
    # warn_alloc_show_mem(): a task that may not sleep sees every node
    filt = SHOW_MEM_FILTER_NODES if gfp & G.__GFP_DIRECT_RECLAIM else 0
    show_mem(k, filt, nodemask, G.gfp_zone(gfp), cpu)
    return True


def explain_nopage(k, zonelist, order: int, gfp: int, node: int) -> str:
    """Why the slow path found nothing, zone by zone, for the ENOMEM reply: the free pages
    against min + lowmem_reserve (the watermark), or enough free pages but no block of the
    order (fragmentation)."""
    flags = G.gfp_to_alloc_flags(gfp, order)
    highest = zonelist[0].idx
    parts = []
    for z in zonelist:
        reserve = z.lowmem_reserve[highest]
        head = f"{'Node %d ' % z.node if len(k.nodes) > 1 else ''}{z.name} {z.nr_free} free pages"
        if not k._watermark_ok(z, 0, z.wmark_min, highest, flags):
            parts.append(f"{head}, not above min {z.wmark_min} + lowmem_reserve {reserve} (watermark)")
            continue
        largest = max((o for o in range(NR_PAGE_ORDERS) if z.nr_free_order(o)), default=-1)
        if largest < order:
            parts.append(f"{head} above min {z.wmark_min} + lowmem_reserve {reserve}, but the largest free "
                         f"block is order {largest} (fragmentation)")
        else:
            parts.append(f"{head} above min + lowmem_reserve, but no order-{order} block of a type this "
                         f"request may take (fragmentation)")
    return (f"alloc_pages(order={order}, {G.format_gfp(gfp)}, node={node}) failed: " + "; ".join(parts))


class ShowMem:
    """Kernel mixin: MemAvailable, CommitLimit, Committed_AS, and the allocator's warn_alloc hook."""

    def si_mem_available(self) -> int:
        """Free minus reserves, plus what reclaim could free of the file LRU and the
        reclaimable kernel memory (half of each at most, never below the low marks)."""
        wmark_low = sum(z.wmark_low for z in self.zones)
        available = self.nr_free_pages - self.totalreserve_pages
        file_lru = self.node_stat_total("nr_active_file") + self.node_stat_total("nr_inactive_file")
        available += file_lru - min(file_lru // 2, wmark_low)
        reclaimable = self.node_stat_total("nr_slab_reclaimable") + self.node_stat_total("nr_kernel_misc_reclaimable")
        available += reclaimable - min(reclaimable // 2, wmark_low)
        return max(available, 0)

    def vm_commit_limit(self) -> int:
        """vm_commit_limit(): vm.overcommit_kbytes in pages if set, else (totalram - hugetlb) *
        vm.overcommit_ratio / 100; plus total_swap_pages."""
        kbytes = self.sysctl_overcommit_kbytes
        if kbytes:
            allowed = kbytes >> 2
        else:
            hugetlb_pages = len(self.huge_pool) << 9
            allowed = (self.managed_pages - hugetlb_pages) * self.sysctl_overcommit_ratio // 100
        return allowed + swapfile.total_swap_pages(self)

    def vm_enough_memory(self, pages: int, total_vm: int = 0) -> None:
        """__vm_enough_memory() for an anon commit of ``pages`` by a task of ``total_vm``
        pages (a tag's use=anon allocation) under OVERCOMMIT_NEVER: refused when Committed_AS
        would reach CommitLimit less min(total_vm / 32, user_reserve_kbytes) (the control
        file's tasks are root: cap_sys_admin keeps the admin reserve).  MMError(ENOMEM),
        nothing allocated.  OVERCOMMIT_ALWAYS takes anything; OVERCOMMIT_GUESS's one test
        (a single mapping larger than RAM + swap) is not applied: a ``count=K`` command faults
        pages one by one, and one larger than memory reclaims its own oldest pages or meets
        the OOM killer, as faults do."""
        import errno
        from .errors import MMError
        if self.sysctl_overcommit_memory != 2:
            return
        from .sysctl import read
        allowed = self.vm_commit_limit()
        allowed -= min(total_vm // 32, int(read(self, "user_reserve_kbytes")) >> 2)
        committed = self.vm_committed_as()
        if committed + pages >= allowed:
            raise MMError(errno.ENOMEM, f"__vm_enough_memory: Committed_AS {committed} + {pages} pages reaches "
                                        f"CommitLimit less the user reserve, {allowed} pages (vm.overcommit_memory=2)")

    def vm_committed_as(self) -> int:
        """What vm_committed_as charges that the model has: anon and shmem pages."""
        return self.node_stat_total("nr_anon_pages") + self.node_stat_total("nr_shmem")

    def warn_alloc(self, gfp: int, order: int, node: int, cpu: int = 0) -> None:
        """The slow path's failure: warn_alloc() into the kernel log (see the function)."""
        self.timeline.note(self, "alloc_fail", f"order {order}")
        warn_alloc(self, gfp, order, cpu=cpu)
