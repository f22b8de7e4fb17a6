#!/usr/bin/env bash
# The system programs the test suite runs beside Python: Node.js and npm (the TypeScript
# capnweb, for the interop tests), nginx (the reverse-proxy test) and headless Chromium (the
# browser tests, driven by Playwright, which cannot download browsers here). Installs the
# missing ones with apt when it can (root, or sudo), else says what to install.
set -euo pipefail
need=()
command -v node >/dev/null && command -v npm >/dev/null || need+=(nodejs npm)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v chromium-headless-shell >/dev/null || command -v chromium >/dev/null \
  || need+=(chromium-headless-shell)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  apt-get update -q && apt-get install -y -q --no-install-recommends "${need[@]}"
elif command -v sudo >/dev/null; then
  sudo apt-get update -q && sudo apt-get install -y -q --no-install-recommends "${need[@]}"
else
  echo "the test suite needs: ${need[*]} (Debian packages); install them and run again" >&2
  exit 1
fi
