"""procsim mount/umount with the real core: daemon mode, signals, dead-mount recovery, --state, render."""
import os
import re
import signal
import subprocess

import pytest

from procsim.testing import CONFIGS, force_unmount, mounts, procsim_cmd, wait_mounted

TINY = CONFIGS / "tiny.yaml"


def sh(*args, **kw):
    return subprocess.run(procsim_cmd(*args), capture_output=True, text=True, **kw)


def gone(pid) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_daemon_mount_and_umount(mp):
    r = sh("mount", "--config", TINY, mp)
    assert r.returncode == 0, r.stderr
    pid = int(re.search(r"daemon pid (\d+)", r.stdout).group(1))
    assert mounts(mp)
    assert {"control", "log", "allocations", "cpuinfo"} <= set(os.listdir(mp))
    assert sh("mount", "--config", TINY, mp).returncode == 1          # already mounted: refused
    r = sh("umount", mp)
    assert r.returncode == 0, r.stderr
    assert not mounts(mp) and gone(pid)


def _blocked(pid: int, tid: int) -> set[int]:
    """The signals a thread blocks (SigBlk of /proc/PID/task/TID/status)."""
    with open(f"/proc/{pid}/task/{tid}/status") as f:
        mask = int(next(ln for ln in f if ln.startswith("SigBlk:")).split()[1], 16)
    return {n for n in range(1, 65) if mask >> (n - 1) & 1}


def test_only_the_main_thread_takes_the_stop_signals(mp):
    """A signal the kernel hands to any other thread of the daemon (the wall clock, the log
    writer, the threaded sessions and their workers) only marks libfuse's session exited
    while the main thread sleeps in read(/dev/fuse) and serves on; so every thread but the
    main one blocks SIGINT, SIGTERM and SIGHUP, and the main one none of them."""
    p = subprocess.Popen(procsim_cmd("mount", "--foreground", "--config", TINY, mp),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_mounted(mp, p)
        stop = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
        others = [int(t) for t in os.listdir(f"/proc/{p.pid}/task") if int(t) != p.pid]
        assert len(others) >= 4                     # the clock, the log, two threaded sessions, ...
        assert not stop & _blocked(p.pid, p.pid)
        assert [t for t in others if not stop <= _blocked(p.pid, t)] == []
    finally:
        force_unmount(mp, p)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signals_unmount_cleanly(mp, sig):
    """A daemon started from a shell ends on each stop signal.  It keeps a signal its parent
    ignored (libfuse installs its handler only over SIG_DFL: under nohup SIGHUP does
    nothing, as for any daemon), so it starts here with the default disposition whatever
    ran the suite."""
    p = subprocess.Popen(procsim_cmd("mount", "--foreground", "--config", TINY, mp),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         preexec_fn=lambda: signal.signal(sig, signal.SIG_DFL))
    try:
        wait_mounted(mp, p)
        p.send_signal(sig)
        assert p.wait(timeout=20) == 0
        assert not mounts(mp)
    finally:
        force_unmount(mp, p)


def test_recovers_a_dead_mount_after_kill_9(mp):
    p = subprocess.Popen(procsim_cmd("mount", "--foreground", "--config", TINY, mp),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_mounted(mp, p)
        p.kill()
        p.wait()
        assert mounts(mp)                                             # left behind ...
        with pytest.raises(OSError) as e:
            os.listdir(mp)
        assert e.value.errno == 107                                   # ENOTCONN
        r = sh("mount", "--config", TINY, mp)                         # ... and mounted over
        assert r.returncode == 0, r.stderr
        assert "removed a dead mount" in r.stderr
        assert "control" in os.listdir(mp)
        assert sh("umount", mp).returncode == 0
        assert not mounts(mp)
    finally:
        force_unmount(mp, p)


def test_state_file_survives_a_crash(mp, tmp_path):
    state = tmp_path / "state"
    p = subprocess.Popen(procsim_cmd("mount", "--foreground", "--config", TINY, "--state", state, mp),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_mounted(mp, p)
        (mp / "control").write_text("kmem_cache_create survivor 100\nkmem_cache_alloc survivor count=7 tag=s\n")
        subprocess.run(["sh", "-c", f"echo 'alloc_pages 99' > {mp}/control"], capture_output=True)  # fails
        before = (mp / "allocations").read_text()
        p.kill()
        p.wait()
        header, rest = state.read_text().split("\n", 1)
        assert header.startswith("# procsim journal 2 machine=tiny sha256=") and header.endswith(" profile=6.18")
        assert rest.startswith("@")                  # the batch's first line: when it ran (simulated ns)
        assert rest.split(" ", 1)[1] == "kmem_cache_create survivor 100\nkmem_cache_alloc survivor count=7 tag=s\n"
        r = sh("mount", "--config", TINY, "--state", state, mp)
        assert r.returncode == 0, r.stderr
        assert (mp / "allocations").read_text() == before            # same IDs, same addresses
        (mp / "control").write_text("reset\n")
        assert state.read_text() == header + "\n"                       # a reset empties the journal
        assert sh("umount", mp).returncode == 0
    finally:
        force_unmount(mp, p)


def test_render_with_commands(tmp_path):
    script = tmp_path / "script"
    script.write_text("# two groups\nalloc_pages 3 tag=a\nkmalloc 100 count=2 tag=b\n")
    r = sh("render", "--config", TINY, "--commands", script, "allocations")
    assert r.returncode == 0, r.stderr
    rows = [l.split() for l in r.stdout.splitlines()[1:]]
    assert [x[:3] for x in rows] == [["1", "a", "pages"], ["2", "b", "kmalloc"], ["3", "b", "kmalloc"]]
    assert rows[0][-1] == str(8 * 4096) and rows[1][3] == "kmalloc-128"   # 100 B -> kmalloc-128
    script.write_text("alloc_pages 0\nkmem_cache_alloc nosuch\nalloc_pages 0\n")
    r = sh("render", "--config", TINY, "--commands", script, "allocations")
    assert r.returncode == 1 and r.stdout == ""
    assert f"{script}:2: kmem_cache_alloc nosuch: error ENOENT" in r.stderr


def test_render_unknown_view():
    r = sh("render", "--config", TINY, "nosuchfile")
    assert r.returncode == 1 and "no such view" in r.stderr and "Traceback" not in r.stderr
