"""Static checks of the image recipe (deploy/Dockerfile) and the Tiltfile."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiltfile() -> str:
    return (REPO / "Tiltfile").read_text()


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (REPO / "deploy" / "Dockerfile").read_text()


def stage(dockerfile: str, name: str) -> str:
    """The text of one build stage, from its FROM line to the next FROM."""
    match = re.search(rf"^FROM \S+ AS {name}\n(.*?)(?=^FROM |\Z)", dockerfile, re.M | re.S)
    assert match, f"no stage {name}"
    return match.group(1)


def test_tiltfile_names_every_service(tiltfile: str, service_names: list[str]) -> None:
    """The Tiltfile's SERVICES table lists every service, with its gRPC port."""
    for name in service_names:
        assert re.search(rf"'{name}': \d+,", tiltfile), f"Tiltfile does not list {name}"


def test_tiltfile_builds_codegen_dev_overlay_and_live_update(tiltfile: str) -> None:
    """The Tiltfile generates code locally, applies the dev overlay, builds per service with
    live update and a restart, and orders datastores before services."""
    assert "local_resource(\n    'codegen'" in tiltfile
    assert "kustomize('deploy/overlays/dev')" in tiltfile
    assert "docker_build(\n        'brandclub-' + name" in tiltfile
    assert "live_update=" in tiltfile and "sync('services/' + name" in tiltfile
    assert "run('date > ' + RESTART_TRIGGER)" in tiltfile
    assert "resource_deps=['codegen', 'cluster-config', 'postgres', 'redis'" in tiltfile
    assert "labels=['infra']" in tiltfile and "labels=['services']" in tiltfile


def test_image_is_slim_glibc_python_without_dev_tools(dockerfile: str) -> None:
    """The image builds on python 3.11 slim-bookworm (glibc) and installs the runtime
    dependencies at locked versions, the generated code included."""
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm@", dockerfile, re.M)
    build = stage(dockerfile, "build")
    assert "pip install --constraint requirements.lock ." in build
    assert "pip install --no-deps ." in build
    for path in ("gen", "libs", "services", "tools"):
        assert f"COPY {path} ./{path}" in build


def test_runtime_stage_is_last_and_runs_as_numeric_non_root(dockerfile: str) -> None:
    """The default (last) stage copies only the virtualenv and runs as UID 10001."""
    froms = re.findall(r"^FROM \S+ AS (\S+)$", dockerfile, re.M)
    assert froms[-1] == "runtime"
    runtime = stage(dockerfile, "runtime")
    assert re.findall(r"^COPY .*$", runtime, re.M) == ["COPY --from=build /opt/venv /opt/venv"]
    assert "USER 10001:10001" in runtime
    assert "PYTHONDONTWRITEBYTECODE=1" in dockerfile


def test_build_context_includes_what_the_image_copies() -> None:
    """deploy/Dockerfile.dockerignore lets through exactly the paths the Dockerfile copies."""
    ignore = (REPO / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert allowed == {
        "requirements.lock",
        "pyproject.toml",
        "gen",
        "libs",
        "services",
        "tools",
        "deploy/tilt/supervise.py",
    }


def test_base_image_is_pinned_by_digest(dockerfile: str) -> None:
    """The base image is named by tag and pinned by a sha256 digest, and every stage builds
    on it (no FROM with a floating tag)."""
    pinned = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.M)
    assert pinned and re.fullmatch(r"python:[\w.-]+@sha256:[0-9a-f]{64}", pinned.group(1))
    bases = re.findall(r"^FROM (\S+) AS \S+$", dockerfile, re.M)
    assert bases[0] == "${PYTHON_IMAGE}"
    stages = re.findall(r"^FROM \S+ AS (\S+)$", dockerfile, re.M)
    assert all(base in ("${PYTHON_IMAGE}", *stages) for base in bases), bases
