#!/usr/bin/env bash
# Make sure Debian's Chromium is here: the console's tests drive it headless with
# Playwright (which cannot download a browser of its own here). Installs Debian's
# `chromium` package when /usr/bin/chromium is missing (as root, or through
# passwordless sudo); safe to run again. CHROMIUM=/path overrides the binary.
set -euo pipefail

if [[ -x "${CHROMIUM:-/usr/bin/chromium}" ]]; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "ensure-chromium: install Chromium and set CHROMIUM=/path/to/chromium" >&2
    exit 1
fi
if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "ensure-chromium: Chromium is missing; run: sudo apt-get install -y chromium" >&2
    exit 1
fi
echo "ensure-chromium: installing Debian's chromium package" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
