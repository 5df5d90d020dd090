"""procsim's pytest plugin (registered through the ``pytest11`` entry point): simulated
machines' /proc and /sys files as test fixtures, for code that parses them.

Fixtures:

- ``procsim_machine``: the machine's name (``seed-server`` unless parametrised, see below).
- ``procsim_sim``: a :class:`procsim.Simulation` of it, booted in process.
- ``procsim_tree``: a temporary directory laid out like ``/`` (``proc/zoneinfo``,
  ``sys/devices/system/node/node0/meminfo``, ...) holding every file; no FUSE needed.
- ``procsim_mount``: the machine mounted for real through FUSE (live files: reads see what
  ``control`` writes did), unmounted afterwards.  The mount is flat like procsim's
  (``M/zoneinfo``, ``M/sys/...``, ``M/control``).  Skipped only where FUSE is absent
  (no /dev/fuse or no fusermount); everywhere else a failure to mount is an error.

Machines: ``@pytest.mark.procsim_machines("tiny", "big-4s-1t")`` (or ``"all"``) runs a test once
per machine; ``--procsim-machines=a,b`` (or ``all``) does it for every test without the marker.
``@pytest.mark.procsim_commands("kmalloc 64 count=100", ...)`` applies control commands first.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

DEFAULT = "seed-server"


def pytest_addoption(parser):
    parser.getgroup("procsim").addoption(
        "--procsim-machines", metavar="NAMES", default=None,
        help="comma-separated machines (shipped names, YAML paths, or 'all') for tests using procsim fixtures")


def pytest_configure(config):
    config.addinivalue_line("markers", "procsim_machines(*names): run the test once per procsim machine "
                                       "(shipped names, YAML paths, or 'all')")
    config.addinivalue_line("markers", "procsim_commands(*lines): control commands applied after boot")


def _names(given) -> list[str]:
    import procsim
    out = []
    for n in given:
        out.extend(procsim.machines() if n == "all" else [n])
    return out


def pytest_generate_tests(metafunc):
    if "procsim_machine" not in metafunc.fixturenames:
        return
    if any("procsim_machine" in str(m.args[0]) for m in metafunc.definition.iter_markers("parametrize")):
        return                                          # the test parametrises it itself
    marker = metafunc.definition.get_closest_marker("procsim_machines")
    option = metafunc.config.getoption("procsim_machines")
    if marker is not None:
        names = _names(marker.args)
    elif option:
        names = _names(option.split(","))
    else:
        return
    metafunc.parametrize("procsim_machine", names, ids=[Path(n).stem for n in names])


@pytest.fixture
def procsim_machine() -> str:
    """The machine a test runs on (parametrised by the procsim_machines marker or option)."""
    return DEFAULT


def _commands(request) -> list[str]:
    marker = request.node.get_closest_marker("procsim_commands")
    return list(marker.args) if marker else []


@pytest.fixture
def procsim_sim(procsim_machine, request):
    """A booted :class:`procsim.Simulation` of ``procsim_machine`` (commands applied)."""
    import procsim
    return procsim.boot(procsim_machine, _commands(request))


@pytest.fixture
def procsim_tree(procsim_sim, tmp_path) -> Path:
    """Every file of the machine below a temporary root laid out like ``/``: pass
    ``ROOT/proc`` as a procfs path and ``ROOT/sys`` as a sysfs path."""
    return procsim_sim.write_tree(tmp_path / "root")


def fuse_absent() -> str | None:
    """Why FUSE cannot work here, or None if it can."""
    if not os.path.exists("/dev/fuse"):
        return "FUSE is not available: no /dev/fuse"
    if not (shutil.which("fusermount") or shutil.which("fusermount3")):
        return "FUSE is not available: no fusermount (apt-get install fuse3)"
    return None


@pytest.fixture
def procsim_mount(procsim_machine, request, tmp_path) -> Path:
    """The machine served through FUSE at a temporary mount point (a ``procsim mount
    --foreground`` daemon, as users run it; commands written to its ``control`` file);
    always unmounted, the daemon gone, afterwards."""
    import subprocess
    why = fuse_absent()
    if why:
        pytest.skip(why)
    from procsim.testing import force_unmount, procsim_cmd, wait_mounted
    mp = tmp_path / "mnt"
    mp.mkdir()
    err = open(tmp_path / "mnt.stderr", "w+b")        # a file, not a pipe nobody reads
    proc = subprocess.Popen(procsim_cmd("mount", "--foreground", "--config", procsim_machine, mp),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    try:
        try:
            wait_mounted(mp, proc)
        except RuntimeError as e:
            why = os.pread(err.fileno(), 1 << 20, 0).decode(errors="replace") if proc.poll() is not None else ""
            raise RuntimeError(f"{e}: {why}") from None
        fd = os.open(mp / "control", os.O_RDWR)
        try:
            for line in _commands(request):
                try:
                    os.write(fd, (line + "\n").encode())
                except OSError as e:
                    raise RuntimeError(f"procsim_commands: {line}: {e.strerror}") from None
        finally:
            os.close(fd)
        yield mp
    finally:
        force_unmount(mp, proc)
        err.close()
