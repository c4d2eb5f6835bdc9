#!/usr/bin/env bash
# Installs the Debian 12 packages mediaml needs, only those missing (idempotent).
#   scripts/setup-debian.sh          build + test dependencies
#   scripts/setup-debian.sh bench    also python3-torch, for the parity fixtures and `make bench`
set -euo pipefail
pkgs=(build-essential cmake pkg-config libopenblas-dev zlib1g-dev libpng-dev libcjson-dev libpcre2-dev dataset-fashion-mnist)
if [ "${1:-}" = bench ]; then pkgs+=(python3-torch python3-numpy time); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "setup: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
