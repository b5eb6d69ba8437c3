#!/bin/sh
# install-deps.sh - install the Debian packages parley builds and tests with.
# Idempotent: checks each package with dpkg-query and apt-installs only the
# missing ones. Needs root (or sudo) only when something is missing.
set -eu

# build toolchain, test framework, fuzzing/sanitizer runtime, library deps
PKGS="cmake make gcc clang pkg-config libc6-dev libcmocka-dev libclang-rt-14-dev libpcre2-dev libcjson-dev libcurl4-openssl-dev libssl-dev libyaml-dev zlib1g-dev"
# speech: audio I/O, resampling, eSpeak NG (TTS), PocketSphinx + its en-us model (STT)
PKGS="$PKGS libsndfile1-dev libsamplerate0-dev libespeak-ng-dev espeak-ng-data libpocketsphinx-dev pocketsphinx-en-us"

missing=""
for p in $PKGS; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$st" in
    *"install ok installed"*) ;;
    *) missing="$missing $p" ;;
  esac
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=sudo
  else
    echo "install-deps: not root. Run this once, then retry:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y$missing" >&2
    exit 1
  fi
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when they are missing or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -n 1)" ]; then
  $SUDO apt-get update -q >/dev/null || { echo "install-deps: apt-get update failed" >&2; exit 1; }
fi
if ! $SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null; then
  echo "install-deps: apt-get install failed for:$missing" >&2
  exit 1
fi
echo "install-deps: done"
