"""One module per simulated file: each turns the kernel's state into the file's bytes.

Every module exports ``FILES``: a dict from the path below the mount point to a
:class:`View`; a module whose files depend on the machine (one directory per node or
CPU) also exports ``files_for(machine)``.  Views only read the core; they never change it.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

# Modules that contribute files, in the order their files are listed at the mount point.
MODULES = ("zoneinfo", "pagetypeinfo", "buddyinfo", "slabinfo", "meminfo", "vmstat", "uptime", "hardware", "memory", "slab_sysfs",
           "tracefs", "pictures", "extfrag", "compact", "kmsg", "sysctl", "swaps",
           "procstat", "loadavg")


@dataclass(frozen=True)
class View:
    mode: int                                   # permission bits, as the kernel's file has them
    render: Callable[[object], bytes]           # kernel -> content
    exact_size: bool = False                    # binary files (DMI) need st_size = len(content)
    volatile: bool = False                      # content is not a function of the allocation state (tracefs)
    # a writable file: (kernel, bytes written) -> None when the view applied it (tracefs knobs; MMError
    # for a bad value), or the control line that does the work (compact, sysctl), which the session
    # runs journal-first (its errno fails the write)
    write: Callable[[object, bytes], str | None] | None = None
    pipe: Callable[[object, int], bytes] | None = None     # trace_pipe: kernel, size -> bytes consumed
                                                           # (read through the mount: blocks while b"")
    # A record stream (kmsg): (kernel, cursor, size) -> (bytes, next cursor), one record per
    # read() whatever the offset; cursor None is the start.  MMError(EPIPE/EINVAL) fails the read.
    stream: Callable[[object, object, int], tuple[bytes, object]] | None = None


# Modules whose files follow the kernel's state (a directory per slab cache): they export
# key(k), cheap and changing whenever the file list changes, and files_now(k).
DYNAMIC = ("slab_sysfs",)


def dynamic_key(k) -> tuple:
    return tuple(importlib.import_module(f"{__name__}.{name}").key(k) for name in DYNAMIC)


def dynamic_files(k) -> dict[str, View]:
    out: dict[str, View] = {}
    for name in DYNAMIC:
        out.update(importlib.import_module(f"{__name__}.{name}").files_now(k))
    return out


def files(machine=None) -> dict[str, View]:
    """Every file of the mount, for this machine (only the fixed ones without a machine)."""
    out: dict[str, View] = {}
    for name in MODULES:
        mod = importlib.import_module(f"{__name__}.{name}")
        files_for = getattr(mod, "files_for", None)
        out.update(files_for(machine) if files_for and machine is not None else mod.FILES)
    return out
