"""Turn a real kernel's capture (tests/data/oracle/*.txt, made by oracle/init.sh in a qemu guest)
into the directory tree it was read from, for ``procsim clone`` to read like ``/``.

The capture keeps each file under its path (proc/zoneinfo, sys/devices/system/node/node0/...);
its ``slub`` section is one line per /sys/kernel/slab directory (init.sh prints the attributes)
and ``slub_aliases`` the symlinks, so both become /sys/kernel/slab/NAME/ATTR files again; dmesg
goes where a sosreport keeps it."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oracle import run  # noqa: E402

ORACLE = ROOT / "tests" / "data" / "oracle"
SLUB_ATTRS = ("object_size", "slab_size", "objs_per_slab", "order", "align", "reclaim_account",
              "hwcache_align", "destroy_by_rcu", "cache_dma", "ctor")


def capture(name: str) -> dict[str, str]:
    return run.parse_capture((ORACLE / f"{name}.txt").read_text())


def files_of(cap: dict[str, str], slub: bool = True) -> dict[str, str]:
    out = {}
    for k, v in cap.items():
        if k in ("slub", "slub_aliases", "oom"):
            continue
        out["sos_commands/kernel/dmesg" if k == "dmesg" else k] = v
    if slub:
        dirs = {}
        for line in cap.get("slub", "").splitlines():
            if line.startswith("#") or not line.strip():
                continue
            p = line.split()
            vals = dict(zip(SLUB_ATTRS, p[1:11], strict=False))
            vals["ctor"] = "" if vals["ctor"] == "-" else vals["ctor"] + "+0x0/0x10"
            dirs[p[0]] = vals
        for line in cap.get("slub_aliases", "").splitlines():
            p = line.split()
            if len(p) == 2 and p[1] in dirs:
                dirs[p[0]] = dirs[p[1]]
        for name, vals in dirs.items():
            for a, v in vals.items():
                out[f"sys/kernel/slab/{name}/{a}"] = v + "\n"
    return out


def write_tree(files: dict[str, str], out: Path) -> Path:
    for rel, text in files.items():
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return out


def oracle_tree(name: str, out: Path, slub: bool = True) -> Path:
    return write_tree(files_of(capture(name), slub), out)
