#!/usr/bin/env bash
# Make sure nginx is here: the scale-out tests put it in front of two real
# Switchboard replicas, with the configuration the repository ships. Installs
# Debian's `nginx` package when it is missing; safe to run again. The tests
# start an nginx of their own on a free port: a system nginx the package may
# start is not used.
set -euo pipefail

if command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || [[ -n "${NGINX_BINARY:-}" ]]; then
    exit 0
fi
exec "$(dirname "$0")/apt-install.sh" ensure-nginx \
    "install nginx (or set NGINX_BINARY to its path)" nginx
