"""The page-size and zone constants of x86-64 with 4-level paging, in one place
(arch/x86/include/asm/page_types.h, include/linux/mmzone.h, pageblock-flags.h), and the
names of the kernel versions procsim models.

Everything else imports them from here, so a reader finds one definition of each.
"""
KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_OFFSET = 0xffff888000000000        # the direct map (__PAGE_OFFSET_BASE_L4)
MAX_PAGE_ORDER = 10                     # CONFIG_ARCH_FORCE_MAX_ORDER default on x86
NR_PAGE_ORDERS = MAX_PAGE_ORDER + 1
MAX_ORDER_NR_PAGES = 1 << MAX_PAGE_ORDER
PAGEBLOCK_ORDER = 9                     # HUGETLB_PAGE_ORDER: a 2 MiB pageblock
PAGEBLOCK_NR_PAGES = 1 << PAGEBLOCK_ORDER


# pageblock-flags.h's pfn arithmetic, the one home of "cut at pageblock bounds": the
# allocator's per-pageblock counters, the runs paths, compaction and the pictures use these.
def pageblock_start_pfn(pfn: int) -> int:
    """pageblock_start_pfn(): the first pfn of pfn's pageblock."""
    return pfn & ~(PAGEBLOCK_NR_PAGES - 1)


def pageblock_end_pfn(pfn: int) -> int:
    """pageblock_end_pfn(): the first pfn after pfn's pageblock."""
    return (pfn | (PAGEBLOCK_NR_PAGES - 1)) + 1


def pageblock_aligned(pfn: int) -> bool:
    """pageblock_aligned(): pfn starts a pageblock."""
    return not pfn & (PAGEBLOCK_NR_PAGES - 1)


def pageblock_ranges(lo: int, hi: int, descending: bool = False):
    """The pfns [lo, hi) cut at pageblock bounds: (start, end) of each piece, lowest
    first, or highest first when ``descending`` (a free of the pages from the top)."""
    if descending:
        while lo < hi:
            s = max(lo, pageblock_start_pfn(hi - 1))
            yield s, hi
            hi = s
    else:
        while lo < hi:
            e = min(hi, pageblock_end_pfn(lo))
            yield lo, e
            lo = e

# enum zone_type (mmzone.h) on x86-64: DMA below 16 MiB, DMA32 below 4 GiB, then Normal;
# Movable carved out by kernelcore=/movablecore=; Device for ZONE_DEVICE memory.
ZONE_DMA, ZONE_DMA32, ZONE_NORMAL, ZONE_MOVABLE, ZONE_DEVICE = range(5)
MAX_NR_ZONES = 5
ZONE_NAMES = ("DMA", "DMA32", "Normal", "Movable", "Device")

# The kernel versions procsim has a profile for (procsim/mm/profile.py binds each one's rules);
# a leaf here so the machine description can validate ``kernel:`` without importing the core.
KERNEL_VERSIONS = ("6.18", "6.1", "5.4", "3.10")
DEFAULT_KERNEL = "6.18"
