"""One topology: SLUB and the buddy allocator walk the nodes in the same order, the one
build_zonelists() made, and SMBIOS reads the layout's DIMM placement."""
from procsim.mm import gfp as G
from procsim.mm.page_types import PAGE_OFFSET, PAGE_SHIFT
from procsim.testing import boot


def node_of_addr(k, addr):
    pfn = (addr - PAGE_OFFSET) >> PAGE_SHIFT
    return next(z.node for z in k.zones if z.spanned and z.start_pfn <= pfn < z.end_pfn)


def test_big_4s_node_order_by_hand():
    # find_next_best_node(): value = distance, +1 if the node number is below the local
    # one, +1 for a node with cpus; x1024 + load; the lowest wins, the first on a tie.
    # From node 1 (distances 21 10 21 20): node 3 = 21, node 2 = 22, node 0 = 23.
    # From node 2 (distances 20 21 10 21): node 0 = 22 and node 3 = 22 (node 0 first), node 1 = 23.
    k = boot("big-4s-1t", slab=False)
    assert k.node_order == [[0, 2, 1, 3], [1, 3, 2, 0], [2, 0, 3, 1], [3, 1, 0, 2]]


def test_slub_takes_remote_partial_slabs_in_zonelist_order():
    """get_any_partial() from node 1: node 3 has none, so node 2's partial slabs come
    before node 0's (a distance sort would say [1, 3, 0, 2] and pick node 0)."""
    k = boot("big-4s-1t")
    s = k.slab
    c = s.kmem_cache_create("topology_test", 512)
    for nid in (0, 2):                                # > min_partial partial slabs on 0 and 2
        objs = [s.kmem_cache_alloc(c, G.GFP_KERNEL, node=nid) for _ in range(c.objects * 40)]
        for a in objs[::c.objects]:
            s.kmem_cache_free(c, a)
    assert len(c.node[0].partial) > c.min_partial and len(c.node[2].partial) > c.min_partial
    assert not c.node[1].partial and not c.node[3].partial
    cpu = k.nodes[1].cpus[0]
    assert node_of_addr(k, s.kmem_cache_alloc(c, G.GFP_KERNEL, cpu=cpu)) == 2


def test_smbios_mapped_ranges_are_where_the_layout_put_the_ram():
    """Type 19 ranges cover exactly each node's RAM as the layout placed it, plus only what
    the kernel never sees (pfn 0 and the legacy hole below 1 MiB)."""
    from procsim import machine
    from procsim.views import smbios
    from procsim.mm.layout import build
    from pathlib import Path
    for name in ("tiny", "seed-vm", "seed-server", "big-4s-1t"):
        m = machine.load(Path(__file__).parent.parent / "configs" / f"{name}.yaml")
        lay = build(m)
        ranges = smbios.mapped_ranges(m)
        for node in lay.nodes:
            mine = [(s >> PAGE_SHIFT, e >> PAGE_SHIFT) for n, s, e in ranges if n == node.id]
            assert sum(e - s for s, e in mine) << PAGE_SHIFT == m.node_memory(node.id)
            for s, e in node.ram:
                assert any(ms <= s and e <= me for ms, me in mine)
            unseen = sum(e - s for s, e in mine) - node.present
            assert unseen == (1 + 0x100 - 0x9F if node.id == 0 else 0)
