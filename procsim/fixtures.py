"""``procsim fixtures``: every file of one or more machines, as trees to keep in a repository.

    OUT/manifest.json                      how each tree was made (machine, commands, digests)
    OUT/<machine>/machine.yaml             the description it was booted from
    OUT/<machine>/commands                 the control commands applied after boot (if any)
    OUT/<machine>/proc/zoneinfo ...        laid out like the real system (procsim.tree_path)
    OUT/<machine>/sys/devices/system/node/...

Same machines and commands give the same bytes (the tar too: sorted, mtime 0, owner 0), so a
project can regenerate its fixtures and see in ``git diff`` exactly what a new procsim changed.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path
from typing import Iterable

import procsim

MANIFEST = "manifest.json"


class FixturesError(Exception):
    """Bad output path or a duplicate machine; ``str(e)`` is the message for the user."""


def build(configs: Iterable[str], commands: list[str], source: str | None = None) -> tuple[dict, dict[str, bytes]]:
    """Boot each machine, apply ``commands``, render everything.  Returns the manifest and
    the files (relative path -> bytes).  Raises ConfigError, CommandError (with ``.index``,
    the 1-based number of the failing command) or FixturesError."""
    files: dict[str, bytes] = {}
    machines = {}
    for config in configs:
        m = procsim.load(config)
        if m.name in machines:
            raise FixturesError(f"machine {m.name!r} given twice")
        sim = procsim.Simulation(m)
        for n, line in enumerate(commands, 1):
            try:
                sim.run(line)
            except procsim.CommandError as e:
                e.index = n
                raise
        description = Path(m.source).read_bytes()
        tree = {procsim.tree_path(v): sim.render(v) for v in sim.views()}
        files[f"{m.name}/machine.yaml"] = description
        if commands:
            files[f"{m.name}/commands"] = "".join(c + "\n" for c in commands).encode()
        files.update({f"{m.name}/{p}": data for p, data in tree.items()})
        machines[m.name] = {
            "machine": config,
            "description_sha256": hashlib.sha256(description).hexdigest(),
            "commands": list(commands),
            "files": {p: hashlib.sha256(d).hexdigest() for p, d in sorted(tree.items())},
        }
    manifest = {"generator": f"procsim {procsim.__version__}", "kernel": procsim.KERNEL,
                "remake": _remake(machines, source), "machines": machines}
    files[MANIFEST] = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    return manifest, files


def _remake(machines: dict, source: str | None) -> str:
    configs = " ".join(f"--config {v['machine']}" for v in machines.values())
    return f"procsim fixtures OUT {configs}" + (f" --commands {source}" if source else "")


def write_dir(out: Path, files: dict[str, bytes]) -> None:
    """Replace the machines' subtrees and the manifest below ``out``; refuse to write into a
    non-empty directory that procsim did not make (no manifest.json there)."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())):
        raise FixturesError(f"{out}: exists and is not a procsim fixtures directory (no {MANIFEST})")
    for top in {p.split("/", 1)[0] for p in files if "/" in p}:
        shutil.rmtree(out / top, ignore_errors=True)
    for rel, data in sorted(files.items()):
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)


def write_tar(out: Path, files: dict[str, bytes]) -> None:
    """A reproducible tar (gzip-compressed if ``out`` ends in .gz or .tgz)."""
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
    out.write_bytes(data)


def _parents(d: str) -> list[str]:
    """``a/b/c`` -> ``a``, ``a/b``, ``a/b/c`` (nothing for ``.``)."""
    parts = [] if d == "." else d.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _info(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    t = tarfile.TarInfo(name.rstrip("/"))
    t.type, t.mode, t.size, t.mtime, t.uid, t.gid, t.uname, t.gname = kind, mode, size, 0, 0, 0, "", ""
    return t
