"""Shared fixtures for the shell's tests: a stand-in core, and FUSE mounts that always unmount.

``FakeKernel`` is a deliberately dumb allocator with the core's API (docs/DESIGN.md): a
fixed number of free pages, objects packed ``objperslab`` to a slab.  Its numbers are
trivial to predict, so the control and FUSE tests check the shell, not the buddy.
"""
from __future__ import annotations

import errno
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from procsim.mm.errors import MMError
from procsim.mm.task import Tasks
from procsim.views import View

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
from procsim.mm.page_types import PAGE_OFFSET  # noqa: E402


def have_kernel() -> bool:
    try:
        import procsim.mm.kernel  # noqa: F401
        import procsim.mm.slub  # noqa: F401
        return True
    except ImportError:
        return False


needs_kernel = pytest.mark.skipif(not have_kernel(), reason="procsim.mm.kernel not written yet")


# --- the stand-in core ---------------------------------------------------------------------------
class FakeZone:
    def __init__(self, node, start_pfn, spanned):
        self.node, self.idx, self.name = node, 2, "Normal"
        self.start_pfn, self.spanned = start_pfn, spanned


class FakePage:
    __slots__ = ("pfn", "order", "zone", "id")      # id: as the core's Page, set by Tasks

    def __init__(self, pfn, order, zone):
        self.pfn, self.order, self.zone = pfn, order, zone

    @property
    def node(self):
        return self.zone.node


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
    """nr_pages free pages on one node, pfns handed out from 1000 upwards."""

    def __init__(self, machine=None, nr_pages=4096):
        self.machine = machine
        self.generation = 0
        self.nr_cpu_ids = 2
        self.nodes = [object()]
        self.zones = [FakeZone(0, 1000, nr_pages)]
        self.nr_free = nr_pages
        self._next = 1000
        self._freed: list[tuple[int, int]] = []
        self.slab = FakeSlab(self)
        self.tasks = Tasks(self)
        self.now_ns = 0

    def tick(self):                     # a command's jiffy, as Kernel.tick (procsim.mm.timer)
        self.now_ns += 4_000_000

    def sleep(self, ns):
        self.now_ns += ns

    def alloc_pages(self, order, gfp, node=None, cpu=None):
        if self.nr_free < 1 << order:
            raise MMError(errno.ENOMEM, f"page allocation failure: order:{order}")
        self.nr_free -= 1 << order
        self.generation += 1
        pfn = self._next
        self._next += 1 << order
        return FakePage(pfn, order, self.zones[0])

    def free_pages(self, page):
        self.nr_free += 1 << page.order
        self.generation += 1

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


# --- mounting ----------------------------------------------------------------------------------
def boot(config: str | None = None, *, text: str | None = None, **kw):
    """A Kernel booted from configs/<config>.yaml or from YAML text (Kernel keywords pass on)."""
    from procsim.machine import load, loads
    from procsim.mm.kernel import Kernel
    return Kernel(loads(text) if text is not None else load(CONFIGS / f"{config}.yaml"), **kw)


# Booted machines shared by the tests of one module (each module boots its own).
@pytest.fixture(scope="module")
def seed_vm():
    return boot("seed-vm")


@pytest.fixture(scope="module")
def seed_server():
    return boot("seed-server")


@pytest.fixture(scope="module")
def big():
    return boot("big-4s-1t")


@pytest.fixture
def mp(tmp_path):
    """An empty mount point that is unmounted afterwards, whatever the test left there."""
    m = tmp_path / "mnt"
    m.mkdir()
    yield m
    force_unmount(m)


def mounts(mp) -> bool:
    from procsim.fs import mount_entry
    return mount_entry(mp) is not None


def wait_mounted(mp, proc=None, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if mounts(mp):
            try:
                os.stat(mp)
                return
            except OSError:
                pass
        if proc is not None and not _alive(proc):
            raise RuntimeError("the FUSE daemon exited before mounting")
        time.sleep(0.05)
    raise RuntimeError(f"{mp} not mounted after {timeout} s")


def _alive(proc) -> bool:
    if isinstance(proc, subprocess.Popen):
        return proc.poll() is None
    return proc.is_alive()


def force_unmount(mp, proc=None):
    """fusermount -u (lazy as a fallback), then make sure the daemon is gone."""
    if mounts(mp):
        subprocess.run(["fusermount", "-u", str(mp)], capture_output=True)
    if mounts(mp):
        subprocess.run(["fusermount", "-uz", str(mp)], capture_output=True)
        subprocess.run(["umount", "-l", str(mp)], capture_output=True)
    if proc is not None:
        deadline = time.monotonic() + 10
        while _alive(proc) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(proc):
            proc.kill()
        if isinstance(proc, subprocess.Popen):
            proc.wait()
        else:
            proc.join()


def _serve_forked(make_session, mp):
    from procsim.fs import serve
    serve(make_session(), str(mp))


@pytest.fixture
def mount_session(tmp_path):
    """mount_session(factory) -> mount point, served by a forked child; always unmounted."""
    started = []

    def start(make_session):
        mp = tmp_path / f"mnt{len(started)}"
        mp.mkdir()
        proc = multiprocessing.get_context("fork").Process(target=_serve_forked, args=(make_session, mp))
        proc.start()
        started.append((mp, proc))
        wait_mounted(mp, proc)
        return mp

    yield start
    for mp, proc in started:
        force_unmount(mp, proc)


@pytest.fixture
def fake_mounted(mount_session):
    return mount_session(fake_session)


def procsim_cmd(*args):
    return [sys.executable, "-m", "procsim.cli", *map(str, args)]


@pytest.fixture
def mounted(tmp_path):
    """The real thing: `procsim mount --foreground -c CONFIG M` (seed-vm by default); always unmounted."""
    if not have_kernel():
        pytest.skip("procsim.mm.kernel not written yet")
    started = []

    def start(config="seed-vm", *extra):
        mp = tmp_path / f"m{len(started)}"
        mp.mkdir()
        proc = subprocess.Popen(procsim_cmd("mount", "--foreground", "--config", CONFIGS / f"{config}.yaml",
                                            *extra, mp), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        started.append((mp, proc))
        try:
            wait_mounted(mp, proc)
        except RuntimeError:
            raise RuntimeError(proc.stderr.read().decode() if proc.poll() is not None else "timeout")
        return mp

    yield start
    for mp, proc in started:
        force_unmount(mp, proc)
        if proc.stderr:
            proc.stderr.close()
