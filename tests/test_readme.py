"""README.md states facts the code must keep true."""
from __future__ import annotations

import re
from pathlib import Path

from common.config import SETTINGS
from common.partitioning import partition_for

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_in_the_settings_table_with_its_default():
    for setting in SETTINGS:
        row = re.search(rf"^\| `{setting.name}` \| `?([^|`]*)`? \|", README, re.MULTILINE)
        assert row, f"{setting.name} is missing from the settings table"
        assert row.group(1).strip().lower() == setting.default.lower(), f"{setting.name}: README says {row.group(1)!r}, code {setting.default!r}"


def test_the_partition_examples_match_the_hash():
    examples = re.findall(r"`(example\.com/\w)` → (\d+)", README)
    assert examples, "README lost its partition examples"
    for page, partition in examples:
        assert partition_for(page, 10) == int(partition), page


def test_the_two_commands_are_documented():
    assert "docker compose up -d --build" in README
    assert "make test" in README and "make run" in README


def test_the_security_section_shows_the_grants_the_code_makes():
    from common.db_roles import statements

    flat = " ".join(README.split())
    missing = [sql for sql in statements("pageviews") if " ".join(sql.split()) + ";" not in flat]
    assert not missing, f"README's SQL for an existing database lacks: {missing}"
