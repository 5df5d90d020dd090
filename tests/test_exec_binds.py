"""What `procsim exec` binds: every file or directory M provides that has a real counterpart
(issue 26 §5, 29 §1/§5, 30 §1), in either layout -- a mount's (/proc files at the root,
sysctl/vm, kmsg, debug/) or a tree laid out like / (proc/..., proc/sys/vm, dev/kmsg,
sys/kernel/debug/...)."""
from __future__ import annotations

import subprocess

import pytest

from procsim import nsexec
from procsim.testing import FakeKernel, procsim_cmd
from procsim.views import View


def _tree(root, *files):
    for rel in files:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")


def _host(root, *dirs, files=()):
    for d in dirs:
        (root / d).mkdir(parents=True, exist_ok=True)
    _tree(root, *files)


def test_proc_stat_and_loadavg_bind_from_the_mount_root(tmp_path):
    m = tmp_path / "m"
    _tree(m, "stat", "loadavg", "meminfo", "control", "log", "allocations", "pictures/index.html")
    proc = tmp_path / "proc"
    _host(proc, files=("stat", "loadavg", "meminfo", "log"))   # a /proc/log would still not take M's
    assert nsexec.bind_script(str(m), proc=str(proc), sys_root=str(tmp_path / "nosys")) == [
        f"mount --bind {m}/loadavg {proc}/loadavg",
        f"mount --bind {m}/meminfo {proc}/meminfo",
        f"mount --bind {m}/stat {proc}/stat",
    ]


def test_memory_blocks_bind_whole_when_the_host_has_them(tmp_path):
    m = tmp_path / "m"
    _tree(m, "sys/devices/system/memory/block_size_bytes", "sys/devices/system/memory/memory0/online",
          "sys/devices/system/cpu/cpu0/cache/index0/size")
    host = tmp_path / "sys"
    _host(host, "devices/system/cpu", "devices/system/memory/memory54")
    assert nsexec.bind_script(str(m), proc=str(tmp_path / "noproc"), sys_root=str(host)) == [
        f"mount --bind {m}/sys/devices/system/cpu {host}/devices/system/cpu",
        f"mount --bind {m}/sys/devices/system/memory {host}/devices/system/memory",
    ]
    (host / "devices/system/memory/memory54").rmdir()
    (host / "devices/system/memory").rmdir()                   # a host without memory hotplug:
    with pytest.raises(nsexec.NsExecError) as e:               # lsmem would see nothing, refuse
        nsexec.bind_script(str(m), proc=str(tmp_path / "noproc"), sys_root=str(host))
    assert str(e.value) == (f"{m}/sys/devices/system/memory cannot be bound: this host has no "
                            f"{host}/devices/system/memory to bind it over (a kernel without it), so the "
                            f"tool would miss the simulated one; nothing run")


def test_other_sys_files_bind_one_by_one_where_the_host_has_them(tmp_path):
    """A THP knob the simulation provides replaces the host's file; its siblings stay the host's
    (read-only in the namespace); a file or directory the host lacks is not bound."""
    m = tmp_path / "m"
    _tree(m, "sys/kernel/mm/transparent_hugepage/enabled", "sys/kernel/mm/transparent_hugepage/khugepaged/x",
          "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "sys/kernel/newthing/knob")
    host = tmp_path / "sys"
    _host(host, files=("kernel/mm/transparent_hugepage/enabled", "kernel/mm/transparent_hugepage/defrag",
                       "kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"))
    assert nsexec.bind_script(str(m), proc=str(tmp_path / "noproc"), sys_root=str(host)) == [
        f"mount --bind {m}/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages "
        f"{host}/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
        f"mount --bind {m}/sys/kernel/mm/transparent_hugepage/enabled {host}/kernel/mm/transparent_hugepage/enabled",
    ]


def test_a_tree_laid_out_like_root_binds_the_same_places(tmp_path):
    m = tmp_path / "m"
    _tree(m, "proc/meminfo", "proc/stat", "proc/sys/vm/min_free_kbytes", "dev/kmsg",
          "sys/kernel/debug/extfrag/unusable_index", "sys/kernel/slab/kmalloc-64/objects")
    proc, host, kmsg = tmp_path / "hproc", tmp_path / "hsys", tmp_path / "hdev/kmsg"
    _host(proc, "sys/vm", files=("meminfo", "stat"))
    _host(host, "kernel/slab", "kernel/debug/extfrag")
    _tree(tmp_path, "hdev/kmsg")
    assert nsexec.bind_script(str(m), proc=str(proc), sys_root=str(host), kmsg_dev=str(kmsg)) == [
        f"mount --bind {m}/proc/meminfo {proc}/meminfo",
        f"mount --bind {m}/proc/stat {proc}/stat",
        f"mount --bind {m}/sys/kernel/slab {host}/kernel/slab",
        f"mount --bind {m}/proc/sys/vm {proc}/sys/vm",
        f"mount --bind {m}/dev/kmsg {kmsg}",
        f"mount --bind {m}/sys/kernel/debug/extfrag {host}/kernel/debug/extfrag",
    ]


def test_a_symlink_where_a_file_would_bind_is_refused(tmp_path):
    m = tmp_path / "m"
    (m / "sys/kernel/mm/transparent_hugepage").mkdir(parents=True)
    (m / "sys/kernel/mm/transparent_hugepage/enabled").symlink_to("/etc/hostname")
    host = tmp_path / "sys"
    _host(host, files=("kernel/mm/transparent_hugepage/enabled",))
    with pytest.raises(nsexec.NsExecError, match="is a symlink"):
        nsexec.bind_plan(str(m), proc=str(tmp_path / "noproc"), sys_root=str(host))


def _session():
    """A mount with the views other rooms are adding (stat, loadavg, memory blocks, a THP knob),
    with recognisable contents."""
    from procsim.session import Session
    views = {"stat": View(0o444, lambda k: b"cpu  1 2 3 4 5 6 7 0 0 0\nprocsim-stat 1\n"),
             "loadavg": View(0o444, lambda k: b"9.99 8.88 7.77 1/42 4242\n"),
             "sys/devices/system/memory/block_size_bytes": View(0o444, lambda k: b"8000000\n"),
             "sys/devices/system/memory/memory7/state": View(0o644, lambda k: b"online\n"),
             "sys/kernel/mm/transparent_hugepage/enabled": View(0o644, lambda k: b"always [procsim] never\n")}
    return Session(None, boot=lambda: FakeKernel(), views=views)


def test_exec_shows_the_mounts_stat_loadavg_and_memory_blocks(mount_session):
    mp = mount_session(_session)
    r = subprocess.run(procsim_cmd("exec", mp, "--", "sh", "-c",
                                   "cat /proc/stat /proc/loadavg; ls /sys/devices/system/memory; "
                                   "cat /sys/kernel/mm/transparent_hugepage/enabled; "
                                   "echo never > /sys/kernel/mm/transparent_hugepage/defrag"),
                       capture_output=True, text=True, timeout=120)
    assert r.stdout == ("cpu  1 2 3 4 5 6 7 0 0 0\nprocsim-stat 1\n9.99 8.88 7.77 1/42 4242\n"
                        "block_size_bytes\nmemory7\nalways [procsim] never\n")
    assert "defrag: Read-only file system" in r.stderr       # the host's sibling: read-only


def test_shell_files_are_the_sessions():
    """nsexec names the shell's files without importing the session (the namespace step must
    start fast); they must stay the session's."""
    from procsim.session import ALLOCATIONS, CONTROL, LOG
    assert nsexec.SHELL_FILES == {CONTROL, LOG, ALLOCATIONS, nsexec.KMSG}


def test_exec_refuses_when_a_whole_directory_has_no_place(mount_session, tmp_path, monkeypatch, capsys):
    """The mount has memory blocks, the host (here a stand-in sysfs) has no
    /sys/devices/system/memory: `procsim exec` says so, exits non-zero and runs nothing."""
    from procsim import cli
    mp = mount_session(_session)
    host = tmp_path / "hostsys"
    (host / "devices/system/cpu").mkdir(parents=True)
    monkeypatch.setattr(nsexec, "SYS_ROOT", str(host))
    marker = tmp_path / "ran"
    with pytest.raises(SystemExit) as e:
        cli.main(["exec", str(mp), "--", "sh", "-c", f"echo ran > {marker}"])
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert f"no {host}/devices/system/memory to bind it over" in err and "nothing run" in err
    assert not marker.exists()


def test_kernel_sysctls_bind_one_by_one_where_the_host_has_them(tmp_path):
    """ftrace_enabled (trace-cmd record writes it) replaces the host's file; the host's other
    kernel sysctls stay (read-only); one the host lacks is not bound; kallsyms binds like any
    /proc file."""
    m = tmp_path / "m"
    _tree(m, "sysctl/kernel/ftrace_enabled", "sysctl/kernel/nosuchknob", "kallsyms")
    proc = tmp_path / "proc"
    _host(proc, files=("sys/kernel/ftrace_enabled", "sys/kernel/printk", "kallsyms"))
    assert nsexec.bind_script(str(m), proc=str(proc), sys_root=str(tmp_path / "nosys")) == [
        f"mount --bind {m}/kallsyms {proc}/kallsyms",
        f"mount --bind {m}/sysctl/kernel/ftrace_enabled {proc}/sys/kernel/ftrace_enabled",
    ]
