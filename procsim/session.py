"""One simulated machine as the shell sees it: Kernel + control interpreter + one lock.

The core is single threaded by design; FUSE is not.  Every render and every command runs
under ``Session._mutex`` (never called ``lock``: fusepy would take it for the FUSE op).
Rendered files are cached by (path, boot, generation), so the 100 reads a refreshing
slabtop makes of an unchanged state render once.
"""
from __future__ import annotations

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
        self.control = Control(boot or default_boot(machine))
        self._mutex = threading.Lock()
        self._cache: dict[str, tuple[tuple, bytes]] = {}
        self.state = Path(state) if state else None
        if self.state is not None and self.state.exists():
            self._replay(self.state)

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

    # --- commands ------------------------------------------------------------------------
    def execute(self, lines: list[str]) -> list[Reply]:
        """Apply lines in order; stop at the first failure (its reply is the last one)."""
        replies = []
        for line in lines:
            with self._mutex:
                r = self.control.run(line)
                if r is not None and not r.errno:
                    self._record(r)
            if r is None:
                continue
            replies.append(r)
            if r.errno:
                break
        return replies

    def note(self, line: str, reply: str) -> None:
        """Log a write the shell refused before it became lines (not UTF-8, overlong)."""
        with self._mutex:
            self.control.serial += 1
            self.control.note(line, reply)

    def execute_text(self, text: str) -> list[Reply]:
        return self.execute(text.splitlines())

    # --- persistence -------------------------------------------------------------------
    def _record(self, r: Reply) -> None:
        """--state: keep the successful commands since the last reset; replaying them
        on the deterministic core rebuilds exactly this state after a restart."""
        if self.state is None:
            return
        if r.line == "reset":
            self.state.write_text("")
        elif r.line != "help":
            with self.state.open("a") as f:
                f.write(r.line + "\n")

    def _replay(self, path: Path) -> None:
        state, self.state = self.state, None          # replaying must not append to itself
        try:
            for n, line in enumerate(path.read_text().splitlines(), 1):
                r = self.control.run(line)
                if r is not None and r.errno:
                    raise StateError(f"{path}:{n}: {r.text}")
        finally:
            self.state = state


class StateError(Exception):
    pass
