"""mm/vmstat.c: the counter names in the order the kernel keeps them, and the vmstat worker.

The name tables are the kernel's enums (include/linux/mmzone.h zone_stat_item,
numa_stat_item, node_stat_item; include/linux/vm_event_item.h) as vmstat_text[] prints
them for the reference host's configuration.  Views print them; the core counts them.

The worker is ``vmstat_update``: once a second per cpu (queued by ``vmstat_shepherd``
when the cpu has something to fold), ``refresh_cpu_vm_stats`` decays each pageset's
``high`` towards ``high_min`` and drains a remote node's pageset that stayed idle for
three intervals.  It runs as deferred work on the simulated clock (procsim/mm/timer.py).
"""
from __future__ import annotations

import heapq

from .timer import HZ, TICK_NSEC
from .sched import LOAD_FREQ

HPAGE_FRAG_CHECK_INTERVAL_MSEC = 500
KCOMPACTD_INTERVAL = HPAGE_FRAG_CHECK_INTERVAL_MSEC * HZ // 1000   # kcompactd's proactive check, jiffies

STAT_INTERVAL = HZ                  # vm.stat_interval: one second, in jiffies

# enum zone_stat_item (NR_FREE_PAGES and NR_FREE_PAGES_BLOCKS are printed from the free lists)
ZONE_STAT_ITEMS = ("nr_zone_inactive_anon", "nr_zone_active_anon", "nr_zone_inactive_file",
                   "nr_zone_active_file", "nr_zone_unevictable", "nr_zone_write_pending", "nr_mlock",
                   "nr_zspages", "nr_free_cma")
NUMA_STAT_ITEMS = ("numa_hit", "numa_miss", "numa_foreign", "numa_interleave", "numa_local", "numa_other")

# enum node_stat_item
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

# enum vm_event_item
VM_EVENT_ITEMS = (
    "pgpgin", "pgpgout", "pswpin", "pswpout",
    "pgalloc_dma", "pgalloc_dma32", "pgalloc_normal", "pgalloc_movable", "pgalloc_device",
    "allocstall_dma", "allocstall_dma32", "allocstall_normal", "allocstall_movable", "allocstall_device",
    "pgskip_dma", "pgskip_dma32", "pgskip_normal", "pgskip_movable", "pgskip_device",
    "pgfree", "pgactivate", "pgdeactivate", "pglazyfree", "pgfault", "pgmajfault", "pglazyfreed",
    "pgrefill", "pgreuse", "pgsteal_kswapd", "pgsteal_direct", "pgsteal_khugepaged", "pgsteal_proactive",
    "pgscan_kswapd", "pgscan_direct", "pgscan_khugepaged", "pgscan_proactive", "pgscan_direct_throttle",
    "pgscan_anon", "pgscan_file", "pgsteal_anon", "pgsteal_file",
    "zone_reclaim_success", "zone_reclaim_failed", "pginodesteal", "slabs_scanned", "kswapd_inodesteal",
    "kswapd_low_wmark_hit_quickly", "kswapd_high_wmark_hit_quickly", "pageoutrun", "pgrotated",
    "drop_pagecache", "drop_slab", "oom_kill",
    "numa_pte_updates", "numa_huge_pte_updates", "numa_hint_faults", "numa_hint_faults_local",
    "numa_pages_migrated", "pgmigrate_success", "pgmigrate_fail",
    "thp_migration_success", "thp_migration_fail", "thp_migration_split",
    "compact_migrate_scanned", "compact_free_scanned", "compact_isolated", "compact_stall", "compact_fail",
    "compact_success", "compact_daemon_wake", "compact_daemon_migrate_scanned", "compact_daemon_free_scanned",
    "htlb_buddy_alloc_success", "htlb_buddy_alloc_fail",
    "unevictable_pgs_culled", "unevictable_pgs_scanned", "unevictable_pgs_rescued", "unevictable_pgs_mlocked",
    "unevictable_pgs_munlocked", "unevictable_pgs_cleared", "unevictable_pgs_stranded",
    "thp_fault_alloc", "thp_fault_fallback", "thp_fault_fallback_charge", "thp_collapse_alloc",
    "thp_collapse_alloc_failed", "thp_file_alloc", "thp_file_fallback", "thp_file_fallback_charge",
    "thp_file_mapped", "thp_split_page", "thp_split_page_failed", "thp_deferred_split_page",
    "thp_underused_split_page", "thp_split_pmd", "thp_scan_exceed_none_pte", "thp_scan_exceed_swap_pte",
    "thp_scan_exceed_share_pte", "thp_split_pud", "thp_zero_page_alloc", "thp_zero_page_alloc_failed",
    "thp_swpout", "thp_swpout_fallback", "balloon_inflate", "balloon_deflate", "balloon_migrate",
    "swap_ra", "swap_ra_hit", "swpin_zero", "swpout_zero", "ksm_swpin_copy", "cow_ksm",
    "zswpin", "zswpout", "zswpwb",
    "direct_map_level2_splits", "direct_map_level3_splits", "direct_map_level2_collapses",
    "direct_map_level3_collapses")

# vmstat_item_print_in_thp(): stored in pages, printed in huge pages
THP_ITEMS = frozenset(("nr_anon_transparent_hugepages", "nr_shmem_hugepages", "nr_shmem_pmdmapped",
                       "nr_file_hugepages", "nr_file_pmdmapped"))


class Vmstat:
    """Kernel mixin: counter updates and totals, and the vmstat worker."""

    def mod_node_stat(self, nid: int, item: str, delta: int):
        self.nodes[nid].stat[item] += delta

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

    # ---- the vmstat worker (deferred work on the clock, procsim/mm/timer.py) -------------
    # vmstat_shepherd runs every sysctl_stat_interval and queues vmstat_update on each cpu
    # that has counter diffs to fold; vmstat_update folds them (refresh_cpu_vm_stats) and
    # requeues itself while that found work.  Counters here are exact, so the only "diff"
    # kept is whether the cpu moved pages between a zone's free lists and itself
    # (PerCpuPages.stat_diff, its NR_FREE_PAGES diff), which is what arms a pageset's
    # expiry in the kernel; the threshold that folds large diffs early is not modelled.
    def _stat_interval(self) -> int:
        """sysctl_stat_interval in jiffies (vm.stat_interval); 0 runs the worker every tick."""
        return max(1, self.sysctl_stat_interval)

    def start_shepherd_timer(self):
        """start_shepherd_timer(): the first shepherd run one interval after boot."""
        self._vmstat_idle = [False] * self.nr_cpu_ids
        self.queue_delayed_work("vmstat_shepherd", STAT_INTERVAL, self.vmstat_shepherd)

    def need_update(self, cpu: int) -> bool:
        """need_update(): the cpu has a counter diff in some zone."""
        return any(z.pcp[cpu].stat_diff for z in self.zones if z.populated)

    def vmstat_shepherd(self, _=None):
        for cpu in range(self.nr_cpu_ids):
            key = ("vmstat_update", cpu)
            if not self.delayed_work_pending(key) and self.need_update(cpu):
                self.queue_delayed_work(key, 0, self.vmstat_update, cpu)
        self.queue_delayed_work("vmstat_shepherd", self._stat_interval(),
                                self.vmstat_shepherd)
        self.timeline.sample(self)
        self._fast_forward_idle()

    def vmstat_update(self, cpu: int):
        """vmstat_update(): fold, and come back in one interval while there was work."""
        if self.refresh_cpu_vm_stats(cpu):
            self.queue_delayed_work(("vmstat_update", cpu), self._stat_interval(),
                                    self.vmstat_update, cpu)

    def refresh_cpu_vm_stats(self, cpu: int) -> bool:
        """refresh_cpu_vm_stats(do_pagesets=true) on ``cpu``: per populated zone, fold the
        diff (which gives a pageset three more idle intervals), decay_pcp_high(), and drain
        a remote node's pageset whose three intervals ran out (drain_zone_pages())."""
        changed = touched = False
        local = self.cpu_node[cpu]
        for z in self.zones:
            if not z.populated:
                continue
            pcp = z.pcp[cpu]
            before = (pcp.high, pcp.count, pcp.expire)
            if pcp.stat_diff:                        # fold: "3 seconds idle till flush"
                pcp.stat_diff = False
                pcp.expire = 3
                changed = touched = True
            if self.decay_pcp_high(z, pcp):
                changed = True
            if pcp.expire and pcp.count:
                if z.node == local:                  # local pagesets are never drained
                    pcp.expire = 0
                else:
                    pcp.expire -= 1
                    if not pcp.expire:
                        self.drain_zone_pages(z, pcp)
                    changed = True
            if (pcp.high, pcp.count, pcp.expire) != before:
                touched = True
        # A run that changed nothing will change nothing next time either: the kernel
        # requeues it (decay_pcp_high() keeps saying "todo" when high is stuck a little above
        # high_min), and _fast_forward_idle() may skip such runs.
        self._vmstat_idle[cpu] = not touched
        if touched:
            self.generation += 1
        return changed

    def _fast_forward_idle(self):
        """Called by the shepherd: if every queued item is the shepherd or a vmstat_update
        whose last run changed nothing, and no cpu has a diff, every run up to the end of
        the current sleep would change nothing.  Move each to its first run after that end,
        keeping its phase and queue order (same state, without the empty runs)."""
        work = self._work
        for _, _, key, _, arg in work:
            if key != "vmstat_shepherd" and key != "calc_load" and not (key[0] == "vmstat_update" and self._vmstat_idle[arg]) \
                    and not (key[0] == "kcompactd" and self.kcompactd_idle(key)):
                return
        if any(self.need_update(c) for c in range(self.nr_cpu_ids)):
            return
        last = self._sleep_until
        for i, (due, seq, key, fn, arg) in enumerate(work):
            if due <= last and key == "calc_load":     # idle: the averages decay, folded at once
                n = (last - due) // (LOAD_FREQ * TICK_NSEC) + 1
                self.calc_global_load(missed=n)
                work[i] = (due + n * LOAD_FREQ * TICK_NSEC, seq, key, fn, arg)
            elif due <= last:
                period = (KCOMPACTD_INTERVAL if key[0] == "kcompactd" else self._stat_interval()) * TICK_NSEC
                work[i] = (due + (last - due) // period * period + period, seq, key, fn, arg)
        heapq.heapify(work)
