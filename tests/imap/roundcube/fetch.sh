#!/usr/bin/env bash
# Unpacks Roundcube's IMAP library (program/lib/Roundcube of Debian's roundcube-core) for
# tests/imap/test_roundcube.py and prints its directory. The package is downloaded with
# `apt-get download` and unpacked with `dpkg -x`, never installed: no web server, database or
# configuration comes with it. Cached per package version, so a machine fetches it once.
set -euo pipefail
version=$(apt-cache policy roundcube-core | awk '/Candidate:/ {print $2}')
if [ -z "$version" ] || [ "$version" = "(none)" ]; then
  echo "roundcube-core is not known to apt (apt-get update?)" >&2
  exit 1
fi
prefix="${ROUNDCUBE_CACHE:-/usr/local/lib/correio-roundcube}/$version"
lib="$prefix/usr/share/roundcube/program/lib/Roundcube"
if [ -f "$lib/rcube_imap_generic.php" ]; then
  echo "$lib"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q "roundcube-core=$version" >/dev/null 2>&1)
mkdir -p "$prefix"
dpkg -x "$work"/roundcube-core_*.deb "$prefix"
echo "$lib"
