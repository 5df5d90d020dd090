"""pictures/timeline.svg and the samples behind it (procsim/mm/timeline.py).

The pressure run is the issue's: seed-vm, twenty one-second steps of anonymous growth by three
tasks until the OOM killer has killed; the picture must show at least twenty samples, kswapd
running and the kills with their victims, and every number it prints must be the zone's own.
"""
from __future__ import annotations

import errno
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

from browser import screenshot
from procsim.machine import load
from procsim.mm import timeline as T
from procsim.session import Session
from procsim.testing import CONFIGS
from procsim.views import pictures as P

SVG = "{http://www.w3.org/2000/svg}"
DOCS = Path(__file__).resolve().parent.parent / "docs"
STEPS = 20


@pytest.fixture(scope="module")
def pressure():
    """seed-vm after STEPS one-second steps, each faulting in 1/18 of the managed pages."""
    s = Session(load(CONFIGS / "seed-vm.yaml"))
    k = s.kernel
    step = sum(z.managed for z in k.zones) // 18
    replies = []
    for i in range(STEPS):
        replies += s.execute_text(f"alloc_pages 0 count={step} tag=hog{i % 3} use=anon "
                                  f"gfp=GFP_HIGHUSER_MOVABLE\nsleep 1")
    assert k.vm_events.get("oom_kill", 0) >= 1, "the run must end in an OOM kill"
    assert all(r.errno in (0, errno.ENOMEM) for r in replies), [r.text for r in replies if r.errno]
    return s


def _svg(s):
    return ET.fromstring(s.render("pictures/timeline.svg"))


def test_timeline_shows_the_pressure_run(pressure):
    s, k = pressure, pressure.kernel
    root = _svg(s)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    # the free line of each zone: one polyline of width 2, a point per sample
    free_lines = [p for p in root.iter(f"{SVG}polyline") if p.get("stroke-width") == "2"]
    assert len(free_lines) == sum(z.populated for z in k.zones)
    assert all(len(p.get("points").split()) >= STEPS for p in free_lines)
    assert len(k.timeline.samples) >= STEPS
    # kswapd ran (a band in its row) and the victims are named
    purple = [r for r in root.iter(f"{SVG}rect") if r.get("fill") == dict(P.TL_MARKS)["kswapd running"]]
    assert len(purple) >= 2                           # one is the legend's swatch
    killed = [t for t in texts if t.startswith("killed hog")]
    assert len(killed) == len(k.timeline.notes["oom_kill"]) >= 1
    assert {t.split()[1] for t in killed} <= {"hog0", "hog1", "hog2"}
    # what it prints "now" is the zone's own state
    for z in k.zones:
        if z.populated:
            assert (f"now: free {z.nr_free}, min {z.wmark_min}, low {z.wmark_low}, high {z.wmark_high} pages"
                    in " ".join(texts)) or any(t.startswith(f"now: free {z.nr_free}, min {z.wmark_min},")
                                               for t in texts)


def test_timeline_is_first_on_the_live_page(pressure):
    index = pressure.render("pictures/index.html").decode()
    first = index.index('src="timeline.svg"')
    assert all(first < index.index(f'src="{n}"') for n in ("zones.svg", "nodes.svg", "slabs.svg"))


def test_rates_are_counter_deltas_over_whole_seconds(pressure):
    """The rate strip's scale is the largest windowed rate, recomputed here from the samples."""
    tl = pressure.kernel.timeline
    samples = tl.samples
    edges = [samples[0]]
    for smp in samples[1:]:
        if smp.t_ns - edges[-1].t_ns >= 1_000_000_000 or smp is samples[-1]:
            edges.append(smp)
    best = max((b.events[T.EVENTS.index(name)] - a.events[T.EVENTS.index(name)]) / ((b.t_ns - a.t_ns) / 1e9)
               for name, _ in P.TL_RATES for a, b in zip(edges, edges[1:], strict=False))
    assert best > 0
    texts = [t.text for t in _svg(pressure).iter(f"{SVG}text")]
    top = max(float(t) for t in texts if t and t.replace(".", "").isdigit())
    assert top >= best * 1.05 - 1                     # the axis covers the biggest rate


def _stub(free, t_ns, oom=0):
    z = SimpleNamespace(populated=True, nr_free=free, wmark_min=10, wmark_low=12, wmark_high=14, boost=0)
    return SimpleNamespace(now_ns=t_ns, zones=[z], vm_events={"oom_kill": oom, "pgscan_kswapd": t_ns})


def test_samples_stay_bounded_keeping_dips_and_counters():
    tl = T.Timeline()
    for i in range(10 * T.CAPACITY):
        tl.sample(_stub(1000 - (i == 3) * 999, i * 1000))   # one dip, early
    assert len(tl.samples) <= T.CAPACITY
    assert min(s.zones[0][0] for s in tl.samples) == 1       # the dip survives the merges
    last = tl.samples[-1]
    assert last.t_ns == (10 * T.CAPACITY - 1) * 1000
    assert last.events[T.EVENTS.index("pgscan_kswapd")] == last.t_ns   # cumulative: the latest value
    assert all(a.t_ns < b.t_ns for a, b in zip(tl.samples, tl.samples[1:], strict=False))
    tl.sample(_stub(5, last.t_ns))                             # same instant: replaced, not added
    assert tl.samples[-1].zones[0][0] == 5 and tl.samples[-2].t_ns < last.t_ns


def test_notes_stay_bounded_and_count_what_they_merged():
    tl = T.Timeline()
    n = 5 * T.NOTES_CAPACITY
    for i in range(n):
        tl.note(_stub(0, i), "oom_kill", f"hog{i % 2}")
    assert len(tl.notes["oom_kill"]) <= T.NOTES_CAPACITY
    assert sum(x.count for x in tl.notes["oom_kill"]) == n
    assert tl.notes["alloc_fail"] == []


def test_the_file_stays_small_however_long_the_machine_runs():
    s = Session(load(CONFIGS / "tiny.yaml"))
    for r in s.execute_text("\n".join(["alloc_pages 0 count=50 tag=a\nfree_pages tag=a"] * (T.CAPACITY + 100))):
        assert not r.errno, r.text
    assert len(s.kernel.timeline.samples) <= T.CAPACITY
    svg = s.render("pictures/timeline.svg")
    ET.fromstring(svg)
    assert len(svg) < 150_000


def test_browser_timeline(pressure, tmp_path):
    """Chromium draws kswapd's bands and the OOM kill marks where the SVG put them."""
    data = pressure.render("pictures/timeline.svg")
    (tmp_path / "timeline.svg").write_bytes(data)
    png = screenshot((tmp_path / "timeline.svg").as_uri(), tmp_path / "timeline.png", (840, 800))
    assert png.non_white() > 0.05
    marks = {dict(P.TL_MARKS)["kswapd running"]: 0, dict(P.TL_MARKS)["OOM kill"]: 0}
    for r in ET.fromstring(data).iter(f"{SVG}rect"):
        if r.get("fill") in marks and r.get("stroke") is None:      # legend swatches have a stroke
            x = float(r.get("x")) + float(r.get("width")) / 2
            y = float(r.get("y")) + float(r.get("height")) / 2
            want = tuple(int(r.get("fill")[i:i + 2], 16) for i in (1, 3, 5))
            assert png.pixel(int(x), int(y)) == want, (r.attrib, png.pixel(int(x), int(y)))
            marks[r.get("fill")] += 1
    assert all(marks.values()), marks
    if os.environ.get("PROCSIM_DOCS"):              # PROCSIM_DOCS=1 refreshes the README's screenshot
        shutil.copyfile(tmp_path / "timeline.png", DOCS / "timeline.png")
