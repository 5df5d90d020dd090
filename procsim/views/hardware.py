"""The hardware the YAML describes, as numactl, lscpu, dmidecode and node_exporter read it.

* ``sys/devices/system/node/``: the node_states masks and per node cpumap, cpulist, distance,
  meminfo and numastat (drivers/base/node.c), MemFree and the stat lines live.
* ``sys/devices/system/cpu/``: online/possible/present/offline/kernel_max and per CPU
  ``topology/`` (drivers/base/topology.c) and ``cache/indexK/`` (drivers/base/cacheinfo.c:
  id, level, type, size, coherency_line_size, ways_of_associativity, number_of_sets,
  physical_line_partition, shared_cpu_map/list; x86 has no allocation/write policy) from
  the socket's ``cache:`` list in the description, so lscpu -C and hwloc see the caches.  The ``cpuN/nodeN`` symlinks are left out: lscpu
  takes NUMA membership from ``node*/cpumap``.
* ``cpuinfo``: /proc/cpuinfo in the x86 layout (arch/x86/kernel/cpu/proc.c).
* ``sys/firmware/dmi/tables/{smbios_entry_point,DMI}``: procsim.views.smbios, exact st_size.

Which nodes and CPUs exist depends on the machine, so the full tree comes from
:func:`files_for`; ``FILES`` holds the paths every machine has.
"""
from __future__ import annotations

from functools import lru_cache

from . import smbios
from ..machine import MAX_CPUS, Machine
from ..mm.printk import bitmap_list
from . import View

NODE = "sys/devices/system/node"
CPU = "sys/devices/system/cpu"
DMI = "sys/firmware/dmi/tables"
PAGE_KB = 4


# --------------------------------------------------------------------------------------------
# bitmaps as the kernel prints them (lib/vsprintf.c bitmap_string / bitmap_list_string)

def cpumask(cpus, nbits: int) -> str:
    """``%*pb``: hex in 32-bit chunks, most significant first, comma-separated; the first
    chunk is only as wide as the bits left over (nbits % 32), the rest 8 digits."""
    mask = 0
    for c in cpus:
        mask |= 1 << c
    chunks, first = [], nbits % 32 or 32
    top = (nbits + 31) // 32 * 32 - 32
    for bit in range(top, -1, -32):
        width = first if bit == top else 32
        chunks.append(f"{(mask >> bit) & ((1 << width) - 1):0{(width + 3) // 4}x}")
    return ",".join(chunks)


cpulist = bitmap_list          # ``%*pbl``


# --------------------------------------------------------------------------------------------
# CPU topology, from Machine.cpu_topology(): (socket, core, thread) per CPU number

def _bits(n: int) -> int:
    return (n - 1).bit_length()


def apicid(m: Machine, socket: int, core: int, thread: int) -> int:
    """x2APIC id as Intel packs it: thread bits, then core bits, then the package number,
    each field as wide as the largest count needs (so socket 1 of a 12-core part starts at 32)."""
    smt = _bits(max(s.threads_per_core for s in m.sockets))
    core_bits = _bits(max(s.cores for s in m.sockets))
    return socket << (smt + core_bits) | core << smt | thread


@lru_cache(maxsize=8)
def _topology(m: Machine):
    """Per CPU: (socket, core, thread, thread siblings, package cpus)."""
    topo = m.cpu_topology()
    by_core: dict[tuple[int, int], list[int]] = {}
    by_pkg: dict[int, list[int]] = {}
    for cpu, (s, c, _) in enumerate(topo):
        by_core.setdefault((s, c), []).append(cpu)
        by_pkg.setdefault(s, []).append(cpu)
    return [(s, c, t, tuple(by_core[s, c]), tuple(by_pkg[s])) for s, c, t in topo]


# --------------------------------------------------------------------------------------------
# CPU caches (drivers/base/cacheinfo.c, arch/x86/kernel/cpu/cacheinfo.c)

CACHE_FILES = ("id", "level", "type", "size", "coherency_line_size", "ways_of_associativity",
               "number_of_sets", "physical_line_partition", "shared_cpu_map", "shared_cpu_list")


def _cache_sharing(m: Machine, cpu: int, cache) -> tuple[int, ...]:
    """The CPUs sharing one of cpu's caches: the core's threads, or the whole package."""
    s, c, t, threads, pkg = _topology(m)[cpu]
    return threads if cache.shared == "core" else pkg


def _cache_id(m: Machine, cpu: int, cache) -> int:
    """get_cache_id(): the APIC id without the bits of the threads sharing the cache (cpuid
    leaf 4's count, rounded up to a power of two): the core's for per-core caches, the
    package number for a socket-wide one."""
    s, c, t, _, _ = _topology(m)[cpu]
    smt = _bits(max(x.threads_per_core for x in m.sockets))
    if cache.shared == "core":
        return apicid(m, s, c, t) >> smt
    return apicid(m, s, c, t) >> (smt + _bits(max(x.cores for x in m.sockets)))


def _cache_file(cpu: int, index: int, name: str) -> View:
    def render(k) -> bytes:
        m = k.machine
        cache = m.sockets[_topology(m)[cpu][0]].cache[index]
        if name in ("shared_cpu_map", "shared_cpu_list"):
            cpus = _cache_sharing(m, cpu, cache)
            text = cpumask(cpus, m.nr_cpu_ids) if name == "shared_cpu_map" else cpulist(cpus)
        else:
            text = {"id": _cache_id(m, cpu, cache), "level": cache.level, "type": cache.type,
                    "size": f"{cache.size >> 10}K", "coherency_line_size": cache.line_size,
                    "ways_of_associativity": cache.ways, "number_of_sets": cache.sets,
                    "physical_line_partition": 1}[name]
        return f"{text}\n".encode()
    return View(0o444, render)


def _cpu_file(cpu: int, name: str):
    def render(k) -> bytes:
        m = k.machine
        s, c, t, threads, pkg = _topology(m)[cpu]
        n = m.nr_cpu_ids
        values = {
            "physical_package_id": s, "die_id": 0, "core_id": c,
            # x86 cluster = the CPUs sharing an L2: a core's own threads; its id is the L2's APIC id
            "cluster_id": apicid(m, s, c, 0) >> _bits(max(x.threads_per_core for x in m.sockets)),
            "thread_siblings": cpumask(threads, n), "thread_siblings_list": cpulist(threads),
            "core_cpus": cpumask(threads, n), "core_cpus_list": cpulist(threads),
            "cluster_cpus": cpumask(threads, n), "cluster_cpus_list": cpulist(threads),
            "core_siblings": cpumask(pkg, n), "core_siblings_list": cpulist(pkg),
            "die_cpus": cpumask(pkg, n), "die_cpus_list": cpulist(pkg),
            "package_cpus": cpumask(pkg, n), "package_cpus_list": cpulist(pkg),
        }
        return f"{values[name]}\n".encode()
    return View(0o444, render)


TOPOLOGY_FILES = ("physical_package_id", "die_id", "cluster_id", "core_id",
                  "thread_siblings", "thread_siblings_list", "core_cpus", "core_cpus_list",
                  "cluster_cpus", "cluster_cpus_list", "core_siblings", "core_siblings_list",
                  "die_cpus", "die_cpus_list", "package_cpus", "package_cpus_list")


_BASE_FLAGS = ("fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush "
               "mmx fxsr sse sse2 ht syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl "
               "xtopology cpuid pni pclmulqdq ssse3 cx16 pcid sse4_1 sse4_2 x2apic popcnt "
               "tsc_deadline_timer aes xsave avx lahf_lm").split()


@lru_cache(maxsize=8)
def _cpuinfo(m: Machine) -> bytes:
    """One block per logical CPU, in show_cpuinfo()'s order and tab layout."""
    out = []
    for cpu, (s, c, t, _, pkg) in enumerate(_topology(m)):
        sock = m.sockets[s]
        ident = smbios.cpu_identity(sock.model)
        mhz = smbios.cpu_mhz(sock.model)
        flags = list(_BASE_FLAGS)
        if sock.threads == sock.cores:
            flags.remove("ht")
        flags += [f for f in ident.extra_flags if f not in flags]
        a = apicid(m, s, c, t)
        lines = [
            f"processor\t: {cpu}",
            f"vendor_id\t: {ident.vendor}",
            f"cpu family\t: {ident.family}",
            f"model\t\t: {ident.model}",
            f"model name\t: {sock.model}",
            f"stepping\t: {ident.stepping}",
        ]
        if mhz:
            lines.append(f"cpu MHz\t\t: {mhz}.000")
        if ident.cache_kb:
            lines.append(f"cache size\t: {ident.cache_kb} KB")
        lines += [
            f"physical id\t: {s}",
            f"siblings\t: {len(pkg)}",
            f"core id\t\t: {c}",
            f"cpu cores\t: {sock.cores}",
            f"apicid\t\t: {a}",
            f"initial apicid\t: {a}",
            "fpu\t\t: yes",
            "fpu_exception\t: yes",
            f"cpuid level\t: {ident.cpuid_level}",
            "wp\t\t: yes",
            f"flags\t\t: {' '.join(flags)}",
            "bugs\t\t:",
        ]
        if mhz:                 # calibrated as 2 loops per TSC cycle: bogomips = 2 * cpu MHz
            lines.append(f"bogomips\t: {2 * mhz}.00")
        lines += [
            "clflush size\t: 64",
            "cache_alignment\t: 64",
            f"address sizes\t: {ident.phys_bits} bits physical, {ident.virt_bits} bits virtual",
            "power management:",
            "",
        ]
        out.append("\n".join(lines) + "\n")
    return "".join(out).encode()


def _all_cpus(k) -> bytes:
    return f"{cpulist(range(k.machine.nr_cpu_ids))}\n".encode()


# --------------------------------------------------------------------------------------------
# NUMA nodes

def _state_file(name: str) -> View:
    return View(0o444, lambda k: f"{cpulist(k.node_states[name])}\n".encode())


def _kb(pages: int) -> int:
    return pages * PAGE_KB


def node_meminfo(k, nid: int) -> str:
    """node_read_meminfo(): si_meminfo_node() totals plus node and zone stat items."""
    node = k.nodes[nid]
    st = node.stat.get
    zsum = lambda item: sum(z.stat.get(item, 0) for z in node.zones)
    total = sum(z.managed for z in node.zones)
    free = sum(z.nr_free for z in node.zones)
    srec, sunrec = st("nr_slab_reclaimable", 0), st("nr_slab_unreclaimable", 0)
    act_anon, inact_anon = st("nr_active_anon", 0), st("nr_inactive_anon", 0)
    act_file, inact_file = st("nr_active_file", 0), st("nr_inactive_file", 0)
    rows = [
        ("MemTotal", _kb(total)),
        ("MemFree", _kb(free)),
        ("MemUsed", _kb(total - free)),
        ("SwapCached", _kb(st("nr_swapcached", 0))),
        ("Active", _kb(act_anon + act_file)),
        ("Inactive", _kb(inact_anon + inact_file)),
        ("Active(anon)", _kb(act_anon)),
        ("Inactive(anon)", _kb(inact_anon)),
        ("Active(file)", _kb(act_file)),
        ("Inactive(file)", _kb(inact_file)),
        ("Unevictable", _kb(st("nr_unevictable", 0))),
        ("Mlocked", _kb(zsum("nr_mlock"))),
        ("Dirty", _kb(st("nr_dirty", 0))),
        ("Writeback", _kb(st("nr_writeback", 0))),
        ("FilePages", _kb(st("nr_file_pages", 0))),
        ("Mapped", _kb(st("nr_mapped", 0))),
        ("AnonPages", _kb(st("nr_anon_pages", 0))),
        ("Shmem", _kb(st("nr_shmem", 0))),
        ("KernelStack", st("nr_kernel_stack", 0)),              # already kB
        ("PageTables", _kb(st("nr_page_table_pages", 0))),
        ("SecPageTables", _kb(st("nr_sec_page_table_pages", 0))),
        ("NFS_Unstable", 0),
        ("Bounce", 0),
        ("WritebackTmp", _kb(st("nr_writeback_temp", 0))),
        ("KReclaimable", _kb(srec + st("nr_kernel_misc_reclaimable", 0))),
        ("Slab", _kb(srec + sunrec)),
        ("SReclaimable", _kb(srec)),
        ("SUnreclaim", _kb(sunrec)),
        ("AnonHugePages", _kb(st("nr_anon_transparent_hugepages", 0))),
        ("ShmemHugePages", _kb(st("nr_shmem_hugepages", 0))),
        ("ShmemPmdMapped", _kb(st("nr_shmem_pmdmapped", 0))),
        ("FileHugePages", _kb(st("nr_file_hugepages", 0))),
        ("FilePmdMapped", _kb(st("nr_file_pmdmapped", 0))),
    ]   # no Balloon line: node_read_meminfo() of 6.18 has none (only /proc/meminfo does)
    # 6.1's node_read_meminfo() prints "FileHugePages: %8lu" and "FilePmdMapped: %8lu", one
    # column left of the others (6.18 aligns them)
    narrow = k.profile.node_meminfo_narrow
    text = "".join(f"Node {nid} {key + ':':<{15 if key in narrow else 16}}{val:8d} kB\n" for key, val in rows)
    # hugetlb_report_node_meminfo(): the vm.nr_hugepages pool's pages on this node, all free
    from ..mm.hugetlb import nr_huge_pages_node
    huge = nr_huge_pages_node(k, nid) if k.huge_pool else 0
    text += "".join(f"Node {nid} {key + ':':<17}{v:5d}\n"
                    for key, v in (("HugePages_Total", huge), ("HugePages_Free", huge), ("HugePages_Surp", 0)))
    return text


NUMASTAT = (("numa_hit", "numa_hit"), ("numa_miss", "numa_miss"), ("numa_foreign", "numa_foreign"),
            ("interleave_hit", "numa_interleave"), ("local_node", "numa_local"),
            ("other_node", "numa_other"))


def node_numastat(k, nid: int) -> str:
    """node_read_numastat(): each counter summed over the node's zones."""
    zones = k.nodes[nid].zones
    return "".join(f"{label} {sum(z.numa.get(item, 0) for z in zones)}\n" for label, item in NUMASTAT)


def _node_files(nid: int) -> dict[str, View]:
    def cpus(k):
        return k.machine.node_cpus(nid)
    return {
        f"{NODE}/node{nid}/cpumap": View(0o444, lambda k: f"{cpumask(cpus(k), k.machine.nr_cpu_ids)}\n".encode()),
        f"{NODE}/node{nid}/cpulist": View(0o444, lambda k: f"{cpulist(cpus(k))}\n".encode()),
        f"{NODE}/node{nid}/distance": View(
            0o444, lambda k: (" ".join(map(str, k.machine.distances[nid])) + "\n").encode()),
        f"{NODE}/node{nid}/meminfo": View(0o444, lambda k: node_meminfo(k, nid).encode()),
        f"{NODE}/node{nid}/numastat": View(0o444, lambda k: node_numastat(k, nid).encode()),
        **_node_hugepages(nid),
    }


def _node_hugepages(nid: int) -> dict[str, View]:
    """nodeN/hugepages/hugepages-{2048,1048576}kB (mm/hugetlb.c hugetlb_register_node): the
    vm.nr_hugepages pool's pages on the node, all free; no 1 GiB pool.  Per-node writes are
    not simulated (the global vm.nr_hugepages is)."""
    def count(k, size_kb):
        if size_kb != 2048 or not k.huge_pool:
            return 0
        from ..mm.hugetlb import nr_huge_pages_node
        return nr_huge_pages_node(k, nid)
    out = {}
    for size_kb in (1048576, 2048):
        d = f"{NODE}/node{nid}/hugepages/hugepages-{size_kb}kB"
        out[f"{d}/nr_hugepages"] = View(0o644, lambda k, s=size_kb: f"{count(k, s)}\n".encode())
        out[f"{d}/free_hugepages"] = View(0o444, lambda k, s=size_kb: f"{count(k, s)}\n".encode())
        out[f"{d}/surplus_hugepages"] = View(0o444, lambda k: b"0\n")
    return out


# --------------------------------------------------------------------------------------------
# the registry

@lru_cache(maxsize=8)
def _smbios_pair(m: Machine) -> tuple[bytes, bytes]:
    return smbios.entry_point(m), smbios.table(m)


FILES: dict[str, View] = {
    "cpuinfo": View(0o444, lambda k: _cpuinfo(k.machine)),
    **{f"{NODE}/{name}": _state_file(name) for name in
       ("possible", "online", "has_normal_memory", "has_memory", "has_cpu", "has_generic_initiator")},
    f"{CPU}/online": View(0o444, _all_cpus),
    f"{CPU}/possible": View(0o444, _all_cpus),
    f"{CPU}/present": View(0o444, _all_cpus),
    f"{CPU}/offline": View(0o444, lambda k: b"\n"),
    f"{CPU}/kernel_max": View(0o444, lambda k: f"{MAX_CPUS - 1}\n".encode()),
    f"{DMI}/smbios_entry_point": View(0o400, lambda k: _smbios_pair(k.machine)[0], exact_size=True),
    f"{DMI}/DMI": View(0o400, lambda k: _smbios_pair(k.machine)[1], exact_size=True),
}


def files_for(m: Machine) -> dict[str, View]:
    """FILES plus the per-node and per-CPU files of machine ``m``."""
    out = dict(FILES)
    for nid in range(m.nr_nodes):
        out.update(_node_files(nid))
    topo = m.cpu_topology()
    names = CACHE_FILES if m.kernel != "3.10" else CACHE_FILES[1:]      # "id" came with 4.11
    for cpu in range(m.nr_cpu_ids):
        for name in TOPOLOGY_FILES:
            out[f"{CPU}/cpu{cpu}/topology/{name}"] = _cpu_file(cpu, name)
        for index in range(len(m.sockets[topo[cpu][0]].cache)):
            for name in names:
                out[f"{CPU}/cpu{cpu}/cache/index{index}/{name}"] = _cache_file(cpu, index, name)
    return out


def write_tree(k, root) -> None:
    """Render every file of ``k``'s machine below directory ``root`` (tests, lscpu --sysroot):
    ``cpuinfo`` goes to ``proc/cpuinfo`` there, the rest to their own paths."""
    from pathlib import Path
    root = Path(root)
    for path, view in files_for(k.machine).items():
        dest = root / ("proc/cpuinfo" if path == "cpuinfo" else path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        data = view.render(k)
        dest.write_bytes(data if isinstance(data, bytes) else data.encode())
