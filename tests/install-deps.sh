#!/usr/bin/env bash
# Installs the Debian packages the tests drive as real clients and servers, when they are missing,
# and builds the vendored imaptest. Runs as root on the CI and developer machines; elsewhere it
# says what to install.
#
# Every program a test runs is checked here: swaks (SMTP), curl (IMAP, POP3), fetchmail (POP3),
# mbsync (IMAP), chromium (browser tests), npm (htmx, axe-core), redis-server (a private broker
# that the worker tests kill and restart), sqlite3 and pg_dump (backup and restore), dnsmasq (a
# real DNS server for SPF/DKIM/DMARC), rspamd (the spam engine), and the toolchain and Dovecot
# library imaptest is built against.
set -euo pipefail
need=()
command -v swaks >/dev/null || need+=(swaks)
# swaks speaks STARTTLS through Net::SSLeay and IO::Socket::SSL, which are only "recommended"
# by its package: without them its TLS tests fail on a fresh machine.
perl -MNet::SSLeay -e1 2>/dev/null || need+=(libnet-ssleay-perl)
perl -MIO::Socket::SSL -e1 2>/dev/null || need+=(libio-socket-ssl-perl)
command -v curl >/dev/null || need+=(curl)
command -v fetchmail >/dev/null || need+=(fetchmail)
command -v mbsync >/dev/null || need+=(isync)
command -v chromium >/dev/null || need+=(chromium)
command -v npm >/dev/null || need+=(npm)
command -v redis-server >/dev/null || need+=(redis-server)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v pg_dump >/dev/null || need+=(postgresql-client)
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
command -v rspamd >/dev/null || need+=(rspamd)
# Roundcube's managesieve plugin speaks through PEAR's Net_Sieve: PHP drives our ManageSieve
# listener with it (tests/managesieve/net_sieve_client.php).
command -v php >/dev/null || need+=(php-cli)
[ -f /usr/share/php/Net/Sieve.php ] || need+=(php-net-sieve)
[ -f /usr/share/php/Auth/SASL.php ] || need+=(php-auth-sasl)
# Roundcube's IMAP library (unpacked by tests/imap/roundcube/fetch.sh) needs mbstring, as
# Roundcube itself does.
php -m 2>/dev/null | grep -qx mbstring || need+=(php-mbstring)
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
  # Servers installed only as test tools (Dovecot, rspamd, Redis) must not start as system
  # services (a second Redis on 6379, say): a policy-rc.d that says "no" is Debian's way, kept
  # only for this install.
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
