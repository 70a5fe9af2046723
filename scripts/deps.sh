#!/usr/bin/env bash
# Installs the Debian packages eddy needs that are missing (as root, or through
# sudo). Safe to run again: it does nothing when everything is there.
#   scripts/deps.sh          what building and testing eddy needs
#   scripts/deps.sh --peers  that, plus the peers and chart of scripts/compare.sh
set -euo pipefail

# libclang-rt-14-dev: clang's sanitizer runtimes (only "recommended" by clang on Debian 12).
packages=(g++ clang libclang-rt-14-dev meson ninja-build pkg-config libuv1-dev libgtest-dev libgmock-dev
  libbenchmark-dev clang-format)
case ${1:-} in
  "") ;;
  # Boost.Asio (headers), uvloop for Debian's python3, and the chart.
  --peers) packages+=(libboost-dev python3 python3-uvloop python3-matplotlib) ;;
  *) echo "usage: scripts/deps.sh [--peers]" >&2; exit 2 ;;
esac
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

echo "eddy: installing missing Debian packages: ${missing[*]}" >&2
if [[ $(id -u) == 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "eddy: run as root, or install them yourself: apt-get install ${missing[*]}" >&2
  exit 1
fi
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
