#!/usr/bin/env bash
# Installs what a fresh machine lacks, then the npm dependencies.
# Linux (Debian/Ubuntu): the X11 stack, AT-SPI, the apps the e2e tests drive, Chromium, fonts.
# macOS: only npm dependencies (the native helper builds in npm's install step when Swift is present).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(uname -s)" = "Linux" ] && command -v apt-get >/dev/null 2>&1; then
  pkgs=(xvfb xauth dbus dbus-x11 systemd at-spi2-core xdotool x11-utils x11-xserver-utils gnome-calculator xterm chromium fonts-dejavu-core imagemagick python3-pyatspi)
  missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "setup: installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-fund --no-audit
fi
