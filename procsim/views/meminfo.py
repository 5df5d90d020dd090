"""/proc/meminfo as fs/proc/meminfo.c prints it in 6.18, with the lines the reference host shows.

MemTotal is Σ managed, MemFree Σ NR_FREE_PAGES (pages on pcp lists are not free),
MemAvailable is si_mem_available().  Swap follows procsim.mm.swapfile.  Lines nothing in
the model drives (zswap, hugetlb, ...) are 0.  The DirectMap lines follow from the e820 RAM ranges the way
init_mem_mapping() maps them.
"""
from __future__ import annotations

from ..machine import PAGE_SIZE
from ..mm import swapfile
from . import View

KB = PAGE_SIZE // 1024
OVERCOMMIT_RATIO = 50                       # vm.overcommit_ratio default
VMALLOC_TOTAL_KB = ((32 << 40) - 1) >> 10   # VMALLOC_SIZE_TB 32 (4-level paging), VMALLOC_END inclusive
HPAGE_PMD_NR = 512
HPAGE_SIZE_KB = 2048
ISA_END = 1 << 20
PMD_SIZE, PUD_SIZE = 2 << 20, 1 << 30


def si_mem_available(k, free: int, file_lru: int, sreclaimable: int) -> int:
    """mm/show_mem.c si_mem_available(): free minus reserves, plus what reclaim could free."""
    wmark_low = sum(z.wmark_low for z in k.zones)
    available = free - k.totalreserve_pages
    available += file_lru - min(file_lru // 2, wmark_low)
    reclaimable = sreclaimable + k.node_stat_total("nr_kernel_misc_reclaimable")
    available += reclaimable - min(reclaimable // 2, wmark_low)
    return max(available, 0)


def _ram_ranges(e820) -> list[tuple[int, int]]:
    """memblock.memory: the usable e820 ranges, adjacent ones merged (memblock_add merges)."""
    out: list[list[int]] = []
    for s, e, kind in sorted(e820):
        if kind != "usable":
            continue
        if out and out[-1][1] == s:
            out[-1][1] = e
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def _up(x, a): return -(-x // a) * a
def _down(x, a): return x // a * a


def _split_mem_range(start: int, end: int):
    """arch/x86/mm/init.c split_mem_range() for 64-bit: 4k head up to 2M alignment, 2M up to 1G
    alignment, 1G body, 2M and 4k tails.  Yields (start, end, page size)."""
    pos = start
    e = min(_up(pos, PMD_SIZE), end)
    if pos < e:
        yield pos, e, 4096
        pos = e
    s, e = _up(pos, PMD_SIZE), min(_up(pos, PUD_SIZE), _down(end, PMD_SIZE))
    if s < e:
        yield s, e, PMD_SIZE
        pos = e
    s, e = _up(pos, PUD_SIZE), _down(end, PUD_SIZE)
    if s < e:
        yield s, e, PUD_SIZE
        pos = e
    s, e = _up(pos, PMD_SIZE), _down(end, PMD_SIZE)
    if s < e:
        yield s, e, PMD_SIZE
        pos = e
    if pos < end:
        yield pos, end, 4096


def direct_map(e820) -> dict[int, int]:
    """Bytes of the direct map per page size.  The first MiB is mapped with 4k pages as a
    whole (init_memory_mapping(0, ISA_END_ADDRESS)); then each RAM range is split, and a
    piece whose enclosing 2M or 1G frame is all RAM is mapped with the larger page
    (adjust_range_page_size_mask()); a larger page is counted once however many pieces
    fall in it.  GB pages are assumed (X86_FEATURE_GBPAGES)."""
    ram = _ram_ranges(e820)

    def is_memory(s, e):
        return any(rs <= s and e <= re for rs, re in ram)

    sizes = {4096: 0, PMD_SIZE: 0, PUD_SIZE: 0}
    big: set[tuple[int, int]] = set()              # (page size, frame start) already mapped
    pieces = [(0, ISA_END, 4096)] if ram else []
    for s, e in ram:
        s = max(s, ISA_END)
        if s < e:
            pieces.extend(_split_mem_range(s, e))
    for s, e, size in pieces:
        if size < PUD_SIZE and s >= ISA_END and is_memory(_down(s, PUD_SIZE), _up(e, PUD_SIZE)):
            size = PUD_SIZE
        elif size < PMD_SIZE and s >= ISA_END and is_memory(_down(s, PMD_SIZE), _up(e, PMD_SIZE)):
            size = PMD_SIZE
        if size == 4096:
            sizes[4096] += e - s
            continue
        for frame in range(_down(s, size), e, size):
            if (size, frame) not in big:
                big.add((size, frame))
                sizes[size] += size
    return sizes


def _lines(k) -> list[tuple[str, int]]:
    """(label, kB) in 6.18 order."""
    st = k.node_stat_total
    free = k.nr_free_pages
    active_file, inactive_file = st("nr_active_file"), st("nr_inactive_file")
    active_anon, inactive_anon = st("nr_active_anon"), st("nr_inactive_anon")
    sreclaimable, sunreclaim = st("nr_slab_reclaimable"), st("nr_slab_unreclaimable")
    buffers = 0                                   # no block devices
    swapcached = swapfile.total_swapcache_pages(k)
    cached = max(st("nr_file_pages") - swapcached - buffers, 0)
    totalram = k.managed_pages
    hugetlb_pages = 0
    total_swap = swapfile.total_swap_pages(k)
    commit_limit = (totalram - hugetlb_pages) * OVERCOMMIT_RATIO // 100 + total_swap   # vm_commit_limit()
    committed = st("nr_anon_pages") + st("nr_shmem")   # what vm_committed_as charges that we model
    pages = [
        ("MemTotal", totalram), ("MemFree", free),
        ("MemAvailable", si_mem_available(k, free, active_file + inactive_file, sreclaimable)),
        ("Buffers", buffers), ("Cached", cached), ("SwapCached", swapcached),
        ("Active", active_anon + active_file), ("Inactive", inactive_anon + inactive_file),
        ("Active(anon)", active_anon), ("Inactive(anon)", inactive_anon),
        ("Active(file)", active_file), ("Inactive(file)", inactive_file),
        ("Unevictable", st("nr_unevictable")), ("Mlocked", k.zone_stat_total("nr_mlock")),
        ("SwapTotal", total_swap), ("SwapFree", swapfile.get_nr_swap_pages(k)), ("Zswap", 0), ("Zswapped", 0),
        ("Dirty", st("nr_dirty")), ("Writeback", st("nr_writeback")),
        ("AnonPages", st("nr_anon_pages")), ("Mapped", st("nr_mapped")), ("Shmem", st("nr_shmem")),
        ("KReclaimable", sreclaimable + st("nr_kernel_misc_reclaimable")),
        ("Slab", sreclaimable + sunreclaim), ("SReclaimable", sreclaimable), ("SUnreclaim", sunreclaim),
    ]
    out = [(label, v * KB) for label, v in pages]
    out.append(("KernelStack", st("nr_kernel_stack")))          # already in kB
    pages = [
        ("PageTables", st("nr_page_table_pages")), ("SecPageTables", st("nr_sec_page_table_pages")),
        ("NFS_Unstable", 0), ("Bounce", 0), ("WritebackTmp", 0),
        ("CommitLimit", commit_limit), ("Committed_AS", committed),
    ]
    out += [(label, v * KB) for label, v in pages]
    out.append(("VmallocTotal", VMALLOC_TOTAL_KB))
    pages = [
        ("VmallocUsed", k.vmalloc_pages), ("VmallocChunk", 0), ("Percpu", k.percpu_pages),
        ("AnonHugePages", st("nr_anon_transparent_hugepages")), ("ShmemHugePages", st("nr_shmem_hugepages")),
        ("ShmemPmdMapped", st("nr_shmem_pmdmapped")), ("FileHugePages", st("nr_file_hugepages")),
        ("FilePmdMapped", st("nr_file_pmdmapped")), ("Balloon", st("nr_balloon_pages")),
    ]
    out += [(label, v * KB) for label, v in pages]
    return out


def render(k) -> bytes:
    out = [f"{label + ':':<16}{kb:8d} kB\n" for label, kb in _lines(k)]
    out.append("HugePages_Total:   %5d\nHugePages_Free:    %5d\nHugePages_Rsvd:    %5d\nHugePages_Surp:    %5d\n"
               "Hugepagesize:   %8d kB\nHugetlb:        %8d kB\n" % (0, 0, 0, 0, HPAGE_SIZE_KB, 0))
    dm = direct_map(k.layout.e820)
    out.append(f"DirectMap4k:    {dm[4096] >> 10:8d} kB\n"
               f"DirectMap2M:    {dm[PMD_SIZE] >> 10:8d} kB\n"
               f"DirectMap1G:    {dm[PUD_SIZE] >> 10:8d} kB\n")
    return "".join(out).encode()


FILES = {"meminfo": View(0o444, render)}
