#!/usr/bin/env bash
# Provision the system Krita for the Krita end-to-end tests: Debian's Krita 5.1.x (bookworm; system Python 3 +
# PyQt5) and a virtual display (xvfb, xauth). Idempotent and quick when everything is present.
# The other Krita hosts live in chroots: provision_trixie.sh (5.2), provision_sid.sh (5.3),
# provision_experimental.sh (6.0).
set -euo pipefail
. "$(dirname "$0")/chroot_lib.sh"  # up_host_apt: locked, waits for a held dpkg lock, retries
UP_NAME=provision_krita

log() { echo "[provision_krita] $*" >&2; }

PACKAGES=(krita python3-pyqt5 xvfb xauth)

have_all() {
    command -v krita >/dev/null 2>&1 && command -v xvfb-run >/dev/null 2>&1 && command -v xauth >/dev/null 2>&1 \
        && [[ -f /usr/share/krita/pykrita/plugin_importer/plugin_importer.py ]] \
        && dpkg-query -W -f='${Status}\n' python3-pyqt5 2>/dev/null | grep -q "install ok installed"
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
    up_host_apt "${PACKAGES[@]}" || { log "apt-get failed"; exit 1; }
    have_all || { log "Krita is still incomplete after apt-get install"; exit 1; }
    log "Krita installed: $(dpkg-query -W -f='${Version}' krita)"
fi
