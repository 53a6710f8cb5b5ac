#!/usr/bin/env bash
# Installs the Debian packages the tests drive as real clients, when they are missing.
# Runs as root on the CI and developer machines; elsewhere it says what to install.
set -euo pipefail
need=()
command -v swaks >/dev/null || need+=(swaks)
command -v curl >/dev/null || need+=(curl)
command -v fetchmail >/dev/null || need+=(fetchmail)
command -v mbsync >/dev/null || need+=(isync)
command -v chromium >/dev/null || need+=(chromium)
command -v npm >/dev/null || need+=(npm)
# A real DNS server (SPF, DKIM, DMARC records) for the inbound trust tests.
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
# Debian's rspamd, the spam engine the inbound trust tests scan with.
command -v rspamd >/dev/null || need+=(rspamd)
# PHP and PEAR's Net_Sieve, the ManageSieve client Roundcube's managesieve plugin uses
# (php-auth-sasl is what Net_Sieve recommends for its SASL mechanisms).
command -v php >/dev/null || need+=(php-cli)
[ -f /usr/share/php/Net/Sieve.php ] || need+=(php-net-sieve php-auth-sasl)
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
