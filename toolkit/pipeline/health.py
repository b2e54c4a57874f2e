"""Host health for the live view: temperatures, Raspberry Pi throttling, CPU governor. Missing -> "n/a".

A Pi that is under-voltage or thermally throttled runs the model several times slower; showing it next to the
FPS explains a slow run. Sources: Linux ``/sys/class/thermal/thermal_zone*/temp`` (millidegrees C), the Pi
firmware's ``get_throttled`` (sysfs on recent kernels, else ``vcgencmd get_throttled``) and cpufreq's governor.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

NA = "n/a"

# vcgencmd get_throttled bits (Raspberry Pi documentation, "get_throttled").
THROTTLE_BITS = {
    0: "under_voltage",
    1: "arm_freq_capped",
    2: "throttled",
    3: "soft_temp_limit",
    16: "under_voltage_occurred",
    17: "arm_freq_capped_occurred",
    18: "throttled_occurred",
    19: "soft_temp_limit_occurred",
}
_THROTTLED_SYSFS = Path("/sys/devices/platform/soc/soc:firmware/get_throttled")


def decode_throttled(value: int) -> dict[str, Any]:
    """``get_throttled`` bit field -> {"raw": "0x50005", "now": [...], "since_boot": [...], <flag>: bool}."""
    flags = {name: bool(value >> bit & 1) for bit, name in THROTTLE_BITS.items()}
    return {
        "raw": hex(value),
        "now": [n for b, n in THROTTLE_BITS.items() if b < 16 and flags[n]],
        "since_boot": [n.removesuffix("_occurred") for b, n in THROTTLE_BITS.items() if b >= 16 and flags[n]],
        **flags,
    }


def parse_vcgencmd(text: str) -> int | None:
    """``'throttled=0x50005'`` -> 0x50005; None when the text is not a get_throttled answer."""
    match = re.search(r"throttled=(0x[0-9a-fA-F]+|\d+)", text)
    return int(match.group(1), 0) if match else None


def read_throttled(
    sysfs: Path = _THROTTLED_SYSFS, vcgencmd: str | None = "vcgencmd"
) -> dict[str, Any] | None:
    """Decoded throttling state, or None on hosts that are not a Raspberry Pi (or cannot tell)."""
    try:
        return decode_throttled(int(sysfs.read_text().strip(), 16))
    except (OSError, ValueError):
        pass
    exe = shutil.which(vcgencmd) if vcgencmd else None
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, "get_throttled"], capture_output=True, text=True, timeout=1.0)
    except (OSError, subprocess.SubprocessError):
        return None
    value = parse_vcgencmd(proc.stdout) if proc.returncode == 0 else None
    return decode_throttled(value) if value is not None else None


def read_temperatures(root: Path = Path("/sys/class/thermal")) -> dict[str, float]:
    """{zone type (or zone name): degrees C} for every readable thermal zone; {} when there are none."""
    temps: dict[str, float] = {}
    for zone in sorted(root.glob("thermal_zone*")):
        try:
            milli = int((zone / "temp").read_text().strip())
        except (OSError, ValueError):
            continue  # some zones exist but refuse reads (e.g. a powered-down sensor)
        try:
            name = (zone / "type").read_text().strip() or zone.name
        except OSError:
            name = zone.name
        if name in temps:
            name = f"{name}/{zone.name}"
        temps[name] = round(milli / 1000.0, 1)
    return temps


def read_governor(path: Path = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")) -> str | None:
    """The CPU frequency governor named in ``path`` (e.g. ``"ondemand"``), or None when it is absent or empty."""
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def host_health() -> dict[str, Any]:
    """What the status panel shows: temperature_c (hottest zone), zones, throttled, cpu_governor; "n/a"s."""
    temps = read_temperatures()
    throttled = read_throttled()
    return {
        "temperature_c": max(temps.values()) if temps else NA,
        "thermal_zones": temps or NA,
        "throttled": throttled if throttled is not None else NA,
        "cpu_governor": read_governor() or NA,
    }
