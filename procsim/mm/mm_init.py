"""Boot-time setup of the page allocator (mm/mm_init.c and the init half of mm/page_alloc.c).

build_zonelists() / find_next_best_node(), init_per_zone_wmark_min() and
setup_per_zone_wmarks(), setup_per_zone_lowmem_reserve(), calculate_totalreserve_pages(),
zone_set_pageset_high_and_batch(), refresh_zone_stat_thresholds(), and the ``boot:``
workload that makes the files look like a machine that has been running.
"""
from __future__ import annotations

from math import isqrt

from .page_types import PAGE_SIZE
from .buddy import Zone, MIGRATE_PCPTYPES
from .layout import ZONE_NORMAL, ZONE_MOVABLE, MAX_NR_ZONES, PAGEBLOCK_NR_PAGES
from .page_alloc import USE_GFP, _Plan
from .vmscan import activate_boot, map_boot
from .printk import pr_info, pr_warn
from .x86_init import direct_map


class MmInit:
    """Kernel mixin: zonelists, watermarks, reserves, pageset sizes, boot workload."""

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

    def refresh_zone_stat_thresholds(self):
        """refresh_zone_stat_thresholds(): calculate_normal_threshold() of each populated zone."""
        for z in self.zones:
            if z.populated:
                mem = z.managed >> 15
                z.stat_threshold = min(self.profile.stat_threshold_max, 2 * _fls(self.nr_cpu_ids) * (1 + _fls(mem)))

    def _init_watermarks(self):
        t = self.machine.tunables
        self.watermark_scale_factor = t.watermark_scale_factor
        # 3.10 has no boost (5.0 added it): its fallbacks raise no mark
        self.watermark_boost_factor = t.watermark_boost_factor if self.profile.watermark_boost else 0
        self.lowmem_reserve_ratio = list(t.lowmem_reserve_ratio)
        self.percpu_pagelist_high_fraction = t.percpu_pagelist_high_fraction
        self.user_min_free_kbytes = -1
        self.init_per_zone_wmark_min()            # postcore_initcall
        # hugepage_init() -> start_stop_khugepaged() (subsys_initcall)
        if t.transparent_hugepage or self.profile.thp_off_recalculates_min_free:
            self.set_recommended_min_free_kbytes()
        if t.min_free_kbytes is not None:         # sysctl vm.min_free_kbytes after boot
            self.min_free_kbytes = self.user_min_free_kbytes = t.min_free_kbytes
            self.setup_per_zone_wmarks()

    def calculate_min_free_kbytes(self):
        """calculate_min_free_kbytes(): sqrt(lowmem_kbytes * 16), clamped; a value the user
        set through vm.min_free_kbytes wins, with the kernel's warning."""
        new = isqrt(self.nr_free_buffer_pages() * (PAGE_SIZE >> 10) * 16)
        if new > self.user_min_free_kbytes:
            self.min_free_kbytes = min(max(new, 128), self.profile.min_free_kbytes_max)
        else:
            pr_warn(self, f"min_free_kbytes is not updated to {new} because user defined value "
                          f"{self.user_min_free_kbytes} is preferred")

    def init_per_zone_wmark_min(self):
        """init_per_zone_wmark_min(): at boot and again after memory hotplug."""
        self.calculate_min_free_kbytes()
        self.setup_per_zone_wmarks()
        self.refresh_zone_stat_thresholds()
        self.setup_per_zone_lowmem_reserve()
        if self.machine.tunables.transparent_hugepage and self.khugepaged_running:
            self.set_recommended_min_free_kbytes()    # khugepaged_min_free_kbytes_update()

    def set_recommended_min_free_kbytes(self):
        """khugepaged's set_recommended_min_free_kbytes(): with THP on, room for two free
        pageblocks per lowmem zone and for fallbacks between the pcp migratetypes.  With THP
        off (5.17+, where it runs at boot too) calculate_min_free_kbytes() once more: the
        watermarks are set by now, so nr_free_buffer_pages() is smaller and so is the minimum
        (a 2 GiB 6.1 guest with transparent_hugepage=never: 5649 kB, not 5663)."""
        if not self.machine.tunables.transparent_hugepage:
            self.calculate_min_free_kbytes()
        else:
            self.khugepaged_running = True
            nr_zones = sum(1 for z in self.zones if z.populated and z.idx <= ZONE_NORMAL)
            rec = PAGEBLOCK_NR_PAGES * nr_zones * 2 + PAGEBLOCK_NR_PAGES * nr_zones * MIGRATE_PCPTYPES ** 2
            rec = min(rec, self.nr_free_buffer_pages() // 20) * (PAGE_SIZE >> 10)
            if rec > self.min_free_kbytes:
                if self.user_min_free_kbytes >= 0:
                    pr_info(self, f"raising min_free_kbytes from {self.min_free_kbytes} to {rec} "
                                  "to help transparent hugepage allocations")
                self.min_free_kbytes = rec
        self.setup_per_zone_wmarks()

    def setup_per_zone_wmarks(self):
        """__setup_per_zone_wmarks(): min shared out in proportion to managed among the lowmem
        zones.  Versions that treat ZONE_MOVABLE like highmem (movable_wmark_clamp: 6.18)
        leave it out of lowmem_pages and clamp its min; 6.1 and older count it as lowmem."""
        pages_min = self.min_free_kbytes // 4
        clamp = self.profile.movable_wmark_clamp
        lowmem = sum(z.managed for z in self.zones if z.idx != ZONE_MOVABLE or not clamp)
        for z in self.zones:
            tmp = pages_min * z.managed // lowmem
            if z.idx == ZONE_MOVABLE and clamp:
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
        """zone_set_pageset_high_and_batch(): batch from managed (zone_batchsize()), high_min/max
        from the low watermark (zone_highsize()).

        Before 6.7 a pageset has one static ``high``; procsim keeps 6.18's dynamic logic and
        pins it by making high_min == high_max == that value (then _nr_pcp_high() and
        decay_pcp_high() never move it): 6.1 zone_highsize() (the low watermark shared among
        the node's CPUs), 5.4 and 3.10 pageset_set_batch()'s ``6 * batch`` taken before batch
        is clamped to 1 (a tiny DMA zone: high 0, batch 1)."""
        batch = min(z.managed >> 10, (1 << 20) // PAGE_SIZE) // 4
        batch = max(batch, 1)
        raw = (1 << ((batch + batch // 2).bit_length() - 1)) - 1
        batch = max(1, raw)
        ncpus = len(self.nodes[z.node].cpus) or self.nr_cpu_ids
        pcp_rule = self.profile.pcp
        if pcp_rule == "6*batch":
            high_min = high_max = 6 * raw
        elif self.percpu_pagelist_high_fraction:
            high_min = high_max = max(z.managed // self.percpu_pagelist_high_fraction // ncpus, batch << 2)
        else:
            high_min = max(z.wmark_low // ncpus, batch << 2)
            high_max = high_min if pcp_rule == "zone_highsize" else max(z.managed // 8 // ncpus, batch << 2)
        for pcp in z.pcp:
            pcp.batch, pcp.high_min, pcp.high_max = batch, high_min, high_max
            if pcp_rule != "6.18":               # pageset_update(): the static high itself
                pcp.high = high_min

    def _init_node_states(self):
        """node_states[] (N_POSSIBLE, N_ONLINE, N_NORMAL_MEMORY, N_MEMORY, N_CPU,
        N_GENERIC_INITIATOR) by the names sysfs gives them, as node lists."""
        nodes = self.nodes
        ids = [n.id for n in nodes]
        self.node_states = {
            "possible": ids, "online": ids,
            "has_normal_memory": [n.id for n in nodes if any(z.populated for z in n.zones[:ZONE_NORMAL + 1])],
            "has_memory": [n.id for n in nodes if any(z.populated for z in n.zones)],
            "has_cpu": [n.id for n in nodes if n.cpus],
            "has_generic_initiator": [],
        }
        # NR_MEMMAP_BOOT_PAGES: the struct page arrays memblock reserved at boot
        self.nr_memmap_boot_pages = sum(r.end - r.start for r in self.layout.reservations
                                        if r.what.startswith("memmap"))
        self.direct_map = direct_map(self.layout.e820)   # {4k, 2M, 1G: bytes}, init_mem_mapping()

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
            if bp.use == "kmalloc_large":
                for node, n in targets:
                    self._boot_kmalloc_large(node.id, n)
                continue
            gfp = USE_GFP[bp.use]
            # stacks are 16 KiB; gigabytes of page cache or anon come as large folios (128 KiB)
            order = 2 if bp.use == "kernel_stack" else (5 if bp.use in ("pagecache", "anon") and pages >= 1 << 16 else 0)
            for node, n in targets:
                blocks = self.alloc_pages_bulk(order, gfp, n >> order, node=node.id, use=bp.use)
                if bp.active:                     # the share used twice since: on the active list
                    activate_boot(self, blocks, len(blocks) * bp.active // bp.size)
                if bp.mapped:                     # the share processes map: the same oldest blocks first
                    map_boot(self, blocks, len(blocks) * bp.mapped // bp.size,
                             len(blocks) * bp.touched // bp.size, len(blocks) * bp.text // bp.size)


    def _boot_kmalloc_large(self, nid: int, pages: int):
        """boot.pages use kmalloc_large: kmalloc()s larger than the largest kmalloc cache go
        straight to the page allocator (kmalloc_large_node) and count as unreclaimable slab
        with no slabinfo line; as 16 KiB blocks, the rest in smaller ones."""
        from .gfp import GFP_KERNEL
        cpu = self.slab._node_cpu.get(nid, 0)
        for order in (2, 1, 0):
            while pages >= 1 << order:
                self.slab._kmalloc_large(PAGE_SIZE << order, GFP_KERNEL, nid, cpu)
                pages -= 1 << order


def _fls(x: int) -> int:
    return x.bit_length()
