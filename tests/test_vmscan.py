"""Reclaim: the LRU lists, kswapd, direct reclaim, shrinkers, swap-out, drop_caches, with
expected values from the kernel's formulas worked by hand and from the /proc views."""
import re
import subprocess

import pytest

from procsim.testing import CONFIGS, boot, mounted_yaml, procsim_cmd
from procsim.mm import gfp as G
from procsim.mm import sysctl, vmscan
from procsim.mm.errors import MMError
from procsim.views import meminfo, slabinfo

VM = (CONFIGS / "seed-vm.yaml").read_text()


def kb(k, key) -> int:
    return int(re.search(rf"^{re.escape(key)}:\s+(\d+) kB$", meminfo.render(k).decode(), re.M)[1])


def ev(k, name) -> int:
    return k.vm_events.get(name, 0)


def test_second_access_activates():
    k = boot("tiny")
    page = k.alloc_pages(2, G.GFP_HIGHUSER_MOVABLE, use="pagecache")
    assert (kb(k, "Inactive(file)"), kb(k, "Active(file)")) == (16, 0)
    vmscan.mark_page_accessed(k, page)                    # PG_referenced only
    assert (kb(k, "Inactive(file)"), kb(k, "Active(file)"), ev(k, "pgactivate")) == (16, 0, 0)
    vmscan.mark_page_accessed(k, page)                    # the second access: active, 4 pages
    assert (kb(k, "Inactive(file)"), kb(k, "Active(file)"), ev(k, "pgactivate")) == (0, 16, 4)
    assert page.zone.stat["nr_zone_active_file"] == 4 and page.zone.stat["nr_zone_inactive_file"] == 0
    k.free_pages(page)                                     # an active folio leaves from the active list
    assert (kb(k, "Inactive(file)"), kb(k, "Active(file)"), kb(k, "Cached")) == (0, 0, 0)


@pytest.mark.parametrize("inactive,active,low", [
    (100, 101, True), (100, 100, False),                  # < 1 GiB: ratio 1
    (1 << 18, 3 * (1 << 18), False),                      # 4 GiB: sqrt(40) = 6; 6 * 1 GiB > 3 GiB
    (1 << 17, (1 << 20) - (1 << 17), True)])              # 4 GiB: 6 * 0.5 GiB < 3.5 GiB
def test_inactive_is_low_by_hand(inactive, active, low):
    class K:
        nodes = [type("N", (), {"stat": {"nr_inactive_file": inactive, "nr_active_file": active}})()]
    assert vmscan.inactive_is_low(K, 0, vmscan.LRU_INACTIVE_FILE) is low


def test_anon_past_free_memory_reclaims_the_page_cache():
    """The issue's example: on seed-vm, anon beyond the free memory succeeds by reclaim."""
    k = boot("seed-vm")
    free, cache = k.nr_free_pages, k.node_stat_total("nr_file_pages")
    want = free + cache // 2
    for i in range(want):                   # as commands of 1000 pages: kswapd runs between them
        k.alloc_pages(0, G.GFP_HIGHUSER_MOVABLE, use="anon")
        if i % 1000 == 999:
            k.tick()
    k.tick()
    assert k.node_stat_total("nr_anon_pages") - 227840 == want     # seed-vm boots with 227840 anon pages
    stolen = ev(k, "pgsteal_kswapd") + ev(k, "pgsteal_direct")
    assert stolen >= want - free and k.node_stat_total("nr_file_pages") == cache - stolen
    assert ev(k, "pgscan_kswapd") >= ev(k, "pgsteal_kswapd") > 0 and ev(k, "pageoutrun") > 0
    assert ev(k, "pgscan_file") == ev(k, "pgscan_kswapd") + ev(k, "pgscan_direct")
    assert ev(k, "pgsteal_anon") == 0                       # no swap: anon is never reclaimed
    assert ev(k, "slabs_scanned") > 0                       # the dentry/inode shrinker ran too
    # the last kswapd run stops as soon as the zone is above high, but a pass scans lru_size >> priority
    # at once (2504 pages at priority 6 here) and the shrinker frees slab pages besides
    for z in (z for z in k.zones if z.managed > 100000):
        assert z.wmark_min < z.nr_free < z.wmark_high + 3 * (cache >> 6)


def test_without_swap_past_all_memory_fails_and_keeps_the_anon():
    k = boot("tiny")
    with pytest.raises(MMError):
        while True:
            k.alloc_pages(0, G.GFP_HIGHUSER_MOVABLE, use="anon")
    assert ev(k, "pswpout") == 0 and k.node_stat_total("nr_anon_pages") > 0
    assert ev(k, "allocstall_movable") > 0                  # direct reclaim was tried (gfp_zone: movable)


def test_with_swap_anon_goes_out():
    k = boot(text=VM.rstrip() + "\nswap: 1GiB\n")
    free, cache = k.nr_free_pages, k.node_stat_total("nr_file_pages")
    for _ in range(free + cache + 50000):                  # more than free memory and all page cache
        k.alloc_pages(0, G.GFP_HIGHUSER_MOVABLE, use="anon")
    out = ev(k, "pswpout")
    assert out > 0 and ev(k, "pgsteal_anon") == out
    assert kb(k, "SwapFree") == kb(k, "SwapTotal") - out * 4
    assert ev(k, "pgscan_anon") >= out


def test_swappiness_zero_trims_the_cache_first():
    k = boot(text=VM.rstrip() + "\nswap: 1GiB\n")
    sysctl.write(k, "swappiness", "0")
    for _ in range(k.nr_free_pages + 10000):
        k.alloc_pages(0, G.GFP_HIGHUSER_MOVABLE, use="anon")
    assert ev(k, "pswpout") == 0 and ev(k, "pgsteal_file") > 0


def test_direct_reclaim_below_min():
    k = boot("seed-vm")
    z = max(k.zones, key=lambda z: z.managed)
    while z.nr_free > z.wmark_min // 2:                    # __GFP_HIGH digs below min, waking nobody
        k.alloc_pages(0, G.__GFP_HIGH)
    assert ev(k, "allocstall_normal") == ev(k, "pageoutrun") == 0
    cache = k.node_stat_total("nr_file_pages")
    k.alloc_pages(0, G.GFP_KERNEL)                          # below min: this one reclaims itself
    # allocstall by gfp_zone(GFP_KERNEL) = ZONE_NORMAL, though this machine has no Normal zone
    assert ev(k, "allocstall_normal") >= 1 and ev(k, "allocstall_dma32") == 0 and ev(k, "pgsteal_direct") >= vmscan.SWAP_CLUSTER_MAX
    assert ev(k, "pgscan_direct") >= ev(k, "pgsteal_direct")
    assert ev(k, "pageoutrun") == 0 and k.delayed_work_pending(("kswapd", z.node))   # and woke kswapd:
    k.tick()                                                # it runs when the clock next moves
    assert ev(k, "pageoutrun") == 1 and ev(k, "pgsteal_kswapd") > 0
    assert cache - k.node_stat_total("nr_file_pages") == ev(k, "pgsteal_direct") + ev(k, "pgsteal_kswapd")


def _dentry(k):
    line = next(l for l in slabinfo.render(k).decode().splitlines() if l.startswith("dentry "))
    return int(line.split()[1])


def test_vfs_cache_pressure_zero_keeps_dentries():
    k = boot("seed-vm")
    sysctl.write(k, "vfs_cache_pressure", "0")
    d = _dentry(k)
    for _ in range(k.nr_free_pages + 20000):
        k.alloc_pages(0, G.GFP_HIGHUSER_MOVABLE, use="anon")
    assert _dentry(k) == d and ev(k, "slabs_scanned") == 0 and ev(k, "pgsteal_file") > 0


def test_drop_caches_3_empties_cached_and_shrinks_dentry():
    k = boot("seed-vm")
    d = _dentry(k)
    sysctl.write(k, "drop_caches", "1")
    assert kb(k, "Cached") == 0 and _dentry(k) == d
    sysctl.write(k, "drop_caches", "2")
    assert _dentry(k) < d // 100
    assert (ev(k, "drop_pagecache"), ev(k, "drop_slab")) == (1, 1)


def test_users_page_cache_is_not_taken_before_the_task_registry():
    k = boot("tiny")
    mine = [k.alloc_pages(0, G.GFP_HIGHUSER_MOVABLE, use="pagecache") for _ in range(100)]
    sysctl.write(k, "drop_caches", "1")
    assert all(p.zone.allocated.get(p.pfn) is p for p in mine)     # PINNED: scanned, never freed


def test_real_free_and_vmstat_see_reclaim(tmp_path):
    with mounted_yaml(tmp_path, VM) as mp:
        free = lambda: subprocess.run(procsim_cmd("exec", mp, "--", "free", "-k"), capture_output=True,
                                      text=True).stdout.splitlines()[1].split()
        before = free()
        (mp / "control").write_text("alloc_pages 0 gfp=GFP_HIGHUSER_MOVABLE use=anon count=150000 tag=big\n")
        after = free()
        assert int(after[5]) < int(before[5])               # buff/cache shrank
        vmstat = dict(line.split() for line in (mp / "vmstat").read_text().splitlines())
        assert int(vmstat["pgsteal_kswapd"]) > 0 and int(vmstat["pageoutrun"]) > 0


def test_kswapd_hit_quickly_counters():
    """kswapd_try_to_sleep(): a node left unbalanced counts kswapd_high_wmark_hit_quickly; a
    balanced one naps HZ/10 (100 ms) first, and a wake-up inside the nap counts
    kswapd_low_wmark_hit_quickly (none after it)."""
    k = boot("tiny")
    z = max(k.zones, key=lambda z: z.managed)
    z.boost = 64                                           # balanced but boosted: kswapd wakes
    k.wakeup_kswapd(z, G.GFP_KERNEL, 0, z.idx)
    k.tick()
    assert z.boost == 0 and ev(k, "pageoutrun") == 1 and ev(k, "kswapd_high_wmark_hit_quickly") == 0
    z.boost = 64
    k.wakeup_kswapd(z, G.GFP_KERNEL, 0, z.idx)             # 4 ms later: inside the nap
    k.tick()                                               # the nap ends early: counted as kswapd goes on
    assert ev(k, "kswapd_low_wmark_hit_quickly") == 1
    k.sleep(10**9)
    z.boost = 64
    k.wakeup_kswapd(z, G.GFP_KERNEL, 0, z.idx)             # a second later: a fresh wake-up
    assert ev(k, "kswapd_low_wmark_hit_quickly") == 1
    k.tick()
    sysctl.write(k, "drop_caches", "3")                    # nothing reclaimable left to find
    while z.nr_free > z.wmark_min // 2:                    # unmovable kernel memory, below min
        k.alloc_pages(0, G.__GFP_HIGH)
    k.wakeup_kswapd(z, G.GFP_KERNEL, 0, z.idx)
    k.sleep(10**9)
    # each run that ends unbalanced goes on at once (kswapd_high_wmark_hit_quickly) until the
    # 16th failed run makes the node hopeless and kswapd sleeps for good
    pgdat = k.nodes[z.node]
    assert 1 <= ev(k, "kswapd_high_wmark_hit_quickly") < vmscan.MAX_RECLAIM_RETRIES
    assert pgdat.unreclaimable and pgdat.kswapd_state == vmscan.KSWAPD_SLEEPING
    assert not k.pgdat_balanced(pgdat, 0, z.idx)


# ---- shrink_slab by do_shrink_slab's arithmetic (issue 25) -----------------------------------
TWO_NODES = """
sockets: [{cores: 1, threads: 2}, {cores: 1, threads: 2}]
dimms:
  - {socket: 0, size: 512MiB}
  - {socket: 1, size: 512MiB}
boot:
  caches:
    - {name: dentry, size: 192, objects: 3000, flags: SLAB_RECLAIM_ACCOUNT, unused: 2000}
    - {name: inode_cache, size: 640, objects: 500, flags: SLAB_RECLAIM_ACCOUNT, unused: 0}
"""


def _active(k, name):
    line = next(l for l in slabinfo.render(k).decode().splitlines() if l.startswith(name + " "))
    return int(line.split()[1])


def test_shrink_slab_arithmetic_by_hand():
    """6.1's do_shrink_slab() for the superblock shrinker, node 0's 1000 unused dentries (2000
    spread over two nodes as boot spread them): priority 12: delta = (1000 >> 12) * 4 / 2 = 0,
    nothing scanned or deferred.  Priority 2: delta = 250 * 4 / 2 = 500 = total_scan; three
    batches of 128 (384 scanned; super_cache_scan frees 128 * d / (d + 1) + 1 = 128 each),
    the 116 left are under SHRINK_BATCH and under freeable: deferred.  Again at priority 2:
    freeable 616, delta 154 * 2 = 308, total_scan 116 >> 2 + 308 = 337: two batches (256),
    next_deferred = 116 + 308 - 256 = 168.  Node 1 is never touched."""
    k = boot(text=TWO_NODES)
    assert vmscan.super_cache_count(k, 0) == vmscan.super_cache_count(k, 1) == (1000, 0)
    assert vmscan.shrink_slab(k, G.GFP_KERNEL, 0, 12) == 0 and ev(k, "slabs_scanned") == 0
    assert k.nr_deferred == [0, 0]
    assert vmscan.shrink_slab(k, G.GFP_KERNEL, 0, 2) == 384
    assert ev(k, "slabs_scanned") == 384 and k.nr_deferred == [116, 0]
    assert vmscan.shrink_slab(k, G.GFP_KERNEL, 0, 2) == 256
    assert ev(k, "slabs_scanned") == 640 and k.nr_deferred == [168, 0]
    assert vmscan.super_cache_count(k, 0) == (360, 0) and vmscan.super_cache_count(k, 1) == (1000, 0)
    assert _active(k, "inode_cache") >= 500                 # the inodes in use are nobody's to free


def test_shrink_slab_stops_without_gfp_fs_and_defers():
    """super_cache_scan() returns SHRINK_STOP without __GFP_FS: nothing scanned, and the
    delta (1000 >> 0) * 4 / 2 = 2000 is deferred, capped at 2 * freeable = 2000."""
    k = boot(text=TWO_NODES)
    assert vmscan.shrink_slab(k, G.GFP_NOFS, 1, 0) == 0
    assert ev(k, "slabs_scanned") == 0 and k.nr_deferred == [0, 2000]
    # the deferred work comes back at the next call: (2000 >> 12) + 0 = 0 still under a batch
    assert vmscan.shrink_slab(k, G.GFP_KERNEL, 1, 12) == 0 and k.nr_deferred == [0, 2000]
    # priority 3: 2000 >> 3 = 250 + (1000 >> 3) * 2 = 250: 500 -> three batches, 384 freed
    assert vmscan.shrink_slab(k, G.GFP_KERNEL, 1, 3) == 384


def test_drop_caches_keeps_objects_in_use():
    """drop_caches 2 frees the unused dentries only (both nodes' 1000); the 1000 in use and
    every inode (held by its dentry) stay."""
    k = boot(text=TWO_NODES)
    sysctl.write(k, "drop_caches", "2")
    dentry, inode = k.slab.find("dentry"), k.slab.find("inode_cache")
    assert (dentry.inuse, inode.inuse) == (1000, 500) and not k.shrinkable
    # priority 0: total_scan = min(2 * 1000, 2 * 1000) per node, 15 batches of 128 (1920); the
    # last 80 are under a batch and under freeable (1000 when counted): deferred.  The second
    # round finds nothing freeable and stops.
    assert ev(k, "slabs_scanned") == 2 * 1920 and k.nr_deferred == [80, 80]


def test_boot_cache_unused_validated():
    from procsim import machine as M
    with pytest.raises(M.ConfigError, match=r"unused \(20\) is more than objects \(10\)"):
        M.loads("sockets: [{cores: 1}]\ndimms: [{socket: 0, size: 256MiB}]\n"
                "boot:\n  caches:\n    - {name: dentry, size: 192, objects: 10, unused: 20}\n")


MAPPED = """
sockets: [{cores: 1, threads: 2}]
dimms: [{socket: 0, size: 256MiB}]
boot:
  pages:
    - {use: pagecache, size: 8MiB, active: 4MiB, mapped: 2MiB}
"""


def test_mapped_page_cache_is_counted_and_kept_by_drop_caches():
    """boot.pages[].mapped: 2 MiB of the 8 MiB page cache is mapped (Mapped, nr_mapped in
    zoneinfo/vmstat).  drop_caches 1 drops only unmapped clean page cache
    (invalidate_mapping_pages skips mapped folios): Cached goes from 8 MiB to the 2 MiB mapped."""
    k = boot(text=MAPPED)
    assert kb(k, "Mapped") == 2048 and kb(k, "Cached") == 8192
    sysctl.write(k, "drop_caches", "1")
    assert kb(k, "Cached") == 2048 and kb(k, "Mapped") == 2048
    # reclaim unmaps and frees mapped page cache as any clean page cache (no pte is found
    # referenced): past the free memory, Mapped falls with Cached
    while kb(k, "Cached"):
        k.alloc_pages(0, G.GFP_HIGHUSER_MOVABLE, use="anon")
    assert kb(k, "Mapped") == 0 and ev(k, "pgsteal_file") >= 512


def test_running_programs_text_and_touched_pages_stay():
    """boot.pages[].touched/text: mapped page cache whose ptes running programs keep young.
    folio_check_references(): text (VM_EXEC) is activated at once and shrink_active_list()
    rotates it back to the active list; touched data is kept (PG_referenced) on its first scan
    and activated on its second.  Reclaim frees every other page of cache around them, and
    the counters say so: pgactivate grows, pgdeactivate counts only what moved."""
    k = boot(text=MAPPED.replace("mapped: 2MiB", "mapped: 2MiB, touched: 2MiB, text: 1MiB"))
    assert kb(k, "Mapped") == 2048 and kb(k, "Active(file)") == 4096
    act = ev(k, "pgactivate")
    for _ in range(60000):
        if kb(k, "Cached") <= 2048:
            break
        k.alloc_pages(0, G.GFP_HIGHUSER_MOVABLE, use="anon")
    from procsim.mm.errors import MMError
    with pytest.raises(MMError):                # on to the end: reclaim scans what is left, in vain
        for _ in range(20000):
            k.alloc_pages(0, G.GFP_HIGHUSER_MOVABLE, use="anon")
    assert kb(k, "Cached") == 2048 and kb(k, "Mapped") == 2048
    assert ev(k, "pgsteal_file") >= (8192 - 2048) // 4
    assert ev(k, "pgactivate") > act
    assert ev(k, "pgrefill") > ev(k, "pgdeactivate")      # the text was scanned and stayed active


def test_boot_mapped_validated():
    from procsim import machine as M
    with pytest.raises(M.ConfigError, match=r"mapped: only page cache"):
        M.loads(MAPPED.replace("use: pagecache", "use: anon"))
    with pytest.raises(M.ConfigError, match=r"mapped \(16 MiB\) is more than size"):
        M.loads(MAPPED.replace("mapped: 2MiB", "mapped: 16MiB"))
    with pytest.raises(M.ConfigError, match=r"touched \(3 MiB\) is more than mapped \(2 MiB\)"):
        M.loads(MAPPED.replace("mapped: 2MiB", "mapped: 2MiB, touched: 3MiB"))
    with pytest.raises(M.ConfigError, match=r"text \(2 MiB\) is more than touched \(1 MiB\)"):
        M.loads(MAPPED.replace("mapped: 2MiB", "mapped: 2MiB, touched: 1MiB, text: 2MiB"))
    with pytest.raises(M.ConfigError, match=r"touched \(108 KiB\) is more than mapped \(100 KiB\)"):
        M.loads(MAPPED.replace("mapped: 2MiB", "mapped: 100KiB, touched: 108KiB"))


@pytest.mark.parametrize("version, counts_free", [("6.18", True), ("6.1", True), ("5.4", False), ("3.10", False)])
def test_a_zone_without_lru_pages_is_reclaimable_by_its_free_pages_since_the_cve_fix(version, counts_free):
    """zone_reclaimable_pages() of a zone with no LRU pages: its free pages in 6.13+ and the
    stable kernels that took CVE-2024-57884's fix (the oracle's 6.1.176 traces it), nothing in
    5.4.286 and 3.10.  A zone with page cache counts its LRU pages only."""
    from procsim.mm.profile import PROFILES
    k = boot("tiny", profile=PROFILES[version])
    dma = k.zones[0]
    assert dma.nr_free and not dma.stat["nr_zone_inactive_file"] + dma.stat["nr_zone_active_file"]
    assert k.zone_reclaimable_pages(dma) == (dma.nr_free if counts_free else 0)
    page = k.alloc_pages(0, G.GFP_DMA, use="pagecache")        # one page of cache in DMA
    assert page.zone is dma and k.zone_reclaimable_pages(dma) == 1
