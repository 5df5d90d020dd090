"""meminfo's Percpu from the embedded first chunk's units (mm/percpu.c), checked against the
oracle's real Debian 6.1 guests: their dmesg "percpu: Embedded 62 pages/cpu s217088 r8192
d28672 uNNN" line gives the unit size pcpu_build_alloc_info() chose, and their meminfo Percpu
is 65 pages per unit: the first chunk's 62 plus 3 a later chunk populated, which procsim
takes from the boot workload's `use: percpu` pages (what `procsim clone` writes)."""
import re
from pathlib import Path

import pytest

from procsim import machine as M
from procsim.mm import percpu
from procsim.mm.kernel import Kernel
from procsim.views import meminfo

ROOT = Path(__file__).parent.parent
ORACLE = ("one-node", "two-node", "three-node", "four-node", "straddle", "movable-low", "movable-high")


@pytest.mark.parametrize("name", ORACLE)
def test_first_chunk_units_as_the_real_guests(name):
    real = (ROOT / "tests/data/oracle" / f"{name}.txt").read_text()
    unit = int(re.search(r"percpu: Embedded 62 pages/cpu s217088 r8192 d28672 u(\d+)", real)[1])
    k = Kernel(M.load(ROOT / "oracle/machines" / f"{name}.yaml"), boot=False, slab=False)
    groups: dict[int, int] = {}
    for nid in k.cpu_node:
        groups[nid] = groups.get(nid, 0) + 1
    size, units = percpu.pcpu_build_alloc_info(217088, 8192, 28672, [groups[n] for n in sorted(groups)])
    assert size == unit
    ours = int(re.search(r"^Percpu:\s+(\d+) kB", meminfo.render(k).decode(), re.M)[1])
    assert ours == 62 * 4 * units
    assert ours + 3 * 4 * units == int(re.search(r"^Percpu:\s+(\d+) kB", real, re.M)[1])


def test_alloc_info_by_hand():
    """3 CPUs on one node, 62-page units, 2 MiB allocations: upa 8 wastes 5 units (more than
    3 // 3 = 1), upa 4 wastes 1: one allocation of four 512 KiB units; upa 2 needs two."""
    assert percpu.pcpu_build_alloc_info(217088, 8192, 28672, [3]) == (512 << 10, 4)
    assert percpu.pcpu_build_alloc_info(217088, 8192, 28672, [1, 1, 1]) == (2 << 20, 3)


def test_profile_without_a_first_chunk_size_counts_boot_pages_only():
    k = Kernel(M.loads('kernel: "5.4"\nsockets: [{cores: 2}]\ndimms: [{socket: 0, size: 1GiB}]\n'), boot=False, slab=False)
    assert percpu.first_chunk_pages(k) == 0
