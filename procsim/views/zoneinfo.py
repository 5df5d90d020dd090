"""/proc/zoneinfo as mm/vmstat.c zoneinfo_show_print() prints it in 6.18.

Every zone of every node is printed, empty ones too; an empty zone stops after its
``protection:`` line.  The node's counters go under its first populated zone, so a
memoryless node shows five bare zones.
"""
from __future__ import annotations

from ..mm.vmstat import THP_ITEMS
from ..mm.layout import PAGEBLOCK_NR_PAGES
from . import View

HPAGE_PMD_NR = PAGEBLOCK_NR_PAGES          # 512: pageblock_order == HPAGE_PMD_ORDER on x86-64


def node_stat_lines(stat: dict) -> list[str]:
    """The ``per-node stats`` lines, in the order the profile's node_stat_items made the dict."""
    out = []
    for item, v in stat.items():
        if item in THP_ITEMS:
            v //= HPAGE_PMD_NR
        out.append(f"      {item:<12} {v}")
    return out


def _zone(z, node, first_populated: bool, out: list[str]):
    out.append(f"Node {z.node}, zone {z.name:>8}")
    if first_populated:
        out.append("  per-node stats")
        out.extend(node_stat_lines(node.stat))
    out.append(f"  pages free     {z.nr_free}\n"
               f"        boost    {z.boost}\n"
               f"        min      {z.wmark_min}\n"
               f"        low      {z.wmark_low}\n"
               f"        high     {z.wmark_high}\n"
               f"        promo    {z.wmark_promo}\n"
               f"        spanned  {z.spanned}\n"
               f"        present  {z.present}\n"
               f"        managed  {z.managed}\n"
               f"        cma      {z.cma}\n"
               f"        protection: ({', '.join(map(str, z.lowmem_reserve))})")
    if not z.populated:
        return
    out.append(f"      {'nr_free_pages':<12} {z.nr_free}")
    out.append(f"      {'nr_free_pages_blocks':<12} {z.nr_free_blocks}")
    stat, numa = z.stat, z.numa
    out.extend(f"      {item:<12} {v}" for item, v in stat.items())
    out.extend(f"      {item:<12} {v}" for item, v in numa.items())
    out.append("  pagesets")
    threshold = z.stat_threshold
    for cpu, p in enumerate(z.pcp):
        out.append(f"    cpu: {cpu}\n"
                   f"              count:    {p.count}\n"
                   f"              high:     {p.high}\n"
                   f"              batch:    {p.batch}\n"
                   f"              high_min: {p.high_min}\n"
                   f"              high_max: {p.high_max}\n"
                   f"  vm stats threshold: {threshold}")
    out.append(f"  node_unreclaimable:  {int(node.unreclaimable)}\n"
               f"  start_pfn:           {z.start_pfn}")


def render(k) -> bytes:
    out: list[str] = []
    for node in k.nodes:
        first = next((z for z in node.zones if z.populated), None)
        for z in node.zones:
            _zone(z, node, z is first, out)
    out.append("")
    return "\n".join(out).encode()


FILES = {"zoneinfo": View(0o444, render)}
