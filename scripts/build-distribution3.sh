#!/usr/bin/env bash
# Usage: scripts/build-distribution3.sh SOURCE
# Builds distribution's registry 3.x (the benchmark's anchor) with Debian trixie's Go 1.24, unpacked
# by dpkg -x into .tools/go1.24; the binary lands in .tools/distribution3/registry, where the bench
# finds it. SOURCE is a checkout of distribution's source tree (e.g. the v3.0.0 tag) or a tarball of
# one (this script downloads no source).
set -euo pipefail
cd "$(dirname "$0")/.."
tools=$PWD/.tools
goroot=$tools/go1.24/usr/lib/go-1.24
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=${1:?usage: scripts/build-distribution3.sh SOURCE (a checkout of distribution v3.0.0, or a tarball of one)}
if [ -f "$src" ]; then
  mkdir -p "$work/src"
  tar -xzf "$src" -C "$work/src" --strip-components=1
  src=$work/src
fi
src=$(cd "$src" && pwd)
if [ ! -x "$goroot/bin/go" ]; then
  mkdir -p "$work/debs"
  .ci/trixie-apt "$work/debs" golang-1.24-go golang-1.24-src
  rm -rf "$tools/go1.24"
  for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$tools/go1.24"; done
fi
mkdir -p "$tools/distribution3"
# Its dependencies are vendored: no module download, and Go 1.24 builds its go.mod's 1.23 line as is.
(cd "$src" && env GOROOT="$goroot" GOTOOLCHAIN=local GOFLAGS=-mod=vendor GOPROXY=off GOCACHE="$tools/go1.24/cache" \
  GOPATH="$tools/go1.24/gopath" "$goroot/bin/go" build -o "$tools/distribution3/registry" ./cmd/registry)
"$tools/distribution3/registry" --version
