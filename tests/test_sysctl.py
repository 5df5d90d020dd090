"""vm sysctls: the kernel's modes, ranges and recomputations, through procps sysctl on a mount."""
import errno
import os
import re
import subprocess

import pytest

from procsim.testing import boot, procsim_cmd
from procsim.mm import printk, sysctl
from procsim.mm.errors import MMError


@pytest.fixture
def tiny():
    return boot("tiny")


def _populated(k):
    return [z for z in k.zones if z.populated]


def test_reads_are_proc_dointvec_text(tiny):
    assert sysctl.read(tiny, "lowmem_reserve_ratio") == "256\t256\t32\t0\t0\n"
    assert sysctl.read(tiny, "swappiness") == "60\n"
    assert sysctl.read(tiny, "vfs_cache_pressure") == "100\n"
    assert sysctl.read(tiny, "vm.watermark_scale_factor") == "10\n"
    assert sysctl.read(tiny, "min_free_kbytes") == f"{tiny.min_free_kbytes}\n"


def test_min_free_kbytes_moves_the_watermarks(tiny):
    k = tiny
    sysctl.write(k, "min_free_kbytes", "8192\n")
    pages_min = 8192 // 4
    lowmem = sum(z.managed for z in k.zones)                # tiny has no Movable zone
    for z in _populated(k):
        tmp = pages_min * z.managed // lowmem               # __setup_per_zone_wmarks by hand
        step = max(tmp // 4, z.managed * 10 // 10000)
        assert (z.wmark_min, z.wmark_low, z.wmark_high) == (tmp, tmp + step, tmp + 2 * step)
        for pcp in z.pcp:                                   # zone_pcp_update: high_min from the low mark
            assert pcp.high_min == max(z.wmark_low // 2, pcp.batch * 4)
    assert k.user_min_free_kbytes == 8192
    assert k.totalreserve_pages == sum(min(z.managed, max(z.lowmem_reserve) + z.wmark_high) for z in k.zones)


def test_watermark_scale_factor_range_and_effect(tiny):
    k = tiny
    for bad in ("0", "3001", "-5"):
        with pytest.raises(MMError) as e:
            sysctl.write(k, "watermark_scale_factor", bad)
        assert e.value.errno == errno.EINVAL
    assert sysctl.read(k, "watermark_scale_factor") == "10\n"
    z = _populated(k)[-1]
    wmin = z.wmark_min
    sysctl.write(k, "watermark_scale_factor", "1000")       # 10 % of the zone between marks
    assert z.wmark_low - z.wmark_min == max(wmin // 4, z.managed * 1000 // 10000)
    assert z.wmark_min == wmin


def test_lowmem_reserve_ratio_short_write_and_zero(tiny):
    k = tiny
    dma, dma32 = _populated(k)
    sysctl.write(k, "lowmem_reserve_ratio", "128\t-3")      # below 1 becomes 0; the rest stays
    assert sysctl.read(k, "lowmem_reserve_ratio") == "128\t0\t32\t0\t0\n"
    assert dma.lowmem_reserve == [0, dma32.managed // 128] + [dma32.managed // 128] * 3
    assert dma32.lowmem_reserve == [0] * 5                   # ratio 0: no reserve


def test_percpu_pagelist_high_fraction(tiny):
    k = tiny
    with pytest.raises(MMError) as e:
        sysctl.write(k, "percpu_pagelist_high_fraction", "7")
    assert e.value.errno == errno.EINVAL
    sysctl.write(k, "percpu_pagelist_high_fraction", "8")
    for z in _populated(k):
        want = max(z.managed // 8 // 2, z.pcp[0].batch * 4)  # tiny: 2 CPUs on node 0
        assert all(p.high_min == p.high_max == want for p in z.pcp)


def test_bad_text_is_einval_and_changes_nothing(tiny):
    k = tiny
    before = sysctl.read(k, "min_free_kbytes")
    for bad in ("", "abc", "12abc", "0x", "99999999999", "1.5"):
        with pytest.raises(MMError) as e:
            sysctl.write(k, "min_free_kbytes", bad)
        assert e.value.errno == errno.EINVAL, bad
    assert sysctl.read(k, "min_free_kbytes") == before
    assert sysctl.write(k, "swappiness", " 0x20\n") == "32"  # strtoul base 0
    assert sysctl.write(k, "swappiness", "010") == "8"
    with pytest.raises(MMError) as e:
        sysctl.write(k, "swappiness", "201")
    assert e.value.errno == errno.EINVAL
    with pytest.raises(MMError) as e:
        sysctl.write(k, "dirty_ratios", "5")
    assert e.value.errno == errno.ENOENT


def test_drop_caches_counts_and_logs_once_until_silenced(tiny):
    k = tiny
    with pytest.raises(MMError):
        sysctl.write(k, "drop_caches", "5")
    sysctl.write(k, "drop_caches", "3")
    assert k.vm_events["drop_slab"] == 1 and k.vm_events["drop_pagecache"] == 1
    sysctl.write(k, "drop_caches", "4")
    sysctl.write(k, "drop_caches", "2")
    texts = [r.text for r in printk.ring(k).records]
    assert texts == ["procsim (1): drop_caches: 3", "procsim (1): drop_caches: 4"]
    assert k.vm_events["drop_slab"] == 2


# --- through the mount, with procps ---------------------------------------------------------
def _exec(m, *cmd):
    return subprocess.run(procsim_cmd("exec", m, "--", *cmd), capture_output=True, text=True)


def _zoneinfo_min(m) -> list[int]:
    return [int(x) for x in re.findall(r"^        min      (\d+)$", (m / "zoneinfo").read_text(), re.M)]


def test_procps_sysctl_reads_and_writes(mounted, tmp_path):
    state = tmp_path / "state"
    m = mounted("tiny", "--state", state)
    r = _exec(m, "sysctl", "vm.lowmem_reserve_ratio", "vm.swappiness")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "vm.lowmem_reserve_ratio = 256\t256\t32\t0\t0\nvm.swappiness = 60\n"
    before = _zoneinfo_min(m)
    r = _exec(m, "sysctl", "-w", "vm.min_free_kbytes=8192")
    assert (r.returncode, r.stdout) == (0, "vm.min_free_kbytes = 8192\n"), r.stderr
    after = _zoneinfo_min(m)
    assert after != before and sum(after[:2]) in range(2048 - 2, 2048 + 1)   # DMA+DMA32 min ≈ 8192 kB / 4
    r = _exec(m, "sysctl", "-w", "vm.swappiness=300")
    assert r.returncode != 0 and "Invalid argument" in r.stderr
    r = _exec(m, "sysctl", "vm.drop_caches")            # procps skips a write-only key, as on a host
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    r = _exec(m, "cat", "/proc/sys/vm/drop_caches")
    assert r.returncode != 0 and "Permission denied" in r.stderr
    assert _exec(m, "sysctl", "-q", "-w", "vm.drop_caches=2").returncode == 0
    assert "sysctl vm.min_free_kbytes 8192\n" in state.read_text()
    # the journal replays the write: the next daemon on the same state sees it
    assert subprocess.run(procsim_cmd("umount", m), capture_output=True).returncode == 0   # frees the journal
    m2 = mounted("tiny", "--state", state)
    assert (m2 / "sysctl/vm/min_free_kbytes").read_text() == "8192\n"
    assert _zoneinfo_min(m2) == after


def test_drop_caches_is_write_only_on_the_mount(mounted):
    m = mounted("tiny")
    with pytest.raises(PermissionError):
        (m / "sysctl/vm/drop_caches").read_text()
    assert oct(os.stat(m / "sysctl/vm/drop_caches").st_mode & 0o777) == "0o200"
    with pytest.raises(OSError) as e:
        (m / "sysctl/vm/min_free_kbytes").write_text("lots\n")
    assert e.value.errno == errno.EINVAL
