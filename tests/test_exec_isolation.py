"""`procsim exec M -- TOOL` gives the tool no power over the host (issue 30 §1): the host's
/proc, /sys and devices are read-only (or absent) to it, kernel-wide capabilities are gone
(swapon, mount, the kernel log), and only the simulation's files stay writable.

These run real tools as root on this host.  Nothing here may change the host even if exec
were broken: every write puts back the value the file already holds, swapon/swapoff name a
path that does not exist, and each test that runs something that *would* change the host if
unconfined (chmem, dmesg -c) first checks, read-only, that the namespace is confined.
"""
from __future__ import annotations

import glob
import os
import re
import subprocess
import sys

from procsim import nsexec
from procsim.testing import procsim_cmd

CAP_SYS_ADMIN, CAP_SYSLOG = 21, 34
PRINTK_RATELIMIT = "/proc/sys/kernel/printk_ratelimit"
THP_DEFRAG = "/sys/kernel/mm/transparent_hugepage/defrag"


def _exec(m, *cmd, timeout=120):
    return subprocess.run(procsim_cmd("exec", m, "--", *cmd), capture_output=True, text=True, timeout=timeout)


def _py(m, code):
    """Run python code as the tool (this interpreter: no new dependency in the namespace)."""
    return _exec(m, sys.executable, "-c", code)


def _memory_block_online():
    """A host memory block's online file (memory hotplug is what chmem drives)."""
    blocks = sorted(glob.glob("/sys/devices/system/memory/memory*/online"))
    assert blocks, "this host has no memory hotplug in sysfs"
    return blocks[0]


def _host_memory_state() -> dict[str, str]:
    out = {}
    for p in sorted(glob.glob("/sys/devices/system/memory/memory*/state")):
        out[p] = open(p).read()
    return out


def _host_memtotal() -> str:
    return re.search(r"^MemTotal:.*$", open("/proc/meminfo").read(), re.M).group(0)


def assert_confined(m):
    """Read-only check, inside the namespace: /proc and /sys are read-only mounts and the tool's
    bounding set has neither CAP_SYS_ADMIN nor CAP_SYSLOG.  Run before anything that would
    change the host if exec were not confined."""
    r = _exec(m, "cat", "/proc/self/mountinfo", "/proc/self/status")
    assert r.returncode == 0, r.stderr
    opts = {}
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) > 6 and f[4] in ("/proc", "/sys", "/dev"):
            opts[f[4]] = set(f[5].split(","))
    assert all("ro" in opts[p] for p in ("/proc", "/sys", "/dev")), opts
    assert "nodev" in opts["/dev"]
    bnd = int(re.search(r"^CapBnd:\s*([0-9a-f]+)$", r.stdout, re.M).group(1), 16)
    assert not bnd & (1 << CAP_SYS_ADMIN) and not bnd & (1 << CAP_SYSLOG), hex(bnd)
    nnp = re.search(r"^NoNewPrivs:\s*(\d)$", r.stdout, re.M).group(1)
    assert nnp == "1"


WRITE_BACK = """
import errno, os, sys
out = []
for path in sys.argv[1:]:
    try:
        old = open(path).read()
        value = old.split("[")[1].split("]")[0] if "[" in old else old.strip()   # THP: the [selected] word
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, value.encode() + b"\\n")
        finally:
            os.close(fd)
        out.append("written")
    except OSError as e:
        out.append(errno.errorcode[e.errno])
print(" ".join(out))
"""


def test_host_kernel_files_refuse_writes_through_exec(mounted):
    """The issue's three files, each written with the value it already holds: EROFS, unchanged.
    Outside exec the same write-back would succeed (we are root)."""
    m = mounted("tiny")
    assert_confined(m)
    files = [PRINTK_RATELIMIT, THP_DEFRAG, _memory_block_online()]
    before = [open(p).read() for p in files]
    r = _exec(m, sys.executable, "-c", WRITE_BACK, *files)
    assert r.returncode == 0, r.stderr
    # the memory block: the mount's own memory tree is bound over the host's, so the tool wrote
    # the simulated block (which exists on tiny too); the host's file is not reachable at all
    simulated = (m / "sys/devices/system/memory" / os.path.basename(os.path.dirname(files[2]))).is_dir()
    assert r.stdout.split() == ["EROFS", "EROFS", "written" if simulated else "EROFS"]
    assert [open(p).read() for p in files] == before
    r = _exec(m, "sysctl", "-w", f"kernel.printk_ratelimit={before[0].strip()}")
    assert r.returncode != 0 and "kernel.printk_ratelimit" in r.stderr
    # a file nothing binds, anywhere below /sys, and a new file in a placeholder directory
    r = _py(m, "import os\n"
               "for p in ('/sys/kernel/mm/ksm/run', '/sys/fs/cgroup/memory/memory.limit_in_bytes',\n"
               "          '/sys/firmware/procsim-probe', '/proc/sys/kernel/hostname'):\n"
               "    try: os.open(p, os.O_WRONLY | os.O_CREAT, 0o600); print('open')\n"
               "    except OSError as e: print(e.strerror)\n")
    assert r.stdout.split("\n")[:4] == ["Read-only file system"] * 4, r.stdout + r.stderr


def test_devices_are_absent_or_unopenable_but_null_works(mounted):
    m = mounted("tiny")
    disks = [d for d in ("/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/mem") if os.path.exists(d)]
    assert disks
    r = _exec(m, sys.executable, "-c",
              "import os, sys\n"
              "print(open('/dev/null', 'w').write('x'), len(open('/dev/zero', 'rb').read(4)))\n"
              "for d in sys.argv[1:]:\n"
              "    try: os.open(d, os.O_RDONLY); print('open')\n"
              "    except OSError as e: print(e.strerror)\n", *disks)
    lines = r.stdout.splitlines()
    assert lines[0] == "1 4", r.stderr
    assert lines[1:] == ["Permission denied"] * len(disks)          # nodev: EACCES


def test_swap_mount_and_kernel_calls_are_refused(mounted):
    """swapon/swapoff, mount, umount (which would uncover the host's file), syslog(CLEAR /
    READ_CLEAR) and opening /proc/kmsg answer EPERM through exec; outside exec the same swapon
    reaches the kernel (ENOENT for a path that does not exist: the difference is exec's doing)."""
    m = mounted("tiny")
    code = ("import ctypes, errno, os\n"
            "c = ctypes.CDLL(None, use_errno=True)\n"
            "def e(r): return errno.errorcode[ctypes.get_errno()] if r < 0 else 'ok'\n"
            "print(e(c.swapon(b'/nonexistent-procsim-swap', 0)), e(c.swapoff(b'/nonexistent-procsim-swap')),\n"
            "      e(c.umount2(b'/proc/meminfo', 0)), e(c.mount(b'none', b'/tmp', b'tmpfs', 0, None)),\n"
            "      e(c.klogctl(5, None, 0)), e(c.klogctl(4, ctypes.create_string_buffer(64), 64)))\n"
            "try: os.open('/proc/kmsg', os.O_RDONLY); print('open')\n"      # its reads drain the host's log
            "except OSError as x: print(errno.errorcode[x.errno])\n")
    r = _py(m, code)
    assert r.stdout.split() == ["EPERM"] * 7, r.stdout + r.stderr
    outside = subprocess.run([sys.executable, "-c", "import ctypes, errno\n"
                              "c = ctypes.CDLL(None, use_errno=True)\n"
                              "c.swapon(b'/nonexistent-procsim-swap', 0); print(errno.errorcode[ctypes.get_errno()])"],
                             capture_output=True, text=True)
    assert outside.stdout.strip() == "ENOENT"
    r = _exec(m, "swapon", "--show")                       # reading swap state still works (simulated)
    assert r.returncode == 0, r.stderr


def test_chmem_does_not_touch_host_memory(mounted):
    """The issue's reproduction: `chmem -d 128M` offlined a host block.  Through exec it fails
    (the host's memory blocks are read-only) or acts on the simulation's blocks, never the host's."""
    m = mounted("tiny")
    assert_confined(m)
    state, total = _host_memory_state(), _host_memtotal()
    assert state
    r = _exec(m, "sh", "-c", f"if echo $(cat {PRINTK_RATELIMIT}) > {PRINTK_RATELIMIT}; then exit 99; fi; "
                             "exec chmem -d 128M")
    assert r.returncode != 99, "a host sysctl was writable: chmem not run"
    assert r.returncode != 0 or (m / "sys/devices/system/memory").is_dir(), r.stdout + r.stderr
    assert _host_memory_state() == state and _host_memtotal() == total


def test_simulated_sysctls_stay_writable(mounted):
    """Only the simulation's files are writable: sysctl -w vm.* reaches the simulation, and the
    host's value stays."""
    m = mounted("tiny")
    host = open("/proc/sys/vm/min_free_kbytes").read()
    old = int((m / "sysctl/vm/min_free_kbytes").read_text())
    new = old + 1024 if f"{old + 1024}\n" != host else old + 2048
    r = _exec(m, "sysctl", "-w", f"vm.min_free_kbytes={new}")
    assert (r.returncode, r.stdout) == (0, f"vm.min_free_kbytes = {new}\n"), r.stderr
    assert (m / "sysctl/vm/min_free_kbytes").read_text() == f"{new}\n"
    assert open("/proc/sys/vm/min_free_kbytes").read() == host
    r = _exec(m, "sh", "-c", "echo 12 > /proc/sys/vm/swappiness && cat /proc/sys/vm/swappiness")
    assert (r.returncode, r.stdout) == (0, "12\n"), r.stderr
    assert (m / "sysctl/vm/swappiness").read_text() == "12\n"


def _host_log() -> list[str]:
    r = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_dmesg_clear_keeps_the_host_log(mounted):
    """`dmesg -c` reads the simulated log and then calls syslog(SYSLOG_ACTION_CLEAR): through
    exec that gets EPERM (no CAP_SYSLOG), so the host's log is kept; `dmesg -C` the same.  The
    host's log is only read here (dmesg outside exec reads /dev/kmsg from the last clear on)."""
    m = mounted("tiny")
    (m / "control").write_text("kmalloc 64 tag=a\n")
    assert_confined(m)
    before = _host_log()
    assert before
    for flag in ("-c", "-C"):
        r = _exec(m, "dmesg", flag)
        assert r.returncode != 0 and "Operation not permitted" in r.stderr, (flag, r.stderr)
    after = _host_log()
    assert after[0] == before[0] and len(after) >= len(before)       # nothing cleared
    r = _exec(m, "dmesg")                                         # and dmesg reads the simulation
    assert r.returncode == 0 and "Linux version 6.18.44" not in r.stdout


def test_trace_cmd_finds_the_simulated_tracefs(mounted):
    """libtracefs takes the tracing dir from a tracefs line of /proc/mounts: the namespace has
    one at /sys/kernel/tracing (the real tracefs, read-only, covered by M's), so trace-cmd reads
    the simulation (#P: the simulated CPU count) and never mounts the host's."""
    m = mounted("seed-server")
    r = _exec(m, "cat", "/proc/mounts")
    assert any(line.split()[1:3] == ["/sys/kernel/tracing", "tracefs"] for line in r.stdout.splitlines())
    r = _exec(m, "trace-cmd", "show")
    assert r.returncode == 0, r.stderr
    assert "#P:48" in r.stdout                               # seed-server: 2 x 12 cores x 2 threads
    r = _exec(m, "sh", "-c", "echo 1 > /sys/kernel/tracing/tracing_on")     # M's knob: writable
    assert r.returncode == 0, r.stderr
    r = _exec(m, "trace-cmd", "list", "-e")                  # issue 29: the simulated events only
    assert r.returncode == 0, r.stderr
    events = r.stdout.split()
    assert "kmem:mm_page_alloc" in events and {e.split(":")[0] for e in events} == {"kmem", "vmscan", "oom"}


def test_lstopo_builds_the_simulated_topology(mounted):
    """hwloc off the host's CPUID and PCI and not limited to the tool's host affinity: the
    simulated packages, NUMA nodes and PUs, with no environment of the user's."""
    m = mounted("seed-server")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HWLOC_")}
    r = subprocess.run(procsim_cmd("exec", m, "--", "lstopo-no-graphics", "--only", "package"),
                       capture_output=True, text=True, env=env, timeout=120)
    assert (r.returncode, r.stdout) == (0, "Package L#0\nPackage L#1\n"), r.stderr
    assert "invalid information" not in r.stderr
    r = subprocess.run(procsim_cmd("exec", m, "--", "lstopo-no-graphics", "--only", "pu"),
                       capture_output=True, text=True, env=env, timeout=120)
    assert len(r.stdout.splitlines()) == 48, r.stdout
    r = subprocess.run(procsim_cmd("exec", m, "--", "lstopo-no-graphics", "--only", "numanode"),
                       capture_output=True, text=True, env=env, timeout=120)
    assert len(r.stdout.splitlines()) == 2, r.stdout


def test_setup_failure_never_starts_the_tool(tmp_path):
    """The namespace step fails closed: a bind of a source that vanished stops everything."""
    d = tmp_path / "m"
    d.mkdir()
    (d / "meminfo").write_text("MemTotal: 1 kB\n")
    argv = nsexec.command(str(d), ["echo", "TOOL-RAN"])
    (d / "meminfo").unlink()
    r = subprocess.run(argv, capture_output=True, text=True)
    assert r.returncode == nsexec.SETUP_FAILED and "TOOL-RAN" not in r.stdout
    assert "echo not started" in r.stderr and "mount /proc/meminfo" in r.stderr


def test_kernel_filesystems_and_device_nodes_elsewhere_are_closed_too(mounted, tmp_path):
    """Not only /proc, /sys and /dev: a second sysfs mounted anywhere is read-only through exec,
    and a device node on an ordinary filesystem does not open (every mount is nodev).  Outside
    exec both work (we are root): the difference is exec's doing."""
    m = mounted("tiny")
    assert_confined(m)
    node, sys2 = tmp_path / "null-node", tmp_path / "sys2"
    os.mknod(node, 0o600 | 0o020000, os.makedev(1, 3))          # a character device: /dev/null's
    sys2.mkdir()
    subprocess.run(["mount", "-t", "sysfs", "procsim-test-sysfs", str(sys2)], check=True)
    try:
        knob = sys2 / "kernel/mm/transparent_hugepage/defrag"
        before = knob.read_text()
        with open(node, "w") as f:                             # outside: it opens
            f.write("x")
        r = _exec(m, sys.executable, "-c", WRITE_BACK, str(knob), str(node))
        assert r.stdout.split() == ["EROFS", "EACCES"], r.stdout + r.stderr
        assert knob.read_text() == before
    finally:
        subprocess.run(["umount", str(sys2)], check=False)
        node.unlink()


def test_a_user_namespace_gets_no_root_to_map(mounted):
    """unshare -r inside exec cannot write uid_map (/proc is read-only), so a tool cannot make
    itself a fresh root to remount things from."""
    m = mounted("tiny")
    r = _exec(m, "unshare", "-r", "-m", "true")
    assert r.returncode != 0 and "uid_map" in r.stderr, r.stderr
