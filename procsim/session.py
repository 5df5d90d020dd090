"""One simulated machine as the shell sees it: Kernel + control interpreter + one lock.

The core is single threaded by design; fs.serve answers FUSE requests on more than one
thread (a single-threaded main session, a threaded one for the files whose reads block), so
every render, every command and every look-up of the file tree runs under ``Session._mutex``
(never called ``lock``: fusepy would take it for the FUSE op).  The tree (``Tree``) is built
and swapped under it too, keyed by the state it was built from, so no thread can put an
older one back.  Nothing is printed or logged under the lock: what goes wrong is logged
(``log``, the daemon's bounded log) after it is released.

A blocking reader (trace_pipe, dev/kmsg: the threaded session's reads) never waits under
the lock: each such file has a condition (``wait``), notified after a batch of commands,
a view write or a clock step (``advance``) changed the state, and when the session is
leaving (``leave``: unmount, SIGTERM), after which every wait answers False (EOF).

After an internal error of the core (an exception that is not a refusal), the kernel may
be half changed: the session refuses every later write with EIO and says why in ``log``
(reads still answer), and the journal keeps only what was acknowledged before it.

Rendered files are cached by (path, boot, generation), so the 100 reads a refreshing
slabtop makes of an unchanged state render once.

The ``--state`` journal (``Journal``) is written *before* a command runs, then applied:

1. the command lines of a batch are appended to the journal and fsynced (the intent);
   if that fails (ENOSPC, EIO, ...) the journal is cut back to where it was and nothing is
   applied: the first line fails with that errno;
2. the lines are applied in order; at the first failing line the journal is cut back to
   just after it when the failure moved the state (a ``count=K`` undone half way leaves pages
   on other pcp lists; any ENOMEM may flag a zone ZONE_BELOW_HIGH), else to just before it,
   and the lines after it (never applied) go too;
3. only then is the write acknowledged.

The core is deterministic, so replaying the journal on the same machine reproduces every
outcome, failures included: what is replayed is exactly what was acknowledged (plus, after
a crash between 1 and 3, the batch in flight, which the writer never saw acknowledged and
which ran or would have run the same way).  A journal starts with a header naming the
machine (a digest of its validated description) and the kernel profile it was written for,
is locked (flock) while a daemon uses it, is read line by line with a bounded line length,
and must be a regular file.
"""
from __future__ import annotations

import dataclasses
import errno
import fcntl
import hashlib
import logging
import os
import stat
import threading
from pathlib import Path

from procsim.mm.errors import MMError
from procsim.control import MAX_LINE, Control, Reply, split_lines
from procsim.mm.kernel import Kernel
import procsim.views as views

# Files the shell adds beside the views.
CONTROL, LOG, ALLOCATIONS = "control", "log", "allocations"
TRACE_PIPE = "sys/kernel/tracing/trace_pipe"       # read under Trace.lock, not the session lock

log = logging.getLogger("procsim.daemon")     # fs.serve routes it to a bounded file; never under _mutex


@dataclasses.dataclass(frozen=True)
class Tree:
    """The file tree of one state (names relative to the mount, "" is its root): built under
    the session lock, never changed, replaced whole (Session.tree)."""
    key: object
    files: dict            # name -> permission bits
    dirs: dict             # name -> [(child, is_dir)]
    pipes: frozenset       # consuming reads that block (trace_pipe)
    streams: frozenset     # record streams (kmsg): one record per read
    sized: frozenset       # files whose st_size is their length (DMI)
    writable: frozenset    # files a write goes to (control, sysctl, tracefs knobs)
    kinds: dict            # name -> "control", "pipe" or "stream" (absent: a plain file)


def build_tree(key, views: dict, extra: dict) -> Tree:
    files = {n: v.mode for n, v in views.items()}
    files.update(extra)
    dirs: dict[str, dict] = {"": {}}
    for name in files:
        parts = name.split("/")
        for depth in range(len(parts)):
            parent = "/".join(parts[:depth])
            dirs.setdefault(parent, {})[parts[depth]] = depth < len(parts) - 1
            if depth < len(parts) - 1:
                dirs.setdefault("/".join(parts[:depth + 1]), {})
    pipes = frozenset(n for n, v in views.items() if v.pipe is not None)
    streams = frozenset(n for n, v in views.items() if v.stream is not None)
    kinds = {CONTROL: "control", **{n: "pipe" for n in pipes}, **{n: "stream" for n in streams}}
    return Tree(key, files, {d: list(kids.items()) for d, kids in dirs.items()}, pipes, streams,
                frozenset(n for n, v in views.items() if v.exact_size),
                frozenset([CONTROL, *(n for n, v in views.items() if v.write is not None)]), kinds)


class Gone(FileNotFoundError):
    """The file is not in the state any more (a slab cache destroyed): ENOENT."""


class Leaving(Exception):
    """The session is ending (unmount, SIGTERM): a blocked reader gets EOF."""


def load_views(machine) -> dict:
    return views.files(machine)


def default_boot(machine):
    def boot():
        return Kernel(machine)
    return boot


def _command_text(line: str) -> str:
    return line.split("#", 1)[0].strip()


class Session:
    def __init__(self, machine, boot=None, views: dict | None = None, state: str | Path | None = None,
                 clock: str = "virtual", progress=None):
        self.machine = machine
        self.clock = None                          # a WallClock when the clock follows the wall
        self._static = load_views(machine) if views is None else dict(views)
        self._dynamic = views is None               # view modules whose files follow the state
        self._views = dict(self._static)
        self._views_key = None
        self._views_state = None                    # (boots, generation) _views_key was checked at
        self.streams = {p for p, v in self._static.items() if v.stream is not None}   # kmsg
        self._mutex = threading.Lock()
        self._tree: Tree | None = None
        self._tree_state = None                     # (boots, generation) the tree was checked at
        self._tree_seen = None                      # (boots, generation, tree): tree()'s lock-free look
        self._epoch = 0                             # volatile views' changes not in generation (under _mutex)
        self._wake_lock = threading.Lock()          # blocked readers: one condition per file on this lock
        self._conds: dict[str, threading.Condition] = {}
        self._seq = 0                               # changes so far (under _wake_lock)
        self.leaving = False                        # set once by leave(): every wait answers False
        self.broken_by: str | None = None           # the internal error that stopped writes
        self._cache: dict[str, tuple[tuple, bytes]] = {}
        self.state = Path(state) if state else None
        self.journal = None
        self._broken = None                     # why commands are refused (journal unusable)
        if self.state is not None:               # locked and checked before the core boots
            self.journal = Journal(self.state, journal_header(machine))
        try:
            self.control = Control(self._with_trace_readers(boot or default_boot(machine)))
            if self.journal is not None:
                self.journal.replay(self.control, progress)
            if clock == "wall":                     # procsim/wallclock.py
                from procsim.wallclock import WallClock
                self.clock = WallClock(self)
                self.clock.start()
        except BaseException:
            self.close()
            raise

    def _with_trace_readers(self, boot):
        """Every kernel this session boots (``reset`` too) lets trace_pipe readers in without
        the session lock, so a reader drains while a long command records (docs/DESIGN.md,
        "Trace ring"): a real lock around the rings' pages, and a wake-up as each page starts."""
        def booted():
            k = boot()
            k.trace.lock = threading.Lock()
            k.trace.on_page = self._trace_page
            return k
        return booted

    def _trace_page(self) -> None:
        """Trace.on_page, on the thread running a command: wake the trace_pipe readers only."""
        pipes = self._tree.pipes if self._tree is not None else frozenset()
        self._wake(only=lambda path: path in pipes)

    @property
    def kernel(self):
        return self.control.kernel

    # --- files -------------------------------------------------------------------------
    def _sync_views(self) -> tuple | None:
        """Add or drop the files of the dynamic views (a /sys/kernel/slab directory per cache)
        when the state they follow changed; returns the key the file list is for."""
        if self._dynamic:
            c = self.control
            k = c.kernel
            state = (c.boots, k.generation)
            if state == self._views_state:          # every read of an unchanged state: nothing to do
                return self._views_key
            key = (c.boots, views.dynamic_key(k))
            if key != self._views_key:
                self._views = {**self._static, **views.dynamic_files(k)}
                self._views_key = key
            self._views_state = state
        return self._views_key

    @property
    def views(self) -> dict:
        """path -> View, the dynamic views' files included as the state has them now."""
        with self._mutex:
            self._sync_views()
            return self._views

    def paths_key(self) -> tuple | None:
        """Changes whenever paths() does (the FUSE shell rebuilds its tree then)."""
        with self._mutex:
            return self._sync_views()

    def mode(self, path: str) -> int | None:
        if path == CONTROL:
            return 0o600
        if path in (LOG, ALLOCATIONS):
            return 0o444
        v = self.views.get(path)
        return v.mode if v else None

    def paths(self) -> list[str]:
        return list(self.views) + [CONTROL, LOG, ALLOCATIONS]

    def tree(self) -> Tree:
        """The file tree of the state now: one look-up per FUSE operation, atomic.  Without the
        lock while the state has not moved (every FUSE request asks: the common case)."""
        seen = self._tree_seen                     # (boots, generation, tree), replaced whole
        c = self.control
        if seen is not None and seen[1] == c.kernel.generation and seen[0] == c.boots:
            return seen[2]
        with self._mutex:
            c = self.control
            state = (c.boots, c.kernel.generation)
            t = self._tree
            if t is not None and self._tree_state == state:    # the state did not move: the same tree
                return t
            key = self._sync_views()
            if t is None or t.key != key:
                t = self._tree = build_tree(key, self._views, {CONTROL: 0o600, LOG: 0o444, ALLOCATIONS: 0o444})
            self._tree_state = state
            self._tree_seen = (*state, t)
            return t

    def snapshot(self, path: str) -> tuple[tuple, bytes]:
        """(key, bytes) of the file now; the key names the state it was rendered from, so
        open handles can share one snapshot per (path, state).  Gone if the file is not in
        the state any more."""
        hit = self._cache.get(path)                 # the common case first, without the lock: a file
        if hit is not None:                         # read again, unchanged (entries are replaced whole)
            key, c = hit[0], self.control
            if len(key) == 3 and key[2] == (c.serial if path in (LOG, ALLOCATIONS) else c.kernel.generation) \
                    and key[1] == c.boots:
                return hit
        with self._mutex:
            c = self.control
            hit = self._cache.get(path)
            if hit is not None:
                key = hit[0]
                if len(key) == 3 and key[1] == c.boots and \
                        key[2] == (c.serial if path in (LOG, ALLOCATIONS) else c.kernel.generation):
                    return hit
            self._sync_views()
            view = self._views.get(path)
            if view is None and path not in (LOG, ALLOCATIONS):
                raise Gone(errno.ENOENT, path)
            if view is not None and view.volatile:      # tracefs: keyed by what moves it, never cached
                tr = getattr(c.kernel, "trace", None)
                key = (path, c.boots, c.kernel.generation, self._epoch, getattr(tr, "written", None))
                hit = self._cache.get(path)
                if hit and hit[0] == key:
                    return hit
                data = view.render(c.kernel)
                out = key, data if isinstance(data, bytes) else data.encode()
                if view.pipe is None:                   # a pipe's render consumes: never reused
                    self._cache[path] = out
                return out
            key = (path, c.boots, c.serial if path in (LOG, ALLOCATIONS) else c.kernel.generation)
            hit = self._cache.get(path)
            if hit and hit[0] == key:
                return hit
            if path == LOG:
                data = c.render_log()
            elif path == ALLOCATIONS:
                data = c.render_allocations()
            else:
                data = self._views[path].render(c.kernel)
                if isinstance(data, str):
                    data = data.encode()
            self._cache[path] = (key, data)
            return key, data

    def render(self, path: str) -> bytes:
        """The file's current bytes; rendered at most once per state."""
        return self.snapshot(path)[1]

    def read_stream(self, path: str, cursor, size: int):
        """One read() of a stream view (kmsg): (bytes, next cursor); OSError(errno) on failure."""
        with self._mutex:
            self._sync_views()
            view = self._views.get(path)
            if view is None:
                raise Gone(errno.ENOENT, path)
            try:
                return view.stream(self.control.kernel, cursor, size)
            except Exception as e:
                code = getattr(e, "errno", None)
                raise OSError(code if isinstance(code, int) and code > 0 else errno.EIO, str(e)) from None

    def write_view(self, path: str, data: bytes) -> None:
        """A write to a writable view; MMError for a bad value, nothing changed.  A view that
        answers with a control line (compact_memory, nodeN/compact, sysctl) has it run as a command:
        journaled first, logged, replayed after a restart."""
        with self._mutex:
            self._sync_views()
            view = self._views.get(path)
            if view is None:
                raise Gone(errno.ENOENT, path)
            self._epoch += 1                        # a tracefs knob moves what volatile views show
            line = view.write(self.control.kernel, data)
        self._wake()
        if line is not None:
            replies = self.execute([line])
            if replies and replies[-1].errno:
                raise MMError(replies[-1].errno, replies[-1].text)

    def read_pipe(self, path: str, size: int) -> tuple[int, bytes]:
        """(change count before the read, up to size bytes consumed from the pipe view at
        path).  Waiting for the count to move past that value (``wait``) cannot miss an event
        recorded after this read."""
        seq = self.seq()
        view = self._static.get(path)
        if view is not None and view.pipe is not None and path.endswith(TRACE_PIPE):
            data = view.pipe(self.control.kernel, size)     # Trace.lock only: never waits for a command
            if data:
                self._epoch += 1                    # `trace` no longer shows what was consumed
            return seq, data
        with self._mutex:
            self._sync_views()
            view = self._views.get(path)
            if view is None or view.pipe is None:
                raise Gone(errno.ENOENT, path)
            data = view.pipe(self.control.kernel, size)
            if data:
                self._epoch += 1                    # `trace` no longer shows what was consumed
            return seq, data

    # --- blocked readers ------------------------------------------------------------------
    def seq(self) -> int:
        with self._wake_lock:
            return self._seq

    def _cond(self, path: str) -> threading.Condition:
        with self._wake_lock:
            c = self._conds.get(path)
            if c is None:
                c = self._conds[path] = threading.Condition(self._wake_lock)
            return c

    def wait(self, path: str, seq: int, timeout: float | None = None, stop=None) -> bool:
        """Block (never under the core's lock) until the state changed after the change count
        was seq (True), or the session is leaving, or stop() says so (False).  stop is asked
        whenever the file's condition is notified (``wake(interrupt=True)`` notifies every
        one without a change: a reader's FUSE request was interrupted).  No timer: an idle
        reader costs nothing.  timeout=None waits as long as it takes."""
        c = self._cond(path)
        with c:
            while self._seq == seq:
                if self.leaving or (stop is not None and stop()):
                    return False
                if not c.wait(timeout) and timeout is not None:
                    return self._seq != seq
            return not self.leaving

    def _marks(self) -> tuple:
        """(boots, generation, trace events written) now (caller holds _mutex)."""
        c = self.control
        return c.boots, c.kernel.generation, getattr(getattr(c.kernel, "trace", None), "written", None)

    def _wake_if(self, before: tuple, after: tuple) -> None:
        """Wake the readers whose files can have moved: trace_pipe readers only when events
        were recorded (or the kernel rebooted), the others (kmsg) whenever the state moved;
        so a command that traces nothing does not wake a thousand idle trace_pipe readers."""
        if before == after:
            return
        rebooted = before[0] != after[0]
        pipes = self._tree.pipes if self._tree is not None else frozenset()
        self._wake(only=None if rebooted or before[2] != after[2] else
                   (lambda path: path not in pipes))

    def _wake(self, interrupt: bool = False, only=None) -> None:
        """Wake the blocked readers (only those whose file only(path) accepts): the state
        moved (or, interrupt, a reader may have gone)."""
        with self._wake_lock:
            if not interrupt:
                self._seq += 1
            for path, c in self._conds.items():
                if only is None or only(path):
                    c.notify_all()

    def wake(self, interrupt: bool = False) -> None:
        self._wake(interrupt)

    def leave(self) -> None:
        """The mount is going: every blocked and later wait answers False (the reader's EOF)."""
        with self._wake_lock:
            self.leaving = True
            for c in self._conds.values():
                c.notify_all()

    def advance(self, now_ns: int) -> None:
        """The live clock's hook: the shell's timer thread calls this between commands with
        the monotonic time since the mount; the core runs its background work (kswapd, the
        kernel threads) up to it, under the lock like a command, and blocked readers (dmesg
        -w, trace_pipe) are woken.  Without a core API for it (``Control.advance_to``), a no-op."""
        step = getattr(self.control, "advance_to", None)
        if step is not None:
            self.kernel_work(lambda: step(now_ns))

    def kernel_work(self, fn):
        """Run fn() -- the kernel's own work between commands (a clock step) -- under the lock
        like a command, then wake the readers whose files it moved (dmesg -w, trace_pipe),
        outside the lock.  Returns (fn's result, whether the state moved)."""
        with self._mutex:
            before = self._marks()
            out = fn()
            after = self._marks()
        self._wake_if(before, after)
        return out, before != after

    # --- commands ------------------------------------------------------------------------
    def execute(self, lines: list[str]) -> list[Reply]:
        """Apply lines in order; stop at the first failure (its reply is the last one)."""
        return self.run_lines(lines)[0]

    def execute_text(self, text: str) -> list[Reply]:
        return self.execute(split_lines(text))

    def run_lines(self, lines: list[str]) -> tuple[list[Reply], int]:
        """Apply lines in order, journaling first (see the module docstring).  Returns the
        replies and how many lines were done; when that is less than len(lines), the line at
        that index failed (its reply is the last) and nothing after it ran."""
        replies: list[Reply] = []
        done = 0
        while done < len(lines):
            end = done                         # a batch ends after a reset (it empties the journal)
            while end < len(lines):
                end += 1
                if _command_text(lines[end - 1]) == "reset":
                    break
            with self._mutex:
                before = self._marks()
                ok = self._run_batch(lines, done, end, replies)
                after = self._marks()
                c = self.control
                internal, c.internal_error = getattr(c, "internal_error", None), None
            if internal is not None:           # logged now, outside the lock
                log.error("internal error in the core running %r; writes refused from now on\n%s",
                          internal[0], internal[1])
            self._wake_if(before, after)       # wake blocked readers (trace_pipe, kmsg)
            done += ok
            if done < end:
                break
        return replies, done

    def _run_batch(self, lines, start, end, replies) -> int:
        j = self.journal
        kept = [(i, _command_text(lines[i])) for i in range(start, end)]
        kept = [(i, t) for i, t in kept if t and t != "help"]
        marks = None
        stamp = ""
        if self.clock is not None:                  # the wall's time first; the journal says when
            self.clock.advance()
            stamp = f"@{self.control.kernel.now_ns} "
        if kept and (j is not None or self._broken is not None):
            refusal = self._broken
            if refusal is None and j is not None:
                try:
                    marks = j.append([(stamp if n == 0 else "") + t for n, (_, t) in enumerate(kept)])
                except OSError as e:
                    refusal = (e.errno or errno.EIO,
                               f"--state {j.path}: {e.strerror or e}; the command was not applied")
            if refusal is not None:             # the first command fails; blank lines and help before it run
                first = kept[0][0]
                for i in range(start, first):
                    r = self.control.run(lines[i])
                    if r is not None:
                        replies.append(r)
                code, why = refusal
                text = f"error {errno.errorcode.get(code, code)}: {why}"
                self.control.serial += 1
                self.control.note(kept[0][1], text)
                replies.append(Reply(kept[0][1], text, code))
                return first - start
        ends = dict(zip((i for i, _ in kept), marks or (), strict=False))
        for i in range(start, end):
            c = self.control
            before = (c.boots, c.kernel.generation)
            r = c.run(lines[i])
            if r is None:
                continue
            replies.append(r)
            if r.errno:
                internal = getattr(c, "internal_error", None)
                if internal is not None:        # a bug in the core: the state may be half changed
                    self.broken_by = internal[0]
                    self._broken = (errno.EIO, f"refused: an internal error of the core in {internal[0]!r} "
                                               "may have left the state half changed (reads still answer; "
                                               "the daemon's log has the traceback); restart the daemon")
                    c.note("-", f"error EIO: {self._broken[1]}")
                if j is not None and i in ends:
                    changed = before != (c.boots, c.kernel.generation) or r.errno == errno.ENOMEM
                    self._cut(ends[i][0] if internal is not None else ends[i][1] if changed else ends[i][0])
                return i - start
            if j is not None and _command_text(lines[i]) == "reset":
                self._cut(j.header_end, compact=True)
        return end - start

    def _cut(self, offset: int, compact: bool = False) -> None:
        try:
            self.journal.cut(offset)
        except OSError as e:
            if compact:                         # the journal still replays (reset included)
                return
            self._broken = (errno.EIO, f"--state {self.journal.path} could not be cut back after "
                                       f"a failed command ({e.strerror or e}); restart the daemon")
            self.control.note("-", f"error EIO: {self._broken[1]}")

    def note(self, line: str, reply: str) -> None:
        """Log a write the shell refused before it became lines (not UTF-8, overlong)."""
        with self._mutex:
            self.control.serial += 1
            self.control.note(line, reply)

    def annotate_last(self, suffix: str) -> None:
        """Add to the newest log entry (e.g. that its line ran at close)."""
        with self._mutex:
            log = self.control.log
            if log:
                log[-1] += suffix
            self._cache.pop(LOG, None)          # its key (the command serial) did not move

    def close(self) -> None:
        """Release the journal's descriptor and lock.  A session that had one refuses every
        later command (EBADF) rather than apply it without journaling it."""
        if self.clock is not None:
            self.clock.stop()
            self.clock = None
        if self.journal is not None:
            self.journal.close()
            self._broken = (errno.EBADF, f"--state {self.journal.path}: the session is closed;"
                                         " the command was not applied")


class StateError(Exception):
    pass


# --- the journal ----------------------------------------------------------------------------
JOURNAL_MAGIC = "# procsim journal 2"
MAX_JOURNAL_LINE = 4 * MAX_LINE             # bytes; a journaled command is at most MAX_LINE chars


def machine_digest(machine) -> str:
    """sha256 of the validated description (every field that compares, not the file's path)."""
    def canon(x):
        if dataclasses.is_dataclass(x):
            return (type(x).__name__,) + tuple((f.name, canon(getattr(x, f.name)))
                                               for f in dataclasses.fields(x) if f.compare and f.name != "source")
        if isinstance(x, (tuple, list)):
            return tuple(canon(v) for v in x)
        if isinstance(x, dict):
            return tuple(sorted((k, canon(v)) for k, v in x.items()))
        return x
    return hashlib.sha256(repr(canon(machine)).encode()).hexdigest()[:16]


def journal_header(machine) -> str:
    name = getattr(machine, "name", None) or "-"
    digest = machine_digest(machine) if machine is not None else "-"
    return f"{JOURNAL_MAGIC} machine={name} sha256={digest} profile={getattr(machine, 'kernel', '-')}\n"


_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket"}


class Journal:
    """The --state file, open, locked and checked: see the module docstring."""

    def __init__(self, path: Path, header: str):
        self.path = path
        self.header = header
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        except OSError as e:
            raise StateError(f"{path}: {e.strerror}") from None
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise StateError(f"{path}: not a regular file ({_KINDS.get(stat.S_IFMT(st.st_mode), 'special')});"
                             " --state needs a regular file")
        try:               # O_NONBLOCK: a FIFO swapped in after the stat must not hang the open
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise StateError(f"{path}: {e.strerror}"
                             + (" (immutable or append-only?)" if e.errno == errno.EPERM else "")) from None
        try:
            st = os.fstat(self.fd)
            if not stat.S_ISREG(st.st_mode):
                raise StateError(f"{path}: not a regular file; --state needs a regular file")
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StateError(f"{path}: in use by another procsim daemon (the journal is locked)") from None
            os.set_blocking(self.fd, True)
            self.end = st.st_size
            self.header_end = 0
        except BaseException:
            os.close(self.fd)
            raise

    def _lines(self):
        """(line number, start offset, bytes without the newline or None if torn) per line."""
        with os.fdopen(os.dup(self.fd), "rb") as f:
            f.seek(0)
            start, n = 0, 0
            while True:
                raw = f.readline(MAX_JOURNAL_LINE + 1)
                if not raw:
                    return
                n += 1
                if not raw.endswith(b"\n"):
                    if len(raw) > MAX_JOURNAL_LINE:
                        raise StateError(f"{self.path}:{n}: line longer than {MAX_JOURNAL_LINE} bytes"
                                         " (not a procsim journal)")
                    yield n, start, None
                    return
                yield n, start, raw[:-1]
                start += len(raw)

    def replay(self, control: Control, progress=None) -> None:
        """Check the header and run the journal again.  A last line without its newline was
        torn by a crash before it was acknowledged: it is cut off rather than run.
        ``progress(n, offset, size, line)``, when given, is told of each line before it runs
        (the mount reports a long replay with it; procsim.cli)."""
        p = self.path
        end = 0
        for n, start, raw in self._lines():
            if progress is not None:
                progress(n, start, self.end, raw)
            if raw is None:                      # torn: never acknowledged
                break
            end = start + len(raw) + 1
            try:
                line = raw.decode()
            except UnicodeDecodeError as e:
                raise StateError(f"{p}:{n}: not a procsim journal (not UTF-8 text at byte {e.start})") from None
            if n == 1:
                self._check_header(line)
                self.header_end = end
                continue
            if line.startswith("@"):               # @NS: the batch ran at NS on the simulated clock
                at, _, line = line[1:].partition(" ")
                if not at.isdigit():
                    raise StateError(f"{p}:{n}: '@{at}' is not a time in nanoseconds")
                control.kernel.advance_to(int(at))
            before = (control.boots, control.kernel.generation)
            r = control.run(line)
            if r is None or not r.errno:
                continue
            changed = before != (control.boots, control.kernel.generation)
            if not changed and r.errno != errno.ENOMEM:
                raise StateError(f"{p}:{n}: {_command_text(line)}: {r.text} (a journal keeps no command"
                                 " that failed without changing the state)")
        if end < self.end or self.header_end == 0:
            self.cut(end)
        if self.header_end == 0:
            self.header_end = self.append([self.header.rstrip("\n")])[0][1]

    def _check_header(self, line: str) -> None:
        if not line.startswith(JOURNAL_MAGIC + " "):
            raise StateError(f"{self.path}:1: not a procsim journal (its first line is not "
                             f"'{JOURNAL_MAGIC} machine=... sha256=... profile=...')")
        if line + "\n" != self.header:
            got = dict(w.split("=", 1) for w in line[len(JOURNAL_MAGIC):].split() if "=" in w)
            want = dict(w.split("=", 1) for w in self.header[len(JOURNAL_MAGIC):].split())
            raise StateError(f"{self.path}:1: written for machine {got.get('machine')} "
                             f"(sha256={got.get('sha256')}, profile {got.get('profile')}), not for "
                             f"{want['machine']} (sha256={want['sha256']}, profile {want['profile']})")

    def append(self, lines: list[str]) -> list[tuple[int, int]]:
        """Write lines at the end and fsync; (start, end) offset of each.  On any error the
        file is cut back to where it was and OSError is raised."""
        data = "".join(l + "\n" for l in lines).encode()
        start = self.end
        try:
            view = memoryview(data)
            off = start
            while view:
                n = os.pwrite(self.fd, view, off)
                view, off = view[n:], off + n
            os.fsync(self.fd)
        except OSError:
            try:
                self.cut(start)
            except OSError:
                pass
            raise
        self.end = start + len(data)
        out, pos = [], start
        for l in lines:
            n = len(l.encode()) + 1
            out.append((pos, pos + n))
            pos += n
        return out

    def cut(self, offset: int) -> None:
        os.ftruncate(self.fd, offset)
        os.fsync(self.fd)
        self.end = offset

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)               # drops the flock
            self.fd = -1
