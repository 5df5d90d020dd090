"""The control language's hold on the clock: `sleep DURATION`, one jiffy per successful
command, none for a failed one, and pcp decay reaching the files through sleep."""
import errno

import pytest

from procsim.control import Control, ControlError, parse
from procsim.views import uptime
from procsim.testing import boot

SEC = 1_000_000_000
JIFFY = SEC // 250                     # CONFIG_HZ=250


@pytest.fixture
def ctl():
    return Control(lambda: boot("tiny"))


def test_sleep_moves_uptime_by_its_duration(ctl):
    start = ctl.kernel.now_ns
    assert ctl.run("sleep 2").text == "ok"
    assert ctl.kernel.now_ns == start + 2 * SEC          # sleep itself costs no extra jiffy
    assert ctl.run("sleep 250ms").text == "ok"
    assert ctl.run("sleep 750000us").text == "ok"
    assert ctl.kernel.now_ns == start + 3 * SEC
    # /proc/uptime: 60 s of boot + 3 s; tiny has 2 cpus, each idle all along
    assert uptime.render(ctl.kernel) == b"63.00 126.00\n"


def test_each_successful_command_costs_one_jiffy_and_a_failed_one_none(ctl):
    k = ctl.kernel
    t0 = k.now_ns
    assert ctl.run("kmalloc 64").errno == 0
    assert k.now_ns == t0 + JIFFY
    assert ctl.run("kfree 99").errno == errno.ENOENT      # fails: the clock stays
    assert ctl.run("alloc_pages 11").errno == errno.EINVAL
    assert k.now_ns == t0 + JIFFY
    assert ctl.run("help").errno == 0                     # help changes nothing, not even time
    assert k.now_ns == t0 + JIFFY
    assert ctl.run("drain_pages").errno == 0
    assert k.now_ns == t0 + 2 * JIFFY


@pytest.mark.parametrize("bad", ["sleep", "sleep -1", "sleep 1.5", "sleep 01", "sleep 2h", "sleep 2 s",
                                 "sleep 2592001"])
def test_bad_durations_are_refused_and_leave_the_clock(ctl, bad):
    t0 = ctl.kernel.now_ns
    r = ctl.run(bad)
    assert r.errno == errno.EINVAL, r.text
    assert ctl.kernel.now_ns == t0


def test_sleep_spells_back_canonically():
    for text, ns in (("sleep 3", 3 * SEC), ("sleep 5ms", 5_000_000), ("sleep 7ns", 7)):
        cmd = parse(text)
        assert cmd.ns == ns
        assert parse(cmd.line()) == cmd
    with pytest.raises(ControlError):
        parse("sleep 0x10")


def test_pcp_high_decays_to_high_min_while_the_machine_sleeps(ctl):
    k = ctl.kernel
    z = k.zones[1]                                        # tiny: DMA32 holds the memory
    pcp = z.pcp[0]
    assert ctl.run("alloc_pages 0 count=3000 tag=t").errno == 0
    assert ctl.run("free_pages tag=t").errno == 0
    assert pcp.high > pcp.high_min                        # the frees raised high
    # decay_pcp_high() takes at least high/8 a second while above high_min; 40 s is plenty
    assert ctl.run("sleep 40").text == "ok"
    assert pcp.high == pcp.high_min and pcp.count <= pcp.high_min
