#!/usr/bin/env bash
# Installs Chart.js from the npm registry into forms/static/vendor/chart.js, where liaison
# serves it itself for the SLA page (no CDN). Pinned version, checked against a pinned
# integrity hash. Idempotent. Without npm or the registry it warns and exits 0: the SLA page
# then shows its figures as a table with a notice instead of charts. A tarball that does not
# match the pinned hash exits 1.
set -euo pipefail

VERSION=4.6.1
INTEGRITY=sha512-hJyniucsFmq//EvXYvJ6c6mahPoI3kaxdjVH8awTaJ/fDNWeSqqqArixMJWkWNN6fcYvPU3HneSANFNYtRi61g==
FILES=(dist/chart.umd.min.js LICENSE.md)

root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/forms/static/vendor/chart.js"
python=${PYTHON:-python3}

if [ -f "$dest/VERSION" ] && [ "$(cat "$dest/VERSION")" = "$VERSION" ]; then
  exit 0
fi
warn() { echo "fetch_chart_js: $*; the SLA page will show tables instead of charts" >&2; }
if ! command -v npm >/dev/null 2>&1; then
  warn "npm not found (install Node.js and npm)"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! (cd "$tmp" && npm pack --silent --loglevel=error "chart.js@$VERSION" >/dev/null 2>"$tmp/npm.log"); then
  warn "npm pack chart.js@$VERSION failed: $(tail -n 1 "$tmp/npm.log")"
  exit 0
fi
tarball="$tmp/chart.js-$VERSION.tgz"
actual=$("$python" -c 'import base64, hashlib, sys
print("sha512-" + base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$tarball")
if [ "$actual" != "$INTEGRITY" ]; then
  echo "fetch_chart_js: chart.js-$VERSION.tgz does not match the pinned integrity; not installed" >&2
  exit 1
fi

tar -xzf "$tarball" -C "$tmp" "${FILES[@]/#/package/}"
mkdir -p "$dest"
for file in "${FILES[@]}"; do
  cp "$tmp/package/$file" "$dest/$(basename "$file")"
done
echo "$VERSION" > "$dest/VERSION"
echo "fetch_chart_js: Chart.js $VERSION installed in ${dest#"$root"/}"
