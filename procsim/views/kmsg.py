"""kmsg: the kernel log the way /dev/kmsg serves it (drivers/char/mem.c -> devkmsg_read).

Each read() of an open handle returns the next record, ``prio,seq,usec,-;text\\n``; the
bytes of the whole file (``render``) are those records one after another, which is what
a reader reading until the end gets.  ``procsim exec`` binds it over /dev/kmsg, so the
real ``dmesg`` prints the simulated kernel's log.
"""
from __future__ import annotations

from ..mm import printk
from . import View


def render(k) -> bytes:
    return b"".join(printk.format_kmsg(r) for r in printk.ring(k).records)


def read(k, cursor, size: int):
    """One record per read: (bytes, next cursor); see printk.devkmsg_read."""
    return printk.devkmsg_read(k, cursor, size)


FILES = {"kmsg": View(0o444, render, stream=read)}
