"""Machine description: YAML -> validated, immutable dataclasses.

Every error names the file and line of the offending YAML node (``FILE:LINE: what``), so a
user never sees a traceback for a typo.  Nothing here knows about pages or zones; the
physical layout is built from this description by :mod:`procsim.mm.layout`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .mm.page_types import KiB, MiB, GiB, TiB  # noqa: F401  (re-exported)
from .mm.page_types import DEFAULT_KERNEL, KERNEL_VERSIONS, NR_PAGE_ORDERS, PAGE_SIZE, ZONE_NAMES

# The largest machine we accept: x86-64 with 4-level paging maps 64 TiB of RAM.
MAX_MEMORY = 64 * TiB
MIN_SWAP, MAX_SWAP = 10 * PAGE_SIZE, 64 * TiB      # mkswap: at least 10 pages
MAX_CPUS = 8192                      # CONFIG_NR_CPUS of distro kernels
MAX_CONFIG_BYTES = 4 << 20           # a description is a few KiB; refuse to slurp a device
DEFAULT_LOWMEM_RESERVE_RATIO = (256, 256, 32, 0, 0)   # DMA DMA32 Normal Movable Device
CONFIGS_DIR = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG = CONFIGS_DIR / "seed-server.yaml"


class ConfigError(Exception):
    """A broken machine description: ``str(e)`` is ``FILE:LINE: message``."""

    def __init__(self, path: str, line: int, message: str):
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = path, line, message


CACHE_TYPES = ("Data", "Instruction", "Unified")
CACHE_SHARING = ("core", "socket")


@dataclass(frozen=True)
class Cache:
    """One cache of a socket model, as cpuid leaf 4 describes it (drivers/base/cacheinfo.c
    prints it under cpuN/cache/indexK): level, type, size, ways, line size, and whether a
    core's threads or the whole socket share it."""
    level: int
    type: str                         # one of CACHE_TYPES
    size: int                         # bytes
    ways: int
    line_size: int = 64
    shared: str = "core"              # one of CACHE_SHARING

    @property
    def sets(self) -> int:
        return self.size // (self.ways * self.line_size)


@dataclass(frozen=True)
class Socket:
    id: int
    model: str
    cores: int
    threads: int                      # logical CPUs of this socket
    cache: tuple[Cache, ...] = ()     # none given: no cpuN/cache directories (lscpu prints no caches)

    @property
    def threads_per_core(self) -> int:
        return self.threads // self.cores


@dataclass(frozen=True)
class Dimm:
    socket: int
    size: int                         # bytes
    locator: str
    bank: str = ""
    speed: int = 2133                 # MT/s, for dmidecode
    type: str = "DDR4"


@dataclass(frozen=True)
class Tunables:
    min_free_kbytes: int | None = None          # None = the kernel's own computation
    watermark_scale_factor: int = 10
    watermark_boost_factor: int = 15000
    lowmem_reserve_ratio: tuple[int, ...] = DEFAULT_LOWMEM_RESERVE_RATIO
    transparent_hugepage: bool = True           # khugepaged raises min_free_kbytes
    kernelcore: int | None = None               # bytes of non-movable memory (ZONE_MOVABLE)
    movablecore: int | None = None              # bytes of ZONE_MOVABLE
    percpu_pagelist_high_fraction: int = 0


@dataclass(frozen=True)
class Reserved:
    kernel_image: int = 32 * MiB                # loaded at 16 MiB (CONFIG_PHYSICAL_START)
    crashkernel: int = 0                        # below 4 GiB, top-down
    pci_hole_start: int = 3 * GiB               # MMIO hole [start, 4 GiB); RAM displaced above 4 GiB
    e820: tuple[tuple[int, int], ...] = ()      # firmware-reserved [start, end) bytes inside RAM
    initrd: int = 0                             # initramfs, top of memory below 4 GiB; freed late
    initmem: int = 0                            # tail of kernel_image freed late (__init, gaps)
    swiotlb: int | None = None                  # bounce buffer below 4 GiB; None = 64 MiB if RAM > 4 GiB


@dataclass(frozen=True)
class BootCache:
    name: str
    size: int
    objects: int = 0
    align: int = 0
    flags: tuple[str, ...] = ()
    node: int | None = None                     # None = spread over nodes with memory
    ctor: str | None = None                     # constructor name: the free pointer goes after the object
    slabs: int = 0                              # slabs in all (0: as many as the objects fill); the
                                                # free objects beyond a cpu slab's one sit in partial slabs
    unused: int | None = None                   # of a dentry/inode cache's objects, those with no reference
                                                # (on the superblock's LRU, the shrinker's); None = all


@dataclass(frozen=True)
class BootPages:
    use: str                                    # one of BOOT_PAGE_USES
    size: int                                   # bytes
    node: int | None = None                     # None = spread over nodes with memory
    active: int = 0                             # bytes of it on the active LRU list (anon, pagecache)
    mapped: int = 0                             # bytes of page cache mapped by processes (Mapped)
    touched: int = 0                            # bytes of the mapped share running programs keep touching
    text: int = 0                               # bytes of the touched share they execute


@dataclass(frozen=True)
class BootFree:
    """The shape of one zone's free memory: free blocks per order (buddyinfo's row)."""
    node: int
    zone: str                                   # one of BOOT_FREE_ZONES
    orders: tuple[int, ...]                     # blocks of order 0, 1, ... (at most NR_PAGE_ORDERS)
    boost: int = 0                              # bytes of watermark boost the zone holds
    pageblocks: tuple[int, ...] = ()            # Unmovable, Movable, Reclaimable pageblocks (pagetypeinfo)
    unmovable: tuple[int, ...] = ()             # of orders' blocks, those on the Unmovable lists
    reclaimable: tuple[int, ...] = ()           # and on the Reclaimable lists (the rest: Movable)
    pcp: tuple[int, ...] = ()                   # pages on each CPU's lists (zoneinfo's count:)


CPU_NUMBERINGS = ("interleaved", "by_socket")
BOOT_FREE_ZONES = ZONE_NAMES[:4]                # a device zone has no free memory
BOOT_PAGE_USES = ("kernel_stack", "page_tables", "pagecache", "anon", "percpu", "vmalloc", "kmalloc_large",
                  "unaccounted")


@dataclass(frozen=True)
class Boot:
    caches: tuple[BootCache, ...] = ()
    pages: tuple[BootPages, ...] = ()
    free: tuple[BootFree, ...] = ()
    line: int = field(default=0, compare=False)     # where ``boot:`` is, for boot failures


@dataclass(frozen=True)
class Machine:
    name: str
    sockets: tuple[Socket, ...]
    dimms: tuple[Dimm, ...]
    distances: tuple[tuple[int, ...], ...]
    tunables: Tunables = field(default_factory=Tunables)
    reserved: Reserved = field(default_factory=Reserved)
    boot: Boot = field(default_factory=Boot)
    source: str = "<memory>"
    cpu_numbering: str = "interleaved"          # one of CPU_NUMBERINGS
    kernel: str = DEFAULT_KERNEL                # the kernel version whose rules apply (mm/profile.py)
    swap: int = 0                               # bytes of the swap file swapon'd at boot (0: none)

    # --- derived topology ---------------------------------------------------------------
    @property
    def nr_nodes(self) -> int:
        return len(self.sockets)

    @property
    def nr_cpu_ids(self) -> int:
        return sum(s.threads for s in self.sockets)

    def node_memory(self, node: int) -> int:
        return sum(d.size for d in self.dimms if d.socket == node)

    @property
    def total_memory(self) -> int:
        return sum(d.size for d in self.dimms)

    def cpu_topology(self) -> list[tuple[int, int, int]]:
        """(socket, core, thread) for each logical CPU, indexed by CPU number.

        Linux numbers CPUs in the firmware's MADT order.  Intel servers list the first thread
        of every core of socket 0, then socket 1, ..., then the second threads (the
        hyperthread siblings) in the same order, so a dual 12-core/24-thread server has node 0
        cpus 0-11,24-35 (``interleaved``).  qemu lists them socket by socket, a core's threads
        together (``by_socket``: node 0 = cpus 0-3 on 2 x 2 cores x 2 threads).
        """
        if self.cpu_numbering == "by_socket":
            return [(s.id, c, t) for s in self.sockets for c in range(s.cores)
                    for t in range(s.threads_per_core)]
        out = []
        levels = max(s.threads_per_core for s in self.sockets)
        for t in range(levels):
            for s in self.sockets:
                if t < s.threads_per_core:
                    out.extend((s.id, c, t) for c in range(s.cores))
        return out

    def node_cpus(self, node: int) -> list[int]:
        return [cpu for cpu, (s, _, _) in enumerate(self.cpu_topology()) if s == node]

    def cpu_node(self, cpu: int) -> int:
        return self.cpu_topology()[cpu][0]


# ---------------------------------------------------------------------------------------
# Parsing helpers: we walk yaml's node graph (not the plain Python values) to keep marks.

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)\s*$", re.I)
_UNITS = {"": 1, "k": KiB, "m": MiB, "g": GiB, "t": TiB, "p": 1 << 50}


def parse_size(text: str | int) -> int:
    """``16GiB``, ``16384MB``, ``16G``, ``512k`` or a plain byte count -> bytes.

    Units are binary, as in dmidecode and the kernel's memparse (MB = MiB).
    """
    if isinstance(text, int):
        return text
    m = _SIZE_RE.match(str(text))
    if not m or (m.group(3) and not m.group(2) and m.group(3).lower() != "b"):
        raise ValueError(f"not a size: {text!r} (use e.g. 16GiB, 16384MB, 16G)")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if value != int(value):
        raise ValueError(f"not a whole number of bytes: {text!r}")
    return int(value)


class _Doc:
    """Typed access to a YAML node tree with FILE:LINE errors."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, node, message: str):
        line = node.start_mark.line + 1 if node is not None else 1
        raise ConfigError(self.path, line, message)

    def mapping(self, node, what: str, allowed: set[str], required: set[str] = frozenset()):
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"{what} must be a mapping")
        out = {}
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else None
            if key not in allowed:
                self.fail(k, f"unknown key {key!r} in {what} (allowed: {', '.join(sorted(allowed))})")
            if key in out:
                self.fail(k, f"duplicate key {key!r} in {what}")
            out[key] = v
        for key in sorted(required - out.keys()):
            self.fail(node, f"{what} needs {key!r}")
        return out

    def sequence(self, node, what: str):
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, f"{what} must be a list")
        return node.value

    def scalar(self, node, what: str):
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, f"{what} must be a single value")
        return node

    def string(self, node, what: str, pattern: str | None = None) -> str:
        s = self.scalar(node, what).value
        if s == "" or (pattern and not re.fullmatch(pattern, s)):
            self.fail(node, f"{what} is not a valid name: {s!r}")
        return s

    def path_name(self, node, s: str, what: str) -> None:
        """A name that becomes a directory (fixtures OUT/<machine>, sys/kernel/slab/<cache>) and
        a journal header line: no path syntax, no line break or other control character."""
        bad = _path_name_problem(s)
        if bad:
            self.fail(node, f"{what} {s!r} {bad}")

    def integer(self, node, what: str, lo: int | None = None, hi: int | None = None) -> int:
        n = self.scalar(node, what)
        try:                            # YAML 1.1 also calls 017 (octal) and 1:30 (base 60) ints
            if n.tag != "tag:yaml.org,2002:int":
                raise ValueError
            v = int(n.value.replace("_", ""), 0)
        except ValueError:
            self.fail(n, f"{what} must be a whole number, not {n.value!r}")
        if lo is not None and v < lo:
            self.fail(n, f"{what} must be at least {lo}, not {v}")
        if hi is not None and v > hi:
            self.fail(n, f"{what} must be at most {hi}, not {v}")
        return v

    def boolean(self, node, what: str) -> bool:
        n = self.scalar(node, what)
        if n.tag != "tag:yaml.org,2002:bool":
            self.fail(n, f"{what} must be true or false, not {n.value!r}")
        return n.value.lower() in ("true", "yes", "on")

    def size(self, node, what: str, lo: int = 1, hi: int = MAX_MEMORY) -> int:
        n = self.scalar(node, what)
        try:
            v = parse_size(int(n.value) if n.tag == "tag:yaml.org,2002:int" else n.value)
        except ValueError as e:
            self.fail(n, f"{what}: {e}")
        if v < lo:
            self.fail(n, f"{what} must be at least {lo} bytes, not {n.value}")
        if v > hi:
            self.fail(n, f"{what} is absurdly large ({n.value}; at most {hi >> 40} TiB)")
        return v


_NAME = r"[^\s:]{1,64}"


def _path_name_problem(s: str) -> str | None:
    """Why ``s`` cannot name one directory entry (None when it can): ``.``, ``..``, a ``/`` or a
    control character (a newline would also break the journal's header line)."""
    if s in (".", ".."):
        return "would name a directory (. or ..)"
    if "/" in s:
        return "holds a '/' (it names a directory)"
    if any(ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 for c in s):
        return "holds a control character"
    return None


def shipped() -> list[str]:
    """Names of the machines shipped inside the package (``procsim/configs/NAME.yaml``)."""
    return sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml"))


def find(name_or_path: str | Path) -> Path:
    """A description's file: an existing path as given, else a shipped machine by name
    (``seed-vm``), so the installed package finds its machines from any directory."""
    p = Path(name_or_path)
    if p.exists() or len(p.parts) != 1:             # a name may hold a dot: seed-vm-5.4
        return p
    named = CONFIGS_DIR / f"{p}.yaml"
    return named if named.exists() else p


def load(path: str | Path) -> Machine:
    """Read and validate a machine description, by path or by shipped name (:func:`find`);
    raise ConfigError(FILE:LINE) on any problem."""
    path = str(find(path))
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)     # /dev/zero is not a machine
    except OSError as e:
        hint = "" if "/" in path or path.endswith(".yaml") else f" (shipped machines: {', '.join(shipped())})"
        raise ConfigError(path, 0, f"cannot read: {e.strerror}{hint}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(path, 0, f"larger than {MAX_CONFIG_BYTES >> 20} MiB: not a machine description")
    try:
        text = data.decode()
    except UnicodeDecodeError as e:
        raise ConfigError(path, data[:e.start].count(b"\n") + 1,
                          f"not UTF-8 text (byte {data[e.start]:#04x}); a machine description is YAML") from None
    return loads(text, path)


def loads(text: str, path: str = "<string>") -> Machine:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:                      # the composer recurses once per nesting level
        raise ConfigError(path, _too_deep(text), f"nested more than {MAX_DEPTH} levels deep: "
                                                 "not a machine description") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise ConfigError(path, mark.line + 1 if mark else 1, f"YAML syntax: {e.problem or e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(path, 1, f"YAML: {e}") from None
    d = _Doc(path)
    if root is None:
        raise ConfigError(path, 1, "empty machine description")
    top = d.mapping(root, "machine", {"name", "sockets", "dimms", "numa_distances", "tunables",
                                      "reserved", "boot", "cpu_numbering", "kernel", "swap"},
                      {"sockets", "dimms"})
    if "name" in top:
        name = d.string(top["name"], "name")
        d.path_name(top["name"], name, "name")
    else:
        name = Path(path).stem
        d.path_name(None, name, "name (from the file name; add a name: line)")

    sockets = []
    items = d.sequence(top["sockets"], "sockets")
    if not items:
        d.fail(top["sockets"], "sockets: at least one socket is needed")
    for i, sn in enumerate(items):
        m = d.mapping(sn, f"sockets[{i}]", {"model", "cores", "threads", "cache"}, {"cores"})
        cores = d.integer(m["cores"], "cores", 1, MAX_CPUS)
        threads = d.integer(m["threads"], "threads", 1, MAX_CPUS) if "threads" in m else cores
        if threads % cores:
            d.fail(m["threads"], f"threads ({threads}) must be a multiple of cores ({cores})")
        model = d.string(m["model"], "model") if "model" in m else "QEMU Virtual CPU version 2.5+"
        cache = _caches(d, m["cache"], f"sockets[{i}].cache") if "cache" in m else ()
        sockets.append(Socket(i, model, cores, threads, cache))
    if sum(s.threads for s in sockets) > MAX_CPUS:
        d.fail(top["sockets"], f"more than {MAX_CPUS} logical CPUs")

    dimms = []
    items = d.sequence(top["dimms"], "dimms")
    if not items:
        d.fail(top["dimms"], "dimms: at least one DIMM is needed")
    for i, dn in enumerate(items):
        m = d.mapping(dn, f"dimms[{i}]", {"socket", "size", "locator", "bank", "speed", "type"},
                      {"socket", "size"})
        sock = d.integer(m["socket"], "socket", 0)
        if sock >= len(sockets):
            d.fail(m["socket"], f"DIMM on socket {sock}, but the machine has sockets 0..{len(sockets) - 1}")
        size = d.size(m["size"], "size", lo=MiB)
        if size % MiB:
            d.fail(m["size"], "DIMM size must be a whole number of MiB")
        loc = d.string(m["locator"], "locator") if "locator" in m else f"CPU{sock + 1} DIMM {i}"
        dimms.append(Dimm(sock, size, loc,
                          bank=d.string(m["bank"], "bank") if "bank" in m else f"P{sock}_Node{sock}",
                          speed=d.integer(m["speed"], "speed", 1, 100000) if "speed" in m else 2133,
                          type=d.string(m["type"], "type", r"DDR[2-5]|LPDDR[45]") if "type" in m else "DDR4"))
    total = sum(x.size for x in dimms)
    if total > MAX_MEMORY:
        d.fail(top["dimms"], f"{total >> 40} TiB of memory is more than x86-64 maps ({MAX_MEMORY >> 40} TiB)")
    if sum(x.size for x in dimms if x.socket == 0) < 32 * MiB:
        d.fail(top["dimms"], "socket 0 needs at least 32 MiB of DIMMs (it holds the kernel and the low zones)")
    for s in sockets:
        if not any(x.socket == s.id for x in dimms) and s.id == 0:
            d.fail(top["dimms"], "socket 0 has no DIMMs")

    n = len(sockets)
    if "numa_distances" in top:
        rows = d.sequence(top["numa_distances"], "numa_distances")
        if len(rows) != n:
            d.fail(top["numa_distances"], f"numa_distances needs {n} rows (one per socket), has {len(rows)}")
        dist = []
        for i, rn in enumerate(rows):
            row = d.sequence(rn, f"numa_distances[{i}]")
            if len(row) != n:
                d.fail(rn, f"numa_distances row {i} needs {n} entries, has {len(row)}")
            dist.append(tuple(d.integer(x, f"distance[{i}][{j}]", 10, 254) for j, x in enumerate(row)))
        for i in range(n):
            if dist[i][i] != 10:
                d.fail(rows[i], f"numa_distances[{i}][{i}] must be 10 (local distance), not {dist[i][i]}")
            for j in range(n):
                if dist[i][j] != dist[j][i]:
                    d.fail(rows[i], f"numa_distances is not symmetric: [{i}][{j}]={dist[i][j]} but [{j}][{i}]={dist[j][i]}")
                if i != j and dist[i][j] <= 10:
                    d.fail(rows[i], f"remote distance [{i}][{j}] must be more than 10")
        distances = tuple(dist)
    else:
        distances = tuple(tuple(10 if i == j else 21 for j in range(n)) for i in range(n))

    tun = Tunables()
    if "tunables" in top:
        m = d.mapping(top["tunables"], "tunables", {"min_free_kbytes", "watermark_scale_factor",
                      "watermark_boost_factor", "lowmem_reserve_ratio", "transparent_hugepage",
                      "kernelcore", "movablecore", "percpu_pagelist_high_fraction"})
        kw = {}
        if "min_free_kbytes" in m:
            v = m["min_free_kbytes"]
            if not (isinstance(v, yaml.ScalarNode) and v.value == "auto"):
                kw["min_free_kbytes"] = d.integer(v, "min_free_kbytes", 128, 1 << 30)
        if "watermark_scale_factor" in m:        # sysctl range 1..3000
            kw["watermark_scale_factor"] = d.integer(m["watermark_scale_factor"], "watermark_scale_factor", 1, 3000)
        if "watermark_boost_factor" in m:
            kw["watermark_boost_factor"] = d.integer(m["watermark_boost_factor"], "watermark_boost_factor", 0, 1 << 30)
        if "lowmem_reserve_ratio" in m:
            rows = d.sequence(m["lowmem_reserve_ratio"], "lowmem_reserve_ratio")
            if len(rows) != 5:
                d.fail(m["lowmem_reserve_ratio"], "lowmem_reserve_ratio needs 5 numbers (DMA DMA32 Normal Movable Device)")
            kw["lowmem_reserve_ratio"] = tuple(d.integer(x, "lowmem_reserve_ratio", 0, 1 << 30) for x in rows)
        if "transparent_hugepage" in m:
            kw["transparent_hugepage"] = d.boolean(m["transparent_hugepage"], "transparent_hugepage")
        for k in ("kernelcore", "movablecore"):
            if k in m:
                kw[k] = d.size(m[k], k, lo=0)
        if "kernelcore" in kw and "movablecore" in kw:
            d.fail(m["movablecore"], "give kernelcore or movablecore, not both")
        for k in ("kernelcore", "movablecore"):
            if kw.get(k, 0) > total:
                d.fail(m[k], f"{k} is larger than the machine's memory")
        if "percpu_pagelist_high_fraction" in m:
            v = d.integer(m["percpu_pagelist_high_fraction"], "percpu_pagelist_high_fraction", 0, 1 << 20)
            if 0 < v < 8:
                d.fail(m["percpu_pagelist_high_fraction"], "percpu_pagelist_high_fraction must be 0 or at least 8")
            kw["percpu_pagelist_high_fraction"] = v
        tun = Tunables(**kw)

    res = Reserved()
    if "reserved" in top:
        m = d.mapping(top["reserved"], "reserved", {"kernel_image", "crashkernel", "pci_hole_start", "e820",
                                                    "initrd", "initmem", "swiotlb"})
        kw = {}
        for key in ("initrd", "initmem", "swiotlb"):
            if key in m:
                kw[key] = d.size(m[key], key, lo=0, hi=1 * GiB)
        if "e820" in m:
            ranges = []
            for i, rn in enumerate(d.sequence(m["e820"], "reserved.e820")):
                r = d.mapping(rn, f"reserved.e820[{i}]", {"start", "size"}, {"start", "size"})
                start = d.integer(r["start"], "start", 0, MAX_MEMORY)
                ranges.append((start, start + d.size(r["size"], "size", lo=1)))
            kw["e820"] = tuple(ranges)
        if "kernel_image" in m:
            kw["kernel_image"] = d.size(m["kernel_image"], "kernel_image", lo=MiB, hi=1 * GiB)
        if "crashkernel" in m:
            kw["crashkernel"] = d.size(m["crashkernel"], "crashkernel", lo=0, hi=2 * GiB)
        if "pci_hole_start" in m:
            v = d.size(m["pci_hole_start"], "pci_hole_start", lo=256 * MiB, hi=4 * GiB)
            if v % (128 * MiB):
                d.fail(m["pci_hole_start"], "pci_hole_start must be a multiple of 128 MiB")
            kw["pci_hole_start"] = v
        res = Reserved(**kw)
        if res.initmem > res.kernel_image:
            d.fail(m["initmem"], "initmem is the part of kernel_image freed after boot: it cannot be larger")
    node0 = sum(x.size for x in dimms if x.socket == 0)
    if res.kernel_image + res.crashkernel + 24 * MiB > min(node0, res.pci_hole_start):
        d.fail(top.get("reserved", top["dimms"]),
               f"kernel image ({res.kernel_image >> 20} MiB) and crashkernel ({res.crashkernel >> 20} MiB) "
               f"leave too little of node 0's {node0 >> 20} MiB below 4 GiB (reserved.kernel_image shrinks it)")

    boot = Boot()
    if "boot" in top:
        node_mem = [sum(x.size for x in dimms if x.socket == s.id) for s in sockets]
        boot = _load_boot(d, top["boot"], node_mem, sum(s.threads for s in sockets))
    numbering = "interleaved"
    if "cpu_numbering" in top:
        numbering = d.string(top["cpu_numbering"], "cpu_numbering")
        if numbering not in CPU_NUMBERINGS:
            d.fail(top["cpu_numbering"], f"cpu_numbering must be one of {', '.join(CPU_NUMBERINGS)}, not {numbering!r}")
    kernel = DEFAULT_KERNEL
    if "kernel" in top:
        kernel = d.scalar(top["kernel"], "kernel").value
        if kernel not in KERNEL_VERSIONS:
            d.fail(top["kernel"], f"kernel must be one of {', '.join(KERNEL_VERSIONS)} (quote it: \"6.1\"), "
                                  f"not {kernel!r}")
    swap = 0
    if "swap" in top:                           # mkswap needs 10 pages; the header page is one of them
        swap = d.size(top["swap"], "swap", lo=MIN_SWAP, hi=MAX_SWAP)
        if swap % PAGE_SIZE:
            d.fail(top["swap"], f"swap must be a whole number of {PAGE_SIZE}-byte pages")
    m = Machine(name, tuple(sockets), tuple(dimms), distances, tun, res, boot, source=path,
                cpu_numbering=numbering, kernel=kernel, swap=swap)
    _check_layout(d, top, m)
    return m


MAX_DEPTH = 100


def _too_deep(text: str) -> int:
    """The line where the YAML nests deeper than MAX_DEPTH (the event parser does not recurse)."""
    depth = 0
    try:
        for ev in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    return ev.start_mark.line + 1
            elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        pass
    return 1


def _check_layout(d: _Doc, top: dict, m: Machine) -> None:
    """What boot places in memblock (NODE_DATA, the memmap, the per-CPU areas) must fit the RAM
    the description leaves: else FILE:LINE at the part that does not fit (the e820 ranges when
    the machine fits without them, the sockets when the per-CPU areas do not fit, else dimms)."""
    from dataclasses import replace
    from .mm import layout
    try:
        layout.build(m)
        return
    except ValueError as e:
        why = str(e)
    e820 = next((v for k, v in top["reserved"].value if k.value == "e820"), None) if "reserved" in top else None
    if e820 is not None:
        try:
            layout.build(replace(m, reserved=replace(m.reserved, e820=())))
            d.fail(e820, f"the machine does not boot: {why}: the reserved e820 ranges leave too little RAM")
        except ValueError:
            pass
    if why.startswith("no room for percpu"):
        d.fail(top["sockets"], f"the machine does not boot: {why}: too many CPUs ({m.nr_cpu_ids}) for the memory "
                               "(each CPU's per-CPU area is placed on its node)")
    d.fail(top["dimms"], f"the machine does not boot: {why}: too little memory")


def _load_boot(d: _Doc, node, node_mem: list[int], nr_cpus: int) -> Boot:
    """boot.caches, boot.pages and boot.free; a workload larger than the memory it is put on
    is refused here, at its line (one that only misses by the watermarks fails when the
    kernel boots)."""
    nsockets = len(node_mem)
    m = d.mapping(node, "boot", {"caches", "pages", "free"})
    used = [0] * nsockets
    with_mem = [i for i, b in enumerate(node_mem) if b]

    def place(what_node, nbytes, where):
        if what_node is not None:
            shares = {what_node: nbytes}
        else:
            total = sum(node_mem)
            shares = {i: nbytes * node_mem[i] // total for i in with_mem}
        for i, b in shares.items():
            used[i] += b
            if used[i] > node_mem[i]:
                d.fail(where, f"the boot workload needs {_mib(used[i])} on node {i}, which has {_mib(node_mem[i])}")

    caches, pages, seen = [], [], set()
    for i, cn in enumerate(d.sequence(m["caches"], "boot.caches") if "caches" in m else ()):
        c = d.mapping(cn, f"boot.caches[{i}]", {"name", "size", "objects", "align", "flags", "node", "ctor",
                                                 "slabs", "unused"}, {"name", "size"})
        name = d.string(c["name"], "cache name", _NAME)
        d.path_name(c["name"], name, "cache name")
        if name in seen:
            d.fail(c["name"], f"cache {name!r} is listed twice")
        seen.add(name)
        flags = ()
        if "flags" in c:
            fl = c["flags"]
            if isinstance(fl, yaml.ScalarNode):
                flags = tuple(x.strip() for x in fl.value.split("|") if x.strip())
            else:
                flags = tuple(d.string(x, "flag") for x in d.sequence(fl, "flags"))
        caches.append(BootCache(
            name, d.integer(c["size"], "size", 1, 8 * MiB),
            objects=d.integer(c["objects"], "objects", 0, 1 << 32) if "objects" in c else 0,
            align=d.integer(c["align"], "align", 0, 1 << 20) if "align" in c else 0,
            flags=flags,
            node=_node_ref(d, c, nsockets),
            ctor=d.string(c["ctor"], "ctor", r"[A-Za-z_]\w*") if "ctor" in c else None,
            slabs=d.integer(c["slabs"], "slabs", 0, 1 << 32) if "slabs" in c else 0,
            unused=d.integer(c["unused"], "unused", 0, 1 << 32) if "unused" in c else None))
        if caches[-1].unused is not None and caches[-1].unused > caches[-1].objects:
            d.fail(c["unused"], f"unused ({caches[-1].unused}) is more than objects ({caches[-1].objects})")
        if caches[-1].slabs and caches[-1].slabs > caches[-1].objects:
            d.fail(c["slabs"], f"slabs ({caches[-1].slabs}) is more than objects ({caches[-1].objects}): "
                               "every slab holds at least one live object")
        place(caches[-1].node, caches[-1].objects * caches[-1].size, cn)
    for i, pn in enumerate(d.sequence(m["pages"], "boot.pages") if "pages" in m else ()):
        p = d.mapping(pn, f"boot.pages[{i}]", {"use", "size", "node", "active", "mapped", "touched", "text"}, {"use", "size"})
        use = d.string(p["use"], "use")
        if use not in BOOT_PAGE_USES:
            d.fail(p["use"], f"unknown page use {use!r} (one of {', '.join(BOOT_PAGE_USES)})")
        size = d.size(p["size"], "size", lo=PAGE_SIZE)
        if "active" in p and use not in ("anon", "pagecache"):     # used again: the active LRU list
            d.fail(p["active"], f"active: only anon and pagecache pages are on the LRU lists, not {use}")
        if "mapped" in p and use != "pagecache":                  # the share processes map (nr_mapped)
            d.fail(p["mapped"], f"mapped: only page cache is counted as Mapped, not {use}")
        active = _share(d, p, "active", size, "size")
        mapped = _share(d, p, "mapped", size, "size")
        touched = _share(d, p, "touched", mapped, "mapped")        # what running programs keep
        text = _share(d, p, "text", touched, "touched")            # touching: reclaim keeps it
        pages.append(BootPages(use, size, _node_ref(d, p, nsockets), active, mapped, touched, text))
        place(pages[-1].node, pages[-1].size, pn)
    free, zones = [], set()
    for i, fn in enumerate(d.sequence(m["free"], "boot.free") if "free" in m else ()):
        f = d.mapping(fn, f"boot.free[{i}]", {"node", "zone", "orders", "boost", "pageblocks", "unmovable",
                                              "reclaimable", "pcp"}, {"node", "zone", "orders"})
        nid = d.integer(f["node"], "node", 0, nsockets - 1)
        zone = d.string(f["zone"], "zone")
        if zone not in BOOT_FREE_ZONES:
            d.fail(f["zone"], f"unknown zone {zone!r} (one of {', '.join(BOOT_FREE_ZONES)})")
        if (nid, zone) in zones:
            d.fail(f["zone"], f"node {nid} {zone} is listed twice")
        zones.add((nid, zone))
        orders = tuple(d.integer(x, "free blocks", 0, 1 << 40) for x in d.sequence(f["orders"], "orders"))
        if not 0 < len(orders) <= NR_PAGE_ORDERS:
            d.fail(f["orders"], f"orders: 1 to {NR_PAGE_ORDERS} counts (blocks of order 0, 1, ...), not {len(orders)}")
        if sum(n << o for o, n in enumerate(orders)) * PAGE_SIZE > node_mem[nid]:
            d.fail(f["orders"], f"{_mib(sum(n << o for o, n in enumerate(orders)) * PAGE_SIZE)} free "
                                f"on node {nid}, which has {_mib(node_mem[nid])}")
        boost = d.size(f["boost"], "boost", lo=0) if "boost" in f else 0
        if boost % PAGE_SIZE:
            d.fail(f["boost"], f"boost must be a whole number of {PAGE_SIZE}-byte pages")
        lists = {}
        for key, n in (("pageblocks", 3), ("unmovable", len(orders)), ("reclaimable", len(orders))):
            lists[key] = tuple(d.integer(x, key, 0, 1 << 40) for x in d.sequence(f[key], key)) if key in f else ()
            if key in f and len(lists[key]) != n:
                d.fail(f[key], f"{key}: {n} counts ({'Unmovable, Movable, Reclaimable' if n == 3 else 'as orders'}), "
                               f"not {len(lists[key])}")
        for o, (a, u, r) in enumerate(zip(orders, lists["unmovable"] or [0] * len(orders),
                                          lists["reclaimable"] or [0] * len(orders), strict=True)):
            if u + r > a:
                d.fail(f["orders"], f"order {o}: {u} unmovable and {r} reclaimable free blocks, of {a} in all")
        pcp = tuple(d.integer(x, "pcp", 0, 1 << 40) for x in d.sequence(f["pcp"], "pcp")) if "pcp" in f else ()
        if len(pcp) > nr_cpus:
            d.fail(f["pcp"], f"pcp: {len(pcp)} counts (one per CPU), the machine has {nr_cpus} CPUs")
        free.append(BootFree(nid, zone, orders, boost, lists["pageblocks"], lists["unmovable"], lists["reclaimable"],
                             pcp))
    return Boot(tuple(caches), tuple(pages), tuple(free), line=node.start_mark.line + 1)


def _share(d: _Doc, p: dict, key: str, of: int, whole: str) -> int:
    """A boot.pages[] entry's share in bytes (0 when not given), at most ``of`` (``whole``'s)."""
    if key not in p:
        return 0
    v = d.size(p[key], key, lo=0)
    if v > of:
        d.fail(p[key], f"{key} ({_bytes(v)}) is more than {whole} ({_bytes(of)})")
    return v


def _bytes(nbytes: int) -> str:
    """MiB (GiB from 10 GiB) when whole, else KiB."""
    return _mib(nbytes) if not nbytes % MiB else f"{nbytes >> 10} KiB"


def _mib(nbytes: int) -> str:
    return f"{nbytes >> 20} MiB" if nbytes < 10 * GiB else f"{nbytes / GiB:.1f} GiB"


def _caches(d: _Doc, node, what: str) -> tuple[Cache, ...]:
    """A socket's ``cache:`` list: {level, type, size, ways, line_size?, shared?} each; the
    size must be ways x line size x a whole number of sets, a level has at most one cache of
    a type, and Unified excludes Data/Instruction at the same level."""
    out: list[Cache] = []
    seen: dict[tuple[int, str], object] = {}
    for j, cn in enumerate(d.sequence(node, what)):
        w = f"{what}[{j}]"
        m = d.mapping(cn, w, {"level", "type", "size", "ways", "line_size", "shared"}, {"level", "type", "size", "ways"})
        level = d.integer(m["level"], f"{w}.level", 1, 4)
        ctype = d.string(m["type"], f"{w}.type")
        if ctype not in CACHE_TYPES:
            d.fail(m["type"], f"{w}.type must be one of {', '.join(CACHE_TYPES)}, not {ctype!r}")
        size = d.size(m["size"], f"{w}.size", lo=1024, hi=1 << 32)
        ways = d.integer(m["ways"], f"{w}.ways", 1, 1024)
        line = d.integer(m["line_size"], f"{w}.line_size", 16, 1024) if "line_size" in m else 64
        if line & (line - 1):
            d.fail(m["line_size"], f"{w}.line_size must be a power of two, not {line}")
        if size % (ways * line):
            d.fail(m["size"], f"{w}.size ({size} bytes) is not ways ({ways}) x line size ({line}) x a whole "
                              f"number of sets")
        shared = d.string(m["shared"], f"{w}.shared") if "shared" in m else ("socket" if level >= 3 else "core")
        if shared not in CACHE_SHARING:
            d.fail(m["shared"], f"{w}.shared must be one of {', '.join(CACHE_SHARING)}, not {shared!r}")
        for key in ((level, ctype), (level, "Unified")) if ctype != "Unified" else \
                ((level, "Unified"), (level, "Data"), (level, "Instruction")):
            if key in seen:
                d.fail(cn, f"{w}: a level-{level} {ctype} cache clashes with the level-{level} {key[1]} "
                           f"cache listed before it")
        seen[(level, ctype)] = cn
        out.append(Cache(level, ctype, size, ways, line, shared))
    # cacheinfo's index order: by level, Data before Instruction at a level (cpuid leaf 4)
    order = {"Data": 0, "Instruction": 1, "Unified": 2}
    return tuple(sorted(out, key=lambda c: (c.level, order[c.type])))


def _node_ref(d: _Doc, m: dict, nsockets: int) -> int | None:
    if "node" not in m:
        return None
    v = d.integer(m["node"], "node", 0)
    if v >= nsockets:
        d.fail(m["node"], f"node {v} does not exist (nodes 0..{nsockets - 1})")
    return v


def load_default() -> Machine:
    return load(DEFAULT_CONFIG)
