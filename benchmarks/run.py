"""``make bench``: how fast procsim is, against its peers measured in the same run.

One table on stdout, also written to benchmarks/results.md with the machine it ran on.
Every figure is a median of repeated runs; where a figure has a peer (the host's own /proc
file, a minimal fusepy file, the host's slabtop) the ratio is to that peer, measured now.
Mounts live on temp directories and are always unmounted (try/finally); no daemon is
left behind.  Startup and RSS come from a fresh subprocess per machine (VmHWM).
In-process figures (engine, render, startup) are CPU time of that process
(time.process_time), so another job on a shared machine does not count as procsim's
cost; figures through the mount are wall time, since they span several processes.

The whole run is pinned to one CPU (children inherit it: daemons, readers, bash, slabtop,
peers alike).  On a small VM a FUSE round trip costs 10-15 µs when the reader and the
daemon share a CPU and 60-80 µs when the hypervisor has to wake the other vCPU, and the
scheduler picks one or the other at random; unpinned, every figure through a mount is a
coin toss about placement rather than a measure of the daemon.

    python benchmarks/run.py [--quick]
    python benchmarks/run.py --compare REV   # in-process figures of git REV and of this tree,
                                             # alternated in one run (before/after a change)
    python benchmarks/run.py --reads [--unpinned] [--before TREE]
                                             # only the reads through the mount, every way of
                                             # reading, against floor, LXCFS, host (and TREE's daemon)
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable
PROCSIM = [PY, "-m", "procsim.cli"]
QUICK = "--quick" in sys.argv
REPEAT = 3 if QUICK else 5

rows: list[tuple[str, str, str, str, str]] = []      # figure, value, peer/ratio, target, verdict
ENV = dict(os.environ)                                 # --compare points PYTHONPATH at another tree
TREE = ROOT                                            # ... and runs there: `python -c` puts the cwd first


def row(figure, value, peer="—", target="—", ok=None):
    verdict = "—" if ok is None else ("PASS" if ok else "MISS")
    rows.append((figure, value, peer, target, verdict))
    print(f"  {figure}: {value}  [{peer}]  target {target}  {verdict}", flush=True)


def median_of(fn, n=REPEAT):
    return statistics.median(fn() for _ in range(n))


def us(s): return f"{s * 1e6:.1f} µs"
def ms(s): return f"{s * 1e3:.2f} ms"


# --- reading files ------------------------------------------------------------------------------
def read_once(path: str) -> float:
    t = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        while os.read(fd, 1 << 17):
            pass
    finally:
        os.close(fd)
    return time.perf_counter() - t


def read_costs(paths: list[str], n: int = 300) -> list[float]:
    """Per path, the median over batches of the mean open+read+close time of n reads.
    Batches of the paths alternate, so a busy moment of the machine hits them alike."""
    for p in paths:
        read_once(p)                                  # warm: first render, dentry cache
    batches = [[] for _ in paths]
    for _ in range(REPEAT):
        for i, p in enumerate(paths):
            batches[i].append(sum(read_once(p) for _ in range(n)) / n)
    return [statistics.median(b) for b in batches]


def interleaved(fns: list, n: int = REPEAT) -> list[float]:
    """Medians of each fn's timings, runs alternating between the fns."""
    runs = [[] for _ in fns]
    for _ in range(n):
        for i, fn in enumerate(fns):
            runs[i].append(fn())
    return [statistics.median(r) for r in runs]


# --- mounts ---------------------------------------------------------------------------------------
@contextmanager
def _mount(argv_for_mp):
    """A foreground daemon on a temp mount point (procsim.harness: always unmounted, reaped)."""
    from procsim.harness import mounted
    with mounted(argv=argv_for_mp, cwd=ROOT, stderr=None) as m:
        yield str(m.path)


def procsim_mount():
    return _mount(lambda mp: [*PROCSIM, "mount", "--foreground", mp])


def floor_mount(src: str):
    return _mount(lambda mp: [PY, str(HERE / "fusepy_floor.py"), src, mp])


def control(mp: str, text: str) -> tuple[float, bytes]:
    """One write() of text to M/control; time of the write, and the replies."""
    fd = os.open(os.path.join(mp, "control"), os.O_RDWR)
    try:
        t = time.perf_counter()
        os.write(fd, text.encode())
        dt = time.perf_counter() - t
        return dt, os.read(fd, 1 << 16)
    finally:
        os.close(fd)


def bash_time(script: str, prefix: list[str] | None = None) -> float:
    """Seconds a bash script takes, timed inside bash (no process start in the figure)."""
    timed = f's=$(date +%s%N); {script}; e=$(date +%s%N); echo $((e - s))'
    out = subprocess.run([*(prefix or []), "bash", "-c", timed], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    return int(out.stdout.strip().splitlines()[-1]) / 1e9


# --- the sections -------------------------------------------------------------------------------
def bench_mount():
    print("mount: reads, control, slabtop", flush=True)
    with procsim_mount() as mp:
        zi = os.path.join(mp, "zoneinfo")
        with open(zi, "rb") as f:
            data = f.read()
        with tempfile.NamedTemporaryFile(prefix="procsim-zoneinfo-", delete=False) as tf:
            tf.write(data)
        try:
            with floor_mount(tf.name) as fmp:
                sim, floor, host = read_costs([zi, os.path.join(fmp, "zoneinfo"), "/proc/zoneinfo"])
        finally:
            os.unlink(tf.name)
        row("open+read+close M/zoneinfo (seed-server)", us(sim),
            f"fusepy floor {us(floor)} → {sim / floor:.2f}×; host /proc/zoneinfo {us(host)} → {sim / host:.1f}×",
            "≤ 1.3× floor", sim <= 1.3 * floor)

        ncaches = sum(1 for _ in open(os.path.join(mp, "slabinfo"))) - 2
        sim, host = read_costs([os.path.join(mp, "slabinfo"), "/proc/slabinfo"])
        row(f"open+read+close M/slabinfo ({ncaches} caches)", us(sim),
            f"host /proc/slabinfo {us(host)} → {sim / host:.2f}×", "≤ 1.5× host", sim <= 1.5 * host)

        n = 20
        loop = f"for i in $(seq {n}); do slabtop -o >/dev/null; done"
        ns = [*PROCSIM, "exec", mp, "--"]
        sim, host = (t / n for t in interleaved([lambda: bash_time(loop, ns), lambda: bash_time(loop)]))
        row("slabtop -o inside procsim exec", ms(sim), f"host slabtop -o {ms(host)} → {sim / host:.2f}×",
            "≤ 1.5×", sim <= 1.5 * host)
        whole = median_of(lambda: _wall([*ns, "slabtop", "-o"]))
        row("whole `procsim exec M -- slabtop -o` (python + unshare + binds + slabtop)", ms(whole),
            f"host slabtop -o {ms(host)}")

        def kmalloc_batch():
            dt, reply = control(mp, "kmalloc 64 count=100000 tag=bench\n")
            assert reply.startswith(b"ok "), reply
            control(mp, "kfree tag=bench\n")
            return dt
        dt = median_of(kmalloc_batch)
        row("control: kmalloc 64 count=100000", f"{100000 / dt / 1e3:.0f} k objects/s ({ms(dt)})", "—",
            "≥ 100 k/s", 100000 / dt >= 100e3)

        n = 2000
        ctl = os.path.join(mp, "control")
        dt = median_of(lambda: bash_time(f'for i in $(seq {n}); do echo "kmalloc 64 tag=loop" > {ctl}; done'), 3)
        control(mp, "kfree tag=loop\n")
        row(f"control: bash loop of {n} single echo > M/control", f"{n / dt / 1e3:.2f} k commands/s",
            "—", "≥ 2 k/s", n / dt >= 2e3)


def _py_read(path: str) -> float:
    """Python's buffered open(...).read(): open, a read that fills, a read at EOF, close."""
    t = time.perf_counter()
    with open(path, "rb") as f:
        f.read()
    return time.perf_counter() - t


def _one_read(path: str) -> float:
    """open, one os.read of 128 KiB (the whole file), close."""
    t = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.read(fd, 1 << 17)
    finally:
        os.close(fd)
    return time.perf_counter() - t


def _cat_loop(paths: list[str], n: int = 100) -> list[float]:
    """Per path, the time of one `cat PATH > /dev/null` inside a bash loop (fork+exec included:
    it is how shell scripts read /proc); batches alternate between the paths."""
    runs = [[] for _ in paths]
    for _ in range(REPEAT):
        for i, p in enumerate(paths):
            runs[i].append(bash_time(f"for i in $(seq {n}); do cat {p} > /dev/null; done") / n)
    return [statistics.median(r) for r in runs]


def _costs(fn, paths: list[str], n: int = 300) -> list[float]:
    for p in paths:
        fn(p)
    batches = [[] for _ in paths]
    for _ in range(REPEAT):
        for i, p in enumerate(paths):
            batches[i].append(sum(fn(p) for _ in range(n)) / n)
    return [statistics.median(b) for b in batches]


@contextmanager
def lxcfs_mount():
    """LXCFS (C, libfuse 3) on a temp dir, or None when it is not installed."""
    exe = shutil.which("lxcfs")
    if exe is None:
        yield None
        return
    with _mount(lambda mp: [exe, "-f", mp]) as mp:
        yield mp


def bench_reads(before: str | None = None):
    """Reads through the mount in every way of reading (issue 31), each beside its anchors
    measured in the same run: the fusepy floor (one thread, the same bytes), LXCFS's meminfo,
    the host kernel's own file; with --before TREE, the daemon of that source tree too."""
    where = "pinned to one CPU" if len(os.sched_getaffinity(0)) == 1 else "not pinned"
    print(f"reads ({where})", flush=True)
    from contextlib import ExitStack
    with ExitStack() as st:
        mp = st.enter_context(procsim_mount())
        old = None
        if before:
            env = dict(ENV, PYTHONPATH=before)
            from procsim.harness import mounted
            old = str(st.enter_context(mounted(argv=lambda m: [PY, "-m", "procsim.cli", "mount", "--foreground", m],
                                               cwd=before, env=env, stderr=None)).path)
        tmp = st.enter_context(tempfile.TemporaryDirectory(prefix="procsim-floor-src-"))
        for name in ("zoneinfo", "meminfo"):
            with open(os.path.join(mp, name), "rb") as f, open(os.path.join(tmp, name), "wb") as g:
                g.write(f.read())
        fmp = st.enter_context(floor_mount_files([os.path.join(tmp, "zoneinfo"), os.path.join(tmp, "meminfo")]))
        lx = st.enter_context(lxcfs_mount())
        for name in ("zoneinfo", "meminfo"):
            paths = [os.path.join(mp, name), os.path.join(fmp, name), f"/proc/{name}"]
            labels = ["M", "fusepy floor", "host"]
            if name == "meminfo" and lx is not None:
                paths.append(os.path.join(lx, "proc/meminfo"))
                labels.append("LXCFS")
            if old is not None:
                paths.append(os.path.join(old, name))
                labels.append("before")
            for how, fn in (("python open().read()", lambda ps: _costs(_py_read, ps)),
                            ("open+one os.read+close", lambda ps: _costs(_one_read, ps)),
                            ("cat in a bash loop", _cat_loop)):
                got = fn(paths)
                sim = got[0]
                peers = "; ".join(f"{lab} {us(v)} → {sim / v:.2f}×" for lab, v in zip(labels[1:], got[1:], strict=False))
                goal = "≤ 1.3× floor" + (", ≤ 1.0× LXCFS" if "LXCFS" in labels else "")
                ok = sim <= 1.3 * got[1] and ("LXCFS" not in labels or sim <= got[labels.index("LXCFS")])
                row(f"{how} M/{name} ({where})", us(sim), peers, goal, ok)


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads (those gone included)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_read_cpu(before: str | None = None, n: int = 4000):
    """The daemon's own CPU time per open + one read + close of M/zoneinfo and M/meminfo
    (utime + stime of its process over n reads, best of 3 alternating rounds), beside the
    fusepy floor's and, with --before, the daemon of that tree: a cost figure a loaded machine
    moves much less than wall time (the reader's waiting is not in it)."""
    from contextlib import ExitStack
    from procsim.harness import mounted
    with ExitStack() as st:
        tmp = st.enter_context(tempfile.TemporaryDirectory(prefix="procsim-floor-src-"))
        m = st.enter_context(mounted(argv=lambda mp: [*PROCSIM, "mount", "--foreground", mp], cwd=ROOT))
        daemons = [("M", m)]
        for name in ("zoneinfo", "meminfo"):
            with open(os.path.join(m.path, name), "rb") as f, open(os.path.join(tmp, name), "wb") as g:
                g.write(f.read())
        fl = st.enter_context(mounted(argv=lambda mp: [PY, str(HERE / "fusepy_floor.py"), os.path.join(tmp, "zoneinfo"),
                                                       os.path.join(tmp, "meminfo"), mp], cwd=ROOT))
        daemons.append(("fusepy floor", fl))
        if before:
            env = dict(ENV, PYTHONPATH=before)
            daemons.append(("before", st.enter_context(mounted(
                argv=lambda mp: [PY, "-m", "procsim.cli", "mount", "--foreground", mp], cwd=before, env=env))))
        for name in ("zoneinfo", "meminfo"):
            best = {lab: float("inf") for lab, _ in daemons}
            for _ in range(3):
                for lab, d in daemons:
                    p = os.path.join(d.path, name)
                    c0 = _cpu_seconds(d.pid)
                    for _ in range(n):
                        fd = os.open(p, os.O_RDONLY)
                        os.read(fd, 1 << 17)
                        os.close(fd)
                    best[lab] = min(best[lab], (_cpu_seconds(d.pid) - c0) / n)
            sim = best["M"]
            peers = "; ".join(f"{lab} {us(v)} → {sim / v:.2f}×" for lab, v in best.items() if lab != "M")
            row(f"daemon CPU per open+one read+close M/{name}", us(sim), peers, "≤ 1.3× floor",
                sim <= 1.3 * best["fusepy floor"])


def bench_idle_readers(before: str | None = None, n: int = 200, seconds: float = 5.0):
    """n readers blocked on trace_pipe with nothing to read: the daemon's CPU meanwhile
    (issue 30 3b: each reader polled /proc/self/mountinfo 4 times a second)."""
    import threading
    from procsim.harness import mounted
    trees = [("this tree", str(ROOT))] + ([("before", before)] if before else [])
    for label, tree in trees:
        env = dict(ENV, PYTHONPATH=tree)
        with mounted(argv=lambda m: [PY, "-m", "procsim.cli", "mount", "--foreground", "--config", "tiny", m],
                     cwd=tree, env=env) as m:
            pipe = os.path.join(m.path, "sys/kernel/tracing/trace_pipe")
            fds = [os.open(pipe, os.O_RDONLY) for _ in range(n)]
            readers = [threading.Thread(target=os.read, args=(fd, 4096), daemon=True) for fd in fds]
            try:
                for t in readers:
                    t.start()
                time.sleep(2.0)
                c0 = _cpu_seconds(m.pid)
                time.sleep(seconds)
                busy = (_cpu_seconds(m.pid) - c0) / seconds
            finally:
                pass
            ok = busy <= 0.05
            row(f"{n} idle readers blocked on trace_pipe: daemon CPU ({label})", f"{busy * 100:.1f} % of one CPU",
                "—", "≤ 5 %", ok)
        for t in readers:
            t.join(10)
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass


@contextmanager
def floor_mount_files(srcs: list[str]):
    with _mount(lambda mp: [PY, str(HERE / "fusepy_floor.py"), *srcs, mp]) as mp:
        yield mp


def control_lines(mp: str, lines: list[str]) -> float:
    """Write lines to M/control in writes of MAX_COMMANDS lines; wall time of the writes."""
    from procsim.control import MAX_COMMANDS
    t = 0.0
    for i in range(0, len(lines), MAX_COMMANDS):
        dt, reply = control(mp, "".join(l + "\n" for l in lines[i:i + MAX_COMMANDS]))
        assert reply.startswith(b"ok"), reply[:200]
        t += dt
    return t


def bench_frees(n: int = 100000):
    """Issue 14.5: a free costs O(what it touches), so freeing N allocations one by one costs
    about what freeing them in one tag command does (once per line of parsing more)."""
    print("frees: one by one vs by tag", flush=True)
    make = ["kmalloc 64 tag=each"] * n                   # n commands: n allocations, n batches
    with procsim_mount() as mp:
        def one_by_one():
            control_lines(mp, make)
            first = int(control(mp, "kmalloc 64 tag=probe\n")[1].split()[1]) - n
            control(mp, "kfree tag=probe\n")
            return control_lines(mp, [f"kfree {first + i}" for i in range(n)])

        def by_tag():
            control_lines(mp, make)
            return control_lines(mp, ["kfree tag=each"])
        each, tag = interleaved([one_by_one, by_tag], 3)
    row(f"free {n // 1000}k allocations one by one (kfree ID, through the mount)", f"{each:.2f} s",
        f"the same {n // 1000}k freed by `kfree tag=` {tag:.2f} s", "≤ 10 s", each <= 10)
    t = replay_time(n)
    row(f"replay a journal of {n // 1000}k kmalloc + {n // 2000}k kfree (mount --state, in process)", f"{t:.2f} s",
        "—", "≤ 10 s", t <= 10)


REPLAY = r"""
import sys, time, tempfile, os
from procsim import machine as M
from procsim.session import Session, journal_header
n = int(sys.argv[2])
m = M.load(sys.argv[1])
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "journal")
    with open(path, "w") as f:
        f.write(journal_header(m))
        f.writelines("kmalloc 64 tag=j\n" for _ in range(n))
        f.writelines(f"kfree {i}\n" for i in range(1, n + 1, 2))
    t = time.process_time()
    s = Session(m, views={}, state=path)
    dt = time.process_time() - t
    assert s.control.next_id == n + 1
    s.close()
print(dt)
"""


PRESSURE = r"""
import sys, time
from procsim import machine as M
from procsim.mm.kernel import Kernel
from procsim.mm import gfp as G
text = open(sys.argv[1]).read()
text = text.replace("size: 2GiB", "size: 4GiB").replace("{use: pagecache, size: 626MiB", "{use: pagecache, size: 1536MiB")
k = Kernel(M.loads(text))
cache = k.node_stat_total("nr_file_pages")
n = k.nr_free_pages + (1 << 18)                # past the free memory by 1 GiB
t = time.process_time()
k.tasks.alloc_pages("anon", 0, G.GFP_HIGHUSER_MOVABLE, n, use="anon")
reclaim = time.process_time() - t
stolen = cache - k.node_stat_total("nr_file_pages")
assert stolen >= 1 << 18, stolen
from procsim.mm import oom_kill
spent = []
def timed(*a, _run=oom_kill.out_of_memory, **kw):   # the OOM killer alone: report, choice, kill
    t = time.process_time()
    try:
        return _run(*a, **kw)
    finally:
        spent.append(time.process_time() - t)
oom_kill.out_of_memory = timed
try:                                          # it takes the 1 GiB-plus task
    k.tasks.alloc_pages("second", 0, G.GFP_HIGHUSER_MOVABLE, k.nr_free_pages + cache, use="anon")
except Exception:
    pass
assert k.vm_events["oom_kill"] >= 1
oom = spent[0]
print(reclaim, stolen, n, oom)
"""


def bench_pressure():
    """Issue 15: reclaim of 1 GiB of page cache under anon pressure; an OOM kill."""
    print("pressure: reclaim and the OOM killer", flush=True)
    out = subprocess.run([PY, "-c", PRESSURE, str(ROOT / "configs/seed-vm.yaml")], capture_output=True, text=True,
                         check=True, cwd=TREE, env=ENV).stdout.split()
    reclaim, stolen, n, oom = float(out[0]), int(out[1]), int(out[2]), float(out[3])
    row(f"allocate {n * 4 >> 10} MiB of anon past the free memory: kswapd/direct reclaim of "
        f"{stolen * 4 >> 10} MiB page cache (in process)", f"{reclaim:.2f} s", "—", "≤ 10 s", reclaim <= 10)
    row(f"the OOM killer: report, choice and the kill (freeing) of a {n * 4 >> 10} MiB task (in process)",
        f"{oom:.2f} s", "—", "≤ 3 s", oom <= 3)


def replay_time(n: int) -> float:
    out = subprocess.run([PY, "-c", REPLAY, str(ROOT / "configs/seed-server.yaml"), str(n)], capture_output=True,
                         text=True, check=True, cwd=TREE, env=ENV).stdout
    return float(out)


def _wall(argv) -> float:
    t = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True, cwd=ROOT)
    return time.perf_counter() - t


# A fixed pure-Python loop that has nothing to do with procsim: how fast this machine runs
# Python at the moment (ns per iteration), so a slow run can be told from a slow procsim.
PACE_SRC = "d = {'n': 0}\nfor i in range(1_000_000):\n    d['n'] += i & 7\n"
PACE = compile(PACE_SRC, "pace", "exec")

ENGINE = r"""
import sys, time, statistics
PACE = compile(sys.argv[4], "pace", "exec")
def pace():
    t = time.process_time()
    exec(PACE, {})
    return (time.process_time() - t) / 1e6
from procsim import machine as M
from procsim.mm import gfp as G
from procsim.mm.kernel import Kernel
k = Kernel(M.load(sys.argv[1]))
N, R = int(sys.argv[2]), int(sys.argv[3])
alloc, free, slab = k.alloc_pages, k.free_pages, k.slab
def pairs(order):
    t = time.process_time()
    for _ in range(N):
        free(alloc(order, G.GFP_KERNEL))
    return (time.process_time() - t) / N
def kpairs():
    kmalloc, kfree = slab.kmalloc, slab.kfree
    t = time.process_time()
    for _ in range(N):
        kfree(kmalloc(64, G.GFP_KERNEL))
    return (time.process_time() - t) / N
runs = [(pace(), pairs(0), pairs(3), kpairs()) for _ in range(R)]   # the pace interleaved with the pairs
print(*(statistics.median(r[i] for r in runs) for i in range(4)))
"""


def bench_engine():
    print("engine", flush=True)
    out = subprocess.run([PY, "-c", ENGINE, str(ROOT / "configs/seed-server.yaml"), "50000" if QUICK else "200000",
                          str(REPEAT), PACE_SRC], capture_output=True, text=True, check=True, cwd=TREE, env=ENV).stdout
    pace, o0, o3, km = map(float, out.split())
    for name, t, target in (("order-0 alloc+free pair", o0, 2e-6), ("order-3 alloc+free pair", o3, 4e-6),
                            ("kmalloc(64)+kfree pair", km, 2e-6)):
        row(f"engine: {name}", us(t), f"Python pace {pace * 1e9:.0f} ns → {t / pace:.1f} paces",
            f"≤ {target * 1e6:.0f} µs", t <= target)


STARTUP = r"""
import sys, time
t0 = time.process_time()
from procsim import machine as M
from procsim.mm.kernel import Kernel
t1 = time.process_time()
m = M.load(sys.argv[1])
k = Kernel(m)
t2 = time.process_time()
extra = 0
if len(sys.argv) > 2:                       # N live objects in one cache
    from array import array
    from procsim.mm import gfp as G
    c = k.slab.kmem_cache_create("bench_objects", 64)
    alloc = k.slab.kmem_cache_alloc
    t = time.process_time()
    objs = array("Q", (alloc(c, G.GFP_KERNEL) for _ in range(int(sys.argv[2]))))
    extra = time.process_time() - t
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(t2 - t1, hwm * 1024, extra)
"""


def startup(path: str, objects: int | None = None) -> tuple[float, int, float]:
    """(parse+layout+boot seconds, peak RSS bytes, extra seconds): medians over fresh processes."""
    runs = []
    for _ in range(3):
        argv = [PY, "-c", STARTUP, path] + ([str(objects)] if objects else [])
        out = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=TREE, env=ENV).stdout.split()
        runs.append((float(out[0]), int(out[1]), float(out[2])))
    return (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
            statistics.median(r[2] for r in runs))


def mb(b): return f"{b / 1e6:.0f} MB"


def bench_startup():
    print("startup", flush=True)
    for name in ("tiny", "seed-vm", "seed-server", "big-4s-1t"):
        t, rss, _ = startup(str(ROOT / "configs" / f"{name}.yaml"))
        if name == "big-4s-1t":
            row(f"startup {name}", f"{ms(t)}, RSS {mb(rss)}", "—", "≤ 1 s, ≤ 150 MB", t <= 1 and rss <= 150e6)
        elif name == "seed-server":
            row(f"startup {name}", f"{ms(t)}, RSS {mb(rss)}", "—", "≤ 1 s", t <= 1)
        else:
            row(f"startup {name}", f"{ms(t)}, RSS {mb(rss)}")


def scaling_yaml(total_gib: int) -> str:
    """Two sockets, 16 DIMMs each, the same CPUs and the same boot workload at every size:
    only the memory size changes, so the cost should not."""
    dimm = total_gib // 32
    lines = ["name: scale-%dg" % total_gib, "sockets:"]
    lines += ['  - {model: "bench CPU", cores: 16, threads: 32}'] * 2
    lines.append("dimms:")
    for s in range(2):
        for i in range(16):
            lines.append(f'  - {{socket: {s}, size: {dimm}GiB, locator: "CPU{s} DIMM {i}"}}')
    lines += ["numa_distances:", "  - [10, 21]", "  - [21, 10]"]
    lines += ["boot:", "  pages:", "    - {use: pagecache, size: 2GiB}", "    - {use: anon, size: 1GiB}",
              "    - {use: kernel_stack, size: 32MiB}", "    - {use: page_tables, size: 16MiB}"]
    return "\n".join(lines) + "\n"


def bench_scaling():
    print("scaling", flush=True)
    with tempfile.TemporaryDirectory(prefix="procsim-scale-") as d:
        for gib, label in ((64, "64 GiB"), (256, "256 GiB"), (1024, "1 TiB"), (4096, "4 TiB")):
            p = Path(d) / f"scale-{gib}.yaml"
            p.write_text(scaling_yaml(gib))
            t, rss, _ = startup(str(p))
            if gib == 4096:
                row(f"scaling: startup {label} (2 nodes, 64 CPUs, same boot pages)", f"{ms(t)}, RSS {mb(rss)}", "—",
                    "≤ 2 s, ≤ 300 MB", t <= 2 and rss <= 300e6)
            else:
                row(f"scaling: startup {label} (2 nodes, 64 CPUs, same boot pages)", f"{ms(t)}, RSS {mb(rss)}")


RENDER = r"""
import sys, time, statistics
from procsim import machine as M
from procsim.mm.kernel import Kernel
from procsim.views import zoneinfo, slabinfo
k = Kernel(M.load(sys.argv[1]))
n = 0
while len(k.slab.caches) < 150:
    k.slab.kmem_cache_create(f"bench_cache_{n}", 32 + 8 * n); n += 1
def t(f, n=50):
    s = time.process_time()
    for _ in range(n): f(k)
    return (time.process_time() - s) / n
print(statistics.median(t(zoneinfo.render) for _ in range(5)), statistics.median(t(slabinfo.render) for _ in range(5)),
      len(k.slab.caches))
"""


def bench_render():
    print("render", flush=True)
    out = subprocess.run([PY, "-c", RENDER, str(ROOT / "configs/seed-server.yaml")], capture_output=True,
                         text=True, check=True, cwd=TREE, env=ENV).stdout.split()
    zi, si, n = float(out[0]), float(out[1]), int(out[2])
    row("render seed-server zoneinfo (in process)", ms(zi), "—", "≤ 5 ms", zi <= 5e-3)
    row(f"render slabinfo, {n} caches (in process)", ms(si), "—", "≤ 5 ms", si <= 5e-3)


PICTURE = """
import sys, time, statistics
from procsim import machine as M
from procsim.mm.kernel import Kernel
from procsim.views.pictures import render_map
k = Kernel(M.load(sys.argv[1]))
pages = [k.alloc_pages(0) for _ in range(40000)]      # fragment: free every other page
for p in pages[::2]:
    k.free_pages(p)
def t(n=5):
    s = time.process_time()
    for _ in range(n): render_map(k, 0, 2)
    return (time.process_time() - s) / n
print(statistics.median(t() for _ in range(3)), len(k.nodes[0].zones[2].pageblock_mt))
"""


def bench_pictures():
    print("pictures", flush=True)
    out = subprocess.run([PY, "-c", PICTURE, str(ROOT / "configs/big-4s-1t.yaml")], capture_output=True,
                         text=True, check=True, cwd=TREE, env=ENV).stdout.split()
    dt, n = float(out[0]), int(out[1])
    row(f"render pictures/map-node0-Normal.svg, 1 TiB machine ({n} pageblocks, in process)", ms(dt), "—",
        "≤ 1 s", dt <= 1.0)


def bench_objects():
    print("1 M objects", flush=True)
    cfg = str(ROOT / "configs/seed-server.yaml")
    _, base, _ = startup(cfg)
    _, rss, dt = startup(cfg, 1_000_000)
    row("1 M live 64-byte objects in one cache (seed-server)", f"RSS {mb(rss)} (boot alone {mb(base)})",
        f"{1e6 / dt / 1e3:.0f} k kmem_cache_alloc/s", "< 100 MB", rss < 100e6)


SCALE = r"""
import json, sys, time
from procsim import machine as M
from procsim.mm.kernel import Kernel
from procsim.control import Control

def rss(field="VmRSS"):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(field)) * 1024

m = M.load(sys.argv[1])
ctl = Control(lambda: Kernel(m, page_runs=sys.argv[2] == "runs"))
ctl.run("drain_pages")                          # boots the machine
out = {"boot_rss": rss(), "steps": []}
for line in sys.argv[3:]:
    t = time.process_time()
    if line.startswith("fill "):                # fill LINE: repeat LINE until its first error
        n = 0
        while True:
            n += 1
            r = ctl.run(line[5:])
            if r.errno:
                break
    else:
        r = ctl.run(line)
    out["steps"].append([line, time.process_time() - t, r.text[:200], rss()])
out["hwm"] = rss("VmHWM")
print(json.dumps(out))
"""


def scale_run(config: str, runs: bool, lines: list[str]) -> dict:
    argv = [PY, "-c", SCALE, str(ROOT / "configs" / f"{config}.yaml"), "runs" if runs else "pages"] + lines
    return json.loads(subprocess.run(argv, capture_output=True, text=True, check=True, cwd=TREE, env=ENV).stdout)


def bench_scale():
    """Order-0 bulk work in runs, beside the per-page path (page_runs=False) measured in the
    same run on a smaller count and scaled to the same pages (it grows with pages)."""
    print("scale", flush=True)
    gfp = "gfp=GFP_HIGHUSER_MOVABLE use=anon"
    n, ref_n = 28_000_000, 200_000 if QUICK else 1_000_000
    big = scale_run("seed-server", True, [f"alloc_pages 0 {gfp} count={n} tag=big", "free_pages tag=big"])
    ref = scale_run("seed-server", False, [f"alloc_pages 0 {gfp} count={ref_n} tag=big", "free_pages tag=big"])
    (_, ta, _, rss_a), (_, tf, reply, _) = big["steps"]
    (_, ra, _, ref_rss), (_, rf, _, _) = ref["steps"]
    assert reply == f"ok freed {n}", reply
    per = (rss_a - big["boot_rss"]) / n
    ref_per = (ref_rss - ref["boot_rss"]) / ref_n
    row(f"scale: seed-server alloc_pages 0 count={n // 1_000_000} M (107 GiB anon)",
        f"{ta:.2f} s, RSS {mb(big['hwm'])} ({per:.2f} bytes per live page)",
        f"per page: {ra / ref_n * 1e6:.1f} µs, {ref_per:.0f} bytes a page ({ref_n // 1000} k pages) "
        f"→ {ra / ref_n * n:.0f} s, {mb(ref['boot_rss'] + ref_per * n)} at {n // 1_000_000} M",
        "≤ 5 s, ≤ 300 MB", ta <= 5 and big["hwm"] <= 300e6)
    row("scale: free that allocation by tag", f"{tf:.2f} s",
        f"per page: {rf / ref_n * 1e6:.1f} µs → {rf / ref_n * n:.0f} s at {n // 1_000_000} M", "≤ 2 s", tf <= 2)
    fill = f"fill alloc_pages 0 {gfp} count={1 << 22} tag=fill"        # 16 GiB a line
    # the fill is its task's only memory: -1000 keeps the OOM killer from taking it (exit_mmap
    # would free it) when the last line runs out, so the first ENOMEM is the allocator's
    big = scale_run("big-4s-1t", True, ["oom_score_adj -1000 tag=fill", fill, "free_pages tag=fill"])
    ref = scale_run("big-4s-1t", False, [f"alloc_pages 0 {gfp} count={ref_n} tag=fill", "free_pages tag=fill"])
    _, (_, tfill, err, _), (_, tfree, freed, _) = big["steps"]
    assert err.startswith("error ENOMEM"), err
    pages = int(freed.split()[-1])
    ref_t = sum(t for _, t, _, _ in ref["steps"]) / ref_n
    row(f"scale: big-4s-1t anon fill to the first ENOMEM ({pages / 2 ** 18:.0f} GiB), then free by tag",
        f"{tfill + tfree:.1f} s (fill {tfill:.1f} s, free {tfree:.1f} s), RSS {mb(big['hwm'])}",
        f"per page: {ref_t * 1e6:.1f} µs alloc+free → {ref_t * pages / 60:.0f} min",
        "≤ 30 s, ≤ 1 GB", tfill + tfree <= 30 and big["hwm"] <= 1e9)


KSWAPD_FILL = r"""
import json, sys, time
from procsim import machine as M
from procsim.control import Control
from procsim.mm.kernel import Kernel

# seed-server: anon to just above the zones' high marks in one command, then commands of
# STEP pages with a 100 ms sleep after each (kswapd, woken at the low mark, runs on the
# clock) until the anon is past the free memory by half the page cache
ctl = Control(lambda: Kernel(M.load(sys.argv[1])))
k = ctl.kernel
step, per_page = int(sys.argv[2]), sys.argv[3] == "pages"
cache = k.node_stat_total("nr_file_pages")
first = k.nr_free_pages - sum(z.wmark_high for z in k.zones)
total = k.nr_free_pages + cache // 2
gfp = "gfp=GFP_HIGHUSER_MOVABLE use=anon tag=fill"
t0 = time.process_time()
assert ctl.run(f"alloc_pages 0 {gfp} count={first}").errno == 0
t1 = time.process_time()
if per_page:                                  # the reference from here on (the same state either way)
    k.page_runs = False
lines, left = 0, total - first
while left > 0:
    r = ctl.run(f"alloc_pages 0 {gfp} count={min(step, left)}")
    assert r.errno == 0, r.text
    ctl.run("sleep 100ms")
    left -= step
    lines += 2
t2 = time.process_time()
ev = k.vm_events
print(json.dumps({"first": first, "first_s": t1 - t0, "rest": total - first, "rest_s": t2 - t1, "lines": lines,
                  "stolen": cache - k.node_stat_total("nr_file_pages"), "pageoutrun": ev.get("pageoutrun", 0),
                  "kswapd": ev.get("pgsteal_kswapd", 0), "direct": ev.get("pgsteal_direct", 0)}))
"""


def bench_kswapd_fill():
    """Issue 16 with issue 15: the default machine filled with anon past its page cache in
    steps, kswapd reclaiming between them; the per-page path measured on the same steps
    after the same first fill (made in runs: the state is the same either way)."""
    print("scale: fill past the page cache", flush=True)
    step = 8000

    def go(path):
        return json.loads(subprocess.run([PY, "-c", KSWAPD_FILL, str(ROOT / "configs/seed-server.yaml"), str(step),
                                          path], capture_output=True, text=True, check=True, cwd=TREE,
                                         env=ENV).stdout)
    a, ref = go("runs"), go("pages")
    assert (a["stolen"], a["kswapd"], a["direct"]) == (ref["stolen"], ref["kswapd"], ref["direct"]), (a, ref)
    took = a["first_s"] + a["rest_s"]
    row(f"scale: seed-server anon fill past the page cache, kswapd reclaims ({(a['first'] + a['rest']) / 2 ** 18:.0f}"
        f" GiB: one command to the high marks, then {a['lines'] // 2} of {step * 4 >> 10} MiB + sleep 100ms; "
        f"{a['stolen'] * 4 >> 10} MiB page cache reclaimed, {a['kswapd'] * 100 // max(1, a['stolen'])} % by kswapd"
        f" in {a['pageoutrun']} runs)",
        f"{took:.2f} s (first command {a['first_s']:.2f} s, the steps {a['rest_s']:.2f} s)",
        f"per page, the steps alone: {ref['rest_s']:.2f} s (same reclaim, same counters)", "≤ 10 s", took <= 10)


TRACED_FILL = r"""
import json, sys, time
from procsim import machine as M
from procsim.control import Control
from procsim.mm.kernel import Kernel
from procsim.mm.trace import EVENTS
from procsim.mm.check import state_digest
m = M.load(sys.argv[1])
line = "alloc_pages 0 count=200000 use=anon gfp=GFP_HIGHUSER_MOVABLE tag=a"
out = {"plain": [], "traced": []}
for traced in (False, True) * 5:        # alternating rounds: the medians are compared
    c = Control(lambda: Kernel(m))
    tr = c.kernel.trace
    chunks = []
    def drain():                       # a reader that keeps up: trace_pipe read at every new page
        while chunk := tr.read_pipe(1 << 17):
            chunks.append(chunk)       # looked at after the clock stops: the reader's own work
                                       # (two passes over 50 MB) is not procsim's
    if traced:
        c.run("tracefs events/enable 1")
        tr.on_page = drain
    t = time.process_time()
    r = c.run(line)
    if traced:
        drain()
    dt = time.process_time() - t
    got = [sum(x.count(b"\n") for x in chunks), sum(x.count(b"[LOST ") for x in chunks)]
    ev = c.kernel.vm_events
    out["traced" if traced else "plain"].append(dict(s=dt, ok=not r.errno, events=tr.written, lines=got[0],
        lost=got[1], kswapd=ev.get("pgsteal_kswapd", 0), direct=ev.get("pgsteal_direct", 0), digest=state_digest(c.kernel)))
print(json.dumps(out))
"""


def bench_traced_fill():
    """Issue 31 (tracing): every event enabled and a reader draining trace_pipe (in process: the
    core's Trace.read_pipe at every new ring page, what a reader keeping up sees), 200000 anon
    pages on seed-vm through its page cache (kswapd and direct reclaim), against the same
    command untraced, medians of five alternating rounds (the untraced command takes ~0.1 s:
    one round swings by a fifth); every round's state must be the same and its reader must
    get every event.  The clock counts procsim's work, recording and formatting: the reader
    keeps what it reads and counts the lines after (as the issue's reader, another process
    reading through the mount, was not in the daemon's time)."""
    print("tracing: a traced fill", flush=True)
    r = json.loads(subprocess.run([PY, "-c", TRACED_FILL, str(ROOT / "configs/seed-vm.yaml")], capture_output=True,
                                  text=True, check=True, cwd=TREE, env=ENV).stdout)
    for a, b in zip(r["plain"], r["traced"], strict=True):
        assert a["digest"] == b["digest"] and b["lines"] == b["events"] and not b["lost"], (a, b)
    a, b = (dict(x[0], s=statistics.median(y["s"] for y in x)) for x in (r["plain"], r["traced"]))
    ratio = b["s"] / a["s"]
    row(f"traced 200000 anon pages on seed-vm vs untraced (every event on, a reader draining trace_pipe: "
        f"{b['events'] / 1e6:.1f} M events, all received; reclaim {b['kswapd']} kswapd + {b['direct']} direct)",
        f"{b['s']:.2f} s", f"untraced {a['s']:.2f} s → {ratio:.1f}×", "≤ 3×", ratio <= 3)


COMPACTION = r"""
import sys, time
from procsim import machine as M
from procsim.mm import gfp as G
from procsim.mm.kernel import Kernel
from procsim.mm.compaction import CompactControl, MIGRATE_SYNC_LIGHT
from procsim.mm.page_types import PAGEBLOCK_NR_PAGES

def fragmented(cfg, zone_name, nid, pairs=None):
    # one batch of movable order-0 pages over the zone's free memory, every other one freed
    k = Kernel(M.load(cfg))
    k.sysctl_compaction_proactiveness = 0
    z = next(z for z in k.nodes[nid].zones if z.name == zone_name)
    n = pairs * 2 if pairs else z.nr_free - z.wmark_high - 2048
    ids = k.tasks.alloc_pages("frag", 0, G.GFP_HIGHUSER_MOVABLE, count=n, node=nid)
    for i in ids[1::2]:
        k.tasks.free(k.tasks.select_ids(i, i, "pages"))
    k.drain_all_pages()
    return k, z

def run(k, z):
    cc = CompactControl(z, -1, MIGRATE_SYNC_LIGHT, False, whole_zone=True)
    t = time.process_time()
    k.compact_zone(cc)
    dt = time.process_time() - t
    blocks = (cc.total_migrate_scanned + cc.total_free_scanned) / PAGEBLOCK_NR_PAGES
    moved = k.vm_events.get("pgmigrate_success", 0)
    # the peer: a migration is an allocation and a free, so as many order-0 alloc+free pairs
    t = time.process_time()
    for _ in range(moved):
        k.free_pages(k.alloc_pages(0, G.GFP_HIGHUSER_MOVABLE))
    return dt, blocks, time.process_time() - t, moved

for cfg, zone, nid, pairs in ((sys.argv[1], "DMA32", 0, None), (sys.argv[2], "Normal", 1, 3000)):
    print(*run(*fragmented(cfg, zone, nid, pairs)))
"""


def bench_compaction():
    """Issue 17: compaction costs O(pageblocks scanned): a whole-zone sync run of a
    fragmented seed-vm DMA32 (~500 k pages, half its free memory cut into single pages) and of
    seed-server node 1's Normal zone (16 M pages, mostly free), per pageblock the scanners
    covered, beside as many order-0 alloc+free pairs as pages migrated (what a migration
    does, without the scanning) in the same process."""
    print("compaction", flush=True)
    out = subprocess.run([PY, "-c", COMPACTION, str(ROOT / "configs/seed-vm.yaml"),
                          str(ROOT / "configs/seed-server.yaml")], capture_output=True, text=True, check=True,
                         cwd=TREE, env=ENV).stdout.split("\n")
    for line, what in zip(out, ("a fragmented seed-vm DMA32", "seed-server node 1 (Normal)"), strict=False):
        dt, blocks, pairs, moved = map(float, line.split())
        per = dt / max(blocks, 1)
        row(f"compact_zone of {what}: {blocks:.0f} pageblocks scanned, {moved:.0f} pages migrated",
            f"{dt:.2f} s = {per * 1e6:.0f} µs/pageblock",
            f"{moved:.0f} order-0 alloc+free pairs {pairs:.2f} s", "≤ 1 ms/pageblock, ≤ 2 s",
            per <= 1e-3 and dt <= 2)


COMPACT_BIG = """
import sys, time, procsim
sim = procsim.boot(sys.argv[1])
sim.run("alloc_pages 0 count=28000000")
t = time.process_time()
sim.run("compact_memory")
print(time.process_time() - t)
"""


def bench_compact_big():
    """Issue 30: compact_memory on 1 TiB after a 28 M-page (GFP_KERNEL) fill took 149 s under
    the lock (the migrate scanner made a Page for every run member and stepped the 4 M-page
    memmap pfn by pfn); a journal holding it could not be mounted in time."""
    print("compact_memory on big-4s-1t", flush=True)
    out = subprocess.run([PY, "-c", COMPACT_BIG, str(ROOT / "configs/big-4s-1t.yaml")], capture_output=True,
                         text=True, check=True, cwd=TREE, env=ENV).stdout.split()
    dt = float(out[-1])
    row("compact_memory on big-4s-1t after alloc_pages 0 count=28000000", f"{dt:.2f} s", "was 149 s",
        "≤ 10 s", dt <= 10)


# --- the machine and the report ---------------------------------------------------------------------
def machine_info() -> dict:
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        kb = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        pass
    return {"CPU": cpu, "cores": str(os.cpu_count()), "memory": mem, "kernel": platform.release(),
            "Python": platform.python_version(), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def python_pace() -> str:
    t = time.process_time()
    exec(PACE, {})
    return f"{(time.process_time() - t) * 1e3:.0f} ns"


def table() -> str:
    out = ["| figure | value | peer in the same run | target | |", "|---|---|---|---|---|"]
    out += [f"| {' | '.join(r)} |" for r in rows]
    return "\n".join(out)


def write_results(info: dict, tbl: str):
    """Replace the 'Latest run' section of results.md; keep the rest (before/after notes)."""
    path = HERE / "results.md"
    text = path.read_text() if path.exists() else "# procsim benchmarks\n"
    head = "## Latest run (`make bench`)"
    section = "\n".join([head, "", *(f"- {k}: {v}" for k, v in info.items()), "", tbl, ""])
    if head in text:
        before, rest = text.split(head, 1)
        nxt = rest.find("\n## ")
        text = before + section + (rest[nxt + 1:] if nxt >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def compare(rev: str) -> int:
    """Engine, render and startup figures of rev and of this tree, alternated, one table."""
    global ENV, TREE
    with tempfile.TemporaryDirectory(prefix="procsim-rev-") as d:
        archive = subprocess.run(["git", "archive", rev, "procsim"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", d], input=archive.stdout, check=True)
        for rnd in range(2):
            for label, path in ((rev, d), ("this tree", None)):
                ENV = dict(os.environ, PYTHONPATH=path) if path else dict(os.environ)
                TREE = Path(path) if path else ROOT
                where = subprocess.run([PY, "-c", "import procsim; print(procsim.__file__)"], cwd=TREE, env=ENV,
                                       capture_output=True, text=True, check=True).stdout.strip()
                print(f"{label}: {where}", flush=True)
                first = len(rows)
                bench_engine()
                bench_render()
                bench_startup()
                rows[first:] = [(f"[{label}, round {rnd + 1}] {r[0]}", *r[1:]) for r in rows[first:]]
    print()
    print(table())
    return 0


def pin_to_one_cpu() -> int:
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


TIME = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from procsim import machine as M
from procsim.control import Control
from procsim.mm.kernel import Kernel
what = sys.argv[2]
if what == "stream":            # issue 26: one command streaming more page cache than seed-vm has
    ctl = Control(lambda: Kernel(M.load(sys.argv[1] + "/configs/seed-vm.yaml")))
    t = time.process_time()
    assert ctl.run("alloc_pages 0 count=700000 use=pagecache").errno == 0
    t = time.process_time() - t
    k = ctl.kernel
else:                           # the real guest's pressure run (tests/test_pressure.py)
    sys.path.insert(0, sys.argv[1] + "/tests")
    import test_pressure
    t = time.process_time()
    k = test_pressure.guest_replay()
    t = time.process_time() - t
ev = k.vm_events
print(json.dumps({"t": t, "sim_s": k.now_ns / 1e9, **{n: ev.get(n, 0) for n in (
    "pgsteal_kswapd", "pgsteal_direct", "pgscan_kswapd", "pgscan_direct", "pageoutrun",
    "kswapd_high_wmark_hit_quickly", "compact_daemon_wake")}}))
"""


def bench_time():
    """Issue 26: kswapd beside the task on the simulated clock."""
    print("time", flush=True)

    def go(what):
        return json.loads(subprocess.run([PY, "-c", TIME, str(TREE), what], capture_output=True, text=True,
                                         check=True, cwd=TREE, env=ENV).stdout)
    a = go("stream")
    share = a["pgsteal_kswapd"] / max(1, a["pgsteal_kswapd"] + a["pgsteal_direct"])
    row("time: seed-vm alloc_pages 0 count=700000 use=pagecache (2.7 GiB through 2 GiB)",
        f"{a['t']:.2f} s; kswapd reclaimed {share:.0%} (pgsteal_kswapd {a['pgsteal_kswapd']}, "
        f"direct {a['pgsteal_direct']}, {a['pageoutrun']} runs, {a['sim_s'] - 60:.2f} s simulated)",
        "before issue 26: kswapd 2 % (11436 vs 611232 direct)", ">= 80 % kswapd", share >= 0.8)
    g = go("guest")
    ok = all(r / 2 <= g[n] <= r * 2 for n, r in (("pageoutrun", 225), ("kswapd_high_wmark_hit_quickly", 71)))
    row("time: the real guest's pressure run replayed (dd 800 MiB, anon to the OOM kill)",
        f"{g['t']:.2f} s; pgscan_kswapd {g['pgscan_kswapd']} / direct {g['pgscan_direct']}, pageoutrun "
        f"{g['pageoutrun']}, high_wmark_hit_quickly {g['kswapd_high_wmark_hit_quickly']}, "
        f"compact_daemon_wake {g['compact_daemon_wake']}",
        "real 6.1: 202397 / 2702, 225, 71, 29", "runs, hit_quickly within 2x", ok)


def bench_idle_mount(secs: float = 10.0):
    """Issue 26: a live mount's clock follows the wall; idle, it costs almost nothing."""
    print("idle mount", flush=True)
    from procsim.harness import mounted

    def cpu(pid):
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    with mounted(str(ROOT / "configs" / "seed-server.yaml")) as m:
        time.sleep(2)
        up0, c0, w0 = float((m.path / "uptime").read_text().split()[0]), cpu(m.proc.pid), time.monotonic()
        time.sleep(secs)
        up1, c1, w1 = float((m.path / "uptime").read_text().split()[0]), cpu(m.proc.pid), time.monotonic()
    share = (c1 - c0) / (w1 - w0)
    row(f"time: idle live mount (seed-server, --clock=wall), {secs:.0f} s", f"{share:.1%} of one CPU; uptime "
        f"moved {up1 - up0:.2f} s in {w1 - w0:.2f} s of wall time", "—", "≤ 5 % CPU, uptime within 10 %",
        share <= 0.05 and abs((up1 - up0) - (w1 - w0)) <= 0.1 * (w1 - w0))


def main() -> int:
    if "--reads" in sys.argv:        # only the reads section: --reads [--unpinned] [--before TREE]
        if "--unpinned" not in sys.argv:
            pin_to_one_cpu()
        before = sys.argv[sys.argv.index("--before") + 1] if "--before" in sys.argv else None
        bench_reads(before)
        bench_read_cpu(before)
        bench_idle_readers(before)
        print()
        print(table())
        return 0
    pinned = pin_to_one_cpu()
    if "--compare" in sys.argv:
        return compare(sys.argv[sys.argv.index("--compare") + 1])
    for tool in ("fusermount", "slabtop", "unshare"):
        if shutil.which(tool) is None:
            print(f"bench: {tool} is not installed (make setup)", file=sys.stderr)
            return 1
    info = machine_info()
    info["pinned to"] = f"CPU {pinned} (everything the run starts)"
    pace = python_pace()
    load = os.getloadavg()[0]                  # the machine is shared: its load beside every run
    print(" · ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    t = time.perf_counter()
    bench_engine()
    bench_render()
    bench_pictures()
    bench_startup()
    bench_scaling()
    bench_objects()
    bench_compaction()
    bench_compact_big()
    bench_mount()
    bench_reads()
    bench_read_cpu()
    bench_idle_readers()
    bench_frees()
    bench_pressure()
    bench_scale()
    bench_kswapd_fill()
    bench_traced_fill()
    bench_time()
    bench_idle_mount()
    pace = f"{pace} at the start, {python_pace()} at the end"
    info["Python pace (a fixed 1 M-iteration loop, per iteration)"] = pace
    info["load average (1 min, uptime)"] = f"{load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"
    tbl = table()
    print()
    print(tbl)
    print(f"\n({time.perf_counter() - t:.0f} s) Python pace: {pace}")
    write_results(info, tbl)
    return 0


if __name__ == "__main__":
    sys.exit(main())
