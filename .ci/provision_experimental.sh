#!/usr/bin/env bash
# Provision a Debian experimental chroot (sid base + experimental pinned for Krita) with Krita 6.0.x (Qt 6, system
# Python 3 + PyQt6) plus a virtual display (xvfb, xauth), for the Krita 6 real-host tests.
# Default $UNDERPAINT_EXPERIMENTAL_CHROOT=/var/cache/underpaint/experimental; cached (marker file
# .underpaint-experimental-ready with the installed versions on its first line), locked, see chroot_lib.sh.
set -euo pipefail
. "$(dirname "$0")/chroot_lib.sh"

UP_NAME=provision_experimental
UP_CHROOT="${UNDERPAINT_EXPERIMENTAL_CHROOT:-/var/cache/underpaint/experimental}"
UP_SUITE=sid
UP_MARKER="$UP_CHROOT/.underpaint-experimental-ready"
UP_APT_SOURCES="deb $UP_MIRROR experimental main"
UP_APT_ARGS=(-t experimental)
# qt6-svg-plugins: Krita 6 icons are SVG (without it: hundreds of "Unsupported image format" lines, blank icons).
UP_PACKAGES=(krita python3-pyqt6 qt6-svg-plugins ca-certificates xvfb xauth)
UP_VERSION_PKGS=(krita python3-pyqt6 python3)
UP_CHECK="python3 -c 'import PyQt6.QtCore' && test -x /usr/bin/krita"
up_provision
