#!/usr/bin/env bash
# Vendors the web interface's third-party browser files into serving/assets/ from the npm
# registry: each package's registry tarball is checked against its pinned sha256, then the one
# file the pages load and the package's LICENSE/NOTICE are copied out. The results are
# committed and embedded in the serving binary (serving/src/ui/assets.rs), so neither builds
# nor browsers ever reach npm or a CDN. Run it again only to change a version (then update
# the pins here and the versioned paths in serving/src/ui/assets.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
out=serving/assets
registry=${NPM_REGISTRY:-https://registry.npmjs.org}

# name version sha256-of-tarball file-in-package destination
packages=(
  "htmx.org 2.0.11 165a2655073e9e6e55e307a7c74e8ebcdb76afb7701f9c16cfd106a13add408e dist/htmx.min.js htmx-2.0.11.min.js"
  "echarts 6.1.0 681aff88cc1038c3fa941a3a53d1b177a52250b05335efc607d6105ae13be481 dist/echarts.common.min.js echarts-6.1.0.common.min.js"
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
for entry in "${packages[@]}"; do
  read -r name version sha file dest <<<"$entry"
  tarball="$work/$name-$version.tgz"
  curl -fsSL "$registry/$name/-/$name-$version.tgz" -o "$tarball"
  echo "$sha  $tarball" | sha256sum --check --quiet || { echo "checksum mismatch for $name $version" >&2; exit 1; }
  mkdir -p "$work/$name"
  tar -xzf "$tarball" -C "$work/$name"
  cp "$work/$name/package/$file" "$out/$dest"
  cp "$work/$name/package/LICENSE" "$out/$name-$version.LICENSE"
  if [ -f "$work/$name/package/NOTICE" ]; then
    cp "$work/$name/package/NOTICE" "$out/$name-$version.NOTICE"
  fi
  echo "vendored $name $version -> $out/$dest" >&2
done
