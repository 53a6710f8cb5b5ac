#!/bin/sh
# Writes the local configuration from the environment, then runs rspamd in the foreground.
set -eu
mkdir -p /etc/rspamd/override.d /etc/rspamd/local.d
cat > /etc/rspamd/override.d/worker-normal.inc <<CONF
bind_socket = "*:11333";
CONF
cat > /etc/rspamd/override.d/worker-controller.inc <<CONF
bind_socket = "*:11334";
password = "${RSPAMD_PASSWORD:?set RSPAMD_PASSWORD}";
enable_password = "${RSPAMD_PASSWORD}";
CONF
cat > /etc/rspamd/override.d/worker-proxy.inc <<CONF
count = 0;
CONF
cat > /etc/rspamd/local.d/redis.conf <<CONF
servers = "${RSPAMD_REDIS:-redis:6379}";
db = "1";
CONF
cat > /etc/rspamd/override.d/logging.inc <<CONF
type = "console";
level = "warning";
CONF
exec rspamd -f -u _rspamd -g _rspamd
