#!/usr/bin/env bash
# Installs the bpmn-js viewer from the npm registry into forms/static/vendor/bpmn-js, where
# liaison serves it itself (no CDN). Pinned version, checked against a pinned integrity hash.
# Idempotent. Without npm or the registry it warns and exits 0: the designer then shows a
# notice instead of the diagram. A tarball that does not match the pinned hash exits 1.
set -euo pipefail

VERSION=18.31.1
INTEGRITY=sha512-Hc7LzrgwfcBRUAdI/380Q2v1MJ115atGEVGadawLfDbHdo+r+IkmNj8fuYPFmWglUYt1KYIaC46OeX16HGTKQw==
FILES=(dist/bpmn-navigated-viewer.production.min.js dist/assets/diagram-js.css
       dist/assets/bpmn-js.css LICENSE)

root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/forms/static/vendor/bpmn-js"
python=${PYTHON:-python3}

if [ -f "$dest/VERSION" ] && [ "$(cat "$dest/VERSION")" = "$VERSION" ]; then
  exit 0
fi
warn() { echo "fetch_bpmn_js: $*; the designer will show a notice instead of the diagram" >&2; }
if ! command -v npm >/dev/null 2>&1; then
  warn "npm not found (install Node.js and npm)"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! (cd "$tmp" && npm pack --silent --loglevel=error "bpmn-js@$VERSION" >/dev/null 2>"$tmp/npm.log"); then
  warn "npm pack bpmn-js@$VERSION failed: $(tail -n 1 "$tmp/npm.log")"
  exit 0
fi
tarball="$tmp/bpmn-js-$VERSION.tgz"
actual=$("$python" -c 'import base64, hashlib, sys
print("sha512-" + base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$tarball")
if [ "$actual" != "$INTEGRITY" ]; then
  echo "fetch_bpmn_js: bpmn-js-$VERSION.tgz does not match the pinned integrity; not installed" >&2
  exit 1
fi

tar -xzf "$tarball" -C "$tmp" "${FILES[@]/#/package/}"
mkdir -p "$dest"
for file in "${FILES[@]}"; do
  cp "$tmp/package/$file" "$dest/$(basename "$file")"
done
echo "$VERSION" > "$dest/VERSION"
echo "fetch_bpmn_js: bpmn-js $VERSION installed in ${dest#"$root"/}"
