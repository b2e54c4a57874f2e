"""The CLI shell: help without TensorFlow, one-line usage errors with exit 2."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from conftest import REPO, assert_one_line_error

from toolkit.cli import COMMANDS

# Runs the CLI in a fresh interpreter where importing tensorflow/keras raises: proves the device path never does.
NO_TF = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('tensorflow', 'keras', 'tf_keras'):
            raise ImportError('blocked: ' + name + ' must not be imported on the device path')
sys.meta_path.insert(0, Block())
from toolkit.cli import main
code = main(sys.argv[1:])
assert not any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules), 'tensorflow was imported'
raise SystemExit(code)
"""


def run_no_tf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", NO_TF, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )


def test_help_lists_every_command_without_tensorflow() -> None:
    proc = run_no_tf("--help")
    assert proc.returncode == 0, proc.stderr
    for name, _ in COMMANDS:
        assert name in proc.stdout
    epilog = " ".join(proc.stdout.split())  # argparse wraps the epilog
    for code in (
        "0 ok",
        "1 runtime failure",
        "2 bad usage",
        "3 device",
        "4 a quality gate",
        "130 interrupted",
    ):
        assert code in epilog, f"--help's exit codes miss {code!r}"


@pytest.mark.parametrize("command", [name for name, _ in COMMANDS])
def test_each_subcommand_help_is_tensorflow_free(command: str) -> None:
    proc = run_no_tf(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "usage: toolkit" in proc.stdout


def test_every_listed_command_module_exists() -> None:
    for _, module in COMMANDS:
        assert importlib.util.find_spec(f"toolkit.cli.{module}"), (
            f"toolkit.cli.{module} is listed but missing"
        )


def test_a_listed_command_without_its_module_fails_loudly(monkeypatch) -> None:
    import toolkit.cli as cli

    monkeypatch.setattr(cli, "COMMANDS", (*cli.COMMANDS, ("ghost", "ghost_cmd")))
    with pytest.raises(RuntimeError, match=r"'ghost' command's module toolkit\.cli\.ghost_cmd is missing"):
        cli.build_parser()


def test_inspect_runs_without_tensorflow(shared) -> None:
    model = shared / "models" / "mediapipe-0.10.14" / "face_detection_short_range.tflite"
    proc = run_no_tf("inspect", str(model), "--json")
    assert proc.returncode == 0, proc.stderr
    assert '"op_histogram"' in proc.stdout


def test_unknown_choice_is_one_line_exit_2(cli) -> None:
    result = cli("convert", "m.keras", "-o", "x.tflite", "--quantize", "int9")
    assert_one_line_error(result, 2, "int9")


def test_no_command_prints_help_and_exit_2(cli) -> None:
    result = cli()
    assert result.returncode == 2
    assert "convert" in result.stdout


def test_atomic_writes_get_the_mode_of_a_plain_open(tmp_path) -> None:
    import os
    import stat

    from toolkit.fileio import write_json_atomic

    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    write_json_atomic(tmp_path / "atomic.json", {})
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
    assert mode(tmp_path / "atomic.json") == mode(plain)  # not mkstemp's 0600


def test_scripts_get_the_cli_error_contract(capsys) -> None:
    from toolkit.errors import DeviceUnavailable, UsageError, run_script

    def bad() -> int:
        raise UsageError("clip not found: x.avi\n(second line)")

    assert run_script(bad, "s.py") == 2
    assert capsys.readouterr().err == "s.py: error: clip not found: x.avi (second line)\n"
    assert run_script(lambda: (_ for _ in ()).throw(DeviceUnavailable("no TPU")), "s.py") == 3
    assert run_script(lambda: 0, "s.py") == 0
