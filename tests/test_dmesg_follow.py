"""`dmesg -w` follows the simulated kernel log (issue 26, "time that flows").

A mount serves the log twice: M/kmsg from the main FUSE session (a read at the end is EOF,
never a wait) and M/dev/kmsg from a threaded session (fs.SUBMOUNTS), where a read at the end
waits for the next record as the kernel's devkmsg_read does, O_NONBLOCK gets EAGAIN, and the
mount going away ends the wait at EOF.  `procsim exec` binds M/dev/kmsg over /dev/kmsg, so the
real, unmodified `dmesg -w` prints records as they are logged."""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import threading
import time

import pytest

from procsim.mm import printk
from procsim.session import Session
from procsim.testing import CONFIGS, procsim_cmd


def _until(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout:g} s: {what}")


class KmsgReader(threading.Thread):
    """Reads a kmsg file with plain blocking read(2) calls, one record per read, until EOF
    or `want` records."""

    def __init__(self, path, want=1 << 30):
        super().__init__(daemon=True)
        self.fd = os.open(path, os.O_RDONLY)
        self.want, self.records, self.error, self.eof = want, [], None, False

    def run(self):
        try:
            while len(self.records) < self.want:
                chunk = os.read(self.fd, 8192)
                if not chunk:
                    self.eof = True
                    return
                self.records.append(chunk.decode())
        except OSError as e:
            self.error = e
        finally:
            try:
                os.close(self.fd)
            except OSError:                         # the daemon is gone (the end-of-mount test)
                pass


def test_dmesg_follow_through_exec_prints_a_new_record(mounted, tmp_path):
    """`procsim exec M -- dmesg -w` prints the log there is, keeps running, and prints a record
    logged afterwards (a vm.drop_caches write: "drop_caches: N") within a few seconds."""
    m = mounted("tiny")
    (m / "sysctl/vm/drop_caches").write_text("1\n")
    out_path, err_path = tmp_path / "dmesg.out", tmp_path / "dmesg.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        dmesg = subprocess.Popen(procsim_cmd("exec", m, "--", "dmesg", "-w"), stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=err, start_new_session=True)
    try:
        _until(lambda: "drop_caches: 1" in out_path.read_text(), 60, "dmesg -w printed the existing log")
        time.sleep(0.5)
        assert dmesg.poll() is None, err_path.read_text()          # still following, not at EOF
        t0 = time.monotonic()
        (m / "sysctl/vm/drop_caches").write_text("2\n")
        _until(lambda: "drop_caches: 2" in out_path.read_text(), 5, "dmesg -w printed the new record")
        assert time.monotonic() - t0 < 5
        lines = out_path.read_text().splitlines()
        assert [x.split("] ", 1)[1] for x in lines] == ["procsim (1): drop_caches: 1", "procsim (1): drop_caches: 2"]
        assert dmesg.poll() is None
    finally:
        if dmesg.poll() is None:
            os.killpg(dmesg.pid, signal.SIGKILL)
        dmesg.wait(30)


def test_dev_kmsg_blocks_wakes_and_answers_eagain_at_the_end(mounted):
    """M/dev/kmsg: a blocking reader at the end waits (still reading, nothing returned) and gets
    the record as soon as it is logged; O_NONBLOCK at the end is EAGAIN.  M/kmsg, the main
    session's, still answers EOF at the end, blocking or not."""
    m = mounted("tiny")
    fd = os.open(m / "dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert os.read(fd, 8192) == b""                            # nothing logged yet: see fs._read_stream
        (m / "sysctl/vm/drop_caches").write_text("1\n")
        assert os.read(fd, 8192).endswith(b";procsim (1): drop_caches: 1\n")
        with pytest.raises(BlockingIOError):                       # the end of the log: EAGAIN
            os.read(fd, 8192)
    finally:
        os.close(fd)
    reader = KmsgReader(m / "dev/kmsg", want=2)
    reader.start()
    _until(lambda: reader.records, 10, "the reader got the record there is")
    reader.join(1.0)
    assert reader.is_alive() and len(reader.records) == 1          # blocked at the end, not at EOF
    assert (m / "zoneinfo").read_bytes()                          # other files answer meanwhile
    (m / "sysctl/vm/drop_caches").write_text("2\n")
    reader.join(5)
    assert not reader.is_alive() and reader.error is None
    assert reader.records[1].startswith("6,1,") and reader.records[1].endswith("drop_caches: 2\n")
    for flags in (os.O_RDONLY, os.O_RDONLY | os.O_NONBLOCK):      # M/kmsg: EOF at the end, as before
        fd = os.open(m / "kmsg", flags)
        try:
            assert os.read(fd, 8192).startswith(b"6,0,") and os.read(fd, 8192).startswith(b"6,1,")
            assert os.read(fd, 8192) == b""
        finally:
            os.close(fd)


@pytest.mark.parametrize("how", ["unmount", "sigterm"])
def test_a_reader_blocked_on_dev_kmsg_gets_eof_when_the_mount_goes(how):
    """With a reader blocked at the end of M/dev/kmsg, unmounting (the harness: fusermount -u,
    lazily when busy) or SIGTERM ends its read at EOF and the daemon exits by itself."""
    from procsim.testing import reader_ended_by_the_mount

    def start(mp):
        reader = KmsgReader(mp / "dev/kmsg")
        reader.start()
        return reader
    reader = reader_ended_by_the_mount(start, how)
    assert reader.eof or (reader.error is not None and reader.error.errno in (errno.ENOTCONN, errno.ENODEV)), \
        reader.error
    assert reader.records == []


def test_a_wall_clock_step_that_logs_wakes_kmsg_readers():
    """A live mount's clock thread (procsim/wallclock.py) runs kernel work between commands;
    when that work logs a record, a reader waiting on dev/kmsg is woken (Session._wake_if),
    with no command written."""
    from procsim import machine as machine_mod
    s = Session(machine_mod.load(CONFIGS / "tiny.yaml"), clock="wall")
    try:
        k = s.kernel
        advance_to = k.advance_to
        logged = []

        def logging_advance(now_ns):                # a kernel thread that prints once
            advance_to(now_ns)
            if not logged:
                logged.append(printk.pr_info(k, "kthread: hello"))
        seq = s.seq()
        with s._mutex:
            k.advance_to = logging_advance
        assert s.wait("dev/kmsg", seq, timeout=5.0)
        assert logged and s.read_stream("dev/kmsg", None, 8192)[0].endswith(b"kthread: hello\n")
    finally:
        s.close()


def test_procsim_umount_ends_a_dmesg_follow_running_through_exec(tmp_path):
    """A `dmesg -w` under exec keeps binds of M in its mount namespace, so unmounting M here
    does not end the daemon's connection; `procsim umount` then sends the daemon SIGTERM, whose
    end gives dmesg's blocked read EOF: umount succeeds and dmesg exits by itself."""
    from procsim.harness import force_unmount, mount_entry
    mp = tmp_path / "m"
    mp.mkdir()
    r = subprocess.run(procsim_cmd("mount", "--config", CONFIGS / "tiny.yaml", mp), capture_output=True,
                       text=True, timeout=180)
    dmesg = None
    try:
        assert r.returncode == 0, r.stderr
        (mp / "sysctl/vm/drop_caches").write_text("1\n")
        out_path = tmp_path / "dmesg.out"
        with open(out_path, "wb") as out, open(tmp_path / "dmesg.err", "wb") as err:
            dmesg = subprocess.Popen(procsim_cmd("exec", mp, "--", "dmesg", "-w"), stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=err, start_new_session=True)
        _until(lambda: "drop_caches: 1" in out_path.read_text(), 60, "dmesg -w printed the log")
        t0 = time.monotonic()
        u = subprocess.run(procsim_cmd("umount", mp), capture_output=True, text=True, timeout=60)
        assert u.returncode == 0, u.stderr
        assert dmesg.wait(10) == 0                                  # EOF: dmesg -w ends by itself
        assert time.monotonic() - t0 < 10
        assert mount_entry(mp) is None and mount_entry(mp / "dev") is None
    finally:
        if dmesg is not None and dmesg.poll() is None:
            os.killpg(dmesg.pid, signal.SIGKILL)
            dmesg.wait(30)
        force_unmount(mp)
