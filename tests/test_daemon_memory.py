"""A hostile reader cannot inflate the daemon (issue 14 item 7): snapshots are shared per
(file, state) and bounded in total, unread replies are bounded in bytes per handle.  The
daemon's RSS (/proc/PID/status) is measured before and after."""
from __future__ import annotations

import os
import tempfile

from procsim.testing import fake_session
from procsim.harness import PID_XATTR


def big_fake():
    return fake_session(nr_pages=1 << 20)


def rss_kb(pid) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def daemon(mp) -> int:
    return int(os.getxattr(mp, PID_XATTR))


READER = r"""
import os, sys
fds = []
for i in range(int(sys.argv[2])):
    fds.append(os.open(sys.argv[1], os.O_RDONLY))
    assert os.read(fds[-1], 1) == b" "          # the header's first byte: a snapshot is taken
    print("read", flush=True)
    sys.stdin.readline()                        # the state changes before the next handle
rest = b""
while chunk := os.read(fds[0], 1 << 20):        # pinned or not, a handle reads to the end
    rest += chunk
print("end" if rest.endswith(b"\n") else "torn", flush=True)
sys.stdin.readline()
"""


def test_an_unprivileged_reader_cannot_inflate_the_daemon(tmp_path):
    """--allow-other: user nobody keeps 150 handles on an ~8 MB `allocations`, each read by
    one byte while the owner changes the state before the next: every handle used to pin its
    own copy (1.2 GB).  Pins are shared and capped; the daemon's RSS stays bounded."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from procsim.testing import CONFIGS
    from procsim.harness import mounted
    public = Path(tempfile.mkdtemp(prefix="procsim-mem-"))
    try:
        public.chmod(0o755)
        (public / "mnt").mkdir(mode=0o755)
        with mounted(CONFIGS / "tiny.yaml", public / "mnt", allow_other=True) as m:
            (m.path / "control").write_text("kmalloc 8 count=100000 tag=bulk\n")
            assert len((m.path / "allocations").read_bytes()) > 7 << 20
            before = rss_kb(m.pid)
            reader = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                       sys.executable, "-I", "-c", READER, str(m.path / "allocations"), "150"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                ctl = os.open(m.path / "control", os.O_WRONLY)
                try:
                    for i in range(150):
                        assert reader.stdout.readline() == "read\n"
                        os.write(ctl, f"kmalloc 8 tag=s{i}\n".encode())
                        reader.stdin.write("\n")
                        reader.stdin.flush()
                finally:
                    os.close(ctl)
                assert reader.stdout.readline() == "end\n"
                grown = rss_kb(m.pid) - before
                assert grown < 100 << 10, f"daemon grew by {grown} kB"
                reader.stdin.write("\n")
                reader.stdin.flush()
                assert reader.wait(timeout=30) == 0
            finally:
                if reader.poll() is None:
                    reader.kill()
                    reader.wait()
    finally:
        shutil.rmtree(public, ignore_errors=True)


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
