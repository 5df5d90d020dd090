"""sys/devices/system/memory/: the memory blocks (drivers/base/memory.c), as lsmem and chmem
read and write them.

* ``block_size_bytes``: memory_block_size_bytes() in hex, no 0x (``%lx``);
* ``auto_online_blocks``: ``offline`` (Debian's CONFIG_MEMORY_HOTPLUG_DEFAULT_ONLINE=n; 4.7+);
  procsim hot-adds no memory, so the policy is shown, not writable;
* ``memoryN/state`` (online / offline), ``online`` (1 / 0), ``phys_index`` (``%08lx``, the
  first section), ``phys_device`` (0 on x86), ``removable`` (1 since 5.9; before, whether
  the block holds no unmovable page), ``valid_zones`` (4.8+), and ``nodeM``: the kernel's
  symlink to ../../node/nodeM, here an empty file with that name (lsmem takes the node from
  the entry's name; the mount has no symlinks).

Writing ``offline``, ``online``, ``online_kernel`` or ``online_movable`` to ``state`` (or 0/1 to
``online``) runs the control line ``memory_block N STATE`` (procsim.mm.memory_hotplug), journaled
like every command.
"""
from __future__ import annotations

import errno
from functools import lru_cache

from ..mm import memory_hotplug as mh
from ..mm.errors import MMError
from ..mm.layout import build
from . import View

DIR = "sys/devices/system/memory"


@lru_cache(maxsize=8)
def _blocks(machine):
    return mh.boot_blocks(build(machine), machine.kernel)


def _block(k, nr):
    return mh.memory_blocks(k)[nr]


def _state_write(nr):
    def write(k, data: bytes) -> str:
        """state_store(): sysfs_streq() of the word (a trailing newline is fine)."""
        word = data.decode("ascii", errors="replace").strip("\n")
        if word not in mh.ONLINE_TYPES:
            raise MMError(errno.EINVAL, f"memory{nr}/state takes one of {', '.join(mh.ONLINE_TYPES)}")
        return f"memory_block {nr} {word}"
    return write


def _online_write(nr):
    def write(k, data: bytes):
        """online_store() (drivers/base/core.c): kstrtobool(), then device_online/offline;
        a block already in that state is left alone and the write succeeds."""
        text = data.decode("ascii", errors="replace")
        want = _kstrtobool(text)
        if want is None:
            raise MMError(errno.EINVAL, f"memory{nr}/online takes 0 or 1")
        if _block(k, nr).online == want:
            return None
        return f"memory_block {nr} {'online' if want else 'offline'}"
    return write


def _kstrtobool(s: str):
    """kstrtobool(): y/Y/1/t/T true, n/N/0/f/F false, on/off; None otherwise."""
    if not s:
        return None
    c = s[0]
    if c in "yY1tT":
        return True
    if c in "nN0fF":
        return False
    if c in "oO" and len(s) > 1:
        return {"n": True, "N": True, "f": False, "F": False}.get(s[1])
    return None


def _files_of(nr: int, nodes, version_has_zones: bool = True) -> dict[str, View]:
    d = f"{DIR}/memory{nr}"
    out = {
        f"{d}/phys_index": View(0o444, lambda k: f"{_block(k, nr).phys_index:08x}\n".encode()),
        f"{d}/state": View(0o644, lambda k: ("online\n" if _block(k, nr).online else "offline\n").encode(),
                           write=_state_write(nr)),
        f"{d}/online": View(0o644, lambda k: f"{int(_block(k, nr).online)}\n".encode(), write=_online_write(nr)),
        f"{d}/phys_device": View(0o444, lambda k: b"0\n"),
        f"{d}/removable": View(0o444, lambda k: f"{mh.removable(k, _block(k, nr))}\n".encode()),
        f"{d}/valid_zones": View(0o444, lambda k: f"{mh.valid_zones(k, _block(k, nr))}\n".encode()),
    }
    for nid in nodes:
        out[f"{d}/node{nid}"] = View(0o444, lambda k: b"")
    return out


FILES: dict[str, View] = {}


def files_for(machine) -> dict[str, View]:
    """block_size_bytes, auto_online_blocks and every boot block's directory (3.10 has
    neither auto_online_blocks nor valid_zones)."""
    old = machine.kernel == "3.10"
    out = {f"{DIR}/block_size_bytes": View(0o444, lambda k: f"{mh.memory_block_size_bytes(k):x}\n".encode())}
    if not old:
        out[f"{DIR}/auto_online_blocks"] = View(0o644, lambda k: b"offline\n")
    for nr, _, _, nodes in _blocks(machine):
        files = _files_of(nr, nodes)
        if old:
            files.pop(f"{DIR}/memory{nr}/valid_zones")
        out.update(files)
    return out
