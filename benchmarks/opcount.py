"""Executed bytecode instructions and Python calls per operation: a load-independent
measure for before/after comparisons on a busy machine, where timings swing by ±30 %.

    python benchmarks/opcount.py                      # this tree
    PYTHONPATH=/path/to/old/tree python benchmarks/opcount.py
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from procsim import machine as M               # noqa: E402
from procsim.mm import gfp as G                # noqa: E402
from procsim.mm.kernel import Kernel           # noqa: E402

N = 2000


def count(fn, per: int = 1) -> tuple[float, float]:
    n = [0, 0]

    def tracer(frame, event, arg):
        frame.f_trace_opcodes = True
        if event == "opcode":
            n[0] += 1
        elif event == "call":
            n[1] += 1
        return tracer
    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(None)
    return n[0] / per, n[1] / per


def main() -> int:
    import procsim
    print(f"tree: {Path(procsim.__file__).parent.parent}")
    k = Kernel(M.load(ROOT / "configs/seed-server.yaml"))
    alloc, free, slab = k.alloc_pages, k.free_pages, k.slab

    def pairs(order):
        def run():
            for _ in range(N):
                free(alloc(order, G.GFP_KERNEL))
        return run

    def kpairs():
        for _ in range(N):
            slab.kfree(slab.kmalloc(64, G.GFP_KERNEL))
    for name, fn in (("order-0 alloc+free pair", pairs(0)), ("order-3 alloc+free pair", pairs(3)),
                     ("kmalloc(64)+kfree pair", kpairs)):
        fn()                                       # warm: pcp lists and cpu slabs filled
        ops, calls = count(fn, N)
        print(f"{name}: {ops:.0f} instructions, {calls:.1f} calls")
    for runs in (True, False):                     # order-0 count=K and free by tag: runs, then page by page
        kb = Kernel(M.load(ROOT / "configs/seed-server.yaml"), page_runs=runs)
        tasks, n = kb.tasks, 1_000_000 if runs else 20_000
        ops, calls = count(lambda tasks=tasks, n=n: tasks.alloc_pages("b", 0, G.GFP_HIGHUSER_MOVABLE, n, use="anon"), n)
        fops, fcalls = count(lambda tasks=tasks: tasks.free(tasks.select_task(tasks.find_task("b"))), n)
        how = "in runs" if runs else "page by page"
        print(f"alloc_pages 0 count={n} {how}: {ops:.2f} instructions, {calls:.3f} calls per page; "
              f"free by tag: {fops:.2f} instructions, {fcalls:.3f} calls per page")
    m = M.load(ROOT / "configs/seed-vm.yaml")
    ops, calls = count(lambda: Kernel(m))
    print(f"boot seed-vm (Kernel()): {ops / 1e6:.2f} M instructions, {calls / 1e3:.0f} k calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
