"""Kernel-version profiles: the rules and formats that differ between kernel releases,
chosen once at boot (``k.profile``).

A profile is a frozen value.  The core reads it while booting (tables, limits, which
deferred work exists) and binds what it needs then; views read its tables to print.  A
later profile ("6.1", "5.4", "3.10") is a new ``Profile`` here plus, where a version
computes something differently, a different function *bound at boot* -- never an
``if version`` inside alloc_pages / free_pages or any other hot path.

Only 6.18, the reference host's kernel, exists today.
"""
from __future__ import annotations

from dataclasses import dataclass

from .vmstat import NODE_STAT_ITEMS, ZONE_STAT_ITEMS, NUMA_STAT_ITEMS, VM_EVENT_ITEMS


@dataclass(frozen=True)
class Profile:
    version: str
    # vmstat_text[]: the counter names, in the order /proc/vmstat and zoneinfo print them
    node_stat_items: tuple[str, ...]
    zone_stat_items: tuple[str, ...]
    numa_stat_items: tuple[str, ...]
    vm_event_items: tuple[str, ...]
    # init_per_zone_wmark_min(): the ceiling of the computed min_free_kbytes
    min_free_kbytes_max: int
    # calculate_normal_threshold(): the ceiling of a zone's stat_threshold
    stat_threshold_max: int


LINUX_6_18 = Profile(
    version="6.18",
    node_stat_items=NODE_STAT_ITEMS,
    zone_stat_items=ZONE_STAT_ITEMS,
    numa_stat_items=NUMA_STAT_ITEMS,
    vm_event_items=VM_EVENT_ITEMS,
    min_free_kbytes_max=262144,
    stat_threshold_max=125,
)

PROFILES = {p.version: p for p in (LINUX_6_18,)}
DEFAULT = LINUX_6_18
