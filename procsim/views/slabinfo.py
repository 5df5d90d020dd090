"""/proc/slabinfo, version 2.1, as mm/slab_common.c prints it for SLUB (mode 0400).

One line per kmem_cache in slab_caches order (newest first); SLUB has no tunables and no
shared arrays, so those columns are always 0.
"""
from __future__ import annotations

from . import View

HEADER = ("slabinfo - version: 2.1\n"
          "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
          " : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n")


def render(k) -> bytes:
    out = [HEADER]
    for s in (k.slab.caches if k.slab is not None else ()):       # a Kernel built without SLUB
        active_objs, num_objs, active_slabs, num_slabs = s.slabinfo()
        out.append(f"{s.name:<17} {active_objs:6d} {num_objs:6d} {s.size:6d} {s.objects:4d} {1 << s.order:4d}"
                   f" : tunables {0:4d} {0:4d} {0:4d} : slabdata {active_slabs:6d} {num_slabs:6d} {0:6d}\n")
    return "".join(out).encode()


FILES = {"slabinfo": View(0o400, render)}
