"""The control language against the stand-in core: IDs, tags, atomic lines, errno replies."""
import errno

import pytest

from procsim.testing import FakeKernel
from procsim.control import MAX_COUNT, MAX_PAGE_COUNT, Control


@pytest.fixture
def ctl():
    return Control(lambda: FakeKernel(nr_pages=100))


def run(ctl, line):
    r = ctl.run(line)
    return r.errno, r.text


def test_ids_count_and_ranges(ctl):
    assert run(ctl, "alloc_pages 0") == (0, "ok 1")
    assert run(ctl, "alloc_pages 1 count=10") == (0, "ok 2-11")
    assert ctl.kernel.nr_free == 100 - 1 - 10 * 2
    assert run(ctl, "free_pages 2-11") == (0, "ok freed 10")
    assert run(ctl, "free_pages 1") == (0, "ok freed 1")
    assert ctl.kernel.nr_free == 100
    # IDs are never reused
    assert run(ctl, "alloc_pages 0") == (0, "ok 12")


def test_enomem_in_the_middle_of_count_undoes_the_line(ctl):
    run(ctl, "alloc_pages 0 count=30")
    before = ctl.kernel.nr_free                     # 70
    code, text = run(ctl, "alloc_pages 2 count=20")  # 18 blocks of 4 fit, the 19th fails
    assert code == errno.ENOMEM and text.startswith("error ENOMEM:")
    assert "18" in text
    assert ctl.kernel.nr_free == before
    assert run(ctl, "alloc_pages 0") == (0, "ok 31")   # the failed line consumed no IDs


def test_tags(ctl):
    run(ctl, "alloc_pages 0 count=3 tag=a")
    run(ctl, "alloc_pages 0 count=2 tag=b")
    run(ctl, "alloc_pages 1 tag=a")
    assert run(ctl, "free_pages tag=a") == (0, "ok freed 4")
    assert ctl.kernel.nr_free == 100 - 2
    assert run(ctl, "free_pages tag=a")[0] == errno.ENOENT
    assert run(ctl, "free_pages tag=b") == (0, "ok freed 2")


@pytest.mark.parametrize("line", [
    "alloc_pages", "alloc_pages x", "alloc_pages 11", "alloc_pages 0 count=0",
    f"alloc_pages 0 count={MAX_PAGE_COUNT + 1}", f"alloc_pages 1 count={MAX_COUNT + 1}",
    f"kmalloc 64 count={MAX_COUNT + 1}", f"free_pages 1-{MAX_PAGE_COUNT + 1}", "alloc_pages 0 bogus=1", "alloc_pages 0 node=1",
    "alloc_pages 0 cpu=2", "alloc_pages 0 gfp=GFP_NONSENSE", "alloc_pages 0 count=1 count=2",
    "alloc_pages 0 tag=a/b", "frobnicate", "kmalloc 0", "kmalloc 12zz", "free_pages 1 tag=x",
    "kmem_cache_create foo", "kmem_cache_create foo 64 align=x",
])
def test_malformed_is_einval_and_changes_nothing(ctl, line):
    gen = ctl.kernel.generation
    code, text = run(ctl, line)
    assert code == errno.EINVAL, text
    assert text.startswith("error EINVAL: ")
    assert ctl.kernel.generation == gen and ctl.kernel.nr_free == 100


def test_unknown_ids_and_caches_are_enoent(ctl):
    assert run(ctl, "free_pages 7")[0] == errno.ENOENT
    assert run(ctl, "kfree 7")[0] == errno.ENOENT
    assert run(ctl, "kmem_cache_alloc nosuch")[0] == errno.ENOENT
    assert run(ctl, "kmem_cache_shrink nosuch")[0] == errno.ENOENT
    run(ctl, "alloc_pages 0")
    assert run(ctl, "free_pages 1-2")[0] == errno.ENOENT     # 2 does not exist: nothing freed
    assert ctl.kernel.nr_free == 99
    assert run(ctl, "free_pages 1") == (0, "ok freed 1")
    assert run(ctl, "free_pages 1")[0] == errno.ENOENT       # double free


def test_kind_mismatch_is_einval(ctl):
    run(ctl, "alloc_pages 0")                                # ID 1
    run(ctl, "kmalloc 100")                                  # ID 2, kmalloc-128
    assert run(ctl, "kfree 1")[0] == errno.EINVAL
    assert run(ctl, "free_pages 2")[0] == errno.EINVAL
    assert run(ctl, "kmem_cache_free kmalloc-64 2")[0] == errno.EINVAL
    assert run(ctl, "kfree 2") == (0, "ok freed 1")


def test_cache_lifecycle(ctl):
    code, text = run(ctl, "kmem_cache_create foo 512")
    assert code == 0 and text.startswith("ok foo") and "objperslab=8" in text
    assert run(ctl, "kmem_cache_create foo 512")[0] == errno.EEXIST
    assert run(ctl, "kmem_cache_alloc foo count=20 tag=f") == (0, "ok 1-20")
    foo = ctl.kernel.slab.find("foo")
    assert foo.slabinfo()[:2] == (20, 24)                    # 3 slabs of 8
    assert run(ctl, "kmem_cache_destroy foo")[0] == errno.EBUSY
    assert run(ctl, "kmem_cache_free foo 1-8") == (0, "ok freed 8")
    assert run(ctl, "kmem_cache_shrink foo") == (0, "ok freed 1 pages")
    assert run(ctl, "kmem_cache_free foo tag=f") == (0, "ok freed 12")
    assert run(ctl, "drop_caches") == (0, "ok freed 2 pages")
    assert run(ctl, "kmem_cache_destroy foo") == (0, "ok")
    assert ctl.kernel.slab.find("foo") is None
    assert ctl.kernel.nr_free == 100


def test_comments_blank_lines_and_reset(ctl):
    assert ctl.run("   ") is None and ctl.run("# just a comment") is None
    assert run(ctl, "alloc_pages 0 count=5  # five pages") == (0, "ok 1-5")
    old = ctl.kernel
    assert run(ctl, "reset") == (0, "ok")
    assert ctl.kernel is not old and ctl.kernel.nr_free == 100
    assert ctl.boots == 2
    assert run(ctl, "alloc_pages 0") == (0, "ok 1")          # a fresh boot numbers from 1 again
    assert run(ctl, "help")[1].startswith("ok\n")


def test_log_ring_and_allocations_listing(ctl):
    run(ctl, "alloc_pages 2 tag=big")
    run(ctl, "kmalloc 64 count=2")
    run(ctl, "alloc_pages 9")                                # ENOMEM: 512 pages > 96 free
    log = ctl.render_log().decode().splitlines()
    assert log[0] == "1 alloc_pages 2 tag=big -> ok 1"
    assert log[1] == "2 kmalloc 64 count=2 -> ok 2-3"
    assert log[2].startswith("3 alloc_pages 9 -> error ENOMEM:")
    rows = [l.split() for l in ctl.render_allocations().decode().splitlines()[1:]]
    # ID TAG KIND CACHE/ORDER(2 words for pages) NODE ZONE PFN BYTES
    assert rows[0] == ["1", "big", "pages", "order", "2", "0", "Normal", "1024", str(4 * 4096)]
    assert rows[1][:4] == ["2", "-", "kmalloc", "kmalloc-64"] and rows[1][-1] == "64"
    assert rows[1][-2] == rows[2][-2] == "1028"              # both objects on the slab page after the block
    assert len(rows) == 3


# --- one number grammar (issue 14.13) ---------------------------------------------------------
@pytest.mark.parametrize("line,field,value", [
    ("kmalloc 64", "size", 64),
    ("kmalloc 2K", "size", 2048),
    ("kmalloc 2k", "size", 2048),
    ("kmalloc 1KiB", "size", 1024),
    ("kmalloc 3M", "size", 3 << 20),
    ("kmalloc 1G", "size", 1 << 30),
    ("kmem_cache_create x 64 align=0", "align", 0),
    ("kmem_cache_create x 64 align=1K", "align", 1024),
    ("alloc_pages 0", "order", 0),
    ("alloc_pages 10 count=4194304", "count", 1 << 22),
    ("alloc_pages 0 node=0 cpu=1", "cpu", 1),
    ("alloc_pages 0 gfp=0xcc0", "gfp", 0xcc0),                    # GFP_KERNEL as the kernel prints it
    ("alloc_pages 0 gfp=3264", "gfp", 0xcc0),
    ("alloc_pages 0 gfp=GFP_KERNEL|0x40000", "gfp", 0xcc0 | 0x40000),
    ("free_pages 10", "ids", (10, 10)),
    ("free_pages 10-12", "ids", (10, 12)),
    ("free_pages 0", "ids", (0, 0)),
])
def test_number_grammar_accepts(line, field, value):
    from procsim.control import parse
    assert getattr(parse(line), field) == value


@pytest.mark.parametrize("line", [
    "kmalloc 2.5k", "kmalloc 010", "kmalloc +5", "kmalloc 0x10", "kmalloc 1e3", "kmalloc 64KB",
    "kmalloc 1T", "kmalloc 5 k", "kmalloc \u0665",
    "alloc_pages 0 count=010", "alloc_pages 0 count=+1", "alloc_pages 0 count=0x10", "alloc_pages 01",
    "alloc_pages 0 node=00", "alloc_pages 0 cpu=-0",
    "free_pages 00001", "free_pages 1-02", "free_pages -3", "free_pages 0x1", "free_pages 1-",
    "alloc_pages 0 gfp=-16", "alloc_pages 0 gfp=+16", "alloc_pages 0 gfp=016", "alloc_pages 0 gfp=0x",
    "alloc_pages 0 gfp=0x100000000", "alloc_pages 0 gfp=1_0", "alloc_pages 0 gfp=0b1",
    "kmem_cache_create x 64 align=0x40", "kmem_cache_create x 64 align=-8", "kmem_cache_create x 6.4e1",
])
def test_number_grammar_refuses(ctl, line):
    gen, nid = ctl.kernel.generation, ctl.next_id
    code, text = run(ctl, line)
    assert code == errno.EINVAL, text
    assert ctl.kernel.generation == gen and ctl.next_id == nid


# --- lines are split on \n only (issue 14.11) ---------------------------------------------------
BREAKS = ["\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize("brk", BREAKS, ids=[repr(b) for b in BREAKS])
def test_other_line_breaks_are_refused_not_split(ctl, brk):
    for line in (f"kmalloc 64{brk}kmalloc 128", f"kmalloc 64{brk}", f"{brk}kmalloc 64", brk,
                 f"kmalloc 64 # comment{brk}kmalloc 128"):
        code, text = run(ctl, line)
        assert code == errno.EINVAL and "control character" in text, (line, text)
    assert ctl.next_id == 1 and ctl.kernel.generation == 0
    from procsim.control import split_lines
    assert split_lines(f"kmalloc 64{brk}kmalloc 128\nkfree 1\n") == [f"kmalloc 64{brk}kmalloc 128", "kfree 1"]


def test_split_lines():
    from procsim.control import split_lines
    assert split_lines("") == [] and split_lines("\n") == [""] and split_lines("a") == ["a"]
    assert split_lines("a\nb") == ["a", "b"] and split_lines("a\n\nb\n") == ["a", "", "b"]


def test_unicode_spaces_do_not_separate_words(ctl):
    assert run(ctl, "kmalloc\u00a064")[0] == errno.EINVAL            # one word: unknown command
    assert run(ctl, "kmalloc\t64  count=2") == (0, "ok 1-2")          # tabs and spaces do


# --- typed commands ----------------------------------------------------------------------------
ROUND_TRIP = [
    "alloc_pages 3 gfp=GFP_ATOMIC|__GFP_THISNODE node=0 cpu=1 count=5 tag=a use=pagecache",
    "alloc_pages 0 gfp=0x40000", "free_pages 7", "free_pages 7-9", "free_pages tag=x.y",
    "kmem_cache_create c1 100 align=64 flags=SLAB_HWCACHE_ALIGN|SLAB_RECLAIM_ACCOUNT",
    "kmem_cache_alloc c1 count=3", "kmem_cache_free c1 4", "kmem_cache_free c1 tag=b",
    "kmem_cache_shrink c1", "kmem_cache_destroy c1", "kmalloc 8192 gfp=GFP_DMA", "kfree 1-2",
    "kfree tag=t", "drop_caches", "drain_pages", "reset", "help",
]


@pytest.mark.parametrize("line", ROUND_TRIP)
def test_commands_are_frozen_values_that_spell_themselves(line):
    import dataclasses
    from procsim.control import COMMANDS, parse
    cmd = parse(line)
    assert type(cmd) is COMMANDS[line.split()[0]]
    assert parse(cmd.line()) == cmd and parse(line.replace(" ", "  ")) == cmd
    for f in dataclasses.fields(cmd):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(cmd, f.name, None)


def test_spelling_is_canonical():
    from procsim.control import parse
    assert parse("kmalloc 2K count=1 gfp=0xcc0 tag=t").line() == "kmalloc 2048 tag=t"
    assert parse("kfree 5-5").line() == "kfree 5"
    assert parse("kmem_cache_free c tag=z").line() == "kmem_cache_free c tag=z"


def test_apply_of_a_parsed_command_is_what_run_replies(ctl):
    from procsim.control import parse
    assert ctl.apply(parse("alloc_pages 1 count=2 tag=q")) == "ok 1-2"
    assert run(ctl, "free_pages tag=q") == (0, "ok freed 2")
    assert ctl.kernel.nr_free == 100


# --- bounded messages (issue 14.12) -------------------------------------------------------------
@pytest.mark.parametrize("line", [
    "kmalloc " + "9" * 3000 + "x", "alloc_pages 0 tag=" + "t" * 3000, "free_pages tag=" + "t" * 3000,
    "kmem_cache_alloc " + "c" * 3000, "frob" * 900, "alloc_pages 0 gfp=" + "G" * 3000,
    "kmem_cache_create x 64 flags=" + "F" * 3000, "alloc_pages 0 " + "o" * 3000 + "=1",
])
def test_error_replies_and_log_entries_are_bounded(ctl, line):
    from procsim.control import LOGGED_CHARS, MAX_MESSAGE
    code, text = run(ctl, line)
    assert code in (errno.EINVAL, errno.ENOENT), text
    assert len(text) <= MAX_MESSAGE + 30, text
    assert len(ctl.render_log().decode().splitlines()[-1]) <= 2 * LOGGED_CHARS + 40


def test_drain_pages_returns_every_pcp_page_to_the_buddy():
    """drain_all_pages: after freeing everything and draining, nr_free is what it was at boot
    with the pcp lists empty (before the drain some freed pages sit on cpu 0's lists)."""
    from procsim.testing import boot
    k0 = boot("tiny")
    ctl = Control(lambda: k0)
    k = ctl.kernel
    pcp = lambda: sum(p.count for z in k.zones for p in z.pcp)       # noqa: E731
    boot_free, boot_pcp = k.nr_free_pages, pcp()
    assert run(ctl, "alloc_pages 0 count=500 tag=x")[0] == 0
    assert run(ctl, "free_pages tag=x") == (0, "ok freed 500")
    assert pcp() > 0
    assert run(ctl, "drain_pages") == (0, "ok")
    assert pcp() == 0 and k.nr_free_pages == boot_free + boot_pcp


def test_parse_alone_refuses_line_breaks():
    from procsim.control import ControlError, parse
    for brk in BREAKS:
        with pytest.raises(ControlError) as e:
            parse(f"kmalloc{brk}64")
        assert e.value.errno == errno.EINVAL
