#!/bin/sh
# install-deps.sh - install the Debian packages parley builds and tests with.
# Idempotent: checks each package with dpkg-query and apt-installs only the
# missing ones. Needs root (or sudo) only when something is missing.
set -eu

# build toolchain, test framework, fuzzing/sanitizer runtime, library deps
PKGS="cmake make gcc clang pkg-config libc6-dev libcmocka-dev libclang-rt-14-dev libpcre2-dev libcjson-dev libcurl4-openssl-dev libssl-dev libyaml-dev libcivetweb-dev nettle-dev zlib1g-dev"
# speech: audio I/O, resampling, eSpeak NG (TTS), PocketSphinx + its en-us model (STT),
# ALSA (microphone and speaker for `parley voice --mic`)
PKGS="$PKGS libasound2-dev libsndfile1-dev libsamplerate0-dev libespeak-ng-dev espeak-ng-data libpocketsphinx-dev pocketsphinx-en-us"
# web page tests (tests/web): chromium for playwright-core; firefox-esr driven
# over WebDriver BiDi (the page must work in both)
PKGS="$PKGS chromium firefox-esr"

# tests/web's npm packages (playwright-core, pinned by package-lock.json) into
# its git-ignored node_modules; again only when the lock file changed. Without
# npm or the registry the browser tests skip, so this only warns.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
web_deps() {
  d="$ROOT/tests/web"
  [ -f "$d/package-lock.json" ] || return 0
  if ! command -v npm >/dev/null 2>&1; then
    echo "install-deps: npm not found: the browser tests (tests/web) will skip" >&2
    return 0
  fi
  if [ ! -f "$d/node_modules/.package-lock.json" ] || [ "$d/package-lock.json" -nt "$d/node_modules/.package-lock.json" ]; then
    (cd "$d" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) ||
      echo "install-deps: npm ci failed in tests/web: the browser tests will skip" >&2
  fi
  return 0
}

# Test-only npm packages (package.json / package-lock.json at the root): the
# official openai client that tests/server drives `parley serve` with. `npm ci`
# into the git-ignored node_modules/, only when the lock file changed since the
# last install (so `make build` stays instant). No npm: the test skips or fails.
npm_deps() {
  root=$(cd "$(dirname "$0")/.." && pwd)
  [ -f "$root/package-lock.json" ] || return 0
  command -v npm >/dev/null 2>&1 || { echo "install-deps: npm not found; the openai client test needs it" >&2; return 0; }
  stamp="$root/node_modules/.package-lock.json"
  if [ ! -f "$stamp" ] || [ "$root/package-lock.json" -nt "$stamp" ]; then
    (cd "$root" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) ||
      echo "install-deps: npm ci failed; the openai client test will fail" >&2
  fi
}

missing=""
for p in $PKGS; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$st" in
    *"install ok installed"*) ;;
    *) missing="$missing $p" ;;
  esac
done
if [ -z "$missing" ]; then
  npm_deps
  web_deps
  exit 0
fi

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
npm_deps
web_deps
