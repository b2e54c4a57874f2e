#!/usr/bin/env bash
# Run the device install and the demo on an emulated 64-bit Raspberry Pi (Debian Bookworm arm64 userland under
# qemu user-mode emulation, a Cortex-A72 CPU model = Raspberry Pi 4). Timings under emulation mean nothing;
# this checks that the install resolves and that the toolkit runs, with the Pi's instruction set.
#
#   deploy/raspberry-pi/emulate.sh            # build or reuse the sysroot, install, run demo + bench
#   PI_CPU=cortex-a76 deploy/raspberry-pi/emulate.sh     # a Raspberry Pi 5 core
#
# Needs: qemu-user-static (apt-get install qemu-user-static), and for the first run root (to add the arm64
# architecture to apt) or a sysroot already made. Everything goes under PI_EMU_DIR (default
# ~/.cache/edge-toolkit/pi-emu). No binfmt_misc is needed: every aarch64 process is started through qemu, and the
# emulated steps start no subprocesses (the project wheel is built on the host, bench runs --in-process).
# Exit codes: 0 ok, 1 a step failed, 77 the emulator cannot run here (tests skip on 77 with this script's reason).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
WORK="${PI_EMU_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/edge-toolkit/pi-emu}"
CPU="${PI_CPU:-cortex-a72}"
PY=python3.11                                  # Raspberry Pi OS Bookworm's Python
SYSROOT="$WORK/sysroot"
HOST_PY="${HOST_PYTHON:-python3}"
# Debian Bookworm arm64 packages that make a Python 3.11 with venv and pip (Debian's own wheels).
PACKAGES=(libc6 libgcc-s1 libstdc++6 gcc-12-base libpython3.11-minimal libpython3.11-stdlib python3.11-minimal
          python3.11 python3.11-venv libexpat1 zlib1g libssl3 libffi8 libbz2-1.0 liblzma5 libsqlite3-0
          libncursesw6 libtinfo6 libreadline8 libuuid1 libdb5.3 libcrypt1 libnsl2 libtirpc3 libgssapi-krb5-2
          libkrb5-3 libk5crypto3 libkrb5support0 libcom-err2 libkeyutils1 media-types python3-pip-whl
          python3-setuptools-whl)

say() { printf '[pi-emu] %s\n' "$*"; }
cannot_run() { printf 'pi-emu: cannot emulate here: %s\n' "$*" >&2; exit 77; }
fail() { printf 'pi-emu: %s\n' "$*" >&2; exit 1; }

command -v qemu-aarch64-static >/dev/null || cannot_run "qemu-aarch64-static not found (apt-get install qemu-user-static)"
command -v dpkg >/dev/null || cannot_run "dpkg not found (a Debian or Ubuntu host is needed to unpack arm64 packages)"
mkdir -p "$WORK"

emu() { QEMU_CPU="$CPU" qemu-aarch64-static -L "$SYSROOT" "$@"; }

make_sysroot() {
    if [[ -x "$SYSROOT/usr/bin/$PY" ]]; then
        return
    fi
    say "building an arm64 Bookworm sysroot in $SYSROOT"
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        [[ $(id -u) -eq 0 ]] || cannot_run "apt lacks the arm64 architecture; run once as root: dpkg --add-architecture arm64 && apt-get update"
        dpkg --add-architecture arm64
        apt-get update -qq || cannot_run "apt-get update failed (no package mirror reachable)"
    fi
    local debs="$WORK/debs" tmp="$SYSROOT.partial"
    mkdir -p "$debs"
    local wanted=()
    for pkg in "${PACKAGES[@]}"; do
        case "$pkg" in
            media-types|python3-pip-whl|python3-setuptools-whl) wanted+=("$pkg") ;;  # architecture: all
            *) wanted+=("$pkg:arm64") ;;
        esac
    done
    (cd "$debs" && apt-get download -qq "${wanted[@]}") || \
        cannot_run "apt-get download of the arm64 packages failed (run apt-get update; is arm64 in sources?)"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    for deb in "$debs"/*.deb; do
        dpkg -x "$deb" "$tmp"
    done
    # Bookworm is merged-/usr: /lib -> usr/lib, where the loader ld-linux-aarch64.so.1 lives.
    for dir in lib bin sbin; do
        [[ -e "$tmp/$dir" ]] || ln -s "usr/$dir" "$tmp/$dir"
    done
    mv "$tmp" "$SYSROOT"
}

make_sysroot
emu "$SYSROOT/usr/bin/$PY" -c "import platform; print(platform.machine())" >/dev/null 2>&1 || \
    cannot_run "qemu-aarch64-static cannot start the arm64 Python in $SYSROOT"
say "emulated CPU $CPU: $(emu "$SYSROOT/usr/bin/$PY" -c 'import platform, sys; print(platform.machine(), sys.version.split()[0])')"

# The device requirements as an arm64 Pi sees them: pip evaluates environment markers for the machine it runs
# on, so they are evaluated here for aarch64, then downloaded as aarch64 wheels (no source builds).
WHEELS="$WORK/wheels"
rm -rf "$WHEELS"
mkdir -p "$WHEELS"
mapfile -t REQS < <("$HOST_PY" - "$REPO/pyproject.toml" <<'EOF'
import sys, tomllib
try:
    from packaging.markers import default_environment
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.markers import default_environment
    from pip._vendor.packaging.requirements import Requirement
env = default_environment() | {"platform_machine": "aarch64", "python_version": "3.11",
                               "python_full_version": "3.11.2", "sys_platform": "linux", "platform_system": "Linux"}
for line in tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]:
    req = Requirement(line)
    if req.marker is None or req.marker.evaluate(env):
        req.marker = None
        print(req)
EOF
)
say "device requirements for aarch64: ${REQS[*]}"
PLATFORM_ARGS=(--platform manylinux2014_aarch64)
for minor in $(seq 17 36); do PLATFORM_ARGS+=(--platform "manylinux_2_${minor}_aarch64"); done
"$HOST_PY" -m pip download -q --only-binary=:all: --python-version 3.11 --implementation cp "${PLATFORM_ARGS[@]}" \
    -d "$WHEELS" "${REQS[@]}" 2>&1 | grep -v '^WARNING: Location' || true
ls "$WHEELS"/ai_edge_litert-*aarch64.whl >/dev/null 2>&1 || fail "no aarch64 wheel of ai-edge-litert was downloaded"
# The project itself is pure Python: build its wheel on the host (the emulated side runs no subprocesses).
"$HOST_PY" -m pip wheel -q --no-deps -w "$WHEELS" "$REPO" 2>&1 | grep -v '^WARNING: Location' || true
ls "$WHEELS"/edge_toolkit-*.whl >/dev/null 2>&1 || fail "building the project's wheel failed"

VENV="$WORK/venv"
rm -rf "$VENV"
emu "$SYSROOT/usr/bin/$PY" -m venv --without-pip "$VENV"
PIP_WHEELS=("$SYSROOT"/usr/share/python-wheels/pip-*.whl)
PIP_WHEEL="${PIP_WHEELS[0]}"
[[ -f "$PIP_WHEEL" ]] || fail "Debian's pip wheel is missing from the sysroot (python3-pip-whl)"
say "installing into an arm64 venv with Debian's pip ($(basename "$PIP_WHEEL")), wheels only, no index"
emu "$VENV/bin/python" "$PIP_WHEEL/pip" install -q --no-index --find-links "$WHEELS" --no-compile \
    --disable-pip-version-check edge-toolkit
(cd "$WORK" && emu "$VENV/bin/python" -c "
import importlib.metadata as m, importlib.util as u
print('installed:', ', '.join(f'{d} {m.version(d)}' for d in ('edge-toolkit', 'ai-edge-litert', 'numpy', 'opencv-python-headless')))
assert u.find_spec('tensorflow') is None, 'TensorFlow must not be in a device install'
")

OUT="$WORK/out"
rm -rf "$OUT"
mkdir -p "$OUT"
say "toolkit demo --max-frames 30 --record out.mp4 (the built-in synthetic street, no camera)"
(cd "$OUT" && emu "$VENV/bin/python" -m toolkit demo --max-frames 30 --record out.mp4 --json > demo.json)
cat "$OUT/demo.json"
say "toolkit bench (the zoo's int8 detector, in-process: no worker subprocess under emulation)"
DETECTOR="$(cd "$OUT" && emu "$VENV/bin/python" -c 'import toolkit.zoo, pathlib; print(pathlib.Path(toolkit.zoo.__file__).parent / "person_detector" / "person_detector_int8.tflite")')"
(cd "$OUT" && emu "$VENV/bin/python" -m toolkit bench "$DETECTOR" --in-process --runs 5 --warmup 1 --threads 1 \
    --db "$OUT/bench.sqlite")
say "ok: the device install and the demo run on an emulated $CPU (results in $OUT)"
