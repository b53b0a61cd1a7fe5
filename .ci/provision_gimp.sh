#!/usr/bin/env bash
# GIMP 3.0.x now lives in the trixie chroot that also holds Krita 5.2.x: see provision_trixie.sh (kept for old callers).
exec bash "$(dirname "$0")/provision_trixie.sh" "$@"
