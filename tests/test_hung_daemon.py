"""The CLI on a hung daemon (issue 14 item 9): after SIGSTOP, `procsim umount`, `exec` and
`mount` on its path say so within a bounded time; umount detaches the mount lazily.
The daemon is always continued (and the mount removed) in finally."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import contextmanager

from procsim.testing import fake_session, mounts, procsim_cmd
from procsim.harness import PID_XATTR


@contextmanager
def stopped(mp):
    pid = int(os.getxattr(mp, PID_XATTR))
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


def cli(*args):
    t = time.monotonic()
    r = subprocess.run(procsim_cmd(*args), capture_output=True, text=True, timeout=60)
    return r, time.monotonic() - t


def test_umount_detaches_a_stopped_daemon(mount_session):
    mp = mount_session(fake_session)
    with stopped(mp):
        r, took = cli("umount", mp)
        assert r.returncode == 0, r.stderr
        assert "does not answer" in r.stderr and "detaching" in r.stderr
        assert not mounts(mp)
        assert took < 30


def test_exec_refuses_a_stopped_daemon(mount_session):
    mp = mount_session(fake_session)
    with stopped(mp):
        r, took = cli("exec", mp, "--", "echo", "TOOL-RAN")
        assert r.returncode == 1 and "TOOL-RAN" not in r.stdout
        assert "does not answer" in r.stderr and "stopped?" in r.stderr
        assert took < 30
    assert mounts(mp)


def test_mount_on_the_path_of_a_stopped_daemon(mount_session):
    mp = mount_session(fake_session)
    with stopped(mp):
        r, took = cli("mount", mp)
        assert r.returncode == 1
        assert "does not answer" in r.stderr and f"procsim umount {mp}" in r.stderr
        assert took < 30
    assert mounts(mp)
