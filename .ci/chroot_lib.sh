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

# apt-get on the host: one provisioner at a time (our own lock), and a dpkg/apt lock held by anything else is waited
# for (up to 10 min) instead of failing at once. Used by every host-level apt call of .ci/.
UP_HOST_APT_LOCK=/var/lock/underpaint-host-apt.lock
up_host_apt() {  # PACKAGES...
    (
        flock -w 1800 9 || { up_log "gave up waiting for $UP_HOST_APT_LOCK"; exit 1; }
        up_retry sh -c 'apt-get -q -o DPkg::Lock::Timeout=600 update &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 "$@"' up_host_apt "$@"
    ) 9>"$UP_HOST_APT_LOCK"
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

# Make sure CHROOT holds a finished debootstrap of SUITE (minbase). Caller holds the lock. Every step is checked
# explicitly (callers run it as `up_debootstrap ... || return 1`, which switches `set -e` off inside it).
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
        rm -rf --one-file-system "$root" || { up_log "could not remove $root"; return 1; }
    fi
    if ! command -v debootstrap >/dev/null 2>&1; then
        up_log "installing debootstrap"
        up_host_apt debootstrap || { up_log "installing debootstrap on the host failed"; return 1; }
        command -v debootstrap >/dev/null 2>&1 || { up_log "debootstrap is still missing after apt-get"; return 1; }
    fi
    up_log "debootstrap $suite -> $root (minbase)"
    # debootstrap of sid/experimental from a bookworm/trixie host: the sid script is a symlink to the same one.
    if ! up_retry unshare -m --propagation private debootstrap --variant=minbase "$suite" "$root" "$UP_MIRROR"; then
        up_log "debootstrap $suite failed"
        return 1
    fi
    [[ -x "$root/usr/bin/apt-get" ]] || { up_log "debootstrap left no apt-get in $root"; return 1; }
    touch "$root/.underpaint-debootstrap-done" || return 1
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
