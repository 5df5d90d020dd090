#!/bin/busybox sh
# /init of the pressure oracle's initramfs (oracle/pressure.py builds it with the kernel
# package's virtio and ext4 modules and /bin/hog; THP is off from the command line,
# transparent_hugepage=never, as the machine's `transparent_hugepage: false` says).  Phases,
# each printed between "@@@BEGIN <phase>/<file>" / "@@@END <phase>/<file>" on the console:
#   before-oom  after dd wrote DD_MIB MiB to the virtio disk (ext2 via ext4) and sync
#   after-oom   after /bin/hog grew anonymous memory 1 MiB a step until the OOM killer took it
#   fragmented  with HOLD_MIB of anon held, the file read back and every other page of its
#               cache dropped: most free memory in single pages
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
DD_MIB=800
HOLD_MIB=1000                  # anon kept while the fragmented zone is captured
echo 1 > /proc/sys/vm/overcommit_memory
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk \
         crc16 mbcache jbd2 crc32c_generic ext4; do
    insmod /lib/modules/$m.ko || echo "@@@FAIL insmod $m"
done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
mount -t ext2 /dev/vda /mnt || echo "@@@FAIL mount"
sleep 2

T=""
mark() { T="$T$1 $(cut -d' ' -f1 /proc/uptime)
"; }
show() {                       # show NAME FILE: the file's bytes between two marker lines
    echo "@@@BEGIN $1"
    cat "$2"
    echo "@@@END $1"
}
capture() {                    # capture PHASE: the memory files as they are now
    for f in zoneinfo buddyinfo pagetypeinfo slabinfo meminfo vmstat iomem cmdline version; do
        show "$1/proc/$f" "/proc/$f"
    done
    for f in min_free_kbytes watermark_scale_factor watermark_boost_factor lowmem_reserve_ratio \
             percpu_pagelist_high_fraction overcommit_memory; do
        show "$1/proc/sys/vm/$f" "/proc/sys/vm/$f"
    done
    show "$1/sys/kernel/mm/transparent_hugepage/enabled" /sys/kernel/mm/transparent_hugepage/enabled
    for n in /sys/devices/system/node/node*; do
        for f in meminfo cpulist distance numastat; do
            show "$1/${n#/}/$f" "$n/$f"
        done
    done
    echo "@@@BEGIN $1/timing"
    printf "%s" "$T"
    echo "@@@END $1/timing"
    echo "@@@BEGIN $1/dmesg"
    dmesg
    echo "@@@END $1/dmesg"
}

mark dd_start
dd if=/dev/zero of=/mnt/big bs=1M count=$DD_MIB 2> /dev/null
mark dd_end
sync
mark sync_end
capture before-oom
mark hog_start
/bin/hog grow 1 20000
mark hog_killed
capture after-oom
/bin/hog hold $HOLD_MIB &
while [ ! -e /held ]; do sleep 0.2; done
mark hold_end
cat /mnt/big > /dev/null
mark read_end
/bin/hog frag /mnt/big > /dev/null
mark frag_end
capture fragmented
kill $!
echo "@@@DONE"
poweroff -f
