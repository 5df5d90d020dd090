"""The page-size constants of x86-64 with 4-level paging, in one place
(arch/x86/include/asm/page_types.h, include/linux/mmzone.h, pageblock-flags.h).

Everything else imports them from here, so a reader finds one definition of each.
"""
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_OFFSET = 0xffff888000000000        # the direct map (__PAGE_OFFSET_BASE_L4)
MAX_PAGE_ORDER = 10                     # CONFIG_ARCH_FORCE_MAX_ORDER default on x86
NR_PAGE_ORDERS = MAX_PAGE_ORDER + 1
MAX_ORDER_NR_PAGES = 1 << MAX_PAGE_ORDER
PAGEBLOCK_ORDER = 9                     # HUGETLB_PAGE_ORDER: a 2 MiB pageblock
PAGEBLOCK_NR_PAGES = 1 << PAGEBLOCK_ORDER
