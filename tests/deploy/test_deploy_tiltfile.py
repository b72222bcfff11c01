"""The Tiltfile, run against a recording stand-in of Tilt's API (no Tilt binary here).

A Tiltfile is Starlark, which is Python syntax: it is executed with every Tilt built-in it
calls replaced by a recorder, so the tests see the resources, dependencies and image builds
Tilt would be asked for. `listdir` behaves as Tilt's does: it returns files, never
directories (recursive or not), which is what the service guard has to cope with.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import REPO, Manifest

SERVICES = ("identity", "membership", "benefits", "engagement", "messaging", "gateway")


class TiltFail(Exception):
    """Tilt's fail(): the Tiltfile stops with this message."""


@dataclass
class TiltRun:
    """What one execution of the Tiltfile asked Tilt for."""

    root: Path
    dev_overlay: list[Manifest]
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    builds: dict[str, dict[str, Any]] = field(default_factory=dict)
    applied: list[Manifest] = field(default_factory=list)

    def listdir(self, directory: str, recursive: bool = False) -> list[str]:
        base = self.root / directory
        found = base.rglob("*") if recursive else base.iterdir()
        return sorted(str(path) for path in found if path.is_file())

    def k8s_resource(self, workload: str = "", *, new_name: str = "", **options: Any) -> None:
        self.resources[new_name or workload] = options

    def docker_build(self, ref: str, **options: Any) -> None:
        self.builds[ref] = options

    def k8s_yaml(self, text: str) -> None:
        self.applied = [doc for doc in yaml.safe_load_all(text) if doc]

    def builtins(self) -> dict[str, Any]:
        def fail(message: str) -> None:
            raise TiltFail(message)

        path = SimpleNamespace(basename=posixpath.basename, dirname=posixpath.dirname,
                               join=posixpath.join,
                               exists=lambda p: (self.root / p).exists())
        return {
            "update_settings": lambda **_: None,
            "listdir": self.listdir,
            "os": SimpleNamespace(path=path),
            "fail": fail,
            "local_resource": lambda name, **options: self.resources.setdefault(name, options),
            "local": lambda command, **_: "",
            "kustomize": lambda _path: yaml.safe_dump_all(self.dev_overlay),
            "decode_yaml_stream": lambda text: [d for d in yaml.safe_load_all(text) if d],
            "encode_yaml_stream": yaml.safe_dump_all,
            "k8s_yaml": self.k8s_yaml,
            "docker_build": self.docker_build,
            "fall_back_on": lambda paths: ("fall_back_on", list(paths)),
            "sync": lambda source, target: ("sync", source, target),
            "run": lambda command: ("run", command),
            "k8s_resource": self.k8s_resource,
        }


def run_tiltfile(root: Path, dev_overlay: list[Manifest]) -> TiltRun:
    run = TiltRun(root, dev_overlay)
    code = compile((REPO / "Tiltfile").read_text(), "Tiltfile", "exec")
    exec(code, run.builtins())
    return run


@pytest.fixture(scope="module")
def tilt(rendered: dict[str, list[Manifest]]) -> TiltRun:
    return run_tiltfile(REPO, rendered["dev"])


def fake_services(root: Path, names: list[str]) -> None:
    """services/<name>/__main__.py for each name, and a sub-area without an entry point."""
    (root / "services").mkdir()
    (root / "services" / "__init__.py").write_text("")
    for name in names:
        (root / "services" / name).mkdir()
        (root / "services" / name / "__main__.py").write_text("")
    (root / "services" / "identity" / "isv").mkdir()
    (root / "services" / "identity" / "isv" / "composition.py").write_text("")


def test_every_resource_waits_for_the_namespace(tilt: TiltRun,
                                                rendered: dict[str, list[Manifest]]) -> None:
    """cluster-config carries the Namespace, and every workload of the dev overlay (the
    datastores, the collector and the services) is a resource that depends on it."""
    config = tilt.resources["cluster-config"]
    namespaces = [o["metadata"]["name"] for o in rendered["dev"] if o["kind"] == "Namespace"]
    assert namespaces and all(f"{name}:namespace" in config["objects"] for name in namespaces)
    workloads = {o["metadata"]["name"] for o in rendered["dev"] if o["kind"] == "Deployment"}
    assert {"postgres", "redis", "otel-collector", *SERVICES} <= workloads
    for name in workloads:
        assert name in tilt.resources, f"{name} has no k8s_resource, so no ordering"
        assert "cluster-config" in tilt.resources[name].get("resource_deps", []), name


def test_guard_fails_for_a_service_missing_from_the_table(
        tmp_path: Path, rendered: dict[str, list[Manifest]]) -> None:
    """A services/<name>/ with a __main__.py that the SERVICES table lacks stops Tilt, naming
    it, although listdir only ever returns files."""
    fake_services(tmp_path, [*SERVICES, "loyalty"])
    with pytest.raises(TiltFail, match=r"^services/loyalty has no entry in the Tiltfile"):
        run_tiltfile(tmp_path, rendered["dev"])


def test_guard_passes_when_every_service_is_listed(
        tmp_path: Path, rendered: dict[str, list[Manifest]]) -> None:
    """The six services (and a sub-area folder without an entry point) pass the guard, in a
    tree like the repository's and in the repository itself."""
    fake_services(tmp_path, list(SERVICES))
    assert set(run_tiltfile(tmp_path, rendered["dev"]).builds) == {
        f"brandclub-{name}" for name in SERVICES}


def covers(entry: str, path: str) -> bool:
    return path == entry or path.startswith(entry.rstrip("/") + "/")


def test_each_image_holds_only_its_own_service(tilt: TiltRun) -> None:
    """Each service's build context and live update carry its own services/<name> and no
    other service's code, so an edit to one service rebuilds and restarts only that one."""
    assert set(tilt.builds) == {f"brandclub-{name}" for name in SERVICES}
    for name in SERVICES:
        build = tilt.builds[f"brandclub-{name}"]
        synced = [step[1] for step in build["live_update"] if step[0] == "sync"]
        assert any(covers(entry, f"services/{name}/main.py") for entry in build["only"])
        assert any(covers(entry, f"services/{name}/main.py") for entry in synced)
        for other in SERVICES:
            if other == name:
                continue
            code = f"services/{other}/main.py"
            assert not any(covers(entry, code) for entry in build["only"]), (name, other)
            assert not any(covers(entry, code) for entry in synced), (name, other)


def test_a_new_migration_rebuilds_only_its_service(tilt: TiltRun) -> None:
    """A change under services/<name>/migrations falls back to a full rebuild of that
    service's image (its init container applies it), and of no other."""
    for name in SERVICES:
        build = tilt.builds[f"brandclub-{name}"]
        fall_back = next(step[1] for step in build["live_update"] if step[0] == "fall_back_on")
        migrations = [path for path in fall_back if path.startswith("services/")]
        assert migrations == ([] if name == "gateway" else [f"services/{name}/migrations"])


def test_context_holds_what_the_image_build_copies(tilt: TiltRun) -> None:
    """Every path the Dockerfile copies from the context is in each build's context."""
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    sources: set[str] = set()
    for line in dockerfile.splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            words = [word for word in line.split()[1:] if not word.startswith("--")]
            sources.update(words[:-1])  # the last word is the destination
    assert {"requirements.lock", "libs", "services", "deploy/tilt/supervise.py"} <= sources
    for build in tilt.builds.values():
        for source in sources:
            assert any(covers(entry, source) or covers(source, entry)
                       for entry in build["only"]), source
