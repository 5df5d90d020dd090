#!/bin/bash
# Fragment a zone's free memory and watch buddyinfo, then let compaction undo it: allocate
# single movable pages (user memory: GFP_HIGHUSER_MOVABLE) alternately tagged keep/drop, free
# the "drop" ones, and the freed pages cannot merge back into high-order blocks because every
# buddy is still allocated.  Compaction moves the "keep" pages together (their IDs stay, their
# pfns change) and the free pages merge again.
#   usage: examples/fragmentation.sh MOUNTPOINT [PAIRS]     (try it on configs/tiny.yaml)
set -euo pipefail
M=${1:?usage: $0 MOUNTPOINT [PAIRS]}
PAIRS=${2:-4000}
C=$M/control

echo "== buddyinfo before"; cat "$M/buddyinfo"
# One command per line; cat delivers them in chunks, the daemon buffers partial lines.
for ((i = 0; i < PAIRS; i++)); do
    echo "alloc_pages 0 gfp=GFP_HIGHUSER_MOVABLE tag=keep"
    echo "alloc_pages 0 gfp=GFP_HIGHUSER_MOVABLE tag=drop"
done | cat > "$C"
echo "== after $PAIRS pairs of order-0 allocations"; cat "$M/buddyinfo"

echo 'free_pages tag=drop' > "$C"
echo 'drain_pages' > "$C"      # the freed pages wait on the per-cpu lists until drained
echo "== after freeing every other page: order-0 counts grow, order-10 does not"
cat "$M/buddyinfo"
grep -E 'Free pages count|type +(Unmovable|Movable) ' "$M/pagetypeinfo" || true
echo "== unusable free space index (debugfs extfrag/unusable_index): per order, the share of"
echo "   free memory in blocks too small for it"
cat "$M/debug/extfrag/unusable_index"

# Can we still get five 4 MiB blocks for the kernel (GFP_KERNEL)?  An unmovable request
# compacts only unmovable pageblocks at first (async compaction), so it fails, and the error
# says why: enough free pages, but no free block of order 10.
if echo 'alloc_pages 10 count=5 tag=huge' > "$C" 2>/dev/null; then
    echo "== 5 order-10 blocks still available"; echo 'free_pages tag=huge' > "$C"
else
    echo "== no 5 order-10 blocks: $(tail -n 1 "$M/log")"
fi

# echo 1 > /proc/sys/vm/compact_memory: compact every zone, both scanners over the whole zone
echo 'compact_memory' > "$C"
echo "== after compact_memory: the keep pages moved up, the freed pages merged"; cat "$M/buddyinfo"
grep -E '^(compact_(migrate|free)_scanned|compact_isolated|pgmigrate_success) ' "$M/vmstat"

echo 'alloc_pages 10 count=5 tag=huge' > "$C"
echo "== the same request now succeeds: $(tail -n 1 "$M/log")"
echo 'free_pages tag=huge' > "$C"
echo 'free_pages tag=keep' > "$C"
echo 'drain_pages' > "$C"
echo "== all freed and drained: the freed pages merge again (the boot workload's page cache that"
echo "   compaction moved stays where it went, so the zone is not laid out as at boot)"; cat "$M/buddyinfo"
