"""The OOM killer (mm/oom_kill.c, 6.18): pick the task whose death frees the most memory,
report why, kill it.

A task here is whatever owns allocations (procsim's ``tag``): anything with the
attributes of :class:`OomTask` will do, so the task registry can hand its own objects
in.  Memory counts are pages, as the mm counters are: ``rss_anon`` (MM_ANONPAGES),
``rss_file`` (MM_FILEPAGES), ``rss_shmem`` (MM_SHMEMPAGES), ``swapents`` (MM_SWAPENTS),
``pgtables_bytes`` (bytes, mm_pgtables_bytes) and ``total_vm``.

The report is the kernel's, record by record: dump_header (the ``invoked oom-killer``
line, __show_mem filtered to gfp_zone, the unreclaimable slab dump when slab outweighs
the LRU), dump_tasks, dump_oom_victim's ``oom-kill:`` summary, then ``Out of memory:
Killed process ...``.  dump_stack()'s call trace is not simulated.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import gfp as G
from . import printk as P
from . import show_mem, swapfile
from .layout import ZONE_NORMAL
from .page_types import PAGE_SIZE

OOM_SCORE_ADJ_MIN, OOM_SCORE_ADJ_MAX = -1000, 1000
LONG_MIN = -(1 << 63)
PAGE_ALLOC_COSTLY_ORDER = 3


@dataclass
class OomTask:
    """The task fields the OOM killer reads (task_struct + its mm's counters)."""
    pid: int
    comm: str
    uid: int = 0
    oom_score_adj: int = 0
    rss_anon: int = 0
    rss_file: int = 0
    rss_shmem: int = 0
    swapents: int = 0
    pgtables_bytes: int = 0
    total_vm: int = 0

    @property
    def tgid(self) -> int:
        return self.pid


def get_mm_rss(t) -> int:
    return t.rss_anon + t.rss_file + t.rss_shmem


def oom_badness(t, totalpages: int) -> int:
    """oom_badness(): rss + swap entries + page-table pages, plus oom_score_adj thousandths
    of the memory the OOM is about; LONG_MIN (never chosen) for oom_score_adj -1000."""
    adj = t.oom_score_adj
    if adj == OOM_SCORE_ADJ_MIN:
        return LONG_MIN
    points = get_mm_rss(t) + t.swapents + t.pgtables_bytes // PAGE_SIZE
    return points + adj * (totalpages // 1000)


def oom_totalpages(k) -> int:
    """constrained_alloc() for CONSTRAINT_NONE: totalram_pages() + total_swap_pages."""
    return k.managed_pages + swapfile.total_swap_pages(k)


def select_bad_process(tasks, totalpages: int):
    """select_bad_process() -> oom_evaluate_task() over for_each_process(): the highest
    badness wins, a later task on a tie (points < chosen_points is the only skip)."""
    chosen, chosen_points = None, LONG_MIN
    for t in tasks:
        points = oom_badness(t, totalpages)
        if points == LONG_MIN or points < chosen_points:
            continue
        chosen, chosen_points = t, points
    return chosen, chosen_points


def may_oom(gfp: int, order: int, highest_zoneidx: int) -> bool:
    """Whether the slow path may call the OOM killer at all (__alloc_pages_slowpath and
    __alloc_pages_may_oom): it must be able to reclaim and retry, not be costly, not be
    for lowmem only, not be tied to a node or allowed to fail; out_of_memory() then
    leaves !__GFP_FS requests alone."""
    return bool(gfp & G.__GFP_DIRECT_RECLAIM and not gfp & G.__GFP_NORETRY
                and order <= PAGE_ALLOC_COSTLY_ORDER and highest_zoneidx >= ZONE_NORMAL
                and not gfp & (G.__GFP_RETRY_MAYFAIL | G.__GFP_THISNODE) and gfp & G.__GFP_FS)


def _k(pages: int) -> int:
    return pages * (PAGE_SIZE // 1024)


DUMP_TASKS_HEADER = "[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes " \
    "swapents oom_score_adj name"
DUMP_TASKS_HEADER_6_1 = "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name"


def dump_task_line(t, rss_columns: bool = True) -> str:
    """dump_task()'s row; before 6.9 without the rss_anon/rss_file/rss_shmem columns."""
    split = f"{t.rss_anon:8d} {t.rss_file:8d} {t.rss_shmem:9d} " if rss_columns else ""
    return (f"[{t.pid:7d}] {t.uid:5d} {t.tgid:5d} {t.total_vm:8d} {get_mm_rss(t):8d} {split}"
            f"{t.pgtables_bytes:8d} {t.swapents:8d}         {t.oom_score_adj:5d} {t.comm}")


def should_dump_unreclaim_slab(k) -> bool:
    st = k.node_stat_total
    nr_lru = sum(st(i) for i in ("nr_active_anon", "nr_inactive_anon", "nr_active_file", "nr_inactive_file",
                                 "nr_isolated_anon", "nr_isolated_file", "nr_unevictable"))
    return st("nr_slab_unreclaimable") > nr_lru


def dump_unreclaimable_slab(k) -> list[str]:
    """mm/slab_common.c dump_unreclaimable_slab(): every cache not SLAB_RECLAIM_ACCOUNT."""
    from .slub import SLAB_RECLAIM_ACCOUNT
    out = ["Unreclaimable slab info:", "Name                      Used          Total"]
    for c in (k.slab.caches if k.slab is not None else ()):
        if c.flags & SLAB_RECLAIM_ACCOUNT:
            continue
        active, num, _, _ = c.slabinfo()
        if num > 0:
            out.append(f"{c.name:<17} {active * c.size // 1024:10d}KB {num * c.size // 1024:10d}KB")
    return out


def _comm(t) -> str:
    return (t.comm if t is not None else "procsim")[:15]


def out_of_memory(k, tasks, gfp: int, order: int, current=None, kill=None):
    """out_of_memory() for a global OOM: select the victim, print the report, count
    oom_kill, call ``kill(victim)`` (which frees what it owns).  Returns the victim, or None
    when no task may be killed ("Out of memory and no killable processes..."; the kernel
    would panic, procsim lets the allocation fail)."""
    tasks = list(tasks)
    panic = k.sysctl_panic_on_oom
    if panic:                                  # check_panic_on_oom(): procsim refuses instead of halting
        _dump_header(k, tasks, gfp, order, current)
        P.printk(k, "Kernel panic - not syncing: Out of memory: "
                    f"{'compulsory' if panic == 2 else 'system-wide'} panic_on_oom is enabled", P.KERN_EMERG)
        return None
    totalpages = oom_totalpages(k)
    why = "Out of memory"
    if k.sysctl_oom_kill_allocating_task and current is not None and current in tasks \
            and current.pid != 1 and current.oom_score_adj != -1000:
        victim, why = current, "Out of memory (oom_kill_allocating_task)"
    else:
        victim, _ = select_bad_process(tasks, totalpages)
    if victim is None:
        _dump_header(k, tasks, gfp, order, current)
        P.pr_warn(k, "Out of memory and no killable processes...")
        return None
    if _oom_rs(k)(k):                          # oom_kill_process(): dump_header + dump_oom_victim
        _dump_header(k, tasks, gfp, order, current)
        P.pr_info(k, f"oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,"
                     f"mems_allowed={show_mem.mems_allowed(k)},global_oom,task_memcg=/,"
                     f"task={victim.comm[:15]},pid={victim.pid},uid={victim.uid}")
    k.vm_events["oom_kill"] = k.vm_events.get("oom_kill", 0) + 1
    k.timeline.note(k, "oom_kill", victim.comm)
    tr = k.trace
    if tr.active:                              # mark_oom_victim(), before the "Killed process" line
        tr.emit("mark_victim", tr.cpu, victim.pid, victim.comm, _k(victim.total_vm), _k(victim.rss_anon),
                _k(victim.rss_file), _k(victim.rss_shmem), victim.uid, victim.pgtables_bytes >> 10,
                victim.oom_score_adj)
    P.pr_err(k, f"{why}: Killed process {victim.pid} ({victim.comm[:15]}) "
                f"total-vm:{_k(victim.total_vm)}kB, anon-rss:{_k(victim.rss_anon)}kB, "
                f"file-rss:{_k(victim.rss_file)}kB, shmem-rss:{_k(victim.rss_shmem)}kB, "
                f"UID:{victim.uid} pgtables:{victim.pgtables_bytes >> 10}kB oom_score_adj:{victim.oom_score_adj}")
    if kill is not None:
        kill(victim)
        k.timeline.sample(k)                   # the moment the victim's memory came back
    return victim


def _dump_header(k, tasks, gfp, order, current) -> None:
    adj = current.oom_score_adj if current is not None else 0
    P.pr_warn(k, f"{_comm(current)} invoked oom-killer: gfp_mask={gfp:#x}({P.format_gfp_flags(gfp, k.profile.gfpflag_names)}), "
                 f"order={order}, oom_score_adj={adj}")
    show_mem.show_mem(k, show_mem.SHOW_MEM_FILTER_NODES, None, G.gfp_zone(gfp))
    if should_dump_unreclaim_slab(k):
        for line in dump_unreclaimable_slab(k):
            P.pr_info(k, line)
    P.pr_info(k, "Tasks state (memory values in pages):")
    columns = k.profile.oom_rss_columns
    P.pr_info(k, DUMP_TASKS_HEADER if columns else DUMP_TASKS_HEADER_6_1)
    for t in tasks:
        if t.pid != 1:                  # oom_unkillable_task(): the global init is not listed
            P.pr_info(k, dump_task_line(t, columns))


def _oom_rs(k) -> show_mem.RatelimitState:
    """oom_kill_process()'s DEFINE_RATELIMIT_STATE(oom_rs, 5*HZ, 10) for the report."""
    return k.oom_rs


# ---- the task registry's tasks (procsim.mm.task) ----------------------------------------------
class TaskMm:
    """A task of ``k.tasks`` as the OOM killer reads it: its mm counters, plus the blocks the
    command running for it has made so far (they are in its mm already in the kernel)."""
    uid = 0

    def __init__(self, task, inflight=None):
        from .task import MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MM_SWAPENTS
        self.task, self.pid, self.comm, self.oom_score_adj = task, task.pid, task.comm, task.oom_score_adj
        self.rss_anon, self.rss_file = task.rss[MM_ANONPAGES], task.rss[MM_FILEPAGES]
        self.rss_shmem, self.swapents = task.rss[MM_SHMEMPAGES], task.rss[MM_SWAPENTS]
        self.pgtables_bytes = task.pgtables_bytes
        kernel = task.kernel_pages
        if inflight is not None:
            n = len(inflight.got) << inflight.order
            if inflight.use == "anon":
                self.rss_anon += n
            elif inflight.use == "pagecache":
                self.rss_file += n
            elif inflight.use == "page_tables":
                self.pgtables_bytes += n * PAGE_SIZE
            else:
                kernel += n
        self.total_vm = get_mm_rss(self) + self.swapents + kernel    # everything mapped for it

    @property
    def tgid(self) -> int:
        return self.pid


def oom_kill_tasks(k, gfp: int, order: int):
    """out_of_memory() over ``k.tasks``: the victim's allocations are all freed (exit_mmap).
    Returns the victim's TaskMm, None if nothing could be killed; MMError(ENOMEM) naming the
    victim when it is the task the failing allocation is for (it dies; its command fails)."""
    import errno
    from .errors import MMError
    tasks, cur = k.tasks, k.current
    cur_task = cur.task if cur is not None else tasks.default
    # a task that owns nothing any more has exited (find_lock_task_mm() finds no mm)
    views = [TaskMm(t, cur if t is cur_task else None) for t in tasks
             if t is tasks.default or t is cur_task or next(t.batches(), None) is not None]
    if all(v.task is not cur_task for v in views):           # its first allocation, still in flight
        views.append(TaskMm(cur_task, cur))
    current = next(v for v in views if v.task is cur_task)

    def kill(v):
        if tasks.find_task(v.task.tag) is v.task:
            tasks.free(tasks.select_task(v.task))

    victim = out_of_memory(k, views, gfp, order, current=current, kill=kill)
    if victim is current:
        raise MMError(errno.ENOMEM, f"Out of memory: the OOM killer killed process {victim.pid} ({victim.comm}), "
                                    f"the task this allocation is for; its allocations are freed")
    return victim
