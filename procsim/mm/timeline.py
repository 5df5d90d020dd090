"""Memory pressure over simulated time: what pictures/timeline.svg draws.

The kernel keeps no history; tools that show pressure over time (sar, vmstat 1, node_exporter's
graphs) sample the counters and take differences.  procsim's timeline does the same, inside
the machine so that it sees every step: a sample is taken by the vmstat worker's tick
(vmstat_shepherd, once a second) and after every control command, when anything in it moved
(the line is then drawn on to the present).  A sample holds each
populated zone's NR_FREE_PAGES and watermarks (min/low/high, the boost included, as
__zone_watermark_ok() sees them) and the cumulative vm events the rates and marks come from.

The marks are read off the counters between two samples, as a reader of /proc/vmstat would:
kswapd ran (pageoutrun moved), direct reclaim stalled (allocstall_*), compaction stalled or
succeeded (compact_stall, compact_success); the two things no counter names are noted where
they happen: an allocation failure (warn_alloc) and an OOM kill with its victim.

Bounded however long the machine runs: at CAPACITY samples the older half is merged pair by
pair (the later sample's time and counters -- they are cumulative, so a rate over the merged
interval stays exact -- and the lower free count, so a dip is never smoothed away); notes past
NOTES_CAPACITY are merged the same way, a merged note counting the events it stands for.
"""
from __future__ import annotations

from typing import NamedTuple

CAPACITY = 600
NOTES_CAPACITY = 200

# The cumulative vm events a sample keeps, in this order (rates and marks are their deltas).
EVENTS = ("pgscan_kswapd", "pgsteal_kswapd", "pgscan_direct", "pgsteal_direct", "pswpin", "pswpout",
          "pageoutrun", "compact_stall", "compact_success", "oom_kill")
ALLOCSTALL = ("allocstall_dma", "allocstall_dma32", "allocstall_normal", "allocstall_movable",
              "allocstall_device")


class Sample(NamedTuple):
    t_ns: int
    zones: tuple            # per populated zone: (nr_free, min, low, high, boost); the marks include the boost
    events: tuple           # EVENTS, then the allocstall sum


NOTE_KINDS = ("alloc_fail", "oom_kill")


class Note(NamedTuple):
    t_ns: int
    label: str              # the OOM victim's comm (its control tag), or the failing order
    count: int = 1          # a merged note stands for this many events


class Timeline:
    """k.timeline: the samples and notes, bounded (see the module docstring)."""

    def __init__(self):
        self.samples: list[Sample] = []
        self.notes: dict[str, list[Note]] = {kind: [] for kind in NOTE_KINDS}

    def start(self, k) -> None:
        """Boot is over: the timeline starts here (boot's minute of idle would squeeze the rest)."""
        self.samples.clear()
        self.sample(k)

    def sample(self, k) -> None:
        """Take a sample now; a second sample at the same instant replaces the first."""
        ev = k.vm_events
        s = Sample(k.now_ns,
                   tuple((z.nr_free, z.wmark_min, z.wmark_low, z.wmark_high, z.boost) for z in k.zones if z.populated),
                   tuple(ev.get(name, 0) for name in EVENTS) + (sum(ev.get(a, 0) for a in ALLOCSTALL),))
        samples = self.samples
        if samples and samples[-1][1:] == s[1:]:
            return                              # nothing moved: idle stretches cost nothing (and a
                                                # skipped idle vmstat run changes no byte, timer.py)
        if samples and samples[-1].t_ns == s.t_ns:
            samples[-1] = s
        else:
            samples.append(s)
        if len(samples) > CAPACITY:
            self.samples = _merge_older_half(samples, _merge_samples)

    def note(self, k, kind: str, label: str) -> None:
        """An event no counter names: ``kind`` is one of NOTE_KINDS."""
        notes = self.notes[kind]
        notes.append(Note(k.now_ns, label))
        if len(notes) > NOTES_CAPACITY:
            self.notes[kind] = _merge_older_half(notes, _merge_notes)


def _merge_older_half(items: list, merge) -> list:
    half = len(items) // 2 & ~1
    older = [merge(items[i], items[i + 1]) for i in range(0, half, 2)]
    return older + items[half:]


def _merge_samples(a: Sample, b: Sample) -> Sample:
    zones = tuple((min(za[0], zb[0]),) + zb[1:] for za, zb in zip(a.zones, b.zones, strict=False))
    return Sample(b.t_ns, zones, b.events)


def _merge_notes(a: Note, b: Note) -> Note:
    label = a.label if a.label == b.label or a.label.endswith("...") else a.label + ", ..."
    return Note(a.t_ns, label, a.count + b.count)
