#!/bin/sh
# Install the Debian packages tide needs to build, test and benchmark, if
# any are missing.  Needs root (or sudo) only when something is missing.
set -eu

PACKAGES="
  build-essential cmake pkg-config
  liblua5.4-dev lua5.4 libuv1-dev libcurl4-openssl-dev libhttp-parser-dev
  zlib1g-dev
  libreadline-dev
  lua-busted lua-cjson python3-aiohttp
  curl nginx-light wrk tmux valgrind python3 nodejs
  time hyperfine
  clang libclang-rt-14-dev
"

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

[ -z "$missing" ] && exit 0

echo "tide: installing missing Debian packages:$missing"
if [ "$(id -u)" = 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "tide: these packages are missing and I am not root (and there is no sudo):" >&2
  echo "  apt-get install$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
