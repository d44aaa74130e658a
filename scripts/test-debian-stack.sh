#!/usr/bin/env bash
# Run the README's commands on Raspberry Pi OS's own Python stack: a Debian
# chroot (debootstrap) with apt's python3-numpy/pandas/matplotlib, a venv with
# --system-site-packages, the tests as an ordinary user (no sudo), as on a Pi.
#
#   sudo bash scripts/test-debian-stack.sh bookworm            # Pi OS Bookworm (Debian 12), host arch
#   sudo bash scripts/test-debian-stack.sh trixie              # Pi OS Trixie (Debian 13)
#   sudo bash scripts/test-debian-stack.sh bookworm --arch arm64   # 64-bit Pi OS under qemu-user
#   sudo bash scripts/test-debian-stack.sh bookworm --arch armhf   # 32-bit (close to Pi OS armhf)
#
# Options: --arch ARCH (Debian name; default: this machine's), --full, --rebuild (a
# new chroot), --build-only. On the host's architecture, and with --full under qemu,
# it runs the whole test command (bash scripts/test.sh) and a smoke run of the main
# command (bash scripts/start.sh). Otherwise, under qemu, it runs pimem's CLI against
# the emulator and the fast unit tests without Jupyter (on armhf pip would build
# pyzmq & co. from source, for a long time under emulation).
# The chroot is cached in $PIMEM_STACK_CACHE (default /var/cache/pimem-stack, root's, 0700).
# Needs root (debootstrap, chroot), debootstrap, and for other arches qemu-user-static.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

say() { echo "stack: $*"; }
die() { echo "stack: $*" >&2; exit 1; }

DIST=${1:-}
[ -n "$DIST" ] && shift || true
case "$DIST" in
    bookworm|trixie) ;;
    *) die "usage: sudo bash scripts/test-debian-stack.sh bookworm|trixie [--arch amd64|arm64|armhf] [--rebuild] [--build-only] (got '${DIST}')" ;;
esac
HOST_ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
ARCH=$HOST_ARCH REBUILD=0 BUILD_ONLY=0 FULL=0
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) ARCH=${2:-}; shift 2 || die "--arch needs a value: amd64, arm64 or armhf" ;;
        --rebuild) REBUILD=1; shift ;;
        --build-only) BUILD_ONLY=1; shift ;;
        --full) FULL=1; shift ;;
        *) die "unknown option '$1'; options: --arch ARCH, --full, --rebuild, --build-only" ;;
    esac
done
case "$ARCH" in amd64|arm64|armhf|i386) ;; *) die "--arch '$ARCH' is not one of amd64, arm64, armhf, i386" ;; esac

[ "$(id -u)" = 0 ] || die "needs root (debootstrap and chroot): sudo bash scripts/test-debian-stack.sh $DIST"
if ! command -v debootstrap >/dev/null; then
    command -v apt-get >/dev/null || die "debootstrap is missing and there is no apt-get to install it"
    say "installing debootstrap"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; } >/dev/null \
        || die "could not install debootstrap (apt-get install debootstrap)"
fi
FOREIGN=0
if [ "$ARCH" != "$HOST_ARCH" ]; then
    FOREIGN=1
    case "$ARCH" in arm64) QEMU=qemu-aarch64 ;; armhf) QEMU=qemu-arm ;; *) QEMU=qemu-i386 ;; esac
    if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
    fi
    if [ ! -e "/proc/sys/fs/binfmt_misc/$QEMU" ]; then
        say "installing qemu-user-static and binfmt-support (to run $ARCH binaries)"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static binfmt-support; } >/dev/null \
            || die "could not install qemu-user-static"
        update-binfmts --enable >/dev/null 2>&1 || true
    fi
    [ -e "/proc/sys/fs/binfmt_misc/$QEMU" ] || die "$ARCH binaries cannot run here: no binfmt_misc entry $QEMU (is binfmt_misc mounted? is this a container that forbids it?)"
fi

# What a Pi user installs with apt (README); git and certificates to clone and fetch.
PACKAGES="python3,python3-venv,python3-pip,python3-numpy,python3-pandas,python3-matplotlib,git,ca-certificates,passwd"
# Installed with apt on top (debootstrap cannot configure chromium's desktop deps), and
# added to a cached chroot that lacks them: a C compiler, as a Pi has, for the tests
# that build benchmarks/membench.c; Chromium for the HTML edition's browser test,
# where the whole test command runs.
EXTRA_PACKAGES="gcc libc6-dev"
[ "$FOREIGN" = 0 ] && EXTRA_PACKAGES="$EXTRA_PACKAGES chromium"
CACHE=${PIMEM_STACK_CACHE:-/var/cache/pimem-stack}
mkdir -p -m 0700 "$CACHE"
[ -O "$CACHE" ] && [ ! -L "$CACHE" ] || die "$CACHE is not a directory owned by root; remove it or set PIMEM_STACK_CACHE"
chmod 0700 "$CACHE"
ROOT=$CACHE/$DIST-$ARCH
STAMP="$DIST $ARCH $PACKAGES  v2"

# The host's Debian mirror, if it names one: the chroot fetches from where the host does.
MIRROR=$(grep -hsE '^\s*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
[ -n "$MIRROR" ] || MIRROR=$(grep -hsE '^\s*deb\s' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)

# pip inside uses the host's package index configuration and trusts the host's CAs:
# its config files, its PIP_* and CA variables, and any local folder they name.
PIP_FILES=()
for f in /etc/pip.conf /etc/xdg/pip/pip.conf; do [ -f "$f" ] && PIP_FILES+=("$f"); done
PIP_DIRS=()
cfg=$( { python3 -m pip config list 2>/dev/null || true; env | grep -E '^PIP_' || true; } )
for path in $(printf '%s\n' "$cfg" | grep -oE "(file://)?/[^' ]+" | sed 's#^file://##'); do
    for cand in "$path" "$(dirname "$path")"; do
        if [ -d "$cand" ] || [ -f "$cand" ]; then PIP_DIRS+=("$cand"); break; fi
    done
done
ENV_VARS=(HOME=/home/pi USER=pi LOGNAME=pi PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 TERM=dumb)
while IFS= read -r kv; do ENV_VARS+=("$kv"); done < <(env | grep -E '^(PIP_[A-Z_]+|SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|CI)=' || true)

# Everything mounted lives in a private mount namespace: gone when this script ends.
in_chroot() {   # in_chroot ROOTDIR USERSPEC SCRIPT: SCRIPT in bash, in the user's home
    unshare --mount --propagation private bash -s -- "$1" "$2" "$3" "${ENV_VARS[@]}" <<'INNER' 3<<<"$(printf '%s\n' "${PIP_FILES[@]}" "${PIP_DIRS[@]}" | sort -u)"
set -euo pipefail
ROOT=$1 USERSPEC=$2 SCRIPT=$3; shift 3
mount -t proc proc "$ROOT/proc"
mount --rbind /dev "$ROOT/dev"
mount -t sysfs sysfs "$ROOT/sys" 2>/dev/null || mount --rbind /sys "$ROOT/sys"
mount -t tmpfs -o mode=1777 tmpfs "$ROOT/tmp"
mkdir -p "$ROOT/run" && mount -t tmpfs -o mode=0755 tmpfs "$ROOT/run"
while IFS= read -r p; do
    [ -n "$p" ] || continue
    if [ -d "$p" ]; then mkdir -p "$ROOT$p"; else mkdir -p "$(dirname "$ROOT$p")"; [ -e "$ROOT$p" ] || : >"$ROOT$p"; fi
    mount --bind "$p" "$ROOT$p" && mount -o remount,bind,ro "$ROOT$p" 2>/dev/null || true
done <&3
for ca in /etc/ssl/certs/ca-certificates.crt; do
    [ -f "$ca" ] && [ -f "$ROOT$ca" ] && mount --bind "$ca" "$ROOT$ca"
done
if [ "$USERSPEC" = 0:0 ]; then
    exec chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive bash -c "$SCRIPT"
fi
exec chroot --userspec="$USERSPEC" "$ROOT" env -i "$@" bash -c "cd ~ && $SCRIPT"
INNER
}
run_in_chroot() {   # run_in_chroot SCRIPT: as user pi, in ~/pimem
    in_chroot "$ROOT" 1000:1000 "cd pimem && $1"
}


t0=$SECONDS
if [ "$REBUILD" = 1 ] || [ "$(cat "$ROOT/.pimem-stack" 2>/dev/null)" != "$STAMP" ]; then
    rm -rf "$ROOT" "$ROOT.new"
    say "building a $DIST $ARCH chroot in $ROOT (debootstrap; a few minutes, longer under qemu)"
    log=$CACHE/$DIST-$ARCH.debootstrap.log
    if ! debootstrap --variant=minbase --arch="$ARCH" --include="$PACKAGES" "$DIST" "$ROOT.new" ${MIRROR:+"$MIRROR"} >"$log" 2>&1; then
        tail -20 "$log" >&2
        die "debootstrap $DIST $ARCH failed (log: $log)"
    fi
    chroot "$ROOT.new" useradd --create-home --uid 1000 --shell /bin/bash pi
    echo "$STAMP" >"$ROOT.new/.pimem-stack"
    mv "$ROOT.new" "$ROOT"
    say "chroot built in $((SECONDS - t0)) s"
else
    say "using the cached $DIST $ARCH chroot ($ROOT)"
fi
missing=""
for pkg in $EXTRA_PACKAGES; do
    chroot "$ROOT" dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    t=$SECONDS
    say "installing$missing in the chroot (apt)"
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
    log=$CACHE/$DIST-$ARCH.apt.log
    if ! in_chroot "$ROOT" 0:0 "apt-get update -qq && apt-get install -y -qq --no-install-recommends$missing" >"$log" 2>&1; then
        tail -20 "$log" >&2
        die "apt-get install$missing failed in the $DIST $ARCH chroot (log: $log)"
    fi
    say "installed in $((SECONDS - t)) s"
fi
chroot "$ROOT" dpkg-query -W -f='${Package} ${Version}\n' python3 python3-numpy python3-pandas python3-matplotlib \
    | sed 's/^/stack:   apt: /'
[ "$BUILD_ONLY" = 1 ] && exit 0

# The course as the user 'pi' gets it: the files of this checkout (tracked and new, not ignored).
HOME_PI=$ROOT/home/pi
rm -rf "$HOME_PI/pimem"
mkdir -p "$HOME_PI/pimem"
git -C "$REPO" ls-files -z --cached --others --exclude-standard \
    | (cd "$REPO" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' _) \
    | tar -C "$REPO" --null -T - -cf - | tar -C "$HOME_PI/pimem" -xf -
chroot "$ROOT" chown -R pi:pi /home/pi
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true

t1=$SECONDS
if [ "$FOREIGN" = 0 ] || [ "$FULL" = 1 ]; then
    say "running the README's test command as user pi: bash scripts/test.sh"
    run_in_chroot "bash scripts/test.sh -q -p no:cacheprovider"
    say "tests done in $((SECONDS - t1)) s"
    t2=$SECONDS
    say "smoke run of the main command as user pi: bash scripts/start.sh"
    run_in_chroot "bash scripts/smoke-start.sh"
    say "smoke run done in $((SECONDS - t2)) s"
else
    say "under qemu ($ARCH): pimem's CLI on the emulator and the fast unit tests, as user pi"
    run_in_chroot 'set -e
        python3 -c "import platform, struct; print(\"stack:   python\", platform.python_version(), platform.machine(), 8 * struct.calcsize(\"P\"), \"bit\")"
        python3 -m venv --system-site-packages .venv
        .venv/bin/python -m pip install --quiet pytest hypothesis tqdm
        .venv/bin/python -m pip install --quiet --no-deps -e .   # no Jupyter: not used by these tests
        export PIMEM_BACKEND=emulator
        .venv/bin/pimem info
        .venv/bin/pimem decode FAAA8000
        .venv/bin/pimem selftest
        .venv/bin/pimem bench 4
        .venv/bin/python -m pytest -q -p no:cacheprovider tests/firmware/test_protocol.py tests/firmware/test_transport.py \
            tests/memory/test_buffer.py tests/bench/test_kernels.py tests/bench/test_timing.py tests/bench/test_benchmarks.py \
            tests/firmware/test_emulator.py tests/memory/test_ledger.py tests/firmware/test_memflags.py tests/firmware/test_mailbox.py tests/firmware/test_board.py'
    say "$ARCH run done in $((SECONDS - t1)) s"
fi
say "$DIST $ARCH: all passed in $((SECONDS - t0)) s"
