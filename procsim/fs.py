"""The FUSE filesystem: a Session's views as procfs-like files, plus ``control``.

procfs semantics, because that is what procps, libnuma and node_exporter rely on
(peers.md §0, §7):

* every file is opened with direct_io, so a file with st_size 0 is still read to EOF and
  the page cache never serves stale bytes;
* a read at offset 0 takes a fresh snapshot for that open handle and later offsets are
  served from it (slabtop and free keep the fd and lseek(0) on every refresh);
* files stay seekable (procps 4.0.2 treats a failing lseek as fatal);
* st_size is 0 except for binary views that need their exact size (DMI tables).

``control`` (0600) takes commands (procsim.control); a failing command fails the write()
with its errno, and reading the same handle returns the replies not yet read.
"""
from __future__ import annotations

import errno
import itertools
import os
import stat
import subprocess
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field

from fuse import FUSE, FuseOSError, Operations

from procsim.control import MAX_COMMANDS, MAX_LINE
from procsim.session import CONTROL, Session

MAX_REPLIES = 10000          # unread replies kept per control handle
PID_XATTR = "user.procsim.pid"


@dataclass
class Handle:
    path: str
    snapshot: bytes | None = None
    pending: bytearray = field(default_factory=bytearray)     # control: a partial line
    replies: deque = field(default_factory=lambda: deque(maxlen=MAX_REPLIES))
    cursor: object = None                                      # stream views (kmsg): next record


class ProcFS(Operations):
    use_ns = True

    def __init__(self, session: Session, on_ready=None):
        self.session = session
        self._on_ready = on_ready
        self._handles: dict[int, Handle] = {}
        self._ids = itertools.count(1)
        self._hmutex = threading.Lock()             # guards _handles only
        self._uid, self._gid = os.getuid(), os.getgid()
        self._time = time.time_ns()
        self._files = {"/" + p: p for p in session.paths()}
        self._dirs: dict[str, list[str]] = {"/": []}
        for p in session.paths():
            parts = p.split("/")
            for depth in range(len(parts)):
                parent = "/" + "/".join(parts[:depth])
                child = parts[depth]
                kids = self._dirs.setdefault(parent.rstrip("/") or "/", [])
                if child not in kids:
                    kids.append(child)
                if depth < len(parts) - 1:
                    self._dirs.setdefault("/" + "/".join(parts[:depth + 1]), [])

    def init(self, path):
        """Called by libfuse once the mount is up: the moment to say so (--banner)."""
        if self._on_ready is not None:
            self._on_ready()

    # --- metadata ------------------------------------------------------------------------
    def getattr(self, path, fh=None):
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
        if path not in self._dirs:
            raise FuseOSError(errno.ENOTDIR)
        return [".", ".."] + self._dirs[path]

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
        if self._writable(self._files.get(path)):   # `echo cmd > control` opens with O_TRUNC
            return 0
        raise FuseOSError(errno.EACCES)

    # --- open / read / write ---------------------------------------------------------------
    def open(self, path, fi):
        name = self._files.get(path)
        if name is None:
            raise FuseOSError(errno.EISDIR if path in self._dirs else errno.ENOENT)
        acc = fi.flags & os.O_ACCMODE
        if acc != os.O_RDONLY and not self._writable(name):
            raise FuseOSError(errno.EACCES)
        if acc != os.O_WRONLY and not self.session.mode(name) & 0o444:   # drop_caches: 0200
            raise FuseOSError(errno.EACCES)
        fi.direct_io = 1
        with self._hmutex:
            fi.fh = next(self._ids)
            self._handles[fi.fh] = Handle(name)
        return 0

    def _handle(self, fi) -> Handle:
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
            out = bytearray()
            while h.replies and len(out) + len(h.replies[0]) <= size:
                out += h.replies.popleft()
            if not out and h.replies:               # one reply longer than the buffer
                first = h.replies.popleft()
                out, rest = first[:size], first[size:]
                h.replies.appendleft(rest)
            return bytes(out)
        if h.path in self.session.streams:          # kmsg: one record per read, offset unused
            try:
                data, h.cursor = self.session.read_stream(h.path, h.cursor, size)
            except OSError as e:                    # EPIPE: overwritten, go on at the oldest
                h.cursor = None if e.errno == errno.EPIPE else h.cursor
                raise FuseOSError(e.errno)
            return data
        if offset == 0 or h.snapshot is None:
            h.snapshot = self._render(h.path)
        return h.snapshot[offset:offset + size]

    def write(self, path, data, offset, fi):
        h = self._handle(fi)
        if h.path != CONTROL:
            if not self._writable(h.path):
                raise FuseOSError(errno.EACCES)
            if offset:                              # sysctl_writes_strict: a write past 0 is ignored
                return len(data)
            try:
                self.session.write_view(h.path, data)
            except OSError as e:
                raise FuseOSError(e.errno)
            return len(data)
        h.pending += data
        cut = h.pending.rfind(b"\n") + 1
        text = bytes(h.pending[:cut])
        del h.pending[:cut]
        overlong = len(h.pending) > MAX_LINE
        if overlong:                # never buffer more than a line; the next write starts afresh
            head = bytes(h.pending[:80]).decode(errors="replace")
            h.pending.clear()
        if text:
            self._apply(h, text)
        if overlong:
            self._refuse(h, head, f"line longer than {MAX_LINE} bytes")
        return len(data)

    def _reply(self, h: Handle, text: str) -> None:
        h.replies.append((text + "\n").encode())

    def _refuse(self, h: Handle, line: str, message: str):
        """A write refused before it became lines: reply, log, EINVAL."""
        reply = f"error EINVAL: {message}"
        self._reply(h, reply)
        self.session.note(line, reply)
        raise FuseOSError(errno.EINVAL)

    def _apply(self, h: Handle, text: bytes) -> None:
        """Run complete lines; raise the first failure's errno (the rest are dropped)."""
        try:
            lines = text.decode().splitlines()
        except UnicodeDecodeError as e:
            h.pending.clear()
            self._refuse(h, text[:80].decode(errors="replace"), f"not UTF-8 text (byte {e.start})")
        if len(lines) > MAX_COMMANDS:
            h.pending.clear()
            self._refuse(h, lines[0], f"more than {MAX_COMMANDS} lines in one write")
        for r in self.session.execute(lines):
            self._reply(h, r.text)
            if r.errno:
                h.pending.clear()
                raise FuseOSError(r.errno)

    def flush(self, path, fi):
        """A last line without a newline runs at close, and its error reaches close()."""
        h = self._handles.get(fi.fh)
        if h is not None and h.path == CONTROL and h.pending:
            text = bytes(h.pending)
            h.pending.clear()
            self._apply(h, text + b"\n")
        return 0

    def release(self, path, fi):
        try:
            self.flush(path, fi)
        except FuseOSError:
            pass
        finally:
            with self._hmutex:
                self._handles.pop(fi.fh, None)
        return 0


# --- mount helpers ---------------------------------------------------------------------------
def _unescape(field: str) -> str:
    """/proc/self/mounts escapes space, tab, newline and backslash as octal."""
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def mount_entry(mountpoint: str) -> str | None:
    """The fs type of whatever is mounted at mountpoint (by /proc/self/mounts), or None.

    ``mountpoint -q`` says "not a mountpoint" for a dead FUSE mount; the table does not lie.
    """
    target = os.path.realpath(mountpoint)
    try:
        with open("/proc/self/mounts") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    found = None
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and _unescape(parts[1]) == target:
            found = parts[2]
    return found


def is_alive(mountpoint: str) -> bool:
    """statfs always reaches the daemon; stat may be answered from the attribute cache."""
    try:
        os.statvfs(mountpoint)
        return True
    except OSError:
        return False


def recover_dead_mount(mountpoint: str) -> bool:
    """Lazily unmount a FUSE mount whose daemon died ("Transport endpoint is not connected")."""
    if mount_entry(mountpoint) is None or is_alive(mountpoint):
        return False
    for cmd in (["fusermount", "-uz", mountpoint], ["umount", "-l", mountpoint]):
        try:
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        except FileNotFoundError:
            continue
        if mount_entry(mountpoint) is None:
            return True
    return mount_entry(mountpoint) is None


def serve(session: Session, mountpoint: str, allow_other: bool = False, on_ready=None) -> None:
    """Mount and serve until unmounted (fusermount -u) or SIGINT/SIGTERM/SIGHUP.

    fusepy resets SIGINT to SIG_DFL around fuse_main, so libfuse's own handlers catch
    INT/TERM/HUP, leave the loop and unmount.

    One thread serves every request (libfuse's -s): the core is behind one lock anyway, and
    a callback on one of libfuse's own worker threads pays for a fresh Python thread state
    each time; an open+read+close is ~10 % quicker this way on the 2-vCPU benchmark VM.
    """
    opts = dict(foreground=True, nothreads=True, default_permissions=True,
                fsname="procsim", subtype="procsim")
    if allow_other:
        opts["allow_other"] = True
    FUSE(ProcFS(session, on_ready), mountpoint, raw_fi=True, **opts)
