"""deploy/monitoring against the code: alert rules and dashboard panels use only metrics that
libs/metrics.py exports, every exported figure is on the dashboard, every alert has its
runbook section in docs/operations.md, and every pod is scraped on the port it serves."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric

import libs.metrics
from libs.config import SERVICE_PORTS, load_settings
from tests.deploy.conftest import DEPLOY, REPO

MONITORING = DEPLOY / "monitoring"
RUNBOOK = REPO / "docs" / "operations.md"
# Series Prometheus makes itself for every target, not exported by any process.
PROMETHEUS_OWN = frozenset({"up"})
# PromQL words that look like metric names.
PROMQL_WORDS = frozenset({
    "sum", "max", "min", "avg", "count", "by", "without", "on", "ignoring", "group_left",
    "group_right", "and", "or", "unless", "rate", "irate", "increase", "delta", "scalar",
    "histogram_quantile", "bool", "offset", "le", "topk", "bottomk", "abs", "clamp_min",
})
Manifest = dict[str, Any]


def families() -> list[Metric]:
    """The metric families declared in libs.metrics."""
    declared = [value for value in vars(libs.metrics).values()
                if isinstance(value, Counter | Gauge | Histogram)]
    return [family for metric in declared for family in metric.describe()]


def exported_series() -> set[str]:
    """Every series name libs.metrics can expose, whether or not it has a sample yet."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                "gauge": ("",)}
    return {family.name + suffix for family in families()
            for suffix in suffixes[family.type]}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads: identifiers outside label matchers, grouping
    clauses, strings and durations that are not PromQL words or function calls."""
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        follows = text[match.end():].lstrip()[:1]
        if word in PROMQL_WORDS or follows == "(" or word.startswith("__"):
            continue
        names.add(word)
    return names


def alerts() -> list[dict[str, Any]]:
    rules = yaml.safe_load((MONITORING / "rules.yaml").read_text())
    return [rule for group in rules["spec"]["groups"] for rule in group["rules"]]


def dashboard_exprs() -> Iterator[tuple[str, str]]:
    dashboard = json.loads((MONITORING / "dashboards" / "brandclub.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    found = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", title)))
    return found


def test_the_expression_reader_finds_metric_names() -> None:
    """The reader keeps metric names and drops functions, labels, strings and durations."""
    expr = ('histogram_quantile(0.99, sum by (route, le) (rate(http_x_bucket{status=~"5.."}'
            '[5m]))) > 2 and on(pod) up == 0')
    assert metric_names(expr) == {"http_x_bucket", "up"}


def test_every_alert_reads_only_metrics_we_export() -> None:
    """Each alert expression names metrics libs.metrics exports (or Prometheus's own `up`)."""
    exported = exported_series() | PROMETHEUS_OWN
    assert alerts()
    for alert in alerts():
        used = metric_names(alert["expr"])
        assert used, alert["alert"]
        assert used <= exported, f"{alert['alert']} reads {sorted(used - exported)}"


def test_every_dashboard_panel_reads_only_metrics_we_export() -> None:
    exported = exported_series()
    for title, expr in dashboard_exprs():
        used = metric_names(expr)
        assert used and used <= exported, f"panel {title!r} reads {sorted(used - exported)}"


def test_every_exported_figure_is_on_the_dashboard() -> None:
    """A metric added to libs.metrics fails here until a panel shows it."""
    shown = {name for _, expr in dashboard_exprs() for name in metric_names(expr)}
    for family in families():
        series = {family.name, f"{family.name}_total", f"{family.name}_bucket"}
        assert series & shown, f"{family.name} is on no dashboard panel"


def test_every_alert_has_severity_summary_and_a_runbook_section() -> None:
    """docs/operations.md has a section per alert, named after it, that the rule links to."""
    sections = anchors(RUNBOOK.read_text())
    for alert in alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in {"page", "ticket", "info"}, name
        assert alert["annotations"]["summary"], name
        assert alert["annotations"]["runbook_url"] == f"docs/operations.md#{name.lower()}"
        assert name.lower() in sections, f"docs/operations.md has no section {name}"


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_pod_is_scraped_on_the_port_it_serves_metrics_on(
        rendered: dict[str, list[Manifest]], overlay: str) -> None:
    """Each service's pod declares a "metrics" port equal to the default METRICS_PORT
    (GRPC_PORT + 2000), its scrape annotations name that port, and the PodMonitor and the
    scrape NetworkPolicy cover it."""
    podmonitor = yaml.safe_load((MONITORING / "podmonitor.yaml").read_text())
    assert podmonitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    selector = podmonitor["spec"]["selector"]["matchLabels"]
    scrape = next(doc for doc in rendered[overlay] if doc["kind"] == "NetworkPolicy"
                  and doc["metadata"]["name"] == "allow-metrics-scrape")
    allowed = scrape["spec"]["ingress"][0]["ports"][0]
    deployments = {doc["metadata"]["name"]: doc for doc in rendered[overlay]
                   if doc["kind"] == "Deployment"}
    for service, grpc_port in SERVICE_PORTS.items():
        pod = deployments[service]["spec"]["template"]
        expected = load_settings(service, {"BRANDCLUB_ENV": "development",
                                           "GRPC_PORT": str(grpc_port)}).metrics_port
        ports = {port["name"]: port["containerPort"]
                 for port in pod["spec"]["containers"][0]["ports"]}
        assert ports["metrics"] == expected == grpc_port + 2000, service
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(expected)
        assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        assert selector.items() <= pod["metadata"]["labels"].items(), service
        assert allowed["port"] <= expected <= allowed["endPort"], service


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_overlays_tracing_settings_load(rendered: dict[str, list[Manifest]],
                                            overlay: str) -> None:
    """The collector endpoint and TLS settings each overlay gives a service are accepted at
    start-up; outside development the spans travel over TLS."""
    config = next(doc["data"] for doc in rendered[overlay] if doc["kind"] == "ConfigMap"
                  and doc["metadata"]["name"].startswith("brandclub-config"))
    settings = load_settings("gateway", {**config, "REDIS_URL": "redis://r:6379/0"},
                             database=False)
    assert settings.traces_exporter == "otlp"
    assert settings.otlp.insecure is (overlay == "dev")


def test_monitoring_kustomization_lists_every_file() -> None:
    """deploy/monitoring/kustomization.yaml applies the PodMonitor, the rules and the
    dashboard; no file there is left out."""
    kustomization = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    listed |= {entry.split("=", 1)[1] for generator in kustomization["configMapGenerator"]
               for entry in generator["files"]}
    present = {str(path.relative_to(MONITORING)) for path in MONITORING.rglob("*")
               if path.is_file() and path.name != "kustomization.yaml"}
    assert listed == present
