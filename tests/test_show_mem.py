"""show_mem / warn_alloc: the kernel's report, every number checked against the /proc views
(buddyinfo, pagetypeinfo, zoneinfo, meminfo) it must agree with, and the real dmesg."""
import errno
import os
import re
import subprocess

import pytest

from procsim.testing import boot, procsim_cmd
from procsim.mm import gfp as G
from procsim.mm import printk, show_mem
from procsim.mm.errors import MMError
from procsim.views import buddyinfo, pagetypeinfo, zoneinfo


@pytest.fixture
def tiny():
    return boot("tiny")


def _buddyinfo(k) -> dict:
    out = {}
    for line in buddyinfo.render(k).decode().splitlines():
        m = re.match(r"Node (\d+), zone +(\w+) +(.*)", line)
        out[(int(m[1]), m[2])] = [int(x) for x in m[3].split()]
    return out


def _types(k) -> dict:
    """(node, zone, order) -> the letters of the migratetypes with free blocks, from pagetypeinfo."""
    out = {}
    for line in pagetypeinfo.render(k).decode().splitlines():
        m = re.match(r"Node +(\d+), zone +(\w+), type +(\w+) +(.*)", line)
        if m:
            letter = {"Unmovable": "U", "Movable": "M", "Reclaimable": "E", "HighAtomic": "H", "Isolate": "I"}[m[3]]
            for order, n in enumerate(m[4].split()):
                if int(n):
                    out.setdefault((int(m[1]), m[2], order), "")
                    out[(int(m[1]), m[2], order)] += letter
    return out


def test_free_area_lines_follow_buddyinfo_and_pagetypeinfo(tiny):
    k = tiny
    for _ in range(3):                                     # some mixed state
        k.alloc_pages(0, G.GFP_KERNEL | G.__GFP_RECLAIMABLE)
        k.alloc_pages(2, G.GFP_KERNEL)
    lines = show_mem.show_mem_lines(k)
    types = _types(k)
    for (nid, zone), counts in _buddyinfo(k).items():
        want = ""
        for order, nr in enumerate(counts):
            want += f"{nr}*{4 << order}kB "
            if nr:
                want += f"({types[(nid, zone, order)]}) "
        want += f"= {sum(nr * (4 << o) for o, nr in enumerate(counts))}kB"
        assert f"Node {nid} {zone}: {want}" in lines


def test_zone_lines_follow_zoneinfo(tiny):
    k = tiny
    text = zoneinfo.render(k).decode()
    lines = show_mem.show_mem_lines(k)
    for block in text.split("Node ")[1:]:
        name = re.match(r"(\d+), zone +(\w+)", block)
        val = {key: int(v) for key, v in re.findall(r"^\s+(free|min|low|high|present|managed|boost)\s+(\d+)$",
                                                    block.replace("pages free", "free"), re.M)}
        if not val.get("present"):
            continue                                        # not populated: not shown
        head = (f"Node {name[1]} {name[2]} free:{val['free'] * 4}kB boost:{val['boost'] * 4}kB "
                f"min:{val['min'] * 4}kB low:{val['low'] * 4}kB high:{val['high'] * 4}kB reserved_highatomic:0KB ")
        zl = [line for line in lines if line.startswith(head)]
        assert len(zl) == 1, head
        assert f" present:{val['present'] * 4}kB managed:{val['managed'] * 4}kB " in zl[0]
        prot = re.search(r"protection: \((.*)\)", block)[1].replace(",", "")
        assert lines[lines.index(zl[0]) + 1] == f"lowmem_reserve[]: {prot}"


def test_totals(tiny):
    k = tiny
    lines = show_mem.show_mem_lines(k)
    present = [int(x) for x in re.findall(r"present +(\d+)", zoneinfo.render(k).decode())]
    managed = [int(x) for x in re.findall(r"managed +(\d+)", zoneinfo.render(k).decode())]
    assert lines[0] == "Mem-Info:"
    # no "pages cma reserved" / "pages hwpoisoned": the 6.18 reference's meminfo shows neither
    # CONFIG_CMA (CmaTotal) nor CONFIG_MEMORY_FAILURE (HardwareCorrupted)
    assert lines[-3:] == [f"{sum(present)} pages RAM", "0 pages HighMem/MovableOnly",
                          f"{sum(present) - sum(managed)} pages reserved"]
    assert lines[-7:-3] == [f"{k.node_stat_total('nr_file_pages')} total pagecache pages",
                            "0 pages in swap cache", "Free swap  = 0kB", "Total swap = 0kB"]
    first = lines[1].split("\n")
    assert first[0].startswith("active_anon:") and first[-1].startswith(" free:")
    assert len(first) == 8


def test_warn_alloc_header_nowarn_and_ratelimit(tiny):
    k = tiny
    assert show_mem.warn_alloc(k, G.GFP_KERNEL | G.__GFP_NOWARN, 3) is False
    assert not printk.ring(k).records
    assert show_mem.warn_alloc(k, G.GFP_HIGHUSER_MOVABLE | G.__GFP_COMP, 3, comm="a-very-long-command-name")
    recs = list(printk.ring(k).records)
    assert recs[0].text == ("a-very-long-com: page allocation failure: order:3, "
                            "mode:0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), nodemask=(null),cpuset=/,mems_allowed=0")
    assert recs[0].level == printk.KERN_WARNING
    assert [r.text for r in recs[1:]] == show_mem.show_mem_lines(k)
    for _ in range(9):                                      # the burst is 10 per 5 s
        assert show_mem.warn_alloc(k, G.GFP_KERNEL, 0)
    n = len(printk.ring(k).records)
    assert not show_mem.warn_alloc(k, G.GFP_KERNEL, 0)
    assert not show_mem.warn_alloc(k, G.GFP_KERNEL, 0)
    assert len(printk.ring(k).records) == n
    k.sleep(5 * 10**9 + 1)                                  # the simulated clock: a new interval
    assert show_mem.warn_alloc(k, G.GFP_KERNEL, 0)
    assert printk.ring(k).records[n].text == "warn_alloc: 2 callbacks suppressed"


def test_gfp_zone_limits_the_zones_shown(tiny):
    lines = show_mem.show_mem_lines(tiny, max_zone_idx=G.gfp_zone(G.GFP_DMA))
    assert any(line.startswith("Node 0 DMA: ") for line in lines)
    assert not any("DMA32" in line for line in lines)


def test_failed_allocation_shows_in_the_real_dmesg(mounted):
    m = mounted("tiny")
    fd = os.open(m / "control", os.O_WRONLY)
    try:
        with pytest.raises(OSError) as e:      # tiny's DMA zone has fewer than 8 order-10 blocks
            os.write(fd, b"alloc_pages 10 gfp=GFP_DMA count=8\n")
        assert e.value.errno == errno.ENOMEM
    finally:
        os.close(fd)
    r = subprocess.run(procsim_cmd("exec", m, "--", "dmesg"), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    # the live mount's clock follows the wall: the record is stamped when the write ran
    ts = re.match(r"\[ +(\d+\.\d{6})\] ", out[0])[0]
    assert 60 <= float(ts.strip("[] ")) < 600
    assert out[0] == (ts + "procsim: page allocation failure: order:10, mode:0x1(GFP_DMA), "
                      "nodemask=(null),cpuset=/,mems_allowed=0")
    assert out[1] == ts + "Mem-Info:"
    assert out[2].startswith(ts + "active_anon:")
    assert out[3].startswith("                active_file:")         # one record, continued lines
    assert any(re.fullmatch(re.escape(ts) + r"Node 0 DMA: (\d+\*\d+kB (\(\w+\) )?)+= \d+kB", x) for x in out)
    assert re.fullmatch(re.escape(ts) + r"\d+ pages reserved", out[-1])


def _zoneinfo_numbers(k, zone) -> dict:
    block = zoneinfo.render(k).decode().split(f"Node 0, zone {zone:>8}")[1].split("Node ")[0]
    val = dict(re.findall(r"^\s+(free|min)\s+(\d+)$", block.replace("pages free", "free"), re.M))
    val["protection"] = [int(x) for x in re.search(r"protection: \((.*)\)", block)[1].split(", ")]
    return {k_: v if k_ == "protection" else int(v) for k_, v in val.items()}


def test_enomem_says_fragmentation(tiny):
    k = tiny
    with pytest.raises(MMError) as e:
        for _ in range(10):
            k.alloc_pages(10, G.GFP_DMA)
    dma = _zoneinfo_numbers(k, "DMA")
    largest = max(o for o, n in enumerate(_buddyinfo(k)[(0, "DMA")]) if n)
    assert largest < 10 and dma["free"] > dma["min"]
    assert e.value.errno == errno.ENOMEM
    assert str(e.value.message) == (
        f"alloc_pages(order=10, __GFP_DMA, node=0) failed: DMA {dma['free']} free pages above min {dma['min']} "
        f"+ lowmem_reserve 0, but the largest free block is order {largest} (fragmentation)")


def test_enomem_says_watermark_with_the_reserve(tiny):
    k = tiny
    with pytest.raises(MMError) as e:
        while True:
            k.alloc_pages(0, G.GFP_KERNEL)
    dma32, dma = _zoneinfo_numbers(k, "DMA32"), _zoneinfo_numbers(k, "DMA")
    assert e.value.message == (
        f"alloc_pages(order=0, GFP_KERNEL, node=0) failed: "
        f"DMA32 {dma32['free']} free pages, not above min {dma32['min']} + lowmem_reserve 0 (watermark); "
        f"DMA {dma['free']} free pages, not above min {dma['min']} + lowmem_reserve {dma['protection'][1]} "
        f"(watermark)")
    assert dma["free"] <= dma["min"] + dma["protection"][1] and dma32["free"] <= dma32["min"]
