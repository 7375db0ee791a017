#!/usr/bin/env bash
# Make sure Debian's Chromium is here: the console's tests drive it headless with
# Playwright (which cannot download a browser of its own here). Installs Debian's
# `chromium` package when /usr/bin/chromium is missing; safe to run again.
# CHROMIUM=/path overrides the binary.
set -euo pipefail

if [[ -x "${CHROMIUM:-/usr/bin/chromium}" ]]; then
    exit 0
fi
exec "$(dirname "$0")/apt-install.sh" ensure-chromium \
    "install Chromium and set CHROMIUM=/path/to/chromium" chromium fonts-dejavu-core
