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

Memory stays bounded whoever reads: open handles share one snapshot per (file, state) within
SNAPSHOT_BYTES, unread replies are capped per handle (MAX_REPLY_BYTES).

Requests are answered on libfuse's worker threads (see ``serve``), so a ``trace_pipe`` read
can block until events arrive while every other file keeps answering: it waits on
``Session.trace_ready``, never under the core's lock, and re-checks every PIPE_POLL seconds
whether its reader is gone (FUSE_INTERRUPT, which the kernel sends when the reader is killed)
or the file system is going away, so neither a dead reader nor an unmount waits forever.
"""
from __future__ import annotations

import ctypes
import errno
import itertools
import os
import stat
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field

import fuse as _fusepy
from fuse import FUSE, FuseOSError, Operations

from procsim.control import MAX_COMMANDS, MAX_LINE
from procsim.harness import PID_XATTR, detach, is_alive, mount_entry, state  # noqa: F401
from procsim.mm.errors import MMError
from procsim.session import CONTROL, Session

MAX_REPLY_BYTES = 256 << 10  # unread replies kept per control handle (oldest dropped first)
SNAPSHOT_BYTES = 64 << 20    # snapshots pinned by open handles, all files together
SNAPSHOTS_PER_FILE = 4       # states of one file pinned at once
AT_CLOSE = "(ran at close: the last line had no newline, so its error could not reach the writer)"
PIPE_POLL = 0.25             # seconds a blocked trace_pipe read waits between checks on its reader
KEPT_THREAD_STATES = 64      # libfuse worker threads whose Python thread state is kept (below)

_libfuse = _fusepy._libfuse
_libfuse.fuse_exited.argtypes = [ctypes.c_void_p]
_thread = threading.local()      # per thread state: empty again whenever the state is new
_kept = itertools.count()


def _keep_thread_state() -> None:
    """Keep this libfuse worker thread's Python thread state for the thread's life.

    ctypes runs a callback on a thread Python did not start between PyGILState_Ensure() and
    PyGILState_Release(): the first creates a thread state, the second, back at count 0,
    destroys it, so every FUSE request paid for a new one (and the threading.local above
    starts empty each time).  One more Ensure, never released, keeps the count above 0: the
    Release after each callback only lets go of the GIL.  libfuse 2 ends a worker only when
    more than 10 are idle, and the state of an ended thread is not freed, so at most
    KEPT_THREAD_STATES threads keep theirs (a few KiB each); later ones pay as before.
    """
    _thread.kept = True
    if next(_kept) < KEPT_THREAD_STATES:
        ctypes.pythonapi.PyGILState_Ensure()


@dataclass
class Handle:
    path: str
    snapshot: bytes | None = None       # a shared pin (ProcFS._pins) or None: re-render on read
    pin: tuple | None = None
    pending: bytearray = field(default_factory=bytearray)     # control: a partial line
    replies: deque = field(default_factory=deque)
    reply_bytes: int = 0
    failed: tuple[int, bytes, bool] | None = None  # control: (errno, the failing line's bytes, errno told) for the retry
    split_at: int = -1                          # control: where a next request of the same write(2) starts
    cursor: object = None                       # stream views (kmsg): the next record
    pipe: bool = False                  # trace_pipe: a consuming read that blocks
    lock: threading.Lock = field(default_factory=threading.Lock)   # control, trace_pipe: one request at a time


class ProcFS(Operations):
    use_ns = True

    def __init__(self, session: Session, on_ready=None, mountpoint: str | None = None):
        self.session = session
        self._on_ready = on_ready
        self._mountpoint = mountpoint
        self._dev = None                            # "major:minor" of the mount, once it is up
        self._handles: dict[int, Handle] = {}
        self._ids = itertools.count(1)
        self._hmutex = threading.Lock()             # guards _handles and the pins
        self._pins: dict[tuple, list] = {}          # (path, state) -> [bytes, handles]
        self._pinned = 0                            # bytes in _pins
        self._per_file: dict[str, int] = {}         # path -> pins
        self._uid, self._gid = os.getuid(), os.getgid()
        self._time = time.time_ns()
        self._paths_key = session.paths_key()
        self._build(session.paths())

    def __call__(self, op, *args):
        """fusepy calls every operation through here, on libfuse's worker threads."""
        if not getattr(_thread, "kept", False):
            _keep_thread_state()
        return getattr(self, op)(*args)

    def _build(self, paths: list[str]) -> None:
        """The tree, built aside and then swapped in: other threads keep reading the old one."""
        files = {"/" + p: p for p in paths}
        dirs: dict[str, list[str]] = {"/": []}
        for p in paths:
            parts = p.split("/")
            for depth in range(len(parts)):
                parent = "/" + "/".join(parts[:depth])
                child = parts[depth]
                kids = dirs.setdefault(parent.rstrip("/") or "/", [])
                if child not in kids:
                    kids.append(child)
                if depth < len(parts) - 1:
                    dirs.setdefault("/" + "/".join(parts[:depth + 1]), [])
        self._pipes = frozenset(n for n, v in self.session.views.items() if v.pipe is not None)
        self._files, self._dirs = files, dirs

    def _sync(self) -> None:
        """The tree follows the views whose files come and go (a directory per slab cache)."""
        key = self.session.paths_key()
        if key != self._paths_key:
            self._build(self.session.paths())
            self._paths_key = key

    def init(self, path):
        """Called by libfuse once the mount is up: the moment to say so (--banner)."""
        self._dev = self._mount_dev()
        if self._on_ready is not None:
            self._on_ready()

    # --- metadata ------------------------------------------------------------------------
    def getattr(self, path, fh=None):
        self._sync()
        t = self._time
        base = dict(st_uid=self._uid, st_gid=self._gid, st_atime=t, st_mtime=t, st_ctime=t)
        if path in self._dirs:
            return dict(base, st_mode=stat.S_IFDIR | 0o555, st_nlink=2)
        name = self._files.get(path)
        if name is None:
            raise FuseOSError(errno.ENOENT)
        size = 0
        view = self.session.views.get(name)
        if view is not None and view.exact_size:
            size = len(self._render(name))
        return dict(base, st_mode=stat.S_IFREG | self.session.mode(name), st_nlink=1, st_size=size)

    def readdir(self, path, fh):
        self._sync()
        if path not in self._dirs:
            raise FuseOSError(errno.ENOTDIR)
        # With a type for each entry (d_type): tools such as slabinfo skip DT_UNKNOWN entries.
        base = path.rstrip("/") + "/"
        return [".", ".."] + [(n, {"st_mode": stat.S_IFDIR if base + n in self._dirs else stat.S_IFREG}, 0)
                              for n in self._dirs[path]]

    def getxattr(self, path, name, position=0):
        if path == "/" and name == PID_XATTR:       # how `procsim umount` finds the daemon
            return str(os.getpid()).encode()
        raise FuseOSError(errno.ENODATA)

    def listxattr(self, path):
        return [PID_XATTR] if path == "/" else []

    def _writable(self, name) -> bool:
        view = self.session.views.get(name)
        return name == CONTROL or (view is not None and view.write is not None)

    def truncate(self, path, length, fh=None):
        name = self._files.get(path)
        if name == CONTROL or self._writable(name):  # `echo cmd > control` opens with O_TRUNC
            return 0
        raise FuseOSError(errno.EACCES)

    # --- open / read / write ---------------------------------------------------------------
    def open(self, path, fi):
        self._sync()
        name = self._files.get(path)
        if name is None:
            raise FuseOSError(errno.EISDIR if path in self._dirs else errno.ENOENT)
        acc = fi.flags & os.O_ACCMODE
        if acc != os.O_RDONLY and name != CONTROL and not self._writable(name):
            raise FuseOSError(errno.EACCES)
        if acc != os.O_WRONLY and not self.session.mode(name) & 0o444:   # drop_caches: 0200
            raise FuseOSError(errno.EACCES)
        fi.direct_io = 1
        with self._hmutex:
            fi.fh = next(self._ids)
            self._handles[fi.fh] = Handle(name, pipe=name in self._pipes)
        return 0

    def _writable(self, name) -> bool:
        view = self.session.views.get(name)
        return view is not None and view.write is not None

    def _handle(self, fi) -> Handle:
        with self._hmutex:
            h = self._handles.get(fi.fh)
        if h is None:
            raise FuseOSError(errno.EBADF)
        return h

    def _render(self, name: str) -> bytes:
        try:
            return self.session.render(name)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            raise FuseOSError(errno.EIO)

    def read(self, path, size, offset, fi):
        h = self._handle(fi)
        if h.path == CONTROL:                       # replies not read yet on this handle
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
        if h.path in self.session.streams:          # kmsg: one record per read, offset unused
            try:
                data, h.cursor = self.session.read_stream(h.path, h.cursor, size)
            except OSError as e:                    # EPIPE: overwritten, go on at the oldest
                h.cursor = None if e.errno == errno.EPIPE else h.cursor
                raise FuseOSError(e.errno)
            return data
        if h.pipe:
            return self._read_pipe(h, size, fi.flags)
        if offset == 0 or h.snapshot is None:
            data = self._take_snapshot(h)
        else:
            data = h.snapshot
        return data[offset:offset + size]

    # --- trace_pipe: a consuming read that blocks -------------------------------------------------
    def _read_pipe(self, h: Handle, size: int, flags: int) -> bytes:
        """The kernel's trace_pipe read (tracing_read_pipe): offsets mean nothing, each read
        takes the oldest unread lines that fit; with none, O_NONBLOCK gets EAGAIN and anyone
        else waits for a command to record some (Session.wait_trace, outside the core's lock).

        Every PIPE_POLL seconds the wait checks that someone still wants the answer: a killed
        or interrupted reader (the kernel sends FUSE_INTERRUPT, which fusepy does not pass on:
        libfuse's fuse_interrupted() says so) gets EINTR, and a file system leaving (the
        session exiting on SIGTERM/Ctrl-C, where libfuse joins every worker, or the mount
        detached by fusermount -uz, which keeps the daemon alive as long as a reader has the
        file open) ends the read at EOF.
        """
        with h.lock:                                # a line longer than the reader's buffer
            if h.pending:
                out = bytes(h.pending[:size])
                del h.pending[:size]
                return out
        while True:
            if _libfuse.fuse_interrupted():         # before taking entries nobody would get
                raise FuseOSError(errno.EINTR)
            try:
                seq, data = self.session.read_pipe(h.path, size)
            except Exception:
                traceback.print_exc(file=sys.stderr)
                raise FuseOSError(errno.EIO)
            if data:
                break
            if flags & os.O_NONBLOCK:
                raise FuseOSError(errno.EAGAIN)
            while not self.session.wait_trace(seq, PIPE_POLL):
                if _libfuse.fuse_interrupted():
                    raise FuseOSError(errno.EINTR)
                if self._leaving():
                    return b""
        if len(data) > size:
            with h.lock:
                h.pending += data[size:]
            data = data[:size]
        return data

    def _mount_dev(self) -> str | None:
        """The "major:minor" of this file system's mount (/proc/self/mountinfo), or None."""
        if self._mountpoint is None:
            return None
        from procsim.harness import _target, _unescape
        target = _target(self._mountpoint)
        try:
            with open("/proc/self/mountinfo") as f:
                for line in f:
                    fields = line.split()
                    if len(fields) > 4 and _unescape(fields[4]) == target:
                        return fields[2]
        except OSError:
            pass
        return None

    def _leaving(self) -> bool:
        """libfuse is ending the session, or no mount of this file system is left here."""
        if _libfuse.fuse_exited(_libfuse.fuse_get_context().contents.fuse):
            return True
        if self._dev is None:
            return False
        try:
            with open("/proc/self/mountinfo") as f:
                return f" {self._dev} " not in f.read()
        except OSError:
            return False

    # --- snapshots: seq_file-like, bounded ---------------------------------------------------
    def _take_snapshot(self, h: Handle) -> bytes:
        """The file now, pinned for this handle's later offsets when the budget allows.

        Handles share one pin per (path, state); the pins together hold at most SNAPSHOT_BYTES
        and SNAPSHOTS_PER_FILE states of one file.  Beyond that the handle keeps nothing and a
        read at a later offset renders the current state again (the kernel's seq_file does the
        same: it never keeps a whole copy per reader, and a reader that spans a change sees it).
        """
        try:
            key, data = self.session.snapshot(h.path)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            raise FuseOSError(errno.EIO)
        with self._hmutex:
            self._unpin(h)
            pin = self._pins.get(key)
            if pin is not None and pin[0] is not data:     # the log re-rendered under one key
                pin = None
            elif pin is None and self._pinned + len(data) <= SNAPSHOT_BYTES \
                    and self._per_file.get(h.path, 0) < SNAPSHOTS_PER_FILE:
                pin = self._pins[key] = [data, 0]
                self._pinned += len(data)
                self._per_file[h.path] = self._per_file.get(h.path, 0) + 1
            if pin is not None:
                pin[1] += 1
                h.pin, h.snapshot = key, pin[0]
        return data

    def _unpin(self, h: Handle) -> None:
        """Drop h's pin (caller holds _hmutex); the last handle of a pin frees it."""
        key, h.pin, h.snapshot = h.pin, None, None
        if key is None:
            return
        pin = self._pins[key]
        pin[1] -= 1
        if pin[1] == 0:
            del self._pins[key]
            self._pinned -= len(pin[0])
            self._per_file[key[0]] -= 1

    # --- control -------------------------------------------------------------------------------
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
        if h.path == CONTROL:
            with h.lock:
                return self._write_control(h, data, offset)
        if not self._writable(h.path):
            raise FuseOSError(errno.EACCES)
        if offset:                                  # sysctl_writes_strict: a write past 0 is ignored
            return len(data)
        try:                                        # the whole write is the value (tracefs, sysctl)
            self.session.write_view(h.path, bytes(data))
        except MMError as e:
            raise FuseOSError(e.errno)
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
            if h is not None:
                self._unpin(h)
        if h is not None and h.path == CONTROL and h.pending:
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


# --- mount helpers (procsim.harness has them; these names stay for the callers) ------------------
def recover_dead_mount(mountpoint: str) -> bool:
    """Lazily unmount a FUSE mount whose daemon died ("Transport endpoint is not connected")."""
    if state(mountpoint) != "dead":
        return False
    return detach(mountpoint)


def serve(session: Session, mountpoint: str, allow_other: bool = False, on_ready=None) -> None:
    """Mount and serve until unmounted (fusermount -u) or SIGINT/SIGTERM/SIGHUP.

    fusepy resets SIGINT to SIG_DFL around fuse_main, so libfuse's own handlers catch
    INT/TERM/HUP, leave the loop and unmount.

    libfuse's multi-threaded loop answers requests on its worker threads, so a blocked
    trace_pipe read holds one worker while the others go on (the core stays behind the
    session's one lock).  Each worker keeps its Python thread state (``_keep_thread_state``):
    without that, a callback on a thread Python did not start paid for a fresh one every time,
    which made the single-threaded loop (-s) the quicker one before (benchmarks/results.md).
    """
    opts = dict(foreground=True, default_permissions=True, fsname="procsim", subtype="procsim")
    if allow_other:
        opts["allow_other"] = True
    FUSE(ProcFS(session, on_ready, mountpoint), mountpoint, raw_fi=True, **opts)
