"""Trace events of the kmem, vmscan and oom subsystems: ftrace's per-cpu ring buffers.

Off by default, as in the kernel: every hook in the allocator is ``if tr.active:`` on a
plain attribute, true only while ``tracing_on`` is 1 *and* some event is enabled, so an
untraced run pays one attribute test per call and records nothing.  Events only observe:
a hook never changes which path the allocator takes (the order-0 runs emit each page's
events themselves), so the same commands leave the same state traced or not.

Each cpu has its own ring (kernel/trace/ring_buffer.c): pages of BUF_PAGE_SIZE bytes, as
many as ``buffer_size_kb`` asks (tracing_resize_ring_buffer), each event taking the bytes
its ring-buffer event would (a 4-byte header, the trace_entry and the event's fields, plus
an 8-byte time extend after a gap of 2^27 ns).  An entry is stored raw and formatted only when
read, with the TP_printk formats of include/trace/events/kmem.h and vmscan.h (6.18): one event
is a small tuple (seq, timestamp, event, arguments, task, bytes); the per-page events of a run
(``emit_pfns``: the pages of a pcp refill, a drain, a fill) are one record per ring page they
fill -- the pfns as a ``range`` (or a tuple), the shared arguments, the first timestamp and the
step -- which costs the same whatever the run's length, and is expanded into its lines, byte
for byte the per-event ones, when read (``_run_chunks``: joins of each page's cached
``ptr pfn`` piece and the text the run's lines share, as bytes, which trace_pipe returns;
``_run_lines`` the reference).
The ring's arithmetic (bytes per event, events per page, overrun, LOST) is per event as before.  In overwrite mode
(the default) a full ring drops its oldest page: ``overrun`` counts the events lost, and
the next trace_pipe read from that cpu starts with ``CPU:N [LOST M EVENTS]`` as
print_trace_line() prints it.  ``trace`` reads the rings (entries-in-buffer/entries-written
as get_total_entries() counts them); ``trace_pipe`` consumes, merging the cpus oldest first.

Readers need not hold the core's lock (docs/DESIGN.md, "Trace ring"): the writer appends to
a ring's newest page without a lock and takes ``Trace.lock`` (a no-op until the shell sets a
real one) only to start a page; readers take it for every read.  ``on_page`` (None in the
core) is called after a page is started, so a shell can wake readers while a long command
runs.  The timestamp is the kernel's simulated clock ``k.now_ns``; the core stays pure and
deterministic: no host clock, no threads.
"""
from __future__ import annotations

import errno
from bisect import bisect_right
from collections import deque
from contextlib import nullcontext
from itertools import accumulate, islice, repeat
from operator import add as _add, floordiv as _floordiv, mul as _mul

from .errors import MMError
from .printk import format_gfp_flags
from .page_types import PAGEBLOCK_ORDER

# Subsystem -> its events, in the order of include/trace/events/<subsystem>.h.
SUBSYSTEMS = {
    "kmem": ("kmalloc", "kfree", "kmem_cache_alloc", "kmem_cache_free", "mm_page_free", "mm_page_free_batched",
             "mm_page_alloc", "mm_page_alloc_zone_locked", "mm_page_pcpu_drain", "mm_page_alloc_extfrag"),
    "vmscan": ("mm_vmscan_direct_reclaim_begin", "mm_vmscan_direct_reclaim_end", "mm_vmscan_kswapd_sleep",
               "mm_vmscan_kswapd_wake", "mm_vmscan_wakeup_kswapd"),
    "oom": ("reclaim_retry_zone", "mark_victim"),
}
EVENTS = tuple(e for events in SUBSYSTEMS.values() for e in events)
BUF_PAGE_SIZE = 4096 - 16             # a ring page less its buffer_data_page header (u64 ts, local_t commit)
TRACE_BUF_SIZE_DEFAULT = 1441792       # trace_buf_size: 16384 * 88, what buffer_size_kb expands to
RB_EVNT_HDR_SIZE = 4                   # struct ring_buffer_event's type_len:5, time_delta:27
TS_DELTA_LIMIT = 1 << 27               # a larger delta takes an 8-byte RINGBUF_TYPE_TIME_EXTEND first
TRACE_ENTRY_SIZE = 8                   # struct trace_entry: type u16, flags u8, preempt_count u8, pid int
SAVED_CMDLINES = 128                   # saved_cmdlines_size
VMEMMAP_BASE = 0xffffea0000000000      # x86-64 vmemmap without KASLR: struct page of pfn N
STRUCT_PAGE_SIZE = 64
NUMA_NO_NODE = -1
CALL_SITE = "procsim_control+0x0/0x0"  # %pS of the caller: the control file stands in for it
INIT = ("init", 1)                     # untagged control commands run for init (mm/task.py)


def page_ptr(pfn: int) -> str:
    """%p of pfn_to_page(pfn), unhashed (as with no_hash_pointers): vmemmap + pfn * 64."""
    return f"{VMEMMAP_BASE + pfn * STRUCT_PAGE_SIZE:016x}"


_GFP_NAMES: dict[int, str] = {}


def gfp_str(gfp: int) -> str:
    """show_gfp_flags(): __print_flags over mmflags.h's table (printk's %pGg table), or "none"
    for 0 (a command uses a few masks: kept)."""
    name = _GFP_NAMES.get(gfp)
    if name is None:
        name = format_gfp_flags(gfp) if gfp else "none"
        if len(_GFP_NAMES) < 4096:
            _GFP_NAMES[gfp] = name
    return name


def _bool(x) -> str:
    return "true" if x else "false"


# The fields of each event's TP_STRUCT__entry (6.18), after the trace_entry: (C type, name,
# size, signed).  A __string is a 4-byte __data_loc with the text (and its NUL) after the
# struct.  They give each event's record size in the ring.
_UL, _UI, _INT = ("unsigned long", 8, 0), ("unsigned int", 4, 0), ("int", 4, 1)
_BOOL, _SHORT, _UID = ("bool", 1, 0), ("short", 2, 1), ("uid_t", 4, 0)
_PTR, _SZ, _STR = ("const void *", 8, 0), ("size_t", 8, 0), ("__data_loc char[]", 4, 1)   # char: signed
FIELDS = {
    "kmalloc": (("call_site", _UL), ("ptr", _PTR), ("bytes_req", _SZ), ("bytes_alloc", _SZ),
                ("gfp_flags", _UL), ("node", _INT)),
    "kfree": (("call_site", _UL), ("ptr", _PTR)),
    "kmem_cache_alloc": (("call_site", _UL), ("ptr", _PTR), ("name", _STR), ("bytes_req", _SZ),
                         ("bytes_alloc", _SZ), ("gfp_flags", _UL), ("node", _INT), ("accounted", _BOOL)),
    "kmem_cache_free": (("call_site", _UL), ("ptr", _PTR), ("name", _STR)),
    "mm_page_free": (("pfn", _UL), ("order", _UI)),
    "mm_page_free_batched": (("pfn", _UL),),
    "mm_page_alloc": (("pfn", _UL), ("order", _UI), ("gfp_flags", _UL), ("migratetype", _INT)),
    "mm_page_alloc_zone_locked": (("pfn", _UL), ("order", _UI), ("migratetype", _INT), ("percpu_refill", _INT)),
    "mm_page_pcpu_drain": (("pfn", _UL), ("order", _UI), ("migratetype", _INT)),
    "mm_page_alloc_extfrag": (("pfn", _UL), ("alloc_order", _INT), ("fallback_order", _INT),
                              ("alloc_migratetype", _INT), ("fallback_migratetype", _INT),
                              ("change_ownership", _INT)),
    "mm_vmscan_direct_reclaim_begin": (("order", _INT), ("gfp_flags", _UL)),
    "mm_vmscan_direct_reclaim_end": (("nr_reclaimed", _UL),),
    "mm_vmscan_kswapd_sleep": (("nid", _INT),),
    "mm_vmscan_kswapd_wake": (("nid", _INT), ("zid", _INT), ("order", _INT)),
    "mm_vmscan_wakeup_kswapd": (("nid", _INT), ("zid", _INT), ("order", _INT), ("gfp_flags", _UL)),
    "reclaim_retry_zone": (("node", _INT), ("zone_type", _INT), ("order", _INT), ("reclaimable", _UL),
                           ("available", _UL), ("min_wmark", _UL), ("no_progress_loops", _INT), ("wmark_check", _BOOL)),
    "mark_victim": (("pid", _INT), ("comm", _STR), ("total_vm", _UL), ("anon_rss", _UL), ("file_rss", _UL),
                    ("shmem_rss", _UL), ("uid", _UID), ("pgtables", _UL), ("oom_score_adj", _SHORT)),
}


def field_offsets(event: str) -> tuple[list, int]:
    """[(name, type, offset, size, signed)] of the event's struct and sizeof() of it: natural
    alignment after the 8-byte trace_entry, the struct padded to its largest member."""
    out, off, align = [], TRACE_ENTRY_SIZE, 4
    for name, (ctype, size, signed) in FIELDS[event]:
        a = min(size, 8)
        off = -(-off // a) * a
        out.append((name, ctype, off, size, signed))
        off += size
        align = max(align, a)
    return out, -(-off // align) * align


def _event_bytes(event: str) -> int:
    """The ring bytes of one event without strings: header + data rounded up to 4 bytes."""
    return RB_EVNT_HDR_SIZE + -(-field_offsets(event)[1] // 4) * 4


EVENT_BYTES = {e: _event_bytes(e) for e in FIELDS}
STRING_ARG = {"kmem_cache_alloc": 1, "kmem_cache_free": 1, "mark_victim": 1}   # which stored argument is a __string
ZONE_TYPE = ("DMA", "DMA32", "Normal", "Movable")   # mmflags.h's ZONE_TYPE on x86-64 (no HighMem, no Device)


_tuple_add = tuple.__add__
_VM = VMEMMAP_BASE                     # page_ptr() spelled out in the per-page formats: %p of pfn_to_page
assert STRUCT_PAGE_SIZE == 64

# event -> formatter of its stored arguments: TP_printk of 6.18's kmem.h
FORMATS = {
    "kmalloc": lambda ptr, req, alloc, gfp, node, accounted:
        f"call_site={CALL_SITE} ptr={ptr:016x} bytes_req={req} bytes_alloc={alloc} gfp_flags={gfp_str(gfp)} "
        f"node={node} accounted={_bool(accounted)}",
    "kfree": lambda ptr: f"call_site={CALL_SITE} ptr={ptr:016x}",
    "kmem_cache_alloc": lambda ptr, name, req, alloc, gfp, node, accounted:
        f"call_site={CALL_SITE} ptr={ptr:016x} name={name} bytes_req={req} bytes_alloc={alloc} "
        f"gfp_flags={gfp_str(gfp)} node={node} accounted={_bool(accounted)}",
    "kmem_cache_free": lambda ptr, name: f"call_site={CALL_SITE} ptr={ptr:016x} name={name}",
    "mm_page_free": lambda pfn, order: f"page={_VM + pfn * 64:016x} pfn={pfn:#x} order={order}",
    "mm_page_free_batched": lambda pfn: f"page={_VM + pfn * 64:016x} pfn={pfn:#x} order=0",
    "mm_page_alloc": lambda pfn, order, mt, gfp:
        (f"page={page_ptr(pfn)} pfn={pfn:#x}" if pfn >= 0 else "page=(null) pfn=0x0")
        + f" order={order} migratetype={mt} gfp_flags={gfp_str(gfp)}",
    "mm_page_alloc_zone_locked": lambda pfn, order, mt, refill:
        f"page={_VM + pfn * 64:016x} pfn={pfn:#x} order={order} migratetype={mt} percpu_refill={int(refill)}",
    "mm_page_pcpu_drain": lambda pfn, order, mt:
        f"page={_VM + pfn * 64:016x} pfn={pfn:#x} order={order} migratetype={mt}",
    "mm_page_alloc_extfrag": lambda pfn, alloc_order, fallback_order, alloc_mt, fallback_mt, claimed:
        f"page={page_ptr(pfn)} pfn={pfn:#x} alloc_order={alloc_order} fallback_order={fallback_order} "
        f"pageblock_order={PAGEBLOCK_ORDER} alloc_migratetype={alloc_mt} fallback_migratetype={fallback_mt} "
        f"fragmenting={int(fallback_order < PAGEBLOCK_ORDER)} change_ownership={int(claimed)}",
    "mm_vmscan_direct_reclaim_begin": lambda order, gfp: f"order={order} gfp_flags={gfp_str(gfp)}",
    "mm_vmscan_direct_reclaim_end": lambda nr: f"nr_reclaimed={nr}",
    "mm_vmscan_kswapd_sleep": lambda nid: f"nid={nid}",
    "mm_vmscan_kswapd_wake": lambda nid, order: f"nid={nid} order={order}",
    "mm_vmscan_wakeup_kswapd": lambda nid, order, gfp: f"nid={nid} order={order} gfp_flags={gfp_str(gfp)}",
    # include/trace/events/oom.h
    "reclaim_retry_zone": lambda node, zid, order, reclaimable, available, min_wmark, loops, ok:
        f"node={node} zone={ZONE_TYPE[zid]:<8} order={order} reclaimable={reclaimable} available={available} "
        f"min_wmark={min_wmark} no_progress_loops={loops} wmark_check={int(ok)}",
    "mark_victim": lambda pid, comm, total_vm, anon, file, shmem, uid, pgtables, adj:
        f"pid={pid} comm={comm} total-vm={total_vm}kB anon-rss={anon}kB file-rss:{file}kB shmem-rss:{shmem}kB "
        f"uid={uid} pgtables={pgtables}kB oom_score_adj={adj}",
}


def _nevents(rec) -> int:
    """Events in a ring record: 1 for an event, the pfns for a run."""
    return 1 if len(rec) == 6 else len(rec[3])


def _entry(rec, i: int = 0):
    """Event i of a record as the per-event tuple (seq, ts, event, args, task, bytes)."""
    if len(rec) == 6:
        return rec
    seq, ts, event, pfns, task, size, rest, step = rec
    return (seq + i, ts + i * step, event, (pfns[i], *rest), task, size)


# events whose TP_printk prints the stored arguments as they are: their % format (read_pipe
# formats a stretch of them with one context by one template)
_PLAIN = {
    "kfree": f"call_site={CALL_SITE} ptr=%016x\n",
    "kmem_cache_free": f"call_site={CALL_SITE} ptr=%016x name=%s\n",
    "mm_vmscan_direct_reclaim_end": "nr_reclaimed=%d\n",
    "mm_vmscan_kswapd_sleep": "nid=%d\n",
    "mm_vmscan_kswapd_wake": "nid=%d order=%d\n",
}
assert "%" not in CALL_SITE
# those whose line is "call_site=CALL_SITE ptr=%016x" and the rest of their arguments: how the rest prints
_PTR_TAIL = {e: f[len(f"call_site={CALL_SITE} ptr=%016x"):] for e, f in _PLAIN.items()
             if f.startswith(f"call_site={CALL_SITE} ptr=%016x")}


class CpuBuffer:
    """One cpu's ring_buffer_per_cpu: ``pages`` (oldest first; the last one is being
    written), each a list of records (an event, or a run of per-page events: ``_entry``);
    ``start``/``off`` the first unread event of the oldest page (record index, event within
    it).  The writer's counters (entries written, bytes written) and the reader's (read,
    bytes gone, overrun, taken under Trace.lock) are kept apart, so each has one writer."""
    __slots__ = ("pages", "start", "off", "tail_bytes", "nr_pages", "size", "last_ts", "written", "bytes_in",
                 "read", "overrun", "bytes_out", "last_overrun")

    def __init__(self, size: int):
        self.pages: deque = deque([[]])
        self.start = self.off = 0
        self.tail_bytes = 0
        self.resize(size)
        self.last_ts = None
        self.written = self.bytes_in = 0
        self.read = self.overrun = self.bytes_out = self.last_overrun = 0

    def resize(self, size: int):
        """ring_buffer_resize(): DIV_ROUND_UP(size, BUF_PAGE_SIZE) pages, at least 2."""
        self.nr_pages = max(2, -(-size // BUF_PAGE_SIZE))
        self.size = self.nr_pages * BUF_PAGE_SIZE           # what buffer_size_kb reads back

    def entries(self) -> int:
        """ring_buffer_entries_cpu(): in the ring, not yet consumed."""
        return self.written - self.overrun - self.read

    def _first(self):
        """(record, event index) of the first unread event, or None."""
        for i, page in enumerate(self.pages):
            if i == 0:
                if self.start < len(page):
                    return page[self.start], self.off
            elif page:
                return page[0], 0
        return None

    def oldest(self):
        """The first unread entry (the per-event tuple), or None."""
        got = self._first()
        return None if got is None else _entry(*got)

    def oldest_seq(self):
        """The seq of the first unread event, or None (what _first() finds, without its pair)."""
        pages = self.pages
        page = pages[0]
        if self.start < len(page):
            return page[self.start][0] + self.off
        for page in islice(pages, 1, None):
            if page:
                return page[0][0]
        return None

    def records(self):
        """The unread records, oldest first, each as (record, first unread event index)."""
        out = []
        for i, page in enumerate(self.pages):
            if i == 0:
                out.extend((r, self.off if j == self.start else 0) for j, r in enumerate(page) if j >= self.start)
            else:
                out.extend((r, 0) for r in page)
        return out

    def unread(self):
        """The unread entries, oldest first (a snapshot, one tuple per event)."""
        return [_entry(r, i) for r, o in self.records() for i in range(o, _nevents(r))]


_VMX = "%016x pfn=%#x"
# below pfn 2^34 (64 TiB) the pointer is "ffffea" and 10 hex digits of pfn * 64 (vmemmap's low 40
# bits are 0): formatting a small int is cheaper than the 64-bit one
_SMALL_PFN = 1 << 34
_VMX_SMALL = f"{VMEMMAP_BASE >> 40:x}%010x pfn=%#x"
assert VMEMMAP_BASE & ((1 << 40) - 1) == 0 and len(f"{VMEMMAP_BASE >> 40:x}") == 6


def _page_tail(event: str, pfn: int, rest: tuple) -> str:
    """What a per-page event prints after its ``page=%p pfn=%#lx`` (the same for every page of a run)."""
    body = FORMATS[event](pfn, *rest)
    return body[body.index(" ", body.index(" pfn=") + 1):]


_PAGE_EVENTS = frozenset(("mm_page_free", "mm_page_free_batched", "mm_page_alloc", "mm_page_alloc_zone_locked",
                          "mm_page_pcpu_drain"))       # those a run records: "page=%p pfn=%#lx ..." first
# a block of 256 pfns' ``%010x pfn=%#x`` pieces (pfn = hi * 256 + lo, 0 < hi < 2^26), by hi & 3, with
# \1 for the pointer's first six digits, \2 for the pfn's digits before the last two, \0 after each
_MID_BLOCK = [b"".join(b"\1%04x pfn=0x\2%02x\0" % ((q << 14) | (lo << 6), lo) for lo in range(256)) for q in range(4)]
_MID_BLOCKS = 256                      # blocks of 256 pfns whose pieces Trace keeps (~20 kB each)
_D3 = [b"%03d" % i for i in range(1000)]
_bytes_add = bytes.__add__


def _one_line_chunks(lines: list) -> list:
    """_run_chunks' chunks of lines of any length: one a line."""
    return [(x, 1, len(x)) for x in map(str.encode, lines)]


def _stretches(pfns: tuple):
    """[(index, range)] of the stretches of consecutive pfns (step 1 or -1) a tuple is made of."""
    out, i, n = [], 0, len(pfns)
    while i < n:
        p = pfns[i]
        d = pfns[i + 1] - p if i + 1 < n else 1
        if d not in (1, -1):
            d = 1
        j = i + 1
        while j < n and pfns[j] == p + d * (j - i):
            j += 1
        out.append((i, range(p, p + d * (j - i), d)))
        i = j
    return out


class Trace:
    """The tracing instance of one Kernel (``k.trace``)."""

    def __init__(self, kernel=None):
        self.k = kernel
        self.tracing_on = True                        # tracing_on reads 1 at boot; no event is enabled
        self.enabled = dict.fromkeys(EVENTS, False)
        self.active = False                           # the hooks' one test
        self.expanded = False                         # ring_buffer_expanded: the first enable sizes the rings
        self.buffer_size = TRACE_BUF_SIZE_DEFAULT     # trace_buf_size, per cpu, once expanded
        self.sizes: dict[int, int] = {}               # per_cpu/cpuN/buffer_size_kb set apart from the rest
        self.bufs: dict[int, CpuBuffer] = {}          # cpu -> its ring, made at its first event
        self.seq = 0                                  # entries ever recorded (orders equal timestamps)
        self.cpu = 0                                  # smp_processor_id() of the operation running
        self.current = INIT                           # (comm, pid) of the task it runs for
        self.lock = nullcontext()                     # the shell's lock around pages and reads
        self.on_page = None                           # the shell's wake-up, called as a page is started
        self._templates: dict = {}                    # (context, event, rest) -> a run's % template
        self._mid: dict = {}                          # pfn >> 8 -> its block's pieces (_mids)
        self._drained_at = -1                         # self.seq when a read_pipe() last found all read
        self._pend = None                             # pending()'s arguments not yet recorded,
        self._pend_key = None                         # and their (event, cpu, time, task, rest)

    # --- control, as the tracefs files set it --------------------------------------------
    def _update(self):
        self.active = self.tracing_on and any(self.enabled.values())

    def set_tracing_on(self, on: bool):
        self.tracing_on = bool(on)
        self._update()

    def enable(self, events, on: bool):
        """events/<subsystem>/<event>/enable (one name), events/<subsystem>/enable (its
        events) or events/enable (all: EVENTS).  Enabling expands the rings (tracing_update_buffers)."""
        events = (events,) if isinstance(events, str) else events
        unknown = [e for e in events if e not in self.enabled]
        if unknown:
            raise MMError(errno.ENOENT, f"no trace event {unknown[0]!r}")
        for name in events:
            self.enabled[name] = bool(on)
        if on:
            self._expand()
        self._update()

    def _expand(self):
        if not self.expanded:
            self.expanded = True
            for cpu, b in self.bufs.items():
                b.resize(self.cpu_size(cpu))

    def cpu_size(self, cpu: int) -> int:
        """The bytes cpu's ring is asked to hold: 1 until expanded (2 pages), else buffer_size_kb's."""
        return self.sizes.get(cpu, self.buffer_size) if self.expanded else 1

    def buffer_size_kb(self, cpu: int | None = None) -> str:
        """buffer_size_kb (cpu None: tracing_entries_read's all-cpus form) as the kernel reads it."""
        ncpu = self.k.nr_cpu_ids if self.k is not None else 1
        sizes = {CpuBuffer(self.cpu_size(c)).size >> 10 for c in (range(ncpu) if cpu is None else (cpu,))}
        if len(sizes) > 1:
            return "X\n"
        size = sizes.pop()
        if cpu is None and not self.expanded:
            return f"{size} (expanded: {self.buffer_size >> 10})\n"
        return f"{size}\n"

    def resize(self, kb: int, cpu: int | None = None):
        """Writing buffer_size_kb (all cpus, or per_cpu/cpuN's): the rings keep their newest
        pages that fit (ring_buffer_resize removes pages from the writer's far side)."""
        if kb <= 0:
            raise MMError(errno.EINVAL, "buffer_size_kb: must be at least 1")
        self.expanded = True
        if cpu is None:
            self.buffer_size = kb << 10
            self.sizes.clear()
        else:
            self.sizes[cpu] = kb << 10
        with self.lock:
            for c, b in self.bufs.items():
                b.resize(self.cpu_size(c))
                while len(b.pages) > b.nr_pages:
                    self._drop_oldest(b)

    def clear(self):
        """Opening ``trace`` with O_TRUNC (``echo > trace``): tracing_reset_online_cpus()."""
        with self.lock:
            for c in list(self.bufs):
                self.bufs[c] = CpuBuffer(self.cpu_size(c))

    # --- recording (the hooks) -------------------------------------------------------------
    def emit(self, event: str, cpu: int, *args):
        if not self.enabled[event]:
            return
        if self._pend is not None:                    # the deferred events came first
            self.flush()
        b = self.bufs.get(cpu)
        if b is None:
            b = self.bufs[cpu] = CpuBuffer(self.cpu_size(cpu))
        ts = self.k.now_ns
        size = EVENT_BYTES[event]
        if event in STRING_ARG:                       # the __string's bytes and NUL, 4-byte aligned
            size += (len(args[STRING_ARG[event]]) + 4) & ~3
        if b.tail_bytes and ts - b.last_ts >= TS_DELTA_LIMIT:  # (a page with bytes has a last event)
            size += 8                                 # RINGBUF_TYPE_TIME_EXTEND
        b.last_ts = ts
        self._record(b, ts, event, args, size)

    def _record(self, b, ts: int, event: str, args: tuple, size: int) -> None:
        """One event of size bytes at the ring's tail (rb_reserve_next_event), a page started
        when it does not fit."""
        used = b.tail_bytes
        if used + size > BUF_PAGE_SIZE:
            self._new_page(b)
            used = 0
        b.tail_bytes = used + size
        self.seq = seq = self.seq + 1
        b.written += 1
        b.bytes_in += size
        b.pages[-1].append((seq, ts, event, args, self.current, size))

    def emit_pfns(self, event: str, cpu: int, pfns, *rest, step: int = 0):
        """emit(event, cpu, pfn, *rest) for each pfn, in order: a run's per-page events, the
        first at now and each next ``step`` ns later (a task faulting page after page, as
        mm/sched.py's TaskClock times them; step < 2^27 ns, so no time extend after the first).
        The first is recorded as emit() does it (it may take a time extend); the rest as one
        record per ring page they fill, with the ring's per-event arithmetic."""
        if not self.enabled[event]:
            return
        if type(pfns) is not range:
            pfns = tuple(pfns)
            if len(pfns) > 2:                         # consecutive pfns (a pcp list's run) keep as a range
                p0, d = pfns[0], 1 if pfns[1] > pfns[0] else -1
                if pfns[-1] - p0 == d * (len(pfns) - 1) and pfns == tuple(range(p0, pfns[-1] + d, d)):
                    pfns = range(p0, pfns[-1] + d, d)
        if self._pend is not None:
            self.flush()
        self._emit_run(event, cpu, self.k.now_ns, pfns, rest, step)

    def pending(self, event: str, cpu: int, *rest) -> list | None:
        """The list of first arguments of ``event`` (cpu, this task and time, ``rest`` after
        the argument) recorded at the next flush(), None when the event is off.  A caller
        freeing a stretch (the shrinker's kmem_cache_free of one cache) appends to it while it
        is still ``Trace._pend``: the next emit(), emit_pfns() or pending() of anything else
        flushes it first, so the order of events is theirs and the stretch one run record;
        until then readers do not see it."""
        if not self.enabled[event]:
            return None
        key = (event, cpu, self.k.now_ns, self.current, rest)
        if key != self._pend_key:
            if self._pend is not None:
                self.flush()
            self._pend_key, self._pend = key, []
        return self._pend

    def flush(self):
        """Record the events pending() holds back."""
        if self._pend is not None:
            args, (event, cpu, ts, task, rest) = self._pend, self._pend_key
            self._pend = self._pend_key = None
            current, self.current = self.current, task
            try:
                self._emit_run(event, cpu, ts, tuple(args), rest, 0)
            finally:
                self.current = current

    def _emit_run(self, event: str, cpu: int, ts: int, pfns, rest: tuple, step: int):
        """Record event for each of pfns (an argument each, then rest), the first at ts and
        each next step ns later, as one record per ring page they fill; a first event that
        takes a time extend (a bigger one) is recorded as emit() records it, on its own."""
        n = len(pfns)
        if not n:
            return
        b = self.bufs.get(cpu)
        if b is None:
            b = self.bufs[cpu] = CpuBuffer(self.cpu_size(cpu))
        size = EVENT_BYTES[event]
        if event in STRING_ARG:                       # the __string's bytes and NUL, 4-byte aligned
            size += (len(rest[STRING_ARG[event] - 1]) + 4) & ~3
        ts0 = ts
        i = 0
        extend = b.tail_bytes and ts - b.last_ts >= TS_DELTA_LIMIT
        if extend or n == 1:                          # the first with a time extend (RINGBUF_TYPE_TIME_EXTEND),
            self._record(b, ts, event, (pfns[0], *rest), size + 8 if extend else size)   # or the only one
            i = 1
        b.last_ts = ts
        task = self.current
        while i < n:
            room = (BUF_PAGE_SIZE - b.tail_bytes) // size
            if not room:
                self._new_page(b)
                continue
            j = min(n, i + room)
            m = j - i
            b.pages[-1].append((self.seq + 1, ts0 + i * step, event, pfns[i:j], task, size, rest, step))
            b.tail_bytes += m * size
            self.seq += m
            b.written += m
            b.bytes_in += m * size
            i = j
        b.last_ts = ts0 + (n - 1) * step

    def _new_page(self, b: CpuBuffer):
        """rb_move_tail(): the next page; a full ring overwrites its oldest (rb_handle_head_page)."""
        with self.lock:
            b.pages.append([])
            b.tail_bytes = 0
            while len(b.pages) > b.nr_pages:
                self._drop_oldest(b)
        if self.on_page is not None:
            self.on_page()

    @staticmethod
    def _drop_oldest(b: CpuBuffer):
        """The oldest page is overwritten: its unread entries are overrun (under the lock)."""
        page = b.pages.popleft()
        gone = nbytes = 0
        for j in range(b.start, len(page)):
            rec = page[j]
            m = _nevents(rec) - (b.off if j == b.start else 0)
            gone += m
            nbytes += m * rec[5]
        b.overrun += gone
        b.bytes_out += nbytes
        b.start = b.off = 0
        if not b.pages:
            b.pages.append([])
            b.tail_bytes = 0

    # --- reading -------------------------------------------------------------------------
    @staticmethod
    def context(task, cpu: int, ts: int) -> str:
        """trace_print_context(): TASK-PID, [CPU], the flags, TIMESTAMP."""
        comm, pid = task
        return f"{comm:>16}-{pid:<7d} [{cpu:03d}] ..... {_usecs(ts)}: "

    @staticmethod
    def line(entry, cpu: int = 0) -> str:
        """One entry as ftrace's default output prints it (trace_print_context + the event)."""
        _, ts, event, args, task, _ = entry
        return f"{Trace.context(task, cpu, ts)}{event}: {FORMATS[event](*args)}\n"

    def _run_lines(self, cpu: int, rec, a: int, b: int) -> list:
        """The lines of events a..b-1 of a run record, each byte for byte Trace.line()'s: one
        ``%`` template per run (context, event name and the shared arguments fixed), filled
        with each page's struct page pointer and pfn -- C-level map/zip, no per-line Python."""
        seq, ts, event, pfns, task, size, rest, step = rec
        sub = pfns[a:b]
        if not sub:
            return []
        if event not in _PAGE_EVENTS:                 # pending()'s runs: one time, the first argument varies
            if step or event not in _PLAIN:
                return [self.line(_entry(rec, i), cpu) for i in range(a, a + len(sub))]
            t = f"{self.context(task, cpu, ts)}{event}: ".replace("%", "%%") + _PLAIN[event]
            return [t % (x, *rest) for x in sub]
        small = (max(sub[0], sub[-1]) if type(sub) is range else max(sub)) < _SMALL_PFN
        base, vmx = (0, _VMX_SMALL) if small else (_VM, _VMX)
        if type(sub) is range:
            ptrs = range(base + sub.start * 64, base + sub.stop * 64, sub.step * 64)
        else:
            ptrs = map(_add, repeat(base), map(_mul, sub, repeat(64)))
        if step:
            t0 = ts + a * step
            if step % 1000 == 0:                      # whole microseconds: each second's lines a range of them
                out = []
                us0, dus = (t0 + 500) // 1000, step // 1000     # _usecs()'s rounding, per line
                i, n = 0, len(sub)
                while i < n:
                    secs, us = divmod(us0 + i * dus, 1_000_000)
                    j = min(n, i + (1_000_000 - us + dus - 1) // dus)
                    key = (task, cpu, -1 - secs, event, rest, small)
                    t = self._templates.get(key)
                    if t is None:
                        comm, pid = task
                        t = (f"{comm:>16}-{pid:<7d} [{cpu:03d}] ..... {secs:5d}.".replace("%", "%%") + "%06d: "
                             + f"{event}: page=".replace("%", "%%") + vmx
                             + _page_tail(event, sub[0], rest).replace("%", "%%") + "\n")
                        self._templates[key] = t
                    part = sub[i:j]
                    pp = (range(base + part.start * 64, base + part.stop * 64, part.step * 64) if type(part) is range
                          else map(_add, repeat(base), map(_mul, part, repeat(64))))
                    out.extend(map(t.__mod__, zip(range(us, us + (j - i) * dus, dus), pp, part, strict=True)))
                    i = j
                return out
            key = (task, cpu, None, event, rest, small)
            t = self._templates.get(key)
            if t is None:
                comm, pid = task
                t = (f"{comm:>16}-{pid:<7d} [{cpu:03d}] ..... ".replace("%", "%%") + "%5d.%06d: "
                     + f"{event}: page=".replace("%", "%%") + vmx + _page_tail(event, sub[0], rest).replace("%", "%%")
                     + "\n")
                self._templates[key] = t
            times = map(divmod, map(_floordiv, range(t0 + 500, t0 + 500 + len(sub) * step, step), repeat(1000)),
                        repeat(1_000_000))
            return list(map(t.__mod__, map(_tuple_add, times, zip(ptrs, sub, strict=True))))
        key = (task, cpu, ts, event, rest, small)
        t = self._templates.get(key)
        if t is None:
            if len(self._templates) > 4096:
                self._templates.clear()
            t = (f"{self.context(task, cpu, ts)}{event}: page=".replace("%", "%%") + vmx
                 + _page_tail(event, sub[0], rest).replace("%", "%%") + "\n")
            self._templates[key] = t
        return list(map(t.__mod__, zip(ptrs, sub, strict=True)))

    def _mids(self, hi: int) -> list:
        """The 256 ``%010x pfn=%#x`` pieces (bytes) (the low 40 bits of the struct page pointer, the
        pfn) of pfns hi*256 .. hi*256+255 (0 < hi < 2^26), made once and kept for the next runs over them (at
        most _MID_BLOCKS blocks: all dropped when full)."""
        blk = self._mid.get(hi)
        if blk is None:
            if len(self._mid) >= _MID_BLOCKS:         # (readers of trace and trace_pipe may share it:
                self._mid.clear()                     # one step, safe with another thread's get)
            # the pointer's top 24 bits are hi >> 2 (pfn < 2^34), its low 16 (hi & 3) << 14 | lo << 6
            blk = self._mid[hi] = _MID_BLOCK[hi & 3].replace(b"\1", b"%06x" % (hi >> 2)).replace(
                b"\2", b"%x" % hi).split(b"\0")[:-1]
        return blk

    def _run_chunks(self, cpu: int, rec, a: int, b: int) -> list:
        """The text of events a..b-1 of a run record, what ``"".join(_run_lines(...))`` is, encoded,
        as chunks (bytes, lines, bytes a line) of lines of one length each.
        Consecutive pfns of one block of 256 (their pointer and pfn only differ in the last
        digits) take their ``ptr pfn`` pieces from _mids(), glued by one join: with one
        timestamp the rest of the line is the join's separator; with a timestamp a whole
        microsecond further each line, its last three digits come from a table of them.  Other
        runs (a step of part microseconds, pfns below 256 or above 2^34, gaps) take
        _run_lines(), a chunk a line."""
        seq, ts, event, pfns, task, size, rest, step = rec
        sub = pfns[a:b]
        n = len(sub)
        if not n:
            return []
        if event not in _PAGE_EVENTS:
            tail = _PTR_TAIL.get(event)
            if step or tail is None:
                return _one_line_chunks(self._run_lines(cpu, rec, a, b))
            # "call_site=... ptr=%016x" and what follows it the same each line: a join of the pointers
            head = f"{self.context(task, cpu, ts)}{event}: call_site={CALL_SITE} ptr=".encode()
            tail = (tail % rest).encode()
            text = head + (tail + head).join(map(b"%016x".__mod__, sub)) + tail
            return [(text, n, len(text) // n)]
        if step % 1000:
            return _one_line_chunks(self._run_lines(cpu, rec, a, b))
        if type(sub) is range:
            parts = [(0, sub)] if sub.step in (1, -1) else None
        elif sub == tuple(range(sub[0], sub[0] + n)):
            parts = [(0, range(sub[0], sub[0] + n))]
        else:
            parts = _stretches(sub)
        if parts is None:
            return _one_line_chunks(self._run_lines(cpu, rec, a, b))
        out = []
        for k0, r in parts:
            m = len(r)
            lo_pfn, hi_pfn = (r[0], r[-1]) if r.step > 0 else (r[-1], r[0])
            if lo_pfn < 256 or hi_pfn >= _SMALL_PFN:
                out.extend(_one_line_chunks(self._run_lines(cpu, rec, a + k0, a + k0 + m)))
                continue
            key = (task, cpu, "chunk", event, rest, ts if not step else None)
            pieces = self._templates.get(key)
            if pieces is None:
                if len(self._templates) > 4096:
                    self._templates.clear()
                tail = (_page_tail(event, r[0], rest) + "\n").encode()
                if step:
                    comm, pid = task
                    head = f"{comm:>16}-{pid:<7d} [{cpu:03d}] ..... ".encode()
                    mid = f": {event}: page={_VM >> 40:x}".encode()
                    pieces = (head, [x + mid for x in _D3], tail)
                else:
                    head = f"{self.context(task, cpu, ts)}{event}: page={_VM >> 40:x}".encode()
                    pieces = (head, tail + head, tail)
                self._templates[key] = pieces
            if step:
                dus = step // 1000
                us = (ts + (a + k0) * step + 500) // 1000     # _usecs()'s rounding, per line
            d = r.step
            k = 0
            mid_blocks = self._mid
            while k < m:
                pfn = r[k]
                hi, lo = pfn >> 8, pfn & 255
                cnt = min(m - k, 256 - lo if d > 0 else lo + 1)
                blk = mid_blocks.get(hi) or self._mids(hi)
                mids = blk[lo:lo + cnt] if d > 0 else blk[lo - cnt + 1:lo + 1][::-1]
                if step:
                    secs, u = divmod(us + k * dus, 1_000_000)
                    uh, ul = divmod(u, 1000)
                    c2 = -(-(1000 - ul) // dus)             # lines until the millisecond turns
                    if c2 < cnt:
                        cnt = c2
                        mids = mids[:cnt]
                    head, d3, tail = pieces                 # d3: each microsecond's digits and what follows
                    x1 = b"%s%5d.%03d" % (head, secs, uh)
                    text = x1 + (tail + x1).join(map(_bytes_add, d3[ul:ul + cnt * dus:dus], mids)) + tail
                else:
                    head, sep, tail = pieces
                    text = head + sep.join(mids) + tail
                out.append((text, cnt, len(text) // cnt))
                k += cnt
        return out

    def entries(self) -> int:
        return sum(b.entries() for b in self.bufs.values())

    def total(self) -> int:
        """get_total_entries()'s entries-written: in the buffer plus overwritten."""
        return sum(b.entries() + b.overrun for b in self.bufs.values())

    @property
    def written(self) -> int:
        """Entries ever recorded."""
        return self.seq

    def unread(self) -> int:
        return self.entries()

    def _segments(self) -> list:
        """Every unread record as (first seq, cpu, record, first event index), oldest first.
        A run's events have consecutive seqs that no other cpu's event falls between (the core
        records one thing at a time), so ordering the records orders the events."""
        with self.lock:
            segs = [(r[0] + o, c, r, o) for c, b in self.bufs.items() for r, o in b.records()]
        segs.sort(key=lambda x: x[0])
        return segs

    def events(self):
        """Every unread event, oldest first, not consumed: (cpu, seq, ts, event, args, (comm, pid)).
        The iteration API for other renderings of the rings (e.g. binary trace_pipe_raw pages)."""
        for _, c, r, o in self._segments():
            for i in range(o, _nevents(r)):
                seq, ts, event, args, task, _ = _entry(r, i)
                yield c, seq, ts, event, args, task

    def snapshot(self) -> list:
        """Every unread entry as (cpu, entry), merged oldest first: what ``trace`` lists."""
        return [(c, _entry(r, i)) for _, c, r, o in self._segments() for i in range(o, _nevents(r))]

    def listing(self) -> tuple[int, str]:
        """(entries, lines) of ``trace`` (without its header), from one look at the rings."""
        out, n = [], 0
        for _, c, r, o in self._segments():
            if len(r) == 6:
                out.append(self.line(r, c))
                n += 1
            else:
                out.append(b"".join([x[0] for x in self._run_chunks(c, r, o, len(r[3]))]).decode())
                n += len(r[3]) - o
        return n, "".join(out)

    def render(self) -> str:
        """The lines of ``trace`` (without its header)."""
        return self.listing()[1]

    def consume(self) -> list:
        """trace_pipe read to the end: [(cpu, entry, lost)] oldest first, gone afterwards."""
        out = []
        with self.lock:
            while (got := self._peek_one()) is not None:
                self._advance(got[0])
                out.append(got)
        return out

    def _normalise(self, b: CpuBuffer):
        """Drop emptied oldest pages before the first unread event (under the lock)."""
        while b.start >= len(b.pages[0]) and len(b.pages) > 1:
            b.pages.popleft()
            b.start = b.off = 0

    def read_pipe(self, size: int) -> bytes:
        """One read(2) of trace_pipe (tracing_read_pipe()): the oldest unread entries as lines,
        as many whole lines as fit in size bytes (always at least one), consumed; a cpu whose
        unread entries were overwritten since its last read starts with ``CPU:N [LOST M
        EVENTS]`` (print_trace_line).  b"" when nothing is unread.  Takes Trace.lock only, so
        a reader may call it while a command records."""
        seq0 = self.seq
        if seq0 == self._drained_at:                 # nothing recorded since a read took all
            return b""
        out, used = [], 0
        context = self.context
        with self.lock:
            bufs = self.bufs
            while True:
                seqs = [(s, c) for c, b in bufs.items() if (s := b.oldest_seq()) is not None]
                if not seqs:
                    self._drained_at = seq0
                    break
                if len(seqs) == 1:
                    c, bound = seqs[0][1], None
                else:                                 # the other cpus' oldest: this cpu's entries
                    seqs.sort()                       # before it come next, in a row
                    c, bound = seqs[0][1], seqs[1][0]
                b = bufs[c]
                if b.start >= len(b.pages[0]):
                    self._normalise(b)
                page, i, off = b.pages[0], b.start, b.off
                lost = b.overrun - b.last_overrun      # told once it is printed (with its first line):
                head = f"CPU:{c} [LOST {lost} EVENTS]\n" if lost else ""   # one that does not fit waits
                full = False
                n = nbytes = 0
                task = ts = prefix = None
                end = len(page)
                while i < end:
                    e = page[i]
                    seq = e[0] + off
                    if bound is not None and seq > bound:
                        break
                    if len(e) == 6 and not head and (fmt := _PLAIN.get(e[2])) is not None:
                        # a stretch of events printed as their arguments are, one context: one template
                        ev, ets, etask = e[2], e[1], e[4]
                        j, lim = i + 1, min(end, i + 1 + max(0, size - used) // 64)
                        while j < lim:
                            r = page[j]
                            if len(r) != 6 or r[2] != ev or r[1] != ets or r[4] is not etask or (
                                    bound is not None and r[0] > bound):
                                break
                            j += 1
                        key = (etask, c, ets, ev)
                        t = self._templates.get(key)
                        if t is None:
                            t = f"{context(etask, c, ets)}{ev}: ".replace("%", "%%") + fmt
                            self._templates[key] = t
                        stretch = page[i:j]
                        lines = list(map(t.__mod__, [r[3] for r in stretch]))
                        text = "".join(lines)
                        if text.isascii():
                            acc = list(accumulate(map(len, lines)))
                        else:
                            acc = list(accumulate(len(x.encode()) for x in lines))
                        took = bisect_right(acc, size - used)
                        if not took and not out:
                            took = 1
                        if took:
                            out.append((text if took == len(lines) else "".join(lines[:took])).encode())
                            used += acc[took - 1]
                            nbytes += sum(r[5] for r in stretch[:took]) if took < len(lines) else sum(
                                r[5] for r in stretch)
                            n += took
                            i += took
                        if took < len(lines):
                            full = True
                            break
                        continue
                    if len(e) == 6:
                        if e[4] is not task or e[1] != ts:    # trace_print_context, once per run of lines
                            task, ts = e[4], e[1]
                            prefix = context(task, c, ts)
                        text = f"{head}{prefix}{e[2]}: {FORMATS[e[2]](*e[3])}\n".encode()
                        m = len(text)
                        if out and used + m > size:
                            full = True
                            break
                        if head:
                            head = ""
                            b.last_overrun += lost
                        out.append(text)
                        used += m
                        nbytes += e[5]
                        n += 1
                        i += 1
                        continue
                    k = len(e[3])
                    stop = k if bound is None else min(k, bound - e[0] + 1)
                    if head:                          # the LOST line goes with the first line
                        lines = self._run_lines(c, e, off, off + 1)
                        text = (head + lines[0]).encode()
                        m = len(text)
                        if out and used + m > size:
                            full = True
                            break
                        head = ""
                        b.last_overrun += lost
                        out.append(text)
                        used += m
                        nbytes += e[5]
                        n += 1
                        off += 1
                        if off == k:
                            i, off = i + 1, 0
                        continue
                    # as many whole lines as fit (a line is longer than 64 bytes), chunk by chunk
                    want = min(stop, off + max(0, size - used) // 64 + 1) - off
                    took = 0
                    for text, cnt, lb in self._run_chunks(c, e, off, off + want):
                        fit = max(0, size - used) // lb
                        if fit >= cnt:
                            out.append(text)
                            used += cnt * lb
                            took += cnt
                            continue
                        if not fit and not out:
                            fit = 1
                        if fit:
                            out.append(text[:fit * lb])
                            used += fit * lb
                            took += fit
                        break
                    nbytes += took * e[5]
                    n += took
                    off += took
                    if off == k:
                        i, off = i + 1, 0
                    elif took < want:
                        full = True
                        break
                    elif off == stop:                 # another cpu's event comes first
                        break
                b.bytes_out += nbytes
                b.read += n
                b.start, b.off = i, off
                if i >= len(page) and len(b.pages) > 1:
                    b.pages.popleft()
                    b.start = b.off = 0
                if full:
                    break
        return b"".join(out)

    def _peek_one(self):
        """(cpu, entry, lost) of the oldest unread entry over all cpus (trace_find_next_entry), or None."""
        best = None
        for c, b in self.bufs.items():
            s = b.oldest_seq()
            if s is not None and (best is None or s < best[0]):
                best = (s, c)
        if best is None:
            return None
        b = self.bufs[best[1]]
        return best[1], b.oldest(), b.overrun - b.last_overrun

    def _advance(self, cpu: int):
        """ring_buffer_consume() of cpu's oldest unread event (under the lock)."""
        b = self.bufs[cpu]
        b.last_overrun = b.overrun
        self._normalise(b)
        page = b.pages[0]
        rec = page[b.start]
        b.bytes_out += rec[5]
        b.read += 1
        b.off += 1
        if b.off >= _nevents(rec):
            b.start += 1
            b.off = 0
        if b.start >= len(page) and len(b.pages) > 1:
            b.pages.popleft()
            b.start = b.off = 0

    def stats(self, cpu: int) -> str:
        """per_cpu/cpuN/stats as tracing_stats_read() prints it."""
        b = self.bufs.get(cpu) or CpuBuffer(self.cpu_size(cpu))
        with self.lock:
            e = b.oldest()
            text = (f"entries: {b.entries()}\noverrun: {b.overrun}\ncommit overrun: 0\n"
                    f"bytes: {b.bytes_in - b.bytes_out}\n")
        now = self.k.now_ns if self.k is not None else 0
        oldest = e[1] if e is not None else 0
        return (text + f"oldest event ts: {_usecs(oldest)}\nnow ts: {_usecs(now)}\n"
                f"dropped events: 0\nread events: {b.read}\n")


def _usecs(ns: int) -> str:
    """%5llu.%06lu of ns2usecs(), which rounds to the nearest microsecond."""
    s, us = divmod((ns + 500) // 1000, 1_000_000)
    return f"{s:5d}.{us:06d}"


# ---- the tracefs files a write changes (journaled as ``tracefs FILE VALUE``) -------------------
def _kstrtoul(text: str, what: str) -> int:
    """kstrtoul() of a decimal knob: digits with an optional trailing newline, else EINVAL."""
    t = text[:-1] if text.endswith("\n") else text
    if not t.isascii() or not t.isdigit():
        raise MMError(errno.EINVAL, f"{what}: write a number, not {text!r}")
    return int(t)


def _bit(text: str, what: str) -> int:
    v = _kstrtoul(text.strip(" \t\n"), what)
    if v > 1:
        raise MMError(errno.EINVAL, f"{what}: write 0 or 1, not {text!r}")
    return v


def _events_of(path: str):
    """The events an events/.../enable file switches, or None for no such file."""
    parts = path.split("/")
    if parts == ["events", "enable"]:
        return EVENTS
    if len(parts) == 3 and parts[0] == "events" and parts[2] == "enable" and parts[1] in SUBSYSTEMS:
        return SUBSYSTEMS[parts[1]]
    if len(parts) == 4 and parts[0] == "events" and parts[3] == "enable" and parts[2] in SUBSYSTEMS.get(parts[1], ()):
        return (parts[2],)
    return None


def _cpu_of(path: str, nr_cpus: int):
    """per_cpu/cpuN/buffer_size_kb -> N (None when path is not one)."""
    parts = path.split("/")
    if len(parts) == 3 and parts[0] == "per_cpu" and parts[1].startswith("cpu") and parts[2] == "buffer_size_kb":
        n = parts[1][3:]
        if n.isascii() and n.isdigit() and str(int(n)) == n and int(n) < nr_cpus:
            return int(n)
    return None


def parse_write(path: str, data: bytes | str, nr_cpus: int) -> str:
    """What a write of data to tracefs file path (relative to the tracing directory) sets,
    as the VALUE of its ``tracefs`` command; MMError (EINVAL, ENOENT) for a bad one, nothing changed."""
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    if path == "trace":                           # echo > trace: the rings are reset
        return "0"
    if path == "tracing_on" or _events_of(path) is not None:
        return str(_bit(text, path))
    if path == "buffer_size_kb" or _cpu_of(path, nr_cpus) is not None:
        kb = _kstrtoul(text.strip(" \t\n"), path)
        if not 0 < kb <= 1 << 22:                     # at least 1; at most 4 GiB per cpu
            raise MMError(errno.EINVAL, f"{path}: {kb} kB out of range 1..{1 << 22}")
        return str(kb)
    raise MMError(errno.EACCES, f"tracefs: {path} is not writable")


def write_file(tr: Trace, path: str, value: str, nr_cpus: int) -> None:
    """Apply a tracefs write parse_write() accepted (the ``tracefs`` command)."""
    value = parse_write(path, value, nr_cpus)
    if path == "trace":
        tr.clear()
    elif path == "tracing_on":
        tr.set_tracing_on(value == "1")
    elif path == "buffer_size_kb":
        tr.resize(int(value))
    elif (events := _events_of(path)) is not None:
        tr.enable(events, value == "1")
    else:
        tr.resize(int(value), _cpu_of(path, nr_cpus))
