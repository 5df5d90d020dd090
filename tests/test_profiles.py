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
