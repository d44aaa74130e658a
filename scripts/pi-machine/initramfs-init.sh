#!/bin/busybox sh
# /init of the Pi-shaped machine's initramfs (scripts/pi-machine.sh): busybox, the kernel
# modules Debian builds as modules (SD host drivers, ext4, cuse, the watchdog), and, in a second
# archive appended per run, the working tree (/project), the command (/command) and the date.
# Loads the modules, mounts the SD card's ext4 (the Bookworm root file system), puts the tree at
# /root/pimem (the SD is in snapshot mode: nothing is kept) and hands over to its
# scripts/pi-machine/guest-init.sh.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() {
    echo "pi-machine init: $*"
    echo "PIMEM-MACHINE-EXIT 125"
    sync
    echo b >/proc/sysrq-trigger   # reset: the watchdog's restart handler, -no-reboot ends QEMU
    sleep 30
}
while read -r m; do
    insmod "/modules/$m" 2>/dev/null || echo "pi-machine init: insmod $m failed"
done </modules/order
n=0
while [ ! -b /dev/mmcblk0 ]; do
    n=$((n + 1))
    [ "$n" -gt 300 ] && { fail "no SD card (/dev/mmcblk0) after 30 s"; }
    sleep 0.1
done
mount -t ext4 /dev/mmcblk0 /newroot || fail "cannot mount the SD card's ext4 root file system"
rm -rf /newroot/root/pimem
cp -a /project /newroot/root/pimem || fail "cannot copy the working tree to /root/pimem"
ln -sfn /opt/pimem-venv /newroot/root/pimem/.venv
mkdir -p /newroot/root/.pimem-machine
cp /command /date /newroot/root/.pimem-machine/
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /bin/bash /root/pimem/scripts/pi-machine/guest-init.sh
