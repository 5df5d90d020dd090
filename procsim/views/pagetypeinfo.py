"""/proc/pagetypeinfo (mm/vmstat.c pagetypeinfo_show()), mode 0400 as in the kernel.

Printed once per node that has memory: the free_list lengths per migratetype and order of
every populated zone (each count capped at 100000, shown as ``>100000``, because the kernel
stops walking a list there), then the pageblocks of each migratetype.
"""
from __future__ import annotations

from ..mm.buddy import MIGRATETYPE_NAMES, NR_PAGE_ORDERS
from ..mm.layout import PAGEBLOCK_ORDER, PAGEBLOCK_NR_PAGES
from . import View

FREECOUNT_CAP = 100000
_ORDERS = range(NR_PAGE_ORDERS)
_HEADER = f"{'Free pages count per migrate type at order':<43} " + "".join(f"{o:6d} " for o in _ORDERS) + "\n"
_BLOCK_HEADER = f"\n{'Number of blocks type ':<23}" + "".join(f"{n:>12} " for n in MIGRATETYPE_NAMES) + "\n"


def _count(n: int) -> str:
    return f">{FREECOUNT_CAP:6d} " if n >= FREECOUNT_CAP else f"{n:6d} "


def render(k) -> bytes:
    out = []
    for node in k.nodes:
        if not any(z.present for z in node.zones):     # node_state(N_MEMORY)
            continue
        zones = [z for z in node.zones if z.populated]
        out.append(f"Page block order: {PAGEBLOCK_ORDER}\nPages per block:  {PAGEBLOCK_NR_PAGES}\n\n")
        out.append(_HEADER)
        for z in zones:
            for mt, name in enumerate(MIGRATETYPE_NAMES):
                counts = "".join(_count(z.free_count(o, mt)) for o in _ORDERS)
                out.append(f"Node {node.id:4d}, zone {z.name:>8}, type {name:>12} {counts}\n")
        out.append(_BLOCK_HEADER)
        for z in zones:
            counts = "".join(f"{n:12d} " for n in z.pageblock_counts())
            out.append(f"Node {node.id}, zone {z.name:>8} {counts}\n")
    return "".join(out).encode()


FILES = {"pagetypeinfo": View(0o400, render)}
