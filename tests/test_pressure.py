"""Memory pressure through the control language and the mount: touch, reclaim of a task's page
cache, the OOM killer choosing by oom_badness, its report in the real dmesg, sysctl lines."""
import errno
import os
import re
import subprocess

import pytest

from procsim.testing import boot, procsim_cmd
from procsim.control import Control
from procsim.mm import printk
from procsim.mm.task import RECLAIMED
from procsim.views import meminfo

HUM = "gfp=GFP_HIGHUSER_MOVABLE"


@pytest.fixture
def ctl():
    return Control(lambda: boot("tiny"))


def run(ctl, line):
    r = ctl.run(line)
    return r.errno, r.text


def kb(k, key) -> int:
    return int(re.search(rf"^{re.escape(key)}:\s+(\d+) kB$", meminfo.render(k).decode(), re.M)[1])


def test_touch_twice_activates(ctl):
    assert run(ctl, f"alloc_pages 0 {HUM} use=pagecache count=10 tag=f") == (0, "ok 1-10")
    assert run(ctl, "touch tag=f") == (0, "ok touched 10")
    assert kb(ctl.kernel, "Active(file)") == 0
    assert run(ctl, "touch 1-4") == (0, "ok touched 4")
    k = ctl.kernel
    assert (kb(k, "Active(file)"), kb(k, "Inactive(file)"), k.vm_events["pgactivate"]) == (16, 24, 4)
    assert run(ctl, "touch tag=nobody")[0] == errno.ENOENT


def test_a_tasks_page_cache_is_reclaimed_through_its_ids(ctl):
    k = ctl.kernel
    assert run(ctl, f"alloc_pages 0 {HUM} use=pagecache count=3000 tag=cache")[0] == 0
    assert run(ctl, "touch 1-100")[0] == 0 and run(ctl, "touch 1-100")[0] == 0     # 1-100 active
    free = k.nr_free_pages
    assert run(ctl, f"alloc_pages 0 {HUM} use=anon count={free + 1000} tag=anon")[0] == 0
    states = [k.tasks.lookup(i).state for i in range(1, 3001)]
    gone = states.count(RECLAIMED)
    assert gone >= 1000 - (free - k.nr_free_pages) and k.vm_events["pgsteal_kswapd"] + \
        k.vm_events.get("pgsteal_direct", 0) >= gone
    assert all(s != RECLAIMED for s in states[:100]) or k.vm_events.get("pgdeactivate", 0) > 0
    assert kb(k, "Cached") == (3000 - gone) * 4
    first = states.index(RECLAIMED) + 1
    code, text = run(ctl, f"free_pages {first}")
    assert code == errno.ENOENT and "reclaimed" in text
    assert f"\n{first} " not in ctl.render_allocations().decode()
    assert run(ctl, "free_pages tag=cache") == (0, f"ok freed {3000 - gone}")


def test_oom_kills_the_biggest_task_and_then_the_allocating_one(ctl):
    k = ctl.kernel
    assert run(ctl, f"alloc_pages 0 {HUM} use=anon count=500 tag=small")[0] == 0
    assert run(ctl, f"alloc_pages 0 {HUM} use=anon count=8000 tag=big")[0] == 0
    assert run(ctl, f"alloc_pages 0 {HUM} use=anon count=9000 tag=hog")[0] == 0    # big dies for it
    assert k.vm_events["oom_kill"] == 1
    assert run(ctl, "free_pages tag=big")[0] == errno.ENOENT
    texts = [r.text for r in printk.ring(k).records]
    assert "Out of memory: Killed process 3 (big) total-vm:32000kB, anon-rss:32000kB, file-rss:0kB, " \
           "shmem-rss:0kB, UID:0 pgtables:0kB oom_score_adj:0" in texts
    # now hog is the biggest: its next allocation kills hog itself and fails
    code, text = run(ctl, f"alloc_pages 0 {HUM} use=anon count=9000 tag=hog")
    assert code == errno.ENOMEM and "killed process 4 (hog)" in text
    assert k.vm_events["oom_kill"] == 2 and k.tasks.find_task("hog").get_mm_rss() == 0
    assert k.tasks.find_task("small").get_mm_rss() == 500


def test_oom_score_adj_steers_the_choice(ctl):
    k = ctl.kernel
    assert run(ctl, "oom_score_adj -1000 tag=big") == (0, "ok")
    assert run(ctl, "oom_score_adj 1000 tag=small") == (0, "ok")
    assert run(ctl, "oom_score_adj 1001 tag=small")[0] == errno.EINVAL
    assert run(ctl, "oom_score_adj 5")[0] == errno.EINVAL
    assert run(ctl, f"alloc_pages 0 {HUM} use=anon count=500 tag=small")[0] == 0
    assert run(ctl, f"alloc_pages 0 {HUM} use=anon count=8000 tag=big")[0] == 0
    code, text = run(ctl, f"alloc_pages 0 {HUM} use=anon count=7000 tag=hog")   # more than tiny has left
    # small (500 + 1000 * totalpages/1000 points) dies first; what it frees is not enough, and
    # with big out of reach (-1000) hog itself is next: its write fails naming it
    assert code == errno.ENOMEM and "killed process 4 (hog)" in text
    kills = [r.text for r in printk.ring(k).records if r.text.startswith("Out of memory: Killed")]
    assert [x.split(" total-vm")[0] for x in kills] == ["Out of memory: Killed process 3 (small)",
                                                        "Out of memory: Killed process 4 (hog)"]
    assert k.vm_events["oom_kill"] == 2 and k.tasks.find_task("small").get_mm_rss() == 0
    assert k.tasks.find_task("big").get_mm_rss() == 8000


def test_untagged_allocations_are_never_oom_victims(ctl):
    k = ctl.kernel
    code, _ = run(ctl, f"alloc_pages 0 {HUM} use=anon count=20000")
    assert code == errno.ENOMEM and k.vm_events.get("oom_kill", 0) == 0
    assert "Out of memory and no killable processes..." in [r.text for r in printk.ring(k).records]


def test_sysctl_command(ctl):
    assert run(ctl, "sysctl vm.swappiness 10") == (0, "ok 10")
    assert run(ctl, "sysctl lowmem_reserve_ratio 128,64") == (0, "ok 128,64,32,0,0")
    assert run(ctl, "sysctl vm.swappiness 201")[0] == errno.EINVAL
    assert run(ctl, "sysctl vm.nosuch 1")[0] == errno.ENOENT
    assert ctl.kernel.swappiness == 10


def test_oom_report_in_the_real_dmesg(mounted):
    m = mounted("tiny")
    fd = os.open(m / "control", os.O_WRONLY)
    try:
        os.write(fd, f"alloc_pages 0 {HUM} use=anon count=8000 tag=big\n".encode())
        os.write(fd, f"alloc_pages 0 {HUM} use=anon count=9000 tag=hog\n".encode())
    finally:
        os.close(fd)
    r = subprocess.run(procsim_cmd("exec", m, "--", "dmesg"), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = [line[15:] for line in r.stdout.splitlines()]      # after "[    0.000000] "
    head = out.index("hog invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0")
    assert out[head + 1] == "Mem-Info:"
    tasks = out.index("Tasks state (memory values in pages):")
    assert out[tasks + 2:tasks + 5] == [
        "[      1]     0     1        0        0        0        0         0        0        0         -1000 init",
        "[      2]     0     2     8000     8000     8000        0         0        0        0             0 big",
        f"[      3]     0     3 {out[tasks + 4].split()[4]:>8} {out[tasks + 4].split()[4]:>8} "
        f"{out[tasks + 4].split()[4]:>8}        0         0        0        0             0 hog"]
    assert out[tasks + 5].startswith("oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,"
                                     "global_oom,task_memcg=/,task=big,pid=2,uid=0")
    assert out[tasks + 6] == ("Out of memory: Killed process 2 (big) total-vm:32000kB, anon-rss:32000kB, "
                              "file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:0kB oom_score_adj:0")
    vmstat = dict(line.split() for line in (m / "vmstat").read_text().splitlines())
    assert vmstat["oom_kill"] == "1"
