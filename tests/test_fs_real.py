"""The mount over the real core (seed-vm): every file reads, tools see the simulated state."""
import os
import re
import subprocess

import pytest

from procsim.testing import CONFIGS, force_unmount, mounts, procsim_cmd
from procsim.machine import load
from procsim.mm.layout import build

NODE0 = "sys/devices/system/node/node0/meminfo"


def memfree_kb(path):
    return int(re.search(r"MemFree:\s+(\d+) kB", path.read_text()).group(1))


def exec_(m, *cmd):
    return subprocess.run(procsim_cmd("exec", m, "--", *cmd), capture_output=True, text=True)


def test_cat_every_file(mounted):
    m = mounted()
    files = [os.path.join(d, f) for d, _, fs in os.walk(m) for f in fs]
    assert len(files) > 20
    for f in files:
        if f.endswith(("/trace_pipe", "/trace_pipe_raw")):    # block while empty (tracing is off): test_trace
            fd = os.open(f, os.O_RDONLY | os.O_NONBLOCK)
            try:
                with pytest.raises(BlockingIOError):
                    os.read(fd, 4096)
            finally:
                os.close(fd)
            continue
        if f.endswith("/dev/kmsg"):                              # blocks at the end: test_dmesg_follow
            fd = os.open(f, os.O_RDONLY | os.O_NONBLOCK)
            try:
                while os.read(fd, 8192):                         # (empty log: EOF; else EAGAIN at the end)
                    pass
            except BlockingIOError:
                pass
            finally:
                os.close(fd)
            continue
        r = subprocess.run(["cat", f], capture_output=True)
        if not os.stat(f).st_mode & 0o444:                        # vm.drop_caches: write only
            assert b"Permission denied" in r.stderr, f
            continue
        assert r.returncode == 0, (f, r.stderr)
        # nothing written, replied or logged yet; SLUB's ctor (no constructor), shrink and validate read
        # empty, as vm.stat_refresh does; a memory block's nodeN stands for the kernel's symlink; no
        # trace_printk() or tracepoint_string() in the simulated kernel, so printk_formats lists nothing
        assert r.stdout or f.endswith(("/log", "/control", "/kmsg", "/ctor", "/shrink", "/validate", "/stat_refresh",
                                       "/printk_formats")) \
            or re.search(r"/memory\d+/node\d+$", f), f


def test_allocations_move_memfree_and_an_open_handle_sees_it(mounted):
    m = mounted()
    with open(m / NODE0, "rb", buffering=0) as f:
        before = int(re.search(rb"MemFree:\s+(\d+) kB", f.read()).group(1))
        (m / "control").write_text("alloc_pages 10 count=3 tag=big\n")
        f.seek(0)
        after = int(re.search(rb"MemFree:\s+(\d+) kB", f.read()).group(1))
    assert before - after == 3 * 1024 * 4                    # three 4 MiB blocks, in kB
    (m / "control").write_text("free_pages tag=big\n")
    assert memfree_kb(m / NODE0) == before


def test_failed_count_leaves_the_state_as_it_was(mounted):
    m = mounted()
    before = (m / NODE0).read_text()
    r = subprocess.run(["bash", "-c", f"echo 'alloc_pages 10 count=1000' > {m}/control"],  # 4 GiB > 2 GiB
                       capture_output=True, text=True)
    assert r.returncode != 0 and "Cannot allocate memory" in r.stderr
    # nothing stays allocated; the attempt woke kswapd, which may only have freed page cache
    mem = lambda text, key: int(re.search(rf"{key}:\s+(\d+) kB", text).group(1))
    after = (m / NODE0).read_text()
    assert mem(after, "MemFree") >= mem(before, "MemFree")
    assert mem(after, "AnonPages") == mem(before, "AnonPages") and mem(after, "FilePages") <= mem(before, "FilePages")
    assert (m / "allocations").read_text().count("\n") == 1          # header only


def test_script_with_exit_codes(mounted):
    m = mounted()
    script = f"""
    C={m}/control
    echo 'kmem_cache_create demo 128 flags=SLAB_HWCACHE_ALIGN' > $C || exit 10
    echo 'kmem_cache_alloc demo count=100 tag=d' > $C || exit 11
    if echo 'kmem_cache_alloc demo count=x' > $C 2>/dev/null; then exit 12; fi
    if echo 'kmem_cache_destroy demo' > $C 2>/dev/null; then exit 13; fi        # EBUSY
    echo 'kmem_cache_free demo tag=d' > $C || exit 14
    echo 'kmem_cache_destroy demo' > $C || exit 15
    if echo 'kmem_cache_alloc demo' > $C 2>/dev/null; then exit 16; fi         # ENOENT
    exit 0
    """
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert r.returncode == 0, (r.returncode, (m / "log").read_text())
    log = (m / "log").read_text()
    assert "kmem_cache_destroy demo -> error EBUSY" in log
    assert "kmem_cache_alloc demo -> error ENOENT" in log


def test_hundred_reads_never_empty(mounted):
    m = mounted()
    names = [n for n in ("meminfo", "slabinfo", "zoneinfo", "buddyinfo", "cpuinfo") if (m / n).exists()]
    for _ in range(100):
        for n in names:
            with open(m / n, "rb") as f:
                assert f.read(), n


def test_free_through_exec_shows_memtotal(mounted):
    m = mounted()
    r = exec_(m, "free", "-k")
    assert r.returncode == 0, r.stderr
    total = int(next(l for l in r.stdout.splitlines() if l.startswith("Mem:")).split()[1])
    managed = sum(z.managed for z in build(load(CONFIGS / "seed-vm.yaml")).zones)   # totalram_pages
    assert total == managed * 4


def test_slabtop_through_exec_follows_control(mounted):
    m = mounted()
    (m / "control").write_text("kmem_cache_create procsim_demo 256\n")

    def row():
        r = exec_(m, "slabtop", "-o", "-s", "c")
        assert r.returncode == 0, r.stderr
        hit = [l.split() for l in r.stdout.splitlines() if l.split()[-1:] == ["procsim_demo"]]
        assert hit, r.stdout
        return hit[0]

    objs, active, *_ = row()
    assert (objs, active) == ("0", "0")
    (m / "control").write_text("kmem_cache_alloc procsim_demo count=1000\n")
    objs, active, use, size, slabs, perslab, *_ = row()
    # 256 B objects, 2 CPUs: min_objects 4*(fls(2)+1) = 12 fit in order 0, 16 per slab;
    # 1000 objects need 63 slabs; SLUB counts the cpu slab's free objects as active.
    assert (perslab, slabs, objs) == ("16", "63", "1008")
    assert active == "1008"


def test_daemon_mode_mounts_a_shipped_machine_by_name_from_any_directory(mp, tmp_path):
    """`procsim mount --config seed-vm M` (daemon mode) from a directory with no seed-vm in it:
    the daemon (started in /) gets the shipped machine, not CWD/seed-vm (issue 29 item 5).
    `procsim umount` then unmounts both sessions (the threaded one over sys/kernel/tracing)."""
    import re
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = subprocess.run(procsim_cmd("mount", "--config", "seed-vm", mp), cwd=elsewhere,
                       capture_output=True, text=True, timeout=180)
    try:
        assert r.returncode == 0, r.stderr
        pid = int(re.search(r"daemon pid (\d+)", r.stdout).group(1))
        total = int(re.search(r"MemTotal: +(\d+) kB", (mp / "meminfo").read_text()).group(1))
        assert 2 << 20 > total > 1 << 20                    # seed-vm: 2 GiB of RAM (not the default 128 GiB)
        assert mounts(mp / "sys/kernel/tracing")
        r = subprocess.run(procsim_cmd("umount", mp), capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert not mounts(mp) and not mounts(mp / "sys/kernel/tracing")
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
    finally:
        force_unmount(mp)


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT", "fusermount -uz"])
def test_blocked_trace_pipe_readers_get_eof_on_sigterm_and_sigint(sig):
    """Three readers blocked on an empty trace_pipe: the daemon stopped by SIGTERM or SIGINT,
    or its mount lazily detached (`fusermount -uz M`: the daemon learns it when M's last user
    goes, no reader polls), ends each read with EOF (b""), not ECONNABORTED or ENOTCONN
    (issue 30 3b), leaves no mount and exits 0."""
    import signal
    import threading
    from procsim.harness import mounted
    results = []

    def reader(path):
        fd = os.open(path, os.O_RDONLY)
        try:
            results.append(os.read(fd, 4096))
        except OSError as e:
            results.append(e)
        finally:
            try:
                os.close(fd)
            except OSError:
                pass
    with mounted(CONFIGS / "tiny.yaml") as m:
        threads = [threading.Thread(target=reader, args=(m.path / "sys/kernel/tracing/trace_pipe",), daemon=True)
                   for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(0.5)
        assert all(t.is_alive() for t in threads) and not results     # blocked
        if sig.startswith("fusermount"):
            subprocess.run(["fusermount", "-uz", str(m.path)], check=True, timeout=30)
        else:
            m.proc.send_signal(getattr(signal, sig))
        assert m.proc.wait(30) == 0
        for t in threads:
            t.join(10)
        assert results == [b"", b"", b""]
        assert not mounts(m.path) and not mounts(m.path / "sys/kernel/tracing")
        assert "Traceback" not in m.stderr_text()


def test_no_read_is_stale_after_a_control_write(mounted):
    """Reads are served from renders cached per state and from per-path memos of the tree
    (procsim/fs.py ProcFS._plain, Session.snapshot's lock-free hit): after each control write
    a new open, and an open handle read again at offset 0, give exactly what a fresh session
    given the same commands renders (an in-process Session is the oracle), and a file the
    write creates can be stat'ed and read at once even after a failed look-up of it."""
    from procsim.session import Session
    m = mounted("tiny")
    oracle = Session(load(CONFIGS / "tiny.yaml"))
    names = ("zoneinfo", "meminfo", "vmstat", "slabinfo", NODE0)
    slab = "sys/kernel/slab/perf_test_cache/object_size"
    held = {n: open(m / n, "rb", buffering=0) for n in names}
    try:
        assert not (m / slab).exists()                  # remembered as absent by the daemon
        for cmd in ("alloc_pages 0 count=3000 tag=a", "kmalloc 256 count=500", "free_pages tag=a",
                    "kmem_cache_create perf_test_cache 200", "drain_pages"):
            before = {n: (m / n).read_bytes() for n in names}
            (m / "control").write_text(cmd + "\n")
            assert not oracle.run_lines([cmd])[0][-1].errno
            for n in names:
                want = oracle.snapshot(n)[1]
                assert (m / n).read_bytes() == want, (cmd, n)
                f = held[n]
                f.seek(0)
                assert f.read() == want, (cmd, n)
            assert any(before[n] != oracle.snapshot(n)[1] for n in names), cmd
        assert (m / slab).read_text() == "200\n"
    finally:
        for f in held.values():
            f.close()
        oracle.close()
