#!/usr/bin/env bash
# Vendors the web client's third-party code: X448 from @noble/curves
# (WebCrypto has no X448), bundled by esbuild into one ES module under
# web/vendor/, with the versions, checksums and licences recorded in
# web/vendor/VENDOR.md. Run it to upgrade; its output is committed, so
# running iotad never needs npm.
set -euo pipefail
cd "$(dirname "$0")/.."
CURVES=2.4.0
ESBUILD=0.25.12
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(
  cd "$work"
  npm init -y >/dev/null
  npm install --no-audit --no-fund --save-exact "@noble/curves@$CURVES" "esbuild@$ESBUILD" >/dev/null
  echo 'export { x448 } from "@noble/curves/ed448.js";' > entry.js
  ./node_modules/.bin/esbuild entry.js --bundle --format=esm --minify --legal-comments=none --outfile=x448.js --log-level=warning
)
cp "$work/x448.js" web/vendor/noble-x448.js
hashes=$(node -p "require('$work/node_modules/@noble/hashes/package.json').version")
{
  echo "# Vendored browser code"
  echo
  echo "Made by \`scripts/vendor-web.sh\`; do not edit by hand."
  echo
  echo "| file | from | sha256 |"
  echo "|---|---|---|"
  echo "| noble-x448.js | @noble/curves $CURVES (x448 only) and @noble/hashes $hashes, bundled with esbuild $ESBUILD | $(sha256sum web/vendor/noble-x448.js | cut -d' ' -f1) |"
  echo
  echo "## Licences"
  for pkg in @noble/curves @noble/hashes; do
    echo
    echo "### $pkg"
    echo
    echo '```'
    cat "$work/node_modules/$pkg/LICENSE"
    echo '```'
  done
} > web/vendor/VENDOR.md
echo "vendored: $(wc -c < web/vendor/noble-x448.js) bytes"
