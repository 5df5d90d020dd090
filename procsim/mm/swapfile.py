"""Swap areas (mm/swapfile.c): the swap file swapon set up at boot, and what the kernel
reports about it (/proc/swaps, meminfo's SwapTotal/SwapFree, show_mem's totals).

A machine with ``swap: SIZE`` has one swap file, ``/swapfile``, swapon'd without a
priority: the kernel gives the first such area -2 (--least_priority).  Its first page is
the swap header, so si->pages is one less than the file's pages (a 2 GiB file shows
2097148 kB).  A machine without ``swap:`` has none: every total is 0.
"""
from __future__ import annotations

from dataclasses import dataclass

from .page_types import PAGE_SIZE

SWAPFILE = "/swapfile"


@dataclass
class SwapInfo:
    """swap_info_struct: what /proc/swaps prints and reclaim fills."""
    file: str
    pages: int                      # usable slots (the header page excluded)
    prio: int
    inuse_pages: int = 0
    is_blockdev: bool = False


def swap_info(k) -> list[SwapInfo]:
    """swap_info[]: the active areas (``k.swap_info``, made at boot by swapon_boot())."""
    return k.swap_info


def swapon_boot(machine) -> list[SwapInfo]:
    """The area of the machine's ``swap:`` (mkswap's header page is not usable), as swapon
    at boot would make it; none without one."""
    size = machine.swap
    return [SwapInfo(SWAPFILE, size // PAGE_SIZE - 1, -2)] if size else []


def total_swap_pages(k) -> int:
    """total_swap_pages: the usable pages of every active swap area."""
    return sum(si.pages for si in swap_info(k))


def get_nr_swap_pages(k) -> int:
    """nr_swap_pages: the swap slots still free."""
    return sum(si.pages - si.inuse_pages for si in swap_info(k))


def swap_free(k, nr: int) -> None:
    """swap_free() of nr slots: back to the areas, the lowest priority first (the reverse of
    the order reclaim fills them; a machine has one area)."""
    for si in sorted(swap_info(k), key=lambda s: s.prio):
        n = min(nr, si.inuse_pages)
        si.inuse_pages -= n
        nr -= n
    assert nr == 0, "freed more swap slots than were in use"


def total_swapcache_pages(k) -> int:
    """Pages in the swap cache (NR_SWAPCACHE)."""
    return k.node_stat_total("nr_swapcached")


def swap_show(k) -> str:
    """/proc/swaps: swap_show()'s header and one line per area (paths padded to 40)."""
    out = ["Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"]
    for si in swap_info(k):
        size, used = si.pages * (PAGE_SIZE // 1024), si.inuse_pages * (PAGE_SIZE // 1024)
        pad = 40 - len(si.file) if len(si.file) < 40 else 1
        out.append(f"{si.file}{' ' * pad}{'partition' if si.is_blockdev else 'file' + chr(9)}\t{size}\t"
                   f"{chr(9) if size < 10000000 else ''}{used}\t{chr(9) if used < 10000000 else ''}{si.prio}\n")
    return "".join(out)
