"""End to end: the hardware tree through the FUSE shell and `procsim exec` (always unmounted)."""
from __future__ import annotations

import re
import subprocess

from procsim.testing import procsim_cmd
from procsim import machine
from procsim.views import hardware



def seed_session():
    from procsim.session import Session
    m = machine.load(machine.CONFIGS_DIR / "seed-server.yaml")
    return Session(m, views=hardware.files_for(m))


def pexec(mp, *cmd) -> str:
    out = subprocess.run(procsim_cmd("exec", mp, "--", *cmd), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_numactl_dmidecode_lscpu_through_the_mount(mount_session):
    mp = mount_session(seed_session)
    out = pexec(mp, "numactl", "--hardware")
    assert "available: 2 nodes (0-1)" in out
    assert "node 0 cpus: 0 1 2 3 4 5 6 7 8 9 10 11 24 25 26 27 28 29 30 31 32 33 34 35\n" in out
    free1 = int(re.search(r"^node 1 free: (\d+) MB$", out, re.M).group(1))

    with open(mp / "control", "w") as f:
        f.write("alloc_pages 10 node=1 count=32\n")                  # 32 x 4 MiB = 128 MiB
    out = pexec(mp, "numactl", "--hardware")
    assert int(re.search(r"^node 1 free: (\d+) MB$", out, re.M).group(1)) == free1 - 128

    out = pexec(mp, "dmidecode", "-t", "4,17")
    assert "Getting SMBIOS data from sysfs." in out
    assert re.findall(r"Socket Designation: (.*)", out) == ["CPU 1", "CPU 2"]
    assert out.count("Version: Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz") == 2
    assert out.count("Core Count: 12") == 2 and out.count("Thread Count: 24") == 2
    assert re.findall(r"\tSize: (.*)", out) == ["16 GB"] * 8 or re.findall(r"\tSize: (.*)", out) == ["16384 MB"] * 8
    assert "Locator: CPU1 DIMM A1" in out

    out = pexec(mp, "lscpu")
    assert re.search(r"^Socket\(s\):\s+2$", out, re.M)
    assert re.search(r"^Core\(s\) per socket:\s+12$", out, re.M)
    assert re.search(r"^Thread\(s\) per core:\s+2$", out, re.M)
    assert re.search(r"^NUMA node1 CPU\(s\):\s+12-23,36-47$", out, re.M)
