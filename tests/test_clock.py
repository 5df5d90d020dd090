"""The simulated clock and the deferred work on it: jiffies, sleep ordering, the vmstat
worker (decay_pcp_high, remote pageset expiry), kswapd taking back a boost, /proc/uptime,
and the shape of the allocator's slow path."""
import errno

import pytest

from procsim.mm import gfp as G
from procsim.mm.buddy import MIGRATE_MOVABLE as M, MIGRATE_UNMOVABLE as U
from procsim.mm.errors import MMError
from procsim.views import uptime
from procsim.testing import boot

SEC = 1_000_000_000


def tiny(**kw):
    kw.setdefault("slab", False)
    return boot("tiny", **kw)


# ---- the clock ------------------------------------------------------------------------------

def test_boot_ends_at_one_minute_of_uptime():
    k = tiny()
    assert k.now_ns == 60 * SEC
    # INITIAL_JIFFIES = (unsigned int)(-300 * 250) = 2**32 - 75000 = 4294892296; + 60 s * 250
    assert k.jiffies == 4294892296 + 15000


def test_tick_is_one_jiffy_and_sleep_adds_up():
    k = tiny()
    j = k.jiffies
    k.tick()
    assert k.now_ns == 60 * SEC + 4_000_000 and k.jiffies == j + 1
    k.sleep(1_996_000_000)
    assert k.now_ns == 62 * SEC and k.jiffies == j + 500


def test_sleep_rejects_bad_durations_and_leaves_the_clock():
    k = tiny()
    for bad in (-1, 1.5, True, "1"):
        with pytest.raises(MMError) as e:
            k.sleep(bad)
        assert e.value.errno == errno.EINVAL
    assert k.now_ns == 60 * SEC


def test_deferred_work_runs_in_clock_order_at_its_own_time():
    k = tiny()
    ran = []

    def work(name):
        ran.append((name, k.now_ns - 60 * SEC))
    k.queue_delayed_work("c", 10, work, "c")           # 10 jiffies = 40 ms
    k.queue_delayed_work("a", 2, work, "a")            # 8 ms
    k.queue_delayed_work("b", 10, work, "b")           # same time as c, queued after it
    assert not k.queue_delayed_work("a", 1, work, "a2")   # already pending: not queued twice
    k.sleep(20_000_000)                                # 20 ms: only a is due
    assert ran == [("a", 8_000_000)]
    k.sleep(30_000_000)
    assert ran == [("a", 8_000_000), ("c", 40_000_000), ("b", 40_000_000)]
    assert k.now_ns == 60 * SEC + 50_000_000


# ---- the vmstat worker ----------------------------------------------------------------------

def test_decay_pcp_high_over_seconds_follows_the_formula():
    k = tiny()
    z = k.zones[1]                                     # DMA32, the only zone with memory
    pcp = z.pcp[0]
    pages = [k.alloc_pages(0, G.GFP_KERNEL, cpu=0) for _ in range(3000)]
    for p in pages:
        k.free_pages(p)
    high, count, batch, high_min = pcp.high, pcp.count, pcp.batch, pcp.high_min
    assert high > high_min and count > 0              # the frees pushed high up
    expect = []
    for _ in range(12):
        # decay_pcp_high(): high = max(count - (batch << 5), high - high / 8, high_min);
        # whatever the list holds above the new high goes back to the buddy
        if high > high_min:
            high = max(count - (batch << 5), high - (high >> 3), high_min)
        count = min(count, high)
        expect.append((high, count))
    got = []
    free0, count0 = z.nr_free, pcp.count
    for _ in range(12):
        k.sleep(SEC)
        got.append((pcp.high, pcp.count))
    assert got == expect
    assert z.nr_free == free0 + count0 - got[-1][1]      # what left the list is back in the buddy


def test_remote_pageset_drains_after_three_idle_intervals():
    k = boot("seed-server", slab=False)
    remote = k.zonelists[1][0]                         # node 1's Normal zone
    assert remote.node == 1 and k.cpu_node[0] == 0
    pcp = remote.pcp[0]                                # cpu 0 (node 0) using node 1's zone
    assert pcp.count == 0
    k.free_pages(k.alloc_pages(0, G.GFP_KERNEL, node=1, cpu=0))
    held = pcp.count
    assert 0 < held <= pcp.batch and held < pcp.high_min   # one batch; the decay frees none of it
    free_before = remote.nr_free
    k.sleep(2 * SEC)                                   # fold (expire = 3), then 2, then 1
    assert pcp.count == held
    k.sleep(SEC)                                       # 0: drain_zone_pages(), up to a batch
    assert pcp.count == 0 and remote.nr_free == free_before + held


def test_local_pageset_is_never_drained_by_expiry():
    k = tiny()
    z = k.zones[1]
    k.free_pages(k.alloc_pages(0, G.GFP_KERNEL, cpu=0))
    held = z.pcp[0].count
    assert 0 < held <= z.pcp[0].high_min
    k.sleep(30 * SEC)
    assert z.pcp[0].count == held


@pytest.mark.parametrize("config", ["big-4s-1t", "seed-server"])
def test_an_idle_day_changes_nothing_and_is_skipped(config):
    # seed-server keeps two vmstat_update works requeueing forever (a DMA pageset's high is
    # stuck at 5 over high_min 4: 5 - 5/8 = 5), as the kernel does; runs that change nothing
    # are skipped in one step, so the day is 3 items moved, not 260000 runs; each node's
    # kcompactd checks every 500 ms and, finding nothing to do, is skipped the same way
    k = boot(config)
    kcompactd = [w[2] for w in k._work if w[2][0] == "kcompactd"]
    assert kcompactd == [("kcompactd", n.id) for n in k.nodes if n.has_memory][:len(kcompactd)]
    assert len(kcompactd) == sum(n.has_memory for n in k.nodes)
    # + the load average's 5 s sample (calc_load), folded at once over the idle day too
    assert len(k._work) - len(kcompactd) == (4 if config == "seed-server" else 2)
    state = [(p.high, p.count, p.expire) for z in k.zones for p in z.pcp]
    runs, refresh = [], k.refresh_cpu_vm_stats
    k.refresh_cpu_vm_stats = lambda cpu: runs.append(cpu) or refresh(cpu)
    k.sleep(86400 * SEC)
    assert k.now_ns == (60 + 86400) * SEC
    assert [(p.high, p.count, p.expire) for z in k.zones for p in z.pcp] == state
    assert len(runs) < 10


def test_skipping_idle_runs_changes_no_byte():
    """The same commands and sleeps with the idle fast-forward and without it."""
    from procsim.views import files

    def run(skip):
        k = boot("seed-server")
        if not skip:
            k._fast_forward_idle = lambda: None
        out, pages = [], []
        for i in range(60):
            node, cpu = i % 2, (i * 7) % k.nr_cpu_ids
            if i % 3 == 2 and pages:
                k.free_pages(pages.pop(0))
            else:
                pages.append(k.alloc_pages(i % 4, G.GFP_KERNEL, node=node, cpu=cpu))
            k.sleep((i % 5) * 900_000_000 + (i % 7) * 4_000_000)
            if i % 10 == 0:
                out.append(b"".join(v.render(k) for n, v in sorted(files(k.machine).items())
                                    if not n.startswith("sys/")))
        return out
    assert run(True) == run(False)


# ---- kswapd and the watermark boost ---------------------------------------------------------

def boosted_tiny():
    """A fallback below pageblock order boosts DMA32: Unmovable has no free blocks and
    Movable only blocks below order 9, so an Unmovable refill claims a Movable order-8 block."""
    k = tiny()
    z = k.zones[1]
    k.drain_all_pages()                              # nothing Unmovable left on a pcp list
    for q in range(10, -1, -1):                      # no Unmovable blocks at all
        while z.free_count(q, U):
            z.rmqueue_smallest(q, U)
    for q in (10, 9):                                # Movable blocks cut to order 8, every other
        while z.free_count(q, M):                    # one kept, so they cannot merge back
            pfn = z.rmqueue_smallest(q, M)
            for half in range(0, 1 << q, 512):
                z.free_one_page(pfn + half, 8, M)
    assert z.nr_free > z.wmark_high and z.boost == 0
    page = k.alloc_pages(0, G.GFP_KERNEL, cpu=0)
    assert page.zone is z
    return k, z, page


def test_boost_stays_until_kswapd_has_run():
    k, z, page = boosted_tiny()
    assert z.boost == 512                             # boost_watermark(): + pageblock_nr_pages
    assert k.kswapd_wakeups == 1 and k.delayed_work_pending(("kswapd", 0))
    k.free_pages(page)
    k.free_pages(k.alloc_pages(0, G.GFP_KERNEL, cpu=0))   # more allocations do not reset it
    assert z.boost == 512 and k.kswapd_wakeups == 1
    k.tick()                                           # the clock moves: kswapd runs
    assert z.boost == 0 and not k.kswapd_is_running(k.nodes[0])     # napping, then asleep


def test_kswapd_is_not_woken_for_a_balanced_unboosted_node():
    k = tiny()
    z = k.zones[1]
    k.wakeup_kswapd(z, G.GFP_KERNEL, 0, 1)
    assert k.kswapd_wakeups == 0 and not k.delayed_work_pending(("kswapd", 0))


# ---- /proc/uptime ---------------------------------------------------------------------------

def test_uptime_file_format():
    k = tiny()                                         # two cpus, both idle all along
    assert uptime.render(k) == b"60.00 120.00\n"
    k.sleep(1_239_999_999)                             # 61.239999999 s: hundredths truncate
    assert uptime.render(k) == b"61.23 122.47\n"        # idle 122.479999998 s


def test_uptime_is_served_by_the_views():
    from procsim.views import files
    k = tiny()
    assert files(k.machine)["uptime"].render(k) == b"60.00 120.00\n"


# ---- the slow path --------------------------------------------------------------------------

def exhausted_tiny():
    """Every page an atomic request may take is taken (atomic ones dip below min)."""
    k = tiny()
    for gfp in (G.GFP_KERNEL, G.GFP_ATOMIC):
        with pytest.raises(MMError):
            while True:
                k.alloc_pages(0, gfp)
    return k


def trace_slowpath(k):
    calls = []
    gpff, wake = k._get_page_from_freelist, k.wake_all_kswapds

    def hook(name, ret):
        def f(*a, **kw):
            calls.append(name)
            return ret
        return f
    k._get_page_from_freelist = lambda *a: calls.append("gpff") or gpff(*a)
    k.wake_all_kswapds = lambda *a: calls.append("wake") or wake(*a)
    k._alloc_pages_direct_reclaim = hook("reclaim", (None, 0))
    k._alloc_pages_direct_compact = hook("compact", None)
    k.warn_alloc = hook("warn", None)
    return calls


@pytest.mark.parametrize("gfp, order, expect", [
    # fast path at low, then: wake kswapd, min mark, retry: wake, min mark, reclaim,
    # compact, should_reclaim_retry finds nothing reclaimable, warn_alloc
    (G.GFP_KERNEL, 0, ["gpff", "wake", "gpff", "wake", "gpff", "reclaim", "compact", "warn"]),
    # an atomic request cannot reclaim: straight to the failure after the min-mark retries
    (G.GFP_ATOMIC, 0, ["gpff", "wake", "gpff", "wake", "gpff", "warn"]),
    # costly order: compaction first; without __GFP_RETRY_MAYFAIL no reclaim retry loop
    (G.GFP_KERNEL, 4, ["gpff", "wake", "gpff", "compact", "wake", "gpff", "reclaim", "compact", "warn"]),
    # no __GFP_KSWAPD_RECLAIM: kswapd is never woken
    (G.GFP_KERNEL & ~G.__GFP_KSWAPD_RECLAIM, 0, ["gpff", "gpff", "gpff", "reclaim", "compact", "warn"]),
])
def test_slowpath_shape(gfp, order, expect):
    k = exhausted_tiny()
    calls = trace_slowpath(k)
    with pytest.raises(MMError) as e:
        k.alloc_pages(order, gfp, cpu=0)
    assert e.value.errno == errno.ENOMEM
    assert calls == expect


def test_slowpath_retries_after_direct_reclaim_made_progress():
    k = tiny()
    pages = []
    with pytest.raises(MMError):
        while True:
            pages.append(k.alloc_pages(0, G.GFP_KERNEL))
    calls = trace_slowpath(k)

    freed_zones = set()

    def reclaim(*a):                                  # "reclaim" frees 64 pages and drains
        calls.append("reclaim")
        for _ in range(64):
            p = pages.pop()
            freed_zones.add(p.zone)
            k.free_pages(p)
        k.drain_all_pages()
        return None, 64
    k._alloc_pages_direct_reclaim = reclaim
    page = k.alloc_pages(0, G.GFP_KERNEL, cpu=0)
    # reclaim made progress: should_reclaim_retry sees the min mark met and the retry succeeds,
    # in the zone reclaim freed (the last pages the fill took: DMA, the zonelist's fallback)
    assert calls == ["gpff", "wake", "gpff", "wake", "gpff", "reclaim", "compact", "wake", "gpff"]
    assert page.zone in freed_zones


def test_reclaim_retries_stop_after_max_reclaim_retries_without_progress():
    k = exhausted_tiny()
    calls = trace_slowpath(k)
    k.zone_reclaimable_pages = lambda z: 1 << 20      # reclaim "could" free plenty, never does
    with pytest.raises(MMError):
        k.alloc_pages(0, G.GFP_KERNEL, cpu=0)
    # no_progress_loops goes 1, 2, ... and should_reclaim_retry says no once it passes 16
    assert calls.count("reclaim") == 17 and calls[-1] == "warn"


def test_costly_retry_mayfail_goes_round_the_loop():
    k = exhausted_tiny()
    calls = trace_slowpath(k)
    k.zone_reclaimable_pages = lambda z: 1 << 20
    with pytest.raises(MMError):
        k.alloc_pages(4, G.GFP_KERNEL | G.__GFP_RETRY_MAYFAIL, cpu=0)
    assert calls.count("reclaim") == 17
