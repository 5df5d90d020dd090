"""Who may do what on a mount: ``control`` is the mounting user's alone (0600, enforced by the
kernel through default_permissions) even with ``--allow-other``; views keep the kernel's modes,
so another user (``nobody``) reads the 0444 files and gets EACCES on control, slabinfo,
pagetypeinfo and the DMI tables."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from procsim.testing import force_unmount


KERNEL_MODES = {"zoneinfo": 0o444, "buddyinfo": 0o444, "vmstat": 0o444, "meminfo": 0o444, "cpuinfo": 0o444,
                "pagetypeinfo": 0o400, "slabinfo": 0o400,            # 0400 in 6.x (no SLAB: no tuning writes)
                "sys/firmware/dmi/tables/DMI": 0o400,
                "sys/devices/system/node/node0/meminfo": 0o444,
                "control": 0o600, "log": 0o444, "allocations": 0o444}
READABLE = [p for p, m in KERNEL_MODES.items() if m & 0o004]
PRIVATE = [p for p, m in KERNEL_MODES.items() if not m & 0o004]


def as_nobody(*cmd, stdin=None):
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *cmd],
                          input=stdin, capture_output=True, text=True, timeout=60)


@pytest.fixture
def public_dir():
    """A mount point other users can reach (pytest's tmp dirs are 0700)."""
    d = Path(tempfile.mkdtemp(prefix="procsim-sec-"))
    d.chmod(0o755)
    (d / "mnt").mkdir()
    (d / "mnt").chmod(0o755)
    yield d / "mnt"
    force_unmount(d / "mnt")
    shutil.rmtree(d, ignore_errors=True)


def test_modes_match_the_kernel_with_allow_other(mounted):
    mp = mounted("tiny", "--allow-other")
    for path, mode in KERNEL_MODES.items():
        st = os.stat(mp / path)
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == mode, (path, oct(st.st_mode))
        assert st.st_uid == os.getuid()
    assert stat.S_IMODE(os.stat(mp).st_mode) == 0o555


def test_other_user_reads_public_views_and_is_refused_the_rest(tmp_path, public_dir):
    import subprocess as sp

    from procsim.testing import CONFIGS, procsim_cmd, wait_mounted
    mp = public_dir
    p = sp.Popen(procsim_cmd("mount", "--foreground", "--allow-other", "--config", CONFIGS / "tiny.yaml", mp),
                 stdout=sp.DEVNULL, stderr=sp.DEVNULL)
    try:
        wait_mounted(mp, p)
        (mp / "control").write_text("kmalloc 64 tag=root\n")          # the owner may
        for path in READABLE:
            r = as_nobody("cat", str(mp / path))
            assert r.returncode == 0 and r.stdout, (path, r.stderr)
        assert "root" in as_nobody("cat", str(mp / "allocations")).stdout
        for path in PRIVATE:
            r = as_nobody("cat", str(mp / path))
            assert r.returncode != 0 and "Permission denied" in r.stderr, (path, r.stderr)
        r = as_nobody("sh", "-c", f"echo 'kmalloc 64 tag=intruder' > {mp}/control")
        assert r.returncode != 0 and "Permission denied" in r.stderr
        r = as_nobody("python3", "-c", f"import os; os.open('{mp}/meminfo', os.O_WRONLY)")
        assert r.returncode != 0 and "Permission denied" in r.stderr
        assert "intruder" not in (mp / "allocations").read_text()
        assert "intruder" not in (mp / "log").read_text()
    finally:
        force_unmount(mp, p)


def test_without_allow_other_other_users_see_nothing(public_dir):
    import subprocess as sp

    from procsim.testing import CONFIGS, procsim_cmd, wait_mounted
    mp = public_dir
    p = sp.Popen(procsim_cmd("mount", "--foreground", "--config", CONFIGS / "tiny.yaml", mp),
                 stdout=sp.DEVNULL, stderr=sp.DEVNULL)
    try:
        wait_mounted(mp, p)
        assert (mp / "meminfo").read_text().startswith("MemTotal:")
        r = as_nobody("cat", str(mp / "meminfo"))
        assert r.returncode != 0 and "Permission denied" in r.stderr
    finally:
        force_unmount(mp, p)
