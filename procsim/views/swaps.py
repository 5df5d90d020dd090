"""/proc/swaps as mm/swapfile.c swap_show() prints it (procsim.mm.swapfile)."""
from __future__ import annotations

from ..mm.swapfile import swap_show
from . import View

FILES = {"swaps": View(0o444, lambda k: swap_show(k).encode())}
