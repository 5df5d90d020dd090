"""The pressure oracle's workload replayed in procsim, and the table against the real guest.

The replay runs ``oracle/pressure/init.sh``'s workload on ``machine.yaml`` through the control
language, at the pace the guest's own clock measured (the captures' ``timing`` section and the
OOM report's timestamp): dd's DD_MIB MiB of page cache in 4 MiB steps, the pause for sync, then
the hog's anonymous memory 1 MiB (256 pages) a step until the OOM killer takes it.  Both
allocate without ``gfp=``: ``use=pagecache`` and ``use=anon`` take the fault path's mask.

The table (``compare``) states each tolerance in its rows (issue 25's "A pressure oracle").
"""
from __future__ import annotations

import errno
import re

from oracle import compare as oc
from oracle.pressure import HERE
from procsim.control import Control
from procsim.mm import printk
from procsim.mm.kernel import Kernel
from procsim.mm.timer import TICK_NSEC
from procsim.views import meminfo

DD_MIB = int(re.search(r"^DD_MIB=(\d+)$", (HERE / "init.sh").read_text(), re.M)[1])
DD_STEP_MIB = 4
HOG_STEP_PAGES = 256                     # hog.c: `hog grow 1 ...`, 1 MiB a step
TOL = {"anon-rss": 0.03, "pgtables": 0.25, "kswapd": 0.10, "direct": 2.0, "slabs_scanned": 20.0}
# Rows the replay is known not to meet on the saved captures, and why: shown as GAP, not failing
# `make oracle`; the suite (the saved captures) fails as soon as one is met (Report.known_gaps),
# so the list is always the truth.  A fresh boot's figures vary (hit_quickly: 71 to 200 over ten
# boots, 74 to 105 in six of them, where procsim's replay gave 91 to 112), so there a met gap row
# is only said to be met.
KNOWN_GAPS = {
    "kswapd_high_wmark_hit_quickly (2x)":
        "issue 25/26: procsim frees a page onto the pcp list of the cpu that allocated it, so the "
        "hog allocates what kswapd reclaims without the zone's free count moving, and kswapd finds "
        "the node balanced after its nap (sim 21, real 200). The kernel frees on the freeing cpu "
        "(kswapd's) and keeps few pages on the lists while kswapd runs (ZONE_RECLAIM_ACTIVE): tried, "
        "the row is met (175) but direct reclaim falls to 0.2x, as procsim's hog never falls back "
        "into other pageblocks where the real one was boosted 33 times (compact_daemon_wake 33)",
}


def boots() -> dict[str, list[int]]:
    """boots.txt: the real guest's figures over its recorded boots, {vmstat name: values}."""
    out: dict[str, list[int]] = {}
    for line in (HERE / "boots.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            for name, v in (x.split("=") for x in line.split()[1:]):
                out.setdefault(name, []).append(int(v))
    return out


def timing(cap: dict[str, str]) -> dict[str, float]:
    """init.sh's /proc/uptime at each step: {event: seconds}."""
    return {k: float(v) for k, v in (line.split() for line in cap["timing"].splitlines() if line.strip())}


def vmstat(cap: dict[str, str]) -> dict[str, int]:
    return {k: int(v) for k, v in (line.split() for line in cap["proc/vmstat"].splitlines())}


_TS = re.compile(r"^\[\s*\d+\.\d+\] ")


def oom_report(lines: list[str]) -> list[str]:
    """The first OOM report of a log (timestamps stripped): from "invoked oom-killer" to
    "Out of memory: Killed process"."""
    lines = [_TS.sub("", x) for x in lines]
    start = next(i for i, x in enumerate(lines) if " invoked oom-killer: " in x)
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("Out of memory: Killed process"))
    return lines[start:end + 1]


def oom_time(cap: dict[str, str]) -> float:
    line = next(x for x in cap["dmesg"].splitlines() if " invoked oom-killer: " in x)
    return float(line[1:line.index("]")])


def kill_line(report: list[str]) -> dict[str, int]:
    """The numbers of "Out of memory: Killed process ..." (kB, pgtables in kB)."""
    return {k: int(v) for k, v in re.findall(r"([a-z-]+):(\d+)kB", report[-1])}


def paces(before: dict[str, str], after: dict[str, str]) -> tuple[float, float, float]:
    """Seconds per dd step, the pause between dd and the hog (sync), seconds per hog step:
    the guest's own clock.  The hog's steps are its anon-rss at the kill in MiB."""
    t, ta = timing(before), timing(after)
    dd = (t["dd_end"] - t["dd_start"]) / (DD_MIB // DD_STEP_MIB)
    steps = kill_line(oom_report(after["dmesg"].splitlines()))["anon-rss"] / (HOG_STEP_PAGES * 4)
    return dd, ta["hog_start"] - t["dd_end"], (oom_time(after) - ta["hog_start"]) / steps


def _sleep(ctl: Control, seconds: float) -> None:
    """Idle for what is left of a step after the command's own jiffy (Kernel.tick)."""
    us = round(seconds * 1e6) - TICK_NSEC // 1000
    if us > 0:
        ctl.run(f"sleep {us}us")


def replay(m, before: dict[str, str], after: dict[str, str],
           events: tuple[str, ...] = ()) -> tuple[Kernel, dict[str, int], str, list[str]]:
    """The workload in procsim: returns the kernel after the OOM kill, its meminfo when the
    guest's before-oom capture was taken, the hog's last reply and the OOM report procsim
    logged (without timestamps).  ``events``: trace events recorded from the hog's start, as
    the traced guest enabled them."""
    dd, gap, hog = paces(before, after)
    ctl = Control(lambda: Kernel(m))
    k = ctl.kernel
    for _ in range(DD_MIB // DD_STEP_MIB):
        r = ctl.run(f"alloc_pages 0 use=pagecache count={DD_STEP_MIB * 256} tag=dd buffers=1")
        if r.errno:
            raise RuntimeError(f"dd: {r.text}")
        _sleep(ctl, dd)
    _sleep(ctl, gap)
    at_capture = oc.kv(meminfo.render(k).decode())
    if events:
        k.trace.enable(events, True)
    text = ""
    for _ in range(1 << 16):
        r = ctl.run(f"alloc_pages 0 use=anon count={HOG_STEP_PAGES} tag=hog")
        if r.errno:
            text = r.text
            break
        _sleep(ctl, hog)
    if r.errno != errno.ENOMEM:
        raise RuntimeError("the hog was never killed")
    # a record of several lines (show_mem's Mem-Info) prints as one line each in dmesg
    return k, at_capture, text, oom_report([x for rec in printk.ring(k).records for x in rec.text.split("\n")])


# ---- the table ----------------------------------------------------------------------------

# dump_stack()'s lines (CPU:, Hardware name:, the call trace and registers): the real guest's
# code and registers, which a simulation has not got; not compared
def _is_dump_stack(line: str) -> bool:
    return line.startswith(("CPU: ", "Hardware name: ", "Call Trace:", " <TASK>", " </TASK>", "RIP: ",
                            "Code: ", "RSP: ", "RAX: ", "RDX: ", "RBP: ", "R10: ", "R13: ")) \
        or re.match(r"^ (\? )?[a-z_][\w.]*\+0x[0-9a-f]+/0x[0-9a-f]+$", line) is not None


def _shape(line: str) -> str:
    """A line's text with its numbers as # (and the spaces before them, which only pad):
    buddy lists lose their migratetype letters, which say what is free, not the format; the
    task list's right-aligned columns keep where each number ends."""
    line = re.sub(r" \([A-Z]+\)", "", line)
    shape = re.sub(r" *\d+", " #", line)
    if line.startswith("["):
        shape += " @" + ",".join(str(m.end()) for m in re.finditer(r"\d+", line))
    return shape


def _ratio(r: oc.Report, what: str, real: int, sim: int, factor: float, spread: list[int] | None = None) -> None:
    """Within factor x of the real value either way (real / factor <= sim <= real * factor),
    or, given the figures of the real guest's other boots (``spread``), between their least
    and greatest: a value the real kernel itself gave on some boot."""
    ok = real / factor <= sim <= real * factor
    note = f"x{sim / real:.2f} (within {factor:g}x)" if real else "real 0"
    if spread:
        lo, hi = min(spread), max(spread)
        ok = ok or lo <= sim <= hi
        note += f"; real boots {lo}-{hi}"
    r.rows.append(oc.Row(what, real, sim, ok, note))


def _tasks_row(report: list[str], name: str) -> list[str]:
    return next(x for x in report if x.startswith("[") and x.split()[-1] == name).strip("[]").replace("]", "").split()


def compare(m, before: dict[str, str], after: dict[str, str], strict_gaps: bool = True) -> oc.Report:
    """The pressure table: the machine's layout (as oracle/compare.py's tolerances), the state
    after dd, then the OOM run against the real guest's."""
    r = oc.Report()
    # the description: zones and watermarks as the guest booted them
    k0 = Kernel(m)
    real_z = oc.zoneinfo_sections(before["proc/zoneinfo"])
    from procsim.views import files
    sim_z = oc.zoneinfo_sections(files(m)["zoneinfo"].render(k0).decode())
    for key, lines in real_z.items():
        a, b = oc.zone_values(lines), oc.zone_values(sim_z.get(key, []))
        if not a.get("present"):
            continue
        where = f"node {key[0]} {key[1]}"
        for f in ("spanned", "present"):
            r.exact(f"{where} {f}", a.get(f), b.get(f))
        r.near(f"{where} managed (0.05 %)", a.get("managed"), b.get("managed"), oc.MANAGED_TOL)
        for f in ("min", "low", "high"):
            r.near(f"{where} {f} (0.15 %)", a.get(f), b.get(f), oc.WMARK_TOL)
    r.exact("min_free_kbytes", int(before["proc/sys/vm/min_free_kbytes"]), k0.min_free_kbytes)

    k, at_capture, text, sim_report = replay(m, before, after)
    real_mem = oc.kv(before["proc/meminfo"])
    for key in ("Inactive(file)", "MemFree"):
        r.near(f"after dd+sync {key} (3 %)", real_mem[key], at_capture[key], 0.03)

    # the OOM kill: the hog's numbers (kill line and task list)
    real_report = oom_report(after["dmesg"].splitlines())
    rk, sk = kill_line(real_report), kill_line(sim_report)
    r.near("hog anon-rss kB (3 %)", rk["anon-rss"], sk["anon-rss"], TOL["anon-rss"])
    r.near("hog pgtables kB (25 %)", rk["pgtables"], sk["pgtables"], TOL["pgtables"])
    rt, st = _tasks_row(real_report, "hog"), _tasks_row(sim_report, "hog")
    r.near("hog rss pages, task list (3 %)", int(rt[4]), int(st[4]), TOL["anon-rss"])
    r.near("hog pgtables_bytes, task list (25 %)", int(rt[5]), int(st[5]), TOL["pgtables"])

    # the counters the run moved
    rv, ev = vmstat(after), k.vm_events
    for name in ("pgscan_kswapd", "pgsteal_kswapd"):
        r.near(f"{name} (10 %)", rv[name], ev.get(name, 0), TOL["kswapd"])
    spread = boots()
    for name in ("pgscan_direct", "pgsteal_direct"):   # the real kernel's own spread is wider than 2x
        _ratio(r, f"{name} (2x)", rv[name], ev.get(name, 0), TOL["direct"], spread[name] + [rv[name]])
    for zone in ("dma", "dma32", "normal", "movable", "device"):
        name, real = f"allocstall_{zone}", rv[f"allocstall_{zone}"]
        sim = ev.get(name, 0)
        if real == 0:                    # a zone the real kernel's reclaim never stalled for
            r.exact(f"{name} (0 where real is 0)", real, sim)
        else:                            # issue 25: stalls where the real ones are; and how many
            r.rows.append(oc.Row(f"{name} (> 0 where real > 0)", real, sim, sim > 0))
            _ratio(r, f"{name} (2x)", real, sim, TOL["direct"])
    for name in ("pageoutrun", "kswapd_high_wmark_hit_quickly"):     # tests/test_pressure.py's 2x
        _ratio(r, f"{name} (2x)", rv[name], ev.get(name, 0), 2.0)
    _ratio(r, "slabs_scanned (20x)", rv["slabs_scanned"], ev.get("slabs_scanned", 0), TOL["slabs_scanned"])
    r.exact("oom_kill", rv["oom_kill"], ev.get("oom_kill", 0))
    r.rows.append(oc.Row("OOM header names GFP_HIGHUSER_MOVABLE", "yes" if "(GFP_HIGHUSER_MOVABLE" in real_report[0]
                         else "no", "yes" if "(GFP_HIGHUSER_MOVABLE" in sim_report[0] else "no",
                         "(GFP_HIGHUSER_MOVABLE" in sim_report[0], "use=anon without gfp="))
    r.rows.append(oc.Row("OOM header line exact", "", "", real_report[0] == sim_report[0],
                         "" if real_report[0] == sim_report[0] else f"real {real_report[0]!r} procsim {sim_report[0]!r}"))

    # the OOM report line by line: the same lines in the same order, each with the same
    # shape (text and field widths; numbers as #); numbers judged only in the rows above
    real_lines = [x for x in real_report if not _is_dump_stack(x)]
    for i in range(max(len(real_lines), len(sim_report))):
        a = real_lines[i] if i < len(real_lines) else None
        b = sim_report[i] if i < len(sim_report) else None
        label = f"OOM line {i + 1:2d} {(a or b)[:28].strip()!r}"
        if a is None or b is None:
            r.rows.append(oc.Row(label, "", "", False, f"only {'real' if b is None else 'procsim'}: {a or b!r}"))
            continue
        ok = _shape(a) == _shape(b)
        diff = [f"{x}->{y}" for x, y in zip(re.findall(r"\d+", a), re.findall(r"\d+", b), strict=False) if x != y]
        r.rows.append(oc.Row(label, "", "", ok, ("numbers " + " ".join(diff[:6]) + (" ..." if len(diff) > 6 else ""))
                             if ok and diff else ("" if ok else f"real {a!r} procsim {b!r}")))
    r.known_gaps(KNOWN_GAPS, strict=strict_gaps)
    return r
