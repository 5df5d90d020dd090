"""One module per simulated file: each turns the kernel's state into the file's bytes.

Every module exports ``FILES``: a dict from the path below the mount point to a
:class:`View`.  Views only read the core; they never change it.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

# Modules that contribute files, in the order their files are listed at the mount point.
MODULES = ("zoneinfo", "pagetypeinfo", "buddyinfo", "slabinfo", "meminfo", "vmstat", "hardware")


@dataclass(frozen=True)
class View:
    mode: int                                   # permission bits, as the kernel's file has them
    render: Callable[[object], bytes]           # kernel -> content
    exact_size: bool = False                    # binary files (DMI) need st_size = len(content)


def files() -> dict[str, View]:
    out: dict[str, View] = {}
    for name in MODULES:
        out.update(importlib.import_module(f"{__name__}.{name}").FILES)
    return out
