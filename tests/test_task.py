"""procsim.mm.task: tasks own what the control file allocates; an ID is an allocation's identity.

Counters are checked against hand-computed page counts; lookup states against what was done
to each ID; the O(touched) rule by counting the batches each selection visits.
"""
import errno

import pytest

from procsim.testing import CONFIGS, FakeKernel
from procsim.control import Control
from procsim.mm import gfp as G
from procsim.mm.errors import MMError
from procsim.mm.task import (FREED, LIVE, MM_ANONPAGES, MM_FILEPAGES, OOM_SCORE_ADJ_MIN, RECLAIMED)


@pytest.fixture(scope="module")
def tiny():
    from procsim import machine
    return machine.load(CONFIGS / "tiny.yaml")


@pytest.fixture
def real(tiny):
    from procsim.mm.kernel import Kernel
    return Control(lambda: Kernel(tiny))


@pytest.fixture
def fake():
    return Control(lambda: FakeKernel(nr_pages=4096))


def ok(ctl, line):
    r = ctl.run(line)
    assert r.errno == 0, r.text
    return r.text


def test_tags_name_tasks_and_untagged_is_the_default_task(fake):
    tasks = fake.kernel.tasks
    ok(fake, "alloc_pages 0")
    ok(fake, "alloc_pages 0 tag=web")
    ok(fake, "kmalloc 64 tag=db")
    ok(fake, "kmalloc 64 tag=web")
    assert [(t.pid, t.tag, t.comm) for t in tasks] == [(1, None, "init"), (2, "web", "web"), (3, "db", "db")]
    assert tasks.default.oom_score_adj == OOM_SCORE_ADJ_MIN      # oom_badness(): never the victim
    assert tasks.task("web").oom_score_adj == 0
    assert tasks.lookup(1).task is tasks.default
    assert tasks.lookup(2).task is tasks.lookup(4).task is tasks.find_task("web")
    assert tasks.find_task("nosuch") is None
    assert tasks.task("a" * 64).comm == "a" * 15                 # TASK_COMM_LEN - 1


def test_counters_follow_use_and_free(real):
    tasks = real.kernel.tasks
    ok(real, "alloc_pages 2 count=3 use=anon tag=t")              # 12 anon pages
    ok(real, "alloc_pages 0 count=5 use=pagecache tag=t")         # 5 file pages
    ok(real, "alloc_pages 1 use=page_tables tag=t")               # 2 pages of page tables
    ok(real, "alloc_pages 1 use=kernel_stack tag=t")              # not rss
    ok(real, "kmalloc 64 count=7 tag=t")
    t = tasks.find_task("t")
    assert t.rss[MM_ANONPAGES] == 12 and t.rss[MM_FILEPAGES] == 5 and t.get_mm_rss() == 17
    # the 2 pages asked for, and the anon's own tables: a PTE, a PMD and a PUD page
    assert t.pgtables_bytes == (2 + 3) * 4096 and t.kernel_pages == 2 and t.objects == 7
    ok(real, "free_pages 2")                                      # one anon block of 4
    assert t.rss[MM_ANONPAGES] == 8 and t.pgtables_bytes == (2 + 3) * 4096
    ok(real, "free_pages tag=t")
    ok(real, "kfree tag=t")
    assert (t.get_mm_rss(), t.pgtables_bytes, t.kernel_pages, t.objects) == (0, 0, 0, 0)
    assert tasks.default.get_mm_rss() == 0
    assert tasks.find_task("t") is None                           # nothing left: the task exited
    ok(real, "alloc_pages 0 use=anon tag=t")
    ok(real, "kmalloc 64 count=2 tag=t")
    t2 = tasks.find_task("t")
    assert t2 is not t and t2.pid == t.pid + 1                    # a new process, the next pid
    t = t2
    assert tasks.free(tasks.select_task(t)) == 3                  # every kind at once: what an OOM kill frees
    assert (t.get_mm_rss(), t.objects, list(t.batches())) == (0, 0, [])
    assert t.pgtables_bytes == 0 and not t.pgtables                # exit_mmap: free_pgtables()


def test_anon_has_page_tables_one_pte_page_per_512_pages(real):
    """A PTE page per 512 anon pages, a PMD page per 512 of those, a PUD page per 512 PMD
    pages (mm_pgtables_bytes); allocated as the anon is faulted in, counted in PageTables and
    the task's pgtables; a swapped page keeps its pte; freeing the anon frees its tables.
    (A real 6.1 awk with 1962984 kB of anon had 3880 kB of page tables: 962 pages by this
    rule plus 8 for its binary and stack.)"""
    from procsim.mm import check
    from procsim.views import files
    k = real.kernel

    def page_tables_kb():
        meminfo = files(k.machine)["meminfo"].render(k).decode()
        return int(next(x for x in meminfo.splitlines() if x.startswith("PageTables:")).split()[1])

    before = page_tables_kb()
    ok(real, "alloc_pages 0 count=513 use=anon tag=h")           # 2 PTE pages, 1 PMD, 1 PUD
    t = k.tasks.find_task("h")
    assert t.pgtables_bytes == 4 * 4096 and len(t.pgtables) == 4
    assert page_tables_kb() == before + 16
    assert all(p.use == "page_tables" and p.migratetype == 0 for p in t.pgtables)  # GFP_KERNEL_ACCOUNT: unmovable
    ok(real, "alloc_pages 0 count=511 use=anon tag=h")           # 1024 pages: still 2 PTE pages
    assert len(t.pgtables) == 4
    ok(real, "alloc_pages 0 use=pagecache tag=h")                # page cache is not mapped here
    assert len(t.pgtables) == 4
    ok(real, "free_pages tag=h")
    assert t.pgtables_bytes == 0 and not t.pgtables and page_tables_kb() == before
    check.check(k)
    from procsim.mm.task import pgtable_pages
    assert pgtable_pages(490746) == 959 + 2 + 1 and pgtable_pages(0) == 0


def test_lookup_says_live_freed_or_never(fake):
    tasks = fake.kernel.tasks
    ok(fake, "alloc_pages 1 count=3 tag=p")                       # IDs 1-3, pfns 1024, 1026, 1028
    ok(fake, "kmalloc 64")                                        # ID 4
    assert tasks.lookup(0) is None and tasks.lookup(5) is None
    a = tasks.lookup(2)
    assert (a.state, a.kind, a.what, a.value, a.page.pfn, a.task.tag) == (LIVE, "pages", 1, 1026, 1026, "p")
    ok(fake, "free_pages 2")
    assert tasks.lookup(2).state == FREED and tasks.lookup(2).task.tag == "p"   # its batch still lives
    ok(fake, "free_pages 1")
    ok(fake, "free_pages 3")
    assert tasks.lookup(3).state == FREED and tasks.lookup(3).task is None      # the whole batch is gone
    assert tasks.lookup(4).state == LIVE and tasks.lookup(4).kind == "kmalloc"


def test_reclaimed_ids_answer_reclaimed(real):
    tasks, k = real.kernel.tasks, real.kernel
    k.drain_all_pages()
    free0 = k.nr_free_pages
    ok(real, "alloc_pages 0 count=4 use=pagecache tag=cache")     # IDs 1-4
    ok(real, "alloc_pages 0 use=anon tag=cache")                  # ID 5
    t = tasks.find_task("cache")
    assert tasks.reclaim(2) == 1
    assert tasks.lookup(2).state == RECLAIMED and t.rss[MM_FILEPAGES] == 3
    with pytest.raises(MMError) as e:
        tasks.reclaim(5)                                          # anon: not page cache
    assert e.value.errno == errno.EINVAL
    r = real.run("free_pages 2")
    assert r.errno == errno.ENOENT and "ID 2 was reclaimed" in r.text
    r = real.run("free_pages 1-3")                                # nothing freed: 2 is gone
    assert r.errno == errno.ENOENT and "ID 2 was reclaimed" in r.text and tasks.lookup(1).state == LIVE
    for id_ in (1, 3, 4):
        tasks.reclaim(id_)
    # the whole batch is reclaimed: its IDs still say so
    assert [tasks.lookup(i).state for i in (1, 2, 3, 4, 5)] == [RECLAIMED] * 4 + [LIVE]
    assert "was reclaimed" in real.run("free_pages 4").text
    assert ok(real, "free_pages tag=cache") == "ok freed 1"       # the anon page: reclaimed ones are gone
    k.drain_all_pages()
    assert k.nr_free_pages == free0 and t.get_mm_rss() == 0


def test_move_rebinds_the_id_to_new_pages(real):
    from procsim.mm.check import check
    tasks, k = real.kernel.tasks, real.kernel
    ok(real, "alloc_pages 1 count=2 tag=m")
    old_pfn = tasks.lookup(1).value
    new = k.alloc_pages(1, G.GFP_KERNEL)                          # compaction's target block
    old = tasks.move(1, new)
    assert old.pfn == old_pfn and tasks.lookup(1).value == new.pfn != old_pfn
    k.free_pages(old)                                             # the source goes back
    row = real.render_allocations().decode().splitlines()[1].split()
    assert row[0] == "1" and int(row[-2]) == new.pfn
    with pytest.raises(MMError):
        tasks.move(2, k.alloc_pages(0, G.GFP_KERNEL))             # wrong order
    assert ok(real, "free_pages 1") == "ok freed 1"               # frees the block it moved to
    check(k)


def test_a_free_touches_only_its_own_batch(fake):
    """O(touched): freeing one ID visits one batch however many are live, a tag-free only
    that task's batches; no structure is rebuilt."""
    tasks = fake.kernel.tasks
    for _ in range(500):
        ok(fake, "kmalloc 64 tag=many")                           # IDs 1-500, one batch each
    ok(fake, "kmalloc 64 count=5 tag=few")                        # 501-505
    ok(fake, "kmalloc 64 tag=few")                                # 506
    before = tasks.touched
    ok(fake, "kfree 250")
    assert tasks.touched - before == 1
    before = tasks.touched
    ok(fake, "kfree 499-503")                                     # three batches
    assert tasks.touched - before == 3
    before = tasks.touched
    assert ok(fake, "kfree tag=few") == "ok freed 3"              # 504, 505, 506: two batches
    assert tasks.touched - before == 2
    assert len(tasks._firsts) == 502                              # append-only: one entry per command
    for i in range(1, 499):
        if i != 250:
            ok(fake, f"kfree {i}")
    assert list(tasks.batches()) == [] and tasks.find_task("many") is None     # its last one freed: exited


def test_failed_line_consumes_no_id_and_no_batch(fake):
    tasks = fake.kernel.tasks
    r = fake.run("alloc_pages 10 count=9 tag=z")                  # 9 x 1024 pages > 4096
    assert r.errno == errno.ENOMEM and "at allocation 5 of 9; the 4 made were freed" in r.text
    assert tasks.next_id == 1 and list(tasks.batches()) == [] and tasks.find_task("z") is None
    assert fake.run("kmalloc 64 node=3 tag=z").errno == errno.EINVAL and tasks.find_task("z") is None


def test_check_catches_books_that_disagree(real):
    from procsim.mm.check import check, state_digest
    ok(real, "alloc_pages 0 count=3 use=anon tag=c")
    check(real.kernel)
    d = state_digest(real.kernel)
    t = real.kernel.tasks.find_task("c")
    t.rss[MM_ANONPAGES] += 1                                      # a counter that lies
    with pytest.raises(AssertionError, match="counters"):
        check(real.kernel)
    assert state_digest(real.kernel) != d                         # the digest sees owners too
    t.rss[MM_ANONPAGES] -= 1
    page = real.kernel.tasks.lookup(2).page
    real.kernel.free_pages(page)                                  # freed behind the records' back
    with pytest.raises(AssertionError, match="not allocated"):
        check(real.kernel)


def test_faults_count_pgfault_and_page_cache_reads_pgpgin(real):
    """An anon block faulted in is one pgfault (a huge page too); page cache is read from the
    file, pgpgin in kB.  Counted for what was faulted even if the command is then undone."""
    ev = real.kernel.vm_events
    f0, i0 = ev.get("pgfault", 0), ev.get("pgpgin", 0)
    ok(real, "alloc_pages 0 count=10 use=anon tag=f")
    ok(real, "alloc_pages 9 use=anon tag=f")
    assert ev.get("pgfault", 0) - f0 == 11
    ok(real, "alloc_pages 0 count=3 use=pagecache tag=f")
    assert ev.get("pgpgin", 0) - i0 == 12 and ev.get("pgfault", 0) - f0 == 11


def test_page_cache_with_buffers_carries_a_buffer_head_per_page():
    """buffers=1: each page-cache page gets a buffer_head (104 bytes, 39 to a 4 KiB slab,
    SLAB_RECLAIM_ACCOUNT so SReclaimable), made with its page and freed with it -- by reclaim
    (try_to_free_buffers before the folio goes) and by free_pages."""
    import procsim
    from procsim.mm.gfp import __GFP_RECLAIMABLE
    sim = procsim.Simulation("tiny")
    k = sim.kernel

    def bh():
        line = next(x for x in sim.render("slabinfo").decode().splitlines() if x.startswith("buffer_head "))
        return [int(w) for w in line.split()[1:6]]

    def live_bh():                          # objects in use, counted in the slabs themselves
        c = k.slab.find("buffer_head")
        return sum(s.inuse for s in k.slab._slab_of.values() if s.cache is c)

    def kb(key):
        return int(next(x for x in sim.render("meminfo").decode().splitlines() if x.startswith(key + ":")).split()[1])

    before = kb("SReclaimable")
    sim.run("alloc_pages 0 use=pagecache count=390 tag=dd buffers=1")
    assert bh() == [390, 390, 104, 39, 1] and live_bh() == 390      # 390 / 39 = 10 slabs exactly
    assert kb("SReclaimable") - before == 10 * 4
    assert k.slab.find("buffer_head").allocflags & __GFP_RECLAIMABLE
    with pytest.raises(procsim.CommandError, match="EINVAL"):
        sim.run("alloc_pages 0 use=anon count=5 tag=x buffers=1")
    assert live_bh() == 390 and not k.tasks.find_task("x")
    # past free memory: reclaim frees page cache and its buffer_heads together (slabinfo's
    # active_objs also counts the free objects of the cpu slabs, as SLUB's does)
    sim.run("alloc_pages 0 use=pagecache count=14000 tag=big buffers=1")
    assert k.vm_events.get("pgsteal_kswapd", 0) + k.vm_events.get("pgsteal_direct", 0) > 390
    assert live_bh() == kb("Cached") // 4 < 14000
    assert bh()[0] >= live_bh()
    sim.run("free_pages tag=big")
    assert live_bh() == 0
