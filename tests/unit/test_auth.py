"""Tokens: parsed and masked by the configuration, checked in constant time by api.auth."""
from __future__ import annotations

import logging

import pytest

from api.auth import TokenSet
from api.exposure import warn_if_open
from common.config import ConfigError, Settings

REPORT_TOKEN = "report-token-0123456789"
OTHER_TOKEN = "second.token_ABCDEFGH+/=="


def test_tokens_are_a_comma_separated_list():
    settings = Settings.from_mapping({"REPORT_TOKENS": f" {REPORT_TOKEN} ,, {OTHER_TOKEN} "})
    assert settings.report_tokens == (REPORT_TOKEN, OTHER_TOKEN)
    assert settings.ingest_tokens == ()
    assert Settings.from_env(settings.as_env()) == settings


@pytest.mark.parametrize("raw", ["short-token", "has space in it 0123", "comma-less-but-\u00e9-accent-xx"])
def test_a_bad_token_is_refused_without_being_echoed(raw):
    with pytest.raises(ConfigError) as caught:
        Settings.from_mapping({"INGEST_TOKENS": raw})
    assert "INGEST_TOKENS: token 1" in str(caught.value)
    assert raw not in str(caught.value)


def test_tokens_never_reach_the_start_up_line():
    described = Settings.from_mapping({"REPORT_TOKENS": f"{REPORT_TOKEN},{OTHER_TOKEN}"}).describe()
    assert described["REPORT_TOKENS"] == "<2 tokens>"
    assert described["INGEST_TOKENS"] == "<none: open>"
    assert REPORT_TOKEN not in str(described)


def test_token_set_admits_each_of_its_tokens_and_nothing_else():
    tokens = TokenSet((REPORT_TOKEN, OTHER_TOKEN))
    assert tokens.admits(REPORT_TOKEN) and tokens.admits(OTHER_TOKEN)
    for wrong in (None, "", REPORT_TOKEN[:-1], REPORT_TOKEN + "x", REPORT_TOKEN.upper(), "\udcff"):
        assert not tokens.admits(wrong)


def test_an_empty_token_set_is_open():
    assert TokenSet(()).open and TokenSet(()).admits(None)


def test_open_groups_are_warned_about_only_beyond_loopback(caplog):
    settings = Settings.from_mapping({"REPORT_TOKENS": REPORT_TOKEN})
    with caplog.at_level(logging.WARNING, logger="api.auth"):
        warn_if_open(settings, "127.0.0.1")
        warn_if_open(settings, "::1")
        assert not caplog.records
        warn_if_open(settings, "0.0.0.0")
    assert [record.fields["group"] for record in caplog.records] == ["ingest"]
