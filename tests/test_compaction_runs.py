"""compact_memory over allocations kept as runs and over memblock-reserved memory: the
migrate scanner steps over an unmovable run, or a reserved stretch (the memmap: 4 M pages on
big-4s-1t), in one step instead of pfn by pfn.  Same decisions, same counters, same bytes:
each scenario runs with the shortcuts and with them turned off (the pfn-by-pfn reference)."""
from __future__ import annotations

import pytest

import procsim
from procsim.mm import compaction
from procsim.mm.check import check, state_digest

SCENARIOS = {
    "unmovable fill": ["alloc_pages 0 count=60000 tag=k", "compact_memory"],
    "mixed, holes": ["alloc_pages 0 count=30000 tag=k", "alloc_pages 0 count=20000 tag=u use=anon "
                     "gfp=GFP_HIGHUSER_MOVABLE", "alloc_pages 0 count=9000 tag=m gfp=GFP_HIGHUSER_MOVABLE",
                     "free_pages 20001-25000", "free_pages 10001-12000", "alloc_pages 2 count=300 tag=h",
                     "compact_memory", "alloc_pages 9 count=20 gfp=GFP_HIGHUSER_MOVABLE", "compact node=0"],
}


def _reference(monkeypatch):
    """The scanner without its shortcuts: every pfn visited, every run member asked for."""
    monkeypatch.setattr(compaction, "_reserved_end", lambda z, pfn, end: pfn + 1)
    real = procsim.mm.task.Tasks.run_page_finder

    def finder(self, zone):
        find = real(self, zone)
        find.span = lambda pfn: None
        return find
    monkeypatch.setattr(procsim.mm.task.Tasks, "run_page_finder", finder)


def _run(lines):
    sim = procsim.boot("seed-vm")
    replies = []
    for line in lines:
        try:
            replies.append(sim.run(line)[0])
        except procsim.CommandError as e:
            replies.append(e.reply)
    check(sim.kernel)
    views = {v: sim.render(v) for v in ("vmstat", "zoneinfo", "buddyinfo", "pagetypeinfo", "meminfo")}
    return replies, state_digest(sim.kernel), views


@pytest.mark.parametrize("name", SCENARIOS)
def test_compaction_shortcuts_change_nothing(name, monkeypatch):
    fast = _run(SCENARIOS[name])
    with monkeypatch.context() as m:
        _reference(m)
        slow = _run(SCENARIOS[name])
    assert fast[0] == slow[0]
    assert fast[2] == slow[2]                       # compact_migrate_scanned etc. included
    assert fast[1] == slow[1]
    scanned = [l for l in fast[2]["vmstat"].decode().splitlines() if l.startswith("compact_migrate_scanned")]
    assert scanned and int(scanned[0].split()[1]) > 0


import procsim.mm.task  # noqa: E402  (the reference patches its Tasks)
