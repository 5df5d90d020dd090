"""Random create/alloc/free/shrink/destroy sequences keep SLUB's books balanced.

After every step: slab.check() (per-slab counts vs free lists, list membership, node
counters), plus an outside model: live objects per cache, the pages the fake buddy has
handed out equal the slab + large-kmalloc pages, and those equal the node counters.
"""
from __future__ import annotations

import errno

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from procsim.mm import gfp as G
from procsim.mm.errors import MMError
from procsim.mm.slub import SLAB_HWCACHE_ALIGN, SLAB_RECLAIM_ACCOUNT, SLAB_TYPESAFE_BY_RCU

from procsim.testing import FakeKernel

FLAGS = st.sampled_from([0, SLAB_HWCACHE_ALIGN, SLAB_RECLAIM_ACCOUNT, SLAB_TYPESAFE_BY_RCU | SLAB_HWCACHE_ALIGN])
GFPS = st.sampled_from([G.GFP_KERNEL, G.GFP_ATOMIC, G.GFP_KERNEL | G.__GFP_RECLAIMABLE,
                        G.GFP_KERNEL | G.GFP_DMA, G.GFP_KERNEL_ACCOUNT])
OPS = st.lists(st.one_of(
    st.tuples(st.just("create"), st.integers(1, 9000), FLAGS),
    st.tuples(st.just("alloc"), st.integers(0, 7), st.integers(1, 40), st.sampled_from([None, 0, 1]),
              st.sampled_from([None, 0, 1, 2, 3])),
    st.tuples(st.just("kmalloc"), st.integers(1, 20000), GFPS, st.sampled_from([None, 0, 1])),
    st.tuples(st.just("free"), st.integers(0, 10 ** 6), st.integers(1, 40), st.sampled_from([None, 0, 3])),
    st.tuples(st.just("shrink"), st.integers(0, 7)),
    st.tuples(st.just("destroy"), st.integers(0, 7)),
), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS)
def test_random_sequences_keep_books_balanced(ops):
    k = FakeKernel(slab="slub", cpus_per_node=(2, 2), pages_per_node=(1 << 12, 1 << 11))
    sl = k.slab
    made = []                                 # caches this test created (may be destroyed)
    live: dict[int, object] = {}              # address -> cache (None for large kmalloc)
    counter = 0
    for op in ops:
        kind = op[0]
        try:
            if kind == "create":
                counter += 1
                made.append(sl.kmem_cache_create(f"c{counter}", op[1], flags=op[2]))
            elif kind == "alloc" and made:
                s = made[op[1] % len(made)]
                if sl.find(s.name) is s:
                    for _ in range(op[2]):
                        live[sl.kmem_cache_alloc(s, node=op[3], cpu=op[4])] = s
            elif kind == "kmalloc":
                x = sl.kmalloc(op[1], op[2], node=op[3])
                live[x] = sl.cache_of(x)
            elif kind == "free" and live:
                addrs = sorted(live)
                for i in range(min(op[2], len(addrs))):
                    x = addrs[(op[1] + i * 7919) % len(addrs)]
                    if x in live:
                        sl.kfree(x, cpu=op[3])
                        del live[x]
            elif kind == "shrink" and made:
                s = made[op[1] % len(made)]
                if sl.find(s.name) is s:
                    pages = s.pages
                    got = sl.kmem_cache_shrink(s)
                    assert got == pages - s.pages >= 0
                    assert all(x.inuse for n in s.node if n for x in n.partial)   # no empty slab left
            elif kind == "destroy" and made:
                s = made[op[1] % len(made)]
                if sl.find(s.name) is s:
                    busy = any(c is s for c in live.values())
                    try:
                        sl.kmem_cache_destroy(s)
                        assert not busy
                    except MMError as e:
                        assert busy and e.errno == errno.EBUSY
        except MMError as e:
            assert e.errno == errno.ENOMEM, e.message            # the small fake can run out
        sl.check()
        for s in sl.caches:
            if s in made:
                assert s.inuse == sum(1 for c in live.values() if c is s)
            active, num, aslabs, nslabs = s.slabinfo()
            assert aslabs == nslabs == s.nr_slabs and 0 <= s.inuse <= active <= num
        assert k.pages_taken() == k.slab_pages() == \
            sum(1 << x.order for x in sl._slab_of.values()) + sum(sl.large_pages)
    for x in list(live):
        sl.kfree(x)
    for s in made:
        if sl.find(s.name) is s:
            sl.kmem_cache_destroy(s)
    sl.check()
