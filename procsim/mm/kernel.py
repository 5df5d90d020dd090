"""The simulated kernel: nodes, zonelists, watermarks and the page allocator's entry points.

``Kernel(machine)`` boots the machine the way mm_init/page_alloc do: seed the free lists
from memblock, compute min_free_kbytes, watermarks, lowmem_reserve and pageset sizes, bring
up SLUB, then run the ``boot:`` workload so the files look like a machine that has been
running.  Everything is deterministic: the same YAML and the same commands give the same
pfns, byte for byte.
"""
from __future__ import annotations

import errno
from math import isqrt

from ..machine import Machine, PAGE_SIZE
from . import gfp as G
from .buddy import (Zone, Page, PerCpuPages, MIGRATE_MOVABLE, MIGRATE_HIGHATOMIC, MIGRATE_ISOLATE, MIGRATE_PCPTYPES,
                    MAX_PAGE_ORDER, NR_PAGE_ORDERS, NR_PCP_LISTS,
                    PAGE_ALLOC_COSTLY_ORDER, PCP_BATCH_SCALE_MAX, pcp_allowed_order, order_to_pindex,
                    pindex_to_order, migratetype_is_mergeable)
from .errors import MMError
from .show_mem import explain_nopage
from .slowpath import alloc_pages_slowpath
from .task import Tasks
from .vmscan import LRU_OF_USE, activate_boot, lru_add, lru_del, note_boot_slabs, run_kswapd
from .layout import (build, Layout, ZONE_DMA32, ZONE_NORMAL, ZONE_MOVABLE, MAX_NR_ZONES, PAGEBLOCK_ORDER,
                     PAGEBLOCK_NR_PAGES)

NODE_STAT_ITEMS = (
    "nr_inactive_anon", "nr_active_anon", "nr_inactive_file", "nr_active_file", "nr_unevictable",
    "nr_slab_reclaimable", "nr_slab_unreclaimable", "nr_isolated_anon", "nr_isolated_file",
    "workingset_nodes", "workingset_refault_anon", "workingset_refault_file", "workingset_activate_anon",
    "workingset_activate_file", "workingset_restore_anon", "workingset_restore_file",
    "workingset_nodereclaim", "nr_anon_pages", "nr_mapped", "nr_file_pages", "nr_dirty", "nr_writeback",
    "nr_shmem", "nr_shmem_hugepages", "nr_shmem_pmdmapped", "nr_file_hugepages", "nr_file_pmdmapped",
    "nr_anon_transparent_hugepages", "nr_vmscan_write", "nr_vmscan_immediate_reclaim", "nr_dirtied",
    "nr_written", "nr_throttled_written", "nr_kernel_misc_reclaimable", "nr_foll_pin_acquired",
    "nr_foll_pin_released", "nr_kernel_stack", "nr_page_table_pages", "nr_sec_page_table_pages",
    "nr_iommu_pages", "nr_swapcached", "pgpromote_success", "pgpromote_candidate",
    "pgpromote_candidate_nrl", "pgdemote_kswapd", "pgdemote_direct", "pgdemote_khugepaged",
    "pgdemote_proactive", "nr_hugetlb", "nr_balloon_pages", "nr_kernel_file_pages")

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
VM_EVENTS_DRIVEN = ("pgalloc_dma", "pgalloc_dma32", "pgalloc_normal", "pgalloc_movable", "pgalloc_device",
                    "pgfree", "drop_slab")


class PgData:
    """pg_data_t: a NUMA node."""

    def __init__(self, nid: int, zones: list[Zone], cpus: tuple[int, ...]):
        self.id, self.zones, self.cpus = nid, zones, cpus
        self.stat = dict.fromkeys(NODE_STAT_ITEMS, 0)

    @property
    def present(self): return sum(z.present for z in self.zones)
    @property
    def managed(self): return sum(z.managed for z in self.zones)
    @property
    def nr_free(self): return sum(z.nr_free for z in self.zones)
    @property
    def has_memory(self): return any(z.managed for z in self.zones)


class _Plan:
    """A (node, gfp) request worked out once: the zonelist and what the fast path reads."""
    __slots__ = ("node", "zonelist", "mt", "flags", "zone", "pgalloc", "local0")

    def __init__(self, node: int, zonelist: list[Zone], mt: int, flags: int, cpu0_node: int):
        self.node, self.zonelist, self.mt, self.flags = node, zonelist, mt, flags
        self.zone = zonelist[0]                   # the preferred zone
        self.pgalloc = _PGALLOC[self.zone.idx]
        self.local0 = "numa_local" if self.zone.node == cpu0_node else "numa_other"   # for cpu 0


class Kernel:
    def __init__(self, machine: Machine, boot: bool = True, slab: bool = True):
        self.machine = machine
        self.layout: Layout = build(machine)
        self.nr_cpu_ids = machine.nr_cpu_ids
        self.cpu_node = [s for s, _, _ in machine.cpu_topology()]
        self.nodes = [PgData(n.id, [Zone(z, self.nr_cpu_ids) for z in n.zones], n.cpus)
                      for n in self.layout.nodes]
        self.zones = [z for n in self.nodes for z in n.zones]
        self.vm_events = dict.fromkeys(VM_EVENTS_DRIVEN, 0)
        self.kswapd_pending: dict[int, tuple[int, int]] = {}   # node -> (order, highest zone) woken
        self.generation = 0
        self.tasks = Tasks(self)                   # who owns what the control file allocates (mm/task.py)
        self.percpu_pages = 0
        self.vmalloc_pages = 0
        for z in self.zones:                       # memblock_free_all: pgfree starts near managed
            self.vm_events["pgfree"] += z.seed()
        self._build_zonelists()
        self._init_watermarks()
        self.slab = None
        if slab:                                   # SLUB sits on top of the page allocator
            from .slub import Slub
            self.slab = Slub(self)
        if boot and slab:
            self.slab.apply_boot(machine.boot.caches)
            self._boot_pages()
        self.vmstat_settle()
        self.booted = True                         # pages allocated from now on are a user's
        note_boot_slabs(self)

    # ---- zonelists: build_zonelists(), find_next_best_node() ------------------------------
    def _build_zonelists(self):
        dist = self.machine.distances
        mem_nodes = [n.id for n in self.nodes if n.has_memory]
        self.node_order = []
        for local in range(len(self.nodes)):
            used, order, load, prev = {local}, [local], [0] * len(self.nodes), local
            while True:
                best, best_val = -1, None
                for n in mem_nodes:
                    if n in used:
                        continue
                    val = dist[local][n] + (n < local)
                    if self.nodes[n].cpus:
                        val += 1                  # PENALTY_FOR_NODE_WITH_CPUS
                    val = val * 1024 + load[n]
                    if best_val is None or val < best_val:
                        best, best_val = n, val
                if best < 0:
                    break
                used.add(best)
                if dist[local][best] != dist[local][prev]:
                    load[best] += 1
                order.append(best)
                prev = best
            self.node_order.append(order)
        self.zonelists = [[z for n in order for z in reversed(self.nodes[n].zones) if z.managed]
                          for order in self.node_order]
        self._plans: dict[tuple[int, int], _Plan] = {}
        self._plans0: dict[int, _Plan] = {}       # gfp -> plan, for calls that name no node or cpu
        self.zonelists_thisnode = [[z for z in reversed(self.nodes[n].zones) if z.managed]
                                   for n in range(len(self.nodes))]

    # ---- watermarks, reserves, pagesets -----------------------------------------------------
    def nr_free_buffer_pages(self) -> int:
        """Σ max(0, managed - high) over the GFP_USER zonelist of node 0's CPU 0."""
        node = self.cpu_node[0]
        return sum(max(0, z.managed - z.wmark_high) for z in self.zonelists[node] if z.idx <= ZONE_NORMAL)

    def _init_watermarks(self):
        t = self.machine.tunables
        self.watermark_scale_factor = t.watermark_scale_factor
        self.watermark_boost_factor = t.watermark_boost_factor
        self.lowmem_reserve_ratio = list(t.lowmem_reserve_ratio)
        self.percpu_pagelist_high_fraction = t.percpu_pagelist_high_fraction
        self.user_min_free_kbytes = -1
        # init_per_zone_wmark_min (postcore_initcall)
        self.min_free_kbytes = min(max(isqrt(self.nr_free_buffer_pages() * 4 * 16), 128), 262144)
        self.setup_per_zone_wmarks()
        for z in self.zones:
            if z.populated:                      # refresh_zone_stat_thresholds
                mem = z.managed >> 15
                z.stat_threshold = min(125, 2 * _fls(self.nr_cpu_ids) * (1 + _fls(mem)))
        self.setup_per_zone_lowmem_reserve()
        # hugepage_init -> set_recommended_min_free_kbytes (subsys_initcall)
        if t.transparent_hugepage:
            nr_zones = sum(1 for z in self.zones if z.populated and z.idx <= ZONE_NORMAL)
            rec = PAGEBLOCK_NR_PAGES * nr_zones * 2 + PAGEBLOCK_NR_PAGES * nr_zones * MIGRATE_PCPTYPES ** 2
            rec = min(rec, self.nr_free_buffer_pages() // 20) * 4
            if rec > self.min_free_kbytes:
                self.min_free_kbytes = rec
            self.setup_per_zone_wmarks()
        if t.min_free_kbytes is not None:         # sysctl vm.min_free_kbytes after boot
            self.min_free_kbytes = self.user_min_free_kbytes = t.min_free_kbytes
            self.setup_per_zone_wmarks()

    def setup_per_zone_wmarks(self):
        pages_min = self.min_free_kbytes // 4
        lowmem = sum(z.managed for z in self.zones if z.idx != ZONE_MOVABLE)
        for z in self.zones:
            tmp = pages_min * z.managed // lowmem
            if z.idx == ZONE_MOVABLE:
                wmin = min(max(z.managed // 1024, 32), 128)
            else:
                wmin = tmp
            step = max(tmp >> 2, z.managed * self.watermark_scale_factor // 10000)
            z.boost = 0
            z._watermark = [wmin, wmin + step, wmin + 2 * step, wmin + 3 * step]
        for z in self.zones:
            self.zone_pcp_update(z)
        self.calculate_totalreserve_pages()

    def setup_per_zone_lowmem_reserve(self):
        for node in self.nodes:
            for i in range(MAX_NR_ZONES - 1):
                z = node.zones[i]
                ratio = self.lowmem_reserve_ratio[i]
                clear = not ratio or not z.managed
                managed = 0
                for j in range(i + 1, MAX_NR_ZONES):
                    managed += node.zones[j].managed
                    z.lowmem_reserve[j] = 0 if clear else managed // ratio
        self.calculate_totalreserve_pages()

    def calculate_totalreserve_pages(self):
        self.totalreserve_pages = sum(min(z.managed, max(z.lowmem_reserve) + z.wmark_high) for z in self.zones)

    def zone_pcp_update(self, z: Zone):
        """zone_set_pageset_high_and_batch(): batch from managed, high_min/max from low wmark."""
        batch = min(z.managed >> 10, (1 << 20) // PAGE_SIZE) // 4
        batch = max(batch, 1)
        batch = max(1, (1 << ((batch + batch // 2).bit_length() - 1)) - 1)
        ncpus = len(self.nodes[z.node].cpus) or self.nr_cpu_ids
        if self.percpu_pagelist_high_fraction:
            high_min = high_max = max(z.managed // self.percpu_pagelist_high_fraction // ncpus, batch << 2)
        else:
            high_min = max(z.wmark_low // ncpus, batch << 2)
            high_max = max(z.managed // 8 // ncpus, batch << 2)
        for pcp in z.pcp:
            pcp.batch, pcp.high_min, pcp.high_max = batch, high_min, high_max

    # ---- the allocator's entry points ---------------------------------------------------------
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
        """__alloc_pages(): fast path at the low watermark, then the slow path at min.

        There is no reclaim or compaction: when even the slow path fails the request fails
        with ENOMEM and nothing has changed.
        """
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
            # (a zone's lowmem_reserve against its own index is 0)
            if lst and (z.nr_free - z.nr_free_highatomic > z._watermark[2] + z.boost
                        if not order else self._watermark_ok(z, order, z._watermark[2] + z.boost, z.idx, plan.flags)):
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
                page.cpu = cpu; page.use = None
                z.allocated[pfn] = page
                if mt == MIGRATE_MOVABLE:
                    self._movable_used(z, pfn, order, +1)
        if page is None:
            zonelist, flags = plan.zonelist, plan.flags
            page = self._get_page_from_freelist(zonelist, order, flags, mt, cpu) or \
                alloc_pages_slowpath(self, zonelist, order, gfp, mt, cpu, plan.node)
            if page is None:
                run_kswapd(self)
                raise MMError(errno.ENOMEM, explain_nopage(self, plan.zonelist, order, gfp, plan.node))
            z = page.zone
        if z.boost:                               # kswapd has run and reset the boost
            z.boost = 0
        if use:
            page.use = use
            self._account_use(page, +1)
            if use in LRU_OF_USE:
                lru_add(self, page)
        self.generation += 1
        if self.kswapd_pending:                   # woken by the slow path: runs as we return
            run_kswapd(self)
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
        get = self._get_page_from_freelist
        for _ in range(nr - 1):
            page = get(zonelist, order, flags, mt, cpu) or get(zonelist, order, G.gfp_to_alloc_flags(gfp, order), mt, cpu)
            if page is None:
                for p in reversed(pages):
                    self.free_pages(p)
                raise MMError(errno.ENOMEM, f"alloc_pages_bulk: only {len(pages)} of {nr} order-{order} blocks "
                                            f"({G.format_gfp(gfp)}) on node {node}")
            if page.zone.boost:
                page.zone.boost = 0
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
        plan = self._plans[(node, gfp)] = _Plan(node, zonelist, G.gfp_migratetype(gfp), flags, self.cpu_node[0])
        if cpu0:
            self._plans0[gfp] = plan
        return plan

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
                reserve = z.lowmem_reserve[preferred.idx]
                if not z.below_high:
                    if (not order and z.nr_free - z.nr_free_highatomic > z._watermark[2] + z.boost + reserve) \
                            or self._watermark_fast(z, order, z.wmark_high, preferred.idx, flags):
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

    def _watermark_ok(self, z: Zone, order, mark, highest, flags) -> bool:
        """__zone_watermark_ok(): free pages less the unusable ones (the rest of the block,
        HighAtomic pages without ALLOC_RESERVES) against the mark lowered by the reserves."""
        free = z.nr_free - ((1 << order) - 1)
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
        if not order:
            unusable = 0 if flags & _ALLOC_RESERVES else z.nr_free_highatomic
            usable = z.nr_free - min(z.nr_free, unusable)
            if usable > mark + z.lowmem_reserve[highest]:
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
        return self._prep_new_page(preferred, z, pfn, order, flags, mt, cpu)

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
        page.pfn = pfn; page.order = order; page.zone = z; page.migratetype = mt; page.cpu = cpu; page.use = None
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
            batch = self._nr_pcp_alloc(pcp, z, order)
            mode = [0]
            for _ in range(batch):
                pfn = self._rmqueue_typed(z, order, mt, flags, mode)
                if pfn < 0:
                    break
                lst.append(pfn)
                pcp.count += 1 << order
            if not lst:
                return -1
        pcp.count -= 1 << order
        return lst.popleft()

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
            pfn = z.rmqueue_steal(order, mt)
            if pfn >= 0:
                mode[0] = 2
                return pfn
        return -1

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
            start = pfn & ~(PAGEBLOCK_NR_PAGES - 1)
            if start < z.start_pfn or start + PAGEBLOCK_NR_PAGES > z.end_pfn:
                return
            z.move_freepages_block(start, mt, MIGRATE_HIGHATOMIC)
            z.set_pageblock_migratetype(start, MIGRATE_HIGHATOMIC)
            z.nr_reserved_highatomic += PAGEBLOCK_NR_PAGES
        else:
            z.change_pageblock_range(pfn, order, MIGRATE_HIGHATOMIC)
            z.nr_reserved_highatomic += 1 << order

    @staticmethod
    def _movable_used(z: Zone, pfn: int, order: int, sign: int):
        if order < PAGEBLOCK_ORDER:              # the common case: inside one pageblock
            b = pfn >> PAGEBLOCK_ORDER
            z.movable_used[b] = z.movable_used.get(b, 0) + (sign << order)
            return
        n = 1 << order
        for b in range(pfn >> PAGEBLOCK_ORDER, ((pfn + n - 1) >> PAGEBLOCK_ORDER) + 1):
            z.movable_used[b] = z.movable_used.get(b, 0) + sign * min(n, PAGEBLOCK_NR_PAGES)

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
        nr = 1 << order
        self.vm_events["pgfree"] += nr
        self.generation += 1
        mt = z.pageblock_mt[(pfn >> PAGEBLOCK_ORDER) - z._pb_base]
        pindex = _PCP_LIST[order][mt]
        if pindex < 0:                           # not a pcp order, or an Isolate pageblock
            z.free_one_page(pfn, order, mt)
            return
        # free_frozen_page_commit(): onto the list head, then tune high and maybe free a batch
        pcp = z.pcp[page.cpu]
        pcp.alloc_factor >>= 1
        pcp.lists[pindex].appendleft(pfn)
        pcp.count = count = pcp.count + nr
        batch = pcp.batch
        free_high = False
        if order and order <= PAGE_ALLOC_COSTLY_ORDER:
            free_high = pcp.free_count >= batch + pcp.high_min // 2 and pcp.prev_free_high_order
            pcp.prev_free_high_order = True
        else:
            pcp.prev_free_high_order = False
        if pcp.free_count < batch << PCP_BATCH_SCALE_MAX:
            pcp.free_count += nr
        high = pcp.high
        # _nr_pcp_high() returns pcp.high untouched when it is already within [high_min,
        # high_max] and the zone is above its high mark with room left on the pcp: the
        # common free, so skip the call.
        if free_high or z.below_high or count >= high or not pcp.high_min <= high <= pcp.high_max:
            high = self._nr_pcp_high(pcp, z, batch, free_high)
        if count >= high:
            self._free_pcppages_bulk(z, self._nr_pcp_free(pcp, batch, high, free_high), pcp, pindex)
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
    def _free_pcppages_bulk(z: Zone, count: int, pcp: PerCpuPages, pindex: int):
        """Round-robin over the lists from the one just freed to, taking from the tails."""
        count = min(count, pcp.count)
        pindex -= 1
        while count > 0:
            while True:
                pindex = pindex + 1 if pindex < NR_PCP_LISTS - 1 else 0
                lst = pcp.lists[pindex]
                if lst:
                    break
            order = pindex_to_order(pindex)
            n = 1 << order
            while count > 0 and lst:
                pfn = lst.pop()
                count -= n
                pcp.count -= n
                z.free_one_page(pfn, order, z.get_pageblock_migratetype(pfn))

    def drop_slab(self) -> int:
        """The slab half of vm.drop_caches: shrink every cache; returns the pages freed."""
        self.vm_events["drop_slab"] += 1
        freed = sum(self.slab.kmem_cache_shrink(c) for c in list(self.slab.caches))
        self.generation += 1
        return freed

    def drain_all_pages(self):
        """drain_all_pages(): every pcp list back to the buddy (memory pressure, drop_caches)."""
        for z in self.zones:
            for pcp in z.pcp:
                if pcp.count:
                    self._free_pcppages_bulk(z, pcp.count, pcp, 0)
        self.generation += 1

    def vmstat_settle(self):
        """What the vmstat worker does to an idle machine over a few seconds: decay_pcp_high()
        brings every used pageset's high down to high_min and drains what is above it."""
        for z in self.zones:
            for pcp in z.pcp:
                while pcp.high > pcp.high_min:
                    high = max(pcp.count - (pcp.batch << PCP_BATCH_SCALE_MAX),
                               pcp.high - (pcp.high >> 3), pcp.high_min)
                    if high >= pcp.high:             # below 8 the 1/8 step is 0: the decay levels off
                        break
                    pcp.high = high
                    if pcp.count > pcp.high:
                        self._free_pcppages_bulk(z, min(pcp.count - pcp.high, pcp.batch), pcp, 0)
                pcp.alloc_factor = pcp.free_count = 0
        self.generation += 1

    def mod_node_stat(self, nid: int, item: str, delta: int):
        self.nodes[nid].stat[item] += delta

    # ---- boot workload --------------------------------------------------------------------
    def _boot_pages(self):
        """boot.pages: kernel stacks, page tables, page cache, anon... in YAML order, split over
        the nodes with memory in proportion to their size when no node is named."""
        mem_nodes = [n for n in self.nodes if n.has_memory]
        total = sum(n.managed for n in mem_nodes)
        for bp in self.machine.boot.pages:
            pages = -(-bp.size // PAGE_SIZE)
            targets = [(self.nodes[bp.node], pages)] if bp.node is not None else \
                [(n, pages * n.managed // total) for n in mem_nodes]
            gfp = USE_GFP[bp.use]
            # stacks are 16 KiB; gigabytes of page cache or anon come as large folios (128 KiB)
            order = 2 if bp.use == "kernel_stack" else (5 if bp.use in ("pagecache", "anon") and pages >= 1 << 16 else 0)
            for node, n in targets:
                blocks = self.alloc_pages_bulk(order, gfp, n >> order, node=node.id, use=bp.use)
                if bp.active:                     # the share used twice since: on the active list
                    activate_boot(self, blocks, len(blocks) * bp.active // bp.size)

    # ---- totals the views need ------------------------------------------------------------
    @property
    def managed_pages(self) -> int:
        return sum(z.managed for z in self.zones)

    @property
    def nr_free_pages(self) -> int:
        return sum(z.nr_free for z in self.zones)

    def node_stat_total(self, item: str) -> int:
        return sum(n.stat[item] for n in self.nodes)

    def zone_stat_total(self, item: str) -> int:
        return sum(z.stat[item] for z in self.zones)

    def numa_total(self, item: str) -> int:
        return sum(z.numa[item] for z in self.zones)


# Names with two leading underscores would be mangled inside the class body.
_GFP_THISNODE = G.__GFP_THISNODE
_GFP_KSWAPD_RECLAIM = G.__GFP_KSWAPD_RECLAIM
_ALLOC_RESERVES = G.ALLOC_RESERVES
# The pcp list of a block by (order, migratetype), or -1 where the pcp is bypassed (orders
# without a list, Isolate pageblocks); freed HighAtomic blocks go to the Movable list.
_PCP_LIST = tuple(tuple(order_to_pindex(mt if mt < MIGRATE_PCPTYPES else MIGRATE_MOVABLE, o)
                        if pcp_allowed_order(o) and mt != MIGRATE_ISOLATE else -1 for mt in range(5))
                  for o in range(NR_PAGE_ORDERS))
_PGALLOC = ("pgalloc_dma", "pgalloc_dma32", "pgalloc_normal", "pgalloc_movable", "pgalloc_device")


def _fls(x: int) -> int:
    return x.bit_length()
