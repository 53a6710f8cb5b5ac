#!/usr/bin/env bash
# Installs the Debian packages the tests drive as real clients and servers, when they are missing.
# Runs as root on the CI and developer machines; elsewhere it says what to install.
#
# Every program a test runs is checked here: swaks (SMTP), curl (IMAP, POP3), fetchmail (POP3),
# mbsync (IMAP), chromium (browser tests), npm (htmx), redis-server (a private broker that the
# worker tests kill and restart), sqlite3 and pg_dump (backup and restore).
set -euo pipefail
need=()
command -v swaks >/dev/null || need+=(swaks)
# swaks speaks STARTTLS through Net::SSLeay and IO::Socket::SSL, which are only "recommended"
# by the Debian package and so missing after --no-install-recommends.
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
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing test tools: ${need[*]} (install them with apt-get as root)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
