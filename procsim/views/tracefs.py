"""sys/kernel/tracing/: the kmem, vmscan and oom trace events as tracefs shows them (kernel/trace/trace.c).

Views only read (procsim/mm/trace.py keeps the rings):

* ``trace``: ftrace's header and every entry in the rings, merged oldest first; ``trace_pipe``
  rendered in process (``procsim render``) shows the unread lines without consuming them.
  Read through the mount, trace_pipe is the kernel's: the shell calls the core's
  ``Trace.read_pipe`` (the View's ``pipe``), which takes the oldest unread whole lines that
  fit the read and consumes them; with none the read blocks until a command records some
  (procsim.fs); O_NONBLOCK readers get EAGAIN.  A reader that fell behind a full ring gets
  ``CPU:N [LOST M EVENTS]`` first, as the kernel prints it.
* ``buffer_size_kb`` (``7 (expanded: 1408)`` until an event is first enabled, as at boot),
  ``buffer_total_size_kb``, ``per_cpu/cpuN/buffer_size_kb`` and ``per_cpu/cpuN/stats``
  (tracing_stats_read: entries, overrun, commit overrun, bytes, oldest event ts, now ts,
  dropped events, read events), ``available_events``.
* Writes -- ``tracing_on``, ``events/enable``, ``events/<subsystem>/enable`` and
  ``events/<subsystem>/<event>/enable`` (``0``/``1``; a subsystem's enable reads ``X`` when its
  events are mixed), the buffer sizes, ``echo > trace`` -- are checked here and applied by the
  control command ``tracefs FILE VALUE``, so they are journaled and replayed like every change.

* What ``trace-cmd record``/``report`` read besides: ``events/<subsystem>/<event>/format`` (and
  ``id``, ``filter``), ``events/header_page``, ``events/header_event``, ``events/ftrace/print``,
  ``saved_cmdlines``, ``saved_tgids``, ``trace_clock``, ``current_tracer``, and
  ``per_cpu/cpuN/trace_pipe_raw``: ring-buffer pages in the kernel's binary format, built from
  the core's entries by one function (``raw_pages``) and consumed like trace_pipe's
  (``read_raw``).  ``sysctl/kernel/ftrace_enabled`` and ``kallsyms`` stand for the /proc files
  record also needs.

``procsim exec`` binds the directory over /sys/kernel/tracing, so
``cat /sys/kernel/tracing/trace_pipe`` and trace-cmd work unchanged.
"""
from __future__ import annotations

import struct

import errno

from ..mm.errors import MMError
from ..mm.gfp import NAMES as GFP_NAMES
from ..mm.page_types import PAGEBLOCK_ORDER
from ..mm.printk import _GFP_NAMES as GFP_FLAG_NAMES
from ..mm.trace import BUF_PAGE_SIZE, CALL_SITE, EVENTS, INIT, SAVED_CMDLINES, SUBSYSTEMS, TS_DELTA_LIMIT, ZONE_TYPE, Trace, field_offsets, parse_write
from . import View

DIR = "sys/kernel/tracing"
HEADER = """\
# tracer: nop
#
# entries-in-buffer/entries-written: {entries}/{written}   #P:{cpus}
#
#                                _-----=> irqs-off/BH-disabled
#                               / _----=> need-resched
#                              | / _---=> hardirq/softirq
#                              || / _--=> preempt-depth
#                              ||| / _-=> migrate-disable
#                              |||| /     delay
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
"""


def render_trace(k) -> bytes:
    tr: Trace = k.trace
    entries, lines = tr.listing()
    head = HEADER.format(entries=entries, written=tr.total(), cpus=k.nr_cpu_ids)
    return (head + lines).encode()


def render_pipe(k) -> bytes:
    """The unread lines, not consumed (reading the pipe is Trace.read_pipe, called by the shell)."""
    return k.trace.render().encode()


def _state(values) -> str:
    values = set(values)
    return "X\n" if len(values) > 1 else f"{int(values.pop())}\n"


def _writer(path: str):
    """A knob's write: checked now (MMError, nothing changed), done by its control line."""
    def write(k, data: bytes) -> str:
        return f"tracefs {path} {parse_write(path, data, k.nr_cpu_ids)}"
    return write


def _event_view(sub, event) -> View:
    return View(0o644, lambda k: f"{int(k.trace.enabled[event])}\n".encode(), volatile=True,
                write=_writer(f"events/{sub}/{event}/enable"))


def _group_view(path, events) -> View:
    """A subsystem's (or all events') enable: 0, 1, or X when mixed."""
    return View(0o644, lambda k: _state(k.trace.enabled[e] for e in events).encode(), volatile=True,
                write=_writer(path))


def _cmdlines(k) -> list[tuple[int, str]]:
    """saved_cmdlines' (pid, comm): the tasks that can have recorded events (tracing_record_cmdline
    saves each one's comm; pid 0, the idle task, is never saved), lowest pid first, at most
    SAVED_CMDLINES."""
    seen = {pid: comm for comm, pid in (INIT, *((t.comm, t.pid) for t in k.tasks))}
    with k.trace.lock:
        for b in k.trace.bufs.values():
            for e in b.unread():
                seen.setdefault(e[4][1], e[4][0])
    seen.pop(0, None)
    return sorted(seen.items())[:SAVED_CMDLINES]


def _ignored(what: str):
    """A knob trace-cmd writes that means nothing here (a filter "0", the local clock): EINVAL
    for anything else, so nothing is silently taken."""
    def write(k, data: bytes):
        text = data.decode(errors="replace").strip()
        if text not in _IGNORED[what]:
            raise MMError(errno.EINVAL, f"{what}: only {' or '.join(map(repr, _IGNORED[what]))} is taken here")
        return None
    return write


_IGNORED = {"filter": ("0", ""), "trace_clock": ("local",), "current_tracer": ("nop",), "ftrace_enabled": ("1",)}


def _total_kb(k) -> bytes:
    """buffer_total_size_kb: tracing_total_entries_read()."""
    tr = k.trace
    size = sum(int(tr.buffer_size_kb(c)) for c in range(k.nr_cpu_ids))
    if tr.expanded:
        return f"{size}\n".encode()
    return f"{size} (expanded: {(tr.buffer_size >> 10) * k.nr_cpu_ids})\n".encode()



# ---- what trace-cmd reads: the events' format files and the rings in binary ------------------------
# The kernel numbers its trace events at boot (trace_event_raw_init -> register_trace_event), in the
# order the tracepoints register, after ftrace's own types; here the simulated events get ids from
# FIRST_EVENT_ID in available_events' order, fixed for every machine.
FIRST_EVENT_ID = 400
EVENT_ID = {e: FIRST_EVENT_ID + i for i, e in enumerate(EVENTS)}
PAGE_SIZE = 4096
RB_DATA_OFFSET = 16                    # struct buffer_data_page: u64 time_stamp, local_t commit, data[]
RINGBUF_TYPE_DATA_TYPE_LEN_MAX, RINGBUF_TYPE_PADDING = 28, 29
RINGBUF_TYPE_TIME_EXTEND, RINGBUF_TYPE_TIME_STAMP = 30, 31
RB_MAX_SMALL_DATA = 4 * RINGBUF_TYPE_DATA_TYPE_LEN_MAX
RB_MISSED_EVENTS, RB_MISSED_STORED = 1 << 31, 1 << 30
TS_MASK = TS_DELTA_LIMIT - 1
# trace_clock: the simulated clock is the kernel's local one (k.now_ns)
TRACE_CLOCKS = "[local] global counter uptime perf mono mono_raw boot tai x86-tsc\n"
COMMON_FIELDS = (("common_type", "unsigned short", 0, 2, 0), ("common_flags", "unsigned char", 2, 1, 0),
                 ("common_preempt_count", "unsigned char", 3, 1, 0), ("common_pid", "int", 4, 4, 1))

# show_gfp_flags(): __def_gfpflag_names of include/trace/events/mmflags.h (6.18), the table %pGg
# uses too (printk.GFP_FLAG_NAMES).  The kernel's format file spells each value as the expression
# the preprocessor left (the ___GFP_*_BIT enums replaced by their numbers at boot,
# TRACE_DEFINE_ENUM); here each is written as the number that expression evaluates to.
def _show_gfp(field: str) -> str:
    flags = ", ".join(f'{{( unsigned long)({GFP_NAMES[n]:#x}), "{n}"}}' for n in GFP_FLAG_NAMES)
    return f'(REC->{field}) ? __print_flags(REC->{field}, "|", {flags}) : "none"'


# pfn_to_page() on x86-64 (SPARSEMEM_VMEMMAP): vmemmap + pfn, vmemmap = (struct page *)vmemmap_base
_PAGE = "(((struct page *)vmemmap_base) + (REC->pfn))"
_PAGE_OR_NULL = f"REC->pfn != -1UL ? {_PAGE} : ((void *)0), REC->pfn != -1UL ? REC->pfn : 0"
_CALL = "(void *)REC->call_site, REC->ptr"
# TP_printk of each event (include/trace/events/kmem.h and vmscan.h, 6.18) as the format file prints it
PRINT_FMT = {
    "kmalloc": '"call_site=%pS ptr=%p bytes_req=%zu bytes_alloc=%zu gfp_flags=%s node=%d accounted=%s", '
               f'{_CALL}, REC->bytes_req, REC->bytes_alloc, {_show_gfp("gfp_flags")}, REC->node, '
               f'(1 && (REC->gfp_flags & ( unsigned long)({GFP_NAMES["__GFP_ACCOUNT"]:#x}))) ? "true" : "false"',
    "kfree": f'"call_site=%pS ptr=%p", {_CALL}',
    "kmem_cache_alloc": '"call_site=%pS ptr=%p name=%s bytes_req=%zu bytes_alloc=%zu gfp_flags=%s node=%d '
                        f'accounted=%s", {_CALL}, __get_str(name), REC->bytes_req, REC->bytes_alloc, '
                        f'{_show_gfp("gfp_flags")}, REC->node, REC->accounted ? "true" : "false"',
    "kmem_cache_free": f'"call_site=%pS ptr=%p name=%s", {_CALL}, __get_str(name)',
    "mm_page_free": f'"page=%p pfn=0x%lx order=%d", {_PAGE}, REC->pfn, REC->order',
    "mm_page_free_batched": f'"page=%p pfn=0x%lx order=0", {_PAGE}, REC->pfn',
    "mm_page_alloc": f'"page=%p pfn=0x%lx order=%d migratetype=%d gfp_flags=%s", {_PAGE_OR_NULL}, '
                     f'REC->order, REC->migratetype, {_show_gfp("gfp_flags")}',
    "mm_page_alloc_zone_locked": f'"page=%p pfn=0x%lx order=%u migratetype=%d percpu_refill=%d", {_PAGE_OR_NULL}, '
                                 'REC->order, REC->migratetype, REC->percpu_refill',
    "mm_page_pcpu_drain": f'"page=%p pfn=0x%lx order=%d migratetype=%d", {_PAGE}, REC->pfn, REC->order, '
                          'REC->migratetype',
    "mm_page_alloc_extfrag": '"page=%p pfn=0x%lx alloc_order=%d fallback_order=%d pageblock_order=%d '
                             'alloc_migratetype=%d fallback_migratetype=%d fragmenting=%d change_ownership=%d", '
                             f'{_PAGE}, REC->pfn, REC->alloc_order, REC->fallback_order, {PAGEBLOCK_ORDER}, '
                             'REC->alloc_migratetype, REC->fallback_migratetype, '
                             f'REC->fallback_order < {PAGEBLOCK_ORDER}, REC->change_ownership',
    "mm_vmscan_direct_reclaim_begin": f'"order=%d gfp_flags=%s", REC->order, {_show_gfp("gfp_flags")}',
    "mm_vmscan_direct_reclaim_end": '"nr_reclaimed=%lu", REC->nr_reclaimed',
    "mm_vmscan_kswapd_sleep": '"nid=%d", REC->nid',
    "mm_vmscan_kswapd_wake": '"nid=%d order=%d", REC->nid, REC->order',
    "mm_vmscan_wakeup_kswapd": f'"nid=%d order=%d gfp_flags=%s", REC->nid, REC->order, {_show_gfp("gfp_flags")}',
    # include/trace/events/oom.h; ZONE_TYPE's enums replaced by their numbers (TRACE_DEFINE_ENUM)
    "reclaim_retry_zone": '"node=%d zone=%-8s order=%d reclaimable=%lu available=%lu min_wmark=%lu '
                          'no_progress_loops=%d wmark_check=%d", REC->node, __print_symbolic(REC->zone_type, '
                          + ", ".join(f'{{{i}, "{n}"}}' for i, n in enumerate(ZONE_TYPE)) + '), REC->order, '
                          'REC->reclaimable, REC->available, REC->min_wmark, REC->no_progress_loops, REC->wmark_check',
    "mark_victim": '"pid=%d comm=%s total-vm=%lukB anon-rss=%lukB file-rss:%lukB shmem-rss:%lukB uid=%u '
                   'pgtables=%lukB oom_score_adj=%hd", REC->pid, __get_str(comm), REC->total_vm, REC->anon_rss, '
                   'REC->file_rss, REC->shmem_rss, REC->uid, REC->pgtables, REC->oom_score_adj',
}
# The caller the kmem events name (%pS of call_site): the control file stands in for it
# (mm/trace.py's CALL_SITE), at _text of an x86-64 kernel without KASLR; ``kallsyms`` (bound over
# /proc/kallsyms by exec, which trace-cmd record stores) names it, so no host symbol is used.
CALL_SITE_ADDR = 0xffffffff81000000
KALLSYMS = f"{CALL_SITE_ADDR:016x} T {CALL_SITE.split('+')[0]}\n"
# Which stored argument of an entry (mm/trace.py FORMATS' order) fills each field of the record;
# call_site is CALL_SITE_ADDR, a field not listed is 0 (the zid of the kswapd events: the core
# does not keep it, and TP_printk never prints it).
FIELD_ARGS = {
    "kmalloc": {"ptr": 0, "bytes_req": 1, "bytes_alloc": 2, "gfp_flags": 3, "node": 4},
    "kfree": {"ptr": 0},
    "kmem_cache_alloc": {"ptr": 0, "name": 1, "bytes_req": 2, "bytes_alloc": 3, "gfp_flags": 4, "node": 5,
                         "accounted": 6},
    "kmem_cache_free": {"ptr": 0, "name": 1},
    "mm_page_free": {"pfn": 0, "order": 1},
    "mm_page_free_batched": {"pfn": 0},
    "mm_page_alloc": {"pfn": 0, "order": 1, "migratetype": 2, "gfp_flags": 3},
    "mm_page_alloc_zone_locked": {"pfn": 0, "order": 1, "migratetype": 2, "percpu_refill": 3},
    "mm_page_pcpu_drain": {"pfn": 0, "order": 1, "migratetype": 2},
    "mm_page_alloc_extfrag": {"pfn": 0, "alloc_order": 1, "fallback_order": 2, "alloc_migratetype": 3,
                              "fallback_migratetype": 4, "change_ownership": 5},
    "mm_vmscan_direct_reclaim_begin": {"order": 0, "gfp_flags": 1},
    "mm_vmscan_direct_reclaim_end": {"nr_reclaimed": 0},
    "mm_vmscan_kswapd_sleep": {"nid": 0},
    "mm_vmscan_kswapd_wake": {"nid": 0, "order": 1},
    "mm_vmscan_wakeup_kswapd": {"nid": 0, "order": 1, "gfp_flags": 2},
    "reclaim_retry_zone": {"node": 0, "zone_type": 1, "order": 2, "reclaimable": 3, "available": 4, "min_wmark": 5,
                           "no_progress_loops": 6, "wmark_check": 7},
    "mark_victim": {"pid": 0, "comm": 1, "total_vm": 2, "anon_rss": 3, "file_rss": 4, "shmem_rss": 5, "uid": 6,
                    "pgtables": 7, "oom_score_adj": 8},
}
_PACK = {(1, 0): "B", (1, 1): "b", (2, 0): "H", (2, 1): "h", (4, 0): "I", (4, 1): "i", (8, 0): "Q", (8, 1): "q"}


def format_file(sub: str, event: str) -> str:
    """events/<sub>/<event>/format as event_format's f_show prints it (kernel/trace/trace_events.c)."""
    def field(name, ctype, off, size, signed):
        if ctype.startswith("__data_loc"):
            return f"\tfield:__data_loc char[] {name};\toffset:{off};\tsize:{size};\tsigned:{signed};\n"
        return f"\tfield:{ctype} {name};\toffset:{off};\tsize:{size};\tsigned:{signed};\n"
    fields, _ = field_offsets(event)
    return (f"name: {event}\nID: {EVENT_ID[event]}\nformat:\n" + "".join(field(*f) for f in COMMON_FIELDS)
            + "\n" + "".join(field(*f) for f in fields) + f"\nprint fmt: {PRINT_FMT[event]}\n")


# events/ftrace/print: ftrace's own TRACE_PRINT entry (kernel/trace/trace_entries.h), which
# trace-cmd record stores with every trace.dat (it has no enable: ftrace's types are always on)
TRACE_PRINT = 5
FTRACE_PRINT = (f"name: print\nID: {TRACE_PRINT}\nformat:\n"
                + "".join(f"\tfield:{c} {n};\toffset:{o};\tsize:{z};\tsigned:{s};\n" for n, c, o, z, s in COMMON_FIELDS)
                + "\n\tfield:unsigned long ip;\toffset:8;\tsize:8;\tsigned:0;\n"
                "\tfield:char buf[];\toffset:16;\tsize:0;\tsigned:1;\n"
                '\nprint fmt: "%ps: %s", (void *)REC->ip, REC->buf\n')


def header_page() -> str:
    """events/header_page: ring_buffer_print_page_header() (struct buffer_data_page, 64-bit)."""
    return ("\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n"
            "\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n"
            "\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n"
            f"\tfield: char data;\toffset:{RB_DATA_OFFSET};\tsize:{BUF_PAGE_SIZE};\tsigned:1;\n")


HEADER_EVENT = ("# compressed entry header\n\ttype_len    :    5 bits\n\ttime_delta  :   27 bits\n"
                "\tarray       :   32 bits\n\n"
                f"\tpadding     : type == {RINGBUF_TYPE_PADDING}\n"
                f"\ttime_extend : type == {RINGBUF_TYPE_TIME_EXTEND}\n"
                f"\ttime_stamp : type == {RINGBUF_TYPE_TIME_STAMP}\n"
                f"\tdata max type_len  == {RINGBUF_TYPE_DATA_TYPE_LEN_MAX}\n")


def _record(entry) -> bytes:
    """One entry's trace_entry and TP_STRUCT__entry, laid out as its format file says."""
    _, _, event, args, task, _ = entry
    fields, size = field_offsets(event)
    take = FIELD_ARGS[event]
    strings = b""
    rec = bytearray(size)
    struct.pack_into("<HBBi", rec, 0, EVENT_ID[event], 0, 0, task[1])
    for name, ctype, off, fsize, signed in fields:
        value = args[take[name]] if name in take else CALL_SITE_ADDR if name == "call_site" else 0
        if ctype.startswith("__data_loc"):            # the text after the struct, (len << 16) | offset
            text = str(value).encode() + b"\0"
            struct.pack_into("<I", rec, off, len(text) << 16 | (size + len(strings)))
            strings += text
            continue
        value = int(value)
        if not signed:
            value &= (1 << 8 * fsize) - 1
        struct.pack_into("<" + _PACK[fsize, signed], rec, off, value)
    return bytes(rec) + strings


def raw_pages(entries, lost: int = 0) -> list[bytes]:
    """The ring-buffer pages trace_pipe_raw hands out for a cpu's entries, oldest first
    (kernel/trace/ring_buffer.c): each a buffer_data_page -- the first event's time stamp,
    ``commit`` (the data's length), the events -- padded with zeros to PAGE_SIZE.  An event
    is a 32-bit header (type_len:5 = the data's length in 4-byte words up to
    RB_MAX_SMALL_DATA, else 0 with the length in array[0]; time_delta:27 = ns since the
    previous event of the page) and the record; a delta of 2^27 ns or more first takes a
    RINGBUF_TYPE_TIME_EXTEND.  ``lost`` entries overwritten before these sets
    RB_MISSED_EVENTS on the first page, with the count stored after the data (RB_MISSED_STORED)."""
    pages: list[bytes] = []
    data, stamp, last = bytearray(), None, None
    for entry in entries:
        ts, rec = entry[1], _record(entry)
        length = -(-len(rec) // 4) * 4
        rec = rec.ljust(length, b"\0")
        if length > RB_MAX_SMALL_DATA:
            body = struct.pack("<I", length + 4) + rec
            type_len = 0
        else:
            body, type_len = rec, length // 4
        delta = 0 if last is None else ts - last
        extend = b""
        if delta > TS_MASK:
            extend = struct.pack("<II", RINGBUF_TYPE_TIME_EXTEND | (delta & TS_MASK) << 5, delta >> 27)
            delta = 0
        event = extend + struct.pack("<I", type_len | delta << 5) + body
        if data and len(data) + len(event) > BUF_PAGE_SIZE:
            pages.append(_page(stamp, data, lost if not pages else 0))
            data, last = bytearray(), None
            event = struct.pack("<I", type_len) + body
        if not data:
            stamp = ts
        data += event
        last = ts
    if data or lost:
        pages.append(_page(stamp or 0, data, lost if not pages else 0))
    return pages


def _page(stamp: int, data: bytes, lost: int) -> bytes:
    commit, tail = len(data), b""
    if lost:
        commit |= RB_MISSED_EVENTS
        if BUF_PAGE_SIZE - len(data) >= 8:
            tail = struct.pack("<Q", lost)
            commit |= RB_MISSED_STORED
    return (struct.pack("<Qq", stamp, commit) + bytes(data) + tail).ljust(PAGE_SIZE, b"\0")


def _event_size(entry, last_ts) -> int:
    """The bytes raw_pages gives the entry after one stamped last_ts (None: first on its page)."""
    length = -(-len(_record(entry)) // 4) * 4
    extend = last_ts is not None and entry[1] - last_ts > TS_MASK
    return 4 + length + 4 * (length > RB_MAX_SMALL_DATA) + 8 * extend


def read_raw(k, cpu: int, size: int) -> bytes:
    """One read(2) of per_cpu/cpuN/trace_pipe_raw (tracing_buffers_read): the cpu's oldest
    unread entries that fit one page, each consumed as trace_pipe consumes it (the core's
    ring_buffer_consume, ``Trace._advance``, under Trace.lock); b"" when there are none (the
    shell then blocks, or answers EAGAIN to O_NONBLOCK)."""
    tr: Trace = k.trace
    with tr.lock:
        b = tr.bufs.get(cpu)
        if b is None or b.oldest() is None:
            return b""
        lost = b.overrun - b.last_overrun
        taken, used = [], 0
        while (e := b.oldest()) is not None:
            n = _event_size(e, taken[-1][1] if taken else None)
            if taken and used + n > BUF_PAGE_SIZE:
                break
            tr._advance(cpu)
            taken.append(e)
            used += n
    return b"".join(raw_pages(taken, lost))         # one page (_event_size counts as raw_pages packs)


def render_raw(k, cpu: int) -> bytes:
    """The unread pages, not consumed (``procsim render``; reading through the mount consumes)."""
    tr: Trace = k.trace
    with tr.lock:
        b = tr.bufs.get(cpu)
        entries = b.unread() if b is not None else []
    return b"".join(raw_pages(entries))

FILES = {
    f"{DIR}/trace": View(0o644, render_trace, volatile=True, write=_writer("trace")),
    f"{DIR}/trace_pipe": View(0o444, render_pipe, volatile=True, pipe=lambda k, size: k.trace.read_pipe(size)),
    f"{DIR}/tracing_on": View(0o644, lambda k: f"{int(k.trace.tracing_on)}\n".encode(), volatile=True,
                              write=_writer("tracing_on")),
    f"{DIR}/buffer_size_kb": View(0o644, lambda k: k.trace.buffer_size_kb().encode(), volatile=True,
                                  write=_writer("buffer_size_kb")),
    f"{DIR}/buffer_total_size_kb": View(0o444, _total_kb, volatile=True),
    f"{DIR}/available_events": View(0o444, lambda k: "".join(f"{sub}:{e}\n" for sub, events in SUBSYSTEMS.items()
                                                            for e in events).encode()),
    f"{DIR}/events/enable": _group_view("events/enable", EVENTS),
    **{f"{DIR}/events/{sub}/enable": _group_view(f"events/{sub}/enable", events) for sub, events in SUBSYSTEMS.items()},
    **{f"{DIR}/events/{sub}/{e}/enable": _event_view(sub, e) for sub, events in SUBSYSTEMS.items() for e in events},
    # what trace-cmd record and report read besides: the formats, the rings in binary (per cpu)
    f"{DIR}/events/header_page": View(0o444, lambda k: header_page().encode()),
    f"{DIR}/events/header_event": View(0o444, lambda k: HEADER_EVENT.encode()),
    f"{DIR}/events/ftrace/print/format": View(0o444, lambda k: FTRACE_PRINT.encode()),
    f"{DIR}/events/ftrace/print/id": View(0o444, lambda k: f"{TRACE_PRINT}\n".encode()),
    **{f"{DIR}/events/{sub}/{e}/format": View(0o444, lambda k, s=sub, e=e: format_file(s, e).encode())
       for sub, events in SUBSYSTEMS.items() for e in events},
    **{f"{DIR}/events/{sub}/{e}/id": View(0o444, lambda k, e=e: f"{EVENT_ID[e]}\n".encode())
       for sub, events in SUBSYSTEMS.items() for e in events},
    **{f"{DIR}/events/{sub}/{e}/filter": View(0o644, lambda k: b"none\n", write=_ignored("filter"))
       for sub, events in SUBSYSTEMS.items() for e in events},
    **{f"{DIR}/events/{sub}/filter": View(0o644, lambda k: b"none\n", write=_ignored("filter"))
       for sub in SUBSYSTEMS},
    f"{DIR}/saved_cmdlines": View(0o444, lambda k: "".join(f"{pid} {comm}\n" for pid, comm in _cmdlines(k)).encode(),
                                  volatile=True),
    f"{DIR}/saved_cmdlines_size": View(0o444, lambda k: f"{SAVED_CMDLINES}\n".encode()),
    f"{DIR}/saved_tgids": View(0o444, lambda k: "".join(f"{pid} {pid}\n" for pid, _ in _cmdlines(k)).encode(),
                               volatile=True),
    f"{DIR}/printk_formats": View(0o444, lambda k: b""),
    f"{DIR}/trace_clock": View(0o644, lambda k: TRACE_CLOCKS.encode(), write=_ignored("trace_clock")),
    f"{DIR}/current_tracer": View(0o644, lambda k: b"nop\n", write=_ignored("current_tracer")),
    f"{DIR}/available_tracers": View(0o444, lambda k: b"nop\n"),
    # /proc/sys/kernel/ftrace_enabled (kernel/trace/ftrace.c): trace-cmd record writes 1 and dies
    # if it cannot; there is no function tracer to switch off, so it stays 1
    "sysctl/kernel/ftrace_enabled": View(0o644, lambda k: b"1\n", write=_ignored("ftrace_enabled")),
    "kallsyms": View(0o444, lambda k: KALLSYMS.encode()),
}


def _cpu_files(cpu: int) -> dict:
    d = f"{DIR}/per_cpu/cpu{cpu}"
    path = f"per_cpu/cpu{cpu}/buffer_size_kb"
    return {
        f"{d}/buffer_size_kb": View(0o644, lambda k: k.trace.buffer_size_kb(cpu).encode(), volatile=True,
                                    write=_writer(path)),
        f"{d}/stats": View(0o444, lambda k: k.trace.stats(cpu).encode(), volatile=True),
        f"{d}/trace_pipe_raw": View(0o444, lambda k: render_raw(k, cpu), volatile=True,
                                    pipe=lambda k, size: read_raw(k, cpu, size)),
    }


def files_for(machine) -> dict:
    out = dict(FILES)
    for cpu in range(machine.nr_cpu_ids):
        out.update(_cpu_files(cpu))
    return out
