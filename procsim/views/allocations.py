"""``allocations``: every live allocation the control file made, asked of the core (``k.tasks``).

One row per allocation: ID, tag, kind, cache or order, node, zone, pfn, bytes (a swapped-out
page: node and pfn ``-``, zone ``swap``) -- the first
``MAX_LISTED`` of them, then a line saying how many more there are.  Not a kernel file: the
shell serves it beside the /proc views (procsim.session).
"""
from __future__ import annotations

from bisect import bisect_right

from procsim.mm.page_types import PAGE_OFFSET, PAGE_SIZE

MAX_LISTED = 100000
HEADER = f"{'ID':>8} {'TAG':<12} {'KIND':<8} {'CACHE/ORDER':<20} {'NODE':>4} {'ZONE':<8} {'PFN':>10} {'BYTES':>8}"


def render(k, cache: dict | None = None) -> bytes:
    """The listing.  ``cache`` (kept by the caller between renders) maps a batch's first ID to
    (its version, its rows): a 100000-line listing is redone only for the batches that changed
    (a live object's slab, zone and pfn never change unless the batch's version moves)."""
    zone_of = _zone_finder(k)
    out = [HEADER]
    listed = total = 0
    kept = {}
    for b in k.tasks.batches():
        total += b.live
        if listed >= MAX_LISTED:
            continue
        hit = cache.get(b.first) if cache is not None else None
        if hit is None or hit[0] != b.version:
            hit = (b.version, _rows(k, b, zone_of))
        kept[b.first] = hit
        rows = hit[1][:MAX_LISTED - listed]
        out.extend(rows)
        listed += len(rows)
    if cache is not None:
        cache.clear()
        cache.update(kept)
    if total > listed:
        out.append(f"# {total - listed} more live allocations not listed (at most {MAX_LISTED} lines)")
    return ("\n".join(out) + "\n").encode()


def _zone_finder(k):
    zones = sorted((z.start_pfn, z.start_pfn + z.spanned, z) for z in k.zones if z.spanned)
    starts = [s for s, _, _ in zones]

    def zone_of(pfn):
        j = bisect_right(starts, pfn) - 1
        if j >= 0 and pfn < zones[j][1]:
            return zones[j][2]
        return None
    return zone_of


def _rows(k, b, zone_of) -> list[str]:
    """The rows of batch b's live members, at most MAX_LISTED."""
    slab = k.slab
    tag = b.task.tag or "-"
    out = []
    for id_, a in b.entries():
        if len(out) >= MAX_LISTED:
            break
        if b.kind == "pages":
            if a is None:               # swapped out: the task's, in a swap slot
                out.append(f"{id_:>8} {tag:<12} {b.kind:<8} {f'order {b.what}':<20} "
                           f"{'-':>4} {'swap':<8} {'-':>10} {PAGE_SIZE << b.what:>8}")
                continue
            pfn, what, size = a, f"order {b.what}", PAGE_SIZE << b.what
        else:
            pfn = (a - PAGE_OFFSET) // PAGE_SIZE
            cache = slab.cache_of(a)
            if cache is not None:
                what, size = cache.name, cache.size
            else:                       # a large kmalloc: compound pages
                order = max(0, (b.what - 1).bit_length() - 12)
                what, size = f"order {order}", PAGE_SIZE << order
        z = zone_of(pfn)
        out.append(f"{id_:>8} {tag:<12} {b.kind:<8} {what:<20} "
                   f"{z.node if z else '?':>4} {z.name if z else '?':<8} {pfn:>10} {size:>8}")
    return out
