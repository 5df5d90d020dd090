"""The --state journal never lies (issue 14, items 3, 4, 6, 8): written and fsynced before a
command takes effect, a command whose journal write fails does not take effect, regular
files only, one daemon per journal, tied to the machine it was written for."""
from __future__ import annotations

import errno
import re
import os
import subprocess
import threading
from contextlib import contextmanager

import pytest

from procsim.testing import CONFIGS, FakeKernel, fake_views, mounts, procsim_cmd

TINY = CONFIGS / "tiny.yaml"


def machine(name="tiny"):
    from procsim import machine as m
    return m.load(CONFIGS / f"{name}.yaml")


def session(state, m=None):
    """A Session on the stand-in core, journaling to state, for the machine m (tiny)."""
    from procsim.session import Session
    return Session(m or machine(), boot=lambda: FakeKernel(nr_pages=1 << 16), views=fake_views(), state=state)


def reopen(state):
    """session(state) once the daemon that held it has exited (and dropped its lock)."""
    from procsim.harness import wait_for
    from procsim.session import StateError
    got = []

    def attempt():
        try:
            got.append(session(state))
            return True
        except StateError as e:
            assert "in use" in str(e)
            return False
    assert wait_for(attempt)
    return got[0]


def listing(s):
    return s.render("allocations")


@contextmanager
def small_tmpfs(path, size="16k"):
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "procsim-test", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(fs):
    """Fill fs to the last byte: a filler file written until ENOSPC."""
    with open(fs / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"x" * 512)
        except OSError as e:
            assert e.errno == errno.ENOSPC


def test_full_filesystem_refuses_the_command_and_replays_what_was_acknowledged(tmp_path):
    with small_tmpfs(tmp_path / "fs") as fs:
        state = fs / "journal"
        s = session(state)
        try:
            assert s.execute(["alloc_pages 0 tag=a"])[0].text == "ok 1"
            fill(fs)
            for i in range(1000):                                  # until the journal's last page is full
                acknowledged, size = listing(s), state.stat().st_size
                [r] = s.execute([f"alloc_pages 0 tag=p{i}  # padding: comments are not journaled"])
                if r.errno:
                    break
            assert r.errno == errno.ENOSPC and "not applied" in r.text
            assert listing(s) == acknowledged                    # no effect
            for line in (f"alloc_pages 0 tag=b{i}", f"kmalloc 64 count=2 tag=c{i}"):   # no shorter than it
                [r] = s.execute([line])
                assert r.errno == errno.ENOSPC and "not applied" in r.text
                assert listing(s) == acknowledged
            assert state.stat().st_size == size                 # no torn line left behind
            assert state.read_bytes().endswith(f"tag=p{i - 1}\n".encode())   # the torn line was cut off
            (fs / "filler").unlink()                             # space returns
            assert s.execute(["alloc_pages 0 tag=d"])[0].text == f"ok {i + 2}"
            acknowledged = listing(s)
        finally:
            s.close()
        again = session(state)
        try:
            assert listing(again) == acknowledged               # a and d, never b or c
        finally:
            again.close()


def test_enospc_reaches_the_writer_through_the_mount(tmp_path, mount_session):
    with small_tmpfs(tmp_path / "fs") as fs:
        state = fs / "journal"
        mp = mount_session(lambda: session(state))
        fd = os.open(mp / "control", os.O_RDWR)
        try:
            assert os.write(fd, b"alloc_pages 0 tag=a\n") == 20
            fill(fs)
            os.read(fd, 4096)
            with pytest.raises(OSError) as e:
                for i in range(1000):                          # until the journal's last page is full
                    os.write(fd, f"alloc_pages 0 tag=b{i:03}\n".encode())
                    os.read(fd, 4096)
            assert e.value.errno == errno.ENOSPC
            assert os.read(fd, 4096).decode().startswith("error ENOSPC: --state")
        finally:
            os.close(fd)
        rows = (mp / "allocations").read_text().split("\n")[1:]
        assert [r.split()[1] for r in rows if r] == ["a"] + [f"b{j:03}" for j in range(i)]


def test_failing_lines_and_the_lines_after_them_leave_the_journal(tmp_path):
    """Intent first: the batch is journaled before it runs, then cut back at the failing line
    (kept only if it moved the state); what follows it never ran and is not replayed."""
    state = tmp_path / "journal"
    s = session(state)
    try:
        got = s.execute(["alloc_pages 0 tag=a", "free_pages 99", "alloc_pages 0 tag=never"])
        assert [r.errno for r in got] == [0, errno.ENOENT]
        body = state.read_text().split("\n", 1)[1]
        assert body == "alloc_pages 0 tag=a\n"
        got = s.execute(["alloc_pages 10 count=1000 tag=big", "alloc_pages 0 tag=never"])
        assert [r.errno for r in got] == [errno.ENOMEM]             # undone half way: it moved the state
        body = state.read_text().split("\n", 1)[1]
        assert body == "alloc_pages 0 tag=a\nalloc_pages 10 count=1000 tag=big\n"
    finally:
        s.close()


@pytest.mark.parametrize("target, message", [
    ("/dev/null", "not a regular file (a character device)"),
    ("/dev/full", "not a regular file (a character device)"),
    ("FIFO", "not a regular file (a FIFO)"),
    ("DIR", "not a regular file (a directory)"),
    ("MISSING/journal", "No such file or directory"),
])
def test_state_must_be_a_regular_file(tmp_path, mp, target, message):
    if target == "FIFO":
        target = tmp_path / "fifo"
        os.mkfifo(target)
    elif target == "DIR":
        target = tmp_path
    elif target.startswith("MISSING"):
        target = tmp_path / target
    r = subprocess.run(procsim_cmd("mount", "--foreground", "--config", TINY, "--state", target, mp),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert f"--state: {target}: {message}" in r.stderr and "Traceback" not in r.stderr
    assert not mounts(mp)


def test_immutable_journal_is_a_clear_error(tmp_path):
    from procsim.session import StateError
    with small_tmpfs(tmp_path / "fs") as fs:
        state = fs / "journal"
        state.write_bytes(b"")
        subprocess.run(["chattr", "+i", str(state)], check=True)
        try:
            with pytest.raises(StateError) as e:
                session(state)
            assert str(e.value) == f"{state}: Operation not permitted (immutable or append-only?)"
        finally:
            subprocess.run(["chattr", "-i", str(state)], check=True)


def test_journal_read_is_bounded(tmp_path):
    """A line longer than any command (e.g. a file of zeros) is refused at its line, read in
    bounded pieces, not slurped."""
    from procsim.session import MAX_JOURNAL_LINE, StateError, journal_header
    state = tmp_path / "journal"
    with open(state, "wb") as f:
        f.write(journal_header(machine()).encode() + b"alloc_pages 0\n")
        f.truncate(64 << 20)                                        # 64 MiB of NULs, no newline
    with pytest.raises(StateError) as e:
        session(state)
    assert str(e.value) == f"{state}:3: line longer than {MAX_JOURNAL_LINE} bytes (not a procsim journal)"


def test_a_second_daemon_on_one_journal_refuses(tmp_path):
    from procsim.session import StateError
    state = tmp_path / "journal"
    first = session(state)
    try:
        with pytest.raises(StateError) as e:
            session(state)
        assert str(e.value) == f"{state}: in use by another procsim daemon (the journal is locked)"
    finally:
        first.close()
    session(state).close()                                          # free again once the first is gone


def test_a_second_daemon_through_the_cli(tmp_path):
    state = tmp_path / "journal"
    first = session(state)
    try:
        mp = tmp_path / "m"
        mp.mkdir()
        r = subprocess.run(procsim_cmd("mount", "--foreground", "--config", TINY, "--state", state, mp),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and "in use by another procsim daemon" in r.stderr
        assert not mounts(mp)
    finally:
        first.close()


def test_journal_for_another_machine_is_refused_with_file_line(tmp_path, mp):
    state = tmp_path / "journal"
    s = session(state, machine("seed-vm"))
    s.execute(["alloc_pages 0"])
    s.close()
    r = subprocess.run(procsim_cmd("mount", "--foreground", "--config", TINY, "--state", state, mp),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and not mounts(mp)
    assert f"{state}:1: written for machine seed-vm" in r.stderr and "not for tiny" in r.stderr


def test_header_follows_the_description_not_its_path(tmp_path):
    """The same YAML under another name is the same machine; one changed tunable is not."""
    from procsim.machine import load
    from procsim.session import machine_digest
    text = TINY.read_text()
    (tmp_path / "copy.yaml").write_text(text)
    assert machine_digest(load(tmp_path / "copy.yaml")) == machine_digest(machine())
    changed = text.replace("name: tiny", "name: tiny\ntunables: {watermark_scale_factor: 20}", 1)
    assert changed != text
    (tmp_path / "changed.yaml").write_text(changed)
    assert machine_digest(load(tmp_path / "changed.yaml")) != machine_digest(machine())


def test_journal_without_header_is_refused(tmp_path):
    from procsim.session import StateError
    state = tmp_path / "journal"
    state.write_text("alloc_pages 0\n")
    with pytest.raises(StateError) as e:
        session(state)
    assert str(e.value).startswith(f"{state}:1: not a procsim journal")


def test_concurrent_handles_journal_in_apply_order(tmp_path, mount_session):
    """Writers on several descriptors: the journal replays to the very same listing."""
    state = tmp_path / "journal"
    mp = mount_session(lambda: session(state))

    def writer(n):
        fd = os.open(mp / "control", os.O_WRONLY)
        try:
            for i in range(150):
                os.write(fd, f"alloc_pages {i % 2} tag=w{n}\n".encode())
                if i % 3 == 2:
                    os.write(fd, f"free_pages tag=w{n}\n".encode())
        finally:
            os.close(fd)
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    before = (mp / "allocations").read_bytes()
    subprocess.run(["fusermount", "-u", str(mp)], check=True)
    again = reopen(state)
    try:
        assert listing(again) == before
    finally:
        again.close()


def test_dd_with_a_failing_line_journals_exactly_what_ran(tmp_path):
    """The real core with --state: dd writes 1 MiB blocks of a script failing in its third
    128 KiB request; the journal holds the lines that ran (once each), and a remount from it
    gives the same allocations, byte for byte."""
    from procsim.harness import mounted
    state = tmp_path / "journal"
    lines = [f"kmalloc 64 tag=k{i}  #" + "x" * 400 for i in range(700)]
    lines[600] = "kfree 999999"
    src = tmp_path / "script"
    src.write_text("".join(l + "\n" for l in lines))
    with mounted(TINY, state_file=state) as m:
        r = subprocess.run(["dd", f"if={src}", f"of={m.path}/control", "bs=1M"], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode != 0 and "No such file or directory" in r.stderr
        before = (m.path / "allocations").read_bytes()
    body = state.read_text().split("\n")[1:-1]
    # a batch's first line carries the simulated time it ran at (@NS: the wall clock's mount)
    assert [re.sub(r"^@\d+ ", "", line) for line in body] == [f"kmalloc 64 tag=k{i}" for i in range(600)]
    with mounted(TINY, state_file=state) as m:
        assert (m.path / "allocations").read_bytes() == before
