"""Physical memory layout of an x86-64 machine: e820 map, nodes, zones, memblock reservations.

Pure arithmetic on page frame numbers (pfns); nothing here is per page, so a 64 TiB machine
costs as much as a 64 MiB one.  The rules (arch/x86/kernel/setup.c, arch/x86/mm/init.c,
mm/mm_init.c):

* pfn 0 is reserved (trim_bios_range), 640 KiB..1 MiB is the legacy hole, and 6.x reserves
  the whole first MiB (reserve_real_mode), so DMA shows spanned 4095 / present 3998 /
  managed 3840 on every PC.
* Node 0 memory above ``pci_hole_start`` is displaced above 4 GiB; further nodes follow in
  socket order.
* Zones: DMA [.., 16 MiB), DMA32 [16 MiB, 4 GiB), Normal above; Movable is carved from the
  top of each node's Normal memory when kernelcore/movablecore ask; Device is always empty.
* managed = present - memblock reservations: the low MiB, the kernel image at 16 MiB,
  crashkernel (top-down below 4 GiB) and the memmap (64 bytes per page, 2 MiB per 128 MiB
  section, allocated top-down on its own node).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..machine import MiB, GiB, PAGE_SIZE, Machine

from .page_types import PAGE_SHIFT, MAX_ORDER_NR_PAGES, PAGEBLOCK_ORDER, PAGEBLOCK_NR_PAGES  # noqa: F401
ZONE_DMA, ZONE_DMA32, ZONE_NORMAL, ZONE_MOVABLE, ZONE_DEVICE = range(5)
MAX_NR_ZONES = 5
ZONE_NAMES = ("DMA", "DMA32", "Normal", "Movable", "Device")
MAX_DMA_PFN = (16 * MiB) >> PAGE_SHIFT          # 4096
MAX_DMA32_PFN = (4 * GiB) >> PAGE_SHIFT         # 1048576
PAGES_PER_SECTION = (128 * MiB) >> PAGE_SHIFT   # SECTION_SIZE_BITS 27
STRUCT_PAGE_SIZE = 64
KERNEL_LOAD_PFN = (16 * MiB) >> PAGE_SHIFT      # CONFIG_PHYSICAL_START
LOW_HOLE = (0x9F, 0x100)                        # e820 RAM ends at 0x9fc00: pfns 159..255 are no RAM

Range = tuple[int, int]                          # [start, end) in pfns


@dataclass(frozen=True)
class ZoneLayout:
    node: int
    idx: int
    start_pfn: int
    end_pfn: int
    ram: tuple[Range, ...]          # RAM inside the zone span
    free: tuple[Range, ...]         # RAM minus memblock reservations: what the buddy gets
    valid_pageblocks: int           # pageblocks pagetypeinfo counts (their section has RAM)

    @property
    def name(self) -> str:
        return ZONE_NAMES[self.idx]

    @property
    def spanned(self) -> int:
        return self.end_pfn - self.start_pfn

    @property
    def present(self) -> int:
        return sum(e - s for s, e in self.ram)

    @property
    def managed(self) -> int:
        return sum(e - s for s, e in self.free)


@dataclass(frozen=True)
class NodeLayout:
    id: int
    start_pfn: int
    end_pfn: int
    ram: tuple[Range, ...]
    zones: tuple[ZoneLayout, ...]   # always MAX_NR_ZONES entries, empty ones included
    cpus: tuple[int, ...]

    @property
    def present(self) -> int:
        return sum(e - s for s, e in self.ram)


@dataclass(frozen=True)
class Reservation:
    start: int
    end: int
    what: str


@dataclass(frozen=True)
class Layout:
    nodes: tuple[NodeLayout, ...]
    e820: tuple[tuple[int, int, str], ...]      # (start, end, "usable"/"reserved") in bytes
    reservations: tuple[Reservation, ...]

    @property
    def zones(self):
        return [z for n in self.nodes for z in n.zones]


def _clip(ranges, lo, hi):
    return tuple((max(s, lo), min(e, hi)) for s, e in ranges if min(e, hi) > max(s, lo))


def _subtract(ranges, holes):
    out = []
    for s, e in ranges:
        cur = s
        for hs, he in sorted(holes):
            if he <= cur or hs >= e:
                continue
            if hs > cur:
                out.append((cur, hs))
            cur = max(cur, he)
        if cur < e:
            out.append((cur, e))
    return tuple(out)


def _alloc_top_down(ranges, taken, size, limit, align):
    """memblock_alloc_range top-down: highest aligned free [s, s+size) below limit."""
    for s, e in reversed(_subtract(_clip(ranges, 0, limit), taken)):
        start = ((e - size) // align) * align
        if start >= s:
            return start, start + size
    return None


def place_dimms(m: Machine) -> list[tuple[Range, ...]]:
    """Per socket, the pfn ranges its DIMMs are decoded at: node 0 from 0 up to the PCI hole
    and the rest above 4 GiB, further nodes contiguously after it.  The one placement rule:
    build() takes node RAM from it, procsim.smbios the type 19 mapped addresses."""
    hole = m.reserved.pci_hole_start >> PAGE_SHIFT
    placed: list[tuple[Range, ...]] = []
    cursor = 0
    for s in m.sockets:
        pages = m.node_memory(s.id) >> PAGE_SHIFT
        if pages == 0:
            placed.append(())
            continue
        if s.id == 0:
            ranges = [(0, min(pages, hole))]
            if pages > hole:
                ranges.append((MAX_DMA32_PFN, MAX_DMA32_PFN + pages - hole))
        else:
            start = max(cursor, MAX_DMA32_PFN)
            ranges = [(start, start + pages)]
        placed.append(tuple(ranges))
        cursor = ranges[-1][1]
    return placed


def build(m: Machine) -> Layout:
    placed = place_dimms(m)
    # RAM the kernel sees: the DIMMs less pfn 0 (trim_bios_range) and the legacy hole
    node_ram = [tuple(_subtract(r, [(0, 1), LOW_HOLE])) for r in placed]

    # memblock reservations, in setup_arch() order
    all_ram = tuple(r for rs in node_ram for r in rs)
    res: list[Reservation] = [Reservation(0, 256, "low 1 MiB (real mode)")]
    k = m.reserved.kernel_image >> PAGE_SHIFT
    res.append(Reservation(KERNEL_LOAD_PFN, KERNEL_LOAD_PFN + k, "kernel image"))
    if m.reserved.crashkernel:
        c = -(-m.reserved.crashkernel >> PAGE_SHIFT)
        r = _alloc_top_down(all_ram, [(x.start, x.end) for x in res], c, MAX_DMA32_PFN, 4096)
        if r:
            res.append(Reservation(*r, "crashkernel"))
    for nid, ram in enumerate(node_ram):
        if not ram:
            continue
        sections = {x for s, e in ram for x in range(s // PAGES_PER_SECTION, (e - 1) // PAGES_PER_SECTION + 1)}
        memmap = len(sections) * PAGES_PER_SECTION * STRUCT_PAGE_SIZE // PAGE_SIZE
        r = _alloc_top_down(ram, [(x.start, x.end) for x in res], memmap, ram[-1][1], 512)
        if r is None:
            raise ValueError(f"node {nid}: no room for its memmap")
        res.append(Reservation(*r, f"memmap node {nid}"))
    taken = [(x.start, x.end) for x in res]

    movable_start = _zone_movable_pfns(m, node_ram)
    nodes = []
    for nid, ram in enumerate(node_ram):
        cpus = tuple(m.node_cpus(nid))
        if not ram:
            empty = tuple(ZoneLayout(nid, i, 0, 0, (), (), 0) for i in range(MAX_NR_ZONES))
            nodes.append(NodeLayout(nid, 0, 0, (), empty, cpus))
            continue
        nstart, nend = ram[0][0], ram[-1][1]
        mv = movable_start.get(nid)
        bounds = [(0, MAX_DMA_PFN), (MAX_DMA_PFN, MAX_DMA32_PFN),
                  (MAX_DMA32_PFN, mv if mv is not None else 1 << 62),
                  (mv, 1 << 62) if mv is not None else (0, 0), (0, 0)]
        zones = []
        for idx, (lo, hi) in enumerate(bounds):
            zs, ze = max(lo, nstart), min(hi, nend)
            if ze <= zs:
                zones.append(ZoneLayout(nid, idx, 0, 0, (), (), 0))
                continue
            zram = _clip(ram, zs, ze)
            zfree = _subtract(zram, taken)
            nblocks = 0
            for sec in sorted({x for s, e in zram for x in range(s // PAGES_PER_SECTION, (e - 1) // PAGES_PER_SECTION + 1)}):
                lo, hi = max(zs, sec * PAGES_PER_SECTION), min(ze, (sec + 1) * PAGES_PER_SECTION)
                nblocks += ((hi - 1) >> PAGEBLOCK_ORDER) - (lo >> PAGEBLOCK_ORDER) + 1
            zones.append(ZoneLayout(nid, idx, zs, ze, zram, zfree, nblocks))
        nodes.append(NodeLayout(nid, nstart, nend, ram, tuple(zones), cpus))

    e820 = []
    for s, e in sorted(all_ram):
        e820.append((s << PAGE_SHIFT, e << PAGE_SHIFT, "usable"))
    e820.insert(0, (0, 1 << PAGE_SHIFT, "reserved"))
    return Layout(tuple(nodes), tuple(sorted(e820)), tuple(res))


def _zone_movable_pfns(m: Machine, node_ram) -> dict[int, int]:
    """find_zone_movable_pfns_for_nodes(), single pass: spread kernelcore evenly over the
    nodes with memory; memory below 4 GiB counts as kernel memory first; the Movable start
    is rounded up to MAX_ORDER_NR_PAGES."""
    t = m.tunables
    if t.kernelcore is None and t.movablecore is None:
        return {}
    total = sum(e - s for rs in node_ram for s, e in rs)
    if t.movablecore is not None:
        kernel = total - (t.movablecore >> PAGE_SHIFT)
    else:
        kernel = t.kernelcore >> PAGE_SHIFT
    nodes = [i for i, rs in enumerate(node_ram) if rs]
    per_node = -(-kernel // len(nodes))
    out = {}
    for nid in nodes:
        ram = node_ram[nid]
        remaining = per_node
        remaining -= sum(e - s for s, e in _clip(ram, 0, MAX_DMA32_PFN))
        start = None
        for s, e in _clip(ram, MAX_DMA32_PFN, 1 << 62):
            if remaining <= 0:
                start = s
                break
            if e - s > remaining:
                start = s + remaining
                break
            remaining -= e - s
        if start is None:
            continue
        start = -(-start // MAX_ORDER_NR_PAGES) * MAX_ORDER_NR_PAGES
        if start < ram[-1][1]:
            out[nid] = start
    return out
