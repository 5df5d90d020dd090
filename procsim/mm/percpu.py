"""The percpu allocator's first chunk (mm/percpu.c): its units, for meminfo's Percpu.

Percpu is pcpu_nr_pages(): populated pages times pcpu_nr_units.  x86-64 embeds the first
chunk (setup_per_cpu_areas -> pcpu_embed_first_chunk, atom PMD_SIZE): each unit holds the
kernel's static percpu section, the reserved area and the dynamic area (the profile's
``pcpu_first_chunk``: dmesg's "percpu: Embedded 62 pages/cpu s217088 r8192 d28672" on
Debian 6.1), all populated, in memory memblock took before the buddy allocator existed
(the fitted kernel image holds it here: no buddy page is taken).  pcpu_build_alloc_info()
groups the possible CPUs by node and rounds each group up to the units per allocation it
picks, so a unit may have no CPU and still count.  What later percpu allocations populate in
new chunks comes from the buddy allocator: the boot workload's ``use: percpu`` pages, added
to the first chunk's pages in Percpu.
"""
from __future__ import annotations

from .page_types import PAGE_SIZE

PMD_SIZE = 2 << 20                          # pcpu_embed_first_chunk's atom_size on x86-64
PCPU_MIN_UNIT_SIZE = 32 << 10
PERCPU_DYNAMIC_EARLY_SIZE = 20 << 10


def _pfn_align(x: int) -> int:
    return -(-x // PAGE_SIZE) * PAGE_SIZE


def pcpu_build_alloc_info(static: int, reserved: int, dyn: int, group_cnt: list[int]) -> tuple[int, int]:
    """(unit_size, nr_units): the units per allocation (upa) that wastes at most a third of
    the possible CPUs' count in empty units and needs the fewest allocations, the largest
    such upa; every group (node) gets its CPU count rounded up to upa units."""
    size_sum = _pfn_align(static + reserved + max(dyn, PERCPU_DYNAMIC_EARLY_SIZE))
    min_unit_size = max(size_sum, PCPU_MIN_UNIT_SIZE)
    alloc_size = -(-min_unit_size // PMD_SIZE) * PMD_SIZE
    max_upa = alloc_size // min_unit_size
    while alloc_size % max_upa or (alloc_size // max_upa) % PAGE_SIZE:
        max_upa -= 1
    ncpus = sum(group_cnt)
    last_allocs, best_upa = 1 << 30, 0
    for upa in range(max_upa, 0, -1):
        if alloc_size % upa or (alloc_size // upa) % PAGE_SIZE:
            continue
        allocs = sum(-(-c // upa) for c in group_cnt)
        wasted = sum(-(-c // upa) * upa - c for c in group_cnt)
        if wasted > ncpus // 3:
            continue
        if allocs > last_allocs:
            break
        last_allocs, best_upa = allocs, upa
    return alloc_size // best_upa, sum(-(-c // best_upa) * best_upa for c in group_cnt)


def first_chunk_pages(k) -> int:
    """The first chunk's populated pages over all its units (0 when the profile does not
    say its size)."""
    fc = k.profile.pcpu_first_chunk
    if fc is None:
        return 0
    groups: dict[int, int] = {}
    for nid in k.cpu_node[:k.nr_cpu_ids]:
        groups[nid] = groups.get(nid, 0) + 1
    _, nr_units = pcpu_build_alloc_info(*fc, [groups[n] for n in sorted(groups)])
    return _pfn_align(sum(fc)) // PAGE_SIZE * nr_units
