#!/usr/bin/env bash
# apt-install.sh WHO WHAT PACKAGE...: install Debian packages the tests need, as
# root or through passwordless sudo, or say what to run when neither is possible.
# WHO names the caller in messages; WHAT says what to install by hand without apt.
set -euo pipefail

who=$1 what=$2
shift 2
if ! command -v apt-get >/dev/null; then
    echo "$who: $what" >&2
    exit 1
fi
if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "$who: missing; run: sudo apt-get install -y $*" >&2
    exit 1
fi
echo "$who: installing Debian's $* package(s)" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
