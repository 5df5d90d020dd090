"""The procsim command line: check, render, exec (over the stand-in mount), no tracebacks."""
import re
import subprocess

import pytest

from procsim.testing import CONFIGS, procsim_cmd
from procsim import nsexec


def sh(*args, **kw):
    return subprocess.run(procsim_cmd(*args), capture_output=True, text=True, **kw)


def test_help_lists_subcommands():
    r = sh("--help")
    assert r.returncode == 0
    for sub in ("check", "render", "mount", "umount", "exec"):
        assert re.search(rf"^\s+{sub}\s", r.stdout, re.M), sub


def test_check_summarises_nodes_zones_cpus():
    r = sh("check", CONFIGS / "seed-server.yaml")
    assert r.returncode == 0, r.stderr
    # 2 sockets x 12 cores x 2 threads; 8 DIMMs of 16 GiB (configs/seed-server.yaml)
    assert "2 NUMA nodes, 48 CPUs, 128 GiB in 8 DIMMs" in r.stdout
    assert "Node 0:" in r.stdout and "Node 1:" in r.stdout
    assert "cpus 0-11,24-35" in r.stdout                     # hyperthread siblings numbered last
    assert "DMA 15 MiB (3840 pages managed)" in r.stdout    # 6.x reserves the low MiB: pfn 256..4095


@pytest.mark.parametrize("name", sorted(p.stem for p in CONFIGS.glob("*.yaml")))
def test_check_accepts_every_shipped_config(name):
    r = sh("check", CONFIGS / f"{name}.yaml")
    assert r.returncode == 0 and r.stdout.startswith(f"{name} ("), r.stderr


@pytest.mark.parametrize("text,line", [
    ("sockets: [\n", 2),
    ("sockets:\n  - {cores: 2}\ndimms:\n  - {socket: 3, size: 1GiB}\n", 4),
    ("sockets:\n  - {cores: 2, bogus: 1}\ndimms: []\n", 2),
])
def test_check_bad_config_is_file_line_exit_2(tmp_path, text, line):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    r = sh("check", bad)
    assert r.returncode == 2
    assert r.stderr.startswith(f"{bad}:{line}: ")
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_check_missing_file():
    r = sh("check", "/nonexistent/machine.yaml")
    assert r.returncode == 2 and "cannot read" in r.stderr and "Traceback" not in r.stderr


def test_exec_needs_a_live_mount(tmp_path):
    r = sh("exec", tmp_path, "--", "true")
    assert r.returncode == 1 and "is not mounted" in r.stderr and "Traceback" not in r.stderr
    r = sh("exec", tmp_path)
    assert r.returncode == 2 and "no command" in r.stderr


def test_umount_of_nothing_fails_cleanly(tmp_path):
    r = sh("umount", tmp_path)
    assert r.returncode == 1 and "not mounted" in r.stderr


# --- exec over the stand-in mount ------------------------------------------------------------
def test_exec_binds_meminfo_for_free(fake_mounted):
    r = sh("exec", fake_mounted, "--", "free", "-k")
    assert r.returncode == 0, r.stderr
    mem = next(l for l in r.stdout.splitlines() if l.startswith("Mem:")).split()
    assert mem[1] == "16384"                                  # the fake's MemTotal, not the host's
    host = subprocess.run(["free", "-k"], capture_output=True, text=True).stdout
    assert "16384" not in next(l for l in host.splitlines() if l.startswith("Mem:"))   # nothing leaked


def test_exec_slabtop_sees_control_changes(fake_mounted):
    ctl = fake_mounted / "control"
    ctl.write_text("kmem_cache_create procsim_test 256\n")

    def row():
        r = sh("exec", fake_mounted, "--", "slabtop", "-o")
        assert r.returncode == 0, r.stderr
        return next(l.split() for l in r.stdout.splitlines() if l.split()[-1:] == ["procsim_test"])

    before = row()
    assert before[:2] == ["0", "0"]                           # OBJS ACTIVE
    ctl.write_text("kmem_cache_alloc procsim_test count=1000\n")
    after = row()
    # 1000 objects of 256 B at 16 per 4 KiB slab: 63 slabs, 1008 objects
    assert after[:2] == ["1008", "1000"] and after[4] == "63"


def test_exec_exit_status_is_the_commands(fake_mounted):
    r = sh("exec", fake_mounted, "--", "sh", "-c", "grep -c . /proc/meminfo; exit 7")
    assert r.returncode == 7
    assert r.stdout.strip() == "2"                            # the fake meminfo has two lines


def test_failed_bind_never_runs_the_tool(tmp_path):
    """If a bind fails the command must not run against the real /proc (clients.md §0.3)."""
    d = tmp_path / "m"
    d.mkdir()
    (d / "meminfo").write_text("MemTotal: 1 kB\n")
    argv = nsexec.command(str(d), ["echo", "TOOL-RAN"])
    (d / "meminfo").unlink()                                   # the source vanishes: mount --bind fails
    r = subprocess.run(argv, capture_output=True, text=True)
    assert r.returncode != 0 and "TOOL-RAN" not in r.stdout


def test_bind_script_covers_proc_and_sys(tmp_path):
    for rel in ("meminfo", "slabinfo", "control", "notinproc", "sys/devices/system/node/node0/meminfo",
                "sys/devices/system/cpu/online", "sys/firmware/dmi/tables/DMI"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    fake_sys = tmp_path / "hostsys"
    (fake_sys / "devices/system/node").mkdir(parents=True)
    (fake_sys / "devices/system/cpu").mkdir(parents=True)
    (fake_sys / "firmware").mkdir()
    lines = nsexec.bind_script(str(tmp_path), sys_root=str(fake_sys))
    assert lines == [
        f"mount --bind {tmp_path}/meminfo /proc/meminfo",
        f"mount --bind {tmp_path}/slabinfo /proc/slabinfo",
        f"mount --bind {tmp_path}/sys/devices/system/node {fake_sys}/devices/system/node",
        f"mount --bind {tmp_path}/sys/devices/system/cpu {fake_sys}/devices/system/cpu",
        f"mount -t tmpfs procsim-firmware {fake_sys}/firmware",       # the host has no DMI tables
        f"mkdir -p {fake_sys}/firmware/dmi/tables",
        f"mount --bind {tmp_path}/sys/firmware/dmi/tables {fake_sys}/firmware/dmi/tables",
    ]


def test_bind_script_puts_extfrag_where_debugfs_has_it(tmp_path):
    m = tmp_path / "m"
    (m / "debug/extfrag").mkdir(parents=True)
    (m / "debug/extfrag/unusable_index").write_text("x")
    host = tmp_path / "hostsys"
    (host / "kernel/debug").mkdir(parents=True)                 # debugfs not mounted: empty
    assert nsexec.bind_script(str(m), sys_root=str(host)) == [
        f"mount -t tmpfs procsim-debugfs {host}/kernel/debug",
        f"mkdir -p {host}/kernel/debug/extfrag",
        f"mount --bind {m}/debug/extfrag {host}/kernel/debug/extfrag",
    ]
    (host / "kernel/debug/extfrag").mkdir()                     # debugfs mounted: bind over it
    assert nsexec.bind_script(str(m), sys_root=str(host)) == [
        f"mount --bind {m}/debug/extfrag {host}/kernel/debug/extfrag"]
