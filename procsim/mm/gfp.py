"""GFP flags: names -> bits -> (highest zone, migratetype, alloc flags).

Bit positions are those of include/linux/gfp_types.h (6.x), so a user who types
``GFP_KERNEL|__GFP_THISNODE`` gets exactly what the kernel would do with it.
"""
from __future__ import annotations

import errno

from .errors import MMError
from .page_types import ZONE_DMA, ZONE_DMA32, ZONE_NORMAL, ZONE_MOVABLE

__GFP_DMA = 0x01
__GFP_HIGHMEM = 0x02
__GFP_DMA32 = 0x04
__GFP_MOVABLE = 0x08
__GFP_RECLAIMABLE = 0x10
__GFP_HIGH = 0x20
__GFP_IO = 0x40
__GFP_FS = 0x80
__GFP_ZERO = 0x100
__GFP_DIRECT_RECLAIM = 0x400
__GFP_KSWAPD_RECLAIM = 0x800
__GFP_WRITE = 0x1000
__GFP_NOWARN = 0x2000
__GFP_RETRY_MAYFAIL = 0x4000
__GFP_NOFAIL = 0x8000
__GFP_NORETRY = 0x10000
__GFP_MEMALLOC = 0x20000
__GFP_COMP = 0x40000
__GFP_NOMEMALLOC = 0x80000
__GFP_HARDWALL = 0x100000
__GFP_THISNODE = 0x200000
__GFP_ACCOUNT = 0x400000
__GFP_ZEROTAGS = 0x800000

__GFP_RECLAIM = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM
GFP_ATOMIC = __GFP_HIGH | __GFP_KSWAPD_RECLAIM
GFP_KERNEL = __GFP_RECLAIM | __GFP_IO | __GFP_FS
GFP_KERNEL_ACCOUNT = GFP_KERNEL | __GFP_ACCOUNT
GFP_NOWAIT = __GFP_KSWAPD_RECLAIM | __GFP_NOWARN
GFP_NOIO = __GFP_RECLAIM
GFP_NOFS = __GFP_RECLAIM | __GFP_IO
GFP_USER = __GFP_RECLAIM | __GFP_IO | __GFP_FS | __GFP_HARDWALL
GFP_DMA = __GFP_DMA
GFP_DMA32 = __GFP_DMA32
GFP_HIGHUSER = GFP_USER | __GFP_HIGHMEM
GFP_HIGHUSER_MOVABLE = GFP_HIGHUSER | __GFP_MOVABLE
GFP_TRANSHUGE_LIGHT = (GFP_HIGHUSER_MOVABLE | __GFP_COMP | __GFP_NOMEMALLOC | __GFP_NOWARN) & ~__GFP_RECLAIM
GFP_TRANSHUGE = GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM

NAMES = {k: v for k, v in dict(globals()).items() if k.startswith(("GFP_", "__GFP_")) and isinstance(v, int)}

# Alloc flags (mm/internal.h, 6.x)
ALLOC_WMARK_MIN = 0x00
ALLOC_WMARK_LOW = 0x01
ALLOC_WMARK_HIGH = 0x02
ALLOC_NO_WATERMARKS = 0x04
ALLOC_WMARK_MASK = ALLOC_NO_WATERMARKS - 1
ALLOC_OOM = 0x08
ALLOC_NON_BLOCK = 0x10
ALLOC_MIN_RESERVE = 0x20          # == __GFP_HIGH, as in the kernel
ALLOC_CPUSET = 0x40
ALLOC_CMA = 0x80
ALLOC_NOFRAGMENT = 0x100
ALLOC_HIGHATOMIC = 0x200
ALLOC_KSWAPD = 0x800              # == __GFP_KSWAPD_RECLAIM
ALLOC_RESERVES = ALLOC_NON_BLOCK | ALLOC_MIN_RESERVE | ALLOC_HIGHATOMIC | ALLOC_OOM

MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE = 0, 1, 2


def parse_gfp(text: str) -> int:
    """``GFP_KERNEL|__GFP_THISNODE`` (or a number) -> bits; MMError(EINVAL) on unknown names."""
    bits = 0
    for part in text.split("|"):
        name = part.strip()
        if name in NAMES:
            bits |= NAMES[name]
            continue
        try:
            bits |= int(name, 0)
        except ValueError:
            raise MMError(errno.EINVAL, f"unknown gfp flag {name!r} (e.g. GFP_KERNEL, GFP_ATOMIC, "
                          "GFP_HIGHUSER_MOVABLE, GFP_DMA32, __GFP_THISNODE)") from None
    gfp_zone(bits)
    return bits


def gfp_zone(gfp: int) -> int:
    """GFP_ZONE_TABLE on x86-64: the highest zone index the request may use."""
    zone = _GFP_ZONE_TABLE.get(gfp & (__GFP_DMA | __GFP_HIGHMEM | __GFP_DMA32 | __GFP_MOVABLE))
    if zone is None:
        raise MMError(errno.EINVAL, "invalid gfp zone combination (GFP_ZONE_BAD): pick one of "
                      "__GFP_DMA, __GFP_DMA32, __GFP_HIGHMEM")
    return zone


_GFP_ZONE_TABLE = {0: ZONE_NORMAL, __GFP_DMA: ZONE_DMA, __GFP_HIGHMEM: ZONE_NORMAL, __GFP_DMA32: ZONE_DMA32,
                   __GFP_MOVABLE: ZONE_NORMAL, __GFP_MOVABLE | __GFP_DMA: ZONE_DMA,
                   __GFP_MOVABLE | __GFP_HIGHMEM: ZONE_MOVABLE, __GFP_MOVABLE | __GFP_DMA32: ZONE_DMA32}


def gfp_migratetype(gfp: int) -> int:
    return (gfp & (__GFP_MOVABLE | __GFP_RECLAIMABLE)) >> 3


def gfp_to_alloc_flags(gfp: int, order: int) -> int:
    """The slow path's flags: the MIN watermark, reserves for atomic requests."""
    flags = ALLOC_WMARK_MIN | ALLOC_CPUSET | (gfp & (__GFP_HIGH | __GFP_KSWAPD_RECLAIM))
    if not gfp & __GFP_DIRECT_RECLAIM:
        if not gfp & __GFP_NOMEMALLOC:
            flags |= ALLOC_NON_BLOCK
        if order > 0 and flags & ALLOC_MIN_RESERVE:
            flags |= ALLOC_HIGHATOMIC
        flags &= ~ALLOC_CPUSET
    if gfp & __GFP_MEMALLOC and not gfp & __GFP_NOMEMALLOC:
        flags |= ALLOC_NO_WATERMARKS
    return flags


def format_gfp(gfp: int) -> str:
    """The shortest GFP_* spelling of bits, for replies and the allocations list."""
    for name in ("GFP_HIGHUSER_MOVABLE", "GFP_TRANSHUGE", "GFP_KERNEL_ACCOUNT", "GFP_KERNEL", "GFP_USER",
                 "GFP_ATOMIC", "GFP_NOWAIT", "GFP_NOFS", "GFP_NOIO"):
        base = NAMES[name]
        if gfp & base == base:
            rest = gfp & ~base
            break
    else:
        name, rest = "", gfp
    parts = [name] if name else []
    parts += [n for n, v in NAMES.items() if n.startswith("__") and rest & v == v and v and bin(v).count("1") == 1]
    return "|".join(parts) or "0"


USER_USES = ("anon", "pagecache")                # the uses use_gfp() gives a gfp of their own


def use_gfp(use: str | None, folios: bool = True) -> int:
    """The gfp the kernel allocates a page of this use with when the caller names none.

    anon: the anonymous fault (do_anonymous_page -> vma_alloc_zeroed_movable_folio):
    GFP_HIGHUSER_MOVABLE | __GFP_ZERO; pagecache: a regular file's mapping_gfp_mask(),
    GFP_HIGHUSER_MOVABLE (inode_init_always), as filemap_create_folio() reads a page with.
    ``folios``: 6.x allocates them as folios, which folio_alloc()/vma_alloc_folio() make
    __GFP_COMP (a real 6.1 OOM header: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP|
    __GFP_ZERO)).  Anything else (kernel stacks, page tables, no use=): GFP_KERNEL."""
    comp = __GFP_COMP if folios else 0
    if use == "anon":
        return GFP_HIGHUSER_MOVABLE | __GFP_ZERO | comp
    if use == "pagecache":
        return GFP_HIGHUSER_MOVABLE | comp
    return GFP_KERNEL
