"""The buddy allocator, driven directly; expected values are worked out by hand in comments."""
import errno
from math import isqrt

import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from procsim.mm import gfp as G
from procsim.mm.buddy import MIGRATE_UNMOVABLE as U, MIGRATE_MOVABLE as M
from procsim.mm.check import check
from procsim.mm.errors import MMError
from procsim.testing import boot

GFP_RECLAIMABLE = G.GFP_KERNEL | G.__GFP_RECLAIMABLE


def kernel(name, **kw):
    kw.setdefault("slab", False)
    return boot(name, **kw)


def free_table(z, mt):
    return [z.free_count(o, mt) for o in range(11)]


def drain_type(z, mt):
    """Take every free block of one migratetype off the lists (as if allocated)."""
    taken = []
    for q in range(10, -1, -1):
        while z.free_count(q, mt):
            taken.append((z.rmqueue_smallest(q, mt), q))
    return taken


# ---- tiny: DMA32 [4096, 16384) ----------------------------------------------------------------
# memblock takes the kernel image [4096, 5120), NODE_DATA [16341, 16384) (43 pages), the memmap
# [15360, 15872) (one 128 MiB section: 512 pages, 2 MiB aligned), the per-cpu first
# chunk (2 CPUs: 2 units of 256 pages in a 2 MiB atom at [14848, 15360), each keeping 62 pages:
# [14848, 14910) and [15104, 15166)), then the dentry hash (16128 kernel pages / 2 -> 8192
# buckets x 8 bytes = 16 pages, [16325, 16341)) and the inode hash (4096 x 8 = 8 pages,
# [16317, 16325)).  The buddy gets [5120, 14848), [14910, 15104), [15166, 15360), [15872, 16317).
TINY_FREE = [1, 2, 1, 1, 1, 1, 2, 3, 1, 1, 9]
# [5120, 14848): nine order-10 blocks, then order 9 at 14336
# [14910, 15104) and [15166, 15360): order 1, 6, 7 each (14910, 14912, 14976 / 15166, 15168, 15232)
# [15872, 16317): orders 8 (15872), 7 (16128), 5 (16256), 4 (16288), 3 (16304), 2 (16312), 0 (16316)


def test_tiny_boot_free_lists():
    z = kernel("tiny").zones[1]
    assert free_table(z, M) == TINY_FREE
    assert z.nr_free == 9 * 1024 + 512 + 2 * 194 + 445 == z.managed == 10561
    assert z.pageblock_counts() == [0, 24, 0, 0, 0]          # 12288 pages / 512, all Movable


def test_split_and_merge_step_by_step():
    k = kernel("tiny")
    z = k.zones[1]
    before = free_table(z, M)
    page = k.alloc_pages(4, G.GFP_HIGHUSER_MOVABLE)          # not a pcp order: straight to the buddy
    assert (page.pfn, page.order, page.zone) == (16288, 4, z)   # the order-4 list's own block
    # the order-4 list is empty now: the next request splits the order-5 block at 16256, its
    # upper half 16272 goes to the order-4 list and the caller gets 16256
    page2 = k.alloc_pages(4, G.GFP_HIGHUSER_MOVABLE)
    assert (page2.pfn, page2.order) == (16256, 4)
    assert free_table(z, M) == [1, 2, 1, 1, 1, 0, 2, 3, 1, 1, 9]
    assert z.is_free_block(16272, 4)
    assert z.nr_free == z.managed - 32
    k.free_pages(page2)                                       # buddy 16272 is free: back to order 5
    assert z.is_free_block(16256, 5)
    k.free_pages(page)                                        # buddy 16304 is order 3: no merge
    assert free_table(z, M) == before and z.nr_free == z.managed
    assert z.is_free_block(16288, 4)
    check(k)


def test_unmovable_request_claims_a_whole_movable_block():
    k = kernel("tiny")
    z = k.zones[1]
    page = k.alloc_pages(0, G.GFP_KERNEL)
    # no Unmovable block anywhere: claim from order 10 down; the Movable list head is the
    # lowest order-10 block (5120); both its pageblocks become Unmovable and it is split to order 0
    assert page.pfn == 5120
    assert z.pageblock_counts() == [2, 22, 0, 0, 0]
    assert free_table(z, U) == [1] * 10 + [0]
    assert free_table(z, M) == TINY_FREE[:10] + [8]
    check(k)


def test_claim_below_pageblock_order_moves_the_block_and_boosts():
    k = kernel("tiny")
    z = k.zones[1]
    k.alloc_pages(0, G.GFP_KERNEL)                            # block 5120..6143 Unmovable, as above
    drain_type(z, M)
    z.rmqueue_smallest(9, U)                                  # the free pageblock 5632 goes away
    # a Movable order-4 request now finds Unmovable order 8 (5376) as the largest fallback; its
    # pageblock [5120, 5632) has 511 free pages >= 256, so the whole block turns Movable
    pfn = z.rmqueue_claim(4, M, nofragment=False, boost_factor=15000, kswapd=True)
    assert pfn == 5136                                        # the order-4 remainder of the split
    assert z.get_pageblock_migratetype(5120) == M
    assert z.get_pageblock_migratetype(5632) == U
    assert free_table(z, M)[:9] == [1, 1, 1, 1, 0, 1, 1, 1, 1]
    assert z.boost == min(512, max(512, z._watermark[2] * 15000 // 10000))


def test_movable_small_order_steals_without_changing_the_block():
    k = kernel("tiny")
    z = k.zones[1]
    k.alloc_pages(0, G.GFP_KERNEL)
    drain_type(z, M)
    for o in (9, 8, 7):                                        # leave 127 free pages in block 5120
        z.rmqueue_smallest(o, U)
    assert z.rmqueue_claim(0, M, nofragment=False, boost_factor=15000, kswapd=True) == -1
    pfn = z.rmqueue_steal(0, M)
    assert pfn == 5121                                        # the Unmovable order-0 block
    assert z.get_pageblock_migratetype(5120) == U             # stealing leaves the type alone
    assert free_table(z, U)[:7] == [0, 1, 1, 1, 1, 1, 1]


def test_3_10_has_no_watermark_boost():
    """Watermark boosting came with 5.0: on the 3.10 profile the same claim below pageblock
    order as above moves the block and raises no mark (the factor is 0, no sysctl file)."""
    from procsim.testing import CONFIGS
    from procsim.mm import sysctl
    k = kernel("tiny", text=(CONFIGS / "tiny.yaml").read_text() + 'kernel: "3.10"\n')
    assert k.profile.version == "3.10" and k.watermark_boost_factor == 0
    assert "watermark_boost_factor" not in sysctl.names("3.10") and "watermark_boost_factor" in sysctl.names("5.4")
    z = k.zones[1]
    k.alloc_pages(0, G.GFP_KERNEL)
    drain_type(z, M)
    z.rmqueue_smallest(9, U)
    pfn = k._rmqueue_typed(z, 4, M, G.ALLOC_WMARK_LOW | G.ALLOC_KSWAPD, [0])
    assert pfn >= 0 and z.get_pageblock_migratetype(pfn) == M
    assert z.boost == 0 and not z.boosted_wmark


def test_a_stolen_page_boosts_the_watermarks_before_6_15():
    """steal_suitable_fallback() (6.1, 5.4) boosts the watermarks on every fallback below
    pageblock order, a movable page stolen from an unmovable block too; 6.15+ boosts only when
    it tries to claim the block (try_to_claim_block), so the same steal on 6.18 leaves them."""
    from procsim.mm.profile import PROFILES
    assert PROFILES["6.1"].steal_boosts and PROFILES["5.4"].steal_boosts
    assert not PROFILES["6.18"].steal_boosts and not PROFILES["3.10"].steal_boosts
    for version, boosted in (("6.18", 0), ("6.1", 512)):
        k = kernel("tiny")
        k.profile = PROFILES[version]                          # the allocator asks the profile
        z = k.zones[1]
        k.alloc_pages(0, G.GFP_KERNEL)
        drain_type(z, M)
        for o in (9, 8, 7, 6, 5, 4):                           # no block a claim would try: orders < 4 left
            z.rmqueue_smallest(o, U)
        assert not any(z.free_count(o, mt) for o in range(4, 11) for mt in range(3))
        assert z.boost == 0
        pfn = k._rmqueue_typed(z, 0, M, G.ALLOC_WMARK_LOW | G.ALLOC_KSWAPD, [0])
        assert pfn == 5121 and z.get_pageblock_migratetype(5120) == U
        assert z.boost == boosted and z.boosted_wmark == bool(boosted), version


# ---- watermarks, protection, pagesets, thresholds, recomputed in the test ----------------------

def fls(x):
    return x.bit_length()


@pytest.mark.parametrize("name", ["seed-vm", "seed-server", "tiny"])
def test_watermarks_protection_pagesets(name):
    k = kernel(name)
    zones = k.zones
    lowmem = sum(z.managed for z in zones if z.idx != 3)
    populated_low = sum(1 for z in zones if z.present and z.idx <= 2)
    sqrt_rule = min(max(isqrt(lowmem * 4 * 16), 128), 262144)

    def wmarks(min_kb):
        out = []
        for z in zones:
            tmp = (min_kb // 4) * z.managed // lowmem
            wmin = min(max(z.managed // 1024, 32), 128) if z.idx == 3 else tmp
            step = max(tmp // 4, z.managed * 10 // 10000)
            out.append([wmin, wmin + step, wmin + 2 * step, wmin + 3 * step])
        return out

    first = wmarks(sqrt_rule)
    buffer_pages = sum(max(0, z.managed - w[2]) for z, w in zip(zones, first, strict=False) if z.idx <= 2)
    thp = min(5632 * populated_low, buffer_pages // 20) * 4
    min_kb = max(sqrt_rule, thp)
    assert k.min_free_kbytes == min_kb
    assert [[z.wmark_min, z.wmark_low, z.wmark_high, z.wmark_promo] for z in zones] == wmarks(min_kb)

    ratio = (256, 256, 32, 0, 0)
    for node in k.nodes:
        for i, z in enumerate(node.zones):
            want = [0] * 5
            if ratio[i] and z.managed:
                for j in range(i + 1, 5):
                    want[j] = sum(u.managed for u in node.zones[i + 1:j + 1]) // ratio[i]
            assert z.lowmem_reserve == want, (z, z.lowmem_reserve, want)

    for z in zones:
        if not z.present:
            continue
        b = max(min(z.managed // 1024, 256) // 4, 1)
        b = max(1, (1 << fls(b + b // 2) - 1) - 1)
        ncpu = len(k.nodes[z.node].cpus)
        pcp = z.pcp[0]
        assert (pcp.batch, pcp.high_min, pcp.high_max) == (
            b, max(z.wmark_low // ncpu, 4 * b), max(z.managed // 8 // ncpu, 4 * b))
        assert z.stat_threshold == min(125, 2 * fls(k.nr_cpu_ids) * (1 + fls(z.managed >> 15)))


def test_seed_vm_known_values():
    z = kernel("seed-vm").zones
    # 2 populated zones -> THP raise 2 * 5632 pages = 45056 kB; DMA 3840 managed: batch 1, high_min 38+
    assert kernel("seed-vm").min_free_kbytes == 45056
    assert z[0].pcp[1].batch == 1 and z[1].pcp[1].batch == 63
    assert z[0].lowmem_reserve == [0, z[1].managed // 256] + [z[1].managed // 256] * 3


# ---- zonelists and NUMA counters ---------------------------------------------------------

def test_zonelists_follow_distance():
    k = kernel("seed-server")
    names = lambda zl: [(z.node, z.name) for z in zl]
    assert names(k.zonelists[0]) == [(0, "Normal"), (0, "DMA32"), (0, "DMA"), (1, "Normal")]
    assert names(k.zonelists[1]) == [(1, "Normal"), (0, "Normal"), (0, "DMA32"), (0, "DMA")]
    assert names(k.zonelists_thisnode[1]) == [(1, "Normal")]
    big = kernel("big-4s-1t")
    # find_next_best_node(): val = (distance + (n < local) + 1 for CPUs) * MAX_NUMNODES + node_load[n],
    # lowest val wins, ties to the lower id; node_load[] is shared by all nodes' builds and the
    # first node of each new distance group gets +1.  Worked by hand, nodes 0..3 in turn:
    #   0: 2 (20+0+1=21), then 1 and 3 tie at 22 -> 1, 3.        node_load = [0, 1, 1, 0]
    #   1: 3 (20+0+1=21), then 2 (21+0+1=22) before 0 (21+1+1=23).  node_load = [0, 1, 2, 1]
    #   2: 0 (20+1+1=22, load 0) before 3 (21+0+1=22, load 1), then 1.  node_load = [1, 1, 2, 2]
    #   3: 1 (20+1+1=22), then 0 (23, load 1) before 2 (23, load 2).
    assert big.node_order == [[0, 2, 1, 3], [1, 3, 2, 0], [2, 0, 3, 1], [3, 1, 0, 2]]


TWO_NODE = """
sockets: [{cores: 1, threads: 2}, {cores: 1, threads: 2}]
dimms:
  - {socket: 0, size: 1GiB}
  - {socket: 1, size: 256MiB}
"""


def two_node():
    return boot(text=TWO_NODE, slab=False)


def numa(z):
    return dict(z.numa)


def test_numa_counters_local_remote_miss_foreign():
    k = two_node()
    n0 = k.nodes[0].zones[1]                                   # DMA32 of node 0 (1 GiB, all below 4G)
    n1 = k.nodes[1].zones[1]                                   # DMA32 of node 1: it follows node 0 at 1 GiB
    k.alloc_pages(0, G.GFP_KERNEL, node=0, cpu=0)
    assert numa(n0)["numa_hit"] == 1 and numa(n0)["numa_local"] == 1
    k.alloc_pages(0, G.GFP_KERNEL, node=1, cpu=0)              # node 1 memory for a node 0 cpu
    assert numa(n1)["numa_hit"] == 1 and numa(n1)["numa_other"] == 1
    # fill node 1 until its zone is below the low watermark; the next request spills to node 0
    while True:
        before = n0.numa["numa_miss"]
        p = k.alloc_pages(10, G.GFP_HIGHUSER_MOVABLE, node=1, cpu=1)
        if p.node == 0:
            break
    assert n0.numa["numa_miss"] == before + 1
    assert n1.numa["numa_foreign"] == 1
    assert n0.numa["numa_other"] >= 1                          # cpu 1 is node 1's first thread
    # __GFP_THISNODE never leaves node 1: it takes node 1's last blocks down to the min mark,
    # then fails, and the failure changes nothing
    for _ in range(64):
        snap = digest(k)
        try:
            p = k.alloc_pages(10, G.GFP_HIGHUSER_MOVABLE | G.__GFP_THISNODE, node=1, cpu=1)
        except MMError as e:
            assert e.errno == errno.ENOMEM
            break
        assert p.node == 1
    else:
        pytest.fail("__GFP_THISNODE kept allocating")
    assert digest(k) == snap
    check(k)


def digest(k):
    out = []
    for z in k.zones:
        out.append((z.nr_free, tuple(map(tuple, z._nr)), tuple(sorted(z._free.items())),
                    tuple(tuple(r) for rs in z._runs for r in rs), bytes(z.pageblock_mt),
                    tuple(sorted(z.numa.items())), tuple((p.count, tuple(map(tuple, p.lists))) for p in z.pcp),
                    tuple(sorted(z.allocated))))
    # the allocator's own events; reclaim's (allocstall, pageoutrun, pgscan) may move on a failure
    return out, tuple(sorted((e, v) for e, v in k.vm_events.items() if e.startswith("pgalloc") or e == "pgfree"))


def test_enomem_at_the_watermark_leaves_state_unchanged_and_atomic_dips_below():
    k = kernel("tiny")
    got = []
    with pytest.raises(MMError) as e:
        while True:
            snap = digest(k)
            got.append(k.alloc_pages(9, G.GFP_KERNEL))
    assert e.value.errno == errno.ENOMEM
    assert digest(k) == snap
    z = k.zones[1]
    # the failed request saw free - 511 <= min + lowmem_reserve on every zone
    assert all(zz.nr_free - 511 <= zz.wmark_min + zz.lowmem_reserve[2] or zz.nr_free_order(9) + zz.nr_free_order(10) == 0
               for zz in k.zones if zz.managed)
    while True:                                                # GFP_KERNEL order 0 down to min
        try:
            k.alloc_pages(0, G.GFP_KERNEL)
        except MMError:
            break
    # order 0 fails once free <= min + lowmem_reserve[ZONE_NORMAL] on every zone (DMA keeps its reserve)
    assert all(zz.nr_free <= zz.wmark_min + zz.lowmem_reserve[2] for zz in k.zones if zz.managed)
    # GFP_ATOMIC may use half of min, and a quarter of the rest (ALLOC_MIN_RESERVE|ALLOC_NON_BLOCK):
    # __zone_watermark_ok() does min -= min / 2, then min -= min / 4.  The order-9 fill's
    # fallbacks boosted DMA32 by a pageblock, and zone_watermark_fast() lets an order-0
    # ALLOC_MIN_RESERVE request retry against the unboosted min
    assert z.boost == 512
    unboosted = z.wmark_min - z.boost
    atomic_min = unboosted - unboosted // 2
    atomic_min -= atomic_min // 4                               # DMA32: 514 -> 257 -> 193
    assert atomic_min == 193
    refills = []                                                # DMA32's free count before each refill
    while True:
        before = z.nr_free
        try:
            k.alloc_pages(0, G.GFP_ATOMIC)
        except MMError:
            break
        if z.nr_free < before:
            refills.append(before)
    # atomic refills passed the check with free at or below min, which GFP_KERNEL could not ...
    assert any(b <= z.wmark_min for b in refills)
    # ... every one of them above the atomic line, and the final failure below it
    assert all(b > atomic_min for b in refills) and z.nr_free <= atomic_min
    check(k)


def test_double_free_is_an_error_not_a_corruption():
    k = kernel("tiny")
    p = k.alloc_pages(2, G.GFP_KERNEL)
    k.free_pages(p)
    snap = digest(k)
    with pytest.raises(MMError) as e:
        k.free_pages(p)
    assert e.value.errno == errno.EINVAL and digest(k) == snap


def test_bad_arguments():
    k = kernel("tiny")
    for args, kw in [((11,), {}), ((-1,), {}), ((0,), {"node": 3}), ((0,), {"cpu": 9})]:
        with pytest.raises(MMError) as e:
            k.alloc_pages(*args, **kw)
        assert e.value.errno == errno.EINVAL
    with pytest.raises(MMError):
        G.parse_gfp("GFP_KERNAL")
    assert G.parse_gfp("GFP_KERNEL|__GFP_THISNODE") == G.GFP_KERNEL | G.__GFP_THISNODE


def test_pcp_pages_are_not_free_and_drain_returns_them():
    k = kernel("seed-vm")
    z = k.zones[1]
    k.alloc_pages(0, G.GFP_KERNEL, cpu=1)
    pcp = z.pcp[1]
    assert pcp.count > 0                                       # a batch was pulled, one handed out
    assert z.nr_free == z.managed - pcp.count - 1
    k.drain_all_pages()
    assert pcp.count == 0 and z.nr_free == z.managed - 1
    check(k)


def test_vm_events_count_pages_and_numa_counts_calls():
    k = kernel("seed-vm")
    base = dict(k.vm_events)
    assert base["pgfree"] == sum(z.managed for z in k.zones)  # boot frees every managed page
    p = k.alloc_pages(3, G.GFP_KERNEL)
    assert k.vm_events["pgalloc_dma32"] - base["pgalloc_dma32"] == 8
    assert p.zone.numa["numa_hit"] == 1
    k.free_pages(p)
    assert k.vm_events["pgfree"] - base["pgfree"] == 8


# ---- property test ---------------------------------------------------------------------

OPS = st.lists(st.tuples(st.sampled_from(["alloc", "free"]),
                         st.sampled_from([0, 0, 1, 2, 3, 4, 9, 10]),
                         st.sampled_from([G.GFP_KERNEL, G.GFP_HIGHUSER_MOVABLE, GFP_RECLAIMABLE, G.GFP_ATOMIC,
                                          G.GFP_DMA32, G.GFP_DMA]),
                         st.integers(0, 1), st.integers(0, 10 ** 6)), max_size=120)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS)
def test_random_alloc_free_keeps_every_invariant(ops):
    k = kernel("tiny")
    live = []
    for op, order, gfp, cpu, pick in ops:
        if op == "free" and live:
            k.free_pages(live.pop(pick % len(live)))
        else:
            try:
                live.append(k.alloc_pages(order, gfp, cpu=cpu))
            except MMError as e:
                assert e.errno == errno.ENOMEM
        check(k)
    for p in live:
        k.free_pages(p)
    k.drain_all_pages()
    check(k)
    assert all(z.nr_free == z.managed for z in k.zones)       # everything merges back


def test_drop_slab_counts_the_event_and_returns_empty_slabs():
    k = kernel("seed-vm", slab=True, boot=False)
    cache = k.slab.kmem_cache_create("drop_probe", 256)
    objs = [k.slab.kmem_cache_alloc(cache, G.GFP_KERNEL) for _ in range(16 * 8)]   # 8 full 1-page slabs
    for a in objs:
        k.slab.kmem_cache_free(cache, a)
    before = k.nr_free_pages + sum(z.pcp_count() for z in k.zones)
    kept = cache.slabinfo()[3]
    # SLUB keeps the empty slabs kmem_cache_free left on the cpu and node partial lists (up to
    # min_partial on a node); drop_slab() runs only the shrinkers (the kernel's drop_slab_node
    # calls shrink_slab and nothing else), so they stay until kmem_cache_shrink
    assert kept >= 1
    assert k.drop_slab() == 0 and k.vm_events["drop_slab"] == 1 and cache.slabinfo()[3] == kept
    assert k.nr_free_pages + sum(z.pcp_count() for z in k.zones) == before
    freed = k.slab.kmem_cache_shrink(cache)                    # /sys/kernel/slab/*/shrink: they go
    assert freed == kept and cache.slabinfo()[3] == 0
    check(k)
