#!/usr/bin/env bash
# The README's test command: install everything the tests need, then run them.
#   bash scripts/test.sh            # full suite
#   bash scripts/test.sh -m "not slow" tests/test_runtime.py   # any pytest arguments
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[all,dev]'

# System packages used by two test groups: Debian chromium (the web view is tested in a real headless browser)
# and OpenSSH (remote benchmarking is tested against a real sshd on 127.0.0.1).
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "note: cannot install ${need[*]} (not root); the browser/ssh tests will be skipped" >&2
  fi
fi

export TOOLKIT_SHARED=${TOOLKIT_SHARED:-$(cd .. && pwd)/shared}
exec .venv/bin/python -m pytest "$@"
