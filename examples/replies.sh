#!/bin/bash
# Talk to the control file on one open descriptor: write commands, read back one reply
# per command (the IDs to free later), and see a failing command fail the write itself.
#   usage: examples/replies.sh MOUNTPOINT
set -uo pipefail
M=${1:?usage: $0 MOUNTPOINT}
exec 3<>"$M/control"
echo 'kmalloc 100 count=3 tag=demo' >&3
echo 'alloc_pages 2' >&3
if ! echo 'kmem_cache_alloc no_such_cache' >&3 2>/dev/null; then
    echo "(the write failed, as it should: ENOENT)"
fi
cat <&3                     # ok 1-3 / ok 4 / error ENOENT: ...
echo 'kfree tag=demo' >&3
echo 'free_pages 4' >&3
cat <&3
exec 3>&-
echo "== the log keeps the recent history:"; tail -n 5 "$M/log"
