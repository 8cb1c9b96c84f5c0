#!/bin/sh
# verify-unit.sh SYSTEMD-ANALYZE UNIT BUILT-TALLYD INSTALLED-PATH
# Check tallyd.service offline with systemd-analyze verify, on a copy whose
# ExecStart= names the tallyd just built (verify insists that it exists).
# Any complaint about the unit fails the test.
set -eu
analyze=$1 unit=$2 built=$3 installed=$4
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s|$installed|$built|g" "$unit" > "$dir/tallyd.service"
out=$("$analyze" verify --man=no "$dir/tallyd.service" 2>&1) || {
  echo "$out"; exit 1; }
if printf '%s\n' "$out" | grep -q 'tallyd\.service'; then
  echo "$out"; exit 1
fi
echo "systemd-analyze verify: clean"
