#!/usr/bin/env bash
# Provision GIMP 3.0.4 for the GIMP end-to-end tests: a Debian trixie chroot with gimp-console-3.0.
# Idempotent: a finished chroot is cached at $UNDERPAINT_GIMP_CHROOT (marker file) and reused.
# Needs root. Pseudo filesystems are mounted only while apt runs, inside a private mount namespace
# (unshare -m: they vanish with it even if this script is killed) and unmounted explicitly as well.
# Holds the lock file the GIMP tests use, so it never changes the chroot under a running test.
set -euo pipefail

CHROOT="${UNDERPAINT_GIMP_CHROOT:-/var/cache/underpaint/trixie}"
MIRROR="${UNDERPAINT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
MARKER="$CHROOT/.underpaint-gimp-ready"
# xvfb + xauth: a virtual display for the tests of the plug-in's preview window.
PACKAGES=(gimp python3 python3-gi gir1.2-gimp-3.0 gir1.2-gegl-0.4 gir1.2-babl-0.1 gir1.2-gtk-3.0 ca-certificates
          xvfb xauth)
WANT="packages: ${PACKAGES[*]}"

log() { echo "[provision_gimp] $*" >&2; }

if [[ -f "$MARKER" && -x "$CHROOT/usr/bin/gimp-console-3.0" ]] && grep -qxF "$WANT" "$MARKER"; then
    log "cached chroot ready: $CHROOT ($(head -n1 "$MARKER"))"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    log "must run as root (debootstrap + chroot)"
    exit 1
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap
fi

mkdir -p "$(dirname "$CHROOT")"
exec 9>"$CHROOT.lock"
flock 9

# Run a command inside the chroot with /proc, /sys, /dev, /dev/pts mounted in a private namespace.
in_chroot() {
    unshare -m --propagation private sh -c '
        root=$1; shift
        cleanup() { for m in dev/pts dev sys proc; do umount -l "$root/$m" 2>/dev/null; done; }
        trap cleanup EXIT
        mount -t proc proc "$root/proc" && mount -t sysfs sysfs "$root/sys" &&
            mount --bind /dev "$root/dev" && mount -t devpts -o newinstance devpts "$root/dev/pts" || exit 97
        chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
            LANG=C.UTF-8 HOME=/root "$@"
    ' in_chroot "$CHROOT" "$@"
}

any_mount_inside() {
    grep -q " $CHROOT/" /proc/mounts
}

if [[ ! -x "$CHROOT/usr/bin/apt-get" || ! -f "$CHROOT/.underpaint-debootstrap-done" ]]; then
    if [[ -e "$CHROOT" ]]; then
        if any_mount_inside; then
            log "refusing to remove $CHROOT: something is still mounted inside it"
            exit 1
        fi
        log "removing incomplete chroot $CHROOT"
        rm -rf --one-file-system "$CHROOT"
    fi
    log "debootstrap trixie -> $CHROOT (minbase)"
    unshare -m --propagation private debootstrap --variant=minbase trixie "$CHROOT" "$MIRROR"
    touch "$CHROOT/.underpaint-debootstrap-done"
fi

cp /etc/resolv.conf "$CHROOT/etc/resolv.conf" 2>/dev/null || true
log "apt-get install ${PACKAGES[*]}"
in_chroot sh -c "apt-get update -q && apt-get install -y -q --no-install-recommends ${PACKAGES[*]} && apt-get clean"

VERSION=$(chroot "$CHROOT" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/tmp gimp-console-3.0 --version | tail -n1)
log "installed: $VERSION"
printf '%s\n%s\n' "$VERSION" "$WANT" >"$MARKER"
