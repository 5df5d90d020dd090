"""The trace text is the same bytes whatever the rings store.

The rings record runs of pages compactly and format lines only when read (procsim/mm/trace.py).
The oracle here is the per-event path: the same scenarios run twice, once as the kernel hooks
record them (a run of pages one record), once with every page its own event, recorded by
``emit()`` at its own time and printed by ``Trace.line()`` (the formatter of one event, which is
how the tree before the compact records worked). The test compares every byte of every
trace_pipe read (reads of many sizes, so lines are split across reads at every kind of
boundary), every ``trace`` file, every per_cpu/cpuN/stats and the entry counts, including rings
that overflow (``CPU:N [LOST M EVENTS]``, overrun counts), a resize with data in the rings,
``echo > trace``, tracing_on 0 and per-event enables.

(A golden file written by the old tree stood here; it pinned the simulation too, so every change
of what the kernel does -- page tables allocated as faulted -- broke it although the trace code
was right. The twin run checks the same thing and follows the simulation.)
"""
from __future__ import annotations

from contextlib import contextmanager

from procsim import machine as M
from procsim.control import Control
from procsim.mm.kernel import Kernel
from procsim.mm.trace import Trace
from procsim.testing import CONFIGS
from procsim.views import files

T = "sys/kernel/tracing"
SIZES = (4096, 1 << 17, 200, 1, 65536, 1000, 8192, 333)

# (machine source, commands); "READ n" reads trace_pipe n times (cycling through SIZES, stopping
# at an empty read), "DRAIN" reads it to the end, "TRACE" renders trace, "STATS" every cpu's stats.
TINY_SWAP = (CONFIGS / "tiny.yaml").read_text() + "swap: 16MiB\n"
FILL = "alloc_pages 0 count=5000 use=anon gfp=GFP_HIGHUSER_MOVABLE tag={}"
# with unused dentries and inodes for the superblock shrinker to free (its frees a run: Trace.pending)
TINY_SB = TINY_SWAP + """boot:
  caches:
    - {name: dentry, size: 192, objects: 6000, unused: 5000, flags: "SLAB_RECLAIM_ACCOUNT"}
    - {name: inode_cache, size: 640, objects: 3000, flags: "SLAB_RECLAIM_ACCOUNT"}
"""
SCENARIOS = {
    "everything, a reader that keeps up": (TINY_SWAP, [
        "tracefs events/enable 1", "kmem_cache_create foo 100", "kmem_cache_alloc foo count=50 tag=x cpu=1",
        "DRAIN", "kmalloc 512 count=300 tag=d cpu=0", "READ 3", "TRACE", "DRAIN", "STATS",
        "alloc_pages 0 count=3000 use=anon tag=a", "DRAIN", "alloc_pages 3 count=20 tag=b cpu=1", "DRAIN",
        FILL.format("p"), "DRAIN", "STATS", FILL.format("q"), "DRAIN", FILL.format("r"), "DRAIN",
        "sleep 2", "DRAIN", "free_pages tag=a", "DRAIN", "drain_pages", "DRAIN", "kfree tag=d", "DRAIN",
        "alloc_pages 0 count=2000 use=pagecache cpu=1 tag=c", "DRAIN", "compact_memory", "DRAIN",
        "kmem_cache_free foo tag=x", "alloc_pages 0 count=700 use=anon cpu=1 tag=e", "TRACE", "DRAIN", "STATS",
    ]),
    "small rings, a reader that falls behind": (TINY_SWAP, [
        "tracefs buffer_size_kb 8", "tracefs per_cpu/cpu1/buffer_size_kb 12", "tracefs events/kmem/enable 1",
        "kmalloc 64 count=500 tag=k", "READ 2", "STATS", "alloc_pages 0 count=4000 use=anon tag=a", "STATS",
        "TRACE", "READ 5", "alloc_pages 0 count=3000 use=anon tag=b cpu=1", "READ 1", "STATS", "TRACE",
        "tracefs buffer_size_kb 5", "STATS", "TRACE", "READ 4", FILL.format("f"), "STATS", "DRAIN", "STATS",
        "tracefs events/kmem/mm_page_alloc/enable 0", "tracefs events/vmscan/enable 1",
        "free_pages tag=a", "sleep 1", "READ 2", "tracefs trace 0", "STATS", "TRACE",
        "alloc_pages 0 count=2500 use=anon tag=g", "tracefs tracing_on 0", "kfree tag=k",
        "tracefs tracing_on 1", "free_pages tag=g", "TRACE", "DRAIN", "STATS",
    ]),
    "the shrinker's frees, read whole and in pieces, overrun": (TINY_SB, [
        "tracefs events/enable 1", "tracefs buffer_size_kb 8", "alloc_pages 0 count=12000 use=anon tag=a",
        "READ 3", "STATS", "TRACE", "DRAIN", "tracefs buffer_size_kb 64", "drop_caches", "READ 9", "TRACE",
        "DRAIN", "STATS",
    ]),
}


def run(src: str, script: list[str]) -> str:
    m = M.loads(src)
    c = Control(lambda: Kernel(m))
    k = c.kernel
    fs = files(m)
    out, reads = [], 0

    def read(limit):
        nonlocal reads
        for _ in range(limit):
            size = SIZES[reads % len(SIZES)]
            reads += 1
            chunk = k.trace.read_pipe(size)
            out.append(f"== read {size}: {len(chunk)} bytes\n{chunk.decode()}")
            if not chunk:
                return

    for cmd in script:
        if cmd == "DRAIN":
            read(10 ** 9)
        elif cmd.startswith("READ "):
            read(int(cmd.split()[1]))
        elif cmd == "TRACE":
            out.append("== trace\n" + fs[f"{T}/trace"].render(k).decode())
        elif cmd == "STATS":
            for cpu in range(k.nr_cpu_ids):
                out.append(f"== cpu{cpu} stats\n" + fs[f"{T}/per_cpu/cpu{cpu}/stats"].render(k).decode())
            out.append(f"== entries {k.trace.entries()} total {k.trace.total()} written {k.trace.written}\n")
        else:
            r = c.run(cmd)
            out.append(f"== {cmd}: {r.errno} {r.text}\n")
    return "".join(out)


def current() -> str:
    return "".join(f"#### {name}\n{run(src, script)}" for name, (src, script) in SCENARIOS.items())


def _emit_each(self, event, cpu, pfns, *rest, step=0):
    """The reference for Trace.emit_pfns: each page its own emit(), at its own time."""
    k = self.k
    now = k._now_ns
    try:
        for i, pfn in enumerate(pfns):
            k._now_ns = now + i * step
            self.emit(event, cpu, pfn, *rest)
    finally:
        k._now_ns = now


class _EmitEach:
    """The reference for Trace.pending: each argument appended recorded now, by emit()."""
    def __init__(self, tr, event, cpu, rest):
        self.append = lambda arg: tr.emit(event, cpu, arg, *rest)


def _pending_now(self, event, cpu, *rest):
    return _EmitEach(self, event, cpu, rest) if self.enabled[event] else None


@contextmanager
def per_event():
    saved = Trace.emit_pfns, Trace.pending
    Trace.emit_pfns, Trace.pending = _emit_each, _pending_now
    try:
        yield
    finally:
        Trace.emit_pfns, Trace.pending = saved


def test_trace_text_is_byte_for_byte_the_per_event_trees():
    got = current()
    with per_event():
        want = current()
    # compare line by line first, so a failure points at the first difference
    for i, (a, b) in enumerate(zip(got.splitlines(), want.splitlines(), strict=False)):
        assert a == b, f"line {i + 1}"
    assert got == want
    assert "[LOST " in want and "percpu_refill=1" in want and "mm_page_pcpu_drain" in want


def test_the_reference_records_no_runs():
    """The twin really is per event: no record of it holds more than one page."""
    src, script = SCENARIOS["everything, a reader that keeps up"]
    m = M.loads(src)
    with per_event():
        c = Control(lambda: Kernel(m))
        for cmd in script[:12]:
            if cmd.isupper() or cmd.startswith("READ"):
                continue
            c.run(cmd)
    recs = [r for b in c.kernel.trace.bufs.values() for page in b.pages for r in page]
    assert recs and all(len(r) == 6 for r in recs)
    assert sum(r[2] == "mm_page_alloc" for r in recs) > 1000


def test_run_records_print_each_events_line():
    """A run record's lines are Trace.line() of each of its events (the per-event formatter the
    golden's tree used): steps that cross a second, pfns whose hex grows or shrinks a digit,
    descending ranges, tuples, steps of whole and of part microseconds, a '%' in the comm.  The
    chunks read_pipe and ``trace`` print (``_run_chunks``) are the same text, lines of the length
    each chunk tells."""
    from procsim.mm.trace import Trace, _entry
    tr = Trace()
    cases = [
        ("mm_page_alloc", range(0xff0, 0x1010), (0, 1, 0x140cca), 999_980_000, 1000),
        ("mm_page_alloc", tuple(range(0x10005, 0xfff5, -1)), (0, 2, 0xcc0), 5_999_999_500, 3000),
        ("mm_page_alloc", (7, 3, 0x10000, 9), (0, 1, 0x140cca), 1_000_000_000, 250),
        ("mm_page_alloc_zone_locked", range(0x2000, 0x1ff0, -1), (0, 1, True), 12_345_678_901, 0),
        ("mm_page_pcpu_drain", range(0, 40), (0, 0), 0, 0),
        ("mm_page_free", range(0xfffff0, 0x1000010), (0,), 86_400_000_000_000, 0),
        ("mm_page_pcpu_drain", range((1 << 34) - 3, (1 << 34) + 3), (0, 1), 5, 0),
        ("mm_page_alloc", ((1 << 34) + 5, 3), (0, 1, 0xcc0), 5, 1000),
        # blocks of 256 pfns crossed up and down, milliseconds and seconds turning inside a run
        ("mm_page_alloc", range(0x7fe00, 0x80210), (0, 1, 0x140cca), 999_980_000, 1000),
        ("mm_page_alloc", range(0x80210, 0x7fe00, -1), (0, 1, 0x140cca), 999_980_400, 2000),
        ("mm_page_alloc_zone_locked", range(0x2000, 0x1e00, -1), (0, 1, True), 12_345_678_901, 0),
        ("mm_page_pcpu_drain", range(200, 300), (0, 0), 0, 0),
        ("mm_page_pcpu_drain", range((1 << 34) - 300, (1 << 34) - 3), (0, 1), 5, 0),
        ("mm_page_alloc", tuple(range(0x10005, 0x10105)) + tuple(range(0x2000, 0x1f00, -1)) + (5, 0x3000, 0x3002),
         (0, 2, 0xcc0), 5_999_999_500, 7000),
        ("mm_page_free", tuple(range(0x3000, 0x3100)) + tuple(range(0x5000, 0x5010)), (0,), 7_000_000_000, 1000),
    ]
    for event, pfns, rest, ts, step in cases:
        for task in (("kswapd0", 35), ("50%done", 1234567), ("tâche", 7)):
            rec = (100, ts, event, pfns, task, 28, rest, step)
            for cpu in (0, 13):
                want = [Trace.line(_entry(rec, i), cpu) for i in range(len(pfns))]
                assert tr._run_lines(cpu, rec, 0, len(pfns)) == want, (event, step)
                assert tr._run_lines(cpu, rec, 3, 5) == want[3:5]
                for a, b in ((0, len(pfns)), (3, 5), (1, len(pfns) - 1), (len(pfns) // 2, len(pfns))):
                    chunks = tr._run_chunks(cpu, rec, a, b)
                    assert b"".join(x[0] for x in chunks).decode() == "".join(want[a:b]), (event, step, a, b)
                    assert sum(x[1] for x in chunks) == len(want[a:b])
                    for data, lines, nbytes in chunks:             # lines of one length each, as told
                        got = data.split(b"\n")
                        assert len(got) == lines + 1 and not got[-1] and {len(x) + 1 for x in got[:-1]} == {nbytes}


def test_events_snapshot_consume_and_read_pipe_agree():
    """The iteration API (Trace.events, for other renderings such as binary pages) gives every
    unread event once, oldest first, as snapshot() and consume() do; consume()'s per-event lines
    (Trace.line) are what read_pipe prints for a twin machine given the same commands."""
    from procsim.mm.trace import Trace
    twins = [Control(lambda: Kernel(M.loads(TINY_SWAP))) for _ in range(2)]
    for c in twins:
        for cmd in ("tracefs events/enable 1", "kmalloc 128 count=200 cpu=1", FILL.format("a"),
                    "alloc_pages 0 count=3000 use=pagecache cpu=1", "sleep 1", "free_pages tag=a"):
            assert not c.run(cmd).errno
    tr, other = twins[0].kernel.trace, twins[1].kernel.trace
    events = list(tr.events())
    snap = tr.snapshot()
    assert len(events) == len(snap) == tr.entries() == tr.listing()[0] > 20000
    assert events == [(c, *e[:5]) for c, e in snap]
    assert [e[1] for e in events] == sorted(e[1] for e in events)
    assert {e[0] for e in events} == {0, 1}
    got = tr.consume()
    assert [(c, e) for c, e, _ in got] == snap and tr.entries() == 0 and list(tr.events()) == []
    text = "".join(Trace.line(e, c) for c, e, _ in got)
    piped = []
    while chunk := other.read_pipe(50000):
        piped.append(chunk)
    assert b"".join(piped).decode() == text


def _later(tr):
    """emit() by way of Trace.pending: the argument appended to the stretch held back."""
    def later(event, cpu, arg, *rest):
        pend = tr.pending(event, cpu, *rest)
        if pend is not None:
            pend.append(arg)
    return later


def test_pending_records_what_emit_would_in_the_same_order():
    """Trace.pending (the shrinker's frees) holds a stretch of one event, cpu, task, time and
    arguments but the first back as one run; anything else recorded, or flush(), records it
    first.  Reads of every size, ``trace`` and the counters are those of emit() called at once."""
    class Clock:
        now_ns = 5_000_000_000
        nr_cpu_ids = 2

    def script(tr, later):
        k = tr.k
        for i in range(700):
            if i % 97 == 0:
                k.now_ns += 1000 if i % 2 else (1 << 28)       # a time extend now and then
            if i % 131 == 0:
                tr.current = ("kswapd0", 35) if tr.current[1] == 1 else ("50%x", 1)
            name = "dentry" if i % 200 < 150 else "inode_cache"
            later("kmem_cache_free", i % 300 // 250, 0xffff888000000000 + 192 * i, name)
            if i % 157 == 0:
                tr.emit("mm_page_free", 0, 0x1000 + i, 0)
            if i % 211 == 0:
                tr.emit_pfns("mm_page_free", 1, range(0x2000 + i, 0x2010 + i), 0)
            if i % 90 == 0:
                later("kfree", 1, 0xffff888000100000 + 64 * i)
        tr.flush()

    twins = []
    for compact in (True, False):
        tr = Trace(Clock())
        tr.enable(("kmem_cache_free", "kfree", "mm_page_free"), True)
        tr.resize(12)
        script(tr, _later(tr) if compact else tr.emit)
        twins.append(tr)
    runs = [r for b in twins[0].bufs.values() for p in b.pages for r in p if len(r) == 8]
    assert any(r[2] == "kmem_cache_free" and len(r[3]) > 20 for r in runs)
    assert not any(len(r) == 8 and r[2] != "mm_page_free" for b in twins[1].bufs.values() for p in b.pages for r in p)
    got, want = ([tr.listing(), tr.total(), tr.written, [tr.stats(c) for c in (0, 1)]] for tr in twins)
    assert got == want
    reads = [[], []]
    for i in range(10 ** 6):
        chunks = [tr.read_pipe(SIZES[i % len(SIZES)]) for tr in twins]
        assert chunks[0] == chunks[1], i
        if not chunks[0]:
            break
        reads[0].append(chunks[0])
    text = b"".join(reads[0]).decode()
    assert "[LOST " in text and "kmem_cache_free" in text and "kfree" in text


def test_a_blocks_pieces_are_the_percent_format():
    """Trace._mids (a block of 256 pfns' "ptr pfn=" pieces, built from a template by hi & 3) is
    ``%010x pfn=%#x`` of each pfn's struct page offset and pfn, wherever the digits carry."""
    tr = Trace()
    for hi in (1, 2, 3, 4, 0xf, 0x10, 0xff, 0x100, 0x3ff, 0x400, 0x7fe, 0x12345, (1 << 26) - 1):
        p0 = hi << 8
        assert tr._mids(hi) == [b"%010x pfn=%#x" % (p * 64, p) for p in range(p0, p0 + 256)], hi
