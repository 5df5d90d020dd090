"""Issue 30 §3c/§5: small wrong answers of the control file, the description and the library."""
from __future__ import annotations

import errno
import os
import types

import pytest
from fuse import FuseOSError

from procsim import fs
from procsim.testing import fake_session


def _control():
    """A ProcFS on a fake kernel (no mount) and an open control handle."""
    pfs = fs.ProcFS(fake_session())
    fi = types.SimpleNamespace(flags=os.O_RDWR, fh=0, direct_io=0)
    pfs.open("/" + fs.CONTROL, fi)
    return pfs, fi


def _replies(pfs, fi) -> list[str]:
    return pfs.read("/" + fs.CONTROL, 1 << 16, 0, fi).decode().splitlines()


def test_a_retry_is_the_same_bytes_not_a_prefix():
    """After `kmalloc 64 count=0` fails, write("kmalloc") is a new write (a fragment that waits
    for its newline), and write(" 128\\n") completes it to `kmalloc 128`, which runs; the old
    code took "kmalloc" as the failed line's retry (EINVAL) and then ran " 128"."""
    pfs, fi = _control()
    path = "/" + fs.CONTROL
    with pytest.raises(FuseOSError) as e:
        pfs.write(path, b"kmalloc 64 count=0\n", 0, fi)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(FuseOSError) as e:               # the writer's retry: the same bytes
        pfs.write(path, b"kmalloc 64 count=0\n", 0, fi)
    assert e.value.errno == errno.EINVAL
    assert pfs.write(path, b"kmalloc", 0, fi) == 7
    assert pfs.write(path, b" 128\n", 0, fi) == 5
    replies = _replies(pfs, fi)
    assert replies[0].startswith("error EINVAL") and replies[-1].startswith("ok "), replies
    log = pfs.session.control.render_log().decode().splitlines()
    assert [line.split(" ", 1)[1].split(" -> ")[0] for line in log] == ["kmalloc 64 count=0", "kmalloc 128"], log


def test_after_a_short_count_a_prefix_of_the_rest_is_still_the_retry():
    """A writer told only a short count resends the rest, maybe in smaller pieces: a piece that
    is a prefix of the failed line fails with its errno (nothing runs twice); after that errno
    reached the writer, a new write runs normally."""
    pfs, fi = _control()
    path = "/" + fs.CONTROL
    assert pfs.write(path, b"kmalloc 64\nkmalloc 64 count=0\n", 0, fi) == 11      # short count
    with pytest.raises(FuseOSError) as e:
        pfs.write(path, b"kmalloc 64 co", 11, fi)
    assert e.value.errno == errno.EINVAL
    assert pfs.write(path, b"kmalloc", 11, fi) == 7                           # told: a new write
    assert pfs.write(path, b" 128\n", 18, fi) == 5
    log = pfs.session.control.render_log().decode().splitlines()
    assert [line.split(" ", 1)[1].split(" -> ")[0] for line in log] == \
        ["kmalloc 64", "kmalloc 64 count=0", "kmalloc 128"], log
