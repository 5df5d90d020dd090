"""/sys/kernel/slab/<cache>/: SLUB's per-cache attributes (mm/slub.c, the SLAB_ATTR show functions).

The attribute set and modes are those of a Debian-style 6.18 kernel (CONFIG_SLUB_DEBUG,
CONFIG_NUMA, CONFIG_ZONE_DMA, CONFIG_HARDENED_USERCOPY; no SLUB_STATS, KFENCE or FAILSLAB):
SLAB_ATTR_RO files are 0400, SLAB_ATTR ones 0600.  The counting files follow
show_slab_objects(): a total, then `` N<node>=<count>`` for every node with a non-zero count
(CONFIG_NUMA prints them even on one node), then a newline:

* SO_CPU (``cpu_slabs``): 1 per cpu slab, plus the length of each cpu's partial list
  (``slab->slabs`` of its head), at the node of that slab;
* SO_PARTIAL (``partial``, ``objects_partial``): the node partial lists, exactly
  (count_partial(), no sampling);
* SO_ALL (``slabs``, ``objects``, ``total_objects``): the node counters; ``objects`` is
  total minus the free objects on the partial lists, so free objects of cpu-owned slabs
  read as in use, as in the kernel.

The directory follows the caches as they are created and destroyed (``key`` changes
whenever the list of caches does, and the shell asks for ``files_now`` again).
"""
from __future__ import annotations

from ..mm import slub as S
from . import View

DIR = "sys/kernel/slab"
REMOTE_NODE_DEFRAG_RATIO = 100        # s->remote_node_defrag_ratio (1000) / 10

def _flag(flag):
    return lambda k, s: f"{int(bool(s.flags & flag))}\n"


def _zero(k, s):
    return "0\n"


def _empty(k, s):
    return ""


def per_node(k, counts: dict[int, int]) -> str:
    """show_slab_objects()'s output: total, then N<node>=<count> for the non-zero nodes."""
    total = sum(counts.values())
    return f"{total}" + "".join(f" N{n}={counts[n]}" for n in sorted(counts) if counts[n]) + "\n"


def _nodes(s):
    return [n for n in s.node if n is not None]


def cpu_slabs(k, s) -> str:
    counts: dict[int, int] = {}
    for _cpu, slab in s.cpu_slab.items():
        counts[slab.node] = counts.get(slab.node, 0) + 1
    for _cpu, lst in s.cpu_partial_list.items():
        if lst:                                   # slab->slabs of the list head, at its node
            head = lst[-1]
            counts[head.node] = counts.get(head.node, 0) + len(lst)
    return per_node(k, counts)


def slabs_cpu_partial(k, s) -> str:
    """Objects are estimated as half-full slabs (slabs * objs_per_slab / 2), as the kernel does."""
    lists = [(cpu, len(lst)) for cpu, lst in sorted(s.cpu_partial_list.items()) if lst]
    total = sum(n for _, n in lists)
    out = f"{total * s.objects // 2}({total})"
    return out + "".join(f" C{cpu}={n * s.objects // 2}({n})" for cpu, n in lists) + "\n"


def _usersize(k, s) -> str:
    """kmalloc caches whitelist the whole object for usercopy; others here declare no region."""
    return f"{s.object_size if s.flags & S.SLAB_KMALLOC else 0}\n"


# attribute -> (mode, show(k, cache) -> str)
ATTRS = {
    "aliases": (0o400, lambda k, s: f"{max(s.refcount - 1, 0)}\n"),
    "align": (0o400, lambda k, s: f"{s.align}\n"),
    "cache_dma": (0o400, _flag(S.SLAB_CACHE_DMA)),
    "cpu_partial": (0o600, lambda k, s: f"{s.cpu_partial}\n"),
    "cpu_slabs": (0o400, cpu_slabs),
    "ctor": (0o400, _empty),
    "destroy_by_rcu": (0o400, _flag(S.SLAB_TYPESAFE_BY_RCU)),
    "hwcache_align": (0o400, _flag(S.SLAB_HWCACHE_ALIGN)),
    "min_partial": (0o600, lambda k, s: f"{s.min_partial}\n"),
    "object_size": (0o400, lambda k, s: f"{s.object_size}\n"),
    "objects": (0o400, lambda k, s: per_node(k, {n.id: n.total_objects - n.partial_free for n in _nodes(s)})),
    "objects_partial": (0o400, lambda k, s: per_node(k, {n.id: sum(sl.inuse for sl in n.partial)
                                                         for n in _nodes(s)})),
    "objs_per_slab": (0o400, lambda k, s: f"{s.objects}\n"),
    "order": (0o400, lambda k, s: f"{s.order}\n"),
    "partial": (0o400, lambda k, s: per_node(k, {n.id: n.nr_partial for n in _nodes(s)})),
    "poison": (0o400, _zero),
    "reclaim_account": (0o400, _flag(S.SLAB_RECLAIM_ACCOUNT)),
    "red_zone": (0o400, _zero),
    "remote_node_defrag_ratio": (0o600, lambda k, s: f"{REMOTE_NODE_DEFRAG_RATIO}\n"),
    "sanity_checks": (0o400, _zero),
    "sheaf_capacity": (0o400, _zero),
    "shrink": (0o600, _empty),
    "slab_size": (0o400, lambda k, s: f"{s.size}\n"),
    "slabs": (0o400, lambda k, s: per_node(k, {n.id: n.nr_slabs for n in _nodes(s)})),
    "slabs_cpu_partial": (0o400, slabs_cpu_partial),
    "store_user": (0o400, _zero),
    "total_objects": (0o400, lambda k, s: per_node(k, {n.id: n.total_objects for n in _nodes(s)})),
    "trace": (0o400, _zero),
    "usersize": (0o400, _usersize),
    "validate": (0o600, _empty),
}


def _view(name: str, mode: int, show) -> View:
    def render(k) -> bytes:
        s = k.slab.find(name) if k.slab is not None else None
        return show(k, s).encode() if s is not None else b""
    return View(mode, render)


def key(k) -> tuple:
    """Changes whenever a cache is created (caches are listed newest first) or destroyed."""
    caches = k.slab.caches if k.slab is not None else ()
    return len(caches), caches[0].name if caches else None


def files_now(k) -> dict[str, View]:
    """A directory per cache (sorted by name)."""
    names = sorted(s.name for s in k.slab.caches) if k.slab is not None else ()
    return {f"{DIR}/{name}/{attr}": _view(name, mode, show) for name in names for attr, (mode, show) in ATTRS.items()}


FILES: dict[str, View] = {}
