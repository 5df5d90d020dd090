"""Dirty-page limits (mm/page-writeback.c): what /proc/vmstat prints as nr_dirty_threshold
and nr_dirty_background_threshold.  No writeback is simulated; the limits follow the
memory the model does track (free pages and the file LRU)."""
from __future__ import annotations

from .page_types import PAGE_SIZE

VM_DIRTY_RATIO = 20                 # vm.dirty_ratio
DIRTY_BACKGROUND_RATIO = 10         # vm.dirty_background_ratio


class PageWriteback:
    """Kernel mixin: global_dirtyable_memory() and global_dirty_limits()."""

    def global_dirtyable_memory(self) -> int:
        """Free pages minus totalreserve, plus the file LRU, plus one."""
        x = self.nr_free_pages
        x -= min(x, self.totalreserve_pages)
        x += self.node_stat_total("nr_inactive_file") + self.node_stat_total("nr_active_file")
        return x + 1

    def global_dirty_limits(self) -> tuple[int, int]:
        """domain_dirty_limits() for a non-RT task: (thresh, bg_thresh): vm.dirty_bytes /
        vm.dirty_background_bytes in pages (rounded up) when set, else the ratios turned
        into per-PAGE_SIZE fractions of the dirtyable memory as the kernel does; a
        background limit at or above the limit becomes half of it."""
        available = self.global_dirtyable_memory()
        g = self.__dict__.get
        dirty_bytes, bg_bytes = g("sysctl_dirty_bytes", 0), g("sysctl_dirty_background_bytes", 0)
        ratio = g("sysctl_dirty_ratio", VM_DIRTY_RATIO) * PAGE_SIZE // 100
        bg_ratio = g("sysctl_dirty_background_ratio", DIRTY_BACKGROUND_RATIO) * PAGE_SIZE // 100
        thresh = -(-dirty_bytes // PAGE_SIZE) if dirty_bytes else ratio * available // PAGE_SIZE
        bg_thresh = -(-bg_bytes // PAGE_SIZE) if bg_bytes else bg_ratio * available // PAGE_SIZE
        if bg_thresh >= thresh:
            bg_thresh = thresh // 2
        return thresh, bg_thresh
