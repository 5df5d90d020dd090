"""The real consumers read the rendered files: procps (slabtop, vmstat -m, free) through a
bind mount over /proc in a private mount namespace, and node_exporter through
--path.procfs.  No FUSE here: the views are rendered to plain files, so these tests check
the bytes, not the filesystem.
"""
from __future__ import annotations

import re
import subprocess

import pytest

from procsim.testing import boot, node_exporter_metrics
from test_views import files, parse_buddyinfo, parse_meminfo, parse_slabinfo, parse_zoneinfo


PROBE = "views_probe"
PROBE_OBJECTS = 100




@pytest.fixture(scope="module")
def probed():
    """seed-vm with one more cache: 100 objects of 200 bytes allocated on cpu 0."""
    from procsim.mm import gfp as G
    k = boot("seed-vm")
    c = k.slab.kmem_cache_create(PROBE, 200)
    for _ in range(PROBE_OBJECTS):
        k.slab.kmem_cache_alloc(c, G.GFP_KERNEL, cpu=0)
    return k


@pytest.fixture(scope="module")
def rendered(probed, tmp_path_factory):
    d = tmp_path_factory.mktemp("proc")
    out = files(probed)
    for name, text in out.items():
        (d / name).write_text(text)
    return d, out


def over_proc(d, name: str, cmd: str) -> str:
    """Run ``cmd`` with d/name bound over /proc/name in a private mount namespace."""
    script = f"mount --bind {d / name} /proc/{name} && {cmd}"
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-ec", script],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_slabtop_reads_the_caches(rendered):
    d, out = rendered
    text = over_proc(d, "slabinfo", "slabtop -o")
    caches = parse_slabinfo(out["slabinfo"])
    m = re.search(r"Active / Total Caches \(% used\) *: *(\d+) / (\d+)", text)
    assert m and int(m[2]) == len(caches)
    rows = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) == 8 and f[0].isdigit():
            rows[f[7]] = f
    assert set(rows) == {c["name"] for c in caches}
    # 200-byte objects: s->size 200, order 0 (12 objects fit, 4096 % 200 = 96 <= 4096/16): 20 per slab;
    # 100 objects from one cpu fill exactly 5 slabs
    objs, active, use, size, slabs, per_slab, cache_size, name = rows[PROBE]
    assert (int(objs), int(active), use, size, int(slabs), int(per_slab), cache_size) == \
        (100, 100, "100%", "0.20K", 5, 20, "20K")


def test_vmstat_m_reads_the_caches(rendered):
    d, out = rendered
    text = over_proc(d, "slabinfo", "vmstat -m")
    lines = text.splitlines()
    assert lines[0].split() == ["Cache", "Num", "Total", "Size", "Pages"]
    body = [line.split() for line in lines[1:] if line.split()[:2] != ["Cache", "Num"]]   # header repeats
    rows = {f[0]: [int(x) for x in f[1:]] for f in body}
    want = {c["name"]: [c["active_objs"], c["num_objs"], c["objsize"], c["objperslab"]]
            for c in parse_slabinfo(out["slabinfo"])}
    assert rows == want
    assert rows[PROBE] == [100, 100, 200, 20]


def test_free_reads_meminfo(probed, rendered):
    d, out = rendered
    text = over_proc(d, "meminfo", "free -k")
    mem = next(line.split() for line in text.splitlines() if line.startswith("Mem:"))
    total, used, free, shared, buff_cache, available = map(int, mem[1:7])
    # independently of the view: the zones' managed and buddy-free pages
    assert total == sum(z.managed for z in probed.zones) * 4
    assert free == sum(z.nr_free for z in probed.zones) * 4
    assert available == parse_meminfo(out["meminfo"])["MemAvailable"]
    assert used == total - available          # procps 4: used = MemTotal - MemAvailable


def test_node_exporter_scrapes_every_file(probed, rendered):
    d, out = rendered
    collectors = ("buddyinfo", "zoneinfo", "slabinfo", "meminfo", "vmstat")
    m = node_exporter_metrics(collectors, procfs=d)
    for c in collectors:
        assert m[f'node_scrape_collector_success{{collector="{c}"}}'] == 1, c
    mi = parse_meminfo(out["meminfo"])
    assert m["node_memory_MemTotal_bytes"] == mi["MemTotal"] * 1024
    assert m["node_memory_MemFree_bytes"] == sum(z.nr_free for z in probed.zones) * 4096
    for (node, zone), counts in parse_buddyinfo(out["buddyinfo"]).items():
        for order, n in enumerate(counts):
            assert m[f'node_buddyinfo_blocks{{node="{node}",size="{order}",zone="{zone}"}}'] == n
    for z in parse_zoneinfo(out["zoneinfo"]):
        if z["present"]:
            assert m[f'node_zoneinfo_nr_free_pages{{node="{z["node"]}",zone="{z["zone"]}"}}'] == z["pages free"]
            assert m[f'node_zoneinfo_managed_pages{{node="{z["node"]}",zone="{z["zone"]}"}}'] == z["managed"]
    assert m[f'node_slabinfo_active_objects{{slab="{PROBE}"}}'] == PROBE_OBJECTS
    assert m[f'node_slabinfo_objects_per_slab{{slab="{PROBE}"}}'] == 20
