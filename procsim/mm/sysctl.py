"""The vm sysctls: every /proc/sys/vm file of the profile's kernel (kernel/sysctl.c's vm_table
and the tables mm/*.c and fs/*.c register under "vm"; x86-64 as Debian configures it: NUMA,
HUGETLB, COMPACTION, MEMORY_FAILURE, USERFAULTFD), each with its mode, type, range and handler
(6.18 unless the version differs: ``VERSIONS`` says which files 6.1, 5.4 and 3.10 have).

What a value does here: overcommit_memory/ratio/kbytes and admin/user_reserve_kbytes ->
CommitLimit and __vm_enough_memory() for anon commits (show_mem.py); dirty_ratio/bytes,
dirty_background_ratio/bytes -> vmstat's nr_dirty_threshold / nr_dirty_background_threshold
(page_writeback.py; writing the bytes form zeroes the ratio and back, as the handlers do);
compaction_proactiveness and extfrag_threshold -> compaction.py; stat_interval -> the vmstat
worker's period; panic_on_oom -> an OOM refuses the allocation with the panic line in the log
instead of killing; oom_kill_allocating_task -> the allocating task is the victim.  The rest
(page-cluster, zone_reclaim_mode, max_map_count, ...) are kept with their range and shown:
nothing procsim simulates reads them.

Each entry has the kernel's mode, range and handler: a write is parsed as
proc_dointvec does (leading blanks, an optional sign, decimal/0x/0 octal as strtoul
base 0, blank or newline separated for vectors, nothing else after), out-of-range values
are EINVAL and change nothing, and a good value recomputes what the kernel recomputes:
min_free_kbytes and watermark_scale_factor -> setup_per_zone_wmarks() (watermarks,
then zone_pcp_update of every zone, totalreserve_pages); lowmem_reserve_ratio ->
setup_per_zone_lowmem_reserve(); percpu_pagelist_high_fraction -> the pcp high limits
of every zone.  drop_caches (write only) runs drop_pagecache / drop_slab.
"""
from __future__ import annotations

import errno
import re
from dataclasses import dataclass
from typing import Callable

from .errors import MMError
from . import vmscan
from .printk import pr_info

INT_MAX = (1 << 31) - 1
ULONG_MAX = (1 << 64) - 1
HZ = 250
MIN_PERCPU_PAGELIST_HIGH_FRACTION = 8


@dataclass(frozen=True)
class Sysctl:
    name: str
    mode: int
    get: Callable[[object], list[int]]               # kernel -> the value(s)
    set: Callable[[object, list[int]], None]         # kernel, checked values -> apply + recompute
    lo: int = -INT_MAX - 1
    hi: int = INT_MAX
    vector: int = 0                                  # >0: an int array of that length
    jiffies: bool = False                            # proc_dointvec_jiffies: seconds in, seconds out
    text: str | None = None                          # proc_dostring: the fixed string shown (writes EINVAL)


def _attr(name):
    return lambda k: [getattr(k, name)]


# Which files each version has (x86-64, Debian's config); 6.18 has all of SYSCTLS but the
# old kernels' own files.
_OLD_ONLY = {"percpu_pagelist_fraction", "block_dump", "nr_pdflush_threads", "scan_unevictable_pages",
             "hugepages_treat_as_movable"}
_NEW_6_18 = {"defrag_mode", "enable_soft_offline", "memfd_noexec", "vfs_cache_pressure_denom"}   # after 6.1
_NEW_5_X = {"compaction_proactiveness", "page_lock_unfairness", "percpu_pagelist_high_fraction",
            "hugetlb_optimize_vmemmap"}                                                           # after 5.4
_NEW_4_X = {"overcommit_kbytes", "watermark_scale_factor", "compact_unevictable_allowed",
            "dirtytime_expire_seconds", "mmap_rnd_bits", "mmap_rnd_compat_bits", "stat_refresh", "numa_stat",
            "watermark_boost_factor", "unprivileged_userfaultfd"}                                 # after 3.10



def _set_min_free_kbytes(k, v):
    """min_free_kbytes_sysctl_handler()."""
    k.min_free_kbytes = k.user_min_free_kbytes = v[0]
    k.setup_per_zone_wmarks()


def _set_watermark_scale_factor(k, v):
    k.watermark_scale_factor = v[0]
    k.setup_per_zone_wmarks()


def _set_lowmem_reserve_ratio(k, v):
    """lowmem_reserve_ratio_sysctl_handler(): values below 1 become 0."""
    for i, x in enumerate(v):
        k.lowmem_reserve_ratio[i] = x if x >= 1 else 0
    k.setup_per_zone_lowmem_reserve()


def _set_percpu_pagelist_high_fraction(k, v):
    """percpu_pagelist_high_fraction_sysctl_handler(): 0 or at least 8; new pcp limits."""
    if v[0] and v[0] < MIN_PERCPU_PAGELIST_HIGH_FRACTION:
        raise MMError(errno.EINVAL, f"percpu_pagelist_high_fraction must be 0 or at least "
                                    f"{MIN_PERCPU_PAGELIST_HIGH_FRACTION}")
    if v[0] != k.percpu_pagelist_high_fraction:
        k.percpu_pagelist_high_fraction = v[0]
        for z in k.zones:
            if z.populated:
                k.zone_pcp_update(z)


def _plain(name):
    def set_(k, v):
        setattr(k, name, v[0])
    return set_


def _drop_caches(k, v):
    """drop_caches_sysctl_handler(): 1 page cache, 2 reclaimable slab, 3 both; 4 silences the
    message it prints until a write with 4 (its static stfu; here per boot)."""
    value = v[0]
    if value & 1:
        vmscan.drop_pagecache(k)
        k.vm_events["drop_pagecache"] = k.vm_events.get("drop_pagecache", 0) + 1
    if value & 2:
        k.drop_slab()
    if not k.drop_caches_stfu:                       # the writer: the control file's, comm "procsim"
        pr_info(k, f"procsim (1): drop_caches: {value}")
    if value & 4:
        k.drop_caches_stfu = True
    k.sysctl_drop_caches = value
    k.generation += 1


# The values the kernel boots with, of the sysctls whose state is kept here as k.sysctl_NAME
# (init_vm_sysctls() declares them on the Kernel).
BOOT_VALUES = {"sysctl_dirty_ratio": 20, "sysctl_dirty_background_ratio": 10, "sysctl_dirty_bytes": 0,
               "sysctl_dirty_background_bytes": 0, "sysctl_overcommit_ratio": 50, "sysctl_overcommit_kbytes": 0,
               "sysctl_numa_stat": 1, "sysctl_stat_interval": HZ}


def _knob(name, default):
    """A sysctl kept as k.sysctl_NAME."""
    attr = "sysctl_" + name.replace("-", "_")
    BOOT_VALUES[attr] = default
    return (lambda k: [getattr(k, attr)]), (lambda k, v: setattr(k, attr, v[0]))


def init_vm_sysctls(k) -> None:
    """The vm sysctls' boot values, on the Kernel (the reserves from the boot memory)."""
    for attr, value in BOOT_VALUES.items():
        setattr(k, attr, value)
    k.sysctl_user_reserve_kbytes, k.sysctl_admin_reserve_kbytes = _default_reserves(k)


def _set_dirty(name, other):
    """dirty_ratio_handler() and friends: writing one form zeroes the other."""
    def set_(k, v):
        setattr(k, "sysctl_" + name, v[0])
        setattr(k, "sysctl_" + other, 0)
    return set_


def _set_overcommit(name, other):
    """overcommit_ratio_handler() / overcommit_kbytes_handler(): one zeroes the other."""
    def set_(k, v):
        setattr(k, "sysctl_" + name, v[0])
        if other:
            setattr(k, "sysctl_" + other, 0)
    return set_


def _set_compaction_proactiveness(k, v):
    """compaction_proactiveness_sysctl_handler(): a nonzero value wakes kcompactd at once on
    nodes with memory (its proactive check runs)."""
    k.sysctl_compaction_proactiveness = v[0]


def _set_numa_stat(k, v):
    """sysctl_vm_numa_stat_handler(): turning it off zeroes the NUMA counters."""
    if not v[0] and k.sysctl_numa_stat:
        for z in k.zones:
            for item in z.numa:
                z.numa[item] = 0
    k.sysctl_numa_stat = v[0]


def _stat_refresh(k, v):
    """vmstat_refresh(): fold every cpu's diffs now (procsim's counters are exact)."""
    for cpu in range(k.nr_cpu_ids):
        k.refresh_cpu_vm_stats(cpu)


def _default_reserves(k) -> tuple[int, int]:
    """init_user_reserve() / init_admin_reserve() (subsys_initcall): free memory / 32, at most
    128 MiB / 8 MiB; free memory then is the buddy's boot memory (the layout's managed pages)."""
    free_kb = sum(z.managed for n in k.layout.nodes for z in n.zones) * 4
    return min(free_kb // 32, 1 << 17), min(free_kb // 32, 1 << 13)


def _reserve(which: str):
    attr = f"sysctl_{which}_reserve_kbytes"
    i = 0 if which == "user" else 1
    del i
    return (lambda k: [getattr(k, attr)]), (lambda k, v: setattr(k, attr, v[0]))


def _set_nr_hugepages(k, v):
    from . import hugetlb
    hugetlb.set_max_huge_pages(k, v[0])


def _k(name, default, lo=0, hi=INT_MAX, mode=0o644, **kw):
    get, set_ = _knob(name, default)
    return Sysctl(name, mode, get, set_, lo=lo, hi=hi, **kw)


def _text(name, value):
    return Sysctl(name, 0o644, lambda k: [], _no_write, text=value)


def _no_write(k, v):
    raise MMError(errno.EINVAL, "this sysctl is read only")


_user_get, _user_set = _reserve("user")
_admin_get, _admin_set = _reserve("admin")

SYSCTLS = {s.name: s for s in (
    Sysctl("admin_reserve_kbytes", 0o644, _admin_get, _admin_set, lo=0, hi=ULONG_MAX),
    _k("compact_unevictable_allowed", 1, hi=1),
    Sysctl("compaction_proactiveness", 0o644, lambda k: [k.sysctl_compaction_proactiveness],
           _set_compaction_proactiveness, lo=0, hi=100),
    _k("defrag_mode", 0, hi=1),
    Sysctl("dirty_background_bytes", 0o644, _attr("sysctl_dirty_background_bytes"),
           _set_dirty("dirty_background_bytes", "dirty_background_ratio"), lo=1, hi=ULONG_MAX),
    Sysctl("dirty_background_ratio", 0o644, _attr("sysctl_dirty_background_ratio"),
           _set_dirty("dirty_background_ratio", "dirty_background_bytes"), lo=0, hi=100),
    Sysctl("dirty_bytes", 0o644, _attr("sysctl_dirty_bytes"), _set_dirty("dirty_bytes", "dirty_ratio"),
           lo=2 * 4096, hi=ULONG_MAX),
    _k("dirty_expire_centisecs", 3000),
    Sysctl("dirty_ratio", 0o644, _attr("sysctl_dirty_ratio"), _set_dirty("dirty_ratio", "dirty_bytes"), lo=0, hi=100),
    _k("dirty_writeback_centisecs", 500),
    _k("dirtytime_expire_seconds", 43200),
    _k("enable_soft_offline", 1, hi=1),
    Sysctl("extfrag_threshold", 0o644, lambda k: [k.sysctl_extfrag_threshold],
           lambda k, v: setattr(k, "sysctl_extfrag_threshold", v[0]), lo=0, hi=1000),
    _k("hugetlb_optimize_vmemmap", 0, hi=1),
    _k("hugetlb_shm_group", 0, lo=-INT_MAX - 1),
    _k("laptop_mode", 0, jiffies=True),
    _k("legacy_va_layout", 0),
    _k("max_map_count", 65530),
    _k("memfd_noexec", 0, hi=2),
    _k("memory_failure_early_kill", 0, hi=1),
    _k("memory_failure_recovery", 1, hi=1),
    _k("min_slab_ratio", 5, hi=100),
    _k("min_unmapped_ratio", 1, hi=100),
    _k("mmap_min_addr", 65536, hi=ULONG_MAX),
    _k("mmap_rnd_bits", 28, lo=28, hi=32, mode=0o600),
    _k("mmap_rnd_compat_bits", 8, lo=8, hi=16, mode=0o600),
    Sysctl("nr_hugepages", 0o644, lambda k: [k.nr_huge_pages], _set_nr_hugepages, lo=0, hi=ULONG_MAX),
    Sysctl("nr_hugepages_mempolicy", 0o644, lambda k: [k.nr_huge_pages], _set_nr_hugepages,
           lo=0, hi=ULONG_MAX),
    _k("nr_overcommit_hugepages", 0, hi=ULONG_MAX),
    Sysctl("numa_stat", 0o644, _attr("sysctl_numa_stat"), _set_numa_stat, lo=0, hi=1),
    _text("numa_zonelist_order", "Node"),
    _k("oom_dump_tasks", 1, lo=-INT_MAX - 1),
    _k("oom_kill_allocating_task", 0, lo=-INT_MAX - 1),
    Sysctl("overcommit_kbytes", 0o644, _attr("sysctl_overcommit_kbytes"),
           _set_overcommit("overcommit_kbytes", "overcommit_ratio"), lo=0, hi=ULONG_MAX),
    _k("overcommit_memory", 0, hi=2),
    Sysctl("overcommit_ratio", 0o644, _attr("sysctl_overcommit_ratio"),
           _set_overcommit("overcommit_ratio", "overcommit_kbytes"), lo=-INT_MAX - 1),
    _k("page-cluster", 3, hi=31),
    _k("page_lock_unfairness", 5),
    _k("panic_on_oom", 0, hi=2),
    Sysctl("stat_interval", 0o644, lambda k: [k.sysctl_stat_interval],
           lambda k, v: setattr(k, "sysctl_stat_interval", v[0]), lo=0, hi=INT_MAX // HZ, jiffies=True),
    Sysctl("stat_refresh", 0o600, lambda k: [], _stat_refresh, lo=-INT_MAX - 1),
    _k("unprivileged_userfaultfd", 0, hi=1),
    Sysctl("user_reserve_kbytes", 0o644, _user_get, _user_set, lo=0, hi=ULONG_MAX),
    _k("vfs_cache_pressure_denom", 100, lo=1),
    _k("zone_reclaim_mode", 0),
    # the old kernels' own files
    _k("percpu_pagelist_fraction", 0),
    _k("block_dump", 0),
    _k("nr_pdflush_threads", 0, mode=0o444),
    _k("scan_unevictable_pages", 0, hi=ULONG_MAX),
    _k("hugepages_treat_as_movable", 0),

    Sysctl("min_free_kbytes", 0o644, _attr("min_free_kbytes"), _set_min_free_kbytes, lo=0),
    Sysctl("watermark_boost_factor", 0o644, _attr("watermark_boost_factor"), _plain("watermark_boost_factor"), lo=0),
    Sysctl("watermark_scale_factor", 0o644, _attr("watermark_scale_factor"), _set_watermark_scale_factor,
           lo=1, hi=3000),
    Sysctl("lowmem_reserve_ratio", 0o644, lambda k: list(k.lowmem_reserve_ratio), _set_lowmem_reserve_ratio,
           vector=5),
    Sysctl("percpu_pagelist_high_fraction", 0o644, _attr("percpu_pagelist_high_fraction"),
           _set_percpu_pagelist_high_fraction, lo=0),
    Sysctl("swappiness", 0o644, _attr("swappiness"), _plain("swappiness"), lo=0, hi=200),
    Sysctl("vfs_cache_pressure", 0o644, _attr("vfs_cache_pressure"), _plain("vfs_cache_pressure"), lo=0),
    Sysctl("drop_caches", 0o200, _attr("sysctl_drop_caches"), _drop_caches, lo=1, hi=4),
)}

_INT = re.compile(r"[ \t\n]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)(?=[ \t\n]|$)")


# ranges that differ by version: swappiness went to 200 in 5.8
_RANGES = {("swappiness", "5.4"): (0, 100), ("swappiness", "3.10"): (0, 100)}
_TEXTS = {("numa_zonelist_order", "3.10"): "default"}


def for_version(s: Sysctl, version: str) -> Sysctl:
    """The sysctl as that kernel version has it (its range, its text)."""
    from dataclasses import replace
    if (s.name, version) in _RANGES:
        lo, hi = _RANGES[s.name, version]
        return replace(s, lo=lo, hi=hi)
    if (s.name, version) in _TEXTS:
        return replace(s, text=_TEXTS[s.name, version])
    return s


def parse(s: Sysctl, text: str) -> list[int]:
    """__do_proc_dointvec() for a write: the values, each checked against [lo, hi]."""
    out, pos = [], 0
    want = s.vector or 1
    while len(out) < want:
        m = _INT.match(text, pos)
        if m is None:
            if text[pos:].strip() == "" and out:
                break
            raise MMError(errno.EINVAL, f"vm.{s.name}: not an integer: {text.strip()[:40]!r}")
        sign, digits = m.groups()
        v = int(digits, 16) if digits[:2] in ("0x", "0X") else int(digits, 8 if digits[0] == "0" else 10)
        v = -v if sign == "-" else v
        if not s.lo <= v <= s.hi:
            raise MMError(errno.EINVAL, f"vm.{s.name}: {v} is out of range {s.lo}..{s.hi}")
        out.append(v)
        pos = m.end()
    if text[pos:].strip():
        raise MMError(errno.EINVAL, f"vm.{s.name}: unexpected {text[pos:].strip()[:40]!r} after the value")
    return out


def read(k, name: str) -> str:
    """proc_dointvec's read: the values separated by tabs, then a newline (jiffies shown in
    seconds; a string as proc_dostring prints it; a write-only file reads empty)."""
    s = for_version(lookup(name), k.profile.version)
    if s.text is not None:
        return s.text + "\n"
    values = s.get(k)
    if not values:
        return ""
    return "\t".join(str(v // HZ if s.jiffies else v) for v in values) + "\n"


def write(k, name: str, text: str) -> str:
    """Write vm.NAME; returns the canonical value written (for the journal).  MMError
    EINVAL for a bad value (nothing changed), ENOENT for a sysctl procsim does not model."""
    s = for_version(lookup(name, k.profile.version), k.profile.version)
    if s.text is not None:
        raise MMError(errno.EINVAL, f"vm.{s.name} is {s.text!r} and cannot be changed")
    values = parse(s, text)
    if s.jiffies:                                    # proc_dointvec_jiffies: seconds -> jiffies
        values = [v * HZ for v in values]
    if s.vector:
        values = values + s.get(k)[len(values):]     # a short vector write keeps the rest
    s.set(k, values)
    k.generation += 1
    return " ".join(str(v // HZ) if s.jiffies else str(v) for v in values)


def names(version: str = "6.18") -> list[str]:
    """The /proc/sys/vm files of a kernel version, sorted as the directory lists them."""
    out = set(SYSCTLS) - _OLD_ONLY
    if version in ("6.1", "5.4", "3.10"):
        out -= _NEW_6_18
    if version in ("5.4", "3.10"):
        out = (out - _NEW_5_X) | {"percpu_pagelist_fraction", "block_dump"}
    if version == "3.10":
        out = (out - _NEW_4_X) | {"nr_pdflush_threads", "scan_unevictable_pages", "hugepages_treat_as_movable"}
    return sorted(out)


def lookup(name: str, version: str | None = None) -> Sysctl:
    s = SYSCTLS.get(name.removeprefix("vm."))
    if s is None or (version is not None and s.name not in names(version)):
        raise MMError(errno.ENOENT, f"unknown sysctl {name!r} (vm.: {', '.join(names(version or '6.18'))})")
    return s
