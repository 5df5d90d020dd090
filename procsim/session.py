"""One simulated machine as the shell sees it: Kernel + control interpreter + one lock.

The core is single threaded by design.  fs.serve runs libfuse's loop in one thread, but
nothing here counts on it: every render and every command runs under ``Session._mutex``
(never called ``lock``: fusepy would take it for the FUSE op).
Rendered files are cached by (path, boot, generation), so the 100 reads a refreshing
slabtop makes of an unchanged state render once.
"""
from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

from procsim.control import Control, Reply

# Files the shell adds beside the views.
CONTROL, LOG, ALLOCATIONS = "control", "log", "allocations"


def load_views(machine) -> dict:
    from procsim import views
    return views.files(machine)


def default_boot(machine):
    def boot():
        from procsim.mm.kernel import Kernel
        return Kernel(machine)
    return boot


class Session:
    def __init__(self, machine, boot=None, views: dict | None = None, state: str | Path | None = None):
        self.machine = machine
        self.views = load_views(machine) if views is None else dict(views)
        self.streams = {p for p, v in self.views.items() if getattr(v, "stream", None)}
        self.control = Control(boot or default_boot(machine))
        self._mutex = threading.Lock()
        self._cache: dict[str, tuple[tuple, bytes]] = {}
        self.state = Path(state) if state else None
        self._journal = None                    # the --state file, open for appending
        if self.state is not None:
            if self.state.exists():
                self._replay(self.state)
            self._journal = open(self.state, "a", encoding="utf-8")

    @property
    def kernel(self):
        return self.control.kernel

    # --- files -------------------------------------------------------------------------
    def mode(self, path: str) -> int | None:
        if path == CONTROL:
            return 0o600
        if path in (LOG, ALLOCATIONS):
            return 0o444
        v = self.views.get(path)
        return v.mode if v else None

    def paths(self) -> list[str]:
        return list(self.views) + [CONTROL, LOG, ALLOCATIONS]

    def render(self, path: str) -> bytes:
        """The file's current bytes; rendered at most once per state."""
        with self._mutex:
            c = self.control
            if path in (LOG, ALLOCATIONS):
                key = (c.boots, c.serial)
            else:
                key = (c.boots, c.kernel.generation)
            hit = self._cache.get(path)
            if hit and hit[0] == key:
                return hit[1]
            if path == LOG:
                data = c.render_log()
            elif path == ALLOCATIONS:
                data = c.render_allocations()
            else:
                data = self.views[path].render(c.kernel)
                if isinstance(data, str):
                    data = data.encode()
            self._cache[path] = (key, data)
            return data

    def read_stream(self, path: str, cursor, size: int):
        """One read() of a stream view (kmsg): (bytes, next cursor); OSError(errno) on failure."""
        with self._mutex:
            try:
                return self.views[path].stream(self.control.kernel, cursor, size)
            except Exception as e:
                code = getattr(e, "errno", None)
                raise OSError(code if isinstance(code, int) and code > 0 else errno.EIO, str(e)) from None

    def write_view(self, path: str, data: bytes) -> None:
        """A write to a writable view (sysctl) runs as the control line the view makes of it;
        OSError(errno) when the command fails (nothing changed)."""
        replies = self.execute([self.views[path].write(data)])
        if replies and replies[-1].errno:
            raise OSError(replies[-1].errno, replies[-1].text)

    # --- commands ------------------------------------------------------------------------
    def execute(self, lines: list[str]) -> list[Reply]:
        """Apply lines in order; stop at the first failure (its reply is the last one)."""
        replies = []
        journaled = False
        try:
            for line in lines:
                with self._mutex:
                    gen = (self.control.boots, self.control.kernel.generation)
                    r = self.control.run(line)
                    if r is not None and self._journal is not None:
                        journaled |= self._record(r, gen != (self.control.boots, self.control.kernel.generation))
                if r is None:
                    continue
                replies.append(r)
                if r.errno:
                    break
        finally:
            if journaled:               # on disk before the write() that sent them returns
                os.fsync(self._journal.fileno())
        return replies

    def note(self, line: str, reply: str) -> None:
        """Log a write the shell refused before it became lines (not UTF-8, overlong)."""
        with self._mutex:
            self.control.serial += 1
            self.control.note(line, reply)

    def execute_text(self, text: str) -> list[Reply]:
        return self.execute(text.splitlines())

    # --- persistence -------------------------------------------------------------------
    def _record(self, r: Reply, changed: bool) -> bool:
        """--state: the journal of the commands since the last reset; replaying them on the
        deterministic core rebuilds exactly this state (same IDs, same pfns) after a restart.

        A failed command that still moved the state (a ``count=K`` undone half way leaves
        its pages on other pcp lists; any ENOMEM may set a zone's ZONE_BELOW_HIGH flag without
        a generation bump) is kept too, marked ``# error``, so replay repeats it.
        Returns whether the journal was written (the caller fsyncs once per write()).
        """
        j = self._journal
        if r.line == "reset" and not r.errno:
            j.seek(0)
            j.truncate()
        elif r.line == "help" or (r.errno and not changed and r.errno != errno.ENOMEM):
            return False
        else:
            j.write(r.line + (f"  # {_ERROR_MARK}\n" if r.errno else "\n"))
        j.flush()
        return True

    def _replay(self, path: Path) -> None:
        """Run the journal again.  A last line without its newline was torn by a crash before
        it was acknowledged: it is dropped (and cut from the file) rather than run."""
        data = path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            with open(path, "r+b") as f:
                f.truncate(end)
                os.fsync(f.fileno())
        try:
            text = data[:end].decode()
        except UnicodeDecodeError as e:
            raise StateError(f"{path}: not a procsim journal (not UTF-8 text at byte {e.start})") from None
        for n, line in enumerate(text.splitlines(), 1):
            r = self.control.run(line)
            if r is None:
                continue
            if bool(r.errno) != line.rstrip().endswith(f"# {_ERROR_MARK}"):
                raise StateError(f"{path}:{n}: {line.split('#')[0].strip()}: {r.text}"
                                 + (" (it failed when it was written, but not now)" if not r.errno else ""))

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None


_ERROR_MARK = "error: failed, but changed the state"


class StateError(Exception):
    pass
