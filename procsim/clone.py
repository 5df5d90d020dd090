"""``procsim clone``: a real machine's /proc and /sys in, a machine description out.

SOURCE is ``/`` (the running machine), a directory laid out like ``/`` (a copy of a box's
/proc and /sys, a ``procsim fixtures`` tree, a sosreport directory) or a sosreport tarball.
Every file is optional: a missing one narrows what the description reproduces and is named
in the notes, it never stops the clone.

The description is worked out in the order the kernel builds the machine:

1. hardware (``clone_hardware``): the NUMA nodes become sockets (procsim ties a node to a
   socket) with their CPUs and numbering, DIMMs (dmidecode, else the node sizes), distances;
   the RAM ranges (/proc/iomem's ``System RAM``, else synthesised from zoneinfo's spans) are
   expressed the only way procsim's layout places memory (``layout.place_dimms``): DIMM sizes,
   the PCI hole and firmware-reserved e820 ranges, so every zone's start/spanned/present come
   out exact; the kernel image is then sized so node 0's DMA32 ``managed`` matches, and
   vm sysctls, the command line and /proc/version fill in the tunables and profile.
2. state (``clone_state``): slab caches with the geometry slabinfo (and /sys/kernel/slab)
   shows and their live objects, and the pages by use meminfo counts, as ``boot:``; each is
   what the real machine holds less what procsim's own boot already holds.

``check`` boots the description and compares its files with the source's, file by file.
"""
from __future__ import annotations

import os
import re
import stat
import tarfile
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from .machine import (MiB, GiB, Machine, Socket, Dimm, Tunables, Reserved, Boot, BootCache, BootPages, BootFree,
                      BOOT_FREE_ZONES, Cache, CACHE_TYPES)
from .mm.layout import merge_ranges as _merge, subtract_ranges
from .mm.page_types import NR_PAGE_ORDERS, PAGE_SHIFT, PAGE_SIZE, ZONE_NAMES

READ_CAP = 32 << 20                  # no /proc file we read is this large; a device would be
TAR_MEMBER_CAP = 64 << 20
MAX_DMA32_PFN = (4 * GiB) >> PAGE_SHIFT
MAX_DMA_PFN = (16 * MiB) >> PAGE_SHIFT
HOLE_ALIGN = (128 * MiB) >> PAGE_SHIFT          # machine.py: pci_hole_start is a multiple of 128 MiB
MIB_PAGES = MiB >> PAGE_SHIFT
LEGACY_HOLE = (0x9F, 0x100)                     # layout.LOW_HOLE: e820 RAM ends at 0x9fc00
ZONES = ("DMA", "DMA32", "Normal", "Movable", "Device")


class CloneError(Exception):
    """SOURCE cannot be read at all (``str(e)`` is the message for the user)."""


# ---- the source ------------------------------------------------------------------------

# Where a file may live: / and new fixture trees first, then older procsim fixture trees
# (proc/sysctl/vm, proc/kmsg), sosreport's command outputs.
ALTERNATES = {
    "dmesg": ("sos_commands/kernel/dmesg", "sos_commands/logs/dmesg", "var/log/dmesg", "dmesg"),
    "dmidecode": ("sos_commands/hardware/dmidecode", "dmidecode"),
    "lscpu": ("sos_commands/processor/lscpu", "lscpu"),
    "sysctl": ("sos_commands/kernel/sysctl_-a", "sysctl_-a"),
}


class Source:
    """The files of one machine, by path relative to ``/``.  Only regular files are read
    (``/dev/kmsg`` would block), at most READ_CAP bytes each; unreadable = absent."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.files: dict[str, bytes] | None = None       # a tarball's members, in memory
        if self.path.is_file():
            self.files = _read_tar(self.path)
            self.root = ""
        elif self.path.is_dir():
            self.root = ""
        else:
            raise CloneError(f"{path}: no such file or directory")
        # a live procfs (``/``, or /proc bind-mounted somewhere): its kmsg files are regular
        # files whose reads block until the kernel logs something; never read them there
        self.live = self.files is None and (self.path / "proc" / "self" / "stat").exists()

    BLOCKING = ("proc/kmsg", "dev/kmsg")

    def read(self, rel: str) -> str | None:
        rel = rel.strip("/")
        if self.live and rel in self.BLOCKING:
            return None
        if self.files is not None:
            data = self.files.get(rel)
            return None if data is None else data.decode(errors="replace")
        data = self.read_bytes(rel)
        return None if data is None else data.decode(errors="replace")

    def read_bytes(self, rel: str) -> bytes | None:
        rel = rel.strip("/")
        if self.live and rel in self.BLOCKING:
            return None
        if self.files is not None:
            return self.files.get(rel)
        try:
            f = self.path / rel
            if not stat.S_ISREG(os.stat(f).st_mode):
                return None
            chunks, n = [], 0
            with open(f, "rb") as fh:            # 64 KiB reads: /proc/sys refuses huge ones
                while n < READ_CAP:
                    b = fh.read(65536)
                    if not b:
                        break
                    chunks.append(b)
                    n += len(b)
            return b"".join(chunks)
        except OSError:
            return None

    def first(self, *rels: str) -> tuple[str | None, str | None]:
        """(text, path) of the first of ``rels`` present."""
        for r in rels:
            t = self.read(r)
            if t is not None:
                return t, r
        return None, None

    def sysctl(self, name: str) -> str | None:
        """vm.NAME: /proc/sys/vm (older procsim trees: proc/sysctl/vm), else a sosreport's
        ``sysctl -a`` output."""
        t = self.first(f"proc/sys/vm/{name}", f"proc/sysctl/vm/{name}")[0]
        if t is not None:
            return t
        for line in (self.first(*ALTERNATES["sysctl"])[0] or "").splitlines():
            k, sep, v = line.partition("=")
            if sep and k.strip() == f"vm.{name}":
                return v.strip() + "\n"
        return None

    def listdir(self, rel: str) -> list[str]:
        rel = rel.strip("/")
        if self.files is not None:
            pre = rel + "/"
            return sorted({k[len(pre):].split("/", 1)[0] for k in self.files if k.startswith(pre)})
        try:
            return sorted(os.listdir(self.path / rel))
        except OSError:
            return []


def _read_tar(path: Path) -> dict[str, bytes]:
    """A sosreport (or any) tarball's regular files, in memory, names relative to its top
    directory.  Nothing is extracted: absolute names, ``..`` and links are skipped, so no
    member can reach outside; members over TAR_MEMBER_CAP are skipped."""
    try:
        tar = tarfile.open(path)
    except (tarfile.TarError, OSError) as e:
        raise CloneError(f"{path}: not a directory or a tarball ({e})") from None
    out: dict[str, bytes] = {}
    with tar:
        for m in tar:
            if not m.isreg() or m.size > TAR_MEMBER_CAP:
                continue
            p = PurePosixPath(m.name)
            if p.is_absolute() or ".." in p.parts:
                continue
            f = tar.extractfile(m)
            if f is not None:
                out[str(p)] = f.read()
    tops = {k.split("/", 1)[0] for k in out}
    if len(tops) == 1 and not any(k.startswith(("proc/", "sys/")) for k in out):
        top = next(iter(tops)) + "/"
        out = {k[len(top):]: v for k, v in out.items() if k.startswith(top)}
    return out


# ---- parsing the real files ---------------------------------------------------------------

@dataclass
class RealZone:
    node: int
    name: str
    start: int = 0
    spanned: int = 0
    present: int = 0
    managed: int = 0
    free: int = 0
    wmark: tuple[int, int, int] = (0, 0, 0)
    pcp: list[int] = field(default_factory=list)     # pagesets' count:, cpu 0 first

    @property
    def end(self) -> int:
        return self.start + self.spanned


def parse_zoneinfo(text: str) -> list[RealZone]:
    zones, cur = [], None
    for line in text.splitlines():
        m = re.match(r"Node (\d+), zone\s+(\S+)", line)
        if m:
            cur = RealZone(int(m.group(1)), m.group(2))
            zones.append(cur)
            continue
        if cur is None:
            continue
        s = line.split()
        if len(s) >= 2 and s[0] in ("spanned", "present", "managed") and s[1].isdigit():
            setattr(cur, s[0], int(s[1]))
        elif s[:2] == ["pages", "free"] and len(s) > 2 and s[2].isdigit():
            cur.free = int(s[2])
        elif s[:1] == ["count:"] and len(s) == 2 and s[1].isdigit():
            cur.pcp.append(int(s[1]))
        elif s[:1] == ["start_pfn:"] and len(s) > 1 and s[1].isdigit():
            cur.start = int(s[1])
        elif len(s) == 2 and s[0] in ("min", "low", "high") and s[1].isdigit():
            w = list(cur.wmark)
            w[("min", "low", "high").index(s[0])] = int(s[1])
            cur.wmark = tuple(w)
    for z in zones:                   # kernels before 4.13 print no start_pfn: the zone order gives it
        if not z.start and z.spanned:
            z.start = {"DMA": 1, "DMA32": MAX_DMA_PFN}.get(z.name, 0)
    return zones


def parse_kv(text: str) -> dict[str, int]:
    """meminfo / node meminfo / vmstat: name -> number (kB stays kB)."""
    out = {}
    for line in text.splitlines():
        line = re.sub(r"^Node \d+ ", "", line)
        parts = line.replace(":", " ").split()
        if len(parts) >= 2:
            num = parts[-2] if parts[-1] == "kB" else parts[-1]
            if num.isdigit():
                out[parts[0]] = int(num)
    return out


def parse_cpulist(text: str) -> list[int]:
    """``0-3,8`` -> [0, 1, 2, 3, 8]; ValueError for anything else or more than MAX_CPUS."""
    from .machine import MAX_CPUS
    out = []
    for part in text.strip().split(","):
        if not part:
            continue
        a, _, b = part.partition("-")
        lo, hi = int(a), int(b or a)
        if lo < 0 or hi < lo or hi - lo + len(out) >= MAX_CPUS or hi > 1 << 20:
            raise ValueError(f"not a CPU list: {text.strip()[:40]!r}")
        out.extend(range(lo, hi + 1))
    return out


def parse_iomem_ram(text: str) -> list[tuple[int, int]]:
    """Top-level ``System RAM`` ranges as whole pages [start, end) (memblock keeps whole pages
    only); [] when the addresses are hidden (read as non-root: all zeros)."""
    out = []
    for line in text.splitlines():
        if line.startswith(" ") or ": System RAM" not in line:
            continue
        a, b = line.split(" :", 1)[0].split("-")
        s, e = int(a, 16), int(b, 16) + 1
        s, e = -(-s >> PAGE_SHIFT), e >> PAGE_SHIFT
        if e > s:
            out.append((s, e))
    if not out or all(s == 0 for s, _ in out) and len(out) > 1:
        return []
    return sorted(out)


def parse_size(text: str) -> int | None:
    """The kernel's memparse(): 512M, 2G, 1024K, plain bytes."""
    m = re.fullmatch(r"(\d+)([KMGTPE]?)", text.strip(), re.I)
    if not m:
        return None
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}[m.group(2).lower()]


def parse_dmidecode(text: str) -> list[dict]:
    """The Memory Device (type 17) sections with a size: size (bytes), locator, bank, speed, type."""
    out = []
    for block in re.split(r"\n(?=Handle )", text):
        if "Memory Device" not in block.split("\n", 2)[:2][-1] and "\nMemory Device" not in block:
            continue
        kv = {}
        for line in block.splitlines():
            if ":" in line and line.startswith("\t") and not line.startswith("\t\t"):
                k, v = line.strip().split(":", 1)
                kv[k.strip()] = v.strip()
        m = re.match(r"(\d+)\s*([KMGT]B)", kv.get("Size", ""))
        if not m:
            continue
        size = int(m.group(1)) << {"KB": 10, "MB": 20, "GB": 30, "TB": 40}[m.group(2)]
        sp = re.match(r"(\d+)", kv.get("Speed", "") or kv.get("Configured Memory Speed", ""))
        bank = kv.get("Bank Locator", "")
        out.append(dict(size=size, locator=kv.get("Locator", ""), bank="" if bank == "Not Specified" else bank,
                        speed=int(sp.group(1)) if sp else None, type=kv.get("Type", "")))
    return out


def parse_smbios(data: bytes) -> list[dict]:
    """The same from the raw SMBIOS table (/sys/firmware/dmi/tables/DMI, root only): type 17."""
    out, i = [], 0
    types = {0x12: "DDR", 0x13: "DDR2", 0x18: "DDR3", 0x1A: "DDR4", 0x1E: "LPDDR4", 0x22: "DDR5", 0x23: "LPDDR5"}
    while i + 4 <= len(data):
        typ, length = data[i], data[i + 1]
        if length < 4:
            break
        j = data.find(b"\0\0", i + length)
        if j < 0:
            break
        strings = data[i + length:j].split(b"\0")
        f = data[i:i + length]

        def s(idx, strings=strings):
            return strings[idx - 1].decode(errors="replace").strip() if 0 < idx <= len(strings) else ""
        if typ == 17 and length >= 0x17:
            size = int.from_bytes(f[0x0C:0x0E], "little")
            if size == 0x7FFF and length >= 0x20:
                nbytes = int.from_bytes(f[0x1C:0x20], "little") << 20
            elif size in (0, 0xFFFF):
                nbytes = 0
            else:
                nbytes = (size & 0x7FFF) << (10 if size & 0x8000 else 20)
            if nbytes:
                out.append(dict(size=nbytes, locator=s(f[0x10]), bank=s(f[0x11]),
                                speed=int.from_bytes(f[0x15:0x17], "little") or None,
                                type=types.get(f[0x12], "")))
        if typ == 1 and length >= 8:
            out.append(dict(system=True, manufacturer=s(f[4]), product=s(f[5])))
        if typ == 127:
            break
        i = j + 2
    return out


def kernel_version(text: str) -> tuple[int, int] | None:
    m = re.search(r"Linux version (\d+)\.(\d+)", text or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def nearest_profile(ver: tuple[int, int]) -> str:
    from .mm.profile import PROFILES
    key = ver[0] * 1000 + ver[1]

    def dist(p):
        a, b = (int(x) for x in p.split("."))
        return abs(a * 1000 + b - key)
    return min(PROFILES, key=dist)


# ---- the clone ---------------------------------------------------------------------------

@dataclass
class Clone:
    """What was worked out: the machine, and a note per thing that could not be reproduced."""
    machine: Machine
    notes: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    real_zones: list[RealZone] = field(default_factory=list)


def clone(src: Source | str | Path, state: bool = True, name: str | None = None) -> Clone:
    if not isinstance(src, Source):
        src = Source(src)
    c = clone_hardware(src, name)
    if state:
        clone_state(src, c)
    return c


def _cpu_caches(src: Source, cpu: int, siblings: int) -> tuple[Cache, ...]:
    """The socket's ``cache:`` list from cpuN/cache/indexK (drivers/base/cacheinfo.c's files):
    level, type, size, ways, line size, and shared by the whole socket when shared_cpu_list
    names more CPUs than the core's threads (siblings).  () when the files are not there."""
    out = []
    base = f"sys/devices/system/cpu/cpu{cpu}/cache"
    for d in sorted(src.listdir(base)):
        if not re.fullmatch(r"index\d+", d):
            continue
        get = {a: (src.read(f"{base}/{d}/{a}") or "").strip() for a in
               ("level", "type", "size", "ways_of_associativity", "coherency_line_size", "shared_cpu_list")}
        m = re.fullmatch(r"(\d+)([KMG]?)", get["size"])
        if not m or not get["level"].isdigit() or get["type"] not in CACHE_TYPES \
                or not get["ways_of_associativity"].isdigit():
            return ()
        size = int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]
        line = int(get["coherency_line_size"]) if get["coherency_line_size"].isdigit() else 64
        try:
            sharing = len(parse_cpulist(get["shared_cpu_list"]))
        except ValueError:
            sharing = 0
        out.append(Cache(int(get["level"]), get["type"], size, int(get["ways_of_associativity"]), line,
                         "socket" if sharing > siblings else "core"))
    return tuple(out)


def _nodes(src: Source) -> dict[int, list[int]]:
    """{node: cpus} from sys/devices/system/node/node*/cpulist (lscpu's NUMA lines in a sosreport
    without it); {} when nothing says."""
    out = {}
    for d in src.listdir("sys/devices/system/node"):
        m = re.fullmatch(r"node(\d+)", d)
        if m:
            t = src.read(f"sys/devices/system/node/{d}/cpulist")
            try:
                out[int(m.group(1))] = parse_cpulist(t) if t else []
            except ValueError:
                out[int(m.group(1))] = []
    if not out:
        lscpu = src.first(*ALTERNATES["lscpu"])[0] or ""
        for m in re.finditer(r"NUMA node(\d+) CPU\(s\):\s*(\S*)", lscpu):
            try:
                out[int(m.group(1))] = parse_cpulist(m.group(2))
            except ValueError:
                pass
    return dict(sorted(out.items()))


def _cpu_ids(src: Source, cpus: list[int], cpuinfo: dict[int, dict]) -> dict[int, tuple[int, int]]:
    """cpu -> (package, core) from sysfs topology, else cpuinfo's physical id / core id."""
    out = {}
    for c in cpus:
        pk = src.read(f"sys/devices/system/cpu/cpu{c}/topology/physical_package_id")
        co = src.read(f"sys/devices/system/cpu/cpu{c}/topology/core_id")
        if pk is not None and co is not None:
            out[c] = (int(pk), int(co))
        elif c in cpuinfo and "core id" in cpuinfo[c]:
            out[c] = (int(cpuinfo[c].get("physical id", 0)), int(cpuinfo[c]["core id"]))
    return out


def _cpuinfo(text: str | None) -> dict[int, dict]:
    out = {}
    for block in (text or "").split("\n\n"):
        kv = {}
        for line in block.splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                kv[k.strip()] = v.strip()
        if "processor" in kv and kv["processor"].isdigit():
            out[int(kv["processor"])] = kv
    return out


def clone_hardware(src: Source, name: str | None = None) -> Clone:
    notes, comments = [], []
    zi = src.read("proc/zoneinfo")
    real = parse_zoneinfo(zi) if zi else []
    if zi and not any(z.spanned for z in real):
        notes.append("proc/zoneinfo: no zone with a span in it: not used")
        real = []
    if not real:
        notes.append("proc/zoneinfo: missing: zone spans come from node sizes (node meminfo or meminfo) alone")
    cpuinfo = _cpuinfo(src.read("proc/cpuinfo"))
    lscpu = src.first(*ALTERNATES["lscpu"])[0] or ""
    nodes = _nodes(src)
    if not nodes:
        ncpu = len(cpuinfo) or _lscpu_int(lscpu, "CPU(s)")
        if not ncpu:
            ncpu = _cpus_from_slab_orders(src.read("proc/slabinfo"))
            if ncpu:
                comments.append(f"no CPU list: {ncpu} CPUs, the fewest whose SLUB slab orders are slabinfo's "
                                "(calculate_order() asks for more objects per slab the more CPUs there are)")
            else:
                ncpu = 1
                notes.append("CPUs: no node cpulists, cpuinfo, lscpu or slabinfo: one CPU assumed")
        nodes = {0: list(range(ncpu))}
    node_ids = sorted(set(nodes) | {z.node for z in real})
    if node_ids != list(range(len(node_ids))):
        notes.append(f"nodes {node_ids}: procsim numbers nodes 0..N-1; renumbered in order")
    renum = {n: i for i, n in enumerate(node_ids)}
    real = [replace(z, node=renum[z.node]) for z in real]
    nodes = {renum[n]: c for n, c in nodes.items()}
    for n in range(len(node_ids)):
        nodes.setdefault(n, [])

    # ---- sockets = nodes, with their cores and threads
    all_cpus = sorted(c for cs in nodes.values() for c in cs)
    ids = _cpu_ids(src, all_cpus, cpuinfo)
    sockets = []
    for n in sorted(nodes):
        cpus = nodes[n]
        model = (cpuinfo.get(cpus[0], {}).get("model name") if cpus else None) \
            or _lscpu_str(lscpu, "Model name") or "QEMU Virtual CPU version 2.5+"
        if not cpus:
            notes.append(f"node {n} has no CPUs: procsim gives every node (socket) at least one; given 1")
            sockets.append(Socket(n, model, 1, 1))
            continue
        cores = len({ids[c] for c in cpus if c in ids}) if all(c in ids for c in cpus) else 0
        if not cores:
            tpc = _lscpu_int(lscpu, "Thread(s) per core") or 1
            cores = len(cpus) // tpc if len(cpus) % tpc == 0 else len(cpus)
        if len(cpus) % cores:
            notes.append(f"node {n}: {len(cpus)} CPUs on {cores} cores is uneven: one thread per core assumed")
            cores = len(cpus)
        sockets.append(Socket(n, model, cores, len(cpus), _cpu_caches(src, cpus[0], len(cpus) // cores)))
    pkgs = {p for p, _ in ids.values()}
    if len(pkgs) != len(sockets) and ids:
        comments.append(f"{len(pkgs)} physical package(s) on {len(sockets)} NUMA node(s): "
                        "procsim makes one socket per node")
    if all_cpus != list(range(len(all_cpus))):
        notes.append(f"CPUs {all_cpus[:8]}...: procsim numbers CPUs 0..N-1 (offline or absent CPUs dropped)")
    numbering = "interleaved"
    for cand in ("interleaved", "by_socket"):
        m = Machine("x", tuple(sockets), (Dimm(0, GiB, "x"),), (), cpu_numbering=cand)
        if all(m.node_cpus(n) == sorted(nodes[n]) for n in nodes if nodes[n]):
            numbering = cand
            break
    else:
        notes.append("node cpulists follow neither interleaved nor socket-by-socket numbering: "
                     "node cpulists will differ")

    # ---- distances
    n = len(sockets)
    dist = []
    for i in range(n):
        t = src.read(f"sys/devices/system/node/node{node_ids[i]}/distance") or ""
        dist.append(tuple(int(x) for x in t.split()) if re.fullmatch(r"[\d\s]+", t) else ())
    if not all(len(r) == n for r in dist):
        dist = [tuple(10 if i == j else 21 for j in range(n)) for i in range(n)]
        if n > 1:
            notes.append("node*/distance: missing: the default 10/21 distances")
    elif any(dist[i][j] != dist[j][i] or (i != j and dist[i][j] <= 10) or dist[i][i] != 10
             for i in range(n) for j in range(n)):
        notes.append(f"node distances {dist} are not symmetric with a local 10: procsim refuses those; default used")
        dist = [tuple(10 if i == j else 21 for j in range(n)) for i in range(n)]

    # ---- the RAM each node has, in pfn ranges
    ram = _node_ram(src, real, n, notes)
    cmdline = (src.read("proc/cmdline") or "").split()
    args = {}
    for a in cmdline:
        if a == "--":
            break
        k, _, v = a.partition("=")
        args[k] = v
    dmesg = src.first(*ALTERNATES["dmesg"])[0] or src.first("dev/kmsg", "proc/kmsg")[0] or ""

    res_kw: dict = {}
    dimm_pages, e820, hole = _place(ram, notes)
    if hole != Reserved().pci_hole_start >> PAGE_SHIFT:
        res_kw["pci_hole_start"] = hole << PAGE_SHIFT
    if e820:
        res_kw["e820"] = tuple((s << PAGE_SHIFT, e << PAGE_SHIFT) for s, e in e820)
    # memblock reservations the description names: the initrd and init memory freed late
    # (dmesg), crashkernel (iomem, else the command line), SWIOTLB (dmesg, the command line)
    m = re.search(r"Freeing initrd memory: (\d+)K", dmesg)
    if m:
        res_kw["initrd"] = int(m.group(1)) << 10
    init = sum(int(x) for x in re.findall(r"Freeing unused (?:kernel image \([^)]*\)|decrypted) memory: (\d+)K", dmesg))
    if init:
        res_kw["initmem"] = init << 10
    iomem = src.read("proc/iomem") or ""
    crash = _crashkernel(iomem, args.get("crashkernel"), sum(s for s in dimm_pages) << PAGE_SHIFT)
    if crash:
        res_kw["crashkernel"] = crash
    m = re.search(r"software IO TLB: mapped \[mem [^\]]*\] \((\d+)MB\)", dmesg)
    if m:
        res_kw["swiotlb"] = int(m.group(1)) << 20
    elif args.get("swiotlb", "").split(",")[0].isdigit():
        res_kw["swiotlb"] = int(args["swiotlb"].split(",")[0]) << 11
    elif "swiotlb" in args and "noforce" in args["swiotlb"] or args.get("iommu") in ("pt", "on", "force"):
        res_kw["swiotlb"] = 0

    dimms = _dimms(src, dimm_pages, notes)
    tun = _tunables(src, args, notes)
    ver = kernel_version(src.read("proc/version") or "")
    kernel = nearest_profile(ver) if ver else "6.18"
    if ver and kernel != f"{ver[0]}.{ver[1]}":
        comments.append(f"kernel {ver[0]}.{ver[1]}: the nearest profile procsim has is {kernel}")
    if not ver:
        text, path = src.first("proc/vmstat", "proc/zoneinfo")
        kernel = _profile_from_vmstat(text, events=path == "proc/vmstat")
        if kernel:
            comments.append(f"no proc/version: the {kernel} profile, whose counter names {path} has")
        else:
            kernel = "6.18"
            notes.append("proc/version, proc/vmstat and proc/zoneinfo: missing: the 6.18 profile")
    swap = _swap(src)
    mname = name or _host_name(src)
    mach = Machine(mname, tuple(sockets), tuple(dimms), tuple(dist), tun, Reserved(**res_kw),
                   source="<clone>", cpu_numbering=numbering, kernel=kernel, swap=swap)
    mach = _fit_movable(mach, real, notes)
    mach = _fit_kernel_image(mach, real, notes)
    _note_managed(mach, real, notes)
    mach = _fit_min_free_kbytes(mach, src, notes)
    return Clone(mach, notes, comments, real)


def _profile_from_vmstat(text: str | None, events: bool = True) -> str | None:
    """The profile whose vmstat counter names are most like the file's (they differ between
    kernel versions: nr_unstable, nr_zspages, workingset_refault_anon, pgpromote_success...)."""
    from .mm.profile import PROFILES
    names = {line.split()[0] for line in (text or "").splitlines() if line.split()}
    names = {n for n in names if n.startswith(("nr_", "numa_", "pg", "workingset_", "thp_", "compact_",
                                               "slabs_", "kswapd_", "drop_", "htlb_", "unevictable_",
                                               "balloon_", "swap_", "zone_", "direct_", "oom_", "allocstall"))}
    if len(names) < 20:
        return None

    def score(p):
        mine = set(p.zone_stat_items) | set(p.numa_stat_items) | set(p.node_stat_items)
        if events:                                  # zoneinfo prints no events
            mine |= set(p.vm_event_items)
        return len(names & mine) / len(names | mine)
    return max(PROFILES, key=lambda v: score(PROFILES[v]))


def _cpus_from_slab_orders(text: str | None) -> int | None:
    """The CPU count (a power of two: calculate_order() sees only fls(nr_cpus)) under which
    most of slabinfo's caches have the order they show, the size being their stride."""
    from .mm import slub
    caches = [c for c in parse_slabinfo(text or "") if c["objsize"] % 8 == 0 and c["objsize"] <= 8192]
    if not caches:
        return None
    best, best_n = -1, None
    for f in range(1, 14):
        n = 1 << (f - 1)
        fits = 0
        for c in caches:
            try:
                o = slub.calculate_order(c["objsize"], n)
            except Exception:                        # noqa: BLE001 - a size no order holds
                continue
            fits += (1 << o) == c["pagesperslab"]
        if fits > best:
            best, best_n = fits, n
    return best_n


def _lscpu_int(text: str, key: str) -> int | None:
    m = re.search(rf"^{re.escape(key)}:\s*(\d+)\s*$", text, re.M)
    return int(m.group(1)) if m else None


def _lscpu_str(text: str, key: str) -> str | None:
    m = re.search(rf"^{re.escape(key)}:\s*(.+?)\s*$", text, re.M)
    return m.group(1) if m else None


def _host_name(src: Source) -> str:
    """A procsim tree's machine name (its SMBIOS system product, manufacturer "procsim"); else
    clone-HOSTNAME."""
    raw = src.read_bytes("sys/firmware/dmi/tables/DMI")
    for d in parse_smbios(raw) if raw else ():
        if d.get("system") and d["manufacturer"] == "procsim" and d["product"]:
            return d["product"]
    h = (src.read("proc/sys/kernel/hostname") or src.read("etc/hostname") or "").strip()
    h = re.sub(r"[\s:]", "-", h)[:48]
    return f"clone-{h}" if h else "clone"


def _node_ram(src: Source, real: list[RealZone], n: int, notes: list[str]) -> list[list[tuple[int, int]]]:
    """Per node, its RAM as pfn ranges.  iomem's System RAM cut at the zoneinfo node spans when
    both are there (the real holes, where they are); else each zone's span with its
    spanned - present pages as one hole (at the top of a zone that ends at 4 GiB, the PCI
    hole; else just below the zone's last page, which the node's end makes RAM)."""
    spans = {}
    for z in real:
        if z.spanned:
            s, e = spans.get(z.node, (z.start, z.end))
            spans[z.node] = (min(s, z.start), max(e, z.end))
    iomem = parse_iomem_ram(src.read("proc/iomem") or "")
    out: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    if real and iomem:
        for node, (s, e) in spans.items():
            out[node] = [(max(a, s), min(b, e)) for a, b in iomem if min(b, e) > max(a, s)]
        # iomem is the truth when it agrees with zoneinfo's present counts
        if all(sum(min(b, z.end) - max(a, z.start) for a, b in out[z.node] if min(b, z.end) > max(a, z.start))
               == z.present for z in real if z.spanned):
            return out
        notes.append("proc/iomem's System RAM disagrees with zoneinfo's present pages: holes placed from zoneinfo")
        out = [[] for _ in range(n)]
    if real:
        for z in real:
            if not z.spanned:
                continue
            # every PC's legacy hole (640 KiB..1 MiB) is known; the rest of the missing pages
            # go where the docstring says
            base = list(subtract_ranges([(z.start, z.end)], [LEGACY_HOLE]))
            hole = sum(e - s for s, e in base) - z.present
            node_end = spans[z.node][1]
            s0, e0 = base[-1]
            if hole <= 0:
                pass
            elif z.end == node_end and e0 - s0 > hole + 1:      # the last page is RAM: the hole below it
                base[-1:] = [(s0, e0 - 1 - hole), (e0 - 1, e0)]
            elif e0 - s0 > hole:
                base[-1] = (s0, e0 - hole)
            out[z.node] += base
        for r in out:
            r.sort()
        return [_merge(r) for r in out]
    # no zoneinfo: node sizes from node meminfo (MemTotal is managed; a guess, said so)
    mi = parse_kv(src.read("proc/meminfo") or "")
    for node in range(n):
        t = parse_kv(src.read(f"sys/devices/system/node/node{node}/meminfo") or "")
        kb = t.get("MemTotal") or (mi.get("MemTotal", 0) if n == 1 else 0)
        if kb:
            pages = -(-(kb << 10) // (128 * MiB)) * (128 * MiB) >> PAGE_SHIFT
            out[node] = [(0, pages)]
    if not any(out):
        out[0] = [(0, GiB >> PAGE_SHIFT)]
        notes.append("no zoneinfo, meminfo or node meminfo: 1 GiB assumed")
    else:
        notes.append("node sizes from MemTotal rounded up to 128 MiB: zone spans are approximate")
    # lay the sizes out the way place_dimms does
    placed, cursor = [], 0
    for node, r in enumerate(out):
        pages = sum(e - s for s, e in r)
        if not pages:
            placed.append([])
            continue
        if node == 0:
            hole = 3 * GiB >> PAGE_SHIFT
            rr = [(0, min(pages, hole))] + ([(MAX_DMA32_PFN, MAX_DMA32_PFN + pages - hole)] if pages > hole else [])
        else:
            st = max(cursor, MAX_DMA32_PFN)
            rr = [(st, st + pages)]
        cursor = rr[-1][1]
        placed.append(rr)
    return placed


def _place(ram, notes) -> tuple[list[int], list[tuple[int, int]], int]:
    """The node RAM as procsim's layout makes it (layout.place_dimms): per node a DIMM size in
    pages (whole MiB), the PCI hole start (pfn, a multiple of 128 MiB) and the e820-reserved
    pfn ranges that cut the DIMMs down to exactly ``ram``.  The DIMMs follow each other in
    RAM order from 0; what is decoded from the hole up lives above 4 GiB, so the node that
    straddles the hole (node 0, or a later one when node 0 ends below it) is split in two."""
    always = [(0, 1), LEGACY_HOLE]                 # pfn 0 and the legacy hole: layout removes them
    low_end = max((e for r in ram for s, e in r if s < MAX_DMA32_PFN), default=0)
    if any(e > MAX_DMA32_PFN for r in ram for s, e in r if s < MAX_DMA32_PFN):
        notes.append("RAM crosses 4 GiB without a hole: cannot be laid out")
    hole = 3 * GiB >> PAGE_SHIFT
    if any(s >= MAX_DMA32_PFN for r in ram for s, _ in r):
        hole = max(min(-(-low_end // HOLE_ALIGN) * HOLE_ALIGN, MAX_DMA32_PFN), (256 * MiB) >> PAGE_SHIFT)
    elif low_end > hole:
        hole = min(-(-low_end // HOLE_ALIGN) * HOLE_ALIGN, MAX_DMA32_PFN)

    def offset(pfn: int) -> int:                   # pfn -> RAM offset (place_dimms' decoded(), inverted)
        return pfn if pfn < MAX_DMA32_PFN else pfn - MAX_DMA32_PFN + hole

    def decoded(lo: int, hi: int) -> list[tuple[int, int]]:
        return [(a if a < hole else a - hole + MAX_DMA32_PFN, b if b <= hole else b - hole + MAX_DMA32_PFN)
                for a, b in ((lo, min(hi, hole)), (max(lo, hole), hi)) if a < b]

    pages, e820, cursor = [], [], 0
    for node, r in enumerate(ram):
        if not r:
            pages.append(0)
            continue
        if offset(r[0][0]) < cursor:
            notes.append(f"node {node} starts at pfn {r[0][0]:#x}, inside the node before it as procsim "
                         "places nodes (one after another in RAM order): its zone spans differ")
            size = sum(e - s for s, e in r)
            r = decoded(cursor, cursor + size)
        top = cursor + -(-(offset(r[-1][1] - 1) + 1 - cursor) // MIB_PAGES) * MIB_PAGES
        placed = decoded(cursor, top)
        pages.append(top - cursor)
        cursor = top
        for s, e in subtract_ranges(placed, r + always if node == 0 else r):
            e820.append((s, e))
    return pages, _merge(e820), hole


def _dimms(src: Source, pages: list[int], notes: list[str]) -> list[Dimm]:
    """dmidecode's DIMMs when their sizes add up to what each node needs (given to nodes in
    order, filling each); else one DIMM per node of the node's size."""
    dmi = []
    text = src.first(*ALTERNATES["dmidecode"])[0]
    if text:
        dmi = parse_dmidecode(text)
    if not dmi:
        raw = src.read_bytes("sys/firmware/dmi/tables/DMI")
        if raw:
            dmi = [d for d in parse_smbios(raw) if not d.get("system")]
    need = [p << PAGE_SHIFT for p in pages]
    if dmi:
        out, node, acc = [], 0, 0
        ok = True
        for d in dmi:
            while node < len(need) and acc >= need[node]:
                node, acc = node + 1, 0
            if node >= len(need):
                ok = False
                break
            out.append((node, d))
            acc += d["size"]
        if ok and all(sum(d["size"] for nn, d in out if nn == i) == need[i] for i in range(len(need))):
            return [Dimm(nn, d["size"], d["locator"] or f"DIMM {i}", bank=d["bank"] or f"P{nn}_Node{nn}",
                         speed=d["speed"] or 2133,
                         type=d["type"] if re.fullmatch(r"DDR[2-5]|LPDDR[45]", d["type"] or "") else "DDR4")
                    for i, (nn, d) in enumerate(out)]
        notes.append("dmidecode: its DIMM sizes do not add up to the node sizes the layout needs "
                     f"({', '.join(str(x >> 20) + ' MiB' for x in need)}): one DIMM per node instead")
    return [Dimm(i, b, f"DIMM {i}", bank=f"P{i}_Node{i}") for i, b in enumerate(need) if b]


def _crashkernel(iomem: str, arg: str | None, total: int) -> int:
    m = re.search(r"^\s*([0-9a-f]+)-([0-9a-f]+) : Crash kernel", iomem, re.M)
    if m and int(m.group(2), 16):
        return int(m.group(2), 16) + 1 - int(m.group(1), 16)
    if not arg:
        return 0
    spec = arg.split("@")[0].split(",high")[0].split(",low")[0]
    if ":" in spec:                                 # ranges: 512M-2G:64M,2G-:128M
        for part in spec.split(","):
            rng, _, size = part.partition(":")
            lo, _, hi = rng.partition("-")
            lo_b, hi_b = parse_size(lo) or 0, parse_size(hi) if hi else None
            if lo_b <= total and (hi_b is None or total < hi_b):
                return parse_size(size) or 0
        return 0
    return parse_size(spec) or 0


def _tunables(src: Source, args: dict, notes: list[str]) -> Tunables:
    kw = {}

    def num(name):
        t = src.sysctl(name)
        return int(t.split()[0]) if t and t.split() and t.split()[0].isdigit() else None
    for k, lo, hi in (("watermark_scale_factor", 1, 3000), ("watermark_boost_factor", 0, 1 << 30),
                      ("percpu_pagelist_high_fraction", 0, 1 << 20)):
        v = num(k)
        if v is not None and lo <= v <= hi:
            kw[k] = v
    t = src.sysctl("lowmem_reserve_ratio")
    if t:
        vals = [int(x) for x in t.split() if x.isdigit()]
        if 3 <= len(vals) <= 5:
            kw["lowmem_reserve_ratio"] = tuple(vals + [0] * (5 - len(vals)))
    thp = src.read("sys/kernel/mm/transparent_hugepage/enabled")
    if (thp and "[never]" in thp) or args.get("transparent_hugepage") == "never":
        kw["transparent_hugepage"] = False
    for k in ("kernelcore", "movablecore"):
        if k in args:
            v = parse_size(args[k])
            if v is None:
                notes.append(f"{k}={args[k]}: only sizes are understood (not mirror or %); ignored")
            else:
                kw[k] = v
    if "kernelcore" in kw and "movablecore" in kw:
        del kw["kernelcore"]
    return Tunables(**kw)


def _swap(src: Source) -> int:
    """proc/swaps: the sizes (usable pages, in KiB) of the active swap areas, plus the header
    page each has; procsim has one swap file of that size."""
    t = src.read("proc/swaps")
    total = 0
    for line in (t or "").splitlines()[1:]:
        p = line.split()
        if len(p) >= 3 and p[2].isdigit():
            total += (int(p[2]) << 10) + PAGE_SIZE
    return total if total >= 10 * PAGE_SIZE else 0


def _zone_layout(m: Machine):
    from .mm import layout
    return {(z.node, z.name): z for z in layout.build(m).zones}


def _fit_movable(m: Machine, real: list[RealZone], notes: list[str]) -> Machine:
    """A populated ZONE_MOVABLE with no kernelcore=/movablecore= on the command line (or one
    procsim does not place the same way): the movablecore or kernelcore size whose Movable
    zones start where the real ones do (find_zone_movable_pfns_for_nodes)."""
    want = {z.node: (z.start, z.spanned) for z in real if z.name == "Movable" and z.spanned}
    if not want:
        return m

    def fits(mm):
        try:
            lay = _zone_layout(mm)
        except ValueError:
            return False
        return all((lay[(n, "Movable")].start_pfn, lay[(n, "Movable")].spanned) == v for n, v in want.items())
    if fits(m):
        return m
    mov = sum(z.present for z in real if z.name == "Movable") << PAGE_SHIFT
    ker = sum(z.present for z in real if z.name != "Movable") << PAGE_SHIFT
    t0 = replace(m.tunables, kernelcore=None, movablecore=None)
    # the Movable start is rounded up to MAX_ORDER_NR_PAGES per node: the size asked for
    # is up to 4 MiB per node more than the zones hold; a round size first
    slack = 4 * MiB * len(want)
    sizes = [-(-mov // GiB) * GiB] + list(range(mov, mov + slack + 1, MiB))
    ksizes = [ker // GiB * GiB] + list(range(ker, max(ker - slack, 0) - 1, -MiB))
    for t in [replace(t0, movablecore=v) for v in sizes] + [replace(t0, kernelcore=v) for v in ksizes if v]:
        mm = replace(m, tunables=t)
        if fits(mm):
            return mm
    notes.append("ZONE_MOVABLE: no movablecore or kernelcore size puts the Movable zones where the real "
                 "ones start (procsim spreads kernelcore evenly over the nodes in one pass)")
    return replace(m, tunables=replace(t0, movablecore=mov))


def _fit_kernel_image(m: Machine, real: list[RealZone], notes: list[str]) -> Machine:
    """Size the kernel image (the one reservation the description is free to size) so node 0's
    DMA32 managed comes out as the real one: everything else memblock reserves follows from
    the machine by the kernel's rules."""
    target = next((z for z in real if z.node == 0 and z.name == "DMA32" and z.managed), None)
    if target is None:
        return m
    for _ in range(3):
        try:
            z = _zone_layout(m)[(0, "DMA32")]
            ours = z.managed + sum(e - s for s, e in z.late)      # after the late frees
        except ValueError as e:
            notes.append(f"layout: {e}")
            return m
        diff = ours - target.managed
        if not diff:
            break
        k = m.reserved.kernel_image + (diff << PAGE_SHIFT)
        if k < MiB:
            notes.append(f"node 0 DMA32 managed: {-diff} more pages than a 1 MiB kernel image leaves")
            k = MiB
        init = min(m.reserved.initmem, k)
        m = replace(m, reserved=replace(m.reserved, kernel_image=k, initmem=init))
    return m


def _note_managed(m: Machine, real: list[RealZone], notes: list[str]) -> None:
    """Say which zones' managed pages the layout cannot match, and the likely why."""
    try:
        lay = _zone_layout(m)
    except ValueError:
        return
    for z in real:
        ours = lay.get((z.node, z.name))
        if ours is None or not z.present:
            continue
        mine = ours.managed + sum(e - s for s, e in ours.late)
        if abs(mine - z.managed) <= 0.0005 * z.managed:
            continue
        why = ("memory the kernel has not handed to the buddy allocator (deferred or lazy struct page "
               "init, a balloon, offline memory blocks): procsim gives it every present page memblock "
               "did not reserve" if z.managed < mine * 0.99 else
               "memblock reservations procsim does not model there (only the kernel image is sized to fit, "
               "on node 0 DMA32)")
        notes.append(f"node {z.node} {z.name} managed: real {z.managed} pages, procsim {mine}: {why}; "
                     "its watermarks follow")


def _fit_min_free_kbytes(m: Machine, src: Source, notes: list[str]) -> Machine:
    """vm.min_free_kbytes: left to the kernel's computation when procsim computes the real
    value; written (as the sysctl after boot) when not."""
    t = src.sysctl("min_free_kbytes")
    if not t or not t.strip().isdigit():
        return m
    want = int(t)
    from .mm.kernel import Kernel
    try:
        k = Kernel(m, boot=False, slab=False)
    except Exception as e:                          # noqa: BLE001 - reported, the clone goes on
        notes.append(f"the cloned hardware does not boot: {type(e).__name__}: {e}")
        return m
    if k.min_free_kbytes == want:
        return m
    if not 128 <= want <= 1 << 30:
        return m
    return replace(m, tunables=replace(m.tunables, min_free_kbytes=want))


# ---- state: slab caches and pages by use ---------------------------------------------------

def parse_slabinfo(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        if line.startswith(("slabinfo", "#")) or ":" not in line:
            continue
        p = line.split()
        try:
            out.append(dict(name=p[0], active=int(p[1]), num=int(p[2]), objsize=int(p[3]),
                            objperslab=int(p[4]), pagesperslab=int(p[5])))
        except (ValueError, IndexError):
            continue
    return out


# Caches the kernel creates with SLAB_RECLAIM_ACCOUNT (their slabs count as SReclaimable):
# when /sys/kernel/slab does not say, the name does.
RECLAIMABLE = re.compile(
    r"^(dentry|inode_cache|bdev_cache|dax_cache|radix_tree_node|buffer_head|fsverity_info|mbcache|"
    r"jbd2_journal_head|ext4_extent_status|ovl_inode|xfs_inode|kmalloc-rcl-\w+|:a.*)$|"
    r"^(ext[234]|btrfs|fuse|proc|sock|squashfs|erofs|debugfs|tracefs|nfs|isofs|fat|f2fs|cifs|udf)_inode(_cache)?$")


def _sys_cache(src: Source, name: str) -> dict | None:
    base = f"sys/kernel/slab/{name}"
    get = {a: src.read(f"{base}/{a}") for a in ("object_size", "slab_size", "align", "reclaim_account",
                                                 "hwcache_align", "destroy_by_rcu", "cache_dma", "ctor",
                                                 "objects", "cpu_slabs")}
    if get["object_size"] is None:
        return None

    def i(a):
        t = get[a]
        return int(t.split()[0]) if t and t.split() and t.split()[0].isdigit() else 0
    return dict(object_size=i("object_size"), slab_size=i("slab_size"), align=i("align"),
                reclaim=i("reclaim_account") == 1, hwcache=i("hwcache_align") == 1,
                rcu=i("destroy_by_rcu") == 1, dma=i("cache_dma") == 1,
                ctor=(get["ctor"] or "").split("+")[0].strip() or None,
                cpu_slabs=i("cpu_slabs") if get["cpu_slabs"] is not None else None,
                nodes={int(a): int(b) for a, b in re.findall(r"N(\d+)=(\d+)", get["objects"] or "")})


def infer_geometry(c: dict, sysfs: dict | None, nr_cpus: int, profile) -> tuple[int, int, tuple[str, ...], str | None] | None:
    """(object size, align, flags, ctor) that give slabinfo's objsize (s->size), objperslab
    and pagesperslab under calculate_sizes() / calculate_order(); None when none does.
    /sys/kernel/slab's own values first; else the object as large as its stride with no
    alignment, then with a constructor or cache-line alignment (the same stride, as the
    kernel may have made it)."""
    from .mm import slub
    want = (c["objsize"], c["objperslab"], c["pagesperslab"])
    cands = []
    reclaim = bool(RECLAIMABLE.match(c["name"]))
    if sysfs:
        fl = [n for n, on in (("SLAB_RECLAIM_ACCOUNT", sysfs["reclaim"]), ("SLAB_HWCACHE_ALIGN", sysfs["hwcache"]),
                              ("SLAB_TYPESAFE_BY_RCU", sysfs["rcu"]), ("SLAB_CACHE_DMA", sysfs["dma"])) if on]
        cands.append((sysfs["object_size"], sysfs["align"], tuple(fl), sysfs["ctor"] and re.sub(r"\W", "_", sysfs["ctor"])))
        reclaim = sysfs["reclaim"]
    base = ("SLAB_RECLAIM_ACCOUNT",) if reclaim else ()
    size = c["objsize"]
    cands += [(size, 0, base, None), (size - 8, 0, base, "ctor"), (size, 64, base + ("SLAB_HWCACHE_ALIGN",), None)]
    for obj, align, flags, ctor in cands:
        if obj < 1:
            continue
        bits = 0
        for f in flags:
            bits |= slub.parse_slab_flags(f)
        s, _ = slub.calculate_size(obj, slub.calculate_alignment(bits, align, obj), bits, ctor)
        try:
            order = _order(s, nr_cpus, profile)
        except Exception:                            # noqa: BLE001 - no order fits: not this one
            continue
        if (s, (PAGE_SIZE << order) // s, 1 << order) == want:
            return obj, align, flags, ctor
    return None


def _order(size, nr_cpus, profile):
    from .mm import slub
    fn = getattr(profile, "calculate_order", None)
    return fn(size, nr_cpus) if callable(fn) else slub.calculate_order(size, nr_cpus)


def _partial_slabs(sc: dict, objects: int, own: int, cpu_slabs: int) -> int:
    """boot.caches[].slabs for a cache whose slabinfo shows free objects on partial slabs
    (num_objs > active_objs): all its slabs less those procsim's boot already made; 0 (fill
    whole slabs) when it shows none or the numbers leave no such shape (one cpu slab per node
    it is on, each slab at least one object)."""
    per = sc["objperslab"]
    if sc["num"] <= sc["active"] or per < 2:
        return 0
    slabs = sc["num"] // per - own
    if slabs < 2 * cpu_slabs or slabs > objects or objects + cpu_slabs > slabs * per:
        return 0
    return slabs


def _spread_size(k, want: int) -> int:
    """The page count whose split over the nodes (mm_init._boot_pages: each node's share
    rounded down, in proportion to managed) adds up to ``want`` pages."""
    nodes = [n.managed for n in k.nodes if n.has_memory]
    total = sum(nodes)
    p = want
    while sum(p * m // total for m in nodes) < want and p < want + len(nodes) + 1:
        p += 1
    return p


def _slab_active(s) -> int:
    """procsim's own cache's objects as slabinfo counts them (a CPU's slab whole)."""
    n = s.inuse
    for cs in s.cpu_slab.values():
        if cs is not None:
            n += len(cs.free)
    return n


def _slab_node(sc: dict, nodes: int, cpu0_node: int, sysfs: dict | None = None) -> int | None:
    """Where a cache's objects go: the one node /sys/kernel/slab/*/objects names, if one;
    spread over the nodes (the boot workload's default) when it has slabs enough for every
    node; else all on CPU 0's node, as a small cache's few slabs are (each node's share would
    end in a slab of its own, counted whole while a CPU holds it)."""
    if sysfs and sysfs.get("nodes"):
        used = [n for n, v in sysfs["nodes"].items() if v]
        if len(used) == 1 and used[0] < nodes:
            return used[0] if nodes > 1 else None
        if len(used) > 1:
            return None
    slabs = sc["num"] // max(sc["objperslab"], 1)
    return None if nodes == 1 or slabs >= 8 * nodes else cpu0_node


MEMINFO_USES = (                    # (boot use, meminfo key of its size, key of its active part)
    ("kernel_stack", "KernelStack", None),
    ("page_tables", "PageTables", None),
    ("percpu", "Percpu", None),
    ("vmalloc", "VmallocUsed", None),
    ("pagecache", ("Active(file)", "Inactive(file)", "Shmem"), "Active(file)"),
    ("anon", "AnonPages", "Active(anon)"),
)                                   # and kmalloc_large: meminfo's Slab less slabinfo's slabs


def _vmap_stacks_kb(bare, real: dict, ours: dict) -> int:
    """The kernel stacks boot.pages will add, which VmallocUsed already counts with
    CONFIG_VMAP_STACK (mm/vmalloc.py): not to be cloned as vmalloc pages a second time."""
    if not bare.profile.vmap_stack:
        return 0
    return max(real.get("KernelStack", 0) - ours.get("KernelStack", 0), 0)


def clone_state(src: Source, c: Clone) -> None:
    """boot.caches from slabinfo, boot.pages from meminfo (per node from node meminfo on a
    machine with more than one node): what the real machine holds less what procsim's own
    boot already holds."""
    from .mm.kernel import Kernel
    from .views import files
    m = c.machine
    try:
        bare = Kernel(m)
    except Exception as e:                          # noqa: BLE001 - said, the hardware clone stands
        c.notes.append(f"boot state: the cloned hardware does not boot ({type(e).__name__}: {e}): no boot workload")
        return
    caches = []
    mem_nodes = [n.id for n in bare.nodes if n.has_memory]
    cpu0_node = bare.cpu_node[0] if bare.cpu_node[0] in mem_nodes else mem_nodes[0]
    st = src.read("proc/slabinfo")
    if st is None:
        c.notes.append("proc/slabinfo: missing (or not readable: it is root-only): no slab caches cloned")
    for sc in parse_slabinfo(st or ""):
        mine = bare.slab.find(sc["name"])
        sysfs = _sys_cache(src, sc["name"])
        node = _slab_node(sc, len(mem_nodes), cpu0_node, sysfs)
        # a CPU's slab counts whole in active_objs: leave one object of it free, so the last
        # slab stays a CPU's (as /sys/kernel/slab/*/cpu_slabs says, or as almost every cache has)
        # (one per node it is spread over)
        if not sc["active"] or (sysfs and sysfs["cpu_slabs"] == 0):
            cpu_slab = 0
        elif node is not None or len(mem_nodes) == 1:
            cpu_slab = 1
        else:
            cpu_slab = sysfs["cpu_slabs"] if sysfs and sysfs["cpu_slabs"] else len(mem_nodes)
        if mine is not None:
            if mine in (bare.slab.kmem_cache, bare.slab.kmem_cache_node):
                continue                            # their objects are the caches themselves
            if (mine.size, mine.objects, 1 << mine.order) != (sc["objsize"], sc["objperslab"], sc["pagesperslab"]):
                c.notes.append(f"slab {sc['name']}: procsim's own cache is {mine.size}/{mine.objects}/"
                               f"{1 << mine.order}, the real one {sc['objsize']}/{sc['objperslab']}/{sc['pagesperslab']}")
            more = sc["active"] - _slab_active(mine) - cpu_slab
            if more > 0:
                caches.append(BootCache(sc["name"], mine.size if mine.size == sc["objsize"] else mine.object_size,
                                        objects=more, node=node,
                                        slabs=_partial_slabs(sc, more, mine.nr_slabs, cpu_slab)))
            continue
        g = infer_geometry(sc, sysfs, m.nr_cpu_ids, bare.profile)
        if g is None:
            c.notes.append(f"slab {sc['name']}: no size/align/flags give {sc['objsize']} bytes, "
                           f"{sc['objperslab']} per slab, {sc['pagesperslab']} pages: left out")
            continue
        obj, align, flags, ctor = g
        if obj > 8 * MiB:
            continue
        caches.append(BootCache(sc["name"], obj, objects=sc["active"] - cpu_slab, align=align, flags=flags,
                                ctor=ctor, node=node,
                                slabs=_partial_slabs(sc, sc["active"] - cpu_slab, 0, cpu_slab)))
    views = files(m)
    pages = []
    node_mi = [src.read(f"sys/devices/system/node/node{i}/meminfo") for i in range(m.nr_nodes)]
    mi = src.read("proc/meminfo")
    if mi is None:
        c.notes.append("proc/meminfo: missing: no pages by use")
    per_node = m.nr_nodes > 1 and all(node_mi)
    for nid in (mem_nodes if per_node else [None]):
        if nid is None:
            real = parse_kv(mi or "")
            ours = parse_kv(views["meminfo"].render(bare).decode())
        else:
            real = parse_kv(node_mi[nid])
            ours = parse_kv(views[f"sys/devices/system/node/node{nid}/meminfo"].render(bare).decode())
        for use, key, akey in MEMINFO_USES:
            keys = key if isinstance(key, tuple) else (key,)
            if not all(k in real for k in keys):
                continue                            # e.g. no Percpu line in node meminfo
            if nid is not None and use in ("percpu", "vmalloc"):
                continue
            kb = sum(real[k] for k in keys) - sum(ours.get(k, 0) for k in keys)
            if use == "vmalloc":
                kb -= _vmap_stacks_kb(bare, real, ours)
            if kb < 4:
                continue
            active = 0
            if akey and akey in real:
                active = min(max(real[akey] - ours.get(akey, 0), 0), kb) << 10
            pages.append(BootPages(use, kb << 10, nid, active))
    if st and mi:                  # meminfo's Slab less every slabinfo line's pages: large kmallocs
        real_slabs = sum(x["num"] // max(x["objperslab"], 1) * x["pagesperslab"] for x in parse_slabinfo(st))
        large = parse_kv(mi).get("Slab", 0) // 4 - real_slabs - sum(bare.slab.large_pages)
        if large > 0:
            pages.append(BootPages("kmalloc_large", _spread_size(bare, large) << PAGE_SHIFT if per_node
                                   else large << PAGE_SHIFT, None, 0))
    if any(parse_kv(t or "").get("Shmem") for t in [mi] + node_mi):
        c.notes.append("Shmem: procsim has no shmem pages (tmpfs, on the anon LRU, never dropped): "
                       "cloned as page cache, so Cached and MemFree match but the LRU lists and reclaim differ")
    if per_node:
        for use, key, _ in MEMINFO_USES:           # percpu and vmalloc are not per node
            if use in ("percpu", "vmalloc") and mi:
                real, ours = parse_kv(mi), parse_kv(views["meminfo"].render(bare).decode())
                kb = real.get(key, 0) - ours.get(key, 0)
                if use == "vmalloc":
                    kb -= _vmap_stacks_kb(bare, real, ours)
                if kb >= 4:
                    pages.append(BootPages(use, _spread_size(bare, kb >> 2) << PAGE_SHIFT, None, 0))
    caches.reverse()             # slabinfo lists the newest cache first: create the oldest first
    pages += _unaccounted(replace(m, boot=Boot(tuple(caches), tuple(pages))), mi, node_mi if per_node else None,
                          c.real_zones)
    c.machine = replace(m, boot=Boot(tuple(caches), tuple(pages), _boot_free(src, bare, c.notes)))


def _unaccounted(m, mi: str | None, node_mi: list | None, real_zones: list[RealZone]) -> list[BootPages]:
    """The memory the real kernel uses that no meminfo line names (drivers' and subsystems'
    alloc_pages()): what procsim's boot of the description so far leaves free, on the buddy
    lists and the CPUs' (zoneinfo's count:, which boot.free's pcp sets), beyond the real
    machine's; per node where the node files are there.  Without it the free memory
    boot.free shapes is larger than the real one's, and the extra comes out as blocks it had not."""
    from .mm.kernel import Kernel
    from .views import files
    if mi is None:
        return []
    try:
        k = Kernel(m)
    except Exception:                               # noqa: BLE001 - clone_state says why it does not boot
        return []
    views = files(m)
    real_pcp: dict[int, int] = {}
    for z in real_zones:
        real_pcp[z.node] = real_pcp.get(z.node, 0) + sum(z.pcp)
    out = []
    for nid, real in enumerate(node_mi) if node_mi else [(None, mi)]:
        if real is None or (nid is not None and not k.nodes[nid].has_memory):
            continue
        ours = views["meminfo" if nid is None else f"sys/devices/system/node/node{nid}/meminfo"].render(k).decode()
        pcp = sum(p.count for n in k.nodes if nid in (None, n.id) for z in n.zones for p in z.pcp) - \
            sum(v for n, v in real_pcp.items() if nid in (None, n))
        kb = parse_kv(ours).get("MemFree", 0) - parse_kv(real).get("MemFree", 0) + pcp * PAGE_SIZE // 1024
        if kb >= 4:
            out.append(BootPages("unaccounted", kb << 10, nid))
    return out


def _boot_free(src: Source, bare, notes: list[str]) -> tuple[BootFree, ...]:
    """boot.free: each zone's buddyinfo row, for the boot to shape its free memory by."""
    bi = src.read("proc/buddyinfo")
    if bi is None:
        notes.append("proc/buddyinfo: missing: free memory is laid out as procsim's boot leaves it")
        return ()
    real = {(z.node, z.name): z for z in parse_zoneinfo(src.read("proc/zoneinfo") or "")}
    pt = src.read("proc/pagetypeinfo") or ""
    types, pageblocks = _pagetypes(pt)
    # the pageblock columns by name: 3.10 prints Unmovable, Reclaimable, Movable, Reserve, ...
    names = next((line.split()[4:] for line in pt.splitlines() if line.startswith("Number of blocks type")), [])
    cols = [names.index(t) for t in ("Unmovable", "Movable", "Reclaimable")] if {
        "Unmovable", "Movable", "Reclaimable"} <= set(names) else None
    out = []
    for (nid, zone), counts in _buddy(bi).items():
        z = bare.nodes[nid].zones[ZONE_NAMES.index(zone)] if nid < len(bare.nodes) and zone in BOOT_FREE_ZONES else None
        if z is None or not z.managed:
            notes.append(f"proc/buddyinfo: node {nid} {zone} is not a zone with memory here: its free blocks are not cloned")
            continue
        # zoneinfo's min, low and high each include the boost: all three off by one amount
        rz = real.get((nid, zone))
        off = {a - b for a, b in zip(rz.wmark, (z.wmark_min, z.wmark_low, z.wmark_high), strict=True)} if rz else set()
        boost = off.pop() if len(off) == 1 else 0
        # pagetypeinfo: pageblocks of each type, the free blocks on the Unmovable and Reclaimable
        # lists (a count the kernel prints as ">100000" leaves that list out)
        pb = pageblocks.get((nid, zone), [])
        pb = tuple(pb[i] for i in cols) if cols and len(pb) == len(names) else ()
        lists = [types.get((nid, zone, t), ()) for t in ("Unmovable", "Reclaimable")]
        if not pb or not all(len(x) == len(counts) for x in lists):
            lists = [(), ()]
        else:                          # buddyinfo and pagetypeinfo were read at two moments
            rec = [min(r, a) for r, a in zip(lists[1], counts, strict=True)]
            lists = [[min(u, a - r) for u, r, a in zip(lists[0], rec, counts, strict=True)], rec]
        pcp = tuple(rz.pcp[:len(z.pcp)]) if rz and any(rz.pcp) else ()
        out.append(BootFree(nid, zone, tuple(counts[:NR_PAGE_ORDERS]), max(boost, 0) << PAGE_SHIFT, pb,
                            tuple(lists[0][:NR_PAGE_ORDERS]), tuple(lists[1][:NR_PAGE_ORDERS]), pcp))
    return tuple(out)


# ---- the description -----------------------------------------------------------------------

def _size(b: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if b and b % (1 << shift) == 0:
            return f"{b >> shift}{unit}"
    return str(b)


def _cache_yaml(caches) -> str:
    if not caches:
        return ""
    items = [f"{{level: {c.level}, type: {c.type}, size: {_size(c.size)}, ways: {c.ways}, "
             f"line_size: {c.line_size}, shared: {c.shared}}}" for c in caches]
    return f", cache: [{', '.join(items)}]"


def to_yaml(c: Clone, source: str = "") -> str:
    """The machine description, in the shipped configs' style, with what was not reproduced
    as comments at the top."""
    m = c.machine
    q = _quote
    out = [f"# Cloned by `procsim clone {source}`." if source else "# Cloned by `procsim clone`."]
    out += [f"# {x}" for x in c.comments]
    if c.notes:
        out.append("# Not reproduced (see `procsim clone --check`):")
        out += [f"#   - {x}" for x in c.notes]
    out += [f"name: {q(m.name)}", f'kernel: "{m.kernel}"', f"cpu_numbering: {m.cpu_numbering}", "sockets:"]
    out += [f"  - {{model: {q(s.model)}, cores: {s.cores}, threads: {s.threads}{_cache_yaml(s.cache)}}}"
            for s in m.sockets]
    out.append("dimms:")
    out += [f"  - {{socket: {d.socket}, size: {_size(d.size)}, locator: {q(d.locator)}, bank: {q(d.bank)}, "
            f"speed: {d.speed}, type: {d.type}}}" for d in m.dimms]
    if m.nr_nodes > 1:
        out.append("numa_distances:")
        out += [f"  - [{', '.join(map(str, r))}]" for r in m.distances]
    t, t0 = m.tunables, Tunables()
    tl = []
    for k in ("min_free_kbytes", "watermark_scale_factor", "watermark_boost_factor", "transparent_hugepage",
              "percpu_pagelist_high_fraction"):
        v = getattr(t, k)
        if v != getattr(t0, k):
            tl.append(f"  {k}: {str(v).lower() if isinstance(v, bool) else v}")
    if t.lowmem_reserve_ratio != t0.lowmem_reserve_ratio:
        tl.append(f"  lowmem_reserve_ratio: [{', '.join(map(str, t.lowmem_reserve_ratio))}]")
    for k in ("kernelcore", "movablecore"):
        if getattr(t, k) is not None:
            tl.append(f"  {k}: {_size(getattr(t, k))}")
    if tl:
        out += ["tunables:"] + tl
    r, r0 = m.reserved, Reserved()
    rl = []
    for k in ("kernel_image", "initmem", "initrd", "crashkernel", "swiotlb"):
        v = getattr(r, k)
        if v != getattr(r0, k):
            rl.append(f"  {k}: {_size(v)}")
    if r.pci_hole_start != r0.pci_hole_start:
        rl.append(f"  pci_hole_start: {_size(r.pci_hole_start)}")
    if r.e820:
        rl.append("  e820:                      # firmware-reserved: no RAM")
        rl += [f"    - {{start: {s:#x}, size: {_size(e - s)}}}" for s, e in r.e820]
    if rl:
        out += ["reserved:"] + rl
    if m.swap:
        out.append(f"swap: {_size(m.swap)}")
    b = m.boot
    if b.caches or b.pages or b.free:
        out.append("boot:")
    if b.caches:
        out.append("  caches:")
        for bc in b.caches:
            parts = [f"name: {q(bc.name)}", f"size: {bc.size}", f"objects: {bc.objects}"]
            if bc.align:
                parts.append(f"align: {bc.align}")
            if bc.flags:
                parts.append(f"flags: {q('|'.join(bc.flags))}")
            if bc.ctor:
                parts.append(f"ctor: {bc.ctor}")
            if bc.slabs:
                parts.append(f"slabs: {bc.slabs}")
            if bc.node is not None:
                parts.append(f"node: {bc.node}")
            out.append(f"    - {{{', '.join(parts)}}}")
    if b.pages:
        out.append("  pages:")
        for p in b.pages:
            parts = [f"use: {p.use}", f"size: {_size(p.size)}"]
            if p.active:
                parts.append(f"active: {_size(p.active)}")
            if p.node is not None:
                parts.append(f"node: {p.node}")
            out.append(f"    - {{{', '.join(parts)}}}")
    if b.free:
        out.append("  free:                      # buddyinfo: free blocks of order 0, 1, 2, ... per zone; pagetypeinfo")
        for f in b.free:
            more = f", boost: {_size(f.boost)}" if f.boost else ""
            for key in ("pageblocks", "unmovable", "reclaimable", "pcp"):
                if getattr(f, key):
                    more += f",\n       {key}: [{', '.join(map(str, getattr(f, key)))}]"
            out.append(f"    - {{node: {f.node}, zone: {f.zone}, orders: [{', '.join(map(str, f.orders))}]{more}}}")
    return "\n".join(out) + "\n"


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---- --check: the description booted, its files against the source's -------------------------

ZONE_TOL = {"managed": 0.0005, "min": 0.0015, "low": 0.0015, "high": 0.0015}
MEMINFO_KEYS = ("MemTotal", "MemFree", "Cached", "AnonPages", "Slab", "SReclaimable", "KernelStack", "PageTables")


def _near(real: int, ours: int, tol: float, slack: int = 0) -> bool:
    return abs(real - ours) <= max(tol * abs(real), slack)


def check(src: Source | str | Path, c: Clone | None = None) -> tuple[list[tuple[str, bool, list[str]]], Clone]:
    """Boot the clone and compare, file by file: [(file, all matched, [lines])].  The
    tolerances are issue 27's: zones' start/spanned/present exact, managed 0.05 %, watermarks
    0.15 %; buddyinfo 5 % or 2 blocks per order; meminfo's main lines 1 %; every slab cache
    present with its geometry exact and active objects within 1 %."""
    from .mm.kernel import Kernel
    from .views import files
    from .machine import loads
    if not isinstance(src, Source):
        src = Source(src)
    if c is None:
        c = clone(src)
    m = loads(to_yaml(c), "<clone>")                 # what a user gets: the YAML, read back
    k = Kernel(m)
    views = files(m)

    def ours(name):
        return views[name].render(k).decode() if name in views else None
    out = []

    def add(path, lines_ok):
        bad = [f"DIFF {x}" for x, ok in lines_ok if not ok]
        out.append((path, not bad, bad if bad else [f"ok   {len(lines_ok)} values match"] if lines_ok else ["(nothing to compare)"]))

    def missing(path, why):
        out.append((path, False, [f"not compared: {why}"]))

    zi = src.read("proc/zoneinfo")
    if zi is None:
        missing("proc/zoneinfo", "not in the source")
    else:
        sim = {(z.node, z.name): z for z in parse_zoneinfo(ours("zoneinfo"))}
        rows, boosts = [], []
        for z in c.real_zones:
            s = sim.get((z.node, z.name))
            where = f"node {z.node} {z.name}"
            if s is None:
                rows.append((f"{where}: no such zone in procsim", False))
                continue
            off = {a - b for a, b in zip(z.wmark, s.wmark, strict=False)}
            if len(off) == 1 and off.pop() > 0 and z.wmark[0] != s.wmark[0]:
                boosts.append(f"{where} {z.wmark[0] - s.wmark[0]}")
            for f in ("start", "spanned", "present"):
                if z.spanned or s.spanned:
                    rows.append((f"{where} {f}: real {getattr(z, f)}, procsim {getattr(s, f)}",
                                 getattr(z, f) == getattr(s, f)))
            rows.append((f"{where} managed: real {z.managed}, procsim {s.managed} (0.05 %)",
                         _near(z.managed, s.managed, ZONE_TOL["managed"])))
            for i, f in enumerate(("min", "low", "high")):
                rows.append((f"{where} {f}: real {z.wmark[i]}, procsim {s.wmark[i]} (0.15 %)",
                             _near(z.wmark[i], s.wmark[i], ZONE_TOL[f], 0 if z.managed else 0)))
            for cpu, (a, b) in enumerate(zip(z.pcp, s.pcp, strict=False)):
                rows.append((f"{where} cpu {cpu} count: real {a}, procsim {b}", a == b))
        add("proc/zoneinfo", rows)
        if boosts and not out[-1][1]:
            out[-1][2].append(f"why: min, low and high are each off by the same pages ({', '.join(boosts)}): "
                              "a watermark boost the real zone held when its files were read (fallbacks "
                              "raise it, kswapd takes it back); procsim's boot ends with none")

    bi = src.read("proc/buddyinfo")
    if bi is None:
        missing("proc/buddyinfo", "not in the source")
    else:
        sim = _buddy(ours("buddyinfo"))
        rows = []
        for key, counts in _buddy(bi).items():
            mine = sim.get(key)
            if mine is None:
                rows.append((f"node {key[0]} {key[1]}: no such zone in procsim", False))
                continue
            for o, (a, b) in enumerate(zip(counts, mine, strict=False)):
                rows.append((f"node {key[0]} {key[1]} order {o}: real {a}, procsim {b} (5 % or 2 blocks)",
                             _near(a, b, 0.05, 2)))
        add("proc/buddyinfo", rows)
        if not out[-1][1]:
            out[-1][2].append("why: boot.free shapes free memory by moving the boot workload's anon and "
                              "page cache; the pages the kernel holds (slab, stacks, page tables) stay "
                              "where procsim's boot put them, and a zone with few movable pages cannot "
                              "separate as many free blocks")

    pt = src.read("proc/pagetypeinfo")
    if pt is None:
        missing("proc/pagetypeinfo", "not in the source (root-only on a live machine)")
    else:
        real_f, real_b = _pagetypes(pt)
        sim_f, sim_b = _pagetypes(ours("pagetypeinfo"))
        rows = []
        for key, counts in real_f.items():
            mine = sim_f.get(key, [])
            for o, a in enumerate(counts):
                b = mine[o] if o < len(mine) else None
                rows.append((f"node {key[0]} {key[1]} {key[2]} order {o}: real {a}, procsim {b} (5 % or 2 blocks)",
                             b is not None and _near(a, b, 0.05, 2)))
        for key, counts in real_b.items():
            mine = sim_b.get(key, [])
            rows.append((f"node {key[0]} {key[1]} pageblocks by type: real {counts}, procsim {mine}",
                         len(mine) >= len(counts) and all(_near(a, b, 0.05, 2) for a, b in zip(counts, mine, strict=False))))
        add("proc/pagetypeinfo", rows)
        if not out[-1][1]:
            out[-1][2].append("why: boot.free's pageblocks picks which pageblocks are unmovable or "
                              "reclaimable by the free blocks they hold after the shaping, which places "
                              "free blocks by order, not by migratetype")

    mi = src.read("proc/meminfo")
    if mi is None:
        missing("proc/meminfo", "not in the source")
    else:
        real, sim = parse_kv(mi), parse_kv(ours("meminfo"))
        add("proc/meminfo", [(f"{key}: real {real[key]} kB, procsim {sim.get(key)} kB (1 %)",
                              _near(real[key], sim.get(key, 0), 0.01, 4))
                             for key in MEMINFO_KEYS if key in real])
        if not out[-1][1]:
            nodes = [parse_kv(src.read(f"sys/devices/system/node/node{i}/meminfo") or "") for i in range(c.machine.nr_nodes)]
            summed = {key: sum(n.get("FilePages" if key == "Cached" else key, 0) for n in nodes) for key in MEMINFO_KEYS}
            apart = [f"{key} {summed[key]} kB" for key in MEMINFO_KEYS
                     if c.machine.nr_nodes > 1 and all(nodes) and key in real
                     and not _near(real[key], sim.get(key, 0), 0.01, 4) and _near(summed[key], sim.get(key, 0), 0.01, 4)]
            if apart:
                out[-1][2].append(f"why: the source's node meminfo files add up to {', '.join(apart)}: they were "
                                  "read at another moment than meminfo, and the clone follows them node by node")
            else:
                out[-1][2].append("why: what procsim's own boot already holds (its CPUs' stacks, page tables, "
                                  "anon pages) can only be added to, never taken away")

    st = src.read("proc/slabinfo")
    if st is None:
        missing("proc/slabinfo", "not in the source (root-only on a live machine)")
    else:
        sim = {x["name"]: x for x in parse_slabinfo(ours("slabinfo"))}
        rows = []
        for x in parse_slabinfo(st):
            y = sim.get(x["name"])
            if y is None:
                rows.append((f"{x['name']}: not in procsim", False))
                continue
            g = (x["objsize"], x["objperslab"], x["pagesperslab"]), (y["objsize"], y["objperslab"], y["pagesperslab"])
            rows.append((f"{x['name']} geometry: real {g[0]}, procsim {g[1]}", g[0] == g[1]))
            rows.append((f"{x['name']} active_objs: real {x['active']}, procsim {y['active']} (1 %)",
                         _near(x["active"], y["active"], 0.01, 0)))
        add("proc/slabinfo", rows)
        if not out[-1][1]:
            out[-1][2].append("why: a CPU's slab counts whole in active_objs, one per node a cache is spread "
                              "over; procsim's own caches may already hold more objects than the real ones "
                              "(objects can only be added); kmem_cache and kmem_cache_node follow from the "
                              "caches created")

    for nid in range(m.nr_nodes):
        for f in ("cpulist", "distance"):
            path = f"sys/devices/system/node/node{nid}/{f}"
            t = src.read(path)
            if t is not None:
                mine = ours(path) or ""
                add(path, [(f"real {t.strip()!r}, procsim {mine.strip()!r}", t.strip() == mine.strip())])
    for name in ("min_free_kbytes", "watermark_scale_factor", "watermark_boost_factor", "lowmem_reserve_ratio",
                 "percpu_pagelist_high_fraction"):
        t = src.sysctl(name)
        if t is not None:
            mine = ours(f"sysctl/vm/{name}") or ""
            add(f"proc/sys/vm/{name}", [(f"real {t.split()}, procsim {mine.split()}", t.split() == mine.split())])
    return out, c


def _pagetypes(text: str | None):
    """pagetypeinfo: ({(node, zone, type): free blocks per order}, {(node, zone): pageblocks per type})."""
    free, blocks, on = {}, {}, False
    for line in (text or "").splitlines():
        m = re.match(r"Node\s+(\d+), zone\s+(\S+), type\s+(\S+)\s+([\d\s]+)$", line)
        if m:
            free[(int(m.group(1)), m.group(2), m.group(3))] = [int(x) for x in m.group(4).split()]
            continue
        if line.startswith("Number of blocks type"):
            on = True
            continue
        m = re.match(r"Node (\d+), zone\s+(\S+)\s+([\d\s]+)$", line)
        if on and m:
            blocks[(int(m.group(1)), m.group(2))] = [int(x) for x in m.group(3).split()]
    return free, blocks


def _buddy(text: str) -> dict[tuple[int, str], list[int]]:
    out = {}
    for line in (text or "").splitlines():
        m = re.match(r"Node (\d+), zone\s+(\S+)\s+(.*)$", line)
        if m:
            out[(int(m.group(1)), m.group(2))] = [int(x) for x in m.group(3).split()]
    return out


def check_report(src, c: Clone | None = None) -> tuple[str, bool]:
    """``procsim clone --check``'s text and whether everything matched."""
    results, c = check(src, c)
    lines = []
    for path, ok, detail in results:
        lines.append(f"{'MATCH' if ok else 'DIFF '} {path}")
        lines += [f"      {d}" for d in detail if not ok or len(detail) == 1]
    if c.notes:
        lines.append("Not reproduced by the description, and why:")
        lines += [f"  - {n}" for n in c.notes]
    return "\n".join(lines) + "\n", all(ok for _, ok, _ in results)
