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

# System packages the tests use: Debian chromium (the web view is tested in a real headless browser), OpenSSH
# (remote benchmarking is tested against a real sshd on 127.0.0.1), qemu user-mode emulation (the device install
# and the demo run on an emulated arm64 Raspberry Pi; apt needs the arm64 architecture for its sysroot, see
# deploy/raspberry-pi/emulate.sh), shellcheck and systemd-analyze (the deploy scripts and the service unit).
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v qemu-aarch64-static >/dev/null 2>&1 || need+=(qemu-user-static)
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
command -v cc >/dev/null 2>&1 || need+=(gcc)   # a stand-in libedgetpu.so.1 (Edge TPU runtime without a device)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
add_arm64=0
if command -v dpkg >/dev/null 2>&1 && ! dpkg --print-foreign-architectures | grep -qx arm64; then add_arm64=1; fi
if [ ${#need[@]} -gt 0 ] || [ "$add_arm64" = 1 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    [ "$add_arm64" = 0 ] || dpkg --add-architecture arm64
    apt-get update -qq
    [ ${#need[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    [ "$add_arm64" = 0 ] || sudo dpkg --add-architecture arm64
    sudo apt-get update -qq
    [ ${#need[@]} -eq 0 ] || sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "note: cannot install ${need[*]} or add apt's arm64 architecture (not root); the browser/ssh/emulated-Pi tests will be skipped" >&2
  fi
fi

export TOOLKIT_SHARED=${TOOLKIT_SHARED:-$(cd .. && pwd)/shared}
exec .venv/bin/python -m pytest "$@"
