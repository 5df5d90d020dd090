"""The FUSE filesystem: a Session's views as procfs-like files, plus ``control``.

procfs semantics, because that is what procps, libnuma and node_exporter rely on
(peers.md §0, §7):

* every file is opened with direct_io, so a file with st_size 0 is still read to EOF and
  the page cache never serves stale bytes;
* a read at offset 0 takes a fresh snapshot for that open handle and later offsets are
  served from it (slabtop and free keep the fd and lseek(0) on every refresh);
* files stay seekable (procps 4.0.2 treats a failing lseek as fatal);
* st_size is 0 except for binary views that need their exact size (DMI tables).

``control`` (0600) takes commands (procsim.control); every line runs exactly once whatever
the writer's buffer size and retries, a failing line's errno reaches the writer (see
ProcFS.write), and reading the same handle returns the replies not yet read.

Memory stays bounded whoever reads: what open handles keep is within SNAPSHOT_BYTES (one
render per state, shared), unread replies are capped per handle (MAX_REPLY_BYTES).

Threads (docs/DESIGN.md, "The shell's threads").  The mount is served by libfuse's
single-threaded loop on the main thread: a fusepy callback on the thread Python started costs
the least, and one thread never hands a request to another.  The files whose reads block
(trace_pipe, dev/kmsg) live in second FUSE sessions in the same process, multi-threaded,
mounted over M/sys/kernel/tracing and M/dev (``SUBMOUNTS``; a FUSE mount on a directory of a
FUSE mount is an ordinary mount), so a blocked reader holds one of its workers while
everything else goes on.  Every operation resolves its path once against the session's current tree
(``Session.tree``, built under the session lock) and answers ENOENT for what is gone.
A blocked reader waits on its file's condition in the session: notified when the state
moves, when the session leaves (unmount, SIGTERM: the reader gets EOF) and when libfuse
signals that a request was interrupted (a killed reader; ``_Interrupts``).  Nothing polls.
Nothing is printed by a FUSE thread: the daemon logs through ``start_log``, a bounded queue
written by its own thread to a capped file or stream.
"""
from __future__ import annotations

import ctypes
import errno
import itertools
import logging
import os
import queue
import signal
import stat
import sys
import threading
import time
from collections import deque
from logging.handlers import RotatingFileHandler

import fuse as _fusepy
from fuse import FUSE, FuseOSError, Operations

from procsim.control import MAX_COMMANDS, MAX_LINE
from procsim.harness import PID_XATTR, READY_XATTR, detach, is_alive, mount_entry, quiet_thread, state  # noqa: F401
from procsim.mm.errors import MMError
from procsim.session import Gone, Session, log

MAX_REPLY_BYTES = 256 << 10  # unread replies kept per control handle (oldest dropped first)
SNAPSHOT_BYTES = 64 << 20    # snapshots kept by open handles, all files together
AT_CLOSE = "(ran at close: the last line had no newline, so its error could not reach the writer)"
KEPT_THREAD_STATES = 64      # libfuse worker threads whose Python thread state is kept (below)
SUBMOUNTS = ("sys/kernel/tracing", "dev")   # subtrees served by the threaded session (reads that block:
                                            # trace_pipe, dev/kmsg)
INTR_SIGNAL = signal.SIGUSR2  # libfuse's "intr": sent to the worker whose request the kernel interrupts
LOG_BYTES = 1 << 20          # the daemon's log: per file (one rotation kept), or in all on stderr
LOG_QUEUE = 1000             # records waiting for the log thread; more are dropped and counted

_libfuse = _fusepy._libfuse
_libfuse.fuse_exited.argtypes = [ctypes.c_void_p]
_libfuse.fuse_get_session.argtypes = [ctypes.c_void_p]
_libfuse.fuse_get_session.restype = ctypes.c_void_p
_libfuse.fuse_set_signal_handlers.argtypes = [ctypes.c_void_p]
_thread = threading.local()      # per thread state: empty again whenever the state is new
_kept = itertools.count()


def _keep_thread_state() -> None:
    """Keep this libfuse worker thread's Python thread state for the thread's life.

    ctypes runs a callback on a thread Python did not start between PyGILState_Ensure() and
    PyGILState_Release(): the first creates a thread state, the second, back at count 0,
    destroys it, so every FUSE request paid for a new one.  One more Ensure, never released,
    keeps the count above 0.  Only the threaded session's workers need it (the main session
    answers on the main thread); at most KEPT_THREAD_STATES threads keep theirs.
    """
    _thread.kept = True
    if next(_kept) < KEPT_THREAD_STATES:
        ctypes.pythonapi.PyGILState_Ensure()


# --- the daemon's log: bounded, never written by a FUSE thread ------------------------------------
class _CappedStream(logging.StreamHandler):
    """stderr, up to LOG_BYTES in all, then one line saying the rest is dropped."""

    CAPPED = "procsim: the log reached its cap; later messages are dropped (use --log FILE)\n"

    def __init__(self, stream, cap: int = LOG_BYTES):
        super().__init__(stream)
        self.left = cap - len(self.CAPPED)          # room kept for the last line

    def emit(self, record):
        if self.left < 0:
            return
        text = self.format(record) + "\n"
        if len(text.encode()) > self.left:
            text, self.left = self.CAPPED, -1
        else:
            self.left -= len(text.encode())
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self.left = -1


class DaemonLog:
    """log (procsim.daemon) and fusepy's logger -> a queue of LOG_QUEUE records -> one thread
    -> a rotating file (LOG_BYTES, one old file kept) or capped stderr.  A full queue drops
    the record (and counts it): whatever happens to the file or the pipe, a FUSE thread
    never waits for it."""

    def __init__(self, path: str | None = None):
        if path:
            self.out: logging.Handler = RotatingFileHandler(path, maxBytes=LOG_BYTES, backupCount=1)
        else:
            self.out = _CappedStream(sys.stderr)
        self.out.setFormatter(logging.Formatter("%(asctime)s procsim: %(message)s"))
        self.q: queue.Queue = queue.Queue(LOG_QUEUE)
        self.dropped = 0
        self.loggers = [log, logging.getLogger("fuse")]
        for lg in self.loggers:
            lg.addHandler(self)
            lg.propagate = False
            if lg.level == logging.NOTSET:
                lg.setLevel(logging.INFO)
        self.level = logging.INFO
        self.thread = quiet_thread(self._write, "procsim-log")

    # the logging.Handler protocol, just enough of it
    def handle(self, record):
        if record.exc_info:                         # format now: the traceback's frames go away
            record.msg = logging.Formatter().format(record)
            record.args, record.exc_info, record.exc_text = None, None, None
        try:
            self.q.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def _write(self):
        while True:
            record = self.q.get()
            if record is None:
                return
            if self.dropped:
                n, self.dropped = self.dropped, 0
                self.out.handle(logging.makeLogRecord({"msg": f"{n} log messages dropped (queue full)"}))
            self.out.handle(record)

    def stop(self):
        for lg in self.loggers:
            lg.removeHandler(self)
        try:
            self.q.put(None, timeout=1)
        except queue.Full:
            pass
        self.thread.join(2)
        self.out.close()


def start_log(path: str | None = None) -> DaemonLog:
    return DaemonLog(path)


# --- interrupted requests: libfuse signals the worker, one thread wakes the waiters ------------
class _Interrupts:
    """libfuse ("-o intr") sends INTR_SIGNAL to the worker thread whose request the kernel
    interrupted (its reader was killed), again every second until the request ends.  Python's
    C-level handler writes the signal's number to the wakeup fd; this one thread reads it and
    notifies every blocked reader, each of which asks libfuse whether *its* request was the
    one (fuse_interrupted).  No reader polls, and an idle daemon does nothing."""

    def __init__(self, session: Session):
        self.session = session
        self.r, self.w = os.pipe()
        os.set_blocking(self.w, False)
        signal.signal(INTR_SIGNAL, lambda *_: None)     # a handler (not SIG_DFL): libfuse keeps it
        self.old_fd = signal.set_wakeup_fd(self.w, warn_on_full_buffer=False)
        self.thread = quiet_thread(self._run, "procsim-intr")

    def _run(self):
        while True:
            try:
                got = os.read(self.r, 512)
            except OSError:
                return
            if not got:
                return
            if INTR_SIGNAL in got:
                self.session.wake(interrupt=True)

    def stop(self):
        signal.set_wakeup_fd(self.old_fd)
        signal.signal(INTR_SIGNAL, signal.SIG_DFL)
        os.close(self.w)                            # the thread reads EOF and ends
        self.thread.join(1)
        os.close(self.r)


class Handle:
    """One open file.  Plain slots: an open+read+close makes one, so it must be cheap."""
    __slots__ = ("path", "kind", "snapshot", "pending", "replies", "reply_bytes", "failed", "split_at", "cursor",
                 "lock")

    def __init__(self, path: str, kind: str = "file"):
        self.path = path
        self.kind = kind                # file, control, stream (kmsg), pipe (trace_pipe)
        self.snapshot = None            # the bytes read at offset 0 (shared, counted in ProcFS._pinned)
        self.pending = None if kind == "file" else bytearray()   # control: a partial line; pipe: a line's rest
        self.replies = deque() if kind == "control" else None
        self.reply_bytes = 0
        self.failed = None              # control: (errno, the failing line's bytes, errno told) for the retry
        self.split_at = -1              # control: where a next request of the same write(2) starts
        self.cursor = None              # stream views (kmsg): the next record
        self.lock = threading.Lock()    # one request at a time per handle


_DIR = stat.S_IFDIR | 0o555


class ProcFS(Operations):
    """The session's files below ``root`` ("" for the whole mount).  This class never blocks:
    it is the main session's, answered on one thread.  ``BlockingFS`` is the threaded one."""
    use_ns = True
    blocking = False

    def __init__(self, session: Session, on_ready=None, mountpoint: str | None = None, root: str = ""):
        self.session = session
        self._on_ready = on_ready
        self._mountpoint = mountpoint
        self._root = root
        self._prefix = "/" + root if root else ""
        self._handles: dict[int, Handle] = {}
        self._ids = itertools.count(1)
        self._hmutex = threading.Lock()             # guards _handles and the pins
        self._snaps: dict[int, bytes] = {}          # plain read handle -> its snapshot (counted in _pinned)
        self._pinned = 0                            # bytes of the handles' snapshots (each counted)
        self._uid, self._gid = os.getuid(), os.getgid()
        t = self._time = time.time_ns()
        self._base = dict(st_uid=self._uid, st_gid=self._gid, st_atime=t, st_mtime=t, st_ctime=t)
        self._dir_attr = dict(self._base, st_mode=_DIR, st_nlink=2)
        # a threaded session's mount point: fusermount wants write access to it (as sysfs's 0755)
        self._mount_dir_attr = dict(self._base, st_mode=stat.S_IFDIR | 0o755, st_nlink=2)
        self._file_attrs: dict[int, dict] = {}      # mode -> attrs (fusepy only reads them)
        self._memo: tuple = (None, {})              # (tree, FUSE path -> (name, attrs) or None): _plain
        self.ready = on_ready is None               # READY_XATTR: every session of the mount is up
        self.fuse = None                            # libfuse's struct fuse *, once init ran

    def __call__(self, op, *args):
        return getattr(self, op)(*args)

    def _name(self, path: str) -> str:
        """A FUSE path -> the session's file name ("" is the mount's root)."""
        return (self._prefix + path).strip("/")

    def init(self, path):
        """Called by libfuse once the mount is up."""
        self.fuse = _libfuse.fuse_get_context().contents.fuse
        if self._on_ready is not None:
            self._on_ready(self)

    # --- metadata ------------------------------------------------------------------------
    def _plain(self, path: str):
        """(name, attrs) of a plain file at this FUSE path (readable, not a pipe, stream,
        control or sized file) in the current tree, or None: every open+read+close asks it
        twice (getattr, open), so it is remembered per tree (a new tree starts afresh)."""
        tree = self.session.tree()
        memo = self._memo
        if memo[0] is not tree:
            memo = self._memo = (tree, {})
        got = memo[1].get(path, False)
        if got is False:
            name = self._name(path)
            mode = tree.files.get(name)
            got = None
            if (mode is not None and mode & 0o444 and name not in tree.kinds and name not in tree.sized
                    and name not in tree.dirs):
                got = (name, self._attrs(mode))
            if len(memo[1]) < 4096:
                memo[1][path] = got
        return got

    def _attrs(self, mode: int) -> dict:
        attrs = self._file_attrs.get(mode)
        if attrs is None:
            attrs = self._file_attrs[mode] = dict(self._base, st_mode=stat.S_IFREG | mode, st_nlink=1, st_size=0)
        return attrs

    def getattr(self, path, fh=None):
        got = self._plain(path)
        if got is not None:
            return got[1]
        tree = self.session.tree()
        name = self._name(path)
        if name in tree.dirs:
            return self._mount_dir_attr if name in SUBMOUNTS else self._dir_attr
        mode = tree.files.get(name)
        if mode is None:
            raise FuseOSError(errno.ENOENT)
        if name in tree.sized:
            return dict(self._base, st_mode=stat.S_IFREG | mode, st_nlink=1, st_size=len(self._snapshot(name)[1]))
        return self._attrs(mode)

    def readdir(self, path, fh):
        tree = self.session.tree()
        name = self._name(path)
        kids = tree.dirs.get(name)
        if kids is None:            # gone since opendir: the kernel shows the reader an empty directory
            raise FuseOSError(errno.ENOTDIR if name in tree.files else errno.ENOENT)
        # With a type for each entry (d_type): tools such as slabinfo skip DT_UNKNOWN entries.
        return [".", ".."] + [(n, {"st_mode": stat.S_IFDIR if d else stat.S_IFREG}, 0) for n, d in kids]

    def getxattr(self, path, name, position=0):
        if path == "/" and not self._root:
            if name == PID_XATTR:                   # how `procsim umount` finds the daemon
                return str(os.getpid()).encode()
            if name == READY_XATTR:                 # harness.wait_mounted: the threaded session is up too
                return b"1" if self.ready else b"0"
        raise FuseOSError(errno.ENODATA)

    def listxattr(self, path):
        return [PID_XATTR, READY_XATTR] if path == "/" and not self._root else []

    def truncate(self, path, length, fh=None):
        if self._name(path) in self.session.tree().writable:   # `echo cmd > control` opens with O_TRUNC
            return 0
        raise FuseOSError(errno.EACCES)

    # --- open / read / write ---------------------------------------------------------------
    def open(self, path, fi):
        if not fi.flags & os.O_ACCMODE and (got := self._plain(path)) is not None:   # read-only, plain
            fi.direct_io = 1
            fi.fh = fh = next(self._ids)
            self._handles[fh] = got[0]              # a plain read handle is its file's name (one dict store)
            return 0
        tree = self.session.tree()
        name = self._name(path)
        mode = tree.files.get(name)
        if mode is None:
            raise FuseOSError(errno.EISDIR if name in tree.dirs else errno.ENOENT)
        acc = fi.flags & os.O_ACCMODE
        if acc != os.O_RDONLY and name not in tree.writable:
            raise FuseOSError(errno.EACCES)
        if acc != os.O_WRONLY and not mode & 0o444:   # drop_caches: 0200
            raise FuseOSError(errno.EACCES)
        fi.direct_io = 1
        h = Handle(name, tree.kinds.get(name, "file"))
        with self._hmutex:
            fi.fh = fh = next(self._ids)
            self._handles[fh] = h
        return 0

    def _handle(self, fi) -> Handle:
        h = self._handles.get(fi.fh)               # a dict read is atomic; entries only come and go
        if h is None or h.__class__ is str:         # (a plain read handle is never written)
            raise FuseOSError(errno.EBADF)
        return h

    def _snapshot(self, name: str) -> tuple[tuple, bytes]:
        try:
            return self.session.snapshot(name)
        except Gone:
            raise FuseOSError(errno.ENOENT) from None
        except Exception:
            log.exception("rendering %s failed", name)
            raise FuseOSError(errno.EIO) from None

    def read(self, path, size, offset, fi):
        fh = fi.fh
        h = self._handles.get(fh)                  # _handle() inline: every read asks
        if h.__class__ is str:                      # a plain file opened read-only
            data = self._snaps.get(fh) if offset else None
            if data is None:
                data = self._take_plain(fh, h)
            return data[offset:offset + size]
        if h is None:
            raise FuseOSError(errno.EBADF)
        kind = h.kind
        if kind == "file":
            data = h.snapshot
            if offset == 0 or data is None:
                with h.lock:
                    data = self._take_snapshot(h)
            return data[offset:offset + size]
        if kind == "control":                       # replies not read yet on this handle
            with h.lock:
                out = bytearray()
                while h.replies and len(out) + len(h.replies[0]) <= size:
                    out += h.replies.popleft()
                if not out and h.replies:           # one reply longer than the buffer
                    first = h.replies.popleft()
                    out, rest = first[:size], first[size:]
                    h.replies.appendleft(rest)
                h.reply_bytes -= len(out)
                return bytes(out)
        if kind == "stream":                        # kmsg: one record per read, offset unused
            return self._read_stream(h, size, fi.flags)
        return self._read_pipe(h, size, fi.flags)

    # --- kmsg: one record per read ----------------------------------------------------------------
    def _read_stream(self, h: Handle, size: int, flags: int) -> bytes:
        """devkmsg_read(): the reader's next record.  A record overwritten before it was read
        is EPIPE once (the next read starts at the oldest).  At the end of the log the main
        session (which must never block: M/kmsg) answers EOF; the threaded one (M/dev/kmsg)
        answers EAGAIN to O_NONBLOCK and otherwise waits (``_wait``) until a record is logged
        (EOF when the mount goes, EINTR when the reader is killed), as /dev/kmsg does."""
        while True:
            if self.blocking and _libfuse.fuse_interrupted():
                raise FuseOSError(errno.EINTR)
            seq = self.session.seq()                # before the read: no record logged after it is missed
            with h.lock:
                try:
                    data, h.cursor = self.session.read_stream(h.path, h.cursor, size)
                except Gone:
                    raise FuseOSError(errno.ENOENT) from None
                except OSError as e:                # EPIPE: overwritten, go on at the oldest
                    h.cursor = None if e.errno == errno.EPIPE else h.cursor
                    raise FuseOSError(e.errno) from None
            if data or not self.blocking:
                return data
            if flags & os.O_NONBLOCK:
                # A kernel's log is never empty (its first record is "Linux version ..."); the
                # simulated one is until something logs.  dmesg takes EAGAIN at its first read
                # as "no /dev/kmsg" and falls back to syslog(2), the host's log (EPERM through
                # exec): so an empty log reads as EOF, the end of a log as EAGAIN.
                if h.cursor == 0:                   # (kmsg's cursor is the next seq: none logged)
                    return b""
                raise FuseOSError(errno.EAGAIN)
            if not self._wait(h, seq):
                return b""

    # --- trace_pipe: a consuming read -----------------------------------------------------------
    def _read_pipe(self, h: Handle, size: int, flags: int) -> bytes:
        """The kernel's trace_pipe read (tracing_read_pipe): offsets mean nothing, each read
        takes the oldest unread lines that fit.  With none, O_NONBLOCK gets EAGAIN; anyone
        else waits (``_wait``): in BlockingFS until something is recorded, here (the main
        session, which must never block, and serves the file only if the threaded session is
        not mounted over it) not at all: EOF."""
        with h.lock:                                # a line longer than the reader's buffer
            if h.pending:
                out = bytes(h.pending[:size])
                del h.pending[:size]
                return out
        while True:
            if self.blocking and _libfuse.fuse_interrupted():   # before taking lines nobody would get
                raise FuseOSError(errno.EINTR)
            try:
                seq, data = self.session.read_pipe(h.path, size)
            except Gone:
                raise FuseOSError(errno.ENOENT) from None
            except Exception:
                log.exception("reading %s failed", h.path)
                raise FuseOSError(errno.EIO) from None
            if data:
                break
            if flags & os.O_NONBLOCK:
                raise FuseOSError(errno.EAGAIN)
            if not self._wait(h, seq):
                return b""
        if len(data) > size:
            with h.lock:
                h.pending += data[size:]
            data = data[:size]
        return data

    def _wait(self, h: Handle, seq: int) -> bool:
        return False

    # --- snapshots: seq_file-like, bounded ---------------------------------------------------
    def _take_snapshot(self, h: Handle) -> bytes:
        """The file now, kept for this handle's later offsets while the budget allows (the
        caller holds h.lock).

        A state's bytes are rendered once and shared (the session caches them by state), so
        handles reading one state hold one copy; still each handle's snapshot counts in full
        against SNAPSHOT_BYTES, which bounds what open handles keep alive however many there
        are and however the state moves.  Beyond that the handle keeps nothing and a read at a
        later offset takes the current state (the kernel's seq_file does the same: it never
        keeps a whole copy per reader, and a reader that spans a change sees it).
        """
        try:                                        # _snapshot() inline: every first read asks
            data = self.session.snapshot(h.path)[1]
        except Gone:
            raise FuseOSError(errno.ENOENT) from None
        except Exception:
            log.exception("rendering %s failed", h.path)
            raise FuseOSError(errno.EIO) from None
        old = h.snapshot
        n = len(data)
        with self._hmutex:
            if old is not None:
                self._pinned -= len(old)
            if self._pinned + n <= SNAPSHOT_BYTES:
                self._pinned += n
                h.snapshot = data
            else:
                h.snapshot = None
        return data

    def _take_plain(self, fh: int, name: str) -> bytes:
        """_take_snapshot() for a plain read handle (its snapshot lives in _snaps)."""
        try:
            data = self.session.snapshot(name)[1]
        except Gone:
            raise FuseOSError(errno.ENOENT) from None
        except Exception:
            log.exception("rendering %s failed", name)
            raise FuseOSError(errno.EIO) from None
        n = len(data)
        with self._hmutex:
            old = self._snaps.pop(fh, None)
            if old is not None:
                self._pinned -= len(old)
            if self._pinned + n <= SNAPSHOT_BYTES and fh in self._handles:   # (not released meanwhile)
                self._pinned += n
                self._snaps[fh] = data
        return data

    def _unpin(self, h: Handle) -> None:
        """Drop h's snapshot (caller holds _hmutex)."""
        if h.snapshot is not None:
            self._pinned -= len(h.snapshot)
            h.snapshot = None

    # --- control and the writable files ------------------------------------------------------
    def write(self, path, data, offset, fi):
        """Run the complete lines of one FUSE write request; return how many bytes were taken.

        The kernel splits one write(2) into requests of at most 128 KiB and, when a request
        takes fewer bytes than it was given, stops and returns the short count; dd, stdio and
        Python then write the rest again.  So a failing line is never taken: the count stops
        where it starts (or, when it is the request's first line, the request fails with its
        errno), and the handle remembers the line's bytes: the writer's retry, which starts
        with them, fails at once with the same errno and nothing runs twice (so does any later
        write starting with them; a prefix of them too while the errno has not reached the
        writer: after a short count it resends the rest, maybe in smaller pieces).  A write
        whose bytes do not start with them (a new command after the error, even one that is a
        prefix of the failed line once the errno was returned) runs normally.
        A request that ends inside a line keeps the fragment pending for the next one.
        At most MAX_COMMANDS lines run per request; the rest is handed back as a short count.
        """
        h = self._handle(fi)
        if h.kind == "control":
            with h.lock:
                return self._write_control(h, data, offset)
        if offset:                                  # sysctl_writes_strict: a write past 0 is ignored
            return len(data)
        try:                                        # the whole write is the value (tracefs, sysctl)
            self.session.write_view(h.path, bytes(data))
        except Gone:
            raise FuseOSError(errno.ENOENT) from None
        except MMError as e:
            raise FuseOSError(e.errno) from None
        except Exception:
            log.exception("writing %s failed", h.path)
            raise FuseOSError(errno.EIO) from None
        return len(data)

    def _write_control(self, h: Handle, data: bytes, offset: int = -2) -> int:
        if h.failed is not None:                    # a retry (Python's close() retries twice)
            code, line, told = h.failed
            if data.startswith(line):
                raise FuseOSError(code)
            if not told and line.startswith(data):  # the rest after a short count, resent in pieces
                h.failed = (code, line, True)
                raise FuseOSError(code)
            h.failed = None                         # a new write, even a prefix of the line
        texts, ends, pos, refusal = [], [], 0, None
        # the first line began in an earlier request, or this request may continue the last
        # one's write(2) (a whole request of at least a page taken, the offset just after it)
        joined, h.split_at = bool(h.pending) or offset == h.split_at, -1
        while len(texts) < MAX_COMMANDS:
            nl = data.find(b"\n", pos)
            if nl < 0:
                break
            raw = bytes(h.pending) + data[pos:nl] if h.pending and not texts else data[pos:nl]
            if len(raw) > MAX_LINE:
                refusal = (raw, f"line longer than {MAX_LINE} bytes")
                break
            try:
                texts.append(raw.decode())
            except UnicodeDecodeError as e:
                refusal = (raw, f"not UTF-8 text (byte {e.start})")
                break
            ends.append(nl + 1)
            pos = nl + 1
        full = refusal is None and len(texts) < MAX_COMMANDS       # every line of the request taken
        if full and len(h.pending if not texts else b"") + len(data) - pos > MAX_LINE:
            refusal = (bytes(h.pending if not texts else b"") + data[pos:], f"line longer than {MAX_LINE} bytes")
        replies, done = self.session.run_lines(texts) if texts else ([], 0)
        for r in replies:
            self._reply(h, r.text)
        if done == len(texts) and refusal is not None:
            raw, why = refusal
            shown = raw[:80].decode(errors="replace")
            self._reply(h, f"error EINVAL: {why}")
            self.session.note(shown, f"error EINVAL: {why}")
            code = errno.EINVAL
        elif done < len(texts):
            code = replies[-1].errno
        else:                                       # all taken: keep the fragment, if any
            if texts:
                h.pending.clear()
            if full:
                h.pending += data[pos:]
                if len(data) >= 4096:
                    h.split_at = offset + len(data)
                return len(data)
            return pos
        start = ends[done - 1] if done else 0
        stop = data.find(b"\n", start)
        # told: the errno reaches the writer now (its write(2) began with this line); after a
        # short count (or a line begun in an earlier request) the writer resends the rest,
        # maybe in smaller pieces, so a prefix of the line is its retry too
        told = not start and not (done == 0 and joined)
        h.failed = (code, data[start:stop + 1 if stop >= 0 else len(data)], told)
        h.pending.clear()
        if start:
            return start
        raise FuseOSError(code)

    def _reply(self, h: Handle, text: str) -> None:
        """Queue a reply; past MAX_REPLY_BYTES unread on this handle the oldest are dropped."""
        b = (text + "\n").encode()
        h.replies.append(b)
        h.reply_bytes += len(b)
        while h.reply_bytes > MAX_REPLY_BYTES and len(h.replies) > 1:
            h.reply_bytes -= len(h.replies.popleft())

    def flush(self, path, fi):
        """Called at every close of every copy of the descriptor (a forked child's exit, an
        exec closing it): nothing runs here.  A last line without a newline runs at release."""
        return 0

    def release(self, path, fi):
        """The final close: a pending last line without a newline runs now.  Its error cannot
        reach the writer (close(2) has returned), so the log says it ran at close."""
        with self._hmutex:
            h = self._handles.pop(fi.fh, None)
            if h.__class__ is str:                  # a plain read handle
                data = self._snaps.pop(fi.fh, None)
                if data is not None:
                    self._pinned -= len(data)
                return 0
            if h is not None and h.snapshot is not None:
                self._pinned -= len(h.snapshot)
                h.snapshot = None
        if h is not None and h.kind == "control" and h.pending:
            try:
                text = bytes(h.pending).decode()
            except UnicodeDecodeError as e:
                self.session.note(bytes(h.pending[:80]).decode(errors="replace"),
                                  f"error EINVAL: not UTF-8 text (byte {e.start}) {AT_CLOSE}")
                return 0
            replies, done = self.session.run_lines([text])
            if done == 0 and replies:
                self.session.annotate_last(" " + AT_CLOSE)
        return 0


class BlockingFS(ProcFS):
    """The threaded session (libfuse's worker threads): the same files below ``root``, where
    a trace_pipe read waits for events and a dev/kmsg read for the next record.  A wait holds
    one worker and no lock of the core; it ends when the state moves, when the session leaves
    (EOF) or when the kernel interrupts the request (EINTR: the reader was killed)."""
    blocking = True

    def __call__(self, op, *args):
        """fusepy calls every operation through here, on libfuse's worker threads."""
        if not getattr(_thread, "kept", False):
            _keep_thread_state()
        return getattr(self, op)(*args)

    def _wait(self, h: Handle, seq: int) -> bool:
        if not self.session.wait(h.path, seq, stop=_libfuse.fuse_interrupted):
            if _libfuse.fuse_interrupted() and not self.session.leaving:
                raise FuseOSError(errno.EINTR)
            return False
        return True


# --- mount helpers (procsim.harness has them; these names stay for the callers) ------------------
def recover_dead_mount(mountpoint: str) -> bool:
    """Lazily unmount a FUSE mount whose daemon died ("Transport endpoint is not connected")."""
    if state(mountpoint) != "dead":
        return False
    return detach(mountpoint)


class _Sub:
    """One threaded FUSE session serving the session's subtree ``root`` at mountpoint/root."""

    def __init__(self, session: Session, mountpoint: str, root: str, opts: dict, on_up):
        self.fs = BlockingFS(session, on_up, os.path.join(mountpoint, root), root)
        self.path = os.path.join(mountpoint, root)
        self.opts = opts
        self.error: BaseException | None = None
        self.thread = None

    def start(self):
        self.thread = quiet_thread(self._run, f"procsim-fuse-{os.path.basename(self.path)}")

    def _run(self):
        try:
            FUSE(self.fs, self.path, raw_fi=True, intr=True, intr_signal=int(INTR_SIGNAL), nonempty=True, **self.opts)
        except BaseException as e:                  # noqa: BLE001 - reported by serve
            self.error = e
            if self.fs.fuse is None:                # never came up: do not hold up the mount's ready
                log.warning("the threaded session for %s did not mount (%s); its blocking reads "
                            "answer EOF", self.path, e)
                self.fs._on_ready(self.fs)

    def own_signals(self) -> None:
        """Before its readers get EOF (and it may end): its teardown then finds its own
        signal handlers in libfuse, not the main session's (which are gone by now)."""
        t = self.thread
        if self.fs.fuse and t is not None and t.is_alive():
            _libfuse.fuse_set_signal_handlers(_libfuse.fuse_get_session(self.fs.fuse))

    def stop(self, timeout: float) -> None:
        """After the main session ended: end this one (its blocked readers already have EOF)."""
        t = self.thread
        if t is None or not t.is_alive():
            return
        if mount_entry(self.path) is not None:      # still attached (the main one went lazily)
            detach(self.path)
        t.join(timeout)


def serve(session: Session, mountpoint: str, allow_other: bool = False, on_ready=None,
          log_file: str | None = None) -> bool:
    """Mount and serve until unmounted (fusermount -u) or SIGINT/SIGTERM/SIGHUP; returns True
    when every thread of the daemon has ended (else the caller should leave with os._exit,
    see below).

    The main session runs libfuse's single-threaded loop on this thread; fusepy resets
    SIGINT to SIG_DFL around fuse_main, so libfuse's own handlers catch INT/TERM/HUP, leave
    the loop and unmount.  Every other thread blocks those signals, so they always reach
    this one.  The subtrees in SUBMOUNTS that the session has get a threaded session each,
    started once the main mount is up (its mount point is a directory of the main mount)
    and pointed back at the main session's signal handlers.  When the main loop ends, blocked
    readers get EOF (Session.leave) and the threaded sessions are ended; one that a reader
    still holds open (a lazy unmount) is left to process exit.
    """
    opts = dict(foreground=True, default_permissions=True, fsname="procsim", subtype="procsim")
    if allow_other:
        opts["allow_other"] = True
    daemon_log = start_log(log_file)
    tree = session.tree()
    roots = [r for r in SUBMOUNTS if r in tree.dirs]
    subs: list[_Sub] = []
    intr = None
    if roots and threading.current_thread() is threading.main_thread():   # signal handlers: main thread only
        intr = _Interrupts(session)
    up = set()
    main_fs: list[ProcFS] = []

    def sub_up(fs):
        if fs.fuse and main_fs and main_fs[0].fuse:     # SIGTERM goes on ending the main loop
            _libfuse.fuse_set_signal_handlers(_libfuse.fuse_get_session(main_fs[0].fuse))
        up.add(fs._root)
        if len(up) == len(roots):
            main_fs[0].ready = True
            if on_ready is not None:
                on_ready()

    def main_up(fs):
        if not roots:
            fs.ready = True
            if on_ready is not None:
                on_ready()
            return
        for r in roots:
            s = _Sub(session, mountpoint, r, opts, sub_up)
            subs.append(s)
            s.start()

    main = ProcFS(session, main_up, mountpoint)
    main_fs.append(main)
    try:
        FUSE(main, mountpoint, raw_fi=True, nothreads=True, **opts)
    finally:
        for s in subs[:1]:                          # libfuse keeps one session's handlers
            s.own_signals()
        session.leave()                             # blocked readers: EOF
        for s in subs:
            s.stop(2.0)
        if intr is not None:
            intr.stop()
        daemon_log.stop()
    return all(s.thread is None or not s.thread.is_alive() for s in subs)
