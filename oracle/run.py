#!/usr/bin/env python3
"""The oracle: boot a real Linux kernel on the same machine procsim simulates, compare the files.

For every machine description in ``oracle/machines/*.yaml`` (procsim's own YAML), this script

1. boots Debian's 6.1 kernel under qemu (TCG; see /work/shared/reference/oracle.md) with a
   busybox initramfs whose /init (``oracle/init.sh``) prints /proc and /sys memory files on
   the serial console between ``@@@BEGIN name`` / ``@@@END name`` markers and powers off;
2. caches that capture under ``.oracle-cache/`` (git-ignored), keyed by qemu's machine arguments,
   the kernel package and the init script, so a second run boots nothing;
3. renders the same files with procsim and prints a diff table (``oracle/compare.py``).

``--save DIR`` copies the captures (real kernel output, i.e. facts) to DIR; the project keeps
them in tests/data/oracle/ so unit tests compare against the real kernel without booting.

Needs qemu-system-x86, busybox-static and cpio (``make oracle-deps`` installs them) and the
kernel package, fetched by name with ``apt-get download`` and unpacked with ``dpkg-deb -x``.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from procsim import machine as machine_mod        # noqa: E402

# Debian 12's kernel.  Pinned, so captures stay comparable; the cache key names it.
KERNEL_PKG = os.environ.get("ORACLE_KERNEL_PKG", "linux-image-6.1.0-50-amd64")
CACHE = ROOT / ".oracle-cache"
BUSYBOX = Path("/bin/busybox")
APPEND = "console=ttyS0 loglevel=1 nokaslr"
BOOT_TIMEOUT = 900                               # seconds; a TCG boot takes 15-60 s


def kernel_image() -> Path:
    """The vmlinuz that KERNEL_PKG ships, downloaded and unpacked once into CACHE (in the repo)."""
    d = CACHE / "kernel" / KERNEL_PKG
    found = sorted(d.glob("boot/vmlinuz-*"))
    if found:
        return found[0]
    d.mkdir(parents=True, exist_ok=True)
    unpack_kernel_package(d / "pkg")
    (d / "boot").mkdir(exist_ok=True)
    for v in (d / "pkg" / "boot").glob("vmlinuz-*"):
        shutil.move(str(v), d / "boot" / v.name)
    shutil.rmtree(d / "pkg")
    return sorted(d.glob("boot/vmlinuz-*"))[0]


def unpack_kernel_package(dest: Path) -> None:
    """KERNEL_PKG fetched by name (``apt-get download``) and unpacked into dest (dpkg-deb -x)."""
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)                     # apt's _apt user writes the .deb here
        get = ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", KERNEL_PKG]
        if subprocess.run(get, cwd=tmp).returncode:         # stale package lists: refresh once
            subprocess.run(["apt-get", "update", "-qq"], check=True)
            subprocess.run(get, cwd=tmp, check=True)
        deb = next(Path(tmp).glob("*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)


def initramfs() -> Path:
    """gzip'ed newc cpio with /bin/busybox and /init; rebuilt when init.sh changes."""
    init = (HERE / "init.sh").read_bytes()
    out = CACHE / f"initramfs-{hashlib.sha256(init).hexdigest()[:12]}.cpio.gz"
    if out.exists():
        return out
    CACHE.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for d in ("bin", "proc", "sys", "dev"):
            (root / d).mkdir()
        shutil.copy(BUSYBOX, root / "bin" / "busybox")
        (root / "init").write_bytes(init)
        (root / "init").chmod(0o755)
        names = "\n".join(str(p.relative_to(root)) for p in sorted(root.rglob("*"))) + "\n"
        cpio = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=root, input=names.encode(),
                              capture_output=True, check=True).stdout
    out.write_bytes(gzip.compress(cpio, mtime=0))
    return out


def qemu_args(m) -> list[str]:
    """The qemu command line for a procsim machine: one NUMA node per socket, one RAM backend
    per node with memory (a socket without DIMMs is a memoryless node), qemu's topology
    numbering CPUs socket by socket."""
    s0 = m.sockets[0]
    if any((s.cores, s.threads) != (s0.cores, s0.threads) for s in m.sockets):
        raise SystemExit(f"{m.source}: qemu needs every socket alike (cores, threads)")
    mib = m.total_memory >> 20
    args = ["-M", "pc", "-accel", "tcg", "-cpu", "max,la57=off", "-nographic", "-no-reboot",
            "-nic", "none", "-m", f"{mib}M",
            "-smp", f"{m.nr_cpu_ids},sockets={len(m.sockets)},cores={s0.cores},"
                    f"threads={s0.threads_per_core}"]
    if len(m.sockets) > 1:
        per = s0.threads
        for s in m.sockets:
            size = m.node_memory(s.id) >> 20
            cpus = f"{s.id * per}-{s.id * per + per - 1}"
            node = f"node,nodeid={s.id},cpus={cpus}"
            if size:
                args += ["-object", f"memory-backend-ram,id=m{s.id},size={size}M"]
                node += f",memdev=m{s.id}"
            args += ["-numa", node]
        for i, row in enumerate(m.distances):
            for j, v in enumerate(row):
                if i < j:
                    args += ["-numa", f"dist,src={i},dst={j},val={v}"]
    return args


def cmdline(m) -> str:
    """The kernel command line: APPEND plus the boot parameters the YAML's tunables stand
    for (kernelcore=, movablecore=, parsed by memparse: a size with a K/M/G suffix)."""
    extra = []
    for key in ("kernelcore", "movablecore"):
        v = getattr(m.tunables, key)
        if v is not None:
            unit = next((u for u, sh in (("G", 30), ("M", 20), ("K", 10)) if v % (1 << sh) == 0), "")
            extra.append(f"{key}={v >> {'G': 30, 'M': 20, 'K': 10}.get(unit, 0)}{unit}")
    return " ".join([APPEND, *extra])


def capture_key(m) -> str:
    """What the guest sees: qemu's machine arguments, the kernel package, the init script and
    any boot parameter beyond APPEND (procsim-only keys of the YAML do not force a new boot)."""
    extra = cmdline(m)[len(APPEND):].encode()
    h = hashlib.sha256(" ".join(qemu_args(m)).encode() + KERNEL_PKG.encode() + (HERE / "init.sh").read_bytes()
                       + extra)
    return h.hexdigest()[:16]


def parse_capture(text: str) -> dict[str, str]:
    """Split console output at the markers: {name: file text}."""
    out, cur, buf = {}, None, []
    for line in text.replace("\r\n", "\n").replace("\r", "").split("\n"):
        if line.startswith("@@@BEGIN "):
            cur, buf = line[9:], []
        elif line.startswith("@@@END ") and cur == line[7:]:
            out[cur] = "\n".join(buf) + "\n" if buf else ""
            cur = None
        elif cur is not None:
            buf.append(line)
    return out


def boot(path: Path, force: bool = False) -> str:
    """The capture of one machine: from the cache, or by booting it."""
    m = machine_mod.load(path)
    out = CACHE / "captures" / f"{path.stem}-{KERNEL_PKG}-{capture_key(m)}.txt"
    if out.exists() and not force:
        return out.read_text()
    cmd = ["qemu-system-x86_64", *qemu_args(m), "-kernel", str(kernel_image()),
           "-initrd", str(initramfs()), "-append", cmdline(m)]
    print(f"oracle: booting {path.stem}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    r = subprocess.run(cmd, capture_output=True, timeout=BOOT_TIMEOUT, stdin=subprocess.DEVNULL)
    console = r.stdout.decode(errors="replace").replace("\r\n", "\n").replace("\r", "")
    if "@@@DONE" not in console:
        sys.stderr.write(console[-4000:] + r.stderr.decode(errors="replace"))
        raise SystemExit(f"oracle: {path.stem}: the guest did not finish (qemu exit {r.returncode})")
    console = console[console.index("@@@BEGIN"):console.index("@@@DONE") + 8] + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(console)
    return console


def machines(names: list[str]) -> list[Path]:
    all_ = sorted((HERE / "machines").glob("*.yaml"))
    if not names:
        return all_
    picked = [p for p in all_ if p.stem in names]
    if len(picked) != len(names):
        raise SystemExit(f"unknown machine(s); have: {', '.join(p.stem for p in all_)}")
    return picked


def pressure_scenario(a) -> int:
    """The pressure guest (oracle/pressure): booted (or its saved captures), replayed in
    procsim, its table printed; returns the rows outside tolerance."""
    from oracle import pressure
    from oracle.pressure import replay
    caps = pressure.captures(a.captures, a.boot)
    if a.save:
        for name, text in caps.items():
            Path(a.save).mkdir(parents=True, exist_ok=True)
            (Path(a.save) / f"{name}.txt").write_text(text)
    report = replay.compare(machine_mod.load(pressure.MACHINE), parse_capture(caps["pressure-before-oom"]),
                            parse_capture(caps["pressure-after-oom"]), strict_gaps=bool(a.captures))
    print(report.table("pressure (oracle/pressure: dd 800 MiB, then anon until the OOM kill)", verbose=a.verbose))
    return report.failures


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("machines", nargs="*",
                    help="machine names, or 'pressure' (default: all in oracle/machines, then pressure)")
    ap.add_argument("--boot", action="store_true", help="boot again even when a capture is cached")
    ap.add_argument("--save", metavar="DIR", help="copy the captures to DIR/<machine>.txt (pressure: "
                    "DIR/{pressure-before-oom,pressure-after-oom,fragmented}.txt)")
    ap.add_argument("--captures", metavar="DIR",
                    help="compare against DIR/<machine>.txt instead of booting (e.g. tests/data/oracle)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every compared value")
    a = ap.parse_args(argv)
    from oracle import compare
    failed = 0
    names = [n for n in a.machines if n != "pressure"]
    for path in machines(names) if names or not a.machines else []:
        if a.captures:
            cap = (Path(a.captures) / f"{path.stem}.txt").read_text()
        else:
            cap = boot(path, a.boot)
        if a.save:
            Path(a.save).mkdir(parents=True, exist_ok=True)
            (Path(a.save) / f"{path.stem}.txt").write_text(cap)
        report = compare.compare(machine_mod.load(path), parse_capture(cap))
        print(report.table(path.stem, verbose=a.verbose))
        failed += report.failures
    if not a.machines or "pressure" in a.machines:
        failed += pressure_scenario(a)
    print(f"oracle: {failed} value(s) outside tolerance" if failed else "oracle: all within tolerance")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
