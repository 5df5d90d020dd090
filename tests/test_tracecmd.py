"""trace-cmd record / report on the simulated tracefs (issue 29 §4).

* The format files say what the kernel's say: trace_entry's common fields, each event's fields at
  the offsets C gives them (worked out by hand below), the print fmt of a real kernel
  (tests/data/mm_page_alloc_print_fmt.txt), header_page and header_event of ring_buffer.c.
* per_cpu/cpuN/trace_pipe_raw serves buffer_data_page pages that a decoder written here from
  kernel/trace/ring_buffer.c (not the view's encoder) reads back into the simulated allocations:
  pfn and order from the ``allocations`` file, the gfp masks by hand, the timestamps of the text
  ``trace``; a gap of 2^27 ns or more takes a TIME_EXTEND; overwritten events set RB_MISSED_EVENTS
  with the count stats gives.
* Through ``procsim exec``, ``trace-cmd record -e kmem:mm_page_alloc CMD`` (CMD writing alloc
  commands to M/control) and ``trace-cmd report`` print exactly those allocations and no host event.
"""
from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path

import pytest

from procsim.machine import load
from procsim.session import Session
from procsim.testing import CONFIGS, procsim_cmd

T = "sys/kernel/tracing"
DATA = Path(__file__).parent / "data"
GFP_KERNEL = 0x400 | 0x800 | 0x40 | 0x80            # __GFP_RECLAIM | __GFP_IO | __GFP_FS (gfp_types.h)
GFP_HIGHUSER_MOVABLE = GFP_KERNEL | 0x100000 | 0x02 | 0x08   # | __GFP_HARDWALL | __GFP_HIGHMEM | __GFP_MOVABLE
MIGRATE_UNMOVABLE, MIGRATE_MOVABLE = 0, 1

# struct trace_entry {unsigned short type; unsigned char flags, preempt_count; int pid;} then
# mm_page_alloc's TP_STRUCT__entry {unsigned long pfn; unsigned int order; unsigned long gfp_flags;
# int migratetype;}: pfn at 8, order at 16, gfp_flags aligned to 8 after 20 -> 24, migratetype at 32
MM_PAGE_ALLOC_FIELDS = """\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:unsigned long pfn;\toffset:8;\tsize:8;\tsigned:0;
\tfield:unsigned int order;\toffset:16;\tsize:4;\tsigned:0;
\tfield:unsigned long gfp_flags;\toffset:24;\tsize:8;\tsigned:0;
\tfield:int migratetype;\toffset:32;\tsize:4;\tsigned:1;
"""
# kmem_cache_alloc: call_site 8, ptr 16, __string name (a u32 __data_loc) 24, bytes_req 32,
# bytes_alloc 40, gfp_flags 48, node 56, bool accounted 60
KMEM_CACHE_ALLOC_FIELDS = [("unsigned long", "call_site", 8, 8, 0), ("const void *", "ptr", 16, 8, 0),
                           ("__data_loc char[]", "name", 24, 4, 1), ("size_t", "bytes_req", 32, 8, 0),
                           ("size_t", "bytes_alloc", 40, 8, 0), ("unsigned long", "gfp_flags", 48, 8, 0),
                           ("int", "node", 56, 4, 1), ("bool", "accounted", 60, 1, 0)]
# ring_buffer_print_page_header() and ring_buffer_print_entry_header() on x86-64 (4096-byte pages)
HEADER_PAGE = ("\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n"
               "\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n"
               "\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n"
               "\tfield: char data;\toffset:16;\tsize:4080;\tsigned:1;\n")
HEADER_EVENT = ("# compressed entry header\n\ttype_len    :    5 bits\n\ttime_delta  :   27 bits\n"
                "\tarray       :   32 bits\n\n\tpadding     : type == 29\n\ttime_extend : type == 30\n"
                "\ttime_stamp : type == 31\n\tdata max type_len  == 28\n")


def session() -> Session:
    return Session(load(CONFIGS / "tiny.yaml"))


def run(s: Session, *lines: str) -> None:
    for r in s.execute(list(lines)):
        assert not r.errno, r.text


def fields_of(fmt: str) -> dict:
    """name -> (offset, size, signed), parsed from a format file's field lines."""
    out = {}
    for m in re.finditer(r"\tfield:(.*?) (\w+);\toffset:(\d+);\tsize:(\d+);\tsigned:(\d+);", fmt):
        out[m[2]] = (int(m[3]), int(m[4]), int(m[5]))
    return out


def decode_page(page: bytes, header_page: str) -> tuple[int, list[tuple[int, bytes]], int | None]:
    """(commit flags, [(timestamp, record)], missed count or None) of one buffer_data_page, by
    kernel/trace/ring_buffer.c's rules, the header's offsets taken from header_page."""
    hp = fields_of(header_page)
    assert len(page) == 4096
    ts = struct.unpack_from("<Q", page, hp["timestamp"][0])[0]
    commit = struct.unpack_from("<q", page, hp["commit"][0])[0]
    flags, length = commit & (3 << 30), commit & ((1 << 30) - 1)
    data = page[hp["data"][0]:]
    out, i = [], 0
    while i < length:
        word = struct.unpack_from("<I", data, i)[0]
        type_len, delta = word & 0x1f, word >> 5
        if type_len == 30:                           # RINGBUF_TYPE_TIME_EXTEND: array[0] has bits 27..
            ts += delta + (struct.unpack_from("<I", data, i + 4)[0] << 27)
            i += 8
            continue
        assert type_len not in (29, 31), type_len    # no padding, no absolute stamps expected
        ts += delta
        if type_len == 0:                            # array[0]: the length, itself included
            n = struct.unpack_from("<I", data, i + 4)[0]
            out.append((ts, data[i + 8:i + 4 + n]))
            i += 4 + n
        else:
            out.append((ts, data[i + 4:i + 4 + 4 * type_len]))
            i += 4 + 4 * type_len
    assert i == length
    missed = struct.unpack_from("<Q", data, length)[0] if flags & (1 << 30) else None
    return flags, out, missed


def pages(blob: bytes) -> list[bytes]:
    assert len(blob) % 4096 == 0
    return [blob[i:i + 4096] for i in range(0, len(blob), 4096)]


def value(rec: bytes, field) -> int:
    off, size, signed = field
    return int.from_bytes(rec[off:off + size], "little", signed=bool(signed))


def allocations(s: Session) -> list[tuple[int, int]]:
    """(pfn, order) of every page allocation the ``allocations`` file lists."""
    out = []
    for line in s.render("allocations").decode().splitlines()[1:]:
        cols = line.split()
        if cols[2] == "pages":
            out.append((int(cols[7]), int(cols[4])))
    return out


def trace_stamps(s: Session) -> list[int]:
    """The microsecond timestamps of the text ``trace`` (ftrace's SECS.USECS)."""
    return [int(m[1]) * 1_000_000 + int(m[2]) for m in re.finditer(r" (\d+)\.(\d{6}): ", s.render(f"{T}/trace").decode())]


def test_format_files_are_the_kernels():
    s = session()
    fmt = s.render(f"{T}/events/kmem/mm_page_alloc/format").decode()
    event_id = int(s.render(f"{T}/events/kmem/mm_page_alloc/id"))
    head, _, fmt_line = fmt.partition("\nprint fmt: ")
    assert head == f"name: mm_page_alloc\nID: {event_id}\nformat:\n" + MM_PAGE_ALLOC_FIELDS
    assert fmt_line.startswith((DATA / "mm_page_alloc_print_fmt.txt").read_text().rstrip("\n"))
    assert fmt_line.endswith(') : "none"\n')
    # show_gfp_flags' table: GFP_KERNEL and __GFP_ZEROTAGS (bit 23) with their values
    assert '{( unsigned long)(0xcc0), "GFP_KERNEL"}' in fmt_line
    assert '{( unsigned long)(0x800000), "__GFP_ZEROTAGS"}' in fmt_line
    kca = s.render(f"{T}/events/kmem/kmem_cache_alloc/format").decode()
    got = re.findall(r"\tfield:(.*?) (\w+);\toffset:(\d+);\tsize:(\d+);\tsigned:(\d+);", kca)[4:]
    assert [(c, n, int(o), int(z), int(g)) for c, n, o, z, g in got] == KMEM_CACHE_ALLOC_FIELDS
    assert s.render(f"{T}/events/header_page").decode() == HEADER_PAGE
    assert s.render(f"{T}/events/header_event").decode() == HEADER_EVENT
    ids = {int(s.render(f"{T}/events/{e}/id")) for e in s.render(f"{T}/available_events").decode().replace(":", "/").split()}
    assert len(ids) == 17                              # one id per event


def test_oom_format_files_are_the_real_kernels():
    """events/oom/{reclaim_retry_zone,mark_victim}/format as a real 6.1.176 guest prints them
    (tests/data/oracle/oom-formats-6.1.txt), but the ID and 6.18's rename of zone_idx to
    zone_type; a __string is signed like its char (``signed:1``, comm here, name in kmem)."""
    s = session()
    real = (DATA / "oracle" / "oom-formats-6.1.txt").read_text()
    for event in ("reclaim_retry_zone", "mark_victim"):
        want = real.split(f"@@@BEGIN fmt/{event}\n", 1)[1].split("@@@END", 1)[0].replace("zone_idx", "zone_type")
        got = s.render(f"{T}/events/oom/{event}/format").decode()
        strip = lambda f: re.sub(r"\nID: \d+\n", "\nID: #\n", f)
        assert strip(got) == strip(want)


def test_trace_pipe_raw_decodes_to_the_simulated_allocations():
    s = session()
    run(s, "tracefs events/kmem/mm_page_alloc/enable 1", "alloc_pages 2 gfp=GFP_KERNEL",
        "alloc_pages 0 count=3 gfp=GFP_HIGHUSER_MOVABLE")
    expect_ts = trace_stamps(s)
    fmt = fields_of(s.render(f"{T}/events/kmem/mm_page_alloc/format").decode())
    event_id = int(s.render(f"{T}/events/kmem/mm_page_alloc/id"))
    header = s.render(f"{T}/events/header_page").decode()
    got = []
    for cpu in range(2):
        for page in pages(s.render(f"{T}/per_cpu/cpu{cpu}/trace_pipe_raw")):
            flags, records, _ = decode_page(page, header)
            assert flags == 0
            got += [(ts, rec) for ts, rec in records]
    got.sort(key=lambda x: x[0])
    assert [value(r, fmt["common_type"]) for _, r in got] == [event_id] * 4
    assert [value(r, fmt["common_pid"]) for _, r in got] == [1] * 4           # init: untagged commands
    assert [(value(r, fmt["pfn"]), value(r, fmt["order"])) for _, r in got] == allocations(s)
    assert [value(r, fmt["gfp_flags"]) for _, r in got] == [GFP_KERNEL] + [GFP_HIGHUSER_MOVABLE] * 3
    assert [value(r, fmt["migratetype"]) for _, r in got] == [MIGRATE_UNMOVABLE] + [MIGRATE_MOVABLE] * 3
    assert [(ts + 500) // 1000 for ts, _ in got] == expect_ts     # ns2usecs() rounds
    # reading through the shell consumes, as trace_pipe does: the text trace is empty after
    data = b""
    for cpu in range(2):
        while chunk := s.read_pipe(f"{T}/per_cpu/cpu{cpu}/trace_pipe_raw", 4096)[1]:
            assert len(chunk) == 4096
            data += chunk
    assert sorted(rec for p in pages(data) for _, rec in decode_page(p, header)[1]) == sorted(r for _, r in got)
    assert trace_stamps(s) == []


def test_a_long_gap_takes_a_time_extend():
    """2^27 ns is 0.134 s: a second allocation 1 s later needs the upper bits in array[0]."""
    s = session()
    run(s, "tracefs events/kmem/mm_page_alloc/enable 1", "alloc_pages 0 gfp=GFP_KERNEL", "sleep 1s",
        "alloc_pages 0 gfp=GFP_KERNEL")
    expect_ts = trace_stamps(s)
    assert expect_ts[1] - expect_ts[0] >= 1_000_000
    blob = b"".join(s.render(f"{T}/per_cpu/cpu{c}/trace_pipe_raw") for c in range(2))
    assert len(blob) == 4096
    data = blob[16:]
    words = struct.unpack_from("<IIIIIIIIIIIIII", data, 0)
    assert words[0] & 0x1f == 10 and words[0] >> 5 == 0     # the first record: 40 bytes, delta 0
    assert words[11] & 0x1f == 30                             # then a time extend (4 + 40 bytes on)
    ts = [t // 1000 for t, _ in decode_page(blob, s.render(f"{T}/events/header_page").decode())[1]]
    assert ts == expect_ts


def test_overwritten_events_are_flagged_with_their_count():
    """buffer_size_kb=4: two pages a cpu; 400 events of 44 bytes overwrite all but the newest;
    the first page read says RB_MISSED_EVENTS and stores the overrun that stats reports."""
    s = session()
    run(s, "tracefs buffer_size_kb 4", "tracefs events/kmem/mm_page_alloc/enable 1",
        "alloc_pages 0 count=400 gfp=GFP_KERNEL")
    stats = s.render(f"{T}/per_cpu/cpu0/stats").decode()
    overrun = int(re.search(r"overrun: (\d+)", stats)[1])
    assert overrun > 0
    header = s.render(f"{T}/events/header_page").decode()
    first = s.read_pipe(f"{T}/per_cpu/cpu0/trace_pipe_raw", 4096)[1]
    flags, records, missed = decode_page(first, header)
    assert flags == 3 << 30 and missed == overrun and records
    second = s.read_pipe(f"{T}/per_cpu/cpu0/trace_pipe_raw", 4096)[1]
    assert second == b"" or decode_page(second, header)[0] == 0


def _exec(mp, *cmd, cwd=None):
    return subprocess.run(procsim_cmd("exec", mp, "--", *cmd), capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.mark.parametrize("flags", [[], ["--nosplice"]])
def test_trace_cmd_record_and_report_through_exec(mounted, tmp_path, flags):
    """record enables the event, runs a script that allocates through M/control, gathers the
    rings; report prints those allocations (pfn, order, migratetype, gfp) and nothing else.
    splice() on a FUSE file reads nothing (its page cache, st_size 0), so by default the data
    comes at record's final flush, which read()s; --nosplice reads throughout."""
    mp = mounted("tiny")
    dat = tmp_path / "trace.dat"
    # record forks a recorder per cpu and does not wait for them: a command that is over before
    # one has set its SIGUSR1 handler kills it when record stops them (strace: "killed by
    # SIGUSR1"; on a loaded machine 1 run in 10), and its cpu's events are never read -- on a
    # real kernel too.  The script gives them a second to start.
    script = (f"sleep 1 && echo 'alloc_pages 2 gfp=GFP_KERNEL' > {mp}/control && "
              f"echo 'alloc_pages 0 count=3 gfp=GFP_HIGHUSER_MOVABLE' > {mp}/control && "
              f"echo 'alloc_pages 1 gfp=GFP_HIGHUSER' > {mp}/control")
    r = _exec(mp, "trace-cmd", "record", *flags, "-e", "kmem:mm_page_alloc", "-o", str(dat), "sh", "-c", script,
              cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _exec(mp, "trace-cmd", "report", "-i", str(dat))
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if not ln.startswith("cpus=")]
    pat = re.compile(r" *init-1 +\[\d{3}\] +\d+\.\d{6}: mm_page_alloc: +page=0x[0-9a-f]+ pfn=0x([0-9a-f]+) "
                     r"order=(\d+) migratetype=(\d+) gfp_flags=(\S+)")
    got = [pat.fullmatch(ln) for ln in lines]
    assert all(got), lines
    rows = []
    for line in (mp / "allocations").read_text().splitlines()[1:]:
        cols = line.split()
        rows.append((int(cols[7]), int(cols[4])))
    assert [(int(m[1], 16), int(m[2])) for m in got] == rows
    assert [(int(m[3]), m[4]) for m in got] == ([(0, "GFP_KERNEL")] + [(1, "GFP_HIGHUSER_MOVABLE")] * 3
                                                + [(0, "GFP_HIGHUSER")])
    assert (mp / T / "events/kmem/mm_page_alloc/enable").read_text() == "0\n"    # record put it back


def test_a_string_field_is_a_data_loc_after_the_struct():
    """kmem_cache_alloc's __string(name): a u32 at the name field's offset, (length << 16) |
    offset from the record's start, the text and its NUL after the struct (64 bytes: the
    format's last field, bool accounted, ends at 61, rounded up to 8); call_site is the address
    ``kallsyms`` names."""
    s = session()
    run(s, "kmem_cache_create procsim_test 100", "tracefs events/kmem/kmem_cache_alloc/enable 1",
        "kmem_cache_alloc procsim_test tag=web")
    fmt = fields_of(s.render(f"{T}/events/kmem/kmem_cache_alloc/format").decode())
    header = s.render(f"{T}/events/header_page").decode()
    recs = [r for c in range(2) for p in pages(s.render(f"{T}/per_cpu/cpu{c}/trace_pipe_raw"))
            for _, r in decode_page(p, header)[1]]
    assert len(recs) == 1
    rec = recs[0]
    loc = value(rec, fmt["name"])
    assert (loc >> 16, loc & 0xffff) == (len("procsim_test") + 1, 64)
    assert rec[64:64 + (loc >> 16)] == b"procsim_test\0"
    assert value(rec, fmt["bytes_req"]) == 100
    addr, kind, name = s.render("kallsyms").decode().split()
    assert (value(rec, fmt["call_site"]), kind, name) == (int(addr, 16), "T", "procsim_control")
    comm = dict(line.split(" ", 1) for line in s.render(f"{T}/saved_cmdlines").decode().splitlines())
    assert comm[str(value(rec, fmt["common_pid"]))] == "web"


def test_trace_pipe_names_gfp_flags_as_show_gfp_flags_does():
    """__print_flags walks mmflags.h's table in order, a whole mask first: GFP_HIGHUSER
    (GFP_USER | __GFP_HIGHMEM) is named before GFP_USER, GFP_DMA32 after GFP_KERNEL, a bit
    left over by its own name -- the names trace-cmd report prints from the format file."""
    s = session()
    run(s, "tracefs events/kmem/mm_page_alloc/enable 1", "alloc_pages 0 gfp=GFP_HIGHUSER",
        "alloc_pages 0 gfp=GFP_KERNEL|GFP_DMA32", "alloc_pages 0 gfp=GFP_KERNEL|__GFP_NOWARN|__GFP_COMP")
    text = s.render(f"{T}/trace").decode()
    assert re.findall(r"gfp_flags=(\S+)", text) == ["GFP_HIGHUSER", "GFP_KERNEL|GFP_DMA32",
                                                     "GFP_KERNEL|__GFP_NOWARN|__GFP_COMP"]


def test_many_pages_carry_every_event_once():
    """600 order-0 pages: 44 bytes an event (4-byte header, 40-byte record) -> 92 to a page's
    4080 bytes, so 6 pages of 92 and one of 48; read through the pipe, in order, nothing lost."""
    s = session()
    run(s, "tracefs events/kmem/mm_page_alloc/enable 1", "alloc_pages 0 count=600 gfp=GFP_KERNEL")
    header = s.render(f"{T}/events/header_page").decode()
    fmt = fields_of(s.render(f"{T}/events/kmem/mm_page_alloc/format").decode())
    counts, pfns = [], []
    while chunk := s.read_pipe(f"{T}/per_cpu/cpu0/trace_pipe_raw", 4096)[1]:
        recs = decode_page(chunk, header)[1]
        counts.append(len(recs))
        pfns += [value(r, fmt["pfn"]) for _, r in recs]
    assert counts == [92] * 6 + [48]
    assert pfns == [pfn for pfn, _ in allocations(s)]


def test_trace_cmd_start_extract_stop_through_exec(mounted, tmp_path):
    """start enables the events and returns; an allocation from outside is recorded; extract
    reads trace_pipe_raw into a trace.dat that report prints; stop turns tracing_on off."""
    mp = mounted("tiny")
    r = _exec(mp, "trace-cmd", "start", "-e", "kmem:mm_page_alloc")
    assert r.returncode == 0, r.stderr
    assert (mp / T / "events/kmem/mm_page_alloc/enable").read_text() == "1\n"
    (mp / "control").write_text("alloc_pages 1 gfp=GFP_KERNEL\n")
    dat = tmp_path / "extract.dat"
    r = _exec(mp, "trace-cmd", "extract", "-o", str(dat), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _exec(mp, "trace-cmd", "report", "-i", str(dat))
    lines = [ln for ln in r.stdout.splitlines() if not ln.startswith("cpus=")]
    (pfn, order), = [(int(c[7]), int(c[4])) for c in (ln.split() for ln in (mp / "allocations").read_text().splitlines()[1:])]
    assert len(lines) == 1 and "mm_page_alloc: " in lines[0], lines
    assert f" pfn={pfn:#x} order={order} migratetype=0 gfp_flags=GFP_KERNEL" in lines[0]
    r = _exec(mp, "trace-cmd", "stop")
    assert r.returncode == 0 and (mp / T / "tracing_on").read_text() == "0\n"


WORKLOAD = ["kmem_cache_create foo 100", "kmem_cache_alloc foo count=50 tag=x", "kmalloc 512 count=300 tag=d",
            "alloc_pages 0 count=3000 use=anon tag=a", "alloc_pages 3 count=20 tag=b cpu=1",
            "alloc_pages 0 count=5000 use=anon gfp=GFP_HIGHUSER_MOVABLE tag=p",
            "alloc_pages 0 count=5000 use=anon gfp=GFP_HIGHUSER_MOVABLE tag=q",
            "alloc_pages 0 count=5000 use=anon gfp=GFP_HIGHUSER_MOVABLE tag=r", "sleep 2", "free_pages tag=a",
            "drain_pages", "kfree tag=d", "compact_memory", "kmem_cache_free foo tag=x"]
KV = re.compile(r"(\w+)=(\S+)")


def _fields(event: str, text: str) -> tuple:
    """An event's key=value fields, but page= (trace-cmd cannot evaluate vmemmap_base) and
    call_site= (%pS: the symbol with or without its size), ptr= as a number."""
    out = []
    for k, v in KV.findall(text):
        if k in ("page", "call_site"):
            continue
        out.append((k, int(v, 16) if k == "ptr" else v))
    return (event, *out)


# a line of `trace-cmd report` (no flags column) and of the text trace / trace_pipe
REPORT_LINE = re.compile(r" *\S+-(\d+) +\[(\d{3})\] +(\d+\.\d{6}): (\w+): +(?:\(\S+\) )?(.*)")
TRACE_LINE = re.compile(r" *\S+-(\d+) +\[(\d{3})\] \S{5} +(\d+\.\d{6}): (\w+): (.*)")


def _event(pattern: re.Pattern, ln: str) -> tuple:
    """(time, cpu, pid, event, fields...) of a report or trace line, which must be one."""
    m = pattern.fullmatch(ln)
    assert m, ln
    return (m[3], int(m[2]), int(m[1]), *_fields(m[4], m[5]))


def test_every_event_reads_back_as_trace_pipe_prints_it(mounted, tmp_path):
    """The kmem and vmscan events, recorded by trace-cmd (binary records, the format files' print fmt) over a
    workload with reclaim, swap, frees, drains and compaction, say what the text trace of the
    same commands says: the daemon's log lists every command it ran (trace-cmd's tracefs writes
    too), replayed in process on the same machine with the same clock."""
    cfg = tmp_path / "tinyswap.yaml"
    cfg.write_text((CONFIGS / "tiny.yaml").read_text() + "swap: 16MiB\n")
    mp = mounted(str(cfg.with_suffix("")), "--clock=virtual")
    script = " && ".join(f"echo '{c}' > {mp}/control" for c in WORKLOAD)
    dat = tmp_path / "all.dat"
    r = _exec(mp, "trace-cmd", "record", "-b", "40000", "-e", "kmem", "-e", "vmscan", "-o", str(dat),
              "sh", "-c", script, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _exec(mp, "trace-cmd", "report", "-i", str(dat))
    assert r.returncode == 0 and "FAILED TO PARSE" not in r.stdout, r.stderr
    got = [_event(REPORT_LINE, ln) for ln in r.stdout.splitlines()[1:]]
    commands = [ln.split(" ", 1)[1].rsplit(" -> ", 1)[0] for ln in (mp / "log").read_text().splitlines()]
    s = Session(load(cfg), clock="virtual")
    want = []
    for c in commands:
        if c.startswith(("tracefs trace ", "tracefs events/enable 0")):
            while chunk := s.read_pipe(f"{T}/trace_pipe", 1 << 16)[1]:
                want += [_event(TRACE_LINE, ln) for ln in chunk.decode().splitlines()]
        run(s, c)
    assert len(want) > 40000
    assert {w[3] for w in want} >= {"kmalloc", "kfree", "kmem_cache_alloc", "kmem_cache_free", "mm_page_alloc",
                                    "mm_page_free", "mm_page_alloc_zone_locked", "mm_page_pcpu_drain",
                                    "mm_vmscan_wakeup_kswapd", "mm_vmscan_kswapd_wake", "mm_vmscan_kswapd_sleep"}
    # the same events, field by field; the time to the microsecond: report and the text trace
    # both round the nanoseconds as the kernel's ns2usecs() does (+500)
    got.sort(key=lambda g: (g[1:], g[0]))
    want.sort(key=lambda w: (w[1:], w[0]))
    assert [g[1:] for g in got] == [w[1:] for w in want]
    assert {round((float(g[0]) - float(w[0])) * 1e6) for g, w in zip(got, want, strict=True)} == {0}


def test_oom_events_read_back_as_the_trace_file_prints_them(mounted, tmp_path):
    """oom:reclaim_retry_zone (zone= through __print_symbolic) and oom:mark_victim (comm, a
    __string) over an OOM kill: a task holds most of tiny, another's allocation retries reclaim
    and the OOM killer takes the holder.  trace-cmd start / extract / report (binary records
    through the format files) says what the text ``trace`` says, field by field."""
    cfg = tmp_path / "tinyswap.yaml"
    cfg.write_text((CONFIGS / "tiny.yaml").read_text() + "swap: 16MiB\n")
    mp = mounted(str(cfg.with_suffix("")), "--clock=virtual")
    r = _exec(mp, "trace-cmd", "start", "-e", "oom")
    assert r.returncode == 0, r.stderr
    for c in ("alloc_pages 0 count=16000 use=anon tag=big", "alloc_pages 0 count=4000 use=anon tag=small"):
        (mp / "control").write_text(c + "\n")
    want = [_event(TRACE_LINE, ln) for ln in (mp / T / "trace").read_text().splitlines() if not ln.startswith("#")]
    dat = tmp_path / "extract.dat"
    r = _exec(mp, "trace-cmd", "extract", "-o", str(dat), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _exec(mp, "trace-cmd", "report", "-i", str(dat))
    assert r.returncode == 0 and "FAILED TO PARSE" not in r.stdout, r.stderr
    assert [_event(REPORT_LINE, ln) for ln in r.stdout.splitlines()[1:]] == want
    retries = [dict(w[4:]) for w in want if w[3] == "reclaim_retry_zone"]
    assert len(retries) == 16 and {r["zone"] for r in retries} == {"DMA32"}
    assert [dict(w[4:])["comm"] for w in want if w[3] == "mark_victim"] == ["big"]
