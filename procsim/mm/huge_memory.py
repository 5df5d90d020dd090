"""Transparent huge pages (mm/huge_memory.c), as far as the counters go.

procsim has no page tables to fault into; a control ``alloc_pages 9 gfp=GFP_TRANSHUGE...``
(a PMD-sized block with the THP gfp, GFP_TRANSHUGE_LIGHT's bits all set) is what
do_huge_pmd_anonymous_page() asks the allocator for, so it is counted as a THP fault:
thp_fault_alloc when it got its block, thp_fault_fallback when it did not (the kernel would
fall back to small pages).
"""
from __future__ import annotations

from . import gfp as G
from .page_types import PAGEBLOCK_ORDER

HPAGE_PMD_ORDER = PAGEBLOCK_ORDER


def is_thp_fault(order: int, gfp: int) -> bool:
    return order == HPAGE_PMD_ORDER and gfp & G.GFP_TRANSHUGE_LIGHT == G.GFP_TRANSHUGE_LIGHT


def count_thp_fault(k, order: int, gfp: int, allocated: int, failed: bool) -> None:
    """thp_fault_alloc per block a THP request got, thp_fault_fallback when it failed."""
    if is_thp_fault(order, gfp):
        k.count_vm_events("thp_fault_alloc", allocated)
        k.count_vm_events("thp_fault_fallback", int(failed))
