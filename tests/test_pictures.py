"""pictures/: SVG views checked as XML, against the state they draw, and in a real browser.

The browser tests screenshot with headless Chromium (installed by ``make deps``) and read the
PNG's pixels: the map must change colour exactly in the pageblocks a scripted fragmentation
changed, and nowhere else.
"""
from __future__ import annotations

import os
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from browser import screenshot
from procsim.machine import load
from procsim.mm.page_types import PAGEBLOCK_NR_PAGES
from procsim.session import Session
from procsim.testing import CONFIGS
from procsim.views import pictures as P

ROOT = Path(__file__).resolve().parent.parent

SVG = "{http://www.w3.org/2000/svg}"
DOCS = ROOT / "docs"

# examples/fragmentation.sh in miniature, plus a cache whose slabs end up partial and empty.
FRAGMENT = (["alloc_pages 0 tag=keep\nalloc_pages 0 tag=drop"] * 3000 + ["free_pages tag=drop"]
            + ["kmem_cache_create demo 700"]
            + ["kmem_cache_alloc demo count=20 tag=a\nkmem_cache_alloc demo count=12 tag=b"] * 40
            + ["kmem_cache_free demo tag=b"])


def session(config="seed-vm") -> Session:
    return Session(load(CONFIGS / f"{config}.yaml"))


def fragment(s: Session):
    for r in s.execute_text("\n".join(FRAGMENT)):
        assert not r.errno, r.text


def texts(svg: bytes) -> list[str]:
    return [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]


def test_every_picture_is_listed_valid_svg_and_in_the_index():
    s = session()
    names = [p for p in s.paths() if p.startswith("pictures/")]
    assert "pictures/map-node0-DMA32.svg" in names and "pictures/map-node0-DMA.svg" in names
    index = s.render("pictures/index.html").decode()
    for p in names:
        if p.endswith(".svg"):
            root = ET.fromstring(s.render(p))
            assert root.tag == f"{SVG}svg"
            assert f'src="{p.split("/")[1]}"' in index
    assert 'http-equiv="refresh" content="1"' in index and "setInterval" in index


def test_pictures_are_deterministic_and_follow_the_state():
    a, b = session(), session()
    for s in (a, b):
        fragment(s)
    for p in a.paths():
        if p.startswith("pictures/"):
            assert a.render(p) == b.render(p), p
    assert a.render("pictures/map-node0-DMA32.svg") != session().render("pictures/map-node0-DMA32.svg")


def test_map_cells_count_the_pages_the_buddy_and_pcp_lists_hold(seed_vm):
    """Σ over cells of the free layer is NR_FREE_PAGES; the pcp layer is the pcp count."""
    z = seed_vm.nodes[0].zones[1]
    cells = P.pageblock_cells(seed_vm, z)
    assert len(cells) == (z.end_pfn - 1) // PAGEBLOCK_NR_PAGES - z.start_pfn // PAGEBLOCK_NR_PAGES + 1
    assert sum(c[2][0] for c in cells) == z.nr_free
    assert sum(c[2][1 + P.LAYERS.index(P.PCP)] for c in cells) == z.pcp_count()
    assert all(sum(c[2]) == PAGEBLOCK_NR_PAGES and min(c[2]) >= 0 for c in cells)
    assert [c[0] for c in cells] == list(z.pageblock_mt)
    assert all(c[3] == 0 for c in cells)                      # boot memory belongs to no task


def test_a_tagged_block_is_marked_with_its_owner():
    """alloc_pages 9 (one whole pageblock) for tag=mine: that cell, and only it, carries
    mine's pid, and the legend names the task."""
    s = session()
    run = s.execute_text("alloc_pages 9 tag=mine\nalloc_pages 0 count=3")    # untagged: no owner
    assert not any(r.errno for r in run)
    k = s.kernel
    task = k.tasks.find_task("mine")
    pfn = next(b for b in k.tasks.batches(task)).entries().__next__()[1]
    z = next(z for z in k.zones if z.start_pfn <= pfn < z.end_pfn)
    cells = P.pageblock_cells(k, z)
    owned = [i for i, c in enumerate(cells) if c[3]]
    assert owned == [(pfn >> 9) - (z.start_pfn >> 9)] and cells[owned[0]][3] == task.pid
    svg = s.render(f"pictures/map-node{z.node}-{z.name}.svg")
    assert f"owner mine (pid {task.pid})" in texts(svg)


def test_slab_cells_follow_slubs_lists():
    """The hand-worked scenario of test_slab_sysfs: 12 half-full slabs of dma-kmalloc-256 are
    1 cpu slab, 4 on cpu 0's partial list, 7 on the node partial list; none full."""
    s = session()
    run = s.execute_text("\n".join(["kmalloc 256 gfp=GFP_DMA count=8 tag=a\nkmalloc 256 gfp=GFP_DMA count=8 tag=b"]
                                   * 12 + ["kfree tag=b"]))
    assert not any(r.errno for r in run)
    cells = P.slab_cells(s.kernel, s.kernel.slab.find("dma-kmalloc-256"))
    assert cells == [(0, 8)] + [(1, 8)] * 4 + [(2, 8)] * 7
    assert "dma-kmalloc-256" in [c.name for c, _ in P._slab_caches_shown(s.kernel)]


def test_node_uses_add_up_to_present_pages(seed_vm):
    node = seed_vm.nodes[0]
    parts = P.node_uses(seed_vm, node)
    assert sum(parts) == node.present and min(parts) >= 0
    assert parts[0] == node.nr_free


def test_legend_names_what_the_readme_says():
    readme = (ROOT / "docs" / "files.md").read_text()
    line = re.search(r"Legend: (.*?)\.\n", readme, re.S).group(1)
    names = [n.strip() for n in line.replace("\n", " ").split(",")]
    expanded = []
    for n in names:
        if "…" in n:                                # "free order 0 … free order 10"
            lo, hi = (int(x) for x in re.findall(r"\d+", n))
            expanded += [f"free order {o}" for o in range(lo, hi + 1)]
        else:
            expanded.append(n)
    shown = texts(session().render("pictures/map-node0-DMA32.svg"))
    assert sorted(expanded) == sorted(t for t in shown if t in expanded)
    assert len(expanded) == len(P.map_legend())
    for name in expanded:
        assert name in shown, name


def test_big_machine_map_stays_small(big):
    """A 1 TiB zone of untouched memory: 131072 pageblocks, runs drawn as single rectangles."""
    z = big.nodes[1].zones[2]
    svg = P.render_map(big, 1, 2)
    ET.fromstring(svg)
    assert len(z.pageblock_mt) == 131072
    assert len(svg) < 200_000


# --- in the browser ----------------------------------------------------------------------------
def _changed_cells(before, after):
    return [i for i, (x, y) in enumerate(zip(before, after, strict=False)) if x != y]


def test_browser_map_changes_colour_where_the_state_changed(tmp_path):
    s = session()
    k = s.kernel
    z = k.nodes[0].zones[1]
    before_cells = P.pageblock_cells(k, z)
    (tmp_path / "before.svg").write_bytes(s.render("pictures/map-node0-DMA32.svg"))
    fragment(s)
    after_cells = P.pageblock_cells(k, z)
    svg = s.render("pictures/map-node0-DMA32.svg")
    (tmp_path / "after.svg").write_bytes(svg)
    size = (900, 420)
    a = screenshot((tmp_path / "before.svg").as_uri(), tmp_path / "before.png", size)
    b = screenshot((tmp_path / "after.svg").as_uri(), tmp_path / "after.png", size)
    cols, c, band = P.grid(len(after_cells))
    looks = [[P.cell_look(cell, c - band) for cell in cells] for cells in (before_cells, after_cells)]
    changed = set(_changed_cells(*looks))
    assert changed, "the fragmentation changed no pageblock's look"
    left, top = 92, 52                                   # render_map's origin

    def cell_pixels(png, i):
        r, col = divmod(i, cols)
        return [png.pixel(left + col * c + dx, top + r * c + dy) for dx in range(1, c - 1) for dy in range(1, c - 1)]

    for i in range(len(after_cells)):
        same = cell_pixels(a, i) == cell_pixels(b, i)
        assert same != (i in changed), f"pageblock {i}: changed={i in changed} but pixels same={same}"


def test_browser_screenshots_are_not_blank(tmp_path):
    s = session()
    fragment(s)
    for name, size in (("map-node0-DMA32", (900, 380)), ("zones", (840, 470)), ("slabs", (840, 760)),
                       ("nodes", (840, 130))):
        svg = tmp_path / f"{name}.svg"
        svg.write_bytes(s.render(f"pictures/{name}.svg"))
        png = screenshot(svg.as_uri(), tmp_path / f"{name}.png", size)
        assert png.width == size[0]
        assert len(png.colours()) >= 8, name
        assert png.non_white() > 0.05, name
        if os.environ.get("PROCSIM_DOCS"):      # PROCSIM_DOCS=1 pytest ... refreshes the README's screenshots
            shutil.copyfile(tmp_path / f"{name}.png", DOCS / f"{name}.png")


def test_browser_index_page_from_the_mount(mounted, tmp_path):
    """index.html opened as a file straight from the FUSE mount shows every picture."""
    mp = mounted("tiny")
    png = screenshot((mp / "pictures" / "index.html").as_uri(), tmp_path / "index.png", (900, 1400))
    assert png.non_white() > 0.2
    # the zones picture's green NR_FREE_PAGES bar is somewhere on the page: it was loaded
    assert any(abs(r - 0x2c) < 8 and abs(g - 0xa0) < 8 and abs(b_ - 0x2c) < 8 for r, g, b_ in png.colours())
