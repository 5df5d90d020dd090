"""kmsg: the kernel log the way /dev/kmsg serves it (drivers/char/mem.c -> devkmsg_read).

Each read() of an open handle returns the next record, ``prio,seq,usec,-;text\\n``; the
bytes of the whole file (``render``) are those records one after another, which is what
a reader reading until the end gets.  ``procsim exec`` binds M/dev/kmsg over /dev/kmsg, so
the real ``dmesg`` prints the simulated kernel's log and ``dmesg -w`` follows it.
"""
from __future__ import annotations

from ..mm import printk
from . import View


def render(k) -> bytes:
    return b"".join(printk.format_kmsg(r) for r in printk.ring(k).records)


def read(k, cursor, size: int):
    """One record per read: (bytes, next cursor); see printk.devkmsg_read."""
    return printk.devkmsg_read(k, cursor, size)


KMSG = View(0o444, render, stream=read)
# The same log twice: ``kmsg`` at the mount's root (the main FUSE session: a read at the end is
# EOF, never a wait) and ``dev/kmsg``, served by the threaded session (fs.SUBMOUNTS), where a
# read at the end waits for the next record as /dev/kmsg does (``dmesg -w``); O_NONBLOCK gets
# EAGAIN there.  ``procsim exec`` binds dev/kmsg over /dev/kmsg.
FILES = {"kmsg": KMSG, "dev/kmsg": KMSG}
