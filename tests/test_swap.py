"""Swap from the machine description: /proc/swaps, meminfo, show_mem, and the real free/swapon."""
import re
import subprocess

import pytest

from procsim.testing import CONFIGS, boot, mounted_yaml, procsim_cmd
from procsim.machine import ConfigError, loads
from procsim.mm import show_mem
from procsim.views import meminfo, swaps

VM = (CONFIGS / "seed-vm.yaml").read_text()


def with_swap(size: str) -> str:
    return VM.rstrip("\n") + f"\nswap: {size}\n"


@pytest.mark.parametrize("size,words", [
    ("8KiB", "at least 40960 bytes"), ("40961", "whole number of 4096-byte pages"), ("65TiB", "absurdly large")])
def test_bad_swap_sizes_name_the_line(size, words):
    text = with_swap(size)
    with pytest.raises(ConfigError) as e:
        loads(text, "m.yaml")
    assert str(e.value).startswith(f"m.yaml:{text.count(chr(10))}: "), str(e.value)
    assert words in str(e.value)


def test_proc_swaps_and_meminfo_follow_the_swap_file():
    k = boot(text=with_swap("2GiB"))
    # 2 GiB = 524288 pages, one of them the header: 524287 pages = 2097148 kB (what a real 2G swapfile shows)
    assert swaps.FILES["swaps"].render(k) == (
        b"Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
        b"/swapfile                               file\t\t2097148\t\t0\t\t-2\n")
    mem = meminfo.render(k).decode()
    assert re.search(r"^SwapTotal: +2097148 kB$", mem, re.M) and re.search(r"^SwapFree: +2097148 kB$", mem, re.M)
    plain = meminfo.render(boot("seed-vm")).decode()
    commit = lambda t: int(re.search(r"^CommitLimit: +(\d+) kB$", t, re.M)[1])
    assert commit(mem) - commit(plain) == 2097148         # vm_commit_limit() adds total_swap_pages
    lines = show_mem.show_mem_lines(k)
    assert "Free swap  = 2097148kB" in lines and "Total swap = 2097148kB" in lines


def test_no_swap_no_lines():
    k = boot("tiny")
    assert swaps.FILES["swaps"].render(k) == b"Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"


def test_real_free_and_swapon_see_the_swap(tmp_path):
    with mounted_yaml(tmp_path, with_swap("1GiB")) as mp:
        r = subprocess.run(procsim_cmd("exec", mp, "--", "free", "-k"), capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        swap_row = r.stdout.splitlines()[2].split()
        assert swap_row == ["Swap:", "1048572", "0", "1048572"]       # 262143 usable pages
        r = subprocess.run(procsim_cmd("exec", mp, "--", "swapon", "--show=NAME,TYPE,SIZE,USED,PRIO", "--bytes"),
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["NAME", "TYPE", "SIZE", "USED", "PRIO",
                                    "/swapfile", "file", str(1048572 * 1024), "0", "-2"]
