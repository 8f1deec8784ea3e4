#!/usr/bin/env bash
# Usage: scripts/build-distribution3.sh SOURCE_DIR
# Builds distribution's registry 3.x (the benchmark's anchor) from a checkout of its source tree
# (e.g. the v3.0.0 tag) with Debian trixie's Go 1.24, unpacked by dpkg -x into .tools/go1.24; the
# binary lands in .tools/distribution3/registry. Then: BERTH_BENCH_DISTRIBUTION3=.tools/distribution3/registry npm run bench
set -euo pipefail
src=$(cd "${1:?usage: scripts/build-distribution3.sh SOURCE_DIR (a checkout of distribution v3)}" && pwd)
cd "$(dirname "$0")/.."
tools=$PWD/.tools
goroot=$tools/go1.24/usr/lib/go-1.24
if [ ! -x "$goroot/bin/go" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  .ci/trixie-apt "$work" golang-1.24-go golang-1.24-src
  rm -rf "$tools/go1.24"
  for deb in "$work"/*.deb; do dpkg -x "$deb" "$tools/go1.24"; done
fi
mkdir -p "$tools/distribution3"
# Its dependencies are vendored: no module download, and Go 1.24 builds its go.mod's 1.23 line as is.
(cd "$src" && env GOROOT="$goroot" GOTOOLCHAIN=local GOFLAGS=-mod=vendor GOPROXY=off GOCACHE="$tools/go1.24/cache" \
  GOPATH="$tools/go1.24/gopath" "$goroot/bin/go" build -o "$tools/distribution3/registry" ./cmd/registry)
"$tools/distribution3/registry" --version
