"""/proc/buddyinfo: free blocks per order of every populated zone (mm/vmstat.c frag_show_print()).

Each value is free_area[order].nr_free over all migratetypes; each line ends in a space.
"""
from __future__ import annotations

from ..mm.buddy import NR_PAGE_ORDERS
from . import View


def render(k) -> bytes:
    out = []
    for node in k.nodes:
        for z in node.zones:
            if not z.populated:
                continue
            counts = "".join(f"{z.nr_free_order(o):6d} " for o in range(NR_PAGE_ORDERS))
            out.append(f"Node {node.id}, zone {z.name:>8} {counts}\n")
    return "".join(out).encode()


FILES = {"buddyinfo": View(0o444, render)}
