"""A hostile reader cannot inflate the daemon (issue 14 item 7): snapshots are shared per
(file, state) and bounded in total, unread replies are bounded in bytes per handle.  The
daemon's RSS (/proc/PID/status) is measured before and after."""
from __future__ import annotations

import os

from conftest import fake_session
from procsim.harness import PID_XATTR


def big_fake():
    return fake_session(nr_pages=1 << 20)


def rss_kb(pid) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def daemon(mp) -> int:
    return int(os.getxattr(mp, PID_XATTR))


def test_many_slow_readers_while_the_state_changes(mount_session):
    """150 handles on an ~8 MB `allocations`, each read by one byte and then left open while
    the state changes under the next one: every handle would pin its own copy (1.2 GB); the
    pins are capped, and a handle beyond the cap still reads whole lines of a current state."""
    mp = mount_session(big_fake)
    pid = daemon(mp)
    (mp / "control").write_text("alloc_pages 0 count=100000 tag=bulk\n")
    size = len((mp / "allocations").read_bytes())
    assert size > 7 << 20
    before = rss_kb(pid)
    ctl = os.open(mp / "control", os.O_WRONLY)
    fds = []
    try:
        for i in range(150):
            fd = os.open(mp / "allocations", os.O_RDONLY)
            fds.append(fd)
            assert os.read(fd, 1) == b" "                       # the header's first byte
            os.write(ctl, f"alloc_pages 0 tag=s{i}\n".encode())
        grown = rss_kb(pid) - before
        assert grown < 100 << 10, f"daemon grew by {grown} kB"
        for fd in fds[:3] + fds[-3:]:                           # pinned or not, the rest reads
            rest = b""
            while chunk := os.read(fd, 1 << 20):
                rest += chunk
            assert (b" " + rest).startswith(b"      ID TAG") and rest.endswith(b"\n")
    finally:
        for fd in fds:
            os.close(fd)
        os.close(ctl)


def test_unread_replies_are_bounded_per_handle(mount_session):
    """20 handles each sent 3000 `help` (about 1 KB of reply each) and never read: 60 MB
    of replies unbounded; the oldest are dropped past MAX_REPLY_BYTES per handle."""
    from procsim.fs import MAX_REPLY_BYTES
    mp = mount_session(big_fake)
    pid = daemon(mp)
    before = rss_kb(pid)
    fds = []
    try:
        for _ in range(20):
            fd = os.open(mp / "control", os.O_RDWR)
            fds.append(fd)
            data = b"help\n" * 3000
            assert os.write(fd, data) == len(data)
        grown = rss_kb(pid) - before
        assert grown < 12 << 10, f"daemon grew by {grown} kB"
        kept = b""
        while chunk := os.read(fds[0], 1 << 16):
            kept += chunk
        assert MAX_REPLY_BYTES - 2048 <= len(kept) <= MAX_REPLY_BYTES
        assert kept.startswith(b"ok\n")                          # whole replies, oldest dropped
    finally:
        for fd in fds:
            os.close(fd)
