"""Machine instructions per engine operation, counted by valgrind's callgrind: the
load-independent measure behind the µs figures.  On a shared VM the µs of one pair swing by
a factor of two from minute to minute; these counts are the same run after run.

    python benchmarks/callgrind.py                    # this tree
    PYTHONPATH=/path/to/old/tree python benchmarks/callgrind.py

Each operation runs twice under callgrind, N1 and N2 times after the same boot and warm-up;
(total(N2) - total(N1)) / (N2 - N1) is the cost of one operation, boot excluded.  seed-vm
keeps the boot under valgrind short.  Needs valgrind (apt install valgrind); ~2 minutes.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N1, N2 = 2000, 12000

WORKLOAD = r"""
import sys
from procsim import machine as M
from procsim.mm import gfp as G
from procsim.mm.kernel import Kernel
k = Kernel(M.load(sys.argv[1]))
alloc, free, kmalloc, kfree = k.alloc_pages, k.free_pages, k.slab.kmalloc, k.slab.kfree
for _ in range(1000):
    free(alloc(0, G.GFP_KERNEL)); free(alloc(3, G.GFP_KERNEL)); kfree(kmalloc(64, G.GFP_KERNEL))
op, n = sys.argv[2], int(sys.argv[3])
if op == "order-0":
    for _ in range(n): free(alloc(0, G.GFP_KERNEL))
elif op == "order-3":
    for _ in range(n): free(alloc(3, G.GFP_KERNEL))
else:
    for _ in range(n): kfree(kmalloc(64, G.GFP_KERNEL))
"""


def total(tree: Path, op: str, n: int) -> int:
    env = dict(os.environ, PYTHONHASHSEED="0")
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          sys.executable, "-c", WORKLOAD, str(ROOT / "configs/seed-vm.yaml"), op, str(n)],
                         capture_output=True, text=True, env=env, check=True, cwd=tree).stderr
    return int(re.search(r"Collected : (\d+)", out).group(1))


def main() -> int:
    if shutil.which("valgrind") is None:
        print("callgrind.py: valgrind is not installed", file=sys.stderr)
        return 1
    import procsim
    tree = Path(procsim.__file__).parent.parent      # `python -c` puts the cwd first: run there
    print(f"tree: {tree}")
    for op, name in (("order-0", "order-0 alloc_pages+free_pages"), ("order-3", "order-3 alloc_pages+free_pages"),
                     ("kmalloc", "kmalloc(64)+kfree")):
        per = (total(tree, op, N2) - total(tree, op, N1)) / (N2 - N1)
        print(f"{name}: {per:,.0f} machine instructions", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
