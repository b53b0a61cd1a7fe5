#!/usr/bin/env bash
# Provision a Debian sid chroot with Krita 5.3.x (system Python 3 + PyQt5) and GIMP 3.2.x (gimp-console-3.2,
# python3-gi, GIR typelibs) plus a virtual display (xvfb, xauth), for the real-host tests of both plugins.
# One chroot serves both hosts. Default $UNDERPAINT_SID_CHROOT=/var/cache/underpaint/sid; cached (marker file
# .underpaint-sid-ready with the installed versions on its first line), locked ($CHROOT.lock), see chroot_lib.sh.
set -euo pipefail
. "$(dirname "$0")/chroot_lib.sh"

UP_NAME=provision_sid
UP_CHROOT="${UNDERPAINT_SID_CHROOT:-/var/cache/underpaint/sid}"
UP_SUITE=sid
UP_MARKER="$UP_CHROOT/.underpaint-sid-ready"
UP_APT_SOURCES=""
UP_APT_ARGS=()
UP_PACKAGES=(krita python3-pyqt5
             gimp python3 python3-gi gir1.2-gimp-3.0 gir1.2-gegl-0.4 gir1.2-babl-0.1 gir1.2-gtk-3.0
             ca-certificates xvfb xauth)
UP_VERSION_PKGS=(krita gimp python3-pyqt5 python3)
UP_CHECK="python3 -c 'import PyQt5.QtCore' && test -x /usr/bin/krita && test -x /usr/bin/gimp-console-3.2"
up_provision
