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

