"""config.env documents exactly the settings the code reads, with the code's defaults.

The first section of config.env ("Read by the code") and common.config.SETTINGS must
name the same settings and give the same defaults; the second section is read only by
docker-compose.yml. Only common/config.py reads the environment and only
common/broker/ imports pika (STYLE.md, habit 1).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from common.config import SETTINGS, Settings, read_env_file

ROOT = Path(__file__).resolve().parent.parent
CONFIG_ENV = ROOT / "config.env"
COMPOSE_FILE = ROOT / "docker-compose.yml"
CODE_SECTION = "Read by the code"
IMAGES_SECTION = "Read by the service images (docker compose only)"
SOURCE_DIRS = ("api", "worker", "common", "migrations", "scripts")

_HEADER = re.compile(r"#\s*====\s*(?P<title>.+?)\s*=+")
_SETTING = re.compile(r"(?P<key>[A-Z_][A-Z0-9_]*)=(?P<value>.*)")


def config_env_sections(path: Path = CONFIG_ENV) -> dict[str, dict[str, str]]:
    """The KEY=VALUE pairs of config.env per "# ==== title ====" section, parsed as read_env_file does."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        header = _HEADER.fullmatch(line)
        if header:
            current = sections.setdefault(header["title"], {})
            continue
        if not line or line.startswith("#"):
            continue
        setting = _SETTING.fullmatch(line)
        assert setting, f"config.env:{number}: expected KEY=VALUE, got {line!r}"
        assert current is not None, f"config.env:{number}: {setting['key']} comes before the first '# ==== ... ====' section header"
        current[setting["key"]] = setting["value"].strip().strip('"').strip("'")
    return sections


def code_settings() -> dict[str, str]:
    return config_env_sections().get(CODE_SECTION, {})


def image_settings() -> dict[str, str]:
    return config_env_sections().get(IMAGES_SECTION, {})


def test_config_env_has_both_sections_in_order() -> None:
    titles = list(config_env_sections())
    assert titles == [CODE_SECTION, IMAGES_SECTION], f"config.env sections: {titles}"


def test_config_env_is_read_by_the_code_the_same_way() -> None:
    """The whole file parses with common.config.read_env_file, each name once, as the sections above."""
    sections = config_env_sections()
    names = [name for section in sections.values() for name in section]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert not duplicates, f"set more than once in config.env: {duplicates}"
    assert read_env_file(str(CONFIG_ENV)) == {name: value for section in sections.values() for name, value in section.items()}


def test_code_section_names_every_setting_and_nothing_else() -> None:
    documented = set(code_settings())
    declared = {s.name for s in SETTINGS}
    problems = []
    if declared - documented:
        problems.append(f"in common.config.SETTINGS but not in config.env: {sorted(declared - documented)}")
    if documented - declared:
        problems.append(f"in config.env ({CODE_SECTION!r}) but not in common.config.SETTINGS: {sorted(documented - declared)}")
    assert not problems, "; ".join(problems)


def test_code_section_parses_and_gives_the_code_defaults() -> None:
    documented = code_settings()
    Settings.from_mapping(documented)  # raises ConfigError naming a bad value
    different = {
        s.name: (documented[s.name], s.default)
        for s in SETTINGS
        if s.name in documented and s.parse(documented[s.name]) != s.parse(s.default)
    }
    assert not different, "config.env value != default in common/config.py: " + ", ".join(
        f"{name}={file_value!r} (code: {default!r})" for name, (file_value, default) in sorted(different.items())
    )
    assert Settings.from_mapping(documented) == Settings.from_mapping({})


def test_whole_file_loads_as_make_run_loads_it() -> None:
    """scripts/run_local.py passes the whole file (both sections) to Settings.from_env."""
    assert Settings.from_env(read_env_file(str(CONFIG_ENV))) == Settings.from_mapping({})


def test_image_section_does_not_shadow_code_settings() -> None:
    overlap = set(image_settings()) & {s.name for s in SETTINGS}
    assert not overlap, f"in both sections of config.env: {sorted(overlap)}"


def test_every_setting_line_has_a_comment_above_it() -> None:
    lines = CONFIG_ENV.read_text(encoding="utf-8").splitlines()
    uncommented = [
        f"config.env:{number} {line.split('=', 1)[0]}"
        for number, line in enumerate(lines, 1)
        if _SETTING.fullmatch(line.strip()) and (number == 1 or not lines[number - 2].strip().startswith("#"))
    ]
    assert not uncommented, f"settings without a comment line directly above: {uncommented}"


def _sources() -> list[Path]:
    return sorted(path for folder in SOURCE_DIRS for path in (ROOT / folder).rglob("*.py") if "__pycache__" not in path.parts)


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_only_common_config_reads_the_environment() -> None:
    reads = re.compile(r"os\.environ|os\.getenv|from\s+os\s+import\s+[^\n]*\b(environ|getenv)\b")
    offenders = [
        _relative(path) for path in _sources() if _relative(path) != "common/config.py" and reads.search(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, f"read the environment outside common/config.py: {offenders}"


def test_only_common_broker_imports_pika() -> None:
    imports = re.compile(r"^\s*(import\s+pika\b|from\s+pika\b)", re.MULTILINE)
    offenders = [
        _relative(path)
        for path in _sources()
        if not _relative(path).startswith("common/broker/") and imports.search(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, f"import pika outside common/broker/: {offenders}"


def test_is_transient_is_always_qualified() -> None:
    """Two predicates share the name (common.db's and common.broker's): a bare one would hide which."""
    bare = re.compile(r"from\s+common\.(db|broker)\s+import\s+[^\n]*\bis_transient\b")
    offenders = [_relative(path) for path in _sources() if bare.search(path.read_text(encoding="utf-8"))]
    assert not offenders, f"import is_transient bare (write db.is_transient or broker.is_transient): {offenders}"


@pytest.mark.parametrize("name", sorted(image_settings()))
def test_image_setting_is_used_by_docker_compose(name: str) -> None:
    compose = COMPOSE_FILE.read_text(encoding="utf-8")
    used = re.search(r"\$\{" + re.escape(name) + r"\b", compose)
    assert used, f"{name} (config.env, {IMAGES_SECTION!r}) is not used as ${{{name}}} in docker-compose.yml"
