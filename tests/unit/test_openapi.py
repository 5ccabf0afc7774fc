"""api/openapi.yaml and the app's routes describe the same API: every route is in it, every path is a route."""
from __future__ import annotations

import re

import yaml

from api import create_app
from api.openapi import DESCRIPTION
from common.config import Settings

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# Flask answers these itself for every route; the description names OPTIONS only where a
# view handles it (the beacon's CORS preflight).
IMPLICIT = {"HEAD", "OPTIONS"}
# Described endpoints that other branches build (DESIGN.md); the lead removes each line as
# its branch is merged. The test fails both ways: a route missing from the description, and
# a pending endpoint that now exists (so this set cannot go stale).
PENDING = {
}


def described() -> set[tuple[str, str]]:
    spec = yaml.safe_load(DESCRIPTION.read_text())
    return {(path, method.upper()) for path, item in spec["paths"].items() for method in item if method in HTTP_METHODS}


def routed() -> set[tuple[str, str]]:
    app = create_app(Settings.from_mapping({}))
    found = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        explicit = {m for m in rule.methods or () if m not in IMPLICIT}
        # A view that names OPTIONS itself (provide_automatic_options off) handles it.
        if "OPTIONS" in (rule.methods or ()) and not getattr(rule, "provide_automatic_options", True):
            explicit.add("OPTIONS")
        found |= {(path, method) for method in explicit}
    return found


def test_the_description_is_openapi_3_1():
    spec = yaml.safe_load(DESCRIPTION.read_text())
    assert spec["openapi"].startswith("3.1")


def test_every_route_is_described_and_every_described_path_is_a_route():
    routes, paths = routed(), described()
    undescribed = sorted(routes - paths)
    not_routes = sorted(paths - routes - set(PENDING))
    built_meanwhile = sorted(set(PENDING) & routes)
    problems = []
    if undescribed:
        problems.append("routes of the app missing from api/openapi.yaml: " + ", ".join(f"{m} {p}" for p, m in undescribed))
    if not_routes:
        problems.append("described in api/openapi.yaml but not routes of the app: " + ", ".join(f"{m} {p}" for p, m in not_routes))
    if built_meanwhile:
        problems.append("now routes, remove from PENDING: " + ", ".join(f"{m} {p}" for p, m in built_meanwhile))
    assert not problems, "\n".join(problems)
