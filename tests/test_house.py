"""The house rules that a reader of the tree relies on (issue 24), checked on every run:
no import cycle among procsim's modules (function-level imports included; `if TYPE_CHECKING`
imports never run), and the core's state declared where it is made, not on first use."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "procsim"


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = p
    return out


def _imports(name: str, path: Path, mods: dict) -> set[str]:
    tree = ast.parse(path.read_text())
    skip = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.If) and getattr(n.test, "id", getattr(n.test, "attr", "")) == "TYPE_CHECKING":
            skip |= {id(x) for b in n.body for x in ast.walk(b)}
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in mods}
        elif isinstance(node, ast.ImportFrom):
            base = pkg.split(".")[:len(pkg.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            subs = {f"{target}.{a.name}" for a in node.names} & set(mods)
            out |= subs
            if target in mods and len(subs) < len(node.names):
                out.add(target)
    return out - {name}


def test_no_import_cycle():
    mods = _modules()
    graph = {m: _imports(m, p, mods) for m, p in mods.items()}
    state: dict[str, int] = {}                  # 1 on the path, 2 done
    cycles = []

    def visit(m, path):
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append(path[path.index(n):] + [n])
            elif n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles


def test_core_state_is_declared_not_defaulted():
    """At most 5 getattr(obj, name, default) reads in procsim/mm (issue 24: state declared in
    the constructors, no attribute made on first use)."""
    pattern = re.compile(r"getattr\([^()]*,[^()]*,")
    hits = [f"{p.name}:{i}" for p in sorted((PKG / "mm").glob("*.py"))
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert len(hits) <= 5, hits


def test_pageblock_ranges_cut_at_pageblock_bounds():
    """One home for cutting a pfn range at pageblock bounds (512-page pageblocks on x86-64):
    golden pieces worked out by hand."""
    from procsim.mm.page_types import pageblock_aligned, pageblock_end_pfn, pageblock_ranges, pageblock_start_pfn
    assert (pageblock_start_pfn(1000), pageblock_end_pfn(1000)) == (512, 1024)
    assert (pageblock_start_pfn(1024), pageblock_end_pfn(1024)) == (1024, 1536)
    assert (pageblock_start_pfn(1023), pageblock_end_pfn(1023)) == (512, 1024)
    assert pageblock_aligned(1536) and not pageblock_aligned(1537)
    assert list(pageblock_ranges(1000, 2100)) == [(1000, 1024), (1024, 1536), (1536, 2048), (2048, 2100)]
    assert list(pageblock_ranges(1000, 2100, True)) == [(2048, 2100), (1536, 2048), (1024, 1536), (1000, 1024)]
    assert list(pageblock_ranges(512, 1024)) == [(512, 1024)]
    assert list(pageblock_ranges(5, 5)) == []


def test_pageblock_arithmetic_has_one_home():
    """Nothing outside page_types.py masks pfns with the pageblock size by hand: the cut
    is pageblock_start_pfn / pageblock_end_pfn / pageblock_ranges."""
    pattern = re.compile(r"PAGEBLOCK_NR_PAGES - 1|\+ 1\) << PAGEBLOCK_ORDER")
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in sorted(PKG.rglob("*.py")) if p.name != "page_types.py"
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not hits, hits


# --- the kernel Slub and Tasks run on (procsim/mm/core_api.py) ------------------------------
SLAB_MEMBERS = {"generation", "nr_cpu_ids", "nodes", "cpu_node", "node_order", "profile", "trace",
                "alloc_pages", "free_pages", "mod_node_stat"}
TASK_MEMBERS = {"nr_cpu_ids", "trace", "slab", "current", "page_runs", "alloc_pages", "free_pages", "task_clock"}
RUNS_MEMBERS = TASK_MEMBERS | {"vm_events", "alloc_pages_runs", "free_pages_run", "default_cpu", "alloc_pages_exact"}


def _kernel_attrs(path: Path) -> set[str]:
    """Every attribute the module reads or sets on its kernel (``self.k.x``, ``k.x``, ``kernel.x``)."""
    out = set()
    for n in ast.walk(ast.parse(path.read_text())):
        if isinstance(n, ast.Attribute):
            v = n.value
            if (isinstance(v, ast.Name) and v.id in ("k", "kernel")) or (
                    isinstance(v, ast.Attribute) and v.attr == "k" and getattr(v.value, "id", "") == "self"):
                out.add(n.attr)
    return out


def test_core_api_lists_what_slub_and_tasks_use():
    """The Protocols list exactly the members named here, and Slub and Tasks touch nothing on
    their kernel that the Protocols do not list (a new use must be declared, and so reach
    the fake)."""
    from procsim.mm.core_api import RunsKernel, SlabKernel, TaskKernel, protocol_members
    assert protocol_members(SlabKernel) == SLAB_MEMBERS
    assert protocol_members(TaskKernel) == TASK_MEMBERS
    assert protocol_members(RunsKernel) == RUNS_MEMBERS
    assert _kernel_attrs(PKG / "mm" / "slub.py") <= SLAB_MEMBERS
    assert _kernel_attrs(PKG / "mm" / "task.py") <= RUNS_MEMBERS
    assert {"alloc_pages", "mod_node_stat", "node_order"} <= _kernel_attrs(PKG / "mm" / "slub.py")  # the scan sees


def _satisfies(obj, proto) -> list[str]:
    """What obj lacks of proto: a member missing, a method not callable, or a parameter of the
    Protocol's method the implementation does not take by that name."""
    import inspect
    from procsim.mm.core_api import protocol_members
    bad = []
    for name in sorted(protocol_members(proto)):
        if not hasattr(obj, name):
            bad.append(f"no {name}")
            continue
        want = getattr(proto, name, None)
        if callable(want):
            have = getattr(obj, name)
            if not callable(have):
                bad.append(f"{name} not callable")
                continue
            params = inspect.signature(have).parameters
            bad += [f"{name}() takes no {p}" for p in list(inspect.signature(want).parameters)[1:] if p not in params]
    return bad


def test_kernel_and_fake_kernel_satisfy_the_core_api():
    from procsim.mm.core_api import RunsKernel, SlabKernel, TaskKernel
    from procsim.testing import FakeKernel, boot
    k = boot("tiny")
    for proto in (SlabKernel, TaskKernel, RunsKernel):
        assert isinstance(k, proto) and _satisfies(k, proto) == [], (proto.__name__, _satisfies(k, proto))
    for fake in (FakeKernel(slab="slub"), FakeKernel(pages_per_node=(2048, 2048), cpus_per_node=(1, 1))):
        for proto in (SlabKernel, TaskKernel):
            assert isinstance(fake, proto) and _satisfies(fake, proto) == [], (proto.__name__, _satisfies(fake, proto))
        assert fake.page_runs is False             # so Tasks never asks it for RunsKernel's members
        assert _satisfies(fake, RunsKernel)        # ... which it does not have
    assert not isinstance(object(), TaskKernel)


def test_pcp_free_rule_has_one_home():
    """free_pages() and the runs path ask one rule (page_alloc._pcp_free_headroom): with
    the zone above its high mark and pcp->high within [high_min, high_max], the frees that
    keep count under high leave high alone and flush nothing; the one that reaches high
    flushes a batch (free_frozen_page_commit()).  tiny: DMA32's cpu-0 pcp, high 660."""
    from procsim.mm.page_alloc import _pcp_free_headroom
    from procsim.testing import boot
    k = boot("tiny")
    pages = [k.alloc_pages(0) for _ in range(1000)]
    z = pages[0].zone
    pcp = z.pcp[0]
    assert {p.zone for p in pages} == {z} and not z.below_high and pcp.high_min <= pcp.high <= pcp.high_max
    count, high = pcp.count, pcp.high
    room = _pcp_free_headroom(pcp, z)
    assert room == high - count - 1 and 0 < room < len(pages)
    for p in pages[:room]:
        k.free_pages(p)
    assert (pcp.count, pcp.high) == (count + room, high)          # every one only counted
    k.free_pages(pages[room])                                     # count reaches high: a batch goes
    assert pcp.count < count + room + 1
    z.below_high = True                                           # ZONE_BELOW_HIGH: every free re-tunes
    assert _pcp_free_headroom(pcp, z) == 0


def test_kswapd_wake_rule_has_one_home():
    """The allocator's shortcut (_kswapd_wake_is_noop) and wakeup_kswapd() ask the same
    rule: while the shortcut says a wake changes nothing, wakeup_kswapd() queues nothing and
    leaves what kswapd was asked for as it was."""
    from procsim.mm import gfp as G
    from procsim.testing import boot
    k = boot("tiny")
    plan = k._plan(0, G.GFP_KERNEL)
    pgdat = k.nodes[0]
    assert not k._kswapd_wake_is_noop(plan)      # just booted: nothing asked yet, a wake notes the zone
    wakeups = k.kswapd_wakeups
    k.wake_all_kswapds(0, G.GFP_KERNEL, plan.zonelist, plan.highest)
    assert k.kswapd_wakeups == wakeups and pgdat.kswapd_highest_zoneidx == plan.highest   # balanced: no wake
    assert k._kswapd_wake_is_noop(plan)          # asked already, still balanced
    before = (pgdat.kswapd_order, pgdat.kswapd_highest_zoneidx, pgdat.kswapd_state, k.kswapd_wakeups)
    k.wake_all_kswapds(0, G.GFP_KERNEL, plan.zonelist, plan.highest)
    assert (pgdat.kswapd_order, pgdat.kswapd_highest_zoneidx, pgdat.kswapd_state, k.kswapd_wakeups) == before
    pgdat.kswapd_failures = 0
    for z in pgdat.zones:                         # a boost: balanced but boosted, the wake goes through
        if z.managed:
            z.boost = 1
    assert not k._kswapd_wake_is_noop(plan)
    k.wake_all_kswapds(0, G.GFP_KERNEL, plan.zonelist, plan.highest)
    assert k.kswapd_wakeups == before[3] + 1
