#!/usr/bin/env bash
# Installs the Debian packages the tests need when they are missing; fails
# loudly if it cannot. A package counts as present when its command is on
# PATH (for packages with a known command) or dpkg knows it installed.
set -euo pipefail
declare -A cmd=(
  [prometheus]=promtool
  [prometheus-alertmanager]=prometheus-alertmanager
  [redis-server]=redis-server
  [chromium]=chromium
  [nginx-light]=nginx
)
missing=()
for p in "$@"; do
  c=${cmd[$p]:-}
  if [ -n "$c" ]; then
    command -v "$c" >/dev/null 2>&1 && continue
  elif dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    continue
  fi
  missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
if [ "$(id -u)" != 0 ]; then
  echo "install-debian-packages: need root to apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || { echo "install-debian-packages: apt-get update failed" >&2; exit 1; }
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
  echo "install-debian-packages: apt-get install ${missing[*]} failed" >&2; exit 1; }
# Debian starts services it installs; the tests run their own instances.
for s in prometheus prometheus-alertmanager redis-server nginx; do
  if command -v systemctl >/dev/null 2>&1; then systemctl stop "$s" >/dev/null 2>&1 || true; fi
  if command -v service >/dev/null 2>&1; then service "$s" stop >/dev/null 2>&1 || true; fi
done
