"""sysctl/vm/NAME: every vm sysctl of the profile's kernel, as /proc/sys/vm shows them (procsim.mm.sysctl).

Readable ones print proc_dointvec's text; a write becomes the control command
``sysctl vm.NAME VALUE`` (run, logged and journaled like any other line).  ``procsim exec`` binds
the directory over /proc/sys/vm, so procps ``sysctl`` reads and writes the simulation.
"""
from __future__ import annotations

import errno

from ..mm import sysctl
from ..mm.errors import MMError
from . import View


def _view(s: sysctl.Sysctl) -> View:
    def render(k) -> bytes:
        return sysctl.read(k, s.name).encode()

    def write(k, data: bytes) -> str:
        """The control line that applies this write (values of a vector joined by commas).
        The bytes are parsed here first, as proc_dointvec does (EINVAL for ``5#`` or
        ``3#garbage``): the control language would take ``#`` for a comment."""
        text = data.decode("ascii", errors="replace")
        t = sysctl.for_version(s, k.profile.version)
        if t.text is not None:
            raise MMError(errno.EINVAL, f"vm.{s.name} cannot be changed")
        sysctl.parse(t, text)
        return f"sysctl vm.{s.name} " + ",".join(text.split())
    return View(s.mode, render, write=write)


FILES = {f"sysctl/vm/{name}": _view(s) for name, s in sysctl.SYSCTLS.items() if name in sysctl.names("6.18")}


def files_for(machine) -> dict[str, View]:
    """The vm sysctls of the machine's kernel version (compact_memory is compact.py's)."""
    return {f"sysctl/vm/{name}": _view(sysctl.SYSCTLS[name]) for name in sysctl.names(machine.kernel)}
