"""Fixtures for the deployment checks: the repository layout and every rendered overlay.

Nothing here needs a cluster or a container engine. Overlays are rendered with
`kubectl kustomize` (kustomize v5 ships inside kubectl); without kubectl on PATH the tests that
need rendered manifests are skipped with a message saying so.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from libs.tls import issue_pki

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
OVERLAYS = ("dev", "prod")

# The services the suite is built from; service directories found on disk are added to these,
# so a new service fails the checks until it has manifests.
EXPECTED_SERVICES = ("identity", "membership", "benefits", "engagement", "messaging", "gateway")

Manifest = dict[str, Any]


def discover_services(root: Path = REPO) -> list[str]:
    """Service names: the expected six plus every package directory under services/."""
    names = set(EXPECTED_SERVICES)
    services_dir = root / "services"
    if services_dir.is_dir():
        for child in services_dir.iterdir():
            is_package = (child / "__init__.py").exists() or (child / "__main__.py").exists()
            if child.is_dir() and is_package:
                names.add(child.name)
    return sorted(names)


def render_overlay(overlay: str) -> list[Manifest]:
    """`kubectl kustomize deploy/overlays/<overlay>`, parsed into a list of objects."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not on PATH: cannot render the kustomize overlays (install kubectl)")
    if overlay == "dev":
        # The dev overlay's certificates are generated, not committed (as the Tiltfile does).
        issue_pki(DEPLOY / "overlays" / "dev" / "tls")
    result = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {overlay} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="session")
def service_names() -> list[str]:
    return discover_services()


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Manifest]]:
    """Every overlay, rendered once per session."""
    return {overlay: render_overlay(overlay) for overlay in OVERLAYS}
