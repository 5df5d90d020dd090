"""pictures/: SVG drawings of the live state, and an index.html that shows them all.

Like every view these are pure functions of the kernel's state (same state, same bytes),
rendered when opened.  The shapes are the kernel's own structures:

* ``map-node<N>-<zone>.svg``: one cell per pageblock (pageblock_order pages), in pfn order,
  rows wrapped.  A band at the top of the cell is the pageblock's migratetype
  (get_pageblock_migratetype); below it the block's pages stacked by what they are:
  free on the buddy lists (shaded by the order of the free block they sit in: dark orange
  is order 0, fragmented; pale is a whole max-order block), free on a per-cpu list, allocated
  (coloured by use: anon, page cache, slab, ...), and reserved (memblock, holes).
* ``zones.svg``: per zone NR_FREE_PAGES against min/low/high and high + lowmem_reserve[]
  (what __zone_watermark_ok() compares), and free_area[] per order (buddyinfo) as bars
  split by migratetype.
* ``slabs.svg``: the biggest caches' slabs as cells by where SLUB keeps them (cpu slab, cpu
  partial, node partial, empty on the node partial list, full on no list), filled to inuse.
* ``nodes.svg``: each node's pages by use (the node_stat counters meminfo sums).

A 1 TiB zone is 131072 pageblocks: runs of identical cells in a row become one rectangle,
so untouched memory costs nothing and the drawing's size follows the state's complexity.
"""
from __future__ import annotations

from math import log2

from ..mm.buddy import MIGRATETYPE_NAMES, NR_PAGE_ORDERS, pindex_to_order
from ..mm.layout import ZONE_NAMES, build
from ..mm.timeline import EVENTS
from ..mm.page_types import MAX_PAGE_ORDER, PAGEBLOCK_NR_PAGES, PAGEBLOCK_ORDER, pageblock_ranges
from . import View
from .svg import blend, document, human, legend, num, rect, row_runs, text

DIR = "pictures"

MIGRATETYPE_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#7f7f7f")
# Free pages: dark orange for order 0 (fragmented) to pale blue for a max-order block.
FREE_LOW, FREE_HIGH = "#e6550d", "#deebf7"
FREE_COLOURS = tuple(blend(FREE_LOW, FREE_HIGH, o / MAX_PAGE_ORDER) for o in range(NR_PAGE_ORDERS))
# What a page not on the buddy lists is, in the order the layers are stacked in a cell.
PCP = "pcp lists"
SLAB = "slab"
KERNEL = "kernel (other)"
RESERVED = "reserved"
USE_COLOURS = {
    PCP: "#ffd92f",
    "anon": "#8c564b",
    "pagecache": "#bcbd22",
    SLAB: "#393b79",
    "kernel_stack": "#e377c2",
    "page_tables": "#17becf",
    "percpu": "#ff7f0e",
    "vmalloc": "#9edae5",
    KERNEL: "#636363",
    RESERVED: "#111111",
}
LAYERS = tuple(USE_COLOURS)
# Owners: the tagged task (control's tag=) holding most of a pageblock's page allocations
# gets a corner mark in the cell, one colour per task (by pid).
OWNER_COLOURS = ("#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628", "#f781bf", "#000000")


def map_legend() -> list[tuple[str, str]]:
    """Every name the map legend shows (docs/files.md lists the same)."""
    items = [(f"{n} pageblock", c) for n, c in zip(MIGRATETYPE_NAMES, MIGRATETYPE_COLOURS, strict=False)]
    items += [(f"free order {o}", FREE_COLOURS[o]) for o in range(NR_PAGE_ORDERS)]
    items += [(name, USE_COLOURS[name]) for name in LAYERS]
    return items


# --- the memory map ------------------------------------------------------------------------
def _slab_pfns(k):
    return k.slab.slab_pfns() if k.slab is not None else ()


def owner_colour(pid: int) -> str:
    return OWNER_COLOURS[pid % len(OWNER_COLOURS)]


def block_owners(k, z) -> dict[int, int]:
    """Pageblock index -> pid of the tagged task owning most of its page allocations."""
    tasks = getattr(k, "tasks", None)
    if tasks is None:
        return {}
    base = z.start_pfn >> PAGEBLOCK_ORDER
    pages: dict[int, dict[int, int]] = {}
    for b in tasks.batches():
        if b.kind != "pages" or b.task.tag is None:
            continue
        pid = b.task.pid
        for _, bz, pfn, members in b.runs():     # runs of contiguous blocks, not pages
            if bz is z:
                for lo, hi in pageblock_ranges(pfn, pfn + (members << b.what)):
                    d = pages.setdefault((lo >> PAGEBLOCK_ORDER) - base, {})
                    d[pid] = d.get(pid, 0) + hi - lo
    return {blk: min(d, key=lambda pid: (-d[pid], pid)) for blk, d in pages.items()}


def pageblock_cells(k, z) -> list[tuple]:
    """One tuple per pageblock of z: (migratetype, largest free order or -1, pages per layer,
    owner pid or 0).

    Layers are free (buddy lists) first, then LAYERS; the reserved layer takes what is
    left, so pages outside the zone's span read as reserved too.
    """
    n = len(z.pageblock_mt)
    base = z.start_pfn >> PAGEBLOCK_ORDER
    free = [0] * n
    top = [-1] * n
    for pfn, o, _mt in z.free_blocks():
        b = (pfn >> PAGEBLOCK_ORDER) - base
        if o >= PAGEBLOCK_ORDER:
            for i in range(b, b + (1 << (o - PAGEBLOCK_ORDER))):
                free[i] = PAGEBLOCK_NR_PAGES
                top[i] = o
        else:
            free[b] += 1 << o
            if o > top[b]:
                top[b] = o
    used: dict[int, dict[str, int]] = {}

    def add_range(pfn, npages, what):
        for lo, hi in pageblock_ranges(pfn, pfn + npages):
            d = used.setdefault((lo >> PAGEBLOCK_ORDER) - base, {})
            d[what] = d.get(what, 0) + hi - lo

    def add(pfn, order, what):
        add_range(pfn, 1 << order, what)

    for pcp in z.pcp:
        for pindex, lst in enumerate(pcp.lists):
            o = pindex_to_order(pindex)
            for pfn in lst:
                add(pfn, o, PCP)
    slabs = _slab_pfns(k)
    for pfn, page in z.allocated.items():
        add(pfn, page.order, page.use or (SLAB if pfn in slabs else KERNEL))
    run_pages = getattr(getattr(k, "tasks", None), "run_pages", None)
    for rz, pfn, npages, b in (run_pages() if run_pages else ()):   # order-0 bulk work kept as runs
        if rz is z:
            add_range(pfn, npages, b.use or KERNEL)
    cells = []
    owners = block_owners(k, z)
    plain: dict[tuple, tuple] = {}              # blocks holding only free and reserved pages
    rest = (0,) * (len(LAYERS) - 1)
    mts = z.pageblock_mt
    append = cells.append
    for b, key in enumerate(zip(mts, top, free, strict=False)):
        if b not in used and b not in owners:
            cell = plain.get(key)
            if cell is None:
                mt, t, f = key
                cell = plain[key] = (mt, t, (f,) + rest + (PAGEBLOCK_NR_PAGES - f,), 0)
            append(cell)
            continue
        d = used.get(b, {})
        layers = [key[2]] + [d.get(name, 0) for name in LAYERS[:-1]]
        layers.append(PAGEBLOCK_NR_PAGES - sum(layers))
        append((key[0], key[1], tuple(layers), owners.get(b, 0)))
    return cells


def cell_look(cell: tuple, body: int) -> tuple:
    """What a cell shows: its layers in whole pixels of a body this tall (boundaries rounded,
    so the heights sum to body), and the free shade only when the free layer is visible."""
    mt, order, layers, owner = cell
    edges, acc = [0], 0
    for n in layers:
        acc += n
        edges.append(round(acc * body / PAGEBLOCK_NR_PAGES))
    heights = tuple(b - a for a, b in zip(edges, edges[1:], strict=False))
    return mt, order if heights[0] else -1, heights, owner


def grid(nblocks: int) -> tuple[int, int, int]:
    """(columns, cell size, band): small zones big cells (tiny's 24 pageblocks in two rows of
    40 px cells, large enough to read), 1 TiB zones 256 columns of 6 px; the top band
    (migratetype) is a quarter of the cell, the body the rest."""
    cols, c = (min(max(nblocks, 1), 16), 40) if nblocks <= 64 else (64, 12) if nblocks <= 4096 else (256, 6)
    return cols, c, max(2, c // 4)


def render_map(k, nid: int, zidx: int) -> bytes:
    z = k.nodes[nid].zones[zidx]
    cells = pageblock_cells(k, z)
    cols, c, band = grid(len(cells))
    body = c - band
    left, top = 92, 52
    rows = -(-len(cells) // cols)
    width = max(left + cols * c + 20, 760)
    title = (f"Node {nid}, zone {z.name}: pfn {z.start_pfn:#x}-{z.end_pfn:#x}, {len(cells)} pageblocks "
             f"of {PAGEBLOCK_NR_PAGES} pages, one cell each")
    out = [text(10, 20, title, 14, weight="bold"),
           text(10, 38, f"free {human(z.nr_free)} of {human(z.managed)} managed; "
                        f"top band: migratetype; body: pages by state, free ones by the order of their block", 11)]
    label_every = max(1, 16 // c)
    for r in range(0, rows, label_every):
        out.append(text(left - 6, top + r * c + c - 1, f"{z.start_pfn + r * cols * PAGEBLOCK_NR_PAGES:#x}",
                        min(10, max(c, 8) + 1), anchor="end", fill="#555"))
    mts = [cell[0] for cell in cells]
    for r, c0, length, mt in row_runs(mts, cols):
        out.append(rect(left + c0 * c, top + r * c, length * c, band, MIGRATETYPE_COLOURS[mt]))
    colours = (None,) + tuple(USE_COLOURS[name] for name in LAYERS)
    memo: dict[tuple, tuple] = {}
    looks = [memo.get(cell) or memo.setdefault(cell, cell_look(cell, body)) for cell in cells]
    marks = []
    for r, c0, length, (_mt, order, heights, owner) in row_runs(looks, cols):
        y = top + r * c + band
        x, w = left + c0 * c, length * c
        for i, h in enumerate(heights):
            if h:
                out.append(rect(x, y, w, h, colours[i] if i else FREE_COLOURS[order]))
                y += h
        if owner:                                # a corner square per owned cell
            s = max(2, c // 3)
            marks += [rect(x + j * c + c - s - 1, top + r * c + c - s - 1, s, s, owner_colour(owner),
                           ' stroke="#ffffff" stroke-width="0.5"') for j in range(length)]
    out += marks
    if c >= 12:                                  # cell borders, one pattern for the whole map
        out.insert(0, f'<defs><pattern id="cell" width="{c}" height="{c}" patternUnits="userSpaceOnUse">'
                      f'<rect width="{c}" height="{c}" fill="none" stroke="#ffffff" stroke-width="1"/>'
                      f'</pattern></defs>')
        out.append(rect(left, top, cols * c, rows * c, "url(#cell)"))
    y = top + rows * c + 16
    parts, h = legend(10, y, map_legend(), width - 20)
    owners = sorted({cell[3] for cell in cells if cell[3]})
    if owners:                                   # the tasks whose marks are on the map
        names = {t.pid: t.comm for t in k.tasks}
        more, h2 = legend(10, y + h, [(f"owner {names.get(pid, pid)} (pid {pid})", owner_colour(pid))
                                      for pid in owners], width - 20)
        parts += more
        h += h2
    return document(width, y + h + 6, out + parts, title)


# --- zones: watermarks and buddyinfo ---------------------------------------------------------
def _zone_panel(z, y: float, width: float) -> tuple[list[str], float]:
    out = [text(10, y + 14, f"Node {z.node}, zone {z.name}", 13, weight="bold")]
    reserves = [(ZONE_NAMES[j], r) for j, r in enumerate(z.lowmem_reserve) if j > z.idx and r]
    marks = [("min", z.wmark_min), ("low", z.wmark_low), ("high", z.wmark_high)]
    marks += [(f"high+lowmem_reserve[{name}]", z.wmark_high + r) for name, r in reserves]
    finite = [v for _, v in marks if v < z.managed * 4]
    axis = max([z.nr_free] + finite + [1])
    if z.nr_free > 4 * max(finite + [1]):        # free far above every mark: zoom on the marks
        axis = 4 * max(finite + [1])
    x0, bw, by = 150, width - 170, y + 36
    scale = bw / axis
    out.append(text(10, by + 13, "free pages", 11))
    out.append(rect(x0, by, bw, 18, "#f0f0f0", ' stroke="#999" stroke-width="0.5"'))
    fill = "#2ca02c" if z.nr_free > z.wmark_high else "#ff7f0e" if z.nr_free > z.wmark_min else "#d62728"
    out.append(rect(x0, by, min(z.nr_free, axis) * scale, 18, fill))
    clipped = " (bar clipped: axis zoomed on the marks)" if z.nr_free > axis else ""
    out.append(text(x0, by - 6, f"NR_FREE_PAGES {z.nr_free} ({human(z.nr_free)}){clipped}", 11))
    rows: list[float] = []                      # right end of the last label in each label row
    for v, names in _grouped(marks):
        if v > axis:
            continue
        x = x0 + v * scale
        label = f"{'/'.join(names)} {v}"
        half = 3 * len(label)
        lx = min(max(x, half + 4), width - half - 4)     # centred on the tick, but never cut
        row = next((i for i, end in enumerate(rows) if end < lx - half), len(rows))
        rows[row:row + 1] = [lx + half + 4]
        out.append(rect(x - 0.75, by - 4, 1.5, 26, "#000000"))
        out.append(text(lx, by + 34 + 11 * row, label, 10, anchor="middle"))
    # buddyinfo: free_area[order] counts, split by migratetype, log2 height
    gy, gh, gw = by + 48 + 11 * max(len(rows), 1), 70, min(48, (width - x0 - 20) / NR_PAGE_ORDERS)
    out.append(text(10, gy + gh / 2, "free blocks per order", 11))
    out.append(text(10, gy + gh / 2 + 13, "(height: log2(1+n))", 10, fill="#555"))
    peak = log2(1 + max([z.nr_free_order(o) for o in range(NR_PAGE_ORDERS)] + [1]))
    for o in range(NR_PAGE_ORDERS):
        total = z.nr_free_order(o)
        h = gh * log2(1 + total) / peak if total else 0
        x, yb = x0 + o * gw, gy + gh
        for mt in range(len(MIGRATETYPE_NAMES)):
            n = z.free_count(o, mt)
            if n:
                part = h * n / total
                out.append(rect(x + 4, yb - part, gw - 8, part, MIGRATETYPE_COLOURS[mt]))
                yb -= part
        out.append(text(x + gw / 2, gy + gh - h - 3, str(total), 10, anchor="middle"))
        out.append(text(x + gw / 2, gy + gh + 12, f"o{o}", 10, anchor="middle", fill="#555"))
    return out, gy + gh + 24 - y


def _grouped(marks):
    """Marks with equal values share one tick: [(value, [names])] by value."""
    out: dict[int, list[str]] = {}
    for name, v in marks:
        names = out.setdefault(v, [])
        if names and names[-1].endswith("]") and name.startswith(names[-1].split("[")[0] + "["):
            names[-1] = names[-1][:-1] + "," + name.split("[")[1]     # ...[DMA32] + [Normal] -> [DMA32,Normal]
        else:
            names.append(name)
    return sorted(out.items())


def render_zones(k) -> bytes:
    width, y, out = 820, 30, [text(10, 20, "Zones: free pages against the watermarks; buddyinfo", 14,
                                     weight="bold")]
    for z in k.zones:
        if z.populated:
            parts, h = _zone_panel(z, y, width)
            out += parts
            y += h
    parts, h = legend(10, y, list(zip(MIGRATETYPE_NAMES, MIGRATETYPE_COLOURS, strict=False)), width - 20)
    return document(width, y + h + 4, out + parts, "zones")


# --- slab caches ---------------------------------------------------------------------------
SLAB_STATES = (("cpu slab", "#d62728"), ("cpu partial", "#ff7f0e"), ("node partial", "#1f77b4"),
               ("empty", "#9e9e9e"), ("full", "#2ca02c"))
SLAB_CACHES_SHOWN = 8
SLAB_CELLS_MAX = 152                           # two rows; the rest are full slabs, counted


def slab_cells(k, s) -> list[tuple[int, int]]:
    """(state index in SLAB_STATES, fill in 16ths) per slab of cache s, in SLAB_STATES order;
    node partial slabs in list order, full ones last (they sit on no list)."""
    cells = []
    for cpu in sorted(s.cpu_slab):
        cells.append((0, s.cpu_slab[cpu]))
    for cpu in sorted(s.cpu_partial_list):
        cells += [(1, sl) for sl in reversed(s.cpu_partial_list[cpu])]
    for n in s.node:
        if n is not None:
            cells += [(2 if sl.inuse else 3, sl) for sl in n.partial]
    cells.sort(key=lambda c: c[0])              # stable: list order kept within a state
    nfull = s.nr_slabs - len(cells)               # full slabs sit on no list: the rest
    out = [(st, round(16 * sl.inuse / sl.objects)) for st, sl in cells]
    return out + [(4, 16)] * nfull


def _slab_caches_shown(k) -> list:
    """The biggest caches by pages, then the ones with the most slabs on partial lists (where
    frees and refills happen), SLAB_CACHES_SHOWN in all: [(cache, slab_cells)]."""
    caches = k.slab.caches if k.slab is not None else []
    cells = {s.name: slab_cells(k, s) for s in caches}
    big = [s for s in sorted(caches, key=lambda s: (-s.pages, s.name))[:SLAB_CACHES_SHOWN // 2] if s.nr_slabs]
    partial = sorted((s for s in caches if s not in big and s.nr_slabs),
                     key=lambda s: (-sum(st != 4 for st, _ in cells[s.name]), -s.pages, s.name))
    return [(s, cells[s.name]) for s in big + partial[:SLAB_CACHES_SHOWN - len(big)]]


def render_slabs(k) -> bytes:
    width, c, ch, cols = 820, 10, 14, 76
    x0 = 14
    out = [text(10, 20, "Slab caches: the biggest, then the busiest partial lists; one cell per slab, "
                        "filled to objects in use", 14, weight="bold")]
    y = 36
    for s, cells in _slab_caches_shown(k):
        _, total, slabs, _ = s.slabinfo()
        out.append(text(10, y + 12, f"{s.name}: {s.inuse} of {total} objects in use, {slabs} slabs of "
                                    f"{s.objects} x {s.size} B (order {s.order}), {human(s.pages)}", 12,
                        weight="bold"))
        y += 18
        counts = [0] * len(SLAB_STATES)
        for st, _ in cells:
            counts[st] += 1
        out.append(text(10, y + 10, "  ".join(f"{name} {n}" for (name, _), n in zip(SLAB_STATES, counts, strict=False)), 10,
                        fill="#555"))
        y += 14
        shown = cells[:SLAB_CELLS_MAX]
        for r, c0, length, (st, fill) in row_runs(shown, cols):
            x, yy = x0 + c0 * c, y + r * (ch + 2)
            colour = SLAB_STATES[st][1]
            out.append(rect(x, yy, length * c, ch, blend(colour, "#ffffff", 0.75)))
            if fill:
                out.append(rect(x, yy + ch * (16 - fill) / 16, length * c, ch * fill / 16, colour))
            for i in range(0 if c0 else 1, length):   # a white line between slabs
                out.append(rect(x + i * c - 0.5, yy, 1, ch, "#ffffff"))
        y += -(-len(shown) // cols) * (ch + 2)
        if len(cells) > len(shown):
            out.append(text(x0, y + 10, f"... and {len(cells) - len(shown)} more slabs (counted above)", 10))
            y += 12
        y += 8
    parts, h = legend(10, y, list(SLAB_STATES), width - 20)
    return document(width, y + h + 4, out + parts, "slab caches")


# --- nodes ---------------------------------------------------------------------------------
NODE_USES = (("free", FREE_HIGH), (PCP, USE_COLOURS[PCP]), ("page cache", USE_COLOURS["pagecache"]),
             ("anon", USE_COLOURS["anon"]), ("slab reclaimable", "#6b6ecf"),
             ("slab unreclaimable", USE_COLOURS[SLAB]), ("kernel stack", USE_COLOURS["kernel_stack"]),
             ("page tables", USE_COLOURS["page_tables"]), (KERNEL, USE_COLOURS[KERNEL]),
             (RESERVED, USE_COLOURS[RESERVED]))


def node_uses(k, node) -> list[int]:
    """Pages of the node per NODE_USES entry; 'kernel (other)' is managed minus the rest."""
    st = node.stat
    parts = [node.nr_free, sum(z.pcp_count() for z in node.zones), st["nr_file_pages"], st["nr_anon_pages"],
             st["nr_slab_reclaimable"], st["nr_slab_unreclaimable"], st["nr_kernel_stack"] * 1024 // 4096,
             st["nr_page_table_pages"]]
    parts.append(max(0, node.managed - sum(parts)))
    parts.append(node.present - node.managed)
    return parts


def render_nodes(k) -> bytes:
    width, x0 = 820, 90
    bw = width - x0 - 20
    out = [text(10, 20, "Nodes: pages by use", 14, weight="bold")]
    y = 34
    biggest = max([n.present for n in k.nodes] + [1])
    for node in k.nodes:
        out.append(text(10, y + 15, f"node {node.id}", 12, weight="bold"))
        if not node.present:
            out.append(text(x0, y + 15, "no memory (CPUs only)", 11, fill="#555"))
            y += 28
            continue
        x = x0
        scale = bw / biggest
        for (_name, colour), pages in zip(NODE_USES, node_uses(k, node), strict=False):
            if pages:
                out.append(rect(x, y, pages * scale, 22, colour))
                x += pages * scale
        out.append(text(x0, y + 36, f"{human(node.present)} present, {human(node.nr_free)} free", 11))
        y += 48
    parts, h = legend(10, y, list(NODE_USES), width - 20)
    return document(width, y + h + 4, out + parts, "nodes")


# --- the timeline --------------------------------------------------------------------------
TL_LEFT, TL_WIDTH, TL_PLOT_H = 136, 680, 120
TL_LINES = (("free", "#1f77b4", 2), ("min", "#d62728", 1), ("low", "#ff7f0e", 1), ("high", "#2ca02c", 1))
TL_RATES = (("pgscan_kswapd", "#1f77b4"), ("pgsteal_kswapd", "#aec7e8"), ("pgscan_direct", "#d62728"),
            ("pgsteal_direct", "#ff9896"), ("pswpin", "#2ca02c"), ("pswpout", "#98df8a"))
TL_MARKS = (("kswapd running", "#9467bd"), ("direct reclaim stall", "#d62728"), ("compaction stall", "#ff7f0e"),
            ("compaction success", "#2ca02c"), ("allocation failure", "#8c564b"), ("OOM kill", "#000000"))


def _nice_step(span: float, ticks: int = 6) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about ``ticks`` ticks over span."""
    raw = max(span, 1e-9) / ticks
    p = 10 ** int(f"{raw:e}".split("e")[1])
    return next(m * p for m in (1, 2, 5, 10) if m * p >= raw)


def _polyline(points, colour: str, width: float = 1, extra: str = "") -> str:
    pts = " ".join(f"{num(x)},{num(y)}" for x, y in points)
    return f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="{width}"{extra}/>'


def _time_axis(t0: int, t1: int, y: float, h: float) -> list[str]:
    """Vertical grid lines and second labels under a plot of height h at y."""
    span = (t1 - t0) / 1e9
    step = _nice_step(span)
    out, s = [], -(-t0 / 1e9 // step) * step
    while s <= t1 / 1e9 + 1e-9:
        x = TL_LEFT + (s * 1e9 - t0) / max(t1 - t0, 1) * TL_WIDTH
        out.append(rect(x - 0.25, y, 0.5, h, "#dddddd"))
        out.append(text(x, y + h + 12, f"{s:g} s", 10, anchor="middle", fill="#555"))
        s += step
    return out


def render_timeline(k) -> bytes:
    """Each zone's free pages against its marks over simulated time (mm/timeline.py), the
    events that moved them, and the reclaim and swap rates (per second, between samples)."""
    tl = k.timeline
    samples = tl.samples
    width = TL_LEFT + TL_WIDTH + 24
    out = [text(10, 20, "Timeline: free pages against the watermarks over simulated time; "
                        "what reclaim did", 14, weight="bold")]
    if not samples or (len(samples) < 2 and k.now_ns <= samples[0].t_ns):
        out.append(text(10, 44, "Not enough samples yet (one per vmstat tick and per command).", 12))
        return document(width, 60, out, "timeline")
    samples = samples + [samples[-1]._replace(t_ns=k.now_ns)] if k.now_ns > samples[-1].t_ns else samples
    t0, t1 = samples[0].t_ns, samples[-1].t_ns     # drawn on to now: a sample is kept only on a change
    span = max(t1 - t0, 1)

    def x_of(t):
        return TL_LEFT + (t - t0) / span * TL_WIDTH

    out.append(text(10, 38, f"{len(tl.samples)} samples from {t0 / 1e9:.2f} s to {t1 / 1e9:.2f} s after boot; "
                            f"marks include the watermark boost", 11, fill="#555"))
    y = 52
    zones = [z for z in k.zones if z.populated]
    for zi, z in enumerate(zones):
        vals = [s.zones[zi] for s in samples]
        top = max(max(v[0] for v in vals), max(v[3] for v in vals), 1) * 1.05
        out.append(text(10, y + 14, f"Node {z.node}, zone {z.name}", 13, weight="bold"))
        py = y + 22
        out.append(rect(TL_LEFT, py, TL_WIDTH, TL_PLOT_H, "#f7f7f7", ' stroke="#999" stroke-width="0.5"'))
        out += _time_axis(t0, t1, py, TL_PLOT_H)
        for frac in (0, 0.5, 1):
            out.append(text(TL_LEFT - 6, py + TL_PLOT_H * (1 - frac) + 4, human(round(top * frac)), 10,
                            anchor="end", fill="#555"))
        for i, (_name, colour, w) in reversed(list(enumerate(TL_LINES))):
            pts, last = [], None
            for s, v in zip(samples, vals, strict=True):     # steps: a value holds until the next sample
                yv = py + TL_PLOT_H * (1 - v[i] / top)
                if last is not None:
                    pts.append((x_of(s.t_ns), last))
                pts.append((x_of(s.t_ns), yv))
                last = yv
            out.append(_polyline(pts, colour, w))
        boosted = sum(1 for v in vals if v[4])
        note = f"; boosted in {boosted} samples" if boosted else ""
        out.append(text(TL_LEFT, py + TL_PLOT_H + 26, f"now: free {vals[-1][0]}, min {vals[-1][1]}, "
                                                     f"low {vals[-1][2]}, high {vals[-1][3]} pages{note}", 10))
        y = py + TL_PLOT_H + 34
    # events: one row each; a mark at every sample whose counters moved, or where it was noted
    out.append(text(10, y + 14, "Events", 13, weight="bold"))
    y += 22
    rows = {name: y + i * 16 for i, (name, _) in enumerate(TL_MARKS)}
    for name, _colour in TL_MARKS:
        out.append(text(TL_LEFT - 6, rows[name] + 10, name, 10, anchor="end"))
        out.append(rect(TL_LEFT, rows[name] + 6, TL_WIDTH, 0.5, "#cccccc"))
    idx = {name: i for i, name in enumerate(EVENTS)}
    for a, b in zip(samples, samples[1:], strict=False):
        d = [nb - na for na, nb in zip(a.events, b.events, strict=False)]
        xa, xb = round(x_of(a.t_ns)), round(x_of(b.t_ns))     # whole pixels: crisp marks
        if d[idx["pageoutrun"]]:
            out.append(rect(xa, rows["kswapd running"] + 2, max(xb - xa, 2), 9, TL_MARKS[0][1]))
        for col, name in ((len(EVENTS), "direct reclaim stall"), (idx["compact_stall"], "compaction stall"),
                          (idx["compact_success"], "compaction success")):
            if d[col]:
                out.append(rect(xb - 1, rows[name] + 1, 2, 11, dict(TL_MARKS)[name]))
    label_rows: list[float] = []             # right end of the last victim label in each row
    for kind, name in (("alloc_fail", "allocation failure"), ("oom_kill", "OOM kill")):
        for n in k.timeline.notes[kind]:
            if n.t_ns < t0:
                continue
            x = round(x_of(n.t_ns))
            out.append(rect(x - 1, rows[name], 3, 13, dict(TL_MARKS)[name]))
            if kind == "oom_kill":              # the victims' names, in rows so none overlaps
                label = f"killed {n.label}" + (f" (x{n.count})" if n.count > 1 else "")
                w = 6 * len(label)
                x0 = min(x - 2, TL_LEFT + TL_WIDTH - w)
                row = next((i for i, end in enumerate(label_rows) if end < x0), len(label_rows))
                label_rows[row:row + 1] = [x0 + w + 6]
                out.append(text(x0, rows[name] + 26 + 12 * row, label, 10))
    y += len(TL_MARKS) * 16 + 12 + 12 * max(len(label_rows), 1)
    # rates over windows of at least a second (what `sar -B 1` would print): a command's
    # few milliseconds divided into its pages would read as a spike of millions per second
    window = max(1_000_000_000, span // 150)
    edges = [samples[0]]
    for s in samples[1:]:
        if s.t_ns - edges[-1].t_ns >= window or s is samples[-1]:
            edges.append(s)
    out.append(text(10, y + 14, f"Reclaim and swap, pages per second (over windows of "
                                f"{window / 1e9:g} s or more)", 13, weight="bold"))
    py = y + 22
    rates = []
    for name, _ in TL_RATES:
        i = idx[name]
        rates.append([(b.events[i] - a.events[i]) * 1e9 / max(b.t_ns - a.t_ns, 1) for a, b in zip(edges, edges[1:], strict=False)])
    top = max([r for rs in rates for r in rs] + [1]) * 1.05
    out.append(rect(TL_LEFT, py, TL_WIDTH, TL_PLOT_H, "#f7f7f7", ' stroke="#999" stroke-width="0.5"'))
    out += _time_axis(t0, t1, py, TL_PLOT_H)
    for frac in (0, 0.5, 1):
        out.append(text(TL_LEFT - 6, py + TL_PLOT_H * (1 - frac) + 4, f"{top * frac:.0f}", 10, anchor="end",
                        fill="#555"))
    for (_name, colour), rs in zip(TL_RATES, rates, strict=True):
        if any(rs):
            pts = []
            for a, b, r in zip(edges, edges[1:], rs, strict=False):       # a rate holds over its window
                yr = py + TL_PLOT_H * (1 - r / top)
                pts += [(x_of(a.t_ns), yr), (x_of(b.t_ns), yr)]
            out.append(_polyline(pts, colour, 1.5))
    y = py + TL_PLOT_H + 22
    items = [(n, c) for n, c, _ in TL_LINES] + list(TL_MARKS) + [(f"{n}/s", c) for n, c in TL_RATES]
    parts, h = legend(10, y, items, width - 20)
    return document(width, y + h + 4, out + parts, "timeline")


# --- the page ------------------------------------------------------------------------------
def picture_names(zones) -> list[str]:
    """The SVG files, in the order index.html shows them."""
    maps = [f"map-node{nid}-{ZONE_NAMES[idx]}.svg" for nid, idx in zones]
    return ["timeline.svg", "zones.svg", "nodes.svg", "slabs.svg"] + maps


INDEX = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>procsim: {name}</title>
<noscript><meta http-equiv="refresh" content="1"></noscript>
<style>body{{font-family:sans-serif;margin:12px;background:#fafafa}} img{{display:block;margin:8px 0 24px;
border:1px solid #ccc;background:#fff;max-width:100%}} h2{{font-size:15px;margin:0}}</style></head>
<body><h1 style="font-size:18px">procsim: {name}</h1>
<p>Refreshed every second from the mount (open this file straight from it: no server needed).</p>
{imgs}
<script>
// Reload each picture once a second; swap it in only once loaded, so nothing flickers.
setInterval(function () {{
  document.querySelectorAll("img[data-src]").forEach(function (img) {{
    var next = new Image();
    next.onload = function () {{ img.src = next.src; }};
    next.src = img.dataset.src + "?t=" + Date.now();
  }});
}}, 1000);
</script></body></html>
"""


def render_index(names: list[str], machine_name: str) -> bytes:
    imgs = "\n".join(f'<h2>{n}</h2><img data-src="{n}" src="{n}" alt="{n}">' for n in names)
    return INDEX.format(name=machine_name, imgs=imgs).encode()


def populated_zones(machine) -> list[tuple[int, int]]:
    return [(z.node, z.idx) for z in build(machine).zones if z.present]


def files_for(machine) -> dict[str, View]:
    zones = populated_zones(machine)
    names = picture_names(zones)
    out = {f"{DIR}/index.html": View(0o444, lambda k: render_index(names, k.machine.name), exact_size=True),
           f"{DIR}/timeline.svg": View(0o444, render_timeline, exact_size=True),
           f"{DIR}/zones.svg": View(0o444, render_zones, exact_size=True),
           f"{DIR}/nodes.svg": View(0o444, render_nodes, exact_size=True),
           f"{DIR}/slabs.svg": View(0o444, render_slabs, exact_size=True)}
    for (nid, idx), name in zip(zones, names[4:], strict=True):
        out[f"{DIR}/{name}"] = View(0o444, lambda k, nid=nid, idx=idx: render_map(k, nid, idx), exact_size=True)
    return out


FILES: dict[str, View] = {}
