"""``procsim exec M -- CMD``: run an unmodified tool with M's files bound over /proc, /sys and
/dev/kmsg, and with no power over the host.

The tool runs in a private mount namespace (``unshare -m``; ``unshare -rm`` for a non-root
user), so the binds vanish with it.  A python step inside the namespace (``python -m
procsim.nsexec``) prepares it before the tool starts, and fails closed: if any step fails the
tool never runs, because a tool that silently reads -- or writes -- the real kernel is worse
than no answer (clients.md §0.3).  In order:

1. **The host's kernel files become read-only** (mount_setattr(2), ``MOUNT_ATTR_RDONLY``,
   recursive; Linux 5.12) *before* anything is bound: /proc (with /proc/sys and every pid's
   files), /sys and every mount below it (cgroup, debugfs, tracefs, ...), and any other mount
   of a kernel filesystem (``KERNEL_FS``: a second proc or sysfs, hugetlbfs, bpf, ...) the
   namespace can reach.  A write there fails with EROFS and changes nothing: ``sysctl -w
   kernel.printk_ratelimit=5``, ``echo 1 > /sys/devices/system/memory/memoryN/online``,
   ``chmem``, THP knobs.  The flags are on the namespace's copies of the mounts; the host's
   mounts are untouched.  (A read-only /proc also keeps uid_map unwritable: a user namespace
   the tool makes has no root to map.)
2. **No device node opens, but a few harmless ones**: every mount becomes ``nodev`` and /dev
   read-only, except null, zero, full, random, urandom, tty, ptmx (each bound onto itself) and
   the /dev/pts, /dev/shm and /dev/mqueue mounts; so the disks, /dev/mem, /dev/port,
   /dev/cpu/*/msr, /dev/watchdog ... answer EACCES wherever a node for them lies.
3. **The simulation's files are bound on top** (``bind_plan``): a bind is a new mount of M, so
   they stay writable -- ``sysctl -w vm.min_free_kbytes=...`` reaches the simulation. A whole
   directory the simulation provides (``SYS_DIRS``) that the host lacks (no memory hotplug, no
   tracefs) has no place to go: exec refuses (NsExecError), as the tool would see neither.
   /proc/sys/kernel files the mount has (ftrace_enabled, which ``trace-cmd record`` writes)
   are bound one by one; /proc/kallsyms is the simulation's (the kmem events' call_site).  If M
   binds a tracefs but the namespace has no tracefs mount there, the real tracefs is mounted
   underneath first (read-only, then covered) so that /proc/mounts names a ``tracefs`` at
   /sys/kernel/tracing as libtracefs (trace-cmd) requires; it never sees the host's events.
4. **Capabilities that reach the kernel are dropped** from the bounding and inheritable sets
   (so the tool, even as root, can never hold them), and no_new_privs is set (no setuid or
   file-capability way back): CAP_SYS_ADMIN (mount, umount, swapon/swapoff, sethostname,
   ...), CAP_SYSLOG (the host's kernel log: ``dmesg -c`` / ``-C`` get EPERM from the
   kernel and the host's log is kept; the simulated one is not cleared either -- the kernel's
   clear moves where syslog reads and /dev/kmsg's SEEK_DATA start, and a fusepy file has no
   lseek to carry SEEK_DATA), CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_SYS_BOOT,
   CAP_SYS_TIME, CAP_SYS_NICE (moving other processes' pages between nodes),
   CAP_SYS_RESOURCE, CAP_MKNOD, CAP_NET_ADMIN, CAP_BPF, CAP_PERFMON and the other
   kernel-wide ones in ``DROPPED_CAPS``.
5. The tool's environment gets ``HWLOC_COMPONENTS=-x86,-linuxio,-pci`` and
   ``HWLOC_ALLOW=all`` (each unless the user set it): hwloc's x86 backend reads the host's
   CPUID and its I/O discovery the host's PCI locality, both contradicting the simulated sysfs,
   and the tool's own affinity is the host's CPUs; so lstopo builds the topology from the
   simulated /sys alone, every simulated CPU and node, as in a VM that hides CPUID.

What exec does *not* isolate: the tool runs with the caller's uid in the host's pid, network,
ipc and user namespaces and the host's filesystems.  It can signal or ptrace the caller's
other processes, use the network, and read and write ordinary files (``trace-cmd record``
writes trace.dat in the current directory) with the caller's rights; it allocates the host's
memory and CPU like any process; privileged daemons it reaches by socket (systemd, D-Bus) act
with their own rights.  What it cannot do itself is change the kernel's state: tunables, sysfs,
devices, memory hotplug, swap, the kernel log, mounts, modules, time.
"""
from __future__ import annotations

import ctypes
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys

KMSG, SYSCTL_VM = "kmsg", "sysctl/vm"
# the shell's own files (procsim.session's CONTROL, LOG, ALLOCATIONS; not imported: the namespace
# step starts a python of its own and should not load the simulator) and kmsg, which goes to /dev
SHELL_FILES = {"control", "log", "allocations", KMSG}
# Directories the simulation provides whole: bound in place of the host's, so none of the host's
# entries (its CPUs, nodes, memory blocks, caches, events) show through.
SYS_DIRS = ("sys/devices/system/node", "sys/devices/system/cpu", "sys/devices/system/memory",
            "sys/kernel/slab", "sys/kernel/tracing")
DMI_TABLES = "sys/firmware/dmi/tables"
# debugfs directories M has (at debug/ or, laid out like /, at sys/kernel/debug/), and where the
# kernel's debugfs puts them below /sys/kernel/debug
DEBUG_DIRS = ("extfrag",)
# M's places for one host file or directory, first found wins: a mount keeps /proc files at its
# root, a tree laid out like / keeps them where the host does.
SYSCTL_VM_SOURCES = (SYSCTL_VM, "proc/sys/vm")
SYSCTL_KERNEL_SOURCES = ("sysctl/kernel", "proc/sys/kernel")   # one by one: the host's others stay
# dev/kmsg first: a mount serves it from its threaded session, where a read at the end waits for
# the next record (dmesg -w follows the log); M/kmsg answers EOF there
KMSG_SOURCES = ("dev/kmsg", KMSG)
TRACEFS = "kernel/tracing"                 # below the sys root
SYS_ROOT = "/sys"                          # the host's sysfs (tests point it elsewhere)


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


def _first(mp: str, rels, kind: str) -> str | None:
    for rel in rels:
        src = os.path.join(mp, rel)
        if _kind(src) == kind:
            return src
    return None


def _sys_files(mp: str, sys_root: str, ops: list) -> None:
    """Any other file below M/sys with a real counterpart (a THP knob, a node's possible mask):
    bound one by one, so the host's siblings stay (read-only) beside it.  The whole directories,
    DMI and debugfs are placed by bind_plan."""
    top = os.path.join(mp, "sys")
    if _kind(top) != "dir":
        return
    skip = {os.path.join(mp, rel) for rel in (*SYS_DIRS, DMI_TABLES, "sys/kernel/debug")}
    for root, dirs, files in os.walk(top):
        keep = []
        for d in sorted(dirs):
            src = os.path.join(root, d)
            if src not in skip and os.path.isdir(os.path.join(sys_root, os.path.relpath(src, top))) \
                    and _kind(src) == "dir":
                keep.append(d)
        dirs[:] = keep
        for name in sorted(files):
            src = os.path.join(root, name)
            dst = os.path.join(sys_root, os.path.relpath(src, top))
            if os.path.isfile(dst) and not os.path.islink(dst) and _kind(src) == "file":
                ops.append(("bind", src, dst))


def bind_plan(mp: str, proc: str = "/proc", sys_root: str | None = None, kmsg_dev: str = "/dev/kmsg") -> list[tuple]:
    """What puts M's files in place of the host's: ("bind", src, dst), ("tmpfs", name, dst) (a
    place where the host has none) and ("mkdir", path), in order.  Every file or directory of M
    that has a real counterpart is bound; what the host lacks is bound only where a placeholder
    cannot hide anything of the host's (DMI tables, debugfs).  A whole directory of SYS_DIRS
    that M has and the host has not (no memory hotplug, no tracefs) cannot be placed inside
    sysfs: NsExecError, and the tool is not run (it would see neither)."""
    sys_root = SYS_ROOT if sys_root is None else sys_root
    ops: list[tuple] = []
    seen = set()
    for sub in ("", "proc"):                         # /proc files: M/NAME, or M/proc/NAME
        d = os.path.join(mp, sub)
        if sub and _kind(d) != "dir":
            continue
        for name in sorted(os.listdir(d)):
            src = os.path.join(d, name)
            if (not sub and name in SHELL_FILES) or name in seen or _kind(src) != "file":
                continue
            dst = os.path.join(proc, name)
            if os.path.lexists(dst):                 # only files the real /proc has
                ops.append(("bind", src, dst))
                seen.add(name)
    for rel in SYS_DIRS:
        src = os.path.join(mp, rel)
        dst = os.path.join(sys_root, rel.split("/", 1)[1])
        if _kind(src) != "dir":
            continue
        if not os.path.isdir(dst):                   # nothing to bind it over: the tool would not see it
            raise NsExecError(f"{src} cannot be bound: this host has no {dst} to bind it over (a kernel "
                              f"without it), so the tool would miss the simulated one; nothing run")
        ops.append(("bind", src, dst))
    src = _first(mp, SYSCTL_VM_SOURCES, "dir")
    if src:                                          # procps sysctl reads and writes here
        ops.append(("bind", src, os.path.join(proc, "sys", "vm")))
    src = _first(mp, SYSCTL_KERNEL_SOURCES, "dir")
    if src:                                          # ftrace_enabled, which trace-cmd record writes
        for name in sorted(os.listdir(src)):
            dst = os.path.join(proc, "sys", "kernel", name)
            if _kind(os.path.join(src, name)) == "file" and os.path.isfile(dst) and not os.path.islink(dst):
                ops.append(("bind", os.path.join(src, name), dst))
    src = _first(mp, KMSG_SOURCES, "file")
    if src and os.path.lexists(kmsg_dev):            # the real dmesg reads /dev/kmsg
        ops.append(("bind", src, kmsg_dev))
    src = os.path.join(mp, DMI_TABLES)
    if _kind(src) == "dir":
        for name in os.listdir(src):
            _kind(os.path.join(src, name))
        dst = os.path.join(sys_root, DMI_TABLES.split("/", 1)[1])
        if not os.path.isdir(dst):                   # VMs often have no DMI: make a place for it
            ops.append(("tmpfs", "procsim-firmware", os.path.join(sys_root, "firmware")))
            ops.append(("mkdir", dst))
        ops.append(("bind", src, dst))
    debugfs = os.path.join(sys_root, "kernel/debug")
    made = False
    for name in DEBUG_DIRS:
        src = _first(mp, (f"debug/{name}", f"sys/kernel/debug/{name}"), "dir")
        if not src:
            continue
        dst = os.path.join(debugfs, name)
        if not os.path.isdir(dst) and not made:      # debugfs not mounted (or no such dir):
            ops.append(("tmpfs", "procsim-debugfs", debugfs))   # a place for ours
            made = True
        if made:
            ops.append(("mkdir", dst))
        ops.append(("bind", src, dst))
    _sys_files(mp, sys_root, ops)
    return ops


def bind_script(mp: str, proc: str = "/proc", sys_root: str | None = None, kmsg_dev: str = "/dev/kmsg") -> list[str]:
    """bind_plan as the equivalent shell lines (what exec does, readable; the tests' view)."""
    q = shlex.quote
    render = {"bind": lambda s, d: f"mount --bind {q(s)} {q(d)}",
              "tmpfs": lambda n, d: f"mount -t tmpfs {q(n)} {q(d)}",
              "mkdir": lambda d: f"mkdir -p {q(d)}"}
    return [render[op](*args) for op, *args in bind_plan(mp, proc, sys_root, kmsg_dev)]


def command(mp: str, cmd: list[str]) -> list[str]:
    """The full argv: unshare + this module's namespace step (the plan as JSON) + the user's command."""
    mp = os.path.abspath(mp)
    ops = bind_plan(mp)
    if not ops:
        raise NsExecError(f"{mp} has no files to bind over /proc or /sys (is procsim mounted there?)")
    if shutil.which("unshare") is None:
        raise NsExecError("unshare (util-linux) is not installed")
    ns = ["unshare", "-m", "--propagation", "private"] if os.geteuid() == 0 else \
         ["unshare", "-r", "-m", "--propagation", "private"]
    return [*ns, sys.executable, "-m", "procsim.nsexec", json.dumps(ops), "--", *cmd]


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


# --- inside the namespace: read-only host, binds, fewer capabilities, exec -------------------
# capability numbers (linux/capability.h) the tool never gets: each reaches kernel-wide state
DROPPED_CAPS = {
    "CAP_LINUX_IMMUTABLE": 9, "CAP_NET_ADMIN": 12, "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17,
    "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
    "CAP_AUDIT_CONTROL": 30, "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35, "CAP_BLOCK_SUSPEND": 36, "CAP_PERFMON": 38, "CAP_BPF": 39,
}
SAFE_DEVICES = ("null", "zero", "full", "random", "urandom", "tty", "ptmx")
KEEP_DEV_MOUNTS = ("pts", "shm", "mqueue")        # the tool's terminal, POSIX shm and mqueues
# filesystems that are the kernel's interfaces: read-only wherever else they are mounted
KERNEL_FS = {"proc", "sysfs", "debugfs", "tracefs", "securityfs", "configfs", "cgroup", "cgroup2", "bpf",
             "pstore", "efivarfs", "fusectl", "hugetlbfs", "devtmpfs", "binfmt_misc", "selinuxfs",
             "resctrl", "nfsd", "rpc_pipefs"}
# hwloc (lstopo) from the simulated sysfs alone: not the host's CPUID (x86 backend) or PCI
# locality (linux I/O phases), and every simulated CPU and node, not only those the tool's own
# (host) affinity and cgroup allow
HWLOC_ENV = {"HWLOC_COMPONENTS": "-x86,-linuxio,-pci", "HWLOC_ALLOW": "all"}
SETUP_FAILED = 125                                 # like env(1) and chroot(1): exec's own failure

MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND = 2, 4, 8, 4096
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV = 1, 2, 4
AT_FDCWD, AT_RECURSIVE = -100, 0x8000
SYS_mount_setattr = 442                            # the same number on every architecture
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 24, 38, 47, 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_libc = None


def _c():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _ok(ret: int, what: str) -> int:
    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")
    return ret


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def _mount(src: str | None, dst: str, fstype: str | None, flags: int) -> None:
    _ok(_c().mount(_b(src), _b(dst), _b(fstype), ctypes.c_ulong(flags), None), f"mount {dst}")


def mountinfo() -> list[tuple[str, str, int]]:
    """(mount point, fstype, st_dev) of each mount of this namespace, in order."""
    out = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            left, right = line.split(b" - ", 1)
            fields = left.split()
            path = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), fields[4])   # \040 ...
            major, minor = map(int, fields[2].split(b":"))
            out.append((os.fsdecode(path), right.split()[0].decode(), os.makedev(major, minor)))
    return out


def _below(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def _setattr(path: str, set_: int = 0, clr: int = 0, recursive: bool = False) -> None:
    """mount_setattr(2) (Linux 5.12): set and clear per-mount flags of the mount at path (and,
    recursive, of every mount below it, hidden ones included)."""
    attr = _MountAttr(attr_set=set_, attr_clr=clr)
    r = _c().syscall(ctypes.c_long(SYS_mount_setattr), ctypes.c_int(AT_FDCWD), _b(path),
                     ctypes.c_uint(AT_RECURSIVE if recursive else 0), ctypes.byref(attr),
                     ctypes.c_size_t(ctypes.sizeof(attr)))
    if r < 0 and ctypes.get_errno() == 38:         # ENOSYS
        raise OSError(38, "mount_setattr: not in this kernel (procsim exec needs Linux 5.12 or later)")
    _ok(r, f"mount_setattr {path}")


def readonly_host(proc: str = "/proc", sys_root: str = "/sys", dev: str = "/dev") -> None:
    """Steps 1 and 2 of the module docstring (before anything of M is bound)."""
    try:                                               # debugfs' tracing automount, now: ro below
        os.listdir(os.path.join(sys_root, "kernel/debug/tracing"))
    except OSError:                                    # none, or not ours to open (nor the tool's)
        pass
    safe = []
    for name in SAFE_DEVICES:
        p = os.path.join(dev, name)
        if os.path.exists(p) and not os.path.islink(p):
            _mount(p, p, None, MS_BIND)                # its own mount, to be given back dev and rw
            safe.append(p)
    _setattr("/", MOUNT_ATTR_NODEV, recursive=True)    # no device node opens anywhere ...
    for top in (proc, sys_root, dev):                  # ... and the kernel's files are read-only
        _setattr(top, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, recursive=True)
    for p in safe:                                     # ... but these
        _setattr(p, clr=MOUNT_ATTR_NODEV | MOUNT_ATTR_RDONLY)
    for name in KEEP_DEV_MOUNTS:
        p = os.path.join(dev, name)
        if os.path.ismount(p):
            _setattr(p, clr=MOUNT_ATTR_RDONLY | (MOUNT_ATTR_NODEV if name == "pts" else 0))
    for mp, fstype, st_dev in mountinfo():             # a kernel filesystem mounted elsewhere too
        if fstype in KERNEL_FS and not any(_below(mp, t) for t in (proc, sys_root, dev)):
            try:
                reachable = os.stat(mp).st_dev == st_dev
            except OSError:
                reachable = False                      # overmounted: no path leads to it
            if reachable:
                _setattr(mp, MOUNT_ATTR_RDONLY)


def _tracefs_below(ops, sys_root: str = "/sys") -> None:
    """trace-cmd (libtracefs) takes the tracing directory from a ``tracefs`` line of
    /proc/mounts and mounts one itself if there is none: give the namespace the real tracefs
    there, to be made read-only and covered by M's."""
    dst = os.path.join(sys_root, TRACEFS)
    if any(op[0] == "bind" and op[2] == dst for op in ops) and \
            not any(mp == dst and fs == "tracefs" for mp, fs, _dev in mountinfo()):
        try:
            _mount("tracefs", dst, "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        except PermissionError:                    # a user namespace (non-root): trace-cmd needs root anyway
            pass


def apply(ops) -> None:
    for op, *args in ops:
        if op == "bind":
            _mount(args[0], args[1], None, MS_BIND)
        elif op == "tmpfs":
            _mount(args[0], args[1], "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        elif op == "mkdir":
            os.makedirs(args[0], exist_ok=True)
        else:
            raise OSError(0, f"unknown step {op!r}")


def drop_privileges() -> None:
    """Step 4: out of the bounding set (for every program the tool runs), out of the
    inheritable and ambient sets (root's exec gives bounding | inheritable | ambient), and
    no_new_privs."""
    c = _c()
    last = int(open("/proc/sys/kernel/cap_last_cap").read())
    for cap in sorted(DROPPED_CAPS.values()):
        if cap <= last:
            _ok(c.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0), f"drop capability {cap}")
    _ok(c.prctl(PR_CAP_AMBIENT, ctypes.c_ulong(PR_CAP_AMBIENT_CLEAR_ALL), 0, 0, 0), "clear ambient capabilities")
    hdr, data = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    _ok(c.capget(ctypes.byref(hdr), data), "capget")
    for d in data:
        d.inheritable = 0
    _ok(c.capset(ctypes.byref(hdr), data), "capset")
    _ok(c.prctl(PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), 0, 0, 0), "no_new_privs")


def child_main(argv: list[str]) -> int:
    """``python -m procsim.nsexec PLAN -- CMD...``, run by unshare inside the new namespace."""
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m procsim.nsexec PLAN -- CMD [ARG...] (run by procsim exec)", file=sys.stderr)
        return 2
    cmd = argv[2:]
    try:
        ops = [tuple(op) for op in json.loads(argv[0])]
        _tracefs_below(ops)
        readonly_host()
        apply(ops)
        for op, *args in ops:                      # the placeholders too: only M's files are writable
            if op == "tmpfs":
                _setattr(args[1], MOUNT_ATTR_RDONLY)
        drop_privileges()
    except (OSError, ValueError) as e:
        print(f"procsim exec: {e}; {cmd[0]} not started", file=sys.stderr)
        return SETUP_FAILED
    env = dict(os.environ)
    for k, v in HWLOC_ENV.items():
        env.setdefault(k, v)
    try:
        os.execvpe(cmd[0], cmd, env)
    except OSError as e:
        print(f"procsim exec: {cmd[0]}: {e.strerror}", file=sys.stderr)
        return 127 if isinstance(e, FileNotFoundError) else 126


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
