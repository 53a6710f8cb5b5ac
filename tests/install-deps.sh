#!/usr/bin/env bash
# Installs the Debian packages the tests drive as real clients, when they are missing, and builds
# the vendored imaptest. Runs as root on the CI and developer machines; elsewhere it says what to
# install.
set -euo pipefail
need=()
command -v swaks >/dev/null || need+=(swaks)
command -v curl >/dev/null || need+=(curl)
command -v fetchmail >/dev/null || need+=(fetchmail)
command -v mbsync >/dev/null || need+=(isync)
command -v chromium >/dev/null || need+=(chromium)
command -v npm >/dev/null || need+=(npm)
# imaptest is built from third_party/imaptest against Dovecot's library (dovecot-core ships
# libdovecot.so, dovecot-dev its headers and dovecot-config).
[ -f /usr/lib/dovecot/dovecot-config ] || need+=(dovecot-dev)
[ -f /usr/lib/dovecot/libdovecot.so.0 ] || need+=(dovecot-core)
for tool in autoconf automake libtoolize make gcc pkg-config; do
  command -v "$tool" >/dev/null || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "Missing test tools: ${need[*]} (install them with apt-get as root)" >&2
    exit 1
  fi
  need=("${need[@]/libtoolize/libtool}")
  export DEBIAN_FRONTEND=noninteractive
  # Servers installed only as test tools (Dovecot here) must not start as system services: a
  # policy-rc.d that says "no" is Debian's way, kept only for this install.
  cleanup=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    cleanup=/usr/sbin/policy-rc.d
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  [ -z "$cleanup" ] || rm -f "$cleanup"
fi
bash "$(dirname "$0")/imaptest/build.sh" >/dev/null
