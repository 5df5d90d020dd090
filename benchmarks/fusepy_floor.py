"""The floor for a FUSE file in Python: a minimal fusepy filesystem with one file.

    python benchmarks/fusepy_floor.py SOURCE [SOURCE...] MOUNTPOINT

serves each SOURCE's bytes (read once at start) as MOUNTPOINT/<its name> (one SOURCE: as
MOUNTPOINT/zoneinfo), opened with direct_io like procsim's files, foreground,
single-threaded (-s, the least a fusepy file costs, as procsim's main session).  Whatever
procsim spends above this on an open+read+close is procsim's own cost.  Stop it with
fusermount -u.
"""
from __future__ import annotations

import errno
import os
import stat
import sys

from fuse import FUSE, FuseOSError, Operations


class Floor(Operations):
    def __init__(self, files: dict[str, bytes]):
        self.files = files

    def getattr(self, path, fh=None):
        if path == "/":
            return dict(st_mode=stat.S_IFDIR | 0o555, st_nlink=2)
        if path in self.files:
            return dict(st_mode=stat.S_IFREG | 0o444, st_nlink=1, st_size=0)
        raise FuseOSError(errno.ENOENT)

    def readdir(self, path, fh):
        return [".", ".."] + [p[1:] for p in self.files]

    def open(self, path, fi):
        if path not in self.files:
            raise FuseOSError(errno.ENOENT)
        fi.direct_io = 1
        fi.fh = 1
        return 0

    def read(self, path, size, offset, fi):
        return self.files[path][offset:offset + size]


if __name__ == "__main__":
    *srcs, mp = sys.argv[1:]
    files = {}
    for src in srcs:
        with open(src, "rb") as f:
            files["/zoneinfo" if len(srcs) == 1 else "/" + os.path.basename(src)] = f.read()
    FUSE(Floor(files), mp, raw_fi=True, foreground=True, nothreads=True, fsname="floor")
