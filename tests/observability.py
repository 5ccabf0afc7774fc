"""Reading metrics endpoints and the metric names the dashboard and the alert rules use."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "pageviews.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
METRIC_NAME = re.compile(r"\b((?:pageviews|rabbitmq)_[a-z_]+)\b")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    """Every sample of a metrics endpoint: (name, labels) -> value."""
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels` (0 if none)."""
    wanted = set(labels.items())
    return sum(v for (sample, sample_labels), v in samples.items() if sample == name and wanted <= sample_labels)


def names_exported(samples: Samples) -> set[str]:
    return {name for name, _labels in samples}


def dashboard_expressions() -> Iterator[str]:
    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, item in node.items():
                if key == "expr" and isinstance(item, str):
                    yield item
                else:
                    yield from walk(item)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    yield from walk(json.loads(DASHBOARD.read_text(encoding="utf-8")))


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def names_used() -> dict[str, set[str]]:
    """Metric names in the dashboard's and the alert rules' expressions -> where they are used."""
    used: dict[str, set[str]] = {}
    sources = [("dashboard", expr) for expr in dashboard_expressions()] + [(f"alert {rule['alert']}", rule["expr"]) for rule in alert_rules()]
    for where, expr in sources:
        for name in METRIC_NAME.findall(expr):
            used.setdefault(name, set()).add(where)
    return used
