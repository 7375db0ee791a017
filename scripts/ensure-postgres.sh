#!/usr/bin/env bash
# Make sure PostgreSQL's server binaries are here: the tests start a throw-away
# server of their own from them. Installs Debian's `postgresql` package when
# they are missing; safe to run again.
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || [[ -n "${PG_BINDIR:-}" ]]; then
    exit 0
fi
exec "$(dirname "$0")/apt-install.sh" ensure-postgres \
    "install PostgreSQL's server (initdb, postgres) and set PG_BINDIR" postgresql
