"""debugfs ``extfrag/unusable_index`` and ``extfrag/extfrag_index`` (mm/vmstat.c,
unusable_show_print() and extfrag_show_print()): per populated zone of each node with
memory, one value per order, thousandths printed as ``%d.%03d``.

* unusable index: the share of free memory in blocks too small for the order (0 = all usable,
  1 = none; no free memory at all counts as 1).
* fragmentation index: -1 when a block of the order is free (the allocation would succeed);
  otherwise towards 0 when a failure is lack of memory, towards 1 when it is fragmentation --
  what compaction_suitable() compares with vm.extfrag_threshold.

The arithmetic is the core's (procsim/mm/compaction.py); this only prints it.
"""
from __future__ import annotations

from ..mm.buddy import NR_PAGE_ORDERS
from ..mm.compaction import fill_contig_page_info, unusable_free_index, fragmentation_index_info
from . import View

DIR = "debug/extfrag"


def _thousandths(index: int, width: str) -> str:
    """printf("%d.%03d", index / 1000, index % 1000) with C's int division (toward zero, the
    remainder keeps the dividend's sign): -1000 -> "-1.000", and an index of -500 (one
    free block, too small, and the formula goes below 0) -> "0.-500" as the kernel prints it."""
    q = -(-index // 1000) if index < 0 else index // 1000
    return f"{q:{width}d}.{index - q * 1000:03d} "


def _render(k, index, width: str) -> bytes:
    out = []
    for node in k.nodes:
        if not node.has_memory:
            continue
        for z in node.zones:
            if not z.populated:
                continue
            values = "".join(_thousandths(index(o, fill_contig_page_info(z, o)), width) for o in range(NR_PAGE_ORDERS))
            out.append(f"Node {node.id}, zone {z.name:>8} {values}\n")
    return "".join(out).encode()


def render_unusable(k) -> bytes:
    return _render(k, unusable_free_index, "")


def render_extfrag(k) -> bytes:
    return _render(k, fragmentation_index_info, "2")


FILES = {f"{DIR}/unusable_index": View(0o444, render_unusable),
         f"{DIR}/extfrag_index": View(0o444, render_extfrag)}
