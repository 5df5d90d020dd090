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
import stat
import subprocess

from procsim.session import ALLOCATIONS, CONTROL, LOG

KMSG, SYSCTL_VM = "kmsg", "sysctl/vm"
SHELL_FILES = {CONTROL, LOG, ALLOCATIONS, KMSG}
SYS_DIRS = ("sys/devices/system/node", "sys/devices/system/cpu", "sys/kernel/slab", "sys/kernel/tracing")
DMI_TABLES = "sys/firmware/dmi/tables"
# debugfs directories M has, and where the kernel's debugfs puts them below /sys/kernel/debug
DEBUG_DIRS = ("debug/extfrag",)


class NsExecError(Exception):
    pass


def _kind(path: str) -> str | None:
    """'file', 'dir' or None (missing), never following a symlink; NsExecError for a symlink
    (a bind would follow it to whatever it names) or anything else."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        raise NsExecError(f"{path} is a symlink; procsim files never are, refusing to bind it")
    if stat.S_ISREG(st.st_mode):
        return "file"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    raise NsExecError(f"{path} is neither a file nor a directory; refusing to bind it")


def bind_script(mp: str, proc: str = "/proc", sys_root: str = "/sys", kmsg_dev: str = "/dev/kmsg") -> list[str]:
    """The shell lines that put M's files in place of the host's (run inside the namespace)."""
    q = shlex.quote
    lines = []
    for name in sorted(os.listdir(mp)):
        src = os.path.join(mp, name)
        if name in SHELL_FILES or _kind(src) != "file":
            continue
        dst = os.path.join(proc, name)
        if os.path.lexists(dst):                     # only files the real /proc has
            lines.append(f"mount --bind {q(src)} {q(dst)}")
    for rel in SYS_DIRS:
        src = os.path.join(mp, rel)
        dst = os.path.join(sys_root, rel.split("/", 1)[1])
        if _kind(src) == "dir":
            lines.append(f"mount --bind {q(src)} {q(dst)}")
    src = os.path.join(mp, SYSCTL_VM)
    if _kind(src) == "dir":                              # procps sysctl reads and writes here
        lines.append(f"mount --bind {q(src)} {q(os.path.join(proc, 'sys', 'vm'))}")
    src = os.path.join(mp, KMSG)
    if _kind(src) == "file" and os.path.lexists(kmsg_dev):   # the real dmesg reads /dev/kmsg
        lines.append(f"mount --bind {q(src)} {q(kmsg_dev)}")
    src = os.path.join(mp, DMI_TABLES)
    if _kind(src) == "dir":
        for name in os.listdir(src):
            _kind(os.path.join(src, name))
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


def check_mount(mountpoint: str) -> str:
    """The absolute mount point if it is a live procsim FUSE mount (fstype fuse.procsim in
    /proc/self/mounts, and its root answers with the daemon's pid xattr); NsExecError if not,
    including a daemon that does not answer within ANSWER_WAIT seconds (stopped?)."""
    from procsim.harness import ANSWER_WAIT, FSTYPE, Hung, daemon_pid, mount_entry, state
    mp = os.path.abspath(mountpoint)
    fstype = mount_entry(mp)
    if fstype is None:
        raise NsExecError(f"{mp} is not mounted (procsim mount {mountpoint} first)")
    if fstype != FSTYPE:
        raise NsExecError(f"{mp} is a {fstype} mount, not a procsim mount")
    st = state(mp, ANSWER_WAIT)
    if st == "dead":
        raise NsExecError(f"{mp}: the procsim daemon is gone (Transport endpoint is not connected); "
                          f"mount it again")
    hung = NsExecError(f"{mp}: the procsim daemon does not answer within {ANSWER_WAIT:g} s (stopped?); "
                       f"procsim umount {mountpoint} detaches it")
    if st == "hung":
        raise hung
    try:
        pid = daemon_pid(mp, ANSWER_WAIT)
    except Hung:
        raise hung from None
    if pid is None:
        raise NsExecError(f"{mp} does not say which procsim daemon serves it; not a procsim mount")
    return mp


def run(mountpoint: str, cmd: list[str]) -> int:
    """Run cmd; its exit status is ours.  NsExecError if M is no live procsim mount."""
    from procsim.harness import ANSWER_WAIT, Hung, probe
    mp = check_mount(mountpoint)
    try:
        argv = probe(lambda: command(mp, cmd), ANSWER_WAIT * 3)
    except Hung:
        raise NsExecError(f"{mp}: the procsim daemon stopped answering (stopped?)") from None
    try:
        return subprocess.call(argv)
    except KeyboardInterrupt:
        return 130
