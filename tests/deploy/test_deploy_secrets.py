"""Every secret the code reads (libs.config.SECRETS) is in the table of docs/deploy.md with the
services that really read it, and in the prod overlay: each Deployment references exactly the
keys of brandclub-secrets its service reads. The dev overlay runs in development mode with the
published development values."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from libs.config import SECRETS
from tests.secret_cases import LOADERS, secrets_read_by

Manifest = dict[str, Any]
REPO = Path(__file__).resolve().parents[2]
SECRET_NAME = "brandclub-secrets"


def doc_table() -> dict[str, set[str]]:
    """{variable: services in its "read by" column} from docs/deploy.md's Secrets table."""
    text = (REPO / "docs" / "deploy.md").read_text()
    section = text.split("\n## Secrets\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, set[str]] = {}
    for line in section.splitlines():
        match = re.match(r"^\| `([A-Z][A-Z0-9_]+)` \|(.*)\|\s*$", line)
        if match:
            cells = [cell.strip() for cell in match.group(2).split("|")]
            assert len(cells) == 4, f"row of {match.group(1)} needs 5 columns: {line}"
            rows[match.group(1)] = set(re.findall(r"[a-z]+", cells[2])) & set(LOADERS)
    return rows


@pytest.fixture(scope="module")
def read_by() -> dict[str, set[str]]:
    """{service: the secrets its settings loader requires}, found by leaving each one out."""
    return {service: secrets_read_by(service) for service in LOADERS}


def test_doc_table_lists_every_secret_and_who_reads_it(read_by: dict[str, set[str]]) -> None:
    """docs/deploy.md has one row per declared secret (no more, no fewer), and its "read by"
    column names exactly the services whose settings refuse to load without it."""
    table = doc_table()
    assert set(table) == set(SECRETS)
    section = (REPO / "docs" / "deploy.md").read_text().split("\n## Secrets\n", 1)[1]
    assert "| Secret `<service>-tls`, mounted at `TLS_DIR` |" in section  # the TLS key's row
    for name, services in table.items():
        assert services == {s for s, names in read_by.items() if name in names}, name


def secret_refs(container: Manifest) -> set[str]:
    refs = set()
    for entry in container.get("env", []):
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None:
            assert ref["name"].startswith(SECRET_NAME), entry
            assert entry["name"] == ref["key"], entry
            assert not ref.get("optional", False), entry
            refs.add(ref["key"])
    for source in container.get("envFrom", []):
        assert "secretRef" not in source, f"{container['name']} imports a whole Secret"
    return refs


def brandclub_deployments(docs: list[Manifest]) -> dict[str, Manifest]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "Deployment"
            and doc["spec"]["template"]["metadata"]["labels"].get(
                "app.kubernetes.io/part-of") == "brandclub"}


@pytest.mark.parametrize("overlay", ["prod", "dev"])
def test_each_deployment_references_exactly_the_secrets_its_service_reads(
        rendered: dict[str, list[Manifest]], read_by: dict[str, set[str]], overlay: str) -> None:
    """Each server container gets, key by key and not optional, exactly the secrets its
    service reads (a missing key keeps the pod from starting); migrations get DATABASE_URL."""
    deployments = brandclub_deployments(rendered[overlay])
    assert set(deployments) == set(LOADERS)
    for service, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        servers = [c for c in pod["containers"] if c["name"] == "server"]
        assert [secret_refs(c) for c in servers] == [read_by[service]], service
        for init in pod.get("initContainers", []):
            assert secret_refs(init) == {"DATABASE_URL"}, (service, init["name"])


def test_prod_overlay_names_every_key_and_renders_no_secret(
        rendered: dict[str, list[Manifest]]) -> None:
    """The prod overlay's Secret reference lists every declared secret, renders no Secret
    (the real one is managed outside the repository) and never sets development mode."""
    text = (REPO / "deploy" / "overlays" / "prod" / "kustomization.yaml").read_text()
    listed = {name for line in re.findall(r"#\s+secret-keys:(.*)", text)
              for name in line.split()}
    assert listed == set(SECRETS)
    docs = rendered["prod"]
    assert not [doc for doc in docs if doc["kind"] == "Secret"]
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            assert "BRANDCLUB_ENV" not in doc.get("data", {}), doc["metadata"]["name"]


def test_dev_overlay_runs_in_development_mode_with_the_published_values(
        rendered: dict[str, list[Manifest]]) -> None:
    """The dev overlay sets BRANDCLUB_ENV=development and its Secret holds every declared key;
    its keys are the values published in libs.config, so production refuses each of them."""
    docs = rendered["dev"]
    config = next(doc for doc in docs if doc["kind"] == "ConfigMap"
                  and doc["metadata"]["name"].startswith("brandclub-config"))
    assert config["data"]["BRANDCLUB_ENV"] == "development"
    env_file = REPO / "deploy" / "overlays" / "dev" / "secrets.dev.env"
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines()
                  if line and not line.startswith("#"))
    assert set(SECRETS) <= set(values)
    for spec in SECRETS.values():
        if spec.kind != "url":
            assert values[spec.name] == spec.dev_value, spec.name
