"""SLUB: geometry, slab life cycle, kmalloc routing, node placement, bootstrap order.

Expected numbers are worked out by hand from the 6.18 rules (kernel-mm.md §6) or taken
from real /proc/slabinfo lines of a 6.18 host, never from the code under test.
"""
from __future__ import annotations

import errno

import pytest

from procsim import machine as M
from procsim.mm import gfp as G
from procsim.mm.errors import MMError
from procsim.mm.slub import (CPU_PARTIAL, FROZEN, FULL, NODE_PARTIAL, PAGE_OFFSET, SLAB_HWCACHE_ALIGN,
                             SLAB_RECLAIM_ACCOUNT, SLAB_TYPESAFE_BY_RCU, parse_slab_flags)
from procsim.testing import FakeKernel


# --------------------------------------------------------------------------------------------
# Geometry: objperslab / pagesperslab, worked out by hand.
# min_objects = 4*(fls(N)+1): N=2 -> 12, 8 -> 20, 48 -> 28, 128 -> 36, 256 -> 40, capped at
# (32768 // size); the order is get_order(min_objects*size) because every kmalloc size
# leaves at most 1/16 of the slab over (96: 64 of 4096, 192: 64/128 of 4096/8192).
KMALLOC_GEOMETRY = {
    2: {"8": (512, 1), "16": (256, 1), "32": (128, 1), "64": (64, 1), "96": (42, 1), "128": (32, 1),
        "192": (21, 1), "256": (16, 1), "512": (16, 2), "1k": (16, 4), "2k": (16, 8), "4k": (8, 8),
        "8k": (4, 8)},
    8: {"8": (512, 1), "16": (256, 1), "32": (128, 1), "64": (64, 1), "96": (42, 1), "128": (32, 1),
        "192": (21, 1), "256": (32, 2), "512": (32, 4), "1k": (32, 8), "2k": (16, 8), "4k": (8, 8),
        "8k": (4, 8)},
    48: {"8": (512, 1), "16": (256, 1), "32": (128, 1), "64": (64, 1), "96": (42, 1), "128": (32, 1),
         "192": (42, 2), "256": (32, 2), "512": (32, 4), "1k": (32, 8), "2k": (16, 8), "4k": (8, 8),
         "8k": (4, 8)},
    128: {"8": (512, 1), "16": (256, 1), "32": (128, 1), "64": (64, 1), "96": (42, 1), "128": (64, 2),
          "192": (42, 2), "256": (64, 4), "512": (64, 8), "1k": (32, 8), "2k": (16, 8), "4k": (8, 8),
          "8k": (4, 8)},
    256: {"8": (512, 1), "16": (256, 1), "32": (128, 1), "64": (64, 1), "96": (42, 1), "128": (64, 2),
          "192": (42, 2), "256": (64, 4), "512": (64, 8), "1k": (32, 8), "2k": (16, 8), "4k": (8, 8),
          "8k": (4, 8)},
}


@pytest.mark.parametrize("ncpus", sorted(KMALLOC_GEOMETRY))
def test_kmalloc_geometry(ncpus):
    k = FakeKernel(slab="slub", cpus_per_node=(ncpus,))
    for suffix, (objs, pages) in KMALLOC_GEOMETRY[ncpus].items():
        for prefix in ("kmalloc-", "kmalloc-rcl-", "dma-kmalloc-", "kmalloc-cg-"):
            s = k.slab.find(prefix + suffix)
            assert s is not None, prefix + suffix
            assert (s.objects, 1 << s.order) == (objs, pages), (s.name, ncpus)
            size = int(suffix[:-1]) * 1024 if suffix.endswith("k") else int(suffix)
            assert s.size == s.object_size == size


# Real lines of a 6.18.44 host with 2 vCPUs (objsize = s->size, objperslab, pagesperslab).
HOST_618 = [("task_struct", 4288, 7, 8), ("TCPv6", 2496, 13, 8), ("kvm_vcpu", 51488, 1, 16),
            ("ext4_inode_cache", 1128, 14, 4), ("radix_tree_node", 584, 14, 2), ("dentry", 192, 21, 1),
            ("extent_status", 40, 102, 1), ("mm_struct", 1600, 20, 8), ("sighand_cache", 2112, 15, 8),
            ("UDPv6", 1472, 22, 8), ("bdev_cache", 1536, 21, 8), ("x86_emulator", 2672, 12, 8),
            ("btrfs_inode", 1016, 16, 4), ("erofs_pcluster-257", 4232, 7, 8), ("lsm_file_cache", 24, 170, 1),
            ("jbd2_revoke_table_s", 16, 256, 1), ("mem_cgroup", 2240, 14, 8), ("signal_cache", 1152, 14, 4)]


def test_geometry_matches_a_real_618_host():
    k = FakeKernel(slab="slub", cpus_per_node=(2,))
    for name, size, objs, pages in HOST_618:
        s = k.slab.kmem_cache_create(name, size)
        assert (s.size, s.objects, 1 << s.order) == (size, objs, pages), name


def test_2304_byte_objects_and_tcp():
    # 2304: order 2 holds only 7 < min_objects, order 3 holds 14 with 512 left (<= 32768/16).
    for ncpus in (1, 2, 48, 256):
        k = FakeKernel(slab="slub", cpus_per_node=(ncpus,))
        s = k.slab.kmem_cache_create("obj2304", 2304)
        assert (s.size, s.objects, 1 << s.order) == (2304, 14, 8)
        # TCP: free pointer after the object (2312), cache-line aligned -> 2368; 32768/2368 = 13.
        tcp = k.slab.kmem_cache_create("TCP", 2304, flags=SLAB_TYPESAFE_BY_RCU | SLAB_HWCACHE_ALIGN)
        assert (tcp.size, tcp.objects, 1 << tcp.order) == (2368, 13, 8)


def test_alignment_and_partial_tunables():
    k = FakeKernel(slab="slub", cpus_per_node=(2,))
    small = k.slab.kmem_cache_create("small", 20, flags=SLAB_HWCACHE_ALIGN)   # line halves to 32
    assert small.size == 32
    odd = k.slab.kmem_cache_create("odd", 13)                                  # word aligned
    assert odd.size == 16
    aligned = k.slab.kmem_cache_create("aligned", 100, align=256)
    assert aligned.size == 256
    s512, s4k = k.slab.find("kmalloc-512"), k.slab.find("kmalloc-4k")
    assert (s512.min_partial, s4k.min_partial) == (5, 6)                     # ilog2/2 clamped to 5..10
    assert k.slab.find("kmalloc-8").cpu_partial_slabs == 1                   # ceil(2*120/512)
    assert s512.cpu_partial_slabs == 7                                       # ceil(2*52/16)
    assert s4k.cpu_partial_slabs == 2                                        # ceil(2*6/8)
    # boot caches of a 1-node, 2-cpu machine: kmem_cache 224+8 -> 256, kmem_cache_node 72 -> 128
    assert (k.slab.find("kmem_cache").size, k.slab.find("kmem_cache_node").size) == (256, 128)
    assert k.slab.find("kmalloc_buckets").size == 112


def test_bootstrap_order_matches_the_618_tail():
    k = FakeKernel(slab="slub", cpus_per_node=(2,))
    sizes = ["8k", "4k", "2k", "1k", "512", "256", "128", "64", "32", "16", "8", "192", "96"]
    expected = ["kmalloc_buckets"]
    for prefix in ("kmalloc-cg-", "dma-kmalloc-", "kmalloc-rcl-", "kmalloc-"):
        expected += [prefix + x for x in sizes]
    expected += ["kmem_cache_node", "kmem_cache"]
    assert [s.name for s in k.slab.caches] == expected
    # kmem_cache holds one struct per cache, kmem_cache_node one per cache per node
    n = len(expected)
    assert k.slab.find("kmem_cache").inuse == n
    assert k.slab.find("kmem_cache_node").inuse == n
    k.slab.kmem_cache_create("newest", 40)
    assert k.slab.caches[0].name == "newest"
    assert k.slab.find("kmem_cache").inuse == n + 1
    k.slab.check()


def test_kmem_cache_node_grows_per_node():
    k = FakeKernel(slab="slub", cpus_per_node=(2, 2), pages_per_node=(1 << 13, 1 << 13))
    n = len(k.slab.caches)
    assert k.slab.find("kmem_cache_node").inuse == 2 * n
    k.slab.kmem_cache_create("x", 64)
    assert k.slab.find("kmem_cache_node").inuse == 2 * (n + 1)
    k.slab.check()


# --------------------------------------------------------------------------------------------
# Life cycle of slabs.

def state(k, addr):
    return k.slab._slab_lookup(addr).state


def test_partial_full_partial_empty():
    k = FakeKernel(slab="slub", cpus_per_node=(2,))
    sl = k.slab
    s = sl.kmem_cache_create("t512", 512)                  # 16 objects, 2 pages, min_partial 5
    base_stat = k.slab_pages()
    a = [sl.kmem_cache_alloc(s, cpu=0) for _ in range(16)]
    assert s.slabinfo() == (16, 16, 1, 1) and state(k, a[0]) == FROZEN
    b = sl.kmem_cache_alloc(s, cpu=0)                      # S1 full -> no list, S2 is the cpu slab
    assert state(k, a[0]) == FULL and state(k, b) == FROZEN
    assert s.slabinfo() == (32, 32, 2, 2)                  # cpu-owned free objects count as active
    assert k.slab_pages() - base_stat == 4
    sl.kmem_cache_free(s, a[3])                            # full -> the freeing cpu's partial list
    assert state(k, a[0]) == CPU_PARTIAL
    assert s.slabinfo() == (32, 32, 2, 2)
    assert sl.kmem_cache_shrink(s) == 0                    # nothing empty; both go to node 0
    assert state(k, a[0]) == NODE_PARTIAL and state(k, b) == NODE_PARTIAL
    assert s.slabinfo() == (16, 32, 2, 2)                  # 15 free in S2 + 1 in S1
    # shrink sorted the list: S1 (1 free) before S2 (15 free); the next alloc takes S1 as the
    # cpu slab and moves S2 to the cpu partial list.
    c = sl.kmem_cache_alloc(s, cpu=0)
    assert c == a[3]                                       # LIFO: the freed object comes back
    assert state(k, a[0]) == FROZEN and state(k, b) == CPU_PARTIAL
    assert s.slabinfo() == (32, 32, 2, 2)
    sl.check()
    for x in a + [b]:
        sl.kfree(x)
    assert s.inuse == 0
    assert sl.kmem_cache_shrink(s) == 4                     # both empty slabs, 2 pages each
    assert s.slabinfo() == (0, 0, 0, 0)
    assert k.slab_pages() == base_stat
    sl.check()


def test_empty_slabs_kept_up_to_min_partial_then_freed():
    k = FakeKernel(slab="slub", cpus_per_node=(2,))
    sl = k.slab
    s = sl.kmem_cache_create("t512", 512)                  # min_partial 5, cpu_partial_slabs 7
    objs = [sl.kmem_cache_alloc(s, cpu=0) for _ in range(16 * 7)]
    taken = k.pages_taken()
    for x in objs:                                         # all 7 slabs empty, all cpu-owned
        sl.kfree(x, cpu=0)
    assert s.nr_slabs == 7 and k.pages_taken() == taken
    assert s.slabinfo() == (112, 112, 7, 7)
    node_free = k.node_free(0)
    # flush: cpu slab to node (1 on list), then cpu partials S6..S3 (2..5 on list), S2 and S1
    # are discarded because the node already keeps min_partial; shrink drops the other 5.
    assert sl.kmem_cache_shrink(s) == 14
    assert k.node_free(0) - node_free == 14
    assert k.pages_taken() == taken - 14
    sl.check()


def test_free_into_node_partial_discards_when_enough_kept():
    k = FakeKernel(slab="slub", cpus_per_node=(2,))
    sl = k.slab
    s = sl.kmem_cache_create("t2k", 2048)                   # 16 objs/8 pages, min_partial 5,
    objs = [sl.kmem_cache_alloc(s, cpu=0) for _ in range(16 * 8)]     # cpu_partial_slabs 3
    for i in range(7):                                      # one free in each of S1..S7
        sl.kfree(objs[16 * i], cpu=0)
    # S4 and S7 found the cpu partial list at 3 slabs and flushed it to node 0
    assert len(s.node[0].partial) == 6 and len(s.cpu_partial_list[0]) == 1
    sl.kmem_cache_shrink(s)                                 # S7 joins; S8 is full (no list)
    assert len(s.node[0].partial) == 7 and s.pages == 64
    for i in range(7):
        for j in range(1, 16):
            sl.kfree(objs[16 * i + j], cpu=0)
        # emptied slab i: freed while the node keeps >= 5 partial slabs (7, 6, 5), kept after
        assert s.pages == 64 - 8 * min(i + 1, 3)
    assert len(s.node[0].partial) == 4 and s.pages == 40
    assert s.slabinfo() == (16, 80, 5, 5)
    sl.check()


def test_destroy_refused_while_objects_live():
    k = FakeKernel(slab="slub", cpus_per_node=(2,))
    sl = k.slab
    s = sl.kmem_cache_create("victim", 100)
    x = sl.kmem_cache_alloc(s)
    before = (s.slabinfo(), k.pages_taken(), [c.name for c in sl.caches])
    with pytest.raises(MMError) as e:
        sl.kmem_cache_destroy(s)
    assert e.value.errno == errno.EBUSY
    assert (s.slabinfo(), k.pages_taken(), [c.name for c in sl.caches]) == before
    kc_live = sl.find("kmem_cache").inuse
    sl.kmem_cache_free(s, x)
    sl.kmem_cache_destroy(s)
    assert sl.find("victim") is None
    assert sl.find("kmem_cache").inuse == kc_live - 1
    with pytest.raises(MMError) as e:
        sl.kmem_cache_alloc(s)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(MMError) as e:
        sl.kmem_cache_destroy(sl.find("kmalloc-64"))
    assert e.value.errno == errno.EPERM
    sl.check()
    sl.kmem_cache_create("victim", 100)                     # the name is free again


def test_free_errors_leave_state_alone():
    k = FakeKernel(slab="slub", cpus_per_node=(2,))
    sl = k.slab
    s = sl.kmem_cache_create("c1", 64)
    t = sl.kmem_cache_create("c2", 64)
    x = sl.kmem_cache_alloc(s)
    for bad, code in ((x + 1, errno.EINVAL), (PAGE_OFFSET, errno.EINVAL), (12345, errno.EINVAL)):
        with pytest.raises(MMError) as e:
            sl.kfree(bad)
        assert e.value.errno == code
    with pytest.raises(MMError):
        sl.kmem_cache_free(t, x)                            # not this cache's object
    sl.kfree(x)
    with pytest.raises(MMError) as e:
        sl.kfree(x)                                         # double free
    assert e.value.errno == errno.EINVAL and "double free" in e.value.message
    sl.check()


def test_create_validation():
    k = FakeKernel(slab="slub", cpus_per_node=(2,))
    sl = k.slab
    sl.kmem_cache_create("ok", 8)
    cases = [("ok", 8, 0, 0, errno.EEXIST), ("kmalloc-64", 64, 0, 0, errno.EEXIST),
             ("has space", 8, 0, 0, errno.EINVAL), ("tab\tname", 8, 0, 0, errno.EINVAL),
             ("", 8, 0, 0, errno.EINVAL), ("x" * 256, 8, 0, 0, errno.EINVAL),
             ("zero", 0, 0, 0, errno.EINVAL), ("huge", (4 << 20) + 1, 0, 0, errno.EINVAL),
             ("badalign", 8, 3, 0, errno.EINVAL)]
    n = len(sl.caches)
    for name, size, align, flags, code in cases:
        with pytest.raises(MMError) as e:
            sl.kmem_cache_create(name, size, align, flags)
        assert e.value.errno == code, name
    assert len(sl.caches) == n
    assert sl.kmem_cache_create("y" * 255, 4 << 20).objects == 1          # 4 MiB: order 10, 1 object
    with pytest.raises(MMError):
        parse_slab_flags("SLAB_HWCACHE_ALIGN|SLAB_BOGUS")
    assert parse_slab_flags("SLAB_HWCACHE_ALIGN|SLAB_RECLAIM_ACCOUNT") == SLAB_HWCACHE_ALIGN | SLAB_RECLAIM_ACCOUNT
    sl.check()


def test_reclaimable_cache_accounting():
    k = FakeKernel(slab="slub", cpus_per_node=(2,))
    sl = k.slab
    s = sl.kmem_cache_create("dentry", 192, flags=SLAB_RECLAIM_ACCOUNT)
    before = dict(k.stat[0])
    x = sl.kmem_cache_alloc(s)
    assert k.stat[0]["nr_slab_reclaimable"] - before["nr_slab_reclaimable"] == 1
    assert k.stat[0]["nr_slab_unreclaimable"] == before["nr_slab_unreclaimable"]
    order, gfp, _, _ = k.calls[-1]
    assert gfp & G.__GFP_RECLAIMABLE and gfp & G.__GFP_COMP and order == 0
    sl.kfree(x)


# --------------------------------------------------------------------------------------------
# kmalloc

@pytest.mark.parametrize("size,name", [(1, "kmalloc-8"), (8, "kmalloc-8"), (9, "kmalloc-16"),
                                       (24, "kmalloc-32"), (65, "kmalloc-96"), (96, "kmalloc-96"),
                                       (97, "kmalloc-128"), (100, "kmalloc-128"), (192, "kmalloc-192"),
                                       (193, "kmalloc-256"), (1000, "kmalloc-1k"), (4097, "kmalloc-8k"),
                                       (8192, "kmalloc-8k")])
def test_kmalloc_size_classes(size, name):
    k = FakeKernel(slab="slub", cpus_per_node=(2,))
    x = k.slab.kmalloc(size)
    assert k.slab.cache_of(x).name == name
    k.slab.kfree(x)
    assert k.slab.find(name).inuse == 0


@pytest.mark.parametrize("size,order", [(8193, 2), (16384, 2), (16385, 3), (100000, 5), (4 << 20, 10)])
def test_kmalloc_large_goes_to_the_buddy(size, order):
    k = FakeKernel(slab="slub", cpus_per_node=(2,))
    before = k.stat[0]["nr_slab_unreclaimable"]
    infos = {s.name: s.slabinfo() for s in k.slab.caches}
    x = k.slab.kmalloc(size)
    assert k.slab.cache_of(x) is None
    assert (x - PAGE_OFFSET) % 4096 == 0
    assert k.stat[0]["nr_slab_unreclaimable"] - before == 1 << order
    got_order, gfp, _, _ = k.calls[-1]
    assert got_order == order and gfp & G.__GFP_COMP
    assert {s.name: s.slabinfo() for s in k.slab.caches} == infos      # in no slabinfo line
    assert k.slab.ksize(x) == 4096 << order
    k.slab.check()
    k.slab.kfree(x)
    assert k.stat[0]["nr_slab_unreclaimable"] == before
    with pytest.raises(MMError):
        k.slab.kfree(x)


def test_kmalloc_families_by_gfp():
    k = FakeKernel(slab="slub", cpus_per_node=(2,))
    sl = k.slab
    cases = [(G.GFP_KERNEL, "kmalloc-64"), (G.GFP_KERNEL | G.__GFP_RECLAIMABLE, "kmalloc-rcl-64"),
             (G.GFP_KERNEL | G.GFP_DMA, "dma-kmalloc-64"), (G.GFP_KERNEL_ACCOUNT, "kmalloc-cg-64"),
             (G.GFP_DMA | G.__GFP_RECLAIMABLE | G.__GFP_ACCOUNT, "dma-kmalloc-64"),
             (G.__GFP_RECLAIMABLE | G.__GFP_ACCOUNT, "kmalloc-rcl-64"), (G.GFP_ATOMIC, "kmalloc-64")]
    for gfp, name in cases:
        x = sl.kmalloc(50, gfp)
        assert sl.cache_of(x).name == name, G.format_gfp(gfp)
    assert sl.find("dma-kmalloc-64").allocflags & G.__GFP_DMA
    assert sl.find("kmalloc-rcl-64").allocflags & G.__GFP_RECLAIMABLE
    sl.check()


def test_kmalloc_bad_sizes():
    k = FakeKernel(slab="slub", cpus_per_node=(2,))
    for size in (0, -1, (4 << 20) + 1):
        with pytest.raises(MMError) as e:
            k.slab.kmalloc(size)
        assert e.value.errno == errno.EINVAL
    with pytest.raises(MMError) as e:
        k.slab.kmalloc(0)
    assert "ZERO_SIZE_PTR" in e.value.message


def test_addresses_are_page_offset_based():
    k = FakeKernel(slab="slub", cpus_per_node=(2,))
    s = k.slab.kmem_cache_create("addr", 1000)               # s->size 1000, 16 per order-2 slab
    xs = [k.slab.kmem_cache_alloc(s) for _ in range(5)]
    slab = k.slab._slab_lookup(xs[0])
    assert xs == [PAGE_OFFSET + slab.pfn * 4096 + i * 1000 for i in range(5)]
    assert k.slab.cache_of(xs[4] + 999) is s                 # inside the object, still the slab
    assert k.slab.cache_of(PAGE_OFFSET + (slab.pfn + 3) * 4096) is s      # tail page of the slab


# --------------------------------------------------------------------------------------------
# Node placement

def test_node_placement():
    k = FakeKernel(slab="slub", cpus_per_node=(2, 2), pages_per_node=(1 << 13, 1 << 13))
    sl = k.slab
    s = sl.kmem_cache_create("numa", 256)
    x = sl.kmem_cache_alloc(s, node=1)                      # cpu defaults to node 1's first (2)
    assert sl._slab_lookup(x).node == 1 and s.cpu_slab[2].node == 1
    y = sl.kmem_cache_alloc(s, cpu=3)                       # the cpu's own node
    assert sl._slab_lookup(y).node == 1
    z = sl.kmem_cache_alloc(s)                              # cpu 0 -> node 0
    assert sl._slab_lookup(z).node == 0
    w = sl.kmem_cache_alloc(s, node=1, cpu=0)               # node mismatch on cpu 0
    assert sl._slab_lookup(w).node == 1
    assert sl._slab_lookup(z).state == NODE_PARTIAL        # the old cpu slab went back to node 0
    big = sl.kmalloc(20000, node=1)
    assert k.allocated[(big - PAGE_OFFSET) >> 12].node == 1
    assert k.stat[1]["nr_slab_unreclaimable"] >= 8
    sl.check()


def test_memoryless_node_uses_the_nearest_node():
    k = FakeKernel(slab="slub", cpus_per_node=(2, 2), pages_per_node=(1 << 13, 0))
    sl = k.slab
    assert sl.slab_nodes == [0]
    s = sl.kmem_cache_create("ml", 64)
    x = sl.kmem_cache_alloc(s, cpu=2)                       # a cpu of the memoryless node
    y = sl.kmem_cache_alloc(s, node=1)
    assert sl._slab_lookup(x).node == 0 and sl._slab_lookup(y).node == 0
    with pytest.raises(MMError) as e:
        sl.kmem_cache_alloc(s, node=5)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(MMError):
        sl.kmem_cache_alloc(s, cpu=4)
    sl.check()


def test_enomem_leaves_state_unchanged():
    k = FakeKernel(slab="slub", cpus_per_node=(2,), pages_per_node=(1 << 11,))
    sl = k.slab
    s = sl.kmem_cache_create("hog", 4096)                   # 8 objects per order-3 slab
    got = []
    with pytest.raises(MMError) as e:
        while True:
            got.append(sl.kmem_cache_alloc(s))
    assert e.value.errno == errno.ENOMEM
    sl.check()
    snapshot = (s.slabinfo(), k.pages_taken(), s.inuse)
    with pytest.raises(MMError):
        sl.kmem_cache_alloc(s)
    assert (s.slabinfo(), k.pages_taken(), s.inuse) == snapshot
    for x in got:
        sl.kfree(x)
    sl.kmem_cache_shrink(s)
    assert s.pages == 0
    sl.check()


# --------------------------------------------------------------------------------------------
# Boot profile

def test_apply_boot_spreads_objects():
    k = FakeKernel(slab="slub", cpus_per_node=(2, 2), pages_per_node=(1 << 14, 1 << 14))
    sl = k.slab
    caches = (M.BootCache("dentry", 192, objects=1000, flags=("SLAB_RECLAIM_ACCOUNT",)),
              M.BootCache("kmalloc-64", 64, objects=101),
              M.BootCache("pinned", 1000, objects=40, node=1),
              M.BootCache("TCP", 2304, objects=27, flags=("SLAB_TYPESAFE_BY_RCU", "SLAB_HWCACHE_ALIGN")))
    sl.apply_boot(caches)
    d = sl.find("dentry")
    assert d.inuse == 1000
    per_node = [sum(x.inuse for x in sl._slab_of.values() if x.cache is d and x.node == n) for n in (0, 1)]
    assert per_node == [500, 500]
    assert sl.find("kmalloc-64").inuse == 101
    p = sl.find("pinned")
    assert all(x.node == 1 for x in sl._slab_of.values() if x.cache is p) and p.inuse == 40
    tcp = sl.find("TCP")
    assert (tcp.size, tcp.objects) == (2368, 13) and tcp.inuse == 27
    # dentry: 21 per slab, 500 per node = 23 full slabs + 17 on the cpu slab -> 24 slabs a node
    assert d.slabinfo() == (48 * 21, 48 * 21, 48, 48)
    assert k.stat[0]["nr_slab_reclaimable"] == 24 and k.stat[1]["nr_slab_reclaimable"] == 24
    sl.check()
    with pytest.raises(MMError):
        sl.apply_boot((M.BootCache("kmalloc-64", 100, objects=1),))


# --------------------------------------------------------------------------------------------
# The real Kernel

@pytest.fixture(scope="module")
def server():
    from procsim.mm.kernel import Kernel
    return Kernel(M.load(M.CONFIGS_DIR / "seed-server.yaml"))


def test_real_kernel_geometry_and_boot(server):
    sl = server.slab
    sl.check()
    # 48 CPUs present: min_objects 28
    assert (sl.find("kmalloc-192").objects, 1 << sl.find("kmalloc-192").order) == (42, 2)
    assert (sl.find("kmalloc-1k").objects, 1 << sl.find("kmalloc-1k").order) == (32, 8)
    names = [s.name for s in sl.caches]
    assert names[-2:] == ["kmem_cache_node", "kmem_cache"]
    # every slab page is in the node counters
    for nid in (0, 1):
        pages = sum(1 << x.order for x in sl._slab_of.values() if x.node == nid)
        stat = server.nodes[nid].stat
        assert stat["nr_slab_reclaimable"] + stat["nr_slab_unreclaimable"] == pages + sl.large_pages[nid]


def test_real_kernel_shrink_returns_pages_to_zones(server):
    sl = server.slab
    s = sl.kmem_cache_create("shrinkme", 4096)              # 8 per order-3 slab
    xs = [sl.kmem_cache_alloc(s, node=0) for _ in range(8 * 12)]
    for x in xs:
        sl.kfree(x)
    server.drain_all_pages()
    free_before = sum(z.nr_free for z in server.nodes[0].zones)
    pages = s.pages
    assert pages >= 8
    returned = sl.kmem_cache_shrink(s)
    assert returned == pages and s.pages == 0
    server.drain_all_pages()
    assert sum(z.nr_free for z in server.nodes[0].zones) - free_before == returned
    sl.kmem_cache_destroy(s)
    sl.check()


def test_real_kernel_dma_and_nodes(server):
    sl = server.slab
    x = sl.kmalloc(100, G.GFP_KERNEL | G.GFP_DMA)
    slab = sl._slab_lookup(x)
    assert slab.cache.name == "dma-kmalloc-128" and slab.page.zone.idx == 0
    y = sl.kmalloc(100, node=1)
    assert sl._slab_lookup(y).node == 1
    z = sl.kmalloc(100, cpu=12)                             # cpu 12 is on node 1
    assert sl._slab_lookup(z).node == 1
    for a in (x, y, z):
        sl.kfree(a)
    sl.check()


def test_seed_vm_boot_profile():
    """seed-vm.yaml: seed 000's caches on a 2-CPU, 1-node 6.18 machine."""
    from procsim.mm.kernel import Kernel
    k = Kernel(M.load(M.CONFIGS_DIR / "seed-vm.yaml"))
    sl = k.slab
    sl.check()
    tcp = sl.find("TCP")
    # 2240-byte object + the RCU free pointer, cache-line aligned: 2304, 14 per order-3 slab (seed 000)
    assert (tcp.size, tcp.objects, 1 << tcp.order, tcp.inuse) == (2304, 14, 8, 101)
    assert tcp.slabinfo() == (112, 112, 8, 8)               # ceil(101/14) = 8 slabs, all cpu-full
    dentry = sl.find("dentry")
    assert dentry.inuse == 36613 and dentry.slabinfo()[1] == 1744 * 21     # ceil(36613/21)
    assert sl.find("inode_cache").objects == 12                            # 640 B: 12 per 2 pages
    assert k.nodes[0].stat["nr_slab_reclaimable"] == sum(
        s.pages for s in sl.caches if s.flags & SLAB_RECLAIM_ACCOUNT)
    names = [s.name for s in sl.caches]
    assert names[-55:-53] == ["kmalloc_buckets", "kmalloc-cg-8k"] and names[-1] == "kmem_cache"
    assert names[0] == "TCP"                                 # the last cache the profile creates


def test_seed_server_boot_profile(server):
    sl = server.slab
    assert [s.name for s in sl.caches[:3]] == ["rpc_inode_cache", "xfs_dqtrx", "xfs_dquot"]
    fs = sl.find("fsnotify_mark_connector")
    assert fs.inuse == 129370
    per_node = [sum(x.inuse for x in sl._slab_of.values() if x.cache is fs and x.node == n) for n in (0, 1)]
    assert per_node == [64685, 64685]


def test_ctor_puts_the_free_pointer_after_the_object():
    """calculate_sizes(): a constructed object must survive kmem_cache_free, so the free pointer
    goes after it.  radix_tree_node (576 bytes, radix_tree_node_ctor) is 584 bytes, 14 to an
    order-1 slab, on the real 6.1 kernel (tests/data/oracle); without a ctor it would be 576
    with the pointer at 576 / 2 = 288."""
    s = FakeKernel(slab="slub", cpus_per_node=(2,)).slab
    plain = s.kmem_cache_create("plain_576", 576, 0, SLAB_RECLAIM_ACCOUNT)
    built = s.kmem_cache_create("radix_tree_node", 576, 0, SLAB_RECLAIM_ACCOUNT, ctor="radix_tree_node_ctor")
    assert (plain.size, plain.offset) == (576, 288)
    assert (built.size, built.offset, built.ctor) == (584, 576, "radix_tree_node_ctor")


def test_freeptr_offset_keeps_an_rcu_cache_pointer_inside():
    """6.18's kmem_cache_args.freeptr_offset: a TYPESAFE_BY_RCU cache names a word of its object
    for the free pointer (vm_area_struct), instead of growing by 8 bytes."""
    s = FakeKernel(slab="slub", cpus_per_node=(2,)).slab
    rcu = s.kmem_cache_create("rcu_176", 176, 0, SLAB_TYPESAFE_BY_RCU)
    named = s.kmem_cache_create("vma_176", 176, 0, SLAB_TYPESAFE_BY_RCU, freeptr_offset=64)
    assert (rcu.size, rcu.offset) == (184, 176)
    assert (named.size, named.offset) == (176, 64)
    for bad in (dict(flags=0, freeptr_offset=64), dict(flags=SLAB_TYPESAFE_BY_RCU, freeptr_offset=172),
                dict(flags=0, ctor="not a name")):
        with pytest.raises(MMError) as e:
            s.kmem_cache_create("bad", 176, 0, **bad)
        assert e.value.errno == errno.EINVAL
    assert s.find("bad") is None
