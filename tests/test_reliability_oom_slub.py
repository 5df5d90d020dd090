"""An OOM kill inside a kmalloc batch (issue 30 §1b): the allocation that needs a new slab
sleeps in reclaim and the OOM killer, whose victim's kmalloc objects are freed meanwhile (a
full slab of the same cache goes to this cpu's partial list).  The kernel's ___slab_alloc()
installs the new slab all the same (retry_load_slab) and the batch goes on; the books stay
balanced (procsim.mm.check) and the victim is gone."""
from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import procsim
from procsim.machine import CONFIGS_DIR
from procsim.mm.check import check

TINY_SWAP = (CONFIGS_DIR / "tiny.yaml").read_text() + "swap: 16MiB\n"
ANON = "use=anon gfp=GFP_HIGHUSER_MOVABLE"
SEQUENCE = ["kmalloc 512 count=20000 tag=a", f"alloc_pages 0 count=100000 tag=a {ANON}",
            f"alloc_pages 0 count=10000 tag=e {ANON}", "kmalloc 512 tag=e",
            "alloc_pages 0 count=5000 tag=e", "kmalloc 512 count=20000 tag=b"]


def _sim():
    return procsim.Simulation(procsim.machine.loads(TINY_SWAP, "tiny-swap.yaml"))


def _inuse(sim) -> int:
    """Objects of kmalloc-512 handed out and not freed (slabinfo's active_objs also counts the
    free objects of cpu slabs, so it cannot tell)."""
    return sim.kernel.slab.find("kmalloc-512").inuse


def test_oom_kill_inside_a_kmalloc_batch_keeps_slub_consistent():
    sim = _sim()
    base = _inuse(sim)
    replies = []
    for line in SEQUENCE:
        try:
            replies.append(sim.run(line)[0])
        except procsim.CommandError as e:
            replies.append(e.reply)
        check(sim.kernel)
    # a's page fill cannot fit in 64 MiB + 16 MiB swap: a itself is killed, all of it freed
    assert replies[1].startswith("error ENOMEM: Out of memory: the OOM killer killed process"), replies[1]
    assert replies[2:5] == ["ok 20001-30000", "ok 30001", "ok 30002-35001"]
    assert replies[5] == "ok 35002-55001", replies[5]          # the batch completes
    kmsg = sim.render("kmsg").decode()
    killed = re.findall(r"Out of memory: Killed process (\d+) \((\w+)\)", kmsg)
    assert [c for _, c in killed] == ["a", "e"], killed         # e died during b's batch
    # e's kmalloc object went with it; b's 20000 are the only ones added since boot
    assert _inuse(sim) == base + 20000
    try:
        sim.run("kfree tag=e")
        raise AssertionError("e was killed: nothing of it can be freed")
    except procsim.CommandError as e:
        assert e.reply.startswith("error ENOENT")
    assert sim.run("kfree tag=b")[0] == "ok freed 20000"
    check(sim.kernel)
    assert _inuse(sim) == base == _inuse(_sim())


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(15000, 25000), st.integers(8000, 12000), st.integers(1, 3), st.integers(3000, 6000),
       st.integers(15000, 25000), st.sampled_from([0, 1]))
def test_variants_of_the_sequence_keep_the_books(a, e1, ek, e2, b, cpu):
    """Fuzz variant (half of these hit the bug before the fix): other sizes of the same shape,
    on either cpu; only ok or ENOMEM, the invariants after every step, b's batch whole or none."""
    sim = _sim()
    base = _inuse(sim)
    lines = [f"kmalloc 512 count={a} tag=a cpu={cpu}", f"alloc_pages 0 count=100000 tag=a {ANON}",
             f"alloc_pages 0 count={e1} tag=e {ANON}", f"kmalloc 512 count={ek} tag=e cpu={cpu}",
             f"alloc_pages 0 count={e2} tag=e", f"kmalloc 512 count={b} tag=b cpu={cpu}"]
    for line in lines:
        try:
            reply = sim.run(line)[0]
        except procsim.CommandError as err:
            reply = err.reply
        assert reply.startswith(("ok", "error ENOMEM")), (line, reply)
        check(sim.kernel)
    live = {t.tag for t in sim.kernel.tasks if next(t.batches(), None) is not None}
    assert _inuse(sim) == base + (b if "b" in live else 0) + (ek if "e" in live else 0)
