"""Memory blocks and hotplug (issue 29.1): /sys/devices/system/memory, `memory_block N STATE`,
lsmem and chmem on the simulation."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess

import pytest

import procsim
from procsim.mm import memory_hotplug as mh
from procsim.mm.check import check
from procsim.testing import procsim_cmd
from procsim.control import ControlError
from procsim.mm.errors import MMError

GiB = 1 << 30


def _memtotal_kb(sim) -> int:
    line = [l for l in sim.render("meminfo").decode().splitlines() if l.startswith("MemTotal:")][0]
    return int(line.split()[1])


@pytest.fixture(scope="module")
def server():
    return procsim.boot("seed-server")


def test_block_size_follows_probe_memory_block_size():
    """128 MiB below 64 GiB of RAM end; 2 GiB on a bare-metal machine above (init_64.c)."""
    assert mh.memory_block_size_bytes(procsim.boot("tiny").kernel) == 128 << 20
    assert mh.memory_block_size_bytes(procsim.boot("seed-vm").kernel) == 128 << 20
    sim = procsim.boot("seed-server")
    assert sim.render("sys/devices/system/memory/block_size_bytes") == b"80000000\n"
    # seed-server: 128 GiB with the PCI hole at 2 GiB: blocks 0 (0-2G) and 2..64 (4G-130G)
    assert sorted(mh.memory_blocks(sim.kernel)) == [0] + list(range(2, 65))


def test_sysfs_files_as_the_kernel_prints_them():
    sim = procsim.boot("seed-vm")
    d = "sys/devices/system/memory"
    assert sim.render(f"{d}/auto_online_blocks") == b"offline\n"
    assert sim.render(f"{d}/memory1/state") == b"online\n"
    assert sim.render(f"{d}/memory1/online") == b"1\n"
    assert sim.render(f"{d}/memory1/phys_index") == b"00000001\n"
    assert sim.render(f"{d}/memory1/phys_device") == b"0\n"
    assert sim.render(f"{d}/memory1/removable") == b"1\n"
    assert sim.render(f"{d}/memory1/valid_zones") == b"DMA32\n"
    assert sim.render(f"{d}/memory0/valid_zones") == b"none\n"          # DMA and DMA32: spans zones
    assert f"{d}/memory1/node0" in sim.views()


def test_offline_and_online_change_memtotal_and_keep_the_books():
    sim = procsim.boot("seed-server")
    k = sim.kernel
    before = _memtotal_kb(sim)
    z = k.nodes[1].zones[2]
    present, managed = z.present, z.managed
    assert sim.run("memory_block 63 offline") == ["ok offline"]
    assert _memtotal_kb(sim) == before - 2 * GiB // 1024
    assert (z.present, z.managed) == (present - 524288, managed - 524288)
    assert sim.render("sys/devices/system/memory/memory63/state") == b"offline\n"
    assert sim.render("sys/devices/system/memory/memory63/valid_zones") == b"Normal Movable\n"
    check(k)
    with pytest.raises(procsim.CommandError) as e:
        sim.run("memory_block 63 offline")
    assert e.value.errno == errno.EINVAL
    assert sim.run("memory_block 63 online_kernel") == ["ok online"]
    assert _memtotal_kb(sim) == before and (z.present, z.managed) == (present, managed)
    check(k)


def test_unmovable_pages_make_offline_ebusy_and_change_nothing_else():
    """Block 64 holds NODE_DATA(1) and the percpu chunk: has_unmovable_pages() -> EBUSY."""
    sim = procsim.boot("seed-server")
    before = _memtotal_kb(sim)
    with pytest.raises(procsim.CommandError) as e:
        sim.run("memory_block 64 offline")
    assert e.value.errno == errno.EBUSY
    assert _memtotal_kb(sim) == before
    assert sim.render("sys/devices/system/memory/memory64/state") == b"online\n"
    assert b"page dumped because: unmovable page" in sim.render("kmsg")
    with pytest.raises(procsim.CommandError) as e:
        sim.run("memory_block 0 offline")                # DMA + DMA32
    assert e.value.errno == errno.EINVAL
    check(sim.kernel)


def test_movable_pages_are_migrated_out():
    """A block holding user pages goes offline: they move (pgmigrate_success counts them)
    and stay owned by their tag; none is left in the block."""
    sim = procsim.boot("seed-server")
    k = sim.kernel
    sim.run("alloc_pages 0 count=5000 tag=a use=anon gfp=GFP_HIGHUSER_MOVABLE")
    moved = None
    for nr in sorted(mh.memory_blocks(k)):         # block 2 has slab pages (EBUSY), block 3 only user pages
        b = mh.memory_blocks(k)[nr]
        z = mh.block_zone(k, b)
        if z is None:
            continue
        inside = sum(1 << p.order for p in mh._allocations_in(k, z, b.start_pfn, b.start_pfn + b.nr_pages))
        if not inside:
            continue
        before = k.vm_events.get("pgmigrate_success", 0)
        try:
            sim.run(f"memory_block {nr} offline")
        except procsim.CommandError as e:
            assert e.errno == errno.EBUSY
            continue
        moved = k.vm_events["pgmigrate_success"] - before
        assert moved == inside
        assert not mh._allocations_in(k, z, b.start_pfn, b.start_pfn + b.nr_pages)
        break
    assert moved
    check(k)
    assert sim.run("free_pages tag=a") == ["ok freed 5000"]
    check(k)


def test_online_movable_populates_zone_movable():
    sim = procsim.boot("seed-server")
    k = sim.kernel
    sim.run("memory_block 63 offline", "memory_block 63 online_movable")
    z = k.nodes[1].zones[3]
    assert z.name == "Movable" and z.populated and z.present == z.managed == 524288
    assert sim.render("sys/devices/system/memory/memory63/valid_zones") == b"Movable\n"
    assert "Node 1, zone  Movable" in sim.render("zoneinfo").decode()
    check(k)
    sim.run("memory_block 63 offline")
    assert not z.populated and z.spanned == 0
    check(k)


def test_state_write_words(tmp_path):
    sim = procsim.boot("seed-vm")
    from procsim.views import memory
    v = memory.files_for(sim.machine)["sys/devices/system/memory/memory7/state"]
    assert v.write(sim.kernel, b"offline\n") == "memory_block 7 offline"
    with pytest.raises((ControlError, MMError)) as e:
        v.write(sim.kernel, b"offlinex\n")
    assert e.value.errno == errno.EINVAL
    o = memory.files_for(sim.machine)["sys/devices/system/memory/memory7/online"]
    assert o.write(sim.kernel, b"1\n") is None          # already online: nothing to do, success
    assert o.write(sim.kernel, b"0\n") == "memory_block 7 offline"


def test_lsmem_reads_a_written_tree(tmp_path):
    sim = procsim.boot("seed-server")
    sim.run("memory_block 63 offline")
    root = sim.write_tree(tmp_path / "t")
    r = subprocess.run(["lsmem", "--sysroot", root, "-o", "RANGE,SIZE,STATE,BLOCK,NODE,ZONES"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "Memory block size:         2G" in r.stdout
    assert "Total online memory:     126G" in r.stdout
    assert "Total offline memory:      2G" in r.stdout
    assert "0x0000001f80000000-0x0000001fffffffff   2G offline    63    1 Normal/Movable" in r.stdout


def _in_ns(mp, cmd: str):
    """cmd in a private mount namespace with M's memory directory over the host's (sh -e: no
    bind, no command), so chmem can only reach the simulation."""
    script = (f"set -e; mount --bind {mp}/sys/devices/system/memory /sys/devices/system/memory; "
              f"exec sh -c '{cmd}'")
    ns = ["unshare", "-m", "--propagation", "private"] if os.geteuid() == 0 else \
         ["unshare", "-r", "-m", "--propagation", "private"]
    return subprocess.run([*ns, "sh", "-c", script], capture_output=True, text=True)


def test_chmem_and_lsmem_on_the_mount(mounted, tmp_path):
    """issue 29 Must show, as seed-server really behaves: 2 GiB blocks, so `chmem -d 1G` is
    refused by chmem itself; `chmem -d 2G` takes the highest block that can go (64 holds the
    node's memmap and percpu: EBUSY) and lowers MemTotal by 2 GiB; `chmem -e 2G` gives it
    back (to ZONE_MOVABLE, chmem's choice when valid_zones allows it)."""
    assert os.path.isdir("/sys/devices/system/memory") and shutil.which("chmem")
    state = tmp_path / "state"
    m = mounted("seed-server", "--state", state)
    total = lambda: int((m / "meminfo").read_text().split("\n")[0].split()[1])
    before = total()
    r = _in_ns(m, "lsmem")
    assert r.returncode == 0 and "Total online memory:     128G" in r.stdout, r.stderr
    r = _in_ns(m, "chmem -d 1G")
    assert r.returncode != 0 and "aligned to memory block size (2G)" in r.stderr
    assert total() == before
    r = _in_ns(m, "chmem -v -d 2G")
    assert r.returncode == 0, r.stderr
    assert "Memory Block 63 (0x0000001f80000000-0x0000001fffffffff) disabled" in r.stdout
    assert total() == before - 2 * GiB // 1024
    assert "offline" in (m / "sys/devices/system/memory/memory63/state").read_text()
    r = _in_ns(m, "chmem -v -e 2G")
    assert r.returncode == 0, r.stderr
    assert total() == before
    assert (m / "sys/devices/system/memory/memory63/valid_zones").read_text() == "Movable\n"
    journal = state.read_text()
    assert "memory_block 63 offline\n" in journal and "memory_block 63 online_movable\n" in journal
    # the journal replays it: a new daemon on the same state has block 63 in ZONE_MOVABLE
    assert subprocess.run(procsim_cmd("umount", m), capture_output=True).returncode == 0
    m2 = mounted("seed-server", "--state", state)
    assert (m2 / "sys/devices/system/memory/memory63/valid_zones").read_text() == "Movable\n"


def test_block_size_rule_before_5_9_follows_the_end_of_ram():
    """Before 5.9 (no bare-metal shortcut): the largest power of two up to 2 GiB that the end
    of RAM is aligned to; 64 GiB + 384 MiB ends on a 128 MiB boundary only."""
    from types import SimpleNamespace as NS
    lay = lambda end_gib_mib: NS(nodes=[NS(ram=((0, 1),), end_pfn=end_gib_mib)])
    end = (64 * GiB + 384 * (1 << 20)) >> 12
    assert mh.probe_memory_block_size(lay(end), "5.4") == 128 << 20
    assert mh.probe_memory_block_size(lay(end), "6.18") == 2 * GiB
    assert mh.probe_memory_block_size(lay((66 * GiB) >> 12), "3.10") == 2 * GiB
    assert mh.probe_memory_block_size(lay((65 * GiB) >> 12), "3.10") == GiB
    assert mh.probe_memory_block_size(lay((63 * GiB) >> 12), "6.18") == 128 << 20
