"""What the daemon does when something goes wrong inside it (issue 30 §3): it never prints
under the session lock, logs to a bounded place, never hangs on a full stderr pipe, and after
an internal error of the core refuses writes with EIO (saying why in ``log``) while reads go
on answering."""
from __future__ import annotations

import errno
import os
import time

import pytest

from procsim.mm.errors import MMError
from procsim.session import Session
from procsim.testing import FakeKernel, fake_views
from procsim.views import View


def broken_session():
    """A fake machine with a file whose render is a bug, and a kmalloc size that is one."""
    views = dict(fake_views())
    views["broken"] = View(0o444, lambda k: 1 // 0)
    s = Session(None, boot=lambda: FakeKernel(), views=views)
    real = s.control.kernel.slab.kmalloc

    def kmalloc(size, *args, **kw):
        if size == 4242:
            raise RuntimeError("a bug in the core, half way through")
        return real(size, *args, **kw)
    s.control.kernel.slab.kmalloc = kmalloc
    return s


def test_an_internal_error_stops_writes_with_eio_and_log_says_why():
    s = broken_session()
    assert s.execute(["kmalloc 64"])[-1].errno == 0
    r = s.execute(["kmalloc 4242"])[-1]
    assert r.errno == errno.EIO and "internal error: RuntimeError: a bug in the core" in r.text
    later = s.execute(["kmalloc 64"])[-1]              # the state may be half changed: refused
    assert later.errno == errno.EIO and "internal error of the core" in later.text
    log = s.render("log").decode()
    assert "kmalloc 4242 -> error EIO: internal error" in log
    assert "refused: an internal error of the core in 'kmalloc 4242'" in log
    assert b"MemFree" in s.render("meminfo")           # reads still answer


def test_a_view_write_that_runs_a_command_is_refused_too():
    s = broken_session()
    s._views["knob"] = View(0o644, lambda k: b"0\n", write=lambda k, d: "kmalloc 64")
    s.execute(["kmalloc 4242"])
    with pytest.raises(MMError) as e:
        s.write_view("knob", b"1")
    assert e.value.errno == errno.EIO


def test_the_traceback_is_logged_outside_the_lock():
    """The session logs the core's traceback once its lock is released (never prints it)."""
    import logging
    from procsim import session as session_mod
    s = broken_session()
    seen = []

    class H(logging.Handler):
        def emit(self, record):
            seen.append(("locked", s._mutex.locked(), record.getMessage()))
    h = H()
    session_mod.log.addHandler(h)
    try:
        s.execute(["kmalloc 4242"])
    finally:
        session_mod.log.removeHandler(h)
    assert len(seen) == 1
    _, locked, msg = seen[0]
    assert not locked and "RuntimeError: a bug in the core" in msg and "kmalloc 4242" in msg


def _with_unread_stderr_pipe(make):
    """In the daemon (the forked child): stderr becomes a pipe nobody reads."""
    def factory():
        r, w = os.pipe()
        os.dup2(w, 2)
        os.close(w)
        factory.keep = r                            # the read end stays open, unread
        return make()
    return factory


def test_a_full_stderr_pipe_does_not_hang_the_daemon(mount_session):
    """Thousands of failing renders, each logging a traceback, into a stderr pipe nobody
    reads (64 KiB fill it within ~60): every read still gets its EIO, and then every other
    file and control still answer.  (Before, the traceback was printed under the session
    lock: the first blocked write hung the whole mount.)"""
    mp = mount_session(_with_unread_stderr_pipe(broken_session))
    for _ in range(600):
        with pytest.raises(OSError) as e:
            with open(mp / "broken", "rb") as f:
                f.read()
        assert e.value.errno == errno.EIO
    for _ in range(200):                                # internal errors of commands too
        fd = os.open(mp / "control", os.O_WRONLY)
        try:
            with pytest.raises(OSError) as e:
                os.write(fd, b"kmalloc 4242\n")
            assert e.value.errno == errno.EIO
        finally:
            os.close(fd)
    assert (mp / "meminfo").read_bytes().startswith(b"MemTotal")
    assert b"refused: an internal error" in (mp / "log").read_bytes()


def _drained(q, limit: float = 30.0) -> None:
    """Wait until the log thread has taken every queued record (bounded)."""
    deadline = time.monotonic() + limit
    while not q.empty() and time.monotonic() < deadline:
        time.sleep(0.001)


def test_the_log_file_is_capped(tmp_path):
    """serve(log_file=F): F rotates at LOG_BYTES and keeps one old file, so thousands of
    tracebacks take at most twice that."""
    from procsim import fs
    log = fs.start_log(str(tmp_path / "daemon.log"))
    try:
        for i in range(6000):
            try:
                raise ValueError(f"boom {i}")
            except ValueError:
                fs.log.exception("rendering x failed")
            if i % 100 == 99:               # a full queue drops records (never blocks a FUSE thread):
                _drained(log.q)             # here the writer is given time, so nothing is dropped
    finally:
        log.stop()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["daemon.log", "daemon.log.1"]
    sizes = [(tmp_path / f).stat().st_size for f in files]
    assert all(0 < n <= fs.LOG_BYTES for n in sizes), sizes
    text = (tmp_path / "daemon.log").read_text()
    assert "ValueError: boom" in text and "Traceback" in text


def test_stderr_log_is_capped(capfd):
    """Without a log file the daemon logs to stderr, at most LOG_BYTES in all."""
    from procsim import fs
    log = fs.DaemonLog(None)
    try:
        for i in range(4000):
            try:
                raise ValueError("x" * 500)
            except ValueError:
                fs.log.exception("failed")
            if i % 500 == 0:                        # let the writer keep up (the queue drops the rest)
                import time
                time.sleep(0.05)
    finally:
        log.stop()
    err = capfd.readouterr().err
    assert len(err.encode()) <= fs.LOG_BYTES
    assert "the log reached its cap" in err
