"""Start-up shared by every entry point: settings (or a clean exit naming the bad one), logging, one start line."""
from __future__ import annotations

import logging
from typing import Any

from common import logging as structured_logging
from common.config import ConfigError, Settings
from common.logging import fields


def start(process: str, **details: Any) -> Settings:
    """Settings from the environment; exits with a message naming the setting when one is invalid."""
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        raise SystemExit(f"{process}: invalid configuration: {exc}") from None
    structured_logging.configure(settings.log_level, settings.log_format)
    logging.getLogger(process).info(f"starting {process}", extra=fields(**details, **settings.describe()))
    return settings
