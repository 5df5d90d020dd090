"""The floor for a FUSE file in Python: a minimal fusepy filesystem with one file.

    python benchmarks/fusepy_floor.py SOURCE MOUNTPOINT

serves SOURCE's bytes (read once at start) as MOUNTPOINT/zoneinfo, opened with direct_io
like procsim's files, foreground, single-threaded (-s, the least a fusepy file costs; procsim
itself answers on libfuse's threads, benchmarks/results.md change 15).  Whatever procsim spends
above this on an open+read+close is procsim's own cost.  Stop it with fusermount -u.
"""
from __future__ import annotations

import errno
import stat
import sys

from fuse import FUSE, FuseOSError, Operations


class Floor(Operations):
    def __init__(self, data: bytes):
        self.data = data

    def getattr(self, path, fh=None):
        if path == "/":
            return dict(st_mode=stat.S_IFDIR | 0o555, st_nlink=2)
        if path == "/zoneinfo":
            return dict(st_mode=stat.S_IFREG | 0o444, st_nlink=1, st_size=0)
        raise FuseOSError(errno.ENOENT)

    def readdir(self, path, fh):
        return [".", "..", "zoneinfo"]

    def open(self, path, fi):
        if path != "/zoneinfo":
            raise FuseOSError(errno.ENOENT)
        fi.direct_io = 1
        fi.fh = 1
        return 0

    def read(self, path, size, offset, fi):
        return self.data[offset:offset + size]


if __name__ == "__main__":
    src, mp = sys.argv[1], sys.argv[2]
    with open(src, "rb") as f:
        data = f.read()
    FUSE(Floor(data), mp, raw_fi=True, foreground=True, nothreads=True, fsname="floor")
