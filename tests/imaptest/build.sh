#!/usr/bin/env bash
# Builds Dovecot's imaptest (the IMAP compliance and stress tester, MIT licence) from the copy
# vendored in third_party/imaptest, against Debian's dovecot-dev, and prints the binary's path.
#
# The copy is upstream commit 924f619 (March 2022), the last one written against Dovecot 2.3's
# library API that Debian 12 ships (later commits follow Dovecot 2.4's io_stream_create_ssl_client
# and settings changes). Debian 12 patches imap_parser_create() to take a fourth argument
# (struct imap_parser_params *), so the three call sites get NULL, as the issue describes.
# The binary is cached by the hash of the sources and this script, so CI builds it once per machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
self="$here/$(basename "$0")"
src="$here/../../third_party/imaptest"
hash=$( (cd "$src" && find . -type f -print0 | sort -z | xargs -0 sha256sum; sha256sum < "$self") | sha256sum | cut -c1-12)
prefix="${IMAPTEST_CACHE:-/usr/local/lib/correio-imaptest}/$hash"
if [ -x "$prefix/imaptest" ]; then
  echo "$prefix/imaptest"
  exit 0
fi
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
cp -a "$src/." "$build/"
cd "$build"
sed -i 's/imap_parser_create(\(.*\), (size_t)-1)/imap_parser_create(\1, (size_t)-1, NULL)/' \
  src/commands.c src/test-parser.c src/imap-client.c
echo "1.0.0-correio" > version
{
  ./autogen.sh
  ./configure --with-dovecot=/usr/lib/dovecot
  make -j"$(nproc)"
} > build.log 2>&1 || { tail -n 40 build.log >&2; exit 1; }
mkdir -p "$prefix"
# libdovecot lives in /usr/lib/dovecot, outside the linker's path: a wrapper sets it.
install -m 0755 src/imaptest "$prefix/imaptest.bin"
cat > "$prefix/imaptest" <<WRAP
#!/bin/sh
LD_LIBRARY_PATH=/usr/lib/dovecot exec "$prefix/imaptest.bin" "\$@"
WRAP
chmod 0755 "$prefix/imaptest"
echo "$prefix/imaptest"
