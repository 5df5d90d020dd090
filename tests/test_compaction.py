"""Compaction and migration (procsim/mm/compaction.py, migrate.py), the extfrag debugfs
files and alloc_pages_exact, driven through the control file where a script would.

The scenario: a zone's free memory is cut into single pages by interleaved allocations
(keep every other one), the last high-order blocks are pinned by unmovable order-9/10
allocations, so buddyinfo has nothing of order 9 or more.  With movable pages an order-10
request then succeeds through direct compaction; with unmovable ones it fails, and says the
failure is fragmentation.
"""
from __future__ import annotations

import errno
import re

import pytest

from procsim.testing import boot


def control(name):
    from procsim.control import Control
    return Control(lambda: boot(name))


def ok(ctl, line) -> range:
    r = ctl.run(line)
    assert r.errno == 0, f"{line}: {r.text}"
    m = re.fullmatch(r"ok (\d+)(?:-(\d+))?", r.text)
    return range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1) if m else range(0)


def buddyinfo(k) -> dict[str, list[int]]:
    """zone name -> free blocks per order, parsed from the /proc/buddyinfo bytes."""
    from procsim.views import buddyinfo as v
    out = {}
    for line in v.render(k).decode().splitlines():
        head, counts = line.split("zone")
        out[f"{head.split(',')[0]} {counts.split()[0]}"] = [int(c) for c in counts.split()[1:]]
    return out


def high_order_free(k) -> int:
    return sum(c for counts in buddyinfo(k).values() for c in counts[9:])


def events(k, *names) -> dict[str, int]:
    from procsim.views import vmstat
    rows = dict(l.split() for l in vmstat.render(k).decode().splitlines())
    return {n: int(rows[n]) for n in names}


COUNTERS = ("compact_stall", "compact_success", "compact_fail", "compact_migrate_scanned", "compact_free_scanned",
            "compact_isolated", "pgmigrate_success", "pgmigrate_fail", "compact_daemon_wake",
            "compact_daemon_migrate_scanned", "compact_daemon_free_scanned")


def fragment(ctl, gfp: str, margin: int = 2048) -> list[int]:
    """Fill DMA32 with order-0 pages of gfp (one batch), free every other one, drain the pcp
    lists, then pin whatever free block of order 9 or 10 is left with unmovable allocations.
    Returns the IDs kept.  Proactive compaction is off (vm.compaction_proactiveness 0), so
    what compacts afterwards is what the test asks for."""
    k = ctl.kernel
    k.sysctl_compaction_proactiveness = 0
    z = next(z for z in k.zones if z.name == "DMA32")
    n = z.nr_free - z.wmark_high - margin
    ids = ok(ctl, f"alloc_pages 0 count={n} gfp={gfp} tag=keep")
    for i in ids[1::2]:
        ok(ctl, f"free_pages {i}")
    ok(ctl, "drain_pages")
    for zone in k.zones:
        flags = "GFP_DMA" if zone.name == "DMA" else "GFP_KERNEL|__GFP_DMA32"
        for order in (10, 9):
            while zone.nr_free_order(order):
                ok(ctl, f"alloc_pages {order} gfp={flags} tag=pin")
    assert high_order_free(k) == 0
    return list(ids[0::2])


# seed-vm's DMA32 starts with the boot workload's page cache (large folios, split to migrate
# when no block of their order is free): the migrate scanner, coming from the zone's start,
# moves those before it reaches the pages the test allocated
@pytest.mark.parametrize("config,order,count", [("tiny", 10, 1), ("tiny", 9, 1), ("seed-vm", 10, 6)])
def test_direct_compaction_makes_the_block_ids_keep_their_data(config, order, count):
    from procsim.mm.check import check
    ctl = control(config)
    k = ctl.kernel
    kept = fragment(ctl, "GFP_HIGHUSER_MOVABLE")
    before = {i: k.tasks.lookup(i) for i in kept}
    layout = {z: dict(z.allocated) for z in k.zones}
    c0 = events(k, *COUNTERS)
    huge = ok(ctl, f"alloc_pages {order} count={count} gfp=GFP_HIGHUSER_MOVABLE tag=huge")[-1]
    c1 = events(k, *COUNTERS)
    stalls = c1["compact_stall"] - c0["compact_stall"]
    assert 1 <= stalls <= count
    assert c1["compact_success"] - c0["compact_success"] == stalls and c1["compact_fail"] == c0["compact_fail"]
    migrated = c1["pgmigrate_success"] - c0["pgmigrate_success"]
    assert migrated > 0 and c1["pgmigrate_fail"] == c0["pgmigrate_fail"]
    assert c1["compact_migrate_scanned"] > c0["compact_migrate_scanned"]
    assert c1["compact_free_scanned"] > c0["compact_free_scanned"]
    # every migrated page was isolated once by the migrate scanner and its target by the free one
    assert c1["compact_isolated"] - c0["compact_isolated"] >= 2 * migrated
    moved = 0
    for i, a in before.items():
        now = k.tasks.lookup(i)
        assert (now.state, now.task.tag, now.kind, now.what, now.use) == ("live", "keep", "pages", 0, None)
        assert now.page.zone.allocated[now.value] is now.page and now.page.pfn == now.value
        moved += now.value != a.value
    assert moved <= migrated                      # order-0 pages: one page per migration
    if config == "tiny":                          # the test's pages are the zone's movable ones
        assert moved > 0
    changed = sum(1 for z, pages in layout.items() for p, page in pages.items() if z.allocated.get(p) is not page)
    assert changed >= migrated // (1 << 5)        # blocks that left their pfns (order <= 5)
    check(k)
    # freed, the block shows in buddyinfo at its order (or merged above it)
    zone = k.tasks.lookup(huge).page.zone
    units = lambda: sum(c << (o - order) for o, c in enumerate(buddyinfo(k)[f"Node 0 {zone.name}"]) if o >= order)
    held = units()
    ok(ctl, f"free_pages {huge}")
    assert units() == held + 1


def test_ids_listed_in_allocations_follow_the_move():
    ctl = control("tiny")
    k = ctl.kernel
    kept = fragment(ctl, "GFP_HIGHUSER_MOVABLE")
    rows = lambda: {int(r.split()[0]): int(r.split()[7]) for r in ctl.render_allocations().decode().splitlines()[1:]
                    if not r.startswith("#") and r.split()[1] == "keep"}
    first = rows()
    ok(ctl, "alloc_pages 10 gfp=GFP_HIGHUSER_MOVABLE")
    after = rows()
    assert set(after) == set(first) == set(kept)
    changed = [i for i in kept if after[i] != first[i]]
    assert changed and all(after[i] == k.tasks.lookup(i).value for i in kept)


@pytest.mark.parametrize("config", ["tiny", "seed-vm"])
def test_unmovable_pages_pin_every_pageblock_and_the_error_says_fragmentation(config):
    from procsim.mm.check import check
    ctl = control(config)
    k = ctl.kernel
    kept = fragment(ctl, "GFP_KERNEL")
    pfns = {i: k.tasks.lookup(i).value for i in kept}
    c0 = events(k, *COUNTERS)
    r = ctl.run("alloc_pages 10 gfp=GFP_HIGHUSER_MOVABLE tag=huge")
    assert r.errno == errno.ENOMEM
    assert "(fragmentation)" in r.text, r.text                 # show_mem.explain_nopage, per zone
    c1 = events(k, *COUNTERS)
    assert c1["compact_stall"] > c0["compact_stall"] and c1["compact_fail"] > c0["compact_fail"]
    assert {i: k.tasks.lookup(i).value for i in kept} == pfns     # (boot page cache may have moved)
    check(k)


def test_a_request_below_the_watermark_still_blames_the_watermark():
    ctl = control("tiny")
    r = ctl.run("alloc_pages 3 count=1000000 gfp=GFP_KERNEL")
    assert r.errno == errno.ENOMEM and "(watermark)" in r.text, r.text


def test_slab_and_large_kmalloc_pages_never_move_whatever_their_gfp():
    """The reliability state machine found it: kmalloc with a movable gfp gives movable pages
    that are not on the LRU; compaction must leave them where SLUB knows them."""
    from procsim.mm.check import check
    ctl = control("tiny")
    k = ctl.kernel
    ok(ctl, "kmalloc 300000 count=4 gfp=GFP_HIGHUSER_MOVABLE tag=big")
    ok(ctl, "kmalloc 64 count=500 gfp=GFP_HIGHUSER_MOVABLE tag=small")
    large = dict(k.slab._large)
    ok(ctl, "compact_memory")
    assert k.slab._large == large
    check(k)


@pytest.mark.parametrize("config", ["tiny", "seed-vm"])
def test_compact_memory_raises_the_order_10_count(config):
    from procsim.mm.check import check
    ctl = control(config)
    k = ctl.kernel
    fragment(ctl, "GFP_HIGHUSER_MOVABLE")
    c0 = events(k, "compact_migrate_scanned", "pgmigrate_success", "compact_stall")
    assert ok(ctl, "compact_memory") == range(0)
    assert sum(counts[10] for counts in buddyinfo(k).values()) > 0
    c1 = events(k, "compact_migrate_scanned", "pgmigrate_success", "compact_stall")
    assert c1["pgmigrate_success"] > c0["pgmigrate_success"]
    assert c1["compact_stall"] == c0["compact_stall"]      # not an allocation's stall
    check(k)


def test_compact_node_compacts_that_node_only():
    ctl = control("seed-server")
    k = ctl.kernel
    layout = lambda nid: [sorted(z.allocated) for z in k.nodes[nid].zones]
    before = [layout(n.id) for n in k.nodes]
    c0 = events(k, "pgmigrate_success")["pgmigrate_success"]
    assert ok(ctl, "compact node=1") == range(0)
    assert events(k, "pgmigrate_success")["pgmigrate_success"] > c0
    assert layout(0) == before[0] and layout(1) != before[1]
    assert ctl.run("compact node=9").errno == errno.EINVAL
    assert ctl.run("compact").errno == errno.EINVAL


def test_kswapd_wakes_kcompactd_after_boosted_reclaim():
    """A fallback boosted DMA32's watermarks: kswapd, woken for the boost on a balanced node,
    tries boosted reclaim (nothing to reclaim here: the run ends at once and counts a
    failure, as balance_pgdat() does), takes the boost off and wakes kcompactd at pageblock
    order, which compacts on the clock."""
    from procsim.mm import gfp as G
    ctl = control("tiny")
    k = ctl.kernel
    fragment(ctl, "GFP_HIGHUSER_MOVABLE")
    z = next(z for z in k.zones if z.name == "DMA32")
    c0 = events(k, *COUNTERS)
    z.boost = 64                                     # boost_watermark() after a fallback
    k.wakeup_kswapd(z, G.GFP_KERNEL, 0, z.idx)
    assert events(k, *COUNTERS) == c0                # nothing before the clock moves
    k.sleep(100_000_000)
    c1 = events(k, *COUNTERS)
    assert z.boost == 0 and k.nodes[0].kswapd_failures == 1
    assert c1["compact_daemon_wake"] == c0["compact_daemon_wake"] + 1
    assert c1["compact_daemon_migrate_scanned"] > c0["compact_daemon_migrate_scanned"]
    assert c1["compact_stall"] == c0["compact_stall"]
    k.alloc_pages(9, G.GFP_NOWAIT | G.__GFP_MOVABLE)


def test_proactive_compaction_runs_on_the_clock_above_the_score_mark():
    ctl = control("tiny")
    k = ctl.kernel
    fragment(ctl, "GFP_HIGHUSER_MOVABLE")
    score = k.fragmentation_score_node(k.nodes[0])
    k.sleep(10 ** 9)                                  # proactiveness 0: kcompactd only checks
    assert events(k, "compact_daemon_migrate_scanned")["compact_daemon_migrate_scanned"] == 0
    k.sysctl_compaction_proactiveness = 20            # the default: marks 80 (low) and 90 (high)
    assert score > 90
    k.sleep(10 ** 9)
    assert events(k, "compact_daemon_migrate_scanned")["compact_daemon_migrate_scanned"] > 0
    assert k.fragmentation_score_node(k.nodes[0]) < score


def test_deferral_follows_the_kernel():
    """defer_compaction doubles the skip window (2^shift tries, shift <= 6);
    compaction_defer_reset after a success clears it."""
    k = boot("tiny")
    z = k.zones[1]
    assert not k.compaction_deferred(z, 10)             # fresh: order 10 >= compact_order_failed 0
    k.defer_compaction(z, 10)
    k.defer_compaction(z, 10)
    assert (z.compact_defer_shift, z.compact_considered, z.compact_order_failed) == (2, 0, 0)
    assert [k.compaction_deferred(z, 10) for _ in range(5)] == [True, True, True, False, False]
    for _ in range(10):
        k.defer_compaction(z, 10)
    assert z.compact_defer_shift == 6
    k.compaction_defer_reset(z, 10, True)
    assert (z.compact_defer_shift, z.compact_considered, z.compact_order_failed) == (0, 0, 11)
    assert not k.compaction_deferred(z, 3)               # below compact_order_failed: never deferred


# ---- debugfs extfrag ---------------------------------------------------------------------------
class _Zone:
    def __init__(self, name, counts):
        self.name, self.populated, self._counts = name, True, counts + [0] * (11 - len(counts))

    def nr_free_order(self, o):
        return self._counts[o]


class _Node:
    id, has_memory = 0, True

    def __init__(self, zones):
        self.zones = zones


class _K:
    def __init__(self, counts):
        self.nodes = [_Node([_Zone("DMA32", counts)])]


def test_extfrag_files_by_hand():
    """4 x order 0, 2 x order 1, 1 x order 2: 12 free pages in 7 blocks.
    unusable(1) = (12 - (2 + 2)*2)/12 = 0.333; unusable(2) = (12 - 1*4)/12 = 0.666; unusable(3) = 1.000;
    extfrag(2) = -1 (a block is free); extfrag(3) = 1 - (1 + 12/8)/7 = 1 - 2500/7000 -> 0.643."""
    from procsim.views import extfrag
    k = _K([4, 2, 1])
    u = extfrag.render_unusable(k).decode()
    e = extfrag.render_extfrag(k).decode()
    assert u == "Node 0, zone    DMA32 0.000 0.333 0.666 " + "1.000 " * 8 + "\n"
    assert e.startswith("Node 0, zone    DMA32 -1.000 -1.000 -1.000  0.643 ")
    # order 4: 1000 - (1000 + 12000/16)/7 = 1000 - 1750/7 = 750
    assert e.split()[8] == "0.750"
    assert extfrag.render_unusable(_K([])).decode().split()[4] == "1.000"    # no free memory
    assert extfrag.render_extfrag(_K([])).decode().split()[4] == "0.000"
    # one free order-9 block: order 10 gives 1000 - (1000 + 512000/1024)/1 = -500, which C's
    # "%2d.%03d" of (-500 / 1000, -500 % 1000) prints as " 0.-500"
    assert extfrag.render_extfrag(_K([0] * 9 + [1])).decode().endswith(" 0.-500 \n")


def test_extfrag_files_match_buddyinfo_on_a_fragmented_zone():
    """Both files recomputed from the buddyinfo bytes with the kernel's formulas."""
    from procsim.views import extfrag
    ctl = control("tiny")
    fragment(ctl, "GFP_HIGHUSER_MOVABLE")
    k = ctl.kernel
    info = buddyinfo(k)
    un = {l.split(",")[0] + " " + l.split()[3]: l.split()[4:] for l in extfrag.render_unusable(k).decode().splitlines()}
    ef = {l.split(",")[0] + " " + l.split()[3]: l.split()[4:] for l in extfrag.render_extfrag(k).decode().splitlines()}
    assert set(un) == set(ef) == set(info)
    for zone, counts in info.items():
        free = sum(c << o for o, c in enumerate(counts))
        blocks = sum(counts)
        for o in range(11):
            fit = sum(c << (j - o) for j, c in enumerate(counts) if j >= o)
            want_u = 1000 if not free else (free - (fit << o)) * 1000 // free
            want_e = 0 if not blocks else -1000 if fit else 1000 - (1000 + free * 1000 // (1 << o)) // blocks
            assert un[zone][o] == f"{want_u // 1000}.{want_u % 1000:03d}"
            whole = int(want_e / 1000)                         # C: toward zero, remainder signed
            assert ef[zone][o] == f"{whole}.{want_e - 1000 * whole:03d}"
    assert any(v != "-1.000" for v in ef["Node 0 DMA32"])      # the fragmented zone has real indices


# ---- alloc_pages_exact -------------------------------------------------------------------------
def test_alloc_pages_exact_takes_the_covering_block_and_gives_the_tail_back():
    ctl = control("tiny")
    k = ctl.kernel
    ids = ok(ctl, "alloc_pages_exact 12288 tag=x")        # 3 pages: an order-2 block, one page back
    assert len(ids) == 3
    pfns = [k.tasks.lookup(i).value for i in ids]
    assert pfns == list(range(pfns[0], pfns[0] + 3)) and pfns[0] % 4 == 0
    z = k.tasks.lookup(ids[0]).page.zone
    assert pfns[0] + 3 not in z.allocated                 # the tail page was freed
    assert [k.tasks.lookup(i).what for i in ids] == [0, 0, 0]
    assert len(ok(ctl, "alloc_pages_exact 1")) == 1
    assert len(ok(ctl, "alloc_pages_exact 4097")) == 2
    assert ok(ctl, f"free_pages {ids[1]}") == range(0)    # the pages are separate allocations
    r = ctl.run("alloc_pages_exact 5M")
    assert r.errno == errno.EINVAL and "order 11" in r.text
    from procsim.mm.check import check
    check(k)


def test_nothing_compacts_on_an_idle_or_unfragmented_machine():
    """The new counters exist in /proc/vmstat but stay 0 and out of the state until used."""
    k = boot("seed-vm")
    k.sleep(60 * 10 ** 9)
    assert all(v == 0 for v in events(k, *COUNTERS).values())
    assert not any(n.startswith(("compact_", "pgmigrate")) for n in k.vm_events)


def test_slow_path_compacts_by_the_gfp_rules():
    """Unmovable pages everywhere: compaction can do nothing.  A costly request compacts once
    before the retry loop and once in it (no __GFP_RETRY_MAYFAIL: no more); __GFP_NORETRY the
    same (its first result was neither skipped nor deferred); a request that cannot direct
    reclaim (GFP_NOWAIT) never compacts; nor does order 0."""
    ctl = control("tiny")
    k = ctl.kernel
    fragment(ctl, "GFP_KERNEL")
    for gfp, stalls in (("GFP_HIGHUSER_MOVABLE", 2), ("GFP_HIGHUSER_MOVABLE|__GFP_NORETRY", 2),
                        ("GFP_NOWAIT|__GFP_MOVABLE", 0)):
        c0 = events(k, "compact_stall", "compact_fail")
        assert ctl.run(f"alloc_pages 10 gfp={gfp}").errno == errno.ENOMEM
        c1 = events(k, "compact_stall", "compact_fail")
        assert c1["compact_stall"] - c0["compact_stall"] == stalls, gfp
        assert c1["compact_fail"] - c0["compact_fail"] == stalls, gfp


def test_compaction_is_skipped_without_room_to_migrate_into():
    """compaction_suitable(): below min + compact_gap(order) free pages, no stall."""
    from procsim.mm.compaction import COMPACT_SKIPPED, compact_gap
    k = boot("tiny")
    z = k.zones[1]
    assert compact_gap(10) == 2048
    assert k.compaction_suitable(z, 10, z.wmark_min, 3)
    while z.nr_free > z.wmark_min + 2048:
        k.alloc_pages(0, 0x04 | 0xcc0)                    # GFP_KERNEL|__GFP_DMA32
    assert not k.compaction_suitable(z, 10, z.wmark_min, 3)
    if not z.nr_free_order(10):                           # the order's mark fails too: skipped
        assert k.compaction_suit_allocation_order(z, 10, 3, 0) == COMPACT_SKIPPED


def test_thp_requests_count_as_thp_faults():
    """alloc_pages 9 with a THP gfp (GFP_TRANSHUGE_LIGHT's bits) is a THP fault: thp_fault_alloc
    per block, thp_fault_fallback when it fails; other order-9 requests are not."""
    ctl = control("tiny")
    k = ctl.kernel
    names = ("thp_fault_alloc", "thp_fault_fallback")
    ok(ctl, "alloc_pages 9 count=2 gfp=GFP_TRANSHUGE")
    ok(ctl, "alloc_pages 9 gfp=GFP_HIGHUSER_MOVABLE")
    assert events(k, *names) == {"thp_fault_alloc": 2, "thp_fault_fallback": 0}
    assert ctl.run("alloc_pages 9 count=100 gfp=GFP_TRANSHUGE_LIGHT").errno == errno.ENOMEM
    assert events(k, *names) == {"thp_fault_alloc": 2, "thp_fault_fallback": 1}


def test_examples_fragmentation_sh_ends_with_compaction_making_the_request_succeed(mounted):
    """The example, run as a user would against a real mount of tiny: the GFP_KERNEL order-10
    request fails saying fragmentation, compact_memory raises the order-10 count, the same
    request then succeeds."""
    import subprocess
    from pathlib import Path
    mp = mounted("tiny")
    script = Path(__file__).resolve().parent.parent / "examples/fragmentation.sh"
    out = subprocess.run(["bash", str(script), str(mp)], capture_output=True,
                         text=True, timeout=300, check=True).stdout
    assert "DMA32" in out and "(fragmentation)" in out
    after = out.split("== after compact_memory")[1]
    assert re.search(r"^pgmigrate_success [1-9]", after, re.M)
    assert re.search(r"the same request now succeeds: .* -> ok \d+-\d+", out)


def test_members_of_runs_migrate_under_their_ids():
    """An order-0 count=K allocation is kept as runs of pfns (no Page per page, docs/DESIGN.md);
    compaction's migrate scanner still finds its members (Tasks.run_page_finder) and moves
    them: the IDs keep naming live pages, at new pfns, and every invariant holds."""
    from procsim.control import Control
    from procsim.mm.check import check
    ctl = Control(lambda: boot("tiny"))
    k = ctl.kernel
    n = 6000
    assert ctl.run(f"alloc_pages 0 gfp=GFP_HIGHUSER_MOVABLE count={n} tag=r").text == f"ok 1-{n}"
    (b,) = k.tasks.batches()
    assert not b._pages                                  # kept as runs: no Page objects
    for i in range(2, n + 1, 2):                         # every other page back: a sieve
        assert ctl.run(f"free_pages {i}").errno == 0
    before = dict(b.entries())                         # (ID, pfn) without making Pages
    assert sorted(before) == list(range(1, n + 1, 2)) and not b._pages
    ctl.run("drain_pages")
    assert ctl.run("compact_memory").text == "ok"
    after = dict(b.entries())
    assert sorted(after) == sorted(before)              # every ID still live
    moved = [i for i in before if after[i] != before[i]]
    assert moved and k.vm_events.get("pgmigrate_success", 0) >= len(moved)
    check(k)


def test_compact_files_through_the_mount_are_journaled_commands(tmp_path):
    """`echo 1 > M/sysctl/vm/compact_memory` and `echo > M/sys/devices/system/node/node0/compact`
    compact as the kernel's files do; each write runs as a control command (logged, in the
    --state journal, so a restart replays it); compact_memory takes only 1 (EINVAL otherwise)."""
    import subprocess
    from procsim.harness import mounted
    from procsim.testing import CONFIGS
    state = tmp_path / "journal"
    with mounted(CONFIGS / "tiny.yaml", state_file=state) as m:
        mp = m.path

        def scanned():
            stat = dict(l.split() for l in (mp / "vmstat").read_text().splitlines())
            return int(stat.get("compact_migrate_scanned", 0)) + int(stat.get("compact_free_scanned", 0))
        (mp / "control").write_text("alloc_pages 0 gfp=GFP_HIGHUSER_MOVABLE count=6000 tag=f\n")
        (mp / "control").write_text("".join(f"free_pages {i}\n" for i in range(2, 6001, 2)))
        before = scanned()
        r = subprocess.run(["bash", "-c", f"echo 1 > {mp}/sysctl/vm/compact_memory"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        after_all = scanned()
        assert after_all > before
        r = subprocess.run(["bash", "-c", f"echo 2 > {mp}/sysctl/vm/compact_memory"], capture_output=True, text=True)
        assert r.returncode != 0 and "Invalid argument" in r.stderr
        r = subprocess.run(["bash", "-c", f"echo x > {mp}/sys/devices/system/node/node0/compact"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert scanned() > after_all
        log = (mp / "log").read_text().splitlines()
        assert [l.split(" ", 1)[1] for l in log[-2:]] == ["compact_memory -> ok", "compact node=0 -> ok"]
    journal = state.read_text().splitlines()
    assert [line.split(" ", 1)[1] if line.startswith("@") else line for line in journal[-2:]] == \
        ["compact_memory", "compact node=0"]                   # each batch stamped with its time (@NS)
