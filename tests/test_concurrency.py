"""Eight shell scripts write 1000 commands each into ``control`` at once while four readers
loop over every view in small reads.  Nothing is lost or doubled, no read is torn, and the
journal (written under the session lock) replays to a kernel whose invariants hold and whose
``allocations`` is the mount's, byte for byte.
"""
from __future__ import annotations

import os
import re
import subprocess
import threading

from procsim.testing import CONFIGS

SCRIPTS, BLOCKS = 8, 100          # 100 blocks of 10 commands = 1000 commands per script
READERS = 4
VIEWS = ["zoneinfo", "buddyinfo", "pagetypeinfo", "slabinfo", "meminfo", "vmstat",
         "sys/devices/system/node/node0/meminfo", "sys/devices/system/node/node0/numastat"]

SCRIPT = r"""
set -u
exec 3>"$1/control"
s=$2
for j in $(seq 1 {blocks}); do
  t="s$s-$j"
  for k in 1 2 3 4; do
    echo "kmalloc 64 tag=$t cpu=$((s % 2))" >&3 || echo "failed: kmalloc $t" >&2
    echo "alloc_pages $((k % 2)) tag=$t" >&3 || echo "failed: alloc_pages $t" >&2
  done
  if [ $((j % 2)) = 1 ]; then
    echo "kfree tag=$t" >&3 || echo "failed: kfree $t" >&2
    echo "free_pages tag=$t" >&3 || echo "failed: free_pages $t" >&2
  else
    echo "kmalloc 128 tag=$t" >&3 || echo "failed: kmalloc $t" >&2
    echo "alloc_pages 2 tag=$t" >&3 || echo "failed: alloc_pages $t" >&2
  fi
done
"""


def shape(text: str) -> list[str]:
    """A file's structure: lines with numbers and runs of blanks folded."""
    return [re.sub(r"\d+", "#", re.sub(r"\s+", " ", l)) for l in text.splitlines()]


def read_small(path) -> str:
    """Read through one handle in 1 KiB reads, as a tool refreshing with lseek(0) would."""
    fd = os.open(path, os.O_RDONLY)
    try:
        parts = []
        while True:
            b = os.read(fd, 1024)
            if not b:
                return b"".join(parts).decode()
            parts.append(b)
    finally:
        os.close(fd)


def well_formed(name: str, text: str) -> None:
    assert text.endswith("\n"), f"{name}: no final newline"
    lines = text.splitlines()
    if name == "slabinfo":
        assert lines[0] == "slabinfo - version: 2.1" and lines[1].startswith("# name")
        assert all(len(l.split()) == 16 for l in lines[2:]), name
    elif name == "buddyinfo":
        assert all(re.fullmatch(r"Node \d+, zone +\w+( +\d+){11} *", l) for l in lines), name
    elif name == "zoneinfo":
        heads = [i for i, l in enumerate(lines) if l.startswith("Node ")]
        assert heads[0] == 0
        for a, b in zip(heads, heads[1:] + [len(lines)], strict=False):
            section = lines[a:b]
            assert re.fullmatch(r"Node \d+, zone +\w+", section[0]), section[0]
            assert any(l.startswith("  pages free") for l in section), section[0]
            assert section[-1].split()[0] in ("start_pfn:", "protection:"), section[-1]   # empty zones stop early
    elif name.endswith("meminfo"):
        assert all(re.fullmatch(r"(Node \d+ )?[\w()]+: +\d+( kB)?", l) for l in lines), name
    elif name == "vmstat":
        assert all(re.fullmatch(r"\w+ \d+", l) for l in lines), name


def test_eight_writers_four_readers(mounted, tmp_path):
    from procsim import machine
    from procsim.mm.check import check
    from procsim.session import Session
    state = tmp_path / "journal"
    # the virtual clock: the live mount must not move on after the last write (the wall
    # clock's vmstat worker would), so the replay and the mount show the same state
    mp = mounted("tiny", "--state", state, "--clock=virtual")
    script = tmp_path / "writer.sh"
    script.write_text(SCRIPT.replace("{blocks}", str(BLOCKS)))
    shapes = {v: shape((mp / v).read_text()) for v in VIEWS}
    stop = threading.Event()
    problems: list[str] = []
    reads = [0] * READERS

    def reader(n):
        rounds = 0
        while not stop.wait(0.05):          # a pause per round, so the readers do not starve the writers
            rounds += 1                     # (allocations, thousands of lines, every 4th round)
            for v in VIEWS + ["log"] + ["allocations"] * (rounds % 4 == n % 4):
                text = read_small(mp / v)
                reads[n] += 1
                try:
                    if v == "allocations":
                        bad = [l for l in text.splitlines()[1:]            # "order N": 2 words
                               if len(l.split()) != 8 + (l.split()[3:4] == ["order"])]
                        assert not bad, f"{v}: {bad[:3]}"
                    elif v == "log":
                        bad = [l for l in text.splitlines() if not re.fullmatch(r"\d+ .+ -> (ok|error).*", l)]
                        assert not bad, f"{v}: {bad[:3]}"
                    else:
                        well_formed(v, text)
                        assert shape(text) == shapes[v], f"{v}: the layout changed under load"
                except AssertionError as e:
                    problems.append(f"reader {n}: {e}")
                    return

    readers = [threading.Thread(target=reader, args=(n,), daemon=True) for n in range(READERS)]
    for r in readers:
        r.start()
    writers = [subprocess.Popen(["bash", str(script), str(mp), str(s)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for s in range(SCRIPTS)]
    try:
        outs = [w.communicate(timeout=300) for w in writers]
    finally:
        stop.set()
        for w in writers:
            if w.poll() is None:
                w.kill()
        for r in readers:
            r.join(timeout=60)
    assert not problems, problems[:3]
    assert all(w.returncode == 0 and not err for w, (_, err) in zip(writers, outs, strict=False)), [o[1][:300] for o in outs]
    assert min(reads) > 0

    # what the scripts expect: even blocks keep 5 kmalloc + 5 page allocations, odd ones nothing
    rows = [l.split() for l in (mp / "allocations").read_text().splitlines()[1:]]
    ids = [int(r[0]) for r in rows]
    assert len(ids) == len(set(ids)) == SCRIPTS * (BLOCKS // 2) * 10
    by_tag: dict[str, list[str]] = {}
    for r in rows:
        by_tag.setdefault(r[1], []).append(r[2])
    expect = {f"s{s}-{j}": sorted(["kmalloc"] * 5 + ["pages"] * 5)
              for s in range(SCRIPTS) for j in range(2, BLOCKS + 1, 2)}
    assert {t: sorted(k) for t, k in by_tag.items()} == expect
    assert max(ids) == SCRIPTS * BLOCKS * 9          # every allocation took exactly one ID (8 or 10 a block)
    log = (mp / "log").read_text().splitlines()
    assert int(log[-1].split()[0]) == SCRIPTS * BLOCKS * 10 and all(" -> ok" in l for l in log)

    # the journal, applied in lock order, rebuilds the same kernel: invariants hold there
    # (a copy: the daemon still holds the journal's lock)
    copy = tmp_path / "journal-copy"
    copy.write_bytes(state.read_bytes())
    again = Session(machine.load(CONFIGS / "tiny.yaml"), state=copy)
    try:
        check(again.kernel)
        assert again.render("allocations") == (mp / "allocations").read_bytes()
        for v in ("buddyinfo", "zoneinfo", "slabinfo", "meminfo"):
            assert again.render(v) == (mp / v).read_bytes(), v
    finally:
        again.close()


# --- the tree changes under readers (issue 30 §2) ------------------------------------------------
RACE_SECONDS = 12.0


def test_a_cache_created_and_destroyed_under_three_readers_gives_only_enoent(mounted):
    """A writer creates and destroys sys/kernel/slab/racer for RACE_SECONDS while three readers
    stat it, list it and read its files: the only error any of them may see is ENOENT (the
    directory is gone; a listing of a directory gone after opendir is empty, as a removed
    directory reads on Linux), never EIO, ENOTDIR or EINVAL; what they read is the cache's,
    and the daemon logs nothing (no traceback)."""
    import errno
    import time
    mp = mounted("tiny")
    racer = mp / "sys/kernel/slab/racer"
    errors: dict[str, list] = {"stat": [], "list": [], "read": []}
    seen = {"stat": 0, "list": 0, "read": 0}
    stop = threading.Event()

    def stat_loop():
        while not stop.is_set():
            try:
                os.stat(racer)
                os.stat(racer / "object_size")
                seen["stat"] += 1
            except OSError as e:
                errors["stat"].append(e.errno)

    def list_loop():
        while not stop.is_set():
            try:
                names = os.listdir(racer)
            except OSError as e:
                errors["list"].append(e.errno)
                continue
            if names:
                assert "object_size" in names and "slabs" in names, names
                seen["list"] += 1
            else:                           # opened, then gone: empty, as a removed directory reads
                errors["list"].append(errno.ENOENT)

    def read_loop():
        while not stop.is_set():
            try:
                with open(racer / "object_size", "rb") as f:
                    assert f.read() == b"64\n"
                with open(racer / "slabs", "rb") as f:
                    assert re.fullmatch(rb"\d+( N\d+=\d+)*\n", f.read())
                seen["read"] += 1
            except OSError as e:
                errors["read"].append(e.errno)

    readers = [threading.Thread(target=f, daemon=True) for f in (stat_loop, list_loop, read_loop)]
    failed = []
    for t in readers:
        t.start()
    cycles = 0
    fd = os.open(mp / "control", os.O_WRONLY)
    try:
        deadline = time.monotonic() + RACE_SECONDS
        while time.monotonic() < deadline:
            os.write(fd, b"kmem_cache_create racer 64\n")
            time.sleep(0.002)
            os.write(fd, b"kmem_cache_destroy racer\n")
            cycles += 1
    finally:
        os.close(fd)
        stop.set()
        for t in readers:
            t.join(30)
            if t.is_alive():
                failed.append("a reader hung")
    assert not failed
    assert cycles > 50
    for what, codes in errors.items():
        others = sorted({errno.errorcode.get(c, c) for c in codes if c != errno.ENOENT})
        assert not others, f"{what}: {others} ({len(codes)} errors, {seen[what]} successes)"
    assert all(seen[w] > 0 for w in seen), seen            # each reader saw the cache at times
    assert sum(len(c) for c in errors.values()) > 0          # ... and saw it gone at others
    assert "Traceback" not in mounted.stderr(mp) and "Error" not in mounted.stderr(mp)


def test_several_handles_reading_trace_share_one_render():
    """Five handles read `trace` (a ring of 20000 events) in 4 KiB steps, interleaved: the ring
    is rendered once, not once per read (issue 30 3b: with 4 handles open every 128 KiB read
    rendered the whole ring again), each handle gets the whole file, and a new event makes
    the next read at offset 0 render again."""
    from procsim import machine
    from procsim.fs import ProcFS
    from procsim.session import Session

    class FI:
        flags, fh, direct_io = os.O_RDONLY, 0, 0

    s = Session(machine.load(CONFIGS / "tiny.yaml"))
    T = "sys/kernel/tracing"
    s.write_view(f"{T}/events/kmem/kmalloc/enable", b"1")
    assert s.execute(["kmalloc 32 count=20000 tag=many"])[-1].errno == 0
    view = s.views[f"{T}/trace"]
    renders = []
    real = view.render
    object.__setattr__(view, "render", lambda k: renders.append(1) or real(k))
    try:
        fs = ProcFS(s)
        fis = [FI() for _ in range(5)]
        for fi in fis:
            fs.open("/" + T + "/trace", fi)
        outs = [bytearray() for _ in fis]
        offset = 0
        while True:
            chunks = [fs.read("/" + T + "/trace", 4096, offset, fi) for fi in fis]
            for out, c in zip(outs, chunks, strict=False):
                out += c
            if not chunks[0]:
                break
            offset += 4096
        assert len(renders) == 1
        assert all(o == outs[0] for o in outs) and outs[0].count(b" kmalloc: ") == 20000
        s.execute(["kmalloc 32 tag=one"])
        assert fs.read("/" + T + "/trace", 4096, 0, fis[0]) and len(renders) == 2
        for fi in fis:
            fs.release("/" + T + "/trace", fi)
    finally:
        object.__setattr__(view, "render", real)
