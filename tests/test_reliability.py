"""Invariants under random command mixes: a hypothesis state machine drives every control
command through ``procsim.control.Control`` (the interpreter the control file uses) and runs
``procsim.mm.check.check`` plus view cross-checks after every step.

The model keeps its own book of live IDs from the ``ok A-B`` replies, so a lost or doubled
allocation shows up as a difference from the ``allocations`` listing.
"""
from __future__ import annotations

import errno
import re

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from procsim.testing import CONFIGS


GFPS = ["GFP_KERNEL", "GFP_ATOMIC", "GFP_HIGHUSER_MOVABLE", "GFP_DMA32", "GFP_KERNEL|__GFP_RECLAIMABLE",
        "GFP_NOWAIT", "GFP_DMA"]
USES = ["anon", "pagecache", "kernel_stack", "page_tables"]
CACHE_NAMES = ["rel_a", "rel_b", "rel_c"]
TAGS = ["t0", "t1", "t2"]
_MACHINES: dict[str, object] = {}


def machine(name):
    if name not in _MACHINES:                     # NAME+swap: the shipped machine with 64 MiB of swap
        from procsim import machine as m
        base, _, swap = name.partition("+")
        text = (CONFIGS / f"{base}.yaml").read_text()
        _MACHINES[name] = m.loads(text.rstrip() + "\nswap: 64MiB\n") if swap else m.loads(text)
    return _MACHINES[name]


def meminfo_kb(k) -> dict[str, int]:
    from procsim.views import meminfo
    return {l.split(":")[0]: int(l.split()[1]) for l in meminfo.render(k).decode().splitlines()}


def listed_ids(ctl) -> tuple[dict[int, tuple[str, str]], int]:
    """ID -> (tag, kind) from the ``allocations`` file, and how many more it says it left out
    (it lists the first MAX_LISTED in ID order)."""
    rows = ctl.render_allocations().decode().splitlines()[1:]
    more = next((int(r.split()[1]) for r in rows if r.startswith("# ")), 0)
    return {int(r.split()[0]): (r.split()[1], r.split()[2]) for r in rows if not r.startswith("#")}, more


def free_line(kind: str, cache: str | None, what) -> str:
    """The control line that frees `what` (an ID, or tag=T) of allocations of this kind."""
    verb = {"pages": "free_pages", "kmalloc": "kfree", "slab": f"kmem_cache_free {cache}"}[kind]
    return f"{verb} {what}"


class ControlMachine(RuleBasedStateMachine):
    """Lines go through ``Session.execute`` (the control file's path, --state journal included)."""
    config = "tiny"
    replay_at_end = True            # teardown: the journal rebuilds exactly this state

    def __init__(self):
        super().__init__()
        from procsim.mm.kernel import Kernel
        import tempfile

        from procsim.session import Session
        m = machine(self.config)
        self.journal_dir = tempfile.TemporaryDirectory()
        self.session = Session(m, boot=lambda: Kernel(m), views={},
                               state=f"{self.journal_dir.name}/journal" if self.replay_at_end else None)
        self.ctl = self.session.control
        self.lines: list[str] = []                  # everything sent, for failure reports
        self.live: dict[int, tuple[str, str | None, str | None]] = {}   # id -> (kind, tag, cache)
        self.caches: set[str] = set()

    # --- helpers ---------------------------------------------------------------------------
    def run(self, line):
        from procsim.mm.check import state_digest
        before = state_digest(self.ctl.kernel)
        got = self.session.execute([line])
        self.lines.append(line)
        assert len(got) == 1
        r = got[0]
        assert r.text.startswith("ok") == (r.errno == 0), r.text
        if r.errno:
            assert re.match(r"error E[A-Z]+: \S", r.text), r.text
            assert r.errno != 5, f"internal error for {line!r}: {r.text}"             # EIO = a bug
            if r.errno != 12:       # ENOMEM may set ZONE_BELOW_HIGH; undone count=K goes through the pcp
                assert state_digest(self.ctl.kernel) == before, f"{line!r} failed but changed the state"
        return r

    def record(self, r, kind, tag, cache=None):
        self.resync()               # any allocation may have made kswapd reclaim a tag's page cache
        if r.errno:
            return
        m = re.fullmatch(r"ok (\d+)(?:-(\d+))?", r.text)
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        for i in range(lo, hi + 1):
            assert i not in self.live
            self.live[i] = (kind, tag, cache)
        self.resync()               # reclaim under the command itself may have taken its first blocks

    def freed(self, r, ids):
        assert r.text == f"ok freed {len(ids)}", r.text
        for i in ids:
            del self.live[i]

    def opts(self, data, node=True):
        k = self.ctl.kernel
        out = []
        if data.draw(st.booleans()):
            out.append("gfp=" + data.draw(st.sampled_from(GFPS)))
        if node and data.draw(st.booleans()):
            out.append(f"node={data.draw(st.integers(0, len(k.nodes) - 1))}")
        if data.draw(st.booleans()):
            out.append(f"cpu={data.draw(st.integers(0, k.nr_cpu_ids - 1))}")
        tag = data.draw(st.sampled_from(TAGS + [None]))
        if tag:
            out.append(f"tag={tag}")
        return out, tag

    # --- rules -----------------------------------------------------------------------------
    @rule(data=st.data(), order=st.integers(0, 10), count=st.integers(1, 4))
    def alloc_pages(self, data, order, count):
        opts, tag = self.opts(data)
        if data.draw(st.booleans()):
            opts.append("use=" + data.draw(st.sampled_from(USES)))
        self.record(self.run(f"alloc_pages {order} count={count} " + " ".join(opts)), "pages", tag)

    @rule(data=st.data(), size=st.sampled_from([1, 8, 64, 100, 192, 1000, 4096, 8192, 8193, 20000, 300000]),
          count=st.integers(1, 5))
    def kmalloc(self, data, size, count):
        opts, tag = self.opts(data)
        self.record(self.run(f"kmalloc {size} count={count} " + " ".join(opts)), "kmalloc", tag)

    @rule(name=st.sampled_from(CACHE_NAMES), size=st.sampled_from([8, 24, 100, 700, 3000]),
          hw=st.booleans(), reclaim=st.booleans())
    def cache_create(self, name, size, hw, reclaim):
        flags = "|".join(f for f, on in (("SLAB_HWCACHE_ALIGN", hw), ("SLAB_RECLAIM_ACCOUNT", reclaim)) if on)
        r = self.run(f"kmem_cache_create {name} {size}" + (f" flags={flags}" if flags else ""))
        assert (r.errno == 0) == (name not in self.caches) or r.text.startswith("error ENOMEM"), r.text
        if not r.errno:
            self.caches.add(name)

    @precondition(lambda self: self.caches)
    @rule(data=st.data(), count=st.integers(1, 40))
    def cache_alloc(self, data, count):
        name = data.draw(st.sampled_from(sorted(self.caches)))
        opts, tag = self.opts(data)
        self.record(self.run(f"kmem_cache_alloc {name} count={count} " + " ".join(opts)), "slab", tag, name)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def free_one(self, data):
        i = data.draw(st.sampled_from(sorted(self.live)))
        kind, _, cache = self.live[i]
        self.freed(self.run(free_line(kind, cache, i)), [i])

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def free_tag(self, data):
        i = data.draw(st.sampled_from(sorted(self.live)))
        kind, tag, cache = self.live[i]
        if tag is None:
            return
        ids = [j for j, v in self.live.items() if v[0] == kind and v[1] == tag and (cache is None or v[2] == cache)]
        self.freed(self.run(free_line(kind, cache, f"tag={tag}")), ids)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def free_wrong_kind_or_twice(self, data):
        """Freeing with the wrong command, or an ID already freed: refused, nothing changes."""
        i = data.draw(st.sampled_from(sorted(self.live)))
        kind, _, cache = self.live[i]
        wrong = {"pages": f"kfree {i}", "kmalloc": f"free_pages {i}", "slab": f"kfree {i}"}[kind]
        assert self.run(wrong).errno == 22
        other = next((c for c in sorted(self.caches) if c != cache), None)
        if kind == "slab" and other:
            assert self.run(f"kmem_cache_free {other} {i}").errno == 22     # another cache's object
        dead = max(self.live) + 1 + data.draw(st.integers(0, 3))
        assert self.run(f"free_pages {dead}").errno == 2

    @precondition(lambda self: self.caches)
    @rule(data=st.data())
    def shrink(self, data):
        name = data.draw(st.sampled_from(sorted(self.caches)))
        assert re.fullmatch(r"ok freed \d+ pages", self.run(f"kmem_cache_shrink {name}").text)

    @precondition(lambda self: self.caches)
    @rule(data=st.data())
    def destroy(self, data):
        name = data.draw(st.sampled_from(sorted(self.caches)))
        busy = any(v[2] == name for v in self.live.values())
        r = self.run(f"kmem_cache_destroy {name}")
        assert r.errno == (16 if busy else 0), r.text                 # EBUSY while objects live
        if not busy:
            self.caches.discard(name)

    @rule(data=st.data(), size=st.sampled_from([1, 4096, 4097, 12288, 12289, 65536, 1 << 20]))
    def alloc_pages_exact(self, data, size):
        opts, tag = self.opts(data)
        r = self.run(f"alloc_pages_exact {size} " + " ".join(opts))
        self.record(r, "pages", tag)
        if not r.errno:
            m = re.fullmatch(r"ok (\d+)(?:-(\d+))?", r.text)
            assert int(m.group(2) or m.group(1)) - int(m.group(1)) + 1 == -(-size // 4096), r.text

    @rule(data=st.data())
    def compact(self, data):
        """compact_memory / compact node=N: allocations may move, IDs stay (the invariants
        check every ID names an allocated block of its order after it)."""
        k = self.ctl.kernel
        line = data.draw(st.sampled_from(["compact_memory"] + [f"compact node={n}" for n in range(len(k.nodes))]))
        assert self.run(line).text == "ok"

    @rule()
    def drop_caches(self):
        assert self.run("drop_caches").text.startswith("ok freed")

    # --- memory pressure: reclaim and the OOM killer may take allocations away ---------------
    def resync(self):
        """IDs reclaim dropped (page cache: RECLAIMED) or the OOM killer freed (a victim's
        everything) leave the book; nothing else may have gone."""
        from procsim.mm.task import LIVE, RECLAIMED, SWAPPED
        k = self.ctl.kernel
        for i in sorted(self.live):
            a = k.tasks.lookup(i)
            if a.state in (LIVE, SWAPPED):          # a swapped-out page is still its task's
                continue
            kind, tag, _ = self.live[i]
            assert (a.state == RECLAIMED and kind == "pages") or (tag and k.vm_events.get("oom_kill")), \
                f"ID {i} ({kind}, tag {tag}) is {a.state} with no reclaim or OOM kill to explain it"
            del self.live[i]

    @rule(data=st.data(), tag=st.sampled_from(TAGS), use=st.sampled_from(["anon", "pagecache"]))
    def pressure(self, data, tag, use):
        """More than the free memory: kswapd, direct reclaim, maybe the OOM killer."""
        k = self.ctl.kernel
        count = (k.nr_free_pages + data.draw(st.integers(-200, 2000))) // 2    # order 1: fewer IDs to list
        self.record(self.run(f"alloc_pages 1 gfp=GFP_HIGHUSER_MOVABLE use={use} count={max(count, 1)} tag={tag}"),
                    "pages", tag)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def touch(self, data):
        i = data.draw(st.sampled_from(sorted(self.live)))
        if self.live[i][0] == "pages":
            r = self.run(f"touch {i}")              # swapped out: faulted in, which may reclaim or fail
            assert r.text.startswith("ok touched") or r.errno == errno.ENOMEM, r.text
            self.resync()

    @rule(value=st.sampled_from(["1", "2", "3", "0", "5"]))
    def sysctl_drop_caches(self, value):
        r = self.run(f"sysctl vm.drop_caches {value}")
        assert (r.errno == 0) == (value in "123"), r.text
        self.resync()

    @rule()
    def drain_pages(self):
        assert self.run("drain_pages").text == "ok"
        assert all(pcp.count == 0 for z in self.ctl.kernel.zones for pcp in z.pcp)

    @rule(line=st.sampled_from(["help", "# comment", "bogus 1", "alloc_pages", "alloc_pages 11",
                                "kmalloc 0", "kfree 0-", "free_pages tag=nosuchtag", "kmem_cache_free nosuch 1"]))
    def odd_line(self, line):
        if line.startswith("#"):
            assert self.session.execute([line]) == []
            return
        r = self.run(line)                  # checks that a refused line changed nothing
        assert (r.errno == 0) == (line == "help"), r.text

    @rule(data=st.data())
    def reset(self, data):
        if data.draw(st.integers(0, 9)):        # rare: a reboot wipes what the run built up
            return
        assert self.run("reset").text == "ok"
        self.live.clear()
        self.caches.clear()

    def teardown(self):
        try:
            if self.replay_at_end:
                from procsim.mm.check import state_digest
                from procsim.session import Session
                self.session.close()
                m = machine(self.config)
                again = Session(m, views={}, state=f"{self.journal_dir.name}/journal")
                journal = open(f"{self.journal_dir.name}/journal").read()
                assert state_digest(again.kernel) == state_digest(self.ctl.kernel), \
                    "journal:\n" + journal + "\nsent:\n" + "\n".join(self.lines)
                assert again.control.render_allocations() == self.ctl.render_allocations()
                assert again.control.next_id == self.ctl.next_id
                again.close()
        finally:
            self.journal_dir.cleanup()

    # --- after every step ------------------------------------------------------------------
    @invariant()
    def core_invariants(self):
        from procsim.mm.check import check
        check(self.ctl.kernel)

    @invariant()
    def views_agree(self):
        k = self.ctl.kernel
        mi = meminfo_kb(k)
        assert mi["MemFree"] == 4 * sum(z.nr_free for z in k.zones)
        slab_pages = sum(k.slab.slab_pages().values())
        assert mi["Slab"] == 4 * slab_pages
        assert mi["AnonPages"] == 4 * k.node_stat_total("nr_anon_pages")     # = the anon pages: check()

    @invariant()
    def no_lost_or_doubled_allocation(self):
        self.resync()               # kswapd runs on every command's tick: page cache may have gone
        got, more = listed_ids(self.ctl)
        want = sorted(self.live)
        assert sorted(got) == want[:len(got)] and len(got) + more == len(want)
        for i, (tag, kind) in got.items():
            assert kind == self.live[i][0] and tag == (self.live[i][1] or "-")


class SeedVmMachine(ControlMachine):
    config = "seed-vm"
    replay_at_end = False           # a second boot per example would double the time


class TinySwapMachine(ControlMachine):
    """With swap: reclaim writes tagged anon out, touch faults it back in, frees give slots back."""
    config = "tiny+swap"

    @rule(tag=st.sampled_from(TAGS), commands=st.integers(2, 4))
    def overcommit(self, tag, commands):
        """Anon past the free memory in a few commands: the earlier ones' pages go to swap;
        touching the tag then faults them back in (and pushes others out)."""
        for _ in range(commands):
            count = self.ctl.kernel.nr_free_pages // 2 + 500
            self.record(self.run(f"alloc_pages 0 gfp=GFP_HIGHUSER_MOVABLE use=anon count={count} tag={tag}"),
                        "pages", tag)
        self.touch_tag(tag)

    @rule(tag=st.sampled_from(TAGS))
    def touch_tag(self, tag):
        r = self.run(f"touch tag={tag}")
        assert r.text.startswith("ok touched") or r.errno in (errno.ENOMEM, errno.ENOENT), r.text
        self.resync()


TestControlTiny = ControlMachine.TestCase
TestControlTiny.settings = settings(max_examples=20, stateful_step_count=40, deadline=None,
                                    suppress_health_check=[HealthCheck.too_slow])
TestControlSeedVm = SeedVmMachine.TestCase
TestControlSeedVm.settings = settings(max_examples=2, stateful_step_count=12, deadline=None,
                                      suppress_health_check=[HealthCheck.too_slow])
TestControlTinySwap = TinySwapMachine.TestCase
TestControlTinySwap.settings = settings(max_examples=8, stateful_step_count=40, deadline=None,
                                        suppress_health_check=[HealthCheck.too_slow])


# --- use= on alloc_pages -------------------------------------------------------------------------
@pytest.mark.parametrize("use,label,kb_per_page", [("anon", "AnonPages", 4), ("pagecache", "Cached", 4),
                                                    ("kernel_stack", "KernelStack", 4),
                                                    ("page_tables", "PageTables", 4)])
def test_alloc_pages_use_feeds_meminfo(use, label, kb_per_page):
    from procsim.control import Control
    from procsim.mm.kernel import Kernel
    m = machine("seed-vm")
    ctl = Control(lambda: Kernel(m))
    before = meminfo_kb(ctl.kernel)
    assert ctl.run(f"alloc_pages 2 count=3 use={use} tag=u").text == "ok 1-3"
    after = meminfo_kb(ctl.kernel)
    assert after[label] - before[label] == 3 * 4 * kb_per_page      # 3 blocks of 4 pages
    others = {"AnonPages", "Cached", "KernelStack", "PageTables"} - {label}
    tables = {"PageTables": 3 * 4} if use == "anon" else {}       # anon's PTE, PMD and PUD page
    assert all(after[o] - before[o] == tables.get(o, 0) for o in others)
    assert ctl.run("free_pages tag=u").text == "ok freed 3"
    assert meminfo_kb(ctl.kernel)[label] == before[label]
    assert meminfo_kb(ctl.kernel)["PageTables"] == before["PageTables"]


def test_alloc_pages_bad_use_is_einval():
    from procsim.control import Control
    from procsim.mm.check import state_digest
    from procsim.mm.kernel import Kernel
    m = machine("tiny")
    ctl = Control(lambda: Kernel(m))
    d = state_digest(ctl.kernel)
    for line in ("alloc_pages 0 use=slab", "alloc_pages 0 use=", "alloc_pages 0 use=anon use=anon"):
        r = ctl.run(line)
        assert r.errno == 22 and "use=" in r.text, r.text
    assert state_digest(ctl.kernel) == d


def test_check_catches_a_drifted_counter():
    """The checker is not vacuous: a counter nudged by one is reported by name."""
    from procsim.mm.check import check
    from procsim.mm.kernel import Kernel
    k = Kernel(machine("tiny"))
    check(k)
    k.alloc_pages(0, use="anon")
    k.nodes[0].stat["nr_anon_pages"] += 1
    with pytest.raises(AssertionError, match="nr_anon_pages"):
        check(k)
    k.nodes[0].stat["nr_anon_pages"] -= 1
    k.nodes[0].stat["nr_slab_unreclaimable"] -= 1
    with pytest.raises(AssertionError, match="nr_slab_unreclaimable"):
        check(k)


def test_check_finds_a_free_block_on_another_types_list():
    """The checker is not vacuous about the free lists either: a free block moved onto the
    list of a type its pageblock is not (the counts kept right) is reported, in one pass
    over the lists (a zone with 100 k free single pages checks in about a second)."""
    from procsim.mm.buddy import MIGRATE_MOVABLE, MIGRATE_UNMOVABLE
    from procsim.mm.check import check
    from procsim.mm.kernel import Kernel
    k = Kernel(machine("tiny"))
    z = max(k.zones, key=lambda z: z.nr_free)
    pfn, o = next((p, o) for p, o in z._free.items() if z.get_pageblock_migratetype(p) == MIGRATE_MOVABLE)
    z._del(pfn, o, MIGRATE_MOVABLE)
    z._add(pfn, o, MIGRATE_UNMOVABLE)
    with pytest.raises(AssertionError, match="is not on its pageblock's type-1 list"):
        check(k)


def test_allocations_listing_cache_matches_a_fresh_render():
    """Rows are cached per group: a listing rendered after every command equals one rendered
    once at the end by a fresh interpreter given the same commands (frees and reset included)."""
    from procsim.control import Control
    from procsim.mm.kernel import Kernel
    m = machine("tiny")
    script = ["kmalloc 64 count=5 tag=a", "alloc_pages 1 count=3 tag=b", "kfree 2-3", "free_pages 7",
              "reset", "alloc_pages 0 count=5 tag=c", "kmalloc 20000 count=3 tag=d", "free_pages 1",
              "kfree tag=d", "kmem_cache_create z 300", "kmem_cache_alloc z count=4 tag=e", "kmem_cache_free z 10"]
    watched = Control(lambda: Kernel(m))
    for line in script:
        assert watched.run(line).errno == 0, line
        watched.render_allocations()
    fresh = Control(lambda: Kernel(m))
    for line in script:
        fresh.run(line)
    assert watched.render_allocations() == fresh.render_allocations()
    rows = [l.split() for l in fresh.render_allocations().decode().splitlines()[1:]]
    assert [int(r[0]) for r in rows] == [2, 3, 4, 5, 9, 11, 12]     # c: 1-5 (1 freed), d: 6-8 freed, e: 9-12 (10 freed)
    assert {r[1] for r in rows} == {"c", "e"}
