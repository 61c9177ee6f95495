#!/usr/bin/env bash
# Installs files of one pinned npm package into forms/static/vendor/<folder>, where liaison
# serves them itself (no CDN). The tarball is checked against a pinned integrity hash.
# Idempotent. Without npm or the registry it warns and exits 0 (the page that uses the
# package then says so); a tarball that does not match the pinned hash exits 1.
# Usage: fetch_npm_asset.sh PACKAGE VERSION INTEGRITY FOLDER "WHAT WITHOUT IT" FILE…
set -euo pipefail

package=$1 version=$2 integrity=$3 folder=$4 without=$5
shift 5
files=("$@")
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/forms/static/vendor/$folder"
python=${PYTHON:-python3}
me="fetch $package"

if [ -f "$dest/VERSION" ] && [ "$(cat "$dest/VERSION")" = "$version" ]; then
  exit 0
fi
warn() { echo "$me: $*; $without" >&2; }
if ! command -v npm >/dev/null 2>&1; then
  warn "npm not found (install Node.js and npm)"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! (cd "$tmp" && npm pack --silent --loglevel=error "$package@$version" >/dev/null 2>"$tmp/npm.log"); then
  warn "npm pack $package@$version failed: $(tail -n 1 "$tmp/npm.log")"
  exit 0
fi
tarball="$tmp/$package-$version.tgz"
actual=$("$python" -c 'import base64, hashlib, sys
print("sha512-" + base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$tarball")
if [ "$actual" != "$integrity" ]; then
  echo "$me: $package-$version.tgz does not match the pinned integrity; not installed" >&2
  exit 1
fi

tar -xzf "$tarball" -C "$tmp" "${files[@]/#/package/}"
mkdir -p "$dest"
for file in "${files[@]}"; do
  cp "$tmp/package/$file" "$dest/$(basename "$file")"
done
echo "$version" > "$dest/VERSION"
echo "$me: $package $version installed in ${dest#"$root"/}"
