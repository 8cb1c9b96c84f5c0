#!/bin/sh
# check-conf-keys.sh CONFIG.C TALLYD.CONF.5 TALLYD.CONF
# Every key in config.c's table is documented in tallyd.conf(5) and in the
# commented config/tallyd.conf, so a new key cannot ship undocumented.
set -eu
keys=$(sed -n 's/^[[:space:]]*CF\(_RESTART\)\{0,1\}("\([a-z_]*\)".*/\2/p' "$1")
[ -n "$keys" ] || { echo "no keys found in $1"; exit 1; }
missing=0
for k in $keys; do
  grep -q "^\.It Cm $k\( \|$\)" "$2" || { echo "$2: key $k undocumented"; missing=1; }
  grep -q "^#* *$k\( \|$\)" "$3" || { echo "$3: key $k missing"; missing=1; }
done
[ "$missing" -eq 0 ] && echo "every key documented: $(echo $keys | wc -w)"
