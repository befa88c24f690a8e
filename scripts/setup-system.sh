#!/usr/bin/env bash
# Installs the Debian packages Pixelmerge needs, only those that are missing.
# Fonts: Noto Sans (regular/bold), Arabic, Hebrew, Devanagari, CJK and colour emoji are the
# renderer's bundled default chain. Libraries: Pango/HarfBuzz for WeasyPrint, zbar for the QR tests.
# Browser: Debian's chromium, which the end-to-end tests drive through Playwright (no downloaded browser).
# Servers: PostgreSQL and Redis binaries (make run and the tests start their own instances; the
# packages' own system services are not needed).
set -euo pipefail
PACKAGES=(
  fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji fontconfig
  libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 libfribidi0 libraqm0
  libzbar0
  postgresql redis-server
  chromium
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup: installing system packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
