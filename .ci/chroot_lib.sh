# Shared helpers for the Debian chroots the real-host tests run in. Source it; needs bash, root for changes.
#   up_chroot_provision NAME CHROOT SUITE MARKER "WANT" SOURCES_EXTRA APT_ARGS PACKAGES...
# Idempotent: a finished chroot carries MARKER (first lines: installed versions, last line: WANT) and is reused
# untouched. Holds an exclusive flock on "$CHROOT.lock" while it changes anything; tests take the same lock shared,
# so they never see a half-made chroot. The marker is removed before any change and written last (atomically).
# Pseudo filesystems are mounted only inside a private mount namespace (unshare -m) while apt runs, so they vanish
# with it even if this script is killed; nothing is ever removed while something is mounted inside the chroot.

UP_MIRROR="${UNDERPAINT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

up_log() { echo "[${UP_NAME:-provision}] $*" >&2; }

up_retry() {  # mirrors hiccup
    local attempt
    for attempt in 1 2 3; do
        if "$@"; then return 0; fi
        up_log "failed (attempt $attempt): $*; retrying in 10 s"
        sleep 10
    done
    return 1
}

# Run a command inside CHROOT with /proc, /sys, /dev, /dev/pts mounted in a private namespace.
up_in_chroot() {
    local root=$1; shift
    unshare -m --propagation private sh -c '
        root=$1; shift
        cleanup() { for m in dev/pts dev sys proc; do umount -l "$root/$m" 2>/dev/null; done; }
        trap cleanup EXIT
        mount -t proc proc "$root/proc" && mount -t sysfs sysfs "$root/sys" &&
            mount --bind /dev "$root/dev" && mount -t devpts -o newinstance devpts "$root/dev/pts" || exit 97
        chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
            LANG=C.UTF-8 HOME=/root "$@"
    ' up_in_chroot "$root" "$@"
}

up_mounted_inside() { grep -q " $1/" /proc/mounts; }

# True when CHROOT is finished for WANT (cheap; no root, no lock).
up_ready() {  # CHROOT MARKER WANT
    [[ -f "$2" ]] && [[ "$(tail -n1 "$2")" == "$3" ]]
}

# Make sure CHROOT holds a finished debootstrap of SUITE (minbase). Caller holds the lock.
up_debootstrap() {  # CHROOT SUITE
    local root=$1 suite=$2
    if [[ -x "$root/usr/bin/apt-get" && -f "$root/.underpaint-debootstrap-done" ]]; then
        return 0
    fi
    if up_mounted_inside "$root"; then
        up_log "refusing to remove $root: something is still mounted inside it"
        return 1
    fi
    if [[ -e "$root" ]]; then
        up_log "removing incomplete chroot $root"
        rm -rf --one-file-system "$root"
    fi
    if ! command -v debootstrap >/dev/null 2>&1; then
        up_log "installing debootstrap"
        up_retry sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap"
    fi
    up_log "debootstrap $suite -> $root (minbase)"
    # debootstrap of sid/experimental from a bookworm/trixie host: the sid script is a symlink to the same one.
    unshare -m --propagation private debootstrap --variant=minbase "$suite" "$root" "$UP_MIRROR"
    touch "$root/.underpaint-debootstrap-done"
}

# Provision a chroot. Variables (set by the caller):
#   UP_NAME, UP_CHROOT, UP_SUITE (debootstrap suite), UP_MARKER, UP_PACKAGES (array),
#   UP_APT_SOURCES (extra lines for /etc/apt/sources.list.d/underpaint.list, may be empty),
#   UP_APT_ARGS (array, e.g. (-t experimental)), UP_VERSION_PKGS (array: packages whose versions go in the marker),
#   UP_CHECK (command run inside the chroot after install; must succeed, e.g. an import of PyQt).
up_provision() {
    local want="suite: $UP_SUITE; sources: ${UP_APT_SOURCES//$'\n'/ | }; apt: ${UP_APT_ARGS[*]}; packages: ${UP_PACKAGES[*]}"
    if up_ready "$UP_CHROOT" "$UP_MARKER" "$want"; then
        up_log "cached chroot ready: $UP_CHROOT ($(head -n1 "$UP_MARKER"))"
        return 0
    fi
    if [[ $(id -u) -ne 0 ]]; then
        up_log "must run as root (debootstrap + chroot)"
        return 1
    fi
    mkdir -p "$(dirname "$UP_CHROOT")"
    exec 9>"$UP_CHROOT.lock"
    flock 9
    if up_ready "$UP_CHROOT" "$UP_MARKER" "$want"; then  # another provisioner finished while we waited
        up_log "cached chroot ready: $UP_CHROOT ($(head -n1 "$UP_MARKER"))"
        return 0
    fi
    rm -f "$UP_MARKER"
    local t0=$SECONDS
    up_debootstrap "$UP_CHROOT" "$UP_SUITE" || return 1
    cp /etc/resolv.conf "$UP_CHROOT/etc/resolv.conf" 2>/dev/null || true
    if [[ -n "$UP_APT_SOURCES" ]]; then
        printf '%s\n' "$UP_APT_SOURCES" >"$UP_CHROOT/etc/apt/sources.list.d/underpaint.list"
    else
        rm -f "$UP_CHROOT/etc/apt/sources.list.d/underpaint.list"
    fi
    # sid/experimental Release files carry Valid-Until (a week); a mirror snapshot or a proxy cache that lags
    # behind makes apt refuse them ("Release file ... is expired"). Signatures are still checked.
    printf 'Acquire::Check-Valid-Until "false";\n' >"$UP_CHROOT/etc/apt/apt.conf.d/99underpaint-valid-until"
    up_log "apt-get install ${UP_APT_ARGS[*]} ${UP_PACKAGES[*]}"
    up_retry up_in_chroot "$UP_CHROOT" sh -c "apt-get update -q && apt-get install -y -q --no-install-recommends \
        ${UP_APT_ARGS[*]} ${UP_PACKAGES[*]} && apt-get clean" || { up_log "apt-get in the chroot failed"; return 1; }
    if [[ -n "${UP_CHECK:-}" ]]; then
        up_in_chroot "$UP_CHROOT" sh -c "$UP_CHECK" || { up_log "post-install check failed: $UP_CHECK"; return 1; }
    fi
    local versions="" p v
    for p in "${UP_VERSION_PKGS[@]}"; do
        v=$(chroot "$UP_CHROOT" /usr/bin/dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo missing)
        versions+="$p $v; "
    done
    printf '%s\n%s\n' "${versions%; }" "$want" >"$UP_MARKER.tmp"
    mv -f "$UP_MARKER.tmp" "$UP_MARKER"
    up_log "ready in $((SECONDS - t0)) s: $UP_CHROOT (${versions%; }; $(du -sh --one-file-system "$UP_CHROOT" | cut -f1))"
}
