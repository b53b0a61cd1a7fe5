#!/usr/bin/env bash
# Provision a Debian trixie chroot with GIMP 3.0.x (gimp-console-3.0, python3-gi, GIR typelibs) and Krita 5.2.x
# (system Python 3 + PyQt5) plus a virtual display (xvfb, xauth), for the real-host tests of both plugins.
# One chroot serves both hosts. Default $UNDERPAINT_TRIXIE_CHROOT (or the older $UNDERPAINT_GIMP_CHROOT)
# =/var/cache/underpaint/trixie; cached (marker .underpaint-trixie-ready, installed versions on its first line),
# locked ($CHROOT.lock), see chroot_lib.sh. An older GIMP-only chroot is upgraded in place (no new debootstrap).
set -euo pipefail
. "$(dirname "$0")/chroot_lib.sh"

UP_NAME=provision_trixie
UP_CHROOT="${UNDERPAINT_TRIXIE_CHROOT:-${UNDERPAINT_GIMP_CHROOT:-/var/cache/underpaint/trixie}}"
UP_SUITE=trixie
UP_MARKER="$UP_CHROOT/.underpaint-trixie-ready"
UP_APT_SOURCES=""
UP_APT_ARGS=()
UP_PACKAGES=(krita python3-pyqt5
             gimp python3 python3-gi gir1.2-gimp-3.0 gir1.2-gegl-0.4 gir1.2-babl-0.1 gir1.2-gtk-3.0
             ca-certificates xvfb xauth)
UP_VERSION_PKGS=(krita gimp python3-pyqt5 python3)
UP_CHECK="python3 -c 'import PyQt5.QtCore' && test -x /usr/bin/krita && test -x /usr/bin/gimp-console-3.0"
up_provision
