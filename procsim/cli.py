"""``procsim``: check a machine description, render a view, mount, unmount, exec a tool.

Every user error ends in one line on stderr and a non-zero exit status, never a traceback.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from procsim import machine as machine_mod
from procsim.harness import ANSWER_WAIT      # seconds before a daemon is called hung
EXEC_HOLD_WAIT = 2.0     # s after unmounting before a daemon still serving another namespace gets SIGTERM

EXIT_USAGE = 2


def _fail(msg: str, code: int = 1):
    print(f"procsim: {msg}", file=sys.stderr)
    sys.exit(code)


def _load(config: str | None):
    """The machine description (embedded seed-server default); ConfigError -> FILE:LINE: msg, exit 2."""
    try:
        return machine_mod.load(config or machine_mod.DEFAULT_CONFIG)
    except machine_mod.ConfigError as e:
        print(str(e), file=sys.stderr)
        sys.exit(EXIT_USAGE)


def _boot_failed(m, e: Exception):
    """A description that validates but does not boot (e.g. the boot workload does not fit
    once the watermarks are kept free): FILE:LINE: of the boot section, exit 2."""
    from procsim.mm.errors import MMError
    if isinstance(e, MMError):
        import errno
        where = f"{m.source}:{m.boot.line or 1}"
        print(f"{where}: the machine does not boot: {errno.errorcode.get(e.errno, e.errno)}: "
              f"{getattr(e, 'message', None) or e}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    if isinstance(e, ImportError):
        _fail(f"the simulator core is not available: {e}")
    if os.environ.get("PROCSIM_DEBUG"):      # a bug in the core: one line, traceback on request
        raise e
    _fail(f"booting the simulated kernel failed: {type(e).__name__}: {e} (PROCSIM_DEBUG=1 shows where)")


REPLAY_REPORT = 2.0        # seconds between "replaying" lines on stderr (the parent waits while they come)


class _ReplayReport:
    """Journal.replay's progress, printed to stderr every REPLAY_REPORT seconds while a
    replay runs (from a thread: one journal line, compact_memory on 1 TiB, may take long);
    `mount` without --foreground waits as long as these lines keep coming."""

    def __init__(self, state):
        import threading
        self.state, self.at, self.t0 = state, None, time.monotonic()
        self.printed = False
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def __call__(self, n, offset, size, raw):
        self.at = (n, offset, size, raw)

    def _run(self):
        while not self.done.wait(REPLAY_REPORT):
            self._print()

    def _print(self):
        if self.at is None:
            return
        n, offset, size, raw = self.at
        self.printed = True
        line = (raw or b"").decode(errors="replace")[:60]
        print(f"procsim: replaying {self.state}: line {n}, {100 * offset // max(size, 1)}% of its bytes, "
              f"{time.monotonic() - self.t0:.0f} s: {line}", file=sys.stderr, flush=True)

    def stop(self):
        """A replay that lasted a period says where it got to at least once, however the
        reporting thread was scheduled."""
        self.done.set()
        self.thread.join()
        if not self.printed and time.monotonic() - self.t0 >= REPLAY_REPORT:
            self._print()


def _session(args, state=None, clock="virtual"):
    from procsim.session import Session, StateError
    m = _load(args.config)
    report = _ReplayReport(state) if state else None
    try:
        return Session(m, state=state, clock=clock, progress=report)
    except StateError as e:
        _fail(f"cannot use --state: {e}", EXIT_USAGE)
    except Exception as e:
        _boot_failed(m, e)
    finally:
        if report is not None:
            report.stop()


def summary(m) -> str:
    """One paragraph: nodes, memory, CPUs and the zones the layout gives each node."""
    from procsim.mm import layout as layout_mod
    size = _size_text(m.total_memory)
    parts = [f"{m.name} ({m.source}): {m.nr_nodes} NUMA node{'s' * (m.nr_nodes != 1)}, "
             f"{m.nr_cpu_ids} CPUs, {size} in {len(m.dimms)} DIMM{'s' * (len(m.dimms) != 1)}."]
    lay = layout_mod.build(m)
    for node in lay.nodes:
        s = m.sockets[node.id]
        zones = ", ".join(f"{z.name} {z.present * 4096 >> 20} MiB ({z.managed} pages managed)"
                          for z in node.zones if z.present) or "no memory"
        parts.append(f"Node {node.id}: {s.model}, {s.cores} cores / {s.threads} threads "
                     f"(cpus {_cpulist(m.node_cpus(node.id))}); zones {zones}.")
    return " ".join(parts)


def _size_text(nbytes: int) -> str:
    mib = nbytes >> 20
    return f"{mib} MiB" if mib < 1024 else f"{mib / 1024:g} GiB"


def _cpulist(cpus: list[int]) -> str:
    out, i = [], 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        out.append(str(cpus[i]) if i == j else f"{cpus[i]}-{cpus[j]}")
        i = j + 1
    return ",".join(out) or "none"


# --- subcommands -----------------------------------------------------------------------------
def cmd_check(args) -> int:
    """Validate, then boot the machine once: a description that cannot boot is an error too."""
    m = _load(args.config_file)
    try:
        from procsim.mm.kernel import Kernel
        Kernel(m)
    except Exception as e:
        _boot_failed(m, e)
    print(summary(m))
    return 0


def cmd_render(args) -> int:
    s = _session(args)
    if args.commands:
        try:
            data = Path(args.commands).read_bytes()
            text = data.decode()
        except OSError as e:
            _fail(f"{args.commands}: {e.strerror}")
        except UnicodeDecodeError as e:
            n = data.count(b"\n", 0, e.start) + 1
            _fail(f"{args.commands}:{n}: not UTF-8 text (byte {data[e.start]:#04x})")
        from procsim.control import split_lines
        for n, line in enumerate(split_lines(text), 1):
            for r in s.execute([line]):
                if r.errno:
                    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in r.line)
                    _fail(f"{args.commands}:{n}: {shown}: {r.text}")
    name = args.name.strip("/")
    if s.mode(name) is None:
        _fail(f"no such view {args.name!r} (views: {', '.join(sorted(s.paths()))})")
    sys.stdout.buffer.write(s.render(name))
    sys.stdout.flush()
    return 0


def _prog() -> str:
    """How the user can run procsim again: its name if it is on PATH (e.g. after `make run`,
    .venv/bin is not), else the path of the script that is running."""
    import shutil
    return "procsim" if shutil.which("procsim") else os.path.relpath(sys.argv[0])


BANNER = """\
procsim: {name} mounted on {mp}  ({nodes} node(s), {cpus} CPUs, {size})
  cat {mp}/zoneinfo                 # or buddyinfo, pagetypeinfo, slabinfo, meminfo, vmstat
  procsim exec {mp} -- slabtop -o   # real tools, reading the simulated /proc
  procsim exec {mp} -- free -m
  echo 'kmalloc 64 count=1000' > {mp}/control
  cat {mp}/log {mp}/allocations
  procsim umount {mp}               # or Ctrl-C here
"""


MOUNT_WAIT = 120.0         # booting a big machine takes a while


def _check_mountpoint(mp: str) -> None:
    from procsim.harness import detach, state
    st = state(mp, ANSWER_WAIT)
    if st == "alive":
        _fail(f"{mp} is already a mount point (procsim umount {mp} first)")
    if st == "hung":
        _fail(f"{mp} is mounted, but its daemon does not answer within {ANSWER_WAIT:g} s (stopped?); "
              f"procsim umount {mp} detaches it")
    if st == "dead":
        if not detach(mp):
            _fail(f"{mp}: a dead mount is left there and fusermount -uz / umount -l could not remove it")
        print(f"procsim: removed a dead mount left on {mp}", file=sys.stderr)
    if not os.path.isdir(mp):
        _fail(f"{mp}: not a directory")


def _mount_lock(mp: str) -> int | None:
    """Serialise `procsim mount` on one path: an flock on the directory that holds the mount
    point (the mount point itself changes under us once something is mounted there).  Held
    until the mount answers, so racing mounts see it mounted and refuse."""
    import fcntl
    try:
        fd = os.open(os.path.dirname(mp) or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None                   # an unreadable or missing parent: _check_mountpoint says why
    deadline = time.monotonic() + MOUNT_WAIT + 10
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                _fail(f"another procsim mount on {mp} has not finished within {MOUNT_WAIT:g} s")
            time.sleep(0.05)


def cmd_mount(args) -> int:
    mp = os.path.abspath(args.mountpoint)
    lock = [None if args.parent_locked else _mount_lock(mp)]

    def unlock():
        if lock[0] is not None:
            os.close(lock[0])
            lock[0] = None
    try:
        return _mount(args, mp, unlock)
    finally:
        unlock()


def _mount(args, mp: str, unlock) -> int:
    _check_mountpoint(mp)
    if not args.foreground:
        return _daemonize(args, mp)
    from procsim.fs import serve
    s = _session(args, state=args.state, clock=args.clock)
    m = s.machine

    def ready():
        unlock()
        if args.banner:
            print(BANNER.replace("procsim ", _prog() + " ").format(name=m.name, mp=args.mountpoint, nodes=m.nr_nodes, cpus=m.nr_cpu_ids,
                                size=_size_text(m.total_memory)), flush=True)
    ended = True
    try:
        ended = serve(s, mp, allow_other=args.allow_other, on_ready=ready, log_file=args.log)
    except RuntimeError as e:
        _fail(f"mounting {mp} failed ({e}); see the fuse message above")
    finally:
        s.close()
    if not ended:                   # a threaded session a reader still holds (lazy unmount): go anyway
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def _relay(err) -> int:
    """The daemon's stderr so far: new "replaying" lines are shown here too; its size tells
    wait_mounted that the daemon advances."""
    size = os.fstat(err.fileno()).st_size
    seen = getattr(_relay, "seen", 0)
    if size > seen:
        new = os.pread(err.fileno(), size - seen, seen)
        cut = new.rfind(b"\n") + 1
        for line in new[:cut].decode(errors="replace").splitlines():
            if line.startswith("procsim: replaying "):
                print(line, file=sys.stderr, flush=True)
        _relay.seen = seen + cut
    return size


def _daemonize(args, mp: str) -> int:
    """Start `mount --foreground` in its own session; return once the mount answers and is
    served by that very daemon (racing mounts stack on one path; a daemon that died after
    mounting must not be reported as mounted)."""
    cmd = [sys.executable, "-m", "procsim.cli", "mount", "--foreground", "--parent-locked", mp]
    if args.config:                 # a shipped machine's name (seed-vm) is found from any directory
        cmd[4:4] = ["--config", os.path.abspath(machine_mod.find(args.config))]
    if args.log:
        cmd[4:4] = ["--log", os.path.abspath(args.log)]
    if args.state:
        cmd[4:4] = ["--state", os.path.abspath(args.state)]
    if args.allow_other:
        cmd[4:4] = ["--allow-other"]
    cmd[4:4] = [f"--clock={args.clock}"]
    from procsim.harness import wait_mounted
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                             start_new_session=True, cwd="/")
        try:
            wait_mounted(mp, p, MOUNT_WAIT, pid=p.pid, progress=lambda: _relay(err))
        except RuntimeError:
            if p.poll() is not None:
                err.seek(0)
                sys.stderr.write(err.read().decode(errors="replace"))
                return p.returncode or 1
            p.terminate()
            _fail(f"the daemon did not mount {mp} within {MOUNT_WAIT:g} s")
        print(f"procsim: mounted on {mp} (daemon pid {p.pid})")
        return 0


def cmd_umount(args) -> int:
    """Unmount and wait for the daemon.  A daemon that does not answer (SIGSTOPped, stuck) is
    detached lazily (the kernel aborts its connection; it exits once it runs again).  One
    still running EXEC_HOLD_WAIT s after its mount left this namespace is held by another (a
    tool under `procsim exec`, e.g. dmesg -w, keeps binds of M): it gets SIGTERM, which ends
    the tool's blocked reads at EOF."""
    from procsim.harness import Hung, daemon_pid, detach, mount_entry, state
    mp = os.path.abspath(args.mountpoint)
    if mount_entry(mp) is None:
        _fail(f"{mp} is not mounted")
    st = state(mp, ANSWER_WAIT)
    pid = None
    if st == "alive":
        try:
            pid = daemon_pid(mp, ANSWER_WAIT)
        except Hung:
            st = "hung"
    if st == "dead":
        if detach(mp):
            return 0
        _fail(f"{mp}: the daemon is gone and the dead mount could not be removed")
    if st == "hung":
        print(f"procsim: the daemon of {mp} does not answer within {ANSWER_WAIT:g} s (stopped?); "
              f"detaching the mount lazily", file=sys.stderr)
        if not detach(mp):
            _fail(f"cannot detach {mp}")
        return 0
    from procsim.harness import unmount_submounts
    unmount_submounts(mp)           # the threaded session's mount (tracefs) first: else M is busy
    try:
        r = subprocess.run(["fusermount", "-u", mp], capture_output=True, text=True, timeout=10)
        failed, why = r.returncode != 0, r.stderr
    except subprocess.TimeoutExpired:
        failed, why = True, "fusermount -u did not return within 10 s"
    if failed and mount_entry(mp) is not None:
        try:
            r2 = subprocess.run(["umount", mp], capture_output=True, text=True, timeout=10)
            if r2.returncode != 0:
                _fail(f"cannot unmount {mp}: {(why or r2.stderr).strip()}")
        except subprocess.TimeoutExpired:
            print(f"procsim: unmounting {mp} does not finish; detaching it lazily", file=sys.stderr)
            detach(mp)
    start = time.monotonic()
    told = False
    while pid is not None and _running(pid):
        waited = time.monotonic() - start
        if not told and waited > EXEC_HOLD_WAIT and mount_entry(mp) is None:
            # Gone from here, but a tool under `procsim exec` (dmesg -w, cat trace_pipe) has
            # binds of M in its mount namespace, which keep the daemon serving and the tool
            # blocked: SIGTERM ends the daemon's loop, and its blocked readers get EOF.
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                break
            told = True
        if waited > 15:
            _fail(f"unmounted {mp}, but daemon pid {pid} is still running")
        time.sleep(0.05)
    return 0


def _running(pid: int) -> bool:
    """Alive and not a zombie (a daemonized procsim is nobody's child we could wait for)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def cmd_exec(args) -> int:
    from procsim.nsexec import NsExecError, run
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        _fail("exec: no command given (procsim exec MOUNTPOINT -- CMD ...)", EXIT_USAGE)
    try:
        return run(args.mountpoint, cmd)
    except NsExecError as e:
        _fail(str(e))


def cmd_fixtures(args) -> int:
    """Every file of each machine (all shipped ones by default) as trees, or a tar, with a manifest."""
    import procsim
    from procsim import fixtures
    commands, source = [], None
    if args.commands:
        source = args.commands
        try:
            text = Path(source).read_bytes().decode()
            commands = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
        except OSError as e:
            _fail(f"{source}: {e.strerror}")
        except UnicodeDecodeError as e:
            _fail(f"{source}: not UTF-8 text (byte {e.start})")
    try:
        manifest, files = fixtures.build(args.config or procsim.machines(), commands, source, args.kernel or ())
        out = Path(args.out)
        (fixtures.write_tar if args.tar else fixtures.write_dir)(out, files)
    except machine_mod.ConfigError as e:
        _fail(str(e), EXIT_USAGE)
    except procsim.CommandError as e:
        _fail(f"{source}:{e.index}: {e.line}: {e.reply}")
    except (fixtures.FixturesError, OSError) as e:
        _fail(str(e))
    print(f"procsim: wrote {', '.join(manifest['machines'])} to {args.out}")
    return 0


def cmd_clone(args) -> int:
    """A real machine's /proc and /sys (/, a copy, a fixtures tree, a sosreport) -> a description;
    --check boots it and says, file by file, what matched and what could not be reproduced."""
    from procsim import clone
    try:
        src = clone.Source(args.source)
        c = clone.clone(src, name=args.name)
        text = clone.to_yaml(c, args.source)
        machine_mod.loads(text, args.out or "<clone>")      # never write what procsim cannot read
    except clone.CloneError as e:
        _fail(str(e))
    except machine_mod.ConfigError as e:
        _fail(f"the cloned description does not validate (a bug, please report it): {e}")
    if args.out:
        try:
            Path(args.out).write_text(text)
        except OSError as e:
            _fail(f"{args.out}: {e.strerror}")
    if args.check:
        report, ok = clone.check_report(src, c)
        print(report, end="")
        return 0 if ok else 1
    if not args.out:
        print(text, end="")
    return 0


# --- argument parsing ------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="procsim", description=(
        "A simulated Linux machine's physical memory (buddy allocator + SLUB), served as "
        "/proc files through FUSE. Without --config the embedded seed-server machine is used."))
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("check", help="validate a machine description and summarise it")
    c.add_argument("config_file", metavar="CONFIG")
    c.set_defaults(func=cmd_check)

    r = sub.add_parser("render", help="print one view (e.g. zoneinfo) without mounting")
    r.add_argument("--config", "-c")
    r.add_argument("--commands", metavar="FILE", help="apply control-file commands first")
    r.add_argument("name", metavar="NAME")
    r.set_defaults(func=cmd_render)

    m = sub.add_parser("mount", help="mount the simulated files on MOUNTPOINT")
    m.add_argument("--config", "-c")
    m.add_argument("--foreground", "-f", action="store_true", help="stay in the foreground (Ctrl-C unmounts)")
    m.add_argument("--banner", action="store_true", help="print what to try once mounted")
    m.add_argument("--allow-other", action="store_true", help="let other users read the files")
    m.add_argument("--state", metavar="FILE",
                   help="replay FILE's commands at start and append every successful command to it")
    m.add_argument("--log", metavar="FILE", help="the daemon's log (internal errors): FILE, capped at 1 MiB "
                   "with one older file kept (default: stderr, capped at 1 MiB)")
    m.add_argument("--clock", choices=("wall", "virtual"), default="wall",
                   help="wall (default): uptime follows the wall clock and kernel threads run between "
                        "commands; virtual: the clock moves only on commands and sleep")
    m.add_argument("--parent-locked", action="store_true", help=argparse.SUPPRESS)   # set by _daemonize
    m.add_argument("mountpoint", metavar="MOUNTPOINT")
    m.set_defaults(func=cmd_mount)

    u = sub.add_parser("umount", help="unmount and wait for the daemon to exit")
    u.add_argument("mountpoint", metavar="MOUNTPOINT")
    u.set_defaults(func=cmd_umount)

    f = sub.add_parser("fixtures", help="write every file of some machines as trees (or a tar) with a manifest")
    f.add_argument("--config", "-c", action="append", metavar="C",
                   help="a machine name or YAML file; repeat for more (default: every shipped machine)")
    f.add_argument("--commands", metavar="FILE", help="apply these control-file commands to each machine first")
    f.add_argument("--kernel", "-k", action="append", metavar="V",
                   help="render each machine as this kernel version (6.18, 6.1, 5.4, 3.10; repeatable): "
                        "one subtree MACHINE@V per machine and version")
    f.add_argument("--tar", action="store_true", help="write OUT as a tar file (.tar.gz/.tgz: compressed)")
    f.add_argument("out", metavar="OUT")
    f.set_defaults(func=cmd_fixtures)

    cl = sub.add_parser("clone", help="write a machine description that reproduces a real machine's files")
    cl.add_argument("source", metavar="SOURCE",
                    help="/ (this machine), a directory laid out like / (proc/, sys/), or a sosreport (tarball or directory)")
    cl.add_argument("-o", "--out", metavar="FILE", help="write the description here (default: stdout)")
    cl.add_argument("--name", help="the machine's name (default: clone-HOSTNAME)")
    cl.add_argument("--check", action="store_true",
                    help="boot the description and print, file by file, what matched and what could not be "
                         "reproduced and why (exit 1 if anything differs)")
    cl.set_defaults(func=cmd_clone)

    e = sub.add_parser("exec", help="run CMD with /proc and /sys files replaced by MOUNTPOINT's "
                                    "and no power over the host's kernel")
    e.add_argument("mountpoint", metavar="MOUNTPOINT")
    e.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    e.set_defaults(func=cmd_exec)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
