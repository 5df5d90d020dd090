"""The direct map's page sizes (arch/x86/mm/init.c): how init_mem_mapping() maps the RAM
ranges, which /proc/meminfo prints as DirectMap4k/2M/1G.  Worked out once at boot from
the e820 map; views only print it.
"""
from __future__ import annotations

from .page_types import PAGE_SIZE

ISA_END = 1 << 20
PMD_SIZE, PUD_SIZE = 2 << 20, 1 << 30


def _ram_ranges(e820) -> list[tuple[int, int]]:
    """memblock.memory: the usable e820 ranges, adjacent ones merged (memblock_add merges)."""
    out: list[list[int]] = []
    for s, e, kind in sorted(e820):
        if kind != "usable":
            continue
        if out and out[-1][1] == s:
            out[-1][1] = e
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def _up(x, a): return -(-x // a) * a
def _down(x, a): return x // a * a


def _split_mem_range(start: int, end: int):
    """split_mem_range() for 64-bit: 4k head up to 2M alignment, 2M up to 1G
    alignment, 1G body, 2M and 4k tails.  Yields (start, end, page size)."""
    pos = start
    e = min(_up(pos, PMD_SIZE), end)
    if pos < e:
        yield pos, e, PAGE_SIZE
        pos = e
    s, e = _up(pos, PMD_SIZE), min(_up(pos, PUD_SIZE), _down(end, PMD_SIZE))
    if s < e:
        yield s, e, PMD_SIZE
        pos = e
    s, e = _up(pos, PUD_SIZE), _down(end, PUD_SIZE)
    if s < e:
        yield s, e, PUD_SIZE
        pos = e
    s, e = _up(pos, PMD_SIZE), _down(end, PMD_SIZE)
    if s < e:
        yield s, e, PMD_SIZE
        pos = e
    if pos < end:
        yield pos, end, PAGE_SIZE


def direct_map(e820) -> dict[int, int]:
    """Bytes of the direct map per page size.  The first MiB is mapped with 4k pages as a
    whole (init_memory_mapping(0, ISA_END_ADDRESS)); then each RAM range is split, and a
    piece whose enclosing 2M or 1G frame is all RAM is mapped with the larger page
    (adjust_range_page_size_mask()); a larger page is counted once however many pieces
    fall in it.  GB pages are assumed (X86_FEATURE_GBPAGES)."""
    ram = _ram_ranges(e820)

    def is_memory(s, e):
        return any(rs <= s and e <= re for rs, re in ram)

    sizes = {PAGE_SIZE: 0, PMD_SIZE: 0, PUD_SIZE: 0}
    big: set[tuple[int, int]] = set()              # (page size, frame start) already mapped
    pieces = [(0, ISA_END, PAGE_SIZE)] if ram else []
    for s, e in ram:
        s = max(s, ISA_END)
        if s < e:
            pieces.extend(_split_mem_range(s, e))
    for s, e, size in pieces:
        if size < PUD_SIZE and s >= ISA_END and is_memory(_down(s, PUD_SIZE), _up(e, PUD_SIZE)):
            size = PUD_SIZE
        elif size < PMD_SIZE and s >= ISA_END and is_memory(_down(s, PMD_SIZE), _up(e, PMD_SIZE)):
            size = PMD_SIZE
        if size == PAGE_SIZE:
            sizes[PAGE_SIZE] += e - s
            continue
        for frame in range(_down(s, size), e, size):
            if (size, frame) not in big:
                big.add((size, frame))
                sizes[size] += size
    return sizes
