"""Physical memory layout of an x86-64 machine: e820 map, nodes, zones, memblock reservations.

Pure arithmetic on page frame numbers (pfns); nothing here is per page, so a 64 TiB machine
costs as much as a 64 MiB one.  The rules (arch/x86/kernel/setup.c, arch/x86/mm/init.c,
mm/mm_init.c):

* pfn 0 is reserved (trim_bios_range), 640 KiB..1 MiB is the legacy hole, and 6.x reserves
  the whole first MiB (reserve_real_mode), so DMA shows spanned 4095 / present 3998 /
  managed 3840 on every PC.
* Nodes follow one another in physical address order from pfn 0; RAM from
  ``pci_hole_start`` up is displaced above 4 GiB, splitting whichever node straddles it.
* Zones: DMA [.., 16 MiB), DMA32 [16 MiB, 4 GiB), Normal above; Movable is carved from the
  top of each node's highest zone (Normal, or DMA32 when no RAM is above 4 GiB) when
  kernelcore/movablecore ask; Device is always empty.
* Firmware-reserved e820 ranges (``reserved.e820``) are no RAM: they shrink spanned/present.
* managed = present - memblock reservations (``_memblock_reserve`` lists them in boot order:
  the low MiB, the kernel image, initrd, NODE_DATA, crashkernel, memmap, the per-cpu first
  chunk, the single-node hash tables, SWIOTLB).  The initrd and the kernel's init memory are
  ``late``: freed after the watermarks are set (ZoneLayout.late).
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from typing import TYPE_CHECKING

from .page_types import MiB, GiB, PAGE_SIZE

if TYPE_CHECKING:                                # the description's type only: layout.py is a leaf
    from ..machine import Machine
from .page_types import PAGE_SHIFT, MAX_ORDER_NR_PAGES, PAGEBLOCK_ORDER, PAGEBLOCK_NR_PAGES  # noqa: F401
from .page_types import (ZONE_DMA, ZONE_DMA32, ZONE_NORMAL, ZONE_MOVABLE, ZONE_DEVICE,  # noqa: F401 (re-exported)
                         MAX_NR_ZONES, ZONE_NAMES)
MAX_DMA_PFN = (16 * MiB) >> PAGE_SHIFT          # 4096
MAX_DMA32_PFN = (4 * GiB) >> PAGE_SHIFT         # 1048576
PAGES_PER_SECTION = (128 * MiB) >> PAGE_SHIFT   # SECTION_SIZE_BITS 27
STRUCT_PAGE_SIZE = 64
KERNEL_LOAD_PFN = (16 * MiB) >> PAGE_SHIFT      # CONFIG_PHYSICAL_START
LOW_HOLE = (0x9F, 0x100)                        # e820 RAM ends at 0x9fc00: pfns 159..255 are no RAM
NODE_DATA_PAGES = 43                            # sizeof(pg_data_t) with NR_CPUS 8192, MAX_NUMNODES 1024
PCPU_FIRST_CHUNK_PAGES = 62                     # 6.1 "percpu: Embedded 62 pages/cpu" (Debian config)
HASH_BUCKET_SIZE = 8                            # struct hlist_bl_head / hlist_head
SWIOTLB_DEFAULT = 64 << 20                      # IO_TLB_DEFAULT_SIZE
IO_TLB_SHIFT = 11                               # 2 KiB slabs
IO_TLB_SLOT_SIZE = 24                           # struct io_tlb_slot

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
    late: tuple[Range, ...] = ()    # reserved at boot, freed after the watermarks are set (initrd, initmem)

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
    late: bool = False              # freed to the buddy after init_per_zone_wmark_min (free_initmem, initrd)


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


def merge_ranges(ranges) -> list[tuple[int, int]]:
    """[s, e) ranges sorted, overlapping or touching ones joined, empty ones dropped."""
    out: list[tuple[int, int]] = []
    for s, e in sorted(ranges):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        elif e > s:
            out.append((s, e))
    return out


def subtract_ranges(ranges, holes) -> tuple:
    """The parts of [s, e) ranges outside the holes, in order (memblock_remove() of each hole);
    each range finds its first hole by bisection, so long lists of both cost little."""
    holes = merge_ranges(holes)
    ends = [he for _, he in holes]
    out = []
    for s, e in ranges:
        cur = s
        i = bisect_right(ends, s)
        while i < len(holes) and holes[i][0] < e:
            hs, he = holes[i]
            if hs > cur:
                out.append((cur, hs))
            cur = max(cur, he)
            i += 1
        if cur < e:
            out.append((cur, e))
    return tuple(out)


def _alloc_top_down(ranges, taken, size, limit, align):
    """memblock_alloc_range top-down: highest aligned free [s, s+size) below limit."""
    for s, e in reversed(subtract_ranges(_clip(ranges, 0, limit), taken)):
        start = ((e - size) // align) * align
        if start >= s:
            return start, start + size
    return None


def place_dimms(m: Machine) -> list[tuple[Range, ...]]:
    """Per socket, the pfn ranges its DIMMs are decoded at.  Firmware lays the nodes out one
    after another in physical address order (qemu's SRAT: each node's base is the previous
    node's end); RAM from ``pci_hole_start`` up is moved above 4 GiB, so whichever node
    straddles the hole is split in two and every later node lives above 4 GiB.  The one
    placement rule: build() takes node RAM from it, procsim.views.smbios the type 19 mapped
    addresses."""
    hole = m.reserved.pci_hole_start >> PAGE_SHIFT

    def decoded(off: int) -> int:                # RAM offset -> pfn
        return off if off < hole else off - hole + MAX_DMA32_PFN

    placed: list[tuple[Range, ...]] = []
    cursor = 0
    for s in m.sockets:
        pages = m.node_memory(s.id) >> PAGE_SHIFT
        lo, hi = cursor, cursor + pages
        ranges = []
        if lo < min(hi, hole):
            ranges.append((lo, min(hi, hole)))
        if hi > max(lo, hole):
            ranges.append((decoded(max(lo, hole)), decoded(hi)))
        placed.append(tuple(ranges))
        cursor = hi
    return placed


def build(m: Machine) -> Layout:
    placed = place_dimms(m)
    # RAM the kernel sees: the DIMMs less pfn 0 (trim_bios_range), the legacy hole and the
    # firmware-reserved e820 ranges
    node_ram = [tuple(subtract_ranges(r, [(0, 1), LOW_HOLE, *_e820_reserved_pfns(m)])) for r in placed]

    reservations = _memblock_reserve(m, node_ram)
    taken = [(x.start, x.end) for x in reservations]
    late = [(x.start, x.end) for x in reservations if x.late]

    movable_start, movable_zone = _zone_movable_pfns(m, node_ram)
    nodes = []
    for nid, ram in enumerate(node_ram):
        cpus = tuple(m.node_cpus(nid))
        if not ram:
            empty = tuple(ZoneLayout(nid, i, 0, 0, (), (), 0) for i in range(MAX_NR_ZONES))
            nodes.append(NodeLayout(nid, 0, 0, (), empty, cpus))
            continue
        nstart, nend = ram[0][0], ram[-1][1]
        mv = movable_start.get(nid)
        bounds = [(0, MAX_DMA_PFN), (MAX_DMA_PFN, MAX_DMA32_PFN), (MAX_DMA32_PFN, 1 << 62), (0, 0), (0, 0)]
        zones = []
        for idx, (lo, hi) in enumerate(bounds):
            zs, ze = max(lo, nstart), min(hi, nend)
            if mv is not None:                    # adjust_zone_range_for_zone_movable()
                if idx == ZONE_MOVABLE:
                    zs, ze = mv, nend
                elif zs < mv < ze:
                    ze = mv
                elif zs >= mv:
                    ze = zs
            if ze <= zs:
                zones.append(ZoneLayout(nid, idx, 0, 0, (), (), 0))
                continue
            zram = _clip(ram, zs, ze)
            zfree = subtract_ranges(zram, taken)
            nblocks = 0
            for sec in sorted({x for s, e in zram for x in range(s // PAGES_PER_SECTION, (e - 1) // PAGES_PER_SECTION + 1)}):
                lo, hi = max(zs, sec * PAGES_PER_SECTION), min(ze, (sec + 1) * PAGES_PER_SECTION)
                nblocks += ((hi - 1) >> PAGEBLOCK_ORDER) - (lo >> PAGEBLOCK_ORDER) + 1
            zones.append(ZoneLayout(nid, idx, zs, ze, zram, zfree, nblocks,
                                    tuple(r for s, e in late for r in _clip(zram, s, e))))
        nodes.append(NodeLayout(nid, nstart, nend, ram, tuple(zones), cpus))

    all_ram = tuple(r for rs in node_ram for r in rs)
    e820 = [(s << PAGE_SHIFT, e << PAGE_SHIFT, "usable") for s, e in sorted(all_ram)]
    e820.insert(0, (0, 1 << PAGE_SHIFT, "reserved"))
    e820 += [(s, e, "reserved") for s, e in m.reserved.e820]
    return Layout(tuple(nodes), tuple(sorted(e820)), tuple(reservations))


def _e820_reserved_pfns(m: Machine) -> list[Range]:
    """Firmware-reserved e820 ranges as pfns: a page they touch is no RAM (memblock keeps whole
    pages of the usable ranges only)."""
    return [(s >> PAGE_SHIFT, -(-e >> PAGE_SHIFT)) for s, e in m.reserved.e820]


class _Memblock:
    """memblock.reserved as a list of Reservations, with top-down allocation."""

    def __init__(self, node_ram):
        self.all_ram = tuple(x for rs in node_ram for x in rs)
        self.res: list[Reservation] = []

    def taken(self):
        return [(x.start, x.end) for x in self.res]

    def alloc(self, pages, what, ranges=None, limit=1 << 62, align=1, late=False) -> Range:
        """memblock_alloc_try_nid(): top-down in ``ranges`` (a node), then anywhere."""
        got = _alloc_top_down(ranges or self.all_ram, self.taken(), pages, limit, align)
        if got is None and ranges:
            got = _alloc_top_down(self.all_ram, self.taken(), pages, limit, align)
        if got is None:
            raise ValueError(f"no room for {what} ({pages} pages)")
        self.res.append(Reservation(*got, what, late))
        return got

    def free(self, start: int, end: int):
        """memblock_free(): give [start, end) of a reservation back."""
        for i, x in enumerate(self.res):
            if x.start <= start and end <= x.end:
                parts = [Reservation(a, b, x.what, x.late) for a, b in ((x.start, start), (end, x.end)) if b > a]
                self.res[i:i + 1] = parts
                return
        raise ValueError(f"[{start:#x}, {end:#x}) is not reserved")


def _memblock_reserve(m: Machine, node_ram) -> list[Reservation]:
    """memblock reservations, in the order start_kernel() makes them (6.1 and 6.18 alike).

    setup_arch(): the low 1 MiB (reserve_real_mode), the kernel image at 16 MiB, the initrd at
    the top of memory below 4 GiB (the boot loader put it there; populate_rootfs frees it),
    NODE_DATA of each node on the node (alloc_node_data), crashkernel (top-down below 4 GiB),
    each node's memmap (sparse_init), NODE_DATA of memoryless nodes (free_area_init);
    setup_per_cpu_areas(): the per-CPU first chunk, per node (pcpu_embed_first_chunk);
    vfs_caches_init_early(): the dentry and inode hash tables when one node has memory
    (alloc_large_system_hash with hashdist off); mem_init(): the 64 MiB SWIOTLB bounce buffer
    below 4 GiB and its slot array when RAM reaches above 4 GiB and no IOMMU remaps DMA.
    Everything is allocated top-down, as memblock does once the kernel is mapped.
    """
    r = m.reserved
    mb = _Memblock(node_ram)
    mb.res.append(Reservation(0, 256, "low 1 MiB (real mode)"))
    k, init = r.kernel_image >> PAGE_SHIFT, r.initmem >> PAGE_SHIFT
    mb.res.append(Reservation(KERNEL_LOAD_PFN, KERNEL_LOAD_PFN + k - init, "kernel image"))
    if init:
        mb.res.append(Reservation(KERNEL_LOAD_PFN + k - init, KERNEL_LOAD_PFN + k, "kernel initmem", late=True))
    if r.initrd:
        mb.alloc(-(-r.initrd >> PAGE_SHIFT), "initrd", limit=MAX_DMA32_PFN, late=True)
    for nid, ram in enumerate(node_ram):
        if ram:
            mb.alloc(NODE_DATA_PAGES, f"NODE_DATA({nid})", ram)
    if r.crashkernel:
        c = -(-r.crashkernel >> PAGE_SHIFT)
        got = _alloc_top_down(mb.all_ram, mb.taken(), c, MAX_DMA32_PFN, 4096)
        if got:
            mb.res.append(Reservation(*got, "crashkernel"))
    for nid, ram in enumerate(node_ram):
        if not ram:
            continue
        sections = {x for s, e in ram for x in range(s // PAGES_PER_SECTION, (e - 1) // PAGES_PER_SECTION + 1)}
        memmap = len(sections) * PAGES_PER_SECTION * STRUCT_PAGE_SIZE // PAGE_SIZE
        got = _alloc_top_down(ram, mb.taken(), memmap, ram[-1][1], 512)
        if got is None:
            raise ValueError(f"node {nid}: no room for its memmap")
        mb.res.append(Reservation(*got, f"memmap node {nid}"))
    for nid, ram in enumerate(node_ram):
        if not ram:
            mb.alloc(NODE_DATA_PAGES, f"NODE_DATA({nid})")
    _percpu_first_chunk(m, node_ram, mb)
    if sum(1 for ram in node_ram if ram) == 1:
        for what, scale in (("dentry hash", 13), ("inode hash", 14)):
            mb.alloc(_early_hash_pages(node_ram, scale), what)
    swiotlb = r.swiotlb
    if swiotlb is None:
        swiotlb = SWIOTLB_DEFAULT if max(e for _, e in mb.all_ram) > MAX_DMA32_PFN else 0
    if swiotlb:
        mb.alloc(swiotlb >> PAGE_SHIFT, "swiotlb", limit=MAX_DMA32_PFN)
        slots = (swiotlb >> IO_TLB_SHIFT) * IO_TLB_SLOT_SIZE           # a struct io_tlb_slot per 2 KiB
        mb.alloc(-(-slots >> PAGE_SHIFT), "swiotlb slots")
    return mb.res


def _percpu_first_chunk(m: Machine, node_ram, mb: _Memblock):
    """pcpu_embed_first_chunk(): one group per node; pcpu_build_alloc_info() fits ``upa`` units
    in a 2 MiB atom, the most that waste at most a third of the CPUs without more allocations;
    each group is allocated top-down on its node, 2 MiB aligned, and every unit keeps its
    first PCPU_FIRST_CHUNK_PAGES (static + reserved + dynamic) and gives the rest back."""
    groups = [m.node_cpus(nid) for nid in range(m.nr_nodes) if m.node_cpus(nid)]
    atom, ncpus = PAGEBLOCK_NR_PAGES, m.nr_cpu_ids
    best, last = 0, None
    for upa in range(atom // PCPU_FIRST_CHUNK_PAGES, 0, -1):
        if atom % upa:
            continue
        allocs = sum(-(-len(g) // upa) for g in groups)
        wasted = allocs * upa - ncpus
        if wasted > ncpus // 3:
            continue
        if last is not None and allocs > last:
            break
        best, last = upa, allocs
    unit = atom // best
    for g in groups:
        nid = m.cpu_node(g[0])
        units = -(-len(g) // best) * best
        start, end = mb.alloc(units * unit, f"percpu node {nid}", node_ram[nid], align=atom)
        for u in range(units):
            lo = start + u * unit + (PCPU_FIRST_CHUNK_PAGES if u < len(g) else 0)
            mb.free(lo, start + (u + 1) * unit)


def _early_hash_pages(node_ram, scale: int) -> int:
    """alloc_large_system_hash(): one 8-byte bucket per 2^scale bytes of kernel memory (the
    zones' present pages less their memmap, rounded up to a MiB), rounded up to a power of
    two, at most 1/16 of memory."""
    kernel = 0
    for ram in node_ram:
        for lo, hi in ((0, MAX_DMA_PFN), (MAX_DMA_PFN, MAX_DMA32_PFN), (MAX_DMA32_PFN, 1 << 62)):
            z = _clip(ram, lo, hi)
            if z:
                present = sum(e - s for s, e in z)
                spanned = z[-1][1] - z[0][0]
                pages = spanned if spanned <= present + (present >> 4) else present
                kernel += present - (-(-pages * STRUCT_PAGE_SIZE // PAGE_SIZE))
    entries = -(-kernel // 256) * 256 >> (scale - PAGE_SHIFT)
    entries = 1 << (entries - 1).bit_length()
    total = sum(e - s for ram in node_ram for s, e in ram)
    entries = min(entries, (total << PAGE_SHIFT >> 4) // HASH_BUCKET_SIZE, 1 << 31)
    entries = 1 << (entries.bit_length() - 1)
    return max(1, entries * HASH_BUCKET_SIZE >> PAGE_SHIFT)


def find_usable_zone_for_movable(node_ram) -> int:
    """The highest zone the architecture populates (arch_zone_lowest_possible_pfn <
    highest): ZONE_MOVABLE is carved from it.  x86-64's Normal spans [4 GiB, max_pfn), so
    with no RAM above 4 GiB it is DMA32 (mm/page_alloc.c, the same since 2.6.23)."""
    max_pfn = max((e for rs in node_ram for _, e in rs), default=0)
    return ZONE_NORMAL if max_pfn > MAX_DMA32_PFN else ZONE_DMA32


def _zone_movable_pfns(m: Machine, node_ram) -> tuple[dict[int, int], int]:
    """find_zone_movable_pfns_for_nodes(): where ZONE_MOVABLE starts on each node, and the
    zone it is carved from.  movablecore is rounded up to MAX_ORDER_NR_PAGES and turned into
    the kernelcore it leaves; kernelcore is spread evenly over the nodes with memory, memory
    below the movable zone's lowest pfn counting as kernel memory first; nodes that cannot
    hold their share leave the rest to another pass over one node fewer; each start is
    rounded up to MAX_ORDER_NR_PAGES and dropped when it is past the node's end."""
    t = m.tunables
    movable_zone = find_usable_zone_for_movable(node_ram)
    if t.kernelcore is None and t.movablecore is None:
        return {}, movable_zone
    totalpages = sum(e - s for rs in node_ram for s, e in rs)      # early_calculate_totalpages()
    required_kernelcore = (t.kernelcore or 0) >> PAGE_SHIFT
    if t.movablecore:
        required_movablecore = -(-(t.movablecore >> PAGE_SHIFT) // MAX_ORDER_NR_PAGES) * MAX_ORDER_NR_PAGES
        required_movablecore = min(totalpages, required_movablecore)
        required_kernelcore = max(required_kernelcore, totalpages - required_movablecore)
    if not required_kernelcore or required_kernelcore >= totalpages:
        return {}, movable_zone
    usable_startpfn = MAX_DMA_PFN if movable_zone == ZONE_DMA32 else MAX_DMA32_PFN
    nodes = [i for i, rs in enumerate(node_ram) if rs]
    usable_nodes = len(nodes)
    zone_movable_pfn = dict.fromkeys(nodes, 0)
    while True:                                   # restart:
        kernelcore_node = required_kernelcore // usable_nodes
        for nid in nodes:
            if required_kernelcore < kernelcore_node:
                kernelcore_node = required_kernelcore // usable_nodes
            kernelcore_remaining = kernelcore_node
            for start_pfn, end_pfn in node_ram[nid]:
                start_pfn = max(start_pfn, zone_movable_pfn[nid])
                if start_pfn >= end_pfn:
                    continue
                if start_pfn < usable_startpfn:   # only usable for kernelcore
                    kernel_pages = min(end_pfn, usable_startpfn) - start_pfn
                    kernelcore_remaining -= min(kernel_pages, kernelcore_remaining)
                    required_kernelcore -= min(kernel_pages, required_kernelcore)
                    if end_pfn <= usable_startpfn:
                        zone_movable_pfn[nid] = end_pfn
                        continue
                    start_pfn = usable_startpfn
                size_pages = min(end_pfn - start_pfn, kernelcore_remaining)
                zone_movable_pfn[nid] = start_pfn + size_pages
                required_kernelcore -= min(required_kernelcore, size_pages)
                kernelcore_remaining -= size_pages
                if not kernelcore_remaining:
                    break
        usable_nodes -= 1
        if not (usable_nodes and required_kernelcore > usable_nodes):
            break
    out = {}
    for nid in nodes:                             # out2: align, drop starts past the node
        start = -(-zone_movable_pfn[nid] // MAX_ORDER_NR_PAGES) * MAX_ORDER_NR_PAGES
        if start and start < node_ram[nid][-1][1]:
            out[nid] = start
    return out, movable_zone
