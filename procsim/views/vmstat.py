"""/proc/vmstat as mm/vmstat.c vmstat_show() prints it in 6.18: zone counters summed over
all zones, NUMA events, node counters, the dirty thresholds, the memmap counters, then
the event counters, and the fake ``nr_unstable 0`` that 6.x appends for old tools.

Counters the model does not drive print 0; the names and their order are the kernel's
(vmstat_text[] for the reference host's configuration).
"""
from __future__ import annotations

from ..mm.vmstat import ZONE_STAT_ITEMS, NUMA_STAT_ITEMS, NODE_STAT_ITEMS, THP_ITEMS, VM_EVENT_ITEMS
from ..machine import PAGE_SIZE
from .zoneinfo import HPAGE_PMD_NR
from . import View

VM_DIRTY_RATIO = 20                 # vm.dirty_ratio
DIRTY_BACKGROUND_RATIO = 10         # vm.dirty_background_ratio

def global_dirtyable_memory(k) -> int:
    """mm/page-writeback.c: free pages minus totalreserve, plus the file LRU, plus one."""
    x = k.nr_free_pages
    x -= min(x, k.totalreserve_pages)
    x += k.node_stat_total("nr_inactive_file") + k.node_stat_total("nr_active_file")
    return x + 1


def dirty_limits(k) -> tuple[int, int]:
    """domain_dirty_limits() for a non-RT reader: ratios turned into per-PAGE_SIZE fractions."""
    available = global_dirtyable_memory(k)
    thresh = (VM_DIRTY_RATIO * PAGE_SIZE // 100) * available // PAGE_SIZE
    bg_thresh = (DIRTY_BACKGROUND_RATIO * PAGE_SIZE // 100) * available // PAGE_SIZE
    if bg_thresh >= thresh:
        bg_thresh = thresh // 2
    return thresh, bg_thresh


def memmap_boot_pages(k) -> int:
    """NR_MEMMAP_BOOT_PAGES: the struct page arrays memblock reserved at boot."""
    return sum(r.end - r.start for r in k.layout.reservations if r.what.startswith("memmap"))


def render(k) -> bytes:
    zones = k.zones
    out = [f"nr_free_pages {k.nr_free_pages}",
           f"nr_free_pages_blocks {sum(z.nr_free_blocks for z in zones)}"]
    out += [f"{item} {sum(z.stat[item] for z in zones)}" for item in ZONE_STAT_ITEMS]
    out += [f"{item} {sum(z.numa[item] for z in zones)}" for item in NUMA_STAT_ITEMS]
    for item in NODE_STAT_ITEMS:
        v = sum(n.stat[item] for n in k.nodes)
        out.append(f"{item} {v // HPAGE_PMD_NR if item in THP_ITEMS else v}")
    thresh, bg_thresh = dirty_limits(k)
    out.append(f"nr_dirty_threshold {thresh}\nnr_dirty_background_threshold {bg_thresh}")
    out.append(f"nr_memmap_pages 0\nnr_memmap_boot_pages {memmap_boot_pages(k)}")
    ev = k.vm_events
    out += [f"{name} {ev.get(name, 0)}" for name in VM_EVENT_ITEMS]
    out.append("nr_unstable 0\n")
    return "\n".join(out).encode()


FILES = {"vmstat": View(0o444, render)}
