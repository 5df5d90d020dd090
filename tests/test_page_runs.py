"""Order-0 bulk work in runs (PageAlloc.alloc_pages_runs / free_pages_run, task segments) is
the per-page algorithm: every pfn, counter, flag and rendered byte the same.

The reference is the same Kernel with ``page_runs=False``: every ``count=K`` is K
alloc_pages() calls with a Page each, every free K free_pages() calls, every pcp refill
page by page.  Seeded random control scripts -- unfragmented and fragmented memory,
remote nodes and cpus, fills to ENOMEM (undone newest first), tags freed wholesale, single
IDs and ID ranges freed out of runs, pcp drains and idle time between -- run on both, and
after every command the replies and ``state_digest`` (free lists in order, pcp lists,
allocations, counters, segments) must agree; at the end every /proc file too.
"""
import random

import pytest

from conftest import CONFIGS
from procsim import machine as M
from procsim.control import Control
from procsim.mm import gfp as G
from procsim.mm.check import check, state_digest
from procsim.mm.kernel import Kernel
from procsim.views import files

GFPS = ("GFP_HIGHUSER_MOVABLE", "GFP_KERNEL", "GFP_KERNEL|__GFP_RECLAIMABLE", "GFP_ATOMIC", "GFP_DMA32")


def pair(config: str):
    m = M.load(CONFIGS / f"{config}.yaml")
    return m, Control(lambda: Kernel(m)), Control(lambda: Kernel(m, page_runs=False))


def same(runs: Control, pages: Control, line: str, digest: bool = True) -> str:
    a, b = runs.run(line), pages.run(line)
    assert (a.errno, a.text) == (b.errno, b.text), line
    if digest:
        assert state_digest(runs.kernel) == state_digest(pages.kernel), f"state differs after {line!r}"
    return a.text


def script(rnd: random.Random, k: Kernel, steps: int, big: int) -> list[str]:
    """A random control script; IDs are guessed from next_id, so some frees miss (ENOENT)."""
    lines = []
    nodes, cpus = len(k.nodes), k.nr_cpu_ids
    for _ in range(steps):
        r = rnd.random()
        where = ""
        if rnd.random() < 0.3:
            where += f" node={rnd.randrange(nodes)}"
        if rnd.random() < 0.3:
            where += f" cpu={rnd.randrange(cpus)}"
        tag = f" tag=t{rnd.randrange(4)}" if rnd.random() < 0.8 else ""
        if r < 0.35:                                 # bulk order 0, sometimes huge
            count = rnd.choice((1, 2, 63, 500, 3000, big, rnd.randrange(1, big)))
            use = rnd.choice(("", " use=anon", " use=pagecache", " use=kernel_stack"))
            lines.append(f"alloc_pages 0 gfp={rnd.choice(GFPS)} count={count}{use}{where}{tag}")
        elif r < 0.45:                               # other orders: fragmentation, other pcp lists
            lines.append(f"alloc_pages {rnd.choice((0, 1, 2, 3, 9))} gfp={rnd.choice(GFPS)}"
                         f" count={rnd.randrange(1, 40)}{where}{tag}")
        elif r < 0.50:
            lines.append(f"kmalloc {rnd.choice((64, 512, 4096, 20000))} count={rnd.randrange(1, 200)}{tag}")
        elif r < 0.75:                               # single IDs and ranges out of runs
            hi = max(1, k.tasks.next_id - 1)
            lo = rnd.randrange(1, hi + 1)
            n = rnd.choice((0, 0, 1, 7, 100, 5000))
            lines.append(f"free_pages {lo}" if not n else f"free_pages {lo}-{min(hi, lo + n)}")
        elif r < 0.88:
            lines.append(f"free_pages tag=t{rnd.randrange(4)}")
        elif r < 0.93:
            lines.append("drain_pages")
        else:
            lines.append(f"sleep {rnd.choice(('1s', '3s', '30ms'))}")
    return lines


@pytest.mark.parametrize("config,steps,big,seed,every", [
    ("tiny", 60, 20000, 1, 1),        # small enough that fills reach ENOMEM and are undone
    ("tiny", 60, 4000, 2, 1),
    ("seed-vm", 25, 30000, 3, 3),
    ("seed-vm", 20, 150000, 4, 4),    # seed-vm's 2 GiB: fills reach ENOMEM too
    ("seed-server", 15, 20000, 5, 5),
    ("big-4s-1t", 15, 20000, 6, 5),   # 4 nodes: remote zones, numa_miss/foreign, NOFRAGMENT retry
])
def test_runs_are_the_per_page_algorithm(config, steps, big, seed, every):
    """The whole state after every ``every``-th command (a digest costs more than most
    commands on the big machines), the replies after each."""
    m, runs, pages = pair(config)
    assert state_digest(runs.kernel) == state_digest(pages.kernel)      # boot refills too
    rnd = random.Random(seed)
    replies = []
    for _ in range(2):                  # a script, then another on the state it left
        for i, line in enumerate(script(rnd, runs.kernel, steps, big)):
            replies.append(same(runs, pages, line, digest=i % every == every - 1))
            assert runs.kernel.tasks.next_id == pages.kernel.tasks.next_id
    assert state_digest(runs.kernel) == state_digest(pages.kernel)
    assert any(t.startswith("ok freed") for t in replies)
    check(runs.kernel)
    for name, view in sorted(files(m).items()):
        if not name.startswith("sys/"):
            assert view.render(runs.kernel) == view.render(pages.kernel), name


def test_fill_to_enomem_is_undone_newest_first():
    """A fill that fails is freed again in reverse (descending pfns through the pcp lists):
    the state is the reference's, and the machine's free memory is what it was."""
    m, runs, pages = pair("seed-vm")
    same(runs, pages, "alloc_pages 0 gfp=GFP_KERNEL count=3000 tag=frag")
    same(runs, pages, "free_pages 2-2999")                # one page left holding a block
    same(runs, pages, "alloc_pages 0 gfp=GFP_HIGHUSER_MOVABLE count=40000 use=anon tag=a")
    text = same(runs, pages, "alloc_pages 0 gfp=GFP_HIGHUSER_MOVABLE count=2000000 use=anon tag=b")
    assert text.startswith("error ENOMEM") and "made were freed" in text
    assert runs.kernel.tasks.find_task("b") is None
    same(runs, pages, "free_pages tag=a")
    check(runs.kernel)


def test_fragmented_memory():
    """Free lists full of holes of every order and type: refills take the smallest blocks
    first, steal and claim pageblocks; frees merge into the holes."""
    m, runs, pages = pair("tiny")
    rnd = random.Random(11)
    for i in range(30):
        same(runs, pages, f"alloc_pages 0 gfp={GFPS[i % 4]} count={rnd.randrange(50, 400)} tag=f{i % 3}")
    for _ in range(60):
        lo = rnd.randrange(1, runs.kernel.tasks.next_id)
        same(runs, pages, f"free_pages {lo}-{lo + rnd.randrange(3)}")
    same(runs, pages, "drain_pages")
    for i in range(20):
        same(runs, pages, f"alloc_pages 0 gfp={GFPS[i % 3]} count={rnd.randrange(100, 3000)} tag=g")
        same(runs, pages, f"free_pages tag=f{i % 3}")
    same(runs, pages, "free_pages tag=g")
    check(runs.kernel)


def test_bulk_pages_are_runs_not_pages():
    """4 GiB of anon on seed-server is at most a run per small block or parked page boot left
    (taken first, scattered) plus one segment per zone touched, and no Page
    objects; one ID freed out of the middle splits a run in two."""
    m = M.load(CONFIGS / "seed-server.yaml")
    ctl = Control(lambda: Kernel(m))
    k = ctl.kernel
    before = sum(len(z.allocated) for z in k.zones)
    # what may break the bulk into more runs: pages parked on cpu 0's order-0 Movable lists and
    # the Movable free blocks below max order (boot's late frees leave some), taken smallest first
    parked = sum(len(z.pcp[0].lists[1]) + sum(z.free_count(o, 1) for o in range(10)) for z in k.zones)
    assert ctl.run("alloc_pages 0 gfp=GFP_HIGHUSER_MOVABLE count=1000000 use=anon tag=a").text == "ok 1-1000000"
    (b,) = k.tasks.batches()
    nruns = len(list(b.runs()))
    assert nruns <= parked + 3 and sum(n for _, _, _, n in b.runs()) == 1000000
    # the bulk is one run, or two: the anon's page tables (unmovable, allocated before each
    # stretch of it) may take a pageblock from the middle of the free movable memory
    assert sum(sorted(n for _, _, _, n in b.runs())[-2:]) > 900000
    tables = len(k.tasks.find_task("a").pgtables)           # the page tables are pages of their own
    assert tables == 1954 + 4 + 1 and sum(len(z.allocated) for z in k.zones) == before + tables
    assert ctl.run("free_pages 500000").text == "ok freed 1"
    ids = [(first, n) for first, _, _, n in b.runs()]
    assert sum(n for _, n in ids) == 999999 and len(ids) <= nruns + 1
    assert any(f + n - 1 == 499999 for f, n in ids) and any(f == 500001 for f, n in ids)
    check(k)


def test_lookup_move_and_reclaim_inside_a_run():
    """Compaction's move(ID, page) and reclaim of IDs work on members of a run, exactly as on
    page-by-page members (the other rooms' API)."""
    m, runs, pages = pair("seed-vm")
    same(runs, pages, "alloc_pages 0 gfp=GFP_HIGHUSER_MOVABLE count=5000 use=pagecache tag=c")
    for ctl in (runs, pages):
        k = ctl.kernel
        old_pfn = k.tasks.lookup(2500).value
        new = k.alloc_pages(0, G.GFP_HIGHUSER_MOVABLE)
        old = k.tasks.move(2500, new)
        assert old.pfn == old_pfn and k.tasks.lookup(2500).value == new.pfn
        k.free_pages(old)
        assert k.tasks.reclaim(10, 90) == 90 and k.tasks.reclaim(4000) == 1
        assert k.tasks.lookup(50).state == "reclaimed" and k.tasks.lookup(100).state == "live"
        check(k)
    assert state_digest(runs.kernel) == state_digest(pages.kernel)
    same(runs, pages, "free_pages 2000-3000")
    text = same(runs, pages, "free_pages tag=c")
    assert text == f"ok freed {5000 - 1001 - 91}"


def test_allocations_view_is_bounded_with_millions_of_ids():
    m = M.load(CONFIGS / "seed-server.yaml")
    ctl = Control(lambda: Kernel(m))
    ctl.run("alloc_pages 0 gfp=GFP_HIGHUSER_MOVABLE count=3000000 use=anon tag=big")
    from procsim.views import allocations
    out = allocations.render(ctl.kernel).decode().splitlines()
    assert len(out) == allocations.MAX_LISTED + 2
    assert out[-1] == f"# {3000000 - allocations.MAX_LISTED} more live allocations not listed" \
                      f" (at most {allocations.MAX_LISTED} lines)"


def test_pcp_high_tuning_during_bulk_frees():
    """seed-server's pagesets start with high (1157) under free_count + batch (up to 2079), so
    the frees that fill a pcp list re-tune high on the way (nr_pcp_high): the run path must
    stop its quiet stretches exactly where the per-page path calls it."""
    m, runs, pages = pair("seed-server")
    same(runs, pages, "alloc_pages 0 gfp=GFP_HIGHUSER_MOVABLE count=60000 use=anon tag=a")
    same(runs, pages, "alloc_pages 0 gfp=GFP_KERNEL count=20000 cpu=3 tag=b")
    same(runs, pages, "sleep 60s")          # the refills raised high; decay_pcp_high takes it back
    pcp = runs.kernel.nodes[0].zones[2].pcp[0]
    assert pcp.high < pcp.batch << 5, pcp.high
    same(runs, pages, "free_pages tag=a")
    assert pcp.high > pcp.high_min                     # the frees re-tuned it
    same(runs, pages, "free_pages 61000-75000")
    same(runs, pages, "alloc_pages 0 gfp=GFP_HIGHUSER_MOVABLE count=30000 tag=a")
    same(runs, pages, "sleep 60s")
    same(runs, pages, "free_pages tag=b")
    same(runs, pages, "free_pages tag=a")
    check(runs.kernel)


def two_nodes(name: str, mib0: int, mib1: int, image_mib: int) -> str:
    """A machine of two one-core sockets with mib0 and mib1 MiB."""
    return f"""name: {name}
sockets:
  - {{model: "procsim teaching CPU", cores: 1, threads: 2}}
  - {{model: "procsim teaching CPU", cores: 1, threads: 2}}
dimms:
  - {{socket: 0, size: {mib0}MiB, locator: "DIMM 0"}}
  - {{socket: 1, size: {mib1}MiB, locator: "DIMM 1"}}
reserved:
  kernel_image: {image_mib}MiB
"""


DUO = two_nodes("duo", 3584, 256, 4)


def test_fills_across_zones_and_nodes():
    """Two nodes, node 0 with DMA32 and Normal: a fill from cpu 0 runs Normal down to its low
    mark, falls back to DMA32 (ALLOC_NOFRAGMENT), meets node 1 (the flag dropped, the
    zonelist walked again: numa_miss/numa_foreign), then the slow path at the min marks,
    ENOMEM, and the undo (numa_foreign says node 0 was preferred and node 1 gave); then
    allocations on both nodes and frees."""
    m = M.loads(DUO)
    runs, pages = Control(lambda: Kernel(m)), Control(lambda: Kernel(m, page_runs=False))
    assert [z.name for z in runs.kernel._plan(0, G.GFP_HIGHUSER_MOVABLE).zonelist] == \
        ["Normal", "DMA32", "DMA", "Normal"]
    text = same(runs, pages, "alloc_pages 0 gfp=GFP_HIGHUSER_MOVABLE count=1200000 use=anon tag=a")
    assert text.startswith("error ENOMEM")
    assert runs.kernel.nodes[1].zones[2].numa["numa_foreign"] == 0 < runs.kernel.nodes[0].zones[2].numa["numa_foreign"]
    same(runs, pages, "alloc_pages 0 gfp=GFP_HIGHUSER_MOVABLE count=300000 use=anon tag=a")
    same(runs, pages, "alloc_pages 0 gfp=GFP_KERNEL count=2000 cpu=2 tag=b")
    same(runs, pages, "free_pages 100000-150000")
    same(runs, pages, "free_pages tag=a")
    check(runs.kernel)


# ---- under memory pressure: the LRU holds runs --------------------------------------------------
# A two-node machine with boot page cache and anon (node 0's large enough to come as order-5
# folios, which compaction may split), reclaimable dentries and swap: fills go below min, so
# the allocations reclaim directly, kswapd runs on the clock, the OOM killer kills tags.
PRESSURE = two_nodes("squeeze", 384, 64, 8) + """boot:
  caches:
    - {name: dentry, size: 192, objects: 20000, flags: "SLAB_RECLAIM_ACCOUNT"}
  pages:
    - {use: pagecache, size: 256MiB, active: 64MiB, node: 0}
    - {use: pagecache, size: 8MiB, active: 2MiB, node: 1}
    - {use: anon, size: 24MiB, active: 8MiB}
"""


def pressure_script(rnd: random.Random, k: Kernel, steps: int, big: int):
    """Anon and page-cache fills (some past free memory), touches of IDs, ranges and tags,
    frees, idle time for kswapd and the vmstat worker, drop_caches, compaction, swappiness.
    A generator: each line guesses IDs from the state the lines before it left."""
    for _ in range(steps):
        r = rnd.random()
        tag = f" tag=t{rnd.randrange(4)}"
        hi = max(1, k.tasks.next_id - 1)
        lo = rnd.randrange(max(1, hi - 60000), hi + 1)
        if r < 0.36:
            count = rnd.choice((1, 40, 700, 5000, 30000, big, rnd.randrange(1, big)))
            where = f" node={rnd.randrange(len(k.nodes))}" if rnd.random() < 0.2 else ""
            where += f" cpu={rnd.randrange(k.nr_cpu_ids)}" if rnd.random() < 0.2 else ""
            use = rnd.choice((" use=anon", " use=pagecache", " use=pagecache"))
            yield f"alloc_pages 0 gfp=GFP_HIGHUSER_MOVABLE count={count}{use}{where}{tag}"
        elif r < 0.40:
            yield f"alloc_pages {rnd.choice((0, 2))} gfp=GFP_KERNEL count={rnd.randrange(1, 300)}{tag}"
        elif r < 0.58:
            n = rnd.choice((0, 0, 1, 30, 900))
            yield rnd.choice((f"touch {lo}" if not n else f"touch {lo}-{min(hi, lo + n)}",
                              f"touch {lo}" if not n else f"touch {lo}-{min(hi, lo + n)}",
                              f"touch tag=t{rnd.randrange(4)}"))
        elif r < 0.70:
            n = rnd.choice((0, 1, 50, 3000))
            yield f"free_pages {lo}" if not n else f"free_pages {lo}-{min(hi, lo + n)}"
        elif r < 0.75:
            yield f"free_pages tag=t{rnd.randrange(4)}"
        elif r < 0.87:
            yield f"sleep {rnd.choice(('1s', '100ms', '5s'))}"
        elif r < 0.89:
            yield rnd.choice((f"sysctl vm.drop_caches {rnd.choice((1, 2, 3))}", "drop_caches"))
        elif r < 0.93:
            yield rnd.choice(("compact_memory", f"compact node={rnd.randrange(len(k.nodes))}"))
        elif r < 0.96:
            yield f"sysctl vm.swappiness {rnd.choice((0, 60, 100, 200))}"
        elif r < 0.98:
            yield f"oom_score_adj {rnd.choice((-1000, 0, 500))} tag=t{rnd.randrange(4)}"
        else:
            yield "drain_pages"


def lru_entries(k: Kernel) -> int:
    from procsim.mm.vmscan import lruvec
    return sum(1 for n in k.nodes for lru in range(4) for _ in lruvec(k, n.id).entries(lru))


def lru_pages(k: Kernel) -> int:
    return sum(k.node_stat_total("nr_" + n) for n in ("inactive_anon", "active_anon", "inactive_file",
                                                      "active_file"))


@pytest.mark.parametrize("swap,steps,big,seed,every", [
    ("", 36, 60000, 21, 4),              # no swap: anon stays, page cache goes, the OOM killer kills tags
    ("swap: 128MiB\n", 36, 60000, 22, 4),
])
def test_runs_are_the_per_page_algorithm_under_pressure(swap, steps, big, seed, every):
    """The pressure scripts on both paths: replies after every command, the whole state
    (LRU order, owners and PG_referenced included) after every ``every``-th, the invariants
    and every /proc file at the end -- and the LRU of the runs path is runs."""
    m = M.loads(PRESSURE + swap)
    runs, pages = Control(lambda: Kernel(m)), Control(lambda: Kernel(m, page_runs=False))
    assert state_digest(runs.kernel) == state_digest(pages.kernel)
    rnd = random.Random(seed)
    replies = []
    for i, line in enumerate(pressure_script(rnd, runs.kernel, steps, big)):
        replies.append(same(runs, pages, line, digest=i % every == every - 1))
        assert runs.kernel.tasks.next_id == pages.kernel.tasks.next_id
    assert state_digest(runs.kernel) == state_digest(pages.kernel)
    check(runs.kernel)
    check(pages.kernel)
    k = runs.kernel
    ev = k.vm_events
    assert ev.get("pgscan_kswapd", 0) and ev.get("pgactivate", 0) > 0
    if not swap:                         # with swap to write to, kswapd keeps up with the script
        assert ev.get("pgscan_direct", 0)
    assert any(t.startswith("ok touched") for t in replies)
    # the runs path keeps its LRU as runs: fewer entries than pages (direct reclaim in the
    # middle of a fill interleaves its pages with the ones it rotates: runs of ~32 then)
    assert lru_entries(k) * 2 < lru_pages(k)
    for name, view in sorted(files(m).items()):
        if not name.startswith("sys/"):
            assert view.render(runs.kernel) == view.render(pages.kernel), name


def test_reclaim_takes_runs_in_bites_and_touch_splits_in_place():
    """Hand-checked LRU moves on a run: a touch of one ID sets PG_referenced on it alone, a
    second touch activates it (the run around it stays in place), and reclaim takes the
    page cache from the tail: the boot folios, then IDs 1, 2, ... in order."""
    m = M.loads(PRESSURE)
    runs, pages = Control(lambda: Kernel(m)), Control(lambda: Kernel(m, page_runs=False))
    text = same(runs, pages, "alloc_pages 0 gfp=GFP_HIGHUSER_MOVABLE count=10000 use=pagecache tag=c")
    assert text == "ok 1-10000"
    from procsim.mm.check import lru_digest
    from procsim.mm.vmscan import LRU_ACTIVE_FILE, LRU_INACTIVE_FILE
    k = runs.kernel

    def ids(lru):
        """The list's task pages as (first ID, IDs, PG_referenced), node 0's then node 1's,
        oldest first (the fill leaves node 0 for node 1 at its low mark)."""
        out = []
        for _, _, n, _, owner, ref in (r for nid in (0, 1) for r in lru_digest(k, nid)[lru]
                                       if r[4] is not None and r[4] > 0):
            if owner is not None and owner > 0:
                if out and out[-1][0] + out[-1][1] == owner and out[-1][2] == ref:
                    out[-1][1] += n
                else:
                    out.append([owner, n, ref])
        return out
    assert ids(LRU_INACTIVE_FILE) == [[1, 10000, False]]                   # the IDs own their pages
    same(runs, pages, "touch 5000")
    assert ids(LRU_INACTIVE_FILE) == [[1, 4999, False], [5000, 1, True], [5001, 5000, False]]
    same(runs, pages, "touch 5000")
    assert ids(LRU_ACTIVE_FILE) == [[5000, 1, False]]
    assert ids(LRU_INACTIVE_FILE) == [[1, 4999, False], [5001, 5000, False]]
    same(runs, pages, "touch 4990-5010")             # PG_referenced on all 21, 5000 stays active
    assert ids(LRU_INACTIVE_FILE) == [[1, 4989, False], [4990, 10, True], [5001, 10, True], [5011, 4990, False]]
    assert ids(LRU_ACTIVE_FILE) == [[5000, 1, True]]
    same(runs, pages, "touch 4995-5002")             # 4995..4999, 5001, 5002 to the active head in ID order
    assert ids(LRU_ACTIVE_FILE) == [[5000, 1, True], [4995, 5, False], [5001, 2, False]]
    assert ids(LRU_INACTIVE_FILE)[:4] == [[1, 4989, False], [4990, 5, True], [5003, 8, True], [5011, 4990, False]]
    # fill to below min: kswapd and direct reclaim take the inactive file tail first
    same(runs, pages, "alloc_pages 0 gfp=GFP_HIGHUSER_MOVABLE count=160000 use=anon tag=a")
    same(runs, pages, "sleep 1s")
    assert k.vm_events.get("pgsteal_kswapd", 0) + k.vm_events.get("pgsteal_direct", 0) > 0
    # reclaim (kswapd beside the fill, then direct) takes the inactive list from its tail:
    # 1..4994 (4990..4994 referenced: clean page cache is reclaimed all the same), then
    # 5003..10000; the active 4995..5002 stay while any inactive page is left
    inactive = list(range(1, 4995)) + list(range(5003, 10001))
    states = [k.tasks.lookup(i).state for i in inactive]
    gone = states.count("reclaimed")
    # the inactive tail first, in ID order; when reclaim goes on into the active list (node 1
    # now follows node 0 below 4 GiB, so the fill squeezes harder), it takes that list from
    # its oldest end: the newest activated IDs are the last to stay
    active = [5000, 4995, 4996, 4997, 4998, 4999, 5001, 5002]         # oldest first, as above
    live = [i + 1 for i, st in enumerate(states) if st != "reclaimed"]
    assert gone and (states[:gone] == ["reclaimed"] * gone and "reclaimed" not in states[gone:]
                     or sorted(active[len(active) - len(live):]) == live)
    assert state_digest(k) == state_digest(pages.kernel)
    check(k)
    check(pages.kernel)
