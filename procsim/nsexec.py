"""``procsim exec M -- CMD``: run an unmodified tool with M's files bound over /proc and /sys.

The binds live in a private mount namespace (``unshare -m``; ``unshare -rm`` for a
non-root user), so they vanish with the command and nothing leaks to the host.  The
namespace runs ``sh -e``: if any bind fails the command never starts, because a tool that
silently reads the real /proc is worse than no answer (clients.md §0.3).
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess

from procsim.session import ALLOCATIONS, CONTROL, LOG

SHELL_FILES = {CONTROL, LOG, ALLOCATIONS}
SYS_DIRS = ("sys/devices/system/node", "sys/devices/system/cpu")
DMI_TABLES = "sys/firmware/dmi/tables"
# debugfs directories M has, and where the kernel's debugfs puts them below /sys/kernel/debug
DEBUG_DIRS = ("debug/extfrag",)


class NsExecError(Exception):
    pass


def bind_script(mp: str, proc: str = "/proc", sys_root: str = "/sys") -> list[str]:
    """The shell lines that put M's files in place of the host's (run inside the namespace)."""
    q = shlex.quote
    lines = []
    for name in sorted(os.listdir(mp)):
        src = os.path.join(mp, name)
        if name in SHELL_FILES or not os.path.isfile(src):
            continue
        dst = os.path.join(proc, name)
        if os.path.lexists(dst):                     # only files the real /proc has
            lines.append(f"mount --bind {q(src)} {q(dst)}")
    for rel in SYS_DIRS:
        src = os.path.join(mp, rel)
        dst = os.path.join(sys_root, rel.split("/", 1)[1])
        if os.path.isdir(src):
            lines.append(f"mount --bind {q(src)} {q(dst)}")
    src = os.path.join(mp, DMI_TABLES)
    if os.path.isdir(src):
        dst = os.path.join(sys_root, DMI_TABLES.split("/", 1)[1])
        if not os.path.isdir(dst):                   # VMs often have no DMI: make a place for it
            fw = os.path.join(sys_root, "firmware")
            lines.append(f"mount -t tmpfs procsim-firmware {q(fw)}")
            lines.append(f"mkdir -p {q(dst)}")
        lines.append(f"mount --bind {q(src)} {q(dst)}")
    debugfs = os.path.join(sys_root, "kernel/debug")
    made = False
    for rel in DEBUG_DIRS:
        src = os.path.join(mp, rel)
        if not os.path.isdir(src):
            continue
        dst = os.path.join(debugfs, rel.split("/", 1)[1])
        if not os.path.isdir(dst) and not made:      # debugfs not mounted (or no such dir):
            lines.append(f"mount -t tmpfs procsim-debugfs {q(debugfs)}")   # a place for ours
            made = True
        if made:
            lines.append(f"mkdir -p {q(dst)}")
        lines.append(f"mount --bind {q(src)} {q(dst)}")
    return lines


def command(mp: str, cmd: list[str]) -> list[str]:
    """The full argv: unshare + sh -e script + the user's command as "$@"."""
    mp = os.path.abspath(mp)
    lines = bind_script(mp)
    if not lines:
        raise NsExecError(f"{mp} has no files to bind over /proc or /sys (is procsim mounted there?)")
    if shutil.which("unshare") is None:
        raise NsExecError("unshare (util-linux) is not installed")
    script = "\n".join(["set -e", *lines, 'exec "$@"'])
    ns = ["unshare", "-m", "--propagation", "private"] if os.geteuid() == 0 else \
         ["unshare", "-r", "-m", "--propagation", "private"]
    return [*ns, "sh", "-ec", script, "procsim-exec", *cmd]


def run(mountpoint: str, cmd: list[str]) -> int:
    """Run cmd; its exit status is ours.  NsExecError if M is no live procsim mount."""
    from procsim.fs import is_alive, mount_entry
    mp = os.path.abspath(mountpoint)
    if mount_entry(mp) is None:
        raise NsExecError(f"{mp} is not mounted (procsim mount {mountpoint} first)")
    if not is_alive(mp):
        raise NsExecError(f"{mp}: the procsim daemon is gone (Transport endpoint is not connected); "
                          f"mount it again")
    if not os.path.isfile(os.path.join(mp, CONTROL)):
        raise NsExecError(f"{mp} is not a procsim mount")
    try:
        return subprocess.call(command(mp, cmd))
    except KeyboardInterrupt:
        return 130
