"""The kernel log: printk's ring, /dev/kmsg's one-record-per-read format, the real dmesg."""
import errno
import os
import subprocess

import pytest

from procsim.testing import FakeKernel, fake_views, procsim_cmd
from procsim.mm import printk
from procsim.mm.errors import MMError
from procsim.views import kmsg


class Clocked:
    """Just what printk needs of a kernel: a generation, a clock and the log ring."""
    def __init__(self):
        self.generation = 0
        self.now_ns = 0
        self.printk_ring = printk.PrintkRing()


def test_records_carry_seq_level_time_and_text():
    k = Clocked()
    printk.pr_warn(k, "first\n")
    k.now_ns = 12_345_678_901
    printk.pr_err(k, "second")
    printk.printk(k, "third")
    recs = list(printk.ring(k).records)
    assert [(r.seq, r.level, r.ts_usec, r.text) for r in recs] == [
        (0, 4, 0, "first"), (1, 3, 12_345_678, "second"), (2, 4, 12_345_678, "third")]
    assert k.generation == 3                          # a record is a state change


def test_kmsg_serves_one_record_per_read_escaped():
    k = Clocked()
    k.now_ns = 1_500_000
    printk.pr_info(k, "Mem-Info:")
    printk.printk(k, "a:1 b:2\n c:3 back\\slash")
    data, cur = printk.devkmsg_read(k, None, 8192)
    assert data == b"6,0,1500,-;Mem-Info:\n"
    data, cur = printk.devkmsg_read(k, cur, 8192)
    assert data == b"4,1,1500,-;a:1 b:2\\x0a c:3 back\\x5cslash\n"
    assert printk.devkmsg_read(k, cur, 8192) == (b"", 2)
    assert kmsg.render(k) == b"6,0,1500,-;Mem-Info:\n4,1,1500,-;a:1 b:2\\x0a c:3 back\\x5cslash\n"


def test_kmsg_small_buffer_is_einval_and_overrun_is_epipe():
    k = Clocked()
    printk.pr_warn(k, "x" * 50)
    with pytest.raises(MMError) as e:
        printk.devkmsg_read(k, 0, 20)
    assert e.value.errno == errno.EINVAL
    r = printk.ring(k)
    r.size = 3 * (10 + 16)                            # room for three 10-character records
    for i in range(5):
        printk.pr_warn(k, f"message{i:02d}x")
    assert [rec.seq for rec in r.records] == [3, 4, 5]
    with pytest.raises(MMError) as e:
        printk.devkmsg_read(k, 1, 8192)
    assert e.value.errno == errno.EPIPE
    assert printk.devkmsg_read(k, None, 8192)[0] == b"4,3,0,-;message02x\n"


def _kmsg_session():
    from procsim.session import Session

    def boot():
        k = FakeKernel()
        k.now_ns = 2_000_003_000
        printk.pr_warn(k, "procsim invoked oom-killer: test")
        printk.printk(k, "Mem-Info:")
        printk.printk(k, "active_anon:1 inactive_anon:2\n active_file:3")
        return k
    return Session(None, boot=boot, views={**fake_views(), **kmsg.FILES})


def test_kmsg_through_the_mount_one_record_per_read(mount_session):
    mp = mount_session(_kmsg_session)
    fd = os.open(mp / "kmsg", os.O_RDONLY)
    try:
        reads = [os.read(fd, 8192) for _ in range(4)]
    finally:
        os.close(fd)
    assert reads == [b"4,0,2000003,-;procsim invoked oom-killer: test\n", b"4,1,2000003,-;Mem-Info:\n",
                     b"4,2,2000003,-;active_anon:1 inactive_anon:2\\x0a active_file:3\n", b""]


def test_real_dmesg_prints_the_log(mount_session):
    mp = mount_session(_kmsg_session)
    r = subprocess.run(procsim_cmd("exec", mp, "--", "dmesg"), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # dmesg's own layout: [%5ld.%06ld] and continuation lines indented under the text
    assert r.stdout == ("[    2.000003] procsim invoked oom-killer: test\n"
                        "[    2.000003] Mem-Info:\n"
                        "[    2.000003] active_anon:1 inactive_anon:2\n"
                        "                active_file:3\n")
