#!/usr/bin/env bash
# Rebuilds the dashboard's vendored chart library from the npm registry. The result is
# committed, so running the service needs no Node.js; run this only to change the pin in
# dashboard/package.json (then `npm install --package-lock-only` in dashboard/ first).
#   npm ci: exactly the versions and integrity hashes of dashboard/package-lock.json
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
vendor="$root/api/dashboard_assets/vendor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cp "$root/dashboard/package.json" "$root/dashboard/package-lock.json" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

uplot="$work/node_modules/uplot"
mkdir -p "$vendor"
cp "$uplot/dist/uPlot.iife.min.js" "$uplot/dist/uPlot.min.css" "$vendor/"
cp "$uplot/LICENSE" "$vendor/uPlot.LICENSE"
echo "uPlot $(node -p "require('$uplot/package.json').version") -> ${vendor#$root/}"
