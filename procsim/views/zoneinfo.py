"""/proc/zoneinfo as mm/vmstat.c zoneinfo_show_print() prints it (6.18; 6.1 and 5.4 by the
machine's ``kernel:``, procsim/mm/versions.py).

Every zone of every node is printed, empty ones too; an empty zone stops after its
``protection:`` line.  The node's counters go under its first populated zone, so a
memoryless node shows five bare zones.
"""
from __future__ import annotations

from ..mm.buddy import ZONE_STAT_ITEMS, NUMA_STAT_ITEMS
from ..mm.kernel import NODE_STAT_ITEMS
from ..mm.layout import PAGEBLOCK_NR_PAGES
from ..mm.versions import LINUX_6_18, rules
from . import View

HPAGE_PMD_NR = PAGEBLOCK_NR_PAGES          # 512: pageblock_order == HPAGE_PMD_ORDER on x86-64
# vmstat_item_print_in_thp(): stored in pages, printed in huge pages
THP_ITEMS = frozenset(("nr_anon_transparent_hugepages", "nr_shmem_hugepages", "nr_shmem_pmdmapped",
                       "nr_file_hugepages", "nr_file_pmdmapped"))
MAX_RECLAIM_RETRIES = 16


def node_stat_lines(stat: dict, r=LINUX_6_18) -> list[str]:
    """The ``per-node stats`` lines (also what vmstat's node block is made of)."""
    out = []
    for item in r.node_stat_items or NODE_STAT_ITEMS:
        v = r.stat(stat, item)
        if item in THP_ITEMS:
            v //= HPAGE_PMD_NR
        out.append(f"      {item:<12} {v}")
    return out


def pcp_high(z, p, r) -> int:
    """The pageset's ``high`` of this version: 5.4 pageset_set_batch() sets 6 * batch (before
    batch is clamped to 1); 6.1 zone_highsize() gives what 6.18 calls high_min."""
    if r.pcp == "6*batch":
        b = max(min(z.managed >> 10, 256) // 4, 1)
        return 6 * ((1 << ((b + b // 2).bit_length() - 1)) - 1)
    return p.high_min if r.pcp == "zone_highsize" else p.high


def _zone(z, node, first_populated: bool, out: list[str], r=LINUX_6_18):
    out.append(f"Node {z.node}, zone {z.name:>8}")
    if first_populated:
        out.append("  per-node stats")
        out.extend(node_stat_lines(node.stat, r))
    marks = {"boost": z.boost, "min": z.wmark_min, "low": z.wmark_low, "high": z.wmark_high,
             "promo": z.wmark_promo}
    out.append(f"  pages free     {z.nr_free}")
    out.extend(f"        {w:<8} {marks[w]}" for w in r.wmark_lines)
    out.append(f"        spanned  {z.spanned}\n"
               f"        present  {z.present}\n"
               f"        managed  {z.managed}")
    if r.zoneinfo_cma:
        out.append(f"        cma      {z.cma}")
    out.append(f"        protection: ({', '.join(map(str, z.lowmem_reserve))})")
    if not z.populated:
        return
    out.append(f"      {'nr_free_pages':<12} {z.nr_free}")
    if r.free_pages_blocks:
        out.append(f"      {'nr_free_pages_blocks':<12} {z.nr_free_blocks}")
    stat, numa = z.stat, z.numa
    out.extend(f"      {item:<12} {r.stat(stat, item)}" for item in r.zone_stat_items or ZONE_STAT_ITEMS)
    out.extend(f"      {item:<12} {numa[item]}" for item in r.numa_stat_items or NUMA_STAT_ITEMS)
    out.append("  pagesets")
    threshold = z.stat_threshold
    for cpu, p in enumerate(z.pcp):
        if r.pcp == "6.18":
            out.append(f"    cpu: {cpu}\n"
                       f"              count:    {p.count}\n"
                       f"              high:     {p.high}\n"
                       f"              batch:    {p.batch}\n"
                       f"              high_min: {p.high_min}\n"
                       f"              high_max: {p.high_max}\n"
                       f"  vm stats threshold: {threshold}")
        else:
            out.append(f"    cpu: {cpu}\n"
                       f"              count: {p.count}\n"
                       f"              high:  {pcp_high(z, p, r)}\n"
                       f"              batch: {p.batch}\n"
                       f"  vm stats threshold: {threshold}")
    unreclaimable = int(getattr(node, "kswapd_failures", 0) >= MAX_RECLAIM_RETRIES)
    out.append(f"  node_unreclaimable:  {unreclaimable}\n"
               f"  start_pfn:           {z.start_pfn}")


def render(k) -> bytes:
    r = rules(k)
    out: list[str] = []
    for node in k.nodes:
        first = next((z for z in node.zones if z.populated), None)
        for z in node.zones:
            _zone(z, node, z is first, out, r)
    out.append("")
    return "\n".join(out).encode()


FILES = {"zoneinfo": View(0o444, render)}
