"""Fixtures for procsim's own tests; the helpers they use live in :mod:`procsim.testing`.

``make test`` must run every test: a skipped (or xfailed) test does not exist, so any skip
makes the session fail (``pytest_sessionfinish`` below).
"""
from __future__ import annotations

import contextlib
import os
import subprocess

import pytest
from hypothesis import settings

from procsim.testing import (CONFIGS, boot, fake_session, force_unmount, mounted_session, procsim_cmd,
                             wait_mounted)


# Property tests draw the same examples on every run (derandomize): a failure seen once is seen
# again, in CI and here. HYPOTHESIS_PROFILE=explore draws fresh examples (and prints the seed).
settings.register_profile("procsim", derandomize=True, print_blob=True)
settings.register_profile("explore", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "procsim"))


# Booted machines shared by the tests of one module (each module boots its own).
@pytest.fixture(scope="module")
def seed_vm():
    return boot("seed-vm")


@pytest.fixture(scope="module")
def seed_server():
    return boot("seed-server")


@pytest.fixture(scope="module")
def big():
    return boot("big-4s-1t")


@pytest.fixture
def mp(tmp_path):
    """An empty mount point that is unmounted afterwards, whatever the test left there."""
    m = tmp_path / "mnt"
    m.mkdir()
    yield m
    force_unmount(m)


@pytest.fixture
def mount_session(tmp_path):
    """mount_session(factory) -> mount point, served by a forked child; always unmounted."""
    with contextlib.ExitStack() as stack:
        def start(make_session):
            mp = tmp_path / f"mnt{len(list(tmp_path.glob('mnt*')))}"
            mp.mkdir()
            return stack.enter_context(mounted_session(make_session, mp))

        yield start


@pytest.fixture
def fake_mounted(mount_session):
    return mount_session(fake_session)


@pytest.fixture
def mounted(tmp_path):
    """The real thing: `procsim mount --foreground -c CONFIG M` (seed-vm by default); always
    unmounted.  The daemon's stderr goes to a file (mounted.stderr(mp) reads it), never to a
    pipe nobody reads (a daemon writing 64 KiB to one would stop)."""
    started = {}

    def start(config="seed-vm", *extra):
        mp = tmp_path / f"m{len(started)}"
        mp.mkdir()
        err = open(tmp_path / f"m{len(started)}.stderr", "w+b")
        proc = subprocess.Popen(procsim_cmd("mount", "--foreground", "--config", CONFIGS / f"{config}.yaml",
                                            *extra, mp), stdout=subprocess.DEVNULL, stderr=err)
        started[mp] = (proc, err)
        try:
            wait_mounted(mp, proc)
        except RuntimeError:
            raise RuntimeError(stderr(mp) if proc.poll() is not None else "timeout") from None
        return mp

    def stderr(mp) -> str:
        err = started[mp][1]
        err.flush()
        return os.pread(err.fileno(), 1 << 24, 0).decode(errors="replace")

    start.stderr = stderr
    start.proc = lambda mp: started[mp][0]
    yield start
    for mp, (proc, err) in started.items():
        force_unmount(mp, proc)
        err.close()


# --- no skips ----------------------------------------------------------------------------------
_not_run: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped:                       # pytest.skip, skipif, xfail (report.wasxfail) alike
        _not_run.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if any test was skipped or xfailed: a test that did not run proves nothing.
    (Deselecting with -k is not a skip.)  Tools the tests need come from `make deps`."""
    if _not_run and session.exitstatus == 0:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"procsim: {len(_not_run)} test(s) skipped or xfailed, every test must run "
                                f"(tests/conftest.py): {', '.join(_not_run[:5])}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
