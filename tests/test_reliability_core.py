"""Issue 30 §3c/§5: small wrong answers of the control file, the description and the library."""
from __future__ import annotations

import errno
import os
import types

import pytest
from fuse import FuseOSError

from procsim import fs
from procsim.session import CONTROL
from procsim.testing import fake_session


def _control():
    """A ProcFS on a fake kernel (no mount) and an open control handle."""
    pfs = fs.ProcFS(fake_session())
    fi = types.SimpleNamespace(flags=os.O_RDWR, fh=0, direct_io=0)
    pfs.open("/" + CONTROL, fi)
    return pfs, fi


def _replies(pfs, fi) -> list[str]:
    return pfs.read("/" + CONTROL, 1 << 16, 0, fi).decode().splitlines()


def test_a_retry_is_the_same_bytes_not_a_prefix():
    """After `kmalloc 64 count=0` fails, write("kmalloc") is a new write (a fragment that waits
    for its newline), and write(" 128\\n") completes it to `kmalloc 128`, which runs; the old
    code took "kmalloc" as the failed line's retry (EINVAL) and then ran " 128"."""
    pfs, fi = _control()
    path = "/" + CONTROL
    with pytest.raises(FuseOSError) as e:
        pfs.write(path, b"kmalloc 64 count=0\n", 0, fi)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(FuseOSError) as e:               # the writer's retry: the same bytes
        pfs.write(path, b"kmalloc 64 count=0\n", 0, fi)
    assert e.value.errno == errno.EINVAL
    assert pfs.write(path, b"kmalloc", 0, fi) == 7
    assert pfs.write(path, b" 128\n", 0, fi) == 5
    replies = _replies(pfs, fi)
    assert replies[0].startswith("error EINVAL") and replies[-1].startswith("ok "), replies
    log = pfs.session.control.render_log().decode().splitlines()
    assert [line.split(" ", 1)[1].split(" -> ")[0] for line in log] == ["kmalloc 64 count=0", "kmalloc 128"], log


def test_after_a_short_count_a_prefix_of_the_rest_is_still_the_retry():
    """A writer told only a short count resends the rest, maybe in smaller pieces: a piece that
    is a prefix of the failed line fails with its errno (nothing runs twice); after that errno
    reached the writer, a new write runs normally."""
    pfs, fi = _control()
    path = "/" + CONTROL
    assert pfs.write(path, b"kmalloc 64\nkmalloc 64 count=0\n", 0, fi) == 11      # short count
    with pytest.raises(FuseOSError) as e:
        pfs.write(path, b"kmalloc 64 co", 11, fi)
    assert e.value.errno == errno.EINVAL
    assert pfs.write(path, b"kmalloc", 11, fi) == 7                           # told: a new write
    assert pfs.write(path, b" 128\n", 18, fi) == 5
    log = pfs.session.control.render_log().decode().splitlines()
    assert [line.split(" ", 1)[1].split(" -> ")[0] for line in log] == \
        ["kmalloc 64", "kmalloc 64 count=0", "kmalloc 128"], log


# --- descriptions that validate field by field but cannot boot: FILE:LINE, exit 2 -------------
import subprocess                                          # noqa: E402

import procsim                                             # noqa: E402
from procsim.testing import procsim_cmd                    # noqa: E402

ONE_GIB = "dimms:\n  - {socket: 0, size: 1GiB}\n"
UNBOOTABLE = {
    "deep": ("name: deep\nsockets:\n  - {cores: 1}\n" + ONE_GIB + "boot: " + "[" * 5000 + "]" * 5000 + "\n",
             6, "nested more than 100 levels deep"),
    "8192 cpus": ("name: many\nsockets:\n  - {cores: 4096, threads: 8192}\n" + ONE_GIB,
                  3, "no room for percpu node 0 (524288 pages): too many CPUs (8192)"),
    "1024 sockets": ("name: socks\nsockets:\n" + "  - {cores: 1}\n" * 1024 + ONE_GIB,
                     3, "too many CPUs (1024)"),
    "e820 over all RAM": ("name: e8\nsockets:\n  - {cores: 1}\n" + ONE_GIB + "reserved:\n  e820:\n"
                          "    - {start: 0, size: 1GiB}\n", 8, "the reserved e820 ranges leave too little RAM"),
}


@pytest.mark.parametrize("case", UNBOOTABLE, ids=str)
def test_unbootable_descriptions_name_the_line(case):
    text, line, words = UNBOOTABLE[case]
    with pytest.raises(procsim.machine.ConfigError) as e:
        procsim.machine.loads(text, "m.yaml")
    assert str(e.value).startswith(f"m.yaml:{line}: ") and words in str(e.value), str(e.value)


def test_unbootable_description_exits_2_with_one_line(tmp_path):
    for case, (text, line, _words) in UNBOOTABLE.items():
        if case == "1024 sockets":                      # slow to validate; the same path as 8192 cpus
            continue
        p = tmp_path / "m.yaml"
        p.write_text(text)
        r = subprocess.run(procsim_cmd("check", p), capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and r.stderr.startswith(f"{p}:{line}: "), (case, r.stderr)
        assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr, (case, r.stderr)


# --- the library: Simulation releases what it holds; a closed one refuses commands ---------------
def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_dropped_simulations_release_their_journal(tmp_path):
    import gc
    state = tmp_path / "state"
    procsim.Simulation("tiny", state=state).close()           # the journal exists, with its header
    before = _fds()
    for _ in range(50):
        sim = procsim.Simulation("tiny", state=state)
        del sim
    gc.collect()
    assert _fds() == before                                     # no descriptor kept
    with procsim.Simulation("tiny", state=state) as sim:       # nor the lock: it reopens
        assert sim.run("kmalloc 64")[0].startswith("ok ")
        with pytest.raises(Exception, match="in use"):
            procsim.Simulation("tiny", state=state)
    assert _fds() == before
    with procsim.Simulation("tiny", state=state) as again:     # the journal replays the kmalloc
        assert again.kernel.tasks.lookup(1) is not None


def test_run_after_close_is_refused_and_journals_nothing(tmp_path):
    from procsim.mm.check import state_digest
    state = tmp_path / "state"
    sim = procsim.Simulation("tiny", state=state)
    sim.run("kmalloc 64")
    sim.close()
    journal, digest = state.read_bytes(), state_digest(sim.kernel)
    with pytest.raises(procsim.CommandError) as e:
        sim.run("kmalloc 128")
    assert e.value.errno == errno.EBADF
    assert sim.session.execute(["kmalloc 128"])[-1].errno == errno.EBADF   # the session below too
    assert state.read_bytes() == journal and state_digest(sim.kernel) == digest
    assert sim.render("slabinfo").startswith(b"slabinfo")    # still renders
    sim.close()                                                 # twice is fine


def test_write_tree_checks_every_view_before_writing(tmp_path):
    sim = procsim.boot("tiny")
    root = tmp_path / "a" / "root"
    for bad in ("../../../escape", "no-such-view"):
        with pytest.raises(KeyError):
            sim.write_tree(root, views=["zoneinfo", bad])
    assert list(tmp_path.iterdir()) == []
    sim.write_tree(root, views=["zoneinfo"])
    assert (root / "proc/zoneinfo").read_bytes() == sim.render("zoneinfo")


# --- make setup waits for another apt-get's lock (issue 30 §4), with stand-in apt-get/dpkg ------
FAKE_APT = """#!/bin/bash
echo "$*" >> "$FAKE_STATE.calls"
c=$(cat "$FAKE_STATE")
if [ "$c" -gt 0 ]; then
  echo $((c - 1)) > "$FAKE_STATE"
  echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (apt-get)" >&2
  echo "E: Unable to lock directory /var/lib/apt/lists/" >&2
  exit 100
fi
"""


def _make_deps(tmp_path, locked: int, wait: int):
    from pathlib import Path
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for name, text in (("apt-get", FAKE_APT), ("dpkg", "#!/bin/sh\nexit 1\n"), ("id", "#!/bin/sh\necho 0\n")):
        (bin_ / name).write_text(text)
        (bin_ / name).chmod(0o755)
    state = tmp_path / "state"
    state.write_text(f"{locked}\n")
    env = dict(os.environ, PATH=f"{bin_}:{os.environ['PATH']}", FAKE_STATE=str(state))
    root = Path(__file__).resolve().parent.parent
    r = subprocess.run(["make", "-s", "-C", str(root), "deps", "APT_PKGS=procsim-test-pkg",
                        f"APT_LOCK_WAIT={wait}", "APT_LOCK_POLL=0.1"],
                       capture_output=True, text=True, env=env, timeout=60)
    calls = Path(f"{state}.calls").read_text().splitlines()
    return r, calls


def test_setup_waits_for_the_apt_lock_and_says_so(tmp_path):
    r, calls = _make_deps(tmp_path, locked=3, wait=600)
    assert r.returncode == 0, r.stderr
    assert "waiting for the apt lock, at most 600 s: E: Could not get lock /var/lib/apt/lists/lock" in r.stdout
    assert r.stdout.count("waiting for the apt lock") == 1               # said once
    assert [c.split()[2] for c in calls] == ["update"] * 4 + ["install"]
    assert all(c.startswith("-o DPkg::Lock::Timeout=") for c in calls)


def test_setup_gives_up_waiting_after_the_bound(tmp_path):
    r, calls = _make_deps(tmp_path, locked=10 ** 6, wait=1)
    assert r.returncode != 0 and "gave up after 1 s waiting for the apt lock" in r.stderr, r.stderr
    assert "install" not in " ".join(calls)


# --- tasks exit with their last allocation; pids increase and wrap as alloc_pid() (§3b) --------
TINY_SWAP = (procsim.machine.CONFIGS_DIR / "tiny.yaml").read_text() + "swap: 16MiB\n"


def test_oom_victims_get_distinct_increasing_pids():
    sim = procsim.Simulation(procsim.machine.loads(TINY_SWAP, "t.yaml"))
    for tag in "aba":
        with pytest.raises(procsim.CommandError):
            sim.run(f"alloc_pages 0 count=100000 tag={tag} use=anon gfp=GFP_HIGHUSER_MOVABLE")
    import re
    kills = re.findall(r"Out of memory: Killed process (\d+) \((\w+)\)", sim.render("kmsg").decode())
    assert kills == [("2", "a"), ("3", "b"), ("4", "a")]       # the old code: all three pid 2
    assert [t.pid for t in sim.kernel.tasks] == [1]


def test_a_task_exits_with_its_last_allocation():
    """2000 distinct tags, each allocating and freeing: the task list does not grow."""
    sim = procsim.boot("tiny")
    tasks = sim.kernel.tasks
    for i in range(2000):
        sim.run(f"kmalloc 64 tag=t{i}", f"kfree tag=t{i}")
    assert list(tasks) == [tasks.default]
    sim.run("kmalloc 64 tag=t0")
    assert tasks.find_task("t0").pid == 2002                    # pids 2..2001 were used once each


def test_pid_max_follows_the_cpus_and_pids_wrap_past_it():
    from procsim.mm.task import PID_MAX_LIMIT, RESERVED_PIDS
    assert procsim.boot("tiny").kernel.tasks.pid_max == 32768              # PID_MAX_DEFAULT (2 cpus)
    many = (procsim.machine.CONFIGS_DIR / "tiny.yaml").read_text().replace(
        "{model: \"procsim teaching CPU\", cores: 1, threads: 2}", "{cores: 32, threads: 64}")
    k = procsim.Simulation(procsim.machine.loads(many, "m.yaml")).kernel
    assert k.nr_cpu_ids == 64 and k.tasks.pid_max == 1024 * 64             # PIDS_PER_CPU_DEFAULT each
    assert PID_MAX_LIMIT == 4 * 1024 * 1024
    sim = procsim.boot("tiny")
    tasks = sim.kernel.tasks
    sim.run("kmalloc 64 tag=keep")                                          # pid 2
    tasks._next_pid = tasks.pid_max - 1
    sim.run("kmalloc 64 tag=last")
    assert tasks.find_task("last").pid == 32767
    tasks.task("x").pid                                                     # noqa: B018
    assert tasks.find_task("x").pid == RESERVED_PIDS                        # wrapped to 300
    tasks._next_pid = 301
    tasks.task("blocker")                                                   # 301
    tasks._by_tag["blocker"].pid = 302                                      # 302 in use
    tasks._next_pid = 302
    assert tasks.task("y").pid == 303                                       # skips the pid in use


# --- a long journal replay reports progress and the mount waits while it advances (§1b) -------
def test_wait_mounted_is_not_cut_off_while_the_daemon_advances(tmp_path):
    from procsim.harness import wait_mounted
    calls = []

    def progress():                                  # advances for 40 polls, then stops
        calls.append(1)
        return min(len(calls), 40)
    with pytest.raises(RuntimeError, match="not mounted"):
        wait_mounted(tmp_path, timeout=0.2, progress=progress)
    assert len(calls) > 40                           # 0.2 s is ~10 polls: it was extended


def test_replay_tells_its_progress_line_by_line(tmp_path, capsys, monkeypatch):
    from procsim import cli
    from procsim.session import Session
    state = tmp_path / "state"
    with procsim.Simulation("tiny", state=state) as sim:
        for i in range(300):
            sim.run(f"kmalloc 64 tag=t{i}")
    seen = []
    Session(procsim.load("tiny"), state=state, progress=lambda n, off, size, raw: seen.append((n, off, raw))).close()
    assert [n for n, _, _ in seen] == list(range(1, 302))            # header + 300 commands
    assert seen[-1][2] == b"kmalloc 64 tag=t299" and seen[-1][1] < state.stat().st_size
    monkeypatch.setattr(cli, "REPLAY_REPORT", 0.005)
    args = types.SimpleNamespace(config="tiny")
    cli._session(args, state=str(state)).close()
    err = capsys.readouterr().err
    assert f"procsim: replaying {state}: line " in err, err


def test_a_task_running_a_kmalloc_batch_does_not_exit_under_it():
    """Reclaim during x's kmalloc batch drops x's last page cache: x is still running its
    command, so it keeps its pid and the objects are its; a batch that fails leaves x with
    nothing, and x exits."""
    found = False
    for count in range(13000, 13400, 6):                     # the batch that just fits, taking it all
        sim = procsim.Simulation(procsim.machine.loads(TINY_SWAP, "t.yaml"))
        sim.run("alloc_pages 0 count=1000 tag=x use=pagecache gfp=GFP_HIGHUSER_MOVABLE")
        tasks = sim.kernel.tasks
        pid = tasks.find_task("x").pid
        try:
            sim.run(f"kmalloc 4096 count={count} tag=x")
        except procsim.CommandError as e:
            assert e.errno == errno.ENOMEM and tasks.find_task("x") is None    # failed, owns nothing
            break
        t = tasks.find_task("x")
        assert t.pid == pid and t.objects == count
        check(sim.kernel)
        found = found or t.rss[0] == 0                       # MM_FILEPAGES: all reclaimed under it
    assert found


from procsim.mm.check import check  # noqa: E402
