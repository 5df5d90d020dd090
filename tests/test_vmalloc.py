"""meminfo's VmallocUsed (mm/vmalloc.py): with CONFIG_VMAP_STACK a kernel stack is a vmalloc
area, so allocating stacks moves VmallocUsed with KernelStack (4.9+); 3.10 has no vmap
stacks, so there it does not move."""
import re

import pytest

from procsim.control import Control
from procsim.testing import boot
from procsim.views import meminfo

TINY = "sockets: [{cores: 2}]\ndimms: [{socket: 0, size: 256MiB}]\n"


def _kb(k, key):
    return int(re.search(rf"^{key}:\s+(\d+) kB", meminfo.render(k).decode(), re.M)[1])


@pytest.mark.parametrize("kernel,moves", [("6.1", True), ("6.18", True), ("3.10", False)])
def test_kernel_stacks_are_vmalloc_areas(kernel, moves):
    ctl = Control(lambda: boot(text=f'kernel: "{kernel}"\n' + TINY))
    k = ctl.kernel
    before = (_kb(k, "VmallocUsed"), _kb(k, "KernelStack"))
    assert ctl.run("alloc_pages 2 use=kernel_stack count=10 tag=t").text.startswith("ok")
    grown = _kb(k, "VmallocUsed") - before[0]
    assert _kb(k, "KernelStack") - before[1] == 160           # ten 16 KiB stacks
    assert grown == (160 if moves else 0)
