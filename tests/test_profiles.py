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
