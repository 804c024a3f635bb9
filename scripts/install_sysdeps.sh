#!/usr/bin/env bash
# Installs the Debian packages that nni-eas uses when they are missing and we are allowed to:
#   dataset-fashion-mnist  Fashion-MNIST idx files in /usr/share/datasets/fashion-mnist
#   chromium               headless browser for the web UI end-to-end tests (tests/test_webui.py,
#                          marker `webui`); skipped when a `chromium` is already on PATH
# Without root (or without apt) it only says what is missing; the tests that need a package skip.
set -u
want=()
[ -d /usr/share/datasets/fashion-mnist ] || want+=(dataset-fashion-mnist)
command -v chromium >/dev/null 2>&1 || want+=(chromium)
[ ${#want[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages: ${want[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${want[@]}" >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends "${want[@]}" >/dev/null 2>&1; } \
        || echo "warning: could not install ${want[*]}; tests that need them will be skipped" >&2
else
    echo "note: missing Debian packages (${want[*]}); run 'sudo apt-get install ${want[*]}' to enable the tests that use them" >&2
fi
exit 0
