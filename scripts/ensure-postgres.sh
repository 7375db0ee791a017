#!/usr/bin/env bash
# Make sure PostgreSQL's server binaries are here: the tests start a throw-away
# server of their own from them. Installs Debian's `postgresql` package when
# they are missing (as root, or through passwordless sudo); safe to run again.
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || [[ -n "${PG_BINDIR:-}" ]]; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "ensure-postgres: install PostgreSQL's server (initdb, postgres) and set PG_BINDIR" >&2
    exit 1
fi
if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "ensure-postgres: PostgreSQL is missing; run: sudo apt-get install -y postgresql" >&2
    exit 1
fi
echo "ensure-postgres: installing Debian's postgresql package" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends postgresql >/dev/null
