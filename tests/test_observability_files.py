"""deploy/: the Prometheus config, the alert rules and the Grafana dashboard are valid and fit together.

promtool (Debian's `prometheus` package; .ci/run installs it) checks the config and the rules,
runs the alert unit tests in tests/prometheus/alerts_test.yml, and parses every dashboard
expression as PromQL. Without promtool those checks are skipped, saying so; the YAML and
JSON checks always run. That every metric used here exists: tests/e2e/test_metrics.py.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import installed_tool
from tests.observability import ALERTS, DASHBOARD, PROMETHEUS_CONFIG, ROOT, alert_rules, dashboard_expressions
from tests.test_settings import code_settings

GRAFANA = ROOT / "deploy" / "grafana"
ALERT_TESTS = ROOT / "tests" / "prometheus" / "alerts_test.yml"
REQUIRED_ALERTS = {"PageviewsLagGrowing", "PageviewsNoFlushWhileQueued", "PageviewsDeadLetters", "PageviewsTooMany503"}


@pytest.fixture(scope="module")
def promtool() -> str:
    return installed_tool("promtool", "prometheus")


def _promtool(promtool: str, *args: str) -> None:
    result = subprocess.run([promtool, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}\n{result.stderr}"


def _scrape_jobs() -> dict[str, dict]:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    return {job["job_name"]: job for job in config["scrape_configs"]}


def _targets(job: dict) -> list[str]:
    return [target for static in job["static_configs"] for target in static["targets"]]


# -- with promtool


def test_promtool_accepts_the_config_and_its_rules(promtool: str) -> None:
    _promtool(promtool, "check", "config", str(PROMETHEUS_CONFIG))
    _promtool(promtool, "check", "rules", str(ALERTS))


def test_each_alert_fires_on_its_situation_and_not_otherwise(promtool: str) -> None:
    _promtool(promtool, "test", "rules", str(ALERT_TESTS))


def test_every_dashboard_expression_is_promql(promtool: str, tmp_path: Path) -> None:
    # promtool parses a recording rule's expression like any query: a syntax error names it.
    rules = [{"record": f"dashboard:expr_{index}", "expr": expr} for index, expr in enumerate(dashboard_expressions())]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")
    _promtool(promtool, "check", "rules", str(path))


# -- always


def test_the_alerts_the_issue_asks_for_exist_and_each_says_why() -> None:
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} >= REQUIRED_ALERTS
    for rule in rules:
        annotations = rule.get("annotations", {})
        assert len(annotations.get("description", "")) > 80, f"{rule['alert']}: the description should give the reason and what to do"
        assert annotations.get("summary"), f"{rule['alert']}: no summary"
        assert rule.get("labels", {}).get("severity") in ("warning", "critical"), f"{rule['alert']}: severity"


def test_prometheus_scrapes_the_api_every_worker_the_cleaner_and_rabbitmq() -> None:
    jobs = _scrape_jobs()
    assert _targets(jobs["pageviews-api"]) == [f"api:{code_settings()['PORT']}"], "the API target's port must be PORT from config.env"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    workers = sorted(name for name, service in compose["services"].items() if service.get("command") == ["python", "-m", "worker"])
    assert sorted(_targets(jobs["pageviews-worker"])) == [f"{name}:9101" for name in workers], "one target per worker service"
    assert _targets(jobs["pageviews-cleaner"]) == ["cleaner:9100"]
    assert _targets(jobs["rabbitmq"]) == ["rabbitmq:15692"]
    assert jobs["rabbitmq"].get("metrics_path") == "/metrics/per-object", "per-queue figures (lag per partition) need per-object metrics"
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    assert config["rule_files"] == [ALERTS.name]


def test_the_dashboard_panels_explain_themselves_and_use_the_provisioned_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text(encoding="utf-8"))["datasources"]
    assert [source["url"] for source in datasources] == ["http://prometheus:9090"]
    uid = datasources[0]["uid"]
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    for panel in panels:
        assert panel.get("description"), f"panel {panel['title']!r}: say what it means"
        assert panel["datasource"]["uid"] == uid and all(t["datasource"]["uid"] == uid for t in panel["targets"]), panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
    titles = " | ".join(panel["title"].lower() for panel in panels)
    for topic in ("by endpoint", "503", "confirm", "flushed", "lag per partition", "dead letters", "freshness", "cleaner runs"):
        assert topic in titles, f"no panel about {topic!r}: {titles}"
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"]), "panel ids must be unique"


def test_grafana_loads_the_dashboard_from_where_compose_mounts_it() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "pageviews.yml").read_text(encoding="utf-8"))["providers"][0]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in compose["services"]["grafana"]["volumes"]}
    assert mounts.get(provider["options"]["path"]) == "./deploy/grafana/dashboards"
    assert mounts.get("/etc/grafana/provisioning") == "./deploy/grafana/provisioning"
