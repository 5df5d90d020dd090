"""/proc/zoneinfo as mm/vmstat.c zoneinfo_show_print() prints it in 6.18 (6.1, 5.4 and 3.10 by
k.profile: which lines, which counters, which pageset fields).

Every zone of every node is printed, empty ones too; an empty zone stops after its
``protection:`` line.  The node's counters go under its first populated zone, so a
memoryless node shows five bare zones.
"""
from __future__ import annotations

from ..mm.vmstat import THP_ITEMS
from ..mm.layout import PAGEBLOCK_NR_PAGES
from ..mm.profile import LINUX_6_18
from . import View

HPAGE_PMD_NR = PAGEBLOCK_NR_PAGES          # 512: pageblock_order == HPAGE_PMD_ORDER on x86-64


def node_stat_lines(stat: dict, p=LINUX_6_18) -> list[str]:
    """The ``per-node stats`` lines (also what vmstat's node block is made of), in the
    profile's order."""
    out = []
    for item in p.node_stat_items:
        v = p.stat(stat, item)
        if item in THP_ITEMS:
            v //= HPAGE_PMD_NR
        out.append(f"      {item:<12} {v}")
    return out


def _zone(z, node, first_populated: bool, out: list[str], p=LINUX_6_18):
    out.append(f"Node {z.node}, zone {z.name:>8}")
    if first_populated:
        out.append("  per-node stats")
        out.extend(node_stat_lines(node.stat, p))
    marks = {"boost": z.boost, "min": z.wmark_min, "low": z.wmark_low, "high": z.wmark_high,
             "promo": z.wmark_promo}
    out.append(f"  pages free     {z.nr_free}")
    out.extend(f"        {w:<8} {marks[w]}" for w in p.wmark_lines)
    out.append(f"        spanned  {z.spanned}\n"
               f"        present  {z.present}\n"
               f"        managed  {z.managed}")
    if p.zoneinfo_cma:
        out.append(f"        cma      {z.cma}")
    out.append(f"        protection: ({', '.join(map(str, z.lowmem_reserve))})")
    if not z.populated:
        return
    out.append(f"      {'nr_free_pages':<12} {z.nr_free}")
    if p.free_pages_blocks:
        out.append(f"      {'nr_free_pages_blocks':<12} {z.nr_free_blocks}")
    out.extend(f"      {item:<12} {p.stat(z.stat, item)}" for item in p.zone_stat_items)
    out.extend(f"      {item:<12} {z.numa[item]}" for item in p.numa_stat_items)
    out.append("  pagesets")
    threshold = z.stat_threshold
    for cpu, pcp in enumerate(z.pcp):
        if p.pcp == "6.18":
            out.append(f"    cpu: {cpu}\n"
                       f"              count:    {pcp.count}\n"
                       f"              high:     {pcp.high}\n"
                       f"              batch:    {pcp.batch}\n"
                       f"              high_min: {pcp.high_min}\n"
                       f"              high_max: {pcp.high_max}\n"
                       f"  vm stats threshold: {threshold}")
        else:
            out.append(f"    cpu: {cpu}\n"
                       f"              count: {pcp.count}\n"
                       f"              high:  {pcp.high}\n"
                       f"              batch: {pcp.batch}\n"
                       f"  vm stats threshold: {threshold}")
    out.append(f"  node_unreclaimable:  {int(node.unreclaimable)}\n"
               f"  start_pfn:           {z.start_pfn}")


def render(k) -> bytes:
    out: list[str] = []
    for node in k.nodes:
        first = next((z for z in node.zones if z.populated), None)
        for z in node.zones:
            _zone(z, node, z is first, out, k.profile)
    out.append("")
    return "\n".join(out).encode()


FILES = {"zoneinfo": View(0o444, render)}
