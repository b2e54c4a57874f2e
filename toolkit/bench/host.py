"""Host fingerprint saved with every result: CPU, cores, OS, Python, governor, temperature, Pi throttling.

Everything is read from /proc, /sys and ``vcgencmd`` with short timeouts; a value that cannot be read is None,
never a guess. ``vcgencmd get_throttled`` (Raspberry Pi firmware) is decoded bit by bit: bits 0-3 say what is
happening now, bits 16-19 what has happened since boot. A result measured while any "now" bit is set is flagged.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Bit -> meaning, from the Raspberry Pi documentation of `vcgencmd get_throttled`.
THROTTLE_BITS: dict[int, str] = {
    0: "under_voltage",
    1: "arm_frequency_capped",
    2: "throttled",
    3: "soft_temperature_limit",
}
OCCURRED_SHIFT = 16  # bits 16-19: the same four conditions, "has occurred since boot"


@dataclass(frozen=True)
class ThrottleState:
    """A decoded ``vcgencmd get_throttled`` value: the conditions active now and those seen since boot."""

    raw: int  # the value vcgencmd printed
    now: tuple[str, ...]  # conditions active at the moment of reading (bits 0-3)
    occurred: tuple[str, ...]  # conditions seen since boot (bits 16-19)

    @property
    def throttled_now(self) -> bool:
        """True when any condition (under-voltage, frequency cap, throttling, soft limit) is active now."""
        return bool(self.now)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``raw`` as a hex string, ``now`` and ``occurred`` as lists of condition names."""
        return {"raw": f"0x{self.raw:x}", "now": list(self.now), "occurred": list(self.occurred)}


def decode_throttled(value: int) -> ThrottleState:
    """Decode the integer of ``vcgencmd get_throttled`` (e.g. 0x50005 -> under-voltage + throttled, now and since)."""
    now = tuple(name for bit, name in THROTTLE_BITS.items() if value & (1 << bit))
    occurred = tuple(name for bit, name in THROTTLE_BITS.items() if value & (1 << (bit + OCCURRED_SHIFT)))
    return ThrottleState(int(value), now, occurred)


def parse_throttled_output(text: str) -> ThrottleState | None:
    """'throttled=0x50005' -> decoded state; None when the text does not hold such a value."""
    match = re.search(r"throttled=(0x[0-9a-fA-F]+|\d+)", text)
    if not match:
        return None
    return decode_throttled(int(match.group(1), 0))


def read_throttled(timeout_s: float = 2.0) -> tuple[ThrottleState | None, str]:
    """Run ``vcgencmd get_throttled``; returns (state or None, a note saying why it is None)."""
    exe = shutil.which("vcgencmd")
    if exe is None:
        return None, "vcgencmd not found (not a Raspberry Pi, or firmware tools not installed)"
    try:
        proc = subprocess.run([exe, "get_throttled"], capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"vcgencmd failed: {type(exc).__name__}"
    state = parse_throttled_output(proc.stdout)
    if state is None:
        first = (proc.stdout or proc.stderr).strip().splitlines()
        return None, f"vcgencmd get_throttled gave no value: {first[0][:120] if first else 'no output'}"
    return state, ""


def read_temperature_c() -> float | None:
    """Hottest thermal zone in degrees Celsius (the SoC on a Pi), or None where the kernel exposes none."""
    temps = []
    for zone in Path("/sys/class/thermal").glob("thermal_zone*/temp"):
        try:
            temps.append(int(zone.read_text().strip()) / 1000.0)
        except (OSError, ValueError):
            continue
    return max(temps) if temps else None


def read_governors() -> list[str]:
    """Distinct CPU frequency governors across cores (e.g. ['ondemand']); [] where cpufreq is absent."""
    found = set()
    for path in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_governor"):
        try:
            found.add(path.read_text().strip())
        except OSError:
            continue
    return sorted(found)


def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return info
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in info:
            info[key.strip()] = value.strip()
    return info


def cpu_model() -> str:
    """The CPU or board name from /proc/cpuinfo (e.g. ``"Raspberry Pi 5 Model B Rev 1.0"``), else what
    :mod:`platform` reports, else ``"unknown"``."""
    info = _cpuinfo()
    # x86: "model name"; Raspberry Pi OS: "Model" (board) and per-core "CPU part"; other ARM: "Hardware".
    for key in ("model name", "Model", "Hardware", "Processor", "cpu model"):
        if info.get(key):
            return info[key]
    return platform.processor() or platform.machine() or "unknown"


def os_name() -> str:
    """The distribution's PRETTY_NAME from /etc/os-release, else :func:`platform.platform`."""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.platform()


@dataclass(frozen=True)
class HostInfo:
    """Fingerprint of the machine a benchmark ran on (CPU, OS, interpreter package, governors, temperature in
    degrees Celsius, throttling), stored with each benchmark session."""

    hostname: str
    cpu_model: str
    cores: int  # logical CPUs in the machine
    usable_cores: int  # CPUs this process may run on (affinity)
    arch: str
    os: str
    kernel: str
    python: str
    backend: str  # interpreter package that ran the models
    backend_version: str
    governors: tuple[str, ...]  # cpufreq governors; pycoral warns unless 'performance'
    temperature_c: float | None
    throttle: dict[str, Any] | None  # decoded vcgencmd get_throttled, or None
    throttle_note: str  # why throttle is None

    def as_dict(self) -> dict[str, Any]:
        """All fields as a JSON-ready dict (``governors`` as a list)."""
        data = asdict(self)
        data["governors"] = list(self.governors)
        return data


def fingerprint(backend: str = "", backend_version: str = "") -> HostInfo:
    """Describe this machine now. ``backend``/``backend_version`` name the interpreter package used."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        usable = os.cpu_count() or 1
    state, note = read_throttled()
    return HostInfo(
        hostname=platform.node(),
        cpu_model=cpu_model(),
        cores=os.cpu_count() or 1,
        usable_cores=usable,
        arch=platform.machine(),
        os=os_name(),
        kernel=platform.release(),
        python=platform.python_version(),
        backend=backend,
        backend_version=backend_version,
        governors=tuple(read_governors()),
        temperature_c=read_temperature_c(),
        throttle=state.as_dict() if state else None,
        throttle_note=note,
    )


def host_warnings(host: dict[str, Any]) -> list[str]:
    """Human warnings about conditions that make timings unrepresentative."""
    out = []
    governors = host.get("governors") or []
    if governors and governors != ["performance"]:
        out.append(
            f"CPU governor is {'/'.join(governors)}, not 'performance': latencies may vary with frequency "
            "scaling (set it with: echo performance | sudo tee /sys/devices/system/cpu/cpu*/cpufreq/"
            "scaling_governor)"
        )
    throttle = host.get("throttle") or {}
    if throttle.get("now"):
        out.append(f"the board is throttling now ({', '.join(throttle['now'])}): results are flagged")
    elif throttle.get("occurred"):
        out.append(f"throttling occurred since boot ({', '.join(throttle['occurred'])})")
    return out
