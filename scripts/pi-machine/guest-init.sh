#!/bin/bash
# PID 1 of the Pi-shaped machine (scripts/pi-machine.sh), after the initramfs: mounts what a
# system needs, checks the memory split, starts /dev/vcio (scripts/pi-machine/vcio_cuse.py,
# pimem's firmware emulator over CUSE), runs the command in /root/pimem with the venv, prints
# "PIMEM-MACHINE-EXIT <status>" for the host and resets the machine (which ends QEMU).
export PATH=/root/pimem/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb PIMEM_BACKEND=pi PYTHONDONTWRITEBYTECODE=1

finish() {
    echo "PIMEM-MACHINE-EXIT $1"
    sync
    echo b >/proc/sysrq-trigger   # reset through the watchdog; QEMU's -no-reboot then exits
    sleep 30
    echo "pi-machine: the machine did not reset"
    while :; do sleep 3600; done   # PID 1 must not exit
}
say() { echo "pi-machine guest: $*"; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
T0=$(cut -d' ' -f1 /proc/uptime)
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
ln -sf /proc/self/fd /dev/fd
date -u -s "$(cat /root/.pimem-machine/date)" >/dev/null 2>&1
hostname pi-machine
ip link set lo up 2>/dev/null || true

# The memory split a Pi 3B with gpu_mem=76 gives Linux: System RAM up to 0x3B3FFFFF.
ram=$(grep 'System RAM' /proc/iomem | tail -1)
say "$(uname -srm), $(nproc) CPUs; ${ram# }; at init after ${T0} s"

say "starting /dev/vcio (CUSE, answered by pimem's firmware emulator)"
rm -f /run/vcio-cuse.ready
python3 /root/pimem/scripts/pi-machine/vcio_cuse.py --ready /run/vcio-cuse.ready 2>/run/vcio-cuse.log &
for _ in $(seq 200); do
    [ -e /run/vcio-cuse.ready ] && [ -c /dev/vcio ] && break
    sleep 0.1
done
if ! [ -c /dev/vcio ]; then
    say "/dev/vcio did not appear; the daemon's log:"
    cat /run/vcio-cuse.log
    finish 125
fi
sed 's/^/  /' /run/vcio-cuse.log
# As Raspberry Pi OS's udev rule has it (10-vc.rules): group video, 0660.
chgrp video /dev/vcio 2>/dev/null && chmod 0660 /dev/vcio

cd /root/pimem
mapfile -d '' -t CMD </root/.pimem-machine/command
say "running: ${CMD[*]}"
echo "----------------------------------------------------------------------"
"${CMD[@]}"
status=$?
echo "----------------------------------------------------------------------"
if ! kill -0 %1 2>/dev/null; then
    say "the /dev/vcio daemon died; its log:"
    cat /run/vcio-cuse.log
fi
say "command exited $status after $(cut -d' ' -f1 /proc/uptime) s of uptime"
finish "$status"
