#!/usr/bin/env bash
# Builds distribution 3.0.0's registry into .tools/distribution3/ for `npm run bench` (not for the
# tests): Go 1.24 from Debian trixie's packages (an apt configuration of its own, so the machine's
# sources stay untouched), the sources from the v3.0.0 tag with their vendored modules. Set
# DISTRIBUTION3_SRC to a tarball or directory of the v3.0.0 sources when GitHub is not reachable.
# Then run the bench with BERTH_BENCH_DISTRIBUTION3=.tools/distribution3/registry.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="$PWD/.tools"
out="$tools/distribution3/registry"
if [ -x "$out" ]; then
  echo "$out"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

go="$tools/go1.24/usr/lib/go-1.24/bin/go"
if [ ! -x "$go" ]; then
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/etc/preferences.d"
  echo "deb http://deb.debian.org/debian trixie main" >"$work/sources.list"
  : >"$work/status"
  opts=(
    -o "Dir::Etc::SourceList=$work/sources.list"
    -o "Dir::Etc::SourceParts=-"
    -o "Dir::Etc::PreferencesParts=$work/etc/preferences.d"
    -o "Dir::State::Lists=$work/lists"
    -o "Dir::State::Status=$work/status"
    -o "Dir::Cache=$work/cache"
    -o "APT::Sandbox::User=root"
  )
  apt-get "${opts[@]}" update -qq
  (cd "$work" && apt-get "${opts[@]}" download golang-1.24-go golang-1.24-src >/dev/null)
  rm -rf "$tools/go1.24"
  mkdir -p "$tools/go1.24"
  for deb in "$work"/golang-1.24-go_*.deb "$work"/golang-1.24-src_*.deb; do
    dpkg -x "$deb" "$tools/go1.24"
  done
fi

src="$work/src"
mkdir -p "$src"
if [ -n "${DISTRIBUTION3_SRC:-}" ] && [ -d "$DISTRIBUTION3_SRC" ]; then
  cp -a "$DISTRIBUTION3_SRC/." "$src/"
else
  archive="${DISTRIBUTION3_SRC:-}"
  if [ -z "$archive" ]; then
    archive="$work/v3.0.0.tar.gz"
    if ! curl -fsSL -o "$archive" \
      https://github.com/distribution/distribution/archive/refs/tags/v3.0.0.tar.gz; then
      echo "distribution3: cannot download the v3.0.0 sources from GitHub;" \
        "set DISTRIBUTION3_SRC to a tarball or directory of them" >&2
      exit 1
    fi
  fi
  tar -xzf "$archive" -C "$src" --strip-components=1
fi

mkdir -p "$(dirname "$out")"
(
  cd "$src"
  export GOROOT="$tools/go1.24/usr/lib/go-1.24" GOTOOLCHAIN=local GOFLAGS=-mod=vendor
  export GOCACHE="$work/gocache" GOPATH="$work/gopath" CGO_ENABLED=0
  "$go" build -trimpath -ldflags "-s -w" -o "$out" ./cmd/registry
)
"$out" --version
