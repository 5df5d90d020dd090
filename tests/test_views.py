"""The procfs views: layout against the real 6.18 files, hand-checked numbers, and the
identities that must hold between files at every instant.

Every file is parsed line by line and each line is rebuilt from its parsed fields with the
kernel's printf formats (kernel-mm.md §2); the rebuilt line must equal the original.  The
same parsers run over the real files in tests/data/linux-6.18-host/, which proves the
formats; running them over our output proves it is byte-faithful.
"""
from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from procsim.testing import CONFIGS, boot


REF = Path(__file__).parent / "data" / "linux-6.18-host"     # real 6.18 kernel output (its README)
ORDERS = range(11)


def ref(name: str) -> str:
    return (REF / name).read_text()


# --- parsers that rebuild every line from the kernel's formats --------------------------------
def _rebuilt(line: str, again: str):
    assert line == again, f"layout differs:\n got {line!r}\nwant {again!r}"


def parse_zoneinfo(text: str) -> list[dict]:
    """Zones in file order: {node, zone, keys, node_stats, <watermark lines>, protection,
    stats, pagesets: [{count, high, batch, high_min, high_max, threshold}], ...}."""
    assert text.endswith("\n")
    zones: list[dict] = []
    z = None
    for line in text[:-1].split("\n"):
        m = re.fullmatch(r"Node (\d+), zone +(\w+)", line)
        if m:
            z = {"node": int(m[1]), "zone": m[2], "keys": [], "node_stats": {}, "stats": {}, "pagesets": []}
            zones.append(z)
            _rebuilt(line, f"Node {z['node']}, zone {z['zone']:>8}")
            continue
        if line == "  per-node stats" or line == "  pagesets":
            z["keys"].append(line.strip())
            continue
        m = re.fullmatch(r"      (\w+) +(\d+)", line)
        if m:
            _rebuilt(line, f"      {m[1]:<12} {m[2]}")
            where = z["stats"] if "pages free" in z["keys"] else z["node_stats"]
            where[m[1]] = int(m[2])
            z["keys"].append(m[1])
            continue
        m = re.fullmatch(r" +(pages free|boost|min|low|high|promo|spanned|present|managed|cma) +(\d+)", line)
        if m:
            want = f"  pages free     {m[2]}" if m[1] == "pages free" else f"        {m[1]:<8} {m[2]}"
            _rebuilt(line, want)
            z[m[1]] = int(m[2])
            z["keys"].append(m[1])
            continue
        m = re.fullmatch(r" +protection: \(([-\d, ]+)\)", line)
        if m:
            z["protection"] = tuple(int(x) for x in m[1].split(", "))
            _rebuilt(line, f"        protection: ({', '.join(map(str, z['protection']))})")
            z["keys"].append("protection")
            continue
        m = re.fullmatch(r" +cpu: (\d+)", line)
        if m:
            _rebuilt(line, f"    cpu: {m[1]}")
            z["pagesets"].append({"cpu": int(m[1])})
            z["keys"].append("cpu")
            continue
        m = re.fullmatch(r" +(count|high|batch|high_min|high_max): +(-?\d+)", line)
        if m:
            _rebuilt(line, f"              {m[1] + ':':<10}{m[2]}")
            z["pagesets"][-1][m[1]] = int(m[2])
            z["keys"].append(m[1])
            continue
        m = re.fullmatch(r"  vm stats threshold: (\d+)", line)
        if m:
            z["pagesets"][-1]["threshold"] = int(m[1])
            z["keys"].append("threshold")
            continue
        m = re.fullmatch(r"  (node_unreclaimable|start_pfn): +(\d+)", line)
        if m:
            _rebuilt(line, f"  {m[1] + ':':<21}{m[2]}")
            z[m[1]] = int(m[2])
            z["keys"].append(m[1])
            continue
        raise AssertionError(f"unexpected zoneinfo line {line!r}")
    return zones


def zone_kind(z: dict) -> str:
    if "per-node stats" in z["keys"]:
        return "first"
    return "populated" if "pagesets" in z["keys"] else "empty"


def collapse_cpus(keys: list[str]) -> list[str]:
    """The key sequence with the per-cpu pageset blocks folded into one."""
    out, seen_cpu = [], False
    i = 0
    while i < len(keys):
        if keys[i] == "cpu":
            block = keys[i:i + 7]
            if not seen_cpu:
                out += block
                seen_cpu = True
            i += 7
            continue
        out.append(keys[i])
        i += 1
    return out


def parse_buddyinfo(text: str) -> dict[tuple[int, str], list[int]]:
    out = {}
    for line in text.splitlines():
        m = re.fullmatch(r"Node (\d+), zone +(\w+) ((?: +\d+ ){11})", line)
        assert m, f"bad buddyinfo line {line!r}"
        counts = [int(x) for x in m[3].split()]
        _rebuilt(line, f"Node {m[1]}, zone {m[2]:>8} " + "".join(f"{n:6d} " for n in counts))
        out[int(m[1]), m[2]] = counts
    return out


FREE_HEADER = f"{'Free pages count per migrate type at order':<43} " + "".join(f"{o:6d} " for o in ORDERS)
MT_NAMES = ("Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate")


def parse_pagetypeinfo(text: str) -> dict:
    """{'kinds': per-line kinds, 'free': {(node, zone, type): [counts]}, 'capped': set,
    'blocks': {(node, zone): [counts]}}."""
    out = {"kinds": [], "free": {}, "capped": set(), "blocks": {}}
    for line in text.split("\n")[:-1]:
        kind = None
        if line == "Page block order: 9":
            kind = "order"
        elif line == "Pages per block:  512":
            kind = "perblock"
        elif line == "":
            kind = "blank"
        elif line == FREE_HEADER:
            kind = "freeheader"
        elif line.startswith("Number of blocks type"):
            _rebuilt(line, f"{'Number of blocks type ':<23}" + "".join(f"{n:>12} " for n in MT_NAMES))
            kind = "blockheader"
        elif (m := re.fullmatch(r"Node +(\d+), zone +(\w+), type +(\w+) ((?: *>?\d+ ){11})", line)):
            cells = m[4].split()
            counts = [int(c.lstrip(">")) for c in cells]
            _rebuilt(line, f"Node {int(m[1]):4d}, zone {m[2]:>8}, type {m[3]:>12} "
                           + "".join(f"{c[0] if c[0] == '>' else ''}{n:6d} " for c, n in zip(cells, counts, strict=False)))
            key = (int(m[1]), m[2], m[3])
            out["free"][key] = counts
            out["capped"] |= {(key, o) for o, c in enumerate(cells) if c.startswith(">")}
            kind = "free:" + m[3]
        elif (m := re.fullmatch(r"Node (\d+), zone +(\w+) ((?: +\d+ ){5})", line)):
            counts = [int(x) for x in m[3].split()]
            _rebuilt(line, f"Node {m[1]}, zone {m[2]:>8} " + "".join(f"{n:12d} " for n in counts))
            out["blocks"][int(m[1]), m[2]] = counts
            kind = "blocks"
        assert kind, f"unexpected pagetypeinfo line {line!r}"
        out["kinds"].append(kind)
    return out


SLAB_HEADER = ("slabinfo - version: 2.1",
               "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables "
               "<limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>")


def parse_slabinfo(text: str) -> list[dict]:
    lines = text.split("\n")
    assert lines[-1] == "" and tuple(lines[:2]) == SLAB_HEADER
    out = []
    for line in lines[2:-1]:
        f = line.split()
        assert len(f) == 16 and f[6] == ":" and f[7] == "tunables" and f[11] == ":" and f[12] == "slabdata", line
        n = [int(x) for x in f[1:6] + f[8:11] + f[13:16]]
        _rebuilt(line, f"{f[0]:<17} {n[0]:6d} {n[1]:6d} {n[2]:6d} {n[3]:4d} {n[4]:4d} : tunables "
                       f"{n[5]:4d} {n[6]:4d} {n[7]:4d} : slabdata {n[8]:6d} {n[9]:6d} {n[10]:6d}")
        out.append(dict(name=f[0], active_objs=n[0], num_objs=n[1], objsize=n[2], objperslab=n[3],
                        pagesperslab=n[4], tunables=n[5:8], active_slabs=n[8], num_slabs=n[9], sharedavail=n[10]))
    return out


HUGE_COUNTS = ("HugePages_Total", "HugePages_Free", "HugePages_Rsvd", "HugePages_Surp")


def parse_meminfo(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        m = re.fullmatch(r"([\w()]+): +(\d+)( kB)?", line)
        assert m, f"bad meminfo line {line!r}"
        label, v = m[1], int(m[2])
        if label in HUGE_COUNTS:
            _rebuilt(line, f"{label + ':':<19}{v:5d}")
        else:
            _rebuilt(line, f"{label + ':':<16}{v:8d} kB")
        assert label not in out
        out[label] = v
    return out


def parse_vmstat(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        name, v = line.split(" ")
        _rebuilt(line, f"{name} {int(v)}")
        out[name] = int(v)
    return out


# --- the kernels under test ------------------------------------------------------------------
MEMORYLESS = """
name: memoryless
sockets:
  - {model: "cpu", cores: 1, threads: 2}
  - {model: "cpu", cores: 2, threads: 2}
dimms:
  - {socket: 0, size: 256MiB, locator: "DIMM 0"}
numa_distances:
  - [10, 20]
  - [20, 10]
"""


def memoryless_kernel():
    return boot(text=MEMORYLESS)


def files(k) -> dict[str, str]:
    from procsim.views import zoneinfo, pagetypeinfo, buddyinfo, slabinfo, meminfo, vmstat
    return {m.__name__.rsplit(".", 1)[1]: m.render(k).decode()
            for m in (zoneinfo, pagetypeinfo, buddyinfo, slabinfo, meminfo, vmstat)}


# --- the view registry -----------------------------------------------------------------------
def test_modes_match_the_kernel():
    from procsim import views
    import importlib
    want = {"zoneinfo": 0o444, "pagetypeinfo": 0o400, "buddyinfo": 0o444, "slabinfo": 0o400,
            "meminfo": 0o444, "vmstat": 0o444}
    for name, mode in want.items():
        mod = importlib.import_module(f"{views.__name__}.{name}")
        assert set(mod.FILES) == {name}
        assert mod.FILES[name].mode == mode
        assert not mod.FILES[name].exact_size


def test_views_return_bytes(seed_vm):
    from procsim.views import zoneinfo, pagetypeinfo, buddyinfo, slabinfo, meminfo, vmstat
    for m in (zoneinfo, pagetypeinfo, buddyinfo, slabinfo, meminfo, vmstat):
        data = m.FILES[m.__name__.rsplit(".", 1)[1]].render(seed_vm)
        assert isinstance(data, bytes) and data.endswith(b"\n") and b"\n\n\n" not in data


# --- structure against the reference host ----------------------------------------------------
def _ref_zone_keys():
    zones = parse_zoneinfo(ref("zoneinfo"))
    kinds = {}
    for z in zones:
        kinds.setdefault(zone_kind(z), collapse_cpus(z["keys"]))
    assert set(kinds) == {"first", "populated", "empty"}
    return kinds


@pytest.mark.parametrize("which", ["seed-vm", "seed-server", "tiny", "big-4s-1t", "memoryless"])
def test_zoneinfo_sections_have_the_reference_keys(which):
    k = memoryless_kernel() if which == "memoryless" else boot(which)
    want = _ref_zone_keys()
    zones = parse_zoneinfo(files(k)["zoneinfo"])
    assert [(z["node"], z["zone"]) for z in zones] == \
        [(n, name) for n in range(len(k.nodes)) for name in ("DMA", "DMA32", "Normal", "Movable", "Device")]
    for n in range(len(k.nodes)):
        mine = [z for z in zones if z["node"] == n]
        populated = [z for z in mine if z["present"]]
        # per-node stats under the first populated zone only; none for a memoryless node
        want_kinds = ["empty" if not z["present"] else "first" if z is populated[0] else "populated" for z in mine]
        assert [zone_kind(z) for z in mine] == want_kinds
        for z in mine:
            assert collapse_cpus(z["keys"]) == want[zone_kind(z)], (z["node"], z["zone"])
            if z["present"]:
                assert [p["cpu"] for p in z["pagesets"]] == list(range(k.nr_cpu_ids))
    if which == "memoryless":
        assert all(zone_kind(z) == "empty" for z in zones if z["node"] == 1)


def test_zoneinfo_reference_parses_and_its_own_identities_hold():
    """The parser reads the real file; its free pages equal its buddyinfo (§9 of kernel-mm.md)."""
    zones = parse_zoneinfo(ref("zoneinfo"))
    buddy = parse_buddyinfo(ref("buddyinfo"))
    for z in zones:
        if z["present"]:
            assert sum(c << o for o, c in enumerate(buddy[z["node"], z["zone"]])) == z["pages free"]


def test_buddyinfo_layout(seed_server):
    parse_buddyinfo(ref("buddyinfo"))
    text = files(seed_server)["buddyinfo"]
    got = parse_buddyinfo(text)
    assert list(got) == [(z.node, z.name) for z in seed_server.zones if z.present]
    assert all(line.endswith(" ") for line in text.splitlines())


def _ptype_shape(kinds: list[str]) -> list[str]:
    """Line kinds with each zone's run of free lines folded into one marker."""
    out = []
    for kd in kinds:
        if kd.startswith("free:") and kd != "free:Unmovable":
            continue
        if kd == "blocks" and out and out[-1] == "blocks":
            continue
        out.append("zonefree" if kd == "free:Unmovable" else kd)
    return [kd for i, kd in enumerate(out) if not (kd == "zonefree" and out[i - 1] == "zonefree")]


@pytest.mark.parametrize("which", ["seed-vm", "seed-server", "memoryless"])
def test_pagetypeinfo_structure(which):
    k = memoryless_kernel() if which == "memoryless" else boot(which)
    r = parse_pagetypeinfo(ref("pagetypeinfo"))
    per_zone_types = [kd for kd in r["kinds"] if kd.startswith("free:")][:5]
    assert per_zone_types == [f"free:{n}" for n in MT_NAMES]
    got = parse_pagetypeinfo(files(k)["pagetypeinfo"])
    nodes_with_memory = [n for n in k.nodes if n.managed]
    assert _ptype_shape(got["kinds"]) == _ptype_shape(r["kinds"]) * len(nodes_with_memory)
    assert list(got["blocks"]) == [(z.node, z.name) for n in nodes_with_memory for z in n.zones if z.present]
    for (node, zone, _mt) in got["free"]:
        assert (node, zone) in got["blocks"]


def test_slabinfo_layout(seed_vm):
    ref_caches = parse_slabinfo(ref("slabinfo"))
    assert any(len(c["name"]) > 17 for c in ref_caches)     # long names push the columns: covered
    caches = parse_slabinfo(files(seed_vm)["slabinfo"])
    assert [c["name"] for c in caches] == [s.name for s in seed_vm.slab.caches]
    assert caches[-2:] == [c for c in caches if c["name"] in ("kmem_cache_node", "kmem_cache")]
    for c in caches:
        assert c["tunables"] == [0, 0, 0] and c["sharedavail"] == 0
        assert c["active_slabs"] == c["num_slabs"]


def test_meminfo_labels_are_the_references(seed_vm):
    want = list(parse_meminfo(ref("meminfo")))
    assert list(parse_meminfo(files(seed_vm)["meminfo"])) == want


def test_vmstat_names_are_the_references(seed_server):
    want = list(parse_vmstat(ref("vmstat")))
    got = parse_vmstat(files(seed_server)["vmstat"])
    assert list(got) == want
    assert list(got)[-1] == "nr_unstable" and got["nr_unstable"] == 0


# --- hand-checked numbers: seed-vm (2 GiB, 2 CPUs, one node) ---------------------------------
def _fls(x): return x.bit_length()


def test_seed_vm_zone_geometry(seed_vm):
    z = {x["zone"]: x for x in parse_zoneinfo(files(seed_vm)["zoneinfo"])}
    # DMA: pfn 1..4095; RAM 1..158 and 256..4095; the whole first MiB reserved
    assert (z["DMA"]["spanned"], z["DMA"]["present"], z["DMA"]["managed"], z["DMA"]["start_pfn"]) == \
        (4095, 3998, 3840, 1)
    # DMA32: pfn 4096..524288 (2 GiB); minus the 28 MiB kernel image, 16 sections x 2 MiB of memmap,
    # NODE_DATA (43 pages), 62 per-cpu pages per CPU, and the dentry (2^18 x 8 bytes) and inode
    # (2^17 x 8 bytes) hash tables memblock holds on a single node
    assert (z["DMA32"]["spanned"], z["DMA32"]["present"], z["DMA32"]["start_pfn"]) == (520192, 520192, 4096)
    assert z["DMA32"]["managed"] == 520192 - 28 * 256 - 16 * 512 - 43 - 2 * 62 - 512 - 256 == 503897
    for name in ("Normal", "Movable", "Device"):
        assert (z[name]["spanned"], z[name]["present"], z[name]["managed"]) == (0, 0, 0)


def test_seed_vm_watermarks_protection_pagesets(seed_vm):
    z = {x["zone"]: x for x in parse_zoneinfo(files(seed_vm)["zoneinfo"])}
    managed = {"DMA": 3840, "DMA32": 503897}
    lowmem = sum(managed.values())
    # min_free_kbytes: THP raise, 2 populated zones -> 5632 * 2 pages (the 5% cap is ~25k pages)
    pages_min = 5632 * 2
    assert pages_min * 4 == 45056
    ncpus = 2
    for name, m in managed.items():
        tmp = pages_min * m // lowmem
        step = max(tmp // 4, m * 10 // 10000)
        assert (z[name]["min"], z[name]["low"], z[name]["high"], z[name]["promo"]) == \
            (tmp, tmp + step, tmp + 2 * step, tmp + 3 * step)
        assert z[name]["boost"] == 0 and z[name]["cma"] == 0
        b = max(min(m // 1024, 256) // 4, 1)
        batch = max(1, (1 << (_fls(b + b // 2) - 1)) - 1)
        for p in z[name]["pagesets"]:
            assert p["batch"] == batch
            assert p["high_min"] == max(z[name]["low"] // ncpus, 4 * batch)
            assert p["high_max"] == max(m // 8 // ncpus, 4 * batch)
            assert p["threshold"] == min(125, 2 * _fls(ncpus) * (1 + _fls(m >> 15)))
    # worked by hand (kernel-mm.md §4.3, §4.7, §4.8)
    assert (z["DMA"]["min"], z["DMA"]["low"], z["DMA"]["high"], z["DMA"]["promo"]) == (85, 106, 127, 148)
    assert (z["DMA32"]["min"], z["DMA32"]["low"], z["DMA32"]["high"], z["DMA32"]["promo"]) == \
        (11178, 13972, 16766, 19560)
    assert [(p["batch"], p["high_min"], p["high_max"], p["threshold"]) for p in z["DMA"]["pagesets"]] == \
        [(1, 53, 240, 4)] * 2
    assert [(p["batch"], p["high_min"], p["high_max"], p["threshold"]) for p in z["DMA32"]["pagesets"]] == \
        [(63, 6986, 31493, 20)] * 2
    # lowmem_reserve: ratio 256 over the managed pages above; nothing above DMA32
    assert z["DMA"]["protection"] == (0, 1968, 1968, 1968, 1968)         # 503897 // 256
    assert z["DMA32"]["protection"] == (0, 0, 0, 0, 0)
    # empty zones: Movable clamps to SWAP_CLUSTER_MAX, Normal/Device stay 0
    assert [z["Movable"][w] for w in ("min", "low", "high", "promo")] == [32] * 4
    assert [z[n][w] for n in ("Normal", "Device") for w in ("min", "low", "high", "promo")] == [0] * 8


def test_seed_server_two_nodes_by_hand(seed_server):
    """2 x 64 GiB, 48 CPUs (24 per node), PCI hole at 2 GiB."""
    z = {(x["node"], x["zone"]): x for x in parse_zoneinfo(files(seed_server)["zoneinfo"])}
    # RAM above 4 GiB and no IOMMU: the 64 MiB SWIOTLB buffer in DMA32 (16384 pages) and its slot
    # array (32768 x 24 bytes = 192 pages) at the top of memory; NODE_DATA (43 pages) and 24 CPUs x
    # 62 per-cpu pages on each node
    managed = {(0, "DMA"): 3840, (0, "DMA32"): 512000 - 16384, (0, "Normal"): 15990784 - 43 - 24 * 62,
               (1, "Normal"): 16515072 - 43 - 24 * 62 - 192}
    assert {key: z[key]["managed"] for key in managed} == managed
    # THP raise: 4 populated zones <= Normal -> 5632 * 4 pages (90112 kB) beats 4*sqrt(lowmem kB) ~ 45972 kB
    pages_min, lowmem = 5632 * 4, sum(managed.values())
    assert [z[key]["min"] for key in managed] == [pages_min * m // lowmem for m in managed.values()] == \
        [2, 338, 10914, 11272]
    assert z[0, "DMA"]["protection"] == (0, 495616 // 256, (495616 + 15989253) // 256, 64394, 64394) == \
        (0, 1936, 64394, 64394, 64394)
    assert z[0, "DMA32"]["protection"] == (0, 0, 62458, 62458, 62458)
    assert all(z[key]["protection"] == (0, 0, 0, 0, 0) for key in z if key not in ((0, "DMA"), (0, "DMA32")))
    # thresholds: 2 * fls(48) * (1 + fls(managed >> 15)); high_min: low / 24 cpus of the node, >= 4*batch
    assert [z[key]["pagesets"][0]["threshold"] for key in managed] == [12, 60, 120, 120]
    assert [z[key]["pagesets"][47]["high_min"] for key in managed] == [4, 252, 26903 // 24, 27785 // 24]
    assert [len(z[key]["pagesets"]) for key in managed] == [48] * 4
    # node 1 has no DMA/DMA32: its stats sit under Normal
    assert zone_kind(z[1, "Normal"]) == "first" and zone_kind(z[1, "DMA"]) == "empty"


def test_seed_vm_meminfo_totals_and_direct_map(seed_vm):
    mi = parse_meminfo(files(seed_vm)["meminfo"])
    assert mi["MemTotal"] == (3840 + 503897) * 4
    assert mi["CommitLimit"] == (3840 + 503897) // 2 * 4
    assert mi["VmallocTotal"] == 34359738367
    assert mi["Hugepagesize"] == 2048 and mi["HugePages_Total"] == 0
    # RAM 4K..636K and 1M..2G: the first MiB in 4k pages, 1M..2M in 4k, 2M..1G in 2M, 1G..2G in 1G
    assert (mi["DirectMap4k"], mi["DirectMap2M"], mi["DirectMap1G"]) == (2048, 1022 * 1024, 1024 * 1024)


def test_seed_server_direct_map(seed_server):
    mi = parse_meminfo(files(seed_server)["meminfo"])
    # 2 x 64 GiB with the PCI hole at 2 GiB: RAM 1M..2G, then node 0's other 62 GiB and node 1's
    # 64 GiB from 4G to 130G, all 1G-aligned
    assert (mi["DirectMap4k"], mi["DirectMap2M"], mi["DirectMap1G"]) == (2048, 1022 * 1024, (1 + 126) << 20)


def test_direct_map_splits_unaligned_ranges():
    from procsim.mm.x86_init import direct_map
    M, G = 1 << 20, 1 << 30
    # usable 4K..636K, 1M..(1G + 5M + 12K): 1G frame not all RAM -> 2M up to 1G, then 2M body, 4k tail
    e820 = ((0, 4096, "reserved"), (4096, 0x9f000, "usable"), (M, G + 5 * M + 12 * 1024, "usable"))
    got = direct_map(e820)
    assert got[4096] == M + M + 12 * 1024 + M              # ISA, 1M..2M, the 4M..5M+12K tail's 1M+12K
    assert got[2 << 20] == (G - 2 * M) + 4 * M
    assert got[G] == 0


def test_vmstat_memmap_and_dirty_thresholds(seed_vm):
    vs = parse_vmstat(files(seed_vm)["vmstat"])
    # 2 GiB = 16 sections of 128 MiB; 32768 struct pages of 64 bytes each = 512 pages per section
    assert vs["nr_memmap_boot_pages"] == 16 * 512 and vs["nr_memmap_pages"] == 0
    zones = parse_zoneinfo(files(seed_vm)["zoneinfo"])
    free = sum(z["pages free"] for z in zones)
    # totalreserve_pages is computed with the marks, not a later watermark boost (printed in high)
    reserve = sum(min(z["managed"], z["high"] - z["boost"] + max(z["protection"])) for z in zones)
    dirtyable = free - min(free, reserve) + vs["nr_inactive_file"] + vs["nr_active_file"] + 1
    assert vs["nr_dirty_threshold"] == 819 * dirtyable // 4096            # 20% as 819/4096
    assert vs["nr_dirty_background_threshold"] == 409 * dirtyable // 4096  # 10% as 409/4096


def test_pagetypeinfo_caps_long_free_lists():
    from procsim.views import pagetypeinfo

    class Z:
        populated, present, managed, node, name = True, 1, 1, 0, "Normal"

        def free_count(self, order, mt):
            return {0: 100000, 1: 99999, 2: 123456}.get(order, 0) if mt == 1 else 0

        def pageblock_counts(self):
            return [0, 1, 0, 0, 0]

    class N:
        id, zones = 0, [Z()]

    class K:
        nodes = [N()]

    got = parse_pagetypeinfo(pagetypeinfo.render(K()).decode())
    assert got["free"][0, "Normal", "Movable"][:3] == [100000, 99999, 100000]
    assert got["capped"] == {((0, "Normal", "Movable"), 0), ((0, "Normal", "Movable"), 2)}


# --- consistency between files at every instant ----------------------------------------------
def pageblocks_with_memmap(k, node: int, zone: str) -> int:
    """Pageblocks of the zone span that lie in a 128 MiB section with RAM (pfn_to_online_page)."""
    lay = next(z for z in k.layout.nodes[node].zones if z.name == zone)
    sections = {pfn >> 15 for s, e in lay.ram for pfn in range(s, e, 1 << 15)} | \
               {(e - 1) >> 15 for s, e in lay.ram}
    return sum(1 for b in range(lay.start_pfn >> 9, ((lay.end_pfn - 1) >> 9) + 1) if b >> 6 in sections)


def check_consistent(k, large_pages: int):
    """The identities of kernel-mm.md §5.8, §2.5, §6.7 over the six rendered files."""
    f = files(k)
    zones = parse_zoneinfo(f["zoneinfo"])
    buddy = parse_buddyinfo(f["buddyinfo"])
    pti = parse_pagetypeinfo(f["pagetypeinfo"])
    slabs = parse_slabinfo(f["slabinfo"])
    mi = parse_meminfo(f["meminfo"])
    vs = parse_vmstat(f["vmstat"])
    populated = [z for z in zones if z["present"]]
    assert list(buddy) == [(z["node"], z["zone"]) for z in populated]
    for z in populated:
        key = (z["node"], z["zone"])
        assert z["stats"]["nr_free_pages"] == z["pages free"]
        assert sum(c << o for o, c in enumerate(buddy[key])) == z["pages free"]
        per_type = [pti["free"][key + (mt,)] for mt in MT_NAMES]
        for o in ORDERS:
            if not any(((key + (mt,)), o) in pti["capped"] for mt in MT_NAMES):
                assert sum(t[o] for t in per_type) == buddy[key][o]
        assert z["stats"]["nr_free_pages_blocks"] == sum(buddy[key][o] << o for o in range(9, 11))
        assert sum(pti["blocks"][key]) == pageblocks_with_memmap(k, *key)
        assert z["pages free"] <= z["managed"] <= z["present"] <= z["spanned"]
    free = sum(z["pages free"] for z in zones)
    assert mi["MemFree"] == free * 4 and vs["nr_free_pages"] == free
    assert mi["MemTotal"] == sum(z["managed"] for z in zones) * 4
    # node stats: zoneinfo per node, summed = vmstat
    node_stats = [z["node_stats"] for z in zones if z["node_stats"]]
    for item in node_stats[0]:
        assert sum(ns[item] for ns in node_stats) == vs[item], item
    for item in ("nr_zone_inactive_anon", "nr_mlock", "numa_hit", "numa_local", "numa_miss", "numa_foreign"):
        assert sum(z["stats"][item] for z in populated) == vs[item], item
    # slab pages: slabinfo plus large kmalloc pages = node counters = Slab
    slab_pages = sum(c["num_slabs"] * c["pagesperslab"] for c in slabs)
    assert slab_pages + large_pages == vs["nr_slab_reclaimable"] + vs["nr_slab_unreclaimable"]
    assert mi["Slab"] == mi["SReclaimable"] + mi["SUnreclaim"] == slab_pages * 4 + large_pages * 4
    assert mi["SReclaimable"] == vs["nr_slab_reclaimable"] * 4
    assert mi["KernelStack"] == vs["nr_kernel_stack"]
    assert mi["AnonPages"] == vs["nr_anon_pages"] * 4
    for c in slabs:
        assert c["active_objs"] <= c["num_objs"] <= c["num_slabs"] * c["objperslab"]
    # MemAvailable = si_mem_available(), from the other files' numbers
    # totalreserve_pages is computed with the marks, not a later watermark boost (printed in high)
    reserve = sum(min(z["managed"], z["high"] - z["boost"] + max(z["protection"])) for z in zones)
    low = sum(z["low"] for z in zones)
    pagecache = vs["nr_active_file"] + vs["nr_inactive_file"]
    reclaimable = vs["nr_slab_reclaimable"] + vs["nr_kernel_misc_reclaimable"]
    avail = free - reserve + pagecache - min(pagecache // 2, low) + reclaimable - min(reclaimable // 2, low)
    assert mi["MemAvailable"] == max(avail, 0) * 4
    return f


def random_workload(k, seed: int, steps: int, check_every: int):
    import errno
    from procsim.mm import gfp as G
    from procsim.mm.errors import MMError
    from procsim.mm.slub import SLAB_RECLAIM_ACCOUNT
    rng = random.Random(seed)
    pages, objs, large = [], [], {}
    caches = []
    gfps = [G.GFP_KERNEL, G.GFP_HIGHUSER_MOVABLE, G.GFP_ATOMIC, G.GFP_KERNEL | G.__GFP_RECLAIMABLE,
            G.GFP_KERNEL | G.__GFP_DMA32]
    nodes = [n.id for n in k.nodes]
    large_pages = 0
    done = {"pages": 0, "objects": 0, "large": 0, "reclaimable caches": 0, "reclaimable objects": 0}
    for step in range(steps):
        op = rng.random()
        try:
            if op < 0.35:
                order = rng.choice([0, 0, 0, 1, 2, 3, 4, 5, 9, 10])
                pages.append(k.alloc_pages(order, rng.choice(gfps), node=rng.choice(nodes)))
                done["pages"] += 1
            elif op < 0.55 and pages:
                k.free_pages(pages.pop(rng.randrange(len(pages))))
            elif op < 0.6:
                flags = rng.choice([0, SLAB_RECLAIM_ACCOUNT])
                caches.append(k.slab.kmem_cache_create(f"test_{seed}_{step}", rng.choice([24, 200, 700, 3000]),
                                                       0, flags))
                done["reclaimable caches"] += bool(flags)
            elif op < 0.8 and caches:
                c = rng.choice(caches)
                for _ in range(rng.randrange(1, 60)):
                    objs.append((c, k.slab.kmem_cache_alloc(c, G.GFP_KERNEL, node=rng.choice(nodes))))
                    done["objects"] += 1
                    done["reclaimable objects"] += bool(c.flags & SLAB_RECLAIM_ACCOUNT)
            elif op < 0.88 and objs:
                for _ in range(min(len(objs), rng.randrange(1, 60))):
                    c, a = objs.pop(rng.randrange(len(objs)))
                    if c is None:                              # a small kmalloc
                        k.slab.kfree(a)
                    else:
                        k.slab.kmem_cache_free(c, a)
            elif op < 0.93:
                size = rng.choice([100, 5000, 9000, 40000, 300000])
                a = k.slab.kmalloc(size, G.GFP_KERNEL)
                if size > 8192:
                    order = (size - 1).bit_length() - 12
                    large[a] = 1 << order
                    done["large"] += 1
                    large_pages += 1 << order
                else:
                    objs.append((None, a))
            elif op < 0.97 and large:
                a = rng.choice(list(large))
                k.slab.kfree(a)
                large_pages -= large.pop(a)
            elif caches:
                k.slab.kmem_cache_shrink(rng.choice(caches))
        except MMError as e:
            assert e.errno == errno.ENOMEM, e            # only running out is expected
        if step % check_every == check_every - 1:
            check_consistent(k, large_pages)
    check_consistent(k, large_pages)
    assert all(done.values()), done          # every kind of operation really happened


@pytest.mark.parametrize("config", ["tiny", "seed-vm", "seed-server", "big-4s-1t", "memoryless"])
def test_files_agree_at_boot(config):
    k = memoryless_kernel() if config == "memoryless" else boot(config)
    assert sum(k.slab.large_pages) == 0          # boot makes no large kmalloc: slab pages are slabinfo's
    check_consistent(k, 0)


@pytest.mark.parametrize("config,seed", [("tiny", 1), ("tiny", 2), ("seed-vm", 3), ("seed-server", 4),
                                         ("memoryless", 5)])
def test_files_agree_after_random_workloads(config, seed):
    k = memoryless_kernel() if config == "memoryless" else boot(config)
    random_workload(k, seed, steps=400, check_every=50)


def test_tiny_under_pressure_stays_consistent():
    """Fill tiny until allocations fail: watermark-limited zones still add up everywhere."""
    from procsim.mm import gfp as G
    from procsim.mm.errors import MMError
    k = boot("tiny")
    held = []
    for order in (3, 0):
        while True:
            try:
                held.append(k.alloc_pages(order, G.GFP_HIGHUSER_MOVABLE))
            except MMError:
                break
    f = check_consistent(k, 0)
    z = {x["zone"]: x for x in parse_zoneinfo(f["zoneinfo"])}
    assert z["DMA32"]["pages free"] < z["DMA32"]["low"]      # it really ran out
    for p in held[::2]:
        k.free_pages(p)
    check_consistent(k, 0)


def test_memfree_excludes_pcp_pages():
    """On a bare kernel (no SLUB, no boot workload) every page is free, on a pcp list, or
    ours: MemFree counts only the first kind."""
    from procsim.machine import load
    from procsim.mm import gfp as G
    from procsim.mm.kernel import Kernel
    k = Kernel(load(CONFIGS / "tiny.yaml"), boot=False, slab=False)
    held = [k.alloc_pages(o, G.GFP_KERNEL) for o in (0, 0, 1, 3, 5)]
    mine = 1 + 1 + 2 + 8 + 32
    pcp = sum(p.count for z in k.zones for p in z.pcp)
    assert pcp > 0                                     # order-0 refills left pages on the pcp lists
    f = check_consistent(k, 0)
    mi = parse_meminfo(f["meminfo"])
    zones = parse_zoneinfo(f["zoneinfo"])
    assert sum(sum(p["count"] for p in z["pagesets"]) for z in zones) == pcp
    assert mi["MemFree"] == mi["MemTotal"] - (pcp + mine) * 4
    for p in held:
        k.free_pages(p)
    pcp = sum(p.count for z in k.zones for p in z.pcp)
    assert parse_meminfo(files(k)["meminfo"])["MemFree"] == mi["MemTotal"] - pcp * 4
