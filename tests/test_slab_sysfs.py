"""sys/kernel/slab/<cache>/: SLUB's attributes, and the kernel's own slabinfo tool reading them.

The scenario is worked out by hand from mm/slub.c (6.18): dma-kmalloc-256 is empty after boot;
192 objects of 256 bytes fill 12 order-0 slabs of 16; freeing every other run of 8 leaves
each slab half full.  Slabs 1-11 were full, so each free puts it on cpu 0's partial list;
cpu_partial is 52 objects for 256..1023-byte objects, i.e. DIV_ROUND_UP(52 * 2, 16) = 7
slabs, so the 8th slab's free moves the 7 listed ones to the node partial list
(put_cpu_partial) and slabs 8-11 stay on the cpu list; slab 12 is the cpu slab.
So: 12 slabs, 7 node partial (56 objects in use on them), cpu_slabs 1 + 4, objects
192 - 7*8 = 136 (free objects of cpu-owned slabs count as in use), slabs_cpu_partial
4 * 16 / 2 = 32 objects (the kernel's half-full estimate).
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from procsim.testing import CONFIGS, procsim_cmd
from procsim.machine import load
from procsim.session import Session

ROOT = Path(__file__).resolve().parent.parent

CACHE = "dma-kmalloc-256"
SCRIPT = ["kmalloc 256 gfp=GFP_DMA count=8 tag=a\nkmalloc 256 gfp=GFP_DMA count=8 tag=b"] * 12 + ["kfree tag=b"]
EXPECTED = {"slabs": "12 N0=12\n", "partial": "7 N0=7\n", "cpu_slabs": "5 N0=5\n",
            "objects": "136 N0=136\n", "objects_partial": "56 N0=56\n", "total_objects": "192 N0=192\n",
            "slabs_cpu_partial": "32(4) C0=32(4)\n", "objs_per_slab": "16\n", "order": "0\n",
            "slab_size": "256\n", "object_size": "256\n", "align": "256\n", "cache_dma": "1\n",
            "aliases": "0\n", "min_partial": "5\n", "cpu_partial": "52\n", "ctor": "", "sanity_checks": "0\n"}


def run_script(s: Session):
    for r in s.execute_text("\n".join(SCRIPT)):
        assert not r.errno, r.text


def test_attributes_in_the_kernels_formats():
    s = Session(load(CONFIGS / "seed-vm.yaml"))
    d = f"sys/kernel/slab/{CACHE}"
    assert s.render(f"{d}/slabs") == b"0\n" and s.render(f"{d}/cpu_slabs") == b"0\n"   # no N0= for 0
    run_script(s)
    got = {a: s.render(f"{d}/{a}").decode() for a in EXPECTED}
    assert got == EXPECTED
    assert s.mode(f"{d}/objects") == 0o400 and s.mode(f"{d}/min_partial") == 0o600
    assert s.render("sys/kernel/slab/dentry/reclaim_account") == b"1\n"
    assert s.render("sys/kernel/slab/kmalloc-64/usersize") == b"64\n"


def test_directories_follow_kmem_cache_create_and_destroy():
    s = Session(load(CONFIGS / "tiny.yaml"))
    assert "sys/kernel/slab/my_obj/objects" not in s.paths()
    run = s.execute_text("kmem_cache_create my_obj 200 flags=SLAB_HWCACHE_ALIGN\nkmem_cache_alloc my_obj count=5 tag=o")
    assert not any(r.errno for r in run)
    # one order-0 slab of 4096 / 256 = 16 objects (16 >= min_objects 4 * (fls(2 cpus) + 1) = 12);
    # it is the cpu slab, so its 11 free objects count as in use
    assert s.render("sys/kernel/slab/my_obj/objects") == b"16 N0=16\n"
    assert s.render("sys/kernel/slab/my_obj/objs_per_slab") == b"16\n"
    assert s.render("sys/kernel/slab/my_obj/hwcache_align") == b"1\n"
    assert s.render("sys/kernel/slab/my_obj/object_size") == b"200\n"
    assert s.render("sys/kernel/slab/my_obj/slab_size") == b"256\n"          # 200 rounded to a cache line multiple
    run = s.execute_text("kmem_cache_free my_obj tag=o\nkmem_cache_destroy my_obj")
    assert not any(r.errno for r in run)
    assert not any(p.startswith("sys/kernel/slab/my_obj/") for p in s.paths())


def test_per_node_suffixes_on_a_numa_machine():
    """seed-server has two nodes: boot objects are spread over both, each reported as N<node>=."""
    s = Session(load(CONFIGS / "seed-server.yaml"))
    line = s.render("sys/kernel/slab/dentry/total_objects").decode()
    m = re.fullmatch(r"(\d+) N0=(\d+) N1=(\d+)\n", line)
    assert m, line
    assert int(m[1]) == int(m[2]) + int(m[3])


def _slabinfo() -> str:
    tool = ROOT / "build" / "slabinfo"
    if not tool.exists():                       # make test builds it in setup; a bare pytest here
        subprocess.run(["make", "-s", "build/slabinfo"], cwd=ROOT, check=True)
    return str(tool)


def test_kernel_slabinfo_tool_reads_the_simulated_caches(mounted):
    tool = _slabinfo()
    mp = mounted("seed-vm")
    with open(mp / "control", "w") as f:
        f.write("\n".join(SCRIPT) + "\nkmem_cache_create my_obj 200\nkmem_cache_alloc my_obj count=3\n")
    assert "my_obj" in os.listdir(mp / "sys/kernel/slab")
    env = dict(os.environ, COLUMNS="200")

    def slabinfo(*args):
        r = subprocess.run(procsim_cmd("exec", mp, "--", tool, *args), capture_output=True, text=True,
                           timeout=120, env=env)
        assert r.returncode == 0, r.stderr
        return r.stdout

    listing = slabinfo()
    line = next(ln for ln in listing.splitlines() if ln.startswith(CACHE + " "))
    name, objects, objsize, space, spc, ops, order, fr, ef, *flags = line.split()
    assert (objects, objsize, ops, order) == ("136", "256", "16", "0")
    assert spc == "7/7/5"                       # slabinfo prints slabs - cpu_slabs (12 - 5), partial, cpu
    assert fr == str(7 * 100 // 12)             # %Fr: partial slabs of all slabs
    assert flags == ["d"]                       # SLAB_CACHE_DMA
    assert "dentry " in listing and "kmalloc-64 " in listing
    # a cache made after mounting: its one slab is the cpu slab, so all its objects read as in use
    mine = next(ln.split() for ln in listing.splitlines() if ln.startswith("my_obj "))
    assert mine[2] == "200" and mine[1] == mine[5] and mine[4] == "0/0/1"   # slabinfo: slabs - cpu slabs
    report = slabinfo("-r", CACHE)
    assert re.search(r"Total\s*:\s*12\b", report) and re.search(r"Partial:\s*7\b", report)
    assert re.search(r"CpuSlab:\s*5\b", report) and re.search(r"Objects: 136\b", report)
