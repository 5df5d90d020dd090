"""The vm sysctl tree of the profile's kernel (issue 29.3): every file, ranges, effects."""
from __future__ import annotations

import errno
import subprocess

import pytest

import procsim
from procsim.mm import sysctl
from procsim.mm.errors import MMError
from procsim.testing import procsim_cmd

# /proc/sys/vm of x86-64 6.18 as Debian configures it (NUMA, HUGETLB, COMPACTION,
# MEMORY_FAILURE, USERFAULTFD), from kernel/sysctl.c, mm/*.c and fs/*.c by hand.
VM_6_18 = """admin_reserve_kbytes compact_memory compact_unevictable_allowed compaction_proactiveness
defrag_mode dirty_background_bytes dirty_background_ratio dirty_bytes dirty_expire_centisecs dirty_ratio
dirty_writeback_centisecs dirtytime_expire_seconds drop_caches enable_soft_offline extfrag_threshold
hugetlb_optimize_vmemmap hugetlb_shm_group laptop_mode legacy_va_layout lowmem_reserve_ratio max_map_count
memfd_noexec memory_failure_early_kill memory_failure_recovery min_free_kbytes min_slab_ratio
min_unmapped_ratio mmap_min_addr mmap_rnd_bits mmap_rnd_compat_bits nr_hugepages nr_hugepages_mempolicy
nr_overcommit_hugepages numa_stat numa_zonelist_order oom_dump_tasks oom_kill_allocating_task
overcommit_kbytes overcommit_memory overcommit_ratio page-cluster page_lock_unfairness panic_on_oom
percpu_pagelist_high_fraction stat_interval stat_refresh swappiness unprivileged_userfaultfd
user_reserve_kbytes vfs_cache_pressure vfs_cache_pressure_denom watermark_boost_factor
watermark_scale_factor zone_reclaim_mode""".split()


def _files(sim):
    return sorted(v.split("/", 2)[2] for v in sim.views() if v.startswith("sysctl/vm/"))


def test_each_version_has_its_files():
    assert _files(procsim.boot("seed-vm")) == VM_6_18
    old = procsim.Simulation(procsim.load("seed-vm-5.4"))
    f54 = _files(old)
    assert "percpu_pagelist_fraction" in f54 and "block_dump" in f54
    assert not {"compaction_proactiveness", "percpu_pagelist_high_fraction", "defrag_mode"} & set(f54)
    assert "overcommit_kbytes" in f54 and "watermark_scale_factor" in f54
    assert "overcommit_kbytes" not in sysctl.names("3.10") and "nr_pdflush_threads" in sysctl.names("3.10")
    assert "memfd_noexec" not in sysctl.names("6.1") and "page_lock_unfairness" in sysctl.names("6.1")
    with pytest.raises(MMError) as e:
        sysctl.write(old.kernel, "compaction_proactiveness", "30")
    assert e.value.errno == errno.ENOENT
    with pytest.raises(MMError):                       # 5.4: swappiness tops out at 100
        sysctl.write(old.kernel, "swappiness", "150")


def test_defaults_as_a_booted_kernel_shows_them():
    sim = procsim.boot("seed-server")
    r = lambda n: sim.render(f"sysctl/vm/{n}").decode()
    assert [r(n) for n in ("overcommit_memory", "overcommit_ratio", "dirty_ratio", "dirty_background_ratio",
                           "compaction_proactiveness", "extfrag_threshold", "page-cluster", "stat_interval",
                           "max_map_count", "numa_zonelist_order", "admin_reserve_kbytes", "user_reserve_kbytes")] == \
        ["0\n", "50\n", "20\n", "10\n", "20\n", "500\n", "3\n", "1\n", "65530\n", "Node\n", "8192\n", "131072\n"]
    assert sim.render("sysctl/vm/stat_refresh") == b""


def _meminfo(sim, key):
    return int([l for l in sim.render("meminfo").decode().splitlines() if l.startswith(key + ":")][0].split()[1])


def _vmstat(sim, key):
    return int([l for l in sim.render("vmstat").decode().splitlines() if l.startswith(key + " ")][0].split()[1])


def test_overcommit_sets_commit_limit_and_refuses_anon_commits():
    sim = procsim.boot("tiny")
    k = sim.kernel
    total_kb = _meminfo(sim, "MemTotal")
    assert _meminfo(sim, "CommitLimit") == total_kb // 4 * 50 // 100 * 4      # no swap: ratio 50
    sim.run("sysctl vm.overcommit_ratio 80")
    assert _meminfo(sim, "CommitLimit") == total_kb // 4 * 80 // 100 * 4
    sim.run("sysctl vm.overcommit_kbytes 40000")
    assert _meminfo(sim, "CommitLimit") == 40000 and sim.render("sysctl/vm/overcommit_ratio") == b"0\n"
    sim.run("sysctl vm.overcommit_memory 2")
    committed = k.vm_committed_as()
    room = 10000 - committed                              # 40000 kB = 10000 pages
    with pytest.raises(procsim.CommandError) as e:
        sim.run(f"alloc_pages 0 count={room} tag=a use=anon gfp=GFP_HIGHUSER_MOVABLE")
    assert e.value.errno == errno.ENOMEM and "__vm_enough_memory" in e.value.reply
    assert k.vm_committed_as() == committed               # nothing allocated
    sim.run(f"alloc_pages 0 count={room - 1} tag=a use=anon gfp=GFP_HIGHUSER_MOVABLE")
    assert _meminfo(sim, "Committed_AS") == (committed + room - 1) * 4
    sim.run("sysctl vm.overcommit_memory 1", "alloc_pages 0 count=100 tag=a use=anon gfp=GFP_HIGHUSER_MOVABLE")
    with pytest.raises(procsim.CommandError):
        sim.run("sysctl vm.overcommit_memory 3")


def test_dirty_limits_follow_the_ratios_and_bytes():
    sim = procsim.boot("seed-vm")
    k = sim.kernel
    avail = k.global_dirtyable_memory()
    assert _vmstat(sim, "nr_dirty_threshold") == (20 * 4096 // 100) * avail // 4096
    sim.run("sysctl vm.dirty_bytes 10000000")
    assert _vmstat(sim, "nr_dirty_threshold") == 2442                     # ceil(10^7 / 4096)
    assert sim.render("sysctl/vm/dirty_ratio") == b"0\n"
    sim.run("sysctl vm.dirty_background_bytes 20000000")                  # above the limit: half of it
    assert _vmstat(sim, "nr_dirty_background_threshold") == 1221
    sim.run("sysctl vm.dirty_ratio 40")
    assert sim.render("sysctl/vm/dirty_bytes") == b"0\n"
    avail = k.global_dirtyable_memory()
    assert _vmstat(sim, "nr_dirty_threshold") == (40 * 4096 // 100) * avail // 4096
    for bad in ("dirty_ratio 101", "dirty_bytes 8191", "dirty_background_ratio -1"):
        with pytest.raises(procsim.CommandError):
            sim.run(f"sysctl vm.{bad}")


def test_compaction_knobs_ranges_and_effect():
    sim = procsim.boot("tiny")
    k = sim.kernel
    sim.run("sysctl vm.compaction_proactiveness 0", "sysctl vm.extfrag_threshold 1000")
    assert (k.sysctl_compaction_proactiveness, k.sysctl_extfrag_threshold) == (0, 1000)
    for bad in ("compaction_proactiveness 101", "extfrag_threshold 1001", "extfrag_threshold -1"):
        with pytest.raises(procsim.CommandError) as e:
            sim.run(f"sysctl vm.{bad}")
        assert e.value.errno == errno.EINVAL
    assert k.fragmentation_score_wmark(True) == 100      # max(100 - 0, 5): proactive compaction off


def test_stat_interval_is_seconds_of_jiffies():
    sim = procsim.boot("tiny")
    sim.run("sysctl vm.stat_interval 3")
    assert sim.kernel.sysctl_stat_interval == 750 and sim.render("sysctl/vm/stat_interval") == b"3\n"
    sim.run("sleep 10")


def test_hash_is_not_a_comment_in_a_sysctl_file():
    """proc_dointvec: `5#` and `3#garbage` are EINVAL (30.txt 3c): the view parses before the
    control language could take # for a comment."""
    sim = procsim.boot("tiny")
    view = [v for v in sim.session.views if v == "sysctl/vm/swappiness"][0]
    w = sim.session.views[view].write
    for bad in (b"5#", b"3#garbage\n", b"5 #x"):
        with pytest.raises(MMError) as e:
            w(sim.kernel, bad)
        assert e.value.errno == errno.EINVAL
    assert w(sim.kernel, b"5\n") == "sysctl vm.swappiness 5"


def test_panic_on_oom_refuses_instead_of_killing():
    sim = procsim.boot("tiny")
    sim.run("sysctl vm.panic_on_oom 1")
    n = sim.kernel.managed_pages - 10                   # under RAM + swap: __vm_enough_memory lets it by
    with pytest.raises(procsim.CommandError) as e:
        sim.run(f"alloc_pages 0 count={n} tag=a use=anon gfp=GFP_HIGHUSER_MOVABLE")
    assert e.value.errno == errno.ENOMEM
    log = sim.render("kmsg").decode()
    assert "Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled" in log
    assert "Killed process" not in log


def test_oom_kill_allocating_task_kills_the_allocator():
    sim = procsim.boot("tiny")
    sim.run(f"alloc_pages 0 count={sim.kernel.managed_pages // 2} tag=big use=anon gfp=GFP_HIGHUSER_MOVABLE",
            "sysctl vm.oom_kill_allocating_task 1")
    with pytest.raises(procsim.CommandError):
        sim.run(f"alloc_pages 0 count={sim.kernel.managed_pages - 10} tag=small use=anon gfp=GFP_HIGHUSER_MOVABLE")
    log = sim.render("kmsg").decode()
    assert "Out of memory (oom_kill_allocating_task): Killed process" in log and "(small)" in log


def test_nr_hugepages_takes_pages_from_the_buddy():
    sim = procsim.boot("seed-vm")
    free = _meminfo(sim, "MemFree")
    limit = _meminfo(sim, "CommitLimit")
    sim.run("sysctl vm.nr_hugepages 100")
    assert sim.render("sysctl/vm/nr_hugepages") == b"100\n"
    assert (_meminfo(sim, "HugePages_Total"), _meminfo(sim, "HugePages_Free"), _meminfo(sim, "Hugetlb")) == \
        (100, 100, 204800)
    assert free - _meminfo(sim, "MemFree") >= 204800
    assert _meminfo(sim, "CommitLimit") == limit - 204800 // 2              # (total - hugetlb) * 50%
    assert "Node 0 HugePages_Total:   100" in sim.render("sys/devices/system/node/node0/meminfo").decode()
    sim.run("sysctl vm.nr_hugepages 0")
    assert _meminfo(sim, "HugePages_Total") == 0 and _meminfo(sim, "CommitLimit") == limit


def test_sysctl_a_through_exec_lists_the_simulated_tree(mounted):
    m = mounted("seed-vm")
    r = subprocess.run(procsim_cmd("exec", m, "--", "sysctl", "-a", "-r", "^vm\\."), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = dict(l.split(" = ", 1) for l in r.stdout.splitlines())
    assert {f"vm.{n}" for n in VM_6_18 if n not in ("drop_caches", "compact_memory", "stat_refresh",
                                                      "mmap_rnd_bits", "mmap_rnd_compat_bits")} <= set(got)
    assert (got["vm.overcommit_memory"], got["vm.dirty_ratio"], got["vm.compaction_proactiveness"],
            got["vm.extfrag_threshold"]) == ("0", "20", "20", "500")
    r = subprocess.run(procsim_cmd("exec", m, "--", "sysctl", "-w", "vm.dirty_ratio=30", "vm.extfrag_threshold=700"),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (m / "sysctl/vm/dirty_ratio").read_text() == "30\n"
    assert (m / "sysctl/vm/extfrag_threshold").read_text() == "700\n"
    with pytest.raises(OSError) as e:
        (m / "sysctl/vm/swappiness").write_text("3#garbage\n")
    assert e.value.errno == errno.EINVAL


def test_node_hugepages_directory_follows_the_pool():
    sim = procsim.boot("seed-server")
    d = "sys/devices/system/node/node{}/hugepages/hugepages-{}kB/{}"
    assert sim.render(d.format(0, 2048, "nr_hugepages")) == b"0\n"
    sim.run("sysctl vm.nr_hugepages 10")                  # node after node: 5 on each
    assert [sim.render(d.format(n, 2048, f)) for n in (0, 1) for f in ("nr_hugepages", "free_hugepages")] == \
        [b"5\n"] * 4
    assert sim.render(d.format(1, 1048576, "nr_hugepages")) == b"0\n"
    assert sim.render(d.format(1, 2048, "surplus_hugepages")) == b"0\n"
