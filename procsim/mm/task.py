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
and tagging a workload is what makes it a possible OOM victim.  A tag's task is made when
the tag is first used and exits, as a process does, when its last allocation is gone (freed,
reclaimed or killed by the OOM killer): a later use of the tag is a new task.  Pids are
handed out as alloc_pid() does: increasing (2, 3, ...; a pid once used is not given again,
even by a command that failed), up to pid_max, then again from RESERVED_PIDS, skipping the
pids in use.

An allocation's identity is its **ID** (the handle the control file prints), not its pfn:
compaction may ``move()`` a page allocation to another block, reclaim may ``reclaim()`` a
page-cache allocation (its ID then answers "reclaimed", not "unknown").  Each command's
allocations are one ``Batch`` (consecutive IDs, one task, one kind).  Slab and kmalloc
batches hold an ``array('Q')`` of object addresses (8 bytes per object).  Page batches hold
**segments**: runs of consecutive IDs whose blocks are contiguous in one zone (three
parallel arrays: first member index, first pfn, zone), because the allocator hands order-0
pages out in ascending runs (``PageAlloc.alloc_pages_runs``) -- 28 M pages of one command on
unfragmented memory are a handful of segments.  A freed or reclaimed stretch of IDs is a
segment whose pfn is a marker; freeing one ID out of a run splits its segment.  A member
has a ``Page`` handle (``z.allocated``) only when made page by page (orders above 0, the
per-page reference) or once ``lookup``/``move`` asked for one.

Every operation costs O(what it touches): an ID is found by bisecting an append-only array
of batch starts, then its batch's segment starts; a batch that loses its last member leaves
two dicts in O(1); freeing a tag walks that task's batches only, and frees page segments
as runs (``PageAlloc.free_pages_run``).  Selections are index ranges, never lists of IDs.

Allocations made by the kernel itself (the ``boot:`` workload, slab pages, page tables of
the direct map) are not here: they belong to no task, as in Linux.
"""
from __future__ import annotations

import errno
from array import array
from bisect import bisect_left, bisect_right
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Iterator

from . import gfp as G
from . import swapfile
from .buddy import Page
from .core_api import TaskKernel
from .errors import MMError
from .vmscan import LRU_OF_USE as LRU_USES, lru_add_run, lru_del_run
from .page_types import PAGE_SIZE
from .slub import SLAB_RECLAIM_ACCOUNT

# include/linux/mm_types_task.h: enum rss stat items
MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES = range(4)
# include/linux/threads.h
PID_MAX_DEFAULT, PID_MAX_LIMIT, RESERVED_PIDS, PIDS_PER_CPU_DEFAULT = 0x8000, 4 * 1024 * 1024, 300, 1024
NR_MM_COUNTERS = 4
OOM_SCORE_ADJ_MIN, OOM_SCORE_ADJ_MAX = -1000, 1000      # include/uapi/linux/oom.h
TASK_COMM_LEN = 16

# An allocation's state, as lookup() reports it.
LIVE, FREED, RECLAIMED, SWAPPED = "live", "freed", "reclaimed", "swapped"
_DEAD = (1 << 64) - 1            # a freed slot of a batch's array
_RECLAIMED = _DEAD - 1           # a slot whose page-cache block reclaim dropped
_SWAPPED = _DEAD - 2             # an anon member reclaim wrote to swap: still the task's, no pfn
# markers are the values >= _SWAPPED; members below _RECLAIMED are the task's (live or swapped)

PAGES, SLAB, KMALLOC = "pages", "slab", "kmalloc"       # Batch.kind
_NOBODY = object()                                       # no tag (None is the default task's)
PTRS_PER_TABLE = 512             # entries of a PTE, PMD or PUD page (x86-64, 4 KiB pages)
BH_SIZE = 104                    # sizeof(struct buffer_head), 64-bit
GFP_BUFFERS = G.GFP_NOFS | G.__GFP_ACCOUNT   # folio_alloc_buffers()
_BH_NONE, _BH_GONE = 0, 1        # Batch.bh: not made yet; the page is gone (else the object's address)
STRETCH = 64 * PTRS_PER_TABLE    # page cache is made in runs of up to this many pages; anon in
                                 # runs that end where a PTE table does, its table made first
GFP_PGTABLE_USER = G.GFP_KERNEL_ACCOUNT | G.__GFP_ZERO  # pte_alloc_one() and the upper levels


def pgtable_pages(pages: int) -> int:
    """Page-table pages mapping ``pages`` anonymous pages laid out from a table boundary (one
    growing mapping, as a heap or an mmap'ed arena): a PTE page per 512 pages, a PMD page per
    512 PTE pages, a PUD page per 512 PMD pages -- what mm_pgtables_bytes counts (the PGD is
    the mm's own).  A real 6.1 awk with 1962984 kB of anon had 3880 kB: 962 pages are this
    count, the other 8 map its binary, libraries and stack."""
    out, n = 0, pages
    for _ in range(3):
        n = -(-n // PTRS_PER_TABLE)
        out += n
    return out if pages > 0 else 0


_RSS_OF_USE = {"anon": MM_ANONPAGES, "pagecache": MM_FILEPAGES}


class Task:
    """A task_struct with its mm's counters (pages unless named otherwise).

    ``rss[MM_*]`` as mm->rss_stat, ``pgtables_bytes`` as mm->pgtables_bytes; memory the
    kernel allocated on the task's behalf but that is not rss (page blocks without a use,
    kernel stacks, slab objects) is counted in ``kernel_pages`` and ``objects``.
    """
    __slots__ = ("pid", "tag", "comm", "oom_score_adj", "rss", "pgtables_bytes", "kernel_pages", "objects",
                 "_batches", "pgtables")

    def __init__(self, pid: int, tag: str | None, oom_score_adj: int = 0):
        self.pid, self.tag = pid, tag
        self.comm = (tag or "init")[:TASK_COMM_LEN - 1]
        self.oom_score_adj = oom_score_adj
        self.rss = [0] * NR_MM_COUNTERS
        self.pgtables_bytes = 0
        self.kernel_pages = 0
        self.objects = 0
        self._batches: dict[int, Batch] = {}        # first ID -> batch with live members, ID order
        self.pgtables: list[Page] = []               # the page-table pages mapping its anon

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
    ``version`` (bumped whenever a member is freed, moved or reclaimed: a cache key),
    ``cpu`` and ``mt`` (pages: the cpu and migratetype they were allocated with).
    """
    __slots__ = ("first", "n", "task", "kind", "what", "use", "live", "reclaimed", "version", "cpu", "mt",
                 "lru", "bh", "_addrs", "_cache", "_idx", "_pfn", "_zone", "_pages")

    def __init__(self, first, task, kind, what, use, n: int, cache=None):
        self.first, self.n, self.task, self.kind, self.what, self.use = first, n, task, kind, what, use
        self._cache = cache
        self.live, self.reclaimed, self.version = n, 0, 0
        self.cpu = self.mt = None
        self._addrs = None                       # slab, kmalloc: object addresses
        self._idx = array("Q")                   # pages: segment -> index of its first member
        self._pfn = array("Q")                   #   its first pfn, or a marker (_DEAD, ...)
        self._zone: list = []                    #   its zone
        self._pages: dict = {}                   #   member index -> Page, for members that have one
        self.lru: list = []                      # anon / page cache: its LRU run entries by first member (vmscan)
        self.bh = None                           # page cache of a block-mapped file: each member's
                                                 # buffer_head by index (its address; _BH_NONE, _BH_GONE)

    @property
    def last(self) -> int:
        return self.first + self.n - 1

    def _append(self, i: int, zone, pfn: int) -> None:
        """Pages, while building: members from index i on start at pfn (blocks of this order)
        -- a new segment unless they continue the last one."""
        j = len(self._idx) - 1
        if j >= 0 and self._zone[j] is zone and self._pfn[j] + ((i - self._idx[j]) << self.what) == pfn:
            return
        self._idx.append(i)
        self._pfn.append(pfn)
        self._zone.append(zone)

    def _end(self, j: int) -> int:
        """Index one past segment j."""
        return self._idx[j + 1] if j + 1 < len(self._idx) else self.n

    def _seg(self, i: int) -> int:
        return bisect_right(self._idx, i) - 1

    def value(self, i: int) -> int:
        """Member i's pfn (pages: a marker when it has none) or object address."""
        if self._addrs is not None:
            return self._addrs[i]
        j = self._seg(i)
        p = self._pfn[j]
        return p if p >= _SWAPPED else p + ((i - self._idx[j]) << self.what)

    def segments(self) -> Iterator[tuple[int, int, int, object]]:
        """Pages: (first index, pfn or marker, members, zone) per segment, in index order."""
        idx, pfn, zone = self._idx, self._pfn, self._zone
        for j in range(len(idx)):
            yield idx[j], pfn[j], self._end(j) - idx[j], zone[j]

    def stretch(self, lo: int, hi: int) -> Iterator[tuple[int, int, int, object]]:
        """Pages: members lo..hi-1 as (first index, pfn or marker, members, zone) per segment."""
        idx, j = self._idx, self._seg(lo)
        while j < len(idx) and idx[j] < hi:
            s, e, p = max(lo, idx[j]), min(hi, self._end(j)), self._pfn[j]
            yield s, (p if p >= _SWAPPED else p + ((s - idx[j]) << self.what)), e - s, self._zone[j]
            j += 1

    def runs(self) -> Iterator[tuple[int, object, int, int]]:
        """Pages: the live runs as (first ID, zone, first pfn, members), in ID order: what
        reclaim and the OOM killer walk instead of single pages."""
        for i, p, n, z in self.segments():
            if p < _SWAPPED:
                yield self.first + i, z, p, n

    def entries(self) -> Iterator[tuple[int, int]]:
        """(ID, pfn) for pages, (ID, object address) for slab and kmalloc: the task's members
        (a swapped-out page member as (ID, None))."""
        first = self.first
        if self._addrs is not None:
            for i, a in enumerate(self._addrs):
                if a < _RECLAIMED:
                    yield first + i, a
            return
        shift = self.what
        for i, p, n, _ in self.segments():
            if p < _SWAPPED:
                for j in range(n):
                    yield first + i + j, p + (j << shift)
            elif p == _SWAPPED:
                for j in range(n):
                    yield first + i + j, None

    def live_ranges(self) -> list[tuple[int, int]]:
        """The task's members (live or swapped out) as index ranges [lo, hi)."""
        if self._addrs is None:
            out: list = []
            for i, p, n, _ in self.segments():
                if p < _RECLAIMED:
                    if out and out[-1][1] == i:
                        out[-1] = (out[-1][0], i + n)
                    else:
                        out.append((i, i + n))
            return out
        out, lo = [], None
        for i, a in enumerate(self._addrs):
            if a < _RECLAIMED:
                if lo is None:
                    lo = i
            elif lo is not None:
                out.append((lo, i))
                lo = None
        if lo is not None:
            out.append((lo, len(self._addrs)))
        return out

    # ---- page segments: splitting and marking ----------------------------------------------
    def _split(self, i: int) -> int:
        """Make index i the start of a segment (i == n: none); returns that segment's number."""
        if i >= self.n:
            return len(self._idx)
        j = self._seg(i)
        start = self._idx[j]
        if start == i:
            return j
        p = self._pfn[j]
        self._idx.insert(j + 1, i)
        self._pfn.insert(j + 1, p if p >= _SWAPPED else p + ((i - start) << self.what))
        self._zone.insert(j + 1, self._zone[j])
        return j + 1

    def _set(self, lo: int, hi: int, pfn: int, zone) -> None:
        """Members lo..hi-1 become one segment starting at pfn (or a marker), merged with
        neighbours it continues, so equal histories leave equal segments."""
        a, b = self._split(lo), self._split(hi)
        del self._idx[a + 1:b], self._pfn[a + 1:b], self._zone[a + 1:b]
        self._pfn[a] = pfn
        self._zone[a] = zone
        if a + 1 < len(self._idx) and self._continues(a, a + 1):
            del self._idx[a + 1], self._pfn[a + 1], self._zone[a + 1]
        if a and self._continues(a - 1, a):
            del self._idx[a], self._pfn[a], self._zone[a]

    def _continues(self, j: int, k: int) -> bool:
        p, q = self._pfn[j], self._pfn[k]
        if p >= _SWAPPED or q >= _SWAPPED:
            return p == q
        return self._zone[j] is self._zone[k] and p + ((self._idx[k] - self._idx[j]) << self.what) == q

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


class _RunPages:
    """The pages of a list of [zone, pfn, n] runs, as len() (InFlight.got of the runs path)."""
    __slots__ = ("runs",)

    def __init__(self, runs: list):
        self.runs = runs

    def __len__(self) -> int:
        return sum(r[2] for r in self.runs)


class InFlight:
    """The allocation a command is making (``k.current``): the task it will belong to and
    the blocks made so far, which the OOM killer counts as that task's (current->mm)."""
    __slots__ = ("tasks", "tag", "order", "use", "got")

    def __init__(self, tasks, tag, order, use, got):
        self.tasks, self.tag, self.order, self.use, self.got = tasks, tag, order, use, got

    @property
    def task(self) -> "Task":
        """The tag's task, or the one it would become (the next pid)."""
        return self.tasks.find_task(self.tag) or Task(self.tasks.peek_pid(), self.tag)


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
    """The task list and every allocation made for a task (``k.tasks``).  Its kernel is
    a core_api.TaskKernel (the tests' FakeKernel too); the bulk-runs, alloc_pages_exact,
    fault and LRU paths ask the production Kernel's RunsKernel surface."""

    def __init__(self, kernel: TaskKernel):
        self.k: TaskKernel = kernel
        self.next_id = 1
        self.default = Task(1, None, OOM_SCORE_ADJ_MIN)
        self._by_tag: dict[str | None, Task] = {None: self.default}
        self._next_pid = 2
        self._wrapped = False                      # pids went past pid_max once
        self._running = _NOBODY                    # the tag a slab batch is being made for
        # kernel/pid.c pid_idr_init(): PID_MAX_DEFAULT, raised to PIDS_PER_CPU_DEFAULT per
        # possible cpu, at most PID_MAX_LIMIT
        self.pid_max = min(PID_MAX_LIMIT, max(PID_MAX_DEFAULT,
                                              PIDS_PER_CPU_DEFAULT * kernel.nr_cpu_ids))
        self._batches: dict[int, Batch] = {}       # first -> batch with live members, ID order
        self._gone: dict[int, Batch] = {}          # batches with no live member but reclaimed ones
        self._firsts = array("Q")                  # first ID of every batch ever made (bisect)
        self.touched = 0                           # batches visited by selections (tests count work)

    # ---- tasks --------------------------------------------------------------------------
    def task(self, tag: str | None) -> Task:
        """The task tag names (None: the default task), created on first use."""
        t = self._by_tag.get(tag)
        if t is None:
            pid = self.peek_pid()
            t = self._by_tag[tag] = Task(pid, tag)
            self._wrapped = self._wrapped or pid < self._next_pid
            self._next_pid = pid + 1
        return t

    def peek_pid(self) -> int:
        """The pid the next new task gets: alloc_pid()'s idr_alloc_cyclic() from the last
        one; past pid_max again from RESERVED_PIDS, skipping the pids in use."""
        pid = self._next_pid
        if not self._wrapped and pid < self.pid_max:
            return pid
        used = {t.pid for t in self._by_tag.values()}
        for _ in range(2):
            if pid >= self.pid_max:
                pid = RESERVED_PIDS
            while pid < self.pid_max and pid in used:
                pid += 1
            if pid < self.pid_max:
                return pid
        raise MMError(errno.EAGAIN, f"no free pid below pid_max ({self.pid_max})")

    def _exit_if_empty(self, t: Task) -> None:
        """A task whose last allocation went exits (do_exit): it leaves the task list, so the
        OOM report, trace lines and a later use of its tag see it gone.  Not while a command
        runs for it (k.current)."""
        if t._batches or t is self.default or self._by_tag.get(t.tag) is not t:
            return
        cur = self.k.current
        if (cur is not None and cur.tag == t.tag) or self._running == t.tag:
            return
        del self._by_tag[t.tag]

    def find_task(self, tag: str | None) -> Task | None:
        return self._by_tag.get(tag)

    def __iter__(self) -> Iterator[Task]:
        """Every task, in the order they were made (for_each_process)."""
        return iter(list(self._by_tag.values()))

    # ---- allocating ---------------------------------------------------------------------
    def alloc_pages(self, tag: str | None, order: int, gfp: int, count: int = 1, node=None, cpu=None,
                    use: str | None = None, buffers: bool = False) -> range:
        """count blocks of 2^order pages for the task tag names; all or nothing (a failure
        frees what the call made, newest first, and creates no task).  Returns the new IDs.
        Order 0 comes from the allocator as runs (no Page per page) unless the kernel's
        ``page_runs`` is off, which makes this the per-page reference.  ``buffers``: page
        cache of a block-mapped file, each page with its buffer_head (_attach_buffers)."""
        k = self.k
        if buffers:
            check_buffers(use, order)
        # runs, unless the reference is asked for (the runs emit every page's trace events)
        if order == 0 and k.page_runs:
            self._trace_current(tag)
            if use in LRU_USES:
                return self._fault_in_runs(tag, gfp, count, node, cpu, use, buffers)
            runs: list = []
            k.current = InFlight(self, tag, 0, use, _RunPages(runs))
            try:
                runs, cpu_used, err = k.alloc_pages_runs(gfp, count, node, cpu, use, out=runs)
            except MMError as e:                             # refused before a page moved
                raise _failed(e, count, 0) from None
            finally:
                k.current = None
            if err is not None:
                mt = G.gfp_migratetype(gfp)
                for z, pfn, n in reversed(runs):            # newest first, as one by one
                    k.free_pages_run(z, pfn, n, cpu_used, mt, use, descending=True)
                raise _failed(err, count, sum(n for _, _, n in runs))
            b = self._new(tag, PAGES, order, use, count)
            b.cpu, b.mt = cpu_used, G.gfp_migratetype(gfp)
            i = 0
            for z, pfn, n in runs:
                b._append(i, z, pfn)
                i += n
            return self._file(b)
        where = _where(node, cpu)
        if use is not None:
            where["use"] = use
        self._trace_current(tag)
        if use in LRU_USES:
            return self._fault_in(tag, order, gfp, count, where, buffers)
        got: list = []
        k.current = InFlight(self, tag, order, use, got)       # who the OOM killer sees allocating
        clock = k.task_clock(cpu, node, use, order)            # a task allocating in a loop (mm/sched.py)
        try:
            for i in range(count):
                clock.at(i)
                got.append(k.alloc_pages(order, gfp, **where))
        except MMError as e:                                    # the time spent, then the undo
            clock.done(len(got))
            for page in reversed(got):
                k.free_pages(page)
            raise _failed(e, count, len(got)) from None
        finally:
            k.current = None
        clock.done(count)
        pages = got
        return self._add_pages(tag, order, use, pages)

    def _fault_in(self, tag, order: int, gfp: int, count: int, where: dict, buffers: bool = False) -> range:
        """Anon or page cache, one block at a time like a task faulting it in: each block is
        the task's (its ID, its rss, the LRU owner) as soon as it is made, so reclaim under
        this very command may drop or swap out the ones made before, as the kernel reclaims a
        process's own earlier pages.  All or nothing: on a failure the members still held
        are freed newest first (pages, swap slots), the IDs are not handed out and a task
        this command created is gone again."""
        k = self.k
        new_task = tag not in self._by_tag
        b = self._new(tag, PAGES, order, where.get("use"), 0)
        self._file(b)
        if buffers:
            b.bh = array("Q")
        k.current = InFlight(self, tag, order, b.use, [])    # its blocks are in the task already
        clock = k.task_clock(where.get("cpu"), where.get("node"), b.use, order)   # faulting in a loop (mm/sched.py)
        i = 0
        try:
            t = b.task
            for i in range(count):
                clock.at(i)
                if b.use == "anon" and self._table_ahead(t) < 1 << order:   # a range with no table yet
                    self._pgtables(b, 1 << order, where.get("node"), where.get("cpu"))
                    clock.at(i)                # what the tables' allocations woke runs first, as
                                               # in _fault_in_runs (its next stretch's first step)
                page = k.alloc_pages(order, gfp, **where)
                if i == 0:
                    b.cpu, b.mt = page.cpu, page.migratetype
                page.owner, page.idx = b, i             # named: reclaim may take it from now on
                b._pages[i] = page
                self._grow(b, page.zone, page.pfn, 1)
                self._attach_buffers(b, where.get("node"), where.get("cpu"))
        except MMError as e:
            clock.done(i)
            made = b.n
            self._faulted(b, made)
            self._unfault(b, new_task)
            self._pgtables(b)
            raise _failed(e, count, made) from None
        finally:
            k.current = None
        self._faulted(b, b.n)
        clock.done(count)
        return range(b.first, b.last + 1)

    def _fault_in_runs(self, tag, gfp: int, count: int, node, cpu, use: str, buffers: bool = False) -> range:
        """_fault_in() for order 0 with the allocator's runs: each stretch joins the filed
        batch and the LRU as it is made (``_made``), exactly where the per-page path would
        have its pages."""
        k = self.k
        new_task = tag not in self._by_tag
        b = self._new(tag, PAGES, 0, use, 0)
        self._file(b)
        if buffers:
            b.bh = array("Q")
        b.cpu = cpu if cpu is not None else k.default_cpu(node)     # the cpu alloc_pages_runs takes
        b.mt = G.gfp_migratetype(gfp)
        k.current = InFlight(self, tag, 0, use, [])         # its blocks are in the task already
        try:
            err, done = None, 0
            t = b.task
            while done < count and err is None:         # a stretch and the tables it needs first
                n = STRETCH
                if use == "anon":
                    n = self._table_ahead(t)
                    if not n:                           # the next page starts a new PTE table
                        self._pgtables(b, 1, node, cpu)
                        n = PTRS_PER_TABLE
                n = min(count - done, n)
                _, _, err = k.alloc_pages_runs(gfp, n, node, cpu, use, made=partial(self._made, b, node, cpu))
                done += n
        except MMError as e:                                 # refused before a page moved
            err = e
        finally:
            k.current = None
        made = b.n
        self._faulted(b, made)
        if err is not None:
            self._unfault(b, new_task)
            self._pgtables(b)
            raise _failed(err, count, made)
        return range(b.first, b.last + 1)

    def _faulted(self, b: "Batch", n: int) -> None:
        """The events of n blocks faulted in, made even when the command is then undone: an
        anon block is one page fault (handle_mm_fault's PGFAULT: a huge page is one); page
        cache is read from the file: pgpgin counts the read in kB (submit_bio's sectors, which
        /proc/vmstat halves)."""
        if not n:
            return
        ev = self.k.vm_events
        if b.use == "anon":
            ev["pgfault"] = ev.get("pgfault", 0) + n
        elif b.use == "pagecache":
            ev["pgpgin"] = ev.get("pgpgin", 0) + (n << b.what) * PAGE_SIZE // 1024

    @staticmethod
    def _table_ahead(t) -> int:
        """Pages the task's last PTE table still maps ahead of its anon (resident and
        swapped): the next fault past them allocates a table first (__pte_alloc)."""
        return (-(t.rss[MM_ANONPAGES] + t.rss[MM_SWAPENTS])) % PTRS_PER_TABLE

    def _pgtables(self, b: "Batch", more: int = 0, node=None, cpu=None) -> None:
        """The page tables of b's task, for its anon (resident and swapped: a swap entry is a
        pte too) and ``more`` pages about to be faulted in: allocated before the pages they
        map, as __handle_mm_fault() allocates a table before do_anonymous_page(); freed when
        the anon they map is unmapped (free_pgtables()).  Counted in the task's
        pgtables_bytes and, as use=page_tables, in NR_PAGETABLE.  They come from where the
        pages do (the faulting cpu, the task's memory policy: node=, cpu=)."""
        t = b.task
        if b.use != "anon":
            return
        k = self.k
        want = pgtable_pages(t.rss[MM_ANONPAGES] + t.rss[MM_SWAPENTS] + more)
        while len(t.pgtables) > want:
            k.free_pages(t.pgtables.pop())
            t.pgtables_bytes -= PAGE_SIZE
        while len(t.pgtables) < want:
            t.pgtables.append(k.alloc_pages(0, GFP_PGTABLE_USER, node=node, cpu=cpu, use="page_tables"))
            t.pgtables_bytes += PAGE_SIZE

    def _made(self, b: Batch, node, cpu, z, pfn: int, n: int) -> None:
        """Pages pfn..pfn+n-1 of z are b's next n members, on the LRU under their own IDs."""
        i = b.n
        self._grow(b, z, pfn, n)
        lru_add_run(self.k, b, i, i + n, z)
        self._attach_buffers(b, node, cpu)

    def _attach_buffers(self, b: Batch, node=None, cpu=None) -> None:
        """create_empty_buffers(): each page-cache page of b made since the last call gets a
        buffer_head (one 4 KiB block a page) from bh_cachep (SLAB_RECLAIM_ACCOUNT: reclaimable
        pageblocks), right after the page, as a write to a block-mapped file (ext2/ext4's
        buffered writes) makes them; try_to_free_buffers() frees it with the page.  A slab
        page for them may reclaim one of these very pages first (the kernel holds the page
        locked meanwhile): its buffer_head is then freed as soon as it is made."""
        if b.bh is None:
            return
        slab = self.k.slab
        cache = slab.find("buffer_head") or slab.kmem_cache_create("buffer_head", BH_SIZE, 0, SLAB_RECLAIM_ACCOUNT)
        where = _where(node, cpu)
        bh = b.bh
        lo = len(bh)
        bh.extend([_BH_NONE] * (b.n - lo))
        for j in range(lo, b.n):
            addr = slab.kmem_cache_alloc(cache, GFP_BUFFERS, **where)
            if bh[j] == _BH_GONE:                   # reclaimed while its buffer_head was made
                slab.kmem_cache_free(cache, addr)
            else:
                bh[j] = addr

    def _free_buffers(self, b: Batch, lo: int, hi: int) -> None:
        """try_to_free_buffers(): the buffer_heads of members lo..hi-1 that still have one."""
        bh = b.bh
        slab = self.k.slab
        cache = slab.find("buffer_head")
        for j in range(lo, min(hi, len(bh))):
            if bh[j] > _BH_GONE:
                slab.kmem_cache_free(cache, bh[j])
            bh[j] = _BH_GONE

    def _grow(self, b: Batch, z, pfn: int, n: int) -> None:
        """Blocks from pfn on in z become filed batch b's next n members: their IDs handed
        out, the task charged for them."""
        b._append(b.n, z, pfn)
        b.n += n
        self.next_id += n
        if not b.live:                          # emptied by reclaim or the OOM killer: filed again
            self._batches[b.first] = b.task._batches[b.first] = b
        b.live += n
        b._charge(+1, n)

    def _unfault(self, b: Batch, new_task: bool) -> None:
        """Undo a _fault_in() that failed: free what b still holds, newest first (a run
        descending, as one free_pages() per page would), and forget b."""
        held = sum(n for _, p, n, _ in b.segments() if p <= _SWAPPED)
        if held:
            self._free_pages(b, 0, b.n, descending=True)
            b._set(0, b.n, _DEAD, None)
            self._drop(b, held)
        self._gone.pop(b.first, None)
        self._batches.pop(b.first, None)
        b.task._batches.pop(b.first, None)
        self._firsts.pop()
        self.next_id = b.first
        if not b.task._batches and self._by_tag.get(b.task.tag) is b.task and b.task is not self.default:
            del self._by_tag[b.task.tag]               # exits; its pid stays used (alloc_pid moved on)

    def alloc_pages_exact(self, tag: str | None, size: int, gfp: int, node=None, cpu=None) -> range:
        """alloc_pages_exact(): the order-0 pages of the covering block that size needs (the
        kernel frees the tail); one ID per page kept."""
        return self._add_pages(tag, 0, None, self.k.alloc_pages_exact(size, gfp, **_where(node, cpu)))

    def _add_pages(self, tag, order, use, pages) -> range:
        """A batch of pages made one by one, each with its Page."""
        b = self._new(tag, PAGES, order, use, len(pages))
        b.cpu, b.mt = pages[0].cpu, pages[0].migratetype
        for i, page in enumerate(pages):
            page.owner, page.idx = b, i             # migration moves the identity with the page
            b._append(i, page.zone, page.pfn)
            b._pages[i] = page
        return self._file(b)

    def kmalloc(self, tag: str | None, size: int, gfp: int, count: int = 1, node=None, cpu=None) -> range:
        slab, where = self.k.slab, _where(node, cpu)
        self._trace_current(tag)
        with self._running_for(tag):
            addrs = self._run(count, lambda: slab.kmalloc(size, gfp, **where), slab.kfree, array("Q"))
        return self._objects(tag, KMALLOC, size, addrs)

    def kmem_cache_alloc(self, tag: str | None, cache, gfp: int, count: int = 1, node=None, cpu=None) -> range:
        slab, where = self.k.slab, _where(node, cpu)
        self._trace_current(tag)
        with self._running_for(tag):
            addrs = self._run(count, lambda: slab.kmem_cache_alloc(cache, gfp, **where),
                              lambda a: slab.kmem_cache_free(cache, a), array("Q"))
        return self._objects(tag, SLAB, cache.name, addrs, cache)

    @contextmanager
    def _running_for(self, tag):
        """A slab batch is being made for tag: its task does not exit under it (reclaim may
        take its last pages meanwhile); if the batch fails and it owns nothing, it exits."""
        self._running = tag
        try:
            yield
        except BaseException:
            self._running = _NOBODY
            t = self._by_tag.get(tag)
            if t is not None:
                self._exit_if_empty(t)
            raise
        finally:
            self._running = _NOBODY

    def _trace_current(self, tag, task: Task | None = None) -> None:
        """Trace lines name the task an operation runs for (ftrace's TASK-PID column)."""
        tr = self.k.trace
        if tr.active:
            task = task or self._by_tag.get(tag)
            tr.current = (task.comm, task.pid) if task else ((tag or "init")[:TASK_COMM_LEN - 1], self._next_pid)

    @staticmethod
    def _run(count: int, alloc, free, got: list | None = None) -> list:
        """alloc() count times; on a failure free what was made, newest first, and re-raise."""
        got = [] if got is None else got
        try:
            for _ in range(count):
                got.append(alloc())
        except BaseException as e:
            for item in reversed(got):
                free(item)
            if isinstance(e, MMError):
                raise _failed(e, count, len(got)) from None
            raise
        return got

    def _objects(self, tag, kind, what, addrs: list, cache=None) -> range:
        b = self._new(tag, kind, what, None, len(addrs), cache)
        b._addrs = addrs if isinstance(addrs, array) else array("Q", addrs)   # 8 bytes an object
        return self._file(b)

    def _new(self, tag, kind, what, use, n, cache=None) -> Batch:
        return Batch(self.next_id, self.task(tag), kind, what, use, n, cache)

    def _file(self, b: Batch) -> range:
        task = b.task
        self.next_id += b.n
        self._batches[b.first] = task._batches[b.first] = b
        self._firsts.append(b.first)
        b._charge(+1, b.n)
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
        """What ID id_ is now: LIVE, SWAPPED, FREED or RECLAIMED; None if never handed out.
        A live page member gets its Page handle here if it had none (see ``page``)."""
        if not 0 < id_ < self.next_id:
            return None
        b, i = self._slot(id_)
        if b is None:
            return Allocation(id_, FREED)
        a = b.value(i)
        state = LIVE if a < _SWAPPED else {_SWAPPED: SWAPPED, _RECLAIMED: RECLAIMED}.get(a, FREED)
        return Allocation(id_, state, b.task, b.kind, b.what, b.use, a if state == LIVE else None,
                          self.page(b, i) if state == LIVE and b.kind == PAGES else None)

    def page(self, b: Batch, i: int):
        """The Page of live page member i of b, made (and entered in its zone's ``allocated``,
        as alloc_pages() would have) when the member came as part of a run."""
        page = b._pages.get(i)
        if page is None:
            j = b._seg(i)
            page = Page()
            page.pfn = b.value(i); page.order = b.what; page.zone = b._zone[j]
            page.migratetype = b.mt; page.cpu = b.cpu; page.use = b.use
            page.owner, page.idx = b, i            # migration moves the identity with the page
            page.zone.allocated[page.pfn] = page
            b._pages[i] = page
        return page

    @staticmethod
    def in_memory_value(p: int) -> bool:
        """A member's pfn (Batch.value, stretch, segments) is a page, not a marker (freed,
        reclaimed, swapped out)."""
        return p < _SWAPPED

    def batches(self, task: Task | None = None) -> Iterator[Batch]:
        """Batches with live members, in ID order (of one task, or all)."""
        return iter(list((task._batches if task is not None else self._batches).values()))

    @property
    def nr_live(self) -> int:
        return sum(b.live for b in self._batches.values())

    def select_ids(self, lo: int, hi: int, kind: str, cache: str | None = None) -> list[tuple[Batch, list]]:
        """The members IDs lo..hi name -- (batch, [(lo, hi) index ranges]) per batch -- all
        live and of this kind (and cache), else MMError ENOENT / EINVAL naming the first that
        is not.  Changes nothing; one bisect per batch touched, one step per page segment."""
        sel = []
        id_ = lo
        while id_ <= hi:
            b, i = self._slot(id_)
            self.touched += 1
            if b is None:
                raise MMError(errno.ENOENT, f"no live allocation with ID {id_}")
            n = min(hi, b.last) - id_ + 1
            if b._addrs is not None:
                gone = next(((j, a) for j in range(i, i + n) if (a := b._addrs[j]) >= _RECLAIMED), None)
            else:
                gone = None
                j = b._seg(i)
                while j < len(b._idx) and b._idx[j] < i + n:
                    if b._pfn[j] >= _RECLAIMED:
                        gone = (max(i, b._idx[j]), b._pfn[j])
                        break
                    j += 1
            if gone is not None:
                j, a = gone
                if a == _RECLAIMED:
                    raise MMError(errno.ENOENT, f"ID {b.first + j} was reclaimed (its page cache was dropped"
                                                " under memory pressure)")
                raise MMError(errno.ENOENT, f"no live allocation with ID {b.first + j}")
            if b.kind != kind or (cache is not None and b.what != cache):
                owner = f"{b.kind} of {b.what}" if b.kind == SLAB else b.kind
                raise MMError(errno.EINVAL, f"ID {b.first + i} is a {owner} allocation, not {cache or kind}")
            sel.append((b, [(i, i + n)]))
            id_ += n
        return sel

    def select_task(self, task: Task | None, kind: str | None = None,
                    cache: str | None = None) -> list[tuple[Batch, list]]:
        """Every live member of task of this kind (None: every kind, as exit_mmap would free),
        and cache, as (batch, [(lo, hi) index ranges]) in ID order; [] if none.  Touches
        that task's batches only, and page batches segment by segment."""
        sel = []
        for b in (task._batches.values() if task is not None else ()):
            self.touched += 1
            if (kind is None or b.kind == kind) and (cache is None or b.what == cache):
                sel.append((b, b.live_ranges()))
        return sel

    # ---- freeing, reclaim, compaction -----------------------------------------------------
    def free(self, sel: list[tuple[Batch, list]]) -> int:
        """Give the selected members back to the allocator they came from, in ID order;
        returns how many."""
        k = self.k
        total = 0
        for b, ranges in sel:
            self._trace_current(None, b.task)
            done = 0
            try:
                handles = sorted(b._pages) if b._pages else []
                for lo, hi in ranges:
                    if b.kind == PAGES:
                        self._free_pages(b, lo, hi, handles)
                        b._set(lo, hi, _DEAD, None)
                        done += hi - lo
                        continue
                    addrs = b._addrs
                    free = k.slab.kfree if b.kind == KMALLOC else partial(k.slab.kmem_cache_free, b._cache)
                    for i in range(lo, hi):
                        free(addrs[i])
                        addrs[i] = _DEAD
                        done += 1
            finally:
                self._drop(b, done)
                self._pgtables(b)
            total += done
        return total

    def _free_pages(self, b: Batch, lo: int, hi: int, handles: list | None = None,
                    descending: bool = False) -> None:
        """Free the members lo..hi-1 of b still held, in index order (``descending``: newest
        first, a run from its last page, as one free_pages() per page would): runs through
        free_pages_run(), members with a Page through free_pages(), swapped ones' slots.
        ``handles``: b's Page members, sorted."""
        k = self.k
        if b.lru:                                # off the LRU: the runs holding them (vmscan)
            lru_del_run(k, b, lo, hi)
        if handles is None:
            handles = sorted(b._pages) if b._pages else []
        j = b._seg(lo)
        segs = [(b._idx[t], b._pfn[t], b._end(t) - b._idx[t], b._zone[t])
                for t in range(j, bisect_left(b._idx, hi))]
        pieces: list = []                        # a Page member's index, or a run (zone, pfn, pages)
        for i, pfn, n, z in segs:
            s, e = max(lo, i), min(hi, i + n)
            if s >= e or pfn > _SWAPPED:         # reclaimed or freed already
                continue
            if pfn == _SWAPPED:                 # free_swap_and_cache(): the slots, no pages
                self._swap_charge(b.task, -((e - s) << b.what))    # _drop() uncharges them as anon
                swapfile.swap_free(k, (e - s) << b.what)
                continue
            for h in handles[bisect_left(handles, s):bisect_left(handles, e)]:
                if h > s:
                    pieces.append((z, pfn + (s - i), h - s))
                pieces.append(h)
                s = h + 1
            if s < e:
                pieces.append((z, pfn + (s - i), e - s))
        for piece in reversed(pieces) if descending else pieces:
            if isinstance(piece, int):
                k.free_pages(b._pages.pop(piece))
            else:
                k.free_pages_run(*piece, b.cpu, b.mt, b.use, descending=descending)
        if b.bh is not None:                     # the folios' buffers go with them
            self._free_buffers(b, lo, hi)

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
            if not b.task._batches:
                self._exit_if_empty(b.task)

    def reclaim(self, id_: int, n: int = 1) -> int:
        """Reclaim drops page-cache allocations id_ .. id_+n-1 (one batch): their pages go back
        to the buddy allocator and the IDs answer RECLAIMED from now on.  Returns the pages
        freed.  A run is reclaimed in one step (shrink_folio_list on a large folio)."""
        b, i = self._evict(id_, n, "pagecache", _RECLAIMED)
        b.reclaimed += n
        self._drop(b, n)
        return n << b.what

    def swap_out(self, id_: int, n: int = 1) -> int:
        """Reclaim wrote anon members id_ .. id_+n-1 (one batch) to swap slots it already
        took (add_to_swap): their pages go back to the buddy allocator, the task keeps the
        IDs, its rss moves from MM_ANONPAGES to MM_SWAPENTS (try_to_unmap's swap ptes).
        Returns the pages freed."""
        b, _ = self._evict(id_, n, "anon", _SWAPPED)
        b.version += 1
        self._swap_charge(b.task, n << b.what)
        return n << b.what

    @staticmethod
    def _swap_charge(task: Task, pages: int) -> None:
        """pages of task's anon became swap entries (negative: came back or were freed)."""
        task.rss[MM_ANONPAGES] -= pages
        task.rss[MM_SWAPENTS] += pages

    def _evict(self, id_: int, n: int, use: str, marker: int) -> tuple[Batch, int]:
        """Free the pages of members id_ .. id_+n-1 (one batch of this use, all in memory) and
        mark them; returns (batch, index of id_)."""
        b, i = self._slot(id_)
        if b is None or b.kind != PAGES or b.use != use or n < 1 or i + n > b.n \
                or any(p >= _SWAPPED for _, p, _, _ in b.stretch(i, i + n)):
            what = f"ID {id_}" if n == 1 else f"IDs {id_}-{id_ + n - 1}"
            raise MMError(errno.EINVAL, f"{what} is not a live {use} allocation in memory")
        self._free_pages(b, i, i + n)
        b._set(i, i + n, marker, None)
        return b, i

    def swap_in(self, sel: list[tuple[Batch, list]], gfp: int = G.GFP_HIGHUSER_MOVABLE) -> int:
        """do_swap_page() for the swapped-out members of a selection, one fault per page in
        ID order: a new page (pswpin, pgmajfault), its slot freed (a fault that writes an
        exclusive page frees it: should_try_to_free_swap), on the inactive anon list.  All
        or nothing: on ENOMEM the pages made go back and every member stays swapped.
        Returns how many came in."""
        k = self.k
        made: list = []                         # (batch, index, page)
        try:
            for b, ranges in sel:
                for lo, hi in ranges:
                    for i, p, n, _ in list(b.segments()):
                        if p != _SWAPPED or i >= hi or i + n <= lo:
                            continue
                        got: list = []
                        k.current = InFlight(self, b.task.tag, b.what, "anon", got)
                        for j in range(max(lo, i), min(hi, i + n)):
                            got.append(k.alloc_pages(b.what, gfp, use="anon"))
                            made.append((b, j, got[-1]))
        except MMError as e:
            for _, _, page in reversed(made):
                k.free_pages(page)
            raise MMError(e.errno, e.message + f" (swapping in: the {len(made)} pages swapped in were"
                                               " given back)") from None
        finally:
            k.current = None
        for b, i, page in made:
            if b.value(i) != _SWAPPED:          # the OOM killer freed its task meanwhile
                k.free_pages(page)
                continue
            page.owner, page.idx = b, i             # named: no longer PINNED
            b._set(i, i + 1, page.pfn, page.zone)
            b._pages[i] = page
            b.version += 1
            pages = 1 << b.what
            swapfile.swap_free(k, pages)
            self._swap_charge(b.task, -pages)
            ev = k.vm_events
            for event, n in (("pswpin", pages), ("pgpgin", pages * PAGE_SIZE // 1024),
                             ("pgfault", 1), ("pgmajfault", 1)):
                ev[event] = ev.get(event, 0) + n
        return len(made)

    def move(self, id_: int, page) -> object:
        """Compaction moved page allocation id_ to ``page`` (already allocated by the caller,
        same order); the ID now names it.  Returns the old Page for the caller to free
        (made for it if the member came as part of a run)."""
        b, i = self._slot(id_)
        if b is None or b.kind != PAGES or b.value(i) >= _SWAPPED:
            raise MMError(errno.EINVAL, f"ID {id_} is not a live page allocation in memory")
        if page.order != b.what:
            raise MMError(errno.EINVAL, f"ID {id_} is order {b.what}, not {page.order}")
        old = self.page(b, i)
        page.owner, page.idx = b, i
        b._set(i, i + 1, page.pfn, page.zone)
        b._pages[i] = page
        b.version += 1
        return old

    def run_pages(self):
        """Live page members without a Page handle, as (zone, first pfn, pages, batch): the
        allocations the zones' ``allocated`` maps do not hold (procsim.mm.check)."""
        for z, pfn, npages, b, _ in self._run_members():
            yield z, pfn, npages, b

    def _run_members(self):
        """run_pages() with each run's first member index."""
        for b in self._batches.values():
            if b.kind != PAGES:
                continue
            handles = sorted(b._pages)
            for i, p, n, z in b.segments():
                if p >= _SWAPPED:
                    continue
                s = i
                for h in handles[bisect_left(handles, i):bisect_left(handles, i + n)]:
                    if h > s:
                        yield z, p + ((s - i) << b.what), (h - s) << b.what, b, s
                    s = h + 1
                if s < i + n:
                    yield z, p + ((s - i) << b.what), (i + n - s) << b.what, b, s

    def run_page_finder(self, zone):
        """pfn -> the Page of the live run member at pfn in zone (made on demand, as page()
        does), or None: how compaction's migrate scanner sees allocations kept as runs.
        Built in O(runs of the zone); each question is one bisect."""
        starts, runs = [], []
        for pfn, n, b, i in sorted((p, n, b, i) for z, p, n, b, i in self._run_members() if z is zone):
            starts.append(pfn)
            runs.append((pfn + n, b, i))

        def find(pfn):
            j = bisect_right(starts, pfn) - 1
            if j < 0 or pfn >= runs[j][0]:
                return None
            end, b, i = runs[j]
            off = pfn - starts[j]
            if off & ((1 << b.what) - 1):        # not the head of a block
                return None
            i += off >> b.what
            return self.page(b, i) if b.value(i) == pfn else None   # moved away meanwhile: no

        def span(pfn):
            """(end pfn, batch) of the run whose block head pfn is, or None: what the migrate
            scanner steps over in one go when the run cannot move (no Page is made)."""
            j = bisect_right(starts, pfn) - 1
            if j < 0 or pfn >= runs[j][0]:
                return None
            end, b, i = runs[j]
            if (pfn - starts[j]) & ((1 << b.what) - 1):
                return None
            return end, b
        find.span = span
        return find

    # ---- invariants (procsim.mm.check) -----------------------------------------------------
    def check(self) -> None:
        """Every live member is allocated where its batch says, every batch is filed under its
        task, and each task's counters are what its live members add up to."""
        counted = {t: Task(0, None) for t in self}
        for first, b in self._batches.items():
            assert first == b.first and b.task._batches.get(first) is b, f"batch {first} not filed under {b.task}"
            assert self._by_tag.get(b.task.tag) is b.task, f"batch {first}: {b.task} is not in the task list"
            if b.kind == PAGES:
                live = sum(n for _, p, n, _ in b.segments() if p < _RECLAIMED)
                swapped = sum(n for _, p, n, _ in b.segments() if p == _SWAPPED) << b.what
                assert not swapped or b.use == "anon", f"batch {first}: {b.use} pages swapped out"
                counted[b.task].rss[MM_ANONPAGES] -= swapped
                counted[b.task].rss[MM_SWAPENTS] += swapped
                for i, page in b._pages.items():
                    a = b.value(i)
                    assert a < _SWAPPED, f"ID {first + i} is not in memory but keeps a Page"
                    assert page.pfn == a and page.order == b.what and page.owner is b and page.idx == i, \
                        f"ID {first + i}: pfn {a} but page {page} (ID {page.id})"
                    assert page.zone.allocated.get(a) is page, f"ID {first + i}: pfn {a} is not allocated"
                for j in range(1, len(b._idx)):
                    assert b._idx[j - 1] < b._idx[j] and not b._continues(j - 1, j), \
                        f"batch {first}: segments {j - 1} and {j} are not canonical"
            else:
                live = sum(1 for _ in b.entries())
            assert live == b.live, f"batch {first}: live {b.live} but {live} live members"
            b._charge(+1, live, counted[b.task])
        for t, c in counted.items():
            c.pgtables_bytes += len(t.pgtables) * PAGE_SIZE
            assert len(t.pgtables) == pgtable_pages(c.rss[MM_ANONPAGES] + c.rss[MM_SWAPENTS]), \
                f"{t}: {len(t.pgtables)} page-table pages for {c.rss[MM_ANONPAGES]} anon pages"
            got = (t.rss, t.pgtables_bytes, t.kernel_pages, t.objects)
            want = (c.rss, c.pgtables_bytes, c.kernel_pages, c.objects)
            assert got == want, f"{t}: counters {got} but its live allocations add up to {want}"
            assert all(self._batches.get(f) is b for f, b in t._batches.items()), f"{t} files a dead batch"


def check_buffers(use: str | None, order: int) -> None:
    """buffers= is for a block-mapped file's order-0 page cache (create_empty_buffers)."""
    if use != "pagecache" or order:
        raise MMError(errno.EINVAL, "buffers=1 is for order-0 page cache (use=pagecache): a "
                                    "block-mapped file's pages, each with its buffer_head")


def _failed(e: MMError, count: int, made: int) -> MMError:
    """The error of a count=K command that failed at allocation made+1 and was undone."""
    if count <= 1:
        return e
    return MMError(e.errno, e.message + f" (at allocation {made + 1} of {count}; the {made} made were freed)")


def _where(node, cpu) -> dict:
    where = {}
    if node is not None:
        where["node"] = node
    if cpu is not None:
        where["cpu"] = cpu
    return where
