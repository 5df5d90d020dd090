"""Tasks and the allocations they own: who holds what, so reclaim, compaction and the OOM
killer can ask the core instead of the shell.

In Linux every user page is charged to the ``mm_struct`` of the task that faulted it in
(``mm->rss_stat``: MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES; page tables in
``mm->pgtables_bytes``), and ``oom_badness()`` (mm/oom_kill.c) ranks tasks by
``get_mm_rss() + swap entries + page-table pages`` plus ``oom_score_adj``.  procsim has no
processes; a control command's ``tag=NAME`` names the task the allocation is made for, so
``Tasks`` keeps one ``Task`` per tag with those counters.

**Untagged allocations belong to the default task**, ``Tasks.default`` (``tag`` None, pid 1,
comm ``init``): like init, it has ``oom_score_adj = OOM_SCORE_ADJ_MIN``, which
``oom_badness()`` reads as "never kill" -- a script that tags nothing keeps getting ENOMEM,
and tagging a workload is what makes it a possible OOM victim.  Tagged tasks get pids 2, 3,
... in the order their tag is first used, and live until ``reset`` (a new Kernel).

An allocation's identity is its **ID** (the handle the control file prints), not its pfn:
compaction may ``move()`` a page allocation to another block, reclaim may ``reclaim()`` a
page-cache allocation (its ID then answers "reclaimed", not "unknown").  Each command's
allocations are one ``Batch`` (consecutive IDs, one task, one kind) holding an
``array('Q')`` of pfns / object addresses -- 8 bytes per object -- so ``count=1000000``
stays cheap; callers only see IDs, ``Allocation`` records and ``Batch.entries()``, so the
representation may change (runs of contiguous pfns) without touching them.

Every operation costs O(what it touches): an ID is found by bisecting an append-only array
of batch starts; a batch that loses its last member leaves two dicts in O(1); freeing a
tag walks that task's batches only.

Allocations made by the kernel itself (the ``boot:`` workload, slab pages, page tables of
the direct map) are not here: they belong to no task, as in Linux.
"""
from __future__ import annotations

import errno
from array import array
from bisect import bisect_right
from dataclasses import dataclass
from functools import partial
from typing import Iterator

from .errors import MMError
from .page_types import PAGE_SIZE

# include/linux/mm_types_task.h: enum rss stat items
MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES = range(4)
NR_MM_COUNTERS = 4
OOM_SCORE_ADJ_MIN, OOM_SCORE_ADJ_MAX = -1000, 1000      # include/uapi/linux/oom.h
TASK_COMM_LEN = 16

# An allocation's state, as lookup() reports it.
LIVE, FREED, RECLAIMED = "live", "freed", "reclaimed"
_DEAD = (1 << 64) - 1            # a freed slot of a batch's array
_RECLAIMED = _DEAD - 1           # a slot whose page-cache block reclaim dropped

PAGES, SLAB, KMALLOC = "pages", "slab", "kmalloc"       # Batch.kind
_RSS_OF_USE = {"anon": MM_ANONPAGES, "pagecache": MM_FILEPAGES}


class Task:
    """A task_struct with its mm's counters (pages unless named otherwise).

    ``rss[MM_*]`` as mm->rss_stat, ``pgtables_bytes`` as mm->pgtables_bytes; memory the
    kernel allocated on the task's behalf but that is not rss (page blocks without a use,
    kernel stacks, slab objects) is counted in ``kernel_pages`` and ``objects``.
    """
    __slots__ = ("pid", "tag", "comm", "oom_score_adj", "rss", "pgtables_bytes", "kernel_pages", "objects",
                 "_batches")

    def __init__(self, pid: int, tag: str | None, oom_score_adj: int = 0):
        self.pid, self.tag = pid, tag
        self.comm = (tag or "init")[:TASK_COMM_LEN - 1]
        self.oom_score_adj = oom_score_adj
        self.rss = [0] * NR_MM_COUNTERS
        self.pgtables_bytes = 0
        self.kernel_pages = 0
        self.objects = 0
        self._batches: dict[int, Batch] = {}        # first ID -> batch with live members, ID order

    def get_mm_rss(self) -> int:
        """get_mm_rss(): file + anon + shmem pages."""
        return self.rss[MM_FILEPAGES] + self.rss[MM_ANONPAGES] + self.rss[MM_SHMEMPAGES]

    def batches(self) -> Iterator["Batch"]:
        """This task's batches with live members, in ID order."""
        return iter(list(self._batches.values()))

    def __repr__(self):
        return f"<Task {self.pid} {self.comm}>"


class Batch:
    """The allocations one command made: IDs ``first .. last``, one task, one kind.

    Read-only for callers: ``first``, ``task``, ``kind`` (pages | slab | kmalloc), ``what``
    (order, cache name, requested kmalloc size), ``use`` (page use or None), ``live``,
    ``version`` (bumped whenever a member is freed, moved or reclaimed: a cache key).
    """
    __slots__ = ("first", "task", "kind", "what", "use", "live", "reclaimed", "version", "_addrs", "_pages",
                 "_cache")

    def __init__(self, first, task, kind, what, use, addrs: array, pages: list | None, cache=None):
        self.first, self.task, self.kind, self.what, self.use = first, task, kind, what, use
        self._addrs, self._pages, self._cache = addrs, pages, cache
        self.live, self.reclaimed, self.version = len(addrs), 0, 0

    @property
    def last(self) -> int:
        return self.first + len(self._addrs) - 1

    def entries(self) -> Iterator[tuple[int, int]]:
        """(ID, pfn) for pages, (ID, object address) for slab and kmalloc: live members only."""
        first = self.first
        for i, a in enumerate(self._addrs):
            if a < _RECLAIMED:
                yield first + i, a

    def _charge(self, sign: int, n: int = 1, task: Task | None = None) -> None:
        """Move the counters of task (the owner by default) for n members."""
        t = task or self.task
        if self.kind != PAGES:
            t.objects += sign * n
            return
        pages = sign * n << self.what
        if self.use in _RSS_OF_USE:
            t.rss[_RSS_OF_USE[self.use]] += pages
        elif self.use == "page_tables":
            t.pgtables_bytes += pages * PAGE_SIZE
        else:
            t.kernel_pages += pages


@dataclass(frozen=True)
class Allocation:
    """What lookup(ID) knows.  For FREED only ``id`` and ``state`` are meaningful when the
    whole batch is gone; ``value`` is the pfn (pages) or object address (slab, kmalloc)."""
    id: int
    state: str
    task: Task | None = None
    kind: str | None = None
    what: object = None
    use: str | None = None
    value: int | None = None
    page: object = None             # the kernel's Page handle (pages, LIVE)


class Tasks:
    """The task list and every allocation made for a task (``k.tasks``)."""

    def __init__(self, kernel):
        self.k = kernel
        self.next_id = 1
        self.default = Task(1, None, OOM_SCORE_ADJ_MIN)
        self._by_tag: dict[str | None, Task] = {None: self.default}
        self._next_pid = 2
        self._batches: dict[int, Batch] = {}       # first -> batch with live members, ID order
        self._gone: dict[int, Batch] = {}          # batches with no live member but reclaimed ones
        self._firsts = array("Q")                  # first ID of every batch ever made (bisect)
        self.touched = 0                           # batches visited by selections (tests count work)

    # ---- tasks --------------------------------------------------------------------------
    def task(self, tag: str | None) -> Task:
        """The task tag names (None: the default task), created on first use."""
        t = self._by_tag.get(tag)
        if t is None:
            t = self._by_tag[tag] = Task(self._next_pid, tag)
            self._next_pid += 1
        return t

    def find_task(self, tag: str | None) -> Task | None:
        return self._by_tag.get(tag)

    def __iter__(self) -> Iterator[Task]:
        """Every task, in pid order."""
        return iter(list(self._by_tag.values()))

    # ---- allocating ---------------------------------------------------------------------
    def alloc_pages(self, tag: str | None, order: int, gfp: int, count: int = 1, node=None, cpu=None,
                    use: str | None = None) -> range:
        """count blocks of 2^order pages for the task tag names; all or nothing (a failure
        frees what the call made, newest first, and creates no task).  Returns the new IDs."""
        k = self.k
        where = _where(node, cpu)
        if use is not None:
            where["use"] = use
        self._trace_current(tag)
        pages = self._run(count, lambda: k.alloc_pages(order, gfp, **where), k.free_pages)
        return self._add_pages(tag, order, use, pages)

    def alloc_pages_exact(self, tag: str | None, size: int, gfp: int, node=None, cpu=None) -> range:
        """alloc_pages_exact(): the order-0 pages of the covering block that size needs (the
        kernel frees the tail); one ID per page kept."""
        return self._add_pages(tag, 0, None, self.k.alloc_pages_exact(size, gfp, **_where(node, cpu)))

    def _add_pages(self, tag, order, use, pages) -> range:
        for i, p in enumerate(pages, self.next_id):
            p.id = i                               # migration moves the ID with the page
        return self._add(tag, PAGES, order, use, array("Q", [p.pfn for p in pages]), pages)

    def kmalloc(self, tag: str | None, size: int, gfp: int, count: int = 1, node=None, cpu=None) -> range:
        slab, where = self.k.slab, _where(node, cpu)
        self._trace_current(tag)
        addrs = self._run(count, lambda: slab.kmalloc(size, gfp, **where), slab.kfree)
        return self._add(tag, KMALLOC, size, None, array("Q", addrs), None)

    def kmem_cache_alloc(self, tag: str | None, cache, gfp: int, count: int = 1, node=None, cpu=None) -> range:
        slab, where = self.k.slab, _where(node, cpu)
        self._trace_current(tag)
        addrs = self._run(count, lambda: slab.kmem_cache_alloc(cache, gfp, **where),
                          lambda a: slab.kmem_cache_free(cache, a))
        return self._add(tag, SLAB, cache.name, None, array("Q", addrs), None, cache)

    def _trace_current(self, tag, task: Task | None = None) -> None:
        """Trace lines name the task an operation runs for (ftrace's TASK-PID column)."""
        tr = getattr(self.k, "trace", None)
        if tr is not None and tr.active:
            task = task or self._by_tag.get(tag)
            tr.current = (task.comm, task.pid) if task else ((tag or "init")[:TASK_COMM_LEN - 1], self._next_pid)

    @staticmethod
    def _run(count: int, alloc, free) -> list:
        """alloc() count times; on a failure free what was made, newest first, and re-raise."""
        got = []
        try:
            for _ in range(count):
                got.append(alloc())
        except BaseException as e:
            for item in reversed(got):
                free(item)
            if isinstance(e, MMError) and count > 1:
                raise MMError(e.errno, e.message + f" (at allocation {len(got) + 1} of {count};"
                                                   f" the {len(got)} made were freed)") from None
            raise
        return got

    def _add(self, tag, kind, what, use, addrs, pages, cache=None) -> range:
        task = self.task(tag)
        b = Batch(self.next_id, task, kind, what, use, addrs, pages, cache)
        self.next_id += len(addrs)
        self._batches[b.first] = task._batches[b.first] = b
        self._firsts.append(b.first)
        b._charge(+1, len(addrs))
        return range(b.first, b.last + 1)

    # ---- finding ------------------------------------------------------------------------
    def _slot(self, id_: int) -> tuple[Batch | None, int]:
        """The batch holding id_ (None once every member is freed) and id_'s index in it."""
        j = bisect_right(self._firsts, id_) - 1 if 0 < id_ < self.next_id else -1
        if j < 0:
            return None, -1
        first = self._firsts[j]
        b = self._batches.get(first) or self._gone.get(first)
        return b, id_ - first

    def lookup(self, id_: int) -> Allocation | None:
        """What ID id_ is now: LIVE, FREED or RECLAIMED; None if it was never handed out."""
        if not 0 < id_ < self.next_id:
            return None
        b, i = self._slot(id_)
        if b is None:
            return Allocation(id_, FREED)
        a = b._addrs[i]
        state = LIVE if a < _RECLAIMED else RECLAIMED if a == _RECLAIMED else FREED
        return Allocation(id_, state, b.task, b.kind, b.what, b.use, a if state == LIVE else None,
                          b._pages[i] if state == LIVE and b._pages is not None else None)

    def batches(self, task: Task | None = None) -> Iterator[Batch]:
        """Batches with live members, in ID order (of one task, or all)."""
        return iter(list((task._batches if task is not None else self._batches).values()))

    @property
    def nr_live(self) -> int:
        return sum(b.live for b in self._batches.values())

    def select_ids(self, lo: int, hi: int, kind: str, cache: str | None = None) -> list[tuple[Batch, list[int]]]:
        """The members IDs lo..hi name -- (batch, indices) per batch -- all live and of this
        kind (and cache), else MMError ENOENT / EINVAL naming the first that is not.
        Changes nothing; one bisect per batch touched."""
        sel = []
        id_ = lo
        while id_ <= hi:
            b, i = self._slot(id_)
            self.touched += 1
            if b is None:
                raise MMError(errno.ENOENT, f"no live allocation with ID {id_}")
            n = min(hi, b.last) - id_ + 1
            for j in range(i, i + n):
                a = b._addrs[j]
                if a == _RECLAIMED:
                    raise MMError(errno.ENOENT, f"ID {b.first + j} was reclaimed (its page cache was dropped"
                                                " under memory pressure)")
                if a == _DEAD:
                    raise MMError(errno.ENOENT, f"no live allocation with ID {b.first + j}")
                if b.kind != kind or (cache is not None and b.what != cache):
                    owner = f"{b.kind} of {b.what}" if b.kind == SLAB else b.kind
                    raise MMError(errno.EINVAL, f"ID {b.first + j} is a {owner} allocation, not {cache or kind}")
            sel.append((b, list(range(i, i + n))))
            id_ += n
        return sel

    def select_task(self, task: Task | None, kind: str | None = None,
                    cache: str | None = None) -> list[tuple[Batch, list[int]]]:
        """Every live member of task of this kind (None: every kind, as exit_mmap would free),
        and cache, as (batch, indices) in ID order; [] if none.  Touches that task's batches only."""
        sel = []
        for b in (task._batches.values() if task is not None else ()):
            self.touched += 1
            if (kind is None or b.kind == kind) and (cache is None or b.what == cache):
                sel.append((b, [i for i, a in enumerate(b._addrs) if a < _RECLAIMED]))
        return sel

    # ---- freeing, reclaim, compaction -----------------------------------------------------
    def free(self, sel: list[tuple[Batch, list[int]]]) -> int:
        """Give the selected members back to the allocator they came from; returns how many."""
        k = self.k
        total = 0
        for b, idx in sel:
            self._trace_current(None, b.task)
            addrs, pages, done = b._addrs, b._pages, 0
            try:
                if b.kind == PAGES:
                    free_pages = k.free_pages
                    for i in idx:
                        free_pages(pages[i])
                        pages[i] = None
                        addrs[i] = _DEAD
                        done += 1
                else:
                    free = k.slab.kfree if b.kind == KMALLOC else partial(k.slab.kmem_cache_free, b._cache)
                    for i in idx:
                        free(addrs[i])
                        addrs[i] = _DEAD
                        done += 1
            finally:
                self._drop(b, done)
            total += done
        return total

    def _drop(self, b: Batch, n: int = 1) -> None:
        """n members of b left (freed or reclaimed): counters, and b leaves when it empties."""
        b.live -= n
        b.version += 1
        b._charge(-1, n)
        if not b.live:
            del self._batches[b.first]
            del b.task._batches[b.first]
            if b.reclaimed:
                self._gone[b.first] = b            # its IDs still answer "reclaimed"

    def reclaim(self, id_: int) -> int:
        """Reclaim drops page-cache allocation id_: its pages go back to the buddy allocator and
        the ID answers RECLAIMED from now on.  Returns the pages freed."""
        b, i = self._slot(id_)
        if b is None or b.kind != PAGES or b.use != "pagecache" or b._addrs[i] >= _RECLAIMED:
            raise MMError(errno.EINVAL, f"ID {id_} is not a live page-cache allocation")
        page = b._pages[i]
        self.k.free_pages(page)
        b._pages[i] = None
        b._addrs[i] = _RECLAIMED
        b.reclaimed += 1
        self._drop(b)
        return 1 << b.what

    def move(self, id_: int, page) -> object:
        """Compaction moved page allocation id_ to ``page`` (already allocated by the caller,
        same order); the ID now names it.  Returns the old Page for the caller to free."""
        b, i = self._slot(id_)
        if b is None or b.kind != PAGES or b._addrs[i] >= _RECLAIMED:
            raise MMError(errno.EINVAL, f"ID {id_} is not a live page allocation")
        if page.order != b.what:
            raise MMError(errno.EINVAL, f"ID {id_} is order {b.what}, not {page.order}")
        old = b._pages[i]
        b._pages[i] = page
        b._addrs[i] = page.pfn
        b.version += 1
        return old


    # ---- invariants (procsim.mm.check) -----------------------------------------------------
    def check(self) -> None:
        """Every live member is allocated where its batch says, every batch is filed under its
        task, and each task's counters are what its live members add up to."""
        counted = {t: Task(0, None) for t in self}
        for first, b in self._batches.items():
            assert first == b.first and b.task._batches.get(first) is b, f"batch {first} not filed under {b.task}"
            assert self._by_tag.get(b.task.tag) is b.task, f"batch {first}: {b.task} is not in the task list"
            live = 0
            for id_, a in b.entries():
                live += 1
                if b.kind == PAGES:
                    page = b._pages[id_ - first]
                    assert page.pfn == a and page.order == b.what, f"ID {id_}: pfn {a} but page {page}"
                    allocated = getattr(page.zone, "allocated", None)
                    assert allocated is None or allocated.get(a) is page, f"ID {id_}: pfn {a} is not allocated"
            assert live == b.live, f"batch {first}: live {b.live} but {live} live members"
            b._charge(+1, live, counted[b.task])
        for t, c in counted.items():
            got = (t.rss, t.pgtables_bytes, t.kernel_pages, t.objects)
            want = (c.rss, c.pgtables_bytes, c.kernel_pages, c.objects)
            assert got == want, f"{t}: counters {got} but its live allocations add up to {want}"
            assert all(self._batches.get(f) is b for f, b in t._batches.items()), f"{t} files a dead batch"


def _where(node, cpu) -> dict:
    where = {}
    if node is not None:
        where["node"] = node
    if cpu is not None:
        where["cpu"] = cpu
    return where
