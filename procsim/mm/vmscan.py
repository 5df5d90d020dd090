"""Reclaim (mm/vmscan.c): for now only drop_slab(), the slab half of vm.drop_caches."""
from __future__ import annotations


class Vmscan:
    """Kernel mixin: reclaim entry points."""

    def drop_slab(self) -> int:
        """The slab half of vm.drop_caches: shrink every cache; returns the pages freed."""
        self.vm_events["drop_slab"] += 1
        freed = sum(self.slab.kmem_cache_shrink(c) for c in list(self.slab.caches))
        self.generation += 1
        return freed
