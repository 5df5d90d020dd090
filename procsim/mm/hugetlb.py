"""The default hstate's pool (mm/hugetlb.c, 2 MiB pages on x86-64): ``vm.nr_hugepages``.

set_max_huge_pages(): growing the pool allocates order-9 blocks from the buddy, node after
node in turn (hstate_next_node_to_alloc over the nodes with memory), each with
htlb_alloc_mask() | __GFP_COMP | __GFP_THISNODE | __GFP_NOWARN | __GFP_RETRY_MAYFAIL, until
the target is met or every node failed once in a row (the pool then stays smaller, as the
kernel's does: reading nr_hugepages shows what it got).  Shrinking frees the pool's pages,
node after node from hstate_next_node_to_free.  The pages are free huge pages (HugePages_Free)
that no task owns; /proc/meminfo's HugePages_* and Hugetlb, the nodes' HugePages_* and
CommitLimit (totalram - hugetlb) follow the pool.
"""
from __future__ import annotations

from . import gfp as G
from .errors import MMError

HUGETLB_ORDER = 9
PAGES_PER_HUGE_PAGE = 1 << HUGETLB_ORDER


def pool(k) -> list:
    """The pool's pages (head Pages), in allocation order."""
    return k.huge_pool


def nr_huge_pages_node(k, nid: int) -> int:
    return sum(1 for page in pool(k) if page.node == nid)


def hugetlb_total_pages(k) -> int:
    """hugetlb_total_pages(): the pool's size in base pages."""
    return len(pool(k)) * PAGES_PER_HUGE_PAGE


def _mem_nodes(k) -> list[int]:
    return [n.id for n in k.nodes if n.has_memory]


def set_max_huge_pages(k, count: int) -> None:
    """set_max_huge_pages(h, count, NUMA_NO_NODE)."""
    p = pool(k)
    nodes = _mem_nodes(k)
    gfp = G.GFP_HIGHUSER_MOVABLE | G.__GFP_COMP | G.__GFP_THISNODE | G.__GFP_NOWARN | G.__GFP_RETRY_MAYFAIL
    failed_in_a_row = 0
    while len(p) < count and nodes:
        nid = nodes[k.hugetlb_next_nid_to_alloc % len(nodes)]
        k.hugetlb_next_nid_to_alloc = (nodes.index(nid) + 1) % len(nodes)
        try:
            page = k.alloc_pages(HUGETLB_ORDER, gfp, node=nid)
        except MMError:
            failed_in_a_row += 1
            if failed_in_a_row >= len(nodes):
                break
            continue
        failed_in_a_row = 0
        p.append(page)
    while len(p) > count:
        nid = nodes[k.hugetlb_next_nid_to_free % len(nodes)]
        k.hugetlb_next_nid_to_free = (nodes.index(nid) + 1) % len(nodes)
        for i in range(len(p) - 1, -1, -1):
            if p[i].node == nid:
                k.free_pages(p.pop(i))
                break
    k.nr_huge_pages = len(p)
    k.generation += 1
