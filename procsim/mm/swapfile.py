"""Swap areas (mm/swapfile.c): what swapon set up, and the totals the kernel reports.

A machine without ``swap:`` has none: every total is 0.
"""
from __future__ import annotations


def total_swap_pages(k) -> int:
    """total_swap_pages: the usable pages of every active swap area."""
    return sum(si.pages for si in getattr(k, "swap_info", ()))


def get_nr_swap_pages(k) -> int:
    """nr_swap_pages: the swap slots still free."""
    return sum(si.pages - si.inuse_pages for si in getattr(k, "swap_info", ()))


def total_swapcache_pages(k) -> int:
    """Pages in the swap cache (NR_SWAPCACHE)."""
    return k.node_stat_total("nr_swapcached")
