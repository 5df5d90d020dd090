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
