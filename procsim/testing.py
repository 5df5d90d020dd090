"""Helpers shared by procsim's tests, its pytest plugin and its benchmarks.

- :class:`FakeKernel`: a deliberately dumb allocator with the core's API (docs/DESIGN.md): a
  fixed number of free pages, objects packed ``objperslab`` to a slab.  Its numbers are
  trivial to predict, so the control and FUSE tests check the shell, not the buddy.
- :func:`boot`: a real Kernel from a shipped machine name or from YAML text.
- mounting: whether a path is mounted, waiting for a FUSE daemon, unmounting whatever is left.
"""
from __future__ import annotations

import errno
import multiprocessing
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager

from procsim.machine import CONFIGS_DIR as CONFIGS
from procsim.mm.profile import DEFAULT as DEFAULT_PROFILE
from procsim.mm.printk import PrintkRing
from procsim.mm.trace import Trace
from procsim.mm import gfp as _gfp
from procsim.mm.errors import MMError
from procsim.mm.page_types import PAGE_OFFSET
from procsim.views import View


# --- the stand-in core ---------------------------------------------------------------------------
THISNODE = _gfp.__GFP_THISNODE          # (a class body would mangle the double underscore)


class FakeZone:
    """One Normal zone per node."""

    def __init__(self, node, start_pfn, spanned):
        self.node, self.idx, self.name = node, 2, "Normal"
        self.start_pfn, self.spanned = start_pfn, spanned


class FakePage:
    """The core's Page, as far as Tasks and SLUB read it (owner, idx: set by Tasks)."""
    __slots__ = ("pfn", "order", "zone", "node", "owner", "idx", "cpu", "migratetype", "use")

    def __init__(self, pfn, order, zone):
        self.pfn, self.order, self.zone, self.node = pfn, order, zone, zone.node
        self.owner, self.cpu, self.migratetype, self.use = None, None, None, None

    @property
    def id(self) -> int:
        o = self.owner
        return 0 if o is None else o.first + self.idx


class FakeCache:
    def __init__(self, name, size, objects):
        self.name, self.object_size, self.size, self.align, self.flags = name, size, size, 0, 0
        self.order, self.objects = 0, objects
        self.live: set[int] = set()
        self.slabs: list[int] = []          # pfns

    def slabinfo(self):
        return len(self.live), len(self.slabs) * self.objects, len(self.slabs), len(self.slabs)


class FakeSlab:
    """Objects at PAGE_OFFSET + pfn*4096 + i*size; slabs never partially reused (kept simple)."""

    def __init__(self, kernel):
        self.k = kernel
        self.caches: list[FakeCache] = []
        for size in (64, 128, 256):
            self.caches.insert(0, FakeCache(f"kmalloc-{size}", size, 4096 // size))
        self._slab_of: dict[int, tuple[FakeCache, FakePage]] = {}

    def find(self, name):
        return next((c for c in self.caches if c.name == name), None)

    def kmem_cache_create(self, name, size, align=0, flags=0):
        if self.find(name):
            raise MMError(errno.EEXIST, f"kmem_cache {name} exists")
        if size > 4096:
            raise MMError(errno.EINVAL, "too big for the fake")
        c = FakeCache(name, size, 4096 // size)
        self.caches.insert(0, c)
        self.k.generation += 1
        return c

    def kmem_cache_alloc(self, cache, gfp, node=None, cpu=None):
        used = {a for a in cache.live}
        for pfn in cache.slabs:
            for i in range(cache.objects):
                a = PAGE_OFFSET + pfn * 4096 + i * cache.size
                if a not in used:
                    cache.live.add(a)
                    self.k.generation += 1
                    return a
        page = self.k.alloc_pages(0, gfp, node, cpu)
        cache.slabs.append(page.pfn)
        self._slab_of[page.pfn] = (cache, page)
        a = PAGE_OFFSET + page.pfn * 4096
        cache.live.add(a)
        return a

    def kmem_cache_free(self, cache, addr):
        if addr not in cache.live:
            raise MMError(errno.EINVAL, "not allocated")
        cache.live.remove(addr)
        self.k.generation += 1

    def kmem_cache_shrink(self, cache):
        n = 0
        for pfn in list(cache.slabs):
            base = PAGE_OFFSET + pfn * 4096
            if not any(base <= a < base + 4096 for a in cache.live):
                cache.slabs.remove(pfn)
                self.k.free_pages(self._slab_of.pop(pfn)[1])
                n += 1
        return n

    def kmem_cache_destroy(self, cache):
        if cache.live:
            raise MMError(errno.EBUSY, f"{cache.name} has live objects")
        self.kmem_cache_shrink(cache)
        self.caches.remove(cache)
        self.k.generation += 1

    def kmalloc(self, size, gfp, node=None, cpu=None):
        c = next((c for c in reversed(self.caches) if c.name.startswith("kmalloc-") and c.size >= size), None)
        if c is None:
            raise MMError(errno.EINVAL, "the fake has no large kmalloc")
        return self.kmem_cache_alloc(c, gfp, node, cpu)

    def cache_of(self, addr):
        hit = self._slab_of.get((addr - PAGE_OFFSET) // 4096)
        return hit[0] if hit else None

    def kfree(self, addr):
        c = self.cache_of(addr)
        if c is None:
            raise MMError(errno.EINVAL, "kfree of an unknown address")
        self.kmem_cache_free(c, addr)


class FakeKernel:
    """The one stand-in core: the page allocator API of docs/DESIGN.md with numbers that are
    easy to predict.  Node n owns pfns ``[start_pfn + (n << 24), + pages_per_node[n])`` cut
    into aligned power-of-two blocks (start_pfn 1024 is order-10 aligned: 4096 pages are four
    order-10 blocks); ``alloc_pages`` hands out the lowest-addressed block that
    fits (splitting it, keeping the low half), ``free_pages`` merges buddies back.  Other nodes
    are tried in distance order unless ``__GFP_THISNODE``.

    ``slab="fake"`` puts :class:`FakeSlab` on top (objects packed ``objperslab`` to a page:
    for tests of the shell); ``slab="slub"`` the real :class:`procsim.mm.slub.Slub` (for tests
    of SLUB alone, with a page allocator that is not the buddy under test)."""

    MAX_ORDER = 10

    def __init__(self, nr_pages=4096, *, cpus_per_node=(2,), pages_per_node=None, start_pfn=1024, slab="fake"):
        from types import SimpleNamespace
        pages_per_node = tuple(pages_per_node or (nr_pages,))
        n = len(pages_per_node)
        self.generation = 0
        self.nr_cpu_ids = sum(cpus_per_node)
        self.nodes, cpu = [], 0
        for nid, (nc, np_) in enumerate(zip(cpus_per_node, pages_per_node, strict=False)):
            self.nodes.append(SimpleNamespace(id=nid, present=np_, has_memory=np_ > 0,
                                              cpus=tuple(range(cpu, cpu + nc))))
            cpu += nc
        self.machine = SimpleNamespace(distances=tuple(tuple(10 if i == j else 20 + i + j for j in range(n))
                                                       for i in range(n)))
        # the topology SLUB reads: the cpu -> node map and each node's zonelist order
        self.cpu_node = [nid for nid, nc in enumerate(cpus_per_node) for _ in range(nc)]
        self.node_order = [sorted(range(n), key=lambda m: (self.machine.distances[i][m], m)) for i in range(n)]
        self.zones, self.free = [], []          # free: per node, per order, the free block heads
        for nid, np_ in enumerate(pages_per_node):
            base = start_pfn + (nid << 24)
            self.zones.append(FakeZone(nid, base, np_))
            lists = [set() for _ in range(self.MAX_ORDER + 1)]
            pfn, end = base, base + np_
            while pfn < end:                    # the largest aligned block that starts here and fits
                o = min(self.MAX_ORDER, (pfn & -pfn).bit_length() - 1 if pfn else self.MAX_ORDER)
                while pfn + (1 << o) > end:
                    o -= 1
                lists[o].add(pfn)
                pfn += 1 << o
            self.free.append(lists)
        self.allocated: dict[int, FakePage] = {}
        self.stat = [dict(nr_slab_reclaimable=0, nr_slab_unreclaimable=0) for _ in range(n)]
        self.calls = []                         # every alloc_pages call: (order, gfp, node, cpu)
        # what SLUB and Tasks read of a kernel besides the allocator (docs/DESIGN.md "The core API")
        self.now_ns = 0
        self.profile = DEFAULT_PROFILE          # 6.18's rules
        self.trace = Trace(self)                # off until enabled, as at boot
        self.printk_ring = PrintkRing()
        self.page_runs = False                  # Tasks: bulk work page by page
        self.booted = True
        self.current = None
        if slab == "slub":
            from procsim.mm.slub import Slub
            self.slab = Slub(self)
        else:
            self.slab = FakeSlab(self)
        from procsim.mm.task import Tasks
        self.tasks = Tasks(self)                # the core's owner of IDs and tags, over this fake

    def tick(self):                             # a command's jiffy, as Kernel.tick
        from procsim.mm.timer import COMMAND_COST_NS
        self.now_ns += COMMAND_COST_NS

    def sleep(self, ns):
        self.now_ns += ns

    def task_clock(self, cpu, node, use, order=0):   # a command's work takes no time here
        return _NoClock()

    def alloc_pages(self, order, gfp, node=None, cpu=None):
        self.calls.append((order, gfp, node, cpu))
        if node is None:
            node = self.cpu_node[cpu or 0]
        for nid in [node] if gfp & THISNODE else self.node_order[node]:
            lists = self.free[nid]
            fits = [(min(lists[o]), o) for o in range(order, self.MAX_ORDER + 1) if lists[o]]
            if fits:
                pfn, o = min(fits)
                lists[o].remove(pfn)
                while o > order:                # split, keep the low half
                    o -= 1
                    lists[o].add(pfn + (1 << o))
                page = self.allocated[pfn] = FakePage(pfn, order, self.zones[nid])
                self.generation += 1
                return page
        raise MMError(errno.ENOMEM, f"fake: no free order-{order} block")

    def free_pages(self, page):
        if self.allocated.get(page.pfn) is not page:
            raise MMError(errno.EINVAL, "fake: double free")
        del self.allocated[page.pfn]
        pfn, o, lists = page.pfn, page.order, self.free[page.node]
        while o < self.MAX_ORDER and (pfn ^ (1 << o)) in lists[o]:
            lists[o].remove(pfn ^ (1 << o))
            pfn &= ~(1 << o)
            o += 1
        lists[o].add(pfn)
        self.generation += 1

    @property
    def nr_free(self) -> int:
        return sum(self.node_free(nid) for nid in range(len(self.nodes)))

    def node_free(self, nid) -> int:
        return sum(len(s) << o for o, s in enumerate(self.free[nid]))

    def pages_taken(self) -> int:
        return sum(1 << p.order for p in self.allocated.values())

    def mod_node_stat(self, nid, item, delta):
        self.stat[nid][item] += delta
        assert self.stat[nid][item] >= 0

    def slab_pages(self) -> int:
        """Pages SLUB accounted as slab (nr_slab_reclaimable + nr_slab_unreclaimable)."""
        return sum(st["nr_slab_reclaimable"] + st["nr_slab_unreclaimable"] for st in self.stat)

    def drop_slab(self):
        return sum(self.slab.kmem_cache_shrink(c) for c in list(self.slab.caches))


def fake_views(counter=None) -> dict:
    """meminfo / slabinfo / a nested node file, rendered from the fake; counter counts renders."""

    def meminfo(k):
        if counter is not None:
            counter.append(1)
        return f"MemTotal:       {4096 * 4:8d} kB\nMemFree:        {k.nr_free * 4:8d} kB\n".encode()

    def slabinfo(k):
        out = ["slabinfo - version: 2.1",
               "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
               " : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>"]
        for c in k.slab.caches:
            a, n, sa, sn = c.slabinfo()
            out.append(f"{c.name:<17} {a:6d} {n:6d} {c.size:6d} {c.objects:4d} {1:4d} : tunables    0    0    0"
                       f" : slabdata {sa:6d} {sn:6d}      0")
        return ("\n".join(out) + "\n").encode()

    return {"meminfo": View(0o444, meminfo), "slabinfo": View(0o400, slabinfo),
            "sys/devices/system/node/node0/meminfo": View(0o444, lambda k: b"Node 0 MemTotal: 16384 kB\n"),
            "blob": View(0o444, lambda k: bytes(range(7)) * 3, exact_size=True)}


def fake_session(**kw):
    from procsim.session import Session
    return Session(None, boot=lambda: FakeKernel(**kw), views=fake_views())


# --- booting --------------------------------------------------------------------------------
def boot(config: str | None = None, *, text: str | None = None, **kw):
    """A Kernel booted from the shipped machine <config> or from YAML text (Kernel keywords pass on)."""
    from procsim.machine import load, loads
    from procsim.mm.kernel import Kernel
    return Kernel(loads(text) if text is not None else load(CONFIGS / f"{config}.yaml"), **kw)


def procsim_cmd(*args):
    return [sys.executable, "-m", "procsim.cli", *map(str, args)]


# --- mounting ----------------------------------------------------------------------------------
def mounts(mp) -> bool:
    from procsim.fs import mount_entry
    return mount_entry(mp) is not None


def wait_mounted(mp, proc=None, timeout=60.0):
    from procsim.harness import wait_mounted as wait
    wait(mp, proc, timeout)


def force_unmount(mp, proc=None):
    """fusermount -u (lazy as a fallback), then make sure the daemon is gone (procsim.harness)."""
    from procsim.harness import force_unmount as unmount
    unmount(mp, proc)


def serve_forked(make_session, mp):
    from procsim.fs import serve
    serve(make_session(), str(mp))


@contextmanager
def mounted_session(make_session, mp):
    """Serve ``make_session()`` at ``mp`` from a forked child; unmounted, child gone, however it
    ends.  The session is made in the child: a --state journal's lock then dies with the daemon
    (made in the parent, the parent's copy of the locked file would keep holding it)."""
    proc = multiprocessing.get_context("fork").Process(target=serve_forked, args=(make_session, mp))
    proc.start()
    try:
        wait_mounted(mp, proc)
        yield mp
    finally:
        force_unmount(mp, proc)


@contextmanager
def mounted_yaml(tmp_path, text: str):
    """`procsim mount --foreground` of a machine given as YAML text; always unmounted."""
    cfg = tmp_path / "machine.yaml"
    cfg.write_text(text)
    mp = tmp_path / "m-yaml"
    mp.mkdir()
    proc = subprocess.Popen(procsim_cmd("mount", "--foreground", "--config", cfg, mp),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_mounted(mp, proc)
        yield mp
    finally:
        force_unmount(mp, proc)


# --- clients -------------------------------------------------------------------------------------
def node_exporter_metrics(collectors, procfs=None, sysfs=None) -> dict[str, float]:
    """One scrape of the real ``prometheus-node-exporter`` reading ``procfs`` / ``sysfs``
    with only ``collectors`` on: ``{'name{labels}': value}``.  The exporter always stops."""
    paths = ([f"--path.procfs={procfs}"] if procfs else []) + ([f"--path.sysfs={sysfs}"] if sysfs else [])
    err = ""
    for _ in range(3):                   # a port taken between probe and bind: try another
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        proc = subprocess.Popen(["prometheus-node-exporter", *paths, "--collector.disable-defaults",
                                 *(f"--collector.{c}" for c in collectors), f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        body = None
        try:
            deadline = time.monotonic() + 20
            while body is None and time.monotonic() < deadline and proc.poll() is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                        body = r.read().decode()
                except OSError:
                    time.sleep(0.05)
        finally:
            proc.kill()
            proc.wait()
            err = proc.stderr.read().decode()
            proc.stderr.close()
        if body is not None:
            out = {}
            for line in body.splitlines():
                if line and not line.startswith("#"):
                    key, _, value = line.rpartition(" ")
                    out[key] = float(value)
            return out
    raise RuntimeError(f"node_exporter did not answer: {err[-2000:]}")


class _NoClock:
    """FakeKernel's TaskClock: nothing else runs beside a command."""
    def at(self, i): pass
    def room(self, i): return 1 << 62
    def done(self, n): pass


def reader_ended_by_the_mount(start_reader, how: str):
    """Mount tiny, start a reader that blocks on one of its files (start_reader(mountpoint)
    returns the started thread), end the mount -- ``how``: "unmount" (the harness's fusermount
    -u, lazily when busy) or "sigterm" -- and return the reader once its read has ended; the
    daemon exits by itself either way (not the harness's SIGKILL)."""
    import signal
    from procsim.harness import mount_entry, mounted
    with mounted(CONFIGS / "tiny.yaml") as mt:
        mp, proc = mt.path, mt.proc
        reader = start_reader(mp)
        reader.join(1.0)
        assert reader.is_alive()
        if how == "sigterm":
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
            assert mount_entry(mp) is None
    if how == "unmount":
        assert proc.returncode == 0
    reader.join(20)
    assert not reader.is_alive()
    return reader
