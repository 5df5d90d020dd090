"""The OOM killer: oom_badness by hand, the victim choice, the report byte for byte against
lines a real 6.x kernel printed (the stress-ng OOM quoted in the docstring of each test)."""
import re
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oracle.run import parse_capture       # noqa: E402
from procsim import machine                # noqa: E402
from procsim.control import Control        # noqa: E402
from procsim.mm.kernel import Kernel       # noqa: E402
from procsim.testing import boot           # noqa: E402
from procsim.mm import gfp as G                                     # noqa: E402
from procsim.mm import oom_kill, printk, show_mem                   # noqa: E402
from procsim.mm.oom_kill import OomTask, oom_badness, select_bad_process   # noqa: E402

# From a real kernel's OOM report (6.x, x86-64):
# [    114]     0   114     7500     4676       96      452      4128    90112        0         -1000 stress-ng
# [    116]     0   116  2628942  1995298  1995157      141         0 16052224        0          1000 stress-ng-vm
# oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/,task=stress-ng-vm,pid=116,uid=0
# Out of memory: Killed process 116 (stress-ng-vm) total-vm:10515768kB, anon-rss:7980628kB, file-rss:564kB, shmem-rss:0kB, UID:0 pgtables:15676kB oom_score_adj:1000
STRESS = OomTask(114, "stress-ng", total_vm=7500, rss_anon=96, rss_file=452, rss_shmem=4128,
                 pgtables_bytes=90112, oom_score_adj=-1000)
STRESS_VM = OomTask(116, "stress-ng-vm", total_vm=2628942, rss_anon=1995157, rss_file=141,
                    pgtables_bytes=16052224, oom_score_adj=1000)


def test_dump_task_lines_match_the_kernels():
    assert oom_kill.dump_task_line(STRESS) == (
        "[    114]     0   114     7500     4676       96      452      4128    90112        0         -1000 stress-ng")
    assert oom_kill.dump_task_line(STRESS_VM) == (
        "[    116]     0   116  2628942  1995298  1995157      141         0 16052224        0          1000 stress-ng-vm")


def test_oom_badness_by_hand():
    t = OomTask(1, "a", rss_anon=1000, rss_file=200, rss_shmem=30, swapents=7, pgtables_bytes=3 * 4096 + 100)
    assert oom_badness(t, 500_000) == 1000 + 200 + 30 + 7 + 3
    t.oom_score_adj = 250                                   # 250 * (500000 // 1000) = 125000
    assert oom_badness(t, 500_000) == 1240 + 125_000
    t.oom_score_adj = -999                                  # negative scores are allowed
    assert oom_badness(t, 1_999) == 1240 - 999
    t.oom_score_adj = -1000
    assert oom_badness(t, 500_000) == oom_kill.LONG_MIN


def test_select_bad_process_highest_later_on_tie_never_minus_1000():
    a, b, c = OomTask(1, "a", rss_anon=10), OomTask(2, "b", rss_anon=30), OomTask(3, "c", rss_anon=30)
    assert select_bad_process([a, b, c], 1000)[0] is c      # equal points: the later task
    assert select_bad_process([a, b], 1000) == (b, 30)
    huge = OomTask(4, "huge", rss_anon=10**6, oom_score_adj=-1000)
    assert select_bad_process([huge, a], 1000)[0] is a
    assert select_bad_process([huge], 1000) == (None, oom_kill.LONG_MIN)


def test_may_oom_follows_the_slow_path_rules():
    assert oom_kill.may_oom(G.GFP_KERNEL, 0, 2)
    assert oom_kill.may_oom(G.GFP_HIGHUSER_MOVABLE, 3, 3)
    assert not oom_kill.may_oom(G.GFP_KERNEL, 4, 2)                       # costly order
    assert not oom_kill.may_oom(G.GFP_ATOMIC, 0, 2)                       # cannot reclaim
    assert not oom_kill.may_oom(G.GFP_NOFS, 0, 2)                         # !__GFP_FS
    assert not oom_kill.may_oom(G.GFP_KERNEL | G.__GFP_NORETRY, 0, 2)
    assert not oom_kill.may_oom(G.GFP_KERNEL | G.__GFP_RETRY_MAYFAIL, 0, 2)
    assert not oom_kill.may_oom(G.GFP_KERNEL | G.__GFP_THISNODE, 0, 2)
    assert not oom_kill.may_oom(G.GFP_DMA32 | G.GFP_KERNEL, 0, 1)          # lowmem only


def test_the_report_and_the_kill():
    k = boot("tiny")
    killed = []
    current = OomTask(114, "stress-ng", oom_score_adj=-1000)
    victim = oom_kill.out_of_memory(k, [STRESS, STRESS_VM], G.GFP_HIGHUSER_MOVABLE | G.__GFP_COMP, 0,
                                    current=current, kill=killed.append)
    assert victim is STRESS_VM and killed == [STRESS_VM]
    assert k.vm_events["oom_kill"] == 1
    recs = list(printk.ring(k).records)
    texts = [r.text for r in recs]
    assert texts[0] == ("stress-ng invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), "
                        "order=0, oom_score_adj=-1000")
    mem = show_mem.show_mem_lines(k, max_zone_idx=G.gfp_zone(G.GFP_HIGHUSER_MOVABLE))
    assert texts[1:1 + len(mem)] == mem
    i = 1 + len(mem)
    if texts[i] == "Unreclaimable slab info:":              # tiny's slab outweighs its (empty) LRU
        assert oom_kill.should_dump_unreclaim_slab(k)
        i += len(oom_kill.dump_unreclaimable_slab(k))
    assert texts[i:] == [
        "Tasks state (memory values in pages):",
        "[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes swapents oom_score_adj name",
        "[    114]     0   114     7500     4676       96      452      4128    90112        0         -1000 stress-ng",
        "[    116]     0   116  2628942  1995298  1995157      141         0 16052224        0          1000 stress-ng-vm",
        "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/,"
        "task=stress-ng-vm,pid=116,uid=0",
        "Out of memory: Killed process 116 (stress-ng-vm) total-vm:10515768kB, anon-rss:7980628kB, file-rss:564kB, "
        "shmem-rss:0kB, UID:0 pgtables:15676kB oom_score_adj:1000"]
    levels = [r.level for r in recs[i:]]
    assert levels == [6, 6, 6, 6, 6, 3]                      # pr_info ..., pr_err for the kill
    assert recs[0].level == 4


def test_no_killable_task():
    k = boot("tiny")
    assert oom_kill.out_of_memory(k, [STRESS], G.GFP_KERNEL, 0) is None
    assert printk.ring(k).records[-1].text == "Out of memory and no killable processes..."
    assert k.vm_events.get("oom_kill", 0) == 0


def test_unreclaimable_slab_dump_by_hand(seed_vm):
    lines = oom_kill.dump_unreclaimable_slab(seed_vm)
    assert lines[:2] == ["Unreclaimable slab info:", "Name                      Used          Total"]
    c = seed_vm.slab.find("TCP")
    a, n, _, _ = c.slabinfo()
    assert f"{'TCP':<17} {a * c.size // 1024:10d}KB {n * c.size // 1024:10d}KB" in lines
    names = {line.split()[0] for line in lines[2:]}
    assert "vm_area_struct" in names
    assert not names & {"dentry", "inode_cache", "radix_tree_node"}    # SLAB_RECLAIM_ACCOUNT caches


def _shape(line: str) -> str:
    """A report line with what depends on the machine's state taken out: numbers (and the
    column padding before them), gfp masks, free-list type letters, all_unreclaimable's answer."""
    line = re.sub(r"gfp_mask=0x[0-9a-f]+\([^)]*\)", "gfp_mask=G", line)
    line = re.sub(r" \([UMEHCI]+\)", "", line)
    line = re.sub(r"\? (yes|no)", "? A", line)
    line = re.sub(r"  +(?=\d)", " ", line)
    return re.sub(r"\d+", "N", line)


def test_the_report_has_the_real_6_1_kernels_lines():
    """The OOM report of a real Debian 6.1 kernel (the oracle's one-node machine in qemu,
    oracle/init.sh: awk grows until the kernel kills it), line for line against procsim's
    on the same machine and kernel profile when a tag grows the same way.  dump_stack()'s
    lines (CPU, Hardware name, Call Trace) are the part procsim does not print."""
    real = parse_capture((ROOT / "tests" / "data" / "oracle" / "one-node.txt").read_text())["oom"]
    lines, in_stack = [], False
    for line in real.splitlines():
        text = re.sub(r"^\[ *\d+\.\d+\] ?", "", line)
        if text.startswith("CPU: "):
            in_stack = True
        if not in_stack:
            lines.append(text)
        if text.strip() == "</TASK>":
            in_stack = False
    m = machine.load(ROOT / "oracle" / "machines" / "one-node.yaml")
    ctl = Control(lambda: Kernel(m))
    while not ctl.run("alloc_pages 0 gfp=GFP_HIGHUSER_MOVABLE use=anon count=10000 tag=awk").errno:
        pass
    recs = [r.text for r in printk.ring(ctl.kernel).records]
    start = max(i for i, t in enumerate(recs) if "invoked oom-killer" in t)
    ours = [line for t in recs[start:] for line in t.split("\n")]
    assert [_shape(x) for x in ours] == [_shape(x) for x in lines]
