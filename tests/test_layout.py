"""Physical layout: zone spans, present and managed pages checked by independent arithmetic."""
from procsim.machine import load, loads, CONFIGS_DIR, GiB, MiB
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
    assert dma32.managed == dma32.present - kernel - memmap
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
    assert n1.managed == node_pages - memmap
    assert n0.managed == n0.present - memmap
    assert dma32.managed == dma32.present - 32 * MiB // P   # default kernel image at 16 MiB


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
