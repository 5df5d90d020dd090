"""The files that trigger compaction: ``/proc/sys/vm/compact_memory`` (0200,
sysctl_compaction_handler: proc_dointvec_minmax with the range 1..1, so only 1 is taken) and
``/sys/devices/system/node/nodeN/compact`` (0200, compact_store: any write compacts node N).

A write does not touch the kernel here: it names the control command that does the work
(``compact_memory`` / ``compact node=N``), which the session runs journal-first like any
other command, so a restart from ``--state`` replays it.
"""
from __future__ import annotations

import errno

from ..mm.errors import MMError
from . import View

NODE = "sys/devices/system/node"


def _empty(k) -> bytes:
    return b""                                    # write-only: nothing to show


def write_compact_memory(k, data: bytes) -> str:
    text = data.decode("ascii", "replace").strip()
    if text != "1":                               # proc_dointvec_minmax: extra1 = extra2 = 1
        raise MMError(errno.EINVAL, f"compact_memory takes 1, not {text[:16]!r}")
    return "compact_memory"


def files_for(machine) -> dict[str, View]:
    out = {"sysctl/vm/compact_memory": View(0o200, _empty, volatile=True, write=write_compact_memory)}
    for nid in range(machine.nr_nodes):
        out[f"{NODE}/node{nid}/compact"] = View(0o200, _empty, volatile=True,
                                                write=lambda k, data, nid=nid: f"compact node={nid}")
    return out


FILES: dict[str, View] = {}
