"""sys/kernel/tracing/: the kmem and vmscan trace events as tracefs shows them (kernel/trace/trace.c).

``trace`` is a snapshot with ftrace's header; ``trace_pipe`` hands each entry to one read
only; ``tracing_on``, ``events/enable``, ``events/<subsystem>/enable`` and
``events/<subsystem>/<event>/enable`` take ``0`` or ``1`` as in the kernel (a subsystem's enable
reads ``X`` when its events are mixed).  ``procsim exec`` binds the directory over
/sys/kernel/tracing, so ``cat /sys/kernel/tracing/trace_pipe`` works unchanged.

Read through the mount, trace_pipe is the kernel's: a read takes the oldest unread entries
(whole lines, as many as fit the buffer) and, when there are none, blocks until a command
records some (procsim.fs: ``ProcFS._read_pipe``); O_NONBLOCK readers get EAGAIN.  Rendered
in process (``procsim render``, ``Session.render``) it hands over everything unread, or b"".
Nothing is lost between reads: entries wait in the ring (65536 entries) until read.
"""
from __future__ import annotations

import errno

from ..mm.errors import MMError
from ..mm.trace import EVENTS, SUBSYSTEMS, Trace
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


def _bit(data: bytes) -> bool:
    """kstrtoul() of a 0/1 knob: "1", "0\\n", ... anything else is EINVAL."""
    text = data.decode(errors="replace").strip()
    if text not in ("0", "1"):
        raise MMError(errno.EINVAL, f"write 0 or 1, not {text!r}")
    return text == "1"


def render_trace(k) -> bytes:
    tr: Trace = k.trace
    head = HEADER.format(entries=tr.entries(), written=tr.written, cpus=k.nr_cpu_ids)
    return (head + "".join(Trace.line(e) for e in tr.ring)).encode()


def render_pipe(k) -> bytes:
    return "".join(Trace.line(e) for e in k.trace.consume()).encode()


def _state(values) -> str:
    values = set(values)
    return "X\n" if len(values) > 1 else f"{int(values.pop())}\n"


def _event_view(event) -> View:
    return View(0o644, lambda k: f"{int(k.trace.enabled[event])}\n".encode(), volatile=True,
                write=lambda k, data: k.trace.enable(event, _bit(data)))


def _group_view(events) -> View:
    """A subsystem's (or all events') enable: 0, 1, or X when mixed."""
    return View(0o644, lambda k: _state(k.trace.enabled[e] for e in events).encode(), volatile=True,
                write=lambda k, data: k.trace.enable(events, _bit(data)))


def _clear(k, data: bytes) -> None:
    k.trace.clear()


FILES = {
    f"{DIR}/trace": View(0o644, render_trace, volatile=True, write=_clear),
    f"{DIR}/trace_pipe": View(0o444, render_pipe, volatile=True, pipe=lambda k, size: k.trace.read_pipe(size)),
    f"{DIR}/tracing_on": View(0o644, lambda k: f"{int(k.trace.tracing_on)}\n".encode(), volatile=True,
                              write=lambda k, data: k.trace.set_tracing_on(_bit(data))),
    f"{DIR}/events/enable": _group_view(EVENTS),
    **{f"{DIR}/events/{sub}/enable": _group_view(events) for sub, events in SUBSYSTEMS.items()},
    **{f"{DIR}/events/{sub}/{e}/enable": _event_view(e) for sub, events in SUBSYSTEMS.items() for e in events},
}
