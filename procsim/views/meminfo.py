"""/proc/meminfo as fs/proc/meminfo.c prints it in 6.18, with the lines the reference host shows
(older versions: k.profile.meminfo_lines).

MemTotal is Σ managed, MemFree Σ NR_FREE_PAGES (pages on pcp lists are not free).
Swap follows procsim.mm.swapfile.  Lines nothing in the model drives (zswap, hugetlb, ...)
are 0.  The derived figures are the core's (MemAvailable: k.si_mem_available(), CommitLimit,
DirectMap*: k.direct_map); this file only prints.
"""
from __future__ import annotations

from ..mm import swapfile
from ..mm.percpu import first_chunk_pages
from ..mm.vmalloc import vmalloc_nr_pages
from ..mm.page_types import PAGE_SIZE
from . import View

KB = PAGE_SIZE // 1024
VMALLOC_TOTAL_KB = ((32 << 40) - 1) >> 10   # VMALLOC_SIZE_TB 32 (4-level paging), VMALLOC_END inclusive
HPAGE_SIZE_KB = 2048


def _values(k) -> dict[str, int]:
    """label -> kB for every line any profile prints (a version picks and orders them:
    Profile.meminfo_lines)."""
    st = k.node_stat_total
    free = k.nr_free_pages
    active_file, inactive_file = st("nr_active_file"), st("nr_inactive_file")
    active_anon, inactive_anon = st("nr_active_anon"), st("nr_inactive_anon")
    sreclaimable, sunreclaim = st("nr_slab_reclaimable"), st("nr_slab_unreclaimable")
    buffers = 0                                   # no block devices
    swapcached = swapfile.total_swapcache_pages(k)
    cached = max(st("nr_file_pages") - swapcached - buffers, 0)
    pages = {
        "MemTotal": k.managed_pages, "MemFree": free, "MemAvailable": k.si_mem_available(),
        "Buffers": buffers, "Cached": cached, "SwapCached": swapcached,
        "Active": active_anon + active_file, "Inactive": inactive_anon + inactive_file,
        "Active(anon)": active_anon, "Inactive(anon)": inactive_anon,
        "Active(file)": active_file, "Inactive(file)": inactive_file,
        "Unevictable": st("nr_unevictable"), "Mlocked": k.zone_stat_total("nr_mlock"),
        "SwapTotal": swapfile.total_swap_pages(k), "SwapFree": swapfile.get_nr_swap_pages(k), "Zswap": 0, "Zswapped": 0,
        "Dirty": st("nr_dirty"), "Writeback": st("nr_writeback"),
        "AnonPages": st("nr_anon_pages"), "Mapped": st("nr_mapped"), "Shmem": st("nr_shmem"),
        "KReclaimable": sreclaimable + st("nr_kernel_misc_reclaimable"),
        "Slab": sreclaimable + sunreclaim, "SReclaimable": sreclaimable, "SUnreclaim": sunreclaim,
        "PageTables": st("nr_page_table_pages"), "SecPageTables": st("nr_sec_page_table_pages"),
        "NFS_Unstable": 0, "Bounce": 0, "WritebackTmp": 0,
        "CommitLimit": k.vm_commit_limit(), "Committed_AS": k.vm_committed_as(),
        "VmallocUsed": vmalloc_nr_pages(k), "VmallocChunk": 0, "Percpu": k.percpu_pages + first_chunk_pages(k),
        "HardwareCorrupted": 0,                   # CONFIG_MEMORY_FAILURE: num_poisoned_pages
        "AnonHugePages": st("nr_anon_transparent_hugepages"), "ShmemHugePages": st("nr_shmem_hugepages"),
        "ShmemPmdMapped": st("nr_shmem_pmdmapped"), "FileHugePages": st("nr_file_hugepages"),
        "FilePmdMapped": st("nr_file_pmdmapped"), "CmaTotal": 0, "CmaFree": 0, "Balloon": st("nr_balloon_pages"),
    }
    out = {label: v * KB for label, v in pages.items()}
    out["KernelStack"] = st("nr_kernel_stack")           # already in kB
    out["VmallocTotal"] = VMALLOC_TOTAL_KB
    return out


def _lines(k) -> list[tuple[str, int]]:
    """(label, kB) in the profile's order."""
    values = _values(k)
    return [(label, values[label]) for label in k.profile.meminfo_lines]


def render(k) -> bytes:
    # arch/x86 / fs/proc/meminfo.c: "HardwareCorrupted: %5lu kB" is the one line of its own width
    out = [f"{label}: {kb:5d} kB\n" if label == "HardwareCorrupted" else f"{label + ':':<16}{kb:8d} kB\n"
           for label, kb in _lines(k)]
    huge = k.nr_huge_pages            # vm.nr_hugepages' pool, all free (mm/hugetlb.py)
    out.append("HugePages_Total:   %5d\nHugePages_Free:    %5d\nHugePages_Rsvd:    %5d\nHugePages_Surp:    %5d\n"
               "Hugepagesize:   %8d kB\n" % (huge, huge, 0, 0, HPAGE_SIZE_KB))
    if k.profile.meminfo_hugetlb:
        out.append("Hugetlb:        %8d kB\n" % (huge * HPAGE_SIZE_KB))
    out.extend(f"DirectMap{label}:    {size >> 10:8d} kB\n" for label, size in zip(("4k", "2M", "1G"), k.direct_map.values(), strict=True))
    return "".join(out).encode()


FILES = {"meminfo": View(0o444, render)}
