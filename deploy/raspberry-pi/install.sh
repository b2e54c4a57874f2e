#!/usr/bin/env bash
# Install the edge toolkit on a 64-bit Raspberry Pi (Raspberry Pi OS Bookworm, Python 3.11) or another Debian-like
# aarch64 / x86_64 Linux, and optionally the camera demo as a systemd service. Safe to run again: it reuses the
# venv, upgrades the package and leaves an edited /etc/edge-toolkit/demo.toml alone.
#
#   sudo deploy/raspberry-pi/install.sh                # venv in /opt/edge-toolkit/venv + the `toolkit` command
#   sudo deploy/raspberry-pi/install.sh --service      # ... and the edge-toolkit-demo systemd service
#   deploy/raspberry-pi/install.sh --prefix ~/edge-toolkit   # without root, no service
#
# The venv is made with --system-site-packages so that apt's python3-picamera2 (the Pi camera) is importable.
# Exit codes: 0 ok, 1 a step failed, 2 bad arguments or an unsupported system (the message says what to do).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SOURCE="$(cd "$HERE/../.." && pwd)"    # the project checkout this script belongs to
PREFIX=/opt/edge-toolkit
SERVICE=0
PYTHON="${PYTHON:-python3}"
CONFIG_DIR=/etc/edge-toolkit
UNIT_DIR=/etc/systemd/system
SERVICE_USER=edge-toolkit
# For tests: pretend to be another machine.
ARCH="${INSTALL_ARCH:-$(uname -m)}"
OS_RELEASE="${INSTALL_OS_RELEASE:-/etc/os-release}"

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
}
die() { printf 'install.sh: %s\n' "$1" >&2; exit "${2:-1}"; }
say() { printf '[install] %s\n' "$*"; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --prefix) [[ $# -ge 2 ]] || die "--prefix needs a directory" 2; PREFIX="$2"; shift 2 ;;
        --prefix=*) PREFIX="${1#*=}"; shift ;;
        --service) SERVICE=1; shift ;;
        --python) [[ $# -ge 2 ]] || die "--python needs an interpreter" 2; PYTHON="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" 2 ;;
    esac
done

# --- the platform: 64-bit Linux, Python 3.11 or 3.12 --------------------------------------------------------
[[ "$(uname -s)" == Linux ]] || die "only Linux is supported (this is $(uname -s))" 2
case "$ARCH" in
    aarch64|x86_64) ;;
    armv7l|armv6l|armhf)
        die "32-bit ARM ($ARCH) is not supported: no LiteRT or OpenCV wheels exist for it; install the 64-bit Raspberry Pi OS (Bookworm) and run this again" 2 ;;
    *) die "unsupported machine '$ARCH': the device runtime has wheels for aarch64 and x86_64 Linux" 2 ;;
esac
if [[ -r "$OS_RELEASE" ]]; then
    # shellcheck disable=SC1090
    . "$OS_RELEASE"
    say "system: ${PRETTY_NAME:-unknown Linux}, $ARCH"
    case "${ID:-}:${VERSION_CODENAME:-}" in
        debian:buster|debian:bullseye|raspbian:*)
            die "${PRETTY_NAME:-this OS} is too old or 32-bit: use Raspberry Pi OS Bookworm 64-bit (Debian 12) or newer" 2 ;;
    esac
fi
command -v "$PYTHON" >/dev/null || die "$PYTHON not found: sudo apt install python3 python3-venv" 2
PYVER="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
case "$PYVER" in
    3.11|3.12) ;;
    *) if [[ "$ARCH" == aarch64 ]]; then
           die "Python $PYVER: on aarch64 the LiteRT runtime has wheels for Python 3.11 and 3.12 only; pass --python python3.11" 2
       fi
       [[ "${PYVER%%.*}" == 3 && "${PYVER#3.}" -ge 11 ]] || die "Python $PYVER is too old: 3.11 or newer is needed" 2 ;;
esac
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || die "Python's venv module is missing: sudo apt install python3-venv" 2
if [[ $SERVICE == 1 ]]; then
    [[ $(id -u) -eq 0 ]] || die "--service installs a systemd unit: run with sudo" 2
    command -v systemctl >/dev/null || die "--service needs systemd (systemctl not found)" 2
fi
mkdir -p "$PREFIX" 2>/dev/null || die "cannot create $PREFIX: run with sudo, or pass --prefix DIR" 2
[[ -w "$PREFIX" ]] || die "$PREFIX is not writable: run with sudo, or pass --prefix DIR" 2

# --- the venv and the package ---------------------------------------------------------------------------------
VENV="$PREFIX/venv"
if [[ -x "$VENV/bin/python" ]] && [[ "$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" == "$PYVER" ]]; then
    say "reusing $VENV (Python $PYVER)"
else
    rm -rf "$VENV"
    say "creating $VENV (Python $PYVER, --system-site-packages: apt's picamera2 stays visible)"
    "$PYTHON" -m venv --system-site-packages "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
say "installing the device runtime from $SOURCE (numpy, LiteRT, OpenCV; no TensorFlow)"
if ! "$VENV/bin/python" -m pip install -q --upgrade "$SOURCE" 2>"$PREFIX/pip-error.log"; then
    die "pip install failed; see $PREFIX/pip-error.log (last line: $(grep -v '^WARNING: Location' "$PREFIX/pip-error.log" | tail -1))"
fi
rm -f "$PREFIX/pip-error.log"
cp "$HERE/README.md" "$PREFIX/README-raspberry-pi.md"
"$VENV/bin/toolkit" --version >/dev/null || die "the installed toolkit does not start: $VENV/bin/toolkit --version"
say "installed: $("$VENV/bin/python" -c 'import importlib.metadata as m; print(", ".join(f"{d} {m.version(d)}" for d in ("edge-toolkit", "ai-edge-litert", "numpy", "opencv-python-headless")))')"
if "$VENV/bin/python" -c 'import picamera2' 2>/dev/null; then
    say "picamera2: available"
else
    say "picamera2: not installed (for the Pi camera: sudo apt install python3-picamera2; USB cameras work without it)"
fi

# --- the service ------------------------------------------------------------------------------------------------
if [[ $SERVICE == 1 ]]; then
    id "$SERVICE_USER" >/dev/null 2>&1 || useradd --system --home-dir /var/lib/edge-toolkit --shell /usr/sbin/nologin "$SERVICE_USER"
    for group in video render plugdev; do
        getent group "$group" >/dev/null && usermod -a -G "$group" "$SERVICE_USER"
    done
    mkdir -p "$CONFIG_DIR"
    if [[ -e "$CONFIG_DIR/demo.toml" ]]; then
        say "keeping $CONFIG_DIR/demo.toml (the shipped one is $HERE/demo.toml)"
    else
        install -m 0644 "$HERE/demo.toml" "$CONFIG_DIR/demo.toml"
    fi
    sed "s#/opt/edge-toolkit/#$PREFIX/#g" "$HERE/edge-toolkit-demo.service" > "$UNIT_DIR/edge-toolkit-demo.service.tmp"
    mv "$UNIT_DIR/edge-toolkit-demo.service.tmp" "$UNIT_DIR/edge-toolkit-demo.service"
    systemctl daemon-reload
    systemctl enable edge-toolkit-demo.service
    systemctl restart edge-toolkit-demo.service
    say "service: systemctl status edge-toolkit-demo; logs: journalctl -u edge-toolkit-demo -f"
fi
say "done. Try: $VENV/bin/toolkit demo --max-frames 30 --record demo.mp4   (and: $VENV/bin/toolkit doctor)"
