"""sys/kernel/tracing/: the kmem and vmscan trace events as tracefs shows them (kernel/trace/trace.c).

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

``procsim exec`` binds the directory over /sys/kernel/tracing, so
``cat /sys/kernel/tracing/trace_pipe`` works unchanged.
"""
from __future__ import annotations

from ..mm.trace import EVENTS, SUBSYSTEMS, Trace, parse_write
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


def _total_kb(k) -> bytes:
    """buffer_total_size_kb: tracing_total_entries_read()."""
    tr = k.trace
    size = sum(int(tr.buffer_size_kb(c)) for c in range(k.nr_cpu_ids))
    if tr.expanded:
        return f"{size}\n".encode()
    return f"{size} (expanded: {(tr.buffer_size >> 10) * k.nr_cpu_ids})\n".encode()


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
}


def _cpu_files(cpu: int) -> dict:
    d = f"{DIR}/per_cpu/cpu{cpu}"
    path = f"per_cpu/cpu{cpu}/buffer_size_kb"
    return {
        f"{d}/buffer_size_kb": View(0o644, lambda k: k.trace.buffer_size_kb(cpu).encode(), volatile=True,
                                    write=_writer(path)),
        f"{d}/stats": View(0o444, lambda k: k.trace.stats(cpu).encode(), volatile=True),
    }


def files_for(machine) -> dict:
    out = dict(FILES)
    for cpu in range(machine.nr_cpu_ids):
        out.update(_cpu_files(cpu))
    return out
