"""Memory totals the kernel derives for userspace: si_mem_available() (mm/show_mem.c) and
the overcommit figures (mm/util.c vm_commit_limit(), vm_committed_as)."""
from __future__ import annotations

OVERCOMMIT_RATIO = 50               # vm.overcommit_ratio


class ShowMem:
    """Kernel mixin: MemAvailable, CommitLimit, Committed_AS."""

    def si_mem_available(self) -> int:
        """Free minus reserves, plus what reclaim could free of the file LRU and the
        reclaimable kernel memory (half of each at most, never below the low marks)."""
        wmark_low = sum(z.wmark_low for z in self.zones)
        available = self.nr_free_pages - self.totalreserve_pages
        file_lru = self.node_stat_total("nr_active_file") + self.node_stat_total("nr_inactive_file")
        available += file_lru - min(file_lru // 2, wmark_low)
        reclaimable = self.node_stat_total("nr_slab_reclaimable") + self.node_stat_total("nr_kernel_misc_reclaimable")
        available += reclaimable - min(reclaimable // 2, wmark_low)
        return max(available, 0)

    def vm_commit_limit(self) -> int:
        """vm_commit_limit(): (totalram - hugetlb) * overcommit_ratio / 100 (no swap)."""
        hugetlb_pages = 0
        return (self.managed_pages - hugetlb_pages) * OVERCOMMIT_RATIO // 100

    def vm_committed_as(self) -> int:
        """What vm_committed_as charges that the model has: anon and shmem pages."""
        return self.node_stat_total("nr_anon_pages") + self.node_stat_total("nr_shmem")
