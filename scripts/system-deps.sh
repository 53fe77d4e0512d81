#!/usr/bin/env bash
# Install the Debian packages the harness uses, only those missing. Needs root (or sudo) for apt-get.
set -euo pipefail
# Arguments: extra packages whose command has the same name (e.g. wrk for `make bench`).
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
for pkg in "$@"; do command -v "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "system-deps: missing ${need[*]}; install them with apt-get (needs root)" >&2; exit 1; fi
fi
echo "system-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
