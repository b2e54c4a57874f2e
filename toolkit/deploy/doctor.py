"""``toolkit doctor``'s checks: what this machine can run, and the exact step that installs each missing piece.

Each ``check_*`` function reads only what its parameters point at (defaults: the real ``/etc``, ``/proc``, ``/sys``
and ``/dev``) and returns one :class:`Check`, so tests run them against fake trees. Nothing here imports TensorFlow
or opens a camera or an Edge TPU: the whole report takes well under two seconds on a Raspberry Pi.
"""

from __future__ import annotations

import ctypes
import getpass
import grp
import importlib.util
import os
import platform
import shutil
import struct
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from toolkit.pipeline import health
from toolkit.runtime.edgetpu import CORAL_APT

Status = Literal["ok", "warn", "missing", "n/a"]
GIB = 1 << 30
MIB = 1 << 20
MODEL_FILES = (Path("/proc/device-tree/model"), Path("/sys/firmware/devicetree/base/model"))
# aarch64 installs ai-edge-litert 1.4.0 (cp311/cp312 wheels; 2.3.0's aarch64 wheel crashes on the emulated Pi:
# deploy/raspberry-pi/README.md).
AARCH64_PYTHONS = ((3, 11), (3, 12))
OPENCV_PIN = "opencv-python-headless==4.14.0.94"
FIX_LIBEDGETPU = f"{CORAL_APT} && sudo apt install libedgetpu1-std"
FIX_GASKET = (
    "sudo apt install gasket-dkms (Coral's apt repo, as for libedgetpu1-std) && echo 'SUBSYSTEM==\"apex\", "
    'MODE="0660", GROUP="apex"\' | sudo tee /etc/udev/rules.d/65-apex.rules && sudo groupadd -f apex '
    "&& sudo usermod -aG apex $USER && sudo reboot (if gasket-dkms fails to build on a recent kernel, "
    "build the package from https://github.com/google/gasket-driver)"
)
FIX_PICAMERA2 = (
    "on Raspberry Pi OS: sudo apt install python3-picamera2, and create the virtualenv with "
    "python3 -m venv --system-site-packages (libcamera's Python bindings are not on PyPI)"
)
USB_CORAL = {
    ("1a6e", "089a"): "before first use: the runtime loads its firmware on first open",
    ("18d1", "9302"): "firmware loaded",
}
PCI_CORAL = ("0x1ac1", "0x089a")
# V4L2 nodes that every Raspberry Pi has (codecs, ISP): not cameras. CSI receivers: a ribbon camera, via picamera2.
PI_INTERNAL_V4L2 = ("bcm2835-codec", "bcm2835-isp", "pispbe", "rpi-hevc-dec", "rpivid", "bcm2835-jpeg")
PI_CSI_V4L2 = ("unicam", "rp1-cfe")


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str  # what was checked: "runtime", "cameras", "edgetpu device", ...
    status: (
        Status  # ok | warn (works, with a caveat) | missing (absent or unusable) | n/a (not relevant here)
    )
    detail: str  # what was found, in words
    fix: str | None = (
        None  # the exact step for a warn / missing (an install command); None when nothing to do
    )


# Each requirement is met when all of its checks are "ok" or "warn".
REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "edgetpu": ("edgetpu runtime", "edgetpu device"),
    "camera": ("cameras",),
    "picamera2": ("picamera2",),
}


def unmet(checks: Iterable[Check], requirement: str) -> list[Check]:
    """The checks of ``requirement`` (a key of REQUIREMENTS) that are neither ok nor warn."""
    names = REQUIREMENTS[requirement]
    return [c for c in checks if c.name in names and c.status not in ("ok", "warn")]


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip().strip("\x00").strip()
    except OSError:
        return None


def board_model(files: Iterable[Path] = MODEL_FILES) -> str | None:
    """The device-tree model string ("Raspberry Pi 5 Model B Rev 1.0"), or None on hosts without one."""
    return next((text for text in map(_read, files) if text), None)


def _is_pi(board: str | None) -> bool:
    return bool(board and board.startswith("Raspberry Pi"))


def _group_fix(group: str, why: str) -> str:
    """The step that gives the current user ``group`` (or says to log in again when the database has it)."""
    user = getpass.getuser()
    try:
        entry = grp.getgrnam(group)
    except KeyError:
        return (
            f"sudo groupadd -f {group} && sudo usermod -aG {group} {user}, then log out and back in ({why})"
        )
    if user in entry.gr_mem and entry.gr_gid not in os.getgroups():
        return f"{user} was added to group {group} after logging in: log out and back in (or run: newgrp {group})"
    return f"sudo usermod -aG {group} {user}, then log out and back in ({why})"


# -- system and runtime ----------------------------------------------------------------------------------------------
def check_system(
    os_release: Path = Path("/etc/os-release"),
    model_files: Iterable[Path] = MODEL_FILES,
    machine: str | None = None,
    python: tuple[int, int, int] | None = None,
    pointer_bits: int | None = None,
) -> Check:
    """OS, board, CPU architecture and Python; warns on 32-bit ARM and on aarch64 Pythons without LiteRT wheels."""
    from toolkit import __version__

    machine = machine or platform.machine()
    python = python or sys.version_info[:3]
    bits = pointer_bits or struct.calcsize("P") * 8
    text = _read(os_release) or ""
    pretty = (
        next(
            (
                line.split("=", 1)[1].strip().strip('"')
                for line in text.splitlines()
                if line.startswith("PRETTY_NAME=")
            ),
            None,
        )
        or platform.system()
    )
    board = board_model(model_files)
    py = ".".join(map(str, python))
    detail = ", ".join(
        filter(None, (board, pretty, machine, f"Python {py} ({bits}-bit)", f"edge-toolkit {__version__}"))
    )
    if machine.startswith(("armv6", "armv7")) or (machine == "aarch64" and bits == 32):
        return Check(
            "system",
            "warn",
            f"{detail}: a 32-bit ARM userland has no ai-edge-litert wheel",
            "install Raspberry Pi OS (64-bit) with Raspberry Pi Imager, then reinstall the toolkit",
        )
    if machine == "aarch64" and tuple(python[:2]) not in AARCH64_PYTHONS:
        return Check(
            "system",
            "warn",
            f"{detail}: ai-edge-litert 1.4.0 has aarch64 wheels for Python 3.11/3.12 only",
            "create the venv with Python 3.11 or 3.12: uv venv --python 3.12 (Raspberry Pi OS bookworm's "
            "python3 is 3.11)",
        )
    return Check("system", "ok", detail)


def default_model() -> Path:
    """The shipped int8 MNIST classifier: the smallest zoo model, used to prove the runtime can run at all."""
    from toolkit.paths import zoo_dir

    return zoo_dir() / "mnist_classifier" / "mnist_classifier_int8.tflite"


def _litert_fix(machine: str | None = None) -> str:
    pin = "1.4.0" if (machine or platform.machine()) == "aarch64" else "2.3.0"
    return f"pip install 'ai-edge-litert=={pin}'"


def check_runtime(
    model: Path | None = None,
    backend: str | None = None,
    find_spec: Callable[[str], Any] = importlib.util.find_spec,
    machine: str | None = None,
) -> Check:
    """The TFLite interpreter the toolkit would use, and proof that it runs: one invoke of ``model`` on zeros.

    Never imports TensorFlow: when only tf.lite is installed the check warns instead of loading it.
    """
    from toolkit.errors import ToolkitError

    fix = _litert_fix(machine)
    wanted = backend or os.environ.get("TOOLKIT_BACKEND") or None
    if wanted:
        light = [] if wanted == "tensorflow" else [wanted]
    else:  # select_backend() would fall back to importing TensorFlow: try only the light ones
        light = [name for name in ("ai_edge_litert", "tflite_runtime") if find_spec(name) is not None]
    if not light:
        if wanted == "tensorflow":
            return Check(
                "runtime",
                "warn",
                "TOOLKIT_BACKEND=tensorflow: not loaded by doctor (it stays "
                "TensorFlow-free); tf.lite is the heavy host path, not the device runtime",
                fix,
            )
        if find_spec("tensorflow") is not None:
            return Check(
                "runtime",
                "warn",
                "only TensorFlow's tf.lite is installed (2 s import, ~600 MB); the "
                "device runtime is ai-edge-litert",
                fix,
            )
        return Check(
            "runtime", "missing", "no TFLite interpreter (ai_edge_litert, tflite_runtime, tensorflow)", fix
        )
    import numpy as np

    from toolkit.runtime import Runner, select_backend

    errors = []
    for name in light:
        try:
            chosen = select_backend(name)
            break
        except ToolkitError as exc:
            errors.append(str(exc))
    else:
        return Check("runtime", "missing", "; ".join(errors), fix)
    path = model or default_model()
    label = f"{chosen.name} {chosen.version}"
    if not path.is_file():
        return Check(
            "runtime",
            "warn",
            f"{label} imports, but the test model {path} is missing (an incomplete install?)",
            "pip install --force-reinstall edge-toolkit",
        )
    try:
        with Runner(path, num_threads=1, backend=chosen.name) as runner:
            feeds = {n: np.zeros(s.shape, s.dtype) for n, s in runner.inputs.items()}
            start = time.perf_counter()
            outputs = runner.run_raw(feeds)
            ms = (time.perf_counter() - start) * 1000
    except (ToolkitError, OSError) as exc:
        return Check("runtime", "warn", f"{label} is installed but cannot run {path.name}: {exc}", fix)
    if not all(np.isfinite(np.asarray(v, np.float64)).all() for v in outputs.values()):
        return Check("runtime", "warn", f"{label} ran {path.name} but returned non-finite outputs", fix)
    return Check(
        "runtime", "ok", f"{label}: ran {path.name} once ({ms:.1f} ms, 1 thread); numpy {np.__version__}"
    )


def check_opencv(
    importer: Callable[[str], Any] = importlib.import_module, installed: Callable[[str], bool] | None = None
) -> Check:
    """OpenCV's version and origin; warns when two OpenCV wheels overwrite each other's ``cv2``."""
    if installed is None:

        def installed(dist: str) -> bool:
            from importlib.metadata import PackageNotFoundError, version

            try:
                return bool(version(dist))
            except PackageNotFoundError:
                return False

    try:
        cv2 = importer("cv2")
    except ImportError as exc:
        return Check("opencv", "missing", f"cv2 does not import: {exc}", f"pip install {OPENCV_PIN}")
    where = "apt python3-opencv" if str(getattr(cv2, "__file__", "")).startswith("/usr/lib/") else "pip"
    detail = f"OpenCV {cv2.__version__} ({where})"
    wheels = [d for d in ("opencv-python", "opencv-python-headless", "opencv-contrib-python") if installed(d)]
    if len(wheels) > 1:
        return Check(
            "opencv",
            "warn",
            f"{detail}; {' and '.join(wheels)} are both installed and share one cv2",
            f"pip uninstall -y {' '.join(wheels)} && pip install {OPENCV_PIN}",
        )
    return Check("opencv", "ok", detail)


# -- cameras ---------------------------------------------------------------------------------------------------------
def check_cameras(
    dev: Path = Path("/dev"),
    sysfs: Path = Path("/sys/class/video4linux"),
    access: Callable[[Path, int], bool] = os.access,
) -> Check:
    """V4L2 camera nodes (names from sysfs; a Pi's codec/ISP nodes and metadata nodes are not cameras)."""
    cameras, csi, blocked, internal = [], set(), [], 0
    for node in sorted(dev.glob("video[0-9]*"), key=lambda p: int(p.name[5:]) if p.name[5:].isdigit() else 0):
        name = _read(sysfs / node.name / "name") or "unknown"
        if name.startswith(PI_INTERNAL_V4L2):
            internal += 1
        elif name.startswith(PI_CSI_V4L2):
            csi.add(name.split("-")[0] if name.startswith("unicam") else "rp1-cfe")
        elif (_read(sysfs / node.name / "index") or "0") != "0":
            continue  # a second node of the same device: UVC metadata, not a capture stream
        elif not access(node, os.R_OK | os.W_OK):
            blocked.append(f"{node} ({name})")
        else:
            cameras.append(f"{node} ({name})")
    found = cameras + [f"Raspberry Pi camera on {r} (open it with --source picamera2)" for r in sorted(csi)]
    note = f"; {internal} Pi codec/ISP nodes are not cameras" if internal else ""
    if found:
        extra = f"; not accessible: {', '.join(blocked)}" if blocked else ""
        return Check(
            "cameras",
            "ok",
            ", ".join(found) + extra + note,
            _group_fix("video", "camera access") if blocked else None,
        )
    if blocked:
        return Check(
            "cameras",
            "missing",
            f"{', '.join(blocked)} present but not readable by {getpass.getuser()}{note}",
            _group_fix("video", "camera access"),
        )
    return Check(
        "cameras",
        "missing",
        f"no camera under {dev}/video*{note} (--source synthetic and video files work without one)",
        "connect a USB (UVC) camera or a Raspberry Pi camera module; for a ribbon "
        "camera check the cable, then: rpicam-hello --list-cameras",
    )


def check_picamera2(
    find_spec: Callable[[str], Any] = importlib.util.find_spec,
    board: str | None = None,
    prefix: str = sys.prefix,
    base_prefix: str = sys.base_prefix,
    system_packages: Path = Path("/usr/lib/python3/dist-packages"),
) -> Check:
    """Whether ``import picamera2`` would work here (found with its libcamera bindings), without importing it."""
    pi = _is_pi(board if board is not None else board_model())
    picam, libcam = find_spec("picamera2"), find_spec("libcamera")
    if picam is not None and libcam is not None:
        return Check("picamera2", "ok", f"picamera2 importable ({Path(picam.origin or '').parent})")
    if picam is not None:
        return Check(
            "picamera2",
            "missing",
            "picamera2 found but not libcamera's Python bindings (pip's picamera2 "
            "needs apt's python3-libcamera)",
            f"pip uninstall -y picamera2; {FIX_PICAMERA2}",
        )
    venv_cfg = _read(Path(prefix) / "pyvenv.cfg") or ""
    hides_system = prefix != base_prefix and "include-system-site-packages = true" not in venv_cfg
    if hides_system and (system_packages / "picamera2").is_dir():
        return Check(
            "picamera2",
            "missing",
            f"apt's picamera2 is in {system_packages} but this venv ({prefix}) hides system packages",
            f"set include-system-site-packages = true in {prefix}/pyvenv.cfg "
            "(or recreate the venv with --system-site-packages)",
        )
    if pi:
        return Check(
            "picamera2",
            "missing",
            "picamera2 not installed (needed for a ribbon camera; USB cameras work without it)",
            FIX_PICAMERA2,
        )
    return Check(
        "picamera2", "n/a", "picamera2 not installed; it drives the Raspberry Pi camera only", FIX_PICAMERA2
    )


def check_libcamera_apps(
    which: Callable[[str], str | None] = shutil.which, board: str | None = None
) -> Check:
    """rpicam-apps (libcamera-apps before bookworm) on PATH: the tool that lists ribbon cameras."""
    for tool in ("rpicam-hello", "libcamera-hello"):
        path = which(tool)
        if path:
            return Check("libcamera apps", "ok", f"{path} (list Pi cameras: {tool} --list-cameras)")
    if _is_pi(board if board is not None else board_model()):
        return Check(
            "libcamera apps",
            "warn",
            "rpicam-hello not on PATH (lists and tests ribbon cameras)",
            "sudo apt install rpicam-apps",
        )
    return Check("libcamera apps", "n/a", "rpicam-hello not on PATH (Raspberry Pi camera tools)")


# -- Edge TPU --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CoralScan:
    """Edge TPUs visible on this host, found without opening them."""

    usb: tuple[str, ...] = ()  # "1-1.2 18d1:9302 (firmware loaded), USB 3 (5000 Mb/s)"
    usb_slow: tuple[str, ...] = ()  # those running at USB 2 speed
    usb_blocked: tuple[str, ...] = ()  # /dev/bus/usb nodes this user cannot open
    apex: tuple[str, ...] = ()  # /dev/apex_N usable
    apex_blocked: tuple[str, ...] = ()
    pci_without_driver: int = 0  # PCIe Corals (1ac1:089a) with no /dev/apex_N

    @property
    def found(self) -> bool:
        """Any Coral at all, usable or not."""
        return bool(self.usb or self.usb_blocked or self.apex or self.apex_blocked or self.pci_without_driver)


def scan_coral(
    usb_root: Path = Path("/sys/bus/usb/devices"),
    pci_root: Path = Path("/sys/bus/pci/devices"),
    dev: Path = Path("/dev"),
    access: Callable[[Path, int], bool] = os.access,
) -> CoralScan:
    """USB Corals by vendor:product in sysfs, PCIe/M.2 Corals as /dev/apex_N and by PCI id."""
    usb, slow, usb_blocked = [], [], []
    for device in sorted(usb_root.glob("*")):
        ids = (_read(device / "idVendor") or "", _read(device / "idProduct") or "")
        if ids not in USB_CORAL:
            continue
        speed = _read(device / "speed") or "?"
        text = f"USB {device.name} {':'.join(ids)} ({USB_CORAL[ids]}), {speed} Mb/s"
        bus, num = _read(device / "busnum"), _read(device / "devnum")
        node = (
            dev / "bus" / "usb" / f"{int(bus):03d}" / f"{int(num):03d}"
            if bus and num and bus.isdigit() and num.isdigit()
            else None
        )
        if node is not None and node.exists() and not access(node, os.R_OK | os.W_OK):
            usb_blocked.append(text)
            continue
        usb.append(text)
        # Before its firmware is loaded a Coral enumerates at USB 2 speed by design; afterwards it should be USB 3.
        if ids == ("18d1", "9302") and speed.isdigit() and int(speed) < 5000:
            slow.append(text)
    apex = sorted(dev.glob("apex_[0-9]*"))
    usable = [str(p) for p in apex if access(p, os.R_OK | os.W_OK)]
    pci = sum(1 for d in pci_root.glob("*") if (_read(d / "vendor"), _read(d / "device")) == PCI_CORAL)
    return CoralScan(
        tuple(usb),
        tuple(slow),
        tuple(usb_blocked),
        tuple(usable),
        tuple(str(p) for p in apex if str(p) not in usable),
        max(0, pci - len(apex)),
    )


def load_libedgetpu(
    loader: Callable[[str], Any] = ctypes.CDLL, maps: Path = Path("/proc/self/maps")
) -> str | None:
    """Load libedgetpu.so.1 the way the delegate does (dlopen); its file path, or None when it does not load."""
    try:
        loader("libedgetpu.so.1")
    except OSError:
        return None
    text = _read(maps) or ""
    paths = [line.split()[-1] for line in text.splitlines() if "libedgetpu" in line and "/" in line]
    return paths[0] if paths else "libedgetpu.so.1"


def check_edgetpu_runtime(library: str | None, scan: CoralScan) -> Check:
    """The Edge TPU runtime library; n/a (with the install step) when there is no Coral either."""
    if library:
        return Check("edgetpu runtime", "ok", f"libedgetpu loads ({library})")
    status: Status = "missing" if scan.found else "n/a"
    return Check(
        "edgetpu runtime", status, "libedgetpu.so.1 not found (the Coral Edge TPU runtime)", FIX_LIBEDGETPU
    )


def check_edgetpu_device(scan: CoralScan, library: str | None, board: str | None = None) -> Check:
    """A Coral USB Accelerator or PCIe/M.2 Coral, usable by this user; n/a when neither it nor its runtime is here."""
    board = board if board is not None else board_model()
    usable = list(scan.usb) + list(scan.apex)
    if scan.usb_blocked:
        return Check(
            "edgetpu device",
            "missing",
            f"{'; '.join(scan.usb_blocked)}: this user cannot open it",
            _group_fix("plugdev", "libedgetpu1-std's udev rule gives plugdev the Coral; replug it after"),
        )
    if scan.apex_blocked and not usable:
        return Check(
            "edgetpu device",
            "missing",
            f"{', '.join(scan.apex_blocked)} not accessible",
            _group_fix("apex", "gasket-dkms's udev rule gives group apex /dev/apex_*"),
        )
    if scan.pci_without_driver and not usable:
        pi5 = (
            " On a Pi 5, /boot/firmware/config.txt also needs dtparam=pciex1, kernel=kernel8.img (gasket needs 4K "
            "pages) and dtoverlay=pciex1-compat-pi5,no-mip"
            if board and board.startswith("Raspberry Pi 5")
            else ""
        )
        return Check(
            "edgetpu device",
            "missing",
            f"PCIe Coral found (lspci 1ac1:089a) but no /dev/apex_0: the "
            f"gasket/apex driver is not loaded.{pi5}",
            FIX_GASKET,
        )
    if usable:
        if scan.usb_slow:
            return Check(
                "edgetpu device",
                "warn",
                f"{'; '.join(usable)}: on a USB 2 port, inference is several times slower",
                "plug the Coral into a USB 3 port (blue) with a USB 3 cable",
            )
        return Check("edgetpu device", "ok", "; ".join(usable))
    status: Status = "missing" if library else "n/a"
    return Check(
        "edgetpu device",
        status,
        "no Coral: no USB 1a6e:089a / 18d1:9302, no /dev/apex_0",
        "plug the Coral USB Accelerator into a USB 3 port; an M.2/PCIe Coral should show in lspci -nn | grep "
        "089a",
    )


# -- health, disk, memory --------------------------------------------------------------------------------------------
THROTTLE_NAMES = {
    "under_voltage": "under-voltage",
    "arm_freq_capped": "ARM frequency capped",
    "throttled": "throttled",
    "soft_temp_limit": "soft temperature limit",
}
UNDER_VOLTAGE = "the supply sags below ~4.63 V: the CPU slows down and USB devices (Coral, camera) can reset"
THROTTLING = "the CPU runs below its full clock: models run slower and timings are not comparable"
FIX_SUPPLY = (
    "use a supply that holds 5.1 V under load (the official 27 W USB-C one for a Pi 5, 15 W for a Pi 4) "
    "with its own short cable, and a powered USB hub for a Coral USB"
)
FIX_COOLING = "cool the board: a heatsink and fan (the Active Cooler on a Pi 5) or a ventilated case"


def check_thermal(
    thermal_root: Path = Path("/sys/class/thermal"),
    throttled_sysfs: Path | None = None,
    vcgencmd: str | None = "vcgencmd",
    governor: Path = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
    hot_c: float = 80.0,
) -> Check:
    """Temperatures, Raspberry Pi throttling (get_throttled) and CPU governor; warns on throttling and heat."""
    temps = health.read_temperatures(thermal_root)
    throttled = (
        health.read_throttled(throttled_sysfs, vcgencmd)
        if throttled_sysfs is not None
        else health.read_throttled(vcgencmd=vcgencmd)
    )
    gov = health.read_governor(governor)
    parts = []
    if temps:
        zone, hottest = max(temps.items(), key=lambda kv: kv[1])
        parts.append(f"{hottest:.1f} C ({zone})")
    if gov:
        parts.append(f"governor {gov}")
    if throttled is None:
        parts.append("throttling n/a (not a Raspberry Pi)")
        if not temps and not gov:
            return Check("thermal", "n/a", "no thermal zones, cpufreq or get_throttled on this host")
    else:
        now, past = throttled["now"], [f for f in throttled["since_boot"] if f not in throttled["now"]]
        if now or past:
            said = [f"{THROTTLE_NAMES[f]} now" for f in now] + [
                f"{THROTTLE_NAMES[f]} since boot" for f in past
            ]
            undervolt = "under_voltage" in now + throttled["since_boot"]
            return Check(
                "thermal",
                "warn",
                f"get_throttled {throttled['raw']}: {', '.join(said)} "
                f"({UNDER_VOLTAGE if undervolt else THROTTLING}); {', '.join(parts)}",
                FIX_SUPPLY if undervolt else FIX_COOLING,
            )
        parts.append(f"not throttled ({throttled['raw']})")
    if temps and max(temps.values()) >= hot_c:
        return Check("thermal", "warn", f"{', '.join(parts)}: hot, a Pi throttles at 80-85 C", FIX_COOLING)
    return Check("thermal", "ok", ", ".join(parts))


def check_disk(
    path: Path,
    label: str,
    min_free: int = GIB,
    usage: Callable[[Path], Any] = shutil.disk_usage,
    alternative: str = "",
) -> Check:
    """Free space where ``path`` lives (its nearest existing parent when it does not exist yet); ``alternative``
    is added to the fix ("or set TOOLKIT_HOME to a bigger disk")."""
    where = Path(path).expanduser()
    probe = next((p for p in (where, *where.parents) if p.exists()), Path("/"))
    du = usage(probe)
    created = "" if probe == where else ", not created yet"
    detail = f"{du.free / GIB:.1f} GiB free of {du.total / GIB:.1f} GiB at {where}{created}"
    if du.free < min_free:
        also = f", or {alternative}" if alternative else ""
        return Check(
            f"disk ({label})",
            "warn",
            f"{detail}: below {min_free / GIB:.0f} GiB",
            f"free space: sudo apt clean && pip cache purge && sudo journalctl --vacuum-size=100M{also}",
        )
    return Check(f"disk ({label})", "ok", detail)


def check_memory(meminfo: Path = Path("/proc/meminfo"), min_available: int = 256 * MIB) -> Check:
    """MemAvailable from /proc/meminfo; warns below ``min_available`` bytes."""
    values = {}
    for line in (_read(meminfo) or "").splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            values[key] = int(fields[0]) * 1024
    if "MemAvailable" not in values:
        return Check("memory", "n/a", f"no MemAvailable in {meminfo}")
    avail, total = values["MemAvailable"], values.get("MemTotal", 0)
    detail = f"{avail / GIB:.1f} GiB available of {total / GIB:.1f} GiB"
    if avail < min_available:
        return Check(
            "memory",
            "warn",
            f"{detail}: below {min_available // MIB} MiB",
            "close other programs (or services) before running models; check with: free -h",
        )
    return Check("memory", "ok", detail)


# -- all of them -----------------------------------------------------------------------------------------------------
def _guard(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except Exception as exc:  # a doctor that crashes on an odd host is useless: report the check as broken
        return Check(name, "warn", f"check failed: {type(exc).__name__}: {exc}")


def run_checks(cwd: Path | None = None, home: Path | None = None) -> list[Check]:
    """Every check on this host, in report order."""
    from toolkit.paths import state_dir

    board = board_model() or ""  # "" = looked, not a board with a device-tree model
    try:
        scan = scan_coral()
    except Exception:  # an unreadable sysfs must not hide the rest of the report
        scan = CoralScan()
    library = load_libedgetpu()
    return [
        _guard("system", check_system),
        _guard("runtime", check_runtime),
        _guard("opencv", check_opencv),
        _guard("cameras", check_cameras),
        _guard("picamera2", lambda: check_picamera2(board=board)),
        _guard("libcamera apps", lambda: check_libcamera_apps(board=board)),
        _guard("edgetpu runtime", lambda: check_edgetpu_runtime(library, scan)),
        _guard("edgetpu device", lambda: check_edgetpu_device(scan, library, board=board)),
        _guard("thermal", check_thermal),
        _guard("disk (cwd)", lambda: check_disk(cwd or Path.cwd(), "cwd")),
        _guard(
            "disk (toolkit home)",
            lambda: check_disk(
                home or state_dir(), "toolkit home", alternative="set TOOLKIT_HOME to a bigger disk"
            ),
        ),
        _guard("memory", check_memory),
    ]
