"""``toolkit doctor``: each check against fake /etc, /proc, /sys and /dev trees, the runtime check on the real zoo
model, and the CLI end to end (JSON, --require exit 3 with the fix on one line, bad usage exit 2)."""

from __future__ import annotations

import json
import time
from collections import namedtuple
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import assert_one_line_error
from test_cli_basics import run_no_tf

from toolkit.cli.doctor_cmd import REQUIRABLE, render
from toolkit.deploy import doctor
from toolkit.deploy.doctor import Check, CoralScan

GIB = 1 << 30


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def specs(*present: str):
    """A find_spec that finds only ``present`` (as importlib would: an object with .origin, or None)."""
    return lambda name: (
        SimpleNamespace(origin=f"/usr/lib/python3/dist-packages/{name}/__init__.py")
        if name in present
        else None
    )


# -- system ------------------------------------------------------------------------------------------------------
@pytest.fixture
def pi5(tmp_path) -> dict:
    release = write(
        tmp_path / "etc/os-release", 'NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 13 (trixie)"\n'
    )
    model = write(tmp_path / "proc/device-tree/model", "Raspberry Pi 5 Model B Rev 1.0\x00")
    return {"os_release": release, "model_files": (model, tmp_path / "sys/firmware/devicetree/base/model")}


def test_system_names_os_board_and_python(pi5) -> None:
    check = doctor.check_system(**pi5, machine="aarch64", python=(3, 11, 2), pointer_bits=64)
    assert check.status == "ok" and check.fix is None
    assert check.detail.startswith("Raspberry Pi 5 Model B Rev 1.0, Debian GNU/Linux 13 (trixie), aarch64")
    assert "Python 3.11.2" in check.detail


def test_system_falls_back_to_the_second_model_file(tmp_path) -> None:
    model = write(tmp_path / "sys/firmware/devicetree/base/model", "Raspberry Pi 4 Model B Rev 1.5\x00")
    assert (
        doctor.board_model((tmp_path / "proc/device-tree/model", model)) == "Raspberry Pi 4 Model B Rev 1.5"
    )
    assert doctor.board_model((tmp_path / "absent",)) is None


@pytest.mark.parametrize(("machine", "bits"), [("armv7l", 32), ("armv6l", 32), ("aarch64", 32)])
def test_system_warns_on_32_bit_arm(pi5, machine, bits) -> None:
    check = doctor.check_system(**pi5, machine=machine, python=(3, 11, 2), pointer_bits=bits)
    assert check.status == "warn" and "32-bit" in check.detail
    assert "Raspberry Pi OS (64-bit)" in check.fix


def test_system_warns_on_an_aarch64_python_without_litert_wheels(pi5) -> None:
    check = doctor.check_system(**pi5, machine="aarch64", python=(3, 13, 5), pointer_bits=64)
    assert check.status == "warn" and "3.11/3.12" in check.detail
    assert "--python 3.12" in check.fix
    assert doctor.check_system(**pi5, machine="x86_64", python=(3, 13, 5), pointer_bits=64).status == "ok"


# -- runtime and OpenCV -----------------------------------------------------------------------------------------
def test_runtime_runs_the_zoo_model_here(monkeypatch) -> None:
    monkeypatch.delenv("TOOLKIT_BACKEND", raising=False)
    assert doctor.default_model().is_file()
    check = doctor.check_runtime()
    assert check.status == "ok", check
    assert (
        check.detail.startswith("ai_edge_litert ") and "ran mnist_classifier_int8.tflite once" in check.detail
    )
    assert "numpy 2." in check.detail


def test_runtime_that_cannot_load_the_model_warns(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("TOOLKIT_BACKEND", raising=False)
    broken = write(tmp_path / "broken.tflite", "not a flatbuffer")
    check = doctor.check_runtime(model=broken, machine="aarch64")
    assert check.status == "warn" and "cannot run broken.tflite" in check.detail
    assert check.fix == "pip install 'ai-edge-litert==1.4.0'"


def test_runtime_never_loads_tensorflow(monkeypatch) -> None:
    monkeypatch.delenv("TOOLKIT_BACKEND", raising=False)
    only_tf = doctor.check_runtime(find_spec=specs("tensorflow"), machine="x86_64")
    assert only_tf.status == "warn" and "only TensorFlow" in only_tf.detail
    assert only_tf.fix == "pip install 'ai-edge-litert==2.3.0'"
    nothing = doctor.check_runtime(find_spec=specs(), machine="aarch64")
    assert nothing.status == "missing" and nothing.fix == "pip install 'ai-edge-litert==1.4.0'"
    asked = doctor.check_runtime(backend="tensorflow")
    assert asked.status == "warn" and "TensorFlow-free" in asked.detail


def test_opencv_version_and_conflicting_wheels() -> None:
    import cv2

    assert doctor.check_opencv() == Check("opencv", "ok", f"OpenCV {cv2.__version__} (pip)")

    def no_cv2(name):
        raise ImportError("No module named 'cv2'")

    missing = doctor.check_opencv(importer=no_cv2)
    assert missing.status == "missing" and missing.fix == "pip install opencv-python-headless==4.14.0.94"
    both = doctor.check_opencv(installed=lambda dist: dist in ("opencv-python", "opencv-python-headless"))
    assert both.status == "warn"
    assert both.fix == (
        "pip uninstall -y opencv-python opencv-python-headless && "
        "pip install opencv-python-headless==4.14.0.94"
    )


# -- cameras ------------------------------------------------------------------------------------------------------
def fake_video(tmp_path: Path, nodes: dict[str, tuple[str, str]]) -> tuple[Path, Path]:
    """/dev/videoN files and /sys/class/video4linux/videoN/{name,index} for ``{node: (name, index)}``."""
    dev, sysfs = tmp_path / "dev", tmp_path / "sys/class/video4linux"
    dev.mkdir(parents=True, exist_ok=True)
    for node, (name, index) in nodes.items():
        write(dev / node, "")
        write(sysfs / node / "name", name + "\n")
        write(sysfs / node / "index", index + "\n")
    return dev, sysfs


PI4_INTERNAL = {
    "video10": ("bcm2835-codec-decode", "0"),
    "video11": ("bcm2835-codec-encode", "0"),
    "video13": ("bcm2835-isp", "0"),
    "video19": ("rpi-hevc-dec", "0"),
}


def test_cameras_lists_a_usb_camera_and_ignores_pi_codecs_and_metadata_nodes(tmp_path) -> None:
    dev, sysfs = fake_video(
        tmp_path,
        {"video0": ("HD Pro Webcam C920", "0"), "video1": ("HD Pro Webcam C920", "1"), **PI4_INTERNAL},
    )
    check = doctor.check_cameras(dev, sysfs)
    assert check.status == "ok" and check.fix is None
    assert check.detail == f"{dev}/video0 (HD Pro Webcam C920); 4 Pi codec/ISP nodes are not cameras"


def test_cameras_points_a_ribbon_camera_at_picamera2(tmp_path) -> None:
    dev, sysfs = fake_video(
        tmp_path, {"video0": ("unicam-image", "0"), "video1": ("unicam-embedded", "0"), **PI4_INTERNAL}
    )
    check = doctor.check_cameras(dev, sysfs)
    assert check.status == "ok"
    assert check.detail.startswith("Raspberry Pi camera on unicam (open it with --source picamera2)")


def test_cameras_without_access_name_the_video_group(tmp_path) -> None:
    dev, sysfs = fake_video(tmp_path, {"video0": ("USB Camera", "0")})
    check = doctor.check_cameras(dev, sysfs, access=lambda path, mode: False)
    assert check.status == "missing" and "not readable" in check.detail
    assert "video" in check.fix and "log out" in check.fix


def test_cameras_none_found(tmp_path) -> None:
    dev, sysfs = fake_video(tmp_path, PI4_INTERNAL)
    check = doctor.check_cameras(dev, sysfs)
    assert check.status == "missing" and "no camera" in check.detail and "4 Pi codec/ISP" in check.detail
    assert "rpicam-hello --list-cameras" in check.fix


# -- picamera2 and libcamera --------------------------------------------------------------------------------------
def test_picamera2_found_with_libcamera() -> None:
    check = doctor.check_picamera2(find_spec=specs("picamera2", "libcamera"), board="Raspberry Pi 5")
    assert check.status == "ok" and "/usr/lib/python3/dist-packages/picamera2" in check.detail


def test_picamera2_from_pip_without_libcamera() -> None:
    check = doctor.check_picamera2(find_spec=specs("picamera2"), board="Raspberry Pi 5")
    assert check.status == "missing" and "python3-libcamera" in check.detail
    assert "sudo apt install python3-picamera2" in check.fix and "--system-site-packages" in check.fix


def test_picamera2_hidden_by_a_venv_without_system_site_packages(tmp_path) -> None:
    venv = tmp_path / "venv"
    write(venv / "pyvenv.cfg", "home = /usr/bin\ninclude-system-site-packages = false\n")
    system = tmp_path / "dist-packages"
    (system / "picamera2").mkdir(parents=True)
    check = doctor.check_picamera2(
        find_spec=specs(),
        board="Raspberry Pi 4 Model B",
        prefix=str(venv),
        base_prefix="/usr",
        system_packages=system,
    )
    assert check.status == "missing" and "hides system packages" in check.detail
    assert check.fix.startswith(f"set include-system-site-packages = true in {venv}/pyvenv.cfg")


def test_picamera2_missing_on_a_pi_and_not_applicable_elsewhere(tmp_path) -> None:
    empty = tmp_path / "none"
    on_pi = doctor.check_picamera2(find_spec=specs(), board="Raspberry Pi 5", system_packages=empty)
    assert on_pi.status == "missing" and "sudo apt install python3-picamera2" in on_pi.fix
    elsewhere = doctor.check_picamera2(find_spec=specs(), board="", system_packages=empty)
    assert elsewhere.status == "n/a" and "sudo apt install python3-picamera2" in elsewhere.fix


def test_libcamera_apps() -> None:
    found = doctor.check_libcamera_apps(
        which=lambda t: "/usr/bin/rpicam-hello" if t == "rpicam-hello" else None
    )
    assert found.status == "ok" and "rpicam-hello --list-cameras" in found.detail
    old = doctor.check_libcamera_apps(
        which=lambda t: "/usr/bin/libcamera-hello" if t == "libcamera-hello" else None
    )
    assert old.status == "ok" and "libcamera-hello --list-cameras" in old.detail
    on_pi = doctor.check_libcamera_apps(which=lambda t: None, board="Raspberry Pi 5")
    assert on_pi.status == "warn" and on_pi.fix == "sudo apt install rpicam-apps"
    assert doctor.check_libcamera_apps(which=lambda t: None, board="").status == "n/a"


# -- Edge TPU -----------------------------------------------------------------------------------------------------
def usb_device(root: Path, name: str, vendor: str, product: str, speed: str, bus: int, num: int) -> None:
    for key, value in (
        ("idVendor", vendor),
        ("idProduct", product),
        ("speed", speed),
        ("busnum", str(bus)),
        ("devnum", str(num)),
    ):
        write(root / name / key, value + "\n")


@pytest.fixture
def trees(tmp_path) -> dict:
    usb, pci, dev = tmp_path / "sys/bus/usb/devices", tmp_path / "sys/bus/pci/devices", tmp_path / "dev"
    for path in (usb, pci, dev):
        path.mkdir(parents=True)
    usb_device(usb, "1-1", "1d6b", "0002", "480", 1, 1)  # a root hub: not a Coral
    write(pci / "0000:00:00.0/vendor", "0x8086\n")
    write(pci / "0000:00:00.0/device", "0x1237\n")
    return {"usb_root": usb, "pci_root": pci, "dev": dev}


def test_coral_usb_after_firmware_load_on_usb3(trees) -> None:
    usb_device(trees["usb_root"], "2-1", "18d1", "9302", "5000", 2, 3)
    write(trees["dev"] / "bus/usb/002/003", "")
    scan = doctor.scan_coral(**trees)
    assert scan.usb == ("USB 2-1 18d1:9302 (firmware loaded), 5000 Mb/s",) and scan.found
    check = doctor.check_edgetpu_device(scan, "/usr/lib/aarch64-linux-gnu/libedgetpu.so.1.0", board="")
    assert check == Check("edgetpu device", "ok", "USB 2-1 18d1:9302 (firmware loaded), 5000 Mb/s")


def test_coral_usb_before_first_use_is_usb2_by_design(trees) -> None:
    usb_device(trees["usb_root"], "1-1.2", "1a6e", "089a", "480", 1, 4)
    check = doctor.check_edgetpu_device(doctor.scan_coral(**trees), "libedgetpu.so.1", board="")
    assert check.status == "ok" and "1a6e:089a (before first use" in check.detail


def test_coral_usb_on_a_usb2_port_warns(trees) -> None:
    usb_device(trees["usb_root"], "1-1.3", "18d1", "9302", "480", 1, 5)
    check = doctor.check_edgetpu_device(doctor.scan_coral(**trees), "libedgetpu.so.1", board="")
    assert check.status == "warn" and "USB 2" in check.detail and "USB 3 port" in check.fix


def test_coral_usb_without_access_names_plugdev(trees) -> None:
    usb_device(trees["usb_root"], "2-1", "18d1", "9302", "5000", 2, 3)
    write(trees["dev"] / "bus/usb/002/003", "")
    scan = doctor.scan_coral(**trees, access=lambda path, mode: False)
    check = doctor.check_edgetpu_device(scan, "libedgetpu.so.1", board="")
    assert check.status == "missing" and "cannot open" in check.detail and "plugdev" in check.fix


def test_pcie_coral_as_apex_0(trees) -> None:
    write(trees["dev"] / "apex_0", "")
    write(trees["pci_root"] / "0000:01:00.0/vendor", "0x1ac1\n")
    write(trees["pci_root"] / "0000:01:00.0/device", "0x089a\n")
    scan = doctor.scan_coral(**trees)
    assert scan.apex == (str(trees["dev"] / "apex_0"),) and scan.pci_without_driver == 0
    assert doctor.check_edgetpu_device(scan, "libedgetpu.so.1", board="").status == "ok"
    blocked = doctor.check_edgetpu_device(
        doctor.scan_coral(**trees, access=lambda p, m: False), "x", board=""
    )
    assert blocked.status == "missing" and "apex" in blocked.fix


def test_pcie_coral_without_its_driver_names_gasket_dkms(trees) -> None:
    write(trees["pci_root"] / "0000:01:00.0/vendor", "0x1ac1\n")
    write(trees["pci_root"] / "0000:01:00.0/device", "0x089a\n")
    scan = doctor.scan_coral(**trees)
    assert scan.pci_without_driver == 1 and scan.found
    check = doctor.check_edgetpu_device(scan, None, board="Raspberry Pi 5 Model B Rev 1.0")
    assert check.status == "missing" and "no /dev/apex_0" in check.detail and "dtparam=pciex1" in check.detail
    assert "sudo apt install gasket-dkms" in check.fix and """GROUP="apex"' | sudo tee""" in check.fix
    runtime = doctor.check_edgetpu_runtime(None, scan)
    assert runtime.status == "missing" and runtime.fix.endswith("sudo apt install libedgetpu1-std")


def test_no_coral_and_no_runtime_is_not_applicable_but_says_how(trees) -> None:
    scan = doctor.scan_coral(**trees)
    assert scan == CoralScan() and not scan.found
    runtime = doctor.check_edgetpu_runtime(None, scan)
    assert runtime.status == "n/a"
    assert "coral-edgetpu-stable main" in runtime.fix and "sudo apt install libedgetpu1-std" in runtime.fix
    device = doctor.check_edgetpu_device(scan, None, board="")
    assert device.status == "n/a" and "USB 3 port" in device.fix
    assert doctor.check_edgetpu_device(scan, "libedgetpu.so.1", board="").status == "missing"


def test_libedgetpu_loading(tmp_path) -> None:
    assert doctor.load_libedgetpu() is None  # no Edge TPU runtime on this host

    def refuse(name):
        raise OSError(f"{name}: cannot open shared object file")

    assert doctor.load_libedgetpu(loader=refuse) is None
    maps = write(
        tmp_path / "maps", "7f00-7f10 r-xp 00000000 08:02 1 /usr/lib/x86_64-linux-gnu/libedgetpu.so.1.0\n"
    )
    loaded = doctor.load_libedgetpu(loader=lambda name: object(), maps=maps)
    assert loaded == "/usr/lib/x86_64-linux-gnu/libedgetpu.so.1.0"
    check = doctor.check_edgetpu_runtime(loaded, CoralScan())
    assert check.status == "ok" and loaded in check.detail


# -- thermal, disk, memory -----------------------------------------------------------------------------------------
@pytest.fixture
def thermal(tmp_path) -> dict:
    root = tmp_path / "sys/class/thermal"
    write(root / "thermal_zone0/temp", "52100\n")
    write(root / "thermal_zone0/type", "cpu-thermal\n")
    governor = write(tmp_path / "scaling_governor", "ondemand\n")
    return {"thermal_root": root, "governor": governor, "vcgencmd": None}


def test_thermal_under_voltage_now_warns_and_explains_the_supply(tmp_path, thermal) -> None:
    throttled = write(tmp_path / "get_throttled", "50005\n")
    check = doctor.check_thermal(**thermal, throttled_sysfs=throttled)
    assert check.status == "warn"
    assert check.detail == (
        "get_throttled 0x50005: under-voltage now, throttled now (the supply sags below ~4.63 V: "
        "the CPU slows down and USB devices (Coral, camera) can reset); 52.1 C (cpu-thermal), "
        "governor ondemand"
    )
    assert "5.1 V" in check.fix and "27 W" in check.fix


def test_thermal_throttling_only_since_boot_still_warns(tmp_path, thermal) -> None:
    check = doctor.check_thermal(**thermal, throttled_sysfs=write(tmp_path / "t", "40000\n"))  # bit 18
    assert (
        check.status == "warn" and "throttled since boot (the CPU runs below its full clock" in check.detail
    )
    assert "heatsink" in check.fix


def test_thermal_ok_hot_and_not_applicable(tmp_path, thermal) -> None:
    calm = doctor.check_thermal(**thermal, throttled_sysfs=write(tmp_path / "t", "0\n"))
    assert calm == Check("thermal", "ok", "52.1 C (cpu-thermal), governor ondemand, not throttled (0x0)")
    write(thermal["thermal_root"] / "thermal_zone0/temp", "84000\n")
    hot = doctor.check_thermal(**thermal, throttled_sysfs=tmp_path / "absent")
    assert hot.status == "warn" and "throttling n/a (not a Raspberry Pi)" in hot.detail and "fan" in hot.fix
    empty = doctor.check_thermal(tmp_path / "none", tmp_path / "absent", None, tmp_path / "absent")
    assert empty.status == "n/a"


def test_disk_free_space(tmp_path) -> None:
    Usage = namedtuple("Usage", "total used free")
    low = doctor.check_disk(
        tmp_path / "home/not-yet",
        "toolkit home",
        usage=lambda p: Usage(8 * GIB, 0, GIB // 2),
        alternative="set TOOLKIT_HOME to a bigger disk",
    )
    assert low.name == "disk (toolkit home)" and low.status == "warn"
    assert low.detail == f"0.5 GiB free of 8.0 GiB at {tmp_path}/home/not-yet, not created yet: below 1 GiB"
    assert "sudo apt clean" in low.fix and low.fix.endswith("or set TOOLKIT_HOME to a bigger disk")
    real = doctor.check_disk(tmp_path, "cwd", min_free=1)
    assert real.status == "ok" and str(tmp_path) in real.detail


def test_memory_available(tmp_path) -> None:
    meminfo = write(
        tmp_path / "meminfo", "MemTotal:        8245360 kB\nMemFree:  1 kB\nMemAvailable:    6291456 kB\n"
    )
    assert doctor.check_memory(meminfo) == Check("memory", "ok", "6.0 GiB available of 7.9 GiB")
    write(meminfo, "MemTotal: 439452 kB\nMemAvailable: 102400 kB\n")
    low = doctor.check_memory(meminfo)
    assert low.status == "warn" and "below 256 MiB" in low.detail
    assert doctor.check_memory(tmp_path / "absent").status == "n/a"


# -- the report ----------------------------------------------------------------------------------------------------
def test_every_check_runs_fast_here_and_requirements_name_real_checks() -> None:
    start = time.perf_counter()
    checks = doctor.run_checks()
    assert time.perf_counter() - start < 3.0  # the brief: < 2 s on a Pi; CI machines jitter
    names = [c.name for c in checks]
    assert len(names) == len(set(names)) and all(c.status in ("ok", "warn", "missing", "n/a") for c in checks)
    assert set(REQUIRABLE) == set(doctor.REQUIREMENTS)
    assert all(name in names for needed in doctor.REQUIREMENTS.values() for name in needed)
    assert not any(c.detail.startswith("check failed") for c in checks), checks


def test_unmet_and_render_align_the_columns() -> None:
    checks = [
        Check("runtime", "ok", "ai_edge_litert 2.3.0"),
        Check("edgetpu runtime", "missing", "libedgetpu.so.1 not found", "sudo apt install libedgetpu1-std"),
        Check("edgetpu device", "warn", "USB 2", "use a USB 3 port"),
        Check("picamera2", "n/a", "absent", "apt"),
    ]
    assert doctor.unmet(checks, "edgetpu") == [checks[1]] and doctor.unmet(checks, "camera") == []
    lines = render(checks).splitlines()
    rows = [line for line in lines[2:-2] if line[:1].strip()]
    assert [row.split("  ")[0] for row in rows] == [c.name for c in checks]
    width = len("edgetpu runtime")
    assert {
        lines[0].index("status"),
        *(row.index(c.status, width) for row, c in zip(rows, checks, strict=True)),
    } == {width + 2}
    assert {lines[0].index("found"), *(row.index(c.detail) for row, c in zip(rows, checks, strict=True))} == {
        width + 11
    }
    assert lines[4] == " " * (width + 11) + "fix: sudo apt install libedgetpu1-std"
    assert lines[8].strip() == "if wanted: apt" and lines[-1] == "1 ok, 1 warn, 1 missing, 1 n/a"


def test_cli_json_end_to_end(cli) -> None:
    result = cli("doctor", "--json", env={"TOOLKIT_BACKEND": ""})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    by_name = {c["name"]: c for c in report["checks"]}
    assert (
        by_name["runtime"]["status"] == "ok"
        and "mnist_classifier_int8.tflite" in by_name["runtime"]["detail"]
    )
    assert set(by_name["system"]) == {"name", "status", "detail", "fix"} and report["required"] == {}
    assert sum(report["summary"].values()) == len(report["checks"])


def test_cli_table_stays_tensorflow_free() -> None:
    proc = run_no_tf("doctor")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].split() == ["check", "status", "found"]
    assert any(line.startswith("runtime") and " ok " in line for line in proc.stdout.splitlines())


def test_cli_require_edgetpu_without_a_coral_exits_3_with_the_fix(cli) -> None:
    expected = doctor.unmet(doctor.run_checks(), "edgetpu")
    result = cli("doctor", "--require", "edgetpu")
    if not expected:  # a host with a working Coral: the requirement holds
        assert result.returncode == 0, result.stderr
        return
    assert_one_line_error(result, 3, f"--require edgetpu: {expected[0].name}: ")
    assert result.stderr.rstrip().endswith(f"fix: {expected[0].fix}")  # whole, not cut at 400 characters
    assert "check" in result.stdout  # the report still printed


def test_cli_rejects_an_unknown_requirement(cli) -> None:
    result = cli("doctor", "--require", "gpu")
    assert_one_line_error(result, 2, "invalid choice: 'gpu'")
