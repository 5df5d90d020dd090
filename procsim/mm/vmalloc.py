"""vmalloc_nr_pages() (mm/vmalloc.c): the pages of vmalloc areas, meminfo's VmallocUsed.

The boot workload's ``use: vmalloc`` pages (module text, the NUMA-distributed hash tables,
what else boot vmalloc'ed) and, with CONFIG_VMAP_STACK (x86-64's default since 4.9; the
profile's ``vmap_stack``), every kernel stack: alloc_thread_stack_node() maps a task's
THREAD_SIZE stack with __vmalloc_node_range(), which adds its pages to nr_vmalloc_pages,
while account_kernel_stack() counts the same pages in NR_KERNEL_STACK_KB.
"""
from __future__ import annotations

from .page_types import PAGE_SIZE


def vmalloc_nr_pages(k) -> int:
    pages = k.vmalloc_pages
    if k.profile.vmap_stack:
        pages += k.node_stat_total("nr_kernel_stack") * k.profile.kernel_stack_kb * 1024 // PAGE_SIZE
    return pages
