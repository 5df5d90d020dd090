"""Digest of a seeded allocation workload: the allocator must make the same decisions
(same pfns, same object addresses, same counters) before and after a speed-only change.

    python benchmarks/determinism.py            # prints one digest per machine
    python benchmarks/determinism.py --check    # compares with benchmarks/determinism.txt
    PYTHONPATH=/old/tree python benchmarks/determinism.py --write   # the reference, from the old tree
"""
from __future__ import annotations

import hashlib
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.append(str(HERE.parent))             # PYTHONPATH=<other tree> wins

from procsim import machine as M               # noqa: E402
from procsim.mm import gfp as G                # noqa: E402
from procsim.mm.errors import MMError          # noqa: E402
from procsim.mm.kernel import Kernel           # noqa: E402
from procsim.views import files                # noqa: E402
from procsim import ALIASES                    # noqa: E402

CONFIGS = ("tiny", "seed-vm", "seed-server", "big-4s-1t")
GFPS = (G.GFP_KERNEL, G.GFP_HIGHUSER_MOVABLE, G.GFP_KERNEL | G.__GFP_RECLAIMABLE, G.GFP_ATOMIC, G.GFP_DMA32)
STEPS = 30000


def digest(config: str, seed: int = 8) -> str:
    m = M.load(HERE.parent / "configs" / f"{config}.yaml")
    k = Kernel(m)
    rnd = random.Random(seed)
    h = hashlib.sha256()
    pages, objs = [], []
    nodes, cpus = len(k.nodes), k.nr_cpu_ids
    for step in range(STEPS):
        r = rnd.random()
        try:
            if r < 0.35:
                order = rnd.choice((0, 0, 0, 0, 1, 2, 3, 3, 4, 9, 10))
                node = rnd.randrange(nodes) if rnd.random() < 0.3 else None
                cpu = rnd.randrange(cpus) if node is None and rnd.random() < 0.3 else None
                p = k.alloc_pages(order, rnd.choice(GFPS), node=node, cpu=cpu)
                pages.append(p)
                h.update(b"p%d,%d,%d,%d;" % (p.pfn, p.order, p.zone.node, p.zone.idx))
            elif r < 0.55 and pages:
                k.free_pages(pages.pop(rnd.randrange(len(pages))))
            elif r < 0.8:
                a = k.slab.kmalloc(rnd.choice((8, 64, 192, 512, 1024, 4096, 9000)), G.GFP_KERNEL)
                objs.append(a)
                h.update(b"k%d;" % a)
            elif objs:
                k.slab.kfree(objs.pop(rnd.randrange(len(objs))))
        except MMError as e:
            h.update(b"E%d;" % e.errno)
        if step % 5000 == 0:
            h.update(b"g%d;" % k.generation)
    for drained in (False, True):                 # pcp state as it is, then everything back in the buddy
        if drained:
            k.drain_all_pages()
        for name, view in sorted(files(m).items()):
            if not name.startswith("sys/") and name not in ALIASES:    # dev/kmsg: kmsg's bytes again
                data = view.render(k)
                h.update(name.encode() + (data if isinstance(data, bytes) else data.encode()))
    return h.hexdigest()


def main() -> int:
    out = {c: digest(c) for c in CONFIGS}
    ref = HERE / "determinism.txt"
    text = "".join(f"{c} {d}\n" for c, d in out.items())
    if "--check" in sys.argv:
        want = ref.read_text()
        print(text, end="")
        if want != text:
            print("DIFFERENT from", ref)
            return 1
        print("same as", ref)
        return 0
    print(text, end="")
    if "--write" in sys.argv:
        ref.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
