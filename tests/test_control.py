"""The control language against the stand-in core: IDs, tags, atomic lines, errno replies."""
import errno

import pytest

from procsim.testing import FakeKernel
from procsim.control import MAX_COUNT, Control


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
    f"alloc_pages 0 count={MAX_COUNT + 1}", "alloc_pages 0 bogus=1", "alloc_pages 0 node=1",
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
    assert rows[0] == ["1", "big", "pages", "order", "2", "0", "Normal", "1000", str(4 * 4096)]
    assert rows[1][:4] == ["2", "-", "kmalloc", "kmalloc-64"] and rows[1][-1] == "64"
    assert rows[1][-2] == rows[2][-2] == "1004"              # both objects on the slab page after the block
    assert len(rows) == 3
