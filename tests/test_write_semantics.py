"""Every control line runs exactly once, whatever the writer (issue 14, items 1, 2, 12, 14).

The kernel hands one write(2) to the daemon as FUSE requests of at most 128 KiB and, when a
request takes fewer bytes than it was given, returns the short count; dd, stdio and Python
then write the rest again.  These tests write scripts longer than a request, with a failing
line at a random place, through real writers with random buffer sizes, and count in the
log and the allocations what ran.
"""
from __future__ import annotations

import errno
import os
import random
import re
import subprocess
import sys

import pytest

from procsim.testing import fake_session
from procsim.harness import wait_for

ERRORS = {"bogus": errno.EINVAL, "free_pages 999999": errno.ENOENT}
STRERROR = {errno.EINVAL: "Invalid argument", errno.ENOENT: "No such file or directory"}


def big_fake():
    return fake_session(nr_pages=1 << 20)


@pytest.fixture
def ctl(mount_session):
    return mount_session(big_fake) / "control"


def script(rng, n, fail_at):
    """n lines, each allocating one page tagged l<i> and padded with a comment of random
    length (so 128 KiB boundaries fall anywhere, mid-line too); line fail_at fails instead."""
    lines = []
    for i in range(n):
        pad = "#" + "x" * rng.randrange(0, 1000)
        if i == fail_at:
            lines.append(f"{rng.choice(sorted(ERRORS))}  {pad}")
        else:
            lines.append(f"alloc_pages 0 tag=l{i}  {pad}")
    return "".join(l + "\n" for l in lines).encode()


def log_after(mp, serial):
    """(command, reply) of every log entry with a serial above `serial`."""
    out = []
    for entry in (mp / "log").read_text().split("\n"):
        m = re.fullmatch(r"(\d+) (.*) -> (.*)", entry)
        if m and int(m.group(1)) > serial:
            out.append((m.group(2), m.group(3)))
    return out


def last_serial(mp):
    entries = (mp / "log").read_text().split("\n")
    entries = [e for e in entries if e]
    return int(entries[-1].split()[0]) if entries else 0


def tags(mp):
    rows = (mp / "allocations").read_text().split("\n")[1:]
    return [r.split()[1] for r in rows if r and not r.startswith("#")]


# --- the writers: each returns the errno the writer saw (0 if none) ----------------------------
def with_dd(ctl, data, rng, tmp_path):
    src = tmp_path / "script"
    src.write_bytes(data)
    bs = rng.choice([1 << 20, 1 << 20, 200000, 131073, 77777])
    r = subprocess.run(["dd", f"if={src}", f"of={ctl}", f"bs={bs}"], capture_output=True, text=True, timeout=60)
    if r.returncode == 0:
        return 0
    return next(code for code, text in STRERROR.items() if text in r.stderr)


def with_python(ctl, data, rng, tmp_path):
    try:
        with open(ctl, "wb", buffering=rng.choice([8192, 65536, 1 << 20])) as f:
            pos = 0
            while pos < len(data):                    # several write() calls of random sizes
                n = rng.randrange(100000, 700000)
                f.write(data[pos:pos + n])
                pos += n
        return 0
    except OSError as e:
        return e.errno


def with_stdio(ctl, data, rng, tmp_path):
    """sed writes through stdio (fwrite, then fflush at exit), which retries short writes."""
    src = tmp_path / "script"
    src.write_bytes(data)
    with open(ctl, "wb") as out:
        r = subprocess.run(["sed", "", str(src)], stdout=out, stderr=subprocess.PIPE, text=True, timeout=60)
    if r.returncode == 0:
        return 0
    return next(code for code, text in STRERROR.items() if text in r.stderr)


def with_os_write(ctl, data, rng, tmp_path):
    """A raw os.write loop that resends what a short write left, in random chunk sizes."""
    fd = os.open(ctl, os.O_WRONLY)
    try:
        pos = 0
        while pos < len(data):
            n = rng.choice([1, 7, 4096, 131072, 131073, 400000, len(data)])
            try:
                pos += os.write(fd, data[pos:pos + n])
            except OSError as e:
                return e.errno
        return 0
    finally:
        os.close(fd)


WRITERS = [with_dd, with_python, with_stdio, with_os_write]


@pytest.mark.parametrize("writer", WRITERS, ids=lambda w: w.__name__)
def test_fuzz_every_line_exactly_once(ctl, tmp_path, writer):
    """Random scripts over several 128 KiB requests, a failing line at a random place (or
    none): the lines before it ran once each, it ran once and its errno reached the writer,
    nothing after it ran, and no fragment of a line ever ran."""
    mp = ctl.parent
    rng = random.Random(f"{writer.__name__}-14")
    for trial in range(5):
        n = rng.randrange(400, 900)
        # the first trial fails nowhere; the others mostly past the first request
        fail_at = None if trial == 0 else rng.randrange(n // 3 if trial % 4 else 0, n)
        data = script(rng, n, fail_at)
        assert len(data) > 131072
        serial = last_serial(mp)
        got = writer(ctl, data, rng, tmp_path)
        stop = n if fail_at is None else fail_at
        assert tags(mp) == [f"l{i}" for i in range(stop)], (trial, fail_at)
        if fail_at is None:
            assert got == 0
        else:
            bad = data.split(b"\n")[fail_at].decode().split("#")[0].strip()
            assert got == ERRORS[bad], (trial, fail_at, got)
        ran = log_after(mp, serial)
        want = [f"alloc_pages 0 tag=l{i}" for i in range(stop)] + ([bad] if fail_at is not None else [])
        assert [c for c, _ in ran] == want                       # once each, in order, no fragment
        assert all(r.startswith("ok") for _, r in ran[:stop])
        (ctl).write_text("reset\n")


def test_failing_line_across_the_request_boundary(ctl):
    """One write(2) whose failing line straddles the 128 KiB request boundary: the write stops
    inside or at the start of that line (a request already taken cannot be handed back), the
    retry of the rest fails at once with its errno, nothing runs twice, nothing after it runs."""
    mp = ctl.parent
    head = (b"#" * 99 + b"\n") * 1310 + b"alloc_pages 0 tag=a\n"       # 131020 bytes
    bad = b"free_pages 999999  #" + b"x" * 60 + b"\n"                 # bytes 131020..131101
    data = head + bad + b"alloc_pages 0 tag=b\n"
    fd = os.open(ctl, os.O_WRONLY)
    try:
        n = os.write(fd, data)
        assert len(head) <= n < len(head) + len(bad)
        with pytest.raises(OSError) as e:                        # the retry fails at once
            os.write(fd, data[n:])
        assert e.value.errno == errno.ENOENT
        assert os.write(fd, b"alloc_pages 0 tag=c\n") == 20     # a new command runs normally
    finally:
        os.close(fd)
    assert tags(mp) == ["a", "c"]
    assert [c for c, _ in log_after(mp, 0)] == ["alloc_pages 0 tag=a", "free_pages 999999", "alloc_pages 0 tag=c"]


def test_lines_per_request_are_bounded_by_a_short_count(ctl):
    """At most MAX_COMMANDS lines run per FUSE request; the rest comes back as a short count
    (the old code refused the whole write with EINVAL) and a writer that resends runs it."""
    from procsim.control import MAX_COMMANDS
    mp = ctl.parent
    data = b"#\n" * (MAX_COMMANDS + 5000) + b"alloc_pages 0 tag=z\n"
    assert len(data) < 131072                                   # one request
    fd = os.open(ctl, os.O_WRONLY)
    try:
        n = os.write(fd, data)
        assert n == 2 * MAX_COMMANDS
        assert tags(mp) == []
        assert os.write(fd, data[n:]) == len(data) - n
    finally:
        os.close(fd)
    assert tags(mp) == ["z"]


def test_twenty_thousand_lines_in_one_write_apply_once(ctl, tmp_path):
    mp = ctl.parent
    src = tmp_path / "s"
    src.write_bytes(b"".join(b"alloc_pages 0 tag=t%d\n" % i for i in range(20000)))
    r = subprocess.run(["dd", f"if={src}", f"of={ctl}", "bs=4M"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert tags(mp) == [f"t{i}" for i in range(20000)]


# --- partial lines and copies of the descriptor ----------------------------------------------------
def test_fork_and_exec_do_not_complete_a_partial_line(ctl):
    """A forked child's exit and an exec'd shell close copies of the descriptor (FUSE flush):
    the pending half line must wait for the rest (issue 14 item 2's reproduction)."""
    mp = ctl.parent
    fd = os.open(ctl, os.O_WRONLY)
    try:
        os.write(fd, b"kmalloc 6")
        os.system("true")                                      # fork + exec + exit: flushes a copy
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        subprocess.run([sys.executable, "-c", "pass"], pass_fds=(fd,))
        os.write(fd, b"4 tag=x\n")
    finally:
        os.close(fd)
    assert [c for c, _ in log_after(mp, 0)] == ["kmalloc 64 tag=x"]
    rows = (mp / "allocations").read_text().split("\n")[1:]
    assert [r.split()[1:4] for r in rows if r] == [["x", "kmalloc", "kmalloc-64"]]


def test_a_child_keeps_the_line_pending_until_the_final_close(ctl):
    """The parent closes first; the line runs when the last copy (the child's) goes."""
    mp = ctl.parent
    fd = os.open(ctl, os.O_WRONLY)
    os.write(fd, b"alloc_pages 0 tag=late")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)                                          # hold fd until told
        os._exit(0)
    os.close(r)
    os.close(fd)
    # The child's copy is still open, so no RELEASE was sent; had one been, the kernel queued
    # it before this write's requests, and the daemon answers one request at a time in order:
    # the marker's own line runs at write(2), and the pending line must not have run before it.
    with open(ctl, "w") as f:
        f.write("alloc_pages 0 tag=marker\n")
    assert tags(mp) == ["marker"]
    os.close(w)
    os.waitpid(pid, 0)
    assert wait_for(lambda: tags(mp) == ["marker", "late"])


def test_failing_last_line_without_newline_is_logged_as_at_close(ctl):
    """printf bogus > control: the shell sees success (the error comes at release, after
    close(2) returned); the log says which line failed and that it ran at close."""
    mp = ctl.parent
    r = subprocess.run(["sh", "-c", f"printf 'bogus 1' > {ctl}"], capture_output=True, timeout=30)
    assert r.returncode == 0
    assert wait_for(lambda: log_after(mp, 0))
    [(cmd, reply)] = log_after(mp, 0)
    assert cmd == "bogus 1" and reply.startswith("error EINVAL") and "ran at close" in reply
