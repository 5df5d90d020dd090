"""The simulated kernel: the ``Kernel`` object that ties nodes, zones, the page allocator
and SLUB together.

``Kernel(machine)`` boots the machine the way mm_init/page_alloc do: seed the free lists
from memblock, compute min_free_kbytes, watermarks, lowmem_reserve and pageset sizes, bring
up SLUB, then run the ``boot:`` workload so the files look like a machine that has been
running.  Everything is deterministic: the same YAML and the same commands give the same
pfns, byte for byte.

The work itself lives in modules named after the kernel's files, composed here as mixins:
``mm_init`` (boot setup), ``page_alloc`` (alloc/free, the slow path), ``vmstat`` (counters,
the vmstat worker), ``vmscan`` (LRU, kswapd, direct reclaim, shrinkers), ``timer`` (the clock,
deferred work), ``compaction`` and ``migrate`` (compaction, kcompactd), ``page_writeback`` (dirty
limits), ``show_mem`` (MemAvailable, overcommit, show_mem, warn_alloc), and
``x86_init`` (the direct map's page sizes).
"""
from __future__ import annotations

from ..machine import BootCache, Machine
from .buddy import Zone
from .layout import build, Layout, MAX_NR_ZONES
from .mm_init import MmInit
from .profile import Profile, for_machine
from .timer import Timers, BOOT_UPTIME_NS
from .sched import Sched
from .page_alloc import PageAlloc, PAGE_USES, USE_GFP, MAX_RECLAIM_RETRIES  # noqa: F401  (re-exported)
from .page_writeback import PageWriteback
from .show_mem import ShowMem
from .vmscan import Lruvec, Vmscan, note_boot_slabs
from .printk import PrintkRing
from .show_mem import RatelimitState
from .swapfile import swapon_boot
from .sysctl import init_vm_sysctls
from .memory_hotplug import init_memory_blocks
from .vmstat import Vmstat, NODE_STAT_ITEMS, ZONE_STAT_ITEMS, NUMA_STAT_ITEMS

from .task import Tasks
from .compaction import Compaction
from .trace import Trace
from .timeline import Timeline
VM_EVENTS_DRIVEN = ("pgalloc_dma", "pgalloc_dma32", "pgalloc_normal", "pgalloc_movable", "pgalloc_device",
                    "pgfree", "drop_slab")


class PgData:
    """pg_data_t: a NUMA node."""

    def __init__(self, nid: int, zones: list[Zone], cpus: tuple[int, ...], stat_items=NODE_STAT_ITEMS):
        self.id, self.zones, self.cpus = nid, zones, cpus
        self.stat = dict.fromkeys(stat_items, 0)
        self.kswapd_order = 0                     # what the wakers asked kswapd for
        self.kswapd_highest_zoneidx = MAX_NR_ZONES
        self.kswapd_failures = 0
        self.kswapd_state = 0                     # KSWAPD_SLEEPING / RUNNING / NAPPING (vmscan.py)
        self.kswapd_thread = None                 # the kswapd() generator, made at the first wake
        self.kswapd_remaining = False             # woken during the HZ/10 nap

    @property
    def unreclaimable(self) -> bool:
        """zoneinfo's node_unreclaimable: kswapd gave up (MAX_RECLAIM_RETRIES failed runs)."""
        return self.kswapd_failures >= MAX_RECLAIM_RETRIES

    @property
    def present(self): return sum(z.present for z in self.zones)
    @property
    def managed(self): return sum(z.managed for z in self.zones)
    @property
    def nr_free(self): return sum(z.nr_free for z in self.zones)
    @property
    def has_memory(self): return any(z.managed for z in self.zones)


class Kernel(Compaction, PageAlloc, MmInit, Vmstat, Vmscan, Timers, Sched, PageWriteback, ShowMem):
    def __init__(self, machine: Machine, boot: bool = True, slab: bool = True, profile: Profile | None = None,
                 page_runs: bool = True):
        self.machine = machine
        self.page_runs = page_runs                 # False: order-0 bulk work page by page (the reference)
        # the kernel version's rules, fixed at boot: the machine's kernel: unless given
        self.profile = profile = profile or for_machine(machine)
        self.layout: Layout = build(machine)
        self.nr_cpu_ids = machine.nr_cpu_ids
        self.cpu_node = [s for s, _, _ in machine.cpu_topology()]
        # the counters kept are 6.18's (what the core drives), then an older version's own
        # names; the views print the profile's names in its order (Profile.stat)
        zone_items, numa_items, node_items = (tuple(dict.fromkeys(a + b)) for a, b in (
            (ZONE_STAT_ITEMS, profile.zone_stat_items), (NUMA_STAT_ITEMS, profile.numa_stat_items),
            (NODE_STAT_ITEMS, profile.node_stat_items)))
        self.nodes = [PgData(n.id, [Zone(z, self.nr_cpu_ids, zone_items, numa_items)
                              for z in n.zones], n.cpus, node_items)
                      for n in self.layout.nodes]
        self.zones = [z for n in self.nodes for z in n.zones]
        self.timeline = Timeline()                 # samples for pictures/timeline.svg (mm/timeline.py)
        self.trace = Trace(self)                   # kmem trace events, off until enabled (mm/trace.py)
        for z in self.zones:
            z.trace = self.trace
        self.vm_events = dict.fromkeys(VM_EVENTS_DRIVEN, 0)
        self.generation = 0
        self.booted = False
        self.current = None                        # the allocation a command is making (task.InFlight)
        self.tasks = Tasks(self)                   # who owns what the control file allocates (mm/task.py)
        self.percpu_pages = 0
        self.vmalloc_pages = 0
        self.kswapd_wakeups = 0                    # kswapd runs queued by wakeup_kswapd()
        # the rest of the kernel's state, each declared by the room that keeps it
        self.printk_ring = PrintkRing()            # the kernel log (printk.py)
        self.nopage_rs = RatelimitState("warn_alloc")             # show_mem.py
        self.oom_rs = RatelimitState("oom_kill_process")          # oom_kill.py
        self.swap_info = swapon_boot(machine)      # swapfile.py: the machine's swap: area
        self.swapped_unowned = 0                   # slots of boot anon swapped out (vmscan.py)
        self.lruvecs = [Lruvec() for _ in self.nodes]             # vmscan.py
        self.shrinkable: dict[tuple[str, int], list] = {}   # the superblock shrinker's LRUs per node (vmscan.py)
        self.nr_deferred = [0] * len(self.nodes)   # its per-node deferred scan count
        self.swappiness = 60                       # vm sysctls with no room of their own (sysctl.py)
        self.vfs_cache_pressure = 100
        self.sysctl_drop_caches = 0
        self.drop_caches_stfu = False
        self.sysctl_overcommit_memory = self.sysctl_panic_on_oom = self.sysctl_oom_kill_allocating_task = 0
        init_vm_sysctls(self)                      # the rest of the vm sysctls' boot values (sysctl.py)
        self.huge_pool: list = []                  # vm.nr_hugepages' pool (hugetlb.py)
        self.nr_huge_pages = self.hugetlb_next_nid_to_alloc = self.hugetlb_next_nid_to_free = 0
        self.memory_blocks = init_memory_blocks(self)             # memory_hotplug.py
        self.block_home: dict = {}                 # start pfn -> (node, zone) of a block onlined elsewhere
        self.offlined_blocks: dict = {}            # start pfn -> (node, zone) of an offline block
        self._init_timers()
        self._init_sched()                         # simulated CPUs' time, per-page costs (mm/sched.py)
        for z in self.zones:                       # memblock_free_all: pgfree starts near managed
            self.vm_events["pgfree"] += z.seed()
        self._build_zonelists()
        self._init_node_states()
        self.khugepaged_running = False            # started by hugepage_init() when THP is on
        self._init_watermarks()
        for z in self.zones:                       # populate_rootfs, free_initmem: after the watermarks
            self.vm_events["pgfree"] += z.free_late()
        self.start_shepherd_timer()
        self._init_compaction()                    # zones' compact_* state, kcompactd per node
        self.slab = None
        if slab:                                   # SLUB sits on top of the page allocator
            from .slub import Slub
            self.slab = Slub(self)
        # the kernel's own boot makes its version's caches; the machine's boot workload adds to them
        boot_node = self.cpu_node[0] if self.nodes[self.cpu_node[0]].has_memory else None
        self.boot_caches = default_boot_caches(self.profile, boot_node) + machine.boot.caches if boot and slab else ()
        if boot and slab:
            self.slab.apply_boot(self.boot_caches)
            self._boot_pages()
        self.booted = True                         # LRU pages allocated from now on are a user's
        note_boot_slabs(self)                      # what the dentry/inode shrinker may free
        # The rest of boot is time: the vmstat worker trims the pagesets the boot workload
        # filled, kswapd takes back the boosts its fallbacks raised.
        self.sleep(BOOT_UPTIME_NS)
        if boot and slab and machine.boot.free:
            self._boot_free()                      # the shape of free memory, on the settled pagesets
        self.timeline.start(self)


def default_boot_caches(profile, node=None) -> tuple:
    """The caches a booted kernel of the profile's version holds (mm/boot_6_1.py), as
    boot.caches entries: every machine of that version boots with them, before its own, on
    ``node`` (boot runs on CPU 0: its allocations are local to its node)."""
    return tuple(BootCache(name, size, objects, align, tuple(f for f in flags.split("|") if f), node, ctor, slabs,
                           unused=0 if name == "dentry" or name.endswith("inode_cache") else None)
                 for name, size, objects, align, flags, ctor, slabs in profile.boot_caches)
