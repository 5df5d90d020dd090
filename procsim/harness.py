"""One way to start, probe and stop a procsim mount, shared by the CLI, the tests and the
benchmarks (so there is one answer to "is it mounted", "is it alive", "is it hung").

    with mounted("configs/tiny.yaml") as m:          # a foreground daemon on a temp dir
        (m.path / "control").write_text("kmalloc 64\\n")

The mount is always unmounted and the daemon reaped on the way out, even if the body
raised or the daemon was stopped (SIGSTOP) or killed.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PID_XATTR = "user.procsim.pid"
READY_XATTR = "user.procsim.ready"   # "1" once every FUSE session of the mount is up (fs.serve)
FSTYPE = "fuse.procsim"
ANSWER_WAIT = 3.0          # seconds a daemon gets to answer before the CLI calls it hung


class Hung(Exception):
    """A call into the mount did not return in time: the daemon is stopped or stuck."""


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def quiet_thread(target, name: str) -> threading.Thread:
    """Start a daemon thread that never takes SIGINT/SIGTERM/SIGHUP.  A daemon's every thread
    but the main one must be one: libfuse's handler ends the main loop only when the signal
    interrupts the main thread's read of /dev/fuse; taken by another thread it only marks the
    session exited, and the daemon serves on until the next request comes."""
    t = threading.Thread(target=target, name=name, daemon=True)
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        t.start()                                   # the new thread inherits the mask
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return t


def _unescape(field: str) -> str:
    """/proc/self/mounts escapes space, tab, newline and backslash as octal."""
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def _target(mountpoint) -> str:
    """The absolute path of mountpoint without entering it: realpath of the parent only, since
    resolving the mount point itself asks a daemon that may be hung."""
    mp = os.path.abspath(mountpoint)
    head, tail = os.path.split(mp)
    return os.path.join(os.path.realpath(head), tail) if tail else mp


def mount_entry(mountpoint) -> str | None:
    """The fs type of whatever is mounted at mountpoint (by /proc/self/mounts), or None.

    ``mountpoint -q`` says "not a mountpoint" for a dead FUSE mount; the table does not lie,
    and reading it never waits for a daemon.
    """
    target = _target(mountpoint)
    try:
        with open("/proc/self/mounts") as f:
            lines = f.read().split("\n")
    except OSError:
        return None
    found = None
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and _unescape(parts[1]) == target:
            found = parts[2]
    return found


def probe(fn, timeout: float):
    """fn() in a helper thread; its result, its exception, or Hung after timeout seconds.
    (A FUSE request waits killably, so a thread left behind dies with the process.)"""
    out: list = []

    def run():
        try:
            out.append((True, fn()))
        except BaseException as e:          # noqa: BLE001 - handed to the caller
            out.append((False, e))
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if not out:
        raise Hung(f"no answer within {timeout:g} s")
    ok, value = out[0]
    if ok:
        return value
    raise value


def state(mountpoint, timeout: float = ANSWER_WAIT) -> str:
    """'none' (nothing mounted), 'alive', 'dead' (Transport endpoint is not connected) or
    'hung' (the daemon does not answer: stopped or stuck).  statfs always reaches the daemon."""
    if mount_entry(mountpoint) is None:
        return "none"
    try:
        probe(lambda: os.statvfs(_target(mountpoint)), timeout)
        return "alive"
    except Hung:
        return "hung"
    except OSError:
        return "dead"


def daemon_pid(mountpoint, timeout: float = ANSWER_WAIT) -> int | None:
    """The pid the procsim daemon serving mountpoint reports (its root's xattr); None if it
    is not a procsim mount or has no answer (Hung propagates)."""
    try:
        return int(probe(lambda: os.getxattr(_target(mountpoint), PID_XATTR), timeout))
    except (OSError, ValueError):
        return None


def ready(mountpoint, timeout: float = ANSWER_WAIT) -> bool:
    """False while a procsim daemon is still mounting its threaded session (fs.SUBMOUNTS) under
    mountpoint; True once it is up, and for any other FUSE program (no such attribute)."""
    try:
        return probe(lambda: os.getxattr(_target(mountpoint), READY_XATTR), timeout) != b"0"
    except OSError:
        return True


def submounts(mountpoint) -> list[str]:
    """The mount points below mountpoint (the threaded session's), deepest first."""
    target = _target(mountpoint).rstrip("/") + "/"
    try:
        with open("/proc/self/mounts") as f:
            lines = f.read().split("\n")
    except OSError:
        return []
    found = {_unescape(p[1]) for p in (line.split() for line in lines) if len(p) >= 3}
    return sorted((m for m in found if m.startswith(target)), key=lambda m: -m.count("/"))


def is_alive(mountpoint, timeout: float = ANSWER_WAIT) -> bool:
    return state(mountpoint, timeout) == "alive"


def detach(mountpoint) -> bool:
    """Lazily unmount (fusermount -uz, umount -l): for a dead or hung daemon."""
    mp = _target(mountpoint)
    for cmd in (["fusermount", "-uz", mp], ["umount", "-l", mp]):
        try:
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10, check=False)
        except (FileNotFoundError, subprocess.TimeoutExpired):
            continue
        if mount_entry(mp) is None:
            return True
    return mount_entry(mp) is None


def _running(proc) -> bool:
    """A subprocess.Popen or a multiprocessing.Process still running."""
    return proc.poll() is None if hasattr(proc, "poll") else proc.is_alive()


def _reap(proc, timeout: float) -> None:
    """Wait for proc (Popen or Process) up to timeout, then kill it."""
    if hasattr(proc, "poll"):
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    else:
        proc.join(timeout)
        if proc.is_alive():
            proc.kill()
            proc.join()


def wait_mounted(mountpoint, proc=None, timeout: float = 120.0, pid: int | None = None,
                 progress=None) -> None:
    """Until mountpoint answers (and, given pid, is served by that daemon); RuntimeError if
    proc (a Popen or a multiprocessing.Process) exits first or time runs out.  ``progress()``,
    when given, returns a value that changes while the daemon advances (a long journal
    replay reports to its stderr): each change gives it ``timeout`` seconds more."""
    deadline = time.monotonic() + timeout
    last = progress() if progress is not None else None
    while time.monotonic() < deadline:
        if progress is not None:
            now = progress()
            if now != last:
                last, deadline = now, time.monotonic() + timeout
        if mount_entry(mountpoint) is not None and state(mountpoint) == "alive":
            if (pid is None or daemon_pid(mountpoint) == pid) and ready(mountpoint):
                return
        if proc is not None and not _running(proc):
            code = proc.returncode if hasattr(proc, "poll") else proc.exitcode
            raise RuntimeError(f"the daemon for {mountpoint} exited with status {code} before mounting")
        time.sleep(0.02)
    raise RuntimeError(f"{mountpoint} not mounted after {timeout:g} s")


def unmount_submounts(mountpoint, timeout: float = 10.0) -> None:
    """Unmount what is mounted below mountpoint (procsim's threaded session), deepest first:
    fusermount -u, lazily if it is busy (a blocked reader then gets EOF when the daemon ends)."""
    for sub in submounts(mountpoint):
        try:
            r = subprocess.run(["fusermount", "-u", sub], capture_output=True, timeout=timeout)
            if r.returncode != 0 and mount_entry(sub) is not None:
                detach(sub)
        except (FileNotFoundError, subprocess.TimeoutExpired):
            detach(sub)


def force_unmount(mountpoint, proc=None, timeout: float = 10.0) -> None:
    """fusermount -u (lazy as a fallback), then make sure proc (Popen or Process) is gone
    (SIGCONT, then SIGKILL after timeout).  Safe on anything: nothing mounted, dead, hung."""
    mp = _target(mountpoint)
    if proc is not None and _running(proc):
        try:
            os.kill(proc.pid, signal.SIGCONT)   # a stopped daemon cannot unmount itself
        except ProcessLookupError:
            pass
    if mount_entry(mp) is not None and state(mp) == "alive":
        unmount_submounts(mp, timeout)
    if mount_entry(mp) is not None:
        try:
            subprocess.run(["fusermount", "-u", mp], capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    if mount_entry(mp) is not None:
        detach(mp)
    if proc is not None:
        _reap(proc, timeout)


def procsim_argv(*args) -> list[str]:
    return [sys.executable, "-m", "procsim.cli", *map(str, args)]


@dataclass
class Mount:
    path: Path
    proc: subprocess.Popen
    err: object = None                  # the temporary file holding the daemon's stderr

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr_text(self) -> str:
        """What the daemon wrote to stderr so far ("" when it went elsewhere)."""
        if self.err is None:
            return ""
        self.err.flush()
        return os.pread(self.err.fileno(), 1 << 24, 0).decode(errors="replace")


@contextmanager
def mounted(config=None, mountpoint=None, *, state_file=None, allow_other: bool = False, extra=(),
            argv=None, stdout=subprocess.DEVNULL, stderr=None, cwd=None, env=None,
            timeout: float = 120.0):
    """A foreground daemon (`procsim mount --foreground`, or argv(mountpoint) for another
    FUSE program) on mountpoint (a fresh temporary directory if None, removed afterwards).
    Yields a Mount once it answers; always unmounted and reaped.  The daemon's stderr goes to
    a temporary file (Mount.stderr_text() reads it) unless stderr names somewhere else: never
    an unread pipe, which would stop the daemon once 64 KiB are waiting in it."""
    made = mountpoint is None
    mp = Path(tempfile.mkdtemp(prefix="procsim-")) if made else Path(mountpoint)
    if argv is None:
        cmd = procsim_argv("mount", "--foreground",
                           *(["--config", config] if config else []),
                           *(["--state", state_file] if state_file else []),
                           *(["--allow-other"] if allow_other else []), *extra, mp)
    else:
        cmd = argv(str(mp))
    err = tempfile.TemporaryFile() if stderr is None else None
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=err or stderr, cwd=cwd, env=env)
    try:
        m = Mount(mp, proc, err)
        try:
            wait_mounted(mp, proc, timeout)
        except RuntimeError as e:
            why = m.stderr_text() if proc.poll() is not None else ""
            raise RuntimeError(f"{e}\n{why}".strip()) from None
        yield m
    finally:
        force_unmount(mp, proc)
        for f in (proc.stdout, proc.stderr, err):
            if f is not None:
                f.close()
        if made:
            try:
                os.rmdir(mp)
            except OSError:
                pass


def wait_for(predicate, timeout: float = 10.0, step: float = 0.02) -> bool:
    """Poll predicate until true (True) or timeout (False); e.g. for the FUSE release of a
    closed file, which the kernel sends without waiting for it."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
