"""The FUSE layer, mounted for real over the stand-in core (a forked daemon, always unmounted)."""
import errno
import os
import stat
import subprocess

import pytest

from procsim.testing import fake_views, FakeKernel
from procsim.harness import wait_for


def test_layout_modes_and_sizes(fake_mounted):
    m = fake_mounted
    assert sorted(os.listdir(m)) == ["allocations", "blob", "control", "log", "meminfo", "slabinfo", "sys"]
    assert os.listdir(m / "sys/devices/system/node") == ["node0"]
    assert stat.S_ISDIR(os.stat(m / "sys/devices").st_mode)
    modes = {n: stat.S_IMODE(os.stat(m / n).st_mode) for n in ("meminfo", "slabinfo", "control", "log", "allocations")}
    assert modes == {"meminfo": 0o444, "slabinfo": 0o400, "control": 0o600, "log": 0o444, "allocations": 0o444}
    st = os.stat(m / "meminfo")
    assert st.st_size == 0 and st.st_uid == os.getuid()
    assert os.stat(m / "blob").st_size == 21                 # exact_size: 7 bytes x 3
    assert (m / "blob").read_bytes() == bytes(range(7)) * 3


def test_every_file_reads_with_cat(fake_mounted):
    for rel in ("meminfo", "slabinfo", "log", "allocations", "sys/devices/system/node/node0/meminfo"):
        out = subprocess.run(["cat", str(fake_mounted / rel)], capture_output=True, check=True).stdout
        assert rel in ("log",) or out, rel
    assert (fake_mounted / "meminfo").read_text().startswith("MemTotal:          16384 kB\n")


def test_views_are_read_only(fake_mounted):
    with pytest.raises(PermissionError):
        open(fake_mounted / "meminfo", "w")
    with pytest.raises(OSError):
        (fake_mounted / "newfile").write_text("x")


def test_control_write_errno_and_replies(fake_mounted):
    ctl = fake_mounted / "control"
    fd = os.open(ctl, os.O_RDWR)
    try:
        assert os.write(fd, b"alloc_pages 0 count=3\nkmalloc 64\n") == 33
        with pytest.raises(OSError) as e:
            os.write(fd, b"alloc_pages 0 count=5000\n")       # 4096 pages in the fake
        assert e.value.errno == errno.ENOMEM
        with pytest.raises(OSError) as e:
            os.write(fd, b"alloc_pages zero\n")
        assert e.value.errno == errno.EINVAL
        replies = os.read(fd, 65536).decode().splitlines()
        assert replies[:2] == ["ok 1-3", "ok 4"]
        assert replies[2].startswith("error ENOMEM: ") and replies[3].startswith("error EINVAL: ")
        assert len(replies) == 4
        assert os.read(fd, 65536) == b""                        # replies are read once
    finally:
        os.close(fd)
    free_kb = int((fake_mounted / "meminfo").read_text().split()[4])
    assert free_kb == (4096 - 3 - 1) * 4                       # 3 pages + one kmalloc-64 slab


def test_first_failure_stops_the_write(fake_mounted):
    """The lines before the failing one are taken (a short count), the writer's retry starts at
    the failing line and fails at once with its errno; the line after it never runs."""
    ctl = fake_mounted / "control"
    fd = os.open(ctl, os.O_WRONLY)
    data = b"alloc_pages 0\nfree_pages 99\nalloc_pages 0\n"
    try:
        assert os.write(fd, data) == len(b"alloc_pages 0\n")
        with pytest.raises(OSError) as e:
            os.write(fd, data[14:])
        assert e.value.errno == errno.ENOENT
    finally:
        os.close(fd)
    log = (fake_mounted / "log").read_text().splitlines()
    assert len(log) == 2 and log[1].startswith("2 free_pages 99 -> error ENOENT")
    assert (fake_mounted / "allocations").read_text().count("\n") == 2   # header + ID 1


def test_chunked_writes_buffer_partial_lines(fake_mounted):
    fd = os.open(fake_mounted / "control", os.O_RDWR)
    try:
        for chunk in (b"alloc_pa", b"ges 1 co", b"unt=2\nkmalloc 1", b"00"):    # last line has no newline
            os.write(fd, chunk)
        assert os.read(fd, 4096) == b"ok 1-2\n"
    finally:
        os.close(fd)                                            # the final close applies "kmalloc 100"
    assert wait_for(lambda: (fake_mounted / "log").read_text().splitlines()[-1] == "2 kmalloc 100 -> ok 3")


def test_shell_script_through_control(fake_mounted):
    """What a user types: echo/cat redirected into control, exit codes checked."""
    script = f"""
    set -u
    C={fake_mounted}/control
    echo 'alloc_pages 2 count=10 tag=frag' > $C || exit 10
    if echo 'alloc_pages 0 count=100000' > $C 2>/dev/null; then exit 11; fi
    if echo 'alloc_pages two' > $C 2>/dev/null; then exit 12; fi
    printf 'kmalloc 64 count=5 tag=k\\n# comment\\n\\nkfree tag=k\\n' | cat > $C || exit 13
    echo 'free_pages tag=frag' > $C || exit 14
    if echo 'free_pages tag=frag' > $C 2>/dev/null; then exit 15; fi
    exit 0
    """
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert r.returncode == 0, (r.returncode, r.stderr)
    log = (fake_mounted / "log").read_text()
    assert "alloc_pages 0 count=100000 -> error ENOMEM" in log
    assert "alloc_pages two -> error EINVAL" in log
    assert "kfree tag=k -> ok freed 5" in log
    assert "free_pages tag=frag -> ok freed 10" in log
    assert (fake_mounted / "allocations").read_text().count("\n") == 1     # header only


def test_hundred_reads_never_empty(fake_mounted):
    for _ in range(100):
        with open(fake_mounted / "slabinfo", "rb") as f:
            assert f.read().startswith(b"slabinfo - version: 2.1\n")


def test_open_handle_sees_new_state_after_seek_to_zero(fake_mounted):
    with open(fake_mounted / "meminfo", "rb", buffering=0) as f:
        first = f.read()
        (fake_mounted / "control").write_text("alloc_pages 3\n")
        f.seek(0)
        second = f.read()
    assert first != second
    assert int(second.split()[4]) == int(first.split()[4]) - 8 * 4


def test_snapshot_is_kept_for_later_offsets(fake_mounted):
    """Reading in small chunks gives one consistent snapshot even if the state changes mid-way."""
    fd = os.open(fake_mounted / "meminfo", os.O_RDONLY)
    try:
        head = os.read(fd, 30)
        (fake_mounted / "control").write_text("alloc_pages 5\n")
        rest = os.read(fd, 4096)
    finally:
        os.close(fd)
    assert (head + rest) == b"MemTotal:          16384 kB\nMemFree:           16384 kB\n"


def test_renders_are_cached_per_generation():
    counter = []
    from procsim.session import Session
    s = Session(None, boot=lambda: FakeKernel(), views=fake_views(counter))
    for _ in range(5):
        s.render("meminfo")
    assert len(counter) == 1
    s.execute(["alloc_pages 0"])
    s.render("meminfo")
    s.render("meminfo")
    assert len(counter) == 2


def test_overlong_line_is_einval_and_dropped(fake_mounted):
    from procsim.control import MAX_LINE
    fd = os.open(fake_mounted / "control", os.O_RDWR)
    try:
        with pytest.raises(OSError) as e:
            os.write(fd, b"x" * (MAX_LINE + 1))                # no newline: buffered until too long
        assert e.value.errno == errno.EINVAL
        assert os.write(fd, b"alloc_pages 0\n") == 14           # the buffer was dropped, not kept
        assert os.read(fd, 4096).decode().splitlines() == [f"error EINVAL: line longer than {MAX_LINE} bytes",
                                                            "ok 1"]
    finally:
        os.close(fd)
