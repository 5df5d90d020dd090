"""__alloc_pages_slowpath() of mm/page_alloc.c (6.18), for the requests the fast path (low
watermark) could not serve: wake kswapd, try the min watermark with the reserves the gfp
allows, reclaim directly and retry while should_reclaim_retry() says it can help, call the
OOM killer for requests that may not fail, and warn_alloc() when all of it fails.

The allocator calls ``alloc_pages_slowpath`` with its zonelist; kswapd itself runs when
the allocator returns (``vmscan.run_kswapd``), as deferred work would.
"""
from __future__ import annotations

from . import gfp as G
from . import oom_kill, vmscan
from .show_mem import warn_alloc

PAGE_ALLOC_COSTLY_ORDER = 3


def zone_reclaimable_pages(k, z) -> int:
    """The zone's file LRU, and its anon LRU while swap has room."""
    st = z.stat
    nr = st["nr_zone_inactive_file"] + st["nr_zone_active_file"]
    if vmscan.can_reclaim_anon_pages(k):
        nr += st["nr_zone_inactive_anon"] + st["nr_zone_active_anon"]
    return nr


def should_reclaim_retry(k, zonelist, order: int, alloc_flags: int, progress: int, loops: list) -> bool:
    """should_reclaim_retry(): retry while some zone would meet min if everything
    reclaimable in it were freed, for at most MAX_RECLAIM_RETRIES loops without progress."""
    if progress and order <= PAGE_ALLOC_COSTLY_ORDER:
        loops[0] = 0
    else:
        loops[0] += 1
    if loops[0] > vmscan.MAX_RECLAIM_RETRIES:
        return False
    highest = zonelist[0].idx
    for z in zonelist:
        available = zone_reclaimable_pages(k, z) + z.nr_free
        saved = z.nr_free
        z.nr_free = available                    # __zone_watermark_ok(..., free_pages=available)
        try:
            if k._watermark_ok(z, order, z.wmark_min, highest, alloc_flags):
                return True
        finally:
            z.nr_free = saved
    return False


def alloc_pages_slowpath(k, zonelist, order: int, gfp: int, mt: int, cpu: int, node: int):
    """The page, or None after warn_alloc() (the caller raises ENOMEM)."""
    alloc_flags = G.gfp_to_alloc_flags(gfp, order)
    if alloc_flags & G.ALLOC_KSWAPD:
        vmscan.wake_all_kswapds(k, order, gfp, zonelist)
    get = k._get_page_from_freelist
    page = get(zonelist, order, alloc_flags, mt, cpu)
    if page is not None or not gfp & G.__GFP_DIRECT_RECLAIM:
        return page if page is not None else _nopage(k, gfp, order, cpu)
    loops, drained = [0], False
    while True:
        # __alloc_pages_direct_reclaim(): reclaim, retry, and once the pcp lists drained
        progress = vmscan.try_to_free_pages(k, zonelist, order, gfp)
        page = get(zonelist, order, alloc_flags, mt, cpu)
        if page is None and progress and not drained:
            k.drain_all_pages()
            drained = True
            page = get(zonelist, order, alloc_flags, mt, cpu)
        if page is not None:
            return page
        if gfp & G.__GFP_NORETRY or (order > PAGE_ALLOC_COSTLY_ORDER and not gfp & G.__GFP_RETRY_MAYFAIL):
            break
        if should_reclaim_retry(k, zonelist, order, alloc_flags, progress, loops):
            continue
        if oom_kill.may_oom(gfp, order, G.gfp_zone(gfp)) and _may_oom(k, gfp, order):
            loops[0] = 0
            page = get(zonelist, order, alloc_flags, mt, cpu)
            if page is not None:
                return page
            continue
        break
    return _nopage(k, gfp, order, cpu)


def _may_oom(k, gfp: int, order: int) -> bool:
    """__alloc_pages_may_oom(): out_of_memory() over the task registry; True if it killed."""
    tasks = getattr(k, "tasks", None)
    if tasks is None:
        return False
    return oom_kill.oom_kill_tasks(k, gfp, order) is not None


def _nopage(k, gfp: int, order: int, cpu: int):
    warn_alloc(k, gfp, order, cpu=cpu)
    return None
