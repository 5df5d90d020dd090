"""/proc/vmstat as mm/vmstat.c vmstat_show() prints it in 6.18 (older versions: k.profile): zone counters summed over
all zones, NUMA events, node counters, the dirty thresholds, the memmap counters, then
the event counters, and the fake ``nr_unstable 0`` that 5.8+ appends for old tools.

Counters the model does not drive print 0; the names and their order are the kernel's
(vmstat_text[] for the reference host's configuration).
"""
from __future__ import annotations

from ..mm.vmstat import THP_ITEMS, NODE_STAT_ITEMS, ZONE_STAT_ITEMS
from .zoneinfo import HPAGE_PMD_NR
from . import View

# an older version's zone counter that procsim keeps per node (5.4's nr_page_table_pages,
# nr_kernel_stack): the global total is the same either way
_PER_NODE = frozenset(NODE_STAT_ITEMS) - frozenset(ZONE_STAT_ITEMS)


def _counter(k, item: str) -> int:
    """The global value of a counter by an older version's name, wherever procsim keeps it:
    the zones, the NUMA events, else the nodes (THP counters in huge pages)."""
    p = k.profile
    if item == "nr_free_pages":
        return k.nr_free_pages
    if item in p.numa_stat_items:
        return sum(z.numa[item] for z in k.zones)
    if item not in _PER_NODE and item in k.zones[0].stat:
        return sum(p.stat(z.stat, item) for z in k.zones)
    v = sum(p.stat(n.stat, item) for n in k.nodes)
    if item == "nr_kernel_stack":
        return v // p.kernel_stack_kb
    return v // HPAGE_PMD_NR if item in THP_ITEMS else v


def render(k) -> bytes:
    p = k.profile
    if p.vmstat_counters is not None:            # 3.10: one list of zone counters
        out = [f"{item} {_counter(k, item)}" for item in p.vmstat_counters]
    else:
        out = _blocks(k)
    thresh, bg_thresh = k.global_dirty_limits()
    out.append(f"nr_dirty_threshold {thresh}\nnr_dirty_background_threshold {bg_thresh}")
    if p.memmap_pages:
        out.append(f"nr_memmap_pages 0\nnr_memmap_boot_pages {k.nr_memmap_boot_pages}")
    ev = k.vm_events
    out += [f"{name} {p.stat(ev, name)}" for name in p.vm_event_items]
    if p.vmstat_nr_unstable:
        out.append("nr_unstable 0")
    return ("\n".join(out) + "\n").encode()


def _blocks(k) -> list[str]:
    """4.8+: the zone counters, the NUMA events, the node counters."""
    p = k.profile
    zones = k.zones
    out = [f"nr_free_pages {k.nr_free_pages}"]
    if p.free_pages_blocks:
        out.append(f"nr_free_pages_blocks {sum(z.nr_free_blocks for z in zones)}")
    out += [f"{item} {k.node_stat_total(item) if item in _PER_NODE else sum(p.stat(z.stat, item) for z in zones)}"
            for item in p.zone_stat_items]
    out += [f"{item} {sum(z.numa[item] for z in zones)}" for item in p.numa_stat_items]
    for item in p.node_stat_items:
        v = sum(p.stat(n.stat, item) for n in k.nodes)
        out.append(f"{item} {v // HPAGE_PMD_NR if item in THP_ITEMS else v}")
    return out


FILES = {"vmstat": View(0o444, render)}
