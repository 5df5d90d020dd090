"""SLUB, the way Linux 6.18 runs it (mm/slub.c, mm/slab_common.c).

A kmem_cache hands out objects of one size from slabs: compound pages taken from the
buddy allocator.  Each CPU owns one *cpu slab* (frozen) and a short *cpu partial* list;
each node keeps a *partial* list of slabs with free objects; full slabs sit on no list.
Empty slabs stay on the node partial list while ``nr_partial < min_partial`` and go back
to the buddy otherwise.  /proc/slabinfo numbers follow get_slabinfo(): only free objects
on the node partial lists count as free, so cpu-owned free objects read as active.

Objects are plain ints (kernel virtual addresses, PAGE_OFFSET + pfn*4096 + index*size):
a slab keeps a bytearray of in-use flags and a LIFO stack of free indices, so a million
live objects cost a few bytes each here and nothing in Python objects.

Simplifications (documented, deliberate):
* no cache merging (find_mergeable): every kmem_cache_create makes a new, visible cache;
* SLAB_TYPESAFE_BY_RCU slabs are freed at once (no RCU grace period in a pure core);
* get_any_partial() always tries remote nodes (the kernel skips ~2% at random);
* kmalloc(0) raises EINVAL where the kernel returns ZERO_SIZE_PTR (a user typing
  ``kmalloc 0`` wants to hear that nothing was allocated);
* no debug flags (red zones, poisoning, user tracking), no sheaves, no random kmalloc
  copies (CONFIG_RANDOM_KMALLOC_CACHES is off in distro kernels).
"""
from __future__ import annotations

import errno
from collections import OrderedDict

from .core_api import SlabKernel
from .errors import MMError
from .gfp import (GFP_DMA, GFP_DMA32, GFP_KERNEL, GFP_NOWAIT, __GFP_ACCOUNT, __GFP_COMP, __GFP_DMA,
                  __GFP_DMA32, __GFP_HARDWALL, __GFP_HIGH, __GFP_IO, __GFP_FS, __GFP_MEMALLOC,
                  __GFP_NOFAIL, __GFP_NOMEMALLOC, __GFP_NORETRY, __GFP_NOWARN, __GFP_RECLAIM,
                  __GFP_RECLAIMABLE, __GFP_RETRY_MAYFAIL, __GFP_THISNODE)

from .page_types import PAGE_SHIFT, PAGE_SIZE, PAGE_OFFSET, MAX_PAGE_ORDER  # noqa: F401
NUMA_NO_NODE = -1
SLUB_MAX_ORDER = 3                          # PAGE_ALLOC_COSTLY_ORDER
SLUB_MIN_ORDER = 0
MAX_OBJS_PER_PAGE = 32767
MIN_PARTIAL, MAX_PARTIAL = 5, 10
MAX_PARTIAL_TO_SCAN = 10000
SHRINK_PROMOTE_MAX = 32
CACHE_LINE_SIZE = 64
ARCH_SLAB_MINALIGN = 8
KMALLOC_SHIFT_LOW, KMALLOC_SHIFT_HIGH = 3, PAGE_SHIFT + 1
KMALLOC_MAX_CACHE_SIZE = 1 << KMALLOC_SHIFT_HIGH          # 8192
KMALLOC_MAX_SIZE = 1 << (MAX_PAGE_ORDER + PAGE_SHIFT)     # 4 MiB
NAME_MAX = 255                              # each cache is a /sys/kernel/slab/<name> entry
KMEM_CACHE_NODE_SIZE = 72                   # sizeof(struct kmem_cache_node), 6.18 (with barn)
KMEM_CACHE_HEAD = 224                       # offsetof(struct kmem_cache, node)
KMEM_BUCKETS_SIZE = 8 * (KMALLOC_SHIFT_HIGH + 1)          # sizeof(kmem_buckets): 14 pointers

# SLAB_* flag names are the kernel's; the bit values are our own (only names reach users).
SLAB_FLAG_NAMES = ("SLAB_HWCACHE_ALIGN", "SLAB_CACHE_DMA", "SLAB_CACHE_DMA32", "SLAB_PANIC",
                   "SLAB_TYPESAFE_BY_RCU", "SLAB_NO_MERGE", "SLAB_ACCOUNT", "SLAB_RECLAIM_ACCOUNT",
                   "SLAB_KMALLOC", "SLAB_NO_OBJ_EXT")
SLAB_FLAGS = {name: 1 << i for i, name in enumerate(SLAB_FLAG_NAMES)}
SLAB_HWCACHE_ALIGN = SLAB_FLAGS["SLAB_HWCACHE_ALIGN"]
SLAB_CACHE_DMA = SLAB_FLAGS["SLAB_CACHE_DMA"]
SLAB_CACHE_DMA32 = SLAB_FLAGS["SLAB_CACHE_DMA32"]
SLAB_PANIC = SLAB_FLAGS["SLAB_PANIC"]
SLAB_TYPESAFE_BY_RCU = SLAB_FLAGS["SLAB_TYPESAFE_BY_RCU"]
SLAB_NO_MERGE = SLAB_FLAGS["SLAB_NO_MERGE"]
SLAB_ACCOUNT = SLAB_FLAGS["SLAB_ACCOUNT"]
SLAB_RECLAIM_ACCOUNT = SLAB_FLAGS["SLAB_RECLAIM_ACCOUNT"]
SLAB_KMALLOC = SLAB_FLAGS["SLAB_KMALLOC"]
SLAB_NO_OBJ_EXT = SLAB_FLAGS["SLAB_NO_OBJ_EXT"]
SLAB_USER_FLAGS = (SLAB_HWCACHE_ALIGN | SLAB_CACHE_DMA | SLAB_CACHE_DMA32 | SLAB_PANIC |
                   SLAB_TYPESAFE_BY_RCU | SLAB_NO_MERGE | SLAB_ACCOUNT | SLAB_RECLAIM_ACCOUNT)

# mm/internal.h: the caller's gfp bits that reach the slab page allocation (new_slab()).
GFP_RECLAIM_MASK = (__GFP_RECLAIM | __GFP_HIGH | __GFP_IO | __GFP_FS | __GFP_NOWARN | __GFP_RETRY_MAYFAIL |
                    __GFP_NOFAIL | __GFP_NORETRY | __GFP_MEMALLOC | __GFP_NOMEMALLOC)
GFP_CONSTRAINT_MASK = __GFP_HARDWALL | __GFP_THISNODE

# kmalloc: the cache index of sizes 1..192 in 8-byte steps (kmalloc_size_index[]), then fls(size-1).
_SIZE_INDEX = (3, 4, 5, 5, 6, 6, 6, 6, 1, 1, 1, 1, 7, 7, 7, 7, 2, 2, 2, 2, 2, 2, 2, 2)
_KMALLOC_SIZES = {1: 96, 2: 192, **{i: 1 << i for i in range(KMALLOC_SHIFT_LOW, KMALLOC_SHIFT_HIGH + 1)}}
KMALLOC_NORMAL, KMALLOC_RECLAIM, KMALLOC_DMA, KMALLOC_CGROUP = range(4)
# enum kmalloc_cache_type order (6.18, no random caches): creation order of the families.
_KMALLOC_TYPES = (KMALLOC_NORMAL, KMALLOC_RECLAIM, KMALLOC_DMA, KMALLOC_CGROUP)
_KMALLOC_PREFIX = {KMALLOC_NORMAL: "kmalloc-", KMALLOC_RECLAIM: "kmalloc-rcl-",
                   KMALLOC_DMA: "dma-kmalloc-", KMALLOC_CGROUP: "kmalloc-cg-"}
_KMALLOC_FLAGS = {KMALLOC_NORMAL: SLAB_NO_MERGE, KMALLOC_RECLAIM: SLAB_RECLAIM_ACCOUNT,
                  KMALLOC_DMA: SLAB_CACHE_DMA, KMALLOC_CGROUP: SLAB_ACCOUNT}

# Where a slab is (the kernel's frozen bit plus list membership).
FROZEN, CPU_PARTIAL, NODE_PARTIAL, FULL = range(4)
STATE_NAMES = ("cpu slab", "cpu partial", "node partial", "full")


# Class bodies mangle names with two leading underscores, so the gfp bits get plain aliases.
_GFP_ACCOUNT = __GFP_ACCOUNT
_GFP_COMP = __GFP_COMP
_GFP_DMA = __GFP_DMA
_GFP_NOFAIL = __GFP_NOFAIL
_GFP_NOMEMALLOC = __GFP_NOMEMALLOC
_GFP_NORETRY = __GFP_NORETRY
_GFP_NOWARN = __GFP_NOWARN
_GFP_RECLAIM = __GFP_RECLAIM
_GFP_RECLAIMABLE = __GFP_RECLAIMABLE
_GFP_THISNODE = __GFP_THISNODE
_GFP_DMA32 = __GFP_DMA32


def _einval(msg: str) -> MMError:
    return MMError(errno.EINVAL, msg)


def parse_slab_flags(text: str) -> int:
    """``SLAB_HWCACHE_ALIGN|SLAB_RECLAIM_ACCOUNT`` -> bits; MMError(EINVAL) on unknown names."""
    bits = 0
    for part in str(text).split("|"):
        name = part.strip()
        if not name or name == "0":
            continue
        if name not in SLAB_FLAGS or not SLAB_FLAGS[name] & SLAB_USER_FLAGS:
            raise _einval(f"unknown slab flag {name!r} (one of {', '.join(n for n in SLAB_FLAG_NAMES if SLAB_FLAGS[n] & SLAB_USER_FLAGS)})")
        bits |= SLAB_FLAGS[name]
    return bits


def format_slab_flags(flags: int) -> str:
    return "|".join(n for n in SLAB_FLAG_NAMES if flags & SLAB_FLAGS[n]) or "0"


def fls(x: int) -> int:
    return x.bit_length()


def get_order(size: int) -> int:
    """Smallest order whose block holds size bytes (include/asm-generic/getorder.h)."""
    return max(0, ((size - 1) >> PAGE_SHIFT).bit_length())


def order_objects(order: int, size: int) -> int:
    return (PAGE_SIZE << order) // size


def calculate_alignment(flags: int, align: int, size: int) -> int:
    """slab_common.c calculate_alignment(): HWCACHE_ALIGN halves the line for small objects."""
    if flags & SLAB_HWCACHE_ALIGN:
        ralign = CACHE_LINE_SIZE
        while size <= ralign // 2:
            ralign //= 2
        align = max(align, ralign)
    align = max(align, ARCH_SLAB_MINALIGN)
    return (align + 7) & ~7


def calculate_size(object_size: int, align: int, flags: int, ctor: str | None = None,
                   freeptr_offset: int | None = None) -> tuple[int, int]:
    """calculate_sizes(): (s->size, s->offset).  The free pointer lives in the middle of the
    object, or after it when the object must stay intact while free: TYPESAFE_BY_RCU, or a
    constructor (its initialised state survives kmem_cache_free).  6.18's explicit
    freeptr_offset (a TYPESAFE_BY_RCU cache naming a word of its object, vm_area_struct)
    keeps it inside."""
    size = (object_size + 7) & ~7
    if flags & SLAB_TYPESAFE_BY_RCU and freeptr_offset is not None:
        offset = freeptr_offset
    elif flags & SLAB_TYPESAFE_BY_RCU or ctor:
        offset = size
        size += 8
    else:
        offset = (object_size // 2) & ~7
    return (size + align - 1) // align * align, offset


def calculate_order(size: int, nr_cpus: int) -> int:
    """6.18 calculate_order() + calc_slab_order(): the smallest order holding min_objects
    objects whose leftover is at most 1/16, 1/8, 1/4, then 1/2 of the slab."""
    min_objects = 4 * (fls(nr_cpus) + 1)
    max_objects = max(order_objects(SLUB_MAX_ORDER, size), 1)
    min_objects = min(min_objects, max_objects)
    min_order = max(SLUB_MIN_ORDER, get_order(min_objects * size))
    for fraction in (16, 8, 4, 2):
        for order in range(min_order, SLUB_MAX_ORDER + 1):
            slab_size = PAGE_SIZE << order
            if slab_size % size <= slab_size // fraction:
                return order
    order = get_order(size)
    if order > MAX_PAGE_ORDER:
        raise _einval(f"object size {size} needs more than an order-{MAX_PAGE_ORDER} slab")
    return order


def cpu_partial_objects(size: int) -> int:
    """set_cpu_partial(): how many free objects a CPU may keep on partial slabs."""
    if size >= PAGE_SIZE:
        return 6
    if size >= 1024:
        return 24
    if size >= 256:
        return 52
    return 120


def kmalloc_index(size: int) -> int:
    """Index into the kmalloc arrays (96 = 1, 192 = 2, else log2); size in 1..8192."""
    if size <= 192:
        return _SIZE_INDEX[(size - 1) >> 3]
    return (size - 1).bit_length()


def kmalloc_cache_name(kind: int, idx: int, k_names: bool = True) -> str:
    """kmalloc_info[]: "kmalloc-1k" since 4.20 (KMALLOC_INFO_SHORT_NAME), "kmalloc-1024" before."""
    size = _KMALLOC_SIZES[idx]
    return _KMALLOC_PREFIX[kind] + (f"{size >> 10}k" if size >= 1024 and k_names else str(size))


def kmalloc_sequence(kinds, idxs) -> tuple[tuple[int, int], ...]:
    """create_kmalloc_caches()'s order: family by family, each family's sizes in ``idxs``."""
    return tuple((kind, idx) for kind in kinds for idx in idxs)


KMALLOC_IDX_ARRAY_ORDER = (1, 2, *range(KMALLOC_SHIFT_LOW, KMALLOC_SHIFT_HIGH + 1))   # 96, 192, 8 ... 8192
# 96 right after 64, 192 right after 128 (create_kmalloc_caches: "if (i == 6) ... if (i == 7)")
KMALLOC_IDX_POW2_ORDER = (3, 4, 5, 6, 1, 7, 2, *range(8, KMALLOC_SHIFT_HIGH + 1))
_KMALLOC_SEQUENCE = kmalloc_sequence(_KMALLOC_TYPES, KMALLOC_IDX_ARRAY_ORDER)   # 6.18


def kmalloc_type(gfp: int) -> int:
    """kmalloc_type(): DMA beats RECLAIMABLE beats ACCOUNT."""
    if gfp & _GFP_DMA:
        return KMALLOC_DMA
    if gfp & _GFP_RECLAIMABLE:
        return KMALLOC_RECLAIM
    if gfp & _GFP_ACCOUNT:
        return KMALLOC_CGROUP
    return KMALLOC_NORMAL


class Slab:
    """struct slab: one compound page cut into objects."""

    __slots__ = ("cache", "page", "pfn", "node", "order", "objects", "base", "inuse", "free", "used",
                 "state", "cpu")

    def __init__(self, cache: "KmemCache", page, objects: int):
        self.cache, self.page = cache, page
        self.pfn, self.node, self.order = page.pfn, page.node, page.order
        self.objects = objects
        self.base = PAGE_OFFSET + (page.pfn << PAGE_SHIFT)
        self.inuse = 0
        self.free = list(range(objects - 1, -1, -1))     # LIFO: index 0 is handed out first
        self.used = bytearray(objects)
        self.state, self.cpu = FROZEN, -1


class KmemCacheNode:
    """struct kmem_cache_node: the partial list (an ordered set, head first) and counters."""

    __slots__ = ("id", "partial", "nr_slabs", "total_objects", "partial_free")

    def __init__(self, nid: int):
        self.id = nid
        self.partial: OrderedDict[Slab, None] = OrderedDict()
        self.nr_slabs = self.total_objects = self.partial_free = 0

    @property
    def nr_partial(self) -> int:
        return len(self.partial)

    def count_partial_free_approx(self) -> int:
        """6.18: exact up to 10000 partial slabs, else 5000 from each end, scaled up."""
        n = len(self.partial)
        if n <= MAX_PARTIAL_TO_SCAN:
            return self.partial_free
        half, x = MAX_PARTIAL_TO_SCAN // 2, 0
        for seq in (iter(self.partial), reversed(self.partial)):
            for i, s in enumerate(seq):
                if i == half:
                    break
                x += s.objects - s.inuse
        return min(x * n // MAX_PARTIAL_TO_SCAN, self.total_objects)


class KmemCache:
    """struct kmem_cache: geometry plus per-cpu and per-node state."""

    def __init__(self, name: str, object_size: int, size: int, align: int, flags: int, offset: int,
                 order: int, nr_node_ids: int, slab_nodes):
        self.name, self.object_size, self.size, self.align = name, object_size, size, align
        self.flags, self.offset = flags, offset
        self.order = order
        self.objects = order_objects(order, size)                  # oo_objects(s->oo)
        self.min_order = get_order(size)                           # s->min, the fallback
        self.min_objects = order_objects(self.min_order, size)
        self.min_partial = min(MAX_PARTIAL, max(MIN_PARTIAL, (size.bit_length() - 1) // 2))
        self.cpu_partial = cpu_partial_objects(size)
        self.cpu_partial_slabs = -(-2 * self.cpu_partial // self.objects)
        self.allocflags = _GFP_COMP
        if flags & SLAB_CACHE_DMA:
            self.allocflags |= GFP_DMA
        if flags & SLAB_CACHE_DMA32:
            self.allocflags |= GFP_DMA32
        if flags & SLAB_RECLAIM_ACCOUNT:
            self.allocflags |= _GFP_RECLAIMABLE
        self.stat_item = "nr_slab_reclaimable" if flags & SLAB_RECLAIM_ACCOUNT else "nr_slab_unreclaimable"
        self.node: list[KmemCacheNode | None] = [None] * nr_node_ids
        for nid in slab_nodes:
            self.node[nid] = KmemCacheNode(nid)
        self.cpu_slab: dict[int, Slab] = {}
        self.cpu_partial_list: dict[int, list[Slab]] = {}         # per cpu, head = last item
        self.inuse = 0                                             # live objects, all slabs
        self.nr_slabs = 0
        self.pages = 0
        self.refcount = 1
        self.kmalloc = bool(flags & SLAB_KMALLOC)
        self.ctor: str | None = None                               # the constructor's name
        self.self_obj: int | None = None                           # our struct in kmem_cache
        self.node_objs: dict[int, int] = {}                        # our kmem_cache_node structs

    def __repr__(self) -> str:
        return f"<kmem_cache {self.name} size={self.size} {self.objects}/{1 << self.order}>"

    def slabinfo(self) -> tuple[int, int, int, int]:
        """get_slabinfo(): (active_objs, num_objs, active_slabs, num_slabs)."""
        nr_slabs = nr_objs = nr_free = 0
        for n in self.node:
            if n is not None:
                nr_slabs += n.nr_slabs
                nr_objs += n.total_objects
                nr_free += n.count_partial_free_approx()
        return nr_objs - nr_free, nr_objs, nr_slabs, nr_slabs


def _remove_id(items: list, x) -> bool:
    """Remove x (by identity) from items; whether it was there."""
    for i in range(len(items) - 1, -1, -1):
        if items[i] is x:
            del items[i]
            return True
    return False


class Slub:
    """The slab allocator of one Kernel (``k.slab``), or of any kernel with the small
    surface it uses (core_api.SlabKernel: the tests' FakeKernel too)."""

    def __init__(self, kernel: SlabKernel):
        self.k: SlabKernel = kernel
        self.trace = kernel.trace                        # the kernel's kmem events
        self.caches: list[KmemCache] = []                # slab_caches: newest first
        self._by_name: dict[str, KmemCache] = {}
        self._slab_of: dict[int, Slab] = {}              # head pfn -> slab
        self._large: dict[int, object] = {}              # head pfn -> Page of a large kmalloc
        self._max_order = SLUB_MAX_ORDER                 # largest slab order in use (for lookups)
        self.nr_cpu_ids = kernel.nr_cpu_ids
        self.nr_node_ids = len(kernel.nodes)
        # sizeof(struct kmem_cache_node): 72 with 6.18's barn, 64 before (mm/profile.py)
        self.kmem_cache_node_size = kernel.profile.kmem_cache_node_size
        self.slab_nodes = [n.id for n in kernel.nodes if n.has_memory]  # N_NORMAL_MEMORY
        if not self.slab_nodes:
            raise MMError(errno.ENOMEM, "no node has memory")
        self._cpu_node, self._node_cpu = self._topology()
        self._node_order = self._zonelist_node_order()
        self._mem_node = [self._node_order[self._cpu_node[c]][0] for c in range(self.nr_cpu_ids)]
        # num_present_cpus(), or nr_cpu_ids when that is <= 1: all our CPUs are present.
        self.nr_cpus_for_order = self.nr_cpu_ids
        self._kmalloc = [[None] * (KMALLOC_SHIFT_HIGH + 1) for _ in _KMALLOC_TYPES]
        self._kmalloc_by_gfp: dict[int, list] = {}   # gfp -> its kmalloc_type()'s row, looked up once
        self.large_pages = [0] * self.nr_node_ids        # pages held by large kmallocs, per node
        self.kmem_cache: KmemCache | None = None
        self.kmem_cache_node: KmemCache | None = None
        self._bootstrap()

    # --- topology -------------------------------------------------------------------------
    def _topology(self):
        """The kernel's own CPU -> node map and each node's first CPU (never re-derived here)."""
        k = self.k
        return list(k.cpu_node), {n.id: n.cpus[0] for n in k.nodes if n.cpus}

    def _zonelist_node_order(self) -> list[list[int]]:
        """Per node, the nodes with slab memory in the order the kernel's fallback zonelist
        visits them (``k.node_order``, built once by build_zonelists()): the order
        get_any_partial() walks, and whose head is local_memory_node(), the numa_mem_id()
        of a memoryless node's cpus.  SLUB reads it; it never sorts distances itself."""
        mem = set(self.slab_nodes)
        return [[n for n in order if n in mem] for order in self.k.node_order]

    def _pick_cpu(self, node, cpu) -> int:
        """The allocating CPU: as given, else the first CPU of the asked-for node, else 0."""
        if cpu is None:
            return self._node_cpu.get(node, 0) if node is not None else 0
        if not isinstance(cpu, int) or isinstance(cpu, bool) or not 0 <= cpu < self.nr_cpu_ids:
            raise _einval(f"cpu {cpu} does not exist (cpus 0..{self.nr_cpu_ids - 1})")
        return cpu

    def _check_node(self, node):
        """A valid node id, or None; a memoryless node means "any" (node_match() in 6.18
        turns a node outside slab_nodes into NUMA_NO_NODE)."""
        if node is None:
            return None
        if not isinstance(node, int) or isinstance(node, bool) or not 0 <= node < self.nr_node_ids:
            raise _einval(f"node {node} does not exist (nodes 0..{self.nr_node_ids - 1})")
        return node if node in self.slab_nodes else None

    # --- bootstrap (kmem_cache_init + create_kmalloc_caches) --------------------------------
    def _bootstrap(self):
        kcn = self._new_cache("kmem_cache_node", self.kmem_cache_node_size, ARCH_SLAB_MINALIGN,
                              SLAB_HWCACHE_ALIGN | SLAB_NO_OBJ_EXT)
        self.kmem_cache_node = kcn
        # early_kmem_cache_node_alloc(): a fresh slab per node holds that node's own struct.
        for nid in self.slab_nodes:
            slab = self._new_slab(kcn, GFP_NOWAIT, nid, 0)
            kcn.node_objs[nid] = self._take(slab)
            self._add_partial(kcn.node[nid], slab, head=True)
        kc = self._new_cache("kmem_cache", KMEM_CACHE_HEAD + 8 * self.nr_node_ids, ARCH_SLAB_MINALIGN,
                             SLAB_HWCACHE_ALIGN | SLAB_NO_OBJ_EXT)
        for nid in self.slab_nodes:
            kc.node_objs[nid] = self._alloc(kcn, GFP_NOWAIT, nid, 0)
        self.kmem_cache = kc
        for s in (kc, kcn):                                       # bootstrap(): copy into a real object
            s.self_obj = self._alloc(kc, GFP_NOWAIT, None, 0)
            self._publish(s)
        rules = self.k.profile
        for kind, idx in rules.kmalloc_sequence or _KMALLOC_SEQUENCE:
            size = _KMALLOC_SIZES[idx]
            align = max(ARCH_SLAB_MINALIGN, size & -size)          # largest power of two dividing size
            name = kmalloc_cache_name(kind, idx, rules.kmalloc_k_names)
            s = self._create(name, size, align, _KMALLOC_FLAGS[kind] | SLAB_KMALLOC, GFP_NOWAIT)
            self._kmalloc[kind][idx] = s
        for kind in _KMALLOC_TYPES:                                # a family the version lacks: kmalloc_type()
            if self._kmalloc[kind][KMALLOC_SHIFT_LOW] is None:     # falls back to the normal caches
                self._kmalloc[kind] = self._kmalloc[KMALLOC_NORMAL]
        if rules.kmalloc_buckets:
            self._create("kmalloc_buckets", KMEM_BUCKETS_SIZE, 0, SLAB_NO_MERGE, GFP_KERNEL)

    def _new_cache(self, name, object_size, align, flags, ctor=None, freeptr_offset=None) -> KmemCache:
        align = calculate_alignment(flags, align, object_size)
        size, offset = calculate_size(object_size, align, flags, ctor, freeptr_offset)
        order = calculate_order(size, self.nr_cpus_for_order)
        s = KmemCache(name, object_size, size, align, flags, offset, order, self.nr_node_ids, self.slab_nodes)
        s.ctor = ctor
        return s

    def _publish(self, s: KmemCache):
        self.caches.insert(0, s)
        self._by_name[s.name] = s
        self._max_order = max(self._max_order, s.order)

    def _create(self, name, object_size, align, flags, gfp, ctor=None, freeptr_offset=None) -> KmemCache:
        """create_cache(): a kmem_cache object, a kmem_cache_node per node, then list_add."""
        s = self._new_cache(name, object_size, align, flags, ctor, freeptr_offset)
        taken = []
        try:
            s.self_obj = self._alloc(self.kmem_cache, gfp, None, 0)
            taken.append((self.kmem_cache, s.self_obj))
            for nid in self.slab_nodes:
                s.node_objs[nid] = self._alloc(self.kmem_cache_node, gfp, nid, 0)
                taken.append((self.kmem_cache_node, s.node_objs[nid]))
        except MMError:
            for _cache, addr in reversed(taken):
                self._free(self._slab_lookup(addr), addr, None)
            raise
        self._publish(s)
        return s

    # --- public API -----------------------------------------------------------------------
    def find(self, name: str) -> KmemCache | None:
        return self._by_name.get(name)

    def kmem_cache_create(self, name: str, size: int, align: int = 0, flags: int = 0,
                          ctor: str | None = None, freeptr_offset: int | None = None) -> KmemCache:
        """ctor names the constructor (procsim runs none; it moves the free pointer out of the
        object); freeptr_offset is 6.18's kmem_cache_args.freeptr_offset (TYPESAFE_BY_RCU only)."""
        if not isinstance(name, str) or not name:
            raise _einval("a cache needs a name")
        if len(name) > NAME_MAX:
            raise _einval(f"cache name is longer than {NAME_MAX} characters")
        if any(c.isspace() or not c.isprintable() for c in name) or "/" in name:
            raise _einval(f"cache name {name!r} has whitespace or '/' (it would confuse slabinfo parsers)")
        if name in self._by_name:
            raise MMError(errno.EEXIST, f"a cache named {name!r} already exists")
        if not isinstance(size, int) or not 1 <= size <= KMALLOC_MAX_SIZE:
            raise _einval(f"object size must be 1..{KMALLOC_MAX_SIZE} bytes, not {size}")
        if not isinstance(align, int) or align < 0 or align > PAGE_SIZE or (align & (align - 1)):
            raise _einval(f"align must be 0 or a power of two up to {PAGE_SIZE}, not {align}")
        if isinstance(flags, str):
            flags = parse_slab_flags(flags)
        if flags & ~SLAB_USER_FLAGS:
            raise _einval(f"unknown slab flag bits {flags & ~SLAB_USER_FLAGS:#x}")
        if flags & SLAB_CACHE_DMA and flags & SLAB_CACHE_DMA32:
            raise _einval("SLAB_CACHE_DMA and SLAB_CACHE_DMA32 exclude each other")
        if ctor is not None and (not isinstance(ctor, str) or not ctor.isidentifier()):
            raise _einval(f"ctor must be a function name, not {ctor!r}")
        if freeptr_offset is not None:
            if not flags & SLAB_TYPESAFE_BY_RCU:
                raise _einval("freeptr_offset needs SLAB_TYPESAFE_BY_RCU")
            if not isinstance(freeptr_offset, int) or freeptr_offset % 8 or not 0 <= freeptr_offset <= size - 8:
                raise _einval(f"freeptr_offset must be a word-aligned offset inside the object, not {freeptr_offset}")
        s = self._create(name, size, align, flags, GFP_KERNEL, ctor, freeptr_offset)
        self.k.generation += 1
        return s

    def kmem_cache_alloc(self, cache: KmemCache, gfp: int = GFP_KERNEL, node=None, cpu=None) -> int:
        self._check_cache(cache)
        cpu = self._pick_cpu(node, cpu)
        tr = self.trace
        if tr.active:
            tr.cpu = cpu
        addr = self._alloc(cache, gfp, self._check_node(node), cpu)
        if tr.active:
            tr.emit("kmem_cache_alloc", cpu, addr, cache.name, cache.object_size, cache.size, gfp,
                    NUMA_NO_NODE if node is None else node, gfp & _GFP_ACCOUNT or cache.flags & SLAB_ACCOUNT)
        self.k.generation += 1
        return addr

    def kmem_cache_free(self, cache: KmemCache, addr: int, cpu=None):
        """Free an object of cache."""
        self._check_cache(cache)
        slab = self._slab_lookup(addr)
        if slab is None or slab.cache is not cache:
            owner = f"belongs to {slab.cache.name}" if slab else "is not an allocated slab object"
            raise _einval(f"{addr:#x} {owner}, not to {cache.name}" if isinstance(addr, int)
                          else "kmem_cache_free needs an address")
        on = self._pick_cpu(None, cpu) if cpu is not None else None
        if self.trace.active:                   # traced before slab_free(), as the kernel does:
            tr = self.trace                      # a slab it discards frees its pages after
            tr.emit("kmem_cache_free", tr.cpu if cpu is None else cpu, addr, cache.name)
        self._free(slab, addr, on)
        self.k.generation += 1

    def kmem_cache_free_bulk(self, cache: KmemCache, addrs) -> None:
        """kmem_cache_free() of each of addrs in turn, live objects of cache (the shrinker's
        frees of one cache): the same frees and events, the events of a stretch recorded as one
        run (Trace.pending; what a free records of its own, a slab's pages, splits it)."""
        self._check_cache(cache)
        tr = self.trace
        pend = None
        for addr in addrs:
            slab = self._slab_lookup(addr)
            if slab is None or slab.cache is not cache:
                raise _einval(f"{addr:#x} is not an allocated {cache.name} object")
            if tr.active:
                if pend is None or tr._pend is not pend:
                    pend = tr.pending("kmem_cache_free", tr.cpu, cache.name)
                if pend is not None:
                    pend.append(addr)
            self._free(slab, addr, None)
        self.k.generation += 1

    def kmalloc(self, size: int, gfp: int = GFP_KERNEL, node=None, cpu=None) -> int:
        if not isinstance(size, int) or size <= 0:
            raise _einval("kmalloc(0) allocates nothing (the kernel returns ZERO_SIZE_PTR)"
                          if size == 0 else f"kmalloc size must be positive, not {size}")
        if node is None and cpu is None:         # the common call: cpu 0, any node
            cpu = 0
        else:
            cpu = self._pick_cpu(node, cpu)
            node = self._check_node(node)
        tr = self.trace
        if tr.active:
            tr.cpu = cpu
        if size > KMALLOC_MAX_CACHE_SIZE:
            addr = self._kmalloc_large(size, gfp, node, cpu)
            alloc = PAGE_SIZE << get_order(size)
        else:
            caches = self._kmalloc_by_gfp.get(gfp) or self._kmalloc_by_gfp.setdefault(gfp, self._kmalloc[kmalloc_type(gfp)])
            s = caches[kmalloc_index(size)]
            addr = self._alloc(s, gfp, node, cpu)
            alloc = s.size
        if tr.active:
            tr.emit("kmalloc", cpu, addr, size, alloc, gfp, NUMA_NO_NODE if node is None else node, gfp & _GFP_ACCOUNT)
        self.k.generation += 1
        return addr

    def kmalloc_cache(self, size: int, gfp: int = GFP_KERNEL) -> KmemCache | None:
        """The cache kmalloc(size, gfp) would use; None above KMALLOC_MAX_CACHE_SIZE."""
        if not 1 <= size <= KMALLOC_MAX_CACHE_SIZE:
            return None
        return self._kmalloc[kmalloc_type(gfp)][kmalloc_index(size)]

    def kfree(self, addr: int, cpu=None):
        # virt_to_slab() inline for the common case, an object in an order-0 slab
        slab = None
        if addr.__class__ is int:
            pfn = (addr - PAGE_OFFSET) >> PAGE_SHIFT
            slab = self._slab_of.get(pfn) or self._compound_slab(pfn)
        page, on = None, self._pick_cpu(None, cpu) if cpu is not None else None
        if slab is None:
            pfn = (addr - PAGE_OFFSET) >> PAGE_SHIFT if isinstance(addr, int) else None
            page = self._large.get(pfn)
            if page is None or addr & (PAGE_SIZE - 1):
                raise _einval(f"kfree({addr:#x}): not an allocated kmalloc object" if isinstance(addr, int)
                              else "kfree needs an address")
        if self.trace.active:                    # traced before the free, as the kernel does
            self.trace.emit("kfree", self.trace.cpu if cpu is None else cpu, addr)
        if slab is not None:
            self._free(slab, addr, on)
        else:
            del self._large[page.pfn]
            self.k.free_pages(page)
            self.k.mod_node_stat(page.node, "nr_slab_unreclaimable", -(1 << page.order))
            self.large_pages[page.node] -= 1 << page.order
        self.k.generation += 1

    def cache_of(self, addr: int) -> KmemCache | None:
        slab = self._slab_lookup(addr)
        return slab.cache if slab is not None else None

    def ksize(self, addr: int) -> int:
        """Usable size of an allocation (slab_ksize / folio_size for large kmalloc)."""
        slab = self._slab_lookup(addr)
        if slab is not None:
            return slab.cache.offset if slab.cache.flags & SLAB_TYPESAFE_BY_RCU else slab.cache.size
        page = self._large.get((addr - PAGE_OFFSET) >> PAGE_SHIFT)
        if page is None:
            raise _einval(f"{addr:#x} is not an allocated object")
        return PAGE_SIZE << page.order

    def kmem_cache_shrink(self, cache: KmemCache) -> int:
        """__kmem_cache_do_shrink(): flush cpu slabs, drop every empty slab, sort the rest so
        the fullest partial slabs come first.  Returns the pages given back to the buddy."""
        self._check_cache(cache)
        before = cache.pages
        self._flush_all(cache)
        for n in cache.node:
            if n is None:
                continue
            promote = [[] for _ in range(SHRINK_PROMOTE_MAX)]
            keep, discard = [], []
            for slab in n.partial:
                free = slab.objects - slab.inuse
                if free == slab.objects:
                    discard.append(slab)
                elif free <= SHRINK_PROMOTE_MAX:
                    promote[free - 1].append(slab)       # list_move: each bucket ends reversed
                else:
                    keep.append(slab)
            order = [x for bucket in promote for x in reversed(bucket)] + keep
            n.partial = OrderedDict.fromkeys(order)
            n.partial_free = sum(s.objects - s.inuse for s in order)
            for slab in discard:
                self._discard_slab(slab)
        self.k.generation += 1
        return before - cache.pages

    def kmem_cache_destroy(self, cache: KmemCache):
        self._check_cache(cache)
        if cache.kmalloc or cache in (self.kmem_cache, self.kmem_cache_node) or cache.name == "kmalloc_buckets":
            raise MMError(errno.EPERM, f"{cache.name} is a boot cache of the kernel and cannot be destroyed")
        if cache.inuse:
            raise MMError(errno.EBUSY, f"{cache.name} still has {cache.inuse} live objects")
        self._flush_all(cache)
        for n in cache.node:
            if n is not None:
                for slab in list(n.partial):
                    self._discard_slab(slab)
        assert cache.nr_slabs == 0 and cache.pages == 0
        self.caches.remove(cache)
        del self._by_name[cache.name]
        for _nid, addr in cache.node_objs.items():
            self._free(self._slab_lookup(addr), addr, None)
        self._free(self._slab_lookup(cache.self_obj), cache.self_obj, None)
        cache.refcount = 0
        self.k.generation += 1

    def slab_pfns(self):
        """Head pfn of every slab (for views that draw memory)."""
        return self._slab_of.keys()

    def slab_pages(self) -> dict[tuple[int, str], int]:
        """Pages held per (node, stat item): what the node counters must contain from us."""
        out: dict[tuple[int, str], int] = {}
        for slab in self._slab_of.values():
            key = (slab.node, slab.cache.stat_item)
            out[key] = out.get(key, 0) + (1 << slab.order)
        for nid, p in enumerate(self.large_pages):
            if p:
                out[(nid, "nr_slab_unreclaimable")] = out.get((nid, "nr_slab_unreclaimable"), 0) + p
        return out

    # --- boot profile ---------------------------------------------------------------------
    def apply_boot(self, caches) -> None:
        """Create the machine description's caches and fill them with live objects, spread
        evenly over the nodes with memory (or all on ``node``), each node's share allocated
        by that node's first CPU.  Whole slabs are built directly (a booted machine's full
        slabs), the remainder goes through the normal allocation path."""
        for bc in caches:
            s = self._by_name.get(bc.name)
            if s is None:
                flags = 0
                for f in bc.flags:
                    flags |= parse_slab_flags(f)
                s = self.kmem_cache_create(bc.name, bc.size, bc.align, flags, bc.ctor)
            elif s in (self.kmem_cache, self.kmem_cache_node):
                raise _einval(f"boot cache {bc.name}: its objects follow from the caches created")
            elif bc.size not in (s.object_size, s.size):
                raise _einval(f"boot cache {bc.name} exists with object size {s.object_size}, not {bc.size}")
            if not bc.objects:
                continue
            node = self._check_node(bc.node)
            nodes = [node] if node is not None else list(self.slab_nodes)
            k = len(nodes)
            shares = {nid: bc.objects // k + (i < bc.objects % k) for i, nid in enumerate(nodes)}
            slabs = {nid: (bc.slabs // k + (i < bc.slabs % k)) if bc.slabs else 0 for i, nid in enumerate(nodes)}
            for nid, count in shares.items():
                self._fill(s, nid, count, slabs[nid])
        self.k.generation += 1

    def _fill(self, s: KmemCache, nid: int, count: int, slabs: int = 0):
        """``count`` live objects on node ``nid``: whole slabs, then a cpu slab.  ``slabs``
        (boot.caches[].slabs, a cloned machine's num_objs / objperslab) asks for that many
        slabs in all: the free objects they hold beyond the cpu slab's one free object sit
        on partly used slabs at the node partial list, as a machine that has been running
        has them (slabinfo: num_objs > active_objs)."""
        if slabs and self._fill_partial(s, nid, count, slabs):
            return
        cpu = self._node_cpu.get(nid, 0)
        cs = s.cpu_slab.get(cpu)
        if cs is not None and cs.node == nid:               # top up the cpu slab first
            while count and cs.free:
                self._take(cs)
                count -= 1
        full, rest = divmod(count, s.objects)
        gfp = GFP_KERNEL | _GFP_THISNODE
        for _ in range(full):
            try:
                slab = self._new_slab(s, gfp, nid, cpu)
            except MMError:
                if not gfp & _GFP_THISNODE:
                    raise
                gfp &= ~_GFP_THISNODE                   # e.g. a DMA cache on a node without DMA
                slab = self._new_slab(s, gfp, nid, cpu)
            if slab.objects != s.objects:                   # fallback order: fewer objects
                rest += s.objects - slab.objects
            slab.free = []
            slab.used = bytearray(b"\x01") * slab.objects
            slab.inuse = slab.objects
            s.inuse += slab.objects
            slab.state = FULL
        for _ in range(rest):
            self._alloc(s, GFP_KERNEL, nid, cpu)

    def _fill_partial(self, s: KmemCache, nid: int, count: int, slabs: int) -> bool:
        """The node's ``count`` objects in ``slabs`` slabs: a cpu slab with one object free
        (allocated first, the normal way), then full slabs and partial ones sharing the
        remaining free objects, built directly (each keeps at least one object and one free
        slot, so none is discarded).  False (the caller fills as usual) when the numbers do
        not fit that shape."""
        per = s.objects
        m = slabs - 1                                   # slabs besides the cpu slab
        built = count - (per - 1)
        free = m * per - built
        if m < 1 or per < 2 or built < m or free < 0:
            return False
        npart = -(-free // (per - 1))
        full = m - npart
        cpu = self._node_cpu.get(nid, 0)
        for _ in range(per - 1):
            self._alloc(s, GFP_KERNEL, nid, cpu)
        gfp = GFP_KERNEL | _GFP_THISNODE
        n = s.node
        for i in range(m):
            try:
                slab = self._new_slab(s, gfp, nid, cpu)
            except MMError:
                gfp &= ~_GFP_THISNODE
                slab = self._new_slab(s, gfp, nid, cpu)
            if i < full:
                used = slab.objects
            else:                                       # partial: share ``free`` evenly
                j = i - full
                used = max(1, min(slab.objects - (free // npart + (j < free % npart)), slab.objects - 1))
            slab.used = bytearray(b"\x01") * used + bytearray(slab.objects - used)
            slab.free = list(range(slab.objects - 1, used - 1, -1))
            slab.inuse = used
            s.inuse += used
            if used == slab.objects:
                slab.state = FULL
            else:
                self._add_partial(n[slab.node], slab, head=False)
        return True

    # --- allocation -----------------------------------------------------------------------
    def _take(self, slab: Slab) -> int:
        i = slab.free.pop()
        slab.used[i] = 1
        slab.inuse += 1
        slab.cache.inuse += 1
        return slab.base + i * slab.cache.size

    def _alloc(self, s: KmemCache, gfp: int, node, cpu: int) -> int:
        """slab_alloc_node(): the cpu slab's freelist, else ___slab_alloc()."""
        slab = s.cpu_slab.get(cpu)
        if slab is not None and slab.free and (node is None or slab.node == node):
            i = slab.free.pop()
            slab.used[i] = 1
            slab.inuse += 1
            s.inuse += 1
            return slab.base + i * s.size
        return self._take(self._slab_alloc(s, gfp, node, cpu))

    def _slab_alloc(self, s: KmemCache, gfp: int, node, cpu: int) -> Slab:
        """___slab_alloc(): find a slab with free objects and make it this cpu's slab.

        The only step that can fail, taking a new slab from the buddy, runs before any list
        moves, so a failed allocation leaves the cache exactly as it was.

        new_slab() may enter reclaim and the OOM killer, whose victim's objects are freed
        meanwhile: a slab of this cache can come onto this cpu's partial list or a node's.
        The kernel installs the new slab all the same (retry_load_slab) and leaves those where
        the frees put them; only the cpu partial slabs that were there before go back."""
        plist = s.cpu_partial_list.get(cpu)
        fresh = None
        if not (plist and (node is None or any(x.node == node for x in plist))) \
                and not self._partial_available(s, node, cpu):
            stale = list(plist) if plist else []
            fresh = self._grow(s, gfp, node, cpu)
            if fresh is not None:
                old = s.cpu_slab.pop(cpu, None)
                if old is not None:
                    self._deactivate_slab(old)
                plist = s.cpu_partial_list.get(cpu)
                for slab in reversed(stale):         # other nodes' slabs, from the list head
                    if plist and slab.state == CPU_PARTIAL and slab.cpu == cpu and _remove_id(plist, slab):
                        self._put_partials(s, [slab])
                fresh.state, fresh.cpu = FROZEN, cpu
                s.cpu_slab[cpu] = fresh
                return fresh
        old = s.cpu_slab.pop(cpu, None)
        if old is not None:
            self._deactivate_slab(old)       # exhausted (no list) or node mismatch (back to its node)
        new = None
        while plist:                         # cpu partial slabs of other nodes go back to their nodes
            head = plist.pop()
            if node is None or head.node == node:
                new = head
                break
            self._put_partials(s, [head])
        if new is None:
            new = self._get_partial(s, node, cpu)
            if new is None:
                new = self._get_any_partial(s, node, cpu)
        if new is None:
            raise AssertionError("___slab_alloc found no slab")
        new.state, new.cpu = FROZEN, cpu
        s.cpu_slab[cpu] = new
        return new

    def _partial_available(self, s: KmemCache, node, cpu: int) -> bool:
        """Would get_partial() (and, for node=None, get_any_partial()) find a slab?"""
        search = self._mem_node[cpu] if node is None else node
        if s.node[search].partial:
            return True
        return node is None and self._any_partial_node(s, search) is not None

    def _grow(self, s: KmemCache, gfp: int, node, cpu: int) -> Slab | None:
        """new_slab() as 6.18 ___slab_alloc() tries it: with a node asked for, first
        GFP_NOWAIT|__GFP_THISNODE there; if that fails, other nodes' partial slabs (None
        is returned and the caller takes one), then a new slab anywhere."""
        if node is None or gfp & _GFP_THISNODE:
            return self._new_slab(s, gfp, node, cpu)
        try:
            return self._new_slab(s, GFP_NOWAIT | _GFP_THISNODE, node, cpu)
        except MMError:
            if self._any_partial_node(s, node) is not None:
                return None
            return self._new_slab(s, gfp, node, cpu)

    def _get_partial(self, s: KmemCache, node, cpu: int) -> Slab | None:
        """get_partial(): the local (or asked-for) node's partial list first."""
        search = self._mem_node[cpu] if node is None else node
        return self._get_partial_node(s, s.node[search], cpu)

    def _any_partial_node(self, s: KmemCache, search: int) -> KmemCacheNode | None:
        """get_any_partial(): other nodes in zonelist order, only where the partial list is
        longer than min_partial (remote_node_defrag_ratio is taken as always passing)."""
        for nid in self._node_order[search]:
            n = s.node[nid]
            if nid != search and n is not None and len(n.partial) > s.min_partial:
                return n
        return None

    def _get_any_partial(self, s: KmemCache, node, cpu: int) -> Slab | None:
        n = self._any_partial_node(s, self._mem_node[cpu] if node is None else node)
        return self._get_partial_node(s, n, cpu) if n is not None else None

    def _get_partial_node(self, s: KmemCache, n: KmemCacheNode | None, cpu: int) -> Slab | None:
        """get_partial_node(): the head slab for the cpu, and more onto the cpu partial list
        until more than cpu_partial_slabs/2 moved."""
        if n is None or not n.partial:
            return None
        first, moved = None, 0
        while n.partial:
            slab = next(iter(n.partial))
            self._remove_partial(n, slab)
            if first is None:
                first = slab
                slab.state = FROZEN
                if not s.cpu_partial_slabs:
                    break
            else:
                self._put_cpu_partial(s, slab, cpu, drain=False)
                moved += 1
                if moved > s.cpu_partial_slabs // 2:
                    break
        return first

    def _new_slab(self, s: KmemCache, gfp: int, node, cpu: int) -> Slab:
        """allocate_slab(): the cache's order without reclaim, then s->min as a fallback."""
        flags = (gfp & (GFP_RECLAIM_MASK | GFP_CONSTRAINT_MASK)) | s.allocflags
        k = self.k
        try:
            first = flags | _GFP_NOWARN | _GFP_NORETRY
            if s.order > s.min_order:
                first = (first | _GFP_NOMEMALLOC) & ~_GFP_RECLAIM
            page, objects = k.alloc_pages(s.order, first & ~_GFP_NOFAIL, node, cpu), s.objects
        except MMError:
            if s.order == s.min_order:
                raise
            page, objects = k.alloc_pages(s.min_order, flags, node, cpu), s.min_objects
        slab = Slab(s, page, objects)
        k.mod_node_stat(page.node, s.stat_item, 1 << page.order)    # account_slab()
        self._slab_of[page.pfn] = slab
        s.nr_slabs += 1
        s.pages += 1 << page.order
        n = s.node[page.node]                                       # inc_slabs_node()
        n.nr_slabs += 1
        n.total_objects += objects
        return slab

    def _kmalloc_large(self, size: int, gfp: int, node, cpu: int) -> int:
        if size > KMALLOC_MAX_SIZE:
            raise _einval(f"kmalloc of {size} bytes is more than KMALLOC_MAX_SIZE ({KMALLOC_MAX_SIZE})")
        order = get_order(size)
        page = self.k.alloc_pages(order, (gfp & ~(_GFP_DMA32)) | _GFP_COMP, node, cpu)
        self.k.mod_node_stat(page.node, "nr_slab_unreclaimable", 1 << order)
        self.large_pages[page.node] += 1 << order
        self._large[page.pfn] = page
        return PAGE_OFFSET + (page.pfn << PAGE_SHIFT)

    # --- free -----------------------------------------------------------------------------
    def _slab_lookup(self, addr) -> Slab | None:
        """virt_to_slab(): address -> pfn -> the compound head (buddy blocks are aligned)."""
        if not isinstance(addr, int):
            return None
        pfn = (addr - PAGE_OFFSET) >> PAGE_SHIFT
        return self._slab_of.get(pfn) or self._compound_slab(pfn)

    def _compound_slab(self, pfn: int) -> Slab | None:
        """The slab of order >= 1 whose pages include pfn (its head is pfn rounded down)."""
        for o in range(1, self._max_order + 1):
            slab = self._slab_of.get(pfn & ~((1 << o) - 1))
            if slab is not None:
                return slab if pfn < slab.pfn + (1 << slab.order) else None
        return None

    def _free(self, slab: Slab, addr: int, cpu) -> None:
        """do_slab_free()/__slab_free(): link the object in, then fix list membership."""
        s = slab.cache
        i, rem = divmod(addr - slab.base, s.size)
        if rem or i >= slab.objects:
            raise _einval(f"{addr:#x} is not the start of an object in {s.name}")
        if not slab.used[i]:
            raise _einval(f"double free of {addr:#x} in {s.name}")
        prior_full = not slab.free
        slab.used[i] = 0
        slab.free.append(i)
        slab.inuse -= 1
        s.inuse -= 1
        state = slab.state
        if state == FROZEN or state == CPU_PARTIAL:
            return                                           # cpu-owned: nothing to move
        n = s.node[slab.node]
        if state == NODE_PARTIAL:
            n.partial_free += 1
            if not slab.inuse and len(n.partial) >= s.min_partial:
                self._remove_partial(n, slab)
                self._discard_slab(slab)
            return
        # FULL: was on no list; it goes to the freeing cpu's partial list.
        assert prior_full
        if cpu is None:
            cpu = self._node_cpu.get(slab.node, 0)
        self._put_cpu_partial(s, slab, cpu, drain=True)

    def _put_cpu_partial(self, s: KmemCache, slab: Slab, cpu: int, drain: bool):
        """put_cpu_partial(): push on the cpu's list; a full list is flushed first."""
        plist = s.cpu_partial_list.get(cpu)
        if plist is None:
            plist = s.cpu_partial_list[cpu] = []
        elif drain and len(plist) >= s.cpu_partial_slabs:
            s.cpu_partial_list[cpu] = [slab]
            slab.state, slab.cpu = CPU_PARTIAL, cpu
            self._put_partials(s, plist)
            return
        plist.append(slab)
        slab.state, slab.cpu = CPU_PARTIAL, cpu

    def _put_partials(self, s: KmemCache, plist: list[Slab]):
        """__put_partials(): cpu partial slabs go to their node lists (tail), empty ones are
        discarded when the node already keeps min_partial."""
        for slab in reversed(plist):                         # from the list head
            n = s.node[slab.node]
            if not slab.inuse and len(n.partial) >= s.min_partial:
                self._discard_slab(slab)
            else:
                self._add_partial(n, slab, head=False)

    def _deactivate_slab(self, slab: Slab):
        """deactivate_slab(): an old cpu slab goes to the node partial head, is discarded if
        empty and the node keeps enough, or (full) goes on no list."""
        s = slab.cache
        n = s.node[slab.node]
        if s.cpu_slab.get(slab.cpu) is slab:
            del s.cpu_slab[slab.cpu]
        if not slab.inuse and len(n.partial) >= s.min_partial:
            self._discard_slab(slab)
        elif slab.free:
            self._add_partial(n, slab, head=True)
        else:
            slab.state, slab.cpu = FULL, -1

    def _flush_all(self, s: KmemCache):
        """flush_all(): every cpu slab and cpu partial list back to the nodes."""
        for cpu in sorted(set(s.cpu_slab) | set(s.cpu_partial_list)):
            slab = s.cpu_slab.get(cpu)
            if slab is not None:
                self._deactivate_slab(slab)
            plist = s.cpu_partial_list.pop(cpu, None)
            if plist:
                self._put_partials(s, plist)

    def _add_partial(self, n: KmemCacheNode, slab: Slab, head: bool):
        n.partial[slab] = None
        if head:
            n.partial.move_to_end(slab, last=False)
        n.partial_free += slab.objects - slab.inuse
        slab.state, slab.cpu = NODE_PARTIAL, -1

    def _remove_partial(self, n: KmemCacheNode, slab: Slab):
        del n.partial[slab]
        n.partial_free -= slab.objects - slab.inuse
        slab.state = FULL

    def _discard_slab(self, slab: Slab):
        """discard_slab(): dec_slabs_node, unaccount, pages back to the buddy."""
        s = slab.cache
        n = s.node[slab.node]
        n.nr_slabs -= 1
        n.total_objects -= slab.objects
        s.nr_slabs -= 1
        s.pages -= 1 << slab.order
        del self._slab_of[slab.pfn]
        slab.state = -1
        self.k.mod_node_stat(slab.node, s.stat_item, -(1 << slab.order))
        self.k.free_pages(slab.page)

    # --- helpers --------------------------------------------------------------------------
    def _check_cache(self, cache):
        if not isinstance(cache, KmemCache) or self._by_name.get(cache.name) is not cache:
            raise _einval(f"{getattr(cache, 'name', cache)!r} is not a live cache")

    # --- invariants -----------------------------------------------------------------------
    def check(self) -> None:
        """Assert every SLUB invariant; the reliability tests call this after each step."""
        seen: dict[int, Slab] = {}
        per_cache: dict[int, list[Slab]] = {}
        for pfn, slab in self._slab_of.items():
            assert slab.pfn == pfn, f"slab map key {pfn} != slab pfn {slab.pfn}"
            assert pfn & ((1 << slab.order) - 1) == 0, f"slab at pfn {pfn} not aligned to order {slab.order}"
            assert id(slab) not in seen
            seen[id(slab)] = slab
            per_cache.setdefault(id(slab.cache), []).append(slab)
        for pfn in self._large:
            assert pfn not in self._slab_of, f"pfn {pfn} is both a slab and a large kmalloc"
        names = set()
        for s in self.caches:
            assert s.name not in names and self._by_name[s.name] is s
            names.add(s.name)
            slabs = per_cache.pop(id(s), [])
            inuse = pages = 0
            per_node = {}
            for slab in slabs:
                assert len(slab.used) == slab.objects
                used = sum(slab.used)
                assert used == slab.inuse, f"{s.name}: slab inuse {slab.inuse} but {used} objects marked"
                assert len(slab.free) + slab.inuse == slab.objects, f"{s.name}: free list length wrong"
                assert len(set(slab.free)) == len(slab.free), f"{s.name}: duplicate on a free list"
                assert all(not slab.used[i] for i in slab.free), f"{s.name}: in-use object on a free list"
                assert slab.objects in (s.objects, s.min_objects)
                assert slab.objects * s.size <= PAGE_SIZE << slab.order
                inuse += slab.inuse
                pages += 1 << slab.order
                agg = per_node.setdefault(slab.node, [0, 0])
                agg[0] += 1
                agg[1] += slab.objects
                st = slab.state
                if st == FROZEN:
                    assert s.cpu_slab.get(slab.cpu) is slab, f"{s.name}: frozen slab is no cpu's slab"
                elif st == CPU_PARTIAL:
                    assert any(x is slab for x in s.cpu_partial_list.get(slab.cpu, ())), \
                        f"{s.name}: cpu partial slab not on cpu {slab.cpu}'s list"
                elif st == NODE_PARTIAL:
                    assert slab in s.node[slab.node].partial, f"{s.name}: partial slab not on its node list"
                elif st == FULL:
                    assert slab.inuse == slab.objects, f"{s.name}: slab on no list has free objects"
                else:
                    raise AssertionError(f"{s.name}: slab in unknown state {st}")
            assert inuse == s.inuse, f"{s.name}: {s.inuse} live objects counted, {inuse} in slabs"
            assert pages == s.pages and len(slabs) == s.nr_slabs, f"{s.name}: slab/page totals drifted"
            for cpu, slab in s.cpu_slab.items():
                assert slab.state == FROZEN and slab.cpu == cpu and slab.cache is s
            for cpu, plist in s.cpu_partial_list.items():
                for slab in plist:
                    assert slab.state == CPU_PARTIAL and slab.cpu == cpu and slab.cache is s
            for n in s.node:
                if n is None:
                    continue
                nr, objs = per_node.pop(n.id, (0, 0))
                assert n.nr_slabs == nr and n.total_objects == objs, f"{s.name}: node {n.id} counters drifted"
                for slab in n.partial:
                    assert slab.state == NODE_PARTIAL and slab.node == n.id and slab.cache is s
                    assert slab.free, f"{s.name}: full slab on node {n.id}'s partial list"
                assert n.partial_free == sum(x.objects - x.inuse for x in n.partial)
            assert not per_node, f"{s.name}: slabs on nodes without kmem_cache_node: {per_node}"
            if s is not self.kmem_cache:
                assert s.self_obj is not None and self.cache_of(s.self_obj) is self.kmem_cache
            assert set(s.node_objs) == set(self.slab_nodes)
        assert not per_cache, "slabs of destroyed caches are still mapped"
        nr_caches = len(self.caches)
        assert self.kmem_cache.inuse == nr_caches, f"kmem_cache holds {self.kmem_cache.inuse} objects for {nr_caches} caches"
        assert self.kmem_cache_node.inuse == nr_caches * len(self.slab_nodes)
        for nid, p in enumerate(self.large_pages):
            assert p == sum(1 << pg.order for pg in self._large.values() if pg.node == nid)
