"""The pressure oracle: a real 6.1 guest with a disk writes a file, then runs out of memory.

``oracle/pressure/machine.yaml`` is booted under qemu/TCG like the other oracle machines
(oracle/run.py's qemu arguments, kernel and command line) plus

- a raw 1200 MiB disk made on the host (``mkfs.ext2``, e2fsprogs) on ``-drive if=virtio``;
- an initramfs with busybox, ``/bin/hog`` (``hog.c``, built here with ``gcc -static``) and the
  virtio and ext4 modules of the same kernel package (``MODULES``, insmod'ed in that order by
  ``init.sh``: the initramfs is ramfs, its page cache is never reclaimable, so the file that
  reclaim drops must live on a disk);
- ``transparent_hugepage=never`` on the command line when the YAML says THP is off.

``init.sh`` prints the memory files at three moments (after dd + sync, after the OOM kill,
after fragmenting the page cache) between ``@@@BEGIN <phase>/<file>`` markers; ``split``
turns them into three captures in the format of the other machines' (``@@@BEGIN <file>``),
saved as tests/data/oracle/{pressure-before-oom,pressure-after-oom,fragmented}.txt.
``oracle/pressure/replay.py`` replays the workload in procsim and compares.
"""
from __future__ import annotations

import gzip
import hashlib
import lzma
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from oracle import run
from procsim import machine as machine_mod

HERE = Path(__file__).resolve().parent
MACHINE = HERE / "machine.yaml"
DISK_MIB = 1200
# lib/modules/<version>/kernel/<path>.ko of KERNEL_PKG, in dependency order (modules.dep)
MODULES = ("drivers/virtio/virtio_ring", "drivers/virtio/virtio", "drivers/virtio/virtio_pci_legacy_dev",
           "drivers/virtio/virtio_pci_modern_dev", "drivers/virtio/virtio_pci", "drivers/block/virtio_blk",
           "lib/crc16", "fs/mbcache", "fs/jbd2/jbd2", "crypto/crc32c_generic", "fs/ext4/ext4")
# the capture each phase of init.sh is saved as (tests/data/oracle/<name>.txt)
SAVED = {"before-oom": "pressure-before-oom", "after-oom": "pressure-after-oom", "fragmented": "fragmented"}


def modules() -> list[Path]:
    """The .ko files of MODULES from KERNEL_PKG, kept (uncompressed) in the cache; the package
    is fetched and unpacked once more only when one is missing."""
    d = run.CACHE / "kernel" / run.KERNEL_PKG / "modules"
    want = [d / f"{Path(m).name}.ko" for m in MODULES]
    if all(p.exists() for p in want):
        return want
    d.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pkg = Path(tmp) / "pkg"
        run.unpack_kernel_package(pkg)
        boot = run.CACHE / "kernel" / run.KERNEL_PKG / "boot"    # kernel_image()'s, from the same .deb
        if not any(boot.glob("vmlinuz-*")):
            boot.mkdir(exist_ok=True)
            for v in (pkg / "boot").glob("vmlinuz-*"):
                shutil.copy(v, boot / v.name)
        base = next((pkg / "lib" / "modules").iterdir()) / "kernel"
        for m, dest in zip(MODULES, want, strict=True):
            src = base / f"{m}.ko"
            if src.exists():
                shutil.copy(src, dest)
            elif src.with_suffix(".ko.xz").exists():
                dest.write_bytes(lzma.decompress(src.with_suffix(".ko.xz").read_bytes()))
            else:
                raise SystemExit(f"oracle: {run.KERNEL_PKG} has no {m}.ko")
    return want


def hog() -> Path:
    """hog.c built static (the guest has no libc), once per source."""
    src = (HERE / "hog.c").read_bytes()
    out = run.CACHE / f"hog-{hashlib.sha256(src).hexdigest()[:12]}"
    if not out.exists():
        run.CACHE.mkdir(exist_ok=True)
        subprocess.run(["gcc", "-static", "-O2", "-Wall", "-o", str(out), str(HERE / "hog.c")], check=True)
    return out


def initramfs() -> Path:
    """gzip'ed newc cpio: /bin/busybox, /bin/hog, /lib/modules/*.ko and init.sh as /init."""
    parts = [(HERE / "init.sh").read_bytes(), (HERE / "hog.c").read_bytes(), "\n".join(MODULES).encode(),
             run.KERNEL_PKG.encode(), run.BUSYBOX.read_bytes()]
    out = run.CACHE / f"initramfs-pressure-{hashlib.sha256(b''.join(parts)).hexdigest()[:12]}.cpio.gz"
    if out.exists():
        return out
    kos, binary = modules(), hog()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for d in ("bin", "proc", "sys", "dev", "mnt", "lib/modules"):
            (root / d).mkdir(parents=True)
        shutil.copy(run.BUSYBOX, root / "bin" / "busybox")
        shutil.copy(binary, root / "bin" / "hog")
        for ko in kos:
            shutil.copy(ko, root / "lib" / "modules" / ko.name)
        (root / "init").write_bytes(parts[0])
        (root / "init").chmod(0o755)
        names = "\n".join(str(p.relative_to(root)) for p in sorted(root.rglob("*"))) + "\n"
        cpio = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=root, input=names.encode(),
                              capture_output=True, check=True).stdout
    out.write_bytes(gzip.compress(cpio, mtime=0))
    return out


def cmdline(m) -> str:
    return run.cmdline(m) + ("" if m.tunables.transparent_hugepage else " transparent_hugepage=never")


def capture_key(m) -> str:
    """Everything the guest sees: qemu's arguments, the disk, the command line, the kernel
    package, init.sh, hog.c and the modules loaded."""
    h = hashlib.sha256()
    for part in (" ".join(run.qemu_args(m)), f"disk={DISK_MIB}M", cmdline(m), run.KERNEL_PKG, " ".join(MODULES)):
        h.update(part.encode() + b"\0")
    h.update((HERE / "init.sh").read_bytes() + (HERE / "hog.c").read_bytes())
    return h.hexdigest()[:16]


def boot(force: bool = False) -> str:
    """The guest's console from the markers to @@@DONE: cached, or by booting it (~2.5 min)."""
    m = machine_mod.load(MACHINE)
    out = run.CACHE / "captures" / f"pressure-{run.KERNEL_PKG}-{capture_key(m)}.txt"
    if out.exists() and not force:
        return out.read_text()
    initrd = initramfs()                 # first: one download gives the modules and vmlinuz
    kernel = run.kernel_image()
    with tempfile.TemporaryDirectory() as tmp:
        disk = Path(tmp) / "disk.img"
        with open(disk, "wb") as f:
            f.truncate(DISK_MIB << 20)
        subprocess.run(["mkfs.ext2", "-q", "-F", str(disk)], check=True)
        cmd = ["qemu-system-x86_64", *run.qemu_args(m), "-kernel", str(kernel), "-initrd", str(initrd),
               "-append", cmdline(m), "-drive", f"file={disk},format=raw,if=virtio"]
        print(f"oracle: booting pressure: {' '.join(cmd)}", file=sys.stderr, flush=True)
        r = subprocess.run(cmd, capture_output=True, timeout=run.BOOT_TIMEOUT, stdin=subprocess.DEVNULL)
    console = r.stdout.decode(errors="replace").replace("\r\n", "\n").replace("\r", "")
    if "@@@DONE" not in console or "@@@FAIL" in console:
        sys.stderr.write(console[-4000:] + r.stderr.decode(errors="replace"))
        raise SystemExit(f"oracle: pressure: the guest did not finish (qemu exit {r.returncode})")
    console = console[console.index("@@@BEGIN"):console.index("@@@DONE") + 8] + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(console)
    return console


def split(console: str) -> dict[str, str]:
    """{phase: a capture with that phase's files under their plain names}, each ending @@@DONE."""
    phases: dict[str, list[str]] = {}
    cur = None
    for line in console.split("\n"):
        if line.startswith(("@@@BEGIN ", "@@@END ")):
            tag, name = line.split(" ", 1)
            cur, rest = name.split("/", 1)
            phases.setdefault(cur, []).append(f"{tag} {rest}")
        elif line == "@@@DONE" or cur is None:
            continue
        else:
            phases[cur].append(line)
    return {p: "\n".join(lines).rstrip("\n") + "\n@@@DONE\n" for p, lines in phases.items()}


def captures(from_dir: str | None = None, force: bool = False) -> dict[str, str]:
    """{saved name: capture text}: from DIR/<saved name>.txt, or from the (cached) boot."""
    if from_dir:
        return {name: (Path(from_dir) / f"{name}.txt").read_text() for name in SAVED.values()}
    return {SAVED[p]: text for p, text in split(boot(force)).items()}
