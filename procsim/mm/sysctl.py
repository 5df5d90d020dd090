"""The vm sysctls the simulation honours (kernel/sysctl.c proc_dointvec_minmax, and the
handlers in mm/page_alloc.c, mm/vmscan.c, fs/dcache.c, fs/drop_caches.c, 6.18).

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


def _attr(name):
    return lambda k: [getattr(k, name)]


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


SYSCTLS = {s.name: s for s in (
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
    """proc_dointvec's read: the values separated by tabs, then a newline."""
    return "\t".join(map(str, lookup(name).get(k))) + "\n"


def write(k, name: str, text: str) -> str:
    """Write vm.NAME; returns the canonical value written (for the journal).  MMError
    EINVAL for a bad value (nothing changed), ENOENT for a sysctl procsim does not model."""
    s = lookup(name)
    values = parse(s, text)
    if s.vector:
        values = values + s.get(k)[len(values):]     # a short vector write keeps the rest
    s.set(k, values)
    k.generation += 1
    return " ".join(map(str, values))


def lookup(name: str) -> Sysctl:
    s = SYSCTLS.get(name.removeprefix("vm."))
    if s is None:
        raise MMError(errno.ENOENT, f"unknown sysctl {name!r} (vm.: {', '.join(SYSCTLS)})")
    return s
