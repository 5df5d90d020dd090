#!/bin/bash
# Grow a slab cache in steps and watch slabtop (the real procps tool) and meminfo follow:
# objects per slab, slabs, and the Slab/SUnreclaim lines move together; freeing objects
# leaves empty slabs until kmem_cache_shrink hands them back to the buddy allocator.
#   usage: examples/slab-growth.sh MOUNTPOINT
set -euo pipefail
M=${1:?usage: $0 MOUNTPOINT}
C=$M/control
PROCSIM=${PROCSIM:-$(command -v procsim || echo "$(dirname "$0")/../.venv/bin/procsim")}
show() {
    echo "== $1"
    "$PROCSIM" exec "$M" -- slabtop -o -s c | grep -E 'OBJS|demo_obj' || true
    grep -E '^(Slab|SUnreclaim):' "$M/meminfo" || true
}

echo 'kmem_cache_create demo_obj 192 flags=SLAB_HWCACHE_ALIGN' > "$C"
show "created demo_obj (192 bytes)"
for step in 1 2 3; do
    echo "kmem_cache_alloc demo_obj count=5000 tag=step$step" > "$C"
    show "after $((step * 5000)) objects"
done
echo 'kmem_cache_free demo_obj tag=step2' > "$C"
show "freed the middle 5000: empty slabs beyond min_partial go straight back"
echo 'kmem_cache_shrink demo_obj' > "$C"
show "after kmem_cache_shrink: $(tail -n 1 "$M/log")"
echo 'kmem_cache_free demo_obj tag=step1' > "$C"
echo 'kmem_cache_free demo_obj tag=step3' > "$C"
echo 'kmem_cache_destroy demo_obj' > "$C"
echo "== destroyed: $(tail -n 1 "$M/log")"
