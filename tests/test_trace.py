"""The kmem trace events: off by default, one event per operation, lines in the kernel's formats.

FORMATS below are the ``print fmt`` strings of a running 6.18 kernel's
/sys/kernel/tracing/events/kmem/*/format, turned into regular expressions by hand-written
rules (%p: 16 hex digits or (null), %lx: hex, %d: signed, %u/%zu: unsigned, %s and %pS:
a word), so a line the simulator prints must parse the way the kernel's would.
"""
from __future__ import annotations

import os
import re
import subprocess
import threading

import pytest

from procsim.harness import wait_for
from procsim.testing import CONFIGS, procsim_cmd
from procsim.machine import load
from procsim.session import Session

T = "sys/kernel/tracing"
FORMATS = {
    "mm_page_alloc": "page=%p pfn=0x%lx order=%d migratetype=%d gfp_flags=%s",
    "mm_page_alloc_zone_locked": "page=%p pfn=0x%lx order=%u migratetype=%d percpu_refill=%d",
    "mm_page_free": "page=%p pfn=0x%lx order=%d",
    "mm_page_free_batched": "page=%p pfn=0x%lx order=0",
    "mm_page_pcpu_drain": "page=%p pfn=0x%lx order=%d migratetype=%d",
    "mm_page_alloc_extfrag": "page=%p pfn=0x%lx alloc_order=%d fallback_order=%d pageblock_order=%d "
                             "alloc_migratetype=%d fallback_migratetype=%d fragmenting=%d change_ownership=%d",
    "kmalloc": "call_site=%pS ptr=%p bytes_req=%zu bytes_alloc=%zu gfp_flags=%s node=%d accounted=%s",
    "kfree": "call_site=%pS ptr=%p",
    "kmem_cache_alloc": "call_site=%pS ptr=%p name=%s bytes_req=%zu bytes_alloc=%zu gfp_flags=%s node=%d "
                        "accounted=%s",
    "kmem_cache_free": "call_site=%pS ptr=%p name=%s",
    "mm_vmscan_wakeup_kswapd": "nid=%d order=%d gfp_flags=%s",
    "mm_vmscan_kswapd_wake": "nid=%d order=%d",
    "mm_vmscan_kswapd_sleep": "nid=%d",
    "mm_vmscan_direct_reclaim_begin": "order=%d gfp_flags=%s",    # include/trace/events/vmscan.h
    "mm_vmscan_direct_reclaim_end": "nr_reclaimed=%lu",
}
CONV = {"%pS": r"\S+", "%p": r"[0-9a-f]{16}|\(null\)", "%lx": r"[0-9a-f]+", "%lu": r"\d+", "%d": r"-?\d+", "%u": r"\d+",
        "%zu": r"\d+", "%s": r"\S+"}
# ftrace's context: TASK-PID [CPU] flags TIMESTAMP: event: fields
LINE = re.compile(r" *(?P<task>\S+)-(?P<pid>\d+) +\[(?P<cpu>\d{3})\] (?P<flags>.{5}) +(?P<ts>\d+\.\d{6}): "
                  r"(?P<event>\w+): (?P<fields>.*)")


def field_regex(fmt: str) -> re.Pattern:
    out, i = "", 0
    while i < len(fmt):
        for conv in ("%pS", "%p", "%lx", "%lu", "%zu", "%d", "%u", "%s"):
            if fmt.startswith(conv, i):
                name = re.findall(r"(\w+)=(?:0x)?$", fmt[:i])[-1]
                out += f"(?P<{name}>{CONV[conv]})"
                i += len(conv)
                break
        else:
            out += re.escape(fmt[i])
            i += 1
    return re.compile(out)


REGEX = {e: field_regex(f) for e, f in FORMATS.items()}


def parse(text: str) -> list[tuple[str, dict]]:
    """Every line as (event, fields); fails on a line the kernel's formats do not describe."""
    out = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = LINE.fullmatch(line)
        assert m, line
        f = REGEX[m["event"]].fullmatch(m["fields"])
        assert f, line
        out.append((m["event"], f.groupdict()))
    return out


def session() -> Session:
    return Session(load(CONFIGS / "tiny.yaml"))


def run(s: Session, text: str):
    replies = s.execute_text(text)
    for r in replies:
        assert not r.errno, r.text
    return replies


def drain(s: Session) -> bytes:
    """trace_pipe read to the end through the core's API (what the shell's reads call)."""
    out = b""
    while chunk := s.read_pipe(f"{T}/trace_pipe", 1 << 16)[1]:
        out += chunk
    return out


def test_off_by_default_records_nothing():
    s = session()
    assert s.render(f"{T}/tracing_on") == b"1\n"
    assert s.render(f"{T}/events/kmem/enable") == b"0\n"
    run(s, "alloc_pages 0 count=50\nkmalloc 64 count=50")
    assert not s.kernel.trace.active and s.kernel.trace.written == 0
    assert s.render(f"{T}/trace_pipe") == b""
    assert "entries-in-buffer/entries-written: 0/0   #P:2" in s.render(f"{T}/trace").decode()


def test_one_event_per_operation_in_the_kernels_formats():
    s = session()
    s.write_view(f"{T}/events/kmem/enable", b"1\n")
    run(s, "alloc_pages 0 gfp=GFP_HIGHUSER_MOVABLE count=5 tag=p\nalloc_pages 3 tag=big\n"
           "kmalloc 100 count=7 tag=k\nkmem_cache_create things 200\nkmem_cache_alloc things count=3 tag=t")
    row = next(ln.split() for ln in s.render("allocations").decode().splitlines() if " big " in ln)
    run(s, "kfree tag=k\nkmem_cache_free things tag=t\nfree_pages tag=p\nfree_pages tag=big")
    listed = s.render(f"{T}/trace").decode()              # trace lists without consuming
    events = parse(drain(s).decode())
    assert parse(listed) == events
    count = {}
    for e, _ in events:
        count[e] = count.get(e, 0) + 1
    assert count["kmalloc"] == 7 and count["kfree"] == 7
    assert count["kmem_cache_alloc"] == 3 and count["kmem_cache_free"] == 3
    assert count["mm_page_free"] == 6
    movable = [f for e, f in events if e == "mm_page_alloc" and f["gfp_flags"] == "GFP_HIGHUSER_MOVABLE"]
    assert len(movable) == 5 and all(f["migratetype"] == "1" and f["order"] == "0" for f in movable)
    # the order-3 block: its pfn is the one the allocations file shows, and page= is its struct page
    big = next(f for e, f in events if e == "mm_page_alloc" and f["order"] == "3")
    assert int(big["pfn"], 16) == int(row[-2])
    assert int(big["page"], 16) == 0xffffea0000000000 + 64 * int(row[-2])
    things = [f for e, f in events if e == "kmem_cache_alloc"]
    assert {(f["name"], f["bytes_req"], f["node"], f["accounted"]) for f in things} == {("things", "200", "-1", "false")}
    assert [f["ptr"] for e, f in events if e == "kmem_cache_free"] == [f["ptr"] for f in things]
    assert drain(s) == b"" and s.render(f"{T}/trace_pipe") == b""     # consumed
    # consumed entries leave the ring, as in the kernel: trace lists nothing, nothing was lost
    assert "entries-in-buffer/entries-written: 0/0   #P:2" in s.render(f"{T}/trace").decode()
    assert parse(s.render(f"{T}/trace").decode()) == []


def test_task_pid_column_names_the_tag_and_time_is_the_simulated_clock():
    s = session()
    s.write_view(f"{T}/events/kmem/kmalloc/enable", b"1")
    s.write_view(f"{T}/events/kmem/kfree/enable", b"1")
    clock = [s.kernel.now_ns]
    for cmd in ("kmalloc 64 tag=first", "kmalloc 64 tag=second", "kmalloc 64", "kfree tag=first"):
        run(s, cmd)
        clock.append(s.kernel.now_ns)
    lines = [LINE.fullmatch(ln) for ln in s.render(f"{T}/trace").decode().splitlines() if not ln.startswith("#")]
    assert [(m["task"], m["pid"], m["event"]) for m in lines] == [
        ("first", "2", "kmalloc"), ("second", "3", "kmalloc"), ("init", "1", "kmalloc"), ("first", "2", "kfree")]
    for m, before, after in zip(lines, clock, clock[1:], strict=False):     # stamped while its command ran
        secs, usecs = (int(x) for x in m["ts"].split("."))
        assert before // 1000 <= secs * 10**6 + usecs <= after // 1000


def test_frees_are_traced_before_the_pages_they_give_back():
    """kfree() and kmem_cache_free() call their tracepoint before freeing (mm/slub.c, 6.1 and
    6.18): a large kmalloc's kfree comes before its mm_page_free, and so does the
    kmem_cache_free that empties a slab SLUB then discards."""
    s = session()
    s.write_view(f"{T}/events/kmem/enable", b"1\n")
    run(s, "kmalloc 20000 tag=big\nkmem_cache_create huge 300000\nkmem_cache_alloc huge count=40 tag=h")
    drain(s)
    run(s, "kfree tag=big\nkmem_cache_free huge tag=h")        # one object a slab: min_partial kept, the rest go
    events = [(e, f) for e, f in parse(drain(s).decode()) if e != "mm_page_pcpu_drain"]
    assert [e for e, _ in events[:2]] == ["kfree", "mm_page_free"], events[:2]
    # each discarded slab (one object a slab) after the kmem_cache_free of its object
    # (x86-64's direct map: pfn = (ptr - 0xffff888000000000) >> 12)
    seen, discarded = set(), 0
    for e, f in events[2:]:
        if e == "kmem_cache_free":
            seen.add((int(f["ptr"], 16) - 0xffff888000000000) >> 12)
        elif e == "mm_page_free":
            pfn = int(f["pfn"], 16)
            assert seen & set(range(pfn, pfn + (1 << int(f["order"])))), (pfn, f)
            discarded += 1
    assert discarded > 20


def test_per_event_enable_tracing_on_and_clear():
    s = session()
    s.write_view(f"{T}/events/kmem/kmalloc/enable", b"1")
    assert s.render(f"{T}/events/kmem/enable") == b"X\n"
    run(s, "kmalloc 32 count=4\nalloc_pages 0 count=2")
    assert [e for e, _ in parse(s.render(f"{T}/trace").decode())] == ["kmalloc"] * 4
    s.write_view(f"{T}/tracing_on", b"0\n")
    run(s, "kmalloc 32 count=4")
    assert s.kernel.trace.written == 4
    s.write_view(f"{T}/trace", b"\n")                         # echo > trace
    assert parse(s.render(f"{T}/trace").decode()) == []


@pytest.mark.parametrize("value", [b"2\n", b"yes", b""])
def test_bad_values_are_einval_and_change_nothing(value):
    from procsim.mm.errors import MMError
    s = session()
    with pytest.raises(MMError) as e:
        s.write_view(f"{T}/events/kmem/enable", value)
    assert e.value.errno == 22
    assert s.render(f"{T}/events/kmem/enable") == b"0\n" and not s.kernel.trace.active


def test_fallback_steal_prints_extfrag(tmp_path):
    """Unmovable allocations that exhaust their own pageblocks take from Movable ones:
    mm_page_alloc_extfrag says which order and type it fell back to."""
    s = session()
    s.write_view(f"{T}/events/kmem/mm_page_alloc_extfrag/enable", b"1")
    run(s, "alloc_pages 0 count=4000 tag=u")
    frags = [f for _, f in parse(s.render(f"{T}/trace").decode())]
    assert frags
    for f in frags:
        assert f["alloc_migratetype"] == "0" and f["fallback_migratetype"] in ("1", "2")
        assert f["pageblock_order"] == "9"
        assert f["fragmenting"] == str(int(int(f["fallback_order"]) < 9))


def test_vmscan_events_follow_kswapd():
    """A boosted zone wakes kswapd (mm_vmscan_wakeup_kswapd, in the caller's context); when the
    clock moves kswapd0 runs: mm_vmscan_kswapd_wake, balance, mm_vmscan_kswapd_sleep."""
    from procsim.testing import boot
    from procsim.mm import gfp as G
    from procsim.views.tracefs import render_trace
    k = boot("tiny")
    k.trace.enable(("mm_vmscan_wakeup_kswapd", "mm_vmscan_kswapd_wake", "mm_vmscan_kswapd_sleep"), True)
    z = k.zones[1]
    z.boost = 512
    k.wakeup_kswapd(z, G.GFP_KERNEL, 2, 1)
    k.sleep(200_000_000)                      # kswapd_sleep comes after kswapd_try_to_sleep's HZ/10 nap
    lines = [LINE.fullmatch(ln) for ln in render_trace(k).decode().splitlines() if not ln.startswith("#")]
    assert [(m["task"], m["event"], m["fields"]) for m in lines] == [
        ("init", "mm_vmscan_wakeup_kswapd", "nid=0 order=2 gfp_flags=GFP_KERNEL"),
        ("kswapd0", "mm_vmscan_kswapd_wake", "nid=0 order=2"),
        ("kswapd0", "mm_vmscan_kswapd_sleep", "nid=0")]
    parse(render_trace(k).decode())
    assert z.boost == 0


def test_direct_reclaim_events_bracket_the_pages_it_stole():
    """An allocation below min reclaims in its own context: mm_vmscan_direct_reclaim_begin with
    its order and gfp, end with nr_reclaimed: the LRU pages pgsteal_direct counted, plus any
    slab pages the shrinkers freed (reclaim_state)."""
    from procsim.testing import boot
    from procsim.mm import gfp as G
    from procsim.views.tracefs import render_trace
    k = boot("seed-vm")
    z = max(k.zones, key=lambda z: z.managed)
    while z.nr_free > z.wmark_min // 2:                    # __GFP_HIGH digs below min
        k.alloc_pages(0, G.__GFP_HIGH)
    k.trace.enable(("mm_vmscan_direct_reclaim_begin", "mm_vmscan_direct_reclaim_end"), True)
    k.alloc_pages(0, G.GFP_KERNEL)
    text = render_trace(k).decode()
    lines = [LINE.fullmatch(ln) for ln in text.splitlines() if not ln.startswith("#")]
    events = [(m["event"], m["fields"]) for m in lines]
    assert events[0] == ("mm_vmscan_direct_reclaim_begin", "order=0 gfp_flags=GFP_KERNEL")
    assert [e for e, _ in events] == ["mm_vmscan_direct_reclaim_begin", "mm_vmscan_direct_reclaim_end"] * (len(events) // 2)
    stolen = sum(int(f.split("=")[1]) for e, f in events if e == "mm_vmscan_direct_reclaim_end")
    assert stolen >= k.vm_events["pgsteal_direct"] >= 32   # SWAP_CLUSTER_MAX at least
    parse(text)


def in_group(pgid: int) -> list[int]:
    """Processes of process group pgid still there (zombies count as gone)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(pid))
    return out


class PipeReader(threading.Thread):
    """Reads trace_pipe with plain blocking read(2) calls until it has `want` lines (or EOF)."""

    def __init__(self, path, want):
        super().__init__(daemon=True)
        self.fd = os.open(path, os.O_RDONLY)
        self.want, self.text, self.reads = want, "", 0

    def run(self):
        try:
            while self.text.count("\n") < self.want:
                chunk = os.read(self.fd, 4096)
                self.reads += 1
                if not chunk:
                    return
                self.text += chunk.decode()
        finally:
            try:
                os.close(self.fd)
            except ConnectionAbortedError:      # the daemon is gone (the end-of-mount test)
                pass


def test_trace_pipe_blocks_until_events_and_loses_none_under_8_writers(mounted):
    """A reader started before any event waits (it is still reading, with nothing returned);
    8 concurrent writers' 400 kmallocs then reach it exactly once each."""
    mp = mounted("tiny")
    tdir = mp / T
    (tdir / "events/kmem/kmalloc/enable").write_text("1\n")
    fd = os.open(tdir / "trace_pipe", os.O_RDONLY | os.O_NONBLOCK)
    try:
        with pytest.raises(BlockingIOError):               # EAGAIN: nothing recorded yet
            os.read(fd, 4096)
    finally:
        os.close(fd)
    per_writer = 50
    reader = PipeReader(tdir / "trace_pipe", 8 * per_writer)
    reader.start()
    reader.join(1.0)
    assert reader.is_alive() and reader.reads == 0 and reader.text == ""     # blocked, not at EOF
    assert (mp / "zoneinfo").read_bytes()                  # other files answer meanwhile

    def writer(i):
        with open(mp / "control", "w") as f:
            for _ in range(per_writer):
                f.write(f"kmalloc 64 tag=w{i}\n")
                f.flush()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reader.join(60)
    assert not reader.is_alive(), reader.text.count("\n")
    seen = parse(reader.text)
    ptrs = [f["ptr"] for e, f in seen]
    assert len(ptrs) == 8 * per_writer and len(set(ptrs)) == len(ptrs)
    assert sorted(m["task"] for m in map(LINE.fullmatch, reader.text.splitlines())) == \
        sorted(f"w{i}" for i in range(8) for _ in range(per_writer))


def test_blocked_cat_through_exec_is_woken_by_a_control_write(mounted):
    """`cat /sys/kernel/tracing/trace_pipe` under procsim exec, started before any event,
    prints the event a later control write records; killed, it goes at once."""
    import select
    import signal
    mp = mounted("tiny")
    (mp / T / "events/kmem/kmalloc/enable").write_text("1\n")
    cat = subprocess.Popen(procsim_cmd("exec", mp, "--", "cat", "/sys/kernel/tracing/trace_pipe"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert not select.select([cat.stdout], [], [], 3.0)[0] and cat.poll() is None   # waiting
        (mp / "control").write_text("kmalloc 64 tag=late\n")
        assert select.select([cat.stdout], [], [], 30.0)[0], "cat was not woken"
        line = cat.stdout.readline().decode()
        assert [(e, LINE.fullmatch(line.rstrip("\n"))["task"]) for e, _ in parse(line)] == [("kmalloc", "late")]
        os.killpg(cat.pid, signal.SIGKILL)    # cat's next read is blocked: the daemon must answer
        cat.wait(30)                          # FUSE_INTERRUPT, or cat stays in D state for ever
        assert wait_for(lambda: not in_group(cat.pid), 20), "the killed cat still waits for its read"
        (mp / "control").write_text("kmalloc 64 tag=after\n")   # nobody reads: it stays in the ring
        fd = os.open(mp / T / "trace_pipe", os.O_RDONLY | os.O_NONBLOCK)
        try:
            assert [LINE.fullmatch(ln)["task"] for ln in os.read(fd, 1 << 16).decode().splitlines()] == ["after"]
        finally:
            os.close(fd)
    finally:
        if cat.poll() is None:
            os.killpg(cat.pid, signal.SIGKILL)
            cat.wait()
        cat.stdout.close()
        cat.stderr.close()


@pytest.mark.parametrize("how", ["unmount", "sigterm"])
def test_a_blocked_reader_does_not_hold_up_the_end_of_the_mount(how):
    """With a reader blocked on trace_pipe, unmounting (fusermount -u is busy, so the harness
    detaches lazily) or SIGTERM ends the read at EOF and the daemon exits by itself, long
    before the harness would kill it."""
    from procsim.testing import reader_ended_by_the_mount

    def start(mp):
        reader = PipeReader(mp / T / "trace_pipe", 1)
        reader.start()
        return reader
    reader = reader_ended_by_the_mount(start, how)
    assert reader.text == ""


def test_bulk_order0_work_is_traced_page_by_page():
    """count=K order-0 work is done in runs of pages (docs/DESIGN.md), traced or not; the runs
    emit every page's mm_page_alloc and mm_page_free line, and the pfns are those an untraced
    machine hands out."""
    traced, plain = session(), session()
    traced.write_view(f"{T}/events/kmem/mm_page_alloc/enable", b"1")
    traced.write_view(f"{T}/events/kmem/mm_page_free/enable", b"1")
    for s in (traced, plain):
        run(s, "alloc_pages 0 gfp=GFP_HIGHUSER_MOVABLE count=3000 tag=bulk")
    events = parse(traced.render(f"{T}/trace").decode())
    allocs = [f for name, f in events if name == "mm_page_alloc"]
    assert len(allocs) == 3000
    assert traced.render("allocations") == plain.render("allocations")
    run(traced, "free_pages tag=bulk")
    frees = [f for name, f in parse(traced.render(f"{T}/trace").decode()) if name == "mm_page_free"]
    assert len(frees) == 3000
