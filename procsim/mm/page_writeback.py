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
        """domain_dirty_limits() for a non-RT task: (thresh, bg_thresh), the ratios turned
        into per-PAGE_SIZE fractions as the kernel does."""
        available = self.global_dirtyable_memory()
        thresh = (VM_DIRTY_RATIO * PAGE_SIZE // 100) * available // PAGE_SIZE
        bg_thresh = (DIRTY_BACKGROUND_RATIO * PAGE_SIZE // 100) * available // PAGE_SIZE
        if bg_thresh >= thresh:
            bg_thresh = thresh // 2
        return thresh, bg_thresh
