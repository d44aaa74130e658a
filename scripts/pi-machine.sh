#!/usr/bin/env bash
# A Pi-shaped machine: a real Linux kernel under qemu-system on QEMU's raspi machine, where
# pimem's live path (ioctl on /dev/vcio, mmap of /dev/mem) meets GPU memory mapped as
# Device-nGnRnE (arm64) / Strongly-ordered (armhf), so unaligned accesses SIGBUS as on a Pi.
#
#   sudo bash scripts/pi-machine.sh arm64|armhf [--rebuild] [--timeout SECONDS] [-- COMMAND ...]
#
# arm64: qemu-system-aarch64 -M raspi3b (4x Cortex-A53: QEMU raises the memory-type alignment
#        faults only with multi-threaded TCG, so all 4 vCPUs stay), Debian 13's arm64 kernel and
#        its broadcom/bcm2837-rpi-3-b.dtb.
# armhf: qemu-system-arm -M raspi2b (4x Cortex-A7), Debian 13's armmp-lpae kernel (QEMU checks
#        memory types only under LPAE page tables) and bcm2836-rpi-2-b.dtb.
# Both:  mem=948M, so System RAM ends at 0x3B400000 as on a 1 GB Pi with gpu_mem=76; QEMU 10
#        from a Debian 13 amd64 chroot (the memory-type alignment checks need QEMU 9 or later;
#        Debian 12's is 7.2); the userland is the Bookworm root file system that
#        scripts/test-debian-stack.sh builds (apt's numpy/pandas/matplotlib), with a venv at
#        /opt/pimem-venv, on an SD card image. No Raspberry Pi software is used.
#        /dev/vcio is a CUSE device answered by pimem's firmware emulator
#        (scripts/pi-machine/vcio_cuse.py), whose GPU memory is the real physical memory above
#        System RAM, written through /dev/mem.
#
# COMMAND runs as root in the project's folder (/root/pimem, a copy of this working tree:
# tracked and untracked-not-ignored files) with the venv first on PATH and PIMEM_BACKEND=pi;
# its output is printed and its exit status is this script's. Default COMMAND:
# bash scripts/pi-machine/checks.sh. The SD image is used with QEMU's snapshot=on: nothing a
# run writes is kept.
# Cache: $PIMEM_STACK_CACHE/pi-machine (default /var/cache/pimem-stack, root's, 0700): the QEMU
# chroot, the kernels, the initramfs and the SD images. --rebuild makes this ARCH's kernel and
# image again (the QEMU chroot and the Bookworm chroot stay; remove them by hand to redo them).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

say() { echo "pi-machine: $*"; }
die() { echo "pi-machine: $*" >&2; exit 1; }
phase_start() { PHASE_T=$SECONDS; say "[$1] ${2:-}"; }
phase_end() { say "[$1] done in $((SECONDS - PHASE_T)) s"; }

usage="usage: sudo bash scripts/pi-machine.sh arm64|armhf [--rebuild] [--timeout SECONDS] [-- COMMAND ...]"
ARCH=${1:-}
[ -n "$ARCH" ] && shift || true
case "$ARCH" in
    arm64|armhf) ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "$usage (got '${ARCH}')" ;;
esac
REBUILD=0 TIMEOUT=1800
CMD=()
while [ $# -gt 0 ]; do
    case "$1" in
        --rebuild) REBUILD=1; shift ;;
        --timeout) TIMEOUT=${2:-}; shift 2 || die "--timeout needs a number of seconds"
                   [[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "--timeout '$TIMEOUT' is not a number of seconds" ;;
        --) shift; CMD=("$@"); break ;;
        *) die "unknown option '$1'; $usage" ;;
    esac
done
[ ${#CMD[@]} -gt 0 ] || CMD=(bash scripts/pi-machine/checks.sh)

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mke2fs -d of a root file system): sudo bash scripts/pi-machine.sh $ARCH"
T_ALL=$SECONDS

apt_install() {   # apt_install PACKAGE...: on the host, quietly
    command -v apt-get >/dev/null || die "$* missing, and there is no apt-get to install them"
    say "installing $* (apt)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >/dev/null \
        || die "could not install $* (apt-get install $*)"
}
command -v debootstrap >/dev/null || apt_install debootstrap
command -v git >/dev/null || apt_install git

CACHE=${PIMEM_STACK_CACHE:-/var/cache/pimem-stack}
mkdir -p -m 0700 "$CACHE"
[ -O "$CACHE" ] && [ ! -L "$CACHE" ] || die "$CACHE is not a directory owned by root; remove it or set PIMEM_STACK_CACHE"
chmod 0700 "$CACHE"
PM=$CACHE/pi-machine
mkdir -p -m 0700 "$PM"
QROOT=$PM/qemu-trixie-amd64
WORK=$PM/$ARCH
mkdir -p "$WORK"
# Two runs may share the images, never a build: an exclusive lock while building or checking the
# cache, a shared one while the machine runs (QEMU only reads the SD image: snapshot=on).
exec 8>"$PM/.qemu.lock" 9>"$WORK/.lock"
flock -n 9 || { say "waiting for another pi-machine.sh $ARCH to finish building or running"; flock 9; }

case "$ARCH" in
    arm64) KFLAVOUR=arm64 KARCH=arm64 QEMU=qemu-system-aarch64 MACHINE=raspi3b
           DTB=broadcom/bcm2837-rpi-3-b.dtb CONSOLE=ttyS1 SERIALS=(-serial null -serial mon:stdio) ;;
    armhf) KFLAVOUR=armmp-lpae KARCH=armhf QEMU=qemu-system-arm MACHINE=raspi2b
           DTB=bcm2836-rpi-2-b.dtb CONSOLE=ttyAMA0 SERIALS=(-serial mon:stdio) ;;
esac
# The Pi 3B's split with gpu_mem=76: Linux gets 0x00000000-0x3B3FFFFF (948 MiB).
GPU_MEM_MIB=76
MEM_MIB=$((1024 - GPU_MEM_MIB))

# Everything mounted lives in a private mount namespace: gone when the command ends.
in_qemu_root() {   # in_qemu_root SCRIPT: bash -c SCRIPT as root in the QEMU chroot, $PM at /m
    unshare --mount --propagation private bash -s -- "$QROOT" "$PM" "$1" <<'INNER'
set -euo pipefail
ROOT=$1 PM=$2 SCRIPT=$3
mount -t proc proc "$ROOT/proc"
mount --rbind /dev "$ROOT/dev"
mount -t tmpfs -o mode=1777 tmpfs "$ROOT/tmp"
mkdir -p "$ROOT/m" && mount --bind "$PM" "$ROOT/m"
exec chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive TMPDIR=/tmp bash -c "$SCRIPT"
INNER
}

# --- 1. QEMU >= 9: Debian 13's, in a chroot (with the tools to make the initramfs and the image) ---
QSTAMP="trixie amd64 qemu-system-arm kmod cpio xz-utils e2fsprogs +arm64 +armhf v1"
flock -s 8   # shared while it is in use; exclusive only to build it
if [ "$(cat "$QROOT/.pimem-stack" 2>/dev/null)" != "$QSTAMP" ]; then
    flock -n 8 || { say "waiting for the other pi-machine.sh runs to finish (the QEMU chroot must be built)"; flock 8; }
fi
if [ "$(cat "$QROOT/.pimem-stack" 2>/dev/null)" != "$QSTAMP" ]; then
    phase_start qemu "building a Debian 13 (trixie) amd64 chroot with QEMU in $QROOT (debootstrap, about a minute)"
    rm -rf "$QROOT" "$QROOT.new"
    MIRROR=$(grep -hsE '^\s*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
    [ -n "$MIRROR" ] || MIRROR=$(grep -hsE '^\s*deb\s' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
    log=$PM/qemu.debootstrap.log
    if ! debootstrap --variant=minbase --include=qemu-system-arm,kmod,cpio,xz-utils,e2fsprogs \
            trixie "$QROOT.new" ${MIRROR:+"$MIRROR"} >"$log" 2>&1; then
        tail -20 "$log" >&2
        die "debootstrap trixie failed (log: $log)"
    fi
    chroot "$QROOT.new" dpkg --add-architecture arm64
    chroot "$QROOT.new" dpkg --add-architecture armhf
    echo "$QSTAMP" >"$QROOT.new/.pimem-stack"
    mv "$QROOT.new" "$QROOT"
    phase_end qemu
fi
QVER=$(chroot "$QROOT" qemu-system-aarch64 --version | head -1)
[[ "$QVER" =~ version\ ([0-9]+) ]] && [ "${BASH_REMATCH[1]}" -ge 9 ] \
    || die "$QVER in $QROOT: the memory-type alignment checks need QEMU 9 or later"
say "using $QVER (Debian 13, in $QROOT)"
flock -s 8   # shared from here: the other architecture may use the QEMU chroot too

# --- 2. The kernel: Debian 13's, its dtb and modules; a busybox initramfs that mounts the SD ---
# Modules the machine needs (Debian builds them as modules): the SD card's two host drivers
# (QEMU routes the card to sdhost or sdhci by the GPIO functions), ext4 with what it needs,
# CUSE for /dev/vcio, and the watchdog that lets the machine reset (raspi has no power-off:
# a reset with -no-reboot ends QEMU).
MODULES="kernel/drivers/mmc/host/sdhci-iproc.ko.xz kernel/drivers/mmc/host/bcm2835.ko.xz
kernel/crypto/crc32c_generic.ko.xz kernel/fs/ext4/ext4.ko.xz kernel/fs/fuse/cuse.ko.xz
kernel/drivers/watchdog/bcm2835_wdt.ko.xz"
KSTAMP="$KFLAVOUR $MODULES $(sha256sum scripts/pi-machine/initramfs-init.sh | cut -c1-16) v1"
KDIR=$WORK/kernel
if [ "$REBUILD" = 1 ] || [ "$(cat "$KDIR/.stamp" 2>/dev/null)" != "$KSTAMP" ]; then
    phase_start kernel "fetching Debian 13's $KFLAVOUR kernel and busybox-static ($KARCH), making the initramfs"
    rm -rf "$KDIR" "$KDIR.new"
    mkdir -p "$KDIR.new"
    cp scripts/pi-machine/initramfs-init.sh "$KDIR.new/init"
    log=$WORK/kernel.log
    if ! in_qemu_root "set -euo pipefail
        K=/m/$ARCH/kernel.new
        apt-get update -qq
        pkg=\$(apt-cache depends linux-image-$KFLAVOUR:$KARCH | awk '/Depends: linux-image-/ {print \$2; exit}')
        [ -n \"\$pkg\" ] || { echo 'no linux-image package behind linux-image-$KFLAVOUR'; exit 1; }
        mkdir -p /tmp/debs && cd /tmp/debs && chown _apt /tmp/debs
        apt-get download -qq \"\$pkg\" busybox-static:$KARCH
        dpkg-deb -x linux-image-*.deb \$K/pkg
        dpkg-deb -x busybox-static_*.deb \$K/busybox
        ver=\$(ls \$K/pkg/usr/lib/modules)
        depmod -b \$K/pkg/usr \"\$ver\"
        echo \"\$ver\" >\$K/version
        cp \$K/pkg/boot/vmlinuz-\$ver \$K/vmlinuz
        cp \$K/pkg/usr/lib/linux-image-\$ver/$DTB \$K/machine.dtb
        # The initramfs: busybox, the modules (uncompressed, in dependency order), /init.
        I=\$K/initramfs; M=\$K/pkg/usr/lib/modules/\$ver
        mkdir -p \$I/bin \$I/modules \$I/proc \$I/sys \$I/dev \$I/newroot \$I/project
        cp \$K/busybox/usr/bin/busybox \$I/bin/busybox
        mv \$K/init \$I/init && chmod 755 \$I/init
        order=()
        add() {   # add MODULE_PATH: its dependencies first (modules.dep), then itself
            local m=\$1 d
            for d in \$(awk -F: -v m=\"\$m\" '\$1 == m {print \$2}' \$M/modules.dep); do add \"\$d\"; done
            case \" \${order[*]} \" in *\" \$m \"*) ;; *) order+=(\"\$m\") ;; esac
        }
        for m in $(echo $MODULES); do
            grep -q \"^\$m:\" \$M/modules.dep || { echo \"module \$m is not in \$ver\"; exit 1; }
            add \"\$m\"
        done
        for m in \"\${order[@]}\"; do
            b=\$(basename \"\$m\" .xz)
            xz -dc \$M/\$m >\$I/modules/\$b
            echo \"\$b\" >>\$I/modules/order
        done
        echo \"kernel \$ver (\$pkg); modules: \$(tr '\n' ' ' <\$I/modules/order)\"
        (cd \$I && find . | cpio -o -H newc --quiet -R 0:0) | gzip -1 >\$K/initramfs.cpio.gz
        rm -rf \$K/pkg \$K/busybox \$I
    " >"$log" 2>&1; then
        tail -20 "$log" >&2
        die "could not make the $ARCH kernel and initramfs (log: $log)"
    fi
    echo "$KSTAMP" >"$KDIR.new/.stamp"
    mv "$KDIR.new" "$KDIR"
    phase_end kernel
fi
KVER=$(cat "$KDIR/version")
say "kernel: Debian $KVER, dtb $DTB"

# --- 3. The SD image: the Bookworm $ARCH root file system with a venv -------------------------
# The chroot test-debian-stack.sh builds (and caches) is copied to $WORK/rootfs (kept, so a change
# below does not redo pip), given a venv and a few packages, and written into an ext4 image
# whose size is a power of two (QEMU's SD card needs that).
if [ "$ARCH" = arm64 ]; then
    PIP_SPEC='-e /root/pimem[test]'   # pimem with Jupyter, ipykernel, nbclient, pytest, hypothesis...
    APT_EXTRA="gdb"                   # op_matrix.py --zva: which operations reach DC ZVA
else
    # armhf: PyPI has no armv7 wheels of pyzmq, tornado, argon2-cffi-bindings & co., and building them
    # under qemu-user takes very long: no Jupyter here. pimem without its dependencies, apt's numpy etc.
    PIP_SPEC='pytest hypothesis tqdm && /opt/pimem-venv/bin/pip install --quiet --no-deps -e /root/pimem'
    APT_EXTRA="python3-jsonschema gdb"
fi
STAGE=$WORK/rootfs
IMG=$WORK/sd.img
RSTAMP="bookworm $ARCH venv: $PIP_SPEC $(sha256sum pyproject.toml | cut -c1-16) v2"
# pip and apt as the host configures them (index, CA), as test-debian-stack.sh does.
PIPENV=()
while IFS= read -r kv; do PIPENV+=("$kv"); done < <(env | grep -E '^(PIP_INDEX_URL|PIP_EXTRA_INDEX_URL|PIP_TRUSTED_HOST|PIP_DEFAULT_TIMEOUT|PIP_CERT|SSL_CERT_FILE|REQUESTS_CA_BUNDLE)=' || true)
in_stage() {   # in_stage SCRIPT: bash -c SCRIPT as root in the $ARCH root file system (qemu-user)
    cp /etc/resolv.conf "$STAGE/etc/resolv.conf"
    unshare --mount --propagation private bash -s -- "$STAGE" "$1" "${PIPENV[@]}" <<'INNER'
set -euo pipefail
ROOT=$1 SCRIPT=$2; shift 2
mount -t proc proc "$ROOT/proc"
mount --rbind /dev "$ROOT/dev"
mount -t tmpfs -o mode=1777 tmpfs "$ROOT/tmp"
for ca in /etc/ssl/certs/ca-certificates.crt; do [ -f "$ca" ] && [ -f "$ROOT$ca" ] && mount --bind "$ca" "$ROOT$ca"; done
exec chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@" bash -c "$SCRIPT"
INNER
}
if [ "$REBUILD" = 1 ] || [ "$(cat "$STAGE/.pimem-machine" 2>/dev/null)" != "$RSTAMP" ]; then
    phase_start rootfs "the Bookworm $ARCH root file system (scripts/test-debian-stack.sh bookworm --arch $ARCH --build-only)"
    bash scripts/test-debian-stack.sh bookworm --arch "$ARCH" --build-only | sed 's/^/  /'
    phase_end rootfs
    phase_start venv "copying it, a venv in /opt/pimem-venv (pip under qemu-user: several minutes)"
    rm -rf "$STAGE" "$IMG" "$WORK/sd.stamp"
    cp -a "$CACHE/bookworm-$ARCH" "$STAGE"
    rm -rf "$STAGE/home/pi/pimem" "$STAGE/root/pimem"
    mkdir -p "$STAGE/root/pimem"
    git -C "$REPO" ls-files -z --cached --others --exclude-standard \
        | (cd "$REPO" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' _) \
        | tar -C "$REPO" --null -T - -cf - | tar -C "$STAGE/root/pimem" -xf -
    log=$WORK/venv.log
    if ! in_stage "set -e
            python3 -m venv --system-site-packages /opt/pimem-venv
            /opt/pimem-venv/bin/pip install --quiet $PIP_SPEC
            rm -rf /root/.cache" >"$log" 2>&1; then
        tail -20 "$log" >&2
        die "making the venv in the $ARCH root file system failed (log: $log)"
    fi
    echo "$RSTAMP" >"$STAGE/.pimem-machine"
    phase_end venv
fi
missing=""
for pkg in $APT_EXTRA; do
    chroot "$STAGE" dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    phase_start apt "installing$missing in the $ARCH root file system (apt under qemu-user)"
    log=$WORK/apt.log
    if ! in_stage "apt-get update -qq && apt-get install -y -qq --no-install-recommends$missing && apt-get clean" >"$log" 2>&1; then
        tail -20 "$log" >&2
        die "apt-get install$missing failed in the $ARCH root file system (log: $log)"
    fi
    phase_end apt
fi
ISTAMP="$RSTAMP + $APT_EXTRA"
if [ "$(cat "$WORK/sd.stamp" 2>/dev/null)" != "$ISTAMP" ] || [ ! -f "$IMG" ]; then
    phase_start image "the SD card image (mke2fs -d)"
    in_stage "/opt/pimem-venv/bin/pip list --format=freeze 2>/dev/null" \
        | grep -iE '^(pimem|pytest|hypothesis|tqdm|jsonschema|jupyterlab|ipykernel|nbclient|numpy)=' | sed 's/^/  venv: /' || true
    used=$(du -sm "$STAGE" | cut -f1)
    size=512
    while [ "$size" -lt $((used * 13 / 10 + 256)) ]; do size=$((size * 2)); done
    rm -f "$IMG" "$IMG.new" "$WORK/sd.stamp"
    if ! in_qemu_root "truncate -s ${size}M /m/$ARCH/sd.img.new && mke2fs -q -t ext4 -L pimem-root -d /m/$ARCH/rootfs /m/$ARCH/sd.img.new" \
            >"$WORK/image.log" 2>&1; then
        cat "$WORK/image.log" >&2
        die "mke2fs -d failed (log: $WORK/image.log)"
    fi
    mv "$IMG.new" "$IMG"
    echo "$ISTAMP" >"$WORK/sd.stamp"
    say "[image] ${size} MiB image with ${used} MiB of files: $IMG"
    phase_end image
fi

# --- 4. The run: the working tree and COMMAND ride in a second initramfs archive -----------------
flock -s 9   # shared: other runs of this ARCH may start, a build waits
phase_start boot "$MACHINE, $KVER, mem=${MEM_MIB}M; COMMAND: ${CMD[*]}"
RUN=$(mktemp -d "$PM/run.XXXXXX")
cleanup() { rm -rf "$RUN"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$RUN/tree/project"
git -C "$REPO" ls-files -z --cached --others --exclude-standard \
    | (cd "$REPO" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' _) \
    | tar -C "$REPO" --null -T - -cf - | tar -C "$RUN/tree/project" -xf -
printf '%s\0' "${CMD[@]}" >"$RUN/tree/command"
date -u +%Y-%m-%dT%H:%M:%SZ >"$RUN/tree/date"
R=/m/$(basename "$RUN")
in_qemu_root "cd $R/tree && find . | cpio -o -H newc --quiet -R 0:0 | gzip -1 >$R/run.cpio.gz" \
    || die "could not pack the working tree into the machine's initramfs"
cat "$KDIR/initramfs.cpio.gz" "$RUN/run.cpio.gz" >"$RUN/initrd"
# Multi-threaded TCG, said outright: QEMU raises the memory-type alignment faults only there.
QEMU_ARGS=(-M "$MACHINE" -accel tcg,thread=multi -m 1G -nographic "${SERIALS[@]}" -no-reboot
    -kernel /m/$ARCH/kernel/vmlinuz -dtb /m/$ARCH/kernel/machine.dtb -initrd "$R/initrd"
    -drive "if=sd,format=raw,file=/m/$ARCH/sd.img,snapshot=on"
    -append "console=$CONSOLE,115200 mem=${MEM_MIB}M quiet loglevel=1 panic=5 rdinit=/init pimem.emulated=qemu-$MACHINE")
# The exit status comes back on the serial line as a marker (the machine has no other way out).
set +e
in_qemu_root "cd /tmp && exec timeout --foreground -k 10 $TIMEOUT $QEMU $(printf '%q ' "${QEMU_ARGS[@]}") </dev/null" 2>&1 \
    | sed -u 's/\r$//' | tee "$RUN/console.log" | grep --line-buffered -av -e '^PIMEM-MACHINE-EXIT ' -e '^\[ *[0-9.]*\] sysrq: Resetting$'
qrc=${PIPESTATUS[0]}
set -e
status=$(sed -n 's/^PIMEM-MACHINE-EXIT \([0-9][0-9]*\)$/\1/p' "$RUN/console.log" | tail -1)
phase_end boot
if [ -z "$status" ]; then
    [ "$qrc" = 124 ] && die "the machine did not finish within $TIMEOUT s (--timeout)"
    die "the machine stopped without reporting COMMAND's exit status (QEMU exited $qrc); see the console output above"
fi
say "COMMAND exited $status; whole run $((SECONDS - T_ALL)) s"
exit "$status"
