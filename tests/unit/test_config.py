"""Configuration: one typed, frozen object; a bad value names the setting; secrets masked in logs."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from common.config import SETTINGS, ConfigError, Settings, environment, mask_url, read_env_file
from tests.helpers import ROOT


def test_defaults_parse():
    settings = Settings.from_mapping({})
    assert settings.num_partitions == 10
    assert settings.worker_partitions == tuple(range(10))
    assert settings.exactly_once is True
    assert settings.log_level == "info"
    assert settings.port == 3000
    assert settings.dedup_retention_hours == 48


def test_values_are_parsed_to_their_types():
    settings = Settings.from_mapping({"PORT": " 8080 ", "EXACTLY_ONCE": "No", "LOG_LEVEL": "DEBUG", "NUM_PARTITIONS": 4, "BATCH_SIZE": 1})
    parsed = (settings.port, settings.exactly_once, settings.log_level, settings.num_partitions, settings.batch_size)
    assert parsed == (8080, False, "debug", 4, 1)
    assert settings.worker_partitions == (0, 1, 2, 3)


def test_settings_are_frozen():
    settings = Settings.from_mapping({})
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


INVALID = [
    ({"NUM_PARTITIONS": "0"}, "NUM_PARTITIONS"),
    ({"NUM_SHARDS": "-1"}, "NUM_SHARDS"),
    ({"BATCH_SIZE": "-1"}, "BATCH_SIZE"),
    ({"FLUSH_INTERVAL_MS": "abc"}, "FLUSH_INTERVAL_MS"),
    ({"PORT": "70000"}, "PORT"),
    ({"PORT": ""}, "PORT"),
    ({"DATABASE_URL": "not-a-url"}, "DATABASE_URL"),
    ({"DATABASE_URL": "mysql://db/x"}, "DATABASE_URL"),
    ({"AMQP_URL": "http://x"}, "AMQP_URL"),
    ({"AMQP_URL": "amqp://guest:guest@host:99999/"}, "AMQP_URL"),
    ({"QUEUE_PREFIX": "page views"}, "QUEUE_PREFIX"),
    ({"QUEUE_PREFIX": ""}, "QUEUE_PREFIX"),
    ({"QUEUE_PREFIX": "x" * 101}, "QUEUE_PREFIX"),
    ({"WORKER_PARTITIONS": "0-20", "NUM_PARTITIONS": "10"}, "WORKER_PARTITIONS"),
    ({"WORKER_PARTITIONS": "some"}, "WORKER_PARTITIONS"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
    ({"EXACTLY_ONCE": "maybe"}, "EXACTLY_ONCE"),
    ({"DEDUP_RETENTION_HOURS": "1"}, "DEDUP_RETENTION_HOURS"),
    ({"RETENTION_DAYS": "0"}, "RETENTION_DAYS"),
    ({"API_PROCESSES": "1.5"}, "API_PROCESSES"),
    ({"NUM_PARTITONS": "4"}, "NUM_PARTITONS"),
]


@pytest.mark.parametrize(("values", "named"), INVALID, ids=["-".join(f"{k}={v}" for k, v in values.items())[:40] for values, _ in INVALID])
def test_invalid_value_names_the_setting(values, named):
    with pytest.raises(ConfigError) as caught:
        Settings.from_mapping(values)
    assert named in str(caught.value)


def test_unknown_setting_is_called_unknown():
    with pytest.raises(ConfigError, match=r"unknown setting\(s\): NUM_PARTITONS"):
        Settings.from_mapping({"NUM_PARTITONS": "4"})


def test_bad_url_error_does_not_reveal_the_password():
    with pytest.raises(ConfigError) as caught:
        Settings.from_mapping({"AMQP_URL": "amqp://guest:s3cret@host:99999/"})
    assert "s3cret" not in str(caught.value)


def test_out_of_range_partitions_error_explains_the_limit():
    with pytest.raises(ConfigError, match=r"WORKER_PARTITIONS: '0-20' is outside 0-9"):
        Settings.from_mapping({"WORKER_PARTITIONS": "0-20", "NUM_PARTITIONS": "10"})


@pytest.mark.parametrize(
    ("spec", "num_partitions", "expected"),
    [("all", 4, (0, 1, 2, 3)), ("0-4,7", 10, (0, 1, 2, 3, 4, 7)), (" 2 - 3 ", 10, (2, 3)), ("9", 10, (9,))],
    ids=["all", "ranges", "whitespace", "last"],
)
def test_worker_partitions(spec, num_partitions, expected):
    settings = Settings.from_mapping({"WORKER_PARTITIONS": spec, "NUM_PARTITIONS": num_partitions})
    assert settings.worker_partitions == expected


def test_from_env_reads_only_known_names_and_defaults_the_rest():
    settings = Settings.from_env({"NUM_PARTITIONS": "4", "HOME": "/root", "PATH": "/bin"})
    assert settings.num_partitions == 4
    assert settings.batch_size == 1000


@pytest.mark.parametrize(
    "values",
    [
        {},
        {
            "DATABASE_URL": "postgresql://app:pw@db.example:6543/counts",
            "AMQP_URL": "amqps://user:pw@mq.example:5671/vhost",
            "PORT": "8080",
            "NUM_PARTITIONS": "12",
            "WORKER_PARTITIONS": "0-2,5,7-8",
            "EXACTLY_ONCE": "off",
            "LOG_LEVEL": "WARNING",
            "QUEUE_PREFIX": "test.run_1-a",
        },
    ],
    ids=["defaults", "everything-changed"],
)
def test_as_env_round_trips_through_from_env(values):
    settings = Settings.from_mapping(values)
    env = settings.as_env()
    assert set(env) == {s.name for s in SETTINGS}
    assert all(isinstance(value, str) for value in env.values())
    assert Settings.from_env(env) == settings


def test_describe_masks_passwords_in_both_urls():
    settings = Settings.from_mapping(
        {"DATABASE_URL": "postgresql://app:dbsecret@db:5432/counts", "AMQP_URL": "amqp://user:mqsecret@mq:5672/%2F"}
    )
    described = settings.describe()
    assert described["DATABASE_URL"] == "postgresql://app:***@db:5432/counts"
    assert described["AMQP_URL"] == "amqp://user:***@mq:5672/%2F"
    assert not any("dbsecret" in value or "mqsecret" in value for value in described.values())
    assert settings.database_url.endswith("app:dbsecret@db:5432/counts")  # only the description is masked


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("amqp://guest:guest@127.0.0.1:5672/%2F", "amqp://guest:***@127.0.0.1:5672/%2F"),
        ("postgresql://postgres@127.0.0.1:5432/db", "postgresql://postgres@127.0.0.1:5432/db"),
        ("postgresql://u:p@ss:w@rd@host/db", "postgresql://u:***@host/db"),
        ("amqp://u:@host/", "amqp://u:***@host/"),
        ("amqp://host/", "amqp://host/"),
    ],
    ids=["password", "no-password", "at-and-colon-in-password", "empty-password", "no-userinfo"],
)
def test_mask_url(url, masked):
    assert mask_url(url) == masked


# --------------------------------------------------------------------------- env files


def test_read_env_file_skips_comments_and_blank_lines(tmp_path):
    path = tmp_path / "settings.env"
    path.write_text(
        "# a comment\n"
        "\n"
        "   \n"
        "NUM_PARTITIONS=4\n"
        "  # an indented comment\n"
        "QUEUE_PREFIX = spaced \n"
        'LOG_LEVEL="debug"\n'
        "AMQP_URL='amqp://u:p@h/%2F'\n"
        "DATABASE_URL=postgresql://u:a=b@h/db\n"
        "EMPTY=\n",
        encoding="utf-8",
    )
    assert read_env_file(str(path)) == {
        "NUM_PARTITIONS": "4",
        "QUEUE_PREFIX": "spaced",
        "LOG_LEVEL": "debug",
        "AMQP_URL": "amqp://u:p@h/%2F",
        "DATABASE_URL": "postgresql://u:a=b@h/db",
        "EMPTY": "",
    }


@pytest.mark.parametrize(
    "line",
    ["NUM_PARTITIONS", "num_partitions=4", "export NUM_PARTITIONS=4", "=4", "1ABC=2", "NUM-PARTITIONS=4"],
    ids=["no-equals", "lower-case", "export", "no-key", "leading-digit", "dash"],
)
def test_read_env_file_rejects_malformed_lines_with_their_line_number(tmp_path, line):
    path = tmp_path / "settings.env"
    path.write_text(f"# first\nPORT=3000\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"settings\.env:3: expected KEY=VALUE"):
        read_env_file(str(path))


def test_the_shipped_config_env_parses():
    values = read_env_file(str(ROOT / "config.env"))
    known = {s.name for s in SETTINGS}
    Settings.from_mapping({name: value for name, value in values.items() if name in known})


# --------------------------------------------------------------------------- processes


def _env_with(**overrides: str) -> dict[str, str]:
    """This process's environment without any of our settings, plus the given ones."""
    env = {name: value for name, value in environment().items() if name not in {s.name for s in SETTINGS}}
    env.update(overrides)
    return env


@pytest.mark.parametrize("module", ["worker", "api"])
def test_process_with_a_bad_setting_exits_at_once_naming_it(module):
    started = time.monotonic()
    finished = subprocess.run(
        [sys.executable, "-m", module],
        cwd=str(ROOT),
        env=_env_with(NUM_PARTITIONS="0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert finished.returncode != 0
    assert "NUM_PARTITIONS" in finished.stderr + finished.stdout
    assert "Traceback" not in finished.stderr
    assert elapsed < 15, f"{module} took {elapsed:.1f}s to refuse a bad setting"


def test_amqp_url_may_list_the_nodes_of_a_cluster():
    settings = Settings.from_mapping({"AMQP_URL": " amqp://u:p@a:5672/%2F , amqp://u:p@b:5673/%2F,amqp://u:p@c/%2F "})
    assert settings.amqp_urls == ("amqp://u:p@a:5672/%2F", "amqp://u:p@b:5673/%2F", "amqp://u:p@c/%2F")
    assert settings.amqp_url == ",".join(settings.amqp_urls)
    assert settings.describe()["AMQP_URL"] == "amqp://u:***@a:5672/%2F,amqp://u:***@b:5673/%2F,amqp://u:***@c/%2F"
    assert Settings.from_env(settings.as_env()) == settings  # what child processes are started with


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("amqp://a/,http://b/", "URL 2 of 2: expected a amqp/amqps:// URL"),
        ("amqp://a/,amqp://a/", "listed twice"),
        (" , ", "one or more"),
        ("amqp://u:secret@a:99999/,amqp://b/", "URL 1 of 2: bad port"),
    ],
)
def test_a_bad_amqp_url_list_names_the_url_and_hides_passwords(value, problem):
    with pytest.raises(ConfigError) as caught:
        Settings.from_mapping({"AMQP_URL": value})
    assert str(caught.value).startswith("AMQP_URL: ") and problem in str(caught.value)
    assert "secret" not in str(caught.value)


def test_report_database_url_is_optional_and_masked():
    assert Settings.from_mapping({}).report_database_url == ""
    settings = Settings.from_mapping({"REPORT_DATABASE_URL": "postgresql://app:pw@replica:5432/counts"})
    assert settings.describe()["REPORT_DATABASE_URL"] == "postgresql://app:***@replica:5432/counts"
    with pytest.raises(ConfigError, match="^REPORT_DATABASE_URL: "):
        Settings.from_mapping({"REPORT_DATABASE_URL": "mysql://replica/counts"})
