"""CPU caches (issue 29.2): cpuN/cache/indexK from the description's ``cache:`` key, as lscpu
and hwloc read them."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

import procsim
from procsim.machine import ConfigError, load

C = "sys/devices/system/cpu"


def test_seed_server_caches_as_the_kernel_prints_them():
    """E5-2680 v3: 32K 8-way L1d/L1i, 256K 8-way L2 per core, 30M 20-way L3 per socket;
    sets = size / (ways x 64) by hand: 64, 64, 512, 24576."""
    sim = procsim.boot("seed-server")
    r = lambda p: sim.render(f"{C}/{p}").decode()
    assert [r(f"cpu0/cache/index{i}/type") for i in range(4)] == ["Data\n", "Instruction\n", "Unified\n", "Unified\n"]
    assert [r(f"cpu0/cache/index{i}/size") for i in range(4)] == ["32K\n", "32K\n", "256K\n", "30720K\n"]
    assert [r(f"cpu0/cache/index{i}/number_of_sets") for i in range(4)] == ["64\n", "64\n", "512\n", "24576\n"]
    assert [r(f"cpu0/cache/index{i}/ways_of_associativity") for i in range(4)] == ["8\n", "8\n", "8\n", "20\n"]
    assert r("cpu0/cache/index0/coherency_line_size") == "64\n"
    assert r("cpu0/cache/index0/physical_line_partition") == "1\n"
    # cpu 13 = socket 1, core 1, thread 0 (interleaved numbering: its sibling is cpu 37)
    assert r("cpu13/cache/index0/shared_cpu_list") == "13,37\n"
    assert r("cpu13/cache/index0/shared_cpu_map") == "0020,00002000\n"
    assert r("cpu13/cache/index3/shared_cpu_list") == "12-23,36-47\n"
    assert r("cpu13/cache/index3/shared_cpu_map") == "fff0,00fff000\n"
    # id: APIC id 34 (package 1 << 5 | core 1 << 1) without the sharing threads' bits
    assert r("cpu13/cache/index0/id") == "17\n" and r("cpu13/cache/index3/id") == "1\n"
    assert f"{C}/cpu0/cache/index4/type" not in sim.views()
    assert not any("/cache/" in v for v in procsim.boot("tiny").views())      # no cache: given


def test_lscpu_prints_the_caches(tmp_path):
    root = procsim.boot("seed-server").write_tree(tmp_path / "t")
    r = subprocess.run(["lscpu", "--sysroot", root, "-C"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = [l.split() for l in r.stdout.splitlines()]
    assert rows[1][:5] == ["L1d", "32K", "768K", "8", "Data"]
    assert rows[3][:5] == ["L2", "256K", "6M", "8", "Unified"]
    assert rows[4][:6] == ["L3", "30M", "60M", "20", "Unified", "3"]
    r = subprocess.run(["lscpu", "--sysroot", root], capture_output=True, text=True)
    assert "L3 cache:            60 MiB (2 instances)" in r.stdout


def test_hwloc_builds_the_topology_from_sysfs(tmp_path):
    """lstopo with the x86 (CPUID) backend off reads only the tree: 2 packages, 2 NUMA
    nodes, 24 cores and 48 PUs, an L3 per package."""
    assert shutil.which("lstopo-no-graphics")
    root = procsim.boot("seed-server").write_tree(tmp_path / "t")
    env = dict(os.environ, HWLOC_FSROOT=str(root), HWLOC_COMPONENTS="-x86")
    run = lambda *a: subprocess.run(["lstopo-no-graphics", *a], capture_output=True, text=True, env=env)
    r = run("--only", "package")
    assert (r.returncode, r.stdout, r.stderr) == (0, "Package L#0\nPackage L#1\n", "")
    assert run("--only", "numanode").stdout.count("NUMANode") == 2
    assert run("--only", "core").stdout.count("Core") == 24
    assert run("--only", "pu").stdout.count("PU") == 48
    l3 = run("--only", "l3cache").stdout
    assert l3.count("L3") == 2 and "30MB" in l3


def _yaml(tmp_path, cache: str) -> str:
    p = tmp_path / "m.yaml"
    p.write_text(f"sockets:\n  - cores: 2\n    cache:\n{cache}dimms:\n  - {{socket: 0, size: 1GiB}}\n")
    return str(p)


def test_cache_key_is_validated_with_file_and_line(tmp_path):
    ok = load(_yaml(tmp_path, "      - {level: 3, type: Unified, size: 8M, ways: 16}\n"
                              "      - {level: 1, type: Instruction, size: 32K, ways: 8}\n"
                              "      - {level: 1, type: Data, size: 48K, ways: 12}\n"))
    assert [(c.level, c.type, c.shared) for c in ok.sockets[0].cache] == \
        [(1, "Data", "core"), (1, "Instruction", "core"), (3, "Unified", "socket")]     # index order
    for bad, msg in (("      - {level: 1, type: Data, size: 32K}\n", "needs 'ways'"),
                     ("      - {level: 5, type: Data, size: 32K, ways: 8}\n", "at most 4"),
                     ("      - {level: 1, type: Data, size: 32K, ways: 8, line_size: 48}\n", "power of two"),
                     ("      - {level: 1, type: Data, size: 32K, ways: 8, shared: node}\n", "one of core, socket")):
        with pytest.raises(ConfigError) as e:
            load(_yaml(tmp_path, bad))
        assert e.value.line == 4 and msg in str(e.value), str(e.value)
