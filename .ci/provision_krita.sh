#!/usr/bin/env bash
# Provision Krita for the Krita end-to-end tests. Idempotent and quick when everything is present.
#  * always: Debian's Krita 5.1.x (system Python 3 + PyQt5) and a virtual display (xvfb, xauth);
#  * with UNDERPAINT_KRITA_TRIXIE=1: also Krita 5.2.x in a Debian trixie chroot at $UNDERPAINT_KRITA_CHROOT
#    (default /var/cache/underpaint/trixie-krita); the same tests then run against it as well.
#    Cached: a finished chroot carries a marker file and is reused. Costs ~2.2 GB of disk.
set -euo pipefail

log() { echo "[provision_krita] $*" >&2; }

PACKAGES=(krita python3-pyqt5 xvfb xauth)
CHROOT="${UNDERPAINT_KRITA_CHROOT:-/var/cache/underpaint/trixie-krita}"
MIRROR="${UNDERPAINT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
MARKER="$CHROOT/.underpaint-krita-ready"
WANT="packages: ${PACKAGES[*]}"

have_all() {
    command -v krita >/dev/null 2>&1 && command -v xvfb-run >/dev/null 2>&1 && command -v xauth >/dev/null 2>&1 \
        && [[ -f /usr/share/krita/pykrita/plugin_importer/plugin_importer.py ]] \
        && dpkg-query -W -f='${Status}\n' python3-pyqt5 2>/dev/null | grep -q "install ok installed"
}

apt_install() {  # retry: mirrors hiccup
    for attempt in 1 2 3; do
        if "$@"; then
            return 0
        fi
        log "apt failed (attempt $attempt); retrying in 10 s"
        sleep 10
    done
    return 1
}

# ------------------------------------------------------------------ system Krita
if have_all; then
    log "Krita ready: $(dpkg-query -W -f='${Version}' krita 2>/dev/null || echo unknown)"
else
    if [[ $(id -u) -ne 0 ]]; then
        log "Krita is missing and installing it needs root: apt-get install -y ${PACKAGES[*]}"
        exit 1
    fi
    log "installing ${PACKAGES[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt_install sh -c "apt-get update -q && apt-get install -y -q ${PACKAGES[*]}" || { log "apt-get failed"; exit 1; }
    have_all || { log "Krita is still incomplete after apt-get install"; exit 1; }
    log "Krita installed: $(dpkg-query -W -f='${Version}' krita)"
fi

# ------------------------------------------------------------------ optional: Krita 5.2 in a trixie chroot
if [[ "${UNDERPAINT_KRITA_TRIXIE:-0}" != "1" ]]; then
    exit 0
fi
if [[ -f "$MARKER" && -x "$CHROOT/usr/bin/krita" ]] && grep -qxF "$WANT" "$MARKER"; then
    log "cached trixie chroot ready: $CHROOT ($(head -n1 "$MARKER"))"
    exit 0
fi
[[ $(id -u) -eq 0 ]] || { log "the trixie chroot needs root (debootstrap + chroot)"; exit 1; }
if ! command -v debootstrap >/dev/null 2>&1; then
    apt_install sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap"
fi
mkdir -p "$(dirname "$CHROOT")"
exec 9>"$CHROOT.lock"
flock 9

if grep -q " $CHROOT/" /proc/mounts; then
    log "refusing to touch $CHROOT: something is mounted inside it"
    exit 1
fi
if [[ ! -f "$CHROOT/.underpaint-debootstrap-done" ]]; then
    rm -rf --one-file-system "$CHROOT"
    log "debootstrap trixie -> $CHROOT (minbase)"
    unshare -m --propagation private debootstrap --variant=minbase trixie "$CHROOT" "$MIRROR"
    touch "$CHROOT/.underpaint-debootstrap-done"
fi
cp /etc/resolv.conf "$CHROOT/etc/resolv.conf" 2>/dev/null || true

log "apt-get install ${PACKAGES[*]} (trixie)"
# /proc, /sys, /dev only while apt runs, in a private mount namespace that vanishes with it.
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
apt_install in_chroot sh -c "apt-get update -q && apt-get install -y -q ${PACKAGES[*]} && apt-get clean" \
    || { log "apt-get in the chroot failed"; exit 1; }

VERSION=$(chroot "$CHROOT" /usr/bin/dpkg-query -W -f='${Version}' krita)
printf 'krita %s\n%s\n' "$VERSION" "$WANT" >"$MARKER"
log "trixie chroot ready: krita $VERSION"
