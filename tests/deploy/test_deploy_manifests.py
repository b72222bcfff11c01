"""Static checks of the rendered kustomize overlays (deploy/overlays/*): schema validity against a
pinned Kubernetes version, and the rules in docs/deploy.md that no schema can express."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import kubernetes_validate
import pytest

from libs import contract

Manifest = dict[str, Any]
Rendered = dict[str, list[Manifest]]

# The Kubernetes version the manifests are validated against (schemas ship inside the
# kubernetes-validate package, so validation never touches the network). Native gRPC probes are
# GA since 1.27; bump this together with the oldest cluster version supported.
KUBERNETES_VERSION = "1.30"
OVERLAYS = ["dev", "prod"]

GRPC_PORTS = {
    "identity": 50051,
    "membership": 50052,
    "benefits": 50053,
    "engagement": 50054,
    "messaging": 50055,
    "gateway": 50056,
}
GATEWAY_HTTP_PORT = 8080


def contract_callers() -> dict[str, set[str]]:
    """Who may call whom (target <- calling services), read from the contract's
    `allowed_callers` annotations: the one caller table, which the NetworkPolicies mirror
    (the `operator` is a person's CLI, not a pod, and a service never calls itself)."""
    callers: dict[str, set[str]] = {name: set() for name in GRPC_PORTS}
    for service_name, service in contract.services().items():
        target = service_name.split(".")[1]
        for method in service.methods:
            allowed = contract.allowed_callers(contract.full_method_name(method)) or frozenset()
            callers[target] |= {c for c in allowed if c in GRPC_PORTS and c != target}
    return callers


CALLERS = contract_callers()
NAME_LABEL = "app.kubernetes.io/name"


def of_kind(docs: list[Manifest], kind: str) -> list[Manifest]:
    return [doc for doc in docs if doc["kind"] == kind]


def by_name(docs: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {doc["metadata"]["name"]: doc for doc in of_kind(docs, kind)}


def app_deployments(docs: list[Manifest]) -> dict[str, Manifest]:
    """The Brandclub service Deployments (not the dev overlay's datastores)."""
    return {
        name: doc
        for name, doc in by_name(docs, "Deployment").items()
        if doc["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/part-of")
        == "brandclub"
    }


def containers(deployment: Manifest) -> Iterator[Manifest]:
    pod = deployment["spec"]["template"]["spec"]
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


def config_data(docs: list[Manifest]) -> dict[str, str]:
    """The data of the generated brandclub-config ConfigMap (its name carries a hash)."""
    matches = [
        doc
        for doc in of_kind(docs, "ConfigMap")
        if doc["metadata"]["name"].startswith("brandclub-config")
    ]
    assert len(matches) == 1, "expected exactly one brandclub-config ConfigMap"
    data: dict[str, str] = matches[0]["data"]
    return data


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_document_validates_against_pinned_schema(rendered: Rendered, overlay: str) -> None:
    """Every rendered object validates (strictly: no unknown fields) against Kubernetes 1.30."""
    assert rendered[overlay], f"{overlay} rendered no objects"
    problems = []
    for doc in rendered[overlay]:
        where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(part) for part in exc.path)
            problems.append(f"{where}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{where}: {exc.message}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_deployment_service_and_account(
    rendered: Rendered, overlay: str, service_names: list[str]
) -> None:
    """Each service directory has a Deployment, a Service and a ServiceAccount of its name."""
    docs = rendered[overlay]
    deployments = app_deployments(docs)
    services = by_name(docs, "Service")
    accounts = by_name(docs, "ServiceAccount")
    for name in service_names:
        assert name in deployments, f"{overlay}: no Deployment for service {name}"
        assert name in services, f"{overlay}: no Service for service {name}"
        assert name in accounts, f"{overlay}: no ServiceAccount for service {name}"
        pod = deployments[name]["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == name
        assert pod["containers"][0]["args"] == [f"services.{name}"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_deployments_have_grpc_probes_on_their_port(
    rendered: Rendered, overlay: str
) -> None:
    """Every service's server container has native gRPC startup, liveness and readiness probes
    on its plaintext health-only port (GRPC_HEALTH_PORT): the kubelet cannot do mutual TLS,
    and the gRPC port (GRPC_PORT) requires it."""
    for name, deployment in app_deployments(rendered[overlay]).items():
        server = deployment["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in server["ports"]}
        assert "grpc" in ports, f"{name}: no port named grpc"
        assert "health" in ports, f"{name}: no port named health"
        assert ports["health"] != ports["grpc"], f"{name}: health must be its own port"
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert "grpc" in server.get(probe, {}), f"{name}: {probe} is not a gRPC probe"
            assert server[probe]["grpc"]["port"] == ports["health"], f"{name}: {probe} port"
        env = {item["name"]: item.get("value") for item in server.get("env", [])}
        assert env.get("GRPC_PORT") == str(ports["grpc"]), f"{name}: GRPC_PORT"
        assert env.get("GRPC_HEALTH_PORT") == str(ports["health"]), f"{name}: GRPC_HEALTH_PORT"
        if name in GRPC_PORTS:
            assert ports["grpc"] == GRPC_PORTS[name], f"{name}: unexpected gRPC port"


def secret_names(docs: list[Manifest]) -> list[str]:
    return [doc["metadata"]["name"] for doc in of_kind(docs, "Secret")]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_mounts_its_own_certificate(rendered: Rendered, overlay: str) -> None:
    """Mutual TLS: each server container mounts the Secret <service>-tls read-only at TLS_DIR
    and listens on every interface; the dev overlay renders those Secrets (type
    kubernetes.io/tls, with ca.crt), prod none."""
    docs = rendered[overlay]
    tls_dir = config_data(docs)["TLS_DIR"]
    # Reachable by other pods and the kubelet, whatever the mode (development: 127.0.0.1).
    assert config_data(docs)["GRPC_LISTEN_HOST"] == "[::]", overlay
    for name, deployment in app_deployments(docs).items():
        pod = deployment["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        mounts = {m["mountPath"]: m for m in pod["containers"][0].get("volumeMounts", [])}
        assert tls_dir in mounts, f"{overlay}: {name}: nothing mounted at {tls_dir}"
        assert mounts[tls_dir].get("readOnly") is True, f"{overlay}: {name}: writable certs"
        volume = volumes[mounts[tls_dir]["name"]]
        # dev: the generated Secret's name carries a content hash, so new certificates roll pods.
        secret_name = volume["secret"]["secretName"]
        assert secret_name in (f"{name}-tls", *(key for key in secret_names(docs)
                                                if key.startswith(f"{name}-tls-"))), secret_name
    secrets = {s["metadata"]["name"]: s for s in of_kind(docs, "Secret")}
    for name in app_deployments(docs):
        rendered_secret = [s for key, s in secrets.items() if key.startswith(f"{name}-tls")]
        if overlay == "prod":
            assert not rendered_secret, f"prod renders {name}-tls: keys belong outside the repo"
        else:
            assert len(rendered_secret) == 1, f"dev: no Secret {name}-tls"
            assert rendered_secret[0]["type"] == "kubernetes.io/tls"
            assert set(rendered_secret[0]["data"]) == {"ca.crt", "tls.crt", "tls.key"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_probes_limits_and_locked_down_security(
    rendered: Rendered, overlay: str
) -> None:
    """Every container of every Deployment: probes, requests and limits, non-root, read-only
    root file system, no privilege escalation, all capabilities dropped."""
    deployments = of_kind(rendered[overlay], "Deployment")
    assert deployments
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        pod = deployment["spec"]["template"]["spec"]
        pod_security = pod.get("securityContext", {})
        for container in containers(deployment):
            where = f"{overlay}: {name}/{container['name']}"
            resources = container.get("resources", {})
            for section in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    assert resource in resources.get(section, {}), f"{where}: {section}.{resource}"
            security = container.get("securityContext", {})
            non_root = security.get("runAsNonRoot", pod_security.get("runAsNonRoot"))
            assert non_root is True, f"{where}: runAsNonRoot"
            assert security.get("readOnlyRootFilesystem") is True, f"{where}: writable root fs"
            assert security.get("allowPrivilegeEscalation") is False, f"{where}: escalation"
            assert security.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: caps"
        for container in pod["containers"]:
            for probe in ("livenessProbe", "readinessProbe"):
                assert probe in container, f"{overlay}: {name}/{container['name']}: {probe}"


# What a server does after SIGTERM besides the configured windows: close pools and clients
# (libs.db.Database.close waits up to 5 s), and exit.
CLOSE_SECONDS = 5.0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_grace_period_outlasts_prestop_drain_and_shutdown(rendered: Rendered, overlay: str) -> None:
    """Every service has a preStop sleep, and terminationGracePeriodSeconds exceeds the whole
    shutdown: preStop + DRAIN_SECONDS (still serving, NOT_SERVING) + SHUTDOWN_GRACE_SECONDS
    twice (gRPC, then HTTP in the gateway) + closing; so the kubelet never SIGKILLs a drain."""
    config = config_data(rendered[overlay])
    drain = float(config.get("DRAIN_SECONDS", "10"))  # defaults: libs/config.py
    shutdown_grace = float(config.get("SHUTDOWN_GRACE_SECONDS", "5"))
    assert drain > 0, f"{overlay}: DRAIN_SECONDS must leave time to move clients away"
    for name, deployment in app_deployments(rendered[overlay]).items():
        pod = deployment["spec"]["template"]["spec"]
        server = pod["containers"][0]
        pre_stop = server.get("lifecycle", {}).get("preStop", {})
        assert "sleep" in pre_stop, f"{overlay}: {name}: no preStop sleep"
        sleep = float(pre_stop["sleep"]["seconds"])
        assert sleep > 0, f"{overlay}: {name}: preStop sleeps 0 s"
        needed = sleep + drain + 2 * shutdown_grace + CLOSE_SECONDS
        grace = pod.get("terminationGracePeriodSeconds", 30)
        assert grace > needed, (f"{overlay}: {name}: terminationGracePeriodSeconds {grace} <= "
                                f"preStop {sleep} + drain {drain} + 2 x {shutdown_grace} "
                                f"+ {CLOSE_SECONDS}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_data_services_migrate_before_serving(rendered: Rendered, overlay: str) -> None:
    """Each service that owns data runs `tools.migrate <service>` as an init container, with
    the same image as its server, so a new version never serves on an old schema."""
    for name, deployment in app_deployments(rendered[overlay]).items():
        pod = deployment["spec"]["template"]["spec"]
        inits = pod.get("initContainers", [])
        if name == "gateway":
            assert not inits, "the gateway owns no tables and has nothing to migrate"
            continue
        assert [c["args"] for c in inits] == [["tools.migrate", name]], f"{name}: migrations"
        assert inits[0]["image"] == pod["containers"][0]["image"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_and_secrets_reach_every_container(rendered: Rendered, overlay: str) -> None:
    """Every service container reads brandclub-config and keys of the brandclub-secrets Secret
    (which keys: tests/deploy/test_deploy_secrets.py), and the service addresses in the config
    point at the Services' gRPC ports."""
    docs = rendered[overlay]
    config = config_data(docs)
    services = by_name(docs, "Service")
    for name, port in GRPC_PORTS.items():
        if name == "gateway":
            continue
        assert config[f"{name.upper()}_ADDR"] == f"{name}:{port}"
        ports = {p["name"]: p["port"] for p in services[name]["spec"]["ports"]}
        assert ports["grpc"] == port
    for name, deployment in app_deployments(docs).items():
        for container in containers(deployment):
            sources = container.get("envFrom", [])
            config_refs = [s["configMapRef"]["name"] for s in sources if "configMapRef" in s]
            secret_refs = [e["valueFrom"]["secretKeyRef"]["name"]
                           for e in container.get("env", [])
                           if "secretKeyRef" in e.get("valueFrom", {})]
            assert any(ref.startswith("brandclub-config") for ref in config_refs), name
            assert secret_refs, name
            assert all(ref.startswith("brandclub-secrets") for ref in secret_refs), name


def allowed_ingress(policy: Manifest) -> list[tuple[set[str] | None, set[int]]]:
    """(caller names or None for "any source", ports) per ingress rule of a NetworkPolicy."""
    rules: list[tuple[set[str] | None, set[int]]] = []
    for rule in policy["spec"].get("ingress", []):
        ports = {p["port"] for p in rule.get("ports", [])}
        sources = rule.get("from")
        if not sources:
            rules.append((None, ports))
            continue
        callers: set[str] = set()
        for source in sources:
            assert set(source) == {"podSelector"}, f"unexpected ingress source {source}"
            callers.add(source["podSelector"]["matchLabels"][NAME_LABEL])
        rules.append((callers, ports))
    return rules


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_admit_exactly_the_callers(rendered: Rendered, overlay: str) -> None:
    """Each service accepts gRPC only from its callers; only the gateway's HTTP port is open to
    any source; a default-deny policy covers the namespace."""
    policies = of_kind(rendered[overlay], "NetworkPolicy")
    default_deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and "Ingress" in p["spec"]["policyTypes"]
        and not p["spec"].get("ingress")
    ]
    assert default_deny, "no default-deny ingress policy"

    admitted: dict[str, set[str]] = {name: set() for name in GRPC_PORTS}
    open_ports: dict[str, set[int]] = {name: set() for name in GRPC_PORTS}
    for policy in policies:
        target = policy["spec"]["podSelector"].get("matchLabels", {}).get(NAME_LABEL)
        if target not in GRPC_PORTS:
            continue
        for callers, ports in allowed_ingress(policy):
            if callers is None:
                open_ports[target] |= ports
            else:
                assert ports == {GRPC_PORTS[target]}, f"{target}: callers reach ports {ports}"
                admitted[target] |= callers
    assert admitted == CALLERS
    assert open_ports == {
        name: ({GATEWAY_HTTP_PORT} if name == "gateway" else set()) for name in GRPC_PORTS
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_let_callers_out_to_their_callees(
    rendered: Rendered, overlay: str
) -> None:
    """Egress mirrors ingress: each caller may reach exactly the services that admit it, and
    every service pod may reach PostgreSQL, Redis, the collector and DNS."""
    policies = of_kind(rendered[overlay], "NetworkPolicy")
    reaches: dict[str, set[str]] = {name: set() for name in GRPC_PORTS}
    platform_ports: set[int] = set()
    for policy in policies:
        selector = policy["spec"]["podSelector"]
        labels = selector.get("matchLabels", {})
        for rule in policy["spec"].get("egress", []):
            ports = {p["port"] for p in rule.get("ports", [])}
            if "to" not in rule and (
                selector == {} or labels.get("app.kubernetes.io/part-of") == "brandclub"
            ):
                platform_ports |= ports
            source = labels.get(NAME_LABEL)
            for destination in rule.get("to", []):
                callee = destination["podSelector"]["matchLabels"][NAME_LABEL]
                assert ports == {GRPC_PORTS[callee]}
                reaches[source].add(callee)
    expected = {
        caller: {target for target, callers in CALLERS.items() if caller in callers}
        for caller in GRPC_PORTS
    }
    assert reaches == expected
    assert {53, 5432, 6379, 4317} <= platform_ports


def test_dev_overlay_runs_everything_in_cluster_on_one_replica(rendered: Rendered) -> None:
    """dev: in-cluster PostgreSQL, Redis and collector, one replica per service, no
    autoscalers, a generated Secret with every key the services read."""
    docs = rendered["dev"]
    deployments = by_name(docs, "Deployment")
    for infra in ("postgres", "redis", "otel-collector"):
        assert infra in deployments, f"dev overlay lacks {infra}"
    for name, deployment in app_deployments(docs).items():
        assert deployment["spec"].get("replicas") == 1, name
    assert not of_kind(docs, "HorizontalPodAutoscaler")
    secrets = [s for s in of_kind(docs, "Secret") if s["metadata"]["name"].startswith("brandclub-")]
    assert len(secrets) == 1
    assert set(secrets[0]["data"]) >= {
        "DATABASE_URL",
        "REDIS_URL",
        "TOKEN_SIGNING_KEYS",
        "PHONE_VAULT_KEYS",
        "PHONE_MATCH_PEPPER",
    }
    assert config_data(docs)["OTEL_EXPORTER_OTLP_ENDPOINT"] == "otel-collector:4317"


def test_prod_overlay_autoscales_and_keeps_state_outside(
    rendered: Rendered, service_names: list[str]
) -> None:
    """prod: an autoscaler and a disruption budget per service, a registry image, no
    in-cluster datastores and no Secret in the output (keys are managed outside the repo)."""
    docs = rendered["prod"]
    hpas = by_name(docs, "HorizontalPodAutoscaler")
    pdbs = by_name(docs, "PodDisruptionBudget")
    deployments = app_deployments(docs)
    for name in service_names:
        assert name in hpas, f"no HorizontalPodAutoscaler for {name}"
        assert hpas[name]["spec"]["scaleTargetRef"]["name"] == name
        assert 2 <= hpas[name]["spec"]["minReplicas"] < hpas[name]["spec"]["maxReplicas"]
        assert name in pdbs, f"no PodDisruptionBudget for {name}"
        assert "replicas" not in deployments[name]["spec"], "the autoscaler owns the count"
        image = deployments[name]["spec"]["template"]["spec"]["containers"][0]["image"]
        assert "/" in image and ":" in image and not image.endswith(":latest"), image
    assert not {"postgres", "redis"} & set(by_name(docs, "Deployment"))
    assert not of_kind(docs, "Secret")
