#!/bin/bash
# Fragment a zone's free memory and watch buddyinfo: allocate single pages alternately
# tagged keep/drop, free the "drop" ones, and the freed pages cannot merge back into
# high-order blocks because every buddy is still allocated.
#   usage: examples/fragmentation.sh MOUNTPOINT [PAIRS]     (try it on configs/tiny.yaml)
set -euo pipefail
M=${1:?usage: $0 MOUNTPOINT [PAIRS]}
PAIRS=${2:-4000}
C=$M/control

echo "== buddyinfo before"; cat "$M/buddyinfo"
# One command per line; cat delivers them in chunks, the daemon buffers partial lines.
for ((i = 0; i < PAIRS; i++)); do
    echo "alloc_pages 0 tag=keep"
    echo "alloc_pages 0 tag=drop"
done | cat > "$C"
echo "== after $PAIRS pairs of order-0 allocations"; cat "$M/buddyinfo"

echo 'free_pages tag=drop' > "$C"
echo "== after freeing every other page: order-0 counts grow, order-10 does not"
cat "$M/buddyinfo"
grep -E 'Free pages count|type +(Unmovable|Movable) ' "$M/pagetypeinfo" || true

# Can we still get a 4 MiB block?  The write fails with ENOMEM when we cannot.
if echo 'alloc_pages 10 count=8 tag=huge' > "$C" 2>/dev/null; then
    echo "== 8 order-10 blocks still available"; echo 'free_pages tag=huge' > "$C"
else
    echo "== no 8 order-10 blocks left: $(tail -n 1 "$M/log")"
fi

echo 'free_pages tag=keep' > "$C"
echo "== all freed: most buddies merge, but freed order-0 pages wait on the per-cpu lists"; cat "$M/buddyinfo"
echo 'drain_pages' > "$C"
echo "== after drain_pages (drain_all_pages): every buddy is back and merged"; cat "$M/buddyinfo"
