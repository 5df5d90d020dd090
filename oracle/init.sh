#!/bin/busybox sh
# /init of the oracle's initramfs: print the memory files of a freshly booted kernel on the
# serial console between markers, then power off.  Nothing is run that allocates much before the
# files are printed, so they show the kernel as boot left it; an OOM kill comes last.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
sleep 2

show() {                       # show NAME FILE: the file's bytes between two marker lines
    echo "@@@BEGIN $1"
    cat "$2"
    echo "@@@END $1"
}
for f in zoneinfo buddyinfo pagetypeinfo slabinfo meminfo vmstat iomem cmdline version; do
    show "proc/$f" "/proc/$f"
done
for f in min_free_kbytes watermark_scale_factor watermark_boost_factor lowmem_reserve_ratio \
         percpu_pagelist_high_fraction; do
    show "proc/sys/vm/$f" "/proc/sys/vm/$f"
done
for n in /sys/devices/system/node/node*; do
    for f in meminfo cpulist distance numastat; do
        show "${n#/}/$f" "$n/$f"
    done
done
show sys/devices/system/node/online /sys/devices/system/node/online
show sys/devices/system/node/has_memory /sys/devices/system/node/has_memory
# SLUB geometry of every real cache (directories; aliases are symlinks): one line per cache
echo "@@@BEGIN slub"
echo "# name object_size slab_size objs_per_slab order align reclaim_account hwcache_align destroy_by_rcu cache_dma ctor aliases"
for c in /sys/kernel/slab/*; do
    [ -L "$c" ] && continue
    ctor=$(cat "$c/ctor" 2>/dev/null | cut -d+ -f1)
    echo "${c##*/} $(cat $c/object_size) $(cat $c/slab_size) $(cat $c/objs_per_slab) $(cat $c/order)" \
         "$(cat $c/align) $(cat $c/reclaim_account) $(cat $c/hwcache_align) $(cat $c/destroy_by_rcu)" \
         "$(cat $c/cache_dma) ${ctor:--} $(cat $c/aliases)"
done
echo "@@@END slub"
echo "@@@BEGIN slub_aliases"
for c in /sys/kernel/slab/*; do
    [ -L "$c" ] && echo "${c##*/} $(readlink $c)"
done
echo "@@@END slub_aliases"
echo "@@@BEGIN dmesg"
dmesg
echo "@@@END dmesg"
# Then the OOM killer at work, for the report's format: with overcommit always, awk doubles a
# string until a page fault finds no memory and the kernel kills it (init is never chosen).
echo 1 > /proc/sys/vm/overcommit_memory
dmesg -c > /dev/null
awk 'BEGIN { s = "0123456789abcdef"; while (1) s = s s }' 2> /dev/null
echo "@@@BEGIN oom"
dmesg
echo "@@@END oom"
echo "@@@DONE"
poweroff -f
