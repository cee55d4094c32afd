#!/usr/bin/env bash
# Debian packages the test suite and the fast paths need. Run as root before `npm ci`
# (npm ci builds the ISA-L erasure addon against libisal-dev).
set -euo pipefail
packages=(libisal-dev redis-tools python3-redis)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages present: ${packages[*]}"
  exit 0
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}"
