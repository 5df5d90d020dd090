"""sysctl/vm/NAME: the vm sysctls procsim models, as /proc/sys/vm shows them (procsim.mm.sysctl).

Readable ones print proc_dointvec's text; writing one applies the kernel's handler, and the
session journals it as the control line ``sysctl vm.NAME=VALUE``.  ``procsim exec`` binds
the directory over /proc/sys/vm, so procps ``sysctl`` reads and writes the simulation.
"""
from __future__ import annotations

from ..mm import sysctl
from . import View


def _view(s: sysctl.Sysctl) -> View:
    def render(k) -> bytes:
        return sysctl.read(k, s.name).encode()

    def write(k, data: bytes) -> str:
        value = sysctl.write(k, s.name, data.decode("ascii", errors="replace"))
        return f"sysctl vm.{s.name}={value}"
    return View(s.mode, render, write=write)


FILES = {f"sysctl/vm/{name}": _view(s) for name, s in sysctl.SYSCTLS.items()}
