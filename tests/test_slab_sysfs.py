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

from conftest import CONFIGS, ROOT, procsim_cmd
from procsim.machine import load
from procsim.session import Session

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
        f.write("\n".join(SCRIPT) + "\n")
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
    assert spc.split("/")[1:] == ["7", "5"]      # Slabs/Part/Cpu: 7 partial, 5 cpu slabs
    assert fr == str(7 * 100 // 12)             # %Fr: partial slabs of all slabs
    assert flags == ["d"]                       # SLAB_CACHE_DMA
    assert "dentry " in listing and "kmalloc-64 " in listing
    report = slabinfo("-r", CACHE)
    assert re.search(r"Total\s*:\s*12\b", report) and re.search(r"Partial:\s*7\b", report)
    assert re.search(r"CpuSlab:\s*5\b", report) and re.search(r"Objects: 136\b", report)
