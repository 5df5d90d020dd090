"""Page migration (mm/migrate.c): copy an allocation to another block and free the old one.

``migrate_pages()`` is what compaction calls with its isolated pages and ``compaction_alloc``
as the allocator of destinations.  A migrated allocation keeps everything but its pfn: order,
migratetype, owner cpu and use (so node and zone counters stay put: migration within a zone
moves no page between counters), and the ID the control file gave it (``Tasks.move``).  The
source is freed the way a migrated folio is (``folio_put``: through the cpu's pcp list for pcp
orders), counted in pgfree; successes and failures are counted in pages
(pgmigrate_success / pgmigrate_fail, thp_migration_* for PMD-sized blocks).

A large block that finds no destination is split (try_split_folio()) and its pages migrate
one by one -- unless the control file gave it an ID: an ID names a whole block, so such a
block fails and stays where it is while migration of the rest goes on.
"""
from __future__ import annotations

import errno

from .buddy import Page
from .page_types import PAGEBLOCK_ORDER
from .vmscan import LRU_OF_USE, lru_migrate, lru_split

HPAGE_PMD_ORDER = PAGEBLOCK_ORDER


def try_split_folio(k, src, work: list) -> bool:
    """-ENOMEM for a large folio (no room for it whole): try_split_folio(), its pages pushed on
    the work stack to migrate one by one.  False for an order-0 page or an allocation with an
    ID (the control file's handle stays one block)."""
    if not src.order or src.id > 0:
        return False
    k.count_vm_events("thp_migration_split", src.order == HPAGE_PMD_ORDER)
    pieces = k.split_page(src)
    if src.use in LRU_OF_USE:
        lru_split(k, src, pieces)
    work += pieces[::-1]
    return True


def migrate_pages(k, cc) -> int:
    """migrate_pages(): each isolated page to a block compaction_alloc() gives; 0, or
    -ENOMEM when destinations ran out (the rest stay where they are: putback)."""
    succeeded = failed = thp_ok = thp_fail = 0
    rc = 0
    tasks = k.tasks
    work, cc.migratepages = cc.migratepages[::-1], []           # a stack: list order
    while work:
        src = work.pop()
        n = 1 << src.order
        dst_pfn = k.compaction_alloc(cc, src.order)
        if dst_pfn < 0:
            if try_split_folio(k, src, work):
                continue
            failed += n
            thp_fail += src.order == HPAGE_PMD_ORDER
            if src.order:                    # an ID names the whole block: it stays put
                continue
            rc = -errno.ENOMEM
            break
        move_page(k, tasks, src, dst_pfn, cc.cpu)
        succeeded += n
        thp_ok += src.order == HPAGE_PMD_ORDER
    cc.nr_migratepages = 0
    k.count_vm_events("pgmigrate_success", succeeded)
    k.count_vm_events("pgmigrate_fail", failed)
    k.count_vm_events("thp_migration_success", thp_ok)
    k.count_vm_events("thp_migration_fail", thp_fail)
    return rc


def move_page(k, tasks, src: Page, dst_pfn: int, cpu: int) -> Page:
    """The destination block becomes the allocation (post_alloc_hook, no pgalloc: it was
    isolated, not allocated), the owner's ID follows it, the source is freed on ``cpu``."""
    z = src.zone
    dst = Page()
    dst.pfn, dst.order, dst.zone, dst.migratetype = dst_pfn, src.order, z, src.migratetype
    dst.cpu, dst.use, dst.owner = src.cpu, src.use, src.owner   # the identity goes along (PINNED too)
    if dst.owner is not None:
        dst.idx = src.idx
    z.allocated[dst_pfn] = dst
    k._movable_used(z, dst_pfn, dst.order, +1)
    if dst.use:
        k._account_use(dst, +1)
        if dst.use in LRU_OF_USE:
            lru_migrate(k, src, dst)
    if src.id > 0:                           # named: the record's member now is dst
        tasks.move(src.id, dst)
    owner_cpu = src.cpu
    src.cpu = cpu                            # the migrating cpu frees the old folio
    k.free_pages(src)
    src.cpu = owner_cpu
    return dst
