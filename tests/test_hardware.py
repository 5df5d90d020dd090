"""The hardware views, read by the real numactl, numastat, lscpu and node_exporter.

The tree is rendered to a temp directory and bind-mounted over /sys/devices/system/{node,cpu}
and /proc/cpuinfo inside ``unshare -m`` (the binds vanish with the namespace).  Expected
values are computed here from the YAML: cpus from cores/threads, distances from the matrix.
"""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from procsim import machine
from procsim.mm.gfp import GFP_KERNEL
from procsim.views import hardware
from procsim.testing import boot, node_exporter_metrics

NODE_DIR, CPU_DIR = "sys/devices/system/node", "sys/devices/system/cpu"


def expected_node_cpus(m: machine.Machine, node: int) -> list[int]:
    """Linux numbering, computed independently: every core's first thread, socket by socket,
    then each further thread level in the same order."""
    total_cores = sum(s.cores for s in m.sockets)
    before = sum(s.cores for s in m.sockets[:node])
    tpc = m.sockets[node].threads // m.sockets[node].cores
    return [level * total_cores + before + c for level in range(tpc) for c in range(m.sockets[node].cores)]


def in_namespace(root, script: str) -> str:
    """Run ``script`` with the rendered tree bound over the real paths."""
    binds = (f"mount --bind {root}/{NODE_DIR} /sys/devices/system/node && "
             f"mount --bind {root}/{CPU_DIR} /sys/devices/system/cpu && "
             f"mount --bind {root}/proc/cpuinfo /proc/cpuinfo && ")
    out = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-ec", binds + script],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def numactl(k, tmp_path) -> dict:
    root = tmp_path / "root"
    shutil.rmtree(root, ignore_errors=True)
    hardware.write_tree(k, root)
    out = in_namespace(root, "numactl --hardware")
    res = {"cpus": {}, "size": {}, "free": {}, "dist": {}}
    for line in out.splitlines():
        if m := re.fullmatch(r"available: (\d+) nodes \((.*)\)", line):
            res["available"] = (int(m.group(1)), m.group(2))
        elif m := re.fullmatch(r"node (\d+) cpus:(.*)", line):
            res["cpus"][int(m.group(1))] = [int(x) for x in m.group(2).split()]
        elif m := re.fullmatch(r"node (\d+) (size|free): (\d+) MB", line):
            res[m.group(2)][int(m.group(1))] = int(m.group(3))
        elif m := re.fullmatch(r"\s*(\d+):((?:\s+\d+)+)\s*", line):
            res["dist"][int(m.group(1))] = [int(x) for x in m.group(2).split()]
    return res


# --- formats -----------------------------------------------------------------------------------

def test_cpumask_and_cpulist_formats_match_the_kernel():
    # by hand: bits 0-11 and 24-31 -> ff000fff; bits 32-35 -> f, printed 4 digits wide (48 % 32 = 16 bits)
    assert hardware.cpumask(list(range(12)) + list(range(24, 36)), 48) == "000f,ff000fff"
    assert hardware.cpumask([0], 2) == "1"
    assert hardware.cpumask([1], 2) == "2"
    assert hardware.cpumask([63], 64) == "80000000,00000000"
    assert hardware.cpumask([], 256) == ",".join(["00000000"] * 8)
    assert hardware.cpulist([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    assert hardware.cpulist([]) == ""


# --- numactl -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["seed-server", "big-4s-1t"])
def test_numactl_hardware_shows_the_yaml(name, tmp_path, request):
    k = request.getfixturevalue("seed_server" if name == "seed-server" else "big")
    m = k.machine
    res = numactl(k, tmp_path)
    n = len(m.sockets)
    assert res["available"] == (n, f"0-{n - 1}")
    for node in range(n):
        assert res["cpus"][node] == expected_node_cpus(m, node)
        dimm_mb = sum(d.size for d in m.dimms if d.socket == node) >> 20
        # managed memory: the DIMMs minus holes and memblock reservations (memmap is 1/64)
        assert dimm_mb * 0.95 < res["size"][node] <= dimm_mb
        assert 0 < res["free"][node] <= res["size"][node]
        assert res["dist"][node] == list(m.distances[node])
    if name == "seed-server":
        assert res["cpus"][0] == list(range(0, 12)) + list(range(24, 36))   # seed 000


def test_numactl_free_drops_after_allocating_on_node_1(tmp_path):
    k = boot("seed-server")
    before = numactl(k, tmp_path)
    meminfo_before = hardware.node_meminfo(k, 1)
    pages = [k.alloc_pages(10, GFP_KERNEL, node=1) for _ in range(64)]      # 64 x 4 MiB
    assert all(p.node == 1 for p in pages)
    after = numactl(k, tmp_path)
    assert after["free"][1] == before["free"][1] - 256
    assert after["free"][0] == before["free"][0]
    assert after["size"] == before["size"]

    def kb(text, key):
        return int(re.search(rf"^Node 1 {re.escape(key)}:\s+(\d+) kB$", text, re.M).group(1))
    meminfo_after = hardware.node_meminfo(k, 1)
    assert kb(meminfo_after, "MemFree") == kb(meminfo_before, "MemFree") - 64 * 4096
    assert kb(meminfo_after, "MemUsed") == kb(meminfo_before, "MemUsed") + 64 * 4096
    for p in pages:
        k.free_pages(p)
    assert numactl(k, tmp_path)["free"][1] == before["free"][1]


def test_numastat_counts_the_allocations(tmp_path):
    k = boot("seed-server")

    def hits():
        root = tmp_path / "ns"
        shutil.rmtree(root, ignore_errors=True)
        hardware.write_tree(k, root)
        out = in_namespace(root, "numastat")
        row = next(line for line in out.splitlines() if line.startswith("numa_hit"))
        return [int(x) for x in row.split()[1:]]
    h0 = hits()
    pages = [k.alloc_pages(0, GFP_KERNEL, node=1, cpu=12) for _ in range(5)]
    h1 = hits()
    assert h1[1] == h0[1] + 5 and h1[0] == h0[0]
    for p in pages:
        k.free_pages(p)


def test_node_meminfo_layout_and_slab_lines(seed_server):
    text = hardware.node_meminfo(seed_server, 0)
    lines = text.splitlines()
    assert lines[0].startswith("Node 0 MemTotal:       ") and lines[0].endswith(" kB")
    keys = [re.match(r"Node 0 (\S+):", line).group(1) for line in lines]
    assert keys[:4] == ["MemTotal", "MemFree", "MemUsed", "SwapCached"]
    assert keys[-3:] == ["HugePages_Total", "HugePages_Free", "HugePages_Surp"]
    vals = {key: int(line.split()[3]) for key, line in zip(keys, lines, strict=False)}
    assert vals["MemUsed"] == vals["MemTotal"] - vals["MemFree"]
    assert vals["Slab"] == vals["SReclaimable"] + vals["SUnreclaim"]
    st = seed_server.nodes[0].stat
    assert vals["SUnreclaim"] == st.get("nr_slab_unreclaimable", 0) * 4
    assert vals["MemTotal"] == sum(z.managed for z in seed_server.nodes[0].zones) * 4
    # every line is 'Node N Key: value' with the value column right-aligned like the kernel's %8lu
    assert all(len(line) == len(lines[0]) for line in lines[:-3])


# --- memoryless node ------------------------------------------------------------------------------

MEMORYLESS = """
name: memless
sockets:
  - {model: "Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz", cores: 2, threads: 4}
  - {model: "Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz", cores: 2, threads: 4}
dimms:
  - {socket: 0, size: 1GiB, locator: "CPU1 DIMM A1"}
"""


def test_memoryless_node_keeps_its_cpus(tmp_path):
    k = boot(text=MEMORYLESS)
    root = tmp_path / "root"
    hardware.write_tree(k, root)
    node = root / NODE_DIR
    assert (node / "has_cpu").read_text() == "0-1\n"
    assert (node / "has_memory").read_text() == "0\n"
    assert (node / "has_normal_memory").read_text() == "0\n"
    assert (node / "online").read_text() == "0-1\n"
    res = numactl(k, tmp_path)
    assert res["cpus"] == {0: [0, 1, 4, 5], 1: [2, 3, 6, 7]}
    assert res["size"][1] == 0


# --- lscpu and the cpu tree -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["seed-server", "big-4s-1t"])
def test_lscpu_reports_the_yaml(name, tmp_path, request):
    k = request.getfixturevalue("seed_server" if name == "seed-server" else "big")
    m = k.machine
    root = tmp_path / "root"
    hardware.write_tree(k, root)
    out = in_namespace(root, "lscpu")
    f = dict(re.findall(r"^([^:\n]+):\s+(.*)$", out, re.M))
    s = m.sockets[0]
    assert f["CPU(s)"] == str(sum(x.threads for x in m.sockets))
    assert f["Socket(s)"] == str(len(m.sockets))
    assert f["Core(s) per socket"] == str(s.cores)
    assert f["Thread(s) per core"] == str(s.threads // s.cores)
    assert f["Model name"] == s.model
    assert f["NUMA node(s)"] == str(len(m.sockets))
    for node in range(len(m.sockets)):
        assert f[f"NUMA node{node} CPU(s)"] == hardware.cpulist(expected_node_cpus(m, node))
    # --sysroot reads the same tree without a namespace
    out2 = subprocess.run(["lscpu", "--sysroot", str(root)], capture_output=True, text=True, timeout=30).stdout
    assert re.search(rf"^Socket\(s\):\s+{len(m.sockets)}$", out2, re.M)


def test_cpuinfo_and_topology_agree_with_the_sockets(seed_server, tmp_path):
    m = seed_server.machine
    root = tmp_path / "root"
    hardware.write_tree(seed_server, root)
    blocks = (root / "proc/cpuinfo").read_text().split("\n\n")
    blocks = [dict(re.findall(r"^([^\t\n]+)\t*: ?(.*)$", b, re.M)) for b in blocks if b.strip()]
    assert len(blocks) == 48
    seen = set()
    for cpu, b in enumerate(blocks):
        assert b["processor"] == str(cpu)
        sock = 0 if cpu in expected_node_cpus(m, 0) else 1
        assert b["physical id"] == str(sock)
        assert b["siblings"] == "24" and b["cpu cores"] == "12"
        assert b["model name"] == "Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz"
        seen.add((b["physical id"], b["core id"], b["apicid"]))
        topo = root / CPU_DIR / f"cpu{cpu}/topology"
        assert (topo / "physical_package_id").read_text() == f"{sock}\n"
        assert (topo / "core_id").read_text() == b["core id"] + "\n"
    assert len(seen) == 48                                     # every logical cpu has its own apicid
    topo0 = root / CPU_DIR / "cpu0/topology"
    assert (topo0 / "thread_siblings_list").read_text() == "0,24\n"
    assert (topo0 / "core_cpus_list").read_text() == "0,24\n"
    assert (topo0 / "core_siblings_list").read_text() == "0-11,24-35\n"
    assert (topo0 / "package_cpus").read_text() == "000f,ff000fff\n"
    assert (root / CPU_DIR / "online").read_text() == "0-47\n"


def test_files_for_lists_every_node_and_cpu(big):
    paths = hardware.files_for(big.machine)
    assert sum(1 for p in paths if p.endswith("/topology/core_id")) == 256
    assert {p.split("/")[4] for p in paths if re.match(r"sys/devices/system/node/node\d+/", p)} == \
        {"node0", "node1", "node2", "node3"}
    for p in ("sys/firmware/dmi/tables/DMI", "sys/firmware/dmi/tables/smbios_entry_point"):
        assert paths[p].exact_size and paths[p].mode == 0o400
    assert set(hardware.FILES) <= set(paths)


# --- node_exporter --------------------------------------------------------------------------------

def test_node_exporter_meminfo_numa(seed_server, tmp_path):
    root = tmp_path / "root"
    hardware.write_tree(seed_server, root)
    m = node_exporter_metrics(["meminfo_numa"], sysfs=root / "sys")
    assert m['node_scrape_collector_success{collector="meminfo_numa"}'] == 1
    for nid in (0, 1):
        total_kb = sum(z.managed for z in seed_server.nodes[nid].zones) * 4
        assert m[f'node_memory_numa_MemTotal{{node="{nid}"}}'] == total_kb * 1024
        assert f'node_memory_numa_numa_hit_total{{node="{nid}"}}' in m