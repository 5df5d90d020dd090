"""Kernel-version profiles: the rules and formats that differ between kernel releases,
chosen once at boot (``k.profile``, from the machine's ``kernel:``).

A profile is a frozen value.  The core reads it while booting (tables, limits, which
deferred work exists) and binds what it needs then; views read its tables to print.  A
version that computes something differently gets a different value or function *bound at
boot* -- never an ``if version`` inside alloc_pages / free_pages or any other hot path.
docs/PROFILES.md says, per profile, what differs and how it is checked.  Sources:

* the counter names and their order: mm/vmstat.c vmstat_text[] with include/linux/mmzone.h
  enum zone_stat_item / node_stat_item and include/linux/vm_event_item.h of that version
  (6.1: checked name for name against Debian's 6.1 under the oracle, tests/data/oracle;
  5.4: the per-node and per-zone lists of seed 000's zoneinfo, an Ubuntu 5.4 VM, and 5.4's
  vmstat_text[]; 3.10: v3.10's vmstat_text[], all zone counters);
* zoneinfo_show_print(): which watermark lines (no boost line in seed 000's 5.4; promo
  in 6.18, not 6.1), the cma line (not in 5.4), nr_free_pages_blocks (6.18 only), the
  pageset lines (high_min/high_max since 6.7);
* pcp high: 5.4 pageset_set_batch() high = 6 * batch; 6.1 zone_highsize() from the low
  watermark -- both static, pinned at boot as high_min == high_max (mm_init.zone_pcp_update);
  6.18 high_min/high_max and a dynamic high;
* __setup_per_zone_wmarks(): 6.18 treats ZONE_MOVABLE like highmem (a change made after
  6.1): it is left out of lowmem_pages and its min is clamped to [32, 128] pages (an empty
  one gets SWAP_CLUSTER_MAX); 6.1, 5.4 and 3.10 count it in lowmem_pages and give it its
  proportional share (0 when empty);
* meminfo: fs/proc/meminfo.c meminfo_proc_show() of the version, with the distribution's
  configuration (_MEMINFO_* below);
* sizeof(struct kmem_cache_node): 64 bytes before 6.18's barn pointer, 72 with it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from .boot_6_1 import BOOT_CACHES_6_1
from .page_types import DEFAULT_KERNEL, KERNEL_VERSIONS

from .slub import (KMALLOC_NORMAL, KMALLOC_RECLAIM, KMALLOC_DMA, KMALLOC_CGROUP, KMALLOC_IDX_POW2_ORDER,
                   KMALLOC_IDX_ARRAY_ORDER, kmalloc_sequence)
from .vmstat import NODE_STAT_ITEMS, ZONE_STAT_ITEMS, NUMA_STAT_ITEMS, VM_EVENT_ITEMS

def _edit(items, drop=(), after=()):
    """A 6.18 table edited into an older version's: ``drop`` names removed, each
    (anchor, names) of ``after`` inserted after its anchor."""
    out = [x for x in items if x not in drop]
    for anchor, names in after:
        i = out.index(anchor) + 1
        out[i:i] = names
    return tuple(out)


# 6.1: nr_writeback_temp is a node counter (6.18 has none); no IOMMU, hugetlb, balloon,
# kernel-file counters, no pgpromote_candidate_nrl; pgdemote_* were events
_NODE_6_1 = _edit(NODE_STAT_ITEMS, ("nr_iommu_pages", "pgpromote_candidate_nrl", "pgdemote_kswapd",
                                    "pgdemote_direct", "pgdemote_khugepaged", "pgdemote_proactive", "nr_hugetlb",
                                    "nr_balloon_pages", "nr_kernel_file_pages"),
                  (("nr_writeback", ("nr_writeback_temp",)),))
_ZONE_6_1 = ("nr_zone_inactive_anon", "nr_zone_active_anon", "nr_zone_inactive_file", "nr_zone_active_file",
             "nr_zone_unevictable", "nr_zone_write_pending", "nr_mlock", "nr_bounce", "nr_zspages", "nr_free_cma")
_NUMA = ("numa_hit", "numa_miss", "numa_foreign", "numa_interleave", "numa_local", "numa_other")
_EVENTS_6_1 = _edit(VM_EVENT_ITEMS, ("pgsteal_khugepaged", "pgsteal_proactive", "pgscan_khugepaged",
                                     "pgscan_proactive", "zone_reclaim_success", "thp_underused_split_page",
                                     "swpin_zero", "swpout_zero", "zswpwb", "direct_map_level2_collapses",
                                     "direct_map_level3_collapses"),
                    (("pgsteal_direct", ("pgdemote_kswapd", "pgdemote_direct")),))
# 5.4 (seed 000): workingset_* not yet split anon/file (5.9), nr_unstable still a node item
# (removed 5.8), page tables and kernel stacks still zone items (moved to the node in 5.11)
_NODE_5_4 = (
    "nr_inactive_anon", "nr_active_anon", "nr_inactive_file", "nr_active_file", "nr_unevictable",
    "nr_slab_reclaimable", "nr_slab_unreclaimable", "nr_isolated_anon", "nr_isolated_file",
    "workingset_nodes", "workingset_refault", "workingset_activate", "workingset_restore",
    "workingset_nodereclaim", "nr_anon_pages", "nr_mapped", "nr_file_pages", "nr_dirty", "nr_writeback",
    "nr_writeback_temp", "nr_shmem", "nr_shmem_hugepages", "nr_shmem_pmdmapped", "nr_file_hugepages",
    "nr_file_pmdmapped", "nr_anon_transparent_hugepages", "nr_unstable", "nr_vmscan_write",
    "nr_vmscan_immediate_reclaim", "nr_dirtied", "nr_written", "nr_kernel_misc_reclaimable")
_ZONE_5_4 = ("nr_zone_inactive_anon", "nr_zone_active_anon", "nr_zone_inactive_file", "nr_zone_active_file",
             "nr_zone_unevictable", "nr_zone_write_pending", "nr_mlock", "nr_page_table_pages",
             "nr_kernel_stack", "nr_bounce", "nr_zspages", "nr_free_cma")
# 5.4's vm_event_item.h as mm/vmstat.c vmstat_text[] names them, for Ubuntu 20.04's x86-64
# configuration (NUMA, NUMA_BALANCING, MIGRATION, COMPACTION, HUGETLB_PAGE, THP with PUD,
# MEMORY_BALLOON + BALLOON_COMPACTION, SWAP; no DEBUG_TLBFLUSH, DEBUG_VM_VMACACHE); zones
# dma, dma32, normal, movable (5.4's TEXTS_FOR_ZONES has no "_device")
def _zones(name):
    return tuple(f"{name}_{z}" for z in ("dma", "dma32", "normal", "movable"))


_EVENTS_5_4 = (
    ("pgpgin", "pgpgout", "pswpin", "pswpout") + _zones("pgalloc") + _zones("allocstall") + _zones("pgskip")
    + ("pgfree", "pgactivate", "pgdeactivate", "pglazyfree", "pgfault", "pgmajfault", "pglazyfreed", "pgrefill",
       "pgsteal_kswapd", "pgsteal_direct", "pgscan_kswapd", "pgscan_direct", "pgscan_direct_throttle",
       "zone_reclaim_failed", "pginodesteal", "slabs_scanned", "kswapd_inodesteal", "kswapd_low_wmark_hit_quickly",
       "kswapd_high_wmark_hit_quickly", "pageoutrun", "pgrotated", "drop_pagecache", "drop_slab", "oom_kill",
       "numa_pte_updates", "numa_huge_pte_updates", "numa_hint_faults", "numa_hint_faults_local",
       "numa_pages_migrated", "pgmigrate_success", "pgmigrate_fail", "compact_migrate_scanned",
       "compact_free_scanned", "compact_isolated", "compact_stall", "compact_fail", "compact_success",
       "compact_daemon_wake", "compact_daemon_migrate_scanned", "compact_daemon_free_scanned",
       "htlb_buddy_alloc_success", "htlb_buddy_alloc_fail", "unevictable_pgs_culled", "unevictable_pgs_scanned",
       "unevictable_pgs_rescued", "unevictable_pgs_mlocked", "unevictable_pgs_munlocked", "unevictable_pgs_cleared",
       "unevictable_pgs_stranded", "thp_fault_alloc", "thp_fault_fallback", "thp_collapse_alloc",
       "thp_collapse_alloc_failed", "thp_file_alloc", "thp_file_mapped", "thp_split_page", "thp_split_page_failed",
       "thp_deferred_split_page", "thp_split_pmd", "thp_split_pud", "thp_zero_page_alloc",
       "thp_zero_page_alloc_failed", "thp_swpout", "thp_swpout_fallback", "balloon_inflate", "balloon_deflate",
       "balloon_migrate", "swap_ra", "swap_ra_hit"))
# 3.10 (kernel.org v3.10): every counter is a zone counter (enum zone_stat_item; nodes got their
# own in 4.8), vmstat_text[] for CentOS 7's x86-64 config (NUMA, NUMA_BALANCING, MIGRATION,
# COMPACTION, HUGETLB_PAGE, TRANSPARENT_HUGEPAGE).  RHEL 7's backports are not in it.
_VMSTAT_3_10 = (
    "nr_free_pages", "nr_inactive_anon", "nr_active_anon", "nr_inactive_file", "nr_active_file",
    "nr_unevictable", "nr_mlock", "nr_anon_pages", "nr_mapped", "nr_file_pages", "nr_dirty", "nr_writeback",
    "nr_slab_reclaimable", "nr_slab_unreclaimable", "nr_page_table_pages", "nr_kernel_stack", "nr_unstable",
    "nr_bounce", "nr_vmscan_write", "nr_vmscan_immediate_reclaim", "nr_writeback_temp", "nr_isolated_anon",
    "nr_isolated_file", "nr_shmem", "nr_dirtied", "nr_written") + _NUMA + (
    "nr_anon_transparent_hugepages", "nr_free_cma")
_EVENTS_3_10 = (
    ("pgpgin", "pgpgout", "pswpin", "pswpout") + _zones("pgalloc")
    + ("pgfree", "pgactivate", "pgdeactivate", "pgfault", "pgmajfault") + _zones("pgrefill")
    + _zones("pgsteal_kswapd") + _zones("pgsteal_direct") + _zones("pgscan_kswapd") + _zones("pgscan_direct")
    + ("pgscan_direct_throttle", "zone_reclaim_failed", "pginodesteal", "slabs_scanned", "kswapd_inodesteal",
       "kswapd_low_wmark_hit_quickly", "kswapd_high_wmark_hit_quickly", "pageoutrun", "allocstall", "pgrotated",
       "numa_pte_updates", "numa_hint_faults", "numa_hint_faults_local", "numa_pages_migrated",
       "pgmigrate_success", "pgmigrate_fail", "compact_migrate_scanned", "compact_free_scanned",
       "compact_isolated", "compact_stall", "compact_fail", "compact_success", "htlb_buddy_alloc_success",
       "htlb_buddy_alloc_fail", "unevictable_pgs_culled", "unevictable_pgs_scanned", "unevictable_pgs_rescued",
       "unevictable_pgs_mlocked", "unevictable_pgs_munlocked", "unevictable_pgs_cleared",
       "unevictable_pgs_stranded", "thp_fault_alloc", "thp_fault_fallback", "thp_collapse_alloc",
       "thp_collapse_alloc_failed", "thp_split", "thp_zero_page_alloc", "thp_zero_page_alloc_failed"))
# fs/proc/meminfo.c meminfo_proc_show(): the kB lines before hugetlb_report_meminfo(), in
# order.  6.18 for the reference host; 6.1 Debian (CONFIG_MEMORY_FAILURE: HardwareCorrupted,
# no Balloon yet); 5.4 Ubuntu (no Zswap lines before 5.19, no SecPageTables before 6.0;
# CONFIG_CMA: CmaTotal and CmaFree after the THP lines)
_MEMINFO_6_18 = (
    "MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SwapCached", "Active", "Inactive",
    "Active(anon)", "Inactive(anon)", "Active(file)", "Inactive(file)", "Unevictable", "Mlocked",
    "SwapTotal", "SwapFree", "Zswap", "Zswapped", "Dirty", "Writeback", "AnonPages", "Mapped", "Shmem",
    "KReclaimable", "Slab", "SReclaimable", "SUnreclaim", "KernelStack", "PageTables", "SecPageTables",
    "NFS_Unstable", "Bounce", "WritebackTmp", "CommitLimit", "Committed_AS", "VmallocTotal", "VmallocUsed",
    "VmallocChunk", "Percpu", "AnonHugePages", "ShmemHugePages", "ShmemPmdMapped", "FileHugePages",
    "FilePmdMapped", "Balloon")
_MEMINFO_6_1 = _edit(_MEMINFO_6_18, ("Balloon",), (("Percpu", ("HardwareCorrupted",)),))
_MEMINFO_5_4 = _edit(_MEMINFO_6_1, ("Zswap", "Zswapped", "SecPageTables"),
                     (("FilePmdMapped", ("CmaTotal", "CmaFree")),))
# 3.10: one seq_printf; no MemAvailable (3.14), KReclaimable (4.20), Percpu (4.7), shmem/file
# THP lines (4.8, 5.4), CMA lines (4.1)
_MEMINFO_3_10 = _edit(_MEMINFO_5_4, ("MemAvailable", "KReclaimable", "Percpu", "ShmemHugePages", "ShmemPmdMapped",
                                     "FileHugePages", "FilePmdMapped", "CmaTotal", "CmaFree"))
# 6.1's __def_gfpflag_names (include/trace/events/mmflags.h), procsim's flags only (no
# __GFP_ATOMIC): the single bits in another order than 6.15's -- a real 6.1 OOM header reads
# GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO.  5.4 and 3.10 keep it (not checked against them)
_GFPFLAG_NAMES_6_1 = (
    "GFP_TRANSHUGE", "GFP_TRANSHUGE_LIGHT", "GFP_HIGHUSER_MOVABLE", "GFP_HIGHUSER", "GFP_USER",
    "GFP_KERNEL_ACCOUNT", "GFP_KERNEL", "GFP_NOFS", "GFP_ATOMIC", "GFP_NOIO", "GFP_NOWAIT", "GFP_DMA",
    "__GFP_HIGHMEM", "GFP_DMA32", "__GFP_HIGH", "__GFP_IO", "__GFP_FS", "__GFP_NOWARN", "__GFP_RETRY_MAYFAIL",
    "__GFP_NOFAIL", "__GFP_NORETRY", "__GFP_COMP", "__GFP_ZERO", "__GFP_NOMEMALLOC", "__GFP_MEMALLOC",
    "__GFP_HARDWALL", "__GFP_THISNODE", "__GFP_RECLAIMABLE", "__GFP_MOVABLE", "__GFP_ACCOUNT", "__GFP_WRITE",
    "__GFP_RECLAIM", "__GFP_DIRECT_RECLAIM", "__GFP_KSWAPD_RECLAIM", "__GFP_ZEROTAGS")
# the 5.4 names of 6.x counters procsim keeps (the value is the sum of the split ones)
_ALIASES_5_4 = {"workingset_refault": ("workingset_refault_anon", "workingset_refault_file"),
                "workingset_activate": ("workingset_activate_anon", "workingset_activate_file"),
                "workingset_restore": ("workingset_restore_anon", "workingset_restore_file")}




@dataclass(frozen=True)
class Profile:
    version: str
    # vmstat_text[]: the counter names, in the order /proc/vmstat and zoneinfo print them
    node_stat_items: tuple[str, ...]
    zone_stat_items: tuple[str, ...]
    numa_stat_items: tuple[str, ...]
    vm_event_items: tuple[str, ...]
    # init_per_zone_wmark_min(): the ceiling of the computed min_free_kbytes
    min_free_kbytes_max: int = 262144
    # calculate_normal_threshold(): the ceiling of a zone's stat_threshold
    stat_threshold_max: int = 125
    # zoneinfo_show_print(): the watermark block, the cma line, nr_free_pages_blocks
    wmark_lines: tuple[str, ...] = ("boost", "min", "low", "high", "promo")
    zoneinfo_cma: bool = True
    free_pages_blocks: bool = True               # also in vmstat
    memmap_pages: bool = True                    # vmstat nr_memmap_pages / nr_memmap_boot_pages
    pcp: str = "6.18"                            # "6.18": high_min/high_max; "zone_highsize"; "6*batch"
    movable_wmark_clamp: bool = True             # ZONE_MOVABLE is no lowmem: not in lowmem_pages, min clamped
    meminfo_lines: tuple[str, ...] = _MEMINFO_6_18   # /proc/meminfo's kB lines before the hugetlb block
    vmstat_nr_unstable: bool = True              # the fake "nr_unstable 0" vmstat_show() ends with (5.8+)
    # /proc/vmstat's counters before the dirty thresholds when the version does not print
    # zone, NUMA, node blocks (3.10: all zone counters); None: built from the three tables
    vmstat_counters: tuple[str, ...] | None = None
    kernel_stack_kb: int = 1                     # nr_kernel_stack in kB; 3.10 counts stacks (procsim's are 16 KiB)
    meminfo_hugetlb: bool = True                 # hugetlb_report_meminfo()'s "Hugetlb:" line (4.16+)
    node_meminfo_narrow: tuple[str, ...] = ()    # node meminfo labels printed one column left
    kmem_cache_node_size: int = 72               # sizeof(struct kmem_cache_node)
    aliases: tuple[tuple[str, tuple[str, ...]], ...] = ()    # old name -> the counters it sums
    # SLUB: create_kmalloc_caches() order (None: 6.18's) and names.  calculate_order() needs
    # no version: 3.10's (min_objects lowered one by one, leftover 1/16..1/4) and 6.18's
    # (leftover 1/16..1/2 at min_objects) choose the same order for every size 8..8184 at 2
    # and at 128 CPUs (checked when 3.10 was added)
    kmalloc_sequence: tuple[tuple[int, int], ...] | None = None
    kmalloc_k_names: bool = True                 # "kmalloc-1k" (4.20+) or "kmalloc-1024"
    kmalloc_buckets: bool = True                 # 6.11's kmem_buckets cache
    # vm.compaction_proactiveness's default; None: no proactive compaction (before 5.9), so
    # kcompactd only runs when woken
    compaction_proactiveness: int | None = 20
    # compaction_suitable()'s order-0 watermark: "6.18" the caller's (since 6.6), "4.9" low for
    # costly orders and min otherwise (4.9..6.5), "3.10" low + 2 << order and fragindex at every order
    compaction_suitable: str = "6.18"
    # anon and page cache pages are folios, allocated __GFP_COMP (6.x; gfp.use_gfp)
    folios: bool = True
    # %pGg's flag names in include/trace/events/mmflags.h order; None: 6.15+'s (printk)
    gfpflag_names: tuple[str, ...] | None = None
    # the kernel log: dump_tasks()'s columns (6.18: rss split by type) and show_free_areas()'s
    # "shmem_thp: %lukB" with a space (until 6.2; the oracle's 6.1 OOM report shows it)
    oom_rss_columns: bool = True
    show_mem_thp_space: bool = False
    # watermark boosting (5.0+): a fallback below pageblock order raises the zone's marks
    watermark_boost: bool = True
    # steal_suitable_fallback() (until 6.14) boosts the watermarks on every fallback below
    # pageblock order, a single page stolen too; since 6.15 only an attempt to claim the block does
    steal_boosts: bool = False
    # zone_reclaimable_pages() counts a zone's free pages when it has no reclaimable LRU pages
    # (6.13's fix for CVE-2024-57884, taken by the stable kernels: the oracle's 6.1.176 traces reclaim_retry_zone
    # with DMA "reclaimable" = its free pages; not in 5.4.286, which the 5.4 profile follows)
    reclaimable_counts_free: bool = True
    # set_recommended_min_free_kbytes() recomputes min_free_kbytes when THP is off (5.17+)
    thp_off_recalculates_min_free: bool = True
    # the embedded first percpu chunk's static, reserved and dynamic sizes in bytes (dmesg's
    # "percpu: Embedded"; mm/percpu.py); None: not known for this version, Percpu counts only
    # the boot workload's percpu pages
    pcpu_first_chunk: tuple[int, int, int] | None = None
    # CONFIG_VMAP_STACK (4.9+): kernel stacks are vmalloc areas, counted in VmallocUsed (mm/vmalloc.py)
    vmap_stack: bool = True
    # the slab caches a booted kernel of this version holds, made before the machine's boot
    # workload (rows of mm/boot_6_1.py); (): only what procsim's own boot creates
    boot_caches: tuple = ()

    def stat(self, counters: dict, item: str) -> int:
        """A counter by this version's name: 0 for one procsim does not keep."""
        if item in counters:
            return counters[item]
        return sum(counters.get(p, 0) for p in dict(self.aliases).get(item, ()))


LINUX_6_18 = Profile("6.18", NODE_STAT_ITEMS, ZONE_STAT_ITEMS, NUMA_STAT_ITEMS, VM_EVENT_ITEMS)
_DMA_IDX = KMALLOC_IDX_ARRAY_ORDER     # the DMA family is made by walking kmalloc_caches[]: 96, 192, 8, ...
LINUX_6_1 = Profile("6.1", _NODE_6_1, _ZONE_6_1, _NUMA, _EVENTS_6_1, wmark_lines=("boost", "min", "low", "high"),
                    free_pages_blocks=False, memmap_pages=False, pcp="zone_highsize", movable_wmark_clamp=False,
                    meminfo_lines=_MEMINFO_6_1, node_meminfo_narrow=("FileHugePages", "FilePmdMapped"),
                    kmem_cache_node_size=64,
                    kmalloc_sequence=kmalloc_sequence((KMALLOC_NORMAL, KMALLOC_CGROUP, KMALLOC_RECLAIM, KMALLOC_DMA),
                                                      KMALLOC_IDX_POW2_ORDER),
                    kmalloc_buckets=False, oom_rss_columns=False, show_mem_thp_space=True,
                    compaction_suitable="4.9", gfpflag_names=_GFPFLAG_NAMES_6_1,
                    pcpu_first_chunk=(217088, 8192, 28672),      # the oracle guests' dmesg
                    boot_caches=BOOT_CACHES_6_1, steal_boosts=True)
LINUX_5_4 = Profile("5.4", _NODE_5_4, _ZONE_5_4, _NUMA, _EVENTS_5_4, wmark_lines=("min", "low", "high"),
                    zoneinfo_cma=False, free_pages_blocks=False, memmap_pages=False, pcp="6*batch",
                    movable_wmark_clamp=False, meminfo_lines=_MEMINFO_5_4, vmstat_nr_unstable=False,
                    node_meminfo_narrow=("FileHugePages", "FilePmdMapped"), kmem_cache_node_size=64,
                    aliases=tuple(_ALIASES_5_4.items()),
                    kmalloc_sequence=kmalloc_sequence((KMALLOC_NORMAL, KMALLOC_RECLAIM), KMALLOC_IDX_POW2_ORDER)
                    + kmalloc_sequence((KMALLOC_DMA,), _DMA_IDX),
                    kmalloc_buckets=False, compaction_proactiveness=None, oom_rss_columns=False,
                    show_mem_thp_space=True, compaction_suitable="4.9", folios=False,
                    gfpflag_names=_GFPFLAG_NAMES_6_1, thp_off_recalculates_min_free=False, steal_boosts=True,
                    reclaimable_counts_free=False)
# 3.10 (seed 002, a CentOS 7 SLUB): SLUB, /proc/vmstat and /proc/meminfo are 3.10's; zoneinfo,
# node meminfo, pagetypeinfo keep 5.4's shapes
# 3.10 counted direct reclaim once per do_try_to_free_pages(), not per zone (ALLOCSTALL)
_ALIASES_3_10 = {**_ALIASES_5_4, "allocstall": tuple(_zones("allocstall"))}
LINUX_3_10 = replace(LINUX_5_4, version="3.10", kmalloc_k_names=False, vmstat_counters=_VMSTAT_3_10,
                     compaction_suitable="3.10", steal_boosts=False, watermark_boost=False,   # (boost: 5.0)
                     aliases=tuple(_ALIASES_3_10.items()),
                     vm_event_items=_EVENTS_3_10, kernel_stack_kb=16, meminfo_lines=_MEMINFO_3_10, vmap_stack=False,
                     meminfo_hugetlb=False,
                     kmalloc_sequence=kmalloc_sequence((KMALLOC_NORMAL,), KMALLOC_IDX_POW2_ORDER)
                     + kmalloc_sequence((KMALLOC_DMA,), _DMA_IDX))

PROFILES = {p.version: p for p in (LINUX_6_18, LINUX_6_1, LINUX_5_4, LINUX_3_10)}
DEFAULT = PROFILES[DEFAULT_KERNEL]
assert tuple(PROFILES) == KERNEL_VERSIONS


def for_machine(machine) -> Profile:
    """The profile the machine's ``kernel:`` names (6.18 when absent)."""
    return PROFILES[machine.kernel]
