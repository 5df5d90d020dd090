"""Trace events of the kmem subsystem: an ftrace-like ring the allocator writes to.

Off by default, as in the kernel: every hook in the allocator is ``if tr.active:`` on a
plain attribute, true only while ``tracing_on`` is 1 *and* some event is enabled, so an
untraced run pays one attribute test per call and records nothing.

Entries are stored raw (event name, cpu, timestamp, arguments) in a bounded ring (the
per-cpu ring buffers of ftrace, merged: the simulation is serial) and formatted only when
read, with the TP_printk formats of include/trace/events/kmem.h (6.18).  ``trace`` reads
a snapshot; ``trace_pipe`` consumes: each entry is handed to exactly one read.

The timestamp is the kernel's simulated clock ``k.now_ns`` when the core has one, else 0.
Pure and deterministic like the rest of mm/: no host clock, no threads.
"""
from __future__ import annotations

import errno
from collections import deque
from itertools import islice

from .errors import MMError
from .gfp import format_gfp
from .page_types import PAGEBLOCK_ORDER

# Subsystem -> its events, in the order of include/trace/events/<subsystem>.h.
SUBSYSTEMS = {
    "kmem": ("kmalloc", "kfree", "kmem_cache_alloc", "kmem_cache_free", "mm_page_free", "mm_page_free_batched",
             "mm_page_alloc", "mm_page_alloc_zone_locked", "mm_page_pcpu_drain", "mm_page_alloc_extfrag"),
    "vmscan": ("mm_vmscan_direct_reclaim_begin", "mm_vmscan_direct_reclaim_end", "mm_vmscan_kswapd_sleep",
               "mm_vmscan_kswapd_wake", "mm_vmscan_wakeup_kswapd"),
}
EVENTS = tuple(e for events in SUBSYSTEMS.values() for e in events)
RING_ENTRIES = 1 << 16                 # oldest entries are overwritten, like the ring buffer
VMEMMAP_BASE = 0xffffea0000000000      # x86-64 vmemmap without KASLR: struct page of pfn N
STRUCT_PAGE_SIZE = 64
NUMA_NO_NODE = -1
CALL_SITE = "procsim_control+0x0/0x0"  # %pS of the caller: the control file stands in for it
INIT = ("init", 1)                     # untagged control commands run for init (mm/task.py)


def page_ptr(pfn: int) -> str:
    """%p of pfn_to_page(pfn), unhashed (as with no_hash_pointers): vmemmap + pfn * 64."""
    return f"{VMEMMAP_BASE + pfn * STRUCT_PAGE_SIZE:016x}"


def gfp_str(gfp: int) -> str:
    """show_gfp_flags(): the flag names, or "none" for 0."""
    return format_gfp(gfp) if gfp else "none"


def _bool(x) -> str:
    return "true" if x else "false"


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
    "mm_page_free": lambda pfn, order: f"page={page_ptr(pfn)} pfn={pfn:#x} order={order}",
    "mm_page_free_batched": lambda pfn: f"page={page_ptr(pfn)} pfn={pfn:#x} order=0",
    "mm_page_alloc": lambda pfn, order, mt, gfp:
        (f"page={page_ptr(pfn)} pfn={pfn:#x}" if pfn >= 0 else "page=(null) pfn=0x0")
        + f" order={order} migratetype={mt} gfp_flags={gfp_str(gfp)}",
    "mm_page_alloc_zone_locked": lambda pfn, order, mt, refill:
        f"page={page_ptr(pfn)} pfn={pfn:#x} order={order} migratetype={mt} percpu_refill={int(refill)}",
    "mm_page_pcpu_drain": lambda pfn, order, mt: f"page={page_ptr(pfn)} pfn={pfn:#x} order={order} migratetype={mt}",
    "mm_page_alloc_extfrag": lambda pfn, alloc_order, fallback_order, alloc_mt, fallback_mt, claimed:
        f"page={page_ptr(pfn)} pfn={pfn:#x} alloc_order={alloc_order} fallback_order={fallback_order} "
        f"pageblock_order={PAGEBLOCK_ORDER} alloc_migratetype={alloc_mt} fallback_migratetype={fallback_mt} "
        f"fragmenting={int(fallback_order < PAGEBLOCK_ORDER)} change_ownership={int(claimed)}",
    "mm_vmscan_direct_reclaim_begin": lambda order, gfp: f"order={order} gfp_flags={gfp_str(gfp)}",
    "mm_vmscan_direct_reclaim_end": lambda nr: f"nr_reclaimed={nr}",
    "mm_vmscan_kswapd_sleep": lambda nid: f"nid={nid}",
    "mm_vmscan_kswapd_wake": lambda nid, order: f"nid={nid} order={order}",
    "mm_vmscan_wakeup_kswapd": lambda nid, order, gfp: f"nid={nid} order={order} gfp_flags={gfp_str(gfp)}",
}


class Trace:
    """The tracing instance of one Kernel (``k.trace``)."""

    def __init__(self, kernel=None):
        self.k = kernel
        self.tracing_on = True                        # tracing_on reads 1 at boot; no event is enabled
        self.enabled = dict.fromkeys(EVENTS, False)
        self.active = False                           # the hooks' one test
        self.ring: deque = deque(maxlen=RING_ENTRIES)  # (seq, ts_ns, cpu, event, args, (comm, pid))
        self.written = 0                              # entries ever written (entries-written)
        self.consumed = 0                             # seq of the last entry trace_pipe handed out
        self.cpu = 0                                  # smp_processor_id() of the operation running
        self.current = INIT                           # (comm, pid) of the task it runs for

    # --- control, as the tracefs files set it --------------------------------------------
    def _update(self):
        self.active = self.tracing_on and any(self.enabled.values())

    def set_tracing_on(self, on: bool):
        self.tracing_on = bool(on)
        self._update()

    def enable(self, events, on: bool):
        """events/<subsystem>/<event>/enable (one name), events/<subsystem>/enable (its
        events) or events/enable (all: EVENTS)."""
        events = (events,) if isinstance(events, str) else events
        unknown = [e for e in events if e not in self.enabled]
        if unknown:
            raise MMError(errno.ENOENT, f"no trace event {unknown[0]!r}")
        for name in events:
            self.enabled[name] = bool(on)
        self._update()

    def clear(self):
        """Opening ``trace`` with O_TRUNC (``echo > trace``) empties the buffer."""
        self.ring.clear()
        self.consumed = self.written

    # --- recording (the hooks) -------------------------------------------------------------
    def emit(self, event: str, cpu: int, *args):
        if self.enabled[event]:
            self.written += 1
            self.ring.append((self.written, self.k.now_ns, cpu, event, args, self.current))

    # --- reading -------------------------------------------------------------------------
    @staticmethod
    def line(entry) -> str:
        """One entry as ftrace's default output prints it (trace_print_context + the event)."""
        _, ts, cpu, event, args, (comm, pid) = entry
        secs, ns = divmod(ts, 1_000_000_000)
        return (f"{comm:>16}-{pid:<7d} [{cpu:03d}] ..... {secs:5d}.{ns // 1000:06d}: "
                f"{event}: {FORMATS[event](*args)}\n")

    def entries(self) -> int:
        return len(self.ring)

    def unread(self) -> int:
        """Entries trace_pipe has not handed out yet (the newest of the ring)."""
        return min(self.written - self.consumed, len(self.ring))

    def consume(self) -> list:
        """trace_pipe: the entries not handed out yet, oldest first; they are gone afterwards."""
        out = list(islice(self.ring, len(self.ring) - self.unread(), None))
        self.consumed = self.written
        return out

    def read_pipe(self, size: int) -> bytes:
        """One read(2) of trace_pipe (tracing_read_pipe()): the oldest unread entries as lines,
        as many whole lines as fit in size bytes (always at least one), consumed; the rest
        wait for the next read.  b"" when nothing is unread."""
        out, used = [], 0
        for entry in islice(self.ring, len(self.ring) - self.unread(), None):
            line = self.line(entry).encode()
            if out and used + len(line) > size:
                break
            out.append(line)
            used += len(line)
            self.consumed = entry[0]
        return b"".join(out)
