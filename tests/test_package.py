"""procsim as users install it (issue 20): the wheel in a fresh venv outside the repository,
the CLI finding machines by name, the pytest plugin in a separate project, and fixture trees
read by real clients (node_exporter, psutil, jc) with the numbers procsim itself holds.

The wheel is built and installed once per session (``installed``); the trees of every
shipped machine are written once, by the installed ``procsim fixtures`` (``trees``).
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import procsim
from procsim.testing import node_exporter_metrics

ROOT = Path(__file__).resolve().parent.parent
MACHINES = procsim.machines()
# The environment of a user: nothing pointing back into this checkout.
ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTEST_ADDOPTS")}


def run(cmd, cwd, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600, **kw)
    return r


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Path:
    """The venv's bin directory, with procsim installed from a freshly built wheel (and pytest)."""
    d = tmp_path_factory.mktemp("installed")
    # build from a copy: pip builds in the source tree, and a stale build/ there could ship files
    src = d / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis", "mnt"))
    r = run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", d / "dist", src], cwd=d)
    assert r.returncode == 0, r.stderr
    assert "Package would be ignored" not in r.stderr, r.stderr      # every package declared
    wheels = list((d / "dist").glob("procsim-*.whl"))
    assert len(wheels) == 1
    r = run([sys.executable, "-m", "venv", d / "venv"], cwd=d)
    assert r.returncode == 0, r.stderr
    r = run([d / "venv/bin/python", "-m", "pip", "install", "-q", wheels[0], "pytest"], cwd=d)
    assert r.returncode == 0, r.stderr
    return d / "venv/bin"


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    """An empty working directory outside the repository."""
    d = tmp_path / "elsewhere"
    d.mkdir()
    return d


def test_installed_package_is_not_this_checkout(installed, elsewhere):
    r = run([installed / "python", "-c", "import procsim, procsim.machine as m; print(procsim.__file__, m.CONFIGS_DIR)"],
            cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    where, configs = r.stdout.split()
    assert where.startswith(str(installed.parent)) and not where.startswith(str(ROOT))
    assert sorted(p.stem for p in Path(configs).glob("*.yaml")) == MACHINES


def test_installed_cli_finds_shipped_machines_by_name(installed, elsewhere):
    r = run([installed / "procsim", "check", "seed-vm"], cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"seed-vm ({installed.parent}/lib/")
    r = run([installed / "procsim", "render", "--config", "big-4s-1t", "buddyinfo"], cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    assert r.stdout.encode() == procsim.boot("big-4s-1t").render("buddyinfo")
    r = run([installed / "procsim", "check", "no-such-machine"], cwd=elsewhere)
    assert r.returncode == 2 and f"shipped machines: {', '.join(MACHINES)}" in r.stderr


PARSER_PROJECT = '''
import pytest

def parse_meminfo(text):
    return {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in text.splitlines())}

@pytest.mark.procsim_machines("all")
def test_tree(procsim_tree, procsim_sim):
    mi = parse_meminfo((procsim_tree / "proc/meminfo").read_text())
    assert mi["MemFree"] == sum(z.nr_free for z in procsim_sim.kernel.zones) * 4
    assert (procsim_tree / "sys/devices/system/node/node0/meminfo").is_file()

@pytest.mark.procsim_machines("tiny")
@pytest.mark.procsim_commands("kmem_cache_create probe 200", "kmem_cache_alloc probe count=50")
def test_live_mount(procsim_mount):
    probe = next(l for l in (procsim_mount / "slabinfo").read_text().splitlines() if l.startswith("probe "))
    assert probe.split()[3:5] == ["200", "20"]                 # objsize, objperslab
    before = parse_meminfo((procsim_mount / "meminfo").read_text())["MemFree"]
    (procsim_mount / "control").write_text("alloc_pages 4\\n")
    assert parse_meminfo((procsim_mount / "meminfo").read_text())["MemFree"] < before

def test_option(procsim_machine):
    assert procsim_machine in ("tiny", "seed-vm")
'''


MYTOOL = '''
def parse_meminfo(path):
    return {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in path.read_text().splitlines())}
'''


def readme_example() -> str:
    """docs/library.md's worked example (its ``# test_meminfo_parser.py`` block), as written there."""
    text = (ROOT / "docs" / "library.md").read_text()
    start = text.index("# test_meminfo_parser.py\n")
    return text[start:text.index("```", start)]


def test_plugin_fixtures_in_a_separate_project(installed, elsewhere):
    (elsewhere / "test_parser.py").write_text(PARSER_PROJECT)
    (elsewhere / "test_meminfo_parser.py").write_text(readme_example())
    (elsewhere / "mytool.py").write_text(MYTOOL)
    r = run([installed / "python", "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
             "--procsim-machines=tiny,seed-vm"], cwd=elsewhere)
    assert r.returncode == 0, r.stdout + r.stderr
    # 4 machines x test_tree, 1 live mount, 2 machines x test_option, README: 4 machines; nothing skipped
    assert f"{len(MACHINES) + 1 + 2 + 4} passed" in r.stdout and "skipped" not in r.stdout, r.stdout
    assert not any("procsim" in line for line in Path("/proc/self/mounts").read_text().splitlines()
                   if str(elsewhere) in line)                  # the FUSE mount is gone


# --- fixture trees and the clients that read them -----------------------------------------------
@pytest.fixture(scope="session")
def trees(installed, tmp_path_factory) -> Path:
    """`procsim fixtures OUT` (every shipped machine) by the installed CLI, run elsewhere."""
    d = tmp_path_factory.mktemp("trees")
    r = run([installed / "procsim", "fixtures", d / "out"], cwd=d)
    assert r.returncode == 0, r.stderr
    return d / "out"


@pytest.fixture(scope="module")
def sims() -> dict[str, procsim.Simulation]:
    """procsim's own state of each machine, booted in this process."""
    return {name: procsim.boot(name) for name in MACHINES}


def test_fixture_trees_are_procsim_files_with_a_manifest(trees, sims, installed, elsewhere):
    import json
    manifest = json.loads((trees / "manifest.json").read_text())
    assert sorted(manifest["machines"]) == MACHINES
    assert all(v["kernel"] == procsim.load(v["machine"]).kernel for v in manifest["machines"].values())
    for name, sim in sims.items():
        in_tree = [v for v in sim.views() if procsim.tree_path(v) is not None]     # pictures are not
        for view in in_tree:
            assert (trees / name / procsim.tree_path(view)).read_bytes() == sim.render(view), (name, view)
        assert (trees / name / "machine.yaml").read_bytes() == Path(sim.machine.source).read_bytes()
        assert len(manifest["machines"][name]["files"]) == len(in_tree)
    # the tar holds the same bytes, and making it again gives the same tar
    tars = []
    for i in range(2):
        r = run([installed / "procsim", "fixtures", "--tar", "-c", "tiny", "-c", "seed-vm", f"t{i}.tar"], cwd=elsewhere)
        assert r.returncode == 0, r.stderr
        tars.append((elsewhere / f"t{i}.tar").read_bytes())
    assert tars[0] == tars[1]
    with tarfile.open(fileobj=io.BytesIO(tars[0])) as t:
        assert t.extractfile("tiny/proc/zoneinfo").read() == sims["tiny"].render("zoneinfo")


def _meminfo(sim) -> dict[str, int]:
    """procsim's own meminfo numbers (kB)."""
    return {k: int(v.split()[0]) for k, v in (l.split(":", 1) for l in sim.render("meminfo").decode().splitlines())}


@pytest.mark.parametrize("name", MACHINES)
def test_node_exporter_reads_the_tree(trees, sims, name):
    k = sims[name].kernel
    collectors = ("meminfo", "vmstat", "buddyinfo", "zoneinfo", "slabinfo", "meminfo_numa")
    m = node_exporter_metrics(collectors, procfs=trees / name / "proc", sysfs=trees / name / "sys")
    for c in collectors:
        assert m[f'node_scrape_collector_success{{collector="{c}"}}'] == 1, c
    assert m["node_memory_MemTotal_bytes"] == sum(z.managed for z in k.zones) * 4096
    assert m["node_memory_MemFree_bytes"] == sum(z.nr_free for z in k.zones) * 4096
    vmstat = dict(l.split() for l in sims[name].render("vmstat").decode().splitlines())
    exported = {key[len("node_vmstat_"):]: v for key, v in m.items() if key.startswith("node_vmstat_")}
    assert exported and all(v == int(vmstat[key]) for key, v in exported.items())
    for z in k.zones:
        if not z.managed:
            continue
        labels = f'node="{z.node}",zone="{z.name}"'
        assert m[f"node_zoneinfo_managed_pages{{{labels}}}"] == z.managed
        assert m[f"node_zoneinfo_nr_free_pages{{{labels}}}"] == z.nr_free
        for order in range(11):
            assert m[f'node_buddyinfo_blocks{{node="{z.node}",size="{order}",zone="{z.name}"}}'] == z.nr_free_order(order)
    for n in k.nodes:
        free = sum(z.nr_free for z in n.zones) * 4096
        assert m[f'node_memory_numa_MemFree{{node="{n.id}"}}'] == free
    for c in k.slab.caches:
        active, total = c.slabinfo()[:2]
        assert m[f'node_slabinfo_active_objects{{slab="{c.name}"}}'] == active
        assert m[f'node_slabinfo_objects{{slab="{c.name}"}}'] == total


@pytest.mark.parametrize("name", MACHINES)
def test_psutil_reads_the_tree(trees, sims, name):
    import psutil
    k, own = sims[name].kernel, _meminfo(sims[name])
    saved = psutil.PROCFS_PATH
    psutil.PROCFS_PATH = str(trees / name / "proc")
    try:
        vm, swap = psutil.virtual_memory(), psutil.swap_memory()
    finally:
        psutil.PROCFS_PATH = saved
    assert vm.total == sum(z.managed for z in k.zones) * 4096
    assert vm.free == sum(z.nr_free for z in k.zones) * 4096
    assert vm.available == own["MemAvailable"] * 1024
    assert vm.buffers == own["Buffers"] * 1024 and vm.shared == own["Shmem"] * 1024
    assert vm.cached == (own["Cached"] + own["SReclaimable"]) * 1024     # psutil adds SReclaimable, as free(1)
    assert vm.slab == own["Slab"] * 1024
    assert swap.total == own["SwapTotal"] * 1024 == 0


@pytest.mark.parametrize("name", MACHINES)
def test_jc_parsers_read_the_tree(trees, sims, name):
    import jc
    sim, k = sims[name], sims[name].kernel
    proc = trees / name / "proc"
    parse = lambda parser, **kw: jc.parse(f"proc_{parser}", (proc / parser).read_text(), quiet=True, **kw)
    assert parse("meminfo") == _meminfo(sim)
    assert parse("vmstat")["nr_free_pages"] == sum(z.nr_free for z in k.zones)
    shown = [z for z in k.zones if z.present]
    assert [(b["node"], b["zone"], b["free_chunks"]) for b in parse("buddyinfo")] == \
        [(z.node, z.name, [z.nr_free_order(o) for o in range(11)]) for z in shown]
    zones = {(n["node"], zone): v["pages"] for n in parse("zoneinfo") for zone, v in n.items() if isinstance(v, dict)}
    for z in shown:
        assert zones[(z.node, z.name)]["managed"] == z.managed and zones[(z.node, z.name)]["free"] == z.nr_free
    pti = parse("pagetypeinfo")
    assert pti["page_block_order"] == 9 and pti["pages_per_block"] == 512
    counted = {(f["node"], f["zone"]): 0 for f in pti["free_pages"]}
    for f in pti["free_pages"]:
        counted[(f["node"], f["zone"])] += sum(n << o for o, n in enumerate(f["free"]))
    # jc keeps the last node's section only: the kernel prints the whole block once per node
    # (pagetypeinfo_show() runs per pgdat) and jc starts its list afresh at each header -- the
    # kind of NUMA layout bug these fixture trees are for.  Single-node machines check every zone.
    last = [z for z in shown if z.node == shown[-1].node]
    assert counted == {(z.node, z.name): z.nr_free for z in last}
    up = parse("uptime")                              # the simulated clock, in hundredths truncated
    assert up["up_time"] == k.now_ns // 10_000_000 / 100
    assert up["idle_time"] == k.now_ns * sim.machine.nr_cpu_ids // 10_000_000 / 100   # idle cpus all along
    slabs = {s["name"]: (s["active_objs"], s["num_objs"]) for s in parse("slabinfo")}
    assert slabs == {c.name: c.slabinfo()[:2] for c in k.slab.caches}
    # raw: jc's processed cpuinfo splits the 'bugs' line and fails when it is empty, which the
    # kernel prints when no X86_BUG bit is set (seq_puts "bugs\t\t:" and nothing after it)
    cpus = parse("cpuinfo", raw=True)
    assert [int(c["processor"]) for c in cpus] == list(range(sim.machine.nr_cpu_ids))
    assert {c["model name"] for c in cpus} == {s.model for s in sim.machine.sockets}
