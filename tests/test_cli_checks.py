"""`procsim exec` binds only a live procsim mount and never a symlink (issue 14 item 10);
racing `procsim mount`s on one path report only a daemon that serves it (item 12)."""
from __future__ import annotations

import os
import re
import subprocess

import pytest

from procsim.testing import CONFIGS, mounts, procsim_cmd
from procsim import nsexec
from procsim.harness import PID_XATTR, force_unmount


def test_exec_refuses_a_tmpfs_that_looks_like_a_mount(tmp_path):
    """The reproduction: a tmpfs with a file called control and a symlink to /etc/hostname."""
    fake = tmp_path / "F"
    fake.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "procsim-test", str(fake)], check=True)
    try:
        (fake / "control").write_text("")
        (fake / "meminfo").symlink_to("/etc/hostname")
        r = subprocess.run(procsim_cmd("exec", fake, "--", "cat", "/proc/meminfo"),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1
        assert f"{fake} is a tmpfs mount, not a procsim mount" in r.stderr
        assert r.stdout == ""                                   # cat never ran
    finally:
        subprocess.run(["umount", "-l", str(fake)], check=False)


def test_bind_script_refuses_symlinks(tmp_path):
    (tmp_path / "meminfo").symlink_to("/etc/hostname")
    with pytest.raises(nsexec.NsExecError) as e:
        nsexec.bind_script(str(tmp_path))
    assert str(e.value) == f"{tmp_path}/meminfo is a symlink; procsim files never are, refusing to bind it"
    (tmp_path / "meminfo").unlink()
    (tmp_path / "sys" / "devices" / "system").mkdir(parents=True)
    (tmp_path / "sys" / "devices" / "system" / "node").symlink_to("/sys/devices/system/node")
    with pytest.raises(nsexec.NsExecError):
        nsexec.bind_script(str(tmp_path))


def test_exec_needs_the_pid_xattr_of_a_procsim_daemon(fake_mounted):
    """A live procsim mount passes the check and names its daemon."""
    assert nsexec.check_mount(str(fake_mounted)) == str(fake_mounted)
    assert int(os.getxattr(fake_mounted, PID_XATTR)) > 0


def test_racing_mounts_report_only_the_daemon_that_serves(mp):
    """Four `procsim mount` at once on one path: one says mounted with the pid that answers
    for the mount, the others refuse; one mount is left, served by that pid."""
    procs = [subprocess.Popen(procsim_cmd("mount", "--config", CONFIGS / "tiny.yaml", mp),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    try:
        out = [p.communicate(timeout=120) for p in procs]
        codes = [p.returncode for p in procs]
        assert sorted(codes) == [0, 1, 1, 1], out
        winner = out[codes.index(0)][0]
        pid = int(re.search(r"mounted on .* \(daemon pid (\d+)\)", winner).group(1))
        assert int(os.getxattr(mp, PID_XATTR)) == pid
        for (so, se), code in zip(out, codes, strict=False):
            if code:
                assert "already a mount point" in se and "mounted" not in so
        with open("/proc/self/mounts") as f:
            assert sum(1 for line in f if line.split()[1] == str(mp)) == 1
        assert subprocess.run(procsim_cmd("umount", mp), capture_output=True, timeout=60).returncode == 0
        assert not mounts(mp)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        force_unmount(mp)
