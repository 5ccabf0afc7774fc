"""The dashboard's files in the repository: self-contained, and the chart library is the pinned one."""
from __future__ import annotations

import json
import re
from pathlib import Path

from api.dashboard import ASSETS

ROOT = Path(__file__).resolve().parent.parent.parent


def test_the_page_loads_nothing_from_elsewhere():
    for path in ASSETS.rglob("*"):
        if path.suffix in (".html", ".js", ".css") and path.parent.name != "vendor":
            assert not re.search(r"https?://|[\"'(]//", path.read_text()), f"{path.name} refers to another host"


def test_the_vendored_chart_is_the_pinned_one():
    pinned = json.loads((ROOT / "dashboard" / "package.json").read_text())["dependencies"]["uplot"]
    locked = json.loads((ROOT / "dashboard" / "package-lock.json").read_text())["packages"]["node_modules/uplot"]["version"]
    built = re.match(r"/\*! https://github.com/leeoniya/uPlot \(v([\d.]+)\)", (ASSETS / "vendor" / "uPlot.iife.min.js").read_text())
    assert built and pinned == locked == built.group(1)
