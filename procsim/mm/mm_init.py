"""Boot-time setup of the page allocator (mm/mm_init.c and the init half of mm/page_alloc.c).

build_zonelists() / find_next_best_node(), init_per_zone_wmark_min() and
setup_per_zone_wmarks(), setup_per_zone_lowmem_reserve(), calculate_totalreserve_pages(),
zone_set_pageset_high_and_batch(), refresh_zone_stat_thresholds(), and the ``boot:``
workload that makes the files look like a machine that has been running.
"""
from __future__ import annotations

import errno
from math import isqrt

from bisect import bisect_right

from .page_types import PAGE_SIZE, MAX_PAGE_ORDER, NR_PAGE_ORDERS, ZONE_NAMES, pageblock_ranges
from .buddy import (Zone, MIGRATE_PCPTYPES, MIGRATE_ISOLATE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE,
                    largest_block, order_to_pindex, pindex_to_order)
from .layout import ZONE_NORMAL, ZONE_MOVABLE, MAX_NR_ZONES, PAGEBLOCK_NR_PAGES, PAGEBLOCK_ORDER, merge_ranges, subtract_ranges
from .gfp import ALLOC_WMARK_MIN, GFP_KERNEL
from .page_alloc import USE_GFP, _Plan
from .compaction import page_movable
from .errors import MMError
from .migrate import move_page
from .vmscan import LRU_OF_USE, activate_boot, lru_split, map_boot
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
            # unaccounted: pages drivers and subsystems take with alloc_pages() and no counter
            # names (DMA buffers, page_frag caches...): only MemFree says they are gone
            use = None if bp.use == "unaccounted" else bp.use
            gfp = USE_GFP[use] if use else GFP_KERNEL
            # stacks are 16 KiB; gigabytes of page cache or anon come as large folios (128 KiB)
            order = 2 if bp.use == "kernel_stack" else (5 if bp.use in ("pagecache", "anon") and pages >= 1 << 16 else 0)
            for node, n in targets:
                blocks = self.alloc_pages_bulk(order, gfp, n >> order, node=node.id, use=use)
                if bp.active:                     # the share used twice since: on the active list
                    activate_boot(self, blocks, len(blocks) * bp.active // bp.size)
                if bp.mapped:                     # the share processes map: the same oldest blocks first
                    map_boot(self, blocks, len(blocks) * bp.mapped // bp.size,
                             len(blocks) * bp.touched // bp.size, len(blocks) * bp.text // bp.size)


    def _boot_free(self):
        """boot.free: each zone's free memory in the blocks per order the description asks for
        (a cloned machine's buddyinfo), made by moving the boot workload's anon and page cache
        (migration, as compaction moves them) so that what stays free is cut into those blocks.
        Free memory in unmovable, movable and reclaimable pageblocks and the movable pages are
        rearranged; pages the kernel holds stay, and so does a zone the plan would not bring
        closer.  A construction of the boot, not its history: the moves are not counted.
        ``pageblocks`` then gives the pageblocks their types (_type_pageblocks); ``boost`` is
        the zone's watermark boost at the moment the description was taken."""
        events = dict(self.vm_events)
        for bf in self.machine.boot.free:
            z = self.nodes[bf.node].zones[ZONE_NAMES.index(bf.zone)]
            if not z.managed:
                raise MMError(errno.EINVAL, f"boot.free: node {bf.node} has no {bf.zone} memory")
            want = list(bf.orders) + [0] * (NR_PAGE_ORDERS - len(bf.orders))
            if bf.pcp:
                self._fill_pcp(z, bf.pcp)
            if [z.nr_free_order(o) for o in range(NR_PAGE_ORDERS)] != want:
                self._shape_free(z, want)
            if bf.pageblocks:
                self._type_pageblocks(z, bf)
            if bf.boost:                           # raised by fallbacks kswapd has not reclaimed
                z.boost = bf.boost // PAGE_SIZE    # yet; it takes it back when next woken
        self.vm_events.clear()
        self.vm_events.update(events)

    def _fill_pcp(self, z, counts):
        """boot.free's pcp: each CPU's lists hold as many pages as the real zone's did (its
        pagesets' count:), before the free memory is shaped: a list above it gives the extra
        back to the buddy (free_pcppages_bulk()), one below takes order-0 movable pages from
        it (rmqueue_bulk()), as that CPU's last frees and allocations would have left it."""
        for cpu, want in enumerate(counts):
            pcp = z.pcp[cpu]
            if pcp.count > want:
                self._free_pcppages_bulk(z, pcp.count - want, pcp, 0)
            elif pcp.count < want:
                self._rmqueue_bulk(z, 0, MIGRATE_MOVABLE, ALLOC_WMARK_MIN, want - pcp.count, pcp,
                                   pcp.lists[order_to_pindex(MIGRATE_MOVABLE, 0)])
                self._refilled = None

    def _shape_free(self, z, want):
        """One zone: plan (plan_free_shape), take the area's free blocks off the lists, split
        the folios that straddle used and free, move every movable page outside the used set
        into it, and give the rest back to the buddy (free_range: merging as the kernel does)."""
        _unrun(z)
        pb_mt = z.get_pageblock_migratetype
        free = sorted((p, o) for p, o in z._free.items() if pb_mt(p) < MIGRATE_PCPTYPES)
        pages = sorted((p for p in z.allocated.values() if page_movable(p) and p.use in LRU_OF_USE
                        and pb_mt(p.pfn) < MIGRATE_PCPTYPES), key=lambda p: p.pfn)
        # the CPUs' lists hold free pages the buddy does not see: they may sit anywhere too
        held = [(pfn, pindex_to_order(i), lst, j) for pcp in z.pcp for i, lst in enumerate(pcp.lists)
                for j, pfn in enumerate(lst) if pb_mt(pfn) < MIGRATE_PCPTYPES]
        fixed = [z.nr_free_order(o) for o in range(NR_PAGE_ORDERS)]
        for _, o in free:
            fixed[o] -= 1
        keep = sum(1 << p.order for p in pages) + sum(1 << o for _, o, _, _ in held)
        area_ranges = merge_ranges([(p, p + (1 << o)) for p, o in free] + [(p.pfn, p.pfn + (1 << p.order)) for p in pages]
                                   + [(p, p + (1 << o)) for p, o, _, _ in held])
        area = _blocks(area_ranges)
        planned, used = plan_free_shape(area, [max(w - f, 0) for w, f in zip(want, fixed, strict=True)], keep)
        for _, o in planned:
            fixed[o] += 1
        if _shape_distance(want, fixed) >= _shape_distance(want, [z.nr_free_order(o) for o in range(NR_PAGE_ORDERS)]):
            return                                   # too few movable pages to come closer
        used = merge_ranges([(p, p + (1 << o)) for p, o in used])
        starts = [s for s, _ in used]

        def where(pfn: int, n: int) -> int:         # 1 inside the used set, 0 outside, -1 across
            i = bisect_right(starts, pfn) - 1
            if i < 0 or used[i][1] <= pfn:
                return 0 if i + 1 >= len(used) or used[i + 1][0] >= pfn + n else -1
            return 1 if pfn + n <= used[i][1] else -1

        stay, move = [], []
        for p in pages:
            w = where(p.pfn, 1 << p.order)
            if w < 0:                                # try_split_folio(): its pages go their ways
                pieces = self.split_page(p)
                lru_split(self, p, pieces)
                for q in pieces:
                    (stay if where(q.pfn, 1) else move).append(q)
            else:
                (stay if w else move).append(p)
        held_stay = [h for h in held if where(h[0], 1 << h[1])]   # a block across stays whole
        holes = [[] for _ in range(NR_PAGE_ORDERS)]
        for s, o in _blocks(subtract_ranges(used, merge_ranges([(p.pfn, p.pfn + (1 << p.order)) for p in stay]
                                                               + [(p, p + (1 << o)) for p, o, _, _ in held_stay]))):
            holes[o].append(s)
        for h in holes:
            h.reverse()                              # lowest pfn first off the end
        for pfn, o in free:                          # the area's free memory off the lists
            z._del(pfn, o, pb_mt(pfn))
            z.account_freepages(-(1 << o), pb_mt(pfn))
        # the moved pages' old places go straight back to the buddy, as from an isolated
        # pageblock (no pcp list): set_migratetype_isolate() on the area's pageblocks
        blocks = sorted({s >> PAGEBLOCK_ORDER for lo, hi in area_ranges for s, _ in pageblock_ranges(lo, hi)})
        types = [pb_mt(b << PAGEBLOCK_ORDER) for b in blocks]
        for b in blocks:
            z.set_pageblock_migratetype(b << PAGEBLOCK_ORDER, MIGRATE_ISOLATE)
        stat_diff = [pcp.stat_diff for pcp in z.pcp]
        given: list[tuple[int, int]] = []
        small = [p for p in move if not p.order]     # split folios' pages join them
        for src in sorted((p for p in move if p.order), key=lambda p: -p.order):
            self._shape_move(src, holes, given, small)
        for src in small:
            self._shape_move(src, holes, given, None)
        vacated = []
        for pfn, o, lst, j in held:                  # a pcp entry outside: its list takes a hole
            dst = -1 if where(pfn, 1 << o) else _take_hole(holes, o, given)
            if dst >= 0:
                lst[j] = dst
                vacated.append((pfn, pfn + (1 << o)))
        for pcp, d in zip(z.pcp, stat_diff, strict=True):
            pcp.stat_diff = d
        for b, mt in zip(blocks, types, strict=True):
            for pfn, o in list(z._free_in_block(b << PAGEBLOCK_ORDER)):
                z._del(pfn, o, MIGRATE_ISOLATE)
                vacated.append((pfn, pfn + (1 << o)))
            z.set_pageblock_migratetype(b << PAGEBLOCK_ORDER, mt)
        for lo, hi in merge_ranges([*subtract_ranges(merge_ranges((p, p + (1 << o)) for p, o in free), given), *vacated]):
            z.free_range(lo, hi)

    def _type_pageblocks(self, z, bf):
        """boot.free's pageblocks: as many Unmovable and Reclaimable pageblocks as the machine
        had, chosen one at a time among the zone's unmovable, movable and reclaimable ones: the
        pageblock whose free blocks bring that type's free blocks per order closest to
        ``unmovable`` / ``reclaimable`` (one already of the type first, then the lowest); the
        rest are Movable.  Free blocks go to their pageblock's new list (move_freepages_block(),
        as when a fallback claims a pageblock); what is allocated in it stays."""
        _unrun(z)
        pb_mt = z.get_pageblock_migratetype
        free: dict = {}
        for pfn, o in z._free.items():
            free.setdefault(pfn >> PAGEBLOCK_ORDER, [0] * NR_PAGE_ORDERS)[o] += 1
        zero = (0,) * NR_PAGE_ORDERS
        groups: dict[tuple, list[int]] = {}        # free blocks per order -> pageblocks
        for i, mt in enumerate(z.pageblock_mt):      # as pagetypeinfo counts them, from the zone's start
            if mt < MIGRATE_PCPTYPES:
                groups.setdefault(tuple(free.get(z._pb_base + i, zero)), []).append(z._pb_base + i)
        chosen = {}
        for mt, n, want in ((MIGRATE_UNMOVABLE, bf.pageblocks[0], bf.unmovable),
                            (MIGRATE_RECLAIMABLE, bf.pageblocks[2], bf.reclaimable)):
            want = list(want) + [0] * (NR_PAGE_ORDERS - len(want))
            have = [0] * NR_PAGE_ORDERS
            for bs in groups.values():               # of a kind, those of the type already first
                bs.sort(key=lambda b: (pb_mt(b << PAGEBLOCK_ORDER) != mt, b))
            for _ in range(n):
                if not groups:
                    break
                v = min(groups, key=lambda v: (sum(abs(h + x - w) for h, x, w in zip(have, v, want, strict=True)),
                                               pb_mt(groups[v][0] << PAGEBLOCK_ORDER) != mt))
                bs = groups[v]
                chosen[bs.pop(0)] = mt
                if not bs:
                    del groups[v]
                have = [h + x for h, x in zip(have, v, strict=True)]
        for bs in groups.values():
            for b in bs:
                chosen[b] = MIGRATE_MOVABLE
        for b, mt in sorted(chosen.items()):
            old = pb_mt(b << PAGEBLOCK_ORDER)
            if old != mt:
                z.move_freepages_block(b << PAGEBLOCK_ORDER, old, mt)
                z.set_pageblock_migratetype(b << PAGEBLOCK_ORDER, mt)

    def _shape_move(self, src, holes, given, pieces_to):
        """One movable page into the smallest hole that holds it (split, the rest back); a
        folio with no hole that big is split and its pages queued (``pieces_to``)."""
        dst = _take_hole(holes, src.order, given)
        if dst < 0:
            if src.order and pieces_to is not None:
                pieces = self.split_page(src)
                lru_split(self, src, pieces)
                pieces_to.extend(pieces)
            return                                   # an order-0 page with no hole stays put
        move_page(self, self.tasks, src, dst, src.cpu)

    def _boot_kmalloc_large(self, nid: int, pages: int):
        """boot.pages use kmalloc_large: kmalloc()s larger than the largest kmalloc cache go
        straight to the page allocator (kmalloc_large_node) and count as unreclaimable slab
        with no slabinfo line; as 16 KiB blocks, the rest in smaller ones."""
        cpu = self.slab._node_cpu.get(nid, 0)
        for order in (2, 1, 0):
            while pages >= 1 << order:
                self.slab._kmalloc_large(PAGE_SIZE << order, GFP_KERNEL, nid, cpu)
                pages -= 1 << order


def _take_hole(holes, order: int, given: list) -> int:
    """The smallest hole (holes[order]: free starts, lowest last) that holds a block of
    ``order``, split as the buddy splits, the halves back as holes; noted in ``given``.
    -1 when none is that big."""
    q = next((q for q in range(order, NR_PAGE_ORDERS) if holes[q]), None)
    if q is None:
        return -1
    dst = holes[q].pop()
    while q > order:
        q -= 1
        holes[q].append(dst + (1 << q))
    given.append((dst, dst + (1 << order)))
    return dst


def _unrun(z) -> None:
    """The zone's runs of free max-order blocks (how the boot seeds them) as ordinary list
    entries, in list order: what boot.free rearranges is then all in the free lists."""
    runs = z._runs[MIGRATE_MOVABLE]
    z._nr[MAX_PAGE_ORDER][MIGRATE_MOVABLE] -= sum(n for _, n in runs)
    for start, n in list(runs):
        for i in range(n):
            z._add(start + (i << MAX_PAGE_ORDER), MAX_PAGE_ORDER, MIGRATE_MOVABLE, tail=True)
    runs.clear()


def plan_free_shape(area, want, keep: int):
    """Where free blocks of the wanted orders can sit in ``area`` (maximal aligned blocks of
    free memory and movable pages) with exactly ``keep`` pages of it used: (free, used) as
    lists of (pfn, order).

    Largest first, each wanted block is cut from the smallest region that holds it, as
    __rmqueue_smallest() splits; the halves split off go back as regions, and the block's own
    buddy must keep a used page (else they would merge): a region marked so is never handed
    out whole, but may be split for smaller blocks (it holds a used page either way).  What
    no block took is used.  The wanted counts are first fitted to the free pages there are
    (the description's free memory and this boot's differ): a difference is taken from, or
    given to, blocks of the largest order (memory one side uses and the other does not comes
    in large pieces; less than a largest block, from the smallest block that covers it), and
    what the largest blocks cannot take from every order in proportion;
    what is left over (less than a largest block) or had no room is freed as single blocks,
    one per bit of the pages still to free."""
    regions = [([], []) for _ in range(NR_PAGE_ORDERS)]     # [order][must keep a used page]
    for pfn, o in reversed(area):
        regions[o][0].append(pfn)
    placed = [[] for _ in range(NR_PAGE_ORDERS)]

    def place(o: int) -> bool:
        if regions[o][0]:
            placed[o].append(regions[o][0].pop())
            return True
        for k in range(o + 1, NR_PAGE_ORDERS):
            for r in (regions[k][1], regions[k][0]):
                if r:
                    pfn = r.pop()
                    while k > o:
                        k -= 1
                        regions[k][k == o].append(pfn + (1 << k))
                    placed[o].append(pfn)
                    return True
        return False

    def place_pages(n: int) -> None:
        for o in range(NR_PAGE_ORDERS - 1, -1, -1):
            while n >= 1 << o and place(o):
                n -= 1 << o

    free_pages = sum(1 << o for _, o in area) - keep
    asked = sum(n << o for o, n in enumerate(want))
    want = list(want)
    while 0 < asked - free_pages < 1 << MAX_PAGE_ORDER:   # a few fewer: the smallest block that covers it
        o = next((o for o in range(NR_PAGE_ORDERS) if want[o] and 1 << o >= asked - free_pages), None)
        if o is None:
            break
        want[o] -= 1
        asked -= 1 << o
    if asked > free_pages:                       # many fewer free pages here: fewer of the largest
        drop = min(want[MAX_PAGE_ORDER], -(-(asked - free_pages) >> MAX_PAGE_ORDER))
        want[MAX_PAGE_ORDER] -= drop
        asked -= drop << MAX_PAGE_ORDER
        if asked > free_pages:                   # and then fewer of every order
            want = [n * free_pages // asked for n in want]
    else:                                        # more: in the largest blocks
        want[MAX_PAGE_ORDER] += (free_pages - asked) >> MAX_PAGE_ORDER
    for o in range(NR_PAGE_ORDERS - 1, -1, -1):
        for _ in range(want[o]):
            if not place(o):
                break
    place_pages(free_pages - sum(len(p) << o for o, p in enumerate(placed)))
    free = [(pfn, o) for o, p in enumerate(placed) for pfn in p]
    used = [(pfn, o) for o, r in enumerate(regions) for rr in r for pfn in rr]
    return free, used


def _shape_distance(want, have) -> tuple[int, int]:
    """How far a zone's free blocks per order are from the wanted ones: blocks beyond the
    tolerance a clone is held to (5 % or 2 blocks an order), then blocks off in all."""
    off = [abs(w - h) for w, h in zip(want, have, strict=True)]
    return sum(max(d - max(w // 20, 2), 0) for d, w in zip(off, want, strict=True)), sum(off)


def _blocks(ranges) -> list[tuple[int, int]]:
    """Ranges as the largest aligned blocks (pfn, order), as memblock_free_all() cuts them."""
    out = []
    for s, e in ranges:
        while s < e:
            o = largest_block(s, e)
            out.append((s, o))
            s += 1 << o
    return out


def _fls(x: int) -> int:
    return x.bit_length()
