"""The kernel as SLUB and the task list see it, written down once.

Slub (slub.py) and Tasks (task.py) run on the production Kernel and, in tests, on
procsim.testing.FakeKernel (a predictable page allocator under them).  These Protocols are
the whole of what they read and call on their kernel, so neither the test double nor the
Kernel can drift from what the code needs: tests/test_house.py checks that every attribute
Slub and Tasks touch on their kernel is listed here, and that Kernel and FakeKernel both
have every member listed (the fake all but RunsKernel's, which Tasks uses only when
``page_runs`` is set, and the fake keeps it unset).

A leaf: imports nothing from procsim, so slub.py and task.py can import it at run time.
"""
from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable


@runtime_checkable
class SlabKernel(Protocol):
    """What Slub reads and calls: the topology it lays its per-node and per-cpu structures
    over, the page allocator its slabs come from, the node counters it charges."""
    generation: int                     # bumped by every state change (the views' cache key)
    nr_cpu_ids: int
    nodes: Sequence[Any]                # per node: .id, .has_memory (N_NORMAL_MEMORY)
    cpu_node: Sequence[int]             # cpu -> node
    node_order: Sequence[Sequence[int]]  # per node: nodes in zonelist fallback order
    profile: Any                        # the kernel version's Profile (kmem_cache_node_size, ...)
    trace: Any                          # the kmem trace events (mm/trace.py Trace)

    def alloc_pages(self, order: int, gfp: int, node: int | None = None, cpu: int | None = None) -> Any: ...

    def free_pages(self, page: Any) -> None: ...

    def mod_node_stat(self, nid: int, item: str, delta: int) -> None: ...


@runtime_checkable
class TaskKernel(Protocol):
    """What Tasks reads and calls on every kernel: pages one by one, the slab allocator for
    kmalloc IDs, the allocation in flight (``current``, for the OOM killer and reclaim),
    the clock a command's work runs on."""
    nr_cpu_ids: int
    trace: Any
    slab: Any                           # Slub (or the shell tests' FakeSlab)
    current: Any                        # task.InFlight while a command allocates, else None
    page_runs: bool                     # order-0 bulk work as runs (RunsKernel) or page by page

    def alloc_pages(self, order: int, gfp: int, node: int | None = None, cpu: int | None = None) -> Any: ...

    def free_pages(self, page: Any) -> None: ...

    def task_clock(self, cpu: int | None, node: int | None, use: str | None, order: int = 0) -> Any: ...


@runtime_checkable
class RunsKernel(TaskKernel, Protocol):
    """What Tasks also calls on paths only the production Kernel takes: order-0 bulk work as
    runs (when ``page_runs``), alloc_pages_exact, pages with a ``use`` (page tables, swap-in),
    the fault events; the LRU and swap paths go through vmscan's and swapfile's functions
    with the kernel itself."""
    vm_events: dict

    def alloc_pages(self, order: int, gfp: int, node: int | None = None, cpu: int | None = None,
                    use: str | None = None) -> Any: ...     # use: page tables, anon swapped back in

    def alloc_pages_runs(self, gfp: int, nr: int, node: int | None = None, cpu: int | None = None,
                         use: str | None = None, out: list | None = None, made: Any = None) -> Any: ...

    def free_pages_run(self, z: Any, pfn: int, n: int, cpu: int, mt: int, use: str | None = None,
                       descending: bool = False) -> None: ...

    def default_cpu(self, node: int | None) -> int: ...

    def alloc_pages_exact(self, size: int, gfp: int, node: int | None = None, cpu: int | None = None) -> Any: ...


def protocol_members(proto: type) -> set[str]:
    """The members a Protocol asks for, its bases' included (data annotations and methods):
    typing.get_protocol_members() of Python 3.13, for 3.11."""
    out: set[str] = set()
    for c in proto.__mro__:
        if c in (object, Protocol) or not getattr(c, "_is_protocol", False):
            continue
        out |= set(c.__dict__.get("__annotations__", {}))
        out |= {n for n, v in c.__dict__.items() if callable(v) and not n.startswith("_")}
    return out
