"""The pressure oracle (oracle/pressure, issue 25): a real Debian 6.1 guest with a virtio disk
wrote 800 MiB with dd, then grew anonymous memory until the OOM kill; its captures are in
tests/data/oracle/pressure-{before,after}-oom.txt and fragmented.txt (real kernel output).

Here the same workload is replayed in procsim on the same machine (oracle/pressure/machine.yaml,
no qemu) and the table ``make oracle`` prints is checked row by row against the tolerances the
issue states.  Every row is within tolerance but the known gaps listed in
oracle/pressure/replay.py's KNOWN_GAPS (each with its cause), which ``make oracle`` prints as
GAP; a listed row that is met, or a new one that is not, fails both this file and ``make oracle``.
"""
from __future__ import annotations

import re
import sys
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oracle import pressure, run          # noqa: E402
from oracle import compare as oc          # noqa: E402
from oracle.pressure import replay        # noqa: E402
from procsim import machine as machine_mod  # noqa: E402

DATA = ROOT / "tests" / "data" / "oracle"


def cap(name: str) -> dict[str, str]:
    return run.parse_capture((DATA / f"{name}.txt").read_text())


@lru_cache(maxsize=None)
def report() -> oc.Report:
    return replay.compare(machine_mod.load(pressure.MACHINE), cap("pressure-before-oom"), cap("pressure-after-oom"))


def rows(pred) -> list[oc.Row]:
    picked = [r for r in report().rows if pred(r.what)]
    assert picked, "the table has no such rows"
    return picked


def assert_ok(pred):
    bad = [f"{r.what}: real {r.real}, procsim {r.sim} {r.note}" for r in rows(pred) if not r.ok]
    assert not bad, "\n".join(bad)


# ---- the captures ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(pressure.SAVED.values()))
def test_captures_are_whole(name):
    """Each moment has the files the clone room reads, the run's timing and the kernel log."""
    c = cap(name)
    for f in ("proc/meminfo", "proc/vmstat", "proc/zoneinfo", "proc/buddyinfo", "proc/pagetypeinfo",
              "proc/slabinfo", "proc/cmdline", "dmesg", "timing", "sys/devices/system/node/node0/meminfo"):
        assert c[f].strip(), f
    assert "transparent_hugepage=never" in c["proc/cmdline"] and "nokaslr" in c["proc/cmdline"]
    assert c["proc/sys/vm/overcommit_memory"].strip() == "1"


def test_the_captured_run_is_the_scenario():
    """The file is on the disk's page cache before the hog (Inactive(file) = 800 MiB), one OOM
    kill of the hog after, and in the fragmented zone (1000 MiB of anon held, the file read
    back, every other page of it dropped) most free memory is in single pages."""
    before, after, frag = cap("pressure-before-oom"), cap("pressure-after-oom"), cap("fragmented")
    assert 0 <= oc.kv(before["proc/meminfo"])["Inactive(file)"] - replay.DD_MIB * 1024 < 1024
    assert replay.vmstat(before)["oom_kill"] == 0 and replay.vmstat(after)["oom_kill"] == 1
    report = replay.oom_report(after["dmesg"].splitlines())
    assert report[-1].startswith("Out of memory: Killed process ") and "(hog)" in report[-1]
    dma32 = next(x for x in frag["proc/buddyinfo"].splitlines() if "DMA32" in x).split()[4:]
    assert int(dma32[0]) >= 0.9 * replay.DD_MIB * 256 / 2, dma32     # every other page of the file
    free = [int(n) << order for order, n in enumerate(dma32)]
    assert free[0] > sum(free) / 2, dma32                             # most free memory: single pages


def test_split_turns_phases_into_captures():
    console = ("@@@BEGIN before-oom/proc/meminfo\nMemTotal: 1 kB\n@@@END before-oom/proc/meminfo\n"
               "@@@BEGIN after-oom/dmesg\n[    1.000000] x\n\n@@@END after-oom/dmesg\n@@@DONE\n")
    assert pressure.split(console) == {
        "before-oom": "@@@BEGIN proc/meminfo\nMemTotal: 1 kB\n@@@END proc/meminfo\n@@@DONE\n",
        "after-oom": "@@@BEGIN dmesg\n[    1.000000] x\n\n@@@END dmesg\n@@@DONE\n"}
    assert run.parse_capture(pressure.split(console)["after-oom"]) == {"dmesg": "[    1.000000] x\n\n"}


def test_capture_key_covers_every_input(monkeypatch):
    """A new disk size, module list, kernel package or boot parameter boots again."""
    m = machine_mod.load(pressure.MACHINE)
    key = pressure.capture_key(m)
    for attr, value in (("DISK_MIB", 2400), ("MODULES", pressure.MODULES[:-1])):
        with monkeypatch.context() as mp:
            mp.setattr(pressure, attr, value)
            assert pressure.capture_key(m) != key, attr
    with monkeypatch.context() as mp:
        mp.setattr(run, "KERNEL_PKG", "linux-image-6.1.0-51-amd64")
        assert pressure.capture_key(m) != key
    assert "transparent_hugepage=never" in pressure.cmdline(m)


def test_paces_come_from_the_guests_clock():
    """dd's 200 steps of 4 MiB over dd_end - dd_start, the hog's 1 MiB steps from its start
    to the OOM report's timestamp."""
    before, after = cap("pressure-before-oom"), cap("pressure-after-oom")
    t = replay.timing(after)
    dd, gap, hog = replay.paces(before, after)
    assert dd == pytest.approx((t["dd_end"] - t["dd_start"]) / 200)
    assert gap == pytest.approx(t["hog_start"] - t["dd_end"])
    anon = int(re.search(r"anon-rss:(\d+)kB", after["dmesg"])[1])
    assert hog == pytest.approx((replay.oom_time(after) - t["hog_start"]) / (anon / 1024))


# ---- procsim against the capture: the tolerances procsim meets ------------------------------

def test_machine_layout_exact_and_managed():
    """spanned/present exact (SeaBIOS with a virtio disk reserves 140 KiB at the top of RAM,
    not 128 KiB), managed within 0.05 %."""
    assert_ok(lambda w: w.endswith(("spanned", "present", "managed (0.05 %)")))


def test_after_dd_the_file_is_inactive_page_cache_and_free_memory_matches():
    """dd's 800 MiB on the inactive file list; MemFree within 3 % (the description's boot
    state: the guest's slab caches and kernel pages)."""
    assert_ok(lambda w: w in ("after dd+sync Inactive(file) (3 %)", "after dd+sync MemFree (3 %)"))


def test_hog_anon_rss_within_3_percent_and_page_tables_within_25():
    assert_ok(lambda w: w.startswith("hog "))


def test_every_row_is_met_but_the_known_gaps():
    """The whole table: what is out of tolerance is exactly the known gaps, each with its why."""
    bad = {r.what for r in report().rows if not r.ok}
    assert bad == set(replay.KNOWN_GAPS)
    assert all(r.gap for r in report().rows if not r.ok) and report().failures == 0
    assert all(len(why) > 40 for why in replay.KNOWN_GAPS.values())


def test_kswapd_runs_within_2x():
    assert_ok(lambda w: w == "pageoutrun (2x)")


def test_a_known_gap_that_closes_fails_the_table():
    """Report.known_gaps: a listed row still off is a GAP (not a failure); a listed row that is
    met, or one the table does not have, is a failure, so the list cannot go stale."""
    r = oc.Report()
    r.exact("a", 1, 2)
    r.exact("b", 1, 1)
    r.known_gaps({"a": "why a", "b": "why b", "c": "why c"})
    rows_ = {x.what: x for x in r.rows}
    assert rows_["a"].gap == "why a" and not rows_["a"].ok
    assert not rows_["b"].ok and not rows_["b"].gap and "take it off the list" in rows_["b"].note
    assert not rows_["c"].ok and "no such row" in rows_["c"].note
    assert r.failures == 2
    assert "GAP " in r.table("t") and "1 known gap(s)" in r.table("t")
    # a fresh boot (real figures vary from boot to boot): a met gap row is only said to be met
    r = oc.Report()
    r.exact("a", 1, 2)
    r.exact("b", 1, 1)
    r.known_gaps({"a": "why a", "b": "why b"}, strict=False)
    assert r.failures == 0 and r.rows[1].ok and "met by this boot" in r.rows[1].note


def test_kswapd_scans_and_steals_within_10_percent():
    assert_ok(lambda w: w in ("pgscan_kswapd (10 %)", "pgsteal_kswapd (10 %)"))


def test_direct_reclaim_scans_within_2x():
    """pgscan_direct/pgsteal_direct within 2x of the saved boot's."""
    assert_ok(lambda w: w in ("pgscan_direct (2x)", "pgsteal_direct (2x)"))
    assert all(r.sim <= 2 * r.real and r.real <= 2 * r.sim for r in rows(lambda w: w.endswith("_direct (2x)")))


def test_direct_reclaim_judged_by_the_real_spread_too():
    """A fresh boot's direct reclaim is a race with kswapd: boots of the same guest scanned 669
    to 2648 pages directly (oracle/pressure/boots.txt), so no figure is within 2x of every
    boot.  The row also takes a value between the real boots' least and greatest; boots.txt's
    saved-capture line is the saved capture's own vmstat."""
    spread = replay.boots()
    saved = replay.vmstat(cap("pressure-after-oom"))
    line = next(x for x in (ROOT / "oracle/pressure/boots.txt").read_text().splitlines() if x.startswith("saved-capture"))
    assert {k: int(v) for k, v in (x.split("=") for x in line.split()[1:])} == {k: saved[k] for k in (
        "pgscan_direct", "pgsteal_direct", "allocstall_movable", "pgscan_kswapd", "pageoutrun",
        "kswapd_high_wmark_hit_quickly")}
    assert min(spread["pgscan_direct"]) == 669 and max(spread["pgscan_direct"]) == 2648
    r = oc.Report()
    replay._ratio(r, "a", 669, 1658, 2.0)                      # stop 34's CI boot: x2.48 of that boot
    replay._ratio(r, "b", 669, 1658, 2.0, spread["pgscan_direct"])
    replay._ratio(r, "c", 669, 2700, 2.0, spread["pgscan_direct"])
    assert [x.ok for x in r.rows] == [False, True, False]
    assert "real boots 669-2648" in r.rows[1].note


def test_direct_reclaim_stalls_in_the_movable_zone():
    """allocstall counts gfp_zone(GFP_HIGHUSER_MOVABLE): stalls in the movable zone, as the
    real kernel's, and none in a zone where the real kernel had none."""
    assert_ok(lambda w: w in ("allocstall_movable (> 0 where real > 0)", "allocstall_dma (0 where real is 0)",
                              "allocstall_dma32 (0 where real is 0)", "allocstall_device (0 where real is 0)"))


def _stalls_before_the_kill(trace: str) -> int:
    """How many direct reclaims in a row reclaimed nothing right before the OOM kill (the
    last run of ``mm_vmscan_direct_reclaim_end: nr_reclaimed=0``)."""
    n = 0
    for line in trace.splitlines():
        if "mm_vmscan_direct_reclaim_end:" in line:
            n = n + 1 if line.endswith(" nr_reclaimed=0") else 0
        elif "mm_page_alloc_extfrag:" in line and " hog-" in line:    # the hog got a page
            n = 0
    return n


def _retries(trace: str) -> list[dict]:
    """The oom:reclaim_retry_zone events of a trace: {field: value} (zone= as its name)."""
    return [dict(re.findall(r"(\w+)=(\w+)", x.split("reclaim_retry_zone: ", 1)[1]))
            for x in trace.splitlines() if "reclaim_retry_zone: " in x]


def test_oom_kill_after_reclaim_retries_counting_dma_free_pages():
    """6.1.176 (and 6.13+: the fix of CVE-2024-57884) counts a zone with no LRU pages as
    reclaimable by its free pages, so should_reclaim_retry() finds the DMA zone's "available"
    (free counted twice) above its min + lowmem_reserve and the hog retries reclaim until
    no_progress_loops passes MAX_RECLAIM_RETRIES: 17 direct reclaims without progress, then the
    kill.  pressure-oom-trace.txt is the tail of the real guest's trace (init.sh with
    vmscan/mm_vmscan_direct_reclaim_*, oom/reclaim_retry_zone, oom/mark_victim and
    kmem/mm_page_alloc_extfrag enabled from the hog's start; two other traced boots ended the
    same way); procsim's replay, traced the same way, ends with the same run, the same
    reclaim_retry_zone verdicts and mark_victim's line as its "Killed process" line says."""
    from procsim.views.tracefs import render_trace
    real = (DATA / "pressure-oom-trace.txt").read_text()
    k, _, _, report = replay.replay(machine_mod.load(pressure.MACHINE), cap("pressure-before-oom"),
                                    cap("pressure-after-oom"),
                                    events=("mm_vmscan_direct_reclaim_begin", "mm_vmscan_direct_reclaim_end",
                                            "mm_page_alloc_extfrag", "reclaim_retry_zone", "mark_victim"))
    sim = render_trace(k).decode()
    for trace in (real, sim):
        assert _stalls_before_the_kill(trace) == 17
        last = _retries(trace)[-32:]                  # the 16 retries, DMA32 then DMA each
        assert [(r["zone"], int(r["no_progress_loops"]), r["wmark_check"]) for r in last] == \
            [(z, n, ok) for n in range(1, 17) for z, ok in (("DMA32", "0"), ("DMA", "1"))]
        assert all(int(r["available"]) == 2 * int(r["reclaimable"]) for r in last if r["zone"] == "DMA")
        victim = [x for x in trace.splitlines() if "mark_victim: " in x]
        assert len(victim) == 1 and " comm=hog " in victim[0]
    killed = replay.kill_line(report)
    assert f"anon-rss={killed['anon-rss']}kB " in victim[0] and f"pgtables={killed['pgtables']}kB " in victim[0]


def test_one_oom_kill_with_the_fault_paths_gfp():
    """`use=anon` without gfp= is the anonymous fault's GFP_HIGHUSER_MOVABLE|__GFP_COMP|
    __GFP_ZERO: the header line is the real one, byte for byte."""
    assert_ok(lambda w: w in ("oom_kill", "OOM header names GFP_HIGHUSER_MOVABLE", "OOM header line exact"))


def test_oom_report_line_by_line():
    """Every line of the real report (dump_stack's registers and call trace aside) is in
    procsim's, in the same order, with the same text and column layout."""
    assert_ok(lambda w: w.startswith("OOM line "))
    real = [x for x in replay.oom_report(cap("pressure-after-oom")["dmesg"].splitlines())
            if not replay._is_dump_stack(x)]
    assert len(rows(lambda w: w.startswith("OOM line "))) == len(real) == 32
