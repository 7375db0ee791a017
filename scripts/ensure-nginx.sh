#!/usr/bin/env bash
# Make sure nginx is here: the scale-out tests put it in front of two real
# Switchboard replicas, with the configuration the repository ships. Installs
# Debian's `nginx` package when it is missing (as root, or through passwordless
# sudo); safe to run again. The tests start an nginx of their own on a free
# port: a system nginx the package may start is not used.
set -euo pipefail

if command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || [[ -n "${NGINX_BINARY:-}" ]]; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "ensure-nginx: install nginx (or set NGINX_BINARY to its path)" >&2
    exit 1
fi
if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "ensure-nginx: nginx is missing; run: sudo apt-get install -y nginx" >&2
    exit 1
fi
echo "ensure-nginx: installing Debian's nginx package" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends nginx >/dev/null
