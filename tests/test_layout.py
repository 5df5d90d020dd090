"""Physical layout: zone spans, present and managed pages checked by independent arithmetic."""
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
