"""Hostile input to ``control``: every bad line gets its errno and a message, in the reply and
in the log, and leaves the whole state (``state_digest``) and the allocation book unchanged.

The write-level cases (10 MB writes, a 1 MB line, NUL bytes, non-UTF-8) go through a real
mount; the daemon's peak memory must not grow with them.  A seeded fuzzer and a hypothesis
test (both bounded by a fixed number of examples) throw random lines at the interpreter.
"""
from __future__ import annotations

import errno as E
import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from procsim.testing import CONFIGS



@pytest.fixture(scope="module")
def tiny():
    from procsim import machine
    return machine.load(CONFIGS / "tiny.yaml")


@pytest.fixture
def ctl(tiny):
    """tiny with something of everything allocated: pages 1-2, kmalloc 3, cache objects 4-5."""
    from procsim.control import Control
    from procsim.mm.kernel import Kernel
    c = Control(lambda: Kernel(tiny))
    for line, want in [("alloc_pages 1 count=2 tag=p", "ok 1-2"), ("kmalloc 100 tag=k", "ok 3"),
                       ("kmem_cache_create alpha 64", None), ("kmem_cache_create beta 64", None),
                       ("kmem_cache_alloc alpha count=2 tag=a", "ok 4-5"), ("kfree 3", "ok freed 1")]:
        r = c.run(line)
        assert r.errno == 0 and (want is None or r.text == want), r.text
    return c


def snapshot(c):
    from procsim.mm.check import state_digest
    return state_digest(c.kernel), c.render_allocations(), c.next_id, [x.name for x in c.kernel.slab.caches]


HOSTILE = [
    ("garbage", E.EINVAL, "unknown command"),
    ("rm -rf /", E.EINVAL, "unknown command"),
    ("ALLOC_PAGES 0", E.EINVAL, "unknown command"),
    ("alloc_pages", E.EINVAL, "expected ORDER"),
    ("alloc_pages 0 1", E.EINVAL, "expected ORDER"),
    ("kmem_cache_create onlyname", E.EINVAL, "expected NAME SIZE"),
    ("kmem_cache_free alpha", E.EINVAL, "expected NAME ID"),
    ("drop_caches now", E.EINVAL, "expected no arguments"),
    ("help me", E.EINVAL, "usage: drop_caches | drain_pages | reset | help"),
    ("reset 1", E.EINVAL, "expected no arguments"),
    ("alloc_pages 11", E.EINVAL, "0..10"),
    ("alloc_pages -1", E.EINVAL, "0..10"),
    ("alloc_pages 0 count=1000000000000", E.EINVAL, "count must be"),
    ("alloc_pages 0 count=0", E.EINVAL, "count must be"),
    ("alloc_pages 0 count=-5", E.EINVAL, "count must be"),
    ("alloc_pages 0 bogus=1", E.EINVAL, "unknown option"),
    ("alloc_pages 0 tag=a tag=b", E.EINVAL, "given twice"),
    ("alloc_pages 0 node=1", E.EINVAL, "node must be"),
    ("alloc_pages 0 cpu=2", E.EINVAL, "cpu must be"),
    ("alloc_pages 0 gfp=GFP_BOGUS", E.EINVAL, "unknown gfp flag"),
    ("alloc_pages 0 gfp=GFP_DMA|GFP_DMA32", E.EINVAL, "GFP_ZONE_BAD"),
    ("alloc_pages 0 tag=" + "x" * 65, E.EINVAL, "bad tag"),
    ("alloc_pages \u0663", E.EINVAL, "must be a number"),        # an Arabic-Indic 3, not ID/order 3
    ("free_pages \u0661", E.EINVAL, "bad ID"),
    ("kmalloc 0", E.EINVAL, "1..1GiB"),
    ("kmalloc -1", E.EINVAL, "not a size"),
    ("kmalloc 18446744073709551616", E.EINVAL, "1..1GiB"),          # 2^64
    ("kmalloc 1e3", E.EINVAL, "not a size"),
    ("kmem_cache_create big 2GiB", E.EINVAL, "1..1GiB"),
    ("kmem_cache_create gamma 64 align=3", E.EINVAL, "align"),
    ("kmem_cache_create gamma 64 flags=SLAB_NONSENSE", E.EINVAL, "slab flag"),
    ("kmem_cache_create alpha 64", E.EEXIST, "exists"),
    ("kmem_cache_create bad:name 64", E.EINVAL, "bad cache name"),
    ("alloc_pages 0\x00", E.EINVAL, "control character"),
    ("\x00\x00\x00", E.EINVAL, "control character"),
    ("kmalloc 64\x1b[2J", E.EINVAL, "control character"),
    ("alloc_pages 10 count=1000", E.ENOMEM, "made were freed"),    # tiny has < 64 MiB
    ("free_pages 999", E.ENOENT, "no live allocation with ID 999"),
    ("free_pages 3", E.ENOENT, "ID 3"),                                    # freed already: double free
    ("kfree 3", E.ENOENT, "ID 3"),
    ("free_pages 1-9", E.ENOENT, "ID 3"),                                  # a range over a hole: nothing freed
    ("free_pages 5-4", E.EINVAL, "bad ID range"),
    ("free_pages 1-99999999999", E.EINVAL, "bad ID range"),
    ("free_pages 99999999999999999999999", E.ENOENT, "no live allocation"),
    ("free_pages tag=nosuch", E.ENOENT, "tagged 'nosuch'"),
    ("free_pages 1 tag=p", E.EINVAL, "usage: free_pages ID | free_pages tag=NAME"),
    ("kfree 1", E.EINVAL, "pages allocation"),
    ("free_pages 4", E.EINVAL, "slab of alpha"),
    ("kmem_cache_free beta 4", E.EINVAL, "not beta"),                      # another cache's object
    ("kmem_cache_free beta tag=a", E.ENOENT, "in beta"),
    ("kmem_cache_free nosuch 4", E.ENOENT, "no kmem_cache"),
    ("kmem_cache_alloc nosuch", E.ENOENT, "no kmem_cache"),
    ("kmem_cache_alloc kmem_cache_node", E.EPERM, "SLUB's own"),
    ("kmem_cache_alloc kmem_cache", E.EPERM, "SLUB's own"),
    ("kmem_cache_destroy alpha", E.EBUSY, ""),
    ("kmem_cache_destroy kmem_cache", E.EPERM, ""),
    ("kmem_cache_destroy nosuch", E.ENOENT, "no kmem_cache"),
    ("kmem_cache_shrink nosuch", E.ENOENT, "no kmem_cache"),
    ("x" * 5000, E.EINVAL, "longer than"),
]


@pytest.mark.parametrize("line,code,text", HOSTILE, ids=[repr(h[0])[:40] for h in HOSTILE])
def test_hostile_line_is_refused_with_errno_and_changes_nothing(ctl, line, code, text):
    from procsim.control import LOGGED_CHARS
    before = snapshot(ctl)
    free_before = free_and_pcp(ctl.kernel)
    r = ctl.run(line)
    name = E.errorcode[code]
    assert r.errno == code, r.text
    assert r.text.startswith(f"error {name}: ") and text in r.text, r.text
    logged = ctl.render_log().decode().splitlines()[-1]
    first = r.text.splitlines()[0]
    first = first if len(first) <= LOGGED_CHARS else first[:LOGGED_CHARS] + "..."   # the log cuts long replies
    assert logged.endswith(f"-> {first}")
    assert "\x00" not in logged and "\x1b" not in logged and len(logged) < LOGGED_CHARS + 300
    if code == E.ENOMEM:        # undone through the pcp lists: the pages are back, not the same lists
        assert ctl.render_allocations() == before[1] and ctl.next_id == before[2]
        assert free_and_pcp(ctl.kernel) == free_before
    else:
        assert snapshot(ctl) == before
    from procsim.mm.check import check
    check(ctl.kernel)


def free_and_pcp(k) -> int:
    return k.nr_free_pages + sum(p.count for z in k.zones for p in z.pcp)


def test_double_free_of_a_page_and_of_an_object(ctl):
    assert ctl.run("free_pages 2").text == "ok freed 1"
    before = snapshot(ctl)
    for line in ("free_pages 2", "free_pages tag=p", "free_pages 1-2"):
        r = ctl.run(line)
        if line == "free_pages tag=p":
            assert r.text == "ok freed 1"                  # only the live one of the tag
            before = snapshot(ctl)
        else:
            assert r.errno == E.ENOENT and snapshot(ctl) == before
    assert ctl.run("kmem_cache_free alpha 4").text == "ok freed 1"
    before = snapshot(ctl)
    assert ctl.run("kmem_cache_free alpha 4").errno == E.ENOENT
    assert snapshot(ctl) == before


# --- fuzzing -----------------------------------------------------------------------------------
WORDS = ["alloc_pages", "free_pages", "kmem_cache_create", "kmem_cache_alloc", "kmem_cache_free",
         "kmem_cache_shrink", "kmem_cache_destroy", "kmalloc", "kfree", "drop_caches", "help",
         "0", "1", "3", "10", "11", "-1", "1-3", "64", "4096", "9000", "1GiB", "2^64", "alpha", "beta",
         "kmalloc-64", "count=3", "count=99999999", "tag=a", "tag=p", "gfp=GFP_ATOMIC", "gfp=GFP_DMA",
         "node=0", "cpu=1", "use=anon", "align=8", "flags=SLAB_HWCACHE_ALIGN", "=", "==", "#", "\t"]


def fuzz_line(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.6:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5)))
    if kind < 0.8:
        return "".join(chr(rng.randint(0, 0x7f)) for _ in range(rng.randint(1, 40)))
    return bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 40))).decode("latin-1")


def test_seeded_fuzzer_never_breaks_the_interpreter(tiny):
    """2000 seeded random lines: replies are ok/error ERRNO, never EIO (an internal error);
    a refused line leaves the digest as it was; the invariants hold all along."""
    from procsim.control import Control
    from procsim.mm.check import check, state_digest
    from procsim.mm.kernel import Kernel
    c = Control(lambda: Kernel(tiny))
    rng = random.Random(0x9e3779b9)
    errors = 0
    for n in range(2000):
        line = fuzz_line(rng)
        before = state_digest(c.kernel)
        r = c.run(line)
        if r is None:
            continue
        assert r.text.startswith("ok") or r.text.startswith("error E"), (line, r.text)
        assert r.errno != E.EIO, (line, r.text)
        if r.errno:
            errors += 1
            if r.errno != E.ENOMEM:             # ENOMEM may set ZONE_BELOW_HIGH, as the kernel does
                assert state_digest(c.kernel) == before, line
        if n % 100 == 0:
            check(c.kernel)
    check(c.kernel)
    assert errors > 500                     # the fuzzer mostly hits the error paths


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=200))
def test_any_text_gets_a_reply_and_no_change_on_error(ctl, text):
    from procsim.mm.check import state_digest
    before = state_digest(ctl.kernel)
    line = text.replace("\n", " ").replace("\r", " ")
    r = ctl.run(line)
    if r is not None:
        assert r.errno != E.EIO, r.text
        if r.errno:
            assert r.text.startswith("error E")
            assert r.errno == E.ENOMEM or state_digest(ctl.kernel) == before


# --- through the mount --------------------------------------------------------------------------
VIEWS = ["zoneinfo", "buddyinfo", "pagetypeinfo", "slabinfo", "meminfo", "vmstat", "allocations"]


def all_views(mp) -> dict[str, bytes]:
    return {v: (mp / v).read_bytes() for v in VIEWS}


def peak_kb(mp) -> int:
    from procsim.fs import PID_XATTR
    pid = int(os.getxattr(mp, PID_XATTR))
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))


def write_refused(mp, data: bytes) -> tuple[int, str]:
    """One write() of data on a fresh handle: its errno and the replies read back."""
    fd = os.open(mp / "control", os.O_RDWR)
    try:
        try:
            os.write(fd, data)
            code = 0
        except OSError as e:
            code = e.errno
        return code, os.read(fd, 65536).decode()
    finally:
        os.close(fd)


def test_write_level_hostile_input_through_the_mount(mounted):
    mp = mounted("tiny")
    (mp / "control").write_text("alloc_pages 2 tag=keep\nkmalloc 5000 tag=keep\n")
    before = all_views(mp)
    peak = peak_kb(mp)
    cases = [
        (b"A" * (10 << 20), "line longer than 4096"),                       # 10 MB, no newline
        (b"\x00" * (10 << 20), "line longer than 4096"),                    # 10 MB of NUL bytes
        ((b"z" * 99 + b"\n") * (100 << 10), "unknown command 'zzz"),       # 10 MB of bad lines: stops at one
        (b"kmalloc 64 tag=" + b"x" * (1 << 20) + b"\n", "line longer than 4096"),   # one 1 MB line
        (b"alloc_pages 0\x00 tag=nul\n", "control character"),
        (b"\x00\n", "control character"),
        (b"kmalloc 64 tag=\xff\xfe\n", "not UTF-8"),
        (b"alloc_pages 0 tag=\xc3\n", "not UTF-8"),                           # a cut UTF-8 sequence
        (b"\n" * 20000, None),                                                # blank lines: no command at all
    ]
    for data, text in cases:
        code, replies = write_refused(mp, data)
        if text is None:
            assert code in (0, E.EINVAL) and (code == 0 or "more than" in replies)
            continue
        assert code == E.EINVAL, (data[:40], code, replies)
        assert text in replies, (data[:40], replies)
        assert len(replies.splitlines()) == 1
        assert "-> error EINVAL: " in (mp / "log").read_text().splitlines()[-1]
        assert text in (mp / "log").read_text().splitlines()[-1]
    assert all_views(mp) == before                        # nothing allocated, nothing freed
    assert peak_kb(mp) - peak < 64 << 10                  # 40 MB written; the daemon's peak barely moves
    log = (mp / "log").read_bytes()
    assert b"\x00" not in log and len(log) < 100_000
    code, replies = write_refused(mp, b"free_pages tag=keep\n")      # still serving normally
    assert code == 0 and replies == "ok freed 1\n"


@pytest.mark.parametrize("data,line,text", [
    (b"kmalloc 64\n\xff\xfe\n", 2, "not UTF-8 text (byte 0xff)"),
    (b"kmalloc 64 tag=x\nkmalloc 64\x00\n", 2, "kmalloc 64\\x00: error EINVAL: control character"),
    (b"kfree 99\n", 1, "kfree 99: error ENOENT"),
])
def test_render_commands_file_with_hostile_bytes(tmp_path, capsys, data, line, text):
    """`procsim render --commands FILE`: the same refusals, FILE:LINE: on one line, no traceback."""
    from procsim import cli
    f = tmp_path / "cmds"
    f.write_bytes(data)
    with pytest.raises(SystemExit) as e:
        cli.main(["render", "--config", str(CONFIGS / "tiny.yaml"), "--commands", str(f), "allocations"])
    err = capsys.readouterr().err
    assert e.value.code == 1 and err.count("\n") == 1 and "\x00" not in err
    assert err.startswith(f"procsim: {f}:{line}: ") and text in err, err
