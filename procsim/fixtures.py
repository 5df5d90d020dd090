"""``procsim fixtures``: every file of one or more machines, as trees to keep in a repository.

    OUT/manifest.json                      how each tree was made (machine, commands, digests)
    OUT/<machine>/machine.yaml             the description it was booted from
                                           (with --kernel V: OUT/<machine>@<V>/..., one per profile)
    OUT/<machine>/commands                 the control commands applied after boot (if any)
    OUT/<machine>/proc/zoneinfo ...        laid out like / on the real system (procsim.tree_path):
    OUT/<machine>/proc/sys/vm/...          the vm sysctls
    OUT/<machine>/sys/devices/system/node/...
    OUT/<machine>/sys/kernel/debug/extfrag/...   debugfs
    OUT/<machine>/dev/kmsg                 the kernel log, one record per line
                                           (pictures/ are not part of the tree)

Same machines and commands give the same bytes (the tar too: sorted, mtime 0, owner 0), so a
project can regenerate its fixtures and see in ``git diff`` exactly what a new procsim changed.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Iterable

import procsim

MANIFEST = "manifest.json"


class FixturesError(Exception):
    """Bad output path or a duplicate machine; ``str(e)`` is the message for the user."""


def build(configs: Iterable[str], commands: list[str], source: str | None = None,
          kernels: Iterable[str] = ()) -> tuple[dict, dict[str, bytes]]:
    """Boot each machine (once per kernel profile in ``kernels``, else with the kernel its
    description names), apply ``commands``, render everything.  Returns the manifest and the
    files (relative path -> bytes).  Raises ConfigError, CommandError (with ``.index``, the
    1-based number of the failing command) or FixturesError."""
    from dataclasses import replace
    from procsim.mm.profile import PROFILES
    kernels = list(kernels)
    for v in kernels:
        if v not in PROFILES:
            raise FixturesError(f"--kernel {v}: not a profile (one of {', '.join(PROFILES)})")
    files: dict[str, bytes] = {}
    machines = {}
    for config in configs:
        base = procsim.load(config)
        for v in kernels or [None]:
            m = base if v is None else replace(base, kernel=v)
            _tree(m, config, commands, files, machines, name=base.name if v is None else f"{base.name}@{v}")
    manifest = {"generator": f"procsim {procsim.__version__}", "remake": _remake(machines, source, kernels),
                "machines": machines}
    files[MANIFEST] = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    return manifest, files


def _tree(m, config: str, commands: list[str], files: dict, machines: dict, name: str) -> None:
    """One machine's subtree (``name``: the machine, or machine@kernel) into files/machines."""
    if name in machines:
        raise FixturesError(f"machine {name!r} given twice")
    sim = procsim.Simulation(m)
    for n, line in enumerate(commands, 1):
        try:
            sim.run(line)
        except procsim.CommandError as e:
            e.index = n
            raise
    description = Path(m.source).read_bytes()
    tree = {procsim.tree_path(v): sim.render(v) for v in sim.views() if procsim.tree_path(v) is not None}
    files[f"{name}/machine.yaml"] = description
    if commands:
        files[f"{name}/commands"] = "".join(c + "\n" for c in commands).encode()
    files.update({f"{name}/{p}": data for p, data in tree.items()})
    machines[name] = {
        "machine": config,
        "kernel": m.kernel,
        "description_sha256": hashlib.sha256(description).hexdigest(),
        "commands": list(commands),
        "files": {p: hashlib.sha256(d).hexdigest() for p, d in sorted(tree.items())},
    }


def _remake(machines: dict, source: str | None, kernels: list[str]) -> str:
    configs = " ".join(dict.fromkeys(f"--config {v['machine']}" for v in machines.values()))
    return (f"procsim fixtures OUT {configs}" + "".join(f" --kernel {v}" for v in kernels)
            + (f" --commands {source}" if source else ""))


def write_dir(out: Path, files: dict[str, bytes]) -> None:
    """Replace the machines' subtrees and the manifest below ``out``; refuse to write into a
    non-empty directory that procsim did not make (no manifest.json there).  Everything is
    written aside first (``out/.procsim-new-*``) and renamed into place, so a failed write
    (ENOSPC) leaves the old trees as they were and no half tree; an entry already at
    ``out/<machine>`` (a symlink too) is renamed away and removed, never followed."""
    _check_paths(files)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())):
        raise FixturesError(f"{out}: exists and is not a procsim fixtures directory (no {MANIFEST})")
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".procsim-new-", dir=out))
    moved: list[tuple[Path, Path]] = []
    try:
        for rel, data in sorted(files.items()):
            dest = stage / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        old = stage / ".old"
        old.mkdir()
        for top in sorted({p.split("/", 1)[0] for p in files}):
            if os.path.lexists(out / top):
                os.rename(out / top, old / top)
                moved.append((old / top, out / top))
            os.rename(stage / top, out / top)
            moved.append((out / top, stage / top))
    except BaseException:
        for src, dst in reversed(moved):        # put every renamed entry back where it was
            os.rename(src, dst)
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _check_paths(files: dict[str, bytes]) -> None:
    """Every member stays below OUT: relative, no ``.``/``..``/empty part, no control character."""
    for rel in files:
        parts = rel.split("/")
        if rel.startswith("/") or any(p in ("", ".", "..") for p in parts) or \
                any(ord(c) < 0x20 or ord(c) == 0x7f for c in rel):
            raise FixturesError(f"{rel!r}: not a path below OUT (a machine or cache name names a path)")


def write_tar(out: Path, files: dict[str, bytes]) -> None:
    """A reproducible tar (gzip-compressed if ``out`` ends in .gz or .tgz).  An existing ``out``
    is replaced only when it is a procsim fixtures tar (holds manifest.json); the tar is written
    aside and renamed into place, so a failed write leaves the old file (or none), never half."""
    _check_paths(files)
    if os.path.lexists(out) and not _is_fixtures_tar(out):
        raise FixturesError(f"{out}: exists and is not a procsim fixtures tar (no {MANIFEST}); not overwritten")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = {d for p in files for d in _parents(str(Path(p).parent))}
        for rel in sorted(dirs, key=lambda d: d.split("/")):
            tar.addfile(_info(rel + "/", tarfile.DIRTYPE, 0o755))
        for rel, data in sorted(files.items()):
            tar.addfile(_info(rel, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
    data = buf.getvalue()
    if out.suffix in (".gz", ".tgz"):
        z = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=z, mtime=0) as g:
            g.write(data)
        data = z.getvalue()
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _is_fixtures_tar(out: Path) -> bool:
    if out.is_symlink() or not out.is_file():
        return False
    try:
        with tarfile.open(out) as tar:
            return MANIFEST in tar.getnames()
    except (tarfile.TarError, OSError, EOFError):
        return False


def _parents(d: str) -> list[str]:
    """``a/b/c`` -> ``a``, ``a/b``, ``a/b/c`` (nothing for ``.``)."""
    parts = [] if d == "." else d.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _info(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    t = tarfile.TarInfo(name.rstrip("/"))
    t.type, t.mode, t.size, t.mtime, t.uid, t.gid, t.uname, t.gname = kind, mode, size, 0, 0, 0, "", ""
    return t
