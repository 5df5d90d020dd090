"""Physical layout: zone spans, present and managed pages checked by independent arithmetic."""
from pathlib import Path

import pytest

from procsim.machine import ConfigError, load, loads, CONFIGS_DIR, GiB, MiB
from procsim.mm.layout import build

P = 4096


def zones(lay):
    return {(z.node, z.name): z for z in lay.zones if z.spanned}


def test_seed_vm_dma_is_every_pc_dma():
    z = zones(build(load(CONFIGS_DIR / "seed-vm.yaml")))
    dma = z[(0, "DMA")]
    # pfn 0 reserved, RAM 1..158 and 256..4095, zone from pfn 1 to 16 MiB
    assert (dma.start_pfn, dma.spanned, dma.present) == (1, 4095, 3998)
    assert dma.managed == 4096 - 256            # 6.x reserves the whole first MiB


def test_seed_vm_dma32_and_reservations():
    m = load(CONFIGS_DIR / "seed-vm.yaml")
    z = zones(build(m))
    dma32 = z[(0, "DMA32")]
    end = 2 * GiB // P
    assert (dma32.start_pfn, dma32.spanned, dma32.present) == (4096, end - 4096, end - 4096)
    kernel = 28 * MiB // P                      # reserved.kernel_image of seed-vm.yaml
    memmap = 16 * (2 * MiB) // P                # 16 sections of 128 MiB, 2 MiB of struct page each
    node_data, percpu = 43, 2 * 62              # pg_data_t; 62 first-chunk pages for each of 2 CPUs
    # one node: dentry hash 2^18 x 8 bytes, inode hash 2^17 x 8 bytes (present - memmap ~ 2^19 pages)
    hashes = (1 << 18) * 8 // P + (1 << 17) * 8 // P
    assert dma32.managed == dma32.present - kernel - memmap - node_data - percpu - hashes
    assert (0, "Normal") not in z


def test_seed_server_pci_hole_and_second_node():
    m = load(CONFIGS_DIR / "seed-server.yaml")
    z = zones(build(m))
    node_pages = 64 * GiB // P
    hole = 2 * GiB // P                         # reserved.pci_hole_start
    dma32 = z[(0, "DMA32")]
    # DMA32 spans up to 4 GiB but only RAM below the hole is present
    assert (dma32.spanned, dma32.present) == ((1 << 20) - 4096, hole - 4096)
    n0 = z[(0, "Normal")]
    assert n0.start_pfn == 1 << 20 and n0.present == node_pages - hole
    n1 = z[(1, "Normal")]
    assert n1.start_pfn == (1 << 20) + node_pages - hole and n1.present == node_pages
    memmap = node_pages * 64 // P
    node_data, percpu = 43, 24 * 62             # per node: pg_data_t, 62 per-cpu pages x 24 CPUs
    slots = (64 * MiB >> 11) * 24 // P          # SWIOTLB's io_tlb_slot array, top of memory (node 1)
    assert n1.managed == node_pages - memmap - node_data - percpu - slots
    assert n0.managed == n0.present - memmap - node_data - percpu
    # default kernel image at 16 MiB, and the 64 MiB SWIOTLB bounce buffer below 4 GiB
    assert dma32.managed == dma32.present - 32 * MiB // P - 64 * MiB // P
    res = {r.what: (r.start, r.end) for r in build(m).reservations}
    assert res["swiotlb"][1] <= hole and res["swiotlb"][1] - res["swiotlb"][0] == 64 * MiB // P


def test_big_machine_layout_is_cheap_and_exact():
    lay = build(load(CONFIGS_DIR / "big-4s-1t.yaml"))
    total_present = sum(z.present for z in lay.zones)
    lost = 1 + (256 - 159)                      # pfn 0 and the 640 KiB..1 MiB hole
    assert total_present == (1 << 40) // P - lost
    # pagetypeinfo counts pageblocks of sections with RAM: DMA32 below a 3 GiB hole
    dma32 = zones(lay)[(0, "DMA32")]
    assert dma32.valid_pageblocks == (3 * GiB // P - 4096) // 512


def test_movablecore_carves_zone_movable_from_each_node_top():
    m = loads("""
sockets: [{cores: 2}, {cores: 2}]
dimms:
  - {socket: 0, size: 8GiB}
  - {socket: 1, size: 8GiB}
tunables: {movablecore: 4GiB}
""")
    z = zones(build(m))
    total = 16 * GiB // P - 98
    kernel_per_node = -(-(total - 4 * GiB // P) // 2)
    # node 1 has only Normal memory: Movable starts kernel_per_node pages in, rounded to 1024
    n1 = z[(1, "Normal")]
    mv1 = z[(1, "Movable")]
    expect = -(-(n1.start_pfn + kernel_per_node) // 1024) * 1024
    assert mv1.start_pfn == expect and n1.end_pfn == expect
    assert mv1.end_pfn == n1.start_pfn + 8 * GiB // P
    assert (0, "Movable") in z


ONE_GIB = """
sockets: [{cores: 1, threads: 1}]
dimms: [{socket: 0, size: 1GiB}]
reserved:
  kernel_image: 16MiB
"""


def test_e820_reserved_range_is_no_ram():
    """qemu/SeaBIOS reserve the top 128 KiB of RAM below the hole: 32 pages leave the zone."""
    lay = build(loads(ONE_GIB + "  e820: [{start: 0x3ffe0000, size: 128KiB}]\n"))
    dma32 = zones(lay)[(0, "DMA32")]
    assert (dma32.spanned, dma32.present) == (262144 - 4096 - 32, 262144 - 4096 - 32)
    assert (0x3ffe0000, 0x40000000, "reserved") in lay.e820


def test_swiotlb_only_above_4g_and_off_with_zero():
    assert "swiotlb" not in {r.what for r in build(loads(ONE_GIB)).reservations}
    big = "sockets: [{cores: 1}]\ndimms: [{socket: 0, size: 6GiB}]\n"
    assert "swiotlb" in {r.what for r in build(loads(big)).reservations}
    assert "swiotlb" not in {r.what for r in build(loads(big + "reserved: {swiotlb: 0}\n")).reservations}


def test_initmem_larger_than_the_image_is_refused():
    with pytest.raises(ConfigError, match="initmem is the part of kernel_image"):
        loads(ONE_GIB + "  initmem: 32MiB\n")


def test_watermarks_are_set_before_initrd_and_initmem_are_freed():
    """init_per_zone_wmark_min runs before populate_rootfs and free_initmem: the watermarks
    follow managed without the 4 MiB initrd and 2 MiB of init memory, which join later."""
    from procsim.mm.kernel import Kernel
    plain = Kernel(loads(ONE_GIB), boot=False, slab=False)
    late = Kernel(loads(ONE_GIB.replace("16MiB", "18MiB") + "  initrd: 4MiB\n  initmem: 2MiB\n"),
                  boot=False, slab=False)                # 16 MiB of the 18 MiB image stay
    d0, d1 = plain.zones[1], late.zones[1]
    assert d1.managed == d0.managed                      # the same memory in the end ...
    assert d1.nr_free == d0.nr_free
    early = d0.managed - 1536                            # ... but 1024 + 512 pages fewer when it counted
    lowmem = 3840 + early
    pages_min = late.min_free_kbytes // 4
    assert d1.wmark_min == pages_min * early // lowmem < d0.wmark_min


# ---- nodes in physical address order, the split at the PCI hole (qemu -M pc) ----------------

def _node_ranges(m):
    from procsim.mm.layout import place_dimms
    return place_dimms(m)


def test_nodes_follow_each_other_and_the_straddling_node_is_split():
    """Nodes of 2, 3 and 1 GiB: node 1 starts where node 0 ends (2 GiB), its part from the
    3 GiB hole up moves to 4 GiB, node 2 follows it above 4 GiB (qemu's SRAT)."""
    m = load(Path(__file__).resolve().parent.parent / "oracle" / "machines" / "straddle.yaml")
    G = GiB // P
    assert _node_ranges(m) == [((0, 2 * G),), ((2 * G, 3 * G), (4 * G, 6 * G)), ((6 * G, 7 * G),)]
    z = zones(build(m))
    firmware = 32                                # e820-reserved top 128 KiB below the hole
    # DMA32 spans to 4 GiB (the hole is inside the node's span), RAM only below the hole
    dma32 = z[(1, "DMA32")]
    assert (dma32.start_pfn, dma32.spanned, dma32.present) == (2 * G, 2 * G, G - firmware)
    assert (z[(1, "Normal")].start_pfn, z[(1, "Normal")].spanned) == (4 * G, 2 * G)
    assert (z[(2, "Normal")].start_pfn, z[(2, "Normal")].spanned) == (6 * G, G)
    assert (0, "Normal") not in z and (2, "DMA32") not in z
    # SWIOTLB goes top-down below 4 GiB: into node 1's DMA32, not node 0's
    res = {r.what: (r.start, r.end) for r in build(m).reservations}
    lo, hi = res["swiotlb"]
    assert 2 * G <= lo and hi <= 3 * G - firmware and hi - lo == 64 * MiB // P


def test_memoryless_node_takes_no_address_space():
    """Nodes of 1, 1.5, 0 and 2 GiB: node 3 starts at 2.5 GiB and straddles the hole."""
    m = load(Path(__file__).resolve().parent.parent / "oracle" / "machines" / "four-node.yaml")
    G = GiB // P
    half = G // 2
    assert _node_ranges(m) == [((0, G),), ((G, 2 * G + half),), (), ((2 * G + half, 3 * G), (4 * G, 5 * G + half))]
    z = zones(build(m))
    assert (z[(3, "DMA32")].start_pfn, z[(3, "DMA32")].present) == (2 * G + half, half - 33)   # 132 KiB firmware
    assert z[(3, "Normal")].start_pfn == 4 * G and z[(3, "Normal")].present == G + half
    assert not [k for k in z if k[0] == 2]


def test_movablecore_without_ram_above_4g_carves_dma32():
    """find_usable_zone_for_movable(): no Normal memory, so Movable comes out of DMA32.  2 GiB
    less pfn 0, the legacy hole and qemu's 32 firmware pages: 524158 pages; movablecore=512M
    leaves 393086 kernel pages, of which 158 + 3840 lie below DMA32 (usable_startpfn 4096):
    Movable starts at 4096 + 389088 = 393184, rounded up to 1024 -- what Debian's 6.1 shows."""
    m = load(Path(__file__).resolve().parent.parent / "oracle" / "machines" / "movable-low.yaml")
    z = zones(build(m))
    assert (z[(0, "Movable")].start_pfn, z[(0, "Movable")].spanned) == (393216, 131040)
    assert (z[(0, "DMA32")].start_pfn, z[(0, "DMA32")].end_pfn) == (4096, 393216)


def test_kernelcore_a_node_cannot_hold_goes_to_the_others():
    """kernelcore=4G (1 Mi pages) on nodes of 1 and 8 GiB: 512 Ki pages each.  Node 0 holds
    262046 (all it has); node 1's 512 Ki are its 2 GiB below the 3 GiB hole, all kernel
    memory.  The second pass, over one node, gives node 1 the 262242 pages still wanted
    above 4 GiB, so its Movable starts at 4 GiB + 262242, rounded up to 1024."""
    m = loads("""
sockets: [{cores: 1}, {cores: 1}]
dimms:
  - {socket: 0, size: 1GiB}
  - {socket: 1, size: 8GiB}
tunables: {kernelcore: 4GiB}
""")
    z = zones(build(m))
    node0 = 158 + 262144 - 256
    rest = (1 << 20) - node0 - (1 << 19)
    assert rest == 262242
    assert z[(1, "Movable")].start_pfn == -(-((1 << 20) + rest) // 1024) * 1024 == 1311744
    assert z[(1, "DMA32")].start_pfn == 262144
    assert (0, "Movable") not in z


def test_6_1_counts_movable_as_lowmem_6_18_does_not():
    """__setup_per_zone_wmarks(): 6.1 shares min among every zone but highmem, Movable included;
    6.18 leaves Movable out of lowmem_pages and clamps its min to [32, 128]."""
    from procsim.mm.kernel import Kernel
    cfg = "sockets: [{cores: 1}]\ndimms: [{socket: 0, size: 4GiB}]\ntunables: {movablecore: 512MiB}\n"
    for version in ("6.1", "6.18"):
        k = Kernel(loads(cfg + f'kernel: "{version}"\n'), boot=False, slab=False)
        pages_min = k.min_free_kbytes // 4
        mv = next(z for z in k.zones if z.name == "Movable" and z.managed)
        if version == "6.1":
            lowmem = sum(z.managed for z in k.zones)
            assert mv._watermark[0] == pages_min * mv.managed // lowmem > 128
        else:
            lowmem = sum(z.managed for z in k.zones if z.name != "Movable")
            assert mv._watermark[0] == min(max(mv.managed // 1024, 32), 128)
        dma32 = k.zones[1]
        assert dma32._watermark[0] == pages_min * dma32.managed // lowmem
