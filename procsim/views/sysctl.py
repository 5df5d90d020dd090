"""sysctl/vm/NAME: the vm sysctls procsim models, as /proc/sys/vm shows them (procsim.mm.sysctl).

Readable ones print proc_dointvec's text; a write becomes the control command
``sysctl vm.NAME VALUE`` (run, logged and journaled like any other line).  ``procsim exec`` binds
the directory over /proc/sys/vm, so procps ``sysctl`` reads and writes the simulation.
"""
from __future__ import annotations

from ..mm import sysctl
from . import View


def _view(s: sysctl.Sysctl) -> View:
    def render(k) -> bytes:
        return sysctl.read(k, s.name).encode()

    def write(k, data: bytes) -> str:
        """The control line that applies this write (values of a vector joined by commas)."""
        return f"sysctl vm.{s.name} " + ",".join(data.decode("ascii", errors="replace").split())
    return View(s.mode, render, write=write)


FILES = {f"sysctl/vm/{name}": _view(s) for name, s in sysctl.SYSCTLS.items()}
