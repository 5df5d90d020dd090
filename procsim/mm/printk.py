"""The kernel log: printk's record ring in simulated time, and /dev/kmsg's view of it.

kernel/printk/printk.c keeps every message as one record (sequence number, facility and
level, timestamp, text) in a ring of ``1 << CONFIG_LOG_BUF_SHIFT`` bytes; the oldest
records are overwritten when it is full.  A message printed in pieces with KERN_CONT is
one record; a message with newlines inside (show_free_areas' first block) stays one record.

/dev/kmsg hands each read() exactly one record, ``prio,seq,usec,flag;text\\n`` with the
text's control characters (the inner newlines too) escaped as ``\\xNN``
(msg_add_ext_text); a reader that fell behind the ring gets EPIPE once and continues at
the oldest record; a buffer too small for the record is EINVAL.

Timestamps come from the simulated clock (``k.now_ns``), never the host's.
"""
from __future__ import annotations

import errno
from collections import deque
from dataclasses import dataclass

from .errors import MMError

# include/linux/kern_levels.h
KERN_EMERG, KERN_ALERT, KERN_CRIT, KERN_ERR, KERN_WARNING, KERN_NOTICE, KERN_INFO, KERN_DEBUG = range(8)
MESSAGE_LOGLEVEL_DEFAULT = KERN_WARNING     # a printk() without a level (CONFIG_MESSAGE_LOGLEVEL_DEFAULT=4)
LOG_BUF_LEN = 1 << 17                      # CONFIG_LOG_BUF_SHIFT=17 (Debian, Fedora)
PRINTKRB_RECORD_MAX = 1024                 # longest text of one record (printk.h)
_RECORD_OVERHEAD = 16                      # what a record costs in the ring beside its text


@dataclass(frozen=True)
class Record:
    seq: int
    level: int
    facility: int
    ts_usec: int
    text: str


class PrintkRing:
    """The printk ring buffer (prb) of one booted kernel."""

    def __init__(self, size: int = LOG_BUF_LEN):
        self.size = size
        self.records: deque[Record] = deque()
        self.next_seq = 0
        self._bytes = 0

    @property
    def first_seq(self) -> int:
        return self.records[0].seq if self.records else self.next_seq

    def store(self, level: int, text: str, ts_usec: int, facility: int = 0) -> Record:
        """vprintk_store(): one record; a trailing newline ends it and is not kept."""
        if text.endswith("\n"):
            text = text[:-1]
        text = text[:PRINTKRB_RECORD_MAX]
        rec = Record(self.next_seq, level, facility, ts_usec, text)
        self.next_seq += 1
        self.records.append(rec)
        self._bytes += len(text) + _RECORD_OVERHEAD
        while self._bytes > self.size and len(self.records) > 1:
            self._bytes -= len(self.records.popleft().text) + _RECORD_OVERHEAD
        return rec

    def get(self, seq: int) -> Record | None:
        """The record with this seq, if still in the ring."""
        first = self.first_seq
        if seq < first or seq >= self.next_seq:
            return None
        return self.records[seq - first]


def ring(k) -> PrintkRing:
    """The kernel's log ring (``k.printk_ring``, made with the Kernel)."""
    return k.printk_ring


def now_usec(k) -> int:
    """local_clock() in microseconds: the simulated clock."""
    return k.now_ns // 1000


def printk(k, text: str, level: int = MESSAGE_LOGLEVEL_DEFAULT) -> Record:
    """printk(level text) at the kernel's current simulated time (a state change: the
    generation moves, so cached renders of kmsg are not stale)."""
    k.generation += 1
    return ring(k).store(level, text, now_usec(k))


def pr_warn(k, text: str) -> Record: return printk(k, text, KERN_WARNING)
def pr_err(k, text: str) -> Record: return printk(k, text, KERN_ERR)
def pr_info(k, text: str) -> Record: return printk(k, text, KERN_INFO)


def _escape(text: str) -> str:
    """msg_add_ext_text(): bytes below ' ', from 127 on, and the backslash as \\xNN."""
    out = []
    for b in text.encode():
        out.append(f"\\x{b:02x}" if b < 0x20 or b >= 0x7f or b == 0x5c else chr(b))
    return "".join(out)


def format_kmsg(rec: Record) -> bytes:
    """One /dev/kmsg record: info_print_ext_header() + the escaped text + newline."""
    prefix = (rec.facility << 3) | rec.level
    return f"{prefix},{rec.seq},{rec.ts_usec},-;{_escape(rec.text)}\n".encode()


def devkmsg_read(k, seq: int | None, size: int) -> tuple[bytes, int]:
    """devkmsg_read(): the record at seq (None: the oldest) and the seq after it.

    At the end of the log: (b"", seq).  Raises MMError(EPIPE) when seq was overwritten
    (the reader then continues at ``ring(k).first_seq``, as the kernel moves user->seq),
    MMError(EINVAL) when size cannot hold the record.
    """
    r = ring(k)
    if seq is None:
        seq = r.first_seq
    if seq < r.first_seq:
        raise MMError(errno.EPIPE, f"kmsg: records before {r.first_seq} were overwritten")
    rec = r.get(seq)
    if rec is None:
        return b"", seq
    data = format_kmsg(rec)
    if len(data) > size:
        raise MMError(errno.EINVAL, f"kmsg: record {seq} needs {len(data)} bytes, the read asked for {size}")
    return data, seq + 1



def bitmap_list(items) -> str:
    """vsprintf's ``%*pbl``: ranges ``0-11,24-35``; an empty set prints nothing."""
    out, run = [], None
    for x in sorted(set(items)):
        if run and x == run[1] + 1:
            run[1] = x
        else:
            run = [x, x]
            out.append(run)
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in out)


def format_gfp_flags(gfp: int, names: tuple[str, ...] | None = None) -> str:
    """vsprintf's ``%pGg``: the names of include/trace/events/mmflags.h (6.15+, or the
    profile's ``gfpflag_names``) in their order, a matching compound mask first; bits without
    a name as a hex tail; nothing for 0."""
    from . import gfp as G
    parts = []
    for name in names or _GFP_NAMES:
        mask = G.NAMES[name]
        if gfp and gfp & mask == mask:
            parts.append(name)
            gfp &= ~mask
    if gfp:
        parts.append(f"{gfp:#x}")
    return "|".join(parts)


_GFP_NAMES = ("GFP_TRANSHUGE", "GFP_TRANSHUGE_LIGHT", "GFP_HIGHUSER_MOVABLE", "GFP_HIGHUSER", "GFP_USER",
              "GFP_KERNEL_ACCOUNT", "GFP_KERNEL", "GFP_NOFS", "GFP_ATOMIC", "GFP_NOIO", "GFP_NOWAIT", "GFP_DMA",
              "GFP_DMA32", "__GFP_RECLAIM",
              *(f"__GFP_{b}" for b in ("DMA", "HIGHMEM", "DMA32", "MOVABLE", "RECLAIMABLE", "HIGH", "IO", "FS",
                                       "ZERO", "DIRECT_RECLAIM", "KSWAPD_RECLAIM", "WRITE", "NOWARN",
                                       "RETRY_MAYFAIL", "NOFAIL", "NORETRY", "MEMALLOC", "COMP", "NOMEMALLOC",
                                       "HARDWALL", "THISNODE", "ACCOUNT", "ZEROTAGS")))
