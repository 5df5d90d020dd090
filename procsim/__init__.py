"""procsim as a library: simulated Linux machines whose /proc and /sys files you can render.

    >>> import procsim
    >>> procsim.machines()
    ['big-4s-1t', 'seed-server', 'seed-vm', 'seed-vm-5.4', 'tiny']
    >>> sim = procsim.boot("seed-vm")
    >>> sim.run("kmem_cache_create my_obj 200", "kmem_cache_alloc my_obj count=1000")
    ['ok my_obj objsize=200 objperslab=20 pagesperslab=1', 'ok 1-1000']
    >>> sim.render("slabinfo")[:23]
    b'slabinfo - version: 2.1'
    >>> sim.write_tree("/tmp/fixture")        # /tmp/fixture/proc/zoneinfo, /tmp/fixture/sys/devices/...

A machine is named (one shipped inside the package, :func:`machines`) or given as the path of
a YAML description (docs/machine.md).  The simulation is deterministic: the same
machine and the same commands give the same bytes, on any host.  The CLI (``procsim render``,
``procsim fixtures``), the FUSE daemon and the pytest plugin (:mod:`procsim.pytest_plugin`)
all stand on the same :class:`~procsim.session.Session` this wraps.

Everything here imports lazily: pytest loads the plugin, and with it this module, in every
project where procsim is installed.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:                                    # pragma: no cover
    from procsim.machine import Machine

__version__ = "0.1.0"
KERNEL = "6.18"                                      # the kernel whose rules and file formats are simulated
DEFAULT_MACHINE = "seed-server"

__all__ = ["KERNEL", "DEFAULT_MACHINE", "CommandError", "Simulation", "boot", "load", "machines", "tree_path"]


def machines() -> list[str]:
    """Names of the machines shipped with procsim, e.g. ``['big-4s-1t', 'seed-server', 'seed-vm', 'seed-vm-5.4', 'tiny']``."""
    from procsim.machine import shipped
    return shipped()


def load(machine: str | Path) -> "Machine":
    """The validated description of a shipped machine (by name) or of a YAML file (by path).

    Raises :class:`procsim.machine.ConfigError` (``str(e)`` is ``FILE:LINE: what``)."""
    from procsim import machine as machine_mod
    return machine_mod.load(machine)


def boot(machine: "str | Path | Machine" = DEFAULT_MACHINE, commands: Iterable[str] = ()) -> "Simulation":
    """Boot a machine (name, path or loaded description), then apply control ``commands``."""
    sim = Simulation(machine)
    sim.run(*commands)
    return sim


# Mount-point names whose place on a real system is not below /proc (the rest are /proc's
# files, and sys/... is already laid out like /sys).
TREE_PLACES = (("sysctl/", "proc/sys/"), ("debug/", "sys/kernel/debug/"), ("kmsg", "dev/kmsg"))
NOT_IN_TREE = ("pictures/",)                         # procsim's drawings: no file of a real system
# A second name of a view's file: the mount serves the log at kmsg and at dev/kmsg (the one whose
# reads wait, from the threaded FUSE session); in a tree kmsg is dev/kmsg already.
ALIASES = ("dev/kmsg",)


def tree_path(view: str) -> str | None:
    """Where a view lives on a real system, relative to ``/``: ``zoneinfo`` -> ``proc/zoneinfo``,
    ``sysctl/vm/min_free_kbytes`` -> ``proc/sys/vm/min_free_kbytes``, ``debug/extfrag/...`` ->
    ``sys/kernel/debug/extfrag/...`` (debugfs), ``kmsg`` -> ``dev/kmsg``;
    ``sys/devices/system/node/node0/meminfo`` stays as it is.  None for ``pictures/*``: drawings
    procsim makes, which no real system has (``procsim render pictures/zones.svg`` prints one), and
    for ``dev/kmsg``, the mount's second name for ``kmsg``."""
    view = view.strip("/")
    if view in ALIASES:
        return None
    if view.startswith("sys/"):
        return view
    if view.startswith(NOT_IN_TREE):
        return None
    for prefix, place in TREE_PLACES:
        if view == prefix or view.startswith(prefix):
            return place + view[len(prefix):]
    return f"proc/{view}"


class CommandError(Exception):
    """A control command that failed; the state is as before that line (earlier lines stay applied)."""

    def __init__(self, line: str, errno: int, reply: str):
        super().__init__(f"{line}: {reply}")
        self.line, self.errno, self.reply = line, errno, reply


class Simulation:
    """One booted machine: run control commands, render its files.

    ``machine`` is a name, a path or a :class:`~procsim.machine.Machine`; ``state`` is a
    ``--state`` journal (replayed if it exists, appended to by every command, locked while the
    simulation is open).  :meth:`close` (or ``with procsim.Simulation(...) as sim:``, or
    dropping the last reference) releases the journal's descriptor and lock; a closed
    simulation still renders, and refuses commands (:class:`CommandError`, EBADF)."""

    def __init__(self, machine: "str | Path | Machine" = DEFAULT_MACHINE, *, state: str | Path | None = None):
        import weakref
        from procsim.machine import Machine
        from procsim.session import Session
        self.session: Session = Session(machine if isinstance(machine, Machine) else load(machine), state=state)
        self._closed = False
        self._finalizer = weakref.finalize(self, self.session.close)

    def close(self) -> None:
        """Release the journal (descriptor and lock); later :meth:`run` calls fail."""
        self._closed = True
        self._finalizer()

    def __enter__(self) -> "Simulation":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def machine(self) -> "Machine":
        return self.session.machine

    @property
    def kernel(self):
        """The simulated kernel (``procsim.mm``): read it, change it only through :meth:`run`."""
        return self.session.kernel

    def run(self, *lines: str) -> list[str]:
        """Apply control-file lines in order (docs/control.md); return their
        replies (``ok ...``).  Raises :class:`CommandError` at the first failing line."""
        out = []
        for line in lines:
            if self._closed:
                import errno
                raise CommandError(line, errno.EBADF, "error EBADF: the simulation is closed")
            for r in self.session.execute([line]):
                if r.errno:
                    raise CommandError(r.line, r.errno, r.text)
                out.append(r.text)
        return out

    def views(self) -> list[str]:
        """Every file the machine has, as named below the mount point (``zoneinfo``,
        ``sys/devices/system/node/node0/meminfo``, ...), in the mount's order."""
        return list(self.session.views)

    def render(self, view: str) -> bytes:
        """The current bytes of one view; KeyError names the views if it does not exist."""
        name = view.strip("/")
        if name not in self.session.views:
            raise KeyError(f"no view {view!r} (views: {', '.join(sorted(self.session.views))})")
        return self.session.render(name)

    def write_tree(self, root: str | Path, views: Iterable[str] | None = None) -> Path:
        """Render views (all by default) below ``root``, laid out like the real system
        (:func:`tree_path`; the pictures are left out): point ``node_exporter --path.procfs=ROOT/proc --path.sysfs=ROOT/sys``
        or ``psutil.PROCFS_PATH = ROOT/proc`` at it.  Returns ``root``."""
        root = Path(root)
        names = [v for v in (self.views() if views is None else views)]
        tree = {tree_path(v): self.render(v) for v in names if tree_path(v) is not None}
        for rel, data in tree.items():          # every view exists (KeyError before any write);
            dest = root / rel                   # pictures are not part of a real system's tree
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        return root

    def __repr__(self) -> str:
        return f"<procsim.Simulation {self.machine.name} ({len(self.kernel.nodes)} nodes)>"
