"""The kernel-version seam: k.profile is fixed at boot and what differs between versions
is read from it, not from constants scattered over the core and views."""
from dataclasses import replace

from procsim.mm.kernel import Kernel
from procsim.mm.profile import DEFAULT, LINUX_6_18, PROFILES
from procsim.views import vmstat, zoneinfo
from procsim.testing import boot


def test_6_18_is_the_default_profile():
    k = boot("tiny", slab=False)
    assert k.profile is DEFAULT is LINUX_6_18 is PROFILES["6.18"]
    assert LINUX_6_18.min_free_kbytes_max == 262144 and LINUX_6_18.stat_threshold_max == 125


def test_a_profile_chooses_tables_and_limits_at_boot():
    k0 = boot("seed-server", slab=False)
    older = replace(LINUX_6_18, version="test", vm_event_items=("pgfree", "pgalloc_normal"),
                    node_stat_items=LINUX_6_18.node_stat_items[::-1], stat_threshold_max=8)
    k = Kernel(k0.machine, slab=False, profile=older)
    assert {z.stat_threshold for z in k0.zones if z.populated} != {8}
    assert {z.stat_threshold for z in k.zones if z.populated} == {8}
    text = vmstat.render(k).decode().splitlines()
    names = [line.split()[0] for line in text]
    assert names[-3:] == ["pgfree", "pgalloc_normal", "nr_unstable"]
    node_items = [n for n in names if n in LINUX_6_18.node_stat_items]
    assert node_items == list(LINUX_6_18.node_stat_items[::-1])     # printed in the profile's order
    z = zoneinfo.render(k).decode()
    assert z.index("nr_kernel_file_pages") < z.index("nr_inactive_anon")
