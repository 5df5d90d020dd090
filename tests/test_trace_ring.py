"""Tracing observes and never steers; its rings are bounded and say what they lost.

* The same commands leave the same state traced or not: the order-0 runs emit every page's
  events themselves (in the per-page path's order), and the runs path equals the per-page
  path under swap pressure too (a run that finds swap nearly full swaps what fits and keeps
  the rest, as each page's own folio would).
* Trace enables are part of the machine: a write to a tracefs knob is journaled as the
  ``tracefs`` command, and a journal written while tracing replays to the same bytes.
* The rings are the kernel's: buffer_size_kb per cpu in BUF_PAGE_SIZE pages, overwrite mode,
  per_cpu/cpuN/stats, and ``CPU:N [LOST M EVENTS]`` for a reader that fell behind.

Golden numbers come from the kernel's arithmetic (kernel/trace/ring_buffer.c,
kernel/trace/trace.c), worked out by hand in the comments, not from the code under test.
"""
from __future__ import annotations

import random
import re

import pytest

from procsim import machine as M
from procsim.control import Control
from procsim.mm.check import check, state_digest
from procsim.mm.kernel import Kernel
from procsim.mm.trace import EVENTS, Trace
from procsim.session import Session
from procsim.testing import CONFIGS
from procsim.views import files

T = "sys/kernel/tracing"
TINY_SWAP = (CONFIGS / "tiny.yaml").read_text() + "swap: 16MiB\n"
FILL = "alloc_pages 0 count=5000 use=anon gfp=GFP_HIGHUSER_MOVABLE tag={}"
# the sequence of the reliability issue: three fills, a kmalloc batch, another fill (swap runs out)
SWAP_SEQUENCE = [FILL.format("a"), FILL.format("b"), FILL.format("c"), "kmalloc 512 count=2000 tag=d",
                 FILL.format("e")]


def trio(src: str):
    """runs untraced, runs with every event on, the per-page reference with every event on."""
    m = M.loads(src)
    out = Control(lambda: Kernel(m)), Control(lambda: Kernel(m)), Control(lambda: Kernel(m, page_runs=False))
    for c in out[1:]:
        c.kernel.trace.enable(EVENTS, True)
    return m, out


def lines(k) -> list[str]:
    return [Trace.line(e, c) for c, e, _ in k.trace.consume()]


def meminfo(m, k, keys=("Active:", "Inactive:", "SwapFree:")) -> list[str]:
    text = files(m)["meminfo"].render(k).decode()
    return [ln for ln in text.splitlines() if ln.startswith(keys)]


def test_swap_running_out_inside_a_fill_is_the_same_traced_or_not():
    m, (plain, traced, pages) = trio(TINY_SWAP)
    for line in SWAP_SEQUENCE:
        replies = {(r.errno, r.text) for r in (c.run(line) for c in (plain, traced, pages))}
        assert len(replies) == 1 and not replies.pop()[0], line
        a, b = lines(traced.kernel), lines(pages.kernel)
        assert a == b, line
        assert state_digest(plain.kernel) == state_digest(traced.kernel) == state_digest(pages.kernel), line
    # swap is full (16 MiB less the header page: 4095 slots) and the later anon stays on the LRU
    assert meminfo(m, plain.kernel) == meminfo(m, traced.kernel) == meminfo(m, pages.kernel)
    assert "SwapFree:              0 kB" in meminfo(m, plain.kernel)
    assert plain.kernel.vm_events["pswpout"] == 4095
    for c in (plain, traced, pages):
        check(c.kernel)


@pytest.mark.parametrize("seed", [31, 32])
def test_random_scripts_under_swap_pressure_emit_the_per_page_events(seed):
    """The pressure scripts of test_page_runs on a small machine whose swap runs out: every
    event on, the runs path prints the per-page path's lines, line for line, and both leave
    the untraced state."""
    from test_page_runs import pressure_script
    m, (plain, traced, pages) = trio(TINY_SWAP)
    rnd = random.Random(seed)
    n = 0
    for line in pressure_script(rnd, plain.kernel, 30, 9000):
        r = [c.run(line) for c in (plain, traced, pages)]
        assert len({(x.errno, x.text) for x in r}) == 1, line
        a, b = lines(traced.kernel), lines(pages.kernel)
        assert a == b, line
        n += len(a)
        assert state_digest(plain.kernel) == state_digest(traced.kernel) == state_digest(pages.kernel), line
    assert n > 1000 and plain.kernel.vm_events.get("pswpout", 0) > 0


def test_bulk_runs_emit_each_pages_events_in_order():
    """count=K order-0 work stays in runs while traced: each page still has its
    mm_page_alloc (in the pfn order the allocations listing shows) and, freed, its mm_page_free;
    the refills' mm_page_alloc_zone_locked come before the pages they brought."""
    m, (plain, traced, pages) = trio((CONFIGS / "tiny.yaml").read_text())
    for c in (plain, traced, pages):
        c.run("alloc_pages 0 gfp=GFP_HIGHUSER_MOVABLE count=3000 tag=bulk")
    got = lines(traced.kernel)
    assert got == lines(pages.kernel)
    allocs = [ln for ln in got if "mm_page_alloc:" in ln]
    assert len(allocs) == 3000
    first_alloc = next(i for i, ln in enumerate(got) if "mm_page_alloc:" in ln)
    assert "mm_page_alloc_zone_locked:" in got[0] and first_alloc > 0
    assert state_digest(plain.kernel) == state_digest(traced.kernel)
    for c in (plain, traced, pages):
        c.run("free_pages tag=bulk")
    got = lines(traced.kernel)
    assert got == lines(pages.kernel)
    assert sum("mm_page_free:" in ln for ln in got) == 3000
    assert state_digest(plain.kernel) == state_digest(traced.kernel) == state_digest(pages.kernel)


# ---- journaled ---------------------------------------------------------------------------------------
def test_tracefs_writes_are_journaled_and_replay_to_the_same_bytes(tmp_path):
    m = M.loads(TINY_SWAP)
    journal = tmp_path / "journal"
    s = Session(m, state=journal)
    try:
        s.write_view(f"{T}/events/kmem/enable", b"1\n")
        s.write_view(f"{T}/events/vmscan/mm_vmscan_kswapd_wake/enable", b"1\n")
        s.write_view(f"{T}/buffer_size_kb", b"64\n")
        for line in SWAP_SEQUENCE:
            assert not s.execute([line])[-1].errno, line
        s.execute(["touch tag=a"])                        # swap-in under pressure: the OOM killer kills a
        for line in ("free_pages tag=b", "sleep 1"):
            assert not s.execute([line])[-1].errno, line
        before = {p: s.render(p) for p in s.paths() if p != "control"}
    finally:
        s.close()
    text = journal.read_text()
    assert "tracefs events/kmem/enable 1\n" in text and "tracefs buffer_size_kb 64\n" in text
    again = Session(m, state=journal)
    try:
        after = {p: again.render(p) for p in again.paths() if p != "control"}
    finally:
        again.close()
    for p in before:
        if p not in ("log",):
            assert before[p] == after[p], p
    # 64 kB asks DIV_ROUND_UP(65536, 4080) = 17 pages: 17 * 4080 = 69360 >> 10 = 67
    assert after[f"{T}/events/kmem/enable"] == b"1\n" and after[f"{T}/buffer_size_kb"] == b"67\n"


def test_a_bad_tracefs_write_is_einval_and_not_journaled(tmp_path):
    from procsim.mm.errors import MMError
    m = M.loads(TINY_SWAP)
    journal = tmp_path / "journal"
    s = Session(m, state=journal)
    try:
        size = journal.stat().st_size
        for path, value in (("events/kmem/enable", b"2\n"), ("buffer_size_kb", b"0\n"), ("tracing_on", b"x")):
            with pytest.raises(MMError) as e:
                s.write_view(f"{T}/{path}", value)
            assert e.value.errno == 22
        assert journal.stat().st_size == size
        assert s.render(f"{T}/events/kmem/enable") == b"0\n"
        assert s.render(f"{T}/buffer_size_kb") == b"7 (expanded: 1408)\n"
    finally:
        s.close()


def test_tracing_costs_no_simulated_time():
    m, (plain, traced, _) = trio((CONFIGS / "tiny.yaml").read_text())
    plain.run("alloc_pages 0 count=10")
    traced.run("tracefs events/kmem/enable 0")
    traced.run("tracefs events/kmem/enable 1")
    traced.run("alloc_pages 0 count=10")
    assert traced.kernel.now_ns == plain.kernel.now_ns


# ---- bounded rings -----------------------------------------------------------------------------------
def test_buffer_size_kb_as_the_kernel_reads_it():
    """At boot the rings are minimal, 2 pages of BUF_PAGE_SIZE = 4096 - 16 = 4080 bytes:
    8160 >> 10 = 7, "7 (expanded: 1408)" (trace_buf_size 1441792 >> 10).  Enabling an event
    expands them: DIV_ROUND_UP(1441792, 4080) = 354 pages, 354 * 4080 = 1444320 >> 10 = 1410."""
    s = Session(M.load(CONFIGS / "tiny.yaml"))
    assert s.render(f"{T}/buffer_size_kb") == b"7 (expanded: 1408)\n"
    assert s.render(f"{T}/buffer_total_size_kb") == b"14 (expanded: 2816)\n"
    assert s.render(f"{T}/per_cpu/cpu1/buffer_size_kb") == b"7\n"
    s.write_view(f"{T}/events/kmem/mm_page_alloc/enable", b"1")
    assert s.render(f"{T}/buffer_size_kb") == b"1410\n"
    assert s.render(f"{T}/buffer_total_size_kb") == b"2820\n"
    s.write_view(f"{T}/per_cpu/cpu1/buffer_size_kb", b"100")   # 26 pages: 106080 >> 10 = 103
    assert s.render(f"{T}/per_cpu/cpu1/buffer_size_kb") == b"103\n"
    assert s.render(f"{T}/buffer_size_kb") == b"X\n"


STATS = re.compile(r"entries: (\d+)\noverrun: (\d+)\ncommit overrun: 0\nbytes: (\d+)\n"
                   r"oldest event ts: +(\d+)\.(\d{6})\nnow ts: +(\d+)\.(\d{6})\ndropped events: 0\nread events: (\d+)\n")


def test_a_full_ring_overwrites_its_oldest_pages_and_the_reader_is_told():
    """mm_page_alloc's record: trace_entry (8) + pfn (8) + order (4, then 4 of padding) +
    gfp_flags (8) + migratetype (4) = 36, padded to 40; with the 4-byte event header 44
    bytes, so 4080 // 44 = 92 events a page.  buffer_size_kb 4: DIV_ROUND_UP(4096, 4080) = 2
    pages.  1000 events in one command (one timestamp: no time extends) fill 10 pages and 80
    events; the ring keeps the last 2 pages: 92 + 80 = 172 entries, 828 overrun, bytes
    172 * 44 = 7568."""
    s = Session(M.load(CONFIGS / "tiny.yaml"))
    s.write_view(f"{T}/buffer_size_kb", b"4")
    s.write_view(f"{T}/events/kmem/mm_page_alloc/enable", b"1")
    assert s.render(f"{T}/buffer_size_kb") == b"7\n"
    assert not s.execute(["alloc_pages 0 count=1000 tag=x"])[-1].errno
    st = STATS.fullmatch(s.render(f"{T}/per_cpu/cpu0/stats").decode())
    assert st, s.render(f"{T}/per_cpu/cpu0/stats")
    assert (st[1], st[2], st[3], st[8]) == ("172", "828", "7568", "0")
    assert "entries-in-buffer/entries-written: 172/1000   #P:2" in s.render(f"{T}/trace").decode()
    text = b""
    while chunk := s.read_pipe(f"{T}/trace_pipe", 4096)[1]:
        text += chunk
    got = text.decode().splitlines()
    assert got[0] == "CPU:0 [LOST 828 EVENTS]" and len(got) == 173
    assert sum("[LOST" in ln for ln in got) == 1
    # the newest 172 pfns of the 1000 the allocations listing shows
    st = STATS.fullmatch(s.render(f"{T}/per_cpu/cpu0/stats").decode())
    assert (st[1], st[2], st[3], st[8]) == ("0", "828", "0", "172")
    # nothing lost since: the next read has no LOST line
    assert not s.execute(["alloc_pages 0 count=5 tag=y"])[-1].errno
    assert "LOST" not in s.read_pipe(f"{T}/trace_pipe", 1 << 16)[1].decode()


def test_a_reader_that_keeps_up_receives_every_event():
    """on_page is the core's hook for a shell to wake readers while a command runs: a reader
    draining at every new page of a 12000-page fill and its free with every event on, through a ring far
    smaller than the command's events, loses nothing."""
    s = Session(M.load(CONFIGS / "tiny.yaml"))
    s.write_view(f"{T}/buffer_size_kb", b"8")
    s.write_view(f"{T}/events/enable", b"1")
    tr = s.kernel.trace
    got = []

    def reader():
        while chunk := tr.read_pipe(1 << 16):
            got.append(chunk)
    tr.on_page = reader
    assert not s.execute(["alloc_pages 0 count=12000 use=anon gfp=GFP_HIGHUSER_MOVABLE tag=x",
                          "free_pages tag=x"])[-1].errno
    reader()
    text = b"".join(got).decode()
    assert "LOST" not in text
    assert text.count("\n") == tr.written > 24000
    assert sum(b.overrun for b in tr.bufs.values()) == 0


def test_available_events_are_the_simulated_ones():
    """available_events lists system:event, one a line (what `trace-cmd list -e` prints):
    the kmem, vmscan and oom events the simulation records, nothing of the host."""
    s = Session(M.load(CONFIGS / "tiny.yaml"))
    listed = s.render(f"{T}/available_events").decode().splitlines()
    assert "kmem:mm_page_alloc" in listed and "vmscan:mm_vmscan_kswapd_wake" in listed
    assert {ln.split(":")[0] for ln in listed} == {"kmem", "vmscan", "oom"} and len(listed) == len(EVENTS) == 17
    for ln in listed:                                 # each has its enable file
        sub, event = ln.split(":")
        assert s.render(f"{T}/events/{sub}/{event}/enable") == b"0\n"


def test_a_reader_thread_without_the_core_lock_gets_each_event_once_or_is_told():
    """The shell's contract (docs/DESIGN.md, "Trace ring"): with a real Trace.lock a reader
    thread drains trace_pipe while a command records, holding no other lock.  Every event is
    either received once, in order, or counted in a LOST line, and the counts add up."""
    import threading
    s = Session(M.load(CONFIGS / "tiny.yaml"))
    s.write_view(f"{T}/buffer_size_kb", b"8")
    s.write_view(f"{T}/events/kmem/enable", b"1")
    tr = s.kernel.trace
    tr.lock = threading.Lock()
    ready, done = threading.Condition(), threading.Event()
    tr.on_page = lambda: ready.acquire(blocking=False) and (ready.notify(), ready.release())
    got, errors = [], []

    def reader():
        try:
            while True:
                with ready:
                    ready.wait(0.01)
                while chunk := tr.read_pipe(1 << 14):
                    got.append(chunk)
                if done.is_set() and not tr.entries():
                    return
        except BaseException as e:                    # pragma: no cover - reported below
            errors.append(e)
    t = threading.Thread(target=reader)
    t.start()
    try:
        for line in ("alloc_pages 0 count=6000 tag=x", "kmalloc 64 count=3000 tag=y", "free_pages tag=x",
                     "kfree tag=y"):
            assert not s.execute([line])[-1].errno, line
    finally:
        done.set()
        t.join(60)
    assert not errors and not t.is_alive()
    text = b"".join(got).decode()
    lost = sum(int(m) for m in re.findall(r"^CPU:\d+ \[LOST (\d+) EVENTS\]$", text, re.M))
    received = [ln for ln in text.splitlines() if not ln.startswith("CPU:")]
    assert len(received) + lost == tr.written > 15000
    assert lost == sum(b.overrun for b in tr.bufs.values())
    pfns = [ln for ln in received if " mm_page_alloc: " in ln]
    assert len(pfns) == len(set(pfns))                # none twice


def test_the_tracefs_command_checks_what_it_sets():
    import errno
    c = Control(lambda: Kernel(M.load(CONFIGS / "tiny.yaml")))
    assert c.run("tracefs events/kmem/mm_page_alloc/enable 1").text == "ok"
    assert c.kernel.trace.enabled["mm_page_alloc"] and c.kernel.trace.active
    for line, code in (("tracefs events/kmem/enable 2", errno.EINVAL), ("tracefs buffer_size_kb 0", errno.EINVAL),
                       ("tracefs per_cpu/cpu2/buffer_size_kb 8", errno.EACCES),     # tiny has cpus 0 and 1
                       ("tracefs events/kmem/nope/enable 1", errno.EACCES), ("tracefs available_events 1", errno.EACCES),
                       ("tracefs tracing_on", errno.EINVAL)):
        assert c.run(line).errno == code, line
    assert c.kernel.trace.enabled["mm_page_alloc"] and not c.kernel.trace.enabled["kmalloc"]
    c.run("alloc_pages 0 count=3")
    assert c.kernel.trace.entries() == 3          # only mm_page_alloc is on: one a page


def test_a_lost_notice_that_does_not_fit_a_read_starts_the_next_one():
    """The kernel peeks the lost count with the entry (rb_lost_events) and consumes neither when
    the LOST line and the entry's line do not fit the read (tracing_read_pipe rolls back a
    partial line): the next read starts with the notice.  Before this it was lost."""
    def machine():
        c = Control(lambda: Kernel(M.loads((CONFIGS / "tiny.yaml").read_text())))
        for cmd in ("tracefs per_cpu/cpu1/buffer_size_kb 1", "tracefs events/kmem/kmalloc/enable 1",
                    "kmalloc 64 count=5 cpu=0", "kmalloc 64 count=2000 cpu=1"):
            assert not c.run(cmd).errno, cmd
        return c.kernel.trace
    tr = machine()
    lost = tr.bufs[1].overrun
    assert lost > 0
    first5 = b"".join(machine().read_pipe(1 << 20).splitlines(keepends=True)[:5])
    got = tr.read_pipe(len(first5) + 40)             # cpu 0's five lines; the notice + a line do not fit
    assert got == first5
    nxt = tr.read_pipe(1 << 20)
    assert nxt.startswith(f"CPU:1 [LOST {lost} EVENTS]\n".encode())
    assert b"[LOST" not in tr.read_pipe(1 << 20)
