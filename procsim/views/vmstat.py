"""/proc/vmstat as mm/vmstat.c vmstat_show() prints it in 6.18: zone counters summed over
all zones, NUMA events, node counters, the dirty thresholds, the memmap counters, then
the event counters, and the fake ``nr_unstable 0`` that 6.x appends for old tools.

Counters the model does not drive print 0; the names and their order are the kernel's
(vmstat_text[] for the reference host's configuration).
"""
from __future__ import annotations

from ..mm.buddy import ZONE_STAT_ITEMS, NUMA_STAT_ITEMS
from ..mm.kernel import NODE_STAT_ITEMS
from ..machine import PAGE_SIZE
from .zoneinfo import THP_ITEMS, HPAGE_PMD_NR
from ..mm.versions import rules
from . import View

VM_DIRTY_RATIO = 20                 # vm.dirty_ratio
DIRTY_BACKGROUND_RATIO = 10         # vm.dirty_background_ratio

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


def global_dirtyable_memory(k) -> int:
    """mm/page-writeback.c: free pages minus totalreserve, plus the file LRU, plus one."""
    x = k.nr_free_pages
    x -= min(x, k.totalreserve_pages)
    x += k.node_stat_total("nr_inactive_file") + k.node_stat_total("nr_active_file")
    return x + 1


def dirty_limits(k) -> tuple[int, int]:
    """domain_dirty_limits() for a non-RT reader: ratios turned into per-PAGE_SIZE fractions."""
    available = global_dirtyable_memory(k)
    thresh = (VM_DIRTY_RATIO * PAGE_SIZE // 100) * available // PAGE_SIZE
    bg_thresh = (DIRTY_BACKGROUND_RATIO * PAGE_SIZE // 100) * available // PAGE_SIZE
    if bg_thresh >= thresh:
        bg_thresh = thresh // 2
    return thresh, bg_thresh


def memmap_boot_pages(k) -> int:
    """NR_MEMMAP_BOOT_PAGES: the struct page arrays memblock reserved at boot."""
    return sum(r.end - r.start for r in k.layout.reservations if r.what.startswith("memmap"))


def render(k) -> bytes:
    r = rules(k)
    zones = k.zones
    out = [f"nr_free_pages {k.nr_free_pages}"]
    if r.free_pages_blocks:
        out.append(f"nr_free_pages_blocks {sum(z.nr_free_blocks for z in zones)}")
    out += [f"{item} {sum(r.stat(z.stat, item) for z in zones)}" for item in r.zone_stat_items or ZONE_STAT_ITEMS]
    out += [f"{item} {sum(z.numa[item] for z in zones)}" for item in r.numa_stat_items or NUMA_STAT_ITEMS]
    for item in r.node_stat_items or NODE_STAT_ITEMS:
        v = sum(r.stat(n.stat, item) for n in k.nodes)
        out.append(f"{item} {v // HPAGE_PMD_NR if item in THP_ITEMS else v}")
    thresh, bg_thresh = dirty_limits(k)
    out.append(f"nr_dirty_threshold {thresh}\nnr_dirty_background_threshold {bg_thresh}")
    if r.memmap_pages:
        out.append(f"nr_memmap_pages 0\nnr_memmap_boot_pages {memmap_boot_pages(k)}")
    ev = k.vm_events
    out += [f"{name} {ev.get(name, 0)}" for name in r.vm_event_items or VM_EVENT_ITEMS]
    out.append("nr_unstable 0\n")
    return "\n".join(out).encode()


FILES = {"vmstat": View(0o444, render)}
