"""Kernel profiles against what older kernels printed: seed 000's zoneinfo (an Ubuntu 5.4 VM,
tests/data/seeds/000_zoneinfo_5.4.txt, copied from the tutorial).  6.1 is held to the real
kernel by tests/test_oracle.py."""
from __future__ import annotations

import re
from pathlib import Path

from procsim import machine as M
from procsim.mm.kernel import Kernel
from procsim.views import files

ROOT = Path(__file__).resolve().parent.parent
SEED_5_4 = (ROOT / "tests" / "data" / "seeds" / "000_zoneinfo_5.4.txt").read_text()


def zoneinfo(config: str) -> str:
    m = M.load(ROOT / "configs" / config)
    return files(m)["zoneinfo"].render(Kernel(m)).decode()


def fields(text: str, key: str) -> list[int]:
    return [int(x) for x in re.findall(rf"^\s*{key}\s+(\d+)$", text, re.M)]


def test_seed_vm_5_4_zoneinfo_has_seed_000s_lines_order_and_spacing():
    """Every line of seed 000's zoneinfo, numbers aside, character for character: no boost,
    cma or promo, workingset_* unsplit, nr_unstable a node item, page tables and kernel stacks
    zone items, 'count: / high:  / batch: ' pagesets."""
    ours = zoneinfo("seed-vm-5.4.yaml")
    assert re.sub(r"\d+", "#", ours) == re.sub(r"\d+", "#", SEED_5_4)


def test_seed_vm_5_4_zone_layout_and_pagesets_match_seed_000():
    ours = zoneinfo("seed-vm-5.4.yaml")
    for key in ("spanned", "present", "start_pfn:"):
        assert fields(ours, key)[:2] == fields(SEED_5_4, key)[:2], key      # DMA and DMA32
    # pageset_set_batch(): high = 6 * batch before batch is clamped to 1 (DMA: 0 and 1)
    assert fields(ours, "high:") == fields(SEED_5_4, "high:") == [0, 0, 378, 378]
    assert fields(ours, "batch:") == fields(SEED_5_4, "batch:") == [1, 1, 63, 63]


def test_6_18_is_the_default_and_keeps_its_own_lines():
    z = zoneinfo("seed-vm.yaml")
    assert "high_min:" in z and "        promo    " in z and "nr_unstable" not in z


SEED_3_10 = (ROOT / "tests" / "data" / "seeds" / "002_slabinfo_3.10.txt").read_text()
# seed 002's CentOS 7 machine: its geometry fits nr_cpu_ids = 128 (min_objects 4 * (8 + 1) = 36:
# kmalloc-256 needs more than 32 per slab, kmalloc-96 at most 42)
MACHINE_3_10 = 'kernel: "3.10"\nsockets: [{cores: 64, threads: 128}]\ndimms: [{socket: 0, size: 8GiB}]\n'


def test_3_10_slab_geometry_of_every_cache_of_seed_002():
    """objsize / objperslab / pagesperslab of all 91 caches seed 002 lists: its kmalloc-N and
    dma-kmalloc-N caches as 3.10 names them, the others created with their object size, on
    128 CPUs (calculate_order's min_objects = 4 * (fls(128) + 1) = 36)."""
    k = Kernel(M.loads(MACHINE_3_10), boot=False)
    rows = [line.split() for line in SEED_3_10.splitlines()[2:]]
    assert len(rows) == 91
    for p in rows:
        c = k.slab.find(p[0]) or k.slab.kmem_cache_create(p[0], int(p[3]))
        assert (c.size, c.objects, 1 << c.order) == (int(p[3]), int(p[4]), int(p[5])), p[0]


def test_3_10_kmalloc_names_and_creation_order():
    """kmalloc-1024, not kmalloc-1k; only the normal and DMA families; slabinfo (newest first)
    lists the DMA family as made from kmalloc_caches[]: 8192 ... 8, then 192 and 96."""
    k = Kernel(M.loads(MACHINE_3_10), boot=False)
    names = [c.name for c in k.slab.caches]
    seed = [p.split()[0] for p in SEED_3_10.splitlines()[2:] if "kmalloc" in p.split()[0]]
    assert [n for n in names if "kmalloc" in n][:len(seed)] == seed
    assert not any(n.startswith(("kmalloc-cg-", "kmalloc-rcl-")) or n.endswith("k") for n in names)


TINY = (ROOT / "configs" / "tiny.yaml").read_text()


def _pcp_after_frees_and_sleep(kernel: str):
    """tiny (DMA32 holds the memory) after 3000 pages freed through cpu 0's pageset and a
    40 s sleep: (zoneinfo's DMA32 cpu-0 ``high`` right after the frees, after the sleep,
    and the pageset)."""
    from procsim.control import Control
    from procsim.testing import boot
    ctl = Control(lambda: boot(text=f'kernel: "{kernel}"\n' + TINY))
    k = ctl.kernel
    zoneinfo_high = lambda: fields(files(k.machine)["zoneinfo"].render(k).decode(), "high:")[2]
    assert ctl.run("alloc_pages 0 count=3000 tag=t").errno == 0
    assert ctl.run("free_pages tag=t").errno == 0
    after_frees = zoneinfo_high()
    assert ctl.run("sleep 40").text == "ok"
    return after_frees, zoneinfo_high(), k.zones[1].pcp[0]


def test_6_1_pcp_high_is_static_through_frees_and_sleeps():
    """6.1 has no dynamic high: zone_highsize() = max(low / nr_cpus_of_node, 4 * batch).  tiny:
    DMA32 managed and its low watermark give max(low // 2, 4 * batch); the frees must not raise
    it nor the vmstat worker lower it."""
    after_frees, after_sleep, pcp = _pcp_after_frees_and_sleep("6.1")
    from procsim.testing import boot
    z = boot(text='kernel: "6.1"\n' + TINY).zones[1]
    static = max(z.wmark_low // 2, 4 * z.pcp[0].batch)
    assert after_frees == after_sleep == pcp.high == static
    assert pcp.count <= static


def test_6_18_pcp_high_moves_with_the_same_workload():
    after_frees, after_sleep, pcp = _pcp_after_frees_and_sleep("6.18")
    assert after_frees > after_sleep == pcp.high_min


def test_5_4_pcp_high_is_six_batches_through_frees_and_sleeps():
    after_frees, after_sleep, pcp = _pcp_after_frees_and_sleep("5.4")
    assert after_frees == after_sleep == pcp.high == 6 * pcp.batch


# ---- 5.4 /proc/vmstat and /proc/meminfo keys, written out from the 5.4 source ----------------
# mm/vmstat.c vmstat_text[] of a 5.4 tree (read in AOSP-KONA-MSMNILE-LAHAINA-KALAMA/
# kernel_xiaomi_sm8350, Android's 5.4, lines "const char * const vmstat_text[]" to its "};",
# leaving out the Android-only pgpgoutclean, nr_unreclaimable_pages, speculative_pgfault_*),
# for Ubuntu 20.04's x86-64 config: NUMA, ZSMALLOC, NUMA_BALANCING, MIGRATION, COMPACTION,
# HUGETLB_PAGE, TRANSPARENT_HUGEPAGE (+PUD), MEMORY_BALLOON, BALLOON_COMPACTION, SWAP; zones
# DMA, DMA32, Normal, Movable.  vmstat_show() of 5.4 adds nothing after the events.
def _z(name):
    return [f"{name}_dma", f"{name}_dma32", f"{name}_normal", f"{name}_movable"]


VMSTAT_5_4 = (
    "nr_free_pages nr_zone_inactive_anon nr_zone_active_anon nr_zone_inactive_file nr_zone_active_file "
    "nr_zone_unevictable nr_zone_write_pending nr_mlock nr_page_table_pages nr_kernel_stack nr_bounce "
    "nr_zspages nr_free_cma "
    "numa_hit numa_miss numa_foreign numa_interleave numa_local numa_other "
    "nr_inactive_anon nr_active_anon nr_inactive_file nr_active_file nr_unevictable nr_slab_reclaimable "
    "nr_slab_unreclaimable nr_isolated_anon nr_isolated_file workingset_nodes workingset_refault "
    "workingset_activate workingset_restore workingset_nodereclaim nr_anon_pages nr_mapped nr_file_pages "
    "nr_dirty nr_writeback nr_writeback_temp nr_shmem nr_shmem_hugepages nr_shmem_pmdmapped "
    "nr_file_hugepages nr_file_pmdmapped nr_anon_transparent_hugepages nr_unstable nr_vmscan_write "
    "nr_vmscan_immediate_reclaim nr_dirtied nr_written nr_kernel_misc_reclaimable "
    "nr_dirty_threshold nr_dirty_background_threshold "
    "pgpgin pgpgout pswpin pswpout").split() + _z("pgalloc") + _z("allocstall") + _z("pgskip") + (
    "pgfree pgactivate pgdeactivate pglazyfree pgfault pgmajfault pglazyfreed pgrefill pgsteal_kswapd "
    "pgsteal_direct pgscan_kswapd pgscan_direct pgscan_direct_throttle zone_reclaim_failed pginodesteal "
    "slabs_scanned kswapd_inodesteal kswapd_low_wmark_hit_quickly kswapd_high_wmark_hit_quickly pageoutrun "
    "pgrotated drop_pagecache drop_slab oom_kill numa_pte_updates numa_huge_pte_updates numa_hint_faults "
    "numa_hint_faults_local numa_pages_migrated pgmigrate_success pgmigrate_fail compact_migrate_scanned "
    "compact_free_scanned compact_isolated compact_stall compact_fail compact_success compact_daemon_wake "
    "compact_daemon_migrate_scanned compact_daemon_free_scanned htlb_buddy_alloc_success htlb_buddy_alloc_fail "
    "unevictable_pgs_culled unevictable_pgs_scanned unevictable_pgs_rescued unevictable_pgs_mlocked "
    "unevictable_pgs_munlocked unevictable_pgs_cleared unevictable_pgs_stranded thp_fault_alloc "
    "thp_fault_fallback thp_collapse_alloc thp_collapse_alloc_failed thp_file_alloc thp_file_mapped "
    "thp_split_page thp_split_page_failed thp_deferred_split_page thp_split_pmd thp_split_pud "
    "thp_zero_page_alloc thp_zero_page_alloc_failed thp_swpout thp_swpout_fallback balloon_inflate "
    "balloon_deflate balloon_migrate swap_ra swap_ra_hit").split()

# fs/proc/meminfo.c meminfo_proc_show() of 5.4 (the 5.x layout: show_val_kb() "%8lu kB" after a
# 16-column label, HardwareCorrupted's own "%5lu"), Ubuntu's config: MEMORY_FAILURE,
# TRANSPARENT_HUGEPAGE, CMA; then hugetlb_report_meminfo() and x86's arch_report_meminfo()
MEMINFO_5_4 = (
    "MemTotal MemFree MemAvailable Buffers Cached SwapCached Active Inactive Active(anon) Inactive(anon) "
    "Active(file) Inactive(file) Unevictable Mlocked SwapTotal SwapFree Dirty Writeback AnonPages Mapped "
    "Shmem KReclaimable Slab SReclaimable SUnreclaim KernelStack PageTables NFS_Unstable Bounce WritebackTmp "
    "CommitLimit Committed_AS VmallocTotal VmallocUsed VmallocChunk Percpu HardwareCorrupted AnonHugePages "
    "ShmemHugePages ShmemPmdMapped FileHugePages FilePmdMapped CmaTotal CmaFree HugePages_Total "
    "HugePages_Free HugePages_Rsvd HugePages_Surp Hugepagesize Hugetlb DirectMap4k DirectMap2M "
    "DirectMap1G").split()


def render(config: str, name: str) -> str:
    m = M.load(ROOT / "configs" / config)
    return files(m)[name].render(Kernel(m)).decode()


def test_5_4_vmstat_keys_and_order_are_5_4s_vmstat_text():
    ours = render("seed-vm-5.4.yaml", "vmstat")
    assert [line.split()[0] for line in ours.splitlines()] == VMSTAT_5_4
    assert ours.endswith("swap_ra_hit 0\n")              # no fake nr_unstable after the events


def test_5_4_vmstat_counters_are_seed_000s_node_and_zone_counters():
    """vmstat_text[] starts with the zone items (nr_free_pages first), then NUMA, then node
    items: the same names, in the same order, as seed 000's zoneinfo lists per zone / node."""
    seed = re.findall(r"^      (\S+)\s+\d+$", SEED_5_4.split("Node 0, zone    DMA32")[0], re.M)
    names = [line.split()[0] for line in render("seed-vm-5.4.yaml", "vmstat").splitlines()]
    node = seed[:seed.index("nr_kernel_misc_reclaimable") + 1]
    zone_and_numa = seed[len(node):]
    assert names[:len(zone_and_numa)] == zone_and_numa
    assert names[len(zone_and_numa):len(seed)] == node


def test_5_4_vmstat_counts_page_tables_and_kernel_stacks_in_the_zone_items():
    """5.4 keeps NR_PAGETABLE and NR_KERNEL_STACK_KB per zone; the global sum is procsim's node total."""
    m = M.load(ROOT / "configs" / "seed-vm-5.4.yaml")
    k = Kernel(m)
    vs = dict(line.split() for line in files(m)["vmstat"].render(k).decode().splitlines())
    assert int(vs["nr_page_table_pages"]) == k.node_stat_total("nr_page_table_pages") > 0
    assert int(vs["nr_kernel_stack"]) == k.node_stat_total("nr_kernel_stack") > 0


def test_5_4_meminfo_keys_order_and_widths():
    ours = render("seed-vm-5.4.yaml", "meminfo")
    lines = ours.splitlines()
    assert [line.split(":")[0] for line in lines] == MEMINFO_5_4
    for line in lines:
        if line.startswith("HardwareCorrupted:"):
            assert re.fullmatch(r"HardwareCorrupted: {5}0 kB", line)
        elif line.endswith(" kB"):                        # "%-16s%8lu kB"
            label, value = line[:16], line[16:-3]
            assert label == f"{line.split(':')[0] + ':':<16}" and len(value) == max(8, len(value.strip())), line


# ---- 3.10 (kernel.org v3.10; read in AndreiLux/ref-3.10, a 3.10 tree, leaving out its vendor
# additions nr_inuse, pgfmfault, InUse) --------------------------------------------------------
# mm/vmstat.c vmstat_text[]: enum zone_stat_item (NUMA items inside it, then THP and CMA), the two
# writeback items, then vm_event_item for CentOS 7's x86-64 config (NUMA, NUMA_BALANCING,
# MIGRATION, COMPACTION, HUGETLB_PAGE, TRANSPARENT_HUGEPAGE); no fake counter at the end
VMSTAT_3_10 = (
    "nr_free_pages nr_inactive_anon nr_active_anon nr_inactive_file nr_active_file nr_unevictable nr_mlock "
    "nr_anon_pages nr_mapped nr_file_pages nr_dirty nr_writeback nr_slab_reclaimable nr_slab_unreclaimable "
    "nr_page_table_pages nr_kernel_stack nr_unstable nr_bounce nr_vmscan_write nr_vmscan_immediate_reclaim "
    "nr_writeback_temp nr_isolated_anon nr_isolated_file nr_shmem nr_dirtied nr_written numa_hit numa_miss "
    "numa_foreign numa_interleave numa_local numa_other nr_anon_transparent_hugepages nr_free_cma "
    "nr_dirty_threshold nr_dirty_background_threshold pgpgin pgpgout pswpin pswpout").split() + _z("pgalloc") + (
    "pgfree pgactivate pgdeactivate pgfault pgmajfault").split() + _z("pgrefill") + _z("pgsteal_kswapd") + \
    _z("pgsteal_direct") + _z("pgscan_kswapd") + _z("pgscan_direct") + (
    "pgscan_direct_throttle zone_reclaim_failed pginodesteal slabs_scanned kswapd_inodesteal "
    "kswapd_low_wmark_hit_quickly kswapd_high_wmark_hit_quickly pageoutrun allocstall pgrotated "
    "numa_pte_updates numa_hint_faults numa_hint_faults_local numa_pages_migrated pgmigrate_success "
    "pgmigrate_fail compact_migrate_scanned compact_free_scanned compact_isolated compact_stall compact_fail "
    "compact_success htlb_buddy_alloc_success htlb_buddy_alloc_fail unevictable_pgs_culled "
    "unevictable_pgs_scanned unevictable_pgs_rescued unevictable_pgs_mlocked unevictable_pgs_munlocked "
    "unevictable_pgs_cleared unevictable_pgs_stranded thp_fault_alloc thp_fault_fallback thp_collapse_alloc "
    "thp_collapse_alloc_failed thp_split thp_zero_page_alloc thp_zero_page_alloc_failed").split()

# fs/proc/meminfo.c meminfo_proc_show(): one seq_printf (MEMORY_FAILURE, TRANSPARENT_HUGEPAGE,
# no HIGHMEM, QUICKLIST); hugetlb_report_meminfo() without 4.16's Hugetlb line; x86 DirectMap*
MEMINFO_3_10 = (
    "MemTotal MemFree Buffers Cached SwapCached Active Inactive Active(anon) Inactive(anon) Active(file) "
    "Inactive(file) Unevictable Mlocked SwapTotal SwapFree Dirty Writeback AnonPages Mapped Shmem Slab "
    "SReclaimable SUnreclaim KernelStack PageTables NFS_Unstable Bounce WritebackTmp CommitLimit Committed_AS "
    "VmallocTotal VmallocUsed VmallocChunk HardwareCorrupted AnonHugePages HugePages_Total HugePages_Free "
    "HugePages_Rsvd HugePages_Surp Hugepagesize DirectMap4k DirectMap2M DirectMap1G").split()


def _seed_vm_3_10():
    """seed-vm-5.4.yaml's machine (its boot workload has kernel stacks) as a 3.10."""
    text = (ROOT / "configs" / "seed-vm-5.4.yaml").read_text().replace('kernel: "5.4"', 'kernel: "3.10"')
    m = M.loads(text)
    assert m.kernel == "3.10"
    return m, Kernel(m)


def test_3_10_vmstat_keys_and_order_are_3_10s_vmstat_text():
    m, k = _seed_vm_3_10()
    text = files(m)["vmstat"].render(k).decode()
    assert [line.split()[0] for line in text.splitlines()] == VMSTAT_3_10
    vs = {a: int(b) for a, b in (line.split() for line in text.splitlines())}
    # the node-kept counters reach 3.10's zone counters; NR_KERNEL_STACK counts stacks
    assert vs["nr_free_pages"] == k.nr_free_pages
    assert vs["nr_slab_unreclaimable"] == k.node_stat_total("nr_slab_unreclaimable") > 0
    assert vs["nr_kernel_stack"] * 16 == k.node_stat_total("nr_kernel_stack") > 0


def test_3_10_meminfo_keys_and_order():
    m, k = _seed_vm_3_10()
    lines = files(m)["meminfo"].render(k).decode().splitlines()
    assert [line.split(":")[0] for line in lines] == MEMINFO_3_10
    assert "HardwareCorrupted:     0 kB" in lines


def test_3_10_counts_reclaim_its_way():
    """3.10 has one ALLOCSTALL event per do_try_to_free_pages(), where 4.x+ split it by zone,
    and counts pgscan/pgsteal/pgrefill per zone, where 4.8+ count them per node."""
    m, k = _seed_vm_3_10()
    from procsim.mm import gfp as G
    from procsim.mm.errors import MMError
    while not k.vm_events.get("allocstall_movable"):        # anon past free memory and page cache (gfp_zone: movable)
        try:                                                # (kswapd keeps up until the OOM kill)
            k.tasks.alloc_pages("a", 0, G.GFP_HIGHUSER_MOVABLE, 20000, use="anon")
        except MMError:
            break
    vs = dict(line.split() for line in files(m)["vmstat"].render(k).decode().splitlines())
    assert "allocstall_dma32" not in vs
    assert int(vs["allocstall"]) == sum(k.vm_events.get(f"allocstall_{z}", 0) for z in ("dma", "dma32", "normal", "movable")) > 0
    # ... and every reclaim event per zone: they add up to the node-wide 4.8+ counters
    for ev in ("pgscan_direct", "pgsteal_direct", "pgscan_kswapd", "pgsteal_kswapd", "pgrefill"):
        per_zone = sum(int(vs[f"{ev}_{z}"]) for z in ("dma", "dma32", "normal", "movable"))
        assert per_zone == k.vm_events.get(ev, 0), ev
    # kswapd, beside the task, did the reclaiming (the direct reclaim before the OOM found nothing)
    assert int(vs["pgsteal_kswapd_dma32"]) > 0 and int(vs["pgscan_kswapd_dma32"]) >= int(vs["pgsteal_kswapd_dma32"])


def _suitable_marks(version: str, order: int) -> tuple[int, int, int, tuple]:
    """The order-0 watermark check compaction_suitable() makes under a version: (order, mark,
    highest_zoneidx) of its first _watermark_ok call, with the zone's min/low/high."""
    m = M.loads(f'kernel: "{version}"\nsockets: [{{cores: 1}}]\ndimms: [{{socket: 0, size: 1GiB}}]\n')
    k = Kernel(m, boot=False, slab=False)
    z = k.zones[1]
    calls = []
    k._watermark_ok = lambda zone, o, mark, highest, flags, free=None: calls.append((o, mark, highest)) or False
    assert k.compaction_suitable(z, order, z.wmark_high, 2) is False
    return calls[0], (z.wmark_min, z.wmark_low, z.wmark_high)


def test_compaction_suitable_runs_each_versions_rule():
    """6.18: the caller's watermark + compact_gap(); 6.1 and 5.4 (since 4.9): min for orders up
    to PAGE_ALLOC_COSTLY_ORDER, low above it; 3.10: low + 2 << order for classzone 0."""
    for order in (2, 9):
        call, (wmin, low, high) = _suitable_marks("6.18", order)
        assert call == (0, high + (2 << order), 2)
        for v in ("6.1", "5.4"):
            call, (wmin, low, high) = _suitable_marks(v, order)
            assert call == (0, (low if order > 3 else wmin) + (2 << order), 2), v
        call, (wmin, low, high) = _suitable_marks("3.10", order)
        assert call == (0, low + (2 << order), 0)


def test_use_anon_without_gfp_faults_with_the_fault_paths_mask():
    """use=anon without gfp= allocates as do_anonymous_page(): GFP_HIGHUSER_MOVABLE|__GFP_ZERO,
    6.x adding __GFP_COMP for the folio -- the OOM header of a real Debian 6.1 guest whose
    awk failed an anon fault (tests/data/oracle/movable-low.txt) names 0x140dca; 5.4 allocates
    a page (0x100dca).  (one-node.txt's awk failed a page table: GFP_KERNEL_ACCOUNT|__GFP_ZERO,
    task.GFP_PGTABLE_USER.)  The pageblocks the anon fills are Movable."""
    from procsim.control import Control
    from procsim.mm import printk
    real = (ROOT / "tests" / "data" / "oracle" / "movable-low.txt").read_text()
    assert "gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO)" in real
    from procsim.mm.task import GFP_PGTABLE_USER
    one = (ROOT / "tests" / "data" / "oracle" / "one-node.txt").read_text()
    assert f"gfp_mask={GFP_PGTABLE_USER:#x}(GFP_KERNEL_ACCOUNT|__GFP_ZERO)" in one
    names = {"6.1": "GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO",      # 6.1's mmflags.h order, as real
             "6.18": "GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP", "5.4": "GFP_HIGHUSER_MOVABLE|__GFP_ZERO"}
    for version, mask in (("6.1", 0x140dca), ("6.18", 0x140dca), ("5.4", 0x100dca)):
        m = M.loads(f'kernel: "{version}"\nsockets: [{{cores: 1}}]\ndimms: [{{socket: 0, size: 256MiB}}]\n')
        ctl = Control(lambda m=m: Kernel(m))
        while ctl.run("alloc_pages 0 use=anon count=4096 tag=hog").errno == 0:
            pass
        head = next(r.text for r in printk.ring(ctl.kernel).records if "invoked oom-killer" in r.text)
        assert head.startswith(f"hog invoked oom-killer: gfp_mask={mask:#x}({names[version]}), "), head
    assert ctl.run("alloc_pages 0 use=anon tag=x").errno == 0
    page = next(iter(ctl.kernel.tasks.find_task("x").batches()))
    assert page.mt == 1                                     # MIGRATE_MOVABLE
    assert ctl.run("alloc_pages 0 use=anon gfp=GFP_KERNEL tag=y").errno == 0
    assert next(iter(ctl.kernel.tasks.find_task("y").batches())).mt == 0    # gfp= still wins
